//! Uploads' own budget: at most `media.max_concurrent_scans` files held and read at once, each within
//! `media.timeout_ms` from its first message to its answer. Kept apart from `limits.max_concurrent_requests` and
//! `limits.request_timeout_ms`, so that document scans never starve message decisions.

use std::{sync::Arc, time::Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{
    documents::Limits,
    ops::{media_limits::MediaConfig, metrics::Metrics},
};

/// The scan slots of one process, and the limits each scan gets.
#[derive(Debug, Clone)]
pub struct ScanSlots {
    config: MediaConfig,
    slots: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

/// A slot held by one upload; given back when dropped (when the scan has really ended, even past its answer).
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    metrics: Arc<Metrics>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.metrics.scans.finished();
    }
}

/// No slot came free within the upload's time budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} media scans are already running and none ended within a quarter of media.timeout_ms")]
pub struct Busy(pub usize);

impl ScanSlots {
    /// Slots and limits from `[media]`.
    pub fn new(config: MediaConfig, metrics: Arc<Metrics>) -> Self {
        ScanSlots {
            slots: Arc::new(Semaphore::new(config.max_concurrent_scans)),
            config,
            metrics,
        }
    }

    /// The `[media]` settings.
    pub fn config(&self) -> &MediaConfig {
        &self.config
    }

    /// Waits for a slot until `deadline`. Waiting (rather than refusing at once) suits uploads: the caller is waiting
    /// for this answer anyway, and a waiting upload holds no memory (its bytes stay in the sender's flow-control
    /// window until it has a slot).
    pub async fn acquire(&self, deadline: Instant) -> Result<Slot, Busy> {
        let wait = self.slots.clone().acquire_owned();
        match tokio::time::timeout_at(deadline.into(), wait).await {
            Ok(Ok(permit)) => {
                self.metrics.scans.started();
                Ok(Slot {
                    _permit: permit,
                    metrics: self.metrics.clone(),
                })
            }
            // The semaphore is never closed; a closed one would mean shutting down: busy is the honest answer.
            Ok(Err(_)) | Err(_) => {
                self.metrics.scans.refused_busy();
                Err(Busy(self.config.max_concurrent_scans))
            }
        }
    }

    /// The limits of a scan that must end by `deadline`.
    pub fn limits(&self, deadline: Instant) -> Limits {
        self.config.scan_limits(deadline)
    }
}
