//! The admin listener: metrics, health, and the status page, served on their own small tokio
//! runtime (one reserved thread and two blocking threads), apart from the request runtime, so
//! they answer even when the request runtime is saturated (F8). Everything it serves comes from
//! local state: the metrics recorder, the front-end's map, `/proc` and the on-disk ring.
//!
//! - [`resources`]: usage against OS limits, alarms, the start-up check.
//! - [`ring`]: the on-disk ring of samples behind the sparklines.
//! - [`status`]: `/status` (HTML) and `/status.json`.
//! - [`push`]: the optional, lossy push of metrics to an external sink.
//! - [`client`]: a tiny HTTP/1.1 client for `levee status` and the push.
//! - [`fleet_view`]: `levee status --fleet`, every node of the local map's node table.
//! - [`capacity`]: `levee admin capacity-check`, a planned addition against every node's limits.
//!
//! Routes: `GET /metrics` (Prometheus text), `/health/live`, `/health/ready` (storage recovered
//! and a valid shard map loaded — never "a dependency is reachable"), `/status`, `/status.json`;
//! the map endpoints `GET /map/snapshot`, `GET /map/deltas?after=V&wait_ms=T` (long poll, at
//! most `MAP_LONG_POLLS_MAX` waiting) and `POST /map/approve?version=V`.

pub mod capacity;
pub mod client;
pub mod fleet_view;
pub mod push;
pub mod resources;
pub mod ring;
pub mod status;
pub mod term;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::config::ServeConfig;
use crate::node::Node;
use resources::{Alarm, CpuClock, Resource};
use ring::{Ring, Sample, RING_SLOTS};

/// Connections the admin listener serves at once; more wait in the backlog.
pub const ADMIN_CONNECTIONS_MAX: usize = 64;
/// Blocking threads of the admin runtime: one samples `/proc`, one writes the ring (so a slow
/// disk delays only the ring, whose writes are then skipped).
pub const ADMIN_BLOCKING_THREADS_MAX: usize = 2;
/// How often resources are sampled and alarms evaluated.
pub const RESOURCE_SAMPLE_MS: u64 = 2_000;
/// How long an admin request may take before its connection is dropped.
pub const ADMIN_REQUEST_TIMEOUT_MS: u64 = 10_000;
/// Latency buckets (seconds) of every `_seconds` histogram.
const LATENCY_BUCKETS_S: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
/// Buckets of the group-commit batch size (entries).
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0];

/// Installs the global Prometheus recorder; call once, before anything records.
pub fn install_recorder() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS_S)?
        .set_buckets_for_metric(
            Matcher::Full("levee_storage_group_commit_batch_entries".into()),
            BATCH_BUCKETS,
        )?
        .install_recorder()?;
    Ok(handle)
}

/// The state the admin runtime serves from.
pub struct Shared {
    pub cfg: ServeConfig,
    pub started: Instant,
    pub started_ms: u64,
    pub prom: PrometheusHandle,
    /// Set once storage has recovered and the first map is loaded.
    pub node: OnceLock<Arc<Node>>,
    /// A fleet storage node's or front-end's map and its keeper (no [`Node`] there).
    pub fleet_map: OnceLock<(
        Arc<levee_frontend::backend::MapHolder>,
        Arc<levee_frontend::map_follow::MapKeeper>,
    )>,
    /// The front-end's address, once bound.
    pub api_addr: OnceLock<std::net::SocketAddr>,
    pub admin_addr: std::net::SocketAddr,
    pub resources: Mutex<Vec<Resource>>,
    /// Recent samples (the ring's content), oldest first, at most [`RING_SLOTS`].
    pub samples: Mutex<VecDeque<Sample>>,
    /// The map version last seen and when it was first seen (for its age).
    pub map_seen: Mutex<(u64, u64)>,
    /// Dropped log lines (the non-blocking log writer's counter).
    pub log_drops: Option<tracing_appender::non_blocking::ErrorCounter>,
}

impl Shared {
    pub fn new(
        cfg: ServeConfig,
        prom: PrometheusHandle,
        admin_addr: std::net::SocketAddr,
        log_drops: Option<tracing_appender::non_blocking::ErrorCounter>,
    ) -> Shared {
        Shared {
            cfg,
            started: Instant::now(),
            started_ms: crate::node::now_ms(),
            prom,
            node: OnceLock::new(),
            fleet_map: OnceLock::new(),
            api_addr: OnceLock::new(),
            admin_addr,
            resources: Mutex::new(Vec::new()),
            samples: Mutex::new(VecDeque::new()),
            map_seen: Mutex::new((0, 0)),
            log_drops,
        }
    }

