//! Hostile input at the HTTP layer, in process: slowloris heads and bodies are timed out, garbage
//! bytes never break the server, and random or mutated requests of every operation (JSON and
//! CBOR) always get a well-formed answer — never a 500, never a dropped connection — with the
//! request decoders behind it. Also: the SigV4 parser never panics on arbitrary headers.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use levee_frontend::auth::{Auth, CredentialSource, Secret, Verifier};
use levee_frontend::backend::BoxFuture;
use levee_frontend::http::{serve, Call, Dispatch, HttpConfig, HttpStats, Reply};
use levee_protocol::{decode_request, ApiError, Operation};
use proptest::prelude::*;

/// Decodes every call (the real decoders) and answers `{}` when it decodes.
struct Decode;

impl Dispatch for Decode {
    fn dispatch(&self, call: Call) -> BoxFuture<Result<Reply, ApiError>> {
        let r =
            decode_request(call.op, call.format, &call.body).map(|_| Reply::Body(b"{}".to_vec()));
        Box::pin(async move { r })
    }
}

/// A server on its own runtime with short read timeouts.
fn start() -> (tokio::runtime::Runtime, SocketAddr) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let cfg = HttpConfig {
        header_read_timeout_ms: 300,
        body_read_timeout_ms: 300,
        body_bytes_max: 1 << 20,
        ..HttpConfig::default()
    };
    rt.spawn(serve(
        listener,
        cfg,
        Arc::new(Decode),
        Arc::new(HttpStats::default()),
        std::future::pending(),
    ));
    (rt, addr)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// Reads until the server closes or 5 s pass; returns what came.
fn read_all(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// One request on a fresh connection (closed after it); returns status and body.
fn request(addr: SocketAddr, target: &str, content_type: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut s = connect(addr);
    let head = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: {content_type}\r\nX-Amz-Target: {target}\r\nX-Amz-Date: 20240101T000000Z\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/kinesis/aws4_request, SignedHeaders=host;x-amz-date, Signature=00\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let resp = read_all(&mut s);
    let text = String::from_utf8_lossy(&resp);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = match resp.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => resp[i + 4..].to_vec(),
        None => Vec::new(),
    };
    (status, body)
}

fn healthy(addr: SocketAddr) {
    let (status, body) = request(
        addr,
        "Kinesis_20131202.ListStreams",
        "application/x-amz-json-1.1",
        b"{}",
    );
    assert_eq!((status, body.as_slice()), (200, b"{}".as_slice()));
}

