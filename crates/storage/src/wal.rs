//! The group log: one write-ahead log shared by all shards of a replica group.
//!
//! Appends from many shards and many callers queue in a bounded in-memory queue. One writer thread
//! takes *whatever queued while the previous sync ran* (continuous group commit, no timer), writes
//! it as one CRC-protected batch with one `pwrite`, makes it durable with one `fdatasync`, hands the
//! entries to the [`Applier`] (the shard store) in log order, and only then answers the callers.
//! So a caller is answered only after its entry is durable and applied.
//!
//! The log has two index modes ([`IndexMode`]). In **sequential** mode (the shard store's) the
//! log assigns each entry the next index and hands it to the applier. In **explicit** mode (a Raft
//! log, opened with [`GroupLog::open_explicit`]) the caller says at which index each submission
//! starts — openraft decides indexes, and a follower overwrites a suffix after a conflict — nothing
//! is applied at write time, and entries are read back with [`GroupLog::read`] until
//! [`GroupLog::release_through`] purges them.
//!
//! # On-disk format
//!
//! The log lives in one directory of segment files named `wal-<ordinal as 16 hex digits>.log`.
//! Spare segments waiting for reuse are named `spare-<n>.log`. Every segment is preallocated to
//! `segment_bytes` by writing zeros (or is a recycled, already-written segment), so a batch write
//! overwrites allocated blocks and `fdatasync` never has to commit a file-size change: on this
//! machine appending to a growing file costs 3–4× in sync throughput.
//!
//! Segment header, 64 bytes at offset 0 (all integers little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `0x4c57564c` (`"LVWL"` as LE bytes) |
//! | 4 | 4 | format version (1) |
//! | 8 | 8 | ordinal (equals the one in the file name) |
//! | 16 | 8 | nonce: random, new each time the file is (re)initialised |
//! | 24 | 8 | index at which the log continues when the segment is started |
//! | 32 | 4 | flags: bit 0 = explicit index mode; other bits zero |
//! | 36 | 24 | zero |
//! | 60 | 4 | CRC32C of bytes 0..60 |
//!
//! Batches follow from offset 64, each starting at a multiple of 16 bytes:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `0x42575642` (`"BVWB"` as LE bytes) |
//! | 4 | 4 | payload length in bytes (after this 32-byte header) |
//! | 8 | 8 | index of the first entry |
//! | 16 | 4 | entry count (≥ 1; 0 allowed in explicit mode: a truncation) |
//! | 20 | 4 | CRC32C of: the segment nonce (8 bytes LE), header bytes 0..20, the payload |
//! | 24 | 8 | zero |
//!
//! The payload is `count` entries, each `term: u64, length: u32, bytes[length]`; entry `i` has
//! index `first_index + i`.
//!
//! In sequential mode indexes are contiguous across batches and segments, and recovery refuses
//! anything else. In explicit mode one rule gives the log's content: **a batch replaces the log
//! from its first index on** — entries at or after `first_index` written earlier are dropped and
//! the batch's entries take their place; the log then continues at `first_index + count`. So a
//! batch at the next index appends, a batch at a lower index overwrites a suffix (Raft's
//! truncate-then-append), a batch of zero entries truncates, and a batch at a higher index leaves
//! the indexes between absent (openraft never does that; its storage test suite does). The later
//! batch always wins, in the writer and in recovery alike. A segment's header still records where
//! the log continued when the segment was started, and recovery checks it.
//!
//! The nonce in the CRC means bytes left over from a segment's previous life, or record data that
//! happens to look like a batch, can never validate: a valid batch was written by this log, into
//! this incarnation of this file.
//!
//! # Checkpoints and recovery
//!
//! The log rolls to a new segment only at a checkpoint: when a batch does not fit in the current
//! segment (or a checkpoint is requested), the writer opens the next segment, asks the applier to
//! make everything applied so far durable and to record the [`ResumePoint`] (next index, ordinal of
//! the new segment), and then recycles the old segments. So recovery reads at most the segments
//! written since the last checkpoint — its cost depends on the segment size, never on how much data
//! the shard store holds.
//!
//! Recovery scans batches from the resume point. The first batch that fails validation ends the
//! valid log. To tell a torn tail (the one unsynced batch at a crash; dropped) from corruption in the
//! middle (refused, naming file and offset), it looks for any valid batch after the failure, within
//! the largest possible batch length, and checks that a following segment starts exactly at the next
//! index: a torn write can only damage the last batch, so anything valid after it means the damage
//! is not a torn write.
//!
//! # Explicit mode: retention and reads
//!
//! Explicit-mode segments are not released at a roll: they hold the Raft log until the caller
//! purges it with [`GroupLog::release_through`]`(upto)`, which forgets entries `≤ upto` and
//! releases every sealed segment whose live entries all lie at or below `upto` (segment `k` is
//! such a segment when segment `k + 1` was started at index `≤ upto + 1`). The caller records
//! `upto` durably *before* releasing (segments are released whole, so a recovered log may still
//! hold purged entries; the caller purges them again after opening). Recovery in explicit mode
//! starts at the oldest segment present and rebuilds an in-memory index of where each live entry
//! lies; [`GroupLog::read`] rereads and re-checks (CRC) the batch that holds an entry, or serves it
//! from memory while it is still queued, so an entry is readable as soon as it is submitted.
//!
//! # Failures
//!
//! A failed `fdatasync` poisons the log: the kernel may have dropped the dirty pages, so nothing
//! written since the last good sync can be trusted, and retrying could report durability that does
//! not exist (the "fsyncgate" lesson). Every later submit fails with [`Error::Poisoned`] naming the
//! cause until a restart recovers from disk. A failed apply or checkpoint poisons the log the same
//! way. A write that fails with ENOSPC only fails its batch: nothing was acknowledged, the write
//! position does not move, and the next batch overwrites the same place. In explicit mode every
//! failed write poisons the log, ENOSPC included: a later batch must never become durable after a
//! failed one, or the Raft log would have a hole.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};
use tokio::sync::oneshot;

use crate::codec::{u32_at, u64_at, PutLe, Reader};
use crate::error::{Error, Result};
use crate::vfs::{VFile, Vfs};

const SEGMENT_MAGIC: u32 = u32::from_le_bytes(*b"LVWL");
const BATCH_MAGIC: u32 = u32::from_le_bytes(*b"BVWB");
const FORMAT_VERSION: u32 = 1;
/// Size of the segment header.
pub const SEGMENT_HEADER_BYTES: u64 = 64;
/// Size of a batch header.
pub const BATCH_HEADER_BYTES: u64 = 32;
/// Batches start at multiples of this.
pub const BATCH_ALIGN_BYTES: u64 = 16;
/// Per-entry overhead inside a batch payload (term and length).
pub const ENTRY_HEADER_BYTES: u64 = 12;
/// Size of the zero-filled chunks used to preallocate a new segment.
const PREALLOCATE_CHUNK_BYTES: usize = 1 << 20;
/// Segment header flag: the segment belongs to an explicit-index log.
const SEGMENT_FLAG_EXPLICIT: u32 = 1;

/// How entries get their indexes; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexMode {
    /// The log assigns the next index; entries go to the applier; indexes are contiguous.
    Sequential,
    /// The caller gives each submission's first index (a Raft log); the later batch wins; entries
    /// are read back with [`GroupLog::read`] and kept until [`GroupLog::release_through`].
    Explicit,
}

impl IndexMode {
    fn segment_flags(self) -> u32 {
        match self {
            IndexMode::Sequential => 0,
            IndexMode::Explicit => SEGMENT_FLAG_EXPLICIT,
        }
    }
}

/// Limits and sizes of a group log.
#[derive(Debug, Clone)]
pub struct GroupLogConfig {
    /// Directory holding the segment files.
    pub dir: PathBuf,
    /// Size of every segment file. A checkpoint happens each time a segment fills.
    pub segment_bytes: u64,
    /// A batch takes queued entries until their payload reaches this (but always at least one).
    pub batch_bytes_max: u64,
    /// Largest single entry payload accepted by [`GroupLog::submit`].
    pub entry_bytes_max: u64,
    /// Bytes of payload that may wait in the queue; beyond it submits fail with `Overloaded`.
    pub queue_bytes_max: u64,
    /// Entries that may wait in the queue.
    pub queue_entries_max: u64,
    /// Released segments kept for reuse instead of being deleted.
    pub spare_segments_max: usize,
}

