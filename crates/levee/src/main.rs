//! `levee`: the Kinesis Data Streams–compatible server. `levee serve` runs the embedded node —
//! control plane, storage and front-end in one process, data on local disk.

mod config;
mod control;
mod credentials;
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
    /// Manage the access keys `serve` verifies request signatures against.
    Credentials(CredentialsArgs),
}

#[derive(Args)]
struct CredentialsArgs {
    /// The data directory the credentials live in (as for serve). [default: ./levee-data]
    #[arg(long, env = "LEVEE_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// The master key file that seals the secrets (as for serve).
    /// [default: $XDG_CONFIG_HOME/levee/master.key]
    #[arg(long, env = "LEVEE_MASTER_KEY_FILE", global = true)]
    master_key_file: Option<PathBuf>,
    #[command(subcommand)]
    command: CredentialsCmd,
}

#[derive(Subcommand)]
enum CredentialsCmd {
    /// Create an access key; its secret is printed once and stored only sealed.
    Create {
        /// The 12-digit account the key acts for.
        #[arg(long, env = "LEVEE_ACCOUNT_ID", default_value = "000000000000")]
        account: String,
        /// A name to recognise the key by.
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List access keys (ids, names, accounts, creation times; never secrets).
    List,
    /// Revoke an access key; a running server refuses it within a second.
    Revoke {
        /// The access key id.
        id: String,
    },
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
    /// Signature checking: `verify` (default whenever credentials exist) or `insecure` (default
    /// only on a loopback listener without credentials; required explicitly elsewhere).
    #[arg(long, env = "LEVEE_AUTH", value_enum)]
    auth: Option<config::AuthMode>,
    /// Per-shard throughput limits: `off` or `aws` (AWS's exact limits). [default: off]
    #[arg(long, env = "LEVEE_SHARD_LIMITS", value_enum)]
    shard_limits: Option<config::ShardLimits>,
    /// Requests served at once; more are shed at once with a retryable throttling error.
    /// [default: 1024]
    #[arg(long, env = "LEVEE_REQUESTS_IN_FLIGHT_MAX")]
    requests_in_flight_max: Option<usize>,
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
        Cmd::Credentials(args) => credentials_cmd(args),
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
            auth: args.auth,
            shard_limits: args.shard_limits,
            requests_in_flight_max: args.requests_in_flight_max,
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
        let auth = auth_mode(&cfg, addr)?;
        let start = std::time::Instant::now();
        let clock: levee_frontend::shard_limits::MillisClock =
            Arc::new(move || start.elapsed().as_millis() as u64);
        if cfg.shard_limits == config::ShardLimits::Aws {
            let _ = storage_adapter::SHARD_LIMITS.set(Arc::new(
                levee_frontend::shard_limits::ShardLimiter::new(clock.clone()),
            ));
            tracing::info!("shard and control-plane limits as AWS's (--shard-limits aws)");
        }
        tracing::info!(%addr, data_dir = %cfg.data_dir.display(), "levee listening");
        println!("levee listening on http://{addr}");
        let mut dispatch = control::service(node.clone(), node::iterator_key(&cfg.data_dir)?);
        if cfg.shard_limits == config::ShardLimits::Aws {
            dispatch = Arc::new(levee_frontend::limits::ControlRates::new(
                dispatch,
                cfg.account_id.clone(),
                clock,
            ));
        }
        let dispatch = Arc::new(levee_frontend::limits::Shedding::new(
            dispatch,
            cfg.requests_in_flight_max,
        ));
        let stats = Arc::new(HttpStats::default());
        levee_frontend::http::serve(
            listener,
            HttpConfig {
                auth,
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

/// Chooses how requests are authenticated: `verify` whenever credentials exist (or when asked),
/// `insecure` when asked, or by default on a loopback listener without credentials (announced);
/// a non-loopback listener without credentials refuses to start unless `--auth insecure` is given.
fn auth_mode(cfg: &ServeConfig, addr: SocketAddr) -> anyhow::Result<levee_frontend::auth::Auth> {
    use config::AuthMode;
    use levee_frontend::auth::{Auth, Verifier};
    let have_credentials = !credentials::list(&cfg.data_dir)?.is_empty();
    let mode = match cfg.auth {
        Some(m) => m,
        None if have_credentials => AuthMode::Verify,
        None if addr.ip().is_loopback() => AuthMode::Insecure,
        None => anyhow::bail!(
            "no credentials in {} and {addr} is not a loopback address: create credentials with \
             `levee credentials create`, or pass `--auth insecure` to serve without verifying signatures",
            cfg.data_dir.display()
        ),
    };
    Ok(match mode {
        AuthMode::Verify => {
            let store = credentials::Store::open(&cfg.data_dir, &cfg.master_key_file)?;
            tracing::info!(
                credentials = store.len(),
                "verifying request signatures (SigV4)"
            );
            store.watch();
            Auth::Verify(Arc::new(Verifier::new(store, cfg.region.clone())))
        }
        AuthMode::Insecure => {
            tracing::warn!(
                "authentication is off: request signatures are not verified (--auth insecure)"
            );
            println!("levee: authentication off (--auth insecure): signatures are not verified");
            Auth::Insecure
        }
    })
}

fn credentials_cmd(args: CredentialsArgs) -> anyhow::Result<()> {
    let d = ServeConfig::default();
    let data_dir = args.data_dir.unwrap_or(d.data_dir);
    let key_file = args.master_key_file.unwrap_or(d.master_key_file);
    // The same rule as serve: the key must not live in the data directory.
    ServeConfig::merge(
        FileConfig::default(),
        Overrides {
            data_dir: Some(data_dir.clone()),
            master_key_file: Some(key_file.clone()),
            ..Overrides::default()
        },
    )?;
    let master_key = || {
        levee_keys::load_or_create_master_key(&key_file)
            .with_context(|| format!("loading the master key {}", key_file.display()))
    };
    match args.command {
        CredentialsCmd::Create { account, name } => {
            let (entry, secret) = credentials::create(&data_dir, &master_key()?, &account, &name)?;
            println!("AccessKeyId: {}", entry.id);
            println!("SecretAccessKey: {secret}");
            println!("Account: {}", entry.account);
            eprintln!("The secret access key is shown only now; keep it safe.");
        }
        CredentialsCmd::List => {
            println!("ACCESS KEY ID\tACCOUNT\tCREATED\tNAME");
            for e in credentials::list(&data_dir)? {
                println!("{}\t{}\t{}\t{}", e.id, e.account, e.created, e.name);
            }
        }
        CredentialsCmd::Revoke { id } => {
            credentials::revoke(&data_dir, &master_key()?, &id)?;
            println!("revoked {id}");
        }
    }
    Ok(())
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
