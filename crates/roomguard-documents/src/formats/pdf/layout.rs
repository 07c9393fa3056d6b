//! Lines rebuilt from where text stands on the page, not from the order it is drawn in.
//!
//! Producers draw text in any order: a stamping tool adds its banner after the body, a layout program draws the
//! second word of a title before the first, a banner can be drawn one glyph at a time from its last letter to its
//! first, a report generator draws a page bottom up, and a two-column document may be drawn a line of each column
//! at a time. So the interpreter hands every string it shows to a [`Layout`] with where it starts and ends, and the
//! layout writes the text once the content stream has been read:
//! 1. a string drawn where the one before it ended (the same text object, moved only by advances and `TJ`
//!    kerning) joins it, with a space where the gap is a word space (a fifth of an em: TeX writes word spaces as
//!    kerning of about -333, letter kerning stays well under -200). Such a place is computed from the glyph widths,
//!    which a subset font or a damaged file may get wrong, so the joined piece is never sorted apart: only places
//!    the file states (`Td`, `Tm`, a new text object) are ordered by position;
//! 2. pieces are grouped by direction (upright text; text drawn upwards on a page shown turned by `/Rotate`; a
//!    diagonal watermark), each group read in its own frame;
//! 3. pieces on one baseline make a line, read left to right, with the same word-space rule. A baseline within half
//!    the font size continues the line, but half of the smaller size when the two sizes are far apart, so that a
//!    watermark in large letters does not swallow the lines it crosses. A piece drawn again a fraction of a point
//!    away (a shadow, a bold faked by overprinting) is read once, so `SECRET` stays alone on its line;
//! 4. the lines are cut into blocks by recursive XY cuts: the widest empty band across a block, horizontal (between
//!    lines) or vertical (a gutter between columns), splits it, and a block that cannot be cut reads top to bottom.
//!    Two columns thus read one after the other rather than interleaved, while a banner above them stays one line:
//!    a horizontal gap of a blank line or more is cut before any gutter. A vertical cut is only made where, on each
//!    side, text on at least two lines stands beside text of the other side and the lines are a column's width: a
//!    gutter, not the gap between the halves of one banner, nor between a table's cells (read row by row).
//!
//! What a layout holds is bounded: past [`MAX_PIECES`] pieces or [`MAX_TEXT_BYTES`] of text it is written out and
//! starts again, and the cutting stops at [`MAX_CUT_SEGMENTS`] line segments or [`MAX_CUT_WORK`] steps, leaving
//! lines top to bottom; every sort is `O(n log n)`.

use std::ops::Range;

use crate::reader::{Incomplete, Reader, Step, Stop};

/// A gap wider than this fraction of the font size is a word space.
const WORD_GAP: f32 = 0.2;
/// A baseline within this fraction of the font size of a line's continues it.
const LINE_SHIFT: f32 = 0.5;
/// Font sizes further apart than this ratio are measured by the smaller one for [`LINE_SHIFT`].
const FAR_SIZES: f32 = 2.0;
/// Pieces of one line further apart than this fraction of the font size are separate segments, between which a
/// vertical cut (a column gutter) may pass: LaTeX's two-column gutter is one em, Word's about three.
const GUTTER: f32 = 0.8;
/// A vertical cut needs text beside text of the other side on at least this many lines on each side.
const MIN_BESIDE: usize = 2;
/// A column's lines are this many ems wide (half of them at least): narrower ones beside each other are the cells of
/// a table, a form's labels and values, a table of contents' numbers and titles, read row by row.
const MIN_COLUMN_WIDTH: f32 = 8.0;
/// A horizontal gap this many times the font size (a blank line or more: a banner standing apart, a heading across
/// the columns) is cut before any gutter, however wide the gutter; narrower ones (line spacing) only when no gutter
/// is wider.
const SECTION_GAP: f32 = 1.0;
/// Horizontal gaps this close to the widest one are cut at once (lines of uniform spacing in one step).
const SAME_GAP: f32 = 0.95;
/// Directions closer than this cosine (about one degree) are one frame.
const SAME_DIRECTION: f32 = 0.999_85;
/// Text drawn again within this fraction of the font size of the same text is an overprint.
const OVERPRINT: f32 = 0.1;
/// Earlier pieces of a line compared with each one for an overprint.
const OVERPRINT_LOOKBACK: usize = 4;
/// Above the baseline, the part of the font size a line's box covers; below it, [`DESCENT`].
const ASCENT: f32 = 0.8;
const DESCENT: f32 = 0.2;

