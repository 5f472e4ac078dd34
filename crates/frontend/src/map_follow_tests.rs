use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use levee_map::{even_split, GroupId, ShardId, ShardRoute, StreamRoute};

use super::*;

/// Generations in memory; writes fail while `fail` is set.
#[derive(Default)]
struct MemDisk {
    files: Mutex<BTreeMap<u64, Vec<u8>>>,
    fail: AtomicBool,
    writes: AtomicU64,
}

impl MapDisk for MemDisk {
    fn generations(&self) -> io::Result<Vec<u64>> {
        Ok(self.files.lock().unwrap().keys().copied().collect())
    }
    fn write(&self, version: u64, bytes: &[u8]) -> io::Result<()> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(28)); // ENOSPC
        }
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.files.lock().unwrap().insert(version, bytes.to_vec());
        Ok(())
    }
    fn read(&self, version: u64) -> io::Result<Vec<u8>> {
        self.files
            .lock()
            .unwrap()
            .get(&version)
            .cloned()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }
    fn remove(&self, version: u64) -> io::Result<()> {
        self.files.lock().unwrap().remove(&version);
        Ok(())
    }
    fn location(&self) -> String {
        "memory".into()
    }
}

fn stream(name: &str, n: u32, node: u64, state: StreamState) -> StreamRoute {
    StreamRoute {
        name: name.into(),
        uid: 1,
        state,
        shards: even_split(n)
            .into_iter()
            .enumerate()
            .map(|(i, r)| ShardRoute {
                shard_id: ShardId(i as u32),
                uid: 100 + i as u64,
                hash_range: r,
                open: true,
                group: GroupId(1),
                node: NodeId(node + i as u64 % 2),
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

fn active(name: &str, n: u32) -> StreamRoute {
    stream(name, n, 1, StreamState::Active)
}

fn map(version: u64, streams: Vec<StreamRoute>) -> ShardMap {
    ShardMap::build(version, streams).unwrap()
}

fn keeper(disk: Arc<MemDisk>) -> Arc<MapKeeper> {
    Arc::new(MapKeeper::new(
        Arc::new(MapHolder::default()),
        disk,
        HoldPolicy::default(),
    ))
}

#[test]
fn accepted_maps_are_persisted_keeping_two_generations() {
    let disk = Arc::new(MemDisk::default());
    let k = keeper(disk.clone());
    assert!(!k.ready());
    for v in 1..=4 {
        let m = map(v, vec![active("a", v as u32)]);
        assert_eq!(k.offer(m, &BTreeSet::new()).unwrap(), Offered::Accepted(v));
        assert_eq!(k.holder().current().version(), v);
    }
    assert!(k.ready());
    assert_eq!(disk.generations().unwrap(), vec![3, 4]);
    assert_eq!(k.status().generations, vec![4, 3]);
    // The persisted bytes are exactly the live map.
    let back = codec::decode_map(&disk.read(4).unwrap()).unwrap();
    assert_eq!(&back, &*k.holder().current());
    // The same map again changes nothing and writes nothing.
    let writes = disk.writes.load(Ordering::SeqCst);
    let again = map(4, vec![active("a", 4)]);
    assert_eq!(
        k.offer(again, &BTreeSet::new()).unwrap(),
        Offered::Unchanged(4)
    );
    assert_eq!(disk.writes.load(Ordering::SeqCst), writes);
}

#[test]
fn regressions_and_conflicting_versions_are_refused_and_the_live_map_stays() {
    let k = keeper(Arc::default());
    k.offer(map(5, vec![active("a", 2)]), &BTreeSet::new())
        .unwrap();
    let err = k
        .offer(map(4, vec![active("a", 3)]), &BTreeSet::new())
        .unwrap_err();
    assert!(err.to_string().contains("version regression"), "{err}");
    let err = k
        .offer(map(5, vec![active("a", 3)]), &BTreeSet::new())
        .unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");
    assert_eq!(k.holder().current().version(), 5);
    assert_eq!(k.holder().current().stream("a").unwrap().shards.len(), 2);
}

#[test]
fn a_feed_with_a_hole_or_damage_is_refused() {
    let base = map(1, vec![active("a", 4)]);
    let mut bad = active("a", 4);
    bad.shards[1].hash_range.end -= 1;
    // A delta whose stream has a hole: apply() validates it.
    let delta = MapDelta {
        from_version: 1,
        to_version: 2,
        upserts: vec![bad],
        removals: vec![],
        nodes: None,
        checksum: 0,
    };
    let err = build(&base, &codec::encode_delta(&delta)).unwrap_err();
    assert!(err.contains("gap or overlap"), "{err}");
    // A flipped byte in a good feed.
    let good = map(2, vec![active("a", 8)]);
    let mut bytes = codec::encode_delta(&base.diff(&good));
    let n = bytes.len();
    bytes[n / 2] ^= 0x40;
    assert!(build(&base, &bytes).unwrap_err().contains("decoding"));
    // And the good feed builds the next map.
    let feed = codec::encode_delta(&base.diff(&good));
    assert_eq!(build(&base, &feed).unwrap().unwrap().0, good);
    assert!(build(&base, &[]).unwrap().is_none());
}

use levee_map::MapDelta;

#[test]
fn mass_removals_are_held_until_approved() {
    let disk = Arc::new(MemDisk::default());
    let k = keeper(disk.clone());
    let streams: Vec<StreamRoute> = (0..4).map(|i| active(&format!("s{i}"), 4)).collect();
    k.offer(map(1, streams.clone()), &BTreeSet::new()).unwrap();
    // Removing one of four streams (4 of 16 shards, 25 %) is not over the threshold.
    let three = map(2, streams[1..].to_vec());
    assert_eq!(
        k.offer(three, &BTreeSet::new()).unwrap(),
        Offered::Accepted(2)
    );
    // Removing two of the remaining three (8 of 12) is held.
    let one = map(3, streams[3..].to_vec());
    let held = k.offer(one.clone(), &BTreeSet::new()).unwrap();
    assert!(matches!(held, Offered::Held { version: 3, .. }), "{held:?}");
    assert_eq!(
        k.holder().current().version(),
        2,
        "the live map keeps routing"
    );
    assert_eq!(
        disk.generations().unwrap(),
        vec![1, 2],
        "a held map is not persisted"
    );
    let st = k.status();
    assert_eq!(st.held_version, Some(3));
    assert!(st
        .alarms
        .iter()
        .any(|a| a.kind == "held" && a.message.contains("approve-map 3")));
    // New changes build on the held map.
    assert_eq!(k.base().version(), 3);
    // Approving the wrong version fails; the right one swaps it in and clears the alarm.
    assert!(k.approve(9).unwrap_err().contains("is not held"));
    assert_eq!(k.approve(3).unwrap(), 3);
    assert_eq!(k.holder().current().version(), 3);
    let st = k.status();
    assert_eq!(st.held_version, None);
    assert!(st.alarms.is_empty(), "{:?}", st.alarms);
    assert_eq!(disk.generations().unwrap(), vec![2, 3]);
    assert!(k.approve(3).unwrap_err().contains("no shard map is held"));
}

#[test]
fn a_newer_harmless_map_replaces_a_held_one() {
    let k = keeper(Arc::default());
    let streams: Vec<StreamRoute> = (0..4).map(|i| active(&format!("s{i}"), 4)).collect();
    k.offer(map(1, streams.clone()), &BTreeSet::new()).unwrap();
    let held = k.offer(map(2, vec![]), &BTreeSet::new()).unwrap();
    assert!(matches!(held, Offered::Held { .. }));
    // The control plane comes back to its senses: version 3 has everything again.
    assert_eq!(
        k.offer(map(3, streams), &BTreeSet::new()).unwrap(),
        Offered::Accepted(3)
    );
    assert_eq!(k.status().held_version, None);
    assert!(k.status().alarms.is_empty());
}

#[test]
fn deliberate_deletions_and_small_maps_are_never_held() {
    let k = keeper(Arc::default());
    let streams: Vec<StreamRoute> = (0..2).map(|i| active(&format!("s{i}"), 8)).collect();
    k.offer(map(1, streams.clone()), &BTreeSet::new()).unwrap();
    // DeleteStream: DELETING first, then gone — in one feed, as a follower catching up sees it.
    let mut deleting = streams[0].clone();
    deleting.state = StreamState::Deleting;
    let v2 = map(2, vec![deleting, streams[1].clone()]);
    let v3 = map(3, vec![streams[1].clone()]);
    let base = k.base();
    let mut feed = codec::encode_delta(&base.diff(&v2));
    feed.extend(codec::encode_delta(&v2.diff(&v3)));
    let (candidate, intended) = build(&base, &feed).unwrap().unwrap();
    assert!(intended.contains("s0"));
    assert_eq!(k.offer(candidate, &intended).unwrap(), Offered::Accepted(3));
    // The same removal without the DELETING step is held...
    let k2 = keeper(Arc::default());
    k2.offer(map(1, streams.clone()), &BTreeSet::new()).unwrap();
    assert!(matches!(
        k2.offer(map(2, vec![streams[1].clone()]), &BTreeSet::new())
            .unwrap(),
        Offered::Held { .. }
    ));
    // ...but not in a small map: one node, one stream of a few shards.
    let k3 = keeper(Arc::default());
    k3.offer(map(1, vec![active("only", 2)]), &BTreeSet::new())
        .unwrap();
    assert_eq!(
        k3.offer(map(2, vec![]), &BTreeSet::new()).unwrap(),
        Offered::Accepted(2)
    );
}

#[test]
fn losing_a_node_counts_even_when_few_shards_go() {
    let on = |name: &str, n: u32, node: u64| {
        let mut s = active(name, n);
        for sh in &mut s.shards {
            sh.node = NodeId(node);
        }
        s
    };
    // 14 shards on node 1, 2 on node 2.
    let live = map(1, vec![on("a", 14, 1), on("b", 2, 2)]);
    // Moving b to node 1 removes no shard and loses no node that still has shards elsewhere.
    let moved = map(2, vec![on("a", 14, 1), on("b", 2, 1)]);
    let r = removal(&live, &moved, &BTreeSet::new());
    assert_eq!((r.removed_shards, r.live_nodes, r.removed_nodes), (0, 2, 0));
    assert!(r.hold_reason(&HoldPolicy::default()).is_none());
    // Dropping b removes 2 of 16 shards (12.5 %) but one of two nodes (50 %): held.
    let r = removal(&live, &map(3, vec![on("a", 14, 1)]), &BTreeSet::new());
    assert_eq!((r.removed_shards, r.removed_nodes), (2, 1));
    assert!(r.hold_reason(&HoldPolicy::default()).is_some());
}

#[test]
fn a_failed_persist_leaves_the_live_map_and_succeeds_on_retry() {
    let disk = Arc::new(MemDisk::default());
    let k = keeper(disk.clone());
    k.offer(map(1, vec![active("a", 2)]), &BTreeSet::new())
        .unwrap();
    disk.fail.store(true, Ordering::SeqCst);
    let err = k
        .offer(map(2, vec![active("a", 3)]), &BTreeSet::new())
        .unwrap_err();
    assert!(
        matches!(err, OfferError::Persist { version: 2, .. }),
        "{err}"
    );
    assert_eq!(k.holder().current().version(), 1);
    assert_eq!(disk.generations().unwrap(), vec![1]);
    disk.fail.store(false, Ordering::SeqCst);
    assert_eq!(
        k.offer(map(2, vec![active("a", 3)]), &BTreeSet::new())
            .unwrap(),
        Offered::Accepted(2)
    );
}

#[test]
fn boot_loads_the_newest_valid_generation_and_falls_back() {
    let disk = Arc::new(MemDisk::default());
    let k = keeper(disk.clone());
    for v in 1..=3 {
        k.offer(map(v, vec![active("a", v as u32)]), &BTreeSet::new())
            .unwrap();
    }
    // A clean boot loads the newest.
    let k2 = keeper(disk.clone());
    let r = k2.boot();
    assert_eq!(r.loaded, Some(3));
    assert!(k2.ready());
    assert_eq!(k2.holder().current().stream("a").unwrap().shards.len(), 3);
    // A flipped byte in the newest: the previous one is loaded, and the damage reported.
    disk.files.lock().unwrap().get_mut(&3).unwrap()[40] ^= 1;
    let k3 = keeper(disk.clone());
    let r = k3.boot();
    assert_eq!(r.loaded, Some(2));
    assert_eq!(r.corrupt.len(), 1);
    assert!(k3.ready());
    // Both damaged: not ready, with the reason; the holder keeps the empty map.
    disk.files.lock().unwrap().get_mut(&2).unwrap().truncate(10);
    let k4 = keeper(disk.clone());
    let r = k4.boot();
    assert_eq!(r.loaded, None);
    assert!(!k4.ready());
    let st = k4.status();
    let why = st.not_ready_reason.unwrap();
    assert!(
        why.contains("no valid persisted shard map") && why.contains("generation 3"),
        "{why}"
    );
    assert!(st.alarms.iter().any(|a| a.kind == "boot"));
    assert_eq!(k4.holder().current().version(), 0);
    // A fresh map from the control plane makes it ready and clears the alarm.
    k4.offer(map(4, vec![active("a", 4)]), &BTreeSet::new())
        .unwrap();
    assert!(k4.ready());
    assert!(k4.status().alarms.is_empty());
    // No generations at all: not ready until a map arrives, but nothing is alarmed.
    let k5 = keeper(Arc::default());
    assert_eq!(k5.boot().loaded, None);
    assert!(!k5.ready() && k5.status().alarms.is_empty());
}

/// A source with a history of maps; it can be made to serve garbage.
#[derive(Default)]
struct TestSource {
    maps: Mutex<Vec<ShardMap>>,
    garbage: AtomicBool,
    down: AtomicBool,
    changed: tokio::sync::Notify,
    snapshots: AtomicU64,
    polls: AtomicU64,
}

impl TestSource {
    fn publish(&self, m: ShardMap) {
        self.maps.lock().unwrap().push(m);
        self.changed.notify_waiters();
    }

    fn feed_after(&self, after: u64) -> Bytes {
        let maps = self.maps.lock().unwrap();
        let Some(latest) = maps.last() else {
            return Bytes::new();
        };
        if latest.version() == after {
            return Bytes::new();
        }
        match maps.iter().position(|m| m.version() == after) {
            Some(i) => {
                let mut out = Vec::new();
                for w in maps[i..].windows(2) {
                    out.extend(codec::encode_delta(&w[0].diff(&w[1])));
                }
                out.into()
            }
            None => codec::encode_map(latest).into(),
        }
    }
}

impl MapSource for Arc<TestSource> {
    fn snapshot(&self) -> BoxFuture<Result<Bytes, SourceError>> {
        let this = self.clone();
        Box::pin(async move {
            this.snapshots.fetch_add(1, Ordering::SeqCst);
            if this.down.load(Ordering::SeqCst) {
                return Err(SourceError("connection refused".into()));
            }
            if this.garbage.load(Ordering::SeqCst) {
                return Ok(Bytes::from_static(b"LVMF garbage"));
            }
            let maps = this.maps.lock().unwrap();
            Ok(maps
                .last()
                .map(|m| Bytes::from(codec::encode_map(m)))
                .unwrap_or_default())
        })
    }

    fn deltas(&self, after: u64, wait: Duration) -> BoxFuture<Result<Bytes, SourceError>> {
        let this = self.clone();
        Box::pin(async move {
            this.polls.fetch_add(1, Ordering::SeqCst);
            if this.down.load(Ordering::SeqCst) {
                return Err(SourceError("connection refused".into()));
            }
            if this.garbage.load(Ordering::SeqCst) {
                return Ok(Bytes::from_static(b"LVMF garbage"));
            }
            let changed = this.changed.notified();
            let feed = this.feed_after(after);
            if !feed.is_empty() {
                return Ok(feed);
            }
            let _ = tokio::time::timeout(wait, changed).await;
            if this.garbage.load(Ordering::SeqCst) {
                return Ok(Bytes::from_static(b"LVMF garbage"));
            }
            Ok(this.feed_after(after))
        })
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_follower_takes_a_snapshot_then_follows_deltas() {
    let disk = Arc::new(MemDisk::default());
    let k = keeper(disk.clone());
    let src = Arc::new(TestSource::default());
    src.publish(map(1, vec![active("a", 2)]));
    let mut settled = spawn_follower(k.clone(), Arc::new(src.clone()), fast());
    assert!(wait_settled(&mut settled, 1, Duration::from_secs(10)).await);
    assert_eq!(k.holder().current().version(), 1);
    assert!(k.ready());
    // Three changes in a row reach the holder as deltas.
    for v in 2..=4 {
        src.publish(map(v, vec![active("a", 2), active(&format!("b{v}"), 1)]));
    }
    assert!(wait_settled(&mut settled, 4, Duration::from_secs(10)).await);
    assert_eq!(k.holder().current().version(), 4);
    assert!(src.polls.load(Ordering::SeqCst) >= 1);
    assert_eq!(
        src.snapshots.load(Ordering::SeqCst),
        1,
        "one snapshot at start"
    );
    assert_eq!(disk.generations().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_follower_fetches_snapshots_on_its_period_even_when_nothing_changes() {
    let k = keeper(Arc::default());
    let src = Arc::new(TestSource::default());
    src.publish(map(1, vec![active("a", 2)]));
    let cfg = FollowConfig {
        snapshot_period: Duration::from_millis(20),
        ..fast()
    };
    let _settled = spawn_follower(k.clone(), Arc::new(src.clone()), cfg);
    until("four snapshots", || {
        src.snapshots.load(Ordering::SeqCst) >= 4
    })
    .await;
    assert_eq!(k.holder().current().version(), 1);
    assert!(k.status().alarms.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decode_errors_and_outages_alarm_keep_routing_and_retry_with_backoff() {
    let k = keeper(Arc::default());
    let src = Arc::new(TestSource::default());
    src.publish(map(1, vec![active("a", 2)]));
    let mut settled = spawn_follower(k.clone(), Arc::new(src.clone()), fast());
    assert!(wait_settled(&mut settled, 1, Duration::from_secs(10)).await);
    // Garbage on the wire: refused, alarmed, retried (each retry is one more poll).
    src.garbage.store(true, Ordering::SeqCst);
    src.publish(map(2, vec![active("a", 3)]));
    until("three failures", || settled.borrow().failures >= 3).await;
    assert_eq!(
        k.holder().current().version(),
        1,
        "the live map keeps routing"
    );
    let alarms = k.status().alarms;
    assert!(
        alarms
            .iter()
            .any(|a| a.kind == "refused" && a.message.contains("decoding")),
        "{alarms:?}"
    );
    // An outage: the source alarm.
    src.garbage.store(false, Ordering::SeqCst);
    src.down.store(true, Ordering::SeqCst);
    let f = settled.borrow().failures;
    until("an outage failure", || settled.borrow().failures > f + 1).await;
    assert!(k.status().alarms.iter().any(|a| a.kind == "source"));
    // Recovery: the pending change goes in, the alarms clear.
    src.down.store(false, Ordering::SeqCst);
    until("version 2", || k.holder().current().version() == 2).await;
    assert!(k.status().alarms.is_empty(), "{:?}", k.status().alarms);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persist_failure_keeps_the_live_map_and_is_retried() {
    let disk = Arc::new(MemDisk::default());
    let k = keeper(disk.clone());
    let src = Arc::new(TestSource::default());
    src.publish(map(1, vec![active("a", 2)]));
    let mut settled = spawn_follower(k.clone(), Arc::new(src.clone()), fast());
    assert!(wait_settled(&mut settled, 1, Duration::from_secs(10)).await);
    disk.fail.store(true, Ordering::SeqCst);
    src.publish(map(2, vec![active("a", 3)]));
    until("two failures", || settled.borrow().failures >= 2).await;
    assert_eq!(k.holder().current().version(), 1);
    assert!(k.status().alarms.iter().any(|a| a.kind == "persist"));
    disk.fail.store(false, Ordering::SeqCst);
    until("version 2", || k.holder().current().version() == 2).await;
    assert!(k.status().alarms.is_empty());
}

#[test]
fn backoff_doubles_is_capped_and_jittered() {
    let cfg = fast();
    for failures in 1..30 {
        let d = backoff(&cfg, failures);
        let full = cfg
            .backoff_first
            .saturating_mul(1 << (failures - 1).min(16))
            .min(cfg.backoff_max);
        assert!(d <= full && d >= full / 2, "{failures}: {d:?} vs {full:?}");
    }
}
