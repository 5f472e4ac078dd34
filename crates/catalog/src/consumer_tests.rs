//! Unit tests for enhanced fan-out consumers: every command's success path and every error text.

use super::*;

const ACCT: &str = "000000000000";
const S_ARN: &str = "arn:aws:kinesis:us-east-1:000000000000:stream/s";

fn catalog_with_stream() -> Catalog {
    let mut c = Catalog::new(CatalogConfig::default());
    c.apply(&Command::CreateStream {
        name: "s".to_string(),
        shard_count: Some(1),
        mode: StreamMode::Provisioned,
        tags: BTreeMap::new(),
        now_ms: 1_000,
    })
    .unwrap();
    c.apply(&Command::ActivateStream {
        name: "s".to_string(),
        now_ms: 2_000,
    })
    .unwrap();
    c
}

fn register(stream_arn: &str, name: &str, now_ms: u64) -> Command {
    Command::RegisterConsumer {
        stream_arn: stream_arn.to_string(),
        consumer_name: name.to_string(),
        now_ms,
    }
}

fn activate(arn: &str) -> Command {
    Command::ActivateConsumer {
        consumer_arn: arn.to_string(),
        now_ms: 50_000,
    }
}

fn deregister(stream_arn: Option<&str>, name: Option<&str>, arn: Option<&str>) -> Command {
    Command::DeregisterConsumer {
        stream_arn: stream_arn.map(str::to_string),
        consumer_name: name.map(str::to_string),
        consumer_arn: arn.map(str::to_string),
        now_ms: 60_000,
    }
}

fn finish(arn: &str) -> Command {
    Command::FinishDeregisterConsumer {
        consumer_arn: arn.to_string(),
    }
}

