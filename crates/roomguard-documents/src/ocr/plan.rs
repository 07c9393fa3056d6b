//! What is read first: the stamp's bands of every page, then the middles while the budget lasts.
//!
//! A protective marking on paper is a stamp or a banner at the top or the bottom of each page, in large capitals;
//! the middle of the page is the body, long to read and rarely where the marking is. So the first pass reads the top
//! and bottom bands ([`BAND`] of the height each) of every page up to `media.ocr_max_pages`, and only the second
//! pass reads the middles, while `media.ocr_timeout_ms` lasts. A small picture (under [`WHOLE_BELOW`] pixels: a
//! photo of a label, a screenshot of a line) is read whole in the first pass. Regions overlap by [`OVERLAP`] of the
//! height, so that a line of text cut by one region's edge is whole in the next.

use std::time::Instant;

use super::{
    Gray, OcrTally, Pictures,
    engine::{EngineError, GrayView, Session},
};
use crate::reader::{Incomplete, Reader, Step};

/// Height of the top and of the bottom band, as a fraction of the picture's.
const BAND: f64 = 0.20;
/// How far regions overlap, as a fraction of the height: more than a line of body text at any resolution (11 pt is
/// 1.3 % of an A4 page's height).
const OVERLAP: f64 = 0.02;
/// Pictures with fewer pixels are read whole at once (1.5 Mpx: a 150 dpi half page, a phone's screenshot).
const WHOLE_BELOW: u64 = 1_500_000;
/// Pictures narrower or shorter than this hold no readable text (icons, rules, spacers) and are skipped.
const MIN_SIDE: u32 = 16;

/// Rows `top..top + height` of a picture, full width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rows {
    top: u32,
    height: u32,
}

/// What is left to read of a picture after the first pass.
#[derive(Debug, Clone, Copy)]
struct Middle {
    index: usize,
    rows: Rows,
}

/// Reads `pictures` into `reader`: every picture's bands first, then the middles (see the module documentation).
/// A picture that cannot be read, and the pages or the time that ran out, are noted on the scan; the scan goes on.
pub(crate) fn read(reader: &mut Reader<'_>, pictures: &mut dyn Pictures) -> Step {
    if pictures.count() == 0 {
        return Ok(());
    }
    let limits = reader.limits().ocr.clone();
    if !limits.enabled || super::availability().is_err() {
        reader.note(Incomplete::Unsupported);
        return Ok(());
    }
    let mut middles = Vec::new();
    // The last picture decoded, kept for its middle: a single image is then decoded once.
    let mut held: Option<(usize, Gray)> = None;
    let mut last_page = None;
    for index in 0..pictures.count() {
        reader.check_clock()?;
        let page = pictures.page(index);
        if last_page != Some(page) && reader.ocr_tally().pages >= limits.max_pages {
            reader.note(Incomplete::SizeLimit);
            break;
        }
        let Some(picture) = pictures.decode(reader, index, limits.max_pixels)? else {
            continue;
        };
        if picture.width < MIN_SIDE || picture.height < MIN_SIDE {
            continue;
        }
        if last_page != Some(page) {
            last_page = Some(page);
            reader.ocr_tally().pages += 1;
        }
        let (first, middle) = regions(&picture);
        if !recognize(reader, &picture, &first)? {
            return Ok(());
        }
        if let Some(rows) = middle {
            middles.push(Middle { index, rows });
        }
        held = Some((index, picture));
    }
    for Middle { index, rows } in middles {
        reader.check_clock()?;
        let picture = match held.take_if(|(held_index, _)| *held_index == index) {
            Some((_, picture)) => picture,
            None => match pictures.decode(reader, index, limits.max_pixels)? {
                Some(picture) => picture,
                None => continue,
            },
        };
        if !recognize(reader, &picture, &[rows])? {
            return Ok(());
        }
    }
    Ok(())
}

/// The regions of the first pass, and the middle left for the second (none for a picture read whole).
fn regions(picture: &Gray) -> (Vec<Rows>, Option<Rows>) {
    let height = picture.height;
    let pixels = u64::from(picture.width) * u64::from(height);
    if pixels < WHOLE_BELOW {
        return (vec![Rows { top: 0, height }], None);
    }
    let at = |fraction: f64| (f64::from(height) * fraction).round() as u32;
    let band = at(BAND + OVERLAP);
    let top = Rows {
        top: 0,
        height: band,
    };
    let bottom = Rows {
        top: height - band,
        height: band,
    };
    let middle_top = at(BAND);
    let middle = Rows {
        top: middle_top,
        height: height - 2 * middle_top,
    };
    (vec![top, bottom], Some(middle))
}

/// Reads `regions` of `picture` into the scan, one paragraph per line. `false` when OCR must stop for this scan
/// (its time is up, or Tesseract cannot be used), with the reason noted.
fn recognize(reader: &mut Reader<'_>, picture: &Gray, regions: &[Rows]) -> Step<bool> {
    let mut session = match Session::new() {
        Ok(session) => session,
        Err(err) => return Ok(give_up(reader, &err)),
    };
    for rows in regions {
        let width = picture.width as usize;
        let start = rows.top as usize * width;
        let end = (rows.top as usize + rows.height as usize) * width;
        let Some(pixels) = picture.pixels.get(start..end) else {
            continue;
        };
        let view = GrayView {
            pixels,
            width: picture.width,
            height: rows.height,
        };
        let deadline = deadline(reader);
        let text = match session.recognize(view, deadline) {
            Ok(text) => text,
            Err(EngineError::Failed) => {
                reader.note(Incomplete::Unsupported);
                continue;
            }
            Err(err) => return Ok(give_up(reader, &err)),
        };
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            reader.text(line)?;
            reader.end_paragraph();
            reader.ocr_tally().chars += line.chars().count() as u64;
        }
    }
    reader.close_passage();
    Ok(true)
}

/// When this scan's recognition must end: `media.ocr_timeout_ms` after its first recognition, or the scan's own
/// deadline if that comes first.
fn deadline(reader: &mut Reader<'_>) -> Instant {
    let limits = reader.limits();
    let tally: &mut OcrTally = reader.ocr_tally();
    let started = *tally.started.get_or_insert_with(Instant::now);
    (started + limits.ocr.timeout).min(limits.deadline)
}

/// Notes why OCR stops for this scan; always `false` (stop).
fn give_up(reader: &mut Reader<'_>, err: &EngineError) -> bool {
    match err {
        EngineError::OutOfTime => reader.note(Incomplete::TimeLimit),
        EngineError::Unavailable(_) | EngineError::Failed => reader.note(Incomplete::Unsupported),
    }
    false
}
