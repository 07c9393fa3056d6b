//! SVG drawings: the text a viewer shows, line by line. A `<text>` element is a line; its `<tspan>`, `<textPath>`
//! and `<a>` runs are joined on that line as drawn (`DIFFUSION` + `RESTREINTE` in two tspans is one banner), and a
//! run starts a line of its own where the drawing starts one: Inkscape's `sodipodi:role="line"`, a new baseline
//! (`y`), or a return to a column with a line's advance (`x` with `dy`, what hand-written and d3 SVG use). A run
//! placed elsewhere on the same baseline (`x`, `dx`, a path) is set apart by a space. `<title>`, `<desc>`, the
//! metadata (Inkscape's document title, description, keywords) and the text of a `<foreignObject>` are lines too.
//! Comments and the labels a file carries for readers and editors (`aria-label`, `inkscape:label`, the document's
//! file name) are read in a passage of their own: whoever downloads the file gets them.
//!
//! White space is collapsed as SVG does by default (line breaks and tabs are spaces, runs of spaces one). The parser
//! is `quick-xml`, as for office XML: no DTD is read, so no entity is expanded; the walk is iterative and bounded.

use quick_xml::events::{BytesStart, Event};

use crate::reader::{Incomplete, Reader, Step};

use super::charset;

/// Elements nested deeper than this end the file (noted `corrupt`): real drawings nest a few dozen levels.
const MAX_DEPTH: usize = 4096;

/// Attributes (by local name) whose value is a label meant for people: screen readers, editors' layer names, the
/// document's name.
const LABELS: &[&[u8]] = &[
    b"aria-label",
    b"aria-description",
    b"label",
    b"docname",
    b"alt",
];

/// Elements of HTML inside a `<foreignObject>` that end a line.
const BLOCKS: &[&[u8]] = &[
    b"p", b"div", b"br", b"li", b"tr", b"h1", b"h2", b"h3", b"h4", b"h5", b"h6", b"table", b"ul",
    b"ol",
];

/// Whether `head` (the start of a text file) is an SVG document: its root element, after an XML declaration,
/// comments and a document type declaration, is `svg` (with or without a prefix).
pub(crate) fn looks_like(head: &str) -> bool {
    let mut rest = head.trim_start_matches('\u{FEFF}');
    loop {
        rest = rest.trim_start();
        let skipped = if let Some(after) = rest.strip_prefix("<!--") {
            after.find("-->").map(|end| &after[end + 3..])
        } else if rest.starts_with("<?") {
            rest.find("?>").map(|end| &rest[end + 2..])
        } else if rest.starts_with("<!DOCTYPE") || rest.starts_with("<!doctype") {
            // An internal subset (`[...]`) may hold `>`: skip to its end first.
            let subset_end = match (rest.find('['), rest.find('>')) {
                (Some(open), Some(close)) if open < close => rest.find("]").map(|end| end + 1),
                _ => Some(0),
            };
            subset_end.and_then(|from| rest[from..].find('>').map(|end| &rest[from + end + 1..]))
        } else {
            break;
        };
        match skipped {
            Some(after) => rest = after,
            None => return false,
        }
    }
    let Some(tag) = rest.strip_prefix('<') else {
        return false;
    };
    let name_end = tag
        .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
        .unwrap_or(tag.len());
    let name = &tag[..name_end];
    let local = name.rsplit(':').next().unwrap_or(name);
    local == "svg" && name_end < tag.len()
}

/// Reads an SVG file.
pub(crate) fn read(reader: &mut Reader<'_>, bytes: &[u8]) -> Step {
    let text = match charset::detect(bytes) {
        Some(charset) => charset::decode(bytes, charset),
        None => String::from_utf8_lossy(bytes),
    };
    let mut walk = Walk::default();
    let step = walk.run(reader, text.as_bytes());
    reader.end_paragraph();
    reader.close_passage();
    step?;
    // Comments and labels, apart from the drawing's text.
    for hidden in &walk.hidden {
        for line in hidden.lines() {
            if !line.trim().is_empty() {
                reader.text(line.trim())?;
                reader.end_paragraph();
            }
        }
    }
    reader.close_passage();
    Ok(())
}

/// Where the walk stands inside the drawing's text.
#[derive(Default)]
struct Walk {
    depth: usize,
    /// Inside `<style>` or `<script>` opened at this depth: nothing is read.
    skip_from: Option<usize>,
    /// Open `<text>` elements.
    in_text: usize,
    /// Open `<title>`, `<desc>`, `<metadata>` and `<foreignObject>` elements: their text nodes are read.
    in_block: usize,
    /// The baseline (`y`) of the current line of a `<text>`.
    baseline: Option<f64>,
    /// The line so far ends with a space, or nothing has been written on it (no space to add).
    spaced: bool,
    /// A run placed apart on the same line: a space before its text.
    pending_space: bool,
    /// Comments and label attributes.
    hidden: Vec<String>,
}

