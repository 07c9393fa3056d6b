//! The decision log: one NDJSON line per decision, to standard output or appended to a file.
//!
//! A line holds who asked what about which room and what was decided, never what the message said: the record
//! ([`Entry`]) is built from the decision and the request's ids alone, and has no field that could hold a body,
//! formatted body or file name.
//!
//! The request path never waits on the disk: it hands the line to a bounded channel (`decision_log.buffer` lines) and
//! goes on. A dedicated thread writes and flushes whenever the channel runs empty. A line that cannot be buffered (the
//! writer is behind) or written (an I/O error) is counted in `roomguard_decision_log_dropped_total` and reported in a
//! `warn` event, at most once a second; [`DecisionLog::close`] writes every buffered line and flushes before the
//! process exits.

use std::{
    fs::OpenOptions,
    io::{self, BufWriter, Write},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
        mpsc::{self, Receiver, SyncSender, TrySendError},
    },
    thread::JoinHandle,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::Serialize;
use tracing::{error, warn};

use crate::{
    domain::decision::Decision,
    ops::{config::LogOutput, metrics::Metrics},
};

/// One decision, as logged. Everything here is safe to store: ids, labels and codes, no message content.
#[derive(Debug, Serialize)]
pub struct Entry<'a> {
    /// RFC 3339, UTC, milliseconds.
    pub timestamp: String,
    /// The decision's id, as in the answer.
    pub decision_id: &'a str,
    /// The caller's request id.
    pub request_id: &'a str,
    /// `CheckMessageSend` or `CheckRoomPublish`.
    pub rpc: &'a str,
    /// The sender or requester.
    pub user_id: &'a str,
    /// The room.
    pub room_id: &'a str,
    /// The policy's effect (`allow`, `deny`): what enforcement answers, or would have answered in shadow mode.
    pub effect: &'a str,
    /// The reason codes, in order.
    pub reasons: Vec<&'a str>,
    /// The ids of the rules that decided, in the same order.
    pub rules: Vec<&'a str>,
    /// The subject's resolved roles.
    pub roles: &'a [String],
    /// The marking label found (`none`), empty for room-publish.
    pub classification: &'a str,
    /// The policy content that decided.
    pub policy_version: &'a str,
    /// Time to decide, in microseconds.
    pub latency_us: u64,
    /// True when the answer was ALLOW whatever `effect` says (shadow mode).
    pub shadow: bool,
    /// Uploads only: what was read of the file (never its text or name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media: Option<MediaEntry<'a>>,
}

/// What the decision log says of an uploaded file: its id and what the scan found, never its text or its name (a
/// file name can itself carry the marking).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct MediaEntry<'a> {
    /// `mxc://server/id`, empty when unknown.
    pub media_id: &'a str,
    /// The format read from the content.
    pub format: &'a str,
    /// Bytes read.
    pub bytes_read: u64,
    /// Characters of text extracted.
    pub text_chars: u64,
    /// Why the text could not all be read; empty when it could.
    pub incomplete_reason: &'a str,
    /// The file came from another homeserver.
    pub remote: bool,
}

impl<'a> Entry<'a> {
    /// The entry for `decision` on `rpc` by `user_id` in `room_id`.
    pub fn new(
        rpc: &'a str,
        user_id: &'a str,
        room_id: &'a str,
        decision: &'a Decision,
        latency: Duration,
        shadow: bool,
    ) -> Self {
        Entry {
            timestamp: rfc3339_millis(SystemTime::now()),
            decision_id: &decision.decision_id,
            request_id: &decision.request_id,
            rpc,
            user_id,
            room_id,
            effect: decision.effect.as_str(),
            reasons: decision.reasons.iter().map(|r| r.code.as_str()).collect(),
            rules: decision.reasons.iter().map(|r| r.rule.as_str()).collect(),
            roles: &decision.roles,
            classification: &decision.classification,
            policy_version: &decision.policy_version,
            latency_us: u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
            shadow,
            media: None,
        }
    }

