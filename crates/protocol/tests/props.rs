//! Property tests: robustness of `decode_request`, round trips, and the timestamp encodings.

use levee_protocol::types::*;
use levee_protocol::{
    decode_request, decode_response, encode_response, Blob, Operation, Request, Timestamp,
    WireFormat, TIMESTAMP_JSON_MAX_MS,
};
use proptest::prelude::*;

fn any_format() -> impl Strategy<Value = WireFormat> {
    prop_oneof![Just(WireFormat::Json), Just(WireFormat::Cbor)]
}

fn any_operation() -> impl Strategy<Value = Operation> {
    (0..Operation::ALL.len()).prop_map(|i| Operation::ALL[i])
}

/// Member names that appear in inputs, so random trees hit the type checks and validators.
const NAMES: &[&str] = &[
    "StreamName",
    "StreamARN",
    "StreamId",
    "ShardCount",
    "StreamModeDetails",
    "StreamMode",
    "Tags",
    "Data",
    "PartitionKey",
    "ExplicitHashKey",
    "Records",
    "ShardId",
    "ShardIteratorType",
    "Timestamp",
    "Limit",
    "ShardIterator",
    "ShardFilter",
    "Type",
    "TagKeys",
    "ShardLevelMetrics",
    "StartingPosition",
    "SequenceNumber",
    "ConsumerARN",
    "ResourceARN",
    "RetentionPeriodHours",
    "MinimumThroughputBillingCommitment",
    "Status",
    "MaxRecordSizeInKiB",
    "X",
];

fn any_cbor_value() -> impl Strategy<Value = ciborium::Value> {
    use ciborium::Value as V;
    let leaf = prop_oneof![
        Just(V::Null),
        any::<bool>().prop_map(V::Bool),
        any::<i64>().prop_map(|i| V::Integer(i.into())),
        any::<u64>().prop_map(|i| V::Integer(i.into())),
        any::<f64>().prop_map(V::Float),
        "[a-zA-Z0-9=+/_.-]{0,12}".prop_map(V::Text),
        ".{0,8}".prop_map(V::Text),
        proptest::collection::vec(any::<u8>(), 0..8).prop_map(V::Bytes),
        (0u64..4, any::<i64>()).prop_map(|(t, i)| V::Tag(t, Box::new(V::Integer(i.into())))),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(V::Array),
            proptest::collection::vec(((0..NAMES.len()).prop_map(|i| NAMES[i]), inner), 0..6)
                .prop_map(|members| V::Map(
                    members
                        .into_iter()
                        .map(|(k, v)| (V::Text(k.to_owned()), v))
                        .collect()
                )),
        ]
    })
}

fn any_body() -> impl Strategy<Value = ciborium::Value> {
    use ciborium::Value as V;
    proptest::collection::vec(
        ((0..NAMES.len()).prop_map(|i| NAMES[i]), any_cbor_value()),
        0..8,
    )
    .prop_map(|members| {
        V::Map(
            members
                .into_iter()
                .map(|(k, v)| (V::Text(k.to_owned()), v))
                .collect(),
        )
    })
}

