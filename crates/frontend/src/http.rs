//! The HTTP layer: one listener serving HTTP/1.1 and HTTP/2 with prior knowledge (h2c, as the
//! Java SDK's async client speaks on `http://`) on the same port, the checks AWS makes before an
//! operation runs (method, content type, target, authentication header shape), request ids, and
//! a bounded number of connections, and read timeouts for a request's head and body. It hands
//! each well-formed call to a [`Dispatch`].
//!
//! Order of the pre-dispatch checks and their answers follow AWS as recorded by kinesalite's
//! tests: a body over the limit → 413; a method other than POST → 403 XML
//! `AccessDeniedException`; an empty body → 400 `SerializationException` (known operation) or
//! `UnknownOperationException`; an unknown content type → 403 XML `AccessDeniedException` without
//! a target, else 404 `<UnknownOperationException/>`; an unknown target → 400
//! `UnknownOperationException`; no `Authorization` header (nor query signature) → 400
//! `MissingAuthenticationTokenException`; a malformed one → 400 `IncompleteSignatureException`;
//! then the signature itself ([`crate::auth`]).

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
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
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

/// An XML error body as AWS sends before it knows the wire format.
fn xml_error(
    status: StatusCode,
    type_name: &str,
    message: Option<&str>,
) -> (StatusCode, &'static str, Vec<u8>) {
    let body = match message {
        Some(m) => format!("<{type_name}>\n  <Message>{m}</Message>\n</{type_name}>\n"),
        None => format!("<{type_name}/>\n"),
    };
    (status, "application/xml", body.into_bytes())
}

fn api_error(format: WireFormat, err: &ApiError) -> (StatusCode, &'static str, Vec<u8>) {
    let status = StatusCode::from_u16(err.kind.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    (
        status,
        format.content_type(),
        levee_protocol::encode_error(format, err),
    )
}

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
    let (status, content_type, body) = route(req, cfg, dispatch, &request_id).await;
    tracing::debug!(%peer, %request_id, status = status.as_u16(), "request");
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("x-amzn-requestid", v);
    }
    if let Ok(v) = HeaderValue::from_str(&extended_id()) {
        h.insert("x-amz-id-2", v);
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

async fn route(
    req: Request<Incoming>,
    cfg: &HttpConfig,
    dispatch: &dyn Dispatch,
    request_id: &str,
) -> (StatusCode, &'static str, ReplyBody) {
    let (status, content_type, reply) = checked(req, cfg, dispatch, request_id).await;
    let body = match reply {
        Reply::Body(b) => ReplyBody::from(b),
        Reply::Events(rx) => ReplyBody::Events(rx),
    };
    (status, content_type, body)
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

type Answer = (StatusCode, &'static str, Reply);

fn answer((status, content_type, body): (StatusCode, &'static str, Vec<u8>)) -> Answer {
    (status, content_type, Reply::Body(body))
}

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
            return answer((StatusCode::PAYLOAD_TOO_LARGE, "text/plain", Vec::new()));
        }
    }
    if req.method() != Method::POST {
        return answer(xml_error(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            Some("Unable to determine service/operation name to be authorized"),
        ));
    }
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let format = WireFormat::from_content_type(&content_type);
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
        Ok(Err(_)) => return answer((StatusCode::PAYLOAD_TOO_LARGE, "text/plain", Vec::new())),
        Err(_) => return answer((StatusCode::REQUEST_TIMEOUT, "text/plain", Vec::new())),
    };
    let Some(format) = format else {
        if !target.contains('.') || target.ends_with('.') || target.starts_with('.') {
            return answer(xml_error(
                StatusCode::FORBIDDEN,
                "AccessDeniedException",
                Some("Unable to determine service/operation name to be authorized"),
            ));
        }
        return answer(xml_error(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            None,
        ));
    };
    let op = match op {
        Ok(op) => op,
        Err(e) => {
            crate::metrics::record_rejected("unknown", &e);
            return answer(api_error(format, &e));
        }
    };
    if body.is_empty() {
        let e = ApiError::new(ErrorKind::Serialization, "");
        crate::metrics::record_rejected(op.name(), &e);
        return answer(api_error(format, &e));
    }
    let caller = match auth.and_then(|pending| pending.finish(&body)) {
        Ok(caller) => caller,
        Err(e) => {
            crate::metrics::record_rejected(op.name(), &e);
            return answer(api_error(format, &e));
        }
    };
    let call = Call {
        op,
        format,
        body,
        request_id: request_id.to_owned(),
        caller,
    };
    match dispatch.dispatch(call).await {
        Ok(Reply::Events(rx)) => (
            StatusCode::OK,
            crate::eventstream::CONTENT_TYPE,
            Reply::Events(rx),
        ),
        Ok(body) => (StatusCode::OK, format.content_type(), body),
        Err(e) => {
            if e.kind == ErrorKind::InternalFailure {
                tracing::error!(%request_id, op = op.name(), error = %e.message, "internal failure");
            }
            answer(api_error(format, &e))
        }
    }
}
