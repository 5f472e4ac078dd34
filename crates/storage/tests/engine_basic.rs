//! The engine's basic contract: appends are readable in order after acknowledgement, survive a
//! restart (clean or not), and reads honour starting positions and limits.

mod common;

use common::*;
use levee_storage::{Clock, Error, ReadFrom, ShardUid, StreamUid};

const DAY_MS: u64 = 24 * 3_600_000;

#[test]
fn append_read_restart_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let engine = open(dir.path(), clock.clone());
    engine
        .create_stream(StreamUid(1), DAY_MS)
        .unwrap()
        .wait()
        .unwrap();
    for i in 0..3 {
        engine
            .create_shard(ShardUid(10 + i), StreamUid(1), i as u32)
            .unwrap()
            .wait()
            .unwrap();
    }
    let mut expected: Vec<Stored> = vec![Vec::new(); 3];
    for n in 0..600u32 {
        let shard = (n % 3) as usize;
        let key = format!("key-{n}").into_bytes();
        let data = vec![(n % 251) as u8; (n as usize * 37) % 3000];
        clock.advance_ms(3);
        let t = engine
            .append(ShardUid(10 + shard as u64), &[(&key, &data)])
            .unwrap();
        let a = t.wait().unwrap();
        if let Some(last) = expected[shard].last() {
            assert!(a.first_seq_ix > last.0, "seq_ix must increase");
        }
        expected[shard].push((a.first_seq_ix, key, data));
    }
    for (s, want) in expected.iter().enumerate() {
        assert_eq!(&read_all(&engine, ShardUid(10 + s as u64)), want);
    }
    let stats = engine.stats();
    assert!(
        stats.segments_sealed > 0,
        "small segments must have rolled: {stats:?}"
    );
    assert!(
        stats.log_checkpoints > 0,
        "small log segments must have checkpointed"
    );
    assert!(
        stats.open_files <= 8,
        "file-handle cache is capped: {}",
        stats.open_files
    );

    // Restart without a final checkpoint: recovery replays the log tail.
    engine.halt();
    let engine = open(dir.path(), clock.clone());
    for (s, want) in expected.iter().enumerate() {
        assert_eq!(&read_all(&engine, ShardUid(10 + s as u64)), want);
    }
    // Appends continue with larger sequence indexes.
    let a = engine
        .append(ShardUid(10), &[(b"k", b"after")])
        .unwrap()
        .wait()
        .unwrap();
    assert!(a.first_seq_ix > expected[0].last().unwrap().0);
    engine.close().unwrap();

    // A clean restart reads nothing of the log tail and serves the same data.
    let engine = open(dir.path(), clock);
    let all = read_all(&engine, ShardUid(10));
    assert_eq!(all.len(), expected[0].len() + 1);
    assert_eq!(all.last().unwrap().2, b"after");
}

#[test]
fn reads_start_at_sequence_or_time_and_respect_limits() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let engine = open(dir.path(), clock.clone());
    engine
        .create_stream(StreamUid(1), DAY_MS)
        .unwrap()
        .wait()
        .unwrap();
    engine
        .create_shard(ShardUid(1), StreamUid(1), 0)
        .unwrap()
        .wait()
        .unwrap();
    let t0 = clock.now_ms();
    let mut seqs = Vec::new();
    for n in 0..200u64 {
        clock.advance_ms(1000);
        let data = vec![n as u8; 500];
        let a = engine
            .append(ShardUid(1), &[(b"pk", &data)])
            .unwrap()
            .wait()
            .unwrap();
        seqs.push((a.first_seq_ix, a.arrival_ms));
    }
    // By sequence: starts exactly at the requested record.
    let b = engine
        .read(ShardUid(1), ReadFrom::SeqIx(seqs[150].0), 10, 1 << 20)
        .unwrap();
    assert_eq!(b.records.len(), 10);
    assert_eq!(b.records[0].seq_ix, seqs[150].0);
    assert_eq!(b.next_seq_ix, seqs[159].0 + 1);
    // By time: the first record at or after the timestamp.
    let ts = t0 + 100 * 1000 + 500;
    let b = engine
        .read(ShardUid(1), ReadFrom::Timestamp(ts), 1, 1 << 20)
        .unwrap();
    assert_eq!(b.records[0].seq_ix, seqs[100].0);
    assert!(b.records[0].arrival_ms >= ts);
    // Byte limit: 500-byte records plus a 2-byte key, limit 2000 → 3 records.
    let b = engine
        .read(ShardUid(1), ReadFrom::SeqIx(0), 100, 2000)
        .unwrap();
    assert_eq!(b.records.len(), 3);
    // A timestamp after everything: empty, positioned at the tip.
    let b = engine
        .read(
            ShardUid(1),
            ReadFrom::Timestamp(clock.now_ms() + 1),
            10,
            1 << 20,
        )
        .unwrap();
    assert!(b.records.is_empty());
    assert_eq!(b.next_seq_ix, seqs[199].0 + 1);
    assert!(!b.shard_end);
}

