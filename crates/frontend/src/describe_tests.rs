//! ListShards, DescribeStream and DescribeStreamSummary against hand-built maps.

use base64::Engine as _;
use levee_map::seqnum::SequenceNumber;
use levee_map::{
    even_split, ConsumerFact, ConsumerState, GroupId, HashRange, NodeId, Policies, ShardId,
    ShardMap, ShardRoute, StreamFacts, StreamRoute, StreamState,
};
use levee_protocol::types::{
    DescribeStreamInput, DescribeStreamSummaryInput, EncryptionType, ListShardsInput, MetricsName,
    ShardFilter, ShardFilterType, StreamMode, StreamStatus,
};
use levee_protocol::{ApiError, ErrorKind, Timestamp};

use super::{list_token_stream, Describe, NEXT_TOKEN_TTL_MS};
use crate::dataplane::Identity;

const ACCOUNT: &str = "123456789012";
const REGION: &str = "eu-west-1";
const HOUR_MS: u64 = 3_600_000;
/// The stream's creation (and its first shards').
const T0: u64 = 1_700_000_000_000;
/// Shard 0 split into 2 and 3.
const T1: u64 = T0 + 10 * HOUR_MS;
/// Shards 3 and 1 merged into 4.
const T2: u64 = T0 + 20 * HOUR_MS;
/// Where shard 0 was split.
const SPLIT_AT: u128 = 1 << 100;

fn identity() -> Identity {
    Identity {
        account_id: ACCOUNT.into(),
        region: REGION.into(),
    }
}

fn arn(name: &str) -> String {
    format!("arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}")
}

fn shard(id: u32, range: HashRange, created_ms: u64, closed_ms: Option<u64>) -> ShardRoute {
    ShardRoute {
        shard_id: ShardId(id),
        uid: 100 + u64::from(id),
        hash_range: range,
        open: closed_ms.is_none(),
        group: GroupId(1),
        node: NodeId(1),
        epoch: 1,
        parent: None,
        adjacent_parent: None,
        created_ms,
        closed_ms,
    }
}

fn facts() -> StreamFacts {
    StreamFacts {
        created_ms: T0,
        retention_hours: 24,
        max_record_kib: 1024,
        ..StreamFacts::default()
    }
}

/// A stream of `n` open shards created at T0.
fn plain(name: &str, n: u32, state: StreamState) -> StreamRoute {
    StreamRoute {
        name: name.into(),
        uid: 1,
        state,
        shards: even_split(n)
            .into_iter()
            .zip(0..)
            .map(|(r, i)| shard(i, r, T0, None))
            .collect(),
        policies: Policies::default(),
        facts: facts(),
    }
}

/// Two shards at T0; shard 0 split at T1 into 2 and 3; 3 and 1 merged at T2 into 4.
/// Open: 2 and 4.
fn lineage(name: &str) -> StreamRoute {
    let halves = even_split(2);
    let (low, high) = (halves[0], halves[1]);
    let mut s0 = shard(0, low, T0, Some(T1));
    s0.open = false;
    let s1 = shard(1, high, T0, Some(T2));
    let mut s2 = shard(
        2,
        HashRange {
            start: 0,
            end: SPLIT_AT - 1,
        },
        T1,
        None,
    );
    s2.parent = Some(ShardId(0));
    let mut s3 = shard(
        3,
        HashRange {
            start: SPLIT_AT,
            end: low.end,
        },
        T1,
        Some(T2),
    );
    s3.parent = Some(ShardId(0));
    let mut s4 = shard(
        4,
        HashRange {
            start: SPLIT_AT,
            end: u128::MAX,
        },
        T2,
        None,
    );
    s4.parent = Some(ShardId(3));
    s4.adjacent_parent = Some(ShardId(1));
    StreamRoute {
        name: name.into(),
        uid: 2,
        state: StreamState::Active,
        shards: vec![s0, s1, s2, s3, s4],
        policies: Policies::default(),
        facts: facts(),
    }
}

fn map(streams: Vec<StreamRoute>) -> ShardMap {
    ShardMap::build(7, streams).expect("a valid map")
}

