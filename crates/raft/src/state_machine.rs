//! The catalog as an openraft state machine.
//!
//! Applying an entry runs [`Catalog::apply`] on its [`Command`]; the response is the catalog's
//! `Result<Outcome, CatalogError>` — a refusal is a deterministic output, replicated like any
//! other. Blank and membership entries change only the applied log id and the membership.
//! Each change of the shard map's version calls the [`MapListener`] with the delta.
//!
//! The state lives in memory. It is made durable by snapshots: building one writes the record
//! `<dir>/catalog-snapshot` (replaced atomically, CRC-protected; see
//! [`levee_storage::record_file`]) before openraft may purge the log it covers. At start the
//! state machine loads that snapshot and openraft re-applies the committed log after it (the log
//! store keeps the committed log id), so a restart recovers exactly the applied state.
//!
//! Snapshot record body: `meta length u32 LE`, `meta` (openraft's `SnapshotMeta` as JSON), then
//! the catalog's own snapshot bytes ([`Catalog::snapshot`], which carry their own CRC). The
//! snapshot data openraft ships to other voters is just the catalog's bytes.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use levee_catalog::{Catalog, CatalogConfig, Command, Outcome};
use levee_map::{MapDelta, ShardMap};
use levee_storage::record_file;
use levee_storage::vfs::Vfs;
use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{
    AnyError, BasicNode, EntryPayload, RaftSnapshotBuilder, StorageIOError, StoredMembership,
};
use parking_lot::Mutex;

use crate::{CommandResult, Entry, LogId, StorageError, TypeConfig};

/// Name of the snapshot record.
const SNAPSHOT_RECORD: &str = "catalog-snapshot";

/// Called with each map change, in order: the in-process snapshot-plus-delta feed.
pub type MapListener = Box<dyn Fn(&MapDelta, &ShardMap) + Send + Sync>;

struct State {
    catalog: Catalog,
    last_applied: Option<LogId>,
    last_membership: StoredMembership<u64, BasicNode>,
    listener: Option<MapListener>,
}

impl State {
    /// Replaces the catalog and tells the listener how the map moved.
    fn replace_catalog(&mut self, catalog: Catalog) {
        let before = self.catalog.shard_map();
        self.catalog = catalog;
        self.publish_since(&before);
    }

    fn publish_since(&self, before: &ShardMap) {
        let after = self.catalog.shard_map();
        if after.version() != before.version() {
            if let Some(listener) = &self.listener {
                listener(&before.diff(&after), &after);
            }
        }
    }
}

struct StoredSnapshot {
    meta: SnapshotMeta<u64, BasicNode>,
    data: Vec<u8>,
}

struct Shared {
    dir: PathBuf,
    vfs: Arc<dyn Vfs>,
    config: CatalogConfig,
    state: Mutex<State>,
    /// The last durable snapshot. Lock order: `state` before `snapshot`.
    snapshot: Mutex<Option<StoredSnapshot>>,
}

/// The catalog state machine (owned by openraft once the Raft starts).
pub struct CatalogStateMachine {
    shared: Arc<Shared>,
}

/// Read access to the state machine's catalog, and the map feed; cheap to clone.
#[derive(Clone)]
pub struct CatalogView {
    shared: Arc<Shared>,
}

fn encode_snapshot(meta: &SnapshotMeta<u64, BasicNode>, data: &[u8]) -> Result<Vec<u8>, AnyError> {
    let meta = serde_json::to_vec(meta).map_err(|e| AnyError::new(&e))?;
    let len = u32::try_from(meta.len()).map_err(|e| AnyError::new(&e))?;
    let mut body = Vec::with_capacity(4 + meta.len() + data.len());
    body.extend_from_slice(&len.to_le_bytes());
    body.extend_from_slice(&meta);
    body.extend_from_slice(data);
    Ok(body)
}

fn decode_snapshot(body: &[u8]) -> Option<(SnapshotMeta<u64, BasicNode>, &[u8])> {
    let len = u32::from_le_bytes(body.get(..4)?.try_into().ok()?) as usize;
    let meta = body.get(4..4usize.checked_add(len)?)?;
    let data = body.get(4 + len..)?;
    Some((serde_json::from_slice(meta).ok()?, data))
}

/// Errors opening the state machine.
#[derive(Debug, thiserror::Error)]
pub enum StateMachineError {
    #[error("catalog snapshot storage: {0}")]
    Storage(#[from] levee_storage::Error),
    #[error("catalog snapshot record {path} is damaged: {detail}")]
    Damaged { path: PathBuf, detail: String },
}

impl CatalogStateMachine {
    /// Opens the state machine in `dir`: the last durable snapshot, or an empty catalog.
    /// `config` must be the same on every replica and every start (it is not in the snapshot).
    pub fn open(
        dir: &Path,
        config: CatalogConfig,
        vfs: Arc<dyn Vfs>,
    ) -> Result<CatalogStateMachine, StateMachineError> {
        vfs.create_dir_all(dir)
            .map_err(|e| levee_storage::Error::Io {
                op: "create directory",
                path: dir.to_path_buf(),
                source: Arc::new(e),
            })?;
        let damaged = |detail: String| StateMachineError::Damaged {
            path: dir.join(SNAPSHOT_RECORD),
            detail,
        };
        let (catalog, last_applied, last_membership, snapshot) =
            match record_file::read(&*vfs, dir, SNAPSHOT_RECORD)? {
                None => (
                    Catalog::new(config.clone()),
                    None,
                    StoredMembership::default(),
                    None,
                ),
                Some(body) => {
                    let (meta, data) = decode_snapshot(&body)
                        .ok_or_else(|| damaged("meta does not decode".into()))?;
                    let catalog = Catalog::restore(config.clone(), data)
                        .map_err(|e| damaged(e.to_string()))?;
                    let stored = StoredSnapshot {
                        meta: meta.clone(),
                        data: data.to_vec(),
                    };
                    (
                        catalog,
                        meta.last_log_id,
                        meta.last_membership,
                        Some(stored),
                    )
                }
            };
        Ok(CatalogStateMachine {
            shared: Arc::new(Shared {
                dir: dir.to_path_buf(),
                vfs,
                config,
                state: Mutex::new(State {
                    catalog,
                    last_applied,
                    last_membership,
                    listener: None,
                }),
                snapshot: Mutex::new(snapshot),
            }),
        })
    }

