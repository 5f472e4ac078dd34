//! The front-end's [`Dispatch`]: decodes each call with the protocol codec, runs the data-plane
//! operations itself ([`DataPlane`]), answers ListShards, DescribeStream and
//! DescribeStreamSummary from its own map ([`crate::describe`]) so they need no control plane,
//! and forwards every other operation to the control plane.

use std::sync::Arc;

use levee_map::seqnum::DecimalRun;
use levee_protocol::types::{
    EncryptionType, GetRecordsOutput, GetShardIteratorOutput, PutRecordOutput, PutRecordsOutput,
    PutRecordsResultEntry,
};
use levee_protocol::{
    decode_request, encode_response, ApiError, GetRecordsJson, RecordRef, Request, WireFormat,
};

use crate::access::{StreamRef, Target};
use crate::auth::Caller;
use crate::backend::{BoxFuture, CallContext, ConsumerInfo, ControlPlane, StoredRecord};
use crate::dataplane::{key_text, wire_record, ChildOut, DataPlane, PutEntry, RecordsOut};
use crate::describe::Describe;
use crate::http::{Call, Dispatch, Reply};
use crate::subscribe::Subscriptions;

/// Decodes calls and sends each where it belongs.
pub struct KinesisService {
    pub data: DataPlane,
    pub control: Arc<dyn ControlPlane>,
    pub subscriptions: Arc<Subscriptions>,
}

/// A cheaply cloned handle that implements [`Dispatch`].
#[derive(Clone)]
pub struct Service(pub Arc<KinesisService>);

impl KinesisService {
    /// A registered consumer, from the local map (so subscriptions need no control plane);
    /// one the map does not carry is asked of the control plane, for AWS's errors.
    pub async fn consumer(&self, consumer_arn: &str) -> Result<ConsumerInfo, ApiError> {
        let found = consumer_stream(consumer_arn).and_then(|stream| {
            let map = self.data.maps.current();
            let route = map.stream(stream)?;
            let c = route.facts.consumer_by_arn(consumer_arn)?;
            Some(ConsumerInfo {
                consumer_name: c.name.clone(),
                consumer_arn: c.arn.clone(),
                stream_name: route.name.clone(),
                active: c.state == levee_map::ConsumerState::Active,
                created_ms: c.created_ms,
            })
        });
        match found {
            Some(c) => Ok(c),
            None => self.control.consumer(consumer_arn).await,
        }
    }

    /// Authorizes a verified caller's request by the resource policies in the local map
    /// (see [`crate::access`]). GetRecords is authorized where its iterator is decoded.
    fn authorize(&self, caller: &Caller, request: &Request) -> Result<(), ApiError> {
        let id = &self.data.identity;
        let target = match request {
            Request::ListShards(r) if r.stream_name.is_none() && r.stream_arn.is_none() => {
                match r
                    .next_token
                    .as_deref()
                    .and_then(crate::describe::list_token_stream)
                {
                    Some(name) => Target::Stream(StreamRef::Named(name)),
                    None => Target::Stream(StreamRef::Missing),
                }
            }
            other => id.target(other),
        };
        id.authorize(
            &self.data.maps.current(),
            caller,
            request.operation(),
            &target,
        )
    }

    /// Runs `f` over the current map with this front-end's identity.
    fn describe<T>(&self, f: impl FnOnce(&Describe) -> T) -> T {
        let map = self.data.maps.current();
        f(&Describe {
            identity: &self.data.identity,
            map: &map,
        })
    }