fn with<T>(m: &ShardMap, f: impl FnOnce(&Describe) -> T) -> T {
    let id = identity();
    f(&Describe {
        identity: &id,
        map: m,
    })
}

fn describe(m: &ShardMap, r: DescribeStreamInput) -> Result<super::DescribeStreamOutput, ApiError> {
    with(m, |d| d.describe_stream(&r))
}

fn by_name(name: &str) -> DescribeStreamInput {
    DescribeStreamInput {
        stream_name: Some(name.into()),
        ..Default::default()
    }
}

fn summary(m: &ShardMap, name: &str) -> super::StreamDescriptionSummary {
    with(m, |d| {
        d.describe_stream_summary(&DescribeStreamSummaryInput {
            stream_name: Some(name.into()),
            ..Default::default()
        })
    })
    .expect("summary")
    .stream_description_summary
}

fn list(m: &ShardMap, r: ListShardsInput, now: u64) -> Result<super::ListShardsOutput, ApiError> {
    with(m, |d| d.list_shards(&r, now))
}

fn list_named(name: &str) -> ListShardsInput {
    ListShardsInput {
        stream_name: Some(name.into()),
        ..Default::default()
    }
}

fn ids(shards: &[levee_protocol::types::Shard]) -> Vec<String> {
    shards.iter().map(|s| s.shard_id.clone()).collect()
}

fn listed(m: &ShardMap, r: ListShardsInput, now: u64) -> Vec<String> {
    ids(&list(m, r, now).expect("list").shards.expect("shards"))
}

fn sid(n: u32) -> String {
    ShardId(n).to_string()
}

fn assert_err(r: Result<impl std::fmt::Debug, ApiError>, kind: ErrorKind, message: &str) {
    let e = r.expect_err("an error");
    assert_eq!((e.kind, e.message.as_str()), (kind, message));
}

#[test]
fn describe_stream_shows_the_stream_and_its_shards_from_the_map() {
    let m = map(vec![lineage("s")]);
    let d = describe(&m, by_name("s")).unwrap().stream_description;
    assert_eq!(d.stream_name, "s");
    assert_eq!(d.stream_arn, arn("s"));
    assert_eq!(d.stream_status, StreamStatus::Active);
    assert_eq!(
        d.stream_mode_details.map(|m| m.stream_mode),
        Some(StreamMode::Provisioned)
    );
    assert_eq!(d.retention_period_hours, 24);
    assert_eq!(d.stream_creation_timestamp, Timestamp(T0));
    assert_eq!(d.enhanced_monitoring.len(), 1);
    assert!(d.enhanced_monitoring[0].shard_level_metrics.is_empty());
    assert_eq!(d.encryption_type, Some(EncryptionType::None));
    assert_eq!(d.key_id, None);
    assert!(!d.has_more_shards);
    assert_eq!(ids(&d.shards), (0..5).map(sid).collect::<Vec<_>>());

    // The merged child: both parents, its range, open (no ending number).
    let four = &d.shards[4];
    assert_eq!(four.parent_shard_id.as_deref(), Some(sid(3).as_str()));
    assert_eq!(
        four.adjacent_parent_shard_id.as_deref(),
        Some(sid(1).as_str())
    );
    assert_eq!(four.hash_key_range.starting_hash_key, SPLIT_AT.to_string());
    assert_eq!(four.hash_key_range.ending_hash_key, u128::MAX.to_string());
    let created = T2 / 1000;
    assert_eq!(
        four.sequence_number_range.starting_sequence_number,
        SequenceNumber::new(created, 4, 0, created).to_decimal()
    );
    assert_eq!(four.sequence_number_range.ending_sequence_number, None);
    // A closed parent: AWS's maximum-index ending number stamped with the close time.
    let zero = &d.shards[0];
    assert_eq!(zero.parent_shard_id, None);
    assert_eq!(
        zero.sequence_number_range.ending_sequence_number,
        Some(SequenceNumber::ending(T0 / 1000, 0, T1 / 1000).to_decimal())
    );
    assert_eq!(zero.hash_key_range.starting_hash_key, "0");
}

