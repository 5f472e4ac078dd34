//! The control plane on three Raft voters (`levee serve --role control --voters ...`), with a
//! storage node and a front-end that knows all three. Under continuous client load (PutRecord,
//! AddTagsToStream, CreateStream through the AWS SDK for Rust, with its standard retries):
//! the leader is killed, a new one is elected and no error reaches the client; the killed voter
//! comes back; a fourth voter replaces one (`levee admin voters add/remove`) and the replaced one
//! is killed. Afterwards every acknowledged tag, stream and record is there.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::error::ProvideErrorMetadata;
use aws_smithy_types::Blob;
use common::fleet::{client_for, read_all, shard_ids, wait_active, Proc};

/// A free port on `ip` (bound and released: voters need fixed ports, each knows the others').
fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

struct Voters {
    /// Voter id → control listener.
    addrs: Vec<(u64, String)>,
    procs: Vec<Option<Proc>>,
    list: String,
    /// Last: removed only once the voters above were killed (fields drop in order).
    dir: tempfile::TempDir,
}

impl Voters {
    fn master_key(&self) -> std::path::PathBuf {
        self.dir.path().join("master.key")
    }

    fn start_voter(&mut self, id: u64) {
        let addr = self.addr(id);
        let p = Proc::start(
            &[
                "--role",
                "control",
                "--voter-id",
                &id.to_string(),
                "--voters",
                &self.list.clone(),
                "--control-listen",
                &addr,
                "--admin-listen",
                &format!("{}:0", addr.split(':').next().expect("ip")),
            ],
            &self.dir.path().join(format!("voter-{id}")),
            &self.master_key(),
            "control listening on",
        );
        let slot = (id - 1) as usize;
        if self.procs.len() <= slot {
            self.procs.resize_with(slot + 1, || None);
        }
        self.procs[slot] = Some(p);
    }

