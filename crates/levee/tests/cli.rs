//! The `levee` client commands (`stream`, `put`, `tail`) run as a user runs them — the binary,
//! spawned with an empty environment — against a real `levee serve`, and checked with the AWS
//! SDK for Rust. With no credentials anywhere and a loopback endpoint the client falls back to
//! dummy credentials, so these tests also cover that path. `levee tail` is checked while the
//! stream is split and rescaled under it: every record once, each key in order.

mod common;

use std::collections::{HashMap, HashSet};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{
    PutRecordsRequestEntry, ScalingType, ShardFilter, ShardFilterType, ShardIteratorType,
    StreamMode,
};
use aws_sdk_kinesis::Client;
use base64::Engine;
use common::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// How long any one `levee` client command may take in these tests.
const COMMAND_SECS_MAX: u64 = 60;

/// `levee ARGS` against the server: empty environment (HOME an empty directory, so no AWS
/// config or credentials files), the endpoint by flag.
fn levee(server: &Server, home: &tempfile::TempDir, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_levee"));
    c.env_clear()
        .env("HOME", home.path())
        .env("LEVEE_LOG", "warn")
        .args(args)
        .args(["--endpoint-url", &server.endpoint])
        .kill_on_drop(true);
    c
}

async fn run(server: &Server, home: &tempfile::TempDir, args: &[&str]) -> Output {
    tokio::time::timeout(
        Duration::from_secs(COMMAND_SECS_MAX),
        levee(server, home, args).output(),
    )
    .await
    .unwrap_or_else(|_| panic!("levee {args:?} did not finish"))
    .expect("spawn levee")
}

