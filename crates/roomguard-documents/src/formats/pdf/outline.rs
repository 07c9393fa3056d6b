//! The document outline (PDF 32000-1 §12.3.3): the bookmarks a viewer shows beside the pages, read as a passage of
//! their own, one title a line, in the order the viewer lists them (an item, its children, then its next sibling).

use std::collections::HashSet;

use lopdf::{Object, ObjectId};

use super::properties::text_string;
use super::store::Store;
use crate::reader::{Reader, Step};

/// Outline levels deeper than this are malformed (real outlines have a handful).
const MAX_DEPTH: usize = 64;

/// Reads every title of the outline.
pub(super) fn read(reader: &mut Reader<'_>, store: &Store<'_>) -> Step {
    let root = store.get_in(&store.trailer, b"Root");
    let Some(outlines) = root
        .as_dict()
        .ok()
        .and_then(|c| store.dict_in(c, b"Outlines"))
    else {
        return Ok(());
    };
    reader.close_passage();
    let mut seen: HashSet<ObjectId> = HashSet::new();
    // The items still to read: each the next item of some level, deepest level last.
    let mut pending: Vec<&Object> = outlines.get(b"First").ok().into_iter().collect();
    while let Some(item) = pending.pop() {
        reader.tick()?;
        let Object::Reference(id) = item else {
            continue;
        };
        if !seen.insert(*id) {
            continue;
        }
        let Ok(dict) = store.resolve(item).as_dict() else {
            continue;
        };
        if let Object::String(title, _) = store.get_in(dict, b"Title") {
            let title = text_string(title);
            let title = title.trim();
            if !title.is_empty() {
                // A title is one line, whatever line breaks it carries.
                reader.text(&title.replace(['\n', '\r'], " "))?;
                reader.end_paragraph();
            }
        }
        if let Ok(next) = dict.get(b"Next") {
            pending.push(next);
        }
        if pending.len() < MAX_DEPTH
            && let Ok(first) = dict.get(b"First")
        {
            pending.push(first);
        }
    }
    reader.close_passage();
    Ok(())
}
