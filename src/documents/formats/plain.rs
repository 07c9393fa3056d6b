//! Plain text: UTF-8 (with or without a byte order mark), UTF-16 with a byte order mark, or a single-byte Western
//! code page (see `charset` for when bytes count as text). Each line stays a line: banners are read line by line.

use crate::documents::reader::{Reader, Step};

use super::charset;

/// Reads a text file, line by line.
pub(crate) fn read(reader: &mut Reader<'_>, bytes: &[u8]) -> Step {
    // Sniffing said text; a file that is not (it cannot happen through `sniff`) has nothing to read.
    let Some(charset) = charset::detect(bytes) else {
        return Ok(());
    };
    let text = charset::decode(bytes, charset);
    for line in text.lines() {
        reader.text(line)?;
        reader.end_paragraph();
    }
    Ok(())
}
