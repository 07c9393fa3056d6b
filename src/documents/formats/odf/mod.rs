//! OpenDocument files (odt, ods, odp and templates): the body (`content.xml`), the page headers and footers
//! (`styles.xml`), the properties (`meta.xml`) and embedded objects (`Object 1/content.xml`); also Flat ODF, the
//! same document as one XML file.

use crate::documents::{
    Format,
    reader::{Incomplete, Reader, Step},
};

use super::xml::{self, Dialect, Role};
use super::zip::{self, Archive, MAX_ENTRIES};

/// OpenDocument text: every text node inside a paragraph or heading, spans joined.
const ODF: Dialect = Dialect {
    role: |name| match name {
        // `title`...`user-defined`: the properties in `meta.xml` (and inside Flat ODF), a line each; `title` and
        // `desc` are also shapes' alternative text.
        b"p" | b"h" | b"title" | b"subject" | b"keyword" | b"description" | b"user-defined"
        | b"desc" => Role::Paragraph,
        b"s" | b"tab" => Role::Space,
        b"line-break" => Role::Break,
        // A sheet's name.
        b"table" => Role::Attribute(b"name"),
        // An annotation's author and date, and a footnote's number, would split the paragraph they sit in.
        // `binary-data`: an image inside Flat ODF.
        b"creator" | b"date" | b"note-citation" | b"binary-data" => Role::Skip,
        _ => Role::Other,
    },
    text_in_paragraphs: true,
    properties: false,
};

/// Where a part comes in the reading order; `None` for parts without text.
fn rank(name: &str) -> Option<u8> {
    let name = name.replace('\\', "/").to_ascii_lowercase();
    match name.as_str() {
        "content.xml" => Some(0),
        "styles.xml" => Some(1),
        "meta.xml" => Some(2),
        _ if name.ends_with("/content.xml") || name.ends_with("/styles.xml") => Some(3),
        _ => None,
    }
}

