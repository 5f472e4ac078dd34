//! Adding capacity under load (issue 11): a fleet of one control plane, three storage nodes and
//! three front-ends (`levee serve --role ...`) carries steady client load — PutRecord,
//! PutRecords and GetRecords through the AWS SDK for Rust against every front-end, two calls in
//! flight each, SDK retries off so every failure shows — while a fourth storage node and a fourth
//! front-end join. A stream created afterwards is placed on the new storage node (least loaded
//! first). The client load stays the same size throughout (six workers, one call each in
//! flight): two workers move to the new front-end, and every other PutRecord goes to the new
//! stream, so what is compared is the cost of the bigger fleet, not of more load.
//!
//! Checked:
//! - every front-end, the new one included, has the map naming the new storage node within 5 s
//!   of that node registering, the map naming the new front-end within 5 s of it registering,
//!   and the new stream's map within 5 s of the stream turning ACTIVE;
//! - every existing process's threads are not more than before (the highest count sampled from
//!   `/proc/<pid>/task` every 20 ms over a window before and after; "not more" rather than
//!   "equal" because an idle blocking-pool thread may exit in between, which is not growth — the
//!   storage nodes' blocking pools, capped at 16, size themselves to the concurrent reads);
//! - every existing process's fds (the median over each window, so a file open only while it
//!   is written does not count) are not more than before, except sockets whose other end is
//!   one of the two new processes (found through `/proc/net/tcp`): those are the connections the
//!   new nodes need — a front-end's pooled connection to the new storage node it now sends to, the
//!   new front-end's connections to the storage nodes it sends to, and the new nodes' connections
//!   to the control plane (registration and map long poll). Those are counted apart and bounded
//!   per role (`NEW_PEER_SOCKETS_CONTROL_MAX`, `NEW_PEER_SOCKETS_NODE_MAX`);
//! - no request fails; the new front-end served traffic, and every record acknowledged on the new
//!   stream (which lives only on the new storage node) is read back.

mod common;

use common::fleet::*;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType};
use aws_smithy_types::Blob;
use levee_rpc::control::{RemoteControl, RetryPolicy};
use levee_rpc::{Pool, PoolConfig};

/// Calls in flight per front-end (one SDK client each, so at most this many connections).
const WORKERS_PER_FRONTEND: usize = 2;
/// Each worker's pace: one round (PutRecord, PutRecords, GetRecords) per tick at most, so the
/// load is steady and leaves the two cores room for the fleet's own work.
const ROUND_MS: u64 = 15;
/// The bound on map propagation.
const MAP_DEADLINE: Duration = Duration::from_secs(5);
/// Sockets an existing process may hold with the two new processes, by role. The control plane:
/// two per new node (its control-call pool and its map pool each hold one multiplexed
/// connection). A storage node: the new front-end's one pooled connection. A front-end: its one
/// pooled connection to the new storage node (the storage pool multiplexes calls on one
/// connection per endpoint).
const NEW_PEER_SOCKETS_CONTROL_MAX: usize = 4;
const NEW_PEER_SOCKETS_NODE_MAX: usize = 1;
/// How long the sampling windows last: before the addition longer, so the baseline sees the
/// storage nodes' blocking pools at the size this load makes them.
const BASELINE_WINDOW: Duration = Duration::from_millis(2_500);
const AFTER_WINDOW: Duration = Duration::from_millis(1_500);

// ---------------------------------------------------------------------------------------------
// Watching processes from outside.

/// One reading of a process.
#[derive(Debug, Clone, Copy, Default)]
struct Reading {
    threads: usize,
    fds: usize,
    /// Of `fds`, TCP sockets whose other end belongs to one of the new processes.
    to_new: usize,
}

