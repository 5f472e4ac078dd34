//! `levee serve` configuration: defaults, overridden by an optional TOML file, overridden by
//! environment variables (`LEVEE_*`), overridden by command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

/// Worker threads of the request runtime by default: the number of cores.
pub fn worker_threads_default() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Blocking-pool threads by default (storage reads). tokio's own default is 512 (rule R1).
pub const BLOCKING_THREADS_DEFAULT: usize = 16;

/// `--auth`: whether request signatures are verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMode {
    /// Verify SigV4 against the stored credentials (the default whenever credentials exist).
    Verify,
    /// Check only the signature's shape (the default on a loopback listener without credentials).
    Insecure,
}

/// `--shard-limits`: whether AWS's per-shard throughput limits are enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ShardLimits {
    /// Throughput is bounded by the hardware and by admission control.
    #[default]
    Off,
    /// AWS's limits: 1 MiB/s and 1,000 records/s written, 2 MiB/s and 5 GetRecords/s read per shard.
    Aws,
}

/// Requests served at once before new ones are shed (answered at once with a retryable error).
pub const REQUESTS_IN_FLIGHT_MAX_DEFAULT: usize = 1024;

/// The settings `levee serve` runs with, after merging every source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub account_id: String,
    pub region: String,
    /// How long a new stream stays CREATING (and a deleted one DELETING).
    pub stream_transition_ms: u64,
    pub worker_threads: usize,
    pub blocking_threads: usize,
    /// The master key file (outside the data directory): wraps data keys and stored secrets.
    pub master_key_file: PathBuf,
    /// TLS on the API port from these PEM files (both or neither).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// TLS on the API port with a certificate Levee generates (under `<data-dir>/tls`).
    pub tls_self_signed: bool,
    /// SubscribeToShard: lifetime, idle heartbeat and takeover guard, in ms (AWS: 5 min, 5 s, 5 s).
    pub subscription_duration_ms: u64,
    pub subscription_heartbeat_ms: u64,
    pub subscription_takeover_ms: u64,
    /// The admin listener (metrics, health, status page).
    pub admin_listen: SocketAddr,
    /// Connections the front-end serves at once.
    pub connections_max: usize,
    /// How often a sample is written to the status page's ring (one a minute: 3 hours).
    pub status_sample_ms: u64,
    /// Where to push metrics (OTLP/HTTP JSON), if anywhere.
    pub metrics_push_url: Option<String>,
    pub metrics_push_interval_ms: u64,
    /// `None`: chosen at start-up from the credentials and the listener (see `main.rs`).
    pub auth: Option<AuthMode>,
    pub shard_limits: ShardLimits,
    pub requests_in_flight_max: usize,
    /// A map change removing more than this many thousandths of the live open shards or nodes
    /// is held until `levee admin approve-map` (`--map-removal-hold-fraction`, 0.25).
    pub map_removal_hold_permille: u32,
    /// Maps with fewer open shards than this are never held.
    pub map_removal_hold_min_shards: usize,
    /// The front-end fetches a full map snapshot about this often (±20 %), deltas or not.
    pub map_snapshot_period_ms: u64,
    /// ON_DEMAND autoscaling (`autoscale.rs`): a shard averaging at least 80 % of its capacity
    /// (`autoscale_shard_*_per_sec`) over `autoscale_window_ms` is split; two adjacent shards
    /// each under 25 % for `autoscale_quiet_ms` are merged; open shards stay within
    /// `autoscale_min_shards..=autoscale_max_shards`.
    pub autoscale_window_ms: u64,
    pub autoscale_quiet_ms: u64,
    pub autoscale_shard_bytes_per_sec: u64,
    pub autoscale_shard_records_per_sec: u64,
    pub autoscale_min_shards: u32,
    pub autoscale_max_shards: u32,
    /// The roles this process runs (`--role`; all three by default: the embedded node).
    pub roles: Roles,
    /// A control-plane role's inter-node listener (forwarded calls, registrations, the map feed).
    pub control_listen: SocketAddr,
    /// A storage role's inter-node listener (the storage protocol).
    pub storage_listen: SocketAddr,
    /// The control plane's addresses, for storage and front-end roles (tried in turn).
    pub control: Vec<SocketAddr>,
    /// The cell this node belongs to (registration checks its caps).
    pub cell: String,
    /// How often a storage node or front-end renews its registration, in ms.
    pub lease_renew_ms: u64,
    /// A control plane's hard caps on registered nodes per cell (R8): past them, registration
    /// is refused with LimitExceededException.
    pub storage_nodes_per_cell_max: u32,
    pub frontends_per_cell_max: u32,
    /// A control-plane node's Raft id (`--voter-id`; ids are never reused).
    pub voter_id: u64,
    /// The control plane's initial voters, id → control listener (`--voters 1=ADDR,2=ADDR,...`).
    /// Empty: a single voter with no peers (the default).
    pub voters: std::collections::BTreeMap<u64, SocketAddr>,
    /// A fleet front-end's cap on connections to storage nodes (its least-recently-used pool,
    /// R2): whatever the number of storage nodes, it holds at most this many.
    pub storage_connections_max: usize,
    /// A control plane's cap on open inter-node connections (its control listener).
    pub control_connections_max: usize,
    /// A control plane's cap on map long polls held at once (one per following node); past it,
    /// 429 with a jittered retry hint.
    pub map_polls_max: usize,
}

