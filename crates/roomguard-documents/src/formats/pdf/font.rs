//! Fonts (PDF 32000-1 §9.5–9.10): how a string's bytes become text, and how wide each glyph is.
//!
//! Simple fonts map one byte to a glyph through a base encoding (WinAnsi, MacRoman, Standard) and `/Differences`
//! (glyph names); composite (Type0) fonts map one- to four-byte codes to glyph ids. Either way a ToUnicode CMap,
//! when present, says what text each code is and comes first. Widths matter only to tell a word gap from letters
//! drawn one after the other.

use lopdf::{Dictionary, Object};

use super::cmap::ToUnicode;
use super::encodings;
use super::lexer::as_f32;
use super::metrics;
use super::store::Store;
use crate::reader::{Reader, Step};

/// A font, ready to decode strings.
#[derive(Debug, Default)]
pub(super) struct Font {
    composite: bool,
    /// Code -> Unicode for simple fonts without ToUnicode (or with a partial one).
    encoding: Option<Box<[char; 256]>>,
    to_unicode: Option<ToUnicode>,
    /// A composite font whose CMap is a UCS-2 one (`UniJIS-UCS2-H`...): codes are UTF-16.
    ucs2: bool,
    first_char: u32,
    widths: Vec<f32>,
    /// CID widths: (first, last, width).
    cid_widths: Vec<(u32, u32, f32)>,
    default_width: f32,
    /// Standard-14 widths by Unicode, when the font has none of its own.
    standard: Option<&'static [u16; 224]>,
    /// Type3 glyph space is scaled by the font matrix, not by 1/1000.
    scale: f32,
    /// A simple font's 256 codes, decoded once: text and advance (most glyphs of most files go through here).
    simple: Vec<(Box<str>, f32)>,
}

fn table(codes: &[u16; 256]) -> Box<[char; 256]> {
    let mut out = Box::new(['\0'; 256]);
    for (slot, &u) in out.iter_mut().zip(codes.iter()) {
        *slot = char::from_u32(u32::from(u)).unwrap_or('\0');
    }
    out
}

/// The Unicode character a glyph name stands for.
pub(super) fn glyph_char(name: &[u8]) -> Option<char> {
    let name = std::str::from_utf8(name).ok()?;
    // `a.sc`, `f_i.liga`: the part before the dot names the glyph.
    let base = name.split('.').next().unwrap_or(name);
    if let Ok(i) = encodings::GLYPH_NAMES.binary_search_by(|(n, _)| n.cmp(&base)) {
        return char::from_u32(u32::from(encodings::GLYPH_NAMES[i].1));
    }
    let hex = |s: &str| u32::from_str_radix(s, 16).ok().and_then(char::from_u32);
    if let Some(rest) = base.strip_prefix("uni")
        && rest.len() >= 4
    {
        return hex(&rest[..4]);
    }
    if let Some(rest) = base.strip_prefix('u')
        && (4..=6).contains(&rest.len())
    {
        return hex(rest);
    }
    let mut chars = base.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Some(c),
        _ => None,
    }
}

impl Font {
    /// The font of text drawn without one (a missing resource): bytes read as WinAnsi.
    pub(super) fn fallback() -> Font {
        let mut font = Font {
            encoding: Some(table(&encodings::WIN_ANSI)),
            default_width: 0.5,
            scale: 0.001,
            ..Font::default()
        };
        font.simple = (0..=255u8)
            .map(|code| {
                let mut text = String::new();
                font.decode(&[code], u32::from(code), &mut text);
                (text.into_boxed_str(), 0.5)
            })
            .collect();
        font
    }

    /// Reads a font dictionary.
    pub(super) fn load(
        reader: &mut Reader<'_>,
        store: &Store<'_>,
        dict: &Dictionary,
    ) -> Step<Font> {
        let subtype = store.get_in(dict, b"Subtype").as_name().unwrap_or_default();
        let base_font = store
            .get_in(dict, b"BaseFont")
            .as_name()
            .unwrap_or_default();
        let mut font = Font {
            composite: subtype == b"Type0",
            default_width: 1.0,
            scale: 0.001,
            ..Font::default()
        };
        if let Some(id) = dict.get(b"ToUnicode").ok().and_then(|o| store.stream_id(o))
            && let Some(data) = store.stream_bytes(reader, id)?
        {
            font.to_unicode = Some(ToUnicode::parse(reader, &data)?);
        }
        if font.composite {
            font.load_composite(store, dict);
        } else {
            font.load_simple(reader, store, dict, subtype, base_font)?;
            font.simple = Vec::with_capacity(256);
            for code in 0..=255u8 {
                let mut text = String::new();
                font.decode(&[code], u32::from(code), &mut text);
                let width = font.width(u32::from(code), text.chars().next());
                font.simple.push((text.into_boxed_str(), width));
            }
        }
        Ok(font)
    }

