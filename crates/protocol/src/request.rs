//! Decoding a request body into a typed, validated [`Request`].
//!
//! Body → [`Tree`] (parse; failure is a message-less `SerializationException`, as AWS answers) →
//! type check (`SerializationException` with Coral's text) → validation (`ValidationException`)
//! → the operation's input struct. Only the last step uses serde, on a tree already known to
//! fit, so the typed structs never see a value AWS would have rejected.

use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::operation::Operation;
use crate::schema::{check_members, validate};
use crate::shapes::input_members;
use crate::tree::Tree;
use crate::types::*;
use crate::wire::WireFormat;

macro_rules! requests {
    ($($op:ident($input:ty)),* $(,)?) => {
        /// A decoded request: one variant per operation, holding its input.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Request {
            $($op($input),)*
        }

        impl Request {
            /// The operation this request is for.
            pub fn operation(&self) -> Operation {
                match self {
                    $(Request::$op(_) => Operation::$op,)*
                }
            }

            /// The input encoded as a request body in `format` (what a client would send).
            pub fn encode(&self, format: WireFormat) -> Vec<u8> {
                match self {
                    $(Request::$op(input) => crate::encode_response(format, input),)*
                }
            }
        }

        fn build(op: Operation, value: ciborium::Value) -> Result<Request, ApiError> {
            match op {
                $(Operation::$op => typed(value).map(Request::$op),)*
            }
        }
    };
}

requests! {
    AddTagsToStream(AddTagsToStreamInput),
    CreateStream(CreateStreamInput),
    DecreaseStreamRetentionPeriod(DecreaseStreamRetentionPeriodInput),
    DeleteResourcePolicy(DeleteResourcePolicyInput),
    DeleteStream(DeleteStreamInput),
    DeregisterStreamConsumer(DeregisterStreamConsumerInput),
    DescribeAccountSettings(EmptyInput),
    DescribeLimits(EmptyInput),
    DescribeStream(DescribeStreamInput),
    DescribeStreamConsumer(DescribeStreamConsumerInput),
    DescribeStreamSummary(DescribeStreamSummaryInput),
    DisableEnhancedMonitoring(DisableEnhancedMonitoringInput),
    EnableEnhancedMonitoring(EnableEnhancedMonitoringInput),
    GetRecords(GetRecordsInput),
    GetResourcePolicy(GetResourcePolicyInput),
    GetShardIterator(GetShardIteratorInput),
    IncreaseStreamRetentionPeriod(IncreaseStreamRetentionPeriodInput),
    ListShards(ListShardsInput),
    ListStreamConsumers(ListStreamConsumersInput),
    ListStreams(ListStreamsInput),
    ListTagsForResource(ListTagsForResourceInput),
    ListTagsForStream(ListTagsForStreamInput),
    MergeShards(MergeShardsInput),
    PutRecord(PutRecordInput),
    PutRecords(PutRecordsInput),
    PutResourcePolicy(PutResourcePolicyInput),
    RegisterStreamConsumer(RegisterStreamConsumerInput),
    RemoveTagsFromStream(RemoveTagsFromStreamInput),
    SplitShard(SplitShardInput),
    StartStreamEncryption(StartStreamEncryptionInput),
    StopStreamEncryption(StopStreamEncryptionInput),
    SubscribeToShard(SubscribeToShardInput),
    TagResource(TagResourceInput),
    UntagResource(UntagResourceInput),
    UpdateAccountSettings(UpdateAccountSettingsInput),
    UpdateMaxRecordSize(UpdateMaxRecordSizeInput),
    UpdateShardCount(UpdateShardCountInput),
    UpdateStreamMode(UpdateStreamModeInput),
    UpdateStreamWarmThroughput(UpdateStreamWarmThroughputInput),
}

fn typed<T: DeserializeOwned>(value: ciborium::Value) -> Result<T, ApiError> {
    // The tree was type-checked and validated against the same shapes the struct mirrors, so
    // this cannot fail for a well-formed schema; if it does, the body was not understood.
    value
        .deserialized()
        .map_err(|_| ApiError::serialization(""))
}

/// Whether `body` parses as a JSON object (CBOR map): the first check AWS makes of a non-empty
/// body, before it looks at the target or the signature. [`decode_request`] makes it again.
pub fn is_document(format: WireFormat, body: &[u8]) -> bool {
    let tree = match format {
        WireFormat::Json => Tree::from_json(body),
        WireFormat::Cbor => Tree::from_cbor(body),
    };
    matches!(tree, Some(Tree::Map(_)))
}

/// Type-checks, validates and decodes the body of a request for `op`.
///
/// - A body that does not parse, or is not an object/map, is a `SerializationException` with no
///   message. An empty JSON body counts as `{}`; an empty CBOR body does not parse.
/// - The first member of the wrong kind is a `SerializationException` with AWS's text.
/// - Constraint violations are one `ValidationException` listing up to 10 of them.
/// - Unknown members and members set to null are ignored.
pub fn decode_request(op: Operation, format: WireFormat, body: &[u8]) -> Result<Request, ApiError> {
    let tree = match format {
        WireFormat::Json if body.is_empty() => Some(Tree::Map(Vec::new())),
        WireFormat::Json => Tree::from_json(body),
        WireFormat::Cbor => Tree::from_cbor(body),
    };
    let tree = match tree {
        Some(tree @ Tree::Map(_)) => tree,
        _ => return Err(ApiError::serialization("")),
    };
    let members = input_members(op);
    let checked = check_members(tree, members)?;
    validate(&checked, members)?;
    build(op, checked.into_cbor_value())
}
