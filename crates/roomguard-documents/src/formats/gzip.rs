//! gzip files (one member or several, as `cat a.gz b.gz` makes): inflated by `flate2` within what is left of
//! `media.max_uncompressed_bytes`, counted as it comes, and the content read as the file it is, one level deeper (a
//! .tar.gz is gzip, then tar, then each member). The name the header keeps (`FNAME`) is classified as a file name.
//!
//! A bomb stops at the budget, having held no more than the budget; what inflated before the stop is still read, so
//! a marking at the start of a huge file is found.

use std::io::Read;

use flate2::read::MultiGzDecoder;

use crate::reader::{Incomplete, Reader, Step};

/// Bytes inflated between two counts against the budget (and two looks at the clock).
const INFLATE_CHUNK: usize = 64 * 1024;

/// Whether `bytes` start like a gzip member (magic and the Deflate method, the only one gzip defines).
pub(crate) fn looks_like(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1F, 0x8B, 0x08])
}

/// Reads a gzip upload: its content as a file of its own, one level deeper.
pub(crate) fn read(reader: &mut Reader<'_>, bytes: &[u8]) -> Step {
    let mut decoder = MultiGzDecoder::new(bytes);
    let mut contents: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; INFLATE_CHUNK];
    let mut stopped = None;
    loop {
        // Never hold more than the budget allows (plus one byte, to see that it was exceeded).
        let room = usize::try_from(reader.inflate_budget())
            .unwrap_or(usize::MAX)
            .saturating_add(1)
            .min(INFLATE_CHUNK);
        match decoder.read(&mut chunk[..room]) {
            Ok(0) => break,
            Ok(n) => {
                contents.extend_from_slice(&chunk[..n]);
                if let Err(stop) = reader.inflated(n as u64) {
                    stopped = Some(stop);
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // A member cut short or garbled: what inflated before is read.
            Err(_) => {
                reader.note(Incomplete::Corrupt);
                break;
            }
        }
    }
    if let Some(name) = decoder.header().and_then(|h| h.filename()) {
        reader.name(&file_name(name))?;
    }
    super::nested(reader, &contents)?;
    stopped.map_or(Ok(()), Err)
}

/// gzip stores names in Latin-1; many tools write UTF-8.
fn file_name(name: &[u8]) -> String {
    match std::str::from_utf8(name) {
        Ok(name) => name.to_owned(),
        Err(_) => encoding_rs::WINDOWS_1252
            .decode_without_bom_handling(name)
            .0
            .into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::{Duration, Instant};

    use flate2::{Compression, write::GzEncoder};

    use super::super::testing::{MARK, fixture, has_mark_line, limits, lines, scan};
    use crate::{Incomplete, Limits, Passage, extract};

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    /// A gzipped text file is read as the text it holds, under the name its header keeps.
    #[test]
    fn gzipped_text() {
        let scan = scan(&fixture("archives/note.txt.gz"));
        assert_eq!(scan.format.as_str(), "gzip");
        assert_eq!(scan.incomplete, None);
        assert!(has_mark_line(&scan), "{:?}", lines(&scan));
        assert!(scan.passages.contains(&Passage::Name("note.txt".into())));
    }

    /// A .tar.gz is gzip, then tar, then each member as a file of its own.
    #[test]
    fn tar_gz_holding_a_marked_docx() {
        let scan = scan(&fixture("archives/docx_in_pax.tar.gz"));
        assert_eq!(scan.format.as_str(), "gzip");
        assert_eq!(scan.incomplete, None);
        assert!(has_mark_line(&scan), "{:?}", lines(&scan));
        assert!(
            scan.passages
                .iter()
                .any(|p| matches!(p, Passage::Name(n) if n.ends_with("note_budget.docx")))
        );
    }

    /// Every member of a multi-member gzip file is read.
    #[test]
    fn every_member() {
        assert!(has_mark_line(&scan(&fixture(
            "archives/two_members.txt.gz"
        ))));
    }

    /// A gzip bomb stops at `max_uncompressed_bytes`, quickly, and what inflated before is still read.
    #[test]
    fn bomb_stops_at_the_budget() {
        let mut data = format!("{MARK}\n").into_bytes();
        data.resize(16 * 1024 * 1024, b' ');
        let bomb = gzip(&data);
        assert!(bomb.len() < 64 * 1024);
        let limits = Limits {
            max_uncompressed_bytes: 1024 * 1024,
            ..limits()
        };
        let started = Instant::now();
        let scan = extract(&bomb, false, &limits);
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(scan.incomplete, Some(Incomplete::SizeLimit));
        assert!(has_mark_line(&scan));
    }

    /// A gzip file cut short is read as far as it inflates, noted `corrupt`.
    #[test]
    fn truncated_gzip() {
        let mut text = format!("{MARK}\n").into_bytes();
        for i in 0..20_000 {
            text.extend_from_slice(format!("ligne {i}\n").as_bytes());
        }
        let whole = gzip(&text);
        let scan = scan(&whole[..whole.len() / 2]);
        assert_eq!(scan.format.as_str(), "gzip");
        assert_eq!(scan.incomplete, Some(Incomplete::Corrupt));
        assert!(has_mark_line(&scan));
    }
}
