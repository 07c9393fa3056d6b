//! The objects of a file, found by reading it from start to end rather than through its cross-reference table.
//!
//! Why not the xref: a file cut at `media.max_bytes` has none, a damaged one points to the wrong offsets, and an
//! uploaded file is exactly where both happen. Reading every `N G obj ... endobj` in order works for all of them
//! and costs one pass: a later definition of the same object number replaces an earlier one, as an incremental
//! update does. Objects inside object streams (`/Type /ObjStm`) are read from their decoded stream, bounded like
//! any other stream. The trailer is the last `trailer` dictionary or cross-reference stream dictionary found.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;

use lopdf::{Dictionary, Object, ObjectId};
use memchr::memmem;

use super::crypt::Decryptor;
use super::filters;
use super::lexer::{Lexer, Token, is_delimiter, is_white};
use crate::reader::{Incomplete, Reader, Step};

/// References are followed at most this many hops (a chain of references to references is malformed).
const MAX_HOPS: usize = 16;

/// An object, where it was defined, and for a stream where its raw bytes are.
#[derive(Debug)]
struct Entry {
    /// Position in the file of the definition (of the containing object stream for compressed objects): the later
    /// one wins.
    at: usize,
    generation: u16,
    object: Object,
    /// The raw (encoded) bytes of a stream, in the file.
    data: Option<Range<usize>>,
}

/// The objects of one file.
#[derive(Debug)]
pub(super) struct Store<'a> {
    bytes: &'a [u8],
    objects: HashMap<u32, Entry>,
    /// The document's trailer: `/Root`, `/Info`, `/Encrypt`, `/ID`.
    pub(super) trailer: Dictionary,
    /// The file did not end as a PDF ends (no `startxref`), or an object was unreadable.
    pub(super) damaged: bool,
    decryptor: Option<Decryptor>,
}

