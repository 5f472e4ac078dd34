//! The texts of `SerializationException` and `ValidationException`, byte for byte.
//!
//! Expected texts are AWS's as recorded in kinesalite's tests (github.com/mhart/kinesalite,
//! `test/*.js`; each case names its file). kinesalite's tests accept the violations of one
//! message in any order; ours lists them in model member order, and within a member: pattern,
//! minimum length, maximum length, enum. Constraints follow the current botocore model where it
//! changed since those recordings (StreamName is optional when StreamARN is given; ShardCount,
//! RetentionPeriodHours and Limit bounds moved), so the cases below use values whose verdict the
//! model did not change. With neither StreamName nor StreamARN, the recorded "Value null at
//! 'streamName'" violation stands (no newer AWS answer is documented).

use levee_protocol::{decode_request, encode_error, ApiError, ErrorKind, Operation, WireFormat};
use serde_json::{json, Value};

fn error(op: Operation, body: Value) -> ApiError {
    let bytes = serde_json::to_vec(&body).unwrap();
    match decode_request(op, WireFormat::Json, &bytes) {
        Ok(r) => panic!("{op}: expected an error, decoded {r:?}"),
        Err(e) => e,
    }
}

fn cbor_error(op: Operation, body: ciborium::Value) -> ApiError {
    let mut bytes = Vec::new();
    ciborium::into_writer(&body, &mut bytes).unwrap();
    match decode_request(op, WireFormat::Cbor, &bytes) {
        Ok(r) => panic!("{op}: expected an error, decoded {r:?}"),
        Err(e) => e,
    }
}

fn assert_validation(op: Operation, body: Value, violations: &[&str]) {
    let err = error(op, body);
    assert_eq!(err.kind, ErrorKind::Validation, "{err}");
    let n = violations.len();
    let expected = format!(
        "{n} validation error{} detected: {}",
        if n == 1 { "" } else { "s" },
        violations.join("; ")
    );
    assert_eq!(err.message, expected);
}

const NAME_PATTERN: &str = "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+";
const MIN_1: &str = "Member must have length greater than or equal to 1";
const MAX_128: &str = "Member must have length less than or equal to 128";

fn v(value: Option<&str>, path: &str, constraint: &str) -> String {
    let value = match value {
        Some(s) => format!("'{s}'"),
        None => "null".to_owned(),
    };
    format!("Value {value} at '{path}' failed to satisfy constraint: {constraint}")
}

// --- ValidationException ---------------------------------------------------------------------

#[test]
fn create_stream_required_name() {
    // test/createStream.js "should return ValidationException for no StreamName"
    assert_validation(
        Operation::CreateStream,
        json!({}),
        &[&v(None, "streamName", "Member must not be null")],
    );
}

#[test]
fn create_stream_empty_name_and_zero_shards() {
    // test/createStream.js "should return ValidationException for empty StreamName"
    assert_validation(
        Operation::CreateStream,
        json!({"StreamName": "", "ShardCount": 0}),
        &[
            &v(Some(""), "streamName", NAME_PATTERN),
            &v(Some(""), "streamName", MIN_1),
            &v(
                Some("0"),
                "shardCount",
                "Member must have value greater than or equal to 1",
            ),
        ],
    );
}

#[test]
fn create_stream_long_name_and_clamped_shard_count() {
    // test/createStream.js "should return ValidationException for long StreamName": the name
    // text, and 100000000000 clamped to 2147483647 as an Integer (the current model has no
    // ShardCount maximum, so only the name is reported).
    let name = "a".repeat(129);
    assert_validation(
        Operation::CreateStream,
        json!({"StreamName": name, "ShardCount": 100000000000u64}),
        &[&v(Some(&name), "streamName", MAX_128)],
    );
    let err = error(
        Operation::CreateStream,
        json!({"StreamName": "s", "MaxRecordSizeInKiB": 100000000000u64}),
    );
    assert_eq!(
        err.message,
        "1 validation error detected: Value '2147483647' at 'maxRecordSizeInKiB' failed to satisfy constraint: \
         Member must have value less than or equal to 10240"
    );
}

