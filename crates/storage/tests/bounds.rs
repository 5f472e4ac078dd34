//! Resources are bounded by configuration, never by load or shard count (design rules R1, R2,
//! R6): one writer thread per group log whatever the number of shards; open files capped by the
//! file-handle cache; 1,000 concurrent reads of cold data stay within the runtime's blocking-pool
//! cap; a full write queue sheds with `Overloaded` instead of blocking or growing.
//!
//! One test function, so no other test's threads share the process while threads are counted.

mod common;

use std::sync::Arc;

use common::*;
use levee_storage::vfs::{OsVfs, Vfs};
use levee_storage::{Engine, Error, ReadFrom, ShardUid, StreamUid};

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

#[test]
fn threads_files_and_queues_stay_within_their_limits() {
    let dir = tempfile::tempdir().unwrap();
    let baseline = threads();
    let engine = Arc::new(open(dir.path(), clock()));
    assert_eq!(threads(), baseline + 1, "one writer thread per group log");
    engine
        .create_stream(StreamUid(1), u64::MAX / 4)
        .unwrap()
        .wait()
        .unwrap();
    const SHARDS: u64 = 64;
    for s in 0..SHARDS {
        engine
            .create_shard(ShardUid(s), StreamUid(1), s as u32)
            .unwrap()
            .wait()
            .unwrap();
    }
    let data = vec![3u8; 900];
    for n in 0..(SHARDS * 30) {
        engine
            .append(ShardUid(n % SHARDS), &[(b"pk", &data)])
            .unwrap()
            .wait()
            .unwrap();
    }
    for s in 0..SHARDS {
        assert_eq!(read_all(&engine, ShardUid(s)).len(), 30);
    }
    assert_eq!(threads(), baseline + 1, "threads do not grow with shards");
    let stats = engine.stats();
    assert!(
        stats.open_files <= 8,
        "file-handle cache cap: {}",
        stats.open_files
    );
    assert!(
        stats.file_opens > 8,
        "the cache must have evicted and reopened: {}",
        stats.file_opens
    );

    // 1,000 concurrent reads of cold data through a runtime with 2 workers and 4 blocking threads.
    let rt = levee_storage::runtime::build(2, 4).unwrap();
    let total: usize = rt.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..1000u64 {
            let engine = engine.clone();
            tasks.push(tokio::spawn(async move {
                let b = engine
                    .read_async(ShardUid(i % SHARDS), ReadFrom::SeqIx(i % 25), 5, 1 << 20)
                    .await
                    .unwrap();
                b.records.len()
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap();
        }
        total
    });
    assert_eq!(total, 1000 * 5);
    // Idle blocking threads linger for their keep-alive, so this counts the peak.
    let with_runtime = threads();
    assert!(
        with_runtime <= baseline + 1 + 2 + 4,
        "threads {with_runtime} exceed baseline {baseline} + writer + 2 workers + 4 blocking"
    );
    drop(rt);

    // A full queue sheds immediately.
    let dir2 = tempfile::tempdir().unwrap();
    let mut cfg = small_config(dir2.path());
    cfg.log.queue_entries_max = 16;
    let small = Engine::open(cfg, Arc::new(OsVfs) as Arc<dyn Vfs>, clock()).unwrap();
    small
        .create_stream(StreamUid(1), u64::MAX / 4)
        .unwrap()
        .wait()
        .unwrap();
    small
        .create_shard(ShardUid(1), StreamUid(1), 0)
        .unwrap()
        .wait()
        .unwrap();
    let mut tickets = Vec::new();
    let mut shed = 0;
    for _ in 0..2000 {
        match small.append(ShardUid(1), &[(b"pk", b"v")]) {
            Ok(t) => tickets.push(t),
            Err(Error::Overloaded { limit, .. }) => {
                assert_eq!(limit, 16);
                shed += 1;
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(
        shed > 0,
        "a 16-entry queue must shed some of 2,000 unwaited appends"
    );
    let acked: Vec<u64> = tickets
        .into_iter()
        .map(|t| t.wait().unwrap().first_seq_ix)
        .collect();
    let stored: Vec<u64> = read_all(&small, ShardUid(1))
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(stored, acked, "every accepted append is stored, in order");
    assert_eq!(small.stats().log_shed, shed);
}