    /// Log lines dropped because stderr was blocked (the lossy writer's own count).
    pub fn publish_log_drops(&self) {
        if let Some(d) = &self.log_drops {
            metrics::counter!("levee_log_dropped_lines_total").absolute(d.dropped_lines() as u64);
        }
    }

    /// The map this process routes or serves by, and its keeper (once started).
    pub fn map_view(
        &self,
    ) -> Option<(
        Arc<levee_frontend::backend::MapHolder>,
        Arc<levee_frontend::map_follow::MapKeeper>,
    )> {
        match self.node.get() {
            Some(n) => Some((n.maps.clone(), n.keeper.clone())),
            None => self.fleet_map.get().cloned(),
        }
    }

    pub fn ready(&self) -> bool {
        self.map_view()
            .is_some_and(|(maps, keeper)| keeper.ready() && maps.current().verify().is_ok())
    }

    /// Why the node is not ready (None when it is).
    pub fn not_ready_reason(&self) -> Option<String> {
        match self.map_view() {
            None => Some("storage recovering".into()),
            Some(_) if self.ready() => None,
            Some((_, keeper)) => Some(
                keeper
                    .status()
                    .not_ready_reason
                    .unwrap_or_else(|| "the live shard map fails its checksum".into()),
            ),
        }
    }

    /// The map's version and the time it was first seen by this process.
    pub fn map_version_seen(&self) -> (u64, u64) {
        let Some((maps, _)) = self.map_view() else {
            return (0, self.started_ms);
        };
        let v = maps.current().version();
        let mut seen = self.map_seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.0 != v || seen.1 == 0 {
            *seen = (v, crate::node::now_ms());
        }
        *seen
    }
}

fn text(status: StatusCode, ctype: &'static str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(ctype),
    );
    r.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    r
}

fn route(shared: &Shared, req: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    if req.method() != hyper::Method::GET && req.method() != hyper::Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "GET only\n");
    }
    match req.uri().path() {
        "/metrics" => {
            shared.publish_log_drops();
            text(
                StatusCode::OK,
                "text/plain; version=0.0.4",
                shared.prom.render(),
            )
        }
        "/health/live" => text(StatusCode::OK, "text/plain", "live\n"),
        "/health/ready" => match shared.not_ready_reason() {
            None => text(StatusCode::OK, "text/plain", "ready\n"),
            Some(why) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("not ready: {why}\n"),
            ),
        },
        "/status.json" => {
            let s = status::collect(shared);
            text(
                StatusCode::OK,
                "application/json",
                serde_json::to_vec_pretty(&s).unwrap_or_default(),
            )
        }
        "/status" | "/" => text(
            StatusCode::OK,
            "text/html; charset=utf-8",
            status::html(&status::collect(shared)),
        ),
        // Browsers ask for one; the page has none to fetch.
        "/favicon.ico" => text(StatusCode::NO_CONTENT, "image/x-icon", ""),
        _ => text(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
    }
}

/// The map endpoints: `GET /map/snapshot` and `GET /map/deltas?after=V&wait_ms=T` (the
/// published map as encoded frames; an empty body means nothing changed within the wait), and
/// `POST /map/approve?version=V` (swap in the map the front-end holds).
async fn map_route(shared: &Shared, req: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let query: std::collections::HashMap<&str, &str> = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let number = |k: &str| query.get(k).and_then(|v| v.parse::<u64>().ok());
    let frames = |body: Bytes, version: u64| {
        let mut r = text(StatusCode::OK, "application/octet-stream", body);
        if let Ok(v) = hyper::header::HeaderValue::from_str(&version.to_string()) {
            r.headers_mut().insert("x-levee-map-version", v);
        }
        r
    };
    let get = req.method() == hyper::Method::GET;
    let path = req.uri().path();
    if path == "/map/approve" && req.method() == hyper::Method::POST {
        let Some((_, keeper)) = shared.map_view() else {
            return text(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "starting\n");
        };
        let Some(version) = number("version") else {
            return text(
                StatusCode::BAD_REQUEST,
                "text/plain",
                "version=VERSION is required\n",
            );
        };
        return match tokio::task::spawn_blocking(move || keeper.approve(version)).await {
            Ok(Ok(v)) => text(
                StatusCode::OK,
                "text/plain",
                format!("approved shard map version {v}: it is live\n"),
            ),
            Ok(Err(why)) => text(StatusCode::CONFLICT, "text/plain", format!("{why}\n")),
            Err(e) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain",
                format!("approval failed: {e}\n"),
            ),
        };
    }
    let Some(node) = shared.node.get().cloned() else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "no map feed here\n",
        );
    };
    match path {
        "/map/snapshot" if get => frames(node.publisher.snapshot(), node.publisher.version()),
        "/map/deltas" if get => {
            let Some(after) = number("after") else {
                return text(
                    StatusCode::BAD_REQUEST,
                    "text/plain",
                    "after=VERSION is required\n",
                );
            };
            let wait = number("wait_ms")
                .unwrap_or(0)
                .min(crate::map_publish::MAP_POLL_WAIT_MS_MAX);
            let body = node
                .publisher
                .poll(after, Duration::from_millis(wait))
                .await;
            frames(body, node.publisher.version())
        }
        "/map/snapshot" | "/map/deltas" | "/map/approve" => text(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "wrong method\n",
        ),
        _ => text(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
    }
}

