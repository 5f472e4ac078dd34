//! Damage on disk is detected by checksum, reported with file and offset, and contained:
//! a corrupt shard segment fails reads of that range only, while other shards keep serving; a
//! damaged batch in the middle of the group log stops recovery with an error naming the file and
//! offset, while a damaged last batch is a torn tail and is dropped.

mod common;

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::*;
use levee_storage::vfs::{OsVfs, Vfs};
use levee_storage::{Engine, Error, ReadFrom, ShardUid, StreamUid};

const DAY_MS: u64 = 24 * 3_600_000;

fn flip_byte(path: &Path, offset: u64) {
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset).unwrap();
    b[0] ^= 0x5a;
    f.write_all_at(&b, offset).unwrap();
}

fn setup_two_shards(dir: &Path, appends: u64) -> Vec<Stored> {
    let engine = open(dir, clock());
    engine
        .create_stream(StreamUid(1), DAY_MS)
        .unwrap()
        .wait()
        .unwrap();
    for s in 0..2 {
        engine
            .create_shard(ShardUid(s), StreamUid(1), s as u32)
            .unwrap()
            .wait()
            .unwrap();
    }
    for n in 0..appends {
        let data = vec![n as u8; 700];
        engine
            .append(ShardUid(n % 2), &[(b"pk", &data)])
            .unwrap()
            .wait()
            .unwrap();
    }
    let all = (0..2).map(|s| read_all(&engine, ShardUid(s))).collect();
    engine.close().unwrap();
    all
}

fn sealed_segments(shard_dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(shard_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_str().unwrap();
            n.ends_with(".seg") && n.matches('-').count() == 2
        })
        .collect();
    v.sort();
    v
}

