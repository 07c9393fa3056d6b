//! OLE compound files (Microsoft's Compound File Binary format): what a file of the `unknown` format may still say
//! about itself. A password-protected docx, xlsx or pptx is a compound file holding an `EncryptedPackage` stream (the
//! real document, encrypted), and the legacy binary formats (.doc, .xls, .ppt, .msg) are compound files too. Neither
//! can be read here, but the answer must say why: `encrypted` for the first (an author can refuse what cannot be
//! read), `unsupported` for the second, instead of an `unknown` file that looks complete.

use crate::reader::{Incomplete, Reader, Step, Stop};

/// The compound file signature.
const MAGIC: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

/// Directory entry names, as the directory stores them (UTF-16LE), that tell what a compound file holds.
const ENCRYPTED_PACKAGE: &str = "EncryptedPackage";

/// Notes why a compound file's text was not read; leaves any other `unknown` file alone (nothing to read).
pub(crate) fn read(reader: &mut Reader<'_>, bytes: &[u8]) -> Step {
    if !bytes.starts_with(&MAGIC) {
        return Ok(());
    }
    // The directory's entry names are UTF-16LE, 64 bytes at most; looking for the name's bytes anywhere is enough (a
    // stream's content holding them by chance would only turn `unsupported` into `encrypted`).
    let name: Vec<u8> = ENCRYPTED_PACKAGE
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    if memchr::memmem::find(bytes, &name).is_some() {
        return Err(Stop(Incomplete::Encrypted));
    }
    reader.note(Incomplete::Unsupported);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crate::{Format, Incomplete, Limits, extract};

    fn limits() -> Limits {
        Limits {
            max_text_chars: 1000,
            max_uncompressed_bytes: 1 << 20,
            max_nesting: 2,
            deadline: Instant::now() + Duration::from_secs(5),
            ocr: crate::OcrLimits::default(),
        }
    }

    fn compound(names: &[&str]) -> Vec<u8> {
        let mut bytes = super::MAGIC.to_vec();
        bytes.resize(512, 0);
        for name in names {
            let mut entry: Vec<u8> = name.encode_utf16().flat_map(u16::to_le_bytes).collect();
            entry.resize(128, 0);
            bytes.extend(entry);
        }
        bytes
    }

    /// A password-protected Office document (a compound file holding `EncryptedPackage`) is `encrypted`.
    #[test]
    fn a_password_protected_office_document_is_encrypted() {
        let scan = extract(
            &compound(&["Root Entry", "EncryptionInfo", "EncryptedPackage"]),
            false,
            &limits(),
        );
        assert_eq!(scan.format, Format::Unknown);
        assert_eq!(scan.incomplete, Some(Incomplete::Encrypted));
    }

    /// A legacy binary Office document (.doc, .xls, .ppt) is `unsupported`, not silently complete.
    #[test]
    fn a_legacy_office_document_is_unsupported() {
        let scan = extract(
            &compound(&["Root Entry", "WordDocument", "1Table"]),
            false,
            &limits(),
        );
        assert_eq!(scan.incomplete, Some(Incomplete::Unsupported));
    }

    /// Any other unknown file (a video; pictures are read with OCR) has nothing to read and is complete.
    #[test]
    fn a_video_is_complete_with_nothing_read() {
        let mp4 = [b"\0\0\0\x18ftypmp42".as_slice(), &[0u8; 64]].concat();
        let scan = extract(&mp4, false, &limits());
        assert_eq!((scan.format, scan.incomplete), (Format::Unknown, None));
    }
}
