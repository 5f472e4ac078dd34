//! The front-end's [`StoragePlane`] in the embedded mode: calls into this process's storage
//! engine. Appends are submitted before the returned future is polled, so a PutRecords' appends
//! to several shards share group commits.
//!
//! Encryption at rest happens here, before records enter storage, so the group log (WAL) and
//! the shard segments both hold only sealed bytes ([`AtRest`]). Routing (MD5 of the partition
//! key) was done on the plaintext by the front-end before.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use anyhow::Context as _;
use bytes::Bytes;
use levee_frontend::backend::{
    AppendError, AppendSignals, Appended, BoxFuture, ReadFrom, ReadOut, StoragePlane, StoredRecord,
    Tip,
};
use levee_keys::Key;
use levee_map::ShardRoute;
use levee_protocol::{ApiError, ErrorKind};
use levee_storage::{Engine, Error, ShardUid};

pub struct LocalStorage {
    pub engine: Arc<Engine>,
    /// Per-shard limits (`--shard-limits aws`). Here, at the storage plane, because this process
    /// owns every shard; a storage node of a cluster holds its own.
    pub shard_limits: Option<Arc<levee_frontend::shard_limits::ShardLimiter>>,
    /// Woken after each committed append, for SubscribeToShard.
    pub signals: Arc<AppendSignals>,
    pub at_rest: Arc<AtRest>,
    /// Bytes and records appended per shard, for the ON_DEMAND autoscaler.
    pub write_counters: Arc<crate::autoscale::WriteCounters>,
}

/// The first byte of a sealed record's stored partition key. A partition key is a Unicode
/// string, and no UTF-8 text starts with 0xFF, so a plaintext record can never be taken for a
/// sealed one (and old plaintext records read back unchanged after encryption starts).
const SEALED_MARK: u8 = 0xFF;
/// The envelope's format version (the stored key's second byte).
const SEALED_FORMAT: u8 = 1;
/// Stored partition key of a sealed record: mark, format, data key version (u32 LE).
const SEALED_KEY_BYTES: usize = 6;

/// Encryption at rest: each encrypted stream's data keys, unwrapped in memory only.
///
/// A sealed record is stored as partition key `[0xFF, 1, version u32 LE]` and data
/// `seal(aad, pk_len u16 LE | partition key | data)` (XChaCha20-Poly1305, `levee-keys`), with
/// `aad = "levee-record-v1" | stream uid | shard uid | version` (all u64/u32 LE), so a record
/// cannot be moved to another shard or key unnoticed. Data keys are wrapped under the master
/// key (`--master-key-file`, outside the data directory) with
/// `aad = "levee-data-key-v1" | stream uid | version`; only the wrapped form is in the catalog.
/// The master key file is read the first time a stream is encrypted (or at start when one is).
pub struct AtRest {
    master_path: PathBuf,
    master: Mutex<Option<Arc<Key>>>,
    /// By stream uid. Bounded by the number of streams ever encrypted in the catalog.
    streams: RwLock<HashMap<u64, Arc<StreamKeys>>>,
}

struct StreamKeys {
    /// The version new records are sealed with; `None` when encryption is off.
    current: Option<u32>,
    keys: HashMap<u32, Key>,
}

fn record_aad(stream: u64, shard: u64, version: u32) -> Vec<u8> {
    let mut aad = b"levee-record-v1".to_vec();
    aad.extend_from_slice(&stream.to_le_bytes());
    aad.extend_from_slice(&shard.to_le_bytes());
    aad.extend_from_slice(&version.to_le_bytes());
    aad
}

/// Lower-case hex of `bytes` (how the catalog stores a wrapped data key).
pub fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

/// What the master key wraps a stream's data key `version` with.
pub fn data_key_aad(stream: u64, version: u32) -> Vec<u8> {
    let mut aad = b"levee-data-key-v1".to_vec();
    aad.extend_from_slice(&stream.to_le_bytes());
    aad.extend_from_slice(&version.to_le_bytes());
    aad
}

impl AtRest {
    pub fn new(master_path: PathBuf) -> AtRest {
        AtRest {
            master_path,
            master: Mutex::new(None),
            streams: RwLock::new(HashMap::new()),
        }
    }

