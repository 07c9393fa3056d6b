//! Where each setting's value comes from, in one table: its dotted key in the config file, its flag and its
//! `ROOMGUARD_*` variable. The loader builds one TOML tree from the layers (the file, then every variable and flag
//! given, then `--set section.key=value`) and deserializes it once into [`Config`](super::Config), so a
//! setting is declared once (its field, with its default, in the section's struct) plus one line here for its flag
//! and variable. Errors name the dotted setting (from the deserializer's path) and where the value came from.
//!
//! `roomguard.example.toml` shows every setting with the flag and variable of this table just above it; a test
//! reads the file back and checks both ways.

use std::{collections::BTreeMap, path::PathBuf};

use clap::{Arg, ArgAction, ArgMatches, Command, parser::ValueSource};

use crate::ops::config_error::ConfigError;

/// How a flag's or variable's text becomes a TOML value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string: an address, a path, a URL, one of a setting's words.
    Text,
    /// A whole number.
    Integer,
}

/// One setting that has a flag and a variable.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// Dotted key in the config file, e.g. `limits.max_connections`.
    pub key: &'static str,
    /// Long flag without its dashes, e.g. `max-connections`.
    pub flag: &'static str,
    /// Environment variable, e.g. `ROOMGUARD_MAX_CONNECTIONS`.
    pub env: &'static str,
    /// How its text is read.
    pub kind: Kind,
    /// The flag's help, with the default.
    pub help: &'static str,
    /// Its value may hold a secret (a Redis URL with a password): never shown in help or in an error.
    pub secret: bool,
}

const fn text(
    key: &'static str,
    flag: &'static str,
    env: &'static str,
    help: &'static str,
) -> Setting {
    Setting {
        key,
        flag,
        env,
        kind: Kind::Text,
        help,
        secret: false,
    }
}

const fn integer(
    key: &'static str,
    flag: &'static str,
    env: &'static str,
    help: &'static str,
) -> Setting {
    Setting {
        key,
        flag,
        env,
        kind: Kind::Integer,
        help,
        secret: false,
    }
}

