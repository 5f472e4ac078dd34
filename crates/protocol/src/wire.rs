//! Wire-level value types: the two body formats, timestamps and blobs.
//!
//! JSON and CBOR carry the same document shape but disagree on two scalar kinds, and AWS SDKs are
//! strict about both (kinesis-api.md §1.1):
//! - a timestamp is a JSON number of epoch *seconds* with a millisecond fraction, but in CBOR it is
//!   tag 1 followed by an *integer* of epoch *milliseconds* (never a float: `0xc1 0xfb` breaks the
//!   Java SDK);
//! - a blob is a base64 string in JSON and a byte string in CBOR.
//!
//! [`Timestamp`] and [`Blob`] implement serde by asking the serializer whether it is human
//! readable (`serde_json`: yes, `ciborium`: no), so every type built from them encodes correctly
//! in both formats.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A request or response body format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireFormat {
    /// `application/x-amz-json-1.1`.
    Json,
    /// `application/x-amz-cbor-1.1`, the Java SDKs' default.
    Cbor,
}

/// `Content-Type` of JSON bodies.
pub const CONTENT_TYPE_JSON: &str = "application/x-amz-json-1.1";
/// `Content-Type` of CBOR bodies.
pub const CONTENT_TYPE_CBOR: &str = "application/x-amz-cbor-1.1";

/// A `Content-Type` without its parameters and surrounding blanks: `" application/json ;x"` →
/// `"application/json"`.
pub fn content_type_essence(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or_default().trim()
}

impl WireFormat {
    /// The format named by a `Content-Type` header; parameters (`; charset=utf-8`) and case are
    /// ignored. Plain `application/json` names neither: AWS answers it with Coral's old
    /// `Output`/`Version` envelope and never runs an operation for it (see the front-end).
    pub fn from_content_type(content_type: &str) -> Option<WireFormat> {
        let essence = content_type_essence(content_type);
        if essence.eq_ignore_ascii_case(CONTENT_TYPE_JSON) {
            Some(WireFormat::Json)
        } else if essence.eq_ignore_ascii_case(CONTENT_TYPE_CBOR) {
            Some(WireFormat::Cbor)
        } else {
            None
        }
    }

    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            WireFormat::Json => CONTENT_TYPE_JSON,
            WireFormat::Cbor => CONTENT_TYPE_CBOR,
        }
    }
}

/// The largest timestamp rendered in JSON: 9999-12-31T23:59:59.999Z. Larger values are clamped so
/// that the seconds never reach the range where a float prints in exponent notation.
pub const TIMESTAMP_JSON_MAX_MS: u64 = 253_402_300_799_999;

/// A point in time, in milliseconds since the Unix epoch.
///
/// JSON: a number of epoch seconds with at most three decimals, never in exponent notation
/// (`1700000000.123`). CBOR: tag 1 + an unsigned integer of epoch milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Milliseconds since the epoch.
    pub fn millis(self) -> u64 {
        self.0
    }

    /// From a number of epoch seconds (a JSON timestamp), rounded to the millisecond; negative,
    /// NaN and infinite inputs saturate (to 0 or `u64::MAX`).
    pub fn from_seconds_f64(seconds: f64) -> Timestamp {
        // `as` saturates and maps NaN to 0.
        Timestamp((seconds * 1000.0).round() as u64)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            // ms / 1000 correctly rounded; the shortest round-trip rendering of that double has
            // at most three decimals, and below 1e16 serde_json never uses an exponent.
            let ms = self.0.min(TIMESTAMP_JSON_MAX_MS);
            serializer.serialize_f64(ms as f64 / 1000.0)
        } else {
            ciborium::tag::Required::<u64, 1>(self.0).serialize(serializer)
        }
    }
}

struct TimestampVisitor {
    human_readable: bool,
}

impl TimestampVisitor {
    fn timestamp(&self, v: f64) -> Timestamp {
        if self.human_readable {
            Timestamp::from_seconds_f64(v)
        } else {
            Timestamp(v.round() as u64)
        }
    }
}

impl Visitor<'_> for TimestampVisitor {
    type Value = Timestamp;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a timestamp number")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
        if self.human_readable {
            Ok(Timestamp(v.saturating_mul(1000)))
        } else {
            Ok(Timestamp(v))
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
        self.visit_u64(u64::try_from(v).unwrap_or(0))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Timestamp, E> {
        Ok(self.timestamp(v))
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        let human_readable = deserializer.is_human_readable();
        if human_readable {
            deserializer.deserialize_any(TimestampVisitor { human_readable })
        } else {
            // ciborium skips tags when a number is asked for.
            deserializer.deserialize_u64(TimestampVisitor { human_readable })
        }
    }
}

/// Binary data: a base64 string in JSON, a byte string in CBOR.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Blob(pub bytes::Bytes);

impl Blob {
    pub fn new(data: impl Into<bytes::Bytes>) -> Blob {
        Blob(data.into())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Blob({} bytes)", self.0.len())
    }
}

