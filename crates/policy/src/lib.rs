//! Resource-based policies (PutResourcePolicy, GetResourcePolicy, DeleteResourcePolicy) on
//! streams and consumers: the subset of the IAM policy grammar Levee accepts, its parser, the
//! pure [`evaluate`] of one policy, and [`authorize`] — the rule the front-end applies to every
//! call of a verified caller. Pure (no I/O): the catalog parses with it when a policy is put, the
//! shard map carries parsed policies ([`ResourcePolicy`]) to the front-ends, and the front-end
//! evaluates them from its local map without asking the control plane.
//!
//! The subset (anything else is refused with `InvalidArgumentException` naming the element):
//!
//! | element | accepted |
//! |---|---|
//! | `Version` | required: `"2012-10-17"` or `"2008-10-17"` |
//! | `Id` | optional string |
//! | `Statement` | required: one statement object or a non-empty array of them |
//! | `Sid` | optional string, unique within the policy |
//! | `Effect` | required: `"Allow"` or `"Deny"` |
//! | `Principal` | required: `"*"`, or `{"AWS": v}` with `v` one value or an array of `"*"`, a 12-digit account id, or an `arn:aws…:iam::`/`sts::` ARN |
//! | `Action` / `NotAction` | exactly one: a string or array of `"*"` or `kinesis:<Action>`, where `<Action>` may use `*` and `?` wildcards and otherwise names a Kinesis operation |
//! | `Resource` | required: a string or array of `"*"` or `arn:aws…:kinesis:…` ARNs, `*` and `?` wildcards allowed |
//!
//! Not supported: `Condition`, `NotPrincipal`, `NotResource`, principals other than `AWS`
//! (`Service`, `Federated`, `CanonicalUser`), and any other element.
//!
//! Evaluation follows IAM's order within one policy: an explicit `Deny` that matches wins, then a
//! matching `Allow`; otherwise the policy says nothing ([`Decision::NoMatch`]). Action names match
//! case-insensitively (as IAM does), ARNs case-sensitively.
//!
//! Authorization ([`authorize`]): Levee has no identity policies — a credential is its account's
//! full-access identity — so the resource policy alone decides: an explicit Deny refuses; a
//! caller of the resource's own account is otherwise allowed; a caller of another account needs
//! an explicit Allow.

use serde_json::Value;

/// Bytes a policy document may have (AWS's limit for Kinesis resource policies is 20 KiB).
pub const POLICY_BYTES_MAX: usize = 20 * 1024;
/// Statements one policy may hold (Levee's cap; keeps evaluation bounded).
pub const POLICY_STATEMENTS_MAX: usize = 100;

/// The policy language versions IAM knows.
const VERSIONS: &[&str] = &["2012-10-17", "2008-10-17"];

/// Every Kinesis action a policy may name without a wildcard (the API's operations).
pub const KINESIS_ACTIONS: &[&str] = &[
    "AddTagsToStream",
    "CreateStream",
    "DecreaseStreamRetentionPeriod",
    "DeleteResourcePolicy",
    "DeleteStream",
    "DeregisterStreamConsumer",
    "DescribeAccountSettings",
    "DescribeLimits",
    "DescribeStream",
    "DescribeStreamConsumer",
    "DescribeStreamSummary",
    "DisableEnhancedMonitoring",
    "EnableEnhancedMonitoring",
    "GetRecords",
    "GetResourcePolicy",
    "GetShardIterator",
    "IncreaseStreamRetentionPeriod",
    "ListShards",
    "ListStreamConsumers",
    "ListStreams",
    "ListTagsForResource",
    "ListTagsForStream",
    "MergeShards",
    "PutRecord",
    "PutRecords",
    "PutResourcePolicy",
    "RegisterStreamConsumer",
    "RemoveTagsFromStream",
    "SplitShard",
    "StartStreamEncryption",
    "StopStreamEncryption",
    "SubscribeToShard",
    "TagResource",
    "UntagResource",
    "UpdateAccountSettings",
    "UpdateMaxRecordSize",
    "UpdateShardCount",
    "UpdateStreamMode",
    "UpdateStreamWarmThroughput",
];

