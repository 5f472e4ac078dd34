//! The shard store: durable group-log entries applied into per-shard segment files, read back by
//! sequence index or arrival time, expired by per-stream retention, and checkpointed so that the
//! group log can be released.
//!
//! # On-disk layout
//!
//! ```text
//! <data>/manifest                              the last checkpoint (see below)
//! <data>/shards/<shard uid, 16 hex>/
//!     <base>.seg                               the active segment (base: first seq_ix, 16 hex)
//!     <base>-<last>-<last arrival ms>.seg      a sealed segment (all three 16 hex)
//!     <base>.idx                               the sparse index of segment <base>
//! ```
//!
//! A sealed segment's name carries its last sequence index and last arrival time, so opening the
//! store and enforcing retention need only directory listings, never data reads.
//!
//! **Segment record** (little-endian; records are packed back to back from offset 0):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | CRC32C of bytes 4..(8 + body length) |
//! | 4 | 4 | body length: 20 + partition-key length + data length |
//! | 8 | 8 | seq_ix |
//! | 16 | 8 | arrival time, epoch ms |
//! | 24 | 2 | partition-key length |
//! | 26 | 1 | flags (0; reserved for encryption) |
//! | 27 | 1 | zero |
//! | 28 | … | partition key, then data |
//!
//! **Sparse index entry**, 32 bytes, one for the first record of a segment and then one for the
//! first record after every `index_interval_bytes` of records. It serves both lookups: by sequence
//! index (for AT/AFTER_SEQUENCE_NUMBER) and by arrival time (for AT_TIMESTAMP), because both are
//! non-decreasing within a shard:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | seq_ix of the record |
//! | 8 | 8 | arrival ms of the record |
//! | 16 | 8 | byte offset of the record in the segment |
//! | 24 | 4 | CRC32C of bytes 0..24 |
//! | 28 | 4 | zero |
//!
//! The index is an accelerator: an entry that fails its CRC ends the usable index (a longer scan,
//! logged), never a failed read.
//!
//! **Manifest** (written to `manifest.tmp`, synced, renamed over `manifest`, directory synced):
//! magic `"LVMF"` u32, version u32, resume next index u64, resume ordinal u64, stream count u32,
//! then per stream `uid u64, retention_ms u64`, shard count u32, then per shard `uid u64,
//! stream u64, shard_index u32, created_ms u64, next_seq_ix u64, last_arrival_ms u64, closed u8,
//! has_active u8, active_base u64, active_len u64, index_len u64, bytes_since_index u64`, and a
//! CRC32C of everything before it.
//!
//! # Checkpoints and recovery
//!
//! Applying writes to segment files without syncing them. A checkpoint syncs every shard written
//! since the last one, syncs changed directories, and then writes the manifest: the shard table
//! with each shard's active segment and its length at that moment. Recovery truncates each active
//! segment (and index) back to the manifest's length, removes segments created after the
//! checkpoint, and the group log replays the entries after it — so replay is exact, never doubled.
//! Recovery reads the manifest and nothing else of the shard store.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use lru::LruCache;
use parking_lot::{Mutex, RwLock};

use crate::clock::Clock;
use crate::codec::{u32_at, u64_at, PutLe, Reader};
use crate::command::{self, Append, Command};
use crate::error::{Error, Result};
use crate::vfs::{VFile, Vfs};
use crate::wal::{Applier, LogEntry, ResumePoint};
use crate::{ShardUid, StreamUid};

/// Fixed bytes of a segment record before the partition key.
pub const RECORD_HEADER_BYTES: u64 = 28;
/// Size of one sparse-index entry.
pub const INDEX_ENTRY_BYTES: u64 = 32;
const MANIFEST_MAGIC: u32 = u32::from_le_bytes(*b"LVMF");
const MANIFEST_VERSION: u32 = 1;
/// Smallest read issued when scanning a segment.
const READ_CHUNK_MIN_BYTES: u64 = 64 << 10;

/// Sizes and limits of the shard store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub dir: PathBuf,
    /// A shard's active segment is sealed once it reaches this size.
    pub segment_bytes: u64,
    /// Distance between sparse-index entries.
    pub index_interval_bytes: u64,
    /// Open segment and index files kept by the file-handle cache.
    pub file_handles_max: usize,
    /// Sealed-segment indexes kept in memory.
    pub index_cache_segments_max: usize,
}

impl StoreConfig {
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            segment_bytes: 64 << 20,
            index_interval_bytes: 16 << 10,
            file_handles_max: 256,
            index_cache_segments_max: 256,
        }
    }
}

/// One record read back from a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub seq_ix: u64,
    pub arrival_ms: u64,
    pub partition_key: Bytes,
    pub data: Bytes,
}

/// Where a read starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrom {
    /// The first record whose sequence index is at least this.
    SeqIx(u64),
    /// The first record that arrived at or after this time (epoch ms).
    Timestamp(u64),
}

/// The result of a read.
#[derive(Debug, Clone)]
pub struct ReadBatch {
    pub records: Vec<Record>,
    /// Where the next read continues.
    pub next_seq_ix: u64,
    /// The shard is closed and everything in it has been read.
    pub shard_end: bool,
    /// The shard's next sequence index and last arrival time when the read started.
    pub tip: ShardTip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShardTip {
    pub next_seq_ix: u64,
    pub last_arrival_ms: u64,
}

/// What the store knows of a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    pub uid: ShardUid,
    pub stream: StreamUid,
    pub shard_index: u32,
    pub created_ms: u64,
    pub next_seq_ix: u64,
    pub last_arrival_ms: u64,
    pub closed: bool,
    /// Segment files on disk (sealed plus active).
    pub segments: usize,
}

