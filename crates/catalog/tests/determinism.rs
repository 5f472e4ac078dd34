//! Property tests: random command sequences keep every invariant, snapshots round-trip, and a
//! catalog restored part-way through and fed the remaining commands ends exactly where a full
//! replay does (the state machine is deterministic).

use std::collections::BTreeMap;

use levee_catalog::{
    Catalog, CatalogConfig, Command, ShardId, StreamMode, StreamStatus, RETENTION_HOURS_MIN,
};
use proptest::prelude::*;

const NAMES: [&str; 4] = ["a", "b", "c.d-e_f", "bad name"];

fn config() -> CatalogConfig {
    CatalogConfig {
        shard_limit: 12,
        streams_creating_max: 2,
        ..CatalogConfig::default()
    }
}

fn name() -> impl Strategy<Value = String> {
    (0..NAMES.len()).prop_map(|i| NAMES[i].to_string())
}

/// The stream resharding commands mostly aim at: the one [`commands`] usually creates first.
fn reshard_name() -> impl Strategy<Value = String> {
    prop_oneof![6 => Just("a".to_string()), 1 => name()]
}

fn tag_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("k".to_string()),
        Just("env".to_string()),
        Just("x y".to_string()),
        Just("a:b".to_string()),
        Just("bad;".to_string()),
        Just("pct%".to_string()),
        Just(String::new()),
        "[a-z]{1,3}",
    ]
}

fn tag_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(tag_text(), tag_text(), 0..4)
}

fn arn() -> impl Strategy<Value = String> {
    (name(), 0..4u8).prop_map(|(n, v)| match v {
        0 => format!("arn:aws:kinesis:eu-west-1:000000000000:stream/{n}"),
        1 => "garbage".to_string(),
        _ => format!("arn:aws:kinesis:us-east-1:000000000000:stream/{n}"),
    })
}

/// A stream ARN for consumer commands: mostly stream `a`'s.
fn consumer_stream_arn() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => Just("arn:aws:kinesis:us-east-1:000000000000:stream/a".to_string()),
        1 => arn(),
    ]
}

fn consumer_name() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(vec!["x", "y", "z", "w"]).prop_map(str::to_string),
        1 => Just("bad name".to_string()),
    ]
}

/// A consumer ARN ending in the placeholder `:?`, which [`commands`] replaces with the creation
/// second of the latest RegisterConsumer of that stream and name (so the ARN usually resolves);
/// sometimes a stale second or junk.
fn consumer_arn() -> impl Strategy<Value = String> {
    (consumer_stream_arn(), consumer_name(), 0..20u8).prop_map(|(s, c, v)| match v {
        0 => format!("{s}/consumer/{c}:1"),
        1 => "junk".to_string(),
        _ => format!("{s}/consumer/{c}:?"),
    })
}

/// A shard id as a client might write it: mostly valid forms of small indexes (which often
/// exist), sometimes junk.
fn shard_text(ix: u32, form: u8) -> String {
    match form {
        0 => format!("shardId-{ix:012}"),
        1 => ix.to_string(),
        2 => format!("x-{ix}"),
        3 => "2.14E4".to_string(),
        4..=6 => format!("shardId-{ix:012}"),
        _ => format!("{ix}"),
    }
}

/// A shard index: a reshard's children get the next indexes, so reach past the first few.
fn shard_ix() -> impl Strategy<Value = u32> {
    prop_oneof![3 => 0..6u32, 1 => 0..40u32]
}

/// A NewStartingHashKey: mostly `m/d` of the key space (inside some shard of a stream split
/// evenly or at such keys), sometimes an edge or invalid text.
fn hash_key() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => (prop::sample::select(vec![2u128, 3, 4, 5, 6, 8, 16, 64]), 1..64u128, 0..3u128)
            .prop_map(|(d, m, off)| ((u128::MAX / d) * (m % d).max(1) + off).to_string()),
        1 => Just("0".to_string()),
        1 => Just("2".to_string()),
        1 => Just(u128::MAX.to_string()),
        1 => Just("9".repeat(39)),
        1 => Just("01".to_string()),
    ]
}

