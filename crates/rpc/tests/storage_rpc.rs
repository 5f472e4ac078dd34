//! The storage protocol end to end over loopback TCP: a front-end's `RemoteStorage` against
//! storage servers wrapping an in-memory `StoragePlane`, each server checking requests against
//! its own map (what a storage node does in a fleet).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use levee_frontend::backend::{
    AppendError, AppendSignals, Appended, BoxFuture, MapHolder, ReadFrom, ReadOut, StoragePlane,
    StoredRecord, Tip,
};
use levee_map::{
    even_split, GroupId, NodeId, ShardId, ShardMap, ShardRoute, StreamRoute, StreamState,
};
use levee_protocol::{ApiError, ErrorKind};
use levee_rpc::{
    MapOwnership, Pool, PoolConfig, RemoteStorage, ServerConfig, StaticDirectory, StorageServer,
};

/// A storage node's data, in memory: records per shard uid.
#[derive(Default)]
struct MemStorage {
    shards: Mutex<HashMap<u64, Vec<(Bytes, Bytes)>>>,
    signals: AppendSignals,
}

impl StoragePlane for MemStorage {
    fn append(
        &self,
        shard: &ShardRoute,
        records: Vec<(Bytes, Bytes)>,
    ) -> BoxFuture<Result<Appended, AppendError>> {
        let mut shards = self.shards.lock().unwrap();
        let log = shards.entry(shard.uid).or_default();
        let first = log.len() as u64;
        log.extend(records);
        drop(shards);
        self.signals.notify(shard.uid);
        Box::pin(async move {
            Ok(Appended {
                first_seq_ix: first,
                arrival_ms: 7,
                shard_created_ms: 5,
                encrypted: false,
            })
        })
    }

    fn read(
        &self,
        shard: &ShardRoute,
        from: ReadFrom,
        max_records: usize,
        _max_bytes: u64,
    ) -> BoxFuture<Result<ReadOut, ApiError>> {
        let shards = self.shards.lock().unwrap();
        let log = shards.get(&shard.uid).cloned().unwrap_or_default();
        let start = match from {
            ReadFrom::SeqIx(ix) => ix as usize,
            ReadFrom::Timestamp(_) => 0,
        };
        let records: Vec<StoredRecord> = log
            .iter()
            .enumerate()
            .skip(start)
            .take(max_records)
            .map(|(i, (k, d))| StoredRecord {
                seq_ix: i as u64,
                arrival_ms: 7,
                partition_key: k.clone(),
                data: d.clone(),
                encrypted: false,
            })
            .collect();
        let next = start as u64 + records.len() as u64;
        let out = ReadOut {
            records,
            next_seq_ix: next,
            shard_end: false,
            tip_arrival_ms: 7,
            tip_next_seq_ix: log.len() as u64,
            shard_created_ms: 5,
        };
        Box::pin(async move { Ok(out) })
    }

    fn tip(&self, shard: &ShardRoute) -> BoxFuture<Result<Tip, ApiError>> {
        let n = self
            .shards
            .lock()
            .unwrap()
            .get(&shard.uid)
            .map_or(0, |l| l.len()) as u64;
        Box::pin(async move {
            Ok(Tip {
                next_seq_ix: n,
                shard_created_ms: 5,
            })
        })
    }

    fn append_signal(&self, shard: &ShardRoute) -> tokio::sync::watch::Receiver<()> {
        self.signals.watch(shard.uid)
    }
}

