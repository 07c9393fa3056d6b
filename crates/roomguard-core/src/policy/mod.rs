//! The policy: a directory of files that authors edit (`model.conf`, `rules.csv`, `reasons.toml`, `roles.toml`,
//! `users.csv`, `markings.toml`), loaded and checked into one immutable [`PolicySnapshot`], and the decisions taken
//! with it. [`engine`] is the only module that knows the rule engine and its expression language; the
//! rest speaks in rules, roles, markings and reasons.
//!
//! A snapshot is swapped whole by the [`store`] when `reload` has built a new one that loads: a request reads one
//! snapshot from start to end, and a broken edit never replaces a good policy.

pub mod decide;
pub(crate) mod diagnostics;
pub mod engine;
pub mod loader;
pub(crate) mod markings;
pub mod reasons;
pub(crate) mod role_set;
pub mod roles;
pub(crate) mod rules;
mod snapshot;
mod source;
pub mod store;
pub mod upload_watch;
mod user_table;

pub use diagnostics::{PolicyError, Problem};
pub use engine::check::MODEL_FILE;
pub use snapshot::{POLICY_FILES, PolicySnapshot};
