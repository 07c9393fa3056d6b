//! `[reads]`: the read guard's settings, with their defaults and their checks.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use serde::Deserialize;

use crate::ops::config_error::{ConfigError, positive, readable};

/// `[reads]`: the read guard that the reverse proxy in front of the homeserver asks before serving a read (see
/// [`crate::ops::reads`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReadsConfig {
    /// The HTTP listener of the nginx `auth_request` endpoint (`/authz`); none: off. Envoy's `ext_authz` and the
    /// `CheckRead` rpc are served on the gRPC listener whatever this says.
    pub http_listen: Option<SocketAddr>,
    /// The homeserver's base URL (`http://127.0.0.1:8008`): where access tokens are resolved
    /// (`/_matrix/client/v3/account/whoami`), room details read and accounts locked.
    pub homeserver_url: Option<String>,
    /// A file holding an access token of a homeserver admin, for the admin API: room details (rules on `r.room.*`),
    /// whether an account is a server admin, and locking an account (`lock_account_after`).
    pub admin_token_file: Option<PathBuf>,
    /// How long a token's account (or the homeserver's "unknown token") is remembered, in seconds.
    pub token_cache_s: u64,
    /// Tokens remembered at most (keyed by a keyed hash of the token, never the token).
    pub token_cache_entries: u64,
    /// How long a room's details are remembered, in seconds.
    pub room_cache_s: u64,
    /// Time one call to the homeserver may take, in milliseconds; then the read is answered by `failure_mode`.
    pub homeserver_timeout_ms: u64,
    /// What to answer when roomguard cannot decide a read (the homeserver does not answer, overload, timeout).
    pub failure_mode: ReadFailureMode,
    /// Lock an account through the homeserver's admin API once it has been refused this many reads for a rate in
    /// an hour (never an admin, never twice in the hour); 0: never.
    pub lock_account_after: u32,
}

impl Default for ReadsConfig {
    fn default() -> Self {
        ReadsConfig {
            http_listen: None,
            homeserver_url: None,
            admin_token_file: None,
            token_cache_s: 60,
            token_cache_entries: 100_000,
            room_cache_s: 30,
            homeserver_timeout_ms: 500,
            failure_mode: ReadFailureMode::Open,
            lock_account_after: 0,
        }
    }
}

impl ReadsConfig {
    /// `token_cache_s` as a duration.
    pub fn token_cache(&self) -> Duration {
        Duration::from_secs(self.token_cache_s)
    }

    /// `room_cache_s` as a duration.
    pub fn room_cache(&self) -> Duration {
        Duration::from_secs(self.room_cache_s)
    }

    /// `homeserver_timeout_ms` as a duration.
    pub fn homeserver_timeout(&self) -> Duration {
        Duration::from_millis(self.homeserver_timeout_ms)
    }

    /// The read guard's settings agree with each other and with the other listeners.
    pub fn validate(
        &self,
        listen: SocketAddr,
        metrics: Option<SocketAddr>,
    ) -> Result<(), ConfigError> {
        if let Some(addr) = self.http_listen {
            if addr == listen || Some(addr) == metrics {
                return Err(ConfigError::new(
                    "reads.http_listen",
                    format!("`{addr}` is already the gRPC or the metrics listen address"),
                ));
            }
            if self.homeserver_url.is_none() {
                return Err(ConfigError::new(
                    "reads.homeserver_url",
                    "required when `reads.http_listen` is set: access tokens are resolved by the homeserver",
                ));
            }
        }
        if let Some(url) = &self.homeserver_url {
            check_base_url(url).map_err(|p| ConfigError::new("reads.homeserver_url", p))?;
        }
        if let Some(path) = &self.admin_token_file {
            readable("reads.admin_token_file", path)?;
            if self.homeserver_url.is_none() {
                return Err(ConfigError::new(
                    "reads.homeserver_url",
                    "required when `reads.admin_token_file` is set",
                ));
            }
        }
        if self.lock_account_after > 0 && self.admin_token_file.is_none() {
            return Err(ConfigError::new(
                "reads.lock_account_after",
                "locking an account needs the homeserver's admin API: set `reads.admin_token_file` too",
            ));
        }
        positive(&[
            ("reads.token_cache_s", self.token_cache_s),
            ("reads.token_cache_entries", self.token_cache_entries),
            ("reads.room_cache_s", self.room_cache_s),
            ("reads.homeserver_timeout_ms", self.homeserver_timeout_ms),
        ])
    }
}

/// An `http://` or `https://` base URL with a host and no query: what the homeserver's APIs are appended to.
fn check_base_url(url: &str) -> Result<(), String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(format!("`{url}` must start with `http://` or `https://`"));
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("`{url}` has no host"));
    }
    if uri.query().is_some() {
        return Err(format!("`{url}` must not have a query"));
    }
    Ok(())
}

/// `reads.failure_mode`: what the read guard answers when it cannot decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ReadFailureMode {
    /// Allow the read: a proxy that refused every read while the homeserver or roomguard is slow would take the
    /// messenger down with it.
    #[default]
    Open,
    /// Refuse the read (`READ_GUARD_UNAVAILABLE`): no read the policy could not check.
    Closed,
}

impl ReadFailureMode {
    /// `open` or `closed`, as in the config file and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadFailureMode::Open => "open",
            ReadFailureMode::Closed => "closed",
        }
    }
}
