//! Restart cost does not depend on how much data the store holds: recovery reads the manifest
//! and the group log written since the last checkpoint, never shard data. The same workload tail
//! after a checkpoint costs the same bytes read at 50 MB and at 500 MB of stored data.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use levee_storage::vfs::{FaultyVfs, OsVfs, Vfs};
use levee_storage::{Engine, EngineConfig, ShardUid, StreamUid};

const MB: u64 = 1_000_000;
const SHARDS: u64 = 4;

fn config(dir: &std::path::Path) -> EngineConfig {
    let mut cfg = EngineConfig::new(dir);
    cfg.log.segment_bytes = 8 << 20;
    cfg.log.batch_bytes_max = 1 << 20;
    cfg.log.entry_bytes_max = 1 << 20;
    cfg.store.segment_bytes = 4 << 20;
    cfg
}

/// Stores `total` bytes, checkpoints, writes a fixed 1 MB tail, stops without a checkpoint, and
/// returns (bytes read by recovery, records recovered).
fn recovery_bytes(total: u64) -> (u64, u64) {
    // tmpfs when available: this test is about bytes read, not about disk speed.
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm").unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let dir = base.path();
    let engine = Engine::open(
        config(dir),
        Arc::new(OsVfs) as Arc<dyn Vfs>,
        common::clock(),
    )
    .unwrap();
    engine
        .create_stream(StreamUid(1), u64::MAX / 4)
        .unwrap()
        .wait()
        .unwrap();
    for s in 0..SHARDS {
        engine
            .create_shard(ShardUid(s), StreamUid(1), s as u32)
            .unwrap()
            .wait()
            .unwrap();
    }
    let record = vec![7u8; 64 << 10];
    let per_append: Vec<(&[u8], &[u8])> = (0..8).map(|_| (&b"pk"[..], record.as_slice())).collect();
    let append_bytes = 8 * record.len() as u64;
    let mut written = 0;
    let mut n = 0u64;
    while written < total {
        engine
            .append(ShardUid(n % SHARDS), &per_append)
            .unwrap()
            .wait()
            .unwrap();
        written += append_bytes;
        n += 1;
    }
    engine.checkpoint().unwrap();
    let tail = vec![9u8; 10_000];
    for i in 0..100u64 {
        engine
            .append(ShardUid(i % SHARDS), &[(b"t", &tail)])
            .unwrap()
            .wait()
            .unwrap();
    }
    let expected_records = n * 8 + 100;
    engine.halt();

    let vfs = Arc::new(FaultyVfs::new());
    let started = Instant::now();
    let engine = Engine::open(config(dir), vfs.clone() as Arc<dyn Vfs>, common::clock()).unwrap();
    let elapsed = started.elapsed();
    let read = vfs.stats().bytes_read.load(Ordering::Relaxed);
    let recovered: u64 = (0..SHARDS)
        .map(|s| engine.shard_info(ShardUid(s)).unwrap().next_seq_ix)
        .sum();
    println!(
        "stored {} MB: recovery read {read} bytes in {elapsed:?}",
        total / MB
    );
    assert!(
        engine.stats().recovery_bytes_read <= read,
        "the log's own count is part of the total"
    );
    engine.halt();
    assert_eq!(recovered, expected_records, "every record is recovered");
    (read, recovered)
}

#[test]
fn recovery_reads_the_same_bytes_for_50_and_500_mb() {
    let (small, _) = recovery_bytes(50 * MB);
    let (large, _) = recovery_bytes(500 * MB);
    assert_eq!(
        small, large,
        "recovery bytes read must not grow with stored data"
    );
    // It reads the 1 MB tail and a bounded window, far less than the data.
    assert!(large < 4 * MB, "recovery read {large} bytes");
    assert!(
        large > MB,
        "recovery must have read the log tail ({large} bytes)"
    );
}
