//! API errors: the Kinesis error types a client can see, one-to-one, with the texts AWS sends.
//!
//! Every failure a request can meet ends as an [`ApiError`]; the front-end turns it into an HTTP
//! status ([`ErrorKind::http_status`]) and a body ([`crate::encode_error`]). Helpers build the
//! messages whose exact wording clients and tests depend on (recorded against real AWS in
//! kinesalite's tests).

use std::fmt;

/// The error types of the Kinesis API (model errors plus the protocol-level ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    ResourceNotFound,
    ResourceInUse,
    InvalidArgument,
    LimitExceeded,
    Validation,
    Serialization,
    UnknownOperation,
    MissingAuthenticationToken,
    IncompleteSignature,
    InvalidSignature,
    UnrecognizedClient,
    AccessDenied,
    ExpiredIterator,
    ExpiredNextToken,
    ProvisionedThroughputExceeded,
    KmsDisabled,
    KmsInvalidState,
    KmsAccessDenied,
    KmsNotFound,
    KmsOptInRequired,
    KmsThrottling,
    InternalFailure,
}

impl ErrorKind {
    /// Every kind, for tests and tables.
    pub const ALL: [ErrorKind; 22] = [
        ErrorKind::ResourceNotFound,
        ErrorKind::ResourceInUse,
        ErrorKind::InvalidArgument,
        ErrorKind::LimitExceeded,
        ErrorKind::Validation,
        ErrorKind::Serialization,
        ErrorKind::UnknownOperation,
        ErrorKind::MissingAuthenticationToken,
        ErrorKind::IncompleteSignature,
        ErrorKind::InvalidSignature,
        ErrorKind::UnrecognizedClient,
        ErrorKind::AccessDenied,
        ErrorKind::ExpiredIterator,
        ErrorKind::ExpiredNextToken,
        ErrorKind::ProvisionedThroughputExceeded,
        ErrorKind::KmsDisabled,
        ErrorKind::KmsInvalidState,
        ErrorKind::KmsAccessDenied,
        ErrorKind::KmsNotFound,
        ErrorKind::KmsOptInRequired,
        ErrorKind::KmsThrottling,
        ErrorKind::InternalFailure,
    ];

    /// The `__type` on the wire (no namespace prefix), e.g. `"ResourceNotFoundException"`.
    pub fn type_name(self) -> &'static str {
        match self {
            ErrorKind::ResourceNotFound => "ResourceNotFoundException",
            ErrorKind::ResourceInUse => "ResourceInUseException",
            ErrorKind::InvalidArgument => "InvalidArgumentException",
            ErrorKind::LimitExceeded => "LimitExceededException",
            ErrorKind::Validation => "ValidationException",
            ErrorKind::Serialization => "SerializationException",
            ErrorKind::UnknownOperation => "UnknownOperationException",
            ErrorKind::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            ErrorKind::IncompleteSignature => "IncompleteSignatureException",
            ErrorKind::InvalidSignature => "InvalidSignatureException",
            ErrorKind::UnrecognizedClient => "UnrecognizedClientException",
            ErrorKind::AccessDenied => "AccessDeniedException",
            ErrorKind::ExpiredIterator => "ExpiredIteratorException",
            ErrorKind::ExpiredNextToken => "ExpiredNextTokenException",
            ErrorKind::ProvisionedThroughputExceeded => "ProvisionedThroughputExceededException",
            ErrorKind::KmsDisabled => "KMSDisabledException",
            ErrorKind::KmsInvalidState => "KMSInvalidStateException",
            ErrorKind::KmsAccessDenied => "KMSAccessDeniedException",
            ErrorKind::KmsNotFound => "KMSNotFoundException",
            ErrorKind::KmsOptInRequired => "KMSOptInRequired",
            ErrorKind::KmsThrottling => "KMSThrottlingException",
            ErrorKind::InternalFailure => "InternalFailure",
        }
    }

    /// The HTTP status of a JSON/CBOR error response: 400, except `InternalFailure` (500).
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::InternalFailure => 500,
            _ => 400,
        }
    }

    /// The key of the message in the error body: `Message` for `SerializationException`
    /// (kinesalite `validations/index.js`), `message` for everything else.
    pub fn message_key(self) -> &'static str {
        match self {
            ErrorKind::Serialization => "Message",
            _ => "message",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.type_name())
    }
}

