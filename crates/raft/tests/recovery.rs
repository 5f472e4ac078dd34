//! Crash and restart of the catalog's Raft storage: the log store reopened after appends,
//! overwrites, truncation and purges holds exactly the same log, vote and committed id; the
//! single-voter catalog Raft keeps every applied command across restarts and snapshots.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use levee_catalog::{Command, StreamMode};
use levee_raft::{Entry, GroupLogStore, LogId, TypeConfig};
use levee_storage::vfs::OsVfs;
use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use openraft::{CommittedLeaderId, EntryPayload, RaftLogReader, Vote};

fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

fn create(name: &str, now_ms: u64) -> Command {
    Command::CreateStream {
        name: name.to_string(),
        shard_count: Some(2),
        mode: StreamMode::Provisioned,
        tags: BTreeMap::new(),
        now_ms,
    }
}

fn entry(term: u64, index: u64) -> Entry {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(create(&format!("s-{term}-{index}"), index)),
    }
}

fn open_store(dir: &Path) -> GroupLogStore {
    let mut cfg = GroupLogStore::catalog_log_config(dir);
    // Small segments: a few dozen entries each, so purges release whole segments.
    cfg.segment_bytes = 10 << 10;
    cfg.batch_bytes_max = 4 << 10;
    cfg.entry_bytes_max = 8 << 10;
    GroupLogStore::open(dir, cfg, Arc::new(OsVfs)).unwrap()
}

type Snapshot = (
    openraft::storage::LogState<TypeConfig>,
    Vec<Entry>,
    Option<Vote<u64>>,
    Option<LogId>,
);

async fn state(store: &mut GroupLogStore) -> Snapshot {
    (
        store.get_log_state().await.unwrap(),
        store.try_get_log_entries(0..).await.unwrap(),
        store.read_vote().await.unwrap(),
        store.read_committed().await.unwrap(),
    )
}

fn segments(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("log"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("wal-")
        })
        .count()
}

#[tokio::test]
async fn log_store_reopens_with_the_same_log_after_overwrite_truncate_and_purge() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open_store(dir.path());
    store.save_vote(&Vote::new_committed(1, 1)).await.unwrap();

    // 1..=200 at term 1, appended in groups (several segments).
    for first in (1..=200u64).step_by(10) {
        store
            .blocking_append((first..first + 10).map(|i| entry(1, i)))
            .await
            .unwrap();
    }
    let before_truncate = state(&mut store).await;
    assert_eq!(before_truncate.1.len(), 200);
    assert!(segments(dir.path()) > 3, "the log spans several segments");

    // A new leader overwrites from 150: truncate, then append at term 2.
    store.truncate(log_id(1, 150)).await.unwrap();
    assert_eq!(
        store.get_log_state().await.unwrap().last_log_id,
        Some(log_id(1, 149))
    );
    store
        .blocking_append((150..=170).map(|i| entry(2, i)))
        .await
        .unwrap();
    // An overwrite without a truncate first: the later batch wins too.
    store
        .blocking_append((165..=168).map(|i| entry(3, i)))
        .await
        .unwrap();
    store.save_vote(&Vote::new_committed(3, 1)).await.unwrap();
    store.save_committed(Some(log_id(3, 166))).await.unwrap();

    let segs_before_purge = segments(dir.path());
    store.purge(log_id(1, 120)).await.unwrap();
    assert!(
        segments(dir.path()) < segs_before_purge,
        "purge released whole segments"
    );

    let expected = state(&mut store).await;
    assert_eq!(expected.0.last_purged_log_id, Some(log_id(1, 120)));
    assert_eq!(expected.0.last_log_id, Some(log_id(3, 168)));
    let indexes: Vec<u64> = expected.1.iter().map(|e| e.log_id.index).collect();
    assert_eq!(indexes, (121..=168).collect::<Vec<_>>());
    assert!(expected.1.iter().all(|e| match e.log_id.index {
        121..=149 => e.log_id.leader_id.term == 1,
        150..=164 => e.log_id.leader_id.term == 2,
        _ => e.log_id.leader_id.term == 3,
    }));

    // "Crash": drop without any shutdown step, reopen, compare.
    drop(store);
    let mut store = open_store(dir.path());
    let recovered = state(&mut store).await;
    assert_eq!(recovered.0, expected.0);
    assert_eq!(recovered.1, expected.1);
    assert_eq!(recovered.2, expected.2);
    assert_eq!(recovered.3, expected.3);

    // And it continues where it left off, across another restart.
    store
        .blocking_append((169..=180).map(|i| entry(3, i)))
        .await
        .unwrap();
    store.truncate(log_id(3, 175)).await.unwrap();
    let expected = state(&mut store).await;
    drop(store);
    let mut store = open_store(dir.path());
    let recovered = state(&mut store).await;
    assert_eq!(recovered.0, expected.0);
    assert_eq!(recovered.1, expected.1);
    assert_eq!(recovered.0.last_log_id, Some(log_id(3, 174)));
}

#[tokio::test]
async fn purging_past_the_end_then_appending_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open_store(dir.path());
    // One append larger than a batch is split into several submissions.
    store
        .blocking_append((1..=60).map(|i| entry(1, i)))
        .await
        .unwrap();
    store.purge(log_id(1, 80)).await.unwrap();
    let expected = state(&mut store).await;
    assert_eq!(expected.0.last_log_id, Some(log_id(1, 80)));
    assert!(expected.1.is_empty());
    drop(store);

    let mut store = open_store(dir.path());
    assert_eq!(state(&mut store).await, expected);
    store
        .blocking_append((81..=90).map(|i| entry(2, i)))
        .await
        .unwrap();
    let expected = state(&mut store).await;
    drop(store);
    let mut store = open_store(dir.path());
    let recovered = state(&mut store).await;
    assert_eq!(recovered, expected);
    assert_eq!(
        recovered
            .1
            .iter()
            .map(|e| e.log_id.index)
            .collect::<Vec<_>>(),
        (81..=90).collect::<Vec<_>>()
    );
}
