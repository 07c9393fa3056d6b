//! The serving configuration: one [`Config`] struct, read from an optional TOML file, then overridden by environment
//! variables and command-line flags, and validated before anything binds.
//!
//! Precedence, highest first: a command-line flag, its `ROOMGUARD_*` environment variable, the TOML file given by
//! `--config` (or `ROOMGUARD_CONFIG`), the built-in default. `roomguard.example.toml` at the repository root lists
//! every setting with its default, flag and variable. A config that does not parse or validate makes the process exit
//! with code 64 (sysexits' `EX_USAGE`) and a message that names the setting.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;

use super::settings::{Layers, ServeArgs};
use crate::documents::OcrLimits;

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

    fn validate(&self, listen: SocketAddr, metrics: Option<SocketAddr>) -> Result<(), ConfigError> {
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
        for (setting, value) in [
            ("reads.token_cache_s", self.token_cache_s),
            ("reads.token_cache_entries", self.token_cache_entries),
            ("reads.room_cache_s", self.room_cache_s),
            ("reads.homeserver_timeout_ms", self.homeserver_timeout_ms),
        ] {
            if value == 0 {
                return Err(ConfigError::new(setting, "must be greater than 0"));
            }
        }
        Ok(())
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

/// `[media]`: the limits of reading an uploaded file (`CheckMediaUpload`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// Bytes of a file read at most; the rest is not read (`size_limit`).
    pub max_bytes: u64,
    /// Characters of text extracted and classified per file.
    pub max_text_chars: u64,
    /// Bytes produced by decompression per file, across archive entries and compressed streams.
    pub max_uncompressed_bytes: u64,
    /// Files inside files read at most this deep; 0 reads none.
    pub max_nesting: u32,
    /// Time budget of one upload, from its first message to the answer.
    pub timeout_ms: u64,
    /// Files scanned at once.
    pub max_concurrent_scans: usize,
    /// Memory one scan may hold: half for the head of the file kept for formats that look back (a zip's central
    /// directory, a PDF's objects), half for the one decompressed part being read. Past the head, text formats are
    /// read forward and the others are decided on the head (`size_limit`). Worst case for all scans:
    /// `max_concurrent_scans` x this.
    pub max_scan_memory_bytes: u64,
    /// Reading pictures (image uploads, scanned PDF pages) with Tesseract.
    pub ocr: OcrMode,
    /// Pages read with OCR per file (pictures of one PDF page count as one).
    pub ocr_max_pages: u32,
    /// OCR time per file, in milliseconds; never past `timeout_ms`.
    pub ocr_timeout_ms: u64,
    /// Pixels of one picture decoded for OCR at most (decompression bombs).
    pub ocr_max_pixels: u64,
}

impl Default for MediaConfig {
    fn default() -> Self {
        let ocr = OcrLimits::default();
        MediaConfig {
            max_bytes: 50 << 20,
            max_text_chars: 10_000_000,
            max_uncompressed_bytes: 256 << 20,
            max_nesting: 4,
            timeout_ms: 4_000,
            max_concurrent_scans: 4,
            max_scan_memory_bytes: 64 << 20,
            ocr: OcrMode::On,
            ocr_max_pages: ocr.max_pages,
            ocr_timeout_ms: u64::try_from(ocr.timeout.as_millis()).unwrap_or(u64::MAX),
            ocr_max_pixels: ocr.max_pixels,
        }
    }
}

impl MediaConfig {
    /// `timeout_ms` as a duration.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// Bytes of the file kept in memory for formats that look back: half of `max_scan_memory_bytes`.
    pub fn head_bytes(&self) -> u64 {
        self.max_scan_memory_bytes / 2
    }

    /// Bytes one decompressed part (an archive entry, a PDF stream) may take: the other half.
    pub fn part_bytes(&self) -> u64 {
        self.max_scan_memory_bytes - self.head_bytes()
    }

