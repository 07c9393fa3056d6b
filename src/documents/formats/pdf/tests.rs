//! The PDF reader against the committed fixtures (`tests/fixtures/media/make_pdfs.py`) and hostile files built here.

use std::time::{Duration, Instant};

use crate::documents::reader::Reader;
use crate::documents::{Extraction, Format, Incomplete, Limits};

fn limits() -> Limits {
    Limits {
        max_text_chars: 1_000_000,
        max_uncompressed_bytes: 64 << 20,
        max_nesting: 3,
        deadline: Instant::now() + Duration::from_secs(30),
    }
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/media/pdf/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn extract(bytes: &[u8], limits: &Limits) -> Extraction {
    Reader::scan_as(bytes, Format::Pdf, false, limits)
}

fn text(extraction: &Extraction) -> String {
    extraction
        .passages
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

fn lines(extraction: &Extraction) -> Vec<String> {
    text(extraction)
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// Debug helper.
#[test]
fn dump_all() {
    for name in [
        "stamped.pdf",
        "split-banner.pdf",
        "kerning.pdf",
        "encodings.pdf",
        "form-xobject.pdf",
        "utf16-info.pdf",
        "truetype-subset.pdf",
        "truetype-identity.pdf",
        "properties-only.pdf",
        "encrypted-user.pdf",
        "encrypted-owner-only.pdf",
        "encrypted-owner-only-rc4.pdf",
        "encrypted-owner-only-aes256.pdf",
        "truncated.pdf",
        "libreoffice.pdf",
        "clean.pdf",
    ] {
        let e = extract(&fixture(name), &limits());
        eprintln!(
            "=== {name}: {:?} {} passages\n{}",
            e.incomplete,
            e.passages.len(),
            text(&e).chars().take(600).collect::<String>()
        );
    }
}
