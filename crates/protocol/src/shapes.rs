//! The input shapes of all 39 operations, transcribed from botocore's
//! `data/kinesis/2013-12-02/service-2.json` (members in model order), and the string patterns.
//!
//! Deliberate differences from that model, each for a recorded AWS behaviour or a scope reason:
//! - `HashKey` and `SequenceNumber` print their pattern as AWS's messages do
//!   (`0|([1-9]\d{0,38})`, kinesalite `test/putRecord.js`), not as the SDK model's anchored form.
//! - `ShardIteratorType` lists its values in the order AWS's message shows them
//!   (kinesalite `test/getShardIterator.js`).
//! - `PartitionKey` stays required in PutRecord and PutRecords entries (kinesalite
//!   `test/putRecord.js`, `test/putRecords.js`); the newest model relaxed it for a
//!   record-distribution feature Levee does not have.
//! - Members newer than the 39-operation API Levee implements (`DryRun`,
//!   `RecordDistributionStrategy`) are not listed, so they are ignored like any unknown member.

use std::sync::LazyLock;

use regex::Regex;

use crate::operation::Operation;
use crate::schema::{ListShape, MapShape, Member, Pattern, Shape, StrShape};

// ---------------------------------------------------------------------------------------------
// Patterns (Java `matches()` semantics: the whole string; `.` excludes line terminators, `\d` and
// `\S` are ASCII classes).

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// `0|([1-9]\d{0,max_tail})`
fn is_decimal(s: &str, max_tail: usize) -> bool {
    let mut bytes = s.bytes();
    match bytes.next() {
        Some(b'0') => s.len() == 1,
        Some(b'1'..=b'9') => s.len() - 1 <= max_tail && bytes.all(|b| b.is_ascii_digit()),
        _ => false,
    }
}

fn is_hash_key(s: &str) -> bool {
    is_decimal(s, 38)
}

fn is_sequence_number(s: &str) -> bool {
    is_decimal(s, 128)
}

/// `[a-z0-9]{20}-[a-z0-9]{3}`
fn is_stream_id(s: &str) -> bool {
    s.len() == 24
        && s.bytes().enumerate().all(|(i, b)| {
            if i == 20 {
                b == b'-'
            } else {
                b.is_ascii_lowercase() || b.is_ascii_digit()
            }
        })
}

/// Java's `.`: anything but a line terminator.
const DOT: &str = r"[^\n\r\x{85}\x{2028}\x{2029}]";
/// Java's `\S`: anything but ASCII whitespace.
const NON_SPACE: &str = r"[^ \t\n\x0B\x0C\r]";

fn java_regex(pattern: &str) -> Option<Regex> {
    let translated = pattern
        .replace('.', DOT)
        .replace(r"\S", NON_SPACE)
        .replace(r"\d", "[0-9]");
    Regex::new(&format!("^(?:{translated})$")).ok()
}

// `java_regex` turns every `.` into Java's wildcard: only for patterns without literal dots.
static STREAM_ARN_RE: LazyLock<Option<Regex>> =
    LazyLock::new(|| java_regex(r"arn:aws.*:kinesis:.*:\d{12}:stream/\S+"));
static CONSUMER_ARN_RE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    // The name classes contain a literal `.`, so this one is translated by hand.
    let name = r"[a-zA-Z0-9_.\-]+";
    Regex::new(&format!(
        "^arn:aws{DOT}*:kinesis:{DOT}*:[0-9]{{12}}:{DOT}*stream/{name}/consumer/{name}:[0-9]+$"
    ))
    .ok()
});
static RESOURCE_ARN_RE: LazyLock<Option<Regex>> =
    LazyLock::new(|| java_regex(r"arn:aws.*:kinesis:.*:\d{12}:.*(stream|channel|queue)/\S+"));

fn is_stream_arn(s: &str) -> bool {
    STREAM_ARN_RE.as_ref().is_some_and(|r| r.is_match(s))
}

fn is_consumer_arn(s: &str) -> bool {
    CONSUMER_ARN_RE.as_ref().is_some_and(|r| r.is_match(s))
}

