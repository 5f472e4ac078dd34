//! AWS's per-shard throughput limits (`--shard-limits aws`), enforced where the shard is owned.
//!
//! Each shard has four token buckets, each holding at most one second of its rate:
//! - writes: [`WRITE_BYTES_PER_SEC`] (data + partition key) and [`WRITE_RECORDS_PER_SEC`]; a
//!   record is admitted only if both buckets hold enough, so in a PutRecords each record is
//!   admitted or throttled on its own (the others of the same call still succeed);
//! - reads: [`READ_CALLS_PER_SEC`] GetRecords calls, and [`READ_BYTES_PER_SEC`] charged *after*
//!   a read with what it returned; the byte bucket holds no credit, only debt, and calls are
//!   refused until the debt is repaid — so a 10 MiB answer is followed by 5 s of refusals (AWS's
//!   "10 MiB then wait 5 seconds" rule) while small reads flow at up to 2 MiB/s;
//! - GetShardIterator: [`ITERATOR_CALLS_PER_SEC`] calls;
//! - SubscribeToShard: one call per second per consumer per shard
//!   ([`SUBSCRIBE_CALL_INTERVAL_MS`]), kept for at most [`SUBSCRIPTIONS_TRACKED_MAX`]
//!   (consumer, shard) pairs. (The 2 MiB/s of a subscription is its own pump's bucket.)
//!
//! Time comes from a [`MillisClock`] so tests drive it by hand. The buckets of at most
//! [`SHARDS_TRACKED_MAX`] shards are kept (least recently used dropped; a dropped shard starts
//! again with full buckets, which can only admit more, never less).

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

/// Bytes per second written to one shard.
pub const WRITE_BYTES_PER_SEC: f64 = (1 << 20) as f64;
/// Records per second written to one shard.
pub const WRITE_RECORDS_PER_SEC: f64 = 1000.0;
/// Bytes per second read from one shard.
pub const READ_BYTES_PER_SEC: f64 = (2 << 20) as f64;
/// GetRecords calls per second on one shard.
pub const READ_CALLS_PER_SEC: f64 = 5.0;
/// GetShardIterator calls per second on one shard.
pub const ITERATOR_CALLS_PER_SEC: f64 = 5.0;
/// Shards whose buckets are kept.
pub const SHARDS_TRACKED_MAX: usize = 100_000;
/// Least time between two admitted SubscribeToShard calls of one consumer on one shard.
pub const SUBSCRIBE_CALL_INTERVAL_MS: u64 = 1000;
/// (Consumer, shard) pairs whose last SubscribeToShard call is remembered.
pub const SUBSCRIPTIONS_TRACKED_MAX: usize = 100_000;

/// Milliseconds on some monotonic scale.
pub type MillisClock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// A token bucket.
#[derive(Debug, Clone)]
struct Bucket {
    per_ms: f64,
    cap: f64,
    tokens: f64,
    at_ms: u64,
}

impl Bucket {
    /// A bucket refilling at `per_sec` up to `cap`, starting full.
    fn new(per_sec: f64, cap: f64, now_ms: u64) -> Bucket {
        Bucket {
            per_ms: per_sec / 1000.0,
            cap,
            tokens: cap,
            at_ms: now_ms,
        }
    }

    fn refill(&mut self, now_ms: u64) {
        let dt = now_ms.saturating_sub(self.at_ms) as f64;
        self.tokens = (self.tokens + dt * self.per_ms).min(self.cap);
        self.at_ms = self.at_ms.max(now_ms);
    }
}

#[derive(Debug, Clone)]
struct ShardBuckets {
    write_bytes: Bucket,
    write_records: Bucket,
    read_calls: Bucket,
    read_bytes: Bucket,
    iterator_calls: Bucket,
}

impl ShardBuckets {
    fn new(now: u64) -> ShardBuckets {
        ShardBuckets {
            write_bytes: Bucket::new(WRITE_BYTES_PER_SEC, WRITE_BYTES_PER_SEC, now),
            write_records: Bucket::new(WRITE_RECORDS_PER_SEC, WRITE_RECORDS_PER_SEC, now),
            read_calls: Bucket::new(READ_CALLS_PER_SEC, READ_CALLS_PER_SEC, now),
            // No credit, only debt: what a read returned is repaid at 2 MiB/s before the next.
            read_bytes: Bucket::new(READ_BYTES_PER_SEC, 0.0, now),
            iterator_calls: Bucket::new(ITERATOR_CALLS_PER_SEC, ITERATOR_CALLS_PER_SEC, now),
        }
    }
}