/// Pieces held before they are written out (a page drawn with more is laid out in parts).
const MAX_PIECES: usize = 100_000;
/// Text held before it is written out.
const MAX_TEXT_BYTES: usize = 4 << 20;
/// Directions told apart in one layout; more (text along a curve) join the last one.
const MAX_DIRECTIONS: usize = 32;
/// Line segments above which a page is not cut into blocks (its lines read top to bottom).
const MAX_CUT_SEGMENTS: usize = 4096;
/// Segments visited while cutting, across all blocks of one layout.
const MAX_CUT_WORK: usize = 1 << 18;
/// Candidate gutters tested in one block, widest first.
const MAX_GUTTER_TRIES: usize = 3;

/// Where a piece of text is drawn, in device space.
#[derive(Clone, Copy, Debug)]
pub(super) struct Placement {
    /// The origin of its first glyph on the baseline (text rise left out).
    pub(super) start: (f32, f32),
    /// Where the pen stands after its last glyph.
    pub(super) end: (f32, f32),
    /// Unit vector of the baseline.
    pub(super) dir: (f32, f32),
    /// The font size, as drawn.
    pub(super) size: f32,
    /// It starts where the piece before it ended (same text object, moved only by advances and `TJ` kerning).
    pub(super) continues: bool,
}

struct Piece {
    text: Range<usize>,
    at: Placement,
}

/// The text of one content stream waiting to be laid out.
#[derive(Default)]
pub(super) struct Layout {
    text: String,
    pieces: Vec<Piece>,
}

/// A piece in its direction's frame: `u` along the baseline, `v` across it (up).
struct Placed {
    piece: usize,
    u0: f32,
    u1: f32,
    v: f32,
    size: f32,
}

/// Consecutive pieces of one line with no gutter-wide gap between them.
struct Segment {
    line: usize,
    pieces: Range<usize>,
    u0: f32,
    u1: f32,
    top: f32,
    bottom: f32,
    size: f32,
}

impl Layout {
    /// Adds a piece of text drawn at `at`.
    pub(super) fn push(&mut self, reader: &mut Reader<'_>, text: &str, at: Placement) -> Step {
        if self.pieces.len() >= MAX_PIECES || self.text.len() >= MAX_TEXT_BYTES {
            self.write(reader)?;
        }
        let finite = |(x, y): (f32, f32)| {
            if x.is_finite() && y.is_finite() {
                (x, y)
            } else {
                (0.0, 0.0)
            }
        };
        let at = Placement {
            start: finite(at.start),
            end: finite(at.end),
            size: if at.size.is_finite() { at.size } else { 1.0 },
            ..at
        };
        // A piece that continues the last one is one with it: its place is only as good as the widths measured, so
        // it is never sorted apart from the text it follows (kerning inside a `TJ` decides its word spaces here).
        if at.continues
            && let Some(last) = self.pieces.last_mut()
            && let (dx, dy) = last.at.dir
            && at.dir.0 * dx + at.dir.1 * dy >= SAME_DIRECTION
        {
            let along = |(x, y): (f32, f32)| x * dx + y * dy;
            let gap = along(at.start) - along(last.at.end);
            let em = last.at.size.max(at.size);
            // Drawn backwards by more than an em (right to left by kerning): placed on its own.
            if gap >= -em {
                if gap > WORD_GAP * em
                    && !self.text.ends_with(char::is_whitespace)
                    && !text.starts_with(char::is_whitespace)
                {
                    self.text.push(' ');
                }
                self.text.push_str(text);
                last.text.end = self.text.len();
                last.at.end = at.end;
                last.at.size = em;
                return Ok(());
            }
        }
        let from = self.text.len();
        self.text.push_str(text);
        self.pieces.push(Piece {
            text: from..self.text.len(),
            at,
        });
        Ok(())
    }

