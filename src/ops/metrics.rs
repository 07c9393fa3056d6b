//! Prometheus metrics: counters and a histogram kept in memory, rendered in the text exposition format, served by a
//! small HTTP/1 listener of its own (`GET /metrics`), off unless `metrics.listen` is set.
//!
//! Names follow the Prometheus conventions: a `roomguard_` prefix, `_total` on counters, base units (`_seconds`),
//! and an `_info` gauge for the serving policy version. Reload counts and the policy version come from the
//! [`PolicyStore`]'s own record, so the reloader has nothing to report twice.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `roomguard_decisions_total` | counter | `rpc`, `effect` (the policy's), `mode` |
//! | `roomguard_decision_reasons_total` | counter | `rpc`, `effect`, `code` (one per reason of each decision) |
//! | `roomguard_decision_duration_seconds` | histogram | `rpc` |
//! | `roomguard_policy_reloads_total` | counter | `result` (`succeeded`, `refused`) |
//! | `roomguard_policy_reloads_unchanged_total` | counter | |
//! | `roomguard_policy_info` | gauge (1) | `policy_version` |
//! | `roomguard_decisions_off_the_workers_total` | counter | |
//! | `roomguard_requests_in_flight` | gauge | |
//! | `roomguard_requests_shed_total` | counter | |
//! | `roomguard_requests_timed_out_total` | counter | |
//! | `roomguard_requests_unauthenticated_total` | counter | |
//! | `roomguard_decision_log_dropped_total` | counter | |
//! | `roomguard_join_counter_tracked_users` | gauge | |
//! | `roomguard_joins_rate_limited_total` | counter | |
//! | `roomguard_connections_open` | gauge | |
//! | `roomguard_connections_refused_total` | counter | `reason` (`limit`: `limits.max_connections` reached) |
//! | `roomguard_connections_dropped_total` | counter | `reason` (`handshake_timeout`, `handshake_failed`, `not_http2`) |
//! | `roomguard_accept_errors_total` | counter | `reason` (`fd_limit`, `other`) |
//!
//! and the document-scan metrics of [`super::scan_metrics`] (`roomguard_media_*`), the counters' backend of
//! [`super::counter_metrics`] (`roomguard_counter_*`) and the read metrics of [`super::read_metrics`]
//! (`roomguard_reads_*`, `roomguard_token_cache_entries`, `roomguard_accounts_locked_total`, `roomguard_homeserver_*`).

use std::sync::Arc;
use std::{
    collections::BTreeMap,
    fmt::Write as _,
    future::Future,
    sync::{
        Mutex,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::Duration,
};

use http_body_util::Full;
use hyper::{Request, Response, StatusCode, body::Bytes};
use tokio::net::TcpListener;
use tracing::info;

use super::{
    counter_metrics::CounterMetrics,
    exposition::{escape, family},
    http1::Http1Limits,
    read_metrics::ReadMetrics,
    scan_metrics::ScanMetrics,
};
use crate::{domain::decision::Decision, policy::store::PolicyStore};

/// Upper bounds of the decision latency buckets, in seconds: a decision takes microseconds on a small policy and
/// milliseconds on a very large one.
const BUCKETS: [f64; 12] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The labelled families a decision updates.
#[derive(Debug, Default)]
struct DecisionCounts {
    /// By (rpc, effect, mode).
    effects: BTreeMap<(&'static str, &'static str, &'static str), u64>,
    /// By (rpc, effect), then reason code: the code is looked up as a `&str`, so a code already seen costs no
    /// allocation.
    reasons: BTreeMap<(&'static str, &'static str), BTreeMap<String, u64>>,
    /// By rpc.
    latency: BTreeMap<&'static str, Histogram>,
}

/// The counters of one process. Cheap to update from every call: atomics, and short uncontended locks for the
/// labelled families.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Every per-decision family under one lock: a decision takes it once.
    decisions: Mutex<DecisionCounts>,
    off_the_workers: AtomicU64,
    in_flight: AtomicI64,
    shed: AtomicU64,
    timed_out: AtomicU64,
    unauthenticated: AtomicU64,
    decision_log_dropped: AtomicU64,
    connections: ConnectionCounters,
    join_tracked_users: AtomicI64,
    joins_rate_limited: AtomicU64,
    /// Document scans (uploads).
    pub scans: ScanMetrics,
    /// The counters' backend.
    pub counters: CounterMetrics,
    /// Reads.
    pub reads: ReadMetrics,
}

/// What happened to the connections the listeners accepted.
#[derive(Debug, Default)]
struct ConnectionCounters {
    open: AtomicI64,
    refused_at_limit: AtomicU64,
    handshake_timeout: AtomicU64,
    handshake_failed: AtomicU64,
    not_http2: AtomicU64,
    accept_fd_limit: AtomicU64,
    accept_other: AtomicU64,
}

/// Why a connection was closed before it could carry a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionDrop {
    /// The TLS handshake and HTTP/2 preface did not complete within `limits.handshake_timeout_ms`.
    HandshakeTimeout,
    /// The TLS handshake failed (bad client certificate, not TLS, ...).
    HandshakeFailed,
    /// The first bytes were not the HTTP/2 connection preface.
    NotHttp2,
}

