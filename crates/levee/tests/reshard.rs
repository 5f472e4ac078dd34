//! Resharding with the AWS SDK for Rust: splits, merges and UpdateShardCount up and down under
//! continuous writes while a reader that follows ChildShards from the root shards reads every
//! acknowledged record exactly once, parents before children, each key in order; and `kill -9`
//! in the middle of a split loses nothing and leaves a consistent lineage after restart.

mod common;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{
    PutRecordsRequestEntry, ScalingType, Shard, ShardFilter, ShardFilterType, ShardIteratorType,
};
use aws_sdk_kinesis::Client;
use common::*;
use tokio::sync::Mutex;

const KEYS: usize = 40;

/// (partition key, data, sequence number) of acknowledged records.
type Acked = Arc<Mutex<Vec<(String, String, String)>>>;

async fn open_shards(client: &Client, name: &str) -> Vec<Shard> {
    let mut shards = client
        .list_shards()
        .stream_name(name)
        .shard_filter(
            ShardFilter::builder()
                .r#type(ShardFilterType::AtLatest)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .shards()
        .to_vec();
    shards.sort_by_key(|s| {
        s.hash_key_range()
            .unwrap()
            .starting_hash_key()
            .parse::<u128>()
            .unwrap()
    });
    shards
}

/// Writes batches with per-key counters until stopped; returns when stopped or on an error.
/// `epoch` starts each key's counter high enough that a later writer's records sort after an
/// earlier one's and never repeat them.
async fn writer(
    client: Client,
    name: String,
    acked: Acked,
    stop: Arc<AtomicBool>,
    epoch: u64,
) -> Result<(), String> {
    let mut counters = [epoch * 1_000_000_000; KEYS];
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let batch: Vec<(String, String)> = (0..20)
            .map(|_| {
                let k = i % KEYS;
                i += 7;
                counters[k] += 1;
                (format!("key-{k}"), format!("key-{k}:{}", counters[k]))
            })
            .collect();
        let entries = batch
            .iter()
            .map(|(k, d)| {
                PutRecordsRequestEntry::builder()
                    .partition_key(k)
                    .data(Blob::new(d.clone()))
                    .build()
                    .unwrap()
            })
            .collect();
        let out = match client
            .put_records()
            .stream_name(&name)
            .set_records(Some(entries))
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) => return Err(format!("{e:?}")),
        };
        let mut a = acked.lock().await;
        for ((k, d), r) in batch.into_iter().zip(out.records()) {
            match r.sequence_number() {
                Some(s) => a.push((k, d, s.to_owned())),
                None => return Err(format!("entry failed: {:?}", r.error_message())),
            }
        }
    }
    Ok(())
}

/// Reads every shard from TRIM_HORIZON, children only after all their parents ended; returns
/// (shard order, records as (key, data, sequence number) in read order).
async fn read_by_lineage(
    client: &Client,
    name: &str,
) -> (Vec<String>, Vec<(String, String, String)>) {
    let shards = client
        .list_shards()
        .stream_name(name)
        .send()
        .await
        .unwrap()
        .shards()
        .to_vec();
    let parents: HashMap<String, Vec<String>> = shards
        .iter()
        .map(|s| {
            let ps = [s.parent_shard_id(), s.adjacent_parent_shard_id()]
                .into_iter()
                .flatten()
                .map(str::to_owned)
                .collect();
            (s.shard_id().to_owned(), ps)
        })
        .collect();
    let mut ready: VecDeque<String> = parents
        .iter()
        .filter(|(_, p)| p.is_empty())
        .map(|(s, _)| s.clone())
        .collect();
    let (mut done, mut order, mut records) = (HashSet::new(), Vec::new(), Vec::new());
    while let Some(sid) = ready.pop_front() {
        if !done.insert(sid.clone()) {
            continue;
        }
        let mut it = client
            .get_shard_iterator()
            .stream_name(name)
            .shard_id(&sid)
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator()
            .map(str::to_owned);
        let mut children = Vec::new();
        while let Some(i) = it {
            let r = client
                .get_records()
                .shard_iterator(i)
                .limit(1000)
                .send()
                .await
                .unwrap();
            for x in r.records() {
                records.push((
                    x.partition_key().unwrap_or_default().to_owned(),
                    String::from_utf8(x.data().as_ref().to_vec()).unwrap(),
                    x.sequence_number().to_owned(),
                ));
            }
            it = r.next_shard_iterator().map(str::to_owned);
            if it.is_none() {
                // The KCL's shard-end contract.
                children = r.child_shards().to_vec();
                assert!(!children.is_empty(), "{sid} ended without ChildShards");
                for c in &children {
                    assert!(
                        c.parent_shards().contains(&sid),
                        "{c:?} does not name {sid}"
                    );
                }
            } else if r.records().is_empty() && r.millis_behind_latest() == Some(0) {
                break; // an open shard, caught up
            }
        }
        order.push(sid);
        for c in children {
            if parents[c.shard_id()].iter().all(|p| done.contains(p)) {
                ready.push_back(c.shard_id().to_owned());
            }
        }
    }
    assert_eq!(
        done.len(),
        parents.len(),
        "every shard is reachable from the roots"
    );
    (order, records)
}

