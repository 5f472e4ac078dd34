use std::collections::BTreeSet;
use std::time::Instant;

use levee_frontend::backend::MapHolder;
use levee_frontend::map_follow::{
    spawn_follower, wait_settled, FollowConfig, HoldPolicy, MapKeeper, Offered,
};
use levee_map::codec::{decode_frames, decode_map, Frame};
use levee_map::{even_split, GroupId, NodeId, ShardId, ShardRoute, StreamRoute, StreamState};
use levee_storage::vfs::{FaultOp, FaultyVfs, OsVfs};

use super::*;

fn stream(name: &str, n: u32) -> StreamRoute {
    StreamRoute {
        name: name.into(),
        uid: 1,
        state: StreamState::Active,
        shards: even_split(n)
            .into_iter()
            .enumerate()
            .map(|(i, r)| ShardRoute {
                shard_id: ShardId(i as u32),
                uid: 100 + i as u64,
                hash_range: r,
                open: true,
                group: GroupId(1),
                node: NodeId(1 + i as u64 % 3),
                epoch: 1,
                parent: None,
                adjacent_parent: None,
                created_ms: 0,
                closed_ms: None,
            })
            .collect(),
        policies: Default::default(),
        facts: Default::default(),
    }
}

fn map(version: u64, streams: Vec<StreamRoute>) -> ShardMap {
    ShardMap::build(version, streams).unwrap()
}

