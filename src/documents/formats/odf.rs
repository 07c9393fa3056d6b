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
    if let Some(manifest) = archive.find("META-INF/manifest.xml") {
        if let Some(manifest) = archive.contents(reader, manifest)? {
            encrypted = manifest.windows(15).any(|w| w == b"encryption-data");
        }
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
