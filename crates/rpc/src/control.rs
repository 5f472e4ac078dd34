//! The control protocol: a front-end forwards control operations (CreateStream, ListShards'
//! cousins that change or read the catalog, consumer lookups) to the control plane.
//!
//! The control plane is the one component whose inbound load grows with the fleet, so it
//! protects itself: each endpoint admits a fixed number of concurrent calls and answers the
//! rest at once with HTTP 429 and a jittered `retry-after-ms`, and clients back off with full
//! jitter. A client retries only what certainly did not run (a refused connection, a 429), on
//! the next control address. Anything ambiguous (a timeout or a lost connection after sending)
//! is retried only when sending twice is harmless — a read, a registration, or a call with an
//! id, which the catalog runs at most once (`Command::Once`) — and otherwise returned to the
//! caller as AWS's retryable `InternalFailure`, never silently run twice.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::Full;
use hyper::{HeaderMap, Response as HttpResponse, StatusCode};
use levee_frontend::auth::Caller;
use levee_frontend::backend::{BoxFuture, ConsumerInfo};
use levee_protocol::{ApiError, ErrorKind, Operation, WireFormat};
use rand::Rng;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::client::{Pool, RpcError};
use crate::codec::{put_api, put_bytes, read_api, CodecError, Reader, FORMAT_VERSION, TAG_API};
use crate::transport::{self, plain, Connections, Handler, Limits};

pub const CALL_PATH: &str = "/control/v1/call";
pub const CONSUMER_PATH: &str = "/control/v1/consumer";
pub const REGISTER_PATH: &str = "/control/v1/register";
pub const MAP_SNAPSHOT_PATH: &str = "/map/v1/snapshot";
pub const MAP_DELTAS_PATH: &str = "/map/v1/deltas";
/// Messages between the control plane's Raft voters (`/raft/v1/<what>`), served by a
/// [`RaftHandler`].
pub const RAFT_PATH_PREFIX: &str = "/raft/v1/";
/// Every call's answer names the newest map version the control plane had published when it
/// answered: the forwarding front-end waits for its own map to reach it, so what a client saw
/// change through one front-end it can use there at once.
pub const MAP_VERSION_HEADER: &str = "x-levee-map-version";
/// The largest map feed answer a follower takes (a snapshot of about 700,000 shards).
pub const MAP_FEED_BYTES_MAX: usize = 64 << 20;
/// The longest a map long poll is held open.
pub const MAP_POLL_WAIT_MS_MAX: u64 = 20_000;
/// The header carrying how long to wait before retrying a refused call, in ms.
pub const RETRY_AFTER_MS_HEADER: &str = "retry-after-ms";

/// A forwarded control operation: the client's request body as it came, and who sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlCall {
    pub op: Operation,
    pub format: WireFormat,
    pub body: Bytes,
    /// The verified caller (`None` under `--auth insecure`).
    pub caller: Option<Caller>,
    /// A random id (0: none). A call sent again with the same id after its answer was lost
    /// runs at most once: the client may then retry anything ambiguous.
    pub id: u64,
}

/// What a node says about itself when it registers (and renews its lease).
///
/// Encoded as: format u8, id u64, role u8 (0 front-end, 1 storage, 2 control), address and
/// cell (u32 length + UTF-8), then the admin address (u32 length + UTF-8) — absent in
/// registrations from builds before it, read as empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub id: u64,
    /// A storage node (shards are placed on it), a front-end, or a control node.
    pub role: levee_map::NodeRole,
    /// `ip:port` others reach it at: a storage node's storage listener, a front-end's API
    /// listener, a control node's control listener.
    pub address: String,
    pub cell: String,
    /// `ip:port` of its admin listener (`/status.json`), for the fleet view.
    pub admin: String,
}

/// What the control plane does with forwarded calls.
pub trait ControlHandler: Send + Sync + 'static {
    /// Runs the operation; the answer is the encoded response body in `call.format`.
    fn call(&self, call: ControlCall) -> BoxFuture<Result<Vec<u8>, ApiError>>;
    fn consumer(&self, consumer_arn: String) -> BoxFuture<Result<ConsumerInfo, ApiError>>;
    /// Registers a node or renews its lease (AWS-style errors: a cell cap is LimitExceeded).
    fn register(&self, node: Registration) -> BoxFuture<Result<(), ApiError>>;
    /// The newest published map version (sent with every answer, [`MAP_VERSION_HEADER`]).
    fn map_version(&self) -> u64 {
        0
    }
}

