//! Metrics of the front-end, recorded through the `metrics` facade (the binary installs the
//! exporter; without one the macros are no-ops). Two wrappers add them without touching the
//! code they wrap:
//!
//! - [`MeteredDispatch`] wraps any [`Dispatch`]: requests, errors by type and latency per
//!   operation, and a bounded list of the most recent errors for the status page.
//! - [`MeteredStorage`] wraps any [`StoragePlane`]: incoming and outgoing bytes and records,
//!   throttles and iterator age per stream, and per shard for the streams a predicate selects
//!   (enhanced monitoring).
//!
//! Names follow `levee_<area>_<what>_<unit>`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use levee_map::ShardRoute;
use levee_protocol::ApiError;

use crate::backend::{
    AppendError, Appended, BoxFuture, MapHolder, ReadFrom, ReadOut, StoragePlane, Tip,
};
use crate::http::{Call, Dispatch, Reply};

/// Requests per operation (counter; label `operation`).
pub const API_REQUESTS: &str = "levee_api_requests_total";
/// Failed requests per operation and error type (counter; labels `operation`, `error`).
pub const API_ERRORS: &str = "levee_api_errors_total";
/// Latency per operation (histogram, seconds; label `operation`).
pub const API_LATENCY: &str = "levee_api_request_duration_seconds";
/// Recent errors kept for the status page.
pub const RECENT_ERRORS_MAX: usize = 50;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One failed request, as the status page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentError {
    pub at_ms: u64,
    pub operation: &'static str,
    pub error: &'static str,
    pub message: String,
}

/// The last [`RECENT_ERRORS_MAX`] errors, newest last; older ones are dropped.
#[derive(Debug, Default)]
pub struct RecentErrors(Mutex<VecDeque<RecentError>>);

/// The process's recent errors (one front-end per process, like the metrics recorder).
pub static RECENT_ERRORS: RecentErrors = RecentErrors(Mutex::new(VecDeque::new()));

/// Running totals the status page turns into throughput sparklines (monotonic counters).
#[derive(Debug, Default)]
pub struct Totals {
    pub requests: AtomicU64,
    pub errors: AtomicU64,
    pub in_records: AtomicU64,
    pub in_bytes: AtomicU64,
    pub out_records: AtomicU64,
    pub out_bytes: AtomicU64,
}

/// The process's totals.
pub static TOTALS: Totals = Totals {
    requests: AtomicU64::new(0),
    errors: AtomicU64::new(0),
    in_records: AtomicU64::new(0),
    in_bytes: AtomicU64::new(0),
    out_records: AtomicU64::new(0),
    out_bytes: AtomicU64::new(0),
};

impl RecentErrors {
    pub fn push(&self, e: RecentError) {
        let mut q = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() >= RECENT_ERRORS_MAX {
            q.pop_front();
        }
        q.push_back(e);
    }

    pub fn snapshot(&self) -> Vec<RecentError> {
        let q = self.0.lock().unwrap_or_else(|p| p.into_inner());
        q.iter().cloned().collect()
    }
}

/// Records a call the HTTP layer refused before dispatch (unknown operation, empty body, a
/// failed signature check), so it counts in the same request and error series and in the
/// recent errors as a dispatched one.
pub fn record_rejected(op: &'static str, e: &ApiError) {
    record(op, Instant::now(), &Err::<(), _>(e.clone()));
}

/// Wraps a [`Dispatch`] and records each call's outcome and latency.
pub struct MeteredDispatch {
    inner: Arc<dyn Dispatch>,
}

impl MeteredDispatch {
    pub fn new(inner: Arc<dyn Dispatch>) -> Self {
        Self { inner }
    }
}

