//! A small on-disk ring of metric samples, for the status page's sparklines: [`RING_SLOTS`]
//! fixed-size records in one file preallocated at creation, so it never grows and a full disk
//! cannot fail a write into it. Each record carries a sequence number and a CRC32C; on open,
//! records failing their CRC are skipped (a torn write loses one sample, never the ring), and
//! the valid ones are ordered by sequence number. It survives restarts.
//!
//! Writes are not fsynced (the ring is non-critical: a power loss may lose recent samples) and
//! are made by the admin runtime's blocking thread; the caller skips a write when the previous
//! one has not finished (a slow disk) and counts it.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use serde::Serialize;

/// Samples kept: three hours at one a minute.
pub const RING_SLOTS: usize = 180;
/// Values in one sample.
pub const VALUES: usize = 8;
/// Bytes of one record: seq, time, values, CRC, padding.
pub const RECORD_BYTES: usize = 96;
const HEADER_BYTES: usize = 16;
const MAGIC: &[u8; 8] = b"LEVRING1";

/// One sample: monotonic totals at `at_ms` (rates are differences between samples).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Sample {
    pub seq: u64,
    pub at_ms: u64,
    /// requests, errors, in_records, in_bytes, out_records, out_bytes, threads, fds.
    pub values: [u64; VALUES],
}

fn encode(s: &Sample) -> [u8; RECORD_BYTES] {
    let mut b = [0u8; RECORD_BYTES];
    b[0..8].copy_from_slice(&s.seq.to_le_bytes());
    b[8..16].copy_from_slice(&s.at_ms.to_le_bytes());
    for (i, v) in s.values.iter().enumerate() {
        b[16 + i * 8..24 + i * 8].copy_from_slice(&v.to_le_bytes());
    }
    let end = 16 + VALUES * 8;
    let crc = crc32c::crc32c(&b[..end]);
    b[end..end + 4].copy_from_slice(&crc.to_le_bytes());
    b
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn decode(b: &[u8]) -> Option<Sample> {
    let end = 16 + VALUES * 8;
    let crc = u32::from_le_bytes(b.get(end..end + 4)?.try_into().ok()?);
    if crc != crc32c::crc32c(b.get(..end)?) {
        return None;
    }
    let seq = u64_at(b, 0)?;
    if seq == 0 {
        return None;
    }
    let mut values = [0u64; VALUES];
    for (i, v) in values.iter_mut().enumerate() {
        *v = u64_at(b, 16 + i * 8)?;
    }
    Some(Sample {
        seq,
        at_ms: u64_at(b, 8)?,
        values,
    })
}

/// The ring file.
pub struct Ring {
    file: File,
}

impl Ring {
    /// Opens (or creates, preallocated) the ring and returns the valid samples, oldest first.
    pub fn open(path: &Path) -> io::Result<(Ring, Vec<Sample>)> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let len = (HEADER_BYTES + RING_SLOTS * RECORD_BYTES) as u64;
        let mut header = [0u8; HEADER_BYTES];
        let fresh = file.metadata()?.len() != len
            || file.read_exact_at(&mut header, 0).is_err()
            || &header[..8] != MAGIC;
        if fresh {
            // Zero-filled and fully written once, so later writes never allocate.
            let mut buf = vec![0u8; len as usize];
            buf[..8].copy_from_slice(MAGIC);
            buf[8..12].copy_from_slice(&(RING_SLOTS as u32).to_le_bytes());
            buf[12..16].copy_from_slice(&(RECORD_BYTES as u32).to_le_bytes());
            file.set_len(0)?;
            file.write_all_at(&buf, 0)?;
            file.sync_all()?;
            return Ok((Ring { file }, Vec::new()));
        }
        let mut buf = vec![0u8; RING_SLOTS * RECORD_BYTES];
        file.read_exact_at(&mut buf, HEADER_BYTES as u64)?;
        let mut samples: Vec<Sample> = buf.chunks_exact(RECORD_BYTES).filter_map(decode).collect();
        samples.sort_by_key(|s| s.seq);
        Ok((Ring { file }, samples))
    }

    /// Writes one sample into its slot (no fsync).
    pub fn write(&self, s: &Sample) -> io::Result<()> {
        let slot = (s.seq % RING_SLOTS as u64) as usize;
        self.file
            .write_all_at(&encode(s), (HEADER_BYTES + slot * RECORD_BYTES) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(seq: u64) -> Sample {
        Sample {
            seq,
            at_ms: 1000 * seq,
            values: [seq; VALUES],
        }
    }

    #[test]
    fn survives_reopen_wraps_and_skips_corrupt_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ring");
        let (ring, old) = Ring::open(&path).unwrap();
        assert!(old.is_empty());
        for seq in 1..=(RING_SLOTS as u64 + 5) {
            ring.write(&sample(seq)).unwrap();
        }
        drop(ring);
        let (_, got) = Ring::open(&path).unwrap();
        assert_eq!(got.len(), RING_SLOTS);
        assert_eq!(got.first().unwrap().seq, 6);
        assert_eq!(got.last().unwrap(), &sample(RING_SLOTS as u64 + 5));
        // Flip a byte of one record: only that record is lost.
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        let slot = (10 % RING_SLOTS) as u64;
        f.write_all_at(
            &[0xff],
            HEADER_BYTES as u64 + slot * RECORD_BYTES as u64 + 20,
        )
        .unwrap();
        let (_, got) = Ring::open(&path).unwrap();
        assert_eq!(got.len(), RING_SLOTS - 1);
        assert!(got
            .iter()
            .all(|s| s.seq != 10 + RING_SLOTS as u64 && s.seq != 10));
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            (HEADER_BYTES + RING_SLOTS * RECORD_BYTES) as u64
        );
    }
}