/// The control plane's Raft messages between voters (append, vote, snapshot, forwarded
/// commands, membership changes), opaque to the transport.
pub trait RaftHandler: Send + Sync + 'static {
    /// Handles the message `what` (the path after [`RAFT_PATH_PREFIX`]); `Err` is a plain-text
    /// failure (bad message, unknown `what`), sent as HTTP 400.
    fn raft(&self, what: String, body: Bytes) -> BoxFuture<Result<Bytes, String>>;
}

/// The control plane's map feed, pre-serialised frames (see `levee_map::codec`).
pub trait MapFeed: Send + Sync + 'static {
    /// The latest map as one snapshot frame.
    fn snapshot(&self) -> BoxFuture<Bytes>;
    /// The latest map if it is at least version `at_least` (the asking node's own), or `None`
    /// when this control node is behind it (a voter still catching up): the asker then tries
    /// another, instead of being offered an older map than it has.
    fn snapshot_at_least(&self, at_least: u64) -> BoxFuture<Option<Bytes>> {
        let _ = at_least;
        let frame = self.snapshot();
        Box::pin(async move { Some(frame.await) })
    }
    /// Delta frames after `after`, or one snapshot frame; empty when nothing changed in `wait`.
    fn deltas(&self, after: u64, wait: Duration) -> BoxFuture<Bytes>;
}

pub fn encode_registration(r: &Registration) -> Bytes {
    let mut out = BytesMut::with_capacity(32 + r.address.len() + r.cell.len() + r.admin.len());
    out.put_u8(FORMAT_VERSION);
    out.put_u64_le(r.id);
    out.put_u8(r.role.code());
    put_bytes(&mut out, r.address.as_bytes());
    put_bytes(&mut out, r.cell.as_bytes());
    put_bytes(&mut out, r.admin.as_bytes());
    out.freeze()
}

pub fn decode_registration(body: Bytes) -> Result<Registration, CodecError> {
    let mut r = Reader::start(body)?;
    let id = r.u64()?;
    let role = levee_map::NodeRole::from_code(r.u8()?).ok_or(CodecError::Invalid("role"))?;
    let address = r.string("address")?;
    let cell = r.string("cell")?;
    let admin = if r.is_empty() {
        String::new()
    } else {
        r.string("admin address")?
    };
    r.end()?;
    Ok(Registration {
        id,
        role,
        address,
        cell,
        admin,
    })
}

fn encode_unit_result(result: &Result<(), ApiError>) -> Bytes {
    let mut out = BytesMut::new();
    out.put_u8(FORMAT_VERSION);
    match result {
        Ok(()) => out.put_u8(TAG_OK),
        Err(e) => {
            out.put_u8(TAG_API);
            put_api(&mut out, e);
        }
    }
    out.freeze()
}

fn decode_unit_result(body: Bytes) -> Result<Result<(), ApiError>, CodecError> {
    let mut r = Reader::start(body)?;
    let out = match r.u8()? {
        TAG_OK => Ok(()),
        TAG_API => Err(read_api(&mut r)?),
        _ => return Err(CodecError::Invalid("result tag")),
    };
    r.end()?;
    Ok(out)
}

const TAG_OK: u8 = 0;

fn format_byte(f: WireFormat) -> u8 {
    match f {
        WireFormat::Json => 0,
        WireFormat::Cbor => 1,
    }
}

pub fn encode_call(call: &ControlCall) -> Bytes {
    let mut out = BytesMut::with_capacity(64 + call.body.len());
    out.put_u8(FORMAT_VERSION);
    put_bytes(&mut out, call.op.name().as_bytes());
    out.put_u8(format_byte(call.format));
    match &call.caller {
        None => out.put_u8(0),
        Some(c) => {
            out.put_u8(1);
            put_bytes(&mut out, c.key_id.as_bytes());
            put_bytes(&mut out, c.account.as_bytes());
            put_bytes(&mut out, c.principal.arn.as_bytes());
        }
    }
    put_bytes(&mut out, &call.body);
    out.put_u64_le(call.id);
    out.freeze()
}

