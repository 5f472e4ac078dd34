//! `levee tail`: prints a stream's records as they arrive, from every shard, following reshards.
//!
//! One reader task per shard being read (GetShardIterator, then GetRecords in a loop) sends
//! batches into one bounded queue; the main loop prints them. A reader that reaches its shard's
//! end reports the children (GetRecords' `ChildShards`, or ListShards when a server gives none);
//! a child is read only after **all** its parents have ended and their records were printed, so
//! each partition key's records come out in order across splits and merges. A reader pauses
//! when its shard is caught up (the pause grows to a bounded poll interval) and backs off on
//! ProvisionedThroughputExceededException; an expired iterator is renewed after the last record
//! read.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::time::Duration;

use anyhow::anyhow;
use aws_sdk_kinesis::primitives::{DateTime, DateTimeFormat};
use aws_sdk_kinesis::types::{Record, Shard, ShardIteratorType};
use aws_sdk_kinesis::Client;
use base64::Engine;
use clap::{Args, ValueEnum};
use serde::Serialize;
use tokio::sync::mpsc;

use super::stream::{is_open, list_all_shards};
use super::{aws_error, connect, rfc3339, AwsResultExt, ConnArgs, CONN_HELP};

/// Batches of records queued between the shard readers and the printer.
const QUEUE_BATCHES_MAX: usize = 32;
/// Records per GetRecords call (AWS's maximum).
const GET_RECORDS_LIMIT: i32 = 10_000;
/// The pause between polls of a caught-up shard grows from the minimum to the maximum.
const POLL_INTERVAL_MS_MIN: u64 = 200;
const POLL_INTERVAL_MS_MAX: u64 = 1_000;
/// The pause after ProvisionedThroughputExceededException doubles up to the maximum.
const THROTTLE_PAUSE_MS_MIN: u64 = 200;
const THROTTLE_PAUSE_MS_MAX: u64 = 5_000;

#[derive(Args)]
#[command(after_help = CONN_HELP)]
pub struct TailArgs {
    /// The stream to read.
    stream: String,
    /// Where to start: trim-horizon (the oldest record kept), latest (only new records), or a
    /// time (RFC 3339, e.g. 2025-01-31T12:00:00Z, or epoch seconds).
    #[arg(long, default_value = "latest", value_parser = parse_from)]
    from: From,
    /// How each record is printed: text (the data as UTF-8, one record a line) or json (one
    /// object a line: stream, shardId, sequenceNumber, partitionKey,
    /// approximateArrivalTimestamp, data).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// With --format json: data as a UTF-8 string instead of base64.
    #[arg(long)]
    decode: bool,
    /// Exit after printing this many records.
    #[arg(long)]
    limit: Option<u64>,
    #[command(flatten)]
    conn: ConnArgs,
}

#[derive(Clone, Debug, PartialEq)]
enum From {
    TrimHorizon,
    Latest,
    At(DateTime),
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    Text,
    Json,
}

fn parse_from(s: &str) -> Result<From, String> {
    let norm = s.to_ascii_lowercase().replace('_', "-");
    match norm.as_str() {
        "trim-horizon" => return Ok(From::TrimHorizon),
        "latest" => return Ok(From::Latest),
        _ => {}
    }
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return DateTime::from_str(s, DateTimeFormat::EpochSeconds)
            .map(From::At)
            .map_err(|e| format!("bad epoch seconds {s:?}: {e}"));
    }
    DateTime::from_str(s, DateTimeFormat::DateTimeWithOffset)
        .map(From::At)
        .map_err(|_| {
            format!(
                "{s:?} is not trim-horizon, latest, an RFC 3339 time (2025-01-31T12:00:00Z) or \
                 epoch seconds"
            )
        })
}

/// Where a reader starts in its shard.
#[derive(Clone, Debug)]
enum Start {
    Type(ShardIteratorType),
    At(DateTime),
    After(String),
}

enum Event {
    Records(String, Vec<Record>),
    /// The shard ended; its children as (child, all its parents).
    Ended(String, Vec<(String, Vec<String>)>),
    Failed(anyhow::Error),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonRecord<'a> {
    stream: &'a str,
    shard_id: &'a str,
    sequence_number: &'a str,
    partition_key: &'a str,
    approximate_arrival_timestamp: Option<String>,
    data: Cow<'a, str>,
}

