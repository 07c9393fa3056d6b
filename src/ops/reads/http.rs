//! The HTTP front of the read guard (`reads.http_listen`), for proxies that ask an HTTP endpoint before serving:
//!
//! - **`/authz`, for nginx `auth_request`**: the original request's method and URI come in `X-Original-Method` and
//!   `X-Original-URI` (the raw `$request_uri`), its token in `Authorization` (nginx passes the client's headers on).
//!   nginx only understands 2xx (allow) and 401/403 (deny); any other status becomes a 500. So the answer is 204 or
//!   403, and a refusal says in headers what the client should get: `X-Roomguard-Status` (429, 403, 401, 400, 503),
//!   `X-Roomguard-Body` (the Matrix error, JSON in ASCII), `X-Roomguard-Reasons`, and for a rate
//!   `X-Roomguard-Retry-After-Ms` and `X-Roomguard-Retry-After` (seconds), which the shipped configuration
//!   (`deploy/nginx/`) turns into the client's answer.
//! - **`/forward-auth`, for Traefik's `forwardAuth` and Caddy's `forward_auth`**: the method and URI in
//!   `X-Forwarded-Method` and `X-Forwarded-Uri`; a refusal is answered as the client should get it (status,
//!   `Retry-After`, Matrix JSON body), since those proxies pass a refusal on as it is.
//! - **`/health`**: 200 while serving.
//!
//! Every answer carries `X-Roomguard-Decision-Id`, `X-Roomguard-Kind` and `X-Roomguard-User` (for the proxy's access
//! log) and `Cache-Control: no-store`: a read's answer depends on the account's counts, so no cache may keep it.
//! Connections are kept alive (nginx's `keepalive` upstream) for [`HEADER_TIMEOUT`] between requests, a request's
//! headers must arrive within it, and at most `limits.max_connections` connections are open on this listener.

use std::{future::Future, sync::Arc, time::Duration};

use http_body_util::Full;
use hyper::{
    HeaderMap, Request, Response, StatusCode,
    body::{Bytes, Incoming},
    header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER},
};
use tokio::net::TcpListener;
use tracing::{info, warn};

use super::{
    answer::ReadAnswer,
    guard::{Front, ReadAsk, ReadGuard},
};
use crate::{
    domain::limits::MAX_ID_BYTES,
    ops::http1::{self, Http1Limits},
};

/// Time a connection has to send a request's headers, counted from the previous answer on a kept-alive one: hyper
/// measures the wait for the next request with the same timer. The proxy keeps idle connections to roomguard open
/// (nginx's upstream `keepalive_timeout`, 50 s in deploy/nginx), so this is longer than that: roomguard never closes
/// a connection nginx is about to reuse. A client that sends nothing is closed after it, and holds one of
/// `limits.max_connections` slots meanwhile.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(75);

/// The largest request head read (nginx's own limit on a request line and headers is 8 KiB per header line, 32 KiB
/// in all by default).
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// How a front wants a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// nginx: 403, the client's answer in headers.
    AuthRequest,
    /// Traefik, Caddy: the client's answer itself.
    ForwardAuth,
}

/// Serves the read guard on `listener` until `shutdown` resolves, with at most `max_connections` open.
pub async fn serve(
    listener: TcpListener,
    guard: ReadGuard,
    max_connections: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "read guard listening (auth_request: /authz, forward auth: /forward-auth)");
    }
    // One guard for every connection and request: cloning the guard itself is a dozen reference counts.
    let guard = Arc::new(guard);
    let limits = Http1Limits {
        name: "read guard",
        max_connections,
        header_timeout: HEADER_TIMEOUT,
        max_head_bytes: MAX_HEAD_BYTES,
    };
    let handle = move |request: Request<Incoming>| {
        let guard = guard.clone();
        async move { respond(&guard, &request).await }
    };
    http1::serve(listener, limits, handle, shutdown).await;
}

