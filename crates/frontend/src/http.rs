//! The HTTP layer: one listener serving HTTP/1.1 and HTTP/2 with prior knowledge (h2c, as the
//! Java SDK's async client speaks on `http://`) on the same port, the checks AWS makes before an
//! operation runs (method, content type, target, authentication header shape), request ids, and
//! a bounded number of connections, and read timeouts for a request's head and body. It hands
//! each well-formed call to a [`Dispatch`].
//!
//! Order of the pre-dispatch checks and their answers follow AWS as recorded by kinesalite's
//! newest tests (`test/connection.js`):
//! 1. a body over the limit → 413;
//! 2. `OPTIONS` with an `Origin` → 200, empty, with CORS headers (a preflight); any other
//!    request with an `Origin` gets `Access-Control-Allow-Origin`/`-Expose-Headers` on its answer;
//! 3. a method other than POST → 403 XML `AccessDeniedException`;
//! 4. an empty body → 400 `SerializationException` (known operation) or
//!    `UnknownOperationException`, in JSON if the content type is awsJson 1.1, else in CBOR;
//! 5. a content type other than awsJson 1.1, CBOR or `application/json` → 404 XML
//!    `<UnknownOperationException/>` if the target names a service and an operation, else 403
//!    XML `AccessDeniedException`;
//! 6. a body that is not an object → 400 `SerializationException`;
//! 7. `application/json` → Coral's old envelope (`{"Output":{"__type":…},"Version":"1.0"}`): 404
//!    `UnknownOperationException` (or 400 `SerializationException` from step 6); AWS never runs
//!    an operation for it;
//! 8. an unknown target → 400 `UnknownOperationException`;
//! 9. the signature ([`crate::auth`]): both forms → `InvalidSignatureException`; none →
//!    `MissingAuthenticationTokenException`; a malformed one → `IncompleteSignatureException`;
//!    then (verify mode) the signature itself.
//!
//! XML errors carry no `Content-Type`, as AWS's. Steps 4–8 say nothing about credentials, so
//! answering them before the signature leaks nothing; every operation still runs only after 9.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, CONTENT_LENGTH, CONTENT_TYPE,
    ORIGIN,
};
use hyper::{Method, Request, Response, StatusCode, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use levee_protocol::{ApiError, ErrorKind, Operation, WireFormat};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Semaphore};

/// Largest request body accepted: a 10 MiB PutRecords grows by a third as base64 JSON.
pub const REQUEST_BODY_BYTES_MAX: usize = 16 << 20;
/// Connections served at once; further ones wait in the listen backlog.
pub const CONNECTIONS_MAX_DEFAULT: usize = 4096;
/// How long graceful shutdown waits for in-flight requests.
pub const SHUTDOWN_GRACE_MS: u64 = 10_000;
/// How long a client may take to send a request's head (HTTP/1.1; slowloris defence). Depending
/// on the hyper version it also bounds an idle keep-alive connection's wait for its next request,
/// so it stays at hyper's own default (30 s), longer than SDKs keep idle connections in use.
pub const HEADER_READ_TIMEOUT_MS: u64 = 30_000;
/// How long a client may take to send a request's body.
pub const BODY_READ_TIMEOUT_MS: u64 = 30_000;

/// The text of the `AccessDeniedException` AWS sends when a request names no operation.
const UNABLE_TO_DETERMINE: &str = "Unable to determine service/operation name to be authorized";

/// Limits of the HTTP layer.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub body_bytes_max: usize,
    pub connections_max: usize,
    pub shutdown_grace_ms: u64,
    /// TLS on the same port, detected from the first byte (see [`crate::tls`]).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// How long a new connection may take to send its first byte and finish a TLS handshake.
    pub handshake_timeout_ms: u64,
    /// Signature verification (or only its shape, in insecure mode): see [`crate::auth`].
    pub auth: crate::auth::Auth,
    pub header_read_timeout_ms: u64,
    pub body_read_timeout_ms: u64,
}

