//! Prometheus metrics: `prometheus-client`'s counters, gauges and histograms in one registry, rendered in the
//! Prometheus text exposition format (version 0.0.4) by its encoder, served by a small HTTP/1 listener of its own
//! (`GET /metrics`), off unless `metrics.listen` is set.
//!
//! Names follow the Prometheus conventions: a `roomguard_` prefix, `_total` on counters (the encoder adds it: a
//! counter is registered without it), base units (`_seconds`), and an `_info` gauge for the serving policy version.
//! Reload counts and the policy version come from the [`PolicyStore`]'s own record at each scrape, so the reloader
//! has nothing to report twice.
//!
//! A decision counts in three families; the series it updates are resolved from their family on first use and then
//! held (atomics, and the histogram's own lock), so that a decision builds no label set and allocates nothing.
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

use std::{
    future::Future,
    sync::{Arc, OnceLock},
    time::Duration,
};

use http_body_util::Full;
use hyper::{Request, Response, StatusCode, body::Bytes};
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric},
    metrics::{
        MetricType, counter::ConstCounter, counter::Counter, family::Family, gauge::Gauge,
        histogram::Histogram, info::Info,
    },
    registry::Registry,
};
use tokio::net::TcpListener;
use tracing::info;

use super::{
    counter_metrics::CounterMetrics,
    exposition::{self, register},
    http1::Http1Limits,
    named_counters::NamedCounters,
    read_metrics::{ReadMetrics, effect_index},
    scan_metrics::ScanMetrics,
};
use crate::{
    domain::decision::{Decision, Effect},
    policy::store::{PolicyStore, StoreStatus},
};

/// Upper bounds of the decision latency buckets, in seconds: a decision takes microseconds on a small policy and
/// milliseconds on a very large one.
const BUCKETS: [f64; 12] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5,
];

/// The rpcs whose decisions find their series held (see [`RpcSeries`]); another rpc's decisions are counted too,
/// through a look-up in each family.
const RPCS: [&str; 6] = [
    "CheckMessageSend",
    "CheckRoomPublish",
    "CheckRoomJoin",
    "CheckRoomStateChange",
    "CheckRead",
    "CheckMediaUpload",
];

/// The modes, as [`crate::ops::mode::Mode::as_str`] names them.
const MODES: [&str; 2] = ["enforce", "shadow"];

/// The labels of `roomguard_decision_reasons_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    rpc: &'static str,
    effect: &'static str,
    code: String,
}

/// The families a decision updates.
#[derive(Debug)]
struct DecisionFamilies {
    /// By (rpc, effect, mode).
    decisions: Family<[(&'static str, &'static str); 3], Counter>,
    /// By (rpc, effect, reason code).
    reasons: Family<ReasonLabels, Counter>,
    /// By rpc.
    latency: Family<[(&'static str, &'static str); 1], Histogram>,
    /// The series of each rpc of [`RPCS`], in its order.
    by_rpc: [RpcSeries; RPCS.len()],
}

/// The series one rpc's decisions update, each resolved from its family by the first decision that counts in it
/// (so that a series appears when it has something to say, as with a look-up each time), then held.
#[derive(Debug, Default)]
struct RpcSeries {
    /// By effect (see [`effect_index`]), then mode (in the order of [`MODES`]).
    decisions: [[OnceLock<Counter>; MODES.len()]; 2],
    /// By effect, then reason code.
    reasons: [NamedCounters; 2],
    latency: OnceLock<Histogram>,
}

/// The metrics of one process: the registry, and a handle on each of its series that is updated from the code.
/// Cheap to update from every call: atomics, and the decision latency histogram's short lock.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    decisions: DecisionFamilies,
    off_the_workers: Counter,
    in_flight: Gauge,
    shed: Counter,
    timed_out: Counter,
    unauthenticated: Counter,
    decision_log_dropped: Counter,
    connections: ConnectionCounters,
    join_tracked_users: Gauge,
    joins_rate_limited: Counter,
    /// Document scans (uploads).
    pub scans: ScanMetrics,
    /// The counters' backend.
    pub counters: CounterMetrics,
    /// Reads.
    pub reads: ReadMetrics,
}

