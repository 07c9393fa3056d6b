//! The metrics of the public-join counter's backend, registered with the rest by [`super::metrics::Metrics::new`].
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `roomguard_counter_backend_up` | gauge | (1 while decisions count in the shared Redis counter; 0 with the memory backend or while Redis is unreachable) |
//! | `roomguard_counter_backend_failures_total` | counter | `operation` (`count`, `record`, `ping`) |
//! | `roomguard_counter_fallbacks_total` | counter | (join decisions that counted with `counters.fallback` because Redis was down) |

use prometheus_client::{
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use super::exposition::register;

/// The backend's state and failures.
#[derive(Debug)]
pub struct CounterMetrics {
    up: Gauge,
    failed_count: Counter,
    failed_record: Counter,
    failed_ping: Counter,
    fallbacks: Counter,
}

impl CounterMetrics {
    /// Zeroed metrics, registered in `registry`.
    pub(super) fn new(registry: &mut Registry) -> Self {
        let up = Gauge::default();
        register(
            registry,
            "roomguard_counter_backend_up",
            "1 while join decisions count in the shared (Redis) counter; 0 with the memory backend or while Redis is \
             unreachable.",
            up.clone(),
        );
        let failures = Family::<[(&'static str, &'static str); 1], Counter>::default();
        register(
            registry,
            "roomguard_counter_backend_failures",
            "Round trips to the shared counter that failed or timed out, by operation.",
            failures.clone(),
        );
        let failed = |operation| failures.get_or_create_owned(&[("operation", operation)]);
        let fallbacks = Counter::default();
        register(
            registry,
            "roomguard_counter_fallbacks",
            "Join decisions that counted with counters.fallback because the shared counter was unreachable.",
            fallbacks.clone(),
        );
        CounterMetrics {
            up,
            failed_count: failed("count"),
            failed_record: failed("record"),
            failed_ping: failed("ping"),
            fallbacks,
        }
    }

    /// Whether decisions count in the shared counter now.
    pub fn backend_up(&self, up: bool) {
        self.up.set(i64::from(up));
    }

    /// A round trip to the shared counter failed or timed out.
    pub fn backend_failed(&self, operation: &'static str) {
        match operation {
            "count" => &self.failed_count,
            "record" => &self.failed_record,
            _ => &self.failed_ping,
        }
        .inc();
    }

    /// A join decision counted with the fallback.
    pub fn fell_back(&self) {
        self.fallbacks.inc();
    }

    /// Join decisions that counted with the fallback, so far.
    pub fn fallbacks(&self) -> u64 {
        self.fallbacks.get()
    }
}
