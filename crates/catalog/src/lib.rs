//! The control plane's catalog: every stream, its shards (ids, hash ranges, lineage, placement
//! onto a replica group and node, epoch), its tags and retention — and the [`ShardMap`] that
//! front-ends route by, which the catalog publishes.
//!
//! The catalog is a deterministic state machine (design rule R5; `shared/design.md` §3): a
//! [`Command`] goes in, the state changes (or does not), and an [`Outcome`] or a
//! [`CatalogError`] comes out. There are no clocks, no randomness and no I/O inside: every
//! command carries what it needs (`now_ms`), identifiers come from counters in the state, and all
//! collections are ordered (`BTreeMap`), so applying the same commands to the same state always
//! gives the same state, outputs and maps. That is what lets the same code run under one Raft
//! voter (the embedded mode) or five: each replica applies the committed log and ends up
//! identical. [`Catalog::snapshot`] and [`Catalog::restore`] move the state as checksummed bytes.
//!
//! Invariants (checked after every command, in debug and release builds — see
//! [`Catalog::check_invariants`]): the open shards of every stream cover `[0, 2^128)` exactly;
//! shard indexes within a stream are dense (`0..n`); stream and shard uids are unique and below
//! their counters; retention and tag counts are within limits; each ARN matches its name; and
//! the resharding lineage holds (a shard is closed exactly when it has `closed_ms`; shards
//! without parents come first; every other shard has one or two distinct, older, closed parents,
//! each overlapping it, whose ranges together cover it — see `reshard::check_shards`); and each
//! stream's enhanced fan-out consumers are filed by name, have the ARN their stream, name and
//! creation second give (so consumer ARNs are unique), stay within the per-stream limits, and
//! are gone once the stream is DELETING (`consumers::check_consumers`). A
//! command that would break one is refused with [`CatalogError::InternalFailure`] and the old
//! state is kept. It does not panic: a panic while applying a committed log entry would crash
//! every replica again on every replay, whereas a deterministic refusal is replicated like any
//! other result.
//!
//! Errors carry AWS's exact texts (see `error.rs`). The front-end validates request shapes first
//! (ValidationException, SerializationException); the catalog re-checks names and counts so that
//! nothing invalid enters the state.

mod consumers;
mod error;
mod nodes;
pub mod policy;
mod reshard;
mod settings;
mod snapshot;
mod tags;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use serde::{Deserialize, Serialize};

pub use consumers::{
    parse_consumer_arn, Consumer, ConsumerArn, ConsumerDescription, ConsumerStatus,
    CONSUMERS_CREATING_MAX, CONSUMERS_PER_STREAM_MAX, CONSUMER_NAME_CHARS_MAX,
};
pub use error::{CatalogError, INTERNAL_FAILURE_MESSAGE};
pub use levee_map::{GroupId, HashRange, MapDelta, NodeId, ShardId, ShardMap};
pub use nodes::{
    NodeRecord, NodeRole, CELL_DEFAULT, FRONTENDS_PER_CELL_MAX_DEFAULT,
    STORAGE_NODES_PER_CELL_MAX_DEFAULT,
};
pub use reshard::{SCALINGS_PER_DAY_MAX, SCALING_WINDOW_MS};
pub use settings::{
    AccountSettings, BillingCommitment, BillingStatus, DataKey, ShardLevelMetric,
    BILLING_COMMITMENT_MIN_MS, MAX_RECORD_SIZE_KIB_DEFAULT, MAX_RECORD_SIZE_KIB_MAX,
    MAX_RECORD_SIZE_KIB_MIN, ON_DEMAND_STREAMS_MAX, WARM_THROUGHPUT_MIBPS_MAX,
};
pub use snapshot::SnapshotError;
pub use tags::{TAGS_PER_STREAM_MAX, TAG_KEY_CHARS_MAX, TAG_VALUE_CHARS_MAX};

use std::sync::Arc;

use levee_map::{ConsumerPolicy, Policies, ShardRoute, StreamRoute, StreamState};
use levee_policy::ResourcePolicy;
use tags::TagOp;

/// Shortest retention a stream may have, in hours.
pub const RETENTION_HOURS_MIN: i64 = 24;
/// Longest retention a stream may have, in hours (365 days).
pub const RETENTION_HOURS_MAX: i64 = 8760;
/// Retention of a new stream, in hours.
pub const RETENTION_HOURS_DEFAULT: u32 = 24;
/// Shards of a stream created without `ShardCount` (what real AWS gives).
pub const SHARD_COUNT_DEFAULT: u32 = 4;
/// Default account shard limit (AWS provisioned default in us-east-1, us-west-2, eu-west-1).
pub const SHARD_LIMIT_DEFAULT: u32 = 20_000;
/// Default number of streams that may be CREATING at once.
pub const STREAMS_CREATING_MAX_DEFAULT: u32 = 5;
/// Characters in a stream name.
pub const STREAM_NAME_CHARS_MAX: usize = 128;
/// The epoch of a newly created shard.
pub const SHARD_EPOCH_INITIAL: u64 = 1;

/// Node-level settings. Every replica of one catalog must use the same config: it decides limits
/// and placement, so it is part of what makes replay deterministic. It is not in the snapshot;
/// the snapshot's ARNs must match `account_id` and `region` or [`Catalog::restore`] refuses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogConfig {
    /// 12 digits, e.g. `000000000000`.
    pub account_id: String,
    /// E.g. `us-east-1`.
    pub region: String,
    /// Open shards the account may have across all streams.
    pub shard_limit: u32,
    /// Streams that may be CREATING at once.
    pub streams_creating_max: u32,
    /// Where new shards are placed while no storage node is registered (the embedded mode).
    pub node: NodeId,
    pub group: GroupId,
    /// This catalog's cell: new streams belong to it.
    pub cell: String,
    /// Hard caps on registered nodes per cell (R8).
    pub storage_nodes_per_cell_max: u32,
    pub frontends_per_cell_max: u32,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        CatalogConfig {
            account_id: "000000000000".to_string(),
            region: "us-east-1".to_string(),
            shard_limit: SHARD_LIMIT_DEFAULT,
            streams_creating_max: STREAMS_CREATING_MAX_DEFAULT,
            node: NodeId(1),
            group: GroupId(1),
            cell: CELL_DEFAULT.to_string(),
            storage_nodes_per_cell_max: STORAGE_NODES_PER_CELL_MAX_DEFAULT,
            frontends_per_cell_max: FRONTENDS_PER_CELL_MAX_DEFAULT,
        }
    }
}

/// A stream's status, as AWS names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StreamStatus {
    Creating,
    Active,
    Updating,
    Deleting,
}

impl StreamStatus {
    /// `CREATING`, `ACTIVE`, `UPDATING` or `DELETING`.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamStatus::Creating => "CREATING",
            StreamStatus::Active => "ACTIVE",
            StreamStatus::Updating => "UPDATING",
            StreamStatus::Deleting => "DELETING",
        }
    }

    fn route_state(self) -> StreamState {
        match self {
            StreamStatus::Creating => StreamState::Creating,
            StreamStatus::Active => StreamState::Active,
            StreamStatus::Updating => StreamState::Updating,
            StreamStatus::Deleting => StreamState::Deleting,
        }
    }
}

/// Capacity mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StreamMode {
    Provisioned,
    OnDemand,
}

