//! The small HTTP/1.1 listeners beside the gRPC ones (metrics, the read guard's front): one accept loop for both.
//! Hand-written over hyper rather than a web framework: each serves a handful of fixed paths, and the read guard's is
//! on every read's path (docs/reads.md, "What it costs").

use std::{convert::Infallible, future::Future, sync::Arc, time::Duration};

use http_body_util::Full;
use hyper::{Request, Response, body::Bytes, body::Incoming, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{net::TcpListener, sync::Semaphore};
use tracing::{debug, warn};

/// How a listener treats its connections.
#[derive(Debug, Clone, Copy)]
pub struct Http1Limits {
    /// Its name in log lines.
    pub name: &'static str,
    /// Connections open at once; one more is closed as soon as it is accepted.
    pub max_connections: usize,
    /// Time a request's headers may take to arrive, counted from the previous answer on a kept-alive connection.
    pub header_timeout: Duration,
    /// The largest request head read.
    pub max_head_bytes: usize,
}

/// Answers every request on `listener` with `handle`, until `shutdown` resolves.
pub async fn serve<H, F>(
    listener: TcpListener,
    limits: Http1Limits,
    handle: H,
    shutdown: impl Future<Output = ()> + Send + 'static,
) where
    H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let handle = Arc::new(handle);
    let slots = Arc::new(Semaphore::new(
        limits.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(err) => {
                // Out of file descriptors, typically: back off instead of spinning on accept.
                warn!(%err, listener = limits.name, "cannot accept");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // Closed at once: the client fails over (or applies its failure mode) instead of waiting.
            debug!(
                listener = limits.name,
                "at its connection limit: connection closed"
            );
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handle = handle.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = service_fn(move |request| {
                let answer = handle(request);
                async move { Ok::<_, Infallible>(answer.await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .max_buf_size(limits.max_head_bytes)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(err) = connection.await {
                debug!(%err, listener = limits.name, "connection");
            }
        });
    }
}