/// What happened to the connections the listeners accepted.
#[derive(Debug)]
struct ConnectionCounters {
    open: Gauge,
    refused_at_limit: Counter,
    handshake_timeout: Counter,
    handshake_failed: Counter,
    not_http2: Counter,
    accept_fd_limit: Counter,
    accept_other: Counter,
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

/// A counter family of one label, all of whose values are known: each series exists (at 0) from the start.
type ByReason = Family<[(&'static str, &'static str); 1], Counter>;

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Fresh, zeroed metrics.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let r = &mut registry;
        let decisions = DecisionFamilies {
            decisions: Family::default(),
            reasons: Family::default(),
            latency: Family::new_with_constructor(|| Histogram::new(BUCKETS)),
            by_rpc: Default::default(),
        };
        register(
            r,
            "roomguard_decisions",
            "Decisions taken, by rpc, the policy's effect and mode.",
            decisions.decisions.clone(),
        );
        register(
            r,
            "roomguard_decision_reasons",
            "Reasons given, one per reason of each decision, by rpc, effect and reason code.",
            decisions.reasons.clone(),
        );
        register(
            r,
            "roomguard_decision_duration_seconds",
            "Time to decide one call, from decoded request to decision.",
            decisions.latency.clone(),
        );
        let counter = |r: &mut Registry, name: &str, help: &str| {
            let counter = Counter::default();
            register(r, name, help, counter.clone());
            counter
        };
        let gauge = |r: &mut Registry, name: &str, help: &str| {
            let gauge = Gauge::default();
            register(r, name, help, gauge.clone());
            gauge
        };
        let reasons = |r: &mut Registry, name: &str, help: &str| {
            let family = ByReason::default();
            register(r, name, help, family.clone());
            family
        };
        let off_the_workers = counter(
            r,
            "roomguard_decisions_off_the_workers",
            "Decisions run on the blocking thread pool: slow policies, large requests, the first call of each rpc \
             on a new policy.",
        );
        let in_flight = gauge(
            r,
            "roomguard_requests_in_flight",
            "Calls being decided now.",
        );
        let shed = counter(
            r,
            "roomguard_requests_shed",
            "Calls answered RESOURCE_EXHAUSTED at once because the concurrency limit was reached.",
        );
        let timed_out = counter(
            r,
            "roomguard_requests_timed_out",
            "Calls answered DEADLINE_EXCEEDED by the request timeout.",
        );
        let unauthenticated = counter(
            r,
            "roomguard_requests_unauthenticated",
            "Calls refused UNAUTHENTICATED (missing or wrong bearer token).",
        );
        let decision_log_dropped = counter(
            r,
            "roomguard_decision_log_dropped",
            "Decision-log lines that could not be buffered or written.",
        );
        let join_tracked_users = gauge(
            r,
            "roomguard_join_counter_tracked_users",
            "Users the public-join counter tracks now (at most counters.max_tracked_users).",
        );
        let joins_rate_limited = counter(
            r,
            "roomguard_joins_rate_limited",
            "Joins refused for the per-account public-join rate (JOIN_RATE_EXCEEDED).",
        );
        let open = gauge(
            r,
            "roomguard_connections_open",
            "Connections open now, across every listener (at most limits.max_connections).",
        );
        let refused = reasons(
            r,
            "roomguard_connections_refused",
            "Connections closed as soon as they were accepted, by reason (limit: limits.max_connections were \
             open).",
        );
        let dropped = reasons(
            r,
            "roomguard_connections_dropped",
            "Connections closed before carrying a call: no TLS handshake and HTTP/2 preface in time, a failed TLS \
             handshake, or not HTTP/2.",
        );
        let accept_errors = reasons(
            r,
            "roomguard_accept_errors",
            "Failed accepts, by reason (fd_limit: out of file descriptors).",
        );
        let reason = |family: &ByReason, reason| family.get_or_create_owned(&[("reason", reason)]);
        let connections = ConnectionCounters {
            open,
            refused_at_limit: reason(&refused, "limit"),
            handshake_timeout: reason(&dropped, "handshake_timeout"),
            handshake_failed: reason(&dropped, "handshake_failed"),
            not_http2: reason(&dropped, "not_http2"),
            accept_fd_limit: reason(&accept_errors, "fd_limit"),
            accept_other: reason(&accept_errors, "other"),
        };
        let scans = ScanMetrics::new(r);
        let counters = CounterMetrics::new(r);
        let reads = ReadMetrics::new(r);
        Metrics {
            registry,
            decisions,
            off_the_workers,
            in_flight,
            shed,
            timed_out,
            unauthenticated,
            decision_log_dropped,
            connections,
            join_tracked_users,
            joins_rate_limited,
            scans,
            counters,
            reads,
        }
    }

    /// Counts one decision of `rpc` (`CheckMessageSend`, `CheckRoomPublish`) taken in `mode`, and its latency.
    pub fn decision(
        &self,
        rpc: &'static str,
        mode: &'static str,
        decision: &Decision,
        latency: Duration,
    ) {
        let families = &self.decisions;
        let effect = decision.effect;
        let Some(series) = RPCS
            .iter()
            .position(|known| *known == rpc)
            .and_then(|i| families.by_rpc.get(i))
        else {
            return families.uncached(rpc, mode, decision, latency);
        };
        let e = effect_index(effect);
        match MODES.iter().position(|known| *known == mode) {
            Some(m) => series.decisions[e][m]
                .get_or_init(|| families.decisions_of(rpc, effect, mode))
                .inc(),
            None => families.decisions_of(rpc, effect, mode).inc(),
        };
        for reason in &decision.reasons {
            series.reasons[e].inc(&reason.code, || {
                families.reasons_of(rpc, effect, &reason.code)
            });
        }
        series
            .latency
            .get_or_init(|| families.latency_of(rpc))
            .observe(latency.as_secs_f64());
    }

    /// A decision ran on the blocking pool rather than inline (see [`crate::ops::decision_cost`]).
    pub fn decided_off_the_workers(&self) {
        self.off_the_workers.inc();
    }

    /// Decisions run on the blocking pool since start.
    pub fn decided_off_the_workers_count(&self) -> u64 {
        self.off_the_workers.get()
    }

    /// A call entered the service (after admission).
    pub fn call_started(&self) {
        self.in_flight.inc();
    }

    /// A call left the service.
    pub fn call_finished(&self) {
        self.in_flight.dec();
    }

    /// Calls in flight now.
    pub fn in_flight(&self) -> i64 {
        self.in_flight.get()
    }

    /// A call was refused with `RESOURCE_EXHAUSTED` because the concurrency limit was reached.
    pub fn shed(&self) {
        self.shed.inc();
    }

    /// Calls shed since start.
    pub fn shed_count(&self) -> u64 {
        self.shed.get()
    }

    /// A call ran past the request timeout.
    pub fn timed_out(&self) {
        self.timed_out.inc();
    }

    /// A call was refused with `UNAUTHENTICATED`.
    pub fn unauthenticated(&self) {
        self.unauthenticated.inc();
    }

    /// A decision-log line could not be buffered or written; returns the total so far.
    pub fn decision_log_dropped(&self) -> u64 {
        self.decision_log_dropped.inc() + 1
    }

    /// Decision-log lines dropped since start.
    pub fn decision_log_dropped_count(&self) -> u64 {
        self.decision_log_dropped.get()
    }

    /// The join counter tracks `users` users now.
    pub fn join_counter_tracked_users(&self, users: usize) {
        self.join_tracked_users
            .set(i64::try_from(users).unwrap_or(i64::MAX));
    }

    /// A join was refused for the public-join rate (`JOIN_RATE_EXCEEDED`).
    pub fn join_rate_limited(&self) {
        self.joins_rate_limited.inc();
    }

    /// Joins refused for the public-join rate since start.
    pub fn joins_rate_limited_count(&self) -> u64 {
        self.joins_rate_limited.get()
    }

    /// A connection was accepted and holds one of the `limits.max_connections` slots.
    pub fn connection_opened(&self) {
        self.connections.open.inc();
    }

    /// A connection that held a slot is closed.
    pub fn connection_closed(&self) {
        self.connections.open.dec();
    }

    /// Connections open now.
    pub fn connections_open(&self) -> i64 {
        self.connections.open.get()
    }

    /// A connection was closed on accept because `limits.max_connections` were open.
    pub fn connection_refused_at_limit(&self) {
        self.connections.refused_at_limit.inc();
    }

    /// Connections closed on accept at the limit since start.
    pub fn connections_refused_at_limit(&self) -> u64 {
        self.connections.refused_at_limit.get()
    }

    /// A connection was closed before it could carry a call.
    pub fn connection_dropped(&self, why: ConnectionDrop) {
        self.drop_counter(why).inc();
    }

    /// Connections closed for `why` since start.
    pub fn connections_dropped(&self, why: ConnectionDrop) -> u64 {
        self.drop_counter(why).get()
    }

    fn drop_counter(&self, why: ConnectionDrop) -> &Counter {
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
        .inc();
    }

    /// Every metric in the Prometheus text exposition format (version 0.0.4), the policy store's among them.
    pub fn render(&self, store: &PolicyStore) -> String {
        let mut out = String::new();
        exposition::encode(&mut out, &self.registry);
        let mut policy = Registry::default();
        policy.register_collector(Box::new(PolicyMetrics(store.status())));
        exposition::encode(&mut out, &policy);
        out
    }
}

