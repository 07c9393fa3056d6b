//! A setting that is not acceptable, named as the config file spells it; and the checks every section shares. Apart
//! from the config so that each section, beside the code that uses it, can say what is wrong with it without
//! importing the whole config.

use std::path::Path;

/// A setting that is not acceptable; the message names it as the config file spells it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid config: {setting}: {problem}")]
pub struct ConfigError {
    /// The setting, e.g. `tls.key` or `limits.max_concurrent_requests`.
    pub setting: String,
    /// What is wrong with it.
    pub problem: String,
}

impl ConfigError {
    /// `setting` (dotted, as in the config file) and what is wrong with it.
    pub fn new(setting: &str, problem: impl Into<String>) -> Self {
        ConfigError {
            setting: setting.into(),
            problem: problem.into(),
        }
    }
}

/// The file a setting names can be opened now (not at the first call that needs it).
pub fn readable(setting: &str, path: &Path) -> Result<(), ConfigError> {
    std::fs::File::open(path).map(drop).map_err(|err| {
        ConfigError::new(setting, format!("cannot read `{}`: {err}", path.display()))
    })
}

/// Every value is greater than 0, or the first that is not is named.
pub fn positive(values: &[(&str, u64)]) -> Result<(), ConfigError> {
    match values.iter().find(|(_, value)| *value == 0) {
        Some((setting, _)) => Err(ConfigError::new(setting, "must be greater than 0")),
        None => Ok(()),
    }
}
