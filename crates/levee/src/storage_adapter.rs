//! The front-end's [`StoragePlane`] in the embedded mode: calls into this process's storage
//! engine. Appends are submitted before the returned future is polled, so a PutRecords' appends
//! to several shards share group commits.

use std::sync::Arc;

use bytes::Bytes;
use levee_frontend::backend::{
    AppendError, AppendSignals, Appended, BoxFuture, ReadFrom, ReadOut, StoragePlane, StoredRecord,
    Tip,
};
use levee_map::ShardRoute;
use levee_protocol::{ApiError, ErrorKind};
use levee_storage::{Engine, Error, ShardUid};

pub struct LocalStorage {
    pub engine: Arc<Engine>,
    /// Woken after each committed append, for SubscribeToShard.
    pub signals: Arc<AppendSignals>,
}

/// Maps a storage error onto the Kinesis error a client sees; internal causes are logged here,
/// where they are handled.
fn to_api(e: Error) -> ApiError {
    match e {
        Error::Overloaded { .. } => {
            ApiError::new(ErrorKind::ProvisionedThroughputExceeded, "Rate exceeded.")
        }
        Error::ShardNotFound(_) | Error::StreamNotFound(_) => {
            ApiError::new(ErrorKind::ResourceNotFound, "Shard not found.")
        }
        other => {
            tracing::error!(error = %other, "storage failure");
            ApiError::new(ErrorKind::InternalFailure, "Internal service failure.")
        }
    }
}

impl StoragePlane for LocalStorage {
    fn append(
        &self,
        shard: &ShardRoute,
        records: Vec<(Bytes, Bytes)>,
    ) -> BoxFuture<Result<Appended, AppendError>> {
        let uid = ShardUid(shard.uid);
        let created = self.engine.shard_info(uid).map(|i| i.created_ms);
        let refs: Vec<(&[u8], &[u8])> = records.iter().map(|(k, d)| (&k[..], &d[..])).collect();
        let ticket = self.engine.append(uid, &refs);
        let append_error = |e: Error| match e {
            // Closed by a reshard after the caller read its map, or a new shard the map shows
            // a moment before storage has created it: route again.
            Error::ShardClosed(_) | Error::ShardNotFound(_) => AppendError::Stale,
            other => AppendError::Api(to_api(other)),
        };
        let signals = self.signals.clone();
        let shard_uid = shard.uid;
        Box::pin(async move {
            let created = created.map_err(append_error)?;
            let a = ticket.map_err(append_error)?.await.map_err(append_error)?;
            signals.notify(shard_uid);
            Ok(Appended {
                first_seq_ix: a.first_seq_ix,
                arrival_ms: a.arrival_ms,
                shard_created_ms: created,
            })
        })
    }

    fn read(
        &self,
        shard: &ShardRoute,
        from: ReadFrom,
        max_records: usize,
        max_bytes: u64,
    ) -> BoxFuture<Result<ReadOut, ApiError>> {
        let engine = self.engine.clone();
        let uid = ShardUid(shard.uid);
        Box::pin(async move {
            let created = engine.shard_info(uid).map_err(to_api)?.created_ms;
            let from = match from {
                ReadFrom::SeqIx(x) => levee_storage::ReadFrom::SeqIx(x),
                ReadFrom::Timestamp(t) => levee_storage::ReadFrom::Timestamp(t),
            };
            let b = engine
                .read_async(uid, from, max_records, max_bytes)
                .await
                .map_err(to_api)?;
            Ok(ReadOut {
                records: b
                    .records
                    .into_iter()
                    .map(|r| StoredRecord {
                        seq_ix: r.seq_ix,
                        arrival_ms: r.arrival_ms,
                        partition_key: r.partition_key,
                        data: r.data,
                    })
                    .collect(),
                next_seq_ix: b.next_seq_ix,
                shard_end: b.shard_end,
                tip_arrival_ms: b.tip.last_arrival_ms,
                tip_next_seq_ix: b.tip.next_seq_ix,
                shard_created_ms: created,
            })
        })
    }

    fn append_signal(&self, shard: &ShardRoute) -> tokio::sync::watch::Receiver<()> {
        self.signals.watch(shard.uid)
    }

    fn tip(&self, shard: &ShardRoute) -> BoxFuture<Result<Tip, ApiError>> {
        let info = self.engine.shard_info(ShardUid(shard.uid));
        Box::pin(async move {
            let info = info.map_err(to_api)?;
            Ok(Tip {
                next_seq_ix: info.next_seq_ix,
                shard_created_ms: info.created_ms,
            })
        })
    }
}
