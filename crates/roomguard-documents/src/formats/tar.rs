//! Tar archives (v7, ustar, GNU, pax), listed by the `tar` crate, which resolves GNU long names and pax paths: each
//! member's name is classified as a file name and each file member is read as an upload of its own, one level
//! deeper, as zip entries are.
//!
//! A member's bytes are the archive's own, taken in place: tar does not compress, so reading them costs no
//! decompression budget (a .tar.gz has already counted them while inflating). A GNU sparse member is the
//! exception: its holes expand to zeros, so what it expands to is counted against `media.max_uncompressed_bytes`.

use std::io::Read;

use crate::reader::{Incomplete, Reader, Step};

/// A tar header block.
const BLOCK: usize = 512;

/// Bytes of a sparse member expanded between two counts against the budget.
const EXPAND_CHUNK: usize = 64 * 1024;

/// Whether `bytes` start with a tar header: its checksum (the sum of the header's bytes, the checksum field read as
/// spaces) matches the octal number it stores. This holds for every tar dialect, v7's (which has no magic) too, and
/// for nothing else by chance.
pub(crate) fn looks_like(bytes: &[u8]) -> bool {
    let Some(header) = bytes.get(..BLOCK) else {
        return false;
    };
    let field = &header[148..156];
    let digits = field.trim_ascii_start();
    let end = digits
        .iter()
        .position(|&b| b == 0 || b == b' ')
        .unwrap_or(digits.len());
    let digits = &digits[..end];
    if digits.is_empty() || !digits.iter().all(|b| (b'0'..=b'7').contains(b)) {
        return false;
    }
    let stored = digits.iter().fold(0u32, |n, &d| {
        n.saturating_mul(8).saturating_add(u32::from(d - b'0'))
    });
    let sum: u32 = header
        .iter()
        .enumerate()
        .map(|(at, &b)| {
            if (148..156).contains(&at) {
                u32::from(b' ')
            } else {
                u32::from(b)
            }
        })
        .sum();
    // Some old writers summed signed bytes.
    let signed: i64 = header
        .iter()
        .enumerate()
        .map(|(at, &b)| {
            if (148..156).contains(&at) {
                i64::from(b' ')
            } else {
                i64::from(b as i8)
            }
        })
        .sum();
    header[0] != 0 && (stored == sum || i64::from(stored) == signed)
}

/// Reads a tar upload: every member's name, and every file member as a file of its own one level deeper.
pub(crate) fn read(reader: &mut Reader<'_>, bytes: &[u8]) -> Step {
    let mut archive = ::tar::Archive::new(bytes);
    let Ok(members) = archive.entries() else {
        reader.note(Incomplete::Corrupt);
        return Ok(());
    };
    for member in members {
        reader.tick()?;
        // A header that does not hold together (a cut, garbled bytes) ends the listing: what came before is kept.
        let Ok(mut member) = member else {
            reader.note(Incomplete::Corrupt);
            break;
        };
        reader.name(&String::from_utf8_lossy(&member.path_bytes()))?;
        let kind = member.header().entry_type();
        if kind.is_gnu_sparse() {
            let contents = expand(reader, &mut member)?;
            super::nested(reader, &contents)?;
        } else if kind.is_file() || kind.is_contiguous() {
            let start = usize::try_from(member.raw_file_position()).unwrap_or(usize::MAX);
            let len = usize::try_from(member.size()).unwrap_or(usize::MAX);
            let end = start.saturating_add(len);
            if end > bytes.len() {
                reader.note(Incomplete::Corrupt);
            }
            let contents = bytes
                .get(start.min(bytes.len())..end.min(bytes.len()))
                .unwrap_or_default();
            super::nested(reader, contents)?;
        }
    }
    Ok(())
}

