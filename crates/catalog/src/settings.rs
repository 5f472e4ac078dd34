//! Per-stream and account settings that route no data: capacity mode (UpdateStreamMode), warm
//! throughput (UpdateStreamWarmThroughput), `MaxRecordSizeInKiB` (UpdateMaxRecordSize), enhanced
//! shard-level monitoring (Enable/DisableEnhancedMonitoring), server-side encryption
//! (Start/StopStreamEncryption), resource policies on streams and consumers, and the account's
//! minimum throughput billing commitment (UpdateAccountSettings).
//!
//! Mode, warm throughput and encryption changes take the stream ACTIVE → UPDATING, as AWS does;
//! the server's FinishUpdate brings it back. The others take effect at once. The catalog holds
//! only wrapped data keys: the control plane generates a key and wraps it under the master key
//! before the command is logged, so the catalog stays free of randomness and the plaintext key
//! never enters the (on-disk) Raft log or snapshot.
//!
//! Texts are Levee's own where no AWS recording was found (marked so).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::{
    consumers::parse_consumer_arn, parse_stream_arn, policy, stream_mut, Catalog, CatalogError,
    EncryptionType, Outcome, Stream, StreamMode, StreamStatus,
};

/// `MaxRecordSizeInKiB` of a new stream (1 MiB, AWS's default).
pub const MAX_RECORD_SIZE_KIB_DEFAULT: u32 = 1024;
/// Smallest `MaxRecordSizeInKiB` (model constraint).
pub const MAX_RECORD_SIZE_KIB_MIN: u32 = 1024;
/// Largest `MaxRecordSizeInKiB`: 10 MiB (model constraint).
pub const MAX_RECORD_SIZE_KIB_MAX: u32 = 10240;
/// ON_DEMAND streams an account may have (AWS's default quota).
pub const ON_DEMAND_STREAMS_MAX: u32 = 50;
/// Largest warm throughput target, MiB/s (AWS's on-demand ceiling in its largest regions:
/// 10 GiB/s). Levee's choice of cap: the model gives none.
pub const WARM_THROUGHPUT_MIBPS_MAX: u32 = 10240;
/// A minimum throughput billing commitment lasts at least this long once enabled (Levee's
/// choice, 24 hours: AWS reports an `EarliestAllowedEndAt` but documents no fixed value).
pub const BILLING_COMMITMENT_MIN_MS: u64 = 24 * 3_600_000;
/// Bytes of a `KeyId` (model constraint).
pub const KEY_ID_BYTES_MAX: usize = 2048;

pub(crate) fn max_record_size_kib_default() -> u32 {
    MAX_RECORD_SIZE_KIB_DEFAULT
}

/// One enhanced shard-level metric, as AWS names it (`ALL` is only an input).
///
/// Levee's series for each (exported by the metrics endpoint, labelled by stream and shard):
/// IncomingBytes → `levee_shard_incoming_bytes_total`, IncomingRecords →
/// `levee_shard_incoming_records_total`, OutgoingBytes → `levee_shard_outgoing_bytes_total`,
/// OutgoingRecords → `levee_shard_outgoing_records_total`, WriteProvisionedThroughputExceeded
/// → `levee_shard_write_throttled_total`, ReadProvisionedThroughputExceeded →
/// `levee_shard_read_throttled_total`, IteratorAgeMilliseconds →
/// `levee_shard_iterator_age_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ShardLevelMetric {
    IncomingBytes,
    IncomingRecords,
    OutgoingBytes,
    OutgoingRecords,
    WriteProvisionedThroughputExceeded,
    ReadProvisionedThroughputExceeded,
    IteratorAgeMilliseconds,
    #[serde(rename = "ALL")]
    All,
}

