//! The AWS SDK for Rust, unchanged, against a real `levee serve`: stream lifecycle and data
//! path, with the fields of every response and AWS's error types and messages.

mod common;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::ShardIteratorType;
use common::*;

const ACCOUNT: &str = "000000000000";

#[tokio::test]
async fn create_put_get_delete() {
    let server = Server::start();
    let client = server.client();
    client
        .create_stream()
        .stream_name("orders")
        .shard_count(2)
        .send()
        .await
        .unwrap();
    let err = client
        .create_stream()
        .stream_name("orders")
        .shard_count(2)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_resource_in_use_exception(), "{err:?}");
    assert_eq!(
        err.meta().message(),
        Some(format!("Stream orders under account {ACCOUNT} already exists.").as_str())
    );
    wait_active(&client, "orders").await;

    let d = client
        .describe_stream()
        .stream_name("orders")
        .send()
        .await
        .unwrap();
    let d = d.stream_description().unwrap();
    assert_eq!(
        d.stream_arn(),
        format!("arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/orders")
    );
    assert_eq!(d.shards().len(), 2);
    assert_eq!(
        d.shards()[1].hash_key_range().unwrap().ending_hash_key(),
        u128::MAX.to_string()
    );

    let mut sent = Vec::new();
    for i in 0..30 {
        let r = client
            .put_record()
            .stream_name("orders")
            .partition_key(format!("customer-{}", i % 7))
            .data(Blob::new(format!("order-{i}")))
            .send()
            .await
            .unwrap();
        sent.push((
            r.shard_id().to_owned(),
            r.sequence_number().to_owned(),
            format!("order-{i}"),
        ));
    }
    let mut got = Vec::new();
    for shard in ["shardId-000000000000", "shardId-000000000001"] {
        let it = client
            .get_shard_iterator()
            .stream_name("orders")
            .shard_id(shard)
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap();
        let recs = client
            .get_records()
            .shard_iterator(it.shard_iterator().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(recs.millis_behind_latest(), Some(0));
        assert!(recs.next_shard_iterator().is_some());
        for r in recs.records() {
            assert!(r.approximate_arrival_timestamp().is_some());
            got.push((
                shard.to_owned(),
                r.sequence_number().to_owned(),
                String::from_utf8(r.data().as_ref().to_vec()).unwrap(),
            ));
        }
    }
    sent.sort();
    got.sort();
    assert_eq!(got, sent);

    client
        .delete_stream()
        .stream_name("orders")
        .send()
        .await
        .unwrap();
    let mut gone = false;
    for _ in 0..600 {
        match client.describe_stream().stream_name("orders").send().await {
            Err(e) => {
                let e = e.into_service_error();
                assert!(e.is_resource_not_found_exception(), "{e:?}");
                assert_eq!(
                    e.meta().message(),
                    Some(format!("Stream orders under account {ACCOUNT} not found.").as_str())
                );
                gone = true;
                break;
            }
            Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
    assert!(gone, "the stream must disappear after deletion");
}

#[tokio::test]
async fn data_survives_a_kill_and_restart() {
    let server = Server::start();
    let client = server.client();
    client
        .create_stream()
        .stream_name("durable")
        .shard_count(1)
        .send()
        .await
        .unwrap();
    wait_active(&client, "durable").await;
    let mut seqs = Vec::new();
    for i in 0..10 {
        let r = client
            .put_record()
            .stream_name("durable")
            .partition_key("k")
            .data(Blob::new(format!("v{i}")))
            .send()
            .await
            .unwrap();
        seqs.push(r.sequence_number().to_owned());
    }
    let before = client
        .get_shard_iterator()
        .stream_name("durable")
        .shard_id("shardId-000000000000")
        .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
        .starting_sequence_number(&seqs[5])
        .send()
        .await
        .unwrap();
    let dir = server.kill();
    let server = Server::start_in(dir);
    let client = server.client();
    // An iterator issued before the crash is still valid: its key lives in the data directory.
    let old = client
        .get_records()
        .shard_iterator(before.shard_iterator().unwrap())
        .send()
        .await
        .unwrap();
    let old: Vec<&str> = old.records().iter().map(|r| r.sequence_number()).collect();
    assert_eq!(
        old,
        seqs[5..].iter().map(String::as_str).collect::<Vec<_>>()
    );
    let got: Vec<String> = read_shard(&client, "durable", "shardId-000000000000")
        .await
        .iter()
        .map(|r| r.sequence_number().to_owned())
        .collect();
    assert_eq!(got, seqs);
}
