//! The interfaces the front-end calls, and the map holder it routes by. The front-end knows the
//! control plane and the storage nodes only through these traits: in the embedded mode they are
//! in-process adapters, in a fleet they will be network clients. It never depends on the storage
//! or catalog crates (a test checks `cargo metadata`).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use levee_map::{MapDelta, MapError, ShardMap, ShardRoute};
use levee_protocol::{ApiError, Request, WireFormat};

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Where a read starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrom {
    SeqIx(u64),
    Timestamp(u64),
}

/// A record as a storage node returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub seq_ix: u64,
    pub arrival_ms: u64,
    pub partition_key: Bytes,
    pub data: Bytes,
    /// It was stored encrypted at rest (GetRecords reports `EncryptionType` `KMS`).
    pub encrypted: bool,
}

/// The result of an append: records got `first_seq_ix ..` in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub first_seq_ix: u64,
    pub arrival_ms: u64,
    /// The shard's creation time, part of every sequence number.
    pub shard_created_ms: u64,
    /// The records were stored encrypted at rest (PutRecord(s) report `EncryptionType` `KMS`).
    pub encrypted: bool,
}

/// The result of a read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOut {
    pub records: Vec<StoredRecord>,
    pub next_seq_ix: u64,
    pub shard_end: bool,
    /// The shard's last arrival time and next sequence index when the read started.
    pub tip_arrival_ms: u64,
    pub tip_next_seq_ix: u64,
    pub shard_created_ms: u64,
}

/// A shard's current end, for LATEST iterators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tip {
    pub next_seq_ix: u64,
    pub shard_created_ms: u64,
}

/// Why an append was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendError {
    /// The shard no longer takes writes here (closed by a reshard, or moved): the caller's map
    /// is stale and the write must be routed again by a newer one (rule R4: a stale map costs
    /// a redirect, never a lost or misrouted write).
    Stale,
    /// A Kinesis error for the client.
    Api(ApiError),
}

impl From<ApiError> for AppendError {
    fn from(e: ApiError) -> Self {
        AppendError::Api(e)
    }
}

/// The storage nodes, as the front-end sees them. Errors are already Kinesis errors.
pub trait StoragePlane: Send + Sync + 'static {
    fn append(
        &self,
        shard: &ShardRoute,
        records: Vec<(Bytes, Bytes)>,
    ) -> BoxFuture<Result<Appended, AppendError>>;
    fn read(
        &self,
        shard: &ShardRoute,
        from: ReadFrom,
        max_records: usize,
        max_bytes: u64,
    ) -> BoxFuture<Result<ReadOut, ApiError>>;
    fn tip(&self, shard: &ShardRoute) -> BoxFuture<Result<Tip, ApiError>>;
    /// A signal that changes after every append to `shard` is committed: what wakes a
    /// SubscribeToShard push instead of polling. (A shard's close reaches subscribers as a new
    /// shard map, through [`MapHolder::watch`].)
    fn append_signal(&self, shard: &ShardRoute) -> tokio::sync::watch::Receiver<()>;
    /// The shard owner's per-shard throughput limits (`--shard-limits aws`), if it enforces them.
    fn shard_limits(&self) -> Option<&crate::shard_limits::ShardLimiter> {
        None
    }
}

/// Per-shard "something was appended" signals, kept only for shards someone is watching.
/// Notifying a shard nobody watches costs one map lookup under a read lock.
#[derive(Debug, Default)]
pub struct AppendSignals {
    senders: RwLock<HashMap<u64, tokio::sync::watch::Sender<()>>>,
}

impl AppendSignals {
    /// Wakes every watcher of shard `uid`.
    pub fn notify(&self, uid: u64) {
        let senders = self.senders.read().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = senders.get(&uid) {
            tx.send_replace(());
        }
    }

    /// A receiver for shard `uid`. Signals of shards nobody watches any more are dropped here,
    /// so the map holds at most one entry per watched shard.
    pub fn watch(&self, uid: u64) -> tokio::sync::watch::Receiver<()> {
        let mut senders = self.senders.write().unwrap_or_else(|p| p.into_inner());
        senders.retain(|_, tx| tx.receiver_count() > 0);
        senders
            .entry(uid)
            .or_insert_with(|| tokio::sync::watch::channel(()).0)
            .subscribe()
    }

    /// Shards being watched (for metrics and tests).
    pub fn watched(&self) -> usize {
        let senders = self.senders.read().unwrap_or_else(|p| p.into_inner());
        senders
            .values()
            .filter(|tx| tx.receiver_count() > 0)
            .count()
    }
}