    /// Writes the text held, one paragraph per line, and empties the layout. Text past the deadline is still
    /// written (it is already read, and bounded); the scan's `time_limit` is returned after it.
    pub(super) fn write(&mut self, reader: &mut Reader<'_>) -> Step {
        let mut late = Ok(());
        let written = self.write_lines(reader, &mut late);
        self.text.clear();
        self.pieces.clear();
        written.and(late)
    }

    fn write_lines(&self, reader: &mut Reader<'_>, late: &mut Step) -> Step {
        let mut line = String::new();
        for (frame, members) in self.directions() {
            let placed = self.place(frame, &members);
            let lines = baselines(&placed, |p| self.piece_text(p));
            let segments = segments(&placed, &lines);
            for mut block in blocks(&segments) {
                block.sort_by(|&a, &b| {
                    let (a, b) = (&segments[a], &segments[b]);
                    a.line
                        .cmp(&b.line)
                        .then(a.pieces.start.cmp(&b.pieces.start))
                });
                let mut current = None;
                // Where the line's text so far ends, and the size it was drawn at.
                let mut pen: Option<(f32, f32)> = None;
                for s in block {
                    let segment = &segments[s];
                    if current != Some(segment.line) {
                        flush(reader, &mut line, late)?;
                        current = Some(segment.line);
                        pen = None;
                    }
                    for &p in &lines[segment.line][segment.pieces.clone()] {
                        let placed = &placed[p];
                        let text = self.piece_text(placed.piece);
                        if let Some((end, size)) = pen {
                            let em = size.max(placed.size);
                            let gap = placed.u0 - end;
                            if (gap > WORD_GAP * em || gap < -em)
                                && !line.ends_with(char::is_whitespace)
                                && !text.starts_with(char::is_whitespace)
                            {
                                line.push(' ');
                            }
                        }
                        line.push_str(text);
                        let end = pen.map_or(placed.u1, |(end, _)| end.max(placed.u1));
                        pen = Some((end, placed.size));
                    }
                }
                flush(reader, &mut line, late)?;
            }
        }
        Ok(())
    }

    fn piece_text(&self, piece: usize) -> &str {
        self.pieces
            .get(piece)
            .and_then(|p| self.text.get(p.text.clone()))
            .unwrap_or_default()
    }

    /// The pieces grouped by direction, each group with its frame, in the order each direction first appears.
    fn directions(&self) -> Vec<((f32, f32), Vec<usize>)> {
        let mut groups: Vec<((f32, f32), Vec<usize>)> = Vec::new();
        let mut last = 0;
        for (i, piece) in self.pieces.iter().enumerate() {
            let (dx, dy) = piece.at.dir;
            let found = groups
                .iter()
                .position(|((fx, fy), _)| dx * fx + dy * fy >= SAME_DIRECTION);
            let group = match found {
                Some(g) => g,
                None if groups.len() < MAX_DIRECTIONS => {
                    groups.push(((dx, dy), Vec::new()));
                    groups.len() - 1
                }
                None => last,
            };
            if let Some((_, members)) = groups.get_mut(group) {
                members.push(i);
            }
            last = group;
        }
        groups
    }

    /// The pieces of one direction group in its frame.
    fn place(&self, (dx, dy): (f32, f32), members: &[usize]) -> Vec<Placed> {
        let along = |(x, y): (f32, f32)| x * dx + y * dy;
        let across = |(x, y): (f32, f32)| y * dx - x * dy;
        members
            .iter()
            .filter_map(|&i| {
                let at = &self.pieces.get(i)?.at;
                let (start, end) = (along(at.start), along(at.end));
                Some(Placed {
                    piece: i,
                    u0: start.min(end),
                    u1: start.max(end),
                    v: across(at.start),
                    size: at.size,
                })
            })
            .collect()
    }
}

/// Writes the line being built as a paragraph. A `time_limit` is remembered in `late` and writing goes on; any
/// other stop ends it.
fn flush(reader: &mut Reader<'_>, line: &mut String, late: &mut Step) -> Step {
    let text = line.trim();
    if !text.is_empty() {
        match reader.text(text) {
            Ok(()) => {}
            Err(Stop(Incomplete::TimeLimit)) => *late = Err(Stop(Incomplete::TimeLimit)),
            Err(stop) => {
                line.clear();
                return Err(stop);
            }
        }
        reader.end_paragraph();
    }
    line.clear();
    Ok(())
}