/// Default for [`HttpConfig::handshake_timeout_ms`].
pub const HANDSHAKE_TIMEOUT_MS: u64 = 10_000;

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            body_bytes_max: REQUEST_BODY_BYTES_MAX,
            connections_max: CONNECTIONS_MAX_DEFAULT,
            shutdown_grace_ms: SHUTDOWN_GRACE_MS,
            tls: None,
            handshake_timeout_ms: HANDSHAKE_TIMEOUT_MS,
            auth: crate::auth::Auth::Insecure,
            header_read_timeout_ms: HEADER_READ_TIMEOUT_MS,
            body_read_timeout_ms: BODY_READ_TIMEOUT_MS,
        }
    }
}

/// One well-formed API call.
#[derive(Debug, Clone)]
pub struct Call {
    pub op: Operation,
    pub format: WireFormat,
    pub body: Bytes,
    pub request_id: String,
    /// Who signed it (`None` under `--auth insecure`): what resource policies are checked for.
    pub caller: Option<crate::auth::Caller>,
}

/// What handles calls: returns the encoded response body, or an error to encode.
pub trait Dispatch: Send + Sync + 'static {
    fn dispatch(&self, call: Call)
        -> Pin<Box<dyn Future<Output = Result<Reply, ApiError>> + Send>>;
}

/// Counters of the HTTP layer (requests by HTTP version, connections).
#[derive(Debug, Default)]
pub struct HttpStats {
    pub requests_http1: AtomicU64,
    pub requests_http2: AtomicU64,
    pub connections_open: AtomicU64,
    pub connections_total: AtomicU64,
}

/// Serves `listener` until `shutdown` resolves, then stops accepting and gives in-flight
/// requests `shutdown_grace_ms` to finish. With `cfg.tls` set, a connection whose first byte is
/// a TLS handshake record (0x16) is served over TLS (ALPN `h2` or `http/1.1`); others in clear.
pub async fn serve(
    listener: TcpListener,
    cfg: HttpConfig,
    dispatch: Arc<dyn Dispatch>,
    stats: Arc<HttpStats>,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(cfg.connections_max.max(1)));
    metrics::gauge!("levee_http_connections_max").set(cfg.connections_max as f64);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let tls = cfg.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    let cfg = Arc::new(cfg);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let conn = Conn {
            peer,
            cfg: cfg.clone(),
            dispatch: dispatch.clone(),
            stats: stats.clone(),
            watcher: graceful.watcher(),
        };
        let tls = tls.clone();
        let cfg = cfg.clone();
        stats.connections_open.fetch_add(1, Ordering::Relaxed);
        stats.connections_total.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!("levee_http_connections_open")
            .set(stats.connections_open.load(Ordering::Relaxed) as f64);
        tokio::spawn(async move {
            let stats = conn.stats.clone();
            match tls {
                Some(acceptor) if is_tls(&stream, &cfg).await => {
                    let handshake = tokio::time::timeout(
                        Duration::from_millis(cfg.handshake_timeout_ms),
                        acceptor.accept(stream),
                    )
                    .await;
                    match handshake {
                        Ok(Ok(tls_stream)) => conn.serve(tls_stream, true).await,
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
                _ => conn.serve(stream, false).await,
            }
            stats.connections_open.fetch_sub(1, Ordering::Relaxed);
            metrics::gauge!("levee_http_connections_open")
                .set(stats.connections_open.load(Ordering::Relaxed) as f64);
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("all connections closed"),
        _ = tokio::time::sleep(Duration::from_millis(cfg.shutdown_grace_ms)) => {
            tracing::warn!(grace_ms = cfg.shutdown_grace_ms, "shutdown grace period over; dropping open connections");
        }
    }
}

/// Whether the connection starts with a TLS handshake record. Waits for the first byte at most
/// the handshake timeout; a silent client is then served in clear (and times out there).
async fn is_tls(stream: &tokio::net::TcpStream, cfg: &HttpConfig) -> bool {
    let mut first = [0u8; 1];
    matches!(
        tokio::time::timeout(
            Duration::from_millis(cfg.handshake_timeout_ms),
            stream.peek(&mut first)
        )
        .await,
        Ok(Ok(1)) if first[0] == 0x16
    )
}

/// One accepted connection's context.
struct Conn {
    peer: SocketAddr,
    cfg: Arc<HttpConfig>,
    dispatch: Arc<dyn Dispatch>,
    stats: Arc<HttpStats>,
    watcher: hyper_util::server::graceful::Watcher,
}

impl Conn {
    async fn serve<I>(self, io: I, tls: bool)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let Conn {
            peer,
            cfg,
            dispatch,
            stats,
            watcher,
        } = self;
        let header_read_timeout = Duration::from_millis(cfg.header_read_timeout_ms);
        let service = hyper::service::service_fn(move |req| {
            let dispatch = dispatch.clone();
            let stats = stats.clone();
            let cfg = cfg.clone();
            async move { Ok::<_, Infallible>(handle(req, peer, tls, &cfg, &*dispatch, &stats).await) }
        });
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(header_read_timeout);
        let conn = builder
            .serve_connection(TokioIo::new(io), service)
            .into_owned();
        if let Err(e) = watcher.watch(conn).await {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        }
    }
}

fn request_id() -> String {
    let b: [u8; 16] = rand::random();
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        u16::from_be_bytes([b[4], b[5]]),
        (u16::from_be_bytes([b[6], b[7]]) & 0x0fff) | 0x4000,
        (u16::from_be_bytes([b[8], b[9]]) & 0x3fff) | 0x8000,
        u64::from_be_bytes([0, 0, b[10], b[11], b[12], b[13], b[14], b[15]])
    )
}

