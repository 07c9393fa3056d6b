//! Pictures (PNG, JPEG, TIFF, WebP, GIF): a photo or a scan of a page, whose only text is what OCR reads in it.
//!
//! The picture shown is read: a GIF's or an animated WebP's first frame, a TIFF's first page (the page a viewer
//! opens on, and the one a stamped scan carries its marking on like every other).

use crate::{
    Format,
    ocr::{self, Gray, Pictures},
    reader::{Reader, Step},
};

/// Reads the text of a picture file with OCR.
pub(crate) fn read(reader: &mut Reader<'_>, format: Format, bytes: &[u8]) -> Step {
    ocr::read(reader, &mut Picture { format, bytes })
}

/// One picture file, decoded when OCR asks for it.
struct Picture<'a> {
    format: Format,
    bytes: &'a [u8],
}

impl Pictures for Picture<'_> {
    fn count(&self) -> usize {
        1
    }

    fn page(&self, _index: usize) -> usize {
        0
    }

    fn decode(
        &mut self,
        reader: &mut Reader<'_>,
        _index: usize,
        max_pixels: u64,
    ) -> Step<Option<Gray>> {
        ocr::decode_upload(reader, self.format, self.bytes, max_pixels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        Incomplete, extract,
        formats::testing::{MARK, fixture, has_mark_line, limits, lines, require_tesseract, scan},
    };

    /// A stamped memo scanned at 150 or 300 dpi, straight or fed 2 degrees askew, as PNG or JPEG: OCR reads the stamp
    /// as a line of its own, and the scan says it came from one page of OCR.
    #[test]
    fn a_stamped_scan_is_read() {
        require_tesseract();
        for (name, format) in [
            ("stamped-150dpi.png", Format::Png),
            ("stamped-150dpi.jpg", Format::Jpeg),
            ("stamped-300dpi.png", Format::Png),
            ("stamped-300dpi.jpg", Format::Jpeg),
            ("stamped-skewed-300dpi.png", Format::Png),
            ("stamped-skewed-300dpi.jpg", Format::Jpeg),
        ] {
            let scan = scan(&fixture(&format!("scan/{name}")));
            assert_eq!(scan.format, format, "{name}");
            assert!(has_mark_line(&scan), "{name}: {:?}", lines(&scan));
            assert_eq!(scan.ocr_pages, 1, "{name}");
            assert!(scan.ocr_chars >= MARK.len() as u64, "{name}");
            assert_eq!(scan.incomplete, None, "{name}");
        }
    }

    /// A clean scanned page gives its body text and no marking; a photo gives no text and is complete.
    #[test]
    fn clean_pages_and_photos() {
        require_tesseract();
        let clean = scan(&fixture("scan/clean-150dpi.png"));
        assert!(!has_mark_line(&clean));
        let text = lines(&clean).join("\n");
        assert!(text.contains("renouveler le contrat"), "{text}");
        assert_eq!(clean.incomplete, None);
        let photo = scan(&fixture("scan/photo.jpg"));
        assert_eq!(photo.format, Format::Jpeg);
        assert_eq!((photo.ocr_pages, photo.incomplete), (1, None));
        assert!(photo.ocr_chars < 10, "{:?}", lines(&photo));
    }

    /// With `media.ocr = "off"` a picture is not read, and the scan says its text could not be.
    #[test]
    fn ocr_off_notes_pictures_unsupported() {
        let mut off = limits();
        off.ocr.enabled = false;
        let scan = extract(&fixture("scan/stamped-150dpi.png"), false, &off);
        assert_eq!(scan.format, Format::Png);
        assert!(scan.passages.is_empty());
        assert_eq!(scan.incomplete, Some(Incomplete::Unsupported));
        assert_eq!((scan.ocr_pages, scan.ocr_chars), (0, 0));
    }
}
