//! The command-line client: `levee stream …`, `levee put`, `levee tail`. It talks to any Kinesis
//! endpoint — a local Levee or AWS — through the AWS SDK for Rust, with the standard credential
//! and region chains of `aws-config`. This module owns what the commands share: the connection
//! options, building the client (and the one local fallback, dummy credentials for a loopback
//! endpoint), AWS errors as one clear line, waiting on a stream's status, and writing to stdout.
//!
//! Each command runs on a current-thread tokio runtime of its own: a client needs no more, and
//! the server's thread rules (R1) are not disturbed by anything here.

pub mod put;
pub mod stream;
pub mod tail;

use std::borrow::Cow;
use std::future::Future;
use std::io::Write;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use aws_config::environment::credentials::EnvironmentVariableCredentialsProvider;
use aws_config::environment::region::EnvironmentVariableRegionProvider;
use aws_config::meta::credentials::CredentialsProviderChain;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::{ProfileFileCredentialsProvider, ProfileFileRegionProvider};
use aws_config::BehaviorVersion;
use aws_sdk_kinesis::config::{Credentials, Region};
use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::types::StreamStatus;
use aws_sdk_kinesis::Client;
use clap::Args;

/// The region used against a loopback endpoint when none is configured.
const LOCAL_REGION_DEFAULT: &str = "us-east-1";
/// The access key (and secret) used against a loopback endpoint when no credentials are
/// configured anywhere.
const LOCAL_ACCESS_KEY: &str = "levee-local";
/// How long `stream create|delete|reshard` wait for the stream to settle, in seconds.
const STREAM_WAIT_SECS_MAX: u64 = 600;
/// The first and the longest pause between two status polls while waiting, in ms.
const STREAM_WAIT_POLL_MS_MIN: u64 = 50;
const STREAM_WAIT_POLL_MS_MAX: u64 = 1_000;

/// Where and as whom the client commands connect.
#[derive(Args, Clone, Debug, Default)]
#[command(next_help_heading = "Connection")]
pub struct ConnArgs {
    /// The Kinesis endpoint, e.g. http://127.0.0.1:4567 for a local Levee. Without it the AWS
    /// endpoint for the region is used (or AWS_ENDPOINT_URL / the profile's endpoint_url).
    #[arg(long, env = "LEVEE_ENDPOINT", global = true)]
    pub endpoint_url: Option<String>,
    /// The AWS region. [default: the standard chain (AWS_REGION, the profile, …); us-east-1
    /// against a loopback endpoint]
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// The named profile in ~/.aws/config and ~/.aws/credentials. [default: AWS_PROFILE or
    /// "default"]
    #[arg(long, global = true)]
    pub profile: Option<String>,
}

/// Shown after the help of each client command.
pub const CONN_HELP: &str = "\
Credentials and region come from the standard AWS chain: environment variables \
(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION), the shared config and \
credentials files and their profiles (SSO, credential_process, assume-role), web identity, ECS \
and EC2 instance metadata. Against a loopback endpoint (localhost, 127.0.0.0/8, ::1) with no \
credentials in the environment or the profile files and no --profile, the client signs with \
dummy static credentials (access key \"levee-local\"), which a local Levee without \
configured credentials accepts; instance metadata is not consulted there.";