pub fn decode_call(body: Bytes) -> Result<ControlCall, CodecError> {
    let mut r = Reader::start(body)?;
    let op =
        Operation::from_name(&r.string("operation")?).ok_or(CodecError::Invalid("operation"))?;
    let format = match r.u8()? {
        0 => WireFormat::Json,
        1 => WireFormat::Cbor,
        _ => return Err(CodecError::Invalid("format")),
    };
    let caller = match r.u8()? {
        0 => None,
        1 => {
            let key_id = r.string("key id")?;
            let account = r.string("account")?;
            let arn = r.string("principal")?;
            Some(Caller {
                key_id,
                principal: levee_policy::Principal {
                    account: account.clone(),
                    arn,
                },
                account,
            })
        }
        _ => return Err(CodecError::Invalid("caller")),
    };
    let body = r.bytes()?;
    let id = r.u64()?;
    r.end()?;
    Ok(ControlCall {
        op,
        format,
        body,
        caller,
        id,
    })
}

pub fn encode_call_result(result: &Result<Vec<u8>, ApiError>) -> Bytes {
    let mut out = BytesMut::new();
    out.put_u8(FORMAT_VERSION);
    match result {
        Ok(body) => {
            out.put_u8(TAG_OK);
            put_bytes(&mut out, body);
        }
        Err(e) => {
            out.put_u8(TAG_API);
            put_api(&mut out, e);
        }
    }
    out.freeze()
}

pub fn decode_call_result(body: Bytes) -> Result<Result<Vec<u8>, ApiError>, CodecError> {
    let mut r = Reader::start(body)?;
    let out = match r.u8()? {
        TAG_OK => Ok(r.bytes()?.to_vec()),
        TAG_API => Err(read_api(&mut r)?),
        _ => return Err(CodecError::Invalid("result tag")),
    };
    r.end()?;
    Ok(out)
}

pub fn encode_consumer_result(result: &Result<ConsumerInfo, ApiError>) -> Bytes {
    let mut out = BytesMut::new();
    out.put_u8(FORMAT_VERSION);
    match result {
        Ok(c) => {
            out.put_u8(TAG_OK);
            put_bytes(&mut out, c.consumer_name.as_bytes());
            put_bytes(&mut out, c.consumer_arn.as_bytes());
            put_bytes(&mut out, c.stream_name.as_bytes());
            out.put_u8(c.active as u8);
            out.put_u64_le(c.created_ms);
        }
        Err(e) => {
            out.put_u8(TAG_API);
            put_api(&mut out, e);
        }
    }
    out.freeze()
}

pub fn decode_consumer_result(body: Bytes) -> Result<Result<ConsumerInfo, ApiError>, CodecError> {
    let mut r = Reader::start(body)?;
    let out = match r.u8()? {
        TAG_OK => Ok(ConsumerInfo {
            consumer_name: r.string("consumer name")?,
            consumer_arn: r.string("consumer arn")?,
            stream_name: r.string("stream name")?,
            active: r.bool("active")?,
            created_ms: r.u64()?,
        }),
        TAG_API => Err(read_api(&mut r)?),
        _ => return Err(CodecError::Invalid("result tag")),
    };
    r.end()?;
    Ok(out)
}

/// A fixed number of concurrent calls for one endpoint; the rest are refused at once.
pub struct Admission {
    name: &'static str,
    permits: Arc<Semaphore>,
    /// The base of the jittered retry hint: the hint is uniform in [base, 2 × base).
    retry_after_ms: u64,
}

impl Admission {
    pub fn new(name: &'static str, concurrency_max: usize, retry_after_ms: u64) -> Admission {
        metrics::gauge!("levee_control_admission_max", "endpoint" => name)
            .set(concurrency_max as f64);
        Admission {
            name,
            permits: Arc::new(Semaphore::new(concurrency_max)),
            retry_after_ms,
        }
    }

    /// A permit, or the 429 answer to send instead.
    #[allow(clippy::result_large_err)]
    pub fn enter(&self) -> Result<tokio::sync::OwnedSemaphorePermit, HttpResponse<Full<Bytes>>> {
        self.permits.clone().try_acquire_owned().map_err(|_| {
            metrics::counter!("levee_control_admission_refused_total", "endpoint" => self.name)
                .increment(1);
            let hint =
                self.retry_after_ms + rand::thread_rng().gen_range(0..self.retry_after_ms.max(1));
            let mut r = plain(
                StatusCode::TOO_MANY_REQUESTS,
                format!("{} is at its concurrency limit", self.name),
            );
            r.headers_mut().insert(
                hyper::header::RETRY_AFTER,
                hyper::header::HeaderValue::from(hint.div_ceil(1000)),
            );
            r.headers_mut().insert(
                RETRY_AFTER_MS_HEADER,
                hyper::header::HeaderValue::from(hint),
            );
            r
        })
    }
}

