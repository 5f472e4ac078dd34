//! `levee-bench`: the load generator and report tool behind `bench/compare.sh`.
//!
//! It speaks the Kinesis JSON protocol with real SigV4 signatures over pooled hyper connections
//! (no AWS SDK, so the generator stays cheap and reports its own CPU to show it), to loopback
//! only. Subcommands: `put`, `get`, `e2e` (polling or SubscribeToShard consumer) drive a server; `fsync` measures the disk's limits;
//! `report` turns the JSON result lines into Markdown. Each run prints a human summary on stderr
//! and one JSON line on stdout (and appends it to `--json-out`).

mod client;
mod fsync;
mod report;
mod scan;
mod stats;
mod subscribe;
mod workload;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand};

use crate::client::{Endpoint, Kinesis};
use crate::workload::{Common, ConsumerKind, E2eOpts, GetOpts, PutOp, PutOpts};

/// Longest run accepted for one workload.
const DURATION_S_MAX: f64 = 3_600.0;
/// Most time slices a growth run reports.
const SLICES_MAX: usize = 100;
/// Most concurrent callers accepted.
const CONCURRENCY_MAX: usize = 4_096;

#[derive(Parser)]
#[command(
    name = "levee-bench",
    version,
    about = "Kinesis load generator and peer comparison for Levee (loopback only)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// PutRecords or PutRecord from concurrent callers.
    Put {
        #[command(flatten)]
        server: ServerArgs,
        /// Which operation to drive.
        #[arg(long, value_enum, default_value = "put-records")]
        op: PutOp,
        /// Requests in flight (one pooled connection each).
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Bytes of data per record.
        #[arg(long, default_value_t = 100)]
        record_size: usize,
        /// Records per PutRecords call (1..=500).
        #[arg(long, default_value_t = 500)]
        batch_size: usize,
        /// Report the measured window in this many equal time slices (a `growth` run: is the
        /// append cost flat as the shards fill?); 1 for a plain `put` run.
        #[arg(long, default_value_t = 1)]
        slices: usize,
    },
    /// Read-back of a prepared backlog: GetShardIterator(TRIM_HORIZON) + GetRecords, one reader per shard.
    Get {
        #[command(flatten)]
        server: ServerArgs,
        /// Records written before reading.
        #[arg(long, default_value_t = 200_000)]
        backlog_records: u64,
        /// Bytes of data per record.
        #[arg(long, default_value_t = 100)]
        record_size: usize,
        /// GetRecords Limit.
        #[arg(long, default_value_t = 10_000)]
        limit: u32,
    },
    /// Put → visible latency: paced PutRecord producers and a consumer per shard, polling
    /// GetRecords or subscribed with SubscribeToShard (enhanced fan-out).
    E2e {
        #[command(flatten)]
        server: ServerArgs,
        /// How the consumer reads: `poll` (GetRecords loop) or `subscribe` (a registered
        /// consumer and a SubscribeToShard event stream per shard, renewed when it ends).
        #[arg(long, value_enum, default_value = "poll")]
        consumer: ConsumerKind,
        /// Records per second over all producers.
        #[arg(long, default_value_t = 200.0)]
        rate: f64,
        /// Producer tasks.
        #[arg(long, default_value_t = 1)]
        producers: usize,
        /// Bytes of data per record (at least 16: magic + timestamp).
        #[arg(long, default_value_t = 100)]
        record_size: usize,
        /// Pause after an empty GetRecords, in milliseconds (0: poll again at once).
        #[arg(long, default_value_t = 1.0)]
        poll_interval_ms: f64,
        /// GetRecords Limit.
        #[arg(long, default_value_t = 10_000)]
        limit: u32,
        /// Records per put call: 1 sends PutRecord, more send PutRecords (at most 500).
        #[arg(long, default_value_t = 1)]
        batch_size: usize,
    },
    /// Steady producers with tailing consumers on many shards (give `--shards`, e.g. 1000):
    /// paced PutRecords batches with random partition keys, one consumer per shard.
    Mixed {
        #[command(flatten)]
        server: ServerArgs,
        /// How the consumers read: `poll` (GetRecords) or `subscribe` (SubscribeToShard).
        #[arg(long, value_enum, default_value = "poll")]
        consumer: ConsumerKind,
        /// Records per second over all producers.
        #[arg(long, default_value_t = 10_000.0)]
        rate: f64,
        /// Producer tasks.
        #[arg(long, default_value_t = 4)]
        producers: usize,
        /// Bytes of data per record (at least 16: magic + timestamp).
        #[arg(long, default_value_t = 100)]
        record_size: usize,
        /// Pause after an empty GetRecords per shard, in milliseconds (a tailing consumer).
        #[arg(long, default_value_t = 200.0)]
        poll_interval_ms: f64,
        /// GetRecords Limit.
        #[arg(long, default_value_t = 10_000)]
        limit: u32,
        /// Records per PutRecords call.
        #[arg(long, default_value_t = 100)]
        batch_size: usize,
        /// Polling readers per shard: one measured consumer, the rest load only (e.g. 1 shard
        /// read by 1,000 readers: the read concurrency of 1,000 shards on one).
        #[arg(long, default_value_t = 1)]
        readers_per_shard: usize,
    },
    /// The disk's limits: small write + fdatasync latency, and batched write + fdatasync bandwidth.
    Fsync {
        /// Directory for the temporary file (put it on the filesystem the server writes to).
        #[arg(long, default_value_os_t = std::env::temp_dir())]
        dir: PathBuf,
        /// Seconds per measurement (two measurements).
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
        /// Bytes per write in the latency measurement.
        #[arg(long, default_value_t = 4096)]
        small_write_bytes: usize,
        /// Bytes per write in the bandwidth measurement.
        #[arg(long, default_value_t = 1 << 20)]
        batch_bytes: usize,
        /// Append the JSON result lines to this file.
        #[arg(long)]
        json_out: Option<PathBuf>,
    },
    /// Markdown tables from JSON result lines.
    Report {
        /// Files of JSON result lines.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// The target ratios are taken against.
        #[arg(long, default_value = "levee")]
        baseline: String,
        /// Also write records/s per throughput workload and target, tab-separated, for a chart.
        #[arg(long)]
        chart_data: Option<PathBuf>,
    },
}