/// A one-stream map whose shard `i` (uid 100 + i) lives on node `nodes[i]`.
fn map(version: u64, nodes: &[u64], epoch: u64, open: bool) -> ShardMap {
    let ranges = even_split(nodes.len() as u32);
    let shards = nodes
        .iter()
        .zip(ranges)
        .enumerate()
        .map(|(i, (&node, hash_range))| ShardRoute {
            shard_id: ShardId(i as u32),
            uid: 100 + i as u64,
            hash_range,
            open,
            group: GroupId(node),
            node: NodeId(node),
            epoch,
            parent: None,
            adjacent_parent: None,
            created_ms: 0,
            closed_ms: None,
        })
        .collect();
    ShardMap::build(
        version,
        vec![StreamRoute {
            name: "s".into(),
            uid: 1,
            state: StreamState::Active,
            shards,
            policies: Default::default(),
            facts: Default::default(),
        }],
    )
    .unwrap()
}

/// `map(version, &[1], epoch, true)` after shard 0 was split: closed, with two open children.
fn split_map(version: u64, epoch: u64) -> ShardMap {
    let mut shards = map(version, &[1, 1, 1], epoch, true)
        .stream("s")
        .unwrap()
        .shards
        .clone();
    shards[0].open = false;
    shards[0].hash_range = even_split(1)[0];
    for (i, r) in even_split(2).into_iter().enumerate() {
        shards[i + 1].hash_range = r;
        shards[i + 1].parent = Some(ShardId(0));
    }
    ShardMap::build(
        version,
        vec![StreamRoute {
            name: "s".into(),
            uid: 1,
            state: StreamState::Active,
            shards,
            policies: Default::default(),
            facts: Default::default(),
        }],
    )
    .unwrap()
}

fn route(m: &ShardMap, i: usize) -> ShardRoute {
    m.stream("s").unwrap().shards[i].clone()
}

struct Node {
    addr: std::net::SocketAddr,
    holder: Arc<MapHolder>,
    server: Arc<StorageServer>,
    storage: Arc<MemStorage>,
}

