//! SubscribeToShard with the AWS SDK for Rust over TLS with h2 (the generated self-signed
//! certificate trusted), and with a raw HTTP/2 client speaking h2c with prior knowledge, as the
//! Java SDK's async client does on `http://`. The server's per-version request counter proves
//! which protocol each used. Time is scaled: heartbeat 300 ms, lifetime 3 s, takeover 1 s.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_kinesis::types::{ShardIteratorType, StartingPosition, SubscribeToShardEventStream};
use aws_smithy_types::Blob;
use common::{active_consumer, wait_active, Server};

const HEARTBEAT_MS: u64 = 300;
const DURATION_MS: u64 = 3000;
const TAKEOVER_MS: u64 = 1000;
const SHARD0: &str = "shardId-000000000000";

fn start() -> Server {
    Server::start_with(
        tempfile::tempdir().unwrap(),
        &[
            "--tls-self-signed",
            "--subscription-heartbeat-ms",
            &HEARTBEAT_MS.to_string(),
            "--subscription-duration-ms",
            &DURATION_MS.to_string(),
            "--subscription-takeover-ms",
            &TAKEOVER_MS.to_string(),
        ],
    )
}

/// An SDK client on `https://` that trusts the server's generated certificate.
fn tls_client(server: &Server) -> aws_sdk_kinesis::Client {
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
    let cert_path = server
        .dir
        .as_ref()
        .unwrap()
        .path()
        .join("tls/self-signed.crt");
    let pem = std::fs::read(&cert_path).expect("the generated certificate");
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(
            TlsContext::builder()
                .with_trust_store(TrustStore::empty().with_pem_certificate(pem))
                .build()
                .expect("TLS context"),
        )
        .build_https();
    let cfg = aws_sdk_kinesis::Config::builder()
        .behavior_version(aws_sdk_kinesis::config::BehaviorVersion::latest())
        .endpoint_url(format!("https://{}", server.addr()))
        .region(aws_sdk_kinesis::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_kinesis::config::Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            None,
            None,
            "test",
        ))
        .http_client(http)
        .build();
    aws_sdk_kinesis::Client::from_conf(cfg)
}