/// `--role`: which of the three roles a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub control: bool,
    pub storage: bool,
    pub frontend: bool,
}

impl Roles {
    pub const ALL: Roles = Roles {
        control: true,
        storage: true,
        frontend: true,
    };

    /// All three in one process: the embedded node, with no inter-node listeners.
    pub fn embedded(self) -> bool {
        self == Roles::ALL
    }

    /// `all`, or a comma-separated list of `control`, `storage`, `frontend`.
    pub fn parse(text: &str) -> anyhow::Result<Roles> {
        let mut r = Roles {
            control: false,
            storage: false,
            frontend: false,
        };
        for part in text.split(',').map(str::trim) {
            match part {
                "all" => r = Roles::ALL,
                "control" => r.control = true,
                "storage" => r.storage = true,
                "frontend" => r.frontend = true,
                other => anyhow::bail!(
                    "unknown role {other:?}: use all, or any of control, storage, frontend separated by commas"
                ),
            }
        }
        Ok(r)
    }
}

/// How often fleet nodes renew their registration by default.
pub const LEASE_RENEW_MS_DEFAULT: u64 = 10_000;

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 4567)),
            data_dir: PathBuf::from("./levee-data"),
            account_id: "000000000000".into(),
            region: "us-east-1".into(),
            stream_transition_ms: 500,
            worker_threads: worker_threads_default(),
            blocking_threads: BLOCKING_THREADS_DEFAULT,
            master_key_file: levee_keys::default_master_key_path(),
            tls_cert: None,
            tls_key: None,
            tls_self_signed: false,
            subscription_duration_ms: 300_000,
            subscription_heartbeat_ms: 5_000,
            subscription_takeover_ms: 5_000,
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 4590)),
            connections_max: levee_frontend::http::CONNECTIONS_MAX_DEFAULT,
            status_sample_ms: 60_000,
            metrics_push_url: None,
            metrics_push_interval_ms: 10_000,
            auth: None,
            shard_limits: ShardLimits::Off,
            requests_in_flight_max: REQUESTS_IN_FLIGHT_MAX_DEFAULT,
            map_removal_hold_permille:
                (levee_frontend::map_follow::MAP_REMOVAL_HOLD_FRACTION_DEFAULT * 1000.0) as u32,
            map_removal_hold_min_shards:
                levee_frontend::map_follow::MAP_REMOVAL_HOLD_MIN_SHARDS_DEFAULT,
            map_snapshot_period_ms: levee_frontend::map_follow::MAP_SNAPSHOT_PERIOD_MS_DEFAULT,
            autoscale_window_ms: 60_000,
            autoscale_quiet_ms: 900_000,
            autoscale_shard_bytes_per_sec: 1024 * 1024,
            autoscale_shard_records_per_sec: 1000,
            autoscale_min_shards: 4,
            autoscale_max_shards: 200,
            roles: Roles::ALL,
            control_listen: SocketAddr::from(([127, 0, 0, 1], 4591)),
            storage_listen: SocketAddr::from(([127, 0, 0, 1], 4592)),
            control: Vec::new(),
            cell: levee_catalog::CELL_DEFAULT.into(),
            lease_renew_ms: LEASE_RENEW_MS_DEFAULT,
            storage_nodes_per_cell_max: levee_catalog::STORAGE_NODES_PER_CELL_MAX_DEFAULT,
            frontends_per_cell_max: levee_catalog::FRONTENDS_PER_CELL_MAX_DEFAULT,
            voter_id: 1,
            voters: std::collections::BTreeMap::new(),
            storage_connections_max: levee_rpc::PoolConfig::default().connections_max,
            control_connections_max: levee_rpc::control::ControlServerConfig::default()
                .connections_max,
            map_polls_max: levee_rpc::control::ControlServerConfig::default()
                .map_polls_in_flight_max,
        }
    }
}

