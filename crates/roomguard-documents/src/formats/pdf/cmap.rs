//! ToUnicode CMaps (PDF 32000-1 §9.10.3): character codes to text.
//!
//! LibreOffice, Word, Chrome, cairo and fpdf2 write subset fonts whose codes are glyph ids (Identity-H) or arbitrary
//! bytes: the ToUnicode map is the only way back to text. Ranges are kept as ranges (a `<0000> <FFFF>` range must
//! not become 65,536 entries) and looked up by binary search.

use std::collections::{BTreeMap, HashMap};

use lopdf::Object;

use super::lexer::Lexer;
use crate::reader::{Reader, Step};

/// What a range maps to.
#[derive(Debug, Clone)]
enum Target {
    /// The first code's text; the others increment its last character.
    Start(Vec<u16>),
    /// One text per code.
    Each(Vec<String>),
}

/// A parsed ToUnicode map.
#[derive(Debug, Default, Clone)]
pub(super) struct ToUnicode {
    /// Code spaces: (bytes, low, high).
    spaces: Vec<(usize, u32, u32)>,
    chars: HashMap<(u8, u32), String>,
    /// By (bytes, low code): (high code, target).
    ranges: BTreeMap<(u8, u32), (u32, Target)>,
}

fn code_of(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .take(4)
        .fold(0u32, |acc, &b| acc << 8 | u32::from(b))
}

fn utf16(bytes: &[u8]) -> Vec<u16> {
    bytes
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)]))
        .collect()
}

impl ToUnicode {
    /// Parses a CMap stream's decoded bytes.
    pub(super) fn parse(reader: &mut Reader<'_>, data: &[u8]) -> Step<ToUnicode> {
        let mut map = ToUnicode::default();
        let mut lexer = Lexer::new(data, 0);
        let mut operands: Vec<Object> = Vec::new();
        loop {
            reader.tick()?;
            let object = match lexer.object() {
                Ok(object) => object,
                Err(Ok(keyword)) => {
                    match keyword {
                        b"endcodespacerange" => {
                            for pair in operands.chunks(2) {
                                if let [Object::String(lo, _), Object::String(hi, _)] = pair
                                    && (1..=4).contains(&lo.len())
                                {
                                    map.spaces.push((lo.len(), code_of(lo), code_of(hi)));
                                }
                            }
                        }
                        b"endbfchar" => {
                            for pair in operands.chunks(2) {
                                if let [Object::String(src, _), Object::String(dst, _)] = pair
                                    && (1..=4).contains(&src.len())
                                {
                                    let text = String::from_utf16_lossy(&utf16(dst));
                                    map.chars.insert((src.len() as u8, code_of(src)), text);
                                }
                            }
                        }
                        b"endbfrange" => {
                            for triple in operands.chunks(3) {
                                map.range(triple);
                            }
                        }
                        _ => {}
                    }
                    operands.clear();
                    continue;
                }
                Err(Err(_)) if lexer.pos() >= data.len() => break,
                // A stray `]` or `}`: skipped.
                Err(Err(_)) => continue,
            };
            // Bounded: a CMap's sections hold at most 100 entries each, a malformed one is cut.
            if operands.len() < 3 * 10_000 {
                operands.push(object);
            }
        }
        Ok(map)
    }

    fn range(&mut self, triple: &[Object]) {
        let [Object::String(lo, _), Object::String(hi, _), target] = triple else {
            return;
        };
        if !(1..=4).contains(&lo.len()) {
            return;
        }
        let (lo_code, hi_code) = (code_of(lo), code_of(hi));
        if hi_code < lo_code {
            return;
        }
        let target = match target {
            Object::String(dst, _) => Target::Start(utf16(dst)),
            Object::Array(items) => Target::Each(
                items
                    .iter()
                    .map(|i| match i {
                        Object::String(s, _) => String::from_utf16_lossy(&utf16(s)),
                        _ => String::new(),
                    })
                    .collect(),
            ),
            _ => return,
        };
        self.ranges
            .insert((lo.len() as u8, lo_code), (hi_code, target));
    }

    /// How many bytes the code starting `bytes` takes, from the code spaces (`default` when none is declared).
    pub(super) fn code_length(&self, bytes: &[u8], default: usize) -> usize {
        if self.spaces.is_empty() {
            return default;
        }
        for len in 1..=4 {
            if len > bytes.len() {
                break;
            }
            let code = code_of(&bytes[..len]);
            if self
                .spaces
                .iter()
                .any(|&(n, lo, hi)| n == len && (lo..=hi).contains(&code))
            {
                return len;
            }
        }
        // No code space matches: take the shortest declared length, as readers do.
        self.spaces.iter().map(|s| s.0).min().unwrap_or(default)
    }

    /// Appends the text of the `len`-byte code `code` to `out`, if mapped.
    pub(super) fn lookup(&self, len: usize, code: u32, out: &mut String) {
        let len = len as u8;
        if let Some(text) = self.chars.get(&(len, code)) {
            out.push_str(text);
            return;
        }
        let Some((&(range_len, lo), (hi, target))) = self.ranges.range(..=(len, code)).next_back()
        else {
            return;
        };
        if code > *hi || range_len != len {
            return;
        }
        let offset = code - lo;
        match target {
            Target::Start(units) => {
                let Ok(offset) = u16::try_from(offset) else {
                    return;
                };
                let (last, head) = match units.split_last() {
                    Some((last, head)) => (*last, head),
                    None => return,
                };
                let incremented = last.wrapping_add(offset);
                out.extend(
                    char::decode_utf16(head.iter().copied().chain([incremented]))
                        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER)),
                );
            }
            Target::Each(texts) => {
                if let Some(text) = usize::try_from(offset).ok().and_then(|o| texts.get(o)) {
                    out.push_str(text);
                }
            }
        }
    }
}