/// Counters of the store's work.
#[derive(Debug, Default)]
pub struct StoreStats {
    pub records_applied: AtomicU64,
    pub bytes_applied: AtomicU64,
    pub segments_sealed: AtomicU64,
    pub segments_deleted: AtomicU64,
    pub index_loads: AtomicU64,
    pub corruptions: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IndexEntry {
    seq_ix: u64,
    arrival_ms: u64,
    offset: u64,
}

fn encode_index_entry(e: IndexEntry, out: &mut Vec<u8>) {
    let start = out.len();
    out.put_u64(e.seq_ix);
    out.put_u64(e.arrival_ms);
    out.put_u64(e.offset);
    let crc = crc32c::crc32c(&out[start..]);
    out.put_u32(crc);
    out.put_u32(0);
}

/// Parses index entries up to the first one that fails its CRC.
fn decode_index(buf: &[u8]) -> (Vec<IndexEntry>, bool) {
    let mut out = Vec::with_capacity(buf.len() / INDEX_ENTRY_BYTES as usize);
    for chunk in buf.chunks(INDEX_ENTRY_BYTES as usize) {
        let ok = chunk.len() == INDEX_ENTRY_BYTES as usize
            && u32_at(chunk, 24) == Some(crc32c::crc32c(&chunk[..24]));
        let parsed = ok
            .then(|| {
                Some(IndexEntry {
                    seq_ix: u64_at(chunk, 0)?,
                    arrival_ms: u64_at(chunk, 8)?,
                    offset: u64_at(chunk, 16)?,
                })
            })
            .flatten();
        match parsed {
            Some(e) => out.push(e),
            None => return (out, false),
        }
    }
    (out, true)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SealedSeg {
    base: u64,
    last_seq_ix: u64,
    last_arrival_ms: u64,
}

#[derive(Debug, Clone)]
struct ActiveSeg {
    base: u64,
    len: u64,
    index_len: u64,
    bytes_since_index: u64,
    /// Loaded on first need; kept up to date by apply once loaded.
    index: Option<Vec<IndexEntry>>,
}

/// A segment as a reader sees it: enough to read it without the shard lock.
#[derive(Debug, Clone)]
struct SegView {
    path: PathBuf,
    index_path: PathBuf,
    /// Readable length (the applied length of an active segment); `None`: the file's length.
    len: Option<u64>,
    /// Where to scan, found in the active segment's index under the shard lock (its index is
    /// not copied out); `None` for a sealed segment, whose cached index is consulted unlocked.
    active_span: Option<ScanSpan>,
}

#[derive(Debug)]
struct ShardData {
    next_seq_ix: u64,
    last_arrival_ms: u64,
    closed: bool,
    sealed: Vec<SealedSeg>,
    active: Option<ActiveSeg>,
}

/// The submit-side view: what has been assigned, possibly not yet durable.
#[derive(Debug)]
pub(crate) struct Assigned {
    pub next_seq_ix: u64,
    pub last_arrival_ms: u64,
    pub closed: bool,
}

pub(crate) struct Shard {
    pub uid: ShardUid,
    pub stream: StreamUid,
    pub shard_index: u32,
    pub created_ms: u64,
    dir: PathBuf,
    pub assigned: Mutex<Assigned>,
    data: Mutex<ShardData>,
}

fn active_name(base: u64) -> String {
    format!("{base:016x}.seg")
}

fn sealed_name(s: &SealedSeg) -> String {
    format!(
        "{:016x}-{:016x}-{:016x}.seg",
        s.base, s.last_seq_ix, s.last_arrival_ms
    )
}

fn index_name(base: u64) -> String {
    format!("{base:016x}.idx")
}

enum FileName {
    Active(u64),
    Sealed(SealedSeg),
    Index(u64),
    Other,
}

fn parse_name(name: &str) -> FileName {
    let hex = |s: &str| {
        (s.len() == 16)
            .then(|| u64::from_str_radix(s, 16).ok())
            .flatten()
    };
    if let Some(stem) = name.strip_suffix(".idx") {
        return hex(stem).map_or(FileName::Other, FileName::Index);
    }
    let Some(stem) = name.strip_suffix(".seg") else {
        return FileName::Other;
    };
    let parts: Vec<&str> = stem.split('-').collect();
    match parts.as_slice() {
        [b] => hex(b).map_or(FileName::Other, FileName::Active),
        [b, l, a] => match (hex(b), hex(l), hex(a)) {
            (Some(base), Some(last_seq_ix), Some(last_arrival_ms)) => FileName::Sealed(SealedSeg {
                base,
                last_seq_ix,
                last_arrival_ms,
            }),
            _ => FileName::Other,
        },
        _ => FileName::Other,
    }
}

/// A capped LRU cache of open files. Every segment and index file is opened through it, so the
/// store holds at most `cap` descriptors (plus those in use by in-flight reads).
struct FileCache {
    vfs: Arc<dyn Vfs>,
    lru: Mutex<LruCache<PathBuf, Arc<dyn VFile>>>,
    opens: AtomicU64,
}

impl FileCache {
    fn new(vfs: Arc<dyn Vfs>, cap: usize) -> Self {
        let cap = std::num::NonZeroUsize::new(cap.max(1)).unwrap_or(std::num::NonZeroUsize::MIN);
        Self {
            vfs,
            lru: Mutex::new(LruCache::new(cap)),
            opens: AtomicU64::new(0),
        }
    }

    fn get(&self, path: &Path) -> Result<Arc<dyn VFile>> {
        if let Some(f) = self.lru.lock().get(path) {
            return Ok(f.clone());
        }
        let f = self
            .vfs
            .open(path)
            .map_err(|e| Error::io("open", path, e))?;
        self.opens.fetch_add(1, Ordering::Relaxed);
        self.lru.lock().put(path.to_path_buf(), f.clone());
        Ok(f)
    }

    fn create(&self, path: &Path) -> Result<Arc<dyn VFile>> {
        let f = self
            .vfs
            .create(path)
            .map_err(|e| Error::io("create", path, e))?;
        self.opens.fetch_add(1, Ordering::Relaxed);
        self.lru.lock().put(path.to_path_buf(), f.clone());
        Ok(f)
    }

    fn forget(&self, path: &Path) {
        self.lru.lock().pop(path);
    }

    fn len(&self) -> usize {
        self.lru.lock().len()
    }
}

pub(crate) struct Store {
    cfg: StoreConfig,
    vfs: Arc<dyn Vfs>,
    clock: Arc<dyn Clock>,
    shards_dir: PathBuf,
    shards: RwLock<HashMap<ShardUid, Arc<Shard>>>,
    streams: RwLock<HashMap<StreamUid, u64>>,
    files: FileCache,
    index_cache: Mutex<LruCache<PathBuf, Arc<Vec<IndexEntry>>>>,
    /// Shards whose active files were written since the last checkpoint.
    dirty_shards: Mutex<HashSet<ShardUid>>,
    /// Directories whose entries changed since the last checkpoint.
    dirty_dirs: Mutex<HashSet<PathBuf>>,
    /// Scratch buffers for apply (only the log writer thread applies).
    scratch: Mutex<(Vec<u8>, Vec<u8>)>,
    pub stats: StoreStats,
}

/// What a manifest holds.
#[derive(Debug, Default)]
pub(crate) struct Manifest {
    pub resume: Option<ResumePoint>,
    streams: Vec<(StreamUid, u64)>,
    shards: Vec<ManifestShard>,
}

#[derive(Debug, Clone)]
struct ManifestShard {
    uid: ShardUid,
    stream: StreamUid,
    shard_index: u32,
    created_ms: u64,
    next_seq_ix: u64,
    last_arrival_ms: u64,
    closed: bool,
    active: Option<(u64, u64, u64, u64)>,
}

impl Store {
    /// Opens the store from its manifest: reads the manifest and lists shard directories,
    /// truncating active segments back to the checkpoint. Reads no segment data.
    pub(crate) fn open(
        cfg: StoreConfig,
        vfs: Arc<dyn Vfs>,
        clock: Arc<dyn Clock>,
    ) -> Result<(Store, Option<ResumePoint>)> {
        let shards_dir = cfg.dir.join("shards");
        vfs.create_dir_all(&shards_dir)
            .map_err(|e| Error::io("create directory", &shards_dir, e))?;
        let store = Store {
            files: FileCache::new(vfs.clone(), cfg.file_handles_max),
            index_cache: Mutex::new(LruCache::new(
                std::num::NonZeroUsize::new(cfg.index_cache_segments_max.max(1))
                    .unwrap_or(std::num::NonZeroUsize::MIN),
            )),
            cfg,
            vfs,
            clock,
            shards_dir,
            shards: RwLock::new(HashMap::new()),
            streams: RwLock::new(HashMap::new()),
            dirty_shards: Mutex::new(HashSet::new()),
            dirty_dirs: Mutex::new(HashSet::new()),
            scratch: Mutex::new((Vec::new(), Vec::new())),
            stats: StoreStats::default(),
        };
        let manifest = store.read_manifest()?;
        let resume = manifest.resume;
        *store.streams.write() = manifest.streams.iter().copied().collect();
        let mut shards = HashMap::new();
        for m in manifest.shards {
            let shard = store.recover_shard(&m)?;
            shards.insert(m.uid, Arc::new(shard));
        }
        *store.shards.write() = shards;
        Ok((store, resume))
    }

    fn manifest_path(&self) -> PathBuf {
        self.cfg.dir.join("manifest")
    }

    fn read_manifest(&self) -> Result<Manifest> {
        let path = self.manifest_path();
        if !self.vfs.exists(&path) {
            return Ok(Manifest::default());
        }
        let file = self
            .vfs
            .open(&path)
            .map_err(|e| Error::io("open", &path, e))?;
        let len = file.len().map_err(|e| Error::io("stat", &path, e))?;
        let mut buf = vec![0u8; len as usize];
        let n = file
            .read_full_at(&mut buf, 0)
            .map_err(|e| Error::io("read", &path, e))?;
        buf.truncate(n);
        decode_manifest(&buf).ok_or_else(|| {
            Error::corrupt(
                &path,
                0,
                "manifest fails its checksum or does not decode; refusing to guess the checkpoint",
            )
        })
    }

    fn recover_shard(&self, m: &ManifestShard) -> Result<Shard> {
        let dir = self.shards_dir.join(format!("{:016x}", m.uid.0));
        self.vfs
            .create_dir_all(&dir)
            .map_err(|e| Error::io("create directory", &dir, e))?;
        let names = self
            .vfs
            .list_dir(&dir)
            .map_err(|e| Error::io("list directory", &dir, e))?;
        let active_base = m.active.map(|a| a.0);
        let bound = active_base.unwrap_or(m.next_seq_ix);
        let mut sealed = Vec::new();
        let mut active_file: Option<String> = None;
        let mut keep_index = HashSet::new();
        let mut remove = Vec::new();
        for name in &names {
            match parse_name(name) {
                FileName::Active(base) if Some(base) == active_base => {
                    active_file = Some(name.clone());
                    keep_index.insert(base);
                }
                FileName::Sealed(s) if Some(s.base) == active_base => {
                    active_file = Some(name.clone());
                    keep_index.insert(s.base);
                }
                FileName::Sealed(s) if s.base < bound => {
                    sealed.push(s);
                    keep_index.insert(s.base);
                }
                FileName::Index(_) => {}
                // Created after the checkpoint (replay recreates it) or a temporary file.
                _ => remove.push(name.clone()),
            }
        }
        for name in &names {
            if let FileName::Index(base) = parse_name(name) {
                if !keep_index.contains(&base) {
                    remove.push(name.clone());
                }
            }
        }
        for name in &remove {
            let p = dir.join(name);
            self.vfs
                .remove_file(&p)
                .map_err(|e| Error::io("remove", &p, e))?;
        }
        sealed.sort_by_key(|s| s.base);
        let mut active = None;
        if let (Some((base, len, index_len, bytes_since_index)), Some(file)) =
            (m.active, active_file)
        {
            let want = dir.join(active_name(base));
            let have = dir.join(&file);
            if have != want {
                self.vfs
                    .rename(&have, &want)
                    .map_err(|e| Error::io("rename", &have, e))?;
            }
            let f = self.files.get(&want)?;
            f.set_len(len)
                .map_err(|e| Error::io("truncate", &want, e))?;
            let idx_path = dir.join(index_name(base));
            let idx = if self.vfs.exists(&idx_path) {
                self.files.get(&idx_path)?
            } else {
                self.files.create(&idx_path)?
            };
            idx.set_len(index_len)
                .map_err(|e| Error::io("truncate", &idx_path, e))?;
            active = Some(ActiveSeg {
                base,
                len,
                index_len,
                bytes_since_index,
                index: None,
            });
            self.dirty_shards.lock().insert(m.uid);
        }
        if !remove.is_empty() || active.is_some() {
            self.dirty_dirs.lock().insert(dir.clone());
        }
        Ok(Shard {
            uid: m.uid,
            stream: m.stream,
            shard_index: m.shard_index,
            created_ms: m.created_ms,
            dir,
            assigned: Mutex::new(Assigned {
                next_seq_ix: m.next_seq_ix,
                last_arrival_ms: m.last_arrival_ms,
                closed: m.closed,
            }),
            data: Mutex::new(ShardData {
                next_seq_ix: m.next_seq_ix,
                last_arrival_ms: m.last_arrival_ms,
                closed: m.closed,
                sealed,
                active,
            }),
        })
    }

    /// After replay: brings the submit-side state up to the applied state and removes shard
    /// directories that belong to no shard (dropped before a crash).
    pub(crate) fn finish_recovery(&self) -> Result<()> {
        let shards = self.shards.read();
        for shard in shards.values() {
            let d = shard.data.lock();
            let mut a = shard.assigned.lock();
            a.next_seq_ix = d.next_seq_ix;
            a.last_arrival_ms = d.last_arrival_ms;
            a.closed = d.closed;
        }
        let names = self
            .vfs
            .list_dir(&self.shards_dir)
            .map_err(|e| Error::io("list directory", &self.shards_dir, e))?;
        for name in names {
            let known = u64::from_str_radix(&name, 16)
                .ok()
                .is_some_and(|uid| shards.contains_key(&ShardUid(uid)));
            if !known {
                let p = self.shards_dir.join(&name);
                tracing::info!(path = %p.display(), "removing data of a dropped shard");
                self.vfs
                    .remove_dir_all(&p)
                    .map_err(|e| Error::io("remove directory", &p, e))?;
            }
        }
        Ok(())
    }

    pub(crate) fn shard(&self, uid: ShardUid) -> Result<Arc<Shard>> {
        self.shards
            .read()
            .get(&uid)
            .cloned()
            .ok_or(Error::ShardNotFound(uid))
    }

    pub(crate) fn shards_of(&self, stream: StreamUid) -> Vec<Arc<Shard>> {
        self.shards
            .read()
            .values()
            .filter(|s| s.stream == stream)
            .cloned()
            .collect()
    }

    pub(crate) fn stream_retention_ms(&self, stream: StreamUid) -> Option<u64> {
        self.streams.read().get(&stream).copied()
    }

    pub(crate) fn streams(&self) -> Vec<(StreamUid, u64)> {
        self.streams.read().iter().map(|(k, v)| (*k, *v)).collect()
    }

    pub(crate) fn open_files(&self) -> usize {
        self.files.len()
    }

    pub(crate) fn file_opens(&self) -> u64 {
        self.files.opens.load(Ordering::Relaxed)
    }

    pub(crate) fn info(&self, shard: &Shard) -> ShardInfo {
        let d = shard.data.lock();
        ShardInfo {
            uid: shard.uid,
            stream: shard.stream,
            shard_index: shard.shard_index,
            created_ms: shard.created_ms,
            next_seq_ix: d.next_seq_ix,
            last_arrival_ms: d.last_arrival_ms,
            closed: d.closed,
            segments: d.sealed.len() + usize::from(d.active.is_some()),
        }
    }

    fn apply_command(&self, cmd: Command<'_>) -> Result<()> {
        match cmd {
            Command::PutStream {
                stream,
                retention_ms,
            } => {
                self.streams.write().insert(stream, retention_ms);
            }
            Command::DropStream { stream } => {
                self.streams.write().remove(&stream);
                let dropped: Vec<Arc<Shard>> = {
                    let mut shards = self.shards.write();
                    let uids: Vec<ShardUid> = shards
                        .values()
                        .filter(|s| s.stream == stream)
                        .map(|s| s.uid)
                        .collect();
                    uids.iter().filter_map(|u| shards.remove(u)).collect()
                };
                for shard in dropped {
                    self.dirty_shards.lock().remove(&shard.uid);
                    let d = shard.data.lock();
                    for name in d
                        .sealed
                        .iter()
                        .map(sealed_name)
                        .chain(d.active.iter().map(|a| active_name(a.base)))
                    {
                        self.files.forget(&shard.dir.join(name));
                    }
                    self.vfs
                        .remove_dir_all(&shard.dir)
                        .map_err(|e| Error::io("remove directory", &shard.dir, e))?;
                }
                self.dirty_dirs.lock().insert(self.shards_dir.clone());
            }
            Command::CreateShard {
                shard,
                stream,
                shard_index,
                created_ms,
            } => {
                let dir = self.shards_dir.join(format!("{:016x}", shard.0));
                // A replay after a crash may find a directory from before the crash.
                self.vfs
                    .remove_dir_all(&dir)
                    .map_err(|e| Error::io("remove directory", &dir, e))?;
                self.vfs
                    .create_dir_all(&dir)
                    .map_err(|e| Error::io("create directory", &dir, e))?;
                self.dirty_dirs.lock().insert(self.shards_dir.clone());
                let s = Shard {
                    uid: shard,
                    stream,
                    shard_index,
                    created_ms,
                    dir,
                    assigned: Mutex::new(Assigned {
                        next_seq_ix: 0,
                        last_arrival_ms: created_ms,
                        closed: false,
                    }),
                    data: Mutex::new(ShardData {
                        next_seq_ix: 0,
                        last_arrival_ms: created_ms,
                        closed: false,
                        sealed: Vec::new(),
                        active: None,
                    }),
                };
                self.shards.write().insert(shard, Arc::new(s));
                self.dirty_shards.lock().insert(shard);
            }
            Command::CloseShard { shard } => {
                if let Ok(s) = self.shard(shard) {
                    s.data.lock().closed = true;
                    self.dirty_shards.lock().insert(shard);
                }
            }
            Command::Append(a) => self.apply_append(&a)?,
        }
        Ok(())
    }

    fn apply_append(&self, a: &Append<'_>) -> Result<()> {
        let Ok(shard) = self.shard(a.shard) else {
            // The shard was dropped after this entry was logged.
            return Ok(());
        };
        let mut d = shard.data.lock();
        assert!(
            a.first_seq_ix >= d.next_seq_ix,
            "sequence index went backwards in shard {}: {} < {}",
            a.shard,
            a.first_seq_ix,
            d.next_seq_ix
        );
        assert!(
            a.arrival_ms >= d.last_arrival_ms,
            "arrival time went backwards in shard {}",
            a.shard
        );
        if a.count == 0 {
            return Ok(());
        }
        if d.active
            .as_ref()
            .is_none_or(|s| s.len >= self.cfg.segment_bytes)
        {
            self.roll(&shard, &mut d, a.first_seq_ix)?;
        }
        let Some(active) = d.active.as_mut() else {
            return Err(Error::Invalid("no active segment after roll".into()));
        };
        let mut scratch = self.scratch.lock();
        let (seg_buf, idx_buf) = &mut *scratch;
        seg_buf.clear();
        idx_buf.clear();
        let mut new_index = Vec::new();
        for (i, rec) in a.iter().enumerate() {
            let (pk, data) =
                rec.map_err(|_| Error::Invalid(format!("append to {} does not decode", a.shard)))?;
            let seq_ix = a.first_seq_ix + i as u64;
            let offset = active.len + seg_buf.len() as u64;
            if offset == 0 || active.bytes_since_index >= self.cfg.index_interval_bytes {
                let e = IndexEntry {
                    seq_ix,
                    arrival_ms: a.arrival_ms,
                    offset,
                };
                encode_index_entry(e, idx_buf);
                new_index.push(e);
                active.bytes_since_index = 0;
            }
            let start = seg_buf.len();
            seg_buf.put_u32(0);
            seg_buf.put_u32((RECORD_HEADER_BYTES - 8) as u32 + pk.len() as u32 + data.len() as u32);
            seg_buf.put_u64(seq_ix);
            seg_buf.put_u64(a.arrival_ms);
            seg_buf.put_u16(pk.len() as u16);
            seg_buf.put_u8(0);
            seg_buf.put_u8(0);
            seg_buf.extend_from_slice(pk);
            seg_buf.extend_from_slice(data);
            let crc = crc32c::crc32c(&seg_buf[start + 4..]);
            seg_buf[start..start + 4].copy_from_slice(&crc.to_le_bytes());
            active.bytes_since_index += (seg_buf.len() - start) as u64;
        }
        let seg_path = shard.dir.join(active_name(active.base));
        let f = self.files.get(&seg_path)?;
        f.write_all_at(seg_buf, active.len)
            .map_err(|e| Error::io("write", &seg_path, e))?;
        if !idx_buf.is_empty() {
            let idx_path = shard.dir.join(index_name(active.base));
            let fi = self.files.get(&idx_path)?;
            fi.write_all_at(idx_buf, active.index_len)
                .map_err(|e| Error::io("write", &idx_path, e))?;
            active.index_len += idx_buf.len() as u64;
            if let Some(index) = active.index.as_mut() {
                index.extend_from_slice(&new_index);
            }
        }
        active.len += seg_buf.len() as u64;
        self.stats
            .records_applied
            .fetch_add(u64::from(a.count), Ordering::Relaxed);
        self.stats
            .bytes_applied
            .fetch_add(seg_buf.len() as u64, Ordering::Relaxed);
        d.next_seq_ix = a.first_seq_ix + u64::from(a.count);
        d.last_arrival_ms = a.arrival_ms;
        drop(d);
        self.dirty_shards.lock().insert(a.shard);
        Ok(())
    }

    /// Seals the active segment (synced, renamed to carry its last seq_ix and arrival) and
    /// starts a new one at `base`.
    fn roll(&self, shard: &Shard, d: &mut ShardData, base: u64) -> Result<()> {
        if let Some(active) = d.active.take() {
            if active.len > 0 {
                let from = shard.dir.join(active_name(active.base));
                let idx = shard.dir.join(index_name(active.base));
                for p in [&from, &idx] {
                    self.files
                        .get(p)?
                        .sync_data()
                        .map_err(|e| Error::io("fdatasync", p, e))?;
                }
                let s = SealedSeg {
                    base: active.base,
                    last_seq_ix: d.next_seq_ix.saturating_sub(1),
                    last_arrival_ms: d.last_arrival_ms,
                };
                let to = shard.dir.join(sealed_name(&s));
                self.vfs
                    .rename(&from, &to)
                    .map_err(|e| Error::io("rename", &from, e))?;
                self.files.forget(&from);
                d.sealed.push(s);
                self.stats.segments_sealed.fetch_add(1, Ordering::Relaxed);
            } else {
                d.active = Some(active);
                return Ok(());
            }
        }
        self.files.create(&shard.dir.join(active_name(base)))?;
        self.files.create(&shard.dir.join(index_name(base)))?;
        d.active = Some(ActiveSeg {
            base,
            len: 0,
            index_len: 0,
            bytes_since_index: 0,
            index: Some(Vec::new()),
        });
        self.dirty_dirs.lock().insert(shard.dir.clone());
        Ok(())
    }

    /// Syncs what was written since the last checkpoint and writes the manifest.
    pub(crate) fn checkpoint(&self, resume: ResumePoint) -> Result<()> {
        let dirty: Vec<ShardUid> = self.dirty_shards.lock().drain().collect();
        let mut manifest = Manifest {
            resume: Some(resume),
            streams: self.streams(),
            shards: Vec::new(),
        };
        let shards: Vec<Arc<Shard>> = self.shards.read().values().cloned().collect();
        let dirty: HashSet<ShardUid> = dirty.into_iter().collect();
        for shard in shards {
            let d = shard.data.lock();
            if dirty.contains(&shard.uid) {
                if let Some(a) = &d.active {
                    for p in [
                        shard.dir.join(active_name(a.base)),
                        shard.dir.join(index_name(a.base)),
                    ] {
                        self.files
                            .get(&p)?
                            .sync_data()
                            .map_err(|e| Error::io("fdatasync", &p, e))?;
                    }
                }
            }
            manifest.shards.push(ManifestShard {
                uid: shard.uid,
                stream: shard.stream,
                shard_index: shard.shard_index,
                created_ms: shard.created_ms,
                next_seq_ix: d.next_seq_ix,
                last_arrival_ms: d.last_arrival_ms,
                closed: d.closed,
                active: d
                    .active
                    .as_ref()
                    .map(|a| (a.base, a.len, a.index_len, a.bytes_since_index)),
            });
        }
        let dirs: Vec<PathBuf> = self.dirty_dirs.lock().drain().collect();
        for dir in dirs {
            if self.vfs.exists(&dir) {
                self.vfs
                    .sync_dir(&dir)
                    .map_err(|e| Error::io("sync directory", &dir, e))?;
            }
        }
        let bytes = encode_manifest(&manifest);
        let tmp = self.cfg.dir.join("manifest.tmp");
        let f = self
            .vfs
            .create(&tmp)
            .map_err(|e| Error::io("create", &tmp, e))?;
        f.write_all_at(&bytes, 0)
            .map_err(|e| Error::io("write", &tmp, e))?;
        f.sync_data().map_err(|e| Error::io("fdatasync", &tmp, e))?;
        let path = self.manifest_path();
        self.vfs
            .rename(&tmp, &path)
            .map_err(|e| Error::io("rename", &tmp, e))?;
        self.vfs
            .sync_dir(&self.cfg.dir)
            .map_err(|e| Error::io("sync directory", &self.cfg.dir, e))?;
        Ok(())
    }

    fn segment_views(
        &self,
        shard: &Shard,
        from: ReadFrom,
        max_records: usize,
        cutoff_ms: u64,
    ) -> Result<(Vec<SegView>, ShardTip, bool)> {
        let mut d = shard.data.lock();
        let tip = ShardTip {
            next_seq_ix: d.next_seq_ix,
            last_arrival_ms: d.last_arrival_ms,
        };
        let closed = d.closed;
        let mut views = Vec::new();
        for s in &d.sealed {
            let skip = s.last_arrival_ms < cutoff_ms
                || match from {
                    ReadFrom::SeqIx(x) => s.last_seq_ix < x,
                    ReadFrom::Timestamp(t) => s.last_arrival_ms < t,
                };
            if !skip {
                views.push(SegView {
                    path: shard.dir.join(sealed_name(s)),
                    index_path: shard.dir.join(index_name(s.base)),
                    len: None,
                    active_span: None,
                });
            }
        }
        let dir = shard.dir.clone();
        if let Some(a) = d.active.as_mut() {
            if a.len > 0 {
                if a.index.is_none() {
                    let p = dir.join(index_name(a.base));
                    a.index = Some(self.load_index(&p, Some(a.index_len))?);
                }
                views.push(SegView {
                    path: dir.join(active_name(a.base)),
                    index_path: dir.join(index_name(a.base)),
                    len: Some(a.len),
                    active_span: a
                        .index
                        .as_deref()
                        .map(|ix| scan_span(ix, from, max_records)),
                });
            }
        }
        Ok((views, tip, closed))
    }

    fn load_index(&self, path: &Path, len: Option<u64>) -> Result<Vec<IndexEntry>> {
        let f = self.files.get(path)?;
        let len = match len {
            Some(l) => l,
            None => f.len().map_err(|e| Error::io("stat", path, e))?,
        };
        let mut buf = vec![0u8; len as usize];
        let n = f
            .read_full_at(&mut buf, 0)
            .map_err(|e| Error::io("read", path, e))?;
        buf.truncate(n);
        self.stats.index_loads.fetch_add(1, Ordering::Relaxed);
        let (entries, whole) = decode_index(&buf);
        if !whole {
            tracing::warn!(path = %path.display(), offset = entries.len() as u64 * INDEX_ENTRY_BYTES, "sparse index entry fails its checksum; reads scan from the last good entry");
        }
        Ok(entries)
    }

    fn sealed_index(&self, path: &Path) -> Result<Arc<Vec<IndexEntry>>> {
        if let Some(ix) = self.index_cache.lock().get(path) {
            return Ok(ix.clone());
        }
        let ix = Arc::new(self.load_index(path, None)?);
        self.index_cache.lock().put(path.to_path_buf(), ix.clone());
        Ok(ix)
    }

    /// Reads records from a shard. Blocking I/O: call it from a blocking context.
    ///
    /// Returns at most `max_records` records and at most `max_bytes` of partition keys and data
    /// (but always the first record found, however large). Records past the stream's retention
    /// are skipped.
    pub(crate) fn read(
        &self,
        shard: &Shard,
        from: ReadFrom,
        max_records: usize,
        max_bytes: u64,
    ) -> Result<ReadBatch> {
        let now = self.clock.now_ms();
        let retention = self
            .stream_retention_ms(shard.stream)
            .ok_or(Error::StreamNotFound(shard.stream))?;
        let cutoff_ms = now.saturating_sub(retention);
        let (views, tip, closed) = self.segment_views(shard, from, max_records, cutoff_ms)?;
        let mut scan = Scan {
            min_seq: match from {
                ReadFrom::SeqIx(x) => x,
                ReadFrom::Timestamp(_) => 0,
            },
            min_arrival: match from {
                ReadFrom::SeqIx(_) => cutoff_ms,
                ReadFrom::Timestamp(t) => t.max(cutoff_ms),
            },
            max_records: max_records.max(1),
            max_bytes,
            bytes: 0,
            out: Vec::new(),
            next: match from {
                ReadFrom::SeqIx(x) => x,
                ReadFrom::Timestamp(_) => 0,
            },
            full: false,
        };
        for v in &views {
            let f = match self.files.get(&v.path) {
                Ok(f) => f,
                // Retention removed it after the listing: move on.
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                    continue
                }
                Err(e) => return Err(e),
            };
            let end = match v.len {
                Some(l) => l,
                None => f.len().map_err(|e| Error::io("stat", &v.path, e))?,
            };
            let span = match v.active_span {
                Some(span) => span,
                None => scan_span(&self.sealed_index(&v.index_path)?, from, max_records),
            };
            self.scan_segment(&*f, &v.path, span, end, &mut scan)?;
            if scan.full {
                break;
            }
        }
        let mut next = scan.next;
        if !scan.full {
            next = next.max(tip.next_seq_ix);
        }
        Ok(ReadBatch {
            shard_end: closed && next >= tip.next_seq_ix,
            records: scan.out,
            next_seq_ix: next,
            tip,
        })
    }

    /// Reads the records of one segment from `offset` to `end` into `scan`.
    fn scan_segment(
        &self,
        f: &dyn VFile,
        path: &Path,
        span: ScanSpan,
        end: u64,
        scan: &mut Scan,
    ) -> Result<()> {
        let mut offset = span.start;
        let mut need = 0u64;
        while offset < end && !scan.full {
            let budget = scan.max_bytes.saturating_sub(scan.bytes);
            // The index bounds the first read to the records asked for, so a small Limit does
            // not read (and zero) the byte budget's worth; past it (records skipped by
            // timestamp or retention), reads go on in chunks.
            let enough = span.enough.map_or(u64::MAX, |e| e.saturating_sub(offset));
            let want = (budget + RECORD_HEADER_BYTES)
                .min(enough)
                .max(READ_CHUNK_MIN_BYTES)
                .max(need)
                .min(end - offset);
            let mut buf = vec![0u8; want as usize];
            let n = f
                .read_full_at(&mut buf, offset)
                .map_err(|e| Error::io("read", path, e))?;
            if (n as u64) < want {
                return Err(self.corrupt(
                    path,
                    offset + n as u64,
                    "segment is shorter than its applied length",
                ));
            }
            let chunk = Bytes::from(buf);
            let mut at = 0usize;
            need = 0;
            while at + 8 <= chunk.len() && !scan.full {
                let rec_off = offset + at as u64;
                let body_len = u64::from(u32_at(&chunk, at + 4).unwrap_or(0));
                let total = 8 + body_len;
                if body_len < RECORD_HEADER_BYTES - 8 || rec_off + total > end {
                    return Err(self.corrupt(
                        path,
                        rec_off,
                        &format!("record length {body_len} is impossible here"),
                    ));
                }
                let Some(rec) = chunk.get(at..at + total as usize) else {
                    // The record continues past this chunk: read again from it.
                    need = total;
                    break;
                };
                let crc = u32_at(rec, 0).unwrap_or(0);
                if crc32c::crc32c(&rec[4..]) != crc {
                    return Err(self.corrupt(path, rec_off, "record fails its CRC32C"));
                }
                let seq_ix = u64_at(rec, 8).unwrap_or(0);
                let arrival_ms = u64_at(rec, 16).unwrap_or(0);
                let pk_len = u64::from(u32_at(rec, 24).unwrap_or(0) & 0xffff);
                if RECORD_HEADER_BYTES + pk_len > total {
                    return Err(self.corrupt(
                        path,
                        rec_off,
                        "partition key longer than the record",
                    ));
                }
                if seq_ix >= scan.min_seq && arrival_ms >= scan.min_arrival {
                    let pk_start = at + RECORD_HEADER_BYTES as usize;
                    let pk_end = pk_start + pk_len as usize;
                    let size = total - RECORD_HEADER_BYTES;
                    if !scan.out.is_empty() && scan.bytes + size > scan.max_bytes {
                        scan.full = true;
                        break;
                    }
                    scan.bytes += size;
                    scan.out.push(Record {
                        seq_ix,
                        arrival_ms,
                        partition_key: chunk.slice(pk_start..pk_end),
                        data: chunk.slice(pk_end..at + total as usize),
                    });
                    scan.full = scan.out.len() >= scan.max_records;
                }
                scan.next = scan.next.max(seq_ix + 1);
                at += total as usize;
            }
            if at == 0 && need == 0 && !scan.full {
                return Err(self.corrupt(path, offset, "record header cut short"));
            }
            offset += at as u64;
        }
        Ok(())
    }

    fn corrupt(&self, path: &Path, offset: u64, detail: &str) -> Error {
        self.stats.corruptions.fetch_add(1, Ordering::Relaxed);
        let e = Error::corrupt(path, offset, detail);
        tracing::error!(error = %e, "shard segment is corrupt");
        e
    }

    /// Deletes whole segments whose records are all past their stream's retention, including an
    /// active segment that holds only expired records. Returns the number of segments deleted.
    pub(crate) fn enforce_retention(&self) -> Result<usize> {
        let now = self.clock.now_ms();
        let shards: Vec<Arc<Shard>> = self.shards.read().values().cloned().collect();
        let mut deleted = 0;
        for shard in shards {
            let Some(retention) = self.stream_retention_ms(shard.stream) else {
                continue;
            };
            let cutoff = now.saturating_sub(retention);
            let mut d = shard.data.lock();
            let expired = d
                .sealed
                .iter()
                .take_while(|s| s.last_arrival_ms < cutoff)
                .count();
            let doomed: Vec<SealedSeg> = d.sealed.drain(..expired).collect();
            for s in &doomed {
                for p in [
                    shard.dir.join(sealed_name(s)),
                    shard.dir.join(index_name(s.base)),
                ] {
                    self.files.forget(&p);
                    self.index_cache.lock().pop(&p);
                    if let Err(e) = self.vfs.remove_file(&p) {
                        if e.kind() != std::io::ErrorKind::NotFound {
                            return Err(Error::io("remove", &p, e));
                        }
                    }
                }
                deleted += 1;
            }
            let active_expired = d.sealed.is_empty()
                && d.last_arrival_ms < cutoff
                && d.active.as_ref().is_some_and(|a| a.len > 0);
            if active_expired {
                if let Some(a) = d.active.take() {
                    for p in [
                        shard.dir.join(active_name(a.base)),
                        shard.dir.join(index_name(a.base)),
                    ] {
                        self.files.forget(&p);
                        if let Err(e) = self.vfs.remove_file(&p) {
                            if e.kind() != std::io::ErrorKind::NotFound {
                                return Err(Error::io("remove", &p, e));
                            }
                        }
                    }
                    deleted += 1;
                }
            }
            if !doomed.is_empty() || active_expired {
                self.dirty_dirs.lock().insert(shard.dir.clone());
                self.dirty_shards.lock().insert(shard.uid);
            }
        }
        self.stats
            .segments_deleted
            .fetch_add(deleted as u64, Ordering::Relaxed);
        Ok(deleted)
    }

    /// Bytes on disk of a stream's shards (segment and index files).
    pub(crate) fn disk_usage_bytes(&self, stream: StreamUid) -> Result<u64> {
        let mut total = 0;
        for shard in self.shards_of(stream) {
            let names = self
                .vfs
                .list_dir(&shard.dir)
                .map_err(|e| Error::io("list directory", &shard.dir, e))?;
            for n in names {
                let p = shard.dir.join(n);
                total += self.vfs.file_len(&p).unwrap_or(0);
            }
        }
        Ok(total)
    }
}

impl Applier for Store {
    fn apply(&self, entry: LogEntry<'_>) -> Result<()> {
        let cmd = command::decode(entry.payload).ok_or_else(|| {
            Error::Invalid(format!(
                "log entry {} is not a storage command",
                entry.index
            ))
        })?;
        self.apply_command(cmd)
    }

