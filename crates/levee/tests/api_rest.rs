//! The AWS SDK for Rust against a real `levee serve`: the operations of issue 6 — DescribeLimits,
//! Describe/UpdateAccountSettings, UpdateStreamMode, UpdateStreamWarmThroughput,
//! UpdateMaxRecordSize (a 5 MiB record refused, then taken), Enable/DisableEnhancedMonitoring,
//! Put/Get/DeleteResourcePolicy on streams and consumers, and Start/StopStreamEncryption with a
//! byte scan of the data directory. Each asserts the response fields and at least one error.

mod common;

use std::path::Path;

use aws_sdk_kinesis::error::ProvideErrorMetadata;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{
    EncryptionType, MetricsName, MinimumThroughputBillingCommitmentInput,
    MinimumThroughputBillingCommitmentInputStatus as In,
    MinimumThroughputBillingCommitmentOutputStatus as Out, StreamMode, StreamModeDetails,
    StreamStatus,
};
use aws_sdk_kinesis::Client;
use common::*;

const ACCOUNT: &str = "000000000000";
const SHARD0: &str = "shardId-000000000000";

fn arn(name: &str) -> String {
    format!("arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/{name}")
}

/// The error's `__type` and message.
fn code<E: ProvideErrorMetadata + std::fmt::Debug>(
    r: Result<impl std::fmt::Debug, E>,
) -> (String, String) {
    let e = r.expect_err("expected an error");
    (
        e.code().unwrap_or_default().to_string(),
        e.message().unwrap_or_default().to_string(),
    )
}

async fn create(c: &Client, name: &str, shards: i32) {
    c.create_stream()
        .stream_name(name)
        .shard_count(shards)
        .send()
        .await
        .expect("CreateStream");
    wait_active(c, name).await;
}

async fn status(c: &Client, name: &str) -> StreamStatus {
    c.describe_stream_summary()
        .stream_name(name)
        .send()
        .await
        .expect("summary")
        .stream_description_summary()
        .expect("summary")
        .stream_status()
        .clone()
}

#[tokio::test]
async fn limits_and_account_settings() {
    let server = Server::start();
    let c = server.client();
    create(&c, "lim", 3).await;
    let l = c.describe_limits().send().await.expect("DescribeLimits");
    assert_eq!(l.shard_limit(), 20_000);
    assert_eq!(l.open_shard_count(), 3);
    assert_eq!(l.on_demand_stream_count(), 0);
    assert_eq!(l.on_demand_stream_count_limit(), 50);

    let a = c
        .describe_account_settings()
        .send()
        .await
        .expect("Describe");
    let m = a
        .minimum_throughput_billing_commitment()
        .expect("commitment");
    assert_eq!(m.status(), &Out::Disabled);
    assert!(m.started_at().is_none());

    let on = MinimumThroughputBillingCommitmentInput::builder()
        .status(In::Enabled)
        .build()
        .unwrap();
    let u = c
        .update_account_settings()
        .minimum_throughput_billing_commitment(on)
        .send()
        .await
        .expect("Update");
    let m = u
        .minimum_throughput_billing_commitment()
        .expect("commitment");
    assert_eq!(m.status(), &Out::Enabled);
    let started = m.started_at().expect("StartedAt").secs();
    let earliest = m
        .earliest_allowed_end_at()
        .expect("EarliestAllowedEndAt")
        .secs();
    assert_eq!(earliest - started, 24 * 3600);

    // Disabling within the minimum term keeps it on until the earliest allowed end.
    let off = MinimumThroughputBillingCommitmentInput::builder()
        .status(In::Disabled)
        .build()
        .unwrap();
    c.update_account_settings()
        .minimum_throughput_billing_commitment(off)
        .send()
        .await
        .expect("Update");
    let a = c
        .describe_account_settings()
        .send()
        .await
        .expect("Describe");
    let m = a
        .minimum_throughput_billing_commitment()
        .expect("commitment");
    assert_eq!(m.status(), &Out::EnabledUntilEarliestAllowedEnd);
    assert_eq!(m.ended_at().map(|t| t.secs()), Some(earliest));

    // An unknown status is a validation error.
    let bad = MinimumThroughputBillingCommitmentInput::builder()
        .status(In::from("SOMETIMES"))
        .build()
        .unwrap();
    let (t, msg) = code(
        c.update_account_settings()
            .minimum_throughput_billing_commitment(bad)
            .send()
            .await,
    );
    assert_eq!(t, "ValidationException", "{msg}");
}

