//! `application/vnd.amazon.eventstream` messages for SubscribeToShard, framed by
//! `aws-smithy-eventstream` (prelude, headers, payload, CRC32s as the Amazon Event Stream
//! specification lays them out).

use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use bytes::Bytes;
use levee_protocol::{encode_error, encode_response, ApiError, WireFormat};
use serde::Serialize;

/// The response content type of an event stream.
pub const CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";

fn frame(headers: Vec<Header>, payload: Vec<u8>) -> Bytes {
    let message = Message::new_from_parts(headers, Bytes::from(payload));
    let mut out = Vec::with_capacity(message.payload().len() + 128);
    // Writing to a Vec fails only for a message over the format's 16 MiB limit; events are
    // bounded well below it (at most GET_RECORDS_BYTES_MAX of data per event, base64-grown).
    aws_smithy_eventstream::frame::write_message_to(&message, &mut out)
        .expect("an event stays within the event-stream frame limit");
    Bytes::from(out)
}

fn string(name: &'static str, value: &'static str) -> Header {
    Header::new(name, HeaderValue::String(value.into()))
}

/// An event message: `:message-type event`, `:event-type`, `:content-type`, the encoded value.
pub fn event<T: Serialize>(format: WireFormat, event_type: &'static str, value: &T) -> Bytes {
    frame(
        vec![
            string(":message-type", "event"),
            string(":event-type", event_type),
            string(":content-type", format.content_type()),
        ],
        encode_response(format, value),
    )
}

/// The `initial-response` event every subscription starts with (an empty object).
pub fn initial_response(format: WireFormat) -> Bytes {
    #[derive(Serialize)]
    struct Empty {}
    event(format, "initial-response", &Empty {})
}

/// An in-stream error: `:message-type exception`, `:exception-type` the error's type.
pub fn exception(format: WireFormat, err: &ApiError) -> Bytes {
    frame(
        vec![
            string(":message-type", "exception"),
            string(":exception-type", err.kind.type_name()),
            string(":content-type", format.content_type()),
        ],
        encode_error(format, err),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_eventstream::frame::read_message_from;
    use levee_protocol::ErrorKind;

    fn header<'a>(m: &'a Message, name: &str) -> &'a str {
        m.headers()
            .iter()
            .find(|h| h.name().as_str() == name)
            .and_then(|h| h.value().as_string().ok())
            .map(|s| s.as_str())
            .unwrap_or_else(|| panic!("no header {name}"))
    }

    #[test]
    fn frames_decode_with_the_sdk_reader() {
        let b = initial_response(WireFormat::Json);
        let m = read_message_from(&b[..]).unwrap();
        assert_eq!(header(&m, ":event-type"), "initial-response");
        assert_eq!(header(&m, ":message-type"), "event");
        assert_eq!(&m.payload()[..], b"{}");

        let e = ApiError::new(ErrorKind::ResourceInUse, "taken over");
        let b = exception(WireFormat::Cbor, &e);
        let m = read_message_from(&b[..]).unwrap();
        assert_eq!(header(&m, ":exception-type"), "ResourceInUseException");
        assert_eq!(header(&m, ":content-type"), "application/x-amz-cbor-1.1");
        // A corrupted frame fails its CRC.
        let mut bad = b.to_vec();
        let last = bad.len() - 5;
        bad[last] ^= 0xff;
        assert!(read_message_from(&bad[..]).is_err());
    }
}
