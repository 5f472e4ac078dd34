//! Random and mutated requests of every operation, JSON and CBOR, against a running server with
//! a real stream: every answer is a success or a well-formed AWS error (`__type` in the body),
//! never a 500 or a dropped connection, and the server serves normally afterwards.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use levee_protocol::Operation;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Members that the inputs of the operations use, with plausible values for stream `h`.
const VALID: &str = r#"{"StreamName":"h","ShardCount":2,"ShardId":"shardId-000000000000","ShardIteratorType":"TRIM_HORIZON","PartitionKey":"k","Data":"aGk=","Records":[{"PartitionKey":"k","Data":"aGk="}],"Limit":10,"RetentionPeriodHours":48,"Tags":{"a":"b"},"TagKeys":["a"],"ShardToSplit":"shardId-000000000000","NewStartingHashKey":"1000","ShardToMerge":"shardId-000000000000","AdjacentShardToMerge":"shardId-000000000001","TargetShardCount":1,"ScalingType":"UNIFORM_SCALING","ConsumerName":"c","MaxResults":5}"#;

fn post(addr: &str, target: &str, cbor: bool, body: &[u8]) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let ct = if cbor {
        "application/x-amz-cbor-1.1"
    } else {
        "application/x-amz-json-1.1"
    };
    let head = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: {ct}\r\nX-Amz-Target: {target}\r\nX-Amz-Date: 20240101T000000Z\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/kinesis/aws4_request, SignedHeaders=host;x-amz-date, Signature=00\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)
        .expect("the server answers and closes");
    let text = String::from_utf8_lossy(&resp);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text:?}"));
    let i = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of head");
    (status, resp[i + 4..].to_vec())
}

fn well_formed_error(body: &[u8], cbor: bool) -> bool {
    if cbor {
        ciborium::from_reader::<ciborium::Value, _>(body)
            .ok()
            .and_then(|v| v.into_map().ok())
            .is_some_and(|m| m.iter().any(|(k, _)| k.as_text() == Some("__type")))
    } else {
        serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .is_some_and(|v| v["__type"].is_string())
    }
}

#[test]
fn random_and_mutated_requests_at_a_running_server() {
    let server = Server::start();
    let addr = server.addr();
    let (status, _) = post(
        &addr,
        "Kinesis_20131202.CreateStream",
        false,
        br#"{"StreamName":"h","ShardCount":2}"#,
    );
    assert_eq!(status, 200);
    let valid: serde_json::Value = serde_json::from_str(VALID).unwrap();
    let mut valid_cbor = Vec::new();
    ciborium::into_writer(&valid, &mut valid_cbor).unwrap();

    let strategy = (
        0..Operation::ALL.len(),
        any::<bool>(),
        any::<bool>(),
        proptest::collection::vec(any::<u8>(), 1..200),
        proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
    );
    let mut runner = TestRunner::new(Config {
        cases: 256,
        ..Config::default()
    });
    runner
        .run(&strategy, |(op, cbor, use_random, random, flips)| {
            let op = Operation::ALL[op];
            let mut body = match (use_random, cbor) {
                (true, _) => random,
                (false, true) => valid_cbor.clone(),
                (false, false) => VALID.as_bytes().to_vec(),
            };
            for (at, byte) in flips {
                let n = body.len();
                body[at % n] = byte;
            }
            let (status, resp) = post(&addr, &op.target(), cbor, &body);
            prop_assert_ne!(status, 500, "{} answered 500", op.name());
            if status != 200 {
                prop_assert!(
                    well_formed_error(&resp, cbor),
                    "{} {status}: {:?}",
                    op.name(),
                    String::from_utf8_lossy(&resp)
                );
            }
            Ok(())
        })
        .unwrap();
    // Still healthy.
    let (status, body) = post(&addr, "Kinesis_20131202.ListStreams", false, b"{}");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
}
