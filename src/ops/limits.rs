//! `[limits]`: overload protection and the transport's limits (calls at once, deadlines, request size, keepalive,
//! handshakes, connections, shutdown), with the defaults and the checks.

use std::time::Duration;

use serde::Deserialize;

use crate::ops::config_error::{ConfigError, positive};

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
    /// No limit that would refuse every call is zero (a zero grace closes at once, a zero keepalive is off), and a
    /// request stays within what a Matrix event can be.
    pub fn validate(&self) -> Result<(), ConfigError> {
        positive(&[
            (
                "limits.max_concurrent_requests",
                self.max_concurrent_requests as u64,
            ),
            ("limits.request_timeout_ms", self.request_timeout_ms),
            ("limits.max_request_bytes", self.max_request_bytes as u64),
            (
                "limits.http2_keepalive_timeout_s",
                self.http2_keepalive_timeout_s,
            ),
            ("limits.handshake_timeout_ms", self.handshake_timeout_ms),
            ("limits.max_connections", self.max_connections as u64),
        ])?;
        if self.max_request_bytes > 64 * 1024 * 1024 {
            return Err(ConfigError::new(
                "limits.max_request_bytes",
                "at most 67108864 (64 MiB): a Matrix event is at most 64 KiB",
            ));
        }
        Ok(())
    }

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
