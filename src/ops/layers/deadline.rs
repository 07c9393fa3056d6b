//! The request deadline: a tower layer that answers `DEADLINE_EXCEEDED` to a call that runs longer than
//! `limits.request_timeout_ms`, its body included, so a stalled sender costs a stream for a bounded time only.
//! Health checks are never timed out: an overloaded roomguard is busy, not dead. Uploads (`CheckMediaUpload`) have a
//! budget of their own, `media.timeout_ms`, which the upload path enforces; the layer gives them a longer backstop.

use std::{
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use http::{Request, Response};
use tonic::Status;
use tower::{Layer, Service};

use super::{BoxFuture, OPEN_PREFIX};
use crate::ops::metrics::Metrics;

/// Adds the request timeout to a service.
#[derive(Debug, Clone)]
pub struct DeadlineLayer {
    timeout: Duration,
    upload_timeout: Duration,
    metrics: Arc<Metrics>,
}

/// The path of the upload rpc, whose budget is `media.timeout_ms`, not `limits.request_timeout_ms`.
pub const UPLOAD_PATH: &str = "/roomguard.v1.PolicyService/CheckMediaUpload";

impl DeadlineLayer {
    /// Each call, from its headers to its answer, for at most `timeout` (uploads too, unless
    /// [`DeadlineLayer::with_upload_timeout`] says otherwise).
    pub fn new(timeout: Duration, metrics: Arc<Metrics>) -> Self {
        DeadlineLayer {
            timeout,
            upload_timeout: timeout,
            metrics,
        }
    }

    /// Uploads for at most `timeout`.
    pub fn with_upload_timeout(self, timeout: Duration) -> Self {
        DeadlineLayer {
            upload_timeout: timeout,
            ..self
        }
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
        let timeout = if request.uri().path() == UPLOAD_PATH {
            self.layer.upload_timeout
        } else {
            self.layer.timeout
        };
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
}
