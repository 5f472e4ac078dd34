//! The binary encoding of shard maps and deltas: what the control plane serves (pre-serialised
//! once per version), what crosses the wire between roles, and what a front-end persists.
//!
//! A *frame* is self-contained and checksummed; a feed is a sequence of frames back to back
//! (one snapshot, or the deltas after a version in order). Decoding checks the frame's CRC
//! first, then the structure (every length against the bytes that are really there, so a bad
//! count cannot make it allocate), then rebuilds the map or delta and checks the map's own
//! content checksum. Any damage is an error; a partial map is never returned (F3).
//!
//! Frame layout (integers little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `"LVMF"` |
//! | 4 | 1 | format version ([`FORMAT_VERSION`]) |
//! | 5 | 1 | kind: 1 snapshot, 2 delta |
//! | 6 | 2 | reserved, 0 |
//! | 8 | 4 | body length n |
//! | 12 | n | body |
//! | 12 + n | 4 | CRC32C of bytes `0..12 + n` |
//!
//! Snapshot body: version u64, map checksum u32, stream count u32, streams. Delta body: from
//! u64, to u64, resulting map checksum u32, upsert count u32, streams, removal count u32, names.
//! A stream: name (u16 length + UTF-8), uid u64, state u8, shard count u32, shards. A shard:
//! id u32, uid u64, hash range start and end u128, flags u8 (1 open, 2 has parent, 4 has
//! adjacent parent), group u64, node u64, epoch u64, parent u32, adjacent parent u32. After
//! the shards, the stream's resource policies: a u8 (1 if the stream has one) and its text,
//! then a consumer count u32 and for each its name (u16 length), ARN and policy text. Texts
//! are a u32 length + UTF-8; policies are parsed again on decode (a text that no longer
//! parses denies everything, as the catalog's own reading does). A snapshot may end with the
//! node table and a delta with a changed node table (count u32; per node: id u64, address and
//! cell as u16 length + UTF-8, the role as a u8 — 0 front-end, 1 storage, 2 control — and the
//! admin address as u16 length + UTF-8, empty when unknown); a map without nodes omits it.
//!
//! Format 3 added control nodes and admin addresses to the node table; frames of format 2
//! (role 0 or 1, no admin address) are still read, so a node boots from generations an older
//! build persisted and follows an older control plane.
//!
//! This module does no I/O.

use std::sync::Arc;

use levee_policy::ResourcePolicy;

use crate::{
    ConsumerFact, ConsumerPolicy, ConsumerState, GroupId, HashRange, MapDelta, MapError, NodeEntry,
    NodeId, NodeRole, NodeTable, Policies, ShardId, ShardMap, ShardRoute, StreamFacts, StreamRoute,
    StreamState, WrappedKey,
};

const MAGIC: [u8; 4] = *b"LVMF";
/// The frame format this code writes.
pub const FORMAT_VERSION: u8 = 3;
/// The oldest frame format this code still reads (node entries without role 2 or an admin
/// address).
pub const FORMAT_VERSION_READ_MIN: u8 = 2;
const KIND_SNAPSHOT: u8 = 1;
const KIND_DELTA: u8 = 2;
const HEADER_BYTES: usize = 12;
const CRC_BYTES: usize = 4;
/// The largest frame body accepted (a map of about two million shards).
pub const FRAME_BODY_BYTES_MAX: usize = 256 << 20;
/// Encoded bytes of a shard (fixed size).
const SHARD_BYTES: usize = 4 + 8 + 16 + 16 + 1 + 8 + 8 + 8 + 4 + 4 + 8 + 8;
/// The fewest bytes a stream can take (empty name, no shards).
const STREAM_BYTES_MIN: usize = 2 + 8 + 1 + 4 + 1 + 4 + FACTS_BYTES_MIN;
/// The fewest bytes a stream's facts can take.
const FACTS_BYTES_MIN: usize = 8 + 4 + 1 + 4 + 1 + 4 + 1 + 4 + 4;
/// The fewest bytes a consumer policy can take (empty name, ARN and text).
const CONSUMER_POLICY_BYTES_MIN: usize = 2 + 4 + 4;

const FLAG_OPEN: u8 = 1;
const FLAG_PARENT: u8 = 2;
const FLAG_ADJACENT: u8 = 4;
const FLAG_CLOSED_AT: u8 = 8;