/// Runs one client command on a current-thread runtime. An error is printed as one line
/// (`levee: …`, no backtrace) and exits with status 1; a closed stdout (`levee tail | head`)
/// ends the command quietly.
pub fn run<F>(fut: F) -> anyhow::Result<()>
where
    F: Future<Output = anyhow::Result<()>>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the runtime")?;
    match rt.block_on(fut) {
        Ok(()) => Ok(()),
        Err(e) if is_broken_pipe(&e) => Ok(()),
        Err(e) => {
            drop(rt);
            eprintln!("levee: {e:#}");
            std::process::exit(1)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// True when the endpoint URL's host is a loopback address or `localhost`.
pub fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    let host = host.to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Builds the Kinesis client from the options and the standard chains (see [`CONN_HELP`]).
pub async fn connect(conn: &ConnArgs) -> anyhow::Result<Client> {
    // Region first from the flag, the environment and the profile only: instance metadata is
    // consulted below, and only for a remote endpoint.
    let local_region = || {
        let mut profile_region = ProfileFileRegionProvider::builder();
        if let Some(p) = &conn.profile {
            profile_region = profile_region.profile_name(p);
        }
        RegionProviderChain::first_try(conn.region.clone().map(Region::new))
            .or_else(EnvironmentVariableRegionProvider::new())
            .or_else(profile_region.build())
    };
    let loader = |region: RegionProviderChain| {
        let mut l = aws_config::defaults(BehaviorVersion::latest()).region(region);
        if let Some(p) = &conn.profile {
            l = l.profile_name(p);
        }
        if let Some(url) = &conn.endpoint_url {
            l = l.endpoint_url(url);
        }
        l
    };
    // The first load names a region and a credentials provider, so aws-config consults no
    // instance metadata for a region (its default credential and token chains do when they
    // have none).
    let configured = local_region().region().await;
    let sdk = loader(RegionProviderChain::first_try(
        configured
            .clone()
            .unwrap_or(Region::new(LOCAL_REGION_DEFAULT)),
    ))
    .credentials_provider(local_credentials(conn.profile.as_deref()))
    .load()
    .await;
    if sdk.endpoint_url().is_some_and(is_loopback) {
        return Ok(Client::new(&sdk));
    }
    let sdk = loader(RegionProviderChain::first_try(configured).or_default_provider())
        .load()
        .await;
    if sdk.region().is_none() {
        return Err(anyhow!(
            "no AWS region configured: pass --region, set AWS_REGION, or give the profile a \
             region (or pass --endpoint-url for a local Levee)"
        ));
    }
    Ok(Client::new(&sdk))
}

/// Credentials for a loopback endpoint: the environment, then the profile files, then (unless a
/// profile was named) dummy static credentials.
fn local_credentials(profile: Option<&str>) -> CredentialsProviderChain {
    let mut from_profile = ProfileFileCredentialsProvider::builder();
    if let Some(p) = profile {
        from_profile = from_profile.profile_name(p);
    }
    let chain = CredentialsProviderChain::first_try(
        "Environment",
        EnvironmentVariableCredentialsProvider::new(),
    )
    .or_else("Profile", from_profile.build());
    let named = profile.is_some() || std::env::var_os("AWS_PROFILE").is_some();
    if named {
        chain
    } else {
        chain.or_else(
            "LeveeLocalDummy",
            Credentials::new(
                LOCAL_ACCESS_KEY,
                LOCAL_ACCESS_KEY,
                None,
                None,
                "levee-local",
            ),
        )
    }
}

/// An AWS error as one line: the operation, the error code and AWS's message.
pub fn aws_error<E, R>(op: &str, err: SdkError<E, R>) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match &err {
        SdkError::ServiceError(s) => {
            let e = s.err();
            let code = e.code().unwrap_or("UnknownError");
            match e.message() {
                Some(m) if !m.is_empty() => anyhow!("{op}: {code}: {m}"),
                _ => anyhow!("{op}: {code}"),
            }
        }
        _ => anyhow!("{op}: {}", error_chain(&err)),
    }
}

/// An error and its sources as one line ("a: b: c"), leaving out a source whose text its
/// parent already shows.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut line = err.to_string();
    let mut next = err.source();
    while let Some(e) = next {
        let text = e.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        next = e.source();
    }
    line
}

/// `result.aws("Op")?` turns an SDK error into [`aws_error`].
pub trait AwsResultExt<T> {
    fn aws(self, op: &str) -> anyhow::Result<T>;
}