/// A statement's effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// What one policy says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A matching statement allows it and none denies it.
    Allow,
    /// A matching statement denies it (wins over any Allow).
    Deny,
    /// No statement matches.
    NoMatch,
}

/// Which actions a statement covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actions {
    /// `Action`: the listed patterns.
    Only(Vec<String>),
    /// `NotAction`: every action but the listed patterns.
    AllBut(Vec<String>),
}

/// One parsed statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    /// `"*"`, account ids or ARNs (patterns).
    pub principals: Vec<String>,
    pub actions: Actions,
    /// ARN patterns, or `"*"`.
    pub resources: Vec<String>,
}

/// A parsed, valid policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub version: String,
    pub id: Option<String>,
    pub statements: Vec<Statement>,
}

/// Why a policy document was refused: the `InvalidArgumentException` text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidPolicy(pub String);

fn invalid(msg: impl Into<String>) -> InvalidPolicy {
    InvalidPolicy(msg.into())
}

fn unsupported(element: &str) -> InvalidPolicy {
    invalid(format!(
        "Policy element {element} is not supported by Levee. Supported elements: Version, Id, \
         Statement, Sid, Effect, Principal (\"*\" or AWS), Action, NotAction, Resource."
    ))
}

/// One string or a non-empty array of strings.
fn strings(v: &Value, element: &str) -> Result<Vec<String>, InvalidPolicy> {
    let bad = || {
        invalid(format!(
            "Policy element {element} must be a string or an array of strings."
        ))
    };
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned).ok_or_else(bad))
            .collect(),
        _ => Err(bad()),
    }
}

fn check_action(a: &str) -> Result<(), InvalidPolicy> {
    if a == "*" {
        return Ok(());
    }
    let Some((service, name)) = a.split_once(':') else {
        return Err(invalid(format!(
            "Policy action {a} is not valid: write kinesis:<Action> or *."
        )));
    };
    if !service.eq_ignore_ascii_case("kinesis") {
        return Err(invalid(format!(
            "Policy action {a} is not a Kinesis action; only kinesis:* actions apply to Kinesis \
             resources."
        )));
    }
    let chars_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphabetic() || b == b'*' || b == b'?');
    let wildcard = name.contains(['*', '?']);
    let known = KINESIS_ACTIONS.iter().any(|k| k.eq_ignore_ascii_case(name));
    if !chars_ok || (!wildcard && !known) {
        return Err(invalid(format!(
            "Policy action {a} is not a Kinesis action."
        )));
    }
    Ok(())
}

fn check_principal(p: &str) -> Result<(), InvalidPolicy> {
    let account = p.len() == 12 && p.bytes().all(|b| b.is_ascii_digit());
    let arn = p.starts_with("arn:aws")
        && (p.contains(":iam::") || p.contains(":sts::"))
        && !p.chars().any(char::is_whitespace);
    if p == "*" || account || arn {
        Ok(())
    } else {
        Err(invalid(format!(
            "Policy principal {p} is not valid: use \"*\", a 12-digit account id or an IAM ARN."
        )))
    }
}

fn check_resource(r: &str) -> Result<(), InvalidPolicy> {
    let arn = r.starts_with("arn:aws") && r.contains(":kinesis:");
    if r == "*" || (arn && !r.chars().any(char::is_whitespace)) {
        Ok(())
    } else {
        Err(invalid(format!(
            "Policy resource {r} is not valid: use \"*\" or a Kinesis ARN."
        )))
    }
}

fn principals(v: &Value) -> Result<Vec<String>, InvalidPolicy> {
    match v {
        Value::String(s) if s == "*" => Ok(vec!["*".to_string()]),
        Value::Object(map) => {
            if let Some(other) = map.keys().find(|k| k.as_str() != "AWS") {
                return Err(unsupported(&format!("Principal.{other}")));
            }
            let aws = map
                .get("AWS")
                .ok_or_else(|| invalid("Policy element Principal must name AWS principals."))?;
            let list = strings(aws, "Principal.AWS")?;
            list.iter().try_for_each(|p| check_principal(p))?;
            Ok(list)
        }
        _ => Err(invalid(
            "Policy element Principal must be \"*\" or {\"AWS\": ...}.",
        )),
    }
}

