//! A storage node's side of the storage protocol: checks each request's shard against this
//! node's own map (ownership, epoch, open for writes; R4) and passes it to the node's
//! [`StoragePlane`]. HTTP/2 over TCP; connections, streams per connection and body size are
//! capped, and every connection is a task on the node's runtime (no thread per peer, R1/R2).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{HeaderMap, Response as HttpResponse, StatusCode};
use levee_frontend::backend::{AppendError, BoxFuture, MapHolder, StoragePlane};
use levee_map::{NodeId, ShardRoute};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::codec::{self, Payload, Request, Response, ShardRef, StaleReason};
use crate::transport::{self, plain, Connections, Handler, Limits};

/// How long a request whose shard this node does not know yet waits for this node's map to
/// catch up with the caller's (a new shard or epoch the caller saw first) before it is refused
/// (the default of [`ServerConfig::map_catch_up_wait_ms`]).
pub const MAP_CATCH_UP_WAIT_MS: u64 = 1_000;
/// The longest a `Wait` request is held open.
pub const WAIT_MS_MAX: u32 = 30_000;

/// Limits of a storage server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Open connections from front-ends; past it new connections are closed at once.
    pub connections_max: usize,
    /// Concurrent requests (HTTP/2 streams) on one connection.
    pub streams_per_connection_max: u32,
    /// A request body's size (a 10 MiB PutRecords and its framing fit).
    pub body_bytes_max: usize,
    /// See [`MAP_CATCH_UP_WAIT_MS`].
    pub map_catch_up_wait_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            connections_max: 256,
            streams_per_connection_max: 256,
            body_bytes_max: 16 << 20,
            map_catch_up_wait_ms: MAP_CATCH_UP_WAIT_MS,
        }
    }
}

/// What this node owns, as its own map says.
pub trait Ownership: Send + Sync + 'static {
    /// The route of shard `uid` if this node owns it.
    fn route(&self, uid: u64) -> Option<ShardRoute>;
    /// The version of the map the answer comes from (the hint in a stale answer).
    fn map_version(&self) -> u64;
    /// Changes whenever the node's map does.
    fn changes(&self) -> watch::Receiver<u64>;
}

/// [`Ownership`] read from a node's [`MapHolder`]: the shards placed on `node`, indexed by uid
/// once per map version.
pub struct MapOwnership {
    holder: Arc<MapHolder>,
    node: NodeId,
    index: Mutex<(u64, Arc<HashMap<u64, ShardRoute>>)>,
}

impl MapOwnership {
    pub fn new(holder: Arc<MapHolder>, node: NodeId) -> MapOwnership {
        MapOwnership {
            holder,
            node,
            index: Mutex::new((u64::MAX, Arc::new(HashMap::new()))),
        }
    }

    fn index(&self) -> Arc<HashMap<u64, ShardRoute>> {
        let map = self.holder.current();
        let mut guard = self.index.lock().unwrap_or_else(|p| p.into_inner());
        if guard.0 != map.version() {
            let owned = map
                .streams()
                .flat_map(|s| s.shards.iter())
                .filter(|r| r.node == self.node)
                .map(|r| (r.uid, r.clone()))
                .collect();
            *guard = (map.version(), Arc::new(owned));
        }
        guard.1.clone()
    }
}

impl Ownership for MapOwnership {
    fn route(&self, uid: u64) -> Option<ShardRoute> {
        self.index().get(&uid).cloned()
    }
    fn map_version(&self) -> u64 {
        self.holder.current().version()
    }
    fn changes(&self) -> watch::Receiver<u64> {
        self.holder.watch()
    }
}

/// The storage protocol's server.
pub struct StorageServer {
    storage: Arc<dyn StoragePlane>,
    owner: Arc<dyn Ownership>,
    config: ServerConfig,
    connections: Arc<Connections>,
}

impl StorageServer {
    pub fn new(
        storage: Arc<dyn StoragePlane>,
        owner: Arc<dyn Ownership>,
        config: ServerConfig,
    ) -> Arc<StorageServer> {
        Arc::new(StorageServer {
            storage,
            owner,
            connections: Arc::new(Connections::new(&Self::limits(&config))),
            config,
        })
    }

    fn limits(config: &ServerConfig) -> Limits {
        Limits {
            name: "storage",
            connections_max: config.connections_max,
            streams_per_connection_max: config.streams_per_connection_max,
            body_bytes_max: config.body_bytes_max,
        }
    }

    /// Open connections (for tests and metrics).
    pub fn connections(&self) -> usize {
        self.connections.open()
    }