impl StreamMode {
    /// `PROVISIONED` or `ON_DEMAND`.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamMode::Provisioned => "PROVISIONED",
            StreamMode::OnDemand => "ON_DEMAND",
        }
    }

    pub fn parse(s: &str) -> Option<StreamMode> {
        match s {
            "PROVISIONED" => Some(StreamMode::Provisioned),
            "ON_DEMAND" => Some(StreamMode::OnDemand),
            _ => None,
        }
    }
}

/// Server-side encryption: `NONE`, or `KMS` (records written are sealed under the stream's
/// current data key; see [`Stream::data_keys`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EncryptionType {
    None,
    Kms,
}

impl EncryptionType {
    pub fn as_str(self) -> &'static str {
        match self {
            EncryptionType::None => "NONE",
            EncryptionType::Kms => "KMS",
        }
    }
}

/// One shard. Everything DescribeStream and ListShards report comes from here; the starting
/// sequence number is formatted by the caller from `created_ms` and `index`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// The index in `shardId-000000000007`; dense per stream, never reused.
    pub index: u32,
    /// The storage engine's identity of the shard; global, never reused.
    pub uid: u64,
    pub hash_start: u128,
    pub hash_end: u128,
    pub parent: Option<u32>,
    pub adjacent_parent: Option<u32>,
    /// When the shard was created (the command's `now_ms`).
    pub created_ms: u64,
    /// Open shards take writes; closed ones (resharded) only serve reads.
    pub open: bool,
    /// Bumped whenever the shard moves or changes state (R4).
    pub epoch: u64,
    pub group: u64,
    pub node: u64,
    /// When a split, merge or UpdateShardCount closed the shard (the command's `now_ms`, raised
    /// if the leader's clock stepped back, so that it is never before any `created_ms` it
    /// ends); `None` while open. The caller forms `EndingSequenceNumber` from it (AWS's
    /// maximum-index form). Its children's `created_ms` equals it.
    #[serde(default)]
    pub closed_ms: Option<u64>,
    /// When [`Command::ExpireShards`] found the closed shard past retention. An expired shard
    /// keeps its index (ids stay dense and lineage stays resolvable) but holds no data: it is
    /// left out of the shard map and out of [`Stream::live_shards_after`] (ListShards,
    /// DescribeStream), and storage may drop it.
    #[serde(default)]
    pub expired_ms: Option<u64>,
}

impl Shard {
    pub fn shard_id(&self) -> ShardId {
        ShardId(self.index)
    }

    pub fn hash_range(&self) -> HashRange {
        HashRange {
            start: self.hash_start,
            end: self.hash_end,
        }
    }

    /// `StartingHashKey` as AWS sends it: a decimal string.
    pub fn starting_hash_key(&self) -> String {
        self.hash_start.to_string()
    }

    /// `EndingHashKey` as AWS sends it: a decimal string.
    pub fn ending_hash_key(&self) -> String {
        self.hash_end.to_string()
    }

    pub fn parent_shard_id(&self) -> Option<ShardId> {
        self.parent.map(ShardId)
    }

    pub fn adjacent_parent_shard_id(&self) -> Option<ShardId> {
        self.adjacent_parent.map(ShardId)
    }

    pub fn group_id(&self) -> GroupId {
        GroupId(self.group)
    }

    pub fn node_id(&self) -> NodeId {
        NodeId(self.node)
    }

    /// Expired shards are past retention: not listed, not routed.
    pub fn is_expired(&self) -> bool {
        self.expired_ms.is_some()
    }

    /// Whether `parent` is this shard's `ParentShardId` or `AdjacentParentShardId`.
    pub fn is_child_of(&self, parent: u32) -> bool {
        self.parent == Some(parent) || self.adjacent_parent == Some(parent)
    }

    fn route(&self) -> ShardRoute {
        ShardRoute {
            shard_id: self.shard_id(),
            uid: self.uid,
            hash_range: self.hash_range(),
            open: self.open,
            group: self.group_id(),
            node: self.node_id(),
            epoch: self.epoch,
            parent: self.parent_shard_id(),
            adjacent_parent: self.adjacent_parent_shard_id(),
            created_ms: self.created_ms,
            closed_ms: self.closed_ms,
        }
    }
}

/// One stream: everything DescribeStream, DescribeStreamSummary, ListShards and ListTagsForStream
/// need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stream {
    pub name: String,
    /// `arn:aws:kinesis:<region>:<account>:stream/<name>`.
    pub arn: String,
    /// The storage engine's identity of the stream; never reused, even after the name is.
    pub uid: u64,
    pub status: StreamStatus,
    /// `StreamCreationTimestamp`, from CreateStream's `now_ms`.
    pub created_ms: u64,
    /// When the status last changed.
    pub status_changed_ms: u64,
    pub retention_hours: u32,
    pub mode: StreamMode,
    pub encryption: EncryptionType,
    /// Sorted by key.
    pub tags: BTreeMap<String, String>,
    /// Sorted by index; `shards[i].index == i`. Closed and expired shards stay (see
    /// [`Shard::expired_ms`]).
    pub shards: Vec<Shard>,
    /// When each UpdateShardCount of the last 24 hours was accepted, oldest first (AWS allows
    /// [`SCALINGS_PER_DAY_MAX`] per rolling 24 hours). Pruned by the next UpdateShardCount.
    #[serde(default)]
    pub scaling_ms: Vec<u64>,
    /// Enhanced fan-out consumers, keyed (and so listed) by name, any status. Empty while
    /// DELETING: DeleteStream refuses a stream with consumers unless told to remove them.
    #[serde(default)]
    pub consumers: BTreeMap<String, Consumer>,
    /// `MaxRecordSizeInKiB` (UpdateMaxRecordSize), within
    /// [`MAX_RECORD_SIZE_KIB_MIN`]`..=`[`MAX_RECORD_SIZE_KIB_MAX`].
    #[serde(default = "settings::max_record_size_kib_default")]
    pub max_record_size_kib: u32,
    /// `WarmThroughput.TargetMiBps` (UpdateStreamWarmThroughput, ON_DEMAND streams only).
    #[serde(default)]
    pub warm_throughput_mibps: Option<u32>,
    /// The enhanced shard-level metrics turned on, never `ALL` (it is expanded).
    #[serde(default)]
    pub shard_level_metrics: BTreeSet<ShardLevelMetric>,
    /// The `KeyId` of the last StartStreamEncryption (`None` once stopped).
    #[serde(default)]
    pub key_id: Option<String>,
    /// Every data key the stream has had, wrapped under the master key, oldest first: records
    /// sealed under an older key stay readable. The last is the current one while
    /// `encryption` is `KMS`.
    #[serde(default)]
    pub data_keys: Vec<DataKey>,
    /// The resource policy (PutResourcePolicy), as the client sent it.
    #[serde(default)]
    pub policy: Option<String>,
}

impl Stream {
    /// `MaxRecordSizeInKiB` in bytes.
    pub fn max_record_bytes(&self) -> usize {
        usize::try_from(self.max_record_size_kib)
            .unwrap_or(usize::MAX)
            .saturating_mul(1024)
    }

    /// The data key records are sealed with now, when encryption is on.
    pub fn current_data_key(&self) -> Option<&DataKey> {
        match self.encryption {
            EncryptionType::Kms => self.data_keys.last(),
            EncryptionType::None => None,
        }
    }

    pub fn open_shard_count(&self) -> u32 {
        // Shard counts are bounded by the account limit, a u32.
        u32::try_from(self.shards.iter().filter(|s| s.open).count()).unwrap_or(u32::MAX)
    }

