//! `levee`: the Kinesis Data Streams–compatible server. `levee serve` runs the embedded node —
//! control plane, storage and front-end in one process, data on local disk. `levee stream`,
//! `put` and `tail` are a client for any Kinesis endpoint (`cli/`).

/// mimalloc: the request path allocates per record (parsed JSON, decoded data), and glibc's
/// allocator took about a third of the server's CPU on PutRecords (bench/README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod admin;
mod autoscale;
mod cli;
mod config;
mod control;
mod credentials;
mod fleet;
mod map_publish;
mod node;
mod storage_adapter;
mod voters;

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
    Serve(Box<ServeArgs>),
    /// Show a node's status (from its admin listener's /status.json).
    Status(StatusArgs),
    /// Manage the access keys `serve` verifies request signatures against.
    Credentials(CredentialsArgs),
    /// Create, list, describe, delete and reshard streams (on any Kinesis endpoint).
    Stream(cli::stream::StreamArgs),
    /// Put records: from arguments, or one per line of a file or stdin.
    Put(cli::put::PutArgs),
    /// Print a stream's records as they arrive, from all shards, following reshards.
    Tail(cli::tail::TailArgs),
    /// Operator commands sent to a node's admin listener.
    Admin(AdminArgs),
}

#[derive(Args)]
struct AdminArgs {
    /// The node's admin listener.
    #[arg(
        long,
        env = "LEVEE_ADMIN",
        default_value = "http://127.0.0.1:4590",
        global = true
    )]
    admin: String,
    #[command(subcommand)]
    command: AdminCmd,
}

#[derive(Subcommand)]
enum AdminCmd {
    /// Swaps in a shard map the front-end holds because it removes too much (see /status).
    ApproveMap { version: u64 },
    /// Shows or changes the control plane's Raft voters (through any voter).
    Voters(VotersArgs),
    /// Before adding nodes: whether any node's threads, fds or connections would reach its
    /// alarm threshold (nodes from the local map, limits from each node's /status.json).
    /// Exits with status 1 when a node is flagged.
    CapacityCheck(CapacityCheckArgs),
}

#[derive(Args)]
struct VotersArgs {
    /// Any voter's control listener.
    #[arg(long, env = "LEVEE_CONTROL_VOTER", default_value = "127.0.0.1:4591")]
    control: std::net::SocketAddr,
    #[command(subcommand)]
    action: VotersCmd,
}

#[derive(Subcommand)]
enum VotersCmd {
    /// The voters, learners and leader.
    Show,
    /// Adds a voter (started with `--voter-id ID`, an id never used before): it catches up as
    /// a learner, then votes.
    Add {
        #[arg(long)]
        id: u64,
        /// Its control listener, ip:port.
        #[arg(long)]
        addr: std::net::SocketAddr,
    },
    /// Removes a voter (dead, or replaced by one just added).
    Remove {
        #[arg(long)]
        id: u64,
    },
}

