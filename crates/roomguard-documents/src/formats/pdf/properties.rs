//! Document properties: the information dictionary (Title, Subject, Keywords, Author) and the XMP metadata stream
//! (`dc:title`, `dc:subject`, `dc:description`, `pdf:Keywords`). Each property is a passage of its own, so that a
//! marking in the title is classified as a title, not glued to the first line of the body.

use lopdf::Object;
use memchr::memmem;

use super::store::Store;
use crate::reader::{Reader, Step};

/// The information dictionary's entries that carry words a person chose.
const INFO_KEYS: [&[u8]; 4] = [b"Title", b"Subject", b"Keywords", b"Author"];

/// The XMP elements read, by their qualified names.
const XMP_ELEMENTS: [&str; 4] = ["dc:title", "dc:subject", "dc:description", "pdf:Keywords"];

/// Reads the document's properties, each its own passage.
pub(super) fn read(reader: &mut Reader<'_>, store: &Store<'_>) -> Step {
    if let Ok(info) = store.get_in(&store.trailer, b"Info").as_dict() {
        for key in INFO_KEYS {
            if let Object::String(bytes, _) = store.get_in(info, key) {
                passage(reader, &text_string(bytes))?;
            }
        }
    }
    let root = store.get_in(&store.trailer, b"Root");
    let metadata = root.as_dict().ok().and_then(|r| r.get(b"Metadata").ok());
    if let Some(id) = metadata.and_then(|m| store.stream_id(m))
        && let Some(xml) = store.stream_bytes(reader, id)?
    {
        let xml = String::from_utf8_lossy(&xml);
        for name in XMP_ELEMENTS {
            reader.tick()?;
            if let Some(text) = element_text(&xml, name) {
                passage(reader, &text)?;
            }
        }
    }
    Ok(())
}

/// Writes `text`, trimmed, as a passage of its own.
pub(super) fn passage(reader: &mut Reader<'_>, text: &str) -> Step {
    let text = text.trim();
    if text.is_empty() {
        return Ok(());
    }
    reader.close_passage();
    reader.text(text)?;
    reader.close_passage();
    Ok(())
}

/// A text string (§7.9.2.2): UTF-16BE or UTF-8 with a byte order mark, otherwise PDFDocEncoding.
pub(super) fn text_string(bytes: &[u8]) -> String {
    if let Some(utf16) = bytes.strip_prefix(b"\xfe\xff") {
        let units: Vec<u16> = utf16
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)]))
            .collect();
        return String::from_utf16_lossy(&units);
    }
    if let Some(utf8) = bytes.strip_prefix(b"\xef\xbb\xbf") {
        return String::from_utf8_lossy(utf8).into_owned();
    }
    lopdf::decode_text_string(&Object::String(
        bytes.to_vec(),
        lopdf::StringFormat::Literal,
    ))
    .unwrap_or_default()
}

/// The text inside the first `<name>...</name>` element, tags removed (`rdf:Alt`/`rdf:Bag` items joined by
/// spaces), the five XML entities resolved.
fn element_text(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}");
    let close = format!("</{name}>");
    let start = memmem::find(xml.as_bytes(), open.as_bytes())?;
    let body_start = start + xml[start..].find('>')? + 1;
    let body_end = body_start + memmem::find(&xml.as_bytes()[body_start..], close.as_bytes())?;
    let body = xml.get(body_start..body_end)?;
    let mut text = String::new();
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => {
                in_tag = true;
                text.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    let text = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&");
    Some(text.split_whitespace().collect::<Vec<_>>().join(" "))
}