fn is_resource_arn(s: &str) -> bool {
    RESOURCE_ARN_RE.as_ref().is_some_and(|r| r.is_match(s))
}

static NAME_PATTERN: Pattern = Pattern {
    text: "[a-zA-Z0-9_.-]+",
    matches: is_name,
};
static HASH_KEY_PATTERN: Pattern = Pattern {
    text: r"0|([1-9]\d{0,38})",
    matches: is_hash_key,
};
static SEQUENCE_NUMBER_PATTERN: Pattern = Pattern {
    text: r"0|([1-9]\d{0,128})",
    matches: is_sequence_number,
};
static STREAM_ID_PATTERN: Pattern = Pattern {
    text: "[a-z0-9]{20}-[a-z0-9]{3}",
    matches: is_stream_id,
};
static STREAM_ARN_PATTERN: Pattern = Pattern {
    text: r"arn:aws.*:kinesis:.*:\d{12}:stream/\S+",
    matches: is_stream_arn,
};
static CONSUMER_ARN_PATTERN: Pattern = Pattern {
    text: r"^(arn):aws.*:kinesis:.*:\d{12}:.*stream\/[a-zA-Z0-9_.-]+\/consumer\/[a-zA-Z0-9_.-]+:[0-9]+",
    matches: is_consumer_arn,
};
static RESOURCE_ARN_PATTERN: Pattern = Pattern {
    text: r"arn:aws.*:kinesis:.*:\d{12}:.*(stream|channel|queue)/\S+",
    matches: is_resource_arn,
};

// ---------------------------------------------------------------------------------------------
// Scalar shapes

const fn text(
    min: Option<usize>,
    max: Option<usize>,
    pattern: Option<&'static Pattern>,
) -> StrShape {
    StrShape {
        min,
        max,
        pattern,
        values: None,
    }
}

const fn one_of(values: &'static [&'static str]) -> Shape {
    Shape::Str(StrShape {
        min: None,
        max: None,
        pattern: None,
        values: Some(values),
    })
}

const fn int(min: Option<i64>, max: Option<i64>) -> Shape {
    Shape::Int {
        min,
        max,
        long: false,
    }
}

/// Largest `Data` blob, bytes (model `Data`: max 10485760).
pub const DATA_BYTES_MAX: usize = 10_485_760;

static STREAM_NAME: Shape = Shape::Str(text(Some(1), Some(128), Some(&NAME_PATTERN)));
static STREAM_ARN: Shape = Shape::Str(text(Some(1), Some(2048), Some(&STREAM_ARN_PATTERN)));
static STREAM_ID: Shape = Shape::Str(text(Some(1), Some(24), Some(&STREAM_ID_PATTERN)));
static SHARD_ID: Shape = Shape::Str(text(Some(1), Some(128), Some(&NAME_PATTERN)));
static CONSUMER_NAME: Shape = Shape::Str(text(Some(1), Some(128), Some(&NAME_PATTERN)));
static CONSUMER_ARN: Shape = Shape::Str(text(Some(1), Some(2048), Some(&CONSUMER_ARN_PATTERN)));
static RESOURCE_ARN: Shape = Shape::Str(text(Some(1), Some(2048), Some(&RESOURCE_ARN_PATTERN)));
static HASH_KEY: Shape = Shape::Str(text(None, None, Some(&HASH_KEY_PATTERN)));
static SEQUENCE_NUMBER: Shape = Shape::Str(text(None, None, Some(&SEQUENCE_NUMBER_PATTERN)));
static PARTITION_KEY: Shape = Shape::Str(text(Some(1), Some(256), None));
static SHARD_ITERATOR: Shape = Shape::Str(text(Some(1), Some(512), None));
static NEXT_TOKEN: Shape = Shape::Str(text(Some(1), Some(1_048_576), None));
static KEY_ID: Shape = Shape::Str(text(Some(1), Some(2048), None));
static POLICY: Shape = Shape::Str(text(None, None, None));
const TAG_KEY_STR: StrShape = text(Some(1), Some(128), None);
const TAG_VALUE_STR: StrShape = text(Some(0), Some(256), None);
static TAG_KEY: Shape = Shape::Str(TAG_KEY_STR);
static TAG_KEY_FOR_MAP: StrShape = TAG_KEY_STR;
static TAG_VALUE_FOR_MAP: StrShape = TAG_VALUE_STR;

