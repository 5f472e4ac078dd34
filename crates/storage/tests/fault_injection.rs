//! Fault injection through the file-I/O trait ([`FaultyVfs`]): a deterministic workload is run once
//! fault-free to count its write-kind operations (`write_all_at`, `set_len`, `create`, `rename`)
//! and sync-kind operations (`sync_data`, `sync_dir`), and then once per operation index with a
//! transient ENOSPC or EIO injected exactly there. Every run proves:
//!
//! - the fault fired (no vacuous runs);
//! - every failed append carries a clear error: `Error::Io` with the injected errno and a path in
//!   the data directory, or `Error::Poisoned` whose reason names the failed operation, the OS
//!   error and the file;
//! - the engine's state follows the failure policy of `wal.rs`: a failed sync or any EIO poisons;
//!   an ENOSPC on a log write (or while rolling the log) fails only its batch and the engine keeps
//!   accepting appends; a failure while applying or checkpointing poisons; poisoned ⇔ later
//!   appends are refused with `Poisoned`;
//! - after the fault is cleared and the engine reopened on the same directory, every acknowledged
//!   record is present exactly once at its acknowledged sequence index with its data; the only
//!   other records are ones whose append failed after being logged (durable but unacknowledged),
//!   each at most once, and never a batch that was refused for lack of space; the reopened engine
//!   accepts appends.
//!
//! The sweep collects every violation and fails once at the end with the full list, naming for
//! each the operation the fault hit (from a tracing wrapper around the `FaultyVfs`).
//!
//! A second test proves that when applying one entry of a multi-entry batch fails, the entries
//! behind it in the batch (durable, applied again at restart) are also answered with the clear
//! `Poisoned` error.

mod common;

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use levee_storage::vfs::{FaultOp, FaultyVfs, VFile, Vfs};
use levee_storage::{Clock, Engine, Error, ShardUid, StreamUid};

const DAY_MS: u64 = 24 * 3_600_000;
const STREAM: StreamUid = StreamUid(1);
const SHARDS: [ShardUid; 3] = [ShardUid(10), ShardUid(11), ShardUid(12)];
/// Appends in the workload (each waited on before the next).
const APPENDS: usize = 60;
/// Threads sharing the sweep's runs.
const SWEEP_THREADS: usize = 4;

// ---------------------------------------------------------------------------------------------
// A tracing wrapper: records, in order, every operation that `FaultyVfs` counts, so that a fault
// index can be named ("sync_data wal/wal-0000000000000002.log").

#[derive(Default)]
struct Trace {
    writes: Vec<String>,
    syncs: Vec<String>,
}

/// The current name of an open file (updated when the file is renamed).
type Name = Arc<Mutex<String>>;

struct TracingVfs {
    inner: Arc<FaultyVfs>,
    root: PathBuf,
    trace: Arc<Mutex<Trace>>,
    /// Names of the files opened so far, by current relative path.
    names: Mutex<HashMap<String, Vec<Name>>>,
    /// When set, `sync_data` of any file whose name starts with the prefix fails with the errno
    /// (an extra, path-based fault used by the mid-batch test).
    fail_syncs_under: Arc<Mutex<Option<(String, i32)>>>,
}

struct TracingFile {
    inner: Arc<dyn VFile>,
    name: Name,
    trace: Arc<Mutex<Trace>>,
    fail_syncs_under: Arc<Mutex<Option<(String, i32)>>>,
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

fn record(trace: &Mutex<Trace>, op: FaultOp, what: String) {
    let mut t = trace.lock().unwrap();
    match op {
        FaultOp::Write => t.writes.push(what),
        FaultOp::Sync => t.syncs.push(what),
    }
}

impl TracingVfs {
    fn new(inner: Arc<FaultyVfs>, root: &Path) -> Self {
        Self {
            inner,
            root: root.to_path_buf(),
            trace: Arc::default(),
            names: Mutex::default(),
            fail_syncs_under: Arc::default(),
        }
    }

