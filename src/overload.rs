//! Overload protection, in two parts:
//!
//! - [`Admission`]: at most `limits.max_concurrent_requests` calls are *decided* at once across every connection;
//!   a call beyond that is answered `RESOURCE_EXHAUSTED` at once (load shedding: a caller retries or fails
//!   open/closed by its own rule, instead of waiting in an unbounded queue). The service takes the permit once the
//!   request is decoded, never before: a permit taken when the headers arrive would be held by a client that never
//!   finishes its request body, and a few hundred such streams would shed everyone else.
//! - [`DeadlineLayer`]: a tower layer that answers `DEADLINE_EXCEEDED` to a call that runs longer than
//!   `limits.request_timeout_ms`, body included, so a stalled sender costs a stream for a bounded time only.
//!
//! The other limits are the transport's: the maximum decoded message size is set on the service, HTTP/2 keepalive
//! on the server, connections in [`crate::connections`]. Health checks are neither limited nor timed out here: an
//! overloaded roomguard is busy, not dead, and an orchestrator must not restart it for that.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use http::{Request, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;
use tower::{Layer, Service};

use crate::{auth::OPEN_PREFIX, metrics::Metrics};

/// A boxed, sendable future (the layers' response futures).
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

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

/// Adds the request timeout to a service.
#[derive(Debug, Clone)]
pub struct DeadlineLayer {
    timeout: Duration,
    metrics: Arc<Metrics>,
}

impl DeadlineLayer {
    /// Each call, from its headers to its answer, for at most `timeout`.
    pub fn new(timeout: Duration, metrics: Arc<Metrics>) -> Self {
        DeadlineLayer { timeout, metrics }
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Deadline {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`DeadlineLayer`] makes.
#[derive(Debug, Clone)]
pub struct Deadline<S> {
    inner: S,
    layer: DeadlineLayer,
}

impl<S, B, R> Service<Request<B>> for Deadline<S>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<R>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if request.uri().path().starts_with(OPEN_PREFIX) {
            return Box::pin(self.inner.call(request));
        }
        let metrics = self.layer.metrics.clone();
        let timeout = self.layer.timeout;
        let call = self.inner.call(request);
        Box::pin(async move {
            match tokio::time::timeout(timeout, call).await {
                Ok(response) => response,
                Err(_elapsed) => {
                    metrics.timed_out();
                    Ok(
                        Status::deadline_exceeded("roomguard's request timeout expired")
                            .into_http(),
                    )
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use tower::ServiceExt;

    use super::*;

    fn request(path: &str) -> Request<()> {
        Request::builder().uri(path).body(()).unwrap()
    }

    fn grpc_status(response: &Response<String>) -> Option<&str> {
        response
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
    }

    /// A call running past the timeout is answered DEADLINE_EXCEEDED (code 4) and counted.
    #[tokio::test]
    async fn a_slow_call_times_out() {
        let metrics = Arc::new(Metrics::new());
        let layer = DeadlineLayer::new(Duration::from_millis(20), metrics.clone());
        let service = layer.layer(tower::service_fn(|_: Request<()>| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok::<_, Infallible>(Response::new(String::new()))
        }));
        let response = service
            .oneshot(request("/roomguard.v1.PolicyService/CheckMessageSend"))
            .await
            .unwrap();
        assert_eq!(grpc_status(&response), Some("4"));
    }

    /// Health checks are never timed out by the layer: a busy roomguard is not a dead one.
    #[tokio::test]
    async fn health_is_not_timed_out() {
        let metrics = Arc::new(Metrics::new());
        let layer = DeadlineLayer::new(Duration::from_millis(5), metrics);
        let service = layer.layer(tower::service_fn(|_: Request<()>| async {
            tokio::time::sleep(Duration::from_millis(30)).await;
            Ok::<_, Infallible>(Response::new(String::new()))
        }));
        let response = service
            .oneshot(request("/grpc.health.v1.Health/Check"))
            .await
            .unwrap();
        assert_eq!(grpc_status(&response), None);
    }

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
