//! The roles as separate processes (`levee serve --role control|storage|frontend`, combinable).
//! The embedded node (`--role all`, the default) runs the same components in one process with
//! no inter-node listeners; here each role runs on its own and they talk over `levee-rpc`:
//!
//! - **control**: the catalog and its map publisher (a [`Node`] without a storage engine),
//!   serving forwarded control calls, node registrations and the map feed on its control
//!   listener. New shards are placed on the registered storage nodes of its cell.
//! - **storage**: a storage engine that follows the map (its own [`MapKeeper`], persisted
//!   generations, the same follower a front-end runs), reconciles itself to the shards the map
//!   places on it, and serves them over the storage protocol, checking every request against
//!   the map it has reconciled to (R4). It keeps serving with the control plane away.
//! - **frontend**: the Kinesis API. It routes by its own persisted, validated map, reaches
//!   storage nodes through a capped pool found from that map, and forwards control operations
//!   to the control plane. Data operations, the map's reads (consumers, record sizes) and
//!   SubscribeToShard need no control plane (static stability).
//!
//! Storage nodes and front-ends register at start (after a random delay, so a mass restart
//! does not arrive at once) and renew their lease on a fixed period.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use levee_frontend::backend::{
    AppendSignals, BoxFuture, CallContext, ConsumerInfo, ControlPlane, MapHolder,
};
use levee_frontend::map_follow::{FollowConfig, HoldPolicy, MapKeeper, Settled};
use levee_map::{NodeId, ShardMap};
use levee_protocol::{decode_request, ApiError, Request};
use levee_rpc::control::{
    ControlCall, ControlHandler, ControlServer, ControlServerConfig, MapFeed, Registration,
    RemoteControl, RemoteMapSource, RetryPolicy,
};
use levee_rpc::{MapOwnership, Pool, PoolConfig, ServerConfig, StorageServer};
use levee_storage::{Engine, EngineConfig, SystemClock};
use rand::Rng;

use crate::config::ServeConfig;
use crate::map_publish::{MapPublisher, VfsMapDisk};
use crate::node::Node;
use crate::storage_adapter::{AtRest, LocalStorage};

const HOUR_MS: u64 = 3_600_000;
/// How long a forwarded control call's answer waits for this front-end's map to reach the
/// version the control plane had published (what the client saw change, it can use here).
pub const CONTROL_MAP_WAIT_MS: u64 = 2_000;
/// A node's first registration waits a random time up to this (a mass restart spreads out).
pub const REGISTER_BOOT_JITTER_MS: u64 = 1_000;

