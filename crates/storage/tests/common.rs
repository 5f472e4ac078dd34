//! Helpers shared by the storage integration tests.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use levee_storage::vfs::{OsVfs, Vfs};
use levee_storage::{Clock, Engine, EngineConfig, ManualClock, ReadFrom, ShardUid};

/// A small configuration so tests roll segments and checkpoint often.
pub fn small_config(dir: &Path) -> EngineConfig {
    let mut cfg = EngineConfig::new(dir);
    cfg.log.segment_bytes = 256 << 10;
    cfg.log.batch_bytes_max = 32 << 10;
    cfg.log.entry_bytes_max = 64 << 10;
    cfg.store.segment_bytes = 64 << 10;
    cfg.store.index_interval_bytes = 1 << 10;
    cfg.store.file_handles_max = 8;
    cfg.store.index_cache_segments_max = 4;
    cfg
}

pub fn open(dir: &Path, clock: Arc<dyn Clock>) -> Engine {
    Engine::open(small_config(dir), Arc::new(OsVfs) as Arc<dyn Vfs>, clock).expect("open engine")
}

pub fn clock() -> Arc<ManualClock> {
    ManualClock::new(1_700_000_000_000)
}

/// Records as stored: (seq_ix, partition key, data).
pub type Stored = Vec<(u64, Vec<u8>, Vec<u8>)>;

/// Reads a whole shard from the start.
pub fn read_all(engine: &Engine, shard: ShardUid) -> Stored {
    let mut out = Vec::new();
    let mut from = 0;
    loop {
        let batch = engine
            .read(shard, ReadFrom::SeqIx(from), 1000, 1 << 20)
            .expect("read");
        if batch.records.is_empty() {
            assert!(batch.next_seq_ix >= from);
            return out;
        }
        for r in &batch.records {
            out.push((r.seq_ix, r.partition_key.to_vec(), r.data.to_vec()));
        }
        from = batch.next_seq_ix;
    }
}
