//! The shard map: which shard of which stream owns a hash key, and which replica group and node
//! serve it. It is the one thing a front-end needs from the control plane to route a request.
//!
//! A [`ShardMap`] is immutable and versioned, with a CRC32C over a canonical encoding of its
//! content. A new map is built beside the live one — from a full snapshot or by applying a
//! [`MapDelta`] — and validated (versions contiguous, hash ranges of every stream's open shards
//! covering `[0, 2^128)` with no gap or overlap, checksum matching) before anyone swaps it in; a
//! half-built or invalid map is an error, never a map (design rule F3).
//!
//! Hashing: a partition key's hash key is the MD5 of its UTF-8 bytes read as a big-endian 128-bit
//! unsigned integer ([`partition_key_hash`]). [`even_split`] divides the key space as AWS does
//! for CreateStream.
//!
//! Sequence numbers of AWS's shape live here too ([`seqnum`]): every role reads or writes them.
//!
//! Each stream's entry also carries its resource policies and its consumers' ([`Policies`],
//! parsed by `levee-policy`), so a front-end authorizes every call from its local map — the
//! same snapshot-plus-delta path, the same last-known-good rule — without asking the control
//! plane.
//!
//! This crate does no I/O.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use levee_policy::ResourcePolicy;
use md5::{Digest, Md5};

pub mod arn;
pub mod codec;
pub mod seqnum;
pub use seqnum::SequenceNumber;

/// The largest hash key, 2^128 - 1.
pub const HASH_KEY_MAX: u128 = u128::MAX;

/// A 128-bit hash key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HashKey(pub u128);

impl fmt::Display for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The hash key of a partition key: MD5 of its UTF-8 bytes, big-endian.
pub fn partition_key_hash(partition_key: &str) -> HashKey {
    let digest = Md5::digest(partition_key.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest);
    HashKey(u128::from_be_bytes(b))
}

/// An inclusive range of hash keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HashRange {
    pub start: u128,
    pub end: u128,
}

impl HashRange {
    pub fn contains(&self, key: HashKey) -> bool {
        self.start <= key.0 && key.0 <= self.end
    }
}

/// Splits `[0, 2^128)` into `n` ranges as AWS does for CreateStream: `h = floor(2^128 / n)`,
/// range i is `[i*h, (i+1)*h - 1]`, and the last one ends at `2^128 - 1`. `n` must be ≥ 1.
pub fn even_split(n: u32) -> Vec<HashRange> {
    assert!(n >= 1, "a stream has at least one shard");
    if n == 1 {
        return vec![HashRange {
            start: 0,
            end: u128::MAX,
        }];
    }
    let n = u128::from(n);
    // floor(2^128 / n) without overflowing: (2^128 - 1) / n, plus one when n divides 2^128.
    let mut h = u128::MAX / n;
    if u128::MAX % n == n - 1 {
        h += 1;
    }
    (0..n)
        .map(|i| HashRange {
            start: i * h,
            end: if i == n - 1 {
                u128::MAX
            } else {
                (i + 1) * h - 1
            },
        })
        .collect()
}

/// A shard's index within its stream; displayed as `shardId-000000000007`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShardId(pub u32);

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shardId-{:012}", self.0)
    }
}