#[test]
fn describe_stream_pages_by_100_with_limit_and_exclusive_start() {
    let m = map(vec![plain("big", 250, StreamState::Active)]);
    let page = |limit: Option<i32>, start: Option<&str>| {
        let d = describe(
            &m,
            DescribeStreamInput {
                limit,
                exclusive_start_shard_id: start.map(str::to_owned),
                ..by_name("big")
            },
        )
        .unwrap()
        .stream_description;
        (ids(&d.shards), d.has_more_shards)
    };
    let (first, more) = page(None, None);
    assert_eq!(first.len(), 100);
    assert_eq!(first[0], sid(0));
    assert!(more);
    let (second, more) = page(None, Some(&sid(99)));
    assert_eq!(
        (second[0].clone(), second.len(), more),
        (sid(100), 100, true)
    );
    let (last, more) = page(None, Some(&sid(199)));
    assert_eq!((last[0].clone(), last.len(), more), (sid(200), 50, false));
    // Limits are clamped to 1..=100.
    assert_eq!(page(Some(3), None), (vec![sid(0), sid(1), sid(2)], true));
    assert_eq!(page(Some(0), None).0, vec![sid(0)]);
    assert_eq!(page(Some(-5), None).0.len(), 100);
    assert_eq!(page(Some(10_000), None).0.len(), 100);
    // The exact end of the list has no more shards; past it, an empty page.
    assert!(!page(Some(50), Some(&sid(199))).1);
    assert!(page(Some(49), Some(&sid(199))).1);
    assert_eq!(page(None, Some(&sid(249))), (vec![], false));
    // A bare index works; an id that does not parse starts from the beginning.
    assert_eq!(page(Some(1), Some("7")).0, vec![sid(8)]);
    assert_eq!(page(Some(1), Some("nonsense")).0, vec![sid(0)]);
}

#[test]
fn a_creating_stream_lists_no_shards_in_describe_stream_but_in_list_shards() {
    let m = map(vec![plain("new", 2, StreamState::Creating)]);
    let d = describe(&m, by_name("new")).unwrap().stream_description;
    assert_eq!(d.stream_status, StreamStatus::Creating);
    assert!(d.shards.is_empty());
    assert!(!d.has_more_shards);
    assert_eq!(listed(&m, list_named("new"), T0), vec![sid(0), sid(1)]);
    let s = summary(&m, "new");
    assert_eq!(s.stream_status, StreamStatus::Creating);
    assert_eq!(s.open_shard_count, 2);
}

#[test]
fn streams_resolve_by_name_or_arn_with_aws_errors() {
    let m = map(vec![plain("s", 1, StreamState::Active)]);
    let by_arn = |a: &str| {
        describe(
            &m,
            DescribeStreamInput {
                stream_arn: Some(a.into()),
                ..Default::default()
            },
        )
    };
    assert_eq!(
        by_arn(&arn("s")).unwrap().stream_description.stream_name,
        "s"
    );
    assert_err(
        describe(&m, by_name("nope")),
        ErrorKind::ResourceNotFound,
        "Stream nope under account 123456789012 not found.",
    );
    assert_err(
        describe(&m, DescribeStreamInput::default()),
        ErrorKind::InvalidArgument,
        "Either StreamName or StreamARN should be provided.",
    );
    // StreamName wins over StreamARN.
    let both = DescribeStreamInput {
        stream_arn: Some(arn("other")),
        ..by_name("s")
    };
    assert!(describe(&m, both).is_ok());
    // Another account, region or partition: not found under the ARN's account.
    assert_err(
        by_arn("arn:aws:kinesis:eu-west-1:999999999999:stream/s"),
        ErrorKind::ResourceNotFound,
        "Stream s under account 999999999999 not found.",
    );
    assert_err(
        by_arn("arn:aws:kinesis:us-east-1:123456789012:stream/s"),
        ErrorKind::ResourceNotFound,
        "Stream s under account 123456789012 not found.",
    );
    assert_err(
        by_arn("arn:aws-cn:kinesis:eu-west-1:123456789012:stream/s"),
        ErrorKind::ResourceNotFound,
        "Stream s under account 123456789012 not found.",
    );
    assert_err(
        by_arn(&arn("gone")),
        ErrorKind::ResourceNotFound,
        "Stream gone under account 123456789012 not found.",
    );
    assert_err(
        by_arn("arn:aws:kinesis:eu-west-1:1234:stream/s"),
        ErrorKind::Validation,
        "1 validation error detected: Value 'arn:aws:kinesis:eu-west-1:1234:stream/s' at \
         'streamARN' failed to satisfy constraint: Member must satisfy regular expression \
         pattern: arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+",
    );
    let consumer = format!("{}/consumer/c:1700000000", arn("s"));
    assert_err(
        by_arn(&consumer),
        ErrorKind::InvalidArgument,
        &format!("Resource {consumer} is a consumer; only stream ARNs are supported."),
    );
    // The same resolution for the summary and ListShards.
    assert_err(
        with(&m, |d| {
            d.describe_stream_summary(&DescribeStreamSummaryInput {
                stream_arn: Some("not-an-arn".into()),
                ..Default::default()
            })
        }),
        ErrorKind::Validation,
        "1 validation error detected: Value 'not-an-arn' at 'streamARN' failed to satisfy \
         constraint: Member must satisfy regular expression pattern: \
         arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+",
    );
    let r = ListShardsInput {
        stream_arn: Some(arn("s")),
        ..Default::default()
    };
    assert_eq!(listed(&m, r, T0), vec![sid(0)]);
}

