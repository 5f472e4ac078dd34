//! How a front-end gets, checks, keeps and persists its shard map (F3, F4, R5).
//!
//! - [`MapSource`]: where maps come from — "the whole map" and "the changes after version V,
//!   waiting up to T" — as encoded frames (`levee_map::codec`). The embedded node implements it
//!   in process; a fleet front-end over HTTP. The follower code is the same either way (R5).
//! - [`MapDisk`]: where accepted maps are persisted, one atomic, durable file per generation.
//!   The binary implements it on the storage `Vfs` (so faults can be injected); the front-end
//!   never depends on the storage crate.
//! - [`MapKeeper`]: the gate in front of the [`MapHolder`]. A candidate map is built beside the
//!   live one and checked before the swap: it verifies (checksum; every stream with shards has
//!   open shards covering `[0, 2^128)` exactly once — `ShardMap::build`), its version does not
//!   go backwards (the same version must be the same map), and it does not remove more than
//!   [`HoldPolicy::removal_fraction`] of the live open shards or nodes at once — such a map is
//!   *held* and alarmed until an operator approves it. A change passes only once persisted:
//!   every map a front-end routes by is on its disk, the newest [`MAP_GENERATIONS_KEPT`]
//!   generations are kept, and boot loads the newest one that decodes.
//! - [`spawn_follower`]: the task that long-polls deltas and fetches a full snapshot on a
//!   fixed, jittered period anyway (constant work). Decoding, building, validating and
//!   persisting run on the blocking pool, off the request path; any failure leaves the live map
//!   routing, raises the keeper's alarm and retries with bounded, jittered backoff.
//!
//! Intentional deletions are never held: DeleteStream marks a stream DELETING in one map
//! version before a later one removes it, and shards of a stream that is (or, within the same
//! feed, became) DELETING do not count as removed. Closed shards (a reshard's parents, expired
//! later) never count either; only open shards that vanish do. Maps with fewer than
//! [`HoldPolicy::min_shards`] open shards are never held (a single node with a few streams).

use std::collections::{BTreeSet, HashSet};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use levee_map::codec::{self, Frame};
use levee_map::{NodeId, ShardMap, StreamState};
use serde::Serialize;

use crate::backend::{BoxFuture, MapHolder};

/// Map work (decoding, validating, persisting, freeing maps) queued for the map thread at most.
pub const MAP_WORK_QUEUE_MAX: usize = 4;
/// The map thread's nice value: below the request path's priority, so building a large map
/// takes spare CPU rather than request latency.
pub const MAP_THREAD_NICE: i32 = 10;

type MapJob = Box<dyn FnOnce() + Send>;

/// Runs `f` on the process's one map thread (started on first use, lower CPU priority than
/// the request runtime, a bounded queue): map work never runs on the request path and never
/// takes more than one thread (R1).
pub async fn map_work<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    static WORKER: std::sync::OnceLock<Option<tokio::sync::mpsc::Sender<MapJob>>> =
        std::sync::OnceLock::new();
    let worker = WORKER.get_or_init(|| {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<MapJob>(MAP_WORK_QUEUE_MAX);
        metrics::gauge!("levee_config_limit", "limit" => "map_work_queue")
            .set(MAP_WORK_QUEUE_MAX as f64);
        let spawned = std::thread::Builder::new()
            .name("levee-map".into())
            .spawn(move || {
                lower_priority();
                while let Some(job) = rx.blocking_recv() {
                    // A panicking job loses only its own answer (the caller sees an error).
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                }
            });
        match spawned {
            Ok(_) => Some(tx),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the map thread; map work uses the blocking pool");
                None
            }
        }
    });
    let Some(tx) = worker else {
        return tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| format!("map work failed: {e}"));
    };
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let job: MapJob = Box::new(move || {
        let _ = done_tx.send(f());
    });
    tx.send(job)
        .await
        .map_err(|_| "the map thread has stopped".to_string())?;
    done_rx
        .await
        .map_err(|_| "map work failed (the job panicked)".to_string())
}

