//! `levee put`: records from arguments, or one record per line of a file or of stdin, batched
//! into PutRecords calls. Batches go one at a time, in input order; the records a batch fails
//! (throttled, or an internal failure) are sent again, alone, with a growing pause before the
//! next batch starts, so a key's records stay in order unless one is retried after a later one
//! of the same batch succeeded — PutRecords' own semantics.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, Context};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use aws_sdk_kinesis::Client;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use rand::Rng;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};

use super::{connect, out_line, AwsResultExt, ConnArgs, CONN_HELP};

/// Records per PutRecords call (AWS's limit).
const BATCH_RECORDS_MAX: usize = 500;
/// Bytes (data plus partition keys) per PutRecords call (AWS's limit).
const BATCH_BYTES_MAX: usize = 5 * 1024 * 1024;
/// Bytes of one record, data plus partition key (AWS's limit).
const RECORD_BYTES_MAX: usize = 1024 * 1024;
/// How many times the failed records of one batch are sent again before giving up.
const RETRIES_MAX: u32 = 10;
/// The pause before the first retry of failed records; it doubles up to the maximum.
const RETRY_PAUSE_MS_MIN: u64 = 100;
const RETRY_PAUSE_MS_MAX: u64 = 5_000;
/// Bytes of input read ahead of the batch being built.
const READ_BUFFER_BYTES: usize = 256 * 1024;

#[derive(Args)]
#[command(after_help = CONN_HELP)]
pub struct PutArgs {
    /// The stream to write to.
    stream: String,
    /// Records, one per argument. Without any, each line of --file (or of stdin) is one record,
    /// without its line ending.
    data: Vec<String>,
    /// The partition key of every record. [default: a random key per record]
    #[arg(long, short = 'k', conflicts_with = "random_key")]
    partition_key: Option<String>,
    /// A random partition key per record (spreads records over the shards; the default).
    #[arg(long)]
    random_key: bool,
    /// Read records from this file, one per line (a progress bar shows on a terminal).
    #[arg(long, short = 'f', conflicts_with = "data")]
    file: Option<PathBuf>,
    #[command(flatten)]
    conn: ConnArgs,
}

/// What a run put, for the summary line.
#[derive(Default)]
struct Totals {
    records: u64,
    bytes: u64,
    batches: u64,
    retries: u64,
}

pub async fn run(a: PutArgs) -> anyhow::Result<()> {
    let client = connect(&a.conn).await?;
    let key = |rng: &mut rand::rngs::ThreadRng| match &a.partition_key {
        Some(k) => k.clone(),
        None => format!("{:016x}", rng.gen::<u64>()),
    };
    let mut rng = rand::thread_rng();
    let mut totals = Totals::default();
    let mut batch = Batch::default();
    if !a.data.is_empty() {
        for (i, d) in a.data.iter().enumerate() {
            let k = key(&mut rng);
            batch
                .push_or_flush(
                    &client,
                    &a.stream,
                    k,
                    d.as_bytes().to_vec(),
                    i + 1,
                    &mut totals,
                )
                .await?;
        }
        batch.flush(&client, &a.stream, &mut totals).await?;
        return summary(&a.stream, &totals);
    }
    let (reader, total_bytes): (Box<dyn AsyncBufRead + Unpin>, Option<u64>) = match &a.file {
        Some(p) => {
            let f = tokio::fs::File::open(p)
                .await
                .with_context(|| format!("opening {}", p.display()))?;
            let len = f.metadata().await.ok().map(|m| m.len());
            (
                Box::new(BufReader::with_capacity(READ_BUFFER_BYTES, f)),
                len,
            )
        }
        None => {
            if std::io::stdin().is_terminal() {
                eprintln!("reading records from stdin, one a line; end with Ctrl-D");
            }
            (
                Box::new(BufReader::with_capacity(
                    READ_BUFFER_BYTES,
                    tokio::io::stdin(),
                )),
                None,
            )
        }
    };
    let bar = progress_bar(total_bytes);
    let mut reader = reader;
    let mut line = Vec::new();
    let mut read = 0u64;
    let mut line_no = 0usize;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .await
            .context("reading the input")?;
        if n == 0 {
            break;
        }
        read += n as u64;
        line_no += 1;
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        let k = key(&mut rng);
        let flushed = batch
            .push_or_flush(&client, &a.stream, k, line.clone(), line_no, &mut totals)
            .await?;
        if flushed {
            if let Some(b) = &bar {
                b.set_position(read);
                b.set_message(format!("{} records", totals.records));
            }
        }
    }
    batch.flush(&client, &a.stream, &mut totals).await?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    summary(&a.stream, &totals)
}