/// How far apart two baselines of pieces of sizes `a` and `b` may be and still be one line.
fn line_tolerance(a: f32, b: f32) -> f32 {
    let (small, large) = (a.min(b), a.max(b));
    if large > FAR_SIZES * small {
        LINE_SHIFT * small
    } else {
        LINE_SHIFT * large
    }
}

/// The lines: pieces on one baseline, top line first, each line's pieces left to right (drawing order where they
/// start at the same place), overprints left out.
fn baselines<'t>(placed: &[Placed], text: impl Fn(usize) -> &'t str) -> Vec<Vec<usize>> {
    let mut by_height: Vec<usize> = (0..placed.len()).collect();
    // Stable: pieces at one height keep their drawing order.
    by_height.sort_by(|&a, &b| placed[b].v.total_cmp(&placed[a].v));
    let mut lines: Vec<Vec<usize>> = Vec::new();
    // The baseline and size of the largest piece of the current line.
    let mut reference: Option<(f32, f32)> = None;
    for p in by_height {
        let piece = &placed[p];
        match (reference, lines.last_mut()) {
            (Some((v, size)), Some(line))
                if (v - piece.v).abs() <= line_tolerance(size, piece.size) =>
            {
                line.push(p);
                if piece.size > size {
                    reference = Some((piece.v, piece.size));
                }
            }
            _ => {
                lines.push(vec![p]);
                reference = Some((piece.v, piece.size));
            }
        }
    }
    for line in &mut lines {
        line.sort_by(|&a, &b| placed[a].u0.total_cmp(&placed[b].u0));
        let mut kept: Vec<usize> = Vec::with_capacity(line.len());
        for &p in line.iter() {
            let piece = &placed[p];
            let overprint = kept.iter().rev().take(OVERPRINT_LOOKBACK).any(|&k| {
                let other = &placed[k];
                let near = OVERPRINT * piece.size.max(other.size);
                // Without a width the reader cannot tell an overprint from a letter drawn twice in a row.
                piece.u1 > piece.u0
                    && (piece.u0 - other.u0).abs() <= near
                    && (piece.v - other.v).abs() <= near
                    && text(piece.piece) == text(other.piece)
            });
            if !overprint {
                kept.push(p);
            }
        }
        *line = kept;
    }
    lines
}

/// Each line cut where a gap is gutter-wide.
fn segments(placed: &[Placed], lines: &[Vec<usize>]) -> Vec<Segment> {
    let mut out = Vec::new();
    for (l, line) in lines.iter().enumerate() {
        let mut current: Option<Segment> = None;
        for (i, &p) in line.iter().enumerate() {
            let piece = &placed[p];
            let top = piece.v + ASCENT * piece.size;
            let bottom = piece.v - DESCENT * piece.size;
            match current.as_mut() {
                Some(s) if piece.u0 - s.u1 <= GUTTER * s.size.max(piece.size) => {
                    s.pieces.end = i + 1;
                    s.u1 = s.u1.max(piece.u1);
                    s.top = s.top.max(top);
                    s.bottom = s.bottom.min(bottom);
                    s.size = s.size.max(piece.size);
                }
                _ => {
                    out.extend(current.take());
                    current = Some(Segment {
                        line: l,
                        pieces: i..i + 1,
                        u0: piece.u0,
                        u1: piece.u1,
                        top,
                        bottom,
                        size: piece.size,
                    });
                }
            }
        }
        out.extend(current);
    }
    out
}

/// The segments in blocks, in reading order (recursive XY cuts, see the module's documentation).
fn blocks(segments: &[Segment]) -> Vec<Vec<usize>> {
    let all: Vec<usize> = (0..segments.len()).collect();
    if segments.len() > MAX_CUT_SEGMENTS {
        return vec![all];
    }
    let mut out = Vec::new();
    let mut work = 0usize;
    let mut stack = vec![all];
    while let Some(block) = stack.pop() {
        work += block.len();
        if block.len() < 2 || work > MAX_CUT_WORK {
            out.push(block);
            continue;
        }
        match cut(segments, &block) {
            Some(parts) => stack.extend(parts.into_iter().rev()),
            None => out.push(block),
        }
    }
    out
}