static STREAM_MODE: Shape = one_of(&["PROVISIONED", "ON_DEMAND"]);
/// In the order AWS's message lists them (kinesalite `test/getShardIterator.js`).
static SHARD_ITERATOR_TYPE: Shape = one_of(&[
    "AFTER_SEQUENCE_NUMBER",
    "LATEST",
    "AT_TIMESTAMP",
    "AT_SEQUENCE_NUMBER",
    "TRIM_HORIZON",
]);
static SHARD_FILTER_TYPE: Shape = one_of(&[
    "AFTER_SHARD_ID",
    "AT_TRIM_HORIZON",
    "FROM_TRIM_HORIZON",
    "AT_LATEST",
    "AT_TIMESTAMP",
    "FROM_TIMESTAMP",
]);
static ENCRYPTION_TYPE: Shape = one_of(&["NONE", "KMS"]);
static METRICS_NAME: Shape = one_of(&[
    "IncomingBytes",
    "IncomingRecords",
    "OutgoingBytes",
    "OutgoingRecords",
    "WriteProvisionedThroughputExceeded",
    "ReadProvisionedThroughputExceeded",
    "IteratorAgeMilliseconds",
    "ALL",
]);
static SCALING_TYPE: Shape = one_of(&["UNIFORM_SCALING"]);
static BILLING_COMMITMENT_STATUS: Shape = one_of(&["ENABLED", "DISABLED"]);

static POSITIVE_INT: Shape = int(Some(1), None);
static NATURAL_INT: Shape = int(Some(0), None);
static MAX_RECORD_SIZE_KIB: Shape = int(Some(1024), Some(10240));
static LIMIT_10000: Shape = int(Some(1), Some(10000));
static TAGS_LIMIT: Shape = int(Some(1), Some(50));
static RETENTION_PERIOD_HOURS: Shape = int(None, None);
static BOOLEAN: Shape = Shape::Bool;
static TIMESTAMP: Shape = Shape::Timestamp;
static DATA: Shape = Shape::Blob {
    max: Some(DATA_BYTES_MAX),
};

// ---------------------------------------------------------------------------------------------
// Composite shapes

static TAG_MAP: Shape = Shape::Map(MapShape {
    key: &TAG_KEY_FOR_MAP,
    value: &TAG_VALUE_FOR_MAP,
    min: Some(1),
    max: Some(200),
});
static TAG_KEY_LIST: Shape = Shape::List(ListShape {
    member: &TAG_KEY,
    min: Some(1),
    max: Some(50),
    member_str: None,
});
static METRICS_NAME_LIST: Shape = Shape::List(ListShape {
    member: &METRICS_NAME,
    min: Some(1),
    max: Some(7),
    member_str: None,
});

const fn req(name: &'static str, shape: &'static Shape) -> Member {
    Member {
        name,
        required: true,
        unless: None,
        shape,
    }
}

const fn opt(name: &'static str, shape: &'static Shape) -> Member {
    Member {
        name,
        required: false,
        unless: None,
        shape,
    }
}

static STREAM_MODE_DETAILS: Shape = Shape::Struct(&[req("StreamMode", &STREAM_MODE)]);
static SHARD_FILTER: Shape = Shape::Struct(&[
    req("Type", &SHARD_FILTER_TYPE),
    opt("ShardId", &SHARD_ID),
    opt("Timestamp", &TIMESTAMP),
]);
static STARTING_POSITION: Shape = Shape::Struct(&[
    req("Type", &SHARD_ITERATOR_TYPE),
    opt("SequenceNumber", &SEQUENCE_NUMBER),
    opt("Timestamp", &TIMESTAMP),
]);
static BILLING_COMMITMENT_INPUT: Shape =
    Shape::Struct(&[req("Status", &BILLING_COMMITMENT_STATUS)]);