#[test]
fn the_summary_reports_the_streams_facts() {
    let mut s = lineage("s");
    s.state = StreamState::Updating;
    s.facts.on_demand = true;
    s.facts.retention_hours = 48;
    s.facts.key_id = Some("alias/k".into());
    s.facts.shard_level_metrics = vec!["IncomingBytes".into(), "OutgoingRecords".into()];
    s.facts.warm_throughput_mibps = Some(25);
    s.facts.max_record_kib = 2048;
    s.facts.consumers = ["a", "b", "c"]
        .into_iter()
        .zip([
            ConsumerState::Active,
            ConsumerState::Creating,
            ConsumerState::Deleting,
        ])
        .map(|(n, state)| ConsumerFact {
            name: n.into(),
            arn: format!("{}/consumer/{n}:1", arn("s")),
            state,
            created_ms: T0,
        })
        .collect();
    let m = map(vec![s]);
    let sum = summary(&m, "s");
    assert_eq!(sum.stream_name, "s");
    assert_eq!(sum.stream_arn, arn("s"));
    assert_eq!(sum.stream_id, None);
    assert_eq!(sum.stream_status, StreamStatus::Updating);
    assert_eq!(
        sum.stream_mode_details.map(|m| m.stream_mode),
        Some(StreamMode::OnDemand)
    );
    assert_eq!(sum.retention_period_hours, 48);
    assert_eq!(sum.stream_creation_timestamp, Timestamp(T0));
    assert_eq!(
        sum.enhanced_monitoring[0].shard_level_metrics,
        vec![MetricsName::IncomingBytes, MetricsName::OutgoingRecords]
    );
    assert_eq!(sum.encryption_type, Some(EncryptionType::Kms));
    assert_eq!(sum.key_id.as_deref(), Some("alias/k"));
    // Open shards only; consumers in any state.
    assert_eq!(sum.open_shard_count, 2);
    assert_eq!(sum.consumer_count, Some(3));
    let warm = sum.warm_throughput.expect("warm throughput");
    assert_eq!(
        (warm.target_mibps, warm.current_mibps),
        (Some(25), Some(25))
    );
    assert_eq!(sum.max_record_size_in_kib, Some(2048));
    // DescribeStream shows the same encryption and monitoring.
    let d = describe(&m, by_name("s")).unwrap().stream_description;
    assert_eq!(d.encryption_type, Some(EncryptionType::Kms));
    assert_eq!(d.key_id.as_deref(), Some("alias/k"));
    assert_eq!(d.enhanced_monitoring, sum.enhanced_monitoring);
    assert_eq!(d.retention_period_hours, 48);
    // No warm throughput: none reported.
    let m = map(vec![plain("p", 1, StreamState::Active)]);
    assert_eq!(summary(&m, "p").warm_throughput, None);
    assert_eq!(summary(&m, "p").consumer_count, Some(0));
}

