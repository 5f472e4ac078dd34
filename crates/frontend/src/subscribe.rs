//! SubscribeToShard: enhanced fan-out as a real push.
//!
//! A subscription answers with an event stream that starts with `initial-response` and then
//! carries `SubscribeToShardEvent`s. A pump task per subscription reads the shard from its
//! position and sends what it finds; when it has caught up it sleeps until the storage plane
//! signals an append to that shard (or a new shard map, which is how a close becomes visible), a
//! heartbeat falls due, the subscription's lifetime ends, or another subscription takes over.
//! Nothing polls.
//!
//! - **Events**: `Records`, `ContinuationSequenceNumber` (the last record's number, or — when
//!   idle — the position at the shard's tip stamped with the current time, so it advances even
//!   when nothing is written, as AWS's does), `MillisBehindLatest`, and at the end of a closed
//!   shard `ChildShards` with no continuation (the KCL's shard-end contract).
//! - **Heartbeat**: an event at least every `heartbeat` (5 s) while idle.
//! - **Lifetime**: the stream ends normally after `duration` (5 minutes).
//! - **Takeover**: one subscription per (consumer, shard). A second one within `takeover_guard`
//!   (5 s) of the first is refused with `ResourceInUseException`; after it, the new one takes
//!   over and the old one ends with an in-stream `ResourceInUseException`.
//! - **Rate**: each subscription reads at most `bytes_per_sec` (2 MiB/s, a token bucket).
//! - **Bounds**: at most `subscriptions_max` subscriptions at once; each has an event channel of
//!   `EVENTS_BUFFERED` events, so a slow client holds back its pump instead of growing a queue.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use levee_map::{ShardId, ShardRoute};
use levee_protocol::types::{SubscribeToShardEvent, SubscribeToShardInput};
use levee_protocol::{ApiError, ErrorKind, WireFormat};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::backend::{ConsumerInfo, ReadFrom};
use crate::dataplane::{child_shards, millis_behind, position_seq, seq, wire_record, ChildOut};
use crate::eventstream;
use crate::iterator::Position;
use crate::service::KinesisService;

/// Events buffered between a subscription's pump and its connection.
pub const EVENTS_BUFFERED: usize = 2;
/// Records per event at most (GetRecords' limit).
pub const EVENT_RECORDS_MAX: usize = 10_000;
/// Bytes of data and partition keys read for one event at most.
pub const EVENT_BYTES_MAX: u64 = 2 << 20;
/// Subscriptions served at once by default.
pub const SUBSCRIPTIONS_MAX_DEFAULT: usize = 10_000;

/// Timing and limits of subscriptions.
#[derive(Debug, Clone)]
pub struct SubscribeConfig {
    /// How long a subscription lasts (AWS: 5 minutes).
    pub duration: Duration,
    /// Longest silence while idle (AWS: 5 s).
    pub heartbeat: Duration,
    /// A second subscription within this of the first is refused (AWS: 5 s).
    pub takeover_guard: Duration,
    /// Read rate of one subscription (AWS: 2 MiB/s per consumer per shard).
    pub bytes_per_sec: u64,
    pub subscriptions_max: usize,
}

impl Default for SubscribeConfig {
    fn default() -> Self {
        Self {
            duration: Duration::from_secs(300),
            heartbeat: Duration::from_secs(5),
            takeover_guard: Duration::from_secs(5),
            bytes_per_sec: 2 << 20,
            subscriptions_max: SUBSCRIPTIONS_MAX_DEFAULT,
        }
    }
}

struct Slot {
    id: u64,
    started: Instant,
    cancel: watch::Sender<bool>,
}

/// The live subscriptions, one per (consumer ARN, shard uid).
pub struct Subscriptions {
    pub cfg: SubscribeConfig,
    active: Mutex<HashMap<(String, u64), Slot>>,
    next_id: AtomicU64,
}

/// A subscription's hold on its (consumer, shard) slot; released on drop.
pub struct Lease {
    subs: Arc<Subscriptions>,
    key: (String, u64),
    id: u64,
    /// Becomes `true` when another subscription takes over.
    pub taken_over: watch::Receiver<bool>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut active = self.subs.lock();
        if active.get(&self.key).is_some_and(|s| s.id == self.id) {
            active.remove(&self.key);
        }
        metrics::gauge!("levee_subscriptions_active").set(active.len() as f64);
    }
}