/// A command with `now_ms` 0; [`commands`] fills in increasing times.
fn command() -> impl Strategy<Value = Command> {
    let hours = prop_oneof![
        Just(-1i64),
        Just(23),
        Just(24),
        Just(48),
        Just(8760),
        Just(8761)
    ];
    prop_oneof![
        3 => (name(), prop::option::of(0..6u32), any::<bool>(), tag_map()).prop_map(
            |(name, shard_count, od, tags)| Command::CreateStream {
                name,
                shard_count,
                mode: if od { StreamMode::OnDemand } else { StreamMode::Provisioned },
                tags,
                now_ms: 0,
            }
        ),
        3 => name().prop_map(|name| Command::ActivateStream { name, now_ms: 0 }),
        1 => (name(), any::<bool>()).prop_map(|(name, enforce)| Command::DeleteStream {
            name,
            enforce_consumer_deletion: enforce,
            now_ms: 0,
        }),
        1 => name().prop_map(|name| Command::FinishDeleteStream { name }),
        1 => (name(), hours.clone())
            .prop_map(|(name, hours)| Command::IncreaseRetention { name, hours }),
        1 => (name(), hours).prop_map(|(name, hours)| Command::DecreaseRetention { name, hours }),
        1 => (name(), tag_map()).prop_map(|(name, tags)| Command::AddTags { name, tags }),
        1 => (name(), prop::collection::vec(tag_text(), 0..3)).prop_map(|(name, keys)| Command::RemoveTags { name, keys }),
        1 => (arn(), tag_map()).prop_map(|(arn, tags)| Command::TagResource { arn, tags }),
        1 => (arn(), prop::collection::vec(tag_text(), 0..3)).prop_map(|(arn, keys)| Command::UntagResource { arn, keys }),
        4 => (reshard_name(), shard_ix(), 0..10u8, hash_key()).prop_map(|(name, ix, form, key)| {
            Command::SplitShard {
                name,
                shard_to_split: shard_text(ix, form),
                new_starting_hash_key: key,
                now_ms: 0,
            }
        }),
        4 => (reshard_name(), shard_ix(), prop::sample::select(vec![1i64, 1, 1, 2, -1]), 0..10u8).prop_map(
            |(name, ix, delta, form)| Command::MergeShards {
                name,
                shard_to_merge: shard_text(ix, form),
                adjacent_shard_to_merge: shard_text(ix.saturating_add_signed(delta as i32), form),
                now_ms: 0,
            }
        ),
        3 => (reshard_name(), 0..13u32).prop_map(|(name, target_shard_count)| Command::UpdateShardCount {
            name,
            target_shard_count,
            now_ms: 0,
        }),
        5 => reshard_name().prop_map(|name| Command::FinishUpdate { name, now_ms: 0 }),
        2 => reshard_name().prop_map(|name| Command::ExpireShards { name, now_ms: 0 }),
        3 => (consumer_stream_arn(), consumer_name()).prop_map(|(stream_arn, consumer_name)| {
            Command::RegisterConsumer { stream_arn, consumer_name, now_ms: 0 }
        }),
        6 => consumer_arn().prop_map(|consumer_arn| Command::ActivateConsumer { consumer_arn, now_ms: 0 }),
        6 => (
            0..4u8,
            prop::option::of(consumer_stream_arn()),
            prop::option::of(consumer_name()),
            prop::option::of(consumer_arn()),
            consumer_stream_arn(),
            consumer_name(),
            consumer_arn(),
        )
            .prop_map(|(form, s, n, a, s1, n1, a1)| {
                // Mostly one of the two documented forms; sometimes any mix.
                let (stream_arn, consumer_name, consumer_arn) = match form {
                    0 => (None, None, Some(a1)),
                    1 => (Some(s1), Some(n1), None),
                    2 => (None, None, Some(a1)),
                    _ => (s, n, a),
                };
                Command::DeregisterConsumer { stream_arn, consumer_name, consumer_arn, now_ms: 0 }
            }),
        4 => consumer_arn().prop_map(|consumer_arn| Command::FinishDeregisterConsumer { consumer_arn }),
    ]
}

