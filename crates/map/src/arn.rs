//! Stream ARNs, parsed the one way every role reads them (the catalog validates with it, a
//! front-end resolves `StreamARN` arguments with it). Pure.

/// The parts of a stream ARN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamArn<'a> {
    pub partition: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub name: &'a str,
}

/// Parses `arn:<partition>:kinesis:<region>:<account>:stream/<name>`. A consumer ARN
/// (`.../consumer/...`) is not a stream ARN.
pub fn parse_stream_arn(arn: &str) -> Option<StreamArn<'_>> {
    let mut parts = arn.splitn(6, ':');
    let (arn_tag, partition, service, region, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    let name = resource.strip_prefix("stream/")?;
    let ok = arn_tag == "arn"
        && partition.starts_with("aws")
        && service == "kinesis"
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && !name.is_empty()
        && !name.contains('/')
        && !name.chars().any(char::is_whitespace);
    ok.then_some(StreamArn {
        partition,
        region,
        account,
        name,
    })
}