#[derive(Args, Clone, Debug)]
struct ServerArgs {
    /// The server's URL; loopback only.
    #[arg(long, default_value = "http://127.0.0.1:4567")]
    endpoint: String,
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// SigV4 access key id.
    #[arg(long, default_value = "AKIDLEVEEBENCH")]
    access_key: String,
    /// SigV4 secret key.
    #[arg(long, default_value = "levee-bench-secret-key")]
    secret_key: String,
    /// Name of the server in results (`levee`, `ferrokinesis`, …).
    #[arg(long, default_value = "levee")]
    target: String,
    /// Server process id, to report its CPU and RSS (summed over its process tree).
    #[arg(long)]
    server_pid: Option<u32>,
    /// A Levee storage node's metrics (`http://ADMIN/metrics`): fsyncs and group commits over
    /// the measured interval are reported (is every group commit one fsync?).
    #[arg(long)]
    metrics_url: Option<String>,
    /// Shards in the stream the workload creates.
    #[arg(long, default_value_t = 4)]
    shards: u32,
    /// Seconds measured (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of warm-up, not measured.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Use this stream name instead of a fresh one.
    #[arg(long)]
    stream: Option<String>,
    /// Keep the stream afterwards (default: delete it).
    #[arg(long)]
    keep_stream: bool,
    /// Generator runtime threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Append the JSON result line to this file.
    #[arg(long)]
    json_out: Option<PathBuf>,
}

fn seconds(v: f64, what: &str) -> Result<Duration> {
    if !(0.0..=DURATION_S_MAX).contains(&v) {
        bail!("{what} must be 0..={DURATION_S_MAX} s");
    }
    Ok(Duration::from_secs_f64(v))
}

impl ServerArgs {
    fn common(&self) -> Result<Common> {
        if self.shards == 0 {
            bail!("--shards must be at least 1");
        }
        Ok(Common {
            target: self.target.clone(),
            server_pid: self.server_pid,
            metrics_url: self.metrics_url.clone(),
            shards: self.shards,
            duration: seconds(self.duration, "--duration")?,
            warmup: seconds(self.warmup, "--warmup")?,
            stream: self.stream.clone(),
            keep_stream: self.keep_stream,
        })
    }