/// Streams whose shards get their own series: those with enhanced monitoring enabled (any
/// shard-level metric) in the catalog.
pub fn shard_level_metrics(node: Arc<crate::node::Node>) -> levee_frontend::metrics::ShardLevel {
    Arc::new(move |stream: &str| {
        node.catalog.read(|c| {
            c.stream(stream)
                .map(|s| !s.shard_level_metrics.is_empty())
                .unwrap_or(false)
        })
    })
}

/// The configuration's worst case of threads, file descriptors and connections.
pub fn needs(cfg: &ServeConfig) -> resources::Needs {
    // A fleet front-end's storage pool and a control plane's listener hold connections too.
    let fleet_connections = if cfg.roles.embedded() {
        0
    } else {
        let pool = if cfg.roles.frontend {
            cfg.storage_connections_max
        } else {
            0
        };
        let control = if cfg.roles.control {
            cfg.control_connections_max
        } else {
            0
        };
        pool + control
    };
    let connections = (cfg.connections_max + ADMIN_CONNECTIONS_MAX + fleet_connections) as u64;
    resources::Needs {
        threads: (cfg.worker_threads + cfg.blocking_threads + ADMIN_BLOCKING_THREADS_MAX) as u64
            + resources::FIXED_THREADS,
        fds: connections
            + levee_storage::store::StoreConfig::new(std::path::PathBuf::new()).file_handles_max
                as u64
            + cfg.blocking_threads as u64
            + resources::FIXED_FDS,
        connections,
        worker_threads: cfg.worker_threads as u64,
        blocking_threads: cfg.blocking_threads as u64,
        connections_max: cfg.connections_max as u64,
    }
}

/// The start-up check: refuses to start when the worst case exceeds a limit, warns when the
/// headroom is under 2×.
pub fn preflight(cfg: &ServeConfig) -> anyhow::Result<()> {
    let n = needs(cfg);
    metrics::gauge!("levee_startup_needed", "resource" => "threads").set(n.threads as f64);
    metrics::gauge!("levee_startup_needed", "resource" => "fds").set(n.fds as f64);
    metrics::gauge!("levee_startup_needed", "resource" => "connections").set(n.connections as f64);
    match resources::preflight(&n) {
        resources::Verdict::Fine => Ok(()),
        resources::Verdict::Warn(ws) => {
            for w in ws {
                tracing::warn!("start-up check: {w}");
            }
            Ok(())
        }
        resources::Verdict::Refuse(m) => {
            tracing::error!("start-up check: {m}");
            anyhow::bail!("refusing to start: {m}")
        }
    }
}

/// Publishes the limits of bounded resources as gauges (R6: every limit visible).
fn publish_limits(cfg: &ServeConfig) {
    let limits: [(&str, usize); 7] = [
        ("http_connections", cfg.connections_max),
        ("worker_threads", cfg.worker_threads),
        ("blocking_threads", cfg.blocking_threads),
        ("admin_connections", ADMIN_CONNECTIONS_MAX),
        ("admin_blocking_threads", ADMIN_BLOCKING_THREADS_MAX),
        ("push_queue", push::PUSH_QUEUE_MAX),
        ("log_queue_lines", crate::LOG_QUEUE_LINES_MAX),
    ];
    for (name, v) in limits {
        metrics::gauge!("levee_config_limit", "limit" => name).set(v as f64);
    }
    metrics::gauge!("levee_config_limit", "limit" => "recent_errors")
        .set(levee_frontend::metrics::RECENT_ERRORS_MAX as f64);
    metrics::gauge!("levee_config_limit", "limit" => "status_ring_slots").set(RING_SLOTS as f64);
}

