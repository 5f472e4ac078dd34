//! Crash safety of the whole server: many concurrent PutRecords clients (the AWS SDK for Rust),
//! `kill -9` of `levee serve` at random moments 20 times; after each restart every acknowledged
//! record is present exactly once, at its acknowledged sequence number, in order per partition
//! key.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType};
use common::*;
use tokio::sync::Mutex;

const STREAM: &str = "crash";
const SHARDS: i32 = 3;
const CLIENTS: usize = 8;
const ROUNDS: usize = 20;

/// (shard id, sequence number, partition key, payload id)
type Acked = Vec<(String, String, String, String)>;

async fn read_everything(
    client: &aws_sdk_kinesis::Client,
) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    for shard in 0..SHARDS {
        let shard_id = format!("shardId-{shard:012}");
        let mut it = client
            .get_shard_iterator()
            .stream_name(STREAM)
            .shard_id(&shard_id)
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator()
            .unwrap()
            .to_owned();
        loop {
            let r = client
                .get_records()
                .shard_iterator(&it)
                .limit(10_000)
                .send()
                .await
                .unwrap();
            if r.records().is_empty() {
                break;
            }
            for rec in r.records() {
                out.push((
                    shard_id.clone(),
                    rec.sequence_number().to_owned(),
                    rec.partition_key().unwrap_or_default().to_owned(),
                    String::from_utf8(rec.data().as_ref().to_vec()).unwrap(),
                ));
            }
            it = r.next_shard_iterator().unwrap().to_owned();
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_kill_9() {
    let mut server = Server::start();
    let client = server.client();
    client
        .create_stream()
        .stream_name(STREAM)
        .shard_count(SHARDS)
        .send()
        .await
        .unwrap();
    wait_active(&client, STREAM).await;
    let acked: Arc<Mutex<Acked>> = Arc::new(Mutex::new(Vec::new()));
    for round in 0..ROUNDS {
        let client = server.client();
        let mut tasks = Vec::new();
        for c in 0..CLIENTS {
            let client = client.clone();
            let acked = acked.clone();
            tasks.push(tokio::spawn(async move {
                for n in 0.. {
                    let entries: Vec<PutRecordsRequestEntry> = (0..10)
                        .map(|i| {
                            PutRecordsRequestEntry::builder()
                                .partition_key(format!("client-{c}"))
                                .data(Blob::new(format!("r{round}-c{c}-n{n}-i{i}")))
                                .build()
                                .unwrap()
                        })
                        .collect();
                    let Ok(out) = client
                        .put_records()
                        .stream_name(STREAM)
                        .set_records(Some(entries))
                        .send()
                        .await
                    else {
                        return; // the server died: nothing more is acknowledged
                    };
                    let mut a = acked.lock().await;
                    for (i, r) in out.records().iter().enumerate() {
                        if let (Some(shard), Some(seq)) = (r.shard_id(), r.sequence_number()) {
                            a.push((
                                shard.to_owned(),
                                seq.to_owned(),
                                format!("client-{c}"),
                                format!("r{round}-c{c}-n{n}-i{i}"),
                            ));
                        }
                    }
                }
            }));
        }
        let run_ms = 50 + rand::random::<u64>() % 300;
        tokio::time::sleep(Duration::from_millis(run_ms)).await;
        let dir = server.kill();
        for t in tasks {
            t.await.unwrap();
        }
        server = Server::start_in(dir);
        let client = server.client();
        let found = read_everything(&client).await;
        let acked = acked.lock().await;
        let mut seen = HashSet::new();
        for f in &found {
            assert!(seen.insert(f.3.clone()), "record {} appears twice", f.3);
        }
        let by_id: HashMap<&str, &(String, String, String, String)> =
            found.iter().map(|f| (f.3.as_str(), f)).collect();
        for a in acked.iter() {
            let f = by_id
                .get(a.3.as_str())
                .unwrap_or_else(|| panic!("round {round}: acknowledged record {} is missing", a.3));
            assert_eq!(
                (&f.0, &f.1, &f.2),
                (&a.0, &a.1, &a.2),
                "record {} moved",
                a.3
            );
        }
        // Per partition key, the order of writing is the order of sequence numbers.
        // Records of one key sit in one shard, read in sequence order; each client wrote its
        // (round, batch, entry) in increasing order, so they must come back that way.
        let mut last: HashMap<&str, (u32, u32, u32)> = HashMap::new();
        for f in &found {
            let parts: Vec<u32> = f.3.split('-').map(|p| p[1..].parse().unwrap()).collect();
            let order = (parts[0], parts[2], parts[3]);
            if let Some(prev) = last.get(f.2.as_str()) {
                assert!(
                    *prev < order,
                    "out of order for {}: {prev:?} then {order:?}",
                    f.2
                );
            }
            last.insert(f.2.as_str(), order);
        }
        assert!(found.len() >= acked.len());
        println!(
            "round {round}: killed after {run_ms} ms; {} acknowledged, {} stored",
            acked.len(),
            found.len()
        );
    }
    assert!(
        acked.lock().await.len() > 1000,
        "the test must acknowledge enough to mean something"
    );
}
