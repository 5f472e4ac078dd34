//! Enhanced fan-out consumers: RegisterStreamConsumer, DeregisterStreamConsumer and the two
//! housekeeping commands the server issues, ActivateConsumer (CREATING → ACTIVE, after its
//! configured delay) and FinishDeregisterConsumer (DELETING → gone).
//!
//! A consumer lives inside its stream ([`Stream::consumers`], keyed by name), so a command
//! touches one stream only and the catalog's per-stream rollback covers it. Its ARN is
//! `<stream ARN>/consumer/<name>:<creation epoch seconds>`: a consumer re-registered under the
//! same name in a later second gets a new ARN, and the old ARN no longer resolves.
//!
//! Consumers do not route data, so no command here changes the shard map.
//!
//! Texts: AWS's where one was recorded (see the constructors below); otherwise Levee's own,
//! marked as such.

use serde::{Deserialize, Serialize};

use crate::{
    error, name_errors, parse_stream_arn, Catalog, CatalogError, Outcome, Stream, StreamArn,
    StreamStatus,
};

/// Consumers one stream may have registered, any status (AWS's limit for provisioned and
/// on-demand standard streams; API reference for RegisterStreamConsumer).
pub const CONSUMERS_PER_STREAM_MAX: usize = 20;
/// Consumers of one stream that may be CREATING at once (API reference for
/// RegisterStreamConsumer: "Registering a 6th consumer while there are 5 in a CREATING status
/// results in a LimitExceededException").
pub const CONSUMERS_CREATING_MAX: usize = 5;
/// Characters in a consumer name.
pub const CONSUMER_NAME_CHARS_MAX: usize = 128;

/// The wire model's pattern for `ConsumerARN` (API reference for DescribeStreamConsumer).
const CONSUMER_ARN_PATTERN: &str =
    r"^(arn):aws.*:kinesis:.*:\d{12}:.*stream\/[a-zA-Z0-9_.-]+\/consumer\/[a-zA-Z0-9_.-]+:[0-9]+";

/// A consumer's status, as AWS names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConsumerStatus {
    Creating,
    Active,
    Deleting,
}

impl ConsumerStatus {
    /// `CREATING`, `ACTIVE` or `DELETING`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsumerStatus::Creating => "CREATING",
            ConsumerStatus::Active => "ACTIVE",
            ConsumerStatus::Deleting => "DELETING",
        }
    }
}

/// One registered consumer of a stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consumer {
    pub name: String,
    /// `<stream ARN>/consumer/<name>:<created_ms / 1000>`.
    pub arn: String,
    pub status: ConsumerStatus,
    /// `ConsumerCreationTimestamp`, from RegisterConsumer's `now_ms`.
    pub created_ms: u64,
    /// When the status last changed.
    pub status_changed_ms: u64,
    /// The resource policy (PutResourcePolicy on the consumer ARN), as the client sent it.
    #[serde(default)]
    pub policy: Option<String>,
}

impl Consumer {
    /// The `<creationEpochSeconds>` of the ARN.
    pub fn created_secs(&self) -> u64 {
        self.created_ms / 1000
    }
}

/// What DescribeStreamConsumer, ListStreamConsumers and RegisterStreamConsumer report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerDescription {
    pub consumer_name: String,
    pub consumer_arn: String,
    pub status: ConsumerStatus,
    /// `ConsumerCreationTimestamp` in milliseconds.
    pub created_ms: u64,
    pub stream_arn: String,
}

impl ConsumerDescription {
    fn of(stream: &Stream, c: &Consumer) -> ConsumerDescription {
        ConsumerDescription {
            consumer_name: c.name.clone(),
            consumer_arn: c.arn.clone(),
            status: c.status,
            created_ms: c.created_ms,
            stream_arn: stream.arn.clone(),
        }
    }
}