/// The buckets of every shard this owner serves.
pub struct ShardLimiter {
    clock: MillisClock,
    shards: Mutex<lru::LruCache<u64, ShardBuckets>>,
    /// When each (consumer ARN, shard uid) last had a SubscribeToShard call admitted.
    subscribes: Mutex<lru::LruCache<(String, u64), u64>>,
}

impl std::fmt::Debug for ShardLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ShardLimiter")
    }
}

impl ShardLimiter {
    pub fn new(clock: MillisClock) -> ShardLimiter {
        ShardLimiter {
            clock,
            shards: Mutex::new(lru::LruCache::new(
                NonZeroUsize::new(SHARDS_TRACKED_MAX).expect("non-zero"),
            )),
            subscribes: Mutex::new(lru::LruCache::new(
                NonZeroUsize::new(SUBSCRIPTIONS_TRACKED_MAX).expect("non-zero"),
            )),
        }
    }

    fn with<T>(&self, shard_uid: u64, f: impl FnOnce(&mut ShardBuckets, u64) -> T) -> T {
        let now = (self.clock)();
        let mut shards = self.shards.lock().unwrap_or_else(|e| e.into_inner());
        let b = shards.get_or_insert_mut(shard_uid, || ShardBuckets::new(now));
        f(b, now)
    }

    /// Admits one record of `bytes` (data + partition key) to the shard, or refuses it.
    pub fn admit_write(&self, shard_uid: u64, bytes: usize) -> bool {
        let ok = self.with(shard_uid, |b, now| {
            b.write_bytes.refill(now);
            b.write_records.refill(now);
            let bytes = bytes as f64;
            if b.write_bytes.tokens >= bytes && b.write_records.tokens >= 1.0 {
                b.write_bytes.tokens -= bytes;
                b.write_records.tokens -= 1.0;
                true
            } else {
                false
            }
        });
        if !ok {
            metrics::counter!("levee_shard_throttled_total", "direction" => "write").increment(1);
        }
        ok
    }

    /// Admits one GetRecords call on the shard, or refuses it (too many calls, or the bytes of
    /// earlier reads not yet paid off).
    pub fn admit_read(&self, shard_uid: u64) -> bool {
        let ok = self.with(shard_uid, |b, now| {
            b.read_calls.refill(now);
            b.read_bytes.refill(now);
            if b.read_calls.tokens >= 1.0 && b.read_bytes.tokens >= 0.0 {
                b.read_calls.tokens -= 1.0;
                true
            } else {
                false
            }
        });
        if !ok {
            metrics::counter!("levee_shard_throttled_total", "direction" => "read").increment(1);
        }
        ok
    }

    /// Admits one GetShardIterator call on the shard, or refuses it.
    pub fn admit_get_shard_iterator(&self, shard_uid: u64) -> bool {
        let ok = self.with(shard_uid, |b, now| {
            b.iterator_calls.refill(now);
            if b.iterator_calls.tokens >= 1.0 {
                b.iterator_calls.tokens -= 1.0;
                true
            } else {
                false
            }
        });
        if !ok {
            metrics::counter!("levee_shard_throttled_total", "direction" => "iterator")
                .increment(1);
        }
        ok
    }

    /// Admits one SubscribeToShard call of `consumer_arn` on the shard, or refuses it (one per
    /// second). A pair forgotten by the LRU starts again admitted, never refused.
    pub fn admit_subscribe(&self, consumer_arn: &str, shard_uid: u64) -> bool {
        let now = (self.clock)();
        let mut calls = self.subscribes.lock().unwrap_or_else(|e| e.into_inner());
        let key = (consumer_arn.to_owned(), shard_uid);
        let ok = calls
            .get(&key)
            .is_none_or(|last| now.saturating_sub(*last) >= SUBSCRIBE_CALL_INTERVAL_MS);
        if ok {
            calls.put(key, now);
        } else {
            metrics::counter!("levee_shard_throttled_total", "direction" => "subscribe")
                .increment(1);
        }
        ok
    }

