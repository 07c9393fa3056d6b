//! `CheckMediaUpload`, black-box through a real server: the stream's rules, the size limit answered before the stream
//! ends, the time budget with a stalled sender, scan slots apart from message decisions, shadow mode, a decision log
//! that names the media but never its text, and scanned documents read with OCR.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use roomguard_test_support as common;

use std::{path::Path, sync::Arc, time::Duration};

use common::{Extras, TestServer, codes};
use roomguard::{
    grpc::{
        proto::{self, check_media_upload_request::Part},
        server::Options,
    },
    ops::{
        decision_log::DecisionLog,
        metrics::Metrics,
        {decision_log::LogOutput, media_limits::MediaConfig, media_limits::OcrMode, mode::Mode},
    },
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

fn header(media_id: &str) -> proto::CheckMediaUploadRequest {
    proto::CheckMediaUploadRequest {
        part: Some(Part::Header(proto::MediaUploadHeader {
            request_id: "up-1".into(),
            uploader: None,
            media: Some(proto::Media {
                media_id: media_id.into(),
                ..proto::Media::default()
            }),
        })),
    }
}

fn chunk(bytes: &[u8]) -> proto::CheckMediaUploadRequest {
    proto::CheckMediaUploadRequest {
        part: Some(Part::Chunk(bytes.to_vec())),
    }
}

/// Uploads `messages` as a stream that ends after the last one.
async fn upload(
    server: &TestServer,
    messages: Vec<proto::CheckMediaUploadRequest>,
) -> Result<proto::CheckMediaUploadResponse, tonic::Status> {
    let mut client = server.client().await;
    client
        .check_media_upload(tokio_stream::iter(messages))
        .await
        .map(tonic::Response::into_inner)
}

/// Starts an upload whose stream stays open (until the returned sender is dropped) after `messages`.
fn open_upload(
    server_client: proto::policy_service_client::PolicyServiceClient<tonic::transport::Channel>,
    messages: Vec<proto::CheckMediaUploadRequest>,
) -> (
    mpsc::Sender<proto::CheckMediaUploadRequest>,
    tokio::task::JoinHandle<Result<proto::CheckMediaUploadResponse, tonic::Status>>,
) {
    let (tx, rx) = mpsc::channel(16);
    for message in messages {
        tx.try_send(message).unwrap();
    }
    let mut client = server_client;
    let call = tokio::spawn(async move {
        client
            .check_media_upload(ReceiverStream::new(rx))
            .await
            .map(tonic::Response::into_inner)
    });
    (tx, call)
}

fn media(limits: MediaConfig) -> Options {
    Options {
        media: limits,
        ..Options::default()
    }
}

/// A marked text file is refused with the reason and what was read; a clean one is stored.
#[tokio::test]
async fn a_marked_text_file_is_refused_and_a_clean_one_stored() {
    let server = TestServer::shipped().await;
    let marked = upload(
        &server,
        vec![
            header("mxc://agent.tchap.gouv.fr/abc"),
            chunk(b"Objet : budget\nDIFFUSION "),
            chunk(b"RESTREINTE\nsuite"),
        ],
    )
    .await
    .unwrap();
    let decision = marked.decision.unwrap();
    assert_eq!(codes(&decision), ["CLASSIFIED_DOCUMENT_IN_CLEAR"]);
    assert_eq!(decision.classification, "restricted");
    assert_eq!(decision.request_id, "up-1");
    let scan = marked.scan.unwrap();
    assert_eq!(
        (scan.format.as_str(), scan.bytes_read, scan.complete),
        ("text", 41, true)
    );
    let clean = upload(&server, vec![header(""), chunk(b"Compte rendu.\n")])
        .await
        .unwrap();
    assert_eq!(codes(&clean.decision.unwrap()), ["ALLOWED"]);
    server.stop().await;
}

/// The stream's rules: header first, only once, and every message has a part; each refusal names the field.
#[tokio::test]
async fn the_stream_rules_are_invalid_argument_naming_the_field() {
    let server = TestServer::shipped().await;
    let cases: Vec<(Vec<proto::CheckMediaUploadRequest>, &str)> = vec![
        (vec![], "header: required"),
        (vec![chunk(b"x")], "header: required"),
        (
            vec![header(""), chunk(b"x"), header("")],
            "header: only the first message carries it",
        ),
        (
            vec![header(""), proto::CheckMediaUploadRequest { part: None }],
            "part: required",
        ),
        (vec![header("mxc://bad")], "header.media.media_id:"),
    ];
    for (messages, expected) in cases {
        let status = upload(&server, messages).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        assert!(
            status.message().starts_with(expected),
            "{expected}: {}",
            status.message()
        );
    }
    server.assert_answering().await;
    server.stop().await;
}

/// Past `media.max_bytes` the answer comes without waiting for the rest of the stream, decided on what was read: a
/// marking before the limit counts, and the scan says `size_limit`.
#[tokio::test]
async fn a_file_past_the_size_limit_is_answered_on_what_was_read_before_the_stream_ends() {
    let server = TestServer::with_options(media(MediaConfig {
        max_bytes: 1000,
        ..MediaConfig::default()
    }))
    .await;
    let mut first = b"DIFFUSION RESTREINTE\n".to_vec();
    first.resize(600, b'a');
    let (_still_open, call) = open_upload(
        server.client().await,
        vec![header(""), chunk(&first), chunk(&[b'b'; 600])],
    );
    let response = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .expect("answered while the stream is still open")
        .unwrap()
        .unwrap();
    let scan = response.scan.unwrap();
    assert_eq!(scan.bytes_read, 1000);
    assert_eq!(
        (scan.complete, scan.incomplete_reason.as_str()),
        (false, "size_limit")
    );
    assert_eq!(
        codes(&response.decision.unwrap()),
        ["CLASSIFIED_DOCUMENT_IN_CLEAR"]
    );
    server.stop().await;
}

/// A sender that stalls is answered within `media.timeout_ms`, on what arrived: `time_limit`.
#[tokio::test]
async fn a_stalled_upload_is_answered_within_its_budget_on_what_arrived() {
    let server = TestServer::with_options(media(MediaConfig {
        timeout_ms: 400,
        ..MediaConfig::default()
    }))
    .await;
    let (_still_open, call) = open_upload(
        server.client().await,
        vec![header(""), chunk(b"Note de service\nOrdre du jour\n")],
    );
    let started = std::time::Instant::now();
    let response = tokio::time::timeout(Duration::from_secs(3), call)
        .await
        .expect("answered at the budget, not when the sender gives up")
        .unwrap()
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "waited for more while the budget lasted"
    );
    let scan = response.scan.unwrap();
    assert_eq!(
        (scan.complete, scan.incomplete_reason.as_str()),
        (false, "time_limit")
    );
    server.stop().await;
}

