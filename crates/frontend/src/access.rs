//! Resource-policy enforcement for identified callers: before a verified call runs, the
//! front-end works out the resource it acts on (a stream, a consumer, or the account), takes
//! that resource's policy from its own shard map (which carries every stream's and consumer's
//! parsed policy) and applies `levee_policy::authorize`. No call to the control plane: a data
//! operation is authorized from local state only, like its routing (static stability).
//!
//! The rule (Levee has no identity policies; a credential is its account's full-access
//! identity): an explicit Deny in the resource's policy refuses the call; a caller of the
//! stream's own account is otherwise allowed; a caller of another account needs an explicit
//! Allow. Account-level operations (CreateStream, ListStreams, DescribeLimits, the account
//! settings) have no resource policy, so only the account's own callers may call them; the
//! resource-policy operations themselves are never allowed across accounts (AWS: the caller
//! must belong to the owner's account). Under `--auth insecure` there is no caller and nothing
//! is enforced.
//!
//! Resources: stream operations act on the stream ARN; consumer operations
//! (DescribeStreamConsumer, DeregisterStreamConsumer, SubscribeToShard) and the by-ARN
//! operations given a consumer ARN act on the consumer ARN and are judged by the consumer's
//! policy; RegisterStreamConsumer and ListStreamConsumers act on the stream.

use levee_map::ShardMap;
use levee_policy::{authorize, denied_message, Policy, Verdict};
use levee_protocol::{ApiError, ErrorKind, Operation, Request};

use crate::auth::Caller;
use crate::dataplane::Identity;

/// What a call acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A stream: by name (resolved in this account) or by an ARN outside it.
    Stream(StreamRef),
    /// A consumer of a stream.
    Consumer {
        stream: StreamRef,
        name: String,
        /// The consumer ARN the caller gave, if any.
        arn: Option<String>,
    },
    /// The account itself (no resource policy applies).
    Account,
}

/// A stream as a request names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamRef {
    /// A stream of this account and region.
    Named(String),
    /// An ARN of another account or region, or not a stream ARN: no policy of ours covers it.
    Foreign(String),
    /// The request names no stream (validation will refuse it).
    Missing,
}

