//! Counting a GetRecords JSON answer's records as its body streams in, without collecting or
//! parsing it: read-back moves millions of records a second through the same two cores as the
//! server, and the generator must not be what limits it.
//!
//! [`RecordScan`] is fed the body's chunks as they arrive. It looks for each `"Data":"` key and
//! the closing quote of its base64 value, across chunk boundaries, never looking at a value's
//! bytes twice; it keeps the first and last [`EDGE_BYTES`] of the body, where the answer's other
//! members sit (before or after the `Records` array), for the `NextShardIterator` and an empty
//! array. Answers not in the compact form this expects make [`RecordScan::finish`] return `None`;
//! the caller checks scans against full parses (`parse_get_records`).

use std::sync::LazyLock;

use memchr::memmem;

/// A GetRecords answer's (records, data bytes, next iterator).
pub type GetRecordsCount = (u64, u64, Option<String>);

const DATA: &[u8] = b"\"Data\":\"";
const NEXT: &[u8] = b"\"NextShardIterator\":";
const EMPTY: &[u8] = b"\"Records\":[]";
/// Built once: building a finder costs more than most searches.
static DATA_FINDER: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new(DATA));

/// Bytes kept of each end of the body: every member but `Records` is in them.
pub const EDGE_BYTES: usize = 8 << 10;

#[derive(Debug, Default)]
pub struct RecordScan {
    records: u64,
    bytes: u64,
    /// Inside a `Data` value: its length so far and its last two bytes (for the padding).
    in_data: bool,
    value_len: u64,
    value_tail: [u8; 2],
    /// The last bytes of the previous chunk outside any value: a `"Data":"` may start there.
    carry: Vec<u8>,
    head: Vec<u8>,
    tail: Vec<u8>,
    total: usize,
}

impl RecordScan {
    pub fn feed(&mut self, chunk: &[u8]) {
        self.keep_edges(chunk);
        let mut at = 0;
        if !self.in_data && !self.carry.is_empty() {
            at = self.key_across(chunk);
        }
        while at < chunk.len() {
            if self.in_data {
                match memchr::memchr(b'"', &chunk[at..]) {
                    Some(q) => {
                        self.value_bytes(&chunk[at..at + q]);
                        self.end_value();
                        at += q + 1;
                    }
                    None => {
                        self.value_bytes(&chunk[at..]);
                        at = chunk.len();
                    }
                }
            } else {
                match DATA_FINDER.find(&chunk[at..]) {
                    Some(k) => {
                        at += k + DATA.len();
                        self.start_value();
                    }
                    None => {
                        let rest = &chunk[at..];
                        self.carry.clear();
                        self.carry
                            .extend_from_slice(&rest[rest.len().saturating_sub(DATA.len() - 1)..]);
                        at = chunk.len();
                    }
                }
            }
        }
    }

    /// A key split between the carried bytes and this chunk: where scanning this chunk resumes.
    fn key_across(&mut self, chunk: &[u8]) -> usize {
        let carried = self.carry.len();
        let mut window = std::mem::take(&mut self.carry);
        window.extend_from_slice(&chunk[..chunk.len().min(DATA.len() - 1)]);
        match memmem::find(&window, DATA) {
            Some(k) if k < carried => {
                self.start_value();
                k + DATA.len() - carried
            }
            _ if chunk.len() < DATA.len() - 1 => {
                // A tiny chunk: the key may still be completed by the next one.
                let keep = window.len().saturating_sub(DATA.len() - 1);
                window.drain(..keep);
                self.carry = window;
                chunk.len()
            }
            _ => 0,
        }
    }

    fn start_value(&mut self) {
        self.in_data = true;
        self.value_len = 0;
        self.value_tail = [0; 2];
    }

    fn value_bytes(&mut self, b: &[u8]) {
        self.value_len += b.len() as u64;
        match b {
            [.., x, y] => self.value_tail = [*x, *y],
            [y] => self.value_tail = [self.value_tail[1], *y],
            [] => {}
        }
    }

    fn end_value(&mut self) {
        self.in_data = false;
        let padding = match self.value_tail {
            [b'=', b'='] => 2,
            [_, b'='] => 1,
            _ => 0,
        };
        self.records += 1;
        self.bytes += ((self.value_len / 4) * 3).saturating_sub(padding);
    }

    fn keep_edges(&mut self, chunk: &[u8]) {
        self.total += chunk.len();
        let room = EDGE_BYTES - self.head.len();
        self.head.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if chunk.len() >= EDGE_BYTES {
            self.tail.clear();
            self.tail
                .extend_from_slice(&chunk[chunk.len() - EDGE_BYTES..]);
        } else {
            self.tail.extend_from_slice(chunk);
            let over = self.tail.len().saturating_sub(EDGE_BYTES);
            self.tail.drain(..over);
        }
    }

