//! The storage engine's error type. Every variant says what failed and where (file and offset for
//! corruption), so that the layer that handles it can log it once and map it onto a Kinesis error.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::{ShardUid, StreamUid};

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// An I/O operation failed. `path` names the file or directory.
    #[error("{op} failed on {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: Arc<io::Error>,
    },
    /// Stored bytes failed a checksum or did not decode.
    #[error("corruption in {path} at offset {offset}: {detail}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        detail: String,
    },
    /// The log refused a write because an earlier sync or apply failed; the reason names it.
    /// Only a restart (recovery from what is on disk) clears this.
    #[error("storage refuses writes until restarted: {reason}")]
    Poisoned { reason: String },
    /// A bounded queue is full; the caller should shed the request.
    #[error("{what} is full (limit {limit})")]
    Overloaded { what: &'static str, limit: u64 },
    #[error("entry of {size_bytes} bytes exceeds the limit of {limit_bytes} bytes")]
    EntryTooLarge { size_bytes: u64, limit_bytes: u64 },
    #[error("the storage engine is shut down")]
    Closed,
    #[error("stream {0} not found")]
    StreamNotFound(StreamUid),
    #[error("stream {0} already exists")]
    StreamExists(StreamUid),
    #[error("shard {0} not found")]
    ShardNotFound(ShardUid),
    #[error("shard {0} already exists")]
    ShardExists(ShardUid),
    #[error("shard {0} is closed")]
    ShardClosed(ShardUid),
    #[error("invalid argument: {0}")]
    Invalid(String),
}

impl Error {
    pub(crate) fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.to_path_buf(),
            source: Arc::new(source),
        }
    }

    pub(crate) fn corrupt(path: &Path, offset: u64, detail: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.to_path_buf(),
            offset,
            detail: detail.into(),
        }
    }

    /// The OS error number behind an I/O error, if any.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// Whether the disk is full (ENOSPC).
    pub fn is_no_space(&self) -> bool {
        self.errno() == Some(libc::ENOSPC)
    }

    /// Whether a sync (`fdatasync` of a file or `fsync` of a directory) failed: after that the
    /// durability of recent writes is unknown.
    pub fn is_sync_failure(&self) -> bool {
        matches!(
            self,
            Error::Io {
                op: "fdatasync" | "sync directory",
                ..
            }
        )
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