    /// The OCR limits of each scan.
    pub fn ocr_limits(&self) -> OcrLimits {
        OcrLimits {
            enabled: self.ocr != OcrMode::Off,
            max_pages: self.ocr_max_pages,
            timeout: Duration::from_millis(self.ocr_timeout_ms),
            max_pixels: self.ocr_max_pixels,
        }
    }
}

/// `media.ocr`: whether pictures are read with Tesseract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OcrMode {
    /// Read pictures when Tesseract is installed; without it the server starts, says so, and notes pictures
    /// `unsupported`.
    #[default]
    On,
    /// As `on`, but the server refuses to start without Tesseract: no scanned page is ever let through unread.
    Required,
    /// Never read pictures (they are noted `unsupported`).
    Off,
}

impl OcrMode {
    /// `on`, `required` or `off`, as in the config file and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            OcrMode::On => "on",
            OcrMode::Required => "required",
            OcrMode::Off => "off",
        }
    }
}

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
    /// The Redis settings agree with the backend, and the URL is one a Redis client can use.
    fn validate(&self) -> Result<(), ConfigError> {
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
                crate::ops::counters::redis::check_url(url)
                    .map_err(|problem| ConfigError::new("counters.redis_url", problem))?;
                if self.redis_password_file.is_some()
                    && crate::ops::counters::redis::url_has_password(url)
                {
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

/// `[metrics]`: off unless `listen` is set.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address of the HTTP listener serving `GET /metrics`; none means no metrics listener.
    pub listen: Option<SocketAddr>,
}

/// `[decision_log]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DecisionLogConfig {
    /// `stdout`, `off`, or the path of a file to append to.
    pub output: String,
    /// Lines held in memory while the writer catches up; past that, lines are dropped and counted.
    pub buffer: usize,
}

impl Default for DecisionLogConfig {
    fn default() -> Self {
        DecisionLogConfig {
            output: "stdout".into(),
            buffer: 4096,
        }
    }
}

/// Where decision-log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogOutput {
    /// No decision log.
    Off,
    /// Standard output.
    Stdout,
    /// Appended to this file.
    File(PathBuf),
}

impl DecisionLogConfig {
    /// The parsed `output` setting.
    pub fn output(&self) -> LogOutput {
        match self.output.as_str() {
            "off" => LogOutput::Off,
            "stdout" | "-" => LogOutput::Stdout,
            path => LogOutput::File(PathBuf::from(path)),
        }
    }
}

/// `[tls]`: TLS on the TCP listener when `cert` and `key` are set; mutual TLS when `client_ca` is set too.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain of the server.
    pub cert: Option<PathBuf>,
    /// PEM private key of the server.
    pub key: Option<PathBuf>,
    /// PEM CA certificates that client certificates must chain to; set to require client certificates (mTLS).
    pub client_ca: Option<PathBuf>,
}

/// `[auth]`: callers must send `authorization: Bearer <token>` when a token is configured.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// A file holding the token (surrounding whitespace is ignored).
    pub token_file: Option<PathBuf>,
    /// The token itself. Only from the environment (`ROOMGUARD_AUTH_TOKEN`): never a flag (visible in `ps`), and
    /// better not the config file; refused when `token_file` is set too.
    #[serde(skip)]
    pub token: Option<String>,
}

