//! `levee`: the Kinesis Data Streams–compatible server. `levee serve` runs the embedded node —
//! control plane, storage and front-end in one process, data on local disk. `levee stream`,
//! `put` and `tail` are a client for any Kinesis endpoint (`cli/`).

mod cli;
mod config;
mod control;
mod node;
mod storage_adapter;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use levee_frontend::http::{HttpConfig, HttpStats};

use crate::config::{FileConfig, Overrides, ServeConfig};

#[derive(Parser)]
#[command(
    name = "levee",
    version,
    about = "A Kinesis Data Streams-compatible streaming service"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the embedded node: the Kinesis API on one port, data on local disk.
    Serve(ServeArgs),
    /// Create, list, describe, delete and reshard streams (on any Kinesis endpoint).
    Stream(cli::stream::StreamArgs),
    /// Put records: from arguments, or one per line of a file or stdin.
    Put(cli::put::PutArgs),
    /// Print a stream's records as they arrive, from all shards, following reshards.
    Tail(cli::tail::TailArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on (HTTP/1.1 and h2c on one port). [default: 127.0.0.1:4567]
    #[arg(long, env = "LEVEE_LISTEN")]
    listen: Option<SocketAddr>,
    /// Directory for all data (storage log and segments, catalog). [default: ./levee-data]
    #[arg(long, env = "LEVEE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The 12-digit AWS account id in ARNs and messages. [default: 000000000000]
    #[arg(long, env = "LEVEE_ACCOUNT_ID")]
    account_id: Option<String>,
    /// The region in ARNs. [default: us-east-1]
    #[arg(long, env = "LEVEE_REGION")]
    region: Option<String>,
    /// How long a new stream stays CREATING and a deleted one DELETING, in ms. [default: 500]
    #[arg(long, env = "LEVEE_STREAM_TRANSITION_MS")]
    stream_transition_ms: Option<u64>,
    /// Worker threads of the request runtime. [default: number of cores]
    #[arg(long, env = "LEVEE_WORKER_THREADS")]
    worker_threads: Option<usize>,
    /// Cap on blocking threads (storage reads). [default: 16]
    #[arg(long, env = "LEVEE_BLOCKING_THREADS")]
    blocking_threads: Option<usize>,
    /// The master key file (32 raw bytes, created 0600 when first needed); it must live outside
    /// the data directory. [default: $XDG_CONFIG_HOME/levee/master.key]
    #[arg(long, env = "LEVEE_MASTER_KEY_FILE")]
    master_key_file: Option<PathBuf>,
    /// A TOML file with any of the settings above (kebab-case keys); flags and environment
    /// variables override it.
    #[arg(long, env = "LEVEE_CONFIG")]
    config: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The client commands log only warnings unless asked: their output is the point.
    let default_log = match cli.command {
        Cmd::Serve(_) => "info",
        _ => "warn,aws_config=error",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LEVEE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_log)),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Cmd::Serve(args) => serve(args),
        Cmd::Stream(args) => cli::run(cli::stream::run(args)),
        Cmd::Put(args) => cli::run(cli::put::run(args)),
        Cmd::Tail(args) => cli::run(cli::tail::run(args)),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let file = match &args.config {
        Some(p) => FileConfig::load(p)?,
        None => FileConfig::default(),
    };
    let cfg = ServeConfig::merge(
        file,
        Overrides {
            listen: args.listen,
            data_dir: args.data_dir,
            account_id: args.account_id,
            region: args.region,
            stream_transition_ms: args.stream_transition_ms,
            worker_threads: args.worker_threads,
            blocking_threads: args.blocking_threads,
            master_key_file: args.master_key_file,
        },
    )?;
    let rt = levee_storage::runtime::build(cfg.worker_threads, cfg.blocking_threads)
        .context("building the runtime")?;
    rt.block_on(async move {
        let node = node::Node::start(cfg.clone()).await?;
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .with_context(|| format!("binding {}", cfg.listen))?;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, data_dir = %cfg.data_dir.display(), "levee listening");
        println!("levee listening on http://{addr}");
        let dispatch = control::service(node.clone(), node::iterator_key(&cfg.data_dir)?);
        let stats = Arc::new(HttpStats::default());
        levee_frontend::http::serve(
            listener,
            HttpConfig::default(),
            dispatch,
            stats,
            shutdown_signal(),
        )
        .await;
        tracing::info!("shutting down");
        node.checkpoint().await
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        _ = term.recv() => tracing::info!("SIGTERM received"),
    }
}
