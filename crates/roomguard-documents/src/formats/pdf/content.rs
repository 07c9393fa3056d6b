//! Content streams (PDF 32000-1 §8–9): the text a page shows, in lines as a reader sees them.
//!
//! Producers cut text freely: a banner may be two text objects (`DIFFUSION ` then `RESTREINTE`), one `TJ` array with
//! kerning inside the words, or one glyph at a time, in any order. So lines are rebuilt from positions, not from
//! operators: each piece of text is placed with the text and graphics matrices and handed to a [`Layout`], which
//! writes the lines once the stream has been read. Form XObjects are drawn where the page draws them, with bounded
//! depth and no cycles.

use std::collections::HashMap;
use std::rc::Rc;

use lopdf::{Dictionary, Object, ObjectId};
use memchr::memmem;

use super::font::Font;
use super::layout::{Layout, Placement};
use super::lexer::{Lexer, Malformed, as_f32, is_white};
use super::store::Store;
use crate::reader::{Incomplete, Reader, Step};

/// Forms drawing forms deeper than this are not followed (real documents nest two or three).
const MAX_FORM_DEPTH: usize = 8;
/// Forms drawn per document (a form drawn by a form drawn ten times each, eight deep, must not run 10^8 times).
const MAX_FORM_RUNS: usize = 4096;
/// `q` without `Q`, nested: past this the state stack stops growing.
const MAX_SAVED_STATES: usize = 64;
/// Operands waiting for their operator (a real operator takes at most 6; more means garbage).
const MAX_OPERANDS: usize = 64;

type Matrix = [f32; 6];

const IDENTITY: Matrix = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0];

/// `a × b` (row vectors, as PDF writes them).
fn mul(a: &Matrix, b: &Matrix) -> Matrix {
    [
        a[0] * b[0] + a[1] * b[2],
        a[0] * b[1] + a[1] * b[3],
        a[2] * b[0] + a[3] * b[2],
        a[2] * b[1] + a[3] * b[3],
        a[4] * b[0] + a[5] * b[2] + b[4],
        a[4] * b[1] + a[5] * b[3] + b[5],
    ]
}

fn matrix(operands: &[Object]) -> Option<Matrix> {
    let values: Vec<f32> = operands.iter().filter_map(as_f32).collect();
    let m: Matrix = values
        .get(values.len().checked_sub(6)?..)?
        .try_into()
        .ok()?;
    m.iter().all(|v| v.is_finite()).then_some(m)
}

/// The graphics and text state that `q`/`Q` save and restore.
#[derive(Clone)]
struct State {
    ctm: Matrix,
    font: Option<Rc<Font>>,
    size: f32,
    char_spacing: f32,
    word_spacing: f32,
    scale: f32,
    leading: f32,
    rise: f32,
}

/// Reads pages' content streams; fonts and forms are shared across the pages of one document.
pub(super) struct Interpreter<'s, 'a> {
    store: &'s Store<'a>,
    fonts: HashMap<usize, Rc<Font>>,
    fallback: Rc<Font>,
    forms: HashMap<ObjectId, Rc<Vec<u8>>>,
    form_runs: usize,
    /// The text of the stream being read, laid out when it ends.
    layout: Layout,
    /// The next piece starts where the last one ended (same text object, moved only by its own advance and `TJ`
    /// adjustments): its place then comes from measured widths, not from the file.
    continuing: bool,
    /// The text of the piece being shown, kept to reuse its allocation.
    run: String,
}

impl<'s, 'a> Interpreter<'s, 'a> {
    /// An interpreter for the document in `store`.
    pub(super) fn new(store: &'s Store<'a>) -> Self {
        Interpreter {
            store,
            fonts: HashMap::new(),
            fallback: Rc::new(Font::fallback()),
            forms: HashMap::new(),
            form_runs: 0,
            layout: Layout::default(),
            continuing: false,
            run: String::new(),
        }
    }

    /// Reads one content stream (a page's, or an annotation's appearance) drawn with `resources`, and writes its
    /// lines (those read before a stop too).
    pub(super) fn run_page(
        &mut self,
        reader: &mut Reader<'_>,
        data: &[u8],
        resources: Option<&'s Dictionary>,
    ) -> Step {
        let state = State {
            ctm: IDENTITY,
            font: None,
            size: 1.0,
            char_spacing: 0.0,
            word_spacing: 0.0,
            scale: 1.0,
            leading: 0.0,
            rise: 0.0,
        };
        let mut visiting = Vec::new();
        let read = self.run(reader, data, resources, state, &mut visiting);
        let written = self.layout.write(reader);
        reader.end_paragraph();
        read.and(written)
    }