/// Time between commands: mostly a second, sometimes hours, sometimes more than a day (so
/// closed shards expire and the UpdateShardCount window rolls).
fn step_ms() -> impl Strategy<Value = u64> {
    prop_oneof![
        12 => Just(1_000u64),
        2 => Just(3_600_000),
        1 => Just(25 * 3_600_000),
    ]
}

/// Random commands with increasing times, usually after creating and activating stream `a` so
/// that resharding has something to work on.
fn commands() -> impl Strategy<Value = Vec<Command>> {
    let prelude = prop::option::weighted(0.8, 1..6u32).prop_map(|shards| {
        shards.map_or_else(Vec::new, |n| {
            vec![
                Command::CreateStream {
                    name: "a".to_string(),
                    shard_count: Some(n),
                    mode: StreamMode::Provisioned,
                    tags: BTreeMap::new(),
                    now_ms: 0,
                },
                Command::ActivateStream {
                    name: "a".to_string(),
                    now_ms: 0,
                },
            ]
        })
    });
    let body = prop::collection::vec((command(), step_ms()), 0..80);
    (prelude, body).prop_map(|(prelude, body)| {
        let mut t = 0;
        // A scratch catalog fed the commands as they are made, so that a consumer ARN
        // placeholder becomes the ARN of the consumer that exists under that name right then.
        let mut scratch = Catalog::new(config());
        prelude
            .into_iter()
            .map(|c| (c, 1_000))
            .chain(body)
            .map(|(mut cmd, step)| {
                t += step;
                match &mut cmd {
                    Command::CreateStream { now_ms, .. }
                    | Command::ActivateStream { now_ms, .. }
                    | Command::DeleteStream { now_ms, .. }
                    | Command::SplitShard { now_ms, .. }
                    | Command::MergeShards { now_ms, .. }
                    | Command::UpdateShardCount { now_ms, .. }
                    | Command::FinishUpdate { now_ms, .. }
                    | Command::ExpireShards { now_ms, .. }
                    | Command::ActivateConsumer { now_ms, .. }
                    | Command::DeregisterConsumer { now_ms, .. } => *now_ms = t,
                    Command::RegisterConsumer { now_ms, .. } => *now_ms = t,
                    _ => {}
                }
                match &mut cmd {
                    Command::ActivateConsumer { consumer_arn, .. }
                    | Command::FinishDeregisterConsumer { consumer_arn }
                    | Command::DeregisterConsumer {
                        consumer_arn: Some(consumer_arn),
                        ..
                    } => {
                        if let Some(prefix) = consumer_arn.strip_suffix(":?") {
                            let found = prefix.split_once("/consumer/").and_then(|(s, n)| {
                                scratch.describe_consumer(Some(s), Some(n), None).ok()
                            });
                            *consumer_arn = match found {
                                Some(d) => d.consumer_arn,
                                None => format!("{prefix}:0"),
                            };
                        }
                    }
                    _ => {}
                }
                let _ = scratch.apply(&cmd);
                cmd
            })
            .collect()
    })
}