    fn load_composite(&mut self, store: &Store<'_>, dict: &Dictionary) {
        let encoding = store
            .get_in(dict, b"Encoding")
            .as_name()
            .unwrap_or_default();
        self.ucs2 = encoding.windows(4).any(|w| w == b"UCS2" || w == b"UTF1");
        let descendant = match store.get_in(dict, b"DescendantFonts") {
            Object::Array(a) => a.first().and_then(|d| store.resolve(d).as_dict().ok()),
            _ => None,
        };
        let Some(cid_font) = descendant else { return };
        self.default_width = as_f32(store.get_in(cid_font, b"DW")).unwrap_or(1000.0) / 1000.0;
        // `/W [c [w1 w2 ...] cfirst clast w ...]`.
        if let Object::Array(w) = store.get_in(cid_font, b"W") {
            let mut i = 0;
            while i < w.len() && self.cid_widths.len() < 65_536 {
                let first = store.resolve(&w[i]).as_i64().unwrap_or(0).max(0) as u32;
                match w.get(i + 1).map(|o| store.resolve(o)) {
                    Some(Object::Array(list)) => {
                        for (k, width) in list.iter().enumerate() {
                            let width = as_f32(width).unwrap_or(1000.0) / 1000.0;
                            let cid = first.saturating_add(k as u32);
                            self.cid_widths.push((cid, cid, width));
                        }
                        i += 2;
                    }
                    Some(last) => {
                        let last = last.as_i64().unwrap_or(0).max(0) as u32;
                        let width = w
                            .get(i + 2)
                            .and_then(|o| as_f32(store.resolve(o)))
                            .unwrap_or(1000.0);
                        self.cid_widths.push((first, last, width / 1000.0));
                        i += 3;
                    }
                    None => break,
                }
            }
            self.cid_widths.sort_by_key(|&(first, _, _)| first);
        }
    }

    fn load_simple(
        &mut self,
        reader: &mut Reader<'_>,
        store: &Store<'_>,
        dict: &Dictionary,
        subtype: &[u8],
        base_font: &[u8],
    ) -> Step {
        let encoding = store.get_in(dict, b"Encoding");
        let base_name = match encoding {
            Object::Name(n) => Some(n.as_slice()),
            Object::Dictionary(d) => store.get_in(d, b"BaseEncoding").as_name().ok(),
            _ => None,
        };
        let symbolic = base_font.ends_with(b"Symbol") || base_font.ends_with(b"Dingbats");
        let mut codes = match base_name {
            Some(b"WinAnsiEncoding") => table(&encodings::WIN_ANSI),
            Some(b"MacRomanEncoding") => table(&encodings::MAC_ROMAN),
            Some(b"StandardEncoding") => table(&encodings::STANDARD),
            // A TrueType font without an encoding is usually written with WinAnsi codes; a Type1 font uses its
            // built-in encoding, Standard for the Latin fonts.
            _ if subtype == b"TrueType" => table(&encodings::WIN_ANSI),
            _ if symbolic => table(&[0; 256]),
            _ => table(&encodings::STANDARD),
        };
        if let Object::Dictionary(d) = encoding
            && let Object::Array(differences) = store.get_in(d, b"Differences")
        {
            let mut code = 0usize;
            for item in differences {
                reader.tick()?;
                match store.resolve(item) {
                    Object::Integer(n) => code = usize::try_from(*n).unwrap_or(256),
                    Object::Name(name) => {
                        if let Some(slot) = codes.get_mut(code) {
                            *slot = glyph_char(name).unwrap_or('\0');
                        }
                        code = code.saturating_add(1);
                    }
                    _ => {}
                }
            }
        }
        self.encoding = Some(codes);
        self.first_char = store
            .get_in(dict, b"FirstChar")
            .as_i64()
            .unwrap_or(0)
            .clamp(0, 255) as u32;
        if let Object::Array(widths) = store.get_in(dict, b"Widths") {
            self.widths = widths
                .iter()
                .take(256)
                .map(|w| as_f32(store.resolve(w)).unwrap_or(0.0))
                .collect();
        }
        if subtype == b"Type3" {
            if let Object::Array(m) = store.get_in(dict, b"FontMatrix")
                && let Some(a) = m.first().and_then(as_f32)
            {
                self.scale = a.abs();
            }
        } else {
            self.widths.iter_mut().for_each(|w| *w /= 1000.0);
            self.scale = 0.001;
        }
        if subtype == b"Type3" {
            let scale = self.scale;
            self.widths.iter_mut().for_each(|w| *w *= scale);
        }
        if self.widths.is_empty() {
            let name = base_font.rsplit(|&b| b == b'+').next().unwrap_or(base_font);
            self.standard = match name {
                n if n.starts_with(b"Helvetica-Bold") || n.starts_with(b"Arial-Bold") => {
                    Some(&metrics::HELVETICA_BOLD)
                }
                n if n.starts_with(b"Helvetica") || n.starts_with(b"Arial") => {
                    Some(&metrics::HELVETICA)
                }
                n if n.starts_with(b"Times-Bold") => Some(&metrics::TIMES_BOLD),
                n if n.starts_with(b"Times") => Some(&metrics::TIMES_ROMAN),
                _ => None,
            };
            if name.starts_with(b"Courier") {
                self.default_width = 0.6;
            } else if self.standard.is_none() {
                self.default_width = 0.5;
            }
        }
        Ok(())
    }

