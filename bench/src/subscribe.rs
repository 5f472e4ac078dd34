//! A SubscribeToShard client for the `e2e --consumer subscribe` workload: one signed
//! `SubscribeToShard` call whose answer is an `application/vnd.amazon.eventstream` body, read as
//! it streams and cut into messages by `aws-smithy-eventstream`'s `MessageFrameDecoder`. The
//! first message should be `initial-response` (a stream that starts with an event instead is
//! read, and flagged); each later `SubscribeToShardEvent` carries a JSON
//! payload (`Records`, `ContinuationSequenceNumber`, `MillisBehindLatest`, `ChildShards`); an
//! `exception` message is an error. The caller renews a subscription that ends (AWS's last five
//! minutes) from its last `ContinuationSequenceNumber`.

use std::borrow::Cow;

use anyhow::{anyhow, bail, Result};
use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use aws_smithy_types::event_stream::Message;
use bytes::BytesMut;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::client::Kinesis;

/// The event stream's content type.
const EVENTSTREAM_CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";
/// Bytes of undecoded event stream buffered at most (a message is at most 16 MiB).
const FRAME_BUFFER_BYTES_MAX: usize = 24 << 20;
/// Bytes of an error answer's body read at most, for its message.
const ERROR_BODY_BYTES_MAX: usize = 4096;

/// One SubscribeToShardEvent's members the workload reads (absent or `null` lists are empty:
/// kinesis-mock sends `"ChildShards": null`).
#[derive(Deserialize)]
pub struct ShardEvent<'a> {
    #[serde(rename = "Records", default, borrow)]
    pub records: Option<Vec<EventRecord<'a>>>,
    #[serde(rename = "ContinuationSequenceNumber")]
    pub continuation: Option<String>,
    #[serde(rename = "ChildShards", default)]
    pub child_shards: Option<Vec<Value>>,
}

#[derive(Deserialize)]
pub struct EventRecord<'a> {
    #[serde(rename = "Data", borrow)]
    pub data: Cow<'a, str>,
}

/// What reading a subscription gave.
pub enum Next {
    /// A `SubscribeToShardEvent`'s payload (JSON; parse with [`ShardEvent`]).
    Event(bytes::Bytes),
    /// The stream ended normally (its lifetime is over): renew it.
    Ended,
    /// Nothing arrived before the deadline.
    Idle,
}

/// An open subscription: the streaming body and the bytes not yet decoded.
pub struct Subscription {
    body: Incoming,
    buf: BytesMut,
    decoder: MessageFrameDecoder,
    ended: bool,
    /// An event read while looking for `initial-response`, not yet handed out.
    pending: Option<Message>,
    /// Whether the stream started with `initial-response` (AWS's and Levee's do; a peer that
    /// starts with an event is still measured, and the run notes it).
    pub had_initial_response: bool,
}

fn header<'a>(m: &'a Message, name: &str) -> &'a str {
    m.headers()
        .iter()
        .find(|h| h.name().as_str() == name)
        .and_then(|h| h.value().as_string().ok())
        .map(|s| s.as_str())
        .unwrap_or("")
}