/// The parts of a consumer ARN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumerArn<'a> {
    pub stream: StreamArn<'a>,
    pub consumer_name: &'a str,
    pub created_secs: u64,
}

/// Parses `arn:<partition>:kinesis:<region>:<account>:stream/<name>/consumer/<consumer>:<secs>`.
pub fn parse_consumer_arn(arn: &str) -> Option<ConsumerArn<'_>> {
    let (head, secs) = arn.rsplit_once(':')?;
    let (stream_arn, consumer_name) = head.split_once("/consumer/")?;
    let stream = parse_stream_arn(stream_arn)?;
    let digits = !secs.is_empty() && secs.bytes().all(|b| b.is_ascii_digit());
    let created_secs = secs.parse().ok().filter(|_| digits)?;
    name_errors(consumer_name, "consumerName", CONSUMER_NAME_CHARS_MAX)
        .is_empty()
        .then_some(ConsumerArn {
            stream,
            consumer_name,
            created_secs,
        })
}

/// `arn` parsed, or the ValidationException AWS gives for a `ConsumerARN` off the pattern.
fn consumer_arn_or_validation(arn: &str) -> Result<ConsumerArn<'_>, CatalogError> {
    parse_consumer_arn(arn).ok_or_else(|| {
        CatalogError::Validation(format!(
            "1 validation error detected: Value '{arn}' at 'consumerARN' failed to satisfy \
             constraint: Member must satisfy regular expression pattern: {CONSUMER_ARN_PATTERN}"
        ))
    })
}

// ---- texts ----

/// DescribeStreamConsumer / DeregisterStreamConsumer with neither a consumer ARN nor both a
/// stream ARN and a consumer name (kinesis-mock's text; no AWS recording found).
pub(crate) const CONSUMER_ARGS_REQUIRED: &str =
    "ConsumerArn or both ConsumerName and StreamARN are required for this request.";

/// A consumer not in ACTIVE status (recorded AWS text, aws-cloudformation/
/// cloudformation-coverage-roadmap#2442).
fn consumer_not_active(c: &Consumer, stream: &str, account: &str) -> CatalogError {
    CatalogError::ResourceInUse(format!(
        "Consumer {} with creation timestamp {} under stream {stream} and account {account} is \
         not in ACTIVE status.",
        c.name,
        c.created_secs()
    ))
}

/// Levee's text (no AWS recording found), in the style of the recorded not-ACTIVE text.
fn consumer_not_found(name: &str, secs: Option<u64>, stream: &str, account: &str) -> CatalogError {
    let created = secs.map_or_else(String::new, |s| format!(" with creation timestamp {s}"));
    CatalogError::ResourceNotFound(format!(
        "Consumer {name}{created} under stream {stream} and account {account} not found."
    ))
}

/// DeleteStream of a stream with consumers and no `EnforceConsumerDeletion` (recorded AWS text:
/// rebuy-de/aws-nuke#497, hashicorp/terraform-provider-aws#8420, aws/aws-cli#3580; the
/// apostrophe is U+2019 as AWS sends it).
pub(crate) fn consumers_exist(name: &str, account: &str) -> CatalogError {
    CatalogError::ResourceInUse(format!(
        "DeleteStream can\u{2019}t delete {account}:{name} because there are consumers \
         associated with this data stream. To delete {name} anyway, set the \
         EnforceConsumerDeletion parameter to true to force the deletion of all the consumers \
         that are associated with it."
    ))
}

impl Catalog {
    /// The stream a consumer ARN names, if it is in this account and region.
    fn consumer_stream_mut(&mut self, parsed: &ConsumerArn<'_>) -> Option<&mut Stream> {
        let here = parsed.stream.partition == "aws"
            && parsed.stream.region == self.config.region
            && parsed.stream.account == self.config.account_id;
        self.state
            .streams
            .get_mut(parsed.stream.name)
            .filter(|_| here)
    }

