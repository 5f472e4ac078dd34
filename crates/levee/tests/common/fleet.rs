//! A fleet of `levee serve --role ...` processes on 127.0.0.x for integration tests: one control
//! plane, storage nodes and front-ends, with credentials configured, and helpers to drive them
//! with the AWS SDK for Rust.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use aws_sdk_kinesis::error::ProvideErrorMetadata;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType};
use aws_smithy_types::Blob;

/// Every lease and expiry of the fleet, short so a test sees each lapse several times.
pub const LEASE_RENEW_MS: &str = "300";
pub const MAP_SNAPSHOT_PERIOD_MS: &str = "1000";

/// One `levee serve --role ...` process.
pub struct Proc {
    pub child: Child,
    /// What it announced: "<prefix> <address>" lines, by prefix.
    pub lines: Vec<String>,
}

impl Proc {
    pub fn start(args: &[&str], data_dir: &Path, master_key: &Path, wait_for: &str) -> Proc {
        Proc::start_with(args, data_dir, master_key, wait_for, |_| {})
    }

    /// [`Proc::start`] with `setup` applied to the command first (e.g. limits for the child).
    pub fn start_with(
        args: &[&str],
        data_dir: &Path,
        master_key: &Path,
        wait_for: &str,
        setup: impl FnOnce(&mut Command),
    ) -> Proc {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_levee"));
        setup(&mut cmd);
        cmd.arg("serve")
            .args(args)
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--master-key-file")
            .arg(master_key)
            .args(["--stream-transition-ms", "100"])
            .args(["--lease-renew-ms", LEASE_RENEW_MS]);
        if !args.contains(&"--map-snapshot-period-ms") {
            cmd.args(["--map-snapshot-period-ms", MAP_SNAPSHOT_PERIOD_MS]);
        }
        Proc::spawn(cmd, wait_for)
    }

    /// Runs `cmd` (a `levee serve` however wrapped: under `setpriv`, `prlimit`, ...) until it
    /// prints a line starting with `wait_for`.
    pub fn spawn(mut cmd: Command, wait_for: &str) -> Proc {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .env("LEVEE_LOG", "warn")
            .spawn()
            .expect("spawn levee");
        let stdout = child.stdout.take().expect("stdout");
        let mut reader = BufReader::new(stdout).lines();
        let mut lines = Vec::new();
        loop {
            match reader.next() {
                Some(Ok(l)) => {
                    let done = l.starts_with(wait_for);
                    lines.push(l);
                    if done {
                        break;
                    }
                }
                _ => panic!("levee exited before `{wait_for}`: {:?}", child.wait()),
            }
        }
        // Keep draining stdout so the process never blocks on it.
        std::thread::spawn(move || for _ in reader.by_ref() {});
        Proc { child, lines }
    }