impl ShardLevelMetric {
    /// The seven real metrics, in the model's order.
    pub const EACH: [ShardLevelMetric; 7] = [
        ShardLevelMetric::IncomingBytes,
        ShardLevelMetric::IncomingRecords,
        ShardLevelMetric::OutgoingBytes,
        ShardLevelMetric::OutgoingRecords,
        ShardLevelMetric::WriteProvisionedThroughputExceeded,
        ShardLevelMetric::ReadProvisionedThroughputExceeded,
        ShardLevelMetric::IteratorAgeMilliseconds,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ShardLevelMetric::IncomingBytes => "IncomingBytes",
            ShardLevelMetric::IncomingRecords => "IncomingRecords",
            ShardLevelMetric::OutgoingBytes => "OutgoingBytes",
            ShardLevelMetric::OutgoingRecords => "OutgoingRecords",
            ShardLevelMetric::WriteProvisionedThroughputExceeded => {
                "WriteProvisionedThroughputExceeded"
            }
            ShardLevelMetric::ReadProvisionedThroughputExceeded => {
                "ReadProvisionedThroughputExceeded"
            }
            ShardLevelMetric::IteratorAgeMilliseconds => "IteratorAgeMilliseconds",
            ShardLevelMetric::All => "ALL",
        }
    }

    pub fn parse(s: &str) -> Option<ShardLevelMetric> {
        Self::EACH
            .iter()
            .copied()
            .chain([ShardLevelMetric::All])
            .find(|m| m.as_str() == s)
    }
}

/// A stream's data key, wrapped under the master key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataKey {
    /// 1, 2, …: records name the key that sealed them by this number.
    pub version: u32,
    /// The wrapped key, hex.
    pub wrapped_hex: String,
    /// The fingerprint of the master key that wrapped it (names the key needed to read).
    pub master_fingerprint: String,
}

/// The minimum throughput billing commitment's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingCommitment {
    pub started_ms: u64,
    /// When it ends or ended (the disable request's time, raised to the earliest allowed end);
    /// `None` while enabled.
    pub ends_ms: Option<u64>,
}

/// What DescribeAccountSettings reports about the commitment at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BillingStatus {
    Enabled,
    Disabled,
    EnabledUntilEarliestAllowedEnd,
}

impl BillingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BillingStatus::Enabled => "ENABLED",
            BillingStatus::Disabled => "DISABLED",
            BillingStatus::EnabledUntilEarliestAllowedEnd => "ENABLED_UNTIL_EARLIEST_ALLOWED_END",
        }
    }
}

/// Account-level settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSettings {
    #[serde(default)]
    pub commitment: Option<BillingCommitment>,
}

impl AccountSettings {
    /// The commitment's status at `now_ms`, with its start, its end and its earliest allowed end.
    pub fn billing(&self, now_ms: u64) -> (BillingStatus, Option<&BillingCommitment>) {
        match &self.commitment {
            None => (BillingStatus::Disabled, None),
            Some(c) => match c.ends_ms {
                None => (BillingStatus::Enabled, Some(c)),
                Some(end) if end > now_ms => {
                    (BillingStatus::EnabledUntilEarliestAllowedEnd, Some(c))
                }
                Some(_) => (BillingStatus::Disabled, Some(c)),
            },
        }
    }
}

impl BillingCommitment {
    pub fn earliest_allowed_end_ms(&self) -> u64 {
        self.started_ms.saturating_add(BILLING_COMMITMENT_MIN_MS)
    }
}

/// The setting invariants of one stream.
pub(crate) fn check_settings(s: &Stream) -> Result<(), String> {
    let n = &s.name;
    if !(MAX_RECORD_SIZE_KIB_MIN..=MAX_RECORD_SIZE_KIB_MAX).contains(&s.max_record_size_kib) {
        return Err(format!(
            "stream {n} has MaxRecordSizeInKiB {}",
            s.max_record_size_kib
        ));
    }
    if s.shard_level_metrics.contains(&ShardLevelMetric::All) {
        return Err(format!("stream {n} stores ALL as a metric"));
    }
    if s.encryption == EncryptionType::Kms && (s.data_keys.is_empty() || s.key_id.is_none()) {
        return Err(format!(
            "stream {n} is encrypted without a data key or KeyId"
        ));
    }
    for (i, k) in s.data_keys.iter().enumerate() {
        if usize::try_from(k.version).ok() != i.checked_add(1) {
            return Err(format!(
                "stream {n}: data key {i} has version {}",
                k.version
            ));
        }
    }
    if s.warm_throughput_mibps.is_some() && s.mode != StreamMode::OnDemand {
        return Err(format!(
            "stream {n} has warm throughput but is not ON_DEMAND"
        ));
    }
    Ok(())
}