/// The TOML file's shape: every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub account_id: Option<String>,
    pub region: Option<String>,
    pub stream_transition_ms: Option<u64>,
    pub worker_threads: Option<usize>,
    pub blocking_threads: Option<usize>,
    pub master_key_file: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_self_signed: Option<bool>,
    pub subscription_duration_ms: Option<u64>,
    pub subscription_heartbeat_ms: Option<u64>,
    pub subscription_takeover_ms: Option<u64>,
    pub admin_listen: Option<SocketAddr>,
    pub connections_max: Option<usize>,
    pub status_sample_ms: Option<u64>,
    pub metrics_push_url: Option<String>,
    pub metrics_push_interval_ms: Option<u64>,
    pub auth: Option<AuthMode>,
    pub shard_limits: Option<ShardLimits>,
    pub requests_in_flight_max: Option<usize>,
    pub map_removal_hold_fraction: Option<f64>,
    pub map_removal_hold_min_shards: Option<usize>,
    pub map_snapshot_period_ms: Option<u64>,
    pub autoscale_window_ms: Option<u64>,
    pub autoscale_quiet_ms: Option<u64>,
    pub autoscale_shard_bytes_per_sec: Option<u64>,
    pub autoscale_shard_records_per_sec: Option<u64>,
    pub autoscale_min_shards: Option<u32>,
    pub autoscale_max_shards: Option<u32>,
    pub role: Option<String>,
    pub control_listen: Option<SocketAddr>,
    pub storage_listen: Option<SocketAddr>,
    pub control: Option<Vec<SocketAddr>>,
    pub cell: Option<String>,
    pub lease_renew_ms: Option<u64>,
    pub storage_nodes_per_cell_max: Option<u32>,
    pub frontends_per_cell_max: Option<u32>,
    pub voter_id: Option<u64>,
    pub voters: Option<Vec<String>>,
    pub storage_connections_max: Option<usize>,
    pub control_connections_max: Option<usize>,
    pub map_polls_max: Option<usize>,
}

impl FileConfig {
    pub fn load(path: &Path) -> anyhow::Result<FileConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
    }
}

/// Values given on the command line or in the environment (clap merges those two).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub account_id: Option<String>,
    pub region: Option<String>,
    pub stream_transition_ms: Option<u64>,
    pub worker_threads: Option<usize>,
    pub blocking_threads: Option<usize>,
    pub master_key_file: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_self_signed: Option<bool>,
    pub subscription_duration_ms: Option<u64>,
    pub subscription_heartbeat_ms: Option<u64>,
    pub subscription_takeover_ms: Option<u64>,
    pub admin_listen: Option<SocketAddr>,
    pub connections_max: Option<usize>,
    pub status_sample_ms: Option<u64>,
    pub metrics_push_url: Option<String>,
    pub metrics_push_interval_ms: Option<u64>,
    pub auth: Option<AuthMode>,
    pub shard_limits: Option<ShardLimits>,
    pub requests_in_flight_max: Option<usize>,
    pub map_removal_hold_fraction: Option<f64>,
    pub map_removal_hold_min_shards: Option<usize>,
    pub map_snapshot_period_ms: Option<u64>,
    pub autoscale_window_ms: Option<u64>,
    pub autoscale_quiet_ms: Option<u64>,
    pub autoscale_shard_bytes_per_sec: Option<u64>,
    pub autoscale_shard_records_per_sec: Option<u64>,
    pub autoscale_min_shards: Option<u32>,
    pub autoscale_max_shards: Option<u32>,
    pub role: Option<String>,
    pub control_listen: Option<SocketAddr>,
    pub storage_listen: Option<SocketAddr>,
    pub control: Option<Vec<SocketAddr>>,
    pub cell: Option<String>,
    pub lease_renew_ms: Option<u64>,
    pub storage_nodes_per_cell_max: Option<u32>,
    pub frontends_per_cell_max: Option<u32>,
    pub voter_id: Option<u64>,
    pub voters: Option<Vec<String>>,
    pub storage_connections_max: Option<usize>,
    pub control_connections_max: Option<usize>,
    pub map_polls_max: Option<usize>,
}

