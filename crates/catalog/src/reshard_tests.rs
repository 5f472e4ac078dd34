//! Unit tests for resharding: SplitShard, MergeShards, UpdateShardCount, FinishUpdate,
//! ExpireShards — each success path and every error text.

use super::*;

const ACCT: &str = "000000000000";
const HOUR_MS: u64 = 3_600_000;

fn catalog() -> Catalog {
    Catalog::new(CatalogConfig::default())
}

fn active(c: &mut Catalog, name: &str, shards: u32) {
    c.apply(&Command::CreateStream {
        name: name.to_string(),
        shard_count: Some(shards),
        mode: StreamMode::Provisioned,
        tags: BTreeMap::new(),
        now_ms: 1_000,
    })
    .unwrap();
    c.apply(&Command::ActivateStream {
        name: name.to_string(),
        now_ms: 2_000,
    })
    .unwrap();
}

fn split(name: &str, shard: &str, key: &str, now_ms: u64) -> Command {
    Command::SplitShard {
        name: name.to_string(),
        shard_to_split: shard.to_string(),
        new_starting_hash_key: key.to_string(),
        now_ms,
    }
}

fn merge(name: &str, a: &str, b: &str, now_ms: u64) -> Command {
    Command::MergeShards {
        name: name.to_string(),
        shard_to_merge: a.to_string(),
        adjacent_shard_to_merge: b.to_string(),
        now_ms,
    }
}

fn scale(name: &str, target: u32, now_ms: u64) -> Command {
    Command::UpdateShardCount {
        name: name.to_string(),
        target_shard_count: target,
        now_ms,
    }
}

fn finish(name: &str, now_ms: u64) -> Command {
    Command::FinishUpdate {
        name: name.to_string(),
        now_ms,
    }
}

fn expire(name: &str, now_ms: u64) -> Command {
    Command::ExpireShards {
        name: name.to_string(),
        now_ms,
    }
}

fn err(c: &mut Catalog, cmd: Command) -> (&'static str, String) {
    let before = c.snapshot().unwrap();
    let version = c.map_version();
    let e = c.apply(&cmd).unwrap_err();
    assert_eq!(
        c.snapshot().unwrap(),
        before,
        "a refused command changed the state"
    );
    assert_eq!(c.map_version(), version);
    (e.type_name(), e.message().to_string())
}

fn open_ranges(c: &Catalog, name: &str) -> Vec<HashRange> {
    let mut v: Vec<HashRange> = c
        .stream(name)
        .unwrap()
        .shards
        .iter()
        .filter(|s| s.open)
        .map(Shard::hash_range)
        .collect();
    v.sort_by_key(|r| r.start);
    v
}

const THIRD_END: &str = "113427455640312821154458202477256070484";
const TWO_THIRDS_END: &str = "226854911280625642308916404954512140969";

