//! Levee's front-end: speaks the Kinesis wire protocols (JSON and CBOR over HTTP/1.1, h2c and TLS with h2),
//! checks requests, routes data operations by the shard map to storage, answers ListShards,
//! DescribeStream and DescribeStreamSummary from that map, and forwards the other control
//! operations to the control plane. It is stateless apart from its map and never depends on the
//! storage or catalog crates — only on the interfaces in [`backend`] (a test checks this).
//!
//! - [`auth`]: SigV4 verification (header and query forms), the authentication modes.
//! - [`access`]: resource-policy enforcement for verified callers, from the local map.
//! - [`limits`]: admission control (in-flight request limit with fast shedding).
//! - [`shard_limits`]: AWS's per-shard throughput limits (token buckets, driven clock in tests).
//! - [`http`]: transport, pre-dispatch checks, request ids, connection limits, graceful shutdown.
//! - [`dataplane`]: PutRecord(s), GetShardIterator, GetRecords.
//! - [`describe`]: ListShards, DescribeStream, DescribeStreamSummary, from the local map.
//! - [`iterator`]: opaque, MAC-protected, expiring shard iterators.
//! - [`backend`]: the control-plane and storage interfaces, and the map holder.
//! - [`metrics`]: wrappers that record per-operation and per-stream metrics.
//! - [`service`]: decodes each call and sends it where it belongs.
//! - [`subscribe`]: SubscribeToShard — the push of committed records to fan-out consumers.
//! - [`eventstream`]: the event-stream framing of SubscribeToShard's response.
//! - [`map_follow`]: the map keeper (validate, hold, persist, swap) and the follower task.
//! - [`tls`]: TLS (certificate files or a generated self-signed one) on the API port.

pub mod access;
pub mod auth;
pub mod backend;
pub mod dataplane;
pub mod describe;
pub mod eventstream;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod iterator;
pub mod limits;
pub mod map_follow;
pub mod metrics;
pub mod service;
pub mod shard_limits;
pub mod subscribe;
pub mod tls;
