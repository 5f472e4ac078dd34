//! A front-end's side of the storage protocol: [`RemoteStorage`], a [`StoragePlane`] that sends
//! each call to the shard's storage node over a [`Pool`] of multiplexed HTTP/2 connections.
//!
//! The pool is the R2 answer to the 2020 outage's thread per peer: at most
//! `connections_max` connections whatever the fleet's size (least recently used evicted), at
//! most `requests_in_flight_max` requests in flight over all of them, and every connection a
//! task, never a thread. Append signals for SubscribeToShard are forwarded by one long-poll
//! task per watched shard, which ends when nobody watches any more.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use levee_frontend::backend::{
    AppendError, Appended, BoxFuture, ReadFrom, ReadOut, StoragePlane, Tip,
};
use levee_map::{NodeId, ShardRoute};
use levee_protocol::ApiError;
use lru::LruCache;
use tokio::sync::{watch, Semaphore};

use crate::codec::{self, Payload, Request, Response, ShardRef, StaleReason};

/// How long an append-signal forwarder's long poll lasts before it asks again.
pub const SIGNAL_WAIT_MS: u32 = 20_000;
/// A forwarder's pause after a failed long poll (the node restarting, say).
pub const SIGNAL_RETRY_MS: u64 = 200;
/// Times a request refused unprocessed (HTTP/2 REFUSED_STREAM) is sent again.
pub const REFUSED_RETRIES_MAX: u32 = 5;
/// The first pause before sending a refused request again (doubling each time).
pub const REFUSED_RETRY_MS: u64 = 1;
/// A response body's size (a 10 MiB read and its framing fit).
pub const RESPONSE_BYTES_MAX: usize = 16 << 20;

/// Where each storage node listens.
pub trait NodeDirectory: Send + Sync + 'static {
    fn address(&self, node: NodeId) -> Option<SocketAddr>;
}

/// A fixed directory (tests, and fleets configured by hand).
#[derive(Debug, Default, Clone)]
pub struct StaticDirectory(pub HashMap<NodeId, SocketAddr>);

impl NodeDirectory for StaticDirectory {
    fn address(&self, node: NodeId) -> Option<SocketAddr> {
        self.0.get(&node).copied()
    }
}

/// The node table of a front-end's current map: the fleet's own directory, so a front-end
/// needs nothing but its map to reach any storage node (and keeps reaching them from its
/// persisted map while the control plane is away). Addresses are `ip:port`; a map address
/// that does not parse routes nowhere (the call fails as unavailable, and is logged).
pub struct MapDirectory(pub Arc<levee_frontend::backend::MapHolder>);

impl NodeDirectory for MapDirectory {
    fn address(&self, node: NodeId) -> Option<SocketAddr> {
        let map = self.0.current();
        let entry = map.node(node)?;
        match entry.address.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                tracing::error!(node = node.0, address = %entry.address, "node address does not parse");
                None
            }
        }
    }
}

/// Limits of a connection pool.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// The `pool` label of its metrics (`storage`, `control`, `map`): a process has several.
    pub name: &'static str,
    pub connections_max: usize,
    pub requests_in_flight_max: usize,
    pub connect_timeout_ms: u64,
    /// A request's limit, on top of a `Wait`'s own wait.
    pub request_timeout_ms: u64,
    /// A response body's largest size ([`RESPONSE_BYTES_MAX`] by default).
    pub response_bytes_max: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            name: "storage",
            connections_max: 64,
            requests_in_flight_max: 1024,
            connect_timeout_ms: 1_000,
            request_timeout_ms: 10_000,
            response_bytes_max: RESPONSE_BYTES_MAX,
        }
    }
}

/// Why a call did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("no address for storage node {0:?}")]
    UnknownNode(NodeId),
    #[error("connecting to {0}: {1}")]
    Connect(SocketAddr, String),
    #[error("timed out")]
    Timeout,
    /// The node refused the request unprocessed (HTTP/2 REFUSED_STREAM: past its streams
    /// limit): safe to send again.
    #[error("refused unprocessed")]
    Refused,
    #[error("transport: {0}")]
    Transport(String),
    #[error("storage node answered HTTP {0}: {1}")]
    Status(u16, String),
    #[error("bad answer: {0}")]
    Decode(#[from] codec::CodecError),
}

/// A capped, least-recently-used pool of HTTP/2 connections to storage nodes.
pub struct Pool {
    config: PoolConfig,
    conns: Mutex<LruCache<SocketAddr, SendRequest<Full<Bytes>>>>,
    in_flight: Semaphore,
    /// Connections whose task still runs (evicted ones end when their last request does).
    live: Arc<AtomicUsize>,
}

