//! The decision log: one NDJSON line per decision, to standard output or appended to a file.
//!
//! A line holds who asked what about which room and what was decided, never what the message said: the record
//! ([`Entry`]) is built from the decision and the request's ids alone, and has no field that could hold a body,
//! formatted body or file name.
//!
//! The request path never waits on the disk: it formats the line and appends it to a bounded batch
//! (`decision_log.buffer` lines) and goes on. A dedicated thread takes the batch every [`BATCH_INTERVAL`] (sooner when
//! half the buffer is full) and writes it with one write and one flush. A line that cannot be buffered (the writer is
//! behind) or written (an I/O error) is counted in `roomguard_decision_log_dropped_total` and reported in a `warn`
//! event, at most once a second; [`DecisionLog::close`] writes every buffered line and flushes before the process
//! exits.

use std::{
    cell::RefCell,
    fs::OpenOptions,
    io::{self, Write},
    path::PathBuf,
    sync::{
        Arc, Condvar, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};
use tracing::{error, warn};

use crate::{
    domain::decision::{Decision, Reason},
    ops::{config_error::ConfigError, metrics::Metrics},
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
    pub reasons: Codes<'a>,
    /// The ids of the rules that decided, in the same order.
    pub rules: Rules<'a>,
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
    /// Reads only: what was read, and which front asked (never the token, never the URI's query).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read: Option<ReadEntry<'a>>,
}

/// What the decision log says of a read: its kind, the file it downloads, which front asked. Never the access token,
/// never the URI (its query can hold the token).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ReadEntry<'a> {
    /// `history`, `search`, `sync_initial`, `media`, `thumbnail` or `other`.
    pub kind: &'a str,
    /// `mxc://server/id` of a download or thumbnail, empty otherwise.
    pub media_id: &'a str,
    /// `auth_request` (nginx), `ext_authz` (Envoy) or `rpc` (`CheckRead`).
    pub front: &'a str,
    /// Why the policy did not decide (`unknown_token`, `homeserver_unavailable`, `overloaded`, `timeout`,
    /// `invalid`), empty when it did.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub not_decided: &'a str,
}

/// The codes of a decision's reasons, written as a JSON array of strings straight from the reasons (no list is
/// built for the line).
#[derive(Debug, Clone, Copy)]
pub struct Codes<'a>(pub &'a [Reason]);

/// The rule ids of a decision's reasons, written as a JSON array of strings straight from the reasons.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a>(pub &'a [Reason]);

impl Serialize for Codes<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|r| r.code.as_str()))
    }
}

impl Serialize for Rules<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|r| r.rule.as_str()))
    }
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
    /// Pages read with OCR.
    pub ocr_pages: u32,
    /// Characters of text that came from OCR.
    pub ocr_chars: u64,
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
            timestamp: rfc3339_millis(decision.decided_at),
            decision_id: &decision.decision_id,
            request_id: &decision.request_id,
            rpc,
            user_id,
            room_id,
            effect: decision.effect.as_str(),
            reasons: Codes(&decision.reasons),
            rules: Rules(&decision.reasons),
            roles: &decision.roles,
            classification: &decision.classification,
            policy_version: &decision.policy_version,
            latency_us: u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
            shadow,
            media: None,
            read: None,
        }
    }

    /// The same entry, for a read.
    pub fn with_read(mut self, read: ReadEntry<'a>) -> Self {
        self.read = Some(read);
        self
    }

    /// The same entry, for an upload.
    pub fn with_media(mut self, media: MediaEntry<'a>) -> Self {
        self.media = Some(media);
        self
    }

    /// Appends the entry as one line of JSON, exactly as `serde_json::to_writer` writes its `Serialize` form (the
    /// tests hold the two to the same bytes), without going through the serializer: the field names are constants
    /// here, and a string with nothing to escape is copied whole. Serializing cost more than anything else a logged
    /// decision does.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"timestamp\":");
        json_str(out, &self.timestamp);
        for (key, value) in [
            (&b",\"decision_id\":"[..], self.decision_id),
            (b",\"request_id\":", self.request_id),
            (b",\"rpc\":", self.rpc),
            (b",\"user_id\":", self.user_id),
            (b",\"room_id\":", self.room_id),
            (b",\"effect\":", self.effect),
        ] {
            out.extend_from_slice(key);
            json_str(out, value);
        }
        out.extend_from_slice(b",\"reasons\":");
        json_array(out, self.reasons.0.iter().map(|r| r.code.as_str()));
        out.extend_from_slice(b",\"rules\":");
        json_array(out, self.rules.0.iter().map(|r| r.rule.as_str()));
        out.extend_from_slice(b",\"roles\":");
        json_array(out, self.roles.iter().map(String::as_str));
        out.extend_from_slice(b",\"classification\":");
        json_str(out, self.classification);
        out.extend_from_slice(b",\"policy_version\":");
        json_str(out, self.policy_version);
        out.extend_from_slice(b",\"latency_us\":");
        json_u64(out, self.latency_us);
        out.extend_from_slice(b",\"shadow\":");
        json_bool(out, self.shadow);
        if let Some(media) = &self.media {
            out.extend_from_slice(b",\"media\":{\"media_id\":");
            json_str(out, media.media_id);
            out.extend_from_slice(b",\"format\":");
            json_str(out, media.format);
            out.extend_from_slice(b",\"bytes_read\":");
            json_u64(out, media.bytes_read);
            out.extend_from_slice(b",\"text_chars\":");
            json_u64(out, media.text_chars);
            out.extend_from_slice(b",\"incomplete_reason\":");
            json_str(out, media.incomplete_reason);
            out.extend_from_slice(b",\"remote\":");
            json_bool(out, media.remote);
            out.extend_from_slice(b",\"ocr_pages\":");
            json_u64(out, u64::from(media.ocr_pages));
            out.extend_from_slice(b",\"ocr_chars\":");
            json_u64(out, media.ocr_chars);
            out.push(b'}');
        }
        if let Some(read) = &self.read {
            out.extend_from_slice(b",\"read\":{\"kind\":");
            json_str(out, read.kind);
            out.extend_from_slice(b",\"media_id\":");
            json_str(out, read.media_id);
            out.extend_from_slice(b",\"front\":");
            json_str(out, read.front);
            if !read.not_decided.is_empty() {
                out.extend_from_slice(b",\"not_decided\":");
                json_str(out, read.not_decided);
            }
            out.push(b'}');
        }
        out.push(b'}');
    }
}

