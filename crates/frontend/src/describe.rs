//! ListShards, DescribeStream and DescribeStreamSummary, answered from the front-end's own
//! shard map. The map carries every stream's shards (hash ranges, lineage, creation and close
//! times; expired shards are already left out) and its facts (retention, capacity mode,
//! encryption, enhanced monitoring, warm throughput, record size, consumers), so these three
//! operations need no control plane: they keep working through every front-end while the
//! control plane is unreachable (static stability), and the embedded node answers them by the
//! very same code (R5).
//!
//! The answers are AWS's: shapes, pagination (DescribeStream's 100-shard page and
//! `HasMoreShards`; ListShards' `MaxResults`, `NextToken` expiring after 300 s, `ShardFilter`)
//! and error texts. A ListShards `NextToken` is this module's own encoding
//! (`base64url("<issued ms>/<shard index>/<stream>")`, see [`list_token_stream`]), so any
//! front-end continues a listing another one began.
//!
//! Pure: the map, the caller's identity and the time go in, a response or an error comes out.

use base64::Engine as _;
use levee_map::arn::parse_stream_arn;
use levee_map::seqnum::{SequenceNumber, EPOCH_SECS_MAX};
use levee_map::{ShardId, ShardMap, ShardRoute, StreamRoute, StreamState};
use levee_protocol::types::{
    self, DescribeStreamInput, DescribeStreamOutput, DescribeStreamSummaryInput,
    DescribeStreamSummaryOutput, HashKeyRange, ListShardsInput, ListShardsOutput,
    SequenceNumberRange, ShardFilter, ShardFilterType, StreamDescription, StreamDescriptionSummary,
    StreamModeDetails,
};
use levee_protocol::{ApiError, ErrorKind, Timestamp};

use crate::dataplane::Identity;

/// DescribeStream returns at most this many shards per call.
pub const DESCRIBE_SHARDS_MAX: usize = 100;
/// ListShards returns at most this many shards per call.
pub const LIST_SHARDS_MAX: usize = 1000;
/// ListShards' NextToken expires after this long (AWS: 300 s).
pub const NEXT_TOKEN_TTL_MS: u64 = 300_000;
/// Milliseconds in an hour (retention is kept in hours).
const HOUR_MS: u64 = 3_600_000;

/// The three operations over one map, for one account and region.
pub struct Describe<'a> {
    pub identity: &'a Identity,
    pub map: &'a ShardMap,
}

