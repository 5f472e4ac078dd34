//! Constant per-node cost with live endpoints (design rules R1, R2; issue 11).
//!
//! 1. This test process serves the storage protocol on 1,000 loopback addresses (127.1.x.y),
//!    one `StorageServer` per address over one small in-memory storage plane, each checking
//!    requests against the map it follows from a real control plane (`levee serve --role
//!    control`), with all 1,000 registered as storage nodes so the catalog places shards on
//!    every one. One real front-end (`--role frontend`), run as an unprivileged user under
//!    `prlimit --nproc` just above its thread budget, carries signed AWS SDK traffic to all of
//!    them: its threads are the same as when the fleet had 3 storage nodes, its storage
//!    connections and fds stay within its pool cap (`--storage-connections-max`, least
//!    recently used evicted, evictions counted), and every request succeeds.
//! 2. A control plane with lowered caps holds 1,000 map long polls from this process over a few
//!    HTTP/2 connections within its thread budget and connection cap, answers the excess with
//!    429 at once, still answers a registration and a snapshot promptly, and wakes every held
//!    poll with the change.

mod common;

use common::fleet::*;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::error::ProvideErrorMetadata;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType};
use aws_smithy_types::Blob;
use bytes::Bytes;
use levee_frontend::backend::{
    AppendError, AppendSignals, Appended, BoxFuture, MapHolder, ReadFrom, ReadOut, StoragePlane,
    StoredRecord, Tip,
};
use levee_frontend::map_follow::{FollowConfig, HoldPolicy, MapDisk, MapKeeper};
use levee_map::{NodeId, ShardRoute};
use levee_protocol::ApiError;
use levee_rpc::control::{Registration, RemoteControl, RemoteMapSource, RetryPolicy};
use levee_rpc::{MapOwnership, Pool, PoolConfig, ServerConfig, StorageServer};

