//! Zip archives: an upload format of its own, and the container of Office Open XML and OpenDocument files.
//!
//! The archive is parsed here rather than with the `zip` crate because a scan must read what a broken or hostile
//! archive still holds: a file cut at `media.max_bytes` has lost its central directory (the index at the end), so
//! its entries are found again from their local headers; every entry is inflated within what is left of
//! `media.max_uncompressed_bytes`, counted as it comes, so a bomb (one entry of high ratio, zips in zips, or many
//! entries overlapping one compressed kernel) stops at the budget rather than at the end of memory. Only stored and
//! Deflate entries are read: they are what office suites and archivers write.

use std::borrow::Cow;
use std::ops::Range;

use flate2::{Decompress, FlushDecompress, Status};

use crate::reader::{Incomplete, Reader, Step};

const LOCAL: &[u8; 4] = b"PK\x03\x04";
const CENTRAL: &[u8; 4] = b"PK\x01\x02";
const END: &[u8; 4] = b"PK\x05\x06";
const END64_LOCATOR: &[u8; 4] = b"PK\x06\x07";
const END64: &[u8; 4] = b"PK\x06\x06";

/// The end-of-central-directory record sits within the last 22 bytes plus a comment of at most 64 KiB.
const END_SEARCH: usize = 22 + 0xFFFF;

/// Bytes inflated between two counts against the budget (and two looks at the clock).
const INFLATE_CHUNK: usize = 64 * 1024;

/// Entries of one archive listed at most: past this the archive is noted `size_limit` (a real archive of a few
/// MiB holds thousands; a central directory of millions of entries is an attack on the listing itself).
pub(crate) const MAX_ENTRIES: usize = 200_000;

/// One entry of an archive: where its data lies and how it is stored.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// The entry's path in the archive (`/` separated, as written).
    pub(crate) name: String,
    flags: u16,
    method: u16,
    /// The compressed data; runs to the end of the file when the size is unknown (a damaged archive).
    data: Range<usize>,
}

impl Entry {
    /// Whether the entry is a folder (nothing to read).
    pub(crate) fn is_dir(&self) -> bool {
        self.name.ends_with('/')
    }
}

/// The entries of one zip archive.
#[derive(Debug)]
pub(crate) struct Archive<'a> {
    bytes: &'a [u8],
    /// Entries in the order of the central directory (or of the file, when it had to be scanned).
    pub(crate) entries: Vec<Entry>,
    /// The central directory was missing or broken and the entries come from a scan of the local headers.
    pub(crate) damaged: bool,
    /// More than [`MAX_ENTRIES`] entries: the rest were not listed.
    pub(crate) too_many: bool,
}

impl<'a> Archive<'a> {
    /// Lists the entries of `bytes`, at most `max_entries` of them: from the central directory when it is sound,
    /// else from the local headers.
    pub(crate) fn open(bytes: &'a [u8], max_entries: usize) -> Archive<'a> {
        let mut archive = Archive {
            bytes,
            entries: Vec::new(),
            damaged: false,
            too_many: false,
        };
        if archive.read_central(max_entries).is_none() {
            archive.entries.clear();
            archive.too_many = false;
            archive.damaged = true;
            archive.scan_local(max_entries);
        }
        archive
    }

    /// Whether `bytes` starts like a zip archive (a local header, or the end record of an empty archive).
    pub(crate) fn looks_like(bytes: &[u8]) -> bool {
        bytes.starts_with(LOCAL)
            || bytes.starts_with(END)
            || bytes.starts_with(b"PK\x07\x08PK\x03\x04")
    }

    /// The first entry whose name is `name`, compared as office suites do: ASCII case aside, `\` read as `/`.
    pub(crate) fn find(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| same_name(&e.name, name))
    }