/// This node's id in the fleet: a random non-zero number kept in `<data-dir>/node.id`.
pub fn node_id(data_dir: &std::path::Path) -> anyhow::Result<u64> {
    let path = data_dir.join("node.id");
    match std::fs::read_to_string(&path) {
        Ok(text) => text
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|id| *id != 0)
            .with_context(|| format!("{} does not hold a node id", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Ids below 2^32 are left to the embedded node's configured placement target.
            let id: u64 = rand::thread_rng().gen_range(1u64 << 32..u64::MAX);
            let tmp = data_dir.join("node.id.tmp");
            std::fs::write(&tmp, format!("{id}\n"))
                .with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            levee_storage::vfs::Vfs::sync_dir(&levee_storage::vfs::OsVfs, data_dir)?;
            Ok(id)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The control plane's client for this node (one capped pool for control traffic).
pub fn remote_control(cfg: &ServeConfig, control: Vec<SocketAddr>) -> Arc<RemoteControl> {
    let pool = Pool::new(PoolConfig {
        name: "control",
        connections_max: control.len().clamp(1, 8),
        ..PoolConfig::default()
    });
    Arc::new(RemoteControl::new(
        pool,
        control,
        RetryPolicy {
            deadline_ms: cfg.lease_renew_ms.max(5_000),
            ..RetryPolicy::default()
        },
    ))
}

/// Registers this node now (after the boot jitter) and renews the registration every
/// `lease_renew_ms` (±10 %) for as long as the process runs. Failures are logged and retried;
/// nothing waits for them: a node serves what its map says whether or not it is registered.
pub fn keep_registered(control: Arc<RemoteControl>, me: Registration, renew_ms: u64) {
    tokio::spawn(async move {
        let jitter = rand::thread_rng().gen_range(0..REGISTER_BOOT_JITTER_MS);
        tokio::time::sleep(Duration::from_millis(jitter)).await;
        let mut registered = false;
        loop {
            match control.register(&me).await {
                Ok(()) => {
                    if !registered {
                        tracing::info!(id = me.id, address = %me.address, cell = %me.cell, "registered with the control plane");
                        let role = match me.role {
                            levee_map::NodeRole::Storage => "storage node",
                            levee_map::NodeRole::Frontend => "front-end",
                            levee_map::NodeRole::Control => "control node",
                        };
                        crate::announce(&format!("registered as {role} {} in {}", me.id, me.cell));
                    }
                    registered = true;
                    metrics::gauge!("levee_fleet_registered").set(1.0);
                }
                Err(e) => {
                    metrics::gauge!("levee_fleet_registered").set(0.0);
                    tracing::warn!(error = %e.message, kind = e.kind.type_name(), "registration failed; retrying");
                }
            }
            let spread = renew_ms / 10;
            let wait = renew_ms - spread + rand::thread_rng().gen_range(0..=2 * spread);
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
    });
}

/// A map keeper over `<data-dir>/map`, booted from the persisted generations.
fn boot_keeper(cfg: &ServeConfig, maps: Arc<MapHolder>) -> anyhow::Result<Arc<MapKeeper>> {
    let map_dir = cfg.data_dir.join("map");
    let disk = VfsMapDisk::open(Arc::new(levee_storage::vfs::OsVfs), map_dir.clone())
        .with_context(|| format!("creating {}", map_dir.display()))?;
    let keeper = Arc::new(MapKeeper::new(
        maps,
        Arc::new(disk),
        HoldPolicy {
            removal_fraction: f64::from(cfg.map_removal_hold_permille) / 1000.0,
            min_shards: cfg.map_removal_hold_min_shards,
        },
    ));
    let report = keeper.boot();
    tracing::info!(?report, "loaded the persisted shard map");
    Ok(keeper)
}

/// Follows the control plane's map feed on the map I/O runtime (its own thread and its own
/// connection to the control plane), so receiving and building a large map never takes a
/// request worker; falls back to the current runtime if that thread cannot start.
fn follow(
    cfg: &ServeConfig,
    keeper: Arc<MapKeeper>,
    control: &RemoteControl,
) -> tokio::sync::watch::Receiver<Settled> {
    let maps = keeper.holder().clone();
    let held: levee_rpc::control::HeldVersion = Arc::new(move || maps.current().version());
    let feed = Arc::new(RemoteMapSource(
        Arc::new(control.with_own_pool()),
        Some(held),
    ));
    let follow_cfg = FollowConfig {
        snapshot_period: Duration::from_millis(cfg.map_snapshot_period_ms),
        ..FollowConfig::default()
    };
    match levee_frontend::map_follow::map_io_handle() {
        Ok(io) => levee_frontend::map_follow::spawn_follower_on(&io, keeper, feed, follow_cfg),
        Err(why) => {
            tracing::error!(%why, "following the map on the request runtime");
            levee_frontend::map_follow::spawn_follower(keeper, feed, follow_cfg)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// control

/// The control role's handler: forwarded calls run through the same control code as the
/// embedded node's ([`crate::control`]); registrations become catalog commands.
pub struct ControlService {
    pub node: Arc<Node>,
    pub control: Arc<dyn ControlPlane>,
}

impl ControlHandler for ControlService {
    fn call(&self, call: ControlCall) -> BoxFuture<Result<Vec<u8>, ApiError>> {
        let control = self.control.clone();
        Box::pin(async move {
            let request = decode_request(call.op, call.format, &call.body)?;
            if matches!(
                request,
                Request::PutRecord(_)
                    | Request::PutRecords(_)
                    | Request::GetRecords(_)
                    | Request::GetShardIterator(_)
                    | Request::SubscribeToShard(_)
            ) {
                return Err(ApiError::invalid_argument(
                    "data operations go to a front-end, not the control plane",
                ));
            }
            let context = CallContext {
                op: call.op,
                format: call.format,
                body: call.body,
                caller: call.caller,
            };
            // The catalog runs each of this call's commands at most once, however often the
            // front-end sends it.
            levee_raft::once::scope(call.id, control.call(request, context)).await
        })
    }

    fn consumer(&self, consumer_arn: String) -> BoxFuture<Result<ConsumerInfo, ApiError>> {
        self.control.consumer(&consumer_arn)
    }

    fn register(&self, node: Registration) -> BoxFuture<Result<(), ApiError>> {
        let this = self.node.clone();
        Box::pin(async move {
            let address: Result<SocketAddr, _> = node.address.parse();
            if address.is_err() {
                return Err(ApiError::invalid_argument(format!(
                    "node address {:?} is not ip:port",
                    node.address
                )));
            }
            if !node.admin.is_empty() && node.admin.parse::<SocketAddr>().is_err() {
                return Err(ApiError::invalid_argument(format!(
                    "node admin address {:?} is not ip:port",
                    node.admin
                )));
            }
            let cmd = levee_catalog::Command::RegisterNode {
                id: node.id,
                role: match node.role {
                    levee_map::NodeRole::Storage => levee_catalog::NodeRole::Storage,
                    levee_map::NodeRole::Frontend => levee_catalog::NodeRole::Frontend,
                    levee_map::NodeRole::Control => levee_catalog::NodeRole::Control,
                },
                address: node.address,
                cell: node.cell,
                now_ms: crate::node::now_ms(),
                admin: node.admin,
            };
            match this.catalog.execute(cmd).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(crate::control::api_error(e)),
                Err(e) => {
                    tracing::error!(error = %e, "registration failed");
                    Err(ApiError::internal_failure())
                }
            }
        })
    }

    fn map_version(&self) -> u64 {
        self.node.publisher.version()
    }
}

/// How long a control node behind an asker's map version waits to catch up before it answers
/// "not ready" (503) and the asker tries another.
pub const SNAPSHOT_CATCH_UP_MS: u64 = 500;

/// The map feed served on the control listener.
pub struct PublisherFeed(pub Arc<MapPublisher>);

impl MapFeed for PublisherFeed {
    fn snapshot(&self) -> BoxFuture<Bytes> {
        let frame = self.0.snapshot();
        Box::pin(async move { frame })
    }
    fn snapshot_at_least(&self, at_least: u64) -> BoxFuture<Option<Bytes>> {
        let publisher = self.0.clone();
        Box::pin(async move {
            let mut rx = publisher.watch_version();
            let caught_up = tokio::time::timeout(
                Duration::from_millis(SNAPSHOT_CATCH_UP_MS),
                rx.wait_for(|v| *v >= at_least),
            )
            .await
            .is_ok();
            caught_up.then(|| publisher.snapshot())
        })
    }
    fn deltas(&self, after: u64, wait: Duration) -> BoxFuture<Bytes> {
        let publisher = self.0.clone();
        // The control listener admits polls (`--map-polls-max`), not the admin listener's cap.
        Box::pin(async move { publisher.poll_admitted(after, wait).await })
    }
}

/// Starts the control role's listener with `limits` (`--control-connections-max`,
/// `--map-polls-max`).
pub async fn serve_control(
    node: Arc<Node>,
    control: Arc<dyn ControlPlane>,
    listener: tokio::net::TcpListener,
    limits: ControlServerConfig,
) {
    // A voter of a cluster also takes the other voters' Raft messages here.
    let raft: Option<Arc<dyn levee_rpc::control::RaftHandler>> = if node.cfg.voters.is_empty() {
        None
    } else {
        Some(Arc::new(levee_raft::cluster::RaftMessages(
            node.catalog.clone(),
        )))
    };
    let server = ControlServer::with_raft(
        Arc::new(ControlService {
            node: node.clone(),
            control,
        }),
        Some(Arc::new(PublisherFeed(node.publisher.clone()))),
        raft,
        limits,
    );
    server.serve(listener, std::future::pending()).await
}

// ---------------------------------------------------------------------------------------------
// storage

/// A storage node: its engine, the map it follows and the map it serves by.
pub struct StorageNode {
    pub id: u64,
    pub engine: Arc<Engine>,
    /// The map as followed from the control plane (validated, persisted).
    pub followed: Arc<MapHolder>,
    pub keeper: Arc<MapKeeper>,
    /// The map storage has been reconciled to: what requests are checked against, so a shard
    /// is served only once it exists here.
    pub served: Arc<MapHolder>,
    at_rest: Arc<AtRest>,
    reconciling: tokio::sync::Mutex<()>,
}

impl StorageNode {
    pub async fn start(
        cfg: &ServeConfig,
        control: Arc<RemoteControl>,
    ) -> anyhow::Result<Arc<StorageNode>> {
        std::fs::create_dir_all(&cfg.data_dir)
            .with_context(|| format!("creating data directory {}", cfg.data_dir.display()))?;
        let id = node_id(&cfg.data_dir)?;
        let followed = Arc::new(MapHolder::default());
        let keeper = boot_keeper(cfg, followed.clone())?;
        let engine = Arc::new(
            Engine::open(
                EngineConfig::new(cfg.data_dir.join("storage")),
                Arc::new(levee_storage::vfs::OsVfs),
                Arc::new(SystemClock),
            )
            .context("opening the storage engine")?,
        );
        let node = Arc::new(StorageNode {
            id,
            engine,
            followed,
            keeper,
            served: Arc::new(MapHolder::default()),
            at_rest: Arc::new(AtRest::new(cfg.master_key_file.clone())),
            reconciling: tokio::sync::Mutex::new(()),
        });
        // Serve the persisted map at once (static stability), then follow. Watch before the
        // follower starts, so not even its first map can slip past the reconciler.
        let changes = node.followed.watch();
        node.reconcile_now().await;
        follow(cfg, node.keeper.clone(), &control);
        node.clone().reconcile_on_changes(changes);
        node.clone().sweep_retention();
        Ok(node)
    }

    /// The storage plane requests are served by (encryption at rest, append signals).
    pub fn storage(
        &self,
        shard_limits: Option<Arc<levee_frontend::shard_limits::ShardLimiter>>,
    ) -> Arc<LocalStorage> {
        Arc::new(LocalStorage {
            engine: self.engine.clone(),
            shard_limits,
            signals: Arc::new(AppendSignals::default()),
            at_rest: self.at_rest.clone(),
            write_counters: Arc::default(),
        })
    }

    fn reconcile_on_changes(self: Arc<Self>, mut changes: tokio::sync::watch::Receiver<u64>) {
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                self.reconcile_now().await;
            }
        });
    }

    async fn reconcile_now(&self) {
        let map = self.followed.current();
        if !self.keeper.ready() || map.version() == 0 {
            // No valid map yet: never reconcile to nothing (that would drop every stream).
            return;
        }
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.reconcile(&map).await {
                Ok(()) => break,
                Err(e) => {
                    metrics::counter!("levee_storage_reconcile_failures_total").increment(1);
                    tracing::error!(error = %format!("{e:#}"), version = map.version(), "reconciling storage to the map failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    if self.followed.current().version() != map.version() {
                        // A newer map came: the watcher reconciles to it.
                        return;
                    }
                }
            }
        }
        if let Err(e) = self.served.install((*map).clone()) {
            tracing::error!(error = %e, "the reconciled map does not verify");
        }
    }

    /// Makes the engine hold exactly the shards `map` places on this node (the embedded
    /// node's reconciliation, [`crate::node::reconcile_engine`], fed from the map).
    async fn reconcile(&self, map: &ShardMap) -> anyhow::Result<()> {
        let _one = self.reconciling.lock().await;
        let me = NodeId(self.id);
        let mut wanted: HashMap<u64, crate::node::Want> = HashMap::new();
        for stream in map.streams() {
            let mine: Vec<_> = stream
                .shards
                .iter()
                .filter(|s| s.node == me)
                .map(|s| (s.uid, s.shard_id.0, s.created_ms, s.open))
                .collect();
            if mine.is_empty() {
                continue;
            }
            self.at_rest
                .sync_facts(stream.uid, &stream.name, &stream.facts)?;
            let retention_ms = u64::from(stream.facts.retention_hours) * HOUR_MS;
            wanted.insert(stream.uid, (retention_ms, mine));
        }
        crate::node::reconcile_engine(&self.engine, &wanted).await
    }

    fn sweep_retention(self: Arc<Self>) {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(
                crate::node::RETENTION_SWEEP_INTERVAL_MS,
            ));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let engine = self.engine.clone();
                match tokio::task::spawn_blocking(move || engine.enforce_retention()).await {
                    Ok(Ok(0)) => {}
                    Ok(Ok(n)) => tracing::info!(segments = n, "deleted expired segments"),
                    Ok(Err(e)) => tracing::error!(error = %e, "retention sweep failed"),
                    Err(e) => tracing::error!(error = %e, "retention sweep task failed"),
                }
            }
        });
    }

    /// Serves the storage protocol on `listener` until the process ends.
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        shard_limits: Option<Arc<levee_frontend::shard_limits::ShardLimiter>>,
    ) {
        let server = StorageServer::new(
            self.storage(shard_limits),
            Arc::new(MapOwnership::new(self.served.clone(), NodeId(self.id))),
            ServerConfig::default(),
        );
        server.serve(listener, std::future::pending()).await
    }
}

