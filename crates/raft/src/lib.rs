//! Levee's Raft glue: the control plane's catalog replicated through openraft (design.md §3),
//! with its Raft log stored by the storage engine's group log.
//!
//! - [`log_store`]: openraft's log storage ([`RaftLogStorage`](openraft::storage::RaftLogStorage))
//!   on an explicit-index [`GroupLog`](levee_storage::wal::GroupLog), plus the vote, committed
//!   and purged log ids in a CRC-protected record. It passes openraft's own storage test suite
//!   (`openraft::testing::Suite`, see `tests/suite.rs`).
//! - [`state_machine`]: the deterministic [`Catalog`](levee_catalog::Catalog) as an openraft
//!   state machine: entries are catalog [`Command`](levee_catalog::Command)s, responses are the
//!   catalog's `Result<Outcome, CatalogError>`, snapshots are the catalog's own checksummed
//!   snapshot bytes, saved durably as a record.
//! - [`node`]: [`CatalogRaft`], a single-voter Raft node over the two (the embedded mode): open
//!   it on a data directory, execute commands, read the state, follow map changes.
//! - [`network`]: the network of a single voter, which never sends anything.
//! - [`cluster`]: the network of several voters (over the control listener), the receiving side
//!   of their messages, command forwarding to the leader and membership changes.

// openraft's traits return its `StorageError` (over 200 bytes); the helpers behind them return
// the same type rather than convert at every call.
#![allow(clippy::result_large_err)]

pub mod cluster;
pub mod log_store;
pub mod network;
pub mod node;
pub mod once;
pub mod state_machine;

use std::io::Cursor;

use levee_catalog::{CatalogError, Command, Outcome};

pub use log_store::{GroupLogStore, LogStoreError};
pub use node::{CatalogRaft, CatalogRaftOptions, NodeError, CATALOG_NODE_ID};
pub use state_machine::{CatalogStateMachine, CatalogView, MapListener};

/// What applying one entry returns: the catalog's outcome or its (deterministic) refusal.
/// Blank and membership entries answer `Ok(Outcome::Unchanged)`.
pub type CommandResult = Result<Outcome, CatalogError>;

openraft::declare_raft_types!(
    /// openraft's types for the catalog.
    pub TypeConfig:
        D = Command,
        R = CommandResult,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// openraft's log id for the catalog.
pub type LogId = openraft::LogId<u64>;
/// openraft's log entry for the catalog.
pub type Entry = openraft::Entry<TypeConfig>;
/// openraft's storage error for the catalog.
pub type StorageError = openraft::StorageError<u64>;
/// The catalog's Raft.
pub type Raft = openraft::Raft<TypeConfig>;
