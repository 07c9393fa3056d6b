//! Whether bytes are text, and in which encoding: for plain text, HTML and sniffing alike.
//!
//! UTF-8 (a last character cut by truncation is allowed) and UTF-16 with a byte order mark are taken as they are.
//! Anything else is text only when it looks like text in a single-byte Western code page (read as cp1252, which
//! is Latin-1 with printable characters in 0x80-0x9F): no NUL byte, at most 1% control characters, and at least
//! 70% printable ASCII. Western European text (French included) is over 90% ASCII; random or compressed bytes are
//! about 37% printable ASCII and almost always hold a NUL within a few hundred bytes; binaries are full of
//! control bytes. So a binary file is never taken for Latin-1 text.

use std::borrow::Cow;

/// How much of a file is looked at to decide whether it is text.
const SAMPLE: usize = 64 * 1024;

/// An encoding of text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Charset {
    /// UTF-8, with or without a byte order mark.
    Utf8,
    /// UTF-16 little-endian, with a byte order mark.
    Utf16Le,
    /// UTF-16 big-endian, with a byte order mark.
    Utf16Be,
    /// A single-byte Western code page, read as cp1252.
    Latin1,
}

/// The encoding of `bytes` if they are text.
pub(crate) fn detect(bytes: &[u8]) -> Option<Charset> {
    if bytes.starts_with(&[0xFF, 0xFE]) && !bytes.starts_with(&[0xFF, 0xFE, 0, 0]) {
        return Some(Charset::Utf16Le);
    }
    if bytes.starts_with(&[0xFE, 0xFF]) {
        return Some(Charset::Utf16Be);
    }
    let sample = &bytes[..bytes.len().min(SAMPLE)];
    if !few_controls(sample) {
        return None;
    }
    // Judged on the sample: a long UTF-8 file with one bad byte further on is still UTF-8 (decoded with a
    // replacement character there), not cp1252 that would garble every accent.
    if is_utf8(sample) {
        return Some(Charset::Utf8);
    }
    let ascii = sample
        .iter()
        .filter(|&&b| (0x20..0x7F).contains(&b) || matches!(b, b'\t' | b'\n' | b'\r'))
        .count();
    (ascii * 10 >= sample.len() * 7).then_some(Charset::Latin1)
}

/// Valid UTF-8, but for a last character cut short (by truncation or by the end of the sample).
fn is_utf8(bytes: &[u8]) -> bool {
    match std::str::from_utf8(bytes) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    }
}

/// No NUL and at most 1% C0 control characters other than whitespace and escape.
fn few_controls(sample: &[u8]) -> bool {
    let mut controls = 0usize;
    for &b in sample {
        match b {
            0 => return false,
            b'\t' | b'\n' | 0x0B | 0x0C | b'\r' | 0x1B => {}
            0x01..=0x1F | 0x7F => controls += 1,
            _ => {}
        }
    }
    controls * 100 <= sample.len()
}

/// `bytes` as text in `charset` (a byte order mark removed, undecodable bytes replaced).
pub(crate) fn decode(bytes: &[u8], charset: Charset) -> Cow<'_, str> {
    let encoding = match charset {
        Charset::Utf8 => encoding_rs::UTF_8,
        Charset::Utf16Le => encoding_rs::UTF_16LE,
        Charset::Utf16Be => encoding_rs::UTF_16BE,
        Charset::Latin1 => encoding_rs::WINDOWS_1252,
    };
    encoding.decode_with_bom_removal(bytes).0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// French text in Latin-1 is text; random bytes and binaries are not.
    #[test]
    fn latin1_text_is_told_from_binary() {
        let french =
            b"Diffusion restreinte: ne pas communiquer \xe0 des tiers. R\xe9sum\xe9 \xe9t\xe9.\n";
        assert_eq!(detect(french), Some(Charset::Latin1));
        let mut state = 0x2545_F491_u32;
        let random: Vec<u8> = (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state >> 24) as u8
            })
            .collect();
        assert_eq!(detect(&random), None);
        assert_eq!(detect(b"\x7fELF\x02\x01\x01\0\0\0"), None);
    }

    /// UTF-8 cut in the middle of a character is still UTF-8 text.
    #[test]
    fn truncated_utf8_is_text() {
        let text = "Diffusion restreinte \u{e9}".as_bytes();
        assert_eq!(detect(&text[..text.len() - 1]), Some(Charset::Utf8));
    }
}