/// A sparse member's content with its holes, counted against the decompression budget as it expands.
fn expand(reader: &mut Reader<'_>, member: &mut impl Read) -> Step<Vec<u8>> {
    let mut contents = Vec::new();
    let mut chunk = vec![0u8; EXPAND_CHUNK];
    loop {
        match member.read(&mut chunk) {
            Ok(0) => return Ok(contents),
            Ok(n) => {
                reader.inflated(n as u64)?;
                contents.extend_from_slice(&chunk[..n]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => {
                reader.note(Incomplete::Corrupt);
                return Ok(contents);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{fixture, has_mark_line, limits, lines, scan};
    use crate::{Incomplete, Limits, Passage, extract};

    /// A GNU sparse member of `real` bytes whose one 512-byte block of data comes first, the rest a hole.
    fn sparse(real: u64) -> Vec<u8> {
        let octal = |n: u64| -> [u8; 12] {
            let mut field = [0u8; 12];
            field[..11].copy_from_slice(format!("{n:011o}").as_bytes());
            field
        };
        let mut header = ::tar::Header::new_gnu();
        header.set_path("trou.bin").unwrap();
        header.set_size(512);
        header.set_entry_type(::tar::EntryType::GNUSparse);
        let gnu = header.as_gnu_mut().unwrap();
        gnu.sparse[0].offset = octal(0);
        gnu.sparse[0].numbytes = octal(512);
        gnu.sparse[1].offset = octal(real);
        gnu.sparse[1].numbytes = octal(0);
        gnu.realsize = octal(real);
        header.set_cksum();
        let mut bytes = header.as_bytes().to_vec();
        bytes.extend_from_slice(&[b'x'; 512]);
        bytes.extend_from_slice(&[0; 1024]);
        bytes
    }

    /// A pax tar (long, accented member names in pax headers) holding a marked docx: names and members are read.
    #[test]
    fn pax_tar_holding_a_marked_docx() {
        let scan = scan(&fixture("archives/docx_in_pax.tar"));
        assert_eq!(scan.format.as_str(), "tar");
        assert_eq!(scan.incomplete, None);
        assert!(has_mark_line(&scan), "{:?}", lines(&scan));
        assert!(scan.passages.contains(&Passage::Name(
            "dossiers/2024/commission des finances/séance du 12 mars/pièces transmises au préfet/note_budget.docx"
                .into()
        )));
        assert!(lines(&scan).contains(&"Pièces de la séance du 12 mars.".to_owned()));
    }

    /// A GNU tar whose long name is a `././@LongLink` entry.
    #[test]
    fn gnu_long_names() {
        let scan = scan(&fixture("archives/text_in_gnu.tar"));
        assert_eq!(scan.format.as_str(), "tar");
        assert!(has_mark_line(&scan));
        assert!(scan.passages.iter().any(
            |p| matches!(p, Passage::Name(name) if name.ends_with("au préfet/compte_rendu.txt"))
        ));
    }

    /// A sparse member's holes expand within `max_uncompressed_bytes`: a small archive cannot stand for gigabytes.
    #[test]
    fn sparse_members_are_counted() {
        let small = scan(&sparse(64 * 1024));
        assert_eq!(small.format.as_str(), "tar");
        assert_eq!(small.incomplete, None);
        assert!(small.passages.contains(&Passage::Name("trou.bin".into())));
        let limits = Limits {
            max_uncompressed_bytes: 1024 * 1024,
            ..limits()
        };
        let bomb = extract(&sparse(1 << 32), false, &limits);
        assert_eq!(bomb.incomplete, Some(Incomplete::SizeLimit));
    }

    /// A tar cut short keeps what came before the cut, noted `corrupt`.
    #[test]
    fn truncated_tar() {
        let whole = fixture("archives/text_in_gnu.tar");
        let cut = &whole[..1024 + 512 + 30];
        let scan = scan(cut);
        assert_eq!(scan.format.as_str(), "tar");
        assert_eq!(scan.incomplete, Some(Incomplete::Corrupt));
        assert!(lines(&scan).iter().any(|l| l.starts_with("Compte rendu")));
    }
}