#[test]
fn split_shard_closes_the_parent_and_creates_two_children() {
    let mut c = catalog();
    active(&mut c, "s", 2);
    let version = c.map_version();
    let mid = levee_map::even_split(2)[0].end / 2;
    let out = c
        .apply(&split(
            "s",
            "shardId-000000000000",
            &mid.to_string(),
            10_000,
        ))
        .unwrap();
    assert_eq!(
        out,
        Outcome::Resharded {
            stream_uid: 1,
            open_before: 2,
            open_after: 3,
            closed: vec![1],
            created: vec![
                NewShard {
                    uid: 3,
                    index: 2,
                    created_ms: 10_000
                },
                NewShard {
                    uid: 4,
                    index: 3,
                    created_ms: 10_000
                },
            ],
        }
    );
    let s = c.stream("s").unwrap();
    assert_eq!(s.status, StreamStatus::Updating);
    assert_eq!(s.status_changed_ms, 10_000);
    let p = &s.shards[0];
    assert!(!p.open);
    assert_eq!(
        (p.epoch, p.closed_ms, p.expired_ms),
        (2, Some(10_000), None)
    );
    let (a, b) = (&s.shards[2], &s.shards[3]);
    assert_eq!((a.hash_start, a.hash_end), (0, mid - 1));
    assert_eq!((b.hash_start, b.hash_end), (mid, p.hash_end));
    for ch in [a, b] {
        assert!(ch.open);
        assert_eq!(ch.parent_shard_id(), Some(ShardId(0)));
        assert_eq!(ch.adjacent_parent_shard_id(), None);
        assert_eq!((ch.created_ms, ch.epoch, ch.closed_ms), (10_000, 1, None));
    }
    let kids: Vec<u32> = s.child_shards(ShardId(0)).map(|x| x.index).collect();
    assert_eq!(kids, [2, 3]);
    assert_eq!(s.child_shards(ShardId(1)).count(), 0);
    assert_eq!(c.account_open_shard_count(), 3);

    // The map keeps the closed parent for reads and routes writes to the children.
    assert_eq!(c.map_version(), version + 1);
    let map = c.shard_map();
    let route = map.stream("s").unwrap();
    assert_eq!(route.state, StreamState::Updating);
    assert_eq!(route.shards.len(), 4);
    assert!(!route.shards[0].open);
    assert_eq!(route.shards[0].epoch, 2);
    assert_eq!(
        route.route(levee_map::HashKey(mid)).map(|r| r.shard_id),
        Some(ShardId(3))
    );
    assert_eq!(
        route.route(levee_map::HashKey(0)).map(|r| r.shard_id),
        Some(ShardId(2))
    );
    let d = c.map_delta_since(version).unwrap();
    assert_eq!(c.shard_map(), {
        let mut old = c.clone();
        old.map = old.prev_map.clone().unwrap();
        old.map.apply(&d).unwrap()
    });

    // Not ACTIVE until FinishUpdate.
    assert_eq!(
        err(&mut c, split("s", "1", "12345", 11_000)),
        (
            "ResourceInUseException",
            format!("Stream s under account {ACCT} not ACTIVE, instead in state UPDATING")
        )
    );
    assert_eq!(
        c.apply(&finish("s", 12_000)).unwrap(),
        Outcome::UpdateFinished
    );
    assert_eq!(c.stream("s").unwrap().status, StreamStatus::Active);
    assert_eq!(c.stream("s").unwrap().status_changed_ms, 12_000);
    assert_eq!(c.apply(&finish("s", 13_000)).unwrap(), Outcome::Unchanged);

    // A closed shard cannot be split again, whatever form its id takes.
    for id in ["shardId-000000000000", "0", "shard-0", "-0", "x-000"] {
        assert_eq!(
            err(&mut c, split("s", id, "5", 14_000)),
            (
                "ResourceInUseException",
                format!(
                    "Shard shardId-000000000000 in stream s under account {ACCT} has already \
                     been merged or split, and thus is not eligible for merging or splitting."
                )
            )
        );
    }
    // A child can.
    c.apply(&split(
        "s",
        "shardId-000000000003",
        &(mid + 10).to_string(),
        15_000,
    ))
    .unwrap();
    assert_eq!(c.stream("s").unwrap().shards.len(), 6);
}

#[test]
fn split_shard_accepts_the_minimum_and_maximum_keys() {
    // Recorded: "should work with minimum hash" splits a 1-shard stream at 2.
    let mut c = catalog();
    active(&mut c, "s", 1);
    c.apply(&split("s", "x-0", "2", 5_000)).unwrap();
    let s = c.stream("s").unwrap();
    assert_eq!((s.shards[1].hash_start, s.shards[1].hash_end), (0, 1));
    assert_eq!(
        (s.shards[2].hash_start, s.shards[2].hash_end),
        (2, u128::MAX)
    );
    c.apply(&finish("s", 6_000)).unwrap();
    let top = (u128::MAX - 1).to_string();
    c.apply(&split("s", "2", &top, 7_000)).unwrap();
    let s = c.stream("s").unwrap();
    assert_eq!(
        (s.shards[4].hash_start, s.shards[4].hash_end),
        (u128::MAX - 1, u128::MAX)
    );
}