/// The starting position after `continuation`, or LATEST without one.
pub fn position_after(continuation: Option<&str>) -> Value {
    match continuation {
        Some(seq) => json!({"Type": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": seq}),
        None => json!({"Type": "LATEST"}),
    }
}

impl Subscription {
    /// Subscribes `consumer_arn` to `shard` from `position` and reads up to the
    /// `initial-response` message (bounded by `deadline`).
    pub async fn open(
        k: &Kinesis,
        consumer_arn: &str,
        shard: &str,
        position: Value,
        deadline: Instant,
    ) -> Result<Self> {
        let resp = k
            .call_streaming(
                "SubscribeToShard",
                &json!({"ConsumerARN": consumer_arn, "ShardId": shard, "StartingPosition": position}),
            )
            .await?;
        let status = resp.status();
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let mut body = resp.into_body();
        if !status.is_success() || !content_type.starts_with(EVENTSTREAM_CONTENT_TYPE) {
            let mut head = Vec::new();
            while head.len() < ERROR_BODY_BYTES_MAX {
                match tokio::time::timeout_at(deadline, body.frame()).await {
                    Ok(Some(Ok(f))) => {
                        if let Ok(d) = f.into_data() {
                            head.extend_from_slice(&d);
                        }
                    }
                    _ => break,
                }
            }
            head.truncate(ERROR_BODY_BYTES_MAX.min(200));
            bail!(
                "SubscribeToShard: HTTP {} ({content_type:?}): {}",
                status.as_u16(),
                String::from_utf8_lossy(&head)
            );
        }
        let mut sub = Subscription {
            body,
            buf: BytesMut::new(),
            decoder: MessageFrameDecoder::new(),
            ended: false,
            pending: None,
            had_initial_response: false,
        };
        match sub.message(deadline).await? {
            Some(m) if header(&m, ":event-type") == "initial-response" => {
                sub.had_initial_response = true;
                Ok(sub)
            }
            Some(m) if header(&m, ":event-type") == "SubscribeToShardEvent" => {
                sub.pending = Some(m);
                Ok(sub)
            }
            Some(m) => bail!(
                "SubscribeToShard: first message is {:?}/{:?}, not initial-response",
                header(&m, ":message-type"),
                header(&m, ":event-type")
            ),
            None => bail!("SubscribeToShard: no initial-response"),
        }
    }

    /// The next complete message, `None` if the stream ended or the deadline passed first; an
    /// `exception` message is an error.
    async fn message(&mut self, deadline: Instant) -> Result<Option<Message>> {
        loop {
            if let DecodedFrame::Complete(m) = self
                .decoder
                .decode_frame(&mut self.buf)
                .map_err(|e| anyhow!("SubscribeToShard: bad event-stream frame: {e}"))?
            {
                if header(&m, ":message-type") == "exception" {
                    bail!(
                        "SubscribeToShard in-stream {}: {}",
                        header(&m, ":exception-type"),
                        String::from_utf8_lossy(m.payload())
                    );
                }
                return Ok(Some(m));
            }
            if self.ended {
                return Ok(None);
            }
            // `frame()` is cancel-safe: a timeout loses no bytes.
            match tokio::time::timeout_at(deadline, self.body.frame()).await {
                Err(_) => return Ok(None),
                Ok(None) => self.ended = true,
                Ok(Some(Err(e))) => bail!("SubscribeToShard body: {e}"),
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        if self.buf.len() + data.len() > FRAME_BUFFER_BYTES_MAX {
                            bail!("SubscribeToShard: more than {FRAME_BUFFER_BYTES_MAX} bytes without a complete message");
                        }
                        self.buf.extend_from_slice(&data);
                    }
                }
            }
        }
    }

    /// Waits until `deadline` for the next event.
    pub async fn next(&mut self, deadline: Instant) -> Result<Next> {
        if let Some(m) = self.pending.take() {
            return Ok(Next::Event(m.payload().clone()));
        }
        loop {
            match self.message(deadline).await? {
                Some(m) if header(&m, ":event-type") == "SubscribeToShardEvent" => {
                    return Ok(Next::Event(m.payload().clone()));
                }
                Some(_) => continue, // an event type this client does not read
                None if self.ended => return Ok(Next::Ended),
                None => return Ok(Next::Idle),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_parse_with_null_or_absent_lists() {
        let e: ShardEvent<'_> = serde_json::from_str(
            r#"{"Records":[{"Data":"QUJD","SequenceNumber":"1"}],"ContinuationSequenceNumber":"1","MillisBehindLatest":0,"ChildShards":null}"#,
        )
        .unwrap();
        assert_eq!(e.records.unwrap()[0].data, "QUJD");
        assert_eq!(e.continuation.as_deref(), Some("1"));
        assert!(e.child_shards.is_none());
        let end: ShardEvent<'_> =
            serde_json::from_str(r#"{"ChildShards":[{"ShardId":"s"}],"MillisBehindLatest":0}"#)
                .unwrap();
        assert!(end.records.is_none() && end.continuation.is_none());
        assert_eq!(end.child_shards.map(|c| c.len()), Some(1));
    }

    #[test]
    fn positions() {
        assert_eq!(position_after(None), json!({"Type": "LATEST"}));
        assert_eq!(
            position_after(Some("49")),
            json!({"Type": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": "49"})
        );
    }
}