async fn node(id: u64, m: ShardMap) -> Node {
    let holder = Arc::new(MapHolder::default());
    holder.install(m).unwrap();
    let storage = Arc::new(MemStorage::default());
    let server = StorageServer::new(
        storage.clone(),
        Arc::new(MapOwnership::new(holder.clone(), NodeId(id))),
        ServerConfig {
            map_catch_up_wait_ms: 200,
            ..ServerConfig::default()
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(server.clone().serve(listener, std::future::pending()));
    Node {
        addr,
        holder,
        server,
        storage,
    }
}

fn client(nodes: &[&Node], ids: &[u64], connections_max: usize) -> (Arc<Pool>, RemoteStorage) {
    let pool = Pool::new(PoolConfig {
        connections_max,
        ..PoolConfig::default()
    });
    let dir = StaticDirectory(
        ids.iter()
            .zip(nodes)
            .map(|(&id, n)| (NodeId(id), n.addr))
            .collect(),
    );
    (pool.clone(), RemoteStorage::new(pool, Arc::new(dir)))
}

fn recs(n: usize) -> Vec<(Bytes, Bytes)> {
    (0..n)
        .map(|i| {
            (
                Bytes::from(format!("pk{i}")),
                Bytes::from(vec![i as u8; 100 + i]),
            )
        })
        .collect()
}

/// Waits for `cond` (polled every 10 ms) for up to 5 s.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_read_and_tip_go_to_the_shards_node() {
    let m = map(1, &[1, 2], 1, true);
    let (a, b) = (node(1, m.clone()).await, node(2, m.clone()).await);
    let (_pool, remote) = client(&[&a, &b], &[1, 2], 8);

    let ack = remote.append(&route(&m, 1), recs(3)).await.unwrap();
    assert_eq!(
        (ack.first_seq_ix, ack.arrival_ms, ack.shard_created_ms),
        (0, 7, 5)
    );
    let ack = remote.append(&route(&m, 1), recs(2)).await.unwrap();
    assert_eq!(ack.first_seq_ix, 3);
    // Only node 2 holds shard 1's records.
    assert_eq!(b.storage.shards.lock().unwrap()[&101].len(), 5);
    assert!(a.storage.shards.lock().unwrap().is_empty());

    let out = remote
        .read(&route(&m, 1), ReadFrom::SeqIx(1), 10, 1 << 20)
        .await
        .unwrap();
    let want: Vec<_> = recs(3).into_iter().chain(recs(2)).skip(1).collect();
    let got: Vec<_> = out
        .records
        .iter()
        .map(|r| (r.partition_key.clone(), r.data.clone()))
        .collect();
    assert_eq!(got, want);
    assert_eq!((out.next_seq_ix, out.tip_next_seq_ix), (5, 5));
    let tip = remote.tip(&route(&m, 1)).await.unwrap();
    assert_eq!(tip.next_seq_ix, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_epoch_or_a_closed_shard_refuses_writes_as_stale() {
    let old = map(1, &[1], 1, true);
    let n = node(1, old.clone()).await;
    n.holder.install(map(2, &[1], 2, true)).unwrap();
    let (_pool, remote) = client(&[&n], &[1], 4);
    // A write with the old epoch is refused: the caller must route again.
    assert_eq!(
        remote.append(&route(&old, 0), recs(1)).await,
        Err(AppendError::Stale)
    );
    // A read with the old epoch is served: the shard's data is the same.
    assert!(remote
        .read(&route(&old, 0), ReadFrom::SeqIx(0), 1, 1)
        .await
        .is_ok());
    // Closed by a reshard: writes are stale, reads still served.
    let closed = split_map(3, 3);
    n.holder.install(closed.clone()).unwrap();
    assert_eq!(
        remote.append(&route(&closed, 0), recs(1)).await,
        Err(AppendError::Stale)
    );
    assert!(remote.tip(&route(&closed, 0)).await.is_ok());
    assert!(
        n.storage.shards.lock().unwrap().is_empty(),
        "nothing written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_the_node_does_not_own_is_refused() {
    // The caller's map puts shard 0 on node 1, whose own map puts it on node 2.
    let callers = map(1, &[1], 1, true);
    let n = node(1, map(1, &[2], 1, true)).await;
    let (_pool, remote) = client(&[&n], &[1], 4);
    assert_eq!(
        remote.append(&route(&callers, 0), recs(1)).await,
        Err(AppendError::Stale)
    );
    let e = remote.tip(&route(&callers, 0)).await.unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::InternalFailure,
        "retryable for the client"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_behind_the_callers_map_waits_for_it_instead_of_refusing() {
    let n = node(1, map(1, &[1], 1, true)).await;
    let newer = map(2, &[1], 2, true);
    let (_pool, remote) = client(&[&n], &[1], 4);
    let write = tokio::spawn({
        let r = route(&newer, 0);
        async move { remote.append(&r, recs(1)).await }
    });
    // The write is held, not refused: without the catch-up wait it would already have ended
    // as stale.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!write.is_finished(), "the write waits for the node's map");
    // The node's map catches up while the write waits.
    n.holder.install(newer).unwrap();
    assert_eq!(write.await.unwrap().unwrap().first_seq_ix, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_holds_at_most_its_cap_of_connections_across_many_nodes() {
    const NODES: u64 = 12;
    const CAP: usize = 3;
    let ids: Vec<u64> = (1..=NODES).collect();
    let m = map(1, &ids, 1, true);
    let mut nodes = Vec::new();
    for &id in &ids {
        nodes.push(node(id, m.clone()).await);
    }
    let refs: Vec<&Node> = nodes.iter().collect();
    let (pool, remote) = client(&refs, &ids, CAP);
    let threads_before = threads();
    for round in 0..3 {
        for i in 0..NODES as usize {
            let ack = remote.append(&route(&m, i), recs(1)).await.unwrap();
            assert_eq!(ack.first_seq_ix, round);
            assert!(pool.pooled() <= CAP);
        }
    }
    // Evicted connections close once idle: the nodes see at most CAP open connections.
    eventually("evicted connections close", || {
        nodes.iter().map(|n| n.server.connections()).sum::<usize>() <= CAP && pool.live() <= CAP
    })
    .await;
    // Connections are tasks: talking to 12 nodes started no thread.
    assert_eq!(threads(), threads_before);
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_signals_cross_the_wire_and_stop_when_unwatched() {
    let m = map(1, &[1], 1, true);
    let n = node(1, m.clone()).await;
    let (_pool, remote) = client(&[&n], &[1], 4);
    let (_pool2, writer) = client(&[&n], &[1], 4);
    let r = route(&m, 0);
    let mut rx = remote.append_signal(&r);
    // The forwarder's first answer wakes the watcher once (a harmless spurious wake).
    tokio::time::timeout(Duration::from_secs(5), rx.changed())
        .await
        .unwrap()
        .unwrap();
    for i in 0..3u64 {
        rx.borrow_and_update();
        let ack = writer.append(&r, recs(1)).await.unwrap();
        assert_eq!(ack.first_seq_ix, i);
        tokio::time::timeout(Duration::from_secs(5), rx.changed())
            .await
            .expect("an append on the node wakes the remote watcher")
            .unwrap();
    }
    assert_eq!(remote.watched(), 1);
    let rx2 = remote.append_signal(&r);
    assert_eq!(remote.watched(), 1, "one forwarder per shard");
    drop(rx);
    drop(rx2);
    eventually("the forwarder ends", || remote.watched() == 0).await;
    // The node stops holding a long poll for it too.
    eventually("the node drops its watch", || {
        n.storage.signals.watched() == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_node_is_a_retryable_error_not_a_hang() {
    let m = map(1, &[1], 1, true);
    // A port nothing listens on.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let pool = Pool::new(PoolConfig::default());
    let remote = RemoteStorage::new(
        pool,
        Arc::new(StaticDirectory([(NodeId(1), addr)].into_iter().collect())),
    );
    match remote.append(&route(&m, 0), recs(1)).await {
        Err(AppendError::Api(e)) => assert_eq!(e.kind, ErrorKind::InternalFailure),
        other => panic!("{other:?}"),
    }
    let unknown = map(1, &[9], 1, true);
    let e = remote.tip(&route(&unknown, 0)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::InternalFailure);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_front_end_finds_storage_nodes_through_its_maps_node_table() {
    let m = map(1, &[1, 2], 1, true);
    let (a, b) = (node(1, m.clone()).await, node(2, m.clone()).await);
    // The front-end's map: the same shards, plus where nodes 1 and 2 listen.
    let table = [(1, &a), (2, &b)]
        .into_iter()
        .map(|(id, n)| {
            (
                NodeId(id),
                levee_map::NodeEntry {
                    address: n.addr.to_string(),
                    cell: "cell-1".into(),
                    role: levee_map::NodeRole::Storage,
                    admin: String::new(),
                },
            )
        })
        .collect();
    let streams = m.streams().map(|s| StreamRoute::clone(s)).collect();
    let holder = Arc::new(MapHolder::default());
    holder
        .install(ShardMap::build_with_nodes(1, streams, table).unwrap())
        .unwrap();
    let remote = RemoteStorage::new(
        Pool::new(PoolConfig::default()),
        Arc::new(levee_rpc::MapDirectory(holder.clone())),
    );
    for i in 0..2 {
        assert_eq!(
            remote
                .append(&route(&m, i), recs(2))
                .await
                .unwrap()
                .first_seq_ix,
            0
        );
    }
    assert_eq!(a.storage.shards.lock().unwrap()[&100].len(), 2);
    assert_eq!(b.storage.shards.lock().unwrap()[&101].len(), 2);
    // A node the map does not list is unreachable: a retryable error, not a hang.
    let elsewhere = map(1, &[3], 1, true);
    assert!(remote.append(&route(&elsewhere, 0), recs(1)).await.is_err());
}
