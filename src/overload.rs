//! Overload protection: a tower layer that admits at most `limits.max_concurrent_requests` calls at once across every
//! connection, answers any call beyond that with `RESOURCE_EXHAUSTED` at once (load shedding: a caller retries or
//! fails open/closed by its own rule, instead of waiting in an unbounded queue), and answers `DEADLINE_EXCEEDED` to a
//! call that runs longer than `limits.request_timeout_ms`.
//!
//! The other limits are the transport's: the maximum decoded message size is set on the service, HTTP/2 keepalive on
//! the server (see `server.rs`). Health checks are neither limited nor shed: an overloaded roomguard is busy, not dead,
//! and an orchestrator must not restart it for that.

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

/// Adds the concurrency limit, load shedding and the request timeout to a service.
#[derive(Debug, Clone)]
pub struct OverloadLayer {
    permits: Arc<Semaphore>,
    timeout: Duration,
    metrics: Arc<Metrics>,
}

impl OverloadLayer {
    /// At most `max_concurrent` calls at once, each for at most `timeout`.
    pub fn new(max_concurrent: usize, timeout: Duration, metrics: Arc<Metrics>) -> Self {
        OverloadLayer {
            permits: Arc::new(Semaphore::new(max_concurrent)),
            timeout,
            metrics,
        }
    }
}

impl<S> Layer<S> for OverloadLayer {
    type Service = Overload<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Overload {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`OverloadLayer`] makes.
#[derive(Debug, Clone)]
pub struct Overload<S> {
    inner: S,
    layer: OverloadLayer,
}

/// Holds a call's permit and counts it in flight until dropped.
struct Admitted {
    _permit: OwnedSemaphorePermit,
    metrics: Arc<Metrics>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.metrics.call_finished();
    }
}

impl<S, B, R> Service<Request<B>> for Overload<S>
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
        let Ok(permit) = self.layer.permits.clone().try_acquire_owned() else {
            metrics.shed();
            let status =
                Status::resource_exhausted("roomguard is at its concurrency limit: retry later");
            return Box::pin(std::future::ready(Ok(status.into_http())));
        };
        metrics.call_started();
        let admitted = Admitted {
            _permit: permit,
            metrics,
        };
        let timeout = self.layer.timeout;
        let call = self.inner.call(request);
        Box::pin(async move {
            let result = tokio::time::timeout(timeout, call).await;
            let response = match result {
                Ok(response) => response,
                Err(_elapsed) => {
                    admitted.metrics.timed_out();
                    Ok(
                        Status::deadline_exceeded("roomguard's request timeout expired")
                            .into_http(),
                    )
                }
            };
            drop(admitted);
            response
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
        let layer = OverloadLayer::new(4, Duration::from_millis(20), metrics.clone());
        let service = layer.layer(tower::service_fn(|_: Request<()>| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok::<_, Infallible>(Response::new(String::new()))
        }));
        let response = service
            .oneshot(request("/roomguard.v1.PolicyService/CheckMessageSend"))
            .await
            .unwrap();
        assert_eq!(grpc_status(&response), Some("4"));
        assert_eq!(metrics.in_flight(), 0);
    }

    /// With every permit held, a call is answered RESOURCE_EXHAUSTED (code 8) at once; health still passes.
    #[tokio::test]
    async fn calls_beyond_the_limit_are_shed_but_health_is_not() {
        let metrics = Arc::new(Metrics::new());
        let layer = OverloadLayer::new(1, Duration::from_secs(5), metrics.clone());
        let gate = Arc::new(Semaphore::new(0));
        let inner = {
            let gate = gate.clone();
            tower::service_fn(move |_: Request<()>| {
                let gate = gate.clone();
                async move {
                    gate.acquire().await.unwrap().forget();
                    Ok::<_, Infallible>(Response::new(String::new()))
                }
            })
        };
        let service = layer.layer(inner);
        let held = tokio::spawn(
            service
                .clone()
                .oneshot(request("/roomguard.v1.PolicyService/CheckMessageSend")),
        );
        while metrics.in_flight() == 0 {
            tokio::task::yield_now().await;
        }
        let shed = service
            .clone()
            .oneshot(request("/roomguard.v1.PolicyService/CheckMessageSend"))
            .await
            .unwrap();
        assert_eq!(grpc_status(&shed), Some("8"));
        assert_eq!(metrics.shed_count(), 1);
        let health = tokio::spawn(
            service
                .clone()
                .oneshot(request("/grpc.health.v1.Health/Check")),
        );
        gate.add_permits(2);
        assert_eq!(
            grpc_status(&health.await.unwrap().unwrap()),
            None,
            "health passed through"
        );
        assert_eq!(grpc_status(&held.await.unwrap().unwrap()), None);
        assert_eq!(metrics.in_flight(), 0);
    }
}
