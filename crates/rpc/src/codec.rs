//! The storage protocol's messages and their binary encoding. Pure: no I/O.
//!
//! Every message starts with [`FORMAT_VERSION`]; integers are little-endian and fixed-width,
//! byte strings carry a `u32` length. Decoding works on a [`Bytes`] body and hands out record
//! keys and data as slices of it, so a record is not copied between the socket and the storage
//! call. Nothing from the network is trusted: every length is checked against what remains, a
//! request holds at most [`RECORDS_PER_MESSAGE_MAX`] records, and trailing bytes are an error.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use levee_frontend::backend::{Appended, ReadFrom, ReadOut, StoredRecord, Tip};
use levee_protocol::{ApiError, ErrorKind};

/// The first byte of every message; a peer speaking another version is refused.
pub const FORMAT_VERSION: u8 = 1;
/// Records in one append request or read response (PutRecords takes 500; a read returns at
/// most 10,000).
pub const RECORDS_PER_MESSAGE_MAX: u32 = 10_000;

/// Why a message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("message ends early")]
    Truncated,
    #[error("unknown message format version {0}")]
    Version(u8),
    #[error("invalid value for {0}")]
    Invalid(&'static str),
    #[error("{0} trailing bytes")]
    Trailing(usize),
}

/// Which shard a request is for, as the caller's map says: the storage node checks both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardRef {
    pub uid: u64,
    pub epoch: u64,
}

/// A request to a storage node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Append {
        shard: ShardRef,
        records: Vec<(Bytes, Bytes)>,
    },
    Read {
        shard: ShardRef,
        from: ReadFrom,
        max_records: u32,
        max_bytes: u64,
    },
    Tip {
        shard: ShardRef,
    },
    /// Answer once the shard's tip is past `after_next_seq_ix`, or after `wait_ms` (long poll;
    /// how a remote SubscribeToShard learns of appends without polling on a timer).
    Wait {
        shard: ShardRef,
        after_next_seq_ix: u64,
        wait_ms: u32,
    },
}

impl Request {
    /// The URL path it is sent to (one per operation, for per-operation metrics on both sides).
    pub fn path(&self) -> &'static str {
        match self {
            Request::Append { .. } => "/storage/v1/append",
            Request::Read { .. } => "/storage/v1/read",
            Request::Tip { .. } => "/storage/v1/tip",
            Request::Wait { .. } => "/storage/v1/wait",
        }
    }

    pub fn op(&self) -> &'static str {
        match self {
            Request::Append { .. } => "append",
            Request::Read { .. } => "read",
            Request::Tip { .. } => "tip",
            Request::Wait { .. } => "wait",
        }
    }
}

/// Why a storage node refused a request as stale (R4): the caller's map is behind or wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaleReason {
    /// This node does not own the shard (never did, or it moved).
    NotOwner = 1,
    /// The request's epoch differs from the shard's current one.
    Epoch = 2,
    /// A write to a shard closed by a reshard.
    Closed = 3,
}

impl StaleReason {
    fn from_u8(b: u8) -> Option<StaleReason> {
        match b {
            1 => Some(StaleReason::NotOwner),
            2 => Some(StaleReason::Epoch),
            3 => Some(StaleReason::Closed),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StaleReason::NotOwner => "not_owner",
            StaleReason::Epoch => "epoch",
            StaleReason::Closed => "closed",
        }
    }
}

/// The payload of a successful answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    Appended(Appended),
    Read(ReadOut),
    Tip(Tip),
}

/// A storage node's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Ok(Payload),
    /// A Kinesis error for the client, passed through unchanged.
    Api(ApiError),
    /// Route again with a newer map; `map_version` is the node's, a hint of what to wait for.
    Stale {
        reason: StaleReason,
        map_version: u64,
    },
}

const TAG_OK: u8 = 0;
/// The tag of an answer carrying a Kinesis error (shared by the storage and control protocols).
pub(crate) const TAG_API: u8 = 1;
const TAG_STALE: u8 = 2;
const PAYLOAD_APPENDED: u8 = 1;
const PAYLOAD_READ: u8 = 2;
const PAYLOAD_TIP: u8 = 3;
const OP_APPEND: u8 = 1;
const OP_READ: u8 = 2;
const OP_TIP: u8 = 3;
const OP_WAIT: u8 = 4;

/// A Kinesis error: its type name and message.
pub(crate) fn put_api(out: &mut BytesMut, e: &ApiError) {
    put_bytes(out, e.kind.type_name().as_bytes());
    put_bytes(out, e.message.as_bytes());
}

/// Reads what [`put_api`] wrote; an unknown type name is refused.
pub(crate) fn read_api(r: &mut Reader) -> Result<ApiError, CodecError> {
    let name = r.string("error type")?;
    let kind = ErrorKind::ALL
        .into_iter()
        .find(|k| k.type_name() == name)
        .ok_or(CodecError::Invalid("error type"))?;
    Ok(ApiError::new(kind, r.string("error message")?))
}

