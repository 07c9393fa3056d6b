//! The tower layers every gRPC call passes through, outermost first: the bearer token ([`auth`]), then the request
//! deadline (`deadline`). Health checks pass both untouched.

use std::{future::Future, pin::Pin};

pub mod auth;
pub(crate) mod deadline;

/// A boxed, sendable future (the layers' response futures).
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Paths served without a token, never timed out and never counted: health checks. An orchestrator must always be
/// able to ask, and a busy roomguard is not a dead one.
pub const OPEN_PREFIX: &str = "/grpc.health.v1.Health/";
