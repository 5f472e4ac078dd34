//! The catalog on several voters (design.md §3): openraft's messages between voters travel over
//! the control listener (`/raft/v1/<what>`, HTTP/2 through one capped connection pool), and a
//! voter that is not the leader forwards the commands it is given to the leader.
//!
//! - [`RpcNetworkFactory`]: openraft's network on [`levee_rpc::Pool`]. A refused connection is
//!   "unreachable" (openraft backs off); any other failure is a network error it retries.
//! - [`RaftMessages`]: the receiving side, a [`levee_rpc::control::RaftHandler`]: append, vote,
//!   snapshot, forwarded commands (`execute`) and membership changes (`membership`).
//!
//! Messages are JSON (openraft's types are serde). Entries per append and snapshot chunk sizes
//! are bounded ([`APPEND_ENTRIES_MAX`], [`SNAPSHOT_CHUNK_BYTES`]) so that every message stays
//! well inside the control listener's body limit.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use levee_catalog::Command;
use levee_rpc::control::{RaftHandler, RAFT_PATH_PREFIX};
use levee_rpc::{Pool, RpcError};
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{AnyError, BasicNode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::node::CatalogRaft;
use crate::{CommandResult, TypeConfig};

/// The most entries one append message carries (a catalog command is at most a few tens of KiB).
pub const APPEND_ENTRIES_MAX: u64 = 16;
/// The largest snapshot chunk one message carries (JSON spells a byte in up to 4 characters, so
/// a chunk stays under the control listener's 1 MiB body limit).
pub const SNAPSHOT_CHUNK_BYTES: u64 = 128 << 10;

/// Where the voters of a catalog cluster are, and which one this node is.
#[derive(Clone)]
pub struct Cluster {
    /// This voter's Raft id.
    pub id: u64,
    /// The initial voters (id → control listener `ip:port`). A node whose id is among them
    /// initializes the cluster on its first start (every initial voter does so with the same
    /// membership, which openraft allows); any other node waits to be added
    /// ([`MembershipChange::AddVoter`]).
    pub voters: BTreeMap<u64, String>,
    /// The pool that reaches the other voters.
    pub pool: Arc<Pool>,
}

/// Makes [`RpcNetwork`] clients.
#[derive(Clone)]
pub struct RpcNetworkFactory {
    pub pool: Arc<Pool>,
}

/// openraft's client to one voter.
pub struct RpcNetwork {
    pool: Arc<Pool>,
    target: u64,
    addr: Result<SocketAddr, String>,
}

impl RaftNetworkFactory<TypeConfig> for RpcNetworkFactory {
    type Network = RpcNetwork;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> RpcNetwork {
        RpcNetwork {
            pool: self.pool.clone(),
            target,
            addr: node
                .addr
                .parse()
                .map_err(|e| format!("voter {target}'s address {:?}: {e}", node.addr)),
        }
    }
}

fn unreachable<E: std::error::Error>(why: &str) -> RPCError<u64, BasicNode, E> {
    RPCError::Unreachable(Unreachable::new(&AnyError::error(why)))
}

fn network<E: std::error::Error>(why: String) -> RPCError<u64, BasicNode, E> {
    RPCError::Network(NetworkError::new(&AnyError::error(why)))
}

/// Posts `message` to `addr`'s `/raft/v1/<what>` and decodes the JSON answer.
pub async fn post<Req: Serialize, Resp: DeserializeOwned>(
    pool: &Pool,
    addr: SocketAddr,
    what: &str,
    message: &Req,
) -> Result<Resp, PostError> {
    let body = serde_json::to_vec(message).map_err(|e| PostError::Failed(e.to_string()))?;
    let path = format!("{RAFT_PATH_PREFIX}{what}");
    match pool.post(addr, &path, Bytes::from(body), 0).await {
        Ok(a) if a.status.is_success() => {
            serde_json::from_slice(&a.body).map_err(|e| PostError::Failed(e.to_string()))
        }
        Ok(a) => Err(PostError::Failed(format!(
            "{addr} answered {}: {}",
            a.status,
            String::from_utf8_lossy(&a.body)
        ))),
        Err(RpcError::Connect(..)) => Err(PostError::Unreachable(format!("{addr} refused"))),
        Err(e) => Err(PostError::Failed(format!("{addr}: {e}"))),
    }
}

/// Why a message to another voter failed.
#[derive(Debug)]
pub enum PostError {
    /// Nothing was sent (the connection was refused).
    Unreachable(String),
    /// It may or may not have been handled.
    Failed(String),
}

impl RpcNetwork {
    async fn send<Req, Resp, E>(
        &self,
        what: &str,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<u64, BasicNode, RaftError<u64, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let addr = match &self.addr {
            Ok(a) => *a,
            Err(e) => return Err(unreachable(e)),
        };
        let sent = tokio::time::timeout(
            option.hard_ttl(),
            post::<Req, Result<Resp, RaftError<u64, E>>>(&self.pool, addr, what, req),
        )
        .await;
        match sent {
            Err(_) => Err(network(format!(
                "voter {} did not answer {what} within {:?}",
                self.target,
                option.hard_ttl()
            ))),
            Ok(Err(PostError::Unreachable(why))) => Err(unreachable(&why)),
            Ok(Err(PostError::Failed(why))) => Err(network(why)),
            Ok(Ok(Ok(resp))) => Ok(resp),
            Ok(Ok(Err(remote))) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, remote)))
            }
        }
    }
}