/// Why `accept` failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptError {
    /// The process or the system ran out of file descriptors.
    FdLimit,
    /// Anything else.
    Other,
}

impl Metrics {
    /// Fresh, zeroed metrics.
    pub fn new() -> Self {
        Metrics::default()
    }

    /// Counts one decision of `rpc` (`CheckMessageSend`, `CheckRoomPublish`) taken in `mode`, and its latency.
    pub fn decision(
        &self,
        rpc: &'static str,
        mode: &'static str,
        decision: &Decision,
        latency: Duration,
    ) {
        let effect = decision.effect.as_str();
        let seconds = latency.as_secs_f64();
        let Ok(mut counts) = self.decisions.lock() else {
            return;
        };
        *counts.effects.entry((rpc, effect, mode)).or_default() += 1;
        let reasons = counts.reasons.entry((rpc, effect)).or_default();
        for reason in &decision.reasons {
            match reasons.get_mut(reason.code.as_str()) {
                Some(n) => *n += 1,
                None => {
                    reasons.insert(reason.code.clone(), 1);
                }
            }
        }
        let h = counts.latency.entry(rpc).or_default();
        for (bound, count) in BUCKETS.iter().zip(h.counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }

    /// A decision ran on the blocking pool rather than inline (see [`crate::ops::decision_cost`]).
    pub fn decided_off_the_workers(&self) {
        self.off_the_workers.fetch_add(1, Ordering::Relaxed);
    }

    /// Decisions run on the blocking pool since start.
    pub fn decided_off_the_workers_count(&self) -> u64 {
        self.off_the_workers.load(Ordering::Relaxed)
    }

    /// A call entered the service (after admission).
    pub fn call_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// A call left the service.
    pub fn call_finished(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// Calls in flight now.
    pub fn in_flight(&self) -> i64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// A call was refused with `RESOURCE_EXHAUSTED` because the concurrency limit was reached.
    pub fn shed(&self) {
        self.shed.fetch_add(1, Ordering::Relaxed);
    }

    /// Calls shed since start.
    pub fn shed_count(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }

    /// A call ran past the request timeout.
    pub fn timed_out(&self) {
        self.timed_out.fetch_add(1, Ordering::Relaxed);
    }

    /// A call was refused with `UNAUTHENTICATED`.
    pub fn unauthenticated(&self) {
        self.unauthenticated.fetch_add(1, Ordering::Relaxed);
    }

    /// A decision-log line could not be buffered or written; returns the total so far.
    pub fn decision_log_dropped(&self) -> u64 {
        self.decision_log_dropped.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Decision-log lines dropped since start.
    pub fn decision_log_dropped_count(&self) -> u64 {
        self.decision_log_dropped.load(Ordering::Relaxed)
    }

    /// The join counter tracks `users` users now.
    pub fn join_counter_tracked_users(&self, users: usize) {
        self.join_tracked_users
            .store(i64::try_from(users).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    /// A join was refused for the public-join rate (`JOIN_RATE_EXCEEDED`).
    pub fn join_rate_limited(&self) {
        self.joins_rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    /// Joins refused for the public-join rate since start.
    pub fn joins_rate_limited_count(&self) -> u64 {
        self.joins_rate_limited.load(Ordering::Relaxed)
    }

    /// A connection was accepted and holds one of the `limits.max_connections` slots.
    pub fn connection_opened(&self) {
        self.connections.open.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection that held a slot is closed.
    pub fn connection_closed(&self) {
        self.connections.open.fetch_sub(1, Ordering::Relaxed);
    }

    /// Connections open now.
    pub fn connections_open(&self) -> i64 {
        self.connections.open.load(Ordering::Relaxed)
    }

    /// A connection was closed on accept because `limits.max_connections` were open.
    pub fn connection_refused_at_limit(&self) {
        self.connections
            .refused_at_limit
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Connections closed on accept at the limit since start.
    pub fn connections_refused_at_limit(&self) -> u64 {
        self.connections.refused_at_limit.load(Ordering::Relaxed)
    }

    /// A connection was closed before it could carry a call.
    pub fn connection_dropped(&self, why: ConnectionDrop) {
        self.drop_counter(why).fetch_add(1, Ordering::Relaxed);
    }

    /// Connections closed for `why` since start.
    pub fn connections_dropped(&self, why: ConnectionDrop) -> u64 {
        self.drop_counter(why).load(Ordering::Relaxed)
    }

    fn drop_counter(&self, why: ConnectionDrop) -> &AtomicU64 {
        match why {
            ConnectionDrop::HandshakeTimeout => &self.connections.handshake_timeout,
            ConnectionDrop::HandshakeFailed => &self.connections.handshake_failed,
            ConnectionDrop::NotHttp2 => &self.connections.not_http2,
        }
    }

    /// `accept` failed.
    pub fn accept_failed(&self, why: AcceptError) {
        match why {
            AcceptError::FdLimit => &self.connections.accept_fd_limit,
            AcceptError::Other => &self.connections.accept_other,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    /// Every metric in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self, store: &PolicyStore) -> String {
        let mut out = String::new();
        let status = store.status();

        family(
            &mut out,
            "roomguard_decisions_total",
            "counter",
            "Decisions taken, by rpc, the policy's effect and mode.",
        );
        // A copy, so that rendering (string formatting) never holds the lock that every decision takes.
        let (effects, reasons, latency) = match self.decisions.lock() {
            Ok(counts) => (
                counts.effects.clone(),
                counts.reasons.clone(),
                counts.latency.clone(),
            ),
            Err(_) => Default::default(),
        };
        for ((rpc, effect, mode), n) in effects.iter() {
            let _ = writeln!(
                out,
                "roomguard_decisions_total{{rpc=\"{rpc}\",effect=\"{effect}\",mode=\"{mode}\"}} {n}"
            );
        }
        family(
            &mut out,
            "roomguard_decision_reasons_total",
            "counter",
            "Reasons given, one per reason of each decision, by rpc, effect and reason code.",
        );
        for ((rpc, effect), codes) in reasons.iter() {
            for (code, n) in codes.iter() {
                let code = escape(code);
                let _ = writeln!(
                    out,
                    "roomguard_decision_reasons_total{{rpc=\"{rpc}\",effect=\"{effect}\",code=\"{code}\"}} {n}"
                );
            }
        }
        family(
            &mut out,
            "roomguard_decision_duration_seconds",
            "histogram",
            "Time to decide one call, from decoded request to decision.",
        );
        for (rpc, h) in latency.iter() {
            for (bound, count) in BUCKETS.iter().zip(h.counts.iter()) {
                let _ = writeln!(
                    out,
                    "roomguard_decision_duration_seconds_bucket{{rpc=\"{rpc}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "roomguard_decision_duration_seconds_bucket{{rpc=\"{rpc}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "roomguard_decision_duration_seconds_sum{{rpc=\"{rpc}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "roomguard_decision_duration_seconds_count{{rpc=\"{rpc}\"}} {}",
                h.count
            );
        }
        family(
            &mut out,
            "roomguard_policy_reloads_total",
            "counter",
            "Policy reloads, by result: succeeded (swapped in) or refused (the previous policy kept serving).",
        );
        let _ = writeln!(
            out,
            "roomguard_policy_reloads_total{{result=\"succeeded\"}} {}",
            status.reloads_succeeded
        );
        let _ = writeln!(
            out,
            "roomguard_policy_reloads_total{{result=\"refused\"}} {}",
            status.reloads_refused
        );
        family(
            &mut out,
            "roomguard_policy_reloads_unchanged_total",
            "counter",
            "Reloads that found the policy files hashing to the serving version (a kubelet's cleanup, a save of the \
             same content): nothing swapped, not counted in roomguard_policy_reloads_total.",
        );
        let _ = writeln!(
            out,
            "roomguard_policy_reloads_unchanged_total {}",
            status.reloads_unchanged
        );
        family(
            &mut out,
            "roomguard_policy_info",
            "gauge",
            "The serving policy: always 1, its version in the label.",
        );
        let _ = writeln!(
            out,
            "roomguard_policy_info{{policy_version=\"{}\"}} 1",
            escape(&status.policy_version)
        );
        let c = &self.connections;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let scalars: [Family; 12] = [
            (
                "roomguard_decisions_off_the_workers_total",
                "counter",
                "Decisions run on the blocking thread pool: slow policies, large requests, the first call of each rpc \
                 on a new policy.",
                vec![("", as_sample(self.decided_off_the_workers_count()))],
            ),
            (
                "roomguard_requests_in_flight",
                "gauge",
                "Calls being decided now.",
                vec![("", self.in_flight())],
            ),
            (
                "roomguard_requests_shed_total",
                "counter",
                "Calls answered RESOURCE_EXHAUSTED at once because the concurrency limit was reached.",
                vec![("", as_sample(self.shed_count()))],
            ),
            (
                "roomguard_requests_timed_out_total",
                "counter",
                "Calls answered DEADLINE_EXCEEDED by the request timeout.",
                vec![("", as_sample(load(&self.timed_out)))],
            ),
            (
                "roomguard_requests_unauthenticated_total",
                "counter",
                "Calls refused UNAUTHENTICATED (missing or wrong bearer token).",
                vec![("", as_sample(load(&self.unauthenticated)))],
            ),
            (
                "roomguard_decision_log_dropped_total",
                "counter",
                "Decision-log lines that could not be buffered or written.",
                vec![("", as_sample(self.decision_log_dropped_count()))],
            ),
            (
                "roomguard_join_counter_tracked_users",
                "gauge",
                "Users the public-join counter tracks now (at most counters.max_tracked_users).",
                vec![("", self.join_tracked_users.load(Ordering::Relaxed))],
            ),
            (
                "roomguard_joins_rate_limited_total",
                "counter",
                "Joins refused for the per-account public-join rate (JOIN_RATE_EXCEEDED).",
                vec![("", as_sample(self.joins_rate_limited_count()))],
            ),
            (
                "roomguard_connections_open",
                "gauge",
                "Connections open now, across every listener (at most limits.max_connections).",
                vec![("", self.connections_open())],
            ),
            (
                "roomguard_connections_refused_total",
                "counter",
                "Connections closed as soon as they were accepted, by reason (limit: limits.max_connections were \
                 open).",
                vec![("reason=\"limit\"", as_sample(load(&c.refused_at_limit)))],
            ),
            (
                "roomguard_connections_dropped_total",
                "counter",
                "Connections closed before carrying a call: no TLS handshake and HTTP/2 preface in time, a failed TLS \
                 handshake, or not HTTP/2.",
                vec![
                    (
                        "reason=\"handshake_timeout\"",
                        as_sample(load(&c.handshake_timeout)),
                    ),
                    (
                        "reason=\"handshake_failed\"",
                        as_sample(load(&c.handshake_failed)),
                    ),
                    ("reason=\"not_http2\"", as_sample(load(&c.not_http2))),
                ],
            ),
            (
                "roomguard_accept_errors_total",
                "counter",
                "Failed accepts, by reason (fd_limit: out of file descriptors).",
                vec![
                    ("reason=\"fd_limit\"", as_sample(load(&c.accept_fd_limit))),
                    ("reason=\"other\"", as_sample(load(&c.accept_other))),
                ],
            ),
        ];
        for (name, kind, help, samples) in scalars {
            family(&mut out, name, kind, help);
            for (labels, value) in samples {
                if labels.is_empty() {
                    let _ = writeln!(out, "{name} {value}");
                } else {
                    let _ = writeln!(out, "{name}{{{labels}}} {value}");
                }
            }
        }
        self.scans.render(&mut out);
        self.counters.render(&mut out);
        self.reads.render(&mut out);
        out
    }
}

/// One metric family: name, type, help, and its samples as (labels, value), labels `""` when it has none.
type Family = (
    &'static str,
    &'static str,
    &'static str,
    Vec<(&'static str, i64)>,
);

/// A counter as a sample value (a counter never reaches 2^63 in practice; saturate rather than wrap).
fn as_sample(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// Serves `GET /metrics` on `listener` until `shutdown` resolves. Any other path is 404.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    store: Arc<PolicyStore>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "metrics listening");
    }
    let limits = Http1Limits {
        name: "metrics",
        max_connections: 64,
        header_timeout: Duration::from_secs(5),
        max_head_bytes: 16 * 1024,
    };
    let handle = move |request: Request<hyper::body::Incoming>| {
        let response = respond(&request, &metrics, &store);
        async move { response }
    };
    super::http1::serve(listener, limits, handle, shutdown).await;
}

fn respond<B>(
    request: &Request<B>,
    metrics: &Metrics,
    store: &PolicyStore,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    if request.method() != hyper::Method::GET || request.uri().path() != "/metrics" {
        *response.status_mut() = StatusCode::NOT_FOUND;
        return response;
    }
    *response.body_mut() = Full::new(Bytes::from(metrics.render(store)));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Label values are escaped as the exposition format says.
    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
