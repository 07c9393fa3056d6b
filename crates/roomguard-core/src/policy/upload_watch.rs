//! Classifying an upload while it is read, and knowing when the policy's answer can no longer change.
//!
//! An upload's decision depends on what reading it finds: the most sensitive marking, the format, why the reading
//! was incomplete, how many bytes came. Reading more can only raise the marking; the rest is unknown until the
//! end. So a deny is **certain** when the rules deny for the marking found so far and for every more sensitive one,
//! whatever the reading's end (complete, or incomplete for any reason) and however many bytes come (what came so
//! far, up to `media.max_bytes`). Then the scan stops and the homeserver is answered without the rest of the file.
//! An allow is never certain before the end: a marking may still come.

use std::ops::ControlFlow;

use roomguard_documents::{Format, Incomplete, Passage, Watch};

use crate::{
    domain::{decision::Effect, media::UploadRequest},
    policy::{
        PolicySnapshot,
        decide::{ScanFacts, explain_scanned_upload},
        markings::DocumentMarkings,
    },
};

/// The [`Watch`] of one upload's scan.
#[derive(Debug)]
pub struct UploadWatch<'p> {
    policy: &'p PolicySnapshot,
    request: &'p UploadRequest,
    markings: DocumentMarkings<'p>,
    /// `None` until the first bytes are read.
    format: Option<Format>,
    received: u64,
    max_bytes: u64,
}

impl<'p> UploadWatch<'p> {
    /// A watch deciding `request` under `policy`, for files of at most `max_bytes`. The file name is read first:
    /// a name the rules deny on decides before any byte is read.
    pub fn new(policy: &'p PolicySnapshot, request: &'p UploadRequest, max_bytes: u64) -> Self {
        let mut markings = policy.classifier.document();
        markings.file_name(&request.media.filename);
        UploadWatch {
            policy,
            request,
            markings,
            format: None,
            received: 0,
            max_bytes,
        }
    }

    /// The label of the most sensitive marking read so far (the file name's included).
    pub fn classification(&self) -> &'p str {
        self.markings.label()
    }

    /// Whether the rules deny whatever the rest of the file holds (a few dozen evaluations of a microsecond or two,
    /// made only when the marking found rises).
    fn deny_is_certain(&self) -> bool {
        let endings = std::iter::once("").chain(Incomplete::ALL.iter().map(|i| i.as_str()));
        let sizes = [self.received, self.max_bytes.max(self.received)];
        // Before the first bytes, the format is any.
        let formats = self
            .format
            .as_ref()
            .map_or(&Format::ALL[..], std::slice::from_ref);
        let classifier = &self.policy.classifier;
        classifier
            .labels_from(self.classification())
            .all(|classification| {
                formats.iter().all(|format| {
                    endings.clone().all(|incomplete_reason| {
                        sizes.iter().all(|&received| {
                            let scan = ScanFacts {
                                classification,
                                format: format.as_str(),
                                incomplete_reason,
                                received,
                            };
                            explain_scanned_upload(self.policy, self.request, &scan)
                                .decision
                                .effect
                                == Effect::Deny
                        })
                    })
                })
            })
    }

    fn decided(&self) -> ControlFlow<()> {
        if self.classification() != crate::policy::markings::NO_MARKING && self.deny_is_certain() {
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

impl Watch for UploadWatch<'_> {
    fn progress(&mut self, format: Option<Format>, received: u64) -> ControlFlow<()> {
        self.format = format;
        self.received = received;
        self.decided()
    }

    fn passage(&mut self, passage: &Passage) -> ControlFlow<()> {
        if self.markings.passage(passage) {
            return self.decided();
        }
        ControlFlow::Continue(())
    }
}
