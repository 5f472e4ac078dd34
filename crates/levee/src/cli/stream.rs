//! `levee stream create|list|describe|delete|reshard`: stream lifecycle and resharding from the
//! terminal. Commands that change a stream wait until it settles (ACTIVE, or gone) unless told
//! `--no-wait`, so a script can use the stream on the next line.

use anyhow::{anyhow, Context};
use aws_sdk_kinesis::types::{ScalingType, Shard, StreamMode, StreamModeDetails};
use aws_sdk_kinesis::Client;
use clap::{ArgGroup, Args, Subcommand};
use serde_json::{json, Value};

use super::{connect, out_line, rfc3339, wait_for_stream, AwsResultExt, ConnArgs, CONN_HELP};

/// Streams per ListStreams call.
const LIST_STREAMS_PAGE_MAX: i32 = 100;
/// Shards per ListShards call (AWS's maximum).
const LIST_SHARDS_PAGE_MAX: i32 = 1_000;

#[derive(Args)]
#[command(after_help = CONN_HELP)]
pub struct StreamArgs {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(subcommand)]
    cmd: StreamCmd,
}

#[derive(Subcommand)]
enum StreamCmd {
    /// Create a stream and wait until it is ACTIVE.
    #[command(after_help = CONN_HELP)]
    Create(CreateArgs),
    /// List the streams, one name a line.
    #[command(after_help = CONN_HELP)]
    List(ListArgs),
    /// Show a stream and its shards.
    #[command(after_help = CONN_HELP)]
    Describe(DescribeArgs),
    /// Delete a stream and wait until it is gone.
    #[command(after_help = CONN_HELP)]
    Delete(DeleteArgs),
    /// Change a stream's shards (UpdateShardCount, SplitShard or MergeShards) and wait until it
    /// is ACTIVE again.
    #[command(after_help = CONN_HELP)]
    Reshard(ReshardArgs),
}

#[derive(Args)]
struct CreateArgs {
    /// The stream's name.
    name: String,
    /// The number of shards (a provisioned stream). [default: 1]
    #[arg(long, conflicts_with = "on_demand")]
    shards: Option<i32>,
    /// An on-demand stream (the service chooses the shards).
    #[arg(long)]
    on_demand: bool,
    /// Return at once, while the stream is still CREATING.
    #[arg(long)]
    no_wait: bool,
}

#[derive(Args)]
struct ListArgs {
    /// Print a JSON array of the stream summaries instead of names.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct DescribeArgs {
    /// The stream's name.
    name: String,
    /// Print JSON (DescribeStreamSummary's fields and every shard) instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct DeleteArgs {
    /// The stream's name.
    name: String,
    /// Delete even if the stream has registered consumers (they are deregistered).
    #[arg(long)]
    force: bool,
    /// Return at once, while the stream is still DELETING.
    #[arg(long)]
    no_wait: bool,
}

#[derive(Args)]
#[command(group(ArgGroup::new("how").required(true).args(["shards", "split", "merge"])))]
struct ReshardArgs {
    /// The stream's name.
    name: String,
    /// The target number of open shards (UpdateShardCount, UNIFORM_SCALING).
    #[arg(long)]
    shards: Option<i32>,
    /// Split this shard (SplitShard), by default at the middle of its hash-key range.
    #[arg(long, value_name = "SHARD")]
    split: Option<String>,
    /// With --split: the first hash key of the new upper child (decimal).
    #[arg(long, value_name = "HASH_KEY", requires = "split")]
    at: Option<String>,
    /// Merge two adjacent shards (MergeShards).
    #[arg(long, num_args = 2, value_names = ["SHARD", "ADJACENT_SHARD"])]
    merge: Option<Vec<String>>,
    /// Return at once, while the stream is still UPDATING.
    #[arg(long)]
    no_wait: bool,
}