impl DecisionFamilies {
    /// The series of `rpc`'s decisions with `effect` in `mode`.
    fn decisions_of(&self, rpc: &'static str, effect: Effect, mode: &'static str) -> Counter {
        self.decisions.get_or_create_owned(&[
            ("rpc", rpc),
            ("effect", effect.as_str()),
            ("mode", mode),
        ])
    }

    /// The series of `rpc`'s reasons coded `code` on decisions with `effect`.
    fn reasons_of(&self, rpc: &'static str, effect: Effect, code: &str) -> Counter {
        self.reasons.get_or_create_owned(&ReasonLabels {
            rpc,
            effect: effect.as_str(),
            code: code.to_owned(),
        })
    }

    /// The latency histogram of `rpc`.
    fn latency_of(&self, rpc: &'static str) -> Histogram {
        self.latency.get_or_create_owned(&[("rpc", rpc)])
    }

    /// Counts a decision of an rpc not in [`RPCS`], looking each series up.
    fn uncached(
        &self,
        rpc: &'static str,
        mode: &'static str,
        decision: &Decision,
        latency: Duration,
    ) {
        self.decisions_of(rpc, decision.effect, mode).inc();
        for reason in &decision.reasons {
            self.reasons_of(rpc, decision.effect, &reason.code).inc();
        }
        self.latency_of(rpc).observe(latency.as_secs_f64());
    }
}