/// The process's map I/O runtime: one thread ("levee-map-io", lower CPU priority) running a
/// current-thread tokio runtime, so fetching a large map (receiving a 10 MB HTTP/2 body) never
/// occupies a request worker. Started on first use.
pub fn map_io_handle() -> Result<tokio::runtime::Handle, String> {
    static HANDLE: std::sync::OnceLock<Result<tokio::runtime::Handle, String>> =
        std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("building the map I/O runtime: {e}"))?;
            let handle = rt.handle().clone();
            std::thread::Builder::new()
                .name("levee-map-io".into())
                .spawn(move || {
                    lower_priority();
                    rt.block_on(std::future::pending::<()>());
                })
                .map_err(|e| format!("starting the map I/O thread: {e}"))?;
            Ok(handle)
        })
        .clone()
}

/// Lowers the calling thread's CPU priority to [`MAP_THREAD_NICE`].
fn lower_priority() {
    // SAFETY: setpriority on this thread's own id; raising nice needs no privilege.
    let rc = unsafe {
        libc::setpriority(
            libc::PRIO_PROCESS,
            libc::gettid() as libc::id_t,
            MAP_THREAD_NICE,
        )
    };
    if rc != 0 {
        tracing::warn!("could not lower a map thread's priority");
    }
}

/// Snapshots asked for by stale routes are at least this far apart.
pub const MAP_REFRESH_INTERVAL_MIN_MS: u64 = 100;
/// Persisted generations kept on disk (the newest and at least one fallback).
pub const MAP_GENERATIONS_KEPT: usize = 2;
/// The first retry after a failure waits about this long; each further failure doubles it.
pub const MAP_RETRY_BACKOFF_FIRST_MS: u64 = 100;
/// Retries never wait longer than this.
pub const MAP_RETRY_BACKOFF_MAX_MS: u64 = 10_000;
/// A long poll asks the source to wait at most this long for a change.
pub const MAP_POLL_WAIT_MS_DEFAULT: u64 = 20_000;
/// A full snapshot is fetched about this often, whether or not deltas flow (±20 % jitter).
pub const MAP_SNAPSHOT_PERIOD_MS_DEFAULT: u64 = 60_000;
/// The default hold threshold: a change removing more than this fraction of the live open
/// shards or nodes waits for an operator.
pub const MAP_REMOVAL_HOLD_FRACTION_DEFAULT: f64 = 0.25;
/// Maps with fewer open shards than this are never held.
pub const MAP_REMOVAL_HOLD_MIN_SHARDS_DEFAULT: usize = 8;

/// A map source failed (unreachable, an HTTP error, a timeout).
#[derive(Debug, Clone, thiserror::Error)]
#[error("map source: {0}")]
pub struct SourceError(pub String);

/// Where maps come from, transport-agnostic. Both calls return encoded frames.
pub trait MapSource: Send + Sync + 'static {
    /// The current map: one snapshot frame.
    fn snapshot(&self) -> BoxFuture<Result<Bytes, SourceError>>;
    /// The changes after version `after`: delta frames in order, or one snapshot frame when
    /// the source's history does not reach back to `after` (or `after` is not a version it
    /// published); empty when nothing changed within `wait`.
    fn deltas(&self, after: u64, wait: Duration) -> BoxFuture<Result<Bytes, SourceError>>;
}

/// Durable, atomic storage of map generations (blocking calls; run off the request path).
pub trait MapDisk: Send + Sync + 'static {
    /// The versions of the generations present, in any order.
    fn generations(&self) -> io::Result<Vec<u64>>;
    /// Writes generation `version` atomically and durably (tmp, fsync, rename, fsync dir).
    fn write(&self, version: u64, bytes: &[u8]) -> io::Result<()>;
    /// Reads generation `version` whole (any damage is the decoder's to find).
    fn read(&self, version: u64) -> io::Result<Vec<u8>>;
    fn remove(&self, version: u64) -> io::Result<()>;
    /// Where the generations live, for messages.
    fn location(&self) -> String;
}