/// Storage endpoints served by this process.
const NODES: usize = 1_000;
/// The fleet the front-end is measured against first.
const BASE_NODES: usize = 3;
/// The front-end's storage pool cap: far below the endpoint count, so eviction runs all the time.
const POOL_CAP: usize = 48;
/// SDK calls in flight at once (each front-end request reaches one storage node at a time, so
/// at most this many evicted connections can still be finishing a request).
const CONCURRENCY: usize = 8;
/// The front-end's runtime.
const WORKER_THREADS: u64 = 2;
const BLOCKING_THREADS: u64 = 2;
/// Its thread budget as the start-up check computes it (`admin::needs`): workers, blocking
/// threads, the admin runtime's 2 blocking threads and `resources::FIXED_THREADS` (10). The
/// test checks the front-end reports the same number.
const THREAD_BUDGET: u64 = WORKER_THREADS + BLOCKING_THREADS + 2 + 10;
/// The unprivileged user the front-end runs as (root ignores RLIMIT_NPROC; RLIMIT_NPROC counts
/// every task of the user, so no other test uses this uid).
const UID: u32 = 65527;
/// The front-end's storage pool's evictions.
const EVICTIONS: &str = "levee_rpc_client_evictions_total{pool=\"storage\"}";
/// The harness's node ids start here.
const NODE_ID_BASE: u64 = 1 << 40;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Raises this process's soft RLIMIT_NOFILE to its hard limit: it holds 1,000 listeners.
fn raise_nofile() {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: get/setrlimit on a struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The harness's storage: one in-memory plane behind 1,000 storage servers.

/// Records by shard uid, and which storage nodes (by the map's placement) were asked.
#[derive(Default)]
struct MemStorage {
    shards: Mutex<HashMap<u64, Vec<StoredRecord>>>,
    nodes_asked: Mutex<HashSet<u64>>,
    signals: AppendSignals,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl MemStorage {
    fn asked(&self, shard: &ShardRoute) {
        self.nodes_asked.lock().unwrap().insert(shard.node.0);
    }
}

impl StoragePlane for MemStorage {
    fn append(
        &self,
        shard: &ShardRoute,
        records: Vec<(Bytes, Bytes)>,
    ) -> BoxFuture<Result<Appended, AppendError>> {
        self.asked(shard);
        let arrival_ms = now_ms();
        let mut shards = self.shards.lock().unwrap();
        let log = shards.entry(shard.uid).or_default();
        let first_seq_ix = log.len() as u64;
        for (partition_key, data) in records {
            log.push(StoredRecord {
                seq_ix: log.len() as u64,
                arrival_ms,
                partition_key,
                data,
                encrypted: false,
            });
        }
        drop(shards);
        self.signals.notify(shard.uid);
        let out = Appended {
            first_seq_ix,
            arrival_ms,
            shard_created_ms: shard.created_ms,
            encrypted: false,
        };
        Box::pin(async move { Ok(out) })
    }

    fn read(
        &self,
        shard: &ShardRoute,
        from: ReadFrom,
        max_records: usize,
        _max_bytes: u64,
    ) -> BoxFuture<Result<ReadOut, ApiError>> {
        self.asked(shard);
        let shards = self.shards.lock().unwrap();
        let log = shards.get(&shard.uid).map_or(&[][..], |l| &l[..]);
        let start = match from {
            ReadFrom::SeqIx(n) => (n as usize).min(log.len()),
            ReadFrom::Timestamp(t) => log
                .iter()
                .position(|r| r.arrival_ms >= t)
                .unwrap_or(log.len()),
        };
        let records: Vec<StoredRecord> = log[start..].iter().take(max_records).cloned().collect();
        let next_seq_ix = (start + records.len()) as u64;
        let out = ReadOut {
            shard_end: !shard.open && next_seq_ix == log.len() as u64,
            next_seq_ix,
            records,
            tip_arrival_ms: log.last().map_or(0, |r| r.arrival_ms),
            tip_next_seq_ix: log.len() as u64,
            shard_created_ms: shard.created_ms,
        };
        Box::pin(async move { Ok(out) })
    }

    fn tip(&self, shard: &ShardRoute) -> BoxFuture<Result<Tip, ApiError>> {
        self.asked(shard);
        let next_seq_ix = self
            .shards
            .lock()
            .unwrap()
            .get(&shard.uid)
            .map_or(0, |l| l.len() as u64);
        let out = Tip {
            next_seq_ix,
            shard_created_ms: shard.created_ms,
        };
        Box::pin(async move { Ok(out) })
    }

    fn append_signal(&self, shard: &ShardRoute) -> tokio::sync::watch::Receiver<()> {
        self.signals.watch(shard.uid)
    }
}

/// The harness's persisted maps: memory.
#[derive(Default)]
struct MemDisk(Mutex<HashMap<u64, Vec<u8>>>);

impl MapDisk for MemDisk {
    fn generations(&self) -> std::io::Result<Vec<u64>> {
        Ok(self.0.lock().unwrap().keys().copied().collect())
    }
    fn write(&self, version: u64, bytes: &[u8]) -> std::io::Result<()> {
        self.0.lock().unwrap().insert(version, bytes.to_vec());
        Ok(())
    }
    fn read(&self, version: u64) -> std::io::Result<Vec<u8>> {
        self.0
            .lock()
            .unwrap()
            .get(&version)
            .cloned()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    }
    fn remove(&self, version: u64) -> std::io::Result<()> {
        self.0.lock().unwrap().remove(&version);
        Ok(())
    }
    fn location(&self) -> String {
        "memory".into()
    }
}

/// A storage endpoint of the harness: its node id, address and server.
struct Endpoint {
    id: u64,
    addr: SocketAddr,
    server: Arc<StorageServer>,
}

/// Serves the storage protocol on `NODES` addresses 127.1.x.y, each as its own storage node
/// (id, map ownership) over the shared `storage`, checking requests against `map`.
async fn serve_endpoints(storage: Arc<MemStorage>, map: Arc<MapHolder>) -> Vec<Endpoint> {
    let mut out = Vec::with_capacity(NODES);
    for i in 0..NODES {
        let ip = format!("127.1.{}.{}", i / 250, i % 250 + 1);
        let listener = tokio::net::TcpListener::bind((ip.as_str(), 0))
            .await
            .unwrap_or_else(|e| panic!("binding {ip}: {e}"));
        let addr = listener.local_addr().expect("addr");
        let id = NODE_ID_BASE + i as u64;
        let server = StorageServer::new(
            storage.clone(),
            Arc::new(MapOwnership::new(map.clone(), NodeId(id))),
            ServerConfig::default(),
        );
        tokio::spawn(server.clone().serve(listener, std::future::pending()));
        out.push(Endpoint { id, addr, server });
    }
    out
}

/// Registers `endpoints` as storage nodes of cell-1, `CONCURRENCY * 4` at a time.
async fn register(control: &Arc<RemoteControl>, endpoints: &[Endpoint]) {
    let next = Arc::new(AtomicUsize::new(0));
    let nodes: Arc<Vec<Registration>> = Arc::new(
        endpoints
            .iter()
            .map(|e| Registration {
                id: e.id,
                role: levee_map::NodeRole::Storage,
                address: e.addr.to_string(),
                cell: "cell-1".into(),
                admin: String::new(),
            })
            .collect(),
    );
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY * 4 {
        let (control, next, nodes) = (control.clone(), next.clone(), nodes.clone());
        tasks.spawn(async move {
            while let Some(node) = nodes.get(next.fetch_add(1, Ordering::Relaxed)) {
                control
                    .register(node)
                    .await
                    .unwrap_or_else(|e| panic!("registering {}: {}", node.address, e.message));
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("registration task");
    }
}

/// Waits until `map` satisfies `ok`.
async fn until_map(map: &MapHolder, what: &str, ok: impl Fn(&levee_map::ShardMap) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut changes = map.watch();
    while !ok(&map.current()) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "the harness's map never had {what}");
        let _ = tokio::time::timeout(left, changes.changed()).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Watching a process from outside: /proc and its admin listener.

/// Tasks (threads) of process `pid`.
fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count())
}

/// CPU time (user and system) process `pid` has used, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<f64> = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .map(|f| f.parse().unwrap_or(0.0))
                .collect()
        })
        .unwrap_or_default();
    // utime and stime are fields 14 and 15, the 12th and 13th after the command name.
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (fields.get(11).unwrap_or(&0.0) + fields.get(12).unwrap_or(&0.0)) / hz
}

