//! Office Open XML packages (docx, xlsx, pptx and their macro-enabled and template variants): every part that
//! holds text a reader can see or that a labelling tool writes, and files stored as parts (embedded objects,
//! images, chunks Word imports) one level deeper.
//!
//! Parts are found as Office finds them, through the package's content types and relationships (`package`), and
//! what each part is decides how it is read (`parts`), whatever it is named: a main part renamed
//! `word/corps.xml`, comments in `xl/comments/`, a chart reached from a slide. A part that no relationship reaches
//! is still read when it holds text, and a package whose relationships are missing or broken is still read, by its
//! parts' root elements and the names every producer uses.

mod dialects;
mod package;
mod parts;

use crate::{
    Format,
    reader::{Incomplete, Reader, Step},
};

use super::xml;
use super::zip::{self, Archive, MAX_ENTRIES};
use package::Package;
use parts::Kind;

/// The first bytes of a part the package says nothing about, inflated to find its root element.
const HEAD_BYTES: usize = 4096;

/// Reads an Office Open XML package (`format` is docx, xlsx or pptx; every text part is read whatever it is).
pub(crate) fn read(reader: &mut Reader<'_>, _format: Format, bytes: &[u8]) -> Step {
    let archive = Archive::open(bytes, MAX_ENTRIES);
    if archive.damaged {
        reader.note(Incomplete::Corrupt);
    }
    if archive.too_many {
        reader.note(Incomplete::SizeLimit);
    }
    // The describing parts first, so that every other part is classified with all the package says. (Read front
    // to back, a package would learn them as they come: `Package::learn` takes them in any order.)
    let mut package = Package::default();
    for entry in archive
        .entries
        .iter()
        .filter(|e| Package::describes(&e.name))
    {
        reader.tick()?;
        if let Some(contents) = archive.contents(reader, entry)? {
            package.learn(reader, &entry.name, &contents)?;
        }
    }
    let mut parts = Vec::new();
    for entry in &archive.entries {
        reader.tick()?;
        if entry.is_dir() || Package::describes(&entry.name) {
            continue;
        }
        let kind = match parts::declared(&package, &entry.name) {
            Some(kind) => kind,
            None => {
                let head = archive.peek(entry, HEAD_BYTES).unwrap_or_default();
                reader.inflated(head.len() as u64)?;
                parts::undeclared(&entry.name, &head)
            }
        };
        if kind != Kind::Nothing {
            parts.push((kind, entry));
        }
    }
    parts.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| zip::natural_order(&a.1.name, &b.1.name))
    });
    for (kind, entry) in parts {
        reader.tick()?;
        let Some(contents) = archive.contents(reader, entry)? else {
            continue;
        };
        match kind.dialect() {
            Some(dialect) if xml::looks_like(&contents) => xml::read(reader, &contents, dialect)?,
            // A file, or a part labelled XML that is not (an altChunk docx carries the main document's content
            // type): read as the file it is.
            _ if !contents.is_empty() => {
                super::nested(reader, &contents)?;
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{MARK, fixture, has_mark_line, lines, package, scan, zip};
    use crate::{Format, Incomplete, Passage};

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
        let part = |root: &str, text: &str| {
            format!(
                r#"<p:{root} xmlns:p="p" xmlns:a="a"><a:p><a:r><a:t>{text}</a:t></a:r></a:p></p:{root}>"#
            )
        };
        let (s10, s2, master) = (
            part("sld", "ten"),
            part("sld", "two"),
            part("sldMaster", MARK),
        );
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

    /// A valid package whose main part is not `word/document.xml` (content types and relationships name
    /// `word/corps.xml`; Word and python-docx open it) is read through its relationships.
    #[test]
    fn renamed_main_part() {
        let scan = scan(&fixture("office/marking_in_renamed_main_part.docx"));
        assert_eq!(scan.format, Format::Docx);
        assert_eq!(scan.incomplete, None);
        assert!(has_mark_line(&scan), "{:?}", lines(&scan));
    }

    /// openpyxl stores cell comments in a subfolder (`xl/comments/comment1.xml`): they are found through the sheet's
    /// relationships.
    #[test]
    fn openpyxl_comments_in_a_subfolder() {
        let scan = scan(&fixture("office/marking_in_comment.xlsx"));
        assert_eq!(scan.format, Format::Xlsx);
        assert!(has_mark_line(&scan), "{:?}", lines(&scan));
    }

    /// Word's own text watermark is the `string` attribute of a VML text path in the header: it is a line.
    #[test]
    fn word_watermark() {
        let scan = scan(&fixture("office/marking_in_watermark.docx"));
        assert!(has_mark_line(&scan), "{:?}", lines(&scan));
    }

    /// An HTML part that Word imports on opening (`w:altChunk`) is read as the HTML file it is.
    #[test]
    fn alt_chunk_html_part() {
        let scan = scan(&fixture("office/marking_in_alt_chunk.docx"));
        assert_eq!(scan.format, Format::Docx);
        assert!(
            scan.passages
                .iter()
                .any(|p| matches!(p, Passage::Html(html) if html.contains(MARK))),
            "{:?}",
            scan.passages
        );
    }

    /// A chart's title (in the chart part, not in the workbook embedded beside it) is read.
    #[test]
    fn chart_title_in_a_presentation() {
        let scan = scan(&fixture("office/marking_in_chart_title.pptx"));
        assert_eq!(scan.format, Format::Pptx);
        assert!(has_mark_line(&scan), "{:?}", lines(&scan));
    }

    /// The relationship types used below, in their transitional namespace.
    const R: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";

    /// A package: content types (`Default` xml as `application/xml`, plus `overrides`), one relationships part per
    /// source (`""` for the package) listing `(type, target)` (a type's last segment in the transitional namespace,
    /// or a whole type), and the parts.
    fn opc(
        overrides: &[(&str, &str)],
        rels: &[(&str, &[(&str, &str)])],
        parts: &[(&str, &[u8])],
    ) -> Vec<u8> {
        let overrides: String = overrides
            .iter()
            .map(|(part, kind)| format!(r#"<Override PartName="{part}" ContentType="{kind}"/>"#))
            .collect();
        let types = format!(
            r#"<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/>{overrides}</Types>"#
        );
        let rels: Vec<(String, String)> = rels
            .iter()
            .map(|(source, list)| {
                let name = match source.rsplit_once('/') {
                    Some((folder, file)) => format!("{folder}/_rels/{file}.rels"),
                    None if source.is_empty() => "_rels/.rels".to_owned(),
                    None => format!("_rels/{source}.rels"),
                };
                let body: String = list
                    .iter()
                    .enumerate()
                    .map(|(i, (kind, target))| {
                        let kind = if kind.contains("://") {
                            (*kind).to_owned()
                        } else {
                            format!("{R}/{kind}")
                        };
                        format!(r#"<Relationship Id="rId{i}" Type="{kind}" Target="{target}"/>"#)
                    })
                    .collect();
                (name, format!(r#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">{body}</Relationships>"#))
            })
            .collect();
        let mut entries: Vec<(&str, &[u8])> = vec![("[Content_Types].xml", types.as_bytes())];
        entries.extend(
            rels.iter()
                .map(|(name, xml)| (name.as_str(), xml.as_bytes())),
        );
        entries.extend_from_slice(parts);
        zip(&entries)
    }

    fn word(root: &str, text: &str) -> String {
        format!(r#"<w:{root} {W}><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:{root}>"#)
    }

    /// Parts of any name are found through relationships, relative (`../`) or absolute (`/`), and read in the
    /// order of what they are: body, headers, notes, comments, building blocks.
    #[test]
    fn parts_are_found_through_relationships_whatever_their_names() {
        let body = word("document", "corps");
        let header = word("hdr", "entête");
        let notes = word("footnotes", "note");
        let comments = word("comments", "remarque");
        let glossary = word("glossaryDocument", "bloc");
        let docx = opc(
            &[(
                "/texte/principal.xml",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
            )],
            &[
                ("", &[("officeDocument", "texte/principal.xml")]),
                (
                    "texte/principal.xml",
                    &[
                        ("glossaryDocument", "glossaire/g.xml"),
                        ("comments", "/remarques/c.xml"),
                        ("footnotes", "n.xml"),
                        ("header", "../entetes/haut.xml"),
                    ],
                ),
            ],
            &[
                ("texte/glossaire/g.xml", glossary.as_bytes()),
                ("remarques/c.xml", comments.as_bytes()),
                ("texte/n.xml", notes.as_bytes()),
                ("entetes/haut.xml", header.as_bytes()),
                ("texte/principal.xml", body.as_bytes()),
            ],
        );
        let scan = scan(&docx);
        assert_eq!(scan.format, Format::Docx);
        assert_eq!(scan.incomplete, None);
        assert_eq!(
            lines(&scan),
            vec!["corps", "entête", "note", "remarque", "bloc"]
        );
    }

    /// A relationship says what a part is when nothing else does: a custom XML data part (anyone's root element,
    /// any name) is read when the main part links it, and not otherwise.
    #[test]
    fn a_relationship_says_what_a_part_is() {
        let body = word("document", "corps");
        let label = format!(r#"<labels xmlns="urn:x"><label>{MARK}</label></labels>"#);
        let parts: &[(&str, &[u8])] = &[
            ("word/document.xml", body.as_bytes()),
            ("donnees/etiquette.xml", label.as_bytes()),
        ];
        let linked = opc(
            &[],
            &[
                ("", &[("officeDocument", "word/document.xml")]),
                (
                    "word/document.xml",
                    &[("customXml", "../donnees/etiquette.xml")],
                ),
            ],
            parts,
        );
        assert!(has_mark_line(&scan(&linked)), "{:?}", lines(&scan(&linked)));
        let unlinked = opc(
            &[],
            &[("", &[("officeDocument", "word/document.xml")])],
            parts,
        );
        assert_eq!(lines(&scan(&unlinked)), vec!["corps"]);
    }

    /// A content type says what a part is whatever its name: a plain text chunk for Word to import is read as the
    /// text file it is; without the content type, a `.dat` part is nothing to read.
    #[test]
    fn a_content_type_says_what_a_part_is() {
        let body = word("document", "corps");
        let chunk = format!("{MARK}\nAnnexe\n");
        let parts: &[(&str, &[u8])] = &[
            ("word/document.xml", body.as_bytes()),
            ("word/chunk.dat", chunk.as_bytes()),
        ];
        let typed = opc(&[("/word/chunk.dat", "text/plain")], &[], parts);
        assert!(has_mark_line(&scan(&typed)), "{:?}", lines(&scan(&typed)));
        assert_eq!(lines(&scan(&opc(&[], &[], parts))), vec!["corps"]);
    }

    /// A package whose relationships are broken is still read, by its parts' root elements, and said corrupt.
    #[test]
    fn broken_relationships_fall_back_on_root_elements() {
        let body = word("document", MARK);
        let docx = zip(&[
            (
                "[Content_Types].xml",
                br#"<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Override PartName="/word/corps.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#,
            ),
            ("_rels/.rels", b"<Relationships><Relationship Id=\"rId1\" Type=\"\x00"),
            ("word/corps.xml", body.as_bytes()),
        ]);
        let scan = scan(&docx);
        assert_eq!(scan.format, Format::Docx);
        assert_eq!(scan.incomplete, Some(Incomplete::Corrupt));
        assert!(has_mark_line(&scan), "{:?}", lines(&scan));
    }

    /// A whole docx that Word imports on opening (`w:altChunk`) is read as the docx it is, although its content type
    /// is the main document's.
    #[test]
    fn alt_chunk_docx_part() {
        let inner = fixture("office/marking_in_header.docx");
        let body = format!(
            r#"<w:document {W} xmlns:r="{R}"><w:body><w:p><w:r><w:t>corps</w:t></w:r></w:p><w:altChunk r:id="rId0"/></w:body></w:document>"#
        );
        let main =
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml";
        let parts: &[(&str, &[u8])] = &[
            ("word/document.xml", body.as_bytes()),
            ("word/afchunk.docx", &inner),
        ];
        let overrides = [("/word/document.xml", main), ("/word/afchunk.docx", main)];
        let linked = opc(
            &overrides,
            &[
                ("", &[("officeDocument", "word/document.xml")]),
                ("word/document.xml", &[("aFChunk", "afchunk.docx")]),
            ],
            parts,
        );
        assert!(has_mark_line(&scan(&linked)), "{:?}", lines(&scan(&linked)));
        // Without its relationship, the part labelled XML is still read as the file its bytes are.
        assert!(has_mark_line(&scan(&opc(&overrides, &[], parts))));
    }

    /// A chart's text: its title and axis titles (rich text), series names and category strings a line each;
    /// numbers, number formats and the formulas pointing at the sheet are not text. The 2016 chart types hold
    /// their strings in `cx:pt` itself.
    #[test]
    fn chart_text() {
        let chart = r#"<c:chartSpace xmlns:c="c" xmlns:a="a"><c:chart><c:title><c:tx><c:rich><a:bodyPr/><a:p><a:r><a:t>DIFFUSION </a:t></a:r><a:r><a:t>RESTREINTE</a:t></a:r></a:p></c:rich></c:tx></c:title>
            <c:plotArea><c:barChart><c:ser><c:tx><c:strRef><c:f>Sheet1!$B$1</c:f><c:strCache><c:ptCount val="1"/><c:pt idx="0"><c:v>Ventes</c:v></c:pt></c:strCache></c:strRef></c:tx>
            <c:cat><c:strRef><c:f>Sheet1!$A$2:$A$3</c:f><c:strCache><c:pt idx="0"><c:v>T1</c:v></c:pt><c:pt idx="1"><c:v>T2</c:v></c:pt></c:strCache></c:strRef></c:cat>
            <c:val><c:numRef><c:f>Sheet1!$B$2:$B$3</c:f><c:numCache><c:formatCode>General</c:formatCode><c:pt idx="0"><c:v>1.5</c:v></c:pt></c:numCache></c:numRef></c:val></c:ser>
            <c:ser><c:tx><c:v>Littéral</c:v></c:tx></c:ser></c:barChart>
            <c:valAx><c:title><c:tx><c:rich><a:p><a:r><a:t>Euros</a:t></a:r></a:p></c:rich></c:tx></c:title></c:valAx></c:plotArea></c:chart></c:chartSpace>"#;
        let chartex = r#"<cx:chartSpace xmlns:cx="cx"><cx:chartData><cx:data id="0"><cx:strDim type="cat"><cx:f>Sheet1!$A$2:$A$3</cx:f><cx:lvl ptCount="2"><cx:pt idx="0">Nord</cx:pt><cx:pt idx="1">Sud</cx:pt></cx:lvl></cx:strDim><cx:numDim type="val"><cx:lvl ptCount="2"><cx:pt idx="0">3</cx:pt></cx:lvl></cx:numDim></cx:data></cx:chartData></cx:chartSpace>"#;
        let pptx = opc(
            &[(
                "/ppt/presentation.xml",
                "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml",
            )],
            &[
                ("", &[("officeDocument", "ppt/presentation.xml")]),
                ("ppt/presentation.xml", &[("slide", "slides/slide1.xml")]),
                (
                    "ppt/slides/slide1.xml",
                    &[
                        ("chart", "../charts/chart1.xml"),
                        ("chartEx", "../charts/chartEx1.xml"),
                    ],
                ),
            ],
            &[
                ("ppt/presentation.xml", br#"<p:presentation xmlns:p="p"/>"#),
                ("ppt/slides/slide1.xml", br#"<p:sld xmlns:p="p"/>"#),
                ("ppt/charts/chart1.xml", chart.as_bytes()),
                ("ppt/charts/chartEx1.xml", chartex.as_bytes()),
            ],
        );
        let scan = scan(&pptx);
        assert_eq!(scan.format, Format::Pptx);
        assert_eq!(
            lines(&scan),
            vec![
                MARK,
                "Ventes",
                "T1",
                "T2",
                "Littéral",
                "Euros",
                "Nord",
                "Sud"
            ]
        );
    }

    /// SmartArt's text is read from its data part once: the drawing Office caches beside it repeats it.
    #[test]
    fn smartart_text_once() {
        let data = format!(
            r#"<dgm:dataModel xmlns:dgm="d" xmlns:a="a"><dgm:ptLst><dgm:pt modelId="1"><dgm:t><a:bodyPr/><a:p><a:r><a:t>{MARK}</a:t></a:r></a:p></dgm:t></dgm:pt></dgm:ptLst></dgm:dataModel>"#
        );
        let drawing = format!(
            r#"<dsp:drawing xmlns:dsp="s" xmlns:a="a"><dsp:spTree><dsp:sp><dsp:txBody><a:p><a:r><a:t>{MARK}</a:t></a:r></a:p></dsp:txBody></dsp:sp></dsp:spTree></dsp:drawing>"#
        );
        let body = word("document", "corps");
        let docx = opc(
            &[],
            &[
                ("", &[("officeDocument", "word/document.xml")]),
                (
                    "word/document.xml",
                    &[
                        ("diagramData", "diagrams/data1.xml"),
                        (
                            "http://schemas.microsoft.com/office/2007/relationships/diagramDrawing",
                            "diagrams/drawing1.xml",
                        ),
                    ],
                ),
            ],
            &[
                ("word/document.xml", body.as_bytes()),
                ("word/diagrams/data1.xml", data.as_bytes()),
                ("word/diagrams/drawing1.xml", drawing.as_bytes()),
            ],
        );
        assert_eq!(lines(&scan(&docx)), vec!["corps", MARK]);
    }

    /// A watermark or WordArt that Word writes twice (DrawingML in `mc:Choice`, VML in `mc:Fallback`) is read once.
    #[test]
    fn watermark_in_alternate_content_once() {
        let header = format!(
            r#"<w:hdr {W} xmlns:mc="mc" xmlns:v="v" xmlns:wps="wps"><w:p><w:r><mc:AlternateContent><mc:Choice Requires="wps"><w:drawing><wps:wsp><wps:txbx><w:txbxContent><w:p><w:r><w:t>{MARK}</w:t></w:r></w:p></w:txbxContent></wps:txbx></wps:wsp></w:drawing></mc:Choice><mc:Fallback><w:pict><v:shape><v:textpath string="{MARK}"/></v:shape></w:pict></mc:Fallback></mc:AlternateContent></w:r></w:p></w:hdr>"#
        );
        let docx = package(
            "word/document.xml",
            &[
                ("word/document.xml", &word("document", "corps")),
                ("word/header1.xml", &header),
            ],
        );
        assert_eq!(lines(&scan(&docx)), vec!["corps", MARK]);
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
