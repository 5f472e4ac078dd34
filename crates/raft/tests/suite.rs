//! openraft's own storage test suite against the group-log-backed log store and the catalog
//! state machine: the acceptance test that the storage engine's group log can be a Raft log.

use std::sync::Arc;

use levee_catalog::CatalogConfig;
use levee_raft::{CatalogStateMachine, GroupLogStore, StorageError, TypeConfig};
use levee_storage::vfs::OsVfs;
use openraft::testing::{StoreBuilder, Suite};
use openraft::{AnyError, StorageIOError};
use tempfile::TempDir;

/// Fresh stores in a new temporary directory each time; small segments so that logs roll.
struct Builder;

impl StoreBuilder<TypeConfig, GroupLogStore, CatalogStateMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, GroupLogStore, CatalogStateMachine), StorageError> {
        let err = |e: &dyn std::fmt::Display| -> StorageError {
            StorageIOError::write(AnyError::error(e.to_string())).into()
        };
        let dir = tempfile::tempdir().map_err(|e| err(&e))?;
        let mut cfg = GroupLogStore::catalog_log_config(dir.path());
        cfg.segment_bytes = 64 << 10;
        cfg.batch_bytes_max = 4 << 10;
        cfg.entry_bytes_max = 8 << 10;
        let log = GroupLogStore::open(dir.path(), cfg, Arc::new(OsVfs)).map_err(|e| err(&e))?;
        let sm = CatalogStateMachine::open(
            &dir.path().join("sm"),
            CatalogConfig::default(),
            Arc::new(OsVfs),
        )
        .map_err(|e| err(&e))?;
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite_passes() {
    if let Err(e) = Suite::test_all(Builder) {
        panic!("openraft storage suite failed: {e}");
    }
}
