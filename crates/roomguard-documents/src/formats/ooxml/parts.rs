//! What a part of an Office Open XML package is, and so whether and how it is read: decided as Office decides it,
//! by the relationship that reaches the part, else by its content type, never by its name; for what the package
//! does not say (its relationships or content types are missing or broken, or not seen yet when the package is
//! read as it streams), by the part's root element, and last by the names every producer uses.
//!
//! Every part whose kind holds text is read, reached or not: a part that no relationship reaches is out of a
//! reader's sight but still in the file.

use crate::formats::xml::{self, Dialect, PROPERTIES};

use super::dialects::{CHART, OFFICE, SHEET, WORKBOOK};
use super::package::{Package, key};

/// What a part is, for reading. The order of the variants is the reading order (the main text first, files last).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Kind {
    /// The main text: a document's body, a presentation's slides.
    Body,
    /// A workbook's main part: its sheets' names.
    Workbook,
    /// A workbook's shared strings, which its sheets' cells point at.
    Strings,
    /// Word's page headers and footers.
    Margins,
    /// A worksheet's cells and its page headers and footers.
    Sheet,
    /// Footnotes and endnotes; a slide's speaker notes.
    Notes,
    /// Comments of every kind (Word, spreadsheet, threaded, slide comments).
    Comments,
    /// Slide layouts and masters, notes and handout masters.
    Layouts,
    /// Drawings with text boxes and shapes (a sheet's drawing, shapes drawn over a chart).
    Drawing,
    /// A chart's titles, series names and category strings.
    Chart,
    /// SmartArt's text.
    Diagram,
    /// Word's building blocks (the glossary document).
    Glossary,
    /// Core, extended (app) and custom properties, where labelling tools write their label.
    Properties,
    /// Custom XML data parts, where labelling tools also keep their metadata.
    CustomXml,
    /// A file stored as a part: an embedded object, an image, a chunk Word imports on opening (`w:altChunk`): read
    /// as the upload it would be.
    File,
    /// No text (styles, themes, settings, fonts, thumbnails...).
    Nothing,
}

impl Kind {
    /// How a part of this kind is read: with this dialect, or as a file of its own (`None`).
    pub(super) fn dialect(self) -> Option<&'static Dialect> {
        match self {
            Kind::Workbook => Some(&WORKBOOK),
            Kind::Sheet => Some(&SHEET),
            Kind::Chart => Some(&CHART),
            Kind::Properties | Kind::CustomXml => Some(&PROPERTIES),
            Kind::File | Kind::Nothing => None,
            _ => Some(&OFFICE),
        }
    }
}

/// What the package says `name` is: through the relationship that reaches it, else its content type. `None`
/// when neither tells (nothing reaches it, or its relationship is the main part's and its content type generic).
pub(super) fn declared(package: &Package, name: &str) -> Option<Kind> {
    package
        .relationship(name)
        .and_then(by_relationship)
        .or_else(|| package.content_type(name).and_then(by_content_type))
}

/// What a part the package says nothing about is, from its first bytes (`head`): its root element, else its name.
pub(super) fn undeclared(name: &str, head: &[u8]) -> Kind {
    xml::root(head)
        .and_then(|root| by_root(&root))
        .or_else(|| by_name(name))
        .unwrap_or(Kind::Nothing)
}

/// The main part's kind depends on its content type, which a workbook's needs apart from a document's: the
/// relationship that reaches it (`officeDocument`) does not decide.
fn by_relationship(kind: &str) -> Option<Kind> {
    Some(match kind {
        "header" | "footer" => Kind::Margins,
        "footnotes" | "endnotes" | "notesslide" => Kind::Notes,
        // Word's, a sheet's and a slide's comments; modern slide comments use the same last segment.
        "comments" | "threadedcomment" | "threadedcomments" => Kind::Comments,
        "glossarydocument" => Kind::Glossary,
        "worksheet" | "xlmacrosheet" | "xlintlmacrosheet" | "dialogsheet" => Kind::Sheet,
        "sharedstrings" => Kind::Strings,
        "drawing" | "chartusershapes" => Kind::Drawing,
        "chart" | "chartex" => Kind::Chart,
        "diagramdata" => Kind::Diagram,
        "slide" => Kind::Body,
        "slidelayout" | "slidemaster" | "notesmaster" | "handoutmaster" => Kind::Layouts,
        "core-properties" | "extended-properties" | "custom-properties" => Kind::Properties,
        "customxml" => Kind::CustomXml,
        // `aFChunk`: HTML, text, RTF, MHT or a whole docx that Word imports where `w:altChunk` stands. `package`:
        // an embedded Office file; `oleObject`: any other embedded object.
        "afchunk" | "package" | "oleobject" | "image" | "hdphoto" => Kind::File,
        // A rendering of the first page (what it shows is read from the parts); SmartArt's cached drawing repeats
        // its data; comment metadata, people, styles and the rest hold no text; macros and fonts are binary.
        "thumbnail"
        | "diagramdrawing"
        | "diagramlayout"
        | "diagramquickstyle"
        | "diagramcolors"
        | "commentsextended"
        | "commentsids"
        | "commentsextensible"
        | "commentauthors"
        | "authors"
        | "people"
        | "person"
        | "styles"
        | "styleswitheffects"
        | "theme"
        | "settings"
        | "websettings"
        | "fonttable"
        | "font"
        | "numbering"
        | "vmldrawing"
        | "printersettings"
        | "calcchain"
        | "presprops"
        | "viewprops"
        | "tablestyles"
        | "vbaproject"
        | "customxmlprops"
        | "chartstyle"
        | "chartcolorstyle"
        | "activexcontrol"
        | "activexcontrolbinary"
        | "ctrlprop"
        | "video"
        | "audio"
        | "media" => Kind::Nothing,
        _ => return None,
    })
}

