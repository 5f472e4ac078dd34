//! Crash safety under `kill -9`: concurrent writers in a child process
//! (`src/bin/levee-storage-crash-child.rs`) are killed with SIGKILL at a random moment, 25 times
//! over one data directory, and after every kill the engine reopened here must hold every
//! acknowledged record — from this run and from all earlier runs — exactly once, in the shard
//! and at the sequence index its acknowledgement named.
//!
//! Records that were written but never acknowledged (killed between the sync and the `ACK` line)
//! may be present, at most once and intact. Once a restart has served a record it must keep
//! serving it at the same position after later restarts: recovery may not take back what it has
//! already handed to readers.
//!
//! Between runs the verifying engine is stopped alternately with [`Engine::halt`] (no checkpoint:
//! the next run recovers from the child's own checkpoints) and [`Engine::close`] (a clean
//! checkpoint).

#![cfg(unix)]

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use levee_storage::vfs::{OsVfs, Vfs};
use levee_storage::{Engine, ShardUid, StreamUid, SystemClock};
use rand::Rng;

const CHILD: &str = env!("CARGO_BIN_EXE_levee-storage-crash-child");
const ITERATIONS: u64 = 25;
const WRITERS: u64 = 8;
const SHARDS: u64 = 4;
/// How long a run may write before it is killed, counted from its `READY` line.
const RUN_MS_MIN: u64 = 50;
const RUN_MS_MAX: u64 = 400;
/// Generous bound on opening the engine (recovery) and creating the topology in the child.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Most failures listed in a panic message (the count of all is given too).
const FAILURES_SHOWN: usize = 30;

/// Where an acknowledgement placed a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Placement {
    shard: u64,
    seq_ix: u64,
}

/// A record's id `run:<run>/writer:<w>/n:<counter>`, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RecordId {
    run: u64,
    writer: u64,
    n: u64,
}

fn parse_id(id: &str) -> Option<RecordId> {
    let mut parts = id.split('/');
    let run = parts.next()?.strip_prefix("run:")?.parse().ok()?;
    let writer = parts.next()?.strip_prefix("writer:")?.parse().ok()?;
    let n = parts.next()?.strip_prefix("n:")?.parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    Some(RecordId { run, writer, n })
}

/// Mirrors `pad_byte` in the child binary.
fn pad_byte(n: u64, i: usize) -> u8 {
    b'a' + ((n as usize).wrapping_add(i) % 26) as u8
}

/// Checks a record read back against the child's format and returns its id, or says what is
/// wrong with it.
fn check_record(key: &[u8], data: &[u8], runs_so_far: u64) -> Result<String, String> {
    let text_end = data
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b' ')
        .map(|(i, _)| i)
        .nth(1)
        .ok_or_else(|| format!("data has no `<id> <pad_len> ` header: {:?}", preview(data)))?;
    let header = std::str::from_utf8(&data[..text_end])
        .map_err(|_| format!("header is not UTF-8: {:?}", preview(data)))?;
    let (id, pad_len) = header.split_once(' ').expect("two spaces were found");
    let rid = parse_id(id).ok_or_else(|| format!("malformed id {id:?}"))?;
    if rid.run >= runs_so_far || rid.writer >= WRITERS {
        return Err(format!("id {id} names a run or writer that never existed"));
    }
    let expected_key = format!("writer:{}", rid.writer);
    if key != expected_key.as_bytes() {
        return Err(format!(
            "id {id}: partition key {:?}, expected {expected_key:?}",
            String::from_utf8_lossy(key)
        ));
    }
    let pad_len: usize = pad_len
        .parse()
        .map_err(|_| format!("id {id}: malformed pad length {pad_len:?}"))?;
    let pad = &data[text_end + 1..];
    if pad.len() != pad_len {
        return Err(format!(
            "id {id}: {} padding bytes, header says {pad_len}",
            pad.len()
        ));
    }
    if let Some(i) = (0..pad_len).find(|&i| pad[i] != pad_byte(rid.n, i)) {
        return Err(format!(
            "id {id}: padding byte {i} is {:#04x}, expected {:#04x}",
            pad[i],
            pad_byte(rid.n, i)
        ));
    }
    Ok(id.to_owned())
}

fn preview(data: &[u8]) -> String {
    String::from_utf8_lossy(&data[..data.len().min(80)]).into_owned()
}

fn open_engine(dir: &Path) -> Engine {
    Engine::open(
        common::small_config(dir),
        Arc::new(OsVfs) as Arc<dyn Vfs>,
        Arc::new(SystemClock),
    )
    .expect("reopen the engine after the kill")
}

