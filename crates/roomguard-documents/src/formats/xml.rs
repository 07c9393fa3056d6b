//! The XML parts of office documents (Office Open XML, OpenDocument) read as paragraphs, one per line.
//!
//! Every part is walked by one event loop; a [`Dialect`] says what each element means by its local name alone
//! (namespace prefixes differ between producers, and strict Office Open XML uses other namespace URIs for the same
//! names). A paragraph's text runs are joined before the paragraph ends, so a word that an editor split across runs
//! (`DIFFU` | `SION RES` | `TREINTE`) reaches the classifier whole. The parser is `quick-xml`: it never reads a DTD,
//! so no entity (external or internal) is ever expanded; only the five predefined ones and character references
//! are. The walk is iterative, so element depth costs no stack; it is still bounded, as a sign of a hostile part.

use std::borrow::Cow;

use quick_xml::events::{BytesStart, Event};

use crate::reader::{Incomplete, Reader, Step};

/// Elements nested deeper than this end the part (noted `corrupt`): real documents nest a few dozen levels.
const MAX_DEPTH: usize = 4096;

/// What an element means for the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// A paragraph: its text is one line (a paragraph nested in one, as in a text box, gets a line of its own).
    Paragraph,
    /// Holds text (`w:t`, `a:t`): its text nodes are read.
    Text,
    /// Holds text that is a line of its own (a chart's cached category or series name).
    Line,
    /// A tab or a space element: a space.
    Space,
    /// A line break: a new line.
    Break,
    /// Nothing inside is read (a fallback copy of content read elsewhere, phonetic guides, field codes).
    Skip,
    /// A spreadsheet cell: a line of its own; its `<v>` value is text when the cell holds a formula's string.
    Cell,
    /// A spreadsheet cell's value.
    CellValue,
    /// A spreadsheet page header or footer, with `&` formatting codes to strip.
    HeaderFooter,
    /// An element whose attribute of this local name is a line of text (a sheet's name).
    Attribute(&'static [u8]),
    /// Nothing by itself.
    Other,
}

/// How to read one kind of XML part.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dialect {
    /// The role of an element, by local name.
    pub(crate) role: fn(&[u8]) -> Role,
    /// Every text node inside a paragraph is text (OpenDocument), not only those inside [`Role::Text`] elements.
    pub(crate) text_in_paragraphs: bool,
    /// Every text node anywhere is text, and every element ends a line (property lists: `docProps`, `meta.xml`).
    pub(crate) properties: bool,
}

/// Property parts (`docProps/core.xml`, `docProps/custom.xml`, `meta.xml`): each value on a line of its own.
pub(crate) const PROPERTIES: Dialect = Dialect {
    role: |name| match name {
        // Statistics and the generating software say nothing about the content.
        b"document-statistic" | b"generator" | b"editing-duration" | b"editing-cycles" => {
            Role::Skip
        }
        _ => Role::Other,
    },
    text_in_paragraphs: false,
    properties: true,
};

/// Reads one XML part into `reader`, one paragraph per line, then closes the passage.
pub(crate) fn read(reader: &mut Reader<'_>, xml: &[u8], dialect: &Dialect) -> Step {
    let xml = transcode(xml);
    let mut walk = Walk {
        dialect,
        depth: 0,
        skip_from: None,
        in_text: 0,
        in_paragraph: 0,
        string_cell: false,
        in_value: false,
        header: None,
    };
    let step = walk.run(reader, &xml);
    reader.end_paragraph();
    reader.close_passage();
    step
}

/// The state of one walk through a part.
struct Walk<'d> {
    dialect: &'d Dialect,
    depth: usize,
    /// Inside a skipped element opened at this depth.
    skip_from: Option<usize>,
    in_text: usize,
    in_paragraph: usize,
    string_cell: bool,
    in_value: bool,
    /// The raw text of a spreadsheet header or footer being read.
    header: Option<String>,
}

