//! The formats read forward (see `documents::stream`): which they are, where a window of one may be cut so that no
//! line (no tag) is cut in two, and how a window is read once the file's start told its encoding.

use encoding_rs::Encoding;

use super::{
    charset::{self, Charset},
    html, plain,
};
use crate::{
    Format,
    reader::{Reader, Step},
};

/// A format read forward, with the encoding its start told.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Forward {
    /// Plain text: windows cut after a line end.
    Text(Charset),
    /// HTML (in an ASCII-compatible encoding): windows cut after a tag's end.
    Html(&'static Encoding),
}

/// How a file of `format` starting with `head` is read forward, or `None` if it must be read whole.
pub(crate) fn forward(format: Format, head: &[u8]) -> Option<Forward> {
    match format {
        Format::Text => charset::detect(head).map(Forward::Text),
        Format::Html => {
            let encoding = html::encoding(head);
            // UTF-16 markup has no single-byte `>` to cut at: read whole.
            encoding
                .is_ascii_compatible()
                .then_some(Forward::Html(encoding))
        }
        _ => None,
    }
}

impl Forward {
    /// Where `window` may be cut: after its last line end (tag end), else at a character boundary.
    pub(crate) fn cut(self, window: &[u8]) -> usize {
        match self {
            Forward::Text(Charset::Utf16Le) => utf16_cut(window, [b'\n', 0]),
            Forward::Text(Charset::Utf16Be) => utf16_cut(window, [0, b'\n']),
            Forward::Text(_) => byte_cut(window, b'\n'),
            Forward::Html(_) => byte_cut(window, b'>'),
        }
    }

    /// Reads one window.
    pub(crate) fn read(self, reader: &mut Reader<'_>, window: &[u8]) -> Step {
        match self {
            Forward::Text(charset) => plain::read_as(reader, window, charset),
            Forward::Html(encoding) => html::read_as(reader, window, encoding),
        }
    }
}

/// After the last `end` byte; without one, before a UTF-8 sequence the window cuts short (the rest comes next).
fn byte_cut(window: &[u8], end: u8) -> usize {
    if let Some(at) = memchr::memrchr(end, window) {
        return at + 1;
    }
    let mut cut = window.len();
    // At most three continuation bytes and their lead byte: back off to the lead of a sequence that may be cut.
    for back in 1..=4.min(window.len()) {
        let byte = window[window.len() - back];
        if byte & 0xC0 != 0x80 {
            let length = match byte {
                0xF0.. => 4,
                0xE0.. => 3,
                0xC0.. => 2,
                _ => 1,
            };
            if back < length {
                cut = window.len() - back;
            }
            break;
        }
    }
    cut
}

/// After the last `newline` code unit at an even offset; without one, at an even length.
fn utf16_cut(window: &[u8], newline: [u8; 2]) -> usize {
    let even = window.len() & !1;
    (0..even)
        .step_by(2)
        .rev()
        .find(|&at| window[at..at + 2] == newline)
        .map_or(even, |at| at + 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A window is cut after its last line end, or before a character it cuts short.
    #[test]
    fn windows_are_cut_between_lines_or_characters() {
        assert_eq!(byte_cut(b"un\ndeux\ntr", b'\n'), 8);
        let e_acute = "abc\u{e9}".as_bytes();
        assert_eq!(
            byte_cut(&e_acute[..4], b'\n'),
            3,
            "a cut é waits for its end"
        );
        assert_eq!(byte_cut(e_acute, b'\n'), 5, "a whole é is read");
        assert_eq!(byte_cut(b"<p>texte</p><p>sui", b'>'), 15);
    }

    /// UTF-16 windows are cut on code units, after a line end when there is one.
    #[test]
    fn utf16_windows_are_cut_on_code_units() {
        let le: Vec<u8> = "ab\ncd".encode_utf16().flat_map(u16::to_le_bytes).collect();
        assert_eq!(utf16_cut(&le, [b'\n', 0]), 6);
        assert_eq!(utf16_cut(&le[..3], [b'\n', 0]), 2);
        let be: Vec<u8> = "ab\ncd".encode_utf16().flat_map(u16::to_be_bytes).collect();
        assert_eq!(utf16_cut(&be, [0, b'\n']), 6);
    }
}
