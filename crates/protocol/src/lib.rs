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