/// `(local, remote)` of every IPv4 TCP socket, by inode.
fn tcp_sockets() -> HashMap<u64, (String, String)> {
    let mut out = HashMap::new();
    if let Ok(text) = std::fs::read_to_string("/proc/net/tcp") {
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if let (Some(l), Some(r), Some(inode)) = (f.get(1), f.get(2), f.get(9)) {
                if let Ok(inode) = inode.parse() {
                    out.insert(inode, (l.to_string(), r.to_string()));
                }
            }
        }
    }
    out
}

fn socket_inodes(pid: u32) -> (usize, Vec<u64>) {
    let mut all = 0;
    let mut sockets = Vec::new();
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in dir.flatten() {
            all += 1;
            let target = std::fs::read_link(e.path()).unwrap_or_default();
            if let Some(inode) = target
                .to_string_lossy()
                .strip_prefix("socket:[")
                .and_then(|s| s.strip_suffix(']'))
                .and_then(|s| s.parse::<u64>().ok())
            {
                sockets.push(inode);
            }
        }
    }
    (all, sockets)
}

fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count())
}

/// Reads every process of `watched`, attributing sockets to the processes of `new`.
fn read_all_procs(watched: &[u32], new: &[u32]) -> Vec<Reading> {
    let tcp = tcp_sockets();
    // The (local, remote) pairs of the new processes' sockets, seen from the other end.
    let mut new_ends: HashSet<(String, String)> = HashSet::new();
    for &pid in new {
        for inode in socket_inodes(pid).1 {
            if let Some((l, r)) = tcp.get(&inode) {
                new_ends.insert((r.clone(), l.clone()));
            }
        }
    }
    watched
        .iter()
        .map(|&pid| {
            let (fds, sockets) = socket_inodes(pid);
            let to_new = sockets
                .iter()
                .filter(|i| tcp.get(i).is_some_and(|pair| new_ends.contains(pair)))
                .count();
            Reading {
                threads: threads(pid),
                fds,
                to_new,
            }
        })
        .collect()
}

