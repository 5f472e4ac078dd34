//! The workloads: `put` (PutRecords or PutRecord from N concurrent callers), `get` (read-back of
//! a prepared backlog with GetShardIterator + GetRecords, one reader per shard), `e2e` (paced
//! PutRecord producers and a consumer per shard — polling GetRecords, or an enhanced fan-out
//! consumer on a SubscribeToShard event stream — put → visible latency) and `mixed` (the same
//! with batched producers and tailing consumers on many shards). Each
//! creates its own stream, warms up, measures for a fixed time and deletes the stream. Every loop
//! is bounded by the deadline or by a count; request bodies for `put` are prebuilt and their
//! SHA-256 computed once, so the generator's per-request cost is the signature and the HTTP
//! exchange.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::BodyExt as _;
use rand::{Rng as _, RngCore as _};
use serde::Deserialize;
use serde_json::json;
use tokio::task::JoinSet;

use crate::client::{sha256_hex, Kinesis, Reply, REQUEST_TIMEOUT_MS};
use crate::scan::{GetRecordsCount, RecordScan};
use crate::stats::{BenchResult, CpuProbe, Latency, SliceSummary};
use crate::subscribe::{position_after, Next, ShardEvent, Subscription};

/// Distinct prebuilt request bodies a `put` run cycles through.
const BODIES_PREBUILT: usize = 32;
/// Records per PutRecords call when filling the `get` backlog.
const FILL_BATCH_RECORDS: usize = 500;
/// Concurrent PutRecords calls when filling the `get` backlog.
const FILL_CONCURRENCY: usize = 8;
/// How long filling the `get` backlog may take.
const FILL_TIMEOUT_MS: u64 = 300_000;
/// How long e2e consumers keep polling after the producers stop, for records in flight.
const E2E_DRAIN_MS: u64 = 2_000;
/// Pause before subscribing again after a failed or refused subscription.
const RESUBSCRIBE_BACKOFF_MS: u64 = 200;
/// How often a subscribed consumer waiting for an event checks whether it is done.
const SUBSCRIBE_CHECK_MS: u64 = 50;
/// Pause after a failed request, so a failing server is not spun against.
const ERROR_BACKOFF_MS: u64 = 1;
/// Marks an e2e record: magic, then the send time in nanoseconds since the process's base.
const E2E_MAGIC: &[u8; 8] = b"LVBENCH1";
/// Largest record the generator builds (the Kinesis limit).
pub const RECORD_SIZE_BYTES_MAX: usize = 1 << 20;

/// Settings shared by every workload.
#[derive(Clone, Debug)]
pub struct Common {
    pub target: String,
    pub server_pid: Option<u32>,
    pub metrics_url: Option<String>,
    pub shards: u32,
    pub duration: Duration,
    pub warmup: Duration,
    pub stream: Option<String>,
    pub keep_stream: bool,
}

impl Common {
    fn stream_name(&self, kind: &str) -> String {
        self.stream.clone().unwrap_or_else(|| {
            format!(
                "levee-bench-{kind}-{}-{:06x}",
                std::process::id(),
                rand::thread_rng().gen::<u32>() & 0xff_ffff
            )
        })
    }
}

/// Counts one worker keeps and the run merges.
#[derive(Default)]
struct Tally {
    requests: u64,
    records: u64,
    bytes: u64,
    errors: u64,
    error_sample: Option<String>,
    latency: Latency,
}

impl Tally {
    fn error(&mut self, count: u64, what: impl FnOnce() -> String) {
        self.errors += count;
        if self.error_sample.is_none() {
            self.error_sample = Some(what());
        }
    }

    fn merge(&mut self, other: Tally) {
        self.requests += other.requests;
        self.records += other.records;
        self.bytes += other.bytes;
        self.errors += other.errors;
        if self.error_sample.is_none() {
            self.error_sample = other.error_sample;
        }
        self.latency.merge(&other.latency);
    }

    fn into_result(
        self,
        c: &Common,
        kind: &str,
        workload: String,
        params: serde_json::Value,
        elapsed: Duration,
    ) -> BenchResult {
        let secs = elapsed.as_secs_f64().max(1e-9);
        BenchResult {
            target: c.target.clone(),
            kind: kind.to_string(),
            workload,
            params,
            elapsed_s: secs,
            requests: self.requests,
            records: self.records,
            bytes: self.bytes,
            errors: self.errors,
            error_sample: self.error_sample,
            records_per_s: self.records as f64 / secs,
            mb_per_s: self.bytes as f64 / secs / 1e6,
            requests_per_s: self.requests as f64 / secs,
            latency: self.latency.summary(),
            ..BenchResult::default()
        }
    }
}

fn random_data(size: usize) -> Vec<u8> {
    let mut data = vec![0u8; size];
    rand::thread_rng().fill_bytes(&mut data);
    data
}

fn partition_key() -> String {
    format!("pk-{:016x}", rand::thread_rng().gen::<u64>())
}

/// A PutRecords body of `n` random records of `size` bytes with random partition keys.
fn put_records_body(stream: &str, n: usize, size: usize) -> Result<Bytes> {
    let records: Vec<_> = (0..n)
        .map(|_| json!({"Data": B64.encode(random_data(size)), "PartitionKey": partition_key()}))
        .collect();
    Ok(Bytes::from(serde_json::to_vec(
        &json!({"StreamName": stream, "Records": records}),
    )?))
}