/// A Kinesis API error: its type and its message (empty means "no message member in the body",
/// as AWS sends for `UnknownOperationException`, a body-less `SerializationException` and
/// `InternalFailure`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
        }
    }

    /// `ResourceNotFoundException: Stream <name> under account <account> not found.`
    pub fn stream_not_found(name: &str, account: &str) -> Self {
        Self::new(
            ErrorKind::ResourceNotFound,
            format!("Stream {name} under account {account} not found."),
        )
    }

    /// `ResourceInUseException: Stream <name> under account <account> already exists.`
    pub fn stream_already_exists(name: &str, account: &str) -> Self {
        Self::new(
            ErrorKind::ResourceInUse,
            format!("Stream {name} under account {account} already exists."),
        )
    }

    /// `ResourceInUseException: Stream <name> under account <account> not ACTIVE, instead in
    /// state <status>` (no final full stop, as recorded).
    pub fn stream_not_active(name: &str, account: &str, status: &str) -> Self {
        Self::new(
            ErrorKind::ResourceInUse,
            format!("Stream {name} under account {account} not ACTIVE, instead in state {status}"),
        )
    }

    /// `ResourceNotFoundException: Shard <shard> in stream <name> under account <account> does
    /// not exist` (kinesalite `test/getShardIterator.js`).
    pub fn shard_not_found(shard_id: &str, name: &str, account: &str) -> Self {
        Self::new(
            ErrorKind::ResourceNotFound,
            format!("Shard {shard_id} in stream {name} under account {account} does not exist"),
        )
    }

    /// `InvalidArgumentException: Invalid ShardIterator.`
    pub fn invalid_shard_iterator() -> Self {
        Self::new(ErrorKind::InvalidArgument, "Invalid ShardIterator.")
    }

    /// `InvalidArgumentException` with the given message.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }

    /// `LimitExceededException` with the given message.
    pub fn limit_exceeded(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::LimitExceeded, message)
    }

    /// `ValidationException` with the given message.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Validation, message)
    }

    /// `SerializationException` with the given message (empty: the body has none).
    pub fn serialization(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Serialization, message)
    }

    /// `UnknownOperationException` with no message, as AWS sends it.
    pub fn unknown_operation() -> Self {
        Self::new(ErrorKind::UnknownOperation, "")
    }

    /// `InternalFailure` (HTTP 500) with no message, as AWS sends it.
    pub fn internal_failure() -> Self {
        Self::new(ErrorKind::InternalFailure, "")
    }

    /// `AccessDeniedException` with the given message.
    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::AccessDenied, message)
    }

    /// The HTTP status for this error.
    pub fn http_status(&self) -> u16 {
        self.kind.http_status()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_are_distinct_and_statuses_match_the_spec() {
        let mut names: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.type_name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ErrorKind::ALL.len());
        for kind in ErrorKind::ALL {
            let expected = if kind == ErrorKind::InternalFailure {
                500
            } else {
                400
            };
            assert_eq!(kind.http_status(), expected, "{kind}");
        }
    }

    #[test]
    fn helper_texts() {
        // kinesis-api.md §1.4 "Other error messages"; kinesalite test/createStream.js.
        assert_eq!(
            ApiError::stream_not_found("wrong-stream-name", "111111111111").message,
            "Stream wrong-stream-name under account 111111111111 not found."
        );
        assert_eq!(
            ApiError::stream_already_exists("s", "1").message,
            "Stream s under account 1 already exists."
        );
        assert_eq!(
            ApiError::stream_not_active("s", "1", "CREATING").message,
            "Stream s under account 1 not ACTIVE, instead in state CREATING"
        );
        assert_eq!(
            ApiError::shard_not_found("shardId-000000000000", "s", "1").message,
            "Shard shardId-000000000000 in stream s under account 1 does not exist"
        );
    }
}
