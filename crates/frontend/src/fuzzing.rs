//! Fuzz harnesses: the checks a fuzzer runs on arbitrary bytes, kept here as plain functions so
//! the AFL targets (`fuzz/`) and the corpus-replay tests drive exactly the same code.
//!
//! - [`sigv4`]: an arbitrary request head through [`Auth::begin`] (insecure and verify mode) and
//!   [`Pending::finish`]; only a request signed with the one known key may be accepted.
//! - [`eventstream`]: arbitrary bytes through the event-stream frame reader, whole and streamed
//!   in chunks (the two must agree, and a decoded frame re-encodes to itself); or Levee's own
//!   `SubscribeToShardEvent` and exception frames built from the bytes, read back to the same
//!   value.
//! - [`iterator`]: arbitrary iterator text, bodies signed with the codec's key (so the parser
//!   behind the HMAC is reached), and encode → decode round trips.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use aws_smithy_eventstream::frame::MessageFrameDecoder;
use aws_smithy_eventstream::frame::{read_message_from, write_message_to, DecodedFrame};
use aws_smithy_types::event_stream::Message;
use base64::Engine as _;
use bytes::BytesMut;
use levee_protocol::types::{Record, SubscribeToShardEvent};
use levee_protocol::{decode_response, ApiError, Blob, ErrorKind, Timestamp, WireFormat};

use crate::auth::{Auth, CredentialSource, Secret, Verifier};
use crate::eventstream;
use crate::iterator::{IteratorCodec, IteratorError, Position, ShardIterator, ITERATOR_TTL_MS};

/// The one credential the SigV4 harness knows (the AWS SigV4 test suite's).
pub const FUZZ_KEY_ID: &str = "AKIDEXAMPLE";
pub const FUZZ_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
pub const FUZZ_REGION: &str = "us-east-1";
/// The verifier's clock: 2015-08-30T12:36:00Z, the test suite's date.
pub const FUZZ_NOW_SECS: u64 = 1_440_938_160;

struct OneKey;

impl CredentialSource for OneKey {
    fn lookup(&self, key_id: &str) -> Option<Arc<Secret>> {
        (key_id == FUZZ_KEY_ID).then(|| {
            Arc::new(Secret {
                secret: FUZZ_SECRET.to_owned(),
                account: "111111111111".to_owned(),
                name: "fuzz".to_owned(),
            })
        })
    }
}

/// Parses `METHOD URI\nName: value\n…\n\nbody` into a request; `None` if hyper refuses a part.
fn parse_request(data: &[u8]) -> Option<(hyper::Request<()>, &[u8])> {
    let split = data
        .windows(2)
        .position(|w| w == b"\n\n")
        .unwrap_or(data.len());
    let head = &data[..split];
    let body = data.get(split + 2..).unwrap_or_default();
    let mut lines = head.split(|&b| b == b'\n');
    let first = lines.next()?;
    let space = first.iter().position(|&b| b == b' ')?;
    let mut builder = hyper::Request::builder()
        .method(&first[..space])
        .uri(&first[space + 1..]);
    for line in lines {
        let colon = line.iter().position(|&b| b == b':')?;
        let value = &line[colon + 1..];
        let value = value.strip_prefix(b" ").unwrap_or(value);
        builder = builder.header(&line[..colon], value);
    }
    builder.body(()).ok().map(|r| (r, body))
}

/// An arbitrary request head and body through SigV4 verification.
pub fn sigv4(data: &[u8]) {
    sigv4_accepts(data);
}

