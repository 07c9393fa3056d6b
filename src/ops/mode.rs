//! `mode`: whether roomguard enforces its decisions or only shows them (shadow mode).

use serde::Deserialize;

/// What roomguard answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Answer the policy's decision.
    #[default]
    Enforce,
    /// Answer ALLOW every time, carrying the decision the policy took (for rolling out a new policy safely).
    Shadow,
}

impl Mode {
    /// `enforce` or `shadow`, as in the config file, logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Shadow => "shadow",
        }
    }
}