fn statement(v: &Value) -> Result<Statement, InvalidPolicy> {
    let Value::Object(map) = v else {
        return Err(invalid("Each policy Statement must be an object."));
    };
    const KNOWN: &[&str] = &[
        "Sid",
        "Effect",
        "Principal",
        "Action",
        "NotAction",
        "Resource",
    ];
    if let Some(other) = map.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(unsupported(other));
    }
    let sid = match map.get("Sid") {
        None => None,
        Some(Value::String(s)) if s.bytes().all(|b| b.is_ascii_alphanumeric()) => Some(s.clone()),
        Some(_) => {
            return Err(invalid(
                "Policy element Sid must be an alphanumeric string.",
            ))
        }
    };
    let effect = match map.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        Some(other) => {
            return Err(invalid(format!(
                "Policy Effect {other} is not valid: use Allow or Deny."
            )))
        }
        None => return Err(invalid("Each policy Statement needs an Effect.")),
    };
    let principals = principals(
        map.get("Principal")
            .ok_or_else(|| invalid("Each policy Statement needs a Principal."))?,
    )?;
    let actions = match (map.get("Action"), map.get("NotAction")) {
        (Some(a), None) => Actions::Only(strings(a, "Action")?),
        (None, Some(a)) => Actions::AllBut(strings(a, "NotAction")?),
        (Some(_), Some(_)) => {
            return Err(invalid(
                "A policy Statement may have Action or NotAction, not both.",
            ))
        }
        (None, None) => return Err(invalid("Each policy Statement needs an Action.")),
    };
    match &actions {
        Actions::Only(a) | Actions::AllBut(a) => a.iter().try_for_each(|a| check_action(a))?,
    }
    let resources = strings(
        map.get("Resource")
            .ok_or_else(|| invalid("Each policy Statement needs a Resource."))?,
        "Resource",
    )?;
    resources.iter().try_for_each(|r| check_resource(r))?;
    Ok(Statement {
        sid,
        effect,
        principals,
        actions,
        resources,
    })
}