    /// A read handle that stays valid after the state machine is handed to openraft.
    pub fn view(&self) -> CatalogView {
        CatalogView {
            shared: self.shared.clone(),
        }
    }
}

impl CatalogView {
    /// Runs `f` on the current catalog (queries). Holds the state lock: keep `f` short.
    pub fn read<T>(&self, f: impl FnOnce(&Catalog) -> T) -> T {
        f(&self.shared.state.lock().catalog)
    }

    /// Registers the map listener and returns the current map, which its deltas follow from.
    pub fn subscribe(&self, listener: MapListener) -> ShardMap {
        let mut st = self.shared.state.lock();
        st.listener = Some(listener);
        st.catalog.shard_map()
    }

    /// The log id of the last applied entry.
    pub fn last_applied(&self) -> Option<LogId> {
        self.shared.state.lock().last_applied
    }
}

fn snapshot_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::write_snapshot(None, AnyError::new(&e)).into()
}

impl Shared {
    fn build(&self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let (meta, data) = {
            let st = self.state.lock();
            let data = st.catalog.snapshot().map_err(snapshot_err)?;
            let snapshot_id = match &st.last_applied {
                Some(id) => format!(
                    "{}-{}-{}",
                    id.leader_id.term, id.leader_id.node_id, id.index
                ),
                None => "empty".to_string(),
            };
            let meta = SnapshotMeta {
                last_log_id: st.last_applied,
                last_membership: st.last_membership.clone(),
                snapshot_id,
            };
            (meta, data)
        };
        self.save(&meta, &data)?;
        *self.snapshot.lock() = Some(StoredSnapshot {
            meta: meta.clone(),
            data: data.clone(),
        });
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }

    fn save(&self, meta: &SnapshotMeta<u64, BasicNode>, data: &[u8]) -> Result<(), StorageError> {
        let body = encode_snapshot(meta, data).map_err(|e| {
            StorageError::from(StorageIOError::write_snapshot(Some(meta.signature()), e))
        })?;
        record_file::write(&*self.vfs, &self.dir, SNAPSHOT_RECORD, &body).map_err(|e| {
            StorageIOError::write_snapshot(Some(meta.signature()), AnyError::new(&e)).into()
        })
    }
}

/// Builds snapshots for openraft (a handle on the same state).
pub struct CatalogSnapshotBuilder {
    shared: Arc<Shared>,
}

impl RaftSnapshotBuilder<TypeConfig> for CatalogSnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        self.shared.build()
    }
}

impl RaftStateMachine<TypeConfig> for CatalogStateMachine {
    type SnapshotBuilder = CatalogSnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId>, StoredMembership<u64, BasicNode>), StorageError> {
        let st = self.shared.state.lock();
        Ok((st.last_applied, st.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandResult>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut st = self.shared.state.lock();
        let mut out = Vec::new();
        for entry in entries {
            let result = match &entry.payload {
                EntryPayload::Blank => Ok(Outcome::Unchanged),
                EntryPayload::Normal(cmd) => {
                    let cmd: &Command = cmd;
                    let before = st.catalog.shard_map();
                    let result = st.catalog.apply(cmd);
                    st.publish_since(&before);
                    result
                }
                EntryPayload::Membership(m) => {
                    st.last_membership = StoredMembership::new(Some(entry.log_id), m.clone());
                    Ok(Outcome::Unchanged)
                }
            };
            st.last_applied = Some(entry.log_id);
            out.push(result);
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> CatalogSnapshotBuilder {
        CatalogSnapshotBuilder {
            shared: self.shared.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let catalog = Catalog::restore(self.shared.config.clone(), &data).map_err(|e| {
            StorageIOError::read_snapshot(Some(meta.signature()), AnyError::new(&e))
        })?;
        // Durable first: once installed, openraft may purge the log the snapshot covers.
        self.shared.save(meta, &data)?;
        let mut st = self.shared.state.lock();
        st.replace_catalog(catalog);
        st.last_applied = meta.last_log_id;
        st.last_membership = meta.last_membership.clone();
        *self.shared.snapshot.lock() = Some(StoredSnapshot {
            meta: meta.clone(),
            data,
        });
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        Ok(self.shared.snapshot.lock().as_ref().map(|s| Snapshot {
            meta: s.meta.clone(),
            snapshot: Box::new(Cursor::new(s.data.clone())),
        }))
    }
}