impl Subscriptions {
    pub fn new(cfg: SubscribeConfig) -> Arc<Subscriptions> {
        metrics::gauge!("levee_subscriptions_max").set(cfg.subscriptions_max as f64);
        Arc::new(Subscriptions {
            cfg,
            active: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, u64), Slot>> {
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Subscriptions live now.
    pub fn active(&self) -> usize {
        self.lock().len()
    }

    /// Takes the (consumer, shard) slot: refused within the takeover guard of the current
    /// holder, else the holder is told to end and the slot is ours.
    pub fn acquire(
        self: &Arc<Self>,
        consumer_arn: &str,
        shard_uid: u64,
        now: Instant,
    ) -> Result<Lease, ApiError> {
        let key = (consumer_arn.to_owned(), shard_uid);
        let mut active = self.lock();
        if let Some(slot) = active.get(&key) {
            if now.saturating_duration_since(slot.started) < self.cfg.takeover_guard {
                return Err(ApiError::new(
                    ErrorKind::ResourceInUse,
                    format!("Another active subscription exists for this consumer: {consumer_arn}"),
                ));
            }
            slot.cancel.send_replace(true);
        } else if active.len() >= self.cfg.subscriptions_max {
            return Err(ApiError::new(
                ErrorKind::LimitExceeded,
                format!(
                    "This node serves at most {} subscriptions at once.",
                    self.cfg.subscriptions_max
                ),
            ));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (cancel, taken_over) = watch::channel(false);
        active.insert(
            key.clone(),
            Slot {
                id,
                started: now,
                cancel,
            },
        );
        metrics::gauge!("levee_subscriptions_active").set(active.len() as f64);
        Ok(Lease {
            subs: self.clone(),
            key,
            id,
            taken_over,
        })
    }
}

/// A token bucket of read bytes per second, allowed to go negative by one large record.
struct Bucket {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(bytes_per_sec: u64, now: Instant) -> Bucket {
        let rate = bytes_per_sec.max(1) as f64;
        Bucket {
            rate,
            tokens: rate,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.rate);
        self.at = now;
    }

    /// When the bucket next has a token (now if it has one).
    fn ready_at(&self) -> Instant {
        if self.tokens > 0.0 {
            self.at
        } else {
            self.at + Duration::from_secs_f64((1.0 - self.tokens) / self.rate)
        }
    }
}

/// AWS's answer for a consumer that is not ACTIVE (still CREATING, or DELETING).
fn not_active(c: &ConsumerInfo, account: &str) -> ApiError {
    ApiError::new(
        ErrorKind::ResourceInUse,
        format!(
            "Consumer {} with creation timestamp {} under stream: {} , account {account} is not in ACTIVE status.",
            c.consumer_name,
            c.created_ms / 1000,
            c.stream_name
        ),
    )
}

/// Checks a SubscribeToShard call and starts its pump. Errors before the first event are
/// ordinary error responses; the returned receiver yields the encoded event-stream messages.
pub async fn subscribe(
    svc: Arc<KinesisService>,
    format: WireFormat,
    input: SubscribeToShardInput,
) -> Result<mpsc::Receiver<Bytes>, ApiError> {
    let consumer = svc.consumer(&input.consumer_arn).await?;
    if !consumer.active {
        return Err(not_active(&consumer, &svc.data.identity.account_id));
    }
    let pos = &input.starting_position;
    let (shard, position) = svc
        .data
        .resolve_position(
            &consumer.stream_name,
            &input.shard_id,
            pos.r#type.into(),
            pos.sequence_number.as_deref(),
            pos.timestamp.map(|t| t.millis()),
            "SubscribeToShard",
        )
        .await?;
    // `--shard-limits aws`: one call per second per consumer per shard, before the takeover
    // rule (a call refused here takes no slot).
    if let Some(limits) = svc.data.storage.shard_limits() {
        if !limits.admit_subscribe(&consumer.consumer_arn, shard.uid) {
            return Err(ApiError::new(
                ErrorKind::LimitExceeded,
                format!(
                    "Rate exceeded for consumer {} and shard {} in stream {} under account {}.",
                    consumer.consumer_arn,
                    shard.shard_id,
                    consumer.stream_name,
                    svc.data.identity.account_id
                ),
            ));
        }
    }
    let lease = svc
        .subscriptions
        .acquire(&consumer.consumer_arn, shard.uid, Instant::now())?;
    metrics::counter!("levee_subscriptions_started_total").increment(1);
    let (tx, rx) = mpsc::channel(EVENTS_BUFFERED);
    // The channel is empty and ours: the first message cannot fail to queue.
    let _ = tx.try_send(eventstream::initial_response(format));
    tokio::spawn(pump(
        svc,
        format,
        consumer.stream_name,
        shard,
        position,
        lease,
        tx,
    ));
    Ok(rx)
}

/// How a pump ended (for metrics and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Expired,
    ShardEnd,
    TakenOver,
    ClientGone,
    Error,
}

impl Ending {
    fn name(self) -> &'static str {
        match self {
            Ending::Expired => "expired",
            Ending::ShardEnd => "shard_end",
            Ending::TakenOver => "taken_over",
            Ending::ClientGone => "client_gone",
            Ending::Error => "error",
        }
    }
}

async fn pump(
    svc: Arc<KinesisService>,
    format: WireFormat,
    stream_name: String,
    shard: ShardRoute,
    position: Position,
    lease: Lease,
    tx: mpsc::Sender<Bytes>,
) {
    let end = pump_events(&svc, format, &stream_name, &shard, position, &lease, &tx).await;
    tracing::debug!(stream = %stream_name, shard = %shard.shard_id, end = end.name(), "subscription ended");
    metrics::counter!("levee_subscriptions_ended_total", "reason" => end.name()).increment(1);
    drop(lease);
}

async fn pump_events(
    svc: &KinesisService,
    format: WireFormat,
    stream_name: &str,
    shard: &ShardRoute,
    position: Position,
    lease: &Lease,
    tx: &mpsc::Sender<Bytes>,
) -> Ending {
    let cfg = &svc.subscriptions.cfg;
    let data = &svc.data;
    let started = Instant::now();
    let deadline = started + cfg.duration;
    let mut appended = data.storage.append_signal(shard);
    let mut maps = data.maps.watch();
    let mut taken_over = lease.taken_over.clone();
    let mut from = match position {
        Position::SeqIx(x) => ReadFrom::SeqIx(x),
        Position::Timestamp(t) => ReadFrom::Timestamp(t),
    };
    let mut bucket = Bucket::new(cfg.bytes_per_sec, started);
    let mut last_event = started;
    let id: ShardId = shard.shard_id;
    let send = |msg: Bytes| async move { tx.send(msg).await.is_ok() };
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Ending::Expired;
        }
        if *taken_over.borrow_and_update() {
            return taken_over_end(format, tx).await;
        }
        bucket.refill(now);
        if bucket.tokens <= 0.0 {
            tokio::select! {
                _ = tokio::time::sleep_until(bucket.ready_at().min(deadline)) => {}
                _ = taken_over.changed() => {}
                _ = tx.closed() => return Ending::ClientGone,
            }
            continue;
        }
        // Mark the signals seen before reading, so an append after the read wakes the wait.
        appended.borrow_and_update();
        maps.borrow_and_update();
        let budget = (bucket.tokens as u64).clamp(1, EVENT_BYTES_MAX);
        let out = match data
            .storage
            .read(shard, from, EVENT_RECORDS_MAX, budget)
            .await
        {
            Ok(out) => out,
            Err(e) => {
                send(eventstream::exception(format, &e)).await;
                return Ending::Error;
            }
        };
        from = ReadFrom::SeqIx(out.next_seq_ix);
        let bytes: u64 = out
            .records
            .iter()
            .map(|r| (r.data.len() + r.partition_key.len()) as u64)
            .sum();
        bucket.tokens -= bytes as f64;
        let children = if out.shard_end {
            data.stream(stream_name)
                .map(|s| child_shards(&s, id))
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let ended = out.shard_end && !children.is_empty();
        let now = Instant::now();
        let heartbeat_due = now >= last_event + cfg.heartbeat;
        if heartbeat_due {
            // A deregistered consumer's subscriptions end (checked once per heartbeat).
            let gone = match svc.consumer(&lease.key.0).await {
                Ok(c) if c.active => None,
                Ok(c) => Some(not_active(&c, &svc.data.identity.account_id)),
                Err(e) => Some(e),
            };
            if let Some(e) = gone {
                send(eventstream::exception(format, &e)).await;
                return Ending::Error;
            }
        }
        if !out.records.is_empty() || ended || heartbeat_due {
            let wall_ms = (data.now_ms)();
            let continuation = (!ended).then(|| match out.records.last() {
                Some(last) => seq(out.shard_created_ms, id.0, last.seq_ix, last.arrival_ms),
                None => position_seq(out.shard_created_ms, id.0, out.next_seq_ix, wall_ms),
            });
            let event = SubscribeToShardEvent {
                millis_behind_latest: i64::try_from(millis_behind(&out)).unwrap_or(i64::MAX),
                records: out
                    .records
                    .iter()
                    .map(|r| wire_record(out.shard_created_ms, id.0, r))
                    .collect(),
                continuation_sequence_number: continuation,
                child_shards: ended.then(|| children.iter().map(ChildOut::to_wire).collect()),
            };
            let n = event.records.len() as u64;
            let msg = eventstream::event(format, "SubscribeToShardEvent", &event);
            tokio::select! {
                ok = send(msg) => if !ok { return Ending::ClientGone },
                _ = taken_over.changed() => return taken_over_end(format, tx).await,
            }
            metrics::counter!("levee_subscription_events_total").increment(1);
            metrics::counter!("levee_subscription_records_total").increment(n);
            last_event = Instant::now();
            if ended {
                return Ending::ShardEnd;
            }
            if !out.records.is_empty() {
                continue;
            }
        }
        // Caught up (or at a closed shard's end before its children are known): wait.
        tokio::select! {
            _ = appended.changed() => {}
            _ = maps.changed() => {}
            _ = tokio::time::sleep_until(last_event + cfg.heartbeat) => {}
            _ = tokio::time::sleep_until(deadline) => return Ending::Expired,
            _ = taken_over.changed() => {}
            _ = tx.closed() => return Ending::ClientGone,
        }
    }
}

async fn taken_over_end(format: WireFormat, tx: &mpsc::Sender<Bytes>) -> Ending {
    let err = ApiError::new(
        ErrorKind::ResourceInUse,
        "Another subscription for this consumer and shard has taken over.",
    );
    let _ = tx.send(eventstream::exception(format, &err)).await;
    Ending::TakenOver
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{
        AppendError, AppendSignals, Appended, BoxFuture, ConsumerInfo, ControlPlane, MapHolder,
        ReadOut, StoragePlane, StoredRecord, Tip,
    };
    use crate::dataplane::{DataPlane, Identity};
    use crate::iterator::IteratorCodec;
    use levee_map::{even_split, GroupId, NodeId, ShardMap, StreamRoute, StreamState};
    use levee_protocol::types::{ShardIteratorType, StartingPosition};
    use std::sync::Mutex as StdMutex;

    /// One shard in memory; appends wake watchers like the real storage plane.
    #[derive(Default)]
    struct MemStorage {
        records: StdMutex<Vec<StoredRecord>>,
        signals: AppendSignals,
    }

    impl StoragePlane for MemStorage {
        fn append(
            &self,
            shard: &ShardRoute,
            records: Vec<(Bytes, Bytes)>,
        ) -> BoxFuture<Result<Appended, AppendError>> {
            let mut all = self.records.lock().unwrap();
            let first = all.len() as u64;
            for (k, d) in records {
                let seq_ix = all.len() as u64;
                all.push(StoredRecord {
                    seq_ix,
                    arrival_ms: 1_000,
                    partition_key: k,
                    data: d,
                    encrypted: false,
                });
            }
            self.signals.notify(shard.uid);
            Box::pin(async move {
                Ok(Appended {
                    first_seq_ix: first,
                    arrival_ms: 1_000,
                    shard_created_ms: 1_000,
                    encrypted: false,
                })
            })
        }

        fn read(
            &self,
            _shard: &ShardRoute,
            from: ReadFrom,
            max_records: usize,
            max_bytes: u64,
        ) -> BoxFuture<Result<ReadOut, ApiError>> {
            let all = self.records.lock().unwrap();
            let start = match from {
                ReadFrom::SeqIx(x) => x as usize,
                ReadFrom::Timestamp(_) => 0,
            }
            .min(all.len());
            // As storage does: at most `max_bytes`, but at least one record.
            let mut bytes = 0u64;
            let records: Vec<StoredRecord> = all[start..]
                .iter()
                .take(max_records)
                .take_while(|r| {
                    let first = bytes == 0;
                    bytes += (r.data.len() + r.partition_key.len()) as u64;
                    first || bytes <= max_bytes
                })
                .cloned()
                .collect();
            let out = ReadOut {
                next_seq_ix: (start + records.len()) as u64,
                records,
                shard_end: false,
                tip_arrival_ms: 1_000,
                tip_next_seq_ix: all.len() as u64,
                shard_created_ms: 1_000,
            };
            Box::pin(async move { Ok(out) })
        }

        fn tip(&self, _shard: &ShardRoute) -> BoxFuture<Result<Tip, ApiError>> {
            let n = self.records.lock().unwrap().len() as u64;
            Box::pin(async move {
                Ok(Tip {
                    next_seq_ix: n,
                    shard_created_ms: 1_000,
                })
            })
        }

        fn append_signal(&self, shard: &ShardRoute) -> watch::Receiver<()> {
            self.signals.watch(shard.uid)
        }
    }

    struct OneConsumer;

    struct NoSettings;

    impl crate::dataplane::StreamSettings for NoSettings {
        fn max_record_bytes(&self, _stream: &str) -> Option<usize> {
            Some(crate::dataplane::RECORD_DATA_BYTES_MAX_DEFAULT)
        }
    }

    impl ControlPlane for OneConsumer {
        fn call(
            &self,
            _request: levee_protocol::Request,
            _call: crate::backend::CallContext,
        ) -> BoxFuture<Result<Vec<u8>, ApiError>> {
            Box::pin(async { Err(ApiError::new(ErrorKind::InternalFailure, "")) })
        }

        fn consumer(&self, consumer_arn: &str) -> BoxFuture<Result<ConsumerInfo, ApiError>> {
            let arn = consumer_arn.to_owned();
            Box::pin(async move {
                Ok(ConsumerInfo {
                    consumer_name: "c".into(),
                    consumer_arn: arn,
                    stream_name: "s".into(),
                    active: true,
                    created_ms: 0,
                })
            })
        }
    }

    fn service(cfg: SubscribeConfig) -> (Arc<KinesisService>, Arc<MemStorage>) {
        let storage = Arc::new(MemStorage::default());
        let maps = Arc::new(MapHolder::default());
        let route = StreamRoute {
            name: "s".into(),
            uid: 1,
            state: StreamState::Active,
            shards: vec![ShardRoute {
                shard_id: ShardId(0),
                uid: 10,
                hash_range: even_split(1)[0],
                open: true,
                group: GroupId(1),
                node: NodeId(1),
                epoch: 1,
                parent: None,
                adjacent_parent: None,
                created_ms: 0,
                closed_ms: None,
            }],
            policies: Default::default(),
            facts: Default::default(),
        };
        maps.install(ShardMap::build(1, vec![route]).unwrap())
            .unwrap();
        let svc = Arc::new(KinesisService {
            data: DataPlane {
                identity: Identity {
                    account_id: "000000000000".into(),
                    region: "us-east-1".into(),
                },
                maps,
                storage: storage.clone(),
                iterators: IteratorCodec::new([7; 32]),
                now_ms: || 1_000_000,
                settings: Arc::new(NoSettings),
            },
            control: Arc::new(OneConsumer),
            subscriptions: Subscriptions::new(cfg),
        });
        (svc, storage)
    }

    fn input() -> SubscribeToShardInput {
        SubscribeToShardInput {
            consumer_arn: "arn:c".into(),
            stream_id: None,
            shard_id: "shardId-000000000000".into(),
            starting_position: StartingPosition {
                r#type: ShardIteratorType::Latest,
                sequence_number: None,
                timestamp: None,
            },
        }
    }

    fn decode(b: &Bytes) -> (String, serde_json::Value) {
        let m = aws_smithy_eventstream::frame::read_message_from(&b[..]).unwrap();
        let kind = m
            .headers()
            .iter()
            .find(|h| h.name().as_str() == ":event-type")
            .map(|h| h.value().as_string().unwrap().as_str().to_owned())
            .unwrap_or_default();
        (kind, serde_json::from_slice(m.payload()).unwrap())
    }

    /// A backlog is delivered at no more than 2 MiB/s (virtual time): 6 MiB take about 2 s
    /// beyond the first second's worth.
    #[tokio::test(start_paused = true)]
    async fn a_backlog_is_read_at_2_mib_per_second() {
        let (svc, storage) = service(SubscribeConfig::default());
        let route = svc.data.maps.current().stream("s").unwrap().shards[0].clone();
        let chunk = Bytes::from(vec![7u8; 256 << 10]);
        for _ in 0..24 {
            storage
                .append(&route, vec![(Bytes::from("k"), chunk.clone())])
                .await
                .unwrap();
        }
        let mut input = input();
        input.starting_position.r#type = ShardIteratorType::TrimHorizon;
        let started = Instant::now();
        let mut rx = subscribe(svc, WireFormat::Json, input).await.unwrap();
        rx.recv().await.unwrap();
        let mut n = 0;
        while n < 24 {
            let (_, v) = decode(&rx.recv().await.unwrap());
            n += v["Records"].as_array().unwrap().len();
        }
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(1700) && took <= Duration::from_millis(2600),
            "6 MiB took {took:?}"
        );
    }