/// [`sigv4`], answering whether verify mode accepted the request (signed with the known key).
pub fn sigv4_accepts(data: &[u8]) -> bool {
    let Some((req, body)) = parse_request(data) else {
        return false;
    };
    // Insecure mode checks the shape only and never names a caller.
    if let Ok(pending) = Auth::Insecure.begin(&req) {
        assert_eq!(pending.finish(body), Ok(None));
    }
    let clock = Arc::new(|| UNIX_EPOCH + Duration::from_secs(FUZZ_NOW_SECS));
    let verifier = Verifier::with_clock(Arc::new(OneKey), FUZZ_REGION, clock);
    let auth = Auth::Verify(Arc::new(verifier));
    match auth.begin(&req) {
        Ok(pending) => match pending.finish(body) {
            Ok(caller) => {
                let caller = caller.expect("verify mode names the caller");
                assert_eq!(caller.key_id, FUZZ_KEY_ID);
                true
            }
            Err(e) => {
                assert_eq!(e.kind, ErrorKind::InvalidSignature, "{e}");
                false
            }
        },
        Err(e) => {
            assert!(
                matches!(
                    e.kind,
                    ErrorKind::MissingAuthenticationToken
                        | ErrorKind::IncompleteSignature
                        | ErrorKind::InvalidSignature
                        | ErrorKind::UnrecognizedClient
                ),
                "unexpected auth error {e}"
            );
            false
        }
    }
}

/// CRC-32 (IEEE), as event-stream frames use; bitwise, inputs are small.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Rewrites the prelude and message CRCs of every frame the length fields delimit, so the
/// fuzzer reaches the header and payload parsing behind them.
fn fix_crcs(b: &mut [u8]) {
    let mut pos = 0usize;
    while b.len() - pos >= 12 {
        let total = u32::from_be_bytes([b[pos], b[pos + 1], b[pos + 2], b[pos + 3]]) as usize;
        let crc = crc32(&b[pos..pos + 8]).to_be_bytes();
        b[pos + 8..pos + 12].copy_from_slice(&crc);
        if total < 16 || b.len() - pos < total {
            return;
        }
        let crc = crc32(&b[pos..pos + total - 4]).to_be_bytes();
        b[pos + total - 4..pos + total].copy_from_slice(&crc);
        pos += total;
    }
}

/// Event-stream framing: see the module docs. The first byte picks the mode.
pub fn eventstream(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 0x80 == 0 {
        let mut bytes = rest.to_vec();
        if mode & 0x40 != 0 {
            fix_crcs(&mut bytes);
        }
        read_frames(&bytes, usize::from(mode & 0x3f) + 1);
    } else {
        levee_frames(mode, rest);
    }
}

fn read_frames(bytes: &[u8], chunk: usize) {
    // Whole: frame after frame until the bytes end or one fails.
    let mut whole = Vec::new();
    let mut buf = bytes;
    while !buf.is_empty() {
        match read_message_from(&mut buf) {
            Ok(m) => whole.push(m),
            Err(_) => break,
        }
    }
    // Streamed: the bytes arrive `chunk` at a time.
    let mut streamed: Vec<Message> = Vec::new();
    let mut decoder = MessageFrameDecoder::new();
    let mut pending = BytesMut::new();
    'feed: for piece in bytes.chunks(chunk) {
        pending.extend_from_slice(piece);
        loop {
            match decoder.decode_frame(&mut pending) {
                Ok(DecodedFrame::Complete(m)) => streamed.push(m),
                Ok(DecodedFrame::Incomplete) => break,
                Err(_) => break 'feed,
            }
        }
    }
    assert_eq!(whole, streamed, "whole and streamed reads disagree");
    for m in &whole {
        let mut out = Vec::new();
        if write_message_to(m, &mut out).is_ok() {
            let again = read_message_from(&out[..]).expect("a written frame reads back");
            assert_eq!(&again, m);
        }
    }
}

fn header<'a>(m: &'a Message, name: &str) -> Option<&'a str> {
    m.headers()
        .iter()
        .find(|h| h.name().as_str() == name)
        .and_then(|h| h.value().as_string().ok())
        .map(|s| s.as_str())
}