/// Content types are the same in transitional and strict packages.
fn by_content_type(kind: &str) -> Option<Kind> {
    if is_file(kind) {
        return Some(Kind::File);
    }
    let part = kind
        .strip_prefix("application/vnd.openxmlformats-officedocument.")
        .or_else(|| kind.strip_prefix("application/vnd.openxmlformats-package."))
        .or_else(|| kind.strip_prefix("application/vnd.ms-"))?;
    Some(match part {
        "wordprocessingml.document.main+xml"
        | "wordprocessingml.template.main+xml"
        | "word.document.macroenabled.main+xml"
        | "word.template.macroenabledtemplate.main+xml"
        | "presentationml.slide+xml" => Kind::Body,
        "spreadsheetml.sheet.main+xml"
        | "spreadsheetml.template.main+xml"
        | "excel.sheet.macroenabled.main+xml"
        | "excel.template.macroenabled.main+xml"
        | "excel.addin.macroenabled.main+xml" => Kind::Workbook,
        "wordprocessingml.header+xml" | "wordprocessingml.footer+xml" => Kind::Margins,
        "spreadsheetml.sharedstrings+xml" => Kind::Strings,
        "spreadsheetml.worksheet+xml" | "excel.macrosheet+xml" | "excel.intlmacrosheet+xml" => {
            Kind::Sheet
        }
        "wordprocessingml.footnotes+xml"
        | "wordprocessingml.endnotes+xml"
        | "presentationml.notesslide+xml" => Kind::Notes,
        "wordprocessingml.comments+xml"
        | "spreadsheetml.comments+xml"
        | "excel.threadedcomments+xml"
        | "presentationml.comments+xml"
        | "powerpoint.comments+xml" => Kind::Comments,
        "presentationml.slidelayout+xml"
        | "presentationml.slidemaster+xml"
        | "presentationml.notesmaster+xml"
        | "presentationml.handoutmaster+xml" => Kind::Layouts,
        "drawing+xml" | "drawingml.chartshapes+xml" => Kind::Drawing,
        "drawingml.chart+xml" | "office.chartex+xml" => Kind::Chart,
        "drawingml.diagramdata+xml" => Kind::Diagram,
        "wordprocessingml.document.glossary+xml" => Kind::Glossary,
        "core-properties+xml" | "extended-properties+xml" | "custom-properties+xml" => {
            Kind::Properties
        }
        _ => return None,
    })
}

/// Content types of files stored as parts: images, embedded documents and objects, and what `w:altChunk`
/// imports. A macro project (`vnd.ms-office.vbaProject`) or a font is binary too, but no file to read.
fn is_file(kind: &str) -> bool {
    kind.starts_with("image/")
        || kind.starts_with("application/vnd.oasis.opendocument.")
        || matches!(
            kind,
            "text/html"
                | "application/xhtml+xml"
                | "text/plain"
                | "text/rtf"
                | "application/rtf"
                | "message/rfc822"
                | "multipart/related"
                | "application/pdf"
                | "application/msword"
                | "application/vnd.ms-excel"
                | "application/vnd.ms-powerpoint"
                | "application/vnd.openxmlformats-officedocument.oleobject"
                | "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
                | "application/vnd.openxmlformats-officedocument.wordprocessingml.template"
                | "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                | "application/vnd.openxmlformats-officedocument.spreadsheetml.template"
                | "application/vnd.openxmlformats-officedocument.presentationml.presentation"
                | "application/vnd.openxmlformats-officedocument.presentationml.slideshow"
                | "application/vnd.openxmlformats-officedocument.presentationml.template"
                | "application/vnd.ms-word.document.macroenabled.12"
                | "application/vnd.ms-excel.sheet.macroenabled.12"
                | "application/vnd.ms-powerpoint.presentation.macroenabled.12"
        )
}

