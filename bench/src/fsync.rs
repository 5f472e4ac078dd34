//! The machine's durability limits, measured in the same run as the servers so Levee's figures
//! can be stated as a fraction of them: the latency of one small write + `fdatasync` (the floor
//! under an acknowledged PutRecord) and the bandwidth of large writes each followed by
//! `fdatasync` (the ceiling for group commit). Both write into a preallocated file, as Levee's
//! log segments are, in a temporary directory on the filesystem given (use Levee's data
//! directory's filesystem), and remove it afterwards.

use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rand::RngCore as _;
use serde_json::json;

use crate::stats::{BenchResult, CpuProbe, Latency};

/// Size of the preallocated file both tests write into (wrapping around).
const FILE_BYTES: u64 = 256 << 20;
/// Chunk used to preallocate the file.
const PREALLOC_CHUNK_BYTES: usize = 4 << 20;

#[derive(Clone, Debug)]
pub struct FsyncOpts {
    pub dir: PathBuf,
    pub duration: Duration,
    pub small_write_bytes: usize,
    pub batch_bytes: usize,
}

/// A file under `dir` removed on drop.
struct TempFile {
    path: PathBuf,
    file: File,
}

impl TempFile {
    fn preallocated(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let path = dir.join(format!("levee-bench-fsync-{}.tmp", std::process::id()));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .with_context(|| format!("open {}", path.display()))?;
        let chunk = vec![0u8; PREALLOC_CHUNK_BYTES];
        let mut written = 0u64;
        while written < FILE_BYTES {
            file.write_all(&chunk)?;
            written += chunk.len() as u64;
        }
        file.sync_all()?;
        file.seek(SeekFrom::Start(0))?;
        Ok(TempFile { path, file })
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Writes `chunk` then `fdatasync`s, repeatedly for `duration`; returns the latency histogram,
/// the number of syncs and the bytes written.
fn write_sync_loop(
    f: &mut TempFile,
    chunk: &[u8],
    duration: Duration,
) -> Result<(Latency, u64, u64, Duration)> {
    let mut latency = Latency::new();
    let mut offset = 0u64;
    let (mut syncs, mut bytes) = (0u64, 0u64);
    let start = Instant::now();
    while start.elapsed() < duration {
        if offset + chunk.len() as u64 > FILE_BYTES {
            offset = 0;
            f.file.seek(SeekFrom::Start(0))?;
        }
        let t = Instant::now();
        f.file.write_all(chunk)?;
        f.file.sync_data()?; // fdatasync(2) on Linux
        latency.record(t.elapsed());
        offset += chunk.len() as u64;
        syncs += 1;
        bytes += chunk.len() as u64;
    }
    Ok((latency, syncs, bytes, start.elapsed()))
}

/// Runs both measurements; returns the small-write latency result and the bandwidth result.
pub fn run(o: &FsyncOpts) -> Result<Vec<BenchResult>> {
    let mut f = TempFile::preallocated(&o.dir)?;
    let mut out = Vec::new();
    for (name, size) in [
        ("latency", o.small_write_bytes),
        ("bandwidth", o.batch_bytes),
    ] {
        let mut chunk = vec![0u8; size.max(1)];
        rand::thread_rng().fill_bytes(&mut chunk);
        let probe = CpuProbe::start(None, None);
        let (latency, syncs, bytes, took) = write_sync_loop(&mut f, &chunk, o.duration)?;
        let secs = took.as_secs_f64().max(1e-9);
        let mut r = BenchResult {
            target: "machine".to_string(),
            kind: "fsync".to_string(),
            workload: format!("write {} + fdatasync ({name})", human_bytes(size)),
            params: json!({"test": name, "write_bytes": size, "dir": o.dir.display().to_string(),
                "file_bytes": FILE_BYTES, "duration_s": o.duration.as_secs_f64()}),
            elapsed_s: secs,
            requests: syncs,
            records: syncs,
            bytes,
            records_per_s: syncs as f64 / secs,
            requests_per_s: syncs as f64 / secs,
            mb_per_s: bytes as f64 / secs / 1e6,
            latency: latency.summary(),
            ..BenchResult::default()
        };
        probe.finish(&mut r);
        out.push(r);
    }
    Ok(out)
}

pub fn human_bytes(n: usize) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} B")
    }
}