    /// Charges the bytes a GetRecords call returned.
    pub fn charge_read(&self, shard_uid: u64, bytes: u64) {
        self.with(shard_uid, |b, now| {
            b.read_bytes.refill(now);
            b.read_bytes.tokens -= bytes as f64;
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    fn limiter() -> (ShardLimiter, Arc<AtomicU64>) {
        let now = Arc::new(AtomicU64::new(1_000_000));
        let n = now.clone();
        (
            ShardLimiter::new(Arc::new(move || n.load(Ordering::Relaxed))),
            now,
        )
    }

    /// Offers `per_tick` records of `bytes` every `tick_ms` for `secs`; returns the admitted
    /// count after the first second's burst.
    fn drive_writes(secs: u64, tick_ms: u64, per_tick: usize, bytes: usize) -> (usize, usize) {
        let (l, now) = limiter();
        // Spend the initial burst (one second of capacity).
        while l.admit_write(1, bytes) {}
        let mut admitted = 0;
        let mut refused = 0;
        for _ in 0..secs * 1000 / tick_ms {
            now.fetch_add(tick_ms, Ordering::Relaxed);
            for _ in 0..per_tick {
                if l.admit_write(1, bytes) {
                    admitted += 1;
                } else {
                    refused += 1;
                }
            }
        }
        (admitted, refused)
    }

    #[test]
    fn writes_are_held_to_1000_records_per_second() {
        // 2,000 small records/s offered for 20 s.
        let (admitted, refused) = drive_writes(20, 10, 20, 10);
        let rate = admitted as f64 / 20.0;
        assert!((rate - 1000.0).abs() <= 100.0, "{rate} records/s");
        assert!(refused > 0);
    }

    #[test]
    fn writes_are_held_to_1_mib_per_second() {
        // 100 KiB records, 20 per second offered (2 MiB/s) for 20 s.
        let (admitted, _) = drive_writes(20, 50, 1, 100 << 10);
        let rate = admitted as f64 * (100 << 10) as f64 / 20.0;
        assert!(
            (rate - WRITE_BYTES_PER_SEC).abs() <= WRITE_BYTES_PER_SEC * 0.1,
            "{rate} B/s"
        );
    }

    #[test]
    fn shards_are_independent() {
        let (l, _) = limiter();
        for _ in 0..1000 {
            assert!(l.admit_write(1, 1));
        }
        assert!(!l.admit_write(1, 1));
        assert!(l.admit_write(2, 1));
    }

    #[test]
    fn reads_5_calls_per_second_and_10_mib_then_wait() {
        let (l, now) = limiter();
        for _ in 0..5 {
            assert!(l.admit_read(7));
        }
        assert!(!l.admit_read(7), "a sixth call within the second");
        now.fetch_add(200, Ordering::Relaxed);
        assert!(l.admit_read(7), "one call per 200 ms comes back");
        // A 10 MiB answer: refused until 2 MiB/s has repaid it, 5 s.
        now.fetch_add(1000, Ordering::Relaxed);
        assert!(l.admit_read(7));
        l.charge_read(7, 10 << 20);
        let start = now.load(Ordering::Relaxed);
        while !l.admit_read(7) {
            now.fetch_add(100, Ordering::Relaxed);
        }
        let waited = now.load(Ordering::Relaxed) - start;
        assert!((4900..=5100).contains(&waited), "waited {waited} ms");
    }

    #[test]
    fn get_shard_iterator_5_per_second() {
        let (l, now) = limiter();
        for _ in 0..5 {
            assert!(l.admit_get_shard_iterator(3));
        }
        assert!(!l.admit_get_shard_iterator(3));
        now.fetch_add(200, Ordering::Relaxed);
        assert!(l.admit_get_shard_iterator(3));
        assert!(!l.admit_get_shard_iterator(3));
    }

    #[test]
    fn subscribe_to_shard_once_per_second_per_consumer_and_shard() {
        let (l, now) = limiter();
        assert!(l.admit_subscribe("c1", 3));
        assert!(
            !l.admit_subscribe("c1", 3),
            "a second call within the second"
        );
        assert!(l.admit_subscribe("c2", 3), "another consumer");
        assert!(l.admit_subscribe("c1", 4), "another shard");
        now.fetch_add(999, Ordering::Relaxed);
        assert!(!l.admit_subscribe("c1", 3));
        now.fetch_add(1, Ordering::Relaxed);
        assert!(l.admit_subscribe("c1", 3), "a second later");
        assert!(!l.admit_subscribe("c1", 3));
    }
}