    /// AWS's defaults in virtual time: an idle subscription hears from the server every 5 s
    /// (never later), and ends after 5 minutes; an append wakes it at once.
    #[tokio::test(start_paused = true)]
    async fn idle_heartbeats_every_5_s_and_the_stream_ends_at_5_minutes_in_virtual_time() {
        let (svc, storage) = service(SubscribeConfig::default());
        let started = Instant::now();
        let mut rx = subscribe(svc.clone(), WireFormat::Json, input())
            .await
            .unwrap();
        assert_eq!(decode(&rx.recv().await.unwrap()).0, "initial-response");
        let mut beats = Vec::new();
        for _ in 0..3 {
            let (kind, v) = decode(&rx.recv().await.unwrap());
            assert_eq!(kind, "SubscribeToShardEvent");
            assert_eq!(v["Records"], serde_json::json!([]));
            beats.push(started.elapsed());
        }
        assert_eq!(
            beats,
            [5, 10, 15].map(Duration::from_secs),
            "a heartbeat exactly every 5 s of virtual time"
        );
        // An append is pushed at once, not at the next heartbeat.
        let route = svc.data.maps.current().stream("s").unwrap().shards[0].clone();
        let at = Instant::now();
        storage
            .append(&route, vec![(Bytes::from("k"), Bytes::from("v"))])
            .await
            .unwrap();
        let (_, v) = decode(&rx.recv().await.unwrap());
        assert_eq!(v["Records"][0]["Data"], "dg==");
        assert_eq!(at.elapsed(), Duration::ZERO, "woken by the append");
        // Then heartbeats again until the 5-minute end.
        let mut last = Instant::now();
        let mut events = 0;
        while let Some(b) = rx.recv().await {
            assert!(last.elapsed() <= Duration::from_secs(5));
            last = Instant::now();
            decode(&b);
            events += 1;
        }
        assert_eq!(started.elapsed(), Duration::from_secs(300));
        assert!(events >= 55, "{events} heartbeats in the remaining 285 s");
        assert_eq!(svc.subscriptions.active(), 0, "the slot is released");
    }