impl Walk {
    fn run(&mut self, reader: &mut Reader<'_>, xml: &[u8]) -> Step {
        let mut parser = quick_xml::Reader::from_reader(xml);
        let config = parser.config_mut();
        config.check_end_names = false;
        config.allow_unmatched_ends = true;
        config.allow_dangling_amp = true;
        self.spaced = true;
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
                        self.open(reader, &element, false);
                    }
                }
                Event::Empty(element) if self.skip_from.is_none() => {
                    self.open(reader, &element, true)
                }
                Event::End(element) => {
                    match self.skip_from {
                        Some(from) if from == self.depth => self.skip_from = None,
                        Some(_) => {}
                        None => self.close(reader, element.local_name().as_ref()),
                    }
                    self.depth = self.depth.saturating_sub(1);
                }
                Event::Text(text) if self.reading() => {
                    let text = text
                        .xml10_content()
                        .unwrap_or_else(|_| String::from_utf8_lossy(&text));
                    self.write(reader, &text)?;
                }
                Event::CData(text) if self.reading() => {
                    self.write(reader, &String::from_utf8_lossy(&text))?;
                }
                Event::GeneralRef(reference) if self.reading() => {
                    // Character references and the five predefined entities only: the DTD is never read.
                    let name = String::from_utf8_lossy(&reference);
                    let mut buf = [0u8; 4];
                    let text = match reference.resolve_char_ref() {
                        Ok(Some(c)) => c.encode_utf8(&mut buf),
                        _ => quick_xml::escape::resolve_predefined_entity(&name).unwrap_or(""),
                    };
                    self.write(reader, text)?;
                }
                Event::Comment(comment) => {
                    self.hidden
                        .push(String::from_utf8_lossy(&comment).into_owned());
                }
                _ => {}
            }
        }
    }

    fn reading(&self) -> bool {
        self.skip_from.is_none() && (self.in_text > 0 || self.in_block > 0)
    }

    fn open(&mut self, reader: &mut Reader<'_>, element: &BytesStart<'_>, empty: bool) {
        let mut y = None;
        let (mut x, mut dx, mut dy, mut line_role) = (false, false, false, false);
        for attribute in element.attributes().flatten() {
            let key = attribute.key.local_name();
            let value = attribute
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .unwrap_or_else(|_| String::from_utf8_lossy(&attribute.value));
            match key.as_ref() {
                b"x" => x = true,
                b"dx" => dx = true,
                b"y" => y = first_number(&value),
                b"dy" => dy = first_number(&value).is_some_and(|d| d != 0.0),
                b"role" => line_role = value == "line",
                name if LABELS.contains(&name) && !value.trim().is_empty() => {
                    self.hidden.push(value.into_owned());
                }
                _ => {}
            }
        }
        match element.local_name().as_ref() {
            b"style" | b"script" if !empty => self.skip_from = Some(self.depth),
            b"text" => {
                self.new_line(reader);
                self.baseline = y;
                if !empty {
                    self.in_text += 1;
                }
            }
            b"tspan" | b"textPath" | b"a" if self.in_text > 0 => {
                let new_baseline =
                    y.is_some_and(|y| self.baseline.is_none_or(|b| (b - y).abs() > 1e-6));
                if line_role || new_baseline || (x && dy) {
                    self.new_line(reader);
                } else if x || dx || element.local_name().as_ref() == b"textPath" {
                    self.pending_space = true;
                }
                if y.is_some() {
                    self.baseline = y;
                }
            }
            b"title" | b"desc" | b"metadata" | b"foreignObject" if !empty => {
                self.new_line(reader);
                self.in_block += 1;
            }
            name if self.in_block > 0 && BLOCKS.contains(&name) => self.new_line(reader),
            _ if self.in_block > 0 && self.in_text == 0 => self.pending_space = true,
            _ => {}
        }
    }

    fn close(&mut self, reader: &mut Reader<'_>, name: &[u8]) {
        match name {
            b"text" => {
                self.in_text = self.in_text.saturating_sub(1);
                self.new_line(reader);
            }
            b"title" | b"desc" | b"metadata" | b"foreignObject" => {
                self.in_block = self.in_block.saturating_sub(1);
                self.new_line(reader);
            }
            // Each value of a metadata or HTML element is a line of its own.
            _ if self.in_block > 0 && self.in_text == 0 => self.new_line(reader),
            _ => {}
        }
    }

    fn new_line(&mut self, reader: &mut Reader<'_>) {
        reader.end_paragraph();
        self.spaced = true;
        self.pending_space = false;
    }

    /// Writes a text node, its white space collapsed.
    fn write(&mut self, reader: &mut Reader<'_>, text: &str) -> Step {
        let mut collapsed = String::with_capacity(text.len());
        for c in text.chars() {
            let c = if c.is_whitespace() { ' ' } else { c };
            if c == ' '
                && (collapsed.ends_with(' ')
                    || (collapsed.is_empty() && (self.spaced || self.pending_space)))
            {
                continue;
            }
            collapsed.push(c);
        }
        if collapsed.is_empty() {
            return Ok(());
        }
        if self.pending_space && !self.spaced {
            reader.text(" ")?;
        }
        self.pending_space = false;
        reader.text(&collapsed)?;
        self.spaced = collapsed.ends_with(' ');
        Ok(())
    }
}