/// The JSON text of a CBOR value (bytes and tags become what JSON can hold).
fn to_json(value: &ciborium::Value) -> serde_json::Value {
    use ciborium::Value as V;
    match value {
        V::Null => serde_json::Value::Null,
        V::Bool(b) => (*b).into(),
        V::Integer(i) => {
            let i = i128::from(*i);
            match i64::try_from(i) {
                Ok(i) => i.into(),
                Err(_) => (i as f64).into(),
            }
        }
        V::Float(f) => serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into),
        V::Text(s) => s.clone().into(),
        V::Bytes(b) => levee_protocol::base64_encode(b).into(),
        V::Tag(_, inner) => to_json(inner),
        V::Array(items) => items.iter().map(to_json).collect(),
        V::Map(members) => members
            .iter()
            .filter_map(|(k, v)| k.as_text().map(|k| (k.to_owned(), to_json(v))))
            .collect::<serde_json::Map<_, _>>()
            .into(),
        _ => serde_json::Value::Null,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decode_never_panics_on_bytes(op in any_operation(), format in any_format(),
                                    body in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_request(op, format, &body);
    }

    #[test]
    fn decode_never_panics_on_structured_bodies(op in any_operation(), body in any_body()) {
        let mut cbor = Vec::new();
        ciborium::into_writer(&body, &mut cbor).unwrap();
        let cbor_result = decode_request(op, WireFormat::Cbor, &cbor);
        let json = serde_json::to_vec(&to_json(&body)).unwrap();
        let json_result = decode_request(op, WireFormat::Json, &json);
        // Either outcome is fine; errors are always 400s with a known type.
        for result in [cbor_result, json_result] {
            if let Err(e) = result {
                prop_assert_eq!(e.http_status(), 400);
            }
        }
    }

    #[test]
    fn json_timestamps_have_at_most_three_decimals_and_no_exponent(ms in any::<u64>()) {
        let text = String::from_utf8(encode_response(WireFormat::Json, &Timestamp(ms))).unwrap();
        prop_assert!(!text.contains(['e', 'E']), "{}", text);
        let decimals = text.split_once('.').map_or(0, |(_, d)| d.len());
        prop_assert!(decimals <= 3, "{}", text);
        let back: Timestamp = decode_response(WireFormat::Json, text.as_bytes()).unwrap();
        prop_assert_eq!(back, Timestamp(ms.min(TIMESTAMP_JSON_MAX_MS)));
    }

    #[test]
    fn cbor_timestamps_are_tag_one_and_an_integer(ms in any::<u64>()) {
        let bytes = encode_response(WireFormat::Cbor, &Timestamp(ms));
        prop_assert_eq!(bytes.first(), Some(&0xc1));
        // Major type 0 (unsigned integer): 0x00..=0x1b.
        prop_assert!(bytes.get(1).is_some_and(|b| *b <= 0x1b), "{:02x?}", bytes);
        let back: Timestamp = decode_response(WireFormat::Cbor, &bytes).unwrap();
        prop_assert_eq!(back, Timestamp(ms));
    }

    #[test]
    fn get_records_output_round_trips(output in any_get_records_output(), format in any_format()) {
        let bytes = encode_response(format, &output);
        if format == WireFormat::Cbor {
            assert_cbor_timestamps_are_integers(&bytes);
        }
        let back: GetRecordsOutput = decode_response(format, &bytes).unwrap();
        prop_assert_eq!(back, output);
    }

    #[test]
    fn cbor_records_never_hold_tag_one_and_a_float(
        arrivals in proptest::collection::vec(
            // Integers whose own bytes do not hold the pair.
            any::<u64>().prop_filter("no c1 fb inside", |ms| !ms.to_be_bytes().windows(2).any(|w| w == [0xc1, 0xfb])),
            1..20,
        )
    ) {
        // ASCII-only strings and data, so any 0xc1 0xfb pair would be a timestamp's.
        let records = arrivals
            .iter()
            .map(|&ms| Record {
                sequence_number: "1".into(),
                approximate_arrival_timestamp: Some(Timestamp(ms)),
                data: Blob::from(b"abc".to_vec()),
                partition_key: "pk".into(),
                encryption_type: None,
            })
            .collect();
        let output = GetRecordsOutput { records, millis_behind_latest: Some(0), ..Default::default() };
        let bytes = encode_response(WireFormat::Cbor, &output);
        prop_assert!(!bytes.windows(2).any(|w| w == [0xc1, 0xfb]));
        assert_cbor_timestamps_are_integers(&bytes);
    }

    #[test]
    fn put_records_input_round_trips(input in any_put_records_input(), format in any_format()) {
        let bytes = encode_response(format, &input);
        let decoded = decode_request(Operation::PutRecords, format, &bytes).unwrap();
        prop_assert_eq!(decoded, Request::PutRecords(input));
    }

    #[test]
    fn list_shards_input_round_trips(input in any_list_shards_input(), format in any_format()) {
        let bytes = encode_response(format, &input);
        let decoded = decode_request(Operation::ListShards, format, &bytes).unwrap();
        prop_assert_eq!(decoded, Request::ListShards(input));
    }
}