impl Describe<'_> {
    /// A stream by name, any state; AWS's not-found error otherwise.
    fn by_name(&self, name: &str) -> Result<&StreamRoute, ApiError> {
        self.map
            .stream(name)
            .map(|s| &**s)
            .ok_or_else(|| not_found(name, &self.identity.account_id))
    }

    /// A stream by ARN (a request's `StreamARN`). A malformed ARN is a ValidationException, a
    /// consumer ARN an InvalidArgumentException; one of another partition, account or region
    /// is not found (under the ARN's account).
    fn by_arn(&self, arn: &str) -> Result<&StreamRoute, ApiError> {
        let Some(parsed) = parse_stream_arn(arn) else {
            if arn.contains("/consumer/") {
                return Err(ApiError::invalid_argument(format!(
                    "Resource {arn} is a consumer; only stream ARNs are supported."
                )));
            }
            return Err(ApiError::new(
                ErrorKind::Validation,
                format!(
                    "1 validation error detected: Value '{arn}' at 'streamARN' failed to satisfy \
                     constraint: Member must satisfy regular expression pattern: \
                     arn:aws.*:kinesis:.*:\\d{{12}}:stream/\\S+"
                ),
            ));
        };
        let here = parsed.partition == "aws"
            && parsed.region == self.identity.region
            && parsed.account == self.identity.account_id;
        match self.map.stream(parsed.name) {
            Some(s) if here => Ok(s),
            _ => Err(not_found(parsed.name, parsed.account)),
        }
    }

    /// The stream a request names by `StreamName` (which wins) or `StreamARN`.
    fn resolve(&self, name: Option<&str>, arn: Option<&str>) -> Result<&StreamRoute, ApiError> {
        match (name, arn) {
            (Some(n), _) => self.by_name(n),
            (None, Some(a)) => self.by_arn(a),
            (None, None) => Err(ApiError::invalid_argument(
                "Either StreamName or StreamARN should be provided.",
            )),
        }
    }

    pub fn describe_stream(
        &self,
        r: &DescribeStreamInput,
    ) -> Result<DescribeStreamOutput, ApiError> {
        let s = self.resolve(r.stream_name.as_deref(), r.stream_arn.as_deref())?;
        let limit = r
            .limit
            .and_then(|l| usize::try_from(l).ok())
            .unwrap_or(DESCRIBE_SHARDS_MAX)
            .clamp(1, DESCRIBE_SHARDS_MAX);
        let after = r
            .exclusive_start_shard_id
            .as_deref()
            .and_then(ShardId::parse);
        // AWS lists no shards while a stream is CREATING; expired shards are not in the map.
        let rest: Vec<&ShardRoute> = if s.state == StreamState::Creating {
            Vec::new()
        } else {
            shards_after(s, after).collect()
        };
        let (encryption_type, key_id) = encryption(s);
        Ok(DescribeStreamOutput {
            stream_description: StreamDescription {
                stream_name: s.name.clone(),
                stream_arn: self.identity.stream_arn(&s.name),
                stream_status: status(s.state),
                stream_mode_details: Some(mode(s)),
                shards: rest.iter().take(limit).map(|sh| shard_shape(sh)).collect(),
                has_more_shards: rest.len() > limit,
                retention_period_hours: int(s.facts.retention_hours),
                stream_creation_timestamp: Timestamp(s.facts.created_ms),
                enhanced_monitoring: monitoring(s),
                encryption_type,
                key_id,
            },
        })
    }

    pub fn describe_stream_summary(
        &self,
        r: &DescribeStreamSummaryInput,
    ) -> Result<DescribeStreamSummaryOutput, ApiError> {
        let s = self.resolve(r.stream_name.as_deref(), r.stream_arn.as_deref())?;
        let (encryption_type, key_id) = encryption(s);
        let open = s.shards.iter().filter(|sh| sh.open).count();
        Ok(DescribeStreamSummaryOutput {
            stream_description_summary: StreamDescriptionSummary {
                stream_name: s.name.clone(),
                stream_arn: self.identity.stream_arn(&s.name),
                stream_id: None,
                stream_status: status(s.state),
                stream_mode_details: Some(mode(s)),
                retention_period_hours: int(s.facts.retention_hours),
                stream_creation_timestamp: Timestamp(s.facts.created_ms),
                enhanced_monitoring: monitoring(s),
                encryption_type,
                key_id,
                open_shard_count: i32::try_from(open).unwrap_or(i32::MAX),
                // Registered consumers in any state.
                consumer_count: Some(i32::try_from(s.facts.consumers.len()).unwrap_or(i32::MAX)),
                warm_throughput: s
                    .facts
                    .warm_throughput_mibps
                    .map(|t| types::WarmThroughput {
                        target_mibps: i32::try_from(t).ok(),
                        current_mibps: i32::try_from(t).ok(),
                    }),
                max_record_size_in_kib: i32::try_from(s.facts.max_record_kib).ok(),
            },
        })
    }

    /// ListShards at `now_ms` (the token's issue time and expiry, the trim horizon).
    pub fn list_shards(
        &self,
        r: &ListShardsInput,
        now_ms: u64,
    ) -> Result<ListShardsOutput, ApiError> {
        let (s, after) = match (&r.next_token, &r.stream_name, &r.stream_arn) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(ApiError::invalid_argument(
                    "NextToken and StreamName cannot be provided together.",
                ))
            }
            (Some(t), None, None) => {
                let (name, index, issued) = decode_list_token(t)
                    .ok_or_else(|| ApiError::invalid_argument(format!("Invalid NextToken: {t}")))?;
                if now_ms.saturating_sub(issued) > NEXT_TOKEN_TTL_MS {
                    return Err(ApiError::new(
                        ErrorKind::ExpiredNextToken,
                        format!("The timestamp in the NextToken has expired: {t}"),
                    ));
                }
                (self.by_name(&name)?, Some(ShardId(index)))
            }
            (None, None, None) => {
                // AWS's text for ListShards (recorded in kinesalite's test/listShards.js).
                return Err(ApiError::invalid_argument(
                    "Either NextToken or StreamName should be provided.",
                ));
            }
            (None, n, a) => {
                let s = self.resolve(n.as_deref(), a.as_deref())?;
                let after = r
                    .exclusive_start_shard_id
                    .as_deref()
                    .and_then(ShardId::parse);
                (s, after)
            }
        };
        if let Some(f) = &r.shard_filter {
            let needs_id = f.r#type == ShardFilterType::AfterShardId && f.shard_id.is_none();
            let needs_time = matches!(
                f.r#type,
                ShardFilterType::AtTimestamp | ShardFilterType::FromTimestamp
            ) && f.timestamp.is_none();
            if needs_id || needs_time {
                return Err(ApiError::invalid_argument(format!(
                    "ShardFilter of type {} requires {}.",
                    f.r#type.as_str(),
                    if needs_id { "ShardId" } else { "Timestamp" }
                )));
            }
        }
        // The trim horizon: the oldest data still retained, never before the stream began (its
        // first shards are created with it).
        let retention_ms = u64::from(s.facts.retention_hours).saturating_mul(HOUR_MS);
        let trim_horizon_ms = now_ms.saturating_sub(retention_ms).max(s.facts.created_ms);
        let filter_after = r
            .shard_filter
            .as_ref()
            .filter(|f| f.r#type == ShardFilterType::AfterShardId)
            .and_then(|f| f.shard_id.as_deref())
            .and_then(ShardId::parse);
        let start = after.max(filter_after);
        let limit = r
            .max_results
            .and_then(|l| usize::try_from(l).ok())
            .unwrap_or(LIST_SHARDS_MAX)
            .clamp(1, LIST_SHARDS_MAX);
        let candidates: Vec<&ShardRoute> = shards_after(s, start)
            .filter(|sh| filter_selects(sh, r.shard_filter.as_ref(), trim_horizon_ms))
            .collect();
        let next_token = (candidates.len() > limit)
            .then(|| {
                candidates
                    .get(limit - 1)
                    .map(|last| encode_list_token(&s.name, last.shard_id.0, now_ms))
            })
            .flatten();
        Ok(ListShardsOutput {
            shards: Some(
                candidates
                    .iter()
                    .take(limit)
                    .map(|sh| shard_shape(sh))
                    .collect(),
            ),
            next_token,
        })
    }
}

