//! The Open Packaging Conventions under every Office Open XML file: what each part is (`[Content_Types].xml`: a
//! `Default` content type by extension, an `Override` by part name) and how parts reach one another (a
//! `_rels/<name>.rels` part beside each source part, `_rels/.rels` for the package itself: the main part, the
//! properties). This is how Office finds parts, whatever they are named.
//!
//! A [`Package`] learns from these describing parts in whatever order they come ([`Package::learn`], once per
//! describing part), and answers for any part at any time with what it has learnt so far: a package read front to
//! back can then classify a part before the relationships that reach it have been seen (see `parts`).

use std::collections::HashMap;

use crate::formats::{xml, zip};
use crate::reader::{Reader, Step};

/// What the describing parts of a package said so far.
#[derive(Debug, Default)]
pub(super) struct Package {
    /// Content types by extension (`Default`), the extension in lower case.
    defaults: HashMap<String, String>,
    /// Content types by part (`Override`), by [`key`].
    overrides: HashMap<String, String>,
    /// The type of the first relationship that reaches each part (see [`short_type`]), by [`key`].
    reached: HashMap<String, String>,
}

impl Package {
    /// Whether `name` is a part that describes the package (its content types, a relationships part) rather than
    /// one of its parts.
    pub(super) fn describes(name: &str) -> bool {
        zip::same_name(name, CONTENT_TYPES) || rels_source(name).is_some()
    }

    /// Learns what a describing part says (nothing when `name` is not one). A part that does not parse gives what
    /// came before the damage, and the package is noted `corrupt`.
    pub(super) fn learn(&mut self, reader: &mut Reader<'_>, name: &str, xml: &[u8]) -> Step {
        if zip::same_name(name, CONTENT_TYPES) {
            for element in xml::elements(reader, xml)? {
                match element.name.as_str() {
                    "Default" => {
                        if let (Some(extension), Some(kind)) =
                            (element.get("Extension"), element.get("ContentType"))
                        {
                            self.defaults
                                .insert(extension.to_lowercase(), content_type(kind));
                        }
                    }
                    "Override" => {
                        if let (Some(part), Some(kind)) =
                            (element.get("PartName"), element.get("ContentType"))
                        {
                            self.overrides.insert(key(part), content_type(kind));
                        }
                    }
                    _ => {}
                }
            }
        } else if let Some(source) = rels_source(name) {
            for element in xml::elements(reader, xml)? {
                if element.name != "Relationship"
                    || element
                        .get("TargetMode")
                        .is_some_and(|mode| mode.eq_ignore_ascii_case("External"))
                {
                    continue;
                }
                let (Some(kind), Some(target)) = (element.get("Type"), element.get("Target"))
                else {
                    continue;
                };
                if let Some(part) = resolve(&source, target) {
                    self.reached.entry(part).or_insert_with(|| short_type(kind));
                }
            }
        }
        Ok(())
    }

    /// The content type of a part (lower case, without parameters): its `Override`, else the `Default` of its
    /// extension.
    pub(super) fn content_type(&self, name: &str) -> Option<&str> {
        let part = key(name);
        if let Some(kind) = self.overrides.get(&part) {
            return Some(kind);
        }
        let file = part.rsplit('/').next().unwrap_or_default();
        let (_, extension) = file.rsplit_once('.')?;
        self.defaults.get(extension).map(String::as_str)
    }

    /// The type of the relationship that reaches a part (see [`short_type`]), when one does.
    pub(super) fn relationship(&self, name: &str) -> Option<&str> {
        self.reached.get(&key(name)).map(String::as_str)
    }
}

/// The content types part, at the root of the package.
const CONTENT_TYPES: &str = "[Content_Types].xml";