/// When a change is held for an operator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HoldPolicy {
    /// Hold a change removing more than this fraction of the live open shards or their nodes.
    pub removal_fraction: f64,
    /// Never hold while the live map has fewer open shards than this.
    pub min_shards: usize,
}

impl Default for HoldPolicy {
    fn default() -> Self {
        HoldPolicy {
            removal_fraction: MAP_REMOVAL_HOLD_FRACTION_DEFAULT,
            min_shards: MAP_REMOVAL_HOLD_MIN_SHARDS_DEFAULT,
        }
    }
}

/// Open shards and nodes a change takes away without an intentional deletion.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removal {
    pub live_shards: usize,
    pub removed_shards: usize,
    pub live_nodes: usize,
    pub removed_nodes: usize,
}

/// What `next` removes from `live`. Streams DELETING in `live` or named in `intended` (marked
/// DELETING on the way) are intentional; closed shards do not count.
pub fn removal(live: &ShardMap, next: &ShardMap, intended: &BTreeSet<String>) -> Removal {
    let mut r = Removal::default();
    let mut live_nodes: HashSet<NodeId> = HashSet::new();
    let mut lost_nodes: HashSet<NodeId> = HashSet::new();
    for s in live.streams() {
        let deliberate = s.state == StreamState::Deleting || intended.contains(&s.name);
        let after = next.stream(&s.name);
        for sh in s.shards.iter().filter(|sh| sh.open) {
            r.live_shards += 1;
            live_nodes.insert(sh.node);
            let kept = after
                .and_then(|n| n.shard(sh.shard_id))
                .is_some_and(|n| n.uid == sh.uid);
            if !kept && !deliberate {
                r.removed_shards += 1;
                lost_nodes.insert(sh.node);
            }
        }
    }
    let next_nodes: HashSet<NodeId> = next
        .streams()
        .flat_map(|s| s.shards.iter().map(|sh| sh.node))
        .collect();
    r.live_nodes = live_nodes.len();
    r.removed_nodes = lost_nodes.difference(&next_nodes).count();
    r
}

impl Removal {
    /// Why `policy` holds this change, if it does.
    pub fn hold_reason(&self, policy: &HoldPolicy) -> Option<String> {
        if self.live_shards < policy.min_shards || self.live_shards == 0 {
            return None;
        }
        let shards = self.removed_shards as f64 / self.live_shards as f64;
        let nodes = if self.live_nodes == 0 {
            0.0
        } else {
            self.removed_nodes as f64 / self.live_nodes as f64
        };
        (shards > policy.removal_fraction || nodes > policy.removal_fraction).then(|| {
            format!(
                "removes {} of {} open shards and {} of {} nodes (hold above {:.0} %)",
                self.removed_shards,
                self.live_shards,
                self.removed_nodes,
                self.live_nodes,
                policy.removal_fraction * 100.0
            )
        })
    }
}

/// Why a candidate map was not taken.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OfferError {
    /// The map is invalid or goes backwards: it is never taken.
    #[error("map refused: {0}")]
    Refused(String),
    /// Persisting failed: the live map stays; the same change is tried again later.
    #[error("persisting map version {version} failed: {why}")]
    Persist { version: u64, why: String },
}

/// What became of a candidate map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offered {
    /// Persisted and swapped in.
    Accepted(u64),
    /// The live map already is this map.
    Unchanged(u64),
    /// Held for an operator (`levee admin approve-map VERSION`).
    Held { version: u64, why: String },
}

/// An alarm about the map, as the status page shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MapAlarm {
    /// `held`, `refused`, `persist`, `source`, `boot`.
    pub kind: &'static str,
    pub message: String,
    pub since_ms: u64,
}

/// What boot found on disk.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BootReport {
    /// The generation loaded, if any.
    pub loaded: Option<u64>,
    /// Generations that failed to read or decode, with why (newest first).
    pub corrupt: Vec<String>,
    /// Microseconds from listing the directory to the map being live.
    pub took_us: u64,
}

