//! Operating the service: configuration, connections and TLS, the tower layers (token, deadline) and admission
//! control, metrics, the decision log and the policy reloader. Knows the domain and the policy store; never protobuf types.

pub(crate) mod admission;
pub mod allocator;
pub mod config;
pub mod config_error;
pub(crate) mod connections;
pub mod counter_metrics;
pub mod counters;
pub mod decision_cost;
pub mod decision_log;
mod exposition;
pub mod http1;
pub mod https_client;
pub mod layers;
pub mod limits;
pub mod media_limits;
pub mod metrics;
pub mod mode;
mod named_counters;
pub mod read_metrics;
pub mod reads;
pub mod reload;
pub mod scan_metrics;
pub mod scan_slots;
pub mod tls;