fn assert_cbor_timestamps_are_integers(bytes: &[u8]) {
    fn walk(v: &ciborium::Value) {
        use ciborium::Value as V;
        match v {
            V::Tag(1, inner) => assert!(matches!(**inner, V::Integer(_)), "tag 1 + {inner:?}"),
            V::Tag(_, inner) => walk(inner),
            V::Array(items) => items.iter().for_each(walk),
            V::Map(members) => members.iter().for_each(|(k, v)| {
                walk(k);
                walk(v)
            }),
            _ => {}
        }
    }
    let value: ciborium::Value = ciborium::from_reader(bytes).unwrap();
    walk(&value);
}

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_.-]{1,128}"
}

fn decimal(max_tail: usize) -> impl Strategy<Value = String> {
    let nonzero = proptest::string::string_regex(&format!("[1-9][0-9]{{0,{max_tail}}}")).unwrap();
    prop_oneof![Just("0".to_owned()), nonzero]
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    // 2001..2286 in milliseconds: 8-byte CBOR integers, 13-digit JSON numbers.
    (1_000_000_000_000u64..9_999_999_999_999).prop_map(Timestamp)
}

fn any_record() -> impl Strategy<Value = Record> {
    (
        decimal(60),
        proptest::option::of(timestamp()),
        proptest::collection::vec(any::<u8>(), 0..64),
        ".{1,20}",
        proptest::option::of(prop_oneof![
            Just(EncryptionType::None),
            Just(EncryptionType::Kms)
        ]),
    )
        .prop_map(
            |(
                sequence_number,
                approximate_arrival_timestamp,
                data,
                partition_key,
                encryption_type,
            )| Record {
                sequence_number,
                approximate_arrival_timestamp,
                data: Blob::from(data),
                partition_key,
                encryption_type,
            },
        )
}

fn any_child_shard() -> impl Strategy<Value = ChildShard> {
    (
        name(),
        proptest::collection::vec(name(), 1..3),
        decimal(38),
        decimal(38),
    )
        .prop_map(
            |(shard_id, parent_shards, starting_hash_key, ending_hash_key)| ChildShard {
                shard_id,
                parent_shards,
                hash_key_range: HashKeyRange {
                    starting_hash_key,
                    ending_hash_key,
                },
            },
        )
}

fn any_get_records_output() -> impl Strategy<Value = GetRecordsOutput> {
    (
        proptest::collection::vec(any_record(), 0..5),
        proptest::option::of("[A-Za-z0-9+/=]{1,64}"),
        proptest::option::of(0i64..i64::MAX),
        proptest::option::of(proptest::collection::vec(any_child_shard(), 0..3)),
    )
        .prop_map(
            |(records, next_shard_iterator, millis_behind_latest, child_shards)| GetRecordsOutput {
                records,
                next_shard_iterator,
                millis_behind_latest,
                child_shards,
            },
        )
}

fn any_put_records_input() -> impl Strategy<Value = PutRecordsInput> {
    let entry = (
        proptest::collection::vec(any::<u8>(), 0..64),
        proptest::option::of(decimal(38)),
        ".{1,64}",
    )
        .prop_map(
            |(data, explicit_hash_key, partition_key)| PutRecordsRequestEntry {
                data: Blob::from(data),
                explicit_hash_key,
                partition_key,
            },
        );
    (
        proptest::collection::vec(entry, 1..20),
        proptest::option::of(name()),
    )
        .prop_map(|(records, stream_name)| PutRecordsInput {
            records,
            // One of the two names the stream (with neither, validation refuses it).
            stream_arn: stream_name
                .is_none()
                .then(|| "arn:aws:kinesis:us-east-1:000000000000:stream/s".to_owned()),
            stream_name,
            stream_id: None,
        })
}

