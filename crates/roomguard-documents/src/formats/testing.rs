//! Helpers for the format readers' tests: limits, fixtures, zips built on the spot, and the text of a scan.

use std::io::Write;
use std::time::{Duration, Instant};

use ::zip::write::SimpleFileOptions;

use crate::{Extraction, Limits, OcrLimits, extract};

/// The marking the fixtures carry.
pub(crate) const MARK: &str = "DIFFUSION RESTREINTE";

/// Generous limits, so that only the limit a test is about is reached.
pub(crate) fn limits() -> Limits {
    Limits {
        max_text_chars: 1_000_000,
        max_uncompressed_bytes: 64 * 1024 * 1024,
        max_nesting: 3,
        deadline: Instant::now() + Duration::from_secs(20),
        ocr: OcrLimits::default(),
    }
}

/// A committed fixture under `tests/fixtures/media/`.
pub(crate) fn fixture(path: &str) -> Vec<u8> {
    let full = format!(
        "{}/../../tests/fixtures/media/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// Scans `bytes` with [`limits`].
pub(crate) fn scan(bytes: &[u8]) -> Extraction {
    extract(bytes, false, &limits())
}

/// Every line of every passage, trimmed.
pub(crate) fn lines(extraction: &Extraction) -> Vec<String> {
    extraction
        .passages
        .iter()
        .flat_map(|p| {
            p.as_str()
                .lines()
                .map(|l| l.trim().to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Whether some line of the scan is exactly the marking.
pub(crate) fn has_mark_line(extraction: &Extraction) -> bool {
    lines(extraction).iter().any(|l| l == MARK)
}

/// A zip of `entries`, deflated.
pub(crate) fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    zip_with(entries, ::zip::CompressionMethod::Deflated)
}

/// A zip of `entries`, stored or deflated.
pub(crate) fn zip_with(entries: &[(&str, &[u8])], method: ::zip::CompressionMethod) -> Vec<u8> {
    let mut writer = ::zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(method);
    for (name, data) in entries {
        writer.start_file(*name, options).unwrap();
        writer.write_all(data).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// A minimal Office Open XML package: content types plus `parts`.
pub(crate) fn package(main: &str, parts: &[(&str, &str)]) -> Vec<u8> {
    let types = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Override PartName="/{main}" ContentType="application/xml"/></Types>"#
    );
    let mut entries: Vec<(&str, &[u8])> = vec![("[Content_Types].xml", types.as_bytes())];
    entries.extend(parts.iter().map(|(name, xml)| (*name, xml.as_bytes())));
    zip(&entries)
}

/// Stops a test that needs OCR with what to install, rather than letting it pass or fail for a missing package.
pub(crate) fn require_tesseract() {
    if let Err(why) = crate::ocr_availability() {
        panic!(
            "this test reads pictures with Tesseract, which cannot be used here ({why}): install it with \
             `apt-get install tesseract-ocr tesseract-ocr-fra` (scripts/test does)"
        );
    }
}
