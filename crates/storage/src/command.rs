//! The commands the storage engine writes into its group log, and their binary encoding. A command
//! is the unit of replay: applying the same sequence of commands to the same checkpoint always
//! yields the same shard store (sequence numbers and arrival times are decided before logging).
//!
//! Encoding (little-endian), one command per log entry, first byte a tag:
//!
//! | tag | command | fields |
//! |---|---|---|
//! | 1 | PutStream | stream u64, retention_ms u64 |
//! | 2 | DropStream | stream u64 |
//! | 3 | CreateShard | shard u64, stream u64, shard_index u32, created_ms u64 |
//! | 4 | Append | shard u64, first_seq_ix u64, arrival_ms u64, count u32, then `count` records of: partition-key length u16, data length u32, partition key, data |
//! | 5 | CloseShard | shard u64 |

use crate::codec::{PutLe, Reader, ShortRead};
use crate::{ShardUid, StreamUid};

const TAG_PUT_STREAM: u8 = 1;
const TAG_DROP_STREAM: u8 = 2;
const TAG_CREATE_SHARD: u8 = 3;
const TAG_APPEND: u8 = 4;
const TAG_CLOSE_SHARD: u8 = 5;

/// Fixed bytes of an Append command before its records.
pub(crate) const APPEND_HEADER_BYTES: usize = 1 + 8 + 8 + 8 + 4;
/// Per-record overhead of an Append command.
pub(crate) const APPEND_RECORD_OVERHEAD_BYTES: usize = 2 + 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command<'a> {
    PutStream {
        stream: StreamUid,
        retention_ms: u64,
    },
    DropStream {
        stream: StreamUid,
    },
    CreateShard {
        shard: ShardUid,
        stream: StreamUid,
        shard_index: u32,
        created_ms: u64,
    },
    Append(Append<'a>),
    CloseShard {
        shard: ShardUid,
    },
}

/// An encoded Append command: a view of its header fields plus its record bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Append<'a> {
    pub shard: ShardUid,
    pub first_seq_ix: u64,
    pub arrival_ms: u64,
    pub count: u32,
    /// The records, still encoded.
    pub records: &'a [u8],
}

impl Append<'_> {
    /// Iterates (partition key, data) pairs; an error if the encoding is short.
    pub fn iter(&self) -> impl Iterator<Item = Result<(&[u8], &[u8]), ShortRead>> + '_ {
        let mut r = Reader::new(self.records);
        (0..self.count).map(move |_| {
            let pk_len = r.u16()? as usize;
            let data_len = r.u32()? as usize;
            Ok((r.bytes(pk_len)?, r.bytes(data_len)?))
        })
    }
}

/// Encodes an Append command. `first_seq_ix` and `arrival_ms` are patched in later under the
/// shard's lock with [`patch_append`], so that the record bytes are copied outside it.
pub(crate) fn encode_append<'r>(
    shard: ShardUid,
    records: impl ExactSizeIterator<Item = (&'r [u8], &'r [u8])> + Clone,
) -> Vec<u8> {
    let count = records.len();
    let bytes: usize = records
        .clone()
        .map(|(k, d)| APPEND_RECORD_OVERHEAD_BYTES + k.len() + d.len())
        .sum();
    let mut v = Vec::with_capacity(APPEND_HEADER_BYTES + bytes);
    v.put_u8(TAG_APPEND);
    v.put_u64(shard.0);
    v.put_u64(0);
    v.put_u64(0);
    v.put_u32(count as u32);
    for (k, d) in records {
        v.put_u16(k.len() as u16);
        v.put_u32(d.len() as u32);
        v.extend_from_slice(k);
        v.extend_from_slice(d);
    }
    v
}

/// Sets the sequence index and arrival time of an encoded Append.
pub(crate) fn patch_append(encoded: &mut [u8], first_seq_ix: u64, arrival_ms: u64) {
    encoded[9..17].copy_from_slice(&first_seq_ix.to_le_bytes());
    encoded[17..25].copy_from_slice(&arrival_ms.to_le_bytes());
}

