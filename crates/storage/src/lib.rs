//! Levee's storage engine: a crash-safe **group log** shared by the shards of a replica group, and
//! a **shard store** of per-shard segment files that the log's entries are applied into.
//!
//! - [`wal`]: the group log. Continuous group commit (one `pwrite` and one `fdatasync` per batch
//!   of whatever queued during the previous sync), CRC32C per batch, torn-tail truncation,
//!   refusal past mid-log corruption, poisoning after a failed sync, preallocated and recycled
//!   segments, entries with index and term. In explicit-index mode it is a Raft log: the
//!   caller places entries, later batches overwrite a suffix, entries are read back until purged.
//! - [`store`]: the shard store. Segment files with a sparse index by sequence index and arrival
//!   time, a capped file-handle cache, reads that copy data once, per-stream retention by whole
//!   segments, checkpoints that let the log be released.
//! - [`engine`]: the two together behind one API: create streams and shards, append, read,
//!   close, enforce retention.
//! - [`seqnum`]: AWS-shaped sequence numbers (from `levee-map`).
//! - [`vfs`]: the file-I/O trait, with a fault-injecting implementation for tests.
//! - [`clock`]: injectable time.
//! - [`record_file`]: small CRC-protected records replaced atomically (Raft's vote, snapshots).
//!
//! The engine does no networking and knows nothing of Kinesis names: streams and shards are
//! identified by [`StreamUid`] and [`ShardUid`] handed out by the catalog.
//!
//! Invariants (asserted in release builds too): within a shard, sequence indexes strictly
//! increase and arrival times never decrease; an entry is acknowledged only after it is durable
//! in the group log and applied to the shard store.

pub mod clock;
mod codec;
mod command;
pub mod engine;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod record_file;
pub mod runtime;
pub mod store;
pub mod vfs;
pub mod wal;

pub use clock::{Clock, ManualClock, SystemClock};
pub use engine::{Engine, EngineConfig, EngineStats};
pub use error::{Error, Result};
pub use levee_map::seqnum::{self, SequenceNumber};
pub use store::{ReadBatch, ReadFrom, Record, ShardInfo, ShardTip};

use std::fmt;

/// A stream's identity inside the storage engine (assigned by the catalog; never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamUid(pub u64);

/// A shard's identity inside the storage engine (assigned by the catalog; never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardUid(pub u64);

impl fmt::Display for StreamUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stream#{}", self.0)
    }
}

impl fmt::Display for ShardUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shard#{}", self.0)
    }
}
