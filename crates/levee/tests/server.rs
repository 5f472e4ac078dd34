//! The server as a process: HTTP/2 with prior knowledge (h2c, as the Java SDK's async client
//! speaks on `http://`) on the same port as HTTP/1.1; graceful shutdown on SIGTERM; and threads
//! within the configured budget under 1,000 concurrent GetRecords of cold data.

mod common;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::ShardIteratorType;
use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};

const AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/kinesis/aws4_request, SignedHeaders=host;x-amz-date, Signature=0";

#[tokio::test]
async fn h2c_prior_knowledge_on_the_same_port() {
    let server = Server::start();
    let client = server.client();
    client
        .create_stream()
        .stream_name("h2")
        .shard_count(1)
        .send()
        .await
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .expect("h2c handshake");
    tokio::spawn(conn);
    let req = Request::post(format!("{}/", server.endpoint))
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "Kinesis_20131202.ListStreams")
        .header("authorization", AUTH)
        .header("x-amz-date", "20260101T000000Z")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.version(), Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("x-amzn-requestid"));
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["StreamNames"], serde_json::json!(["h2"]));
}

#[tokio::test]
async fn sigterm_shuts_down_cleanly_and_keeps_data() {
    let server = Server::start();
    let client = server.client();
    client
        .create_stream()
        .stream_name("graceful")
        .shard_count(1)
        .send()
        .await
        .unwrap();
    wait_active(&client, "graceful").await;
    let put = client
        .put_record()
        .stream_name("graceful")
        .partition_key("k")
        .data(Blob::new("kept"))
        .send()
        .await
        .unwrap();
    let (status, dir) = server.stop();
    assert!(status.success(), "levee exits 0 on SIGTERM: {status:?}");
    let server = Server::start_in(dir);
    let client = server.client();
    let recs = read_shard(&client, "graceful", "shardId-000000000000").await;
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].sequence_number(), put.sequence_number());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn threads_stay_within_budget_under_1000_cold_reads() {
    const WORKERS: usize = 2;
    const BLOCKING: usize = 4;
    // main + workers + blocking pool + the storage and catalog log writers + the admin
    // runtime (its thread and 2 blocking threads) + the log writer + the map thread (the map
    // I/O thread runs only on fleet nodes).
    const BUDGET: usize = 1 + WORKERS + BLOCKING + 2 + 3 + 1 + 1;
    let flags = ["--worker-threads", "2", "--blocking-threads", "4"];
    let server = Server::start_with(tempfile::tempdir().unwrap(), &flags);
    let client = server.client();
    client
        .create_stream()
        .stream_name("cold")
        .shard_count(4)
        .send()
        .await
        .unwrap();
    wait_active(&client, "cold").await;
    for i in 0..200 {
        client
            .put_record()
            .stream_name("cold")
            .partition_key(format!("k{i}"))
            .data(Blob::new(vec![b'x'; 2000]))
            .send()
            .await
            .unwrap();
    }
    // Restart: nothing of the data is in the server's caches any more.
    let dir = server.kill();
    let server = Server::start_with(dir, &flags);
    let client = server.client();
    let mut iterators = Vec::new();
    for shard in 0..4 {
        let it = client
            .get_shard_iterator()
            .stream_name("cold")
            .shard_id(format!("shardId-{shard:012}"))
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap();
        iterators.push(it.shard_iterator().unwrap().to_owned());
    }
    let mut tasks = Vec::new();
    for i in 0..1000 {
        let client = client.clone();
        let it = iterators[i % 4].clone();
        tasks.push(tokio::spawn(async move {
            client
                .get_records()
                .shard_iterator(it)
                .send()
                .await
                .map(|r| r.records().len())
        }));
    }
    let mut records = 0;
    for t in tasks {
        records += t.await.unwrap().expect("GetRecords under load");
    }
    assert_eq!(
        records,
        1000 * 200 / 4,
        "every reader saw its shard's records"
    );
    // Idle blocking threads linger for their keep-alive, so this counts the peak.
    let threads = server.threads();
    assert!(
        threads > 0 && threads <= BUDGET,
        "{threads} threads exceed the budget of {BUDGET}"
    );
}
