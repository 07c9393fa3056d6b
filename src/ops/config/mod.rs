//! The serving configuration: one [`Config`] struct whose sections live beside the code that uses them (each with
//! its defaults and its `validate()`), read in layers and validated before anything binds.
//!
//! Layers, highest first: `--set section.key=value`, a setting's own flag, its `ROOMGUARD_*` environment variable,
//! the TOML file given by `--config` (or `ROOMGUARD_CONFIG`), the built-in default ([`settings`] merges them into one
//! tree, deserialized once). `roomguard.example.toml` at the repository root lists every setting with its default,
//! flag and variable. A config that does not parse or validate makes the process exit with code 64 (sysexits'
//! `EX_USAGE`) and a message that names the setting and where its value came from.

pub mod settings;
#[cfg(test)]
mod tests;

use std::{net::SocketAddr, path::PathBuf};

use serde::Deserialize;

use self::settings::{Layers, ServeArgs};
use crate::ops::{
    config_error::ConfigError, counters::config::CountersConfig, decision_log::DecisionLogConfig,
    layers::auth::AuthConfig, limits::LimitsConfig, media_limits::MediaConfig, mode::Mode,
    reads::config::ReadsConfig, tls::TlsConfig,
};

/// Everything `roomguard serve` needs, validated.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// TCP address of the gRPC listener.
    pub listen: SocketAddr,
    /// A Unix domain socket to serve on as well (for a homeserver on the same host), if any.
    pub unix_socket: Option<PathBuf>,
    /// The policy directory.
    pub policies: PathBuf,
    /// Enforce or shadow.
    pub mode: Mode,
    /// The Prometheus metrics endpoint.
    pub metrics: MetricsConfig,
    /// The NDJSON decision log.
    pub decision_log: DecisionLogConfig,
    /// TLS on the TCP listener.
    pub tls: TlsConfig,
    /// Caller authentication.
    pub auth: AuthConfig,
    /// Overload protection and transport limits.
    pub limits: LimitsConfig,
    /// The per-account public-join counter.
    pub counters: CountersConfig,
    /// Reading uploaded files.
    pub media: MediaConfig,
    /// The read guard the reverse proxy asks.
    pub reads: ReadsConfig,
}

/// `[metrics]`: off unless `listen` is set.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address of the HTTP listener serving `GET /metrics`; none means no metrics listener.
    pub listen: Option<SocketAddr>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            unix_socket: None,
            policies: PathBuf::from("./policies"),
            mode: Mode::Enforce,
            metrics: MetricsConfig::default(),
            decision_log: DecisionLogConfig::default(),
            tls: TlsConfig::default(),
            auth: AuthConfig::default(),
            limits: LimitsConfig::default(),
            counters: CountersConfig::default(),
            media: MediaConfig::default(),
            reads: ReadsConfig::default(),
        }
    }
}

impl Config {
    /// Parses a TOML document; unknown keys are refused (a typo must not silently fall back to a default).
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        Layers::file(text, None)?.deserialize()
    }

    /// The defaults, then the file named by `args.config` (if any), then every flag and variable given, then each
    /// `--set`, deserialized once; then `ROOMGUARD_AUTH_TOKEN`, and the result validated. An error names the setting
    /// and where its value came from.
    pub fn load(args: &ServeArgs) -> Result<Config, ConfigError> {
        let mut layers = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|err| {
                    ConfigError::new(
                        "--config",
                        format!("cannot read `{}`: {err}", path.display()),
                    )
                })?;
                Layers::file(&text, Some(path.clone()))?
            }
            None => Layers::default(),
        };
        for given in &args.given {
            layers.set(given)?;
        }
        let origins = layers.origins();
        let mut config: Config = layers.deserialize()?;
        config.auth.token = std::env::var("ROOMGUARD_AUTH_TOKEN")
            .ok()
            .filter(|t| !t.is_empty());
        config.validate().map_err(|err| origins.locate(err))?;
        Ok(config)
    }

    /// Checks what can be checked before binding: each section (beside the code that uses it), then what ties
    /// sections together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.metrics.listen == Some(self.listen) {
            return Err(ConfigError::new(
                "metrics.listen",
                format!("`{}` is also the gRPC listen address", self.listen),
            ));
        }
        self.decision_log.validate()?;
        self.tls.validate()?;
        self.auth.validate()?;
        self.limits.validate()?;
        self.counters.validate()?;
        self.media.validate()?;
        self.reads.validate(self.listen, self.metrics.listen)?;
        Ok(())
    }
}
