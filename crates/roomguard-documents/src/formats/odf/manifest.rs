//! The manifest of an OpenDocument package (`META-INF/manifest.xml`): the files the package holds, each with its
//! media type, and which of them are encrypted (a password-protected document keeps its parts encrypted without
//! the zip encryption flag: only the manifest says so).

use std::collections::HashMap;

use crate::formats::xml;
use crate::reader::{Reader, Step};

/// Where the manifest is, in every OpenDocument package.
pub(super) const PATH: &str = "META-INF/manifest.xml";

/// The files a manifest lists, by [`key`].
#[derive(Debug, Default)]
pub(super) struct Manifest {
    files: HashMap<String, Listed>,
}

/// One file the manifest lists.
#[derive(Debug)]
pub(super) struct Listed {
    /// Its media type, in lower case (`text/xml`, `image/png`, `application/vnd.sun.star.oleobject`...).
    pub(super) media_type: String,
    /// Whether it is stored encrypted.
    pub(super) encrypted: bool,
}

impl Manifest {
    /// Reads a manifest; one that does not parse gives the entries before the damage (noted `corrupt`).
    pub(super) fn parse(reader: &mut Reader<'_>, xml: &[u8]) -> Step<Manifest> {
        let mut manifest = Manifest::default();
        let mut last = None;
        for element in xml::elements(reader, xml)? {
            match element.name.as_str() {
                "file-entry" => {
                    let Some(path) = element.get("full-path") else {
                        continue;
                    };
                    let path = key(path);
                    let media_type = element
                        .get("media-type")
                        .unwrap_or_default()
                        .trim()
                        .to_ascii_lowercase();
                    manifest.files.insert(
                        path.clone(),
                        Listed {
                            media_type,
                            encrypted: false,
                        },
                    );
                    last = Some(path);
                }
                // A child of the file entry it describes, which came just before it.
                "encryption-data" => {
                    if let Some(listed) =
                        last.as_ref().and_then(|path| manifest.files.get_mut(path))
                    {
                        listed.encrypted = true;
                    }
                }
                _ => {}
            }
        }
        Ok(manifest)
    }

    /// What the manifest says of the file `name`, when it lists it.
    pub(super) fn get(&self, name: &str) -> Option<&Listed> {
        self.files.get(&key(name))
    }
}

/// A path as the manifest and the archive are compared: `/`-separated, without a leading `./` or `/`, case aside.
pub(super) fn key(path: &str) -> String {
    let path = path.replace('\\', "/");
    let path = path.strip_prefix("./").unwrap_or(&path);
    path.trim_start_matches('/').to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entries are listed by path with their media type; encryption data marks the entry it sits in.
    #[test]
    fn entries_media_types_and_encryption() {
        let xml = br#"<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.text"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"><manifest:encryption-data manifest:checksum-type="SHA1/1K"/></manifest:file-entry><manifest:file-entry manifest:full-path="Pictures/A.png" manifest:media-type="image/PNG"/></manifest:manifest>"#;
        let limits = crate::formats::testing::limits();
        let mut reader = Reader::new(&limits);
        let manifest = Manifest::parse(&mut reader, xml).unwrap();
        assert!(manifest.get("content.xml").unwrap().encrypted);
        let picture = manifest.get("./pictures/a.png").unwrap();
        assert_eq!(picture.media_type, "image/png");
        assert!(!picture.encrypted);
        assert!(manifest.get("styles.xml").is_none());
    }
}
