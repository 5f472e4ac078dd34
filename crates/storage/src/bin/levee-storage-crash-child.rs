//! Child process of the `kill -9` crash test (`tests/crash_kill9.rs`); not a tool for operators.
//!
//! It opens an engine in a data directory, creates stream 1 and shards `0..shards` if an earlier
//! run has not, prints `READY`, and then lets `writers` threads append records with unique ids
//! until the process is killed. After each append's ticket resolves successfully it prints
//!
//! ```text
//! ACK <shard> <first_seq_ix> <count> <id> <id> ...
//! ```
//!
//! so that every line on stdout is a promise the engine made: these records are durable at these
//! positions. The parent kills the process at a random moment and checks the promises against
//! what a restarted engine reads back. Any unexpected error is printed as `ERR <what>` and ends
//! the process with exit code 2, which the parent reports as a failure.
//!
//! Record format (checked by the parent):
//! - id: `run:<run>/writer:<w>/n:<counter>`, unique across runs;
//! - partition key: `writer:<w>`;
//! - data: `<id> <pad_len> <pad>` where `pad` is `pad_len` bytes of [`pad_byte`].
//!
//! Usage: `levee-storage-crash-child <data dir> <run> <writers> <shards>`.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use levee_storage::vfs::{OsVfs, Vfs};
use levee_storage::{Engine, EngineConfig, Error, ShardUid, StreamUid, SystemClock};
use rand::Rng;

/// The stream every shard belongs to.
const STREAM: StreamUid = StreamUid(1);
/// Long enough that nothing expires during the test (retention is never enforced anyway).
const RETENTION_MS: u64 = 7 * 24 * 3_600_000;
/// Records per append: `1..=RECORDS_PER_APPEND_MAX`.
const RECORDS_PER_APPEND_MAX: usize = 5;
/// Padding per record: `0..=PAD_BYTES_MAX`.
const PAD_BYTES_MAX: usize = 2000;

/// The same numbers as `tests/common.rs::small_config` (a binary cannot use test modules): small
/// segments so that log segments roll and checkpoint, and shard segments seal, during a run.
fn small_config(dir: &Path) -> EngineConfig {
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

/// Byte `i` of the padding of the record with counter `n` (the parent recomputes it).
fn pad_byte(n: u64, i: usize) -> u8 {
    b'a' + ((n as usize).wrapping_add(i) % 26) as u8
}

/// Writes one whole line to stdout and flushes it, holding the lock so lines never interleave.
fn emit(line: &str) {
    let mut out = std::io::stdout().lock();
    // A failed write means the parent has gone away; nothing useful is left to do.
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        std::process::exit(3);
    }
}

/// Reports an unexpected error to the parent and ends the process.
fn fail(what: String) -> ! {
    emit(&format!("ERR {}", what.replace('\n', " ")));
    std::process::exit(2);
}

fn parse<T: std::str::FromStr>(args: &[String], i: usize, name: &str) -> T {
    args.get(i).and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        fail(format!(
            "argument {i} ({name}) missing or malformed: {args:?}"
        ))
    })
}

/// Creates the stream and shards that do not exist yet (a run killed earlier may have created
/// them), waiting for each creation to be durable.
fn ensure_topology(engine: &Engine, shards: u64) {
    match engine.create_stream(STREAM, RETENTION_MS) {
        Ok(t) => t
            .wait()
            .unwrap_or_else(|e| fail(format!("create {STREAM}: {e}"))),
        Err(Error::StreamExists(_)) => {}
        Err(e) => fail(format!("create {STREAM}: {e}")),
    }
    for s in 0..shards {
        let shard = ShardUid(s);
        let index = u32::try_from(s).unwrap_or_else(|_| fail(format!("shard index {s}")));
        match engine.create_shard(shard, STREAM, index) {
            Ok(t) => t
                .wait()
                .unwrap_or_else(|e| fail(format!("create {shard}: {e}"))),
            Err(Error::ShardExists(_)) => {}
            Err(e) => fail(format!("create {shard}: {e}")),
        }
        let info = engine
            .shard_info(shard)
            .unwrap_or_else(|e| fail(format!("info of {shard}: {e}")));
        if info.stream != STREAM || info.closed {
            fail(format!(
                "{shard} is not an open shard of {STREAM}: {info:?}"
            ));
        }
    }
}

/// Appends forever; returns only by ending the process on an error.
fn write_loop(engine: &Engine, run: u64, writer: u64, shards: u64) -> ! {
    let mut rng = rand::thread_rng();
    let key = format!("writer:{writer}").into_bytes();
    let mut counter: u64 = 0;
    loop {
        let shard = ShardUid(rng.gen_range(0..shards));
        let count = rng.gen_range(1..=RECORDS_PER_APPEND_MAX);
        let mut ids = Vec::with_capacity(count);
        let mut datas = Vec::with_capacity(count);
        for _ in 0..count {
            let id = format!("run:{run}/writer:{writer}/n:{counter}");
            let pad_len = rng.gen_range(0..=PAD_BYTES_MAX);
            let mut data = format!("{id} {pad_len} ").into_bytes();
            data.extend((0..pad_len).map(|i| pad_byte(counter, i)));
            ids.push(id);
            datas.push(data);
            counter += 1;
        }
        let records: Vec<(&[u8], &[u8])> = datas.iter().map(|d| (&key[..], &d[..])).collect();
        let ticket = loop {
            match engine.append(shard, &records) {
                Ok(t) => break t,
                // A full queue sheds the append without assigning sequence numbers: back off
                // and offer the same records again.
                Err(Error::Overloaded { .. }) => std::thread::sleep(Duration::from_millis(1)),
                Err(e) => fail(format!("append to {shard} by writer {writer}: {e}")),
            }
        };
        let appended = ticket
            .wait()
            .unwrap_or_else(|e| fail(format!("ticket of {shard} by writer {writer}: {e}")));
        if appended.count as usize != count {
            fail(format!(
                "append to {shard} by writer {writer} acknowledged {} records, sent {count}",
                appended.count
            ));
        }
        emit(&format!(
            "ACK {} {} {} {}",
            shard.0,
            appended.first_seq_ix,
            appended.count,
            ids.join(" ")
        ));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        fail(format!(
            "usage: levee-storage-crash-child <data dir> <run> <writers> <shards>; got {args:?}"
        ));
    }
    let dir = Path::new(&args[1]);
    let run: u64 = parse(&args, 2, "run");
    let writers: u64 = parse(&args, 3, "writers");
    let shards: u64 = parse(&args, 4, "shards");
    if writers == 0 || shards == 0 {
        fail(format!("writers and shards must be positive: {args:?}"));
    }

    let engine = Engine::open(
        small_config(dir),
        Arc::new(OsVfs) as Arc<dyn Vfs>,
        Arc::new(SystemClock),
    )
    .unwrap_or_else(|e| fail(format!("open engine in {}: {e}", dir.display())));
    let engine = Arc::new(engine);
    ensure_topology(&engine, shards);
    emit("READY");

    let threads: Vec<_> = (0..writers)
        .map(|w| {
            let engine = engine.clone();
            std::thread::Builder::new()
                .name(format!("writer-{w}"))
                .spawn(move || write_loop(&engine, run, w, shards))
                .unwrap_or_else(|e| fail(format!("spawn writer {w}: {e}")))
        })
        .collect();
    for t in threads {
        // Writers never return; a join only ends if one panicked.
        if t.join().is_err() {
            fail("a writer thread panicked".into());
        }
    }
}
