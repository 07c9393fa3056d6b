//! The OCR settings of a scan and what OCR did in it: plain values the scan's reader carries, apart from the OCR
//! engine itself (which writes through the reader), so that the two do not depend on each other.

use std::time::{Duration, Instant};

/// The OCR settings of one scan (`media.ocr*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcrLimits {
    /// OCR runs (when Tesseract is available); `false`: pictures are not read and scans that hold some are noted
    /// `unsupported`.
    pub enabled: bool,
    /// Pages (pictures of one PDF page count as one, each image file or frame as one) read per file.
    pub max_pages: u32,
    /// Recognition time per file, from the first recognition; the scan's own deadline comes first.
    pub timeout: Duration,
    /// Pixels of one picture; a larger one is not decoded (`size_limit`): a small compressed file can declare a
    /// picture of billions of pixels.
    pub max_pixels: u64,
}

impl Default for OcrLimits {
    fn default() -> Self {
        OcrLimits {
            enabled: true,
            max_pages: 20,
            timeout: Duration::from_millis(3_000),
            max_pixels: 40_000_000,
        }
    }
}

/// What OCR did in one scan, and when it started (the clock of `media.ocr_timeout_ms`).
#[derive(Debug, Clone, Default)]
pub(crate) struct OcrTally {
    /// Pages read with OCR.
    pub(crate) pages: u32,
    /// Characters of text OCR gave.
    pub(crate) chars: u64,
    /// When the first recognition began: the clock of `media.ocr_timeout_ms`.
    pub(crate) started: Option<Instant>,
}