impl Walk<'_> {
    fn run(&mut self, reader: &mut Reader<'_>, xml: &[u8]) -> Step {
        let mut parser = quick_xml::Reader::from_reader(xml);
        let config = parser.config_mut();
        // Damaged documents still get read: mismatched end tags are tolerated, not fatal.
        config.check_end_names = false;
        config.allow_unmatched_ends = true;
        config.allow_dangling_amp = true;
        loop {
            reader.tick()?;
            let event = match parser.read_event() {
                Ok(event) => event,
                Err(_) => {
                    reader.note(Incomplete::Corrupt);
                    return Ok(());
                }
            };
            match event {
                Event::Eof => return Ok(()),
                Event::Start(element) => {
                    self.depth += 1;
                    if self.depth > MAX_DEPTH {
                        reader.note(Incomplete::Corrupt);
                        return Ok(());
                    }
                    if self.skip_from.is_none() {
                        self.open(reader, &element, false)?;
                    }
                }
                Event::Empty(element) if self.skip_from.is_none() => {
                    self.open(reader, &element, true)?
                }
                Event::End(element) => {
                    match self.skip_from {
                        Some(from) if from == self.depth => self.skip_from = None,
                        Some(_) => {}
                        None => {
                            self.close(reader, (self.dialect.role)(element.local_name().as_ref()))?
                        }
                    }
                    self.depth = self.depth.saturating_sub(1);
                }
                Event::Text(text) if self.reading() => {
                    let text = text.xml10_content().unwrap_or_else(|_| lossy(&text));
                    self.emit(reader, &text)?;
                }
                Event::CData(text) if self.reading() => {
                    let text = String::from_utf8_lossy(&text);
                    self.emit(reader, &text)?;
                }
                Event::GeneralRef(reference) if self.reading() => {
                    // Character references and the five predefined entities only: anything else would need the
                    // DTD, which is never read.
                    let name = String::from_utf8_lossy(&reference);
                    let mut buf = [0u8; 4];
                    let text = match reference.resolve_char_ref() {
                        Ok(Some(c)) => c.encode_utf8(&mut buf),
                        _ => quick_xml::escape::resolve_predefined_entity(&name).unwrap_or(""),
                    };
                    self.emit(reader, text)?;
                }
                _ => {}
            }
        }
    }

    /// Whether the text node at this point is text to read.
    fn reading(&self) -> bool {
        self.skip_from.is_none()
            && (self.in_text > 0
                || self.header.is_some()
                || (self.in_value && self.string_cell)
                || (self.dialect.text_in_paragraphs && self.in_paragraph > 0)
                || self.dialect.properties)
    }

    fn emit(&mut self, reader: &mut Reader<'_>, text: &str) -> Step {
        if let Some(header) = &mut self.header {
            // Bounded by the part's size, itself bounded by the inflate budget.
            header.push_str(text);
            return reader.tick();
        }
        if self.dialect.properties {
            return reader.text(text);
        }
        // Lines come from elements; a line break inside a text node is layout whitespace.
        if text.contains(['\n', '\r', '\t']) {
            return reader.text(&text.replace(['\n', '\r', '\t'], " "));
        }
        reader.text(text)
    }

    fn open(&mut self, reader: &mut Reader<'_>, element: &BytesStart<'_>, empty: bool) -> Step {
        let role = (self.dialect.role)(element.local_name().as_ref());
        match role {
            Role::Paragraph => {
                reader.end_paragraph();
                if !empty {
                    self.in_paragraph += 1;
                }
            }
            Role::Text if !empty => self.in_text += 1,
            Role::Line => {
                reader.end_paragraph();
                if !empty {
                    self.in_text += 1;
                }
            }
            Role::Space => reader.text(" ")?,
            Role::Break => reader.end_paragraph(),
            Role::Skip if !empty => self.skip_from = Some(self.depth),
            Role::Cell => {
                reader.end_paragraph();
                // `str`: a formula's string result, kept in `<v>` (shared strings are read from their own part).
                self.string_cell = !empty
                    && element
                        .attributes()
                        .flatten()
                        .any(|a| a.key.local_name().as_ref() == b"t" && a.value.as_ref() == b"str");
            }
            Role::CellValue if !empty => self.in_value = true,
            Role::HeaderFooter if !empty => self.header = Some(String::new()),
            Role::Attribute(name) => {
                for attribute in element.attributes().flatten() {
                    if attribute.key.local_name().as_ref() == name {
                        let value = attribute
                            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                            .unwrap_or_else(|_| lossy(&attribute.value));
                        reader.end_paragraph();
                        reader.text(&value)?;
                        reader.end_paragraph();
                    }
                }
            }
            _ => {}
        }
        if self.dialect.properties && empty {
            reader.end_paragraph();
        }
        Ok(())
    }

    fn close(&mut self, reader: &mut Reader<'_>, role: Role) -> Step {
        match role {
            Role::Paragraph => {
                self.in_paragraph = self.in_paragraph.saturating_sub(1);
                reader.end_paragraph();
            }
            Role::Text => self.in_text = self.in_text.saturating_sub(1),
            Role::Line => {
                self.in_text = self.in_text.saturating_sub(1);
                reader.end_paragraph();
            }
            Role::Cell => {
                self.string_cell = false;
                reader.end_paragraph();
            }
            Role::CellValue => self.in_value = false,
            Role::HeaderFooter => {
                if let Some(header) = self.header.take() {
                    for section in header_sections(&header) {
                        reader.text(&section)?;
                        reader.end_paragraph();
                    }
                }
            }
            _ => {}
        }
        if self.dialect.properties {
            reader.end_paragraph();
        }
        Ok(())
    }
}

