//! The control plane as the front-end calls it in the embedded mode: control operations become
//! catalog commands (logged, applied, answered with their outcome) or catalog queries, and the
//! answers take AWS's shapes. Also builds the front-end service for the node.

use std::sync::Arc;

use anyhow::Context;

use base64::Engine as _;
use levee_catalog::ConsumerStatus;
use levee_catalog::{
    CatalogError, Command, DataKey, Outcome, ShardLevelMetric, Stream, StreamMode,
};
use levee_frontend::backend::{AppendSignals, BoxFuture, CallContext, ConsumerInfo, ControlPlane};
use levee_frontend::dataplane::{DataPlane, Identity, MapSettings};
use levee_frontend::http::Dispatch;
use levee_frontend::iterator::IteratorCodec;
use levee_frontend::service::{KinesisService, Service};
use levee_frontend::subscribe::{SubscribeConfig, Subscriptions};
use levee_protocol::types::{
    self, ListStreamsOutput, ListTagsForResourceOutput, ListTagsForStreamOutput, StreamModeDetails,
    StreamSummary, Tag,
};
use levee_protocol::{encode_response, ApiError, ErrorKind, Request, Timestamp, WireFormat};

use crate::node::{now_ms, Node};
use crate::storage_adapter::{data_key_aad, hex_encode, AtRest, LocalStorage};

/// ListStreams' default page size.
const LIST_STREAMS_DEFAULT: usize = 100;
/// ListStreamConsumers' default and largest page.
const LIST_CONSUMERS_MAX: usize = 100;
/// ListTagsForStream's default page size.
const LIST_TAGS_DEFAULT: usize = 100;

/// ON_DEMAND streams an account may have, as DescribeLimits reports it.
const ON_DEMAND_STREAMS_MAX: u32 = levee_catalog::ON_DEMAND_STREAMS_MAX;

/// The control plane a control-role node serves forwarded calls with: the embedded node's own
/// control code.
pub fn local_control(node: Arc<Node>) -> anyhow::Result<Arc<dyn ControlPlane>> {
    let at_rest = Arc::new(AtRest::new(node.cfg.master_key_file.clone()));
    Ok(Arc::new(LocalControl { node, at_rest }))
}

/// Builds a fleet front-end's service: storage through the capped inter-node pool (nodes found
/// in its own map), control operations forwarded to the control plane, settings, consumers and
/// enhanced-monitoring choices read from its map.
pub fn fleet_service(
    cfg: &crate::config::ServeConfig,
    maps: &crate::fleet::FrontendMaps,
    remote: Arc<levee_rpc::control::RemoteControl>,
    subscribe: SubscribeConfig,
) -> anyhow::Result<Arc<dyn Dispatch>> {
    let pool = levee_rpc::Pool::new(levee_rpc::PoolConfig {
        connections_max: cfg.storage_connections_max,
        ..levee_rpc::PoolConfig::default()
    });
    let storage = Arc::new(levee_rpc::RemoteStorage::new(
        pool,
        Arc::new(levee_rpc::MapDirectory(maps.maps.clone())),
    ));
    let holder = maps.maps.clone();
    let shard_level: levee_frontend::metrics::ShardLevel = Arc::new(move |stream: &str| {
        holder
            .current()
            .stream(stream)
            .is_some_and(|s| !s.facts.shard_level_metrics.is_empty())
    });
    let data = DataPlane {
        identity: Identity {
            account_id: cfg.account_id.clone(),
            region: cfg.region.clone(),
        },
        maps: maps.maps.clone(),
        storage: Arc::new(levee_frontend::metrics::MeteredStorage::new(
            storage,
            maps.maps.clone(),
            shard_level,
        )),
        iterators: IteratorCodec::new(crate::fleet::fleet_iterator_key(&cfg.master_key_file)?),
        now_ms,
        settings: Arc::new(MapSettings(maps.maps.clone())),
    };
    let control = Arc::new(crate::fleet::ForwardedControl {
        remote,
        settled: maps.settled.clone(),
    });
    Ok(Arc::new(Service(Arc::new(KinesisService {
        data,
        control,
        subscriptions: Subscriptions::new(subscribe),
    }))))
}

