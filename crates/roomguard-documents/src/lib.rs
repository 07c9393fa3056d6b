//! Reading the documents users upload: which format a file really is (from its bytes, never its name or declared
//! type) and the text a reader would see in it, within limits, so that the classifier can look for markings.
//!
//! Every extractor writes through one `reader::Reader`, which holds the limits of one scan (text characters,
//! uncompressed bytes, nesting, the deadline) and stops the scan when one is reached: a hostile file gets an answer
//! ([`Extraction::incomplete`] says why it is partial), never a crash, a hang or unbounded memory. What was read
//! before a limit was reached is kept: a marking found there still counts.
//!
//! A crate of its own, usable alone: nothing here knows roomguard's policy, protobuf or the network. The decision
//! core (`roomguard-core`) looks for markings in the passages it returns.
//!
//! # Example
//!
//! The text of an HTML page, read within limits (the same function reads a PDF, a `.docx` or a zip of them):
//!
//! ```
//! use std::time::{Duration, Instant};
//! use roomguard_documents::{Format, Limits, OcrLimits, extract};
//!
//! let page = b"<!DOCTYPE html><html><body><p>DIFFUSION RESTREINTE</p><p>Note de service</p></body></html>";
//! let limits = Limits {
//!     max_text_chars: 1_000_000,
//!     max_uncompressed_bytes: 64 << 20,
//!     max_nesting: 3,
//!     deadline: Instant::now() + Duration::from_secs(2),
//!     ocr: OcrLimits { enabled: false, ..OcrLimits::default() },
//! };
//!
//! let extraction = extract(page, false, &limits);
//! assert_eq!(extraction.format, Format::Html);
//! assert_eq!(extraction.incomplete, None);
//! let text: Vec<&str> = extraction.passages.iter().map(|p| p.as_str()).collect();
//! assert!(text.concat().contains("DIFFUSION RESTREINTE"));
//! ```

mod format;
mod formats;
mod ocr;
mod ocr_settings;
pub(crate) mod reader;
pub mod stream;

pub use format::Format;
pub use ocr::{OcrLimits, availability as ocr_availability, limit_openmp_threads, recognize_gray};
pub use reader::{Extraction, Incomplete, Limits, Passage, Watch};

/// Reads `bytes` (the first bytes of the file; `truncated` when the file went on past `media.max_bytes`) within
/// `limits`, and returns its format and text.
pub fn extract(bytes: &[u8], truncated: bool, limits: &Limits) -> Extraction {
    formats::scan_as(bytes, formats::sniff(bytes), truncated, limits)
}

/// The format of `bytes`, from their content alone (what [`extract`] reports, without reading the text).
pub fn sniff(bytes: &[u8]) -> Format {
    formats::sniff(bytes)
}
