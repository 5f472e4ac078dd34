//! The storage engine's API: one group log and one shard store behind create/append/read/close.
//!
//! Writes take two steps. [`Engine::append`] assigns sequence indexes and the arrival time under
//! the shard's lock and queues the command in the group log without blocking (a full queue is an
//! immediate [`Error::Overloaded`]); the returned [`Ticket`] resolves once the command is durable
//! and applied. Because assignment and queueing happen under one lock, a shard's entries reach the
//! log in sequence order.
//!
//! Reads ([`Engine::read`]) are blocking file I/O on the caller's thread: async callers use
//! [`Engine::read_async`], which runs them on tokio's blocking pool, capped by the runtime (see
//! [`crate::runtime`]).

use std::collections::HashMap;
use std::future::{Future, IntoFuture};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::clock::Clock;
use crate::command::{encode_append, patch_append, Command};
use crate::error::{Error, Result};
use crate::store::{ReadBatch, ReadFrom, ShardInfo, Store, StoreConfig};
use crate::vfs::Vfs;
use crate::wal::{Ack, Applier, GroupLog, GroupLogConfig};
use crate::{ShardUid, StreamUid};
use levee_map::seqnum::SEQ_IX_MAX;

/// Largest partition key in bytes (Kinesis allows 256 characters of UTF-8).
pub const PARTITION_KEY_BYTES_MAX: usize = 1024;

/// Configuration of one engine (one replica group's storage on this node).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub log: GroupLogConfig,
    pub store: StoreConfig,
    /// Term written with every entry (the Raft term once replication arrives).
    pub term: u64,
}

impl EngineConfig {
    /// Defaults for a data directory: the log in `<dir>/wal`, shards in `<dir>/shards`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        Self {
            log: GroupLogConfig::new(dir.join("wal")),
            store: StoreConfig::new(dir),
            term: 0,
        }
    }
}

/// A write that has been queued: its outcome arrives once it is durable and applied.
/// Await it in async code, or call [`Ticket::wait`] outside a runtime.
#[must_use = "a ticket must be awaited to learn whether the write is durable"]
pub struct Ticket<T> {
    ack: Ack,
    value: T,
}

impl<T: Send + 'static> Ticket<T> {
    /// Blocks the current thread until the write is durable. Must not be called from inside an
    /// async runtime.
    pub fn wait(self) -> Result<T> {
        match self.ack.blocking_recv() {
            Ok(Ok(_)) => Ok(self.value),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::Closed),
        }
    }
}

impl<T: Send + 'static> IntoFuture for Ticket<T> {
    type Output = Result<T>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<T>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            match self.ack.await {
                Ok(Ok(_)) => Ok(self.value),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(Error::Closed),
            }
        })
    }
}

/// What an append was given: its records are `first_seq_ix .. first_seq_ix + count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub first_seq_ix: u64,
    pub count: u32,
    pub arrival_ms: u64,
}

/// A snapshot of the engine's counters.
#[derive(Debug, Clone, Default)]
pub struct EngineStats {
    pub log_batches: u64,
    pub log_entries: u64,
    pub log_syncs: u64,
    pub log_bytes_written: u64,
    pub log_sync_nanos_total: u64,
    pub log_batch_entries_max: u64,
    pub log_checkpoints: u64,
    pub log_queue_depth: u64,
    pub log_shed: u64,
    pub recovery_bytes_read: u64,
    pub records_applied: u64,
    pub segments_sealed: u64,
    pub segments_deleted: u64,
    pub open_files: u64,
    pub file_opens: u64,
    pub corruptions: u64,
}

/// The submit-side registry: streams and shards as of what has been queued, so that control
/// commands are validated against commands not yet applied.
#[derive(Default)]
struct Registry {
    streams: HashMap<StreamUid, u64>,
    shards: HashMap<ShardUid, StreamUid>,
}

pub struct Engine {
    store: Arc<Store>,
    log: Option<GroupLog>,
    clock: Arc<dyn Clock>,
    registry: Mutex<Registry>,
    term: u64,
}

impl Engine {
    /// Opens (recovering if needed) the engine in its directories.
    pub fn open(cfg: EngineConfig, vfs: Arc<dyn Vfs>, clock: Arc<dyn Clock>) -> Result<Engine> {
        let (store, resume) = Store::open(cfg.store, vfs.clone(), clock.clone())?;
        let store = Arc::new(store);
        let applier: Arc<dyn Applier> = store.clone();
        let log = GroupLog::open(cfg.log, vfs, resume, applier)?;
        store.finish_recovery()?;
        let mut registry = Registry::default();
        for (stream, retention) in store.streams() {
            registry.streams.insert(stream, retention);
            for shard in store.shards_of(stream) {
                registry.shards.insert(shard.uid, stream);
            }
        }
        Ok(Engine {
            store,
            log: Some(log),
            clock,
            registry: Mutex::new(registry),
            term: cfg.term,
        })
    }