impl ServeConfig {
    /// Defaults ← file ← environment/flags.
    pub fn merge(file: FileConfig, over: Overrides) -> anyhow::Result<ServeConfig> {
        let d = ServeConfig::default();
        let cfg = ServeConfig {
            listen: over.listen.or(file.listen).unwrap_or(d.listen),
            data_dir: over.data_dir.or(file.data_dir).unwrap_or(d.data_dir),
            account_id: over.account_id.or(file.account_id).unwrap_or(d.account_id),
            region: over.region.or(file.region).unwrap_or(d.region),
            stream_transition_ms: over
                .stream_transition_ms
                .or(file.stream_transition_ms)
                .unwrap_or(d.stream_transition_ms),
            worker_threads: over
                .worker_threads
                .or(file.worker_threads)
                .unwrap_or(d.worker_threads),
            blocking_threads: over
                .blocking_threads
                .or(file.blocking_threads)
                .unwrap_or(d.blocking_threads),
            master_key_file: over
                .master_key_file
                .or(file.master_key_file)
                .unwrap_or(d.master_key_file),
            tls_cert: over.tls_cert.or(file.tls_cert),
            tls_key: over.tls_key.or(file.tls_key),
            tls_self_signed: over
                .tls_self_signed
                .or(file.tls_self_signed)
                .unwrap_or(d.tls_self_signed),
            subscription_duration_ms: over
                .subscription_duration_ms
                .or(file.subscription_duration_ms)
                .unwrap_or(d.subscription_duration_ms),
            subscription_heartbeat_ms: over
                .subscription_heartbeat_ms
                .or(file.subscription_heartbeat_ms)
                .unwrap_or(d.subscription_heartbeat_ms),
            subscription_takeover_ms: over
                .subscription_takeover_ms
                .or(file.subscription_takeover_ms)
                .unwrap_or(d.subscription_takeover_ms),
            admin_listen: over
                .admin_listen
                .or(file.admin_listen)
                .unwrap_or(d.admin_listen),
            connections_max: over
                .connections_max
                .or(file.connections_max)
                .unwrap_or(d.connections_max),
            status_sample_ms: over
                .status_sample_ms
                .or(file.status_sample_ms)
                .unwrap_or(d.status_sample_ms),
            metrics_push_url: over.metrics_push_url.or(file.metrics_push_url),
            metrics_push_interval_ms: over
                .metrics_push_interval_ms
                .or(file.metrics_push_interval_ms)
                .unwrap_or(d.metrics_push_interval_ms),
            auth: over.auth.or(file.auth),
            shard_limits: over
                .shard_limits
                .or(file.shard_limits)
                .unwrap_or(d.shard_limits),
            requests_in_flight_max: over
                .requests_in_flight_max
                .or(file.requests_in_flight_max)
                .unwrap_or(d.requests_in_flight_max),
            map_removal_hold_permille: match over
                .map_removal_hold_fraction
                .or(file.map_removal_hold_fraction)
            {
                Some(f) => {
                    anyhow::ensure!(
                        f > 0.0 && f <= 1.0,
                        "map removal hold fraction must be in (0, 1], got {f}"
                    );
                    (f * 1000.0).round() as u32
                }
                None => d.map_removal_hold_permille,
            },
            map_removal_hold_min_shards: over
                .map_removal_hold_min_shards
                .or(file.map_removal_hold_min_shards)
                .unwrap_or(d.map_removal_hold_min_shards),
            map_snapshot_period_ms: over
                .map_snapshot_period_ms
                .or(file.map_snapshot_period_ms)
                .unwrap_or(d.map_snapshot_period_ms),
            autoscale_window_ms: over
                .autoscale_window_ms
                .or(file.autoscale_window_ms)
                .unwrap_or(d.autoscale_window_ms),
            autoscale_quiet_ms: over
                .autoscale_quiet_ms
                .or(file.autoscale_quiet_ms)
                .unwrap_or(d.autoscale_quiet_ms),
            autoscale_shard_bytes_per_sec: over
                .autoscale_shard_bytes_per_sec
                .or(file.autoscale_shard_bytes_per_sec)
                .unwrap_or(d.autoscale_shard_bytes_per_sec),
            autoscale_shard_records_per_sec: over
                .autoscale_shard_records_per_sec
                .or(file.autoscale_shard_records_per_sec)
                .unwrap_or(d.autoscale_shard_records_per_sec),
            autoscale_min_shards: over
                .autoscale_min_shards
                .or(file.autoscale_min_shards)
                .unwrap_or(d.autoscale_min_shards),
            autoscale_max_shards: over
                .autoscale_max_shards
                .or(file.autoscale_max_shards)
                .unwrap_or(d.autoscale_max_shards),
            roles: match over.role.or(file.role) {
                Some(text) => Roles::parse(&text)?,
                None => d.roles,
            },
            control_listen: over
                .control_listen
                .or(file.control_listen)
                .unwrap_or(d.control_listen),
            storage_listen: over
                .storage_listen
                .or(file.storage_listen)
                .unwrap_or(d.storage_listen),
            control: over.control.or(file.control).unwrap_or(d.control),
            cell: over.cell.or(file.cell).unwrap_or(d.cell),
            lease_renew_ms: over
                .lease_renew_ms
                .or(file.lease_renew_ms)
                .unwrap_or(d.lease_renew_ms),
            storage_nodes_per_cell_max: over
                .storage_nodes_per_cell_max
                .or(file.storage_nodes_per_cell_max)
                .unwrap_or(d.storage_nodes_per_cell_max),
            frontends_per_cell_max: over
                .frontends_per_cell_max
                .or(file.frontends_per_cell_max)
                .unwrap_or(d.frontends_per_cell_max),
            voter_id: over.voter_id.or(file.voter_id).unwrap_or(d.voter_id),
            voters: match over.voters.or(file.voters) {
                Some(v) => parse_voters(&v)?,
                None => d.voters,
            },
            storage_connections_max: over
                .storage_connections_max
                .or(file.storage_connections_max)
                .unwrap_or(d.storage_connections_max),
            control_connections_max: over
                .control_connections_max
                .or(file.control_connections_max)
                .unwrap_or(d.control_connections_max),
            map_polls_max: over
                .map_polls_max
                .or(file.map_polls_max)
                .unwrap_or(d.map_polls_max),
        };
        anyhow::ensure!(
            cfg.roles.control || cfg.roles.storage || cfg.roles.frontend,
            "--role names no role"
        );
        anyhow::ensure!(
            cfg.roles.control || !cfg.control.is_empty(),
            "a storage or front-end role needs the control plane's address (--control ADDR)"
        );
        anyhow::ensure!(
            cfg.lease_renew_ms >= 100,
            "lease renewal must be at least 100 ms"
        );
        anyhow::ensure!(
            cfg.map_snapshot_period_ms >= 100,
            "map snapshot period must be at least 100 ms"
        );
        anyhow::ensure!(
            cfg.tls_cert.is_some() == cfg.tls_key.is_some(),
            "--tls-cert and --tls-key go together"
        );
        anyhow::ensure!(
            !(cfg.tls_self_signed && cfg.tls_cert.is_some()),
            "--tls-self-signed and --tls-cert exclude each other"
        );
        anyhow::ensure!(
            cfg.subscription_heartbeat_ms >= 1 && cfg.subscription_duration_ms >= 1,
            "subscription duration and heartbeat must be at least 1 ms"
        );
        anyhow::ensure!(
            cfg.connections_max >= 1,
            "connections max must be at least 1"
        );
        anyhow::ensure!(
            cfg.storage_connections_max >= 1
                && cfg.control_connections_max >= 1
                && cfg.map_polls_max >= 1,
            "storage connections, control connections and map polls max must be at least 1"
        );
        anyhow::ensure!(
            cfg.status_sample_ms >= 10,
            "status sample interval must be at least 10 ms"
        );
        anyhow::ensure!(
            cfg.account_id.len() == 12 && cfg.account_id.bytes().all(|b| b.is_ascii_digit()),
            "account id must be 12 digits, got {:?}",
            cfg.account_id
        );
        anyhow::ensure!(!cfg.region.is_empty(), "region must not be empty");
        anyhow::ensure!(cfg.worker_threads >= 1, "worker threads must be at least 1");
        anyhow::ensure!(
            cfg.requests_in_flight_max >= 1,
            "requests in flight max must be at least 1"
        );
        anyhow::ensure!(
            cfg.blocking_threads >= 1,
            "blocking threads must be at least 1"
        );
        anyhow::ensure!(
            cfg.autoscale_window_ms >= 10 && cfg.autoscale_quiet_ms >= cfg.autoscale_window_ms,
            "autoscale window must be at least 10 ms and the quiet period at least the window"
        );
        anyhow::ensure!(
            cfg.autoscale_shard_bytes_per_sec >= 1 && cfg.autoscale_shard_records_per_sec >= 1,
            "autoscale shard capacity must be at least 1 byte and 1 record per second"
        );
        anyhow::ensure!(
            cfg.autoscale_min_shards >= 1 && cfg.autoscale_max_shards >= cfg.autoscale_min_shards,
            "autoscale shard bounds must satisfy 1 <= min <= max"
        );
        if let (Ok(key), Ok(data)) = (
            std::path::absolute(&cfg.master_key_file),
            std::path::absolute(&cfg.data_dir),
        ) {
            anyhow::ensure!(
                !key.starts_with(&data),
                "the master key file {} must not be inside the data directory {}",
                key.display(),
                data.display()
            );
        }
        Ok(cfg)
    }
}