    fn checkpoint(&self, resume: ResumePoint) -> Result<()> {
        Store::checkpoint(self, resume)
    }
}

/// The state of one read across segments.
struct Scan {
    min_seq: u64,
    min_arrival: u64,
    max_records: usize,
    max_bytes: u64,
    bytes: u64,
    out: Vec<Record>,
    /// Past every record examined so far.
    next: u64,
    full: bool,
}

/// Where a read scans one segment, from its sparse index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ScanSpan {
    /// Scan from here: the last index entry before the target (0 without a usable index).
    start: u64,
    /// The records asked for all end at or before this offset, if the index says so: the first
    /// indexed record at least `max_records` past the start entry. A hint for read sizes only.
    enough: Option<u64>,
}

fn scan_span(index: &[IndexEntry], from: ReadFrom, max_records: usize) -> ScanSpan {
    if index.first().is_none_or(|e| e.offset != 0) {
        return ScanSpan {
            start: 0,
            enough: None,
        };
    }
    let i = match from {
        ReadFrom::SeqIx(x) => index.partition_point(|e| e.seq_ix <= x),
        ReadFrom::Timestamp(t) => index.partition_point(|e| e.arrival_ms < t),
    };
    let Some(first) = i.checked_sub(1).and_then(|i| index.get(i)) else {
        return ScanSpan {
            start: 0,
            enough: None,
        };
    };
    // Sequence indexes in a segment are consecutive from the start entry on, so the records
    // from the target on are below `past`; for a timestamp the target is at or after `first`.
    let past = match from {
        ReadFrom::SeqIx(x) => x.max(first.seq_ix),
        ReadFrom::Timestamp(_) => first.seq_ix,
    }
    .saturating_add(max_records as u64);
    let enough = index[i..]
        .get(index[i..].partition_point(|e| e.seq_ix < past))
        .map(|e| e.offset);
    ScanSpan {
        start: first.offset,
        enough,
    }
}

