//! The admin listener against a real `levee serve`: metrics after a known workload (the AWS SDK
//! for Rust), health, the status page and its JSON, the ring surviving a restart, `levee
//! status`, and answering within 100 ms while the request runtime is saturated.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use common::{http_get as get, wait_active, Server};

/// Parses Prometheus text into (name, sorted labels) → value.
fn parse_metrics(text: &str) -> BTreeMap<(String, String), f64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, l.trim_end_matches('}')),
            None => (series, ""),
        };
        let mut ls: Vec<&str> = if labels.is_empty() {
            vec![]
        } else {
            labels.split(',').collect()
        };
        ls.sort();
        out.insert((name.to_owned(), ls.join(",")), value.parse().unwrap());
    }
    out
}

fn metric(m: &BTreeMap<(String, String), f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut ls: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    ls.sort();
    let key = (name.to_owned(), ls.join(","));
    *m.get(&key).unwrap_or_else(|| panic!("no metric {key:?}"))
}

#[tokio::test]
async fn metrics_count_a_known_workload_exactly() {
    let server = Server::start_with(
        tempfile::tempdir().unwrap(),
        &["--connections-max", "300", "--status-sample-ms", "100"],
    );
    assert_eq!(get(&server.admin, "/health/live").0, 200);
    assert_eq!(get(&server.admin, "/health/ready").0, 200);
    let client = server.client();
    client
        .create_stream()
        .stream_name("metered")
        .shard_count(1)
        .send()
        .await
        .unwrap();
    wait_active(&client, "metered").await;
    // 5 PutRecord of key "k" (1 byte) + 10 bytes of data; 1 PutRecords of 3 × ("kk", 20 bytes).
    for _ in 0..5 {
        client
            .put_record()
            .stream_name("metered")
            .partition_key("k")
            .data(Blob::new(vec![7u8; 10]))
            .send()
            .await
            .unwrap();
    }
    let entries: Vec<_> = (0..3)
        .map(|_| {
            PutRecordsRequestEntry::builder()
                .partition_key("kk")
                .data(Blob::new(vec![8u8; 20]))
                .build()
                .unwrap()
        })
        .collect();
    client
        .put_records()
        .stream_name("metered")
        .set_records(Some(entries))
        .send()
        .await
        .unwrap();
    let it = client
        .get_shard_iterator()
        .stream_name("metered")
        .shard_id("shardId-000000000000")
        .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap()
        .shard_iterator()
        .unwrap()
        .to_owned();
    let got = client
        .get_records()
        .shard_iterator(it)
        .send()
        .await
        .unwrap();
    assert_eq!(got.records().len(), 8);
    for _ in 0..2 {
        let e = client
            .describe_stream()
            .stream_name("missing")
            .send()
            .await
            .unwrap_err();
        assert!(format!("{e:?}").contains("ResourceNotFoundException"));
    }

    let m = parse_metrics(&get(&server.admin, "/metrics").1);
    let req = "levee_api_requests_total";
    assert_eq!(metric(&m, req, &[("operation", "PutRecord")]), 5.0);
    assert_eq!(metric(&m, req, &[("operation", "PutRecords")]), 1.0);
    assert_eq!(metric(&m, req, &[("operation", "GetShardIterator")]), 1.0);
    assert_eq!(metric(&m, req, &[("operation", "GetRecords")]), 1.0);
    assert_eq!(metric(&m, req, &[("operation", "CreateStream")]), 1.0);
    assert_eq!(metric(&m, req, &[("operation", "DescribeStream")]), 2.0);
    assert_eq!(
        metric(
            &m,
            "levee_api_errors_total",
            &[
                ("operation", "DescribeStream"),
                ("error", "ResourceNotFoundException")
            ]
        ),
        2.0
    );
    assert!(!m
        .keys()
        .any(|(n, l)| n == "levee_api_errors_total" && l.contains("Put")));
    assert_eq!(
        metric(
            &m,
            "levee_api_request_duration_seconds_count",
            &[("operation", "PutRecord")]
        ),
        5.0
    );
    let s = [("stream", "metered")];
    assert_eq!(metric(&m, "levee_stream_incoming_records_total", &s), 8.0);
    assert_eq!(
        metric(&m, "levee_stream_incoming_bytes_total", &s),
        (5 * (1 + 10) + 3 * (2 + 20)) as f64
    );
    assert_eq!(metric(&m, "levee_stream_outgoing_records_total", &s), 8.0);
    assert_eq!(
        metric(&m, "levee_stream_outgoing_bytes_total", &s),
        (5 * (1 + 10) + 3 * (2 + 20)) as f64
    );
    // Storage: each acknowledged write was fsynced in some batch of the data log.
    let log = [("log", "sequential")];
    let batches = metric(&m, "levee_storage_fsync_duration_seconds_count", &log);
    let entries = metric(&m, "levee_storage_group_commit_batch_entries_sum", &log);
    assert!(
        batches >= 1.0 && batches <= entries,
        "{batches} batches, {entries} entries"
    );
    // 6 appends (5 PutRecord, 1 PutRecords to one shard) plus stream and shard creation.
    assert!(entries >= 6.0, "{entries}");
    assert!(metric(&m, "levee_storage_log_written_bytes_total", &log) > 0.0);
    // Limits are visible.
    assert_eq!(
        metric(&m, "levee_config_limit", &[("limit", "http_connections")]),
        300.0
    );
    assert_eq!(
        metric(&m, "levee_config_limit", &[("limit", "blocking_threads")]),
        16.0
    );
    // Shard map, resources (sampled on the admin runtime; await the first sample).
    let deadline = Instant::now() + Duration::from_secs(10);
    let m = loop {
        let m = parse_metrics(&get(&server.admin, "/metrics").1);
        if m.contains_key(&("levee_shard_map_version".to_owned(), String::new()))
            && metric(&m, "levee_shard_map_version", &[]) >= 1.0
            && m.contains_key(&("levee_resource_used".into(), "resource=\"fds\"".into()))
        {
            break m;
        }
        assert!(Instant::now() < deadline, "no resource sample");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(metric(&m, "levee_resource_used", &[("resource", "fds")]) >= 5.0);
    assert!(metric(&m, "levee_resource_limit", &[("resource", "fds")]) >= 64.0);
    assert!(metric(&m, "levee_resource_used", &[("resource", "threads")]) >= 4.0);
    assert!(metric(&m, "levee_resource_limit", &[("resource", "memory_maps")]) > 0.0);
    assert!(
        metric(
            &m,
            "levee_resource_limit",
            &[("resource", "threads_system")]
        ) > 0.0
    );
    assert!(m.contains_key(&(
        "levee_resource_alarm_level".into(),
        "resource=\"fds\"".into()
    )));
    assert!(metric(&m, "levee_shard_map_age_seconds", &[]) >= 0.0);
}

#[tokio::test]
async fn status_page_and_json_come_from_local_state_and_the_ring_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir, &["--status-sample-ms", "50"]);
    let client = server.client();
    client
        .create_stream()
        .stream_name("orders")
        .shard_count(2)
        .send()
        .await
        .unwrap();
    wait_active(&client, "orders").await;
    for i in 0..20 {
        client
            .put_record()
            .stream_name("orders")
            .partition_key(format!("k{i}"))
            .data(Blob::new(b"hello".to_vec()))
            .send()
            .await
            .unwrap();
    }
    let _ = client.describe_stream().stream_name("nope").send().await;
    // Await samples spanning the writes.
    let deadline = Instant::now() + Duration::from_secs(10);
    let v: serde_json::Value = loop {
        let v: serde_json::Value =
            serde_json::from_str(&get(&server.admin, "/status.json").1).unwrap();
        let tp = &v["throughput"]["in_records_per_s"];
        let sum: f64 = tp
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .sum();
        if sum > 0.0 && !v["resources"].as_array().unwrap().is_empty() {
            break v;
        }
        assert!(Instant::now() < deadline, "no throughput sample: {v}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(v["ready"], true);
    assert_eq!(v["identity"]["api"], server.endpoint.as_str());
    assert_eq!(v["totals"]["in_records"], 20);
    let streams = v["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 1);
    assert_eq!(streams[0]["name"], "orders");
    assert_eq!(streams[0]["state"], "ACTIVE");
    assert_eq!(streams[0]["shards"].as_array().unwrap().len(), 2);
    assert!(v["shard_map"]["version"].as_u64().unwrap() >= 1);
    assert_eq!(v["shard_map"]["valid"], true);
    let fds = v["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "fds")
        .unwrap();
    assert!(fds["limit"].as_f64().unwrap() > fds["used"].as_f64().unwrap());
    assert_eq!(fds["alarm"], "ok");
    assert_eq!(v["recent_errors"][0]["error"], "ResourceNotFoundException");

    let (code, html) = get(&server.admin, "/status");
    assert_eq!(code, 200);
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.contains("orders") && html.contains("shardId-000000000001"));
    assert!(html.contains("<svg") && html.contains("<polyline"));
    assert!(html.contains("data-resource=\"fds\""));
    assert!(html.contains("ResourceNotFoundException"));
    // Self-contained: no scripts, no external assets.
    assert!(!html.contains("<script"));
    assert!(!html.contains("src=") && !html.contains("<link"));

    // `levee status` prints the same state in the terminal.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_levee"))
        .args(["status", "--admin", &server.admin])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("READY"), "{text}");
    assert!(text.contains("orders") && text.contains("ACTIVE"), "{text}");
    assert!(text.contains("RLIMIT_NOFILE"), "{text}");
    assert!(text.contains("ResourceNotFoundException"), "{text}");
    assert!(text.contains("20 records in"), "{text}");
    assert!(text.contains("in cell-1; worst case"), "{text}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_levee"))
        .args(["status", "--json", "--admin", &server.admin])
        .output()
        .unwrap();
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["streams"][0]["name"], "orders");
    // What `levee admin capacity-check` reads: the worst case from the settings.
    let budget = &j["budget"];
    assert!(budget["threads"].as_u64().unwrap() > 0, "{budget}");
    assert!(
        budget["fds"].as_u64().unwrap() > budget["threads"].as_u64().unwrap(),
        "{budget}"
    );
    assert_eq!(
        budget["roles"],
        serde_json::json!(["control", "storage", "frontend"])
    );

    // The ring survives a restart: the samples from before are still there.
    let before: Vec<u64> = v["throughput"]["at_ms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect();
    let admin = server.admin.clone();
    let (status, dir) = server.stop();
    assert!(status.success());
    let down = std::process::Command::new(env!("CARGO_BIN_EXE_levee"))
        .args(["status", "--admin", &admin])
        .output()
        .unwrap();
    assert!(
        !down.status.success(),
        "levee status fails when the node is down"
    );
    let server = Server::start_with(dir, &["--status-sample-ms", "50"]);
    let v: serde_json::Value = serde_json::from_str(&get(&server.admin, "/status.json").1).unwrap();
    let after: Vec<u64> = v["throughput"]["at_ms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect();
    let first = before.first().copied().unwrap();
    assert!(
        after.contains(&first) || after.first().is_some_and(|a| *a > first),
        "samples from before the restart are kept"
    );
    assert!(
        after.iter().any(|a| before.contains(a)),
        "{before:?} {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_answers_within_100ms_while_the_request_runtime_is_saturated() {
    let server = Server::start_with(
        tempfile::tempdir().unwrap(),
        &["--worker-threads", "1", "--blocking-threads", "2"],
    );
    let client = server.client();
    client
        .create_stream()
        .stream_name("busy")
        .shard_count(4)
        .send()
        .await
        .unwrap();
    wait_active(&client, "busy").await;
    // Saturate the one request worker with CPU-heavy PutRecords (250 × 1 KiB, base64 and MD5
    // for each record), many at once.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for t in 0..16 {
        let client = client.clone();
        let stop = stop.clone();
        load.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let entries: Vec<_> = (0..250)
                    .map(|i| {
                        PutRecordsRequestEntry::builder()
                            .partition_key(format!("{t}-{i}-{n}"))
                            .data(Blob::new(vec![b'x'; 1024]))
                            .build()
                            .unwrap()
                    })
                    .collect();
                let _ = client
                    .put_records()
                    .stream_name("busy")
                    .set_records(Some(entries))
                    .send()
                    .await;
                n += 1;
            }
            n
        }));
    }
    // Let the load build up: await the first completed batches.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let m = parse_metrics(&get(&server.admin, "/metrics").1);
        if m.get(&(
            "levee_api_requests_total".into(),
            "operation=\"PutRecords\"".into(),
        ))
        .is_some_and(|v| *v >= 8.0)
        {
            break;
        }
        assert!(Instant::now() < deadline, "load never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let admin = server.admin.clone();
    let endpoint = server.addr();
    let (admin_ms, api_ms) = tokio::task::spawn_blocking(move || {
        let mut admin_ms = Vec::new();
        let mut api_ms = Vec::new();
        for _ in 0..10 {
            let t = Instant::now();
            let (code, body) = get(&admin, "/status");
            assert_eq!(code, 200);
            assert!(body.contains("busy"));
            admin_ms.push(t.elapsed().as_secs_f64() * 1000.0);
            // The API port's own latency under the same load, for comparison: any request
            // (a GET is refused by the front-end) has to pass through the saturated runtime.
            let t = Instant::now();
            let _ = get(&format!("http://{endpoint}"), "/");
            api_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        (admin_ms, api_ms)
    })
    .await
    .unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut batches = 0;
    for l in load {
        batches += l.await.unwrap();
    }
    let max = admin_ms.iter().copied().fold(0.0, f64::max);
    let api_max = api_ms.iter().copied().fold(0.0, f64::max);
    eprintln!(
        "admin /status under load: max {max:.1} ms; API port max {api_max:.1} ms; {batches} batches"
    );
    assert!(
        max < 100.0,
        "admin /status took {max:.1} ms under load: {admin_ms:?}"
    );
}
