//! The catalog's Raft node: a single voter (the embedded mode's control plane, design.md §3,
//! rule R5: the distributed code with N = 1) or one voter of a cluster ([`CatalogRaft::open_cluster`],
//! see [`crate::cluster`]).
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
use levee_rpc::Pool;
use levee_storage::vfs::{OsVfs, Vfs};
use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::{BasicNode, ChangeMembers, Config, ServerState, SnapshotPolicy};

use crate::cluster::{
    post, Cluster, Forwarded, Membership, MembershipAnswer, MembershipChange, PostError,
    RpcNetworkFactory, APPEND_ENTRIES_MAX, SNAPSHOT_CHUNK_BYTES,
};
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
/// How long a voter keeps trying to get a command to a leader (an election takes about one
/// election timeout) before it gives up with [`NodeError::NoLeader`].
pub const FORWARD_DEADLINE_MS: u64 = 8_000;
/// How long a forwarding voter waits to apply what the leader committed for it.
pub const FORWARD_APPLY_WAIT_MS: u64 = 2_000;
/// Pause before asking again for a leader: doubling from this...
const LEADER_RETRY_FIRST_MS: u64 = 40;
/// ...up to this.
const LEADER_RETRY_MAX_MS: u64 = 320;

/// Sleeps before retry `attempt` (1, 2, …) of a call that found no leader, or gives up with
/// [`NodeError::NoLeader`] when the pause would pass `deadline`.
async fn wait_for_leader(attempt: u32, deadline: tokio::time::Instant) -> Result<(), NodeError> {
    let wait = Duration::from_millis(
        (LEADER_RETRY_FIRST_MS << attempt.saturating_sub(1).min(3)).min(LEADER_RETRY_MAX_MS),
    );
    if tokio::time::Instant::now() + wait >= deadline {
        return Err(NodeError::NoLeader(Duration::from_millis(
            FORWARD_DEADLINE_MS,
        )));
    }
    tokio::time::sleep(wait).await;
    Ok(())
}
/// Election timeouts and heartbeat of a cluster of voters: longer than a single voter's, so a
/// busy 2-core machine does not start elections for nothing.
pub const CLUSTER_ELECTION_TIMEOUT_MIN_MS: u64 = 500;
pub const CLUSTER_ELECTION_TIMEOUT_MAX_MS: u64 = 1_000;
pub const CLUSTER_HEARTBEAT_MS: u64 = 100;

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
    /// This voter's id.
    me: u64,
    /// How other voters are reached (`None`: the single voter, which has no peers).
    pool: Option<Arc<Pool>>,
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
        let members = BTreeMap::from([(CATALOG_NODE_ID, BasicNode::default())]);
        let node = Self::open_inner(
            dir,
            config,
            options,
            vfs,
            CATALOG_NODE_ID,
            NoNetworkFactory,
            Some(members),
            None,
        )
        .await?;
        let wait = Duration::from_millis(LEADER_WAIT_MS);
        node.raft
            .wait(Some(wait))
            .state(ServerState::Leader, "the single voter leads")
            .await
            .map_err(|_| NodeError::NoLeader(wait))?;
        // A leader has committed everything in its log, but applies it asynchronously: wait
        // until the catalog has applied it all, so that whoever reads the catalog next (the
        // node's boot reconciliation, its resumption of pending CREATING/UPDATING/DELETING
        // transitions) sees every command that was acknowledged before a crash.
        let last = node.raft.metrics().borrow().last_log_index;
        if let Some(last) = last {
            node.raft
                .wait(Some(wait))
                .applied_index_at_least(Some(last), "the catalog replayed its log")
                .await
                .map_err(|_| NodeError::NotReplayed { index: last, wait })?;
        }
        Ok(node)
    }

    /// Opens one voter of a catalog cluster (see [`Cluster`]). It does not wait for a leader:
    /// the first voter of a new cluster cannot elect one alone. Until one is elected (and
    /// while a voter has not applied everything committed), its catalog is a past state;
    /// commands wait for a leader ([`CatalogRaft::execute`]).
    pub async fn open_cluster(
        dir: &Path,
        config: CatalogConfig,
        mut options: CatalogRaftOptions,
        cluster: Cluster,
    ) -> Result<CatalogRaft, NodeError> {
        options.election_timeout_min_ms = options
            .election_timeout_min_ms
            .max(CLUSTER_ELECTION_TIMEOUT_MIN_MS);
        options.election_timeout_max_ms = options
            .election_timeout_max_ms
            .max(CLUSTER_ELECTION_TIMEOUT_MAX_MS);
        options.heartbeat_interval_ms = options.heartbeat_interval_ms.max(CLUSTER_HEARTBEAT_MS);
        let initial = cluster.voters.contains_key(&cluster.id).then(|| {
            cluster
                .voters
                .iter()
                .map(|(id, addr)| (*id, BasicNode::new(addr)))
                .collect::<BTreeMap<_, _>>()
        });
        Self::open_inner(
            dir,
            config,
            options,
            Arc::new(OsVfs),
            cluster.id,
            RpcNetworkFactory {
                pool: cluster.pool.clone(),
            },
            initial,
            Some(cluster.pool),
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn open_inner<N: openraft::network::RaftNetworkFactory<crate::TypeConfig>>(
        dir: &Path,
        config: CatalogConfig,
        options: CatalogRaftOptions,
        vfs: Arc<dyn Vfs>,
        me: u64,
        network: N,
        initial: Option<BTreeMap<u64, BasicNode>>,
        pool: Option<Arc<Pool>>,
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
            max_payload_entries: APPEND_ENTRIES_MAX,
            snapshot_max_chunk_size: SNAPSHOT_CHUNK_BYTES,
            ..Default::default()
        }
        .validate()
        .map_err(|e| NodeError::Config(e.to_string()))?;
        let raft = Raft::new(me, Arc::new(raft_config), network, log.clone(), sm)
            .await
            .map_err(|e| NodeError::Raft(e.to_string()))?;
        // Initialize only on the first start (asking again would be refused, and openraft logs
        // that refusal as an error on every restart).
        let initialized = raft
            .is_initialized()
            .await
            .map_err(|e| NodeError::Raft(e.to_string()))?;
        if let (false, Some(members)) = (initialized, initial) {
            match raft.initialize(members).await {
                Ok(()) => {}
                Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                Err(e) => return Err(NodeError::Raft(e.to_string())),
            }
        }
        Ok(CatalogRaft {
            raft,
            view,
            log,
            me,
            pool,
        })
    }

    /// Replicates `cmd` and returns the catalog's answer once it is durable, committed and
    /// applied. `Err` means the node could not process it (stopped, storage failure, no leader
    /// within [`FORWARD_DEADLINE_MS`]); a refusal by the catalog is `Ok(Err(CatalogError))`.
    ///
    /// A voter that is not the leader forwards the command to the leader, then waits until it
    /// has applied the leader's answer itself, so reading its catalog next sees the change.
    pub async fn execute(&self, cmd: Command) -> Result<CommandResult, NodeError> {
        let cmd = crate::once::wrap(cmd);
        let Some(pool) = &self.pool else {
            return match self.raft.client_write(cmd).await {
                Ok(resp) => Ok(resp.data),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => Err(
                    NodeError::Raft(format!("this node is not the catalog's leader ({f})")),
                ),
                Err(e) => Err(NodeError::Raft(e.to_string())),
            };
        };
        let deadline = tokio::time::Instant::now() + Duration::from_millis(FORWARD_DEADLINE_MS);
        let mut attempt = 0u32;
        loop {
            let leader = match self.execute_as_leader(cmd.clone()).await {
                Forwarded::Done { result, .. } => return Ok(result),
                Forwarded::Failed(e) => return Err(NodeError::Raft(e)),
                Forwarded::NotLeader { leader } => leader,
            };
            if let Some((id, addr)) = leader.filter(|(id, _)| *id != self.me) {
                match addr.parse::<std::net::SocketAddr>() {
                    Ok(addr) => match post::<_, Forwarded>(pool, addr, "execute", &cmd).await {
                        Ok(Forwarded::Done { result, index }) => {
                            self.wait_applied(index).await;
                            return Ok(result);
                        }
                        Ok(Forwarded::Failed(e)) => return Err(NodeError::Raft(e)),
                        Ok(Forwarded::NotLeader { .. }) => {}
                        Err(PostError::Unreachable(why)) | Err(PostError::Failed(why)) => {
                            tracing::debug!(leader = id, %why, "forwarding a catalog command failed");
                        }
                    },
                    Err(e) => tracing::warn!(leader = id, %addr, error = %e, "bad leader address"),
                }
            }
            attempt += 1;
            wait_for_leader(attempt, deadline).await?;
        }
    }

    /// Runs `cmd` here if this voter leads; otherwise names the leader it knows.
    pub async fn execute_as_leader(&self, cmd: Command) -> Forwarded {
        match self.raft.client_write(cmd).await {
            Ok(resp) => Forwarded::Done {
                result: resp.data,
                index: resp.log_id.index,
            },
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Forwarded::NotLeader {
                    leader: f.leader_id.zip(f.leader_node.map(|n| n.addr)),
                }
            }
            Err(e) => Forwarded::Failed(e.to_string()),
        }
    }

    /// Waits (at most [`FORWARD_APPLY_WAIT_MS`]) until this voter has applied log `index`.
    async fn wait_applied(&self, index: u64) {
        let wait = Duration::from_millis(FORWARD_APPLY_WAIT_MS);
        if self
            .raft
            .wait(Some(wait))
            .applied_index_at_least(Some(index), "a forwarded command applied here")
            .await
            .is_err()
        {
            tracing::debug!(index, "this voter has not applied a forwarded command yet");
        }
    }

    /// This voter's Raft id.
    pub fn id(&self) -> u64 {
        self.me
    }

    /// Whether this voter leads now.
    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().current_leader == Some(self.me)
    }

    /// The voters as this node knows them.
    pub fn membership(&self) -> Membership {
        let m = self.raft.metrics().borrow().clone();
        let config = m.membership_config.membership();
        let voter_ids: std::collections::BTreeSet<u64> = config.voter_ids().collect();
        let mut voters = BTreeMap::new();
        let mut learners = BTreeMap::new();
        for (id, node) in config.nodes() {
            if voter_ids.contains(id) {
                voters.insert(*id, node.addr.clone());
            } else {
                learners.insert(*id, node.addr.clone());
            }
        }
        Membership {
            leader: m.current_leader,
            voters,
            learners,
            applied: m.last_applied.map(|l| l.index),
        }
    }

    /// Changes (or shows) the voters, through the leader.
    pub async fn change_membership(
        &self,
        change: MembershipChange,
    ) -> Result<Membership, NodeError> {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(FORWARD_DEADLINE_MS);
        let mut attempt = 0u32;
        loop {
            let leader = match self.change_membership_as_leader(change.clone()).await {
                MembershipAnswer::Done(m) => return Ok(m),
                MembershipAnswer::Failed(e) => return Err(NodeError::Raft(e)),
                MembershipAnswer::NotLeader { leader } => leader,
            };
            if let (Some(pool), Some((_, addr))) =
                (&self.pool, leader.filter(|(id, _)| *id != self.me))
            {
                if let Ok(addr) = addr.parse::<std::net::SocketAddr>() {
                    match post::<_, MembershipAnswer>(pool, addr, "membership", &change).await {
                        Ok(MembershipAnswer::Done(m)) => return Ok(m),
                        Ok(MembershipAnswer::Failed(e)) => return Err(NodeError::Raft(e)),
                        _ => {}
                    }
                }
            }
            attempt += 1;
            wait_for_leader(attempt, deadline).await?;
        }
    }

    /// Applies a membership change here if this voter leads.
    pub async fn change_membership_as_leader(&self, change: MembershipChange) -> MembershipAnswer {
        if !self.is_leader() {
            let m = self.membership();
            let leader = m.leader.and_then(|id| {
                m.voters
                    .get(&id)
                    .or_else(|| m.learners.get(&id))
                    .map(|a| (id, a.clone()))
            });
            return MembershipAnswer::NotLeader { leader };
        }
        let done = match change {
            MembershipChange::Show => Ok(()),
            MembershipChange::AddVoter { id, addr } => {
                match self.raft.add_learner(id, BasicNode::new(addr), true).await {
                    Ok(_) => self
                        .raft
                        .change_membership(ChangeMembers::AddVoterIds([id].into()), false)
                        .await
                        .map(|_| ()),
                    Err(e) => Err(e),
                }
            }
            MembershipChange::RemoveVoter { id } => self
                .raft
                .change_membership(ChangeMembers::RemoveVoters([id].into()), false)
                .await
                .map(|_| ()),
        };
        match done {
            Ok(()) => MembershipAnswer::Done(self.membership()),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                MembershipAnswer::NotLeader {
                    leader: f.leader_id.zip(f.leader_node.map(|n| n.addr)),
                }
            }
            Err(e) => MembershipAnswer::Failed(e.to_string()),
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
