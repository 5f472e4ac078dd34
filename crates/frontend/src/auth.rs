//! AWS Signature Version 4 verification of every request, in both forms SDKs use: the
//! `Authorization` header, and the query string (`X-Amz-Algorithm`, `X-Amz-Credential`,
//! `X-Amz-Date`, `X-Amz-SignedHeaders`, `X-Amz-Signature`, optional `X-Amz-Expires`).
//!
//! Verification runs in two steps because the signature covers the body, which arrives after the
//! headers: [`Auth::begin`] checks everything the head of the request carries (shape, credential
//! scope, date window, signed headers, key id) and builds the canonical request up to the payload
//! hash; [`Pending::finish`] hashes the body and compares signatures in constant time.
//!
//! The order of the checks, and the answer of each (type, text as AWS sends it):
//! 1. both forms → InvalidSignature; neither → MissingAuthenticationToken;
//! 2. a missing part → IncompleteSignature (texts as recorded by kinesalite's tests);
//! 3. (verify mode only) algorithm, credential shape, date format → IncompleteSignature;
//! 4. scope date ≠ request date, scope region ≠ ours, service ≠ `kinesis`, `host` (or the
//!    `x-amz-date` header in use) unsigned → InvalidSignature;
//! 5. the request date outside ±5 minutes of our clock (or a presigned URL past its expiry) →
//!    InvalidSignature `Signature expired: …` / `Signature not yet current: …`;
//! 6. an unknown or revoked key id → UnrecognizedClient;
//! 7. the signature → InvalidSignature `The request signature we calculated does not match …`.
//!
//! The payload hash in the canonical request is always computed from the body received (so a
//! tampered body cannot ride on a stale `x-amz-content-sha256`); a presigned URL may instead
//! sign `UNSIGNED-PAYLOAD` when it sends that value in `x-amz-content-sha256`.
//!
//! Signing keys (four HMACs from the secret) are cached per (key id, scope date, region) in a
//! bounded LRU ([`SIGNING_KEY_CACHE_MAX`]); a changed secret (reloaded credentials) misses.

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use hyper::{HeaderMap, Request};
use levee_protocol::{ApiError, ErrorKind};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The only algorithm accepted.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The signing name of Kinesis (service in the credential scope).
pub const SERVICE: &str = "kinesis";
/// How far a request's date may be from our clock, either way.
pub const CLOCK_SKEW_SECS: u64 = 300;
/// The longest `X-Amz-Expires` of a presigned request (7 days, as AWS).
pub const PRESIGNED_EXPIRES_MAX_SECS: u64 = 604_800;
/// Derived signing keys kept: one per active (key id, day) pair; far more than live keys.
pub const SIGNING_KEY_CACHE_MAX: usize = 4096;
/// The payload-hash value a presigned URL may sign instead of the body's hash.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// The text of InvalidSignatureException for a wrong signature (AWS's words).
pub const SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
/// The text of UnrecognizedClientException (unknown or revoked access key id).
pub const UNRECOGNIZED_CLIENT: &str = "The security token included in the request is invalid.";

/// A credential's secret, the account it acts for and its name (the user in its principal ARN).
pub struct Secret {
    pub secret: String,
    pub account: String,
    pub name: String,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secret")
            .field("account", &self.account)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Where secrets come from (the credentials store of the `levee` crate, or a fixed map in tests).
pub trait CredentialSource: Send + Sync + 'static {
    /// The secret of `key_id`, or `None` if it is unknown or revoked.
    fn lookup(&self, key_id: &str) -> Option<Arc<Secret>>;
}

/// Who signed a verified request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub key_id: String,
    pub account: String,
    /// What resource policies name: `arn:aws:iam::<account>:user/<credential name>`.
    pub principal: levee_policy::Principal,
}

/// The clock verification reads (driven by hand in tests).
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// The authentication mode of a listener.
#[derive(Clone, Default)]
pub enum Auth {
    /// Only the shape of the signature is checked (loopback development without credentials).
    #[default]
    Insecure,
    /// Signatures are verified.
    Verify(Arc<Verifier>),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Insecure => f.write_str("Auth::Insecure"),
            Auth::Verify(v) => write!(f, "Auth::Verify(region={})", v.region),
        }
    }
}

/// A derived signing key and the secret it came from (a reloaded secret misses).
type CachedKey = (Arc<Secret>, [u8; 32]);

