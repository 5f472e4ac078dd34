//! The control protocol over loopback: forwarding, admission (429 + jittered retry hints),
//! client backoff and failover between control addresses.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use levee_frontend::auth::Caller;
use levee_frontend::backend::{BoxFuture, ConsumerInfo};
use levee_protocol::{ApiError, ErrorKind, Operation, WireFormat};
use levee_rpc::control::{
    ControlCall, ControlHandler, ControlServer, ControlServerConfig, Registration, RemoteControl,
    RetryPolicy,
};
use levee_rpc::{Pool, PoolConfig};

/// Echoes what it was sent; counts how many calls run at once; each call takes `delay`.
struct Echo {
    running: Arc<AtomicUsize>,
    peak: AtomicUsize,
    delay: Duration,
}

impl Echo {
    fn new(delay: Duration) -> Arc<Echo> {
        Arc::new(Echo {
            running: Arc::new(AtomicUsize::new(0)),
            peak: AtomicUsize::new(0),
            delay,
        })
    }
}

impl ControlHandler for Echo {
    fn call(&self, call: ControlCall) -> BoxFuture<Result<Vec<u8>, ApiError>> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        let delay = self.delay;
        let running = self.running.clone();
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            running.fetch_sub(1, Ordering::SeqCst);
            if call.body.as_ref() == b"fail" {
                return Err(ApiError::new(ErrorKind::ResourceInUse, "busy stream"));
            }
            let who = call.caller.map_or("anonymous".to_string(), |c| {
                format!("{} {}", c.key_id, c.principal.arn)
            });
            Ok(format!(
                "{}|{:?}|{}|{}",
                call.op.name(),
                call.format,
                who,
                String::from_utf8_lossy(&call.body)
            )
            .into_bytes())
        })
    }

    fn consumer(&self, consumer_arn: String) -> BoxFuture<Result<ConsumerInfo, ApiError>> {
        Box::pin(async move {
            if consumer_arn == "missing" {
                return Err(ApiError::new(ErrorKind::ResourceNotFound, "no consumer"));
            }
            Ok(ConsumerInfo {
                consumer_name: "c1".into(),
                consumer_arn,
                stream_name: "s".into(),
                active: true,
                created_ms: 9,
            })
        })
    }

    fn register(&self, node: Registration) -> BoxFuture<Result<(), ApiError>> {
        Box::pin(async move {
            if node.cell == "full" {
                return Err(ApiError::limit_exceeded("cell full is full"));
            }
            Ok(())
        })
    }
}

async fn server(
    handler: Arc<Echo>,
    config: ControlServerConfig,
) -> (SocketAddr, Arc<ControlServer>) {
    let s = ControlServer::new(handler, config);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(s.clone().serve(l, std::future::pending()));
    (addr, s)
}

fn call(body: &'static str) -> ControlCall {
    ControlCall {
        op: Operation::CreateStream,
        format: WireFormat::Cbor,
        body: Bytes::from_static(body.as_bytes()),
        caller: Some(Caller {
            key_id: "AKIDEXAMPLE".into(),
            account: "111122223333".into(),
            principal: levee_policy::Principal::of_credential(
                "111122223333",
                "alice",
                "AKIDEXAMPLE",
            ),
        }),
        id: 0,
    }
}