/// The largest request accepted by default: a Matrix event is at most 64 KiB, so anything much larger is not a real
/// request (`limits.max_request_bytes` sets it).
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// `[limits]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Calls decided at once; a call beyond this is answered `RESOURCE_EXHAUSTED` at once.
    pub max_concurrent_requests: usize,
    /// A call that takes longer is answered `DEADLINE_EXCEEDED`.
    pub request_timeout_ms: u64,
    /// The largest decoded request message accepted (`RESOURCE_EXHAUSTED` above).
    pub max_request_bytes: usize,
    /// Idle seconds before the kernel starts probing a TCP connection (TCP keepalive); a peer that answers none of
    /// 3 probes, 10 s apart, is closed. 0: off.
    pub tcp_keepalive_s: u64,
    /// Interval of HTTP/2 keepalive pings on idle connections; 0 (the default): none. hyper reads the clock and
    /// takes a lock on every frame received while they are on (about 2 % of the server's CPU per call, measured):
    /// TCP keepalive finds dead peers without that.
    pub http2_keepalive_interval_s: u64,
    /// A connection whose ping is not answered within this is closed.
    pub http2_keepalive_timeout_s: u64,
    /// A connection that has not finished its TLS handshake (when TLS is on) and sent the HTTP/2 connection preface
    /// within this is closed: silent sockets must not pile up until the file descriptors run out.
    pub handshake_timeout_ms: u64,
    /// Connections open at once across every listener; one more is closed as soon as it is accepted (and logged).
    pub max_connections: usize,
    /// After SIGTERM, how long calls in flight and open connections get to finish before the remaining connections
    /// are closed and the process exits.
    pub shutdown_grace_ms: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_concurrent_requests: 256,
            request_timeout_ms: 1000,
            max_request_bytes: MAX_REQUEST_BYTES,
            tcp_keepalive_s: 30,
            http2_keepalive_interval_s: 0,
            http2_keepalive_timeout_s: 10,
            handshake_timeout_ms: 10_000,
            max_connections: 10_000,
            shutdown_grace_ms: 5_000,
        }
    }
}

impl LimitsConfig {
    /// `request_timeout_ms` as a duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// `tcp_keepalive_s` as a duration; `None` when off.
    pub fn tcp_keepalive(&self) -> Option<Duration> {
        (self.tcp_keepalive_s > 0).then(|| Duration::from_secs(self.tcp_keepalive_s))
    }

    /// `http2_keepalive_interval_s` as a duration; `None` when off.
    pub fn http2_keepalive_interval(&self) -> Option<Duration> {
        (self.http2_keepalive_interval_s > 0)
            .then(|| Duration::from_secs(self.http2_keepalive_interval_s))
    }

    /// `handshake_timeout_ms` as a duration.
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms)
    }

    /// `shutdown_grace_ms` as a duration.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }
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
    pub(crate) fn new(setting: &str, problem: impl Into<String>) -> Self {
        ConfigError {
            setting: setting.into(),
            problem: problem.into(),
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

    /// Checks what can be checked before binding: combinations, ranges, and that named files are readable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.metrics.listen == Some(self.listen) {
            return Err(ConfigError::new(
                "metrics.listen",
                format!("`{}` is also the gRPC listen address", self.listen),
            ));
        }
        if self.decision_log.output.is_empty() {
            return Err(ConfigError::new(
                "decision_log.output",
                "empty: use `stdout`, `off` or a file path",
            ));
        }
        if self.decision_log.buffer == 0 {
            return Err(ConfigError::new(
                "decision_log.buffer",
                "must be at least 1",
            ));
        }
        match (&self.tls.cert, &self.tls.key) {
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "tls.key",
                    "required when `tls.cert` is set",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "tls.cert",
                    "required when `tls.key` is set",
                ));
            }
            _ => {}
        }
        if self.tls.client_ca.is_some() && self.tls.cert.is_none() {
            return Err(ConfigError::new(
                "tls.client_ca",
                "client certificates need TLS: set `tls.cert` and `tls.key` too",
            ));
        }
        for (setting, path) in [
            ("tls.cert", &self.tls.cert),
            ("tls.key", &self.tls.key),
            ("tls.client_ca", &self.tls.client_ca),
            ("auth.token_file", &self.auth.token_file),
            (
                "counters.redis_password_file",
                &self.counters.redis_password_file,
            ),
        ] {
            if let Some(path) = path {
                readable(setting, path)?;
            }
        }
        if self.auth.token_file.is_some() && self.auth.token.is_some() {
            return Err(ConfigError::new(
                "auth.token_file",
                "set either `auth.token_file` or ROOMGUARD_AUTH_TOKEN, not both",
            ));
        }
        let l = &self.limits;
        for (setting, value) in [
            (
                "limits.max_concurrent_requests",
                l.max_concurrent_requests as u64,
            ),
            ("limits.request_timeout_ms", l.request_timeout_ms),
            ("limits.max_request_bytes", l.max_request_bytes as u64),
            (
                "limits.http2_keepalive_timeout_s",
                l.http2_keepalive_timeout_s,
            ),
            ("limits.handshake_timeout_ms", l.handshake_timeout_ms),
            ("limits.max_connections", l.max_connections as u64),
            (
                "counters.max_tracked_users",
                self.counters.max_tracked_users as u64,
            ),
            ("counters.redis_timeout_ms", self.counters.redis_timeout_ms),
            ("media.max_bytes", self.media.max_bytes),
            ("media.max_text_chars", self.media.max_text_chars),
            (
                "media.max_uncompressed_bytes",
                self.media.max_uncompressed_bytes,
            ),
            ("media.timeout_ms", self.media.timeout_ms),
            (
                "media.max_concurrent_scans",
                self.media.max_concurrent_scans as u64,
            ),
            ("media.ocr_max_pages", u64::from(self.media.ocr_max_pages)),
            ("media.ocr_timeout_ms", self.media.ocr_timeout_ms),
            ("media.ocr_max_pixels", self.media.ocr_max_pixels),
        ] {
            if value == 0 {
                return Err(ConfigError::new(setting, "must be greater than 0"));
            }
        }
        if self.media.max_scan_memory_bytes < 1 << 20 {
            return Err(ConfigError::new(
                "media.max_scan_memory_bytes",
                "at least 1048576 (1 MiB): the head of a file and one decompressed part share it",
            ));
        }
        self.counters.validate()?;
        self.reads.validate(self.listen, self.metrics.listen)?;
        if l.max_request_bytes > 64 * 1024 * 1024 {
            return Err(ConfigError::new(
                "limits.max_request_bytes",
                "at most 67108864 (64 MiB): a Matrix event is at most 64 KiB",
            ));
        }
        Ok(())
    }
}