    fn run(
        &mut self,
        reader: &mut Reader<'_>,
        data: &[u8],
        resources: Option<&'s Dictionary>,
        mut state: State,
        visiting: &mut Vec<ObjectId>,
    ) -> Step {
        let mut saved: Vec<State> = Vec::new();
        let mut tm = IDENTITY;
        let mut tlm = IDENTITY;
        let mut operands: Vec<Object> = Vec::new();
        let mut lexer = Lexer::new(data, 0);
        loop {
            reader.tick()?;
            let op = match lexer.object() {
                Ok(object) => {
                    if operands.len() >= MAX_OPERANDS {
                        operands.clear();
                    }
                    operands.push(object);
                    continue;
                }
                Err(Ok(op)) => op,
                Err(Err(Malformed::End)) => break,
                Err(Err(Malformed::Syntax)) => {
                    operands.clear();
                    continue;
                }
            };
            if matches!(
                op,
                b"BT" | b"Td" | b"TD" | b"Tm" | b"T*" | b"'" | b"\"" | b"cm" | b"Q" | b"Do"
            ) {
                // Text placed anew: what follows is positioned on its own, not after the piece before.
                self.continuing = false;
            }
            match op {
                b"q" if saved.len() < MAX_SAVED_STATES => saved.push(state.clone()),
                b"Q" => {
                    if let Some(s) = saved.pop() {
                        state = s;
                    }
                }
                b"cm" => {
                    if let Some(m) = matrix(&operands) {
                        state.ctm = mul(&m, &state.ctm);
                    }
                }
                b"BT" => {
                    tm = IDENTITY;
                    tlm = IDENTITY;
                }
                b"Tf" => {
                    if let Some(size) = operands.last().and_then(as_f32) {
                        state.size = size;
                    }
                    if let Some(Object::Name(name)) = operands.iter().rev().nth(1) {
                        state.font = Some(self.font(reader, resources, name)?);
                    }
                }
                b"Tc" => state.char_spacing = operands.last().and_then(as_f32).unwrap_or(0.0),
                b"Tw" => state.word_spacing = operands.last().and_then(as_f32).unwrap_or(0.0),
                b"Tz" => state.scale = operands.last().and_then(as_f32).unwrap_or(100.0) / 100.0,
                b"TL" => state.leading = operands.last().and_then(as_f32).unwrap_or(0.0),
                b"Ts" => state.rise = operands.last().and_then(as_f32).unwrap_or(0.0),
                b"Td" | b"TD" => {
                    let n: Vec<f32> = operands.iter().filter_map(as_f32).collect();
                    if let [.., tx, ty] = n[..] {
                        if op == b"TD" {
                            state.leading = -ty;
                        }
                        tlm = mul(&[1.0, 0.0, 0.0, 1.0, tx, ty], &tlm);
                        tm = tlm;
                    }
                }
                b"Tm" => {
                    if let Some(m) = matrix(&operands) {
                        tlm = m;
                        tm = m;
                    }
                }
                b"T*" => {
                    tlm = mul(&[1.0, 0.0, 0.0, 1.0, 0.0, -state.leading], &tlm);
                    tm = tlm;
                }
                b"Tj" | b"'" | b"\"" => {
                    if op != b"Tj" {
                        if op == b"\"" {
                            let n: Vec<f32> = operands.iter().filter_map(as_f32).collect();
                            if let [.., aw, ac] = n[..] {
                                state.word_spacing = aw;
                                state.char_spacing = ac;
                            }
                        }
                        tlm = mul(&[1.0, 0.0, 0.0, 1.0, 0.0, -state.leading], &tlm);
                        tm = tlm;
                    }
                    if let Some(Object::String(bytes, _)) = operands.last() {
                        self.show(reader, &state, &mut tm, bytes)?;
                    }
                }
                b"TJ" => {
                    if let Some(Object::Array(items)) = operands.last() {
                        for item in items {
                            match item {
                                Object::String(bytes, _) => {
                                    self.show(reader, &state, &mut tm, bytes)?
                                }
                                other => {
                                    if let Some(adjust) = as_f32(other) {
                                        let tx = -adjust / 1000.0 * state.size * state.scale;
                                        tm[4] += tx * tm[0];
                                        tm[5] += tx * tm[1];
                                    }
                                }
                            }
                        }
                    }
                }
                b"Do" => {
                    if let Some(Object::Name(name)) = operands.last() {
                        self.draw_form(reader, resources, name, &state, visiting)?;
                    }
                }
                b"BI" => skip_inline_image(&mut lexer),
                _ => {}
            }
            operands.clear();
        }
        // A form's last piece is not continued by what the page draws after it.
        self.continuing = false;
        Ok(())
    }

