//! The operations of the Kinesis API and the `X-Amz-Target` header that names them.
//!
//! One enum with every operation of the current model (39), named exactly as AWS names them, so
//! routing is a `match` the compiler checks for completeness.

use crate::error::ApiError;

/// The `X-Amz-Target` prefix of the Kinesis API version Levee speaks.
pub const TARGET_PREFIX: &str = "Kinesis_20131202";

macro_rules! operations {
    ($($name:ident),* $(,)?) => {
        /// A Kinesis API operation.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Operation {
            $($name,)*
        }

        impl Operation {
            /// Every operation, in alphabetical order.
            pub const ALL: &'static [Operation] = &[$(Operation::$name,)*];

            /// The operation's name as AWS spells it, e.g. `"PutRecords"`.
            pub fn name(self) -> &'static str {
                match self {
                    $(Operation::$name => stringify!($name),)*
                }
            }

            /// The operation with this exact name, if any.
            pub fn from_name(name: &str) -> Option<Operation> {
                match name {
                    $(stringify!($name) => Some(Operation::$name),)*
                    _ => None,
                }
            }
        }
    };
}

operations! {
    AddTagsToStream,
    CreateStream,
    DecreaseStreamRetentionPeriod,
    DeleteResourcePolicy,
    DeleteStream,
    DeregisterStreamConsumer,
    DescribeAccountSettings,
    DescribeLimits,
    DescribeStream,
    DescribeStreamConsumer,
    DescribeStreamSummary,
    DisableEnhancedMonitoring,
    EnableEnhancedMonitoring,
    GetRecords,
    GetResourcePolicy,
    GetShardIterator,
    IncreaseStreamRetentionPeriod,
    ListShards,
    ListStreamConsumers,
    ListStreams,
    ListTagsForResource,
    ListTagsForStream,
    MergeShards,
    PutRecord,
    PutRecords,
    PutResourcePolicy,
    RegisterStreamConsumer,
    RemoveTagsFromStream,
    SplitShard,
    StartStreamEncryption,
    StopStreamEncryption,
    SubscribeToShard,
    TagResource,
    UntagResource,
    UpdateAccountSettings,
    UpdateMaxRecordSize,
    UpdateShardCount,
    UpdateStreamMode,
    UpdateStreamWarmThroughput,
}

impl Operation {
    /// Parses `X-Amz-Target: Kinesis_20131202.<Operation>`. Anything else is an
    /// `UnknownOperationException` with no message, as AWS answers (kinesalite `index.js`; like
    /// it, only the first two dot-separated parts are read).
    pub fn from_target(target: &str) -> Result<Operation, ApiError> {
        let mut parts = target.split('.');
        let service = parts.next().unwrap_or_default();
        let operation = parts.next().unwrap_or_default();
        if service != TARGET_PREFIX {
            return Err(ApiError::unknown_operation());
        }
        Operation::from_name(operation).ok_or_else(ApiError::unknown_operation)
    }

    /// `Kinesis_20131202.<name>`, the value of `X-Amz-Target` for this operation.
    pub fn target(self) -> String {
        format!("{TARGET_PREFIX}.{}", self.name())
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn thirty_nine_operations_round_trip_through_the_target() {
        assert_eq!(Operation::ALL.len(), 39);
        for &op in Operation::ALL {
            assert_eq!(Operation::from_target(&op.target()), Ok(op));
        }
    }

    #[test]
    fn unknown_targets() {
        for target in [
            "",
            "Kinesis_20131202",
            "Kinesis_20131202.",
            "Kinesis_20131202.Nope",
            "kinesis_20131202.ListStreams",
            "DynamoDB_20120810.ListStreams",
            "Kinesis_20131202.listStreams",
        ] {
            let err = Operation::from_target(target).unwrap_err();
            assert_eq!(err.kind, ErrorKind::UnknownOperation, "{target}");
            assert_eq!(err.message, "");
        }
    }
}
