//! What the elements of Office Open XML parts mean for their text, by local name (see `xml::Dialect`): the
//! WordprocessingML, DrawingML and SpreadsheetML text shared by most parts, worksheets, the workbook, charts.

use crate::formats::xml::{Dialect, Role};

/// The text elements shared by WordprocessingML (body, headers, notes, comments, text boxes), DrawingML (shapes,
/// slides, SmartArt, spreadsheet drawings) and SpreadsheetML strings and comments.
fn office_role(name: &[u8]) -> Role {
    match name {
        // `si`: a shared string; `comment`/`threadedComment`: spreadsheet comments.
        b"p" | b"si" | b"comment" | b"threadedComment" => Role::Paragraph,
        // `delText`: deleted text under change tracking is still in the file. `text`: comments' text.
        b"t" | b"delText" | b"text" => Role::Text,
        b"tab" | b"ptab" => Role::Space,
        b"br" | b"cr" => Role::Break,
        // Word's text watermark (Design > Watermark) and other VML WordArt: the text is this attribute of
        // `v:textpath`, not a text node. The shape type's `v:textpath` has no `string` and gives nothing.
        b"textpath" => Role::Attribute(b"string"),
        // `Fallback`: a second (VML) copy of a text box or WordArt already read in `Choice`. `rPh`: phonetic
        // guides. `instrText`: field codes, not shown text.
        b"Fallback" | b"rPh" | b"instrText" | b"delInstrText" => Role::Skip,
        _ => Role::Other,
    }
}

/// Most parts: Word's, slides and their layouts, shared strings, comments, drawings, SmartArt data.
pub(super) const OFFICE: Dialect = Dialect {
    role: office_role,
    text_in_paragraphs: false,
    properties: false,
};

/// Worksheets: inline strings and formula string results, cell by cell, and page headers and footers.
pub(super) const SHEET: Dialect = Dialect {
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
pub(super) const WORKBOOK: Dialect = Dialect {
    role: |name| match name {
        b"sheet" => Role::Attribute(b"name"),
        _ => Role::Other,
    },
    text_in_paragraphs: false,
    properties: false,
};

/// Charts (`c:chartSpace`, and the 2016 chart types' `cx:chartSpace`): titles, axis titles and data labels as rich
/// text (`a:p`), series names (`c:tx`) and the cached strings of categories, a line each (`c:pt`/`c:v`; `cx:pt`
/// holds its text itself). Numbers and the formulas that point at the sheet say nothing.
pub(super) const CHART: Dialect = Dialect {
    role: |name| match name {
        b"pt" => Role::Line,
        b"v" => Role::Text,
        b"numRef" | b"numLit" | b"numCache" | b"numDim" | b"f" | b"formatCode" => Role::Skip,
        other => office_role(other),
    },
    text_in_paragraphs: false,
    properties: false,
};
