//! The generated protobuf and gRPC code for `roomguard.v1`, and the descriptor set that reflection serves.
//!
//! Generated code lives behind this one module so that nothing else depends on prost's shapes: the rest of the crate
//! talks in domain types and [`crate::grpc`] converts at the edge.

#![allow(missing_docs, clippy::all, clippy::pedantic)]

tonic::include_proto!("roomguard.v1");

/// The encoded `FileDescriptorSet` of `roomguard.v1`, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("roomguard_descriptor");
