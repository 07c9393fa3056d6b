//! `CheckMediaUpload`: an upload read while it streams in, within its own time budget, size limit and memory, in a
//! scan slot of its own off the async workers; decided, logged and answered with what was read.
//!
//! The chunks go from the stream to the scan thread through a short channel, as they come: the scan classifies
//! text as it extracts it (`documents::stream`), and answers as soon as the policy's deny is certain (a marking the
//! rules deny on, see `policy::upload_watch`): the rest of the stream is then not read, and the client may stop
//! sending. A file of several MB marked on its first page is answered when its first window has arrived.
//!
//! One budget, `media.timeout_ms`, runs from the first message to the answer: waiting for a scan slot, receiving the
//! chunks and reading the file all spend it. Receiving may use three quarters of it, so that a file that arrives
//! slowly is still read for what did arrive; a file still arriving then, or still being read at the end, is decided
//! on what was read (`time_limit`). The part received past `media.max_bytes` is not read at all (`size_limit`), and
//! the answer goes out without waiting for the rest of the stream.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::mpsc;
use tonic::{Status, Streaming};

use crate::{
    documents::{
        Extraction, Format, Incomplete,
        stream::{self, Feed, Next},
    },
    domain::{decision::Decision, media::UploadRequest},
    grpc::{InvalidArgument, proto},
    ops::decision_log::MediaEntry,
    policy::{
        decide::{ScanFacts, explain_scanned_upload},
        upload_watch::UploadWatch,
    },
};

use super::service::{PolicyServer, guarded};

/// The rpc's name in metrics and logs.
const RPC: &str = "CheckMediaUpload";

/// The share of the budget kept for reading when the file is slow to arrive: receiving stops at three quarters of
/// `media.timeout_ms`, so that what did arrive is still read (a marking in it counts) before the answer is due.
const RECEIVING_SHARE: (u32, u32) = (3, 4);

/// The share of the budget an upload may wait for a scan slot: no slot free within it means the scans are saturated,
/// and waiting longer would leave too little time to receive and read the file.
const SLOT_WAIT_SHARE: (u32, u32) = (1, 4);

/// How long past its deadline a scan stuck in one uninterruptible step is waited for before the upload is answered
/// without it (its slot stays taken until it really ends).
const STUCK_SCAN_GRACE: Duration = Duration::from_millis(250);

/// Chunks in flight between the stream and the scan: enough to keep both busy, few enough that a slow scan holds
/// the sender back (through HTTP/2 flow control) rather than the file piling up here.
const FEED_DEPTH: usize = 4;

/// What the scan thread returns.
struct Scanned {
    extraction: Extraction,
    classification: String,
    received: u64,
    decision: Decision,
}

