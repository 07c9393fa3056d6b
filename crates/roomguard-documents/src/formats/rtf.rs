//! Rich Text Format: the text of the body, page headers and footers, footnotes, annotations, field results and the
//! document's title, subject and keywords, one paragraph per line.
//!
//! A small tokenizer rather than a crate: what a scan needs (text and paragraph breaks, code pages, Unicode escapes
//! with their fallbacks, destinations to skip) is a few rules, and every loop must tick and every depth be bounded,
//! which is easiest to see in code of our own.

use encoding_rs::Encoding;

use crate::reader::{Incomplete, Reader, Step};

/// Groups nested deeper than this are read as if at this depth (noted `corrupt`): real files nest a few dozen.
const MAX_DEPTH: usize = 512;

/// Text held before it is handed to the reader, so that a document without paragraphs still streams.
const FLUSH_BYTES: usize = 4096;

/// Destinations whose content is not text a reader sees: tables of fonts, colours, styles, lists, revision ids,
/// pictures and embedded object data (their `\result` is read), field instructions (their `\fldrslt` is read),
/// document properties other than those below, and what generators put in.
const SKIPPED: &[&[u8]] = &[
    b"fonttbl",
    b"colortbl",
    b"stylesheet",
    b"listtable",
    b"listoverridetable",
    b"revtbl",
    b"rsidtbl",
    b"generator",
    b"pict",
    b"objdata",
    b"objclass",
    b"fldinst",
    b"themedata",
    b"colorschememapping",
    b"datastore",
    b"latentstyles",
    b"xmlnstbl",
    b"mmathPr",
    b"pgdsctbl",
    b"filetbl",
    b"author",
    b"operator",
    b"company",
    b"manager",
    b"hlinkbase",
    b"private",
    b"bkmkstart",
    b"bkmkend",
    b"atnid",
    b"atnauthor",
    b"atndate",
    b"listtext",
    b"pntext",
    b"protusertbl",
    b"userprops",
    b"docvar",
    b"passwordhash",
    b"wgrffmtfilter",
    b"xe",
    b"tc",
    b"nonshppict",
    b"blipuid",
    b"sp",
    b"sn",
    b"sv",
];

/// Properties under `\info` that are read, each on a line of its own.
const INFO_READ: &[&[u8]] = &[b"title", b"subject", b"keywords", b"doccomm", b"category"];

/// The state a group inherits from its parent.
#[derive(Debug, Clone, Copy)]
struct Group {
    skip: bool,
    in_info: bool,
    /// Characters of fallback after `\uN`.
    uc: usize,
    /// The group is a property: end a line when it closes.
    line_at_end: bool,
}

/// Reads an RTF file.
pub(crate) fn read(reader: &mut Reader<'_>, bytes: &[u8]) -> Step {
    let mut parser = Parser {
        bytes,
        at: 0,
        groups: vec![Group {
            skip: false,
            in_info: false,
            uc: 1,
            line_at_end: false,
        }],
        overflow: 0,
        encoding: encoding_rs::WINDOWS_1252,
        pending: Vec::new(),
        line: String::new(),
        fallback: 0,
        high_surrogate: None,
    };
    let step = parser.run(reader);
    parser.flush(reader)?;
    reader.end_paragraph();
    step
}

struct Parser<'b> {
    bytes: &'b [u8],
    at: usize,
    groups: Vec<Group>,
    /// Groups opened past [`MAX_DEPTH`], not pushed.
    overflow: usize,
    /// The document's code page (`\ansicpg`), for bytes and `\'hh`.
    encoding: &'static Encoding,
    /// Bytes in the code page, decoded together (double-byte code pages split characters across escapes).
    pending: Vec<u8>,
    line: String,
    /// Fallback characters still to skip after a `\uN`.
    fallback: usize,
    high_surrogate: Option<u16>,
}