    /// The master key, loaded (or created) on first use.
    pub fn master(&self) -> anyhow::Result<Arc<Key>> {
        let mut guard = self.master.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = guard.as_ref() {
            return Ok(k.clone());
        }
        let key = Arc::new(
            levee_keys::load_or_create_master_key(&self.master_path)
                .with_context(|| format!("master key {}", self.master_path.display()))?,
        );
        *guard = Some(key.clone());
        Ok(key)
    }

    /// Brings one stream's keys up to date with the catalog (after Start/StopStreamEncryption
    /// and at start). Streams that never had a key need nothing, not even the master key.
    pub fn sync_stream(&self, s: &levee_catalog::Stream) -> anyhow::Result<()> {
        let keys: Vec<levee_map::WrappedKey> = s
            .data_keys
            .iter()
            .map(|k| levee_map::WrappedKey {
                version: k.version,
                wrapped_hex: k.wrapped_hex.clone(),
                master_fingerprint: k.master_fingerprint.clone(),
            })
            .collect();
        self.sync_keys(
            s.uid,
            &s.name,
            s.current_data_key().map(|k| k.version),
            &keys,
        )
    }

    /// Brings one stream's keys up to date with what the map carries (a fleet storage node).
    pub fn sync_facts(
        &self,
        uid: u64,
        name: &str,
        facts: &levee_map::StreamFacts,
    ) -> anyhow::Result<()> {
        let current = facts
            .key_id
            .as_ref()
            .and_then(|_| facts.data_keys.iter().map(|k| k.version).max());
        self.sync_keys(uid, name, current, &facts.data_keys)
    }

