//! Authentication end to end: `levee credentials create|list|revoke`, a server that verifies
//! SigV4 because credentials exist, the AWS SDK for Rust with good and bad credentials, raw
//! requests signed by the SDK's own signer (aws-sigv4) and then broken one way each, the
//! presigned query form, HTTP/2, and the start-up rules of `--auth`.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_sdk_kinesis::error::ProvideErrorMetadata;
use aws_sigv4::http_request::{
    sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};

const SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
const UNRECOGNIZED: &str = "The security token included in the request is invalid.";

struct Key {
    id: String,
    secret: String,
}

/// Runs `levee credentials ARGS` on `data_dir` and returns stdout.
fn credentials_cli(data_dir: &Path, master_key: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_levee"))
        .arg("credentials")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--master-key-file")
        .arg(master_key)
        .stderr(Stdio::inherit())
        .output()
        .expect("run levee credentials");
    assert!(out.status.success(), "levee credentials {args:?} failed");
    String::from_utf8(out.stdout).unwrap()
}

fn create_key(data_dir: &Path, master_key: &Path, name: &str) -> Key {
    let out = credentials_cli(
        data_dir,
        master_key,
        &["create", "--name", name, "--account", "000000000000"],
    );
    let field = |k: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or_else(|| panic!("{k} in {out}"))
            .trim()
            .to_owned()
    };
    Key {
        id: field("AccessKeyId:"),
        secret: field("SecretAccessKey:"),
    }
}

struct Setup {
    server: Server,
    key: Key,
    _keydir: tempfile::TempDir,
    master_key: std::path::PathBuf,
}

/// A server with one credential (so it verifies by default).
fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let keydir = tempfile::tempdir().unwrap();
    let master_key = keydir.path().join("master.key");
    let key = create_key(dir.path(), &master_key, "tester");
    let mk = master_key.to_str().unwrap().to_owned();
    let server = Server::start_with(dir, &["--master-key-file", &mk]);
    Setup {
        server,
        key,
        _keydir: keydir,
        master_key,
    }
}

fn sdk(endpoint: &str, id: &str, secret: &str, region: &str) -> aws_sdk_kinesis::Client {
    let cfg = aws_sdk_kinesis::Config::builder()
        .behavior_version(aws_sdk_kinesis::config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_sdk_kinesis::config::Region::new(region.to_owned()))
        .credentials_provider(Credentials::new(id, secret, None, None, "test"))
        .retry_config(aws_sdk_kinesis::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_kinesis::Client::from_conf(cfg)
}

async fn list_streams_err(c: &aws_sdk_kinesis::Client) -> (String, String) {
    let e = c.list_streams().send().await.expect_err("must be refused");
    (
        e.code().unwrap_or("").to_owned(),
        e.message().unwrap_or("").to_owned(),
    )
}

/// How a raw request is signed.
struct Signing<'a> {
    secret: &'a str,
    region: &'a str,
    service: &'a str,
    time: SystemTime,
    location: SignatureLocation,
}

/// A ListStreams request signed by aws-sigv4 (the SDK's signer).
fn signed_request(endpoint: &str, key_id: &str, body: &[u8], s: &Signing) -> Request<Bytes> {
    let host = endpoint.trim_start_matches("http://").to_owned();
    let mut req = Request::post(format!("{endpoint}/"))
        .header("host", host)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "Kinesis_20131202.ListStreams")
        .body(Bytes::copy_from_slice(body))
        .unwrap();
    let identity: Identity = Credentials::new(key_id, s.secret, None, None, "test").into();
    let mut settings = SigningSettings::default();
    settings.signature_location = s.location;
    if s.location == SignatureLocation::QueryParams {
        settings.expires_in = Some(Duration::from_secs(300));
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(s.region)
        .name(s.service)
        .time(s.time)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let uri = req.uri().to_string();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned()))
        .collect();
    let signable = SignableRequest::new(
        "POST",
        &uri,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    instructions.apply_to_request_http1x(&mut req);
    req
}

/// Sends over HTTP/1.1; returns status and the JSON body.
async fn send(addr: &str, req: Request<Bytes>) -> (u16, serde_json::Value) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let (parts, body) = req.into_parts();
    let resp = sender
        .send_request(Request::from_parts(parts, Full::new(body)))
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or_default())
}

fn error_of(v: &serde_json::Value) -> (&str, &str) {
    (
        v["__type"].as_str().unwrap_or(""),
        v["message"].as_str().unwrap_or(""),
    )
}

