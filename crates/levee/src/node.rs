//! The embedded node: the three roles in one process, wired through the interfaces a fleet
//! will use. The catalog (control plane) publishes map deltas to the front-end's map holder;
//! the storage engine is reconciled to hold exactly the streams and shards the catalog places
//! here; stream status moves CREATING → ACTIVE and DELETING → gone after the configured delay.
//!
//! Reconciliation is the one code path for boot, steady state and recovery (rule R5): after a
//! crash between a catalog commit and the storage change, the next start (or the next command)
//! makes storage match the catalog again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use levee_catalog::{CatalogConfig, Command, StreamStatus};
use levee_frontend::backend::MapHolder;
use levee_frontend::map_follow::{FollowConfig, HoldPolicy, MapKeeper, Settled};
use levee_storage::{Engine, EngineConfig, ShardUid, StreamUid, SystemClock};

use crate::config::ServeConfig;
use crate::map_publish::{LocalSource, MapPublisher, VfsMapDisk};
use levee_map::StreamState;
use levee_raft::{CatalogRaft, CatalogRaftOptions};

/// The key that signs shard iterators, kept in the data directory so iterators survive restarts.
pub fn iterator_key(data_dir: &std::path::Path) -> anyhow::Result<[u8; 32]> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = data_dir.join("iterator.key");
    match std::fs::read(&path) {
        Ok(bytes) => bytes
            .as_slice()
            .try_into()
            .map_err(|_| anyhow::anyhow!("{} must hold exactly 32 bytes", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key: [u8; 32] = rand::random();
            let tmp = data_dir.join("iterator.key.tmp");
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .with_context(|| format!("creating {}", tmp.display()))?;
            f.write_all(&key)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            levee_storage::vfs::Vfs::sync_dir(&levee_storage::vfs::OsVfs, data_dir)?;
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

pub fn now_ms() -> u64 {
    use levee_storage::Clock;
    SystemClock.now_ms()
}

pub struct Node {
    pub cfg: ServeConfig,
    /// The storage engine; `None` on a control-plane-only node (`--role control`), whose shards
    /// live on the registered storage nodes.
    pub engine: Option<Arc<Engine>>,
    /// The catalog: a single-voter openraft node whose log is a storage-engine group log.
    pub catalog: Arc<CatalogRaft>,
    pub maps: Arc<MapHolder>,
    /// The control side's published maps (what the front-end's follower reads).
    pub publisher: Arc<MapPublisher>,
    /// The front-end's gate to `maps`: validation, holds, persistence under `<data-dir>/map`.
    pub keeper: Arc<MapKeeper>,
    /// How far the front-end's map follower has got (set once it runs).
    map_settled: std::sync::OnceLock<tokio::sync::watch::Receiver<Settled>>,
    /// One reconciliation at a time: it creates and closes shards, which must not race.
    reconciling: tokio::sync::Mutex<()>,
    /// Pending transitions this node is finishing now (`resume_once`), so the leader's sweep
    /// never starts one twice; at most one entry per stream or consumer.
    resuming: parking_lot::Mutex<std::collections::HashSet<String>>,
    /// Writes per shard, counted by the storage adapter for the ON_DEMAND autoscaler.
    pub write_counters: Arc<crate::autoscale::WriteCounters>,
}

const HOUR_MS: u64 = 3_600_000;
/// How long a control-plane answer waits for the front-end to take the map it published.
pub const MAP_BARRIER_MS: u64 = 2_000;
/// How often a leading voter finishes pending transitions whose voter may have died.
pub const LEADER_SWEEP_MS: u64 = 2_000;
/// Connections from one voter to the others (a cluster has three or five).
pub const VOTER_CONNECTIONS_MAX: usize = 8;
/// How often expired segments are deleted.
pub const RETENTION_SWEEP_INTERVAL_MS: u64 = 60_000;

impl Node {
    /// Opens storage and catalog (recovering both), subscribes the map holder, reconciles
    /// storage, and resumes pending status transitions. Must run inside the tokio runtime.
    /// Without `with_storage` (a control-plane-only node) there is no storage engine: shards
    /// are placed on registered storage nodes, which reconcile themselves to the map.
    pub async fn start(cfg: ServeConfig, with_storage: bool) -> anyhow::Result<Arc<Node>> {
        std::fs::create_dir_all(&cfg.data_dir)
            .with_context(|| format!("creating data directory {}", cfg.data_dir.display()))?;
        // The front-end's persisted map first: it can route before anything else is up (F4).
        let maps = Arc::new(MapHolder::default());
        let map_dir = cfg.data_dir.join("map");
        let disk = VfsMapDisk::open(Arc::new(levee_storage::vfs::OsVfs), map_dir.clone())
            .with_context(|| format!("creating {}", map_dir.display()))?;
        let keeper = Arc::new(MapKeeper::new(
            maps.clone(),
            Arc::new(disk),
            HoldPolicy {
                removal_fraction: f64::from(cfg.map_removal_hold_permille) / 1000.0,
                min_shards: cfg.map_removal_hold_min_shards,
            },
        ));
        keeper.boot();
        let engine = if with_storage {
            Some(Arc::new(
                Engine::open(
                    EngineConfig::new(cfg.data_dir.join("storage")),
                    Arc::new(levee_storage::vfs::OsVfs),
                    Arc::new(SystemClock),
                )
                .context("opening the storage engine")?,
            ))
        } else {
            None
        };
        let catalog_config = CatalogConfig {
            account_id: cfg.account_id.clone(),
            region: cfg.region.clone(),
            cell: cfg.cell.clone(),
            storage_nodes_per_cell_max: cfg.storage_nodes_per_cell_max,
            frontends_per_cell_max: cfg.frontends_per_cell_max,
            ..CatalogConfig::default()
        };
        let catalog_dir = cfg.data_dir.join("catalog");
        let catalog = if cfg.voters.is_empty() {
            CatalogRaft::open(&catalog_dir, catalog_config, CatalogRaftOptions::default()).await
        } else {
            anyhow::ensure!(
                !with_storage,
                "--voters needs a control-plane node without the storage role (storage is not \
                 replicated yet)"
            );
            let cluster = levee_raft::cluster::Cluster {
                id: cfg.voter_id,
                voters: cfg
                    .voters
                    .iter()
                    .map(|(id, addr)| (*id, addr.to_string()))
                    .collect(),
                pool: levee_rpc::Pool::new(levee_rpc::PoolConfig {
                    connections_max: VOTER_CONNECTIONS_MAX,
                    ..levee_rpc::PoolConfig::default()
                }),
            };
            CatalogRaft::open_cluster(
                &catalog_dir,
                catalog_config,
                CatalogRaftOptions::default(),
                cluster,
            )
            .await
        }
        .context("starting the catalog")?;
        // Map changes are published at once when they route nowhere new (activation,
        // deletion, expiry); a change that opens new shards to writes (a reshard's children)
        // waits for the reconciliation that follows it, which publishes once storage has them.
        let publisher = Arc::new(MapPublisher::new(levee_map::ShardMap::empty()));
        let published = publisher.clone();
        let has_storage = engine.is_some();
        catalog.subscribe(Box::new(move |delta, full| {
            if !has_storage {
                // Storage nodes reconcile themselves to the map: every voter publishes every
                // map its catalog reaches, whoever ran the command.
                published.publish(full.clone());
                return;
            }
            let current = published.latest();
            let opens_new_shards = delta.upserts.iter().any(|s| {
                matches!(s.state, StreamState::Active | StreamState::Updating)
                    && s.shards.iter().any(|sh| {
                        sh.open
                            && current
                                .stream(&s.name)
                                .is_none_or(|old| old.shard(sh.shard_id).is_none())
                    })
            });
            if !opens_new_shards && delta.from_version == current.version() {
                published.publish(full.clone());
            }
        }));
        let node = Arc::new(Node {
            cfg,
            engine,
            catalog: Arc::new(catalog),
            maps,
            publisher,
            keeper,
            map_settled: std::sync::OnceLock::new(),
            reconciling: tokio::sync::Mutex::new(()),
            resuming: parking_lot::Mutex::default(),
            write_counters: Arc::default(),
        });
        node.reconcile().await?;
        // The front-end follows the published maps with the same follower a fleet front-end
        // runs (R5), started once the publisher holds the reconciled map.
        let settled = levee_frontend::map_follow::spawn_follower(
            node.keeper.clone(),
            Arc::new(LocalSource(node.publisher.clone())),
            FollowConfig {
                snapshot_period: Duration::from_millis(node.cfg.map_snapshot_period_ms),
                ..FollowConfig::default()
            },
        );
        let _ = node.map_settled.set(settled.clone());
        // Serve once the follower has dealt with the first snapshot (the embedded control plane
        // answers at once): a fresh or damaged `map/` is then already replaced.
        let mut first = settled;
        let _ = tokio::time::timeout(
            Duration::from_millis(MAP_BARRIER_MS),
            first.wait_for(|s| s.started),
        )
        .await;
        node.map_barrier().await;
        if node.cfg.voters.is_empty() {
            node.resume_pending();
        } else {
            node.clone().lead_when_leader();
        }
        node.clone().sweep_retention_periodically();
        if node.engine.is_some() {
            crate::autoscale::spawn(node.clone(), node.write_counters.clone());
        }
        Ok(node)
    }

    /// Finishes the status transitions (CREATING, UPDATING, DELETING streams; CREATING and
    /// DELETING consumers) found in the catalog, after the configured delay. A transition that
    /// another task finishes first is skipped (the catalog refuses it, and that is logged at
    /// debug level).
    fn resume_pending(self: &Arc<Self>) {
        let pending: Vec<(String, StreamStatus)> = self.catalog.read(|c| {
            c.state()
                .streams()
                .values()
                .filter(|s| {
                    matches!(
                        s.status,
                        StreamStatus::Creating | StreamStatus::Updating | StreamStatus::Deleting
                    )
                })
                .map(|s| (s.name.clone(), s.status))
                .collect()
        });
        for (name, status) in pending {
            self.resume_once(format!("stream {name}"), |node| match status {
                StreamStatus::Creating => node.activate_later(name),
                StreamStatus::Updating => node.finish_update_later(name),
                _ => node.finish_delete_later(name),
            });
        }
        let consumers: Vec<(String, levee_catalog::ConsumerStatus)> = self.catalog.read(|c| {
            c.state()
                .streams()
                .values()
                .flat_map(|s| s.consumers.values())
                .map(|k| (k.arn.clone(), k.status))
                .collect()
        });
        for (arn, status) in consumers {
            match status {
                levee_catalog::ConsumerStatus::Creating => self
                    .resume_once(format!("consumer {arn}"), |node| {
                        node.activate_consumer_later(arn)
                    }),
                levee_catalog::ConsumerStatus::Deleting => self
                    .resume_once(format!("consumer {arn}"), |node| {
                        node.finish_deregister_consumer_later(arn)
                    }),
                levee_catalog::ConsumerStatus::Active => {}
            }
        }
    }

    /// Starts `finish` for `key` unless this node is already finishing it: the leader's sweep
    /// runs every [`LEADER_SWEEP_MS`], and a transition still waiting its delay is not started
    /// again (at most one task per pending stream or consumer).
    fn resume_once(
        self: &Arc<Self>,
        key: String,
        finish: impl FnOnce(Arc<Node>) -> tokio::task::JoinHandle<()>,
    ) {
        if !self.resuming.lock().insert(key.clone()) {
            return;
        }
        let task = finish(self.clone());
        let node = self.clone();
        tokio::spawn(async move {
            let _ = task.await;
            node.resuming.lock().remove(&key);
        });
    }

    /// A voter of a cluster does the catalog's own work (finishing transitions, expiring shards)
    /// only while it leads: at once when it becomes leader (a transition whose voter died is
    /// finished there), then every [`LEADER_SWEEP_MS`].
    fn lead_when_leader(self: Arc<Self>) {
        tokio::spawn(async move {
            let mut metrics = self.catalog.raft().metrics();
            let mut tick = tokio::time::interval(Duration::from_millis(LEADER_SWEEP_MS));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut was_leader = false;
            loop {
                let ticked = tokio::select! {
                    changed = metrics.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        false
                    }
                    _ = tick.tick() => true,
                };
                let leader = self.catalog.is_leader();
                if leader && !was_leader {
                    tracing::info!(voter = self.catalog.id(), "this voter leads the catalog");
                }
                if leader && (ticked || !was_leader) {
                    self.resume_pending();
                }
                was_leader = leader;
            }
        });
    }

    /// Makes the storage engine hold exactly the catalog's streams and shards.
    ///
    /// Then it publishes to the front-end the catalog map it reconciled to (as a delta from the
    /// front-end's map): the front-end never routes to a shard storage does not have yet. A
    /// writer holding an older map reaches a closed parent, is told its route is stale, and
    /// routes again by the newer map.
    pub async fn reconcile(&self) -> anyhow::Result<()> {
        let _one_at_a_time = self.reconciling.lock().await;
        let (wanted, target): (HashMap<u64, Want>, levee_map::ShardMap) = self.catalog.read(|c| {
            let wanted = c
                .state()
                .streams()
                .values()
                .map(|s| {
                    let shards = s
                        .shards
                        .iter()
                        .map(|sh| (sh.uid, sh.index, sh.created_ms, sh.open))
                        .collect();
                    (s.uid, (u64::from(s.retention_hours) * HOUR_MS, shards))
                })
                .collect();
            (wanted, c.shard_map())
        });
        let Some(engine) = &self.engine else {
            // Storage nodes reconcile themselves to the published map.
            self.publish(target);
            return Ok(());
        };
        reconcile_engine(engine, &wanted).await?;
        self.publish(target);
        Ok(())
    }

    async fn reconcile_or_log(&self, stream: &str) {
        if let Err(e) = self.reconcile().await {
            tracing::error!(%stream, error = %format!("{e:#}"), "reconciling storage failed");
        }
    }

    /// Publishes a newer map to the front-end (its follower takes it from the publisher).
    fn publish(&self, target: levee_map::ShardMap) {
        self.publisher.publish(target);
    }

    /// Waits (at most [`MAP_BARRIER_MS`]) until the front-end's follower has dealt with every
    /// map published so far, so a client that saw a change through the control plane finds it
    /// in this front-end's routing too.
    pub async fn map_barrier(&self) {
        let Some(settled) = self.map_settled.get() else {
            return;
        };
        let target = self.publisher.version();
        let mut rx = settled.clone();
        let wait = Duration::from_millis(MAP_BARRIER_MS);
        if !levee_frontend::map_follow::wait_settled(&mut rx, target, wait).await {
            tracing::debug!(target, "the front-end has not taken the published map yet");
        }
    }

    /// Deletes expired segments on a fixed period, on the blocking pool (file deletions).
    fn sweep_retention_periodically(self: Arc<Self>) {
        tokio::spawn(async move {
            let mut tick =
                tokio::time::interval(Duration::from_millis(RETENTION_SWEEP_INTERVAL_MS));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                self.expire_closed_shards().await;
                let Some(engine) = self.engine.clone() else {
                    continue;
                };
                match tokio::task::spawn_blocking(move || engine.enforce_retention()).await {
                    Ok(Ok(0)) => {}
                    Ok(Ok(n)) => tracing::info!(segments = n, "deleted expired segments"),
                    Ok(Err(e)) => tracing::error!(error = %e, "retention sweep failed"),
                    Err(e) => tracing::error!(error = %e, "retention sweep task failed"),
                }
            }
        });
    }

    /// Marks closed shards past their stream's retention as expired (ListShards omits them).
    async fn expire_closed_shards(&self) {
        if !self.cfg.voters.is_empty() && !self.catalog.is_leader() {
            return;
        }
        let now = now_ms();
        let due: Vec<String> = self.catalog.read(|c| {
            c.state()
                .streams()
                .values()
                .filter(|s| {
                    s.shards.iter().any(|sh| {
                        sh.expired_ms.is_none()
                            && sh
                                .closed_ms
                                .is_some_and(|t| t.saturating_add(s.retention_ms()) < now)
                    })
                })
                .map(|s| s.name.clone())
                .collect()
        });
        for name in due {
            let cmd = Command::ExpireShards {
                name: name.clone(),
                now_ms: now,
            };
            match self.catalog.execute(cmd).await {
                Ok(_) => self.reconcile_or_log(&name).await,
                Err(e) => {
                    tracing::error!(stream = %name, error = %e, "expiring closed shards failed")
                }
            }
        }
    }

    /// A registered consumer goes CREATING → ACTIVE after the configured delay.
    pub fn activate_consumer_later(
        self: Arc<Self>,
        consumer_arn: String,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(self.cfg.stream_transition_ms)).await;
            let cmd = Command::ActivateConsumer {
                consumer_arn: consumer_arn.clone(),
                now_ms: now_ms(),
            };
            match self.catalog.execute(cmd).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::debug!(consumer = %consumer_arn, error = %e, "activation skipped")
                }
                Err(e) => {
                    tracing::error!(consumer = %consumer_arn, error = %e, "consumer activation failed")
                }
            }
        })
    }

    /// A deregistered consumer goes DELETING → gone after the configured delay.
    pub fn finish_deregister_consumer_later(
        self: Arc<Self>,
        consumer_arn: String,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(self.cfg.stream_transition_ms)).await;
            let cmd = Command::FinishDeregisterConsumer {
                consumer_arn: consumer_arn.clone(),
            };
            match self.catalog.execute(cmd).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::debug!(consumer = %consumer_arn, error = %e, "deregistration already finished")
                }
                Err(e) => {
                    tracing::error!(consumer = %consumer_arn, error = %e, "finishing a deregistration failed")
                }
            }
        })
    }

    /// UPDATING → ACTIVE after the configured delay (reads and writes go on meanwhile).
    pub fn finish_update_later(self: Arc<Self>, name: String) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(self.cfg.stream_transition_ms)).await;
            let cmd = Command::FinishUpdate {
                name: name.clone(),
                now_ms: now_ms(),
            };
            match self.catalog.execute(cmd).await {
                Ok(Ok(_)) => self.reconcile_or_log(&name).await,
                Ok(Err(e)) => {
                    tracing::debug!(stream = %name, error = %e, "update already finished")
                }
                Err(e) => tracing::error!(stream = %name, error = %e, "finishing an update failed"),
            }
        })
    }

    /// CREATING → ACTIVE after the configured delay (AWS's asynchronous creation).
    pub fn activate_later(self: Arc<Self>, name: String) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(self.cfg.stream_transition_ms)).await;
            let cmd = Command::ActivateStream {
                name: name.clone(),
                now_ms: now_ms(),
            };
            match self.catalog.execute(cmd).await {
                Ok(Ok(_)) => self.reconcile_or_log(&name).await,
                Ok(Err(e)) => tracing::debug!(stream = %name, error = %e, "activation skipped"),
                Err(e) => tracing::error!(stream = %name, error = %e, "activation failed"),
            }
        })
    }

    /// DELETING → gone after the configured delay; storage drops the data.
    pub fn finish_delete_later(self: Arc<Self>, name: String) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(self.cfg.stream_transition_ms)).await;
            match self
                .catalog
                .execute(Command::FinishDeleteStream { name: name.clone() })
                .await
            {
                Ok(Ok(_)) => {
                    if let Err(e) = self.reconcile().await {
                        tracing::error!(stream = %name, error = %e, "dropping a deleted stream's data failed");
                    }
                }
                Ok(Err(e)) => {
                    tracing::debug!(stream = %name, error = %e, "deletion already finished")
                }
                Err(e) => tracing::error!(stream = %name, error = %e, "finishing deletion failed"),
            }
        })
    }

    /// Checkpoints storage and snapshots the catalog so the next start replays little.
    pub async fn checkpoint(&self) -> anyhow::Result<()> {
        if let Some(engine) = &self.engine {
            engine.checkpoint().context("checkpointing storage")?;
        }
        self.catalog
            .snapshot()
            .await
            .context("snapshotting the catalog")?;
        Ok(())
    }
}