/// The keeper's state, for `/status` and `/health/ready`.
#[derive(Debug, Clone, Serialize)]
pub struct KeeperStatus {
    pub live_version: u64,
    pub ready: bool,
    /// Why the front-end is not ready (no valid map yet).
    pub not_ready_reason: Option<String>,
    pub held_version: Option<u64>,
    pub held_reason: Option<String>,
    pub alarms: Vec<MapAlarm>,
    /// Persisted generations, newest first.
    pub generations: Vec<u64>,
    pub location: String,
    pub boot: BootReport,
}

struct Held {
    map: Arc<ShardMap>,
    why: String,
}

struct KeeperState {
    /// A valid map has been loaded or received: the front-end may route.
    ready: bool,
    not_ready_reason: String,
    held: Option<Held>,
    alarms: Vec<MapAlarm>,
    generations: Vec<u64>,
    boot: BootReport,
}

/// The gate between map sources and the [`MapHolder`]: validates, holds, persists, swaps.
pub struct MapKeeper {
    holder: Arc<MapHolder>,
    disk: Arc<dyn MapDisk>,
    policy: HoldPolicy,
    state: Mutex<KeeperState>,
    /// One offer or approval at a time (they persist, then swap).
    serial: Mutex<()>,
    /// The map last replaced, kept until the next swap (see `persist_and_swap`).
    retired: Mutex<Option<Arc<ShardMap>>>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl MapKeeper {
    pub fn new(holder: Arc<MapHolder>, disk: Arc<dyn MapDisk>, policy: HoldPolicy) -> MapKeeper {
        metrics::gauge!("levee_frontend_map_hold_fraction").set(policy.removal_fraction);
        metrics::gauge!("levee_config_limit", "limit" => "map_generations_kept")
            .set(MAP_GENERATIONS_KEPT as f64);
        MapKeeper {
            holder,
            disk,
            policy,
            state: Mutex::new(KeeperState {
                ready: false,
                not_ready_reason: "no shard map loaded or received yet".into(),
                held: None,
                alarms: Vec::new(),
                generations: Vec::new(),
                boot: BootReport::default(),
            }),
            serial: Mutex::new(()),
            retired: Mutex::new(None),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, KeeperState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn holder(&self) -> &Arc<MapHolder> {
        &self.holder
    }

    /// Loads the newest generation that decodes and verifies into the holder (blocking; run
    /// before serving). A damaged newest generation falls back to the previous one (logged,
    /// counted); none valid leaves the front-end not ready with the reason.
    pub fn boot(&self) -> BootReport {
        let _one = self.serial.lock().unwrap_or_else(|p| p.into_inner());
        let started = Instant::now();
        let mut report = BootReport::default();
        let mut versions = match self.disk.generations() {
            Ok(v) => v,
            Err(e) => {
                report
                    .corrupt
                    .push(format!("listing {}: {e}", self.disk.location()));
                Vec::new()
            }
        };
        versions.sort_unstable_by(|a, b| b.cmp(a));
        for v in &versions {
            let loaded = self
                .disk
                .read(*v)
                .map_err(|e| e.to_string())
                .and_then(|b| codec::decode_map(&b).map_err(|e| e.to_string()))
                .and_then(|m| {
                    if m.version() == *v {
                        Ok(m)
                    } else {
                        Err(format!("holds version {}", m.version()))
                    }
                });
            match loaded {
                Ok(map) => {
                    self.holder.replace(Arc::new(map));
                    report.loaded = Some(*v);
                    break;
                }
                Err(why) => {
                    tracing::error!(generation = v, location = %self.disk.location(), %why,
                        "persisted shard map generation is damaged; trying the previous one");
                    metrics::counter!("levee_frontend_map_generation_corrupt_total").increment(1);
                    report.corrupt.push(format!("generation {v}: {why}"));
                }
            }
        }
        report.took_us = started.elapsed().as_micros() as u64;
        metrics::gauge!("levee_frontend_map_boot_load_seconds").set(report.took_us as f64 / 1e6);
        let mut st = self.state();
        st.generations = versions;
        match report.loaded {
            Some(v) => {
                st.ready = true;
                tracing::info!(
                    version = v,
                    took_us = report.took_us,
                    "shard map loaded from disk"
                );
            }
            None if !report.corrupt.is_empty() => {
                let why = format!(
                    "no valid persisted shard map in {} ({}); waiting for the control plane",
                    self.disk.location(),
                    report.corrupt.join("; ")
                );
                st.not_ready_reason = why.clone();
                raise(&mut st, "boot", why);
            }
            None => {}
        }
        st.boot = report.clone();
        report
    }

    /// The map new changes build on: the held one if any, else the live one.
    pub fn base(&self) -> Arc<ShardMap> {
        let live = self.holder.current();
        match &self.state().held {
            Some(h) if h.map.version() > live.version() => h.map.clone(),
            _ => live,
        }
    }

    /// Validates `candidate` against the live map, then holds it, or persists and swaps it in.
    /// `intended` names streams marked DELETING on the way to it (their removal is on purpose).
    /// Blocking (it persists).
    pub fn offer(
        &self,
        candidate: ShardMap,
        intended: &BTreeSet<String>,
    ) -> Result<Offered, OfferError> {
        let _one = self.serial.lock().unwrap_or_else(|p| p.into_inner());
        let live = self.holder.current();
        let version = candidate.version();
        let refuse = |why: String| {
            metrics::counter!("levee_frontend_map_refused_total").increment(1);
            Err(OfferError::Refused(why))
        };
        if let Err(e) = candidate.verify() {
            return refuse(e.to_string());
        }
        if version < live.version() {
            return refuse(format!(
                "version regression: offered version {version} is older than the live version {}",
                live.version()
            ));
        }
        if version == live.version() {
            if candidate.checksum() != live.checksum() {
                return refuse(format!(
                    "version {version} offered with checksum {:08x}, the live map's is {:08x}",
                    candidate.checksum(),
                    live.checksum()
                ));
            }
            let mut st = self.state();
            if !st.ready {
                // The empty map (version 0) of a fresh control plane: nothing to persist.
                st.ready = true;
            }
            st.alarms.retain(|a| a.kind == "held");
            return Ok(Offered::Unchanged(version));
        }
        let mut intended = intended.clone();
        if let Some(h) = &self.state().held {
            intended.extend(
                h.map
                    .streams()
                    .filter(|s| s.state == StreamState::Deleting)
                    .map(|s| s.name.clone()),
            );
        }
        if let Some(why) = removal(&live, &candidate, &intended).hold_reason(&self.policy) {
            let mut st = self.state();
            let newly = st.held.as_ref().map(|h| h.map.version()) != Some(version);
            if newly {
                tracing::error!(version, live = live.version(), %why,
                    "shard map change held: approve it with `levee admin approve-map {version}`");
                metrics::counter!("levee_frontend_map_held_total").increment(1);
            }
            metrics::gauge!("levee_frontend_map_held_version").set(version as f64);
            st.held = Some(Held {
                map: Arc::new(candidate),
                why: why.clone(),
            });
            st.alarms.retain(|a| a.kind != "held");
            raise(
                &mut st,
                "held",
                format!(
                    "map version {version} {why}; live version {} keeps routing; \
                     approve with `levee admin approve-map {version}`",
                    live.version()
                ),
            );
            return Ok(Offered::Held { version, why });
        }
        self.persist_and_swap(Arc::new(candidate))?;
        Ok(Offered::Accepted(version))
    }

    /// Swaps in the held map of `version` (the operator's approval). Blocking.
    pub fn approve(&self, version: u64) -> Result<u64, String> {
        let _one = self.serial.lock().unwrap_or_else(|p| p.into_inner());
        let held = match &self.state().held {
            Some(h) if h.map.version() == version => h.map.clone(),
            Some(h) => {
                return Err(format!(
                    "map version {version} is not held; the held map is version {}",
                    h.map.version()
                ))
            }
            None => return Err("no shard map is held".into()),
        };
        if held.version() <= self.holder.current().version() {
            self.state().held = None;
            return Err(format!(
                "map version {version} is no longer newer than the live map"
            ));
        }
        self.persist_and_swap(held).map_err(|e| e.to_string())?;
        tracing::warn!(
            version,
            "held shard map approved by an operator and swapped in"
        );
        metrics::counter!("levee_frontend_map_approved_total").increment(1);
        Ok(version)
    }

    /// Persists `map` as the newest generation, prunes old ones, then swaps it in.
    fn persist_and_swap(&self, map: Arc<ShardMap>) -> Result<(), OfferError> {
        let version = map.version();
        let bytes = codec::encode_map(&map);
        if let Err(e) = self.disk.write(version, &bytes) {
            metrics::counter!("levee_frontend_map_persist_failures_total").increment(1);
            return Err(OfferError::Persist {
                version,
                why: format!("{}: {e}", self.disk.location()),
            });
        }
        let mut gens = self.state().generations.clone();
        gens.retain(|v| *v != version);
        gens.push(version);
        gens.sort_unstable_by(|a, b| b.cmp(a));
        for old in gens.split_off(MAP_GENERATIONS_KEPT.min(gens.len())) {
            match self.disk.remove(old) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(generation = old, error = %e, "removing an old map generation failed");
                    gens.push(old);
                }
            }
        }
        if let Some(old) = self.holder.replace(map) {
            // Requests that cloned the old map finish with it long before the next swap, so
            // the last reference (and freeing it) usually stays here, off the request path.
            let previous = self
                .retired
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .replace(old);
            drop(previous);
        }
        metrics::counter!("levee_frontend_map_accepted_total").increment(1);
        metrics::gauge!("levee_frontend_map_persisted_bytes").set(bytes.len() as f64);
        let mut st = self.state();
        st.generations = gens;
        st.ready = true;
        if st.held.as_ref().is_some_and(|h| h.map.version() <= version) {
            st.held = None;
            metrics::gauge!("levee_frontend_map_held_version").set(0.0);
        }
        // A map went in: everything but a still-held change is resolved.
        let held = st.held.is_some();
        st.alarms.retain(|a| held && a.kind == "held");
        publish_alarms(&st);
        Ok(())
    }

    /// Records a failure (the follower's or the source's) as an alarm.
    pub fn alarm(&self, kind: &'static str, message: String) {
        let mut st = self.state();
        raise(&mut st, kind, message);
    }

    pub fn ready(&self) -> bool {
        self.state().ready
    }

    pub fn status(&self) -> KeeperStatus {
        let live = self.holder.current().version();
        let st = self.state();
        KeeperStatus {
            live_version: live,
            ready: st.ready,
            not_ready_reason: (!st.ready).then(|| st.not_ready_reason.clone()),
            held_version: st.held.as_ref().map(|h| h.map.version()),
            held_reason: st.held.as_ref().map(|h| h.why.clone()),
            alarms: st.alarms.clone(),
            generations: st.generations.clone(),
            location: self.disk.location(),
            boot: st.boot.clone(),
        }
    }
}

const ALARM_KINDS: [&str; 5] = ["held", "refused", "persist", "source", "boot"];

fn raise(st: &mut KeeperState, kind: &'static str, message: String) {
    match st.alarms.iter_mut().find(|a| a.kind == kind) {
        Some(a) => a.message = message,
        None => st.alarms.push(MapAlarm {
            kind,
            message,
            since_ms: now_ms(),
        }),
    }
    publish_alarms(st);
}

fn publish_alarms(st: &KeeperState) {
    for kind in ALARM_KINDS {
        let on = st.alarms.iter().any(|a| a.kind == kind);
        metrics::gauge!("levee_frontend_map_alarm", "kind" => kind).set(if on { 1.0 } else { 0.0 });
    }
}

/// Decodes a feed and builds the candidate on `base` (deltas in order, or a snapshot).
/// `None` for an empty feed.
pub fn build(base: &ShardMap, feed: &[u8]) -> Result<Option<(ShardMap, BTreeSet<String>)>, String> {
    let frames = codec::decode_frames(feed).map_err(|e| format!("decoding the map feed: {e}"))?;
    let mut intended = BTreeSet::new();
    let mut cur: Option<ShardMap> = None;
    for f in frames {
        match f {
            Frame::Snapshot(m) => cur = Some(m),
            Frame::Delta(d) => {
                intended.extend(
                    d.upserts
                        .iter()
                        .filter(|s| s.state == StreamState::Deleting)
                        .map(|s| s.name.clone()),
                );
                let next = cur.as_ref().unwrap_or(base).apply(&d).map_err(|e| {
                    format!("applying delta {}→{}: {e}", d.from_version, d.to_version)
                })?;
                cur = Some(next);
            }
        }
    }
    Ok(cur.map(|m| (m, intended)))
}

/// The follower's timing.
#[derive(Debug, Clone, Copy)]
pub struct FollowConfig {
    pub poll_wait: Duration,
    pub snapshot_period: Duration,
    pub backoff_first: Duration,
    pub backoff_max: Duration,
}

impl Default for FollowConfig {
    fn default() -> Self {
        FollowConfig {
            poll_wait: Duration::from_millis(MAP_POLL_WAIT_MS_DEFAULT),
            snapshot_period: Duration::from_millis(MAP_SNAPSHOT_PERIOD_MS_DEFAULT),
            backoff_first: Duration::from_millis(MAP_RETRY_BACKOFF_FIRST_MS),
            backoff_max: Duration::from_millis(MAP_RETRY_BACKOFF_MAX_MS),
        }
    }
}

/// `d` scaled by a random factor in [0.8, 1.2).
fn jittered(d: Duration) -> Duration {
    d.mul_f64(rand::Rng::gen_range(&mut rand::thread_rng(), 0.8..1.2))
}

/// The wait before retry number `failures` (1-based): doubling from `first`, capped at `max`,
/// with "equal jitter" (a random point in the upper half), so a fleet does not retry in step.
pub fn backoff(cfg: &FollowConfig, failures: u32) -> Duration {
    let d = cfg
        .backoff_first
        .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(cfg.backoff_max);
    d.mul_f64(rand::Rng::gen_range(&mut rand::thread_rng(), 0.5..=1.0))
}

/// How far the follower has got: the newest version it finished with (accepted, held or found
/// unchanged) and how many attempts have failed so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settled {
    pub version: u64,
    pub failures: u64,
    /// The first fetch (the snapshot at start) has been dealt with, whatever came of it.
    pub started: bool,
}