static PUT_RECORDS_ENTRY: Shape = Shape::Struct(&[
    req("Data", &DATA),
    opt("ExplicitHashKey", &HASH_KEY),
    req("PartitionKey", &PARTITION_KEY),
]);
static PUT_RECORDS_ENTRIES: Shape = Shape::List(ListShape {
    member: &PUT_RECORDS_ENTRY,
    min: Some(1),
    max: Some(500),
    // Java's `Object.toString` of an entry, as recorded (kinesalite `validations/putRecords.js`).
    member_str: Some("com.amazonaws.kinesis.v20131202.PutRecordsRequestEntry@c965e310"),
});

// ---------------------------------------------------------------------------------------------
// Operation inputs

const STREAM_NAME_OPT: Member = opt("StreamName", &STREAM_NAME);
/// `StreamName` where the model makes it optional beside `StreamARN`: with neither, AWS's
/// answer is the one recorded before StreamARN existed, `Value null at 'streamName' failed to
/// satisfy constraint: Member must not be null`, among the other validation errors (kinesalite
/// `test/*.js`, "no StreamName"); no newer AWS answer is documented.
const STREAM_NAME_OR_ARN: Member = Member {
    name: "StreamName",
    required: true,
    unless: Some("StreamARN"),
    shape: &STREAM_NAME,
};
const STREAM_ARN_OPT: Member = opt("StreamARN", &STREAM_ARN);
const STREAM_ID_OPT: Member = opt("StreamId", &STREAM_ID);

