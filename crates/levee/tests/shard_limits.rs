//! `--shard-limits aws` through the SDK: a PutRecords past 1,000 records/s on one shard fails
//! only its excess records, each with AWS's ProvisionedThroughputExceeded text, while the others
//! succeed; GetRecords past 5 calls/s is refused with the same error; DescribeStream past 10/s
//! per account gets LimitExceededException. (The admitted rates against
//! a driven clock are tested in `levee_frontend::shard_limits`.)

mod common;

use std::time::Instant;

use aws_sdk_kinesis::error::ProvideErrorMetadata;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType};
use common::*;

fn entries(n: usize) -> Vec<PutRecordsRequestEntry> {
    (0..n)
        .map(|i| {
            PutRecordsRequestEntry::builder()
                .partition_key(i.to_string())
                .data(Blob::new(b"x".to_vec()))
                .build()
                .unwrap()
        })
        .collect()
}

#[tokio::test]
async fn one_shard_past_its_limits() {
    let server = Server::start_with(tempfile::tempdir().unwrap(), &["--shard-limits", "aws"]);
    let client = server.client();
    client
        .create_stream()
        .stream_name("limited")
        .shard_count(1)
        .send()
        .await
        .unwrap();
    wait_active(&client, "limited").await;

    // 1,500 records in two calls, faster than a second: about 1,000 pass, the rest are throttled.
    let t = Instant::now();
    let mut ok = 0;
    let mut failed = 0;
    for _ in 0..3 {
        let out = client
            .put_records()
            .stream_name("limited")
            .set_records(Some(entries(500)))
            .send()
            .await
            .unwrap();
        for r in out.records() {
            match r.error_code() {
                None => ok += 1,
                Some(code) => {
                    failed += 1;
                    assert_eq!(code, "ProvisionedThroughputExceededException");
                    assert_eq!(
                        r.error_message(),
                        Some("Rate exceeded for shard shardId-000000000000 in stream limited under account 000000000000.")
                    );
                }
            }
        }
        assert_eq!(
            out.failed_record_count(),
            Some(
                out.records()
                    .iter()
                    .filter(|r| r.error_code().is_some())
                    .count() as i32
            )
        );
    }
    let elapsed_ms = t.elapsed().as_millis() as usize;
    println!("shard limits: {ok} admitted, {failed} throttled in {elapsed_ms} ms");
    // One second of burst plus one record per millisecond elapsed, no more.
    assert!(
        ok >= 1000 && ok <= 1000 + elapsed_ms + 1,
        "{ok} admitted in {elapsed_ms} ms"
    );
    assert!(
        failed > 0,
        "1,500 records within {elapsed_ms} ms must throttle some"
    );

    // GetRecords: 5 calls per second.
    let it = client
        .get_shard_iterator()
        .stream_name("limited")
        .shard_id("shardId-000000000000")
        .shard_iterator_type(ShardIteratorType::Latest)
        .send()
        .await
        .unwrap()
        .shard_iterator()
        .unwrap()
        .to_owned();
    let t = Instant::now();
    let mut admitted = 0;
    let mut throttled = 0;
    for _ in 0..10 {
        match client.get_records().shard_iterator(&it).send().await {
            Ok(_) => admitted += 1,
            Err(e) => {
                assert_eq!(e.code(), Some("ProvisionedThroughputExceededException"));
                assert_eq!(
                    e.message(),
                    Some("Rate exceeded for shard shardId-000000000000 in stream limited under account 000000000000.")
                );
                throttled += 1;
            }
        }
    }
    let elapsed_ms = t.elapsed().as_millis() as usize;
    assert!(
        admitted <= 5 + elapsed_ms / 200 + 1,
        "{admitted} GetRecords admitted in {elapsed_ms} ms"
    );
    if elapsed_ms < 1000 {
        assert!(throttled > 0);
    }

    // Control plane: DescribeStream at most 10 per second per account (no SDK retries here).
    let no_retry = aws_sdk_kinesis::Client::from_conf(
        client
            .config()
            .to_builder()
            .retry_config(aws_sdk_kinesis::config::retry::RetryConfig::disabled())
            .build(),
    );
    let t = Instant::now();
    let mut limited = 0;
    for _ in 0..15 {
        if let Err(e) = no_retry
            .describe_stream()
            .stream_name("limited")
            .send()
            .await
        {
            assert_eq!(e.code(), Some("LimitExceededException"));
            assert_eq!(
                e.message(),
                Some("Rate exceeded for stream limited under account 000000000000.")
            );
            limited += 1;
        }
    }
    let elapsed_ms = t.elapsed().as_millis() as usize;
    assert!(
        15 - limited <= 10 + elapsed_ms / 100 + 1,
        "{limited} limited in {elapsed_ms} ms"
    );
    if elapsed_ms < 400 {
        assert!(limited > 0);
    }
}