#[test]
fn create_stream_nested_and_enum() {
    assert_validation(
        Operation::CreateStream,
        json!({"StreamName": "s", "StreamModeDetails": {}}),
        &[&v(
            None,
            "streamModeDetails.streamMode",
            "Member must not be null",
        )],
    );
    assert_validation(
        Operation::CreateStream,
        json!({"StreamName": "s", "StreamModeDetails": {"StreamMode": "FAST"}}),
        &[&v(
            Some("FAST"),
            "streamModeDetails.streamMode",
            "Member must satisfy enum value set: [PROVISIONED, ON_DEMAND]",
        )],
    );
}

#[test]
fn delete_stream_name() {
    // test/deleteStream.js
    assert_validation(
        Operation::DeleteStream,
        json!({"StreamName": ""}),
        &[
            &v(Some(""), "streamName", NAME_PATTERN),
            &v(Some(""), "streamName", MIN_1),
        ],
    );
    let name = "a".repeat(129);
    assert_validation(
        Operation::DeleteStream,
        json!({"StreamName": name}),
        &[&v(Some(&name), "streamName", MAX_128)],
    );
}

#[test]
fn describe_stream_limits() {
    // test/describeStream.js
    assert_validation(
        Operation::DescribeStream,
        json!({"StreamName": "", "Limit": 0, "ExclusiveStartShardId": ""}),
        &[
            &v(Some(""), "streamName", NAME_PATTERN),
            &v(Some(""), "streamName", MIN_1),
            &v(
                Some("0"),
                "limit",
                "Member must have value greater than or equal to 1",
            ),
            &v(Some(""), "exclusiveStartShardId", NAME_PATTERN),
            &v(Some(""), "exclusiveStartShardId", MIN_1),
        ],
    );
    let name = "a".repeat(129);
    assert_validation(
        Operation::DescribeStream,
        json!({"StreamName": name, "Limit": 100000, "ExclusiveStartShardId": name}),
        &[
            &v(Some(&name), "streamName", MAX_128),
            &v(
                Some("100000"),
                "limit",
                "Member must have value less than or equal to 10000",
            ),
            &v(Some(&name), "exclusiveStartShardId", MAX_128),
        ],
    );
}

#[test]
fn list_streams_limits() {
    // test/listStreams.js
    let name = "a".repeat(129);
    assert_validation(
        Operation::ListStreams,
        json!({"ExclusiveStartStreamName": name, "Limit": 1000000}),
        &[
            &v(
                Some("1000000"),
                "limit",
                "Member must have value less than or equal to 10000",
            ),
            &v(Some(&name), "exclusiveStartStreamName", MAX_128),
        ],
    );
}

#[test]
fn list_shards_limits() {
    // test/listShards.js
    assert_validation(
        Operation::ListShards,
        json!({"StreamName": "", "NextToken": "", "MaxResults": 0, "ExclusiveStartShardId": ""}),
        &[
            &v(Some(""), "streamName", NAME_PATTERN),
            &v(Some(""), "streamName", MIN_1),
            &v(Some(""), "nextToken", MIN_1),
            &v(Some(""), "exclusiveStartShardId", NAME_PATTERN),
            &v(Some(""), "exclusiveStartShardId", MIN_1),
            &v(
                Some("0"),
                "maxResults",
                "Member must have value greater than or equal to 1",
            ),
        ],
    );
    assert_validation(
        Operation::ListShards,
        json!({"ShardFilter": {"Type": "NOPE", "ShardId": ""}}),
        &[
            &v(
                Some("NOPE"),
                "shardFilter.type",
                "Member must satisfy enum value set: [AFTER_SHARD_ID, AT_TRIM_HORIZON, FROM_TRIM_HORIZON, AT_LATEST, AT_TIMESTAMP, FROM_TIMESTAMP]",
            ),
            &v(Some(""), "shardFilter.shardId", NAME_PATTERN),
            &v(Some(""), "shardFilter.shardId", MIN_1),
        ],
    );
}