impl From<Vec<u8>> for Blob {
    fn from(v: Vec<u8>) -> Blob {
        Blob(v.into())
    }
}

impl From<&[u8]> for Blob {
    fn from(v: &[u8]) -> Blob {
        Blob(bytes::Bytes::copy_from_slice(v))
    }
}

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&base64_encode(&self.0))
        } else {
            serializer.serialize_bytes(&self.0)
        }
    }
}

struct BlobVisitor;

impl<'de> Visitor<'de> for BlobVisitor {
    type Value = Blob;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte string or a base64 string")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Blob, E> {
        Ok(Blob::from(v))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Blob, E> {
        Ok(Blob::from(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Blob, E> {
        match check_base64(v) {
            Ok(bytes) => Ok(Blob::from(bytes)),
            Err(problem) => Err(E::custom(problem.message(v))),
        }
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Blob, A::Error> {
        let mut out = Vec::new();
        while let Some(b) = seq.next_element::<u8>()? {
            out.push(b);
        }
        Ok(Blob::from(out))
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Blob, D::Error> {
        if deserializer.is_human_readable() {
            deserializer.deserialize_any(BlobVisitor)
        } else {
            deserializer.deserialize_byte_buf(BlobVisitor)
        }
    }
}

const BASE64_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (the `base64` crate's engine).
pub fn base64_encode(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// [`base64_encode`] appended to `out`, SIMD-accelerated (GetRecords encodes every record's
/// data; a proptest checks it against [`base64_encode`]).
pub(crate) fn base64_encode_into(data: &[u8], out: &mut Vec<u8>) {
    base64_simd::STANDARD.encode_append(data, out);
}

fn base64_value(c: u8) -> Option<u32> {
    match c {
        b'A'..=b'Z' => Some(u32::from(c - b'A')),
        b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Why a base64 string is not a blob, in AWS's words (kinesalite `validations/index.js`, texts
/// recorded in `test/helpers.js::assertType`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Base64Problem {
    /// The length (in UTF-16 units, as Java counts) is not a multiple of 4.
    Length(usize),
    /// A character outside the alphabet, or a `=` followed by something other than `=`.
    Character(char),
    /// Padding or trailing bits that a canonical encoder would not produce.
    LastCharacter,
}

impl Base64Problem {
    pub(crate) fn message(&self, value: &str) -> String {
        let detail = match self {
            Base64Problem::Length(n) => {
                format!("Base64 encoded length is expected a multiple of 4 bytes but found: {n}")
            }
            Base64Problem::Character(c) => format!("Invalid Base64 character: '{c}'"),
            // "dectected" (sic) is what AWS sends.
            Base64Problem::LastCharacter => {
                "Invalid last non-pad Base64 character dectected".to_owned()
            }
        };
        format!("'{value}' can not be converted to a Blob: {detail}")
    }
}

/// Decodes a base64 blob the way AWS accepts it: length a multiple of 4, alphabet
/// `[A-Za-z0-9+/=]`, padding only at the end, and canonical (re-encoding gives the same text).
///
/// The common case (ASCII) is one table-driven pass four characters at a time: a full quantum
/// of four alphabet characters is always canonical, so only the last, padded one is checked
/// bit by bit. Anything else takes [`check_base64_slow`], which reports the same errors.
pub(crate) fn check_base64(text: &str) -> Result<Vec<u8>, Base64Problem> {
    let bytes = text.as_bytes();
    if !bytes.is_ascii() {
        return check_base64_slow(text);
    }
    if !bytes.len().is_multiple_of(4) {
        return Err(Base64Problem::Length(bytes.len()));
    }
    let pad = bytes.iter().rev().take_while(|&&b| b == b'=').count();
    let body = &bytes[..bytes.len() - pad];
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let mut quanta = body.chunks_exact(4);
    for q in quanta.by_ref() {
        let (a, b, c, d) = (
            BASE64_DECODE[q[0] as usize],
            BASE64_DECODE[q[1] as usize],
            BASE64_DECODE[q[2] as usize],
            BASE64_DECODE[q[3] as usize],
        );
        if (a | b | c | d) & BASE64_INVALID != 0 {
            // A character outside the alphabet, or `=` before the end: the slow path names it.
            return check_base64_slow(text);
        }
        let n = (u32::from(a) << 18) | (u32::from(b) << 12) | (u32::from(c) << 6) | u32::from(d);
        out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]);
    }
    let rest = quanta.remainder();
    let mut v = [0u8; 3];
    for (slot, &ch) in v.iter_mut().zip(rest) {
        *slot = BASE64_DECODE[ch as usize];
        if *slot & BASE64_INVALID != 0 {
            return check_base64_slow(text);
        }
    }
    // The canonical endings: nothing; two characters and `==` (the second's low 4 bits zero);
    // three and `=` (the third's low 2 bits zero). Anything else re-encodes differently.
    match (rest.len(), pad) {
        (0, 0) => {}
        (2, 2) if v[1] & 0x0f == 0 => out.push((v[0] << 2) | (v[1] >> 4)),
        (3, 1) if v[2] & 0x03 == 0 => {
            out.push((v[0] << 2) | (v[1] >> 4));
            out.push((v[1] << 4) | (v[2] >> 2));
        }
        _ => return Err(Base64Problem::LastCharacter),
    }
    Ok(out)
}

/// Marks a byte that is not a base64 alphabet character in [`BASE64_DECODE`].
const BASE64_INVALID: u8 = 0x80;

/// Each byte's 6-bit value, or [`BASE64_INVALID`].
const BASE64_DECODE: [u8; 256] = {
    let mut t = [BASE64_INVALID; 256];
    let mut i = 0;
    while i < 64 {
        t[BASE64_ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// [`check_base64`] character by character: the error for any text, ASCII or not.
fn check_base64_slow(text: &str) -> Result<Vec<u8>, Base64Problem> {
    let utf16_len = text.encode_utf16().count();
    if !utf16_len.is_multiple_of(4) {
        return Err(Base64Problem::Length(utf16_len));
    }
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let in_alphabet = c.is_ascii() && (c == '=' || base64_value(c as u8).is_some());
        if !in_alphabet {
            return Err(Base64Problem::Character(c));
        }
        if c == '=' && chars.peek().is_some_and(|&next| next != '=') {
            return Err(Base64Problem::Character('='));
        }
    }
    // Now `text` is ASCII: alphabet characters, then only `=`. Decode leniently (incomplete
    // trailing bits dropped), then require the canonical encoding.
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for v in text.bytes().filter_map(base64_value) {
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if base64_encode(&out) != text {
        return Err(Base64Problem::LastCharacter);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The fast decoder answers exactly as the character-by-character one: the same bytes
        /// or the same error, for near-base64 text (padding anywhere, stray and non-ASCII
        /// characters) and for real encodings.
        #[test]
        fn the_fast_base64_path_agrees_with_the_slow_one(
            text in "[A-Da-d0-3+/=\\-é]{0,14}",
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
        ) {
            proptest::prop_assert_eq!(check_base64(&text), check_base64_slow(&text));
            let encoded = base64_encode(&data);
            proptest::prop_assert_eq!(check_base64(&encoded), Ok(data));
            proptest::prop_assert_eq!(check_base64(&encoded), check_base64_slow(&encoded));
        }
    }

    #[test]
    fn base64_endings() {
        for (text, ok) in [
            ("", true),
            ("QQ==", true),
            ("QR==", false),
            ("QUI=", true),
            ("QUJ=", false),
            ("Q===", false),
            ("====", false),
            ("QUJD====", false),
            ("QU=D", false),
            ("QUJD", true),
        ] {
            assert_eq!(check_base64(text).is_ok(), ok, "{text}");
            assert_eq!(check_base64(text), check_base64_slow(text), "{text}");
        }
    }

    #[test]
    fn content_types() {
        assert_eq!(
            WireFormat::from_content_type("application/x-amz-json-1.1"),
            Some(WireFormat::Json)
        );
        assert_eq!(
            WireFormat::from_content_type("application/x-amz-json-1.1; charset=utf-8"),
            Some(WireFormat::Json)
        );
        assert_eq!(WireFormat::from_content_type("application/json"), None);
        assert_eq!(
            content_type_essence("   application/json     ;"),
            "application/json"
        );
        assert_eq!(
            WireFormat::from_content_type(" application/x-amz-cbor-1.1 ;x=y"),
            Some(WireFormat::Cbor)
        );
        assert_eq!(WireFormat::from_content_type("text/plain"), None);
        assert_eq!(WireFormat::from_content_type(""), None);
        assert_eq!(
            WireFormat::Json.content_type(),
            "application/x-amz-json-1.1"
        );
        assert_eq!(
            WireFormat::Cbor.content_type(),
            "application/x-amz-cbor-1.1"
        );
    }

    #[test]
    fn base64_known_vectors() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foo"), "Zm9v");
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(check_base64("Zm9vYmFy"), Ok(b"foobar".to_vec()));
        assert_eq!(check_base64("Zg=="), Ok(b"f".to_vec()));
        assert_eq!(check_base64(""), Ok(Vec::new()));
    }

    #[test]
    fn base64_problems_match_aws_texts() {
        // kinesalite test/helpers.js::assertType, case 'Blob'.
        let cases = [
            (
                "23456",
                "'23456' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: 5",
            ),
            ("=+/=", "'=+/=' can not be converted to a Blob: Invalid Base64 character: '='"),
            (
                "+/+=",
                "'+/+=' can not be converted to a Blob: Invalid last non-pad Base64 character dectected",
            ),
        ];
        for (input, message) in cases {
            let problem = check_base64(input).unwrap_err();
            assert_eq!(problem.message(input), message);
        }
        assert_eq!(check_base64("ab!d"), Err(Base64Problem::Character('!')));
        assert_eq!(check_base64("===="), Err(Base64Problem::LastCharacter));
        assert_eq!(check_base64("a==="), Err(Base64Problem::LastCharacter));
        assert_eq!(check_base64("Zg=a"), Err(Base64Problem::Character('=')));
    }
}
