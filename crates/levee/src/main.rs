//! `levee`: the Kinesis Data Streams–compatible server. `levee serve` runs the embedded node —
//! control plane, storage and front-end in one process, data on local disk.

mod admin;
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
    Serve(Box<ServeArgs>),
    /// Show a node's status (from its admin listener's /status.json).
    Status(StatusArgs),
}

#[derive(Args)]
struct StatusArgs {
    /// The node's admin listener.
    #[arg(long, env = "LEVEE_ADMIN", default_value = "http://127.0.0.1:4590")]
    admin: String,
    /// Print the raw JSON instead of the summary.
    #[arg(long)]
    json: bool,
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
    /// Address of the admin listener (metrics, health, status page); port 0 picks a free one.
    /// [default: 127.0.0.1:4590]
    #[arg(long, env = "LEVEE_ADMIN_LISTEN")]
    admin_listen: Option<SocketAddr>,
    /// Connections the API listener serves at once. [default: 4096]
    #[arg(long, env = "LEVEE_CONNECTIONS_MAX")]
    connections_max: Option<usize>,
    /// How often the status page's ring stores a sample, in ms (180 are kept). [default: 60000]
    #[arg(long, env = "LEVEE_STATUS_SAMPLE_MS")]
    status_sample_ms: Option<u64>,
    /// Push metrics as OTLP/HTTP JSON to this http:// URL (lossy: dropped when the sink is slow).
    #[arg(long, env = "LEVEE_METRICS_PUSH_URL")]
    metrics_push_url: Option<String>,
    /// How often metrics are pushed, in ms. [default: 10000]
    #[arg(long, env = "LEVEE_METRICS_PUSH_INTERVAL_MS")]
    metrics_push_interval_ms: Option<u64>,
}

/// Log lines waiting for stderr; when it is blocked, more are dropped and counted.
pub const LOG_QUEUE_LINES_MAX: usize = 8_192;

fn main() -> anyhow::Result<()> {
    // Logs go through a bounded, lossy queue to a writer thread: a blocked stderr drops (and
    // counts) lines instead of blocking the request path.
    let (writer, _log_guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(LOG_QUEUE_LINES_MAX)
        .thread_name("levee-log")
        .finish(std::io::stderr());
    let log_drops = writer.error_counter();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LEVEE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(writer)
        .init();
    match Cli::parse().command {
        Cmd::Serve(args) => serve(*args, log_drops),
        Cmd::Status(args) => admin::term::run(&args.admin, args.json),
    }
}

/// Prints a line on stdout for whoever started us; a closed stdout is not an error.
fn announce(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn serve(
    args: ServeArgs,
    log_drops: tracing_appender::non_blocking::ErrorCounter,
) -> anyhow::Result<()> {
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
            admin_listen: args.admin_listen,
            connections_max: args.connections_max,
            status_sample_ms: args.status_sample_ms,
            metrics_push_url: args.metrics_push_url,
            metrics_push_interval_ms: args.metrics_push_interval_ms,
        },
    )?;
    let prom = admin::install_recorder()?;
    admin::resources::raise_nofile();
    admin::preflight(&cfg)?;
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("creating data directory {}", cfg.data_dir.display()))?;
    let admin_listener = std::net::TcpListener::bind(cfg.admin_listen)
        .with_context(|| format!("binding the admin listener {}", cfg.admin_listen))?;
    let admin_addr = admin_listener.local_addr()?;
    let shared = Arc::new(admin::Shared::new(
        cfg.clone(),
        prom,
        admin_addr,
        Some(log_drops),
    ));
    admin::start(admin_listener, shared.clone())?;
    tracing::info!(addr = %admin_addr, "admin listening");
    announce(&format!("admin listening on http://{admin_addr}"));
    let rt = levee_storage::runtime::build(cfg.worker_threads, cfg.blocking_threads)
        .context("building the runtime")?;
    rt.block_on(async move {
        let node = node::Node::start(cfg.clone()).await?;
        let _ = shared.node.set(node.clone());
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .with_context(|| format!("binding {}", cfg.listen))?;
        let addr = listener.local_addr()?;
        let _ = shared.api_addr.set(addr);
        tracing::info!(%addr, data_dir = %cfg.data_dir.display(), "levee listening");
        announce(&format!("levee listening on http://{addr}"));
        let dispatch = control::service(node.clone(), node::iterator_key(&cfg.data_dir)?);
        let dispatch = Arc::new(levee_frontend::metrics::MeteredDispatch::new(dispatch));
        let stats = Arc::new(HttpStats::default());
        levee_frontend::http::serve(
            listener,
            HttpConfig {
                connections_max: cfg.connections_max,
                ..HttpConfig::default()
            },
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