impl GroupLogConfig {
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            segment_bytes: 64 << 20,
            batch_bytes_max: 4 << 20,
            entry_bytes_max: 12 << 20,
            queue_bytes_max: 64 << 20,
            queue_entries_max: 100_000,
            spare_segments_max: 2,
        }
    }

    /// The most bytes one batch can occupy in a segment (header, padding included).
    fn batch_bytes_worst(&self) -> u64 {
        let payload = self.batch_bytes_max.max(self.entry_bytes_max) + ENTRY_HEADER_BYTES;
        BATCH_HEADER_BYTES + payload + BATCH_ALIGN_BYTES
    }

    fn validate(&self) -> Result<()> {
        if self.segment_bytes < SEGMENT_HEADER_BYTES + self.batch_bytes_worst() {
            return Err(Error::Invalid(format!(
                "segment_bytes {} is too small for batches of up to {} bytes",
                self.segment_bytes,
                self.batch_bytes_worst()
            )));
        }
        if self.entry_bytes_max > u64::from(u32::MAX) || self.batch_bytes_max == 0 {
            return Err(Error::Invalid(
                "entry_bytes_max must fit in 32 bits and batch_bytes_max must be positive".into(),
            ));
        }
        Ok(())
    }
}

/// Where replay starts after a restart: written by the applier at each checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResumePoint {
    /// Index of the first entry not yet covered by the checkpoint.
    pub next_index: u64,
    /// Ordinal of the segment that holds (or will hold) `next_index`.
    pub ordinal: u64,
}

impl ResumePoint {
    /// The resume point of an empty, never-written log.
    pub const START: ResumePoint = ResumePoint {
        next_index: 1,
        ordinal: 1,
    };
}

/// One durable log entry, borrowed from the batch buffer.
#[derive(Debug, Clone, Copy)]
pub struct LogEntry<'a> {
    pub index: u64,
    pub term: u64,
    pub payload: &'a [u8],
}

/// One entry read back from an explicit-mode log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedLogEntry {
    pub index: u64,
    pub term: u64,
    pub payload: Bytes,
}

/// The consumer of durable entries: the shard store, or (later) a Raft state machine.
pub trait Applier: Send + Sync + 'static {
    /// Applies one durable entry. Called in log order, exactly once per entry per process life
    /// (entries after the last checkpoint are applied again after a restart).
    fn apply(&self, entry: LogEntry<'_>) -> Result<()>;
    /// Makes all applied state durable and records `resume` so that a restart replays from there.
    fn checkpoint(&self, resume: ResumePoint) -> Result<()>;
}

/// The applier of an explicit-mode log: entries are read back, never applied by the log.
struct NoApplier;

impl Applier for NoApplier {
    fn apply(&self, _entry: LogEntry<'_>) -> Result<()> {
        Ok(())
    }
    fn checkpoint(&self, _resume: ResumePoint) -> Result<()> {
        Ok(())
    }
}

/// Counters of the log's work, for metrics and benchmarks.
#[derive(Debug, Default)]
pub struct LogStats {
    pub batches: AtomicU64,
    pub entries: AtomicU64,
    pub bytes_written: AtomicU64,
    pub syncs: AtomicU64,
    pub sync_nanos_total: AtomicU64,
    pub checkpoints: AtomicU64,
    pub batch_entries_max: AtomicU64,
    /// Bytes read by the last recovery.
    pub recovery_bytes_read: AtomicU64,
    /// Submits refused because the queue was full.
    pub shed: AtomicU64,
}

/// What a submit resolves to: the entry's index once it is durable and applied.
pub type Ack = oneshot::Receiver<Result<u64>>;

/// One submission: a single entry in sequential mode; in explicit mode, entries to be written
/// from index `at` (none: a truncation).
struct Pending {
    at: Option<u64>,
    /// Identifies the submission in the explicit-mode index (slots it queued).
    seq: u64,
    entries: Vec<(u64, Bytes)>,
    /// Sum of the payload lengths.
    bytes: u64,
    done: oneshot::Sender<Result<u64>>,
}

impl Pending {
    /// What the submitter is answered: its last entry's index (a truncation: its index).
    fn ack_index(&self, first_index: u64) -> u64 {
        match self.entries.len() as u64 {
            0 => first_index,
            n => first_index + n - 1,
        }
    }
}

/// Where an explicit-mode entry is.
#[derive(Clone)]
enum Slot {
    /// Submitted, not yet durable: served from memory.
    Queued { seq: u64, term: u64, payload: Bytes },
    /// In the batch at `pos` of segment `ordinal`.
    Written {
        term: u64,
        ordinal: u64,
        pos: u64,
        len: u32,
    },
}

impl Slot {
    fn term(&self) -> u64 {
        match self {
            Slot::Queued { term, .. } | Slot::Written { term, .. } => *term,
        }
    }
}

/// A live segment of an explicit-mode log.
struct LiveSegment {
    file: Arc<dyn VFile>,
    path: PathBuf,
    nonce: u64,
    /// Where the log continued when the segment was started (its header's index).
    first_index: u64,
}

/// The explicit-mode index: every live entry, and the segments that hold them. Lock order:
/// `Shared::queue` before `Shared::live`.
#[derive(Default)]
struct LiveLog {
    entries: BTreeMap<u64, Slot>,
    segments: BTreeMap<u64, LiveSegment>,
}

impl LiveLog {
    /// The rule of explicit mode: drop everything at or after `from`.
    fn truncate(&mut self, from: u64) {
        drop(self.entries.split_off(&from));
    }
}

enum Health {
    Open,
    Poisoned(String),
    Closing,
}

struct Queue {
    pending: VecDeque<Pending>,
    bytes: u64,
    health: Health,
    /// Last submission id handed out.
    seq: u64,
    checkpoint_requested: bool,
    /// Checkpoints attempted on request, and the result of the last one.
    checkpoint_gen: u64,
    checkpoint_result: Result<()>,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    /// Signalled when a requested checkpoint has been attempted.
    checkpoint_done: Condvar,
    cfg: GroupLogConfig,
    mode: IndexMode,
    stats: LogStats,
    /// Explicit mode only.
    live: Mutex<LiveLog>,
    /// Names spare segments (`spare-<n>.log`); shared by the writer and `release_through`.
    spare_counter: AtomicU64,
}

/// The write-ahead log of one replica group. Dropping it stops the writer thread after the queued
/// entries are written; [`GroupLog::close`] also takes a final checkpoint.
pub struct GroupLog {
    shared: Arc<Shared>,
    vfs: Arc<dyn Vfs>,
    writer: Option<JoinHandle<()>>,
}

impl GroupLog {
    /// Recovers the log from `cfg.dir`, replaying every entry from `resume` into `applier`, then
    /// starts the writer thread (named `levee-wal`; one per group log). `resume` is `None` when
    /// no checkpoint was ever taken (a new log).
    pub fn open(
        cfg: GroupLogConfig,
        vfs: Arc<dyn Vfs>,
        resume: Option<ResumePoint>,
        applier: Arc<dyn Applier>,
    ) -> Result<GroupLog> {
        Self::open_mode(cfg, vfs, resume, applier, IndexMode::Sequential)
    }

    /// Opens an explicit-mode log (a Raft log): recovery reads every segment present, oldest
    /// first, and rebuilds the index of live entries; nothing is applied anywhere. Submit with
    /// [`GroupLog::submit_at`], read with [`GroupLog::read`], purge with
    /// [`GroupLog::release_through`].
    pub fn open_explicit(cfg: GroupLogConfig, vfs: Arc<dyn Vfs>) -> Result<GroupLog> {
        Self::open_mode(cfg, vfs, None, Arc::new(NoApplier), IndexMode::Explicit)
    }