impl ShardId {
    /// Resolves a client's shard id as AWS does (kinesalite's recorded tests): the text after the
    /// first `-` — or the whole text when there is none or it is empty — must be decimal digits
    /// with a value of at most 2^31 - 1. So `shardId-000000000005`, `5`, `anything-5` and `-5`
    /// all name shard 5; `2.14E4` and `shardId-002147483648` name none. The catalog and the
    /// front-end both resolve shard ids with this one rule.
    pub fn resolve(s: &str) -> Option<ShardId> {
        let digits = match s.split('-').nth(1) {
            Some(d) if !d.is_empty() => d,
            _ => s,
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let significant = digits.trim_start_matches('0');
        if significant.len() > 10 {
            return None;
        }
        let value: u64 = if significant.is_empty() {
            0
        } else {
            significant.parse().ok()?
        };
        u32::try_from(value)
            .ok()
            .filter(|v| i32::try_from(*v).is_ok())
            .map(ShardId)
    }

    /// Parses `shardId-<digits>` (up to 12 digits) or the bare digits.
    pub fn parse(s: &str) -> Option<ShardId> {
        let digits = s.strip_prefix("shardId-").unwrap_or(s);
        if digits.is_empty() || digits.len() > 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().map(ShardId)
    }
}

/// Identifies a storage node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u64);

/// Identifies a replica group (a set of shards sharing one group log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupId(pub u64);

/// Where one shard lives and what it covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ShardRoute {
    pub shard_id: ShardId,
    /// The storage engine's identity of the shard.
    pub uid: u64,
    pub hash_range: HashRange,
    /// Open shards take writes; closed ones (resharded) only serve reads.
    pub open: bool,
    pub group: GroupId,
    pub node: NodeId,
    /// Bumped whenever the shard moves or changes state; storage rejects a stale epoch (R4).
    pub epoch: u64,
    /// The shard this one was split from or merged into (lineage, for `ChildShards`).
    pub parent: Option<ShardId>,
    /// The other parent of a merge.
    pub adjacent_parent: Option<ShardId>,
    /// When the shard was created (part of its sequence numbers; storage creates it with this).
    pub created_ms: u64,
    /// When a reshard closed it; `None` while open.
    pub closed_ms: Option<u64>,
}

/// Whether a stream takes traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamState {
    Creating,
    Active,
    Updating,
    Deleting,
}

/// One stream's routing entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamRoute {
    pub name: String,
    /// The storage engine's identity of the stream.
    pub uid: u64,
    pub state: StreamState,
    /// Sorted by shard id.
    pub shards: Vec<ShardRoute>,
    /// The resource policies of the stream and of its consumers.
    pub policies: Policies,
    /// What storage nodes and front-ends need besides routing, so that a fleet keeps working
    /// with the control plane away: retention, record size, consumers, descriptions.
    pub facts: StreamFacts,
}

/// A stream's settings as the map carries them (all in the map's checksum).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct StreamFacts {
    /// `StreamCreationTimestamp`.
    pub created_ms: u64,
    pub retention_hours: u32,
    pub on_demand: bool,
    /// `MaxRecordSizeInKiB`.
    pub max_record_kib: u32,
    /// Encrypted at rest (`KMS`) with this key id; `None`: not encrypted.
    pub key_id: Option<String>,
    /// Enabled shard-level metrics, by AWS's names, sorted.
    pub shard_level_metrics: Vec<String>,
    pub warm_throughput_mibps: Option<u32>,
    /// The stream's data keys, wrapped under the master key (storage nodes seal with them).
    pub data_keys: Vec<WrappedKey>,
    /// Registered consumers, sorted by name.
    pub consumers: Vec<ConsumerFact>,
}

/// A data key wrapped under the master key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WrappedKey {
    pub version: u32,
    pub wrapped_hex: String,
    pub master_fingerprint: String,
}

/// A registered stream consumer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConsumerFact {
    pub name: String,
    pub arn: String,
    pub state: ConsumerState,
    pub created_ms: u64,
}

/// A consumer's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConsumerState {
    Creating,
    Active,
    Deleting,
}