/// Reads an OpenDocument file (`format` is odt, ods or odp; every text part is read whatever it is).
pub(crate) fn read(reader: &mut Reader<'_>, _format: Format, bytes: &[u8]) -> Step {
    if !Archive::looks_like(bytes) {
        return xml::read(reader, bytes, &ODF);
    }
    let archive = Archive::open(bytes, MAX_ENTRIES);
    if archive.damaged {
        reader.note(Incomplete::Corrupt);
    }
    if archive.too_many {
        reader.note(Incomplete::SizeLimit);
    }
    // A password-protected document keeps its parts encrypted without the zip encryption flag; the manifest says
    // so. Only `meta.xml` stays in the clear.
    let mut encrypted = false;
    if let Some(manifest) = archive.find("META-INF/manifest.xml")
        && let Some(manifest) = archive.contents(reader, manifest)?
    {
        encrypted = manifest.windows(15).any(|w| w == b"encryption-data");
    }
    if encrypted {
        reader.note(Incomplete::Encrypted);
    }
    let mut parts: Vec<_> = archive
        .entries
        .iter()
        .filter_map(|entry| rank(&entry.name).map(|rank| (rank, entry)))
        .filter(|(rank, _)| !encrypted || *rank == 2)
        .collect();
    parts.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| zip::natural_order(&a.1.name, &b.1.name))
    });
    for (_, entry) in parts {
        reader.tick()?;
        if let Some(contents) = archive.contents(reader, entry)? {
            xml::read(reader, &contents, &ODF)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{MARK, fixture, has_mark_line, lines, scan, zip};
    use crate::documents::{Format, Incomplete};

    /// A text document marked only in its page header (in `styles.xml`) is read as marked.
    #[test]
    fn marking_only_in_the_page_header() {
        let scan = scan(&fixture("odf/marking_in_page_header.odt"));
        assert_eq!(scan.format, Format::Odt);
        assert_eq!(scan.incomplete, None);
        assert!(has_mark_line(&scan), "{:?}", lines(&scan));
    }

    /// Spans of a paragraph are joined into one line.
    #[test]
    fn spans_are_joined() {
        assert!(has_mark_line(&scan(&fixture("odf/split_spans.odt"))));
    }

    /// Spreadsheets (every sheet) and presentations are read.
    #[test]
    fn spreadsheets_and_presentations() {
        let ods = scan(&fixture("odf/marking_in_second_sheet.ods"));
        assert_eq!(ods.format, Format::Ods);
        assert!(has_mark_line(&ods), "{:?}", lines(&ods));
        let odp = scan(&fixture("odf/marking_on_slide.odp"));
        assert_eq!(odp.format, Format::Odp);
        assert!(has_mark_line(&odp), "{:?}", lines(&odp));
    }

    /// LibreOffice's own spreadsheet (marking in the second sheet) and presentation (marking in the layout).
    #[test]
    fn libreoffice_files() {
        let ods = scan(&fixture("odf/libreoffice_second_sheet.ods"));
        assert_eq!(ods.format, Format::Ods);
        assert!(has_mark_line(&ods), "{:?}", lines(&ods));
        let odp = scan(&fixture("odf/libreoffice_layout.odp"));
        assert_eq!(odp.format, Format::Odp);
        assert!(has_mark_line(&odp), "{:?}", lines(&odp));
    }

    /// Spaces, tabs and line breaks; annotations on a line of their own without author and date; user-defined
    /// properties; embedded objects.
    #[test]
    fn elements_of_the_text() {
        let content = r#"<office:document-content xmlns:office="o" xmlns:text="t" xmlns:dc="d"><office:body><office:text>
            <text:p>A<text:s text:c="3"/>B<text:tab/>C<text:line-break/>D</text:p>
            <text:p>DIFFUSION <office:annotation><dc:creator>Jo</dc:creator><dc:date>2024</dc:date><text:p>note</text:p></office:annotation></text:p>
            </office:text></office:body></office:document-content>"#;
        let meta = format!(
            r#"<office:document-meta xmlns:office="o" xmlns:meta="m"><office:meta><meta:generator>LO</meta:generator><meta:user-defined meta:name="Classification">{MARK}</meta:user-defined></office:meta></office:document-meta>"#
        );
        let object = r#"<office:document-content xmlns:office="o" xmlns:text="t"><text:p>embedded</text:p></office:document-content>"#;
        let odt = zip(&[
            ("mimetype", b"application/vnd.oasis.opendocument.text"),
            ("content.xml", content.as_bytes()),
            ("meta.xml", meta.as_bytes()),
            ("Object 1/content.xml", object.as_bytes()),
        ]);
        let scan = scan(&odt);
        assert_eq!(scan.format, Format::Odt);
        assert_eq!(
            lines(&scan),
            vec!["A B C", "D", "DIFFUSION", "note", MARK, "embedded"]
        );
    }

    /// Without a `mimetype` entry, the manifest's root entry tells the format.
    #[test]
    fn manifest_without_mimetype() {
        let manifest = r#"<manifest:manifest xmlns:manifest="m"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/></manifest:manifest>"#;
        let content = format!(r#"<c xmlns:text="t"><text:p>{MARK}</text:p></c>"#);
        let ods = zip(&[
            ("META-INF/manifest.xml", manifest.as_bytes()),
            ("content.xml", content.as_bytes()),
        ]);
        let scan = scan(&ods);
        assert_eq!(scan.format, Format::Ods);
        assert!(has_mark_line(&scan));
    }

    /// A password-protected document (the manifest holds encryption data) is noted `encrypted`.
    #[test]
    fn encrypted_document() {
        let manifest = r#"<manifest:manifest xmlns:manifest="m"><manifest:file-entry manifest:full-path="content.xml"><manifest:encryption-data/></manifest:file-entry></manifest:manifest>"#;
        let odt = zip(&[
            ("mimetype", b"application/vnd.oasis.opendocument.text"),
            ("content.xml", b"\x93\x11garbage"),
            ("META-INF/manifest.xml", manifest.as_bytes()),
        ]);
        assert_eq!(scan(&odt).incomplete, Some(Incomplete::Encrypted));
    }

    /// Flat ODF (one XML file) is read too.
    #[test]
    fn flat_odf() {
        let fodt = format!(
            r#"<?xml version="1.0"?><office:document xmlns:office="o" xmlns:text="t" office:mimetype="application/vnd.oasis.opendocument.text"><office:body><office:text><text:p>{MARK}</text:p></office:text></office:body></office:document>"#
        );
        let scan = scan(fodt.as_bytes());
        assert_eq!(scan.format, Format::Odt);
        assert!(has_mark_line(&scan));
    }
}
