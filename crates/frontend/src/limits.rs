//! Admission control: a cap on requests in flight with fast load shedding.
//!
//! [`Shedding`] wraps a [`Dispatch`]. A call that finds all [`Shedding::max`] permits taken is
//! not queued: it is answered at once with the throttling error a Kinesis client retries with
//! backoff — `ProvisionedThroughputExceededException` for the data operations (their documented
//! "request rate too high" error) and `LimitExceededException` for the others, both with the text
//! `Rate exceeded` that SDKs and the KCL recognise. Nothing waits, so a shed answer costs
//! microseconds and the admitted requests keep the capacity (goodput) they had.
//!
//! Metrics: `levee_requests_in_flight` (gauge), `levee_requests_in_flight_max` (gauge, the
//! limit), `levee_requests_shed_total{op}` (counter).
//!
//! [`ControlRates`] (with `--shard-limits aws`) holds the control operations to AWS's documented
//! per-account transaction rates ([`control_rate`]), answering `LimitExceededException` with
//! `Rate exceeded for stream <name> under account <account>.` past them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use levee_protocol::{ApiError, ErrorKind, Operation, Request};
use tokio::sync::Semaphore;

use crate::backend::BoxFuture;
use crate::http::{Call, Dispatch, Reply};
use crate::shard_limits::MillisClock;

/// The text of a shed request's error.
pub const SHED_MESSAGE: &str = "Rate exceeded";

/// The error a shed call of `op` gets.
pub fn shed_error(op: Operation) -> ApiError {
    let kind = match op {
        Operation::PutRecord
        | Operation::PutRecords
        | Operation::GetRecords
        | Operation::GetShardIterator
        | Operation::SubscribeToShard => ErrorKind::ProvisionedThroughputExceeded,
        _ => ErrorKind::LimitExceeded,
    };
    ApiError::new(kind, SHED_MESSAGE)
}

/// A [`Dispatch`] that admits at most `max` calls at once and sheds the rest immediately.
pub struct Shedding {
    inner: Arc<dyn Dispatch>,
    permits: Arc<Semaphore>,
    max: usize,
}