    fn sync_keys(
        &self,
        uid: u64,
        name: &str,
        current: Option<u32>,
        data_keys: &[levee_map::WrappedKey],
    ) -> anyhow::Result<()> {
        if data_keys.is_empty() {
            self.streams
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&uid);
            return Ok(());
        }
        let known = self.keys(uid);
        let mut keys = HashMap::new();
        for dk in data_keys {
            if let Some(k) = known.as_ref().and_then(|k| k.keys.get(&dk.version)) {
                keys.insert(dk.version, k.clone());
                continue;
            }
            let master = self.master()?;
            anyhow::ensure!(
                master.fingerprint() == dk.master_fingerprint,
                "stream {}: data key {} was wrapped by master key {}, but {} holds {}",
                name,
                dk.version,
                dk.master_fingerprint,
                self.master_path.display(),
                master.fingerprint()
            );
            let wrapped = hex_decode(&dk.wrapped_hex).context("wrapped data key is not hex")?;
            let key = master
                .unwrap_key(&data_key_aad(uid, dk.version), &wrapped)
                .map_err(|e| anyhow::anyhow!("unwrapping data key {}: {e}", dk.version))?;
            keys.insert(dk.version, key);
        }
        if known
            .as_ref()
            .is_some_and(|k| k.current == current && k.keys.len() == keys.len())
        {
            return Ok(());
        }
        self.streams
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(uid, Arc::new(StreamKeys { current, keys }));
        Ok(())
    }

    fn keys(&self, stream: u64) -> Option<Arc<StreamKeys>> {
        self.streams
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&stream)
            .cloned()
    }

    /// The records as storage should hold them, and whether they were sealed.
    fn seal(
        &self,
        stream: u64,
        shard: u64,
        records: Vec<(Bytes, Bytes)>,
    ) -> (Vec<(Bytes, Bytes)>, bool) {
        let Some(keys) = self.keys(stream) else {
            return (records, false);
        };
        let Some((version, key)) = keys.current.and_then(|v| keys.keys.get(&v).map(|k| (v, k)))
        else {
            return (records, false);
        };
        let aad = record_aad(stream, shard, version);
        let mut stored_key = vec![SEALED_MARK, SEALED_FORMAT];
        stored_key.extend_from_slice(&version.to_le_bytes());
        let stored_key = Bytes::from(stored_key);
        let sealed = records
            .into_iter()
            .map(|(pk, data)| {
                // Partition keys are at most 256 characters (1 KiB of UTF-8): u16 holds them.
                let pk_len = u16::try_from(pk.len()).unwrap_or(u16::MAX);
                let mut plain = Vec::with_capacity(2 + pk.len() + data.len());
                plain.extend_from_slice(&pk_len.to_le_bytes());
                plain.extend_from_slice(&pk);
                plain.extend_from_slice(&data);
                (stored_key.clone(), Bytes::from(key.seal(&aad, &plain)))
            })
            .collect();
        (sealed, true)
    }

    /// A stored record as the client sent it, and whether it was sealed.
    fn open(
        &self,
        stream: u64,
        shard: u64,
        pk: Bytes,
        data: Bytes,
    ) -> Result<(Bytes, Bytes, bool), ApiError> {
        if pk.first() != Some(&SEALED_MARK) {
            return Ok((pk, data, false));
        }
        let fail = |why: &str| {
            tracing::error!(stream, shard, why, "sealed record does not open");
            ApiError::new(ErrorKind::InternalFailure, "Internal service failure.")
        };
        if pk.len() != SEALED_KEY_BYTES || pk.get(1) != Some(&SEALED_FORMAT) {
            return Err(fail("unknown envelope"));
        }
        let mut v = [0u8; 4];
        v.copy_from_slice(&pk[2..SEALED_KEY_BYTES]);
        let version = u32::from_le_bytes(v);
        let keys = self
            .keys(stream)
            .ok_or_else(|| fail("no keys for stream"))?;
        let key = keys
            .keys
            .get(&version)
            .ok_or_else(|| fail("no such key version"))?;
        let plain = key
            .open(&record_aad(stream, shard, version), &data)
            .map_err(|_| fail("authentication failed"))?;
        let pk_len = plain
            .get(..2)
            .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])))
            .ok_or_else(|| fail("short plaintext"))?;
        let body = plain.get(2..).ok_or_else(|| fail("short plaintext"))?;
        if body.len() < pk_len {
            return Err(fail("short plaintext"));
        }
        let plain = Bytes::from(plain);
        Ok((plain.slice(2..2 + pk_len), plain.slice(2 + pk_len..), true))
    }
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
    fn shard_limits(&self) -> Option<&levee_frontend::shard_limits::ShardLimiter> {
        self.shard_limits.as_deref()
    }

    fn append(
        &self,
        shard: &ShardRoute,
        records: Vec<(Bytes, Bytes)>,
    ) -> BoxFuture<Result<Appended, AppendError>> {
        let uid = ShardUid(shard.uid);
        let info = self.engine.shard_info(uid);
        let created = info.as_ref().map(|i| i.created_ms).map_err(Clone::clone);
        let bytes: usize = records.iter().map(|(k, d)| k.len() + d.len()).sum();
        self.write_counters
            .record(shard.uid, bytes as u64, records.len() as u64);
        let (records, encrypted) = match &info {
            Ok(i) => self.at_rest.seal(i.stream.0, shard.uid, records),
            Err(_) => (records, false),
        };
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
                encrypted,
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
        let at_rest = self.at_rest.clone();
        let uid = ShardUid(shard.uid);
        Box::pin(async move {
            let info = engine.shard_info(uid).map_err(to_api)?;
            let (created, stream) = (info.created_ms, info.stream.0);
            let from = match from {
                ReadFrom::SeqIx(x) => levee_storage::ReadFrom::SeqIx(x),
                ReadFrom::Timestamp(t) => levee_storage::ReadFrom::Timestamp(t),
            };
            let b = engine
                .read_async(uid, from, max_records, max_bytes)
                .await
                .map_err(to_api)?;
            let records = b
                .records
                .into_iter()
                .map(|r| {
                    let (partition_key, data, encrypted) =
                        at_rest.open(stream, uid.0, r.partition_key, r.data)?;
                    Ok(StoredRecord {
                        seq_ix: r.seq_ix,
                        arrival_ms: r.arrival_ms,
                        partition_key,
                        data,
                        encrypted,
                    })
                })
                .collect::<Result<Vec<_>, ApiError>>()?;
            Ok(ReadOut {
                records,
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