fn put_record_body(stream: &str, data: &[u8]) -> Result<Bytes> {
    Ok(Bytes::from(serde_json::to_vec(
        &json!({"StreamName": stream, "Data": B64.encode(data), "PartitionKey": partition_key()}),
    )?))
}

/// A PutRecords body of `n` copies of the stamped e2e record `data`, each with its own random
/// partition key (so a batch spreads over the shards).
fn stamped_put_records_body(stream: &str, data: &[u8], n: usize) -> Result<Bytes> {
    let encoded = B64.encode(data);
    let records: Vec<_> = (0..n)
        .map(|_| json!({"Data": encoded, "PartitionKey": partition_key()}))
        .collect();
    Ok(Bytes::from(serde_json::to_vec(
        &json!({"StreamName": stream, "Records": records}),
    )?))
}

/// `"FailedRecordCount": N` from a PutRecords answer without parsing the whole answer.
fn failed_record_count(body: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b"\"FailedRecordCount\"";
    let at = body.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let rest = body.get(at..)?;
    let digits: String = rest
        .iter()
        .skip_while(|b| b.is_ascii_whitespace() || **b == b':')
        .take_while(|b| b.is_ascii_digit())
        .map(|b| *b as char)
        .collect();
    digits.parse().ok()
}

/// The first `"ErrorCode":"…"` of a PutRecords answer.
fn first_error_code(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    text.find("\"ErrorCode\"")
        .and_then(|i| text.get(i..))
        .map(|s| s.chars().take(120).collect())
        .unwrap_or_else(|| "unknown record failure".to_string())
}

/// Which put operation a `put` run drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PutOp {
    PutRecords,
    PutRecord,
}

#[derive(Clone, Debug)]
pub struct PutOpts {
    pub op: PutOp,
    pub concurrency: usize,
    pub record_size: usize,
    pub batch_size: usize,
    /// Equal time slices of the measured window reported separately (1: none). More than one
    /// makes this a `growth` run: does the append cost stay flat as the shards fill up?
    pub slices: usize,
}

/// Times a measured window: warm-up first, then `duration`.
struct Window {
    measure_from: Instant,
    deadline: Instant,
}

impl Window {
    fn new(c: &Common) -> Self {
        let measure_from = Instant::now() + c.warmup;
        Window {
            measure_from,
            deadline: measure_from + c.duration,
        }
    }
}

pub async fn put(k: &Kinesis, c: &Common, o: &PutOpts) -> Result<BenchResult> {
    if o.record_size == 0 || o.record_size > RECORD_SIZE_BYTES_MAX {
        bail!("record size must be 1..={RECORD_SIZE_BYTES_MAX} bytes");
    }
    let stream = c.stream_name("put");
    k.create_stream(&stream, c.shards).await?;
    let (op_name, per_request) = match o.op {
        PutOp::PutRecords => ("PutRecords", o.batch_size.clamp(1, 500)),
        PutOp::PutRecord => ("PutRecord", 1),
    };
    let mut bodies = Vec::with_capacity(BODIES_PREBUILT);
    for _ in 0..BODIES_PREBUILT {
        let body = match o.op {
            PutOp::PutRecords => put_records_body(&stream, per_request, o.record_size)?,
            PutOp::PutRecord => put_record_body(&stream, &random_data(o.record_size))?,
        };
        let hash = sha256_hex(&body);
        bodies.push((body, hash));
    }
    let bodies = Arc::new(bodies);
    let window = Window::new(c);
    let mut tasks = JoinSet::new();
    for worker in 0..o.concurrency.max(1) {
        let k = k.clone();
        let bodies = bodies.clone();
        let (measure_from, deadline) = (window.measure_from, window.deadline);
        let record_size = o.record_size as u64;
        let slices = o.slices.max(1);
        let slice_s = c.duration.as_secs_f64().max(1e-9) / slices as f64;
        tasks.spawn(async move {
            let mut per_slice: Vec<Tally> = (0..slices).map(|_| Tally::default()).collect();
            let mut i = worker;
            while Instant::now() < deadline {
                let (body, hash) = &bodies[i % bodies.len()];
                i += 1;
                let start = Instant::now();
                let reply = k.call(op_name, body.clone(), Some(hash)).await;
                let took = start.elapsed();
                let measured = start >= measure_from;
                let slot = (start.saturating_duration_since(measure_from).as_secs_f64() / slice_s)
                    as usize;
                let t = &mut per_slice[slot.min(slices - 1)];
                match reply {
                    Ok(r) if r.is_ok() => {
                        let failed = if op_name == "PutRecords" {
                            failed_record_count(&r.body).unwrap_or(0)
                        } else {
                            0
                        };
                        if measured {
                            t.requests += 1;
                            t.latency.record(took);
                            let ok = (per_request as u64).saturating_sub(failed);
                            t.records += ok;
                            t.bytes += ok * record_size;
                            if failed > 0 {
                                t.error(failed, || first_error_code(&r.body));
                            }
                        }
                    }
                    Ok(r) => {
                        if measured {
                            t.error(per_request as u64, || r.error_type());
                        }
                        tokio::time::sleep(Duration::from_millis(ERROR_BACKOFF_MS)).await;
                    }
                    Err(e) => {
                        if measured {
                            t.error(per_request as u64, || format!("{e:#}"));
                        }
                        tokio::time::sleep(Duration::from_millis(ERROR_BACKOFF_MS)).await;
                    }
                }
            }
            per_slice
        });
    }
    tokio::time::sleep_until(window.measure_from.into()).await;
    let probe = CpuProbe::start(c.server_pid, c.metrics_url.as_deref());
    let slices = o.slices.max(1);
    let mut slice_totals: Vec<Tally> = (0..slices).map(|_| Tally::default()).collect();
    while let Some(worker) = tasks.join_next().await {
        for (total, t) in slice_totals.iter_mut().zip(worker?) {
            total.merge(t);
        }
    }
    let elapsed = window.measure_from.elapsed();
    let slice_s = c.duration.as_secs_f64().max(1e-9) / slices as f64;
    let slice_summaries: Vec<SliceSummary> = slice_totals
        .iter()
        .map(|t| {
            let l = t.latency.summary();
            SliceSummary {
                records_per_s: t.records as f64 / slice_s,
                p50_ms: l.p50_ms,
                p99_ms: l.p99_ms,
            }
        })
        .collect();
    let mut total = Tally::default();
    for t in slice_totals {
        total.merge(t);
    }
    let workload = match o.op {
        PutOp::PutRecords => format!(
            "PutRecords {per_request}×{} B, c={}",
            o.record_size, o.concurrency
        ),
        PutOp::PutRecord => format!("PutRecord {} B, c={}", o.record_size, o.concurrency),
    };
    let params = json!({"op": op_name, "concurrency": o.concurrency, "record_size": o.record_size,
        "batch_size": per_request, "shards": c.shards, "duration_s": c.duration.as_secs_f64(), "slices": slices});
    let (kind, workload) = if slices > 1 {
        (
            "growth",
            format!(
                "growth: {workload} into {} shard(s), {slices} slices",
                c.shards
            ),
        )
    } else {
        ("put", workload)
    };
    let mut result = total.into_result(c, kind, workload, params, elapsed);
    probe.finish(&mut result);
    if slices > 1 {
        let figures: Vec<String> = slice_summaries
            .iter()
            .map(|s| format!("{:.0}/s p50 {:.2} ms", s.records_per_s, s.p50_ms))
            .collect();
        result
            .notes
            .push(format!("slices of {slice_s:.1} s: {}", figures.join("; ")));
        result.slices = slice_summaries;
    }
    if !c.keep_stream {
        k.delete_stream(&stream).await;
    }
    Ok(result)
}