impl Shedding {
    pub fn new(inner: Arc<dyn Dispatch>, max: usize) -> Shedding {
        let max = max.max(1);
        metrics::gauge!("levee_requests_in_flight_max").set(max as f64);
        Shedding {
            inner,
            permits: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// The limit on calls in flight.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Calls in flight now.
    pub fn in_flight(&self) -> usize {
        self.max - self.permits.available_permits()
    }
}

impl Dispatch for Shedding {
    fn dispatch(&self, call: Call) -> BoxFuture<Result<Reply, ApiError>> {
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            metrics::counter!("levee_requests_shed_total", "op" => call.op.name()).increment(1);
            let err = shed_error(call.op);
            return Box::pin(async move { Err(err) });
        };
        let in_flight = self.max - self.permits.available_permits();
        metrics::gauge!("levee_requests_in_flight").set(in_flight as f64);
        let fut = self.inner.dispatch(call);
        let permits = self.permits.clone();
        let max = self.max;
        Box::pin(async move {
            let out = fut.await;
            drop(permit);
            metrics::gauge!("levee_requests_in_flight")
                .set((max - permits.available_permits()) as f64);
            out
        })
    }
}

/// AWS's per-account rate (transactions per second) of a control operation, if it has one.
pub fn control_rate(op: Operation) -> Option<u32> {
    use Operation::*;
    Some(match op {
        DescribeStream => 10,
        DescribeStreamSummary | DescribeStreamConsumer => 20,
        ListStreams
        | CreateStream
        | DeleteStream
        | MergeShards
        | SplitShard
        | AddTagsToStream
        | RemoveTagsFromStream
        | ListTagsForStream
        | IncreaseStreamRetentionPeriod
        | DecreaseStreamRetentionPeriod
        | RegisterStreamConsumer
        | DeregisterStreamConsumer
        | ListStreamConsumers
        | EnableEnhancedMonitoring
        | DisableEnhancedMonitoring => 5,
        ListShards => 1000,
        DescribeLimits => 1,
        _ => return None,
    })
}

/// The stream a control request names, for the throttling message.
fn stream_of(call: &Call) -> Option<String> {
    let r = levee_protocol::decode_request(call.op, call.format, &call.body).ok()?;
    match r {
        Request::DescribeStream(r) => r.stream_name,
        Request::DescribeStreamSummary(r) => r.stream_name,
        Request::CreateStream(r) => Some(r.stream_name),
        Request::DeleteStream(r) => r.stream_name,
        Request::ListShards(r) => r.stream_name,
        _ => None,
    }
}

/// A [`Dispatch`] that holds control operations to [`control_rate`] per account (one account
/// per process here): one token bucket per operation, holding one second of its rate.
pub struct ControlRates {
    inner: Arc<dyn Dispatch>,
    account: String,
    clock: MillisClock,
    /// Operation → (tokens, last refill in ms). Bounded by the number of operations.
    buckets: Mutex<HashMap<Operation, (f64, u64)>>,
}

impl ControlRates {
    pub fn new(inner: Arc<dyn Dispatch>, account: impl Into<String>, clock: MillisClock) -> Self {
        ControlRates {
            inner,
            account: account.into(),
            clock,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn admit(&self, op: Operation) -> bool {
        let Some(rate) = control_rate(op) else {
            return true;
        };
        let rate = f64::from(rate);
        let now = (self.clock)();
        let mut b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, at) = b.entry(op).or_insert((rate, now));
        *tokens = (*tokens + now.saturating_sub(*at) as f64 * rate / 1000.0).min(rate);
        *at = (*at).max(now);
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl Dispatch for ControlRates {
    fn dispatch(&self, call: Call) -> BoxFuture<Result<Reply, ApiError>> {
        if self.admit(call.op) {
            return self.inner.dispatch(call);
        }
        metrics::counter!("levee_control_throttled_total", "op" => call.op.name()).increment(1);
        let message = match stream_of(&call) {
            Some(s) => format!(
                "Rate exceeded for stream {s} under account {}.",
                self.account
            ),
            None => format!("Rate exceeded for account {}.", self.account),
        };
        let err = ApiError::new(ErrorKind::LimitExceeded, message);
        Box::pin(async move { Err(err) })
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use bytes::Bytes;
    use levee_protocol::WireFormat;

    use super::*;

    /// Holds every call until the gate opens.
    struct Gate(Arc<Semaphore>);

    impl Dispatch for Gate {
        fn dispatch(&self, _call: Call) -> BoxFuture<Result<Reply, ApiError>> {
            let g = self.0.clone();
            Box::pin(async move {
                let _open = g.acquire().await;
                Ok(Reply::Body(b"{}".to_vec()))
            })
        }
    }

    fn call(op: Operation) -> Call {
        Call {
            op,
            format: WireFormat::Json,
            body: Bytes::from_static(b"{}"),
            request_id: "r".into(),
            caller: None,
        }
    }

    #[tokio::test]
    async fn calls_past_the_limit_are_shed_at_once_and_capacity_returns() {
        let gate = Arc::new(Semaphore::new(0));
        let s = Arc::new(Shedding::new(Arc::new(Gate(gate.clone())), 2));
        let a = tokio::spawn(s.dispatch(call(Operation::PutRecord)));
        let b = tokio::spawn(s.dispatch(call(Operation::ListStreams)));
        assert_eq!(s.in_flight(), 2);
        let t = Instant::now();
        let e = s.dispatch(call(Operation::PutRecord)).await.unwrap_err();
        assert!(t.elapsed() < Duration::from_millis(50));
        assert_eq!(e.kind, ErrorKind::ProvisionedThroughputExceeded);
        assert_eq!(e.message, "Rate exceeded");
        let e = s
            .dispatch(call(Operation::DescribeStream))
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::LimitExceeded);
        gate.add_permits(1);
        a.await.unwrap().unwrap();
        b.await.unwrap().unwrap();
        assert_eq!(s.in_flight(), 0);
        s.dispatch(call(Operation::PutRecord)).await.unwrap();
    }

    struct Ok200;

    impl Dispatch for Ok200 {
        fn dispatch(&self, _call: Call) -> BoxFuture<Result<Reply, ApiError>> {
            Box::pin(async { Ok(Reply::Body(b"{}".to_vec())) })
        }
    }

    #[tokio::test]
    async fn describe_stream_is_held_to_10_per_second_per_account() {
        use std::sync::atomic::{AtomicU64, Ordering};
        let now = Arc::new(AtomicU64::new(0));
        let n = now.clone();
        let c = ControlRates::new(
            Arc::new(Ok200),
            "111122223333",
            Arc::new(move || n.load(Ordering::Relaxed)),
        );
        let describe = || Call {
            body: Bytes::from_static(br#"{"StreamName":"s1"}"#),
            ..call(Operation::DescribeStream)
        };
        for _ in 0..10 {
            c.dispatch(describe()).await.unwrap();
        }
        let e = c.dispatch(describe()).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::LimitExceeded);
        assert_eq!(
            e.message,
            "Rate exceeded for stream s1 under account 111122223333."
        );
        // Other operations have their own budget; data operations have none here.
        c.dispatch(call(Operation::ListStreams)).await.unwrap();
        for _ in 0..100 {
            c.dispatch(call(Operation::PutRecord)).await.unwrap();
        }
        // Over 10 s of a steady 20/s offered, 10/s are admitted.
        let mut admitted = 0;
        for _ in 0..200 {
            now.fetch_add(50, Ordering::Relaxed);
            if c.dispatch(describe()).await.is_ok() {
                admitted += 1;
            }
        }
        assert!((95..=105).contains(&admitted), "{admitted}");
    }
}