/// Builds the front-end service of an embedded node. Loads the data keys of every stream that
/// was ever encrypted (reading the master key only if there is one).
pub fn service(
    node: Arc<Node>,
    iterator_key: [u8; 32],
    subscribe: SubscribeConfig,
    shard_limits: Option<Arc<levee_frontend::shard_limits::ShardLimiter>>,
) -> anyhow::Result<Arc<dyn Dispatch>> {
    let at_rest = Arc::new(AtRest::new(node.cfg.master_key_file.clone()));
    let encrypted: Vec<Stream> = node.catalog.read(|c| {
        c.state()
            .streams()
            .values()
            .filter(|s| !s.data_keys.is_empty())
            .cloned()
            .collect()
    });
    for s in &encrypted {
        at_rest.sync_stream(s)?;
    }
    let data = DataPlane {
        identity: Identity {
            account_id: node.cfg.account_id.clone(),
            region: node.cfg.region.clone(),
        },
        maps: node.maps.clone(),
        storage: Arc::new(levee_frontend::metrics::MeteredStorage::new(
            Arc::new(LocalStorage {
                engine: node
                    .engine
                    .clone()
                    .context("the embedded service needs the storage engine")?,
                shard_limits,
                signals: Arc::new(AppendSignals::default()),
                at_rest: at_rest.clone(),
                write_counters: node.write_counters.clone(),
            }),
            node.maps.clone(),
            crate::admin::shard_level_metrics(node.clone()),
        )),
        iterators: IteratorCodec::new(iterator_key),
        now_ms,
        settings: Arc::new(MapSettings(node.maps.clone())),
    };
    let control = Arc::new(LocalControl { node, at_rest });
    Ok(Arc::new(Service(Arc::new(KinesisService {
        data,
        control,
        subscriptions: Subscriptions::new(subscribe),
    }))))
}

struct LocalControl {
    node: Arc<Node>,
    at_rest: Arc<AtRest>,
}

fn metric_name(m: ShardLevelMetric) -> types::MetricsName {
    types::MetricsName::ALL
        .iter()
        .copied()
        .find(|n| n.as_str() == m.as_str())
        .unwrap_or(types::MetricsName::All)
}

fn metric_names(ms: &[ShardLevelMetric]) -> Vec<types::MetricsName> {
    ms.iter().copied().map(metric_name).collect()
}

fn to_u32(v: i32) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

/// A catalog error as the Kinesis error clients see.
pub fn api_error(e: CatalogError) -> ApiError {
    api(e)
}

fn api(e: CatalogError) -> ApiError {
    if let CatalogError::InternalFailure { reason } = &e {
        tracing::error!(%reason, "catalog refused a command as an internal failure");
    }
    let kind = ErrorKind::ALL
        .iter()
        .copied()
        .find(|k| k.type_name() == e.type_name())
        .unwrap_or(ErrorKind::InternalFailure);
    ApiError::new(kind, e.message())
}

fn internal(e: anyhow::Error) -> ApiError {
    tracing::error!(error = %format!("{e:#}"), "control operation failed");
    ApiError::internal_failure()
}

fn status(s: levee_catalog::StreamStatus) -> types::StreamStatus {
    match s {
        levee_catalog::StreamStatus::Creating => types::StreamStatus::Creating,
        levee_catalog::StreamStatus::Active => types::StreamStatus::Active,
        levee_catalog::StreamStatus::Updating => types::StreamStatus::Updating,
        levee_catalog::StreamStatus::Deleting => types::StreamStatus::Deleting,
    }
}

fn consumer_status(s: levee_catalog::ConsumerStatus) -> types::ConsumerStatus {
    match s {
        levee_catalog::ConsumerStatus::Creating => types::ConsumerStatus::Creating,
        levee_catalog::ConsumerStatus::Active => types::ConsumerStatus::Active,
        levee_catalog::ConsumerStatus::Deleting => types::ConsumerStatus::Deleting,
    }
}

fn mode(m: StreamMode) -> StreamModeDetails {
    StreamModeDetails {
        stream_mode: match m {
            StreamMode::Provisioned => types::StreamMode::Provisioned,
            StreamMode::OnDemand => types::StreamMode::OnDemand,
        },
    }
}

/// A stream's tags in key order, as AWS's Tag shape.
fn tags_of(s: &Stream) -> impl Iterator<Item = Tag> + '_ {
    s.tags.iter().map(|(k, v)| Tag {
        key: k.clone(),
        value: Some(v.clone()),
    })
}

