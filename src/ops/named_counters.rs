//! Counters of one family told apart by a label whose values are known only at run time (reason codes, rule ids).

use std::{collections::HashMap, sync::RwLock};

use prometheus_client::metrics::counter::Counter;

/// The series of one family that differ by one label whose values are strings known only at run time (reason codes,
/// rule ids), each resolved from the family once and then found by `&str`: a value seen before costs a read lock and
/// a hash, and builds no label set (which would allocate its string).
#[derive(Debug, Default)]
pub(super) struct NamedCounters(RwLock<HashMap<String, Counter>>);

impl NamedCounters {
    /// Adds one to the series of `name`, resolved with `resolve` the first time.
    pub(super) fn inc(&self, name: &str, resolve: impl FnOnce() -> Counter) {
        if let Ok(counters) = self.0.read()
            && let Some(counter) = counters.get(name)
        {
            counter.inc();
            return;
        }
        // Two first decisions at once resolve the same series from the family: either is kept.
        let counter = resolve();
        counter.inc();
        if let Ok(mut counters) = self.0.write() {
            counters.entry(name.to_owned()).or_insert(counter);
        }
    }
}