fn encode_manifest(m: &Manifest) -> Vec<u8> {
    let mut v = Vec::new();
    let resume = m.resume.unwrap_or(ResumePoint::START);
    v.put_u32(MANIFEST_MAGIC);
    v.put_u32(MANIFEST_VERSION);
    v.put_u64(resume.next_index);
    v.put_u64(resume.ordinal);
    v.put_u32(m.streams.len() as u32);
    for (uid, retention) in &m.streams {
        v.put_u64(uid.0);
        v.put_u64(*retention);
    }
    v.put_u32(m.shards.len() as u32);
    for s in &m.shards {
        v.put_u64(s.uid.0);
        v.put_u64(s.stream.0);
        v.put_u32(s.shard_index);
        v.put_u64(s.created_ms);
        v.put_u64(s.next_seq_ix);
        v.put_u64(s.last_arrival_ms);
        v.put_u8(u8::from(s.closed));
        v.put_u8(u8::from(s.active.is_some()));
        let (base, len, index_len, since) = s.active.unwrap_or((0, 0, 0, 0));
        v.put_u64(base);
        v.put_u64(len);
        v.put_u64(index_len);
        v.put_u64(since);
    }
    let crc = crc32c::crc32c(&v);
    v.put_u32(crc);
    v
}

fn decode_manifest(buf: &[u8]) -> Option<Manifest> {
    let body_len = buf.len().checked_sub(4)?;
    if u32_at(buf, body_len)? != crc32c::crc32c(&buf[..body_len]) {
        return None;
    }
    let mut r = Reader::new(&buf[..body_len]);
    if r.u32().ok()? != MANIFEST_MAGIC || r.u32().ok()? != MANIFEST_VERSION {
        return None;
    }
    let resume = ResumePoint {
        next_index: r.u64().ok()?,
        ordinal: r.u64().ok()?,
    };
    let n = r.u32().ok()?;
    let mut streams = Vec::new();
    for _ in 0..n {
        streams.push((StreamUid(r.u64().ok()?), r.u64().ok()?));
    }
    let n = r.u32().ok()?;
    let mut shards = Vec::new();
    for _ in 0..n {
        let uid = ShardUid(r.u64().ok()?);
        let stream = StreamUid(r.u64().ok()?);
        let shard_index = r.u32().ok()?;
        let created_ms = r.u64().ok()?;
        let next_seq_ix = r.u64().ok()?;
        let last_arrival_ms = r.u64().ok()?;
        let closed = r.u8().ok()? != 0;
        let has_active = r.u8().ok()? != 0;
        let active = (r.u64().ok()?, r.u64().ok()?, r.u64().ok()?, r.u64().ok()?);
        shards.push(ManifestShard {
            uid,
            stream,
            shard_index,
            created_ms,
            next_seq_ix,
            last_arrival_ms,
            closed,
            active: has_active.then_some(active),
        });
    }
    (r.remaining() == 0).then_some(Manifest {
        resume: Some(resume),
        streams,
        shards,
    })
}

