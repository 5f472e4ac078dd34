//! The single-voter catalog Raft: commands go through openraft (group log, commit, apply), their
//! outcomes come back, map changes are published, and everything survives restarts, with and
//! without snapshots and log purges in between.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use levee_catalog::{CatalogConfig, CatalogError, Command, Outcome, StreamMode, StreamStatus};
use levee_raft::{CatalogRaft, CatalogRaftOptions};

fn create(name: &str, now_ms: u64) -> Command {
    Command::CreateStream {
        name: name.to_string(),
        shard_count: Some(2),
        mode: StreamMode::Provisioned,
        tags: BTreeMap::new(),
        now_ms,
    }
}

async fn open(dir: &Path, options: CatalogRaftOptions) -> CatalogRaft {
    CatalogRaft::open(dir, CatalogConfig::default(), options)
        .await
        .unwrap()
}

/// Creates and activates a stream (at most 5 may be CREATING at once).
async fn create_active(node: &CatalogRaft, name: &str, now_ms: u64) {
    node.execute(create(name, now_ms)).await.unwrap().unwrap();
    let activate = Command::ActivateStream {
        name: name.to_string(),
        now_ms: now_ms + 1,
    };
    node.execute(activate).await.unwrap().unwrap();
}

fn streams(node: &CatalogRaft) -> Vec<(String, StreamStatus, u64)> {
    node.read(|c| {
        c.state()
            .streams()
            .values()
            .map(|s| (s.name.clone(), s.status, s.uid))
            .collect()
    })
}

#[tokio::test]
async fn commands_apply_through_raft_and_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path(), CatalogRaftOptions::default()).await;
    let deltas = Arc::new(AtomicU64::new(0));
    let seen = deltas.clone();
    let map = node.subscribe(Box::new(move |_delta, _map| {
        seen.fetch_add(1, Ordering::Relaxed);
    }));
    assert_eq!(map.version(), 0);

    let out = node.execute(create("orders", 1_000)).await.unwrap();
    assert!(
        matches!(out, Ok(Outcome::StreamCreated { shard_count: 2, .. })),
        "{out:?}"
    );
    let out = node.execute(create("orders", 1_001)).await.unwrap();
    assert!(
        matches!(out, Err(CatalogError::ResourceInUse(_))),
        "{out:?}"
    );
    let out = node
        .execute(Command::ActivateStream {
            name: "orders".into(),
            now_ms: 2_000,
        })
        .await
        .unwrap();
    assert_eq!(out, Ok(Outcome::StreamActivated));
    node.execute(create("clicks", 3_000))
        .await
        .unwrap()
        .unwrap();
    assert!(deltas.load(Ordering::Relaxed) >= 2, "map changes published");

    let before = streams(&node);
    let map_before = node.read(|c| c.map_version());
    assert_eq!(before.len(), 2);
    node.shutdown().await.unwrap();

    let node = open(dir.path(), CatalogRaftOptions::default()).await;
    assert_eq!(streams(&node), before, "state survives the restart");
    assert_eq!(node.read(|c| c.map_version()), map_before);
    // Uids keep counting from where they were: nothing was replayed twice or lost.
    let out = node.execute(create("third", 4_000)).await.unwrap().unwrap();
    let Outcome::StreamCreated { uid, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(uid, 3);
    node.shutdown().await.unwrap();
}

#[tokio::test]
async fn snapshots_and_purges_keep_the_state_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let options = CatalogRaftOptions {
        snapshot_every_entries: 5,
        log_entries_kept_after_snapshot: 2,
        ..CatalogRaftOptions::default()
    };
    let node = open(dir.path(), options.clone()).await;
    for n in 0..23u64 {
        create_active(&node, &format!("s{n}"), n).await;
    }
    node.snapshot().await.unwrap();
    assert!(dir.path().join("catalog-snapshot").exists());
    let before = streams(&node);
    assert_eq!(before.len(), 23);
    let applied = node.last_applied();
    node.shutdown().await.unwrap();

    let node = open(dir.path(), options.clone()).await;
    assert_eq!(streams(&node), before);
    assert!(node.last_applied() >= applied);
    for n in 23..30u64 {
        create_active(&node, &format!("s{n}"), n).await;
    }
    let before = streams(&node);
    // Restart without a snapshot of the last commands: they come back from the log.
    drop(node);
    let node = open(dir.path(), options).await;
    assert_eq!(streams(&node), before);
    assert_eq!(before.len(), 30);
    node.shutdown().await.unwrap();
}