fn dead_address() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_and_lookups_are_forwarded_with_the_callers_identity() {
    let (addr, _s) = server(Echo::new(Duration::ZERO), ControlServerConfig::default()).await;
    let client = RemoteControl::new(
        Pool::new(PoolConfig::default()),
        vec![addr],
        RetryPolicy::default(),
    );
    let out = client.call(&call("{\"StreamName\":\"s\"}")).await.unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "CreateStream|Cbor|AKIDEXAMPLE arn:aws:iam::111122223333:user/alice|{\"StreamName\":\"s\"}"
    );
    let e = client.call(&call("fail")).await.unwrap_err();
    assert_eq!(
        (e.kind, e.message.as_str()),
        (ErrorKind::ResourceInUse, "busy stream")
    );
    let c = client.consumer("arn:aws:kinesis:x").await.unwrap();
    assert_eq!(
        (c.consumer_arn.as_str(), c.created_ms),
        ("arn:aws:kinesis:x", 9)
    );
    let e = client.consumer("missing").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::ResourceNotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_is_admitted_at_the_cap_and_the_rest_retry_after_429s() {
    const CAP: usize = 4;
    const CALLS: usize = 200;
    let echo = Echo::new(Duration::from_millis(5));
    let (addr, _s) = server(
        echo.clone(),
        ControlServerConfig {
            calls_in_flight_max: CAP,
            retry_after_ms: 5,
            ..ControlServerConfig::default()
        },
    )
    .await;
    let client = Arc::new(RemoteControl::new(
        Pool::new(PoolConfig::default()),
        vec![addr],
        RetryPolicy {
            deadline_ms: 30_000,
            backoff_base_ms: 5,
            backoff_cap_ms: 200,
        },
    ));
    let tasks: Vec<_> = (0..CALLS)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.call(&call("x")).await })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => eprintln!("call failed: {e:?}"),
        }
    }
    assert_eq!(ok, CALLS, "every call got through by retrying");
    let peak = echo.peak.load(Ordering::SeqCst);
    assert!(peak <= CAP, "at most {CAP} calls ran at once, saw {peak}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_fails_over_to_the_next_control_address() {
    let (addr, _s) = server(Echo::new(Duration::ZERO), ControlServerConfig::default()).await;
    let client = RemoteControl::new(
        Pool::new(PoolConfig::default()),
        vec![dead_address(), addr, dead_address()],
        RetryPolicy::default(),
    );
    for _ in 0..5 {
        assert!(client.call(&call("x")).await.is_ok());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_control_plane_a_call_ends_in_a_clear_retryable_error_by_its_deadline() {
    let client = RemoteControl::new(
        Pool::new(PoolConfig::default()),
        vec![dead_address(), dead_address()],
        RetryPolicy {
            deadline_ms: 300,
            backoff_base_ms: 10,
            backoff_cap_ms: 50,
        },
    );
    let started = std::time::Instant::now();
    let e = client.call(&call("x")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::InternalFailure);
    assert!(
        e.message.contains("control plane is unavailable"),
        "{}",
        e.message
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// A map feed whose polls wait their full time and count how many wait at once.
struct SlowFeed {
    waiting: AtomicUsize,
    peak: AtomicUsize,
}

impl levee_rpc::control::MapFeed for SlowFeedHandle {
    fn snapshot(&self) -> BoxFuture<Bytes> {
        Box::pin(async { Bytes::from_static(b"snapshot") })
    }
    fn deltas(&self, after: u64, wait: Duration) -> BoxFuture<Bytes> {
        let feed = self.0.clone();
        Box::pin(async move {
            let now = feed.waiting.fetch_add(1, Ordering::SeqCst) + 1;
            feed.peak.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(wait).await;
            feed.waiting.fetch_sub(1, Ordering::SeqCst);
            Bytes::from(format!("after {after}"))
        })
    }
}

struct SlowFeedHandle(Arc<SlowFeed>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_and_the_map_feed_are_served_and_excess_polls_get_429() {
    let feed = Arc::new(SlowFeed {
        waiting: AtomicUsize::new(0),
        peak: AtomicUsize::new(0),
    });
    let s = ControlServer::with_maps(
        Echo::new(Duration::ZERO),
        Some(Arc::new(SlowFeedHandle(feed.clone()))),
        ControlServerConfig {
            map_polls_in_flight_max: 3,
            ..ControlServerConfig::default()
        },
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(s.serve(l, std::future::pending()));
    let client = Arc::new(RemoteControl::new(
        Pool::new(PoolConfig::default()),
        vec![addr],
        RetryPolicy::default(),
    ));
    // Registration: accepted, and a cell cap's refusal comes back as the client's error.
    let mut node = Registration {
        id: 7,
        role: levee_map::NodeRole::Storage,
        address: "127.0.0.3:4592".into(),
        cell: "cell-1".into(),
        admin: "127.0.0.3:4590".into(),
    };
    client.register(&node).await.unwrap();
    node.cell = "full".into();
    let e = client.register(&node).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::LimitExceeded);
    // The feed: a snapshot, and a poll that carries its position and wait.
    assert_eq!(
        client.map_snapshot().await.unwrap(),
        Bytes::from_static(b"snapshot")
    );
    assert_eq!(
        client
            .map_deltas(41, Duration::from_millis(10))
            .await
            .unwrap(),
        Bytes::from_static(b"after 41")
    );
    // Twelve long polls at once against a cap of 3: at most 3 wait at the feed, the rest are
    // answered 429 with a retry hint at once.
    let pool = Pool::new(PoolConfig::default());
    let mut body = vec![1u8];
    body.extend_from_slice(&5u64.to_le_bytes());
    body.extend_from_slice(&500u64.to_le_bytes());
    let body = Bytes::from(body);
    let started = std::time::Instant::now();
    let answers = futures_join_all((0..12).map(|_| {
        let pool = pool.clone();
        let body = body.clone();
        async move {
            let a = pool
                .post(addr, levee_rpc::control::MAP_DELTAS_PATH, body, 1_000)
                .await
                .unwrap();
            (
                a.status.as_u16(),
                a.headers.contains_key("retry-after-ms"),
                std::time::Instant::now(),
            )
        }
    }))
    .await;
    let ok = answers.iter().filter(|a| a.0 == 200).count();
    let refused: Vec<_> = answers.iter().filter(|a| a.0 == 429).collect();
    assert_eq!(ok + refused.len(), 12, "{answers:?}");
    assert!(
        ok >= 3 && refused.len() >= 6,
        "{ok} served, {} refused",
        refused.len()
    );
    assert!(refused.iter().all(|a| a.1), "429 without a retry hint");
    // Refusals are immediate, not queued behind the waiting polls.
    assert!(refused
        .iter()
        .all(|a| a.2.duration_since(started) < Duration::from_millis(400)));
    assert!(feed.peak.load(Ordering::SeqCst) <= 3);
}

async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futs: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// A control node whose map is at `version`: it serves a snapshot only to an asker at or below
/// it, as a voter still catching up does.
struct VersionedFeed(u64);

impl levee_rpc::control::MapFeed for VersionedFeed {
    fn snapshot(&self) -> BoxFuture<Bytes> {
        let v = self.0;
        Box::pin(async move { Bytes::from(format!("map {v}")) })
    }
    fn snapshot_at_least(&self, at_least: u64) -> BoxFuture<Option<Bytes>> {
        let v = self.0;
        Box::pin(async move { (v >= at_least).then(|| Bytes::from(format!("map {v}"))) })
    }
    fn deltas(&self, _after: u64, _wait: Duration) -> BoxFuture<Bytes> {
        Box::pin(async { Bytes::new() })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_node_behind_the_asker_is_skipped_for_the_next() {
    let mut addrs = Vec::new();
    for version in [3, 7] {
        let s = ControlServer::with_maps(
            Echo::new(Duration::ZERO),
            Some(Arc::new(VersionedFeed(version))),
            ControlServerConfig::default(),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        addrs.push(l.local_addr().unwrap());
        tokio::spawn(s.serve(l, std::future::pending()));
    }
    // Whichever address the client starts at, an asker at version 5 gets version 7's map, and
    // one with no version (a booting node) gets either.
    for _ in 0..4 {
        let client = RemoteControl::new(
            Pool::new(PoolConfig::default()),
            addrs.clone(),
            RetryPolicy::default(),
        );
        assert_eq!(
            client.map_snapshot_at_least(5).await.unwrap(),
            Bytes::from_static(b"map 7")
        );
        let any = client.map_snapshot().await.unwrap();
        assert!(any == "map 3" || any == "map 7", "{any:?}");
    }
    // When every control node is behind, the asker gets the retryable error, not an old map.
    let behind = RemoteControl::new(
        Pool::new(PoolConfig::default()),
        addrs.clone(),
        RetryPolicy {
            deadline_ms: 300,
            ..RetryPolicy::default()
        },
    );
    let e = behind.map_snapshot_at_least(9).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::InternalFailure);
}