#[test]
fn get_records_limits() {
    // test/getRecords.js
    assert_validation(
        Operation::GetRecords,
        json!({}),
        &[&v(None, "shardIterator", "Member must not be null")],
    );
    assert_validation(
        Operation::GetRecords,
        json!({"ShardIterator": "", "Limit": 0}),
        &[
            &v(Some(""), "shardIterator", MIN_1),
            &v(
                Some("0"),
                "limit",
                "Member must have value greater than or equal to 1",
            ),
        ],
    );
    let it = "a".repeat(513);
    assert_validation(
        Operation::GetRecords,
        json!({"ShardIterator": it, "Limit": 100000}),
        &[
            &v(
                Some(&it),
                "shardIterator",
                "Member must have length less than or equal to 512",
            ),
            &v(
                Some("100000"),
                "limit",
                "Member must have value less than or equal to 10000",
            ),
        ],
    );
}

#[test]
fn get_shard_iterator_enum_and_patterns() {
    // test/getShardIterator.js
    assert_validation(
        Operation::GetShardIterator,
        json!({}),
        &[
            &v(None, "streamName", "Member must not be null"),
            &v(None, "shardId", "Member must not be null"),
            &v(None, "shardIteratorType", "Member must not be null"),
        ],
    );
    assert_validation(
        Operation::GetShardIterator,
        json!({"StreamName": "", "ShardIteratorType": "", "ShardId": "", "StartingSequenceNumber": ""}),
        &[
            &v(Some(""), "streamName", NAME_PATTERN),
            &v(Some(""), "streamName", MIN_1),
            &v(Some(""), "shardId", NAME_PATTERN),
            &v(Some(""), "shardId", MIN_1),
            &v(
                Some(""),
                "shardIteratorType",
                "Member must satisfy enum value set: [AFTER_SEQUENCE_NUMBER, LATEST, AT_TIMESTAMP, AT_SEQUENCE_NUMBER, TRIM_HORIZON]",
            ),
            &v(
                Some(""),
                "startingSequenceNumber",
                r"Member must satisfy regular expression pattern: 0|([1-9]\d{0,128})",
            ),
        ],
    );
}

#[test]
fn put_record_texts() {
    // test/putRecord.js
    assert_validation(
        Operation::PutRecord,
        json!({}),
        &[
            &v(None, "streamName", "Member must not be null"),
            &v(None, "data", "Member must not be null"),
            &v(None, "partitionKey", "Member must not be null"),
        ],
    );
    assert_validation(
        Operation::PutRecord,
        json!({"StreamName": "", "PartitionKey": "", "Data": "", "ExplicitHashKey": "", "SequenceNumberForOrdering": ""}),
        &[
            &v(Some(""), "streamName", NAME_PATTERN),
            &v(Some(""), "streamName", MIN_1),
            &v(Some(""), "partitionKey", MIN_1),
            &v(
                Some(""),
                "explicitHashKey",
                r"Member must satisfy regular expression pattern: 0|([1-9]\d{0,38})",
            ),
            &v(
                Some(""),
                "sequenceNumberForOrdering",
                r"Member must satisfy regular expression pattern: 0|([1-9]\d{0,128})",
            ),
        ],
    );
}

#[test]
fn put_record_blob_is_rendered_as_a_java_buffer() {
    // test/putRecord.js "should return ValidationException for long PartitionKey" (the Data
    // limit is 10485760 bytes in the current model).
    let data = levee_protocol::base64_encode(&vec![0u8; 10_485_761]);
    let name = "a".repeat(129);
    let pk = "a".repeat(257);
    assert_validation(
        Operation::PutRecord,
        json!({"StreamName": name, "PartitionKey": pk, "Data": data, "ExplicitHashKey": ""}),
        &[
            &v(Some(&name), "streamName", MAX_128),
            &v(
                Some("java.nio.HeapByteBuffer[pos=0 lim=10485761 cap=10485761]"),
                "data",
                "Member must have length less than or equal to 10485760",
            ),
            &v(
                Some(&pk),
                "partitionKey",
                "Member must have length less than or equal to 256",
            ),
            &v(
                Some(""),
                "explicitHashKey",
                r"Member must satisfy regular expression pattern: 0|([1-9]\d{0,38})",
            ),
        ],
    );
}

