//! Resource policies enforced for verified callers, end to end with the AWS SDK for Rust: three
//! credentials made with `levee credentials create` — two of the server's account (`admin`,
//! `bob`) and one of another account (`carol`) — against a server that verifies signatures.
//! A stream policy denying PutRecords to bob refuses bob and no one else; carol is refused
//! until a statement allows her account; a consumer policy judges SubscribeToShard.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use aws_credential_types::Credentials;
use aws_sdk_kinesis::error::ProvideErrorMetadata;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{
    PutRecordsRequestEntry, ShardIteratorType, StartingPosition, SubscribeToShardEventStream,
};
use common::*;

const STREAM: &str = "shared";
const STREAM_ARN: &str = "arn:aws:kinesis:us-east-1:000000000000:stream/shared";
const OTHER_ACCOUNT: &str = "111122223333";

/// `levee credentials create` → (access key id, secret).
fn create_key(data_dir: &Path, master_key: &Path, name: &str, account: &str) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_levee"))
        .args([
            "credentials",
            "create",
            "--name",
            name,
            "--account",
            account,
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--master-key-file")
        .arg(master_key)
        .stderr(Stdio::inherit())
        .output()
        .expect("run levee credentials");
    assert!(out.status.success());
    let out = String::from_utf8(out.stdout).unwrap();
    let field = |k: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or_else(|| panic!("{k} in {out}"))
            .trim()
            .to_owned()
    };
    (field("AccessKeyId:"), field("SecretAccessKey:"))
}

fn sdk(endpoint: &str, key: &(String, String)) -> aws_sdk_kinesis::Client {
    let cfg = aws_sdk_kinesis::Config::builder()
        .behavior_version(aws_sdk_kinesis::config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_sdk_kinesis::config::Region::new("us-east-1"))
        .credentials_provider(Credentials::new(&key.0, &key.1, None, None, "test"))
        .retry_config(aws_sdk_kinesis::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_kinesis::Client::from_conf(cfg)
}

struct Setup {
    server: Server,
    admin: aws_sdk_kinesis::Client,
    bob: aws_sdk_kinesis::Client,
    carol: aws_sdk_kinesis::Client,
    _keydir: tempfile::TempDir,
}

async fn setup(shards: i32) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let keydir = tempfile::tempdir().unwrap();
    let mk = keydir.path().join("master.key");
    let admin = create_key(dir.path(), &mk, "admin", "000000000000");
    let bob = create_key(dir.path(), &mk, "bob", "000000000000");
    let carol = create_key(dir.path(), &mk, "carol", OTHER_ACCOUNT);
    // A short heartbeat: a subscription to an empty shard sends its first event within 200 ms.
    let server = Server::start_with(
        dir,
        &[
            "--master-key-file",
            mk.to_str().unwrap(),
            "--subscription-heartbeat-ms",
            "200",
        ],
    );
    let s = Setup {
        admin: sdk(&server.endpoint, &admin),
        bob: sdk(&server.endpoint, &bob),
        carol: sdk(&server.endpoint, &carol),
        server,
        _keydir: keydir,
    };
    s.admin
        .create_stream()
        .stream_name(STREAM)
        .shard_count(shards)
        .send()
        .await
        .unwrap();
    wait_active(&s.admin, STREAM).await;
    s
}

async fn put_policy(c: &aws_sdk_kinesis::Client, arn: &str, statements: &str) {
    c.put_resource_policy()
        .resource_arn(arn)
        .policy(format!(
            r#"{{"Version":"2012-10-17","Statement":{statements}}}"#
        ))
        .send()
        .await
        .expect("PutResourcePolicy");
}

fn entry(pk: &str) -> PutRecordsRequestEntry {
    PutRecordsRequestEntry::builder()
        .partition_key(pk)
        .data(Blob::new(b"x".to_vec()))
        .build()
        .unwrap()
}