/// Verifies signatures against a [`CredentialSource`] for one region.
pub struct Verifier {
    creds: Arc<dyn CredentialSource>,
    region: String,
    /// Always [`SERVICE`] outside unit tests (the AWS test-suite vectors sign for `service`).
    service: &'static str,
    clock: Clock,
    cache: Mutex<lru::LruCache<(String, String), CachedKey>>,
}

impl Verifier {
    pub fn new(creds: Arc<dyn CredentialSource>, region: impl Into<String>) -> Verifier {
        Self::with_clock(creds, region, Arc::new(SystemTime::now))
    }

    pub fn with_clock(
        creds: Arc<dyn CredentialSource>,
        region: impl Into<String>,
        clock: Clock,
    ) -> Verifier {
        metrics::gauge!("levee_auth_signing_key_cache_max_entries")
            .set(SIGNING_KEY_CACHE_MAX as f64);
        Verifier {
            creds,
            region: region.into(),
            service: SERVICE,
            clock,
            cache: Mutex::new(lru::LruCache::new(
                NonZeroUsize::new(SIGNING_KEY_CACHE_MAX).expect("non-zero"),
            )),
        }
    }

    /// The signing key of (`key_id`, `date`) for our region and service, cached.
    fn signing_key(&self, key_id: &str, secret: &Arc<Secret>, date: &str) -> [u8; 32] {
        let k = (key_id.to_owned(), date.to_owned());
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((s, key)) = cache.get(&k) {
            if Arc::ptr_eq(s, secret) {
                return *key;
            }
        }
        metrics::counter!("levee_auth_signing_key_cache_misses_total").increment(1);
        let key = derive_signing_key(&secret.secret, date, &self.region, self.service);
        cache.put(k, (secret.clone(), key));
        metrics::gauge!("levee_auth_signing_key_cache_entries").set(cache.len() as f64);
        key
    }
}

/// The signing key: HMAC chain over date, region, service and `aws4_request`.
pub fn derive_signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    m.update(data);
    m.finalize().into_bytes().into()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A request whose head passed; the body decides.
pub struct Pending(Option<Box<Signed>>);

/// What the head of a signed request says, with the canonical request built up to the payload.
struct Signed {
    verifier: Arc<Verifier>,
    key_id: String,
    secret: Arc<Secret>,
    scope_date: String,
    amz_date: String,
    /// The canonical request without its last line (the payload hash).
    canonical_head: String,
    /// `UNSIGNED-PAYLOAD` signed in place of the body hash (presigned only).
    unsigned_payload: bool,
    signature: Vec<u8>,
}

impl Pending {
    /// Hashes the body and checks the signature. `Ok(None)` in insecure mode.
    pub fn finish(self, body: &[u8]) -> Result<Option<Caller>, ApiError> {
        let Some(s) = self.0 else {
            return Ok(None);
        };
        let payload = if s.unsigned_payload {
            UNSIGNED_PAYLOAD.to_owned()
        } else {
            hex(&Sha256::digest(body))
        };
        let mut canonical = s.canonical_head;
        canonical.push_str(&payload);
        let string_to_sign = format!(
            "{ALGORITHM}\n{}\n{}/{}/{}/aws4_request\n{}",
            s.amz_date,
            s.scope_date,
            s.verifier.region,
            s.verifier.service,
            hex(&Sha256::digest(canonical.as_bytes()))
        );
        let key = s.verifier.signing_key(&s.key_id, &s.secret, &s.scope_date);
        let mut mac = HmacSha256::new_from_slice(&key).expect("HMAC takes any key length");
        mac.update(string_to_sign.as_bytes());
        if mac.verify_slice(&s.signature).is_err() {
            return Err(fail(
                ErrorKind::InvalidSignature,
                "mismatch",
                SIGNATURE_MISMATCH,
            ));
        }
        let principal =
            levee_policy::Principal::of_credential(&s.secret.account, &s.secret.name, &s.key_id);
        Ok(Some(Caller {
            key_id: s.key_id,
            account: s.secret.account.clone(),
            principal,
        }))
    }
}

fn fail(kind: ErrorKind, reason: &'static str, message: impl Into<String>) -> ApiError {
    metrics::counter!("levee_auth_failures_total", "reason" => reason).increment(1);
    ApiError::new(kind, message)
}