impl StreamFacts {
    /// The canonical encoding: what the codec writes and the checksum covers.
    pub fn encode(&self, b: &mut Vec<u8>) {
        fn text(b: &mut Vec<u8>, t: &str) {
            b.extend_from_slice(&(t.len() as u32).to_le_bytes());
            b.extend_from_slice(t.as_bytes());
        }
        fn opt_u32(b: &mut Vec<u8>, v: Option<u32>) {
            match v {
                None => b.push(0),
                Some(v) => {
                    b.push(1);
                    b.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
        b.extend_from_slice(&self.created_ms.to_le_bytes());
        b.extend_from_slice(&self.retention_hours.to_le_bytes());
        b.push(u8::from(self.on_demand));
        b.extend_from_slice(&self.max_record_kib.to_le_bytes());
        match &self.key_id {
            None => b.push(0),
            Some(k) => {
                b.push(1);
                text(b, k);
            }
        }
        b.extend_from_slice(&(self.shard_level_metrics.len() as u32).to_le_bytes());
        for m in &self.shard_level_metrics {
            text(b, m);
        }
        opt_u32(b, self.warm_throughput_mibps);
        b.extend_from_slice(&(self.data_keys.len() as u32).to_le_bytes());
        for k in &self.data_keys {
            b.extend_from_slice(&k.version.to_le_bytes());
            text(b, &k.wrapped_hex);
            text(b, &k.master_fingerprint);
        }
        b.extend_from_slice(&(self.consumers.len() as u32).to_le_bytes());
        for c in &self.consumers {
            text(b, &c.name);
            text(b, &c.arn);
            b.push(match c.state {
                ConsumerState::Creating => 0,
                ConsumerState::Active => 1,
                ConsumerState::Deleting => 2,
            });
            b.extend_from_slice(&c.created_ms.to_le_bytes());
        }
    }

    /// The consumer with this ARN.
    pub fn consumer_by_arn(&self, arn: &str) -> Option<&ConsumerFact> {
        self.consumers.iter().find(|c| c.arn == arn)
    }
}

/// A stream's resource policies (PutResourcePolicy), parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Policies {
    /// The stream's own policy.
    pub stream: Option<Arc<ResourcePolicy>>,
    /// The consumers that have a policy, sorted by consumer name.
    pub consumers: Vec<ConsumerPolicy>,
}

/// One consumer's resource policy.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConsumerPolicy {
    pub name: String,
    /// `<stream ARN>/consumer/<name>:<creation seconds>`.
    pub arn: String,
    pub policy: Arc<ResourcePolicy>,
}

impl Policies {
    /// The policy entry of consumer `name`, if it has one.
    pub fn consumer(&self, name: &str) -> Option<&ConsumerPolicy> {
        self.consumers
            .binary_search_by(|c| c.name.as_str().cmp(name))
            .ok()
            .and_then(|i| self.consumers.get(i))
    }
}

impl StreamRoute {
    /// The open shard that owns `key`.
    pub fn route(&self, key: HashKey) -> Option<&ShardRoute> {
        self.shards
            .iter()
            .find(|s| s.open && s.hash_range.contains(key))
    }

    /// The shards created from `id` by a split or merge (empty while it is open).
    pub fn children(&self, id: ShardId) -> impl Iterator<Item = &ShardRoute> {
        self.shards
            .iter()
            .filter(move |s| s.parent == Some(id) || s.adjacent_parent == Some(id))
    }

    pub fn shard(&self, id: ShardId) -> Option<&ShardRoute> {
        self.shards
            .binary_search_by_key(&id, |s| s.shard_id)
            .ok()
            .and_then(|i| self.shards.get(i))
    }