fn fast() -> FollowConfig {
    FollowConfig {
        poll_wait: Duration::from_secs(5),
        snapshot_period: Duration::from_secs(60),
        backoff_first: Duration::from_millis(5),
        backoff_max: Duration::from_millis(40),
    }
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn versions(feed: &[u8]) -> Vec<(u64, u64)> {
    decode_frames(feed)
        .unwrap()
        .into_iter()
        .map(|f| match f {
            Frame::Delta(d) => (d.from_version, d.to_version),
            Frame::Snapshot(m) => (u64::MAX, m.version()),
        })
        .collect()
}

#[test]
fn the_publisher_serves_deltas_after_a_version_or_a_snapshot() {
    let p = MapPublisher::new(ShardMap::empty());
    assert!(p.feed_after(0).is_empty());
    for v in 1..=3 {
        assert!(p.publish(map(v, vec![stream("a", v as u32)])));
    }
    assert!(!p.publish(map(2, vec![])), "older versions are ignored");
    assert_eq!(versions(&p.feed_after(0)), vec![(0, 1), (1, 2), (2, 3)]);
    assert_eq!(versions(&p.feed_after(2)), vec![(2, 3)]);
    assert!(p.feed_after(3).is_empty());
    // One ahead of it (a follower that took a newer map from another voter): nothing, never an
    // older map.
    assert!(p.feed_after(7).is_empty());
    assert_eq!(decode_map(&p.snapshot()).unwrap(), *p.latest());
    // The history is bounded: far behind gets the snapshot.
    for v in 4..(5 + MAP_DELTA_HISTORY_MAX as u64) {
        p.publish(map(v, vec![stream("a", 1 + v as u32 % 5)]));
    }
    assert_eq!(versions(&p.feed_after(1)), vec![(u64::MAX, p.version())]);
    assert_eq!(versions(&p.feed_after(0)).len(), 1);
    let behind = p.version() - MAP_DELTA_HISTORY_MAX as u64;
    assert_eq!(versions(&p.feed_after(behind)).len(), MAP_DELTA_HISTORY_MAX);
}

#[tokio::test]
async fn a_long_poll_wakes_on_publish_and_ends_empty_at_its_deadline() {
    let p = Arc::new(MapPublisher::new(ShardMap::empty()));
    let started = Instant::now();
    assert!(p.poll(0, Duration::from_millis(30)).await.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(30));
    let waiter = tokio::spawn({
        let p = p.clone();
        async move { p.poll(0, Duration::from_secs(30)).await }
    });
    // Publish once the poll is waiting (it holds a long-poll permit then).
    until("the poll to wait", || {
        p.long_polls.available_permits() == MAP_LONG_POLLS_MAX - 1
    })
    .await;
    p.publish(map(1, vec![stream("a", 2)]));
    let feed = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("woken by the publish")
        .unwrap();
    assert_eq!(versions(&feed), vec![(0, 1)]);
}

/// A follower ahead of this publisher (it took a newer map from another voter) is never
/// offered an older map: no snapshot, the poll is held until the publisher passes it, and a
/// snapshot asked "at least" its version waits, then answers only once caught up.
#[tokio::test]
async fn a_follower_ahead_of_the_publisher_is_not_offered_an_older_map() {
    let p = Arc::new(MapPublisher::new(ShardMap::empty()));
    p.publish(map(3, vec![stream("a", 2)]));
    assert!(p.feed_after(5).is_empty(), "an older map was offered");
    let started = Instant::now();
    assert!(p
        .poll_admitted(5, Duration::from_millis(50))
        .await
        .is_empty());
    assert!(
        started.elapsed() >= Duration::from_millis(50),
        "the poll was not held"
    );
    let feed = crate::fleet::PublisherFeed(p.clone());
    assert!(
        levee_rpc::control::MapFeed::snapshot_at_least(&feed, 5)
            .await
            .is_none(),
        "a snapshot older than the asker's was offered"
    );
    let waiter = tokio::spawn({
        let p = p.clone();
        async move { p.poll_admitted(5, Duration::from_secs(30)).await }
    });
    p.publish(map(4, vec![stream("a", 2)]));
    p.publish(map(6, vec![stream("a", 2), stream("b", 1)]));
    let fed = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("woken once past the follower")
        .unwrap();
    // Version 5 is not one this publisher had: the follower gets the snapshot of 6.
    assert_eq!(decode_map(&fed).expect("snapshot").version(), 6);
    let snap = levee_rpc::control::MapFeed::snapshot_at_least(&feed, 5)
        .await
        .expect("caught up");
    assert_eq!(decode_map(&snap).expect("snapshot").version(), 6);
}

#[tokio::test]
async fn long_polls_past_the_cap_answer_at_once() {
    let p = Arc::new(MapPublisher::new(ShardMap::empty()));
    let mut waiters = Vec::new();
    for _ in 0..MAP_LONG_POLLS_MAX {
        let p = p.clone();
        waiters.push(tokio::spawn(async move {
            p.poll(0, Duration::from_secs(30)).await
        }));
    }
    until("every permit taken", || {
        p.long_polls.available_permits() == 0
    })
    .await;
    let started = Instant::now();
    assert!(p.poll(0, Duration::from_secs(30)).await.is_empty());
    assert!(started.elapsed() < Duration::from_secs(5));
    p.publish(map(1, vec![]));
    for w in waiters {
        assert!(!w.await.unwrap().is_empty());
    }
}

fn keeper_on(vfs: Arc<dyn Vfs>, dir: &std::path::Path) -> Arc<MapKeeper> {
    let disk = VfsMapDisk::open(vfs, dir.join("map")).unwrap();
    Arc::new(MapKeeper::new(
        Arc::new(MapHolder::default()),
        Arc::new(disk),
        HoldPolicy::default(),
    ))
}

/// Boot loads a persisted 1,000-shard map well within 100 ms.
#[test]
fn boot_loads_a_thousand_shard_map_within_100_ms() {
    let dir = tempfile::tempdir().unwrap();
    let k = keeper_on(Arc::new(OsVfs), dir.path());
    let streams: Vec<StreamRoute> = (0..10).map(|i| stream(&format!("s{i}"), 100)).collect();
    let big = map(7, streams);
    k.offer(big.clone(), &BTreeSet::new()).unwrap();
    let k2 = keeper_on(Arc::new(OsVfs), dir.path());
    let started = Instant::now();
    let report = k2.boot();
    let took = started.elapsed();
    eprintln!(
        "boot loaded 1,000 shards ({} bytes) in {} µs",
        levee_map::codec::encode_map(&big).len(),
        report.took_us
    );
    assert_eq!(report.loaded, Some(7));
    assert!(k2.ready());
    assert_eq!(*k2.holder().current(), big);
    assert!(took < Duration::from_millis(100), "boot took {took:?}");
}

#[test]
fn a_damaged_generation_on_disk_falls_back_and_two_mean_not_ready() {
    let dir = tempfile::tempdir().unwrap();
    let k = keeper_on(Arc::new(OsVfs), dir.path());
    for v in 1..=3 {
        k.offer(map(v, vec![stream("a", v as u32)]), &BTreeSet::new())
            .unwrap();
    }
    let gen = |v: u64| dir.path().join("map").join(format!("gen-{v:020}"));
    assert!(!gen(1).exists() && gen(2).exists() && gen(3).exists());
    // Flip one byte in the middle of the newest generation.
    let mut bytes = std::fs::read(gen(3)).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(gen(3), &bytes).unwrap();
    let k2 = keeper_on(Arc::new(OsVfs), dir.path());
    assert_eq!(k2.boot().loaded, Some(2));
    assert!(k2.ready());
    std::fs::write(gen(2), b"not a map").unwrap();
    let k3 = keeper_on(Arc::new(OsVfs), dir.path());
    let r = k3.boot();
    assert_eq!((r.loaded, r.corrupt.len()), (None, 2));
    assert!(!k3.ready());
    assert!(k3
        .status()
        .not_ready_reason
        .unwrap()
        .contains("no valid persisted shard map"));
}

/// ENOSPC on write, EMFILE on create, EIO on fsync: the live map keeps routing, the alarm is
/// raised, and the follower's retry succeeds once the fault is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persist_faults_leave_the_live_map_and_are_retried() {
    for (op, at, errno) in [
        (FaultOp::Write, 1, libc::ENOSPC),
        (FaultOp::Write, 0, libc::EMFILE),
        (FaultOp::Sync, 0, libc::EIO),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let vfs = Arc::new(FaultyVfs::new());
        let k = keeper_on(vfs.clone(), dir.path());
        let p = Arc::new(MapPublisher::new(map(1, vec![stream("a", 2)])));
        let mut settled = spawn_follower(k.clone(), Arc::new(LocalSource(p.clone())), fast());
        assert!(wait_settled(&mut settled, 1, Duration::from_secs(10)).await);
        vfs.arm(op, at, errno, true);
        p.publish(map(2, vec![stream("a", 4)]));
        until("two failed attempts", || settled.borrow().failures >= 2).await;
        assert!(vfs.fired());
        assert_eq!(k.holder().current().version(), 1, "{op:?} {errno}");
        let st = k.status();
        let alarm = st.alarms.iter().find(|a| a.kind == "persist").unwrap();
        assert!(
            alarm.message.contains(&format!("os error {errno}")),
            "{}",
            alarm.message
        );
        vfs.clear();
        // The swap and the alarm's clearing are two steps: await both.
        until("the retry", || {
            k.holder().current().version() == 2 && k.status().alarms.is_empty()
        })
        .await;
        assert_eq!(k.status().generations, vec![2, 1]);
    }
}

