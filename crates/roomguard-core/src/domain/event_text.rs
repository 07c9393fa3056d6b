//! Turn a Matrix event's content into the [`Message`] the classifier reads: a port of the Synapse module's
//! `synapse_roomguard/messages.py` (`message_from_event`), so that an event fetched from the homeserver afterwards
//! (the audit) is described exactly as the module described it when it was sent.
//!
//! Which events carry text, and where it is:
//!
//! * `m.room.message` and `m.sticker`: `msgtype`, `body`, `formatted_body`, `filename`, `info`, an edit's
//!   `m.new_content` first; always a message, even without text (the type alone can break a rule);
//! * `m.room.encrypted`: the type alone (ciphertext is not content); always a message;
//! * every other event type: every string value of its content, walked in document order, except values that are
//!   Matrix identifiers or media URIs ([`is_identifier`]) and the values of keys that carry no prose
//!   ([`NO_PROSE_KEYS`]). HTML goes to `formatted_body`: `formatted_body` and `org.matrix.msc1767.html` values, and
//!   extensible-event text blocks (`m.text`, `org.matrix.msc1767.text`) whose mimetype is HTML; the other blocks go
//!   to `body`. That covers polls (stable and unstable), room names and topics, a reaction's key, redaction reasons,
//!   edits' `m.new_content` and any custom type. Such an event without any text is no message (`None`).
//!
//! Document order needs `serde_json`'s `preserve_order` feature (enabled in this crate's `Cargo.toml`): without it an
//! object's keys come out sorted, and the cut at [`MAX_TEXT_BYTES`] would keep different text than the module did.
//!
//! Bounds: the walk descends at most [`MAX_DEPTH`] levels, visits at most [`MAX_VALUES`] values, and keeps at most
//! [`MAX_TEXT_BYTES`] of text (roomguard's limit on `body` + `formatted_body` + `filename`); identifier-like fields
//! are cut to [`MAX_ID_BYTES`]. Every cut falls on a character boundary.
//!
//! Nothing here logs: the values extracted are exactly the content that must never reach a log file.

use std::{collections::HashSet, sync::LazyLock};

use regex::Regex;
use serde_json::Value;

use crate::domain::{limits, message::Message};

/// Asked about even when they carry no text: messages, stickers and encrypted events (type only).
pub const ALWAYS_CHECKED_TYPES: [&str; 3] = ["m.room.message", "m.sticker", "m.room.encrypted"];

/// The event types with the message shape (`msgtype`, `body`, `formatted_body`, `filename`, `info`).
const MESSAGE_SHAPED_TYPES: [&str; 2] = ["m.room.message", "m.sticker"];

/// roomguard's limit on `body` + `formatted_body` + `filename` together: a larger message would be refused as invalid
/// input, which is no decision.
pub const MAX_TEXT_BYTES: usize = limits::MAX_EVENT_BYTES;

/// roomguard's limit on identifier-like fields (`event_type`, `msgtype`, `mimetype`).
pub const MAX_ID_BYTES: usize = limits::MAX_ID_BYTES;

/// How deep the walk over an event's content goes. Extensible events nest text about six levels deep (poll, answers,
/// answer, text blocks, block, body); no client shows text nested deeper than a few levels.
pub const MAX_DEPTH: usize = 64;

/// How many values (objects, arrays, strings, numbers) the walk visits at most: more than a 64 KiB event can hold
/// (`0,` is two bytes), so the bound only stops content the homeserver refuses anyway.
pub const MAX_VALUES: usize = 40_000;

/// Keys whose values are not prose: structure, identifiers, links, encryption material, call signalling. The walk
/// skips the value, whole, whatever it holds.
pub const NO_PROSE_KEYS: &[&str] = &[
    // structure of messages and extensible events
    "msgtype",
    "format",
    "mimetype",
    "algorithm",
    "rel_type",
    "kind",
    "type",
    "version",
    "id",
    "m.id",
    // identifiers and links
    "event_id",
    "room_id",
    "user_id",
    "sender",
    "state_key",
    "redacts",
    "via",
    "url",
    "avatar_url",
    "thumbnail_url",
    "geo_uri",
    // encryption material (encrypted events, encrypted attachments' JWK and hashes)
    "ciphertext",
    "session_id",
    "sender_key",
    "device_id",
    "hashes",
    "iv",
    "k",
    "kty",
    "key_ops",
    "alg",
    "v",
    "blurhash",
    "xyz.amorgan.blurhash",
    // poll responses: the answer ids chosen
    "m.selections",
    "org.matrix.msc3381.poll.response",
    // spaces' ordering keys, third-party invites' public keys
    "order",
    "public_key",
    "public_keys",
    "key_validity_url",
    // VoIP and MatrixRTC signalling
    "sdp",
    "candidates",
    "call_id",
    "party_id",
    "application",
    "scope",
    "focus_active",
    "foci_preferred",
    "membershipID",
];