    pub(crate) fn register_consumer(
        &mut self,
        stream_arn: &str,
        consumer_name: &str,
        now_ms: u64,
    ) -> Result<(Outcome, bool), CatalogError> {
        let errors = name_errors(consumer_name, "consumerName", CONSUMER_NAME_CHARS_MAX);
        if let Some(e) = error::validation(&errors) {
            return Err(e);
        }
        let name = self.stream_by_arn(stream_arn)?.name.clone();
        let account = self.config.account_id.clone();
        let s = self
            .state
            .streams
            .get_mut(&name)
            .ok_or_else(|| CatalogError::not_found(&name, &account))?;
        // Consumers read through resharding, so UPDATING is fine; a stream still CREATING or
        // already DELETING has nothing to read.
        if !matches!(s.status, StreamStatus::Active | StreamStatus::Updating) {
            return Err(CatalogError::not_active(&name, &account, s.status.as_str()));
        }
        if s.consumers.contains_key(consumer_name) {
            // Levee's text: kinesis-mock says "Consumer <name> exists"; no AWS recording found.
            return Err(CatalogError::ResourceInUse(format!(
                "Consumer {consumer_name} under stream {name} and account {account} already \
                 exists."
            )));
        }
        if s.consumers.len() >= CONSUMERS_PER_STREAM_MAX {
            // Levee's text (the limit is documented, no recorded message was found).
            return Err(CatalogError::LimitExceeded(format!(
                "This request would exceed the limit of {CONSUMERS_PER_STREAM_MAX} consumers \
                 registered to stream {name} under account {account}."
            )));
        }
        let creating = s
            .consumers
            .values()
            .filter(|c| c.status == ConsumerStatus::Creating)
            .count();
        if creating >= CONSUMERS_CREATING_MAX {
            // Levee's text (the limit is documented, no recorded message was found).
            return Err(CatalogError::LimitExceeded(format!(
                "This request would exceed the limit of {CONSUMERS_CREATING_MAX} consumers in \
                 the CREATING state for stream {name} under account {account}."
            )));
        }
        let consumer = Consumer {
            name: consumer_name.to_string(),
            arn: format!("{}/consumer/{consumer_name}:{}", s.arn, now_ms / 1000),
            status: ConsumerStatus::Creating,
            created_ms: now_ms,
            status_changed_ms: now_ms,
            policy: None,
        };
        let consumer_arn = consumer.arn.clone();
        s.consumers.insert(consumer_name.to_string(), consumer);
        Ok((Outcome::ConsumerRegistered { consumer_arn }, false))
    }

    /// The consumer `consumer_arn` names (its stream, name and creation second must all match),
    /// mutably, with its stream's name.
    fn consumer_by_arn_mut(
        &mut self,
        consumer_arn: &str,
    ) -> Result<(&mut Consumer, String), CatalogError> {
        let parsed = consumer_arn_or_validation(consumer_arn)?;
        let stream = parsed.stream.name.to_string();
        let not_found = consumer_not_found(
            parsed.consumer_name,
            Some(parsed.created_secs),
            &stream,
            parsed.stream.account,
        );
        self.consumer_stream_mut(&parsed)
            .and_then(|s| s.consumers.get_mut(parsed.consumer_name))
            .filter(|c| c.arn == consumer_arn)
            .map(|c| (c, stream))
            .ok_or(not_found)
    }

    pub(crate) fn activate_consumer(
        &mut self,
        consumer_arn: &str,
        now_ms: u64,
    ) -> Result<(Outcome, bool), CatalogError> {
        let account = self.config.account_id.clone();
        let (c, stream) = self.consumer_by_arn_mut(consumer_arn)?;
        match c.status {
            ConsumerStatus::Creating => {
                c.status = ConsumerStatus::Active;
                c.status_changed_ms = now_ms;
                Ok((Outcome::ConsumerActivated, false))
            }
            ConsumerStatus::Active => Ok((Outcome::Unchanged, false)),
            // Levee's text (a server-issued command; mirrors ActivateStream's).
            ConsumerStatus::Deleting => Err(CatalogError::ResourceInUse(format!(
                "Consumer {} under stream {stream} and account {account} not CREATING, instead \
                 in state DELETING",
                c.name
            ))),
        }
    }