    fn wrap(&self, f: Arc<dyn VFile>, path: &Path) -> Arc<dyn VFile> {
        let rel = rel(&self.root, path);
        let name = Arc::new(Mutex::new(rel.clone()));
        self.names
            .lock()
            .unwrap()
            .entry(rel)
            .or_default()
            .push(name.clone());
        Arc::new(TracingFile {
            inner: f,
            name,
            trace: self.trace.clone(),
            fail_syncs_under: self.fail_syncs_under.clone(),
        })
    }
}

impl TracingFile {
    fn name(&self) -> String {
        self.name.lock().unwrap().clone()
    }
}

impl VFile for TracingFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        record(
            &self.trace,
            FaultOp::Write,
            format!("write_all_at {} @{offset}+{}", self.name(), buf.len()),
        );
        self.inner.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        let name = self.name();
        record(&self.trace, FaultOp::Sync, format!("sync_data {name}"));
        if let Some((prefix, errno)) = &*self.fail_syncs_under.lock().unwrap() {
            if name.starts_with(prefix.as_str()) {
                return Err(io::Error::from_raw_os_error(*errno));
            }
        }
        self.inner.sync_data()
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        record(
            &self.trace,
            FaultOp::Write,
            format!("set_len {} to {len}", self.name()),
        );
        self.inner.set_len(len)
    }
}

impl Vfs for TracingVfs {
    fn open(&self, path: &Path) -> io::Result<Arc<dyn VFile>> {
        Ok(self.wrap(self.inner.open(path)?, path))
    }
    fn create(&self, path: &Path) -> io::Result<Arc<dyn VFile>> {
        record(
            &self.trace,
            FaultOp::Write,
            format!("create {}", rel(&self.root, path)),
        );
        Ok(self.wrap(self.inner.create(path)?, path))
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_file(path)
    }
    fn rename(&self, from_path: &Path, to_path: &Path) -> io::Result<()> {
        let (from, to) = (rel(&self.root, from_path), rel(&self.root, to_path));
        record(
            &self.trace,
            FaultOp::Write,
            format!("rename {from} -> {to}"),
        );
        self.inner.rename(from_path, to_path)?;
        let mut names = self.names.lock().unwrap();
        if let Some(moved) = names.remove(&from) {
            for n in &moved {
                *n.lock().unwrap() = to.clone();
            }
            names.insert(to, moved);
        }
        Ok(())
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.create_dir_all(path)
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        self.inner.list_dir(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        record(
            &self.trace,
            FaultOp::Sync,
            format!("sync_dir {}/", rel(&self.root, path)),
        );
        self.inner.sync_dir(path)
    }
    fn exists(&self, path: &Path) -> bool {
        self.inner.exists(path)
    }
    fn file_len(&self, path: &Path) -> io::Result<u64> {
        self.inner.file_len(path)
    }
}

// ---------------------------------------------------------------------------------------------
// The workload.

type Rec = (Vec<u8>, Vec<u8>);

/// Append number `n`: its shard and records (keys are unique across the workload). Sizes vary from
/// tens of bytes to ~19 KiB so that, with `small_config`, the log rolls twice (once creating a new
/// segment, once recycling a spare) and every shard seals segments.
fn append_spec(n: usize) -> (ShardUid, Vec<Rec>) {
    let shard = SHARDS[n % SHARDS.len()];
    let size = ((n * 7) % 20) * 1000 + 37 * (n % 5) + 10;
    let parts = if n % 4 == 3 { 2 } else { 1 };
    let recs = (0..parts)
        .map(|j| {
            let key = format!("k{n}-{j}").into_bytes();
            let data = (0..size / parts)
                .map(|b| {
                    (b as u32)
                        .wrapping_mul(31)
                        .wrapping_add(n as u32 * 7 + j as u32) as u8
                })
                .collect();
            (key, data)
        })
        .collect();
    (shard, recs)
}

/// A record the engine acknowledged.
#[derive(Debug, Clone)]
struct Acked {
    shard: ShardUid,
    seq_ix: u64,
    data: Vec<u8>,
}

/// A fault to inject: operation kind, zero-based index counted from arming, errno.
#[derive(Debug, Clone, Copy)]
struct Fault {
    op: FaultOp,
    at: u64,
    errno: i32,
}

/// What one run of the workload observed.
#[derive(Default)]
struct RunReport {
    /// Operations of each kind between arming and clearing (the fault-free run's counts matter).
    writes_after_arm: u64,
    syncs_after_arm: u64,
    /// `FaultyVfs::stats()` counters over the same window.
    stats_writes_after_arm: u64,
    stats_syncs_after_arm: u64,
    fired: bool,
    /// The operation the fault hit, from the trace.
    label: String,
    /// How the engine dealt with it.
    outcome: Outcome,
    violations: Vec<String>,
    log_checkpoints: u64,
    segments_sealed: u64,
}

#[derive(Default, Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Outcome {
    /// No fault armed or nothing failed.
    #[default]
    Clean,
    /// An append failed and the engine kept accepting appends.
    Recoverable,
    /// An append failed and the engine poisoned itself.
    Poisoned,
    /// The fault fired but no append failed (the engine tolerated it by design).
    Tolerated,
}

