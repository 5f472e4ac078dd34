//! `levee-protocol`: the wire codec of the Kinesis Data Streams API, and nothing else.
//!
//! It owns what a request body and a response body look like — the two formats (awsJson 1.1 and
//! the Java SDKs' CBOR), the operations and their input/output structures, AWS's type-check and
//! validation errors with their exact texts, and the error body. It does no I/O: no sockets, no
//! HTTP, no tokio, no clock. Keeping the codec pure (ARCHITECTURE.md, design.md §4) lets the
//! front-end, the tests and the fuzzers drive exactly the production parsing on bytes alone, and
//! keeps HTTP concerns (headers, status lines, signing) in the front-end.
//!
//! Entry points:
//! - [`Operation::from_target`] reads `X-Amz-Target`; [`WireFormat::from_content_type`] reads
//!   `Content-Type`.
//! - [`decode_request`] turns a body into a typed, validated [`Request`].
//! - [`encode_response`] and [`encode_error`] produce response bodies; [`decode_response`] reads
//!   them back (for tests).

mod error;
#[doc(hidden)]
pub mod fuzzing;
mod operation;
mod request;
mod schema;
mod shapes;
mod tree;
pub mod types;
mod wire;

pub use error::{ApiError, ErrorKind};
pub use operation::{Operation, TARGET_PREFIX};
pub use request::{decode_request, is_document, Request};
pub use shapes::DATA_BYTES_MAX;
pub use wire::{
    base64_encode, content_type_essence, Blob, Timestamp, WireFormat, CONTENT_TYPE_CBOR,
    CONTENT_TYPE_JSON, TIMESTAMP_JSON_MAX_MS,
};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The body of an empty JSON object, the fallback should a response fail to encode.
const EMPTY_JSON: &[u8] = b"{}";
/// The body of an empty CBOR map.
const EMPTY_CBOR: &[u8] = &[0xa0];

/// Encodes a response structure (any `types::*Output`) in `format`.
///
/// The types of this crate always encode; should a foreign type fail (a map with non-string
/// keys), the body is an empty object rather than a panic.
pub fn encode_response<T: Serialize>(format: WireFormat, value: &T) -> Vec<u8> {
    match format {
        WireFormat::Json => serde_json::to_vec(value).unwrap_or_else(|_| EMPTY_JSON.to_vec()),
        WireFormat::Cbor => {
            let mut out = Vec::new();
            match ciborium::into_writer(value, &mut out) {
                Ok(()) => out,
                Err(_) => EMPTY_CBOR.to_vec(),
            }
        }
    }
}

/// [`encode_response`] for GetRecords, the hottest answer: in JSON through [`GetRecordsJson`],
/// whose bytes are exactly `serde_json`'s (`get_records_json_is_serde_json` checks it). CBOR goes
/// through serde.
pub fn encode_get_records(format: WireFormat, value: &types::GetRecordsOutput) -> Vec<u8> {
    if format != WireFormat::Json {
        return encode_response(format, value);
    }
    let data_bytes: usize = value.records.iter().map(|r| r.data.0.len()).sum();
    let keys: usize = value.records.iter().map(|r| r.partition_key.len()).sum();
    let mut w = GetRecordsJson::with_capacity(value.records.len(), data_bytes, keys);
    for r in &value.records {
        w.record(RecordRef {
            sequence_number: &r.sequence_number,
            approximate_arrival_ms: r.approximate_arrival_timestamp.map(|t| t.0),
            data: &r.data.0,
            partition_key: &r.partition_key,
            encryption_type: r.encryption_type,
        });
    }
    w.finish(
        value.next_shard_iterator.as_deref(),
        value.millis_behind_latest,
        value.child_shards.as_deref(),
    )
}

/// One record of a GetRecords answer, borrowed from wherever the caller holds it.
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    pub sequence_number: &'a str,
    pub approximate_arrival_ms: Option<u64>,
    pub data: &'a [u8],
    pub partition_key: &'a str,
    pub encryption_type: Option<types::EncryptionType>,
}

/// A GetRecords JSON body written record by record, straight from the caller's buffers (no
/// intermediate [`types::GetRecordsOutput`]): sequence numbers are digits and data base64, so
/// neither needs escaping, and the data is encoded straight into the body. Bytes are exactly
/// what `serde_json` writes for the equivalent output.
#[derive(Debug)]
pub struct GetRecordsJson {
    out: Vec<u8>,
    records: usize,
}

impl GetRecordsJson {
    /// Sized for `records` records with `data_bytes` of data and `key_bytes` of partition keys:
    /// exactly enough unless keys need escaping, so the body is not copied to grow.
    pub fn with_capacity(records: usize, data_bytes: usize, key_bytes: usize) -> Self {
        let base64 = data_bytes.div_ceil(3) * 4 + records * 4;
        let mut out = Vec::with_capacity(256 + base64 + key_bytes + records * 200);
        out.extend_from_slice(b"{\"Records\":[");
        Self { out, records: 0 }
    }

