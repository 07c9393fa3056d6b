//! Which format a file is, from its first bytes and, for zip containers, the names of its entries: never from the
//! file's name or declared type, which the uploader chooses.

use crate::Format;

use super::zip::Archive;
use super::{charset, delimited, eml, gzip, json, svg, tar};

/// `%PDF-` may come after some bytes (a mail header, a byte order mark): readers accept it in the first KiB.
const PDF_WINDOW: usize = 1024;

/// Entries looked at to recognise a container (office packages hold a few dozen to a few thousand).
const SNIFF_ENTRIES: usize = 10_000;

/// Bytes of `mimetype`, `META-INF/manifest.xml` or `[Content_Types].xml` inflated to recognise a container.
const PEEK_BYTES: usize = 64 * 1024;

/// How far into a file to look for the start of HTML or Flat ODF.
const MARKUP_WINDOW: usize = 4096;

/// Signatures of formats with no text to read (images, audio, video, executables, other archives), checked
/// before the text tests so that a binary that happens to start with printable bytes is not read as text.
const BINARY_MAGIC: &[(usize, &[u8])] = &[
    (0, b"BM"),
    (0, b"\0\0\x01\0"),
    (8, b"WAVE"),
    (8, b"AVI "),
    (4, b"ftyp"),
    (0, b"\x1A\x45\xDF\xA3"),
    (0, b"OggS"),
    (0, b"fLaC"),
    (0, b"ID3"),
    (0, b"\xFF\xFB"),
    (0, b"\xFF\xF3"),
    (0, b"\xFF\xF2"),
    (0, b"\x7FELF"),
    (0, b"MZ"),
    (0, b"\xCA\xFE\xBA\xBE"),
    (0, b"\xCF\xFA\xED\xFE"),
    (0, b"\0asm"),
    (0, b"\x1F\x8B"),
    (0, b"BZh"),
    (0, b"\xFD7zXZ\0"),
    (0, b"7z\xBC\xAF\x27\x1C"),
    (0, b"Rar!\x1A\x07"),
    (0, b"\x28\xB5\x2F\xFD"),
    (0, b"SQLite format 3\0"),
    (0, b"wOFF"),
    (0, b"wOF2"),
    // Compound File Binary: legacy .doc/.xls/.ppt and password-protected Office Open XML.
    (0, b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1"),
];

/// Signatures of the pictures read with OCR (TIFF in both byte orders, classic and BigTIFF; WebP inside RIFF).
const PICTURE_MAGIC: &[(usize, &[u8], Format)] = &[
    (0, b"\x89PNG\r\n\x1a\n", Format::Png),
    (0, b"\xFF\xD8\xFF", Format::Jpeg),
    (0, b"II*\0", Format::Tiff),
    (0, b"MM\0*", Format::Tiff),
    (0, b"II+\0", Format::Tiff),
    (0, b"MM\0+", Format::Tiff),
    (0, b"GIF87a", Format::Gif),
    (0, b"GIF89a", Format::Gif),
];

/// The picture format of `bytes`, by its signature.
fn picture(bytes: &[u8]) -> Option<Format> {
    if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        return Some(Format::Webp);
    }
    PICTURE_MAGIC
        .iter()
        .find(|(at, magic, _)| bytes.get(*at..at + magic.len()) == Some(magic))
        .map(|(_, _, format)| *format)
}