/// Open fds of process `pid`, and how many are TCP sockets whose peer is in 127.1.0.0/16 (the
/// storage endpoints).
fn fds(pid: u32) -> (usize, usize) {
    let mut peers: HashMap<u64, [u8; 4]> = HashMap::new();
    if let Ok(text) = std::fs::read_to_string("/proc/net/tcp") {
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(rem), Some(inode)) = (f.get(2), f.get(9)) else {
                continue;
            };
            let ip = rem
                .split(':')
                .next()
                .and_then(|h| u32::from_str_radix(h, 16).ok());
            if let (Some(ip), Ok(inode)) = (ip, inode.parse()) {
                peers.insert(inode, ip.to_le_bytes());
            }
        }
    }
    let (mut all, mut storage) = (0, 0);
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in dir.flatten() {
            all += 1;
            let target = std::fs::read_link(e.path()).unwrap_or_default();
            let inode = target
                .to_string_lossy()
                .strip_prefix("socket:[")
                .and_then(|s| s.strip_suffix(']'))
                .and_then(|s| s.parse::<u64>().ok());
            if inode
                .and_then(|i| peers.get(&i))
                .is_some_and(|ip| ip[0] == 127 && ip[1] == 1)
            {
                storage += 1;
            }
        }
    }
    (all, storage)
}

/// The peaks of a process's threads, fds and storage sockets while a phase runs.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Peaks {
    threads: usize,
    fds: usize,
    storage_sockets: usize,
}

/// Samples process `pid` every 10 ms on a thread of its own until stopped.
struct Sampler {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Peaks>,
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut p = Peaks::default();
            loop {
                let last = flag.load(Ordering::SeqCst);
                let (all, storage) = fds(pid);
                p.threads = p.threads.max(threads(pid));
                p.fds = p.fds.max(all);
                p.storage_sockets = p.storage_sockets.max(storage);
                if last {
                    return p;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Sampler { stop, handle }
    }

    fn finish(self) -> Peaks {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().expect("sampler")
    }
}

/// A metric's value from an admin listener's `/metrics` (0 when absent). `series` is the name
/// with its labels exactly as exported, e.g. `x_total{endpoint="map"}`.
fn metric(admin: &str, series: &str) -> f64 {
    let (code, text) = common::http_get(admin, "/metrics");
    assert_eq!(code, 200, "{text}");
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

// ---------------------------------------------------------------------------------------------
// Traffic

/// Every shard of `stream`: (shard id, first hash key), through every ListShards page.
async fn all_shards(client: &aws_sdk_kinesis::Client, stream: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let req = match &token {
            Some(t) => client.list_shards().next_token(t),
            None => client.list_shards().stream_name(stream),
        };
        let page = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("ListShards: {}", e.message().unwrap_or_default()));
        out.extend(page.shards().iter().map(|s| {
            let key = s.hash_key_range().expect("range").starting_hash_key();
            (s.shard_id().to_owned(), key.to_owned())
        }));
        match page.next_token() {
            Some(t) => token = Some(t.to_owned()),
            None => return out,
        }
    }
}