/// A hole in the hash space and a version regression from a faulty control plane: refused,
/// alarmed, the live map keeps routing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_maps_from_the_source_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let k = keeper_on(Arc::new(OsVfs), dir.path());
    let p = Arc::new(MapPublisher::new(map(5, vec![stream("a", 2)])));
    let mut settled = spawn_follower(k.clone(), Arc::new(LocalSource(p.clone())), fast());
    assert!(wait_settled(&mut settled, 5, Duration::from_secs(10)).await);
    // The faulty control plane's publisher is replaced by one at version 3.
    let faulty = Arc::new(MapPublisher::new(map(3, vec![stream("a", 8)])));
    let k2 = k.clone();
    let mut settled2 = spawn_follower(k2, Arc::new(LocalSource(faulty)), fast());
    until("a refusal", || settled2.borrow().failures >= 1).await;
    assert_eq!(k.holder().current().version(), 5);
    let alarms = k.status().alarms;
    assert!(
        alarms
            .iter()
            .any(|a| a.kind == "refused" && a.message.contains("version regression")),
        "{alarms:?}"
    );
    let _ = wait_settled(&mut settled2, 99, Duration::from_millis(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_source_follows_a_running_node_and_approve_swaps_a_held_map() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = crate::config::ServeConfig {
        data_dir: dir.path().join("node"),
        master_key_file: dir.path().join("master.key"),
        ..crate::config::ServeConfig::default()
    };
    let node = crate::node::Node::start(cfg.clone(), true).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin_addr = listener.local_addr().unwrap();
    let prom = metrics_exporter_prometheus::PrometheusBuilder::new()
        .build_recorder()
        .handle();
    let shared = Arc::new(crate::admin::Shared::new(cfg, prom, admin_addr, None));
    let _ = shared.node.set(node.clone());
    tokio::spawn(crate::admin::serve(listener, shared.clone()));
    // A second front-end, elsewhere, following the node's control plane over HTTP.
    let remote = keeper_on(Arc::new(OsVfs), &dir.path().join("remote"));
    let source = HttpSource {
        base: format!("http://{admin_addr}"),
        timeout: Duration::from_secs(5),
    };
    let mut settled = spawn_follower(remote.clone(), Arc::new(source), fast());
    let streams: Vec<StreamRoute> = (0..4).map(|i| stream(&format!("s{i}"), 4)).collect();
    node.publisher.publish(map(10, streams.clone()));
    assert!(wait_settled(&mut settled, 10, Duration::from_secs(10)).await);
    assert_eq!(*remote.holder().current(), *node.publisher.latest());
    node.publisher.publish(map(11, streams[..3].to_vec()));
    assert!(wait_settled(&mut settled, 11, Duration::from_secs(10)).await);
    assert_eq!(remote.holder().current().version(), 11);
    // A change removing 3 of 3 streams at once is held by both front-ends.
    node.publisher.publish(map(12, vec![]));
    assert!(wait_settled(&mut settled, 12, Duration::from_secs(10)).await);
    assert_eq!(remote.status().held_version, Some(12));
    assert_eq!(remote.holder().current().version(), 11);
    node.map_barrier().await;
    assert_eq!(node.keeper.status().held_version, Some(12));
    assert_eq!(node.maps.current().version(), 11);
    // The status page shows it, with the command that approves it.
    let st = crate::admin::status::collect(&shared);
    assert_eq!(st.shard_map.keeper.as_ref().unwrap().held_version, Some(12));
    let html = crate::admin::status::html(&st);
    assert!(
        html.contains("map alarm <b>held</b>") && html.contains("approve-map 12"),
        "{html}"
    );
    // The operator approves it on the node's admin listener.
    let url = format!("http://{admin_addr}/map/approve?version=12");
    let (code, body) =
        crate::admin::client::request("POST", &url, "text/plain", b"", Duration::from_secs(5))
            .await
            .unwrap();
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(node.maps.current().version(), 12);
    assert_eq!(node.keeper.status().held_version, None);
    let (code, body) =
        crate::admin::client::request("POST", &url, "text/plain", b"", Duration::from_secs(5))
            .await
            .unwrap();
    assert_eq!(code, 409);
    assert!(String::from_utf8_lossy(&body).contains("no shard map is held"));
    // The remote one still holds it (approval is per front-end).
    assert_eq!(remote.approve(12), Ok(12));
    assert!(matches!(
        remote.offer(map(12, vec![]), &BTreeSet::new()),
        Ok(Offered::Unchanged(12))
    ));
}

#[tokio::test]
async fn admitted_long_polls_are_held_past_the_admin_cap() {
    // The control listener admits its own polls: every one waits for the change, none is
    // answered "nothing new" at once (which would make its follower poll again at once).
    let p = Arc::new(MapPublisher::new(ShardMap::empty()));
    let waiters: Vec<_> = (0..MAP_LONG_POLLS_MAX * 4)
        .map(|_| {
            let p = p.clone();
            tokio::spawn(async move { p.poll_admitted(0, Duration::from_secs(30)).await })
        })
        .collect();
    until("every poll waiting", || {
        p.version.receiver_count() == MAP_LONG_POLLS_MAX * 4
    })
    .await;
    assert!(waiters.iter().all(|w| !w.is_finished()));
    assert_eq!(p.long_polls.available_permits(), MAP_LONG_POLLS_MAX);
    p.publish(map(1, vec![stream("a", 1)]));
    for w in waiters {
        let feed = tokio::time::timeout(Duration::from_secs(5), w)
            .await
            .expect("woken by the publish")
            .unwrap();
        assert_eq!(versions(&feed), vec![(0, 1)]);
    }
}