/// Parses and validates a policy document against the subset above.
pub fn parse(text: &str) -> Result<Policy, InvalidPolicy> {
    if text.len() > POLICY_BYTES_MAX {
        return Err(invalid(format!(
            "Policy is {} bytes; the limit is {POLICY_BYTES_MAX}.",
            text.len()
        )));
    }
    let doc: Value = serde_json::from_str(text)
        .map_err(|e| invalid(format!("Policy is not valid JSON: {e}.")))?;
    let Value::Object(map) = &doc else {
        return Err(invalid("Policy must be a JSON object."));
    };
    if let Some(other) = map
        .keys()
        .find(|k| !["Version", "Id", "Statement"].contains(&k.as_str()))
    {
        return Err(unsupported(other));
    }
    let version = match map.get("Version").and_then(Value::as_str) {
        Some(v) if VERSIONS.contains(&v) => v.to_string(),
        Some(v) => {
            return Err(invalid(format!(
                "Policy Version {v} is not valid: use 2012-10-17."
            )))
        }
        None => return Err(invalid("Policy needs a Version (2012-10-17).")),
    };
    let id = match map.get("Id") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(invalid("Policy element Id must be a string.")),
    };
    let statements: Vec<Statement> = match map.get("Statement") {
        Some(Value::Array(items)) if !items.is_empty() => {
            items.iter().map(statement).collect::<Result<_, _>>()?
        }
        Some(v @ Value::Object(_)) => vec![statement(v)?],
        _ => {
            return Err(invalid(
                "Policy needs a Statement: an object or a non-empty array.",
            ))
        }
    };
    if statements.len() > POLICY_STATEMENTS_MAX {
        return Err(invalid(format!(
            "Policy has {} statements; the limit is {POLICY_STATEMENTS_MAX}.",
            statements.len()
        )));
    }
    let mut sids = std::collections::BTreeSet::new();
    for s in &statements {
        if let Some(sid) = &s.sid {
            if !sids.insert(sid.as_str()) {
                return Err(invalid(format!("Policy Sid {sid} is not unique.")));
            }
        }
    }
    Ok(Policy {
        version,
        id,
        statements,
    })
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters and `?` any one.
pub fn glob(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let eq = |a: char, b: char| {
        if ignore_case {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    // Iterative matching with backtracking to the last `*`: linear space, no recursion.
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || eq(c, t[ti]) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// The account id in an ARN (`arn:aws:iam::123456789012:user/x` → `123456789012`).
fn arn_account(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

fn principal_matches(pattern: &str, principal_arn: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let is_account = pattern.len() == 12 && pattern.bytes().all(|b| b.is_ascii_digit());
    if is_account {
        return arn_account(principal_arn) == Some(pattern);
    }
    if let Some(account) = pattern
        .strip_suffix(":root")
        .and_then(|p| p.rsplit(':').next())
    {
        // `arn:aws:iam::123456789012:root` names the whole account.
        return arn_account(principal_arn) == Some(account);
    }
    glob(pattern, principal_arn, false)
}

fn action_matches(pattern: &str, action: &str) -> bool {
    pattern == "*" || glob(pattern, action, true)
}

/// What `policy` says about `principal_arn` calling `action` (`kinesis:PutRecord`) on
/// `resource` (a stream or consumer ARN). Pure; see the module docs for the order.
pub fn evaluate(policy: &Policy, principal_arn: &str, action: &str, resource: &str) -> Decision {
    let mut allowed = false;
    for s in &policy.statements {
        let who = s
            .principals
            .iter()
            .any(|p| principal_matches(p, principal_arn));
        let what = match &s.actions {
            Actions::Only(list) => list.iter().any(|p| action_matches(p, action)),
            Actions::AllBut(list) => !list.iter().any(|p| action_matches(p, action)),
        };
        let on = s
            .resources
            .iter()
            .any(|r| r == "*" || glob(r, resource, false));
        if who && what && on {
            match s.effect {
                Effect::Deny => return Decision::Deny,
                Effect::Allow => allowed = true,
            }
        }
    }
    if allowed {
        Decision::Allow
    } else {
        Decision::NoMatch
    }
}

/// A parsed policy with the text it came from: what the shard map carries. Equality, hashing
/// and the map's checksum use the text (parsing is deterministic).
#[derive(Debug, Clone)]
pub struct ResourcePolicy {
    text: String,
    policy: Policy,
}

impl PartialEq for ResourcePolicy {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for ResourcePolicy {}

impl std::hash::Hash for ResourcePolicy {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

impl ResourcePolicy {
    /// Parses `text` (see [`parse`]).
    pub fn parse(text: &str) -> Result<ResourcePolicy, InvalidPolicy> {
        Ok(ResourcePolicy {
            text: text.to_owned(),
            policy: parse(text)?,
        })
    }

    /// `text` parsed, or — for a stored document this build no longer accepts — a policy that
    /// denies everything to everyone: an unreadable policy fails closed, never open.
    pub fn parse_or_deny_all(text: &str) -> ResourcePolicy {
        ResourcePolicy::parse(text).unwrap_or_else(|_| ResourcePolicy {
            text: text.to_owned(),
            policy: Policy {
                version: VERSIONS[0].to_owned(),
                id: None,
                statements: vec![Statement {
                    sid: None,
                    effect: Effect::Deny,
                    principals: vec!["*".to_owned()],
                    actions: Actions::Only(vec!["*".to_owned()]),
                    resources: vec!["*".to_owned()],
                }],
            },
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }
}

/// The identity a verified request acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The 12-digit account of the credential.
    pub account: String,
    /// `arn:aws:iam::<account>:user/<name>`.
    pub arn: String,
}

impl Principal {
    /// The principal of a credential: `arn:aws:iam::<account>:user/<name>`, where `name` is the
    /// credential's name when it is a valid IAM user name (1–64 of `A-Za-z0-9+=,.@_-`) and
    /// its access key id otherwise.
    pub fn of_credential(account: &str, name: &str, key_id: &str) -> Principal {
        let valid = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
        let user = if valid { name } else { key_id };
        Principal {
            account: account.to_owned(),
            arn: format!("arn:aws:iam::{account}:user/{user}"),
        }
    }
}

/// The outcome of [`authorize`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// A statement of the resource policy denies it.
    ExplicitDeny,
    /// A caller of another account, and no statement allows it.
    NotAllowed,
}

/// Whether `principal` may call `action` (`kinesis:PutRecords`) on `resource` (a stream or
/// consumer ARN, or an account-level pseudo-ARN) owned by `owner_account`, whose resource
/// policy is `policy`. See the module docs for the rule.
pub fn authorize(
    policy: Option<&Policy>,
    principal: &Principal,
    owner_account: &str,
    action: &str,
    resource: &str,
) -> Verdict {
    let decision = policy.map_or(Decision::NoMatch, |p| {
        evaluate(p, &principal.arn, action, resource)
    });
    match decision {
        Decision::Deny => Verdict::ExplicitDeny,
        Decision::Allow => Verdict::Allowed,
        Decision::NoMatch if principal.account == owner_account => Verdict::Allowed,
        Decision::NoMatch => Verdict::NotAllowed,
    }
}

/// AWS's `AccessDeniedException` text for a refusal (IAM's format for resource-based policies).
pub fn denied_message(
    principal: &Principal,
    action: &str,
    resource: &str,
    verdict: Verdict,
) -> String {
    let why = match verdict {
        Verdict::ExplicitDeny => "with an explicit deny in a resource-based policy".to_owned(),
        Verdict::NotAllowed | Verdict::Allowed => {
            format!("because no resource-based policy allows the {action} action")
        }
    };
    format!(
        "User: {} is not authorized to perform: {action} on resource: {resource} {why}",
        principal.arn
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = "arn:aws:kinesis:us-east-1:000000000000:stream/s";
    const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
    const BOB: &str = "arn:aws:iam::444455556666:role/bob";

    fn policy(statements: &str) -> Policy {
        parse(&format!(
            r#"{{"Version":"2012-10-17","Statement":{statements}}}"#
        ))
        .unwrap()
    }

    fn err(text: &str) -> String {
        match parse(text) {
            Err(InvalidPolicy(m)) => m,
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn parses_single_and_array_statements() {
        let p = policy(
            r#"{"Sid":"A1","Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kinesis:Get*","Resource":"*"}"#,
        );
        assert_eq!(p.statements.len(), 1);
        assert_eq!(p.statements[0].sid.as_deref(), Some("A1"));
        let p = policy(
            r#"[{"Effect":"Allow","Principal":"*","Action":["kinesis:PutRecord","kinesis:PutRecords"],"Resource":["arn:aws:kinesis:us-east-1:000000000000:stream/*"]},
                {"Effect":"Deny","Principal":{"AWS":["arn:aws:iam::444455556666:role/bob"]},"NotAction":"kinesis:Describe*","Resource":"*"}]"#,
        );
        assert_eq!(p.statements.len(), 2);
        assert_eq!(p.statements[1].effect, Effect::Deny);
    }

    #[test]
    fn refuses_out_of_subset_elements_by_name() {
        let m = err(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"kinesis:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}}"#,
        );
        assert!(m.contains("Condition"), "{m}");
        let m = err(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","NotPrincipal":{"AWS":"*"},"Action":"kinesis:*","Resource":"*"}}"#,
        );
        assert!(m.contains("NotPrincipal"), "{m}");
        let m = err(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"kinesis:*","Resource":"*"}}"#,
        );
        assert!(m.contains("Principal.Service"), "{m}");
        let m = err(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"kinesis:*","NotResource":"*"}}"#,
        );
        assert!(m.contains("NotResource"), "{m}");
        let m = err(r#"{"Version":"2012-10-17","Statement":[],"Extra":1}"#);
        assert!(m.contains("Extra"), "{m}");
    }

    #[test]
    fn refuses_invalid_documents() {
        assert!(err("not json").contains("not valid JSON"));
        assert!(err("[]").contains("object"));
        assert!(err(r#"{"Statement":{}}"#).contains("Version"));
        assert!(err(r#"{"Version":"2020-01-01","Statement":{}}"#).contains("Version"));
        assert!(err(r#"{"Version":"2012-10-17","Statement":[]}"#).contains("Statement"));
        let base = |s: &str| format!(r#"{{"Version":"2012-10-17","Statement":{s}}}"#);
        assert!(err(&base(
            r#"{"Effect":"Maybe","Principal":"*","Action":"kinesis:*","Resource":"*"}"#
        ))
        .contains("Effect"));
        assert!(err(&base(
            r#"{"Effect":"Allow","Action":"kinesis:*","Resource":"*"}"#
        ))
        .contains("Principal"));
        assert!(err(&base(
            r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*"}"#
        ))
        .contains("s3:GetObject"));
        assert!(err(&base(
            r#"{"Effect":"Allow","Principal":"*","Action":"kinesis:Fly","Resource":"*"}"#
        ))
        .contains("kinesis:Fly"));
        assert!(err(&base(
            r#"{"Effect":"Allow","Principal":"*","Action":"kinesis:*","Resource":"bucket"}"#
        ))
        .contains("bucket"));
        assert!(err(&base(
            r#"{"Effect":"Allow","Principal":{"AWS":"bob"},"Action":"kinesis:*","Resource":"*"}"#
        ))
        .contains("bob"));
        assert!(err(&base(
            r#"{"Effect":"Allow","Principal":"*","Action":"kinesis:*","NotAction":"kinesis:Get*","Resource":"*"}"#
        ))
        .contains("not both"));
        assert!(err(&base(
            r#"[{"Sid":"a","Effect":"Allow","Principal":"*","Action":"kinesis:*","Resource":"*"},{"Sid":"a","Effect":"Allow","Principal":"*","Action":"kinesis:*","Resource":"*"}]"#
        ))
        .contains("unique"));
        assert!(err(&"x".repeat(POLICY_BYTES_MAX + 1)).contains("limit"));
    }

    #[test]
    fn evaluates_deny_over_allow_and_wildcards() {
        let p = policy(
            r#"[{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kinesis:Get*","Resource":"arn:aws:kinesis:us-east-1:000000000000:stream/*"},
                {"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"kinesis:GetShardIterator","Resource":"*"}]"#,
        );
        assert_eq!(
            evaluate(&p, ALICE, "kinesis:GetRecords", STREAM),
            Decision::Allow
        );
        assert_eq!(
            evaluate(&p, ALICE, "kinesis:getrecords", STREAM),
            Decision::Allow
        );
        assert_eq!(
            evaluate(&p, ALICE, "kinesis:GetShardIterator", STREAM),
            Decision::Deny
        );
        assert_eq!(
            evaluate(&p, ALICE, "kinesis:PutRecord", STREAM),
            Decision::NoMatch
        );
        assert_eq!(
            evaluate(&p, BOB, "kinesis:GetRecords", STREAM),
            Decision::NoMatch
        );
        assert_eq!(
            evaluate(
                &p,
                ALICE,
                "kinesis:GetRecords",
                "arn:aws:kinesis:eu-west-1:000000000000:stream/s"
            ),
            Decision::NoMatch
        );
    }

    #[test]
    fn evaluates_not_action_root_and_star_principals() {
        let p = policy(
            r#"[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"NotAction":["kinesis:Delete*","kinesis:Update*"],"Resource":"*"}]"#,
        );
        assert_eq!(
            evaluate(&p, BOB, "kinesis:PutRecord", STREAM),
            Decision::Allow
        );
        assert_eq!(
            evaluate(&p, BOB, "kinesis:DeleteStream", STREAM),
            Decision::NoMatch
        );
        assert_eq!(
            evaluate(&p, ALICE, "kinesis:PutRecord", STREAM),
            Decision::NoMatch
        );
        let p = policy(r#"{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*"}"#);
        assert_eq!(
            evaluate(&p, BOB, "kinesis:ListShards", STREAM),
            Decision::Deny
        );
    }

    #[test]
    fn glob_matches_like_iam() {
        assert!(glob("kinesis:Get*", "kinesis:GetRecords", false));
        assert!(glob("a?c", "abc", false));
        assert!(!glob("a?c", "ac", false));
        assert!(glob("*", "", false));
        assert!(glob("a*b*c", "aXXbYYc", false));
        assert!(!glob("a*b*c", "aXXbYY", false));
        assert!(glob("ABC", "abc", true));
        assert!(!glob("ABC", "abc", false));
    }

    #[test]
    fn authorizes_same_account_by_default_and_cross_account_only_when_allowed() {
        let owner = "000000000000";
        let alice = Principal::of_credential("000000000000", "alice", "AKIA1");
        let bob = Principal::of_credential("444455556666", "bob", "AKIA2");
        assert_eq!(alice.arn, "arn:aws:iam::000000000000:user/alice");
        let act = "kinesis:PutRecords";
        assert_eq!(
            authorize(None, &alice, owner, act, STREAM),
            Verdict::Allowed
        );
        assert_eq!(
            authorize(None, &bob, owner, act, STREAM),
            Verdict::NotAllowed
        );
        let p = policy(
            r#"[{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::000000000000:user/alice"},"Action":"kinesis:PutRecords","Resource":"*"},
                {"Effect":"Allow","Principal":{"AWS":"444455556666"},"Action":"kinesis:Put*","Resource":"*"}]"#,
        );
        assert_eq!(
            authorize(Some(&p), &alice, owner, act, STREAM),
            Verdict::ExplicitDeny
        );
        assert_eq!(
            authorize(Some(&p), &alice, owner, "kinesis:GetRecords", STREAM),
            Verdict::Allowed
        );
        assert_eq!(
            authorize(Some(&p), &bob, owner, act, STREAM),
            Verdict::Allowed
        );
        assert_eq!(
            authorize(Some(&p), &bob, owner, "kinesis:GetRecords", STREAM),
            Verdict::NotAllowed
        );
        assert_eq!(
            denied_message(&alice, act, STREAM, Verdict::ExplicitDeny),
            "User: arn:aws:iam::000000000000:user/alice is not authorized to perform: \
             kinesis:PutRecords on resource: arn:aws:kinesis:us-east-1:000000000000:stream/s \
             with an explicit deny in a resource-based policy"
        );
        assert_eq!(
            denied_message(&bob, act, STREAM, Verdict::NotAllowed),
            "User: arn:aws:iam::444455556666:user/bob is not authorized to perform: \
             kinesis:PutRecords on resource: arn:aws:kinesis:us-east-1:000000000000:stream/s \
             because no resource-based policy allows the kinesis:PutRecords action"
        );
    }

    #[test]
    fn principal_names_fall_back_to_the_key_id_and_bad_policies_fail_closed() {
        assert_eq!(
            Principal::of_credential("111122223333", "has space", "AKIAX").arn,
            "arn:aws:iam::111122223333:user/AKIAX"
        );
        assert_eq!(
            Principal::of_credential("111122223333", "", "AKIAX").arn,
            "arn:aws:iam::111122223333:user/AKIAX"
        );
        let closed = ResourcePolicy::parse_or_deny_all("{not json");
        let anyone = Principal::of_credential("000000000000", "a", "k");
        assert_eq!(
            authorize(
                Some(closed.policy()),
                &anyone,
                "000000000000",
                "kinesis:ListShards",
                STREAM
            ),
            Verdict::ExplicitDeny
        );
        let a = ResourcePolicy::parse(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}}"#).unwrap();
        assert_eq!(a.clone(), a);
        assert!(a.text().contains("Allow"));
    }
}