/// A marking the rules deny on is answered as soon as it is read, while the file is still arriving (or stalled):
/// the rest is not waited for, and the scan says `stopped_early`.
#[tokio::test]
async fn a_marking_is_answered_at_once_while_the_file_still_arrives() {
    let server = TestServer::with_options(media(MediaConfig {
        timeout_ms: 10_000,
        ..MediaConfig::default()
    }))
    .await;
    let mut first = b"DIFFUSION RESTREINTE\n".to_vec();
    while first.len() < 64 * 1024 {
        first.extend_from_slice(b"Compte rendu de la reunion de service.\n");
    }
    let (still_open, call) = open_upload(
        server.client().await,
        vec![header(""), chunk(&first), chunk(&first)],
    );
    let response = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .expect("answered long before the 10 s budget, the stream still open")
        .unwrap()
        .unwrap();
    let scan = response.scan.unwrap();
    assert_eq!(
        (
            scan.complete,
            scan.incomplete_reason.as_str(),
            scan.format.as_str()
        ),
        (false, "stopped_early", "text")
    );
    assert_eq!(
        codes(&response.decision.unwrap()),
        ["CLASSIFIED_DOCUMENT_IN_CLEAR"]
    );
    // The sender learns it may stop: the call is over, what it still sends goes nowhere.
    drop(still_open);
    server.stop().await;
}

