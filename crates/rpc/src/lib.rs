//! Levee's inter-node transport. Today it carries the storage protocol: a front-end's
//! [`client::RemoteStorage`] (a `StoragePlane`) calls a storage node's [`server::StorageServer`]
//! over multiplexed HTTP/2 (h2c) connections from a capped, least-recently-used
//! [`client::Pool`]; the messages ([`codec`]) are a small checked binary format.
//!
//! Design rules it answers (`design.md`): no thread or connection per peer (R1, R2: the pool
//! has a fixed cap whatever the fleet's size, connections are tasks), stale is safe (R4: every
//! request carries the shard's epoch as the caller's map has it; the node checks it against
//! its own map and refuses with a hint, and the front-end routes again), bounded buffers (R6:
//! body sizes, records per message, streams per connection, requests in flight are capped).

pub mod client;
pub mod codec;
pub mod control;
pub mod server;
pub mod transport;

pub use client::{
    MapDirectory, NodeDirectory, Pool, PoolConfig, RemoteStorage, RpcError, StaticDirectory,
};
pub use server::{MapOwnership, Ownership, ServerConfig, StorageServer};