/// A JSON string, escaped as `serde_json` escapes: `"`, `\` and the control characters below U+0020 (the short
/// forms where JSON has them, `\u00XX` in lowercase hex otherwise); everything else, non-ASCII included, as is.
fn json_str(out: &mut Vec<u8>, value: &str) {
    out.push(b'"');
    let bytes = value.as_bytes();
    if !needs_escaping(bytes) {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut from = 0;
    for (at, &b) in bytes.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..0x20 => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[from..at]);
        if escaped.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(escaped);
        }
        from = at + 1;
    }
    out.extend_from_slice(&bytes[from..]);
    out.push(b'"');
}

/// Whether `bytes` holds a byte that JSON escapes (`"`, `\`, below 0x20), eight bytes at a time: ids, codes and
/// labels never do, so they are copied whole.
fn needs_escaping(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // Whether some byte of `word` is zero (exactly, though not which one).
    let has_zero = |word: u64| word.wrapping_sub(ONES) & !word & HIGHS != 0;
    let escaped_in = |word: u64| {
        // A byte below 0x20 (the `has_zero` test against 0x20 instead of 1; exact below 0x80).
        word.wrapping_sub(ONES * 0x20) & !word & HIGHS != 0
            || has_zero(word ^ (ONES * u64::from(b'"')))
            || has_zero(word ^ (ONES * u64::from(b'\\')))
    };
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        if escaped_in(u64::from_ne_bytes(word)) {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

fn json_array<'s>(out: &mut Vec<u8>, values: impl Iterator<Item = &'s str>) {
    out.push(b'[');
    for (i, value) in values.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_str(out, value);
    }
    out.push(b']');
}