    pub fn shard(&self, id: ShardId) -> Option<&Shard> {
        usize::try_from(id.0).ok().and_then(|i| self.shards.get(i))
    }

    /// Shards after `exclusive_start`, in id order, expired ones included (use
    /// [`Stream::live_shards_after`] to answer clients).
    pub fn shards_after(&self, exclusive_start: Option<ShardId>) -> &[Shard] {
        let from = match exclusive_start {
            None => 0,
            Some(id) => usize::try_from(id.0)
                .map(|i| i.saturating_add(1))
                .unwrap_or(usize::MAX),
        };
        self.shards.get(from..).unwrap_or(&[])
    }

    /// What DescribeStream (`ExclusiveStartShardId`) and ListShards (`AFTER_SHARD_ID`) list: the
    /// shards after `exclusive_start` in id order, without expired ones (AWS omits shards past
    /// retention).
    pub fn live_shards_after(
        &self,
        exclusive_start: Option<ShardId>,
    ) -> impl Iterator<Item = &Shard> + '_ {
        self.shards_after(exclusive_start)
            .iter()
            .filter(|s| !s.is_expired())
    }

    /// The children of shard `parent` (GetRecords' and SubscribeToShard's `ChildShards` at
    /// shard end): every shard naming it as `ParentShardId` or `AdjacentParentShardId`, in id
    /// order. Empty for an open shard.
    pub fn child_shards(&self, parent: ShardId) -> impl Iterator<Item = &Shard> + '_ {
        self.shards.iter().filter(move |s| s.is_child_of(parent.0))
    }

    /// Retention in milliseconds.
    pub fn retention_ms(&self) -> u64 {
        u64::from(self.retention_hours).saturating_mul(3_600_000)
    }

    /// This stream's entry in the shard map.
    pub fn route(&self) -> StreamRoute {
        self.route_reusing(None)
    }

    /// This stream's entry in the shard map; policies whose text `prev` (the entry in the
    /// current map) already carries are shared rather than parsed again.
    pub fn route_reusing(&self, prev: Option<&StreamRoute>) -> StreamRoute {
        let mut route = self.shard_route();
        route.policies = self.policies(prev.map(|p| &p.policies));
        route
    }

    /// The routing entry without policies (what the invariant checks validate).
    fn shard_route(&self) -> StreamRoute {
        StreamRoute {
            name: self.name.clone(),
            uid: self.uid,
            state: self.status.route_state(),
            shards: self
                .shards
                .iter()
                .filter(|s| !s.is_expired())
                .map(Shard::route)
                .collect(),
            policies: Policies::default(),
            facts: self.facts(),
        }
    }

    /// What the map carries besides routing (see [`levee_map::StreamFacts`]).
    fn facts(&self) -> levee_map::StreamFacts {
        levee_map::StreamFacts {
            created_ms: self.created_ms,
            retention_hours: self.retention_hours,
            on_demand: self.mode == StreamMode::OnDemand,
            max_record_kib: self.max_record_size_kib,
            key_id: (self.encryption == EncryptionType::Kms)
                .then(|| self.key_id.clone().unwrap_or_default()),
            shard_level_metrics: self
                .shard_level_metrics
                .iter()
                .map(|m| m.as_str().to_owned())
                .collect(),
            warm_throughput_mibps: self.warm_throughput_mibps,
            data_keys: self
                .data_keys
                .iter()
                .map(|k| levee_map::WrappedKey {
                    version: k.version,
                    wrapped_hex: k.wrapped_hex.clone(),
                    master_fingerprint: k.master_fingerprint.clone(),
                })
                .collect(),
            consumers: self
                .consumers
                .values()
                .map(|c| levee_map::ConsumerFact {
                    name: c.name.clone(),
                    arn: c.arn.clone(),
                    state: match c.status {
                        ConsumerStatus::Creating => levee_map::ConsumerState::Creating,
                        ConsumerStatus::Active => levee_map::ConsumerState::Active,
                        ConsumerStatus::Deleting => levee_map::ConsumerState::Deleting,
                    },
                    created_ms: c.created_ms,
                })
                .collect(),
        }
    }

    /// The parsed policies of the stream and its consumers. A stored text always parsed when it
    /// was put; one this build no longer accepts fails closed (denies everything).
    pub fn policies(&self, prev: Option<&Policies>) -> Policies {
        let parsed = |text: &str, prev: Option<&Arc<ResourcePolicy>>| {
            prev.filter(|p| p.text() == text)
                .cloned()
                .unwrap_or_else(|| Arc::new(ResourcePolicy::parse_or_deny_all(text)))
        };
        Policies {
            stream: self
                .policy
                .as_deref()
                .map(|t| parsed(t, prev.and_then(|p| p.stream.as_ref()))),
            // `consumers` is a BTreeMap by name, so these come sorted by name.
            consumers: self
                .consumers
                .values()
                .filter_map(|c| {
                    let text = c.policy.as_deref()?;
                    let before = prev
                        .and_then(|p| p.consumer(&c.name))
                        .filter(|p| p.arn == c.arn)
                        .map(|p| &p.policy);
                    Some(ConsumerPolicy {
                        name: c.name.clone(),
                        arn: c.arn.clone(),
                        policy: parsed(text, before),
                    })
                })
                .collect(),
        }
    }
}

/// The replicated state: what [`Catalog::snapshot`] saves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogState {
    next_stream_uid: u64,
    next_shard_uid: u64,
    map_version: u64,
    streams: BTreeMap<String, Stream>,
    /// Account-level settings (UpdateAccountSettings).
    #[serde(default)]
    account: AccountSettings,
    /// Registered storage nodes and front-ends, by id.
    #[serde(default)]
    nodes: BTreeMap<u64, NodeRecord>,
    /// The answers of the last [`ONCE_REMEMBERED_MAX`] [`Command::Once`] requests, oldest first.
    #[serde(default)]
    once: std::collections::VecDeque<(u64, Result<Outcome, CatalogError>)>,
}

impl CatalogState {
    fn new() -> CatalogState {
        CatalogState {
            next_stream_uid: 1,
            next_shard_uid: 1,
            map_version: 0,
            streams: BTreeMap::new(),
            account: AccountSettings::default(),
            nodes: BTreeMap::new(),
            once: std::collections::VecDeque::new(),
        }
    }

    pub fn account(&self) -> &AccountSettings {
        &self.account
    }

    pub fn streams(&self) -> &BTreeMap<String, Stream> {
        &self.streams
    }

    pub fn map_version(&self) -> u64 {
        self.map_version
    }
}

