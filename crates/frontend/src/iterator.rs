//! Shard iterators: opaque strings a client hands back to GetRecords. Each names a shard (by its
//! never-reused uid, so an iterator from a deleted and recreated stream is refused) and a
//! position, carries its issue time, and ends in an HMAC-SHA256 tag under a key kept in the data
//! directory, so iterators survive restarts, cannot be forged or altered, and expire after five
//! minutes with AWS's ExpiredIteratorException text.
//!
//! Layout before base64 (standard alphabet with padding, as AWS's iterators are), all integers
//! big-endian, shaped like AWS's (8 bytes `00 00 00 00 00 00 00 01`, then a length of
//! 152 + 16·k bytes in all, as kinesalite recorded them):
//! `header [0,0,0,0,0,0,0,1] | version u8 (1) | issued_ms u64 | shard_uid u64 | shard index u32 |
//! position kind u8 | position u64 | stream-name length u8 | stream name | zero padding |
//! 16-byte HMAC-SHA256 tag of all before`. Iterators of the earlier layout (no header, no
//! padding, URL-safe base64) are still read.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Iterators older than this are refused (AWS: 300,000 ms).
pub const ITERATOR_TTL_MS: u64 = 300_000;
/// Bytes of the truncated HMAC tag.
const TAG_BYTES: usize = 16;
const VERSION: u8 = 1;
/// The first 8 bytes of every iterator, as AWS's begin.
const HEADER: [u8; 8] = [0, 0, 0, 0, 0, 0, 0, 1];
/// The shortest iterator in bytes; longer ones grow in steps of [`ITERATOR_STEP_BYTES`].
const ITERATOR_BYTES_MIN: usize = 152;
const ITERATOR_STEP_BYTES: usize = 16;
/// AWS's documented maximum iterator length.
pub const ITERATOR_CHARS_MAX: usize = 512;

/// Where in the shard an iterator points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// The first record with sequence index at or after this.
    SeqIx(u64),
    /// The first record that arrived at or after this time (epoch ms).
    Timestamp(u64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardIterator {
    pub issued_ms: u64,
    pub stream_name: String,
    pub shard_uid: u64,
    pub shard_index: u32,
    pub position: Position,
}

/// Why an iterator string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IteratorError {
    /// Not an iterator of ours (or altered): InvalidArgumentException "Invalid ShardIterator.".
    Invalid,
    /// Older than the TTL: ExpiredIteratorException with this message.
    Expired(String),
}

/// Signs and checks iterators with one secret key.
#[derive(Clone)]
pub struct IteratorCodec {
    key: [u8; 32],
}

impl std::fmt::Debug for IteratorCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IteratorCodec { key: <secret> }")
    }
}

impl IteratorCodec {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    pub(crate) fn tag(&self, bytes: &[u8]) -> [u8; TAG_BYTES] {
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(m) => m,
            // HMAC takes keys of any length; this cannot happen.
            Err(_) => return [0; TAG_BYTES],
        };
        mac.update(bytes);
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; TAG_BYTES];
        out.copy_from_slice(&full[..TAG_BYTES]);
        out
    }

    pub fn encode(&self, it: &ShardIterator) -> String {
        let name = it.stream_name.as_bytes();
        let mut b = Vec::with_capacity(40 + name.len() + TAG_BYTES);
        b.push(VERSION);
        b.extend_from_slice(&it.issued_ms.to_be_bytes());
        b.extend_from_slice(&it.shard_uid.to_be_bytes());
        b.extend_from_slice(&it.shard_index.to_be_bytes());
        let (kind, pos) = match it.position {
            Position::SeqIx(x) => (0u8, x),
            Position::Timestamp(t) => (1u8, t),
        };
        b.push(kind);
        b.extend_from_slice(&pos.to_be_bytes());
        b.push(name.len().min(255) as u8);
        b.extend_from_slice(&name[..name.len().min(255)]);
        // Header in front, zero padding to AWS's length steps, the tag last.
        let mut out = Vec::with_capacity(ITERATOR_BYTES_MIN + b.len());
        out.extend_from_slice(&HEADER);
        out.extend_from_slice(&b);
        let unpadded = out.len() + TAG_BYTES;
        let total = ITERATOR_BYTES_MIN
            + unpadded
                .saturating_sub(ITERATOR_BYTES_MIN)
                .div_ceil(ITERATOR_STEP_BYTES)
                * ITERATOR_STEP_BYTES;
        out.resize(total - TAG_BYTES, 0);
        let tag = self.tag(&out);
        out.extend_from_slice(&tag);
        base64::engine::general_purpose::STANDARD.encode(out)
    }

    /// Decodes and verifies an iterator; `now_ms` decides expiry. Some clients send the
    /// iterator wrapped in double quotes, which AWS accepts; so does this.
    pub fn decode(&self, text: &str, now_ms: u64) -> Result<ShardIterator, IteratorError> {
        let text = text
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or(text);
        if text.len() > ITERATOR_CHARS_MAX {
            return Err(IteratorError::Invalid);
        }
        // Standard base64 (what Levee issues); URL-safe without padding was issued before.
        let b = base64::engine::general_purpose::STANDARD
            .decode(text)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text))
            .map_err(|_| IteratorError::Invalid)?;
        let body_len = b
            .len()
            .checked_sub(TAG_BYTES)
            .ok_or(IteratorError::Invalid)?;
        let (body, tag) = b.split_at(body_len);
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).map_err(|_| IteratorError::Invalid)?;
        mac.update(body);
        mac.verify_truncated_left(tag)
            .map_err(|_| IteratorError::Invalid)?;
        let it = match body.strip_prefix(&HEADER[..]) {
            Some(rest) => parse_body(rest, true),
            None => parse_body(body, false),
        }
        .ok_or(IteratorError::Invalid)?;
        if now_ms.saturating_sub(it.issued_ms) > ITERATOR_TTL_MS {
            return Err(IteratorError::Expired(format!(
                "Iterator expired. The iterator was created at time {} while right now it is {} which is further in the future than the tolerated delay of {ITERATOR_TTL_MS} milliseconds.",
                java_date(it.issued_ms),
                java_date(now_ms)
            )));
        }
        Ok(it)
    }
}

