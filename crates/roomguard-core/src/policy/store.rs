//! The live policy: one current [`PolicySnapshot`], read lock-free by every request and replaced atomically, and the
//! record of reloads (how many succeeded, how many were refused, and why the last one was, and how many found nothing
//! to do).
//!
//! A request takes one `Arc` to the current snapshot and uses it from start to end, so a swap in the middle of a
//! request never mixes two policies.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::SystemTime,
};

use arc_swap::ArcSwap;

use crate::policy::{PolicySnapshot, diagnostics::PolicyError};

/// Holds the current policy snapshot and the reload record.
#[derive(Debug)]
pub struct PolicyStore {
    current: ArcSwap<PolicySnapshot>,
    loaded_at: Mutex<SystemTime>,
    reloads_succeeded: AtomicU64,
    reloads_refused: AtomicU64,
    reloads_unchanged: AtomicU64,
    last_refusal: Mutex<Option<Refusal>>,
}

/// A reload that was refused: the previous policy kept serving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// When the refused reload was attempted.
    pub at: SystemTime,
    /// Every problem, `file:line: message`, one per line.
    pub error: String,
}

/// What the store reports about itself (the status rpc and metrics read this).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreStatus {
    /// The serving policy's version.
    pub policy_version: String,
    /// When the serving policy was loaded.
    pub loaded_at: SystemTime,
    /// Rules in the serving policy.
    pub rules: usize,
    /// Reloads that swapped in a new policy (since start).
    pub reloads_succeeded: u64,
    /// Reloads refused because the new policy did not load (since start).
    pub reloads_refused: u64,
    /// Reloads that found the files hashing to the serving version and did nothing (since start): a kubelet's
    /// cleanup, a save of the same content. Not counted as reloads, so that "the policy was reloaded" means it
    /// changed.
    pub reloads_unchanged: u64,
    /// The most recent refusal, if any since start.
    pub last_refusal: Option<Refusal>,
}

impl PolicyStore {
    /// A store serving `snapshot`.
    pub fn new(snapshot: PolicySnapshot) -> Self {
        PolicyStore {
            current: ArcSwap::from_pointee(snapshot),
            loaded_at: Mutex::new(SystemTime::now()),
            reloads_succeeded: AtomicU64::new(0),
            reloads_refused: AtomicU64::new(0),
            reloads_unchanged: AtomicU64::new(0),
            last_refusal: Mutex::new(None),
        }
    }

    /// The snapshot to decide one request with.
    pub fn current(&self) -> Arc<PolicySnapshot> {
        self.current.load_full()
    }

    /// Makes `snapshot` current for every request that starts from now on, and counts a successful reload.
    pub fn replace(&self, snapshot: PolicySnapshot) {
        self.current.store(Arc::new(snapshot));
        if let Ok(mut at) = self.loaded_at.lock() {
            *at = SystemTime::now();
        }
        self.reloads_succeeded.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a reload that was refused; the current snapshot stays.
    pub fn refuse(&self, error: &PolicyError) {
        self.reloads_refused.fetch_add(1, Ordering::Relaxed);
        let refusal = Refusal {
            at: SystemTime::now(),
            error: error.to_string(),
        };
        if let Ok(mut last) = self.last_refusal.lock() {
            *last = Some(refusal);
        }
    }

    /// Records a reload that found the serving version again: nothing was swapped, and it is not a reload.
    pub fn note_unchanged(&self) {
        self.reloads_unchanged.fetch_add(1, Ordering::Relaxed);
    }

    /// The serving policy and the reload record.
    pub fn status(&self) -> StoreStatus {
        let current = self.current();
        StoreStatus {
            policy_version: current.version.clone(),
            loaded_at: self.loaded_at.lock().map_or(SystemTime::UNIX_EPOCH, |t| *t),
            rules: current.rules.len(),
            reloads_succeeded: self.reloads_succeeded.load(Ordering::Relaxed),
            reloads_refused: self.reloads_refused.load(Ordering::Relaxed),
            reloads_unchanged: self.reloads_unchanged.load(Ordering::Relaxed),
            last_refusal: self.last_refusal.lock().ok().and_then(|r| r.clone()),
        }
    }
}