#[test]
fn closed_shard_reports_end_and_refuses_appends() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), clock());
    engine
        .create_stream(StreamUid(1), DAY_MS)
        .unwrap()
        .wait()
        .unwrap();
    engine
        .create_shard(ShardUid(1), StreamUid(1), 0)
        .unwrap()
        .wait()
        .unwrap();
    engine
        .append(ShardUid(1), &[(b"a", b"1"), (b"b", b"2")])
        .unwrap()
        .wait()
        .unwrap();
    let end = engine.close_shard(ShardUid(1)).unwrap().wait().unwrap();
    assert_eq!(end, 2);
    assert!(matches!(
        engine.append(ShardUid(1), &[(b"a", b"x")]),
        Err(Error::ShardClosed(_))
    ));
    let b = engine
        .read(ShardUid(1), ReadFrom::SeqIx(0), 10, 1 << 20)
        .unwrap();
    assert_eq!(b.records.len(), 2);
    assert!(b.shard_end);
    assert!(engine.shard_info(ShardUid(1)).unwrap().closed);
    // Survives restart.
    engine.halt();
    let engine = open(dir.path(), clock());
    assert!(engine.shard_info(ShardUid(1)).unwrap().closed);
    assert!(matches!(
        engine.append(ShardUid(1), &[(b"a", b"x")]),
        Err(Error::ShardClosed(_))
    ));
}

#[test]
fn control_errors_and_drop_stream() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), clock());
    engine
        .create_stream(StreamUid(1), DAY_MS)
        .unwrap()
        .wait()
        .unwrap();
    assert!(matches!(
        engine.create_stream(StreamUid(1), DAY_MS),
        Err(Error::StreamExists(_))
    ));
    assert!(matches!(
        engine.create_shard(ShardUid(1), StreamUid(9), 0),
        Err(Error::StreamNotFound(_))
    ));
    engine
        .create_shard(ShardUid(1), StreamUid(1), 0)
        .unwrap()
        .wait()
        .unwrap();
    assert!(matches!(
        engine.create_shard(ShardUid(1), StreamUid(1), 0),
        Err(Error::ShardExists(_))
    ));
    assert!(matches!(
        engine.append(ShardUid(2), &[(b"a", b"x")]),
        Err(Error::ShardNotFound(_))
    ));
    engine
        .append(ShardUid(1), &[(b"a", b"x")])
        .unwrap()
        .wait()
        .unwrap();
    assert!(engine.disk_usage_bytes(StreamUid(1)).unwrap() > 0);
    engine.drop_stream(StreamUid(1)).unwrap().wait().unwrap();
    assert!(matches!(
        engine.read(ShardUid(1), ReadFrom::SeqIx(0), 1, 1),
        Err(Error::ShardNotFound(_))
    ));
    engine.halt();
    let engine = open(dir.path(), clock());
    assert!(matches!(
        engine.shard_info(ShardUid(1)),
        Err(Error::ShardNotFound(_))
    ));
    assert!(!dir
        .path()
        .join("shards")
        .join(format!("{:016x}", 1))
        .exists());
}

#[test]
fn a_record_larger_than_the_read_chunk_reads_whole() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), clock());
    engine
        .create_stream(StreamUid(1), DAY_MS)
        .unwrap()
        .wait()
        .unwrap();
    engine
        .create_shard(ShardUid(1), StreamUid(1), 0)
        .unwrap()
        .wait()
        .unwrap();
    let big: Vec<u8> = (0..60_000u32).map(|i| (i % 256) as u8).collect();
    engine
        .append(ShardUid(1), &[(b"s", b"small")])
        .unwrap()
        .wait()
        .unwrap();
    engine
        .append(ShardUid(1), &[(b"b", &big)])
        .unwrap()
        .wait()
        .unwrap();
    let b = engine
        .read(ShardUid(1), ReadFrom::SeqIx(0), 10, 10)
        .unwrap();
    assert_eq!(
        b.records.len(),
        1,
        "the byte limit stops after the first record"
    );
    let b = engine
        .read(ShardUid(1), ReadFrom::SeqIx(1), 10, 10)
        .unwrap();
    assert_eq!(
        b.records.len(),
        1,
        "a record over the limit is still returned first"
    );
    assert_eq!(&b.records[0].data[..], &big[..]);
}