impl Pool {
    pub fn new(config: PoolConfig) -> Arc<Pool> {
        let cap = NonZeroUsize::new(config.connections_max.max(1)).unwrap_or(NonZeroUsize::MIN);
        let pool = config.name;
        metrics::gauge!("levee_rpc_client_connections_max", "pool" => pool).set(cap.get() as f64);
        metrics::gauge!("levee_rpc_client_requests_in_flight_max", "pool" => pool)
            .set(config.requests_in_flight_max as f64);
        Arc::new(Pool {
            conns: Mutex::new(LruCache::new(cap)),
            in_flight: Semaphore::new(config.requests_in_flight_max.max(1)),
            live: Arc::new(AtomicUsize::new(0)),
            config,
        })
    }

    /// Connections in the pool now.
    pub fn pooled(&self) -> usize {
        self.conns.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Connections open now, pooled or evicted but still finishing a request.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    fn cached(&self, addr: SocketAddr) -> Option<SendRequest<Full<Bytes>>> {
        let mut conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        match conns.get(&addr) {
            Some(s) if !s.is_closed() => Some(s.clone()),
            Some(_) => {
                conns.pop(&addr);
                None
            }
            None => None,
        }
    }

    async fn sender(&self, addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, RpcError> {
        if let Some(s) = self.cached(addr) {
            return Ok(s);
        }
        let connect = Duration::from_millis(self.config.connect_timeout_ms);
        let stream = tokio::time::timeout(connect, tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| RpcError::Connect(addr, "timed out".into()))?
            .map_err(|e| RpcError::Connect(addr, e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = tokio::time::timeout(
            connect,
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)),
        )
        .await
        .map_err(|_| RpcError::Connect(addr, "handshake timed out".into()))?
        .map_err(|e| RpcError::Connect(addr, e.to_string()))?;
        let live = self.live.clone();
        live.fetch_add(1, Ordering::Relaxed);
        let pool = self.config.name;
        metrics::gauge!("levee_rpc_client_connections", "pool" => pool).increment(1.0);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%addr, pool, error = %e, "rpc connection ended");
            }
            live.fetch_sub(1, Ordering::Relaxed);
            metrics::gauge!("levee_rpc_client_connections", "pool" => pool).decrement(1.0);
        });
        let mut conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        // Another task may have connected meanwhile: keep one, the other closes when unused.
        if let Some(existing) = conns.get(&addr) {
            if !existing.is_closed() {
                return Ok(existing.clone());
            }
        }
        if let Some((evicted, _)) = conns.push(addr, sender.clone()) {
            if evicted != addr {
                metrics::counter!("levee_rpc_client_evictions_total", "pool" => self.config.name)
                    .increment(1);
            }
        }
        Ok(sender)
    }

    /// Sends `request` to the node at `addr` and decodes its answer.
    pub async fn call(&self, addr: SocketAddr, request: &Request) -> Result<Response, RpcError> {
        let result = self.call_inner(addr, request).await;
        let outcome = match &result {
            Ok(Response::Ok(_)) => "ok",
            Ok(Response::Api(_)) => "api_error",
            Ok(Response::Stale { .. }) => "stale",
            Err(_) => "failed",
        };
        metrics::counter!("levee_rpc_client_requests_total", "op" => request.op(), "outcome" => outcome)
            .increment(1);
        result
    }

    async fn call_inner(&self, addr: SocketAddr, request: &Request) -> Result<Response, RpcError> {
        let extra_ms = match request {
            Request::Wait { wait_ms, .. } => *wait_ms as u64,
            _ => 0,
        };
        let answer = self
            .post(
                addr,
                request.path(),
                codec::encode_request(request),
                extra_ms,
            )
            .await?;
        if !answer.status.is_success() {
            return Err(RpcError::Status(
                answer.status.as_u16(),
                String::from_utf8_lossy(&answer.body).into_owned(),
            ));
        }
        Ok(codec::decode_response(answer.body)?)
    }

    /// POSTs `body` to `path` on the node at `addr` within the pool's request timeout plus
    /// `extra_ms`, holding one of the pool's in-flight permits meanwhile.
    pub async fn post(
        &self,
        addr: SocketAddr,
        path: &str,
        body: Bytes,
        extra_ms: u64,
    ) -> Result<Answer, RpcError> {
        let mut attempt = 0;
        loop {
            match self.post_once(addr, path, body.clone(), extra_ms).await {
                // Refused unprocessed (a new connection's streams past the peer's limit before
                // its settings arrived): sending again is safe.
                Err(RpcError::Refused) if attempt < REFUSED_RETRIES_MAX => {
                    attempt += 1;
                    metrics::counter!("levee_rpc_client_refused_retries_total", "pool" => self.config.name)
                        .increment(1);
                    tokio::time::sleep(Duration::from_millis(REFUSED_RETRY_MS << attempt)).await;
                }
                other => return other,
            }
        }
    }

    async fn post_once(
        &self,
        addr: SocketAddr,
        path: &str,
        body: Bytes,
        extra_ms: u64,
    ) -> Result<Answer, RpcError> {
        let limit = Duration::from_millis(self.config.request_timeout_ms + extra_ms);
        tokio::time::timeout(limit, async {
            let _permit = self
                .in_flight
                .acquire()
                .await
                .map_err(|_| RpcError::Transport("pool closed".into()))?;
            let mut sender = self.sender(addr).await?;
            sender
                .ready()
                .await
                .map_err(|e| RpcError::Transport(e.to_string()))?;
            let http = hyper::Request::post(format!("http://{addr}{path}"))
                .header(hyper::header::CONTENT_TYPE, CONTENT_TYPE)
                .body(Full::new(body))
                .map_err(|e| RpcError::Transport(e.to_string()))?;
            let resp = sender.send_request(http).await.map_err(|e| {
                if refused_stream(&e) {
                    RpcError::Refused
                } else {
                    RpcError::Transport(e.to_string())
                }
            })?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let body = Limited::new(resp.into_body(), self.config.response_bytes_max)
                .collect()
                .await
                .map_err(|e| RpcError::Transport(e.to_string()))?
                .to_bytes();
            Ok(Answer {
                status,
                headers,
                body,
            })
        })
        .await
        .map_err(|_| RpcError::Timeout)?
    }
}