impl RaftNetwork<TypeConfig> for RpcNetwork {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        self.send("append", &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>,
    > {
        self.send("snapshot", &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        self.send("vote", &rpc, &option).await
    }
}

/// A command forwarded to the leader, and its answer.
#[derive(Debug, Serialize, Deserialize)]
pub enum Forwarded {
    /// Committed and applied at log `index`: the forwarding voter waits until it has applied
    /// that far too before it answers, so its reads see the change.
    Done { result: CommandResult, index: u64 },
    /// The receiver is not the leader (any more); it names the leader it knows.
    NotLeader { leader: Option<(u64, String)> },
    /// The receiver could not run it (stopped, storage failure).
    Failed(String),
}

/// A change to (or a look at) the set of voters.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum MembershipChange {
    Show,
    /// Adds a voter: first as a learner that catches up, then as a voter.
    AddVoter {
        id: u64,
        addr: String,
    },
    /// Removes a voter (a dead one, or one being replaced).
    RemoveVoter {
        id: u64,
    },
}

/// The voters as the answering node knows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub leader: Option<u64>,
    pub voters: BTreeMap<u64, String>,
    pub learners: BTreeMap<u64, String>,
    /// The last log index this node applied.
    pub applied: Option<u64>,
}

/// The answer to a [`MembershipChange`].
#[derive(Debug, Serialize, Deserialize)]
pub enum MembershipAnswer {
    Done(Membership),
    NotLeader { leader: Option<(u64, String)> },
    Failed(String),
}

/// The receiving side of the voters' messages.
pub struct RaftMessages(pub Arc<CatalogRaft>);

fn json<T: Serialize>(v: &T) -> Result<Bytes, String> {
    serde_json::to_vec(v)
        .map(Bytes::from)
        .map_err(|e| e.to_string())
}

fn parse<T: DeserializeOwned>(what: &str, body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("bad {what} message: {e}"))
}

impl RaftHandler for RaftMessages {
    fn raft(
        &self,
        what: String,
        body: Bytes,
    ) -> levee_frontend::backend::BoxFuture<Result<Bytes, String>> {
        let catalog = self.0.clone();
        Box::pin(async move {
            let raft = catalog.raft();
            match what.as_str() {
                "append" => {
                    let req: AppendEntriesRequest<TypeConfig> = parse(&what, &body)?;
                    json(&raft.append_entries(req).await)
                }
                "vote" => {
                    let req: VoteRequest<u64> = parse(&what, &body)?;
                    json(&raft.vote(req).await)
                }
                "snapshot" => {
                    let req: InstallSnapshotRequest<TypeConfig> = parse(&what, &body)?;
                    json(&raft.install_snapshot(req).await)
                }
                "execute" => {
                    let cmd: Command = parse(&what, &body)?;
                    json(&catalog.execute_as_leader(cmd).await)
                }
                "membership" => {
                    let change: MembershipChange = parse(&what, &body)?;
                    json(&catalog.change_membership_as_leader(change).await)
                }
                other => Err(format!("no Raft message {other:?}")),
            }
        })
    }
}