#[derive(Clone, Debug)]
pub struct GetOpts {
    pub backlog_records: u64,
    pub record_size: usize,
    pub limit: u32,
}

#[derive(Deserialize)]
struct GetRecordsOut<'a> {
    #[serde(rename = "Records", default, borrow)]
    records: Vec<RecordOut<'a>>,
    #[serde(rename = "NextShardIterator")]
    next: Option<String>,
}

#[derive(Deserialize)]
struct RecordOut<'a> {
    #[serde(rename = "Data", borrow)]
    data: Cow<'a, str>,
}

/// A GetRecords answer as [`read_records`] read it.
enum RecordsReply {
    /// Scanned as it streamed in (`None`: it did not scan).
    Counted(Option<GetRecordsCount>),
    /// Collected, then scanned (chunk by chunk, as it arrived) and parsed in full.
    Checked {
        scan: Option<GetRecordsCount>,
        full: std::result::Result<GetRecordsCount, String>,
    },
    /// An error answer.
    Refused(Reply),
}

/// Sends GetRecords and counts the answer's records without collecting it, or, to `check` the
/// scan, also collected and parsed; the whole exchange is bounded by the request timeout.
async fn read_records(k: &Kinesis, body: Bytes, check: bool) -> Result<RecordsReply> {
    let exchange = async {
        let resp = k.call_body("GetRecords", body).await?;
        let status = resp.status();
        let mut body = resp.into_body();
        if !status.is_success() {
            let body = body.collect().await?.to_bytes();
            return Ok(RecordsReply::Refused(Reply { status, body }));
        }
        let mut scan = RecordScan::default();
        let mut kept = Vec::new();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                scan.feed(&data);
                if check {
                    kept.extend_from_slice(&data);
                }
            }
        }
        Ok(if check {
            RecordsReply::Checked {
                scan: scan.finish(),
                full: parse_get_records(&kept),
            }
        } else {
            RecordsReply::Counted(scan.finish())
        })
    };
    tokio::time::timeout(Duration::from_millis(REQUEST_TIMEOUT_MS), exchange)
        .await
        .map_err(|_| anyhow!("GetRecords: no answer within {REQUEST_TIMEOUT_MS} ms"))?
}

/// [`GetRecordsCount`] by a full parse.
fn parse_get_records(body: &[u8]) -> std::result::Result<GetRecordsCount, String> {
    let out: GetRecordsOut<'_> =
        serde_json::from_slice(body).map_err(|e| format!("GetRecords answer: {e}"))?;
    let bytes = out
        .records
        .iter()
        .map(|r| base64_decoded_len(&r.data))
        .sum();
    Ok((out.records.len() as u64, bytes, out.next))
}

/// Bytes a standard base64 string decodes to, without decoding it.
fn base64_decoded_len(s: &str) -> u64 {
    let padding = s.bytes().rev().take_while(|b| *b == b'=').count();
    ((s.len() / 4) * 3).saturating_sub(padding) as u64
}