#[test]
fn put_records_member_paths_and_cap_of_ten() {
    // test/putRecords.js
    assert_validation(
        Operation::PutRecords,
        json!({}),
        &[
            &v(None, "records", "Member must not be null"),
            &v(None, "streamName", "Member must not be null"),
        ],
    );
    assert_validation(
        Operation::PutRecords,
        json!({"StreamName": "", "Records": []}),
        &[
            &v(Some("[]"), "records", MIN_1),
            &v(Some(""), "streamName", NAME_PATTERN),
            &v(Some(""), "streamName", MIN_1),
        ],
    );
    assert_validation(
        Operation::PutRecords,
        json!({"StreamName": "", "Records": [{"PartitionKey": "", "Data": "", "ExplicitHashKey": ""}]}),
        &[
            &v(
                Some(""),
                "records.1.member.explicitHashKey",
                r"Member must satisfy regular expression pattern: 0|([1-9]\d{0,38})",
            ),
            &v(Some(""), "records.1.member.partitionKey", MIN_1),
            &v(Some(""), "streamName", NAME_PATTERN),
            &v(Some(""), "streamName", MIN_1),
        ],
    );
    let records: Vec<Value> = (0..501)
        .map(|_| json!({"PartitionKey": "", "Data": ""}))
        .collect();
    let entry = "com.amazonaws.kinesis.v20131202.PutRecordsRequestEntry@c965e310";
    let rendered = format!("[{}]", vec![entry; 501].join(", "));
    let mut expected = vec![v(
        Some(&rendered),
        "records",
        "Member must have length less than or equal to 500",
    )];
    for i in 1..=9 {
        expected.push(v(
            Some(""),
            &format!("records.{i}.member.partitionKey"),
            MIN_1,
        ));
    }
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    assert_validation(
        Operation::PutRecords,
        json!({"StreamName": "a", "Records": records}),
        &expected,
    );
}