#[test]
fn list_shards_pages_with_tokens_through_the_whole_stream() {
    let m = map(vec![plain("big", 2500, StreamState::Active)]);
    let now = T0 + HOUR_MS;
    // The default and largest page is 1000.
    let first = list(&m, list_named("big"), now).unwrap();
    assert_eq!(first.shards.as_ref().unwrap().len(), 1000);
    let mut all = ids(first.shards.as_ref().unwrap());
    let mut token = first.next_token;
    while let Some(t) = token {
        let page = list(
            &m,
            ListShardsInput {
                next_token: Some(t),
                ..Default::default()
            },
            now,
        )
        .unwrap();
        all.extend(ids(page.shards.as_ref().unwrap()));
        token = page.next_token;
    }
    assert_eq!(all, (0..2500).map(sid).collect::<Vec<_>>());
    // MaxResults: clamped to 1..=1000; no token on the exact last page.
    let r = |max: i32| ListShardsInput {
        max_results: Some(max),
        ..list_named("big")
    };
    assert_eq!(listed(&m, r(0), now), vec![sid(0)]);
    assert_eq!(listed(&m, r(5000), now).len(), 1000);
    let small = map(vec![plain("s", 4, StreamState::Active)]);
    let r = |max: i32| ListShardsInput {
        max_results: Some(max),
        ..list_named("s")
    };
    assert!(list(&small, r(4), now).unwrap().next_token.is_none());
    let out = list(&small, r(3), now).unwrap();
    assert_eq!(
        ids(out.shards.as_ref().unwrap()),
        vec![sid(0), sid(1), sid(2)]
    );
    // The token: base64url (no padding) of "<issued ms>/<last index>/<stream>".
    let token = out.next_token.expect("a token");
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&token)
        .unwrap();
    assert_eq!(String::from_utf8(text).unwrap(), format!("{now}/2/s"));
    assert_eq!(list_token_stream(&token).as_deref(), Some("s"));
    assert_eq!(list_token_stream("!!"), None);
    // A token continues with the filter and MaxResults of the new call.
    let next = ListShardsInput {
        next_token: Some(token),
        max_results: Some(1),
        ..Default::default()
    };
    assert_eq!(listed(&small, next, now), vec![sid(3)]);
    // ExclusiveStartShardId.
    let after = ListShardsInput {
        exclusive_start_shard_id: Some(sid(1)),
        ..list_named("s")
    };
    assert_eq!(listed(&small, after, now), vec![sid(2), sid(3)]);
}

#[test]
fn list_shards_tokens_expire_after_300_seconds_and_must_decode() {
    let m = map(vec![plain("s", 3, StreamState::Active)]);
    let issued = T0 + HOUR_MS;
    let token = list(
        &m,
        ListShardsInput {
            max_results: Some(1),
            ..list_named("s")
        },
        issued,
    )
    .unwrap()
    .next_token
    .unwrap();
    let by_token = |t: &str, now: u64| {
        list(
            &m,
            ListShardsInput {
                next_token: Some(t.into()),
                ..Default::default()
            },
            now,
        )
    };
    assert!(by_token(&token, issued + NEXT_TOKEN_TTL_MS).is_ok());
    assert_err(
        by_token(&token, issued + NEXT_TOKEN_TTL_MS + 1),
        ErrorKind::ExpiredNextToken,
        &format!("The timestamp in the NextToken has expired: {token}"),
    );
    assert_err(
        by_token("garbage", issued),
        ErrorKind::InvalidArgument,
        "Invalid NextToken: garbage",
    );
    // A token naming a stream that is gone.
    let gone = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{issued}/0/gone"));
    assert_err(
        by_token(&gone, issued),
        ErrorKind::ResourceNotFound,
        "Stream gone under account 123456789012 not found.",
    );
    // Argument combinations.
    let together = "NextToken and StreamName cannot be provided together.";
    let with_name = ListShardsInput {
        next_token: Some(token.clone()),
        ..list_named("s")
    };
    assert_err(
        list(&m, with_name, issued),
        ErrorKind::InvalidArgument,
        together,
    );
    let with_arn = ListShardsInput {
        next_token: Some(token.clone()),
        stream_arn: Some(arn("s")),
        ..Default::default()
    };
    assert_err(
        list(&m, with_arn, issued),
        ErrorKind::InvalidArgument,
        together,
    );
    assert_err(
        list(&m, ListShardsInput::default(), issued),
        ErrorKind::InvalidArgument,
        "Either NextToken or StreamName should be provided.",
    );
    assert_err(
        list(&m, list_named("nope"), issued),
        ErrorKind::ResourceNotFound,
        "Stream nope under account 123456789012 not found.",
    );
}