#[tokio::test]
async fn sdk_with_valid_credentials_works_and_bad_ones_get_aws_errors() {
    let s = setup();
    let ep = &s.server.endpoint;
    let good = sdk(ep, &s.key.id, &s.key.secret, "us-east-1");
    good.create_stream()
        .stream_name("signed")
        .shard_count(1)
        .send()
        .await
        .unwrap();
    wait_active(&good, "signed").await;
    good.put_record()
        .stream_name("signed")
        .partition_key("p")
        .data(aws_sdk_kinesis::primitives::Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap();
    let names = good.list_streams().send().await.unwrap();
    assert_eq!(names.stream_names(), ["signed"]);

    let wrong_secret = sdk(ep, &s.key.id, "not-the-secret", "us-east-1");
    assert_eq!(
        list_streams_err(&wrong_secret).await,
        (
            "InvalidSignatureException".into(),
            SIGNATURE_MISMATCH.into()
        )
    );
    let unknown = sdk(ep, "AKIAUNKNOWNUNKNOWN00", &s.key.secret, "us-east-1");
    assert_eq!(
        list_streams_err(&unknown).await,
        ("UnrecognizedClientException".into(), UNRECOGNIZED.into())
    );
    let wrong_region = sdk(ep, &s.key.id, &s.key.secret, "eu-west-1");
    assert_eq!(
        list_streams_err(&wrong_region).await,
        (
            "InvalidSignatureException".into(),
            "Credential should be scoped to a valid region, not 'eu-west-1'. ".into()
        )
    );
}

#[tokio::test]
async fn raw_requests_broken_one_way_each() {
    let s = setup();
    let ep = &s.server.endpoint;
    let addr = s.server.addr();
    let body = b"{}";
    let ok = Signing {
        secret: &s.key.secret,
        region: "us-east-1",
        service: "kinesis",
        time: SystemTime::now(),
        location: SignatureLocation::Headers,
    };
    let (status, v) = send(&addr, signed_request(ep, &s.key.id, body, &ok)).await;
    assert_eq!(status, 200, "{v}");

    // Presigned (query) form.
    let q = Signing {
        location: SignatureLocation::QueryParams,
        ..ok
    };
    let req = signed_request(ep, &s.key.id, body, &q);
    assert!(req.uri().query().unwrap().contains("X-Amz-Signature="));
    let (status, v) = send(&addr, req).await;
    assert_eq!(status, 200, "{v}");

    // Tampered body.
    let mut req = signed_request(ep, &s.key.id, body, &ok);
    *req.body_mut() = Bytes::from_static(br#"{"Limit":1}"#);
    req.headers_mut()
        .insert("content-length", "11".parse().unwrap());
    let (status, v) = send(&addr, req).await;
    assert_eq!(
        (status, error_of(&v)),
        (400, ("InvalidSignatureException", SIGNATURE_MISMATCH))
    );

    // Wrong service in the scope.
    let svc = Signing {
        service: "dynamodb",
        time: SystemTime::now(),
        ..ok
    };
    let (_, v) = send(&addr, signed_request(ep, &s.key.id, body, &svc)).await;
    assert_eq!(
        error_of(&v),
        (
            "InvalidSignatureException",
            "Credential should be scoped to correct service: 'kinesis'. "
        )
    );

    // Signed ten minutes ago: expired.
    let old = Signing {
        time: SystemTime::now() - Duration::from_secs(600),
        ..ok
    };
    let (_, v) = send(&addr, signed_request(ep, &s.key.id, body, &old)).await;
    let (t, m) = error_of(&v);
    assert_eq!(t, "InvalidSignatureException");
    assert!(
        m.starts_with("Signature expired: ") && m.ends_with(" - 5 min.)"),
        "{m}"
    );

    // Ten minutes ahead: not yet current.
    let ahead = Signing {
        time: SystemTime::now() + Duration::from_secs(600),
        ..ok
    };
    let (_, v) = send(&addr, signed_request(ep, &s.key.id, body, &ahead)).await;
    let (t, m) = error_of(&v);
    assert_eq!(t, "InvalidSignatureException");
    assert!(m.starts_with("Signature not yet current: "), "{m}");

    // No Authorization header at all.
    let mut req = signed_request(ep, &s.key.id, body, &ok);
    req.headers_mut().remove("authorization");
    let (_, v) = send(&addr, req).await;
    assert_eq!(
        error_of(&v),
        (
            "MissingAuthenticationTokenException",
            "Missing Authentication Token"
        )
    );

    // Signed over HTTP/2 (no Host header; the authority stands in).
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut h2, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut req = signed_request(ep, &s.key.id, body, &ok);
    req.headers_mut().remove("host");
    let (parts, b) = req.into_parts();
    let resp = h2
        .send_request(Request::from_parts(parts, Full::new(b)))
        .await
        .unwrap();
    assert_eq!(resp.version(), hyper::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn revoked_and_new_keys_take_effect_on_a_running_server() {
    let s = setup();
    let data_dir = s.server.dir.as_ref().unwrap().path().to_owned();
    let ep = &s.server.endpoint;
    let listed = credentials_cli(&data_dir, &s.master_key, &["list"]);
    assert!(
        listed.contains(&s.key.id) && listed.contains("tester"),
        "{listed}"
    );
    assert!(
        !listed.contains(&s.key.secret),
        "list must not show secrets"
    );

    // A key created while the server runs is accepted soon (a reload on the unknown id, at most
    // every 250 ms, or the 1 s poll).
    let second = create_key(&data_dir, &s.master_key, "second");
    let c2 = sdk(ep, &second.id, &second.secret, "us-east-1");
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(e) = c2.list_streams().send().await {
        assert_eq!(e.code(), Some("UnrecognizedClientException"));
        assert!(Instant::now() < deadline, "new key not accepted after 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A revoked key is refused within the poll period.
    credentials_cli(&data_dir, &s.master_key, &["revoke", &s.key.id]);
    let c1 = sdk(ep, &s.key.id, &s.key.secret, "us-east-1");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match c1.list_streams().send().await {
            Ok(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Ok(_) => panic!("revoked key still accepted after 10 s"),
            Err(e) => {
                assert_eq!(e.code(), Some("UnrecognizedClientException"));
                assert_eq!(e.message(), Some(UNRECOGNIZED));
                break;
            }
        }
    }
    c2.list_streams().send().await.unwrap();
    let listed = credentials_cli(&data_dir, &s.master_key, &["list"]);
    assert!(
        !listed.contains(&s.key.id) && listed.contains(&second.id),
        "{listed}"
    );
}

/// Runs `levee serve` with `args` until it prints its listening line or exits; returns
/// (listening?, everything it printed).
fn try_serve(args: &[&str], data_dir: &Path) -> (bool, String) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_levee"))
        .arg("serve")
        .args(args)
        .args(["--admin-listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(data_dir)
        .env("LEVEE_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut printed = String::new();
    let mut listening = false;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if line.starts_with("levee listening") {
            listening = true;
            break;
        }
    }
    if listening {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    printed.push_str(&String::from_utf8_lossy(&out.stderr));
    (listening, printed)
}

#[test]
fn auth_mode_start_up_rules() {
    let dir = tempfile::tempdir().unwrap();
    // Loopback without credentials: insecure, announced.
    let (up, out) = try_serve(&["--listen", "127.0.0.1:0"], dir.path());
    assert!(up, "{out}");
    assert!(out.contains("authentication off"), "{out}");
    // Any other address without credentials: refused unless --auth insecure.
    let (up, out) = try_serve(&["--listen", "0.0.0.0:0"], dir.path());
    assert!(!up, "{out}");
    assert!(out.contains("--auth insecure"), "{out}");
    let (up, out) = try_serve(&["--listen", "0.0.0.0:0", "--auth", "insecure"], dir.path());
    assert!(up, "{out}");
    assert!(out.contains("authentication off"), "{out}");
    // With credentials: verify, on any address, and nothing announced.
    let keydir = tempfile::tempdir().unwrap();
    let mk = keydir.path().join("master.key");
    create_key(dir.path(), &mk, "x");
    let (up, out) = try_serve(
        &[
            "--listen",
            "0.0.0.0:0",
            "--master-key-file",
            mk.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(up, "{out}");
    assert!(!out.contains("authentication off"), "{out}");
    // The data directory alone holds no secret: without the master key the server cannot start.
    let (up, out) = try_serve(
        &[
            "--listen",
            "127.0.0.1:0",
            "--master-key-file",
            keydir.path().join("missing.key").to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(!up, "{out}");
    assert!(out.contains("master key"), "{out}");
}
