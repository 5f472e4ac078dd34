//! A single-voter catalog Raft node: the embedded mode's control plane (design.md §3, rule R5:
//! the distributed code with N = 1).
//!
//! [`CatalogRaft::open`] opens the log store (`<dir>/log/`, `<dir>/raft-meta`) and the state
//! machine (`<dir>/catalog-snapshot`), starts openraft with [`CATALOG_NODE_ID`] as the only
//! voter, initializes the one-member cluster on first start, and waits until the node leads.
//! openraft re-applies the committed log after the snapshot while starting, so the catalog is
//! current when `open` returns. [`CatalogRaft::execute`] replicates a command (here: makes it
//! durable in the group log, commits and applies it) and returns the catalog's outcome.
//!
//! openraft runs as tokio tasks on the caller's runtime; the group log adds its one writer
//! thread. No thread or connection depends on the number of streams or nodes (rule R1).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use levee_catalog::{Catalog, CatalogConfig, Command};
use levee_map::ShardMap;
use levee_storage::vfs::{OsVfs, Vfs};
use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::{BasicNode, Config, ServerState, SnapshotPolicy};

use crate::log_store::{GroupLogStore, LogStoreError};
use crate::network::NoNetworkFactory;
use crate::state_machine::{CatalogStateMachine, CatalogView, MapListener, StateMachineError};
use crate::{CommandResult, LogId, Raft};

/// The node id of the embedded catalog's only voter.
pub const CATALOG_NODE_ID: u64 = 1;
/// How long `open` waits for the single voter to lead.
pub const LEADER_WAIT_MS: u64 = 10_000;
/// How long [`CatalogRaft::snapshot`] waits for the snapshot to be built.
pub const SNAPSHOT_WAIT_MS: u64 = 30_000;

/// Knobs of the catalog's Raft.
#[derive(Debug, Clone)]
pub struct CatalogRaftOptions {
    /// Take a snapshot (and purge the log behind it) after this many applied entries.
    pub snapshot_every_entries: u64,
    /// Entries kept in the log behind a snapshot.
    pub log_entries_kept_after_snapshot: u64,
    /// Segment size of the catalog's group log.
    pub segment_bytes: u64,
    /// Election timeout (ms); a single voter elects itself at once after the first start.
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    pub heartbeat_interval_ms: u64,
}

impl Default for CatalogRaftOptions {
    fn default() -> Self {
        CatalogRaftOptions {
            snapshot_every_entries: 1_000,
            log_entries_kept_after_snapshot: 100,
            segment_bytes: 4 << 20,
            election_timeout_min_ms: 150,
            election_timeout_max_ms: 300,
            heartbeat_interval_ms: 50,
        }
    }
}

/// Errors of the catalog's Raft node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    LogStore(#[from] LogStoreError),
    #[error(transparent)]
    StateMachine(#[from] StateMachineError),
    #[error("raft configuration: {0}")]
    Config(String),
    /// openraft stopped (a storage error is fatal to it) or refused the call.
    #[error("catalog raft: {0}")]
    Raft(String),
    #[error("the catalog's raft node did not become leader within {0:?}")]
    NoLeader(Duration),
    #[error("the catalog did not apply its log up to index {index} within {wait:?}")]
    NotReplayed { index: u64, wait: Duration },
}

/// The catalog replicated through openraft with a single voter.
pub struct CatalogRaft {
    raft: Raft,
    view: CatalogView,
    log: GroupLogStore,
}

impl CatalogRaft {
    /// Opens (recovering) the catalog in `dir` on the real file system.
    pub async fn open(
        dir: &Path,
        config: CatalogConfig,
        options: CatalogRaftOptions,
    ) -> Result<CatalogRaft, NodeError> {
        Self::open_with_vfs(dir, config, options, Arc::new(OsVfs)).await
    }