/// The format of `bytes`, from their content.
pub(crate) fn sniff(bytes: &[u8]) -> Format {
    // Zip and RTF first: a zip may store a PDF in its first KiB, an RTF may quote `%PDF-`.
    if Archive::looks_like(bytes) {
        return container(bytes);
    }
    // Archives next: a tar's first member may be a PDF, whose `%PDF-` then stands in the first KiB.
    if tar::looks_like(bytes) {
        return Format::Tar;
    }
    if gzip::looks_like(bytes) {
        return Format::Gzip;
    }
    let start = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if start.trim_ascii_start().starts_with(b"{\\rtf") {
        return Format::Rtf;
    }
    if find(&bytes[..bytes.len().min(PDF_WINDOW)], b"%PDF-").is_some() {
        return Format::Pdf;
    }
    if let Some(format) = picture(bytes) {
        return format;
    }
    // A signature with a non-printable byte is decisive. One that is all printable (`BM`, `ID3`, `MZ`) is also
    // how some text starts: such files are left to the text test, which binaries fail on their NUL bytes.
    let binary_magic = BINARY_MAGIC.iter().any(|(at, magic)| {
        let end = at + magic.len();
        bytes.get(*at..end) == Some(magic)
            && bytes[..end].iter().any(|&b| !(0x20..0x7F).contains(&b))
    });
    if binary_magic || bytes.is_empty() {
        return Format::Unknown;
    }
    // Before the text test: a message whose parts are sent in binary may hold bytes that are not text.
    if eml::looks_like(bytes) {
        return Format::Eml;
    }
    let Some(charset) = charset::detect(bytes) else {
        return Format::Unknown;
    };
    let head = charset::decode(&bytes[..bytes.len().min(MARKUP_WINDOW)], charset);
    if let Some(format) = flat_odf(&head) {
        return format;
    }
    if svg::looks_like(&head) {
        return Format::Svg;
    }
    if is_html(&head) {
        return Format::Html;
    }
    if json::looks_like(&head) {
        return Format::Json;
    }
    let window = bytes.len().min(delimited::SNIFF_WINDOW);
    let head = charset::decode(&bytes[..window], charset);
    if delimited::delimiter(&head, window < bytes.len()).is_some() {
        return Format::Csv;
    }
    Format::Text
}

/// A zip archive: an OpenDocument file by its `mimetype` entry (or its manifest), an Office Open XML package by
/// its main part, else a plain archive.
fn container(bytes: &[u8]) -> Format {
    let archive = Archive::open(bytes, SNIFF_ENTRIES);
    if let Some(mimetype) = archive.find("mimetype") {
        if let Some(format) = archive
            .peek(mimetype, PEEK_BYTES)
            .and_then(|m| odf_type(&m))
        {
            return format;
        }
    } else if let Some(manifest) = archive.find("META-INF/manifest.xml")
        && let Some(format) = archive
            .peek(manifest, PEEK_BYTES)
            .and_then(|m| odf_root_type(&m))
    {
        return format;
    }
    let Some(content_types) = archive.find("[Content_Types].xml") else {
        return Format::Zip;
    };
    if archive.find("word/document.xml").is_some() {
        return Format::Docx;
    }
    if archive.find("xl/workbook.xml").is_some() {
        return Format::Xlsx;
    }
    if archive.find("ppt/presentation.xml").is_some() {
        return Format::Pptx;
    }
    // Unusual part names (`word/document2.xml`) or main parts lost past a cut: the content types name the main
    // part's type, macro-enabled and template variants included.
    let types = archive
        .peek(content_types, PEEK_BYTES)
        .map(|t| String::from_utf8_lossy(&t).to_ascii_lowercase())
        .unwrap_or_default();
    let declares = |kinds: &[&str]| kinds.iter().any(|kind| types.contains(kind));
    if declares(&[
        "wordprocessingml.document.main",
        "wordprocessingml.template.main",
        "ms-word.document.macroenabled.main",
        "ms-word.template.macroenabledtemplate.main",
    ]) {
        Format::Docx
    } else if declares(&[
        "spreadsheetml.sheet.main",
        "spreadsheetml.template.main",
        "ms-excel.sheet.macroenabled",
    ]) {
        Format::Xlsx
    } else if declares(&[
        "presentationml.presentation.main",
        "presentationml.slideshow.main",
        "presentationml.template.main",
        "ms-powerpoint.presentation.macroenabled",
        "ms-powerpoint.slideshow.macroenabled",
        "ms-powerpoint.template.macroenabled",
    ]) {
        Format::Pptx
    } else {
        Format::Zip
    }
}

/// The OpenDocument format a media type names (templates included); `None` for drawings, formulas and others,
/// which are read as plain archives.
fn odf_type(media_type: &[u8]) -> Option<Format> {
    let media_type = String::from_utf8_lossy(media_type);
    let kind = media_type
        .trim()
        .strip_prefix("application/vnd.oasis.opendocument.")?;
    let kind = kind.split(['"', '\'', ' ']).next().unwrap_or_default();
    match kind {
        "text" | "text-template" | "text-master" | "text-master-template" | "text-web" => {
            Some(Format::Odt)
        }
        "spreadsheet" | "spreadsheet-template" => Some(Format::Ods),
        "presentation" | "presentation-template" => Some(Format::Odp),
        _ => None,
    }
}