/// Writes one record to every shard of `stream` (PutRecords, 500 a call, each record aimed at
/// its shard by explicit hash key; every tenth also by PutRecord), then reads each shard back
/// (GetShardIterator and GetRecords, `CONCURRENCY` shards at once) and checks the record came
/// back from its shard. Returns the SDK calls made; every one must succeed.
async fn drive(client: &aws_sdk_kinesis::Client, stream: &str, tag: &str) -> usize {
    let shards = all_shards(client, stream).await;
    let mut calls = 1;
    for chunk in shards.chunks(500) {
        let out = client
            .put_records()
            .stream_name(stream)
            .set_records(Some(
                chunk
                    .iter()
                    .map(|(id, key)| {
                        PutRecordsRequestEntry::builder()
                            .partition_key(id)
                            .explicit_hash_key(key)
                            .data(Blob::new(format!("{tag}-{id}").into_bytes()))
                            .build()
                            .expect("entry")
                    })
                    .collect(),
            ))
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutRecords: {}", e.message().unwrap_or_default()));
        calls += 1;
        assert_eq!(out.failed_record_count(), Some(0), "{out:?}");
        for ((id, _), r) in chunk.iter().zip(out.records()) {
            assert_eq!(r.shard_id(), Some(id.as_str()));
        }
    }
    let shards = Arc::new(shards);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (client, shards, next) = (client.clone(), shards.clone(), next.clone());
        let (stream, tag) = (stream.to_owned(), tag.to_owned());
        tasks.spawn(async move {
            let mut calls = 0;
            while let Some((id, key)) = shards.get(next.fetch_add(1, Ordering::Relaxed)) {
                let n: usize = id
                    .trim_start_matches("shardId-")
                    .parse()
                    .expect("shard number");
                let mut want = vec![format!("{tag}-{id}")];
                if n.is_multiple_of(10) {
                    let data = format!("{tag}-single-{id}");
                    let put = client
                        .put_record()
                        .stream_name(&stream)
                        .partition_key(id)
                        .explicit_hash_key(key)
                        .data(Blob::new(data.clone().into_bytes()))
                        .send()
                        .await
                        .unwrap_or_else(|e| {
                            panic!("PutRecord {id}: {}", e.message().unwrap_or_default())
                        });
                    assert_eq!(put.shard_id(), id.as_str());
                    want.push(data);
                    calls += 1;
                }
                let it = client
                    .get_shard_iterator()
                    .stream_name(&stream)
                    .shard_id(id)
                    .shard_iterator_type(ShardIteratorType::TrimHorizon)
                    .send()
                    .await
                    .unwrap_or_else(|e| {
                        panic!("GetShardIterator {id}: {}", e.message().unwrap_or_default())
                    });
                let got = client
                    .get_records()
                    .shard_iterator(it.shard_iterator().expect("iterator"))
                    .send()
                    .await
                    .unwrap_or_else(|e| {
                        panic!("GetRecords {id}: {}", e.message().unwrap_or_default())
                    });
                calls += 2;
                let data: Vec<String> = got
                    .records()
                    .iter()
                    .map(|r| String::from_utf8_lossy(r.data().as_ref()).into_owned())
                    .collect();
                for w in &want {
                    assert!(data.contains(w), "{id}: {w} not in {data:?}");
                }
            }
            calls
        });
    }
    while let Some(done) = tasks.join_next().await {
        calls += done.expect("traffic task");
    }
    calls
}

async fn create_active(client: &aws_sdk_kinesis::Client, name: &str, shards: i32) {
    client
        .create_stream()
        .stream_name(name)
        .shard_count(shards)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateStream {name}: {}", e.message().unwrap_or_default()));
    wait_active(client, name).await;
}

// ---------------------------------------------------------------------------------------------
// The front-end, unprivileged under prlimit --nproc.

/// Makes `path` and everything under it owned by `uid`.
fn chown_tree(path: &Path, uid: u32) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: chown on a NUL-terminated path we own.
    assert_eq!(unsafe { libc::chown(c.as_ptr(), uid, uid) }, 0, "{path:?}");
    if path.is_dir() {
        for e in std::fs::read_dir(path).expect("read_dir").flatten() {
            chown_tree(&e.path(), uid);
        }
    }
}