/// Binds nothing (the caller bound `listener`); starts the admin runtime on its own thread.
pub fn start(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    listener.set_nonblocking(true)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(ADMIN_BLOCKING_THREADS_MAX)
        .thread_name("levee-admin-io")
        .enable_all()
        .build()?;
    publish_limits(&shared.cfg);
    let handle = std::thread::Builder::new()
        .name("levee-admin".into())
        .spawn(move || {
            rt.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!(error = %e, "admin listener failed");
                        return;
                    }
                };
                tokio::spawn(sampler(shared.clone()));
                if let Some(url) = shared.cfg.metrics_push_url.clone() {
                    tokio::spawn(push::run(shared.clone(), url));
                }
                serve(listener, shared).await;
            })
        })?;
    Ok(handle)
}

pub(crate) async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    let permits = Arc::new(tokio::sync::Semaphore::new(ADMIN_CONNECTIONS_MAX));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let (stream, _) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "admin accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let shared = shared.clone();
                async move {
                    if req.uri().path().starts_with("/map/") {
                        return Ok::<_, Infallible>(map_route(&shared, &req).await);
                    }
                    Ok(route(&shared, &req))
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc);
            let _ =
                tokio::time::timeout(Duration::from_millis(ADMIN_REQUEST_TIMEOUT_MS), conn).await;
            drop(permit);
        });
    }
}

/// Samples resources every [`RESOURCE_SAMPLE_MS`] and the ring every `status_sample_ms`,
/// logging alarm changes; the `/proc` reads and the ring write run on the blocking thread.
async fn sampler(shared: Arc<Shared>) {
    let ring_path = shared.cfg.data_dir.join("status.ring");
    let (ring, old) = match Ring::open(&ring_path) {
        Ok((r, old)) => (Some(Arc::new(r)), old),
        Err(e) => {
            tracing::warn!(error = %e, path = %ring_path.display(), "status ring unavailable");
            (None, Vec::new())
        }
    };
    let mut seq = old.last().map_or(0, |s| s.seq);
    shared
        .samples
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .extend(old);
    let ring_busy = Arc::new(AtomicBool::new(false));
    let mut cpu = CpuClock::default();
    let mut alarms: std::collections::HashMap<&'static str, Alarm> = Default::default();
    let ring_every = Duration::from_millis(shared.cfg.status_sample_ms.max(10));
    let res_every = Duration::from_millis(RESOURCE_SAMPLE_MS.min(shared.cfg.status_sample_ms));
    let mut next_ring = Instant::now();
    loop {
        let data_dir = shared.cfg.data_dir.clone();
        let conns = shared.cfg.connections_max as u64;
        let mut c = cpu;
        let job = tokio::task::spawn_blocking(move || {
            let r = resources::sample(&data_dir, conns, &mut c);
            let storage = resources::storage_usage(&data_dir.join("storage"));
            (r, storage, c)
        });
        if let Ok((res, (bytes, segments), c)) = job.await {
            cpu = c;
            metrics::gauge!("levee_storage_disk_bytes").set(bytes as f64);
            metrics::gauge!("levee_storage_segments").set(segments as f64);
            for r in &res {
                metrics::gauge!("levee_resource_used", "resource" => r.name).set(r.used);
                if let Some(l) = r.limit {
                    metrics::gauge!("levee_resource_limit", "resource" => r.name).set(l);
                }
                metrics::gauge!("levee_resource_alarm_level", "resource" => r.name)
                    .set(r.alarm.level());
                let before = alarms.insert(r.name, r.alarm).unwrap_or(Alarm::Ok);
                if before != r.alarm {
                    let limit = r.limit.unwrap_or(0.0);
                    match r.alarm {
                        Alarm::Critical => tracing::error!(
                            resource = r.name,
                            used = r.used,
                            limit,
                            limit_name = r.limit_name,
                            "resource alarm critical: at or over 80% of its limit"
                        ),
                        Alarm::Warn => tracing::warn!(
                            resource = r.name,
                            used = r.used,
                            limit,
                            limit_name = r.limit_name,
                            "resource alarm warn: at or over 50% of its limit"
                        ),
                        Alarm::Ok => tracing::info!(
                            resource = r.name,
                            used = r.used,
                            limit,
                            "resource alarm cleared"
                        ),
                    }
                }
            }
            shared.publish_log_drops();
            let (v, seen) = shared.map_version_seen();
            metrics::gauge!("levee_shard_map_version").set(v as f64);
            metrics::gauge!("levee_shard_map_age_seconds")
                .set(crate::node::now_ms().saturating_sub(seen) as f64 / 1000.0);
            let threads = res
                .iter()
                .find(|r| r.name == "threads")
                .map_or(0.0, |r| r.used);
            let fds = res.iter().find(|r| r.name == "fds").map_or(0.0, |r| r.used);
            *shared.resources.lock().unwrap_or_else(|p| p.into_inner()) = res;
            shared.prom.run_upkeep();
            if Instant::now() >= next_ring {
                next_ring = Instant::now() + ring_every;
                seq += 1;
                let t = &levee_frontend::metrics::TOTALS;
                let sample = Sample {
                    seq,
                    at_ms: crate::node::now_ms(),
                    values: [
                        t.requests.load(Ordering::Relaxed),
                        t.errors.load(Ordering::Relaxed),
                        t.in_records.load(Ordering::Relaxed),
                        t.in_bytes.load(Ordering::Relaxed),
                        t.out_records.load(Ordering::Relaxed),
                        t.out_bytes.load(Ordering::Relaxed),
                        threads as u64,
                        fds as u64,
                    ],
                };
                {
                    let mut q = shared.samples.lock().unwrap_or_else(|p| p.into_inner());
                    if q.len() >= RING_SLOTS {
                        q.pop_front();
                    }
                    q.push_back(sample);
                }
                write_ring(&ring, &ring_busy, sample);
            }
        }
        let wait = res_every.min(next_ring.saturating_duration_since(Instant::now()));
        tokio::time::sleep(wait.max(Duration::from_millis(10))).await;
    }
}