pub async fn run(args: StreamArgs) -> anyhow::Result<()> {
    let client = connect(&args.conn).await?;
    match args.cmd {
        StreamCmd::Create(a) => create(&client, a).await,
        StreamCmd::List(a) => list(&client, a).await,
        StreamCmd::Describe(a) => describe(&client, a).await,
        StreamCmd::Delete(a) => delete(&client, a).await,
        StreamCmd::Reshard(a) => reshard(&client, a).await,
    }
}

async fn create(client: &Client, a: CreateArgs) -> anyhow::Result<()> {
    let mut req = client.create_stream().stream_name(&a.name);
    if a.on_demand {
        req = req.stream_mode_details(
            StreamModeDetails::builder()
                .stream_mode(StreamMode::OnDemand)
                .build()?,
        );
    } else {
        req = req.shard_count(a.shards.unwrap_or(1));
    }
    req.send().await.aws("CreateStream")?;
    let mut out = std::io::stdout();
    if a.no_wait {
        return out_line(&mut out, &format!("stream {} CREATING", a.name));
    }
    wait_for_stream(client, &a.name, false).await?;
    out_line(&mut out, &settled_line(client, &a.name).await?)
}

/// "stream NAME ACTIVE, N open shards".
async fn settled_line(client: &Client, name: &str) -> anyhow::Result<String> {
    let out = client
        .describe_stream_summary()
        .stream_name(name)
        .send()
        .await
        .aws("DescribeStreamSummary")?;
    let s = out
        .stream_description_summary()
        .ok_or_else(|| anyhow!("DescribeStreamSummary: no StreamDescriptionSummary"))?;
    let n = s.open_shard_count();
    Ok(format!(
        "stream {name} {}, {n} open shard{}",
        s.stream_status().as_str(),
        if n == 1 { "" } else { "s" }
    ))
}

async fn list(client: &Client, a: ListArgs) -> anyhow::Result<()> {
    let mut names = Vec::new();
    let mut summaries = Vec::new();
    let mut next_token: Option<String> = None;
    loop {
        let mut req = client.list_streams().limit(LIST_STREAMS_PAGE_MAX);
        if let Some(t) = &next_token {
            req = req.next_token(t);
        } else if let Some(last) = names.last() {
            req = req.exclusive_start_stream_name(last);
        }
        let out = req.send().await.aws("ListStreams")?;
        names.extend(out.stream_names().iter().cloned());
        summaries.extend(out.stream_summaries().iter().map(|s| {
            json!({
                "StreamName": s.stream_name(),
                "StreamARN": s.stream_arn(),
                "StreamStatus": s.stream_status().as_str(),
                "StreamMode": s.stream_mode_details().map(|m| m.stream_mode().as_str()),
                "StreamCreationTimestamp": s.stream_creation_timestamp().map(rfc3339),
            })
        }));
        if !out.has_more_streams() || out.stream_names().is_empty() {
            break;
        }
        next_token = out.next_token().map(str::to_owned);
    }
    let mut out = std::io::stdout();
    if a.json {
        let v = if summaries.len() == names.len() {
            Value::Array(summaries)
        } else {
            json!(names
                .iter()
                .map(|n| json!({ "StreamName": n }))
                .collect::<Vec<_>>())
        };
        return out_line(&mut out, &serde_json::to_string_pretty(&v)?);
    }
    for n in &names {
        out_line(&mut out, n)?;
    }
    Ok(())
}

/// Every shard of the stream (open and closed), through ListShards' pages.
pub async fn list_all_shards(client: &Client, name: &str) -> anyhow::Result<Vec<Shard>> {
    let mut shards = Vec::new();
    let mut next_token: Option<String> = None;
    loop {
        let req = client.list_shards().max_results(LIST_SHARDS_PAGE_MAX);
        let req = match &next_token {
            Some(t) => req.next_token(t),
            None => req.stream_name(name),
        };
        let out = req.send().await.aws("ListShards")?;
        shards.extend(out.shards().iter().cloned());
        match out.next_token() {
            Some(t) if !out.shards().is_empty() => next_token = Some(t.to_owned()),
            _ => return Ok(shards),
        }
    }
}