// ---------------------------------------------------------------------------------------------
// front-end

/// A fleet front-end's control plane: calls are forwarded whole (body, format, caller) and the
/// answer waits until this front-end's map has the version the control plane had published.
pub struct ForwardedControl {
    pub remote: Arc<RemoteControl>,
    pub settled: tokio::sync::watch::Receiver<Settled>,
}

impl ControlPlane for ForwardedControl {
    fn call(&self, _request: Request, call: CallContext) -> BoxFuture<Result<Vec<u8>, ApiError>> {
        let remote = self.remote.clone();
        let mut settled = self.settled.clone();
        Box::pin(async move {
            let forwarded = ControlCall {
                op: call.op,
                format: call.format,
                body: call.body,
                caller: call.caller,
                // Nonzero: the call may be retried on another voter after a lost answer.
                id: rand::random::<u64>() | 1,
            };
            let (answer, version) = remote.call_versioned(&forwarded).await;
            if version > 0 {
                levee_frontend::map_follow::wait_settled(
                    &mut settled,
                    version,
                    Duration::from_millis(CONTROL_MAP_WAIT_MS),
                )
                .await;
            }
            answer
        })
    }

    fn consumer(&self, consumer_arn: &str) -> BoxFuture<Result<ConsumerInfo, ApiError>> {
        let remote = self.remote.clone();
        let arn = consumer_arn.to_owned();
        Box::pin(async move { remote.consumer(&arn).await })
    }
}