static ADD_TAGS_TO_STREAM: &[Member] = &[
    STREAM_NAME_OR_ARN,
    req("Tags", &TAG_MAP),
    STREAM_ARN_OPT,
    STREAM_ID_OPT,
];
static CREATE_STREAM: &[Member] = &[
    req("StreamName", &STREAM_NAME),
    opt("ShardCount", &POSITIVE_INT),
    opt("StreamModeDetails", &STREAM_MODE_DETAILS),
    opt("Tags", &TAG_MAP),
    opt("WarmThroughputMiBps", &NATURAL_INT),
    opt("MaxRecordSizeInKiB", &MAX_RECORD_SIZE_KIB),
];
static RETENTION_PERIOD: &[Member] = &[
    STREAM_NAME_OR_ARN,
    req("RetentionPeriodHours", &RETENTION_PERIOD_HOURS),
    STREAM_ARN_OPT,
    STREAM_ID_OPT,
];
static RESOURCE_ONLY: &[Member] = &[req("ResourceARN", &RESOURCE_ARN), STREAM_ID_OPT];
static DELETE_STREAM: &[Member] = &[
    STREAM_NAME_OR_ARN,
    opt("EnforceConsumerDeletion", &BOOLEAN),
    STREAM_ARN_OPT,
    STREAM_ID_OPT,
];
static CONSUMER_BY_NAME_OR_ARN: &[Member] = &[
    STREAM_ARN_OPT,
    opt("ConsumerName", &CONSUMER_NAME),
    opt("ConsumerARN", &CONSUMER_ARN),
    STREAM_ID_OPT,
];
static NO_MEMBERS: &[Member] = &[];
static DESCRIBE_STREAM: &[Member] = &[
    STREAM_NAME_OR_ARN,
    opt("Limit", &LIMIT_10000),
    opt("ExclusiveStartShardId", &SHARD_ID),
    STREAM_ARN_OPT,
    STREAM_ID_OPT,
];
static STREAM_ONLY: &[Member] = &[STREAM_NAME_OR_ARN, STREAM_ARN_OPT, STREAM_ID_OPT];
static ENHANCED_MONITORING: &[Member] = &[
    STREAM_NAME_OR_ARN,
    req("ShardLevelMetrics", &METRICS_NAME_LIST),
    STREAM_ARN_OPT,
    STREAM_ID_OPT,
];
static GET_RECORDS: &[Member] = &[
    req("ShardIterator", &SHARD_ITERATOR),
    opt("Limit", &LIMIT_10000),
    STREAM_ARN_OPT,
    STREAM_ID_OPT,
];
static GET_SHARD_ITERATOR: &[Member] = &[
    STREAM_NAME_OR_ARN,
    req("ShardId", &SHARD_ID),
    req("ShardIteratorType", &SHARD_ITERATOR_TYPE),
    opt("StartingSequenceNumber", &SEQUENCE_NUMBER),
    opt("Timestamp", &TIMESTAMP),
    STREAM_ARN_OPT,
    STREAM_ID_OPT,
];
static LIST_SHARDS: &[Member] = &[
    STREAM_NAME_OPT,
    opt("NextToken", &NEXT_TOKEN),
    opt("ExclusiveStartShardId", &SHARD_ID),
    opt("MaxResults", &LIMIT_10000),
    opt("StreamCreationTimestamp", &TIMESTAMP),
    opt("ShardFilter", &SHARD_FILTER),
    STREAM_ARN_OPT,
    STREAM_ID_OPT,
];
static LIST_STREAM_CONSUMERS: &[Member] = &[
    req("StreamARN", &STREAM_ARN),
    opt("NextToken", &NEXT_TOKEN),
    opt("MaxResults", &LIMIT_10000),
    opt("StreamCreationTimestamp", &TIMESTAMP),
    STREAM_ID_OPT,
];
static LIST_STREAMS: &[Member] = &[
    opt("Limit", &LIMIT_10000),
    opt("ExclusiveStartStreamName", &STREAM_NAME),
    opt("NextToken", &NEXT_TOKEN),
];
static LIST_TAGS_FOR_STREAM: &[Member] = &[
    STREAM_NAME_OR_ARN,
    opt("ExclusiveStartTagKey", &TAG_KEY),
    opt("Limit", &TAGS_LIMIT),
    STREAM_ARN_OPT,
    STREAM_ID_OPT,
];
static MERGE_SHARDS: &[Member] = &[
    STREAM_NAME_OR_ARN,
    req("ShardToMerge", &SHARD_ID),
    req("AdjacentShardToMerge", &SHARD_ID),
    STREAM_ARN_OPT,
    STREAM_ID_OPT,
];
static PUT_RECORD: &[Member] = &[
    STREAM_NAME_OR_ARN,
    req("Data", &DATA),
    req("PartitionKey", &PARTITION_KEY),
    opt("ExplicitHashKey", &HASH_KEY),
    opt("SequenceNumberForOrdering", &SEQUENCE_NUMBER),
    STREAM_ARN_OPT,
    STREAM_ID_OPT,
];
static PUT_RECORDS: &[Member] = &[
    req("Records", &PUT_RECORDS_ENTRIES),
    STREAM_NAME_OR_ARN,
    STREAM_ARN_OPT,
    STREAM_ID_OPT,
];
static PUT_RESOURCE_POLICY: &[Member] = &[
    req("ResourceARN", &RESOURCE_ARN),
    STREAM_ID_OPT,
    req("Policy", &POLICY),
];
static REGISTER_STREAM_CONSUMER: &[Member] = &[
    req("StreamARN", &STREAM_ARN),
    req("ConsumerName", &CONSUMER_NAME),
    STREAM_ID_OPT,
    opt("Tags", &TAG_MAP),
];
static REMOVE_TAGS_FROM_STREAM: &[Member] = &[
    STREAM_NAME_OR_ARN,
    req("TagKeys", &TAG_KEY_LIST),
    STREAM_ARN_OPT,
    STREAM_ID_OPT,
];
static SPLIT_SHARD: &[Member] = &[
    STREAM_NAME_OR_ARN,
    req("ShardToSplit", &SHARD_ID),
    req("NewStartingHashKey", &HASH_KEY),
    STREAM_ARN_OPT,
    STREAM_ID_OPT,
];
static STREAM_ENCRYPTION: &[Member] = &[
    STREAM_NAME_OR_ARN,
    req("EncryptionType", &ENCRYPTION_TYPE),
    req("KeyId", &KEY_ID),
    STREAM_ARN_OPT,
    STREAM_ID_OPT,
];
static SUBSCRIBE_TO_SHARD: &[Member] = &[
    req("ConsumerARN", &CONSUMER_ARN),
    STREAM_ID_OPT,
    req("ShardId", &SHARD_ID),
    req("StartingPosition", &STARTING_POSITION),
];
static TAG_RESOURCE: &[Member] = &[
    req("Tags", &TAG_MAP),
    req("ResourceARN", &RESOURCE_ARN),
    STREAM_ID_OPT,
];
static UNTAG_RESOURCE: &[Member] = &[
    req("TagKeys", &TAG_KEY_LIST),
    req("ResourceARN", &RESOURCE_ARN),
    STREAM_ID_OPT,
];
static UPDATE_ACCOUNT_SETTINGS: &[Member] = &[req(
    "MinimumThroughputBillingCommitment",
    &BILLING_COMMITMENT_INPUT,
)];
static UPDATE_MAX_RECORD_SIZE: &[Member] = &[
    STREAM_ARN_OPT,
    STREAM_ID_OPT,
    req("MaxRecordSizeInKiB", &MAX_RECORD_SIZE_KIB),
];
static UPDATE_SHARD_COUNT: &[Member] = &[
    STREAM_NAME_OR_ARN,
    req("TargetShardCount", &POSITIVE_INT),
    req("ScalingType", &SCALING_TYPE),
    STREAM_ARN_OPT,
    STREAM_ID_OPT,
];
static UPDATE_STREAM_MODE: &[Member] = &[
    req("StreamARN", &STREAM_ARN),
    STREAM_ID_OPT,
    req("StreamModeDetails", &STREAM_MODE_DETAILS),
    opt("WarmThroughputMiBps", &NATURAL_INT),
];
static UPDATE_STREAM_WARM_THROUGHPUT: &[Member] = &[
    STREAM_ARN_OPT,
    STREAM_NAME_OR_ARN,
    STREAM_ID_OPT,
    req("WarmThroughputMiBps", &NATURAL_INT),
];