    fn log(&self) -> Result<&GroupLog> {
        self.log.as_ref().ok_or(Error::Closed)
    }

    fn submit_command(&self, cmd: Command<'_>) -> Result<Ack> {
        self.log()?.submit(self.term, cmd.encode())
    }

    /// Creates a stream with a retention period.
    pub fn create_stream(&self, stream: StreamUid, retention_ms: u64) -> Result<Ticket<()>> {
        let mut reg = self.registry.lock();
        if reg.streams.contains_key(&stream) {
            return Err(Error::StreamExists(stream));
        }
        let ack = self.submit_command(Command::PutStream {
            stream,
            retention_ms,
        })?;
        reg.streams.insert(stream, retention_ms);
        Ok(Ticket { ack, value: () })
    }

    /// Changes a stream's retention period; retention is enforced from the new value on.
    pub fn set_retention(&self, stream: StreamUid, retention_ms: u64) -> Result<Ticket<()>> {
        let mut reg = self.registry.lock();
        if !reg.streams.contains_key(&stream) {
            return Err(Error::StreamNotFound(stream));
        }
        let ack = self.submit_command(Command::PutStream {
            stream,
            retention_ms,
        })?;
        reg.streams.insert(stream, retention_ms);
        Ok(Ticket { ack, value: () })
    }

    /// Deletes a stream and all its shards' data.
    pub fn drop_stream(&self, stream: StreamUid) -> Result<Ticket<()>> {
        let mut reg = self.registry.lock();
        if !reg.streams.contains_key(&stream) {
            return Err(Error::StreamNotFound(stream));
        }
        for shard in self.store.shards_of(stream) {
            shard.assigned.lock().closed = true;
        }
        let ack = self.submit_command(Command::DropStream { stream })?;
        reg.streams.remove(&stream);
        reg.shards.retain(|_, s| *s != stream);
        Ok(Ticket { ack, value: () })
    }

    /// Creates an empty, open shard of a stream. Its creation time is now.
    pub fn create_shard(
        &self,
        shard: ShardUid,
        stream: StreamUid,
        shard_index: u32,
    ) -> Result<Ticket<()>> {
        self.create_shard_at(shard, stream, shard_index, self.clock.now_ms())
    }

    /// Creates an empty, open shard with the creation time the catalog recorded (sequence
    /// numbers carry it, so both must agree).
    pub fn create_shard_at(
        &self,
        shard: ShardUid,
        stream: StreamUid,
        shard_index: u32,
        created_ms: u64,
    ) -> Result<Ticket<()>> {
        let mut reg = self.registry.lock();
        if !reg.streams.contains_key(&stream) {
            return Err(Error::StreamNotFound(stream));
        }
        if reg.shards.contains_key(&shard) {
            return Err(Error::ShardExists(shard));
        }
        let ack = self.submit_command(Command::CreateShard {
            shard,
            stream,
            shard_index,
            created_ms,
        })?;
        reg.shards.insert(shard, stream);
        Ok(Ticket { ack, value: () })
    }

    /// Closes a shard: later appends fail with [`Error::ShardClosed`]; reads reach `shard_end`
    /// after its last record. Returns the shard's final next sequence index.
    pub fn close_shard(&self, shard: ShardUid) -> Result<Ticket<u64>> {
        let s = self.store.shard(shard)?;
        let mut a = s.assigned.lock();
        if a.closed {
            return Err(Error::ShardClosed(shard));
        }
        let ack = self.submit_command(Command::CloseShard { shard })?;
        a.closed = true;
        Ok(Ticket {
            ack,
            value: a.next_seq_ix,
        })
    }

    /// Appends records `(partition key, data)` to a shard. Never blocks; see [`Ticket`].
    pub fn append(&self, shard: ShardUid, records: &[(&[u8], &[u8])]) -> Result<Ticket<Appended>> {
        let count = u32::try_from(records.len())
            .map_err(|_| Error::Invalid("too many records in one append".into()))?;
        if let Some((k, _)) = records
            .iter()
            .find(|(k, _)| k.len() > PARTITION_KEY_BYTES_MAX)
        {
            return Err(Error::Invalid(format!(
                "partition key of {} bytes exceeds {PARTITION_KEY_BYTES_MAX}",
                k.len()
            )));
        }
        let s = self.store.shard(shard)?;
        let mut payload = encode_append(shard, records.iter().copied());
        let mut a = s.assigned.lock();
        if a.closed {
            return Err(Error::ShardClosed(shard));
        }
        let first_seq_ix = a.next_seq_ix;
        if first_seq_ix.saturating_add(u64::from(count)) > SEQ_IX_MAX {
            return Err(Error::Invalid(format!(
                "{shard} has used every sequence number"
            )));
        }
        let arrival_ms = self.clock.now_ms().max(a.last_arrival_ms);
        patch_append(&mut payload, first_seq_ix, arrival_ms);
        let ack = self.log()?.submit(self.term, payload)?;
        a.next_seq_ix += u64::from(count);
        a.last_arrival_ms = arrival_ms;
        Ok(Ticket {
            ack,
            value: Appended {
                first_seq_ix,
                count,
                arrival_ms,
            },
        })
    }