#[test]
fn split_shard_errors() {
    let mut c = catalog();
    active(&mut c, "test", 3);
    // Recorded texts (kinesalite test/splitShard.js).
    let too = |key: &str, shard: &str, start: &str, end: &str| {
        (
            "InvalidArgumentException",
            format!(
                "NewStartingHashKey {key} used in SplitShard() on shard {shard} in stream test \
                 under account {ACCT} is not both greater than one plus the shard's \
                 StartingHashKey {start} and less than the shard's EndingHashKey {end}."
            ),
        )
    };
    assert_eq!(
        err(&mut c, split("test", "shard-0", "1", 5)),
        too("1", "shardId-000000000000", "0", THIRD_END)
    );
    assert_eq!(
        err(&mut c, split("test", "shard-0", THIRD_END, 5)),
        too(THIRD_END, "shardId-000000000000", "0", THIRD_END)
    );
    let nines = "9".repeat(39);
    assert_eq!(
        err(&mut c, split("test", "shard-2", &nines, 5)),
        too(
            &nines,
            "shardId-000000000002",
            "226854911280625642308916404954512140970",
            "340282366920938463463374607431768211455"
        )
    );
    // Below the shard's start.
    assert_eq!(
        err(&mut c, split("test", "1", "5", 5)).0,
        "InvalidArgumentException"
    );
    assert_eq!(
        err(&mut c, split("test", "shardId-5", "0", 5)),
        (
            "ResourceNotFoundException",
            format!(
                "Could not find shard shardId-000000000005 in stream test under account {ACCT}."
            )
        )
    );
    for raw in [
        "2147483648",
        "shardId-002147483648",
        "ABKLFD8",
        "2.14E4",
        "",
    ] {
        assert_eq!(
            err(&mut c, split("test", raw, "0", 5)),
            (
                "ResourceNotFoundException",
                format!("Could not find shard {raw} in stream test under account {ACCT}.")
            )
        );
        // An unparsable shard id is reported before an unknown stream (recorded).
        assert_eq!(
            err(&mut c, split("nope", raw, "0", 5)).1,
            format!("Could not find shard {raw} in stream nope under account {ACCT}.")
        );
    }
    for raw in [
        "2147483647",
        "x-2147483647",
        "a-00002147483647",
        "-00002147483647",
    ] {
        assert_eq!(
            err(&mut c, split("nope", raw, "0", 5)),
            (
                "ResourceNotFoundException",
                format!("Stream nope under account {ACCT} not found.")
            )
        );
    }
    for key in ["", "01", "-1", "1e5", &"1".repeat(40)] {
        assert_eq!(
            err(&mut c, split("test", "0", key, 5)),
            (
                "ValidationException",
                format!(
                    "1 validation error detected: Value '{key}' at 'newStartingHashKey' failed \
                     to satisfy constraint: Member must satisfy regular expression pattern: \
                     0|([1-9]\\d{{0,38}})"
                )
            )
        );
    }
    // Not ACTIVE.
    c.apply(&Command::CreateStream {
        name: "new".into(),
        shard_count: Some(1),
        mode: StreamMode::Provisioned,
        tags: BTreeMap::new(),
        now_ms: 9,
    })
    .unwrap();
    assert_eq!(
        err(&mut c, split("new", "0", "5", 10)),
        (
            "ResourceInUseException",
            format!("Stream new under account {ACCT} not ACTIVE, instead in state CREATING")
        )
    );
}

#[test]
fn split_shard_respects_the_shard_limit() {
    let mut c = Catalog::new(CatalogConfig {
        shard_limit: 3,
        ..CatalogConfig::default()
    });
    active(&mut c, "s", 3);
    assert_eq!(
        err(&mut c, split("s", "0", "5", 5)),
        (
            "LimitExceededException",
            format!(
                "This request would exceed the shard limit for the account {ACCT} in us-east-1. \
                 Current shard count for the account: 3. Limit: 3. Number of additional shards \
                 that would have resulted from this request: 1. Refer to the AWS Service Limits \
                 page (http://docs.aws.amazon.com/general/latest/gr/aws_service_limits.html) for \
                 current limits and how to request higher limits."
            )
        )
    );
    // A merge frees one.
    c.apply(&merge("s", "0", "1", 6)).unwrap();
    c.apply(&finish("s", 7)).unwrap();
    c.apply(&split("s", "2", &(u128::MAX - 5).to_string(), 8))
        .unwrap();
}

