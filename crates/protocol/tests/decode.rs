//! Happy-path decoding of every operation in both formats, through the public API.

use levee_protocol::types::*;
use levee_protocol::{
    decode_request, encode_response, Blob, ErrorKind, Operation, Request, Timestamp, WireFormat,
};
use serde_json::json;

const STREAM_ARN: &str = "arn:aws:kinesis:us-east-1:111111111111:stream/s1";
const CONSUMER_ARN: &str =
    "arn:aws:kinesis:us-east-1:111111111111:stream/s1/consumer/c1:1700000000";

fn decode_json(op: Operation, body: serde_json::Value) -> Request {
    let bytes = serde_json::to_vec(&body).unwrap();
    match decode_request(op, WireFormat::Json, &bytes) {
        Ok(r) => r,
        Err(e) => panic!("{op}: {e}"),
    }
}

/// Encodes `input` as a CBOR request body (as the Java SDK would), decodes it, and checks both
/// formats give back the same input.
fn round_trip(op: Operation, expected: Request) {
    let (json_body, cbor_body) = bodies(&expected);
    for (format, body) in [(WireFormat::Json, json_body), (WireFormat::Cbor, cbor_body)] {
        let decoded =
            decode_request(op, format, &body).unwrap_or_else(|e| panic!("{op} {format:?}: {e}"));
        assert_eq!(decoded, expected, "{op} {format:?}");
        assert_eq!(decoded.operation(), op);
    }
}

fn bodies(request: &Request) -> (Vec<u8>, Vec<u8>) {
    macro_rules! both {
        ($v:expr) => {
            (
                encode_response(WireFormat::Json, $v),
                encode_response(WireFormat::Cbor, $v),
            )
        };
    }
    match request {
        Request::AddTagsToStream(v) => both!(v),
        Request::CreateStream(v) => both!(v),
        Request::DecreaseStreamRetentionPeriod(v) | Request::IncreaseStreamRetentionPeriod(v) => {
            both!(v)
        }
        Request::DeleteResourcePolicy(v)
        | Request::GetResourcePolicy(v)
        | Request::ListTagsForResource(v) => {
            both!(v)
        }
        Request::DeleteStream(v) => both!(v),
        Request::DeregisterStreamConsumer(v) | Request::DescribeStreamConsumer(v) => both!(v),
        Request::DescribeAccountSettings(v) | Request::DescribeLimits(v) => both!(v),
        Request::DescribeStream(v) => both!(v),
        Request::DescribeStreamSummary(v) => both!(v),
        Request::DisableEnhancedMonitoring(v) | Request::EnableEnhancedMonitoring(v) => both!(v),
        Request::GetRecords(v) => both!(v),
        Request::GetShardIterator(v) => both!(v),
        Request::ListShards(v) => both!(v),
        Request::ListStreamConsumers(v) => both!(v),
        Request::ListStreams(v) => both!(v),
        Request::ListTagsForStream(v) => both!(v),
        Request::MergeShards(v) => both!(v),
        Request::PutRecord(v) => both!(v),
        Request::PutRecords(v) => both!(v),
        Request::PutResourcePolicy(v) => both!(v),
        Request::RegisterStreamConsumer(v) => both!(v),
        Request::RemoveTagsFromStream(v) => both!(v),
        Request::SplitShard(v) => both!(v),
        Request::StartStreamEncryption(v) | Request::StopStreamEncryption(v) => both!(v),
        Request::SubscribeToShard(v) => both!(v),
        Request::TagResource(v) => both!(v),
        Request::UntagResource(v) => both!(v),
        Request::UpdateAccountSettings(v) => both!(v),
        Request::UpdateMaxRecordSize(v) => both!(v),
        Request::UpdateShardCount(v) => both!(v),
        Request::UpdateStreamMode(v) => both!(v),
        Request::UpdateStreamWarmThroughput(v) => both!(v),
    }
}

