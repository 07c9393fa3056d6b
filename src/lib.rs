//! roomguard: a policy decision point for Matrix homeservers.
//!
//! A homeserver asks, before it publishes a room to its public directory or accepts a message, "may this happen?";
//! roomguard answers with a total [`Decision`] (an effect and every reason for it), decided by rules that the
//! operator's policy authors edit as files under `policies/`.
//!
//! The layers, each a folder, depend on the ones before them only:
//!
//! | folder | what | knows |
//! |---|---|---|
//! | [`domain`] | subject, room, message, requests, decision; Matrix grammar and limits | nothing else |
//! | [`policy`] | loading and checking a policy directory, roles, markings, reasons, deciding, the store, reload | domain; the rule engine only in [`policy::engine`] |
//! | [`ops`] | config, connections and TLS, tower layers, admission, metrics, decision log | domain, policy |
//! | [`grpc`] | protobuf types and conversions, the service, the server, proto3 JSON, health client | all of the above |
//! | [`author`] | policy test suites and reports, explained decisions | domain, policy, grpc (request conversion) |
//! | [`cli`] | argument parsing, the wiring of `serve`, exit codes | everything |

pub mod author;
pub mod cli;
pub mod documents;
pub mod domain;
pub mod grpc;
pub mod ops;
pub mod policy;

pub use domain::decision::{Decision, Effect, Reason};
