//! Retention in virtual time: two streams with 24 h and 168 h retention interleaved in one group.
//! After 24 h the first one's records are invisible and its segments deleted (disk use near
//! zero), while the second keeps everything; the state survives a restart.

mod common;

use common::*;
use levee_storage::{Clock, ReadFrom, ShardUid, StreamUid};

const HOUR_MS: u64 = 3_600_000;

#[test]
fn short_retention_reclaims_space_while_the_neighbour_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let engine = open(dir.path(), clock.clone());
    let (short, long) = (StreamUid(1), StreamUid(2));
    engine
        .create_stream(short, 24 * HOUR_MS)
        .unwrap()
        .wait()
        .unwrap();
    engine
        .create_stream(long, 168 * HOUR_MS)
        .unwrap()
        .wait()
        .unwrap();
    for s in 0..2u64 {
        engine
            .create_shard(ShardUid(s), short, s as u32)
            .unwrap()
            .wait()
            .unwrap();
        engine
            .create_shard(ShardUid(10 + s), long, s as u32)
            .unwrap()
            .wait()
            .unwrap();
    }
    // Twelve hours of interleaved writes, one append per shard every minute.
    let data = vec![1u8; 400];
    let start = clock.now_ms();
    for _minute in 0..(12 * 60) {
        clock.advance_ms(60_000);
        for s in [0u64, 1, 10, 11] {
            engine
                .append(ShardUid(s), &[(b"pk", &data)])
                .unwrap()
                .wait()
                .unwrap();
        }
    }
    let last_write = clock.now_ms();
    let short_before = engine.disk_usage_bytes(short).unwrap();
    let long_before = engine.disk_usage_bytes(long).unwrap();
    assert!(short_before > 600_000 && long_before > 600_000);
    let long_records = read_all(&engine, ShardUid(10)).len();
    assert_eq!(long_records, 12 * 60);

    // Half-way: 30 h after the start, the first 6 h of the short stream have expired.
    clock.set_ms(start + 30 * HOUR_MS);
    let deleted = engine.enforce_retention().unwrap();
    assert!(deleted > 0, "some segments are wholly expired");
    let visible = read_all(&engine, ShardUid(0));
    assert!(
        !visible.is_empty() && visible.len() < 12 * 60,
        "{}",
        visible.len()
    );
    let cutoff = clock.now_ms() - 24 * HOUR_MS;
    let b = engine
        .read(ShardUid(0), ReadFrom::SeqIx(0), 10_000, 1 << 30)
        .unwrap();
    assert!(
        b.records.iter().all(|r| r.arrival_ms >= cutoff),
        "expired records are invisible"
    );
    let mid = engine.disk_usage_bytes(short).unwrap();
    assert!(mid < short_before && mid > 0, "{mid} vs {short_before}");

    // 24 h after the last write everything in the short stream has expired.
    clock.set_ms(last_write + 24 * HOUR_MS + 1);
    assert!(
        read_all(&engine, ShardUid(1)).is_empty(),
        "expired records are invisible before deletion"
    );
    engine.enforce_retention().unwrap();
    let short_after = engine.disk_usage_bytes(short).unwrap();
    assert_eq!(short_after, 0, "the short stream's disk use drops to zero");
    assert_eq!(
        engine.disk_usage_bytes(long).unwrap(),
        long_before,
        "the neighbour keeps everything"
    );
    assert_eq!(read_all(&engine, ShardUid(10)).len(), long_records);

    // Writes to the expired stream start a new segment; restart keeps all of this.
    let a = engine
        .append(ShardUid(0), &[(b"pk", b"fresh")])
        .unwrap()
        .wait()
        .unwrap();
    engine.halt();
    let engine = open(dir.path(), clock.clone());
    let got = read_all(&engine, ShardUid(0));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, a.first_seq_ix);
    assert_eq!(read_all(&engine, ShardUid(11)).len(), long_records);
    assert!(engine.disk_usage_bytes(short).unwrap() < 10_000);

    // Past 168 h the long stream goes too.
    clock.set_ms(last_write + 168 * HOUR_MS + 1);
    engine.enforce_retention().unwrap();
    assert_eq!(engine.disk_usage_bytes(long).unwrap(), 0);
}

#[test]
fn retention_change_applies_to_existing_data() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let engine = open(dir.path(), clock.clone());
    engine
        .create_stream(StreamUid(1), 168 * HOUR_MS)
        .unwrap()
        .wait()
        .unwrap();
    engine
        .create_shard(ShardUid(0), StreamUid(1), 0)
        .unwrap()
        .wait()
        .unwrap();
    engine
        .append(ShardUid(0), &[(b"pk", b"x")])
        .unwrap()
        .wait()
        .unwrap();
    clock.advance_ms(48 * HOUR_MS);
    assert_eq!(read_all(&engine, ShardUid(0)).len(), 1);
    engine
        .set_retention(StreamUid(1), 24 * HOUR_MS)
        .unwrap()
        .wait()
        .unwrap();
    assert!(read_all(&engine, ShardUid(0)).is_empty());
    engine.enforce_retention().unwrap();
    assert_eq!(engine.disk_usage_bytes(StreamUid(1)).unwrap(), 0);
    engine.halt();
    let engine = open(dir.path(), clock);
    assert!(
        read_all(&engine, ShardUid(0)).is_empty(),
        "the new retention survives restart"
    );
}
