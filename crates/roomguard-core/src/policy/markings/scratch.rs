//! The buffers a thread reuses to classify texts, so that classifying an ordinary message allocates nothing once
//! warm.

use super::normalize::Skeleton;
use super::phrases::PhraseBuffers;

/// Buffers reused across the texts of one message, and across the messages a thread classifies.
#[derive(Debug, Default)]
pub(super) struct Scratch {
    /// The folded text being read.
    pub(super) folded: String,
    pub(super) text: Skeleton,
    pub(super) term: Skeleton,
    /// File-name parts: start, end, whether it has a lowercase letter.
    pub(super) parts: Vec<(usize, usize, bool)>,
    pub(super) phrases: PhraseBuffers,
}

impl Scratch {
    /// Buffers grown past this (by a long message) are let go rather than kept for the thread's next message.
    pub(super) const KEPT_BYTES: usize = 64 * 1024;

    pub(super) fn trim(&mut self) {
        if self.folded.capacity() > Self::KEPT_BYTES
            || self.text.bytes.capacity() > Self::KEPT_BYTES
            || self.parts.capacity() > Self::KEPT_BYTES
        {
            *self = Scratch::default();
        }
    }
}

thread_local! {
    /// Each thread's buffers for [`Classifier::classify`], kept between messages so that classifying an ordinary
    /// message allocates nothing once warm.
    pub(super) static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}