impl<'a> Store<'a> {
    /// Reads every object of `bytes`.
    pub(super) fn scan(reader: &mut Reader<'_>, bytes: &'a [u8]) -> Step<Store<'a>> {
        let mut store = Store {
            bytes,
            objects: HashMap::new(),
            trailer: Dictionary::new(),
            damaged: false,
            decryptor: None,
        };
        let tail = &bytes[bytes.len().saturating_sub(2048)..];
        store.damaged = memmem::find(tail, b"startxref").is_none();
        let finder = memmem::Finder::new(b"obj");
        let mut from = 0;
        while let Some(found) = finder.find(&bytes[from..]) {
            reader.tick()?;
            let at = from + found;
            from = at + 3;
            let Some((number, generation, start)) = object_header(bytes, at) else {
                continue;
            };
            if let Some(end) = store.read_object(number, generation, start, at + 3) {
                from = end;
            }
        }
        store.find_trailer(reader)?;
        Ok(store)
    }

    /// Parses the object whose body starts at `body`; returns where scanning goes on.
    fn read_object(
        &mut self,
        number: u32,
        generation: u16,
        start: usize,
        body: usize,
    ) -> Option<usize> {
        let mut lexer = Lexer::new(self.bytes, body);
        let object = match lexer.object() {
            Ok(object) => object,
            // `1 0 obj endobj`: an empty object is null.
            Err(Ok(b"endobj")) => Object::Null,
            Err(_) => {
                self.damaged = true;
                return None;
            }
        };
        lexer.skip_white();
        let mut data = None;
        let mut end = lexer.pos();
        if let Object::Dictionary(dict) = &object
            && self.bytes[end..].starts_with(b"stream")
        {
            let range = self.stream_range(dict, end + b"stream".len());
            end = range.end;
            data = Some(range);
        }
        let entry = Entry {
            at: start,
            generation,
            object: match object {
                Object::Dictionary(dict) if data.is_some() => Object::Dictionary(dict),
                other => other,
            },
            data,
        };
        self.objects.insert(number, entry);
        Some(end)
    }

    /// Where a stream's bytes are: `/Length` when it is direct and lands on `endstream`, otherwise up to the next
    /// `endstream` (or the end of a truncated file).
    fn stream_range(&mut self, dict: &Dictionary, keyword_end: usize) -> Range<usize> {
        let bytes = self.bytes;
        let mut start = keyword_end;
        if bytes.get(start) == Some(&b'\r') {
            start += 1;
        }
        if bytes.get(start) == Some(&b'\n') {
            start += 1;
        }
        if let Ok(length) = dict.get(b"Length").and_then(Object::as_i64)
            && let Ok(length) = usize::try_from(length)
            && let Some(end) = start.checked_add(length)
            && end <= bytes.len()
        {
            let mut after = Lexer::new(bytes, end);
            after.skip_white();
            if bytes[after.pos()..].starts_with(b"endstream") {
                return start..end;
            }
        }
        match memmem::find(&bytes[start..], b"endstream") {
            Some(found) => {
                let mut end = start + found;
                // The end-of-line before `endstream` is not part of the data.
                if end > start && bytes[end - 1] == b'\n' {
                    end -= 1;
                }
                if end > start && bytes[end - 1] == b'\r' {
                    end -= 1;
                }
                start..end
            }
            None => {
                self.damaged = true;
                start..bytes.len()
            }
        }
    }

    /// The trailer: the last `trailer` dictionary, or the last cross-reference stream's dictionary, whichever has a
    /// `/Root`; earlier ones fill in what it lacks (`/Info` and `/Encrypt` are sometimes only in the first).
    fn find_trailer(&mut self, reader: &mut Reader<'_>) -> Step {
        let mut candidates: Vec<(usize, Dictionary)> = Vec::new();
        for found in memmem::find_iter(self.bytes, b"trailer") {
            reader.tick()?;
            if let Ok(Object::Dictionary(d)) = Lexer::new(self.bytes, found + 7).object() {
                candidates.push((found, d));
            }
        }
        for entry in self.objects.values() {
            if let Object::Dictionary(d) = &entry.object
                && entry.data.is_some()
                && d.get(b"Type").and_then(Object::as_name).ok() == Some(b"XRef")
            {
                candidates.push((entry.at, d.clone()));
            }
        }
        candidates.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
        for (_, dict) in candidates {
            for (key, value) in dict.iter() {
                if matches!(key.as_slice(), b"Root" | b"Info" | b"Encrypt" | b"ID")
                    && !self.trailer.has(key)
                {
                    self.trailer.set(key.clone(), value.clone());
                }
            }
        }
        Ok(())
    }

    /// Sets up decryption, then reads the objects inside object streams (which are encrypted as streams, not one
    /// by one, so this waits for the key).
    pub(super) fn finish(&mut self, reader: &mut Reader<'_>, decryptor: Option<Decryptor>) -> Step {
        if let Some(decryptor) = &decryptor {
            let encrypt = match self.trailer.get(b"Encrypt") {
                Ok(Object::Reference((n, _))) => Some(*n),
                _ => None,
            };
            for (&number, entry) in &mut self.objects {
                reader.tick()?;
                if Some(number) != encrypt && entry.data.is_none() {
                    decryptor.object((number, entry.generation), &mut entry.object);
                }
            }
        }
        self.decryptor = decryptor;
        let containers: Vec<u32> = self
            .objects
            .iter()
            .filter(|(_, e)| e.data.is_some() && type_is(&e.object, b"ObjStm"))
            .map(|(&n, _)| n)
            .collect();
        for number in containers {
            reader.tick()?;
            self.read_object_stream(reader, number)?;
        }
        Ok(())
    }

    fn read_object_stream(&mut self, reader: &mut Reader<'_>, number: u32) -> Step {
        let Some(entry) = self.objects.get(&number) else {
            return Ok(());
        };
        let at = entry.at;
        let Some(data) = self.stream_bytes(reader, (number, entry.generation))? else {
            return Ok(());
        };
        let Object::Dictionary(dict) = &entry.object else {
            return Ok(());
        };
        let count = dict.get(b"N").and_then(Object::as_i64).unwrap_or(0).max(0);
        let first =
            usize::try_from(dict.get(b"First").and_then(Object::as_i64).unwrap_or(0)).unwrap_or(0);
        let mut header = Lexer::new(&data, 0);
        let mut members = Vec::new();
        for _ in 0..count {
            reader.tick()?;
            match (header.token(), header.token()) {
                (Some(Token::Int(n)), Some(Token::Int(offset))) => {
                    if let (Ok(n), Ok(offset)) = (u32::try_from(n), usize::try_from(offset)) {
                        members.push((n, offset));
                    }
                }
                _ => break,
            }
        }
        for (n, offset) in members {
            reader.tick()?;
            let Ok(object) = Lexer::new(&data, first.saturating_add(offset)).object() else {
                self.damaged = true;
                continue;
            };
            // A top-level definition after this object stream (an incremental update) replaces it, and so does a
            // later object stream.
            if self.objects.get(&n).is_none_or(|e| e.at < at) {
                self.objects.insert(
                    n,
                    Entry {
                        at,
                        generation: 0,
                        object,
                        data: None,
                    },
                );
            }
        }
        Ok(())
    }

    /// Follows references to the object they name (`Null` when missing).
    pub(super) fn resolve<'o>(&'o self, mut object: &'o Object) -> &'o Object {
        for _ in 0..MAX_HOPS {
            match object {
                Object::Reference((n, _)) => match self.objects.get(n) {
                    Some(entry) => object = &entry.object,
                    None => return &Object::Null,
                },
                _ => return object,
            }
        }
        &Object::Null
    }

    /// The object numbered `id`.
    pub(super) fn get(&self, id: ObjectId) -> &Object {
        self.objects.get(&id.0).map_or(&Object::Null, |e| &e.object)
    }

    /// A dictionary entry, references followed.
    pub(super) fn get_in<'o>(&'o self, dict: &'o Dictionary, key: &[u8]) -> &'o Object {
        dict.get(key).map_or(&Object::Null, |o| self.resolve(o))
    }

    /// A dictionary entry that is a dictionary (or the dictionary of a stream).
    pub(super) fn dict_in<'o>(
        &'o self,
        dict: &'o Dictionary,
        key: &[u8],
    ) -> Option<&'o Dictionary> {
        self.get_in(dict, key).as_dict().ok()
    }

    /// The stream an object (or a reference) is, if it is one.
    pub(super) fn stream_id(&self, object: &Object) -> Option<ObjectId> {
        let mut id = None;
        let mut object = object;
        for _ in 0..MAX_HOPS {
            match object {
                Object::Reference(r) => {
                    id = Some(*r);
                    object = self.objects.get(&r.0).map_or(&Object::Null, |e| &e.object);
                }
                _ => break,
            }
        }
        let number = id?.0;
        self.objects.get(&number)?.data.as_ref()?;
        id
    }

    /// A stream's decoded bytes, decrypted and through its filters; `None` for image codecs and missing streams.
    pub(super) fn stream_bytes(
        &self,
        reader: &mut Reader<'_>,
        id: ObjectId,
    ) -> Step<Option<Vec<u8>>> {
        let Some(entry) = self.objects.get(&id.0) else {
            return Ok(None);
        };
        let (Some(range), Object::Dictionary(dict)) = (&entry.data, &entry.object) else {
            return Ok(None);
        };
        let raw = &self.bytes[range.clone()];
        match &self.decryptor {
            Some(decryptor) if !type_is(&entry.object, b"XRef") => {
                let plain = decryptor.stream((id.0, entry.generation), dict, raw);
                filters::decode(reader, dict, &plain)
            }
            _ => filters::decode(reader, dict, raw),
        }
    }

    /// A stream's dictionary and its bytes decrypted but not decoded: an image's codec data (DCT, CCITT, JBIG2), which
    /// [`Store::stream_bytes`] leaves alone. `None` for a missing stream.
    pub(super) fn stream_raw(&self, id: ObjectId) -> Option<(&Dictionary, Cow<'a, [u8]>)> {
        let entry = self.objects.get(&id.0)?;
        let (Some(range), Object::Dictionary(dict)) = (&entry.data, &entry.object) else {
            return None;
        };
        let raw = &self.bytes[range.clone()];
        let bytes = match &self.decryptor {
            Some(decryptor) => Cow::Owned(decryptor.stream((id.0, entry.generation), dict, raw)),
            None => Cow::Borrowed(raw),
        };
        Some((dict, bytes))
    }

    /// Every object, in file order, for the fallback when the page tree is unreadable.
    pub(super) fn in_file_order(&self) -> Vec<(ObjectId, &Object)> {
        let mut all: Vec<_> = self
            .objects
            .iter()
            .map(|(&n, e)| (e.at, (n, e.generation), &e.object))
            .collect();
        all.sort_by_key(|(at, id, _)| (*at, id.0));
        all.into_iter().map(|(_, id, o)| (id, o)).collect()
    }

    /// Notes an unreadable part.
    pub(super) fn note_damage(&self, reader: &mut Reader<'_>) {
        if self.damaged {
            reader.note(Incomplete::Corrupt);
        }
    }
}