/// The media type of the manifest's root entry (`full-path="/"`), when `mimetype` is missing.
fn odf_root_type(manifest: &[u8]) -> Option<Format> {
    let manifest = String::from_utf8_lossy(manifest);
    let root = manifest
        .split("file-entry")
        .find(|entry| entry.contains("full-path=\"/\""))?;
    let at = root.find("application/vnd.oasis.opendocument.")?;
    odf_type(&root.as_bytes()[at..])
}

/// Flat ODF: one XML file whose root is `office:document`, with the media type as an attribute.
fn flat_odf(head: &str) -> Option<Format> {
    let root = head.find("<office:document")?;
    let rest = &head[root..];
    let at = rest.find("office:mimetype=")?;
    let value = rest[at + "office:mimetype=".len()..].trim_start_matches(['"', '\'']);
    odf_type(value.as_bytes())
}

/// Tags that an HTML file (or fragment saved as a file) starts with.
const HTML_STARTS: &[&str] = &[
    "!doctype html",
    "html",
    "head",
    "body",
    "title",
    "meta",
    "link",
    "style",
    "script",
    "div",
    "p",
    "span",
    "table",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "br",
    "a",
    "b",
    "i",
    "u",
    "font",
    "center",
    "iframe",
    "form",
    "img",
    "ul",
    "ol",
    "pre",
    "base",
    "header",
    "main",
    "section",
    "article",
    "nav",
];

/// Whether the text starts like HTML, after a byte order mark, white space, an XML declaration and comments.
fn is_html(head: &str) -> bool {
    let mut rest = head.trim_start_matches('\u{FEFF}');
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix("<!--") {
            match after.find("-->") {
                Some(end) => rest = &after[end + 3..],
                None => return false,
            }
        } else if rest.starts_with("<?xml") {
            match rest.find("?>") {
                Some(end) => rest = &rest[end + 2..],
                None => return false,
            }
        } else {
            break;
        }
    }
    let Some(tag) = rest.strip_prefix('<') else {
        return false;
    };
    let tag = tag
        .get(..tag.len().min(20))
        .unwrap_or(tag)
        .to_ascii_lowercase();
    HTML_STARTS.iter().any(|start| {
        tag.strip_prefix(start).is_some_and(|after| {
            after.starts_with(|c: char| c.is_whitespace() || c == '>' || c == '/')
        })
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// HTML is recognised by its start, after comments and an XML declaration; other markup is not HTML.
    #[test]
    fn html_by_its_start() {
        assert!(is_html("\u{FEFF}  <!-- saved --><!DOCTYPE html><html>"));
        assert!(is_html(
            "<?xml version=\"1.0\"?>\n<html xmlns=\"http://www.w3.org/1999/xhtml\">"
        ));
        assert!(is_html("<P>DIFFUSION RESTREINTE</P>"));
        assert!(!is_html("<note>not html</note>"));
        assert!(!is_html("DIFFUSION RESTREINTE"));
    }

    /// Binary formats are unknown even when their first bytes are printable; text is text.
    #[test]
    fn binaries_are_unknown() {
        assert_eq!(sniff(b"\0\0\0\x18ftypmp42\0\0\0\0"), Format::Unknown);
        assert_eq!(sniff(b"RIFF\x24\0\0\0WAVEfmt "), Format::Unknown);
        assert_eq!(sniff(b"DIFFUSION RESTREINTE\n"), Format::Text);
        assert_eq!(sniff(b"junk\n%PDF-1.7\n"), Format::Pdf);
        assert_eq!(sniff(b"{\\rtf1\\ansi hello}"), Format::Rtf);
    }

    /// Pictures are told by their signature, whatever follows it; a RIFF file is WebP only when it says so.
    #[test]
    fn pictures_by_their_signature() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Format::Png);
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0\0\x10JFIF\0"), Format::Jpeg);
        assert_eq!(sniff(b"II*\0\x08\0\0\0"), Format::Tiff);
        assert_eq!(sniff(b"MM\0*\0\0\0\x08"), Format::Tiff);
        assert_eq!(sniff(b"GIF89a\x01\0\x01\0\x80\0\0"), Format::Gif);
        assert_eq!(sniff(b"GIF87a\x01\0\x01\0\x80\0\0"), Format::Gif);
        assert_eq!(sniff(b"RIFF\x24\0\0\0WEBPVP8 "), Format::Webp);
        assert_eq!(sniff(b"RIFF\x24\0\0\0AVI LIST"), Format::Unknown);
    }
}
