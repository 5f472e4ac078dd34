//! openraft's log storage on the storage engine's group log.
//!
//! Each Raft entry is one group-log entry in an explicit-index log
//! ([`GroupLog::open_explicit`]): at the entry's Raft index, with its term, its payload the
//! entry serialized as JSON (`openraft::Entry<TypeConfig>`). What openraft asks of a log store
//! maps onto the group log like this:
//!
//! - `append(entries, callback)` queues the entries at their indexes ([`GroupLog::submit_at`]);
//!   they are readable at once, and the callback fires when group commit has made their batch
//!   durable (`fdatasync`). Appends larger than one batch are split; batches are written in
//!   order and any failed write poisons an explicit-mode log, so the last chunk's
//!   acknowledgement covers all of them.
//! - `truncate(log_id)` writes a batch of zero entries at `log_id.index` and waits until it is
//!   durable: the later batch wins, so recovery never resurrects a truncated suffix.
//! - `purge(log_id)` first records the purged log id durably, then releases whole log segments
//!   at or below it ([`GroupLog::release_through`]).
//! - The vote, the committed log id and the last purged log id live in the record
//!   `<dir>/raft-meta` (see [`levee_storage::record_file`]), JSON in a CRC-protected record that
//!   is replaced atomically and synced on every change. The log itself is in `<dir>/log/`.
//!
//! Writes are serialized the way openraft requires: openraft calls these methods one at a time
//! (`&mut self`), the group log writes batches in submission order, and the record is synced
//! before a vote or purge call returns.

use std::fmt::Debug;
use std::ops::{Bound, Range, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use levee_storage::record_file;
use levee_storage::vfs::Vfs;
use levee_storage::wal::{GroupLog, GroupLogConfig, ENTRY_HEADER_BYTES};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, RaftLogReader, StorageIOError, Vote};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::{Entry, LogId, StorageError, TypeConfig};

/// Name of the record holding the vote, committed and purged log ids.
const META_RECORD: &str = "raft-meta";
/// Directory of the group log under the store's directory.
const LOG_DIR: &str = "log";
/// Payload bytes `limited_get_log_entries` returns at most (at least one entry).
pub const LOG_READ_BYTES_MAX: u64 = 4 << 20;

/// Errors opening a log store.
#[derive(Debug, thiserror::Error)]
pub enum LogStoreError {
    #[error("raft log storage: {0}")]
    Storage(#[from] levee_storage::Error),
    #[error("raft metadata record {path} does not decode: {detail}")]
    Meta { path: PathBuf, detail: String },
}

/// The durable metadata beside the log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Meta {
    vote: Option<Vote<u64>>,
    committed: Option<LogId>,
    last_purged: Option<LogId>,
}

struct Inner {
    dir: PathBuf,
    vfs: Arc<dyn Vfs>,
    log: GroupLog,
    /// The last durable metadata; changed only after the record is written.
    meta: Mutex<Meta>,
    /// Largest encoded size of one group-log submission.
    batch_bytes_max: u64,
}

/// openraft's log store on a group log. Cloning gives another handle on the same log (openraft's
/// log readers are clones).
#[derive(Clone)]
pub struct GroupLogStore {
    inner: Arc<Inner>,
}

fn io_err(e: impl std::error::Error + 'static) -> AnyError {
    AnyError::new(&e)
}

impl GroupLogStore {
    /// A group-log configuration suited to the catalog's log in `dir` (small segments: catalog
    /// commands are a few hundred bytes).
    pub fn catalog_log_config(dir: &Path) -> GroupLogConfig {
        let mut cfg = GroupLogConfig::new(dir.join(LOG_DIR));
        cfg.segment_bytes = 4 << 20;
        cfg.batch_bytes_max = 1 << 20;
        cfg.entry_bytes_max = 1 << 20;
        cfg
    }