pub async fn run(a: TailArgs) -> anyhow::Result<()> {
    let client = connect(&a.conn).await?;
    let shards = list_all_shards(&client, &a.stream).await?;
    let listed: HashSet<String> = shards.iter().map(|s| s.shard_id().to_owned()).collect();
    let (first, known): (Vec<&Shard>, HashSet<String>) = match a.from {
        From::Latest => {
            let open: Vec<&Shard> = shards.iter().filter(|s| is_open(s)).collect();
            let ids = open.iter().map(|s| s.shard_id().to_owned()).collect();
            (open, ids)
        }
        From::TrimHorizon | From::At(_) => {
            let roots = shards
                .iter()
                .filter(|s| {
                    [s.parent_shard_id(), s.adjacent_parent_shard_id()]
                        .into_iter()
                        .flatten()
                        .all(|p| !listed.contains(p))
                })
                .collect();
            (roots, listed.clone())
        }
    };
    let (first_start, child_start) = match &a.from {
        From::TrimHorizon => (
            Start::Type(ShardIteratorType::TrimHorizon),
            Start::Type(ShardIteratorType::TrimHorizon),
        ),
        From::Latest => (
            Start::Type(ShardIteratorType::Latest),
            Start::Type(ShardIteratorType::TrimHorizon),
        ),
        From::At(t) => (Start::At(*t), Start::At(*t)),
    };
    let mut lineage = Lineage {
        known,
        ..Default::default()
    };
    let (tx, mut rx) = mpsc::channel(QUEUE_BATCHES_MAX);
    let spawn = |shard: String, start: Start| {
        tokio::spawn(read_shard(
            client.clone(),
            a.stream.clone(),
            shard,
            start,
            tx.clone(),
        ));
    };
    for s in first {
        lineage.started.insert(s.shard_id().to_owned());
        spawn(s.shard_id().to_owned(), first_start.clone());
    }
    let mut printed = 0u64;
    if a.limit == Some(0) {
        return Ok(());
    }
    while let Some(ev) = rx.recv().await {
        match ev {
            Event::Records(shard, records) => {
                let stdout = std::io::stdout();
                let mut out = stdout.lock();
                for r in &records {
                    print_record(&mut out, &a, &shard, r)?;
                    printed += 1;
                    if a.limit.is_some_and(|l| printed >= l) {
                        out.flush()?;
                        return Ok(());
                    }
                }
                out.flush()?;
            }
            Event::Ended(shard, mut children) => {
                if children.is_empty() {
                    children = discover_children(&client, &a.stream, &shard).await?;
                }
                lineage.ended(shard, children);
                if lineage.has_unknown_parents() {
                    let now: HashSet<String> = list_all_shards(&client, &a.stream)
                        .await?
                        .iter()
                        .map(|s| s.shard_id().to_owned())
                        .collect();
                    lineage.resolve_unknown(&now);
                }
                for child in lineage.ready() {
                    spawn(child, child_start.clone());
                }
            }
            Event::Failed(e) => return Err(e),
        }
    }
    Err(anyhow!("every shard reader stopped"))
}

/// Which shards have been read to their end and which children wait for their parents.
#[derive(Default)]
struct Lineage {
    /// Shards this tail reads or will read: a parent among them holds its children back.
    known: HashSet<String>,
    started: HashSet<String>,
    finished: HashSet<String>,
    /// Children not started yet, with all their parents.
    waiting: HashMap<String, Vec<String>>,
}

impl Lineage {
    fn ended(&mut self, shard: String, children: Vec<(String, Vec<String>)>) {
        self.finished.insert(shard);
        for (child, parents) in children {
            if !self.started.contains(&child) {
                self.known.insert(child.clone());
                self.waiting.insert(child, parents);
            }
        }
    }

    /// A waiting child has a parent this tail has not heard of (say, the other half of a merge
    /// whose own parent's reader is behind).
    fn has_unknown_parents(&self) -> bool {
        self.waiting
            .values()
            .flatten()
            .any(|p| !self.known.contains(p) && !self.finished.contains(p))
    }