/// The policy store's record at one scrape: its reload counts and the serving version.
#[derive(Debug)]
struct PolicyMetrics(StoreStatus);

impl Collector for PolicyMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let status = &self.0;
        let mut reloads = encoder.encode_descriptor(
            "roomguard_policy_reloads",
            "Policy reloads, by result: succeeded (swapped in) or refused (the previous policy kept serving).",
            None,
            MetricType::Counter,
        )?;
        for (result, n) in [
            ("succeeded", status.reloads_succeeded),
            ("refused", status.reloads_refused),
        ] {
            ConstCounter::new(n).encode(reloads.encode_family(&[("result", result)])?)?;
        }
        let unchanged = encoder.encode_descriptor(
            "roomguard_policy_reloads_unchanged",
            "Reloads that found the policy files hashing to the serving version (a kubelet's cleanup, a save of the \
             same content): nothing swapped, not counted in roomguard_policy_reloads_total.",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(status.reloads_unchanged).encode(unchanged)?;
        let info = encoder.encode_descriptor(
            "roomguard_policy",
            "The serving policy: always 1, its version in the label.",
            None,
            MetricType::Info,
        )?;
        Info::new([("policy_version", status.policy_version.as_str())]).encode(info)
    }
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
        hyper::header::HeaderValue::from_static(exposition::CONTENT_TYPE),
    );
    response
}

#[cfg(test)]
mod tests {
    use std::{path::Path, time::SystemTime};

    use super::*;
    use crate::{domain::decision::Reason, policy::PolicySnapshot};

    fn decision(effect: Effect, codes: &[&str]) -> Decision {
        Decision {
            effect,
            reasons: codes
                .iter()
                .map(|code| Reason {
                    code: (*code).into(),
                    rule: String::new(),
                    message: String::new(),
                })
                .collect(),
            decision_id: String::new(),
            decided_at: SystemTime::UNIX_EPOCH,
            request_id: String::new(),
            policy_version: String::new(),
            roles: Vec::new(),
            classification: String::new(),
        }
    }