/// Why bytes are not a map or delta.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("map frame truncated at byte {at}")]
    Truncated { at: usize },
    #[error("not a map frame (bad magic)")]
    BadMagic,
    #[error("map frame format {0} is not supported (this build reads {FORMAT_VERSION_READ_MIN} to {FORMAT_VERSION})")]
    BadFormat(u8),
    #[error("unknown map frame kind {0}")]
    BadKind(u8),
    #[error("map frame body of {0} bytes is over the limit")]
    TooLarge(usize),
    #[error("map frame checksum {got:08x} does not match {want:08x}")]
    Crc { want: u32, got: u32 },
    #[error("malformed map frame: {0}")]
    Malformed(String),
    #[error("expected a {want} frame")]
    WrongKind { want: &'static str },
    #[error(transparent)]
    Map(#[from] MapError),
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Snapshot(ShardMap),
    Delta(MapDelta),
}

/// Encodes a full map as one snapshot frame.
pub fn encode_map(map: &ShardMap) -> Vec<u8> {
    let mut body = Vec::with_capacity(16 + map.streams().map(|s| stream_len(s)).sum::<usize>());
    body.extend_from_slice(&map.version().to_le_bytes());
    body.extend_from_slice(&map.checksum().to_le_bytes());
    body.extend_from_slice(&(map.streams().count() as u32).to_le_bytes());
    for s in map.streams() {
        put_stream(&mut body, s);
    }
    // The node table is a tail a map without nodes (the embedded mode) omits.
    if !map.nodes().is_empty() {
        put_nodes(&mut body, map.nodes());
    }
    frame(KIND_SNAPSHOT, &body)
}

/// Encodes a delta as one delta frame.
pub fn encode_delta(delta: &MapDelta) -> Vec<u8> {
    let mut body = Vec::with_capacity(32 + delta.upserts.iter().map(stream_len).sum::<usize>());
    body.extend_from_slice(&delta.from_version.to_le_bytes());
    body.extend_from_slice(&delta.to_version.to_le_bytes());
    body.extend_from_slice(&delta.checksum.to_le_bytes());
    body.extend_from_slice(&(delta.upserts.len() as u32).to_le_bytes());
    for s in &delta.upserts {
        put_stream(&mut body, s);
    }
    body.extend_from_slice(&(delta.removals.len() as u32).to_le_bytes());
    for name in &delta.removals {
        put_name(&mut body, name);
    }
    if let Some(nodes) = &delta.nodes {
        put_nodes(&mut body, nodes);
    }
    frame(KIND_DELTA, &body)
}

/// The node table: count u32, then per node id u64, address and cell (u16 length + UTF-8),
/// the role's code (u8) and the admin address (u16 length + UTF-8).
fn put_nodes(b: &mut Vec<u8>, nodes: &NodeTable) {
    b.extend_from_slice(&(nodes.len() as u32).to_le_bytes());
    for (id, n) in nodes {
        b.extend_from_slice(&id.0.to_le_bytes());
        put_name(b, &n.address);
        put_name(b, &n.cell);
        b.push(n.role.code());
        put_name(b, &n.admin);
    }
}

/// Decodes exactly one snapshot frame (a persisted generation, a snapshot answer).
pub fn decode_map(bytes: &[u8]) -> Result<ShardMap, CodecError> {
    let (f, used) = decode_frame(bytes)?;
    if used != bytes.len() {
        return Err(CodecError::Malformed(format!(
            "{} bytes after the snapshot frame",
            bytes.len() - used
        )));
    }
    match f {
        Frame::Snapshot(m) => Ok(m),
        Frame::Delta(_) => Err(CodecError::WrongKind { want: "snapshot" }),
    }
}

/// Decodes a feed: frames back to back until the bytes end. Any bad frame fails the whole feed.
pub fn decode_frames(mut bytes: &[u8]) -> Result<Vec<Frame>, CodecError> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (f, used) = decode_frame(bytes)?;
        out.push(f);
        bytes = bytes.get(used..).unwrap_or_default();
    }
    Ok(out)
}