fn extended_id() -> String {
    let b: [u8; 72] = std::array::from_fn(|_| rand::random());
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// An XML error body as AWS sends before it knows the wire format (with no `Content-Type`).
fn xml_error(status: StatusCode, type_name: &str, message: Option<&str>) -> Answer {
    let body = match message {
        Some(m) => format!("<{type_name}>\n  <Message>{m}</Message>\n</{type_name}>\n"),
        None => format!("<{type_name}/>\n"),
    };
    Answer::new(status, None, body.into_bytes())
}

fn api_error(format: WireFormat, err: &ApiError) -> Answer {
    let status = StatusCode::from_u16(err.kind.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    Answer::new(
        status,
        Some(format.content_type()),
        levee_protocol::encode_error(format, err),
    )
}

/// `Access-Control-Allow-Origin` on every answer to a request with an `Origin` (CORS, as AWS).
pub const CORS_ALLOW_ORIGIN: &str = "*";
/// `Access-Control-Expose-Headers` on every answer to a request with an `Origin`.
pub const CORS_EXPOSE_HEADERS: &str =
    "x-amzn-RequestId,x-amzn-ErrorType,x-amz-request-id,x-amz-id-2,x-amzn-ErrorMessage,Date";
/// `Access-Control-Max-Age` of a preflight answer: 2 days, AWS's value.
pub const CORS_MAX_AGE_SECS: u32 = 172_800;

async fn handle(
    req: Request<Incoming>,
    peer: SocketAddr,
    tls: bool,
    cfg: &HttpConfig,
    dispatch: &dyn Dispatch,
    stats: &HttpStats,
) -> Response<ReplyBody> {
    let version = match req.version() {
        Version::HTTP_2 => {
            stats.requests_http2.fetch_add(1, Ordering::Relaxed);
            "HTTP/2"
        }
        _ => {
            stats.requests_http1.fetch_add(1, Ordering::Relaxed);
            "HTTP/1.1"
        }
    };
    metrics::counter!(
        "levee_http_requests_total",
        "version" => version,
        "tls" => if tls { "true" } else { "false" }
    )
    .increment(1);
    let request_id = request_id();
    let origin = req.headers().contains_key(ORIGIN);
    if origin && req.method() == Method::OPTIONS {
        // A CORS preflight: answered before anything else, with no body and no x-amz-id-2.
        let mut resp = Response::new(ReplyBody::from(Vec::new()));
        let h = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            h.insert("x-amzn-requestid", v);
        }
        h.insert(
            ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static(CORS_ALLOW_ORIGIN),
        );
        for (asked, allowed) in [
            (ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_ALLOW_HEADERS),
            (ACCESS_CONTROL_REQUEST_METHOD, ACCESS_CONTROL_ALLOW_METHODS),
        ] {
            if let Some(v) = req.headers().get(&asked) {
                h.insert(allowed, v.clone());
            }
        }
        h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from(CORS_MAX_AGE_SECS));
        h.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
        tracing::debug!(%peer, %request_id, status = 200, "CORS preflight");
        return resp;
    }
    let answer = checked(req, cfg, dispatch, &request_id).await;
    tracing::debug!(%peer, %request_id, status = answer.status.as_u16(), "request");
    let body = match answer.reply {
        Reply::Body(b) => ReplyBody::from(b),
        Reply::Events(rx) => ReplyBody::Events(rx),
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = answer.status;
    let h = resp.headers_mut();
    if let Some(content_type) = answer.content_type {
        h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("x-amzn-requestid", v);
    }
    if let Ok(v) = HeaderValue::from_str(&extended_id()) {
        h.insert("x-amz-id-2", v);
    }
    if origin {
        h.insert(
            ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static(CORS_ALLOW_ORIGIN),
        );
        h.insert(
            ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(CORS_EXPOSE_HEADERS),
        );
    }
    resp
}

/// A response body: a whole buffer, or an event stream fed by a subscription's pump (sent as
/// it comes: HTTP/1.1 chunks or HTTP/2 DATA frames).
pub enum ReplyBody {
    Full(Option<Bytes>),
    Events(mpsc::Receiver<Bytes>),
}

impl From<Vec<u8>> for ReplyBody {
    fn from(v: Vec<u8>) -> Self {
        ReplyBody::Full(Some(Bytes::from(v)))
    }
}

impl hyper::body::Body for ReplyBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        use std::task::Poll;
        match self.get_mut() {
            ReplyBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(hyper::body::Frame::data(b)))),
            ReplyBody::Events(rx) => match rx.poll_recv(cx) {
                Poll::Ready(Some(b)) => Poll::Ready(Some(Ok(hyper::body::Frame::data(b)))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, ReplyBody::Full(None))
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            ReplyBody::Full(Some(b)) => hyper::body::SizeHint::with_exact(b.len() as u64),
            ReplyBody::Full(None) => hyper::body::SizeHint::with_exact(0),
            ReplyBody::Events(_) => hyper::body::SizeHint::default(),
        }
    }
}

