//! Files attached inside a PDF (PDF 32000-1 §7.11.4, §12.5.6.15), each read as an upload of its own.
//!
//! A PDF carries files in embedded file streams, named by file specifications (`/Type /Filespec`: `/UF` the
//! Unicode name, `/F` the older one, `/Desc` a description, `/EF` the streams). A viewer lists them from two places:
//! the catalog's `/EmbeddedFiles` name tree (the attachments pane; a portfolio, `/Collection`, is a cover page over
//! the same tree) and `/FileAttachment` annotations on pages (Acrobat's "attach file as comment", which puts the
//! file nowhere else). Both are read, and then every file specification and embedded file stream no tree reached:
//! an associated file (`/AF`, PDF/A-3 invoices), a damaged tree, or an attachment removed by an incremental update
//! whose bytes are still in the file, which whoever gets the file can read.
//!
//! Each file's name is reported as a file's name (`reader.name`, as an archive entry's), its description as text,
//! and its content is sniffed and read one level deeper through `formats::nested`, within the decompression budget
//! and `media.max_nesting`. A stream is read once however many ways lead to it.

use std::collections::HashSet;

use lopdf::{Dictionary, Object, ObjectId};

use super::properties::{passage, text_string};
use super::store::{Store, type_is};
use crate::formats;
use crate::reader::{Incomplete, Reader, Step};

/// Name trees deeper than this are malformed (real ones are one or two levels).
const MAX_TREE_DEPTH: usize = 32;

/// The attachments of one document, read once each.
#[derive(Default)]
pub(super) struct Attachments {
    /// Embedded file streams already read.
    read: HashSet<ObjectId>,
    /// Name tree nodes already visited.
    nodes: HashSet<ObjectId>,
}

impl Attachments {
    /// Reads the file a file specification embeds (`/FS` of an annotation, a value of the name tree). `key` is the
    /// name the tree files it under, for a specification that names none.
    pub(super) fn read_spec(
        &mut self,
        reader: &mut Reader<'_>,
        store: &Store<'_>,
        spec: &Object,
        key: Option<&[u8]>,
    ) -> Step {
        // A bare string is a file outside this one: there is nothing to read.
        let Ok(spec) = store.resolve(spec).as_dict() else {
            return Ok(());
        };
        let Some(ef) = store.dict_in(spec, b"EF") else {
            return Ok(());
        };
        let mut streams: Vec<ObjectId> = [b"UF".as_slice(), b"F"]
            .iter()
            .filter_map(|k| ef.get(k).ok().and_then(|s| store.stream_id(s)))
            .filter(|id| !self.read.contains(id))
            .collect();
        // `/UF` and `/F` name the same stream, almost always.
        streams.dedup();
        if streams.is_empty() {
            return Ok(());
        }
        self.read.extend(streams.iter().copied());
        let name = [b"UF".as_slice(), b"F", b"Unix", b"DOS", b"Mac"]
            .iter()
            .find_map(|k| match store.get_in(spec, k) {
                Object::String(bytes, _) if !bytes.is_empty() => Some(text_string(bytes)),
                _ => None,
            })
            .or_else(|| key.map(text_string));
        if let Some(name) = name {
            reader.name(&name)?;
        }
        if let Object::String(desc, _) = store.get_in(spec, b"Desc") {
            passage(reader, &text_string(desc))?;
        }
        for id in streams {
            self.read_stream(reader, store, id)?;
        }
        Ok(())
    }

    /// Reads the catalog's `/EmbeddedFiles` name tree, then every file specification and embedded file stream
    /// nothing led to.
    pub(super) fn read_document(&mut self, reader: &mut Reader<'_>, store: &Store<'_>) -> Step {
        let root = store.get_in(&store.trailer, b"Root");
        if let Ok(catalog) = root.as_dict()
            && let Some(names) = store.dict_in(catalog, b"Names")
            && let Ok(tree) = names.get(b"EmbeddedFiles")
        {
            self.walk(reader, store, tree, 0)?;
        }
        let objects = store.in_file_order();
        for (_, object) in &objects {
            reader.tick()?;
            if let Ok(dict) = object.as_dict()
                && dict.has(b"EF")
                && !type_is(object, b"EmbeddedFile")
            {
                self.read_spec(reader, store, object, None)?;
            }
        }
        for (id, object) in objects {
            reader.tick()?;
            if type_is(object, b"EmbeddedFile") && !self.read.contains(&id) {
                self.read.insert(id);
                self.read_stream(reader, store, id)?;
            }
        }
        Ok(())
    }

    /// One node of the name tree: its `/Names` pairs (key, file specification), then its `/Kids`.
    fn walk(
        &mut self,
        reader: &mut Reader<'_>,
        store: &Store<'_>,
        node: &Object,
        depth: usize,
    ) -> Step {
        reader.tick()?;
        if let Object::Reference(id) = node
            && !self.nodes.insert(*id)
        {
            return Ok(());
        }
        if depth > MAX_TREE_DEPTH {
            reader.note(Incomplete::Corrupt);
            return Ok(());
        }
        let Ok(node) = store.resolve(node).as_dict() else {
            return Ok(());
        };
        if let Object::Array(pairs) = store.get_in(node, b"Names") {
            for pair in pairs.chunks(2) {
                reader.tick()?;
                if let [key, spec] = pair {
                    let key = match store.resolve(key) {
                        Object::String(key, _) => Some(key.as_slice()),
                        _ => None,
                    };
                    self.read_spec(reader, store, spec, key)?;
                }
            }
        }
        if let Object::Array(kids) = store.get_in(node, b"Kids") {
            for kid in kids {
                self.walk(reader, store, kid, depth + 1)?;
            }
        }
        Ok(())
    }

    fn read_stream(&mut self, reader: &mut Reader<'_>, store: &Store<'_>, id: ObjectId) -> Step {
        match store.stream_bytes(reader, id)? {
            Some(bytes) => formats::nested(reader, &bytes).map(|_| ()),
            // A filter roomguard does not decode: the file is there but unread.
            None => {
                reader.note(Incomplete::Unsupported);
                Ok(())
            }
        }
    }
}

/// Whether an annotation is a file attachment, whose `/FS` holds a file.
pub(super) fn is_attachment(store: &Store<'_>, annot: &Dictionary) -> bool {
    store.get_in(annot, b"Subtype").as_name().ok() == Some(b"FileAttachment")
}