/// Whether `object` is a dictionary (or stream dictionary) of `/Type /name`.
pub(super) fn type_is(object: &Object, name: &[u8]) -> bool {
    object
        .as_dict()
        .ok()
        .and_then(|d| d.get(b"Type").ok())
        .and_then(|t| t.as_name().ok())
        == Some(name)
}

/// `N G obj` ending at `keyword` (the position of `obj`): the object number, generation and where `N` starts.
fn object_header(bytes: &[u8], keyword: usize) -> Option<(u32, u16, usize)> {
    // `obj` must be a whole word: not `endobj`, not `objx`.
    if bytes
        .get(keyword + 3)
        .is_some_and(|&b| !is_white(b) && !is_delimiter(b))
    {
        return None;
    }
    let mut i = keyword;
    let white = |i: &mut usize| {
        let end = *i;
        while *i > 0 && is_white(bytes[*i - 1]) {
            *i -= 1;
        }
        *i < end
    };
    let digits = |i: &mut usize| {
        let end = *i;
        while *i > 0 && bytes[*i - 1].is_ascii_digit() && end - *i < 10 {
            *i -= 1;
        }
        std::str::from_utf8(&bytes[*i..end])
            .ok()?
            .parse::<u64>()
            .ok()
    };
    if !white(&mut i) {
        return None;
    }
    let generation = u16::try_from(digits(&mut i)?).ok()?;
    if !white(&mut i) {
        return None;
    }
    let number = u32::try_from(digits(&mut i)?).ok()?;
    if i > 0 && !is_white(bytes[i - 1]) && !is_delimiter(bytes[i - 1]) {
        return None;
    }
    Some((number, generation, i))
}