/// A file name the rules deny on is answered before any byte is read.
#[tokio::test]
async fn a_marked_file_name_is_answered_before_the_content() {
    let server = TestServer::shipped().await;
    let mut named = header("");
    if let Some(Part::Header(header)) = &mut named.part {
        header.media.as_mut().unwrap().filename = "DR_note_budget.pdf".into();
    }
    let (_still_open, call) = open_upload(server.client().await, vec![named]);
    let response = tokio::time::timeout(Duration::from_secs(3), call)
        .await
        .expect("answered without waiting for the content")
        .unwrap()
        .unwrap();
    assert_eq!(
        codes(&response.decision.unwrap()),
        ["CLASSIFIED_DOCUMENT_IN_CLEAR"]
    );
    assert_eq!(response.scan.unwrap().incomplete_reason, "stopped_early");
    server.stop().await;
}

/// Uploads have their own slots: with every slot taken (by a stalled upload, which holds it for three quarters of
/// the budget), one more upload waits a quarter of the budget and is answered RESOURCE_EXHAUSTED, while message
/// decisions are answered as usual.
#[tokio::test]
async fn busy_scan_slots_refuse_uploads_but_never_message_decisions() {
    let server = TestServer::with_options(media(MediaConfig {
        max_concurrent_scans: 1,
        timeout_ms: 2000,
        ..MediaConfig::default()
    }))
    .await;
    let (_holding, first) = open_upload(server.client().await, vec![header(""), chunk(b"a")]);
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.assert_answering().await;
    let second = upload(&server, vec![header(""), chunk(b"b")])
        .await
        .unwrap_err();
    assert_eq!(second.code(), tonic::Code::ResourceExhausted, "{second:?}");
    assert!(first.await.unwrap().is_ok(), "the slot holder is answered");
    let third = upload(&server, vec![header(""), chunk(b"c")]).await;
    assert!(third.is_ok(), "a slot is free again: {third:?}");
    server.stop().await;
}

/// In shadow mode a refused upload is answered ALLOW, carrying the policy's decision.
#[tokio::test]
async fn shadow_mode_answers_allow_with_the_policys_reasons() {
    let server = TestServer::with_options(Options {
        mode: Mode::Shadow,
        ..Options::default()
    })
    .await;
    let response = upload(&server, vec![header(""), chunk(b"TRES SECRET DEFENSE")])
        .await
        .unwrap();
    let decision = response.decision.unwrap();
    assert!(decision.shadow);
    assert_eq!(decision.effect, proto::Effect::Allow as i32);
    assert_eq!(decision.policy_effect, proto::Effect::Deny as i32);
    assert_eq!(codes(&decision), ["CLASSIFIED_DOCUMENT_IN_CLEAR"]);
    server.stop().await;
}

/// The decision log names the media, its format and classification, and never its text; the scan metrics count it.
#[tokio::test]
async fn the_decision_log_names_the_media_never_its_text() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("decisions.ndjson");
    let metrics = Arc::new(Metrics::new());
    let log = DecisionLog::start(&LogOutput::File(log_path.clone()), 64, metrics.clone()).unwrap();
    let options = Options {
        metrics,
        decision_log: log.clone(),
        ..Options::default()
    };
    let extras = Extras {
        metrics: true,
        ..Extras::default()
    };
    let server = TestServer::start_with(Path::new("policies"), options, extras).await;
    let canary = "canari-7f3a9c-dans-le-document";
    let text = format!("{canary}\nDIFFUSION RESTREINTE\n");
    upload(
        &server,
        vec![
            header("mxc://agent.tchap.gouv.fr/Canary1"),
            chunk(text.as_bytes()),
        ],
    )
    .await
    .unwrap();
    let metrics_text = server.scrape_metrics().await;
    server.stop().await;
    log.close();

    let logged = std::fs::read_to_string(&log_path).unwrap();
    assert!(!logged.contains(canary), "{logged}");
    let line: serde_json::Value = serde_json::from_str(logged.lines().next().unwrap()).unwrap();
    assert_eq!(line["rpc"], "CheckMediaUpload");
    assert_eq!(line["classification"], "restricted");
    assert_eq!(
        line["media"]["media_id"],
        "mxc://agent.tchap.gouv.fr/Canary1"
    );
    assert_eq!(line["media"]["format"], "text");
    assert_eq!(line["media"]["bytes_read"], text.len());
    assert!(!metrics_text.contains(canary));
    assert!(
        metrics_text
            .contains("roomguard_media_scans_total{format=\"text\",outcome=\"complete\"} 1"),
        "{metrics_text}"
    );
    assert!(metrics_text.contains("roomguard_media_scan_duration_seconds_count 1"));
    assert!(metrics_text.contains("roomguard_media_scans_in_progress 0"));
}