pub(crate) fn put_bytes(out: &mut BytesMut, b: &[u8]) {
    out.put_u32_le(b.len() as u32);
    out.put_slice(b);
}

fn put_shard(out: &mut BytesMut, s: ShardRef) {
    out.put_u64_le(s.uid);
    out.put_u64_le(s.epoch);
}

pub fn encode_request(req: &Request) -> Bytes {
    let mut out = BytesMut::with_capacity(64);
    out.put_u8(FORMAT_VERSION);
    match req {
        Request::Append { shard, records } => {
            let size: usize = records.iter().map(|(k, d)| 8 + k.len() + d.len()).sum();
            out.reserve(size + 24);
            out.put_u8(OP_APPEND);
            put_shard(&mut out, *shard);
            out.put_u32_le(records.len() as u32);
            for (k, d) in records {
                put_bytes(&mut out, k);
                put_bytes(&mut out, d);
            }
        }
        Request::Read {
            shard,
            from,
            max_records,
            max_bytes,
        } => {
            out.put_u8(OP_READ);
            put_shard(&mut out, *shard);
            match from {
                ReadFrom::SeqIx(ix) => {
                    out.put_u8(0);
                    out.put_u64_le(*ix);
                }
                ReadFrom::Timestamp(ms) => {
                    out.put_u8(1);
                    out.put_u64_le(*ms);
                }
            }
            out.put_u32_le(*max_records);
            out.put_u64_le(*max_bytes);
        }
        Request::Tip { shard } => {
            out.put_u8(OP_TIP);
            put_shard(&mut out, *shard);
        }
        Request::Wait {
            shard,
            after_next_seq_ix,
            wait_ms,
        } => {
            out.put_u8(OP_WAIT);
            put_shard(&mut out, *shard);
            out.put_u64_le(*after_next_seq_ix);
            out.put_u32_le(*wait_ms);
        }
    }
    out.freeze()
}

pub fn encode_response(resp: &Response) -> Bytes {
    let mut out = BytesMut::with_capacity(64);
    out.put_u8(FORMAT_VERSION);
    match resp {
        Response::Ok(payload) => {
            out.put_u8(TAG_OK);
            match payload {
                Payload::Appended(a) => {
                    out.put_u8(PAYLOAD_APPENDED);
                    out.put_u64_le(a.first_seq_ix);
                    out.put_u64_le(a.arrival_ms);
                    out.put_u64_le(a.shard_created_ms);
                    out.put_u8(a.encrypted as u8);
                }
                Payload::Read(r) => {
                    let size: usize = r
                        .records
                        .iter()
                        .map(|x| 25 + x.partition_key.len() + x.data.len())
                        .sum();
                    out.reserve(size + 48);
                    out.put_u8(PAYLOAD_READ);
                    out.put_u32_le(r.records.len() as u32);
                    for x in &r.records {
                        out.put_u64_le(x.seq_ix);
                        out.put_u64_le(x.arrival_ms);
                        put_bytes(&mut out, &x.partition_key);
                        put_bytes(&mut out, &x.data);
                        out.put_u8(x.encrypted as u8);
                    }
                    out.put_u64_le(r.next_seq_ix);
                    out.put_u8(r.shard_end as u8);
                    out.put_u64_le(r.tip_arrival_ms);
                    out.put_u64_le(r.tip_next_seq_ix);
                    out.put_u64_le(r.shard_created_ms);
                }
                Payload::Tip(t) => {
                    out.put_u8(PAYLOAD_TIP);
                    out.put_u64_le(t.next_seq_ix);
                    out.put_u64_le(t.shard_created_ms);
                }
            }
        }
        Response::Api(e) => {
            out.put_u8(TAG_API);
            put_api(&mut out, e);
        }
        Response::Stale {
            reason,
            map_version,
        } => {
            out.put_u8(TAG_STALE);
            out.put_u8(*reason as u8);
            out.put_u64_le(*map_version);
        }
    }
    out.freeze()
}

/// A checked reader over a message body.
pub(crate) struct Reader {
    buf: Bytes,
}