#[derive(Args)]
struct CapacityCheckArgs {
    /// Storage nodes to add.
    #[arg(long, default_value_t = 0)]
    add_storage: u64,
    /// Front-ends to add.
    #[arg(long, default_value_t = 0)]
    add_frontends: u64,
    /// The cell the new nodes join (its caps are checked); needed when the fleet has several.
    #[arg(long)]
    cell: Option<String>,
    /// A fleet node's data directory: its persisted shard map lists the nodes.
    #[arg(long, env = "LEVEE_DATA_DIR", default_value = "./levee-data")]
    data_dir: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct StatusArgs {
    /// The node's admin listener.
    #[arg(long, env = "LEVEE_ADMIN", default_value = "http://127.0.0.1:4590")]
    admin: String,
    /// Print the raw JSON instead of the summary.
    #[arg(long)]
    json: bool,
    /// Every node of the fleet: the nodes from the local persisted shard map (--data-dir),
    /// each asked on its admin listener; needs no control plane. Unreachable nodes show as down.
    #[arg(long)]
    fleet: bool,
    /// With --fleet: a fleet node's data directory (its `map` generations list the nodes).
    #[arg(long, env = "LEVEE_DATA_DIR", default_value = "./levee-data")]
    data_dir: PathBuf,
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
    /// Hold (and alarm) a shard-map change that removes more than this fraction of the live
    /// open shards or nodes, until `levee admin approve-map VERSION` (default 0.25).
    #[arg(long, env = "LEVEE_MAP_REMOVAL_HOLD_FRACTION")]
    map_removal_hold_fraction: Option<f64>,
    /// Never hold changes to maps with fewer open shards than this (default 8).
    #[arg(long, env = "LEVEE_MAP_REMOVAL_HOLD_MIN_SHARDS")]
    map_removal_hold_min_shards: Option<usize>,
    /// How often the front-end fetches a full map snapshot, deltas or not (default 60000, ±20 %).
    #[arg(long, env = "LEVEE_MAP_SNAPSHOT_PERIOD_MS")]
    map_snapshot_period_ms: Option<u64>,
    /// ON_DEMAND autoscaling: a shard averaging >= 80 % of its capacity over this window is
    /// split, in ms. [default: 60000]
    #[arg(long, env = "LEVEE_AUTOSCALE_WINDOW_MS")]
    autoscale_window_ms: Option<u64>,
    /// ON_DEMAND autoscaling: adjacent shards each under 25 % of capacity this long are
    /// merged, in ms. [default: 900000]
    #[arg(long, env = "LEVEE_AUTOSCALE_QUIET_MS")]
    autoscale_quiet_ms: Option<u64>,
    /// ON_DEMAND autoscaling: a shard's write capacity in bytes/s. [default: 1048576]
    #[arg(long, env = "LEVEE_AUTOSCALE_SHARD_BYTES_PER_SEC")]
    autoscale_shard_bytes_per_sec: Option<u64>,
    /// ON_DEMAND autoscaling: a shard's write capacity in records/s. [default: 1000]
    #[arg(long, env = "LEVEE_AUTOSCALE_SHARD_RECORDS_PER_SEC")]
    autoscale_shard_records_per_sec: Option<u64>,
    /// ON_DEMAND autoscaling: merges stop at this many open shards (AWS's 4 MiB/s floor).
    /// [default: 4]
    #[arg(long, env = "LEVEE_AUTOSCALE_MIN_SHARDS")]
    autoscale_min_shards: Option<u32>,
    /// ON_DEMAND autoscaling: splits stop at this many open shards (AWS's 200 MiB/s on-demand
    /// write limit outside its three largest regions). [default: 200]
    #[arg(long, env = "LEVEE_AUTOSCALE_MAX_SHARDS")]
    autoscale_max_shards: Option<u32>,
    /// The roles this process runs: `all` (the embedded node) or any of `control`, `storage`,
    /// `frontend`, comma-separated. [default: all]
    #[arg(long, env = "LEVEE_ROLE")]
    role: Option<String>,
    /// The control role's inter-node listener (forwarded calls, registrations, the map feed).
    /// [default: 127.0.0.1:4591]
    #[arg(long, env = "LEVEE_CONTROL_LISTEN")]
    control_listen: Option<SocketAddr>,
    /// The storage role's inter-node listener (the storage protocol); it is also the address
    /// the node registers, so it must be one other nodes can reach. [default: 127.0.0.1:4592]
    #[arg(long, env = "LEVEE_STORAGE_LISTEN")]
    storage_listen: Option<SocketAddr>,
    /// The control plane's address(es), comma-separated, for storage and front-end roles.
    #[arg(long, env = "LEVEE_CONTROL", value_delimiter = ',')]
    control: Option<Vec<SocketAddr>>,
    /// The cell this node belongs to. [default: cell-1]
    #[arg(long, env = "LEVEE_CELL")]
    cell: Option<String>,
    /// How often storage nodes and front-ends renew their registration, in ms. [default: 10000]
    #[arg(long, env = "LEVEE_LEASE_RENEW_MS")]
    lease_renew_ms: Option<u64>,
    /// A control plane's cap on registered storage nodes per cell; past it registration is
    /// refused. [default: 1024]
    #[arg(long, env = "LEVEE_STORAGE_NODES_PER_CELL_MAX")]
    storage_nodes_per_cell_max: Option<u32>,
    /// A control plane's cap on registered front-ends per cell. [default: 256]
    #[arg(long, env = "LEVEE_FRONTENDS_PER_CELL_MAX")]
    frontends_per_cell_max: Option<u32>,
    /// A control-plane node's Raft id among the voters (never reuse a dead voter's id).
    /// [default: 1]
    #[arg(long, env = "LEVEE_VOTER_ID")]
    voter_id: Option<u64>,
    /// The control plane's initial voters, comma-separated ID=ADDR (their control listeners),
    /// e.g. 1=10.0.0.1:4591,2=10.0.0.2:4591,3=10.0.0.3:4591. Unset: one voter, no peers. A
    /// voter whose id is not listed waits to be added (`levee admin voters add`).
    #[arg(long, env = "LEVEE_VOTERS", value_delimiter = ',')]
    voters: Option<Vec<String>>,
    /// A fleet front-end's cap on connections to storage nodes, whatever their number (least
    /// recently used evicted). [default: 64]
    #[arg(long, env = "LEVEE_STORAGE_CONNECTIONS_MAX")]
    storage_connections_max: Option<usize>,
    /// A control plane's cap on open inter-node connections. [default: 1024]
    #[arg(long, env = "LEVEE_CONTROL_CONNECTIONS_MAX")]
    control_connections_max: Option<usize>,
    /// A control plane's cap on map long polls held at once (one per following node); past it,
    /// 429 with a jittered retry hint. [default: 1024]
    #[arg(long, env = "LEVEE_MAP_POLLS_MAX")]
    map_polls_max: Option<usize>,
}

/// Log lines waiting for stderr; when it is blocked, more are dropped and counted.
pub const LOG_QUEUE_LINES_MAX: usize = 8_192;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The client commands log only warnings unless asked: their output is the point.
    let default_log = match cli.command {
        Cmd::Serve(_) => "info",
        _ => "warn,aws_config=error",
    };
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
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_log)),
        )
        .with_writer(writer)
        .init();
    match cli.command {
        Cmd::Serve(args) => serve(*args, log_drops),
        Cmd::Status(args) if args.fleet => admin::fleet_view::run(&args.data_dir, args.json),
        Cmd::Status(args) => admin::term::run(&args.admin, args.json),
        Cmd::Credentials(args) => credentials_cmd(args),
        Cmd::Stream(args) => cli::run(cli::stream::run(args)),
        Cmd::Put(args) => cli::run(cli::put::run(args)),
        Cmd::Tail(args) => cli::run(cli::tail::run(args)),
        Cmd::Admin(args) => match args.command {
            AdminCmd::ApproveMap { version } => map_publish::approve_cmd(&args.admin, version),
            AdminCmd::Voters(v) => {
                use levee_raft::cluster::MembershipChange;
                let change = match v.action {
                    VotersCmd::Show => MembershipChange::Show,
                    VotersCmd::Add { id, addr } => MembershipChange::AddVoter {
                        id,
                        addr: addr.to_string(),
                    },
                    VotersCmd::Remove { id } => MembershipChange::RemoveVoter { id },
                };
                cli::run(voters::run(v.control, change))
            }
            AdminCmd::CapacityCheck(c) => admin::capacity::run(
                &c.data_dir,
                admin::capacity::Plan {
                    add_storage: c.add_storage,
                    add_frontends: c.add_frontends,
                    cell: c.cell,
                },
                c.json,
            ),
        },
    }
}

