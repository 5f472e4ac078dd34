//! `levee`: the Kinesis Data Streams–compatible server. `levee serve` runs the embedded node —
//! control plane, storage and front-end in one process, data on local disk.

mod config;
mod control;
mod node;
mod storage_adapter;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use levee_frontend::http::{HttpConfig, HttpStats};
use levee_frontend::subscribe::SubscribeConfig;

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
    /// Serve TLS (h2 or HTTP/1.1 by ALPN) on the API port with this PEM certificate chain, beside
    /// plain HTTP (detected from the first byte). Needs --tls-key.
    #[arg(long, env = "LEVEE_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key for --tls-cert.
    #[arg(long, env = "LEVEE_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Serve TLS with a certificate Levee generates for local use, kept in <data-dir>/tls
    /// (trust self-signed.crt there).
    #[arg(long, env = "LEVEE_TLS_SELF_SIGNED")]
    tls_self_signed: bool,
    /// How long a SubscribeToShard subscription lasts, in ms. [default: 300000]
    #[arg(long, env = "LEVEE_SUBSCRIPTION_DURATION_MS")]
    subscription_duration_ms: Option<u64>,
    /// Longest silence of an idle subscription, in ms. [default: 5000]
    #[arg(long, env = "LEVEE_SUBSCRIPTION_HEARTBEAT_MS")]
    subscription_heartbeat_ms: Option<u64>,
    /// A second subscription of a consumer to a shard within this many ms of the first is
    /// refused; later it takes over. [default: 5000]
    #[arg(long, env = "LEVEE_SUBSCRIPTION_TAKEOVER_MS")]
    subscription_takeover_ms: Option<u64>,
    /// A TOML file with any of the settings above (kebab-case keys); flags and environment
    /// variables override it.
    #[arg(long, env = "LEVEE_CONFIG")]
    config: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LEVEE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Cmd::Serve(args) => serve(args),
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
            tls_cert: args.tls_cert,
            tls_key: args.tls_key,
            tls_self_signed: args.tls_self_signed.then_some(true),
            subscription_duration_ms: args.subscription_duration_ms,
            subscription_heartbeat_ms: args.subscription_heartbeat_ms,
            subscription_takeover_ms: args.subscription_takeover_ms,
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
        let tls = tls_config(&cfg)?;
        let dispatch = control::service(
            node.clone(),
            node::iterator_key(&cfg.data_dir)?,
            SubscribeConfig {
                duration: Duration::from_millis(cfg.subscription_duration_ms),
                heartbeat: Duration::from_millis(cfg.subscription_heartbeat_ms),
                takeover_guard: Duration::from_millis(cfg.subscription_takeover_ms),
                ..SubscribeConfig::default()
            },
        );
        let stats = Arc::new(HttpStats::default());
        levee_frontend::http::serve(
            listener,
            HttpConfig {
                tls,
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

/// The TLS configuration the settings ask for, if any.
fn tls_config(cfg: &ServeConfig) -> anyhow::Result<Option<Arc<rustls::ServerConfig>>> {
    if let (Some(cert), Some(key)) = (&cfg.tls_cert, &cfg.tls_key) {
        let tls = levee_frontend::tls::server_config(cert, key)?;
        println!("levee serves TLS with {}", cert.display());
        return Ok(Some(tls));
    }
    if cfg.tls_self_signed {
        let host = cfg.listen.ip().to_string();
        let (tls, cert) = levee_frontend::tls::self_signed(&cfg.data_dir.join("tls"), &[host])?;
        tracing::info!(cert = %cert.display(), "serving TLS with a self-signed certificate");
        println!(
            "levee serves TLS with self-signed certificate {}",
            cert.display()
        );
        return Ok(Some(tls));
    }
    Ok(None)
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