/// The fields after the header; `padded` allows (only) zero bytes after the stream name.
fn parse_body(b: &[u8], padded: bool) -> Option<ShardIterator> {
    let u64_at = |at: usize| -> Option<u64> {
        let s = b.get(at..at + 8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Some(u64::from_be_bytes(a))
    };
    if *b.first()? != VERSION {
        return None;
    }
    let issued_ms = u64_at(1)?;
    let shard_uid = u64_at(9)?;
    let idx = b.get(17..21)?;
    let shard_index = u32::from_be_bytes([idx[0], idx[1], idx[2], idx[3]]);
    let kind = *b.get(21)?;
    let pos = u64_at(22)?;
    let name_len = *b.get(30)? as usize;
    let name = b.get(31..31 + name_len)?;
    let rest = b.get(31 + name_len..)?;
    if !(rest.is_empty() || padded && rest.iter().all(|&z| z == 0)) {
        return None;
    }
    let position = match kind {
        0 => Position::SeqIx(pos),
        1 => Position::Timestamp(pos),
        _ => return None,
    };
    Some(ShardIterator {
        issued_ms,
        stream_name: String::from_utf8(name.to_vec()).ok()?,
        shard_uid,
        shard_index,
        position,
    })
}

/// Formats epoch ms as Java's `Date.toString()` in UTC: `Thu Jan 22 01:22:02 UTC 2015`.
pub fn java_date(ms: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = ms / 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {}",
        DAYS[(days % 7) as usize],
        MONTHS[(m - 1) as usize],
        d,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        y
    )
}

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31) in the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn codec() -> IteratorCodec {
        IteratorCodec::new([7u8; 32])
    }

    fn sample() -> ShardIterator {
        ShardIterator {
            issued_ms: 1_421_889_722_000,
            stream_name: "my-stream".into(),
            shard_uid: 42,
            shard_index: 3,
            position: Position::SeqIx(99),
        }
    }

    #[test]
    fn java_date_matches_aws_text() {
        // From AWS's recorded ExpiredIteratorException message.
        assert_eq!(java_date(1_421_889_722_000), "Thu Jan 22 01:22:02 UTC 2015");
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(java_date(951_782_400_000), "Tue Feb 29 00:00:00 UTC 2000");
    }

    #[test]
    fn expired_iterator_gives_aws_text() {
        let c = codec();
        let s = c.encode(&sample());
        let now = 1_421_889_722_000 + 301_000;
        match c.decode(&s, now) {
            Err(IteratorError::Expired(m)) => assert_eq!(
                m,
                "Iterator expired. The iterator was created at time Thu Jan 22 01:22:02 UTC 2015 while right now it is Thu Jan 22 01:27:03 UTC 2015 which is further in the future than the tolerated delay of 300000 milliseconds."
            ),
            other => panic!("{other:?}"),
        }
        assert!(c.decode(&s, 1_421_889_722_000 + 300_000).is_ok());
    }

    #[test]
    fn quoted_iterators_are_accepted_and_other_keys_refuse() {
        let c = codec();
        let s = c.encode(&sample());
        assert_eq!(
            c.decode(&format!("\"{s}\""), 1_421_889_722_000),
            Ok(sample())
        );
        let other = IteratorCodec::new([8u8; 32]);
        assert_eq!(
            other.decode(&s, 1_421_889_722_000),
            Err(IteratorError::Invalid)
        );
        assert!(s.len() <= ITERATOR_CHARS_MAX);
    }

    proptest! {
        #[test]
        fn round_trip(issued in any::<u64>(), uid in any::<u64>(), idx in any::<u32>(),
                      pos in any::<u64>(), ts in any::<bool>(), name in "[a-zA-Z0-9_.-]{1,128}") {
            let it = ShardIterator {
                issued_ms: issued,
                stream_name: name,
                shard_uid: uid,
                shard_index: idx,
                position: if ts { Position::Timestamp(pos) } else { Position::SeqIx(pos) },
            };
            let c = codec();
            prop_assert_eq!(c.decode(&c.encode(&it), issued), Ok(it));
        }

        #[test]
        fn any_altered_byte_is_refused(flip in 0usize..40, bit in 0u8..8) {
            let c = codec();
            let s = c.encode(&sample());
            let mut raw = base64::engine::general_purpose::STANDARD.decode(&s).unwrap();
            let i = flip % raw.len();
            raw[i] ^= 1 << bit;
            let altered = base64::engine::general_purpose::STANDARD.encode(raw);
            prop_assert_eq!(c.decode(&altered, 1_421_889_722_000), Err(IteratorError::Invalid));
        }

        #[test]
        fn garbage_never_panics(s in ".{0,600}") {
            let _ = codec().decode(&s, 0);
        }
    }
}
