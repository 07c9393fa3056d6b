//! The metrics of document scans (uploads), registered with the rest by [`super::metrics::Metrics::new`].
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `roomguard_media_scans_total` | counter | `format`, `outcome` (`complete` or the incomplete reason) |
//! | `roomguard_media_scanned_bytes_total` | counter | |
//! | `roomguard_media_scan_duration_seconds` | histogram | |
//! | `roomguard_media_scans_in_progress` | gauge | |
//! | `roomguard_media_scans_refused_total` | counter | `reason` (`busy`: no scan slot within the time budget) |

use std::time::Duration;

use prometheus_client::{
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

use super::exposition::register;

/// Upper bounds of the scan duration buckets, in seconds: a text file takes microseconds, a large PDF a second.
const BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Counters of the scans of one process.
#[derive(Debug)]
pub struct ScanMetrics {
    /// By (format, outcome): one look-up a scan, no allocation (the labels are static).
    scans: Family<[(&'static str, &'static str); 2], Counter>,
    bytes: Counter,
    duration: Histogram,
    in_progress: Gauge,
    busy: Counter,
}

impl ScanMetrics {
    /// Zeroed metrics, registered in `registry`.
    pub(super) fn new(registry: &mut Registry) -> Self {
        let scans = Family::default();
        register(
            registry,
            "roomguard_media_scans",
            "Uploaded files scanned, by format (from the content) and outcome (complete, or why the text could not \
             all be read).",
            scans.clone(),
        );
        let bytes = Counter::default();
        register(
            registry,
            "roomguard_media_scanned_bytes",
            "Bytes of uploaded files read.",
            bytes.clone(),
        );
        let duration = Histogram::new(BUCKETS);
        register(
            registry,
            "roomguard_media_scan_duration_seconds",
            "Time of one upload, from its first message to the answer (receiving, waiting for a slot, reading).",
            duration.clone(),
        );
        let in_progress = Gauge::default();
        register(
            registry,
            "roomguard_media_scans_in_progress",
            "Uploads holding a scan slot now (at most media.max_concurrent_scans).",
            in_progress.clone(),
        );
        let refused = Family::<[(&'static str, &'static str); 1], Counter>::default();
        register(
            registry,
            "roomguard_media_scans_refused",
            "Uploads answered RESOURCE_EXHAUSTED, by reason (busy: no scan slot free within a quarter of media.timeout_ms).",
            refused.clone(),
        );
        ScanMetrics {
            scans,
            bytes,
            duration,
            in_progress,
            busy: refused.get_or_create_owned(&[("reason", "busy")]),
        }
    }

    /// One scan ended: its format, `complete` or why not, the bytes read and how long the upload took.
    pub fn scanned(&self, format: &'static str, outcome: &'static str, bytes: u64, took: Duration) {
        self.scans
            .get_or_create(&[("format", format), ("outcome", outcome)])
            .inc();
        self.bytes.inc_by(bytes);
        self.duration.observe(took.as_secs_f64());
    }

    /// A scan took a slot.
    pub fn started(&self) {
        self.in_progress.inc();
    }

    /// A scan gave its slot back.
    pub fn finished(&self) {
        self.in_progress.dec();
    }

    /// An upload found no slot free within a quarter of its time budget.
    pub fn refused_busy(&self) {
        self.busy.inc();
    }

    /// Scans of `format` that ended with `outcome`, so far.
    pub fn count(&self, format: &'static str, outcome: &'static str) -> u64 {
        self.scans
            .get(&[("format", format), ("outcome", outcome)])
            .map_or(0, |counter| counter.get())
    }
}
