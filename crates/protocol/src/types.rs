//! Request and response structures of every operation, named as AWS names them on the wire.
//!
//! Rust fields are snake_case; serde renames them to the model's PascalCase member names
//! (`StreamARN`, `WarmThroughputMiBps`, `MaxRecordSizeInKiB` spelled out where PascalCase
//! conversion would get them wrong). Optional members are `Option` and are omitted when `None`:
//! AWS never sends explicit nulls. Every type derives `Serialize` and `Deserialize`, so tests can
//! build request bodies and read response bodies in either format.
//!
//! "StreamName or StreamARN" inputs carry both as `Option`; that at least one is present is the
//! caller's check. `StreamId` is accepted (validated) and otherwise ignored.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::wire::{Blob, Timestamp};

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $wire:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $wire)] $variant,)*
        }

        impl $name {
            /// Every value, in model order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The value as it appears on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire,)*
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum!(StreamMode { Provisioned = "PROVISIONED", OnDemand = "ON_DEMAND" });
wire_enum!(ShardIteratorType {
    AtSequenceNumber = "AT_SEQUENCE_NUMBER",
    AfterSequenceNumber = "AFTER_SEQUENCE_NUMBER",
    TrimHorizon = "TRIM_HORIZON",
    Latest = "LATEST",
    AtTimestamp = "AT_TIMESTAMP",
});
wire_enum!(ShardFilterType {
    AfterShardId = "AFTER_SHARD_ID",
    AtTrimHorizon = "AT_TRIM_HORIZON",
    FromTrimHorizon = "FROM_TRIM_HORIZON",
    AtLatest = "AT_LATEST",
    AtTimestamp = "AT_TIMESTAMP",
    FromTimestamp = "FROM_TIMESTAMP",
});
wire_enum!(EncryptionType { None = "NONE", Kms = "KMS" });
wire_enum!(MetricsName {
    IncomingBytes = "IncomingBytes",
    IncomingRecords = "IncomingRecords",
    OutgoingBytes = "OutgoingBytes",
    OutgoingRecords = "OutgoingRecords",
    WriteProvisionedThroughputExceeded = "WriteProvisionedThroughputExceeded",
    ReadProvisionedThroughputExceeded = "ReadProvisionedThroughputExceeded",
    IteratorAgeMilliseconds = "IteratorAgeMilliseconds",
    All = "ALL",
});
wire_enum!(ScalingType { UniformScaling = "UNIFORM_SCALING" });
wire_enum!(StreamStatus {
    Creating = "CREATING",
    Deleting = "DELETING",
    Active = "ACTIVE",
    Updating = "UPDATING",
});
wire_enum!(ConsumerStatus { Creating = "CREATING", Deleting = "DELETING", Active = "ACTIVE" });
wire_enum!(
    /// `MinimumThroughputBillingCommitmentInputStatus`.
    BillingCommitmentInputStatus { Enabled = "ENABLED", Disabled = "DISABLED" }
);
wire_enum!(
    /// `MinimumThroughputBillingCommitmentOutputStatus`.
    BillingCommitmentOutputStatus {
        Enabled = "ENABLED",
        Disabled = "DISABLED",
        EnabledUntilEarliestAllowedEnd = "ENABLED_UNTIL_EARLIEST_ALLOWED_END",
    }
);

/// Tags by key (`TagMap`).
pub type TagMap = BTreeMap<String, String>;

// ---------------------------------------------------------------------------------------------
// Shared structures

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamModeDetails {
    pub stream_mode: StreamMode,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ShardFilter {
    pub r#type: ShardFilterType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StartingPosition {
    pub r#type: ShardIteratorType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HashKeyRange {
    pub starting_hash_key: String,
    pub ending_hash_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SequenceNumberRange {
    pub starting_sequence_number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ending_sequence_number: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Shard {
    pub shard_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_shard_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adjacent_parent_shard_id: Option<String>,
    pub hash_key_range: HashKeyRange,
    pub sequence_number_range: SequenceNumberRange,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChildShard {
    pub shard_id: String,
    pub parent_shards: Vec<String>,
    pub hash_key_range: HashKeyRange,
}

/// One entry of `EnhancedMonitoring`; AWS sends `{"ShardLevelMetrics":[]}` when none are on.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EnhancedMetrics {
    #[serde(default)]
    pub shard_level_metrics: Vec<MetricsName>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WarmThroughput {
    #[serde(
        rename = "TargetMiBps",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub target_mibps: Option<i32>,
    #[serde(
        rename = "CurrentMiBps",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub current_mibps: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consumer {
    #[serde(rename = "ConsumerName")]
    pub consumer_name: String,
    #[serde(rename = "ConsumerARN")]
    pub consumer_arn: String,
    #[serde(rename = "ConsumerStatus")]
    pub consumer_status: ConsumerStatus,
    #[serde(rename = "ConsumerCreationTimestamp")]
    pub consumer_creation_timestamp: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerDescription {
    #[serde(rename = "ConsumerName")]
    pub consumer_name: String,
    #[serde(rename = "ConsumerARN")]
    pub consumer_arn: String,
    #[serde(rename = "ConsumerStatus")]
    pub consumer_status: ConsumerStatus,
    #[serde(rename = "ConsumerCreationTimestamp")]
    pub consumer_creation_timestamp: Timestamp,
    #[serde(rename = "StreamARN")]
    pub stream_arn: String,
}

/// A record as GetRecords and SubscribeToShard return it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Record {
    pub sequence_number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approximate_arrival_timestamp: Option<Timestamp>,
    pub data: Blob,
    pub partition_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_type: Option<EncryptionType>,
}

// ---------------------------------------------------------------------------------------------
// Inputs

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddTagsToStreamInput {
    #[serde(
        rename = "StreamName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stream_name: Option<String>,
    #[serde(rename = "Tags")]
    pub tags: TagMap,
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
    #[serde(rename = "StreamId", default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateStreamInput {
    #[serde(rename = "StreamName")]
    pub stream_name: String,
    #[serde(
        rename = "ShardCount",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub shard_count: Option<i32>,
    #[serde(
        rename = "StreamModeDetails",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stream_mode_details: Option<StreamModeDetails>,
    #[serde(rename = "Tags", default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<TagMap>,
    #[serde(
        rename = "WarmThroughputMiBps",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub warm_throughput_mibps: Option<i32>,
    #[serde(
        rename = "MaxRecordSizeInKiB",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_record_size_in_kib: Option<i32>,
}

/// The input of both IncreaseStreamRetentionPeriod and DecreaseStreamRetentionPeriod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamRetentionPeriodInput {
    #[serde(
        rename = "StreamName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stream_name: Option<String>,
    #[serde(rename = "RetentionPeriodHours")]
    pub retention_period_hours: i32,
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
    #[serde(rename = "StreamId", default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
}
pub type IncreaseStreamRetentionPeriodInput = StreamRetentionPeriodInput;
pub type DecreaseStreamRetentionPeriodInput = StreamRetentionPeriodInput;

/// The input of DeleteResourcePolicy, GetResourcePolicy and ListTagsForResource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceArnInput {
    #[serde(rename = "ResourceARN")]
    pub resource_arn: String,
    #[serde(rename = "StreamId", default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
}
pub type DeleteResourcePolicyInput = ResourceArnInput;
pub type GetResourcePolicyInput = ResourceArnInput;
pub type ListTagsForResourceInput = ResourceArnInput;

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DeleteStreamInput {
    #[serde(
        rename = "StreamName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stream_name: Option<String>,
    #[serde(
        rename = "EnforceConsumerDeletion",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub enforce_consumer_deletion: Option<bool>,
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
    #[serde(rename = "StreamId", default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
}

/// The input of DeregisterStreamConsumer and DescribeStreamConsumer: a consumer by ARN, or by
/// stream ARN and name.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConsumerRefInput {
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
    #[serde(
        rename = "ConsumerName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub consumer_name: Option<String>,
    #[serde(
        rename = "ConsumerARN",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub consumer_arn: Option<String>,
    #[serde(rename = "StreamId", default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
}
pub type DeregisterStreamConsumerInput = ConsumerRefInput;
pub type DescribeStreamConsumerInput = ConsumerRefInput;

/// The (empty) input of DescribeLimits and DescribeAccountSettings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EmptyInput {}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DescribeStreamInput {
    #[serde(
        rename = "StreamName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stream_name: Option<String>,
    #[serde(rename = "Limit", default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i32>,
    #[serde(
        rename = "ExclusiveStartShardId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub exclusive_start_shard_id: Option<String>,
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
    #[serde(rename = "StreamId", default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
}

/// The input of DescribeStreamSummary: just the stream.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StreamRefInput {
    #[serde(
        rename = "StreamName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stream_name: Option<String>,
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
    #[serde(rename = "StreamId", default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
}
pub type DescribeStreamSummaryInput = StreamRefInput;

/// The input of EnableEnhancedMonitoring and DisableEnhancedMonitoring.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnhancedMonitoringInput {
    #[serde(
        rename = "StreamName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stream_name: Option<String>,
    #[serde(rename = "ShardLevelMetrics")]
    pub shard_level_metrics: Vec<MetricsName>,
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
    #[serde(rename = "StreamId", default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
}
pub type EnableEnhancedMonitoringInput = EnhancedMonitoringInput;
pub type DisableEnhancedMonitoringInput = EnhancedMonitoringInput;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetRecordsInput {
    #[serde(rename = "ShardIterator")]
    pub shard_iterator: String,
    #[serde(rename = "Limit", default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i32>,
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
    #[serde(rename = "StreamId", default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetShardIteratorInput {
    #[serde(
        rename = "StreamName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stream_name: Option<String>,
    #[serde(rename = "ShardId")]
    pub shard_id: String,
    #[serde(rename = "ShardIteratorType")]
    pub shard_iterator_type: ShardIteratorType,
    #[serde(
        rename = "StartingSequenceNumber",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub starting_sequence_number: Option<String>,
    #[serde(rename = "Timestamp", default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
    #[serde(rename = "StreamId", default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ListShardsInput {
    #[serde(
        rename = "StreamName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stream_name: Option<String>,
    #[serde(rename = "NextToken", default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    #[serde(
        rename = "ExclusiveStartShardId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub exclusive_start_shard_id: Option<String>,
    #[serde(
        rename = "MaxResults",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_results: Option<i32>,
    #[serde(
        rename = "StreamCreationTimestamp",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stream_creation_timestamp: Option<Timestamp>,
    #[serde(
        rename = "ShardFilter",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub shard_filter: Option<ShardFilter>,
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
    #[serde(rename = "StreamId", default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListStreamConsumersInput {
    #[serde(rename = "StreamARN")]
    pub stream_arn: String,
    #[serde(rename = "NextToken", default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    #[serde(
        rename = "MaxResults",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_results: Option<i32>,
    #[serde(
        rename = "StreamCreationTimestamp",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stream_creation_timestamp: Option<Timestamp>,
    #[serde(rename = "StreamId", default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ListStreamsInput {
    #[serde(rename = "Limit", default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i32>,
    #[serde(
        rename = "ExclusiveStartStreamName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub exclusive_start_stream_name: Option<String>,
    #[serde(rename = "NextToken", default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ListTagsForStreamInput {
    #[serde(
        rename = "StreamName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stream_name: Option<String>,
    #[serde(
        rename = "ExclusiveStartTagKey",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub exclusive_start_tag_key: Option<String>,
    #[serde(rename = "Limit", default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i32>,
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
    #[serde(rename = "StreamId", default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeShardsInput {
    #[serde(
        rename = "StreamName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stream_name: Option<String>,
    #[serde(rename = "ShardToMerge")]
    pub shard_to_merge: String,
    #[serde(rename = "AdjacentShardToMerge")]
    pub adjacent_shard_to_merge: String,
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
    #[serde(rename = "StreamId", default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutRecordInput {
    #[serde(
        rename = "StreamName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stream_name: Option<String>,
    #[serde(rename = "Data")]
    pub data: Blob,
    #[serde(rename = "PartitionKey")]
    pub partition_key: String,
    #[serde(
        rename = "ExplicitHashKey",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub explicit_hash_key: Option<String>,
    #[serde(
        rename = "SequenceNumberForOrdering",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub sequence_number_for_ordering: Option<String>,
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
    #[serde(rename = "StreamId", default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordsRequestEntry {
    pub data: Blob,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explicit_hash_key: Option<String>,
    pub partition_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutRecordsInput {
    #[serde(rename = "Records")]
    pub records: Vec<PutRecordsRequestEntry>,
    #[serde(
        rename = "StreamName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stream_name: Option<String>,
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
    #[serde(rename = "StreamId", default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutResourcePolicyInput {
    #[serde(rename = "ResourceARN")]
    pub resource_arn: String,
    #[serde(rename = "StreamId", default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
    #[serde(rename = "Policy")]
    pub policy: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterStreamConsumerInput {
    #[serde(rename = "StreamARN")]
    pub stream_arn: String,
    #[serde(rename = "ConsumerName")]
    pub consumer_name: String,
    #[serde(rename = "StreamId", default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
    #[serde(rename = "Tags", default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<TagMap>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoveTagsFromStreamInput {
    #[serde(
        rename = "StreamName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stream_name: Option<String>,
    #[serde(rename = "TagKeys")]
    pub tag_keys: Vec<String>,
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
    #[serde(rename = "StreamId", default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitShardInput {
    #[serde(
        rename = "StreamName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stream_name: Option<String>,
    #[serde(rename = "ShardToSplit")]
    pub shard_to_split: String,
    #[serde(rename = "NewStartingHashKey")]
    pub new_starting_hash_key: String,
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
    #[serde(rename = "StreamId", default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
}

/// The input of StartStreamEncryption and StopStreamEncryption.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamEncryptionInput {
    #[serde(
        rename = "StreamName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stream_name: Option<String>,
    #[serde(rename = "EncryptionType")]
    pub encryption_type: EncryptionType,
    #[serde(rename = "KeyId")]
    pub key_id: String,
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
    #[serde(rename = "StreamId", default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
}
pub type StartStreamEncryptionInput = StreamEncryptionInput;
pub type StopStreamEncryptionInput = StreamEncryptionInput;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribeToShardInput {
    #[serde(rename = "ConsumerARN")]
    pub consumer_arn: String,
    #[serde(rename = "StreamId", default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
    #[serde(rename = "ShardId")]
    pub shard_id: String,
    #[serde(rename = "StartingPosition")]
    pub starting_position: StartingPosition,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagResourceInput {
    #[serde(rename = "Tags")]
    pub tags: TagMap,
    #[serde(rename = "ResourceARN")]
    pub resource_arn: String,
    #[serde(rename = "StreamId", default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UntagResourceInput {
    #[serde(rename = "TagKeys")]
    pub tag_keys: Vec<String>,
    #[serde(rename = "ResourceARN")]
    pub resource_arn: String,
    #[serde(rename = "StreamId", default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BillingCommitmentInput {
    pub status: BillingCommitmentInputStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateAccountSettingsInput {
    pub minimum_throughput_billing_commitment: BillingCommitmentInput,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateMaxRecordSizeInput {
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
    #[serde(rename = "StreamId", default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
    #[serde(rename = "MaxRecordSizeInKiB")]
    pub max_record_size_in_kib: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateShardCountInput {
    #[serde(
        rename = "StreamName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stream_name: Option<String>,
    #[serde(rename = "TargetShardCount")]
    pub target_shard_count: i32,
    #[serde(rename = "ScalingType")]
    pub scaling_type: ScalingType,
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
    #[serde(rename = "StreamId", default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateStreamModeInput {
    #[serde(rename = "StreamARN")]
    pub stream_arn: String,
    #[serde(rename = "StreamId", default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
    #[serde(rename = "StreamModeDetails")]
    pub stream_mode_details: StreamModeDetails,
    #[serde(
        rename = "WarmThroughputMiBps",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub warm_throughput_mibps: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateStreamWarmThroughputInput {
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
    #[serde(
        rename = "StreamName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stream_name: Option<String>,
    #[serde(rename = "StreamId", default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
    #[serde(rename = "WarmThroughputMiBps")]
    pub warm_throughput_mibps: i32,
}

// ---------------------------------------------------------------------------------------------
// Outputs. Operations without an output (CreateStream, DeleteStream, tagging, retention,
// MergeShards, SplitShard, encryption, UpdateStreamMode, UpdateMaxRecordSize, policies other than
// Get, DeregisterStreamConsumer) answer HTTP 200 with an empty body.

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamDescription {
    #[serde(rename = "StreamName")]
    pub stream_name: String,
    #[serde(rename = "StreamARN")]
    pub stream_arn: String,
    #[serde(rename = "StreamStatus")]
    pub stream_status: StreamStatus,
    #[serde(
        rename = "StreamModeDetails",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stream_mode_details: Option<StreamModeDetails>,
    #[serde(rename = "Shards")]
    pub shards: Vec<Shard>,
    #[serde(rename = "HasMoreShards")]
    pub has_more_shards: bool,
    #[serde(rename = "RetentionPeriodHours")]
    pub retention_period_hours: i32,
    #[serde(rename = "StreamCreationTimestamp")]
    pub stream_creation_timestamp: Timestamp,
    #[serde(rename = "EnhancedMonitoring")]
    pub enhanced_monitoring: Vec<EnhancedMetrics>,
    #[serde(
        rename = "EncryptionType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub encryption_type: Option<EncryptionType>,
    #[serde(rename = "KeyId", default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeStreamOutput {
    pub stream_description: StreamDescription,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamDescriptionSummary {
    #[serde(rename = "StreamName")]
    pub stream_name: String,
    #[serde(rename = "StreamARN")]
    pub stream_arn: String,
    /// Leave `None` unless deliberately enabled: SDKs rewrite the endpoint host from it
    /// (kinesis-api.md §1.3).
    #[serde(rename = "StreamId", default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
    #[serde(rename = "StreamStatus")]
    pub stream_status: StreamStatus,
    #[serde(
        rename = "StreamModeDetails",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stream_mode_details: Option<StreamModeDetails>,
    #[serde(rename = "RetentionPeriodHours")]
    pub retention_period_hours: i32,
    #[serde(rename = "StreamCreationTimestamp")]
    pub stream_creation_timestamp: Timestamp,
    #[serde(rename = "EnhancedMonitoring")]
    pub enhanced_monitoring: Vec<EnhancedMetrics>,
    #[serde(
        rename = "EncryptionType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub encryption_type: Option<EncryptionType>,
    #[serde(rename = "KeyId", default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    #[serde(rename = "OpenShardCount")]
    pub open_shard_count: i32,
    #[serde(
        rename = "ConsumerCount",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub consumer_count: Option<i32>,
    #[serde(
        rename = "WarmThroughput",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub warm_throughput: Option<WarmThroughput>,
    #[serde(
        rename = "MaxRecordSizeInKiB",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_record_size_in_kib: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeStreamSummaryOutput {
    pub stream_description_summary: StreamDescriptionSummary,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamSummary {
    #[serde(rename = "StreamName")]
    pub stream_name: String,
    #[serde(rename = "StreamARN")]
    pub stream_arn: String,
    #[serde(rename = "StreamStatus")]
    pub stream_status: StreamStatus,
    #[serde(
        rename = "StreamModeDetails",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stream_mode_details: Option<StreamModeDetails>,
    #[serde(
        rename = "StreamCreationTimestamp",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stream_creation_timestamp: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListStreamsOutput {
    pub stream_names: Vec<String>,
    pub has_more_streams: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_summaries: Option<Vec<StreamSummary>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListShardsOutput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<Vec<Shard>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UpdateShardCountOutput {
    #[serde(
        rename = "StreamName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stream_name: Option<String>,
    #[serde(
        rename = "CurrentShardCount",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub current_shard_count: Option<i32>,
    #[serde(
        rename = "TargetShardCount",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub target_shard_count: Option<i32>,
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
}

/// The output of EnableEnhancedMonitoring and DisableEnhancedMonitoring.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EnhancedMonitoringOutput {
    #[serde(
        rename = "StreamName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stream_name: Option<String>,
    #[serde(
        rename = "CurrentShardLevelMetrics",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub current_shard_level_metrics: Option<Vec<MetricsName>>,
    #[serde(
        rename = "DesiredShardLevelMetrics",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub desired_shard_level_metrics: Option<Vec<MetricsName>>,
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsForStreamOutput {
    pub tags: Vec<Tag>,
    pub has_more_tags: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsForResourceOutput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<Tag>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetResourcePolicyOutput {
    pub policy: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterStreamConsumerOutput {
    pub consumer: Consumer,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeStreamConsumerOutput {
    pub consumer_description: ConsumerDescription,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListStreamConsumersOutput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumers: Option<Vec<Consumer>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeLimitsOutput {
    pub shard_limit: i32,
    pub open_shard_count: i32,
    pub on_demand_stream_count: i32,
    pub on_demand_stream_count_limit: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BillingCommitmentOutput {
    pub status: BillingCommitmentOutputStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub earliest_allowed_end_at: Option<Timestamp>,
}

/// The output of DescribeAccountSettings and UpdateAccountSettings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccountSettingsOutput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_throughput_billing_commitment: Option<BillingCommitmentOutput>,
}
pub type DescribeAccountSettingsOutput = AccountSettingsOutput;
pub type UpdateAccountSettingsOutput = AccountSettingsOutput;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordOutput {
    pub shard_id: String,
    pub sequence_number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_type: Option<EncryptionType>,
}

/// One result of PutRecords: `SequenceNumber` and `ShardId` on success, `ErrorCode` and
/// `ErrorMessage` on failure.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordsResultEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

impl PutRecordsResultEntry {
    pub fn success(shard_id: impl Into<String>, sequence_number: impl Into<String>) -> Self {
        PutRecordsResultEntry {
            sequence_number: Some(sequence_number.into()),
            shard_id: Some(shard_id.into()),
            ..Default::default()
        }
    }

    pub fn failure(error: &crate::ApiError) -> Self {
        PutRecordsResultEntry {
            error_code: Some(error.kind.type_name().to_owned()),
            error_message: Some(error.message.clone()),
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordsOutput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_record_count: Option<i32>,
    pub records: Vec<PutRecordsResultEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_type: Option<EncryptionType>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetShardIteratorOutput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_iterator: Option<String>,
}

/// At a shard's end `next_shard_iterator` is `None` and `child_shards` non-empty; otherwise the
/// reverse (the KCL rejects any other combination, kinesis-api.md §2).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetRecordsOutput {
    pub records: Vec<Record>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_shard_iterator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub millis_behind_latest: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child_shards: Option<Vec<ChildShard>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UpdateStreamWarmThroughputOutput {
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
    #[serde(
        rename = "StreamName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stream_name: Option<String>,
    #[serde(
        rename = "WarmThroughput",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub warm_throughput: Option<WarmThroughput>,
}

/// The payload of one `SubscribeToShardEvent` event-stream message. At a shard's end
/// `continuation_sequence_number` is `None` and `child_shards` non-empty.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SubscribeToShardEvent {
    pub records: Vec<Record>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuation_sequence_number: Option<String>,
    pub millis_behind_latest: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child_shards: Option<Vec<ChildShard>>,
}
