//! roomguard: a policy decision point for Matrix homeservers.
//!
//! A homeserver asks, before it publishes a room to its public directory or accepts a message, "may this happen?";
//! roomguard answers with a total [`Decision`] (an effect and every reason for it), decided by casbin rules that the
//! operator's policy authors edit as files under `policies/`.
//!
//! The layers never mix: [`grpc`] converts protobuf to the domain types ([`request`], [`subject`], [`room`],
//! [`message`]) and back; [`decide`] runs the pipeline (validate, resolve roles, classify, evaluate, explain) against
//! one immutable [`policy::PolicySnapshot`]; [`engine`] is the only module that knows casbin.

pub mod attributes;
pub mod auth;
pub mod check_report;
pub mod classifier;
pub mod cli;
pub mod config;
pub mod connections;
pub mod decide;
pub mod decision;
pub mod decision_log;
pub mod diagnostics;
pub mod engine;
pub mod grpc;
pub mod health_client;
pub mod json_request;
pub mod message;
pub mod metrics;
pub mod normalize;
pub mod overload;
pub mod policy;
pub mod proto;
pub mod reasons;
pub mod reload;
pub mod request;
pub mod roles;
pub mod room;
pub mod rules;
pub mod server;
pub mod store;
pub mod subject;
pub mod suite;
pub mod suite_report;
pub mod tls;

pub use decision::{Decision, Effect, Reason};