/// Limits of the control listener.
#[derive(Debug, Clone)]
pub struct ControlServerConfig {
    pub connections_max: usize,
    pub streams_per_connection_max: u32,
    pub body_bytes_max: usize,
    /// Concurrent forwarded calls; past it, 429.
    pub calls_in_flight_max: usize,
    /// Concurrent consumer lookups; past it, 429.
    pub lookups_in_flight_max: usize,
    /// Concurrent map long polls (one per following node); past it, 429.
    pub map_polls_in_flight_max: usize,
    /// Concurrent Raft messages from other voters (a few per voter); past it, 429.
    pub raft_in_flight_max: usize,
    /// Concurrent map snapshots, admitted apart from the long polls so a booting or lagging
    /// node gets its snapshot even while every poll permit is held; past it, 429.
    pub map_snapshots_in_flight_max: usize,
    pub retry_after_ms: u64,
}

impl Default for ControlServerConfig {
    fn default() -> Self {
        ControlServerConfig {
            connections_max: 1024,
            streams_per_connection_max: 64,
            body_bytes_max: 1 << 20,
            calls_in_flight_max: 64,
            lookups_in_flight_max: 256,
            map_polls_in_flight_max: 1024,
            raft_in_flight_max: 64,
            map_snapshots_in_flight_max: 64,
            retry_after_ms: 100,
        }
    }
}

/// The control plane's listener for forwarded calls.
pub struct ControlServer {
    handler: Arc<dyn ControlHandler>,
    maps: Option<Arc<dyn MapFeed>>,
    raft: Option<Arc<dyn RaftHandler>>,
    config: ControlServerConfig,
    connections: Arc<Connections>,
    calls: Admission,
    lookups: Admission,
    map_polls: Admission,
    raft_messages: Admission,
    map_snapshots: Admission,
}

impl ControlServer {
    pub fn new(
        handler: Arc<dyn ControlHandler>,
        config: ControlServerConfig,
    ) -> Arc<ControlServer> {
        Self::with_maps(handler, None, config)
    }

    /// A control listener that also serves the map feed.
    pub fn with_maps(
        handler: Arc<dyn ControlHandler>,
        maps: Option<Arc<dyn MapFeed>>,
        config: ControlServerConfig,
    ) -> Arc<ControlServer> {
        Self::with_raft(handler, maps, None, config)
    }

    /// A control listener that also serves the map feed and the Raft messages of a voter.
    pub fn with_raft(
        handler: Arc<dyn ControlHandler>,
        maps: Option<Arc<dyn MapFeed>>,
        raft: Option<Arc<dyn RaftHandler>>,
        config: ControlServerConfig,
    ) -> Arc<ControlServer> {
        Arc::new(ControlServer {
            handler,
            maps,
            raft,
            raft_messages: Admission::new("raft", config.raft_in_flight_max, config.retry_after_ms),
            map_polls: Admission::new("map", config.map_polls_in_flight_max, config.retry_after_ms),
            map_snapshots: Admission::new(
                "map_snapshot",
                config.map_snapshots_in_flight_max,
                config.retry_after_ms,
            ),
            connections: Arc::new(Connections::new(&Self::limits(&config))),
            calls: Admission::new("call", config.calls_in_flight_max, config.retry_after_ms),
            lookups: Admission::new(
                "consumer",
                config.lookups_in_flight_max,
                config.retry_after_ms,
            ),
            config,
        })
    }

    fn limits(config: &ControlServerConfig) -> Limits {
        Limits {
            name: "control",
            connections_max: config.connections_max,
            streams_per_connection_max: config.streams_per_connection_max,
            body_bytes_max: config.body_bytes_max,
        }
    }