    /// The count, or `None` for a cut-off value or an answer not in the expected form.
    pub fn finish(self) -> Option<GetRecordsCount> {
        if self.in_data {
            return None;
        }
        // Short bodies are all in `head`.
        let whole = self.total <= EDGE_BYTES;
        if self.records == 0 && memmem::find(&self.head, EMPTY).is_none() {
            return None;
        }
        let next = match next_iterator(&self.head)? {
            Some(it) => Some(it),
            None if whole => None,
            None => next_iterator(&self.tail)?,
        };
        Some((self.records, self.bytes, next.map(str::to_owned)))
    }
}

/// `Ok(None)` when the member is absent or null; `None` (the outer one) when it is cut off or
/// escaped.
fn next_iterator(edge: &[u8]) -> Option<Option<&str>> {
    let Some(i) = memmem::find(edge, NEXT) else {
        return Some(None);
    };
    let rest = &edge[i + NEXT.len()..];
    if rest.starts_with(b"null") {
        return Some(None);
    }
    let rest = rest.strip_prefix(b"\"")?;
    let len = memchr::memchr(b'"', rest)?;
    let it = std::str::from_utf8(&rest[..len]).ok()?;
    if it.contains('\\') {
        return None;
    }
    Some(Some(it))
}

/// [`RecordScan`] of a whole body.
#[cfg(test)]
pub fn scan_get_records(body: &[u8]) -> Option<GetRecordsCount> {
    let mut s = RecordScan::default();
    s.feed(body);
    s.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const COMPACT: &[u8] = br#"{"Records":[{"SequenceNumber":"1","ApproximateArrivalTimestamp":1.5,"Data":"AAEC","PartitionKey":"k"},{"SequenceNumber":"2","Data":"AA==","PartitionKey":"Data"},{"Data":"","PartitionKey":"\"Data\":"},{"Data":"AAA=","PartitionKey":"x"}],"NextShardIterator":"abc/+=","MillisBehindLatest":0}"#;

    #[test]
    fn a_compact_answer_is_counted() {
        assert_eq!(
            scan_get_records(COMPACT),
            Some((4, 3 + 1 + 2, Some("abc/+=".into())))
        );
        let end = br#"{"Records":[],"MillisBehindLatest":0,"ChildShards":[]}"#;
        assert_eq!(scan_get_records(end), Some((0, 0, None)));
        let null_next = br#"{"NextShardIterator":null,"Records":[]}"#;
        assert_eq!(scan_get_records(null_next), Some((0, 0, None)));
    }

    #[test]
    fn answers_not_in_the_compact_form_are_not_counted() {
        let spaced = br#"{"Records": [{"Data" : "AAEC"}], "NextShardIterator": "x"}"#;
        assert_eq!(scan_get_records(spaced), None);
        let cut = br#"{"Records":[{"Data":"AAEC"#;
        assert_eq!(scan_get_records(cut), None);
        let escaped = br#"{"Records":[],"NextShardIterator":"a\/b"}"#;
        assert_eq!(scan_get_records(escaped), None);
    }

    #[test]
    fn the_iterator_is_found_after_a_long_records_array() {
        let mut body = b"{\"Records\":[".to_vec();
        for i in 0..2_000 {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(
                br#"{"SequenceNumber":"49","Data":"AAECAwQF","PartitionKey":"p"}"#,
            );
        }
        body.extend_from_slice(br#"],"NextShardIterator":"it","MillisBehindLatest":3}"#);
        assert!(body.len() > 2 * EDGE_BYTES);
        assert_eq!(
            scan_get_records(&body),
            Some((2_000, 12_000, Some("it".into())))
        );
        let mut s = RecordScan::default();
        for c in body.chunks(1_000) {
            s.feed(c);
        }
        assert_eq!(s.finish(), Some((2_000, 12_000, Some("it".into()))));
    }

    proptest! {
        /// However the body is cut into chunks, the count is the whole body's.
        #[test]
        fn any_chunking_counts_the_same(cuts in proptest::collection::vec(0usize..400, 0..30)) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (COMPACT.len() + 1)).collect();
            cuts.sort_unstable();
            let mut s = RecordScan::default();
            let mut from = 0;
            for c in cuts.into_iter().chain([COMPACT.len()]) {
                s.feed(&COMPACT[from..c]);
                from = c;
            }
            prop_assert_eq!(s.finish(), scan_get_records(COMPACT));
        }
    }
}
