//! SigV4 verification against the AWS test suite's `get-vanilla` vector and against an
//! independent signer (the `aws-sigv4` crate the AWS SDK for Rust uses).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

use super::*;

const KEY_ID: &str = "AKIDLEVEETEST";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
/// 2024-01-01T12:00:00Z.
const NOW: u64 = 1_704_110_400;

struct Fixed(HashMap<String, Arc<Secret>>);

impl CredentialSource for Fixed {
    fn lookup(&self, key_id: &str) -> Option<Arc<Secret>> {
        self.0.get(key_id).cloned()
    }
}

fn creds() -> Arc<Fixed> {
    let mut m = HashMap::new();
    m.insert(
        KEY_ID.to_owned(),
        Arc::new(Secret {
            secret: SECRET.into(),
            account: "111122223333".into(),
            name: "tester".into(),
        }),
    );
    m.insert(
        "AKIDEXAMPLE".to_owned(),
        Arc::new(Secret {
            secret: SECRET.into(),
            account: "000000000000".into(),
            name: String::new(),
        }),
    );
    Arc::new(Fixed(m))
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// A verifier whose clock reads `clock` (seconds since the epoch).
fn verifier(clock: Arc<AtomicU64>) -> Auth {
    Auth::Verify(Arc::new(Verifier::with_clock(
        creds(),
        "us-east-1",
        Arc::new(move || at(clock.load(Ordering::Relaxed))),
    )))
}

fn fixed() -> Auth {
    verifier(Arc::new(AtomicU64::new(NOW)))
}

const BODY: &[u8] = br#"{"StreamName":"s","ShardCount":1}"#;

fn unsigned(body: &[u8]) -> Request<()> {
    Request::builder()
        .method("POST")
        .uri("http://127.0.0.1:4567/")
        .header("host", "127.0.0.1:4567")
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "Kinesis_20131202.CreateStream")
        .header("content-length", body.len().to_string())
        .body(())
        .unwrap()
}