/// The first number of a coordinate list (`10`, `10 20 30`, `1.2em`).
fn first_number(value: &str) -> Option<f64> {
    let token = value
        .split([' ', ',', '\t', '\n'])
        .find(|t| !t.is_empty())?;
    // The longest prefix that is a number: `1.2em` is 1.2, `1e3` is 1000.
    let end = token
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E')))
        .unwrap_or(token.len());
    (1..=end).rev().find_map(|len| token[..len].parse().ok())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{MARK, fixture, has_mark_line, lines, scan};

    /// Inkscape's text: two tspans of one line are one line (`DIFFUSION` + `RESTREINTE`), lines of one text
    /// element (`sodipodi:role="line"`) are lines.
    #[test]
    fn tspans_of_one_line_are_joined() {
        let scan = scan(&fixture("svg/inkscape_two_tspans.svg"));
        assert_eq!(scan.format.as_str(), "svg");
        assert_eq!(scan.incomplete, None);
        let lines = lines(&scan);
        assert!(has_mark_line(&scan), "{lines:?}");
        assert!(lines.contains(&"Organigramme de la direction".to_owned()));
        assert!(lines.contains(&"Version du 12 mars 2024".to_owned()));
        assert!(
            !lines
                .iter()
                .any(|l| l.contains("tspan") || l.contains("sodipodi"))
        );
    }

    /// Runs placed on one baseline are one line; title and description are lines too.
    #[test]
    fn positioned_runs_title_and_description() {
        let scan = scan(&fixture("svg/illustrator_banner_runs.svg"));
        assert_eq!(scan.format.as_str(), "svg");
        let lines = lines(&scan);
        for expected in [
            "TRÈS SECRET",
            "Bureau du budget",
            "Organigramme",
            "Direction des affaires financières",
        ] {
            assert!(
                lines.contains(&expected.to_owned()),
                "{expected}: {lines:?}"
            );
        }
    }

    /// Separate text elements are separate lines; a tspan that starts a new line (`x` and `dy`) is one too.
    #[test]
    fn text_elements_are_lines() {
        let svg = br##"<svg xmlns="http://www.w3.org/2000/svg"><text x="0" y="10">Budget</text><text x="0" y="30">DIFFUSION <tspan font-weight="bold">RESTREINTE</tspan></text><text x="0" y="50"><tspan x="0" dy="0">Ligne un</tspan><tspan x="0" dy="1.2em">Ligne deux</tspan><textPath href="#p">sur un chemin</textPath></text></svg>"##;
        let scan = scan(svg);
        assert_eq!(scan.format.as_str(), "svg");
        assert_eq!(
            lines(&scan),
            vec!["Budget", MARK, "Ligne un", "Ligne deux sur un chemin"]
        );
    }

    /// Comments and labels are read, apart from the drawing's text; style sheets and scripts are not text.
    #[test]
    fn comments_and_labels_apart_style_skipped() {
        let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" aria-label="Plan du site"><!-- DIFFUSION RESTREINTE --><style>.SECRET { fill: red }</style><text>Plan</text></svg>"#;
        let scan = scan(svg);
        assert_eq!(scan.passages.len(), 2, "{:?}", lines(&scan));
        assert_eq!(scan.passages[0].as_str().trim(), "Plan");
        assert_eq!(lines(&scan), vec!["Plan", "Plan du site", MARK]);
    }

    /// The root element decides: an SVG without declaration is SVG; HTML holding an inline SVG is HTML.
    #[test]
    fn sniffed_by_its_root() {
        assert_eq!(
            scan(b"<svg xmlns=\"http://www.w3.org/2000/svg\"><text>x</text></svg>")
                .format
                .as_str(),
            "svg"
        );
        assert_eq!(
            scan(b"<html><body><svg><text>x</text></svg></body></html>")
                .format
                .as_str(),
            "html"
        );
        assert_eq!(scan(b"<svgfoo>x</svgfoo>").format.as_str(), "text");
    }

    /// No DTD is read: an entity declared in the document is not expanded.
    #[test]
    fn entities_are_not_expanded() {
        let svg = br#"<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY m "DIFFUSION RESTREINTE">]><svg xmlns="http://www.w3.org/2000/svg"><text>&m;</text></svg>"#;
        let scan = scan(svg);
        assert_eq!(scan.format.as_str(), "svg");
        assert!(!has_mark_line(&scan));
    }
}
