//! Where a decision runs: on the async worker that received the call, or on tokio's blocking pool.
//!
//! An ordinary decision takes microseconds. Handing it to the blocking pool costs more than deciding: two thread
//! wake-ups per call, which were most of the server's CPU under load (issue #12). So ordinary decisions run inline.
//! But a decision also blocks its async worker for as long as it takes: the other connections on that worker wait,
//! the overload layer cannot shed, and the request timeout cannot fire. So work that is really long keeps a bounded
//! path off the workers (bounded by admission: at most `limits.max_concurrent_requests` calls are decided at once):
//!
//! - a request larger than [`LARGE_REQUEST_BYTES`] (reading a long message body for markings is linear in its text);
//! - any call of an rpc whose decisions on the current policy take [`SLOW_DECISION`] or more on average (a policy
//!   large enough to be slow);
//! - the first call of each rpc on a policy not yet measured (after start and after every reload), since its cost is
//!   not known yet.
//!
//! Each rpc keeps a moving average of its decision time on the current policy snapshot; a reload starts it afresh.
//! Uploads never come here: they scan on the blocking pool in slots of their own (`scan_slots`).

use std::{
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use crate::policy::PolicySnapshot;

/// Decisions slower than this on average leave the async workers. An inline decision delays every other call queued
/// on the same worker by its own duration: at 100 µs, a call that lands behind one waits at most about one more
/// no-op round trip (65-130 µs on loopback, measured by `scripts/loadbench`), and the hand-off to the blocking pool
/// it avoids (two thread wake-ups, 15-30 µs of CPU there) is at most a fifth of the decision. The shipped policy
/// decides in about 1 to 5 µs (the classifier's share grows with the message), far below it; a policy that takes
/// milliseconds per decision goes to the pool.
pub const SLOW_DECISION: Duration = Duration::from_micros(100);

/// Requests larger than this (encoded) are decided on the blocking pool whatever the policy: their text alone takes
/// tens of microseconds to read for markings (a 64 KiB body took 0.28 ms).
pub const LARGE_REQUEST_BYTES: usize = 16 * 1024;

/// Where one decision runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// On the async worker that received the call.
    Inline,
    /// On tokio's blocking pool.
    Blocking,
}

/// The decision time of one rpc on the current policy: a moving average, started afresh for each snapshot.
#[derive(Debug, Default)]
pub struct CostEstimate {
    /// The address of the snapshot the average is about (0: none yet).
    policy: AtomicUsize,
    /// Nanoseconds, an exponential moving average of the recent decisions (weight 1/8 to each new one).
    average_ns: AtomicU64,
    /// Keeps the measured snapshot's allocation (not its content) alive, so that its address cannot be reused by a
    /// later snapshot that would then inherit this average.
    held: Mutex<Weak<PolicySnapshot>>,
}

impl CostEstimate {
    /// Where a request of `request_bytes` should be decided on `policy`.
    pub fn route(&self, policy: &Arc<PolicySnapshot>, request_bytes: usize) -> Route {
        if request_bytes > LARGE_REQUEST_BYTES
            || self.policy.load(Ordering::Acquire) != address(policy)
            || self.average_ns.load(Ordering::Relaxed) >= nanos(SLOW_DECISION)
        {
            Route::Blocking
        } else {
            Route::Inline
        }
    }

    /// Counts one decision on `policy` of a request of `request_bytes` that took `took`. Large requests say nothing
    /// about the policy, so they are not counted.
    pub fn record(&self, policy: &Arc<PolicySnapshot>, request_bytes: usize, took: Duration) {
        if request_bytes > LARGE_REQUEST_BYTES {
            return;
        }
        // The time is wall-clock time: a thread preempted mid-decision (a busy host) measures milliseconds for a
        // microsecond decision. Capping each sample at twice the threshold keeps such outliers from sending a fast
        // policy off the workers (it takes five in a row), while a policy that is really slow still averages above
        // the threshold.
        let took = nanos(took).min(2 * nanos(SLOW_DECISION));
        if self.policy.load(Ordering::Acquire) == address(policy) {
            // Two decisions recorded at the same instant may lose one of the two samples: the average stays an
            // average of recent decisions, which is all routing needs.
            let average = self.average_ns.load(Ordering::Relaxed);
            let next = average - average / 8 + took / 8;
            self.average_ns.store(next, Ordering::Relaxed);
            return;
        }
        // The first decision measured on this snapshot: it is the whole estimate.
        if let Ok(mut held) = self.held.lock() {
            *held = Arc::downgrade(policy);
            self.average_ns.store(took, Ordering::Relaxed);
            self.policy.store(address(policy), Ordering::Release);
        }
    }
}