/// A shard's hash-key range as (start, end).
fn hash_range(s: &Shard) -> anyhow::Result<(u128, u128)> {
    let r = s
        .hash_key_range()
        .ok_or_else(|| anyhow!("shard {} has no HashKeyRange", s.shard_id()))?;
    let parse = |k: &str| {
        k.parse::<u128>()
            .with_context(|| format!("shard {}: bad hash key {k:?}", s.shard_id()))
    };
    Ok((parse(r.starting_hash_key())?, parse(r.ending_hash_key())?))
}

/// Whether the shard is open (has no ending sequence number).
pub fn is_open(s: &Shard) -> bool {
    s.sequence_number_range()
        .is_none_or(|r| r.ending_sequence_number().is_none())
}

async fn describe(client: &Client, a: DescribeArgs) -> anyhow::Result<()> {
    let summary = client
        .describe_stream_summary()
        .stream_name(&a.name)
        .send()
        .await
        .aws("DescribeStreamSummary")?;
    let s = summary
        .stream_description_summary()
        .ok_or_else(|| anyhow!("DescribeStreamSummary: no StreamDescriptionSummary"))?;
    let shards = list_all_shards(client, &a.name).await?;
    let mut out = std::io::stdout();
    let mode = s
        .stream_mode_details()
        .map(|m| m.stream_mode().as_str())
        .unwrap_or("PROVISIONED");
    let encryption = s.encryption_type().map(|e| e.as_str()).unwrap_or("NONE");
    if a.json {
        let shards: Vec<Value> = shards
            .iter()
            .map(|sh| {
                json!({
                    "ShardId": sh.shard_id(),
                    "ParentShardId": sh.parent_shard_id(),
                    "AdjacentParentShardId": sh.adjacent_parent_shard_id(),
                    "HashKeyRange": sh.hash_key_range().map(|r| json!({
                        "StartingHashKey": r.starting_hash_key(),
                        "EndingHashKey": r.ending_hash_key(),
                    })),
                    "SequenceNumberRange": sh.sequence_number_range().map(|r| json!({
                        "StartingSequenceNumber": r.starting_sequence_number(),
                        "EndingSequenceNumber": r.ending_sequence_number(),
                    })),
                })
            })
            .collect();
        let v = json!({
            "StreamName": s.stream_name(),
            "StreamARN": s.stream_arn(),
            "StreamStatus": s.stream_status().as_str(),
            "StreamMode": mode,
            "StreamCreationTimestamp": rfc3339(s.stream_creation_timestamp()),
            "RetentionPeriodHours": s.retention_period_hours(),
            "EncryptionType": encryption,
            "KeyId": s.key_id(),
            "OpenShardCount": s.open_shard_count(),
            "ConsumerCount": s.consumer_count(),
            "Shards": shards,
        });
        return out_line(&mut out, &serde_json::to_string_pretty(&v)?);
    }
    let fields = [
        ("Stream", s.stream_name().to_owned()),
        ("ARN", s.stream_arn().to_owned()),
        ("Status", s.stream_status().as_str().to_owned()),
        ("Mode", mode.to_owned()),
        ("Created", rfc3339(s.stream_creation_timestamp())),
        ("Retention", format!("{} h", s.retention_period_hours())),
        ("Encryption", encryption.to_owned()),
        ("Open shards", s.open_shard_count().to_string()),
        (
            "Consumers",
            s.consumer_count()
                .map_or_else(|| "-".to_owned(), |c| c.to_string()),
        ),
    ];
    for (k, v) in fields {
        out_line(&mut out, &format!("{k:<12} {v}"))?;
    }
    out_line(&mut out, "")?;
    let rows: Vec<[String; 4]> = shards
        .iter()
        .map(|sh| {
            let parents = [sh.parent_shard_id(), sh.adjacent_parent_shard_id()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(",");
            let range = match hash_range(sh) {
                Ok((lo, hi)) => format!("{:>6.2}% – {:>6.2}%", percent(lo), percent(hi)),
                Err(_) => "?".to_owned(),
            };
            [
                sh.shard_id().to_owned(),
                if is_open(sh) { "open" } else { "closed" }.to_owned(),
                if parents.is_empty() {
                    "-".into()
                } else {
                    parents
                },
                range,
            ]
        })
        .collect();
    let header = ["SHARD", "STATE", "PARENTS", "HASH KEYS"];
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: [&str; 4]| {
        format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {}",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        )
    };
    out_line(&mut out, line(header).trim_end())?;
    for r in &rows {
        out_line(
            &mut out,
            line([r[0].as_str(), r[1].as_str(), r[2].as_str(), r[3].as_str()]).trim_end(),
        )?;
    }
    Ok(())
}

/// A hash key as a percentage of the 128-bit key space.
fn percent(k: u128) -> f64 {
    k as f64 / u128::MAX as f64 * 100.0
}

async fn delete(client: &Client, a: DeleteArgs) -> anyhow::Result<()> {
    client
        .delete_stream()
        .stream_name(&a.name)
        .enforce_consumer_deletion(a.force)
        .send()
        .await
        .aws("DeleteStream")?;
    let mut out = std::io::stdout();
    if a.no_wait {
        return out_line(&mut out, &format!("stream {} DELETING", a.name));
    }
    wait_for_stream(client, &a.name, true).await?;
    out_line(&mut out, &format!("stream {} deleted", a.name))
}

/// The first hash key of the upper child when splitting `[lo, hi]` in the middle.
fn split_point(lo: u128, hi: u128) -> Option<u128> {
    (hi > lo).then(|| lo + (hi - lo) / 2 + 1)
}

async fn reshard(client: &Client, a: ReshardArgs) -> anyhow::Result<()> {
    if let Some(n) = a.shards {
        client
            .update_shard_count()
            .stream_name(&a.name)
            .target_shard_count(n)
            .scaling_type(ScalingType::UniformScaling)
            .send()
            .await
            .aws("UpdateShardCount")?;
    } else if let Some(shard) = &a.split {
        let at = match &a.at {
            Some(k) => k.clone(),
            None => {
                let shards = list_all_shards(client, &a.name).await?;
                let sh = shards
                    .iter()
                    .find(|s| s.shard_id() == shard.as_str())
                    .ok_or_else(|| anyhow!("stream {} has no shard {shard}", a.name))?;
                let (lo, hi) = hash_range(sh)?;
                split_point(lo, hi)
                    .ok_or_else(|| anyhow!("shard {shard} covers one hash key; it cannot split"))?
                    .to_string()
            }
        };
        client
            .split_shard()
            .stream_name(&a.name)
            .shard_to_split(shard)
            .new_starting_hash_key(at)
            .send()
            .await
            .aws("SplitShard")?;
    } else if let Some([x, y]) = a.merge.as_deref() {
        client
            .merge_shards()
            .stream_name(&a.name)
            .shard_to_merge(x)
            .adjacent_shard_to_merge(y)
            .send()
            .await
            .aws("MergeShards")?;
    } else {
        return Err(anyhow!("give --shards N, --split SHARD or --merge A B"));
    }
    let mut out = std::io::stdout();
    if a.no_wait {
        return out_line(&mut out, &format!("stream {} UPDATING", a.name));
    }
    wait_for_stream(client, &a.name, false).await?;
    out_line(&mut out, &settled_line(client, &a.name).await?)
}

#[cfg(test)]
mod tests {
    use super::split_point;

    #[test]
    fn split_points() {
        assert_eq!(split_point(0, u128::MAX), Some(1 << 127));
        assert_eq!(split_point(0, 1), Some(1));
        assert_eq!(split_point(10, 20), Some(16));
        assert_eq!(split_point(5, 5), None);
        assert_eq!(split_point(u128::MAX - 1, u128::MAX), Some(u128::MAX));
    }
}