/// A registered stream consumer, as SubscribeToShard needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerInfo {
    pub consumer_name: String,
    pub consumer_arn: String,
    pub stream_name: String,
    pub active: bool,
    pub created_ms: u64,
}

/// A control call as the client sent it: what a fleet front-end forwards whole (the body as
/// it came, and who signed it).
#[derive(Debug, Clone)]
pub struct CallContext {
    pub op: levee_protocol::Operation,
    pub format: WireFormat,
    pub body: Bytes,
    pub caller: Option<crate::auth::Caller>,
}

/// The control plane, as the front-end sees it: control operations are forwarded whole (all but
/// ListShards, DescribeStream and DescribeStreamSummary, which the front-end answers from its
/// map).
pub trait ControlPlane: Send + Sync + 'static {
    /// Runs a control operation (decoded as `request`, sent as `call`) and returns its encoded
    /// response in `call.format`.
    fn call(&self, request: Request, call: CallContext) -> BoxFuture<Result<Vec<u8>, ApiError>>;
    /// Looks up a consumer by ARN (AWS's validation and not-found errors).
    fn consumer(&self, consumer_arn: &str) -> BoxFuture<Result<ConsumerInfo, ApiError>>;
}

/// The front-end's current shard map. A new map is built beside the live one and swapped in
/// only when valid; the last good map stays in use otherwise (F3).
#[derive(Debug)]
pub struct MapHolder {
    current: RwLock<Arc<ShardMap>>,
    /// The version of the live map; changes wake readers waiting for a shard to close.
    version: tokio::sync::watch::Sender<u64>,
    /// Serializes swaps so versions reach `version` in order.
    swap_lock: Mutex<()>,
    /// Asks the map follower for a snapshot now (a storage node said a route is stale).
    refresh: tokio::sync::Notify,
}

impl Default for MapHolder {
    fn default() -> Self {
        Self {
            current: RwLock::new(Arc::new(ShardMap::empty())),
            version: tokio::sync::watch::channel(0).0,
            swap_lock: Mutex::new(()),
            refresh: tokio::sync::Notify::new(),
        }
    }
}

impl MapHolder {
    pub fn current(&self) -> Arc<ShardMap> {
        match self.current.read() {
            Ok(m) => m.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn swap(&self, next: ShardMap) {
        let version = next.version();
        {
            let mut guard = match self.current.write() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            *guard = Arc::new(next);
        }
        self.version.send_replace(version);
    }

    /// Asks whoever keeps this map current for a newer one at once: a storage node refused a
    /// route as stale (R4), so the delta feed may be behind. Requests coalesce.
    pub fn request_refresh(&self) {
        self.refresh.notify_one();
    }

    /// Resolves when a refresh was requested.
    pub async fn refresh_requested(&self) {
        self.refresh.notified().await
    }

    /// A receiver that changes whenever a new map is swapped in.
    pub fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// Installs a full snapshot if it verifies and is newer than the current map.
    pub fn install(&self, map: ShardMap) -> Result<(), MapError> {
        map.verify()?;
        let _serial = self.swap_lock.lock().unwrap_or_else(|p| p.into_inner());
        if map.version() > self.current().version() {
            self.swap(map);
        }
        Ok(())
    }

    /// Swaps in `next` if it is newer than the live map (the [`crate::map_follow::MapKeeper`]
    /// has validated and persisted it).
    /// Returns the map it replaced, so the caller (off the request path) can keep it until
    /// in-flight requests are done with it and free it there: freeing a 100,000-shard map
    /// takes milliseconds a request should not pay.
    pub(crate) fn replace(&self, next: Arc<ShardMap>) -> Option<Arc<ShardMap>> {
        let _serial = self.swap_lock.lock().unwrap_or_else(|p| p.into_inner());
        if next.version() > self.current().version() {
            let version = next.version();
            let old = std::mem::replace(
                &mut *self.current.write().unwrap_or_else(|p| p.into_inner()),
                next,
            );
            self.version.send_replace(version);
            return Some(old);
        }
        None
    }

    /// Applies a delta to the current map; on any error the current map stays.
    pub fn apply(&self, delta: &MapDelta) -> Result<(), MapError> {
        let _serial = self.swap_lock.lock().unwrap_or_else(|p| p.into_inner());
        let next = self.current().apply(delta)?;
        self.swap(next);
        Ok(())
    }
}