    /// The entry's content, inflated within the scan's budget and counted. `None` (with a note) when it cannot
    /// be read: encrypted, an unsupported method. A damaged stream gives what inflated before the damage.
    pub(crate) fn contents(
        &self,
        reader: &mut Reader<'_>,
        entry: &Entry,
    ) -> Step<Option<Cow<'a, [u8]>>> {
        // Bit 0: traditional PKWARE encryption; method 99: WinZip AES.
        if entry.flags & 1 != 0 || entry.method == 99 {
            reader.note(Incomplete::Encrypted);
            return Ok(None);
        }
        let len = self.bytes.len();
        let data = self
            .bytes
            .get(entry.data.start.min(len)..entry.data.end.min(len))
            .unwrap_or_default();
        match entry.method {
            0 => {
                // Stored entries cost no inflating, but overlapping entries can present the same bytes many times
                // over: they are counted like inflated bytes so that the total stays bounded.
                reader.inflated(data.len() as u64)?;
                if entry.data.end > self.bytes.len() {
                    reader.note(Incomplete::Corrupt);
                }
                Ok(Some(Cow::Borrowed(data)))
            }
            8 => inflate(reader, data).map(|out| Some(Cow::Owned(out))),
            _ => {
                reader.note(Incomplete::Unsupported);
                Ok(None)
            }
        }
    }

    /// The first `max` bytes of an entry's content, for sniffing (which has no scan to count against): `None` when
    /// encrypted, of another method, or broken before any byte.
    pub(crate) fn peek(&self, entry: &Entry, max: usize) -> Option<Vec<u8>> {
        if entry.flags & 1 != 0 {
            return None;
        }
        let len = self.bytes.len();
        let data = self
            .bytes
            .get(entry.data.start.min(len)..entry.data.end.min(len))?;
        match entry.method {
            0 => Some(data[..data.len().min(max)].to_vec()),
            8 => {
                let mut inflater = Decompress::new(false);
                let mut out = Vec::with_capacity(max);
                // One call fills the buffer or reaches the end of the stream, or of the input.
                let _ = inflater.decompress_vec(data, &mut out, FlushDecompress::Finish);
                (!out.is_empty()).then_some(out)
            }
            _ => None,
        }
    }

    /// Lists the central directory; `None` when it is missing or does not hold together.
    fn read_central(&mut self, max_entries: usize) -> Option<()> {
        let bytes = self.bytes;
        let from = bytes.len().saturating_sub(END_SEARCH);
        let end = rfind(&bytes[from..], END)? + from;
        let mut count = u64::from(le16(bytes, end + 10)?);
        let mut size = u64::from(le32(bytes, end + 12)?);
        let mut offset = u64::from(le32(bytes, end + 16)?);
        let mut end_at = end;
        if count == 0xFFFF || size == 0xFFFF_FFFF || offset == 0xFFFF_FFFF {
            // Zip64: the real numbers are in the zip64 end record, found through its locator.
            let locator = end.checked_sub(20)?;
            if bytes.get(locator..locator + 4)? == END64_LOCATOR {
                let end64 = usize::try_from(le64(bytes, locator + 8)?).ok()?;
                if bytes.get(end64..end64 + 4)? != END64 {
                    return None;
                }
                count = le64(bytes, end64 + 32)?;
                size = le64(bytes, end64 + 40)?;
                offset = le64(bytes, end64 + 48)?;
                end_at = end64;
            }
        }
        // Bytes before the archive (a self-extractor stub, a prefix) shift every offset by the same amount.
        let claimed_end = offset.checked_add(size)?;
        let shift = (end_at as u64).checked_sub(claimed_end)?;
        let mut at = usize::try_from(offset + shift).ok()?;
        let shift = usize::try_from(shift).ok()?;
        if count > 0 && bytes.get(at..at + 4)? != CENTRAL {
            return None;
        }
        for _ in 0..count {
            if self.entries.len() >= max_entries {
                self.too_many = true;
                break;
            }
            if bytes.get(at..at + 4)? != CENTRAL {
                return None;
            }
            let flags = le16(bytes, at + 8)?;
            let method = le16(bytes, at + 10)?;
            let mut compressed = u64::from(le32(bytes, at + 20)?);
            let mut uncompressed = u64::from(le32(bytes, at + 24)?);
            let name_len = usize::from(le16(bytes, at + 28)?);
            let extra_len = usize::from(le16(bytes, at + 30)?);
            let comment_len = usize::from(le16(bytes, at + 32)?);
            let mut local = u64::from(le32(bytes, at + 42)?);
            let name = bytes.get(at + 46..at + 46 + name_len)?;
            let extra = bytes.get(at + 46 + name_len..at + 46 + name_len + extra_len)?;
            zip64_extra(extra, &mut uncompressed, &mut compressed, &mut local);
            let local = usize::try_from(local).ok()?.checked_add(shift)?;
            // A central directory that points at no local header does not hold together.
            let data = self.local_data(local, compressed)?;
            self.entries.push(Entry {
                name: decode_name(name, flags),
                flags,
                method,
                data,
            });
            at += 46 + name_len + extra_len + comment_len;
        }
        Some(())
    }

    /// Where the data of the entry whose local header is at `local` lies.
    fn local_data(&self, local: usize, compressed: u64) -> Option<Range<usize>> {
        let bytes = self.bytes;
        if bytes.get(local..local.checked_add(4)?)? != LOCAL {
            return None;
        }
        let name_len = usize::from(le16(bytes, local + 26)?);
        let extra_len = usize::from(le16(bytes, local + 28)?);
        let start = local + 30 + name_len + extra_len;
        let end = start.saturating_add(usize::try_from(compressed).unwrap_or(usize::MAX));
        Some(start..end)
    }

    /// Finds entries from their local headers, front to back: what is left of an archive cut short or whose
    /// central directory is garbled.
    fn scan_local(&mut self, max_entries: usize) {
        let bytes = self.bytes;
        let mut at = 0;
        while let Some(found) = find(&bytes[at.min(bytes.len())..], LOCAL) {
            let header = at + found;
            if self.entries.len() >= max_entries {
                self.too_many = true;
                return;
            }
            let parsed = (|| {
                let flags = le16(bytes, header + 6)?;
                let method = le16(bytes, header + 8)?;
                let mut compressed = u64::from(le32(bytes, header + 18)?);
                let mut uncompressed = u64::from(le32(bytes, header + 22)?);
                let name_len = usize::from(le16(bytes, header + 26)?);
                let extra_len = usize::from(le16(bytes, header + 28)?);
                let name = bytes.get(header + 30..header + 30 + name_len)?;
                let extra =
                    bytes.get(header + 30 + name_len..header + 30 + name_len + extra_len)?;
                let mut unused = 0;
                zip64_extra(extra, &mut uncompressed, &mut compressed, &mut unused);
                let start = header + 30 + name_len + extra_len;
                // Bit 3: sizes follow the data; a Deflate stream ends by itself, so read to the end of the file.
                let known = flags & 8 == 0 || compressed != 0;
                let end = if known {
                    start.saturating_add(usize::try_from(compressed).unwrap_or(usize::MAX))
                } else {
                    bytes.len()
                };
                Some((decode_name(name, flags), flags, method, start..end, known))
            })();
            let Some((name, flags, method, data, known)) = parsed else {
                return;
            };
            // Skip over data of known size (a stored zip inside must not be listed as this archive's entries).
            at = if known && data.end <= bytes.len() {
                data.end
            } else {
                data.start
            };
            self.entries.push(Entry {
                name,
                flags,
                method,
                data,
            });
        }
    }
}