impl Reader {
    pub(crate) fn need(&self, n: usize) -> Result<(), CodecError> {
        if self.buf.remaining() < n {
            Err(CodecError::Truncated)
        } else {
            Ok(())
        }
    }
    pub(crate) fn u8(&mut self) -> Result<u8, CodecError> {
        self.need(1)?;
        Ok(self.buf.get_u8())
    }
    pub(crate) fn u32(&mut self) -> Result<u32, CodecError> {
        self.need(4)?;
        Ok(self.buf.get_u32_le())
    }
    pub(crate) fn u64(&mut self) -> Result<u64, CodecError> {
        self.need(8)?;
        Ok(self.buf.get_u64_le())
    }
    pub(crate) fn bool(&mut self, what: &'static str) -> Result<bool, CodecError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(CodecError::Invalid(what)),
        }
    }
    pub(crate) fn bytes(&mut self) -> Result<Bytes, CodecError> {
        let n = self.u32()? as usize;
        self.need(n)?;
        Ok(self.buf.split_to(n))
    }
    pub(crate) fn string(&mut self, what: &'static str) -> Result<String, CodecError> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| CodecError::Invalid(what))
    }
    fn shard(&mut self) -> Result<ShardRef, CodecError> {
        Ok(ShardRef {
            uid: self.u64()?,
            epoch: self.u64()?,
        })
    }
    fn count(&mut self, what: &'static str) -> Result<u32, CodecError> {
        let n = self.u32()?;
        if n > RECORDS_PER_MESSAGE_MAX {
            return Err(CodecError::Invalid(what));
        }
        Ok(n)
    }
    pub(crate) fn start(buf: Bytes) -> Result<Reader, CodecError> {
        let mut r = Reader { buf };
        match r.u8()? {
            FORMAT_VERSION => Ok(r),
            v => Err(CodecError::Version(v)),
        }
    }
    /// Whether every byte was read (an optional trailing field is absent).
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.remaining() == 0
    }
    pub(crate) fn end(self) -> Result<(), CodecError> {
        match self.buf.remaining() {
            0 => Ok(()),
            n => Err(CodecError::Trailing(n)),
        }
    }
}

pub fn decode_request(body: Bytes) -> Result<Request, CodecError> {
    let mut r = Reader::start(body)?;
    let req = match r.u8()? {
        OP_APPEND => {
            let shard = r.shard()?;
            let n = r.count("record count")?;
            // Each record takes at least 8 bytes: a length cannot reserve more than the body.
            r.need(n as usize * 8)?;
            let mut records = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let k = r.bytes()?;
                let d = r.bytes()?;
                records.push((k, d));
            }
            Request::Append { shard, records }
        }
        OP_READ => {
            let shard = r.shard()?;
            let from = match r.u8()? {
                0 => ReadFrom::SeqIx(r.u64()?),
                1 => ReadFrom::Timestamp(r.u64()?),
                _ => return Err(CodecError::Invalid("read position")),
            };
            Request::Read {
                shard,
                from,
                max_records: r.u32()?,
                max_bytes: r.u64()?,
            }
        }
        OP_TIP => Request::Tip { shard: r.shard()? },
        OP_WAIT => Request::Wait {
            shard: r.shard()?,
            after_next_seq_ix: r.u64()?,
            wait_ms: r.u32()?,
        },
        _ => return Err(CodecError::Invalid("operation")),
    };
    r.end()?;
    Ok(req)
}

