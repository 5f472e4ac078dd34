//! Request latency through a fleet front-end while a storage node and a front-end join (issue 11).
//! Run by hand, release build:
//!
//! ```sh
//! cargo build --release -p levee -p levee-bench
//! target/release/fleet_grow --levee target/release/levee
//! ```
//!
//! It starts a control plane, `--storage` storage nodes and `--frontends` front-ends
//! (`levee serve --role ...`, own data directories, loopback) and a stream of 4 shards. PutRecord
//! (concurrency 1, 100-byte records) through the first front-end is timed for `--requests` calls
//! (the baseline), then timed again while another thread adds one storage node and one front-end
//! (real processes: start, register), waits until every front-end routes by the map naming both,
//! creates a one-shard stream through the new front-end (placed on the new storage node, the least
//! loaded), waits until every front-end has that map and writes to it through the new front-end.
//! The second phase lasts exactly as long as that (at least `--min-requests` calls). It prints
//! p50/p99/p999 of both phases and checks the target: p99 within max(2 × baseline, baseline +
//! 5 ms). It also prints how long the maps took to reach every front-end and each existing
//! process's threads and fds before and after.

#[path = "../client.rs"]
#[allow(dead_code)]
mod client;
#[path = "../procs.rs"]
mod procs;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::Parser;
use hdrhistogram::Histogram;
use levee_rpc::control::{RemoteControl, RetryPolicy};
use levee_rpc::{Pool, PoolConfig};
use procs::{base64_100, live_version, ms, Proc};

#[derive(Parser)]
struct Cli {
    /// The levee binary (a release build).
    #[arg(long, default_value = "target/release/levee")]
    levee: PathBuf,
    /// Storage nodes before the addition.
    #[arg(long, default_value_t = 3)]
    storage: usize,
    /// Front-ends before the addition.
    #[arg(long, default_value_t = 3)]
    frontends: usize,
    /// PutRecord calls timed in the baseline phase.
    #[arg(long, default_value_t = 3_000)]
    requests: usize,
    /// The fewest calls timed while adding (the phase goes on after the addition until then).
    #[arg(long, default_value_t = 1_000)]
    min_requests: usize,
}

/// How to start the fleet's processes.
struct Spawner {
    levee: PathBuf,
    dir: PathBuf,
    key: String,
    control: String,
}

impl Spawner {
    fn storage(&self, n: usize) -> Result<Proc> {
        let data = self.dir.join(format!("storage-{n}"));
        let listen = format!("127.0.0.{}:0", 10 + n);
        let args = [
            "--role",
            "storage",
            "--control",
            &self.control,
            "--storage-listen",
            &listen,
            "--admin-listen",
            &listen,
            "--data-dir",
            data.to_str().context("path")?,
            "--master-key-file",
            &self.key,
            "--stream-transition-ms",
            "100",
        ];
        Proc::start(&self.levee, &args, "registered as storage node")
    }

    fn frontend(&self, n: usize) -> Result<Proc> {
        let data = self.dir.join(format!("frontend-{n}"));
        let listen = format!("127.0.0.{}:0", 20 + n);
        let args = [
            "--role",
            "frontend",
            "--control",
            &self.control,
            "--listen",
            &listen,
            "--admin-listen",
            &listen,
            "--data-dir",
            data.to_str().context("path")?,
            "--master-key-file",
            &self.key,
            "--stream-transition-ms",
            "100",
            "--auth",
            "insecure",
        ];
        Proc::start(&self.levee, &args, "registered as front-end")
    }
}

fn kinesis(api: &str) -> Result<client::Kinesis> {
    client::Kinesis::new(
        &client::Endpoint {
            url: format!("http://{api}"),
            region: "us-east-1".into(),
            access_key: "AKIDLEVEEBENCH".into(),
            secret_key: "levee-bench-secret-key".into(),
        },
        4,
    )
}

async fn put(k: &client::Kinesis, stream: &str, i: usize) -> Result<()> {
    let body = Bytes::from(format!(
        r#"{{"StreamName":"{stream}","PartitionKey":"k{i}","Data":"{}"}}"#,
        base64_100()
    ));
    let r = k.call("PutRecord", body, None).await?;
    if !r.is_ok() {
        bail!("PutRecord to {stream} failed: {}", r.error_type());
    }
    Ok(())
}