fn check(acked: &[(String, String, String)], records: &[(String, String, String)]) {
    let mut seen = HashSet::new();
    for r in records {
        assert!(seen.insert(r.1.clone()), "{} read twice", r.1);
    }
    let by_data: HashMap<&str, &str> = records
        .iter()
        .map(|r| (r.1.as_str(), r.2.as_str()))
        .collect();
    for (_, d, seq) in acked {
        assert_eq!(
            by_data.get(d.as_str()),
            Some(&seq.as_str()),
            "acknowledged {d} missing or moved"
        );
    }
    let mut last: HashMap<&str, u64> = HashMap::new();
    for (k, d, _) in records {
        let n: u64 = d.rsplit(':').next().unwrap().parse().unwrap();
        if let Some(prev) = last.insert(k.as_str(), n) {
            assert!(n > prev, "{k} out of order: {n} after {prev}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reader_follows_lineage_through_repeated_resharding() {
    let server = Server::start();
    let client = server.client();
    let name = "reshard";
    client
        .create_stream()
        .stream_name(name)
        .shard_count(2)
        .send()
        .await
        .unwrap();
    wait_active(&client, name).await;
    let acked: Acked = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let w = tokio::spawn(writer(
        client.clone(),
        name.into(),
        acked.clone(),
        stop.clone(),
        0,
    ));
    for _round in 0..2 {
        let shards = open_shards(&client, name).await;
        let r = shards[0].hash_key_range().unwrap();
        let (lo, hi): (u128, u128) = (
            r.starting_hash_key().parse().unwrap(),
            r.ending_hash_key().parse().unwrap(),
        );
        client
            .split_shard()
            .stream_name(name)
            .shard_to_split(shards[0].shard_id())
            .new_starting_hash_key((lo / 2 + hi / 2).to_string())
            .send()
            .await
            .unwrap();
        wait_active(&client, name).await;
        let shards = open_shards(&client, name).await;
        client
            .merge_shards()
            .stream_name(name)
            .shard_to_merge(shards[1].shard_id())
            .adjacent_shard_to_merge(shards[2].shard_id())
            .send()
            .await
            .unwrap();
        wait_active(&client, name).await;
        for target in [4, 2] {
            let out = client
                .update_shard_count()
                .stream_name(name)
                .target_shard_count(target)
                .scaling_type(ScalingType::UniformScaling)
                .send()
                .await
                .unwrap();
            assert_eq!(out.target_shard_count(), Some(target));
            wait_active(&client, name).await;
        }
        assert_eq!(open_shards(&client, name).await.len(), 2);
    }
    stop.store(true, Ordering::Relaxed);
    w.await
        .unwrap()
        .expect("writes never fail during resharding");
    let acked = acked.lock().await.clone();
    assert!(
        acked.len() > 100,
        "only {} records acknowledged",
        acked.len()
    );
    let (order, records) = read_by_lineage(&client, name).await;
    assert!(order.len() >= 18, "lineage of {} shards", order.len());
    check(&acked, &records);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_split_loses_nothing() {
    let mut server = Server::start();
    let name = "crashsplit";
    let client = server.client();
    client
        .create_stream()
        .stream_name(name)
        .shard_count(1)
        .send()
        .await
        .unwrap();
    wait_active(&client, name).await;
    let acked: Acked = Arc::default();
    for round in 0..5u64 {
        let client = server.client();
        let stop = Arc::new(AtomicBool::new(false));
        let w = tokio::spawn(writer(
            client.clone(),
            name.into(),
            acked.clone(),
            stop.clone(),
            round + 1,
        ));
        // Split the widest open shard, and kill the server a random moment after asking.
        let shards = open_shards(&client, name).await;
        let widest = shards
            .iter()
            .max_by_key(|s| {
                let r = s.hash_key_range().unwrap();
                r.ending_hash_key().parse::<u128>().unwrap()
                    - r.starting_hash_key().parse::<u128>().unwrap()
            })
            .unwrap();
        let r = widest.hash_key_range().unwrap();
        let (lo, hi): (u128, u128) = (
            r.starting_hash_key().parse().unwrap(),
            r.ending_hash_key().parse().unwrap(),
        );
        let split = client
            .split_shard()
            .stream_name(name)
            .shard_to_split(widest.shard_id())
            .new_starting_hash_key((lo / 2 + hi / 2).to_string())
            .send();
        let delay = Duration::from_millis(rand::random::<u64>() % 40);
        let _ = tokio::time::timeout(delay, split).await;
        let dir = server.kill();
        stop.store(true, Ordering::Relaxed);
        let _ = w.await.unwrap(); // the writer ends on the first failed request
        server = Server::start_in(dir);
        let client = server.client();
        wait_active(&client, name).await;
        // The open shards tile the key space and every acknowledged record is readable.
        let open = open_shards(&client, name).await;
        let mut next = 0u128;
        for s in &open {
            let r = s.hash_key_range().unwrap();
            assert_eq!(
                r.starting_hash_key().parse::<u128>().unwrap(),
                next,
                "gap or overlap in round {round}"
            );
            next = r.ending_hash_key().parse::<u128>().unwrap().wrapping_add(1);
        }
        assert_eq!(next, 0, "open shards must end at 2^128 - 1");
        let acked_now = acked.lock().await.clone();
        let (_, records) = read_by_lineage(&client, name).await;
        check(&acked_now, &records);
        println!(
            "round {round}: killed {delay:?} after the split; {} acknowledged, {} shards open",
            acked_now.len(),
            open.len()
        );
    }
}
