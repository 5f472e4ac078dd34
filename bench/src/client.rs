//! The Kinesis JSON client the load generator drives: `POST /` with `X-Amz-Target`, a real
//! SigV4 signature from static credentials, over hyper's pooled HTTP/1.1 connections (with
//! `TCP_NODELAY`). It is deliberately thin — no SDK, no retries, no response model beyond what a
//! workload reads — so that the generator stays cheap next to the server it measures. It refuses
//! any endpoint that is not on loopback.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// How long one request may take before the generator gives up on it.
pub const REQUEST_TIMEOUT_MS: u64 = 30_000;
/// How long a new stream may stay CREATING.
pub const STREAM_ACTIVE_TIMEOUT_MS: u64 = 60_000;
/// Pause between two DescribeStream polls while waiting for ACTIVE.
const STREAM_POLL_INTERVAL_MS: u64 = 100;
/// Pages of ListShards read at most.
const LIST_SHARDS_PAGES_MAX: usize = 1_000;
const TARGET_PREFIX: &str = "Kinesis_20131202.";
const CONTENT_TYPE_JSON: &str = "application/x-amz-json-1.1";
const SERVICE_NAME: &str = "kinesis";

/// Where to send requests and as whom.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub url: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
}

/// A cheap-to-clone signed Kinesis client.
#[derive(Clone)]
pub struct Kinesis {
    inner: Arc<Inner>,
}

struct Inner {
    http: Client<HttpConnector, Full<Bytes>>,
    uri: hyper::Uri,
    uri_string: String,
    host: String,
    identity: Identity,
    region: String,
}

/// One answer: its status and raw body.
pub struct Reply {
    pub status: StatusCode,
    pub body: Bytes,
}

impl Reply {
    pub fn is_ok(&self) -> bool {
        self.status == StatusCode::OK
    }

    /// The error's `__type` (without its namespace), or the status and the start of the body.
    pub fn error_type(&self) -> String {
        let parsed: Option<Value> = serde_json::from_slice(&self.body).ok();
        if let Some(t) = parsed
            .as_ref()
            .and_then(|v| v.get("__type"))
            .and_then(Value::as_str)
        {
            return t.rsplit('#').next().unwrap_or(t).to_string();
        }
        let head = &self.body[..self.body.len().min(120)];
        format!(
            "HTTP {} {}",
            self.status.as_u16(),
            String::from_utf8_lossy(head)
        )
    }
}