    /// A decision's series appear with its first decision, and an rpc whose series are held counts as one that is
    /// looked up each time.
    #[test]
    fn decisions_count_alike_whether_their_series_are_held_or_not() {
        let store = PolicyStore::new(PolicySnapshot::load(Path::new("policies")).unwrap());
        let metrics = Metrics::new();
        assert!(!metrics.render(&store).contains("roomguard_decisions_total"));
        for rpc in ["CheckMessageSend", "CheckSomethingElse"] {
            for us in [10, 70, 700] {
                let deny = decision(Effect::Deny, &["A_CODE", "B_CODE"]);
                metrics.decision(rpc, "enforce", &deny, Duration::from_micros(us));
            }
            metrics.decision(
                rpc,
                "shadow",
                &decision(Effect::Allow, &["ALLOWED"]),
                Duration::ZERO,
            );
        }
        let text = metrics.render(&store);
        for rpc in ["CheckMessageSend", "CheckSomethingElse"] {
            for expected in [
                format!(
                    "roomguard_decisions_total{{rpc=\"{rpc}\",effect=\"deny\",mode=\"enforce\"}} 3\n"
                ),
                format!(
                    "roomguard_decisions_total{{rpc=\"{rpc}\",effect=\"allow\",mode=\"shadow\"}} 1\n"
                ),
                format!(
                    "roomguard_decision_reasons_total{{rpc=\"{rpc}\",effect=\"deny\",code=\"B_CODE\"}} 3\n"
                ),
                format!(
                    "roomguard_decision_reasons_total{{rpc=\"{rpc}\",effect=\"allow\",code=\"ALLOWED\"}} 1\n"
                ),
                format!(
                    "roomguard_decision_duration_seconds_bucket{{rpc=\"{rpc}\",le=\"0.00005\"}} 2\n"
                ),
                format!(
                    "roomguard_decision_duration_seconds_bucket{{rpc=\"{rpc}\",le=\"0.0001\"}} 3\n"
                ),
                format!(
                    "roomguard_decision_duration_seconds_bucket{{rpc=\"{rpc}\",le=\"+Inf\"}} 4\n"
                ),
                format!("roomguard_decision_duration_seconds_count{{rpc=\"{rpc}\"}} 4\n"),
            ] {
                assert!(text.contains(&expected), "missing `{expected}` in\n{text}");
            }
        }
        assert!(
            !text.contains("effect=\"allow\",mode=\"enforce\""),
            "{text}"
        );
    }

    /// The policy store's record, and the families whose every series is known, are there from the start.
    #[test]
    fn known_series_are_there_from_the_start() {
        let store = PolicyStore::new(PolicySnapshot::load(Path::new("policies")).unwrap());
        let text = Metrics::new().render(&store);
        let version = store.status().policy_version;
        for expected in [
            "# HELP roomguard_policy_reloads_total Policy reloads, by result: succeeded (swapped in) or refused (the \
             previous policy kept serving).\n# TYPE roomguard_policy_reloads_total counter\n",
            "roomguard_policy_reloads_total{result=\"refused\"} 0\n",
            "roomguard_policy_reloads_unchanged_total 0\n",
            "# TYPE roomguard_policy_info gauge\n",
            &format!("roomguard_policy_info{{policy_version=\"{version}\"}} 1\n"),
            "# TYPE roomguard_requests_shed_total counter\nroomguard_requests_shed_total 0\n",
            "roomguard_connections_dropped_total{reason=\"not_http2\"} 0\n",
            "roomguard_accept_errors_total{reason=\"fd_limit\"} 0\n",
            "roomguard_counter_backend_failures_total{operation=\"record\"} 0\n",
            "roomguard_media_scans_refused_total{reason=\"busy\"} 0\n",
            "roomguard_media_scan_duration_seconds_bucket{le=\"0.001\"} 0\n",
            "roomguard_homeserver_up 1\n",
        ] {
            assert!(text.contains(expected), "missing `{expected}` in\n{text}");
        }
        assert!(!text.contains("_total_total"), "{text}");
    }
}