fn strerror(errno: i32) -> String {
    io::Error::from_raw_os_error(errno).to_string()
}

/// Whether `err` is a clear report of the injected fault; `Err(why not)` otherwise.
fn check_clear(err: &Error, errno: i32, dir: &Path) -> Result<(), String> {
    let text = err.to_string();
    let dir = dir.display().to_string();
    match err {
        Error::Io { .. } => {
            if err.errno() != Some(errno) {
                return Err(format!(
                    "Io error carries errno {:?}, injected {errno}: {text}",
                    err.errno()
                ));
            }
            if !text.contains(&dir) {
                return Err(format!("Io error does not name a file in {dir}: {text}"));
            }
            Ok(())
        }
        Error::Poisoned { reason } => {
            if !reason.contains(&strerror(errno)) {
                return Err(format!(
                    "poison reason does not name the OS error ({}): {reason}",
                    strerror(errno)
                ));
            }
            if !reason.contains(&format!(" failed on {dir}")) {
                return Err(format!(
                    "poison reason does not name the failed operation and a file in {dir}: {reason}"
                ));
            }
            Ok(())
        }
        other => Err(format!("unclear error {other:?} ({text})")),
    }
}

fn violate(v: &mut Vec<String>, s: String) {
    v.push(s);
}

fn setup(engine: &Engine) {
    engine
        .create_stream(STREAM, DAY_MS)
        .unwrap()
        .wait()
        .unwrap();
    for (i, s) in SHARDS.iter().enumerate() {
        engine
            .create_shard(*s, STREAM, i as u32)
            .unwrap()
            .wait()
            .unwrap();
    }
}