impl Command<'_> {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(32);
        match self {
            Command::PutStream {
                stream,
                retention_ms,
            } => {
                v.put_u8(TAG_PUT_STREAM);
                v.put_u64(stream.0);
                v.put_u64(*retention_ms);
            }
            Command::DropStream { stream } => {
                v.put_u8(TAG_DROP_STREAM);
                v.put_u64(stream.0);
            }
            Command::CreateShard {
                shard,
                stream,
                shard_index,
                created_ms,
            } => {
                v.put_u8(TAG_CREATE_SHARD);
                v.put_u64(shard.0);
                v.put_u64(stream.0);
                v.put_u32(*shard_index);
                v.put_u64(*created_ms);
            }
            Command::Append(a) => {
                v.put_u8(TAG_APPEND);
                v.put_u64(a.shard.0);
                v.put_u64(a.first_seq_ix);
                v.put_u64(a.arrival_ms);
                v.put_u32(a.count);
                v.extend_from_slice(a.records);
            }
            Command::CloseShard { shard } => {
                v.put_u8(TAG_CLOSE_SHARD);
                v.put_u64(shard.0);
            }
        }
        v
    }
}

/// Decodes a command; `None` if the bytes are not a whole, known command.
pub(crate) fn decode(buf: &[u8]) -> Option<Command<'_>> {
    let mut r = Reader::new(buf);
    let cmd = match r.u8().ok()? {
        TAG_PUT_STREAM => Command::PutStream {
            stream: StreamUid(r.u64().ok()?),
            retention_ms: r.u64().ok()?,
        },
        TAG_DROP_STREAM => Command::DropStream {
            stream: StreamUid(r.u64().ok()?),
        },
        TAG_CREATE_SHARD => Command::CreateShard {
            shard: ShardUid(r.u64().ok()?),
            stream: StreamUid(r.u64().ok()?),
            shard_index: r.u32().ok()?,
            created_ms: r.u64().ok()?,
        },
        TAG_APPEND => {
            let a = Append {
                shard: ShardUid(r.u64().ok()?),
                first_seq_ix: r.u64().ok()?,
                arrival_ms: r.u64().ok()?,
                count: r.u32().ok()?,
                records: r.bytes(r.remaining()).ok()?,
            };
            if a.iter().any(|x| x.is_err()) {
                return None;
            }
            Command::Append(a)
        }
        TAG_CLOSE_SHARD => Command::CloseShard {
            shard: ShardUid(r.u64().ok()?),
        },
        _ => return None,
    };
    (r.remaining() == 0).then_some(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn append_round_trips(
            recs in proptest::collection::vec((proptest::collection::vec(any::<u8>(), 1..20), proptest::collection::vec(any::<u8>(), 0..100)), 0..20),
            seq in any::<u64>(), at in any::<u64>(), shard in any::<u64>())
        {
            let mut enc = encode_append(ShardUid(shard), recs.iter().map(|(k, d)| (k.as_slice(), d.as_slice())));
            patch_append(&mut enc, seq, at);
            let Some(Command::Append(a)) = decode(&enc) else { panic!("did not decode") };
            prop_assert_eq!(a.shard, ShardUid(shard));
            prop_assert_eq!(a.first_seq_ix, seq);
            prop_assert_eq!(a.arrival_ms, at);
            let got: Vec<(Vec<u8>, Vec<u8>)> = a.iter().map(|r| { let (k, d) = r.unwrap(); (k.to_vec(), d.to_vec()) }).collect();
            prop_assert_eq!(got, recs);
            prop_assert_eq!(Command::Append(a).encode(), enc);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }
    }

    #[test]
    fn control_commands_round_trip() {
        let cmds = [
            Command::PutStream {
                stream: StreamUid(3),
                retention_ms: 86_400_000,
            },
            Command::DropStream {
                stream: StreamUid(4),
            },
            Command::CreateShard {
                shard: ShardUid(5),
                stream: StreamUid(3),
                shard_index: 7,
                created_ms: 99,
            },
            Command::CloseShard { shard: ShardUid(5) },
        ];
        for c in cmds {
            assert_eq!(decode(&c.encode()), Some(c.clone()));
            let enc = c.encode();
            assert_eq!(
                decode(&enc[..enc.len() - 1]),
                None,
                "a truncated command must not decode"
            );
        }
    }
}
