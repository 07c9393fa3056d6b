//! One file of a room, read as the service reads an upload: downloaded as it streams, its text classified as it is
//! extracted (the same `documents::stream` scan and `UploadWatch`), within the same `[media]` limits and time
//! budget, so that an audit finding on a file is exactly the service's deny on that upload today. The download stops
//! as soon as the deny is certain, and at most `media.max_bytes` are read.

use std::{sync::Arc, time::Instant};

use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::sync::{Semaphore, mpsc};

use crate::{
    documents::{
        Incomplete,
        stream::{self, Feed, Next},
    },
    domain::{decision::Decision, media::UploadRequest},
    ops::media_limits::MediaConfig,
    policy::{
        PolicySnapshot,
        decide::{ScanFacts, explain_scanned_upload},
        upload_watch::UploadWatch,
    },
};

/// Chunks in flight between the download and the scan.
const FEED_DEPTH: usize = 4;

/// What reading one file gave.
#[derive(Debug)]
pub struct Scanned {
    /// The decision, as `CheckMediaUpload` would answer it.
    pub decision: Decision,
    /// Bytes downloaded and read.
    pub received: u64,
}

/// Reads files within the `[media]` limits, at most `media.max_concurrent_scans` at once (so that memory stays within
/// `max_concurrent_scans x max_scan_memory_bytes`, as in the service).
#[derive(Debug, Clone)]
pub struct Scanner {
    config: MediaConfig,
    slots: Arc<Semaphore>,
}

impl Scanner {
    /// A scanner with the service's `[media]` settings.
    pub fn new(config: MediaConfig) -> Self {
        Scanner {
            slots: Arc::new(Semaphore::new(config.max_concurrent_scans.max(1))),
            config,
        }
    }

    /// Reads `body` (a download that has started) as an upload of `request`, and decides it.
    pub async fn scan(
        &self,
        policy: Arc<PolicySnapshot>,
        request: UploadRequest,
        body: Incoming,
    ) -> Scanned {
        // The semaphore is never closed.
        let _slot = self.slots.clone().acquire_owned().await.ok();
        let started = Instant::now();
        let deadline = started + self.config.timeout();
        let limits = self.config.scan_limits(deadline);
        let memory = self.config.scan_memory();
        let max_bytes = self.config.max_bytes;
        // As in the service: receiving may use three quarters of the budget, so that what came is still read.
        let receiving_deadline = started + self.config.timeout() * 3 / 4;
        let (chunks, feed) = mpsc::channel(FEED_DEPTH);
        let download = tokio::spawn(forward(body, chunks, max_bytes));
        let runtime = tokio::runtime::Handle::current();
        let scanned = tokio::task::spawn_blocking(move || {
            let mut watch = UploadWatch::new(&policy, &request, max_bytes);
            let mut feed = ChannelFeed {
                chunks: feed,
                runtime,
                deadline: receiving_deadline,
                failed: false,
            };
            let streamed = stream::scan(&mut feed, &limits, memory, &mut watch);
            let mut extraction = streamed.extraction;
            if feed.failed {
                // The download broke off: decided on what came, as the service decides a stream that ends early.
                extraction.incomplete.get_or_insert(Incomplete::TimeLimit);
            }
            let classification = watch.classification();
            let scan = ScanFacts {
                classification,
                format: extraction.format.as_str(),
                incomplete_reason: extraction.incomplete.map_or("", Incomplete::as_str),
                received: streamed.received,
            };
            Scanned {
                decision: explain_scanned_upload(&policy, &request, &scan).decision,
                received: streamed.received,
            }
        })
        .await;
        download.abort();
        match scanned {
            Ok(scanned) => scanned,
            // A reader that panicked: the process survives it (as the service does), and the file is decided as
            // unread, which the rules refuse or not as they say for `incomplete_reason`.
            Err(join) => {
                tracing::error!(%join, "a file's scan failed");
                panic_decision()
            }
        }
    }
}

/// The decision when the scan itself failed: the audit cannot say, and says so through a deny it reports.
fn panic_decision() -> Scanned {
    use crate::domain::decision::{Effect, Reason};
    Scanned {
        decision: Decision {
            effect: Effect::Deny,
            reasons: vec![Reason {
                code: "POLICY_EVALUATION_ERROR".into(),
                rule: String::new(),
                message: "the file could not be read".into(),
            }],
            decision_id: String::new(),
            decided_at: std::time::SystemTime::now(),
            request_id: String::new(),
            policy_version: String::new(),
            roles: Vec::new(),
            classification: "none".into(),
        },
        received: 0,
    }
}

/// Moves the download's bytes to the scan, at most `max_bytes` of them; stops when the scan stops asking.
async fn forward(mut body: Incoming, chunks: mpsc::Sender<Next>, max_bytes: u64) {
    let mut sent = 0u64;
    loop {
        match body.frame().await {
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                let room = max_bytes.saturating_sub(sent);
                let len = u64::try_from(data.len()).unwrap_or(u64::MAX);
                if len > room {
                    let keep = usize::try_from(room).unwrap_or(usize::MAX);
                    if keep > 0
                        && chunks
                            .send(Next::Bytes(data[..keep].to_vec()))
                            .await
                            .is_err()
                    {
                        return;
                    }
                    let _ = chunks.send(Next::End { truncated: true }).await;
                    return;
                }
                sent += len;
                if chunks.send(Next::Bytes(data.to_vec())).await.is_err() {
                    return; // the scan ended: the rest is not needed
                }
            }
            Some(Err(err)) => {
                tracing::debug!(%err, "a download broke off");
                return; // dropping the sender ends the feed as failed
            }
            None => {
                let _ = chunks.send(Next::End { truncated: false }).await;
                return;
            }
        }
    }
}

struct ChannelFeed {
    chunks: mpsc::Receiver<Next>,
    runtime: tokio::runtime::Handle,
    deadline: Instant,
    /// The download broke off, or was still arriving at the receiving deadline.
    failed: bool,
}

impl Feed for ChannelFeed {
    fn pending(&self) -> bool {
        !self.chunks.is_empty()
    }

    fn next(&mut self) -> Next {
        let next = self.runtime.block_on(tokio::time::timeout_at(
            self.deadline.into(),
            self.chunks.recv(),
        ));
        match next {
            Ok(Some(next)) => next,
            Ok(None) | Err(_) => {
                self.failed = true;
                Next::End { truncated: false }
            }
        }
    }
}
