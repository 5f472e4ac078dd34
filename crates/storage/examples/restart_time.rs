//! Measures restart time against stored data size, by hand:
//!
//! ```text
//! cargo run --release -p levee-storage --example restart_time -- <dir> <gigabytes>
//! ```
//!
//! Writes `<gigabytes>` GB through the engine (default segment sizes, 4 shards, 512 KiB appends
//! from 8 concurrent appenders), then stops without a final checkpoint (as a crash would) and
//! times the reopen; then closes cleanly and times the reopen again. Prints bytes read by
//! recovery each time. Deletes `<dir>` at the end.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use levee_storage::vfs::{FaultyVfs, OsVfs, Vfs};
use levee_storage::{Engine, EngineConfig, ShardUid, StreamUid, SystemClock};

const SHARDS: u64 = 4;
const APPENDERS: u64 = 8;

fn reopen(dir: &std::path::Path, what: &str) -> Engine {
    let vfs = Arc::new(FaultyVfs::new());
    let started = Instant::now();
    let engine = Engine::open(
        EngineConfig::new(dir),
        vfs.clone() as Arc<dyn Vfs>,
        Arc::new(SystemClock),
    )
    .expect("reopen");
    println!(
        "{what}: reopened in {:?}, recovery read {} bytes",
        started.elapsed(),
        vfs.stats().bytes_read.load(Ordering::Relaxed)
    );
    engine
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(gb)) = (args.get(1), args.get(2).and_then(|g| g.parse::<f64>().ok()))
    else {
        eprintln!("usage: restart_time <dir> <gigabytes>");
        std::process::exit(2);
    };
    let dir = std::path::PathBuf::from(dir);
    let total = (gb * 1e9) as u64;
    let engine = Arc::new(
        Engine::open(
            EngineConfig::new(&dir),
            Arc::new(OsVfs) as Arc<dyn Vfs>,
            Arc::new(SystemClock),
        )
        .expect("open"),
    );
    engine
        .create_stream(StreamUid(1), 7 * 86_400_000)
        .expect("stream")
        .wait()
        .expect("durable");
    for s in 0..SHARDS {
        engine
            .create_shard(ShardUid(s), StreamUid(1), s as u32)
            .expect("shard")
            .wait()
            .expect("durable");
    }
    let started = Instant::now();
    let per_appender = total / APPENDERS;
    let threads: Vec<_> = (0..APPENDERS)
        .map(|t| {
            let engine = engine.clone();
            std::thread::spawn(move || {
                let record = vec![t as u8; 64 << 10];
                let recs: Vec<(&[u8], &[u8])> =
                    (0..8).map(|_| (&b"pk"[..], record.as_slice())).collect();
                let mut written = 0;
                let mut n = t;
                while written < per_appender {
                    engine
                        .append(ShardUid(n % SHARDS), &recs)
                        .expect("append")
                        .wait()
                        .expect("durable");
                    written += 8 * record.len() as u64;
                    n += 1;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("appender");
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "wrote {:.2} GB in {secs:.1} s ({:.0} MB/s)",
        total as f64 / 1e9,
        total as f64 / 1e6 / secs
    );
    let Ok(engine) = Arc::try_unwrap(engine) else {
        panic!("appenders still hold the engine");
    };
    engine.halt();
    let engine = reopen(&dir, "after a crash (no final checkpoint)");
    let records: u64 = (0..SHARDS)
        .map(|s| engine.shard_info(ShardUid(s)).expect("shard").next_seq_ix)
        .sum();
    println!("records recovered: {records}");
    engine.close().expect("close");
    let engine = reopen(&dir, "after a clean shutdown");
    engine.halt();
    std::fs::remove_dir_all(&dir).expect("cleanup");
}