/// What a handled call answers: a buffer, or an event stream.
#[derive(Debug)]
pub enum Reply {
    Body(Vec<u8>),
    Events(mpsc::Receiver<Bytes>),
}

impl From<Vec<u8>> for Reply {
    fn from(v: Vec<u8>) -> Self {
        Reply::Body(v)
    }
}

/// A finished answer: status, `Content-Type` (none for AWS's XML errors) and body.
struct Answer {
    status: StatusCode,
    content_type: Option<&'static str>,
    reply: Reply,
}

impl Answer {
    fn new(status: StatusCode, content_type: Option<&'static str>, body: Vec<u8>) -> Answer {
        Answer {
            status,
            content_type,
            reply: Reply::Body(body),
        }
    }

    fn bare(status: StatusCode) -> Answer {
        Answer::new(status, Some("text/plain"), Vec::new())
    }
}

/// The `Content-Type` of plain JSON, which AWS answers in Coral's old envelope.
const CONTENT_TYPE_PLAIN_JSON: &str = "application/json";

/// What the `Content-Type` of a request names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Content {
    /// awsJson 1.1 or CBOR: the API's own formats.
    Api(WireFormat),
    /// `application/json`: parsed, but never dispatched.
    PlainJson,
    /// Anything else, or nothing.
    Other,
}

impl Content {
    fn of(content_type: &str) -> Content {
        if let Some(format) = WireFormat::from_content_type(content_type) {
            Content::Api(format)
        } else if levee_protocol::content_type_essence(content_type)
            .eq_ignore_ascii_case(CONTENT_TYPE_PLAIN_JSON)
        {
            Content::PlainJson
        } else {
            Content::Other
        }
    }
}

/// Coral's old envelope, as AWS answers `application/json` requests: `{"Output":{"__type":
/// "com.amazon.coral.service#<type>"},"Version":"1.0"}`.
fn plain_json_error(status: StatusCode, type_name: &str) -> Answer {
    let body = format!(
        r#"{{"Output":{{"__type":"com.amazon.coral.service#{type_name}"}},"Version":"1.0"}}"#
    );
    Answer::new(status, Some(CONTENT_TYPE_PLAIN_JSON), body.into_bytes())
}

