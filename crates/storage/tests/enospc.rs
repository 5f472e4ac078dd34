//! A real full disk, not an injected one: the engine runs on a 4 MiB tmpfs (mounted by the test,
//! which needs root — CI runs as root) that a filler file has partly used, and appends 2 KiB
//! records until the file system refuses a write. Proves, on a real ENOSPC:
//!
//! - the failing append reports it clearly (`Error::is_no_space()`, or a `Poisoned` reason naming
//!   "No space left on device" and the file);
//! - the state the engine reports is consistent: poisoned ⇔ later appends are refused (even after
//!   space is freed, until a restart); not poisoned ⇒ once space is freed, appends succeed again
//!   without a restart;
//! - a poisoned engine reopened while the disk is still full fails to open with a clear no-space
//!   error (replay needs the space) and damages nothing;
//! - after freeing space and reopening, every acknowledged record is present exactly once at its
//!   acknowledged sequence index with its data, a failed append appears at most once (and only if
//!   the engine poisoned itself), and new appends succeed.
//!
//! Two fill levels aim at the two places a full disk bites: the shard store's segment writes
//! (applied after the log sync, so the engine poisons itself) and the log's preallocation of a new
//! segment when it rolls (the batch is refused and the log stays usable). Each test reports which
//! branch it took; the assertions hold for either.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use levee_storage::vfs::{OsVfs, Vfs};
use levee_storage::{Engine, Error, ShardUid, StreamUid};

const DAY_MS: u64 = 24 * 3_600_000;
const STREAM: StreamUid = StreamUid(1);
const SHARDS: [ShardUid; 2] = [ShardUid(1), ShardUid(2)];
const FS_BYTES: u64 = 4 << 20;
const RECORD_BYTES: usize = 2 << 10;
/// Far more than fits: the loop must end with a no-space failure long before this.
const APPENDS_MAX: usize = 10_000;

/// A size-limited tmpfs mounted over a temporary directory; unmounted (lazily) when dropped.
struct TmpfsMount {
    path: PathBuf,
}