/// A change to the catalog. Serializable so it can be logged and replicated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// CreateStream. `shard_count: None` gives [`SHARD_COUNT_DEFAULT`] shards.
    CreateStream {
        name: String,
        shard_count: Option<u32>,
        mode: StreamMode,
        tags: BTreeMap<String, String>,
        now_ms: u64,
    },
    /// CREATING → ACTIVE; the server issues it after its configured delay.
    ActivateStream {
        name: String,
        now_ms: u64,
    },
    /// DeleteStream: → DELETING. A stream with consumers (any status) is refused unless
    /// `enforce_consumer_deletion`, which removes them.
    DeleteStream {
        name: String,
        enforce_consumer_deletion: bool,
        now_ms: u64,
    },
    /// DELETING → gone; the server issues it once storage has dropped the stream.
    FinishDeleteStream {
        name: String,
    },
    IncreaseRetention {
        name: String,
        hours: i64,
    },
    DecreaseRetention {
        name: String,
        hours: i64,
    },
    AddTags {
        name: String,
        tags: BTreeMap<String, String>,
    },
    RemoveTags {
        name: String,
        keys: Vec<String>,
    },
    /// TagResource; stream ARNs only for now.
    TagResource {
        arn: String,
        tags: BTreeMap<String, String>,
    },
    /// UntagResource; stream ARNs only for now.
    UntagResource {
        arn: String,
        keys: Vec<String>,
    },
    /// SplitShard: closes `shard_to_split` and creates two children covering
    /// `[start, new_starting_hash_key - 1]` and `[new_starting_hash_key, end]`; the stream goes
    /// UPDATING. `shard_to_split` is the id as the client sent it (`shardId-000000000001`, `1`,
    /// `anything-1`); `new_starting_hash_key` is the decimal string.
    SplitShard {
        name: String,
        shard_to_split: String,
        new_starting_hash_key: String,
        now_ms: u64,
    },
    /// MergeShards: closes both shards and creates one child covering both; the stream goes
    /// UPDATING. `shard_to_merge` must be the lower of the two ranges (as AWS requires).
    MergeShards {
        name: String,
        shard_to_merge: String,
        adjacent_shard_to_merge: String,
        now_ms: u64,
    },
    /// UpdateShardCount with `UNIFORM_SCALING`: the open shards become `target_shard_count`
    /// shards splitting the hash key space evenly; the stream goes UPDATING. See `reshard.rs`
    /// for how the lineage is built.
    UpdateShardCount {
        name: String,
        target_shard_count: u32,
        now_ms: u64,
    },
    /// UPDATING → ACTIVE; the server issues it after its configured delay.
    FinishUpdate {
        name: String,
        now_ms: u64,
    },
    /// Marks the stream's closed shards whose `closed_ms + retention < now_ms` as expired: all
    /// their records are past retention. The server issues it periodically.
    ExpireShards {
        name: String,
        now_ms: u64,
    },
    /// RegisterStreamConsumer: a new consumer, CREATING, with ARN
    /// `<stream_arn>/consumer/<consumer_name>:<now_ms / 1000>`.
    RegisterConsumer {
        stream_arn: String,
        consumer_name: String,
        now_ms: u64,
    },
    /// CREATING → ACTIVE; the server issues it after its configured delay.
    ActivateConsumer {
        consumer_arn: String,
        now_ms: u64,
    },
    /// DeregisterStreamConsumer: ACTIVE → DELETING. The consumer is named by `consumer_arn`, or
    /// by `stream_arn` and `consumer_name` (see [`Catalog::describe_consumer`]).
    DeregisterConsumer {
        stream_arn: Option<String>,
        consumer_name: Option<String>,
        consumer_arn: Option<String>,
        now_ms: u64,
    },
    /// DELETING → gone; the server issues it once the consumer's subscriptions have ended.
    FinishDeregisterConsumer {
        consumer_arn: String,
    },
    /// UpdateStreamMode: the stream goes UPDATING with the new mode (FinishUpdate ends it).
    UpdateStreamMode {
        name: String,
        mode: StreamMode,
        warm_throughput_mibps: Option<u32>,
        now_ms: u64,
    },
    /// UpdateStreamWarmThroughput (ON_DEMAND streams): the stream goes UPDATING.
    UpdateWarmThroughput {
        name: String,
        mibps: u32,
        now_ms: u64,
    },
    /// UpdateMaxRecordSize; takes effect at once.
    UpdateMaxRecordSize {
        name: String,
        kib: u32,
    },
    /// EnableEnhancedMonitoring (`enable`) or DisableEnhancedMonitoring. `metrics` as the client
    /// sent them (`ALL` included).
    SetEnhancedMonitoring {
        name: String,
        metrics: Vec<ShardLevelMetric>,
        enable: bool,
    },
    /// StartStreamEncryption: the stream goes UPDATING, encryption `KMS` under `key_id`, and
    /// `data_key` becomes the current data key. The control plane made `data_key` (randomness
    /// stays out of the catalog) and wrapped it under the master key.
    StartEncryption {
        name: String,
        key_id: String,
        data_key: DataKey,
        now_ms: u64,
    },
    /// StopStreamEncryption: the stream goes UPDATING, encryption `NONE`; old data keys stay.
    StopEncryption {
        name: String,
        key_id: String,
        now_ms: u64,
    },
    /// PutResourcePolicy on a stream or consumer ARN; `policy` must parse (see `policy.rs`).
    PutResourcePolicy {
        arn: String,
        policy: String,
    },
    /// DeleteResourcePolicy on a stream or consumer ARN.
    DeleteResourcePolicy {
        arn: String,
    },
    /// UpdateAccountSettings: the minimum throughput billing commitment on or off.
    UpdateAccountSettings {
        commitment_enabled: bool,
        now_ms: u64,
    },
    /// A storage node, front-end or control node joins (or renews its lease, or moves to a
    /// new address); refused past its cell's cap.
    RegisterNode {
        id: u64,
        role: NodeRole,
        address: String,
        cell: String,
        now_ms: u64,
        /// Its admin listener (empty in commands logged before nodes gave one).
        #[serde(default)]
        admin: String,
    },
    /// A node leaves; a storage node only once it holds no shard.
    DeregisterNode {
        id: u64,
    },
    /// `command`, run at most once for the request `id`: a request retried after an ambiguous
    /// failure (its answer was lost when a voter died) gets the first run's answer again and
    /// changes nothing. The catalog remembers the last [`ONCE_REMEMBERED_MAX`] ids (in its
    /// snapshots too, so every voter answers a retry alike).
    Once {
        id: u64,
        command: Box<Command>,
    },
}

impl Command {
    /// The name of the one stream this command may change.
    fn target(&self) -> Option<&str> {
        match self {
            Command::CreateStream { name, .. }
            | Command::ActivateStream { name, .. }
            | Command::DeleteStream { name, .. }
            | Command::FinishDeleteStream { name }
            | Command::IncreaseRetention { name, .. }
            | Command::DecreaseRetention { name, .. }
            | Command::AddTags { name, .. }
            | Command::RemoveTags { name, .. }
            | Command::SplitShard { name, .. }
            | Command::MergeShards { name, .. }
            | Command::UpdateShardCount { name, .. }
            | Command::FinishUpdate { name, .. }
            | Command::ExpireShards { name, .. }
            | Command::UpdateStreamMode { name, .. }
            | Command::UpdateWarmThroughput { name, .. }
            | Command::UpdateMaxRecordSize { name, .. }
            | Command::SetEnhancedMonitoring { name, .. }
            | Command::StartEncryption { name, .. }
            | Command::StopEncryption { name, .. } => Some(name),
            Command::PutResourcePolicy { arn, .. } | Command::DeleteResourcePolicy { arn } => {
                parse_consumer_arn(arn)
                    .map(|a| a.stream.name)
                    .or_else(|| parse_stream_arn(arn).map(|a| a.name))
            }
            Command::UpdateAccountSettings { .. }
            | Command::RegisterNode { .. }
            | Command::DeregisterNode { .. } => None,
            Command::Once { command, .. } => command.target(),
            Command::TagResource { arn, .. }
            | Command::UntagResource { arn, .. }
            | Command::RegisterConsumer {
                stream_arn: arn, ..
            } => parse_stream_arn(arn).map(|a| a.name),
            Command::ActivateConsumer { consumer_arn, .. }
            | Command::FinishDeregisterConsumer { consumer_arn } => {
                parse_consumer_arn(consumer_arn).map(|a| a.stream.name)
            }
            Command::DeregisterConsumer {
                stream_arn,
                consumer_arn,
                ..
            } => match (consumer_arn, stream_arn) {
                (Some(arn), _) => parse_consumer_arn(arn).map(|a| a.stream.name),
                (None, Some(arn)) => parse_stream_arn(arn).map(|a| a.name),
                (None, None) => None,
            },
        }
    }
}