/// The signature parameters, from either form.
struct Parts<'a> {
    query_form: bool,
    algorithm: &'a str,
    credential: String,
    signed_headers: String,
    signature: String,
    /// The request time as sent (`X-Amz-Date`, or the `Date` header).
    date: DateSource,
    expires: Option<String>,
}

enum DateSource {
    AmzHeader(String),
    HttpDate(String),
    Query(String),
}

impl Auth {
    /// Checks the head of `req`: which form, every part present, and in verify mode everything
    /// but the body. The answer's errors are AWS's (see the module docs for the order).
    pub fn begin<B>(&self, req: &Request<B>) -> Result<Pending, ApiError> {
        let headers = req.headers();
        let header = headers
            .get(hyper::header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap_or(""));
        let query = req.uri().query().unwrap_or("");
        let params: Vec<(String, String)> = if query.is_empty() {
            Vec::new()
        } else {
            query
                .split('&')
                .filter(|kv| !kv.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    (percent_decode(k), percent_decode(v))
                })
                .collect()
        };
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let query_auth = param("X-Amz-Algorithm").is_some();
        let parts = match (header, query_auth) {
            (Some(_), true) => {
                return Err(fail(
                    ErrorKind::InvalidSignature,
                    "both_forms",
                    "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header.",
                ))
            }
            (None, false) => {
                return Err(fail(
                    ErrorKind::MissingAuthenticationToken,
                    "missing",
                    "Missing Authentication Token",
                ))
            }
            (Some(h), false) => header_parts(h, headers)?,
            (None, true) => {
                let mut msg = String::new();
                for p in [
                    "X-Amz-Algorithm",
                    "X-Amz-Credential",
                    "X-Amz-Signature",
                    "X-Amz-SignedHeaders",
                    "X-Amz-Date",
                ] {
                    if param(p).is_none_or(str::is_empty) {
                        msg.push_str(&format!(
                            "AWS query-string parameters must include '{p}'. "
                        ));
                    }
                }
                if !msg.is_empty() {
                    msg.push_str("Re-examine the query-string parameters.");
                    return Err(fail(ErrorKind::IncompleteSignature, "incomplete", msg));
                }
                Parts {
                    query_form: true,
                    algorithm: param("X-Amz-Algorithm").unwrap_or(""),
                    credential: param("X-Amz-Credential").unwrap_or("").to_owned(),
                    signed_headers: param("X-Amz-SignedHeaders").unwrap_or("").to_owned(),
                    signature: param("X-Amz-Signature").unwrap_or("").to_owned(),
                    date: DateSource::Query(param("X-Amz-Date").unwrap_or("").to_owned()),
                    expires: param("X-Amz-Expires").map(str::to_owned),
                }
            }
        };
        let verifier = match self {
            Auth::Insecure => return Ok(Pending(None)),
            Auth::Verify(v) => v.clone(),
        };
        verify_head(verifier, req, &params, parts).map(|s| Pending(Some(Box::new(s))))
    }
}

/// Parses `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`; each part must be present
/// and non-empty, and a date header must exist (kinesalite's texts).
fn header_parts<'a>(h: &'a str, headers: &HeaderMap) -> Result<Parts<'a>, ApiError> {
    let get = |name: &str| {
        h.split([',', ' '])
            .skip(1)
            .find_map(|kv| {
                kv.trim()
                    .strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix('='))
            })
            .filter(|v| !v.is_empty())
    };
    let amz_date = headers.get("x-amz-date").and_then(|v| v.to_str().ok());
    let http_date = headers
        .get(hyper::header::DATE)
        .and_then(|v| v.to_str().ok());
    let mut msg = String::new();
    for p in ["Credential", "Signature", "SignedHeaders"] {
        if get(p).is_none() {
            msg.push_str(&format!("Authorization header requires '{p}' parameter. "));
        }
    }
    if amz_date.is_none() && http_date.is_none() {
        msg.push_str(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ",
        );
    }
    if !msg.is_empty() {
        msg.push_str("Authorization=");
        msg.push_str(h);
        return Err(fail(ErrorKind::IncompleteSignature, "incomplete", msg));
    }
    Ok(Parts {
        query_form: false,
        algorithm: h.split(' ').next().unwrap_or(""),
        credential: get("Credential").unwrap_or("").to_owned(),
        signed_headers: get("SignedHeaders").unwrap_or("").to_owned(),
        signature: get("Signature").unwrap_or("").to_owned(),
        date: match (amz_date, http_date) {
            (Some(d), _) => DateSource::AmzHeader(d.to_owned()),
            (None, Some(d)) => DateSource::HttpDate(d.to_owned()),
            (None, None) => unreachable!("checked above"),
        },
        expires: None,
    })
}