/// The members of an operation's input, in model order.
pub(crate) fn input_members(op: Operation) -> &'static [Member] {
    use Operation as O;
    match op {
        O::AddTagsToStream => ADD_TAGS_TO_STREAM,
        O::CreateStream => CREATE_STREAM,
        O::DecreaseStreamRetentionPeriod | O::IncreaseStreamRetentionPeriod => RETENTION_PERIOD,
        O::DeleteResourcePolicy | O::GetResourcePolicy | O::ListTagsForResource => RESOURCE_ONLY,
        O::DeleteStream => DELETE_STREAM,
        O::DeregisterStreamConsumer | O::DescribeStreamConsumer => CONSUMER_BY_NAME_OR_ARN,
        O::DescribeAccountSettings | O::DescribeLimits => NO_MEMBERS,
        O::DescribeStream => DESCRIBE_STREAM,
        O::DescribeStreamSummary => STREAM_ONLY,
        O::DisableEnhancedMonitoring | O::EnableEnhancedMonitoring => ENHANCED_MONITORING,
        O::GetRecords => GET_RECORDS,
        O::GetShardIterator => GET_SHARD_ITERATOR,
        O::ListShards => LIST_SHARDS,
        O::ListStreamConsumers => LIST_STREAM_CONSUMERS,
        O::ListStreams => LIST_STREAMS,
        O::ListTagsForStream => LIST_TAGS_FOR_STREAM,
        O::MergeShards => MERGE_SHARDS,
        O::PutRecord => PUT_RECORD,
        O::PutRecords => PUT_RECORDS,
        O::PutResourcePolicy => PUT_RESOURCE_POLICY,
        O::RegisterStreamConsumer => REGISTER_STREAM_CONSUMER,
        O::RemoveTagsFromStream => REMOVE_TAGS_FROM_STREAM,
        O::SplitShard => SPLIT_SHARD,
        O::StartStreamEncryption | O::StopStreamEncryption => STREAM_ENCRYPTION,
        O::SubscribeToShard => SUBSCRIBE_TO_SHARD,
        O::TagResource => TAG_RESOURCE,
        O::UntagResource => UNTAG_RESOURCE,
        O::UpdateAccountSettings => UPDATE_ACCOUNT_SETTINGS,
        O::UpdateMaxRecordSize => UPDATE_MAX_RECORD_SIZE,
        O::UpdateShardCount => UPDATE_SHARD_COUNT,
        O::UpdateStreamMode => UPDATE_STREAM_MODE,
        O::UpdateStreamWarmThroughput => UPDATE_STREAM_WARM_THROUGHPUT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regexes_compile() {
        assert!(STREAM_ARN_RE.is_some());
        assert!(CONSUMER_ARN_RE.is_some());
        assert!(RESOURCE_ARN_RE.is_some());
    }

    #[test]
    fn name_pattern() {
        assert!(is_name("a-B_9.z"));
        assert!(!is_name(""));
        assert!(!is_name("a b"));
        assert!(!is_name("é"));
    }

    #[test]
    fn decimal_patterns() {
        assert!(is_hash_key("0"));
        assert!(is_hash_key("340282366920938463463374607431768211455"));
        assert!(!is_hash_key("3402823669209384634633746074317682114550")); // 40 digits
        assert!(!is_hash_key("01"));
        assert!(!is_hash_key(""));
        assert!(!is_hash_key("-1"));
        assert!(!is_hash_key("1a"));
        assert!(is_sequence_number(
            "49543463076548007577105092703039560359975228518395019266"
        ));
        assert!(is_sequence_number(&format!("1{}", "0".repeat(128))));
        assert!(!is_sequence_number(&format!("1{}", "0".repeat(129))));
    }

    #[test]
    fn stream_id_pattern() {
        assert!(is_stream_id("abcdefghij0123456789-x1z"));
        assert!(!is_stream_id("abcdefghij0123456789x-1z"));
        assert!(!is_stream_id("ABCDEFGHIJ0123456789-x1z"));
        assert!(!is_stream_id("abcdefghij0123456789-x1"));
    }

    #[test]
    fn arn_patterns() {
        assert!(is_stream_arn(
            "arn:aws:kinesis:us-east-1:111111111111:stream/s"
        ));
        assert!(is_stream_arn(
            "arn:aws-cn:kinesis:cn-north-1:111111111111:stream/a.b"
        ));
        assert!(!is_stream_arn(
            "arn:aws:kinesis:us-east-1:11111111111:stream/s"
        ));
        assert!(!is_stream_arn(
            "arn:aws:kinesis:us-east-1:111111111111:stream/"
        ));
        assert!(!is_stream_arn(
            "arn:aws:kinesis:us-east-1:111111111111:stream/a b"
        ));
        assert!(!is_stream_arn("arn:aws:kinesis:us\n:111111111111:stream/s"));
        assert!(!is_stream_arn(
            "xarn:aws:kinesis:us-east-1:111111111111:stream/s"
        ));
        assert!(is_consumer_arn(
            "arn:aws:kinesis:us-east-1:111111111111:stream/s.1/consumer/c-1:1700000000"
        ));
        assert!(!is_consumer_arn(
            "arn:aws:kinesis:us-east-1:111111111111:stream/s/consumer/c"
        ));
        assert!(!is_consumer_arn(
            "arn:aws:kinesis:us-east-1:111111111111:stream/s/consumer/c:17x"
        ));
        assert!(is_resource_arn(
            "arn:aws:kinesis:us-east-1:111111111111:stream/s"
        ));
        assert!(is_resource_arn(
            "arn:aws:kinesis:us-east-1:111111111111:stream/s/consumer/c:1700000000"
        ));
        assert!(!is_resource_arn("arn:aws:s3:::bucket"));
    }
}
