//! Catalog errors. Each variant is one Kinesis error type (`__type` on the wire) and carries the
//! exact message AWS sends, so the front-end converts an error with [`CatalogError::type_name`]
//! and [`CatalogError::message`] and nothing else.
//!
//! Errors are deterministic outputs of the state machine: every replica applying the same command
//! to the same state returns the same error, so a rejected command is as safe to replicate as an
//! accepted one.

use serde::{Deserialize, Serialize};

/// The message AWS sends with `InternalFailure`.
pub const INTERNAL_FAILURE_MESSAGE: &str = "Internal service failure.";

/// A command the catalog refused. The state is unchanged whenever one is returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum CatalogError {
    #[error("ResourceNotFoundException: {0}")]
    ResourceNotFound(String),
    #[error("ResourceInUseException: {0}")]
    ResourceInUse(String),
    #[error("LimitExceededException: {0}")]
    LimitExceeded(String),
    #[error("InvalidArgumentException: {0}")]
    InvalidArgument(String),
    /// Input that the wire model's constraints forbid. The front-end should catch these first;
    /// the catalog checks again so that invalid names or counts never enter the state.
    #[error("ValidationException: {0}")]
    Validation(String),
    /// A command would have broken a catalog invariant (a bug, never a client error). The state is
    /// left as it was; `reason` is for the log, the client sees [`INTERNAL_FAILURE_MESSAGE`].
    #[error("InternalFailure: {reason}")]
    InternalFailure { reason: String },
}

impl CatalogError {
    /// The Kinesis error type, as sent in `__type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            CatalogError::ResourceNotFound(_) => "ResourceNotFoundException",
            CatalogError::ResourceInUse(_) => "ResourceInUseException",
            CatalogError::LimitExceeded(_) => "LimitExceededException",
            CatalogError::InvalidArgument(_) => "InvalidArgumentException",
            CatalogError::Validation(_) => "ValidationException",
            CatalogError::InternalFailure { .. } => "InternalFailure",
        }
    }

    /// The message for the client.
    pub fn message(&self) -> &str {
        match self {
            CatalogError::ResourceNotFound(m)
            | CatalogError::ResourceInUse(m)
            | CatalogError::LimitExceeded(m)
            | CatalogError::InvalidArgument(m)
            | CatalogError::Validation(m) => m,
            CatalogError::InternalFailure { .. } => INTERNAL_FAILURE_MESSAGE,
        }
    }

    /// 400 for client errors, 500 for `InternalFailure`.
    pub fn http_status(&self) -> u16 {
        match self {
            CatalogError::InternalFailure { .. } => 500,
            _ => 400,
        }
    }

    pub(crate) fn not_found(name: &str, account: &str) -> CatalogError {
        CatalogError::ResourceNotFound(format!("Stream {name} under account {account} not found."))
    }

    pub(crate) fn already_exists(name: &str, account: &str) -> CatalogError {
        CatalogError::ResourceInUse(format!(
            "Stream {name} under account {account} already exists."
        ))
    }

    /// A shard id that does not parse, or names no shard of the stream. `shard` is the id as the
    /// caller wrote it when it does not parse, else the canonical `shardId-000000000005`
    /// (recorded in kinesalite's `test/splitShard.js` and `test/mergeShards.js`).
    pub(crate) fn shard_not_found(shard: &str, name: &str, account: &str) -> CatalogError {
        CatalogError::ResourceNotFound(format!(
            "Could not find shard {shard} in stream {name} under account {account}."
        ))
    }

    /// Splitting or merging a closed shard (recorded AWS text, kinesalite issue #109).
    pub(crate) fn shard_closed(shard: &str, name: &str, account: &str) -> CatalogError {
        CatalogError::ResourceInUse(format!(
            "Shard {shard} in stream {name} under account {account} has already been merged or \
             split, and thus is not eligible for merging or splitting."
        ))
    }

    /// The account shard limit (recorded in kinesalite's `test/createStream.js` and
    /// `test/splitShard.js`).
    pub(crate) fn shard_limit(
        account: &str,
        region: &str,
        current: u64,
        limit: u32,
        additional: u64,
    ) -> CatalogError {
        CatalogError::LimitExceeded(format!(
            "This request would exceed the shard limit for the account {account} in {region}. \
             Current shard count for the account: {current}. Limit: {limit}. Number of \
             additional shards that would have resulted from this request: {additional}. Refer \
             to the AWS Service Limits page \
             (http://docs.aws.amazon.com/general/latest/gr/aws_service_limits.html) for \
             current limits and how to request higher limits."
        ))
    }

    /// `state` is the AWS status string, e.g. `CREATING`.
    pub(crate) fn not_active(name: &str, account: &str, state: &str) -> CatalogError {
        CatalogError::ResourceInUse(format!(
            "Stream {name} under account {account} not ACTIVE, instead in state {state}"
        ))
    }
}

/// Builds a `ValidationException` message in AWS's format: "1 validation error detected: ..." or
/// "N validation errors detected: a; b", at most 10 listed.
pub(crate) fn validation(errors: &[String]) -> Option<CatalogError> {
    const LISTED_MAX: usize = 10;
    match errors.len() {
        0 => None,
        n => {
            let plural = if n == 1 { "error" } else { "errors" };
            let listed: Vec<&str> = errors.iter().take(LISTED_MAX).map(String::as_str).collect();
            Some(CatalogError::Validation(format!(
                "{n} validation {plural} detected: {}",
                listed.join("; ")
            )))
        }
    }
}