/// Records one finished call (shared by the wrapper and its tests).
fn record<T>(op: &'static str, started: Instant, result: &Result<T, ApiError>) {
    TOTALS.requests.fetch_add(1, Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    metrics::counter!(API_REQUESTS, "operation" => op).increment(1);
    metrics::histogram!(API_LATENCY, "operation" => op).record(seconds);
    tracing::debug!(
        operation = op,
        ms = seconds * 1000.0,
        error = result.as_ref().err().map(|e| e.kind.type_name()),
        "request"
    );
    if let Err(e) = result {
        let error = e.kind.type_name();
        metrics::counter!(API_ERRORS, "operation" => op, "error" => error).increment(1);
        TOTALS.errors.fetch_add(1, Ordering::Relaxed);
        RECENT_ERRORS.push(RecentError {
            at_ms: now_ms(),
            operation: op,
            error,
            message: e.message.clone(),
        });
    }
}

impl Dispatch for MeteredDispatch {
    fn dispatch(
        &self,
        call: Call,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Reply, ApiError>> + Send>> {
        let op = call.op.name();
        let started = Instant::now();
        let fut = self.inner.dispatch(call);
        Box::pin(async move {
            let result = fut.await;
            record(op, started, &result);
            result
        })
    }
}

/// Bumped when the streams selected for shard-level series change (enhanced monitoring turned
/// on or off), so the label cache is rebuilt even when the shard map did not change.
static SHARD_LEVEL_EPOCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Tells the metering wrappers that the shard-level selection changed.
pub fn shard_level_changed() {
    SHARD_LEVEL_EPOCH.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
}

/// Selects the streams whose shards get their own series (enhanced monitoring).
pub type ShardLevel = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Where a shard's series go: its stream's name and, when selected, its shard id.
#[derive(Clone)]
struct Labels {
    stream: Arc<str>,
    shard: Option<Arc<str>>,
}

/// Wraps a [`StoragePlane`] and records per-stream (and selected per-shard) traffic.
pub struct MeteredStorage {
    inner: Arc<dyn StoragePlane>,
    maps: Arc<MapHolder>,
    shard_level: ShardLevel,
    /// Shard uid → labels of the shards used since the map's version last changed (bounded by
    /// the map's size). Keyed by (map version, shard-level selection epoch).
    labels: Mutex<((u64, u64), HashMap<u64, Labels>)>,
}

/// Per-stream incoming bytes (counter; label `stream`, and `shard` when enhanced).
pub const STREAM_IN_BYTES: &str = "levee_stream_incoming_bytes_total";
pub const STREAM_IN_RECORDS: &str = "levee_stream_incoming_records_total";
pub const STREAM_OUT_BYTES: &str = "levee_stream_outgoing_bytes_total";
pub const STREAM_OUT_RECORDS: &str = "levee_stream_outgoing_records_total";
/// Writes refused for throughput (counter).
pub const STREAM_THROTTLED: &str = "levee_stream_write_throttled_total";
/// Age of the last record a GetRecords returned (gauge, milliseconds).
pub const STREAM_ITERATOR_AGE: &str = "levee_stream_iterator_age_milliseconds";
/// Shard-level series carry this label.
const SHARD_LABEL: &str = "shard";

impl MeteredStorage {
    pub fn new(
        inner: Arc<dyn StoragePlane>,
        maps: Arc<MapHolder>,
        shard_level: ShardLevel,
    ) -> Self {
        Self {
            inner,
            maps,
            shard_level,
            labels: Mutex::new(((u64::MAX, u64::MAX), HashMap::new())),
        }
    }

    /// The labels of shard `uid`. Only shards that carry traffic are cached, and a new map
    /// version clears just those: a map of 100,000 shards costs a request nothing until one of
    /// its shards is used, and then one scan without allocation (never a rebuild of the whole
    /// map's labels on the request path).
    fn labels(&self, uid: u64) -> Option<Labels> {
        let map = self.maps.current();
        let key = (
            map.version(),
            SHARD_LEVEL_EPOCH.load(std::sync::atomic::Ordering::Acquire),
        );
        let mut cache = self.labels.lock().unwrap_or_else(|p| p.into_inner());
        if cache.0 != key {
            cache.1.clear();
            cache.0 = key;
        }
        if let Some(l) = cache.1.get(&uid) {
            return Some(l.clone());
        }
        let (stream, shard) = map
            .streams()
            .find_map(|s| s.shards.iter().find(|sh| sh.uid == uid).map(|sh| (s, sh)))?;
        let labels = Labels {
            stream: Arc::from(stream.name.as_str()),
            shard: (self.shard_level)(&stream.name)
                .then(|| Arc::from(shard.shard_id.to_string().as_str())),
        };
        cache.1.insert(uid, labels.clone());
        Some(labels)
    }
}

fn count(name: &'static str, l: &Labels, n: u64) {
    metrics::counter!(name, "stream" => l.stream.to_string()).increment(n);
    if let Some(shard) = &l.shard {
        metrics::counter!(name, "stream" => l.stream.to_string(), SHARD_LABEL => shard.to_string())
            .increment(n);
    }
}

fn gauge(name: &'static str, l: &Labels, v: f64) {
    metrics::gauge!(name, "stream" => l.stream.to_string()).set(v);
    if let Some(shard) = &l.shard {
        metrics::gauge!(name, "stream" => l.stream.to_string(), SHARD_LABEL => shard.to_string())
            .set(v);
    }
}

impl StoragePlane for MeteredStorage {
    fn append(
        &self,
        shard: &ShardRoute,
        records: Vec<(Bytes, Bytes)>,
    ) -> BoxFuture<Result<Appended, AppendError>> {
        let labels = self.labels(shard.uid);
        let n = records.len() as u64;
        let bytes: u64 = records
            .iter()
            .map(|(k, d)| (k.len() + d.len()) as u64)
            .sum();
        let fut = self.inner.append(shard, records);
        Box::pin(async move {
            let out = fut.await;
            if let Some(l) = &labels {
                match &out {
                    Ok(_) => {
                        TOTALS.in_records.fetch_add(n, Ordering::Relaxed);
                        TOTALS.in_bytes.fetch_add(bytes, Ordering::Relaxed);
                        count(STREAM_IN_RECORDS, l, n);
                        count(STREAM_IN_BYTES, l, bytes);
                    }
                    Err(AppendError::Api(e))
                        if e.kind == levee_protocol::ErrorKind::ProvisionedThroughputExceeded =>
                    {
                        count(STREAM_THROTTLED, l, n);
                    }
                    Err(_) => {}
                }
            }
            out
        })
    }

    fn read(
        &self,
        shard: &ShardRoute,
        from: ReadFrom,
        max_records: usize,
        max_bytes: u64,
    ) -> BoxFuture<Result<ReadOut, ApiError>> {
        let labels = self.labels(shard.uid);
        let fut = self.inner.read(shard, from, max_records, max_bytes);
        Box::pin(async move {
            let out = fut.await;
            if let (Some(l), Ok(r)) = (&labels, &out) {
                let bytes: u64 = r
                    .records
                    .iter()
                    .map(|x| (x.partition_key.len() + x.data.len()) as u64)
                    .sum();
                TOTALS
                    .out_records
                    .fetch_add(r.records.len() as u64, Ordering::Relaxed);
                TOTALS.out_bytes.fetch_add(bytes, Ordering::Relaxed);
                count(STREAM_OUT_RECORDS, l, r.records.len() as u64);
                count(STREAM_OUT_BYTES, l, bytes);
                let age = r
                    .records
                    .last()
                    .map_or(0, |x| now_ms().saturating_sub(x.arrival_ms));
                gauge(STREAM_ITERATOR_AGE, l, age as f64);
            }
            out
        })
    }

    fn tip(&self, shard: &ShardRoute) -> BoxFuture<Result<Tip, ApiError>> {
        self.inner.tip(shard)
    }

    fn append_signal(&self, shard: &ShardRoute) -> tokio::sync::watch::Receiver<()> {
        self.inner.append_signal(shard)
    }

    fn shard_limits(&self) -> Option<&crate::shard_limits::ShardLimiter> {
        self.inner.shard_limits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use levee_map::{even_split, GroupId, NodeId, ShardId, ShardMap, StreamRoute, StreamState};
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    struct Fake;
    impl StoragePlane for Fake {
        fn append(
            &self,
            _: &ShardRoute,
            _: Vec<(Bytes, Bytes)>,
        ) -> BoxFuture<Result<Appended, AppendError>> {
            Box::pin(async {
                Ok(Appended {
                    first_seq_ix: 0,
                    arrival_ms: 0,
                    shard_created_ms: 0,
                    encrypted: false,
                })
            })
        }
        fn read(
            &self,
            _: &ShardRoute,
            _: ReadFrom,
            _: usize,
            _: u64,
        ) -> BoxFuture<Result<ReadOut, ApiError>> {
            unreachable!("not read in this test")
        }
        fn tip(&self, _: &ShardRoute) -> BoxFuture<Result<Tip, ApiError>> {
            unreachable!("not read in this test")
        }
        fn append_signal(&self, _: &ShardRoute) -> tokio::sync::watch::Receiver<()> {
            tokio::sync::watch::channel(()).1
        }
    }

    fn stream(name: &str, uid: u64) -> StreamRoute {
        StreamRoute {
            name: name.into(),
            uid,
            state: StreamState::Active,
            shards: even_split(2)
                .into_iter()
                .enumerate()
                .map(|(i, r)| ShardRoute {
                    shard_id: ShardId(i as u32),
                    uid: uid * 100 + i as u64,
                    hash_range: r,
                    open: true,
                    group: GroupId(1),
                    node: NodeId(1),
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

    #[test]
    fn per_shard_series_only_for_streams_the_predicate_selects() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let maps = Arc::new(MapHolder::default());
        maps.install(ShardMap::build(1, vec![stream("hot", 1), stream("cold", 2)]).unwrap())
            .unwrap();
        let m = MeteredStorage::new(Arc::new(Fake), maps.clone(), Arc::new(|s: &str| s == "hot"));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        metrics::with_local_recorder(&recorder, || {
            for name in ["hot", "cold"] {
                let map = maps.current();
                let shard = &map.stream(name).unwrap().shards[1];
                let rec = vec![(Bytes::from_static(b"pk"), Bytes::from_static(b"data!"))];
                rt.block_on(m.append(shard, rec)).unwrap();
            }
        });
        let mut got: Vec<(String, Vec<String>, u64)> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .filter(|(k, ..)| k.key().name() == STREAM_IN_BYTES)
            .map(|(k, _, _, v)| {
                let labels = k
                    .key()
                    .labels()
                    .map(|l| format!("{}={}", l.key(), l.value()))
                    .collect();
                let DebugValue::Counter(n) = v else {
                    panic!("counter")
                };
                (k.key().name().to_owned(), labels, n)
            })
            .collect();
        got.sort();
        let l = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            got,
            vec![
                (STREAM_IN_BYTES.into(), l(&["stream=cold"]), 7),
                (STREAM_IN_BYTES.into(), l(&["stream=hot"]), 7),
                (
                    STREAM_IN_BYTES.into(),
                    l(&["stream=hot", "shard=shardId-000000000001"]),
                    7
                ),
            ]
        );
    }

    /// A new map version costs the next request one lookup, not a rebuild of every shard's
    /// labels: only the shards used are cached.
    #[test]
    fn labels_cache_only_the_shards_used_across_map_versions() {
        let maps = Arc::new(MapHolder::default());
        let mut big = stream("big", 9);
        big.shards = even_split(5_000)
            .into_iter()
            .enumerate()
            .map(|(i, r)| ShardRoute {
                shard_id: ShardId(i as u32),
                uid: 1_000_000 + i as u64,
                hash_range: r,
                open: true,
                group: GroupId(1),
                node: NodeId(1),
                epoch: 1,
                parent: None,
                adjacent_parent: None,
                created_ms: 0,
                closed_ms: None,
            })
            .collect();
        let m = MeteredStorage::new(Arc::new(Fake), maps.clone(), Arc::new(|s: &str| s == "big"));
        for version in 1..=3 {
            maps.install(ShardMap::build(version, vec![stream("s", 1), big.clone()]).unwrap())
                .unwrap();
            let l = m.labels(101).expect("shard of s");
            assert_eq!((&*l.stream, l.shard.is_none()), ("s", true));
            let l = m.labels(1_004_321).expect("shard of big");
            assert_eq!(
                (&*l.stream, l.shard.as_deref()),
                ("big", Some("shardId-000000004321"))
            );
            assert!(m.labels(7).is_none(), "no such shard");
            let cache = m.labels.lock().unwrap();
            assert_eq!(cache.0 .0, version);
            assert_eq!(cache.1.len(), 2, "only the shards used are cached");
        }
    }
}