    /// Opens (recovering) the log store in `dir` with `log_cfg` (whose `dir` should be
    /// `dir/log`; see [`GroupLogStore::catalog_log_config`]). Entries at or below the recorded
    /// purge point are forgotten again.
    pub fn open(
        dir: &Path,
        log_cfg: GroupLogConfig,
        vfs: Arc<dyn Vfs>,
    ) -> Result<GroupLogStore, LogStoreError> {
        vfs.create_dir_all(dir)
            .map_err(|e| levee_storage::Error::Io {
                op: "create directory",
                path: dir.to_path_buf(),
                source: Arc::new(e),
            })?;
        let meta = match record_file::read(&*vfs, dir, META_RECORD)? {
            None => Meta::default(),
            Some(body) => serde_json::from_slice(&body).map_err(|e| LogStoreError::Meta {
                path: dir.join(META_RECORD),
                detail: e.to_string(),
            })?,
        };
        let batch_bytes_max = log_cfg.batch_bytes_max;
        let log = GroupLog::open_explicit(log_cfg, vfs.clone())?;
        if let Some(purged) = &meta.last_purged {
            log.release_through(purged.index)?;
        }
        Ok(GroupLogStore {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                vfs,
                log,
                meta: Mutex::new(meta),
                batch_bytes_max,
            }),
        })
    }

    /// The group log underneath (for its stats and poisoning state).
    pub fn group_log(&self) -> &GroupLog {
        &self.inner.log
    }

    /// Writes `meta` durably, then makes it the current metadata.
    fn save_meta(&self, change: impl FnOnce(&mut Meta)) -> Result<(), AnyError> {
        // Calls are serialized by openraft (`&mut self`); the lock only guards readers.
        let mut next = self.inner.meta.lock().clone();
        change(&mut next);
        let body = serde_json::to_vec(&next).map_err(io_err)?;
        record_file::write(&*self.inner.vfs, &self.inner.dir, META_RECORD, &body)
            .map_err(io_err)?;
        *self.inner.meta.lock() = next;
        Ok(())
    }

    fn read_entries(&self, range: Range<u64>, bytes_max: u64) -> Result<Vec<Entry>, StorageError> {
        let raw = self
            .inner
            .log
            .read(range, bytes_max)
            .map_err(|e| StorageIOError::read_logs(io_err(e)))?;
        raw.into_iter()
            .map(|r| {
                let entry: Entry = serde_json::from_slice(&r.payload)
                    .map_err(|e| StorageIOError::read_log_at_index(r.index, io_err(e)))?;
                if entry.log_id.index != r.index || entry.log_id.leader_id.term != r.term {
                    return Err(StorageIOError::read_log_at_index(
                        r.index,
                        AnyError::error(format!(
                            "group log entry {} (term {}) holds Raft entry {}",
                            r.index, r.term, entry.log_id
                        )),
                    )
                    .into());
                }
                Ok(entry)
            })
            .collect()
    }

    fn last_log_id(&self) -> Result<Option<LogId>, StorageError> {
        let Some((_, (last, _))) = self.inner.log.bounds() else {
            return Ok(None);
        };
        Ok(self
            .read_entries(last..last.saturating_add(1), u64::MAX)?
            .pop()
            .map(|e| e.log_id))
    }
}

fn to_range(range: &impl RangeBounds<u64>) -> Range<u64> {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.saturating_add(1),
        Bound::Excluded(&e) => e,
        Bound::Unbounded => u64::MAX,
    };
    start..end.max(start)
}

impl RaftLogReader<TypeConfig> for GroupLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        self.read_entries(to_range(&range), u64::MAX)
    }

    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<Entry>, StorageError> {
        self.read_entries(start..end.max(start), LOG_READ_BYTES_MAX)
    }
}

impl RaftLogStorage<TypeConfig> for GroupLogStore {
    type LogReader = GroupLogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id = self.inner.meta.lock().last_purged;
        let last_log_id = self.last_log_id()?.or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> GroupLogStore {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError> {
        let vote = *vote;
        self.save_meta(|m| m.vote = Some(vote))
            .map_err(|e| StorageIOError::write_vote(e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError> {
        Ok(self.inner.meta.lock().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        if self.inner.meta.lock().committed == committed {
            return Ok(());
        }
        self.save_meta(|m| m.committed = committed)
            .map_err(|e| StorageIOError::write(e).into())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.inner.meta.lock().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        // Encode and split into submissions of at most one batch each.
        let mut chunks: Vec<(u64, Vec<(u64, Bytes)>)> = Vec::new();
        let mut chunk_bytes = 0u64;
        for entry in entries {
            let payload = serde_json::to_vec(&entry)
                .map_err(|e| StorageIOError::write_log_entry(entry.log_id, io_err(e)))?;
            let size = payload.len() as u64 + ENTRY_HEADER_BYTES;
            let index = entry.log_id.index;
            let term = entry.log_id.leader_id.term;
            let start_new = match chunks.last() {
                None => true,
                Some((first, items)) => {
                    let contiguous = *first + items.len() as u64 == index;
                    !contiguous || chunk_bytes + size > self.inner.batch_bytes_max
                }
            };
            if start_new {
                chunks.push((index, Vec::new()));
                chunk_bytes = 0;
            }
            chunk_bytes += size;
            if let Some((_, items)) = chunks.last_mut() {
                items.push((term, Bytes::from(payload)));
            }
        }
        let mut last_ack = None;
        for (first, items) in chunks {
            let ack = self
                .inner
                .log
                .submit_at(first, items)
                .map_err(|e| StorageIOError::write_logs(io_err(e)))?;
            last_ack = Some(ack);
        }
        match last_ack {
            None => callback.log_io_completed(Ok(())),
            Some(ack) => {
                tokio::spawn(async move {
                    let result = match ack.await {
                        Ok(Ok(_)) => Ok(()),
                        Ok(Err(e)) => Err(std::io::Error::other(e)),
                        Err(_) => Err(std::io::Error::other("the group log stopped")),
                    };
                    callback.log_io_completed(result);
                });
            }
        }
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let ack = self
            .inner
            .log
            .submit_at(log_id.index, Vec::new())
            .map_err(|e| StorageIOError::write_logs(io_err(e)))?;
        match ack.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(StorageIOError::write_logs(io_err(e)).into()),
            Err(_) => {
                Err(StorageIOError::write_logs(AnyError::error("the group log stopped")).into())
            }
        }
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let current = self.inner.meta.lock().last_purged;
        if current.is_some_and(|c| c >= log_id) {
            return Ok(());
        }
        self.save_meta(|m| m.last_purged = Some(log_id))
            .map_err(StorageIOError::write_logs)?;
        self.inner
            .log
            .release_through(log_id.index)
            .map_err(|e| StorageIOError::write_logs(io_err(e)).into())
    }
}
