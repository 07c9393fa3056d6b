//! The metrics of document scans (uploads), rendered with the rest by [`super::metrics::Metrics::render`].
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `roomguard_media_scans_total` | counter | `format`, `outcome` (`complete` or the incomplete reason) |
//! | `roomguard_media_scanned_bytes_total` | counter | |
//! | `roomguard_media_scan_duration_seconds` | histogram | |
//! | `roomguard_media_scans_in_progress` | gauge | |
//! | `roomguard_media_scans_refused_total` | counter | `reason` (`busy`: no scan slot within the time budget) |

use super::exposition::family;
use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::{
        Mutex,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::Duration,
};

/// Upper bounds of the scan duration buckets, in seconds: a text file takes microseconds, a large PDF a second.
const BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Counters of the scans of one process.
#[derive(Debug, Default)]
pub struct ScanMetrics {
    scans: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    bytes: AtomicU64,
    duration_counts: Mutex<([u64; BUCKETS.len()], u64, f64)>,
    in_progress: AtomicI64,
    busy: AtomicU64,
}

impl ScanMetrics {
    /// One scan ended: its format, `complete` or why not, the bytes read and how long the upload took.
    pub fn scanned(&self, format: &'static str, outcome: &'static str, bytes: u64, took: Duration) {
        if let Ok(mut map) = self.scans.lock() {
            *map.entry((format, outcome)).or_default() += 1;
        }
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        let seconds = took.as_secs_f64();
        if let Ok(mut h) = self.duration_counts.lock() {
            for (bound, count) in BUCKETS.iter().zip(h.0.iter_mut()) {
                if seconds <= *bound {
                    *count += 1;
                }
            }
            h.1 += 1;
            h.2 += seconds;
        }
    }

    /// A scan took a slot.
    pub fn started(&self) {
        self.in_progress.fetch_add(1, Ordering::Relaxed);
    }

    /// A scan gave its slot back.
    pub fn finished(&self) {
        self.in_progress.fetch_sub(1, Ordering::Relaxed);
    }

    /// An upload found no slot free within a quarter of its time budget.
    pub fn refused_busy(&self) {
        self.busy.fetch_add(1, Ordering::Relaxed);
    }

    /// Scans of `format` that ended with `outcome`, so far.
    pub fn count(&self, format: &str, outcome: &str) -> u64 {
        self.scans.lock().map_or(0, |map| {
            map.iter()
                .filter(|((f, o), _)| *f == format && *o == outcome)
                .map(|(_, n)| *n)
                .sum()
        })
    }

    /// Appends the scan metrics in the Prometheus text format.
    pub(crate) fn render(&self, out: &mut String) {
        family(
            out,
            "roomguard_media_scans_total",
            "counter",
            "Uploaded files scanned, by format (from the content) and outcome (complete, or why the text could not \
             all be read).",
        );
        if let Ok(map) = self.scans.lock() {
            for ((format, outcome), n) in map.iter() {
                let _ = writeln!(
                    out,
                    "roomguard_media_scans_total{{format=\"{format}\",outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        family(
            out,
            "roomguard_media_scanned_bytes_total",
            "counter",
            "Bytes of uploaded files read.",
        );
        let _ = writeln!(
            out,
            "roomguard_media_scanned_bytes_total {}",
            self.bytes.load(Ordering::Relaxed)
        );
        family(
            out,
            "roomguard_media_scan_duration_seconds",
            "histogram",
            "Time of one upload, from its first message to the answer (receiving, waiting for a slot, reading).",
        );
        if let Ok(h) = self.duration_counts.lock() {
            for (bound, count) in BUCKETS.iter().zip(h.0.iter()) {
                let _ = writeln!(
                    out,
                    "roomguard_media_scan_duration_seconds_bucket{{le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "roomguard_media_scan_duration_seconds_bucket{{le=\"+Inf\"}} {}",
                h.1
            );
            let _ = writeln!(out, "roomguard_media_scan_duration_seconds_sum {}", h.2);
            let _ = writeln!(out, "roomguard_media_scan_duration_seconds_count {}", h.1);
        }
        family(
            out,
            "roomguard_media_scans_in_progress",
            "gauge",
            "Uploads holding a scan slot now (at most media.max_concurrent_scans).",
        );
        let _ = writeln!(
            out,
            "roomguard_media_scans_in_progress {}",
            self.in_progress.load(Ordering::Relaxed)
        );
        family(
            out,
            "roomguard_media_scans_refused_total",
            "counter",
            "Uploads answered RESOURCE_EXHAUSTED, by reason (busy: no scan slot free within a quarter of media.timeout_ms).",
        );
        let _ = writeln!(
            out,
            "roomguard_media_scans_refused_total{{reason=\"busy\"}} {}",
            self.busy.load(Ordering::Relaxed)
        );
    }
}