/// The parts of a block cut at its widest gap, top to bottom or left to right; `None` when it cannot be cut.
fn cut(segments: &[Segment], block: &[usize]) -> Option<Vec<Vec<usize>>> {
    let mut by_top = block.to_vec();
    by_top.sort_by(|&a, &b| segments[b].top.total_cmp(&segments[a].top));
    let mut rows = Vec::new();
    let mut low = f32::INFINITY;
    for (k, &s) in by_top.iter().enumerate() {
        let segment = &segments[s];
        if k > 0 && segment.top < low {
            rows.push((k, low - segment.top));
        }
        low = low.min(segment.bottom);
    }
    let widest_row = rows.iter().map(|&(_, gap)| gap).fold(0.0f32, f32::max);

    let mut by_left = block.to_vec();
    by_left.sort_by(|&a, &b| segments[a].u0.total_cmp(&segments[b].u0));
    let mean_size = block.iter().map(|&s| segments[s].size).sum::<f32>() / block.len() as f32;
    let mut gutters = Vec::new();
    let mut high = f32::NEG_INFINITY;
    for (k, &s) in by_left.iter().enumerate() {
        let segment = &segments[s];
        if k > 0 && segment.u0 - high >= GUTTER * mean_size {
            gutters.push((k, segment.u0 - high));
        }
        high = high.max(segment.u1);
    }
    gutters.sort_by(|a, b| b.1.total_cmp(&a.1));
    let gutter = gutters
        .into_iter()
        .take(MAX_GUTTER_TRIES)
        .find(|&(k, _)| side_by_side(segments, &by_left[..k], &by_left[k..]));

    match gutter {
        Some((k, gap)) if gap >= widest_row && widest_row < SECTION_GAP * mean_size => {
            Some(vec![by_left[..k].to_vec(), by_left[k..].to_vec()])
        }
        _ if widest_row > 0.0 => {
            let mut parts = Vec::new();
            let mut from = 0;
            for (k, gap) in rows {
                if gap >= SAME_GAP * widest_row {
                    parts.push(by_top[from..k].to_vec());
                    from = k;
                }
            }
            parts.push(by_top[from..].to_vec());
            Some(parts)
        }
        _ => None,
    }
}

/// Whether two sides of a candidate gutter stand side by side: on each side, text on at least [`MIN_BESIDE`]
/// lines has text of the other side at the same height.
fn side_by_side(segments: &[Segment], left: &[usize], right: &[usize]) -> bool {
    is_column(segments, left)
        && is_column(segments, right)
        && beside(segments, left, right) >= MIN_BESIDE
        && beside(segments, right, left) >= MIN_BESIDE
}

/// Whether the median segment of `side` is [`MIN_COLUMN_WIDTH`] wide.
fn is_column(segments: &[Segment], side: &[usize]) -> bool {
    let mut widths: Vec<f32> = side
        .iter()
        .map(|&s| (segments[s].u1 - segments[s].u0) / segments[s].size)
        .collect();
    widths.sort_by(f32::total_cmp);
    widths
        .get(widths.len() / 2)
        .is_some_and(|&w| w >= MIN_COLUMN_WIDTH)
}

/// How many lines of `these` have a segment at the height of some segment of `those`.
fn beside(segments: &[Segment], these: &[usize], those: &[usize]) -> usize {
    // The heights `those` cover, as disjoint intervals from the bottom up.
    let mut spans: Vec<(f32, f32)> = those
        .iter()
        .map(|&s| (segments[s].bottom, segments[s].top))
        .collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut covered: Vec<(f32, f32)> = Vec::with_capacity(spans.len());
    for (bottom, top) in spans {
        match covered.last_mut() {
            Some(last) if bottom <= last.1 => last.1 = last.1.max(top),
            _ => covered.push((bottom, top)),
        }
    }
    let mut lines: Vec<usize> = these
        .iter()
        .filter(|&&s| {
            let segment = &segments[s];
            let first_above = covered.partition_point(|&(_, top)| top <= segment.bottom);
            covered
                .get(first_above)
                .is_some_and(|&(bottom, _)| bottom < segment.top)
        })
        .map(|&s| segments[s].line)
        .collect();
    lines.sort_unstable();
    lines.dedup();
    lines.len()
}