async fn put_records(c: &aws_sdk_kinesis::Client) -> Result<(), (String, String)> {
    c.put_records()
        .stream_name(STREAM)
        .records(entry("a"))
        .records(entry("b"))
        .send()
        .await
        .map(|out| assert_eq!(out.failed_record_count(), Some(0)))
        .map_err(|e| {
            (
                e.code().unwrap_or("").to_owned(),
                e.message().unwrap_or("").to_owned(),
            )
        })
}

fn code_and_message<E: ProvideErrorMetadata>(e: &E) -> (String, String) {
    (
        e.code().unwrap_or("").to_owned(),
        e.message().unwrap_or("").to_owned(),
    )
}

#[tokio::test]
async fn a_deny_refuses_one_principal_and_cross_account_needs_an_allow() {
    let s = setup(1).await;
    // No policy: both same-account callers may write; the other account may not.
    put_records(&s.admin).await.unwrap();
    put_records(&s.bob).await.unwrap();
    let e = s
        .carol
        .put_record()
        .stream_arn(STREAM_ARN)
        .partition_key("k")
        .data(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code_and_message(&e),
        (
            "AccessDeniedException".to_owned(),
            format!(
                "User: arn:aws:iam::{OTHER_ACCOUNT}:user/carol is not authorized to perform: \
                 kinesis:PutRecord on resource: {STREAM_ARN} because no resource-based policy \
                 allows the kinesis:PutRecord action"
            )
        )
    );
    assert_eq!(
        e.raw_response().map(|r| r.status().as_u16()),
        Some(400),
        "AccessDeniedException is HTTP 400"
    );

    put_policy(
        &s.admin,
        STREAM_ARN,
        &format!(
            r#"[{{"Sid":"NoBobWrites","Effect":"Deny","Principal":{{"AWS":"arn:aws:iam::000000000000:user/bob"}},"Action":["kinesis:PutRecord","kinesis:PutRecords"],"Resource":"{STREAM_ARN}"}},
                {{"Sid":"Partner","Effect":"Allow","Principal":{{"AWS":"{OTHER_ACCOUNT}"}},"Action":["kinesis:PutRecord","kinesis:DescribeStreamSummary","kinesis:ListShards","kinesis:GetShardIterator","kinesis:GetRecords"],"Resource":"{STREAM_ARN}"}}]"#
        ),
    )
    .await;

    // The policy reached the front-end's map with the PutResourcePolicy answer.
    let (code, message) = put_records(&s.bob).await.unwrap_err();
    assert_eq!(code, "AccessDeniedException");
    assert_eq!(
        message,
        format!(
            "User: arn:aws:iam::000000000000:user/bob is not authorized to perform: \
             kinesis:PutRecords on resource: {STREAM_ARN} with an explicit deny in a \
             resource-based policy"
        )
    );
    // The other principal of the same account still writes; bob still reads.
    put_records(&s.admin).await.unwrap();
    s.bob
        .get_shard_iterator()
        .stream_name(STREAM)
        .shard_id("shardId-000000000000")
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("bob may still read");

    // Carol is admitted for what the Allow names, by ARN as a cross-account caller must.
    s.carol
        .put_record()
        .stream_arn(STREAM_ARN)
        .partition_key("k")
        .data(Blob::new(b"from carol".to_vec()))
        .send()
        .await
        .expect("allowed cross-account PutRecord");
    let it = s
        .carol
        .get_shard_iterator()
        .stream_arn(STREAM_ARN)
        .shard_id("shardId-000000000000")
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap()
        .shard_iterator
        .unwrap();
    let got = s
        .carol
        .get_records()
        .shard_iterator(it)
        .stream_arn(STREAM_ARN)
        .send()
        .await
        .unwrap();
    assert!(got
        .records()
        .iter()
        .any(|r| r.data().as_ref() == b"from carol"));
    // ...and nothing else: PutRecords is not in the Allow, nor are account-level calls or the
    // policy itself (only the owner's account manages policies).
    let (code, message) = put_records(&s.carol).await.unwrap_err();
    assert_eq!(code, "AccessDeniedException");
    assert!(
        message.ends_with("because no resource-based policy allows the kinesis:PutRecords action")
    );
    let e = s.carol.list_streams().send().await.unwrap_err();
    assert_eq!(e.code(), Some("AccessDeniedException"));
    let e = s
        .carol
        .get_resource_policy()
        .resource_arn(STREAM_ARN)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("AccessDeniedException"));

    // Deleting the policy lifts the Deny.
    s.admin
        .delete_resource_policy()
        .resource_arn(STREAM_ARN)
        .send()
        .await
        .unwrap();
    put_records(&s.bob).await.unwrap();
    drop(s.server);
}