    /// Reads a shard (blocking file I/O). See [`ReadBatch`].
    pub fn read(
        &self,
        shard: ShardUid,
        from: ReadFrom,
        max_records: usize,
        max_bytes: u64,
    ) -> Result<ReadBatch> {
        let s = self.store.shard(shard)?;
        self.store.read(&s, from, max_records, max_bytes)
    }

    /// [`Engine::read`] on tokio's blocking pool.
    pub async fn read_async(
        self: &Arc<Self>,
        shard: ShardUid,
        from: ReadFrom,
        max_records: usize,
        max_bytes: u64,
    ) -> Result<ReadBatch> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.read(shard, from, max_records, max_bytes))
            .await
            .map_err(|_| Error::Closed)?
    }

    pub fn shard_info(&self, shard: ShardUid) -> Result<ShardInfo> {
        let s = self.store.shard(shard)?;
        Ok(self.store.info(&s))
    }

    /// Every stream with its retention period (ms), as queued.
    pub fn streams(&self) -> Vec<(StreamUid, u64)> {
        let mut v: Vec<(StreamUid, u64)> = self
            .registry
            .lock()
            .streams
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect();
        v.sort();
        v
    }

    pub fn shards_of(&self, stream: StreamUid) -> Vec<ShardInfo> {
        let mut v: Vec<ShardInfo> = self
            .store
            .shards_of(stream)
            .iter()
            .map(|s| self.store.info(s))
            .collect();
        v.sort_by_key(|i| i.uid);
        v
    }

    /// Deletes segments past their stream's retention; returns how many were deleted. When it
    /// deletes anything it checkpoints, so that a restart does not replay expired appends from
    /// the log back into the store.
    pub fn enforce_retention(&self) -> Result<usize> {
        let deleted = self.store.enforce_retention()?;
        if deleted > 0 {
            self.checkpoint()?;
        }
        Ok(deleted)
    }

    /// Bytes on disk of a stream's shard files.
    pub fn disk_usage_bytes(&self, stream: StreamUid) -> Result<u64> {
        self.store.disk_usage_bytes(stream)
    }

    /// Checkpoints now: syncs the shard store, writes the manifest and releases the log.
    pub fn checkpoint(&self) -> Result<()> {
        self.log()?.checkpoint()
    }

    /// Why the engine refuses writes, if it does.
    pub fn poisoned(&self) -> Option<String> {
        self.log.as_ref().and_then(|l| l.poisoned())
    }

    pub fn stats(&self) -> EngineStats {
        let mut s = EngineStats::default();
        if let Some(log) = &self.log {
            let l = log.stats();
            s.log_batches = l.batches.load(Ordering::Relaxed);
            s.log_entries = l.entries.load(Ordering::Relaxed);
            s.log_syncs = l.syncs.load(Ordering::Relaxed);
            s.log_bytes_written = l.bytes_written.load(Ordering::Relaxed);
            s.log_sync_nanos_total = l.sync_nanos_total.load(Ordering::Relaxed);
            s.log_batch_entries_max = l.batch_entries_max.load(Ordering::Relaxed);
            s.log_checkpoints = l.checkpoints.load(Ordering::Relaxed);
            s.log_shed = l.shed.load(Ordering::Relaxed);
            s.recovery_bytes_read = l.recovery_bytes_read.load(Ordering::Relaxed);
            s.log_queue_depth = log.queue_depth() as u64;
        }
        let st = &self.store.stats;
        s.records_applied = st.records_applied.load(Ordering::Relaxed);
        s.segments_sealed = st.segments_sealed.load(Ordering::Relaxed);
        s.segments_deleted = st.segments_deleted.load(Ordering::Relaxed);
        s.file_opens = self.store.file_opens();
        s.open_files = self.store.open_files() as u64;
        s.corruptions = st.corruptions.load(Ordering::Relaxed);
        s
    }

    /// Writes what is queued, checkpoints, and stops.
    pub fn close(mut self) -> Result<()> {
        match self.log.take() {
            Some(log) => log.close(),
            None => Ok(()),
        }
    }

    /// Stops after writing what is queued, without a checkpoint: the state a crash right after
    /// the last acknowledgement leaves (used by tests of recovery).
    pub fn halt(mut self) {
        if let Some(log) = self.log.take() {
            log.halt();
        }
    }
}