/// Levee's own frames, with records and messages made of the fuzzer's bytes, read back.
fn levee_frames(mode: u8, rest: &[u8]) {
    let format = if mode & 1 == 0 {
        WireFormat::Json
    } else {
        WireFormat::Cbor
    };
    let per_record = usize::from(mode >> 1 & 0x1f) + 1;
    let event = SubscribeToShardEvent {
        records: rest
            .chunks(per_record)
            .enumerate()
            .map(|(i, c)| Record {
                sequence_number: i.to_string(),
                approximate_arrival_timestamp: Some(Timestamp(c.len() as u64 * 1000)),
                data: Blob::new(c.to_vec()),
                partition_key: String::from_utf8_lossy(c).into_owned(),
                encryption_type: None,
            })
            .collect(),
        continuation_sequence_number: Some(rest.len().to_string()),
        millis_behind_latest: rest.len() as i64,
        child_shards: None,
    };
    let frame = eventstream::event(format, "SubscribeToShardEvent", &event);
    let m = read_message_from(&frame[..]).expect("Levee's event frame reads");
    assert_eq!(header(&m, ":message-type"), Some("event"));
    assert_eq!(header(&m, ":event-type"), Some("SubscribeToShardEvent"));
    assert_eq!(header(&m, ":content-type"), Some(format.content_type()));
    let back: SubscribeToShardEvent =
        decode_response(format, m.payload()).expect("the event payload decodes");
    assert_eq!(back, event);

    let err = ApiError::new(ErrorKind::ResourceInUse, String::from_utf8_lossy(rest));
    let frame = eventstream::exception(format, &err);
    let m = read_message_from(&frame[..]).expect("Levee's exception frame reads");
    assert_eq!(header(&m, ":message-type"), Some("exception"));
    assert_eq!(
        header(&m, ":exception-type"),
        Some("ResourceInUseException")
    );
    #[derive(serde::Deserialize)]
    struct Body {
        message: Option<String>,
    }
    let body: Body = decode_response(format, m.payload()).expect("the exception body decodes");
    assert_eq!(body.message.unwrap_or_default(), err.message);
}

/// The iterator harness's clock (ms).
const NOW_MS: u64 = 1_700_000_000_000;

/// Shard iterators: see the module docs. The first byte picks the mode.
pub fn iterator(data: &[u8]) {
    let codec = IteratorCodec::new([7; 32]);
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            if let Ok(text) = std::str::from_utf8(rest) {
                check_decoded(&codec, codec.decode(text, NOW_MS));
            }
        }
        1 => {
            // A body signed with the key, so the parser behind the HMAC sees fuzzed fields.
            let mut b = rest.to_vec();
            let tag = codec.tag(&b);
            b.extend_from_slice(&tag);
            let text = if mode & 8 == 0 {
                base64::engine::general_purpose::STANDARD.encode(&b)
            } else {
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&b)
            };
            let text = if mode & 16 == 0 {
                text
            } else {
                format!("\"{text}\"")
            };
            check_decoded(&codec, codec.decode(&text, NOW_MS));
        }
        _ => {
            // Encode → decode of an iterator built from the bytes.
            let u64_at = |at: usize| -> u64 {
                let mut a = [0u8; 8];
                for (i, x) in a.iter_mut().enumerate() {
                    *x = rest.get(at + i).copied().unwrap_or(0);
                }
                u64::from_le_bytes(a)
            };
            let name_bytes = rest.get(20..).unwrap_or_default();
            let mut name = String::from_utf8_lossy(name_bytes).into_owned();
            let mut cut = name.len().min(255);
            while !name.is_char_boundary(cut) {
                cut -= 1;
            }
            name.truncate(cut);
            let it = ShardIterator {
                issued_ms: NOW_MS - u64_at(0) % (ITERATOR_TTL_MS + 1),
                stream_name: name,
                shard_uid: u64_at(8),
                shard_index: u64_at(16) as u32,
                position: if mode & 4 == 0 {
                    Position::SeqIx(u64_at(4))
                } else {
                    Position::Timestamp(u64_at(4))
                },
            };
            let text = codec.encode(&it);
            assert_eq!(codec.decode(&text, NOW_MS), Ok(it));
            // Every other key refuses it.
            let other = IteratorCodec::new([8; 32]);
            assert_eq!(other.decode(&text, NOW_MS), Err(IteratorError::Invalid));
        }
    }
}

fn check_decoded(codec: &IteratorCodec, r: Result<ShardIterator, IteratorError>) {
    match r {
        Ok(it) => {
            assert!(NOW_MS.saturating_sub(it.issued_ms) <= ITERATOR_TTL_MS);
            assert_eq!(codec.decode(&codec.encode(&it), NOW_MS), Ok(it));
        }
        Err(IteratorError::Expired(msg)) => assert!(msg.starts_with("Iterator expired.")),
        Err(IteratorError::Invalid) => {}
    }
}
