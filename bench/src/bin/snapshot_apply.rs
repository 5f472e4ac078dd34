//! Request latency through a fleet front-end while it applies 100,000-shard map snapshots
//! (issue 10). Run by hand, release build:
//!
//! ```sh
//! cargo build --release -p levee -p levee-bench
//! target/release/snapshot_apply --levee target/release/levee
//! ```
//!
//! It starts a control plane, a storage node and a front-end (`levee serve --role ...`) on
//! loopback, with the front-end following this program's relay instead of the control plane.
//! The relay passes everything through until told to inject: then it answers every map poll at
//! once with a new snapshot (version + 1 each time) holding the real streams plus a stream of
//! `--shards` shards, so the front-end decodes, validates, persists and swaps a 100,000-shard map
//! back to back. PutRecord (concurrency 1, 100-byte records) is timed before (baseline) and
//! during, and the target — p99 within max(2 × baseline, baseline + 5 ms) — is checked.

#[path = "../client.rs"]
#[allow(dead_code)]
mod client;
#[path = "../procs.rs"]
#[allow(dead_code)] // `Proc::pid` is fleet_grow's
mod procs;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::Parser;
use hdrhistogram::Histogram;
use levee_frontend::backend::{BoxFuture, ConsumerInfo};
use levee_map::{GroupId, NodeId, ShardId, ShardMap, ShardRoute, StreamRoute, StreamState};
use levee_protocol::ApiError;
use levee_rpc::control::{
    ControlCall, ControlHandler, ControlServer, ControlServerConfig, MapFeed, Registration,
    RemoteControl, RetryPolicy,
};
use levee_rpc::{Pool, PoolConfig};
use procs::{base64_100, live_version, ms, status_json, Proc};

#[derive(Parser)]
struct Cli {
    /// The levee binary (a release build).
    #[arg(long, default_value = "target/release/levee")]
    levee: PathBuf,
    /// Shards in the injected stream.
    #[arg(long, default_value_t = 100_000)]
    shards: u32,
    /// PutRecord calls timed in each phase.
    #[arg(long, default_value_t = 3_000)]
    requests: usize,
    /// Snapshots prepared for the front-end to apply back to back.
    #[arg(long, default_value_t = 40)]
    maps: usize,
    /// Serve a new snapshot at most this often (0: back to back, each poll answered at once).
    #[arg(long, default_value_t = 0)]
    interval_ms: u64,
    /// Put the front-end's data directory (where it persists each map) here, e.g. on another
    /// disk or /dev/shm, to separate its map writes from the storage node's fsyncs (they share
    /// a disk only because this benchmark runs the fleet on one machine).
    #[arg(long)]
    frontend_dir: Option<PathBuf>,
}

struct Relay {
    remote: Arc<RemoteControl>,
    inject: AtomicBool,
    /// The real map the injected ones extend, and the next version to inject.
    base: Mutex<Option<ShardMap>>,
    next_version: AtomicU64,
    shards: u32,
    injected: AtomicU64,
    /// Snapshots built before timing, served in version order (building them while timing
    /// would take this process's CPU from the front-end on a small machine).
    prebuilt: Mutex<std::collections::VecDeque<Bytes>>,
    interval: Duration,
    last_served: Mutex<Option<Instant>>,
    /// The newest map version the control plane named in an answer.
    published: AtomicU64,
    self_ref: Mutex<std::sync::Weak<Relay>>,
}

impl Relay {
    fn big_snapshot(&self) -> Bytes {
        let base = self.base.lock().expect("lock").clone().expect("base map");
        let version = self.next_version.fetch_add(1, Ordering::SeqCst);
        let node = base
            .streams()
            .flat_map(|s| s.shards.iter())
            .map(|s| s.node)
            .next()
            .unwrap_or(NodeId(1));
        let ranges = levee_map::even_split(self.shards);
        let big = StreamRoute {
            name: "snapshot-bench-big".into(),
            uid: u64::MAX / 2,
            state: StreamState::Active,
            shards: ranges
                .into_iter()
                .enumerate()
                .map(|(i, hash_range)| ShardRoute {
                    shard_id: ShardId(i as u32),
                    uid: u64::MAX / 2 + 1 + i as u64,
                    hash_range,
                    open: true,
                    group: GroupId(node.0),
                    node,
                    epoch: 1,
                    parent: None,
                    adjacent_parent: None,
                    created_ms: 1_700_000_000_000,
                    closed_ms: None,
                })
                .collect(),
            policies: Default::default(),
            facts: Default::default(),
        };
        let mut streams: Vec<StreamRoute> = base.streams().map(|s| (**s).clone()).collect();
        streams.push(big);
        let map = ShardMap::build_with_nodes(version, streams, base.nodes().clone())
            .expect("a valid map");
        Bytes::from(levee_map::codec::encode_map(&map))
    }
}