/// Prints a line on stdout for whoever started us; a closed stdout is not an error.
pub(crate) fn announce(line: &str) {
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
            tls_cert: args.tls_cert,
            tls_key: args.tls_key,
            tls_self_signed: args.tls_self_signed.then_some(true),
            subscription_duration_ms: args.subscription_duration_ms,
            subscription_heartbeat_ms: args.subscription_heartbeat_ms,
            subscription_takeover_ms: args.subscription_takeover_ms,
            admin_listen: args.admin_listen,
            connections_max: args.connections_max,
            status_sample_ms: args.status_sample_ms,
            metrics_push_url: args.metrics_push_url,
            metrics_push_interval_ms: args.metrics_push_interval_ms,
            auth: args.auth,
            shard_limits: args.shard_limits,
            requests_in_flight_max: args.requests_in_flight_max,
            map_removal_hold_fraction: args.map_removal_hold_fraction,
            map_removal_hold_min_shards: args.map_removal_hold_min_shards,
            map_snapshot_period_ms: args.map_snapshot_period_ms,
            autoscale_window_ms: args.autoscale_window_ms,
            autoscale_quiet_ms: args.autoscale_quiet_ms,
            autoscale_shard_bytes_per_sec: args.autoscale_shard_bytes_per_sec,
            autoscale_shard_records_per_sec: args.autoscale_shard_records_per_sec,
            autoscale_min_shards: args.autoscale_min_shards,
            autoscale_max_shards: args.autoscale_max_shards,
            role: args.role,
            control_listen: args.control_listen,
            storage_listen: args.storage_listen,
            control: args.control,
            cell: args.cell,
            lease_renew_ms: args.lease_renew_ms,
            storage_nodes_per_cell_max: args.storage_nodes_per_cell_max,
            frontends_per_cell_max: args.frontends_per_cell_max,
            voter_id: args.voter_id,
            voters: args.voters,
            storage_connections_max: args.storage_connections_max,
            control_connections_max: args.control_connections_max,
            map_polls_max: args.map_polls_max,
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
        if cfg.roles.embedded() {
            run_embedded(cfg, shared).await
        } else {
            run_roles(cfg, shared).await
        }
    })
}