/// Every setting with a flag and a variable. `ROOMGUARD_AUTH_TOKEN` is read apart (never a flag: flags show in `ps`),
/// and `--config` names the file.
pub const SETTINGS: &[Setting] = &[
    text(
        "listen",
        "listen",
        "ROOMGUARD_LISTEN",
        "gRPC TCP listen address [default: 127.0.0.1:50051]",
    ),
    text(
        "unix_socket",
        "unix-socket",
        "ROOMGUARD_UNIX_SOCKET",
        "Also serve on this Unix domain socket",
    ),
    text(
        "policies",
        "policies",
        "ROOMGUARD_POLICIES",
        "Policy directory [default: ./policies]",
    ),
    text(
        "mode",
        "mode",
        "ROOMGUARD_MODE",
        "`enforce` or `shadow` [default: enforce]",
    ),
    text(
        "metrics.listen",
        "metrics-listen",
        "ROOMGUARD_METRICS_LISTEN",
        "Prometheus metrics listen address [default: off]",
    ),
    text(
        "decision_log.output",
        "decision-log",
        "ROOMGUARD_DECISION_LOG",
        "Decision log: `stdout`, `off` or a file path [default: stdout]",
    ),
    integer(
        "decision_log.buffer",
        "decision-log-buffer",
        "ROOMGUARD_DECISION_LOG_BUFFER",
        "Decision-log lines buffered in memory [default: 4096]",
    ),
    text(
        "tls.cert",
        "tls-cert",
        "ROOMGUARD_TLS_CERT",
        "TLS certificate chain (PEM)",
    ),
    text(
        "tls.key",
        "tls-key",
        "ROOMGUARD_TLS_KEY",
        "TLS private key (PEM)",
    ),
    text(
        "tls.client_ca",
        "tls-client-ca",
        "ROOMGUARD_TLS_CLIENT_CA",
        "CA certificates (PEM) for client certificates: requires mTLS",
    ),
    text(
        "auth.token_file",
        "auth-token-file",
        "ROOMGUARD_AUTH_TOKEN_FILE",
        "File holding the bearer token callers must present",
    ),
    integer(
        "limits.max_concurrent_requests",
        "max-concurrent-requests",
        "ROOMGUARD_MAX_CONCURRENT_REQUESTS",
        "Calls decided at once before shedding [default: 256]",
    ),
    integer(
        "limits.request_timeout_ms",
        "request-timeout-ms",
        "ROOMGUARD_REQUEST_TIMEOUT_MS",
        "Per-call timeout in milliseconds [default: 1000]",
    ),
    integer(
        "limits.max_request_bytes",
        "max-request-bytes",
        "ROOMGUARD_MAX_REQUEST_BYTES",
        "Largest decoded request in bytes [default: 262144]",
    ),
    integer(
        "limits.tcp_keepalive_s",
        "tcp-keepalive-s",
        "ROOMGUARD_TCP_KEEPALIVE_S",
        "Idle seconds before TCP keepalive probes a connection; 0 turns it off [default: 30]",
    ),
    integer(
        "limits.http2_keepalive_interval_s",
        "http2-keepalive-interval-s",
        "ROOMGUARD_HTTP2_KEEPALIVE_INTERVAL_S",
        "HTTP/2 keepalive ping interval in seconds; 0 sends none [default: 0]",
    ),
    integer(
        "limits.http2_keepalive_timeout_s",
        "http2-keepalive-timeout-s",
        "ROOMGUARD_HTTP2_KEEPALIVE_TIMEOUT_S",
        "HTTP/2 keepalive ping timeout in seconds [default: 10]",
    ),
    integer(
        "limits.handshake_timeout_ms",
        "handshake-timeout-ms",
        "ROOMGUARD_HANDSHAKE_TIMEOUT_MS",
        "Time a new connection has to finish TLS and send the HTTP/2 preface, in milliseconds [default: 10000]",
    ),
    integer(
        "limits.max_connections",
        "max-connections",
        "ROOMGUARD_MAX_CONNECTIONS",
        "Connections open at once; more are closed on accept [default: 10000]",
    ),
    integer(
        "limits.shutdown_grace_ms",
        "shutdown-grace-ms",
        "ROOMGUARD_SHUTDOWN_GRACE_MS",
        "Time calls and connections get to finish after SIGTERM, in milliseconds [default: 5000]",
    ),
    text(
        "counters.backend",
        "counters-backend",
        "ROOMGUARD_COUNTERS_BACKEND",
        "Where the per-account counts live: `memory` or `redis` [default: memory]",
    ),
    Setting {
        key: "counters.redis_url",
        flag: "counters-redis-url",
        env: "ROOMGUARD_COUNTERS_REDIS_URL",
        kind: Kind::Text,
        help: "Redis of the `redis` backend: `redis://host:port/db` or `rediss://...`",
        secret: true,
    },
    text(
        "counters.redis_password_file",
        "counters-redis-password-file",
        "ROOMGUARD_COUNTERS_REDIS_PASSWORD_FILE",
        "File holding the Redis password",
    ),
    integer(
        "counters.redis_timeout_ms",
        "counters-redis-timeout-ms",
        "ROOMGUARD_COUNTERS_REDIS_TIMEOUT_MS",
        "Time one Redis round trip may take, in milliseconds [default: 50]",
    ),
    text(
        "counters.fallback",
        "counters-fallback",
        "ROOMGUARD_COUNTERS_FALLBACK",
        "What counts while Redis is unreachable: `local` or `zero` [default: local]",
    ),
    integer(
        "counters.max_tracked_users",
        "counters-max-tracked-users",
        "ROOMGUARD_COUNTERS_MAX_TRACKED_USERS",
        "Users the in-memory counters track at most [default: 1000000]",
    ),
    integer(
        "media.max_bytes",
        "media-max-bytes",
        "ROOMGUARD_MEDIA_MAX_BYTES",
        "Bytes of an uploaded file read at most [default: 52428800]",
    ),
    integer(
        "media.max_text_chars",
        "media-max-text-chars",
        "ROOMGUARD_MEDIA_MAX_TEXT_CHARS",
        "Characters of text extracted from one file [default: 10000000]",
    ),
    integer(
        "media.max_uncompressed_bytes",
        "media-max-uncompressed-bytes",
        "ROOMGUARD_MEDIA_MAX_UNCOMPRESSED_BYTES",
        "Bytes produced by decompression in one file [default: 268435456]",
    ),
    integer(
        "media.max_nesting",
        "media-max-nesting",
        "ROOMGUARD_MEDIA_MAX_NESTING",
        "Files inside files read at most this deep [default: 4]",
    ),
    integer(
        "media.timeout_ms",
        "media-timeout-ms",
        "ROOMGUARD_MEDIA_TIMEOUT_MS",
        "Time budget of one upload in milliseconds [default: 4000]",
    ),
    integer(
        "media.max_concurrent_scans",
        "media-max-concurrent-scans",
        "ROOMGUARD_MEDIA_MAX_CONCURRENT_SCANS",
        "Files scanned at once [default: 4]",
    ),
    integer(
        "media.max_scan_memory_bytes",
        "media-max-scan-memory-bytes",
        "ROOMGUARD_MEDIA_MAX_SCAN_MEMORY_BYTES",
        "Memory one scan may hold, in bytes [default: 67108864]",
    ),
    text(
        "media.ocr",
        "media-ocr",
        "ROOMGUARD_MEDIA_OCR",
        "Reading pictures with OCR: `on` (when Tesseract is installed), `required` (refuse to start without it) or \
         `off` [default: on]",
    ),
    integer(
        "media.ocr_max_pages",
        "media-ocr-max-pages",
        "ROOMGUARD_MEDIA_OCR_MAX_PAGES",
        "Pages read with OCR per file [default: 20]",
    ),
    integer(
        "media.ocr_timeout_ms",
        "media-ocr-timeout-ms",
        "ROOMGUARD_MEDIA_OCR_TIMEOUT_MS",
        "OCR time per file in milliseconds [default: 3000]",
    ),
    integer(
        "media.ocr_max_pixels",
        "media-ocr-max-pixels",
        "ROOMGUARD_MEDIA_OCR_MAX_PIXELS",
        "Pixels of one picture decoded for OCR at most [default: 40000000]",
    ),
    text(
        "reads.http_listen",
        "reads-http-listen",
        "ROOMGUARD_READS_HTTP_LISTEN",
        "HTTP listen address of the nginx auth_request endpoint (/authz) [default: off]",
    ),
    text(
        "reads.homeserver_url",
        "reads-homeserver-url",
        "ROOMGUARD_READS_HOMESERVER_URL",
        "The homeserver's base URL, e.g. http://127.0.0.1:8008 (resolves access tokens, reads room details)",
    ),
    text(
        "reads.admin_token_file",
        "reads-admin-token-file",
        "ROOMGUARD_READS_ADMIN_TOKEN_FILE",
        "File holding a homeserver admin's access token (room details, admin flags, account locks)",
    ),
    integer(
        "reads.token_cache_s",
        "reads-token-cache-s",
        "ROOMGUARD_READS_TOKEN_CACHE_S",
        "Seconds a token's account is remembered [default: 60]",
    ),
    integer(
        "reads.token_cache_entries",
        "reads-token-cache-entries",
        "ROOMGUARD_READS_TOKEN_CACHE_ENTRIES",
        "Tokens remembered at most [default: 100000]",
    ),
    integer(
        "reads.room_cache_s",
        "reads-room-cache-s",
        "ROOMGUARD_READS_ROOM_CACHE_S",
        "Seconds a room's details are remembered [default: 30]",
    ),
    integer(
        "reads.homeserver_timeout_ms",
        "reads-homeserver-timeout-ms",
        "ROOMGUARD_READS_HOMESERVER_TIMEOUT_MS",
        "Time one homeserver call may take, in milliseconds [default: 500]",
    ),
    text(
        "reads.failure_mode",
        "reads-failure-mode",
        "ROOMGUARD_READS_FAILURE_MODE",
        "When a read cannot be decided: `open` (allow) or `closed` (refuse) [default: open]",
    ),
    integer(
        "reads.lock_account_after",
        "reads-lock-account-after",
        "ROOMGUARD_READS_LOCK_ACCOUNT_AFTER",
        "Lock an account after this many reads refused for a rate in an hour; 0: never [default: 0]",
    ),
];