fn address(policy: &Arc<PolicySnapshot>) -> usize {
    Arc::as_ptr(policy) as usize
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn policy() -> Arc<PolicySnapshot> {
        Arc::new(PolicySnapshot::load(Path::new("policies")).unwrap())
    }

    /// Nothing is known of a policy before its first decision: that one goes to the blocking pool.
    #[test]
    fn an_unmeasured_policy_is_decided_off_the_workers() {
        let estimate = CostEstimate::default();
        assert_eq!(estimate.route(&policy(), 100), Route::Blocking);
    }

    /// A policy whose decisions are fast is decided inline; one whose decisions are slow, off the workers.
    #[test]
    fn fast_policies_are_decided_inline_and_slow_ones_off_the_workers() {
        let (fast, slow) = (policy(), policy());
        let estimate = CostEstimate::default();
        estimate.record(&fast, 100, Duration::from_micros(9));
        assert_eq!(estimate.route(&fast, 100), Route::Inline);
        let estimate = CostEstimate::default();
        estimate.record(&slow, 100, SLOW_DECISION * 3);
        assert_eq!(estimate.route(&slow, 100), Route::Blocking);
    }

    /// The estimate follows the policy's recent decisions: a run of fast ones brings a slow estimate back inline.
    #[test]
    fn the_estimate_follows_recent_decisions() {
        let policy = policy();
        let estimate = CostEstimate::default();
        estimate.record(&policy, 100, SLOW_DECISION * 2);
        for _ in 0..20 {
            estimate.record(&policy, 100, Duration::from_micros(9));
        }
        assert_eq!(estimate.route(&policy, 100), Route::Inline);
    }

    /// A few outliers (a thread preempted mid-decision measures milliseconds) do not send a fast policy off the
    /// workers.
    #[test]
    fn outliers_do_not_send_a_fast_policy_off_the_workers() {
        let policy = policy();
        let estimate = CostEstimate::default();
        for _ in 0..10 {
            estimate.record(&policy, 100, Duration::from_micros(9));
        }
        for _ in 0..3 {
            estimate.record(&policy, 100, Duration::from_millis(10));
        }
        assert_eq!(estimate.route(&policy, 100), Route::Inline);
    }

    /// A large request leaves the workers whatever the policy costs, and its time is not the policy's.
    #[test]
    fn large_requests_are_decided_off_the_workers_and_not_counted() {
        let policy = policy();
        let estimate = CostEstimate::default();
        estimate.record(&policy, 100, Duration::from_micros(9));
        estimate.record(&policy, LARGE_REQUEST_BYTES + 1, Duration::from_millis(5));
        assert_eq!(
            estimate.route(&policy, LARGE_REQUEST_BYTES + 1),
            Route::Blocking
        );
        assert_eq!(estimate.route(&policy, 100), Route::Inline);
    }

    /// A reloaded policy is measured afresh: the previous one's fast estimate does not carry over.
    #[test]
    fn a_new_policy_is_measured_afresh() {
        let (old, new) = (policy(), policy());
        let estimate = CostEstimate::default();
        estimate.record(&old, 100, Duration::from_micros(9));
        assert_eq!(estimate.route(&new, 100), Route::Blocking);
        drop(old);
        // Even at the old one's address, were the allocator to reuse it (the estimate holds it, so it cannot).
        let newer = policy();
        assert_eq!(estimate.route(&newer, 100), Route::Blocking);
    }
}