/// AWS's stream-not-found error.
fn not_found(name: &str, account: &str) -> ApiError {
    ApiError::stream_not_found(name, account)
}

/// The shards after `exclusive_start`, in id order (the map holds no expired shards).
fn shards_after(
    s: &StreamRoute,
    exclusive_start: Option<ShardId>,
) -> impl Iterator<Item = &ShardRoute> + '_ {
    s.shards
        .iter()
        .filter(move |sh| exclusive_start.is_none_or(|start| sh.shard_id > start))
}

/// Whether a shard is selected by a ListShards filter, given the stream's trim horizon. Times
/// earlier than the trim horizon are corrected to it, as AWS documents for FROM_TIMESTAMP (and
/// here for AT_TIMESTAMP too, so a timestamp before the stream names its first shards).
fn filter_selects(sh: &ShardRoute, filter: Option<&ShardFilter>, trim_horizon_ms: u64) -> bool {
    let open_at = |t: u64| sh.created_ms <= t && sh.closed_ms.is_none_or(|c| c >= t);
    let Some(f) = filter else {
        return true;
    };
    let at = |ts: Option<Timestamp>| ts.map_or(0, |t| t.millis()).max(trim_horizon_ms);
    match f.r#type {
        ShardFilterType::AtLatest => sh.open,
        ShardFilterType::AtTrimHorizon => open_at(trim_horizon_ms),
        ShardFilterType::AtTimestamp => open_at(at(f.timestamp)),
        ShardFilterType::FromTimestamp => sh.closed_ms.is_none_or(|c| c >= at(f.timestamp)),
        ShardFilterType::FromTrimHorizon | ShardFilterType::AfterShardId => true,
    }
}

