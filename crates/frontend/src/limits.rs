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

use std::sync::Arc;

use levee_protocol::{ApiError, ErrorKind, Operation};
use tokio::sync::Semaphore;

use crate::backend::BoxFuture;
use crate::http::{Call, Dispatch};

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
    fn dispatch(&self, call: Call) -> BoxFuture<Result<Vec<u8>, ApiError>> {
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use bytes::Bytes;
    use levee_protocol::WireFormat;

    use super::*;

    /// Holds every call until the gate opens.
    struct Gate(Arc<Semaphore>);

    impl Dispatch for Gate {
        fn dispatch(&self, _call: Call) -> BoxFuture<Result<Vec<u8>, ApiError>> {
            let g = self.0.clone();
            Box::pin(async move {
                let _open = g.acquire().await;
                Ok(b"{}".to_vec())
            })
        }
    }

    fn call(op: Operation) -> Call {
        Call {
            op,
            format: WireFormat::Json,
            body: Bytes::from_static(b"{}"),
            request_id: "r".into(),
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
        let e = s.dispatch(call(Operation::DescribeStream)).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::LimitExceeded);
        gate.add_permits(1);
        a.await.unwrap().unwrap();
        b.await.unwrap().unwrap();
        assert_eq!(s.in_flight(), 0);
        s.dispatch(call(Operation::PutRecord)).await.unwrap();
    }
}