#[test]
fn merge_shards_closes_both_and_creates_one_child() {
    let mut c = catalog();
    active(&mut c, "s", 3);
    let out = c.apply(&merge("s", "x-0", "shardId-1", 20_000)).unwrap();
    assert_eq!(
        out,
        Outcome::Resharded {
            stream_uid: 1,
            open_before: 3,
            open_after: 2,
            closed: vec![1, 2],
            created: vec![NewShard {
                uid: 4,
                index: 3,
                created_ms: 20_000
            }],
        }
    );
    // Recorded: "should work with standard merge".
    let s = c.stream("s").unwrap();
    let m = &s.shards[3];
    assert_eq!(m.shard_id().to_string(), "shardId-000000000003");
    assert_eq!(m.parent_shard_id(), Some(ShardId(0)));
    assert_eq!(m.adjacent_parent_shard_id(), Some(ShardId(1)));
    assert_eq!(m.starting_hash_key(), "0");
    assert_eq!(m.ending_hash_key(), TWO_THIRDS_END);
    for p in &s.shards[..2] {
        assert!(!p.open);
        assert_eq!((p.epoch, p.closed_ms), (2, Some(20_000)));
    }
    assert!(s.shards[2].open);
    assert_eq!(s.status, StreamStatus::Updating);
    assert_eq!(
        s.child_shards(ShardId(1))
            .map(|x| x.index)
            .collect::<Vec<_>>(),
        [3]
    );
    assert_eq!(
        err(&mut c, merge("s", "3", "2", 21_000)).1,
        format!("Stream s under account {ACCT} not ACTIVE, instead in state UPDATING")
    );
    c.apply(&finish("s", 22_000)).unwrap();
    c.apply(&merge("s", "3", "2", 23_000)).unwrap();
    assert_eq!(open_ranges(&c, "s"), levee_map::even_split(1));
}

#[test]
fn merge_shards_errors() {
    let mut c = catalog();
    active(&mut c, "test", 3);
    let not_adjacent = |a: &str, b: &str| {
        (
            "InvalidArgumentException",
            format!(
                "Shards {a} and {b} in stream test under account {ACCT} are not an adjacent \
                 pair of shards eligible for merging"
            ),
        )
    };
    // Recorded texts (kinesalite test/mergeShards.js).
    assert_eq!(
        err(&mut c, merge("test", "a-0", "b-2", 5)),
        not_adjacent("shardId-000000000000", "shardId-000000000002")
    );
    assert_eq!(
        err(&mut c, merge("test", "a-1", "b-0", 5)),
        not_adjacent("shardId-000000000001", "shardId-000000000000")
    );
    assert_eq!(
        err(&mut c, merge("test", "1", "1", 5)),
        not_adjacent("shardId-000000000001", "shardId-000000000001")
    );
    assert_eq!(
        err(&mut c, merge("test", "shardId-5", "x-0", 5)),
        (
            "ResourceNotFoundException",
            format!(
                "Could not find shard shardId-000000000005 in stream test under account {ACCT}."
            )
        )
    );
    assert_eq!(
        err(&mut c, merge("test", "x-0", "shardId-5", 5)).1,
        format!("Could not find shard shardId-000000000005 in stream test under account {ACCT}.")
    );
    for raw in ["2147483648", "ABKLFD8", "2.14E4"] {
        assert_eq!(
            err(&mut c, merge("nope", raw, "x-0", 5)).1,
            format!("Could not find shard {raw} in stream nope under account {ACCT}.")
        );
        assert_eq!(
            err(&mut c, merge("nope", "x-0", raw, 5)).1,
            format!("Could not find shard {raw} in stream nope under account {ACCT}.")
        );
    }
    assert_eq!(
        err(&mut c, merge("nope", "x-0", "2147483647", 5)),
        (
            "ResourceNotFoundException",
            format!("Stream nope under account {ACCT} not found.")
        )
    );
    // A closed shard, either side.
    c.apply(&merge("test", "0", "1", 6)).unwrap();
    c.apply(&finish("test", 7)).unwrap();
    let closed = |id: &str| {
        (
            "ResourceInUseException",
            format!(
                "Shard {id} in stream test under account {ACCT} has already been merged or \
                 split, and thus is not eligible for merging or splitting."
            ),
        )
    };
    assert_eq!(
        err(&mut c, merge("test", "1", "2", 8)),
        closed("shardId-000000000001")
    );
    assert_eq!(
        err(&mut c, merge("test", "3", "1", 8)),
        closed("shardId-000000000001")
    );
}