/// Keys whose string value is HTML.
const HTML_KEYS: [&str; 2] = ["formatted_body", "org.matrix.msc1767.html"];
/// Keys holding extensible-event text blocks (`[{"body": ..., "mimetype": ...}]`), or text itself (early MSC1767).
const TEXT_BLOCK_KEYS: [&str; 2] = ["m.text", "org.matrix.msc1767.text"];
const HTML_MIMETYPE: &str = "text/html";

/// A whole value that is a Matrix identifier or a media URI, and nothing else: user ids, room aliases, room ids and
/// event ids with a server part; room ids (v12) and event ids (v3+) as unpadded base64 of a SHA-256 (43 characters);
/// `mxc://server/media`. The module's pattern, with Python's `\s` spelled out: Python's whitespace is Unicode's
/// `White_Space` plus U+001C..U+001F, which the `regex` crate's `\s` leaves out.
static IDENTIFIER: LazyLock<Option<Regex>> = LazyLock::new(|| {
    const SPACE: &str = r"\s\x{1C}-\x{1F}";
    const SERVER_NAME: &str = r"(?:[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?";
    Regex::new(&format!(
        r"^(?:[@#!$][^{SPACE}:]+:{SERVER_NAME}|[!$][A-Za-z0-9+/_\-]{{43}}|mxc://[^{SPACE}/]+/[A-Za-z0-9_\-]+)$"
    ))
    .ok()
});

/// Is this whole string a Matrix identifier or a media URI (not prose)? A sigil followed by prose
/// (`@tous DIFFUSION RESTREINTE`) is not one, so it stays text.
///
/// The length bound counts characters, not bytes, as the module's `len(value)` does.
pub fn is_identifier(value: &str) -> bool {
    // If the pattern did not compile (a test pins that it does), every string is text: more is classified, not less.
    value.chars().nth(MAX_ID_BYTES).is_none()
        && IDENTIFIER.as_ref().is_some_and(|re| re.is_match(value))
}

/// Python's `str.isspace()`: Unicode's `White_Space` plus the four information separators U+001C..U+001F.
pub(crate) fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1C}'..='\u{1F}').contains(&c)
}

/// The longest prefix of `text` of at most `max_bytes` bytes that ends on a character boundary.
fn cut(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    // Terminates: 0 is always a boundary.
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default()
}

/// [`cut`], in place.
fn cut_owned(text: &mut String, max_bytes: usize) {
    let end = cut(text, max_bytes).len();
    text.truncate(end);
}

/// The string at `key` of an object, or `""` (absent, another type, or `value` not an object).
fn str_field<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or_default()
}

// === the walk over any content ===

/// Text found in an event's content, in document order, deduplicated, within [`MAX_TEXT_BYTES`] (each piece counted
/// with the newline that joins it to the others).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CollectedText {
    /// Plain text, one entry per string value.
    pub plain: Vec<String>,
    /// HTML, one entry per string value.
    pub html: Vec<String>,
    /// The walk stopped at one of its bounds (depth, values, bytes): some content was not read.
    pub truncated: bool,
}

/// Deliberately omits the text: a `{:?}` in a log line must not leak what roomguard exists to keep out of logs.
impl std::fmt::Debug for CollectedText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CollectedText")
            .field("plain_values", &self.plain.len())
            .field("html_values", &self.html.len())
            .field("truncated", &self.truncated)
            .finish()
    }
}

impl CollectedText {
    /// The plain text, one value a line.
    pub fn body(&self) -> String {
        self.plain.join("\n")
    }

    /// The HTML, one value a line.
    pub fn formatted_body(&self) -> String {
        self.html.join("\n")
    }
}

/// The walk's bookkeeping: what it found, and the bytes and strings it has already taken.
struct Collector<'a> {
    found: CollectedText,
    used: usize,
    /// `(is_html, text)` already taken: the same string twice is classified once (per kind).
    seen: HashSet<(bool, &'a str)>,
}

impl<'a> Collector<'a> {
    fn add(&mut self, text: &'a str, html: bool) {
        if text.chars().all(is_python_space) || !self.seen.insert((html, text)) {
            return;
        }
        let mut kept = text;
        // + 1: the newline that joins it to the others.
        if self.used + kept.len() + 1 > MAX_TEXT_BYTES {
            self.found.truncated = true;
            kept = cut(kept, MAX_TEXT_BYTES.saturating_sub(self.used + 1));
            if kept.is_empty() {
                return;
            }
        }
        self.used += kept.len() + 1;
        let list = if html {
            &mut self.found.html
        } else {
            &mut self.found.plain
        };
        list.push(kept.to_owned());
    }

    fn full(&self) -> bool {
        self.used >= MAX_TEXT_BYTES - 1
    }
}

/// One value still to visit: the value, its depth, and whether a string there is HTML.
type Pending<'a> = (&'a Value, usize, bool);

