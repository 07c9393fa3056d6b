//! OCR: the text of pictures (image uploads, scanned PDF pages, images inside archives and office files), read with
//! Tesseract so that the classifier sees a stamped scan as it sees a typed document.
//!
//! # Layout
//! [`engine`] calls Tesseract (loaded at run time, French and English models); [`decode`] turns image files into
//! gray pixels within `media.ocr_max_pixels`; [`plan`] decides what to read first: the top and bottom bands of every
//! page, where a protective marking's stamp stands, then the middles while the OCR budget lasts. Extractors hand
//! their pictures over as [`Pictures`]; the text comes back through the scan's [`Reader`], one paragraph per line
//! Tesseract read, so the classifier's banner rules apply to a stamp alone on its line.
//!
//! # Limits
//! `media.ocr_max_pages` pages per file (pictures of one PDF page count as one), `media.ocr_timeout_ms` of
//! recognition per file (never past the scan's own deadline), `media.ocr_max_pixels` per picture, checked from the
//! picture's header before its pixels are allocated.

mod decode;
mod engine;
mod plan;

use std::{sync::OnceLock, time::Instant};

pub(crate) use decode::{decode_jpeg, decode_upload};
pub use engine::limit_openmp_threads;
pub(crate) use plan::read;

pub use super::ocr_settings::OcrLimits;
pub(crate) use super::ocr_settings::OcrTally;
use super::reader::{Reader, Step};

/// Whether this process can read pictures: Tesseract's version, or why not. Tesseract is loaded and one handle is
/// initialised the first time (a few hundred milliseconds, then kept for the first scan); later calls answer at once.
pub fn availability() -> Result<&'static str, &'static str> {
    static PROBE: OnceLock<Result<String, String>> = OnceLock::new();
    match PROBE.get_or_init(engine::probe) {
        Ok(version) => Ok(version),
        Err(why) => Err(why),
    }
}

/// The text Tesseract reads in one 8-bit gray picture (`width` bytes a row), whole, with no budget but `deadline`:
/// what each region of a scan costs, for benchmarks and diagnostics. Scans go through `read`.
pub fn recognize_gray(
    pixels: &[u8],
    width: u32,
    height: u32,
    deadline: Instant,
) -> Result<String, String> {
    let mut session = engine::Session::new().map_err(|e| format!("{e:?}"))?;
    session
        .recognize(
            engine::GrayView {
                pixels,
                width,
                height,
            },
            deadline,
        )
        .map_err(|e| format!("{e:?}"))
}

/// A picture as Tesseract reads it: 8-bit gray, rows top to bottom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Gray {
    pub(crate) width: u32,
    pub(crate) height: u32,
    /// `width * height` bytes, 0 black, 255 white.
    pub(crate) pixels: Vec<u8>,
}

/// The pictures of one file, in reading order. Decoded on demand, and possibly twice (bands first, middles later),
/// so that a long scanned PDF never has all its pages in memory at once.
pub(crate) trait Pictures {
    /// How many pictures the file has.
    fn count(&self) -> usize;
    /// The page picture `index` is on: pictures of one page count as one page against `media.ocr_max_pages`.
    fn page(&self, index: usize) -> usize;
    /// Picture `index` in gray; `None` when it cannot be decoded (the implementation notes why), or when it is
    /// larger than `max_pixels` (noted `size_limit`).
    fn decode(
        &mut self,
        reader: &mut Reader<'_>,
        index: usize,
        max_pixels: u64,
    ) -> Step<Option<Gray>>;
}