fn empty_ok() -> Result<Vec<u8>, ApiError> {
    Ok(Vec::new())
}

impl LocalControl {
    fn name<'a>(&self, name: Option<&'a str>, arn: Option<&'a str>) -> Result<String, ApiError> {
        if let Some(n) = name {
            return Ok(n.to_owned());
        }
        let Some(arn) = arn else {
            return Err(ApiError::invalid_argument(
                "Either StreamName or StreamARN should be provided.",
            ));
        };
        self.node
            .catalog
            .read(|c| c.stream_by_arn(arn).map(|s| s.name.clone()))
            .map_err(api)
    }

    fn stream(&self, name: &str) -> Result<Stream, ApiError> {
        self.node
            .catalog
            .read(|c| c.stream(name).cloned())
            .map_err(api)
    }

    fn consumer(
        &self,
        stream_arn: Option<&str>,
        name: Option<&str>,
        arn: Option<&str>,
    ) -> Result<levee_catalog::ConsumerDescription, ApiError> {
        self.node
            .catalog
            .read(|c| c.describe_consumer(stream_arn, name, arn))
            .map_err(api)
    }

    /// Runs a command whose operation answers with an empty body.
    async fn run_empty(&self, cmd: Command) -> Result<Vec<u8>, ApiError> {
        self.run(cmd).await?;
        empty_ok()
    }

    async fn run(&self, cmd: Command) -> Result<Outcome, ApiError> {
        self.node
            .catalog
            .execute(cmd)
            .await
            .map_err(|e| internal(e.into()))?
            .map_err(api)
    }

    async fn call(&self, request: Request, format: WireFormat) -> Result<Vec<u8>, ApiError> {
        match request {
            Request::CreateStream(r) => {
                let m = r
                    .stream_mode_details
                    .map(|d| d.stream_mode)
                    .unwrap_or(types::StreamMode::Provisioned);
                let outcome = self
                    .run(Command::CreateStream {
                        name: r.stream_name.clone(),
                        shard_count: r.shard_count.and_then(|c| u32::try_from(c).ok()),
                        mode: StreamMode::parse(m.as_str()).unwrap_or(StreamMode::Provisioned),
                        tags: r.tags.unwrap_or_default(),
                        now_ms: now_ms(),
                    })
                    .await?;
                if let Outcome::StreamCreated { .. } = outcome {
                    // CreateStream's own settings, applied while the stream is CREATING.
                    if let Some(kib) = r.max_record_size_in_kib {
                        self.run(Command::UpdateMaxRecordSize {
                            name: r.stream_name.clone(),
                            kib: to_u32(kib),
                        })
                        .await?;
                    }
                    self.node.reconcile().await.map_err(internal)?;
                    self.node.clone().activate_later(r.stream_name);
                }
                empty_ok()
            }
            Request::DeleteStream(r) => {
                let name = self.name(r.stream_name.as_deref(), r.stream_arn.as_deref())?;
                let outcome = self
                    .run(Command::DeleteStream {
                        name: name.clone(),
                        enforce_consumer_deletion: r.enforce_consumer_deletion.unwrap_or(false),
                        now_ms: now_ms(),
                    })
                    .await?;
                if outcome == Outcome::StreamDeleting {
                    // Publishes the DELETING state to the front-end.
                    self.node.reconcile().await.map_err(internal)?;
                    self.node.clone().finish_delete_later(name);
                }
                empty_ok()
            }
            Request::ListStreams(r) => {
                let limit = r
                    .limit
                    .and_then(|l| usize::try_from(l).ok())
                    .unwrap_or(LIST_STREAMS_DEFAULT)
                    .max(1);
                let start = match &r.next_token {
                    Some(t) => Some(decode_token(t).ok_or_else(|| {
                        ApiError::invalid_argument(format!("Invalid NextToken: {t}"))
                    })?),
                    None => r.exclusive_start_stream_name.clone(),
                };
                let streams: Vec<Stream> = self.node.catalog.read(|c| {
                    c.state()
                        .streams()
                        .values()
                        .filter(|s| start.as_deref().is_none_or(|st| s.name.as_str() > st))
                        .take(limit + 1)
                        .cloned()
                        .collect()
                });
                let more = streams.len() > limit;
                let page = &streams[..streams.len().min(limit)];
                Ok(encode_response(
                    format,
                    &ListStreamsOutput {
                        stream_names: page.iter().map(|s| s.name.clone()).collect(),
                        has_more_streams: more,
                        next_token: more
                            .then(|| page.last().map(|s| encode_token(&s.name)))
                            .flatten(),
                        stream_summaries: Some(
                            page.iter()
                                .map(|s| StreamSummary {
                                    stream_name: s.name.clone(),
                                    stream_arn: s.arn.clone(),
                                    stream_status: status(s.status),
                                    stream_mode_details: Some(mode(s.mode)),
                                    stream_creation_timestamp: Some(Timestamp(s.created_ms)),
                                })
                                .collect(),
                        ),
                    },
                ))
            }
            Request::RegisterStreamConsumer(r) => {
                let outcome = self
                    .run(Command::RegisterConsumer {
                        stream_arn: r.stream_arn,
                        consumer_name: r.consumer_name,
                        now_ms: now_ms(),
                    })
                    .await?;
                let Outcome::ConsumerRegistered { consumer_arn } = outcome else {
                    return Err(ApiError::internal_failure());
                };
                self.node
                    .clone()
                    .activate_consumer_later(consumer_arn.clone());
                let d = self.consumer(None, None, Some(&consumer_arn))?;
                Ok(encode_response(
                    format,
                    &types::RegisterStreamConsumerOutput {
                        consumer: types::Consumer {
                            consumer_name: d.consumer_name,
                            consumer_arn: d.consumer_arn,
                            consumer_status: consumer_status(d.status),
                            consumer_creation_timestamp: Timestamp(d.created_ms),
                        },
                    },
                ))
            }
            Request::DescribeStreamConsumer(r) => {
                let d = self.consumer(
                    r.stream_arn.as_deref(),
                    r.consumer_name.as_deref(),
                    r.consumer_arn.as_deref(),
                )?;
                Ok(encode_response(
                    format,
                    &types::DescribeStreamConsumerOutput {
                        consumer_description: types::ConsumerDescription {
                            consumer_name: d.consumer_name,
                            consumer_arn: d.consumer_arn,
                            consumer_status: consumer_status(d.status),
                            consumer_creation_timestamp: Timestamp(d.created_ms),
                            stream_arn: d.stream_arn,
                        },
                    },
                ))
            }
            Request::ListStreamConsumers(r) => {
                let all = self
                    .node
                    .catalog
                    .read(|c| c.list_consumers(&r.stream_arn))
                    .map_err(api)?;
                let start = match &r.next_token {
                    Some(t) => Some(decode_token(t).ok_or_else(|| {
                        ApiError::invalid_argument(format!("Invalid NextToken: {t}"))
                    })?),
                    None => None,
                };
                let limit = r
                    .max_results
                    .and_then(|l| usize::try_from(l).ok())
                    .unwrap_or(LIST_CONSUMERS_MAX)
                    .clamp(1, LIST_CONSUMERS_MAX);
                let rest: Vec<_> = all
                    .into_iter()
                    .filter(|d| {
                        start
                            .as_deref()
                            .is_none_or(|st| d.consumer_name.as_str() > st)
                    })
                    .collect();
                let next_token = (rest.len() > limit)
                    .then(|| rest.get(limit - 1).map(|d| encode_token(&d.consumer_name)))
                    .flatten();
                Ok(encode_response(
                    format,
                    &types::ListStreamConsumersOutput {
                        consumers: Some(
                            rest.into_iter()
                                .take(limit)
                                .map(|d| types::Consumer {
                                    consumer_name: d.consumer_name,
                                    consumer_arn: d.consumer_arn,
                                    consumer_status: consumer_status(d.status),
                                    consumer_creation_timestamp: Timestamp(d.created_ms),
                                })
                                .collect(),
                        ),
                        next_token,
                    },
                ))
            }
            Request::DeregisterStreamConsumer(r) => {
                let outcome = self
                    .run(Command::DeregisterConsumer {
                        stream_arn: r.stream_arn,
                        consumer_name: r.consumer_name,
                        consumer_arn: r.consumer_arn,
                        now_ms: now_ms(),
                    })
                    .await?;
                if let Outcome::ConsumerDeregistering { consumer_arn } = outcome {
                    self.node
                        .clone()
                        .finish_deregister_consumer_later(consumer_arn);
                }
                empty_ok()
            }
            Request::SplitShard(r) => {
                let name = self.name(r.stream_name.as_deref(), r.stream_arn.as_deref())?;
                self.reshard(Command::SplitShard {
                    name,
                    shard_to_split: r.shard_to_split,
                    new_starting_hash_key: r.new_starting_hash_key,
                    now_ms: now_ms(),
                })
                .await?;
                empty_ok()
            }
            Request::MergeShards(r) => {
                let name = self.name(r.stream_name.as_deref(), r.stream_arn.as_deref())?;
                self.reshard(Command::MergeShards {
                    name,
                    shard_to_merge: r.shard_to_merge,
                    adjacent_shard_to_merge: r.adjacent_shard_to_merge,
                    now_ms: now_ms(),
                })
                .await?;
                empty_ok()
            }
            Request::UpdateShardCount(r) => {
                let name = self.name(r.stream_name.as_deref(), r.stream_arn.as_deref())?;
                let outcome = self
                    .reshard(Command::UpdateShardCount {
                        name: name.clone(),
                        target_shard_count: u32::try_from(r.target_shard_count).unwrap_or(0),
                        now_ms: now_ms(),
                    })
                    .await?;
                let (current, target) = match outcome {
                    Outcome::Resharded {
                        open_before,
                        open_after,
                        ..
                    } => (open_before as i32, open_after as i32),
                    _ => (r.target_shard_count, r.target_shard_count),
                };
                let arn = self.stream(&name)?.arn;
                Ok(encode_response(
                    format,
                    &types::UpdateShardCountOutput {
                        stream_name: Some(name),
                        current_shard_count: Some(current),
                        target_shard_count: Some(target),
                        stream_arn: Some(arn),
                    },
                ))
            }
            Request::IncreaseStreamRetentionPeriod(r) => self.change_retention(r, true).await,
            Request::DecreaseStreamRetentionPeriod(r) => self.change_retention(r, false).await,
            Request::AddTagsToStream(r) => {
                let name = self.name(r.stream_name.as_deref(), r.stream_arn.as_deref())?;
                self.run_empty(Command::AddTags { name, tags: r.tags })
                    .await
            }
            Request::RemoveTagsFromStream(r) => {
                let name = self.name(r.stream_name.as_deref(), r.stream_arn.as_deref())?;
                self.run_empty(Command::RemoveTags {
                    name,
                    keys: r.tag_keys,
                })
                .await
            }
            Request::TagResource(r) => {
                self.run_empty(Command::TagResource {
                    arn: r.resource_arn,
                    tags: r.tags,
                })
                .await
            }
            Request::UntagResource(r) => {
                self.run_empty(Command::UntagResource {
                    arn: r.resource_arn,
                    keys: r.tag_keys,
                })
                .await
            }
            Request::ListTagsForStream(r) => {
                let name = self.name(r.stream_name.as_deref(), r.stream_arn.as_deref())?;
                let s = self.stream(&name)?;
                let limit = r
                    .limit
                    .and_then(|l| usize::try_from(l).ok())
                    .unwrap_or(LIST_TAGS_DEFAULT)
                    .max(1);
                let tags: Vec<Tag> = tags_of(&s)
                    .filter(|t| {
                        r.exclusive_start_tag_key
                            .as_deref()
                            .is_none_or(|st| t.key.as_str() > st)
                    })
                    .collect();
                let more = tags.len() > limit;
                Ok(encode_response(
                    format,
                    &ListTagsForStreamOutput {
                        tags: tags.into_iter().take(limit).collect(),
                        has_more_tags: more,
                    },
                ))
            }
            Request::ListTagsForResource(r) => {
                let s = self
                    .node
                    .catalog
                    .read(|c| c.stream_by_arn(&r.resource_arn).cloned())
                    .map_err(api)?;
                Ok(encode_response(
                    format,
                    &ListTagsForResourceOutput {
                        tags: Some(tags_of(&s).collect()),
                    },
                ))
            }
            Request::SubscribeToShard(_) => Err(ApiError::new(
                ErrorKind::UnknownOperation,
                "SubscribeToShard is served by the front-end's event-stream path",
            )),
            // The front-end answers these itself (the data plane, and the describing operations
            // from its own map); none reaches the control plane.
            Request::PutRecord(_)
            | Request::PutRecords(_)
            | Request::GetShardIterator(_)
            | Request::GetRecords(_)
            | Request::ListShards(_)
            | Request::DescribeStream(_)
            | Request::DescribeStreamSummary(_) => Err(ApiError::internal_failure()),
            Request::DescribeLimits(_) => {
                let (shard_limit, open, on_demand) = self.node.catalog.read(|c| {
                    (
                        c.config().shard_limit,
                        c.account_open_shard_count(),
                        c.on_demand_stream_count(),
                    )
                });
                let int = |v: u64| i32::try_from(v).unwrap_or(i32::MAX);
                Ok(encode_response(
                    format,
                    &types::DescribeLimitsOutput {
                        shard_limit: int(u64::from(shard_limit)),
                        open_shard_count: int(open),
                        on_demand_stream_count: int(u64::from(on_demand)),
                        on_demand_stream_count_limit: int(u64::from(ON_DEMAND_STREAMS_MAX)),
                    },
                ))
            }
            Request::DescribeAccountSettings(_) => self.account_settings(format),
            Request::UpdateAccountSettings(r) => {
                let enable = r.minimum_throughput_billing_commitment.status
                    == types::BillingCommitmentInputStatus::Enabled;
                self.run(Command::UpdateAccountSettings {
                    commitment_enabled: enable,
                    now_ms: now_ms(),
                })
                .await?;
                self.account_settings(format)
            }
            Request::UpdateStreamMode(r) => {
                let name = self.name(None, Some(&r.stream_arn))?;
                let m = r.stream_mode_details.stream_mode;
                let outcome = self
                    .run(Command::UpdateStreamMode {
                        name: name.clone(),
                        mode: StreamMode::parse(m.as_str()).unwrap_or(StreamMode::Provisioned),
                        warm_throughput_mibps: r.warm_throughput_mibps.map(to_u32),
                        now_ms: now_ms(),
                    })
                    .await?;
                self.updating(outcome, name).await?;
                empty_ok()
            }
            Request::UpdateStreamWarmThroughput(r) => {
                let name = self.name(r.stream_name.as_deref(), r.stream_arn.as_deref())?;
                let before = self.stream(&name)?.warm_throughput_mibps;
                let target = to_u32(r.warm_throughput_mibps);
                let outcome = self
                    .run(Command::UpdateWarmThroughput {
                        name: name.clone(),
                        mibps: target,
                        now_ms: now_ms(),
                    })
                    .await?;
                self.updating(outcome, name.clone()).await?;
                let s = self.stream(&name)?;
                Ok(encode_response(
                    format,
                    &types::UpdateStreamWarmThroughputOutput {
                        stream_arn: Some(s.arn.clone()),
                        stream_name: Some(name),
                        warm_throughput: Some(types::WarmThroughput {
                            target_mibps: i32::try_from(target).ok(),
                            // The throughput in force until the update completes.
                            current_mibps: before.and_then(|b| i32::try_from(b).ok()),
                        }),
                    },
                ))
            }
            Request::UpdateMaxRecordSize(r) => {
                let name = self.name(None, r.stream_arn.as_deref())?;
                self.run_empty(Command::UpdateMaxRecordSize {
                    name,
                    kib: to_u32(r.max_record_size_in_kib),
                })
                .await
            }
            Request::EnableEnhancedMonitoring(r) => self.monitoring(r, true, format).await,
            Request::DisableEnhancedMonitoring(r) => self.monitoring(r, false, format).await,
            Request::StartStreamEncryption(r) => self.start_encryption(r).await,
            Request::StopStreamEncryption(r) => {
                let name = self.name(r.stream_name.as_deref(), r.stream_arn.as_deref())?;
                if r.encryption_type != types::EncryptionType::Kms {
                    return Err(ApiError::invalid_argument(format!(
                        "Encryption type {} is not valid for StopStreamEncryption: use KMS.",
                        r.encryption_type.as_str()
                    )));
                }
                let outcome = self
                    .run(Command::StopEncryption {
                        name: name.clone(),
                        key_id: r.key_id,
                        now_ms: now_ms(),
                    })
                    .await?;
                self.sync_keys(&name)?;
                self.updating(outcome, name).await?;
                empty_ok()
            }
            Request::PutResourcePolicy(r) => {
                self.run_empty(Command::PutResourcePolicy {
                    arn: r.resource_arn,
                    policy: r.policy,
                })
                .await
            }
            Request::GetResourcePolicy(r) => {
                let policy = self
                    .node
                    .catalog
                    .read(|c| {
                        c.resource_policy(&r.resource_arn)
                            .map(|p| p.map(str::to_owned))
                    })
                    .map_err(api)?;
                Ok(encode_response(
                    format,
                    &types::GetResourcePolicyOutput {
                        // AWS answers an empty document for a resource without a policy.
                        policy: policy.unwrap_or_else(|| "{}".to_string()),
                    },
                ))
            }
            Request::DeleteResourcePolicy(r) => {
                let has = self
                    .node
                    .catalog
                    .read(|c| c.resource_policy(&r.resource_arn).map(|p| p.is_some()))
                    .map_err(api)?;
                if !has {
                    // Levee's text.
                    return Err(ApiError::new(
                        ErrorKind::ResourceNotFound,
                        format!("No resource policy found for resource {}.", r.resource_arn),
                    ));
                }
                self.run_empty(Command::DeleteResourcePolicy {
                    arn: r.resource_arn,
                })
                .await
            }
        }
    }

    /// After a command that took the stream UPDATING: publish the state, schedule ACTIVE.
    async fn updating(&self, outcome: Outcome, name: String) -> Result<(), ApiError> {
        if outcome == Outcome::StreamUpdating {
            self.node.reconcile().await.map_err(internal)?;
            self.node.clone().finish_update_later(name);
        }
        Ok(())
    }

    /// Brings the storage adapter's keys for stream `name` up to date with the catalog.
    fn sync_keys(&self, name: &str) -> Result<(), ApiError> {
        let s = self.stream(name)?;
        self.at_rest.sync_stream(&s).map_err(internal)
    }

    async fn start_encryption(&self, r: types::StreamEncryptionInput) -> Result<Vec<u8>, ApiError> {
        let name = self.name(r.stream_name.as_deref(), r.stream_arn.as_deref())?;
        if r.encryption_type != types::EncryptionType::Kms {
            // Levee's text.
            return Err(ApiError::invalid_argument(format!(
                "Encryption type {} is not valid for StartStreamEncryption: use KMS.",
                r.encryption_type.as_str()
            )));
        }
        let (uid, version) = self
            .node
            .catalog
            .read(|c| {
                let s = c.stream(&name)?;
                if s.status != levee_catalog::StreamStatus::Active {
                    return Err(CatalogError::ResourceInUse(format!(
                        "Stream {name} under account {} not ACTIVE, instead in state {}",
                        c.config().account_id,
                        s.status.as_str()
                    )));
                }
                Ok((s.uid, c.next_data_key_version(&name)?))
            })
            .map_err(api)?;
        let master = self.at_rest.master().map_err(internal)?;
        // The plaintext data key lives only in memory: the catalog gets it wrapped.
        let key = levee_keys::Key::generate();
        let data_key = DataKey {
            version,
            wrapped_hex: hex_encode(&master.wrap(&data_key_aad(uid, version), &key)),
            master_fingerprint: master.fingerprint(),
        };
        let outcome = self
            .run(Command::StartEncryption {
                name: name.clone(),
                key_id: r.key_id,
                data_key,
                now_ms: now_ms(),
            })
            .await?;
        self.sync_keys(&name)?;
        self.updating(outcome, name).await?;
        empty_ok()
    }

    async fn monitoring(
        &self,
        r: types::EnhancedMonitoringInput,
        enable: bool,
        format: WireFormat,
    ) -> Result<Vec<u8>, ApiError> {
        let name = self.name(r.stream_name.as_deref(), r.stream_arn.as_deref())?;
        let metrics = r
            .shard_level_metrics
            .iter()
            .filter_map(|m| ShardLevelMetric::parse(m.as_str()))
            .collect();
        let outcome = self
            .run(Command::SetEnhancedMonitoring {
                name: name.clone(),
                metrics,
                enable,
            })
            .await?;
        let Outcome::MonitoringChanged { current, desired } = outcome else {
            return Err(ApiError::internal_failure());
        };
        levee_frontend::metrics::shard_level_changed();
        let arn = self.stream(&name)?.arn;
        Ok(encode_response(
            format,
            &types::EnhancedMonitoringOutput {
                stream_name: Some(name),
                current_shard_level_metrics: Some(metric_names(&current)),
                desired_shard_level_metrics: Some(metric_names(&desired)),
                stream_arn: Some(arn),
            },
        ))
    }

    fn account_settings(&self, format: WireFormat) -> Result<Vec<u8>, ApiError> {
        let now = now_ms();
        let out = self.node.catalog.read(|c| {
            let (status, commitment) = c.state().account().billing(now);
            let status = match status {
                levee_catalog::BillingStatus::Enabled => {
                    types::BillingCommitmentOutputStatus::Enabled
                }
                levee_catalog::BillingStatus::Disabled => {
                    types::BillingCommitmentOutputStatus::Disabled
                }
                levee_catalog::BillingStatus::EnabledUntilEarliestAllowedEnd => {
                    types::BillingCommitmentOutputStatus::EnabledUntilEarliestAllowedEnd
                }
            };
            types::BillingCommitmentOutput {
                status,
                started_at: commitment.map(|c| Timestamp(c.started_ms)),
                ended_at: commitment.and_then(|c| c.ends_ms).map(Timestamp),
                earliest_allowed_end_at: commitment.map(|c| Timestamp(c.earliest_allowed_end_ms())),
            }
        });
        Ok(encode_response(
            format,
            &types::AccountSettingsOutput {
                minimum_throughput_billing_commitment: Some(out),
            },
        ))
    }

    /// Runs a resharding command, makes storage match (children created, parents closed), and
    /// schedules UPDATING → ACTIVE.
    async fn reshard(&self, cmd: Command) -> Result<Outcome, ApiError> {
        let name = match &cmd {
            Command::SplitShard { name, .. }
            | Command::MergeShards { name, .. }
            | Command::UpdateShardCount { name, .. } => name.clone(),
            _ => return Err(ApiError::internal_failure()),
        };
        let outcome = self.run(cmd).await?;
        if let Outcome::Resharded { .. } = outcome {
            self.node.reconcile().await.map_err(internal)?;
            self.node.clone().finish_update_later(name);
        }
        Ok(outcome)
    }

    async fn change_retention(
        &self,
        r: types::StreamRetentionPeriodInput,
        increase: bool,
    ) -> Result<Vec<u8>, ApiError> {
        let name = self.name(r.stream_name.as_deref(), r.stream_arn.as_deref())?;
        let hours = i64::from(r.retention_period_hours);
        let cmd = if increase {
            Command::IncreaseRetention { name, hours }
        } else {
            Command::DecreaseRetention { name, hours }
        };
        self.run(cmd).await?;
        // Storage enforces retention: bring its setting up to date now.
        self.node.reconcile().await.map_err(internal)?;
        empty_ok()
    }
}

