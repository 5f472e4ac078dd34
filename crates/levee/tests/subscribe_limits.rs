//! SubscribeToShard under `--shard-limits aws`, with the AWS SDK for Rust: one call per second
//! per consumer per shard (a second call within the second is `LimitExceededException`, and
//! takes no slot), other shards and consumers unaffected; after the second, the takeover rule
//! (`ResourceInUseException` within 5 s) answers as before.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_kinesis::error::ProvideErrorMetadata;
use aws_sdk_kinesis::types::{ShardIteratorType, StartingPosition};
use common::*;

const STREAM_ARN: &str = "arn:aws:kinesis:us-east-1:000000000000:stream/sub";

/// SubscribeToShard; `Ok` with the open subscription, or the error's code and text.
async fn subscribe(
    c: &aws_sdk_kinesis::Client,
    consumer: &str,
    shard: &str,
) -> Result<aws_sdk_kinesis::operation::subscribe_to_shard::SubscribeToShardOutput, (String, String)>
{
    c.subscribe_to_shard()
        .consumer_arn(consumer)
        .shard_id(shard)
        .starting_position(
            StartingPosition::builder()
                .r#type(ShardIteratorType::Latest)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .map_err(|e| {
            (
                e.code().unwrap_or("").to_owned(),
                e.message().unwrap_or("").to_owned(),
            )
        })
}

#[tokio::test]
async fn one_subscribe_call_per_second_per_consumer_and_shard() {
    let server = Server::start_with(tempfile::tempdir().unwrap(), &["--shard-limits", "aws"]);
    let c = server.client();
    c.create_stream()
        .stream_name("sub")
        .shard_count(2)
        .send()
        .await
        .unwrap();
    wait_active(&c, "sub").await;
    let app = active_consumer(&c, STREAM_ARN, "app").await;
    let other = active_consumer(&c, STREAM_ARN, "other").await;

    let first = Instant::now();
    let _held = subscribe(&c, &app, "shardId-000000000000").await.unwrap();
    let (code, message) = subscribe(&c, &app, "shardId-000000000000")
        .await
        .unwrap_err();
    if first.elapsed() < Duration::from_millis(1000) {
        assert_eq!(code, "LimitExceededException", "{message}");
        assert_eq!(
            message,
            format!(
                "Rate exceeded for consumer {app} and shard shardId-000000000000 in stream sub \
                 under account 000000000000."
            )
        );
    }
    // Another shard of the same consumer, and another consumer on the same shard: admitted.
    let _b = subscribe(&c, &app, "shardId-000000000001").await.unwrap();
    let _c = subscribe(&c, &other, "shardId-000000000000").await.unwrap();
    // After the second the rate admits the call; the takeover guard (5 s) still refuses it.
    let deadline = Instant::now() + Duration::from_secs(4);
    let (code, _) = loop {
        let e = subscribe(&c, &app, "shardId-000000000000")
            .await
            .unwrap_err();
        if e.0 != "LimitExceededException" {
            break e;
        }
        assert!(Instant::now() < deadline, "still rate-limited after 4 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(first.elapsed() >= Duration::from_millis(1000));
    assert_eq!(code, "ResourceInUseException");
}
