//! Property tests: random command sequences keep every invariant, snapshots round-trip, and a
//! catalog restored part-way through and fed the remaining commands ends exactly where a full
//! replay does (the state machine is deterministic).

use std::collections::BTreeMap;

use levee_catalog::{Catalog, CatalogConfig, Command, StreamMode};
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
        2 => (name(), any::<bool>()).prop_map(|(name, enforce)| Command::DeleteStream {
            name,
            enforce_consumer_deletion: enforce,
            now_ms: 0,
        }),
        2 => name().prop_map(|name| Command::FinishDeleteStream { name }),
        1 => (name(), hours.clone())
            .prop_map(|(name, hours)| Command::IncreaseRetention { name, hours }),
        1 => (name(), hours).prop_map(|(name, hours)| Command::DecreaseRetention { name, hours }),
        1 => (name(), tag_map()).prop_map(|(name, tags)| Command::AddTags { name, tags }),
        1 => (name(), prop::collection::vec(tag_text(), 0..3)).prop_map(|(name, keys)| Command::RemoveTags { name, keys }),
        1 => (arn(), tag_map()).prop_map(|(arn, tags)| Command::TagResource { arn, tags }),
        1 => (arn(), prop::collection::vec(tag_text(), 0..3)).prop_map(|(arn, keys)| Command::UntagResource { arn, keys }),
    ]
}

fn commands() -> impl Strategy<Value = Vec<Command>> {
    prop::collection::vec(command(), 0..80).prop_map(|mut cmds| {
        for (i, cmd) in cmds.iter_mut().enumerate() {
            let t = 1_000 * (i as u64 + 1);
            match cmd {
                Command::CreateStream { now_ms, .. }
                | Command::ActivateStream { now_ms, .. }
                | Command::DeleteStream { now_ms, .. } => *now_ms = t,
                _ => {}
            }
        }
        cmds
    })
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
        "Unchanged",
        "ResourceNotFoundException",
        "ResourceInUseException",
        "LimitExceededException",
        "InvalidArgumentException",
        "ValidationException",
    ] {
        assert!(seen.contains(want), "never reached {want}; saw {seen:?}");
    }
}
