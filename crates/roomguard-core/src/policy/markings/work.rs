//! Counting the bytes the classifier examines: the cost tests compare it with the input's size (nothing is
//! counted outside tests).

#[cfg(test)]
thread_local! {
    /// Bytes examined by the classifier on this thread: folded text, skeletons scanned, banner candidates.
    pub(super) static WORK: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Counts `bytes` of work (tests only: the cost tests compare it with the input's size).
#[cfg(test)]
pub(super) fn count_work(bytes: usize) {
    WORK.with(|w| w.set(w.get() + bytes));
}

#[cfg(not(test))]
pub(super) fn count_work(_bytes: usize) {}