/// What a stream should hold in a storage engine: its retention in ms, and its shards as
/// (uid, index, created ms, open).
pub type Want = (u64, Vec<(u64, u32, u64, bool)>);

/// Makes `engine` hold exactly the streams and shards of `wanted` (by stream uid): the one
/// reconciliation the embedded node (from its catalog) and a fleet storage node (from its map)
/// both run. Children are created before parents close, so a writer bounced off a closed
/// parent always finds the child in place; streams not wanted are dropped.
pub async fn reconcile_engine(engine: &Engine, wanted: &HashMap<u64, Want>) -> anyhow::Result<()> {
    let have: HashMap<StreamUid, u64> = engine.streams().into_iter().collect();
    for (uid, (retention_ms, shards)) in wanted {
        let stream = StreamUid(*uid);
        match have.get(&stream) {
            None => engine.create_stream(stream, *retention_ms)?.await?,
            Some(r) if r != retention_ms => engine.set_retention(stream, *retention_ms)?.await?,
            Some(_) => {}
        }
        for (shard_uid, index, created_ms, _) in shards {
            if engine.shard_info(ShardUid(*shard_uid)).is_err() {
                engine
                    .create_shard_at(ShardUid(*shard_uid), stream, *index, *created_ms)?
                    .await?;
            }
        }
        for (shard_uid, _, _, open) in shards {
            let uid = ShardUid(*shard_uid);
            if !open && engine.shard_info(uid).is_ok_and(|i| !i.closed) {
                engine.close_shard(uid)?.await?;
            }
        }
    }
    for stream in have.keys() {
        if !wanted.contains_key(&stream.0) {
            engine.drop_stream(*stream)?.await?;
        }
    }
    Ok(())
}
