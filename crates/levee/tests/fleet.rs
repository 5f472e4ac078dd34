//! The roles as separate processes on 127.0.0.x: one control plane, three storage nodes and
//! three front-ends (`levee serve --role ...`), driven through every front-end with the AWS SDK
//! for Rust, with credentials configured (front-ends verify SigV4). Then static stability: the
//! control plane stopped, the data operations, SubscribeToShard and the describing operations
//! (ListShards, DescribeStream, DescribeStreamSummary) keep working through every front-end; every
//! front-end `kill -9`ed at once serves again from its persisted map within a second of its
//! restart; the same mass restart with the control plane up.

mod common;

use common::fleet::*;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_kinesis::error::ProvideErrorMetadata;
use aws_sdk_kinesis::types::{ShardIteratorType, StartingPosition, SubscribeToShardEventStream};
use aws_smithy_types::Blob;
use levee_protocol::ApiError;
use levee_rpc::control::{
    ControlCall, ControlHandler, ControlServer, ControlServerConfig, MapFeed, Registration,
    RemoteControl, RetryPolicy,
};
use levee_rpc::{Pool, PoolConfig};

type Events = aws_sdk_kinesis::primitives::event_stream::EventReceiver<
    SubscribeToShardEventStream,
    aws_sdk_kinesis::types::error::SubscribeToShardEventStreamError,
>;