    /// The address announced on the line starting with `prefix`.
    pub fn addr(&self, prefix: &str) -> String {
        let line = self
            .lines
            .iter()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` line in {:?}", self.lines));
        line.rsplit(' ')
            .next()
            .expect("address")
            .trim_start_matches("http://")
            .to_owned()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

pub struct Fleet {
    pub control: Proc,
    pub control_addr: String,
    pub storage: Vec<Proc>,
    pub frontends: Vec<Proc>,
    /// Each front-end's API and admin addresses (kept across restarts, so a restarted
    /// front-end registers the same address and the map does not change).
    pub apis: Vec<String>,
    pub admins: Vec<String>,
    pub key: (String, String),
    /// Last, so it is removed only after every process above was killed (fields drop in
    /// order): a node never sees its data directory vanish under it.
    pub dir: tempfile::TempDir,
}

impl Fleet {
    pub fn master_key(&self) -> PathBuf {
        self.dir.path().join("master.key")
    }

    pub fn start() -> Fleet {
        Fleet::start_with(&[])
    }

    /// [`Fleet::start`] with `storage_extra` flags on every storage node.
    pub fn start_with(storage_extra: &[&str]) -> Fleet {
        let dir = tempfile::tempdir().expect("tempdir");
        let master_key = dir.path().join("master.key");
        let control = Proc::start(
            &[
                "--role",
                "control",
                "--control-listen",
                "127.0.0.2:0",
                "--admin-listen",
                "127.0.0.2:0",
            ],
            &dir.path().join("control"),
            &master_key,
            // Once it has listed itself in the map (the map version then moves only with the test).
            "registered as control node",
        );
        let control_addr = control.addr("control listening on");
        let storage = (1..=3)
            .map(|i| {
                let listen = format!("127.0.0.1{i}:0");
                let mut args = vec![
                    "--role",
                    "storage",
                    "--control",
                    &control_addr,
                    "--storage-listen",
                    &listen,
                    "--admin-listen",
                    &listen,
                ];
                args.extend_from_slice(storage_extra);
                Proc::start(
                    &args,
                    &dir.path().join(format!("storage-{i}")),
                    &master_key,
                    // Placement needs it registered, not just listening.
                    "registered as storage node",
                )
            })
            .collect();
        // One access key, shared by every front-end (as a fleet shares its credentials file).
        let first = dir.path().join("frontend-1");
        let key = create_key(&first, &master_key);
        for i in 2..=3 {
            let d = dir.path().join(format!("frontend-{i}"));
            std::fs::create_dir_all(&d).expect("mkdir");
            std::fs::copy(first.join("credentials.json"), d.join("credentials.json"))
                .expect("copy credentials");
        }
        let mut fleet = Fleet {
            dir,
            control,
            control_addr,
            storage,
            frontends: Vec::new(),
            apis: (1..=3).map(|i| format!("127.0.0.2{i}:0")).collect(),
            admins: (1..=3).map(|i| format!("127.0.0.2{i}:0")).collect(),
            key,
        };
        for i in 0..3 {
            // Registered, so the node table (part of the map) is settled once started.
            let control = fleet.control_addr.clone();
            let p = fleet.start_frontend_waiting(i, &control, &[], "registered as front-end");
            fleet.apis[i] = p.addr("levee listening on");
            fleet.admins[i] = p.addr("admin listening on");
            fleet.frontends.push(p);
        }
        fleet
    }

    pub fn start_frontend(&self, i: usize) -> Proc {
        self.start_frontend_via(i, &self.control_addr.clone(), &[])
    }

    /// Front-end `i` with control plane address `control` and extra flags, once it serves.
    pub fn start_frontend_via(&self, i: usize, control: &str, extra: &[&str]) -> Proc {
        self.start_frontend_waiting(i, control, extra, "levee listening on")
    }

    pub fn start_frontend_waiting(
        &self,
        i: usize,
        control: &str,
        extra: &[&str],
        wait_for: &str,
    ) -> Proc {
        let n = i + 1;
        let admin = self.admins[i].clone();
        let mut args = vec![
            "--role",
            "frontend",
            "--control",
            control,
            "--listen",
            &self.apis[i],
            "--admin-listen",
            &admin,
        ];
        args.extend_from_slice(extra);
        let dir = self.dir.path().join(format!("frontend-{n}"));
        if !dir.exists() {
            std::fs::create_dir_all(&dir).expect("mkdir");
            let first = self.dir.path().join("frontend-1/credentials.json");
            std::fs::copy(first, dir.join("credentials.json")).expect("copy credentials");
        }
        Proc::start(&args, &dir, &self.master_key(), wait_for)
    }

    pub fn client(&self, i: usize) -> aws_sdk_kinesis::Client {
        client_for(&self.apis[i], &self.key)
    }

    pub fn clients(&self) -> Vec<aws_sdk_kinesis::Client> {
        (0..self.apis.len()).map(|i| self.client(i)).collect()
    }
}

/// An SDK client signing with `key` for the front-end API at `api` (`ip:port`).
pub fn client_for(api: &str, key: &(String, String)) -> aws_sdk_kinesis::Client {
    let cfg = aws_sdk_kinesis::Config::builder()
        .behavior_version(aws_sdk_kinesis::config::BehaviorVersion::latest())
        .endpoint_url(format!("http://{api}"))
        .region(aws_sdk_kinesis::config::Region::new("us-east-1"))
        .credentials_provider(Credentials::new(&key.0, &key.1, None, None, "test"))
        .build();
    aws_sdk_kinesis::Client::from_conf(cfg)
}

pub fn create_key(data_dir: &Path, master_key: &Path) -> (String, String) {
    std::fs::create_dir_all(data_dir).expect("mkdir");
    let out = Command::new(env!("CARGO_BIN_EXE_levee"))
        .args(["credentials", "create", "--name", "fleet"])
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--master-key-file")
        .arg(master_key)
        .output()
        .expect("levee credentials create");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    };
    (field("AccessKeyId:"), field("SecretAccessKey:"))
}

pub async fn wait_active(client: &aws_sdk_kinesis::Client, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = client
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .ok()
            .and_then(|s| {
                s.stream_description_summary()
                    .map(|d| d.stream_status().as_str().to_owned())
            });
        if status.as_deref() == Some("ACTIVE") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} is {status:?}, not ACTIVE"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every record of the stream, read shard by shard from TRIM_HORIZON through `client`.
pub async fn read_all(
    client: &aws_sdk_kinesis::Client,
    stream: &str,
    shards: &[String],
) -> Vec<String> {
    let mut out = Vec::new();
    for shard in shards {
        let mut it = client
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(shard)
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("GetShardIterator")
            .shard_iterator
            .expect("iterator");
        loop {
            let r = client
                .get_records()
                .shard_iterator(&it)
                .send()
                .await
                .expect("GetRecords");
            out.extend(
                r.records()
                    .iter()
                    .map(|rec| String::from_utf8_lossy(rec.data().as_ref()).into_owned()),
            );
            match r.next_shard_iterator() {
                Some(next) if !r.records().is_empty() => it = next.to_owned(),
                _ => break,
            }
        }
    }
    out.sort();
    out
}

pub async fn stream_arn(client: &aws_sdk_kinesis::Client, stream: &str) -> String {
    client
        .describe_stream_summary()
        .stream_name(stream)
        .send()
        .await
        .expect("DescribeStreamSummary")
        .stream_description_summary()
        .expect("summary")
        .stream_arn()
        .to_owned()
}

/// (shard id, first hash key) of every shard, by ListShards.
pub async fn shard_keys(client: &aws_sdk_kinesis::Client, stream: &str) -> Vec<(String, String)> {
    client
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .expect("ListShards")
        .shards()
        .iter()
        .map(|s| {
            let key = s.hash_key_range().expect("range").starting_hash_key();
            (s.shard_id().to_owned(), key.to_owned())
        })
        .collect()
}

pub async fn shard_ids(client: &aws_sdk_kinesis::Client, stream: &str) -> Vec<String> {
    client
        .describe_stream()
        .stream_name(stream)
        .send()
        .await
        .expect("DescribeStream")
        .stream_description()
        .expect("description")
        .shards()
        .iter()
        .map(|s| s.shard_id().to_owned())
        .collect()
}

pub async fn put(client: &aws_sdk_kinesis::Client, stream: &str, data: &str) {
    client
        .put_record()
        .stream_name(stream)
        .partition_key(data)
        .data(Blob::new(data.as_bytes()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutRecord {data}: {}", e.message().unwrap_or_default()));
}

pub async fn put_batch(client: &aws_sdk_kinesis::Client, stream: &str, prefix: &str, n: usize) {
    let out = client
        .put_records()
        .stream_name(stream)
        .set_records(Some(
            (0..n)
                .map(|i| {
                    PutRecordsRequestEntry::builder()
                        .partition_key(format!("{prefix}-{i}"))
                        .data(Blob::new(format!("{prefix}-{i}").into_bytes()))
                        .build()
                        .expect("entry")
                })
                .collect(),
        ))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutRecords {prefix}: {}", e.message().unwrap_or_default()));
    assert_eq!(out.failed_record_count(), Some(0), "{prefix}");
}