/// The resharding invariants, checked from outside with the public state only: open shards
/// tile `[0, 2^128)`; ids are dense and uids unique; every non-initial shard has one or two
/// distinct, older, closed parents, each overlapping it, whose union contains it; a shard is
/// closed exactly when it has `closed_ms`; expired shards are closed, past retention and not
/// routed; the map routes every live shard.
fn check_resharding(c: &Catalog) -> Result<(), TestCaseError> {
    let mut uids = std::collections::BTreeSet::new();
    let map = c.shard_map();
    for s in c.state().streams().values() {
        let n = &s.name;
        let mut open: Vec<(u128, u128)> = s
            .shards
            .iter()
            .filter(|x| x.open)
            .map(|x| (x.hash_start, x.hash_end))
            .collect();
        open.sort_unstable();
        if matches!(s.status, StreamStatus::Active | StreamStatus::Updating) {
            prop_assert!(!open.is_empty(), "{n}: no open shard");
            prop_assert_eq!(open[0].0, 0, "{}: open shards start above 0", n);
            prop_assert_eq!(
                open[open.len() - 1].1,
                u128::MAX,
                "{}: open shards end early",
                n
            );
            for w in open.windows(2) {
                prop_assert!(
                    w[0].1 < u128::MAX && w[0].1 + 1 == w[1].0,
                    "{n}: gap or overlap"
                );
            }
        }
        let route = map.stream(n);
        let mut initial = true;
        for (i, sh) in s.shards.iter().enumerate() {
            prop_assert_eq!(sh.index as usize, i, "{}: ids not dense", n);
            prop_assert!(uids.insert(sh.uid), "{n}: duplicate uid {}", sh.uid);
            prop_assert_eq!(
                sh.open,
                sh.closed_ms.is_none(),
                "{}: shard {} closed_ms",
                n,
                i
            );
            let routed = route.and_then(|r| r.shard(ShardId(sh.index)));
            if let Some(e) = sh.expired_ms {
                prop_assert!(!sh.open);
                let closed = sh.closed_ms.unwrap_or(u64::MAX);
                prop_assert!(
                    // Retention may have grown since; it was at least the minimum.
                    closed.saturating_add(RETENTION_HOURS_MIN as u64 * 3_600_000) < e,
                    "{n}: {i} expired early"
                );
                prop_assert!(routed.is_none(), "{n}: expired shard {i} routed");
            } else {
                prop_assert_eq!(
                    routed.map(|r| (r.uid, r.open, r.epoch)),
                    Some((sh.uid, sh.open, sh.epoch))
                );
            }
            let parents: Vec<u32> = sh.parent.into_iter().chain(sh.adjacent_parent).collect();
            if parents.is_empty() {
                prop_assert!(sh.adjacent_parent.is_none());
                prop_assert!(initial, "{n}: parentless shard {i} after a child");
                prop_assert_eq!(sh.created_ms, s.created_ms);
                continue;
            }
            initial = false;
            prop_assert!(sh.parent.is_some());
            prop_assert!(parents.len() <= 2 && sh.parent != sh.adjacent_parent);
            let mut ranges = Vec::new();
            for p in parents {
                prop_assert!(p < sh.index, "{n}: {i} has a younger parent {p}");
                let parent = &s.shards[p as usize];
                prop_assert!(!parent.open, "{n}: {i} has an open parent {p}");
                prop_assert!(
                    parent.hash_start <= sh.hash_end && sh.hash_start <= parent.hash_end,
                    "{n}: parent {p} does not overlap {i}"
                );
                prop_assert!(parent.closed_ms.is_some_and(|t| t <= sh.created_ms));
                ranges.push((parent.hash_start, parent.hash_end));
            }
            ranges.sort_unstable();
            let lo = ranges[0].0;
            let hi = ranges[ranges.len() - 1].1;
            if let [a, b] = ranges[..] {
                prop_assert!(
                    a.1 < u128::MAX && a.1 + 1 >= b.0,
                    "{n}: parents of {i} leave a gap"
                );
            }
            prop_assert!(
                lo <= sh.hash_start && sh.hash_end <= hi,
                "{n}: {i} outside its parents"
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// (a) invariants after every command, refused commands change nothing, the map follows the
    /// state and its one-step delta rebuilds it; (b) snapshot/restore reproduces the state.
    #[test]
    fn invariants_hold_and_snapshots_round_trip(cmds in commands()) {
        let mut c = Catalog::new(config());
        for cmd in &cmds {
            let before_state = c.state().clone();
            let before_map = c.shard_map();
            let result = c.apply(cmd);
            prop_assert!(c.check_invariants().is_ok(), "{:?}", c.check_invariants());
            check_resharding(&c)?;
            if let Err(e) = &result {
                prop_assert_ne!(e.type_name(), "InternalFailure", "{:?}", e);
                prop_assert_eq!(c.state(), &before_state);
                prop_assert_eq!(c.shard_map(), before_map.clone());
            }
            let map = c.shard_map();
            prop_assert!(map.verify().is_ok());
            prop_assert_eq!(map.version(), c.map_version());
            prop_assert_eq!(map.streams().count(), c.state().streams().len());
            for s in c.state().streams().values() {
                prop_assert_eq!(map.stream(&s.name).map(|r| (**r).clone()), Some(s.route()));
            }
            if map.version() == before_map.version() + 1 {
                let delta = c.map_delta_since(before_map.version());
                prop_assert!(delta.is_some());
                if let Some(d) = delta {
                    prop_assert_eq!(before_map.apply(&d).ok(), Some(map.clone()));
                }
            } else {
                prop_assert_eq!(map.version(), before_map.version());
            }

            let bytes = c.snapshot().map_err(|e| TestCaseError::fail(e.to_string()))?;
            let r = Catalog::restore(config(), &bytes)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(r.state(), c.state());
            prop_assert_eq!(r.shard_map(), c.shard_map());
            prop_assert_eq!(r.snapshot().ok(), Some(bytes));
        }
    }

    /// (c) snapshot at any point, restore, apply the rest == full replay, outputs included.
    #[test]
    fn restore_then_replay_equals_full_replay(cmds in commands(), cut in any::<prop::sample::Index>()) {
        let k = if cmds.is_empty() { 0 } else { cut.index(cmds.len() + 1) };
        let mut full = Catalog::new(config());
        let full_out: Vec<_> = cmds.iter().map(|c| full.apply(c)).collect();

        let mut head = Catalog::new(config());
        let mut out: Vec<_> = cmds.iter().take(k).map(|c| head.apply(c)).collect();
        let bytes = head.snapshot().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut tail = Catalog::restore(config(), &bytes)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        out.extend(cmds.iter().skip(k).map(|c| tail.apply(c)));

        prop_assert_eq!(out, full_out);
        prop_assert_eq!(tail.state(), full.state());
        prop_assert_eq!(tail.shard_map(), full.shard_map());
        prop_assert_eq!(tail.snapshot().ok(), full.snapshot().ok());
    }

    /// Damaged snapshot bytes are refused, never half-loaded.
    #[test]
    fn damaged_snapshots_are_refused(cmds in commands(), at in any::<prop::sample::Index>(), bit in 0..8u8) {
        let mut c = Catalog::new(config());
        for cmd in &cmds {
            let _ = c.apply(cmd);
        }
        let mut bytes = c.snapshot().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let i = at.index(bytes.len());
        bytes[i] ^= 1 << bit;
        prop_assert!(Catalog::restore(config(), &bytes).is_err());
    }
}

/// The generator reaches every outcome and every client error type, so the properties above are
/// not vacuous.
#[test]
fn generated_sequences_reach_every_outcome_and_error() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    use std::collections::BTreeSet;

    let mut runner = TestRunner::deterministic();
    let mut seen = BTreeSet::new();
    let mut counts = BTreeMap::new();
    for _ in 0..200 {
        let cmds = commands()
            .new_tree(&mut runner)
            .map(|t| t.current())
            .unwrap_or_default();
        let mut c = Catalog::new(config());
        for cmd in &cmds {
            let kind = match c.apply(cmd) {
                Ok(o) => format!("{o:?}")
                    .split([' ', '{', '('])
                    .next()
                    .unwrap_or_default()
                    .to_string(),
                Err(e) => e.type_name().to_string(),
            };
            *counts.entry(kind.clone()).or_insert(0usize) += 1;
            seen.insert(kind);
        }
    }
    for want in [
        "StreamCreated",
        "StreamActivated",
        "StreamDeleting",
        "StreamRemoved",
        "RetentionChanged",
        "TagsChanged",
        "Resharded",
        "UpdateFinished",
        "ShardsExpired",
        "ConsumerRegistered",
        "ConsumerActivated",
        "ConsumerDeregistering",
        "ConsumerRemoved",
        "Unchanged",
        "ResourceNotFoundException",
        "ResourceInUseException",
        "LimitExceededException",
        "InvalidArgumentException",
        "ValidationException",
    ] {
        assert!(seen.contains(want), "never reached {want}; saw {counts:?}");
    }
    // Resharding is exercised often, not once by luck.
    for (want, min) in [
        ("Resharded", 100),
        ("UpdateFinished", 50),
        ("ShardsExpired", 10),
        ("ConsumerRegistered", 50),
        ("ConsumerActivated", 20),
        ("ConsumerDeregistering", 10),
        ("ConsumerRemoved", 3),
    ] {
        let got = counts.get(want).copied().unwrap_or(0);
        assert!(
            got >= min,
            "{want} reached {got} times, want {min}; saw {counts:?}"
        );
    }
}
