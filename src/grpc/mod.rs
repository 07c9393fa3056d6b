//! The gRPC edge, the only folder that knows protobuf: the generated code ([`proto`]), proto -> domain conversion
//! rejecting bad input with the field path ([`convert`]), the codec that answers undecodable bytes
//! `INVALID_ARGUMENT` ([`codec`]), the `PolicyService` ([`service`]), the server that serves it ([`server`]), requests
//! written by hand in proto3 JSON or suite YAML ([`json`], [`cases`]), and a health-check client ([`health_client`]).

pub mod cases;
pub mod codec;
pub mod convert;
pub mod health_client;
pub mod json;
pub mod proto;
pub mod server;
pub mod service;

pub use convert::InvalidArgument;
pub use service::PolicyServer;