/// `levee serve --role frontend` as `UID` (when root) under `prlimit --nproc=N:N`, where N is
/// one above its thread budget plus the tasks the user already runs (none for `UID`).
fn frontend_command(bin: &Path, control: &str, dir: &Path, key: &Path) -> (Command, u64) {
    let mut cmd;
    let nproc;
    if is_root() {
        nproc = THREAD_BUDGET + 1;
        cmd = Command::new("setpriv");
        cmd.args([
            format!("--reuid={UID}"),
            format!("--regid={UID}"),
            "--clear-groups".into(),
            "prlimit".into(),
        ]);
    } else {
        // SAFETY: getuid has no preconditions.
        let me = unsafe { libc::getuid() };
        nproc = user_tasks(me) + THREAD_BUDGET + 1;
        cmd = Command::new("prlimit");
    }
    cmd.arg(format!("--nproc={nproc}:{nproc}"))
        .arg("--")
        .arg(bin)
        .args(["serve", "--role", "frontend", "--control", control])
        .args(["--listen", "127.0.0.3:0", "--admin-listen", "127.0.0.3:0"])
        .args(["--worker-threads", &WORKER_THREADS.to_string()])
        .args(["--blocking-threads", &BLOCKING_THREADS.to_string()])
        .args(["--storage-connections-max", &POOL_CAP.to_string()])
        .args(["--map-snapshot-period-ms", MAP_SNAPSHOT_PERIOD_MS])
        .args(["--lease-renew-ms", "1000"])
        .arg("--data-dir")
        .arg(dir)
        .arg("--master-key-file")
        .arg(key);
    (cmd, nproc)
}

