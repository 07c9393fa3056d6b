//! JSON: the text a reader sees in it is its strings, keys and values alike, decoded (`\u0044IFFUSION` is
//! `DIFFUSION`, a surrogate pair is one character), one string per line, as a spreadsheet's cells are lines.
//! Numbers, `true`, `false` and `null` are not text. A string that is itself JSON (an API's payload encoded twice) is
//! read as a file of its own, one level deeper.
//!
//! Hand-written rather than `serde_json`, for two reasons: a truncated file (cut at `media.max_bytes`) is read as far
//! as it goes instead of failing whole, and nesting costs nothing (strings are found by a single forward pass that
//! keeps no stack, so a million `[` is only a million bytes to skip).

use crate::reader::{Incomplete, Reader, Step};

use super::charset;

/// Tokens a file must start with, all in JSON's grammar, to be sniffed as JSON (when it goes on past the window).
const SNIFF_TOKENS: usize = 2;

/// What the grammar expects next, while sniffing.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A top-level object or array (the first, or the next one of JSON Lines).
    Root,
    /// A value after `:` or `,` in an array.
    Value,
    /// A value or `]`, after `[`.
    ValueOrEnd,
    /// A key after `,` in an object.
    Key,
    /// A key or `}`, after `{`.
    KeyOrEnd,
    /// `:` after a key.
    Colon,
    /// `,` or the end of the container, after a value.
    CommaOrEnd,
}

/// Whether `head` (the start of a text file) follows JSON's grammar, with an object or array at the top (several, one
/// after another, for JSON Lines). A file may end anywhere (it may be cut); `[1] Introduction` and `{ accolade }` are
/// text.
pub(crate) fn looks_like(head: &str) -> bool {
    let mut expect = Expect::Root;
    let mut stack: Vec<u8> = Vec::new();
    let mut tokens = 0usize;
    let bytes = head.trim_start_matches('\u{FEFF}').as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        let b = bytes[at];
        if b.is_ascii_whitespace() {
            at += 1;
            continue;
        }
        tokens += 1;
        let (token, end) = match b {
            b'"' => (b'"', string_end(bytes, at + 1)),
            b'-' | b'0'..=b'9' => {
                let len = bytes[at..]
                    .iter()
                    .take_while(|c| {
                        c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E')
                    })
                    .count();
                (b'0', at + len)
            }
            b't' | b'f' | b'n' => {
                let word: &[u8] = match b {
                    b't' => b"true",
                    b'f' => b"false",
                    _ => b"null",
                };
                let rest = &bytes[at..];
                let len = word.len().min(rest.len());
                // A literal cut by the end of the window is still a literal.
                if rest[..len] != word[..len] {
                    return false;
                }
                (b'0', at + len)
            }
            b'{' | b'}' | b'[' | b']' | b':' | b',' => (b, at + 1),
            _ => return false,
        };
        at = end;
        let top = stack.last().copied();
        expect = match (expect, token) {
            (Expect::Root | Expect::Value | Expect::ValueOrEnd, b'{') => {
                stack.push(b'{');
                Expect::KeyOrEnd
            }
            (Expect::Root | Expect::Value | Expect::ValueOrEnd, b'[') => {
                stack.push(b'[');
                Expect::ValueOrEnd
            }
            (Expect::Value | Expect::ValueOrEnd, b'"' | b'0') => Expect::CommaOrEnd,
            (Expect::Key | Expect::KeyOrEnd, b'"') => Expect::Colon,
            (Expect::Colon, b':') => Expect::Value,
            (Expect::CommaOrEnd, b',') if top == Some(b'{') => Expect::Key,
            (Expect::CommaOrEnd, b',') => Expect::Value,
            (Expect::ValueOrEnd | Expect::CommaOrEnd, b']') if top == Some(b'[') => {
                stack.pop();
                if stack.is_empty() {
                    Expect::Root
                } else {
                    Expect::CommaOrEnd
                }
            }
            (Expect::KeyOrEnd | Expect::CommaOrEnd, b'}') if top == Some(b'{') => {
                stack.pop();
                if stack.is_empty() {
                    Expect::Root
                } else {
                    Expect::CommaOrEnd
                }
            }
            _ => return false,
        };
    }
    tokens >= SNIFF_TOKENS
}

/// Where the string whose content starts at `from` ends (after its closing quote), or the end of `bytes`.
fn string_end(bytes: &[u8], from: usize) -> usize {
    let mut at = from;
    while at < bytes.len() {
        match bytes[at] {
            b'\\' => at += 2,
            b'"' => return at + 1,
            _ => at += 1,
        }
    }
    bytes.len()
}

/// Reads a JSON file: every string, decoded, one per line.
pub(crate) fn read(reader: &mut Reader<'_>, bytes: &[u8]) -> Step {
    let text = match charset::detect(bytes) {
        Some(charset) => charset::decode(bytes, charset),
        None => String::from_utf8_lossy(bytes),
    };
    let mut depth = 0usize;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                let (string, closed) = decode_string(&mut chars);
                emit(reader, &string)?;
                if !closed {
                    reader.note(Incomplete::Corrupt);
                }
            }
            '{' | '[' => depth += 1,
            '}' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    // Containers left open: the file was cut.
    if depth > 0 {
        reader.note(Incomplete::Corrupt);
    }
    Ok(())
}