/// Starts the follower. The returned receiver says how far it has got — what a caller that
/// must see its own change waits for (see [`wait_settled`]).
pub fn spawn_follower(
    keeper: Arc<MapKeeper>,
    source: Arc<dyn MapSource>,
    cfg: FollowConfig,
) -> tokio::sync::watch::Receiver<Settled> {
    let (settled_tx, settled) = tokio::sync::watch::channel(Settled {
        version: keeper.holder.current().version(),
        failures: 0,
        started: false,
    });
    tokio::spawn(follow(keeper, source, cfg, settled_tx));
    settled
}

/// [`spawn_follower`] on the runtime `on` (a fleet node's map I/O runtime, [`map_io_handle`]).
pub fn spawn_follower_on(
    on: &tokio::runtime::Handle,
    keeper: Arc<MapKeeper>,
    source: Arc<dyn MapSource>,
    cfg: FollowConfig,
) -> tokio::sync::watch::Receiver<Settled> {
    let (settled_tx, settled) = tokio::sync::watch::channel(Settled {
        version: keeper.holder.current().version(),
        failures: 0,
        started: false,
    });
    on.spawn(follow(keeper, source, cfg, settled_tx));
    settled
}

/// Waits until the follower has dealt with version `target` (or failed an attempt after this
/// call began, or `timeout` passed). Returns whether it reached `target`.
pub async fn wait_settled(
    settled: &mut tokio::sync::watch::Receiver<Settled>,
    target: u64,
    timeout: Duration,
) -> bool {
    let failures = settled.borrow().failures;
    let reached = tokio::time::timeout(
        timeout,
        settled.wait_for(|s| s.version >= target || s.failures > failures),
    )
    .await;
    matches!(reached, Ok(Ok(s)) if s.version >= target)
}