#[cfg(test)]
mod scan_span_tests {
    use super::*;

    /// An index of a segment whose records `10..` are 100 bytes each, indexed every 4 records,
    /// arriving one per millisecond from 1,000.
    fn index() -> Vec<IndexEntry> {
        (0..5)
            .map(|i| IndexEntry {
                seq_ix: 10 + 4 * i,
                arrival_ms: 1_000 + 4 * i,
                offset: 400 * i,
            })
            .collect()
    }

    #[test]
    fn a_read_by_sequence_ends_at_the_first_entry_past_its_records() {
        let ix = index();
        // Records 13..=17 end where record 18's entry starts (offset 800).
        let span = scan_span(&ix, ReadFrom::SeqIx(13), 5);
        assert_eq!(
            span,
            ScanSpan {
                start: 0,
                enough: Some(800)
            }
        );
        // Records 14..=15: from the entry at 14 to the next one at or past 16, record 18's.
        let span = scan_span(&ix, ReadFrom::SeqIx(14), 2);
        assert_eq!(
            span,
            ScanSpan {
                start: 400,
                enough: Some(800)
            }
        );
        // Records 14..=22 end where record 23 starts, unindexed: the entry at 26 bounds them.
        assert_eq!(scan_span(&ix, ReadFrom::SeqIx(14), 9).enough, Some(1_600));
        // Past the last entry: no end known.
        assert_eq!(scan_span(&ix, ReadFrom::SeqIx(20), 100).enough, None);
        assert_eq!(scan_span(&ix, ReadFrom::SeqIx(27), 1).start, 1_600);
    }

    #[test]
    fn a_read_by_time_counts_from_the_entry_it_starts_at() {
        let ix = index();
        // 1,005 ms is record 15, scanned from the entry at 14: 4 records from 14 end at 18.
        let span = scan_span(&ix, ReadFrom::Timestamp(1_005), 4);
        assert_eq!(
            span,
            ScanSpan {
                start: 400,
                enough: Some(800)
            }
        );
    }

    #[test]
    fn without_a_usable_index_the_whole_segment_is_scanned() {
        let none = ScanSpan {
            start: 0,
            enough: None,
        };
        assert_eq!(scan_span(&[], ReadFrom::SeqIx(5), 10), none);
        let mut ix = index();
        ix.remove(0);
        assert_eq!(scan_span(&ix, ReadFrom::SeqIx(15), 10), none);
        // Before the first entry.
        assert_eq!(scan_span(&index(), ReadFrom::SeqIx(3), 1).start, 0);
    }
}
