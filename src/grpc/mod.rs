//! The gRPC edge: proto -> domain conversion (rejecting bad input with the field path), the `PolicyService`
//! implementation, and domain -> proto conversion of decisions.

pub mod codec;
pub mod convert;
pub mod service;

pub use convert::InvalidArgument;
pub use service::PolicyServer;