async fn follow(
    keeper: Arc<MapKeeper>,
    source: Arc<dyn MapSource>,
    cfg: FollowConfig,
    settled: tokio::sync::watch::Sender<Settled>,
) {
    // The first fetch is a snapshot at once: boot, steady state and recovery are one loop.
    let mut next_snapshot = tokio::time::Instant::now();
    let mut last_snapshot = next_snapshot;
    let mut failures = 0u32;
    loop {
        let after = keeper.base().version();
        let snapshot_due = tokio::time::Instant::now() >= next_snapshot;
        let (what, fetched) = if snapshot_due {
            last_snapshot = tokio::time::Instant::now();
            next_snapshot = last_snapshot + jittered(cfg.snapshot_period);
            metrics::counter!("levee_frontend_map_fetches_total", "kind" => "snapshot")
                .increment(1);
            ("snapshot", source.snapshot().await)
        } else {
            tokio::select! {
                _ = tokio::time::sleep_until(next_snapshot) => continue,
                _ = keeper.holder.refresh_requested() => {
                    // A stale route: a snapshot now (the delta feed may be held back), but
                    // never more often than the minimum interval.
                    metrics::counter!("levee_frontend_map_refreshes_total").increment(1);
                    next_snapshot = next_snapshot
                        .min(last_snapshot + Duration::from_millis(MAP_REFRESH_INTERVAL_MIN_MS));
                    continue;
                }
                r = source.deltas(after, cfg.poll_wait) => {
                    metrics::counter!("levee_frontend_map_fetches_total", "kind" => "deltas")
                        .increment(1);
                    ("deltas", r)
                }
            }
        };
        let outcome = match fetched {
            Err(e) => Err(("source", e.to_string())),
            Ok(feed) if feed.is_empty() => Ok(None),
            Ok(feed) => {
                metrics::counter!("levee_frontend_map_feed_bytes_total")
                    .increment(feed.len() as u64);
                let k = keeper.clone();
                let job = map_work(move || {
                    let base = k.base();
                    let Some((candidate, intended)) =
                        build(&base, &feed).map_err(|e| ("refused", e))?
                    else {
                        return Ok(None);
                    };
                    let seen = candidate.version();
                    match k.offer(candidate, &intended) {
                        Ok(o) => Ok(Some((seen, o))),
                        Err(e @ OfferError::Refused(_)) => Err(("refused", e.to_string())),
                        Err(e @ OfferError::Persist { .. }) => Err(("persist", e.to_string())),
                    }
                });
                match job.await {
                    Ok(r) => r,
                    Err(e) => Err(("refused", format!("building the map failed: {e}"))),
                }
            }
        };
        match outcome {
            Ok(done) => {
                if let Some((version, o)) = done {
                    match o {
                        Offered::Accepted(v) => {
                            tracing::debug!(version = v, what, "shard map accepted")
                        }
                        // A source answering a poll at once with nothing new to us (a snapshot
                        // older than a held map): do not spin on it.
                        Offered::Unchanged(_) if what == "deltas" => {
                            tokio::time::sleep(cfg.backoff_first).await
                        }
                        _ => {}
                    }
                    settled.send_if_modified(|s| {
                        let newer = version > s.version;
                        s.version = s.version.max(version);
                        newer
                    });
                }
                if !settled.borrow().started {
                    settled.send_modify(|s| s.started = true);
                }
                failures = 0;
            }
            Err((kind, why)) => {
                failures = failures.saturating_add(1);
                tracing::warn!(what, kind, %why, failures, "shard map update failed; the live map keeps routing");
                metrics::counter!("levee_frontend_map_failures_total", "kind" => kind).increment(1);
                keeper.alarm(kind, why);
                // Whoever waits for a version must not wait on a failing follower.
                settled.send_modify(|s| {
                    s.failures += 1;
                    s.started = true;
                });
                tokio::time::sleep(backoff(&cfg, failures)).await;
            }
        }
    }
}

#[cfg(test)]
#[path = "map_follow_tests.rs"]
mod tests;
