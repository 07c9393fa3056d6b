//! OpenDocument files (odt, ods, odp and templates): the body (`content.xml`), the page headers and footers
//! (`styles.xml`), the properties (`meta.xml`), the same parts of embedded objects (`Object 1/content.xml`), and the
//! other files the manifest lists (images, objects stored whole) one level deeper; also Flat ODF, the same document
//! as one XML file.
//!
//! The specification fixes the names of the XML parts, so they are found by name, manifest or not (a package read
//! front to back meets LibreOffice's manifest last); the manifest adds the files that have no fixed name and says
//! which entries are encrypted.

mod manifest;

use crate::{
    Format,
    reader::{Incomplete, Reader, Step},
};

use super::xml::{self, Dialect, Role};
use super::zip::{self, Archive, MAX_ENTRIES};
use manifest::Manifest;

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

/// What an entry of the package is, for reading. The order of the variants is the reading order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    /// The document's `content.xml`.
    Content,
    /// The document's `styles.xml`: page headers and footers.
    Styles,
    /// The document's `meta.xml`.
    Meta,
    /// A part of an embedded object (`Object 1/content.xml`, `styles.xml`, `meta.xml`).
    Object,
    /// A file the manifest lists that is not an OpenDocument part: an image, an object stored whole (an OLE object,
    /// a document): read as the upload it would be.
    File,
}

/// What the entry `name` is; `None` for entries without text.
fn part(name: &str, manifest: Option<&Manifest>) -> Option<Part> {
    let path = manifest::key(name);
    let top = path.split('/').next().unwrap_or_default();
    // Previews (of the first page, of each object) show what the parts hold; the producer's configuration and the
    // package's own description hold no text.
    if matches!(
        top,
        "thumbnails" | "objectreplacements" | "configurations2" | "meta-inf"
    ) {
        return None;
    }
    let (folder, file) = path.rsplit_once('/').unwrap_or(("", &path));
    match (folder, file) {
        ("", "content.xml") => return Some(Part::Content),
        ("", "styles.xml") => return Some(Part::Styles),
        ("", "meta.xml") => return Some(Part::Meta),
        (_, "content.xml" | "styles.xml" | "meta.xml") => return Some(Part::Object),
        _ => {}
    }
    // Other XML (settings, RDF metadata) holds no text.
    let listed = manifest?.get(name)?;
    let media = listed.media_type.as_str();
    let xml = matches!(media, "text/xml" | "application/xml")
        || media.ends_with("+xml")
        || file.ends_with(".xml")
        || file.ends_with(".rdf");
    (!xml && !file.is_empty()).then_some(Part::File)
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
    let mut manifest = None;
    if let Some(entry) = archive.find(manifest::PATH)
        && let Some(xml) = archive.contents(reader, entry)?
    {
        manifest = Some(Manifest::parse(reader, &xml)?);
    }
    let mut parts = Vec::new();
    for entry in &archive.entries {
        reader.tick()?;
        if entry.is_dir() {
            continue;
        }
        let Some(part) = part(&entry.name, manifest.as_ref()) else {
            continue;
        };
        // Encrypted entries are ciphertext (a password-protected document leaves only `meta.xml` in the clear).
        if manifest
            .as_ref()
            .and_then(|manifest| manifest.get(&entry.name))
            .is_some_and(|listed| listed.encrypted)
        {
            reader.note(Incomplete::Encrypted);
            continue;
        }
        parts.push((part, entry));
    }
    parts.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| zip::natural_order(&a.1.name, &b.1.name))
    });
    for (part, entry) in parts {
        reader.tick()?;
        let Some(contents) = archive.contents(reader, entry)? else {
            continue;
        };
        match part {
            Part::File => {
                super::nested(reader, &contents)?;
            }
            _ => xml::read(reader, &contents, &ODF)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{MARK, fixture, has_mark_line, lines, scan, zip};
    use crate::{Format, Incomplete};

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

    /// An embedded object (a spreadsheet inserted into a text) is read from its own folder.
    #[test]
    fn embedded_object() {
        let scan = scan(&fixture("odf/marking_in_embedded_object.odt"));
        assert_eq!(scan.format, Format::Odt);
        assert_eq!(scan.incomplete, None);
        assert!(has_mark_line(&scan), "{:?}", lines(&scan));
    }

    /// A file the manifest lists that is not an OpenDocument part (an embedded document kept whole) is read as the
    /// upload it would be.
    #[test]
    fn files_the_manifest_lists() {
        let inner = fixture("office/marking_in_header.docx");
        let manifest = r#"<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.text"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/><manifest:file-entry manifest:full-path="Annexes/note.docx" manifest:media-type="application/vnd.openxmlformats-officedocument.wordprocessingml.document"/></manifest:manifest>"#;
        let content = r#"<office:document-content xmlns:office="o" xmlns:text="t"><office:body><office:text><text:p>Voir l'annexe.</text:p></office:text></office:body></office:document-content>"#;
        let odt = zip(&[
            ("mimetype", b"application/vnd.oasis.opendocument.text"),
            ("content.xml", content.as_bytes()),
            ("Annexes/note.docx", &inner),
            ("META-INF/manifest.xml", manifest.as_bytes()),
        ]);
        let scan = scan(&odt);
        assert_eq!(scan.format, Format::Odt);
        assert!(has_mark_line(&scan), "{:?}", lines(&scan));
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