/// Every new shard of a reshard: 1–2 distinct closed parents, each overlapping it, jointly
/// covering it; every closed shard's children tile it exactly.
fn assert_lineage(c: &Catalog, name: &str) {
    let s = c.stream(name).unwrap();
    for sh in &s.shards {
        let parents: Vec<&Shard> = [sh.parent, sh.adjacent_parent]
            .into_iter()
            .flatten()
            .map(|p| s.shard(ShardId(p)).unwrap())
            .collect();
        if parents.is_empty() {
            continue;
        }
        let union_start = parents.iter().map(|p| p.hash_start).min().unwrap();
        let union_end = parents.iter().map(|p| p.hash_end).max().unwrap();
        assert!(union_start <= sh.hash_start && sh.hash_end <= union_end);
        for p in &parents {
            assert!(!p.open);
            assert!(p.hash_start <= sh.hash_end && sh.hash_start <= p.hash_end);
        }
        if let [a, b] = parents[..] {
            assert!(
                a.hash_end.checked_add(1) == Some(b.hash_start)
                    || b.hash_end.checked_add(1) == Some(a.hash_start)
            );
            assert!(
                a.hash_end - a.hash_start >= b.hash_end - b.hash_start,
                "parent is the wider"
            );
        }
    }
    for p in s.shards.iter().filter(|p| !p.open) {
        let mut kids: Vec<HashRange> = s
            .child_shards(p.shard_id())
            .map(|k| HashRange {
                start: k.hash_start.max(p.hash_start),
                end: k.hash_end.min(p.hash_end),
            })
            .collect();
        kids.sort_by_key(|r| r.start);
        assert_eq!(kids.first().map(|r| r.start), Some(p.hash_start));
        assert_eq!(kids.last().map(|r| r.end), Some(p.hash_end));
        for w in kids.windows(2) {
            assert_eq!(w[0].end + 1, w[1].start, "children of {} tile it", p.index);
        }
    }
}

#[test]
fn update_shard_count_doubles_by_splitting_and_halves_by_merging() {
    let mut c = catalog();
    active(&mut c, "s", 2);
    let Outcome::Resharded {
        open_before,
        open_after,
        closed,
        created,
        ..
    } = c.apply(&scale("s", 4, 30_000)).unwrap()
    else {
        panic!("not resharded");
    };
    assert_eq!((open_before, open_after), (2, 4));
    assert_eq!(closed, [1, 2]);
    assert_eq!(created.len(), 4, "no short-lived shards");
    assert_eq!(open_ranges(&c, "s"), levee_map::even_split(4));
    let s = c.stream("s").unwrap();
    assert_eq!(s.status, StreamStatus::Updating);
    assert_eq!(s.scaling_ms, [30_000]);
    for (i, p) in [(2, 0), (3, 0), (4, 1), (5, 1)] {
        assert_eq!(s.shards[i].parent, Some(p));
        assert_eq!(s.shards[i].adjacent_parent, None);
    }
    assert_lineage(&c, "s");
    c.apply(&finish("s", 31_000)).unwrap();

    let Outcome::Resharded {
        closed, created, ..
    } = c.apply(&scale("s", 2, 32_000)).unwrap()
    else {
        panic!("not resharded");
    };
    assert_eq!(closed, [3, 4, 5, 6]);
    assert_eq!(created.len(), 2);
    assert_eq!(open_ranges(&c, "s"), levee_map::even_split(2));
    let s = c.stream("s").unwrap();
    assert_eq!(
        (s.shards[6].parent, s.shards[6].adjacent_parent),
        (Some(2), Some(3))
    );
    assert_eq!(
        (s.shards[7].parent, s.shards[7].adjacent_parent),
        (Some(4), Some(5))
    );
    assert_lineage(&c, "s");
}

#[test]
fn update_shard_count_uses_short_lived_shards_for_uneven_ratios() {
    for (from, to) in [
        (5, 3),
        (3, 5),
        (2, 3),
        (3, 2),
        (7, 4),
        (4, 7),
        (6, 11),
        (12, 6),
        (1, 2),
    ] {
        let mut c = catalog();
        active(&mut c, "s", from);
        let Outcome::Resharded {
            open_before,
            open_after,
            closed,
            created,
            ..
        } = c.apply(&scale("s", to, 40_000)).unwrap()
        else {
            panic!("not resharded");
        };
        assert_eq!((open_before, open_after), (from, to));
        assert_eq!(
            open_ranges(&c, "s"),
            levee_map::even_split(to),
            "{from} -> {to}"
        );
        let s = c.stream("s").unwrap();
        // Every created shard is either open now or listed as closed (short-lived).
        for n in &created {
            let sh = &s.shards[n.index as usize];
            assert_eq!(sh.uid, n.uid);
            assert!(sh.open || closed.contains(&sh.uid));
        }
        assert_eq!(
            created.len() + from as usize - closed.len(),
            to as usize,
            "{from} -> {to}"
        );
        assert_lineage(&c, "s");
    }
}