fn encode_token(s: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

fn decode_token(t: &str) -> Option<String> {
    String::from_utf8(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(t)
            .ok()?,
    )
    .ok()
}

impl ControlPlane for LocalControl {
    fn call(&self, request: Request, call: CallContext) -> BoxFuture<Result<Vec<u8>, ApiError>> {
        let format = call.format;
        let this = LocalControl {
            node: self.node.clone(),
            at_rest: self.at_rest.clone(),
        };
        Box::pin(async move {
            let answer = this.call(request, format).await;
            // What the caller now sees in the catalog, it finds in this front-end's map too.
            this.node.map_barrier().await;
            answer
        })
    }

    fn consumer(&self, consumer_arn: &str) -> BoxFuture<Result<ConsumerInfo, ApiError>> {
        // The inherent lookup (AWS's validation and not-found texts).
        let found = LocalControl::consumer(self, None, None, Some(consumer_arn));
        Box::pin(async move {
            let d = found?;
            let stream_name = d
                .stream_arn
                .rsplit_once(":stream/")
                .map_or(d.stream_arn.as_str(), |(_, name)| name)
                .to_owned();
            Ok(ConsumerInfo {
                consumer_name: d.consumer_name,
                consumer_arn: d.consumer_arn,
                stream_name,
                active: d.status == ConsumerStatus::Active,
                created_ms: d.created_ms,
            })
        })
    }
}