/// Epoch seconds of a time in ms, within what a sequence number can hold.
fn secs(ms: u64) -> u64 {
    (ms / 1000).min(EPOCH_SECS_MAX)
}

/// A shard as DescribeStream and ListShards show it.
fn shard_shape(s: &ShardRoute) -> types::Shard {
    let created = secs(s.created_ms);
    types::Shard {
        shard_id: s.shard_id.to_string(),
        parent_shard_id: s.parent.map(|p| p.to_string()),
        adjacent_parent_shard_id: s.adjacent_parent.map(|p| p.to_string()),
        hash_key_range: HashKeyRange {
            starting_hash_key: s.hash_range.start.to_string(),
            ending_hash_key: s.hash_range.end.to_string(),
        },
        sequence_number_range: SequenceNumberRange {
            starting_sequence_number: SequenceNumber::new(created, s.shard_id.0, 0, created)
                .to_decimal(),
            // AWS's closed-shard form: the maximum sequence index, stamped with the close time.
            ending_sequence_number: s.closed_ms.map(|closed| {
                SequenceNumber::ending(created, s.shard_id.0, secs(closed)).to_decimal()
            }),
        },
    }
}

fn int(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

fn status(s: StreamState) -> types::StreamStatus {
    match s {
        StreamState::Creating => types::StreamStatus::Creating,
        StreamState::Active => types::StreamStatus::Active,
        StreamState::Updating => types::StreamStatus::Updating,
        StreamState::Deleting => types::StreamStatus::Deleting,
    }
}

fn mode(s: &StreamRoute) -> StreamModeDetails {
    StreamModeDetails {
        stream_mode: if s.facts.on_demand {
            types::StreamMode::OnDemand
        } else {
            types::StreamMode::Provisioned
        },
    }
}

/// `EncryptionType` and `KeyId`: `KMS` with the key while encrypted at rest, else `NONE`.
fn encryption(s: &StreamRoute) -> (Option<types::EncryptionType>, Option<String>) {
    match &s.facts.key_id {
        // The model's KeyId is never empty: an empty one stands for none.
        Some(k) => (
            Some(types::EncryptionType::Kms),
            (!k.is_empty()).then(|| k.clone()),
        ),
        None => (Some(types::EncryptionType::None), None),
    }
}

/// DescribeStream's and DescribeStreamSummary's `EnhancedMonitoring`: one entry with the
/// enabled shard-level metrics (the map keeps them by AWS's names, in the catalog's order).
fn monitoring(s: &StreamRoute) -> Vec<types::EnhancedMetrics> {
    vec![types::EnhancedMetrics {
        shard_level_metrics: s
            .facts
            .shard_level_metrics
            .iter()
            .filter_map(|m| {
                types::MetricsName::ALL
                    .iter()
                    .copied()
                    .find(|n| n.as_str() == m)
            })
            .collect(),
    }]
}

fn encode_list_token(stream: &str, index: u32, issued_ms: u64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{issued_ms}/{index}/{stream}"))
}

fn decode_list_token(t: &str) -> Option<(String, u32, u64)> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let mut parts = text.splitn(3, '/');
    let issued = parts.next()?.parse().ok()?;
    let index = parts.next()?.parse().ok()?;
    let name = parts.next()?.to_owned();
    Some((name, index, issued))
}

/// The stream a ListShards `NextToken` continues (so a call by token is authorized against
/// that stream's policy); `None` for a token that does not decode.
pub fn list_token_stream(token: &str) -> Option<String> {
    decode_list_token(token).map(|(name, _, _)| name)
}

#[cfg(test)]
#[path = "describe_tests.rs"]
mod tests;