#[test]
fn update_shard_count_after_manual_splits_still_keeps_two_parents() {
    let mut c = catalog();
    active(&mut c, "s", 2);
    // Make the open shards uneven: split shard 0 twice more.
    let q = u128::MAX / 16;
    c.apply(&split("s", "0", &(4 * q).to_string(), 10)).unwrap();
    c.apply(&finish("s", 11)).unwrap();
    c.apply(&split("s", "2", &q.to_string(), 12)).unwrap();
    c.apply(&finish("s", 13)).unwrap();
    // Open: [0,q) [q,4q) [4q,8q) [8q,max] → 2 even shards: the first overlaps three.
    c.apply(&scale("s", 2, 14)).unwrap();
    assert_eq!(open_ranges(&c, "s"), levee_map::even_split(2));
    assert_lineage(&c, "s");
    c.apply(&finish("s", 15)).unwrap();
    // The same count again: already uniform, nothing to close or create.
    let out = c.apply(&scale("s", 2, 16)).unwrap();
    assert_eq!(
        out,
        Outcome::Resharded {
            stream_uid: 1,
            open_before: 2,
            open_after: 2,
            closed: vec![],
            created: vec![],
        }
    );
    assert_eq!(c.stream("s").unwrap().status, StreamStatus::Updating);
}

#[test]
fn update_shard_count_errors() {
    let mut c = Catalog::new(CatalogConfig {
        shard_limit: 20,
        ..CatalogConfig::default()
    });
    active(&mut c, "s", 6);
    assert_eq!(
        err(&mut c, scale("s", 13, 5)),
        (
            "LimitExceededException",
            "UpdateShardCount cannot scale up over double your current open shard count. \
             Current open shard count: 6, Target shard count: 13"
                .to_string()
        )
    );
    assert_eq!(
        err(&mut c, scale("s", 2, 5)),
        (
            "LimitExceededException",
            "UpdateShardCount cannot scale down below half your current open shard count. \
             Current open shard count: 6, Target shard count: 2"
                .to_string()
        )
    );
    assert_eq!(
        err(&mut c, scale("s", 21, 5)),
        (
            "LimitExceededException",
            "Target shard count or number of open shards cannot be greater than 20. Current \
             open shard count: 6, Target shard count: 21"
                .to_string()
        )
    );
    // Within the stream's own limit, over the account's.
    active(&mut c, "t", 9);
    assert_eq!(
        err(&mut c, scale("s", 12, 5)),
        (
            "LimitExceededException",
            format!(
                "This request would exceed the shard limit for the account {ACCT} in us-east-1. \
                 Current shard count for the account: 15. Limit: 20. Number of additional shards \
                 that would have resulted from this request: 6. Refer to the AWS Service Limits \
                 page (http://docs.aws.amazon.com/general/latest/gr/aws_service_limits.html) for \
                 current limits and how to request higher limits."
            )
        )
    );
    c.apply(&scale("s", 11, 5)).unwrap();
    assert_eq!(c.account_open_shard_count(), 20);
    assert_eq!(
        err(&mut c, scale("s", 6, 6)).1,
        format!("Stream s under account {ACCT} not ACTIVE, instead in state UPDATING")
    );
    assert_eq!(
        err(&mut c, scale("nope", 6, 6)),
        (
            "ResourceNotFoundException",
            format!("Stream nope under account {ACCT} not found.")
        )
    );
    assert_eq!(
        err(&mut c, scale("s", 0, 6)),
        (
            "ValidationException",
            "1 validation error detected: Value '0' at 'targetShardCount' failed to satisfy \
             constraint: Member must have value greater than or equal to 1"
                .to_string()
        )
    );
    assert_eq!(
        err(&mut c, scale("s", 100_001, 6)),
        (
            "ValidationException",
            "1 validation error detected: Value '100001' at 'targetShardCount' failed to satisfy \
             constraint: Member must have value less than or equal to 100000"
                .to_string()
        )
    );
}

#[test]
fn update_shard_count_is_limited_to_ten_per_rolling_day() {
    let mut c = catalog();
    active(&mut c, "s", 2);
    let t0 = 100 * HOUR_MS;
    for i in 0..10u64 {
        let target = if i % 2 == 0 { 3 } else { 2 };
        c.apply(&scale("s", target, t0 + i * HOUR_MS)).unwrap();
        c.apply(&finish("s", t0 + i * HOUR_MS + 1)).unwrap();
    }
    let last = t0 + 23 * HOUR_MS;
    assert_eq!(
        err(&mut c, scale("s", 3, last)),
        (
            "LimitExceededException",
            format!(
                "UpdateShardCount cannot scale stream s under account {ACCT} more than 10 \
                 times in a rolling 24-hour period. Scalings in the current period: 10."
            )
        )
    );
    // 24 hours after the first one, one slot is free again.
    c.apply(&scale("s", 3, t0 + 24 * HOUR_MS)).unwrap();
    let s = c.stream("s").unwrap();
    assert_eq!(s.scaling_ms.len(), 10);
    assert_eq!(s.scaling_ms[0], t0 + HOUR_MS);
    // Splits and merges do not count.
    assert_lineage(&c, "s");
}