fn tags(pairs: &[(&str, &str)]) -> TagMap {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// One full-featured example request per operation.
pub fn examples() -> Vec<(Operation, Request)> {
    use Operation as O;
    let stream = |name: &str| Some(name.to_owned());
    vec![
        (
            O::AddTagsToStream,
            Request::AddTagsToStream(AddTagsToStreamInput {
                stream_name: stream("s1"),
                tags: tags(&[("a", "1"), ("b", "")]),
                stream_arn: None,
                stream_id: None,
            }),
        ),
        (
            O::CreateStream,
            Request::CreateStream(CreateStreamInput {
                stream_name: "s1".into(),
                shard_count: Some(3),
                stream_mode_details: Some(StreamModeDetails {
                    stream_mode: StreamMode::OnDemand,
                }),
                tags: Some(tags(&[("k", "v")])),
                warm_throughput_mibps: Some(0),
                max_record_size_in_kib: Some(1024),
            }),
        ),
        (
            O::DecreaseStreamRetentionPeriod,
            Request::DecreaseStreamRetentionPeriod(StreamRetentionPeriodInput {
                stream_name: None,
                retention_period_hours: 24,
                stream_arn: Some(STREAM_ARN.into()),
                stream_id: None,
            }),
        ),
        (
            O::DeleteResourcePolicy,
            Request::DeleteResourcePolicy(ResourceArnInput {
                resource_arn: STREAM_ARN.into(),
                stream_id: None,
            }),
        ),
        (
            O::DeleteStream,
            Request::DeleteStream(DeleteStreamInput {
                stream_name: stream("s1"),
                enforce_consumer_deletion: Some(true),
                stream_arn: Some(STREAM_ARN.into()),
                stream_id: Some("abcdefghij0123456789-abc".into()),
            }),
        ),
        (
            O::DeregisterStreamConsumer,
            Request::DeregisterStreamConsumer(ConsumerRefInput {
                consumer_arn: Some(CONSUMER_ARN.into()),
                ..Default::default()
            }),
        ),
        (
            O::DescribeAccountSettings,
            Request::DescribeAccountSettings(EmptyInput {}),
        ),
        (O::DescribeLimits, Request::DescribeLimits(EmptyInput {})),
        (
            O::DescribeStream,
            Request::DescribeStream(DescribeStreamInput {
                stream_name: stream("s1"),
                limit: Some(100),
                exclusive_start_shard_id: Some("shardId-000000000001".into()),
                ..Default::default()
            }),
        ),
        (
            O::DescribeStreamConsumer,
            Request::DescribeStreamConsumer(ConsumerRefInput {
                stream_arn: Some(STREAM_ARN.into()),
                consumer_name: Some("c1".into()),
                ..Default::default()
            }),
        ),
        (
            O::DescribeStreamSummary,
            Request::DescribeStreamSummary(StreamRefInput {
                stream_name: stream("s1"),
                ..Default::default()
            }),
        ),
        (
            O::DisableEnhancedMonitoring,
            Request::DisableEnhancedMonitoring(EnhancedMonitoringInput {
                stream_name: stream("s1"),
                shard_level_metrics: vec![MetricsName::All],
                stream_arn: None,
                stream_id: None,
            }),
        ),
        (
            O::EnableEnhancedMonitoring,
            Request::EnableEnhancedMonitoring(EnhancedMonitoringInput {
                stream_name: stream("s1"),
                shard_level_metrics: vec![
                    MetricsName::IncomingBytes,
                    MetricsName::IteratorAgeMilliseconds,
                ],
                stream_arn: None,
                stream_id: None,
            }),
        ),
        (
            O::GetRecords,
            Request::GetRecords(GetRecordsInput {
                shard_iterator: "AAAAAAAAAAE=".into(),
                limit: Some(10000),
                stream_arn: Some(STREAM_ARN.into()),
                stream_id: None,
            }),
        ),
        (
            O::GetResourcePolicy,
            Request::GetResourcePolicy(ResourceArnInput {
                resource_arn: CONSUMER_ARN.into(),
                stream_id: None,
            }),
        ),
        (
            O::GetShardIterator,
            Request::GetShardIterator(GetShardIteratorInput {
                stream_name: stream("s1"),
                shard_id: "shardId-000000000000".into(),
                shard_iterator_type: ShardIteratorType::AtTimestamp,
                starting_sequence_number: Some(
                    "49543463076548007577105092703039560359975228518395019266".into(),
                ),
                timestamp: Some(Timestamp(1_700_000_000_123)),
                stream_arn: None,
                stream_id: None,
            }),
        ),
        (
            O::IncreaseStreamRetentionPeriod,
            Request::IncreaseStreamRetentionPeriod(StreamRetentionPeriodInput {
                stream_name: stream("s1"),
                retention_period_hours: 8760,
                stream_arn: None,
                stream_id: None,
            }),
        ),
        (
            O::ListShards,
            Request::ListShards(ListShardsInput {
                stream_name: stream("s1"),
                next_token: None,
                exclusive_start_shard_id: Some("shardId-000000000000".into()),
                max_results: Some(1000),
                stream_creation_timestamp: Some(Timestamp(1_600_000_000_000)),
                shard_filter: Some(ShardFilter {
                    r#type: ShardFilterType::AtTimestamp,
                    shard_id: Some("shardId-000000000002".into()),
                    timestamp: Some(Timestamp(1_700_000_000_001)),
                }),
                stream_arn: None,
                stream_id: None,
            }),
        ),
        (
            O::ListStreamConsumers,
            Request::ListStreamConsumers(ListStreamConsumersInput {
                stream_arn: STREAM_ARN.into(),
                next_token: Some("tok".into()),
                max_results: Some(100),
                stream_creation_timestamp: Some(Timestamp(1)),
                stream_id: None,
            }),
        ),
        (
            O::ListStreams,
            Request::ListStreams(ListStreamsInput {
                limit: Some(10),
                exclusive_start_stream_name: stream("a"),
                next_token: Some("n".into()),
            }),
        ),
        (
            O::ListTagsForResource,
            Request::ListTagsForResource(ResourceArnInput {
                resource_arn: STREAM_ARN.into(),
                stream_id: None,
            }),
        ),
        (
            O::ListTagsForStream,
            Request::ListTagsForStream(ListTagsForStreamInput {
                stream_name: stream("s1"),
                exclusive_start_tag_key: Some("a".into()),
                limit: Some(50),
                ..Default::default()
            }),
        ),
        (
            O::MergeShards,
            Request::MergeShards(MergeShardsInput {
                stream_name: stream("s1"),
                shard_to_merge: "shardId-000000000000".into(),
                adjacent_shard_to_merge: "shardId-000000000001".into(),
                stream_arn: None,
                stream_id: None,
            }),
        ),
        (
            O::PutRecord,
            Request::PutRecord(PutRecordInput {
                stream_name: stream("s1"),
                data: Blob::from(b"hello\x00\xff".to_vec()),
                partition_key: "pk".into(),
                explicit_hash_key: Some("340282366920938463463374607431768211455".into()),
                sequence_number_for_ordering: Some("0".into()),
                stream_arn: None,
                stream_id: None,
            }),
        ),
        (
            O::PutRecords,
            Request::PutRecords(PutRecordsInput {
                records: vec![
                    PutRecordsRequestEntry {
                        data: Blob::from(Vec::new()),
                        explicit_hash_key: None,
                        partition_key: "a".into(),
                    },
                    PutRecordsRequestEntry {
                        data: Blob::from(vec![1, 2, 3]),
                        explicit_hash_key: Some("12".into()),
                        partition_key: "é".into(),
                    },
                ],
                stream_name: None,
                stream_arn: Some(STREAM_ARN.into()),
                stream_id: None,
            }),
        ),
        (
            O::PutResourcePolicy,
            Request::PutResourcePolicy(PutResourcePolicyInput {
                resource_arn: STREAM_ARN.into(),
                stream_id: None,
                policy: "{\"Version\":\"2012-10-17\"}".into(),
            }),
        ),
        (
            O::RegisterStreamConsumer,
            Request::RegisterStreamConsumer(RegisterStreamConsumerInput {
                stream_arn: STREAM_ARN.into(),
                consumer_name: "c1".into(),
                stream_id: None,
                tags: Some(tags(&[("t", "v")])),
            }),
        ),
        (
            O::RemoveTagsFromStream,
            Request::RemoveTagsFromStream(RemoveTagsFromStreamInput {
                stream_name: stream("s1"),
                tag_keys: vec!["a".into(), "b".into()],
                stream_arn: None,
                stream_id: None,
            }),
        ),
        (
            O::SplitShard,
            Request::SplitShard(SplitShardInput {
                stream_name: stream("s1"),
                shard_to_split: "shardId-000000000000".into(),
                new_starting_hash_key: "170141183460469231731687303715884105728".into(),
                stream_arn: None,
                stream_id: None,
            }),
        ),
        (
            O::StartStreamEncryption,
            Request::StartStreamEncryption(StreamEncryptionInput {
                stream_name: stream("s1"),
                encryption_type: EncryptionType::Kms,
                key_id: "alias/aws/kinesis".into(),
                stream_arn: None,
                stream_id: None,
            }),
        ),
        (
            O::StopStreamEncryption,
            Request::StopStreamEncryption(StreamEncryptionInput {
                stream_name: stream("s1"),
                encryption_type: EncryptionType::Kms,
                key_id: "k".into(),
                stream_arn: None,
                stream_id: None,
            }),
        ),
        (
            O::SubscribeToShard,
            Request::SubscribeToShard(SubscribeToShardInput {
                consumer_arn: CONSUMER_ARN.into(),
                stream_id: None,
                shard_id: "shardId-000000000000".into(),
                starting_position: StartingPosition {
                    r#type: ShardIteratorType::AfterSequenceNumber,
                    sequence_number: Some("1".into()),
                    timestamp: None,
                },
            }),
        ),
        (
            O::TagResource,
            Request::TagResource(TagResourceInput {
                tags: tags(&[("a", "b")]),
                resource_arn: STREAM_ARN.into(),
                stream_id: None,
            }),
        ),
        (
            O::UntagResource,
            Request::UntagResource(UntagResourceInput {
                tag_keys: vec!["a".into()],
                resource_arn: STREAM_ARN.into(),
                stream_id: None,
            }),
        ),
        (
            O::UpdateAccountSettings,
            Request::UpdateAccountSettings(UpdateAccountSettingsInput {
                minimum_throughput_billing_commitment: BillingCommitmentInput {
                    status: BillingCommitmentInputStatus::Disabled,
                },
            }),
        ),
        (
            O::UpdateMaxRecordSize,
            Request::UpdateMaxRecordSize(UpdateMaxRecordSizeInput {
                stream_arn: Some(STREAM_ARN.into()),
                stream_id: None,
                max_record_size_in_kib: 10240,
            }),
        ),
        (
            O::UpdateShardCount,
            Request::UpdateShardCount(UpdateShardCountInput {
                stream_name: stream("s1"),
                target_shard_count: 8,
                scaling_type: ScalingType::UniformScaling,
                stream_arn: None,
                stream_id: None,
            }),
        ),
        (
            O::UpdateStreamMode,
            Request::UpdateStreamMode(UpdateStreamModeInput {
                stream_arn: STREAM_ARN.into(),
                stream_id: None,
                stream_mode_details: StreamModeDetails {
                    stream_mode: StreamMode::Provisioned,
                },
                warm_throughput_mibps: Some(5),
            }),
        ),
        (
            O::UpdateStreamWarmThroughput,
            Request::UpdateStreamWarmThroughput(UpdateStreamWarmThroughputInput {
                stream_arn: None,
                stream_name: stream("s1"),
                stream_id: None,
                warm_throughput_mibps: 100,
            }),
        ),
    ]
}

#[test]
fn every_operation_has_an_example_that_round_trips_in_both_formats() {
    let examples = examples();
    let mut ops: Vec<Operation> = examples.iter().map(|(op, _)| *op).collect();
    ops.sort();
    assert_eq!(ops, Operation::ALL.to_vec());
    for (op, request) in examples {
        round_trip(op, request);
    }
}

#[test]
fn json_literals_decode() {
    // The shapes as boto3 sends them.
    let r = decode_json(
        Operation::CreateStream,
        json!({"StreamName": "s", "ShardCount": 2, "StreamModeDetails": {"StreamMode": "PROVISIONED"}}),
    );
    let Request::CreateStream(input) = r else {
        panic!()
    };
    assert_eq!(input.stream_name, "s");
    assert_eq!(input.shard_count, Some(2));
    assert_eq!(
        input.stream_mode_details.map(|d| d.stream_mode),
        Some(StreamMode::Provisioned)
    );

    let r = decode_json(
        Operation::PutRecord,
        json!({"StreamName": "s", "Data": "aGVsbG8=", "PartitionKey": "p", "Unknown": [1, 2]}),
    );
    let Request::PutRecord(input) = r else {
        panic!()
    };
    assert_eq!(input.data.as_bytes(), b"hello");

    let r = decode_json(
        Operation::GetShardIterator,
        json!({"StreamName": "s", "ShardId": "shardId-0", "ShardIteratorType": "AT_TIMESTAMP", "Timestamp": 1700000000.123}),
    );
    let Request::GetShardIterator(input) = r else {
        panic!()
    };
    assert_eq!(input.timestamp, Some(Timestamp(1_700_000_000_123)));
    assert_eq!(input.shard_iterator_type, ShardIteratorType::AtTimestamp);

    // Integral seconds, and nulls treated as absent.
    let r = decode_json(
        Operation::ListShards,
        json!({"StreamName": "s", "StreamCreationTimestamp": 1700000000, "NextToken": null}),
    );
    let Request::ListShards(input) = r else {
        panic!()
    };
    assert_eq!(
        input.stream_creation_timestamp,
        Some(Timestamp(1_700_000_000_000))
    );
    assert_eq!(input.next_token, None);

    // Floats are truncated for integers, as Coral does.
    let r = decode_json(Operation::ListStreams, json!({"Limit": 5.9}));
    assert_eq!(
        r,
        Request::ListStreams(ListStreamsInput {
            limit: Some(5),
            ..Default::default()
        })
    );

    // Booleans given as strings Coral understands.
    let r = decode_json(
        Operation::DeleteStream,
        json!({"StreamName": "s", "EnforceConsumerDeletion": "true"}),
    );
    let Request::DeleteStream(input) = r else {
        panic!()
    };
    assert_eq!(input.enforce_consumer_deletion, Some(true));
}

#[test]
fn empty_bodies() {
    // Empty JSON is `{}`.
    let r = decode_request(Operation::ListStreams, WireFormat::Json, b"").unwrap();
    assert_eq!(r, Request::ListStreams(ListStreamsInput::default()));
    let r = decode_request(Operation::DescribeLimits, WireFormat::Cbor, &[0xa0]).unwrap();
    assert_eq!(r, Request::DescribeLimits(EmptyInput {}));
    // Empty CBOR, non-objects and garbage: SerializationException without a message.
    for (format, body) in [
        (WireFormat::Cbor, &b""[..]),
        (WireFormat::Json, b"[]"),
        (WireFormat::Json, b"null"),
        (WireFormat::Json, b"\"x\""),
        (WireFormat::Json, b"{"),
        (WireFormat::Json, b"hello"),
        (WireFormat::Cbor, &[0x80]),
        (WireFormat::Cbor, &[0xff]),
    ] {
        let err = decode_request(Operation::ListStreams, format, body).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Serialization, "{body:?}");
        assert_eq!(err.message, "", "{body:?}");
    }
}

