//! One module per format family, and the sniffing that picks one.

use super::{
    Format,
    reader::{Incomplete, Reader, Step, Stop},
};

/// The format of `bytes`, from their content.
pub(crate) fn sniff(_bytes: &[u8]) -> Format {
    Format::Unknown
}

/// Reads `bytes`, known to be `format`, into `reader`.
pub(crate) fn read(_reader: &mut Reader<'_>, format: Format, _bytes: &[u8]) -> Step {
    match format {
        Format::Unknown => Ok(()),
        _ => Err(Stop(Incomplete::Unsupported)),
    }
}