    fn open_mode(
        cfg: GroupLogConfig,
        vfs: Arc<dyn Vfs>,
        resume: Option<ResumePoint>,
        applier: Arc<dyn Applier>,
        mode: IndexMode,
    ) -> Result<GroupLog> {
        cfg.validate()?;
        vfs.create_dir_all(&cfg.dir)
            .map_err(|e| Error::io("create directory", &cfg.dir, e))?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                pending: VecDeque::new(),
                bytes: 0,
                health: Health::Open,
                seq: 0,
                checkpoint_requested: false,
                checkpoint_gen: 0,
                checkpoint_result: Ok(()),
            }),
            wake: Condvar::new(),
            checkpoint_done: Condvar::new(),
            cfg: cfg.clone(),
            mode,
            stats: LogStats::default(),
            live: Mutex::new(LiveLog::default()),
            spare_counter: AtomicU64::new(0),
        });
        let mut writer = Writer::recover(cfg, vfs.clone(), resume, applier, shared.clone())?;
        let handle = std::thread::Builder::new()
            .name("levee-wal".into())
            .spawn(move || {
                // An invariant assertion failing in the writer must not leave a log that accepts
                // entries nobody writes: poison it with the panic's message.
                let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| writer.run()));
                if let Err(panic) = run {
                    let what = panic
                        .downcast_ref::<String>()
                        .map(String::as_str)
                        .or_else(|| panic.downcast_ref::<&str>().copied())
                        .unwrap_or("unknown panic");
                    writer.poison(format!(
                        "the log writer stopped on a broken invariant: {what}"
                    ));
                }
            })
            .map_err(|e| Error::io("spawn writer thread", Path::new("levee-wal"), e))?;
        Ok(GroupLog {
            shared,
            vfs,
            writer: Some(handle),
        })
    }

    /// Queues an entry. Never blocks: a full queue or a poisoned log is an immediate error. The
    /// returned [`Ack`] resolves once the entry is durable and applied.
    pub fn submit(&self, term: u64, payload: Vec<u8>) -> Result<Ack> {
        if self.shared.mode != IndexMode::Sequential {
            return Err(Error::Invalid(
                "submit needs a sequential-mode log; use submit_at".into(),
            ));
        }
        self.enqueue(None, vec![(term, Bytes::from(payload))])
    }

    /// Explicit mode: queues `entries` (term, payload) to be written at indexes `first_index..`.
    /// Everything at or after `first_index` is replaced at once for [`GroupLog::read`], and on
    /// disk when the batch is durable. No entries: truncates the log from `first_index`. Never
    /// blocks; the [`Ack`] resolves (with the last entry's index) once the entries are durable.
    /// The entries' encoded size (`ENTRY_HEADER_BYTES` each plus payloads) must fit in
    /// `batch_bytes_max`, or be a single entry of up to `entry_bytes_max`.
    pub fn submit_at(&self, first_index: u64, entries: Vec<(u64, Bytes)>) -> Result<Ack> {
        if self.shared.mode != IndexMode::Explicit {
            return Err(Error::Invalid(
                "submit_at needs an explicit-mode log".into(),
            ));
        }
        let encoded: u64 = entries
            .iter()
            .map(|(_, p)| p.len() as u64 + ENTRY_HEADER_BYTES)
            .sum();
        let cfg = &self.shared.cfg;
        if entries.len() > 1 && encoded > cfg.batch_bytes_max {
            return Err(Error::EntryTooLarge {
                size_bytes: encoded,
                limit_bytes: cfg.batch_bytes_max,
            });
        }
        if first_index.checked_add(entries.len() as u64).is_none() {
            return Err(Error::Invalid(format!(
                "{} entries at index {first_index} overflow the index space",
                entries.len()
            )));
        }
        self.enqueue(Some(first_index), entries)
    }

    fn enqueue(&self, at: Option<u64>, entries: Vec<(u64, Bytes)>) -> Result<Ack> {
        let cfg = &self.shared.cfg;
        let mut size = 0u64;
        for (_, payload) in &entries {
            let len = payload.len() as u64;
            if len > cfg.entry_bytes_max {
                return Err(Error::EntryTooLarge {
                    size_bytes: len,
                    limit_bytes: cfg.entry_bytes_max,
                });
            }
            size += len;
        }
        let (tx, rx) = oneshot::channel();
        let mut q = self.shared.queue.lock();
        match &q.health {
            Health::Open => {}
            Health::Poisoned(reason) => {
                return Err(Error::Poisoned {
                    reason: reason.clone(),
                })
            }
            Health::Closing => return Err(Error::Closed),
        }
        if q.pending.len() as u64 >= cfg.queue_entries_max {
            self.shared.stats.shed.fetch_add(1, Ordering::Relaxed);
            return Err(Error::Overloaded {
                what: "group log queue (entries)",
                limit: cfg.queue_entries_max,
            });
        }
        if q.bytes + size > cfg.queue_bytes_max && !q.pending.is_empty() {
            self.shared.stats.shed.fetch_add(1, Ordering::Relaxed);
            return Err(Error::Overloaded {
                what: "group log queue (bytes)",
                limit: cfg.queue_bytes_max,
            });
        }
        q.bytes += size;
        q.seq += 1;
        let seq = q.seq;
        if let Some(first_index) = at {
            let mut live = self.shared.live.lock();
            live.truncate(first_index);
            for (i, (term, payload)) in entries.iter().enumerate() {
                live.entries.insert(
                    first_index + i as u64,
                    Slot::Queued {
                        seq,
                        term: *term,
                        payload: payload.clone(),
                    },
                );
            }
        }
        q.pending.push_back(Pending {
            at,
            seq,
            entries,
            bytes: size,
            done: tx,
        });
        drop(q);
        self.shared.wake.notify_one();
        Ok(rx)
    }

    /// Explicit mode: the live entries with indexes in `range`, in order, skipping absent ones;
    /// stops once their payloads reach `bytes_max` (but returns at least one entry if any).
    /// Written entries are reread from their segment and their batch's CRC checked again.
    pub fn read(&self, range: Range<u64>, bytes_max: u64) -> Result<Vec<OwnedLogEntry>> {
        enum Plan {
            Ready(OwnedLogEntry),
            Disk {
                index: u64,
                ordinal: u64,
                pos: u64,
                file: Arc<dyn VFile>,
                path: PathBuf,
                nonce: u64,
            },
        }
        let plan = {
            let live = self.shared.live.lock();
            let mut plan = Vec::new();
            let mut bytes = 0u64;
            for (&index, slot) in live.entries.range(range) {
                if !plan.is_empty() && bytes >= bytes_max {
                    break;
                }
                match slot {
                    Slot::Queued { term, payload, .. } => {
                        bytes += payload.len() as u64;
                        plan.push(Plan::Ready(OwnedLogEntry {
                            index,
                            term: *term,
                            payload: payload.clone(),
                        }));
                    }
                    Slot::Written {
                        ordinal, pos, len, ..
                    } => {
                        bytes += u64::from(*len);
                        let Some(seg) = live.segments.get(ordinal) else {
                            return Err(Error::Invalid(format!(
                                "log entry {index} lies in segment {ordinal}, which was released"
                            )));
                        };
                        plan.push(Plan::Disk {
                            index,
                            ordinal: *ordinal,
                            pos: *pos,
                            file: seg.file.clone(),
                            path: seg.path.clone(),
                            nonce: seg.nonce,
                        });
                    }
                }
            }
            plan
        };
        let mut out = Vec::with_capacity(plan.len());
        /// The batch last read: (ordinal, position, first index, entries as (term, payload)).
        type CachedBatch = (u64, u64, u64, Vec<(u64, Bytes)>);
        let mut cached: Option<CachedBatch> = None;
        for item in plan {
            match item {
                Plan::Ready(e) => out.push(e),
                Plan::Disk {
                    index,
                    ordinal,
                    pos,
                    file,
                    path,
                    nonce,
                } => {
                    let hit = cached
                        .as_ref()
                        .is_some_and(|(o, p, _, _)| *o == ordinal && *p == pos);
                    if !hit {
                        let at = read_batch_at(
                            &*file,
                            &path,
                            nonce,
                            pos,
                            self.shared.cfg.segment_bytes,
                            true,
                            &mut 0,
                        )?;
                        let BatchAt::Valid {
                            first_index,
                            count,
                            payload,
                            ..
                        } = at
                        else {
                            return Err(Error::corrupt(
                                &path,
                                pos,
                                format!("log entry {index}: its batch no longer validates"),
                            ));
                        };
                        let Some(entries) = decode_entries(&payload, first_index, count) else {
                            return Err(Error::corrupt(
                                &path,
                                pos,
                                "batch checksum is valid but its entries do not decode",
                            ));
                        };
                        let entries = entries
                            .into_iter()
                            .map(|e| (e.term, Bytes::copy_from_slice(e.payload)))
                            .collect();
                        cached = Some((ordinal, pos, first_index, entries));
                    }
                    let found = cached.as_ref().and_then(|(_, _, first, entries)| {
                        let i = usize::try_from(index.checked_sub(*first)?).ok()?;
                        entries.get(i)
                    });
                    let Some((term, payload)) = found else {
                        return Err(Error::corrupt(
                            &path,
                            pos,
                            format!("log entry {index} is not in the batch the index points to"),
                        ));
                    };
                    out.push(OwnedLogEntry {
                        index,
                        term: *term,
                        payload: payload.clone(),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Explicit mode: the (index, term) of the first and of the last live entry.
    pub fn bounds(&self) -> Option<((u64, u64), (u64, u64))> {
        let live = self.shared.live.lock();
        let (&first, first_slot) = live.entries.first_key_value()?;
        let (&last, last_slot) = live.entries.last_key_value()?;
        Some(((first, first_slot.term()), (last, last_slot.term())))
    }

    /// Explicit mode: forgets every entry at or below `upto` and releases (as spares, or deletes)
    /// every sealed segment whose live entries all lie at or below it. The caller must have
    /// recorded `upto` durably first: a recovered log may still hold entries at or below it.
    pub fn release_through(&self, upto: u64) -> Result<()> {
        if self.shared.mode != IndexMode::Explicit {
            return Err(Error::Invalid(
                "release_through needs an explicit-mode log".into(),
            ));
        }
        let released: Vec<PathBuf> = {
            let mut live = self.shared.live.lock();
            live.entries = match upto.checked_add(1) {
                Some(keep_from) => live.entries.split_off(&keep_from),
                None => BTreeMap::new(),
            };
            let mut released = Vec::new();
            loop {
                let mut segs = live.segments.iter();
                let (Some((&ordinal, _)), Some((_, next))) = (segs.next(), segs.next()) else {
                    break;
                };
                // Everything live in `ordinal` lies below where `next` started.
                if next.first_index > upto.saturating_add(1) {
                    break;
                }
                if let Some(seg) = live.segments.remove(&ordinal) {
                    released.push(seg.path);
                }
            }
            released
        };
        if !released.is_empty() {
            release_segments(&self.shared, &*self.vfs, released);
        }
        Ok(())
    }

    /// Asks the writer to roll and checkpoint now, and waits until it has.
    pub fn checkpoint(&self) -> Result<()> {
        let mut q = self.shared.queue.lock();
        let target = q.checkpoint_gen + 1;
        q.checkpoint_requested = true;
        self.shared.wake.notify_one();
        loop {
            if let Health::Poisoned(reason) = &q.health {
                return Err(Error::Poisoned {
                    reason: reason.clone(),
                });
            }
            if q.checkpoint_gen >= target {
                return q.checkpoint_result.clone();
            }
            if self.writer.as_ref().is_none_or(|h| h.is_finished()) {
                return Err(Error::Closed);
            }
            self.shared.checkpoint_done.wait(&mut q);
        }
    }

    /// The reason the log refuses writes, if it does.
    pub fn poisoned(&self) -> Option<String> {
        match &self.shared.queue.lock().health {
            Health::Poisoned(r) => Some(r.clone()),
            _ => None,
        }
    }

    pub fn stats(&self) -> &LogStats {
        &self.shared.stats
    }

    /// Entries currently waiting to be written.
    pub fn queue_depth(&self) -> usize {
        self.shared.queue.lock().pending.len()
    }

    /// Writes everything queued, takes a final checkpoint and stops the writer.
    pub fn close(mut self) -> Result<()> {
        let result = if self.poisoned().is_none() {
            self.checkpoint()
        } else {
            Ok(())
        };
        self.stop();
        result
    }

    /// Stops the writer after it has written what is queued, without a checkpoint: what a crash
    /// right after the last acknowledgement would leave on disk.
    pub fn halt(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        {
            let mut q = self.shared.queue.lock();
            if matches!(q.health, Health::Open) {
                q.health = Health::Closing;
            }
        }
        self.shared.wake.notify_all();
        if let Some(h) = self.writer.take() {
            // The writer only ends by returning; a panic there is a bug we surface here.
            if h.join().is_err() {
                tracing::error!("group log writer thread panicked");
            }
        }
    }
}

impl Drop for GroupLog {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An open segment file.
struct Segment {
    ordinal: u64,
    nonce: u64,
    file: Arc<dyn VFile>,
    path: PathBuf,
}

fn segment_name(ordinal: u64) -> String {
    format!("wal-{ordinal:016x}.log")
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let hex = name.strip_prefix("wal-")?.strip_suffix(".log")?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

fn align_up(pos: u64) -> u64 {
    pos.div_ceil(BATCH_ALIGN_BYTES) * BATCH_ALIGN_BYTES
}

pub(crate) fn encode_segment_header(
    ordinal: u64,
    nonce: u64,
    first_index: u64,
    flags: u32,
) -> Vec<u8> {
    let mut h = Vec::with_capacity(SEGMENT_HEADER_BYTES as usize);
    h.put_u32(SEGMENT_MAGIC);
    h.put_u32(FORMAT_VERSION);
    h.put_u64(ordinal);
    h.put_u64(nonce);
    h.put_u64(first_index);
    h.put_u32(flags);
    h.resize(60, 0);
    let crc = crc32c::crc32c(&h);
    h.put_u32(crc);
    h
}

/// Parsed segment header: (ordinal, nonce, first index, flags).
fn decode_segment_header(h: &[u8]) -> Option<(u64, u64, u64, u32)> {
    let body = h.get(..60)?;
    if u32_at(h, 0)? != SEGMENT_MAGIC
        || u32_at(h, 4)? != FORMAT_VERSION
        || u32_at(h, 60)? != crc32c::crc32c(body)
    {
        return None;
    }
    Some((
        u64_at(h, 8)?,
        u64_at(h, 16)?,
        u64_at(h, 24)?,
        u32_at(h, 32)?,
    ))
}

pub(crate) fn batch_crc(nonce: u64, header: &[u8], payload: &[u8]) -> u32 {
    let crc = crc32c::crc32c(&nonce.to_le_bytes());
    let crc = crc32c::crc32c_append(crc, header.get(..20).unwrap_or(header));
    crc32c::crc32c_append(crc, payload)
}

/// Parsed batch header: (payload length, first index, count, crc).
pub(crate) fn decode_batch_header(h: &[u8]) -> Option<(u64, u64, u32, u32)> {
    if u32_at(h, 0)? != BATCH_MAGIC {
        return None;
    }
    Some((
        u64::from(u32_at(h, 4)?),
        u64_at(h, 8)?,
        u32_at(h, 16)?,
        u32_at(h, 20)?,
    ))
}

/// Splits a validated payload into entries; `None` if it does not hold exactly `count` entries.
fn decode_entries(payload: &[u8], first_index: u64, count: u32) -> Option<Vec<LogEntry<'_>>> {
    // Indexes past u64::MAX do not decode (they overflowed, a panic in debug builds).
    first_index.checked_add(u64::from(count))?;
    let mut r = Reader::new(payload);
    // `count` comes from the disk: reserve no more entries than the payload can hold, or a
    // CRC-valid header with a huge count would abort the process on allocation (found by the
    // `wal` fuzz target).
    let fits = payload.len() / ENTRY_HEADER_BYTES as usize;
    let mut out = Vec::with_capacity((count as usize).min(fits));
    for i in 0..u64::from(count) {
        let term = r.u64().ok()?;
        let len = r.u32().ok()? as usize;
        let bytes = r.bytes(len).ok()?;
        out.push(LogEntry {
            index: first_index + i,
            term,
            payload: bytes,
        });
    }
    (r.remaining() == 0).then_some(out)
}

/// The result of validating the batch at one position.
enum BatchAt {
    Valid {
        first_index: u64,
        count: u32,
        payload: Vec<u8>,
        next_pos: u64,
    },
    Invalid,
}

/// Reads up to `len` bytes at `offset` (fewer at the end of the file).
fn read_exact(file: &dyn VFile, path: &Path, offset: u64, len: u64) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; len as usize];
    let n = file
        .read_full_at(&mut buf, offset)
        .map_err(|e| Error::io("read", path, e))?;
    buf.truncate(n);
    Ok(buf)
}

/// Validates the batch at `pos` of a segment with `nonce`. `allow_empty`: a batch of zero
/// entries is valid (explicit mode).
fn read_batch_at(
    file: &dyn VFile,
    path: &Path,
    nonce: u64,
    pos: u64,
    segment_bytes: u64,
    allow_empty: bool,
    bytes_read: &mut u64,
) -> Result<BatchAt> {
    if pos + BATCH_HEADER_BYTES > segment_bytes {
        return Ok(BatchAt::Invalid);
    }
    let header = read_exact(file, path, pos, BATCH_HEADER_BYTES)?;
    *bytes_read += header.len() as u64;
    let Some((len, first_index, count, crc)) = decode_batch_header(&header) else {
        return Ok(BatchAt::Invalid);
    };
    let end = pos + BATCH_HEADER_BYTES + len;
    if (count == 0 && !allow_empty) || end > segment_bytes {
        return Ok(BatchAt::Invalid);
    }
    let payload = read_exact(file, path, pos + BATCH_HEADER_BYTES, len)?;
    *bytes_read += payload.len() as u64;
    if payload.len() as u64 != len || batch_crc(nonce, &header, &payload) != crc {
        return Ok(BatchAt::Invalid);
    }
    Ok(BatchAt::Valid {
        first_index,
        count,
        payload,
        next_pos: align_up(end),
    })
}

/// Turns released segments into spares (up to `spare_segments_max`) or deletes them. Failures
/// lose nothing: a leftover segment is released again at the next start (sequential mode) or at
/// the next purge after a restart (explicit mode).
fn release_segments(shared: &Shared, vfs: &dyn Vfs, paths: Vec<PathBuf>) {
    let dir = &shared.cfg.dir;
    let mut spares = vfs
        .list_dir(dir)
        .map(|names| names.iter().filter(|n| n.starts_with("spare-")).count())
        .unwrap_or(usize::MAX);
    for path in paths {
        let result = if spares < shared.cfg.spare_segments_max {
            let n = shared.spare_counter.fetch_add(1, Ordering::Relaxed) + 1;
            spares += 1;
            vfs.rename(&path, &dir.join(format!("spare-{n}.log")))
        } else {
            vfs.remove_file(&path)
        };
        if let Err(e) = result {
            tracing::warn!(path = %path.display(), error = %e, "could not release log segment; will retry at next start");
        }
    }
    let _ = vfs.sync_dir(dir);
}

struct Writer {
    cfg: GroupLogConfig,
    vfs: Arc<dyn Vfs>,
    applier: Arc<dyn Applier>,
    shared: Arc<Shared>,
    current: Option<Segment>,
    /// Segments before `current` that the next checkpoint releases.
    retired: Vec<PathBuf>,
    /// Ordinal of the first segment to create when there is none yet.
    first_ordinal: u64,
    pos: u64,
    next_index: u64,
    buf: Vec<u8>,
}

impl Writer {
    fn mode(&self) -> IndexMode {
        self.shared.mode
    }

    fn read_exact(&self, file: &dyn VFile, path: &Path, offset: u64, len: u64) -> Result<Vec<u8>> {
        let buf = read_exact(file, path, offset, len)?;
        self.shared
            .stats
            .recovery_bytes_read
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(buf)
    }

    fn batch_at(&self, seg: &Segment, pos: u64) -> Result<BatchAt> {
        let mut read = 0;
        let at = read_batch_at(
            &*seg.file,
            &seg.path,
            seg.nonce,
            pos,
            self.cfg.segment_bytes,
            self.mode() == IndexMode::Explicit,
            &mut read,
        );
        self.shared
            .stats
            .recovery_bytes_read
            .fetch_add(read, Ordering::Relaxed);
        at
    }

    /// Explicit mode: makes `seg` (started at `first_index`) readable.
    fn register(&self, seg: &Segment, first_index: u64) {
        if self.mode() == IndexMode::Explicit {
            self.shared.live.lock().segments.insert(
                seg.ordinal,
                LiveSegment {
                    file: seg.file.clone(),
                    path: seg.path.clone(),
                    nonce: seg.nonce,
                    first_index,
                },
            );
        }
    }

    /// Whether any valid batch starts in `(from, from + worst batch]`: evidence that the invalid
    /// batch at `from` is damage in the middle of the log, not a torn tail.
    fn valid_batch_after(&self, seg: &Segment, from: u64) -> Result<Option<u64>> {
        let end = (from + self.cfg.batch_bytes_worst()).min(self.cfg.segment_bytes);
        let window = self.read_exact(&*seg.file, &seg.path, from, end.saturating_sub(from))?;
        let mut at = BATCH_ALIGN_BYTES;
        while at + BATCH_HEADER_BYTES <= window.len() as u64 {
            let h = &window[at as usize..(at + BATCH_HEADER_BYTES) as usize];
            if let Some((len, _, count, crc)) = decode_batch_header(h) {
                let p_start = at + BATCH_HEADER_BYTES;
                let p_end = p_start + len;
                let count_ok = count > 0 || self.mode() == IndexMode::Explicit;
                if count_ok && p_end <= window.len() as u64 {
                    let payload = &window[p_start as usize..p_end as usize];
                    if batch_crc(seg.nonce, h, payload) == crc {
                        return Ok(Some(from + at));
                    }
                } else if count_ok && from + p_end <= self.cfg.segment_bytes {
                    // The candidate extends past the window: read it whole.
                    if let BatchAt::Valid { .. } = self.batch_at(seg, from + at)? {
                        return Ok(Some(from + at));
                    }
                }
            }
            at += BATCH_ALIGN_BYTES;
        }
        Ok(None)
    }

    fn open_segment(&self, ordinal: u64) -> Result<(Arc<dyn VFile>, PathBuf)> {
        let path = self.cfg.dir.join(segment_name(ordinal));
        let file = self
            .vfs
            .open(&path)
            .map_err(|e| Error::io("open", &path, e))?;
        Ok((file, path))
    }

    fn recover(
        cfg: GroupLogConfig,
        vfs: Arc<dyn Vfs>,
        checkpoint: Option<ResumePoint>,
        applier: Arc<dyn Applier>,
        shared: Arc<Shared>,
    ) -> Result<Writer> {
        let explicit = shared.mode == IndexMode::Explicit;
        let mut resume = checkpoint.unwrap_or(ResumePoint::START);
        let names = vfs
            .list_dir(&cfg.dir)
            .map_err(|e| Error::io("list directory", &cfg.dir, e))?;
        let mut ordinals: Vec<u64> = names.iter().filter_map(|n| parse_segment_name(n)).collect();
        ordinals.sort_unstable();
        let spare_counter = names
            .iter()
            .filter_map(|n| n.strip_prefix("spare-")?.strip_suffix(".log")?.parse().ok())
            .max()
            .unwrap_or(0);
        shared.spare_counter.store(spare_counter, Ordering::Relaxed);
        if explicit {
            // The log starts at its oldest segment; the first header says at which index.
            if let Some(&first) = ordinals.first() {
                resume.ordinal = first;
            }
        }
        let mut w = Writer {
            cfg,
            vfs,
            applier,
            shared,
            current: None,
            retired: Vec::new(),
            first_ordinal: resume.ordinal,
            pos: SEGMENT_HEADER_BYTES,
            next_index: resume.next_index,
            buf: Vec::new(),
        };

        // Segments before the resume point were covered by a checkpoint whose release was cut
        // short: release them now.
        let (old, live): (Vec<u64>, Vec<u64>) =
            ordinals.into_iter().partition(|&o| o < resume.ordinal);
        for o in old {
            w.retired.push(w.cfg.dir.join(segment_name(o)));
        }
        w.release_retired();
        // A checkpoint is written only after its resume segment is durable, so that segment
        // must be here.
        let missing = match live.first() {
            Some(first) => *first != resume.ordinal,
            None => checkpoint.is_some(),
        };
        if missing {
            return Err(Error::corrupt(
                &w.cfg.dir.join(segment_name(resume.ordinal)),
                0,
                format!(
                    "log segment missing: the last checkpoint resumes in it (entries from index {}); refusing to start without them",
                    resume.next_index
                ),
            ));
        }
        let flags_wanted = w.mode().segment_flags();
        for (i, &ordinal) in live.iter().enumerate() {
            let is_last = i + 1 == live.len();
            if ordinal != resume.ordinal + i as u64 {
                return Err(Error::corrupt(
                    &w.cfg.dir.join(segment_name(resume.ordinal + i as u64)),
                    0,
                    "segment missing from the middle of the log",
                ));
            }
            let (file, path) = w.open_segment(ordinal)?;
            let header = w.read_exact(&*file, &path, 0, SEGMENT_HEADER_BYTES)?;
            let parsed = decode_segment_header(&header).filter(|(o, _, _, _)| *o == ordinal);
            let Some((_, nonce, first_index, flags)) = parsed else {
                if is_last {
                    // A roll that crashed before its header was durable: nothing was
                    // acknowledged in it. Reinitialise it in place.
                    tracing::warn!(path = %path.display(), "log segment header invalid at the tail; reinitialising it");
                    let seg = w.init_segment(file, path, ordinal)?;
                    w.register(&seg, w.next_index);
                    w.current = Some(seg);
                    w.pos = SEGMENT_HEADER_BYTES;
                    break;
                }
                return Err(Error::corrupt(
                    &path,
                    0,
                    "invalid segment header in the middle of the log",
                ));
            };
            if flags != flags_wanted {
                return Err(Error::corrupt(
                    &path,
                    32,
                    format!(
                        "segment flags {flags:#x}, but the log is opened in {:?} index mode (flags {flags_wanted:#x})",
                        w.mode()
                    ),
                ));
            }
            if explicit && i == 0 {
                // Whatever came before the oldest segment was purged.
                w.next_index = first_index;
            }
            if first_index != w.next_index {
                return Err(Error::corrupt(
                    &path,
                    0,
                    format!(
                        "segment starts at index {first_index}, but the log continues at {}",
                        w.next_index
                    ),
                ));
            }
            let seg = Segment {
                ordinal,
                nonce,
                file,
                path,
            };
            w.register(&seg, first_index);
            let mut pos = SEGMENT_HEADER_BYTES;
            loop {
                match w.batch_at(&seg, pos)? {
                    BatchAt::Valid {
                        first_index,
                        count,
                        payload,
                        next_pos,
                    } => {
                        if first_index != w.next_index && !explicit {
                            return Err(Error::corrupt(
                                &seg.path,
                                pos,
                                format!(
                                    "batch starts at index {first_index}, expected {}",
                                    w.next_index
                                ),
                            ));
                        }
                        let Some(next_index) = first_index.checked_add(u64::from(count)) else {
                            return Err(Error::corrupt(&seg.path, pos, "batch indexes overflow"));
                        };
                        let Some(entries) = decode_entries(&payload, first_index, count) else {
                            return Err(Error::corrupt(
                                &seg.path,
                                pos,
                                "batch checksum is valid but its entries do not decode",
                            ));
                        };
                        if explicit {
                            // The later batch wins: it replaces the log from its first index.
                            let mut live = w.shared.live.lock();
                            live.truncate(first_index);
                            for e in entries {
                                live.entries.insert(
                                    e.index,
                                    Slot::Written {
                                        term: e.term,
                                        ordinal,
                                        pos,
                                        len: e.payload.len() as u32,
                                    },
                                );
                            }
                        } else {
                            for e in entries {
                                w.applier.apply(e)?;
                            }
                        }
                        w.next_index = next_index;
                        pos = next_pos;
                    }
                    BatchAt::Invalid => {
                        if let Some(at) = w.valid_batch_after(&seg, pos)? {
                            return Err(Error::corrupt(
                                &seg.path,
                                pos,
                                format!("invalid batch followed by a valid batch at offset {at}: the log is damaged in the middle; refusing to continue"),
                            ));
                        }
                        if !is_last {
                            // The writer rolled after this batch; the next segment must continue
                            // exactly here (checked at the top of the loop).
                        } else if pos > SEGMENT_HEADER_BYTES || w.next_index > resume.next_index {
                            tracing::info!(path = %seg.path.display(), offset = pos, "log recovered; tail ends here");
                        }
                        break;
                    }
                }
            }
            if is_last {
                w.pos = pos;
                w.current = Some(seg);
            } else if !explicit {
                w.retired.push(seg.path);
            }
        }
        tracing::info!(
            next_index = w.next_index,
            bytes_read = w.shared.stats.recovery_bytes_read.load(Ordering::Relaxed),
            "group log recovered"
        );
        Ok(w)
    }

    /// Writes a fresh header (with a new nonce) into `file` and makes it durable.
    fn init_segment(&self, file: Arc<dyn VFile>, path: PathBuf, ordinal: u64) -> Result<Segment> {
        let nonce = rand::random::<u64>();
        let header =
            encode_segment_header(ordinal, nonce, self.next_index, self.mode().segment_flags());
        file.write_all_at(&header, 0)
            .map_err(|e| Error::io("write segment header", &path, e))?;
        Ok(Segment {
            ordinal,
            nonce,
            file,
            path,
        })
    }

    /// Creates segment `ordinal` from a spare or a new zero-filled file, durable with its name.
    /// Errors before the rename leave the log as it was (the caller's batch fails).
    fn new_segment(&mut self, ordinal: u64) -> Result<Segment> {
        let path = self.cfg.dir.join(segment_name(ordinal));
        let spare = self
            .vfs
            .list_dir(&self.cfg.dir)
            .map_err(|e| Error::io("list directory", &self.cfg.dir, e))?
            .into_iter()
            .find(|n| n.starts_with("spare-") && n.ends_with(".log"));
        let file = match spare {
            Some(name) => {
                let from = self.cfg.dir.join(name);
                self.vfs
                    .rename(&from, &path)
                    .map_err(|e| Error::io("rename spare segment", &from, e))?;
                self.vfs
                    .open(&path)
                    .map_err(|e| Error::io("open", &path, e))?
            }
            None => {
                let tmp = self.cfg.dir.join(format!("{}.tmp", segment_name(ordinal)));
                let file = self
                    .vfs
                    .create(&tmp)
                    .map_err(|e| Error::io("create segment", &tmp, e))?;
                let zeros = vec![0u8; PREALLOCATE_CHUNK_BYTES];
                let mut at = 0;
                while at < self.cfg.segment_bytes {
                    let n = (self.cfg.segment_bytes - at).min(zeros.len() as u64);
                    if let Err(e) = file.write_all_at(&zeros[..n as usize], at) {
                        let _ = self.vfs.remove_file(&tmp);
                        return Err(Error::io("preallocate segment", &tmp, e));
                    }
                    at += n;
                }
                file.sync_data()
                    .map_err(|e| Error::io("fdatasync", &tmp, e))?;
                self.vfs
                    .rename(&tmp, &path)
                    .map_err(|e| Error::io("rename segment", &tmp, e))?;
                file
            }
        };
        let seg = self.init_segment(file, path, ordinal)?;
        seg.file
            .sync_data()
            .map_err(|e| Error::io("fdatasync", &seg.path, e))?;
        self.vfs
            .sync_dir(&self.cfg.dir)
            .map_err(|e| Error::io("sync directory", &self.cfg.dir, e))?;
        Ok(seg)
    }

    /// Rolls to a new segment and checkpoints, then releases the old segments.
    fn roll_and_checkpoint(&mut self) -> Result<()> {
        let ordinal = self
            .current
            .as_ref()
            .map_or(self.first_ordinal, |s| s.ordinal + 1);
        let seg = match self.new_segment(ordinal) {
            Ok(seg) => seg,
            // A full disk while preparing the segment fails only this batch (in sequential mode);
            // a failed sync poisons like any other.
            Err(e)
                if e.is_no_space()
                    && !e.is_sync_failure()
                    && self.mode() == IndexMode::Sequential =>
            {
                return Err(e)
            }
            Err(e) => return Err(self.poison(format!("rolling the log failed: {e}"))),
        };
        self.register(&seg, self.next_index);
        if let Some(old) = self.current.replace(seg) {
            // Explicit-mode segments stay until `release_through` purges them.
            if self.mode() == IndexMode::Sequential {
                self.retired.push(old.path);
            }
        }
        self.pos = SEGMENT_HEADER_BYTES;
        let resume = ResumePoint {
            next_index: self.next_index,
            ordinal,
        };
        if let Err(e) = self.applier.checkpoint(resume) {
            return Err(self.poison(format!("checkpoint failed: {e}")));
        }
        self.shared
            .stats
            .checkpoints
            .fetch_add(1, Ordering::Relaxed);
        self.release_retired();
        Ok(())
    }

    /// Turns retired segments into spares (or deletes them).
    fn release_retired(&mut self) {
        let retired = std::mem::take(&mut self.retired);
        release_segments(&self.shared, &*self.vfs, retired);
    }

    fn poison(&self, reason: String) -> Error {
        tracing::error!(%reason, "group log poisoned");
        let mut q = self.shared.queue.lock();
        q.health = Health::Poisoned(reason.clone());
        for p in q.pending.drain(..) {
            let _ = p.done.send(Err(Error::Poisoned {
                reason: reason.clone(),
            }));
        }
        q.bytes = 0;
        drop(q);
        self.shared.checkpoint_done.notify_all();
        Error::Poisoned { reason }
    }

    fn run(&mut self) {
        loop {
            let (batch, want_checkpoint) = {
                let mut q = self.shared.queue.lock();
                loop {
                    if matches!(q.health, Health::Poisoned(_)) {
                        return;
                    }
                    if !q.pending.is_empty() || q.checkpoint_requested {
                        break;
                    }
                    if matches!(q.health, Health::Closing) {
                        return;
                    }
                    self.shared.wake.wait(&mut q);
                }
                let mut batch = Vec::new();
                let mut bytes = 0u64;
                // Explicit mode: where the batch's entries end so far; a submission joins the
                // batch only if it starts exactly there.
                let mut batch_end: Option<u64> = None;
                while let Some(p) = q.pending.front() {
                    let size = p.bytes + ENTRY_HEADER_BYTES * p.entries.len() as u64;
                    if !batch.is_empty() {
                        if bytes + size > self.cfg.batch_bytes_max {
                            break;
                        }
                        if p.at.is_some() && p.at != batch_end {
                            break;
                        }
                    }
                    bytes += size;
                    if let Some(p) = q.pending.pop_front() {
                        q.bytes -= p.bytes;
                        batch_end = p.at.map(|at| at + p.entries.len() as u64);
                        batch.push(p);
                    }
                }
                let want = q.checkpoint_requested && batch.is_empty();
                if want {
                    q.checkpoint_requested = false;
                }
                (batch, want)
            };
            if want_checkpoint {
                let result = self.roll_and_checkpoint();
                let mut q = self.shared.queue.lock();
                q.checkpoint_gen += 1;
                q.checkpoint_result = result;
                drop(q);
                self.shared.checkpoint_done.notify_all();
                continue;
            }
            self.write_batch(batch);
        }
    }

    fn write_batch(&mut self, batch: Vec<Pending>) {
        let fail_all = |batch: Vec<Pending>, e: Error| {
            for p in batch {
                let _ = p.done.send(Err(e.clone()));
            }
        };
        let explicit = self.mode() == IndexMode::Explicit;
        // Encode.
        self.buf.clear();
        self.buf.resize(BATCH_HEADER_BYTES as usize, 0);
        let mut count = 0u32;
        for p in &batch {
            for (term, payload) in &p.entries {
                self.buf.put_u64(*term);
                self.buf.put_u32(payload.len() as u32);
                self.buf.extend_from_slice(payload);
                count += 1;
            }
        }
        let payload_len = self.buf.len() as u64 - BATCH_HEADER_BYTES;
        let first_index = batch.first().and_then(|p| p.at).unwrap_or(self.next_index);
        assert!(
            explicit || first_index == self.next_index,
            "sequential log batch at {first_index}, log continues at {}",
            self.next_index
        );
        assert!(count > 0 || explicit, "empty batch in a sequential log");

        // Roll when the batch does not fit (or there is no segment yet).
        let fits = self.current.is_some()
            && align_up(self.pos + BATCH_HEADER_BYTES + payload_len) <= self.cfg.segment_bytes;
        if !fits {
            if let Err(e) = self.roll_and_checkpoint() {
                fail_all(batch, e);
                return;
            }
        }
        let Some(seg) = self.current.as_ref() else {
            fail_all(batch, Error::Closed);
            return;
        };
        let mut header = Vec::with_capacity(BATCH_HEADER_BYTES as usize);
        header.put_u32(BATCH_MAGIC);
        header.put_u32(payload_len as u32);
        header.put_u64(first_index);
        header.put_u32(count);
        let crc = batch_crc(seg.nonce, &header, &self.buf[BATCH_HEADER_BYTES as usize..]);
        header.put_u32(crc);
        header.put_u64(0);
        self.buf[..BATCH_HEADER_BYTES as usize].copy_from_slice(&header);
        let ordinal = seg.ordinal;
        let batch_pos = self.pos;

        if let Err(e) = seg.file.write_all_at(&self.buf, self.pos) {
            let nospace = e.raw_os_error() == Some(libc::ENOSPC);
            let err = Error::io("write", &seg.path, e);
            let err = if nospace && !explicit {
                tracing::warn!(error = %err, "log write failed for lack of space; batch refused");
                err
            } else {
                self.poison(format!("write to the log failed: {err}"))
            };
            fail_all(batch, err);
            return;
        }
        let started = Instant::now();
        if let Err(e) = seg.file.sync_data() {
            let err = Error::io("fdatasync", &seg.path, e);
            let err = self.poison(format!(
                "fdatasync of the log failed, durability of recent writes is unknown: {err}"
            ));
            fail_all(batch, err);
            return;
        }
        let log = if explicit { "explicit" } else { "sequential" };
        metrics::histogram!("levee_storage_fsync_duration_seconds", "log" => log)
            .record(started.elapsed().as_secs_f64());
        metrics::histogram!("levee_storage_group_commit_batch_entries", "log" => log)
            .record(f64::from(count));
        metrics::counter!("levee_storage_log_written_bytes_total", "log" => log)
            .increment(self.buf.len() as u64);
        let stats = &self.shared.stats;
        stats.sync_nanos_total.fetch_add(
            u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        stats.syncs.fetch_add(1, Ordering::Relaxed);
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats.entries.fetch_add(u64::from(count), Ordering::Relaxed);
        stats
            .bytes_written
            .fetch_add(self.buf.len() as u64, Ordering::Relaxed);
        stats
            .batch_entries_max
            .fetch_max(u64::from(count), Ordering::Relaxed);
        self.pos = align_up(self.pos + self.buf.len() as u64);
        self.next_index = first_index + u64::from(count);

        if explicit {
            // Point the index at the disk copy of every entry no later submission replaced.
            let mut live = self.shared.live.lock();
            let mut index = first_index;
            for p in &batch {
                for (term, payload) in &p.entries {
                    if let Some(slot) = live.entries.get_mut(&index) {
                        if matches!(slot, Slot::Queued { seq, .. } if *seq == p.seq) {
                            *slot = Slot::Written {
                                term: *term,
                                ordinal,
                                pos: batch_pos,
                                len: payload.len() as u32,
                            };
                        }
                    }
                    index += 1;
                }
            }
            drop(live);
            let mut index = first_index;
            for p in batch {
                let ack = p.ack_index(index);
                index += p.entries.len() as u64;
                let _ = p.done.send(Ok(ack));
            }
            return;
        }

        // Apply in log order, then answer.
        let mut rest_of_batch = batch.into_iter();
        let mut index = first_index;
        while let Some(p) = rest_of_batch.next() {
            let ack = p.ack_index(index);
            for (term, payload) in &p.entries {
                let entry = LogEntry {
                    index,
                    term: *term,
                    payload,
                };
                if let Err(e) = self.applier.apply(entry) {
                    let err = self.poison(format!("applying entry {index} failed (it and the rest of its batch are durable and will be applied at restart): {e}"));
                    let _ = p.done.send(Err(err.clone()));
                    for rest in rest_of_batch {
                        let _ = rest.done.send(Err(err.clone()));
                    }
                    return;
                }
                index += 1;
            }
            let _ = p.done.send(Ok(ack));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::OsVfs;

    /// Records applied entries; panics on a payload of `b"panic"`.
    #[derive(Default)]
    struct Recorder {
        applied: Mutex<Vec<(u64, u64, Vec<u8>)>>,
        checkpoints: Mutex<Vec<ResumePoint>>,
    }

    impl Applier for Recorder {
        fn apply(&self, e: LogEntry<'_>) -> Result<()> {
            assert!(e.payload != b"panic", "test applier told to panic");
            self.applied
                .lock()
                .push((e.index, e.term, e.payload.to_vec()));
            Ok(())
        }
        fn checkpoint(&self, resume: ResumePoint) -> Result<()> {
            self.checkpoints.lock().push(resume);
            Ok(())
        }
    }

    fn config(dir: &Path) -> GroupLogConfig {
        let mut cfg = GroupLogConfig::new(dir.to_path_buf());
        cfg.segment_bytes = 64 << 10;
        cfg.batch_bytes_max = 4 << 10;
        cfg.entry_bytes_max = 8 << 10;
        cfg
    }

    fn open(dir: &Path, resume: Option<ResumePoint>) -> (GroupLog, Arc<Recorder>) {
        let rec = Arc::new(Recorder::default());
        let log = GroupLog::open(config(dir), Arc::new(OsVfs), resume, rec.clone()).unwrap();
        (log, rec)
    }

    #[test]
    fn concurrent_submits_are_applied_in_index_order_with_their_terms() {
        let dir = tempfile::tempdir().unwrap();
        let (log, rec) = open(dir.path(), None);
        let log = Arc::new(log);
        let threads: Vec<_> = (0..8u64)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || {
                    (0..200u64)
                        .map(|n| {
                            let payload = format!("{t}/{n}").into_bytes();
                            let idx = log
                                .submit(t, payload)
                                .unwrap()
                                .blocking_recv()
                                .unwrap()
                                .unwrap();
                            (idx, t, format!("{t}/{n}").into_bytes())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut acked: Vec<(u64, u64, Vec<u8>)> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        acked.sort();
        let applied = rec.applied.lock().clone();
        assert_eq!(
            applied, acked,
            "every acked entry applied once, in index order"
        );
        assert_eq!(applied.first().map(|e| e.0), Some(1));
        let stats = log.stats();
        assert_eq!(stats.entries.load(Ordering::Relaxed), 1600);
        assert!(
            stats.batches.load(Ordering::Relaxed) < 1600,
            "concurrent submits share batches"
        );
        assert!(!rec.checkpoints.lock().is_empty(), "small segments roll");
    }

    #[test]
    fn replay_resumes_at_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let (log, rec) = open(dir.path(), None);
        for n in 0..400u64 {
            log.submit(1, vec![n as u8; 300])
                .unwrap()
                .blocking_recv()
                .unwrap()
                .unwrap();
        }
        let resume = *rec.checkpoints.lock().last().unwrap();
        log.halt();
        let (log, rec2) = open(dir.path(), Some(resume));
        let replayed = rec2.applied.lock().clone();
        assert_eq!(replayed.first().unwrap().0, resume.next_index);
        assert_eq!(replayed.last().unwrap().0, 400);
        let idx = log
            .submit(1, b"next".to_vec())
            .unwrap()
            .blocking_recv()
            .unwrap()
            .unwrap();
        assert_eq!(idx, 401);
        drop(rec);
    }

    #[test]
    fn limits_are_checked_at_submit() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = open(dir.path(), None);
        assert!(matches!(
            log.submit(0, vec![0; (8 << 10) + 1]),
            Err(Error::EntryTooLarge { limit_bytes, .. }) if limit_bytes == 8 << 10
        ));
        let mut cfg = config(dir.path());
        cfg.segment_bytes = 1024;
        let err = GroupLog::open(cfg, Arc::new(OsVfs), None, Arc::new(Recorder::default()));
        assert!(matches!(err, Err(Error::Invalid(_))));
    }

    #[test]
    fn a_panicking_writer_poisons_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = open(dir.path(), None);
        log.submit(0, b"ok".to_vec())
            .unwrap()
            .blocking_recv()
            .unwrap()
            .unwrap();
        let ack = log.submit(0, b"panic".to_vec()).unwrap();
        assert!(
            !matches!(ack.blocking_recv(), Ok(Ok(_))),
            "the entry was not applied"
        );
        // checkpoint() waits until the writer has recorded why it stopped.
        match log.checkpoint() {
            Err(Error::Poisoned { reason }) => {
                assert!(reason.contains("test applier told to panic"), "{reason}")
            }
            other => panic!("expected Poisoned, got {other:?}"),
        }
        assert!(log.poisoned().is_some());
        assert!(matches!(
            log.submit(0, b"x".to_vec()),
            Err(Error::Poisoned { .. })
        ));
    }

    fn explicit(dir: &Path) -> GroupLog {
        GroupLog::open_explicit(config(dir), Arc::new(OsVfs)).unwrap()
    }

    fn put(log: &GroupLog, at: u64, terms: &[u64]) {
        let entries = terms
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                let mut payload = format!("{t}@{}", at + i as u64).into_bytes();
                payload.resize(300, b'.');
                (t, Bytes::from(payload))
            })
            .collect();
        log.submit_at(at, entries)
            .unwrap()
            .blocking_recv()
            .unwrap()
            .unwrap();
    }

    fn dump(log: &GroupLog) -> Vec<(u64, u64, Vec<u8>)> {
        log.read(0..u64::MAX, u64::MAX)
            .unwrap()
            .into_iter()
            .map(|e| (e.index, e.term, e.payload.to_vec()))
            .collect()
    }

    #[test]
    fn explicit_mode_later_batches_win_in_memory_and_after_recovery() {
        let dir = tempfile::tempdir().unwrap();
        let log = explicit(dir.path());
        put(&log, 0, &[1, 1, 1, 1, 1]); // 0..=4
        put(&log, 3, &[2, 2, 2]); // overwrite 3.. with 3..=5
        log.submit_at(5, Vec::new())
            .unwrap()
            .blocking_recv()
            .unwrap()
            .unwrap(); // truncate 5..
        put(&log, 8, &[3]); // a gap: 5..=7 absent
                            // Enough entries to roll several segments, then purge the first ones.
        for i in 0..1000u64 {
            put(&log, 9 + i, &[3]);
        }
        let before = dump(&log);
        let head: Vec<(u64, u64)> = before[..6].iter().map(|e| (e.0, e.1)).collect();
        assert_eq!(head, [(0, 1), (1, 1), (2, 1), (3, 2), (4, 2), (8, 3)]);
        assert_eq!(log.bounds(), Some(((0, 1), (1008, 3))));
        log.halt();

        let log = explicit(dir.path());
        assert_eq!(dump(&log), before, "recovery rebuilds the same log");
        let segments = |dir: &Path| {
            std::fs::read_dir(dir)
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .starts_with("wal-")
                })
                .count()
        };
        let n = segments(dir.path());
        assert!(n > 2, "the log rolled");
        log.release_through(200).unwrap();
        assert!(segments(dir.path()) < n, "whole segments released");
        assert_eq!(log.bounds().map(|b| b.0 .0), Some(201));
        log.halt();

        // Released segments are gone; what remains still recovers (entries below the purge
        // point in the first remaining segment come back: the caller purges them again).
        let log = explicit(dir.path());
        log.release_through(200).unwrap();
        assert_eq!(
            dump(&log),
            before
                .iter()
                .filter(|e| e.0 > 200)
                .cloned()
                .collect::<Vec<_>>()
        );
        log.halt();

        // A sequential log refuses explicit-mode segments.
        let rec = Arc::new(Recorder::default());
        assert!(GroupLog::open(config(dir.path()), Arc::new(OsVfs), None, rec).is_err());
    }

    /// Appends a CRC-valid batch (of `payload`, claiming `count` entries from `first_index`)
    /// after the first batch of segment 1, as damage the CRC cannot see would look.
    fn write_crafted_batch(dir: &Path, first_index: u64, count: u32, payload: &[u8]) {
        let path = dir.join(segment_name(1));
        let seg = std::fs::read(&path).unwrap();
        let (_, nonce, _, _) = decode_segment_header(&seg).unwrap();
        let first_len = u64::from(u32_at(&seg, 68).unwrap());
        let at = align_up(SEGMENT_HEADER_BYTES + BATCH_HEADER_BYTES + first_len);
        let mut header = Vec::new();
        header.put_u32(BATCH_MAGIC);
        header.put_u32(payload.len() as u32);
        header.put_u64(first_index);
        header.put_u32(count);
        let crc = batch_crc(nonce, &header, payload);
        header.put_u32(crc);
        header.resize(BATCH_HEADER_BYTES as usize, 0);
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        use std::os::unix::fs::FileExt;
        file.write_all_at(&header, at).unwrap();
        file.write_all_at(payload, at + BATCH_HEADER_BYTES).unwrap();
    }

    /// A CRC-valid batch header claiming billions of entries is refused as corrupt; it used to
    /// abort the process reserving memory for them (found by the `wal` fuzz target).
    #[test]
    fn a_batch_count_larger_than_its_payload_is_refused_without_allocating_it() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = open(dir.path(), None);
        log.submit(1, b"x".to_vec())
            .unwrap()
            .blocking_recv()
            .unwrap()
            .unwrap();
        drop(log);
        write_crafted_batch(dir.path(), 2, u32::MAX, &[0u8; 12]);
        let rec = Arc::new(Recorder::default());
        let err = GroupLog::open(config(dir.path()), Arc::new(OsVfs), None, rec)
            .err()
            .expect("refused");
        assert!(err.to_string().contains("entries do not decode"), "{err}");
    }

    /// An explicit-mode batch whose indexes run past u64::MAX is refused as corrupt; computing
    /// them overflowed (a panic in debug builds; found by the `wal` fuzz target).
    #[test]
    fn a_batch_whose_indexes_overflow_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let log = explicit(dir.path());
        put(&log, 1, &[1]);
        drop(log);
        let mut payload = Vec::new();
        for _ in 0..2 {
            payload.put_u64(1);
            payload.put_u32(0);
        }
        write_crafted_batch(dir.path(), u64::MAX, 2, &payload);
        let err = GroupLog::open_explicit(config(dir.path()), Arc::new(OsVfs))
            .err()
            .expect("refused");
        assert!(err.to_string().contains("batch indexes overflow"), "{err}");
    }
}