/// Parses `--voters`: `ID=ADDR` items (a Raft id, a control listener `ip:port`).
pub fn parse_voters(
    items: &[String],
) -> anyhow::Result<std::collections::BTreeMap<u64, SocketAddr>> {
    let mut voters = std::collections::BTreeMap::new();
    for item in items.iter().map(|i| i.trim()).filter(|i| !i.is_empty()) {
        let (id, addr) = item
            .split_once('=')
            .with_context(|| format!("--voters: {item:?} is not ID=ADDR"))?;
        let id: u64 = id
            .trim()
            .parse()
            .with_context(|| format!("--voters: {id:?} is not a voter id"))?;
        anyhow::ensure!(id > 0, "--voters: voter ids start at 1");
        let addr: SocketAddr = addr
            .trim()
            .parse()
            .with_context(|| format!("--voters: {addr:?} is not ip:port"))?;
        anyhow::ensure!(
            addr.port() != 0,
            "--voters: voter {id} needs a fixed port, not {addr}"
        );
        anyhow::ensure!(
            voters.insert(id, addr).is_none(),
            "--voters: voter {id} is listed twice"
        );
    }
    Ok(voters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file_override_defaults() {
        let file: FileConfig = toml::from_str(
            "listen = \"127.0.0.1:9000\"\nregion = \"eu-west-1\"\naccount-id = \"111111111111\"\n",
        )
        .unwrap();
        let over = Overrides {
            region: Some("ap-south-1".into()),
            ..Overrides::default()
        };
        let cfg = ServeConfig::merge(file, over).unwrap();
        assert_eq!(cfg.listen, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(cfg.region, "ap-south-1");
        assert_eq!(cfg.account_id, "111111111111");
        assert_eq!(cfg.data_dir, PathBuf::from("./levee-data"));
        assert_eq!(cfg.stream_transition_ms, 500);
    }

    #[test]
    fn bad_values_and_unknown_keys_are_refused() {
        assert!(toml::from_str::<FileConfig>("colour = \"red\"\n").is_err());
        let over = Overrides {
            account_id: Some("12".into()),
            ..Overrides::default()
        };
        assert!(ServeConfig::merge(FileConfig::default(), over).is_err());
        let over = Overrides {
            data_dir: Some("/tmp/levee-x".into()),
            master_key_file: Some("/tmp/levee-x/keys/master.key".into()),
            ..Overrides::default()
        };
        let err = ServeConfig::merge(FileConfig::default(), over).unwrap_err();
        assert!(err.to_string().contains("must not be inside"), "{err}");
    }

    #[test]
    fn voters_parse_and_bad_lists_are_refused() {
        let v =
            |items: &[&str]| parse_voters(&items.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let ok = v(&["1=127.0.0.1:4591", " 3=127.0.0.3:4591 "]).expect("parses");
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[&3], "127.0.0.3:4591".parse().unwrap());
        for bad in [
            &["127.0.0.1:4591"][..],
            &["x=127.0.0.1:4591"],
            &["0=127.0.0.1:4591"],
            &["1=127.0.0.1:0"],
            &["1=nowhere"],
            &["1=127.0.0.1:1", "1=127.0.0.1:2"],
        ] {
            assert!(v(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