fn any_list_shards_input() -> impl Strategy<Value = ListShardsInput> {
    let filter_type = (0..ShardFilterType::ALL.len()).prop_map(|i| ShardFilterType::ALL[i]);
    let filter = (
        filter_type,
        proptest::option::of(name()),
        proptest::option::of(timestamp()),
    )
        .prop_map(|(r#type, shard_id, timestamp)| ShardFilter {
            r#type,
            shard_id,
            timestamp,
        });
    (
        proptest::option::of(name()),
        proptest::option::of("[a-zA-Z0-9]{1,40}"),
        proptest::option::of(1i32..=10000),
        proptest::option::of(timestamp()),
        proptest::option::of(filter),
    )
        .prop_map(
            |(stream_name, next_token, max_results, stream_creation_timestamp, shard_filter)| {
                ListShardsInput {
                    stream_name,
                    next_token,
                    max_results,
                    stream_creation_timestamp,
                    shard_filter,
                    ..Default::default()
                }
            },
        )
}

#[test]
fn json_timestamp_examples() {
    let render = |ms| String::from_utf8(encode_response(WireFormat::Json, &Timestamp(ms))).unwrap();
    assert_eq!(render(1_700_000_000_123), "1700000000.123");
    assert_eq!(render(1_700_000_000_000), "1700000000.0");
    assert_eq!(render(1), "0.001");
    assert_eq!(render(0), "0.0");
}

fn any_output_record() -> impl Strategy<Value = Record> {
    (
        prop_oneof!["[0-9]{1,56}", ".{0,8}"],
        proptest::option::of(prop_oneof![
            0u64..=TIMESTAMP_JSON_MAX_MS,
            0u64..(1 << 44),
            (0u64..20_000_000_000).prop_map(|s| s * 1000),
            (0u64..20_000_000_000).prop_map(|s| s * 1000 + 500),
            (0u64..20_000_000_000).prop_map(|s| s * 1000 + 120),
        ]),
        proptest::collection::vec(any::<u8>(), 0..40),
        ".{0,12}",
        any::<bool>(),
    )
        .prop_map(|(seq, ts, data, pk, encrypted)| Record {
            sequence_number: seq,
            approximate_arrival_timestamp: ts.map(Timestamp),
            data: Blob(data.into()),
            partition_key: pk,
            encryption_type: encrypted.then_some(EncryptionType::Kms),
        })
}

proptest! {
    /// The hand-written GetRecords JSON is byte for byte serde_json's, for any records
    /// (partition keys and iterators with quotes, control characters, non-ASCII).
    #[test]
    fn get_records_json_is_serde_json(
        records in proptest::collection::vec(any_output_record(), 0..5),
        next in proptest::option::of(".{0,20}"),
        behind in proptest::option::of(any::<i64>()),
        children in proptest::option::of(proptest::collection::vec(("[a-zA-Z0-9-]{1,20}", "[0-9]{1,5}"), 0..3)),
    ) {
        let out = GetRecordsOutput {
            records,
            next_shard_iterator: next,
            millis_behind_latest: behind,
            child_shards: children.map(|c| c.into_iter().map(|(id, key)| ChildShard {
                shard_id: id.clone(),
                parent_shards: vec![id],
                hash_key_range: HashKeyRange { starting_hash_key: key.clone(), ending_hash_key: key },
            }).collect()),
        };
        let fast = levee_protocol::encode_get_records(WireFormat::Json, &out);
        prop_assert_eq!(
            String::from_utf8(fast).unwrap(),
            String::from_utf8(encode_response(WireFormat::Json, &out)).unwrap()
        );
        prop_assert_eq!(
            levee_protocol::encode_get_records(WireFormat::Cbor, &out),
            encode_response(WireFormat::Cbor, &out)
        );
    }
}