async fn respond<B>(guard: &ReadGuard, request: &Request<B>) -> Response<Full<Bytes>> {
    let headers = request.headers();
    let (style, method_header, uri_header) = match request.uri().path() {
        "/authz" => (Style::AuthRequest, "x-original-method", "x-original-uri"),
        "/forward-auth" => (Style::ForwardAuth, "x-forwarded-method", "x-forwarded-uri"),
        "/health" => return plain(StatusCode::OK, "SERVING\n"),
        _ => return plain(StatusCode::NOT_FOUND, "not found\n"),
    };
    let text = |name: &str| {
        headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let uri = text(uri_header).unwrap_or_default();
    if uri.is_empty() {
        warn!(
            header = uri_header,
            "read guard asked without the original URI: check the proxy's configuration"
        );
    }
    let method = text(method_header).unwrap_or_else(|| request.method().as_str().to_owned());
    let authorization = text("authorization");
    let request_id = text("x-request-id")
        .filter(|id| id.len() <= MAX_ID_BYTES)
        .unwrap_or_default();
    let ask = ReadAsk {
        request_id: &request_id,
        method: &method,
        uri: &uri,
        authorization: authorization.as_deref(),
        reader: None,
        front: match style {
            Style::AuthRequest => Front::AuthRequest,
            Style::ForwardAuth => Front::ForwardAuth,
        },
    };
    let answer = guard.check(&ask).await;
    render(&answer, style)
}

/// The HTTP answer of `answer` in a front's style.
fn render(answer: &ReadAnswer, style: Style) -> Response<Full<Bytes>> {
    let status = answer.status();
    let body = status.map(|_| answer.matrix_error());
    let mut response = Response::new(Full::new(Bytes::new()));
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    put(headers, DECISION_ID, &answer.decision.decision_id);
    headers.insert(KIND, HeaderValue::from_static(answer.kind().as_str()));
    put(
        headers,
        USER,
        answer.user_id.as_ref().map_or("", |u| u.as_str()),
    );
    put(headers, REASONS, &answer.codes());
    if answer.shadow {
        headers.insert(
            SHADOW,
            HeaderValue::from_static(answer.decision.effect.as_str()),
        );
    }
    let (Some(status), Some(body)) = (status, body) else {
        *response.status_mut() = StatusCode::NO_CONTENT;
        return response;
    };
    if let Some(retry) = answer.retry_after.filter(|_| status == 429) {
        put(headers, RETRY_AFTER_MS, &retry.as_millis().to_string());
        if let Some(secs) = answer.retry_after_secs() {
            put(headers, RETRY_AFTER_S, &secs.to_string());
            if style == Style::ForwardAuth {
                put(headers, RETRY_AFTER, &secs.to_string());
            }
        }
    }
    put(headers, STATUS, &status.to_string());
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    match style {
        Style::AuthRequest => {
            // The body never reaches the client (nginx drops a subrequest's body): it is there for whoever asks
            // by hand.
            put(headers, BODY, &body);
            *response.status_mut() = StatusCode::FORBIDDEN;
        }
        Style::ForwardAuth => {
            *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
        }
    }
    *response.body_mut() = Full::new(Bytes::from(body));
    response
}

// The answer's header names, parsed once.
const DECISION_ID: HeaderName = HeaderName::from_static("x-roomguard-decision-id");
const KIND: HeaderName = HeaderName::from_static("x-roomguard-kind");
const USER: HeaderName = HeaderName::from_static("x-roomguard-user");
const REASONS: HeaderName = HeaderName::from_static("x-roomguard-reasons");
const SHADOW: HeaderName = HeaderName::from_static("x-roomguard-shadow");
const RETRY_AFTER_MS: HeaderName = HeaderName::from_static("x-roomguard-retry-after-ms");
const RETRY_AFTER_S: HeaderName = HeaderName::from_static("x-roomguard-retry-after");
const STATUS: HeaderName = HeaderName::from_static("x-roomguard-status");
const BODY: HeaderName = HeaderName::from_static("x-roomguard-body");

/// Sets a header whose value roomguard wrote (ASCII by construction: ids, codes, numbers, ASCII-escaped JSON); a
/// value that is not a valid header value is left out rather than answered wrong.
fn put(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}