/// Subscribes through `client` at LATEST, writes `data` to that shard through `writer`, and
/// returns once the subscription delivered it.
async fn subscribe_and_receive(
    client: &aws_sdk_kinesis::Client,
    writer: &aws_sdk_kinesis::Client,
    consumer: &str,
    stream: &str,
    (shard, first_key): (&str, &str),
    data: &str,
) {
    let mut events: Events = client
        .subscribe_to_shard()
        .consumer_arn(consumer)
        .shard_id(shard)
        .starting_position(
            StartingPosition::builder()
                .r#type(ShardIteratorType::Latest)
                .build()
                .expect("position"),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("SubscribeToShard: {}", e.message().unwrap_or_default()))
        .event_stream;
    // A record with the shard's first hash key as its explicit hash key lands in it.
    let req = writer
        .put_record()
        .stream_name(stream)
        .partition_key(data)
        .explicit_hash_key(first_key)
        .data(Blob::new(data.as_bytes()));
    req.send().await.expect("PutRecord for the subscription");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(received) = tokio::time::timeout(left, events.recv()).await else {
            panic!("{data} was not delivered");
        };
        let event = received.expect("event stream");
        match event {
            Some(SubscribeToShardEventStream::SubscribeToShardEvent(e)) => {
                if e.records()
                    .iter()
                    .any(|r| r.data().as_ref() == data.as_bytes())
                {
                    return;
                }
            }
            Some(_) => {}
            None => panic!("the subscription ended before {data} arrived"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_data_operation_through_every_frontend_including_a_reshard() {
    let fleet = Fleet::start();
    let c = fleet.clients();
    c[0].create_stream()
        .stream_name("f")
        .shard_count(6)
        .send()
        .await
        .expect("CreateStream");
    wait_active(&c[1], "f").await;
    // Shards are spread over the three storage nodes: each holds some of the stream.
    let mut want = Vec::new();
    for (i, client) in c.iter().enumerate() {
        for j in 0..10 {
            let data = format!("a-{i}-{j}");
            put(client, "f", &data).await;
            want.push(data);
        }
        put_batch(client, "f", &format!("b-{i}"), 50).await;
        want.extend((0..50).map(|j| format!("b-{i}-{j}")));
    }
    want.sort();
    let shards = shard_ids(&c[2], "f").await;
    assert_eq!(shards.len(), 6);
    for client in &c {
        assert_eq!(read_all(client, "f", &shards).await, want);
    }
    for i in 1..=3 {
        let shards_dir = fleet.dir.path().join(format!("storage-{i}/storage/shards"));
        let held = std::fs::read_dir(&shards_dir).map_or(0, |d| d.count());
        assert!(held >= 1, "storage node {i} holds no shard of 6");
    }
    // Each process says what it runs, and the storage nodes serve by a map they follow.
    for (p, role) in [
        (&fleet.control, "fleet: control plane"),
        (&fleet.storage[0], "fleet: storage"),
        (&fleet.frontends[0], "fleet: front-end"),
    ] {
        let (code, body) = common::http_get(&p.addr("admin listening on"), "/status.json");
        assert_eq!(code, 200);
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(v["role"], role);
        assert_eq!(v["ready"], true, "{body}");
    }
    // A split through one front-end; writes through the others land in the children.
    c[2].split_shard()
        .stream_name("f")
        .shard_to_split(&shards[0])
        .new_starting_hash_key((1u128 << 125).to_string())
        .send()
        .await
        .expect("SplitShard");
    wait_active(&c[0], "f").await;
    // Another front-end takes the new map a moment later (each follows the control plane on
    // its own): wait for it there.
    let deadline = Instant::now() + Duration::from_secs(5);
    let after = loop {
        let after = shard_ids(&c[1], "f").await;
        if after.len() == 8 || Instant::now() > deadline {
            break after;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(after.len(), 8, "{after:?}");
    for (i, client) in c.iter().enumerate() {
        put_batch(client, "f", &format!("c-{i}"), 50).await;
        want.extend((0..50).map(|j| format!("c-{i}-{j}")));
    }
    want.sort();
    for client in &c {
        assert_eq!(read_all(client, "f", &after).await, want);
    }
    // Nothing was written to the closed parent after the split.
    let parent_only = read_all(&c[0], "f", &shards[..1]).await;
    assert!(parent_only.iter().all(|d| !d.starts_with("c-")));
    // Enhanced fan-out through every front-end.
    let arn = stream_arn(&c[0], "f").await;
    let consumer = common::active_consumer(&c[1], &arn, "fan").await;
    let keys = shard_keys(&c[2], "f").await;
    let (shard, key) = keys.last().expect("a shard");
    for (i, client) in c.iter().enumerate() {
        let data = format!("s-{i}");
        subscribe_and_receive(client, &c[(i + 1) % 3], &consumer, "f", (shard, key), &data).await;
    }
}

/// Kills every front-end at once, restarts each on its address and data directory, and
/// returns how long each took from spawn to its first acknowledged PutRecord.
async fn mass_restart(fleet: &mut Fleet, stream: &str, round: &str) -> Vec<Duration> {
    for p in &mut fleet.frontends {
        // SAFETY: SIGKILL to our own child; all of them before any is waited on.
        unsafe { libc::kill(p.child.id() as i32, libc::SIGKILL) };
    }
    for p in &mut fleet.frontends {
        let _ = p.child.wait();
    }
    let mut took = Vec::new();
    for i in 0..fleet.frontends.len() {
        let started = Instant::now();
        fleet.frontends[i] = fleet.start_frontend(i);
        let client = fleet.client(i);
        put(&client, stream, &format!("{round}-{i}")).await;
        took.push(started.elapsed());
    }
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_stability_with_the_control_plane_stopped_and_mass_restarts() {
    let mut fleet = Fleet::start();
    let c = fleet.clients();
    c[0].create_stream()
        .stream_name("st")
        .shard_count(3)
        .send()
        .await
        .expect("CreateStream");
    wait_active(&c[0], "st").await;
    let arn = stream_arn(&c[0], "st").await;
    let consumer = common::active_consumer(&c[0], &arn, "fan").await;
    let shards = shard_ids(&c[0], "st").await;
    let keys = shard_keys(&c[0], "st").await;
    let mut want: Vec<String> = Vec::new();

    // The control plane goes away.
    fleet.control.kill();
    // Data operations keep working through every front-end for several times every lease
    // (300 ms), map snapshot period (1 s), control-plane retry deadline (5 s) and subscription
    // heartbeat (5 s); LEVEE_FLEET_STABILITY_SECS=600 runs the 10 minutes by hand.
    let secs = std::env::var("LEVEE_FLEET_STABILITY_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let until = Instant::now() + Duration::from_secs(secs);
    let mut round = 0;
    while Instant::now() < until {
        for (i, client) in c.iter().enumerate() {
            let data = format!("d-{round}-{i}");
            put(client, "st", &data).await;
            want.push(data);
            put_batch(client, "st", &format!("e-{round}-{i}"), 10).await;
            want.extend((0..10).map(|j| format!("e-{round}-{i}-{j}")));
            if round % 20 == 0 {
                assert_eq!(shard_keys(client, "st").await.len(), 3);
            }
        }
        round += 1;
    }
    want.sort();
    for client in &c {
        assert_eq!(read_all(client, "st", &shards).await, want);
    }
    for (i, client) in c.iter().enumerate() {
        let (shard, key) = &keys[i];
        let data = format!("s-{i}");
        subscribe_and_receive(client, client, &consumer, "st", (shard, key), &data).await;
        want.push(data);
    }
    // The describing operations answer from each front-end's map.
    for client in &c {
        assert_eq!(shard_keys(client, "st").await, keys);
        assert_eq!(shard_ids(client, "st").await, shards);
        let summary = client
            .describe_stream_summary()
            .stream_name("st")
            .send()
            .await
            .expect("DescribeStreamSummary without a control plane");
        let d = summary.stream_description_summary().expect("summary");
        assert_eq!(d.stream_status().as_str(), "ACTIVE");
        assert_eq!((d.open_shard_count(), d.consumer_count()), (3, Some(1)));
    }
    // Catalog changes wait, with a clear retryable error.
    let refused = c[1]
        .create_stream()
        .stream_name("new")
        .shard_count(1)
        .send()
        .await
        .expect_err("no control plane");
    assert_eq!(refused.code(), Some("InternalFailure"), "{refused:?}");
    assert!(
        refused
            .message()
            .unwrap_or_default()
            .contains("control plane is unavailable"),
        "{refused:?}"
    );

    // Every front-end killed at once, with the control plane still down: each serves from its
    // persisted map within a second of its restart.
    let took = mass_restart(&mut fleet, "st", "r1").await;
    want.extend((0..3).map(|i| format!("r1-{i}")));
    for (i, t) in took.iter().enumerate() {
        assert!(*t < Duration::from_secs(1), "front-end {i} took {t:?}");
    }
    let c = fleet.clients();
    want.sort();
    for client in &c {
        assert_eq!(read_all(client, "st", &shards).await, want);
    }

    // The control plane comes back on its address; the same mass restart.
    fleet.control = Proc::start(
        &[
            "--role",
            "control",
            "--control-listen",
            &fleet.control_addr.clone(),
            "--admin-listen",
            "127.0.0.2:0",
        ],
        &fleet.dir.path().join("control"),
        &fleet.master_key(),
        "control listening on",
    );
    c[2].create_stream()
        .stream_name("after")
        .shard_count(1)
        .send()
        .await
        .expect("CreateStream with the control plane back");
    let took = mass_restart(&mut fleet, "st", "r2").await;
    for (i, t) in took.iter().enumerate() {
        assert!(*t < Duration::from_secs(1), "front-end {i} took {t:?}");
    }
    let c = fleet.clients();
    wait_active(&c[0], "after").await;
    put(&c[1], "after", "x").await;
    want.extend((0..3).map(|i| format!("r2-{i}")));
    want.sort();
    assert_eq!(read_all(&c[2], "st", &shards).await, want);
}

/// A control-plane relay that forwards everything to the real control plane but can hold back
/// the delta feed (a poll then waits out its time and reports no change); snapshots still pass.
struct Relay {
    remote: Arc<RemoteControl>,
    hold: AtomicBool,
    /// Delta polls answered "no change" because the feed was held.
    held: AtomicUsize,
}

impl ControlHandler for Relay {
    fn call(
        &self,
        call: ControlCall,
    ) -> levee_frontend::backend::BoxFuture<Result<Vec<u8>, ApiError>> {
        let remote = self.remote.clone();
        Box::pin(async move { remote.call(&call).await })
    }
    fn consumer(
        &self,
        consumer_arn: String,
    ) -> levee_frontend::backend::BoxFuture<Result<levee_frontend::backend::ConsumerInfo, ApiError>>
    {
        let remote = self.remote.clone();
        Box::pin(async move { remote.consumer(&consumer_arn).await })
    }
    fn register(
        &self,
        node: Registration,
    ) -> levee_frontend::backend::BoxFuture<Result<(), ApiError>> {
        let remote = self.remote.clone();
        Box::pin(async move { remote.register(&node).await })
    }
}

struct RelayFeed(Arc<Relay>);

impl MapFeed for RelayFeed {
    fn snapshot(&self) -> levee_frontend::backend::BoxFuture<bytes::Bytes> {
        let relay = self.0.clone();
        Box::pin(async move { relay.remote.map_snapshot().await.unwrap_or_default() })
    }
    fn deltas(
        &self,
        after: u64,
        wait: Duration,
    ) -> levee_frontend::backend::BoxFuture<bytes::Bytes> {
        let relay = self.0.clone();
        Box::pin(async move {
            if relay.hold.load(Ordering::SeqCst) {
                relay.held.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(wait).await;
                return bytes::Bytes::new();
            }
            let frames = relay
                .remote
                .map_deltas(after, wait)
                .await
                .unwrap_or_default();
            if relay.hold.load(Ordering::SeqCst) && !frames.is_empty() {
                // Held while this poll was out: drop what it brought.
                relay.held.fetch_add(1, Ordering::SeqCst);
                return bytes::Bytes::new();
            }
            frames
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frontend_with_a_held_back_delta_feed_writes_into_the_right_child() {
    let mut fleet = Fleet::start();
    let c = fleet.clients();
    // A relay in front of the control plane for a fourth front-end.
    let control: std::net::SocketAddr = fleet.control_addr.parse().expect("addr");
    let remote = Arc::new(RemoteControl::new(
        Pool::new(PoolConfig::default()),
        vec![control],
        RetryPolicy::default(),
    ));
    let relay = Arc::new(Relay {
        remote,
        hold: AtomicBool::new(false),
        held: AtomicUsize::new(0),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.3:0")
        .await
        .expect("bind");
    let relay_addr = listener.local_addr().expect("addr").to_string();
    let server = ControlServer::with_maps(
        relay.clone(),
        Some(Arc::new(RelayFeed(relay.clone()))),
        ControlServerConfig::default(),
    );
    tokio::spawn(server.serve(listener, std::future::pending()));
    fleet.apis.push("127.0.0.24:0".into());
    fleet.admins.push("127.0.0.24:0".into());
    // No periodic snapshot within the test: only deltas, or a refresh a stale route asks for.
    let stale = fleet.start_frontend_via(3, &relay_addr, &["--map-snapshot-period-ms", "600000"]);
    fleet.apis[3] = stale.addr("levee listening on");
    fleet.admins[3] = stale.addr("admin listening on");
    fleet.frontends.push(stale);
    let f4 = fleet.client(3);

    c[0].create_stream()
        .stream_name("split")
        .shard_count(2)
        .send()
        .await
        .expect("CreateStream");
    wait_active(&c[0], "split").await;
    // The fourth front-end has the stream (through deltas), then its feed is held back.
    let deadline = Instant::now() + Duration::from_secs(10);
    while f4
        .put_record()
        .stream_name("split")
        .partition_key("warm")
        .data(Blob::new("warm"))
        .send()
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "the fourth front-end never saw the stream"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    relay.hold.store(true, Ordering::SeqCst);
    c[1].split_shard()
        .stream_name("split")
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key((1u128 << 125).to_string())
        .send()
        .await
        .expect("SplitShard");
    wait_active(&c[1], "split").await;
    // Through the held-back front-end, keys on both sides of the split point of the closed
    // parent: storage refuses the parent as stale, the front-end refreshes and retries.
    let mut placed = Vec::new();
    for (key, data) in [
        ("1", "low"),
        (((1u128 << 125) + 1).to_string().as_str(), "high"),
    ] {
        let out = f4
            .put_record()
            .stream_name("split")
            .partition_key(data)
            .explicit_hash_key(key)
            .data(Blob::new(data))
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutRecord {data}: {}", e.message().unwrap_or_default()));
        placed.push((data, out.shard_id().to_owned()));
    }
    assert_eq!(
        placed,
        vec![
            ("low", "shardId-000000000002".to_owned()),
            ("high", "shardId-000000000003".to_owned())
        ]
    );
    assert!(
        relay.held.load(Ordering::SeqCst) >= 1,
        "the delta feed was never held back"
    );
    // Nothing lost or misrouted: each child holds its record, the parent neither.
    let low = read_all(&c[2], "split", &["shardId-000000000002".to_owned()]).await;
    let high = read_all(&c[2], "split", &["shardId-000000000003".to_owned()]).await;
    let parent = read_all(&c[2], "split", &["shardId-000000000000".to_owned()]).await;
    assert_eq!(low, vec!["low".to_owned()]);
    assert_eq!(high, vec!["high".to_owned()]);
    assert!(
        !parent.iter().any(|d| d == "low" || d == "high"),
        "{parent:?}"
    );
}

/// A relay that serves `frames` instead of the real feed, to every map request, while set.
struct FaultyState {
    relay: Arc<Relay>,
    frames: std::sync::Mutex<Option<bytes::Bytes>>,
}

impl FaultyState {
    fn injected(&self) -> Option<bytes::Bytes> {
        self.frames.lock().expect("lock").clone()
    }
}

#[derive(Clone)]
struct FaultyFeed(Arc<FaultyState>);

impl std::ops::Deref for FaultyFeed {
    type Target = FaultyState;
    fn deref(&self) -> &FaultyState {
        &self.0
    }
}

impl MapFeed for FaultyFeed {
    fn snapshot(&self) -> levee_frontend::backend::BoxFuture<bytes::Bytes> {
        let this = self.clone();
        Box::pin(async move {
            match this.injected() {
                Some(frames) => frames,
                None => this.relay.remote.map_snapshot().await.unwrap_or_default(),
            }
        })
    }
    fn deltas(
        &self,
        after: u64,
        wait: Duration,
    ) -> levee_frontend::backend::BoxFuture<bytes::Bytes> {
        let this = self.clone();
        Box::pin(async move {
            match this.injected() {
                Some(frames) => frames,
                None => this
                    .relay
                    .remote
                    .map_deltas(after, wait)
                    .await
                    .unwrap_or_default(),
            }
        })
    }
}

/// A front-end's shard map as its `/status.json` reports it: (version, alarm messages).
fn map_status(admin: &str) -> (u64, Vec<String>) {
    let (code, body) = common::http_get(admin, "/status.json");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    let map = &v["shard_map"];
    let alarms = map["keeper"]["alarms"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| {
                    format!(
                        "{}: {}",
                        x["kind"].as_str().unwrap_or(""),
                        x["message"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    (map["version"].as_u64().expect("version"), alarms)
}

/// Polls until every front-end's map satisfies `ok`.
async fn until_every_frontend(fleet: &Fleet, what: &str, ok: impl Fn(u64, &[String]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    for p in &fleet.frontends {
        let admin = p.addr("admin listening on");
        loop {
            let (version, alarms) = map_status(&admin);
            if ok(version, &alarms) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: {admin} has {version} {alarms:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_maps_from_a_faulty_control_plane_are_refused_and_a_flipped_byte_is_found_at_boot() {
    let mut fleet = Fleet::start();
    let c = fleet.clients();
    c[0].create_stream()
        .stream_name("bad")
        .shard_count(4)
        .send()
        .await
        .expect("CreateStream");
    wait_active(&c[0], "bad").await;
    // Every front-end now follows a control plane that can turn faulty.
    let control: std::net::SocketAddr = fleet.control_addr.parse().expect("addr");
    let relay = Arc::new(Relay {
        remote: Arc::new(RemoteControl::new(
            Pool::new(PoolConfig::default()),
            vec![control],
            RetryPolicy::default(),
        )),
        hold: AtomicBool::new(false),
        held: AtomicUsize::new(0),
    });
    let feed = FaultyFeed(Arc::new(FaultyState {
        relay: relay.clone(),
        frames: std::sync::Mutex::new(None),
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.3:0")
        .await
        .expect("bind");
    let relay_addr = listener.local_addr().expect("addr").to_string();
    let server = ControlServer::with_maps(
        relay.clone(),
        Some(Arc::new(feed.clone())),
        ControlServerConfig::default(),
    );
    tokio::spawn(server.serve(listener, std::future::pending()));
    for i in 0..fleet.frontends.len() {
        fleet.frontends[i].kill();
        fleet.frontends[i] = fleet.start_frontend_via(i, &relay_addr, &[]);
    }
    // Wait for a settled map that every front-end has (registrations may still move it).
    let (good, live) = loop {
        let good = relay.remote.map_snapshot().await.expect("snapshot");
        let live = levee_map::codec::decode_map(&good).expect("decode");
        let v = live.version();
        until_every_frontend(&fleet, "the live map", |version, _| version >= v).await;
        let again = relay.remote.map_snapshot().await.expect("snapshot");
        if levee_map::codec::decode_map(&again)
            .expect("decode")
            .version()
            == v
        {
            break (good, live);
        }
    };
    let v = live.version();

    // A delta that leaves a hole in the hash space.
    let mut holey = (**live.stream("bad").expect("stream")).clone();
    holey.shards[1].hash_range.end -= 1;
    let delta = levee_map::MapDelta {
        from_version: v,
        to_version: v + 1,
        upserts: vec![holey],
        removals: Vec::new(),
        nodes: None,
        checksum: 0,
    };
    *feed.frames.lock().expect("lock") = Some(levee_map::codec::encode_delta(&delta).into());
    until_every_frontend(&fleet, "a refused hole", |version, alarms| {
        version == v
            && alarms
                .iter()
                .any(|a| a.starts_with("refused") && a.contains("gap or overlap"))
    })
    .await;
    for client in &c {
        put(client, "bad", "through-the-hole-alarm").await;
    }

    // A newer good map, then a version regression (the older snapshot again).
    *feed.frames.lock().expect("lock") = None;
    c[0].create_stream()
        .stream_name("newer")
        .shard_count(1)
        .send()
        .await
        .expect("CreateStream");
    wait_active(&c[0], "newer").await;
    let v2 = relay
        .remote
        .map_snapshot()
        .await
        .map(|b| levee_map::codec::decode_map(&b).expect("decode").version())
        .expect("snapshot");
    until_every_frontend(&fleet, "the newer map", |version, alarms| {
        version == v2 && alarms.is_empty()
    })
    .await;
    *feed.frames.lock().expect("lock") = Some(good);
    until_every_frontend(&fleet, "a refused regression", |version, alarms| {
        version == v2 && alarms.iter().any(|a| a.contains("version regression"))
    })
    .await;
    for client in &c {
        put(client, "newer", "through-the-regression-alarm").await;
    }

    // A flipped byte in a front-end's newest persisted generation: found at boot, the previous
    // generation loads, and the front-end serves.
    fleet.frontends[0].kill();
    let map_dir = fleet.dir.path().join("frontend-1/map");
    let mut gens: Vec<PathBuf> = std::fs::read_dir(&map_dir)
        .expect("map dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("gen-"))
        })
        .collect();
    gens.sort();
    let newest = gens.last().expect("a generation").clone();
    let mut bytes = std::fs::read(&newest).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    std::fs::write(&newest, bytes).expect("write");
    fleet.frontends[0] = fleet.start_frontend_via(0, &relay_addr, &[]);
    let admin = fleet.frontends[0].addr("admin listening on");
    let (code, body) = common::http_get(&admin, "/status.json");
    assert_eq!(code, 200);
    let status: serde_json::Value = serde_json::from_str(&body).expect("json");
    let boot = &status["shard_map"]["keeper"]["boot"];
    let corrupt = boot["corrupt"].as_array().expect("corrupt list");
    assert_eq!(corrupt.len(), 1, "{boot}");
    assert!(boot["loaded"].as_u64().is_some_and(|l| l < v2), "{boot}");
    put(&fleet.client(0), "bad", "after-the-flipped-byte").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_past_a_cell_cap_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let control = Proc::start(
        &[
            "--role",
            "control",
            "--control-listen",
            "127.0.0.2:0",
            "--admin-listen",
            "127.0.0.2:0",
            "--storage-nodes-per-cell-max",
            "2",
            "--frontends-per-cell-max",
            "1",
        ],
        &dir.path().join("control"),
        &dir.path().join("master.key"),
        "control listening on",
    );
    let addr: std::net::SocketAddr = control.addr("control listening on").parse().expect("addr");
    let remote = RemoteControl::new(
        Pool::new(PoolConfig::default()),
        vec![addr],
        RetryPolicy::default(),
    );
    let node = |id: u64, storage: bool, cell: &str| Registration {
        id,
        role: if storage {
            levee_map::NodeRole::Storage
        } else {
            levee_map::NodeRole::Frontend
        },
        address: format!("127.0.0.{}:4592", 10 + id),
        cell: cell.into(),
        admin: format!("127.0.0.{}:4590", 10 + id),
    };
    for id in [1, 2] {
        remote
            .register(&node(id, true, "cell-1"))
            .await
            .expect("under the cap");
    }
    // Renewing a registered node is not a new node.
    remote
        .register(&node(2, true, "cell-1"))
        .await
        .expect("renewal");
    let refused = remote
        .register(&node(3, true, "cell-1"))
        .await
        .expect_err("over the cap");
    assert_eq!(refused.kind.type_name(), "LimitExceededException");
    assert_eq!(
        refused.message,
        "Cell cell-1 already has 2 storage nodes, its cap; node 3 was not registered. Add capacity as a new cell."
    );
    // Another cell has its own caps; front-ends have theirs.
    remote
        .register(&node(3, true, "cell-2"))
        .await
        .expect("another cell");
    remote
        .register(&node(4, false, "cell-1"))
        .await
        .expect("first front-end");
    let refused = remote
        .register(&node(5, false, "cell-1"))
        .await
        .expect_err("front-end cap");
    assert!(
        refused.message.contains("1 frontend nodes"),
        "{}",
        refused.message
    );
    // A bad address is refused before it reaches the catalog.
    let mut bad = node(6, true, "cell-2");
    bad.address = "not-an-address".into();
    let refused = remote.register(&bad).await.expect_err("bad address");
    assert_eq!(refused.kind.type_name(), "InvalidArgumentException");
}
