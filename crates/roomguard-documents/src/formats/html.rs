//! HTML files: decoded, then handed whole to the classifier, which renders HTML with its own normalisation (shown
//! and hidden text alike), as it does for HTML messages.

use encoding_rs::Encoding;

use crate::reader::{Reader, Step};

/// How far to look for `<meta charset>`: browsers look in the first 1024 bytes; pages saved by some tools put a
/// long comment first.
const META_WINDOW: usize = 4096;

/// Reads an HTML file.
pub(crate) fn read(reader: &mut Reader<'_>, bytes: &[u8]) -> Step {
    read_as(reader, bytes, encoding(bytes))
}

/// Reads HTML known to be in `encoding` (a window of a file read forward, whose encoding its start told).
pub(crate) fn read_as(reader: &mut Reader<'_>, bytes: &[u8], encoding: &'static Encoding) -> Step {
    let (html, _, _) = encoding.decode(bytes);
    reader.html(&html)
}

/// The encoding of an HTML file: its byte order mark, else its `<meta charset>` (or `http-equiv` content type),
/// else UTF-8 when the bytes are valid UTF-8, else cp1252 (what browsers assume for Latin-1).
pub(crate) fn encoding(bytes: &[u8]) -> &'static Encoding {
    if let Some((encoding, _)) = Encoding::for_bom(bytes) {
        return encoding;
    }
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(META_WINDOW)]).to_ascii_lowercase();
    let declared = head.match_indices("charset").find_map(|(at, _)| {
        let value = head[at + "charset".len()..]
            .trim_start()
            .strip_prefix('=')?;
        let value = value.trim_start().trim_start_matches(['"', '\'']);
        let end = value.find(|c: char| !(c.is_ascii_alphanumeric() || "-_:.".contains(c)))?;
        Encoding::for_label(&value.as_bytes()[..end])
    });
    match declared {
        // A page without a byte order mark is not UTF-16, whatever it says (the HTML standard's rule).
        Some(encoding)
            if encoding != encoding_rs::UTF_16LE && encoding != encoding_rs::UTF_16BE =>
        {
            encoding
        }
        _ if std::str::from_utf8(bytes).is_ok() => encoding_rs::UTF_8,
        _ => encoding_rs::WINDOWS_1252,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The declared charset wins over the UTF-8 guess; a page without declaration falls back on its bytes.
    #[test]
    fn charset_from_meta_or_bytes() {
        assert_eq!(
            encoding(b"<meta charset=\"ISO-8859-1\"><p>caf\xe9"),
            encoding_rs::WINDOWS_1252
        );
        assert_eq!(
            encoding(b"<meta http-equiv=Content-Type content='text/html; charset=utf-8'>"),
            encoding_rs::UTF_8
        );
        assert_eq!(encoding(b"<p>caf\xc3\xa9"), encoding_rs::UTF_8);
        assert_eq!(encoding(b"<p>caf\xe9"), encoding_rs::WINDOWS_1252);
        assert_eq!(encoding(b"\xff\xfe<\0p\0>\0"), encoding_rs::UTF_16LE);
    }

    /// An HTML file is one HTML passage for the classifier, hidden text included.
    #[test]
    fn html_is_handed_to_the_classifier() {
        use super::super::testing::{MARK, fixture, scan};
        use crate::{Format, Passage};
        let scan = scan(&fixture("other/hidden.html"));
        assert_eq!(scan.format, Format::Html);
        assert!(matches!(&scan.passages[..], [Passage::Html(html)] if html.contains(MARK)));
    }
}