/// Where a value came from, said in an error about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The config file.
    File(PathBuf),
    /// A dedicated flag (`--max-connections`).
    Flag(&'static str),
    /// Its environment variable.
    Env(&'static str),
    /// `--set key=value`.
    Set,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::File(path) => write!(f, "in `{}`", path.display()),
            Origin::Flag(flag) => write!(f, "from --{flag}"),
            Origin::Env(variable) => write!(f, "from {variable}"),
            Origin::Set => f.write_str("from --set"),
        }
    }
}

/// One value given on the command line or in the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Given {
    /// Dotted key.
    pub key: String,
    /// The text as given.
    pub value: String,
    /// Where it came from.
    pub origin: Origin,
}

/// `roomguard serve`'s arguments: the config file, and each setting given by a flag, a variable or `--set`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServeArgs {
    /// `--config` / `ROOMGUARD_CONFIG`.
    pub config: Option<PathBuf>,
    /// Flags and variables in the table's order, then every `--set` in the order given (a later one wins).
    pub given: Vec<Given>,
}

impl ServeArgs {
    /// Arguments that set `key` to `value` as `--set key=value` would (for tests and embedding).
    pub fn with(mut self, key: &str, value: &str) -> ServeArgs {
        self.given.push(Given {
            key: key.to_owned(),
            value: value.to_owned(),
            origin: Origin::Set,
        });
        self
    }
}