/// A fleet front-end's map plumbing, booted from disk and following the control plane.
pub struct FrontendMaps {
    pub id: u64,
    pub maps: Arc<MapHolder>,
    pub keeper: Arc<MapKeeper>,
    pub settled: tokio::sync::watch::Receiver<Settled>,
}

impl FrontendMaps {
    pub fn start(cfg: &ServeConfig, control: Arc<RemoteControl>) -> anyhow::Result<FrontendMaps> {
        std::fs::create_dir_all(&cfg.data_dir)
            .with_context(|| format!("creating data directory {}", cfg.data_dir.display()))?;
        let id = node_id(&cfg.data_dir)?;
        let maps = Arc::new(MapHolder::default());
        let keeper = boot_keeper(cfg, maps.clone())?;
        let settled = follow(cfg, keeper.clone(), &control);
        Ok(FrontendMaps {
            id,
            maps,
            keeper,
            settled,
        })
    }
}

/// The shard iterator key of a fleet: every front-end must accept every other's iterators, so
/// it is derived from the master key the fleet shares (never stored).
pub fn fleet_iterator_key(master_key_file: &std::path::Path) -> anyhow::Result<[u8; 32]> {
    let master = levee_keys::load_or_create_master_key(master_key_file)
        .with_context(|| format!("loading the master key {}", master_key_file.display()))?;
    Ok(master.derive("shard-iterators"))
}