    /// Accepts connections on `listener` until `shutdown` resolves.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) {
        let limits = Self::limits(&self.config);
        let connections = self.connections.clone();
        transport::serve(listener, shutdown, limits, connections, self).await
    }

    async fn http(&self, path: String, body: Bytes) -> HttpResponse<Full<Bytes>> {
        let request = match codec::decode_request(body) {
            Ok(r) if r.path() == path => r,
            Ok(_) => return plain(StatusCode::NOT_FOUND, format!("no operation at {path}")),
            Err(e) => return plain(StatusCode::BAD_REQUEST, e.to_string()),
        };
        let op = request.op();
        let response = self.handle(request).await;
        let outcome = match &response {
            Response::Ok(_) => "ok",
            Response::Api(_) => "api_error",
            Response::Stale { .. } => "stale",
        };
        metrics::counter!("levee_rpc_server_requests_total", "op" => op, "outcome" => outcome)
            .increment(1);
        transport::message(codec::encode_response(&response))
    }

    /// Answers one decoded request (the transport-free core, tested directly too).
    pub async fn handle(&self, request: Request) -> Response {
        let (shard, write) = match &request {
            Request::Append { shard, .. } => (*shard, true),
            Request::Read { shard, .. } | Request::Tip { shard } | Request::Wait { shard, .. } => {
                (*shard, false)
            }
        };
        let route = match self.check(shard, write).await {
            Ok(r) => r,
            Err(reason) => {
                return Response::Stale {
                    reason,
                    map_version: self.owner.map_version(),
                }
            }
        };
        match request {
            Request::Append { records, .. } => match self.storage.append(&route, records).await {
                Ok(a) => Response::Ok(Payload::Appended(a)),
                Err(AppendError::Stale) => Response::Stale {
                    reason: StaleReason::Closed,
                    map_version: self.owner.map_version(),
                },
                Err(AppendError::Api(e)) => Response::Api(e),
            },
            Request::Read {
                from,
                max_records,
                max_bytes,
                ..
            } => match self
                .storage
                .read(&route, from, max_records as usize, max_bytes)
                .await
            {
                Ok(r) => Response::Ok(Payload::Read(r)),
                Err(e) => Response::Api(e),
            },
            Request::Tip { .. } => match self.storage.tip(&route).await {
                Ok(t) => Response::Ok(Payload::Tip(t)),
                Err(e) => Response::Api(e),
            },
            Request::Wait {
                after_next_seq_ix,
                wait_ms,
                ..
            } => self.wait(&route, after_next_seq_ix, wait_ms).await,
        }
    }

    /// The shard's route if this node serves `shard` now. Writes need the exact epoch and an
    /// open shard. A read with an older epoch is served (the shard's data does not change with
    /// its epoch, and a closed shard stays readable). A shard or epoch this node does not know
    /// yet waits briefly for its map to catch up.
    async fn check(&self, shard: ShardRef, write: bool) -> Result<ShardRoute, StaleReason> {
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(self.config.map_catch_up_wait_ms);
        let mut changes = self.owner.changes();
        loop {
            changes.borrow_and_update();
            let reason = match self.owner.route(shard.uid) {
                Some(r) if r.epoch == shard.epoch => {
                    return if write && !r.open {
                        Err(StaleReason::Closed)
                    } else {
                        Ok(r)
                    };
                }
                Some(r) if r.epoch > shard.epoch => {
                    return if write {
                        Err(StaleReason::Epoch)
                    } else {
                        Ok(r)
                    };
                }
                Some(_) => StaleReason::Epoch,
                None => StaleReason::NotOwner,
            };
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return Err(reason) },
                _ = tokio::time::sleep_until(deadline) => return Err(reason),
            }
        }
    }

    async fn wait(&self, route: &ShardRoute, after: u64, wait_ms: u32) -> Response {
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(wait_ms.min(WAIT_MS_MAX) as u64);
        let mut signal = self.storage.append_signal(route);
        loop {
            // Marked seen before the read: an append landing after it still wakes the wait.
            signal.borrow_and_update();
            let tip = match self.storage.tip(route).await {
                Ok(t) => t,
                Err(e) => return Response::Api(e),
            };
            if tip.next_seq_ix > after {
                return Response::Ok(Payload::Tip(tip));
            }
            tokio::select! {
                changed = signal.changed() => if changed.is_err() {
                    return Response::Ok(Payload::Tip(tip));
                },
                _ = tokio::time::sleep_until(deadline) => return Response::Ok(Payload::Tip(tip)),
            }
        }
    }
}

impl Handler for StorageServer {
    fn handle(
        self: Arc<Self>,
        path: String,
        _headers: HeaderMap,
        body: Bytes,
    ) -> BoxFuture<HttpResponse<Full<Bytes>>> {
        Box::pin(async move { self.http(path, body).await })
    }
}
