//! The data-plane operations — PutRecord, PutRecords, GetShardIterator, GetRecords — executed by
//! the front-end itself: resolve the stream in the current shard map, route by hash key, call the
//! storage node, and shape AWS's answer (sequence numbers, iterators, error texts).
//!
//! The functions here take and return plain values; `service.rs` maps them to and from the
//! protocol's request and response types.

use std::sync::Arc;

use bytes::Bytes;
use levee_map::seqnum::{Foreign, SequenceNumber};
use levee_map::{partition_key_hash, HashKey, ShardId, ShardRoute, StreamRoute, StreamState};
use levee_protocol::types::{ChildShard, EncryptionType, HashKeyRange, Record};
use levee_protocol::{ApiError, Blob, ErrorKind, Timestamp};

use crate::backend::{AppendError, MapHolder, ReadFrom, StoragePlane, StoredRecord};
use crate::iterator::{IteratorCodec, IteratorError, Position, ShardIterator};

/// GetRecords answers at most this many records...
pub const GET_RECORDS_RECORDS_MAX: usize = 10_000;
/// ...and at most this many bytes of data and partition keys.
pub const GET_RECORDS_BYTES_MAX: u64 = 10 << 20;

/// How many times a write is routed again after storage reports the route stale.
pub const REROUTES_MAX: u32 = 8;
/// The first wait before routing again; it doubles each time (1 + 2 + … + 128 ms at most).
pub const REROUTE_BACKOFF_FIRST_MS: u64 = 1;

/// Waits before the `attempt`-th (0-based) re-route: the map or storage may be a moment behind.
async fn reroute_backoff(attempt: u32) {
    tokio::time::sleep(std::time::Duration::from_millis(
        REROUTE_BACKOFF_FIRST_MS << attempt.min(10),
    ))
    .await;
}

/// A stream's largest record (data) by default: AWS's MaxRecordSizeInKiB default of 1024.
pub const RECORD_DATA_BYTES_MAX_DEFAULT: usize = 1 << 20;
/// The largest record any stream takes (MaxRecordSizeInKiB 10240; the model's `Data` maximum).
pub const RECORD_DATA_BYTES_MAX: usize = 10 << 20;
/// PutRecords takes at most this many bytes of data and partition keys in all.
pub const PUT_RECORDS_BYTES_MAX: usize = 10 << 20;

/// A record over the stream's maximum `max` bytes, in AWS's validation format (`member` is
/// `data` for PutRecord, `records.N.member.data` for PutRecords entry N, 1-based).
fn record_too_large(member: &str, len: usize, max: usize) -> ApiError {
    ApiError::new(
        ErrorKind::Validation,
        format!(
            "1 validation error detected: Value 'java.nio.HeapByteBuffer[pos=0 lim={len} cap={len}]' at '{member}' failed to satisfy constraint: Member must have length less than or equal to {max}"
        ),
    )
}

/// Per-stream settings the data plane enforces, as the control plane knows them.
pub trait StreamSettings: Send + Sync + 'static {
    /// The stream's `MaxRecordSizeInKiB` in bytes; `None` when there is no such stream.
    fn max_record_bytes(&self, stream: &str) -> Option<usize>;
}

/// [`StreamSettings`] read from the front-end's own map (the stream's facts), so a fleet
/// front-end needs no control plane for them.
pub struct MapSettings(pub Arc<crate::backend::MapHolder>);

impl StreamSettings for MapSettings {
    fn max_record_bytes(&self, stream: &str) -> Option<usize> {
        let map = self.0.current();
        let facts = &map.stream(stream)?.facts;
        Some(
            usize::try_from(facts.max_record_kib)
                .unwrap_or(usize::MAX)
                .saturating_mul(1024),
        )
    }
}

/// Account and region, for ARNs and error texts.
#[derive(Debug, Clone)]
pub struct Identity {
    pub account_id: String,
    pub region: String,
}

/// One PutRecords entry.
#[derive(Debug, Clone)]
pub struct PutEntry {
    pub partition_key: String,
    pub data: Bytes,
    pub explicit_hash_key: Option<String>,
}