impl Parser<'_> {
    fn group(&self) -> Group {
        self.groups.last().copied().unwrap_or(Group {
            skip: false,
            in_info: false,
            uc: 1,
            line_at_end: false,
        })
    }

    fn set(&mut self, change: impl FnOnce(&mut Group)) {
        if let Some(group) = self.groups.last_mut() {
            change(group);
        }
    }

    fn run(&mut self, reader: &mut Reader<'_>) -> Step {
        while let Some(&byte) = self.bytes.get(self.at) {
            reader.tick()?;
            match byte {
                b'{' => {
                    self.at += 1;
                    self.fallback = 0;
                    if self.groups.len() >= MAX_DEPTH {
                        reader.note(Incomplete::Corrupt);
                        self.overflow += 1;
                    } else {
                        let mut group = self.group();
                        group.line_at_end = false;
                        self.groups.push(group);
                    }
                }
                b'}' => {
                    self.at += 1;
                    self.fallback = 0;
                    if self.overflow > 0 {
                        self.overflow -= 1;
                    } else if self.groups.len() > 1 {
                        let closed = self.groups.pop().map(|g| g.line_at_end).unwrap_or(false);
                        if closed {
                            self.end_line(reader)?;
                        }
                    }
                }
                b'\\' => self.control(reader)?,
                b'\r' | b'\n' => self.at += 1,
                _ => {
                    // A run of plain bytes.
                    let start = self.at;
                    while let Some(&b) = self.bytes.get(self.at) {
                        if matches!(b, b'{' | b'}' | b'\\' | b'\r' | b'\n') {
                            break;
                        }
                        self.at += 1;
                    }
                    let run = &self.bytes[start..self.at];
                    for &b in run {
                        self.byte(b);
                    }
                    if self.line.len() + self.pending.len() > FLUSH_BYTES {
                        self.flush(reader)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// A byte of text in the code page (or a fallback character to skip).
    fn byte(&mut self, b: u8) {
        if self.fallback > 0 {
            self.fallback -= 1;
            return;
        }
        if !self.group().skip {
            self.pending.push(b);
        }
    }

    fn char(&mut self, c: char) {
        if !self.group().skip {
            self.decode_pending();
            self.line.push(c);
        }
    }

    fn decode_pending(&mut self) {
        if !self.pending.is_empty() {
            let (text, _) = self.encoding.decode_without_bom_handling(&self.pending);
            self.line.push_str(&text);
            self.pending.clear();
        }
    }

    fn flush(&mut self, reader: &mut Reader<'_>) -> Step {
        self.decode_pending();
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            reader.text(&line)?;
        }
        Ok(())
    }

    fn end_line(&mut self, reader: &mut Reader<'_>) -> Step {
        self.flush(reader)?;
        reader.end_paragraph();
        Ok(())
    }

    /// A control word or symbol, at a backslash.
    fn control(&mut self, reader: &mut Reader<'_>) -> Step {
        self.at += 1;
        let Some(&next) = self.bytes.get(self.at) else {
            return Ok(());
        };
        if !next.is_ascii_alphabetic() {
            self.at += 1;
            match next {
                b'\'' => {
                    let hex = self.bytes.get(self.at..self.at + 2).unwrap_or_default();
                    self.at += hex.len();
                    if let Some(b) = std::str::from_utf8(hex)
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                    {
                        self.byte(b);
                    }
                }
                b'*' => self.set(|g| g.skip = true),
                b'\\' | b'{' | b'}' => self.char(char::from(next)),
                b'~' => self.char(' '),
                b'_' => self.char('-'),
                b'\r' | b'\n' => self.end_line(reader)?,
                _ => {}
            }
            return Ok(());
        }
        let start = self.at;
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_alphabetic) && self.at - start < 32 {
            self.at += 1;
        }
        let word = &self.bytes[start..self.at];
        let digits_start = self.at;
        if self.bytes.get(self.at) == Some(&b'-') {
            self.at += 1;
        }
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_digit) && self.at - digits_start < 11
        {
            self.at += 1;
        }
        let param = std::str::from_utf8(&self.bytes[digits_start..self.at])
            .ok()
            .and_then(|p| p.parse::<i64>().ok());
        if self.bytes.get(self.at) == Some(&b' ') {
            self.at += 1;
        }
        self.word(reader, word, param)
    }

    fn word(&mut self, reader: &mut Reader<'_>, word: &[u8], param: Option<i64>) -> Step {
        match word {
            b"par" | b"line" | b"sect" | b"page" | b"row" | b"cell" | b"nestcell"
            | b"outlinelevel" => {
                if word != b"outlinelevel" {
                    self.end_line(reader)?;
                }
            }
            b"tab" => self.char(' '),
            b"emdash" => self.char('\u{2014}'),
            b"endash" => self.char('\u{2013}'),
            b"lquote" => self.char('\u{2018}'),
            b"rquote" => self.char('\u{2019}'),
            b"ldblquote" => self.char('\u{201C}'),
            b"rdblquote" => self.char('\u{201D}'),
            b"bullet" => self.char('\u{2022}'),
            b"u" => {
                let code = param.unwrap_or(0);
                let unit = if code < 0 { code + 65536 } else { code };
                let unit = u16::try_from(unit).unwrap_or(0xFFFD);
                match (self.high_surrogate.take(), unit) {
                    (_, 0xD800..=0xDBFF) => self.high_surrogate = Some(unit),
                    (Some(high), 0xDC00..=0xDFFF) => {
                        let c = char::decode_utf16([high, unit]).next().and_then(Result::ok);
                        self.char(c.unwrap_or('\u{FFFD}'));
                    }
                    (_, unit) => self.char(char::from_u32(u32::from(unit)).unwrap_or('\u{FFFD}')),
                }
                self.fallback = self.group().uc;
            }
            b"uc" => {
                let uc = usize::try_from(param.unwrap_or(1)).unwrap_or(1).min(8);
                self.set(|g| g.uc = uc);
            }
            b"ansicpg" => {
                if let Some(encoding) = param.and_then(code_page) {
                    self.decode_pending();
                    self.encoding = encoding;
                }
            }
            b"bin" => {
                // Raw bytes follow: skipped whole, whatever they hold.
                let len = usize::try_from(param.unwrap_or(0)).unwrap_or(0);
                self.at = self.at.saturating_add(len).min(self.bytes.len());
            }
            b"info" => self.set(|g| g.in_info = true),
            _ if self.group().in_info && INFO_READ.contains(&word) => {
                self.end_line(reader)?;
                self.set(|g| g.line_at_end = true);
            }
            _ if self.group().in_info => self.set(|g| g.skip = true),
            b"header" | b"footer" | b"headerl" | b"headerr" | b"headerf" | b"footerl"
            | b"footerr" | b"footerf" | b"footnote" | b"annotation" => {
                // Their own lines, apart from the paragraph they are anchored in.
                self.end_line(reader)?;
                self.set(|g| g.line_at_end = true);
            }
            _ if SKIPPED.contains(&word) => self.set(|g| g.skip = true),
            _ => {
                // Any other control word counts as one fallback character after `\uN`.
                self.fallback = self.fallback.saturating_sub(1);
            }
        }
        Ok(())
    }
}

/// The encoding of a Windows code page number (`\ansicpg`); `None` keeps cp1252.
fn code_page(page: i64) -> Option<&'static Encoding> {
    let label = match page {
        874 => "windows-874".to_owned(),
        932 => "shift_jis".to_owned(),
        936 => "gbk".to_owned(),
        949 => "euc-kr".to_owned(),
        950 => "big5".to_owned(),
        1250..=1258 => format!("windows-{page}"),
        10000 => "macintosh".to_owned(),
        65001 => "utf-8".to_owned(),
        _ => return None,
    };
    Encoding::for_label(label.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{MARK, fixture, has_mark_line, lines, scan};
    use crate::Format;

    /// `\'hh` escapes (in the document's code page) and `\uN` (skipping its fallback) are decoded; tables,
    /// pictures and ignorable destinations are skipped; `\par` and `\line` end lines.
    #[test]
    fn escapes_unicode_and_destinations() {
        let rtf = br"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0 Times;}}{\colortbl;\red0\green0\blue0;}
{\*\generator Writer}{\info{\title Note}{\author Jo}{\keywords DIFFUSION RESTREINTE}}
\pard R\'e9union \'e0 Z\u252?rich\par DIFFU{\b SION} RES{\i TREINTE}\line \uc2\u8212\'97\'97 fin{\pict\pngblip 89504e47}\par
{\*\unknowndest hidden}\bin3 {}}x\par}";
        let scan = scan(rtf);
        assert_eq!(scan.format, Format::Rtf);
        assert_eq!(
            lines(&scan),
            vec!["Note", MARK, "Réunion à Zürich", MARK, "\u{2014} fin", "x"]
        );
    }

    /// Page headers are read on their own line, and `\ansicpg` switches the code page.
    #[test]
    fn headers_and_code_pages() {
        let rtf = br"{\rtf1\ansi\ansicpg1251{\header \pard DIFFUSION RESTREINTE\par}\pard \'cf\'f0\'e8\'e2\'e5\'f2\par}";
        assert_eq!(lines(&scan(rtf)), vec![MARK, "Привет"]);
    }

    /// Files from LibreOffice's RTF export are read: the header, accents and characters outside the code page.
    #[test]
    fn libreoffice_rtf() {
        let header = scan(&fixture("other/libreoffice_header.rtf"));
        assert_eq!(header.format, Format::Rtf);
        assert!(has_mark_line(&header), "{:?}", lines(&header));
        let accents = scan(&fixture("other/libreoffice_accents.rtf"));
        let lines = lines(&accents);
        assert!(
            lines
                .iter()
                .any(|l| l.contains("Réunion à Zürich") && l.contains(MARK) && l.contains('✓')),
            "{lines:?}"
        );
    }

    /// Deep nesting is bounded and unbalanced braces do not stop the reading.
    #[test]
    fn deep_and_unbalanced_groups() {
        let mut rtf = b"{\\rtf1 ".to_vec();
        rtf.extend(std::iter::repeat_n(b'{', 100_000));
        rtf.extend_from_slice(MARK.as_bytes());
        rtf.extend(std::iter::repeat_n(b'}', 200_000));
        let scan = scan(&rtf);
        assert!(has_mark_line(&scan));
    }
}