/// Decodes the frame at the start of `bytes`; returns it and the bytes it took.
pub fn decode_frame(bytes: &[u8]) -> Result<(Frame, usize), CodecError> {
    let head = bytes
        .get(..HEADER_BYTES)
        .ok_or(CodecError::Truncated { at: bytes.len() })?;
    if head[..4] != MAGIC {
        return Err(CodecError::BadMagic);
    }
    let format = head[4];
    if !(FORMAT_VERSION_READ_MIN..=FORMAT_VERSION).contains(&format) {
        return Err(CodecError::BadFormat(format));
    }
    let kind = head[5];
    let len = u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as usize;
    if len > FRAME_BODY_BYTES_MAX {
        return Err(CodecError::TooLarge(len));
    }
    let end = HEADER_BYTES + len;
    let covered = bytes
        .get(..end)
        .ok_or(CodecError::Truncated { at: bytes.len() })?;
    let stored = bytes
        .get(end..end + CRC_BYTES)
        .ok_or(CodecError::Truncated { at: bytes.len() })?;
    let want = u32::from_le_bytes([stored[0], stored[1], stored[2], stored[3]]);
    let got = crc32c::crc32c(covered);
    if want != got {
        return Err(CodecError::Crc { want, got });
    }
    if head[6] != 0 || head[7] != 0 {
        return Err(CodecError::Malformed("reserved bytes are not zero".into()));
    }
    let mut r = Reader {
        b: &covered[HEADER_BYTES..],
        at: 0,
        format,
    };
    let f = match kind {
        KIND_SNAPSHOT => {
            let version = r.u64()?;
            let checksum = r.u32()?;
            let n = r.count(STREAM_BYTES_MIN)?;
            let mut streams = Vec::with_capacity(n);
            for _ in 0..n {
                streams.push(r.stream()?);
            }
            let nodes = if r.at_end() {
                NodeTable::new()
            } else {
                r.nodes()?
            };
            r.done()?;
            let map = ShardMap::build_with_nodes(version, streams, nodes)?;
            if map.checksum() != checksum {
                return Err(MapError::Checksum {
                    version,
                    want: checksum,
                    got: map.checksum(),
                }
                .into());
            }
            Frame::Snapshot(map)
        }
        KIND_DELTA => {
            let from_version = r.u64()?;
            let to_version = r.u64()?;
            let checksum = r.u32()?;
            let n = r.count(STREAM_BYTES_MIN)?;
            let mut upserts = Vec::with_capacity(n);
            for _ in 0..n {
                upserts.push(r.stream()?);
            }
            let n = r.count(2)?;
            let mut removals = Vec::with_capacity(n);
            for _ in 0..n {
                removals.push(r.name()?);
            }
            let nodes = if r.at_end() { None } else { Some(r.nodes()?) };
            r.done()?;
            Frame::Delta(MapDelta {
                from_version,
                to_version,
                upserts,
                removals,
                nodes,
                checksum,
            })
        }
        k => return Err(CodecError::BadKind(k)),
    };
    Ok((f, end + CRC_BYTES))
}

fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_BYTES + body.len() + CRC_BYTES);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&[FORMAT_VERSION, kind, 0, 0]);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(body);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn stream_len(s: &StreamRoute) -> usize {
    STREAM_BYTES_MIN + s.name.len() + s.shards.len() * SHARD_BYTES
}

fn put_name(b: &mut Vec<u8>, name: &str) {
    // Stream names are at most 128 bytes (Kinesis); longer names are cut, which the map's
    // checksum then refuses on decode rather than guessing.
    let bytes = name.as_bytes();
    let n = bytes.len().min(u16::MAX as usize);
    b.extend_from_slice(&(n as u16).to_le_bytes());
    b.extend_from_slice(&bytes[..n]);
}

fn state_code(s: StreamState) -> u8 {
    match s {
        StreamState::Creating => 0,
        StreamState::Active => 1,
        StreamState::Updating => 2,
        StreamState::Deleting => 3,
    }
}