/// Where a record went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub shard_id: String,
    pub sequence_number: String,
    /// Stored encrypted at rest.
    pub encrypted: bool,
}

/// A PutRecords entry's failure, as AWS reports it inside a 200 response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryFailure {
    pub error_code: String,
    pub error_message: String,
}

/// A child of a closed shard, for GetRecords' `ChildShards`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildOut {
    pub shard_id: String,
    pub parent_shards: Vec<String>,
    pub starting_hash_key: u128,
    pub ending_hash_key: u128,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordsOut {
    /// As storage returned them: the answer is written straight from these (no copy per
    /// record); [`RecordsOut::sequence_number_of`] names each.
    pub records: Vec<StoredRecord>,
    pub shard_created_ms: u64,
    pub shard_index: u32,
    /// `None` at the end of a closed shard, and then `child_shards` is not empty (the KCL's
    /// shard-end contract).
    pub next_shard_iterator: Option<String>,
    pub millis_behind_latest: u64,
    pub child_shards: Vec<ChildOut>,
}

impl RecordsOut {
    /// The sequence number of `r`, one of [`Self::records`], before formatting (format a run of
    /// them with a [`levee_map::seqnum::DecimalRun`]).
    pub fn sequence_number_of(&self, r: &StoredRecord) -> SequenceNumber {
        seq_number(
            self.shard_created_ms,
            self.shard_index,
            r.seq_ix,
            r.arrival_ms,
        )
    }
}

impl ChildOut {
    /// As GetRecords and SubscribeToShard name it on the wire.
    pub fn to_wire(&self) -> ChildShard {
        ChildShard {
            shard_id: self.shard_id.clone(),
            parent_shards: self.parent_shards.clone(),
            hash_key_range: HashKeyRange {
                starting_hash_key: self.starting_hash_key.to_string(),
                ending_hash_key: self.ending_hash_key.to_string(),
            },
        }
    }
}

/// A stored record of shard `shard_index` (created at `created_ms`) as a wire record (the CBOR
/// GetRecords answer and SubscribeToShard events; JSON GetRecords is written without it).
pub(crate) fn wire_record(created_ms: u64, shard_index: u32, r: &StoredRecord) -> Record {
    Record {
        sequence_number: seq(created_ms, shard_index, r.seq_ix, r.arrival_ms),
        approximate_arrival_timestamp: Some(Timestamp(r.arrival_ms)),
        data: Blob(r.data.clone()),
        partition_key: key_text(&r.partition_key).into_owned(),
        encryption_type: r.encrypted.then_some(EncryptionType::Kms),
    }
}

/// A stored partition key as text: keys arrive as JSON or CBOR strings, so always UTF-8 unless
/// the disk says otherwise (then lossily).
pub(crate) fn key_text(key: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(key) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(key),
    }
}

/// The children of a closed shard, as GetRecords and SubscribeToShard name them at its end.
pub(crate) fn child_shards(stream: &StreamRoute, id: ShardId) -> Vec<ChildOut> {
    stream
        .children(id)
        .map(|c| ChildOut {
            shard_id: c.shard_id.to_string(),
            parent_shards: [c.parent, c.adjacent_parent]
                .into_iter()
                .flatten()
                .map(|p| p.to_string())
                .collect(),
            starting_hash_key: c.hash_range.start,
            ending_hash_key: c.hash_range.end,
        })
        .collect()
}

/// Milliseconds a reader is behind the shard's tip after a read (0 when it has caught up).
pub(crate) fn millis_behind(out: &crate::backend::ReadOut) -> u64 {
    match out.records.last() {
        Some(last) if out.next_seq_ix < out.tip_next_seq_ix => {
            out.tip_arrival_ms.saturating_sub(last.arrival_ms)
        }
        _ => 0,
    }
}

/// The kinds of shard iterator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IteratorType {
    AtSequenceNumber,
    AfterSequenceNumber,
    TrimHorizon,
    Latest,
    AtTimestamp,
}