#[test]
fn finish_update_errors() {
    let mut c = catalog();
    assert_eq!(
        err(&mut c, finish("s", 1)),
        (
            "ResourceNotFoundException",
            format!("Stream s under account {ACCT} not found.")
        )
    );
    c.apply(&Command::CreateStream {
        name: "s".into(),
        shard_count: Some(1),
        mode: StreamMode::Provisioned,
        tags: BTreeMap::new(),
        now_ms: 1,
    })
    .unwrap();
    assert_eq!(
        err(&mut c, finish("s", 2)),
        (
            "ResourceInUseException",
            format!("Stream s under account {ACCT} not UPDATING, instead in state CREATING")
        )
    );
}

#[test]
fn closed_shards_expire_after_retention() {
    let mut c = catalog();
    active(&mut c, "s", 2);
    c.apply(&split("s", "0", "1000", 10_000)).unwrap();
    c.apply(&finish("s", 10_001)).unwrap();
    let day = 24 * HOUR_MS;
    // Not before closed_ms + retention has passed.
    assert_eq!(
        c.apply(&expire("s", 10_000 + day)).unwrap(),
        Outcome::Unchanged
    );
    let version = c.map_version();
    assert_eq!(
        c.apply(&expire("s", 10_001 + day)).unwrap(),
        Outcome::ShardsExpired {
            stream_uid: 1,
            shard_uids: vec![1]
        }
    );
    assert_eq!(c.map_version(), version + 1);
    let s = c.stream("s").unwrap();
    let p = &s.shards[0];
    assert!(p.is_expired());
    assert_eq!((p.expired_ms, p.epoch), (Some(10_001 + day), 3));
    // Listed and routed no more; ids stay dense and lineage still names it.
    let listed: Vec<u32> = s.live_shards_after(None).map(|x| x.index).collect();
    assert_eq!(listed, [1, 2, 3]);
    assert_eq!(s.shards_after(None).len(), 4);
    assert_eq!(s.shards[2].parent, Some(0));
    let route = c.shard_map().stream("s").unwrap().clone();
    assert!(route.shard(ShardId(0)).is_none());
    assert_eq!(route.shards.len(), 3);
    assert_eq!(
        err(&mut c, split("s", "0", "5", 10_002 + day)).1,
        format!("Could not find shard shardId-000000000000 in stream s under account {ACCT}.")
    );
    assert_eq!(
        err(&mut c, merge("s", "0", "1", 10_002 + day)).1,
        format!("Could not find shard shardId-000000000000 in stream s under account {ACCT}.")
    );
    assert_eq!(c.apply(&expire("s", 10 * day)).unwrap(), Outcome::Unchanged);
    assert_eq!(
        err(&mut c, expire("nope", 1)),
        (
            "ResourceNotFoundException",
            format!("Stream nope under account {ACCT} not found.")
        )
    );
}

#[test]
fn longer_retention_delays_expiry() {
    let mut c = catalog();
    active(&mut c, "s", 2);
    c.apply(&Command::IncreaseRetention {
        name: "s".into(),
        hours: 48,
    })
    .unwrap();
    c.apply(&merge("s", "0", "1", 10_000)).unwrap();
    assert_eq!(
        c.apply(&expire("s", 10_001 + 24 * HOUR_MS)).unwrap(),
        Outcome::Unchanged
    );
    assert_eq!(
        c.apply(&expire("s", 10_001 + 48 * HOUR_MS)).unwrap(),
        Outcome::ShardsExpired {
            stream_uid: 1,
            shard_uids: vec![1, 2]
        }
    );
    // Expiry works while UPDATING, and the merge child stays listed.
    let s = c.stream("s").unwrap();
    assert_eq!(s.status, StreamStatus::Updating);
    assert_eq!(s.live_shards_after(None).count(), 1);
}