/// What one child run printed before it died.
struct RunOutput {
    /// Complete lines (without `READY`); a partial last line is dropped.
    lines: Vec<String>,
    /// Milliseconds it wrote between `READY` and the kill.
    ran_ms: u128,
}

/// Starts a child run, kills it with SIGKILL `RUN_MS_MIN..=RUN_MS_MAX` ms after its `READY`, and
/// returns every complete line it printed.
fn run_child(dir: &Path, run: u64) -> RunOutput {
    let mut child: Child = Command::new(CHILD)
        .arg(dir)
        .arg(run.to_string())
        .arg(WRITERS.to_string())
        .arg(SHARDS.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the crash child");
    let stdout = child.stdout.take().expect("piped stdout");
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let reader = thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut ready_tx = Some(ready_tx);
        let mut lines = Vec::new();
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let n = reader
                .read_until(b'\n', &mut buf)
                .expect("read child stdout");
            // End of output, or a line cut short by the kill: not an acknowledgement.
            if n == 0 || buf.last() != Some(&b'\n') {
                return lines;
            }
            buf.pop();
            let line = String::from_utf8(buf.clone()).expect("child lines are UTF-8");
            if line == "READY" {
                if let Some(tx) = ready_tx.take() {
                    tx.send(()).expect("the test waits for READY");
                }
            } else {
                lines.push(line);
            }
        }
    });

    if let Err(e) = ready_rx.recv_timeout(READY_TIMEOUT) {
        let _ = child.kill();
        let status = child.wait().expect("wait for the crash child");
        let lines = reader.join().expect("reader thread");
        panic!("run {run}: child never printed READY ({e}); exit {status}; output: {lines:?}");
    }
    let started = Instant::now();
    let run_ms = rand::thread_rng().gen_range(RUN_MS_MIN..=RUN_MS_MAX);
    // The random moment of the crash: this sleep is what the test is about, not synchronisation.
    thread::sleep(Duration::from_millis(run_ms));
    if let Some(status) = child.try_wait().expect("poll the crash child") {
        let lines = reader.join().expect("reader thread");
        let errors: Vec<&String> = lines.iter().filter(|l| !l.starts_with("ACK ")).collect();
        panic!("run {run}: child exited by itself ({status}) before the kill: {errors:?}");
    }
    child.kill().expect("SIGKILL the crash child");
    let status = child.wait().expect("wait for the crash child");
    let ran_ms = started.elapsed().as_millis();
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "run {run}: child must die of SIGKILL, got {status}"
    );
    let lines = reader.join().expect("reader thread");
    RunOutput { lines, ran_ms }
}

/// Parses a run's `ACK` lines into `acked`; returns how many records they acknowledged.
fn collect_acks(run: u64, lines: &[String], acked: &mut HashMap<String, Placement>) -> u64 {
    let mut count = 0;
    for line in lines {
        let mut words = line.split(' ');
        match words.next() {
            Some("ACK") => {}
            Some("ERR") => panic!("run {run}: child reported an error: {line}"),
            _ => panic!("run {run}: unexpected line from the child: {line:?}"),
        }
        let mut num = |what: &str| -> u64 {
            words
                .next()
                .and_then(|w| w.parse().ok())
                .unwrap_or_else(|| panic!("run {run}: ACK line without {what}: {line:?}"))
        };
        let shard = num("shard");
        let first_seq_ix = num("first_seq_ix");
        let n = num("count");
        let ids: Vec<&str> = words.collect();
        assert_eq!(
            ids.len() as u64,
            n,
            "run {run}: ACK line names {} ids for count {n}: {line:?}",
            ids.len()
        );
        for (i, id) in ids.into_iter().enumerate() {
            let rid = parse_id(id)
                .unwrap_or_else(|| panic!("run {run}: malformed id {id:?} in {line:?}"));
            assert_eq!(rid.run, run, "run {run}: acked id {id} of another run");
            let placement = Placement {
                shard,
                seq_ix: first_seq_ix + i as u64,
            };
            if let Some(prev) = acked.insert(id.to_owned(), placement) {
                panic!("run {run}: id {id} acknowledged twice: at {prev:?} and at {placement:?}");
            }
            count += 1;
        }
    }
    count
}