    /// An unknown parent still listed will be reached through its own parents; one no longer
    /// listed (expired) cannot hold its children back.
    fn resolve_unknown(&mut self, listed: &HashSet<String>) {
        let unknown: Vec<String> = self
            .waiting
            .values()
            .flatten()
            .filter(|p| !self.known.contains(*p) && !self.finished.contains(*p))
            .cloned()
            .collect();
        for p in unknown {
            if listed.contains(&p) {
                self.known.insert(p);
            } else {
                self.finished.insert(p);
            }
        }
    }

    /// Takes the children whose parents have all ended.
    fn ready(&mut self) -> Vec<String> {
        let ready: Vec<String> = self
            .waiting
            .iter()
            .filter(|(_, parents)| {
                parents
                    .iter()
                    .all(|p| self.finished.contains(p) || !self.known.contains(p))
            })
            .map(|(c, _)| c.clone())
            .collect();
        for c in &ready {
            self.waiting.remove(c);
            self.started.insert(c.clone());
        }
        ready
    }
}

/// The children of `shard` from ListShards (for servers whose GetRecords gives no ChildShards).
async fn discover_children(
    client: &Client,
    stream: &str,
    shard: &str,
) -> anyhow::Result<Vec<(String, Vec<String>)>> {
    Ok(list_all_shards(client, stream)
        .await?
        .iter()
        .filter(|s| {
            s.parent_shard_id() == Some(shard) || s.adjacent_parent_shard_id() == Some(shard)
        })
        .map(|s| {
            let parents = [s.parent_shard_id(), s.adjacent_parent_shard_id()]
                .into_iter()
                .flatten()
                .map(str::to_owned)
                .collect();
            (s.shard_id().to_owned(), parents)
        })
        .collect())
}

fn print_record(out: &mut impl Write, a: &TailArgs, shard: &str, r: &Record) -> anyhow::Result<()> {
    let data = r.data().as_ref();
    match a.format {
        Format::Text => {
            out.write_all(String::from_utf8_lossy(data).as_bytes())?;
        }
        Format::Json => {
            let rec = JsonRecord {
                stream: &a.stream,
                shard_id: shard,
                sequence_number: r.sequence_number(),
                partition_key: r.partition_key().unwrap_or_default(),
                approximate_arrival_timestamp: r.approximate_arrival_timestamp().map(rfc3339),
                data: if a.decode {
                    String::from_utf8_lossy(data)
                } else {
                    Cow::Owned(base64::engine::general_purpose::STANDARD.encode(data))
                },
            };
            serde_json::to_writer(&mut *out, &rec)?;
        }
    }
    out.write_all(b"\n")?;
    Ok(())
}

/// Reads one shard to its end (or forever, while it is open), sending batches to the printer.
async fn read_shard(
    client: Client,
    stream: String,
    shard: String,
    start: Start,
    tx: mpsc::Sender<Event>,
) {
    if let Err(e) = read_shard_inner(&client, &stream, &shard, start, &tx).await {
        let _ = tx.send(Event::Failed(e)).await;
    }
}

async fn shard_iterator(
    client: &Client,
    stream: &str,
    shard: &str,
    start: &Start,
) -> anyhow::Result<String> {
    let req = client
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(shard);
    let req = match start {
        Start::Type(t) => req.shard_iterator_type(t.clone()),
        Start::At(t) => req
            .shard_iterator_type(ShardIteratorType::AtTimestamp)
            .timestamp(*t),
        Start::After(seq) => req
            .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
            .starting_sequence_number(seq),
    };
    let out = req.send().await.aws("GetShardIterator")?;
    out.shard_iterator()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("GetShardIterator for {shard}: no ShardIterator"))
}

