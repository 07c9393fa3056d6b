//! `CheckMediaUpload`: an upload stream received within its own time budget and size limit, the file read off the
//! async workers in a scan slot of its own, decided, logged and answered with what was read.
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

use tonic::{Status, Streaming};

use crate::{
    documents::{self, Extraction, Incomplete},
    domain::{decision::Decision, media::UploadRequest},
    grpc::{InvalidArgument, proto},
    ops::decision_log::MediaEntry,
    policy::decide::decide_upload,
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

/// How the stream ended, as far as roomguard read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The client sent everything.
    Whole,
    /// More than `media.max_bytes` came: the rest is not read.
    Truncated,
    /// The budget ran out while the file was still arriving.
    OutOfTime,
}

impl PolicyServer {
    /// The whole upload path (see the module documentation).
    pub(crate) async fn upload(
        &self,
        mut stream: Streaming<proto::CheckMediaUploadRequest>,
    ) -> Result<proto::CheckMediaUploadResponse, Status> {
        let started = Instant::now();
        let scans = self.scans();
        let budget = scans.config().timeout();
        let deadline = started + budget;
        let receiving_deadline = started + budget * RECEIVING_SHARE.0 / RECEIVING_SHARE.1;
        let request = header(&mut stream, receiving_deadline).await?;
        let slot = scans
            .acquire(started + budget * SLOT_WAIT_SHARE.0 / SLOT_WAIT_SHARE.1)
            .await
            .map_err(|busy| Status::resource_exhausted(busy.to_string()))?;
        let max_bytes = usize::try_from(scans.config().max_bytes).unwrap_or(usize::MAX);
        let (bytes, ending) = chunks(&mut stream, &request, max_bytes, receiving_deadline).await?;
        let received = bytes.len() as u64;
        let bytes: Arc<[u8]> = bytes.into();
        let limits = scans.limits(deadline);
        let store = self.store();

        let task = {
            let (request, bytes) = (request.clone(), bytes.clone());
            tokio::task::spawn_blocking(move || {
                // The slot is the scan's, not the answer's: it is given back when the reading really ends.
                let _slot = slot;
                guarded(RPC, || {
                    let mut extraction =
                        documents::extract(&bytes, ending == Ending::Truncated, &limits);
                    if ending == Ending::OutOfTime {
                        extraction.incomplete.get_or_insert(Incomplete::TimeLimit);
                    }
                    let decision = decide_upload(&store.current(), &request, &extraction, received);
                    (extraction, decision)
                })
            })
        };
        let (extraction, decision) = match tokio::time::timeout_at(
            (deadline + STUCK_SCAN_GRACE).into(),
            task,
        )
        .await
        {
            Ok(Ok(result)) => result?,
            Ok(Err(join)) => {
                return Err(Status::internal(format!("the scan task failed: {join}")));
            }
            Err(_stuck) => {
                // Answer on the name alone rather than hang the homeserver: the budget is the contract.
                tracing::warn!(
                    media_id = %request.media.media_id,
                    "a scan overran its time budget in one step; answering on the file name alone"
                );
                let extraction = Extraction {
                    format: documents::sniff(&bytes),
                    passages: Vec::new(),
                    text_chars: 0,
                    incomplete: Some(Incomplete::TimeLimit),
                    ocr_pages: 0,
                    ocr_chars: 0,
                };
                let decision =
                    decide_upload(&self.store().current(), &request, &extraction, received);
                (extraction, decision)
            }
        };
        Ok(self.answer_upload(&request, &extraction, received, decision, started))
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

/// The file's bytes: the chunks until the stream ends, `max_bytes` is passed or the budget runs out.
async fn chunks(
    stream: &mut Streaming<proto::CheckMediaUploadRequest>,
    request: &UploadRequest,
    max_bytes: usize,
    deadline: Instant,
) -> Result<(Vec<u8>, Ending), Status> {
    // The declared size is a hint for one allocation, never trusted beyond the limit (or 8 MiB before bytes arrive).
    let hint = usize::try_from(request.media.size)
        .unwrap_or(usize::MAX)
        .min(max_bytes)
        .min(8 << 20);
    let mut bytes = Vec::with_capacity(hint);
    loop {
        let next = match tokio::time::timeout_at(deadline.into(), stream.message()).await {
            Ok(next) => next?,
            Err(_) => return Ok((bytes, Ending::OutOfTime)),
        };
        match next.map(|m| m.part) {
            None => return Ok((bytes, Ending::Whole)),
            Some(Some(proto::check_media_upload_request::Part::Chunk(chunk))) => {
                let room = max_bytes - bytes.len();
                if chunk.len() > room {
                    bytes.extend_from_slice(&chunk[..room]);
                    return Ok((bytes, Ending::Truncated));
                }
                bytes.extend_from_slice(&chunk);
            }
            Some(Some(proto::check_media_upload_request::Part::Header(_))) => {
                return Err(InvalidArgument::new(
                    "header",
                    "only the first message carries it; the following ones carry chunks",
                )
                .into());
            }
            Some(None) => {
                return Err(InvalidArgument::new(
                    "part",
                    "required: every message after the header carries a chunk",
                )
                .into());
            }
        }
    }
}
