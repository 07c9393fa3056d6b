//! Placeholder until the ooxml reader lands.

use crate::documents::{
    Format,
    reader::{Incomplete, Reader, Step, Stop},
};

/// Reads a ooxml file.
pub(crate) fn read(_reader: &mut Reader<'_>, _format: Format, _bytes: &[u8]) -> Step {
    Err(Stop(Incomplete::Unsupported))
}