/// The lowercase hex SHA-256 of a body, for signing prebuilt bodies once.
pub fn sha256_hex(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl Kinesis {
    /// A client for `endpoint` keeping up to `pool_idle_max` idle connections.
    pub fn new(endpoint: &Endpoint, pool_idle_max: usize) -> Result<Self> {
        let parsed: hyper::Uri = endpoint.url.parse().context("endpoint is not a URL")?;
        if parsed.scheme_str() != Some("http") {
            bail!("endpoint must be http:// (got {})", endpoint.url);
        }
        let authority = parsed
            .authority()
            .ok_or_else(|| anyhow!("endpoint has no host: {}", endpoint.url))?
            .clone();
        if !is_loopback(authority.host()) {
            bail!(
                "levee-bench only sends traffic to loopback; {} is not",
                authority.host()
            );
        }
        let uri_string = format!("http://{authority}/");
        let uri: hyper::Uri = uri_string.parse()?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.enforce_http(true);
        let http = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(pool_idle_max)
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        let identity: Identity = Credentials::new(
            endpoint.access_key.clone(),
            endpoint.secret_key.clone(),
            None,
            None,
            "levee-bench",
        )
        .into();
        Ok(Kinesis {
            inner: Arc::new(Inner {
                http,
                uri,
                uri_string,
                host: authority.to_string(),
                identity,
                region: endpoint.region.clone(),
            }),
        })
    }

    /// A signed `POST /` for `op` (SigV4 over host, content type and target).
    fn signed_request(
        &self,
        op: &str,
        body: Bytes,
        body_sha256: Option<&str>,
    ) -> Result<Request<Full<Bytes>>> {
        let inner = &*self.inner;
        let target = format!("{TARGET_PREFIX}{op}");
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(inner.uri.clone())
            .header(HOST, inner.host.as_str())
            .header(CONTENT_TYPE, CONTENT_TYPE_JSON)
            .header("x-amz-target", target.as_str())
            .body(Full::new(body.clone()))?;
        let signable_body = match body_sha256 {
            Some(hash) => SignableBody::Precomputed(hash.to_string()),
            None => SignableBody::Bytes(&body),
        };
        let headers = [
            ("host", inner.host.as_str()),
            ("content-type", CONTENT_TYPE_JSON),
            ("x-amz-target", target.as_str()),
        ];
        let signable = SignableRequest::new(
            "POST",
            &inner.uri_string,
            headers.into_iter(),
            signable_body,
        )?;
        let params = v4::SigningParams::builder()
            .identity(&inner.identity)
            .region(&inner.region)
            .name(SERVICE_NAME)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()?
            .into();
        let (instructions, _signature) = sign(signable, &params)?.into_parts();
        instructions.apply_to_request_http1x(&mut req);
        Ok(req)
    }

    /// Sends one operation. `body_sha256` is the body's precomputed hash (for prebuilt bodies);
    /// without it the body is hashed here.
    pub async fn call(&self, op: &str, body: Bytes, body_sha256: Option<&str>) -> Result<Reply> {
        let req = self.signed_request(op, body, body_sha256)?;
        let send = async {
            let resp = self.inner.http.request(req).await?;
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            anyhow::Ok(Reply { status, body })
        };
        tokio::time::timeout(Duration::from_millis(REQUEST_TIMEOUT_MS), send)
            .await
            .map_err(|_| anyhow!("{op}: no answer within {REQUEST_TIMEOUT_MS} ms"))?
    }

    /// [`Self::call`] returning the answer as soon as its head has arrived, its body still
    /// streaming: the caller reads it (and bounds the whole exchange).
    pub async fn call_body(&self, op: &str, body: Bytes) -> Result<Response<Incoming>> {
        let req = self.signed_request(op, body, None)?;
        self.inner
            .http
            .request(req)
            .await
            .map_err(|e| anyhow!("{op}: {e:#}"))
    }

    /// Sends one operation with a JSON body and returns the answer as soon as its head has
    /// arrived, with the body still streaming (SubscribeToShard's event stream). Only the head
    /// is bounded by the request timeout; the caller bounds its reads of the body.
    pub async fn call_streaming(&self, op: &str, body: &Value) -> Result<Response<Incoming>> {
        let req = self.signed_request(op, Bytes::from(serde_json::to_vec(body)?), None)?;
        tokio::time::timeout(
            Duration::from_millis(REQUEST_TIMEOUT_MS),
            self.inner.http.request(req),
        )
        .await
        .map_err(|_| anyhow!("{op}: no answer within {REQUEST_TIMEOUT_MS} ms"))?
        .map_err(|e| anyhow!("{op}: {e:#}"))
    }

    /// Sends one operation with a JSON body and parses a successful answer; an error answer is
    /// an `Err` naming its type.
    pub async fn call_json(&self, op: &str, body: &Value) -> Result<Value> {
        let reply = self
            .call(op, Bytes::from(serde_json::to_vec(body)?), None)
            .await?;
        if !reply.is_ok() {
            bail!("{op}: {}", reply.error_type());
        }
        if reply.body.is_empty() {
            return Ok(Value::Null);
        }
        Ok(serde_json::from_slice(&reply.body)?)
    }

    /// Creates `name` with `shards` shards (an existing stream is fine), waits until it is
    /// ACTIVE and returns its shard ids in order.
    pub async fn create_stream(&self, name: &str, shards: u32) -> Result<Vec<String>> {
        let reply = self
            .call(
                "CreateStream",
                Bytes::from(serde_json::to_vec(
                    &json!({"StreamName": name, "ShardCount": shards}),
                )?),
                None,
            )
            .await?;
        if !reply.is_ok() && reply.error_type() != "ResourceInUseException" {
            bail!("CreateStream {name}: {}", reply.error_type());
        }
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(STREAM_ACTIVE_TIMEOUT_MS);
        loop {
            let out = self
                .call_json("DescribeStream", &json!({"StreamName": name, "Limit": 1}))
                .await?;
            let status = out
                .pointer("/StreamDescription/StreamStatus")
                .and_then(Value::as_str)
                .unwrap_or("");
            if status == "ACTIVE" {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("stream {name} not ACTIVE after {STREAM_ACTIVE_TIMEOUT_MS} ms (status {status:?})");
            }
            tokio::time::sleep(Duration::from_millis(STREAM_POLL_INTERVAL_MS)).await;
        }
        self.list_shards(name).await
    }

    /// Every shard id of `name`, following ListShards pages.
    pub async fn list_shards(&self, name: &str) -> Result<Vec<String>> {
        let mut shards = Vec::new();
        let mut request = json!({"StreamName": name});
        for _ in 0..LIST_SHARDS_PAGES_MAX {
            let out = self.call_json("ListShards", &request).await?;
            for shard in out
                .get("Shards")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(id) = shard.get("ShardId").and_then(Value::as_str) {
                    shards.push(id.to_string());
                }
            }
            match out.get("NextToken").and_then(Value::as_str) {
                Some(token) => request = json!({"NextToken": token}),
                None => return Ok(shards),
            }
        }
        bail!("ListShards {name}: more than {LIST_SHARDS_PAGES_MAX} pages")
    }

    /// A shard iterator of the given type (TRIM_HORIZON, LATEST).
    pub async fn shard_iterator(&self, stream: &str, shard: &str, kind: &str) -> Result<String> {
        let out = self
            .call_json(
                "GetShardIterator",
                &json!({"StreamName": stream, "ShardId": shard, "ShardIteratorType": kind}),
            )
            .await?;
        out.get("ShardIterator")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| anyhow!("GetShardIterator: no ShardIterator in the answer"))
    }

    /// Registers an enhanced fan-out consumer on `stream` and waits until it is ACTIVE
    /// (DescribeStreamConsumer); returns its ARN.
    pub async fn register_consumer(&self, stream: &str, name: &str) -> Result<String> {
        let summary = self
            .call_json("DescribeStreamSummary", &json!({"StreamName": stream}))
            .await?;
        let stream_arn = summary
            .pointer("/StreamDescriptionSummary/StreamARN")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("DescribeStreamSummary: no StreamARN in the answer"))?
            .to_string();
        let out = self
            .call_json(
                "RegisterStreamConsumer",
                &json!({"StreamARN": stream_arn, "ConsumerName": name}),
            )
            .await?;
        let arn = out
            .pointer("/Consumer/ConsumerARN")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("RegisterStreamConsumer: no ConsumerARN in the answer"))?
            .to_string();
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(STREAM_ACTIVE_TIMEOUT_MS);
        loop {
            let out = self
                .call_json("DescribeStreamConsumer", &json!({"ConsumerARN": arn}))
                .await?;
            let status = out
                .pointer("/ConsumerDescription/ConsumerStatus")
                .and_then(Value::as_str)
                .unwrap_or("");
            if status == "ACTIVE" {
                return Ok(arn);
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("consumer {name} not ACTIVE after {STREAM_ACTIVE_TIMEOUT_MS} ms (status {status:?})");
            }
            tokio::time::sleep(Duration::from_millis(STREAM_POLL_INTERVAL_MS)).await;
        }
    }

    /// Deletes a stream, ignoring errors (clean-up only).
    pub async fn delete_stream(&self, name: &str) {
        let _ = self
            .call_json(
                "DeleteStream",
                &json!({"StreamName": name, "EnforceConsumerDeletion": true}),
            )
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_only() {
        assert!(is_loopback("127.0.0.1"));
        assert!(is_loopback("127.3.4.5"));
        assert!(is_loopback("localhost"));
        assert!(is_loopback("[::1]"));
        assert!(!is_loopback("10.0.0.1"));
        assert!(!is_loopback("example.com"));
        let ep = Endpoint {
            url: "http://192.168.1.1:4567".into(),
            region: "us-east-1".into(),
            access_key: "a".into(),
            secret_key: "b".into(),
        };
        assert!(Kinesis::new(&ep, 1).is_err());
    }

    #[test]
    fn sha256_of_empty_body() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