    /// The same entry, for an upload.
    pub fn with_media(mut self, media: MediaEntry<'a>) -> Self {
        self.media = Some(media);
        self
    }
}

enum Command {
    Line(String),
    Close,
}

/// The request path's handle on the decision log; cheap to clone.
#[derive(Debug, Clone)]
pub struct DecisionLog {
    inner: Option<Arc<Inner>>,
}

#[derive(Debug)]
struct Inner {
    sender: SyncSender<Command>,
    metrics: Arc<Metrics>,
    last_report: AtomicU64,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl DecisionLog {
    /// A log that writes nothing (`decision_log.output = "off"`, and tests that don't look).
    pub fn off() -> Self {
        DecisionLog { inner: None }
    }

    /// Starts the writer thread for `output`, buffering up to `buffer` lines. Fails if the file cannot be opened.
    pub fn start(output: &LogOutput, buffer: usize, metrics: Arc<Metrics>) -> io::Result<Self> {
        let sink: Box<dyn Write + Send> = match output {
            LogOutput::Off => return Ok(DecisionLog::off()),
            LogOutput::Stdout => Box::new(io::stdout()),
            LogOutput::File(path) => {
                Box::new(OpenOptions::new().create(true).append(true).open(path)?)
            }
        };
        let (sender, receiver) = mpsc::sync_channel(buffer);
        let inner = Arc::new(Inner {
            sender,
            metrics,
            last_report: AtomicU64::new(0),
            writer: Mutex::new(None),
        });
        let writer = std::thread::Builder::new()
            .name("decision-log".into())
            .spawn({
                let inner = inner.clone();
                move || write_lines(receiver, BufWriter::new(sink), &inner)
            })?;
        if let Ok(mut slot) = inner.writer.lock() {
            *slot = Some(writer);
        }
        Ok(DecisionLog { inner: Some(inner) })
    }

    /// Logs `entry` without waiting; if the buffer is full or the log is closed the line is counted as dropped.
    pub fn log(&self, entry: &Entry<'_>) {
        let Some(inner) = &self.inner else { return };
        let line = match serde_json::to_string(entry) {
            Ok(line) => line,
            Err(err) => {
                inner.dropped(&err.to_string());
                return;
            }
        };
        match inner.sender.try_send(Command::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => inner.dropped("the buffer is full"),
            Err(TrySendError::Disconnected(_)) => inner.dropped("the log is closed"),
        }
    }

    /// Writes every line buffered so far, flushes, and stops the writer. Blocks until done: call it at shutdown,
    /// after the server has stopped. Lines logged afterwards are counted as dropped.
    pub fn close(&self) {
        let Some(inner) = &self.inner else { return };
        // A blocking send: the writer is draining, so room appears; the request path is over.
        let _ = inner.sender.send(Command::Close);
        let writer = inner.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(writer) = writer {
            if writer.join().is_err() {
                error!("the decision-log writer panicked");
            }
        }
        let dropped = inner.metrics.decision_log_dropped_count();
        if dropped > 0 {
            warn!(
                dropped,
                "decision log closed; lines were dropped since start"
            );
        }
    }
}

impl Inner {
    fn dropped(&self, why: &str) {
        let total = self.metrics.decision_log_dropped();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = self.last_report.load(Ordering::Relaxed);
        if now > last
            && self
                .last_report
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            warn!(dropped_total = total, why, "decision-log line dropped");
        }
    }
}