fn readable(setting: &str, path: &Path) -> Result<(), ConfigError> {
    std::fs::File::open(path).map(drop).map_err(|err| {
        ConfigError::new(setting, format!("cannot read `{}`: {err}", path.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::settings::{Given, Origin, SETTINGS};

    /// `file` under the given values, as `Config::load` layers them (without validating).
    fn load_over(file: &str, given: &[(&str, &str)]) -> Config {
        let mut layers = Layers::file(file, None).unwrap();
        for (key, value) in given {
            layers
                .set(&Given {
                    key: (*key).to_owned(),
                    value: (*value).to_owned(),
                    origin: Origin::Set,
                })
                .unwrap();
        }
        layers.deserialize().unwrap()
    }

    /// The example file in the repository parses, and holds every default (so it documents them truthfully).
    #[test]
    fn the_example_file_parses_to_the_defaults() {
        let text = std::fs::read_to_string("roomguard.example.toml").unwrap();
        let config = Config::from_toml(&text).unwrap();
        assert_eq!(config, Config::default());
    }

    /// A wrong type is reported with the dotted setting name.
    #[test]
    fn a_wrong_type_names_the_setting() {
        let err = Config::from_toml("[limits]\nrequest_timeout_ms = \"soon\"\n").unwrap_err();
        assert_eq!(err.setting, "limits.request_timeout_ms", "{err}");
    }

    /// An unknown key is refused, naming it.
    #[test]
    fn an_unknown_key_is_refused() {
        let err = Config::from_toml("[tls]\ncertificate = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("certificate"), "{err}");
        assert_eq!(err.setting, "tls.certificate");
    }

    /// A bad mode names `mode`.
    #[test]
    fn a_bad_mode_names_the_setting() {
        let err = Config::from_toml("mode = \"dry-run\"\n").unwrap_err();
        assert_eq!(err.setting, "mode", "{err}");
    }

    /// A flag or variable overrides the file; an unset one leaves it.
    #[test]
    fn overrides_win_over_the_file() {
        let config = load_over(
            "mode = \"shadow\"\n[limits]\nrequest_timeout_ms = 50\n",
            &[("limits.request_timeout_ms", "75")],
        );
        assert_eq!(config.limits.request_timeout_ms, 75);
        assert_eq!(config.mode, Mode::Shadow);
    }

    /// The connection and shutdown limits come from `[limits]`, and their flags or variables override the file; a
    /// zero handshake timeout or connection cap is refused (it would refuse every client), a zero grace is allowed
    /// (close at once).
    #[test]
    fn connection_and_shutdown_limits_are_settings() {
        let config = Config::from_toml(
            "[limits]\nhandshake_timeout_ms = 2000\nmax_connections = 50\nshutdown_grace_ms = 100\n",
        )
        .unwrap();
        assert_eq!(
            (
                config.limits.handshake_timeout_ms,
                config.limits.max_connections,
                config.limits.shutdown_grace_ms
            ),
            (2000, 50, 100)
        );
        let mut config = load_over(
            "[limits]\nhandshake_timeout_ms = 2000\nmax_connections = 50\nshutdown_grace_ms = 100\n",
            &[
                ("limits.max_connections", "70"),
                ("limits.shutdown_grace_ms", "0"),
            ],
        );
        assert_eq!(config.limits.max_connections, 70);
        assert!(config.validate().is_ok(), "a zero grace closes at once");
        for (setting, limits) in [
            (
                "limits.handshake_timeout_ms",
                LimitsConfig {
                    handshake_timeout_ms: 0,
                    ..LimitsConfig::default()
                },
            ),
            (
                "limits.max_connections",
                LimitsConfig {
                    max_connections: 0,
                    ..LimitsConfig::default()
                },
            ),
        ] {
            config.limits = limits;
            assert_eq!(config.validate().unwrap_err().setting, setting);
        }
    }

    /// Half a TLS set-up is refused, naming the missing half.
    #[test]
    fn a_cert_without_a_key_names_tls_key() {
        let mut config = Config::default();
        config.tls.cert = Some("Cargo.toml".into());
        assert_eq!(config.validate().unwrap_err().setting, "tls.key");
    }

    /// Zero limits are refused, naming the setting.
    #[test]
    fn a_zero_limit_is_refused() {
        let mut config = Config::default();
        config.limits.max_concurrent_requests = 0;
        assert_eq!(
            config.validate().unwrap_err().setting,
            "limits.max_concurrent_requests"
        );
    }

    /// The media limits come from `[media]`, their flags or variables override the file, and a zero limit is refused
    /// naming the setting (a zero nesting is allowed: embedded files are then not opened).
    #[test]
    fn media_limits_are_settings() {
        let config =
            Config::from_toml("[media]\nmax_bytes = 1000\ntimeout_ms = 200\nmax_nesting = 0\n")
                .unwrap();
        assert_eq!(
            (
                config.media.max_bytes,
                config.media.timeout_ms,
                config.media.max_nesting
            ),
            (1000, 200, 0)
        );
        assert!(config.validate().is_ok());
        let mut config = load_over(
            "[media]\nmax_bytes = 1000\ntimeout_ms = 200\nmax_nesting = 0\n",
            &[
                ("media.max_concurrent_scans", "9"),
                ("media.max_text_chars", "77"),
            ],
        );
        assert_eq!(config.media.max_concurrent_scans, 9);
        assert_eq!(config.media.max_text_chars, 77);
        config.media.max_uncompressed_bytes = 0;
        assert_eq!(
            config.validate().unwrap_err().setting,
            "media.max_uncompressed_bytes"
        );
        let err = Config::from_toml("[media]\nmax_size = 1\n").unwrap_err();
        assert_eq!(err.setting, "media.max_size", "{err}");
    }

    /// OCR is on by default; `[media]` sets its mode and limits, flags or variables override them, and the scans
    /// get them as their OCR limits; a zero OCR limit is refused naming it (`ocr = "off"` is how OCR is turned off).
    #[test]
    fn ocr_settings() {
        let config = Config::default();
        assert_eq!(config.media.ocr, OcrMode::On);
        assert_eq!(config.media.ocr_limits(), OcrLimits::default());
        let config = Config::from_toml(
            "[media]\nocr = \"off\"\nocr_max_pages = 3\nocr_timeout_ms = 700\nocr_max_pixels = 1000000\n",
        )
        .unwrap();
        assert_eq!(
            config.media.ocr_limits(),
            OcrLimits {
                enabled: false,
                max_pages: 3,
                timeout: Duration::from_millis(700),
                max_pixels: 1_000_000,
            }
        );
        let config = load_over(
            "[media]\nocr = \"off\"\n",
            &[("media.ocr", "required"), ("media.ocr_max_pages", "5")],
        );
        assert_eq!(
            (config.media.ocr, config.media.ocr_max_pages),
            (OcrMode::Required, 5)
        );
        assert!(config.media.ocr_limits().enabled);
        for setting in ["ocr_max_pages", "ocr_timeout_ms", "ocr_max_pixels"] {
            let config = Config::from_toml(&format!("[media]\n{setting} = 0\n")).unwrap();
            assert_eq!(
                config.validate().unwrap_err().setting,
                format!("media.{setting}")
            );
        }
        let err = Config::from_toml("[media]\nocr = \"auto\"\n").unwrap_err();
        assert_eq!(err.setting, "media.ocr", "{err}");
    }

    /// A missing token file is refused at start-up, not at the first call.
    #[test]
    fn an_unreadable_token_file_is_refused() {
        let mut config = Config::default();
        config.auth.token_file = Some("/nonexistent/token".into());
        assert_eq!(config.validate().unwrap_err().setting, "auth.token_file");
    }

    /// The shared counter's settings come from `[counters]`, their flags or variables override the file, and the
    /// variables carry exactly the names operators set (`ROOMGUARD_COUNTERS_*`).
    #[test]
    fn counter_backend_settings() {
        let config = Config::from_toml(
            "[counters]\nbackend = \"redis\"\nredis_url = \"redis://127.0.0.1:6379/0\"\nredis_timeout_ms = 20\n\
             fallback = \"zero\"\n",
        )
        .unwrap();
        assert_eq!(config.counters.backend, CounterBackend::Redis);
        assert_eq!(config.counters.fallback, CounterFallback::Zero);
        assert_eq!(config.counters.redis_timeout_ms, 20);
        assert!(config.validate().is_ok());
        let config = load_over(
            "[counters]\nbackend = \"redis\"\nredis_url = \"redis://127.0.0.1:6379/0\"\nfallback = \"zero\"\n",
            &[
                ("counters.fallback", "local"),
                ("counters.redis_timeout_ms", "75"),
                ("counters.redis_url", "rediss://redis.internal:6380/1"),
            ],
        );
        assert_eq!(config.counters.fallback, CounterFallback::Local);
        assert_eq!(config.counters.redis_timeout_ms, 75);
        assert_eq!(
            config.counters.redis_url.as_deref(),
            Some("rediss://redis.internal:6380/1")
        );
        let variables: Vec<&str> = SETTINGS.iter().map(|s| s.env).collect();
        for variable in [
            "ROOMGUARD_COUNTERS_BACKEND",
            "ROOMGUARD_COUNTERS_REDIS_URL",
            "ROOMGUARD_COUNTERS_REDIS_PASSWORD_FILE",
            "ROOMGUARD_COUNTERS_REDIS_TIMEOUT_MS",
            "ROOMGUARD_COUNTERS_FALLBACK",
        ] {
            assert!(variables.contains(&variable), "{variable}");
        }
    }

    /// A Redis backend needs a Redis URL; a URL without the Redis backend, a URL that is not Redis's, a password in
    /// two places or a zero timeout are refused, each naming the setting.
    #[test]
    fn inconsistent_counter_settings_are_refused() {
        let redis = |url: Option<&str>| {
            let mut config = Config::default();
            config.counters.backend = CounterBackend::Redis;
            config.counters.redis_url = url.map(str::to_owned);
            config
        };
        assert_eq!(
            redis(None).validate().unwrap_err().setting,
            "counters.redis_url"
        );
        let err = redis(Some("http://127.0.0.1:6379")).validate().unwrap_err();
        assert_eq!(err.setting, "counters.redis_url");
        assert!(err.problem.contains("redis://"), "{err}");
        let mut config = Config::default();
        config.counters.redis_url = Some("redis://127.0.0.1:6379".into());
        let err = config.validate().unwrap_err();
        assert_eq!(err.setting, "counters.redis_url");
        assert!(err.problem.contains("memory"), "{err}");
        let mut config = redis(Some("redis://:s3cret@127.0.0.1:6379"));
        config.counters.redis_password_file = Some("Cargo.toml".into());
        assert_eq!(
            config.validate().unwrap_err().setting,
            "counters.redis_password_file"
        );
        let mut config = redis(Some("redis://127.0.0.1:6379"));
        config.counters.redis_password_file = Some("/nonexistent/password".into());
        assert_eq!(
            config.validate().unwrap_err().setting,
            "counters.redis_password_file"
        );
        let mut config = redis(Some("redis://127.0.0.1:6379"));
        config.counters.redis_timeout_ms = 0;
        assert_eq!(
            config.validate().unwrap_err().setting,
            "counters.redis_timeout_ms"
        );
        let err = Config::from_toml("[counters]\nbackend = \"etcd\"\n").unwrap_err();
        assert_eq!(err.setting, "counters.backend", "{err}");
    }

    /// The read guard's settings come from `[reads]`, their flags or variables override the file, and inconsistent
    /// ones are refused naming the setting.
    #[test]
    fn read_guard_settings() {
        let config = Config::from_toml(
            "[reads]\nhttp_listen = \"127.0.0.1:50052\"\nhomeserver_url = \"http://127.0.0.1:8008\"\n\
             failure_mode = \"closed\"\ntoken_cache_s = 30\n",
        )
        .unwrap();
        assert_eq!(config.reads.failure_mode, ReadFailureMode::Closed);
        assert_eq!(config.reads.token_cache_s, 30);
        assert!(config.validate().is_ok());
        let config = load_over(
            "[reads]\nhttp_listen = \"127.0.0.1:50052\"\nhomeserver_url = \"http://127.0.0.1:8008\"\n\
             failure_mode = \"closed\"\n",
            &[("reads.failure_mode", "open"), ("reads.room_cache_s", "5")],
        );
        assert_eq!(config.reads.failure_mode, ReadFailureMode::Open);
        assert_eq!(config.reads.room_cache_s, 5);
        let refused = |change: &dyn Fn(&mut ReadsConfig)| {
            let mut config = Config::default();
            config.reads.homeserver_url = Some("http://127.0.0.1:8008".into());
            change(&mut config.reads);
            config.validate().unwrap_err().setting
        };
        assert_eq!(
            refused(&|r| {
                r.homeserver_url = None;
                r.http_listen = Some("127.0.0.1:50052".parse().unwrap());
            }),
            "reads.homeserver_url"
        );
        assert_eq!(
            refused(&|r| r.http_listen = Some("127.0.0.1:50051".parse().unwrap())),
            "reads.http_listen"
        );
        assert_eq!(
            refused(&|r| r.homeserver_url = Some("ftp://x".into())),
            "reads.homeserver_url"
        );
        assert_eq!(
            refused(&|r| r.homeserver_url = Some("http://h:8008/?a=1".into())),
            "reads.homeserver_url"
        );
        assert_eq!(
            refused(&|r| r.lock_account_after = 3),
            "reads.lock_account_after"
        );
        assert_eq!(
            refused(&|r| r.admin_token_file = Some("/nonexistent/token".into())),
            "reads.admin_token_file"
        );
        assert_eq!(
            refused(&|r| r.token_cache_entries = 0),
            "reads.token_cache_entries"
        );
        let err = Config::from_toml("[reads]\nfailure_mode = \"maybe\"\n").unwrap_err();
        assert_eq!(err.setting, "reads.failure_mode", "{err}");
    }
}
