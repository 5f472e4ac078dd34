//! ON_DEMAND autoscaling with the AWS SDK for Rust, time and capacity scaled down: a shard's
//! capacity is 50 KB/s, the window 500 ms, the quiet period 1.5 s. An ON_DEMAND stream written
//! at about twice its shard's capacity gains shards (DescribeStreamSummary and ListShards show
//! them); after the writes stop it merges back to one. A PROVISIONED stream under the same load
//! never changes. With `--shard-limits aws` (AWS's 1 MiB/s per shard, not scaled), a stream
//! written at 2 MB/s is throttled at first and stops being throttled once it has grown.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, StreamMode, StreamModeDetails};
use common::*;

const SHARD_BYTES_PER_SEC: u64 = 50_000;

async fn open_shards(c: &aws_sdk_kinesis::Client, name: &str) -> i32 {
    c.describe_stream_summary()
        .stream_name(name)
        .send()
        .await
        .unwrap()
        .stream_description_summary()
        .unwrap()
        .open_shard_count()
}

async fn listed_shards(c: &aws_sdk_kinesis::Client, name: &str) -> usize {
    c.list_shards()
        .stream_name(name)
        .send()
        .await
        .unwrap()
        .shards()
        .len()
}

/// 10 records of 1,000 bytes to `name`, keys spread over the key space.
async fn put_10kb(c: &aws_sdk_kinesis::Client, name: &str, round: u64) {
    let mut req = c.put_records().stream_name(name);
    for i in 0..10 {
        req = req.records(
            PutRecordsRequestEntry::builder()
                .partition_key(format!("k{round}-{i}"))
                .data(Blob::new(vec![b'x'; 1000]))
                .build()
                .unwrap(),
        );
    }
    let out = req.send().await.unwrap();
    assert_eq!(out.failed_record_count(), Some(0));
}

/// Creates a one-shard ON_DEMAND stream (the autoscaler's minimum is set to 1 in these tests).
async fn create_on_demand(c: &aws_sdk_kinesis::Client, name: &str) {
    c.create_stream()
        .stream_name(name)
        .shard_count(1)
        .stream_mode_details(
            StreamModeDetails::builder()
                .stream_mode(StreamMode::OnDemand)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn on_demand_streams_split_under_load_and_merge_back_after_quiet() {
    let server = Server::start_with(
        tempfile::tempdir().unwrap(),
        &[
            "--autoscale-window-ms",
            "500",
            "--autoscale-quiet-ms",
            "1500",
            "--autoscale-shard-bytes-per-sec",
            &SHARD_BYTES_PER_SEC.to_string(),
            "--autoscale-min-shards",
            "1",
            "--autoscale-max-shards",
            "4",
        ],
    );
    let c = server.client();
    create_on_demand(&c, "od").await;
    c.create_stream()
        .stream_name("prov")
        .shard_count(1)
        .send()
        .await
        .unwrap();
    wait_active(&c, "od").await;
    wait_active(&c, "prov").await;
    assert_eq!(open_shards(&c, "od").await, 1);

    // About 100 KB/s (twice a shard's capacity) to each stream until the ON_DEMAND one has
    // split.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut pace = tokio::time::interval(Duration::from_millis(100));
    let mut round = 0;
    let grown = loop {
        pace.tick().await;
        round += 1;
        put_10kb(&c, "od", round).await;
        put_10kb(&c, "prov", round).await;
        if round % 5 == 0 {
            let n = open_shards(&c, "od").await;
            if n >= 2 {
                break n;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the ON_DEMAND stream never split"
        );
    };
    assert!((2..=4).contains(&grown), "{grown} open shards");
    // The split is in the stream's description: a closed parent and its two children.
    assert!(listed_shards(&c, "od").await >= 3);

    // Quiet: it merges back, one pair per quiet period, down to the minimum.
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        if open_shards(&c, "od").await == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the ON_DEMAND stream never merged back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let shards = c
        .list_shards()
        .stream_name("od")
        .send()
        .await
        .unwrap()
        .shards;
    let open: Vec<_> = shards
        .iter()
        .flatten()
        .filter(|s| {
            s.sequence_number_range()
                .and_then(|r| r.ending_sequence_number())
                .is_none()
        })
        .collect();
    assert_eq!(open.len(), 1);
    let range = open[0].hash_key_range().unwrap();
    assert_eq!(range.starting_hash_key(), "0");
    assert_eq!(range.ending_hash_key(), u128::MAX.to_string());
    assert!(
        open[0].adjacent_parent_shard_id().is_some(),
        "a merge child"
    );

    // The PROVISIONED stream took the same load and never changed.
    assert_eq!(open_shards(&c, "prov").await, 1);
    assert_eq!(listed_shards(&c, "prov").await, 1);
}

#[tokio::test]
async fn a_throttled_on_demand_stream_grows_until_writes_are_no_longer_throttled() {
    let server = Server::start_with(
        tempfile::tempdir().unwrap(),
        &[
            "--shard-limits",
            "aws",
            // Longer than the 1 MiB burst a shard's bucket starts with lasts at 2 MB/s, so the
            // first shard is throttled before it is split.
            "--autoscale-window-ms",
            "2000",
            "--autoscale-quiet-ms",
            "600000",
            "--autoscale-min-shards",
            "1",
            "--autoscale-max-shards",
            "8",
        ],
    );
    let c = server.client();
    create_on_demand(&c, "od").await;
    wait_active(&c, "od").await;
    // 50 records of 10,000 bytes every 250 ms: 2 MB/s, twice a shard's 1 MiB/s.
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut pace = tokio::time::interval(Duration::from_millis(250));
    let (mut throttled, mut clean_in_a_row, mut round) = (0, 0, 0u64);
    while clean_in_a_row < 8 {
        pace.tick().await;
        round += 1;
        let mut req = c.put_records().stream_name("od");
        for i in 0..50 {
            req = req.records(
                PutRecordsRequestEntry::builder()
                    .partition_key(format!("k{round}-{i}"))
                    .data(Blob::new(vec![b'x'; 10_000]))
                    .build()
                    .unwrap(),
            );
        }
        let out = req.send().await.unwrap();
        let failed = out.failed_record_count().unwrap_or(0);
        for r in out.records() {
            if let Some(code) = r.error_code() {
                assert_eq!(code, "ProvisionedThroughputExceededException");
            }
        }
        if failed > 0 {
            throttled += failed;
            clean_in_a_row = 0;
        } else {
            clean_in_a_row += 1;
        }
        assert!(
            Instant::now() < deadline,
            "still throttled after 40 s ({throttled} records throttled)"
        );
    }
    assert!(
        throttled > 0,
        "one shard cannot take 2 MB/s under --shard-limits aws"
    );
    let n = open_shards(&c, "od").await;
    eprintln!("{throttled} records throttled in {round} calls; {n} open shards after");
    assert!((2..=8).contains(&n), "{n} open shards");
}
