//! Plain text: UTF-8 (with or without a byte order mark), UTF-16 with a byte order mark, or a single-byte Western
//! code page (see `charset` for when bytes count as text). Each line stays a line: banners are read line by line.

use crate::reader::{Reader, Step};

use super::charset::{self, Charset};

/// Reads a text file, line by line.
pub(crate) fn read(reader: &mut Reader<'_>, bytes: &[u8]) -> Step {
    // Sniffing said text; a file that is not (it cannot happen through `sniff`) has nothing to read.
    let Some(charset) = charset::detect(bytes) else {
        return Ok(());
    };
    read_as(reader, bytes, charset)
}

/// Reads text known to be in `charset` (a window of a file read forward, whose charset its start told).
pub(crate) fn read_as(reader: &mut Reader<'_>, bytes: &[u8], charset: Charset) -> Step {
    let text = charset::decode(bytes, charset);
    for line in text.lines() {
        reader.text(line)?;
        reader.end_paragraph();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{MARK, fixture, has_mark_line, lines, scan};
    use crate::Format;

    /// UTF-16 (with its byte order mark) and Latin-1 text are decoded, line by line.
    #[test]
    fn utf16_and_latin1() {
        let utf16 = scan(&fixture("other/utf16le.txt"));
        assert_eq!(utf16.format, Format::Text);
        assert_eq!(lines(&utf16), vec!["Objet : réunion", MARK]);
        let latin1 = scan(&fixture("other/latin1.txt"));
        assert_eq!(latin1.format, Format::Text);
        assert_eq!(
            lines(&latin1),
            vec!["Objet : réunion du comité", MARK, "À ne pas diffuser."]
        );
    }

    /// UTF-16 big-endian and UTF-8 with a byte order mark are text too.
    #[test]
    fn utf16be_and_utf8_bom() {
        let mut be = vec![0xFE, 0xFF];
        be.extend(MARK.encode_utf16().flat_map(u16::to_be_bytes));
        assert!(has_mark_line(&scan(&be)));
        let bom = format!("\u{FEFF}{MARK}\n");
        assert_eq!(lines(&scan(bom.as_bytes())), vec![MARK]);
    }

    /// An image and random bytes are not text: nothing is read as text (a picture's text is OCR's, and this broken
    /// PNG has none).
    #[test]
    fn binaries_are_not_text() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend_from_slice(MARK.as_bytes());
        let png = scan(&png);
        assert_eq!(png.format, Format::Png);
        assert!(png.passages.is_empty());
        let mut state = 0x9E37_79B9_u32;
        let random: Vec<u8> = (0..10_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state >> 24) as u8
            })
            .collect();
        assert_eq!(scan(&random).format, Format::Unknown);
    }
}