/// Inflates a raw Deflate stream within the scan's budget, counting as it goes. A stream that breaks off (a file
/// cut short, garbled bytes) is noted `corrupt` and gives what inflated before.
fn inflate(reader: &mut Reader<'_>, data: &[u8]) -> Step<Vec<u8>> {
    let mut inflater = Decompress::new(false);
    let mut out: Vec<u8> = Vec::new();
    // Inflated through a chunk of its own and appended: `decompress_vec` into `out` would zero all of `out`'s spare
    // capacity at every call, which grows with `out` (a bomb's 32 MiB took seconds in steps of 200 ms).
    let mut chunk = vec![0; INFLATE_CHUNK];
    loop {
        let consumed = usize::try_from(inflater.total_in()).unwrap_or(usize::MAX);
        let input = data.get(consumed..).unwrap_or_default();
        // Never hold more than the budget allows (plus one byte, to see that it was exceeded).
        let room = usize::try_from(reader.inflate_budget())
            .unwrap_or(usize::MAX)
            .saturating_add(1)
            .min(INFLATE_CHUNK);
        let before_out = inflater.total_out();
        let status = inflater.decompress(input, &mut chunk[..room], FlushDecompress::None);
        let produced = usize::try_from(inflater.total_out() - before_out).unwrap_or(room);
        out.extend_from_slice(&chunk[..produced]);
        reader.inflated(produced as u64)?;
        let progressed =
            produced > 0 || usize::try_from(inflater.total_in()).unwrap_or(usize::MAX) > consumed;
        match status {
            Ok(Status::StreamEnd) => return Ok(out),
            Ok(_) if progressed => {}
            // No progress: the input ended before the stream did.
            Ok(_) | Err(_) => {
                reader.note(Incomplete::Corrupt);
                return Ok(out);
            }
        }
    }
}