    /// Decodes a shown string: its text is appended to `text`, and `each` is called with every glyph's advance
    /// (in text space units per unit of font size) and whether word spacing applies to it (a one-byte code 32).
    pub(super) fn glyphs(
        &self,
        reader: &mut Reader<'_>,
        bytes: &[u8],
        text: &mut String,
        mut each: impl FnMut(f32, bool),
    ) -> Step {
        if self.simple.len() == 256 {
            for &code in bytes {
                reader.tick()?;
                let (glyph, width) = &self.simple[usize::from(code)];
                text.push_str(glyph);
                each(*width, code == 32);
            }
            return Ok(());
        }
        let mut i = 0;
        while i < bytes.len() {
            reader.tick()?;
            let len = if self.composite {
                match &self.to_unicode {
                    Some(map) => map.code_length(&bytes[i..], 2),
                    None => 2,
                }
            } else {
                1
            };
            let end = (i + len).min(bytes.len());
            let code_bytes = &bytes[i..end];
            i = end;
            let code = code_bytes
                .iter()
                .fold(0u32, |acc, &b| acc << 8 | u32::from(b));
            let before = text.len();
            self.decode(code_bytes, code, text);
            let first = text[before..].chars().next();
            each(self.width(code, first), !self.composite && code == 32);
        }
        Ok(())
    }

    /// Appends the text of one code: ToUnicode first, then the encoding (simple fonts) or UCS-2 (composite fonts
    /// with a Unicode CMap). Control characters are not text: a NUL-mapped glyph reads as nothing.
    fn decode(&self, code_bytes: &[u8], code: u32, text: &mut String) {
        let before = text.len();
        if let Some(map) = &self.to_unicode {
            map.lookup(code_bytes.len(), code, text);
        }
        if text.len() == before {
            if let Some(codes) = &self.encoding {
                let c = codes[(code & 0xff) as usize];
                if c != '\0' {
                    text.push(c);
                }
            } else if self.ucs2
                && let Some(c) = char::from_u32(code)
            {
                text.push(c);
            }
        }
        if text[before..].chars().any(|c| c.is_control() && c != '\t') {
            let kept: String = text[before..]
                .chars()
                .filter(|c| !c.is_control() || *c == '\t')
                .collect();
            text.truncate(before);
            text.push_str(&kept);
        }
    }

    fn width(&self, code: u32, first: Option<char>) -> f32 {
        if self.composite {
            let at = self
                .cid_widths
                .partition_point(|&(first, _, _)| first <= code);
            if at > 0 {
                let (_, last, w) = self.cid_widths[at - 1];
                if code <= last {
                    return w;
                }
            }
            return self.default_width;
        }
        if let Some(w) = code
            .checked_sub(self.first_char)
            .and_then(|i| self.widths.get(i as usize))
        {
            return *w;
        }
        if let Some(table) = self.standard
            && let Some(c) = first
            && let Some(&w) = (c as usize).checked_sub(0x20).and_then(|i| table.get(i))
            && w > 0
        {
            return f32::from(w) / 1000.0;
        }
        self.default_width
    }
}
