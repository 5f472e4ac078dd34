//! Runs a real `levee serve` process on a free loopback port for integration tests.
#![allow(dead_code)]

pub mod fleet;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

pub struct Server {
    pub child: Child,
    pub endpoint: String,
    /// The admin listener (metrics, health, status), on a free port too.
    pub admin: String,
    pub dir: Option<tempfile::TempDir>,
}

impl Server {
    pub fn start() -> Server {
        Self::start_in(tempfile::tempdir().expect("tempdir"))
    }

    /// Starts on an existing data directory (to test restarts).
    pub fn start_in(dir: tempfile::TempDir) -> Server {
        Self::start_with(dir, &[])
    }

    /// Starts with extra `levee serve` flags.
    pub fn start_with(dir: tempfile::TempDir, extra: &[&str]) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_levee"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--stream-transition-ms", "100"])
            .args(["--admin-listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .env("LEVEE_LOG", "warn")
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn levee");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut admin = String::new();
        loop {
            match lines.next() {
                Some(Ok(l)) if l.starts_with("levee listening") => break,
                Some(Ok(l)) if l.starts_with("admin listening on ") => {
                    admin = l.trim_start_matches("admin listening on ").to_owned();
                }
                Some(Ok(_)) => continue,
                _ => panic!("levee exited before listening: {:?}", child.wait()),
            }
        }
        Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            admin,
            dir: Some(dir),
        }
    }

    /// The port the server listens on.
    pub fn addr(&self) -> String {
        self.endpoint.trim_start_matches("http://").to_owned()
    }

    /// OS threads of the server process.
    pub fn threads(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/task", self.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    pub fn client(&self) -> aws_sdk_kinesis::Client {
        let cfg = aws_sdk_kinesis::Config::builder()
            .behavior_version(aws_sdk_kinesis::config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_sdk_kinesis::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_kinesis::config::Credentials::new(
                "AKIDEXAMPLE",
                "secret",
                None,
                None,
                "test",
            ))
            .build();
        aws_sdk_kinesis::Client::from_conf(cfg)
    }

    /// SIGKILL: what a crash leaves.
    pub fn kill(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.dir.take().expect("data dir")
    }

    /// SIGTERM and wait: a graceful shutdown.
    pub fn stop(mut self) -> (std::process::ExitStatus, tempfile::TempDir) {
        // SAFETY: sending SIGTERM to our own child process.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().expect("wait");
        (status, self.dir.take().expect("data dir"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls DescribeStreamSummary until the stream is ACTIVE (a condition, awaited).
pub async fn wait_active(client: &aws_sdk_kinesis::Client, name: &str) {
    for _ in 0..600 {
        let s = client
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .expect("describe");
        if s.stream_description_summary()
            .map(|d| d.stream_status().as_str())
            == Some("ACTIVE")
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("stream {name} never became ACTIVE");
}

/// Registers consumer `name` on `stream_arn` and polls until it is ACTIVE; returns its ARN.
pub async fn active_consumer(
    client: &aws_sdk_kinesis::Client,
    stream_arn: &str,
    name: &str,
) -> String {
    let arn = client
        .register_stream_consumer()
        .stream_arn(stream_arn)
        .consumer_name(name)
        .send()
        .await
        .expect("RegisterStreamConsumer")
        .consumer()
        .expect("consumer")
        .consumer_arn()
        .to_owned();
    for _ in 0..1000 {
        let d = client
            .describe_stream_consumer()
            .consumer_arn(&arn)
            .send()
            .await
            .expect("DescribeStreamConsumer");
        if d.consumer_description()
            .map(|c| c.consumer_status().as_str())
            == Some("ACTIVE")
        {
            return arn;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("consumer {name} never became ACTIVE");
}

/// Reads a shard from TRIM_HORIZON with one GetRecords call.
pub async fn read_shard(
    client: &aws_sdk_kinesis::Client,
    stream: &str,
    shard_id: &str,
) -> Vec<aws_sdk_kinesis::types::Record> {
    let it = client
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(shard_id)
        .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("GetShardIterator");
    client
        .get_records()
        .shard_iterator(it.shard_iterator().expect("iterator"))
        .send()
        .await
        .expect("GetRecords")
        .records()
        .to_vec()
}

/// GET over plain HTTP/1.1 (`addr` with or without `http://`); the status code and the body.
/// For the admin listener (`/metrics`, `/status.json`, …).
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let host = addr.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).expect("read answer");
    let (head, body) = buf.split_once("\r\n\r\n").expect("http answer");
    let code = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (code, body.to_owned())
}