impl<T, E, R> AwsResultExt<T> for Result<T, SdkError<E, R>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    fn aws(self, op: &str) -> anyhow::Result<T> {
        self.map_err(|e| aws_error(op, e))
    }
}

/// The stream's status as DescribeStreamSummary reports it; `None` once the stream is gone.
async fn stream_status(client: &Client, name: &str) -> anyhow::Result<Option<StreamStatus>> {
    match client
        .describe_stream_summary()
        .stream_name(name)
        .send()
        .await
    {
        Ok(out) => Ok(out
            .stream_description_summary()
            .map(|s| s.stream_status().clone())),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(aws_error("DescribeStreamSummary", e)),
    }
}

/// Polls until the stream is ACTIVE (`want_gone`: until it no longer exists), with a pause that
/// grows from [`STREAM_WAIT_POLL_MS_MIN`] to [`STREAM_WAIT_POLL_MS_MAX`].
pub async fn wait_for_stream(client: &Client, name: &str, want_gone: bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(STREAM_WAIT_SECS_MAX);
    let mut pause = STREAM_WAIT_POLL_MS_MIN;
    loop {
        let status = stream_status(client, name).await?;
        match (&status, want_gone) {
            (None, true) => return Ok(()),
            (None, false) => return Err(anyhow!("stream {name} disappeared while waiting")),
            (Some(StreamStatus::Active), false) => return Ok(()),
            _ => {}
        }
        if Instant::now() >= deadline {
            let what: Cow<str> = if want_gone {
                "to be deleted".into()
            } else {
                "to become ACTIVE".into()
            };
            return Err(anyhow!(
                "gave up after {STREAM_WAIT_SECS_MAX} s waiting for stream {name} {what} \
                 (status {:?})",
                status.map(|s| s.as_str().to_owned())
            ));
        }
        tokio::time::sleep(Duration::from_millis(pause)).await;
        pause = (pause * 2).min(STREAM_WAIT_POLL_MS_MAX);
    }
}

/// A time as RFC 3339 in UTC with milliseconds. The SDK reads Kinesis' epoch-seconds
/// timestamps through an `f64`, so `.512` may arrive as `.511999999`: round to the millisecond.
pub fn rfc3339(t: &aws_sdk_kinesis::primitives::DateTime) -> String {
    let ms = t.secs() * 1_000 + (f64::from(t.subsec_nanos()) / 1e6).round() as i64;
    aws_sdk_kinesis::primitives::DateTime::from_millis(ms)
        .fmt(aws_sdk_kinesis::primitives::DateTimeFormat::DateTime)
        .unwrap_or_else(|_| t.secs().to_string())
}

/// Writes a line to stdout and flushes it (so a pipe sees each record as it arrives).
pub fn out_line(out: &mut impl Write, line: &str) -> anyhow::Result<()> {
    out.write_all(line.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{is_loopback, rfc3339};
    use aws_sdk_kinesis::primitives::DateTime;

    #[test]
    fn times_round_to_the_millisecond() {
        assert_eq!(
            rfc3339(&DateTime::from_secs_f64(1_795_465_514.512)),
            "2026-11-23T20:25:14.512Z"
        );
        assert_eq!(
            rfc3339(&DateTime::from_secs_and_nanos(1_700_000_000, 999_999_999)),
            "2023-11-14T22:13:21Z"
        );
    }

    #[test]
    fn loopback_hosts() {
        for url in [
            "http://127.0.0.1:4567",
            "http://127.1.2.3",
            "http://localhost:4567/",
            "https://LOCALHOST",
            "http://[::1]:4567",
            "http://user@127.0.0.1:9/x",
            "http://a.localhost:1",
        ] {
            assert!(is_loopback(url), "{url}");
        }
        for url in [
            "https://kinesis.us-east-1.amazonaws.com",
            "http://10.0.0.1:4567",
            "http://[::2]:1",
            "http://localhost.example.com",
            "http://128.0.0.1",
        ] {
            assert!(!is_loopback(url), "{url}");
        }
    }
}