/// Writes a sample unless the previous write is still running (a slow disk) — then it is
/// skipped and counted, as is a failed write (a full disk).
fn write_ring(ring: &Option<Arc<Ring>>, busy: &Arc<AtomicBool>, sample: Sample) {
    let Some(ring) = ring.clone() else {
        return;
    };
    if busy.swap(true, Ordering::AcqRel) {
        metrics::counter!("levee_status_ring_writes_skipped_total", "reason" => "busy")
            .increment(1);
        return;
    }
    let busy = busy.clone();
    drop(tokio::task::spawn_blocking(move || {
        if let Err(e) = ring.write(&sample) {
            metrics::counter!("levee_status_ring_writes_skipped_total", "reason" => "error")
                .increment(1);
            tracing::debug!(error = %e, "status ring write skipped");
        } else {
            metrics::counter!("levee_status_ring_writes_total").increment(1);
        }
        busy.store(false, Ordering::Release);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_write_is_skipped_and_counted_while_the_previous_one_is_still_running() {
        let dir = tempfile::tempdir().unwrap();
        let (ring, _) = Ring::open(&dir.path().join("ring")).unwrap();
        let ring = Some(Arc::new(ring));
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        // A write in flight (a slow disk): the next one is skipped, not queued.
        let busy = Arc::new(AtomicBool::new(true));
        let sample = Sample {
            seq: 1,
            at_ms: 1,
            values: [1; ring::VALUES],
        };
        metrics::with_local_recorder(&recorder, || {
            let _guard = rt.enter();
            write_ring(&ring, &busy, sample);
            write_ring(&ring, &busy, sample);
        });
        let text = handle.render();
        assert!(
            text.contains("levee_status_ring_writes_skipped_total{reason=\"busy\"} 2"),
            "{text}"
        );
        drop(rt);
        let (_, got) = Ring::open(&dir.path().join("ring")).unwrap();
        assert!(got.is_empty(), "nothing was written while busy");
        // Once the previous write is done, the next one goes to disk.
        busy.store(false, Ordering::Release);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            write_ring(&ring, &busy, sample);
            while busy.load(Ordering::Acquire) {
                tokio::task::yield_now().await;
            }
        });
        let (_, got) = Ring::open(&dir.path().join("ring")).unwrap();
        assert_eq!(got, vec![sample]);
    }
}