impl From<levee_protocol::types::ShardIteratorType> for IteratorType {
    fn from(t: levee_protocol::types::ShardIteratorType) -> IteratorType {
        use levee_protocol::types::ShardIteratorType as T;
        match t {
            T::AtSequenceNumber => IteratorType::AtSequenceNumber,
            T::AfterSequenceNumber => IteratorType::AfterSequenceNumber,
            T::TrimHorizon => IteratorType::TrimHorizon,
            T::Latest => IteratorType::Latest,
            T::AtTimestamp => IteratorType::AtTimestamp,
        }
    }
}

impl IteratorType {
    pub fn parse(s: &str) -> Option<IteratorType> {
        Some(match s {
            "AT_SEQUENCE_NUMBER" => IteratorType::AtSequenceNumber,
            "AFTER_SEQUENCE_NUMBER" => IteratorType::AfterSequenceNumber,
            "TRIM_HORIZON" => IteratorType::TrimHorizon,
            "LATEST" => IteratorType::Latest,
            "AT_TIMESTAMP" => IteratorType::AtTimestamp,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            IteratorType::AtSequenceNumber => "AT_SEQUENCE_NUMBER",
            IteratorType::AfterSequenceNumber => "AFTER_SEQUENCE_NUMBER",
            IteratorType::TrimHorizon => "TRIM_HORIZON",
            IteratorType::Latest => "LATEST",
            IteratorType::AtTimestamp => "AT_TIMESTAMP",
        }
    }
}

/// A shard, the positions of its entries in the request, and the entries.
type ShardBatch = (ShardRoute, Vec<usize>, Vec<(Bytes, Bytes)>);

pub struct DataPlane {
    pub identity: Identity,
    pub maps: Arc<MapHolder>,
    pub storage: Arc<dyn StoragePlane>,
    pub iterators: IteratorCodec,
    pub now_ms: fn() -> u64,
    /// Per-stream limits (MaxRecordSizeInKiB).
    pub settings: Arc<dyn StreamSettings>,
}

/// The sequence number clients see for the record at storage index `seq_ix`. The number's index
/// field is `seq_ix + 1`: index 0 is the shard's StartingSequenceNumber, a position strictly
/// before its first record, so `AFTER_SEQUENCE_NUMBER` with it reads the first record (as on
/// AWS), and a subscription's continuation on an empty shard has a number to name.
pub(crate) fn seq(created_ms: u64, shard_index: u32, seq_ix: u64, arrival_ms: u64) -> String {
    seq_number(created_ms, shard_index, seq_ix, arrival_ms).to_decimal()
}

/// [`seq`] before formatting.
fn seq_number(created_ms: u64, shard_index: u32, seq_ix: u64, arrival_ms: u64) -> SequenceNumber {
    SequenceNumber::new(
        created_ms / 1000,
        shard_index,
        seq_ix + 1,
        arrival_ms / 1000,
    )
}

/// The sequence number of the position just before storage index `next_seq_ix` (after every
/// record below it): AFTER_SEQUENCE_NUMBER with it reads from `next_seq_ix` on.
pub(crate) fn position_seq(
    created_ms: u64,
    shard_index: u32,
    next_seq_ix: u64,
    arrival_ms: u64,
) -> String {
    SequenceNumber::new(
        created_ms / 1000,
        shard_index,
        next_seq_ix,
        arrival_ms / 1000,
    )
    .to_decimal()
}

/// The storage index a client's sequence number names for `AT_SEQUENCE_NUMBER` (the record
/// itself; the StartingSequenceNumber names the first record).
pub(crate) fn at_seq_ix(parsed: &SequenceNumber) -> u64 {
    parsed.seq_ix.saturating_sub(1)
}

/// The storage index `AFTER_SEQUENCE_NUMBER` starts at.
pub(crate) fn after_seq_ix(parsed: &SequenceNumber) -> u64 {
    parsed.seq_ix
}

impl DataPlane {
    /// The size limit for records of `stream`: its MaxRecordSizeInKiB (the default for a stream
    /// that does not exist, so the validation error comes first as before). Asked only for
    /// records over the default, so the common path costs nothing.
    fn record_limit(&self, stream: &str, len: usize) -> usize {
        if len <= RECORD_DATA_BYTES_MAX_DEFAULT {
            return RECORD_DATA_BYTES_MAX_DEFAULT;
        }
        self.settings
            .max_record_bytes(stream)
            .unwrap_or(RECORD_DATA_BYTES_MAX_DEFAULT)
            .min(RECORD_DATA_BYTES_MAX)
    }