fn write_lines(
    receiver: Receiver<Command>,
    mut sink: BufWriter<Box<dyn Write + Send>>,
    inner: &Inner,
) {
    let write = |line: String, sink: &mut BufWriter<Box<dyn Write + Send>>| {
        if let Err(err) = sink
            .write_all(line.as_bytes())
            .and_then(|()| sink.write_all(b"\n"))
        {
            inner.dropped(&err.to_string());
        }
    };
    while let Ok(command) = receiver.recv() {
        let mut closing = false;
        match command {
            Command::Line(line) => write(line, &mut sink),
            Command::Close => closing = true,
        }
        // Drain what is already waiting before flushing: one flush per burst, not per line.
        while !closing {
            match receiver.try_recv() {
                Ok(Command::Line(line)) => write(line, &mut sink),
                Ok(Command::Close) => closing = true,
                Err(_) => break,
            }
        }
        if let Err(err) = sink.flush() {
            inner.dropped(&format!("flush failed: {err}"));
        }
        if closing {
            return;
        }
    }
}

/// `2026-11-26T16:25:00.123Z`.
pub fn rfc3339_millis(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(i64::try_from(days).unwrap_or(0));
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(0),
        u32::try_from(day).unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::decision::{Effect, Reason};

    fn decision() -> Decision {
        Decision {
            effect: Effect::Deny,
            reasons: vec![Reason {
                code: "CLASSIFIED_IN_PUBLIC_ROOM".into(),
                rule: "send.classified-public".into(),
                message: "not here".into(),
            }],
            decision_id: "d-1".into(),
            request_id: "r-1".into(),
            policy_version: "sha256:abc".into(),
            roles: vec!["agent".into()],
            classification: "restricted".into(),
        }
    }

    /// Timestamps are RFC 3339 UTC with milliseconds, including leap-year dates.
    #[test]
    fn timestamps_are_rfc3339() {
        let t = UNIX_EPOCH + Duration::from_millis(1_709_210_096_789); // 2024-02-29T12:34:56.789Z
        assert_eq!(rfc3339_millis(t), "2024-02-29T12:34:56.789Z");
        assert_eq!(rfc3339_millis(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }

    /// A line carries every documented field and nothing else.
    #[test]
    fn a_line_has_the_documented_fields() {
        let d = decision();
        let entry = Entry::new(
            "CheckMessageSend",
            "@a:b",
            "!r:b",
            &d,
            Duration::from_micros(42),
            true,
        );
        let value: serde_json::Value = serde_json::to_value(&entry).unwrap();
        let mut keys: Vec<_> = value.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "classification",
                "decision_id",
                "effect",
                "latency_us",
                "policy_version",
                "reasons",
                "request_id",
                "roles",
                "room_id",
                "rpc",
                "rules",
                "shadow",
                "timestamp",
                "user_id"
            ]
        );
        assert_eq!(value["reasons"][0], "CLASSIFIED_IN_PUBLIC_ROOM");
        assert_eq!(value["rules"][0], "send.classified-public");
        assert_eq!(value["shadow"], true);
        assert_eq!(value["latency_us"], 42);
    }

    /// Lines beyond the buffer are counted as dropped, never blocking; close writes and flushes the rest.
    #[test]
    fn overflow_is_counted_and_close_flushes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("decisions.ndjson");
        let metrics = Arc::new(Metrics::new());
        let log = DecisionLog::start(&LogOutput::File(path.clone()), 1, metrics.clone()).unwrap();
        let d = decision();
        for _ in 0..1000 {
            log.log(&Entry::new(
                "CheckMessageSend",
                "@a:b",
                "!r:b",
                &d,
                Duration::ZERO,
                false,
            ));
        }
        log.close();
        let written = std::fs::read_to_string(&path).unwrap().lines().count() as u64;
        let dropped = metrics.decision_log_dropped_count();
        assert_eq!(
            written + dropped,
            1000,
            "written {written}, dropped {dropped}"
        );
        log.log(&Entry::new(
            "CheckMessageSend",
            "@a:b",
            "!r:b",
            &d,
            Duration::ZERO,
            false,
        ));
        assert_eq!(
            metrics.decision_log_dropped_count(),
            dropped + 1,
            "a line after close is counted"
        );
    }
}