/// A part name as Office compares them: without the leading `/` of part names (zip entries have none),
/// `%`-escapes decoded (relationship targets are URIs), `\` read as `/`, case aside.
pub(super) fn key(name: &str) -> String {
    let bytes = name.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let escaped = (bytes[at] == b'%')
            .then(|| bytes.get(at + 1..at + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                at += 3;
            }
            None => {
                decoded.push(if bytes[at] == b'\\' { b'/' } else { bytes[at] });
                at += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded)
        .trim_start_matches('/')
        .to_lowercase()
}

/// A content type compared as a name: lower case, parameters (`; charset=...`) dropped.
fn content_type(kind: &str) -> String {
    kind.split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// A relationship type by its last segment, in lower case (`header`, `officedocument`, `core-properties`): the
/// transitional, strict and Microsoft namespaces of the same relationship differ only before it.
fn short_type(kind: &str) -> String {
    kind.trim()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// The part whose relationships `name` holds (by [`key`]; `""` for the package itself), when `name` is a
/// relationships part: `word/_rels/document.xml.rels` for `word/document.xml`, `_rels/.rels` for the package.
fn rels_source(name: &str) -> Option<String> {
    let name = key(name);
    let stem = name.strip_suffix(".rels")?;
    let (folder, file) = match stem.rsplit_once("/_rels/") {
        Some((folder, file)) => (format!("{folder}/"), file),
        None => (String::new(), stem.strip_prefix("_rels/")?),
    };
    if file.contains('/') {
        return None;
    }
    Some(format!("{folder}{file}"))
}

/// The part a relationship of `source` (by [`key`]) targets: relative to the source's folder (`../` climbs, never
/// above the root), or absolute from the root (`/xl/comments/comment1.xml`, as openpyxl writes). `None` for a
/// target outside the package (a URI with a scheme, even without `TargetMode="External"`).
fn resolve(source: &str, target: &str) -> Option<String> {
    let target = target.split('#').next().unwrap_or_default().trim();
    let first_segment = target.split(['/', '\\']).next().unwrap_or_default();
    if target.is_empty() || first_segment.contains(':') {
        return None;
    }
    let base = if target.starts_with(['/', '\\']) {
        ""
    } else {
        source.rfind('/').map_or("", |at| &source[..=at])
    };
    let mut segments: Vec<&str> = Vec::new();
    for segment in base.split('/').chain(target.split(['/', '\\'])) {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            segment => segments.push(segment),
        }
    }
    (!segments.is_empty()).then(|| key(&segments.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Relationships parts name their source part; other names are not relationships parts.
    #[test]
    fn relationships_parts_and_their_source() {
        assert_eq!(rels_source("_rels/.rels").as_deref(), Some(""));
        assert_eq!(
            rels_source("word/_rels/document.xml.rels").as_deref(),
            Some("word/document.xml")
        );
        assert_eq!(
            rels_source("xl/worksheets/_rels/sheet1.xml.rels").as_deref(),
            Some("xl/worksheets/sheet1.xml")
        );
        assert_eq!(
            rels_source("Word\\_rels\\Document.XML.rels").as_deref(),
            Some("word/document.xml")
        );
        assert_eq!(rels_source("word/document.xml"), None);
        assert_eq!(rels_source("word/other.rels"), None);
        assert_eq!(rels_source("word/_rels/a/b.rels"), None);
    }

    /// Targets resolve against the source part's folder, `../` climbing (never above the root), `/` from the root;
    /// URIs with a scheme are outside the package; `%`-escapes and case do not make two names of one part.
    #[test]
    fn targets_resolve_like_uris() {
        let resolve = |source: &str, target: &str| resolve(source, target);
        assert_eq!(
            resolve("word/document.xml", "header1.xml").as_deref(),
            Some("word/header1.xml")
        );
        assert_eq!(
            resolve("ppt/slides/slide1.xml", "../charts/chart1.xml").as_deref(),
            Some("ppt/charts/chart1.xml")
        );
        assert_eq!(
            resolve("xl/worksheets/sheet1.xml", "/xl/comments/comment1.xml").as_deref(),
            Some("xl/comments/comment1.xml")
        );
        assert_eq!(
            resolve("", "word/document.xml").as_deref(),
            Some("word/document.xml")
        );
        assert_eq!(
            resolve("word/document.xml", "../../../x.xml").as_deref(),
            Some("x.xml")
        );
        assert_eq!(
            resolve("word/document.xml", "./media/Image%201.PNG#frag").as_deref(),
            Some("word/media/image 1.png")
        );
        assert_eq!(
            resolve("word/document.xml", "https://example.org/a.xml"),
            None
        );
        assert_eq!(resolve("word/document.xml", "file:///C:/a.docx"), None);
        assert_eq!(resolve("word/document.xml", ""), None);
    }

    /// Content types come from the part's `Override`, else its extension's `Default`; relationships by the last
    /// segment of their type; external targets are not parts.
    #[test]
    fn content_types_and_relationships_are_learnt() {
        let limits = crate::formats::testing::limits();
        let mut reader = Reader::new(&limits);
        let mut package = Package::default();
        let types = br#"<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="XML" ContentType="application/xml"/><Override PartName="/word/corps.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml; charset=utf-8"/></Types>"#;
        let rels = br#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://purl.oclc.org/ooxml/officeDocument/relationships/header" Target="header1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/hyperlink" Target="other.xml" TargetMode="External"/></Relationships>"#;
        for (name, xml) in [
            ("[Content_Types].xml", &types[..]),
            ("word/_rels/corps.xml.rels", &rels[..]),
        ] {
            assert!(Package::describes(name));
            package.learn(&mut reader, name, xml).unwrap();
        }
        assert_eq!(
            package.content_type("word/corps.xml"),
            Some(
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
            )
        );
        assert_eq!(
            package.content_type("word/header1.xml"),
            Some("application/xml")
        );
        assert_eq!(package.content_type("word/media/image1.png"), None);
        assert_eq!(package.relationship("word/header1.xml"), Some("header"));
        assert_eq!(package.relationship("word/other.xml"), None);
        assert!(!Package::describes("word/corps.xml"));
    }
}