/// Runs the workload in `dir` with `fault` armed after setup, then clears it, halts, reopens on
/// the same directory and verifies what survived.
fn run(dir: &Path, fault: Option<Fault>) -> RunReport {
    let mut rep = RunReport::default();
    let mut violations = Vec::new();

    let faulty = Arc::new(FaultyVfs::new());
    let vfs = Arc::new(TracingVfs::new(faulty.clone(), dir));
    let trace = vfs.trace.clone();
    let clock = common::clock();
    let engine = Engine::open(
        common::small_config(dir),
        vfs.clone() as Arc<dyn Vfs>,
        clock.clone(),
    )
    .expect("open engine");
    setup(&engine);

    // Arm after setup; remember where the trace and the counters stood.
    let (w0, s0) = {
        let t = trace.lock().unwrap();
        (t.writes.len(), t.syncs.len())
    };
    let stats_w0 = faulty.stats().writes.load(Ordering::Relaxed);
    let stats_s0 = faulty.stats().syncs.load(Ordering::Relaxed);
    if let Some(f) = fault {
        faulty.arm(f.op, f.at, f.errno, false);
    }

    let mut acked: HashMap<Vec<u8>, Acked> = HashMap::new();
    let mut acked_order: Vec<Vec<u8>> = Vec::new();
    // Keys of appends whose ticket failed (possibly durable), and whether the engine stayed
    // usable after that failure (then the refused batch must never reappear).
    let mut failed: HashMap<Vec<u8>, bool> = HashMap::new();
    // Keys of appends refused at submit (never logged: must never appear).
    let mut refused: HashSet<Vec<u8>> = HashSet::new();
    let mut poisoned: Option<String> = None;
    let mut recoverable_failure_seen = false;

    for n in 0..APPENDS {
        let (shard, recs) = append_spec(n);
        let refs: Vec<(&[u8], &[u8])> = recs
            .iter()
            .map(|(k, d)| (k.as_slice(), d.as_slice()))
            .collect();
        clock.advance_ms(5);
        if let Some(reason) = &poisoned {
            // A poisoned engine refuses every append at submit, naming the same reason.
            match engine.append(shard, &refs) {
                Err(Error::Poisoned { reason: r }) if &r == reason => {}
                Err(e) => violate(
                    &mut violations,
                    format!("append #{n} after poisoning failed with {e:?}, expected Poisoned({reason:?})"),
                ),
                Ok(t) => {
                    let r = t.wait();
                    violate(
                        &mut violations,
                        format!("append #{n} was accepted by a poisoned engine (ticket: {r:?})"),
                    );
                }
            }
            for (k, _) in &recs {
                refused.insert(k.clone());
            }
            continue;
        }
        let ticket = match engine.append(shard, &refs) {
            Ok(t) => t,
            Err(e) => {
                violate(
                    &mut violations,
                    format!("append #{n} refused at submit by an unpoisoned engine: {e:?}"),
                );
                for (k, _) in &recs {
                    refused.insert(k.clone());
                }
                continue;
            }
        };
        match ticket.wait() {
            Ok(a) => {
                if a.count as usize != recs.len() {
                    violate(
                        &mut violations,
                        format!("append #{n}: count {} != {}", a.count, recs.len()),
                    );
                }
                for (j, (k, d)) in recs.iter().enumerate() {
                    acked.insert(
                        k.clone(),
                        Acked {
                            shard,
                            seq_ix: a.first_seq_ix + j as u64,
                            data: d.clone(),
                        },
                    );
                    acked_order.push(k.clone());
                }
            }
            Err(err) => {
                let Some(f) = fault else {
                    panic!("append #{n} failed without a fault: {err:?}");
                };
                if !faulty.fired() {
                    violate(
                        &mut violations,
                        format!("append #{n} failed but the fault has not fired: {err}"),
                    );
                }
                if recoverable_failure_seen {
                    violate(
                        &mut violations,
                        format!("append #{n} failed after the engine recovered from a transient fault: {err}"),
                    );
                }
                if let Err(why) = check_clear(&err, f.errno, dir) {
                    violate(
                        &mut violations,
                        format!("append #{n}: unclear error: {why}"),
                    );
                }
                let state = engine.poisoned();
                // The error and the engine's state must agree.
                match (&err, &state) {
                    (Error::Poisoned { reason }, Some(p)) if reason == p => {}
                    (Error::Io { .. }, None) => {}
                    _ => violate(
                        &mut violations,
                        format!("append #{n} failed with {err} but engine.poisoned() is {state:?}"),
                    ),
                }
                // The policy: a failed sync, or any EIO, poisons.
                if state.is_none() && f.op == FaultOp::Sync {
                    violate(
                        &mut violations,
                        format!("a failed sync did not poison the engine (append #{n} failed with: {err})"),
                    );
                }
                if state.is_none() && f.errno == libc::EIO {
                    violate(
                        &mut violations,
                        format!(
                            "an EIO did not poison the engine (append #{n} failed with: {err})"
                        ),
                    );
                }
                if state.is_none() && !err.is_no_space() {
                    violate(
                        &mut violations,
                        format!("append #{n} failed without poisoning, but not for lack of space: {err}"),
                    );
                }
                let usable = state.is_none();
                for (k, _) in &recs {
                    failed.insert(k.clone(), usable);
                }
                if usable {
                    recoverable_failure_seen = true;
                    rep.outcome = Outcome::Recoverable;
                } else {
                    rep.outcome = Outcome::Poisoned;
                }
                poisoned = state;
            }
        }
    }
    if let (Some(p), Outcome::Clean) = (&engine.poisoned(), rep.outcome) {
        violate(
            &mut violations,
            format!("engine poisoned ({p}) although every append succeeded"),
        );
    }

    // While still usable, the engine serves exactly what it acknowledged.
    if poisoned.is_none() {
        for s in SHARDS {
            let got: Vec<(u64, Vec<u8>, Vec<u8>)> = common::read_all(&engine, s);
            let want: Vec<(u64, Vec<u8>, Vec<u8>)> = acked_order
                .iter()
                .filter(|k| acked[*k].shard == s)
                .map(|k| (acked[k].seq_ix, k.clone(), acked[k].data.clone()))
                .collect();
            if got != want {
                violate(
                    &mut violations,
                    format!(
                        "before reopen, {s} serves {} records, acknowledged {} (keys {:?} vs {:?})",
                        got.len(),
                        want.len(),
                        got.iter()
                            .map(|r| String::from_utf8_lossy(&r.1).into_owned())
                            .collect::<Vec<_>>(),
                        want.iter()
                            .map(|r| String::from_utf8_lossy(&r.1).into_owned())
                            .collect::<Vec<_>>()
                    ),
                );
            }
        }
    }

    rep.fired = faulty.fired();
    faulty.clear();
    {
        let t = trace.lock().unwrap();
        rep.writes_after_arm = (t.writes.len() - w0) as u64;
        rep.syncs_after_arm = (t.syncs.len() - s0) as u64;
        if let Some(f) = fault {
            let (list, base) = match f.op {
                FaultOp::Write => (&t.writes, w0),
                FaultOp::Sync => (&t.syncs, s0),
            };
            rep.label = list
                .get(base + f.at as usize)
                .cloned()
                .unwrap_or_else(|| "(not reached)".into());
        }
    }
    rep.stats_writes_after_arm = faulty.stats().writes.load(Ordering::Relaxed) - stats_w0;
    rep.stats_syncs_after_arm = faulty.stats().syncs.load(Ordering::Relaxed) - stats_s0;
    let stats = engine.stats();
    rep.log_checkpoints = stats.log_checkpoints;
    rep.segments_sealed = stats.segments_sealed;
    if fault.is_some() && rep.fired && rep.outcome == Outcome::Clean {
        rep.outcome = Outcome::Tolerated;
    }
    engine.halt();

    // Reopen on the same directory with the plain OS file system and check what survived.
    let engine = match Engine::open(
        common::small_config(dir),
        Arc::new(levee_storage::vfs::OsVfs) as Arc<dyn Vfs>,
        clock.clone() as Arc<dyn Clock>,
    ) {
        Ok(e) => e,
        Err(e) => {
            violations.push(format!("reopen failed: {e}"));
            rep.violations = violations;
            return rep;
        }
    };
    if let Some(p) = engine.poisoned() {
        violations.push(format!("reopened engine is poisoned: {p}"));
    }
    let mut seen: HashMap<Vec<u8>, usize> = HashMap::new();
    for s in SHARDS {
        let mut last: Option<u64> = None;
        for (seq_ix, key, data) in common::read_all(&engine, s) {
            let name = String::from_utf8_lossy(&key).into_owned();
            if let Some(l) = last {
                if seq_ix <= l {
                    violations.push(format!("{s}: seq_ix {seq_ix} after {l}"));
                }
            }
            last = Some(seq_ix);
            *seen.entry(key.clone()).or_default() += 1;
            if let Some(a) = acked.get(&key) {
                if a.shard != s || a.seq_ix != seq_ix || a.data != data {
                    violations.push(format!(
                        "acknowledged record {name} came back as {s} seq_ix {seq_ix} ({} bytes), acknowledged as {} seq_ix {} ({} bytes)",
                        data.len(),
                        a.shard,
                        a.seq_ix,
                        a.data.len()
                    ));
                }
            } else if let Some(&usable) = failed.get(&key) {
                if usable {
                    violations.push(format!(
                        "record {name}, whose append was refused by a still-usable engine, reappeared after restart at {s} seq_ix {seq_ix}"
                    ));
                }
            } else if refused.contains(&key) {
                violations.push(format!(
                    "record {name}, refused at submit, appeared after restart"
                ));
            } else {
                violations.push(format!("unknown record {name} in {s}"));
            }
        }
    }
    for (key, count) in &seen {
        if *count > 1 {
            violations.push(format!(
                "record {} appears {count} times",
                String::from_utf8_lossy(key)
            ));
        }
    }
    let lost: Vec<String> = acked_order
        .iter()
        .filter(|k| !seen.contains_key(*k))
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    if !lost.is_empty() {
        violations.push(format!(
            "{} acknowledged records lost: {lost:?}",
            lost.len()
        ));
    }
    // The reopened engine accepts appends, after everything already there.
    for s in SHARDS {
        let tip = common::read_all(&engine, s).last().map(|r| r.0);
        match engine.append(s, &[(b"after", b"reopen")]).map(|t| t.wait()) {
            Ok(Ok(a)) => {
                if tip.is_some_and(|t| a.first_seq_ix <= t) {
                    violations.push(format!(
                        "{s}: append after reopen got seq_ix {} <= existing {tip:?}",
                        a.first_seq_ix
                    ));
                }
            }
            Ok(Err(e)) | Err(e) => violations.push(format!("{s}: append after reopen failed: {e}")),
        }
    }
    if let Err(e) = engine.close() {
        violations.push(format!("close after reopen failed: {e}"));
    }
    rep.violations = violations;
    rep
}