/// The value of a counter in the admin listener's /metrics whose labels include all of `labels`.
fn counter(server: &Server, name: &str, labels: &[&str]) -> f64 {
    common::http_get(&server.admin, "/metrics")
        .1
        .lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn stream_with_consumer(client: &aws_sdk_kinesis::Client, name: &str) -> String {
    client
        .create_stream()
        .stream_name(name)
        .shard_count(1)
        .send()
        .await
        .unwrap();
    wait_active(client, name).await;
    let arn = format!("arn:aws:kinesis:us-east-1:000000000000:stream/{name}");
    active_consumer(client, &arn, "app").await
}

fn position(kind: ShardIteratorType, seq: Option<&str>) -> StartingPosition {
    StartingPosition::builder()
        .r#type(kind)
        .set_sequence_number(seq.map(str::to_owned))
        .build()
        .unwrap()
}

type Events = aws_sdk_kinesis::primitives::event_stream::EventReceiver<
    SubscribeToShardEventStream,
    aws_sdk_kinesis::types::error::SubscribeToShardEventStreamError,
>;

async fn subscribe(
    client: &aws_sdk_kinesis::Client,
    consumer: &str,
    shard: &str,
    pos: StartingPosition,
) -> Result<Events, String> {
    client
        .subscribe_to_shard()
        .consumer_arn(consumer)
        .shard_id(shard)
        .starting_position(pos)
        .send()
        .await
        .map(|o| o.event_stream)
        .map_err(|e| format!("{:?}", aws_sdk_kinesis::error::DisplayErrorContext(&e)))
}

/// Receives events until `n` records have arrived.
async fn records(events: &mut Events, n: usize) -> Vec<aws_sdk_kinesis::types::Record> {
    let mut out = Vec::new();
    while out.len() < n {
        match events.recv().await.expect("event") {
            Some(SubscribeToShardEventStream::SubscribeToShardEvent(e)) => {
                out.extend(e.records().iter().cloned())
            }
            Some(_) => {}
            None => panic!("stream ended after {} of {n} records", out.len()),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_over_tls_h2_subscribes_takes_over_expires_and_ends_at_a_split() {
    let server = start();
    let client = tls_client(&server);
    let consumer = stream_with_consumer(&client, "tls").await;

    // Records written after subscribing are pushed, in order, with their sequence numbers.
    let mut live = subscribe(
        &client,
        &consumer,
        SHARD0,
        position(ShardIteratorType::Latest, None),
    )
    .await
    .unwrap();
    let mut sent = Vec::new();
    for i in 0..10 {
        let r = client
            .put_record()
            .stream_name("tls")
            .partition_key("k")
            .data(Blob::new(format!("r{i}")))
            .send()
            .await
            .unwrap();
        sent.push(r.sequence_number().to_owned());
    }
    let got = records(&mut live, 10).await;
    let got_seqs: Vec<&str> = got.iter().map(|r| r.sequence_number()).collect();
    assert_eq!(got_seqs, sent);
    assert_eq!(got[3].data().as_ref(), b"r3");

    // A second subscription within the guard is refused...
    let refused = subscribe(
        &client,
        &consumer,
        SHARD0,
        position(ShardIteratorType::Latest, None),
    )
    .await
    .expect_err("refused within the takeover guard");
    assert!(refused.contains("ResourceInUseException"), "{refused}");
    // ...and after it takes over; the first ends with an in-stream ResourceInUseException.
    tokio::time::sleep(Duration::from_millis(TAKEOVER_MS)).await; // a time rule, not a condition
    let mut from_start = subscribe(
        &client,
        &consumer,
        SHARD0,
        position(ShardIteratorType::AtSequenceNumber, Some(&sent[4])),
    )
    .await
    .unwrap();
    let ended = loop {
        match live.recv().await {
            Ok(Some(_)) => continue,
            other => break other,
        }
    };
    let err = ended.expect_err("the old subscription ends with an error");
    assert!(
        format!("{:?}", aws_sdk_kinesis::error::DisplayErrorContext(&err))
            .contains("ResourceInUseException"),
        "{err:?}"
    );
    // The new one started from a sequence number.
    let got = records(&mut from_start, 6).await;
    let got_seqs: Vec<&str> = got.iter().map(|r| r.sequence_number()).collect();
    assert_eq!(
        got_seqs,
        sent[4..].iter().map(String::as_str).collect::<Vec<_>>()
    );

    // The subscription ends by itself after its lifetime, with heartbeats all along.
    let started = Instant::now();
    let mut heartbeats = 0;
    while let Some(ev) = from_start.recv().await.expect("event") {
        if let SubscribeToShardEventStream::SubscribeToShardEvent(e) = ev {
            assert!(e.records().is_empty());
            assert!(!e.continuation_sequence_number().is_empty());
            heartbeats += 1;
        }
    }
    assert!(
        started.elapsed() < Duration::from_millis(DURATION_MS + 1000),
        "ended at its lifetime"
    );
    assert!(heartbeats >= 3, "idle heartbeats: {heartbeats}");

    // At the end of a split shard the last event names the children and has no continuation.
    tokio::time::sleep(Duration::from_millis(TAKEOVER_MS)).await; // a time rule, not a condition
    let mut parent = subscribe(
        &client,
        &consumer,
        SHARD0,
        position(ShardIteratorType::TrimHorizon, None),
    )
    .await
    .unwrap();
    client
        .split_shard()
        .stream_name("tls")
        .shard_to_split(SHARD0)
        .new_starting_hash_key((1u128 << 127).to_string())
        .send()
        .await
        .unwrap();
    let mut all = Vec::new();
    let mut last = None;
    while let Some(ev) = parent.recv().await.expect("event") {
        if let SubscribeToShardEventStream::SubscribeToShardEvent(e) = ev {
            all.extend(e.records().iter().map(|r| r.sequence_number().to_owned()));
            last = Some(e);
        }
    }
    assert_eq!(all, sent, "every record of the parent, once");
    let last = last.expect("a final event");
    // The SDK models the member as required and reads an absent one as empty.
    assert_eq!(last.continuation_sequence_number(), "");
    let mut children: Vec<&str> = last.child_shards().iter().map(|c| c.shard_id()).collect();
    children.sort_unstable();
    assert_eq!(children, ["shardId-000000000001", "shardId-000000000002"]);

    // Every call above went over TLS with HTTP/2; none over HTTP/1.1.
    let h2 = counter(
        &server,
        "levee_http_requests_total",
        &["version=\"HTTP/2\"", "tls=\"true\""],
    );
    let h1_tls = counter(
        &server,
        "levee_http_requests_total",
        &["version=\"HTTP/1.1\"", "tls=\"true\""],
    );
    assert!(h2 >= 20.0, "HTTP/2 over TLS requests: {h2}");
    assert_eq!(h1_tls, 0.0);
}

/// Reads event-stream messages from HTTP/2 DATA frames (a frame may hold part of a message).
async fn next_message(
    body: &mut h2::RecvStream,
    buf: &mut bytes::BytesMut,
) -> Option<aws_smithy_types::event_stream::Message> {
    use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
    let mut decoder = MessageFrameDecoder::new();
    loop {
        if let DecodedFrame::Complete(m) = decoder.decode_frame(&mut *buf).expect("valid frame") {
            return Some(m);
        }
        let chunk = body.data().await?.expect("data frame");
        let _ = body.flow_control().release_capacity(chunk.len());
        buf.extend_from_slice(&chunk);
    }
}

fn header<'a>(m: &'a aws_smithy_types::event_stream::Message, name: &str) -> &'a str {
    m.headers()
        .iter()
        .find(|h| h.name().as_str() == name)
        .and_then(|h| h.value().as_string().ok())
        .map(|s| s.as_str())
        .unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_with_prior_knowledge_receives_pushed_events() {
    let server = start();
    let client = server.client();
    let consumer = stream_with_consumer(&client, "h2c").await;
    let h2_before = counter(
        &server,
        "levee_http_requests_total",
        &["version=\"HTTP/2\"", "tls=\"false\""],
    );

    let tcp = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let (mut h2, conn) = h2::client::handshake(tcp).await.expect("h2c handshake");
    tokio::spawn(conn);
    let body = serde_json::json!({
        "ConsumerARN": consumer,
        "ShardId": SHARD0,
        "StartingPosition": {"Type": "LATEST"},
    })
    .to_string();
    let req = http::Request::post(format!("http://{}/", server.addr()))
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "Kinesis_20131202.SubscribeToShard")
        .header("x-amz-date", "20261123T000000Z")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261123/us-east-1/kinesis/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
        )
        .body(())
        .unwrap();
    let (response, mut send) = h2.send_request(req, false).unwrap();
    send.send_data(bytes::Bytes::from(body), true).unwrap();
    let response = response.await.expect("response");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.amazon.eventstream"
    );
    let mut body = response.into_body();
    let mut buf = bytes::BytesMut::new();
    let first = next_message(&mut body, &mut buf).await.expect("a message");
    assert_eq!(header(&first, ":event-type"), "initial-response");

    let put = client
        .put_record()
        .stream_name("h2c")
        .partition_key("k")
        .data(Blob::new("pushed"))
        .send()
        .await
        .unwrap();
    let event = next_message(&mut body, &mut buf).await.expect("an event");
    assert_eq!(header(&event, ":event-type"), "SubscribeToShardEvent");
    assert_eq!(header(&event, ":message-type"), "event");
    let v: serde_json::Value = serde_json::from_slice(event.payload()).unwrap();
    assert_eq!(v["Records"][0]["SequenceNumber"], put.sequence_number());
    assert_eq!(v["Records"][0]["Data"], "cHVzaGVk"); // base64("pushed")
    assert_eq!(v["ContinuationSequenceNumber"], put.sequence_number());
    assert_eq!(v["MillisBehindLatest"], 0);
    // Idle, a heartbeat follows within the heartbeat interval (plus scheduling slack).
    let waited = Instant::now();
    let beat = next_message(&mut body, &mut buf)
        .await
        .expect("a heartbeat");
    assert!(waited.elapsed() < Duration::from_millis(HEARTBEAT_MS + 700));
    let v: serde_json::Value = serde_json::from_slice(beat.payload()).unwrap();
    assert_eq!(v["Records"], serde_json::json!([]));

    let h2_after = counter(
        &server,
        "levee_http_requests_total",
        &["version=\"HTTP/2\"", "tls=\"false\""],
    );
    assert_eq!(
        h2_after - h2_before,
        1.0,
        "the h2c subscription was counted"
    );
}
