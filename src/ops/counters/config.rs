//! `[counters]`: where the per-account counts live, with the defaults and the checks.

use std::path::PathBuf;

use serde::Deserialize;

use crate::ops::config_error::{ConfigError, positive, readable};

/// `[counters]`: the per-account public-join counter behind `r.sub.public_joins_1h` (see [`crate::ops::counters`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CountersConfig {
    /// Where the count lives: this process's memory, or a Redis shared by every replica.
    pub backend: CounterBackend,
    /// The Redis server of the `redis` backend: `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS.
    pub redis_url: Option<String>,
    /// A file holding the Redis password (instead of one in the URL; a trailing newline is ignored).
    pub redis_password_file: Option<PathBuf>,
    /// Time one Redis round trip may take before the decision goes on with the fallback, in milliseconds.
    pub redis_timeout_ms: u64,
    /// What counts while Redis is unreachable.
    pub fallback: CounterFallback,
    /// Users tracked in memory at most; past that the stalest are forgotten (about 130 bytes each).
    pub max_tracked_users: usize,
}

impl Default for CountersConfig {
    fn default() -> Self {
        CountersConfig {
            backend: CounterBackend::Memory,
            redis_url: None,
            redis_password_file: None,
            redis_timeout_ms: 50,
            fallback: CounterFallback::Local,
            max_tracked_users: crate::ops::counters::DEFAULT_MAX_TRACKED_USERS,
        }
    }
}

impl CountersConfig {
    /// The Redis settings agree with the backend, the URL is one a Redis client can use, the password file can be
    /// read, and no limit is zero.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(path) = &self.redis_password_file {
            readable("counters.redis_password_file", path)?;
        }
        positive(&[
            ("counters.max_tracked_users", self.max_tracked_users as u64),
            ("counters.redis_timeout_ms", self.redis_timeout_ms),
        ])?;
        match (self.backend, &self.redis_url) {
            (CounterBackend::Redis, None) => Err(ConfigError::new(
                "counters.redis_url",
                "required when `counters.backend` is `redis`",
            )),
            (CounterBackend::Memory, Some(_)) => Err(ConfigError::new(
                "counters.redis_url",
                "set, but `counters.backend` is `memory`: set the backend to `redis` to share the count, or remove \
                 the URL",
            )),
            (CounterBackend::Memory, None) => match self.redis_password_file {
                Some(_) => Err(ConfigError::new(
                    "counters.redis_password_file",
                    "set, but `counters.backend` is `memory`",
                )),
                None => Ok(()),
            },
            (CounterBackend::Redis, Some(url)) => {
                super::redis::check_url(url)
                    .map_err(|problem| ConfigError::new("counters.redis_url", problem))?;
                if self.redis_password_file.is_some() && super::redis::url_has_password(url) {
                    return Err(ConfigError::new(
                        "counters.redis_password_file",
                        "the URL carries a password already: give it in one place",
                    ));
                }
                Ok(())
            }
        }
    }
}

/// `counters.backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum CounterBackend {
    /// Each process counts on its own (one replica, or a limit per replica).
    #[default]
    Memory,
    /// Every replica counts in one Redis.
    Redis,
}

/// `counters.fallback`: what the `redis` backend counts while Redis is unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum CounterFallback {
    /// This process's own count of the joins it allowed (a limit per replica during the outage).
    #[default]
    Local,
    /// Zero: no join-rate limit while Redis is down.
    Zero,
}

impl CounterFallback {
    /// `local` or `zero`, as in the config file and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            CounterFallback::Local => "local",
            CounterFallback::Zero => "zero",
        }
    }
}