/// SubscribeToShard on `shard`: `Ok` once the first event arrived, or the error's code and text.
async fn subscribe(
    c: &aws_sdk_kinesis::Client,
    consumer: &str,
    shard: &str,
) -> Result<(), (String, String)> {
    let out = c
        .subscribe_to_shard()
        .consumer_arn(consumer)
        .shard_id(shard)
        .starting_position(
            StartingPosition::builder()
                .r#type(ShardIteratorType::TrimHorizon)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .map_err(|e| code_and_message(&e))?;
    let mut events = out.event_stream;
    match events.recv().await {
        Ok(Some(SubscribeToShardEventStream::SubscribeToShardEvent(_))) => Ok(()),
        other => panic!("expected an event, got {other:?}"),
    }
}

#[tokio::test]
async fn a_consumer_policy_judges_subscribe_to_shard() {
    // Three shards, so each subscription below has its own (consumer, shard) slot.
    let s = setup(3).await;
    let consumer = active_consumer(&s.admin, STREAM_ARN, "app").await;
    put_policy(
        &s.admin,
        &consumer,
        r#"{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::000000000000:user/bob"},"Action":"kinesis:SubscribeToShard","Resource":"*"}"#,
    )
    .await;
    let (code, message) = subscribe(&s.bob, &consumer, "shardId-000000000000")
        .await
        .unwrap_err();
    assert_eq!(code, "AccessDeniedException");
    assert_eq!(
        message,
        format!(
            "User: arn:aws:iam::000000000000:user/bob is not authorized to perform: \
             kinesis:SubscribeToShard on resource: {consumer} with an explicit deny in a \
             resource-based policy"
        )
    );
    subscribe(&s.admin, &consumer, "shardId-000000000000")
        .await
        .expect("admin subscribes");
    // The other account: refused without an Allow on the consumer...
    let (code, message) = subscribe(&s.carol, &consumer, "shardId-000000000001")
        .await
        .unwrap_err();
    assert_eq!(code, "AccessDeniedException");
    assert!(message
        .ends_with("because no resource-based policy allows the kinesis:SubscribeToShard action"));
    // ...and an Allow on the stream does not cover the consumer, a resource of its own.
    put_policy(
        &s.admin,
        STREAM_ARN,
        &format!(
            r#"{{"Effect":"Allow","Principal":{{"AWS":"{OTHER_ACCOUNT}"}},"Action":"kinesis:*","Resource":"*"}}"#
        ),
    )
    .await;
    assert!(subscribe(&s.carol, &consumer, "shardId-000000000001")
        .await
        .is_err());
    put_policy(
        &s.admin,
        &consumer,
        &format!(
            r#"[{{"Effect":"Deny","Principal":{{"AWS":"arn:aws:iam::000000000000:user/bob"}},"Action":"kinesis:SubscribeToShard","Resource":"*"}},
                {{"Effect":"Allow","Principal":{{"AWS":"{OTHER_ACCOUNT}"}},"Action":["kinesis:SubscribeToShard","kinesis:DescribeStreamConsumer"],"Resource":"{consumer}"}}]"#
        ),
    )
    .await;
    subscribe(&s.carol, &consumer, "shardId-000000000002")
        .await
        .expect("allowed cross-account SubscribeToShard");
    s.carol
        .describe_stream_consumer()
        .consumer_arn(&consumer)
        .send()
        .await
        .expect("allowed DescribeStreamConsumer");
}
