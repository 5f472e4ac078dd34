//! Crash recovery as a property: for random sequences of appends from many shards, cut the group
//! log at every byte offset of its last write (truncating the file there, or leaving zeros as a
//! preallocated file would), recover, and check that what the engine serves is exactly the
//! acknowledged records in order — all of them when the last write is whole, all but the last
//! append when it is cut — and nothing else.
//!
//! The test finds the last batch by parsing the log with the documented on-disk format, so it
//! also pins that format.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use levee_storage::vfs::{OsVfs, Vfs};
use levee_storage::{Engine, EngineConfig, ShardUid, StreamUid};
use proptest::prelude::*;

const SHARDS: u64 = 4;

fn config(dir: &Path) -> EngineConfig {
    let mut cfg = common::small_config(dir);
    cfg.log.segment_bytes = 48 << 10;
    cfg.log.batch_bytes_max = 4 << 10;
    cfg.log.entry_bytes_max = 8 << 10;
    cfg.store.segment_bytes = 8 << 10;
    cfg.store.index_interval_bytes = 512;
    cfg
}

fn open(dir: &Path) -> Engine {
    Engine::open(
        config(dir),
        Arc::new(OsVfs) as Arc<dyn Vfs>,
        common::clock(),
    )
    .expect("recover")
}

type Acked = Vec<Vec<(u64, Vec<u8>)>>;

/// Byte range `[start, end)` of the last batch in the newest log segment.
fn last_batch(wal_dir: &Path) -> (PathBuf, u64, u64) {
    let mut segs: Vec<PathBuf> = fs::read_dir(wal_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("wal-"))
        .collect();
    segs.sort();
    let path = segs.pop().expect("a log segment");
    let bytes = fs::read(&path).unwrap();
    assert_eq!(&bytes[0..4], b"LVWL", "segment magic");
    let mut pos = 64usize;
    let mut last = None;
    while pos + 32 <= bytes.len() && &bytes[pos..pos + 4] == b"BVWB" {
        let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let end = pos + 32 + len;
        last = Some((pos as u64, end as u64));
        pos = end.div_ceil(16) * 16;
    }
    let (s, e) = last.expect("at least one batch after the last checkpoint");
    (path, s, e)
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            fs::copy(e.path(), target).unwrap();
        }
    }
}

fn served(engine: &Engine) -> Acked {
    (0..SHARDS)
        .map(|s| {
            common::read_all(engine, ShardUid(s))
                .into_iter()
                .map(|(seq, _, data)| (seq, data))
                .collect()
        })
        .collect()
}

fn run_case(ops: &[(u64, Vec<usize>)]) {
    let base = tempfile::tempdir().unwrap();
    let src = base.path().join("src");
    let engine = open(&src);
    engine
        .create_stream(StreamUid(1), u64::MAX / 4)
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
    let mut acked: Acked = vec![Vec::new(); SHARDS as usize];
    let mut before_last = acked.clone();
    for (n, (shard, sizes)) in ops.iter().enumerate() {
        let datas: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &len)| {
                let mut d = format!("op{n}/{i}/").into_bytes();
                // Never zero: a cut that zero-fills the tail must change the batch.
                d.resize(d.len() + len, (n % 251) as u8 + 1);
                d
            })
            .collect();
        let recs: Vec<(&[u8], &[u8])> = datas.iter().map(|d| (&b"pk"[..], d.as_slice())).collect();
        before_last = acked.clone();
        let a = engine
            .append(ShardUid(*shard), &recs)
            .unwrap()
            .wait()
            .unwrap();
        for (i, d) in datas.into_iter().enumerate() {
            acked[*shard as usize].push((a.first_seq_ix + i as u64, d));
        }
    }
    engine.halt();

    let (seg, start, end) = last_batch(&src.join("wal"));
    let rel = seg.strip_prefix(&src).unwrap().to_path_buf();
    for cut in start..=end {
        let dst = base.path().join(format!("cut-{cut}"));
        copy_dir(&src, &dst);
        let f = fs::OpenOptions::new()
            .write(true)
            .open(dst.join(&rel))
            .unwrap();
        if cut % 2 == 0 {
            f.set_len(cut).unwrap();
        } else {
            use std::os::unix::fs::FileExt;
            f.write_all_at(&vec![0u8; (end - cut) as usize], cut)
                .unwrap();
        }
        drop(f);
        let engine = open(&dst);
        let got = served(&engine);
        let want = if cut == end { &acked } else { &before_last };
        assert_eq!(
            &got, want,
            "cut at byte {cut} of the last batch [{start}, {end})"
        );
        engine.halt();
        fs::remove_dir_all(&dst).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, .. ProptestConfig::default() })]

    #[test]
    fn recovery_yields_exactly_the_acknowledged_prefix(
        ops in proptest::collection::vec(
            (0..SHARDS, proptest::collection::vec(0usize..400, 1..4)),
            1..80,
        )
    ) {
        run_case(&ops);
    }
}

#[test]
fn many_small_appends_across_rolls() {
    // A fixed case long enough to roll log segments and seal shard segments several times.
    let ops: Vec<(u64, Vec<usize>)> = (0..400u64)
        .map(|n| (n % SHARDS, vec![(n as usize * 13) % 300; 2]))
        .collect();
    run_case(&ops);
}