/// One string's lines; a string that is JSON itself is read as such.
fn emit(reader: &mut Reader<'_>, string: &str) -> Step {
    let trimmed = string.trim_start();
    if (trimmed.starts_with('{') || trimmed.starts_with('[')) && looks_like(trimmed) {
        super::nested(reader, string.as_bytes())?;
        return Ok(());
    }
    for line in string.lines() {
        if !line.trim().is_empty() {
            reader.text(line)?;
            reader.end_paragraph();
        }
    }
    reader.tick()
}

/// Decodes a string whose opening quote was just read; `false` when the text ends before its closing quote.
fn decode_string(chars: &mut std::str::Chars<'_>) -> (String, bool) {
    let mut out = String::new();
    while let Some(c) = chars.next() {
        match c {
            '"' => return (out, true),
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some('b') => out.push('\u{8}'),
                Some('f') => out.push('\u{C}'),
                Some('u') => out.push(unicode_escape(chars)),
                // `\"`, `\\`, `\/`, and any other escaped character as itself.
                Some(other) => out.push(other),
                None => return (out, false),
            },
            c => out.push(c),
        }
    }
    (out, false)
}

/// The character of a `\uXXXX` escape whose `\u` was just read, a surrogate pair joined; a lone surrogate or bad
/// digits give U+FFFD.
fn unicode_escape(chars: &mut std::str::Chars<'_>) -> char {
    let Some(unit) = hex4(chars) else {
        return char::REPLACEMENT_CHARACTER;
    };
    if !(0xD800..0xDC00).contains(&unit) {
        return char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER);
    }
    // A high surrogate: its pair must follow at once.
    let mut ahead = chars.clone();
    if ahead.next() == Some('\\')
        && ahead.next() == Some('u')
        && let Some(low) = hex4(&mut ahead).filter(|low| (0xDC00..0xE000).contains(low))
    {
        *chars = ahead;
        let code = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
        return char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER);
    }
    char::REPLACEMENT_CHARACTER
}

fn hex4(chars: &mut std::str::Chars<'_>) -> Option<u32> {
    let mut ahead = chars.clone();
    let mut value = 0;
    for _ in 0..4 {
        value = value * 16 + ahead.next()?.to_digit(16)?;
    }
    *chars = ahead;
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{MARK, fixture, has_mark_line, lines, scan};
    use crate::Incomplete;

    /// Strings are read decoded, one per line, keys and values: `\u0044IFFUSION \u0052ESTREINTE` is the marking,
    /// a surrogate pair is one character.
    #[test]
    fn escaped_strings_are_decoded() {
        let scan = scan(&fixture("json/escaped_marking.json"));
        assert_eq!(scan.format.as_str(), "json");
        assert_eq!(scan.incomplete, None);
        let lines = lines(&scan);
        assert!(has_mark_line(&scan), "{lines:?}");
        for expected in ["classification", "Réunion budgétaire", "rôle", "\u{1F512}"] {
            assert!(
                lines.contains(&expected.to_owned()),
                "{expected}: {lines:?}"
            );
        }
        assert!(!lines.iter().any(|l| l.contains("false") || l == "17"));
    }

    /// A file cut short is read as far as it goes, its last string too, noted `corrupt`.
    #[test]
    fn truncated_file() {
        let scan = scan(br#"{"titre": "note", "classification": "\u0044IFFUSION RESTREINTE"#);
        assert_eq!(scan.format.as_str(), "json");
        assert_eq!(scan.incomplete, Some(Incomplete::Corrupt));
        assert!(has_mark_line(&scan), "{:?}", lines(&scan));
    }

    /// Nesting a million levels deep costs no stack; a lone surrogate is a replacement character.
    #[test]
    fn deep_nesting_and_lone_surrogates() {
        let mut deep = "[".repeat(1_000_000);
        deep.push_str(&format!("\"{MARK}\""));
        deep.push_str(&"]".repeat(1_000_000));
        let scan_deep = scan(deep.as_bytes());
        assert_eq!(scan_deep.format.as_str(), "json");
        assert!(has_mark_line(&scan_deep));
        let lone = scan(br#"["\ud800x", "\udc00"]"#);
        assert_eq!(lines(&lone), vec!["\u{FFFD}x", "\u{FFFD}"]);
    }

    /// A string that is JSON itself (a payload encoded twice) is read as JSON: its escapes decoded in turn.
    #[test]
    fn json_inside_a_string() {
        let scan = scan(br#"{"payload": "{\"classification\": \"\\u0044IFFUSION RESTREINTE\"}"}"#);
        assert_eq!(scan.format.as_str(), "json");
        assert!(has_mark_line(&scan), "{:?}", lines(&scan));
    }

    /// JSON is told from text by its grammar, not by a first bracket; JSON Lines are JSON.
    #[test]
    fn sniffed_by_its_grammar() {
        assert_eq!(
            scan(b"[1] Introduction\n[2] Budget\n").format.as_str(),
            "text"
        );
        assert_eq!(scan(b"[DR] Note de service\n").format.as_str(), "text");
        assert_eq!(scan(b"{ accolade }\n").format.as_str(), "text");
        assert_eq!(
            scan(b"{\"a\": [1, 2.5e3, true, null]}").format.as_str(),
            "json"
        );
        assert_eq!(scan(b"{\"a\": 1}\n{\"a\": 2}\n").format.as_str(), "json");
    }
}