impl Catalog {
    /// Streams in ON_DEMAND mode (DescribeLimits' `OnDemandStreamCount`).
    pub fn on_demand_stream_count(&self) -> u32 {
        let n = self
            .state
            .streams
            .values()
            .filter(|s| s.mode == StreamMode::OnDemand)
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    pub(crate) fn on_demand_limit_check(&self) -> Result<(), CatalogError> {
        let count = self.on_demand_stream_count();
        if count >= ON_DEMAND_STREAMS_MAX {
            // Levee's text.
            return Err(CatalogError::LimitExceeded(format!(
                "This request would exceed the limit of {ON_DEMAND_STREAMS_MAX} on-demand \
                 streams for the account {} in {}. Current on-demand stream count: {count}.",
                self.config.account_id, self.config.region
            )));
        }
        Ok(())
    }

    /// An ACTIVE stream to change, or AWS's not-found / not-ACTIVE errors.
    fn active_stream(&mut self, name: &str) -> Result<&mut Stream, CatalogError> {
        let account = &self.config.account_id;
        let s = stream_mut(&mut self.state.streams, name, account)?;
        if s.status != StreamStatus::Active {
            return Err(CatalogError::not_active(name, account, s.status.as_str()));
        }
        Ok(s)
    }

    fn begin_update(s: &mut Stream, now_ms: u64) -> Result<(Outcome, bool), CatalogError> {
        s.status = StreamStatus::Updating;
        s.status_changed_ms = now_ms;
        // The map carries the stream's state: UPDATING is published.
        Ok((Outcome::StreamUpdating, true))
    }

    pub(crate) fn update_stream_mode(
        &mut self,
        name: &str,
        mode: StreamMode,
        warm: Option<u32>,
        now_ms: u64,
    ) -> Result<(Outcome, bool), CatalogError> {
        let current = self.stream(name)?.mode;
        if mode == StreamMode::OnDemand && current != StreamMode::OnDemand {
            self.on_demand_limit_check()?;
        }
        if warm.is_some() && mode != StreamMode::OnDemand {
            // Levee's text.
            return Err(CatalogError::InvalidArgument(
                "WarmThroughputMiBps can only be set for streams in ON_DEMAND mode.".to_string(),
            ));
        }
        check_warm(warm)?;
        let s = self.active_stream(name)?;
        s.mode = mode;
        s.warm_throughput_mibps = if mode == StreamMode::OnDemand {
            warm.or(s.warm_throughput_mibps)
        } else {
            None
        };
        Self::begin_update(s, now_ms)
    }

    pub(crate) fn update_warm_throughput(
        &mut self,
        name: &str,
        mibps: u32,
        now_ms: u64,
    ) -> Result<(Outcome, bool), CatalogError> {
        check_warm(Some(mibps))?;
        let account = self.config.account_id.clone();
        let s = self.active_stream(name)?;
        if s.mode != StreamMode::OnDemand {
            // Levee's text.
            return Err(CatalogError::InvalidArgument(format!(
                "Stream {name} under account {account} is in PROVISIONED mode; warm throughput \
                 applies to ON_DEMAND streams only."
            )));
        }
        s.warm_throughput_mibps = Some(mibps);
        Self::begin_update(s, now_ms)
    }

    pub(crate) fn update_max_record_size(
        &mut self,
        name: &str,
        kib: u32,
    ) -> Result<(Outcome, bool), CatalogError> {
        if !(MAX_RECORD_SIZE_KIB_MIN..=MAX_RECORD_SIZE_KIB_MAX).contains(&kib) {
            let (bound, word) = if kib < MAX_RECORD_SIZE_KIB_MIN {
                (MAX_RECORD_SIZE_KIB_MIN, "greater")
            } else {
                (MAX_RECORD_SIZE_KIB_MAX, "less")
            };
            return Err(CatalogError::Validation(format!(
                "1 validation error detected: Value '{kib}' at 'maxRecordSizeInKiB' failed to \
                 satisfy constraint: Member must have value {word} than or equal to {bound}"
            )));
        }
        let account = &self.config.account_id;
        let s = stream_mut(&mut self.state.streams, name, account)?;
        // Also allowed while CREATING, so that CreateStream's MaxRecordSizeInKiB applies.
        if !matches!(s.status, StreamStatus::Active | StreamStatus::Creating) {
            return Err(CatalogError::not_active(name, account, s.status.as_str()));
        }
        s.max_record_size_kib = kib;
        Ok((Outcome::SettingChanged, false))
    }

    pub(crate) fn set_enhanced_monitoring(
        &mut self,
        name: &str,
        metrics: &[ShardLevelMetric],
        enable: bool,
    ) -> Result<(Outcome, bool), CatalogError> {
        let s = self.active_stream(name)?;
        let current: Vec<ShardLevelMetric> = s.shard_level_metrics.iter().copied().collect();
        let named: BTreeSet<ShardLevelMetric> = if metrics.contains(&ShardLevelMetric::All) {
            ShardLevelMetric::EACH.into_iter().collect()
        } else {
            metrics.iter().copied().collect()
        };
        if enable {
            s.shard_level_metrics.extend(named);
        } else {
            s.shard_level_metrics.retain(|m| !named.contains(m));
        }
        let desired = s.shard_level_metrics.iter().copied().collect();
        Ok((Outcome::MonitoringChanged { current, desired }, false))
    }

    pub(crate) fn start_encryption(
        &mut self,
        name: &str,
        key_id: &str,
        data_key: &DataKey,
        now_ms: u64,
    ) -> Result<(Outcome, bool), CatalogError> {
        check_key_id(key_id)?;
        let s = self.active_stream(name)?;
        let next = u32::try_from(s.data_keys.len())
            .ok()
            .and_then(|n| n.checked_add(1))
            .ok_or_else(|| CatalogError::InternalFailure {
                reason: "data key version overflow".to_string(),
            })?;
        if data_key.version != next {
            return Err(CatalogError::InternalFailure {
                reason: format!(
                    "data key version {} offered, {next} expected",
                    data_key.version
                ),
            });
        }
        s.data_keys.push(data_key.clone());
        s.encryption = EncryptionType::Kms;
        s.key_id = Some(key_id.to_string());
        Self::begin_update(s, now_ms)
    }

    pub(crate) fn stop_encryption(
        &mut self,
        name: &str,
        key_id: &str,
        now_ms: u64,
    ) -> Result<(Outcome, bool), CatalogError> {
        check_key_id(key_id)?;
        let s = self.active_stream(name)?;
        s.encryption = EncryptionType::None;
        s.key_id = None;
        Self::begin_update(s, now_ms)
    }

    /// The next data key version of stream `name` (what StartEncryption must carry).
    pub fn next_data_key_version(&self, name: &str) -> Result<u32, CatalogError> {
        let s = self.stream(name)?;
        Ok(u32::try_from(s.data_keys.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1))
    }

    pub(crate) fn set_policy(
        &mut self,
        arn: &str,
        policy_text: Option<&str>,
    ) -> Result<(Outcome, bool), CatalogError> {
        // Resolve first (not-found before a bad document), then validate.
        self.resource_policy(arn)?;
        if let Some(text) = policy_text {
            policy::parse(text)?;
        }
        let value = policy_text.map(str::to_string);
        if let Some(c) = parse_consumer_arn(arn) {
            let s = stream_mut(&mut self.state.streams, c.stream.name, c.stream.account)?;
            let consumer = s.consumers.get_mut(c.consumer_name).ok_or_else(|| {
                CatalogError::InternalFailure {
                    reason: format!("consumer {arn} vanished"),
                }
            })?;
            consumer.policy = value;
        } else {
            let name = self.stream_by_arn_field(arn, "resourceARN")?.name.clone();
            let account = &self.config.account_id;
            stream_mut(&mut self.state.streams, &name, account)?.policy = value;
        }
        Ok((Outcome::SettingChanged, false))
    }

    /// GetResourcePolicy: the policy of a stream or consumer ARN (`None` when there is none).
    pub fn resource_policy(&self, arn: &str) -> Result<Option<&str>, CatalogError> {
        if parse_consumer_arn(arn).is_some() {
            let d = self.describe_consumer(None, None, Some(arn))?;
            let s = self.stream_by_arn(&d.stream_arn)?;
            return Ok(s
                .consumers
                .get(&d.consumer_name)
                .and_then(|c| c.policy.as_deref()));
        }
        if parse_stream_arn(arn).is_none() {
            // Levee's text; the model's two patterns as AWS documents them.
            return Err(CatalogError::Validation(format!(
                "1 validation error detected: Value '{arn}' at 'resourceARN' failed to satisfy \
                 constraint: Member must be a stream ARN (arn:aws.*:kinesis:.*:\\d{{12}}:stream/\\S+) \
                 or a consumer ARN"
            )));
        }
        Ok(self
            .stream_by_arn_field(arn, "resourceARN")?
            .policy
            .as_deref())
    }

    pub(crate) fn update_account_settings(
        &mut self,
        enable: bool,
        now_ms: u64,
    ) -> Result<(Outcome, bool), CatalogError> {
        let account = &mut self.state.account;
        let (status, _) = account.billing(now_ms);
        match (enable, status, account.commitment.as_mut()) {
            (true, BillingStatus::Enabled, _) => {}
            (true, BillingStatus::EnabledUntilEarliestAllowedEnd, Some(c)) => c.ends_ms = None,
            (true, _, _) => {
                account.commitment = Some(BillingCommitment {
                    started_ms: now_ms,
                    ends_ms: None,
                })
            }
            (false, BillingStatus::Enabled, Some(c)) => {
                c.ends_ms = Some(now_ms.max(c.earliest_allowed_end_ms()));
            }
            (false, _, _) => {}
        }
        Ok((Outcome::SettingChanged, false))
    }
}

fn check_warm(warm: Option<u32>) -> Result<(), CatalogError> {
    match warm {
        Some(w) if w > WARM_THROUGHPUT_MIBPS_MAX => {
            // Levee's text (the model sets no maximum).
            Err(CatalogError::InvalidArgument(format!(
                "WarmThroughputMiBps {w} exceeds the maximum of {WARM_THROUGHPUT_MIBPS_MAX}."
            )))
        }
        _ => Ok(()),
    }
}

fn check_key_id(key_id: &str) -> Result<(), CatalogError> {
    if key_id.is_empty() || key_id.len() > KEY_ID_BYTES_MAX {
        return Err(CatalogError::Validation(format!(
            "1 validation error detected: Value '{key_id}' at 'keyId' failed to satisfy \
             constraint: Member must have length between 1 and {KEY_ID_BYTES_MAX}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::{CatalogConfig, Command};

    fn active(c: &mut Catalog, name: &str) {
        c.apply(&Command::CreateStream {
            name: name.to_string(),
            shard_count: Some(1),
            mode: StreamMode::Provisioned,
            tags: BTreeMap::new(),
            now_ms: 1_000,
        })
        .unwrap();
        c.apply(&Command::ActivateStream {
            name: name.to_string(),
            now_ms: 2_000,
        })
        .unwrap();
    }

    fn key(version: u32) -> DataKey {
        DataKey {
            version,
            wrapped_hex: "00ff".to_string(),
            master_fingerprint: "fp".to_string(),
        }
    }

    fn finish(c: &mut Catalog, name: &str) {
        c.apply(&Command::FinishUpdate {
            name: name.to_string(),
            now_ms: 9_000,
        })
        .unwrap();
    }

    #[test]
    fn every_setting_survives_snapshot_and_restore() {
        let mut c = Catalog::new(CatalogConfig::default());
        active(&mut c, "s");
        let v0 = c.map_version();
        c.apply(&Command::UpdateStreamMode {
            name: "s".into(),
            mode: StreamMode::OnDemand,
            warm_throughput_mibps: Some(40),
            now_ms: 3_000,
        })
        .unwrap();
        assert_eq!(c.stream("s").unwrap().status, StreamStatus::Updating);
        assert!(c.map_version() > v0, "UPDATING is published");
        finish(&mut c, "s");
        c.apply(&Command::UpdateMaxRecordSize {
            name: "s".into(),
            kib: 10240,
        })
        .unwrap();
        let out = c
            .apply(&Command::SetEnhancedMonitoring {
                name: "s".into(),
                metrics: vec![ShardLevelMetric::All],
                enable: true,
            })
            .unwrap();
        assert_eq!(
            out,
            Outcome::MonitoringChanged {
                current: vec![],
                desired: ShardLevelMetric::EACH.to_vec()
            }
        );
        c.apply(&Command::StartEncryption {
            name: "s".into(),
            key_id: "alias/aws/kinesis".into(),
            data_key: key(1),
            now_ms: 4_000,
        })
        .unwrap();
        finish(&mut c, "s");
        let arn = c.stream_arn("s");
        c.apply(&Command::PutResourcePolicy {
            arn: arn.clone(),
            policy: r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"kinesis:*","Resource":"*"}}"#.into(),
        })
        .unwrap();
        c.apply(&Command::UpdateAccountSettings {
            commitment_enabled: true,
            now_ms: 5_000,
        })
        .unwrap();

        let restored = Catalog::restore(CatalogConfig::default(), &c.snapshot().unwrap()).unwrap();
        let s = restored.stream("s").unwrap();
        assert_eq!(s.mode, StreamMode::OnDemand);
        assert_eq!(s.warm_throughput_mibps, Some(40));
        assert_eq!(s.max_record_size_kib, 10240);
        assert_eq!(s.shard_level_metrics.len(), 7);
        assert_eq!(s.encryption, EncryptionType::Kms);
        assert_eq!(s.current_data_key(), Some(&key(1)));
        assert!(s.policy.is_some());
        assert_eq!(restored.resource_policy(&arn).unwrap(), s.policy.as_deref());
        assert_eq!(
            restored.state().account().billing(6_000).0,
            BillingStatus::Enabled
        );
        assert_eq!(restored.on_demand_stream_count(), 1);
    }

    #[test]
    fn policies_travel_in_the_shard_map() {
        let mut c = Catalog::new(CatalogConfig::default());
        active(&mut c, "s");
        let arn = c.stream_arn("s");
        let text = r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"kinesis:PutRecords","Resource":"*"}}"#;
        let v0 = c.map_version();
        c.apply(&Command::PutResourcePolicy {
            arn: arn.clone(),
            policy: text.into(),
        })
        .unwrap();
        assert_eq!(c.map_version(), v0 + 1, "a policy change publishes a map");
        let map = c.shard_map();
        let published = map.stream("s").unwrap().policies.stream.clone().unwrap();
        assert_eq!(published.text(), text);
        assert_eq!(published.policy().statements.len(), 1);
        // The delta a front-end follows carries it.
        let delta = c.map_delta_since(v0).unwrap();
        assert_eq!(
            delta.upserts[0].policies.stream.as_deref(),
            Some(&*published)
        );
        // The next map shares the parsed policy rather than parsing it again.
        let next = c
            .stream("s")
            .unwrap()
            .route_reusing(map.stream("s").map(|r| &**r));
        assert!(std::sync::Arc::ptr_eq(
            next.policies.stream.as_ref().unwrap(),
            &published
        ));
        // Re-putting the same text changes nothing.
        c.apply(&Command::PutResourcePolicy {
            arn: arn.clone(),
            policy: text.into(),
        })
        .unwrap();
        assert_eq!(c.map_version(), v0 + 1);
        // A consumer's policy, and its removal with the consumer.
        c.apply(&Command::RegisterConsumer {
            stream_arn: arn.clone(),
            consumer_name: "c".into(),
            now_ms: 3_000,
        })
        .unwrap();
        let consumer_arn = format!("{arn}/consumer/c:3");
        c.apply(&Command::ActivateConsumer {
            consumer_arn: consumer_arn.clone(),
            now_ms: 3_500,
        })
        .unwrap();
        c.apply(&Command::PutResourcePolicy {
            arn: consumer_arn.clone(),
            policy: text.into(),
        })
        .unwrap();
        let map = c.shard_map();
        let entry = map
            .stream("s")
            .unwrap()
            .policies
            .consumer("c")
            .unwrap()
            .clone();
        assert_eq!(entry.arn, consumer_arn);
        let v = c.map_version();
        c.apply(&Command::DeregisterConsumer {
            stream_arn: None,
            consumer_name: None,
            consumer_arn: Some(consumer_arn.clone()),
            now_ms: 4_000,
        })
        .unwrap();
        c.apply(&Command::FinishDeregisterConsumer {
            consumer_arn: consumer_arn.clone(),
        })
        .unwrap();
        assert!(c.map_version() > v);
        assert!(c
            .shard_map()
            .stream("s")
            .unwrap()
            .policies
            .consumer("c")
            .is_none());
        c.apply(&Command::DeleteResourcePolicy { arn }).unwrap();
        assert!(c.shard_map().stream("s").unwrap().policies.stream.is_none());
    }

    #[test]
    fn refusals_leave_the_state_unchanged() {
        let mut c = Catalog::new(CatalogConfig::default());
        active(&mut c, "s");
        let before = c.snapshot().unwrap();
        let e = c
            .apply(&Command::UpdateWarmThroughput {
                name: "s".into(),
                mibps: 10,
                now_ms: 3_000,
            })
            .unwrap_err();
        assert_eq!(e.type_name(), "InvalidArgumentException");
        let e = c
            .apply(&Command::UpdateMaxRecordSize {
                name: "s".into(),
                kib: 20_000,
            })
            .unwrap_err();
        assert_eq!(e.type_name(), "ValidationException");
        let e = c
            .apply(&Command::PutResourcePolicy {
                arn: c.stream_arn("s"),
                policy: r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"kinesis:*","Resource":"*","Condition":{}}}"#.into(),
            })
            .unwrap_err();
        assert!(e.message().contains("Condition"));
        // A data key with the wrong version is a bug, refused.
        let e = c
            .apply(&Command::StartEncryption {
                name: "s".into(),
                key_id: "k".into(),
                data_key: key(2),
                now_ms: 3_000,
            })
            .unwrap_err();
        assert_eq!(e.type_name(), "InternalFailure");
        assert_eq!(c.snapshot().unwrap(), before);
        // Not ACTIVE: ResourceInUse.
        c.apply(&Command::StartEncryption {
            name: "s".into(),
            key_id: "k".into(),
            data_key: key(1),
            now_ms: 3_000,
        })
        .unwrap();
        let e = c
            .apply(&Command::StopEncryption {
                name: "s".into(),
                key_id: "k".into(),
                now_ms: 3_500,
            })
            .unwrap_err();
        assert_eq!(e.type_name(), "ResourceInUseException");
    }

    #[test]
    fn billing_commitment_runs_its_minimum_term() {
        let mut c = Catalog::new(CatalogConfig::default());
        let on = |c: &mut Catalog, enabled: bool, now_ms: u64| {
            c.apply(&Command::UpdateAccountSettings {
                commitment_enabled: enabled,
                now_ms,
            })
            .unwrap();
        };
        assert_eq!(c.state().account().billing(0).0, BillingStatus::Disabled);
        on(&mut c, true, 1_000);
        on(&mut c, false, 2_000);
        let end = 1_000 + BILLING_COMMITMENT_MIN_MS;
        assert_eq!(
            c.state().account().billing(end - 1).0,
            BillingStatus::EnabledUntilEarliestAllowedEnd
        );
        assert_eq!(c.state().account().billing(end).0, BillingStatus::Disabled);
        // Re-enabled before the end: enabled again from the same start.
        on(&mut c, true, 3_000);
        let (status, commitment) = c.state().account().billing(end + 1);
        assert_eq!(status, BillingStatus::Enabled);
        assert_eq!(commitment.map(|c| c.started_ms), Some(1_000));
    }
}