/// Samples every 20 ms for `window`; per process, the highest thread count, the median of fds
/// apart from sockets with the new processes (the fds it holds: a file opened and closed while
/// writing, or a status request in flight, does not count) and the highest count of sockets with
/// the new processes.
async fn sample(watched: Vec<u32>, new: Vec<u32>, window: Duration) -> Vec<Reading> {
    tokio::task::spawn_blocking(move || {
        let mut series = vec![Vec::new(); watched.len()];
        let end = Instant::now() + window;
        while Instant::now() < end {
            for (s, r) in series.iter_mut().zip(read_all_procs(&watched, &new)) {
                s.push(r);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        series
            .into_iter()
            .map(|s| {
                // Sockets with the new processes are counted apart, in the same reading.
                let mut held: Vec<usize> = s.iter().map(|r| r.fds - r.to_new).collect();
                held.sort_unstable();
                Reading {
                    threads: s.iter().map(|r| r.threads).max().unwrap_or(0),
                    fds: held[held.len() / 2],
                    to_new: s.iter().map(|r| r.to_new).max().unwrap_or(0),
                }
            })
            .collect()
    })
    .await
    .expect("sampler")
}

// ---------------------------------------------------------------------------------------------
// The load.

#[derive(Default)]
struct Tally {
    /// Successful calls per front-end index.
    calls: Mutex<HashMap<usize, usize>>,
    /// Records acknowledged on the new stream.
    grown_records: AtomicUsize,
    errors: Mutex<Vec<String>>,
}

impl Tally {
    fn ok(&self, fe: usize) {
        *self.calls.lock().unwrap().entry(fe).or_default() += 1;
    }
    fn err(&self, what: String) {
        self.errors.lock().unwrap().push(what);
    }
    fn calls(&self, fe: usize) -> usize {
        self.calls.lock().unwrap().get(&fe).copied().unwrap_or(0)
    }
}

/// An SDK client for front-end `api` with retries off: every failure reaches the test.
fn strict_client(api: &str, key: &(String, String)) -> aws_sdk_kinesis::Client {
    let cfg = aws_sdk_kinesis::Config::builder()
        .behavior_version(aws_sdk_kinesis::config::BehaviorVersion::latest())
        .endpoint_url(format!("http://{api}"))
        .region(aws_sdk_kinesis::config::Region::new("us-east-1"))
        .credentials_provider(Credentials::new(&key.0, &key.1, None, None, "test"))
        .retry_config(aws_sdk_kinesis::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_kinesis::Client::from_conf(cfg)
}

/// One worker: rounds of PutRecord and PutRecords (5 records) to `grow` and GetRecords
/// following a LATEST iterator on shard `shard` of `grow`; once `grown` is set, every other
/// round's PutRecord goes to the new stream instead (the same calls per round, so the load does
/// not grow with the fleet); until `stop`.
#[allow(clippy::too_many_arguments)]
async fn worker(
    client: aws_sdk_kinesis::Client,
    fe: usize,
    w: usize,
    shard: String,
    grown: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) {
    let mut iterator = match client
        .get_shard_iterator()
        .stream_name("grow")
        .shard_id(&shard)
        .shard_iterator_type(ShardIteratorType::Latest)
        .send()
        .await
    {
        Ok(r) => r.shard_iterator.expect("iterator"),
        Err(e) => return tally.err(format!("fe{fe} GetShardIterator: {e:?}")),
    };
    let mut tick = tokio::time::interval(Duration::from_millis(ROUND_MS));
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        tick.tick().await;
        n += 1;
        let key = format!("fe{fe}-w{w}-{n}");
        let to_grown = n.is_multiple_of(2) && grown.load(Ordering::SeqCst);
        let stream = if to_grown { "grown" } else { "grow" };
        match client
            .put_record()
            .stream_name(stream)
            .partition_key(&key)
            .data(Blob::new(key.as_bytes()))
            .send()
            .await
        {
            Ok(_) => {
                tally.ok(fe);
                if to_grown {
                    tally.grown_records.fetch_add(1, Ordering::SeqCst);
                }
            }
            Err(e) => tally.err(format!(
                "{key} PutRecord to {stream}: {:?}",
                e.into_service_error()
            )),
        }
        let entries = (0..5)
            .map(|i| {
                PutRecordsRequestEntry::builder()
                    .partition_key(format!("{key}-{i}"))
                    .data(Blob::new(format!("{key}-{i}").into_bytes()))
                    .build()
                    .expect("entry")
            })
            .collect();
        match client
            .put_records()
            .stream_name("grow")
            .set_records(Some(entries))
            .send()
            .await
        {
            Ok(r) if r.failed_record_count() == Some(0) => tally.ok(fe),
            Ok(r) => tally.err(format!("{key} PutRecords: {:?}", r.records())),
            Err(e) => tally.err(format!("{key} PutRecords: {:?}", e.into_service_error())),
        }
        match client.get_records().shard_iterator(&iterator).send().await {
            Ok(r) => {
                tally.ok(fe);
                iterator = r.next_shard_iterator().expect("open shard").to_owned();
            }
            Err(e) => tally.err(format!("{key} GetRecords: {:?}", e.into_service_error())),
        }
    }
}

/// The workers, each with its own stop flag so one can move to another front-end.
struct Load {
    grown: Arc<AtomicBool>,
    tally: Arc<Tally>,
    shards: Vec<String>,
    key: (String, String),
    /// (front-end, shard, stop flag, task).
    workers: Vec<(usize, String, Arc<AtomicBool>, tokio::task::JoinHandle<()>)>,
}

impl Load {
    fn start_worker(
        &mut self,
        fe: usize,
        w: usize,
        shard: String,
        client: aws_sdk_kinesis::Client,
    ) {
        let stop = Arc::new(AtomicBool::new(false));
        let handle = tokio::spawn(worker(
            client,
            fe,
            w,
            shard.clone(),
            self.grown.clone(),
            stop.clone(),
            self.tally.clone(),
        ));
        self.workers.push((fe, shard, stop, handle));
    }

    fn add_frontend(&mut self, fe: usize, api: &str) {
        let client = strict_client(api, &self.key);
        for w in 0..WORKERS_PER_FRONTEND {
            let shard = self.shards[(fe + w) % self.shards.len()].clone();
            self.start_worker(fe, w, shard, client.clone());
        }
    }

    /// Moves one worker from each front-end of `from` to the new front-end `fe`, reading the
    /// same shard: the client load on every storage node stays the same, only spread over more
    /// front-ends.
    async fn move_to(&mut self, fe: usize, api: &str, from: &[usize]) {
        let client = strict_client(api, &self.key);
        for (w, &old) in from.iter().enumerate() {
            let i = self
                .workers
                .iter()
                .position(|(f, _, _, _)| *f == old)
                .expect("a worker");
            let (_, shard, stop, handle) = self.workers.remove(i);
            stop.store(true, Ordering::SeqCst);
            handle.await.expect("worker");
            self.start_worker(fe, w, shard, client.clone());
        }
    }

    async fn stop(self) -> Arc<Tally> {
        for (_, _, stop, handle) in self.workers {
            stop.store(true, Ordering::SeqCst);
            handle.await.expect("worker");
        }
        self.tally
    }
}

// ---------------------------------------------------------------------------------------------
// Maps.

/// A front-end's live map version, from its admin `/status.json`.
fn frontend_map_version(admin: &str) -> u64 {
    let (code, body) = common::http_get(admin, "/status.json");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    v["shard_map"]["version"].as_u64().expect("version")
}

/// Polls the control plane's published map until `ok` holds; returns it.
async fn until_published(
    control: &RemoteControl,
    what: &str,
    ok: impl Fn(&levee_map::ShardMap) -> bool,
) -> levee_map::ShardMap {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let bytes = control.map_snapshot().await.expect("map snapshot");
        let map = levee_map::codec::decode_map(&bytes).expect("a valid map");
        if ok(&map) {
            return map;
        }
        assert!(Instant::now() < deadline, "{what}: never published");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until every front-end of `admins` routes by `version` or newer; returns how long after
/// `since` the last one got there. Fails past `MAP_DEADLINE`.
async fn every_frontend_has(
    admins: &[String],
    version: u64,
    since: Instant,
    what: &str,
) -> Duration {
    for admin in admins {
        loop {
            let v = frontend_map_version(admin);
            if v >= version {
                break;
            }
            assert!(
                since.elapsed() < MAP_DEADLINE,
                "{what}: front-end {admin} still has map {v}, not {version}, {:?} after",
                since.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    since.elapsed()
}

fn count_nodes(map: &levee_map::ShardMap, storage: bool) -> usize {
    map.nodes()
        .values()
        .filter(|n| {
            n.role
                == if storage {
                    levee_map::NodeRole::Storage
                } else {
                    levee_map::NodeRole::Frontend
                }
        })
        .count()
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_a_storage_node_and_a_frontend_under_load_costs_existing_processes_nothing() {
    // One blocking thread per storage node: a blocking pool sizes itself to the concurrent reads
    // of the last 10 s (idle threads exit after that) up to its cap, so with the default cap
    // (16) its size depends on scheduling luck on a shared machine. At a cap of 1 it is full
    // from the first read on, and what is left to differ is any thread the growth itself adds.
    let mut fleet = Fleet::start_with(&["--blocking-threads", "1"]);
    let admin_client = fleet.client(0);
    admin_client
        .create_stream()
        .stream_name("grow")
        .shard_count(3)
        .send()
        .await
        .expect("CreateStream");
    wait_active(&admin_client, "grow").await;
    let shards = shard_ids(&admin_client, "grow").await;
    assert_eq!(shards.len(), 3);
    // This test's own connection to the control plane, opened before the first window so it is
    // part of the control plane's steady state.
    let control = RemoteControl::new(
        Pool::new(PoolConfig::default()),
        vec![fleet.control_addr.parse().expect("address")],
        RetryPolicy::default(),
    );
    let before = until_published(&control, "the stream", |m| m.stream("grow").is_some()).await;
    every_frontend_has(
        &fleet.admins,
        before.version(),
        Instant::now(),
        "the stream",
    )
    .await;

    let mut load = Load {
        grown: Arc::new(AtomicBool::new(false)),
        tally: Arc::new(Tally::default()),
        shards,
        key: fleet.key.clone(),
        workers: Vec::new(),
    };
    for fe in 0..fleet.apis.len() {
        load.add_frontend(fe, &fleet.apis[fe].clone());
    }

    // Every existing process: the control plane, the storage nodes, the front-ends.
    let mut names = vec!["control".to_string()];
    let mut watched = vec![fleet.control.child.id()];
    for (i, p) in fleet.storage.iter().enumerate() {
        names.push(format!("storage-{}", i + 1));
        watched.push(p.child.id());
    }
    for (i, p) in fleet.frontends.iter().enumerate() {
        names.push(format!("frontend-{}", i + 1));
        watched.push(p.child.id());
    }
    // Every front-end's `/status.json` is read throughout, in both windows alike, so the reads
    // that wait for the new maps below are no difference between them.
    let watching = Arc::new(Mutex::new(fleet.admins.clone()));
    let observer = {
        let admins = watching.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                for admin in admins.lock().unwrap().clone() {
                    frontend_map_version(&admin);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        (stop, handle)
    };
    // Let every worker's connections open, then the baseline window.
    let warm = Instant::now() + Duration::from_secs(10);
    while (0..fleet.apis.len()).any(|fe| load.tally.calls(fe) < 20) {
        assert!(Instant::now() < warm, "the load never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let baseline = sample(watched.clone(), Vec::new(), BASELINE_WINDOW).await;

    // A fourth storage node, on an address of its own; started = registered.
    let storage_dir = fleet.dir.path().join("storage-4");
    let storage = Proc::start(
        &[
            "--role",
            "storage",
            "--control",
            &fleet.control_addr,
            "--storage-listen",
            "127.0.0.14:0",
            "--admin-listen",
            "127.0.0.14:0",
            "--blocking-threads",
            "1",
        ],
        &storage_dir,
        &fleet.master_key(),
        "registered as storage node",
    );
    let registered = Instant::now();
    let storage_addr = storage.addr("storage listening on");
    let with_storage = until_published(&control, "the fourth storage node", |m| {
        count_nodes(m, true) == 4
    })
    .await;
    let storage_took = every_frontend_has(
        &fleet.admins,
        with_storage.version(),
        registered,
        "the fourth storage node",
    )
    .await;

    // A fourth front-end (index 3), sharing the credentials; started = registered.
    fleet.apis.push("127.0.0.24:0".into());
    fleet.admins.push("127.0.0.24:0".into());
    let control_addr = fleet.control_addr.clone();
    let frontend = fleet.start_frontend_waiting(3, &control_addr, &[], "registered as front-end");
    let registered = Instant::now();
    fleet.apis[3] = frontend.addr("levee listening on");
    fleet.admins[3] = frontend.addr("admin listening on");
    watching.lock().unwrap().push(fleet.admins[3].clone());
    let with_frontend = until_published(&control, "the fourth front-end", |m| {
        count_nodes(m, false) == 4
    })
    .await;
    let frontend_took = every_frontend_has(
        &fleet.admins,
        with_frontend.version(),
        registered,
        "the fourth front-end",
    )
    .await;
    load.move_to(3, &fleet.apis[3].clone(), &[1, 2]).await;

    // A new stream of one shard, created through the new front-end: the least-loaded storage
    // node is the new one (each of the others holds one of `grow`'s shards).
    let new_client = fleet.client(3);
    new_client
        .create_stream()
        .stream_name("grown")
        .shard_count(1)
        .send()
        .await
        .expect("CreateStream grown");
    wait_active(&new_client, "grown").await;
    let active = Instant::now();
    let with_stream = until_published(&control, "the new stream", |m| {
        m.stream("grown")
            .is_some_and(|s| s.state == levee_map::StreamState::Active && !s.shards.is_empty())
    })
    .await;
    let stream_took = every_frontend_has(
        &fleet.admins,
        with_stream.version(),
        active,
        "the new stream",
    )
    .await;
    let route = with_stream.stream("grown").expect("grown");
    let placed_on = &with_stream.nodes()[&route.shards[0].node].address;
    assert_eq!(
        placed_on, &storage_addr,
        "the new stream's shard is on the new storage node"
    );
    load.grown.store(true, Ordering::SeqCst);

    // Steady again with the new nodes in: wait until the new front-end and the new stream carry
    // traffic from every front-end, then the second window.
    let warm = Instant::now() + Duration::from_secs(10);
    let grown_from = load.tally.grown_records.load(Ordering::SeqCst);
    while load.tally.calls(3) < 20
        || load.tally.grown_records.load(Ordering::SeqCst) < grown_from + 40
    {
        assert!(Instant::now() < warm, "no traffic through the new nodes");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let new_pids = vec![storage.child.id(), frontend.child.id()];
    let after = sample(watched.clone(), new_pids, AFTER_WINDOW).await;
    let tally = load.stop().await;
    observer.0.store(true, Ordering::SeqCst);
    observer.1.join().expect("observer");

    println!(
        "maps: the new storage node on every front-end {storage_took:?} after it registered, \
         the new front-end {frontend_took:?}, the new stream {stream_took:?} after ACTIVE"
    );
    println!("process      threads before/after  fds before/after  sockets with the new nodes");
    for (i, name) in names.iter().enumerate() {
        println!(
            "{name:12} {:>7} / {:<7}    {:>5} / {:<5}     {}",
            baseline[i].threads, after[i].threads, baseline[i].fds, after[i].fds, after[i].to_new
        );
    }
    let errors = tally.errors.lock().unwrap().clone();
    assert!(
        errors.is_empty(),
        "{} failed calls: {errors:?}",
        errors.len()
    );
    for (i, name) in names.iter().enumerate() {
        assert!(
            after[i].threads <= baseline[i].threads,
            "{name}: {} threads after the nodes joined, {} before",
            after[i].threads,
            baseline[i].threads
        );
        assert!(
            after[i].fds <= baseline[i].fds,
            "{name}: {} fds (besides {} with the new nodes) after, {} before",
            after[i].fds,
            after[i].to_new,
            baseline[i].fds
        );
        let max = if name == "control" {
            NEW_PEER_SOCKETS_CONTROL_MAX
        } else {
            NEW_PEER_SOCKETS_NODE_MAX
        };
        assert!(
            after[i].to_new <= max,
            "{name}: {} sockets with the two new nodes",
            after[i].to_new
        );
    }
    // The front-ends send to the new storage node: each holds a connection to it.
    for (i, name) in names
        .iter()
        .enumerate()
        .filter(|(_, n)| n.starts_with("frontend"))
    {
        assert!(
            after[i].to_new >= 1,
            "{name} has no connection to the new storage node"
        );
    }
    assert!(tally.calls(3) >= 20, "the new front-end served traffic");

    // Every record acknowledged on the new stream is there, read through the new front-end.
    let grown_shards = shard_ids(&new_client, "grown").await;
    let records = read_all(&new_client, "grown", &grown_shards).await;
    assert_eq!(
        records.len(),
        tally.grown_records.load(Ordering::SeqCst),
        "records on the new storage node"
    );
}