    fn font(
        &mut self,
        reader: &mut Reader<'_>,
        resources: Option<&'s Dictionary>,
        name: &[u8],
    ) -> Step<Rc<Font>> {
        let store = self.store;
        let dict = resources
            .and_then(|r| store.dict_in(r, b"Font"))
            .and_then(|fonts| store.dict_in(fonts, name));
        let Some(dict) = dict else {
            return Ok(self.fallback.clone());
        };
        // The dictionary's address in the store names the font: the store does not change while pages are read.
        let key = std::ptr::from_ref(dict) as usize;
        if let Some(font) = self.fonts.get(&key) {
            return Ok(font.clone());
        }
        let font = Rc::new(Font::load(reader, store, dict)?);
        self.fonts.insert(key, font.clone());
        Ok(font)
    }

    fn show(
        &mut self,
        reader: &mut Reader<'_>,
        state: &State,
        tm: &mut Matrix,
        bytes: &[u8],
    ) -> Step {
        let font = state.font.clone().unwrap_or_else(|| self.fallback.clone());
        let trm = mul(tm, &state.ctm);
        let norm = (trm[0] * trm[0] + trm[1] * trm[1]).sqrt();
        let dir = if norm > f32::EPSILON {
            (trm[0] / norm, trm[1] / norm)
        } else {
            (1.0, 0.0)
        };
        let size = (state.size * (trm[2] * trm[2] + trm[3] * trm[3]).sqrt())
            .abs()
            .max(0.01);
        let mut run = std::mem::take(&mut self.run);
        run.clear();
        let mut advance = 0.0f32;
        font.glyphs(reader, bytes, &mut run, |width, is_space_code| {
            let spacing = state.char_spacing
                + if is_space_code {
                    state.word_spacing
                } else {
                    0.0
                };
            advance += (width * state.size + spacing) * state.scale;
        })?;
        if advance.is_finite() {
            tm[4] += advance * tm[0];
            tm[5] += advance * tm[1];
        }
        if !run.is_empty() {
            // Text can carry its own line breaks (a `\n` in a string); they are spaces on a drawn line.
            if run.contains(['\n', '\r']) {
                run = run.replace(['\n', '\r'], " ");
            }
            let end = mul(tm, &state.ctm);
            let placement = Placement {
                start: (trm[4], trm[5]),
                end: (end[4], end[5]),
                dir,
                size,
                continues: self.continuing,
            };
            self.continuing = true;
            let pushed = self.layout.push(reader, &run, placement);
            self.run = run;
            pushed?;
        } else {
            self.run = run;
        }
        Ok(())
    }

    fn draw_form(
        &mut self,
        reader: &mut Reader<'_>,
        resources: Option<&'s Dictionary>,
        name: &[u8],
        state: &State,
        visiting: &mut Vec<ObjectId>,
    ) -> Step {
        let store = self.store;
        let Some(reference) = resources
            .and_then(|r| store.dict_in(r, b"XObject"))
            .and_then(|x| x.get(name).ok())
        else {
            return Ok(());
        };
        let Some(id) = store.stream_id(reference) else {
            return Ok(());
        };
        let Ok(dict) = store.get(id).as_dict() else {
            return Ok(());
        };
        if store.get_in(dict, b"Subtype").as_name().ok() != Some(b"Form") || visiting.contains(&id)
        {
            return Ok(());
        }
        if visiting.len() >= MAX_FORM_DEPTH || self.form_runs >= MAX_FORM_RUNS {
            reader.note(Incomplete::NestingLimit);
            return Ok(());
        }
        self.form_runs += 1;
        let data = match self.forms.get(&id) {
            Some(data) => data.clone(),
            None => {
                let Some(data) = store.stream_bytes(reader, id)? else {
                    return Ok(());
                };
                let data = Rc::new(data);
                self.forms.insert(id, data.clone());
                data
            }
        };
        let mut inner = state.clone();
        if let Object::Array(m) = store.get_in(dict, b"Matrix")
            && let Some(m) = matrix(m)
        {
            inner.ctm = mul(&m, &state.ctm);
        }
        let form_resources = store.dict_in(dict, b"Resources").or(resources);
        visiting.push(id);
        let step = self.run(reader, &data, form_resources, inner, visiting);
        visiting.pop();
        step
    }
}

/// Skips an inline image (`BI ... ID <binary> EI`): its bytes are not operators.
fn skip_inline_image(lexer: &mut Lexer<'_>) {
    let bytes = lexer.bytes();
    let from = lexer.pos();
    let Some(id) = memmem::find(&bytes[from..], b"ID").map(|i| from + i + 2) else {
        lexer.seek(bytes.len());
        return;
    };
    let mut at = id;
    while let Some(found) = memmem::find(&bytes[at..], b"EI") {
        let ei = at + found;
        let before = ei == 0 || is_white(bytes[ei - 1]);
        let after = bytes.get(ei + 2).is_none_or(|&b| is_white(b));
        if before && after {
            lexer.seek(ei + 2);
            return;
        }
        at = ei + 2;
    }
    lexer.seek(bytes.len());
}
