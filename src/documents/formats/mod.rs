//! One module per format family, and the sniffing that picks one.

mod charset;
mod compound;
mod html;
mod odf;
mod ooxml;
mod pdf;
mod plain;
mod rtf;
mod sniff;
#[cfg(test)]
pub(crate) mod testing;
mod xml;
mod zip;

use super::{Format, reader::Reader, reader::Step};

pub(crate) use sniff::sniff;

/// Reads `bytes`, known to be `format`, into `reader`.
pub(crate) fn read(reader: &mut Reader<'_>, format: Format, bytes: &[u8]) -> Step {
    match format {
        Format::Pdf => pdf::read(reader, bytes),
        Format::Docx | Format::Xlsx | Format::Pptx => ooxml::read(reader, format, bytes),
        Format::Odt | Format::Ods | Format::Odp => odf::read(reader, format, bytes),
        Format::Rtf => rtf::read(reader, bytes),
        Format::Html => html::read(reader, bytes),
        Format::Text => plain::read(reader, bytes),
        Format::Zip => zip::read(reader, bytes),
        // Images, audio, video, binaries: nothing to read (the file name is classified by the caller), except that a
        // compound file says whether it is an encrypted Office document or a legacy one.
        Format::Unknown => compound::read(reader, bytes),
    }
}