#[test]
fn resolve_shard_id_follows_aws() {
    for (raw, want) in [
        ("shardId-000000000005", Some(5)),
        ("5", Some(5)),
        ("anything-5", Some(5)),
        ("-5", Some(5)),
        ("a-00002147483647", Some(2_147_483_647)),
        ("2147483647", Some(2_147_483_647)),
        ("0000000000000000000000007", Some(7)),
        ("x-1-2", Some(1)),
        ("2147483648", None),
        ("shardId-002147483648", None),
        ("ABKLFD8", None),
        ("2.14E4", None),
        ("x-", None),
        ("", None),
        ("x-1a", None),
    ] {
        assert_eq!(ShardId::resolve(raw), want.map(ShardId), "{raw}");
    }
}

#[test]
fn reshards_survive_snapshots_and_old_snapshots_still_load() {
    let mut c = catalog();
    active(&mut c, "s", 3);
    c.apply(&scale("s", 5, 10)).unwrap();
    c.apply(&finish("s", 11)).unwrap();
    let open: Vec<u32> = {
        let s = c.stream("s").unwrap();
        let mut v: Vec<&Shard> = s.shards.iter().filter(|x| x.open).collect();
        v.sort_by_key(|x| x.hash_start);
        v.iter().map(|x| x.index).collect()
    };
    c.apply(&merge("s", &open[0].to_string(), &open[1].to_string(), 12))
        .unwrap();
    c.apply(&expire("s", 13 + 24 * HOUR_MS)).unwrap();
    let bytes = c.snapshot().unwrap();
    let r = Catalog::restore(CatalogConfig::default(), &bytes).unwrap();
    assert_eq!(r.state(), c.state());
    assert_eq!(r.shard_map(), c.shard_map());

    // A snapshot written before resharding existed has none of the new fields.
    let mut old = catalog();
    active(&mut old, "s", 2);
    // (serde_json::Value cannot hold the u128 hash keys, so edit the text.)
    let json = serde_json::to_string(old.state()).unwrap();
    let stripped = json
        .replace(r#","closed_ms":null,"expired_ms":null"#, "")
        .replace(r#","scaling_ms":[]"#, "");
    assert!(!stripped.contains("closed_ms") && !stripped.contains("scaling_ms"));
    assert_ne!(stripped, json);
    let json = stripped;
    let state: CatalogState = serde_json::from_str(&json).unwrap();
    assert_eq!(&state, old.state());
}

#[test]
fn broken_lineage_is_refused() {
    let mut c = catalog();
    active(&mut c, "s", 2);
    c.apply(&split("s", "0", "1000", 5)).unwrap();
    let corrupt = |f: &dyn Fn(&mut Stream)| {
        let mut state = c.state().clone();
        f(state.streams.get_mut("s").unwrap());
        let bytes = snapshot::encode(&state).unwrap();
        Catalog::restore(CatalogConfig::default(), &bytes)
    };
    assert!(corrupt(&|_| {}).is_ok());
    // A closed shard without closed_ms.
    assert!(corrupt(&|s| s.shards[0].closed_ms = None).is_err());
    // A child outside its parent.
    assert!(corrupt(&|s| s.shards[2].parent = Some(1)).is_err());
    // The same parent twice.
    assert!(corrupt(&|s| s.shards[2].adjacent_parent = Some(0)).is_err());
    // An open shard expired.
    assert!(corrupt(&|s| s.shards[1].expired_ms = Some(9)).is_err());
    // Too many scalings on record.
    assert!(corrupt(&|s| s.scaling_ms = vec![1; 11]).is_err());
}

#[test]
fn new_commands_and_outcomes_serialize() {
    let cmds = vec![
        split("s", "0", "5", 1),
        merge("s", "0", "1", 2),
        scale("s", 4, 3),
        finish("s", 4),
        expire("s", 5),
    ];
    let back: Vec<Command> = serde_json::from_str(&serde_json::to_string(&cmds).unwrap()).unwrap();
    assert_eq!(back, cmds);
    let outs = vec![
        Outcome::Resharded {
            stream_uid: 1,
            open_before: 1,
            open_after: 2,
            closed: vec![1],
            created: vec![NewShard {
                uid: 2,
                index: 1,
                created_ms: 3,
            }],
        },
        Outcome::UpdateFinished,
        Outcome::ShardsExpired {
            stream_uid: 1,
            shard_uids: vec![1],
        },
    ];
    let back: Vec<Outcome> = serde_json::from_str(&serde_json::to_string(&outs).unwrap()).unwrap();
    assert_eq!(back, outs);
}