/// Fills `stream` with `records` records of `size` bytes; returns how many were accepted.
async fn fill(k: &Kinesis, stream: &str, records: u64, size: usize) -> Result<u64> {
    let batches = records.div_ceil(FILL_BATCH_RECORDS as u64);
    let next = Arc::new(AtomicU64::new(0));
    let accepted = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_millis(FILL_TIMEOUT_MS);
    let mut bodies = Vec::with_capacity(BODIES_PREBUILT);
    for _ in 0..BODIES_PREBUILT {
        let body = put_records_body(stream, FILL_BATCH_RECORDS, size)?;
        let hash = sha256_hex(&body);
        bodies.push((body, hash));
    }
    let bodies = Arc::new(bodies);
    let mut tasks = JoinSet::new();
    for _ in 0..FILL_CONCURRENCY {
        let (k, next, accepted, bodies) =
            (k.clone(), next.clone(), accepted.clone(), bodies.clone());
        tasks.spawn(async move {
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= batches || Instant::now() >= deadline {
                    return;
                }
                let (body, hash) = &bodies[(b as usize) % bodies.len()];
                if let Ok(r) = k.call("PutRecords", body.clone(), Some(hash)).await {
                    if r.is_ok() {
                        let failed = failed_record_count(&r.body).unwrap_or(0);
                        accepted.fetch_add(
                            (FILL_BATCH_RECORDS as u64).saturating_sub(failed),
                            Ordering::Relaxed,
                        );
                    }
                }
            }
        });
    }
    while let Some(t) = tasks.join_next().await {
        t?;
    }
    Ok(accepted.load(Ordering::Relaxed))
}

pub async fn get(k: &Kinesis, c: &Common, o: &GetOpts) -> Result<BenchResult> {
    let stream = c.stream_name("get");
    let shards = k.create_stream(&stream, c.shards).await?;
    let fill_start = Instant::now();
    let stored = fill(k, &stream, o.backlog_records, o.record_size).await?;
    let fill_took = fill_start.elapsed();
    let window = Window::new(c);
    let passes = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for shard in shards.clone() {
        let (k, stream, passes) = (k.clone(), stream.clone(), passes.clone());
        let (measure_from, deadline, limit) = (window.measure_from, window.deadline, o.limit);
        tasks.spawn(async move {
            let mut t = Tally::default();
            let mut scanned = 0u64;
            let mut parse_all = false;
            'passes: while Instant::now() < deadline {
                let mut iterator = match k.shard_iterator(&stream, &shard, "TRIM_HORIZON").await {
                    Ok(it) => it,
                    Err(e) => {
                        t.error(1, || format!("{e:#}"));
                        tokio::time::sleep(Duration::from_millis(ERROR_BACKOFF_MS)).await;
                        continue;
                    }
                };
                while Instant::now() < deadline {
                    let body = json!({"ShardIterator": iterator, "Limit": limit});
                    let body = match serde_json::to_vec(&body) {
                        Ok(b) => Bytes::from(b),
                        Err(_) => break 'passes,
                    };
                    let start = Instant::now();
                    // The first answer and every 64th are collected and parsed in full, and
                    // must agree with the scan; the rest are only scanned as they stream in.
                    // A reader whose answers do not scan parses them all.
                    let check = scanned.is_multiple_of(64) || parse_all;
                    scanned += 1;
                    let reply = read_records(&k, body, check).await;
                    let took = start.elapsed();
                    let measured = start >= measure_from;
                    let out = match reply {
                        Ok(RecordsReply::Counted(Some(c))) => Ok(c),
                        Ok(RecordsReply::Counted(None)) => Err(
                            "GetRecords answer does not scan (and was not kept to parse)".into(),
                        ),
                        Ok(RecordsReply::Checked { scan, full }) => {
                            parse_all |= scan.is_none();
                            full.and_then(|full| match scan {
                                Some(s) if s != full => Err(format!(
                                    "GetRecords answer: scanned {:?} but parsed {:?}",
                                    (s.0, s.1),
                                    (full.0, full.1)
                                )),
                                _ => Ok(full),
                            })
                        }
                        Ok(RecordsReply::Refused(r)) => {
                            if measured {
                                t.error(1, || r.error_type());
                            }
                            tokio::time::sleep(Duration::from_millis(ERROR_BACKOFF_MS)).await;
                            continue;
                        }
                        Err(e) => {
                            if measured {
                                t.error(1, || format!("{e:#}"));
                            }
                            tokio::time::sleep(Duration::from_millis(ERROR_BACKOFF_MS)).await;
                            continue 'passes;
                        }
                    };
                    let (records, bytes, next) = match out {
                        Ok(o) => o,
                        Err(e) => {
                            t.error(1, || e);
                            continue 'passes;
                        }
                    };
                    if measured {
                        t.requests += 1;
                        t.latency.record(took);
                        t.records += records;
                        t.bytes += bytes;
                    }
                    match next {
                        Some(next) if records > 0 => iterator = next,
                        _ => {
                            passes.fetch_add(1, Ordering::Relaxed);
                            continue 'passes;
                        }
                    }
                }
            }
            t
        });
    }
    tokio::time::sleep_until(window.measure_from.into()).await;
    let probe = CpuProbe::start(c.server_pid, c.metrics_url.as_deref());
    let mut total = Tally::default();
    while let Some(t) = tasks.join_next().await {
        total.merge(t?);
    }
    let elapsed = window.measure_from.elapsed();
    let workload = format!(
        "GetRecords read-back, {} B records, {} shards",
        o.record_size, c.shards
    );
    let params = json!({"backlog_records": o.backlog_records, "record_size": o.record_size, "limit": o.limit,
        "shards": c.shards, "readers": shards.len(), "duration_s": c.duration.as_secs_f64()});
    let mut result = total.into_result(c, "get", workload, params, elapsed);
    probe.finish(&mut result);
    result.notes.push(format!(
        "backlog: {stored} of {} records stored in {:.2} s ({:.0} records/s at c={FILL_CONCURRENCY}); {} full read passes over {} shards",
        o.backlog_records,
        fill_took.as_secs_f64(),
        stored as f64 / fill_took.as_secs_f64().max(1e-9),
        passes.load(Ordering::Relaxed),
        shards.len()
    ));
    if !c.keep_stream {
        k.delete_stream(&stream).await;
    }
    Ok(result)
}