fn histogram() -> Result<Histogram<u64>> {
    Ok(Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?)
}

/// Threads and open fds of process `pid`, from /proc.
fn threads_fds(pid: u32) -> (usize, usize) {
    let count = |p: String| std::fs::read_dir(p).map_or(0, |d| d.count());
    (
        count(format!("/proc/{pid}/task")),
        count(format!("/proc/{pid}/fd")),
    )
}

/// Polls the published map until `ok` holds; returns its version.
async fn until_published(
    control: &RemoteControl,
    what: &str,
    ok: impl Fn(&levee_map::ShardMap) -> bool,
) -> Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let map = levee_map::codec::decode_map(&control.map_snapshot().await?)?;
        if ok(&map) {
            return Ok(map.version());
        }
        if Instant::now() > deadline {
            bail!("{what}: never published");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until every admin address routes by `version`; how long after `since`.
async fn every_frontend_has(admins: &[String], version: u64, since: Instant) -> Result<Duration> {
    for admin in admins {
        while live_version(admin)? < version {
            if since.elapsed() > Duration::from_secs(30) {
                bail!("{admin} never got map {version}");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    Ok(since.elapsed())
}

/// What adding the nodes showed.
struct Added {
    storage: Proc,
    frontend: Proc,
    /// Registration → every front-end routes by the map naming the node.
    storage_map: Duration,
    frontend_map: Duration,
    /// ACTIVE → every front-end routes by the map with the new stream.
    stream_map: Duration,
    total: Duration,
}

/// Adds storage node `n_storage` and front-end `n_frontend`, creates a stream on the new storage
/// node through the new front-end and writes to it. Runs on its own thread and runtime, as a
/// second machine's operator would.
fn add_nodes(
    spawner: Arc<Spawner>,
    mut admins: Vec<String>,
    n_storage: usize,
    n_frontend: usize,
) -> Result<Added> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let started = Instant::now();
        let control = RemoteControl::new(
            Pool::new(PoolConfig::default()),
            vec![spawner.control.parse()?],
            RetryPolicy::default(),
        );
        let sp = spawner.clone();
        let storage = tokio::task::spawn_blocking(move || sp.storage(n_storage)).await??;
        let registered = Instant::now();
        let storage_addr = storage.addr("storage listening on");
        let v = until_published(&control, "the new storage node", |m| {
            m.nodes().values().any(|n| n.address == storage_addr)
        })
        .await?;
        let storage_map = every_frontend_has(&admins, v, registered).await?;

        let sp = spawner.clone();
        let frontend = tokio::task::spawn_blocking(move || sp.frontend(n_frontend)).await??;
        let registered = Instant::now();
        admins.push(frontend.addr("admin listening on"));
        let frontends = n_frontend;
        let v = until_published(&control, "the new front-end", |m| {
            m.nodes()
                .values()
                .filter(|n| n.role == levee_map::NodeRole::Frontend)
                .count()
                == frontends
        })
        .await?;
        let frontend_map = every_frontend_has(&admins, v, registered).await?;

        let k = kinesis(&frontend.addr("levee listening on"))?;
        k.create_stream("grown", 1).await?;
        let active = Instant::now();
        let v = until_published(&control, "the new stream", |m| {
            m.stream("grown").is_some_and(|s| {
                s.state == levee_map::StreamState::Active
                    && s.shards.iter().all(|sh| {
                        m.nodes().get(&sh.node).map(|n| n.address.as_str())
                            == Some(storage.addr("storage listening on").as_str())
                    })
            })
        })
        .await?;
        let stream_map = every_frontend_has(&admins, v, active).await?;
        for i in 0..100 {
            put(&k, "grown", i).await?;
        }
        Ok(Added {
            storage,
            frontend,
            storage_map,
            frontend_map,
            stream_map,
            total: started.elapsed(),
        })
    })
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
    let dir = std::env::temp_dir().join(format!("levee-fleet-grow-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let key = dir.join("master.key").to_string_lossy().into_owned();
    let cdir = dir.join("control").to_string_lossy().into_owned();
    let control = Proc::start(
        &cli.levee,
        &[
            "--role",
            "control",
            "--control-listen",
            "127.0.0.2:0",
            "--admin-listen",
            "127.0.0.2:0",
            "--data-dir",
            &cdir,
            "--master-key-file",
            &key,
            "--stream-transition-ms",
            "100",
        ],
        "control listening on",
    )?;
    let spawner = Arc::new(Spawner {
        levee: cli.levee.clone(),
        dir: dir.clone(),
        key,
        control: control.addr("control listening on"),
    });
    let mut procs = vec![("control".to_string(), control.pid())];
    let mut storage = Vec::new();
    for n in 1..=cli.storage {
        let p = spawner.storage(n)?;
        procs.push((format!("storage-{n}"), p.pid()));
        storage.push(p);
    }
    let mut frontends = Vec::new();
    for n in 1..=cli.frontends {
        let p = spawner.frontend(n)?;
        procs.push((format!("frontend-{n}"), p.pid()));
        frontends.push(p);
    }
    let admins: Vec<String> = frontends
        .iter()
        .map(|p| p.addr("admin listening on"))
        .collect();
    let k = kinesis(&frontends[0].addr("levee listening on"))?;
    k.create_stream("bench", 4).await?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while put(&k, "bench", 0).await.is_err() {
        if Instant::now() > deadline {
            bail!("the front-end never routed the stream");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    for i in 0..300 {
        put(&k, "bench", i).await?; // warm up
    }
    let before: Vec<(usize, usize)> = procs.iter().map(|(_, pid)| threads_fds(*pid)).collect();
    let mut baseline = histogram()?;
    for i in 0..cli.requests {
        let t = Instant::now();
        put(&k, "bench", i).await?;
        baseline.record(t.elapsed().as_micros().max(1) as u64)?;
    }

    let sp = spawner.clone();
    let (ns, nf) = (cli.storage + 1, cli.frontends + 1);
    let adder = std::thread::spawn(move || add_nodes(sp, admins, ns, nf));
    let mut during = histogram()?;
    let mut i = 0;
    while !adder.is_finished() || i < cli.min_requests {
        let t = Instant::now();
        put(&k, "bench", i).await?;
        during.record(t.elapsed().as_micros().max(1) as u64)?;
        i += 1;
    }
    let added = adder.join().expect("adder thread")?;
    let after: Vec<(usize, usize)> = procs.iter().map(|(_, pid)| threads_fds(*pid)).collect();

    let b99 = baseline.value_at_quantile(0.99);
    let d99 = during.value_at_quantile(0.99);
    let bound = (2 * b99).max(b99 + 5_000);
    println!(
        "fleet: 1 control plane, {} storage nodes, {} front-ends; adding storage node {} and front-end {}",
        cli.storage, cli.frontends, ns, nf
    );
    println!("PutRecord through front-end 1, concurrency 1, 100 B:");
    println!(
        "  baseline       {:>6} calls  p50 {:.3} ms  p99 {:.3} ms  p999 {:.3} ms",
        baseline.len(),
        ms(baseline.value_at_quantile(0.5)),
        ms(b99),
        ms(baseline.value_at_quantile(0.999))
    );
    println!(
        "  while adding   {:>6} calls  p50 {:.3} ms  p99 {:.3} ms  p999 {:.3} ms  (adding took {:.2} s)",
        during.len(),
        ms(during.value_at_quantile(0.5)),
        ms(d99),
        ms(during.value_at_quantile(0.999)),
        added.total.as_secs_f64()
    );
    println!(
        "  target: p99 <= max(2 x baseline, baseline + 5 ms) = {:.3} ms: {}",
        ms(bound),
        if d99 <= bound { "met" } else { "NOT met" }
    );
    println!(
        "maps on every front-end: new storage node {:.0} ms after it registered, new front-end {:.0} ms, new stream {:.0} ms after ACTIVE (target 5 s)",
        added.storage_map.as_secs_f64() * 1e3,
        added.frontend_map.as_secs_f64() * 1e3,
        added.stream_map.as_secs_f64() * 1e3
    );
    println!("existing processes, threads and fds before -> after:");
    for ((name, _), (b, a)) in procs.iter().zip(before.iter().zip(&after)) {
        println!(
            "  {name:11} threads {:>3} -> {:<3} fds {:>4} -> {:<4}",
            b.0, a.0, b.1, a.1
        );
    }
    drop(added.frontend);
    drop(added.storage);
    drop(frontends);
    drop(storage);
    drop(control);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