    async fn call(&self, call: Call) -> Result<Vec<u8>, ApiError> {
        let format = call.format;
        let request = decode_request(call.op, format, &call.body)?;
        let d = &self.data;
        if let Some(caller) = &call.caller {
            if !matches!(request, Request::GetRecords(_)) {
                self.authorize(caller, &request)?;
            }
        }
        match request {
            Request::PutRecord(r) => {
                let name = d.resolve_name(r.stream_name.as_deref(), r.stream_arn.as_deref())?;
                let placed = d
                    .put_record(
                        name,
                        PutEntry {
                            partition_key: r.partition_key.clone(),
                            data: r.data.0.clone(),
                            explicit_hash_key: r.explicit_hash_key.clone(),
                        },
                        r.sequence_number_for_ordering.as_deref(),
                    )
                    .await?;
                Ok(encode_response(
                    format,
                    &PutRecordOutput {
                        shard_id: placed.shard_id,
                        sequence_number: placed.sequence_number,
                        encryption_type: placed.encrypted.then_some(EncryptionType::Kms),
                    },
                ))
            }
            Request::PutRecords(r) => {
                let name = d.resolve_name(r.stream_name.as_deref(), r.stream_arn.as_deref())?;
                let entries = r
                    .records
                    .iter()
                    .map(|e| PutEntry {
                        partition_key: e.partition_key.clone(),
                        data: e.data.0.clone(),
                        explicit_hash_key: e.explicit_hash_key.clone(),
                    })
                    .collect();
                let results = d.put_records(name, entries).await?;
                let failed = results.iter().filter(|r| r.is_err()).count();
                let encrypted = results
                    .iter()
                    .any(|r| r.as_ref().is_ok_and(|p| p.encrypted));
                let records = results
                    .into_iter()
                    .map(|r| match r {
                        Ok(p) => PutRecordsResultEntry::success(p.shard_id, p.sequence_number),
                        Err(f) => PutRecordsResultEntry {
                            error_code: Some(f.error_code),
                            error_message: Some(f.error_message),
                            ..Default::default()
                        },
                    })
                    .collect();
                Ok(encode_response(
                    format,
                    &PutRecordsOutput {
                        failed_record_count: Some(failed as i32),
                        records,
                        encryption_type: encrypted.then_some(EncryptionType::Kms),
                    },
                ))
            }
            Request::GetShardIterator(r) => {
                let name = d.resolve_name(r.stream_name.as_deref(), r.stream_arn.as_deref())?;
                let it = d
                    .get_shard_iterator(
                        name,
                        &r.shard_id,
                        r.shard_iterator_type.into(),
                        r.starting_sequence_number.as_deref(),
                        r.timestamp.map(|t| t.millis()),
                    )
                    .await?;
                Ok(encode_response(
                    format,
                    &GetShardIteratorOutput {
                        shard_iterator: Some(it),
                    },
                ))
            }
            Request::GetRecords(r) => {
                let limit = r.limit.and_then(|l| u32::try_from(l).ok());
                let it = d.decode_iterator(&r.shard_iterator)?;
                if let Some(caller) = &call.caller {
                    let target = Target::Stream(StreamRef::Named(it.stream_name.clone()));
                    d.identity
                        .authorize(&d.maps.current(), caller, call.op, &target)?;
                }
                let out = d.get_records_at(it, limit).await?;
                Ok(encode_records(format, out))
            }
            Request::DescribeStream(r) => {
                let out = self.describe(|x| x.describe_stream(&r))?;
                Ok(encode_response(format, &out))
            }
            Request::DescribeStreamSummary(r) => {
                let out = self.describe(|x| x.describe_stream_summary(&r))?;
                Ok(encode_response(format, &out))
            }
            Request::ListShards(r) => {
                let now = (d.now_ms)();
                let out = self.describe(|x| x.list_shards(&r, now))?;
                Ok(encode_response(format, &out))
            }
            other => {
                let context = CallContext {
                    op: call.op,
                    format,
                    body: call.body,
                    caller: call.caller,
                };
                self.control.call(other, context).await
            }
        }
    }
}

impl Dispatch for Service {
    fn dispatch(&self, call: Call) -> BoxFuture<Result<Reply, ApiError>> {
        let this = self.0.clone();
        Box::pin(async move {
            if call.op == levee_protocol::Operation::SubscribeToShard {
                let request = decode_request(call.op, call.format, &call.body)?;
                if let Some(caller) = &call.caller {
                    this.authorize(caller, &request)?;
                }
                let Request::SubscribeToShard(input) = request else {
                    // decode_request answers the operation it is given.
                    return Err(ApiError::new(
                        levee_protocol::ErrorKind::InternalFailure,
                        "",
                    ));
                };
                let events = crate::subscribe::subscribe(this, call.format, input).await?;
                return Ok(Reply::Events(events));
            }
            this.call(call).await.map(Reply::Body)
        })
    }
}

/// The stream name in `arn:aws:kinesis:<region>:<account>:stream/<name>/consumer/<c>:<secs>`.
fn consumer_stream(arn: &str) -> Option<&str> {
    let (_, rest) = arn.split_once(":stream/")?;
    let (stream, _) = rest.split_once("/consumer/")?;
    Some(stream)
}

/// A GetRecords answer. JSON (every SDK but Java's) is written straight from the records storage
/// returned; CBOR goes through the output structure.
fn encode_records(format: WireFormat, out: RecordsOut) -> Vec<u8> {
    let millis_behind_latest = Some(i64::try_from(out.millis_behind_latest).unwrap_or(i64::MAX));
    let child_shards = (!out.child_shards.is_empty()).then(|| {
        out.child_shards
            .iter()
            .map(ChildOut::to_wire)
            .collect::<Vec<_>>()
    });
    let encryption = |r: &StoredRecord| r.encrypted.then_some(EncryptionType::Kms);
    if format == WireFormat::Json {
        let data_bytes = out.records.iter().map(|r| r.data.len()).sum();
        let key_bytes = out.records.iter().map(|r| r.partition_key.len()).sum();
        let mut w = GetRecordsJson::with_capacity(out.records.len(), data_bytes, key_bytes);
        let mut seq = DecimalRun::default();
        for r in &out.records {
            w.record(RecordRef {
                sequence_number: seq.format(&out.sequence_number_of(r)),
                approximate_arrival_ms: Some(r.arrival_ms),
                data: &r.data,
                partition_key: &key_text(&r.partition_key),
                encryption_type: encryption(r),
            });
        }
        return w.finish(
            out.next_shard_iterator.as_deref(),
            millis_behind_latest,
            child_shards.as_deref(),
        );
    }
    levee_protocol::encode_get_records(
        format,
        &GetRecordsOutput {
            records: out
                .records
                .iter()
                .map(|r| wire_record(out.shard_created_ms, out.shard_index, r))
                .collect(),
            next_shard_iterator: out.next_shard_iterator,
            millis_behind_latest,
            child_shards,
        },
    )
}