/// How many [`Command::Once`] answers the catalog remembers: far more than the control calls
/// in flight while a voter is replaced (calls are capped at 64 per voter).
pub const ONCE_REMEMBERED_MAX: usize = 1024;

/// What an accepted command did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The stream exists, CREATING, with shards `first_shard_uid..first_shard_uid + shard_count`.
    StreamCreated {
        uid: u64,
        first_shard_uid: u64,
        shard_count: u32,
    },
    StreamActivated,
    NodeRegistered,
    NodeDeregistered,
    StreamDeleting,
    /// The stream is gone; storage may drop these.
    StreamRemoved {
        uid: u64,
        shard_uids: Vec<u64>,
    },
    RetentionChanged {
        hours: u32,
    },
    TagsChanged,
    /// SplitShard, MergeShards or UpdateShardCount was applied; the stream is UPDATING. Storage
    /// creates every `created` shard (in order), then closes every `closed` one. A short-lived
    /// shard of UpdateShardCount appears in both. `open_before` and `open_after` are the
    /// stream's open shard counts (UpdateShardCount's `CurrentShardCount` and
    /// `TargetShardCount`).
    Resharded {
        stream_uid: u64,
        open_before: u32,
        open_after: u32,
        closed: Vec<u64>,
        created: Vec<NewShard>,
    },
    /// UPDATING → ACTIVE.
    UpdateFinished,
    /// These shards are past retention; storage may drop them.
    ShardsExpired {
        stream_uid: u64,
        shard_uids: Vec<u64>,
    },
    /// A consumer was registered, CREATING.
    ConsumerRegistered {
        consumer_arn: String,
    },
    /// A consumer went CREATING → ACTIVE.
    ConsumerActivated,
    /// A consumer went ACTIVE → DELETING; its subscriptions should end.
    ConsumerDeregistering {
        consumer_arn: String,
    },
    /// A DELETING consumer is gone.
    ConsumerRemoved {
        consumer_arn: String,
    },
    /// UpdateStreamMode, UpdateStreamWarmThroughput, StartStreamEncryption or
    /// StopStreamEncryption was applied; the stream is UPDATING until FinishUpdate.
    StreamUpdating,
    /// EnableEnhancedMonitoring / DisableEnhancedMonitoring: the metrics before and after.
    MonitoringChanged {
        current: Vec<ShardLevelMetric>,
        desired: Vec<ShardLevelMetric>,
    },
    /// A setting changed with nothing more to do (max record size, policy, account settings).
    SettingChanged,
    /// Accepted, nothing to do (e.g. activating an ACTIVE stream, deleting a DELETING one).
    Unchanged,
}

/// A shard a reshard created: what storage's `CreateShard` needs besides the stream uid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewShard {
    pub uid: u64,
    pub index: u32,
    pub created_ms: u64,
}

/// The stream named `name`, for a command that changes it; the AWS not-found error otherwise.
pub(crate) fn stream_mut<'a>(
    streams: &'a mut BTreeMap<String, Stream>,
    name: &str,
    account: &str,
) -> Result<&'a mut Stream, CatalogError> {
    streams
        .get_mut(name)
        .ok_or_else(|| CatalogError::not_found(name, account))
}

pub use levee_map::arn::{parse_stream_arn, StreamArn};

/// The catalog: state plus the published shard maps (the current one and the one before it).
#[derive(Debug, Clone)]
pub struct Catalog {
    config: CatalogConfig,
    state: CatalogState,
    map: ShardMap,
    prev_map: Option<ShardMap>,
}

impl Catalog {
    /// An empty catalog; map version 0.
    pub fn new(config: CatalogConfig) -> Catalog {
        Catalog {
            config,
            state: CatalogState::new(),
            map: ShardMap::empty(),
            prev_map: None,
        }
    }

    pub fn config(&self) -> &CatalogConfig {
        &self.config
    }

    pub fn state(&self) -> &CatalogState {
        &self.state
    }

    /// Applies one command. On `Err` the state is exactly as before (but for a
    /// [`Command::Once`], which remembers its answer either way).
    pub fn apply(&mut self, cmd: &Command) -> Result<Outcome, CatalogError> {
        if let Command::Once { id, command } = cmd {
            if let Some((_, answer)) = self.state.once.iter().find(|(seen, _)| seen == id) {
                return answer.clone();
            }
            let answer = match **command {
                Command::Once { .. } => Err(CatalogError::InvalidArgument(
                    "a request id wraps another request id".into(),
                )),
                ref inner => self.apply(inner),
            };
            self.state.once.push_back((*id, answer.clone()));
            while self.state.once.len() > ONCE_REMEMBERED_MAX {
                self.state.once.pop_front();
            }
            return answer;
        }
        let target = cmd.target().map(str::to_string);
        let saved_stream = target
            .as_deref()
            .and_then(|n| self.state.streams.get(n).cloned());
        let saved_counters = (
            self.state.next_stream_uid,
            self.state.next_shard_uid,
            self.state.map_version,
        );
        let saved_account = self.state.account.clone();
        let saved_nodes = matches!(
            cmd,
            Command::RegisterNode { .. } | Command::DeregisterNode { .. }
        )
        .then(|| self.state.nodes.clone());
        let result = self.execute(cmd).and_then(|(outcome, routing)| {
            // Policies and facts route no data but travel in the map: a changed policy or
            // setting (retention, consumers, encryption, ...) publishes the next map like a
            // routing change.
            let routing = routing || self.entry_changed(target.as_deref());
            self.commit(routing).map(|()| outcome)
        });
        if result.is_err() {
            if let Some(name) = target {
                match saved_stream {
                    Some(s) => {
                        self.state.streams.insert(name, s);
                    }
                    None => {
                        self.state.streams.remove(&name);
                    }
                }
            }
            (
                self.state.next_stream_uid,
                self.state.next_shard_uid,
                self.state.map_version,
            ) = saved_counters;
            self.state.account = saved_account;
            if let Some(nodes) = saved_nodes {
                self.state.nodes = nodes;
            }
        }
        result
    }

    /// Whether stream `name`'s map entry (routing, policies, facts) differs from the one the
    /// current map carries.
    fn entry_changed(&self, name: Option<&str>) -> bool {
        let Some(name) = name else { return false };
        let published = self.map.stream(name);
        match (published, self.state.streams.get(name)) {
            (Some(a), Some(s)) => **a != s.route_reusing(Some(a)),
            (None, Some(_)) => true,
            // A removed stream's entry goes with its own routing change.
            (_, None) => false,
        }
    }

    /// Checks the invariants and, when routing changed, publishes the next map.
    fn commit(&mut self, routing_changed: bool) -> Result<(), CatalogError> {
        self.check_invariants()
            .map_err(|reason| CatalogError::InternalFailure { reason })?;
        if routing_changed {
            let version = self.state.map_version.checked_add(1).ok_or_else(|| {
                CatalogError::InternalFailure {
                    reason: "map version overflow".to_string(),
                }
            })?;
            let next = self.build_map(version)?;
            self.state.map_version = version;
            self.prev_map = Some(std::mem::replace(&mut self.map, next));
        }
        Ok(())
    }