    fn not_found(&self, name: &str) -> ApiError {
        ApiError::new(
            ErrorKind::ResourceNotFound,
            format!(
                "Stream {name} under account {} not found.",
                self.identity.account_id
            ),
        )
    }

    /// The stream named by `StreamName` or `StreamARN` (an ARN of another account or region is
    /// not found).
    pub fn resolve_name<'a>(
        &self,
        name: Option<&'a str>,
        arn: Option<&'a str>,
    ) -> Result<&'a str, ApiError> {
        if let Some(n) = name {
            return Ok(n);
        }
        let Some(arn) = arn else {
            return Err(ApiError::new(
                ErrorKind::InvalidArgument,
                "Either StreamName or StreamARN should be provided.",
            ));
        };
        let prefix = format!(
            "arn:aws:kinesis:{}:{}:stream/",
            self.identity.region, self.identity.account_id
        );
        match arn.strip_prefix(&prefix) {
            Some(name) if !name.is_empty() && !name.contains('/') => Ok(name),
            _ => Err(ApiError::new(
                ErrorKind::ResourceNotFound,
                format!(
                    "Stream {arn} under account {} not found.",
                    self.identity.account_id
                ),
            )),
        }
    }

    pub(crate) fn stream(&self, name: &str) -> Result<Arc<StreamRoute>, ApiError> {
        self.maps
            .current()
            .stream(name)
            .cloned()
            .ok_or_else(|| self.not_found(name))
    }

    /// A stream that takes writes and reads (ACTIVE or UPDATING).
    fn live_stream(&self, name: &str) -> Result<Arc<StreamRoute>, ApiError> {
        let s = self.stream(name)?;
        match s.state {
            StreamState::Active | StreamState::Updating => Ok(s),
            _ => Err(self.not_found(name)),
        }
    }

    fn hash_key(&self, partition_key: &str, explicit: Option<&str>) -> Result<HashKey, ApiError> {
        match explicit {
            None => Ok(partition_key_hash(partition_key)),
            Some(e) => e.parse::<u128>().map(HashKey).map_err(|_| {
                ApiError::new(
                    ErrorKind::InvalidArgument,
                    format!("Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was {e}"),
                )
            }),
        }
    }

    pub async fn put_record(
        &self,
        stream_name: &str,
        entry: PutEntry,
        sequence_number_for_ordering: Option<&str>,
    ) -> Result<Placed, ApiError> {
        let max = self.record_limit(stream_name, entry.data.len());
        if entry.data.len() > max {
            return Err(record_too_large("data", entry.data.len(), max));
        }
        self.live_stream(stream_name)?;
        let key = self.hash_key(&entry.partition_key, entry.explicit_hash_key.as_deref())?;
        if let Some(s) = sequence_number_for_ordering {
            // Any number AWS can read will do, unless it arrived in the future.
            let now_secs = (self.now_ms)() / 1000;
            let readable = Foreign::read(s)
                .is_ok_and(|f| f.arrival_secs.is_none_or(|arrived| arrived <= now_secs));
            if !readable {
                return Err(ApiError::new(
                    ErrorKind::InvalidArgument,
                    format!(
                        "ExclusiveMinimumSequenceNumber {s} used in PutRecord on stream {stream_name} under account {} is invalid.",
                        self.identity.account_id
                    ),
                ));
            }
        }
        let record = (Bytes::from(entry.partition_key), entry.data);
        for attempt in 0..REROUTES_MAX {
            // Route by the current map each time: a reshard publishes the new map before
            // storage closes the parent, so a stale route resolves on the next attempt.
            let stream = self.live_stream(stream_name)?;
            let shard = stream.route(key).ok_or_else(ApiError::internal_failure)?;
            if attempt == 0 && !self.admit_write(shard, record.0.len() + record.1.len()) {
                return Err(self.throttled(shard, stream_name));
            }
            match self.storage.append(shard, vec![record.clone()]).await {
                Ok(ack) => {
                    return Ok(Placed {
                        shard_id: shard.shard_id.to_string(),
                        sequence_number: seq(
                            ack.shard_created_ms,
                            shard.shard_id.0,
                            ack.first_seq_ix,
                            ack.arrival_ms,
                        ),
                        encrypted: ack.encrypted,
                    })
                }
                Err(AppendError::Stale) => {
                    self.maps.request_refresh();
                    reroute_backoff(attempt).await
                }
                Err(AppendError::Api(e)) => {
                    return Err(self.rename_throttle(e, shard, stream_name))
                }
            }
        }
        tracing::error!(
            stream = stream_name,
            "no current route after {REROUTES_MAX} attempts"
        );
        Err(ApiError::internal_failure())
    }

    fn rename_throttle(&self, e: ApiError, shard: &ShardRoute, stream: &str) -> ApiError {
        if e.kind == ErrorKind::ProvisionedThroughputExceeded {
            self.throttled(shard, stream)
        } else {
            e
        }
    }

    /// AWS's ProvisionedThroughputExceeded for one shard.
    fn throttled(&self, shard: &ShardRoute, stream: &str) -> ApiError {
        ApiError::new(
            ErrorKind::ProvisionedThroughputExceeded,
            format!(
                "Rate exceeded for shard {} in stream {stream} under account {}.",
                shard.shard_id, self.identity.account_id
            ),
        )
    }

    /// Whether the shard's owner admits one record of `bytes` (always, without shard limits).
    fn admit_write(&self, shard: &ShardRoute, bytes: usize) -> bool {
        self.storage
            .shard_limits()
            .is_none_or(|l| l.admit_write(shard.uid, bytes))
    }

    /// Writes each shard's entries with one append per shard, concurrently; failures are per
    /// entry (the order of entries is preserved in the answer).
    pub async fn put_records(
        &self,
        stream_name: &str,
        entries: Vec<PutEntry>,
    ) -> Result<Vec<Result<Placed, EntryFailure>>, ApiError> {
        let largest = entries.iter().map(|e| e.data.len()).max().unwrap_or(0);
        let max = self.record_limit(stream_name, largest);
        if let Some((i, e)) = entries.iter().enumerate().find(|(_, e)| e.data.len() > max) {
            return Err(record_too_large(
                &format!("records.{}.member.data", i + 1),
                e.data.len(),
                max,
            ));
        }
        let total: usize = entries
            .iter()
            .map(|e| e.data.len() + e.partition_key.len())
            .sum();
        if total > PUT_RECORDS_BYTES_MAX {
            return Err(ApiError::new(
                ErrorKind::InvalidArgument,
                format!("Records size exceeds {PUT_RECORDS_BYTES_MAX} bytes: the request holds {total} bytes of data and partition keys."),
            ));
        }
        self.live_stream(stream_name)?;
        let mut keys = Vec::with_capacity(entries.len());
        for e in &entries {
            keys.push(self.hash_key(&e.partition_key, e.explicit_hash_key.as_deref())?);
        }
        let items: Vec<(Bytes, Bytes)> = entries
            .into_iter()
            .map(|e| (Bytes::from(e.partition_key), e.data))
            .collect();
        let internal = EntryFailure {
            error_code: "InternalFailure".into(),
            error_message: "Internal service failure.".into(),
        };
        let mut out: Vec<Option<Result<Placed, EntryFailure>>> = vec![None; items.len()];
        let mut pending: Vec<usize> = (0..items.len()).collect();
        for attempt in 0..REROUTES_MAX {
            if pending.is_empty() {
                break;
            }
            if attempt > 0 {
                reroute_backoff(attempt - 1).await;
            }
            // Group the entries still to write by shard of the current map, keeping order.
            let stream = self.live_stream(stream_name)?;
            let mut groups: Vec<ShardBatch> = Vec::new();
            for &i in &pending {
                let (Some(key), Some(item)) = (keys.get(i), items.get(i)) else {
                    continue;
                };
                let shard = stream.route(*key).ok_or_else(ApiError::internal_failure)?;
                // Shard limits admit or throttle each record on its own (once, not on re-routes).
                if attempt == 0 && !self.admit_write(shard, item.0.len() + item.1.len()) {
                    if let Some(slot) = out.get_mut(i) {
                        *slot = Some(Err(EntryFailure {
                            error_code: "ProvisionedThroughputExceededException".into(),
                            error_message: self.throttled(shard, stream_name).message,
                        }));
                    }
                    continue;
                }
                match groups.iter_mut().find(|g| g.0.shard_id == shard.shard_id) {
                    Some(g) => {
                        g.1.push(i);
                        g.2.push(item.clone());
                    }
                    None => groups.push((shard.clone(), vec![i], vec![item.clone()])),
                }
            }
            // Submit every shard's append before awaiting any, so they share group commits.
            let submitted: Vec<_> = groups
                .into_iter()
                .map(|(shard, positions, batch)| {
                    let fut = self.storage.append(&shard, batch);
                    (shard, positions, fut)
                })
                .collect();
            let mut stale = Vec::new();
            for (shard, positions, fut) in submitted {
                let result = match fut.await {
                    Ok(ack) => Ok(ack),
                    Err(AppendError::Stale) => {
                        stale.extend(positions);
                        continue;
                    }
                    Err(AppendError::Api(e)) => Err(e),
                };
                for (n, pos) in positions.into_iter().enumerate() {
                    let entry = match &result {
                        Ok(ack) => Ok(Placed {
                            shard_id: shard.shard_id.to_string(),
                            sequence_number: seq(
                                ack.shard_created_ms,
                                shard.shard_id.0,
                                ack.first_seq_ix + n as u64,
                                ack.arrival_ms,
                            ),
                            encrypted: ack.encrypted,
                        }),
                        Err(e) if e.kind == ErrorKind::ProvisionedThroughputExceeded => {
                            Err(EntryFailure {
                                error_code: "ProvisionedThroughputExceededException".into(),
                                error_message: self
                                    .rename_throttle(e.clone(), &shard, stream_name)
                                    .message,
                            })
                        }
                        Err(_) => Err(internal.clone()),
                    };
                    if let Some(slot) = out.get_mut(pos) {
                        *slot = Some(entry);
                    }
                }
            }
            stale.sort_unstable();
            if !stale.is_empty() {
                self.maps.request_refresh();
            }
            pending = stale;
        }
        if !pending.is_empty() {
            tracing::error!(
                stream = stream_name,
                entries = pending.len(),
                "no current route after {REROUTES_MAX} attempts"
            );
        }
        Ok(out
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(internal.clone())))
            .collect())
    }

    pub async fn get_shard_iterator(
        &self,
        stream_name: &str,
        shard_id: &str,
        kind: IteratorType,
        starting_sequence_number: Option<&str>,
        timestamp_ms: Option<u64>,
    ) -> Result<String, ApiError> {
        let now = (self.now_ms)();
        let (shard, position) = self
            .resolve_position(
                stream_name,
                shard_id,
                kind,
                starting_sequence_number,
                timestamp_ms,
                "GetShardIterator",
            )
            .await?;
        Ok(self.iterators.encode(&ShardIterator {
            issued_ms: now,
            stream_name: stream_name.to_owned(),
            shard_uid: shard.uid,
            shard_index: shard.shard_id.0,
            position,
        }))
    }

    /// The shard and the position a GetShardIterator call or a SubscribeToShard
    /// StartingPosition names, with AWS's checks and texts (`op` names the operation in them).
    pub async fn resolve_position(
        &self,
        stream_name: &str,
        shard_id: &str,
        kind: IteratorType,
        starting_sequence_number: Option<&str>,
        timestamp_ms: Option<u64>,
        op: &str,
    ) -> Result<(ShardRoute, Position), ApiError> {
        let acct = &self.identity.account_id;
        let Some(id) = ShardId::resolve(shard_id) else {
            return Err(ApiError::new(
                ErrorKind::ResourceNotFound,
                format!(
                    "Could not find shard {shard_id} in stream {stream_name} under account {acct}."
                ),
            ));
        };
        let missing_shard = || {
            ApiError::new(
                ErrorKind::ResourceNotFound,
                format!("Shard {id} in stream {stream_name} under account {acct} does not exist"),
            )
        };
        let stream = self.stream(stream_name).map_err(|_| missing_shard())?;
        // A CREATING stream has no shards yet, as AWS reports it.
        if stream.state == StreamState::Creating {
            return Err(missing_shard());
        }
        let shard = stream.shard(id).ok_or_else(missing_shard)?.clone();
        if self
            .storage
            .shard_limits()
            .is_some_and(|l| !l.admit_get_shard_iterator(shard.uid))
        {
            return Err(self.throttled(&shard, stream_name));
        }
        let now = (self.now_ms)();
        let mixed = |with: bool| {
            ApiError::new(
                ErrorKind::InvalidArgument,
                format!(
                    "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. Request specified {} and {} StartingSequenceNumber.",
                    kind.name(),
                    if with { "also a" } else { "no" }
                ),
            )
        };
        let position = match (kind, starting_sequence_number) {
            (IteratorType::TrimHorizon | IteratorType::Latest, Some(_)) => return Err(mixed(true)),
            (IteratorType::AtSequenceNumber | IteratorType::AfterSequenceNumber, None) => {
                return Err(mixed(false))
            }
            (IteratorType::AtSequenceNumber | IteratorType::AfterSequenceNumber, Some(s)) => {
                let invalid = || {
                    ApiError::new(
                        ErrorKind::InvalidArgument,
                        format!("StartingSequenceNumber {s} used in {op} on shard {id} in stream {stream_name} under account {acct} is invalid."),
                    )
                };
                // First what AWS reads from any number it knows, then Levee's own layout.
                let foreign = Foreign::read(s).map_err(|_| invalid())?;
                if foreign.shard_index != i64::from(id.0) {
                    return Err(ApiError::new(
                        ErrorKind::InvalidArgument,
                        format!(
                            "Invalid StartingSequenceNumber. It encodes {}, while it was used in a call to a shard with {id}",
                            foreign.shard_id_text()
                        ),
                    ));
                }
                // A version-0 number of this shard: AWS answers InternalFailure (recorded by
                // kinesalite); Levee does not answer a client's input with a server fault.
                if foreign.version == 0 {
                    return Err(invalid());
                }
                let tip = self.storage.tip(&shard).await?;
                if foreign.version != 2 || foreign.shard_created_secs != tip.shard_created_ms / 1000
                {
                    return Err(ApiError::new(
                        ErrorKind::InvalidArgument,
                        format!("StartingSequenceNumber {s} used in {op} on shard {id} in stream {stream_name} under account {acct} is invalid because it did not come from this stream."),
                    ));
                }
                let parsed = SequenceNumber::parse(s).map_err(|_| invalid())?;
                if kind == IteratorType::AtSequenceNumber {
                    Position::SeqIx(at_seq_ix(&parsed))
                } else {
                    if parsed.seq_ix >= levee_map::seqnum::SEQ_IX_MAX {
                        return Err(ApiError::new(
                            ErrorKind::InvalidArgument,
                            "Invalid SequenceNumber for ShardIteratorType AFTER_SEQUENCE_NUMBER, SequenceNumber has reached max possible value for the shard.",
                        ));
                    }
                    Position::SeqIx(after_seq_ix(&parsed))
                }
            }
            (IteratorType::TrimHorizon, None) => Position::SeqIx(0),
            (IteratorType::Latest, None) => {
                Position::SeqIx(self.storage.tip(&shard).await?.next_seq_ix)
            }
            (IteratorType::AtTimestamp, _) => {
                let Some(ts) = timestamp_ms else {
                    return Err(ApiError::new(
                        ErrorKind::InvalidArgument,
                        "Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. Current request has no timestamp parameter.",
                    ));
                };
                if ts > now {
                    return Err(ApiError::new(
                        ErrorKind::InvalidArgument,
                        format!("The timestampInMillis parameter cannot be greater than the currentTimestampInMillis. timestampInMillis: {ts}, currentTimestampInMillis: {now}"),
                    ));
                }
                Position::Timestamp(ts)
            }
        };
        Ok((shard, position))
    }

    pub async fn get_records(
        &self,
        iterator: &str,
        limit: Option<u32>,
    ) -> Result<RecordsOut, ApiError> {
        let it = self.decode_iterator(iterator)?;
        self.get_records_at(it, limit).await
    }

    /// A client's shard iterator, checked (AWS's invalid and expired errors).
    pub fn decode_iterator(&self, iterator: &str) -> Result<ShardIterator, ApiError> {
        let now = (self.now_ms)();
        self.iterators.decode(iterator, now).map_err(|e| match e {
            IteratorError::Invalid => {
                ApiError::new(ErrorKind::InvalidArgument, "Invalid ShardIterator.")
            }
            IteratorError::Expired(m) => ApiError::new(ErrorKind::ExpiredIterator, m),
        })
    }

    /// GetRecords from a decoded iterator.
    pub async fn get_records_at(
        &self,
        it: ShardIterator,
        limit: Option<u32>,
    ) -> Result<RecordsOut, ApiError> {
        let now = (self.now_ms)();
        let acct = &self.identity.account_id;
        let id = ShardId(it.shard_index);
        let missing = || {
            ApiError::new(
                ErrorKind::ResourceNotFound,
                format!(
                    "Shard {id} in stream {} under account {acct} does not exist",
                    it.stream_name
                ),
            )
        };
        let stream = self.stream(&it.stream_name).map_err(|_| missing())?;
        let shard = stream
            .shard(id)
            .filter(|s| s.uid == it.shard_uid)
            .ok_or_else(missing)?
            .clone();
        let from = match it.position {
            Position::SeqIx(x) => ReadFrom::SeqIx(x),
            Position::Timestamp(t) => ReadFrom::Timestamp(t),
        };
        let max_records = limit
            .map_or(GET_RECORDS_RECORDS_MAX, |l| l as usize)
            .min(GET_RECORDS_RECORDS_MAX);
        let limits = self.storage.shard_limits();
        if limits.is_some_and(|l| !l.admit_read(shard.uid)) {
            return Err(self.throttled(&shard, &it.stream_name));
        }
        let out = self
            .storage
            .read(&shard, from, max_records, GET_RECORDS_BYTES_MAX)
            .await?;
        if let Some(l) = limits {
            let bytes: usize = out
                .records
                .iter()
                .map(|r| r.data.len() + r.partition_key.len())
                .sum();
            l.charge_read(shard.uid, bytes as u64);
        }
        let millis_behind_latest = millis_behind(&out);
        let child_shards: Vec<ChildOut> = if out.shard_end {
            child_shards(&stream, id)
        } else {
            Vec::new()
        };
        // At the end of a closed shard the iterator ends and the children are named; until the
        // children are known (never, in one process) the reader keeps an iterator.
        let ended = out.shard_end && !child_shards.is_empty();
        let next_shard_iterator = (!ended).then(|| {
            self.iterators.encode(&ShardIterator {
                issued_ms: now,
                stream_name: it.stream_name.clone(),
                shard_uid: it.shard_uid,
                shard_index: it.shard_index,
                position: Position::SeqIx(out.next_seq_ix),
            })
        });
        Ok(RecordsOut {
            records: out.records,
            shard_created_ms: out.shard_created_ms,
            shard_index: id.0,
            next_shard_iterator,
            millis_behind_latest,
            child_shards,
        })
    }
}