    pub fn connections(&self) -> usize {
        self.connections.open()
    }

    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) {
        let limits = Self::limits(&self.config);
        let connections = self.connections.clone();
        transport::serve(listener, shutdown, limits, connections, self).await
    }

    async fn http(&self, path: String, body: Bytes) -> HttpResponse<Full<Bytes>> {
        match path.as_str() {
            CALL_PATH => {
                let _permit = match self.calls.enter() {
                    Ok(p) => p,
                    Err(refused) => return refused,
                };
                let call = match decode_call(body) {
                    Ok(c) => c,
                    Err(e) => return plain(StatusCode::BAD_REQUEST, e.to_string()),
                };
                let op = call.op.name();
                let result = self.handler.call(call).await;
                metrics::counter!("levee_control_calls_total", "op" => op, "outcome" => if result.is_ok() { "ok" } else { "api_error" })
                    .increment(1);
                let mut answer = transport::message(encode_call_result(&result));
                answer.headers_mut().insert(
                    MAP_VERSION_HEADER,
                    hyper::header::HeaderValue::from(self.handler.map_version()),
                );
                answer
            }
            REGISTER_PATH => {
                let _permit = match self.calls.enter() {
                    Ok(p) => p,
                    Err(refused) => return refused,
                };
                let node = match decode_registration(body) {
                    Ok(n) => n,
                    Err(e) => return plain(StatusCode::BAD_REQUEST, e.to_string()),
                };
                let result = self.handler.register(node).await;
                transport::message(encode_unit_result(&result))
            }
            MAP_SNAPSHOT_PATH | MAP_DELTAS_PATH => {
                let Some(maps) = &self.maps else {
                    return plain(StatusCode::NOT_FOUND, format!("no map feed at {path}"));
                };
                let admission = if path == MAP_SNAPSHOT_PATH {
                    &self.map_snapshots
                } else {
                    &self.map_polls
                };
                let _permit = match admission.enter() {
                    Ok(p) => p,
                    Err(refused) => return refused,
                };
                if path == MAP_SNAPSHOT_PATH {
                    // Older followers send the format byte alone.
                    let at_least = match Reader::start(body) {
                        Ok(r) if r.is_empty() => 0,
                        Ok(mut r) => match (r.u64(), r.end()) {
                            (Ok(v), Ok(())) => v,
                            _ => return plain(StatusCode::BAD_REQUEST, "bad snapshot ask".into()),
                        },
                        Err(e) => return plain(StatusCode::BAD_REQUEST, e.to_string()),
                    };
                    return match maps.snapshot_at_least(at_least).await {
                        Some(frame) => transport::message(frame),
                        None => plain(
                            StatusCode::SERVICE_UNAVAILABLE,
                            format!("this control node's map is older than version {at_least}"),
                        ),
                    };
                }
                let mut r = match Reader::start(body) {
                    Ok(r) => r,
                    Err(e) => return plain(StatusCode::BAD_REQUEST, e.to_string()),
                };
                let (after, wait_ms) = match (r.u64(), r.u64(), r.end()) {
                    (Ok(a), Ok(w), Ok(())) => (a, w.min(MAP_POLL_WAIT_MS_MAX)),
                    _ => return plain(StatusCode::BAD_REQUEST, "bad map poll".into()),
                };
                transport::message(maps.deltas(after, Duration::from_millis(wait_ms)).await)
            }
            CONSUMER_PATH => {
                let _permit = match self.lookups.enter() {
                    Ok(p) => p,
                    Err(refused) => return refused,
                };
                let mut r = match Reader::start(body) {
                    Ok(r) => r,
                    Err(e) => return plain(StatusCode::BAD_REQUEST, e.to_string()),
                };
                let arn = match r.string("consumer arn") {
                    Ok(a) => a,
                    Err(e) => return plain(StatusCode::BAD_REQUEST, e.to_string()),
                };
                if let Err(e) = r.end() {
                    return plain(StatusCode::BAD_REQUEST, e.to_string());
                }
                let result = self.handler.consumer(arn).await;
                transport::message(encode_consumer_result(&result))
            }
            p if p.starts_with(RAFT_PATH_PREFIX) => {
                let Some(raft) = &self.raft else {
                    return plain(StatusCode::NOT_FOUND, format!("not a Raft voter: {path}"));
                };
                let _permit = match self.raft_messages.enter() {
                    Ok(p) => p,
                    Err(refused) => return refused,
                };
                let what = p[RAFT_PATH_PREFIX.len()..].to_owned();
                match raft.raft(what, body).await {
                    Ok(answer) => transport::message(answer),
                    Err(e) => plain(StatusCode::BAD_REQUEST, e),
                }
            }
            _ => plain(StatusCode::NOT_FOUND, format!("no endpoint at {path}")),
        }
    }
}

