//! Fuzz harnesses: the checks a fuzzer runs on arbitrary bytes, kept here as plain functions so
//! the AFL targets (`fuzz/`) and the corpus-replay tests drive exactly the same code.
//!
//! Input layout of both: the first byte picks the operation (`Operation::ALL[b % 39]`), the rest
//! is the request body. Invariants checked beyond "does not panic":
//! - a body that decodes re-encodes in CBOR to a body that decodes to the same request
//!   (validation accepts what it produced, nothing is lost on the way), and in JSON to one that
//!   decodes and is stable from then on (JSON clamps timestamps past year 9999);
//! - a body that is refused is refused with an error whose body encodes and parses back.

use crate::{decode_request, decode_response, encode_error, Operation, WireFormat};

/// Decodes `data` (operation byte + JSON body) and checks the invariants above.
pub fn json_request(data: &[u8]) {
    request(WireFormat::Json, data);
}

/// Decodes `data` (operation byte + CBOR body) and checks the invariants above.
pub fn cbor_request(data: &[u8]) {
    request(WireFormat::Cbor, data);
}

fn request(format: WireFormat, data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let op = Operation::ALL[usize::from(selector) % Operation::ALL.len()];
    match decode_request(op, format, body) {
        Ok(request) => {
            assert_eq!(request.operation(), op);
            // CBOR carries every value exactly: the round trip is the identity.
            let again = request.encode(WireFormat::Cbor);
            match decode_request(op, WireFormat::Cbor, &again) {
                Ok(decoded) => assert_eq!(
                    decoded, request,
                    "{op} {format:?} re-encoded as CBOR decodes differently"
                ),
                Err(e) => panic!("{op} {format:?} re-encoded as CBOR is refused: {e}"),
            }
            // JSON renders timestamps past 9999-12-31 as that date (`TIMESTAMP_JSON_MAX_MS`),
            // so one trip may clamp them; the result must decode, and a second trip must be
            // the identity.
            let json = request.encode(WireFormat::Json);
            let once = match decode_request(op, WireFormat::Json, &json) {
                Ok(decoded) => decoded,
                Err(e) => panic!(
                    "{op} {format:?} re-encoded as JSON is refused: {e}; body {}",
                    String::from_utf8_lossy(&json)
                ),
            };
            let twice = decode_request(op, WireFormat::Json, &once.encode(WireFormat::Json));
            assert_eq!(
                twice.as_ref(),
                Ok(&once),
                "{op}: JSON round trip is not stable"
            );
        }
        Err(err) => {
            let body = encode_error(format, &err);
            let parsed: Result<ciborium::Value, _> = match format {
                WireFormat::Cbor => decode_response(format, &body),
                WireFormat::Json => decode_response::<serde_json::Value>(format, &body)
                    .map(|_| ciborium::Value::Null),
            };
            assert!(
                parsed.is_ok(),
                "{op}: the error body of {err} does not parse"
            );
        }
    }
}