impl TmpfsMount {
    fn new(path: &Path, bytes: u64) -> TmpfsMount {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        if euid != 0 {
            panic!(
                "this test needs root to mount a size-limited tmpfs (euid is {euid}); CI runs \
                 it as root — run it as root (e.g. `sudo -E cargo test -p levee-storage --test enospc`)"
            );
        }
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(path)
            .output()
            .unwrap_or_else(|e| panic!("could not run `mount`: {e}"));
        assert!(
            out.status.success(),
            "`mount -t tmpfs -o size={bytes} tmpfs {}` failed ({}): {}{}",
            path.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        TmpfsMount {
            path: path.to_path_buf(),
        }
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        match Command::new("umount").arg("-l").arg(&self.path).status() {
            Ok(s) if s.success() => {}
            other => eprintln!("umount -l {} failed: {other:?}", self.path.display()),
        }
    }
}

/// Bytes the file system at `path` still has free.
fn free_bytes(path: &Path) -> u64 {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path and `st` is a properly sized, writable buffer.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    assert_eq!(rc, 0, "statvfs {}", path.display());
    st.f_bavail as u64 * st.f_frsize as u64
}

fn record(n: usize) -> (Vec<u8>, Vec<u8>) {
    let key = format!("r{n}").into_bytes();
    let data = (0..RECORD_BYTES)
        .map(|i| (i as u32).wrapping_mul(131).wrapping_add(n as u32) as u8)
        .collect();
    (key, data)
}

/// Whether `err` clearly says the disk is full, naming a file under `root`.
fn assert_no_space(err: &Error, root: &Path) {
    let text = err.to_string();
    let clear = err.is_no_space()
        || matches!(err, Error::Poisoned { reason } if reason.contains("No space left on device"));
    assert!(clear, "the failure is not clearly a full disk: {err:?}");
    assert!(
        text.contains(&root.display().to_string()),
        "the error does not name the file: {text}"
    );
}

/// Which way the engine took the full disk.
#[derive(Debug, PartialEq, Eq)]
enum Branch {
    /// The failure poisoned the engine; a restart was needed.
    Poisoned,
    /// The failure only failed its batch; freeing space made appends work again in place.
    Recovered,
}

/// Opens the engine on a tmpfs of [`FS_BYTES`], uses all but `leave_free_bytes` of the free space
/// with a filler file, appends until a write fails, frees the filler, and checks what the engine
/// reports and keeps.
fn fill_until_no_space(leave_free_bytes: u64) -> Branch {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let mount = TmpfsMount::new(tmp.path(), FS_BYTES);
    let root = mount.path.clone();
    let filler = root.join("filler");
    let dir = root.join("data");
    let clock = common::clock();
    let open = || {
        Engine::open(
            common::small_config(&dir),
            Arc::new(OsVfs) as Arc<dyn Vfs>,
            clock.clone(),
        )
    };

    let engine = open().expect("open the engine on the small file system");
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
    // Take all but `leave_free_bytes` of what is left with a filler file.
    let free = free_bytes(&root);
    assert!(
        free > leave_free_bytes,
        "only {free} bytes free after setup"
    );
    let filler_bytes = (free - leave_free_bytes) as usize;
    std::fs::write(&filler, vec![0xa5u8; filler_bytes]).expect("write the filler file");
    println!(
        "after setup {free} bytes were free; filler of {filler_bytes} bytes leaves {}",
        free_bytes(&root)
    );

    // Append until the file system refuses.
    let mut acked: HashMap<Vec<u8>, (ShardUid, u64, Vec<u8>)> = HashMap::new();
    // Keys of appends that failed (the first may be durable if the engine poisoned itself).
    let mut failed_keys: Vec<Vec<u8>> = Vec::new();
    let mut failure = None;
    for n in 0..APPENDS_MAX {
        let shard = SHARDS[n % SHARDS.len()];
        let (key, data) = record(n);
        clock.advance_ms(1);
        let ticket = engine
            .append(shard, &[(&key, &data)])
            .unwrap_or_else(|e| panic!("append #{n} refused at submit before any failure: {e}"));
        match ticket.wait() {
            Ok(a) => {
                acked.insert(key, (shard, a.first_seq_ix, data));
            }
            Err(e) => {
                failed_keys.push(key);
                failure = Some((n, e));
                break;
            }
        }
    }
    let Some((n, err)) = failure else {
        panic!("{APPENDS_MAX} appends of {RECORD_BYTES} bytes fit in a {FS_BYTES}-byte file system")
    };
    let poisoned = engine.poisoned();
    println!(
        "append #{n} failed after {} acknowledged ({} bytes free): {err}",
        acked.len(),
        free_bytes(&root)
    );
    println!("engine.poisoned(): {poisoned:?}");
    assert_no_space(&err, &root);
    // The error and the reported state agree.
    match (&err, &poisoned) {
        (Error::Poisoned { reason }, Some(p)) => assert_eq!(reason, p),
        (Error::Io { .. }, None) => {}
        _ => panic!("append failed with {err:?} but engine.poisoned() is {poisoned:?}"),
    }

    // Still full and not poisoned: another append may fail again, for lack of space only, and
    // leaves the engine usable.
    if poisoned.is_none() {
        let (k, d) = record(APPENDS_MAX + 1);
        match engine.append(SHARDS[1], &[(&k, &d)]).and_then(|t| t.wait()) {
            Ok(a) => {
                acked.insert(k, (SHARDS[1], a.first_seq_ix, d));
            }
            Err(e) => {
                println!("retry while still full failed too: {e}");
                assert!(e.is_no_space(), "retry while full failed with {e:?}");
                failed_keys.push(k);
            }
        }
        assert_eq!(
            engine.poisoned(),
            None,
            "a retry while full poisoned the engine"
        );
    }

    // Free the space.
    std::fs::remove_file(&filler).unwrap();
    let (k, d) = record(APPENDS_MAX);
    let branch = match &poisoned {
        Some(reason) => {
            // Poisoned: appends are refused, naming the reason, even with space available again.
            match engine.append(SHARDS[0], &[(&k, &d)]) {
                Err(Error::Poisoned { reason: r }) => assert_eq!(&r, reason),
                Err(e) => panic!("append to a poisoned engine failed with {e:?}"),
                Ok(t) => panic!(
                    "a poisoned engine accepted an append (ticket: {:?})",
                    t.wait()
                ),
            }
            Branch::Poisoned
        }
        None => {
            // Not poisoned: with space freed, the engine accepts appends without a restart and
            // serves exactly what it acknowledged.
            let a = engine
                .append(SHARDS[0], &[(&k, &d)])
                .and_then(|t| t.wait())
                .unwrap_or_else(|e| {
                    panic!("an unpoisoned engine refused an append after space was freed: {e}")
                });
            acked.insert(k, (SHARDS[0], a.first_seq_ix, d));
            for s in SHARDS {
                let mut want: Vec<(u64, Vec<u8>, Vec<u8>)> = acked
                    .iter()
                    .filter(|(_, v)| v.0 == s)
                    .map(|(k, v)| (v.1, k.clone(), v.2.clone()))
                    .collect();
                want.sort();
                assert!(
                    common::read_all(&engine, s) == want,
                    "before a restart, {s} does not serve exactly its acknowledged records"
                );
            }
            Branch::Recovered
        }
    };
    engine.halt();

    if branch == Branch::Poisoned {
        // A restart on a disk that is still full: fill it again and reopen. Replay needs the space
        // the poisoned write did not get, so the open may fail; it must then say why clearly.
        let refill = std::fs::write(&filler, vec![0xa5u8; FS_BYTES as usize]);
        assert!(
            refill
                .as_ref()
                .is_err_and(|e| e.raw_os_error() == Some(libc::ENOSPC)),
            "refilling the disk: {refill:?}"
        );
        match open() {
            Ok(engine) => {
                println!(
                    "reopening on a full disk succeeded (poisoned: {:?})",
                    engine.poisoned()
                );
                engine.halt();
            }
            Err(e) => {
                println!("reopening on a full disk failed: {e}");
                assert_no_space(&e, &root);
            }
        }
        std::fs::remove_file(&filler).unwrap();
    }

    // Reopen with space available: nothing acknowledged is lost or duplicated.
    let engine = open().expect("reopen after freeing space");
    assert_eq!(engine.poisoned(), None);
    let mut seen = 0;
    for s in SHARDS {
        let mut last = None;
        for (seq_ix, key, data) in common::read_all(&engine, s) {
            assert!(
                last.is_none_or(|l| seq_ix > l),
                "{s}: seq_ix {seq_ix} after {last:?}"
            );
            last = Some(seq_ix);
            if let Some((shard, acked_seq_ix, acked_data)) = acked.get(&key) {
                assert_eq!(
                    (*shard, *acked_seq_ix),
                    (s, seq_ix),
                    "record {} is not where it was acknowledged",
                    String::from_utf8_lossy(&key)
                );
                assert!(*acked_data == data, "record {} changed", seq_ix);
                seen += 1;
            } else {
                // Only the failed append may appear (durable but unacknowledged), and only if the
                // engine poisoned itself: a batch refused by a usable log is never written.
                assert!(
                    failed_keys.first() == Some(&key),
                    "unexpected record {} in {s} at {seq_ix}",
                    String::from_utf8_lossy(&key)
                );
                assert_eq!(
                    branch,
                    Branch::Poisoned,
                    "a batch refused for lack of space reappeared after restart"
                );
            }
        }
    }
    // Every acknowledged record appeared, and (keys being unique) each exactly once.
    assert_eq!(
        seen,
        acked.len(),
        "acknowledged records missing or duplicated"
    );
    for s in SHARDS {
        let a = engine
            .append(s, &[(b"after", b"restart")])
            .and_then(|t| t.wait())
            .expect("append after reopening");
        let tip = acked
            .values()
            .filter(|v| v.0 == s)
            .map(|v| v.1)
            .max()
            .unwrap_or(0);
        assert!(a.first_seq_ix > tip);
    }
    engine.close().expect("close");
    println!(
        "{branch:?}: {} records acknowledged and recovered, {:?}",
        acked.len(),
        started.elapsed()
    );
    branch
}

/// With 2 MiB free, the log rolls (and recycles its segments) fine, and the shard store's data is
/// what fills the disk.
#[test]
fn real_enospc_in_the_shard_store_is_clear_and_loses_nothing_acknowledged() {
    let branch = fill_until_no_space(2 << 20);
    println!("store-level full disk: {branch:?}");
}

/// With 400 KiB free, the shard store's data still fits when the log fills its first segment
/// (256 KiB, after ~125 appends), but the 256 KiB preallocation of the next segment does not.
#[test]
fn real_enospc_when_the_log_rolls_is_clear_and_loses_nothing_acknowledged() {
    let branch = fill_until_no_space(400 << 10);
    assert_eq!(
        branch,
        Branch::Recovered,
        "this fill level is meant to make the log's segment preallocation fail first (a \
         recoverable failure); if the engine's sizes changed, adjust it"
    );
}