/// Reads every shard, checks each record and the order within each shard, and returns where
/// each id was found. Problems are appended to `failures`.
fn scan(
    engine: &Engine,
    runs_so_far: u64,
    failures: &mut Vec<String>,
) -> HashMap<String, Placement> {
    let mut found: HashMap<String, Placement> = HashMap::new();
    for s in 0..SHARDS {
        let mut prev_seq: Option<u64> = None;
        for (seq_ix, key, data) in common::read_all(engine, ShardUid(s)) {
            if let Some(p) = prev_seq {
                if seq_ix <= p {
                    failures.push(format!(
                        "shard {s}: seq_ix {seq_ix} follows {p}; must strictly increase"
                    ));
                }
            }
            prev_seq = Some(seq_ix);
            let id = match check_record(&key, &data, runs_so_far) {
                Ok(id) => id,
                Err(e) => {
                    failures.push(format!("shard {s} seq_ix {seq_ix}: {e}"));
                    continue;
                }
            };
            let here = Placement { shard: s, seq_ix };
            if let Some(prev) = found.insert(id.clone(), here) {
                failures.push(format!(
                    "id {id} present twice: shard {} seq_ix {} and shard {s} seq_ix {seq_ix}",
                    prev.shard, prev.seq_ix
                ));
            }
        }
    }
    found
}

/// Every record in `expected` must be in `found` at the same place.
fn check_present(
    what: &str,
    expected: &HashMap<String, Placement>,
    found: &HashMap<String, Placement>,
    failures: &mut Vec<String>,
) {
    let mut missing: Vec<(&String, &Placement)> = expected
        .iter()
        .filter(|(id, p)| found.get(*id) != Some(p))
        .collect();
    missing.sort_by_key(|(id, p)| (p.shard, p.seq_ix, id.to_string()));
    for (id, p) in missing {
        match found.get(id) {
            None => failures.push(format!(
                "{what} id {id} missing: expected in shard {} at seq_ix {}",
                p.shard, p.seq_ix
            )),
            Some(f) => failures.push(format!(
                "{what} id {id} misplaced: expected in shard {} at seq_ix {}, found in shard {} at seq_ix {}",
                p.shard, p.seq_ix, f.shard, f.seq_ix
            )),
        }
    }
}

#[test]
fn acknowledged_records_survive_kill_9_exactly_once() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    // Every acknowledgement of every run so far.
    let mut acked: HashMap<String, Placement> = HashMap::new();
    // What the previous restart served; it must be served again, unchanged.
    let mut served: HashMap<String, Placement> = HashMap::new();
    let mut runs_with_acks = 0;
    let mut unacked_durable_total = 0;
    let mut disk_bytes = 0;

    for run in 0..ITERATIONS {
        let out = run_child(dir.path(), run);
        let acked_now = collect_acks(run, &out.lines, &mut acked);
        if acked_now > 0 {
            runs_with_acks += 1;
        }

        let engine = open_engine(dir.path());
        let mut failures = Vec::new();
        let found = scan(&engine, run + 1, &mut failures);
        check_present("acknowledged", &acked, &found, &mut failures);
        check_present("previously served", &served, &found, &mut failures);
        if !failures.is_empty() {
            let shown: Vec<&String> = failures.iter().take(FAILURES_SHOWN).collect();
            panic!(
                "after the kill of run {run} ({} failures, first {}):\n{}",
                failures.len(),
                shown.len(),
                shown
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        let unacked = found.len() - acked.len();
        unacked_durable_total += found
            .keys()
            .filter(|id| !served.contains_key(*id) && !acked.contains_key(*id))
            .count();
        disk_bytes = engine
            .disk_usage_bytes(StreamUid(1))
            .expect("disk usage of the stream");
        println!(
            "run {run:2}: killed after {:3} ms; acked {acked_now:5} (total {:6}); \
             found {:6}, of which {unacked} durable but never acked",
            out.ran_ms,
            acked.len(),
            found.len()
        );
        served = found;

        if run % 2 == 0 {
            engine.halt();
        } else {
            engine.close().expect("clean close of the verifying engine");
        }
    }

    println!(
        "summary: {ITERATIONS} kills in {:.1} s; {} records acknowledged ({runs_with_acks} runs \
         with acks), {} records found after the last restart, {unacked_durable_total} first seen \
         without an ack; {:.1} MB of shard data",
        started.elapsed().as_secs_f64(),
        acked.len(),
        served.len(),
        disk_bytes as f64 / (1 << 20) as f64
    );
    assert!(
        acked.len() > 1000,
        "only {} records acknowledged over {ITERATIONS} runs: the test proved little",
        acked.len()
    );
    assert!(
        runs_with_acks >= ITERATIONS * 4 / 5,
        "only {runs_with_acks} of {ITERATIONS} runs acknowledged anything"
    );
}