    pub fn record(&mut self, r: RecordRef<'_>) {
        let out = &mut self.out;
        if self.records > 0 {
            out.push(b',');
        }
        self.records += 1;
        out.extend_from_slice(b"{\"SequenceNumber\":");
        json_str(out, r.sequence_number, all_digits(r.sequence_number));
        if let Some(ms) = r.approximate_arrival_ms {
            out.extend_from_slice(b",\"ApproximateArrivalTimestamp\":");
            json_timestamp(out, ms);
        }
        out.extend_from_slice(b",\"Data\":\"");
        wire::base64_encode_into(r.data, out);
        out.extend_from_slice(b"\",\"PartitionKey\":");
        json_str(out, r.partition_key, needs_no_escape(r.partition_key));
        if let Some(e) = &r.encryption_type {
            out.extend_from_slice(b",\"EncryptionType\":");
            json_value(out, e);
        }
        out.push(b'}');
    }

    pub fn finish(
        mut self,
        next_shard_iterator: Option<&str>,
        millis_behind_latest: Option<i64>,
        child_shards: Option<&[types::ChildShard]>,
    ) -> Vec<u8> {
        let out = &mut self.out;
        out.push(b']');
        if let Some(it) = next_shard_iterator {
            out.extend_from_slice(b",\"NextShardIterator\":");
            json_str(out, it, needs_no_escape(it));
        }
        if let Some(ms) = millis_behind_latest {
            out.extend_from_slice(b",\"MillisBehindLatest\":");
            out.extend_from_slice(itoa::Buffer::new().format(ms).as_bytes());
        }
        if let Some(children) = child_shards {
            out.extend_from_slice(b",\"ChildShards\":");
            json_value(out, children);
        }
        out.push(b'}');
        self.out
    }
}

/// serde_json escapes only control characters, `"` and `\\` (not DEL, not non-ASCII). Folded
/// without an early exit, so it vectorizes (it runs on every record's key).
fn needs_no_escape(s: &str) -> bool {
    s.bytes()
        .fold(true, |ok, b| ok & (b >= 0x20) & (b != b'"') & (b != b'\\'))
}

/// Only ASCII digits (a sequence number, written unescaped); vectorizes like [`needs_no_escape`].
fn all_digits(s: &str) -> bool {
    s.bytes().fold(true, |ok, b| ok & b.is_ascii_digit())
}

/// A timestamp as serde_json writes `ms / 1000.0`. Below 2^43 ms (the year 2248) doubles are
/// spaced far closer than a millisecond, so the shortest rendering is the three decimals with
/// trailing zeros dropped (`.0` when whole); beyond, serde_json itself.
fn json_timestamp(out: &mut Vec<u8>, ms: u64) {
    if ms >= 1 << 43 {
        json_value(out, &Timestamp(ms));
        return;
    }
    let (secs, frac) = (ms / 1000, ms % 1000);
    out.extend_from_slice(itoa::Buffer::new().format(secs).as_bytes());
    out.push(b'.');
    let digits = [frac / 100, frac / 10 % 10, frac % 10];
    let keep = match (frac % 100, frac % 10) {
        _ if frac == 0 => 1,
        (0, _) => 1,
        (_, 0) => 2,
        _ => 3,
    };
    out.extend(digits[..keep].iter().map(|d| b'0' + *d as u8));
}

/// A JSON string: raw when the caller knows it needs no escaping, else serde_json's escaping.
fn json_str(out: &mut Vec<u8>, s: &str, plain: bool) {
    if plain {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        json_value(out, s);
    }
}

fn json_value<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    // Writing to a Vec cannot fail, and these types always serialize.
    let _ = serde_json::to_writer(out, v);
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "__type")]
    kind: &'a str,
    #[serde(rename = "message", skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    #[serde(rename = "Message", skip_serializing_if = "Option::is_none")]
    capital_message: Option<&'a str>,
}

/// Encodes an error body: `{"__type":"ResourceNotFoundException","message":"..."}`, with
/// `Message` for `SerializationException`, and no message member when the message is empty (as
/// AWS sends `UnknownOperationException` and `InternalFailure`). CBOR: the same map.
pub fn encode_error(format: WireFormat, err: &ApiError) -> Vec<u8> {
    let message = (!err.message.is_empty()).then_some(err.message.as_str());
    let body = if err.kind == ErrorKind::Serialization {
        ErrorBody {
            kind: err.kind.type_name(),
            message: None,
            capital_message: message,
        }
    } else {
        ErrorBody {
            kind: err.kind.type_name(),
            message,
            capital_message: None,
        }
    };
    encode_response(format, &body)
}

/// Why a response body could not be read by [`decode_response`].
#[derive(Debug, thiserror::Error)]
#[error("cannot decode {format:?} response body: {reason}")]
pub struct DecodeError {
    pub format: WireFormat,
    pub reason: String,
}

/// Decodes a response body (for tests and clients): JSON timestamps are epoch seconds, CBOR ones
/// tag 1 + epoch milliseconds. An empty body decodes as an empty object.
pub fn decode_response<T: DeserializeOwned>(
    format: WireFormat,
    body: &[u8],
) -> Result<T, DecodeError> {
    let err = |reason: String| DecodeError { format, reason };
    match format {
        WireFormat::Json => {
            let body = if body.is_empty() { EMPTY_JSON } else { body };
            serde_json::from_slice(body).map_err(|e| err(e.to_string()))
        }
        WireFormat::Cbor => {
            let body = if body.is_empty() { EMPTY_CBOR } else { body };
            ciborium::from_reader(body).map_err(|e| err(e.to_string()))
        }
    }
}