/// The shard limiter `--shard-limits aws` asks for, and the clock it runs on.
fn shard_limiter(
    cfg: &ServeConfig,
) -> (
    levee_frontend::shard_limits::MillisClock,
    Option<Arc<levee_frontend::shard_limits::ShardLimiter>>,
) {
    let start = std::time::Instant::now();
    let clock: levee_frontend::shard_limits::MillisClock =
        Arc::new(move || start.elapsed().as_millis() as u64);
    let limiter = (cfg.shard_limits == config::ShardLimits::Aws).then(|| {
        tracing::info!("shard and control-plane limits as AWS's (--shard-limits aws)");
        Arc::new(levee_frontend::shard_limits::ShardLimiter::new(
            clock.clone(),
        ))
    });
    (clock, limiter)
}

/// Serves the Kinesis API on `listener` with `dispatch` behind the same admission layers in
/// every mode (control-plane rates, shedding, metrics), until SIGINT or SIGTERM.
async fn serve_api(
    cfg: &ServeConfig,
    listener: tokio::net::TcpListener,
    mut dispatch: Arc<dyn levee_frontend::http::Dispatch>,
    clock: levee_frontend::shard_limits::MillisClock,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    let auth = auth_mode(cfg, addr)?;
    tracing::info!(%addr, data_dir = %cfg.data_dir.display(), "levee listening");
    let tls = tls_config(cfg)?;
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
    announce(&format!("levee listening on http://{addr}"));
    let dispatch = Arc::new(levee_frontend::metrics::MeteredDispatch::new(dispatch));
    let stats = Arc::new(HttpStats::default());
    levee_frontend::http::serve(
        listener,
        HttpConfig {
            tls,
            connections_max: cfg.connections_max,
            auth,
            ..HttpConfig::default()
        },
        dispatch,
        stats,
        shutdown_signal(),
    )
    .await;
    tracing::info!("shutting down");
    Ok(())
}

fn subscribe_config(cfg: &ServeConfig) -> SubscribeConfig {
    SubscribeConfig {
        duration: Duration::from_millis(cfg.subscription_duration_ms),
        heartbeat: Duration::from_millis(cfg.subscription_heartbeat_ms),
        takeover_guard: Duration::from_millis(cfg.subscription_takeover_ms),
        ..SubscribeConfig::default()
    }
}

/// The embedded node: all three roles in one process, no inter-node listeners.
async fn run_embedded(cfg: ServeConfig, shared: Arc<admin::Shared>) -> anyhow::Result<()> {
    let node = node::Node::start(cfg.clone(), true).await?;
    let _ = shared.node.set(node.clone());
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("binding {}", cfg.listen))?;
    let _ = shared.api_addr.set(listener.local_addr()?);
    let (clock, shard_limits) = shard_limiter(&cfg);
    let dispatch = control::service(
        node.clone(),
        node::iterator_key(&cfg.data_dir)?,
        subscribe_config(&cfg),
        shard_limits,
    )?;
    serve_api(&cfg, listener, dispatch, clock).await?;
    node.checkpoint().await
}

async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the {what} listener {addr}"))
}