async fn read_shard_inner(
    client: &Client,
    stream: &str,
    shard: &str,
    start: Start,
    tx: &mpsc::Sender<Event>,
) -> anyhow::Result<()> {
    let mut iterator = shard_iterator(client, stream, shard, &start).await?;
    let mut last_seq: Option<String> = None;
    let mut poll = POLL_INTERVAL_MS_MIN;
    let mut throttle = THROTTLE_PAUSE_MS_MIN;
    loop {
        let out = match client
            .get_records()
            .shard_iterator(&iterator)
            .limit(GET_RECORDS_LIMIT)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                let service = e.as_service_error();
                if service.is_some_and(|s| s.is_provisioned_throughput_exceeded_exception()) {
                    tokio::time::sleep(Duration::from_millis(throttle)).await;
                    throttle = (throttle * 2).min(THROTTLE_PAUSE_MS_MAX);
                    continue;
                }
                if service.is_some_and(|s| s.is_expired_iterator_exception()) {
                    let from = last_seq.clone().map_or(start.clone(), Start::After);
                    iterator = shard_iterator(client, stream, shard, &from).await?;
                    continue;
                }
                return Err(aws_error(&format!("GetRecords on {shard}"), e));
            }
        };
        throttle = THROTTLE_PAUSE_MS_MIN;
        let records = out.records().to_vec();
        let got = records.len();
        if let Some(r) = records.last() {
            last_seq = Some(r.sequence_number().to_owned());
        }
        if got > 0
            && tx
                .send(Event::Records(shard.to_owned(), records))
                .await
                .is_err()
        {
            return Ok(());
        }
        let Some(next) = out.next_shard_iterator() else {
            let children = out
                .child_shards()
                .iter()
                .map(|c| (c.shard_id().to_owned(), c.parent_shards().to_vec()))
                .collect();
            let _ = tx.send(Event::Ended(shard.to_owned(), children)).await;
            return Ok(());
        };
        iterator = next.to_owned();
        if got == 0 {
            tokio::time::sleep(Duration::from_millis(poll)).await;
            poll = (poll * 2).min(POLL_INTERVAL_MS_MAX);
        } else {
            poll = POLL_INTERVAL_MS_MIN;
            if out.millis_behind_latest() == Some(0) {
                tokio::time::sleep(Duration::from_millis(POLL_INTERVAL_MS_MIN)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_values() {
        assert_eq!(parse_from("trim-horizon"), Ok(From::TrimHorizon));
        assert_eq!(parse_from("TRIM_HORIZON"), Ok(From::TrimHorizon));
        assert_eq!(parse_from("latest"), Ok(From::Latest));
        assert_eq!(
            parse_from("1700000000"),
            Ok(From::At(DateTime::from_secs(1_700_000_000)))
        );
        assert_eq!(
            parse_from("2023-11-14T22:13:20Z"),
            Ok(From::At(DateTime::from_secs(1_700_000_000)))
        );
        assert_eq!(
            parse_from("2023-11-14T23:13:20+01:00"),
            Ok(From::At(DateTime::from_secs(1_700_000_000)))
        );
        assert!(parse_from("yesterday").is_err());
    }

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_merge_child_waits_for_both_parents() {
        let mut l = Lineage {
            known: ["a", "b"].map(String::from).into(),
            started: ["a", "b"].map(String::from).into(),
            ..Default::default()
        };
        l.ended("a".into(), vec![("c".into(), ids(&["a", "b"]))]);
        assert!(l.ready().is_empty());
        l.ended("b".into(), vec![("c".into(), ids(&["a", "b"]))]);
        assert_eq!(l.ready(), ids(&["c"]));
        assert!(l.ready().is_empty(), "a child starts once");
    }

    #[test]
    fn an_unknown_parent_holds_a_child_until_it_is_known_gone() {
        let mut l = Lineage {
            known: ["a"].map(String::from).into(),
            started: ["a"].map(String::from).into(),
            ..Default::default()
        };
        l.ended("a".into(), vec![("c".into(), ids(&["a", "x"]))]);
        assert!(l.has_unknown_parents());
        // x is listed: it will be read through its own parent first.
        l.resolve_unknown(&["a", "x", "c"].map(String::from).into());
        assert!(!l.has_unknown_parents());
        assert!(l.ready().is_empty());
        l.ended("x".into(), vec![("c".into(), ids(&["a", "x"]))]);
        assert_eq!(l.ready(), ids(&["c"]));

        let mut l = Lineage::default();
        l.ended("a".into(), vec![("c".into(), ids(&["a", "gone"]))]);
        l.resolve_unknown(&["a", "c"].map(String::from).into());
        assert_eq!(l.ready(), ids(&["c"]));
    }
}