/// A progress bar on stderr when it is a terminal: by bytes for a file, a spinner for stdin.
fn progress_bar(total_bytes: Option<u64>) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = match total_bytes {
        Some(len) => ProgressBar::new(len).with_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}) {msg}",
            )
            .ok()?,
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bytes} read {msg}").ok()?,
        ),
    };
    bar.enable_steady_tick(Duration::from_millis(100));
    Some(bar)
}

fn summary(stream: &str, t: &Totals) -> anyhow::Result<()> {
    out_line(
        &mut std::io::stdout(),
        &format!(
            "put {} record{} ({} bytes) to {stream} in {} batch{}, {} retr{}",
            t.records,
            if t.records == 1 { "" } else { "s" },
            t.bytes,
            t.batches,
            if t.batches == 1 { "" } else { "es" },
            t.retries,
            if t.retries == 1 { "y" } else { "ies" },
        ),
    )
}

/// The batch being built: at most [`BATCH_RECORDS_MAX`] records and [`BATCH_BYTES_MAX`] bytes.
#[derive(Default)]
struct Batch {
    entries: Vec<PutRecordsRequestEntry>,
    bytes: usize,
}

impl Batch {
    /// Adds a record, first sending the batch if the record would not fit. Returns whether a
    /// batch was sent.
    async fn push_or_flush(
        &mut self,
        client: &Client,
        stream: &str,
        key: String,
        data: Vec<u8>,
        record_no: usize,
        totals: &mut Totals,
    ) -> anyhow::Result<bool> {
        let size = key.len() + data.len();
        if size > RECORD_BYTES_MAX {
            return Err(anyhow!(
                "record {record_no} is {size} bytes with its partition key; a record holds at \
                 most {RECORD_BYTES_MAX}"
            ));
        }
        let mut flushed = false;
        if self.entries.len() == BATCH_RECORDS_MAX || self.bytes + size > BATCH_BYTES_MAX {
            self.flush(client, stream, totals).await?;
            flushed = true;
        }
        self.entries.push(
            PutRecordsRequestEntry::builder()
                .partition_key(key)
                .data(Blob::new(data))
                .build()?,
        );
        self.bytes += size;
        Ok(flushed)
    }

    /// Sends the batch; the records that fail are sent again with a growing pause, up to
    /// [`RETRIES_MAX`] times.
    async fn flush(
        &mut self,
        client: &Client,
        stream: &str,
        totals: &mut Totals,
    ) -> anyhow::Result<()> {
        if self.entries.is_empty() {
            return Ok(());
        }
        let mut pending = std::mem::take(&mut self.entries);
        self.bytes = 0;
        totals.batches += 1;
        let mut pause = RETRY_PAUSE_MS_MIN;
        let mut attempt = 0u32;
        loop {
            let out = client
                .put_records()
                .stream_name(stream)
                .set_records(Some(pending.clone()))
                .send()
                .await
                .aws("PutRecords")?;
            if out.records().len() != pending.len() {
                return Err(anyhow!(
                    "PutRecords answered {} results for {} records",
                    out.records().len(),
                    pending.len()
                ));
            }
            let mut failed = Vec::new();
            let mut first_error = None;
            for (entry, result) in pending.into_iter().zip(out.records()) {
                match result.error_code() {
                    None => {
                        totals.records += 1;
                        totals.bytes += entry.data().as_ref().len() as u64;
                    }
                    Some(code) => {
                        first_error.get_or_insert_with(|| {
                            format!("{code}: {}", result.error_message().unwrap_or(""))
                        });
                        failed.push(entry);
                    }
                }
            }
            if failed.is_empty() {
                return Ok(());
            }
            if attempt == RETRIES_MAX {
                return Err(anyhow!(
                    "PutRecords: {} records still failed after {RETRIES_MAX} retries ({})",
                    failed.len(),
                    first_error.unwrap_or_default()
                ));
            }
            totals.retries += failed.len() as u64;
            let jittered = rand::thread_rng().gen_range(pause / 2..=pause);
            tokio::time::sleep(Duration::from_millis(jittered)).await;
            pause = (pause * 2).min(RETRY_PAUSE_MS_MAX);
            pending = failed;
            attempt += 1;
        }
    }
}