/// Every prose string of `content` (see the module's opening comment), bounded by depth, values and bytes.
pub fn collect_text(content: &Value) -> CollectedText {
    let mut collector = Collector {
        found: CollectedText::default(),
        used: 0,
        seen: HashSet::new(),
    };
    // A stack in reverse document order, so that text comes out in document order; no recursion, so no depth of
    // input can overflow the thread's stack.
    let mut stack: Vec<Pending<'_>> = vec![(content, 0, false)];
    let mut visited = 0;
    while let Some((value, depth, html)) = stack.pop() {
        if visited >= MAX_VALUES || collector.full() {
            collector.found.truncated = true;
            break;
        }
        visited += 1;
        let mut children: Vec<Pending<'_>> = Vec::new();
        match value {
            Value::String(text) => {
                if !is_identifier(text) {
                    collector.add(text, html);
                }
                continue;
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => continue,
            Value::Object(_) | Value::Array(_) if depth >= MAX_DEPTH => {
                collector.found.truncated = true;
                continue;
            }
            Value::Object(map) => {
                for (key, child) in map {
                    if NO_PROSE_KEYS.contains(&key.as_str()) {
                        continue;
                    }
                    match child {
                        Value::Array(blocks) if TEXT_BLOCK_KEYS.contains(&key.as_str()) => {
                            children.extend(text_blocks(blocks, depth + 1));
                        }
                        _ => children.push((
                            child,
                            depth + 1,
                            html || HTML_KEYS.contains(&key.as_str()),
                        )),
                    }
                }
            }
            Value::Array(items) => {
                children.extend(items.iter().map(|child| (child, depth + 1, html)))
            }
        }
        stack.extend(children.into_iter().rev());
    }
    collector.found
}

/// Extensible-event text blocks: each block's `body`, as HTML when its `mimetype` says so. A block without a string
/// `body` is walked like any value, at the blocks' own depth, as the module does.
fn text_blocks(blocks: &[Value], depth: usize) -> impl Iterator<Item = Pending<'_>> {
    blocks.iter().map(move |block| match block.get("body") {
        Some(body @ Value::String(_)) => {
            let is_html = block
                .get("mimetype")
                .and_then(Value::as_str)
                // Python's `str.lower()` and Rust's `to_lowercase` both fold by Unicode, so the same strings match.
                .is_some_and(|m| m.to_lowercase() == HTML_MIMETYPE);
            (body, depth + 1, is_html)
        }
        _ => (block, depth, false),
    })
}

// === messages and stickers ===

/// `m.new_content` of an edit (`m.relates_to.rel_type == "m.replace"`), else `None`.
fn edit_target(content: &Value) -> Option<&Value> {
    let relates_to = content.get("m.relates_to").filter(|v| v.is_object())?;
    let new_content = content.get("m.new_content").filter(|v| v.is_object())?;
    (relates_to.get("rel_type").and_then(Value::as_str) == Some("m.replace")).then_some(new_content)
}

/// Text for the classifier when an edit's fallback says something its `m.new_content` does not.
///
/// Clients without edit support display the fallback (`* new text`), so a marking hidden there is still shown to
/// people: classify both. When the fallback is the usual `* ` + new text, send the new text alone.
fn join(primary: &str, fallback: &str) -> String {
    let usual = fallback
        .strip_prefix("* ")
        .is_some_and(|rest| rest == primary);
    if fallback.is_empty() || fallback == primary || usual {
        return primary.to_owned();
    }
    if primary.is_empty() {
        return fallback.to_owned();
    }
    format!("{primary}\n{fallback}")
}