/// `--set`'s argument: `section.key=value`.
fn key_value(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not KEY=VALUE (e.g. limits.max_connections=500)"))?;
    let key = key.trim();
    if key.is_empty() || !key.split('.').all(|part| !part.is_empty()) {
        return Err(format!(
            "`{key}` is not a dotted setting name (e.g. media.timeout_ms)"
        ));
    }
    Ok((key.to_owned(), value.to_owned()))
}

impl clap::Args for ServeArgs {
    fn augment_args(cmd: Command) -> Command {
        let cmd = cmd.arg(
            Arg::new("config")
                .long("config")
                .env("ROOMGUARD_CONFIG")
                .value_name("FILE")
                .value_parser(clap::value_parser!(PathBuf))
                .help("TOML config file (see roomguard.example.toml)"),
        );
        let cmd = SETTINGS.iter().fold(cmd, |cmd, setting| {
            cmd.arg(
                Arg::new(setting.flag)
                    .long(setting.flag)
                    .env(setting.env)
                    .value_name(match setting.kind {
                        Kind::Integer => "N",
                        Kind::Text => "VALUE",
                    })
                    .hide_env_values(setting.secret)
                    .help(setting.help),
            )
        });
        cmd.arg(
            Arg::new("set")
                .long("set")
                .value_name("KEY=VALUE")
                .action(ArgAction::Append)
                .value_parser(key_value)
                .help("Any setting by its name in the config file, e.g. --set media.timeout_ms=3000 (repeatable; wins over the other flags)"),
        )
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl clap::FromArgMatches for ServeArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut args = ServeArgs {
            config: matches.get_one::<PathBuf>("config").cloned(),
            given: Vec::new(),
        };
        for setting in SETTINGS {
            if let Some(value) = matches.get_one::<String>(setting.flag) {
                let origin = match matches.value_source(setting.flag) {
                    // An empty variable is an unset one (a template that leaves it blank), as for ROOMGUARD_AUTH_TOKEN.
                    Some(ValueSource::EnvVariable) if value.is_empty() => continue,
                    Some(ValueSource::EnvVariable) => Origin::Env(setting.env),
                    _ => Origin::Flag(setting.flag),
                };
                args.given.push(Given {
                    key: setting.key.to_owned(),
                    value: value.clone(),
                    origin,
                });
            }
        }
        for (key, value) in matches
            .get_many::<(String, String)>("set")
            .into_iter()
            .flatten()
        {
            args.given.push(Given {
                key: key.clone(),
                value: value.clone(),
                origin: Origin::Set,
            });
        }
        Ok(args)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

/// The layers merged into one TOML tree, and where each value in it came from.
#[derive(Debug, Default)]
pub struct Layers {
    tree: toml::Table,
    origins: BTreeMap<String, Origin>,
}

impl Layers {
    /// The config file's text, as the bottom layer (above the defaults).
    pub fn file(text: &str, path: Option<PathBuf>) -> Result<Layers, ConfigError> {
        let tree: toml::Table = text.parse().map_err(|err: toml::de::Error| {
            let line = err
                .span()
                .map(|span| text[..span.start.min(text.len())].lines().count().max(1));
            let place = match (&path, line) {
                (Some(path), Some(line)) => format!(" (in `{}`, line {line})", path.display()),
                (Some(path), None) => format!(" (in `{}`)", path.display()),
                (None, Some(line)) => format!(" (line {line})"),
                (None, None) => String::new(),
            };
            ConfigError::new("config file", format!("{}{place}", err.message()))
        })?;
        let mut layers = Layers {
            tree,
            origins: BTreeMap::new(),
        };
        if let Some(path) = path {
            layers.origins.insert(String::new(), Origin::File(path));
        }
        Ok(layers)
    }

    /// Sets one value over what the layers below said.
    pub fn set(&mut self, given: &Given) -> Result<(), ConfigError> {
        let setting = SETTINGS.iter().find(|s| s.key == given.key);
        let value = match setting.map(|s| s.kind) {
            Some(Kind::Text) => toml::Value::String(given.value.clone()),
            Some(Kind::Integer) => given
                .value
                .trim()
                .parse::<i64>()
                .map(toml::Value::Integer)
                .map_err(|_| {
                    let shown = if setting.is_some_and(|s| s.secret) {
                        "the value".to_owned()
                    } else {
                        format!("`{}`", given.value)
                    };
                    ConfigError::new(
                        &given.key,
                        format!("{shown} is not a whole number ({})", given.origin),
                    )
                })?,
            // A key without a flag of its own: read as TOML (a number, a boolean, a quoted string), else as text.
            None => format!("v = {}", given.value)
                .parse::<toml::Table>()
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or_else(|| toml::Value::String(given.value.clone())),
        };
        let mut parts = given.key.split('.').peekable();
        let mut table = &mut self.tree;
        let mut path = String::new();
        while let Some(part) = parts.next() {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(part);
            if parts.peek().is_none() {
                table.insert(part.to_owned(), value);
                break;
            }
            let entry = table
                .entry(part.to_owned())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            table = match entry {
                toml::Value::Table(inner) => inner,
                _ => {
                    return Err(ConfigError::new(
                        &path,
                        format!(
                            "is not a section, so `{}` cannot be set ({})",
                            given.key, given.origin
                        ),
                    ));
                }
            };
        }
        self.origins.insert(given.key.clone(), given.origin.clone());
        Ok(())
    }

    /// Where the value of `setting` (or the closest section holding it) came from.
    pub fn origin(&self, setting: &str) -> Option<&Origin> {
        let mut key = setting;
        loop {
            if let Some(origin) = self.origins.get(key) {
                return Some(origin);
            }
            if key.is_empty() {
                return None;
            }
            key = key.rsplit_once('.').map_or("", |(section, _)| section);
        }
    }

    /// Deserializes the merged tree once; an error names the dotted setting and where its value came from.
    pub fn deserialize<T: serde::de::DeserializeOwned>(self) -> Result<T, ConfigError> {
        let origins = Layers {
            tree: toml::Table::new(),
            origins: self.origins,
        };
        serde_path_to_error::deserialize(toml::Value::Table(self.tree)).map_err(|err| {
            let mut setting = err.path().to_string();
            // toml's own message, without the key it appends on a line of its own: the path names it.
            let problem = err.inner().message().trim().to_owned();
            // The path ends at the key serde does not know; a root-level one comes as `.`.
            if setting == "."
                && let Some(unknown) = problem
                    .strip_prefix("unknown field `")
                    .and_then(|rest| rest.split_once('`'))
                    .map(|(key, _)| key)
            {
                setting = unknown.to_owned();
            }
            let place = origins
                .origin(&setting)
                .map(|origin| format!(" ({origin})"))
                .unwrap_or_default();
            ConfigError::new(&setting, format!("{problem}{place}"))
        })
    }

    /// `err` with where the value of its setting came from, when known.
    pub fn locate(&self, err: ConfigError) -> ConfigError {
        match self.origin(&err.setting) {
            Some(origin) => ConfigError::new(&err.setting, format!("{} ({origin})", err.problem)),
            None => err,
        }
    }

    /// A copy of where each value came from (kept for [`Layers::locate`] after [`Layers::deserialize`]).
    pub fn origins(&self) -> Layers {
        Layers {
            tree: toml::Table::new(),
            origins: self.origins.clone(),
        }
    }
}
