//! Unit tests: each command's success path and every error text.

use super::*;

const ACCT: &str = "000000000000";

fn catalog() -> Catalog {
    Catalog::new(CatalogConfig::default())
}

fn create(name: &str, shards: Option<u32>) -> Command {
    Command::CreateStream {
        name: name.to_string(),
        shard_count: shards,
        mode: StreamMode::Provisioned,
        tags: BTreeMap::new(),
        now_ms: 1_000,
    }
}

fn activate(name: &str) -> Command {
    Command::ActivateStream {
        name: name.to_string(),
        now_ms: 2_000,
    }
}

fn delete(name: &str) -> Command {
    Command::DeleteStream {
        name: name.to_string(),
        enforce_consumer_deletion: false,
        now_ms: 3_000,
    }
}

fn finish(name: &str) -> Command {
    Command::FinishDeleteStream {
        name: name.to_string(),
    }
}

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn active(c: &mut Catalog, name: &str, shards: u32) {
    c.apply(&create(name, Some(shards))).unwrap();
    c.apply(&activate(name)).unwrap();
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

#[test]
fn create_stream_allocates_uids_shards_and_arn() {
    let mut c = catalog();
    let out = c.apply(&create("s", Some(3))).unwrap();
    assert_eq!(
        out,
        Outcome::StreamCreated {
            uid: 1,
            first_shard_uid: 1,
            shard_count: 3
        }
    );
    let s = c.stream("s").unwrap();
    assert_eq!(s.arn, "arn:aws:kinesis:us-east-1:000000000000:stream/s");
    assert_eq!(s.status, StreamStatus::Creating);
    assert_eq!(s.status.as_str(), "CREATING");
    assert_eq!(s.retention_hours, 24);
    assert_eq!(s.encryption.as_str(), "NONE");
    assert_eq!(s.created_ms, 1_000);
    assert_eq!(s.open_shard_count(), 3);
    let ids: Vec<String> = s.shards.iter().map(|x| x.shard_id().to_string()).collect();
    assert_eq!(
        ids,
        [
            "shardId-000000000000",
            "shardId-000000000001",
            "shardId-000000000002"
        ]
    );
    assert_eq!(s.shards[0].starting_hash_key(), "0");
    assert_eq!(
        s.shards[0].ending_hash_key(),
        "113427455640312821154458202477256070484"
    );
    assert_eq!(
        s.shards[2].ending_hash_key(),
        "340282366920938463463374607431768211455"
    );
    assert!(s.shards.iter().all(|x| x.open
        && x.epoch == 1
        && x.parent_shard_id().is_none()
        && x.adjacent_parent_shard_id().is_none()
        && x.created_ms == 1_000
        && x.group_id() == GroupId(1)
        && x.node_id() == NodeId(1)));

    let out = c.apply(&create("t", None)).unwrap();
    assert_eq!(
        out,
        Outcome::StreamCreated {
            uid: 2,
            first_shard_uid: 4,
            shard_count: 4
        }
    );
    assert_eq!(c.account_open_shard_count(), 7);
}

#[test]
fn on_demand_without_shard_count_gets_four_shards_and_tags() {
    let mut c = catalog();
    c.apply(&Command::CreateStream {
        name: "od".into(),
        shard_count: None,
        mode: StreamMode::OnDemand,
        tags: tags(&[("b", "2"), ("a", "1")]),
        now_ms: 5,
    })
    .unwrap();
    let s = c.stream("od").unwrap();
    assert_eq!(s.mode, StreamMode::OnDemand);
    assert_eq!(s.mode.as_str(), "ON_DEMAND");
    assert_eq!(s.shards.len(), 4);
    let keys: Vec<&String> = c.tags("od").unwrap().keys().collect();
    assert_eq!(keys, ["a", "b"]);
}

#[test]
fn create_stream_errors() {
    let mut c = catalog();
    active(&mut c, "s", 1);
    assert_eq!(
        err(&mut c, create("s", Some(1))),
        (
            "ResourceInUseException",
            format!("Stream s under account {ACCT} already exists.")
        )
    );
    assert_eq!(
        err(&mut c, create("", Some(0))),
        (
            "ValidationException",
            "3 validation errors detected: Value '0' at 'shardCount' failed to satisfy \
             constraint: Member must have value greater than or equal to 1; Value '' at \
             'streamName' failed to satisfy constraint: Member must satisfy regular expression \
             pattern: [a-zA-Z0-9_.-]+; Value '' at 'streamName' failed to satisfy constraint: \
             Member must have length greater than or equal to 1"
                .to_string()
        )
    );
    let long = "a".repeat(129);
    assert_eq!(
        err(&mut c, create(&long, Some(1))),
        (
            "ValidationException",
            format!(
                "1 validation error detected: Value '{long}' at 'streamName' failed to satisfy \
                 constraint: Member must have length less than or equal to 128"
            )
        )
    );
    assert_eq!(err(&mut c, create("a b", Some(1))).0, "ValidationException");
}

#[test]
fn shard_limit_text_matches_aws() {
    let mut c = Catalog::new(CatalogConfig {
        shard_limit: 10,
        ..CatalogConfig::default()
    });
    active(&mut c, "a", 3);
    assert_eq!(
        err(&mut c, create("b", Some(8))),
        (
            "LimitExceededException",
            format!(
                "This request would exceed the shard limit for the account {ACCT} in us-east-1. \
                 Current shard count for the account: 3. Limit: 10. Number of additional shards \
                 that would have resulted from this request: 8. Refer to the AWS Service Limits \
                 page (http://docs.aws.amazon.com/general/latest/gr/aws_service_limits.html) for \
                 current limits and how to request higher limits."
            )
        )
    );
    c.apply(&create("b", Some(7))).unwrap();
    assert_eq!(c.account_open_shard_count(), 10);
    // Deleting streams still count until they are gone.
    c.apply(&activate("b")).unwrap();
    c.apply(&delete("b")).unwrap();
    assert_eq!(
        err(&mut c, create("c", Some(1))).0,
        "LimitExceededException"
    );
    c.apply(&finish("b")).unwrap();
    c.apply(&create("c", Some(7))).unwrap();
    // u32::MAX shards cannot overflow the check.
    assert_eq!(
        err(&mut c, create("d", Some(u32::MAX))).0,
        "LimitExceededException"
    );
}

#[test]
fn creating_streams_are_limited() {
    let mut c = Catalog::new(CatalogConfig {
        streams_creating_max: 2,
        ..CatalogConfig::default()
    });
    c.apply(&create("a", Some(1))).unwrap();
    c.apply(&create("b", Some(1))).unwrap();
    assert_eq!(c.streams_creating(), 2);
    assert_eq!(
        err(&mut c, create("c", Some(1))),
        (
            "LimitExceededException",
            format!(
                "This request would exceed the limit of 2 streams in the CREATING state for the \
                 account {ACCT} in us-east-1."
            )
        )
    );
    c.apply(&activate("a")).unwrap();
    c.apply(&create("c", Some(1))).unwrap();
}

#[test]
fn activate_stream() {
    let mut c = catalog();
    assert_eq!(
        err(&mut c, activate("s")),
        (
            "ResourceNotFoundException",
            format!("Stream s under account {ACCT} not found.")
        )
    );
    c.apply(&create("s", Some(2))).unwrap();
    assert_eq!(c.apply(&activate("s")).unwrap(), Outcome::StreamActivated);
    let s = c.stream("s").unwrap();
    assert_eq!(s.status, StreamStatus::Active);
    assert_eq!(s.status_changed_ms, 2_000);
    assert_eq!(c.apply(&activate("s")).unwrap(), Outcome::Unchanged);
    c.apply(&delete("s")).unwrap();
    assert_eq!(
        err(&mut c, activate("s")),
        (
            "ResourceInUseException",
            format!("Stream s under account {ACCT} not CREATING, instead in state DELETING")
        )
    );
}

#[test]
fn delete_and_finish_delete() {
    let mut c = catalog();
    assert_eq!(
        err(&mut c, delete("s")),
        (
            "ResourceNotFoundException",
            format!("Stream s under account {ACCT} not found.")
        )
    );
    c.apply(&create("s", Some(2))).unwrap();
    assert_eq!(
        err(&mut c, finish("s")),
        (
            "ResourceInUseException",
            format!("Stream s under account {ACCT} not DELETING, instead in state CREATING")
        )
    );
    c.apply(&activate("s")).unwrap();
    assert_eq!(c.apply(&delete("s")).unwrap(), Outcome::StreamDeleting);
    assert_eq!(c.stream("s").unwrap().status, StreamStatus::Deleting);
    assert_eq!(c.apply(&delete("s")).unwrap(), Outcome::Unchanged);
    // A CREATING stream can be deleted too, and then never activates.
    c.apply(&create("t", Some(1))).unwrap();
    assert_eq!(c.apply(&delete("t")).unwrap(), Outcome::StreamDeleting);
    assert!(
        c.stream("t").unwrap().shards.is_empty(),
        "no shards are listed"
    );
    assert_eq!(
        err(&mut c, activate("t")),
        (
            "ResourceInUseException",
            format!("Stream t under account {ACCT} not CREATING, instead in state DELETING")
        )
    );
    assert_eq!(
        c.apply(&finish("s")).unwrap(),
        Outcome::StreamRemoved {
            uid: 1,
            shard_uids: vec![1, 2]
        }
    );
    assert_eq!(
        c.stream("s").unwrap_err().message(),
        format!("Stream s under account {ACCT} not found.")
    );
    assert_eq!(err(&mut c, finish("s")).0, "ResourceNotFoundException");
    // The name is reusable; uids are not.
    assert_eq!(
        c.apply(&create("s", Some(1))).unwrap(),
        Outcome::StreamCreated {
            uid: 3,
            first_shard_uid: 4,
            shard_count: 1
        }
    );
}

#[test]
fn retention_changes_and_errors() {
    let mut c = catalog();
    let inc = |h: i64| Command::IncreaseRetention {
        name: "s".into(),
        hours: h,
    };
    let dec = |h: i64| Command::DecreaseRetention {
        name: "s".into(),
        hours: h,
    };
    assert_eq!(
        err(&mut c, inc(25)),
        (
            "ResourceNotFoundException",
            format!("Stream s under account {ACCT} not found.")
        )
    );
    assert_eq!(err(&mut c, dec(25)).0, "ResourceNotFoundException");
    c.apply(&create("s", Some(1))).unwrap();
    assert_eq!(
        err(&mut c, inc(25)),
        (
            "ResourceInUseException",
            format!("Stream s under account {ACCT} not ACTIVE, instead in state CREATING")
        )
    );
    c.apply(&activate("s")).unwrap();
    assert_eq!(
        c.apply(&inc(25)).unwrap(),
        Outcome::RetentionChanged { hours: 25 }
    );
    assert_eq!(c.stream("s").unwrap().retention_hours, 25);
    assert_eq!(
        err(&mut c, inc(23)),
        (
            "InvalidArgumentException",
            "Minimum allowed retention period is 24 hours. Requested retention period (23 \
             hours) is too short."
                .to_string()
        )
    );
    assert_eq!(
        err(&mut c, dec(23)).1,
        "Minimum allowed retention period is 24 hours. Requested retention period (23 hours) \
         is too short."
    );
    assert_eq!(
        err(&mut c, inc(24)),
        (
            "InvalidArgumentException",
            "Requested retention period (24 hours) for stream s can not be shorter than existing \
             retention period (25 hours). Use DecreaseRetentionPeriod API."
                .to_string()
        )
    );
    assert_eq!(
        err(&mut c, inc(8761)),
        (
            "InvalidArgumentException",
            "Maximum allowed retention period is 8760 hours. Requested retention period (8761 \
             hours) is too long."
                .to_string()
        )
    );
    c.apply(&inc(8760)).unwrap();
    assert_eq!(
        err(&mut c, dec(8761)).1,
        "Maximum allowed retention period is 8760 hours. Requested retention period (8761 \
         hours) is too long."
    );
    c.apply(&dec(24)).unwrap();
    assert_eq!(
        err(&mut c, dec(25)),
        (
            "InvalidArgumentException",
            "Requested retention period (25 hours) for stream s can not be longer than existing \
             retention period (24 hours). Use IncreaseRetentionPeriod API."
                .to_string()
        )
    );
    // Same value both ways is accepted.
    c.apply(&inc(24)).unwrap();
    c.apply(&dec(24)).unwrap();
    // Retention routes no data, but the map carries it (storage nodes expire by it): each real
    // change published the next map, the no-op ones none.
    let published = c.map_version();
    assert_eq!(c.shard_map().stream("s").unwrap().facts.retention_hours, 24);
    c.apply(&inc(24)).unwrap();
    assert_eq!(c.map_version(), published, "a no-op publishes nothing");
    c.apply(&inc(48)).unwrap();
    assert_eq!(c.map_version(), published + 1);
    assert_eq!(c.shard_map().stream("s").unwrap().facts.retention_hours, 48);
}

#[test]
fn tags_add_remove_and_errors() {
    let mut c = catalog();
    let add = |t: &[(&str, &str)]| Command::AddTags {
        name: "s".into(),
        tags: tags(t),
    };
    let remove = |k: &[&str]| Command::RemoveTags {
        name: "s".into(),
        keys: k.iter().map(|s| s.to_string()).collect(),
    };
    assert_eq!(
        err(&mut c, add(&[("a", "b")])),
        (
            "ResourceNotFoundException",
            format!("Stream s under account {ACCT} not found.")
        )
    );
    assert_eq!(err(&mut c, remove(&[";"])).0, "ResourceNotFoundException");
    active(&mut c, "s", 1);
    assert_eq!(
        c.apply(&add(&[("b", "2"), ("a", "1")])).unwrap(),
        Outcome::TagsChanged
    );
    c.apply(&add(&[("a", "one"), ("k:x", "v @ /=+-._")]))
        .unwrap();
    assert_eq!(
        c.tags("s").unwrap(),
        &tags(&[("a", "one"), ("b", "2"), ("k:x", "v @ /=+-._")])
    );
    let invalid = (
        "InvalidArgumentException",
        "Some tags contain invalid characters. Valid characters: Unicode letters, digits, white \
         space, _ . / = + - % @."
            .to_string(),
    );
    for bad in ["abc;def", "abc\tdef", "abc\ndef", "abc,def"] {
        assert_eq!(err(&mut c, add(&[(bad, "1")])), invalid);
        assert_eq!(err(&mut c, add(&[("a", bad)])), invalid);
        assert_eq!(err(&mut c, remove(&[bad])), invalid);
    }
    assert_eq!(
        err(&mut c, add(&[("abc%def", "1")])),
        (
            "InvalidArgumentException",
            format!(
                "Failed to add tags to stream s under account {ACCT} because some tags contained \
                 illegal characters. The allowed characters are Unicode letters, white-spaces, \
                 '_',',','/','=','+','-','@'."
            )
        )
    );
    assert_eq!(
        err(&mut c, add(&[("a", "abc%def")])).1,
        format!(
            "Failed to add tags to stream s under account {ACCT} because some tags contained \
             illegal characters. The allowed characters are Unicode letters, white-spaces, \
             '_',',','/','=','+','-','@'."
        )
    );
    assert_eq!(
        err(&mut c, remove(&["abc%def"])).1,
        format!(
            "Failed to remove tags from stream s under account {ACCT} because some tags \
             contained illegal characters. The allowed characters are Unicode letters, \
             white-spaces, '_',',','/','=','+','-','@'."
        )
    );
    assert_eq!(
        c.apply(&remove(&["a", "missing"])).unwrap(),
        Outcome::TagsChanged
    );
    assert_eq!(c.tags("s").unwrap().len(), 2);

    // 50 tags at most, counting keys already present once.
    let many: BTreeMap<String, String> = (0..48)
        .map(|i| (format!("t{i:02}"), String::new()))
        .collect();
    c.apply(&Command::AddTags {
        name: "s".into(),
        tags: many,
    })
    .unwrap();
    assert_eq!(c.tags("s").unwrap().len(), 50);
    c.apply(&add(&[("t00", "overwrite")])).unwrap();
    // The 51st is refused with AWS's recorded text, which says 10.
    assert_eq!(
        err(&mut c, add(&[("new", "1")])),
        (
            "InvalidArgumentException",
            format!(
                "Failed to add tags to stream s under account {ACCT} because a given stream \
                 cannot have more than 10 tags associated with it."
            )
        )
    );
    // Lengths are the wire model's constraints.
    let long_key = "k".repeat(129);
    assert_eq!(
        err(&mut c, add(&[(&long_key, "1")])).0,
        "ValidationException"
    );
    assert_eq!(err(&mut c, add(&[("", "1")])).0, "ValidationException");
    let long_value = "v".repeat(257);
    assert_eq!(
        err(&mut c, add(&[("t00", &long_value)])).0,
        "ValidationException"
    );
    assert_eq!(err(&mut c, remove(&[""])).0, "ValidationException");
    // Create refuses over-long tag sets the same way.
    let too_many: BTreeMap<String, String> = (0..51)
        .map(|i| (format!("t{i:02}"), String::new()))
        .collect();
    let e = c
        .apply(&Command::CreateStream {
            name: "x".into(),
            shard_count: Some(1),
            mode: StreamMode::Provisioned,
            tags: too_many,
            now_ms: 1,
        })
        .unwrap_err();
    assert_eq!(
        e.message(),
        format!(
            "Failed to add tags to stream x under account {ACCT} because a given stream cannot \
             have more than 10 tags associated with it."
        )
    );
    assert!(c.stream("x").is_err());
}

#[test]
fn tag_and_untag_resource_by_arn() {
    let mut c = catalog();
    let arn = "arn:aws:kinesis:us-east-1:000000000000:stream/s".to_string();
    let tag = |arn: &str| Command::TagResource {
        arn: arn.to_string(),
        tags: tags(&[("k", "v")]),
    };
    assert_eq!(
        err(&mut c, tag(&arn)),
        (
            "ResourceNotFoundException",
            format!("Stream s under account {ACCT} not found.")
        )
    );
    active(&mut c, "s", 1);
    c.apply(&tag(&arn)).unwrap();
    assert_eq!(c.tags("s").unwrap(), &tags(&[("k", "v")]));
    c.apply(&Command::UntagResource {
        arn: arn.clone(),
        keys: vec!["k".into()],
    })
    .unwrap();
    assert!(c.tags("s").unwrap().is_empty());

    assert_eq!(
        err(
            &mut c,
            tag("arn:aws:kinesis:eu-west-1:000000000000:stream/s")
        ),
        (
            "ResourceNotFoundException",
            format!("Stream s under account {ACCT} not found.")
        )
    );
    assert_eq!(
        err(
            &mut c,
            tag("arn:aws:kinesis:us-east-1:111111111111:stream/s")
        ),
        (
            "ResourceNotFoundException",
            "Stream s under account 111111111111 not found.".to_string()
        )
    );
    assert_eq!(
        err(&mut c, tag("not-an-arn")),
        (
            "ValidationException",
            "1 validation error detected: Value 'not-an-arn' at 'resourceARN' failed to satisfy \
             constraint: Member must satisfy regular expression pattern: \
             arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+"
                .to_string()
        )
    );
    assert_eq!(
        err(
            &mut c,
            tag("arn:aws:kinesis:us-east-1:000000000000:stream/s/consumer/c:1")
        )
        .0,
        "InvalidArgumentException"
    );
}

#[test]
fn lookup_by_arn_and_arn_parsing() {
    let mut c = catalog();
    active(&mut c, "s", 2);
    let s = c
        .stream_by_arn("arn:aws:kinesis:us-east-1:000000000000:stream/s")
        .unwrap();
    assert_eq!(s.name, "s");
    assert_eq!(
        c.stream_by_arn("arn:aws:kinesis:us-east-1:000000000001:stream/s")
            .unwrap_err()
            .type_name(),
        "ResourceNotFoundException"
    );
    assert_eq!(
        c.stream_by_arn("arn:aws-cn:kinesis:us-east-1:000000000000:stream/s")
            .unwrap_err()
            .type_name(),
        "ResourceNotFoundException"
    );
    let e = c
        .stream_by_arn("arn:aws:kinesis:us-east-1:0:stream/s")
        .unwrap_err();
    assert_eq!(e.type_name(), "ValidationException");
    assert!(e.message().contains("at 'streamARN'"));
    for bad in [
        "",
        "arn:aws:kinesis",
        "arn:aws:sqs:us-east-1:000000000000:stream/s",
        "arn:aws:kinesis:us-east-1:000000000000:stream/",
        "arn:aws:kinesis:us-east-1:000000000000:table/s",
        "xarn:aws:kinesis:us-east-1:000000000000:stream/s",
        "arn:aws:kinesis:us-east-1:000000000000:stream/a b",
    ] {
        assert_eq!(parse_stream_arn(bad), None, "{bad}");
    }
    assert_eq!(
        parse_stream_arn("arn:aws:kinesis:r:123456789012:stream/a.b-c_d"),
        Some(StreamArn {
            partition: "aws",
            region: "r",
            account: "123456789012",
            name: "a.b-c_d"
        })
    );
}

#[test]
fn stream_names_are_sorted_and_paginate() {
    let mut c = catalog();
    for n in ["c", "a", "b"] {
        c.apply(&create(n, Some(1))).unwrap();
        c.apply(&activate(n)).unwrap();
    }
    assert_eq!(c.stream_names().collect::<Vec<_>>(), ["a", "b", "c"]);
    assert_eq!(
        c.stream_names_after(Some("a")).collect::<Vec<_>>(),
        ["b", "c"]
    );
    assert_eq!(
        c.stream_names_after(Some("aa")).collect::<Vec<_>>(),
        ["b", "c"]
    );
    assert_eq!(c.stream_names_after(None).count(), 3);
    assert_eq!(c.stream_names_after(Some("c")).count(), 0);
}

#[test]
fn shards_after_paginates() {
    let mut c = catalog();
    active(&mut c, "s", 5);
    let s = c.stream("s").unwrap();
    assert_eq!(s.shards_after(None).len(), 5);
    assert_eq!(s.shards_after(Some(ShardId(1)))[0].index, 2);
    assert!(s.shards_after(Some(ShardId(4))).is_empty());
    assert!(s.shards_after(Some(ShardId(u32::MAX))).is_empty());
    assert_eq!(s.shard(ShardId(3)).map(|x| x.uid), Some(4));
    assert!(s.shard(ShardId(5)).is_none());
}

#[test]
fn shard_map_follows_routing_changes_and_serves_one_delta() {
    let mut c = catalog();
    assert_eq!(c.map_version(), 0);
    assert_eq!(c.shard_map().streams().count(), 0);
    c.apply(&create("s", Some(2))).unwrap();
    assert_eq!(c.map_version(), 1);
    let m1 = c.shard_map();
    assert_eq!(m1.version(), 1);
    let route = m1.stream("s").unwrap();
    assert_eq!(route.state, StreamState::Creating);
    assert_eq!(route.shards.len(), 2);
    assert_eq!(route.shards[1].uid, 2);
    assert_eq!(route.shards[1].group, GroupId(1));
    assert_eq!(route.shards[1].node, NodeId(1));
    assert_eq!(route.shards[1].epoch, 1);

    c.apply(&activate("s")).unwrap();
    let m2 = c.shard_map();
    assert_eq!(m2.version(), 2);
    assert!(m2.verify().is_ok());
    let d = c.map_delta_since(1).unwrap();
    assert_eq!(d.from_version, 1);
    assert_eq!(d.to_version, 2);
    assert_eq!(m1.apply(&d).unwrap(), m2);
    assert!(c.map_delta_since(0).is_none());
    assert!(c.map_delta_since(2).is_none());

    // Tags and retention do not change routing.
    c.apply(&Command::AddTags {
        name: "s".into(),
        tags: tags(&[("a", "b")]),
    })
    .unwrap();
    assert_eq!(c.map_version(), 2);
    assert!(c.map_delta_since(1).is_some());

    c.apply(&delete("s")).unwrap();
    c.apply(&finish("s")).unwrap();
    assert_eq!(c.map_version(), 4);
    let d = c.map_delta_since(3).unwrap();
    assert_eq!(d.removals, vec!["s".to_string()]);
    assert!(c.shard_map().stream("s").is_none());
}

#[test]
fn placement_comes_from_the_config() {
    let mut c = Catalog::new(CatalogConfig {
        node: NodeId(7),
        group: GroupId(9),
        ..CatalogConfig::default()
    });
    active(&mut c, "s", 2);
    let s = c.stream("s").unwrap();
    assert!(s
        .shards
        .iter()
        .all(|x| x.node_id() == NodeId(7) && x.group_id() == GroupId(9)));
}

#[test]
fn snapshot_round_trips_and_damage_is_refused() {
    let mut c = catalog();
    active(&mut c, "a", 3);
    c.apply(&create("b", None)).unwrap();
    c.apply(&Command::AddTags {
        name: "a".into(),
        tags: tags(&[("k", "v")]),
    })
    .unwrap();
    let bytes = c.snapshot().unwrap();
    let r = Catalog::restore(CatalogConfig::default(), &bytes).unwrap();
    assert_eq!(r.state(), c.state());
    assert_eq!(r.shard_map(), c.shard_map());
    assert_eq!(r.snapshot().unwrap(), bytes);
    assert!(r.map_delta_since(c.map_version() - 1).is_none());

    // Every single-bit flip is refused.
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 0x10;
        assert!(
            Catalog::restore(CatalogConfig::default(), &bad).is_err(),
            "flip at {i} accepted"
        );
    }
    // Truncation is refused.
    for len in [0, 3, 19, bytes.len() - 1] {
        assert!(Catalog::restore(CatalogConfig::default(), &bytes[..len]).is_err());
    }
    assert!(matches!(
        Catalog::restore(CatalogConfig::default(), &bytes[..bytes.len() - 1]),
        Err(SnapshotError::Checksum { .. })
    ));
    // A snapshot from another region is refused.
    let other = CatalogConfig {
        region: "eu-west-1".into(),
        ..CatalogConfig::default()
    };
    assert!(matches!(
        Catalog::restore(other, &bytes),
        Err(SnapshotError::Invalid(_))
    ));
}