/// An HTTP answer from a node.
#[derive(Debug)]
pub struct Answer {
    pub status: hyper::StatusCode,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

/// The content type of every inter-node message.
pub const CONTENT_TYPE: &str = "application/x-levee-rpc";

/// The storage plane of a front-end in a fleet: every call goes to the shard's node.
pub struct RemoteStorage {
    pool: Arc<Pool>,
    directory: Arc<dyn NodeDirectory>,
    /// One forwarder per watched shard, by shard uid.
    watchers: Arc<Mutex<HashMap<u64, watch::Sender<()>>>>,
}

impl RemoteStorage {
    pub fn new(pool: Arc<Pool>, directory: Arc<dyn NodeDirectory>) -> RemoteStorage {
        RemoteStorage {
            pool,
            directory,
            watchers: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Shards whose append signal is being forwarded now.
    pub fn watched(&self) -> usize {
        self.watchers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    fn target(&self, shard: &ShardRoute) -> Result<(SocketAddr, ShardRef), RpcError> {
        let addr = self
            .directory
            .address(shard.node)
            .ok_or(RpcError::UnknownNode(shard.node))?;
        Ok((
            addr,
            ShardRef {
                uid: shard.uid,
                epoch: shard.epoch,
            },
        ))
    }

    fn call(
        &self,
        shard: &ShardRoute,
        make: impl FnOnce(ShardRef) -> Request + Send + 'static,
    ) -> BoxFuture<Result<Response, RpcError>> {
        let pool = self.pool.clone();
        let target = self.target(shard);
        Box::pin(async move {
            let (addr, shard) = target?;
            pool.call(addr, &make(shard)).await
        })
    }
}

/// A call that got no answer, as the client sees it: AWS's retryable internal failure.
fn unavailable(e: RpcError) -> ApiError {
    tracing::warn!(error = %e, "storage node call failed");
    ApiError::internal_failure()
}

/// A read or tip refused as stale: the front-end's map is behind; the client retries (500).
fn stale_read(reason: StaleReason) -> ApiError {
    tracing::debug!(reason = reason.as_str(), "stale route for a read");
    ApiError::internal_failure()
}

fn unexpected() -> ApiError {
    tracing::error!("storage node answered with the wrong payload");
    ApiError::internal_failure()
}

impl StoragePlane for RemoteStorage {
    fn append(
        &self,
        shard: &ShardRoute,
        records: Vec<(Bytes, Bytes)>,
    ) -> BoxFuture<Result<Appended, AppendError>> {
        let call = self.call(shard, move |shard| Request::Append { shard, records });
        Box::pin(async move {
            match call.await {
                Ok(Response::Ok(Payload::Appended(a))) => Ok(a),
                Ok(Response::Ok(_)) => Err(AppendError::Api(unexpected())),
                Ok(Response::Api(e)) => Err(AppendError::Api(e)),
                Ok(Response::Stale { .. }) => Err(AppendError::Stale),
                Err(e) => Err(AppendError::Api(unavailable(e))),
            }
        })
    }

    fn read(
        &self,
        shard: &ShardRoute,
        from: ReadFrom,
        max_records: usize,
        max_bytes: u64,
    ) -> BoxFuture<Result<ReadOut, ApiError>> {
        let max_records = max_records.min(codec::RECORDS_PER_MESSAGE_MAX as usize) as u32;
        let call = self.call(shard, move |shard| Request::Read {
            shard,
            from,
            max_records,
            max_bytes,
        });
        Box::pin(async move {
            match call.await {
                Ok(Response::Ok(Payload::Read(r))) => Ok(r),
                Ok(Response::Ok(_)) => Err(unexpected()),
                Ok(Response::Api(e)) => Err(e),
                Ok(Response::Stale { reason, .. }) => Err(stale_read(reason)),
                Err(e) => Err(unavailable(e)),
            }
        })
    }

    fn tip(&self, shard: &ShardRoute) -> BoxFuture<Result<Tip, ApiError>> {
        let call = self.call(shard, |shard| Request::Tip { shard });
        Box::pin(async move {
            match call.await {
                Ok(Response::Ok(Payload::Tip(t))) => Ok(t),
                Ok(Response::Ok(_)) => Err(unexpected()),
                Ok(Response::Api(e)) => Err(e),
                Ok(Response::Stale { reason, .. }) => Err(stale_read(reason)),
                Err(e) => Err(unavailable(e)),
            }
        })
    }

    fn append_signal(&self, shard: &ShardRoute) -> watch::Receiver<()> {
        let mut watchers = self.watchers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = watchers.get(&shard.uid) {
            return tx.subscribe();
        }
        let (tx, rx) = watch::channel(());
        watchers.insert(shard.uid, tx.clone());
        metrics::gauge!("levee_rpc_client_signal_watchers").set(watchers.len() as f64);
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(forward_signal(
                    self.pool.clone(),
                    self.target(shard),
                    shard.uid,
                    tx,
                    self.watchers.clone(),
                ));
            }
            Err(_) => {
                watchers.remove(&shard.uid);
            }
        }
        rx
    }
}

/// Long-polls the shard's node and wakes local watchers each time its tip moves. Ends when no
/// receiver is left (checked after every poll, under the registry's lock so a new watcher
/// either finds this forwarder or starts its own).
async fn forward_signal(
    pool: Arc<Pool>,
    target: Result<(SocketAddr, ShardRef), RpcError>,
    uid: u64,
    tx: watch::Sender<()>,
    watchers: Arc<Mutex<HashMap<u64, watch::Sender<()>>>>,
) {
    let mut after: Option<u64> = None;
    loop {
        let polled = match &target {
            Ok((addr, shard)) => {
                let request = match after {
                    None => Request::Tip { shard: *shard },
                    Some(after_next_seq_ix) => Request::Wait {
                        shard: *shard,
                        after_next_seq_ix,
                        wait_ms: SIGNAL_WAIT_MS,
                    },
                };
                tokio::select! {
                    polled = pool.call(*addr, &request) => polled,
                    // Every watcher went away: stop now, not when the long poll ends.
                    _ = tx.closed() => Err(RpcError::Transport("unwatched".into())),
                }
            }
            Err(e) => Err(RpcError::Transport(e.to_string())),
        };
        match polled {
            Ok(Response::Ok(Payload::Tip(t))) => {
                // The first answer wakes watchers too: an append that landed between a
                // watcher's last read and this baseline must not wait for its heartbeat. A
                // spurious wake costs one empty read.
                if after.is_none_or(|a| t.next_seq_ix > a) {
                    tx.send_replace(());
                }
                after = Some(t.next_seq_ix);
            }
            _ => tokio::time::sleep(Duration::from_millis(SIGNAL_RETRY_MS)).await,
        }
        let mut w = watchers.lock().unwrap_or_else(|p| p.into_inner());
        if tx.receiver_count() == 0 {
            w.remove(&uid);
            metrics::gauge!("levee_rpc_client_signal_watchers").set(w.len() as f64);
            return;
        }
    }
}

/// Whether hyper's error is the peer's HTTP/2 REFUSED_STREAM (the request did not run).
fn refused_stream(e: &hyper::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = source {
        if let Some(h2) = err.downcast_ref::<h2::Error>() {
            return h2.reason() == Some(h2::Reason::REFUSED_STREAM);
        }
        source = err.source();
    }
    false
}