impl Relay {
    /// The next prebuilt snapshot; none left: "no change" after a short wait.
    async fn next_prebuilt(&self) -> Bytes {
        let wait = self
            .last_served
            .lock()
            .expect("lock")
            .map_or(Duration::ZERO, |t| {
                self.interval.saturating_sub(t.elapsed())
            });
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        *self.last_served.lock().expect("lock") = Some(Instant::now());
        let next = self.prebuilt.lock().expect("lock").pop_front();
        match next {
            Some(b) => {
                self.injected.fetch_add(1, Ordering::SeqCst);
                b
            }
            None => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Bytes::new()
            }
        }
    }
}

impl ControlHandler for Relay {
    fn call(&self, call: ControlCall) -> BoxFuture<Result<Vec<u8>, ApiError>> {
        let remote = self.remote.clone();
        let relay = self.self_ref.lock().expect("lock").clone();
        Box::pin(async move {
            let (answer, version) = remote.call_versioned(&call).await;
            if let Some(relay) = relay.upgrade() {
                relay.published.fetch_max(version, Ordering::SeqCst);
            }
            answer
        })
    }
    /// Passed on, so the front-end waits for its map as it would behind a real control plane.
    fn map_version(&self) -> u64 {
        self.published.load(Ordering::SeqCst)
    }
    fn consumer(&self, arn: String) -> BoxFuture<Result<ConsumerInfo, ApiError>> {
        let remote = self.remote.clone();
        Box::pin(async move { remote.consumer(&arn).await })
    }
    fn register(&self, node: Registration) -> BoxFuture<Result<(), ApiError>> {
        let remote = self.remote.clone();
        Box::pin(async move { remote.register(&node).await })
    }
}

struct Feed(Arc<Relay>);

impl MapFeed for Feed {
    fn snapshot(&self) -> BoxFuture<Bytes> {
        let relay = self.0.clone();
        Box::pin(async move {
            if relay.inject.load(Ordering::SeqCst) {
                return relay.next_prebuilt().await;
            }
            relay.remote.map_snapshot().await.unwrap_or_default()
        })
    }
    fn deltas(&self, after: u64, wait: Duration) -> BoxFuture<Bytes> {
        let relay = self.0.clone();
        Box::pin(async move {
            if relay.inject.load(Ordering::SeqCst) {
                return relay.next_prebuilt().await;
            }
            relay
                .remote
                .map_deltas(after, wait)
                .await
                .unwrap_or_default()
        })
    }
}

async fn timed_puts(k: &client::Kinesis, n: usize) -> Result<Histogram<u64>> {
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let data = base64_100();
    for i in 0..n {
        let body = Bytes::from(format!(
            r#"{{"StreamName":"bench","PartitionKey":"k{i}","Data":"{data}"}}"#
        ));
        let t = Instant::now();
        let r = k.call("PutRecord", body, None).await?;
        if !r.is_ok() {
            bail!("PutRecord failed: {}", r.error_type());
        }
        h.record(t.elapsed().as_micros().max(1) as u64)?;
    }
    Ok(h)
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(cli))
}

