//! Office Open XML packages (docx, xlsx, pptx and their macro-enabled and template variants): every part that
//! holds text a reader can see or that a labelling tool writes, in a fixed order, and embedded files one level
//! deeper.
//!
//! Parts are chosen by name rather than through the relationship files: every producer seen (Word, Excel,
//! PowerPoint, LibreOffice, Google Docs, python-docx/openpyxl/python-pptx) uses the conventional names, and a part
//! left out of the relationships by a hostile producer is still in the file, so still read.

use crate::documents::{
    Format,
    reader::{Incomplete, Reader, Step},
};

use super::xml::{self, Dialect, PROPERTIES, Role};
use super::zip::{self, Archive, MAX_ENTRIES};

/// How a part is read.
#[derive(Debug, Clone, Copy)]
enum Part {
    Xml(&'static Dialect),
    /// A file embedded in the document (`word/embeddings/...`): read like an upload, one level deeper.
    Embedded,
}

/// The text elements shared by WordprocessingML, DrawingML (text boxes, shapes, slides, SmartArt) and
/// SpreadsheetML strings and comments.
fn office_role(name: &[u8]) -> Role {
    match name {
        // `si`: a shared string; `comment`/`threadedComment`: spreadsheet comments.
        b"p" | b"si" | b"comment" | b"threadedComment" => Role::Paragraph,
        // `delText`: deleted text under change tracking is still in the file. `text`: comments' text.
        b"t" | b"delText" | b"text" => Role::Text,
        b"tab" | b"ptab" => Role::Space,
        b"br" | b"cr" => Role::Break,
        // `Fallback`: a second (VML) copy of a text box already read in `Choice`. `rPh`: phonetic guides.
        // `instrText`: field codes, not shown text.
        b"Fallback" | b"rPh" | b"instrText" | b"delInstrText" => Role::Skip,
        _ => Role::Other,
    }
}

const OFFICE: Dialect = Dialect {
    role: office_role,
    text_in_paragraphs: false,
    properties: false,
};

/// Worksheets: inline strings and formula string results, cell by cell, and page headers and footers.
const SHEET: Dialect = Dialect {
    role: |name| match name {
        b"c" => Role::Cell,
        b"v" => Role::CellValue,
        b"oddHeader" | b"oddFooter" | b"evenHeader" | b"evenFooter" | b"firstHeader"
        | b"firstFooter" => Role::HeaderFooter,
        other => office_role(other),
    },
    text_in_paragraphs: false,
    properties: false,
};

/// The workbook part: the sheets' names.
const WORKBOOK: Dialect = Dialect {
    role: |name| match name {
        b"sheet" => Role::Attribute(b"name"),
        _ => Role::Other,
    },
    text_in_paragraphs: false,
    properties: false,
};

/// Where a part comes in the reading order, and how it is read; `None` for parts without text.
fn part(name: &str) -> Option<(u8, Part)> {
    let name = name.replace('\\', "/").to_ascii_lowercase();
    let name = name.trim_start_matches('/');
    let xml = name.ends_with(".xml");
    let under = |folder: &str, stem: &str| {
        name.strip_prefix(folder)
            .is_some_and(|rest| !rest.contains('/') && rest.starts_with(stem))
            && xml
    };
    let found = if under("word/", "document") {
        (0, Part::Xml(&OFFICE))
    } else if under("word/", "header") {
        (1, Part::Xml(&OFFICE))
    } else if under("word/", "footer") {
        (2, Part::Xml(&OFFICE))
    } else if under("word/", "footnotes") || under("word/", "endnotes") {
        (3, Part::Xml(&OFFICE))
    } else if under("word/", "comments") {
        (4, Part::Xml(&OFFICE))
    } else if name == "xl/workbook.xml" {
        (0, Part::Xml(&WORKBOOK))
    } else if under("xl/", "sharedstrings") {
        (1, Part::Xml(&OFFICE))
    } else if under("xl/worksheets/", "") {
        (2, Part::Xml(&SHEET))
    } else if under("xl/", "comments") || under("xl/threadedcomments/", "") {
        (3, Part::Xml(&OFFICE))
    } else if under("xl/drawings/", "drawing") {
        (4, Part::Xml(&OFFICE))
    } else if under("ppt/slides/", "") {
        (0, Part::Xml(&OFFICE))
    } else if under("ppt/notesslides/", "") {
        (1, Part::Xml(&OFFICE))
    } else if under("ppt/slidelayouts/", "") {
        (2, Part::Xml(&OFFICE))
    } else if under("ppt/slidemasters/", "") {
        (3, Part::Xml(&OFFICE))
    } else if under("ppt/notesmasters/", "") || under("ppt/handoutmasters/", "") {
        (4, Part::Xml(&OFFICE))
    } else if under("ppt/comments/", "") {
        (5, Part::Xml(&OFFICE))
    } else if under("word/diagrams/", "data")
        || under("xl/diagrams/", "data")
        || under("ppt/diagrams/", "data")
    {
        // SmartArt text.
        (6, Part::Xml(&OFFICE))
    } else if under("docprops/", "core")
        || under("docprops/", "custom")
        || under("docprops/", "app")
    {
        // Title, subject, keywords, description; custom properties, where labelling tools write a label.
        (7, Part::Xml(&PROPERTIES))
    } else if under("customxml/", "item") && !name.starts_with("customxml/itemprops") {
        // Labelling tools also keep their metadata in custom XML parts.
        (8, Part::Xml(&PROPERTIES))
    } else if ["word/embeddings/", "xl/embeddings/", "ppt/embeddings/"]
        .iter()
        .any(|folder| name.starts_with(folder) && name.len() > folder.len())
    {
        (9, Part::Embedded)
    } else {
        return None;
    };
    Some(found)
}

/// Reads an Office Open XML package (`format` is docx, xlsx or pptx; every text part is read whatever it is).
pub(crate) fn read(reader: &mut Reader<'_>, _format: Format, bytes: &[u8]) -> Step {
    let archive = Archive::open(bytes, MAX_ENTRIES);
    if archive.damaged {
        reader.note(Incomplete::Corrupt);
    }
    if archive.too_many {
        reader.note(Incomplete::SizeLimit);
    }
    let mut parts: Vec<_> = archive
        .entries
        .iter()
        .filter_map(|entry| part(&entry.name).map(|(rank, how)| (rank, entry, how)))
        .collect();
    parts.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| zip::natural_order(&a.1.name, &b.1.name))
    });
    for (_, entry, how) in parts {
        reader.tick()?;
        let Some(contents) = archive.contents(reader, entry)? else {
            continue;
        };
        match how {
            Part::Xml(dialect) => xml::read(reader, &contents, dialect)?,
            Part::Embedded => {
                super::nested(reader, &contents)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{MARK, fixture, has_mark_line, lines, package, scan, zip};
    use crate::documents::{Format, Incomplete};

    const W: &str = r#"xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main""#;

    /// A python-docx document marked only in its page header is read as marked.
    #[test]
    fn marking_only_in_the_header() {
        let scan = scan(&fixture("office/marking_in_header.docx"));
        assert_eq!(scan.format, Format::Docx);
        assert_eq!(scan.incomplete, None);
        assert!(has_mark_line(&scan), "{:?}", lines(&scan));
    }

    /// The same document as LibreOffice writes it: the marking in its header part.
    #[test]
    fn libreoffice_docx_header() {
        let scan = scan(&fixture("office/libreoffice_header.docx"));
        assert_eq!(scan.format, Format::Docx);
        assert!(has_mark_line(&scan), "{:?}", lines(&scan));
    }

    /// A word split across runs (`DIFFU` | `SION RES` | `TREINTE`) is read whole, on one line.
    #[test]
    fn runs_of_a_paragraph_are_joined() {
        let scan = scan(&fixture("office/split_runs.docx"));
        assert!(has_mark_line(&scan), "{:?}", lines(&scan));
    }

    /// The core properties (here the keywords) are read.
    #[test]
    fn core_properties_are_read() {
        let scan = scan(&fixture("office/marking_in_keywords.docx"));
        assert!(has_mark_line(&scan), "{:?}", lines(&scan));
    }

    /// A custom property, where labelling tools write their label, is read.
    #[test]
    fn custom_properties_are_read() {
        let custom = format!(
            r#"<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/custom-properties" xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes"><property fmtid="{{D5CDD505-2E9C-101B-9397-08002B2CF9AE}}" pid="2" name="Classification"><vt:lpwstr>{MARK}</vt:lpwstr></property></Properties>"#
        );
        let body = format!(
            r#"<w:document {W}><w:body><w:p><w:r><w:t>Texte</w:t></w:r></w:p></w:body></w:document>"#
        );
        let docx = package(
            "word/document.xml",
            &[
                ("word/document.xml", &body),
                ("docProps/custom.xml", &custom),
            ],
        );
        assert!(has_mark_line(&scan(&docx)));
    }

    /// Tabs and breaks separate words and lines; deleted text is still read; a text box's fallback copy is not
    /// read twice; field codes are not text.
    #[test]
    fn tabs_breaks_deleted_text_and_text_boxes() {
        let body = format!(
            r#"<w:document {W} xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006"><w:body>
            <w:p><w:r><w:t>A</w:t><w:tab/><w:t>B</w:t><w:br/><w:t xml:space="preserve">C </w:t></w:r></w:p>
            <w:p><w:del><w:r><w:delText>DIFFUSION </w:delText></w:r></w:del><w:r><w:t>RESTREINTE</w:t></w:r></w:p>
            <w:p><w:r><mc:AlternateContent><mc:Choice><w:txbxContent><w:p><w:r><w:t>boxed</w:t></w:r></w:p></w:txbxContent></mc:Choice>
            <mc:Fallback><w:txbxContent><w:p><w:r><w:t>boxed</w:t></w:r></w:p></w:txbxContent></mc:Fallback></mc:AlternateContent></w:r>
            <w:r><w:instrText> PAGE </w:instrText></w:r><w:r><w:t>after &amp; &#233;</w:t></w:r></w:p>
            </w:body></w:document>"#
        );
        let scan = scan(&package(
            "word/document.xml",
            &[("word/document.xml", &body)],
        ));
        assert_eq!(lines(&scan), vec!["A B", "C", MARK, "boxed", "after & é"]);
    }

    /// A spreadsheet marked only in a shared string used by its second sheet is read as marked.
    #[test]
    fn xlsx_second_sheet_shared_string() {
        let scan = scan(&fixture("office/marking_in_second_sheet.xlsx"));
        assert_eq!(scan.format, Format::Xlsx);
        assert!(has_mark_line(&scan), "{:?}", lines(&scan));
        assert!(
            lines(&scan).contains(&"Annexe".to_owned()),
            "sheet names are read"
        );
    }

    /// A page header of a sheet is read without its `&` codes.
    #[test]
    fn xlsx_sheet_header() {
        let scan = scan(&fixture("office/marking_in_sheet_header.xlsx"));
        assert!(has_mark_line(&scan), "{:?}", lines(&scan));
    }

    /// Inline strings, rich-text shared strings and formula string results are read; numbers are not.
    #[test]
    fn xlsx_inline_rich_and_formula_strings() {
        const S: &str = r#"xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main""#;
        let workbook = format!(
            r#"<workbook {S}><sheets><sheet name="Un" sheetId="1"/><sheet name="Deux" sheetId="2"/></sheets></workbook>"#
        );
        let strings = format!(
            r#"<sst {S}><si><r><t>DIFFU</t></r><r><rPr><b/></rPr><t>SION</t></r><rPh><t>x</t></rPh></si></sst>"#
        );
        let sheet1 = format!(
            r#"<worksheet {S}><sheetData><row r="1"><c r="A1"><v>12</v></c><c r="B1" t="s"><v>0</v></c></row></sheetData></worksheet>"#
        );
        let sheet2 = format!(
            r#"<worksheet {S}><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>{MARK}</t></is></c><c r="B1" t="str"><f>"a"&amp;"b"</f><v>ab</v></c></row></sheetData></worksheet>"#
        );
        let xlsx = package(
            "xl/workbook.xml",
            &[
                ("xl/workbook.xml", &workbook),
                ("xl/sharedStrings.xml", &strings),
                ("xl/worksheets/sheet1.xml", &sheet1),
                ("xl/worksheets/sheet2.xml", &sheet2),
            ],
        );
        let scan = scan(&xlsx);
        assert_eq!(scan.format, Format::Xlsx);
        assert_eq!(lines(&scan), vec!["Un", "Deux", "DIFFUSION", MARK, "ab"]);
    }

    /// A presentation marked only in a slide layout is read as marked; so is one marked only in its notes.
    #[test]
    fn pptx_layout_and_notes() {
        let layout = scan(&fixture("office/marking_in_layout.pptx"));
        assert_eq!(layout.format, Format::Pptx);
        assert!(has_mark_line(&layout), "{:?}", lines(&layout));
        assert!(has_mark_line(&scan(&fixture(
            "office/marking_in_notes.pptx"
        ))));
    }

    /// Slides are read in their order (slide2 before slide10), masters after them.
    #[test]
    fn pptx_parts_in_document_order() {
        let slide = |text: &str| {
            format!(
                r#"<p:sld xmlns:p="p" xmlns:a="a"><a:p><a:r><a:t>{text}</a:t></a:r></a:p></p:sld>"#
            )
        };
        let (s10, s2, master) = (slide("ten"), slide("two"), slide(MARK));
        let pptx = package(
            "ppt/presentation.xml",
            &[
                ("ppt/presentation.xml", "<p:presentation xmlns:p=\"p\"/>"),
                ("ppt/slideMasters/slideMaster1.xml", &master),
                ("ppt/slides/slide10.xml", &s10),
                ("ppt/slides/slide2.xml", &s2),
            ],
        );
        assert_eq!(lines(&scan(&pptx)), vec!["two", "ten", MARK]);
    }

    /// A document embedded in a document is read one level deeper.
    #[test]
    fn embedded_documents_are_read() {
        let inner = fixture("office/marking_in_header.docx");
        let body = format!(
            r#"<w:document {W}><w:body><w:p><w:r><w:t>Outer</w:t></w:r></w:p></w:body></w:document>"#
        );
        let types =
            r#"<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>"#;
        let outer = zip(&[
            ("[Content_Types].xml", types.as_bytes()),
            ("word/document.xml", body.as_bytes()),
            ("word/embeddings/Microsoft_Word_Document.docx", &inner),
        ]);
        assert!(has_mark_line(&scan(&outer)));
    }

    /// A docx cut short is still read up to the cut, and said corrupt.
    #[test]
    fn truncated_docx_is_corrupt_with_what_was_read() {
        let whole = fixture("office/split_runs.docx");
        for cut in [whole.len() / 2, whole.len() - 30] {
            let scan = scan(&whole[..cut]);
            assert_eq!(scan.incomplete, Some(Incomplete::Corrupt), "cut at {cut}");
            assert_eq!(scan.format, Format::Docx, "cut at {cut}");
        }
        let most = scan(&whole[..whole.len() - 30]);
        assert!(has_mark_line(&most), "{:?}", lines(&most));
    }
}