/// A committed scan fixture (`tests/fixtures/media/scan/`, written by `make_scans.py`).
fn scan_fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new("tests/fixtures/media/scan").join(name)).unwrap()
}

/// Uploads `bytes` in 64 KiB chunks; the answer.
async fn upload_file(server: &TestServer, bytes: &[u8]) -> proto::CheckMediaUploadResponse {
    let mut messages = vec![header("mxc://agent.tchap.gouv.fr/scan")];
    messages.extend(bytes.chunks(64 * 1024).map(chunk));
    upload(server, messages).await.unwrap()
}

async fn ocr_available(server: &TestServer) -> bool {
    let mut client = server.client().await;
    client
        .get_policy_status(proto::GetPolicyStatusRequest {})
        .await
        .unwrap()
        .into_inner()
        .ocr_available
}

/// A budget that pins what is read, not how fast: the test machine may run several OCR tests at once.
fn generous_ocr() -> MediaConfig {
    MediaConfig {
        timeout_ms: 30_000,
        ocr_timeout_ms: 20_000,
        ..MediaConfig::default()
    }
}

/// A stamped page as a JPEG photo and as a scanner's PDF with no text layer is refused for its marking, and the
/// scan says how much came from OCR; a clean scanned page and a photo are stored; the server says OCR is available.
#[tokio::test]
async fn scanned_documents_are_read_with_ocr() {
    if let Err(why) = roomguard::documents::ocr_availability() {
        panic!(
            "OCR tests need Tesseract ({why}): apt-get install tesseract-ocr tesseract-ocr-fra (scripts/test does)"
        );
    }
    let server = TestServer::with_options(media(generous_ocr())).await;
    assert!(ocr_available(&server).await);
    for (name, format) in [
        ("stamped-150dpi.jpg", "jpeg"),
        ("stamped-dct-150dpi.pdf", "pdf"),
        ("stamped-ccitt-300dpi.pdf", "pdf"),
    ] {
        let answer = upload_file(&server, &scan_fixture(name)).await;
        let decision = answer.decision.unwrap();
        assert_eq!(codes(&decision), ["CLASSIFIED_DOCUMENT_IN_CLEAR"], "{name}");
        assert_eq!(decision.classification, "restricted", "{name}");
        let scan = answer.scan.unwrap();
        assert_eq!(scan.format, format, "{name}");
        // Read whole, or until the stamp made the deny certain (the stamp bands are read first).
        assert!(
            scan.complete || scan.incomplete_reason == "stopped_early",
            "{name}: {scan:?}"
        );
        assert_eq!(scan.ocr_pages, 1, "{name}");
        assert!(
            scan.ocr_chars >= 20 && scan.ocr_chars <= scan.text_chars,
            "{name}: {scan:?}"
        );
    }
    for (name, format) in [("clean-150dpi.png", "png"), ("photo.jpg", "jpeg")] {
        let answer = upload_file(&server, &scan_fixture(name)).await;
        assert_eq!(codes(&answer.decision.unwrap()), ["ALLOWED"], "{name}");
        let scan = answer.scan.unwrap();
        assert_eq!(
            (scan.format.as_str(), scan.complete, scan.ocr_pages),
            (format, true, 1),
            "{name}"
        );
    }
    server.stop().await;
}

/// With `media.ocr = "off"` a stamped scan is not read: it is stored, its scan is incomplete (`unsupported`) with
/// nothing from OCR, and the server says OCR is not available.
#[tokio::test]
async fn with_ocr_off_pictures_are_not_read() {
    let server = TestServer::with_options(media(MediaConfig {
        ocr: OcrMode::Off,
        ..MediaConfig::default()
    }))
    .await;
    assert!(!ocr_available(&server).await);
    let answer = upload_file(&server, &scan_fixture("stamped-150dpi.jpg")).await;
    assert_eq!(codes(&answer.decision.unwrap()), ["ALLOWED"]);
    let scan = answer.scan.unwrap();
    assert_eq!(
        (
            scan.format.as_str(),
            scan.complete,
            scan.incomplete_reason.as_str(),
            scan.ocr_pages,
            scan.ocr_chars
        ),
        ("jpeg", false, "unsupported", 0, 0)
    );
    server.stop().await;
}