#[test]
fn slow_heads_and_bodies_are_timed_out() {
    let (_rt, addr) = start();
    // A head that never ends.
    let mut s = connect(addr);
    s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Tar")
        .unwrap();
    let t = Instant::now();
    read_all(&mut s);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    // A body shorter than its length.
    let mut s = connect(addr);
    s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.1\r\nX-Amz-Target: Kinesis_20131202.ListStreams\r\nContent-Length: 100\r\n\r\n{\"Lim").unwrap();
    let t = Instant::now();
    let resp = read_all(&mut s);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert!(
        resp.starts_with(b"HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&resp)
    );
    healthy(addr);
}

/// A valid body for an operation: a few members every input uses.
fn valid_json(op: Operation) -> Vec<u8> {
    let _ = op;
    br#"{"StreamName":"s","ShardCount":1,"ShardId":"shardId-000000000000","ShardIteratorType":"TRIM_HORIZON","PartitionKey":"k","Data":"aGk=","Records":[{"PartitionKey":"k","Data":"aGk="}],"Limit":10}"#.to_vec()
}

fn any_op() -> impl Strategy<Value = Operation> {
    (0..Operation::ALL.len()).prop_map(|i| Operation::ALL[i])
}

fn check_answer(status: u16, body: &[u8], cbor: bool) {
    assert_ne!(status, 500, "a 500 for hostile input");
    assert!(
        [200, 400, 403, 404, 413].contains(&status),
        "unexpected status {status}"
    );
    if status == 400 {
        // A well-formed AWS error: `__type` in a JSON or CBOR map.
        let ok = if cbor {
            ciborium::from_reader::<ciborium::Value, _>(body)
                .ok()
                .and_then(|v| v.into_map().ok())
                .is_some_and(|m| m.iter().any(|(k, _)| k.as_text() == Some("__type")))
        } else {
            serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .is_some_and(|v| v["__type"].is_string())
        };
        assert!(
            ok,
            "malformed error body {:?}",
            String::from_utf8_lossy(body)
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_and_mutated_requests_get_well_formed_answers(
        op in any_op(),
        cbor in any::<bool>(),
        random in proptest::collection::vec(any::<u8>(), 0..256),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        use_random in any::<bool>(),
    ) {
        static SERVER: std::sync::OnceLock<(tokio::runtime::Runtime, SocketAddr)> =
            std::sync::OnceLock::new();
        let addr = SERVER.get_or_init(start).1;
        let mut body = if use_random {
            random
        } else if cbor {
            let v: serde_json::Value = serde_json::from_slice(&valid_json(op)).unwrap();
            let mut out = Vec::new();
            ciborium::into_writer(&v, &mut out).unwrap();
            out
        } else {
            valid_json(op)
        };
        for (at, byte) in flips {
            if !body.is_empty() {
                let n = body.len();
                body[at % n] = byte;
            }
        }
        let ct = if cbor { "application/x-amz-cbor-1.1" } else { "application/x-amz-json-1.1" };
        let (status, resp) = request(addr, &op.target(), ct, &body);
        check_answer(status, &resp, cbor);
    }

    #[test]
    fn garbage_bytes_never_break_the_server(
        garbage in proptest::collection::vec(any::<u8>(), 1..512),
    ) {
        static SERVER: std::sync::OnceLock<(tokio::runtime::Runtime, SocketAddr)> =
            std::sync::OnceLock::new();
        let addr = SERVER.get_or_init(start).1;
        let mut s = connect(addr);
        let _ = s.write_all(&garbage);
        let resp = read_all(&mut s);
        prop_assert!(resp.is_empty() || resp.starts_with(b"HTTP/1.1 "), "{:?}", String::from_utf8_lossy(&resp));
        prop_assert!(!resp.starts_with(b"HTTP/1.1 500"));
        healthy(addr);
    }

    #[test]
    fn the_sigv4_parser_never_panics(
        authorization in "\\PC{0,200}",
        scope in "[a-zA-Z0-9/_-]{0,60}",
        signed in "[a-z;-]{0,40}",
        date in "[0-9TZ]{0,20}",
        query in "[A-Za-z0-9=&%-]{0,120}",
    ) {
        struct None_;
        impl CredentialSource for None_ {
            fn lookup(&self, _: &str) -> Option<Arc<Secret>> {
                Some(Arc::new(Secret { secret: "s".into(), account: "000000000000".into(), name: String::new() }))
            }
        }
        let auth = Auth::Verify(Arc::new(Verifier::new(Arc::new(None_), "us-east-1")));
        let headers = [
            authorization.clone(),
            format!("AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders={signed}, Signature=ab"),
        ];
        for h in headers {
            let Ok(req) = hyper::Request::builder()
                .uri(format!("/?{query}"))
                .header("authorization", h)
                .header("x-amz-date", date.clone())
                .body(()) else { continue };
            let _ = auth.begin(&req).and_then(|p| p.finish(b"{}"));
        }
        let q = format!("/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={scope}&X-Amz-Date={date}&X-Amz-SignedHeaders={signed}&X-Amz-Signature=00&{query}");
        if let Ok(req) = hyper::Request::builder().uri(q).body(()) {
            let _ = auth.begin(&req).and_then(|p| p.finish(b""));
        }
    }
}