    /// Checks that the open shards cover `[0, 2^128)` exactly, and shards are sorted by id.
    pub fn validate(&self) -> Result<(), MapError> {
        let bad = |why: String| MapError::Invalid {
            stream: self.name.clone(),
            why,
        };
        if self
            .shards
            .windows(2)
            .any(|w| w[0].shard_id >= w[1].shard_id)
        {
            return Err(bad("shards are not sorted by id".into()));
        }
        let mut open: Vec<HashRange> = self
            .shards
            .iter()
            .filter(|s| s.open)
            .map(|s| s.hash_range)
            .collect();
        if open.is_empty() {
            return Err(bad("no open shard".into()));
        }
        open.sort_by_key(|r| r.start);
        let mut next = 0u128;
        for (i, r) in open.iter().enumerate() {
            if r.start != next || r.end < r.start {
                return Err(bad(format!(
                    "open shards leave a gap or overlap at hash key {next}"
                )));
            }
            if r.end == u128::MAX {
                if i + 1 != open.len() {
                    return Err(bad("open shards overlap at the top of the key space".into()));
                }
                return Ok(());
            }
            next = r.end + 1;
        }
        Err(bad(format!(
            "open shards end at {}, not 2^128 - 1",
            next - 1
        )))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    #[error("stream {stream}: {why}")]
    Invalid { stream: String, why: String },
    #[error("delta from version {from} does not apply to map version {have}")]
    VersionGap { have: u64, from: u64 },
    #[error("map version {version}: checksum {got:08x} does not match {want:08x}")]
    Checksum { version: u64, want: u32, got: u32 },
}

/// What a registered node does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeRole {
    /// Serves the Kinesis API.
    Frontend,
    /// Holds shards (the only role shards are placed on).
    Storage,
    /// A control-plane voter (the catalog and the map's publication).
    Control,
}

impl NodeRole {
    /// The role's byte in the map codec and its checksum (front-end 0 and storage 1 as
    /// before control nodes were listed).
    pub fn code(self) -> u8 {
        match self {
            NodeRole::Frontend => 0,
            NodeRole::Storage => 1,
            NodeRole::Control => 2,
        }
    }

    pub fn from_code(code: u8) -> Option<NodeRole> {
        match code {
            0 => Some(NodeRole::Frontend),
            1 => Some(NodeRole::Storage),
            2 => Some(NodeRole::Control),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NodeRole::Frontend => "frontend",
            NodeRole::Storage => "storage",
            NodeRole::Control => "control",
        }
    }
}

/// A registered node as the map carries it: where its inter-node listener is, its cell, its
/// role, and where its admin listener (`/status.json`) is — so any node's persisted map is a
/// directory of the fleet that needs no control plane to read (`levee status --fleet`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeEntry {
    /// `ip:port` of its inter-node listener: a storage node's storage listener, a front-end's
    /// API listener, a control node's control listener.
    pub address: String,
    pub cell: String,
    pub role: NodeRole,
    /// `ip:port` of its admin listener; empty when the node did not say (older nodes).
    pub admin: String,
}

impl NodeEntry {
    /// Whether shards may be placed on it.
    pub fn is_storage(&self) -> bool {
        self.role == NodeRole::Storage
    }
}

/// The nodes of a map, by id.
pub type NodeTable = BTreeMap<NodeId, NodeEntry>;

/// An immutable routing table. Cheap to clone (streams and the node table are shared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardMap {
    version: u64,
    streams: BTreeMap<String, Arc<StreamRoute>>,
    /// Empty in the embedded mode (every shard is this process's).
    nodes: Arc<NodeTable>,
    checksum: u32,
}

/// The change from one map version to the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapDelta {
    pub from_version: u64,
    pub to_version: u64,
    /// Streams added or changed, whole.
    pub upserts: Vec<StreamRoute>,
    /// Streams removed, by name.
    pub removals: Vec<String>,
    /// The whole node table, when it changed.
    pub nodes: Option<NodeTable>,
    /// Checksum of the resulting map.
    pub checksum: u32,
}

impl ShardMap {
    /// The empty map, version 0.
    pub fn empty() -> ShardMap {
        ShardMap::build(0, Vec::new()).unwrap_or_else(|_| ShardMap {
            version: 0,
            streams: BTreeMap::new(),
            nodes: Arc::new(NodeTable::new()),
            checksum: 0,
        })
    }

    /// Builds and validates a map. Streams in state Creating or Deleting may have no shards.
    pub fn build(version: u64, streams: Vec<StreamRoute>) -> Result<ShardMap, MapError> {
        ShardMap::build_with_nodes(version, streams, NodeTable::new())
    }