/// Which operations an engine may let fail without failing any append: releasing retired log
/// segments (renaming them to spares, syncing the log directory afterwards).
fn tolerable(label: &str) -> bool {
    (label.starts_with("rename wal/wal-") && label.contains("-> wal/spare-"))
        || label == "sync_dir wal/"
}

#[test]
fn every_write_and_sync_fault_is_reported_clearly_and_loses_nothing_acknowledged() {
    let started = Instant::now();
    let base = tempfile::tempdir().unwrap();

    // Fault-free run: counts the fault points and checks the workload exercises rolls and seals.
    let clean_dir = base.path().join("clean");
    let clean = run(&clean_dir, None);
    assert!(
        clean.violations.is_empty(),
        "fault-free run: {:#?}",
        clean.violations
    );
    assert!(
        clean.log_checkpoints >= 3,
        "the workload must roll the log at least twice after setup (checkpoints: {})",
        clean.log_checkpoints
    );
    assert!(
        clean.segments_sealed >= 3,
        "the workload must seal shard segments (sealed: {})",
        clean.segments_sealed
    );
    let total_writes = clean.writes_after_arm;
    let total_syncs = clean.syncs_after_arm;
    println!(
        "fault-free workload: {total_writes} write-kind ops ({} counted by VfsStats::writes), \
         {total_syncs} sync-kind ops ({} counted by VfsStats::syncs), {:?}",
        clean.stats_writes_after_arm,
        clean.stats_syncs_after_arm,
        started.elapsed()
    );

    // Every (operation kind, errno, index) is one run in a fresh directory; runs are independent,
    // so they share a few threads (the time goes into fsyncs, not CPU).
    let mut jobs = Vec::new();
    for op in [FaultOp::Write, FaultOp::Sync] {
        let total = match op {
            FaultOp::Write => total_writes,
            FaultOp::Sync => total_syncs,
        };
        for errno in [libc::ENOSPC, libc::EIO] {
            for at in 0..total {
                jobs.push(Fault { op, at, errno });
            }
        }
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, RunReport)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..SWEEP_THREADS {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&fault) = jobs.get(i) else { return };
                let dir = base.path().join(format!("run-{i}"));
                let rep = run(&dir, Some(fault));
                let _ = std::fs::remove_dir_all(&dir);
                results.lock().unwrap().push((i, rep));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _)| *i);
    assert_eq!(results.len(), jobs.len(), "a run panicked");

    let mut violations: Vec<String> = Vec::new();
    let points = jobs.len();
    let mut tally: HashMap<(String, Outcome), u64> = HashMap::new();
    let mut tolerated: Vec<String> = Vec::new();
    for (i, rep) in results {
        let Fault { op, at, errno } = jobs[i];
        let ename = if errno == libc::ENOSPC {
            "ENOSPC"
        } else {
            "EIO"
        };
        let tag = format!("{op:?} #{at} {ename} [{}]", rep.label);
        if !rep.fired {
            violations.push(format!("{tag}: the fault never fired"));
        }
        if rep.outcome == Outcome::Tolerated {
            tolerated.push(tag.clone());
            if !tolerable(&rep.label) {
                violations.push(format!(
                    "{tag}: the fault fired but no append failed and the engine is not poisoned"
                ));
            }
        }
        *tally
            .entry((format!("{op:?} {ename}"), rep.outcome))
            .or_default() += 1;
        for v in rep.violations {
            violations.push(format!("{tag}: {v}"));
        }
    }

    let mut tally: Vec<_> = tally.into_iter().collect();
    tally.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    println!(
        "fault points exercised: {points} ({total_writes} write + {total_syncs} sync indexes × ENOSPC, EIO) in {:?}",
        started.elapsed()
    );
    for ((kind, outcome), n) in &tally {
        println!("  {kind:<12} {outcome:?}: {n}");
    }
    println!("faults tolerated without failing an append: {tolerated:#?}");
    assert!(
        violations.is_empty(),
        "{} violations over {points} fault points:\n{}",
        violations.len(),
        violations.join("\n")
    );
}