impl Handler for ControlServer {
    fn handle(
        self: Arc<Self>,
        path: String,
        _headers: HeaderMap,
        body: Bytes,
    ) -> BoxFuture<HttpResponse<Full<Bytes>>> {
        Box::pin(async move { self.http(path, body).await })
    }
}

/// How a client retries.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// All attempts of one call end by this deadline.
    pub deadline_ms: u64,
    /// Full jitter: attempt `n` waits uniform in [0, min(cap, base × 2^n)).
    pub backoff_base_ms: u64,
    pub backoff_cap_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            deadline_ms: 5_000,
            backoff_base_ms: 50,
            backoff_cap_ms: 1_000,
        }
    }
}

impl RetryPolicy {
    /// The full-jitter wait before attempt `attempt` (0-based) of a retry.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self
            .backoff_base_ms
            .saturating_mul(1u64 << attempt.min(20))
            .min(self.backoff_cap_ms)
            .max(1);
        Duration::from_millis(rand::thread_rng().gen_range(0..ceiling))
    }
}

/// The answer a client gives when no control plane answered in time: AWS's retryable
/// internal failure, with a message saying what happened.
pub fn control_unavailable() -> ApiError {
    ApiError::new(
        ErrorKind::InternalFailure,
        "The control plane is unavailable; catalog changes wait until it is back. Retry the request.",
    )
}

/// A front-end's client of the control plane: calls go to one of `addresses`, moving on to
/// the next when a connection is refused.
pub struct RemoteControl {
    pool: Arc<Pool>,
    addresses: Vec<SocketAddr>,
    next: AtomicUsize,
    retry: RetryPolicy,
}

impl RemoteControl {
    pub fn new(pool: Arc<Pool>, addresses: Vec<SocketAddr>, retry: RetryPolicy) -> RemoteControl {
        let start = if addresses.is_empty() {
            0
        } else {
            rand::thread_rng().gen_range(0..addresses.len())
        };
        RemoteControl {
            pool,
            addresses,
            next: AtomicUsize::new(start),
            retry,
        }
    }

    /// The same control plane through a pool of its own (one connection per address): what
    /// a map follower on its own runtime uses, so its connections live there.
    pub fn with_own_pool(&self) -> RemoteControl {
        RemoteControl::new(
            Pool::new(crate::client::PoolConfig {
                name: "map",
                connections_max: self.addresses.len().clamp(1, 8),
                response_bytes_max: MAP_FEED_BYTES_MAX,
                ..crate::client::PoolConfig::default()
            }),
            self.addresses.clone(),
            self.retry.clone(),
        )
    }

    pub async fn call(&self, call: &ControlCall) -> Result<Vec<u8>, ApiError> {
        self.call_versioned(call).await.0
    }