/// Whether `bytes` start like an XML document (after a byte order mark and white space): what tells a part that
/// holds XML from a file stored as a part (an embedded document, an image).
pub(crate) fn looks_like(bytes: &[u8]) -> bool {
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        return true;
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    bytes.trim_ascii_start().starts_with(b"<")
}

/// The local name of the root element of `xml` (the first bytes of a part are enough), when it is XML.
pub(crate) fn root(xml: &[u8]) -> Option<String> {
    if !looks_like(xml) {
        return None;
    }
    let xml = transcode(xml);
    let mut parser = quick_xml::Reader::from_reader(xml.as_ref());
    // Declarations, comments, processing instructions and a doctype come before the root; a part has few.
    for _ in 0..64 {
        match parser.read_event() {
            Ok(Event::Start(element) | Event::Empty(element)) => {
                return Some(lossy(element.local_name().as_ref()).into_owned());
            }
            Ok(Event::Eof) | Err(_) => return None,
            Ok(_) => {}
        }
    }
    None
}

/// An element of a part read for its attributes rather than its text (content types, relationships, a manifest).
#[derive(Debug)]
pub(crate) struct Element {
    /// The local name (prefixes differ between producers).
    pub(crate) name: String,
    /// Attributes by local name, values unescaped.
    attributes: Vec<(String, String)>,
}

impl Element {
    /// The value of the attribute of this local name.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Every element of `xml`, in document order. A part that does not parse gives the elements before the damage and
/// is noted `corrupt`.
pub(crate) fn elements(reader: &mut Reader<'_>, xml: &[u8]) -> Step<Vec<Element>> {
    let xml = transcode(xml);
    let mut parser = quick_xml::Reader::from_reader(xml.as_ref());
    let config = parser.config_mut();
    config.check_end_names = false;
    config.allow_unmatched_ends = true;
    let mut found = Vec::new();
    loop {
        reader.tick()?;
        match parser.read_event() {
            Ok(Event::Start(element) | Event::Empty(element)) => {
                let attributes = element
                    .attributes()
                    .flatten()
                    .map(|attribute| {
                        let value = attribute
                            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                            .unwrap_or_else(|_| lossy(&attribute.value));
                        (
                            lossy(attribute.key.local_name().as_ref()).into_owned(),
                            value.into_owned(),
                        )
                    })
                    .collect();
                found.push(Element {
                    name: lossy(element.local_name().as_ref()).into_owned(),
                    attributes,
                });
            }
            Ok(Event::Eof) => return Ok(found),
            Err(_) => {
                reader.note(Incomplete::Corrupt);
                return Ok(found);
            }
            Ok(_) => {}
        }
    }
}

/// The text of a spreadsheet header or footer without its `&` codes, one line per section (`&L`, `&C`, `&R`).
/// Codes: `&&` is `&`; `&"font,style"`; `&K` and six hex digits or a theme colour; a font size in digits; one
/// letter for a field (page number, date, file name...) or a style toggle.
pub(crate) fn header_sections(raw: &str) -> Vec<String> {
    let mut sections = vec![String::new()];
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '&' {
            if let Some(last) = sections.last_mut() {
                last.push(c);
            }
            continue;
        }
        match chars.next() {
            Some('&') => {
                if let Some(last) = sections.last_mut() {
                    last.push('&');
                }
            }
            Some('L' | 'C' | 'R') => sections.push(String::new()),
            Some('"') => {
                for c in chars.by_ref() {
                    if c == '"' {
                        break;
                    }
                }
            }
            Some('K') => {
                for _ in 0..6 {
                    chars.next_if(char::is_ascii_alphanumeric);
                }
            }
            Some(d) if d.is_ascii_digit() => while chars.next_if(char::is_ascii_digit).is_some() {},
            _ => {}
        }
    }
    sections.retain(|s| !s.trim().is_empty());
    sections
}

/// Office XML is UTF-8 in practice; a part with a UTF-16 byte order mark is transcoded first.
fn transcode(xml: &[u8]) -> Cow<'_, [u8]> {
    match encoding_rs::Encoding::for_bom(xml) {
        Some((encoding, _)) if encoding != encoding_rs::UTF_8 => {
            let (text, _, _) = encoding.decode(xml);
            Cow::Owned(text.into_owned().into_bytes())
        }
        _ => Cow::Borrowed(xml),
    }
}

fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spreadsheet header codes are stripped and each section is a line.
    #[test]
    fn header_codes_are_stripped() {
        let sections =
            header_sections("&L&\"Arial,Bold\"&12DIFFUSION RESTREINTE&C&P of &N&R&KFF0000A&&B");
        assert_eq!(sections, vec!["DIFFUSION RESTREINTE", " of ", "A&B"]);
    }
}