/// When applying one entry of a multi-entry batch fails, the log is poisoned and the entries of
/// that batch behind the failed one are durable (they are applied again at restart): their
/// callers must get a clear error naming the poisoning, not `Closed` ("the storage engine is shut
/// down") from a dropped reply channel.
#[test]
fn apply_failure_mid_batch_answers_every_entry_of_the_batch_clearly() {
    let base = tempfile::tempdir().unwrap();
    let mut batched_cases = 0;
    let mut problems = Vec::new();
    for attempt in 0..20 {
        let dir = base.path().join(format!("attempt-{attempt}"));
        let faulty = Arc::new(FaultyVfs::new());
        let vfs = Arc::new(TracingVfs::new(faulty, &dir));
        let clock = common::clock();
        let engine = Engine::open(
            common::small_config(&dir),
            vfs.clone() as Arc<dyn Vfs>,
            clock.clone(),
        )
        .expect("open engine");
        setup(&engine);
        let [full, busy, other] = SHARDS;
        // Fill `full`'s active segment to its size limit, so that its next append seals it (and
        // sealing syncs the segment).
        let chunk = vec![7u8; 16 << 10];
        for i in 0..4 {
            let key = format!("fill-{i}");
            engine
                .append(full, &[(key.as_bytes(), &chunk)])
                .unwrap()
                .wait()
                .unwrap();
        }
        // From now on, syncing any shard file fails: applying the next append to `full` fails.
        *vfs.fail_syncs_under.lock().unwrap() = Some(("shards/".into(), libc::EIO));
        // A large entry keeps the writer busy, so that `a` and `b` queue up behind it and are
        // (usually) written as one batch: `a` fails to apply, `b` is behind it.
        let big = vec![1u8; 48 << 10];
        let x = engine.append(busy, &[(b"x", &big)]).unwrap();
        let a = engine
            .append(full, &[(b"a", b"seals the full segment")])
            .unwrap();
        let b = engine
            .append(other, &[(b"b", b"behind a in the batch")])
            .unwrap();
        let (rx, ra, rb) = (x.wait(), a.wait(), b.wait());
        let poisoned = engine.poisoned();
        *vfs.fail_syncs_under.lock().unwrap() = None;
        engine.halt();
        assert!(rx.is_ok(), "x must succeed: {rx:?}");
        let Err(ea) = ra else {
            panic!("applying a must fail")
        };
        assert!(
            matches!(ea, Error::Poisoned { .. }),
            "a fails with Poisoned: {ea:?}"
        );
        assert!(poisoned.is_some());
        let eb = rb.expect_err("b is behind a poisoned entry");

        // Was b in a's batch? Then it is in the log and reappears after a restart.
        let engine = common::open(&dir, clock);
        let b_durable = common::read_all(&engine, other).iter().any(|r| r.1 == b"b");
        engine.close().unwrap();
        println!("attempt {attempt}: b durable: {b_durable}, b's error: {eb:?}");
        if !matches!(eb, Error::Poisoned { .. }) {
            problems.push(format!(
                "attempt {attempt}: b (durable: {b_durable}) failed with {eb:?} (\"{eb}\") while the engine was poisoned with {poisoned:?}"
            ));
        }
        if b_durable {
            batched_cases += 1;
            if batched_cases >= 3 {
                break;
            }
        }
    }
    assert!(
        problems.is_empty(),
        "entries behind a failed apply got unclear errors:\n{}",
        problems.join("\n")
    );
    assert!(
        batched_cases > 0,
        "never managed to put a and b in one batch; the test proved nothing"
    );
}