fn put_stream(b: &mut Vec<u8>, s: &StreamRoute) {
    put_name(b, &s.name);
    b.extend_from_slice(&s.uid.to_le_bytes());
    b.push(state_code(s.state));
    b.extend_from_slice(&(s.shards.len() as u32).to_le_bytes());
    for sh in &s.shards {
        b.extend_from_slice(&sh.shard_id.0.to_le_bytes());
        b.extend_from_slice(&sh.uid.to_le_bytes());
        b.extend_from_slice(&sh.hash_range.start.to_le_bytes());
        b.extend_from_slice(&sh.hash_range.end.to_le_bytes());
        let mut flags = 0;
        if sh.open {
            flags |= FLAG_OPEN;
        }
        if sh.parent.is_some() {
            flags |= FLAG_PARENT;
        }
        if sh.adjacent_parent.is_some() {
            flags |= FLAG_ADJACENT;
        }
        if sh.closed_ms.is_some() {
            flags |= FLAG_CLOSED_AT;
        }
        b.push(flags);
        b.extend_from_slice(&sh.group.0.to_le_bytes());
        b.extend_from_slice(&sh.node.0.to_le_bytes());
        b.extend_from_slice(&sh.epoch.to_le_bytes());
        b.extend_from_slice(&sh.parent.map_or(0, |p| p.0).to_le_bytes());
        b.extend_from_slice(&sh.adjacent_parent.map_or(0, |p| p.0).to_le_bytes());
        b.extend_from_slice(&sh.created_ms.to_le_bytes());
        b.extend_from_slice(&sh.closed_ms.unwrap_or(0).to_le_bytes());
    }
    match &s.policies.stream {
        None => b.push(0),
        Some(p) => {
            b.push(1);
            put_text(b, p.text());
        }
    }
    b.extend_from_slice(&(s.policies.consumers.len() as u32).to_le_bytes());
    for c in &s.policies.consumers {
        put_name(b, &c.name);
        put_text(b, &c.arn);
        put_text(b, c.policy.text());
    }
    s.facts.encode(b);
}