impl Identity {
    /// `arn:aws:kinesis:<region>:<account>:stream/<name>`.
    pub(crate) fn stream_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:kinesis:{}:{}:stream/{name}",
            self.region, self.account_id
        )
    }

    /// A stream named by `StreamName` or `StreamARN`.
    pub fn stream_ref(&self, name: Option<&str>, arn: Option<&str>) -> StreamRef {
        match (name, arn) {
            (Some(n), _) => StreamRef::Named(n.to_owned()),
            (None, Some(a)) => match a.strip_prefix(&self.stream_arn("")) {
                Some(n) if !n.is_empty() && !n.contains('/') => StreamRef::Named(n.to_owned()),
                _ => StreamRef::Foreign(a.to_owned()),
            },
            (None, None) => StreamRef::Missing,
        }
    }

    /// What a stream-or-consumer ARN (TagResource, the resource-policy operations) names.
    pub fn resource_ref(&self, arn: &str) -> Target {
        if let Some((stream_part, consumer)) = arn.split_once("/consumer/") {
            let name = consumer
                .rsplit_once(':')
                .map_or(consumer, |(n, _)| n)
                .to_owned();
            return Target::Consumer {
                stream: self.stream_ref(None, Some(stream_part)),
                name,
                arn: Some(arn.to_owned()),
            };
        }
        Target::Stream(self.stream_ref(None, Some(arn)))
    }

    /// A consumer named by `ConsumerARN`, or by `StreamARN` and `ConsumerName`.
    pub fn consumer_ref(
        &self,
        consumer_arn: Option<&str>,
        stream_arn: Option<&str>,
        consumer_name: Option<&str>,
    ) -> Target {
        match (consumer_arn, stream_arn, consumer_name) {
            (Some(arn), _, _) => self.resource_ref(arn),
            (None, Some(s), Some(n)) => Target::Consumer {
                stream: self.stream_ref(None, Some(s)),
                name: n.to_owned(),
                arn: None,
            },
            (None, s, _) => Target::Stream(self.stream_ref(None, s)),
        }
    }

    /// The resource a decoded request acts on. GetRecords (its stream is inside the iterator)
    /// and ListShards by NextToken are resolved by the caller of this function.
    pub fn target(&self, request: &Request) -> Target {
        use Request as R;
        let s = |name: &Option<String>, arn: &Option<String>| {
            Target::Stream(self.stream_ref(name.as_deref(), arn.as_deref()))
        };
        match request {
            R::AddTagsToStream(r) => s(&r.stream_name, &r.stream_arn),
            R::DecreaseStreamRetentionPeriod(r) => s(&r.stream_name, &r.stream_arn),
            R::IncreaseStreamRetentionPeriod(r) => s(&r.stream_name, &r.stream_arn),
            R::DeleteStream(r) => s(&r.stream_name, &r.stream_arn),
            R::DescribeStream(r) => s(&r.stream_name, &r.stream_arn),
            R::DescribeStreamSummary(r) => s(&r.stream_name, &r.stream_arn),
            R::DisableEnhancedMonitoring(r) => s(&r.stream_name, &r.stream_arn),
            R::EnableEnhancedMonitoring(r) => s(&r.stream_name, &r.stream_arn),
            R::GetShardIterator(r) => s(&r.stream_name, &r.stream_arn),
            R::ListShards(r) => s(&r.stream_name, &r.stream_arn),
            R::ListTagsForStream(r) => s(&r.stream_name, &r.stream_arn),
            R::MergeShards(r) => s(&r.stream_name, &r.stream_arn),
            R::PutRecord(r) => s(&r.stream_name, &r.stream_arn),
            R::PutRecords(r) => s(&r.stream_name, &r.stream_arn),
            R::RemoveTagsFromStream(r) => s(&r.stream_name, &r.stream_arn),
            R::SplitShard(r) => s(&r.stream_name, &r.stream_arn),
            R::StartStreamEncryption(r) => s(&r.stream_name, &r.stream_arn),
            R::StopStreamEncryption(r) => s(&r.stream_name, &r.stream_arn),
            R::UpdateShardCount(r) => s(&r.stream_name, &r.stream_arn),
            R::UpdateStreamWarmThroughput(r) => s(&r.stream_name, &r.stream_arn),
            R::UpdateMaxRecordSize(r) => s(&None, &r.stream_arn),
            R::UpdateStreamMode(r) => s(&None, &Some(r.stream_arn.clone())),
            R::RegisterStreamConsumer(r) => s(&None, &Some(r.stream_arn.clone())),
            R::ListStreamConsumers(r) => s(&None, &Some(r.stream_arn.clone())),
            R::GetRecords(r) => s(&None, &r.stream_arn),
            R::DescribeStreamConsumer(r) | R::DeregisterStreamConsumer(r) => self.consumer_ref(
                r.consumer_arn.as_deref(),
                r.stream_arn.as_deref(),
                r.consumer_name.as_deref(),
            ),
            R::SubscribeToShard(r) => self.resource_ref(&r.consumer_arn),
            R::TagResource(r) => self.resource_ref(&r.resource_arn),
            R::UntagResource(r) => self.resource_ref(&r.resource_arn),
            R::ListTagsForResource(r) => self.resource_ref(&r.resource_arn),
            R::PutResourcePolicy(r) => self.resource_ref(&r.resource_arn),
            R::GetResourcePolicy(r) => self.resource_ref(&r.resource_arn),
            R::DeleteResourcePolicy(r) => self.resource_ref(&r.resource_arn),
            R::CreateStream(r) => Target::Stream(StreamRef::Named(r.stream_name.clone())),
            R::ListStreams(_)
            | R::DescribeLimits(_)
            | R::DescribeAccountSettings(_)
            | R::UpdateAccountSettings(_) => Target::Account,
        }
    }

    /// Authorizes `caller` calling `op` on `target` by the policies in `map`.
    /// `AccessDeniedException` with IAM's text when refused.
    pub fn authorize(
        &self,
        map: &ShardMap,
        caller: &Caller,
        op: Operation,
        target: &Target,
    ) -> Result<(), ApiError> {
        let action = format!("kinesis:{}", op.name());
        let (resource, policy) = self.resource_and_policy(map, op, target);
        let mut verdict = authorize(
            policy.as_ref().map(|p| p.as_ref()),
            &caller.principal,
            &self.account_id,
            &action,
            &resource,
        );
        let policy_op = matches!(
            op,
            Operation::PutResourcePolicy
                | Operation::GetResourcePolicy
                | Operation::DeleteResourcePolicy
        );
        if verdict == Verdict::Allowed && policy_op && caller.account != self.account_id {
            verdict = Verdict::NotAllowed;
        }
        if verdict == Verdict::Allowed {
            return Ok(());
        }
        let reason = match verdict {
            Verdict::ExplicitDeny => "explicit_deny",
            _ => "not_allowed",
        };
        metrics::counter!("levee_auth_denied_total", "op" => op.name(), "reason" => reason)
            .increment(1);
        Err(ApiError::new(
            ErrorKind::AccessDenied,
            denied_message(&caller.principal, &action, &resource, verdict),
        ))
    }

    /// The ARN named in messages and matched by `Resource`, and the policy that judges it.
    fn resource_and_policy(
        &self,
        map: &ShardMap,
        op: Operation,
        target: &Target,
    ) -> (String, Option<PolicyRef>) {
        let account_arn = || format!("arn:aws:kinesis:{}:{}:*", self.region, self.account_id);
        match target {
            Target::Account => (account_arn(), None),
            Target::Stream(StreamRef::Missing) => (account_arn(), None),
            Target::Stream(StreamRef::Foreign(arn)) => (arn.clone(), None),
            Target::Stream(StreamRef::Named(name)) => {
                let policy = (op != Operation::CreateStream)
                    .then(|| map.stream(name))
                    .flatten()
                    .and_then(|r| r.policies.stream.clone())
                    .map(PolicyRef);
                (self.stream_arn(name), policy)
            }
            Target::Consumer { stream, name, arn } => {
                let StreamRef::Named(stream_name) = stream else {
                    let fallback = match stream {
                        StreamRef::Foreign(a) => format!("{a}/consumer/{name}"),
                        _ => account_arn(),
                    };
                    return (arn.clone().unwrap_or(fallback), None);
                };
                let entry = map
                    .stream(stream_name)
                    .and_then(|r| r.policies.consumer(name).cloned())
                    // A consumer ARN of an earlier consumer of that name is another resource.
                    .filter(|c| arn.as_deref().is_none_or(|a| a == c.arn));
                let resource = arn
                    .clone()
                    .or_else(|| entry.as_ref().map(|c| c.arn.clone()))
                    .unwrap_or_else(|| format!("{}/consumer/{name}", self.stream_arn(stream_name)));
                (resource, entry.map(|c| PolicyRef(c.policy)))
            }
        }
    }
}