    /// [`RemoteControl::call`], with the map version the control plane had published when it
    /// answered (0 when it did not say, or did not answer).
    pub async fn call_versioned(&self, call: &ControlCall) -> (Result<Vec<u8>, ApiError>, u64) {
        let answer = match self
            .exchange_answer(CALL_PATH, encode_call(call), 0, call.id != 0)
            .await
        {
            Ok(a) => a,
            Err(e) => return (Err(e), 0),
        };
        let version = answer
            .headers
            .get(MAP_VERSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let result = decode_call_result(answer.body).unwrap_or_else(|e| {
            tracing::error!(error = %e, "undecodable control answer");
            Err(ApiError::internal_failure())
        });
        (result, version)
    }

    /// Registers this node (or renews its lease).
    pub async fn register(&self, node: &Registration) -> Result<(), ApiError> {
        let answer = self
            .exchange(REGISTER_PATH, encode_registration(node))
            .await?;
        decode_unit_result(answer).map_err(|e| {
            tracing::error!(error = %e, "undecodable control answer");
            ApiError::internal_failure()
        })?
    }

    /// The control plane's latest map, one snapshot frame.
    pub async fn map_snapshot(&self) -> Result<Bytes, ApiError> {
        self.exchange(MAP_SNAPSHOT_PATH, Bytes::from_static(&[FORMAT_VERSION]))
            .await
    }

    /// The latest map from a control node that has at least version `at_least` (a control
    /// node behind it answers 503, and the next address is asked).
    pub async fn map_snapshot_at_least(&self, at_least: u64) -> Result<Bytes, ApiError> {
        let mut body = BytesMut::with_capacity(9);
        body.put_u8(FORMAT_VERSION);
        body.put_u64_le(at_least);
        self.exchange(MAP_SNAPSHOT_PATH, body.freeze()).await
    }

    /// Map frames after version `after`, held up to `wait` for a change.
    pub async fn map_deltas(&self, after: u64, wait: Duration) -> Result<Bytes, ApiError> {
        let wait_ms = (wait.as_millis() as u64).min(MAP_POLL_WAIT_MS_MAX);
        let mut body = BytesMut::with_capacity(17);
        body.put_u8(FORMAT_VERSION);
        body.put_u64_le(after);
        body.put_u64_le(wait_ms);
        Ok(self
            .exchange_answer(MAP_DELTAS_PATH, body.freeze(), wait_ms, true)
            .await?
            .body)
    }

    pub async fn consumer(&self, consumer_arn: &str) -> Result<ConsumerInfo, ApiError> {
        let mut body = BytesMut::new();
        body.put_u8(FORMAT_VERSION);
        put_bytes(&mut body, consumer_arn.as_bytes());
        let answer = self.exchange(CONSUMER_PATH, body.freeze()).await?;
        decode_consumer_result(answer).map_err(|e| {
            tracing::error!(error = %e, "undecodable control answer");
            ApiError::internal_failure()
        })?
    }

    /// Registrations, consumer lookups and map fetches are safe to send twice.
    async fn exchange(&self, path: &str, body: Bytes) -> Result<Bytes, ApiError> {
        Ok(self.exchange_answer(path, body, 0, true).await?.body)
    }

    async fn exchange_answer(
        &self,
        path: &str,
        body: Bytes,
        extra_ms: u64,
        // Sending it twice is harmless (a read, a registration, a call with an id): an
        // ambiguous failure is retried on the next address too.
        repeatable: bool,
    ) -> Result<crate::client::Answer, ApiError> {
        if self.addresses.is_empty() {
            return Err(control_unavailable());
        }
        let deadline = tokio::time::Instant::now() + Duration::from_millis(self.retry.deadline_ms);
        let mut attempt = 0u32;
        loop {
            let n = self.next.load(Ordering::Relaxed);
            let addr = self.addresses[n % self.addresses.len()];
            let mut wait = self.retry.backoff(attempt);
            match self.pool.post(addr, path, body.clone(), extra_ms).await {
                Ok(a) if a.status.is_success() => return Ok(a),
                Ok(a) if a.status == StatusCode::TOO_MANY_REQUESTS => {
                    // Refused before it ran: safe to retry, no sooner than the hint.
                    let hint = a
                        .headers
                        .get(RETRY_AFTER_MS_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0);
                    wait = wait.max(Duration::from_millis(hint));
                }
                // A control node that cannot answer yet (a voter behind the asker's map): it
                // ran nothing, try the next address.
                Ok(a) if a.status == StatusCode::SERVICE_UNAVAILABLE => {
                    tracing::debug!(%addr, "control node not ready; trying the next");
                    let _ = self.next.compare_exchange(
                        n,
                        n.wrapping_add(1),
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                }
                Ok(a) => {
                    tracing::error!(%addr, status = a.status.as_u16(), "control plane refused a call");
                    return Err(ApiError::internal_failure());
                }
                Err(RpcError::Refused) => {}
                Err(RpcError::Connect(..)) => {
                    // Nothing was sent: try the next address.
                    let _ = self.next.compare_exchange(
                        n,
                        n.wrapping_add(1),
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                }
                Err(e) if repeatable => {
                    // It may have run, but running it again is harmless: the next address.
                    tracing::debug!(%addr, error = %e, "control call failed; retrying");
                    let _ = self.next.compare_exchange(
                        n,
                        n.wrapping_add(1),
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                }
                Err(e) => {
                    // It may have run: let the caller decide (AWS clients retry 500s).
                    tracing::warn!(%addr, error = %e, "control call failed");
                    return Err(control_unavailable());
                }
            }
            attempt += 1;
            if tokio::time::Instant::now() + wait >= deadline {
                return Err(control_unavailable());
            }
            tokio::time::sleep(wait).await;
        }
    }
}

/// The version of the map a follower holds now.
pub type HeldVersion = Arc<dyn Fn() -> u64 + Send + Sync>;

/// A follower's [`levee_frontend::map_follow::MapSource`] on the control plane's map feed,
/// through [`RemoteControl`] (failover across control addresses, backoff on 429). With the
/// follower's held version, snapshots come only from a control node at least that far (a voter
/// catching up is skipped rather than offering an older map).
pub struct RemoteMapSource(pub Arc<RemoteControl>, pub Option<HeldVersion>);

impl levee_frontend::map_follow::MapSource for RemoteMapSource {
    fn snapshot(&self) -> BoxFuture<Result<Bytes, levee_frontend::map_follow::SourceError>> {
        let control = self.0.clone();
        let at_least = self.1.as_ref().map_or(0, |held| held());
        Box::pin(async move {
            let frame = if at_least == 0 {
                control.map_snapshot().await
            } else {
                control.map_snapshot_at_least(at_least).await
            };
            frame.map_err(|e| levee_frontend::map_follow::SourceError(e.message))
        })
    }

    fn deltas(
        &self,
        after: u64,
        wait: Duration,
    ) -> BoxFuture<Result<Bytes, levee_frontend::map_follow::SourceError>> {
        let control = self.0.clone();
        Box::pin(async move {
            control
                .map_deltas(after, wait)
                .await
                .map_err(|e| levee_frontend::map_follow::SourceError(e.message))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn calls_round_trip(body in proptest::collection::vec(any::<u8>(), 0..100), cbor in any::<bool>(), who in proptest::option::of(("[A-Z0-9]{4,20}", "[0-9]{12}")), id in any::<u64>()) {
            let call = ControlCall {
                op: Operation::CreateStream,
                format: if cbor { WireFormat::Cbor } else { WireFormat::Json },
                body: Bytes::from(body),
                caller: who.map(|(key_id, account)| Caller {
                    principal: levee_policy::Principal::of_credential(&account, "alice", &key_id),
                    key_id,
                    account,
                }),
                id,
            };
            prop_assert_eq!(decode_call(encode_call(&call)), Ok(call));
        }

        #[test]
        fn garbage_never_panics(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_call(Bytes::from(body.clone()));
            let _ = decode_call_result(Bytes::from(body.clone()));
            let _ = decode_consumer_result(Bytes::from(body));
        }
    }

    #[test]
    fn registrations_round_trip() {
        let mut r = Registration {
            id: 7,
            role: levee_map::NodeRole::Storage,
            address: "127.0.0.3:4600".into(),
            cell: "cell-1".into(),
            admin: "127.0.0.3:4590".into(),
        };
        assert_eq!(decode_registration(encode_registration(&r)), Ok(r.clone()));
        r.role = levee_map::NodeRole::Control;
        assert_eq!(decode_registration(encode_registration(&r)), Ok(r.clone()));
        // A registration from a build without admin addresses: read with none.
        let mut old = BytesMut::new();
        old.put_u8(FORMAT_VERSION);
        old.put_u64_le(7);
        old.put_u8(1);
        put_bytes(&mut old, b"127.0.0.3:4600");
        put_bytes(&mut old, b"cell-1");
        r.role = levee_map::NodeRole::Storage;
        r.admin.clear();
        assert_eq!(decode_registration(old.freeze()), Ok(r));
        let ok = Ok(());
        assert_eq!(decode_unit_result(encode_unit_result(&ok)), Ok(ok));
    }

    #[test]
    fn results_round_trip() {
        let ok: Result<Vec<u8>, ApiError> = Ok(b"{}".to_vec());
        assert_eq!(decode_call_result(encode_call_result(&ok)), Ok(ok));
        let err: Result<Vec<u8>, ApiError> = Err(ApiError::limit_exceeded("too many"));
        assert_eq!(decode_call_result(encode_call_result(&err)), Ok(err));
        let c: Result<ConsumerInfo, ApiError> = Ok(ConsumerInfo {
            consumer_name: "c".into(),
            consumer_arn: "arn:c".into(),
            stream_name: "s".into(),
            active: true,
            created_ms: 42,
        });
        assert_eq!(decode_consumer_result(encode_consumer_result(&c)), Ok(c));
    }

    #[test]
    fn full_jitter_stays_under_its_ceiling() {
        let p = RetryPolicy {
            deadline_ms: 1,
            backoff_base_ms: 10,
            backoff_cap_ms: 100,
        };
        for attempt in 0..30 {
            let ceiling = (10u64 << attempt.min(20)).min(100);
            assert!(p.backoff(attempt) < Duration::from_millis(ceiling));
        }
    }
}