#[test]
fn corrupt_segment_byte_is_reported_and_other_shards_serve() {
    let dir = tempfile::tempdir().unwrap();
    let before = setup_two_shards(dir.path(), 400);
    let shard0 = dir.path().join("shards").join(format!("{:016x}", 0));
    let sealed = sealed_segments(&shard0);
    assert!(
        sealed.len() >= 2,
        "need sealed segments to corrupt: {sealed:?}"
    );
    let victim = &sealed[0];
    let len = fs::metadata(victim).unwrap().len();
    flip_byte(victim, len / 2);

    let engine = open(dir.path(), clock());
    // The other shard is untouched.
    assert_eq!(read_all(&engine, ShardUid(1)), before[1]);
    // Reading the damaged range fails with the file and an offset at or before the damage.
    let mut err = None;
    let mut from = 0;
    for _ in 0..1000 {
        match engine.read(ShardUid(0), ReadFrom::SeqIx(from), 1000, 1 << 20) {
            Ok(b) if b.records.is_empty() => break,
            Ok(b) => from = b.next_seq_ix,
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    match err.expect("the corrupt record must be detected") {
        Error::Corrupt {
            path,
            offset,
            detail,
        } => {
            assert_eq!(&path, victim);
            assert!(
                offset <= len / 2,
                "offset {offset} is past the damage at {}",
                len / 2
            );
            assert!(
                len / 2 - offset < 800,
                "offset {offset} should be the damaged record's start"
            );
            assert!(detail.contains("CRC32C"), "{detail}");
            let text = Error::Corrupt {
                path,
                offset,
                detail,
            }
            .to_string();
            assert!(
                text.contains("corruption in") && text.contains(".seg"),
                "{text}"
            );
        }
        e => panic!("expected Corrupt, got {e}"),
    }
    // Records after the damaged segment remain readable.
    let later = sealed_segments(&shard0)[1].clone();
    let base =
        u64::from_str_radix(&later.file_name().unwrap().to_str().unwrap()[..16], 16).unwrap();
    let b = engine
        .read(ShardUid(0), ReadFrom::SeqIx(base), 1000, 1 << 20)
        .unwrap();
    assert_eq!(b.records[0].seq_ix, base);
    assert_eq!(engine.stats().corruptions, 1);
    // Writes keep working, on both shards.
    for s in 0..2 {
        engine
            .append(ShardUid(s), &[(b"k", b"after damage")])
            .unwrap()
            .wait()
            .unwrap();
    }
}

#[test]
fn corrupt_sparse_index_only_slows_reads() {
    let dir = tempfile::tempdir().unwrap();
    let before = setup_two_shards(dir.path(), 200);
    let shard0 = dir.path().join("shards").join(format!("{:016x}", 0));
    for seg in sealed_segments(&shard0) {
        let idx = shard0.join(format!(
            "{}.idx",
            &seg.file_name().unwrap().to_str().unwrap()[..16]
        ));
        flip_byte(&idx, 40);
    }
    let engine = open(dir.path(), clock());
    assert_eq!(read_all(&engine, ShardUid(0)), before[0]);
    let target = before[0][57].0;
    let b = engine
        .read(ShardUid(0), ReadFrom::SeqIx(target), 1, 1 << 20)
        .unwrap();
    assert_eq!(b.records[0].seq_ix, target);
}

/// Writes appends without a final checkpoint and returns the batch offsets in the live segment.
fn log_with_batches(dir: &Path) -> (PathBuf, Vec<u64>, Vec<u64>) {
    let engine = open(dir, clock());
    engine
        .create_stream(StreamUid(1), DAY_MS)
        .unwrap()
        .wait()
        .unwrap();
    engine
        .create_shard(ShardUid(0), StreamUid(1), 0)
        .unwrap()
        .wait()
        .unwrap();
    engine.checkpoint().unwrap();
    let mut seqs = Vec::new();
    for n in 0..10u64 {
        let data = vec![n as u8; 300];
        let a = engine
            .append(ShardUid(0), &[(b"pk", &data)])
            .unwrap()
            .wait()
            .unwrap();
        seqs.push(a.first_seq_ix);
    }
    engine.halt();
    let wal = dir.join("wal");
    let mut segs: Vec<PathBuf> = fs::read_dir(&wal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("wal-"))
        .collect();
    segs.sort();
    let seg = segs.pop().unwrap();
    let bytes = fs::read(&seg).unwrap();
    let mut offsets = Vec::new();
    let mut pos = 64usize;
    while &bytes[pos..pos + 4] == b"BVWB" {
        offsets.push(pos as u64);
        let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
        pos = (pos + 32 + len).div_ceil(16) * 16;
    }
    assert_eq!(offsets.len(), 10, "one batch per waited append");
    (seg, offsets, seqs)
}

#[test]
fn damage_in_the_middle_of_the_log_refuses_recovery_with_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (seg, offsets, _) = log_with_batches(dir.path());
    flip_byte(&seg, offsets[4] + 40);
    let err = Engine::open(
        small_config(dir.path()),
        Arc::new(OsVfs) as Arc<dyn Vfs>,
        clock(),
    )
    .err()
    .expect("recovery must refuse");
    match &err {
        Error::Corrupt {
            path,
            offset,
            detail,
        } => {
            assert_eq!(path, &seg);
            assert_eq!(*offset, offsets[4]);
            assert!(detail.contains("middle"), "{detail}");
        }
        e => panic!("expected Corrupt, got {e}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(seg.to_str().unwrap()) && text.contains(&offsets[4].to_string()),
        "{text}"
    );
}

#[test]
fn damage_in_the_last_batch_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (seg, offsets, seqs) = log_with_batches(dir.path());
    flip_byte(&seg, offsets[9] + 40);
    let engine = open(dir.path(), clock());
    let got: Vec<u64> = read_all(&engine, ShardUid(0))
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(got, seqs[..9].to_vec());
    // The log continues where the torn batch was, and that survives another restart.
    let a = engine
        .append(ShardUid(0), &[(b"pk", b"new")])
        .unwrap()
        .wait()
        .unwrap();
    engine.halt();
    let engine = open(dir.path(), clock());
    let got = read_all(&engine, ShardUid(0));
    assert_eq!(got.len(), 10);
    assert_eq!(got[9].0, a.first_seq_ix);
    assert_eq!(got[9].2, b"new");
}

#[test]
fn corrupt_manifest_refuses_to_guess() {
    let dir = tempfile::tempdir().unwrap();
    setup_two_shards(dir.path(), 10);
    flip_byte(&dir.path().join("manifest"), 20);
    let err = Engine::open(
        small_config(dir.path()),
        Arc::new(OsVfs) as Arc<dyn Vfs>,
        clock(),
    )
    .err()
    .expect("must refuse");
    assert!(
        matches!(&err, Error::Corrupt { path, .. } if path.ends_with("manifest")),
        "{err}"
    );
}

#[test]
fn missing_log_segment_after_a_checkpoint_refuses_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let (seg, _, _) = log_with_batches(dir.path());
    fs::remove_file(&seg).unwrap();
    let err = Engine::open(
        small_config(dir.path()),
        Arc::new(OsVfs) as Arc<dyn Vfs>,
        clock(),
    )
    .err()
    .expect("acknowledged entries are in the missing segment: recovery must refuse");
    match &err {
        Error::Corrupt { path, detail, .. } => {
            assert_eq!(path, &seg);
            assert!(detail.contains("missing"), "{detail}");
        }
        e => panic!("expected Corrupt, got {e}"),
    }
}
