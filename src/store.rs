//! The live policy: one current [`PolicySnapshot`], read lock-free by every request and replaced atomically.
//!
//! A request takes one `Arc` to the current snapshot and uses it from start to end, so a swap in the middle of a
//! request never mixes two policies.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::policy::PolicySnapshot;

/// Holds the current policy snapshot.
#[derive(Debug)]
pub struct PolicyStore {
    current: ArcSwap<PolicySnapshot>,
}

impl PolicyStore {
    /// A store serving `snapshot`.
    pub fn new(snapshot: PolicySnapshot) -> Self {
        PolicyStore {
            current: ArcSwap::from_pointee(snapshot),
        }
    }

    /// The snapshot to decide one request with.
    pub fn current(&self) -> Arc<PolicySnapshot> {
        self.current.load_full()
    }

    /// Makes `snapshot` current for every request that starts from now on.
    pub fn replace(&self, snapshot: PolicySnapshot) {
        self.current.store(Arc::new(snapshot));
    }
}