#[test]
fn a_well_framed_but_invalid_state_is_refused() {
    let mut c = catalog();
    active(&mut c, "a", 2);
    let mut state = c.state().clone();
    if let Some(s) = state.streams.get_mut("a") {
        s.shards[1].hash_start += 1;
    }
    let bytes = snapshot::encode(&state).unwrap();
    assert!(matches!(
        Catalog::restore(CatalogConfig::default(), &bytes),
        Err(SnapshotError::Invalid(_))
    ));
    // Duplicate shard uids.
    let mut state = c.state().clone();
    if let Some(s) = state.streams.get_mut("a") {
        s.shards[1].uid = s.shards[0].uid;
    }
    let bytes = snapshot::encode(&state).unwrap();
    assert!(Catalog::restore(CatalogConfig::default(), &bytes).is_err());
}

#[test]
fn an_invariant_violation_is_refused_and_rolled_back() {
    let mut c = catalog();
    active(&mut c, "a", 2);
    // Corrupt the live state behind the catalog's back, as a bug would.
    if let Some(s) = c.state.streams.get_mut("a") {
        s.shards[0].hash_end -= 1;
    }
    let before = c.state().clone();
    let e = c.apply(&create("b", Some(1))).unwrap_err();
    assert_eq!(e.type_name(), "InternalFailure");
    assert_eq!(e.message(), "Internal service failure.");
    assert_eq!(e.http_status(), 500);
    assert_eq!(c.state(), &before);
    assert!(c.stream("b").is_err());
}