/// Reads a zip upload: every entry's name, and every entry as a file of its own one level deeper.
pub(crate) fn read(reader: &mut Reader<'_>, bytes: &[u8]) -> Step {
    let archive = Archive::open(bytes, MAX_ENTRIES);
    if archive.damaged {
        reader.note(Incomplete::Corrupt);
    }
    if archive.too_many {
        reader.note(Incomplete::SizeLimit);
    }
    for entry in &archive.entries {
        reader.tick()?;
        reader.name(&entry.name)?;
        if entry.is_dir() {
            continue;
        }
        if let Some(contents) = archive.contents(reader, entry)? {
            super::nested(reader, &contents)?;
        }
    }
    Ok(())
}

/// Office suites compare part names without regard to ASCII case, and some writers use `\`.
pub(crate) fn same_name(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes().zip(b.bytes()).all(|(x, y)| {
            x.eq_ignore_ascii_case(&y) || (x == b'\\' && y == b'/') || (x == b'/' && y == b'\\')
        })
}

/// Entry names are UTF-8 when flag bit 11 says so, and in practice most others are too; the rest are read as
/// cp1252, which agrees with the historical cp437 on ASCII.
fn decode_name(name: &[u8], _flags: u16) -> String {
    match std::str::from_utf8(name) {
        Ok(name) => name.to_owned(),
        Err(_) => encoding_rs::WINDOWS_1252
            .decode_without_bom_handling(name)
            .0
            .into_owned(),
    }
}

/// Applies the zip64 extra field (id 1), which holds, in order, each size or offset whose 32-bit field is full.
fn zip64_extra(extra: &[u8], uncompressed: &mut u64, compressed: &mut u64, offset: &mut u64) {
    let mut at = 0;
    while let (Some(id), Some(len)) = (le16(extra, at), le16(extra, at + 2)) {
        let body = at + 4;
        let len = usize::from(len);
        if id == 1 {
            let mut field = body;
            for value in [uncompressed, compressed, offset] {
                if *value == 0xFFFF_FFFF
                    && field + 8 <= body + len
                    && let Some(v) = le64(extra, field)
                {
                    *value = v;
                    field += 8;
                }
            }
            return;
        }
        at = body + len;
    }
}

