//! Caller authentication: a tower layer that admits a call only when it carries `authorization: Bearer <token>`
//! with the configured token, and answers `UNAUTHENTICATED` otherwise.
//!
//! gRPC health (`grpc.health.v1.Health`) stays open, so load balancers and `roomguard health` need no secret; every
//! other service, reflection included, needs the token. The comparison is in constant time over SHA-256 digests of
//! both sides, so neither the content nor the length of the token leaks through timing.

use std::{
    path::PathBuf,
    sync::Arc,
    task::{Context, Poll},
};

use http::{Request, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::Status;
use tower::{Layer, Service};
use tracing::debug;

use super::{BoxFuture, OPEN_PREFIX};
use crate::ops::{
    config_error::{ConfigError, readable},
    connections::ConnectionInfo,
    metrics::Metrics,
};

/// `[auth]`: callers must send `authorization: Bearer <token>` when a token is configured.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// A file holding the token (surrounding whitespace is ignored).
    pub token_file: Option<PathBuf>,
    /// The token itself. Only from the environment (`ROOMGUARD_AUTH_TOKEN`): never a flag (visible in `ps`), and
    /// better not the config file; refused when `token_file` is set too.
    #[serde(skip)]
    pub token: Option<String>,
}

impl AuthConfig {
    /// The token file can be read, and the token comes from one place.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(path) = &self.token_file {
            readable("auth.token_file", path)?;
            if self.token.is_some() {
                return Err(ConfigError::new(
                    "auth.token_file",
                    "set either `auth.token_file` or ROOMGUARD_AUTH_TOKEN, not both",
                ));
            }
        }
        Ok(())
    }
}

/// The shared secret callers present. Its `Debug` does not show it.
#[derive(Clone)]
pub struct BearerToken {
    digest: [u8; 32],
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(..)")
    }
}

impl BearerToken {
    /// A token; surrounding whitespace (a file's final newline) is not part of it. `None` if empty.
    pub fn new(token: &str) -> Option<Self> {
        let token = token.trim();
        (!token.is_empty()).then(|| BearerToken {
            digest: Sha256::digest(token.as_bytes()).into(),
        })
    }

    /// Whether an `authorization` header value is `Bearer <this token>`, compared in constant time.
    pub fn admits(&self, header: Option<&[u8]>) -> bool {
        let presented = header
            .and_then(|h| h.strip_prefix(b"Bearer ".as_slice()))
            .unwrap_or_default();
        let digest: [u8; 32] = Sha256::digest(presented).into();
        bool::from(digest.ct_eq(&self.digest)) && !presented.is_empty()
    }
}

/// Adds bearer-token checking to a service.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    token: Option<BearerToken>,
    metrics: Arc<Metrics>,
}

impl AuthLayer {
    /// Checks `token` when it is set; passes every call through when it is `None`.
    pub fn new(token: Option<BearerToken>, metrics: Arc<Metrics>) -> Self {
        AuthLayer { token, metrics }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Auth {
            inner,
            token: self.token.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

/// The service [`AuthLayer`] makes.
#[derive(Debug, Clone)]
pub struct Auth<S> {
    inner: S,
    token: Option<BearerToken>,
    metrics: Arc<Metrics>,
}

impl<S, B, R> Service<Request<B>> for Auth<S>
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
        if let Some(token) = &self.token {
            let open = request.uri().path().starts_with(OPEN_PREFIX);
            let header = request
                .headers()
                .get(http::header::AUTHORIZATION)
                .map(|v| v.as_bytes());
            if !open && !token.admits(header) {
                self.metrics.unauthenticated();
                // Who knocked, for the operator tracing a misconfigured client or a probe; never the token sent.
                let peer = request
                    .extensions()
                    .get::<ConnectionInfo>()
                    .and_then(|info| info.peer);
                debug!(peer = ?peer, path = request.uri().path(), "refused: missing or wrong bearer token");
                let status = Status::unauthenticated("missing or wrong bearer token");
                return Box::pin(std::future::ready(Ok(status.into_http())));
            }
        }
        Box::pin(self.inner.call(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only the exact token behind `Bearer ` is admitted.
    #[test]
    fn only_the_exact_token_is_admitted() {
        let token = BearerToken::new("s3cret\n").unwrap();
        assert!(token.admits(Some(b"Bearer s3cret")));
        assert!(!token.admits(Some(b"Bearer s3cre")));
        assert!(!token.admits(Some(b"Bearer s3cret2")));
        assert!(!token.admits(Some(b"bearer s3cret")));
        assert!(!token.admits(Some(b"s3cret")));
        assert!(!token.admits(Some(b"Bearer ")));
        assert!(!token.admits(None));
    }

    /// An empty token is no token: it must not admit an empty header.
    #[test]
    fn an_empty_token_is_refused() {
        assert!(BearerToken::new(" \n").is_none());
    }
}