#[tokio::test]
async fn stream_mode_and_warm_throughput() {
    let server = Server::start();
    let c = server.client();
    create(&c, "mode", 1).await;
    // Warm throughput is for ON_DEMAND streams only.
    let (t, _) = code(
        c.update_stream_warm_throughput()
            .stream_name("mode")
            .warm_throughput_mibps(100)
            .send()
            .await,
    );
    assert_eq!(t, "InvalidArgumentException");

    c.update_stream_mode()
        .stream_arn(arn("mode"))
        .stream_mode_details(
            StreamModeDetails::builder()
                .stream_mode(StreamMode::OnDemand)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("UpdateStreamMode");
    assert_eq!(status(&c, "mode").await, StreamStatus::Updating);
    wait_active(&c, "mode").await;
    let d = c
        .describe_stream()
        .stream_name("mode")
        .send()
        .await
        .expect("describe");
    let mode = d
        .stream_description()
        .and_then(|s| s.stream_mode_details())
        .map(|m| m.stream_mode().clone());
    assert_eq!(mode, Some(StreamMode::OnDemand));
    let l = c.list_streams().send().await.expect("ListStreams");
    assert_eq!(
        l.stream_summaries()[0]
            .stream_mode_details()
            .map(|m| m.stream_mode().clone()),
        Some(StreamMode::OnDemand)
    );
    let lim = c.describe_limits().send().await.expect("DescribeLimits");
    assert_eq!(lim.on_demand_stream_count(), 1);

    let w = c
        .update_stream_warm_throughput()
        .stream_arn(arn("mode"))
        .warm_throughput_mibps(100)
        .send()
        .await
        .expect("UpdateStreamWarmThroughput");
    assert_eq!(w.stream_name(), Some("mode"));
    assert_eq!(w.stream_arn(), Some(arn("mode").as_str()));
    assert_eq!(
        w.warm_throughput().and_then(|t| t.target_mibps()),
        Some(100)
    );
    assert_eq!(status(&c, "mode").await, StreamStatus::Updating);
    wait_active(&c, "mode").await;
    let s = c
        .describe_stream_summary()
        .stream_name("mode")
        .send()
        .await
        .expect("summary");
    let s = s.stream_description_summary().unwrap();
    assert_eq!(
        s.warm_throughput().and_then(|t| t.target_mibps()),
        Some(100)
    );
    assert_eq!(
        s.warm_throughput().and_then(|t| t.current_mibps()),
        Some(100)
    );

    // Not found by ARN.
    let (t, msg) = code(
        c.update_stream_mode()
            .stream_arn(arn("nope"))
            .stream_mode_details(
                StreamModeDetails::builder()
                    .stream_mode(StreamMode::Provisioned)
                    .build()
                    .unwrap(),
            )
            .send()
            .await,
    );
    assert_eq!(t, "ResourceNotFoundException");
    assert_eq!(
        msg,
        format!("Stream nope under account {ACCOUNT} not found.")
    );
}

#[tokio::test]
async fn max_record_size_takes_a_5_mib_record_only_once_raised() {
    let server = Server::start();
    let c = server.client();
    create(&c, "big", 1).await;
    let five = vec![7u8; 5 << 20];
    let (t, msg) = code(
        c.put_record()
            .stream_name("big")
            .partition_key("k")
            .data(Blob::new(five.clone()))
            .send()
            .await,
    );
    assert_eq!(t, "ValidationException");
    assert!(msg.ends_with("less than or equal to 1048576"), "{msg}");

    let (t, msg) = code(
        c.update_max_record_size()
            .stream_arn(arn("big"))
            .max_record_size_in_kib(512)
            .send()
            .await,
    );
    assert_eq!(t, "ValidationException", "{msg}");
    c.update_max_record_size()
        .stream_arn(arn("big"))
        .max_record_size_in_kib(10240)
        .send()
        .await
        .expect("UpdateMaxRecordSize");
    let s = c
        .describe_stream_summary()
        .stream_name("big")
        .send()
        .await
        .unwrap();
    assert_eq!(
        s.stream_description_summary()
            .unwrap()
            .max_record_size_in_kib(),
        Some(10240)
    );
    c.put_record()
        .stream_name("big")
        .partition_key("k")
        .data(Blob::new(five.clone()))
        .send()
        .await
        .expect("5 MiB PutRecord");
    let got = read_shard(&c, "big", SHARD0).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].data().as_ref(), &five[..]);
    // Over 10 MiB in one PutRecords request is still refused.
    let entry = aws_sdk_kinesis::types::PutRecordsRequestEntry::builder()
        .partition_key("k")
        .data(Blob::new(vec![1u8; 11 << 19]))
        .build()
        .unwrap();
    let (t, _) = code(
        c.put_records()
            .stream_name("big")
            .records(entry.clone())
            .records(entry)
            .send()
            .await,
    );
    assert_eq!(t, "InvalidArgumentException");
}