fn le16(bytes: &[u8], at: usize) -> Option<u16> {
    let b = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

fn le32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn le64(bytes: &[u8], at: usize) -> Option<u64> {
    let b: [u8; 8] = bytes.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(b))
}

fn find(haystack: &[u8], needle: &[u8; 4]) -> Option<usize> {
    haystack.windows(4).position(|w| w == needle)
}

fn rfind(haystack: &[u8], needle: &[u8; 4]) -> Option<usize> {
    haystack.windows(4).rposition(|w| w == needle)
}

/// Orders entry names as a person would: `slide2.xml` before `slide10.xml`, so parts are read in document order
/// and every scan of the same file reads them in the same order.
pub(crate) fn natural_order(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (na, nb) = (trim_zeros(&a[..da]), trim_zeros(&b[..db]));
                let order = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
                if order != std::cmp::Ordering::Equal {
                    return order;
                }
                a = &a[da..];
                b = &b[db..];
            }
            (Some(x), Some(y)) => {
                let order = x.to_ascii_lowercase().cmp(&y.to_ascii_lowercase());
                if order != std::cmp::Ordering::Equal {
                    return order;
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let zeros = digits.iter().take_while(|&&c| c == b'0').count();
    &digits[zeros..]
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::super::testing::{MARK, fixture, has_mark_line, limits, lines, scan, zip, zip_with};
    use crate::{Format, Incomplete, Limits, Passage, extract};

    /// A zip holding a marked docx is read as marked, and its entry names are passages of their own.
    #[test]
    fn zip_holding_a_marked_docx() {
        let scan = scan(&fixture("other/docx_in_zip.zip"));
        assert_eq!(scan.format, Format::Zip);
        assert_eq!(scan.incomplete, None);
        assert!(has_mark_line(&scan), "{:?}", lines(&scan));
        assert!(
            scan.passages
                .contains(&Passage::Name("dossier/note.docx".into()))
        );
    }

    /// An archive whose central directory is lost (cut at the size limit) is read from its local headers.
    #[test]
    fn missing_central_directory_is_scanned() {
        let whole = fixture("other/docx_in_zip.zip");
        let cut = &whole[..whole.len() - 60];
        let scan = scan(cut);
        assert_eq!(scan.format, Format::Zip);
        assert_eq!(scan.incomplete, Some(Incomplete::Corrupt));
        assert!(has_mark_line(&scan), "{:?}", lines(&scan));
        // The same cut at `media.max_bytes` is said to be a size limit.
        assert_eq!(
            extract(cut, true, &limits()).incomplete,
            Some(Incomplete::SizeLimit)
        );
    }

    /// Zips nested deeper than `max_nesting` stop at the limit, noted `nesting_limit`.
    #[test]
    fn nesting_past_the_limit() {
        let mut bytes = format!("{MARK}\n").into_bytes();
        for level in 0..6 {
            bytes = zip(&[(&format!("level{level}.zip"), &bytes)]);
        }
        let scan = scan(&bytes);
        assert_eq!(scan.incomplete, Some(Incomplete::NestingLimit));
        assert!(!has_mark_line(&scan));
    }

    /// A single entry of high ratio stops at `max_uncompressed_bytes`, quickly and without holding it all.
    #[test]
    fn single_entry_bomb() {
        let zeros = vec![0u8; 8 * 1024 * 1024];
        let bomb = zip(&[("zeros.bin", &zeros)]);
        assert!(bomb.len() < 64 * 1024);
        let limits = Limits {
            max_uncompressed_bytes: 1024 * 1024,
            ..limits()
        };
        let started = Instant::now();
        let scan = extract(&bomb, false, &limits);
        assert_eq!(scan.incomplete, Some(Incomplete::SizeLimit));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    /// Many central entries pointing at one compressed kernel (the overlapping "better zip bomb") are stopped by
    /// the total across entries.
    #[test]
    fn overlapping_entries_bomb() {
        let kernel = zip(&[("k", &vec![b'a'; 1024 * 1024])]);
        // The kernel's local header and data, then 200 central entries all pointing at offset 0.
        let central_at = kernel.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        let end_at = kernel.windows(4).rposition(|w| w == b"PK\x05\x06").unwrap();
        let entry = &kernel[central_at..end_at];
        let mut bomb = kernel[..central_at].to_vec();
        let count = 200u16;
        for _ in 0..count {
            bomb.extend_from_slice(entry);
        }
        let size = (entry.len() * usize::from(count)) as u32;
        bomb.extend_from_slice(b"PK\x05\x06\0\0\0\0");
        bomb.extend_from_slice(&count.to_le_bytes());
        bomb.extend_from_slice(&count.to_le_bytes());
        bomb.extend_from_slice(&size.to_le_bytes());
        bomb.extend_from_slice(&(central_at as u32).to_le_bytes());
        bomb.extend_from_slice(&[0, 0]);
        let limits = Limits {
            max_uncompressed_bytes: 16 * 1024 * 1024,
            ..limits()
        };
        let scan = extract(&bomb, false, &limits);
        assert_eq!(scan.incomplete, Some(Incomplete::SizeLimit));
    }

    /// An encrypted entry is noted `encrypted` and the other entries are still read.
    #[test]
    fn encrypted_entry() {
        let mut bytes = zip(&[
            ("secret.txt", b"ciphertext"),
            ("clear.txt", MARK.as_bytes()),
        ]);
        // Set the encryption flag of the first entry, in its local header and in the central directory.
        bytes[6] |= 1;
        let central = bytes.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        bytes[central + 8] |= 1;
        let scan = scan(&bytes);
        assert_eq!(scan.incomplete, Some(Incomplete::Encrypted));
        assert!(has_mark_line(&scan));
    }

    /// An entry of a method roomguard does not inflate is noted `unsupported`; stored entries are read.
    #[test]
    fn unsupported_method_and_stored_entries() {
        let mut bytes = zip_with(
            &[("a.txt", MARK.as_bytes())],
            ::zip::CompressionMethod::Stored,
        );
        assert!(has_mark_line(&scan(&bytes)));
        // Method 12 (bzip2) in both headers.
        bytes[8] = 12;
        let central = bytes.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        bytes[central + 10] = 12;
        assert_eq!(scan(&bytes).incomplete, Some(Incomplete::Unsupported));
    }

    /// A deadline already past ends the scan with `time_limit`.
    #[test]
    fn deadline_in_the_past() {
        let limits = Limits {
            deadline: Instant::now(),
            ..limits()
        };
        let scan = extract(&fixture("other/docx_in_zip.zip"), false, &limits);
        assert_eq!(scan.incomplete, Some(Incomplete::TimeLimit));
    }

    /// `max_text_chars` stops the scan with `size_limit`, the text cut exactly there.
    #[test]
    fn text_limit_cuts_the_text() {
        let text = "abcdefghij\n".repeat(100);
        let bytes = zip(&[("a.txt", text.as_bytes())]);
        let limits = Limits {
            max_text_chars: 50,
            ..limits()
        };
        let scan = extract(&bytes, false, &limits);
        assert_eq!(scan.incomplete, Some(Incomplete::SizeLimit));
        assert_eq!(scan.text_chars, 50);
        let kept: usize = scan
            .passages
            .iter()
            .map(|p| p.as_str().replace('\n', "").chars().count())
            .sum();
        assert_eq!(kept, 50);
    }

    /// Names sort as people read numbers.
    #[test]
    fn natural_order_of_names() {
        let mut names = vec!["slide10.xml", "slide2.xml", "slide1.xml", "Slide3.xml"];
        names.sort_by(|a, b| super::natural_order(a, b));
        assert_eq!(
            names,
            vec!["slide1.xml", "slide2.xml", "Slide3.xml", "slide10.xml"]
        );
    }
}