/// How the e2e consumer reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ConsumerKind {
    /// GetRecords in a loop, one reader per shard.
    Poll,
    /// An enhanced fan-out consumer with one SubscribeToShard event stream per shard.
    Subscribe,
}

impl ConsumerKind {
    fn as_str(self) -> &'static str {
        match self {
            ConsumerKind::Poll => "poll",
            ConsumerKind::Subscribe => "subscribe",
        }
    }
}

#[derive(Clone, Debug)]
pub struct E2eOpts {
    /// A `mixed` run (reported as such): many shards, batched producers, tailing consumers.
    pub mixed: bool,
    pub consumer: ConsumerKind,
    /// Records per put call: 1 sends PutRecord, more send PutRecords (at most 500).
    pub batch_size: usize,
    pub rate: f64,
    pub producers: usize,
    pub record_size: usize,
    pub poll_interval: Duration,
    pub limit: u32,
    /// Polling readers per shard (`mixed`): the first is the measured consumer, the others only
    /// load (the same read concurrency on fewer shards, for the thread comparison).
    pub readers_per_shard: usize,
}

/// Nanoseconds since this process's first call, the clock both ends of e2e share.
fn now_ns() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    u64::try_from(BASE.get_or_init(Instant::now).elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// What an e2e consumer shares with the run: when measuring started and how many measured
/// records have been seen (so consumers stop once they have every acknowledged record).
#[derive(Clone)]
struct Seen {
    measure_from_ns: u64,
    received: Arc<AtomicU64>,
    sent: Arc<AtomicU64>,
    producers_done: Arc<AtomicBool>,
}

impl Seen {
    /// Whether the producers have stopped and every record they had acknowledged was seen.
    fn all_seen(&self) -> bool {
        self.producers_done.load(Ordering::Acquire)
            && self.received.load(Ordering::Acquire) >= self.sent.load(Ordering::Acquire)
    }

    /// Counts one received record (base64 `Data`) seen at `seen_ns` if it is a measured e2e
    /// record: its latency is `seen_ns` minus the send time it carries.
    fn record(&self, t: &mut Tally, data_b64: &str, seen_ns: u64) {
        let Ok(data) = B64.decode(data_b64.as_bytes()) else {
            t.error(1, || "record data is not base64".to_string());
            return;
        };
        let (Some(magic), Some(stamp)) = (data.get(..8), data.get(8..16)) else {
            return;
        };
        if magic != E2E_MAGIC {
            return;
        }
        let mut ns = [0u8; 8];
        ns.copy_from_slice(stamp);
        let sent_ns = u64::from_le_bytes(ns);
        if sent_ns >= self.measure_from_ns {
            t.latency
                .record(Duration::from_nanos(seen_ns.saturating_sub(sent_ns)));
            t.records += 1;
            t.bytes += data.len() as u64;
            self.received.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// A polling consumer of one shard: GetRecords from `iterator` until every measured record
/// was seen or `deadline`.
async fn poll_shard(
    k: Kinesis,
    iterator: String,
    seen: Seen,
    poll: Duration,
    limit: u32,
    deadline: Instant,
) -> Tally {
    poll_shard_paced(k, iterator, seen, poll, limit, deadline, false).await
}

/// [`poll_shard`], pausing after every answer when `pause_always` (a load-only reader: it reads
/// at a fixed pace, however far behind the tip it falls).
async fn poll_shard_paced(
    k: Kinesis,
    mut iterator: String,
    seen: Seen,
    poll: Duration,
    limit: u32,
    deadline: Instant,
    pause_always: bool,
) -> Tally {
    let mut t = Tally::default();
    while Instant::now() < deadline && !seen.all_seen() {
        let body = match serde_json::to_vec(&json!({"ShardIterator": iterator, "Limit": limit})) {
            Ok(b) => Bytes::from(b),
            Err(_) => break,
        };
        let r = match k.call("GetRecords", body, None).await {
            Ok(r) if r.is_ok() => r,
            Ok(r) => {
                t.error(1, || format!("GetRecords: {}", r.error_type()));
                tokio::time::sleep(poll.max(Duration::from_millis(ERROR_BACKOFF_MS))).await;
                continue;
            }
            Err(e) => {
                t.error(1, || format!("GetRecords: {e:#}"));
                tokio::time::sleep(poll.max(Duration::from_millis(ERROR_BACKOFF_MS))).await;
                continue;
            }
        };
        let seen_ns = now_ns();
        t.requests += 1;
        let out: GetRecordsOut<'_> = match serde_json::from_slice(&r.body) {
            Ok(o) => o,
            Err(e) => {
                t.error(1, || format!("GetRecords answer: {e}"));
                break;
            }
        };
        let empty = out.records.is_empty();
        for rec in &out.records {
            seen.record(&mut t, &rec.data, seen_ns);
        }
        match out.next {
            Some(next) => iterator = next,
            None => break,
        }
        if (empty || pause_always) && !poll.is_zero() {
            tokio::time::sleep(poll).await;
        }
    }
    t
}

/// A SubscribeToShard consumer of one shard: reads events from `sub` (already past its
/// `initial-response`) until every measured record was seen or `deadline`, renewing the
/// subscription from its last ContinuationSequenceNumber whenever it ends. Returns the tally,
/// how many times it subscribed again, and whether a stream lacked `initial-response`.
async fn subscribe_shard(
    k: Kinesis,
    consumer_arn: String,
    shard: String,
    sub: Subscription,
    seen: Seen,
    deadline: Instant,
) -> (Tally, u64, bool) {
    let mut t = Tally::default();
    let mut sub = Some(sub);
    let mut continuation: Option<String> = None;
    let mut renewals = 0u64;
    let mut no_initial_response = !sub.as_ref().is_some_and(|s| s.had_initial_response);
    while Instant::now() < deadline && !seen.all_seen() {
        let Some(s) = sub.as_mut() else {
            let position = position_after(continuation.as_deref());
            let open_by = (Instant::now()
                + Duration::from_millis(crate::client::REQUEST_TIMEOUT_MS))
            .min(deadline);
            match Subscription::open(&k, &consumer_arn, &shard, position, open_by.into()).await {
                Ok(s) => {
                    renewals += 1;
                    no_initial_response |= !s.had_initial_response;
                    sub = Some(s);
                }
                Err(e) => {
                    t.error(1, || format!("{e:#}"));
                    tokio::time::sleep(Duration::from_millis(RESUBSCRIBE_BACKOFF_MS)).await;
                }
            }
            continue;
        };
        let wake = (Instant::now() + Duration::from_millis(SUBSCRIBE_CHECK_MS)).min(deadline);
        match s.next(wake.into()).await {
            Ok(Next::Event(payload)) => {
                let seen_ns = now_ns();
                let event: ShardEvent<'_> = match serde_json::from_slice(&payload) {
                    Ok(e) => e,
                    Err(e) => {
                        t.error(1, || format!("SubscribeToShardEvent payload: {e}"));
                        continue;
                    }
                };
                t.requests += 1;
                for rec in event.records.iter().flatten() {
                    seen.record(&mut t, &rec.data, seen_ns);
                }
                match event.continuation {
                    Some(c) if !c.is_empty() => continuation = Some(c),
                    // No continuation: the shard has ended (ChildShards); nothing more to read.
                    _ => {
                        if event.child_shards.is_some_and(|c| !c.is_empty()) {
                            break;
                        }
                    }
                }
            }
            Ok(Next::Ended) => sub = None,
            Ok(Next::Idle) => {}
            Err(e) => {
                t.error(1, || format!("{e:#}"));
                sub = None;
                tokio::time::sleep(Duration::from_millis(RESUBSCRIBE_BACKOFF_MS)).await;
            }
        }
    }
    (t, renewals, no_initial_response)
}

pub async fn e2e(k: &Kinesis, c: &Common, o: &E2eOpts) -> Result<BenchResult> {
    if o.record_size < 16 || o.record_size > RECORD_SIZE_BYTES_MAX {
        bail!("e2e records must be 16..={RECORD_SIZE_BYTES_MAX} bytes (they carry a timestamp)");
    }
    if o.rate <= 0.0 {
        bail!("e2e needs a positive --rate");
    }
    let stream = c.stream_name("e2e");
    let shards = k.create_stream(&stream, c.shards).await?;
    let _ = now_ns();
    // The consumers' starting points, fixed before anything is written: a LATEST iterator per
    // shard, or a registered consumer and an open subscription (past its initial-response).
    let mut iterators = Vec::new();
    let mut subscriptions = Vec::new();
    let mut consumer_arn = String::new();
    match o.consumer {
        ConsumerKind::Poll => {
            for shard in &shards {
                iterators.push(k.shard_iterator(&stream, shard, "LATEST").await?);
            }
        }
        ConsumerKind::Subscribe => {
            consumer_arn = k
                .register_consumer(&stream, &format!("levee-bench-{}", std::process::id()))
                .await?;
            for shard in &shards {
                let open_by =
                    Instant::now() + Duration::from_millis(crate::client::REQUEST_TIMEOUT_MS);
                let sub = Subscription::open(
                    k,
                    &consumer_arn,
                    shard,
                    position_after(None),
                    open_by.into(),
                )
                .await?;
                subscriptions.push((shard.clone(), sub));
            }
        }
    }
    let window = Window::new(c);
    let seen = Seen {
        measure_from_ns: now_ns() + u64::try_from(c.warmup.as_nanos()).unwrap_or(u64::MAX),
        received: Arc::new(AtomicU64::new(0)),
        sent: Arc::new(AtomicU64::new(0)),
        producers_done: Arc::new(AtomicBool::new(false)),
    };
    let sent_measured = seen.sent.clone();
    let received_measured = seen.received.clone();
    let producers_done = seen.producers_done.clone();
    let renewals = Arc::new(AtomicU64::new(0));
    let no_initial_response = Arc::new(AtomicBool::new(false));

    // Consumers: one per shard.
    let mut consumers = JoinSet::new();
    let consumer_deadline = window.deadline + Duration::from_millis(E2E_DRAIN_MS);
    // Extra readers: their own count of what they saw (so they never end the measured
    // consumers' wait), stopping with the producers.
    let load_seen = Seen {
        received: Arc::new(AtomicU64::new(0)),
        sent: Arc::new(AtomicU64::new(0)),
        ..seen.clone()
    };
    // Each asks for what a tailing consumer of one of `readers` shards would find per poll, and
    // pauses after every answer: the read pattern of many shards' consumers, on fewer shards.
    let readers = (iterators.len() * o.readers_per_shard.max(1)) as f64;
    let load_limit = (o.rate * o.poll_interval.as_secs_f64() / readers).ceil() as u32;
    let load_limit = load_limit.clamp(1, o.limit.max(1));
    let mut load_readers = JoinSet::new();
    for iterator in iterators {
        for _ in 1..o.readers_per_shard.max(1) {
            load_readers.spawn(poll_shard_paced(
                k.clone(),
                iterator.clone(),
                load_seen.clone(),
                o.poll_interval,
                load_limit,
                consumer_deadline,
                true,
            ));
        }
        consumers.spawn(poll_shard(
            k.clone(),
            iterator,
            seen.clone(),
            o.poll_interval,
            o.limit,
            consumer_deadline,
        ));
    }
    for (shard, sub) in subscriptions {
        let (k, arn, seen, renewals, no_initial) = (
            k.clone(),
            consumer_arn.clone(),
            seen.clone(),
            renewals.clone(),
            no_initial_response.clone(),
        );
        consumers.spawn(async move {
            let (t, n, lacked) = subscribe_shard(k, arn, shard, sub, seen, consumer_deadline).await;
            renewals.fetch_add(n, Ordering::Relaxed);
            if lacked {
                no_initial.store(true, Ordering::Relaxed);
            }
            t
        });
    }

    // Producers: paced PutRecord (or PutRecords) calls, each record carrying its send time.
    let mut producers = JoinSet::new();
    let n = o.producers.max(1);
    let per_call = o.batch_size.clamp(1, 500);
    let op = if per_call == 1 {
        "PutRecord"
    } else {
        "PutRecords"
    };
    let interval = Duration::from_secs_f64(n as f64 * per_call as f64 / o.rate);
    for _ in 0..n {
        let (k, stream, sent) = (k.clone(), stream.clone(), sent_measured.clone());
        let (measure_from, deadline, size) = (window.measure_from, window.deadline, o.record_size);
        producers.spawn(async move {
            let mut t = Tally::default();
            let mut pad = random_data(size);
            let mut next = Instant::now();
            while next < deadline {
                tokio::time::sleep_until(next.into()).await;
                next += interval;
                let start = Instant::now();
                let sent_ns = now_ns();
                pad[..8].copy_from_slice(E2E_MAGIC);
                pad[8..16].copy_from_slice(&sent_ns.to_le_bytes());
                let body = if per_call == 1 {
                    put_record_body(&stream, &pad)
                } else {
                    stamped_put_records_body(&stream, &pad, per_call)
                };
                let Ok(body) = body else {
                    break;
                };
                let measured = start >= measure_from;
                match k.call(op, body, None).await {
                    Ok(r) if r.is_ok() => {
                        let failed = if per_call > 1 {
                            failed_record_count(&r.body).unwrap_or(0)
                        } else {
                            0
                        };
                        if measured {
                            t.latency.record(start.elapsed());
                            t.requests += 1;
                            sent.fetch_add(
                                (per_call as u64).saturating_sub(failed),
                                Ordering::AcqRel,
                            );
                            if failed > 0 {
                                t.error(failed, || first_error_code(&r.body));
                            }
                        }
                    }
                    Ok(r) => t.error(per_call as u64, || format!("{op}: {}", r.error_type())),
                    Err(e) => t.error(per_call as u64, || format!("{op}: {e:#}")),
                }
                // Behind schedule by more than one interval: skip ahead rather than burst.
                let now = Instant::now();
                if now > next + interval {
                    next = now;
                }
            }
            t
        });
    }
    tokio::time::sleep_until(window.measure_from.into()).await;
    let probe = CpuProbe::start(c.server_pid, c.metrics_url.as_deref());
    let mut puts = Tally::default();
    while let Some(t) = producers.join_next().await {
        puts.merge(t?);
    }
    let produced_until = Instant::now();
    producers_done.store(true, Ordering::Release);
    let mut seen = Tally::default();
    while let Some(t) = consumers.join_next().await {
        seen.merge(t?);
    }
    // The extra readers' calls and errors count; their latencies do not.
    let (mut load_calls, mut load_errors, mut load_error) = (0u64, 0u64, None);
    while let Some(t) = load_readers.join_next().await {
        let t = t?;
        load_calls += t.requests;
        load_errors += t.errors;
        load_error = load_error.or(t.error_sample);
    }
    let elapsed = produced_until.saturating_duration_since(window.measure_from);
    let sent = sent_measured.load(Ordering::Acquire);
    let received = received_measured.load(Ordering::Acquire);
    let how = match o.consumer {
        ConsumerKind::Poll => "polling GetRecords",
        ConsumerKind::Subscribe => "SubscribeToShard",
    };
    let (kind, workload) = if o.mixed {
        (
            "mixed",
            format!(
                "mixed: {n} producers of {op} {per_call}×{} B at {:.0} records/s over {} shards, {how} every {:.0} ms per shard{}",
                o.record_size,
                o.rate,
                c.shards,
                o.poll_interval.as_secs_f64() * 1000.0,
                if o.readers_per_shard > 1 {
                    format!(" by {} readers each", o.readers_per_shard)
                } else {
                    String::new()
                }
            ),
        )
    } else {
        (
            "e2e",
            format!(
                "put → visible ({how}), {} B at {:.0}/s, {} shards",
                o.record_size, o.rate, c.shards
            ),
        )
    };
    let params = json!({"consumer": o.consumer.as_str(), "rate": o.rate, "producers": n, "batch_size": per_call,
        "record_size": o.record_size, "shards": c.shards,
        "poll_interval_ms": o.poll_interval.as_secs_f64() * 1000.0, "duration_s": c.duration.as_secs_f64(),
        "readers_per_shard": o.readers_per_shard.max(1)});
    let errors = puts.errors + seen.errors + load_errors;
    let error_sample = puts
        .error_sample
        .take()
        .or(seen.error_sample.take())
        .or(load_error);
    let put_latency = puts.latency.summary();
    let requests = puts.requests;
    let events = seen.requests;
    let mut result = seen.into_result(c, kind, workload, params, elapsed);
    result.requests = requests;
    result.requests_per_s = requests as f64 / elapsed.as_secs_f64().max(1e-9);
    result.errors = errors;
    result.error_sample = error_sample;
    result.put_latency = Some(put_latency);
    probe.finish(&mut result);
    if received < sent {
        result.notes.push(format!(
            "{} of {sent} acknowledged records never seen by the consumer",
            sent - received
        ));
    }
    let put_rate = sent as f64 / elapsed.as_secs_f64().max(1e-9);
    if no_initial_response.load(Ordering::Relaxed) {
        result.notes.push(
            "a SubscribeToShard event stream started without initial-response (AWS sends it first)"
                .to_string(),
        );
    }
    match o.consumer {
        ConsumerKind::Subscribe => result.notes.push(format!(
            "put rate {put_rate:.0} records/s acknowledged; {events} SubscribeToShardEvents received; {} renewed subscription(s)",
            renewals.load(Ordering::Relaxed),
        )),
        ConsumerKind::Poll => result.notes.push(format!(
            "put rate {put_rate:.0} records/s acknowledged; {events} GetRecords calls ({:.0}/s)",
            events as f64 / elapsed.as_secs_f64().max(1e-9)
        )),
    }
    if o.readers_per_shard > 1 {
        result.notes.push(format!(
            "{} more readers per shard (load only: Limit {load_limit}, a pause after every answer) made {load_calls} GetRecords calls ({:.0}/s)",
            o.readers_per_shard - 1,
            load_calls as f64 / elapsed.as_secs_f64().max(1e-9)
        ));
    }
    if !c.keep_stream {
        k.delete_stream(&stream).await;
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scanning_a_get_records_answer_agrees_with_parsing_it() {
        let compact = br#"{"Records":[{"SequenceNumber":"1","ApproximateArrivalTimestamp":1.5,"Data":"AAEC","PartitionKey":"k"},{"SequenceNumber":"2","Data":"AA==","PartitionKey":"Data"}],"NextShardIterator":"abc/+=","MillisBehindLatest":0}"#;
        let scanned = crate::scan::scan_get_records(compact).expect("compact");
        assert_eq!(scanned, (2, 4, Some("abc/+=".into())));
        assert_eq!(parse_get_records(compact).unwrap(), scanned);
        let end = br#"{"Records":[],"NextShardIterator":null,"ChildShards":[]}"#;
        assert_eq!(crate::scan::scan_get_records(end), Some((0, 0, None)));
        assert_eq!(parse_get_records(end).unwrap(), (0, 0, None));
        // Not the compact form: left to the parser.
        let spaced = br#"{"Records": [{"Data": "AAEC"}], "NextShardIterator": "x"}"#;
        assert_eq!(crate::scan::scan_get_records(spaced), None);
        assert_eq!(parse_get_records(spaced).unwrap(), (1, 3, Some("x".into())));
    }

    #[test]
    fn failed_count_parses() {
        assert_eq!(
            failed_record_count(br#"{"FailedRecordCount":3,"Records":[]}"#),
            Some(3)
        );
        assert_eq!(
            failed_record_count(br#"{"Records":[], "FailedRecordCount" : 0}"#),
            Some(0)
        );
        assert_eq!(failed_record_count(br#"{"Records":[]}"#), None);
    }

    #[test]
    fn decoded_len() {
        for n in 0..20 {
            let s = B64.encode(vec![7u8; n]);
            assert_eq!(base64_decoded_len(&s), n as u64);
        }
    }
}
