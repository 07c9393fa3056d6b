//! The gRPC edge, the only folder that knows protobuf: the generated code ([`proto`]), proto -> domain conversion
//! rejecting bad input with the field path (`convert`), the codec that answers undecodable bytes
//! `INVALID_ARGUMENT` (`codec`), the `PolicyService` (`service`), Envoy's ext_authz service on the same server
//! (`ext_authz`), the server that serves them ([`server`]), requests
//! written by hand in proto3 JSON or suite YAML (`json`, `cases`), and a health-check client (`health_client`).

pub(crate) mod cases;
pub(crate) mod codec;
pub(crate) mod convert;
mod ext_authz;
pub(crate) mod health_client;
pub(crate) mod json;
pub mod proto;
pub mod server;
pub(crate) mod service;
mod upload;

pub(crate) use convert::InvalidArgument;
pub(crate) use service::PolicyServer;