fn json_u64(out: &mut Vec<u8>, value: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = value;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

fn json_bool(out: &mut Vec<u8>, value: bool) {
    out.extend_from_slice(if value { b"true" } else { b"false" });
}

/// The request path's handle on the decision log; cheap to clone.
#[derive(Debug, Clone)]
pub struct DecisionLog {
    inner: Option<Arc<Inner>>,
}

#[derive(Debug)]
struct Inner {
    batch: Mutex<Batch>,
    /// Wakes the writer: a batch has begun, is half full, or the log is closing.
    wake: Condvar,
    /// Lines held at most (`decision_log.buffer`).
    capacity: usize,
    metrics: Arc<Metrics>,
    last_report: AtomicU64,
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// The lines logged since the writer last took them.
#[derive(Debug, Default)]
struct Batch {
    /// Whole NDJSON lines, each ending in `\n`.
    text: Vec<u8>,
    lines: usize,
    closing: bool,
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
        let inner = Arc::new(Inner {
            batch: Mutex::new(Batch::default()),
            wake: Condvar::new(),
            capacity: buffer.max(1),
            metrics,
            last_report: AtomicU64::new(0),
            writer: Mutex::new(None),
        });
        let writer = std::thread::Builder::new()
            .name("decision-log".into())
            .spawn({
                let inner = inner.clone();
                move || inner.write_batches(sink)
            })?;
        if let Ok(mut slot) = inner.writer.lock() {
            *slot = Some(writer);
        }
        Ok(DecisionLog { inner: Some(inner) })
    }

    /// Whether lines go anywhere: when not, the caller need not build an [`Entry`] at all.
    pub fn is_on(&self) -> bool {
        self.inner.is_some()
    }

    /// Logs `entry` without waiting; if the buffer is full or the log is closed the line is counted as dropped.
    ///
    /// The line is formatted here, into a buffer of this thread's, and appended to the batch under a lock held for a
    /// copy only: the writer holds the same lock only to take the batch, never while writing.
    pub fn log(&self, entry: &Entry<'_>) {
        let Some(inner) = &self.inner else { return };
        LINE.with_borrow_mut(|line| {
            line.clear();
            entry.write_json(line);
            line.push(b'\n');
            inner.append(line);
        });
    }

    /// Writes every line buffered so far, flushes, and stops the writer. Blocks until done: call it at shutdown,
    /// after the server has stopped. Lines logged afterwards are counted as dropped.
    pub fn close(&self) {
        let Some(inner) = &self.inner else { return };
        if let Ok(mut batch) = inner.batch.lock() {
            batch.closing = true;
        }
        inner.wake.notify_one();
        let writer = inner.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(writer) = writer
            && writer.join().is_err()
        {
            error!("the decision-log writer panicked");
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

thread_local! {
    /// The line being formatted on this thread, kept between calls so that formatting allocates nothing once warm.
    static LINE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// How long the writer lets a batch gather lines before it writes them (unless half the buffer fills first): one
/// write and one flush per batch instead of one per line, which under load cost more CPU than the decision itself.
/// A line reaches the file at most this long (plus the write) after its call is answered.
pub const BATCH_INTERVAL: Duration = Duration::from_millis(20);

impl Inner {
    fn append(&self, line: &[u8]) {
        let Ok(mut batch) = self.batch.lock() else {
            self.dropped("the log is broken");
            return;
        };
        if batch.closing {
            drop(batch);
            self.dropped("the log is closed");
            return;
        }
        if batch.lines >= self.capacity {
            drop(batch);
            self.dropped("the buffer is full");
            return;
        }
        batch.text.extend_from_slice(line);
        batch.lines += 1;
        // Wake the writer only when a batch begins (it may be idle) and when it is half full (write before it
        // overflows); every other line costs no wake-up.
        let wake = batch.lines == 1 || batch.lines == self.capacity.div_ceil(2);
        drop(batch);
        if wake {
            self.wake.notify_one();
        }
    }

    /// The writer thread: waits for a batch to begin, lets it gather for [`BATCH_INTERVAL`] (or until half the buffer
    /// is full, or the log closes), takes it, and writes it with one write and one flush. Returns once closed and
    /// everything is written.
    fn write_batches(&self, sink: Box<dyn Write + Send>) {
        let mut sink = sink;
        let mut spare = Vec::new();
        loop {
            let Ok(mut batch) = self.batch.lock() else {
                error!("the decision log's lock is poisoned; the writer stops");
                return;
            };
            while batch.lines == 0 && !batch.closing {
                batch = match self.wake.wait(batch) {
                    Ok(batch) => batch,
                    Err(_) => return,
                };
            }
            let deadline = Instant::now() + BATCH_INTERVAL;
            while batch.lines < self.capacity.div_ceil(2) && !batch.closing {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                batch = match self.wake.wait_timeout(batch, left) {
                    Ok((batch, _)) => batch,
                    Err(_) => return,
                };
            }
            std::mem::swap(&mut batch.text, &mut spare);
            let lines = std::mem::take(&mut batch.lines);
            let closing = batch.closing;
            drop(batch);
            if !spare.is_empty()
                && let Err(err) = sink.write_all(&spare).and_then(|()| sink.flush())
            {
                // The lines of a failed write are lost, and counted: there is no telling how much reached the disk.
                for _ in 0..lines {
                    self.metrics.decision_log_dropped();
                }
                self.dropped(&format!("write failed: {err}"));
            }
            // Keep the allocation for the next batch, unless a burst made it much larger than usual.
            spare.clear();
            if spare.capacity() > 4 * 1024 * 1024 {
                spare = Vec::new();
            }
            if closing {
                return;
            }
        }
    }

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

/// `2026-11-26T16:25:00.123Z`.
///
/// Written digit by digit rather than through `format!`: it runs for every logged decision, and the formatting
/// machinery cost ten times the rest of the line's fields to prepare.
pub fn rfc3339_millis(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(i64::try_from(days).unwrap_or(0));
    let mut out = String::with_capacity(24);
    // The year has at least 4 digits (`{year:04}`); it is never negative, since earlier times count as the epoch.
    let year = u64::try_from(year).unwrap_or(0);
    if year > 9999 {
        out.push_str(&year.to_string());
    } else {
        push_digits(&mut out, year, 4);
    }
    for (separator, value, width) in [
        ('-', u64::from(month), 2),
        ('-', u64::from(day), 2),
        ('T', rem / 3600, 2),
        (':', rem % 3600 / 60, 2),
        (':', rem % 60, 2),
        ('.', u64::from(since.subsec_millis()), 3),
    ] {
        out.push(separator);
        push_digits(&mut out, value, width);
    }
    out.push('Z');
    out
}

/// Appends the last `width` decimal digits of `value`, zero-padded.
fn push_digits(out: &mut String, value: u64, width: u32) {
    for place in (0..width).rev() {
        let digit = value / 10u64.pow(place) % 10;
        out.push(char::from(b'0' + digit as u8));
    }
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

/// `[decision_log]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DecisionLogConfig {
    /// `stdout`, `off`, or the path of a file to append to.
    pub output: String,
    /// Lines held in memory while the writer catches up; past that, lines are dropped and counted.
    pub buffer: usize,
}

impl Default for DecisionLogConfig {
    fn default() -> Self {
        DecisionLogConfig {
            output: "stdout".into(),
            buffer: 4096,
        }
    }
}

/// Where decision-log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogOutput {
    /// No decision log.
    Off,
    /// Standard output.
    Stdout,
    /// Appended to this file.
    File(PathBuf),
}

impl DecisionLogConfig {
    /// An output is named and the buffer holds at least a line.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.output.is_empty() {
            return Err(ConfigError::new(
                "decision_log.output",
                "empty: use `stdout`, `off` or a file path",
            ));
        }
        if self.buffer == 0 {
            return Err(ConfigError::new(
                "decision_log.buffer",
                "must be at least 1",
            ));
        }
        Ok(())
    }

    /// The parsed `output` setting.
    pub fn output(&self) -> LogOutput {
        match self.output.as_str() {
            "off" => LogOutput::Off,
            "stdout" | "-" => LogOutput::Stdout,
            path => LogOutput::File(PathBuf::from(path)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::decision::Effect;

    fn decision() -> Decision {
        Decision {
            effect: Effect::Deny,
            reasons: vec![Reason {
                code: "CLASSIFIED_IN_PUBLIC_ROOM".into(),
                rule: "send.classified-public".into(),
                message: "not here".into(),
            }],
            decision_id: "d-1".into(),
            decided_at: UNIX_EPOCH + Duration::from_millis(1_764_259_200_123),
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
        let last = UNIX_EPOCH + Duration::from_millis(253_402_300_799_999); // 9999-12-31T23:59:59.999Z
        assert_eq!(rfc3339_millis(last), "9999-12-31T23:59:59.999Z");
        let after = UNIX_EPOCH + Duration::from_secs(253_402_300_800); // 10000-01-01
        assert_eq!(rfc3339_millis(after), "10000-01-01T00:00:00.000Z");
        // Every millisecond and second of a day, against the formatting it replaces.
        for ms in (0..86_400_000u64).step_by(7_919) {
            let t = UNIX_EPOCH + Duration::from_millis(1_709_164_800_000 + ms);
            let secs = ms / 1000;
            let expected = format!(
                "2024-02-29T{:02}:{:02}:{:02}.{:03}Z",
                secs / 3600,
                secs % 3600 / 60,
                secs % 60,
                ms % 1000
            );
            assert_eq!(rfc3339_millis(t), expected);
        }
    }

    /// The hand-written line is byte for byte what serde_json writes for the entry's `Serialize` form, whatever the
    /// strings hold (quotes, backslashes, every control character, DEL, non-ASCII), with or without media or a read.
    #[test]
    fn lines_are_what_serde_json_writes() {
        let every_ascii: String = (0u8..0x80).map(char::from).collect();
        let texts = [
            "",
            "plain",
            every_ascii.as_str(),
            "é\u{2028}\u{202E}😀 \"quoted\" back\\slash\u{0}",
        ];
        for (i, text) in texts.iter().enumerate() {
            let mut d = decision();
            d.reasons.push(Reason {
                code: text.to_string(),
                rule: format!("{text}!"),
                message: String::new(),
            });
            d.roles = vec![text.to_string(), "agent".into()];
            d.classification = text.to_string();
            d.policy_version = text.to_string();
            d.decision_id = text.to_string();
            d.request_id = text.to_string();
            let mut entry = Entry::new(
                text,
                text,
                text,
                &d,
                Duration::from_micros([0, 7, 1_234_567, u64::MAX][i]),
                i % 2 == 0,
            );
            let media = MediaEntry {
                media_id: text,
                format: "pdf",
                bytes_read: u64::MAX,
                text_chars: 0,
                incomplete_reason: text,
                remote: true,
                ocr_pages: u32::MAX,
                ocr_chars: u64::MAX,
            };
            let read = ReadEntry {
                kind: "history",
                media_id: text,
                front: "auth_request",
                not_decided: if i % 2 == 0 { "" } else { text },
            };
            for step in 0..3 {
                match step {
                    1 => entry = entry.with_media(media),
                    2 => {
                        entry.media = None;
                        entry = entry.with_read(read);
                    }
                    _ => {}
                }
                let mut ours = Vec::new();
                entry.write_json(&mut ours);
                let theirs = serde_json::to_vec(&entry).unwrap();
                assert_eq!(
                    String::from_utf8_lossy(&ours),
                    String::from_utf8_lossy(&theirs)
                );
                assert_eq!(ours, theirs);
            }
        }
        let empty = Decision {
            reasons: Vec::new(),
            roles: Vec::new(),
            ..decision()
        };
        let entry = Entry::new("r", "u", "!x", &empty, Duration::ZERO, false);
        let mut ours = Vec::new();
        entry.write_json(&mut ours);
        assert_eq!(ours, serde_json::to_vec(&entry).unwrap());
    }

    /// The eight-at-a-time test finds every byte JSON escapes, at every position, and nothing else.
    #[test]
    fn escaping_is_detected_at_every_position() {
        for len in 0..20 {
            for at in 0..len {
                for b in 0u8..=255 {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = b;
                    let expected = b < 0x20 || b == b'"' || b == b'\\';
                    assert_eq!(needs_escaping(&bytes), expected, "{b:#x} at {at} of {len}");
                }
            }
        }
        assert!(!needs_escaping("é😀 \u{7f}~!#".as_bytes()));
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

    fn entry_for<'a>(d: &'a Decision) -> Entry<'a> {
        Entry::new("CheckMessageSend", "@a:b", "!r:b", d, Duration::ZERO, false)
    }

    /// A burst of lines within the buffer is written completely, in order, each line whole.
    #[test]
    fn a_burst_is_written_completely_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("decisions.ndjson");
        let metrics = Arc::new(Metrics::new());
        let log =
            DecisionLog::start(&LogOutput::File(path.clone()), 20_000, metrics.clone()).unwrap();
        let mut d = decision();
        for i in 0..10_000 {
            d.request_id = format!("r-{i}");
            log.log(&entry_for(&d));
        }
        log.close();
        let text = std::fs::read_to_string(&path).unwrap();
        let ids: Vec<String> = text
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["request_id"].as_str().unwrap().to_owned()
            })
            .collect();
        let expected: Vec<String> = (0..10_000).map(|i| format!("r-{i}")).collect();
        assert_eq!(ids, expected);
        assert_eq!(metrics.decision_log_dropped_count(), 0);
    }

    /// Close writes and flushes the lines of a batch still gathering, without waiting for its interval to end.
    #[test]
    fn close_flushes_a_batch_still_gathering() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("decisions.ndjson");
        let metrics = Arc::new(Metrics::new());
        let log = DecisionLog::start(&LogOutput::File(path.clone()), 64, metrics.clone()).unwrap();
        let d = decision();
        for _ in 0..3 {
            log.log(&entry_for(&d));
        }
        log.close();
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 3);
    }

    /// Lines reach the file while the log stays open: the writer writes batches on its own, not only at close.
    #[test]
    fn lines_are_written_without_waiting_for_close() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("decisions.ndjson");
        let metrics = Arc::new(Metrics::new());
        let log = DecisionLog::start(&LogOutput::File(path.clone()), 64, metrics).unwrap();
        let d = decision();
        log.log(&entry_for(&d));
        // Generous: the batch interval is milliseconds; this only fails if the writer never writes by itself.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::fs::read_to_string(&path).unwrap().lines().count() < 1 {
            assert!(std::time::Instant::now() < deadline, "nothing written");
            std::thread::sleep(Duration::from_millis(5));
        }
        log.close();
    }
}