/// Signs `req` with aws-sigv4 as the SDK would.
fn sign_with(
    mut req: Request<()>,
    body: &[u8],
    secret: &str,
    region: &str,
    service: &str,
    time: SystemTime,
    location: SignatureLocation,
) -> Request<()> {
    let identity: Identity = Credentials::new(KEY_ID, secret, None, None, "test").into();
    let mut settings = SigningSettings::default();
    settings.signature_location = location;
    if location == SignatureLocation::QueryParams {
        settings.expires_in = Some(Duration::from_secs(900));
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
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

fn signed(body: &[u8]) -> Request<()> {
    sign_with(
        unsigned(body),
        body,
        SECRET,
        "us-east-1",
        "kinesis",
        at(NOW),
        SignatureLocation::Headers,
    )
}

fn check(auth: &Auth, req: &Request<()>, body: &[u8]) -> Result<Option<Caller>, ApiError> {
    auth.begin(req)?.finish(body)
}

fn err(r: Result<Option<Caller>, ApiError>) -> ApiError {
    r.expect_err("must be rejected")
}

#[test]
fn aws_test_suite_get_vanilla() {
    // The `get-vanilla` case of the AWS SigV4 test suite.
    let req = Request::builder()
        .method("GET")
        .uri("/")
        .header("host", "example.amazonaws.com")
        .header("x-amz-date", "20150830T123600Z")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        )
        .body(())
        .unwrap();
    let mut v = Verifier::with_clock(creds(), "us-east-1", Arc::new(|| at(1_440_938_160)));
    v.service = "service";
    let auth = Auth::Verify(Arc::new(v));
    let caller = check(&auth, &req, b"").unwrap().unwrap();
    assert_eq!(caller.key_id, "AKIDEXAMPLE");
    assert_eq!(caller.account, "000000000000");
    // No name: the principal's user is the access key id.
    assert_eq!(
        caller.principal.arn,
        "arn:aws:iam::000000000000:user/AKIDEXAMPLE"
    );
    // One character off in the signature fails.
    let mut bad = req;
    bad.headers_mut().insert(
        "authorization",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf30".parse().unwrap(),
    );
    assert_eq!(err(check(&auth, &bad, b"")).message, SIGNATURE_MISMATCH);
}

#[test]
fn sdk_signed_requests_verify_in_both_forms() {
    let auth = fixed();
    let caller = check(&auth, &signed(BODY), BODY).unwrap().unwrap();
    assert_eq!(caller.account, "111122223333");
    assert_eq!(
        caller.principal.arn,
        "arn:aws:iam::111122223333:user/tester"
    );
    let q = sign_with(
        unsigned(BODY),
        BODY,
        SECRET,
        "us-east-1",
        "kinesis",
        at(NOW),
        SignatureLocation::QueryParams,
    );
    assert!(q.uri().query().unwrap().contains("X-Amz-Signature="));
    assert!(!q.headers().contains_key("authorization"));
    check(&auth, &q, BODY).unwrap().unwrap();
    // A presigned request stays valid for its X-Amz-Expires (900 s here), not beyond.
    let clock = Arc::new(AtomicU64::new(NOW + 800));
    check(&verifier(clock.clone()), &q, BODY).unwrap();
    clock.store(NOW + 1000, Ordering::Relaxed);
    let e = err(check(&verifier(clock), &q, BODY));
    assert_eq!(e.kind, ErrorKind::InvalidSignature);
    assert!(
        e.message.starts_with("Signature expired: "),
        "{}",
        e.message
    );
}

#[test]
fn wrong_secret_tampered_body_and_unknown_key() {
    let auth = fixed();
    let wrong = sign_with(
        unsigned(BODY),
        BODY,
        "not-the-secret",
        "us-east-1",
        "kinesis",
        at(NOW),
        SignatureLocation::Headers,
    );
    let e = err(check(&auth, &wrong, BODY));
    assert_eq!(e.kind, ErrorKind::InvalidSignature);
    assert_eq!(e.message, SIGNATURE_MISMATCH);

    let e = err(check(
        &auth,
        &signed(BODY),
        br#"{"StreamName":"t","ShardCount":1}"#,
    ));
    assert_eq!(
        (e.kind, e.message.as_str()),
        (ErrorKind::InvalidSignature, SIGNATURE_MISMATCH)
    );

    let mut unknown = signed(BODY);
    let h = unknown.headers()["authorization"]
        .to_str()
        .unwrap()
        .replace(KEY_ID, "AKIDUNKNOWN");
    unknown
        .headers_mut()
        .insert("authorization", h.parse().unwrap());
    let e = err(check(&auth, &unknown, BODY));
    assert_eq!(e.kind, ErrorKind::UnrecognizedClient);
    assert_eq!(e.message, UNRECOGNIZED_CLIENT);
}

#[test]
fn scope_region_service_and_date() {
    let auth = fixed();
    let sign_for = |region: &str, service: &str| {
        sign_with(
            unsigned(BODY),
            BODY,
            SECRET,
            region,
            service,
            at(NOW),
            SignatureLocation::Headers,
        )
    };
    let e = err(check(&auth, &sign_for("eu-west-1", "kinesis"), BODY));
    assert_eq!(e.kind, ErrorKind::InvalidSignature);
    assert_eq!(
        e.message,
        "Credential should be scoped to a valid region, not 'eu-west-1'. "
    );
    let e = err(check(&auth, &sign_for("us-east-1", "dynamodb"), BODY));
    assert_eq!(e.kind, ErrorKind::InvalidSignature);
    assert_eq!(
        e.message,
        "Credential should be scoped to correct service: 'kinesis'. "
    );
    let mut r = signed(BODY);
    let h = r.headers()["authorization"]
        .to_str()
        .unwrap()
        .replace("/20240101/", "/20231231/");
    r.headers_mut().insert("authorization", h.parse().unwrap());
    let e = err(check(&auth, &r, BODY));
    assert_eq!(e.message, "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20231231' != '20240101', from '20240101T120000Z'.");
}

#[test]
fn clock_skew_window_is_five_minutes_each_way() {
    let clock = Arc::new(AtomicU64::new(NOW + 299));
    let auth = verifier(clock.clone());
    check(&auth, &signed(BODY), BODY).unwrap();
    clock.store(NOW + 301, Ordering::Relaxed);
    let e = err(check(&auth, &signed(BODY), BODY));
    assert_eq!(e.kind, ErrorKind::InvalidSignature);
    assert_eq!(
        e.message,
        "Signature expired: 20240101T120000Z is now earlier than 20240101T120001Z (20240101T120501Z - 5 min.)"
    );
    clock.store(NOW - 301, Ordering::Relaxed);
    let e = err(check(&auth, &signed(BODY), BODY));
    assert_eq!(
        e.message,
        "Signature not yet current: 20240101T120000Z is still later than 20240101T115959Z (20240101T115459Z + 5 min.)"
    );
}

#[test]
fn missing_and_incomplete_signatures() {
    let auth = fixed();
    let e = err(check(&auth, &unsigned(BODY), BODY));
    assert_eq!(e.kind, ErrorKind::MissingAuthenticationToken);
    assert_eq!(e.message, "Missing Authentication Token");

    let mut r = unsigned(BODY);
    r.headers_mut().insert(
        "authorization",
        "AWS4-HMAC-SHA256 Signature=abc".parse().unwrap(),
    );
    let e = err(check(&auth, &r, BODY));
    assert_eq!(e.kind, ErrorKind::IncompleteSignature);
    assert_eq!(e.message, "Authorization header requires 'Credential' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=AWS4-HMAC-SHA256 Signature=abc");

    let mut r = unsigned(BODY);
    *r.uri_mut() = "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20240101T120000Z"
        .parse()
        .unwrap();
    let e = err(check(&auth, &r, BODY));
    assert_eq!(e.kind, ErrorKind::IncompleteSignature);
    assert_eq!(e.message, "AWS query-string parameters must include 'X-Amz-Credential'. AWS query-string parameters must include 'X-Amz-Signature'. AWS query-string parameters must include 'X-Amz-SignedHeaders'. Re-examine the query-string parameters.");

    // Host and x-amz-date must be signed.
    let mut r = signed(BODY);
    let h = r.headers()["authorization"]
        .to_str()
        .unwrap()
        .replace("SignedHeaders=", "SignedHeaders=x-amz-date;")
        .replace(";host;", ";");
    r.headers_mut().insert("authorization", h.parse().unwrap());
    let e = err(check(&auth, &r, BODY));
    assert!(
        e.message.starts_with("'Host' or ':authority' must be"),
        "{}",
        e.message
    );

    // Insecure mode checks only the shape.
    let mut wrong = signed(BODY);
    wrong.headers_mut().insert(
        "authorization",
        format!(
            "AWS4-HMAC-SHA256 Credential=x/20240101/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature={}",
            "0".repeat(64)
        )
        .parse()
        .unwrap(),
    );
    assert_eq!(check(&Auth::Insecure, &wrong, BODY).unwrap(), None);
    assert_eq!(
        err(check(&Auth::Insecure, &unsigned(BODY), BODY)).kind,
        ErrorKind::MissingAuthenticationToken
    );
}

#[test]
fn amz_dates_round_trip() {
    for s in ["19700101T000000Z", "20240229T235959Z", "20991231T120000Z"] {
        assert_eq!(format_amz_date(parse_amz_date(s).unwrap()), s);
    }
    for s in [
        "2024-01-01T00:00:00Z",
        "20241301T000000Z",
        "20240101T000000",
        "",
    ] {
        assert!(parse_amz_date(s).is_none(), "{s}");
    }
}

/// The cost of verifying one SDK-signed request with a 1 KiB body (signing key cached), printed;
/// the assertion is a loose ceiling that still catches an accidental per-request key derivation
/// storm or allocation blow-up in debug builds.
#[test]
fn verification_cost() {
    let auth = fixed();
    let body = vec![b'x'; 1024];
    let req = signed(&body);
    check(&auth, &req, &body).unwrap();
    let n = 2000;
    let t = Instant::now();
    for _ in 0..n {
        check(&auth, &req, &body).unwrap();
    }
    let per = t.elapsed() / n;
    println!("sigv4 verification: {per:?} per request (1 KiB body, cached signing key)");
    assert!(per < Duration::from_millis(2), "{per:?}");
}