/// Runs and expects success; returns stdout.
async fn ok(server: &Server, home: &tempfile::TempDir, args: &[&str]) -> String {
    let out = run(server, home, args).await;
    assert!(
        out.status.success(),
        "levee {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

async fn open_shards(client: &Client, name: &str) -> Vec<String> {
    client
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
        .iter()
        .map(|s| s.shard_id().to_owned())
        .collect()
}

async fn status(client: &Client, name: &str) -> String {
    client
        .describe_stream_summary()
        .stream_name(name)
        .send()
        .await
        .unwrap()
        .stream_description_summary()
        .unwrap()
        .stream_status()
        .as_str()
        .to_owned()
}

#[tokio::test]
async fn stream_commands_create_list_describe_reshard_delete() {
    let server = Server::start();
    let client = server.client();
    let home = tempfile::tempdir().unwrap();

    let out = ok(
        &server,
        &home,
        &["stream", "create", "orders", "--shards", "2"],
    )
    .await;
    assert_eq!(out.trim(), "stream orders ACTIVE, 2 open shards");
    assert_eq!(status(&client, "orders").await, "ACTIVE", "create waits");
    assert_eq!(open_shards(&client, "orders").await.len(), 2);

    ok(
        &server,
        &home,
        &["stream", "create", "events", "--on-demand"],
    )
    .await;
    let summary = client
        .describe_stream_summary()
        .stream_name("events")
        .send()
        .await
        .unwrap();
    let mode = summary
        .stream_description_summary()
        .unwrap()
        .stream_mode_details()
        .unwrap()
        .stream_mode();
    assert_eq!(mode, &StreamMode::OnDemand);

    let list = ok(&server, &home, &["stream", "list"]).await;
    assert_eq!(list.lines().collect::<Vec<_>>(), ["events", "orders"]);
    let json: serde_json::Value =
        serde_json::from_str(&ok(&server, &home, &["stream", "list", "--json"]).await).unwrap();
    let names: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["StreamName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["events", "orders"]);

    let table = ok(&server, &home, &["stream", "describe", "orders"]).await;
    assert!(table.contains("Status       ACTIVE"), "{table}");
    assert!(table.contains("Open shards  2"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("shardId-000000000001  open")),
        "{table}"
    );

    // UpdateShardCount, then a split in the middle of a shard, then a merge back.
    let out = ok(
        &server,
        &home,
        &["stream", "reshard", "orders", "--shards", "4"],
    )
    .await;
    assert_eq!(out.trim(), "stream orders ACTIVE, 4 open shards");
    let open = open_shards(&client, "orders").await;
    assert_eq!(open.len(), 4);
    let first = open[0].clone();
    let out = ok(
        &server,
        &home,
        &["stream", "reshard", "orders", "--split", &first],
    )
    .await;
    assert_eq!(out.trim(), "stream orders ACTIVE, 5 open shards");
    let open = open_shards(&client, "orders").await;
    assert!(!open.contains(&first), "{first} is closed by the split");
    let desc: serde_json::Value = serde_json::from_str(
        &ok(&server, &home, &["stream", "describe", "orders", "--json"]).await,
    )
    .unwrap();
    assert_eq!(desc["OpenShardCount"], 5);
    let shards = desc["Shards"].as_array().unwrap();
    let children: Vec<&serde_json::Value> = shards
        .iter()
        .filter(|s| s["ParentShardId"] == first.as_str())
        .collect();
    assert_eq!(children.len(), 2, "{desc}");
    let (lo, hi) = (
        children[0]["ShardId"].as_str().unwrap().to_owned(),
        children[1]["ShardId"].as_str().unwrap().to_owned(),
    );
    // The split was at the middle of the parent's range.
    let key = |s: &serde_json::Value, k: &str| -> u128 {
        s["HashKeyRange"][k].as_str().unwrap().parse().unwrap()
    };
    let parent = shards
        .iter()
        .find(|s| s["ShardId"] == first.as_str())
        .unwrap();
    let mid = key(parent, "StartingHashKey")
        + (key(parent, "EndingHashKey") - key(parent, "StartingHashKey")) / 2
        + 1;
    assert_eq!(key(children[1], "StartingHashKey"), mid);
    let out = ok(
        &server,
        &home,
        &["stream", "reshard", "orders", "--merge", &lo, &hi],
    )
    .await;
    assert_eq!(out.trim(), "stream orders ACTIVE, 4 open shards");

    // Errors: AWS's code and message, non-zero exit.
    let out = run(&server, &home, &["stream", "describe", "missing"]).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ResourceNotFoundException: Stream missing under account"),
        "{err}"
    );
    let out = run(&server, &home, &["stream", "create", "orders"]).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ResourceInUseException"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = ok(&server, &home, &["stream", "delete", "orders"]).await;
    assert_eq!(out.trim(), "stream orders deleted");
    let gone = client
        .describe_stream_summary()
        .stream_name("orders")
        .send()
        .await;
    assert!(gone
        .unwrap_err()
        .as_service_error()
        .is_some_and(|e| e.is_resource_not_found_exception()));
    let list = ok(&server, &home, &["stream", "list"]).await;
    assert_eq!(list.trim(), "events");
}

/// Every record of a stream, by lineage order within shards: (shard, key, data).
async fn read_all(client: &Client, name: &str) -> Vec<(String, String, Vec<u8>)> {
    let shards = client
        .list_shards()
        .stream_name(name)
        .send()
        .await
        .unwrap()
        .shards()
        .to_vec();
    let mut all = Vec::new();
    for s in shards {
        let mut it = client
            .get_shard_iterator()
            .stream_name(name)
            .shard_id(s.shard_id())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator()
            .map(str::to_owned);
        while let Some(i) = it {
            let r = client.get_records().shard_iterator(i).send().await.unwrap();
            for x in r.records() {
                all.push((
                    s.shard_id().to_owned(),
                    x.partition_key().unwrap_or_default().to_owned(),
                    x.data().as_ref().to_vec(),
                ));
            }
            it = r.next_shard_iterator().map(str::to_owned);
            if r.records().is_empty() {
                break;
            }
        }
    }
    all
}

#[tokio::test]
async fn put_from_arguments_a_file_and_stdin() {
    let server = Server::start();
    let client = server.client();
    let home = tempfile::tempdir().unwrap();
    ok(
        &server,
        &home,
        &["stream", "create", "logs", "--shards", "2"],
    )
    .await;

    let out = ok(
        &server,
        &home,
        &["put", "logs", "a", "b", "c", "-k", "args"],
    )
    .await;
    assert_eq!(
        out.trim(),
        "put 3 records (3 bytes) to logs in 1 batch, 0 retries"
    );

    // 1,201 lines: three PutRecords batches of at most 500; CRLF endings are stripped too.
    let file = home.path().join("lines.txt");
    let mut text = String::new();
    for i in 0..1_200 {
        text.push_str(&format!("line-{i:04}\n"));
    }
    text.push_str("last\r\n");
    std::fs::write(&file, &text).unwrap();
    let out = ok(
        &server,
        &home,
        &[
            "put",
            "logs",
            "--file",
            file.to_str().unwrap(),
            "--partition-key",
            "file",
        ],
    )
    .await;
    assert_eq!(
        out.trim(),
        format!(
            "put 1201 records ({} bytes) to logs in 3 batches, 0 retries",
            1_200 * 9 + 4
        )
    );

    // Stdin, a random key per record.
    let mut child = levee(&server, &home, &["put", "logs"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().unwrap();
        for i in 0..50 {
            stdin
                .write_all(format!("stdin-{i}\n").as_bytes())
                .await
                .unwrap();
        }
    }
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("put 50 records ("));

    let all = read_all(&client, "logs").await;
    assert_eq!(all.len(), 3 + 1_201 + 50);
    let data = |key: &str| -> Vec<String> {
        all.iter()
            .filter(|(_, k, _)| k == key)
            .map(|(_, _, d)| String::from_utf8(d.clone()).unwrap())
            .collect()
    };
    assert_eq!(data("args"), ["a", "b", "c"]);
    let from_file = data("file");
    let mut want: Vec<String> = (0..1_200).map(|i| format!("line-{i:04}")).collect();
    want.push("last".into());
    assert_eq!(from_file, want, "one key: one shard, in file order");
    let stdin_records: Vec<&(String, String, Vec<u8>)> = all
        .iter()
        .filter(|(_, k, _)| k != "args" && k != "file")
        .collect();
    let got: HashSet<String> = stdin_records
        .iter()
        .map(|(_, _, d)| String::from_utf8(d.clone()).unwrap())
        .collect();
    let want: HashSet<String> = (0..50).map(|i| format!("stdin-{i}")).collect();
    assert_eq!(got, want);
    let keys: HashSet<&str> = stdin_records.iter().map(|(_, k, _)| k.as_str()).collect();
    assert!(
        keys.len() > 40,
        "random keys: {} distinct of 50",
        keys.len()
    );
    let shards: HashSet<&str> = stdin_records.iter().map(|(s, _, _)| s.as_str()).collect();
    assert_eq!(shards.len(), 2, "random keys reach both shards");

    // A missing stream: AWS's error, non-zero exit.
    let out = run(&server, &home, &["put", "nope", "x"]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ResourceNotFoundException"));
}

async fn put_batch(client: &Client, name: &str, records: &[(String, String)]) {
    let entries = records
        .iter()
        .map(|(k, d)| {
            PutRecordsRequestEntry::builder()
                .partition_key(k)
                .data(Blob::new(d.clone()))
                .build()
                .unwrap()
        })
        .collect();
    let out = client
        .put_records()
        .stream_name(name)
        .set_records(Some(entries))
        .send()
        .await
        .unwrap();
    assert_eq!(out.failed_record_count(), Some(0));
}

#[tokio::test]
async fn tail_follows_a_split_and_update_shard_count_in_order() {
    const KEYS: usize = 12;
    const PER_PHASE: usize = 120;
    let server = Server::start();
    let client = server.client();
    let home = tempfile::tempdir().unwrap();
    ok(
        &server,
        &home,
        &["stream", "create", "clicks", "--shards", "2"],
    )
    .await;

    let total = 3 * PER_PHASE;
    let limit = total.to_string();
    let mut tail = levee(
        &server,
        &home,
        &[
            "tail",
            "clicks",
            "--from",
            "trim-horizon",
            "--format",
            "json",
            "--limit",
            &limit,
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let stdout = tail.stdout.take().unwrap();
    let reader = tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        let mut got = Vec::new();
        while let Some(l) = lines.next_line().await.unwrap() {
            got.push(l);
        }
        got
    });

    // Three phases of writes with per-key counters; a split after the first, UpdateShardCount
    // down to 2 after the second. The tail reads all along.
    let mut counters = [0u32; KEYS];
    let mut phase = |n: usize| -> Vec<(String, String)> {
        (0..n)
            .map(|i| {
                let k = (i * 5) % KEYS;
                counters[k] += 1;
                (format!("key-{k}"), format!("key-{k}:{}", counters[k]))
            })
            .collect()
    };
    for chunk in phase(PER_PHASE).chunks(40) {
        put_batch(&client, "clicks", chunk).await;
    }
    client
        .split_shard()
        .stream_name("clicks")
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key((1u128 << 126).to_string())
        .send()
        .await
        .unwrap();
    wait_active(&client, "clicks").await;
    for chunk in phase(PER_PHASE).chunks(40) {
        put_batch(&client, "clicks", chunk).await;
    }
    client
        .update_shard_count()
        .stream_name("clicks")
        .target_shard_count(2)
        .scaling_type(ScalingType::UniformScaling)
        .send()
        .await
        .unwrap();
    wait_active(&client, "clicks").await;
    for chunk in phase(PER_PHASE).chunks(40) {
        put_batch(&client, "clicks", chunk).await;
    }

    let status = tokio::time::timeout(Duration::from_secs(COMMAND_SECS_MAX), tail.wait())
        .await
        .expect("tail exits after --limit records")
        .unwrap();
    let mut stderr = String::new();
    if let Some(mut e) = tail.stderr.take() {
        use tokio::io::AsyncReadExt;
        e.read_to_string(&mut stderr).await.unwrap();
    }
    assert!(status.success(), "tail failed: {stderr}");
    let lines = reader.await.unwrap();
    assert_eq!(lines.len(), total, "{stderr}");

    let mut seen = HashSet::new();
    let mut last: HashMap<String, u32> = HashMap::new();
    let mut shards = HashSet::new();
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["stream"], "clicks");
        assert!(v["sequenceNumber"].as_str().unwrap().len() > 20);
        assert!(v["approximateArrivalTimestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z'));
        let data = base64::engine::general_purpose::STANDARD
            .decode(v["data"].as_str().unwrap())
            .unwrap();
        let data = String::from_utf8(data).unwrap();
        assert!(seen.insert(data.clone()), "{data} printed twice");
        let key = v["partitionKey"].as_str().unwrap().to_owned();
        let (k, n) = data.split_once(':').unwrap();
        assert_eq!(k, key);
        let n: u32 = n.parse().unwrap();
        let prev = last.insert(key.clone(), n).unwrap_or(0);
        assert_eq!(
            n,
            prev + 1,
            "{key}: {n} after {prev}: out of order or missing"
        );
        shards.insert(v["shardId"].as_str().unwrap().to_owned());
    }
    // Records came from the original shards, the split's children and the rescaled shards.
    let all_shards = client
        .list_shards()
        .stream_name("clicks")
        .send()
        .await
        .unwrap()
        .shards()
        .len();
    assert!(all_shards > 4, "{all_shards} shards after two reshards");
    assert!(
        shards.len() >= 5,
        "tail read only {} shards: {shards:?}",
        shards.len()
    );
    let open: HashSet<String> = open_shards(&client, "clicks").await.into_iter().collect();
    assert!(
        shards.intersection(&open).count() > 0,
        "tail reached the newest shards"
    );
}

#[tokio::test]
async fn tail_from_latest_and_from_a_timestamp_as_text() {
    let server = Server::start();
    let client = server.client();
    let home = tempfile::tempdir().unwrap();
    ok(
        &server,
        &home,
        &["stream", "create", "feed", "--shards", "2"],
    )
    .await;
    ok(
        &server,
        &home,
        &["put", "feed", "old-1", "old-2", "-k", "k"],
    )
    .await;

    // --from a time after the old records: only what came after.
    let first = read_all(&client, "feed").await;
    assert_eq!(first.len(), 2);
    let records = {
        let shard = &first[0].0;
        read_shard(&client, "feed", shard).await
    };
    let old_ms = records
        .iter()
        .map(|r| {
            // Rounded: the SDK reads `.512` seconds as `.511999999`.
            (r.approximate_arrival_timestamp().unwrap().as_secs_f64() * 1000.0).round() as i64
        })
        .max()
        .unwrap();
    let from_ms = old_ms + 1;
    let deadline = Instant::now() + Duration::from_secs(5);
    while (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64)
        <= from_ms
    {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    ok(&server, &home, &["put", "feed", "new-1", "-k", "k"]).await;
    let from = aws_sdk_kinesis::primitives::DateTime::from_millis(from_ms)
        .fmt(aws_sdk_kinesis::primitives::DateTimeFormat::DateTime)
        .unwrap();
    let out = ok(
        &server,
        &home,
        &["tail", "feed", "--from", &from, "--limit", "1"],
    )
    .await;
    assert_eq!(out, "new-1\n");
    let out = ok(
        &server,
        &home,
        &["tail", "feed", "--from", "trim-horizon", "--limit", "3"],
    )
    .await;
    assert_eq!(out, "old-1\nold-2\nnew-1\n");

    // --from latest (the default): only records put after the tail started. Keep putting
    // until the tail has printed one.
    let mut tail = levee(
        &server,
        &home,
        &[
            "tail", "feed", "--limit", "1", "--format", "json", "--decode",
        ],
    )
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(COMMAND_SECS_MAX);
    let mut i = 0;
    let status = loop {
        if let Some(s) = tail.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "tail --from latest printed nothing"
        );
        put_batch(&client, "feed", &[("k".into(), format!("live-{i}"))]).await;
        i += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success());
    let mut out = String::new();
    {
        use tokio::io::AsyncReadExt;
        tail.stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .await
            .unwrap();
    }
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(v["data"].as_str().unwrap().starts_with("live-"), "{out}");
    assert_eq!(v["partitionKey"], "k");
}

#[tokio::test]
async fn the_endpoint_comes_from_levee_endpoint_and_errors_are_one_line() {
    let server = Server::start();
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_levee"))
        .env_clear()
        .env("HOME", home.path())
        .env("LEVEE_ENDPOINT", &server.endpoint)
        .args(["stream", "create", "s1", "--no-wait"])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "stream s1 CREATING"
    );

    // Nothing listening: a one-line error naming the operation, exit status 1.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(env!("CARGO_BIN_EXE_levee"))
        .env_clear()
        .env("HOME", home.path())
        .args([
            "stream",
            "list",
            "--endpoint-url",
            &format!("http://127.0.0.1:{port}"),
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("levee: ListStreams: "), "{err}");
    assert!(err.contains("Connection refused"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

/// Puts records with explicit hash keys (to place them in chosen shards), four per call.
async fn put_at(client: &Client, name: &str, records: &[(String, u128, Vec<u8>)]) {
    for chunk in records.chunks(4) {
        let entries = chunk
            .iter()
            .map(|(k, h, d)| {
                PutRecordsRequestEntry::builder()
                    .partition_key(k)
                    .explicit_hash_key(h.to_string())
                    .data(Blob::new(d.clone()))
                    .build()
                    .unwrap()
            })
            .collect();
        let out = client
            .put_records()
            .stream_name(name)
            .set_records(Some(entries))
            .send()
            .await
            .unwrap();
        assert_eq!(out.failed_record_count(), Some(0));
    }
}

/// A merge child waits for both parents: one parent is quick to read (a few small records), the
/// other slow (8 MiB, more than one GetRecords call holds), and the child holds later records of
/// the slow parent's key. Starting the child when the quick parent ends would print them first.
#[tokio::test]
async fn tail_reads_a_merge_child_only_after_both_parents() {
    const BIG_BYTES: usize = 1_000_000;
    let server = Server::start();
    let client = server.client();
    let home = tempfile::tempdir().unwrap();
    ok(&server, &home, &["stream", "create", "m", "--shards", "2"]).await;
    let quarter = 1u128 << 126;
    ok(
        &server,
        &home,
        &[
            "stream",
            "reshard",
            "m",
            "--split",
            "shardId-000000000000",
            "--at",
            &quarter.to_string(),
        ],
    )
    .await;
    // The split's children: a = [0, 2^126), b = [2^126, 2^127).
    let (a, b) = (
        "shardId-000000000002".to_owned(),
        "shardId-000000000003".to_owned(),
    );
    let open = open_shards(&client, "m").await;
    assert!(open.contains(&a) && open.contains(&b), "{open:?}");
    let record = |k: &str, n: usize, pad: usize| -> Vec<u8> {
        let mut d = format!("{k}:{n}:").into_bytes();
        d.resize(d.len() + pad, b'.');
        d
    };
    let mut puts = Vec::new();
    for n in 1..=5 {
        puts.push(("quick".to_owned(), 7u128, record("quick", n, 0)));
    }
    for n in 1..=8 {
        puts.push(("slow".to_owned(), quarter + 7, record("slow", n, BIG_BYTES)));
    }
    put_at(&client, "m", &puts).await;
    let out = ok(
        &server,
        &home,
        &["stream", "reshard", "m", "--merge", &a, &b],
    )
    .await;
    assert_eq!(out.trim(), "stream m ACTIVE, 2 open shards");
    let mut later = Vec::new();
    for n in 6..=10 {
        later.push(("quick".to_owned(), 7u128, record("quick", n, 0)));
        later.push(("slow".to_owned(), quarter + 7, record("slow", n + 3, 0)));
    }
    put_at(&client, "m", &later).await;

    let out = ok(
        &server,
        &home,
        &[
            "tail",
            "m",
            "--from",
            "trim-horizon",
            "--format",
            "json",
            "--decode",
            "--limit",
            "23",
        ],
    )
    .await;
    let mut last: HashMap<String, usize> = HashMap::new();
    let mut shards = HashSet::new();
    for l in out.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let data = v["data"].as_str().unwrap();
        let mut parts = data.split(':');
        let (k, n) = (parts.next().unwrap(), parts.next().unwrap());
        let n: usize = n.parse().unwrap();
        let prev = last.insert(k.to_owned(), n).unwrap_or(0);
        assert_eq!(n, prev + 1, "{k}: {n} after {prev}");
        shards.insert(v["shardId"].as_str().unwrap().to_owned());
    }
    assert_eq!(last.get("quick"), Some(&10));
    assert_eq!(last.get("slow"), Some(&13));
    assert!(shards.contains(&a) && shards.contains(&b), "{shards:?}");
    assert_eq!(
        shards.len(),
        3,
        "the two parents and the merged child: {shards:?}"
    );
}

/// A stand-in Kinesis endpoint for one PutRecords exchange: the first call fails its first
/// record with ProvisionedThroughputExceededException, later calls succeed. Returns the
/// endpoint and the request bodies it saw.
async fn throttling_endpoint() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let bodies = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let bodies = bodies.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    // One request: headers, then Content-Length bytes of body.
                    let head_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        let mut chunk = [0u8; 4096];
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse().unwrap());
                    while buf.len() < head_end + len {
                        let mut chunk = [0u8; 4096];
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body: Vec<u8> = buf.drain(..head_end + len).skip(head_end).collect();
                    let request: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    let n = request["Records"].as_array().unwrap().len();
                    let first_call = {
                        let mut b = bodies.lock().unwrap();
                        b.push(String::from_utf8(body).unwrap());
                        b.len() == 1
                    };
                    let records: Vec<serde_json::Value> = (0..n)
                        .map(|i| {
                            if first_call && i == 0 {
                                serde_json::json!({
                                    "ErrorCode": "ProvisionedThroughputExceededException",
                                    "ErrorMessage": "Rate exceeded for shard shardId-000000000000",
                                })
                            } else {
                                serde_json::json!({
                                    "SequenceNumber": format!("{}", 100 + i),
                                    "ShardId": "shardId-000000000000",
                                })
                            }
                        })
                        .collect();
                    let answer = serde_json::json!({
                        "FailedRecordCount": if first_call { 1 } else { 0 },
                        "Records": records,
                    })
                    .to_string();
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\n\
                         x-amzn-requestid: test\r\ncontent-length: {}\r\n\r\n{answer}",
                        answer.len()
                    );
                    if sock.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (endpoint, seen)
}

#[tokio::test]
async fn put_sends_failed_records_again() {
    let (endpoint, seen) = throttling_endpoint().await;
    let home = tempfile::tempdir().unwrap();
    let out = tokio::time::timeout(
        Duration::from_secs(COMMAND_SECS_MAX),
        Command::new(env!("CARGO_BIN_EXE_levee"))
            .env_clear()
            .env("HOME", home.path())
            .args([
                "put",
                "s",
                "first",
                "second",
                "-k",
                "k",
                "--endpoint-url",
                &endpoint,
            ])
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "put 2 records (11 bytes) to s in 1 batch, 1 retry"
    );
    let bodies = seen.lock().unwrap().clone();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    let data = |body: &str| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        v["Records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let b = base64::engine::general_purpose::STANDARD
                    .decode(r["Data"].as_str().unwrap())
                    .unwrap();
                String::from_utf8(b).unwrap()
            })
            .collect()
    };
    assert_eq!(data(&bodies[0]), ["first", "second"]);
    assert_eq!(data(&bodies[1]), ["first"], "only the failed record again");
}