fn put_text(b: &mut Vec<u8>, t: &str) {
    b.extend_from_slice(&(t.len() as u32).to_le_bytes());
    b.extend_from_slice(t.as_bytes());
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
    /// The frame's format version.
    format: u8,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        let s = self
            .b
            .get(self.at..self.at.saturating_add(n))
            .ok_or(CodecError::Truncated { at: self.at })?;
        self.at += n;
        Ok(s)
    }

    fn arr<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.arr::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, CodecError> {
        Ok(u16::from_le_bytes(self.arr()?))
    }
    fn u32(&mut self) -> Result<u32, CodecError> {
        Ok(u32::from_le_bytes(self.arr()?))
    }
    fn u64(&mut self) -> Result<u64, CodecError> {
        Ok(u64::from_le_bytes(self.arr()?))
    }
    fn u128(&mut self) -> Result<u128, CodecError> {
        Ok(u128::from_le_bytes(self.arr()?))
    }

    /// A count of items of at least `min_bytes` each, checked against the bytes left.
    fn count(&mut self, min_bytes: usize) -> Result<usize, CodecError> {
        let n = self.u32()? as usize;
        let left = self.b.len().saturating_sub(self.at);
        if n.saturating_mul(min_bytes) > left {
            return Err(CodecError::Malformed(format!(
                "count {n} at byte {} exceeds the {left} bytes left",
                self.at
            )));
        }
        Ok(n)
    }

    fn name(&mut self) -> Result<String, CodecError> {
        let n = self.u16()? as usize;
        let at = self.at;
        String::from_utf8(self.take(n)?.to_vec())
            .map_err(|_| CodecError::Malformed(format!("stream name at byte {at} is not UTF-8")))
    }

    fn stream(&mut self) -> Result<StreamRoute, CodecError> {
        let name = self.name()?;
        let uid = self.u64()?;
        let state = match self.u8()? {
            0 => StreamState::Creating,
            1 => StreamState::Active,
            2 => StreamState::Updating,
            3 => StreamState::Deleting,
            s => return Err(CodecError::Malformed(format!("unknown stream state {s}"))),
        };
        let n = self.count(SHARD_BYTES)?;
        let mut shards = Vec::with_capacity(n);
        for _ in 0..n {
            let shard_id = ShardId(self.u32()?);
            let uid = self.u64()?;
            let start = self.u128()?;
            let end = self.u128()?;
            let flags = self.u8()?;
            if flags & !(FLAG_OPEN | FLAG_PARENT | FLAG_ADJACENT | FLAG_CLOSED_AT) != 0 {
                return Err(CodecError::Malformed(format!(
                    "unknown shard flags {flags}"
                )));
            }
            let group = GroupId(self.u64()?);
            let node = NodeId(self.u64()?);
            let epoch = self.u64()?;
            let parent = self.u32()?;
            let adjacent = self.u32()?;
            let created_ms = self.u64()?;
            let closed_ms = self.u64()?;
            shards.push(ShardRoute {
                shard_id,
                uid,
                hash_range: HashRange { start, end },
                open: flags & FLAG_OPEN != 0,
                group,
                node,
                epoch,
                parent: (flags & FLAG_PARENT != 0).then_some(ShardId(parent)),
                adjacent_parent: (flags & FLAG_ADJACENT != 0).then_some(ShardId(adjacent)),
                created_ms,
                closed_ms: (flags & FLAG_CLOSED_AT != 0).then_some(closed_ms),
            });
        }
        let stream_policy = match self.u8()? {
            0 => None,
            1 => Some(Arc::new(ResourcePolicy::parse_or_deny_all(&self.text()?))),
            f => return Err(CodecError::Malformed(format!("unknown policy flag {f}"))),
        };
        let n = self.count(CONSUMER_POLICY_BYTES_MIN)?;
        let mut consumers = Vec::with_capacity(n);
        for _ in 0..n {
            let name = self.name()?;
            let arn = self.text()?;
            let policy = Arc::new(ResourcePolicy::parse_or_deny_all(&self.text()?));
            consumers.push(ConsumerPolicy { name, arn, policy });
        }
        let facts = self.facts()?;
        Ok(StreamRoute {
            name,
            uid,
            state,
            shards,
            policies: Policies {
                stream: stream_policy,
                consumers,
            },
            facts,
        })
    }

    fn flag(&mut self, what: &str) -> Result<bool, CodecError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            f => Err(CodecError::Malformed(format!("{what} flag {f}"))),
        }
    }

    /// The inverse of [`StreamFacts::encode`].
    fn facts(&mut self) -> Result<StreamFacts, CodecError> {
        let created_ms = self.u64()?;
        let retention_hours = self.u32()?;
        let on_demand = self.flag("on-demand")?;
        let max_record_kib = self.u32()?;
        let key_id = if self.flag("key id")? {
            Some(self.text()?)
        } else {
            None
        };
        let n = self.count(4)?;
        let shard_level_metrics = (0..n).map(|_| self.text()).collect::<Result<_, _>>()?;
        let warm_throughput_mibps = if self.flag("warm throughput")? {
            Some(self.u32()?)
        } else {
            None
        };
        let n = self.count(4 + 4 + 4)?;
        let mut data_keys = Vec::with_capacity(n);
        for _ in 0..n {
            data_keys.push(WrappedKey {
                version: self.u32()?,
                wrapped_hex: self.text()?,
                master_fingerprint: self.text()?,
            });
        }
        let n = self.count(4 + 4 + 1 + 8)?;
        let mut consumers = Vec::with_capacity(n);
        for _ in 0..n {
            let name = self.text()?;
            let arn = self.text()?;
            let state = match self.u8()? {
                0 => ConsumerState::Creating,
                1 => ConsumerState::Active,
                2 => ConsumerState::Deleting,
                s => return Err(CodecError::Malformed(format!("consumer state {s}"))),
            };
            let created_ms = self.u64()?;
            consumers.push(ConsumerFact {
                name,
                arn,
                state,
                created_ms,
            });
        }
        Ok(StreamFacts {
            created_ms,
            retention_hours,
            on_demand,
            max_record_kib,
            key_id,
            shard_level_metrics,
            warm_throughput_mibps,
            data_keys,
            consumers,
        })
    }

    fn text(&mut self) -> Result<String, CodecError> {
        let n = self.u32()? as usize;
        let at = self.at;
        String::from_utf8(self.take(n)?.to_vec())
            .map_err(|_| CodecError::Malformed(format!("text at byte {at} is not UTF-8")))
    }

    fn at_end(&self) -> bool {
        self.at == self.b.len()
    }

    fn nodes(&mut self) -> Result<NodeTable, CodecError> {
        // Format 2 had no control role and no admin address.
        let v2 = self.format == 2;
        let n = self.count(8 + 2 + 2 + 1 + if v2 { 0 } else { 2 })?;
        let mut table = NodeTable::new();
        for _ in 0..n {
            let id = NodeId(self.u64()?);
            let address = self.name()?;
            let cell = self.name()?;
            let code = self.u8()?;
            let role = NodeRole::from_code(code)
                .filter(|r| !v2 || *r != NodeRole::Control)
                .ok_or_else(|| CodecError::Malformed(format!("node {} role byte {code}", id.0)))?;
            let admin = if v2 { String::new() } else { self.name()? };
            if table
                .insert(
                    id,
                    NodeEntry {
                        address,
                        cell,
                        role,
                        admin,
                    },
                )
                .is_some()
            {
                return Err(CodecError::Malformed(format!("node {} listed twice", id.0)));
            }
        }
        Ok(table)
    }

    fn done(&self) -> Result<(), CodecError> {
        if self.at != self.b.len() {
            return Err(CodecError::Malformed(format!(
                "{} bytes left after the body",
                self.b.len() - self.at
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::even_split;
    use proptest::prelude::*;

    fn stream(name: &str, n: u32, state: StreamState, node: u64) -> StreamRoute {
        let mut shards: Vec<ShardRoute> = even_split(n)
            .into_iter()
            .enumerate()
            .map(|(i, r)| ShardRoute {
                shard_id: ShardId(i as u32 + 1),
                uid: 1000 + i as u64,
                hash_range: r,
                open: true,
                group: GroupId(7),
                node: NodeId(node),
                epoch: 3,
                parent: Some(ShardId(0)),
                adjacent_parent: (i % 2 == 1).then_some(ShardId(0)),
                created_ms: 0,
                closed_ms: None,
            })
            .collect();
        // A closed parent covering everything, as after a split.
        shards.insert(
            0,
            ShardRoute {
                shard_id: ShardId(0),
                uid: 999,
                hash_range: HashRange {
                    start: 0,
                    end: u128::MAX,
                },
                open: false,
                group: GroupId(7),
                node: NodeId(node),
                epoch: 2,
                parent: None,
                adjacent_parent: None,
                created_ms: 1_700_000_000_000,
                closed_ms: Some(1_700_000_000_500 + u64::from(n)),
            },
        );
        // Every other stream carries policies, one of them a text that no longer parses.
        let policies = if n.is_multiple_of(2) {
            let text = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":{"AWS":"111122223333"},"Action":"kinesis:PutRecords","Resource":"*"}]}"#;
            Policies {
                stream: Some(Arc::new(ResourcePolicy::parse(text).unwrap())),
                consumers: vec![ConsumerPolicy {
                    name: "c".into(),
                    arn: format!(
                        "arn:aws:kinesis:us-east-1:000000000000:stream/{name}/consumer/c:1"
                    ),
                    policy: Arc::new(ResourcePolicy::parse_or_deny_all("not json")),
                }],
            }
        } else {
            Policies::default()
        };
        StreamRoute {
            name: name.into(),
            uid: 5,
            state,
            shards,
            policies,
            facts: facts(name, n),
        }
    }

    /// Settings that vary with `n`, every optional part present in some streams.
    fn facts(name: &str, n: u32) -> StreamFacts {
        StreamFacts {
            created_ms: 1_700_000_000_000 + u64::from(n),
            retention_hours: 24 + n,
            on_demand: n.is_multiple_of(3),
            max_record_kib: 1024 * (1 + n % 10),
            key_id: (n % 2 == 1).then(|| format!("alias/key-{n}")),
            shard_level_metrics: (0..n % 3).map(|i| format!("Metric{i}")).collect(),
            warm_throughput_mibps: n.is_multiple_of(4).then_some(n * 10),
            data_keys: (1..=n % 3)
                .map(|v| WrappedKey {
                    version: v,
                    wrapped_hex: format!("{:064x}", u128::from(v) * 7919),
                    master_fingerprint: "fp".into(),
                })
                .collect(),
            consumers: (0..n % 4)
                .map(|i| ConsumerFact {
                    name: format!("c{i}"),
                    arn: format!(
                        "arn:aws:kinesis:us-east-1:000000000000:stream/{name}/consumer/c{i}:1"
                    ),
                    state: match i % 3 {
                        0 => ConsumerState::Creating,
                        1 => ConsumerState::Active,
                        _ => ConsumerState::Deleting,
                    },
                    created_ms: 1_700_000_000_000 + u64::from(i),
                })
                .collect(),
        }
    }

    fn state_of(i: u8) -> StreamState {
        match i % 4 {
            0 => StreamState::Creating,
            1 => StreamState::Active,
            2 => StreamState::Updating,
            _ => StreamState::Deleting,
        }
    }

    fn arb_map() -> impl Strategy<Value = ShardMap> {
        (
            any::<u64>(),
            proptest::collection::vec((1u32..40, any::<u8>(), 0u64..4), 0..6),
            proptest::collection::btree_map(
                0u64..8,
                (
                    "127\\.0\\.0\\.[0-9]{1,3}:[0-9]{2,5}",
                    "cell-[0-9]",
                    0u8..3,
                    "(127\\.0\\.0\\.[0-9]{1,3}:[0-9]{2,5})?",
                ),
                0..4,
            ),
        )
            .prop_map(|(version, specs, nodes)| {
                let streams = specs
                    .into_iter()
                    .enumerate()
                    .map(|(i, (n, st, node))| stream(&format!("s-{i}"), n, state_of(st), node))
                    .collect();
                let nodes = nodes
                    .into_iter()
                    .map(|(id, (address, cell, role, admin))| {
                        (
                            NodeId(id),
                            NodeEntry {
                                address,
                                cell,
                                role: NodeRole::from_code(role).unwrap(),
                                admin,
                            },
                        )
                    })
                    .collect();
                ShardMap::build_with_nodes(version, streams, nodes).unwrap()
            })
    }

    proptest! {
        #[test]
        fn maps_round_trip(map in arb_map()) {
            let bytes = encode_map(&map);
            let back = decode_map(&bytes).unwrap();
            prop_assert_eq!(&back, &map);
            prop_assert!(back.verify().is_ok());
        }

        #[test]
        fn deltas_round_trip_and_apply(a in arb_map(), b in arb_map()) {
            let b = ShardMap::build(a.version().wrapping_add(1).max(1),
                b.streams().map(|s| StreamRoute::clone(s)).collect()).unwrap();
            let d = a.diff(&b);
            let bytes = encode_delta(&d);
            let frames = decode_frames(&bytes).unwrap();
            prop_assert_eq!(frames.len(), 1);
            let Frame::Delta(back) = &frames[0] else { panic!("not a delta") };
            prop_assert_eq!(back, &d);
            if b.version() > a.version() {
                prop_assert_eq!(a.apply(back).unwrap(), b);
            }
        }

        /// Any single flipped bit, anywhere, is detected.
        #[test]
        fn any_flipped_bit_is_detected(map in arb_map(), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
            let mut bytes = encode_map(&map);
            let i = pos.index(bytes.len());
            bytes[i] ^= 1 << bit;
            prop_assert!(decode_map(&bytes).is_err());
        }

        /// Any truncation, and any appended garbage, is detected.
        #[test]
        fn truncation_and_trailing_bytes_are_detected(map in arb_map(), cut in any::<prop::sample::Index>(), extra in proptest::collection::vec(any::<u8>(), 1..20)) {
            let bytes = encode_map(&map);
            let n = cut.index(bytes.len());
            prop_assert!(decode_map(&bytes[..n]).is_err());
            let mut longer = bytes.clone();
            longer.extend_from_slice(&extra);
            prop_assert!(decode_map(&longer).is_err());
        }

        /// Random bytes never decode to a map and never panic.
        #[test]
        fn garbage_is_refused(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            prop_assert!(decode_map(&bytes).is_err());
            let _ = decode_frames(&bytes);
        }
    }

    /// `map` as a format-2 snapshot frame (what builds before control nodes and admin
    /// addresses wrote): the node table without admin addresses.
    fn frame_v2(map: &ShardMap) -> Vec<u8> {
        let streams = map.streams().map(|s| StreamRoute::clone(s)).collect();
        let plain = encode_map(&ShardMap::build(map.version(), streams).unwrap());
        let mut body = plain[HEADER_BYTES..plain.len() - CRC_BYTES].to_vec();
        body[8..12].copy_from_slice(&map.checksum().to_le_bytes());
        body.extend_from_slice(&(map.nodes().len() as u32).to_le_bytes());
        for (id, n) in map.nodes() {
            body.extend_from_slice(&id.0.to_le_bytes());
            put_name(&mut body, &n.address);
            put_name(&mut body, &n.cell);
            body.push(n.role.code());
        }
        let mut out = frame(KIND_SNAPSHOT, &body);
        out[4] = 2;
        let n = out.len() - CRC_BYTES;
        let crc = crc32c::crc32c(&out[..n]);
        out[n..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    #[test]
    fn format_2_frames_persisted_by_older_builds_still_decode() {
        let node = |address: &str, role| NodeEntry {
            address: address.into(),
            cell: "cell-1".into(),
            role,
            admin: String::new(),
        };
        let nodes: NodeTable = [
            (NodeId(1), node("127.0.0.1:7001", NodeRole::Storage)),
            (NodeId(2), node("127.0.0.2:4590", NodeRole::Frontend)),
        ]
        .into_iter()
        .collect();
        let map =
            ShardMap::build_with_nodes(9, vec![stream("s", 2, StreamState::Active, 1)], nodes)
                .unwrap();
        let old = frame_v2(&map);
        assert_eq!(old[4], 2);
        assert_eq!(decode_map(&old).unwrap(), map);
        // The same map written now is format 3 and decodes to the same map.
        let now = encode_map(&map);
        assert_eq!(now[4], FORMAT_VERSION);
        assert_eq!(decode_map(&now).unwrap(), map);
        // A control node cannot be in a format-2 frame; formats outside 2..=3 are refused.
        let mut with_control = map.nodes().clone();
        with_control.insert(NodeId(3), node("127.0.0.3:4591", NodeRole::Control));
        let m = ShardMap::build_with_nodes(9, vec![], with_control).unwrap();
        assert!(matches!(
            decode_map(&frame_v2(&m)),
            Err(CodecError::Malformed(_))
        ));
        let mut future = encode_map(&map);
        future[4] = FORMAT_VERSION + 1;
        let n = future.len() - CRC_BYTES;
        let crc = crc32c::crc32c(&future[..n]);
        future[n..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            decode_map(&future),
            Err(CodecError::BadFormat(FORMAT_VERSION + 1))
        );
    }

    #[test]
    fn feeds_are_frames_back_to_back() {
        let m1 = ShardMap::build(1, vec![stream("a", 2, StreamState::Active, 1)]).unwrap();
        let m2 = ShardMap::build(2, vec![stream("a", 3, StreamState::Active, 1)]).unwrap();
        let m3 = ShardMap::build(3, vec![stream("b", 1, StreamState::Active, 2)]).unwrap();
        let mut feed = encode_delta(&m1.diff(&m2));
        feed.extend(encode_delta(&m2.diff(&m3)));
        let frames = decode_frames(&feed).unwrap();
        let mut m = m1.clone();
        for f in frames {
            let Frame::Delta(d) = f else {
                panic!("not a delta")
            };
            m = m.apply(&d).unwrap();
        }
        assert_eq!(m, m3);
        // A delta frame is not a snapshot.
        assert!(matches!(
            decode_map(&encode_delta(&m1.diff(&m2))),
            Err(CodecError::WrongKind { .. })
        ));
    }

    #[test]
    fn a_map_whose_content_checksum_lies_is_refused_even_with_a_good_frame_crc() {
        let m = ShardMap::build(4, vec![stream("a", 2, StreamState::Active, 1)]).unwrap();
        let mut bytes = encode_map(&m);
        // Change the stored content checksum (body offset 8) and re-seal the frame CRC.
        bytes[HEADER_BYTES + 8] ^= 1;
        let end = bytes.len() - CRC_BYTES;
        let crc = crc32c::crc32c(&bytes[..end]);
        bytes[end..].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            decode_map(&bytes),
            Err(CodecError::Map(MapError::Checksum { .. }))
        ));
    }

    #[test]
    fn a_map_with_a_hole_is_refused_even_when_well_framed() {
        let mut s = stream("a", 4, StreamState::Active, 1);
        s.shards[2].hash_range.end -= 1;
        // Build the bytes by hand: the encoder accepts any StreamRoute.
        let mut body = Vec::new();
        body.extend_from_slice(&9u64.to_le_bytes());
        body.extend_from_slice(&0u32.to_le_bytes());
        body.extend_from_slice(&1u32.to_le_bytes());
        put_stream(&mut body, &s);
        let bytes = frame(KIND_SNAPSHOT, &body);
        assert!(matches!(
            decode_map(&bytes),
            Err(CodecError::Map(MapError::Invalid { .. }))
        ));
    }
}