/// A message or a sticker: its own fields, or an edit's `m.new_content` (with the fallback when it differs).
fn message_shaped(event_type: &str, content: &Value) -> Message {
    let body = str_field(content, "body");
    let formatted_body = str_field(content, "formatted_body");
    let (source, body, formatted_body) = match edit_target(content) {
        Some(new_content) => (
            new_content,
            join(str_field(new_content, "body"), body),
            join(str_field(new_content, "formatted_body"), formatted_body),
        ),
        None => (content, body.to_owned(), formatted_body.to_owned()),
    };
    let info = source.get("info").filter(|v| v.is_object());
    // A size that is not an integer in 0..=u64::MAX (a float, a boolean, a negative number) is client nonsense,
    // sent as 0 ("unknown").
    let size = info
        .and_then(|i| i.get("size"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    build_message(Message {
        event_type: event_type.to_owned(),
        msgtype: str_field(source, "msgtype").to_owned(),
        body,
        formatted_body,
        filename: str_field(source, "filename").to_owned(),
        mimetype: info
            .map(|i| str_field(i, "mimetype"))
            .unwrap_or_default()
            .to_owned(),
        size,
    })
}

/// `message` within what roomguard accepts: identifier-like fields cut to [`MAX_ID_BYTES`], the text fields to
/// [`MAX_TEXT_BYTES`] together (the body first, then the file name, then the HTML), every cut at a character
/// boundary. The cuts never apply to an event the homeserver accepts, but a request roomguard refuses is no decision.
pub fn build_message(mut message: Message) -> Message {
    let mut budget = MAX_TEXT_BYTES;
    cut_owned(&mut message.body, budget);
    budget -= message.body.len();
    cut_owned(&mut message.filename, budget);
    budget -= message.filename.len();
    cut_owned(&mut message.formatted_body, budget);
    cut_owned(&mut message.event_type, MAX_ID_BYTES);
    cut_owned(&mut message.msgtype, MAX_ID_BYTES);
    cut_owned(&mut message.mimetype, MAX_ID_BYTES);
    message
}

// === entry point ===

/// The [`Message`] roomguard classifies for an event of `event_type` with `content`; `None` when there is nothing to
/// ask about (an event of another type than [`ALWAYS_CHECKED_TYPES`] that carries no text).
///
/// For an edited message, the edited text (`m.new_content`) is what gets classified; the outer fallback is added when
/// it differs. Encrypted events carry only their type: the ciphertext is not content.
pub fn message_from_event(event_type: &str, content: &Value) -> Option<Message> {
    if event_type == "m.room.encrypted" {
        return Some(build_message(Message {
            event_type: event_type.to_owned(),
            ..Message::default()
        }));
    }
    if MESSAGE_SHAPED_TYPES.contains(&event_type) {
        return Some(message_shaped(event_type, content));
    }
    let text = collect_text(content);
    if text.plain.is_empty() && text.html.is_empty() {
        return None;
    }
    Some(build_message(Message {
        event_type: event_type.to_owned(),
        msgtype: str_field(content, "msgtype").to_owned(),
        body: text.body(),
        formatted_body: text.formatted_body(),
        ..Message::default()
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const MARKED: &str = "DIFFUSION RESTREINTE";

    /// The message, for events that are asked about (most tests).
    fn message(event_type: &str, content: Value) -> Message {
        message_from_event(event_type, &content).expect("a message")
    }

    /// The three message types are asked about even without text: their type alone can break a rule.
    #[test]
    fn messages_stickers_and_encrypted_events_are_always_asked_about() {
        for event_type in ALWAYS_CHECKED_TYPES {
            let expected = Message {
                event_type: event_type.into(),
                ..Message::default()
            };
            assert_eq!(message_from_event(event_type, &json!({})), Some(expected));
        }
    }

    /// A text message: msgtype, body and formatted body as sent.
    #[test]
    fn text_message_carries_body_and_html() {
        let msg = message(
            "m.room.message",
            json!({
                "msgtype": "m.text",
                "body": "bonjour",
                "format": "org.matrix.custom.html",
                "formatted_body": "<b>bonjour</b>",
            }),
        );
        assert_eq!(
            (
                msg.event_type.as_str(),
                msg.msgtype.as_str(),
                msg.body.as_str(),
                msg.formatted_body.as_str()
            ),
            ("m.room.message", "m.text", "bonjour", "<b>bonjour</b>")
        );
    }

    /// An attachment: file name, MIME type and size from `info`.
    #[test]
    fn file_message_carries_name_type_and_size() {
        let msg = message(
            "m.room.message",
            json!({
                "msgtype": "m.file",
                "body": "a.pdf",
                "filename": "DR_note.pdf",
                "info": {"mimetype": "application/pdf", "size": 42},
            }),
        );
        assert_eq!(
            (msg.filename.as_str(), msg.mimetype.as_str(), msg.size),
            ("DR_note.pdf", "application/pdf", 42)
        );
    }

    /// A sticker: body and info, no msgtype.
    #[test]
    fn sticker_has_no_msgtype() {
        let msg = message(
            "m.sticker",
            json!({"body": "chat", "info": {"mimetype": "image/png", "size": 10}, "url": "mxc://a/b"}),
        );
        assert_eq!(
            (
                msg.event_type.as_str(),
                msg.msgtype.as_str(),
                msg.body.as_str(),
                msg.mimetype.as_str()
            ),
            ("m.sticker", "", "chat", "image/png")
        );
    }

    /// Ciphertext is not content: an encrypted event is described by its type alone.
    #[test]
    fn encrypted_event_sends_only_its_type() {
        let msg = message(
            "m.room.encrypted",
            json!({"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "diffusion restreinte"}),
        );
        assert_eq!(msg.event_type, "m.room.encrypted");
        assert_eq!(
            (
                msg.body.as_str(),
                msg.formatted_body.as_str(),
                msg.filename.as_str(),
                msg.msgtype.as_str()
            ),
            ("", "", "", "")
        );
    }

    /// An edit: the new content is what gets classified (the usual `* ` fallback adds nothing).
    #[test]
    fn edit_is_classified_on_new_content() {
        let msg = message(
            "m.room.message",
            json!({
                "msgtype": "m.text",
                "body": "* texte secret",
                "m.new_content": {"msgtype": "m.text", "body": "texte secret"},
                "m.relates_to": {"rel_type": "m.replace", "event_id": "$x"},
            }),
        );
        assert_eq!(msg.body, "texte secret");
    }

    /// A fallback that says something else (shown by clients without edit support) is classified with the new text.
    #[test]
    fn edit_fallback_that_differs_is_classified_too() {
        let msg = message(
            "m.room.message",
            json!({
                "msgtype": "m.text",
                "body": MARKED,
                "m.new_content": {"msgtype": "m.text", "body": "rien"},
                "m.relates_to": {"rel_type": "m.replace", "event_id": "$x"},
            }),
        );
        assert_eq!(msg.body, format!("rien\n{MARKED}"));
    }

    /// An edit's attachment facts and HTML come from `m.new_content`, not from the fallback.
    #[test]
    fn edit_takes_html_and_attachment_from_new_content() {
        let msg = message(
            "m.room.message",
            json!({
                "msgtype": "m.text",
                "body": "* x",
                "formatted_body": "* <b>x</b>",
                "info": {"mimetype": "text/plain", "size": 1},
                "m.new_content": {
                    "msgtype": "m.file", "body": "x", "formatted_body": "<b>x</b>", "filename": "n.pdf",
                    "info": {"mimetype": "application/pdf", "size": 7},
                },
                "m.relates_to": {"rel_type": "m.replace", "event_id": "$x"},
            }),
        );
        assert_eq!(
            (
                msg.msgtype.as_str(),
                msg.body.as_str(),
                msg.formatted_body.as_str(),
                msg.filename.as_str(),
                msg.mimetype.as_str(),
                msg.size
            ),
            ("m.file", "x", "<b>x</b>", "n.pdf", "application/pdf", 7)
        );
    }

    /// `m.new_content` without `rel_type: m.replace` is ignored: the event's own body is classified.
    #[test]
    fn new_content_without_replace_relation_is_not_an_edit() {
        let msg = message(
            "m.room.message",
            json!({"msgtype": "m.text", "body": "vrai", "m.new_content": {"body": "leurre"}}),
        );
        assert_eq!(msg.body, "vrai");
    }

    /// Clients send anything: wrong types become empty values, never a panic.
    #[test]
    fn malformed_fields_become_empty_not_errors() {
        let msg = message(
            "m.room.message",
            json!({
                "msgtype": 3, "body": ["x"], "formatted_body": null, "filename": {},
                "info": {"size": -1, "mimetype": 5},
            }),
        );
        assert_eq!(
            (
                msg.msgtype.as_str(),
                msg.body.as_str(),
                msg.formatted_body.as_str(),
                msg.filename.as_str(),
                msg.mimetype.as_str(),
                msg.size
            ),
            ("", "", "", "", "", 0)
        );
        for info in [
            json!({"size": true}),
            json!("big"),
            json!({"size": 4.5}),
            json!({"size": 1e30}),
        ] {
            assert_eq!(message("m.room.message", json!({ "info": info })).size, 0);
        }
        // Content that is not an object at all (the homeserver never sends one): no text, no panic.
        assert_eq!(message("m.room.message", json!([1, 2])).body, "");
        assert_eq!(message_from_event("fr.gouv.note", &json!(null)), None);
    }

    // === text in every event ===

    /// `m.poll.start`: the question, every answer and the fallback, as plain text; answer ids and kind are not text.
    #[test]
    fn stable_poll_question_and_answers_are_text() {
        let msg = message(
            "m.poll.start",
            json!({
                "m.poll": {
                    "kind": "m.disclosed",
                    "max_selections": 1,
                    "question": {"m.text": [{"body": "Quelle date ?"}]},
                    "answers": [
                        {"m.id": "a1", "m.text": [{"body": "Lundi"}]},
                        {"m.id": "a2", "m.text": [{"body": MARKED}]},
                    ],
                },
                "m.text": [{"body": format!("Quelle date ?\n1. Lundi\n2. {MARKED}")}],
            }),
        );
        assert_eq!(msg.event_type, "m.poll.start");
        let lines: Vec<&str> = msg.body.split('\n').take(3).collect();
        assert_eq!(lines, ["Quelle date ?", "Lundi", MARKED]);
        assert!(!msg.body.contains("a1") && !msg.body.contains("m.disclosed"));
        assert_eq!(msg.formatted_body, "");
    }

    /// Text blocks with an HTML mimetype are HTML, the others plain text.
    #[test]
    fn stable_poll_html_blocks_go_to_the_formatted_body() {
        let msg = message(
            "m.poll.start",
            json!({
                "m.poll": {
                    "question": {
                        "m.text": [
                            {"mimetype": "text/plain", "body": "Question"},
                            {"mimetype": "text/html", "body": "<b>Diffusion</b> restreinte ?"},
                        ]
                    },
                    "answers": [{"m.id": "x", "m.text": [{"body": "Oui"}]}],
                }
            }),
        );
        assert_eq!(msg.body, "Question\nOui");
        assert_eq!(msg.formatted_body, "<b>Diffusion</b> restreinte ?");
    }

    /// A text block's mimetype is compared without case; a block without a string `body` is walked like any value.
    #[test]
    fn text_block_mimetype_ignores_case_and_odd_blocks_are_walked() {
        let msg = message(
            "org.example.note",
            json!({"m.text": [{"body": "<b>a</b>", "mimetype": "Text/HTML"}, "nu", {"body": 3, "t": "bloc"}]}),
        );
        assert_eq!(
            (msg.body.as_str(), msg.formatted_body.as_str()),
            ("nu\nbloc", "<b>a</b>")
        );
    }

    /// `org.matrix.msc3381.poll.start` (what Element sends): question (string text, its `body` once), answers, the
    /// fallback; ids, kind and msgtype are not text.
    #[test]
    fn unstable_poll_question_and_answers_are_text() {
        let msg = message(
            "org.matrix.msc3381.poll.start",
            json!({
                "org.matrix.msc3381.poll.start": {
                    "kind": "org.matrix.msc3381.poll.disclosed",
                    "max_selections": 1,
                    "question": {"org.matrix.msc1767.text": "Qui vient ?", "body": "Qui vient ?", "msgtype": "m.text"},
                    "answers": [
                        {"id": "9f2c", "org.matrix.msc1767.text": "Moi"},
                        {"id": "77aa", "org.matrix.msc1767.text": MARKED},
                    ],
                },
                "org.matrix.msc1767.text": "Qui vient ?\n1. Moi",
            }),
        );
        assert_eq!(msg.event_type, "org.matrix.msc3381.poll.start");
        assert_eq!(
            msg.body,
            format!("Qui vient ?\nMoi\n{MARKED}\nQui vient ?\n1. Moi")
        );
        for not_text in ["9f2c", "disclosed", "m.text"] {
            assert!(!msg.body.contains(not_text), "{not_text}");
        }
    }

    /// An edited poll: `m.new_content`'s question and answers are text too.
    #[test]
    fn poll_edit_classifies_the_new_poll() {
        let msg = message(
            "m.poll.start",
            json!({
                "m.new_content": {"m.poll": {"question": {"m.text": [{"body": MARKED}]}, "answers": []}},
                "m.relates_to": {"rel_type": "m.replace", "event_id": format!("${}", "A".repeat(43))},
                "m.text": [{"body": "* sondage"}],
            }),
        );
        assert!(msg.body.contains(MARKED) && msg.body.contains("* sondage"));
    }

    /// `m.text` blocks (MSC1767) of an unknown type: plain and HTML by mimetype; `org.matrix.msc1767.html` is HTML.
    #[test]
    fn extensible_text_blocks_of_any_event_are_text() {
        let msg = message(
            "org.example.note",
            json!({
                "m.text": [{"body": "note"}, {"body": "<i>note</i>", "mimetype": "text/html"}],
                "org.matrix.msc1767.html": "<p>autre</p>",
            }),
        );
        assert_eq!(
            (msg.body.as_str(), msg.formatted_body.as_str()),
            ("note", "<i>note</i>\n<p>autre</p>")
        );
    }

    /// `m.room.name`'s name; `m.room.topic`'s topic once, and its `m.topic` HTML block as HTML.
    #[test]
    fn room_name_and_topic_are_text() {
        assert_eq!(
            message("m.room.name", json!({ "name": MARKED })).body,
            MARKED
        );
        let topic = message(
            "m.room.topic",
            json!({
                "topic": "Ordre du jour",
                "m.topic": {
                    "m.text": [
                        {"body": "Ordre du jour", "mimetype": "text/plain"},
                        {"body": "<b>Ordre</b> du jour", "mimetype": "text/html"},
                    ]
                },
            }),
        );
        assert_eq!(
            (
                topic.event_type.as_str(),
                topic.body.as_str(),
                topic.formatted_body.as_str()
            ),
            ("m.room.topic", "Ordre du jour", "<b>Ordre</b> du jour")
        );
    }

    /// `m.reaction`: the key is what people see; the relation's type and target are not text.
    #[test]
    fn reaction_key_is_text() {
        let msg = message(
            "m.reaction",
            json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": format!("${}", "b".repeat(43)), "key": MARKED}}),
        );
        assert_eq!(
            (msg.event_type.as_str(), msg.body.as_str()),
            ("m.reaction", MARKED)
        );
    }

    /// Any other type: every string value, in document order, except Matrix identifiers, `mxc://` URIs and the
    /// values of keys that carry no prose; numbers and booleans are not text.
    #[test]
    fn custom_event_strings_are_text_but_identifiers_and_uris_are_not() {
        let msg = message(
            "fr.gouv.note",
            json!({
                "title": "Compte rendu",
                "details": {"lines": ["ligne 1", MARKED], "count": 2, "urgent": true},
                "author": "@alice:agent.finances.tchap.gouv.fr",
                "room": "!abc:agent.finances.tchap.gouv.fr",
                "alias": "#forum:agent.finances.tchap.gouv.fr",
                "reply_to": format!("${}", "c".repeat(43)),
                "new_room": format!("!{}", "d".repeat(43)),
                "legacy_event": "$1234:agent.finances.tchap.gouv.fr",
                "file": "mxc://agent.finances.tchap.gouv.fr/AbCd_12",
                "ip_server": "@a:[::1]:8448",
                "msgtype": "fr.gouv.note",
                "algorithm": "m.megolm.v1.aes-sha2",
                "m.relates_to": {"rel_type": "m.thread", "event_id": format!("${}", "e".repeat(43))},
            }),
        );
        assert_eq!(msg.event_type, "fr.gouv.note");
        assert_eq!(msg.body, format!("Compte rendu\nligne 1\n{MARKED}"));
        assert_eq!(msg.msgtype, "fr.gouv.note");
    }

    /// Text comes out in the content's document order, not sorted by key (`serde_json`'s `preserve_order`).
    #[test]
    fn text_follows_document_order_not_key_order() {
        let content: Value = serde_json::from_str(r#"{"z": "premier", "a": "second"}"#).unwrap();
        assert_eq!(collect_text(&content).plain, ["premier", "second"]);
    }

    /// Only a whole, well-formed identifier is left out: a sigil in front of prose does not hide it.
    #[test]
    fn prose_that_starts_like_an_identifier_is_text() {
        for text in [
            format!("@tous {MARKED}"),
            format!("#{MARKED}"),
            "@DIFFUSION RESTREINTE:agent.gouv.fr".to_owned(),
            format!("${}", "x".repeat(42)),
            "mxc://server/media id".to_owned(),
            "!court".to_owned(),
            // Python's whitespace includes the information separators, which the regex crate's `\s` does not.
            "@a\u{1F}b:s".to_owned(),
            // Longer than 255 characters: not an identifier, however it is shaped.
            format!("@{}:s", "a".repeat(260)),
        ] {
            assert!(!is_identifier(&text), "{text}");
            assert_eq!(message("fr.gouv.note", json!({ "t": text })).body, text);
        }
    }

    /// The identifier pattern compiles, and whole identifiers of every kind match it.
    #[test]
    fn identifiers_of_every_kind_are_recognised() {
        assert!(IDENTIFIER.is_some());
        for id in [
            "@alice:example.org".to_owned(),
            "#forum:example.org:8448".to_owned(),
            "!room:[2001:db8::1]".to_owned(),
            "$1234:example.org".to_owned(),
            format!("!{}", "d".repeat(43)),
            format!("${}", "e+/_-".repeat(8) + "abc"),
            "mxc://example.org/AbCd_12".to_owned(),
            // The bound is in characters: 255 multi-byte characters still make an identifier.
            format!("@{}:s", "é".repeat(251)),
        ] {
            assert!(is_identifier(&id), "{id}");
        }
    }

    /// A redaction's reason is shown to people; the redacted event id is not text.
    #[test]
    fn redaction_reason_is_text() {
        let msg = message(
            "m.room.redaction",
            json!({"redacts": format!("${}", "f".repeat(43)), "reason": MARKED}),
        );
        assert_eq!(msg.body, MARKED);
    }

    /// Events whose content holds only identifiers, numbers and protocol values: nothing to classify, no message.
    #[test]
    fn events_without_prose_are_not_asked_about() {
        let cases = [
            (
                "m.room.power_levels",
                json!({"users": {"@a:s": 100}, "users_default": 0, "events": {"m.room.name": 50}}),
            ),
            (
                "m.room.canonical_alias",
                json!({"alias": "#a:s", "alt_aliases": ["#b:s"]}),
            ),
            (
                "m.room.avatar",
                json!({"url": "mxc://s/abc", "info": {"mimetype": "image/png", "size": 3, "w": 1, "h": 1}}),
            ),
            (
                "m.room.pinned_events",
                json!({"pinned": [format!("${}", "g".repeat(43))]}),
            ),
            (
                "m.space.child",
                json!({"via": ["agent.finances.tchap.gouv.fr"], "order": "a1", "suggested": true}),
            ),
            (
                "m.poll.response",
                json!({"m.selections": ["a1"], "m.relates_to": {"rel_type": "m.reference", "event_id": "$x:s"}}),
            ),
            (
                "org.matrix.msc3381.poll.response",
                json!({"org.matrix.msc3381.poll.response": {"answers": ["9f2c"]}, "m.relates_to": {"event_id": "$y:s"}}),
            ),
            (
                "org.matrix.msc3401.call.member",
                json!({
                    "application": "m.call",
                    "call_id": "",
                    "scope": "m.room",
                    "device_id": "DEVICE",
                    "expires": 14_400_000,
                    "focus_active": {"type": "livekit", "focus_selection": "oldest_membership"},
                    "foci_preferred": [{"type": "livekit", "livekit_service_url": "https://lk.example"}],
                }),
            ),
            (
                "m.call.invite",
                json!({"call_id": "c1", "party_id": "p", "version": "1", "offer": {"type": "offer", "sdp": "v=0"}}),
            ),
            (
                "m.reaction",
                json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": "$z:s", "key": "  "}}),
            ),
            ("fr.gouv.empty", json!({})),
        ];
        for (event_type, content) in cases {
            assert_eq!(
                message_from_event(event_type, &content),
                None,
                "{event_type}"
            );
        }
    }

    /// An encrypted file's key, IV and hashes, and a blurhash, are not prose.
    #[test]
    fn encrypted_attachment_material_is_not_text() {
        let text = collect_text(&json!({
            "caption": "Photo",
            "file": {
                "url": "mxc://s/m",
                "key": {"kty": "oct", "key_ops": ["encrypt"], "alg": "A256CTR", "k": "qcHVMSgY", "ext": true},
                "iv": "X85+XgHN+HEAAAAAAAAAAA",
                "hashes": {"sha256": "6DisCpOSD5fuk"},
                "v": "v2",
            },
            "info": {"mimetype": "image/jpeg", "xyz.amorgan.blurhash": "LEHV6nWB2yk8"},
        }));
        assert_eq!(text.plain, ["Photo"]);
    }

    /// The same string twice is classified once; order follows the content.
    #[test]
    fn text_is_deduplicated_and_in_document_order() {
        let text = collect_text(&json!({"a": "un", "b": ["deux", "un"], "c": {"d": "trois"}}));
        assert_eq!(text.plain, ["un", "deux", "trois"]);
    }

    /// The same string as plain text and as HTML is kept in both: deduplication is per kind.
    #[test]
    fn deduplication_is_per_kind() {
        let text = collect_text(&json!({"a": "<b>x</b>", "formatted_body": "<b>x</b>"}));
        assert_eq!((text.plain.len(), text.html.len()), (1, 1));
    }

    /// Text nested deeper than `MAX_DEPTH` levels is not read (and the walk says it stopped short).
    #[test]
    fn walk_depth_is_bounded() {
        let mut shallow = json!("visible");
        for _ in 0..MAX_DEPTH - 1 {
            shallow = json!([shallow]);
        }
        let mut deep = json!("cachée");
        for _ in 0..=MAX_DEPTH {
            deep = json!({ "x": deep });
        }
        let text = collect_text(&json!({"a": shallow, "b": deep}));
        assert_eq!(text.plain, ["visible"]);
        assert!(text.truncated);
    }

    /// At most `MAX_VALUES` values are visited; a 64 KiB event cannot hold that many.
    #[test]
    fn walk_values_are_bounded() {
        let mut values = vec![json!(0); MAX_VALUES];
        values.push(json!("après"));
        let text = collect_text(&Value::Array(values));
        assert!(text.plain.is_empty() && text.truncated);

        let mut values = vec![json!(0); MAX_VALUES - 10];
        values.push(json!("avant"));
        let text = collect_text(&Value::Array(values));
        assert_eq!(text.plain, ["avant"]);
        assert!(!text.truncated);
    }

    /// Text, plain and HTML together, stops at roomguard's 65,536 bytes, cut at a character boundary.
    #[test]
    fn text_never_exceeds_what_roomguard_accepts() {
        let big = "é".repeat(20_000); // 40,000 bytes each
        let msg = message(
            "fr.gouv.note",
            json!({"a": big, "b": format!("x{big}"), "formatted_body": format!("<p>{big}</p>")}),
        );
        let total = msg.body.len() + msg.formatted_body.len() + msg.filename.len();
        assert!(total <= MAX_TEXT_BYTES, "{total}");
        assert!(msg.body.starts_with(&big));
        // "a", a newline, then "x" and as many whole "é" as fit before the last byte (kept for a newline): the cut
        // fell inside a two-byte character, which was dropped whole.
        assert_eq!(msg.body.len(), MAX_TEXT_BYTES - 2);
        assert_eq!(msg.formatted_body, "");
    }

    /// Oversized messages (the homeserver refuses them) are cut rather than refused by roomguard as invalid input,
    /// which would be no decision: the marking at the start is still read.
    #[test]
    fn message_fields_are_cut_to_roomguard_limits() {
        let msg = message(
            "m.room.message",
            json!({
                "msgtype": format!("m.{}", "x".repeat(300)),
                "body": format!("{MARKED} {}", "a".repeat(70_000)),
                "formatted_body": "b".repeat(70_000),
                "filename": "c".repeat(10),
                "info": {"mimetype": "d".repeat(300)},
            }),
        );
        assert!(msg.msgtype.len() <= 255 && msg.mimetype.len() <= 255);
        assert!(msg.body.len() + msg.formatted_body.len() + msg.filename.len() <= MAX_TEXT_BYTES);
        assert!(msg.body.starts_with(MARKED));
        let long_type = message(&"x".repeat(300), json!({"t": "texte"}));
        assert_eq!(long_type.event_type.len(), 255);
    }

    /// The budget goes to the body first, then the file name, then the HTML; a cut never splits a character.
    #[test]
    fn build_message_spends_the_budget_in_order() {
        let msg = build_message(Message {
            event_type: "é".repeat(200),
            body: "a".repeat(MAX_TEXT_BYTES - 3),
            filename: "éé".into(),
            formatted_body: "bb".into(),
            ..Message::default()
        });
        assert_eq!(msg.filename, "é");
        assert_eq!(msg.formatted_body, "b");
        assert_eq!(msg.event_type, "é".repeat(127));
    }
}
