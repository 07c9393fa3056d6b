//! `[media]`: the limits of reading an uploaded file (sizes, time, slots, memory, OCR), with the defaults and the
//! checks; the scans get them as [`crate::documents::Limits`] and [`OcrLimits`].

use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::documents::{Limits, OcrLimits, stream::Memory};
use crate::ops::config_error::{ConfigError, positive};

/// `[media]`: the limits of reading an uploaded file (`CheckMediaUpload`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// Bytes of a file read at most; the rest is not read (`size_limit`).
    pub max_bytes: u64,
    /// Characters of text extracted and classified per file.
    pub max_text_chars: u64,
    /// Bytes produced by decompression per file, across archive entries and compressed streams.
    pub max_uncompressed_bytes: u64,
    /// Files inside files read at most this deep; 0 reads none.
    pub max_nesting: u32,
    /// Time budget of one upload, from its first message to the answer.
    pub timeout_ms: u64,
    /// Files scanned at once.
    pub max_concurrent_scans: usize,
    /// Memory one scan may hold: half for the head of the file kept for formats that look back (a zip's central
    /// directory, a PDF's objects), half for the one decompressed part being read. Past the head, text formats are
    /// read forward and the others are decided on the head (`size_limit`). Worst case for all scans:
    /// `max_concurrent_scans` x this.
    pub max_scan_memory_bytes: u64,
    /// Reading pictures (image uploads, scanned PDF pages) with Tesseract.
    pub ocr: OcrMode,
    /// Pages read with OCR per file (pictures of one PDF page count as one).
    pub ocr_max_pages: u32,
    /// OCR time per file, in milliseconds; never past `timeout_ms`.
    pub ocr_timeout_ms: u64,
    /// Pixels of one picture decoded for OCR at most (decompression bombs).
    pub ocr_max_pixels: u64,
}

impl Default for MediaConfig {
    fn default() -> Self {
        let ocr = OcrLimits::default();
        MediaConfig {
            max_bytes: 50 << 20,
            max_text_chars: 10_000_000,
            max_uncompressed_bytes: 256 << 20,
            max_nesting: 4,
            timeout_ms: 4_000,
            max_concurrent_scans: 4,
            max_scan_memory_bytes: 64 << 20,
            ocr: OcrMode::On,
            ocr_max_pages: ocr.max_pages,
            ocr_timeout_ms: u64::try_from(ocr.timeout.as_millis()).unwrap_or(u64::MAX),
            ocr_max_pixels: ocr.max_pixels,
        }
    }
}

impl MediaConfig {
    /// No limit is zero (a zero nesting is allowed: embedded files are then not opened), and a scan has room for a
    /// file's head and one decompressed part.
    pub fn validate(&self) -> Result<(), ConfigError> {
        positive(&[
            ("media.max_bytes", self.max_bytes),
            ("media.max_text_chars", self.max_text_chars),
            ("media.max_uncompressed_bytes", self.max_uncompressed_bytes),
            ("media.timeout_ms", self.timeout_ms),
            (
                "media.max_concurrent_scans",
                self.max_concurrent_scans as u64,
            ),
            ("media.ocr_max_pages", u64::from(self.ocr_max_pages)),
            ("media.ocr_timeout_ms", self.ocr_timeout_ms),
            ("media.ocr_max_pixels", self.ocr_max_pixels),
        ])?;
        if self.max_scan_memory_bytes < 1 << 20 {
            return Err(ConfigError::new(
                "media.max_scan_memory_bytes",
                "at least 1048576 (1 MiB): the head of a file and one decompressed part share it",
            ));
        }
        Ok(())
    }

    /// `timeout_ms` as a duration.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// Bytes of the file kept in memory for formats that look back: half of `max_scan_memory_bytes`.
    pub fn head_bytes(&self) -> u64 {
        self.max_scan_memory_bytes / 2
    }

    /// Bytes one decompressed part (an archive entry, a PDF stream) may take: the other half.
    pub fn part_bytes(&self) -> u64 {
        self.max_scan_memory_bytes - self.head_bytes()
    }

    /// The limits of a scan that must end by `deadline` (an upload's, an audited file's).
    pub fn scan_limits(&self, deadline: Instant) -> Limits {
        Limits {
            max_text_chars: self.max_text_chars,
            max_uncompressed_bytes: self.max_uncompressed_bytes,
            max_nesting: self.max_nesting,
            deadline,
            ocr: self.ocr_limits(),
        }
    }

    /// The memory one scan may hold: `max_scan_memory_bytes`, half for the file's head, half for a decompressed part.
    pub fn scan_memory(&self) -> Memory {
        Memory {
            head_bytes: usize::try_from(self.head_bytes()).unwrap_or(usize::MAX),
            part_bytes: self.part_bytes(),
        }
    }

    /// The OCR limits of each scan.
    pub fn ocr_limits(&self) -> OcrLimits {
        OcrLimits {
            enabled: self.ocr != OcrMode::Off,
            max_pages: self.ocr_max_pages,
            timeout: Duration::from_millis(self.ocr_timeout_ms),
            max_pixels: self.ocr_max_pixels,
        }
    }
}

/// `media.ocr`: whether pictures are read with Tesseract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OcrMode {
    /// Read pictures when Tesseract is installed; without it the server starts, says so, and notes pictures
    /// `unsupported`.
    #[default]
    On,
    /// As `on`, but the server refuses to start without Tesseract: no scanned page is ever let through unread.
    Required,
    /// Never read pictures (they are noted `unsupported`).
    Off,
}

impl OcrMode {
    /// `on`, `required` or `off`, as in the config file and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            OcrMode::On => "on",
            OcrMode::Required => "required",
            OcrMode::Off => "off",
        }
    }
}
