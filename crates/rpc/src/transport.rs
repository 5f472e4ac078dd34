//! The server side every inter-node listener shares: HTTP/2 over TCP, a cap on open
//! connections (past it a new connection is closed at once and counted), a cap on concurrent
//! streams per connection, bodies read whole up to a limit, and every connection a task on the
//! node's runtime (R1, R2). Listeners differ only in their [`Handler`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{HeaderMap, Response as HttpResponse, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use levee_frontend::backend::BoxFuture;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// A listener's limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// For metrics: `levee_rpc_server_connections{listener}`.
    pub name: &'static str,
    pub connections_max: usize,
    pub streams_per_connection_max: u32,
    pub body_bytes_max: usize,
}

/// Answers one request whose body was read whole.
pub trait Handler: Send + Sync + 'static {
    fn handle(
        self: Arc<Self>,
        path: String,
        headers: HeaderMap,
        body: Bytes,
    ) -> BoxFuture<HttpResponse<Full<Bytes>>>;
}

/// Open connections of one listener, bounded by its cap.
pub struct Connections {
    permits: Arc<Semaphore>,
    max: usize,
}

impl Connections {
    pub fn new(limits: &Limits) -> Connections {
        metrics::gauge!("levee_rpc_server_connections_max", "listener" => limits.name)
            .set(limits.connections_max as f64);
        Connections {
            permits: Arc::new(Semaphore::new(limits.connections_max)),
            max: limits.connections_max,
        }
    }

    pub fn open(&self) -> usize {
        self.max - self.permits.available_permits()
    }
}

/// Accepts connections on `listener` until `shutdown` resolves. Connections already open
/// finish on their own (the peer closes them when it evicts or exits).
pub async fn serve<H: Handler>(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
    limits: Limits,
    connections: Arc<Connections>,
    handler: Arc<H>,
) {
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning, keep serving.
                    tracing::warn!(listener = limits.name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = connections.permits.clone().try_acquire_owned() else {
            metrics::counter!("levee_rpc_server_connections_refused_total", "listener" => limits.name)
                .increment(1);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let limits = limits.clone();
        tokio::spawn(async move {
            let name = limits.name;
            metrics::gauge!("levee_rpc_server_connections", "listener" => name).increment(1.0);
            let body_max = limits.body_bytes_max;
            let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let handler = handler.clone();
                async move {
                    let path = req.uri().path().to_string();
                    let (parts, body) = req.into_parts();
                    let response = match Limited::new(body, body_max).collect().await {
                        Ok(b) => handler.handle(path, parts.headers, b.to_bytes()).await,
                        Err(e) => plain(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()),
                    };
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .max_concurrent_streams(limits.streams_per_connection_max)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(%peer, listener = name, error = %e, "connection ended");
            }
            metrics::gauge!("levee_rpc_server_connections", "listener" => name).decrement(1.0);
            drop(permit);
        });
    }
}

/// A plain-text answer (transport-level refusals: unknown path, undecodable body).
pub fn plain(status: StatusCode, text: String) -> HttpResponse<Full<Bytes>> {
    let mut r = HttpResponse::new(Full::new(Bytes::from(text)));
    *r.status_mut() = status;
    r
}

/// A binary message answer.
pub fn message(body: Bytes) -> HttpResponse<Full<Bytes>> {
    let mut out = HttpResponse::new(Full::new(body));
    out.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(crate::client::CONTENT_TYPE),
    );
    out
}