impl PolicyServer {
    /// The whole upload path (see the module documentation).
    pub(crate) async fn upload(
        &self,
        mut stream: Streaming<proto::CheckMediaUploadRequest>,
    ) -> Result<proto::CheckMediaUploadResponse, Status> {
        let started = Instant::now();
        let scans = self.scans();
        let config = scans.config();
        let budget = config.timeout();
        let deadline = started + budget;
        let receiving_deadline = started + budget * RECEIVING_SHARE.0 / RECEIVING_SHARE.1;
        let request = Arc::new(header(&mut stream, receiving_deadline).await?);
        let slot = scans
            .acquire(started + budget * SLOT_WAIT_SHARE.0 / SLOT_WAIT_SHARE.1)
            .await
            .map_err(|busy| Status::resource_exhausted(busy.to_string()))?;
        let max_bytes = config.max_bytes;
        let memory = config.scan_memory();
        let limits = scans.limits(deadline);
        let store = self.store();
        let (chunks, feed) = mpsc::channel(FEED_DEPTH);

        let mut task = {
            let request = request.clone();
            let runtime = tokio::runtime::Handle::current();
            tokio::task::spawn_blocking(move || {
                // The slot is the scan's, not the answer's: it is given back when the reading really ends.
                let _slot = slot;
                guarded(RPC, || {
                    let policy = store.current();
                    let mut watch = UploadWatch::new(&policy, &request, max_bytes);
                    let mut feed = ChannelFeed {
                        chunks: feed,
                        runtime,
                        deadline: receiving_deadline,
                        out_of_time: false,
                    };
                    let streamed = stream::scan(&mut feed, &limits, memory, &mut watch);
                    let mut extraction = streamed.extraction;
                    if feed.out_of_time {
                        extraction.incomplete.get_or_insert(Incomplete::TimeLimit);
                    }
                    let classification = watch.classification();
                    let scan = ScanFacts {
                        classification,
                        format: extraction.format.as_str(),
                        incomplete_reason: extraction.incomplete.map_or("", Incomplete::as_str),
                        received: streamed.received,
                    };
                    let decision = explain_scanned_upload(&policy, &request, &scan).decision;
                    Scanned {
                        classification: classification.to_owned(),
                        extraction,
                        received: streamed.received,
                        decision,
                    }
                })
            })
        };
        let receive = async {
            let mut sending = Some(chunks);
            let mut sent = 0u64;
            loop {
                tokio::select! {
                    // The scan's end is the answer, whether or not the stream has ended: the rest is not read.
                    done = &mut task => return Ok(done),
                    message = stream.message(), if sending.is_some() => {
                        let Some(sender) = sending.as_ref() else { continue };
                        match forward(message?, sender, &mut sent, max_bytes).await? {
                            Flow::More => {}
                            // Nothing more to send: the scan has what it will read.
                            Flow::Done => sending = None,
                        }
                    }
                }
            }
        };
        let scanned = match tokio::time::timeout_at((deadline + STUCK_SCAN_GRACE).into(), receive)
            .await
        {
            Ok(Ok(Ok(Ok(scanned)))) => scanned,
            Ok(Ok(Ok(Err(status)))) | Ok(Err(status)) => return Err(status),
            Ok(Ok(Err(join))) => {
                return Err(Status::internal(format!("the scan task failed: {join}")));
            }
            Err(_stuck) => {
                // Answer on the name alone rather than hang the homeserver: the budget is the contract.
                tracing::warn!(
                    media_id = %request.media.media_id,
                    "a scan overran its time budget in one step; answering on the file name alone"
                );
                let policy = self.store().current();
                let classification = policy
                    .classifier
                    .classify_document(&request.media.filename, &[])
                    .to_owned();
                let scan = ScanFacts {
                    classification: &classification,
                    format: Format::Unknown.as_str(),
                    incomplete_reason: Incomplete::TimeLimit.as_str(),
                    received: 0,
                };
                let decision = explain_scanned_upload(&policy, &request, &scan).decision;
                Scanned {
                    extraction: Extraction {
                        format: Format::Unknown,
                        passages: Vec::new(),
                        text_chars: 0,
                        incomplete: Some(Incomplete::TimeLimit),
                        ocr_pages: 0,
                        ocr_chars: 0,
                    },
                    classification,
                    received: 0,
                    decision,
                }
            }
        };
        debug_assert_eq!(scanned.decision.classification, scanned.classification);
        Ok(self.answer_upload(
            &request,
            &scanned.extraction,
            scanned.received,
            scanned.decision,
            started,
        ))
    }

    /// Counts, logs and converts an upload's decision.
    fn answer_upload(
        &self,
        request: &UploadRequest,
        extraction: &Extraction,
        received: u64,
        decision: Decision,
        started: Instant,
    ) -> proto::CheckMediaUploadResponse {
        let format = extraction.format.as_str();
        let incomplete_reason = extraction.incomplete.map_or("", Incomplete::as_str);
        self.metrics().scans.scanned(
            format,
            extraction.incomplete.map_or("complete", Incomplete::as_str),
            received,
            started.elapsed(),
        );
        tracing::debug!(
            decision_id = %decision.decision_id,
            effect = decision.effect.as_str(),
            media_id = %request.media.media_id,
            format,
            received,
            text_chars = extraction.text_chars,
            incomplete_reason,
            codes = ?decision.codes(),
            "decided"
        );
        let media = MediaEntry {
            media_id: &request.media.media_id,
            format,
            bytes_read: received,
            text_chars: extraction.text_chars,
            incomplete_reason,
            remote: request.media.remote,
            ocr_pages: extraction.ocr_pages,
            ocr_chars: extraction.ocr_chars,
        };
        let uploader = request.uploader.as_ref().map_or("", |u| u.user_id.as_str());
        let decision = self.answer(RPC, uploader, "", decision, started, Some(media));
        proto::CheckMediaUploadResponse {
            decision: Some(decision),
            scan: Some(proto::MediaScan {
                format: format.to_owned(),
                bytes_read: received,
                text_chars: extraction.text_chars,
                complete: extraction.incomplete.is_none(),
                incomplete_reason: incomplete_reason.to_owned(),
                ocr_pages: extraction.ocr_pages,
                ocr_chars: extraction.ocr_chars,
            }),
        }
    }
}