    fn build_map(&self, version: u64) -> Result<ShardMap, CatalogError> {
        ShardMap::build_with_nodes(
            version,
            self.state
                .streams
                .values()
                .map(|s| s.route_reusing(self.map.stream(&s.name).map(|r| &**r)))
                .collect(),
            self.node_table(),
        )
        .map_err(|e| CatalogError::InternalFailure {
            reason: format!("shard map {version}: {e}"),
        })
    }

    /// Runs a command against the state. Returns the outcome and whether routing changed.
    fn execute(&mut self, cmd: &Command) -> Result<(Outcome, bool), CatalogError> {
        match cmd {
            // `apply` answers these itself; nothing else calls `execute`.
            Command::Once { command, .. } => self.execute(command),
            Command::CreateStream {
                name,
                shard_count,
                mode,
                tags,
                now_ms,
            } => self.create_stream(name, *shard_count, *mode, tags, *now_ms),
            Command::ActivateStream { name, now_ms } => {
                let account = &self.config.account_id;
                let s = stream_mut(&mut self.state.streams, name, account)?;
                match s.status {
                    StreamStatus::Creating => {
                        s.status = StreamStatus::Active;
                        s.status_changed_ms = *now_ms;
                        Ok((Outcome::StreamActivated, true))
                    }
                    StreamStatus::Active => Ok((Outcome::Unchanged, false)),
                    other => Err(CatalogError::ResourceInUse(format!(
                        "Stream {name} under account {account} not CREATING, instead in state {}",
                        other.as_str()
                    ))),
                }
            }
            Command::DeleteStream {
                name,
                enforce_consumer_deletion,
                now_ms,
            } => {
                let account = &self.config.account_id;
                let s = stream_mut(&mut self.state.streams, name, account)?;
                // AWS accepts DeleteStream in any state but DELETING, CREATING included
                // (recorded in kinesalite's test/deleteStream.js).
                match s.status {
                    StreamStatus::Active | StreamStatus::Updating | StreamStatus::Creating => {
                        if !s.consumers.is_empty() && !enforce_consumer_deletion {
                            return Err(consumers::consumers_exist(name, account));
                        }
                        s.consumers.clear();
                        if s.status == StreamStatus::Creating {
                            // Its shards never came to exist for clients: AWS lists none.
                            s.shards.clear();
                        }
                        s.status = StreamStatus::Deleting;
                        s.status_changed_ms = *now_ms;
                        Ok((Outcome::StreamDeleting, true))
                    }
                    StreamStatus::Deleting => Ok((Outcome::Unchanged, false)),
                }
            }
            Command::FinishDeleteStream { name } => {
                let account = &self.config.account_id;
                let s = self
                    .state
                    .streams
                    .get(name)
                    .ok_or_else(|| CatalogError::not_found(name, account))?;
                if s.status != StreamStatus::Deleting {
                    return Err(CatalogError::ResourceInUse(format!(
                        "Stream {name} under account {account} not DELETING, instead in state {}",
                        s.status.as_str()
                    )));
                }
                let removed = self.state.streams.remove(name);
                let (uid, shard_uids) = removed
                    .map(|s| (s.uid, s.shards.iter().map(|sh| sh.uid).collect()))
                    .unwrap_or_default();
                Ok((Outcome::StreamRemoved { uid, shard_uids }, true))
            }
            Command::IncreaseRetention { name, hours } => self.retention(name, *hours, true),
            Command::DecreaseRetention { name, hours } => self.retention(name, *hours, false),
            Command::AddTags { name, tags } => self.add_tags(name, tags),
            Command::RemoveTags { name, keys } => self.remove_tags(name, keys),
            Command::TagResource { arn, tags } => {
                let name = self.stream_by_arn_field(arn, "resourceARN")?.name.clone();
                self.add_tags(&name, tags)
            }
            Command::UntagResource { arn, keys } => {
                let name = self.stream_by_arn_field(arn, "resourceARN")?.name.clone();
                self.remove_tags(&name, keys)
            }
            Command::SplitShard {
                name,
                shard_to_split,
                new_starting_hash_key,
                now_ms,
            } => self.split_shard(name, shard_to_split, new_starting_hash_key, *now_ms),
            Command::MergeShards {
                name,
                shard_to_merge,
                adjacent_shard_to_merge,
                now_ms,
            } => self.merge_shards(name, shard_to_merge, adjacent_shard_to_merge, *now_ms),
            Command::UpdateShardCount {
                name,
                target_shard_count,
                now_ms,
            } => self.update_shard_count(name, *target_shard_count, *now_ms),
            Command::FinishUpdate { name, now_ms } => self.finish_update(name, *now_ms),
            Command::ExpireShards { name, now_ms } => self.expire_shards(name, *now_ms),
            Command::RegisterConsumer {
                stream_arn,
                consumer_name,
                now_ms,
            } => self.register_consumer(stream_arn, consumer_name, *now_ms),
            Command::ActivateConsumer {
                consumer_arn,
                now_ms,
            } => self.activate_consumer(consumer_arn, *now_ms),
            Command::DeregisterConsumer {
                stream_arn,
                consumer_name,
                consumer_arn,
                now_ms,
            } => self.deregister_consumer(
                stream_arn.as_deref(),
                consumer_name.as_deref(),
                consumer_arn.as_deref(),
                *now_ms,
            ),
            Command::FinishDeregisterConsumer { consumer_arn } => {
                self.finish_deregister_consumer(consumer_arn)
            }
            Command::UpdateStreamMode {
                name,
                mode,
                warm_throughput_mibps,
                now_ms,
            } => self.update_stream_mode(name, *mode, *warm_throughput_mibps, *now_ms),
            Command::UpdateWarmThroughput {
                name,
                mibps,
                now_ms,
            } => self.update_warm_throughput(name, *mibps, *now_ms),
            Command::UpdateMaxRecordSize { name, kib } => self.update_max_record_size(name, *kib),
            Command::SetEnhancedMonitoring {
                name,
                metrics,
                enable,
            } => self.set_enhanced_monitoring(name, metrics, *enable),
            Command::StartEncryption {
                name,
                key_id,
                data_key,
                now_ms,
            } => self.start_encryption(name, key_id, data_key, *now_ms),
            Command::StopEncryption {
                name,
                key_id,
                now_ms,
            } => self.stop_encryption(name, key_id, *now_ms),
            Command::PutResourcePolicy { arn, policy } => {
                self.set_policy(arn, Some(policy.as_str()))
            }
            Command::DeleteResourcePolicy { arn } => self.set_policy(arn, None),
            Command::UpdateAccountSettings {
                commitment_enabled,
                now_ms,
            } => self.update_account_settings(*commitment_enabled, *now_ms),
            Command::RegisterNode {
                id,
                role,
                address,
                cell,
                now_ms,
                admin,
            } => self.register_node(*id, *role, address, admin, cell, *now_ms),
            Command::DeregisterNode { id } => self.deregister_node(*id),
        }
    }