    pub(crate) fn deregister_consumer(
        &mut self,
        stream_arn: Option<&str>,
        consumer_name: Option<&str>,
        consumer_arn: Option<&str>,
        now_ms: u64,
    ) -> Result<(Outcome, bool), CatalogError> {
        let account = self.config.account_id.clone();
        let resolved = self.resolve_consumer(stream_arn, consumer_name, consumer_arn)?;
        let (stream, name) = (resolved.stream_arn, resolved.consumer_name);
        let stream = parse_stream_arn(&stream)
            .map(|a| a.name.to_string())
            .unwrap_or_default();
        let c = self
            .state
            .streams
            .get_mut(&stream)
            .and_then(|s| s.consumers.get_mut(&name))
            .ok_or_else(|| consumer_not_found(&name, None, &stream, &account))?;
        if c.status != ConsumerStatus::Active {
            return Err(consumer_not_active(c, &stream, &account));
        }
        c.status = ConsumerStatus::Deleting;
        c.status_changed_ms = now_ms;
        Ok((
            Outcome::ConsumerDeregistering {
                consumer_arn: c.arn.clone(),
            },
            false,
        ))
    }

    pub(crate) fn finish_deregister_consumer(
        &mut self,
        consumer_arn: &str,
    ) -> Result<(Outcome, bool), CatalogError> {
        let account = self.config.account_id.clone();
        let (c, stream) = self.consumer_by_arn_mut(consumer_arn)?;
        if c.status != ConsumerStatus::Deleting {
            // Levee's text (a server-issued command; mirrors FinishDeleteStream's).
            return Err(CatalogError::ResourceInUse(format!(
                "Consumer {} under stream {stream} and account {account} not DELETING, instead \
                 in state {}",
                c.name,
                c.status.as_str()
            )));
        }
        let name = c.name.clone();
        if let Some(s) = self.state.streams.get_mut(&stream) {
            s.consumers.remove(&name);
        }
        Ok((
            Outcome::ConsumerRemoved {
                consumer_arn: consumer_arn.to_string(),
            },
            false,
        ))
    }

    // ---- queries ----

    /// DescribeStreamConsumer (and DeregisterStreamConsumer's lookup): the consumer named by
    /// `consumer_arn`, or by `stream_arn` and `consumer_name`. All three may be given as long as
    /// they agree. Errors: neither form → InvalidArgumentException; malformed ARNs or name →
    /// ValidationException; a missing stream (by stream ARN) → the stream's not-found text; a
    /// missing consumer, or an ARN of an earlier consumer of the same name → consumer not found.
    pub fn describe_consumer(
        &self,
        stream_arn: Option<&str>,
        consumer_name: Option<&str>,
        consumer_arn: Option<&str>,
    ) -> Result<ConsumerDescription, CatalogError> {
        self.resolve_consumer(stream_arn, consumer_name, consumer_arn)
    }