#[tokio::test]
async fn enhanced_monitoring() {
    let server = Server::start();
    let c = server.client();
    create(&c, "mon", 1).await;
    let e = c
        .enable_enhanced_monitoring()
        .stream_name("mon")
        .shard_level_metrics(MetricsName::IncomingBytes)
        .shard_level_metrics(MetricsName::OutgoingRecords)
        .send()
        .await
        .expect("Enable");
    assert_eq!(e.stream_name(), Some("mon"));
    assert_eq!(e.stream_arn(), Some(arn("mon").as_str()));
    assert!(e.current_shard_level_metrics().is_empty());
    assert_eq!(
        e.desired_shard_level_metrics(),
        &[MetricsName::IncomingBytes, MetricsName::OutgoingRecords]
    );
    let d = c.describe_stream().stream_name("mon").send().await.unwrap();
    assert_eq!(
        d.stream_description().unwrap().enhanced_monitoring()[0].shard_level_metrics(),
        &[MetricsName::IncomingBytes, MetricsName::OutgoingRecords]
    );
    let e = c
        .enable_enhanced_monitoring()
        .stream_arn(arn("mon"))
        .shard_level_metrics(MetricsName::All)
        .send()
        .await
        .expect("Enable ALL");
    assert_eq!(e.current_shard_level_metrics().len(), 2);
    assert_eq!(e.desired_shard_level_metrics().len(), 7);
    let e = c
        .disable_enhanced_monitoring()
        .stream_name("mon")
        .shard_level_metrics(MetricsName::IncomingBytes)
        .send()
        .await
        .expect("Disable");
    assert_eq!(e.desired_shard_level_metrics().len(), 6);
    assert!(!e
        .desired_shard_level_metrics()
        .contains(&MetricsName::IncomingBytes));
    let s = c
        .describe_stream_summary()
        .stream_name("mon")
        .send()
        .await
        .unwrap();
    assert_eq!(
        s.stream_description_summary()
            .unwrap()
            .enhanced_monitoring()[0]
            .shard_level_metrics()
            .len(),
        6
    );
    let (t, _) = code(
        c.disable_enhanced_monitoring()
            .stream_name("nope")
            .shard_level_metrics(MetricsName::All)
            .send()
            .await,
    );
    assert_eq!(t, "ResourceNotFoundException");
}

const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"ReadOnly","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/reader"},"Action":["kinesis:Get*","kinesis:DescribeStreamSummary"],"Resource":"arn:aws:kinesis:us-east-1:000000000000:stream/pol"}]}"#;

