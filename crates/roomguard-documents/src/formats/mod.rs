//! One module per format family, and the sniffing that picks one.

mod charset;
mod compound;
mod delimited;
mod eml;
mod forward;
mod gzip;
mod html;
mod image;
mod json;
mod odf;
mod ooxml;
mod pdf;
mod plain;
mod rtf;
mod sniff;
mod svg;
mod tar;
#[cfg(test)]
pub(crate) mod testing;
mod xml;
mod zip;

use super::{
    Extraction, Format, Limits,
    reader::{Reader, Step},
};

pub(crate) use forward::{Forward, forward};
pub(crate) use sniff::sniff;

/// Scans a whole file known to be `format` (what [`super::extract`] does once it has sniffed it).
pub(crate) fn scan_as(
    bytes: &[u8],
    format: Format,
    truncated: bool,
    limits: &Limits,
) -> Extraction {
    let mut reader = Reader::new(limits);
    let stopped = match reader.check_clock() {
        Ok(()) => read(&mut reader, format, bytes).err(),
        Err(stop) => Some(stop),
    };
    reader.finish(format, stopped, truncated)
}

/// Reads a file found inside another (an archive entry, an embedded document), one level deeper: sniffed and read
/// like a top-level file. Past `media.max_nesting` it is not read and the scan is noted `nesting_limit`.
pub(crate) fn nested(reader: &mut Reader<'_>, bytes: &[u8]) -> Step<Format> {
    let format = sniff(bytes);
    if !reader.enter_nested() {
        return Ok(format);
    }
    let step = read(reader, format, bytes);
    reader.leave_nested();
    step.map(|()| format)
}

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
        Format::Eml => eml::read(reader, bytes),
        Format::Csv => delimited::read(reader, bytes),
        Format::Tar => tar::read(reader, bytes),
        Format::Gzip => gzip::read(reader, bytes),
        Format::Json => json::read(reader, bytes),
        Format::Svg => svg::read(reader, bytes),
        Format::Png | Format::Jpeg | Format::Tiff | Format::Webp | Format::Gif => {
            image::read(reader, format, bytes)
        }
        // Images, audio, video, binaries: nothing to read (the file name is classified by the caller), except that a
        // compound file says whether it is an encrypted Office document or a legacy one.
        Format::Unknown => compound::read(reader, bytes),
    }
}