/// The first message, which must carry the header.
async fn header(
    stream: &mut Streaming<proto::CheckMediaUploadRequest>,
    deadline: Instant,
) -> Result<UploadRequest, Status> {
    let first = match tokio::time::timeout_at(deadline.into(), stream.message()).await {
        Ok(message) => message?,
        Err(_) => {
            return Err(Status::deadline_exceeded(
                "no upload header within media.timeout_ms",
            ));
        }
    };
    let Some(first) = first else {
        return Err(InvalidArgument::new(
            "header",
            "required: the stream was empty; the first message carries the header",
        )
        .into());
    };
    match first.part {
        Some(proto::check_media_upload_request::Part::Header(header)) => {
            Ok(UploadRequest::try_from(header)?)
        }
        Some(proto::check_media_upload_request::Part::Chunk(_)) => Err(InvalidArgument::new(
            "header",
            "required: the first message carries the header, the file's chunks follow it",
        )
        .into()),
        None => Err(InvalidArgument::new(
            "part",
            "required: the first message carries the header (header: required)",
        )
        .into()),
    }
}

/// Whether more of the stream is to be sent on to the scan.
enum Flow {
    More,
    Done,
}

/// Sends one message of the stream on to the scan: a chunk (cut at `max_bytes`, after which the file is said
/// truncated and nothing more is sent), or the end of the stream.
async fn forward(
    message: Option<proto::CheckMediaUploadRequest>,
    sender: &mpsc::Sender<Next>,
    sent: &mut u64,
    max_bytes: u64,
) -> Result<Flow, Status> {
    // A closed channel means the scan has ended: nothing more to send, its answer is on its way.
    let send = |next| async move { sender.send(next).await.is_ok() };
    match message.map(|m| m.part) {
        None => {
            send(Next::End { truncated: false }).await;
            Ok(Flow::Done)
        }
        Some(Some(proto::check_media_upload_request::Part::Chunk(mut chunk))) => {
            let room = usize::try_from(max_bytes.saturating_sub(*sent)).unwrap_or(usize::MAX);
            if chunk.len() > room {
                chunk.truncate(room);
                *sent += chunk.len() as u64;
                if !chunk.is_empty() {
                    send(Next::Bytes(chunk)).await;
                }
                send(Next::End { truncated: true }).await;
                return Ok(Flow::Done);
            }
            *sent += chunk.len() as u64;
            if chunk.is_empty() || send(Next::Bytes(chunk)).await {
                Ok(Flow::More)
            } else {
                Ok(Flow::Done)
            }
        }
        Some(Some(proto::check_media_upload_request::Part::Header(_))) => {
            Err(InvalidArgument::new(
                "header",
                "only the first message carries it; the following ones carry chunks",
            )
            .into())
        }
        Some(None) => Err(InvalidArgument::new(
            "part",
            "required: every message after the header carries a chunk",
        )
        .into()),
    }
}

/// The scan's side of the channel: blocks for the next chunk until the receiving deadline.
struct ChannelFeed {
    chunks: mpsc::Receiver<Next>,
    runtime: tokio::runtime::Handle,
    deadline: Instant,
    /// The receiving deadline passed while the file was still arriving.
    out_of_time: bool,
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
            // The receiving side gave up (the stream failed): what came is all there is.
            Ok(None) => Next::End { truncated: false },
            Err(_) => {
                self.out_of_time = true;
                Next::End { truncated: false }
            }
        }
    }
}