#[tokio::test]
async fn resource_policies_on_streams_and_consumers() {
    let server = Server::start();
    let c = server.client();
    create(&c, "pol", 1).await;
    let stream = arn("pol");
    let g = c
        .get_resource_policy()
        .resource_arn(&stream)
        .send()
        .await
        .expect("Get");
    assert_eq!(g.policy(), "{}");
    c.put_resource_policy()
        .resource_arn(&stream)
        .policy(POLICY)
        .send()
        .await
        .expect("Put");
    let g = c
        .get_resource_policy()
        .resource_arn(&stream)
        .send()
        .await
        .expect("Get");
    assert_eq!(g.policy(), POLICY);

    // Out of the subset: named in the error; the stored policy is unchanged.
    let cond = POLICY.replace(
        r#""Resource""#,
        r#""Condition":{"Bool":{"aws:SecureTransport":"true"}},"Resource""#,
    );
    let (t, msg) = code(
        c.put_resource_policy()
            .resource_arn(&stream)
            .policy(cond)
            .send()
            .await,
    );
    assert_eq!(t, "InvalidArgumentException");
    assert!(msg.contains("Condition"), "{msg}");
    let (t, msg) = code(
        c.put_resource_policy()
            .resource_arn(&stream)
            .policy("{not json")
            .send()
            .await,
    );
    assert_eq!(t, "InvalidArgumentException");
    assert!(msg.contains("JSON"), "{msg}");
    let g = c
        .get_resource_policy()
        .resource_arn(&stream)
        .send()
        .await
        .unwrap();
    assert_eq!(g.policy(), POLICY);

    // A consumer has its own policy.
    let consumer = c
        .register_stream_consumer()
        .stream_arn(&stream)
        .consumer_name("app")
        .send()
        .await
        .expect("Register");
    let consumer_arn = consumer.consumer().unwrap().consumer_arn().to_string();
    let cpol = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"kinesis:SubscribeToShard","Resource":"*"}}"#;
    c.put_resource_policy()
        .resource_arn(&consumer_arn)
        .policy(cpol)
        .send()
        .await
        .expect("Put on consumer");
    let g = c
        .get_resource_policy()
        .resource_arn(&consumer_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(g.policy(), cpol);
    c.delete_resource_policy()
        .resource_arn(&consumer_arn)
        .send()
        .await
        .expect("Delete on consumer");
    let g = c
        .get_resource_policy()
        .resource_arn(&consumer_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(g.policy(), "{}");
    // The stream's policy is untouched by the consumer's.
    let g = c
        .get_resource_policy()
        .resource_arn(&stream)
        .send()
        .await
        .unwrap();
    assert_eq!(g.policy(), POLICY);
    c.delete_resource_policy()
        .resource_arn(&stream)
        .send()
        .await
        .expect("Delete");
    let (t, _) = code(
        c.delete_resource_policy()
            .resource_arn(&stream)
            .send()
            .await,
    );
    assert_eq!(t, "ResourceNotFoundException");
    let (t, msg) = code(
        c.put_resource_policy()
            .resource_arn(arn("nope"))
            .policy(POLICY)
            .send()
            .await,
    );
    assert_eq!(t, "ResourceNotFoundException");
    assert_eq!(
        msg,
        format!("Stream nope under account {ACCOUNT} not found.")
    );
}

/// Every file under `dir`, recursively.
fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Whether any file under `dir` holds `needle`.
fn found_in(dir: &Path, needle: &[u8]) -> bool {
    let mut all = Vec::new();
    files(dir, &mut all);
    assert!(!all.is_empty());
    // Preallocated log segments are mostly zeros: skip zero blocks with one slice comparison
    // (memcmp, fast even in debug builds) and scan only the others, with an overlap so that a
    // needle across a block boundary is still seen.
    const BLOCK: usize = 4096;
    static ZEROS: [u8; BLOCK] = [0; BLOCK];
    all.iter().any(|f| {
        let bytes = std::fs::read(f).unwrap_or_default();
        (0..bytes.len()).step_by(BLOCK).any(|start| {
            let block = &bytes[start..(start + BLOCK).min(bytes.len())];
            // A needle starting with a zero byte could start in a zero block: scan everything.
            if needle[0] != 0 && block == &ZEROS[..block.len()] {
                return false;
            }
            let end = (start + BLOCK + needle.len() - 1).min(bytes.len());
            bytes[start..end].windows(needle.len()).any(|w| w == needle)
        })
    })
}

async fn put(c: &Client, stream: &str, data: &[u8]) -> Option<EncryptionType> {
    c.put_record()
        .stream_name(stream)
        .partition_key("pk-secret-partition")
        .data(Blob::new(data.to_vec()))
        .send()
        .await
        .expect("PutRecord")
        .encryption_type()
        .cloned()
}

#[tokio::test]
async fn encryption_at_rest_across_the_switch_and_a_restart() {
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("master.key");
    let key_arg = key_file.to_str().unwrap().to_string();
    let server = Server::start_with(
        tempfile::tempdir().unwrap(),
        &["--master-key-file", &key_arg],
    );
    let c = server.client();
    create(&c, "enc", 1).await;
    create(&c, "plain", 1).await;
    // No stream is encrypted yet: the master key has not been read or made.
    assert!(!key_file.exists());

    let before = b"LEVEE-BEFORE-0123456789";
    let secret = b"LEVEE-SECRET-MARKER-9f3b2c71";
    let after = b"LEVEE-AFTER-0123456789";
    let visible = b"LEVEE-VISIBLE-MARKER-55aa";
    assert_eq!(put(&c, "enc", before).await, None);

    let (t, _) = code(
        c.start_stream_encryption()
            .stream_name("enc")
            .encryption_type(EncryptionType::None)
            .key_id("alias/aws/kinesis")
            .send()
            .await,
    );
    assert_eq!(t, "InvalidArgumentException");
    let (t, _) = code(
        c.start_stream_encryption()
            .stream_name("nope")
            .encryption_type(EncryptionType::Kms)
            .key_id("alias/aws/kinesis")
            .send()
            .await,
    );
    assert_eq!(t, "ResourceNotFoundException");

    c.start_stream_encryption()
        .stream_name("enc")
        .encryption_type(EncryptionType::Kms)
        .key_id("alias/aws/kinesis")
        .send()
        .await
        .expect("StartStreamEncryption");
    assert_eq!(status(&c, "enc").await, StreamStatus::Updating);
    wait_active(&c, "enc").await;
    assert!(key_file.exists());
    let d = c.describe_stream().stream_name("enc").send().await.unwrap();
    let d = d.stream_description().unwrap();
    assert_eq!(d.encryption_type(), Some(&EncryptionType::Kms));
    assert_eq!(d.key_id(), Some("alias/aws/kinesis"));

    assert_eq!(put(&c, "enc", secret).await, Some(EncryptionType::Kms));
    assert_eq!(put(&c, "plain", visible).await, None);

    c.stop_stream_encryption()
        .stream_name("enc")
        .encryption_type(EncryptionType::Kms)
        .key_id("alias/aws/kinesis")
        .send()
        .await
        .expect("StopStreamEncryption");
    wait_active(&c, "enc").await;
    let s = c
        .describe_stream_summary()
        .stream_name("enc")
        .send()
        .await
        .unwrap();
    let s = s.stream_description_summary().unwrap();
    assert_eq!(s.encryption_type(), Some(&EncryptionType::None));
    assert_eq!(s.key_id(), None);
    assert_eq!(put(&c, "enc", after).await, None);

    let check = |got: Vec<aws_sdk_kinesis::types::Record>| {
        let seen: Vec<(Vec<u8>, Option<EncryptionType>, String)> = got
            .iter()
            .map(|r| {
                (
                    r.data().as_ref().to_vec(),
                    r.encryption_type().cloned(),
                    r.partition_key().unwrap_or_default().to_string(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                (before.to_vec(), None, "pk-secret-partition".into()),
                (
                    secret.to_vec(),
                    Some(EncryptionType::Kms),
                    "pk-secret-partition".into()
                ),
                (after.to_vec(), None, "pk-secret-partition".into()),
            ]
        );
    };
    check(read_shard(&c, "enc", SHARD0).await);

    // After a restart the sealed record still reads.
    let (_, dir) = server.stop();
    let server = Server::start_with(dir, &["--master-key-file", &key_arg]);
    let c = server.client();
    check(read_shard(&c, "enc", SHARD0).await);

    let data_dir = server.dir.as_ref().unwrap().path().to_path_buf();
    // The scan works: the unencrypted stream's marker is there in clear...
    assert!(found_in(&data_dir, visible));
    // ...the encrypted one is not, nor the master key.
    assert!(!found_in(&data_dir, secret));
    let master = std::fs::read(&key_file).unwrap();
    assert_eq!(master.len(), 32);
    assert!(!found_in(&data_dir, &master));
}