#[test]
fn commands_and_outcomes_serialize() {
    let cmds = vec![
        create("s", Some(2)),
        activate("s"),
        Command::TagResource {
            arn: "arn:aws:kinesis:us-east-1:000000000000:stream/s".into(),
            tags: tags(&[("a", "b")]),
        },
        delete("s"),
        finish("s"),
    ];
    let json = serde_json::to_string(&cmds).unwrap();
    let back: Vec<Command> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, cmds);
    let o = Outcome::StreamRemoved {
        uid: 1,
        shard_uids: vec![1, 2],
    };
    let back: Outcome = serde_json::from_str(&serde_json::to_string(&o).unwrap()).unwrap();
    assert_eq!(back, o);
}

#[test]
fn error_types_and_statuses() {
    let cases = [
        (
            CatalogError::ResourceNotFound("m".into()),
            "ResourceNotFoundException",
        ),
        (
            CatalogError::ResourceInUse("m".into()),
            "ResourceInUseException",
        ),
        (
            CatalogError::LimitExceeded("m".into()),
            "LimitExceededException",
        ),
        (
            CatalogError::InvalidArgument("m".into()),
            "InvalidArgumentException",
        ),
        (CatalogError::Validation("m".into()), "ValidationException"),
    ];
    for (e, t) in cases {
        assert_eq!(e.type_name(), t);
        assert_eq!(e.message(), "m");
        assert_eq!(e.http_status(), 400);
    }
}