    fn client(&self, pool: usize) -> Result<Kinesis> {
        Kinesis::new(
            &Endpoint {
                url: self.endpoint.clone(),
                region: self.region.clone(),
                access_key: self.access_key.clone(),
                secret_key: self.secret_key.clone(),
            },
            pool,
        )
    }

    fn runtime(&self) -> Result<tokio::runtime::Runtime> {
        Ok(tokio::runtime::Builder::new_multi_thread()
            .worker_threads(self.threads.clamp(1, 64))
            .enable_all()
            .build()?)
    }
}

/// Most polling readers of a `mixed` run (each a task with a pooled connection).
const READERS_MAX: usize = 10_000;

fn check_concurrency(c: usize) -> Result<()> {
    if c == 0 || c > CONCURRENCY_MAX {
        bail!("--concurrency must be 1..={CONCURRENCY_MAX}");
    }
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let mixed = matches!(cli.cmd, Cmd::Mixed { .. });
    let readers_per_shard = match cli.cmd {
        Cmd::Mixed {
            readers_per_shard, ..
        } => readers_per_shard.max(1),
        _ => 1,
    };
    match cli.cmd {
        Cmd::Put {
            server,
            op,
            concurrency,
            record_size,
            batch_size,
            slices,
        } => {
            if slices == 0 || slices > SLICES_MAX {
                bail!("--slices must be 1..={SLICES_MAX}");
            }
            check_concurrency(concurrency)?;
            let common = server.common()?;
            let k = server.client(concurrency + 4)?;
            let opts = PutOpts {
                op,
                concurrency,
                record_size,
                batch_size,
                slices,
            };
            let result = server
                .runtime()?
                .block_on(workload::put(&k, &common, &opts))?;
            result.emit(server.json_out.as_deref())
        }
        Cmd::Get {
            server,
            backlog_records,
            record_size,
            limit,
        } => {
            let common = server.common()?;
            let k = server.client(server.shards as usize + 16)?;
            let opts = GetOpts {
                backlog_records,
                record_size,
                limit,
            };
            let result = server
                .runtime()?
                .block_on(workload::get(&k, &common, &opts))?;
            result.emit(server.json_out.as_deref())
        }
        Cmd::E2e {
            server,
            consumer,
            rate,
            producers,
            record_size,
            poll_interval_ms,
            limit,
            batch_size,
        }
        | Cmd::Mixed {
            server,
            consumer,
            rate,
            producers,
            record_size,
            poll_interval_ms,
            limit,
            batch_size,
            ..
        } => {
            check_concurrency(producers)?;
            let common = server.common()?;
            let readers = server.shards as usize * readers_per_shard;
            if readers > READERS_MAX {
                bail!("--shards × --readers-per-shard must be at most {READERS_MAX}");
            }
            let k = server.client(producers + readers + 4)?;
            let poll_interval = seconds(poll_interval_ms / 1000.0, "--poll-interval-ms")?;
            let opts = E2eOpts {
                mixed,
                consumer,
                rate,
                producers,
                record_size,
                poll_interval,
                limit,
                batch_size,
                readers_per_shard,
            };
            let result = server
                .runtime()?
                .block_on(workload::e2e(&k, &common, &opts))?;
            result.emit(server.json_out.as_deref())
        }
        Cmd::Fsync {
            dir,
            duration,
            small_write_bytes,
            batch_bytes,
            json_out,
        } => {
            let opts = fsync::FsyncOpts {
                dir,
                duration: seconds(duration, "--duration")?,
                small_write_bytes,
                batch_bytes: batch_bytes.clamp(1, 64 << 20),
            };
            for r in fsync::run(&opts)? {
                r.emit(json_out.as_deref())?;
            }
            Ok(())
        }
        Cmd::Report {
            inputs,
            baseline,
            chart_data,
        } => {
            let results = report::load(&inputs)?;
            print!("{}", report::render(&results, &baseline));
            if let Some(path) = chart_data {
                std::fs::write(path, report::chart_tsv(&results, &baseline))?;
            }
            Ok(())
        }
    }
}