fn filtered(m: &ShardMap, f: ShardFilter, now: u64) -> Result<Vec<String>, ApiError> {
    list(
        m,
        ListShardsInput {
            shard_filter: Some(f),
            ..list_named("s")
        },
        now,
    )
    .map(|o| ids(&o.shards.unwrap_or_default()))
}

fn filter(t: ShardFilterType) -> ShardFilter {
    ShardFilter {
        r#type: t,
        shard_id: None,
        timestamp: None,
    }
}

fn at(t: ShardFilterType, ms: u64) -> ShardFilter {
    ShardFilter {
        timestamp: Some(Timestamp(ms)),
        ..filter(t)
    }
}

#[test]
fn shard_filters_select_by_lineage_and_time() {
    let m = map(vec![lineage("s")]);
    // While everything is retained (trim horizon = the stream's creation).
    let now = T2 + HOUR_MS;
    let all: Vec<String> = (0..5).map(sid).collect();
    let f = |flt: ShardFilter| filtered(&m, flt, now).unwrap();
    assert_eq!(f(filter(ShardFilterType::AtLatest)), vec![sid(2), sid(4)]);
    assert_eq!(
        f(filter(ShardFilterType::AtTrimHorizon)),
        vec![sid(0), sid(1)]
    );
    assert_eq!(f(filter(ShardFilterType::FromTrimHorizon)), all);
    // Open at a time (a close at exactly t still counts as open then).
    use ShardFilterType::{AtTimestamp, FromTimestamp};
    assert_eq!(f(at(AtTimestamp, T0 + 1)), vec![sid(0), sid(1)]);
    assert_eq!(f(at(AtTimestamp, T1)), vec![sid(0), sid(1), sid(2), sid(3)]);
    assert_eq!(f(at(AtTimestamp, T1 + 1)), vec![sid(1), sid(2), sid(3)]);
    assert_eq!(f(at(AtTimestamp, T2 + 1)), vec![sid(2), sid(4)]);
    // Before the stream began: corrected to the trim horizon.
    assert_eq!(f(at(AtTimestamp, 5)), vec![sid(0), sid(1)]);
    // Open at or after a time.
    assert_eq!(f(at(FromTimestamp, T0)), all);
    assert_eq!(
        f(at(FromTimestamp, T1 + 1)),
        vec![sid(1), sid(2), sid(3), sid(4)]
    );
    assert_eq!(f(at(FromTimestamp, T2 + 1)), vec![sid(2), sid(4)]);
    // After a shard id, alone or with ExclusiveStartShardId (the later one wins).
    let after = |id: &str| ShardFilter {
        shard_id: Some(id.into()),
        ..filter(ShardFilterType::AfterShardId)
    };
    assert_eq!(f(after(&sid(2))), vec![sid(3), sid(4)]);
    let both = |start: u32, filter_id: u32| {
        list(
            &m,
            ListShardsInput {
                exclusive_start_shard_id: Some(sid(start)),
                shard_filter: Some(after(&sid(filter_id))),
                ..list_named("s")
            },
            now,
        )
        .map(|o| ids(&o.shards.unwrap()))
        .unwrap()
    };
    assert_eq!(both(3, 1), vec![sid(4)]);
    assert_eq!(both(1, 3), vec![sid(4)]);
    // A filter combines with the ExclusiveStartShardId of the call.
    let r = ListShardsInput {
        exclusive_start_shard_id: Some(sid(2)),
        shard_filter: Some(filter(ShardFilterType::AtLatest)),
        ..list_named("s")
    };
    assert_eq!(listed(&m, r, now), vec![sid(4)]);
    // ...and pages through its matches with MaxResults.
    let r = ListShardsInput {
        max_results: Some(1),
        shard_filter: Some(filter(ShardFilterType::AtLatest)),
        ..list_named("s")
    };
    let out = list(&m, r, now).unwrap();
    assert_eq!(ids(out.shards.as_ref().unwrap()), vec![sid(2)]);
    let token = out.next_token.expect("one more match");
    let r = ListShardsInput {
        next_token: Some(token),
        shard_filter: Some(filter(ShardFilterType::AtLatest)),
        ..Default::default()
    };
    let out = list(&m, r, now).unwrap();
    assert_eq!(ids(out.shards.as_ref().unwrap()), vec![sid(4)]);
    assert_eq!(out.next_token, None);
}

