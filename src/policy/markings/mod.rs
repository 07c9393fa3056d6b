//! Protection markings: the classifier that finds them in a message (`markings.toml` says which), and the text
//! normalisation it reads through (what a reader sees, not how it was encoded).

pub mod classifier;
mod gate;
pub(crate) mod names;
pub(crate) mod normalize;

pub use classifier::{Classifier, MARKINGS_FILE, NO_MARKING};