/// Fleet roles (`--role control|storage|frontend`, combinable): each role's components on
/// their own, talking over the inter-node listeners (see `fleet.rs`).
async fn run_roles(cfg: ServeConfig, shared: Arc<admin::Shared>) -> anyhow::Result<()> {
    let mut control_addrs = cfg.control.clone();
    let mut tasks = tokio::task::JoinSet::new();
    let mut node = None;
    let mut control_listen = None;
    if cfg.roles.control {
        let n = node::Node::start(cfg.clone(), false).await?;
        let _ = shared.node.set(n.clone());
        let listener = bind(cfg.control_listen, "control").await?;
        let addr = listener.local_addr()?;
        if control_addrs.is_empty() {
            control_addrs.push(addr);
        }
        tracing::info!(%addr, "control plane listening");
        announce(&format!("control listening on {addr}"));
        control_listen = Some(addr);
        let control = control::local_control(n.clone())?;
        let limits = levee_rpc::control::ControlServerConfig {
            connections_max: cfg.control_connections_max,
            map_polls_in_flight_max: cfg.map_polls_max,
            ..levee_rpc::control::ControlServerConfig::default()
        };
        tasks.spawn(fleet::serve_control(n.clone(), control, listener, limits));
        node = Some(n);
    }
    let (clock, shard_limits) = shard_limiter(&cfg);
    let remote = fleet::remote_control(&cfg, control_addrs);
    if let Some(addr) = control_listen.filter(|_| !cfg.roles.storage && !cfg.roles.frontend) {
        // A control node lists itself in the map, so the fleet view finds it (a process with
        // another role is listed under that role, with the same admin listener).
        fleet::keep_registered(
            remote.clone(),
            levee_rpc::control::Registration {
                id: fleet::node_id(&cfg.data_dir)?,
                role: levee_map::NodeRole::Control,
                address: addr.to_string(),
                cell: cfg.cell.clone(),
                admin: shared.admin_addr.to_string(),
            },
            cfg.lease_renew_ms,
        );
    }
    if cfg.roles.storage {
        let listener = bind(cfg.storage_listen, "storage").await?;
        let addr = listener.local_addr()?;
        anyhow::ensure!(
            !addr.ip().is_unspecified(),
            "--storage-listen {addr}: a storage node registers its listener's address, so it must be one other nodes can reach, not a wildcard"
        );
        let storage = fleet::StorageNode::start(&cfg, remote.clone()).await?;
        if shared.node.get().is_none() {
            let _ = shared
                .fleet_map
                .set((storage.followed.clone(), storage.keeper.clone()));
        }
        fleet::keep_registered(
            remote.clone(),
            levee_rpc::control::Registration {
                id: storage.id,
                role: levee_map::NodeRole::Storage,
                address: addr.to_string(),
                cell: cfg.cell.clone(),
                admin: shared.admin_addr.to_string(),
            },
            cfg.lease_renew_ms,
        );
        tracing::info!(%addr, id = storage.id, "storage node listening");
        announce(&format!("storage listening on {addr}"));
        tasks.spawn(storage.serve(listener, shard_limits.clone()));
    }
    if cfg.roles.frontend {
        let maps = fleet::FrontendMaps::start(&cfg, remote.clone())?;
        let _ = shared
            .fleet_map
            .set((maps.maps.clone(), maps.keeper.clone()));
        let listener = bind(cfg.listen, "API").await?;
        let addr = listener.local_addr()?;
        let _ = shared.api_addr.set(addr);
        fleet::keep_registered(
            remote.clone(),
            levee_rpc::control::Registration {
                id: maps.id,
                role: levee_map::NodeRole::Frontend,
                address: addr.to_string(),
                cell: cfg.cell.clone(),
                admin: shared.admin_addr.to_string(),
            },
            cfg.lease_renew_ms,
        );
        let dispatch = control::fleet_service(&cfg, &maps, remote.clone(), subscribe_config(&cfg))?;
        serve_api(&cfg, listener, dispatch, clock).await?;
    } else {
        shutdown_signal().await;
        tracing::info!("shutting down");
    }
    tasks.abort_all();
    if let Some(n) = node {
        n.checkpoint().await?;
    }
    Ok(())
}

/// The TLS configuration the settings ask for, if any.
fn tls_config(cfg: &ServeConfig) -> anyhow::Result<Option<Arc<rustls::ServerConfig>>> {
    if let (Some(cert), Some(key)) = (&cfg.tls_cert, &cfg.tls_key) {
        let tls = levee_frontend::tls::server_config(cert, key)?;
        announce(&format!("levee serves TLS with {}", cert.display()));
        return Ok(Some(tls));
    }
    if cfg.tls_self_signed {
        let host = cfg.listen.ip().to_string();
        let (tls, cert) = levee_frontend::tls::self_signed(&cfg.data_dir.join("tls"), &[host])?;
        tracing::info!(cert = %cert.display(), "serving TLS with a self-signed certificate");
        announce(&format!(
            "levee serves TLS with self-signed certificate {}",
            cert.display()
        ));
        return Ok(Some(tls));
    }
    Ok(None)
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
            announce("levee: authentication off (--auth insecure): signatures are not verified");
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
