//! Placeholder until the pdf reader lands.

use crate::documents::reader::{Incomplete, Reader, Step, Stop};

/// Reads a pdf file.
pub(crate) fn read(_reader: &mut Reader<'_>, _bytes: &[u8]) -> Step {
    Err(Stop(Incomplete::Unsupported))
}
