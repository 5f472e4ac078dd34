//! Append throughput and group-commit batching of the storage engine on the real disk.
//!
//! For 100 B and 1 KiB records from 1, 8 and 64 concurrent appenders (tokio tasks, each waiting
//! for its acknowledgement before the next append, as a PutRecord client does), criterion reports
//! records/s; after each configuration a line gives syncs/s and records per sync, which shows the
//! continuous group commit at work. Run with `cargo bench -p levee-storage --bench append`.
//! Set `LEVEE_BENCH_DIR` to choose the file system (default: the system temp dir).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use levee_storage::vfs::{OsVfs, Vfs};
use levee_storage::{Engine, EngineConfig, ShardUid, StreamUid, SystemClock};

const SHARDS: u64 = 8;

struct Totals {
    records: AtomicU64,
    syncs: AtomicU64,
    nanos: AtomicU64,
}

fn bench_append(c: &mut Criterion) {
    let rt = levee_storage::runtime::build(2, 4).expect("runtime");
    let base = std::env::var_os("LEVEE_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let mut group = c.benchmark_group("append");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(1));
    for size in [100usize, 1024] {
        for appenders in [1usize, 8, 64] {
            let dir = tempfile::tempdir_in(&base).expect("tempdir");
            let engine = Arc::new(
                Engine::open(
                    EngineConfig::new(dir.path()),
                    Arc::new(OsVfs) as Arc<dyn Vfs>,
                    Arc::new(SystemClock),
                )
                .expect("open"),
            );
            engine
                .create_stream(StreamUid(1), 86_400_000)
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
            let totals = Arc::new(Totals {
                records: AtomicU64::new(0),
                syncs: AtomicU64::new(0),
                nanos: AtomicU64::new(0),
            });
            let id = BenchmarkId::new(format!("{size}B"), format!("{appenders}_appenders"));
            group.bench_function(id, |b| {
                b.iter_custom(|iters| {
                    let engine = engine.clone();
                    let syncs_before = engine.stats().log_syncs;
                    let started = Instant::now();
                    rt.block_on(async {
                        let per_task = iters.div_ceil(appenders as u64);
                        let mut tasks = Vec::new();
                        for t in 0..appenders {
                            let engine = engine.clone();
                            tasks.push(tokio::spawn(async move {
                                let data = vec![b'x'; size];
                                let key = format!("pk-{t}");
                                for n in 0..per_task {
                                    let shard = ShardUid((t as u64 + n) % SHARDS);
                                    engine
                                        .append(shard, &[(key.as_bytes(), &data)])
                                        .expect("append")
                                        .await
                                        .expect("durable");
                                }
                            }));
                        }
                        for t in tasks {
                            t.await.expect("task");
                        }
                    });
                    let elapsed = started.elapsed();
                    let done = iters.div_ceil(appenders as u64) * appenders as u64;
                    totals.records.fetch_add(done, Ordering::Relaxed);
                    totals
                        .syncs
                        .fetch_add(engine.stats().log_syncs - syncs_before, Ordering::Relaxed);
                    totals
                        .nanos
                        .fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
                    // Scale so criterion's per-iteration time stays per record.
                    elapsed.mul_f64(iters as f64 / done as f64)
                })
            });
            let secs = totals.nanos.load(Ordering::Relaxed) as f64 / 1e9;
            let records = totals.records.load(Ordering::Relaxed) as f64;
            let syncs = totals.syncs.load(Ordering::Relaxed) as f64;
            println!(
                "  {size} B x {appenders} appenders: {:.0} records/s, {:.0} syncs/s, {:.1} records per sync",
                records / secs,
                syncs / secs,
                records / syncs.max(1.0)
            );
            drop(engine);
        }
    }
    group.finish();
}

/// Why log segments are preallocated: a 4 KiB write plus `fdatasync` into a zero-filled file
/// against the same into a file that grows with every write.
fn bench_fdatasync(c: &mut Criterion) {
    use std::os::unix::fs::FileExt;
    let base = std::env::var_os("LEVEE_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let mut group = c.benchmark_group("fdatasync_4KiB");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let block = vec![7u8; 4096];
    const FILE_BYTES: u64 = 256 << 20;
    for preallocated in [true, false] {
        let dir = tempfile::tempdir_in(&base).expect("tempdir");
        let path = dir.path().join("f");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .expect("open");
        if preallocated {
            let zeros = vec![0u8; 1 << 20];
            for i in 0..FILE_BYTES / zeros.len() as u64 {
                f.write_all_at(&zeros, i * zeros.len() as u64)
                    .expect("zero");
            }
            f.sync_all().expect("sync");
        }
        let mut pos = 0u64;
        let name = if preallocated {
            "preallocated"
        } else {
            "growing"
        };
        group.bench_function(name, |b| {
            b.iter(|| {
                f.write_all_at(&block, pos).expect("write");
                f.sync_data().expect("fdatasync");
                pos = (pos + block.len() as u64) % FILE_BYTES;
                if pos == 0 && !preallocated {
                    f.set_len(0).expect("truncate");
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_append, bench_fdatasync);
criterion_main!(benches);