    #[test]
    fn takeover_is_refused_within_the_guard_and_taken_after_it() {
        let subs = Subscriptions::new(SubscribeConfig::default());
        let t0 = Instant::now();
        let first = subs.acquire("arn:c", 7, t0).unwrap();
        let again = subs.acquire("arn:c", 7, t0 + Duration::from_secs(4));
        let err = again.err().unwrap();
        assert_eq!(err.kind, ErrorKind::ResourceInUse);
        assert!(!*first.taken_over.borrow());
        // Another shard or consumer is independent.
        let other = subs.acquire("arn:c", 8, t0).unwrap();
        let second = subs
            .acquire("arn:c", 7, t0 + Duration::from_secs(6))
            .unwrap();
        assert!(*first.taken_over.borrow(), "the first is told to end");
        assert_eq!(subs.active(), 2);
        drop(first);
        assert_eq!(
            subs.active(),
            2,
            "the old lease does not free the new holder's slot"
        );
        drop(second);
        drop(other);
        assert_eq!(subs.active(), 0);
    }

    #[test]
    fn the_number_of_subscriptions_is_capped() {
        let subs = Subscriptions::new(SubscribeConfig {
            subscriptions_max: 2,
            ..SubscribeConfig::default()
        });
        let now = Instant::now();
        let _a = subs.acquire("a", 1, now).unwrap();
        let _b = subs.acquire("b", 1, now).unwrap();
        let err = subs.acquire("c", 1, now).err().unwrap();
        assert_eq!(err.kind, ErrorKind::LimitExceeded);
    }

    #[test]
    fn the_bucket_limits_the_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(1000, t0);
        b.tokens -= 3000.0; // one large read
        b.refill(t0);
        let ready = b.ready_at();
        assert!(
            ready >= t0 + Duration::from_millis(2000),
            "{:?}",
            ready - t0
        );
        b.refill(t0 + Duration::from_secs(10));
        assert_eq!(b.tokens, 1000.0, "capped at one second's worth");
    }
}
