//! Protection markings: the classifier that finds them in a message (`markings.toml` says which), and the text
//! normalisation it reads through (what a reader sees, not how it was encoded).

mod banners;
pub mod classifier;
mod document;
mod file_names;
mod gate;
mod markings_file;
pub(crate) mod normalize;
mod phrases;
mod scratch;
mod work;

pub use classifier::{Classifier, NO_MARKING};
pub use document::DocumentMarkings;
pub use markings_file::MARKINGS_FILE;