/// Root elements by local name (prefixes differ between producers).
fn by_root(root: &str) -> Option<Kind> {
    Some(match root {
        "document" | "sld" => Kind::Body,
        "workbook" => Kind::Workbook,
        "sst" => Kind::Strings,
        "hdr" | "ftr" => Kind::Margins,
        "worksheet" | "macrosheet" => Kind::Sheet,
        "footnotes" | "endnotes" | "notes" => Kind::Notes,
        "comments" | "cmLst" | "ThreadedComments" => Kind::Comments,
        "sldLayout" | "sldMaster" | "notesMaster" | "handoutMaster" => Kind::Layouts,
        "wsDr" | "userShapes" => Kind::Drawing,
        "chartSpace" => Kind::Chart,
        "dataModel" => Kind::Diagram,
        "glossaryDocument" => Kind::Glossary,
        "coreProperties" | "Properties" => Kind::Properties,
        // HTML in a package is a chunk for Word to import.
        "html" => Kind::File,
        _ => return None,
    })
}

/// The names every producer uses, for a part nothing else tells about: a damaged package's, a custom XML data part
/// (whose root is anyone's), a file stored without a content type.
fn by_name(name: &str) -> Option<Kind> {
    let name = key(name);
    let xml = name.ends_with(".xml");
    let under = |folder: &str, stem: &str| {
        name.strip_prefix(folder)
            .is_some_and(|rest| !rest.contains('/') && rest.starts_with(stem))
            && xml
    };
    let files = |folder: &str| {
        ["word/", "xl/", "ppt/"].iter().any(|app| {
            name.strip_prefix(app)
                .and_then(|rest| rest.strip_prefix(folder))
                .is_some_and(|rest| !rest.is_empty())
        })
    };
    Some(if under("word/", "document") || under("ppt/slides/", "") {
        Kind::Body
    } else if name == "xl/workbook.xml" {
        Kind::Workbook
    } else if under("word/", "header") || under("word/", "footer") {
        Kind::Margins
    } else if under("xl/", "sharedstrings") {
        Kind::Strings
    } else if under("xl/worksheets/", "") {
        Kind::Sheet
    } else if under("word/", "footnotes")
        || under("word/", "endnotes")
        || under("ppt/notesslides/", "")
    {
        Kind::Notes
    } else if under("word/", "comments")
        || under("xl/", "comments")
        || under("xl/comments/", "")
        || under("xl/threadedcomments/", "")
        || under("ppt/comments/", "")
    {
        Kind::Comments
    } else if under("ppt/slidelayouts/", "")
        || under("ppt/slidemasters/", "")
        || under("ppt/notesmasters/", "")
        || under("ppt/handoutmasters/", "")
    {
        Kind::Layouts
    } else if under("xl/drawings/", "drawing") {
        Kind::Drawing
    } else if under("word/charts/", "chart")
        || under("xl/charts/", "chart")
        || under("ppt/charts/", "chart")
    {
        Kind::Chart
    } else if under("word/diagrams/", "data")
        || under("xl/diagrams/", "data")
        || under("ppt/diagrams/", "data")
    {
        Kind::Diagram
    } else if under("docprops/", "core")
        || under("docprops/", "custom")
        || under("docprops/", "app")
    {
        Kind::Properties
    } else if under("customxml/", "item") && !name.starts_with("customxml/itemprops") {
        Kind::CustomXml
    } else if files("embeddings/") || files("media/") {
        Kind::File
    } else {
        return None;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The relationship decides first (an altChunk docx carries the main document's content type), then the
    /// content type; the main part's relationship leaves it to the content type.
    #[test]
    fn relationship_then_content_type() {
        assert_eq!(by_relationship("afchunk"), Some(Kind::File));
        assert_eq!(by_relationship("officedocument"), None);
        assert_eq!(by_relationship("thumbnail"), Some(Kind::Nothing));
        assert_eq!(
            by_content_type(
                "application/vnd.openxmlformats-officedocument.spreadsheetml.comments+xml"
            ),
            Some(Kind::Comments)
        );
        assert_eq!(by_content_type("image/png"), Some(Kind::File));
        assert_eq!(by_content_type("application/xml"), None);
        assert_eq!(
            by_content_type("application/vnd.ms-office.vbaproject"),
            None
        );
    }

    /// Without the package's word, the root element decides, then the conventional names; binaries without a
    /// name that says they are files are nothing to read.
    #[test]
    fn root_then_name() {
        assert_eq!(
            undeclared(
                "x/y.xml",
                b"\xEF\xBB\xBF<?xml version=\"1.0\"?><!-- c --><w:hdr xmlns:w=\"w\"/>"
            ),
            Kind::Margins
        );
        assert_eq!(
            undeclared("customXml/item1.xml", b"<b:Sources xmlns:b=\"b\"/>"),
            Kind::CustomXml
        );
        assert_eq!(undeclared("word/styles.xml", b"<w:styles/>"), Kind::Nothing);
        assert_eq!(
            undeclared("word/embeddings/oleObject1.bin", b"\xD0\xCF\x11\xE0"),
            Kind::File
        );
        assert_eq!(
            undeclared("word/vbaProject.bin", b"\xD0\xCF\x11\xE0"),
            Kind::Nothing
        );
    }
}