/// Tasks of every process of user `uid` (what RLIMIT_NPROC counts).
fn user_tasks(uid: u32) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(status) = std::fs::read_to_string(e.path().join("status")) else {
            continue;
        };
        let field = |key: &str| {
            status.lines().find_map(|l| {
                l.strip_prefix(key)?
                    .split_whitespace()
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
        };
        if field("Uid:") == Some(u64::from(uid)) {
            n += field("Threads:").unwrap_or(1);
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_frontend_reaches_1000_live_storage_endpoints_at_constant_cost_unprivileged() {
    let started = Instant::now();
    raise_nofile();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    // The front-end's files belong to its user: data directory, master key, credentials.
    let fe = dir.path().join("frontend");
    let fe_data = fe.join("data");
    let key_file = fe.join("keys/master.key");
    let access = create_key(&fe_data, &key_file);
    // The binary where that user can reach it (the target directory may not be): a link to
    // it when the filesystem allows, else a copy.
    let bin = dir.path().join("levee");
    if std::fs::hard_link(env!("CARGO_BIN_EXE_levee"), &bin).is_err() {
        std::fs::copy(env!("CARGO_BIN_EXE_levee"), &bin).expect("copy levee");
    }
    if is_root() {
        chown_tree(&fe, UID);
    }
    let nodes_max = NODES.to_string();
    let control = Proc::start(
        &[
            "--role",
            "control",
            "--control-listen",
            "127.0.0.2:0",
            "--admin-listen",
            "127.0.0.2:0",
            "--storage-nodes-per-cell-max",
            &nodes_max,
        ],
        &dir.path().join("control"),
        &key_file,
        // Once it has listed itself in the map: the map version does not move after that.
        "registered as control node",
    );
    let control_addr = control.addr("control listening on");
    let remote = Arc::new(RemoteControl::new(
        Pool::new(PoolConfig::default()),
        vec![control_addr.parse().expect("control address")],
        RetryPolicy {
            deadline_ms: 30_000,
            ..RetryPolicy::default()
        },
    ));

    // The harness: 1,000 endpoints following the control plane's map; 3 registered for now.
    let storage = Arc::new(MemStorage::default());
    let map = Arc::new(MapHolder::default());
    let keeper = Arc::new(MapKeeper::new(
        map.clone(),
        Arc::new(MemDisk::default()),
        HoldPolicy {
            removal_fraction: 1.0,
            min_shards: usize::MAX,
        },
    ));
    keeper.boot();
    let _following = levee_frontend::map_follow::spawn_follower(
        keeper,
        Arc::new(RemoteMapSource(Arc::new(remote.with_own_pool()), None)),
        FollowConfig::default(),
    );
    let endpoints = serve_endpoints(storage.clone(), map.clone()).await;
    register(&remote, &endpoints[..BASE_NODES]).await;

    let (cmd, nproc) = frontend_command(&bin, &control_addr, &fe_data, &key_file);
    let frontend = Proc::spawn(cmd, "levee listening on");
    let pid = frontend.child.id();
    let admin = frontend.addr("admin listening on");
    let client = client_for(&frontend.addr("levee listening on"), &access);
    assert_eq!(
        metric(&admin, "levee_startup_needed{resource=\"threads\"}"),
        THREAD_BUDGET as f64,
        "the front-end's thread budget is not the one this test sets RLIMIT_NPROC from"
    );
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let max_processes = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max processes"))
        .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>());
    assert_eq!(
        max_processes,
        Some(vec![nproc.to_string().as_str(); 2]),
        "{limits}"
    );
    if is_root() {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        let uid = status.lines().find_map(|l| l.strip_prefix("Uid:"));
        assert_eq!(
            uid.and_then(|u| u.split_whitespace().next()),
            Some(UID.to_string().as_str()),
            "the front-end does not run as {UID}"
        );
    }

    // Phase 1: three storage nodes.
    create_active(&client, "base", 6).await;
    until_map(&map, "stream base", |m| m.stream("base").is_some()).await;
    let sampler = Sampler::start(pid);
    let mut calls = drive(&client, "base", "one").await;
    let small = sampler.finish();
    let evictions_small = metric(&admin, EVICTIONS);

    // Phase 2: 1,000 storage nodes, a stream with a shard on each new one, traffic to all.
    let (t, cpu) = (Instant::now(), cpu_seconds(control.child.id()));
    register(&remote, &endpoints[BASE_NODES..]).await;
    let registered_in = t.elapsed();
    let registration_cpu = cpu_seconds(control.child.id()) - cpu;
    let wide_shards = (NODES - BASE_NODES) as i32;
    create_active(&client, "wide", wide_shards).await;
    until_map(&map, "stream wide", |m| m.stream("wide").is_some()).await;
    let placed: HashSet<u64> = map
        .current()
        .streams()
        .flat_map(|s| s.shards.iter().map(|r| r.node.0))
        .collect();
    assert_eq!(
        placed.len(),
        NODES,
        "the catalog did not place shards on every node"
    );
    let sampler = Sampler::start(pid);
    let t = Instant::now();
    calls += drive(&client, "wide", "two").await;
    calls += drive(&client, "base", "two").await;
    let traffic_in = t.elapsed();
    let large = sampler.finish();
    let (fds_after, sockets_after) = fds(pid);
    let evictions = metric(&admin, EVICTIONS);
    let server_connections: usize = endpoints.iter().map(|e| e.server.connections()).sum();
    let pool_connections = metric(&admin, "levee_rpc_client_connections{pool=\"storage\"}");
    let pool_cap = metric(&admin, "levee_rpc_client_connections_max{pool=\"storage\"}");
    let asked = storage.nodes_asked.lock().unwrap().len();
    eprintln!(
        "fleet_scale: {calls} SDK calls, all ok; 1,000 endpoints registered in {registered_in:?} \
         ({registration_cpu:.2} s of control-plane CPU), \
         traffic in {traffic_in:?}; front-end with 3 nodes {small:?}, with 1,000 {large:?}; \
         after: {fds_after} fds, {sockets_after} storage sockets ({pool_connections} by its pool \
         gauge), {server_connections} server-side connections; evictions {evictions_small} then {evictions}; nproc {nproc}; total {:?}",
        started.elapsed()
    );

    // Every endpoint was asked, through the one front-end.
    assert_eq!(asked, NODES, "storage nodes reached");
    // Threads: the same as with 3 storage nodes, within the budget RLIMIT_NPROC was set from.
    // (Never more; an idle admin blocking thread reaching its keep-alive between the phases
    // is the one way to have fewer.)
    assert!(
        large.threads <= small.threads,
        "threads grew with the fleet: {} with 3 nodes, {} with 1,000",
        small.threads,
        large.threads
    );
    assert!(large.threads as u64 <= THREAD_BUDGET, "{large:?}");
    // Connections and fds: within the pool cap (plus the requests in flight on evicted
    // connections), whatever the number of nodes.
    assert!(
        large.storage_sockets <= POOL_CAP + CONCURRENCY,
        "{} storage connections, cap {POOL_CAP}",
        large.storage_sockets
    );
    assert!(
        sockets_after <= POOL_CAP,
        "{sockets_after} storage connections after the traffic"
    );
    assert!(
        large.fds <= small.fds + POOL_CAP + CONCURRENCY,
        "fds {} with 1,000 nodes, {} with 3",
        large.fds,
        small.fds
    );
    // The front-end's own account agrees: its pool's cap is the setting, its connections under it.
    assert_eq!(pool_cap, POOL_CAP as f64);
    assert!(pool_connections <= POOL_CAP as f64, "{pool_connections}");
    assert!(
        server_connections <= POOL_CAP + CONCURRENCY,
        "{server_connections} connections open at the endpoints"
    );
    // Least-recently-used eviction did the work: at least one per node beyond the cap.
    assert_eq!(evictions_small, 0.0);
    assert!(
        evictions >= (NODES - POOL_CAP) as f64,
        "{evictions} evictions for {NODES} nodes and a cap of {POOL_CAP}"
    );
    // And the front-end is healthy under its RLIMIT_NPROC.
    let (code, body) = common::http_get(&admin, "/health/ready");
    assert_eq!(code, 200, "{body}");
}

// ---------------------------------------------------------------------------------------------
// The control plane under 1,000 map subscriptions.

/// Map long polls the control plane holds at once (`--map-polls-max`).
const POLLS_MAX: usize = 1_000;
/// Polls sent: a quarter over the cap.
const POLLS: usize = 1_250;
/// HTTP/2 connections they share (50 streams each, under the listener's 64 per connection).
const POLL_CONNECTIONS: usize = 25;
/// The control plane's connection cap (`--control-connections-max`).
const CONTROL_CONNECTIONS_MAX: usize = 32;
/// Fds beside connections that may be open for a moment: this test's admin scrape, a
/// connection past the cap accepted and not yet closed.
const FD_SLACK: usize = 4;
/// How long each poll asks to be held: far longer than the test needs.
const POLL_WAIT_MS: u64 = 15_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_plane_holds_1000_map_subscriptions_and_answers_the_excess_with_429() {
    let started = Instant::now();
    raise_nofile();
    let dir = tempfile::tempdir().expect("tempdir");
    let (polls_max, conns_max) = (POLLS_MAX.to_string(), CONTROL_CONNECTIONS_MAX.to_string());
    let control = Proc::start(
        &[
            "--role",
            "control",
            "--control-listen",
            "127.0.0.2:0",
            "--admin-listen",
            "127.0.0.2:0",
            "--worker-threads",
            &WORKER_THREADS.to_string(),
            "--blocking-threads",
            &BLOCKING_THREADS.to_string(),
            "--map-polls-max",
            &polls_max,
            "--control-connections-max",
            &conns_max,
        ],
        &dir.path().join("control"),
        &dir.path().join("master.key"),
        // Once it has listed itself in the map: the map version does not move after that.
        "registered as control node",
    );
    let pid = control.child.id();
    let admin = control.addr("admin listening on");
    let addr: SocketAddr = control
        .addr("control listening on")
        .parse()
        .expect("address");
    let remote = RemoteControl::new(
        Pool::new(PoolConfig::default()),
        vec![addr],
        RetryPolicy::default(),
    );
    let node = |id: u64| Registration {
        id,
        role: levee_map::NodeRole::Storage,
        address: format!("127.1.0.{id}:4592"),
        cell: "cell-1".into(),
        admin: String::new(),
    };
    remote.register(&node(1)).await.expect("registration");
    let version = |frame: &Bytes| {
        levee_map::codec::decode_map(frame)
            .expect("snapshot")
            .version()
    };
    let v = version(&remote.map_snapshot().await.expect("snapshot"));
    assert!(v > 0);
    let budget = metric(&admin, "levee_startup_needed{resource=\"threads\"}");
    let before = (threads(pid), fds(pid).0);

    // Connections to share, each opened by a snapshot (so the polls find it in the pool).
    let mut pools = Vec::new();
    for _ in 0..POLL_CONNECTIONS {
        let pool = Pool::new(PoolConfig {
            connections_max: 1,
            request_timeout_ms: 5_000,
            response_bytes_max: levee_rpc::control::MAP_FEED_BYTES_MAX,
            ..PoolConfig::default()
        });
        let a = pool
            .post(
                addr,
                levee_rpc::control::MAP_SNAPSHOT_PATH,
                Bytes::from_static(&[1]),
                0,
            )
            .await
            .expect("snapshot");
        assert_eq!(a.status.as_u16(), 200);
        pools.push(pool);
    }
    let mut poll = vec![1u8];
    poll.extend_from_slice(&v.to_le_bytes());
    poll.extend_from_slice(&POLL_WAIT_MS.to_le_bytes());
    let poll = Bytes::from(poll);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let sent = Instant::now();
    for i in 0..POLLS {
        let (pool, poll, tx) = (
            pools[i % POLL_CONNECTIONS].clone(),
            poll.clone(),
            tx.clone(),
        );
        tokio::spawn(async move {
            let answer = pool
                .post(
                    addr,
                    levee_rpc::control::MAP_DELTAS_PATH,
                    poll,
                    POLL_WAIT_MS,
                )
                .await;
            let _ = tx.send((answer, sent.elapsed()));
        });
    }
    // The excess is refused at once with a retry hint.
    let refused_by = Duration::from_secs(5);
    let mut refused = Vec::new();
    while refused.len() < POLLS - POLLS_MAX {
        let left = refused_by.saturating_sub(sent.elapsed());
        let Ok(Some((answer, took))) = tokio::time::timeout(left, rx.recv()).await else {
            panic!(
                "{} of {} excess polls answered within {refused_by:?}",
                refused.len(),
                POLLS - POLLS_MAX
            );
        };
        let a = answer.unwrap_or_else(|e| panic!("a poll failed: {e}"));
        assert_eq!(a.status.as_u16(), 429, "{:?}", a.body);
        assert!(a.headers.contains_key("retry-after-ms"), "{:?}", a.headers);
        refused.push(took);
    }
    let slowest_refusal = refused.iter().max().copied().unwrap_or_default();
    // The rest are held: nothing more comes while the map does not change.
    if let Ok(Some((answer, took))) =
        tokio::time::timeout(Duration::from_millis(500), rx.recv()).await
    {
        panic!("a poll within the cap was answered early after {took:?}: {answer:?}");
    }
    assert_eq!(
        metric(
            &admin,
            "levee_control_admission_refused_total{endpoint=\"map\"}"
        ),
        (POLLS - POLLS_MAX) as f64
    );
    // Held within the thread budget and the connection cap.
    let (held_threads, (held_fds, _)) = (threads(pid), fds(pid));
    assert!(
        held_threads as f64 <= budget,
        "{held_threads} threads, budget {budget}"
    );
    assert!(
        held_threads <= before.0,
        "threads grew with the subscriptions: {} before, {held_threads} holding",
        before.0
    );
    assert!(
        held_fds <= before.1 + CONTROL_CONNECTIONS_MAX + FD_SLACK,
        "{held_fds} fds holding the polls, {} before",
        before.1
    );
    // As many connections again as the cap: past it they are closed at once (the polls' and
    // the registration client's connections are open), and fds stay capped.
    let open = POLL_CONNECTIONS + 1;
    let extra: Vec<std::net::TcpStream> = (0..CONTROL_CONNECTIONS_MAX)
        .map(|_| std::net::TcpStream::connect(addr).expect("connect"))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    let refused_conns = loop {
        let n = metric(
            &admin,
            "levee_rpc_server_connections_refused_total{listener=\"control\"}",
        );
        if n >= open as f64 {
            break n;
        }
        assert!(Instant::now() < deadline, "{n} connections refused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let capped_fds = fds(pid).0;
    assert!(
        capped_fds <= before.1 + CONTROL_CONNECTIONS_MAX + FD_SLACK,
        "{capped_fds} fds past the connection cap, {} before",
        before.1
    );
    drop(extra);

    // Registrations and snapshots are still answered promptly.
    let t = Instant::now();
    remote.register(&node(2)).await.expect("registration");
    let registered_in = t.elapsed();
    let t = Instant::now();
    let snapshot = remote.map_snapshot().await.expect("snapshot");
    let snapshot_in = t.elapsed();
    assert!(
        levee_map::codec::decode_map(&snapshot)
            .expect("snapshot")
            .node(NodeId(2))
            .is_some(),
        "the snapshot lacks the new node"
    );
    assert!(
        registered_in < Duration::from_secs(2),
        "registration took {registered_in:?}"
    );
    assert!(
        snapshot_in < Duration::from_secs(2),
        "snapshot took {snapshot_in:?}"
    );
    // The change reaches every held subscription.
    let mut woken = 0;
    while woken < POLLS_MAX {
        let Ok(Some((answer, _))) = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await
        else {
            panic!("{woken} of {POLLS_MAX} held polls brought the change");
        };
        let a = answer.unwrap_or_else(|e| panic!("a held poll failed: {e}"));
        assert_eq!(a.status.as_u16(), 200, "{:?}", a.body);
        assert!(!a.body.is_empty(), "a held poll woke without the change");
        woken += 1;
    }
    eprintln!(
        "fleet_scale: control plane held {POLLS_MAX} polls over {POLL_CONNECTIONS} connections, \
         refused {} (slowest refusal {slowest_refusal:?}); threads {} before, {held_threads} \
         holding (budget {budget}); fds {} before, {held_fds} holding, {capped_fds} with \
         {refused_conns} connections refused past the cap; registration {registered_in:?}, \
         snapshot {snapshot_in:?}; woke {woken}; total {:?}",
        refused.len(),
        before.0,
        before.1,
        started.elapsed()
    );
}
