//! roomguard: a policy decision point for Matrix homeservers.
//!
//! A homeserver asks, before it publishes a room to its public directory or accepts a message, "may this happen?";
//! roomguard answers with a total [`Decision`] (an effect and every reason for it), decided by rules that the
//! operator's policy authors edit as files under `policies/`.
//!
//! This package is the server and the binary. The decision itself is in two library crates that know nothing of
//! gRPC, HTTP or Redis, re-exported here under the names the server's modules use:
//!
//! | module | crate | what |
//! |---|---|---|
//! | [`domain`] | `roomguard-core` | subject, room, message, requests, decision; Matrix grammar and limits |
//! | [`policy`] | `roomguard-core` | loading and checking a policy directory, roles, markings, reasons, deciding, the store |
//! | [`documents`] | `roomguard-documents` | the text a reader sees in an uploaded file, within limits |
//!
//! The layers of this package, each a folder, depend on the ones before them only:
//!
//! | folder | what | knows |
//! |---|---|---|
//! | [`ops`] | config, connections and TLS, tower layers, admission, metrics, decision log, read guard, reloader | the core |
//! | [`grpc`] | protobuf types and conversions, the service, the server, proto3 JSON, health client | all of the above |
//! | [`author`] | policy test suites and reports, explained decisions | the core, grpc (request conversion) |
//! | [`audit`] | a live homeserver's history decided by the policy, reports, remediation | the core, ops (media limits, config) |
//! | [`cli`] | argument parsing, the wiring of `serve`, exit codes | everything |

pub mod audit;
pub mod author;
pub mod cli;
pub mod grpc;
pub mod ops;

/// The decision core, re-exported so that the server's modules and its tests name it as before.
pub use roomguard_core::{domain, policy};
/// Reading uploaded documents, re-exported likewise.
pub use roomguard_documents as documents;

pub use domain::decision::{Decision, Effect, Reason};
