//! The metrics of the public-join counter's backend, rendered with the rest by
//! [`super::metrics::Metrics::render`].
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `roomguard_counter_backend_up` | gauge | (1 while decisions count in the shared Redis counter; 0 with the memory backend or while Redis is unreachable) |
//! | `roomguard_counter_backend_failures_total` | counter | `operation` (`count`, `record`, `ping`) |
//! | `roomguard_counter_fallbacks_total` | counter | (join decisions that counted with `counters.fallback` because Redis was down) |

use super::exposition::family;
use std::{
    fmt::Write as _,
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
};

/// The backend's state and failures.
#[derive(Debug, Default)]
pub struct CounterMetrics {
    up: AtomicBool,
    failed_count: AtomicU64,
    failed_record: AtomicU64,
    failed_ping: AtomicU64,
    fallbacks: AtomicU64,
}

impl CounterMetrics {
    /// Whether decisions count in the shared counter now.
    pub fn backend_up(&self, up: bool) {
        self.up.store(up, Ordering::Relaxed);
    }

    /// A round trip to the shared counter failed or timed out.
    pub fn backend_failed(&self, operation: &'static str) {
        match operation {
            "count" => &self.failed_count,
            "record" => &self.failed_record,
            _ => &self.failed_ping,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    /// A join decision counted with the fallback.
    pub fn fell_back(&self) {
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
    }

    /// Join decisions that counted with the fallback, so far.
    pub fn fallbacks(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }

    /// Appends the counter metrics in the Prometheus text format.
    pub(crate) fn render(&self, out: &mut String) {
        family(
            out,
            "roomguard_counter_backend_up",
            "gauge",
            "1 while join decisions count in the shared (Redis) counter; 0 with the memory backend or while Redis is \
             unreachable.",
        );
        let _ = writeln!(
            out,
            "roomguard_counter_backend_up {}",
            u8::from(self.up.load(Ordering::Relaxed))
        );
        family(
            out,
            "roomguard_counter_backend_failures_total",
            "counter",
            "Round trips to the shared counter that failed or timed out, by operation.",
        );
        for (operation, n) in [
            ("count", &self.failed_count),
            ("record", &self.failed_record),
            ("ping", &self.failed_ping),
        ] {
            let _ = writeln!(
                out,
                "roomguard_counter_backend_failures_total{{operation=\"{operation}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        family(
            out,
            "roomguard_counter_fallbacks_total",
            "counter",
            "Join decisions that counted with counters.fallback because the shared counter was unreachable.",
        );
        let _ = writeln!(
            out,
            "roomguard_counter_fallbacks_total {}",
            self.fallbacks.load(Ordering::Relaxed)
        );
    }
}
