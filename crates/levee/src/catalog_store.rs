//! The catalog's durable home in the embedded mode. Commands are written to a group log — the
//! storage engine's write-ahead log, with group commit, CRCs and torn-tail recovery — and applied
//! to the deterministic catalog state machine in log order; each log checkpoint writes a catalog
//! snapshot. This is the single-voter log without consensus; openraft will drive the same state
//! machine over the same log when the control plane is replicated.
//!
//! Snapshot file `<dir>/catalog.snapshot`: resume next index u64 LE, resume ordinal u64 LE,
//! catalog snapshot bytes (which carry their own CRC32C), CRC32C of everything before (u32 LE).
//! Written as `.tmp`, synced, renamed, directory synced.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use levee_catalog::{Catalog, CatalogConfig, CatalogError, Command, Outcome};
use levee_map::{MapDelta, ShardMap};
use levee_storage::vfs::{OsVfs, Vfs};
use levee_storage::wal::{Applier, GroupLog, GroupLogConfig, LogEntry, ResumePoint};
use levee_storage::Error as StorageError;
use parking_lot::Mutex;

/// Catalog log segments are small: commands are a few hundred bytes.
const CATALOG_SEGMENT_BYTES: u64 = 4 << 20;
/// Largest catalog command.
const CATALOG_ENTRY_BYTES_MAX: u64 = 1 << 20;

/// Called with each map change, in order: the in-process snapshot-plus-delta feed.
pub type MapListener = Box<dyn Fn(&MapDelta, &ShardMap) + Send + Sync>;

struct State {
    catalog: Catalog,
    /// Outcomes of applied entries, taken by the submitter that waits for them.
    outcomes: HashMap<u64, Result<Outcome, CatalogError>>,
    listener: Option<MapListener>,
}

struct CatalogApplier {
    dir: PathBuf,
    state: Mutex<State>,
}

impl Applier for CatalogApplier {
    fn apply(&self, entry: LogEntry<'_>) -> Result<(), StorageError> {
        let cmd: Command = serde_json::from_slice(entry.payload).map_err(|e| {
            StorageError::Invalid(format!(
                "catalog log entry {} does not decode: {e}",
                entry.index
            ))
        })?;
        let mut st = self.state.lock();
        let before = st.catalog.shard_map();
        let outcome = st.catalog.apply(&cmd);
        let after = st.catalog.shard_map();
        if after.version() != before.version() {
            let delta = before.diff(&after);
            if let Some(listener) = &st.listener {
                listener(&delta, &after);
            }
        }
        st.outcomes.insert(entry.index, outcome);
        Ok(())
    }

    fn checkpoint(&self, resume: ResumePoint) -> Result<(), StorageError> {
        let snapshot = self
            .state
            .lock()
            .catalog
            .snapshot()
            .map_err(|e| StorageError::Invalid(format!("catalog snapshot failed: {e}")))?;
        write_snapshot(&self.dir, resume, &snapshot).map_err(|e| {
            StorageError::Invalid(format!("writing the catalog snapshot failed: {e:#}"))
        })
    }
}

fn snapshot_path(dir: &Path) -> PathBuf {
    dir.join("catalog.snapshot")
}

fn write_snapshot(dir: &Path, resume: ResumePoint, snapshot: &[u8]) -> anyhow::Result<()> {
    let mut bytes = Vec::with_capacity(snapshot.len() + 20);
    bytes.extend_from_slice(&resume.next_index.to_le_bytes());
    bytes.extend_from_slice(&resume.ordinal.to_le_bytes());
    bytes.extend_from_slice(snapshot);
    let crc = crc32c::crc32c(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    let tmp = dir.join("catalog.snapshot.tmp");
    let mut f =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(&bytes)?;
    f.sync_data()?;
    std::fs::rename(&tmp, snapshot_path(dir))?;
    OsVfs.sync_dir(dir)?;
    Ok(())
}

fn read_snapshot(
    dir: &Path,
    config: &CatalogConfig,
) -> anyhow::Result<Option<(ResumePoint, Catalog)>> {
    let path = snapshot_path(dir);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let corrupt = || {
        anyhow::anyhow!(
            "{} is corrupt (checksum or length); refusing to start",
            path.display()
        )
    };
    let body_len = bytes.len().checked_sub(4).ok_or_else(corrupt)?;
    let (body, crc) = bytes.split_at(body_len);
    if crc != crc32c::crc32c(body).to_le_bytes() || body.len() < 16 {
        return Err(corrupt());
    }
    let next_index = u64::from_le_bytes(body[0..8].try_into().map_err(|_| corrupt())?);
    let ordinal = u64::from_le_bytes(body[8..16].try_into().map_err(|_| corrupt())?);
    let catalog = Catalog::restore(config.clone(), &body[16..])
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(Some((
        ResumePoint {
            next_index,
            ordinal,
        },
        catalog,
    )))
}

/// The catalog with its log.
pub struct CatalogStore {
    log: GroupLog,
    applier: Arc<CatalogApplier>,
}

impl CatalogStore {
    /// Opens (recovering) the catalog in `dir`: loads the snapshot, then replays the log.
    pub fn open(dir: &Path, config: CatalogConfig) -> anyhow::Result<CatalogStore> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let (resume, catalog) = match read_snapshot(dir, &config)? {
            Some((r, c)) => (Some(r), c),
            None => (None, Catalog::new(config)),
        };
        let applier = Arc::new(CatalogApplier {
            dir: dir.to_path_buf(),
            state: Mutex::new(State {
                catalog,
                outcomes: HashMap::new(),
                listener: None,
            }),
        });
        let mut cfg = GroupLogConfig::new(dir.join("wal"));
        cfg.segment_bytes = CATALOG_SEGMENT_BYTES;
        cfg.batch_bytes_max = CATALOG_ENTRY_BYTES_MAX;
        cfg.entry_bytes_max = CATALOG_ENTRY_BYTES_MAX;
        let log = GroupLog::open(cfg, Arc::new(OsVfs), resume, applier.clone())
            .context("recovering the catalog log")?;
        // Nobody waits for the outcomes of replayed entries.
        applier.state.lock().outcomes.clear();
        Ok(CatalogStore { log, applier })
    }

    /// Registers the map listener and returns the current map (the snapshot it follows from).
    pub fn subscribe(&self, listener: MapListener) -> ShardMap {
        let mut st = self.applier.state.lock();
        st.listener = Some(listener);
        st.catalog.shard_map()
    }

    /// Logs a command and returns its outcome once durable and applied.
    pub async fn execute(&self, cmd: Command) -> anyhow::Result<Result<Outcome, CatalogError>> {
        let payload = serde_json::to_vec(&cmd)?;
        let ack = self.log.submit(0, payload)?;
        let index = ack
            .await
            .map_err(|_| anyhow::anyhow!("catalog log closed"))??;
        self.applier
            .state
            .lock()
            .outcomes
            .remove(&index)
            .ok_or_else(|| anyhow::anyhow!("no outcome recorded for catalog entry {index}"))
    }

    /// Runs `f` on the current catalog state (queries).
    pub fn read<T>(&self, f: impl FnOnce(&Catalog) -> T) -> T {
        f(&self.applier.state.lock().catalog)
    }

    /// Snapshots the catalog and releases its log.
    pub fn checkpoint(&self) -> anyhow::Result<()> {
        self.log.checkpoint()?;
        Ok(())
    }
}