    /// [`CatalogRaft::open`] with an injected file system (fault-injection tests).
    pub async fn open_with_vfs(
        dir: &Path,
        config: CatalogConfig,
        options: CatalogRaftOptions,
        vfs: Arc<dyn Vfs>,
    ) -> Result<CatalogRaft, NodeError> {
        let mut log_cfg = GroupLogStore::catalog_log_config(dir);
        log_cfg.segment_bytes = options.segment_bytes;
        let log = GroupLogStore::open(dir, log_cfg, vfs.clone())?;
        let sm = CatalogStateMachine::open(dir, config, vfs)?;
        let view = sm.view();
        let raft_config = Config {
            cluster_name: "levee-catalog".to_string(),
            election_timeout_min: options.election_timeout_min_ms,
            election_timeout_max: options.election_timeout_max_ms,
            heartbeat_interval: options.heartbeat_interval_ms,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(options.snapshot_every_entries),
            max_in_snapshot_log_to_keep: options.log_entries_kept_after_snapshot,
            purge_batch_size: 1,
            ..Default::default()
        }
        .validate()
        .map_err(|e| NodeError::Config(e.to_string()))?;
        let raft = Raft::new(
            CATALOG_NODE_ID,
            Arc::new(raft_config),
            NoNetworkFactory,
            log.clone(),
            sm,
        )
        .await
        .map_err(|e| NodeError::Raft(e.to_string()))?;
        let members = BTreeMap::from([(CATALOG_NODE_ID, BasicNode::default())]);
        // Initialize only on the first start (asking again would be refused, and openraft logs
        // that refusal as an error on every restart).
        let initialized = raft
            .is_initialized()
            .await
            .map_err(|e| NodeError::Raft(e.to_string()))?;
        if !initialized {
            match raft.initialize(members).await {
                Ok(()) => {}
                Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                Err(e) => return Err(NodeError::Raft(e.to_string())),
            }
        }
        let wait = Duration::from_millis(LEADER_WAIT_MS);
        raft.wait(Some(wait))
            .state(ServerState::Leader, "the single voter leads")
            .await
            .map_err(|_| NodeError::NoLeader(wait))?;
        // A leader has committed everything in its log, but applies it asynchronously: wait
        // until the catalog has applied it all, so that whoever reads the catalog next (the
        // node's boot reconciliation, its resumption of pending CREATING/UPDATING/DELETING
        // transitions) sees every command that was acknowledged before a crash.
        let last = raft.metrics().borrow().last_log_index;
        if let Some(last) = last {
            raft.wait(Some(wait))
                .applied_index_at_least(Some(last), "the catalog replayed its log")
                .await
                .map_err(|_| NodeError::NotReplayed { index: last, wait })?;
        }
        Ok(CatalogRaft { raft, view, log })
    }

    /// Replicates `cmd` and returns the catalog's answer once it is durable, committed and
    /// applied. `Err` means the node could not process it (stopped, storage failure); a
    /// refusal by the catalog is `Ok(Err(CatalogError))`.
    pub async fn execute(&self, cmd: Command) -> Result<CommandResult, NodeError> {
        match self.raft.client_write(cmd).await {
            Ok(resp) => Ok(resp.data),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => Err(NodeError::Raft(
                format!("this node is not the catalog's leader ({f})"),
            )),
            Err(e) => Err(NodeError::Raft(e.to_string())),
        }
    }

    /// Runs `f` on the current catalog state (queries).
    pub fn read<T>(&self, f: impl FnOnce(&Catalog) -> T) -> T {
        self.view.read(f)
    }

    /// Registers the map listener and returns the current map (the snapshot it follows from).
    pub fn subscribe(&self, listener: MapListener) -> ShardMap {
        self.view.subscribe(listener)
    }

    /// A read handle on the catalog that can be cloned into other tasks.
    pub fn view(&self) -> CatalogView {
        self.view.clone()
    }

    /// The log id of the last applied command.
    pub fn last_applied(&self) -> Option<LogId> {
        self.view.last_applied()
    }

    /// Takes a snapshot now (openraft then purges the log behind it, keeping
    /// `log_entries_kept_after_snapshot` entries) and waits until it is durable.
    pub async fn snapshot(&self) -> Result<(), NodeError> {
        let target = self.view.last_applied().map(|id| id.index);
        self.raft
            .trigger()
            .snapshot()
            .await
            .map_err(|e| NodeError::Raft(e.to_string()))?;
        if let Some(index) = target {
            self.raft
                .wait(Some(Duration::from_millis(SNAPSHOT_WAIT_MS)))
                .metrics(
                    |m| m.snapshot.is_some_and(|s| s.index >= index),
                    "snapshot built",
                )
                .await
                .map_err(|e| NodeError::Raft(e.to_string()))?;
        }
        Ok(())
    }

    /// The openraft handle (metrics, membership changes when voters are added).
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// The log store (for its group log's stats).
    pub fn log_store(&self) -> &GroupLogStore {
        &self.log
    }

    /// Stops openraft. The log is already durable; nothing else needs flushing.
    pub async fn shutdown(self) -> Result<(), NodeError> {
        self.raft
            .shutdown()
            .await
            .map_err(|e| NodeError::Raft(e.to_string()))
    }
}