/// Whether a target names both a service and an operation (`<service>.<operation>`, neither
/// empty), known or not.
fn names_service_and_operation(target: &str) -> bool {
    let mut parts = target.split('.');
    let service = parts.next().unwrap_or_default();
    let operation = parts.next().unwrap_or_default();
    !service.is_empty() && !operation.is_empty()
}

/// The checks AWS makes before an operation runs, in its order (see the module docs), then the
/// dispatch.
async fn checked(
    req: Request<Incoming>,
    cfg: &HttpConfig,
    dispatch: &dyn Dispatch,
    request_id: &str,
) -> Answer {
    if let Some(len) = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        if len > cfg.body_bytes_max {
            return Answer::bare(StatusCode::PAYLOAD_TOO_LARGE);
        }
    }
    if req.method() != Method::POST {
        return xml_error(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            Some(UNABLE_TO_DETERMINE),
        );
    }
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let content = Content::of(content_type);
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let op = Operation::from_target(&target);
    let auth = cfg.auth.begin(&req);
    let body = match tokio::time::timeout(
        Duration::from_millis(cfg.body_read_timeout_ms),
        Limited::new(req.into_body(), cfg.body_bytes_max).collect(),
    )
    .await
    {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(_)) => return Answer::bare(StatusCode::PAYLOAD_TOO_LARGE),
        Err(_) => return Answer::bare(StatusCode::REQUEST_TIMEOUT),
    };
    let name = op.as_ref().map_or("unknown", |op| op.name());
    if body.is_empty() {
        // Answered in JSON only when the request says awsJson 1.1; in CBOR otherwise.
        let format = match content {
            Content::Api(WireFormat::Json) => WireFormat::Json,
            _ => WireFormat::Cbor,
        };
        let e = match op {
            Ok(_) => ApiError::serialization(""),
            Err(e) => e,
        };
        crate::metrics::record_rejected(name, &e);
        return api_error(format, &e);
    }
    let format = match content {
        Content::Api(format) => format,
        Content::PlainJson => {
            let (status, type_name) = if levee_protocol::is_document(WireFormat::Json, &body) {
                (StatusCode::NOT_FOUND, "UnknownOperationException")
            } else {
                (StatusCode::BAD_REQUEST, "SerializationException")
            };
            return plain_json_error(status, type_name);
        }
        Content::Other if names_service_and_operation(&target) => {
            return xml_error(StatusCode::NOT_FOUND, "UnknownOperationException", None);
        }
        Content::Other => {
            return xml_error(
                StatusCode::FORBIDDEN,
                "AccessDeniedException",
                Some(UNABLE_TO_DETERMINE),
            );
        }
    };
    // AWS parses the body before it looks at the target or the signature; the decoder parses
    // it again, so that check is made here only where a later check would fail.
    let refuse = |e: ApiError| {
        let e = if levee_protocol::is_document(format, &body) {
            e
        } else {
            ApiError::serialization("")
        };
        crate::metrics::record_rejected(name, &e);
        api_error(format, &e)
    };
    let op = match op {
        Ok(op) => op,
        Err(e) => return refuse(e),
    };
    let caller = match auth.and_then(|pending| pending.finish(&body)) {
        Ok(caller) => caller,
        Err(e) => return refuse(e),
    };
    let call = Call {
        op,
        format,
        body,
        request_id: request_id.to_owned(),
        caller,
    };
    match dispatch.dispatch(call).await {
        Ok(Reply::Events(rx)) => Answer {
            status: StatusCode::OK,
            content_type: Some(crate::eventstream::CONTENT_TYPE),
            reply: Reply::Events(rx),
        },
        Ok(reply) => Answer {
            status: StatusCode::OK,
            content_type: Some(format.content_type()),
            reply,
        },
        Err(e) => {
            if e.kind == ErrorKind::InternalFailure {
                tracing::error!(%request_id, op = op.name(), error = %e.message, "internal failure");
            }
            api_error(format, &e)
        }
    }
}