fn delete_stream(enforce: bool) -> Command {
    Command::DeleteStream {
        name: "s".to_string(),
        enforce_consumer_deletion: enforce,
        now_ms: 70_000,
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

fn arn_of(name: &str, secs: u64) -> String {
    format!("{S_ARN}/consumer/{name}:{secs}")
}

#[test]
fn register_activate_deregister_finish() {
    let mut c = catalog_with_stream();
    let version = c.map_version();
    let arn = arn_of("app", 12);
    assert_eq!(
        c.apply(&register(S_ARN, "app", 12_345)).unwrap(),
        Outcome::ConsumerRegistered {
            consumer_arn: arn.clone()
        }
    );
    let want = ConsumerDescription {
        consumer_name: "app".into(),
        consumer_arn: arn.clone(),
        status: ConsumerStatus::Creating,
        created_ms: 12_345,
        stream_arn: S_ARN.into(),
    };
    assert_eq!(c.describe_consumer(None, None, Some(&arn)).unwrap(), want);
    assert_eq!(
        c.describe_consumer(Some(S_ARN), Some("app"), None).unwrap(),
        want
    );
    assert_eq!(
        c.describe_consumer(Some(S_ARN), Some("app"), Some(&arn))
            .unwrap(),
        want
    );
    assert_eq!(c.consumer_count("s").unwrap(), 1);
    assert_eq!(
        c.apply(&activate(&arn)).unwrap(),
        Outcome::ConsumerActivated
    );
    assert_eq!(c.apply(&activate(&arn)).unwrap(), Outcome::Unchanged);
    let d = c.describe_consumer(None, None, Some(&arn)).unwrap();
    assert_eq!(d.status, ConsumerStatus::Active);
    assert_eq!(d.status.as_str(), "ACTIVE");
    assert_eq!(
        c.apply(&deregister(None, None, Some(&arn))).unwrap(),
        Outcome::ConsumerDeregistering {
            consumer_arn: arn.clone()
        }
    );
    assert_eq!(
        c.describe_consumer(None, None, Some(&arn)).unwrap().status,
        ConsumerStatus::Deleting
    );
    assert_eq!(c.consumer_count("s").unwrap(), 1, "DELETING still counts");
    assert_eq!(
        c.apply(&finish(&arn)).unwrap(),
        Outcome::ConsumerRemoved {
            consumer_arn: arn.clone()
        }
    );
    assert_eq!(c.consumer_count("s").unwrap(), 0);
    // Consumers route no data, but the map carries them (front-ends look them up there): each
    // of register, activate, deregister and finish published the next map.
    assert_eq!(c.map_version(), version + 4);
    assert!(c
        .shard_map()
        .stream("s")
        .unwrap()
        .facts
        .consumers
        .is_empty());
}

#[test]
fn deregister_by_stream_and_name_and_reregister_gets_a_new_arn() {
    let mut c = catalog_with_stream();
    let old = arn_of("app", 1);
    c.apply(&register(S_ARN, "app", 1_500)).unwrap();
    c.apply(&activate(&old)).unwrap();
    assert_eq!(
        c.apply(&deregister(Some(S_ARN), Some("app"), None))
            .unwrap(),
        Outcome::ConsumerDeregistering {
            consumer_arn: old.clone()
        }
    );
    c.apply(&finish(&old)).unwrap();
    c.apply(&register(S_ARN, "app", 9_000)).unwrap();
    let new = arn_of("app", 9);
    assert_eq!(
        c.describe_consumer(Some(S_ARN), Some("app"), None)
            .unwrap()
            .consumer_arn,
        new
    );
    // The old ARN names an earlier consumer: not found.
    assert_eq!(
        c.describe_consumer(None, None, Some(&old))
            .unwrap_err()
            .message(),
        format!(
            "Consumer app with creation timestamp 1 under stream s and account {ACCT} not found."
        )
    );
    assert_eq!(
        err(&mut c, activate(&old)).1,
        format!(
            "Consumer app with creation timestamp 1 under stream s and account {ACCT} not found."
        )
    );
}

#[test]
fn register_errors() {
    let mut c = catalog_with_stream();
    assert_eq!(
        err(&mut c, register(S_ARN, "bad name", 1_000)),
        (
            "ValidationException",
            "1 validation error detected: Value 'bad name' at 'consumerName' failed to satisfy \
             constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
                .to_string()
        )
    );
    let long = "x".repeat(129);
    assert_eq!(
        err(&mut c, register(S_ARN, &long, 1_000)).1,
        format!(
            "1 validation error detected: Value '{long}' at 'consumerName' failed to satisfy \
             constraint: Member must have length less than or equal to 128"
        )
    );
    assert_eq!(
        err(&mut c, register(S_ARN, "", 1_000)).1,
        "2 validation errors detected: Value '' at 'consumerName' failed to satisfy \
         constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; Value '' \
         at 'consumerName' failed to satisfy constraint: Member must have length greater than \
         or equal to 1"
    );
    assert_eq!(
        err(&mut c, register("garbage", "app", 1_000)),
        (
            "ValidationException",
            "1 validation error detected: Value 'garbage' at 'streamARN' failed to satisfy \
             constraint: Member must satisfy regular expression pattern: \
             arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+"
                .to_string()
        )
    );
    assert_eq!(
        err(
            &mut c,
            register(
                "arn:aws:kinesis:us-east-1:000000000000:stream/t",
                "app",
                1_000
            )
        ),
        (
            "ResourceNotFoundException",
            format!("Stream t under account {ACCT} not found.")
        )
    );
    // A stream still CREATING.
    c.apply(&Command::CreateStream {
        name: "t".to_string(),
        shard_count: Some(1),
        mode: StreamMode::Provisioned,
        tags: BTreeMap::new(),
        now_ms: 1_000,
    })
    .unwrap();
    assert_eq!(
        err(
            &mut c,
            register(
                "arn:aws:kinesis:us-east-1:000000000000:stream/t",
                "app",
                1_000
            )
        ),
        (
            "ResourceInUseException",
            format!("Stream t under account {ACCT} not ACTIVE, instead in state CREATING")
        )
    );
    c.apply(&register(S_ARN, "app", 1_000)).unwrap();
    assert_eq!(
        err(&mut c, register(S_ARN, "app", 5_000)),
        (
            "ResourceInUseException",
            format!("Consumer app under stream s and account {ACCT} already exists.")
        )
    );
}

#[test]
fn register_limits() {
    let mut c = catalog_with_stream();
    for i in 1..CONSUMERS_CREATING_MAX {
        c.apply(&register(S_ARN, &format!("c{i:02}"), 1_000))
            .unwrap();
    }
    c.apply(&register(S_ARN, "c00", 1_000)).unwrap();
    assert_eq!(
        err(&mut c, register(S_ARN, "more", 1_000)),
        (
            "LimitExceededException",
            format!(
                "This request would exceed the limit of 5 consumers in the CREATING state for \
                 stream s under account {ACCT}."
            )
        )
    );
    let names: Vec<String> = c
        .list_consumers(S_ARN)
        .unwrap()
        .into_iter()
        .map(|d| d.consumer_name)
        .collect();
    assert_eq!(names, ["c00", "c01", "c02", "c03", "c04"], "sorted by name");
    for n in names {
        c.apply(&activate(&arn_of(&n, 1))).unwrap();
    }
    for i in 5..CONSUMERS_PER_STREAM_MAX {
        let n = format!("c{i:02}");
        c.apply(&register(S_ARN, &n, 1_000)).unwrap();
        c.apply(&activate(&arn_of(&n, 1))).unwrap();
    }
    assert_eq!(c.consumer_count("s").unwrap(), 20);
    assert_eq!(
        err(&mut c, register(S_ARN, "more", 1_000)),
        (
            "LimitExceededException",
            format!(
                "This request would exceed the limit of 20 consumers registered to stream s \
                 under account {ACCT}."
            )
        )
    );
}

#[test]
fn describe_and_list_errors() {
    let c = catalog_with_stream();
    let required = "ConsumerArn or both ConsumerName and StreamARN are required for this request.";
    for (s, n) in [(None, None), (Some(S_ARN), None), (None, Some("app"))] {
        let e = c.describe_consumer(s, n, None).unwrap_err();
        assert_eq!(
            (e.type_name(), e.message()),
            ("InvalidArgumentException", required)
        );
    }
    let e = c
        .describe_consumer(Some(S_ARN), Some("app"), None)
        .unwrap_err();
    assert_eq!(
        (e.type_name(), e.message().to_string()),
        (
            "ResourceNotFoundException",
            format!("Consumer app under stream s and account {ACCT} not found.")
        )
    );
    let e = c
        .describe_consumer(
            None,
            None,
            Some("arn:aws:kinesis:us-east-1:000000000000:stream/s"),
        )
        .unwrap_err();
    assert_eq!(
        (e.type_name(), e.message()),
        (
            "ValidationException",
            "1 validation error detected: Value 'arn:aws:kinesis:us-east-1:000000000000:stream/s' \
             at 'consumerARN' failed to satisfy constraint: Member must satisfy regular \
             expression pattern: ^(arn):aws.*:kinesis:.*:\\d{12}:.*stream\\/[a-zA-Z0-9_.-]+\\/\
             consumer\\/[a-zA-Z0-9_.-]+:[0-9]+"
        )
    );
    // Another region, or a stream that does not exist: the consumer is not found.
    let other = "arn:aws:kinesis:eu-west-1:000000000000:stream/s/consumer/app:1";
    assert_eq!(
        c.describe_consumer(None, None, Some(other))
            .unwrap_err()
            .message(),
        format!(
            "Consumer app with creation timestamp 1 under stream s and account {ACCT} not found."
        )
    );
    let e = c
        .describe_consumer(None, Some("bad name"), Some(other))
        .unwrap_err();
    assert_eq!(e.type_name(), "ValidationException");
    assert_eq!(
        c.list_consumers("arn:aws:kinesis:us-east-1:000000000000:stream/t")
            .unwrap_err()
            .message(),
        format!("Stream t under account {ACCT} not found.")
    );
    assert_eq!(c.list_consumers(S_ARN).unwrap(), []);
    assert_eq!(
        c.consumer_count("t").unwrap_err().message(),
        format!("Stream t under account {ACCT} not found.")
    );
}

#[test]
fn all_three_parameters_must_agree() {
    let mut c = catalog_with_stream();
    c.apply(&register(S_ARN, "app", 1_000)).unwrap();
    c.apply(&register(S_ARN, "other", 1_000)).unwrap();
    let arn = arn_of("app", 1);
    let conflict = format!("ConsumerARN {arn} does not match the ConsumerName or StreamARN given.");
    let e = c
        .describe_consumer(Some(S_ARN), Some("other"), Some(&arn))
        .unwrap_err();
    assert_eq!(
        (e.type_name(), e.message()),
        ("InvalidArgumentException", conflict.as_str())
    );
    c.apply(&Command::CreateStream {
        name: "t".to_string(),
        shard_count: Some(1),
        mode: StreamMode::Provisioned,
        tags: BTreeMap::new(),
        now_ms: 1_000,
    })
    .unwrap();
    let t_arn = "arn:aws:kinesis:us-east-1:000000000000:stream/t";
    let e = c
        .describe_consumer(Some(t_arn), None, Some(&arn))
        .unwrap_err();
    assert_eq!(e.message(), conflict);
    assert_eq!(
        c.describe_consumer(Some(S_ARN), None, Some(&arn))
            .unwrap()
            .consumer_name,
        "app"
    );
}

#[test]
fn deregister_errors() {
    let mut c = catalog_with_stream();
    let arn = arn_of("app", 1);
    assert_eq!(
        err(&mut c, deregister(None, Some("app"), None)),
        (
            "InvalidArgumentException",
            "ConsumerArn or both ConsumerName and StreamARN are required for this request."
                .to_string()
        )
    );
    assert_eq!(
        err(&mut c, deregister(Some(S_ARN), Some("app"), None)),
        (
            "ResourceNotFoundException",
            format!("Consumer app under stream s and account {ACCT} not found.")
        )
    );
    assert_eq!(
        err(&mut c, deregister(None, None, Some(&arn))),
        (
            "ResourceNotFoundException",
            format!(
                "Consumer app with creation timestamp 1 under stream s and account {ACCT} not \
                 found."
            )
        )
    );
    c.apply(&register(S_ARN, "app", 1_000)).unwrap();
    let not_active = format!(
        "Consumer app with creation timestamp 1 under stream s and account {ACCT} is not in \
         ACTIVE status."
    );
    assert_eq!(
        err(&mut c, deregister(None, None, Some(&arn))),
        ("ResourceInUseException", not_active.clone())
    );
    c.apply(&activate(&arn)).unwrap();
    c.apply(&deregister(None, None, Some(&arn))).unwrap();
    assert_eq!(
        err(&mut c, deregister(Some(S_ARN), Some("app"), None)),
        ("ResourceInUseException", not_active)
    );
}

#[test]
fn activate_and_finish_errors() {
    let mut c = catalog_with_stream();
    let arn = arn_of("app", 1);
    assert_eq!(err(&mut c, activate(&arn)).0, "ResourceNotFoundException");
    assert_eq!(err(&mut c, finish(&arn)).0, "ResourceNotFoundException");
    assert_eq!(err(&mut c, finish("junk")).0, "ValidationException");
    c.apply(&register(S_ARN, "app", 1_000)).unwrap();
    assert_eq!(
        err(&mut c, finish(&arn)),
        (
            "ResourceInUseException",
            format!("Consumer app under stream s and account {ACCT} not DELETING, instead in state CREATING")
        )
    );
    c.apply(&activate(&arn)).unwrap();
    c.apply(&deregister(None, None, Some(&arn))).unwrap();
    assert_eq!(
        err(&mut c, activate(&arn)),
        (
            "ResourceInUseException",
            format!("Consumer app under stream s and account {ACCT} not CREATING, instead in state DELETING")
        )
    );
}

#[test]
fn delete_stream_with_consumers() {
    let mut c = catalog_with_stream();
    c.apply(&register(S_ARN, "app", 1_000)).unwrap();
    assert_eq!(
        err(&mut c, delete_stream(false)),
        (
            "ResourceInUseException",
            format!(
                "DeleteStream can\u{2019}t delete {ACCT}:s because there are consumers \
                 associated with this data stream. To delete s anyway, set the \
                 EnforceConsumerDeletion parameter to true to force the deletion of all the \
                 consumers that are associated with it."
            )
        )
    );
    assert_eq!(
        c.apply(&delete_stream(true)).unwrap(),
        Outcome::StreamDeleting
    );
    assert_eq!(c.consumer_count("s").unwrap(), 0);
    assert_eq!(c.list_consumers(S_ARN).unwrap(), []);
    assert_eq!(
        err(&mut c, register(S_ARN, "app", 80_000)),
        (
            "ResourceInUseException",
            format!("Stream s under account {ACCT} not ACTIVE, instead in state DELETING")
        )
    );
    // Without consumers, no flag is needed.
    let mut c = catalog_with_stream();
    assert_eq!(
        c.apply(&delete_stream(false)).unwrap(),
        Outcome::StreamDeleting
    );
}

#[test]
fn consumer_arns_parse() {
    let p = parse_consumer_arn(
        "arn:aws:kinesis:us-east-1:123456789012:stream/a.b/consumer/c-d_e:1700000000",
    )
    .unwrap();
    assert_eq!(p.stream.name, "a.b");
    assert_eq!(p.stream.account, "123456789012");
    assert_eq!(p.consumer_name, "c-d_e");
    assert_eq!(p.created_secs, 1_700_000_000);
    for bad in [
        "arn:aws:kinesis:us-east-1:123456789012:stream/a/consumer/c",
        "arn:aws:kinesis:us-east-1:123456789012:stream/a/consumer/c:",
        "arn:aws:kinesis:us-east-1:123456789012:stream/a/consumer/c:+1",
        "arn:aws:kinesis:us-east-1:123456789012:stream/a/consumer/:1",
        "arn:aws:kinesis:us-east-1:123456789012:stream/a/consumer/c d:1",
        "arn:aws:kinesis:us-east-1:12345:stream/a/consumer/c:1",
        "arn:aws:kinesis:us-east-1:123456789012:stream/a",
    ] {
        assert_eq!(parse_consumer_arn(bad), None, "{bad}");
    }
    // A consumer ARN is not a stream ARN.
    assert_eq!(
        parse_stream_arn("arn:aws:kinesis:us-east-1:123456789012:stream/a/consumer/c:1"),
        None
    );
}

#[test]
fn snapshots_carry_consumers_and_old_snapshots_load() {
    let mut c = catalog_with_stream();
    c.apply(&register(S_ARN, "app", 1_000)).unwrap();
    let bytes = c.snapshot().unwrap();
    let r = Catalog::restore(CatalogConfig::default(), &bytes).unwrap();
    assert_eq!(r.state(), c.state());
    assert_eq!(r.consumer_count("s").unwrap(), 1);

    // A state written before consumers existed has no `consumers` field: it loads as none.
    let json = serde_json::to_string(catalog_with_stream().state()).unwrap();
    assert!(json.contains(",\"consumers\":{}"));
    let json = json.replace(",\"consumers\":{}", "");
    let old: CatalogState = serde_json::from_str(&json).unwrap();
    assert!(old.streams()["s"].consumers.is_empty());
    let bytes = snapshot::encode(&old).unwrap();
    let r = Catalog::restore(CatalogConfig::default(), &bytes).unwrap();
    assert_eq!(r.state(), catalog_with_stream().state());
}

#[test]
fn consumer_invariants_are_checked() {
    let mut c = catalog_with_stream();
    c.apply(&register(S_ARN, "app", 1_000)).unwrap();
    let break_with = |f: &dyn Fn(&mut Stream)| {
        let mut state = c.state().clone();
        if let Some(s) = state.streams.get_mut("s") {
            f(s);
        }
        let bytes = snapshot::encode(&state).unwrap();
        match Catalog::restore(CatalogConfig::default(), &bytes) {
            Err(SnapshotError::Invalid(reason)) => reason,
            other => panic!("restored a broken state: {other:?}"),
        }
    };
    let wrong_arn = break_with(&|s| {
        if let Some(k) = s.consumers.get_mut("app") {
            k.arn = arn_of("app", 2);
        }
    });
    assert!(wrong_arn.contains("has ARN"), "{wrong_arn}");
    let misfiled = break_with(&|s| {
        if let Some(k) = s.consumers.remove("app") {
            s.consumers.insert("other".into(), k);
        }
    });
    assert!(misfiled.contains("filed under"), "{misfiled}");
    let deleting = break_with(&|s| s.status = StreamStatus::Deleting);
    assert!(deleting.contains("DELETING with consumers"), "{deleting}");
    let too_many_creating = break_with(&|s| {
        for i in 0..CONSUMERS_CREATING_MAX {
            let name = format!("n{i}");
            let arn = format!("{}/consumer/{name}:1", s.arn);
            s.consumers.insert(
                name.clone(),
                Consumer {
                    name,
                    arn,
                    status: ConsumerStatus::Creating,
                    created_ms: 1_000,
                    status_changed_ms: 1_000,
                    policy: None,
                },
            );
        }
    });
    assert!(
        too_many_creating.contains("CREATING consumers"),
        "{too_many_creating}"
    );
}

#[test]
fn consumer_commands_serialize() {
    let cmds = vec![
        register(S_ARN, "app", 1_000),
        activate(&arn_of("app", 1)),
        deregister(Some(S_ARN), Some("app"), None),
        finish(&arn_of("app", 1)),
    ];
    let json = serde_json::to_string(&cmds).unwrap();
    let back: Vec<Command> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, cmds);
    let o = Outcome::ConsumerRegistered {
        consumer_arn: arn_of("app", 1),
    };
    let back: Outcome = serde_json::from_str(&serde_json::to_string(&o).unwrap()).unwrap();
    assert_eq!(back, o);
    assert_eq!(
        serde_json::to_string(&ConsumerStatus::Creating).unwrap(),
        "\"CREATING\""
    );
}