    fn create_stream(
        &mut self,
        name: &str,
        shard_count: Option<u32>,
        mode: StreamMode,
        tags: &BTreeMap<String, String>,
        now_ms: u64,
    ) -> Result<(Outcome, bool), CatalogError> {
        let account = self.config.account_id.clone();
        let mut errors = Vec::new();
        if let Some(0) = shard_count {
            errors.push(
                "Value '0' at 'shardCount' failed to satisfy constraint: \
                 Member must have value greater than or equal to 1"
                    .to_string(),
            );
        }
        errors.extend(name_errors(name, "streamName", STREAM_NAME_CHARS_MAX));
        if let Some(e) = error::validation(&errors) {
            return Err(e);
        }
        tags::check_lengths(tags, "tags")?;
        if self.state.streams.contains_key(name) {
            return Err(CatalogError::already_exists(name, &account));
        }
        tags::check_chars(
            tags.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]),
            TagOp::Add,
            name,
            &account,
        )?;
        tags::check_count(None, tags, name, &account)?;

        let creating = self
            .state
            .streams
            .values()
            .filter(|s| s.status == StreamStatus::Creating)
            .count();
        let creating_max = self.config.streams_creating_max;
        if u64::try_from(creating).unwrap_or(u64::MAX) >= u64::from(creating_max) {
            // Levee's own text: AWS documents the limit but no recorded message was found.
            return Err(CatalogError::LimitExceeded(format!(
                "This request would exceed the limit of {creating_max} streams in the CREATING \
                 state for the account {account} in {}.",
                self.config.region
            )));
        }
        if mode == StreamMode::OnDemand {
            self.on_demand_limit_check()?;
        }
        let count = shard_count.unwrap_or(SHARD_COUNT_DEFAULT);
        let current = self.account_open_shard_count();
        let limit = self.config.shard_limit;
        if current.saturating_add(u64::from(count)) > u64::from(limit) {
            return Err(CatalogError::shard_limit(
                &account,
                &self.config.region,
                current,
                limit,
                u64::from(count),
            ));
        }

        let overflow = |what: &str| CatalogError::InternalFailure {
            reason: format!("{what} counter overflow"),
        };
        let uid = self.state.next_stream_uid;
        let next_stream_uid = uid.checked_add(1).ok_or_else(|| overflow("stream uid"))?;
        let first_shard_uid = self.state.next_shard_uid;
        let next_shard_uid = first_shard_uid
            .checked_add(u64::from(count))
            .ok_or_else(|| overflow("shard uid"))?;
        let mut placer = self.placer(&self.config.cell);
        let shards = levee_map::even_split(count)
            .into_iter()
            .zip(0u32..)
            .map(|(range, index)| {
                let (group, node) = placer.next();
                Shard {
                    index,
                    uid: first_shard_uid + u64::from(index),
                    hash_start: range.start,
                    hash_end: range.end,
                    parent: None,
                    adjacent_parent: None,
                    created_ms: now_ms,
                    open: true,
                    epoch: SHARD_EPOCH_INITIAL,
                    group,
                    node,
                    closed_ms: None,
                    expired_ms: None,
                }
            })
            .collect();
        let stream = Stream {
            name: name.to_string(),
            arn: self.stream_arn(name),
            uid,
            status: StreamStatus::Creating,
            created_ms: now_ms,
            status_changed_ms: now_ms,
            retention_hours: RETENTION_HOURS_DEFAULT,
            mode,
            encryption: EncryptionType::None,
            tags: tags.clone(),
            shards,
            scaling_ms: Vec::new(),
            consumers: BTreeMap::new(),
            max_record_size_kib: MAX_RECORD_SIZE_KIB_DEFAULT,
            warm_throughput_mibps: None,
            shard_level_metrics: BTreeSet::new(),
            key_id: None,
            data_keys: Vec::new(),
            policy: None,
        };
        self.state.next_stream_uid = next_stream_uid;
        self.state.next_shard_uid = next_shard_uid;
        self.state.streams.insert(name.to_string(), stream);
        Ok((
            Outcome::StreamCreated {
                uid,
                first_shard_uid,
                shard_count: count,
            },
            true,
        ))
    }

    fn retention(
        &mut self,
        name: &str,
        hours: i64,
        increase: bool,
    ) -> Result<(Outcome, bool), CatalogError> {
        let account = &self.config.account_id;
        let s = stream_mut(&mut self.state.streams, name, account)?;
        if s.status != StreamStatus::Active {
            return Err(CatalogError::not_active(name, account, s.status.as_str()));
        }
        if hours < RETENTION_HOURS_MIN {
            return Err(CatalogError::InvalidArgument(format!(
                "Minimum allowed retention period is {RETENTION_HOURS_MIN} hours. Requested \
                 retention period ({hours} hours) is too short."
            )));
        }
        if hours > RETENTION_HOURS_MAX {
            // Mirrors the minimum's text; the maximum's text was not found in a recording.
            return Err(CatalogError::InvalidArgument(format!(
                "Maximum allowed retention period is {RETENTION_HOURS_MAX} hours. Requested \
                 retention period ({hours} hours) is too long."
            )));
        }
        let current = i64::from(s.retention_hours);
        if increase && hours < current {
            return Err(CatalogError::InvalidArgument(format!(
                "Requested retention period ({hours} hours) for stream {name} can not be shorter \
                 than existing retention period ({current} hours). Use DecreaseRetentionPeriod API."
            )));
        }
        if !increase && hours > current {
            return Err(CatalogError::InvalidArgument(format!(
                "Requested retention period ({hours} hours) for stream {name} can not be longer \
                 than existing retention period ({current} hours). Use IncreaseRetentionPeriod API."
            )));
        }
        let hours = u32::try_from(hours).map_err(|_| CatalogError::InternalFailure {
            reason: format!("retention {hours} out of range"),
        })?;
        s.retention_hours = hours;
        Ok((Outcome::RetentionChanged { hours }, false))
    }

    fn add_tags(
        &mut self,
        name: &str,
        new: &BTreeMap<String, String>,
    ) -> Result<(Outcome, bool), CatalogError> {
        let account = &self.config.account_id;
        let s = stream_mut(&mut self.state.streams, name, account)?;
        tags::check_lengths(new, "tags")?;
        tags::check_chars(
            new.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]),
            TagOp::Add,
            name,
            account,
        )?;
        tags::check_count(Some(&s.tags), new, name, account)?;
        for (k, v) in new {
            s.tags.insert(k.clone(), v.clone());
        }
        Ok((Outcome::TagsChanged, false))
    }

    fn remove_tags(
        &mut self,
        name: &str,
        keys: &[String],
    ) -> Result<(Outcome, bool), CatalogError> {
        let account = &self.config.account_id;
        let s = stream_mut(&mut self.state.streams, name, account)?;
        tags::check_key_lengths(keys, "tagKeys")?;
        tags::check_chars(
            keys.iter().map(String::as_str),
            TagOp::Remove,
            name,
            account,
        )?;
        for k in keys {
            s.tags.remove(k);
        }
        Ok((Outcome::TagsChanged, false))
    }

    // ---- queries ----

    /// `arn:aws:kinesis:<region>:<account>:stream/<name>`.
    pub fn stream_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:kinesis:{}:{}:stream/{name}",
            self.config.region, self.config.account_id
        )
    }

    /// A stream by name (any status).
    pub fn stream(&self, name: &str) -> Result<&Stream, CatalogError> {
        self.state
            .streams
            .get(name)
            .ok_or_else(|| CatalogError::not_found(name, &self.config.account_id))
    }

    /// A stream by ARN (a request's `StreamARN`). A malformed ARN is a ValidationException; one
    /// for another account or region is not found.
    pub fn stream_by_arn(&self, arn: &str) -> Result<&Stream, CatalogError> {
        self.stream_by_arn_field(arn, "streamARN")
    }

    fn stream_by_arn_field(&self, arn: &str, field: &str) -> Result<&Stream, CatalogError> {
        let Some(parsed) = parse_stream_arn(arn) else {
            if arn.contains("/consumer/") {
                return Err(CatalogError::InvalidArgument(format!(
                    "Resource {arn} is a consumer; only stream ARNs are supported."
                )));
            }
            return Err(CatalogError::Validation(format!(
                "1 validation error detected: Value '{arn}' at '{field}' failed to satisfy \
                 constraint: Member must satisfy regular expression pattern: \
                 arn:aws.*:kinesis:.*:\\d{{12}}:stream/\\S+"
            )));
        };
        let here = parsed.partition == "aws"
            && parsed.region == self.config.region
            && parsed.account == self.config.account_id;
        match self.state.streams.get(parsed.name) {
            Some(s) if here => Ok(s),
            _ => Err(CatalogError::not_found(parsed.name, parsed.account)),
        }
    }

    /// All stream names, sorted.
    pub fn stream_names(&self) -> impl Iterator<Item = &str> {
        self.state.streams.keys().map(String::as_str)
    }

    /// Stream names after `exclusive_start` (ListStreams' `ExclusiveStartStreamName`), sorted.
    pub fn stream_names_after<'a>(
        &'a self,
        exclusive_start: Option<&'a str>,
    ) -> impl Iterator<Item = &'a str> + 'a {
        let lower = match exclusive_start {
            Some(s) => Bound::Excluded(s),
            None => Bound::Unbounded,
        };
        self.state
            .streams
            .range::<str, _>((lower, Bound::Unbounded))
            .map(|(k, _)| k.as_str())
    }

    /// A stream's tags, sorted by key.
    pub fn tags(&self, name: &str) -> Result<&BTreeMap<String, String>, CatalogError> {
        self.stream(name).map(|s| &s.tags)
    }

    /// Open shards across all streams (what the account shard limit counts).
    pub fn account_open_shard_count(&self) -> u64 {
        self.state
            .streams
            .values()
            .map(|s| u64::from(s.open_shard_count()))
            .sum()
    }

    /// Streams currently in CREATING.
    pub fn streams_creating(&self) -> usize {
        self.state
            .streams
            .values()
            .filter(|s| s.status == StreamStatus::Creating)
            .count()
    }

    /// The current map (cheap: streams are shared).
    pub fn shard_map(&self) -> ShardMap {
        self.map.clone()
    }

    pub fn map_version(&self) -> u64 {
        self.state.map_version
    }

    /// The change from `version` to the current map, when `version` is the one just before it.
    /// `None` for anything else (older, current, unknown, or just after a restore): the caller
    /// serves a full snapshot instead.
    pub fn map_delta_since(&self, version: u64) -> Option<MapDelta> {
        let prev = self.prev_map.as_ref()?;
        (prev.version() == version && version < self.map.version()).then(|| prev.diff(&self.map))
    }

    /// Checks every invariant of the state; `Err` says which one broke.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut stream_uids = BTreeSet::new();
        let mut shard_uids = BTreeSet::new();
        let mut consumer_arns = BTreeSet::new();
        for (key, s) in &self.state.streams {
            let n = &s.name;
            if key != n {
                return Err(format!("stream {n} is filed under {key}"));
            }
            if s.arn != self.stream_arn(n) {
                return Err(format!("stream {n} has ARN {}", s.arn));
            }
            if s.uid == 0 || s.uid >= self.state.next_stream_uid || !stream_uids.insert(s.uid) {
                return Err(format!("stream {n} has a bad or duplicate uid {}", s.uid));
            }
            let hours = i64::from(s.retention_hours);
            if !(RETENTION_HOURS_MIN..=RETENTION_HOURS_MAX).contains(&hours) {
                return Err(format!("stream {n} has retention {hours} h"));
            }
            if s.tags.len() > TAGS_PER_STREAM_MAX {
                return Err(format!("stream {n} has {} tags", s.tags.len()));
            }
            for (i, sh) in s.shards.iter().enumerate() {
                if usize::try_from(sh.index).ok() != Some(i) {
                    return Err(format!("stream {n}: shard at {i} has index {}", sh.index));
                }
                if sh.uid == 0 || sh.uid >= self.state.next_shard_uid || !shard_uids.insert(sh.uid)
                {
                    return Err(format!("stream {n}: shard {i} has a bad or duplicate uid"));
                }
                let placed_ok = (sh.node == self.config.node.0 && sh.group == self.config.group.0)
                    || self
                        .state
                        .nodes
                        .get(&sh.node)
                        .is_some_and(|n| n.role == NodeRole::Storage && sh.group == sh.node)
                    || sh.is_expired();
                if !placed_ok {
                    return Err(format!(
                        "stream {n}: shard {i} is placed on unknown node {} (group {})",
                        sh.node, sh.group
                    ));
                }
                let parent_ok = |p: Option<u32>| p.is_none_or(|p| p < sh.index);
                if !parent_ok(sh.parent) || !parent_ok(sh.adjacent_parent) {
                    return Err(format!(
                        "stream {n}: shard {i} has a parent that is not older"
                    ));
                }
            }
            reshard::check_shards(s)?;
            consumers::check_consumers(s, &mut consumer_arns)?;
            settings::check_settings(s)?;
            let must_cover = matches!(s.status, StreamStatus::Active | StreamStatus::Updating);
            if must_cover || !s.shards.is_empty() {
                s.shard_route().validate().map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    // ---- snapshot ----

    /// The state as checksummed bytes (see `snapshot.rs` for the layout).
    pub fn snapshot(&self) -> Result<Vec<u8>, SnapshotError> {
        snapshot::encode(&self.state)
    }

    /// A catalog from [`Catalog::snapshot`] bytes. Refuses damaged bytes, a state that breaks an
    /// invariant, and a state made under another account or region. The previous map is not in
    /// the snapshot, so [`Catalog::map_delta_since`] answers `None` until the next routing change.
    pub fn restore(config: CatalogConfig, bytes: &[u8]) -> Result<Catalog, SnapshotError> {
        let state = snapshot::decode(bytes)?;
        let mut catalog = Catalog::new(config);
        catalog.state = state;
        catalog.check_invariants().map_err(SnapshotError::Invalid)?;
        catalog.map = catalog
            .build_map(catalog.state.map_version)
            .map_err(|e| SnapshotError::Invalid(e.to_string()))?;
        Ok(catalog)
    }
}

/// The wire model's constraints on a stream or consumer name (`field` is `streamName` or
/// `consumerName`; both are `[a-zA-Z0-9_.-]+`, 1 to `max` characters), in AWS's words.
fn name_errors(name: &str, field: &str, max: usize) -> Vec<String> {
    let mut errors = Vec::new();
    let pattern_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if !pattern_ok {
        errors.push(format!(
            "Value '{name}' at '{field}' failed to satisfy constraint: Member must satisfy \
             regular expression pattern: [a-zA-Z0-9_.-]+"
        ));
    }
    let chars = name.chars().count();
    if chars < 1 {
        errors.push(format!(
            "Value '{name}' at '{field}' failed to satisfy constraint: Member must have \
             length greater than or equal to 1"
        ));
    }
    if chars > max {
        errors.push(format!(
            "Value '{name}' at '{field}' failed to satisfy constraint: Member must have \
             length less than or equal to {max}"
        ));
    }
    errors
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod reshard_tests;

#[cfg(test)]
mod consumer_tests;
#[cfg(test)]
mod node_tests;
#[cfg(test)]
mod once_tests;