/// Everything verify mode checks before the body; builds the canonical request's head.
fn verify_head<B>(
    verifier: Arc<Verifier>,
    req: &Request<B>,
    params: &[(String, String)],
    p: Parts<'_>,
) -> Result<Signed, ApiError> {
    if p.algorithm != ALGORITHM {
        return Err(fail(
            ErrorKind::IncompleteSignature,
            "algorithm",
            format!("Unsupported AWS 'algorithm': '{}'.", p.algorithm),
        ));
    }
    let scope: Vec<&str> = p.credential.split('/').collect();
    let [key_id, scope_date, region, service, terminator] = scope[..] else {
        return Err(fail(
            ErrorKind::IncompleteSignature,
            "credential",
            format!(
                "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{}'",
                p.credential
            ),
        ));
    };
    let (amz_date, when) = match &p.date {
        DateSource::AmzHeader(d) | DateSource::Query(d) => match parse_amz_date(d) {
            Some(t) => (d.clone(), t),
            None => {
                return Err(fail(
                    ErrorKind::IncompleteSignature,
                    "date",
                    format!("Date must be in ISO-8601 'basic format'. Got '{d}'. See http://en.wikipedia.org/wiki/ISO_8601"),
                ))
            }
        },
        DateSource::HttpDate(d) => match httpdate::parse_http_date(d) {
            Ok(t) => (format_amz_date(t), t),
            Err(_) => {
                return Err(fail(
                    ErrorKind::IncompleteSignature,
                    "date",
                    format!("Date must be in ISO-8601 'basic format'. Got '{d}'. See http://en.wikipedia.org/wiki/ISO_8601"),
                ))
            }
        },
    };
    if terminator != "aws4_request" {
        return Err(fail(
            ErrorKind::InvalidSignature,
            "scope",
            format!("Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'. "),
        ));
    }
    if scope_date != &amz_date[..8] {
        return Err(fail(
            ErrorKind::InvalidSignature,
            "scope",
            format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{scope_date}' != '{}', from '{amz_date}'.",
                &amz_date[..8]
            ),
        ));
    }
    if region != verifier.region {
        return Err(fail(
            ErrorKind::InvalidSignature,
            "scope",
            format!("Credential should be scoped to a valid region, not '{region}'. "),
        ));
    }
    if service != verifier.service {
        return Err(fail(
            ErrorKind::InvalidSignature,
            "scope",
            format!(
                "Credential should be scoped to correct service: '{}'. ",
                verifier.service
            ),
        ));
    }
    let signed: Vec<&str> = p.signed_headers.split(';').collect();
    if !signed.contains(&"host") {
        return Err(fail(
            ErrorKind::InvalidSignature,
            "unsigned_header",
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }
    if matches!(p.date, DateSource::AmzHeader(_)) && !signed.contains(&"x-amz-date") {
        return Err(fail(
            ErrorKind::InvalidSignature,
            "unsigned_header",
            "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }
    check_window((verifier.clock)(), when, &amz_date, p.expires.as_deref())?;
    let Some(secret) = verifier.creds.lookup(key_id) else {
        return Err(fail(
            ErrorKind::UnrecognizedClient,
            "unknown_key",
            UNRECOGNIZED_CLIENT,
        ));
    };
    // The canonical request: method, path, query, headers, signed header names, payload hash.
    let mut c = String::with_capacity(256);
    c.push_str(req.method().as_str());
    c.push('\n');
    canonical_path(req.uri().path(), &mut c);
    c.push('\n');
    let mut q: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| !(p.query_form && k == "X-Amz-Signature"))
        .map(|(k, v)| (uri_encode(k), uri_encode(v)))
        .collect();
    q.sort();
    for (i, (k, v)) in q.iter().enumerate() {
        if i > 0 {
            c.push('&');
        }
        c.push_str(k);
        c.push('=');
        c.push_str(v);
    }
    c.push('\n');
    let headers = req.headers();
    for name in &signed {
        c.push_str(name);
        c.push(':');
        if *name == "host" && !headers.contains_key(hyper::header::HOST) {
            // HTTP/2: the authority stands for the host header.
            if let Some(a) = req.uri().authority() {
                c.push_str(a.as_str());
            }
        } else {
            let mut first = true;
            for v in headers.get_all(*name) {
                if !first {
                    c.push(',');
                }
                first = false;
                canonical_header_value(v.as_bytes(), &mut c);
            }
        }
        c.push('\n');
    }
    c.push('\n');
    c.push_str(&p.signed_headers);
    c.push('\n');
    let unsigned_payload = p.query_form
        && headers
            .get("x-amz-content-sha256")
            .is_some_and(|v| v.as_bytes() == UNSIGNED_PAYLOAD.as_bytes());
    let signature = unhex(&p.signature).unwrap_or_default();
    Ok(Signed {
        verifier: verifier.clone(),
        key_id: key_id.to_owned(),
        secret,
        scope_date: scope_date.to_owned(),
        amz_date,
        canonical_head: c,
        unsigned_payload,
        signature,
    })
}

/// The ±5-minute window; a presigned URL is good from 5 minutes before its date until its
/// `X-Amz-Expires` after it.
fn check_window(
    now: SystemTime,
    when: SystemTime,
    amz_date: &str,
    expires: Option<&str>,
) -> Result<(), ApiError> {
    let skew = Duration::from_secs(CLOCK_SKEW_SECS);
    let earliest = now.checked_sub(skew).unwrap_or(UNIX_EPOCH);
    // A presigned request's own expiry replaces the 5-minute bound into the past.
    if when < earliest && expires.is_none() {
        return Err(fail(
            ErrorKind::InvalidSignature,
            "expired",
            format!(
                "Signature expired: {amz_date} is now earlier than {} ({} - 5 min.)",
                format_amz_date(earliest),
                format_amz_date(now)
            ),
        ));
    }
    let latest = now + skew;
    if when > latest {
        return Err(fail(
            ErrorKind::InvalidSignature,
            "not_yet_current",
            format!(
                "Signature not yet current: {amz_date} is still later than {} ({} + 5 min.)",
                format_amz_date(latest),
                format_amz_date(now)
            ),
        ));
    }
    if let Some(e) = expires {
        let secs = e
            .parse::<u64>()
            .ok()
            .filter(|s| *s <= PRESIGNED_EXPIRES_MAX_SECS);
        let Some(secs) = secs else {
            return Err(fail(
                ErrorKind::IncompleteSignature,
                "expires",
                format!("X-Amz-Expires must be a number of seconds from 0 to {PRESIGNED_EXPIRES_MAX_SECS}, got '{e}'."),
            ));
        };
        if when + Duration::from_secs(secs) < now {
            return Err(fail(
                ErrorKind::InvalidSignature,
                "expired",
                format!(
                    "Signature expired: {amz_date} is now earlier than {} ({} - {secs} sec.)",
                    format_amz_date(now - Duration::from_secs(secs)),
                    format_amz_date(now)
                ),
            ));
        }
    }
    Ok(())
}

/// `YYYYMMDDTHHMMSSZ` → time.
pub fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, se) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + se;
    u64::try_from(secs)
        .ok()
        .map(|s| UNIX_EPOCH + Duration::from_secs(s))
}

/// Time → `YYYYMMDDTHHMMSSZ`.
pub fn format_amz_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

// Howard Hinnant's civil-date algorithms.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// RFC 3986 unreserved characters stay; every other byte becomes `%XX` (upper-case hex).
fn uri_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hexval = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hexval(b[i + 1]), hexval(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The path, normalised (empty and `.` segments dropped, `..` resolved) and each segment
/// URI-encoded once more (SigV4's double encoding for every service but S3).
fn canonical_path(path: &str, out: &mut String) {
    let mut segs: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segs.pop();
            }
            s => segs.push(s),
        }
    }
    out.push('/');
    for (i, s) in segs.iter().enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(&uri_encode(s));
    }
    if path.len() > 1 && path.ends_with('/') && !segs.is_empty() {
        out.push('/');
    }
}

/// Trims the value and collapses runs of spaces to one.
fn canonical_header_value(v: &[u8], out: &mut String) {
    let v = String::from_utf8_lossy(v);
    let mut last_space = false;
    for ch in v.trim().chars() {
        if ch == ' ' {
            if !last_space {
                out.push(' ');
            }
            last_space = true;
        } else {
            out.push(ch);
            last_space = false;
        }
    }
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
