//! Admission control: at most `limits.max_concurrent_requests` calls are *decided* at once across every connection
//! and listener; a call beyond that is answered `RESOURCE_EXHAUSTED` at once (load shedding: a caller retries or
//! fails open/closed by its own rule, instead of waiting in an unbounded queue).
//!
//! The service takes the permit once the request is decoded, never before: a permit taken when the headers arrive
//! would be held by a client that never finishes its request body, and a few hundred such streams would shed
//! everyone else. Health checks are not decisions and are never counted.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;

use crate::ops::metrics::Metrics;

/// The concurrency limit on decisions, shared by every connection and listener.
#[derive(Debug, Clone)]
pub struct Admission {
    permits: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

impl Admission {
    /// At most `max_concurrent` decisions at once.
    pub fn new(max_concurrent: usize, metrics: Arc<Metrics>) -> Self {
        Admission {
            permits: Arc::new(Semaphore::new(max_concurrent.min(Semaphore::MAX_PERMITS))),
            metrics,
        }
    }

    /// No limit (a service built without operations, in tests and tools).
    pub fn unlimited(metrics: Arc<Metrics>) -> Self {
        Admission::new(Semaphore::MAX_PERMITS, metrics)
    }

    /// A permit to decide one call, or `RESOURCE_EXHAUSTED` at once when every permit is taken.
    pub fn admit(&self) -> Result<Admitted, Status> {
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            self.metrics.shed();
            return Err(Status::resource_exhausted(
                "roomguard is at its concurrency limit: retry later",
            ));
        };
        self.metrics.call_started();
        Ok(Admitted {
            _permit: permit,
            metrics: self.metrics.clone(),
        })
    }
}

/// Holds a call's permit and counts it in flight until dropped.
#[derive(Debug)]
pub struct Admitted {
    _permit: OwnedSemaphorePermit,
    metrics: Arc<Metrics>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.metrics.call_finished();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With every permit held, a call is refused RESOURCE_EXHAUSTED at once and counted; a permit given back admits
    /// the next call.
    #[test]
    fn calls_beyond_the_limit_are_shed_until_a_permit_comes_back() {
        let metrics = Arc::new(Metrics::new());
        let admission = Admission::new(1, metrics.clone());
        let held = admission.admit().unwrap();
        assert_eq!(metrics.in_flight(), 1);
        let shed = admission.admit().unwrap_err();
        assert_eq!(shed.code(), tonic::Code::ResourceExhausted);
        assert_eq!(metrics.shed_count(), 1);
        drop(held);
        assert_eq!(metrics.in_flight(), 0);
        assert!(admission.admit().is_ok());
    }
}