pub fn decode_response(body: Bytes) -> Result<Response, CodecError> {
    let mut r = Reader::start(body)?;
    let resp = match r.u8()? {
        TAG_OK => Response::Ok(match r.u8()? {
            PAYLOAD_APPENDED => Payload::Appended(Appended {
                first_seq_ix: r.u64()?,
                arrival_ms: r.u64()?,
                shard_created_ms: r.u64()?,
                encrypted: r.bool("encrypted")?,
            }),
            PAYLOAD_READ => {
                let n = r.count("record count")?;
                r.need(n as usize * 25)?;
                let mut records = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    records.push(StoredRecord {
                        seq_ix: r.u64()?,
                        arrival_ms: r.u64()?,
                        partition_key: r.bytes()?,
                        data: r.bytes()?,
                        encrypted: r.bool("encrypted")?,
                    });
                }
                Payload::Read(ReadOut {
                    records,
                    next_seq_ix: r.u64()?,
                    shard_end: r.bool("shard end")?,
                    tip_arrival_ms: r.u64()?,
                    tip_next_seq_ix: r.u64()?,
                    shard_created_ms: r.u64()?,
                })
            }
            PAYLOAD_TIP => Payload::Tip(Tip {
                next_seq_ix: r.u64()?,
                shard_created_ms: r.u64()?,
            }),
            _ => return Err(CodecError::Invalid("payload")),
        }),
        TAG_API => Response::Api(read_api(&mut r)?),
        TAG_STALE => Response::Stale {
            reason: StaleReason::from_u8(r.u8()?).ok_or(CodecError::Invalid("stale reason"))?,
            map_version: r.u64()?,
        },
        _ => return Err(CodecError::Invalid("response tag")),
    };
    r.end()?;
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bytes() -> impl Strategy<Value = Bytes> {
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Bytes::from)
    }

    fn shard() -> impl Strategy<Value = ShardRef> {
        (any::<u64>(), any::<u64>()).prop_map(|(uid, epoch)| ShardRef { uid, epoch })
    }

    fn request() -> impl Strategy<Value = Request> {
        prop_oneof![
            (
                shard(),
                proptest::collection::vec((bytes(), bytes()), 0..20)
            )
                .prop_map(|(shard, records)| Request::Append { shard, records }),
            (
                shard(),
                any::<bool>(),
                any::<u64>(),
                any::<u32>(),
                any::<u64>()
            )
                .prop_map(|(shard, ts, at, max_records, max_bytes)| Request::Read {
                    shard,
                    from: if ts {
                        ReadFrom::Timestamp(at)
                    } else {
                        ReadFrom::SeqIx(at)
                    },
                    max_records,
                    max_bytes,
                }),
            shard().prop_map(|shard| Request::Tip { shard }),
            (shard(), any::<u64>(), any::<u32>()).prop_map(|(shard, a, w)| Request::Wait {
                shard,
                after_next_seq_ix: a,
                wait_ms: w,
            }),
        ]
    }

    fn record() -> impl Strategy<Value = StoredRecord> {
        (any::<u64>(), any::<u64>(), bytes(), bytes(), any::<bool>()).prop_map(
            |(seq_ix, arrival_ms, partition_key, data, encrypted)| StoredRecord {
                seq_ix,
                arrival_ms,
                partition_key,
                data,
                encrypted,
            },
        )
    }

    fn response() -> impl Strategy<Value = Response> {
        prop_oneof![
            (any::<u64>(), any::<u64>(), any::<u64>(), any::<bool>()).prop_map(|(a, b, c, e)| {
                Response::Ok(Payload::Appended(Appended {
                    first_seq_ix: a,
                    arrival_ms: b,
                    shard_created_ms: c,
                    encrypted: e,
                }))
            }),
            (
                proptest::collection::vec(record(), 0..10),
                any::<u64>(),
                any::<bool>(),
                any::<(u64, u64, u64)>()
            )
                .prop_map(|(records, next, end, (ta, tn, sc))| {
                    Response::Ok(Payload::Read(ReadOut {
                        records,
                        next_seq_ix: next,
                        shard_end: end,
                        tip_arrival_ms: ta,
                        tip_next_seq_ix: tn,
                        shard_created_ms: sc,
                    }))
                }),
            (any::<u64>(), any::<u64>()).prop_map(|(n, c)| Response::Ok(Payload::Tip(Tip {
                next_seq_ix: n,
                shard_created_ms: c
            }))),
            (0..ErrorKind::ALL.len(), ".{0,40}")
                .prop_map(|(i, m)| Response::Api(ApiError::new(ErrorKind::ALL[i], m))),
            (1u8..=3, any::<u64>()).prop_map(|(r, v)| Response::Stale {
                reason: StaleReason::from_u8(r).unwrap(),
                map_version: v
            }),
        ]
    }

    proptest! {
        #[test]
        fn requests_round_trip(req in request()) {
            prop_assert_eq!(decode_request(encode_request(&req)), Ok(req));
        }

        #[test]
        fn responses_round_trip(resp in response()) {
            prop_assert_eq!(decode_response(encode_response(&resp)), Ok(resp));
        }

        /// Any prefix of a valid message is refused, never misread.
        #[test]
        fn truncations_are_refused(req in request(), resp in response(), cut in any::<prop::sample::Index>()) {
            let r = encode_request(&req);
            let n = cut.index(r.len());
            prop_assert!(decode_request(r.slice(..n)).is_err());
            let s = encode_response(&resp);
            let n = cut.index(s.len());
            prop_assert!(decode_response(s.slice(..n)).is_err());
        }

        /// Arbitrary bytes never panic and never allocate beyond what the body can hold.
        #[test]
        fn garbage_never_panics(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_request(Bytes::from(body.clone()));
            let _ = decode_response(Bytes::from(body));
        }
    }

    #[test]
    fn other_versions_and_trailing_bytes_are_refused() {
        let req = Request::Tip {
            shard: ShardRef { uid: 1, epoch: 2 },
        };
        let mut b = encode_request(&req).to_vec();
        b[0] = 9;
        assert_eq!(
            decode_request(Bytes::from(b.clone())),
            Err(CodecError::Version(9))
        );
        b[0] = FORMAT_VERSION;
        b.push(0);
        assert_eq!(decode_request(Bytes::from(b)), Err(CodecError::Trailing(1)));
    }

    #[test]
    fn record_counts_past_the_cap_are_refused() {
        let mut b = BytesMut::new();
        b.put_u8(FORMAT_VERSION);
        b.put_u8(OP_APPEND);
        b.put_u64_le(1);
        b.put_u64_le(1);
        b.put_u32_le(RECORDS_PER_MESSAGE_MAX + 1);
        assert_eq!(
            decode_request(b.freeze()),
            Err(CodecError::Invalid("record count"))
        );
    }
}