#[test]
fn tags_map_texts() {
    // test/addTagsToStream.js
    assert_validation(
        Operation::AddTagsToStream,
        json!({"StreamName": "", "Tags": {}}),
        &[
            &v(Some(""), "streamName", NAME_PATTERN),
            &v(Some(""), "streamName", MIN_1),
            &v(Some("{}"), "tags", MIN_1),
        ],
    );
    // Maps render in the order the body gave them (serde_json's `json!` would sort them).
    let long_key = "a".repeat(129);
    let body = format!(r#"{{"StreamName":"s","Tags":{{"ab":"1","{long_key}":"3"}}}}"#);
    let err = decode_request(
        Operation::AddTagsToStream,
        WireFormat::Json,
        body.as_bytes(),
    )
    .unwrap_err();
    assert_eq!(
        err.message,
        format!("1 validation error detected: {}", v(
            Some(&format!("{{ab=1, {long_key}=3}}")),
            "tags",
            "Map keys must satisfy constraint: [Member must have length less than or equal to 128, \
             Member must have length greater than or equal to 1]",
        ))
    );
    let long_value = "v".repeat(257);
    assert_validation(
        Operation::AddTagsToStream,
        json!({"StreamName": "s", "Tags": {"c": long_value.clone()}}),
        &[&v(
            Some(&format!("{{c={long_value}}}")),
            "tags",
            "Map value must satisfy constraint: [Member must have length less than or equal to 256, \
             Member must have length greater than or equal to 0]",
        )],
    );
}

#[test]
fn tag_key_list_texts() {
    // test/removeTagsFromStream.js
    let long_key = "k".repeat(129);
    assert_validation(
        Operation::RemoveTagsFromStream,
        json!({"StreamName": "s", "TagKeys": ["a", long_key.clone(), "b"]}),
        &[&v(
            Some(&format!("[a, {long_key}, b]")),
            "tagKeys",
            "Member must satisfy constraint: [Member must have length less than or equal to 128, \
             Member must have length greater than or equal to 1]",
        )],
    );
    let keys: Vec<String> = (1..=51).map(|i| i.to_string()).collect();
    assert_validation(
        Operation::RemoveTagsFromStream,
        json!({"StreamName": "s", "TagKeys": keys}),
        &[&v(
            Some(&format!("[{}]", keys.join(", "))),
            "tagKeys",
            "Member must have length less than or equal to 50",
        )],
    );
}

#[test]
fn merge_and_split_shards() {
    // test/mergeShards.js, test/splitShard.js
    assert_validation(
        Operation::MergeShards,
        json!({}),
        &[
            &v(None, "streamName", "Member must not be null"),
            &v(None, "shardToMerge", "Member must not be null"),
            &v(None, "adjacentShardToMerge", "Member must not be null"),
        ],
    );
    // A StreamARN stands in for the name.
    assert_validation(
        Operation::MergeShards,
        json!({"StreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/s"}),
        &[
            &v(None, "shardToMerge", "Member must not be null"),
            &v(None, "adjacentShardToMerge", "Member must not be null"),
        ],
    );
    assert_validation(
        Operation::SplitShard,
        json!({"StreamName": "s", "ShardToSplit": "", "NewStartingHashKey": ""}),
        &[
            &v(Some(""), "shardToSplit", NAME_PATTERN),
            &v(Some(""), "shardToSplit", MIN_1),
            &v(
                Some(""),
                "newStartingHashKey",
                r"Member must satisfy regular expression pattern: 0|([1-9]\d{0,38})",
            ),
        ],
    );
}

#[test]
fn arns_and_stream_ids() {
    assert_validation(
        Operation::DescribeStreamSummary,
        json!({"StreamARN": "arn:aws:kinesis:us-east-1:1:stream/s", "StreamId": "x"}),
        &[
            &v(
                Some("arn:aws:kinesis:us-east-1:1:stream/s"),
                "streamARN",
                r"Member must satisfy regular expression pattern: arn:aws.*:kinesis:.*:\d{12}:stream/\S+",
            ),
            &v(
                Some("x"),
                "streamId",
                "Member must satisfy regular expression pattern: [a-z0-9]{20}-[a-z0-9]{3}",
            ),
        ],
    );
    assert_validation(
        Operation::RegisterStreamConsumer,
        json!({}),
        &[
            &v(None, "streamARN", "Member must not be null"),
            &v(None, "consumerName", "Member must not be null"),
        ],
    );
    assert_validation(
        Operation::SubscribeToShard,
        json!({"ConsumerARN": "arn:aws:kinesis:us-east-1:111111111111:stream/s", "ShardId": "shardId-0", "StartingPosition": {"Type": "LATEST", "SequenceNumber": "01"}}),
        &[
            &v(
                Some("arn:aws:kinesis:us-east-1:111111111111:stream/s"),
                "consumerARN",
                r"Member must satisfy regular expression pattern: ^(arn):aws.*:kinesis:.*:\d{12}:.*stream\/[a-zA-Z0-9_.-]+\/consumer\/[a-zA-Z0-9_.-]+:[0-9]+",
            ),
            &v(
                Some("01"),
                "startingPosition.sequenceNumber",
                r"Member must satisfy regular expression pattern: 0|([1-9]\d{0,128})",
            ),
        ],
    );
}

#[test]
fn enhanced_monitoring_enum_list() {
    assert_validation(
        Operation::EnableEnhancedMonitoring,
        json!({"StreamName": "s", "ShardLevelMetrics": ["IncomingBytes", "Nope"]}),
        &[&v(
            Some("[IncomingBytes, Nope]"),
            "shardLevelMetrics",
            "Member must satisfy constraint: [Member must satisfy enum value set: [IncomingBytes, IncomingRecords, \
             OutgoingBytes, OutgoingRecords, WriteProvisionedThroughputExceeded, ReadProvisionedThroughputExceeded, \
             IteratorAgeMilliseconds, ALL]]",
        )],
    );
}

#[test]
fn utf16_lengths_count_like_java() {
    // 128 astral characters are 256 UTF-16 units: too long for a 128-unit tag key.
    let key: String = std::iter::repeat_n('😀', 65).collect();
    let err = error(
        Operation::RemoveTagsFromStream,
        json!({"StreamName": "s", "TagKeys": [key]}),
    );
    assert_eq!(err.kind, ErrorKind::Validation);
}

// --- SerializationException -------------------------------------------------------------------

const NUMBER: &str = "class com.amazon.coral.value.json.numbers.TruncatingBigNumber";

/// test/helpers.js::assertType, per type: the value sent and AWS's message.
fn type_cases(kind: &str) -> Vec<(Value, String)> {
    let structure = "Start of structure or map found where not expected.".to_owned();
    let list = "Start of list found where not expected".to_owned();
    match kind {
        "String" => vec![
            (json!(true), "class java.lang.Boolean can not be converted to an String".into()),
            (json!(23), format!("{NUMBER} can not be converted to an String")),
            (json!(-2147483648i64), format!("{NUMBER} can not be converted to an String")),
            (json!(2147483648i64), format!("{NUMBER} can not be converted to an String")),
            (json!(34.56), format!("{NUMBER} can not be converted to an String")),
            (json!([]), list),
            (json!({}), structure),
        ],
        "Integer" => vec![
            (json!("23"), "class java.lang.String can not be converted to an Integer".into()),
            (json!(true), "class java.lang.Boolean can not be converted to an Integer".into()),
            (json!([]), list),
            (json!({}), structure),
        ],
        "Boolean" => vec![
            (json!("23"), "'23' can not be converted to an Boolean".into()),
            (json!("hello"), "'HELLO' can not be converted to an Boolean".into()),
            (json!(23), format!("{NUMBER} can not be converted to an Boolean")),
            (json!(-2147483648i64), format!("{NUMBER} can not be converted to an Boolean")),
            (json!([]), list),
            (json!({}), structure),
        ],
        "Blob" => vec![
            (json!(true), "class java.lang.Boolean can not be converted to a Blob".into()),
            (json!(23), format!("{NUMBER} can not be converted to a Blob")),
            (json!(34.56), format!("{NUMBER} can not be converted to a Blob")),
            (json!([]), list),
            (json!({}), structure),
            (
                json!("23456"),
                "'23456' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: 5"
                    .into(),
            ),
            (json!("=+/="), "'=+/=' can not be converted to a Blob: Invalid Base64 character: '='".into()),
            (
                json!("+/+="),
                "'+/+=' can not be converted to a Blob: Invalid last non-pad Base64 character dectected".into(),
            ),
        ],
        "Timestamp" => vec![
            (json!("23"), "class java.lang.String can not be converted to milliseconds since epoch".into()),
            (json!(true), "class java.lang.Boolean can not be converted to milliseconds since epoch".into()),
            (json!([]), list),
            (json!({}), structure),
        ],
        "List" => vec![
            (json!("23"), "Expected list or null".into()),
            (json!(true), "Expected list or null".into()),
            (json!(23), "Expected list or null".into()),
            (json!(34.56), "Expected list or null".into()),
            (json!({}), structure),
        ],
        "Map" => vec![
            (json!("23"), "Expected map or null".into()),
            (json!(true), "Expected map or null".into()),
            (json!(23), "Expected map or null".into()),
            (json!(34.56), "Expected map or null".into()),
            (json!([]), list),
        ],
        "Structure" => vec![
            (json!("23"), "Expected null".into()),
            (json!(true), "Expected null".into()),
            (json!(23), "Expected null".into()),
            (json!(34.56), "Expected null".into()),
            (json!([]), list),
        ],
        _ => unreachable!(),
    }
}

/// Puts `value` at the dotted `path` (a `0` piece is the first list element), as
/// test/helpers.js::assertType builds its bodies.
fn body_at(path: &str, value: Value) -> Value {
    let pieces: Vec<&str> = path.split('.').collect();
    fn build(pieces: &[&str], value: Value) -> Value {
        match pieces {
            [] => value,
            [first, rest @ ..] => {
                let inner = build(rest, value);
                if *first == "0" {
                    json!([inner])
                } else {
                    let mut m = serde_json::Map::new();
                    m.insert(first.to_string(), inner);
                    Value::Object(m)
                }
            }
        }
    }
    build(&pieces, value)
}

#[test]
fn type_errors_for_every_kind() {
    let fields: &[(Operation, &str, &str)] = &[
        // test/createStream.js
        (Operation::CreateStream, "StreamName", "String"),
        (Operation::CreateStream, "ShardCount", "Integer"),
        (Operation::CreateStream, "StreamModeDetails", "Structure"),
        (Operation::CreateStream, "Tags", "Map"),
        // test/addTagsToStream.js
        (Operation::AddTagsToStream, "Tags", "Map"),
        (Operation::AddTagsToStream, "Tags.a", "String"),
        // test/describeStream.js
        (Operation::DescribeStream, "Limit", "Integer"),
        (Operation::DescribeStream, "ExclusiveStartShardId", "String"),
        (
            Operation::DeleteStream,
            "EnforceConsumerDeletion",
            "Boolean",
        ),
        // test/getShardIterator.js
        (Operation::GetShardIterator, "Timestamp", "Timestamp"),
        (Operation::GetShardIterator, "ShardIteratorType", "String"),
        // test/listShards.js
        (
            Operation::ListShards,
            "StreamCreationTimestamp",
            "Timestamp",
        ),
        (Operation::ListShards, "NextToken", "String"),
        (Operation::ListShards, "ShardFilter", "Structure"),
        (Operation::ListShards, "ShardFilter.Timestamp", "Timestamp"),
        // test/putRecord.js
        (Operation::PutRecord, "Data", "Blob"),
        (Operation::PutRecord, "PartitionKey", "String"),
        (Operation::PutRecord, "ExplicitHashKey", "String"),
        // test/putRecords.js
        (Operation::PutRecords, "Records", "List"),
        (Operation::PutRecords, "Records.0", "Structure"),
        (Operation::PutRecords, "Records.0.Data", "Blob"),
        (Operation::PutRecords, "Records.0.PartitionKey", "String"),
        // test/removeTagsFromStream.js
        (Operation::RemoveTagsFromStream, "TagKeys", "List"),
        (Operation::RemoveTagsFromStream, "TagKeys.0", "String"),
        // test/getRecords.js
        (Operation::GetRecords, "Limit", "Integer"),
        (Operation::GetRecords, "ShardIterator", "String"),
        (Operation::SubscribeToShard, "StartingPosition", "Structure"),
    ];
    for (op, path, kind) in fields {
        for (value, message) in type_cases(kind) {
            let body = body_at(path, value.clone());
            let err = error(*op, body);
            assert_eq!(err.kind, ErrorKind::Serialization, "{op} {path} {value}");
            assert_eq!(err.message, message, "{op} {path} {value}");
        }
    }
}

#[test]
fn type_errors_in_cbor() {
    use ciborium::Value as V;
    // A byte string where a string is expected is a structure to Coral.
    let err = cbor_error(
        Operation::DescribeStream,
        V::Map(vec![(V::Text("StreamName".into()), V::Bytes(vec![1]))]),
    );
    assert_eq!(
        err.message,
        "Start of structure or map found where not expected."
    );
    let err = cbor_error(
        Operation::DescribeStream,
        V::Map(vec![(V::Text("Limit".into()), V::Text("3".into()))]),
    );
    assert_eq!(
        err.message,
        "class java.lang.String can not be converted to an Integer"
    );
}

// --- Error bodies -----------------------------------------------------------------------------

#[test]
fn error_bodies() {
    let not_found = ApiError::stream_not_found("wrong-stream-name", "111111111111");
    assert_eq!(
        String::from_utf8(encode_error(WireFormat::Json, &not_found)).unwrap(),
        r#"{"__type":"ResourceNotFoundException","message":"Stream wrong-stream-name under account 111111111111 not found."}"#
    );
    let ser = ApiError::serialization("Expected null");
    assert_eq!(
        String::from_utf8(encode_error(WireFormat::Json, &ser)).unwrap(),
        r#"{"__type":"SerializationException","Message":"Expected null"}"#
    );
    assert_eq!(
        String::from_utf8(encode_error(
            WireFormat::Json,
            &ApiError::unknown_operation()
        ))
        .unwrap(),
        r#"{"__type":"UnknownOperationException"}"#
    );
    assert_eq!(
        String::from_utf8(encode_error(
            WireFormat::Json,
            &ApiError::internal_failure()
        ))
        .unwrap(),
        r#"{"__type":"InternalFailure"}"#
    );
    assert_eq!(ApiError::internal_failure().http_status(), 500);

    // CBOR: the same map (the recorded AWS CBOR response in kinesis-api.md §1.1).
    let cbor = encode_error(WireFormat::Cbor, &not_found);
    let value: ciborium::Value = ciborium::from_reader(&cbor[..]).unwrap();
    assert_eq!(
        value,
        ciborium::Value::Map(vec![
            (
                ciborium::Value::Text("__type".into()),
                ciborium::Value::Text("ResourceNotFoundException".into())
            ),
            (
                ciborium::Value::Text("message".into()),
                ciborium::Value::Text(
                    "Stream wrong-stream-name under account 111111111111 not found.".into()
                )
            ),
        ])
    );
}