    fn resolve_consumer(
        &self,
        stream_arn: Option<&str>,
        consumer_name: Option<&str>,
        consumer_arn: Option<&str>,
    ) -> Result<ConsumerDescription, CatalogError> {
        let account = &self.config.account_id;
        if let Some(n) = consumer_name {
            let errors = name_errors(n, "consumerName", CONSUMER_NAME_CHARS_MAX);
            if let Some(e) = error::validation(&errors) {
                return Err(e);
            }
        }
        match (consumer_arn, stream_arn, consumer_name) {
            (Some(arn), _, _) => {
                let parsed = consumer_arn_or_validation(arn)?;
                if let Some(s) = stream_arn {
                    self.stream_by_arn(s)?;
                }
                let stream_part = arn.split_once("/consumer/").map_or("", |(s, _)| s);
                let conflict = stream_arn.is_some_and(|s| s != stream_part)
                    || consumer_name.is_some_and(|n| n != parsed.consumer_name);
                if conflict {
                    // Levee's text (AWS documents that the three must not conflict; no
                    // recorded message was found).
                    return Err(CatalogError::InvalidArgument(format!(
                        "ConsumerARN {arn} does not match the ConsumerName or StreamARN given."
                    )));
                }
                let here = parsed.stream.partition == "aws"
                    && parsed.stream.region == self.config.region
                    && parsed.stream.account == *account;
                self.state
                    .streams
                    .get(parsed.stream.name)
                    .filter(|_| here)
                    .and_then(|s| {
                        s.consumers
                            .get(parsed.consumer_name)
                            .filter(|c| c.arn == arn)
                            .map(|c| ConsumerDescription::of(s, c))
                    })
                    .ok_or_else(|| {
                        consumer_not_found(
                            parsed.consumer_name,
                            Some(parsed.created_secs),
                            parsed.stream.name,
                            parsed.stream.account,
                        )
                    })
            }
            (None, Some(s), Some(n)) => {
                let stream = self.stream_by_arn(s)?;
                stream
                    .consumers
                    .get(n)
                    .map(|c| ConsumerDescription::of(stream, c))
                    .ok_or_else(|| consumer_not_found(n, None, &stream.name, account))
            }
            _ => Err(CatalogError::InvalidArgument(
                CONSUMER_ARGS_REQUIRED.to_string(),
            )),
        }
    }

    /// ListStreamConsumers: every consumer of the stream `stream_arn`, sorted by name, any
    /// status. Pagination is the caller's.
    pub fn list_consumers(
        &self,
        stream_arn: &str,
    ) -> Result<Vec<ConsumerDescription>, CatalogError> {
        let s = self.stream_by_arn(stream_arn)?;
        Ok(s.consumers
            .values()
            .map(|c| ConsumerDescription::of(s, c))
            .collect())
    }

    /// DescribeStreamSummary's `ConsumerCount`: consumers registered to stream `name`, any status.
    pub fn consumer_count(&self, name: &str) -> Result<usize, CatalogError> {
        self.stream(name).map(|s| s.consumers.len())
    }
}

/// The consumer invariants of one stream; `arns` collects ARNs across streams.
pub(crate) fn check_consumers(
    s: &Stream,
    arns: &mut std::collections::BTreeSet<String>,
) -> Result<(), String> {
    let n = &s.name;
    if s.status == StreamStatus::Deleting && !s.consumers.is_empty() {
        return Err(format!("stream {n} is DELETING with consumers"));
    }
    if s.consumers.len() > CONSUMERS_PER_STREAM_MAX {
        return Err(format!("stream {n} has {} consumers", s.consumers.len()));
    }
    let creating = s
        .consumers
        .values()
        .filter(|c| c.status == ConsumerStatus::Creating)
        .count();
    if creating > CONSUMERS_CREATING_MAX {
        return Err(format!("stream {n} has {creating} CREATING consumers"));
    }
    for (key, c) in &s.consumers {
        if key != &c.name
            || !name_errors(&c.name, "consumerName", CONSUMER_NAME_CHARS_MAX).is_empty()
        {
            return Err(format!(
                "stream {n}: consumer {} is filed under {key}",
                c.name
            ));
        }
        let want = format!("{}/consumer/{}:{}", s.arn, c.name, c.created_secs());
        if c.arn != want {
            return Err(format!("stream {n}: consumer {} has ARN {}", c.name, c.arn));
        }
        if !arns.insert(c.arn.clone()) {
            return Err(format!("consumer ARN {} is not unique", c.arn));
        }
    }
    Ok(())
}