/// A shared parsed policy.
struct PolicyRef(std::sync::Arc<levee_policy::ResourcePolicy>);

impl AsRef<Policy> for PolicyRef {
    fn as_ref(&self) -> &Policy {
        self.0.policy()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use levee_map::{
        even_split, ConsumerPolicy, GroupId, NodeId, Policies, ShardId, ShardRoute, StreamRoute,
        StreamState,
    };
    use levee_policy::{Principal, ResourcePolicy};
    use std::sync::Arc;

    const STREAM_ARN: &str = "arn:aws:kinesis:us-east-1:000000000000:stream/s";
    const CONSUMER_ARN: &str =
        "arn:aws:kinesis:us-east-1:000000000000:stream/s/consumer/c:1700000000";

    fn identity() -> Identity {
        Identity {
            account_id: "000000000000".into(),
            region: "us-east-1".into(),
        }
    }

    fn caller(account: &str, name: &str) -> Caller {
        Caller {
            key_id: "AKIA".into(),
            account: account.into(),
            principal: Principal::of_credential(account, name, "AKIA"),
        }
    }

    fn map(stream_policy: Option<&str>, consumer_policy: Option<&str>) -> ShardMap {
        let parse = |t: &str| Arc::new(ResourcePolicy::parse(t).unwrap());
        let route = StreamRoute {
            name: "s".into(),
            uid: 1,
            state: StreamState::Active,
            shards: vec![ShardRoute {
                shard_id: ShardId(0),
                uid: 1,
                hash_range: even_split(1)[0],
                open: true,
                group: GroupId(1),
                node: NodeId(1),
                epoch: 1,
                parent: None,
                adjacent_parent: None,
                created_ms: 0,
                closed_ms: None,
            }],
            policies: Policies {
                stream: stream_policy.map(parse),
                consumers: consumer_policy
                    .map(|t| ConsumerPolicy {
                        name: "c".into(),
                        arn: CONSUMER_ARN.into(),
                        policy: parse(t),
                    })
                    .into_iter()
                    .collect(),
            },
            facts: Default::default(),
        };
        ShardMap::build(1, vec![route]).unwrap()
    }

    fn stream_target() -> Target {
        Target::Stream(StreamRef::Named("s".into()))
    }

    const DENY_BOB_PUTS: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::000000000000:user/bob"},"Action":["kinesis:PutRecord","kinesis:PutRecords"],"Resource":"*"},{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kinesis:*","Resource":"*"}]}"#;

    #[test]
    fn explicit_deny_refuses_one_principal_only() {
        let id = identity();
        let m = map(Some(DENY_BOB_PUTS), None);
        let bob = caller("000000000000", "bob");
        let alice = caller("000000000000", "alice");
        let e = id
            .authorize(&m, &bob, Operation::PutRecords, &stream_target())
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::AccessDenied);
        assert_eq!(
            e.message,
            format!(
                "User: arn:aws:iam::000000000000:user/bob is not authorized to perform: \
                 kinesis:PutRecords on resource: {STREAM_ARN} with an explicit deny in a \
                 resource-based policy"
            )
        );
        id.authorize(&m, &bob, Operation::GetShardIterator, &stream_target())
            .unwrap();
        id.authorize(&m, &alice, Operation::PutRecords, &stream_target())
            .unwrap();
    }

    #[test]
    fn cross_account_needs_an_allow_and_never_manages_policies() {
        let id = identity();
        let other = caller("444455556666", "eve");
        let e = id
            .authorize(
                &map(None, None),
                &other,
                Operation::PutRecords,
                &stream_target(),
            )
            .unwrap_err();
        assert!(e
            .message
            .ends_with("because no resource-based policy allows the kinesis:PutRecords action"));
        let allowed = caller("111122223333", "carol");
        let m = map(Some(DENY_BOB_PUTS), None);
        id.authorize(&m, &allowed, Operation::PutRecords, &stream_target())
            .unwrap();
        for op in [Operation::PutResourcePolicy, Operation::GetResourcePolicy] {
            assert!(id.authorize(&m, &allowed, op, &stream_target()).is_err());
        }
        for op in [Operation::ListStreams, Operation::DescribeLimits] {
            assert!(id.authorize(&m, &allowed, op, &Target::Account).is_err());
            id.authorize(&m, &caller("000000000000", "bob"), op, &Target::Account)
                .unwrap();
        }
        let foreign = id.stream_ref(
            None,
            Some("arn:aws:kinesis:eu-west-1:000000000000:stream/s"),
        );
        assert!(matches!(foreign, StreamRef::Foreign(_)));
    }

    #[test]
    fn consumer_operations_are_judged_by_the_consumer_policy() {
        let id = identity();
        let deny_subscribe = r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"kinesis:SubscribeToShard","Resource":"*"}}"#;
        let m = map(None, Some(deny_subscribe));
        let alice = caller("000000000000", "alice");
        let target = id.resource_ref(CONSUMER_ARN);
        let e = id
            .authorize(&m, &alice, Operation::SubscribeToShard, &target)
            .unwrap_err();
        assert!(e.message.contains(CONSUMER_ARN), "{}", e.message);
        id.authorize(&m, &alice, Operation::DescribeStreamConsumer, &target)
            .unwrap();
        // The same name under another creation time is another consumer: not this policy.
        let older = id.resource_ref(&CONSUMER_ARN.replace("1700000000", "1600000000"));
        id.authorize(&m, &alice, Operation::SubscribeToShard, &older)
            .unwrap();
        // By stream ARN and consumer name.
        let by_name = id.consumer_ref(None, Some(STREAM_ARN), Some("c"));
        assert!(id
            .authorize(&m, &alice, Operation::SubscribeToShard, &by_name)
            .is_err());
        // The stream's policy does not judge consumer operations.
        let m = map(Some(DENY_BOB_PUTS), None);
        let cross = caller("111122223333", "carol");
        assert!(id
            .authorize(&m, &cross, Operation::SubscribeToShard, &target)
            .is_err());
    }
}