    fn addr(&self, id: u64) -> String {
        self.addrs
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, a)| a.clone())
            .expect("voter address")
    }

    fn kill(&mut self, id: u64) {
        if let Some(mut p) = self.procs[(id - 1) as usize].take() {
            p.kill();
        }
    }

    /// `levee admin voters --control <voter> ...`, its stdout.
    fn admin(&self, via: u64, args: &[&str]) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_levee"))
            .args(["admin", "voters", "--control", &self.addr(via)])
            .args(args)
            .output()
            .expect("levee admin voters");
        assert!(
            out.status.success(),
            "levee admin voters {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    /// The leader as seen through voter `via` (following it to the leader), once there is one
    /// other than `not`.
    fn leader(&self, via: u64, not: Option<u64>) -> (u64, Vec<u64>) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = self.admin(via, &["show"]);
            let leader = out
                .lines()
                .find_map(|l| l.strip_prefix("leader: "))
                .and_then(|l| l.trim().parse::<u64>().ok());
            let voters: Vec<u64> = out
                .lines()
                .filter_map(|l| l.strip_prefix("voter "))
                .filter_map(|l| l.split(' ').next()?.parse().ok())
                .collect();
            if let Some(l) = leader.filter(|l| Some(*l) != not) {
                return (l, voters);
            }
            assert!(
                Instant::now() < deadline,
                "no leader other than {not:?}: {out}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// What the load acknowledged, and every error it saw.
#[derive(Default)]
struct Load {
    stop: AtomicBool,
    records: AtomicU64,
    /// Acknowledged AddTagsToStream calls: (key, value), in order.
    tags: Mutex<Vec<(String, String)>>,
    streams: Mutex<Vec<String>>,
    errors: Mutex<Vec<String>>,
}

/// PutRecord on `data` and, on the control plane, AddTagsToStream (40 keys in turn, each value
/// new) and (every 5th round) CreateStream, one after another until stopped.
async fn run_load(client: aws_sdk_kinesis::Client, load: Arc<Load>) {
    let mut i = 0u64;
    while !load.stop.load(Ordering::Relaxed) {
        i += 1;
        match client
            .put_record()
            .stream_name("data")
            .partition_key(format!("k{i}"))
            .data(Blob::new(format!("r{i}")))
            .send()
            .await
        {
            Ok(_) => {
                load.records.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => load
                .errors
                .lock()
                .unwrap()
                .push(format!("PutRecord r{i}: {}", e.message().unwrap_or("?"))),
        }
        let tag = (format!("t{}", i % 40), format!("v{i}"));
        match client
            .add_tags_to_stream()
            .stream_name("data")
            .tags(&tag.0, &tag.1)
            .send()
            .await
        {
            Ok(_) => load.tags.lock().unwrap().push(tag.clone()),
            Err(e) => load.errors.lock().unwrap().push(format!(
                "AddTagsToStream {tag:?}: {} {}",
                e.code().unwrap_or("?"),
                e.message().unwrap_or("?")
            )),
        }
        if i.is_multiple_of(5) {
            let name = format!("load-{i}");
            match client
                .create_stream()
                .stream_name(&name)
                .shard_count(1)
                .send()
                .await
            {
                Ok(_) => load.streams.lock().unwrap().push(name),
                Err(e) => load.errors.lock().unwrap().push(format!(
                    "CreateStream {name}: {} {}",
                    e.code().unwrap_or("?"),
                    e.message().unwrap_or("?")
                )),
            }
        }
    }
}

/// Waits until the load has acknowledged `n` more control-plane changes (tags).
async fn progress(load: &Load, n: usize) {
    let from = load.tags.lock().unwrap().len();
    let deadline = Instant::now() + Duration::from_secs(30);
    while load.tags.lock().unwrap().len() < from + n {
        assert!(
            Instant::now() < deadline,
            "the load made no progress: {:?}",
            load.errors.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_voters_lose_the_leader_under_load_and_a_voter_is_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let addrs: Vec<(u64, String)> = (1..=4)
        .map(|i| {
            let ip = format!("127.0.3.{i}");
            let port = free_port(&ip);
            (i, format!("{ip}:{port}"))
        })
        .collect();
    let list = addrs[..3]
        .iter()
        .map(|(i, a)| format!("{i}={a}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut voters = Voters {
        dir,
        addrs,
        procs: Vec::new(),
        list,
    };
    for id in 1..=3 {
        voters.start_voter(id);
    }
    let control = (1..=3)
        .map(|i| voters.addr(i))
        .collect::<Vec<_>>()
        .join(",");
    let _storage = Proc::start(
        &[
            "--role",
            "storage",
            "--control",
            &control,
            "--storage-listen",
            "127.0.3.11:0",
            "--admin-listen",
            "127.0.3.11:0",
        ],
        &voters.dir.path().join("storage"),
        &voters.master_key(),
        "registered as storage node",
    );
    let frontend = Proc::start(
        &[
            "--role",
            "frontend",
            "--control",
            &control,
            "--listen",
            "127.0.3.21:0",
            "--admin-listen",
            "127.0.3.21:0",
        ],
        &voters.dir.path().join("frontend"),
        &voters.master_key(),
        "levee listening on",
    );
    // The front-end does not verify signatures (no credentials file): any key signs.
    let key = ("AKIDEXAMPLE".to_owned(), "secret".to_owned());
    let kinesis = client_for(&frontend.addr("levee listening on"), &key);
    kinesis
        .create_stream()
        .stream_name("data")
        .shard_count(2)
        .send()
        .await
        .expect("CreateStream data");
    wait_active(&kinesis, "data").await;

    let load = Arc::new(Load::default());
    let task = tokio::spawn(run_load(kinesis.clone(), load.clone()));
    progress(&load, 5).await;

    // 1. Kill the leader: another is elected, the load goes on.
    let (first, _) = voters.leader(1, None);
    voters.kill(first);
    let survivor = (1..=3).find(|i| *i != first).expect("a survivor");
    let (second, _) = voters.leader(survivor, Some(first));
    assert_ne!(second, first);
    progress(&load, 10).await;

    // 2. Bring it back; it catches up and votes again: then losing another voter still
    // leaves a majority (the one that came back and the third).
    voters.start_voter(first);
    progress(&load, 5).await;
    voters.kill(second);
    let (third, _) = voters.leader(first, Some(second));
    progress(&load, 10).await;
    voters.start_voter(second);
    progress(&load, 5).await;

    // 3. Replace a voter: voter 4 (an id never used) is added, then a follower is removed and
    // killed for good.
    voters.start_voter(4);
    let out = voters.admin(third, &["add", "--id", "4", "--addr", &voters.addr(4)]);
    assert!(out.contains("voter 4 "), "{out}");
    let replaced = (1..=3).find(|i| *i != third).expect("a follower");
    let out = voters.admin(third, &["remove", "--id", &replaced.to_string()]);
    assert!(
        !out.contains(&format!("voter {replaced} ")),
        "voter {replaced} still votes: {out}"
    );
    voters.kill(replaced);
    progress(&load, 10).await;
    // The new set survives losing its leader too: voter 4 is one of the majority.
    let (leader, members) = voters.leader(4, None);
    assert_eq!(members.len(), 3, "{members:?}");
    assert!(members.contains(&4) && !members.contains(&replaced));
    voters.kill(leader);
    let via = *members
        .iter()
        .find(|i| **i != leader)
        .expect("a voter left");
    voters.leader(via, Some(leader));
    progress(&load, 10).await;

    load.stop.store(true, Ordering::Relaxed);
    task.await.expect("load task");
    let errors = load.errors.lock().unwrap().clone();
    assert!(errors.is_empty(), "errors reached the client: {errors:?}");

    // Nothing acknowledged is lost: every tag's last value, every stream and record is there.
    let mut want = std::collections::BTreeMap::new();
    for (k, v) in load.tags.lock().unwrap().iter() {
        want.insert(k.clone(), v.clone());
    }
    assert_eq!(all_tags(&kinesis).await, want, "tags");
    let streams: BTreeSet<String> = kinesis
        .list_streams()
        .limit(10_000)
        .send()
        .await
        .expect("ListStreams")
        .stream_names()
        .iter()
        .cloned()
        .collect();
    for s in load.streams.lock().unwrap().iter() {
        assert!(streams.contains(s), "acknowledged stream {s} lost");
    }
    let shards = shard_ids(&kinesis, "data").await;
    let read = read_all(&kinesis, "data", &shards).await.len() as u64;
    assert_eq!(read, load.records.load(Ordering::Relaxed), "records");

    // Voters that were down or behind never offered the front-end an older map than it had
    // (such a map would be refused as a version regression, and counted).
    let (code, metrics) = common::http_get(&frontend.addr("admin listening on"), "/metrics");
    assert_eq!(code, 200);
    let refused: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("levee_frontend_map_refused_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(refused, 0.0, "the front-end refused maps from the voters");
}

/// Every tag of `data`, following ListTagsForStream's pages.
async fn all_tags(client: &aws_sdk_kinesis::Client) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let mut start: Option<String> = None;
    loop {
        let page = client
            .list_tags_for_stream()
            .stream_name("data")
            .set_exclusive_start_tag_key(start.clone())
            .limit(10)
            .send()
            .await
            .expect("ListTagsForStream");
        for t in page.tags() {
            out.insert(t.key().to_owned(), t.value().unwrap_or_default().to_owned());
        }
        match (page.has_more_tags(), page.tags().last()) {
            (true, Some(last)) => start = Some(last.key().to_owned()),
            _ => return out,
        }
    }
}