async fn run(cli: Cli) -> Result<()> {
    let dir = tempfile_dir()?;
    let key = dir.join("master.key");
    let key = key.to_str().context("path")?;
    let d = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let common = ["--master-key-file", key, "--stream-transition-ms", "100"];
    let mut args = vec![
        "--role",
        "control",
        "--control-listen",
        "127.0.0.2:0",
        "--admin-listen",
        "127.0.0.2:0",
    ];
    let cdir = d("control");
    args.extend(["--data-dir", &cdir]);
    args.extend(common);
    let control = Proc::start(&cli.levee, &args, "control listening on")?;
    let control_addr = control.addr("control listening on");
    let sdir = d("storage");
    let mut args = vec![
        "--role",
        "storage",
        "--control",
        &control_addr,
        "--storage-listen",
        "127.0.0.11:0",
        "--admin-listen",
        "127.0.0.11:0",
        "--data-dir",
        &sdir,
    ];
    args.extend(common);
    let _storage = Proc::start(&cli.levee, &args, "registered as storage node")?;

    let remote = Arc::new(RemoteControl::new(
        Pool::new(PoolConfig::default()),
        vec![control_addr.parse()?],
        RetryPolicy::default(),
    ));
    let relay = Arc::new(Relay {
        remote,
        inject: AtomicBool::new(false),
        base: Mutex::new(None),
        next_version: AtomicU64::new(0),
        shards: cli.shards,
        injected: AtomicU64::new(0),
        prebuilt: Mutex::new(Default::default()),
        interval: Duration::from_millis(cli.interval_ms),
        last_served: Mutex::new(None),
        published: AtomicU64::new(0),
        self_ref: Mutex::new(std::sync::Weak::new()),
    });
    *relay.self_ref.lock().expect("lock") = Arc::downgrade(&relay);
    let std_listener = std::net::TcpListener::bind("127.0.0.3:0")?;
    std_listener.set_nonblocking(true)?;
    let relay_addr = std_listener.local_addr()?.to_string();
    let server = ControlServer::with_maps(
        relay.clone(),
        Some(Arc::new(Feed(relay.clone()))),
        ControlServerConfig::default(),
    );
    // The relay stands in for a control plane on another machine: it runs on its own thread at
    // a lower CPU priority, so sending 10 MB maps does not take this process's timed client's
    // (or the front-end's) CPU on a two-core machine.
    std::thread::Builder::new()
        .name("relay".into())
        .spawn(move || {
            // SAFETY: setpriority on this thread's own id.
            unsafe {
                libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10);
            }
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("relay runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).expect("listener");
                server.serve(listener, std::future::pending()).await
            })
        })?;
    let fdir = match &cli.frontend_dir {
        Some(base) => base
            .join(format!(
                "levee-snapshot-bench-frontend-{}",
                std::process::id()
            ))
            .to_string_lossy()
            .into_owned(),
        None => d("frontend"),
    };
    let mut args = vec![
        "--role",
        "frontend",
        "--control",
        &relay_addr,
        "--listen",
        "127.0.0.21:0",
        "--admin-listen",
        "127.0.0.21:0",
        "--data-dir",
        &fdir,
        "--auth",
        "insecure",
    ];
    args.extend(common);
    let frontend = Proc::start(&cli.levee, &args, "registered as front-end")?;
    let api = frontend.addr("levee listening on");
    let k = client::Kinesis::new(
        &client::Endpoint {
            url: format!("http://{api}"),
            region: "us-east-1".into(),
            access_key: "AKIDLEVEEBENCH".into(),
            secret_key: "levee-bench-secret-key".into(),
        },
        4,
    )?;
    k.create_stream("bench", 4).await?;
    // Wait until the front-end routes the stream.
    let deadline = Instant::now() + Duration::from_secs(20);
    while timed_puts(&k, 1).await.is_err() {
        if Instant::now() > deadline {
            bail!("the front-end never routed the stream");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let snapshot = relay.remote.map_snapshot().await?;
    let base = levee_map::codec::decode_map(&snapshot)?;
    let first_big = base.version() + 1;
    relay.next_version.store(first_big, Ordering::SeqCst);
    *relay.base.lock().expect("lock") = Some(base);
    let t = Instant::now();
    let mut bytes = 0;
    for _ in 0..cli.maps {
        let one = relay.big_snapshot();
        bytes = one.len();
        relay.prebuilt.lock().expect("lock").push_back(one);
    }
    println!(
        "{} snapshots of {} shards, {:.1} MB each, built and encoded in {:.1} s here",
        cli.maps,
        cli.shards,
        bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    timed_puts(&k, 200).await?; // warm up
    let baseline = timed_puts(&k, cli.requests).await?;
    relay.injected.store(0, Ordering::SeqCst);
    relay.inject.store(true, Ordering::SeqCst);
    // Let the first big map go in before timing.
    let admin = frontend.addr("admin listening on");
    let target = first_big;
    let deadline = Instant::now() + Duration::from_secs(60);
    while live_version(&admin).unwrap_or(0) < target {
        if Instant::now() > deadline {
            bail!(
                "the front-end never took a big map: {}",
                status_json(&admin)
                    .map(|v| v["shard_map"].to_string())
                    .unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = live_version(&admin)?;
    let started = Instant::now();
    let during = timed_puts(&k, cli.requests).await?;
    let applied = live_version(&admin)? - before;
    if relay.prebuilt.lock().expect("lock").is_empty() {
        println!("  (all prepared maps were applied before timing ended: raise --maps)");
    }
    let secs = started.elapsed().as_secs_f64();
    relay.inject.store(false, Ordering::SeqCst);

    let b99 = baseline.value_at_quantile(0.99);
    let d99 = during.value_at_quantile(0.99);
    let bound = (2 * b99).max(b99 + 5_000);
    println!(
        "PutRecord, concurrency 1, {} calls per phase:",
        cli.requests
    );
    println!(
        "  baseline            p50 {:.3} ms  p99 {:.3} ms  p999 {:.3} ms",
        ms(baseline.value_at_quantile(0.5)),
        ms(b99),
        ms(baseline.value_at_quantile(0.999))
    );
    println!(
        "  applying snapshots  p50 {:.3} ms  p99 {:.3} ms  p999 {:.3} ms  ({applied} maps of {} shards swapped in {secs:.1} s)",
        ms(during.value_at_quantile(0.5)),
        ms(d99),
        ms(during.value_at_quantile(0.999)),
        cli.shards
    );
    println!(
        "  target: p99 <= max(2 x baseline, baseline + 5 ms) = {:.3} ms: {}",
        ms(bound),
        if d99 <= bound { "met" } else { "NOT met" }
    );
    if applied == 0 {
        bail!("no snapshot was applied while timing");
    }
    let _ = std::fs::remove_dir_all(&dir);
    if cli.frontend_dir.is_some() {
        let _ = std::fs::remove_dir_all(&fdir);
    }
    Ok(())
}

fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("levee-snapshot-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