#[test]
fn cbor_timestamps_are_tagged_milliseconds() {
    use ciborium::Value as V;
    let body = V::Map(vec![
        (V::Text("StreamName".into()), V::Text("s".into())),
        (
            V::Text("ShardId".into()),
            V::Text("shardId-000000000000".into()),
        ),
        (
            V::Text("ShardIteratorType".into()),
            V::Text("AT_TIMESTAMP".into()),
        ),
        (
            V::Text("Timestamp".into()),
            V::Tag(1, Box::new(V::Integer(1_700_000_000_123u64.into()))),
        ),
    ]);
    let mut bytes = Vec::new();
    ciborium::into_writer(&body, &mut bytes).unwrap();
    let Request::GetShardIterator(input) =
        decode_request(Operation::GetShardIterator, WireFormat::Cbor, &bytes).unwrap()
    else {
        panic!()
    };
    assert_eq!(input.timestamp, Some(Timestamp(1_700_000_000_123)));
}

#[test]
fn cbor_blob_may_be_bytes_or_base64_text() {
    use ciborium::Value as V;
    for data in [V::Bytes(b"hi".to_vec()), V::Text("aGk=".into())] {
        let body = V::Map(vec![
            (V::Text("StreamName".into()), V::Text("s".into())),
            (V::Text("PartitionKey".into()), V::Text("p".into())),
            (V::Text("Data".into()), data),
        ]);
        let mut bytes = Vec::new();
        ciborium::into_writer(&body, &mut bytes).unwrap();
        let Request::PutRecord(input) =
            decode_request(Operation::PutRecord, WireFormat::Cbor, &bytes).unwrap()
        else {
            panic!()
        };
        assert_eq!(input.data.as_bytes(), b"hi");
    }
}

#[test]
fn hostile_bodies_fail_cleanly() {
    let mut deep_json = "[".repeat(100_000);
    deep_json.push_str(&"]".repeat(100_000));
    let deep_cbor = vec![0x81u8; 100_000];
    let bodies: Vec<(WireFormat, Vec<u8>)> = vec![
        (WireFormat::Json, deep_json.into_bytes()),
        (WireFormat::Cbor, deep_cbor),
        // Huge declared lengths with nothing behind them.
        (
            WireFormat::Cbor,
            vec![0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ),
        (
            WireFormat::Cbor,
            vec![0x7b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ),
        (
            WireFormat::Cbor,
            vec![0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ),
        (
            WireFormat::Cbor,
            vec![0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ),
    ];
    for &op in Operation::ALL {
        for (format, body) in &bodies {
            let err = decode_request(op, *format, body).unwrap_err();
            assert_eq!(err.kind, ErrorKind::Serialization);
        }
    }
}