#[test]
fn the_trim_horizon_moves_with_retention() {
    let m = map(vec![lineage("s")]);
    // 24 h retention, 1 h after T2 + 24 h... the trim horizon is T2 + 1 h: only 2 and 4 were
    // open then.
    let now = T2 + 25 * HOUR_MS;
    let f = |flt: ShardFilter| filtered(&m, flt, now).unwrap();
    assert_eq!(
        f(filter(ShardFilterType::AtTrimHorizon)),
        vec![sid(2), sid(4)]
    );
    // Times before the trim horizon are corrected to it.
    assert_eq!(
        f(at(ShardFilterType::AtTimestamp, T0)),
        vec![sid(2), sid(4)]
    );
    assert_eq!(
        f(at(ShardFilterType::FromTimestamp, T0)),
        vec![sid(2), sid(4)]
    );
    // Between T1 and T2 (trim horizon T1 + 1 h): 1, 2, 3 were open.
    let now = T1 + 25 * HOUR_MS;
    assert_eq!(
        filtered(&m, filter(ShardFilterType::AtTrimHorizon), now).unwrap(),
        vec![sid(1), sid(2), sid(3)]
    );
    // FROM_TRIM_HORIZON lists every shard the map still holds (expired ones are not in it).
    assert_eq!(
        filtered(&m, filter(ShardFilterType::FromTrimHorizon), now)
            .unwrap()
            .len(),
        5
    );
}

#[test]
fn filters_missing_their_argument_are_refused() {
    let m = map(vec![lineage("s")]);
    assert_err(
        filtered(&m, filter(ShardFilterType::AfterShardId), T2),
        ErrorKind::InvalidArgument,
        "ShardFilter of type AFTER_SHARD_ID requires ShardId.",
    );
    assert_err(
        filtered(&m, filter(ShardFilterType::AtTimestamp), T2),
        ErrorKind::InvalidArgument,
        "ShardFilter of type AT_TIMESTAMP requires Timestamp.",
    );
    assert_err(
        filtered(&m, filter(ShardFilterType::FromTimestamp), T2),
        ErrorKind::InvalidArgument,
        "ShardFilter of type FROM_TIMESTAMP requires Timestamp.",
    );
    // A missing stream is reported before the filter.
    let r = ListShardsInput {
        shard_filter: Some(filter(ShardFilterType::AtTimestamp)),
        ..list_named("nope")
    };
    assert_eq!(
        list(&m, r, T2).unwrap_err().kind,
        ErrorKind::ResourceNotFound
    );
}

#[test]
fn expired_shards_are_not_listed_because_the_map_leaves_them_out() {
    // The catalog drops expired shards from the map: shard 0 and 1 gone, ids keep their gaps.
    let mut s = lineage("s");
    s.shards.retain(|sh| sh.shard_id.0 >= 2);
    let m = map(vec![s]);
    let d = describe(&m, by_name("s")).unwrap().stream_description;
    assert_eq!(ids(&d.shards), vec![sid(2), sid(3), sid(4)]);
    let r = ListShardsInput {
        exclusive_start_shard_id: Some(sid(0)),
        ..list_named("s")
    };
    assert_eq!(listed(&m, r, T2), vec![sid(2), sid(3), sid(4)]);
    // The trim horizon still never precedes the stream's creation.
    assert_eq!(
        filtered(&m, filter(ShardFilterType::AtTrimHorizon), T2).unwrap(),
        Vec::<String>::new()
    );
}