    /// [`ShardMap::build`] with the fleet's node table.
    pub fn build_with_nodes(
        version: u64,
        streams: Vec<StreamRoute>,
        nodes: NodeTable,
    ) -> Result<ShardMap, MapError> {
        let mut m = BTreeMap::new();
        for s in streams {
            if !s.shards.is_empty() || s.state == StreamState::Active {
                s.validate()?;
            }
            m.insert(s.name.clone(), Arc::new(s));
        }
        let checksum = checksum_of(version, &m, &nodes);
        Ok(ShardMap {
            version,
            streams: m,
            nodes: Arc::new(nodes),
            checksum,
        })
    }

    /// The registered nodes (empty in the embedded mode).
    pub fn nodes(&self) -> &NodeTable {
        &self.nodes
    }

    pub fn node(&self, id: NodeId) -> Option<&NodeEntry> {
        self.nodes.get(&id)
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn checksum(&self) -> u32 {
        self.checksum
    }

    pub fn stream(&self, name: &str) -> Option<&Arc<StreamRoute>> {
        self.streams.get(name)
    }

    pub fn streams(&self) -> impl Iterator<Item = &Arc<StreamRoute>> {
        self.streams.values()
    }

    /// Recomputes the checksum and compares it with the stored one.
    pub fn verify(&self) -> Result<(), MapError> {
        let got = checksum_of(self.version, &self.streams, &self.nodes);
        if got != self.checksum {
            return Err(MapError::Checksum {
                version: self.version,
                want: self.checksum,
                got,
            });
        }
        Ok(())
    }

    /// The delta that turns `self` into `next`.
    pub fn diff(&self, next: &ShardMap) -> MapDelta {
        let upserts = next
            .streams
            .iter()
            .filter(|(k, v)| self.streams.get(*k) != Some(v))
            .map(|(_, v)| StreamRoute::clone(v))
            .collect();
        let removals = self
            .streams
            .keys()
            .filter(|k| !next.streams.contains_key(*k))
            .cloned()
            .collect();
        MapDelta {
            from_version: self.version,
            to_version: next.version,
            upserts,
            removals,
            nodes: (self.nodes != next.nodes).then(|| NodeTable::clone(&next.nodes)),
            checksum: next.checksum,
        }
    }

    /// Builds the next map beside this one; validates versions, ranges and the checksum.
    pub fn apply(&self, delta: &MapDelta) -> Result<ShardMap, MapError> {
        if delta.from_version != self.version || delta.to_version <= self.version {
            return Err(MapError::VersionGap {
                have: self.version,
                from: delta.from_version,
            });
        }
        let mut streams = self.streams.clone();
        for name in &delta.removals {
            streams.remove(name);
        }
        for s in &delta.upserts {
            if !s.shards.is_empty() || s.state == StreamState::Active {
                s.validate()?;
            }
            streams.insert(s.name.clone(), Arc::new(s.clone()));
        }
        let nodes = match &delta.nodes {
            Some(table) => Arc::new(table.clone()),
            None => self.nodes.clone(),
        };
        let got = checksum_of(delta.to_version, &streams, &nodes);
        if got != delta.checksum {
            return Err(MapError::Checksum {
                version: delta.to_version,
                want: delta.checksum,
                got,
            });
        }
        Ok(ShardMap {
            version: delta.to_version,
            streams,
            nodes,
            checksum: got,
        })
    }
}

/// CRC32C over a canonical little-endian encoding of the map's content.
/// An empty node table adds nothing, so embedded maps keep the checksums they had before
/// nodes were part of the map.
fn checksum_of(
    version: u64,
    streams: &BTreeMap<String, Arc<StreamRoute>>,
    nodes: &NodeTable,
) -> u32 {
    let mut crc = crc32c::crc32c(&version.to_le_bytes());
    let mut put = |bytes: &[u8]| crc = crc32c::crc32c_append(crc, bytes);
    for s in streams.values() {
        put(&(s.name.len() as u64).to_le_bytes());
        put(s.name.as_bytes());
        put(&s.uid.to_le_bytes());
        put(&[s.state as u8]);
        put(&(s.shards.len() as u64).to_le_bytes());
        for sh in &s.shards {
            put(&sh.shard_id.0.to_le_bytes());
            put(&sh.uid.to_le_bytes());
            put(&sh.hash_range.start.to_le_bytes());
            put(&sh.hash_range.end.to_le_bytes());
            put(&[u8::from(sh.open)]);
            put(&sh.group.0.to_le_bytes());
            put(&sh.node.0.to_le_bytes());
            put(&sh.epoch.to_le_bytes());
            for p in [sh.parent, sh.adjacent_parent] {
                put(&p.map_or(u64::MAX, |p| u64::from(p.0)).to_le_bytes());
            }
            put(&sh.created_ms.to_le_bytes());
            put(&sh.closed_ms.map_or(u64::MAX, |c| c).to_le_bytes());
        }
        let mut facts = Vec::new();
        s.facts.encode(&mut facts);
        put(&facts);
        fn text(put: &mut impl FnMut(&[u8]), t: &str) {
            put(&(t.len() as u64).to_le_bytes());
            put(t.as_bytes());
        }
        match &s.policies.stream {
            None => put(&[0]),
            Some(p) => {
                put(&[1]);
                text(&mut put, p.text());
            }
        }
        put(&(s.policies.consumers.len() as u64).to_le_bytes());
        for c in &s.policies.consumers {
            text(&mut put, &c.name);
            text(&mut put, &c.arn);
            text(&mut put, c.policy.text());
        }
    }
    if !nodes.is_empty() {
        put(b"nodes");
        put(&(nodes.len() as u64).to_le_bytes());
        for (id, n) in nodes {
            put(&id.0.to_le_bytes());
            put(&(n.address.len() as u64).to_le_bytes());
            put(n.address.as_bytes());
            put(&(n.cell.len() as u64).to_le_bytes());
            put(n.cell.as_bytes());
            put(&[n.role.code()]);
            // An admin address adds to the checksum only when present, so maps persisted
            // before nodes carried one keep their checksums.
            if !n.admin.is_empty() {
                put(b"admin");
                put(&(n.admin.len() as u64).to_le_bytes());
                put(n.admin.as_bytes());
            }
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn stream(name: &str, n: u32) -> StreamRoute {
        StreamRoute {
            name: name.into(),
            uid: 1,
            state: StreamState::Active,
            shards: even_split(n)
                .into_iter()
                .enumerate()
                .map(|(i, r)| ShardRoute {
                    shard_id: ShardId(i as u32),
                    uid: 100 + i as u64,
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
            policies: Policies::default(),
            facts: Default::default(),
        }
    }

    fn node(address: &str, storage: bool) -> NodeEntry {
        NodeEntry {
            address: address.into(),
            cell: "cell-1".into(),
            role: if storage {
                NodeRole::Storage
            } else {
                NodeRole::Frontend
            },
            admin: String::new(),
        }
    }

    #[test]
    fn the_node_table_travels_in_snapshots_and_only_changed_in_deltas() {
        let nodes: NodeTable = [
            (NodeId(1), node("127.0.0.1:7001", true)),
            (NodeId(9), node("127.0.0.9:7009", false)),
        ]
        .into_iter()
        .collect();
        // An empty table leaves the checksum as it was before maps carried nodes.
        let plain = ShardMap::build(3, vec![stream("s", 2)]).unwrap();
        let empty = ShardMap::build_with_nodes(3, vec![stream("s", 2)], NodeTable::new()).unwrap();
        assert_eq!(plain.checksum(), empty.checksum());
        let a = ShardMap::build_with_nodes(3, vec![stream("s", 2)], nodes.clone()).unwrap();
        assert_ne!(a.checksum(), plain.checksum(), "nodes are in the checksum");
        assert_eq!(a.node(NodeId(9)), Some(&node("127.0.0.9:7009", false)));
        // A stream change alone: the delta carries no node table.
        let b = ShardMap::build_with_nodes(4, vec![stream("s", 3)], nodes.clone()).unwrap();
        let d = a.diff(&b);
        assert_eq!(d.nodes, None);
        assert_eq!(a.apply(&d).unwrap(), b);
        // A node moves: the delta carries the whole new table, and applying it checks out.
        let mut moved = nodes;
        moved.insert(NodeId(1), node("127.0.0.1:7999", true));
        let c = ShardMap::build_with_nodes(5, vec![stream("s", 3)], moved.clone()).unwrap();
        let d = b.diff(&c);
        assert_eq!(d.nodes.as_ref(), Some(&moved));
        assert_eq!(b.apply(&d).unwrap(), c);
        // A delta that lies about the table fails its checksum.
        let mut lying = d.clone();
        lying.nodes = Some(NodeTable::new());
        assert!(matches!(b.apply(&lying), Err(MapError::Checksum { .. })));
    }

    #[test]
    fn admin_addresses_and_control_nodes_are_in_the_checksum_and_travel_in_deltas() {
        let mut nodes: NodeTable = [(NodeId(1), node("127.0.0.1:7001", true))]
            .into_iter()
            .collect();
        let a = ShardMap::build_with_nodes(3, vec![stream("s", 2)], nodes.clone()).unwrap();
        nodes.get_mut(&NodeId(1)).unwrap().admin = "127.0.0.1:4590".into();
        let b = ShardMap::build_with_nodes(4, vec![stream("s", 2)], nodes.clone()).unwrap();
        let d = a.diff(&b);
        assert_eq!(
            d.nodes.as_ref(),
            Some(&nodes),
            "an admin address is a node change"
        );
        assert_eq!(a.apply(&d).unwrap(), b);
        nodes.insert(
            NodeId(2),
            NodeEntry {
                address: "127.0.0.2:4591".into(),
                cell: "cell-1".into(),
                role: NodeRole::Control,
                admin: "127.0.0.2:4590".into(),
            },
        );
        let c = ShardMap::build_with_nodes(5, vec![stream("s", 2)], nodes.clone()).unwrap();
        assert_eq!(b.apply(&b.diff(&c)).unwrap(), c);
        assert!(!c.node(NodeId(2)).unwrap().is_storage());
        // The same table at the same version with another admin address checks differently.
        let mut other = nodes;
        other.get_mut(&NodeId(2)).unwrap().admin = "127.0.0.2:4599".into();
        let c2 = ShardMap::build_with_nodes(5, vec![stream("s", 2)], other).unwrap();
        assert_ne!(c.checksum(), c2.checksum());
        for code in 0..=3u8 {
            assert_eq!(
                NodeRole::from_code(code).map(NodeRole::code),
                (code < 3).then_some(code)
            );
        }
    }

    #[test]
    fn md5_hash_matches_known_values() {
        // MD5("") = d41d8cd98f00b204e9800998ecf8427e
        assert_eq!(
            partition_key_hash("").0,
            0xd41d8cd98f00b204e9800998ecf8427e_u128
        );
        // MD5("a") = 0cc175b9c0f1b6a831c399e269772661
        assert_eq!(
            partition_key_hash("a").0,
            0x0cc175b9c0f1b6a831c399e269772661_u128
        );
    }

    #[test]
    fn shard_ids_display_and_parse() {
        assert_eq!(ShardId(7).to_string(), "shardId-000000000007");
        assert_eq!(ShardId::parse("shardId-000000000007"), Some(ShardId(7)));
        assert_eq!(ShardId::parse("7"), Some(ShardId(7)));
        assert_eq!(ShardId::parse("shardId-"), None);
        assert_eq!(ShardId::parse("shardId-x"), None);
        assert_eq!(ShardId::parse("shardId-9999999999999"), None);
    }

    #[test]
    fn even_split_matches_aws_for_small_counts() {
        let r = even_split(1);
        assert_eq!(
            r,
            vec![HashRange {
                start: 0,
                end: u128::MAX
            }]
        );
        let r = even_split(2);
        assert_eq!(r[0].end, (1u128 << 127) - 1);
        assert_eq!(r[1].start, 1u128 << 127);
        // AWS's 3-shard stream: 113427455640312821154458202477256070484 is the first boundary.
        let r = even_split(3);
        assert_eq!(r[0].end, 113427455640312821154458202477256070484);
        assert_eq!(r[2].end, u128::MAX);
    }

    proptest! {
        #[test]
        fn even_splits_cover_the_key_space(n in 1u32..5000) {
            let s = stream("s", n);
            prop_assert!(s.validate().is_ok());
            prop_assert_eq!(s.shards.len() as u32, n);
        }

        #[test]
        fn every_key_routes_to_exactly_one_open_shard(n in 1u32..200, key in any::<u128>()) {
            let s = stream("s", n);
            let owners = s.shards.iter().filter(|sh| sh.hash_range.contains(HashKey(key))).count();
            prop_assert_eq!(owners, 1);
            prop_assert!(s.route(HashKey(key)).is_some());
        }

        #[test]
        fn delta_from_diff_rebuilds_the_next_map(a in 1u32..20, b in 1u32..20, drop_first in any::<bool>()) {
            let m1 = ShardMap::build(1, vec![stream("x", a), stream("y", 2)]).unwrap();
            let mut next = vec![stream("x", b), stream("z", 3)];
            if !drop_first { next.push(stream("y", 2)); }
            let m2 = ShardMap::build(2, next).unwrap();
            let d = m1.diff(&m2);
            let rebuilt = m1.apply(&d).unwrap();
            prop_assert_eq!(&rebuilt, &m2);
            prop_assert!(rebuilt.verify().is_ok());
        }
    }

    #[test]
    fn policies_are_part_of_the_map_and_its_checksum() {
        let text = r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"kinesis:PutRecords","Resource":"*"}}"#;
        let plain = ShardMap::build(2, vec![stream("s", 1)]).unwrap();
        let mut with = stream("s", 1);
        with.policies.stream = Some(Arc::new(ResourcePolicy::parse(text).unwrap()));
        let m2 = ShardMap::build(2, vec![with.clone()]).unwrap();
        assert_ne!(plain.checksum(), m2.checksum());
        // A delta that only changes a policy carries it and verifies.
        let m1 = ShardMap::build(1, vec![stream("s", 1)]).unwrap();
        let d = m1.diff(&m2);
        assert_eq!(d.upserts, vec![with]);
        let applied = m1.apply(&d).unwrap();
        assert_eq!(
            applied
                .stream("s")
                .unwrap()
                .policies
                .stream
                .as_ref()
                .unwrap()
                .text(),
            text
        );
        // A tampered policy text fails the checksum.
        let mut bad = d.clone();
        bad.upserts[0].policies.stream = Some(Arc::new(ResourcePolicy::parse_or_deny_all("{}")));
        assert!(matches!(m1.apply(&bad), Err(MapError::Checksum { .. })));
    }

    #[test]
    fn invalid_maps_and_deltas_are_refused() {
        let mut s = stream("s", 4);
        s.shards[1].hash_range.end -= 1;
        assert!(matches!(
            ShardMap::build(1, vec![s]),
            Err(MapError::Invalid { .. })
        ));
        let m1 = ShardMap::build(1, vec![stream("a", 2)]).unwrap();
        let m2 = ShardMap::build(2, vec![stream("a", 3)]).unwrap();
        let mut d = m1.diff(&m2);
        assert!(matches!(m2.apply(&d), Err(MapError::VersionGap { .. })));
        d.checksum ^= 1;
        assert!(matches!(m1.apply(&d), Err(MapError::Checksum { .. })));
        let mut tampered = m2.clone();
        tampered.version = 9;
        assert!(tampered.verify().is_err());
    }
}
