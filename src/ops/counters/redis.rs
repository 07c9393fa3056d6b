//! The shared public-join counter (`counters.backend = "redis"`): every replica reads and adds the same count.
//!
//! - **One sorted set per user**, key `roomguard:public_joins:{<user id>}`, one member per allowed join (the decision
//!   id, unique), scored by the join's time in milliseconds. A sorted set rather than per-minute buckets: the window
//!   is exact (a join leaves it 60 minutes after it was allowed, not at a minute boundary), one key per user instead
//!   of sixty, and reading it is one `ZCOUNT` (O(log n)) rather than an `MGET` of sixty keys. Its size is bounded by
//!   the joins the policy allows in an hour (the shipped `join.rate` allows 20). The braces are a Redis Cluster hash
//!   tag: everything of one user lives on one shard.
//! - **Two round trips per counted join**: `ZCOUNT` before deciding, then, after an ALLOW of a join that counts, one
//!   pipeline `ZADD` + `ZREMRANGEBYSCORE` (drops what left the window) + `PEXPIRE` (the key expires by itself an
//!   hour after the user's last join). Joins of one user decided at the same instant on different replicas may all
//!   read the same count: the limit can be overshot by the number of joins in flight at once.
//! - **Clocks**: each replica scores with its own clock; replicas kept in sync by NTP disagree by milliseconds,
//!   which moves the edge of a 60-minute window by as much.
//! - **Never hangs a decision**: each round trip has `counters.redis_timeout_ms`. The first failure marks Redis
//!   down (logged once, `roomguard_counter_backend_up` 0); from then on decisions do not wait on Redis at all and
//!   count with the fallback, while a probe pings Redis every `PROBE_DOWN` and marks it up again when it answers.
//!   While up, the probe pings every `PROBE_UP`, so that an outage shows in the metric even without joins.
//! - **Reconnects by itself**: the client is redis-rs's `ConnectionManager`, created lazily (roomguard starts and
//!   serves with Redis down) and reconnecting after any I/O error.
//! - **Persistence is Redis's**: a Redis restarted without persistence (no AOF or RDB) starts from zero counts.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use redis::{
    Client, ConnectionAddr, IntoConnectionInfo, RedisError,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::{
    domain::subject::UserId,
    ops::{counters::config::CountersConfig, metrics::Metrics},
};

/// The window, in milliseconds.
const WINDOW_MS: i64 = 60 * 60 * 1000;

/// The key prefix of every user's sorted set.
const KEY_PREFIX: &str = "roomguard:public_joins:";

/// How often the probe pings Redis while it is down: how soon decisions use the shared count again once it is back.
const PROBE_DOWN: Duration = Duration::from_millis(500);

/// How long start-up waits for the first answer of Redis.
const FIRST_CONTACT: Duration = Duration::from_secs(2);

/// How often the probe pings Redis while it is up: how soon an outage shows without joins.
const PROBE_UP: Duration = Duration::from_secs(2);

/// Why Redis cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RedisSetupError {
    /// The URL is not one redis-rs accepts.
    #[error("{0}")]
    Url(String),
    /// The password file cannot be read.
    #[error("cannot read `{path}`: {error}")]
    PasswordFile {
        /// The file.
        path: String,
        /// What went wrong.
        error: std::io::Error,
    },
}

/// Checks that `url` is a Redis URL roomguard can connect to (`redis://`, `rediss://`, or a Unix socket).
pub fn check_url(url: &str) -> Result<(), String> {
    let scheme = url.split_once("://").map(|(scheme, _)| scheme);
    if !matches!(
        scheme,
        Some("redis" | "rediss" | "redis+unix" | "unix" | "valkey" | "valkeys")
    ) {
        return Err(
            "must start with `redis://` (or `rediss://` for TLS, `redis+unix://` for a Unix socket)".into(),
        );
    }
    url.into_connection_info()
        .map(drop)
        .map_err(|err| format!("not a usable Redis URL: {}", redact(&err.to_string(), url)))
}

/// Whether `url` carries a password (`redis://:secret@host` or `redis://user:secret@host`).
pub fn url_has_password(url: &str) -> bool {
    url.into_connection_info()
        .is_ok_and(|info| info.redis_settings().password().is_some())
}

/// The host (or socket) of `url` without credentials, for logs.
fn describe(addr: &ConnectionAddr) -> String {
    match addr {
        ConnectionAddr::Tcp(host, port) => format!("redis://{host}:{port}"),
        ConnectionAddr::TcpTls { host, port, .. } => format!("rediss://{host}:{port}"),
        ConnectionAddr::Unix(path) => format!("unix:{}", path.display()),
        _ => "redis".into(),
    }
}

/// `text` with `url` (which may hold a password) replaced, so that no error message quotes a secret.
fn redact(text: &str, url: &str) -> String {
    text.replace(url, "<counters.redis_url>")
}

/// The connection to Redis shared by the join and read counters, and whether Redis answers.
#[derive(Debug)]
pub struct RedisLink {
    connection: ConnectionManager,
    timeout: Duration,
    health: Arc<Health>,
    probe: JoinHandle<()>,
}

/// The public-join counter in Redis.
#[derive(Debug)]
pub struct RedisJoinCounter {
    link: Arc<RedisLink>,
}

/// Whether Redis answered last, shared by the decisions and the probe; logs and reports each change once.
#[derive(Debug)]
struct Health {
    up: AtomicBool,
    /// Where Redis is, without credentials, for logs.
    target: String,
    fallback: &'static str,
    metrics: Arc<Metrics>,
}

impl Health {
    fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// A round trip failed: the first failure of an outage is logged and reported, later ones only counted.
    fn failed(&self, operation: &'static str, problem: &str) {
        self.metrics.counters.backend_failed(operation);
        if self.up.swap(false, Ordering::Relaxed) {
            self.metrics.counters.backend_up(false);
            warn!(
                redis = %self.target,
                operation,
                problem,
                fallback = self.fallback,
                "the shared join counter is unreachable: counting with the fallback until it answers again"
            );
        }
    }

    /// A round trip succeeded: the end of an outage is logged and reported once.
    fn answered(&self) {
        if !self.up.swap(true, Ordering::Relaxed) {
            self.metrics.counters.backend_up(true);
            info!(redis = %self.target, "the shared join counter answers: counting in Redis");
        }
    }
}

impl RedisLink {
    /// A link to the Redis of `config`, connecting lazily: it must be created inside the tokio runtime (its
    /// connection and probe are tasks). Redis is taken as up until a round trip fails, so that the first joins after
    /// start are counted where every replica sees them.
    pub fn connect(
        config: &CountersConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>, RedisSetupError> {
        let url = config.redis_url.as_deref().unwrap_or_default();
        let mut info = url
            .into_connection_info()
            .map_err(|err| RedisSetupError::Url(redact(&err.to_string(), url)))?;
        if let Some(path) = &config.redis_password_file {
            let password =
                std::fs::read_to_string(path).map_err(|error| RedisSetupError::PasswordFile {
                    path: path.display().to_string(),
                    error,
                })?;
            let settings = info
                .redis_settings()
                .clone()
                .set_password(password.trim_end_matches(['\r', '\n']));
            info = info.set_redis_settings(settings);
        }
        let target = describe(info.addr());
        let timeout = Duration::from_millis(config.redis_timeout_ms);
        let client = Client::open(info).map_err(|err| RedisSetupError::Url(err.to_string()))?;
        // Reconnection is retried by the probe's pings (each one a new attempt once the last has failed), so the
        // manager itself tries once per attempt instead of backing off for seconds with decisions waiting on it.
        let manager_config = ConnectionManagerConfig::new()
            .set_number_of_retries(0)
            .set_connection_timeout(Some(FIRST_CONTACT))
            .set_response_timeout(None);
        let connection = ConnectionManager::new_lazy_with_config(client, manager_config)
            .map_err(|err| RedisSetupError::Url(err.to_string()))?;
        metrics.counters.backend_up(true);
        let health = Arc::new(Health {
            up: AtomicBool::new(true),
            target,
            fallback: config.fallback.as_str(),
            metrics,
        });
        let probe = tokio::spawn(probe(connection.clone(), timeout, health.clone()));
        Ok(Arc::new(RedisLink {
            connection,
            timeout,
            health,
            probe,
        }))
    }

    /// Connects and pings once, waiting up to `FIRST_CONTACT` (a connection is several round trips: longer than one
    /// decision may wait). Called before the listeners open, so that the first joins are counted in Redis rather than
    /// racing the connection; if Redis does not answer, serving starts anyway and counts with the fallback.
    pub async fn first_contact(&self) {
        let ping = redis::cmd("PING");
        let mut connection = self.connection.clone();
        match tokio::time::timeout(FIRST_CONTACT, ping.query_async::<String>(&mut connection)).await
        {
            Ok(Ok(_)) => info!(
                redis = %self.health.target,
                fallback = self.health.fallback,
                "counting public joins in Redis, shared by every replica"
            ),
            Ok(Err(err)) => self.health.failed("ping", &err.to_string()),
            Err(_) => self.health.failed("ping", "timed out"),
        }
    }

    /// Whether the last round trip succeeded: decisions use the shared count.
    pub fn is_up(&self) -> bool {
        self.health.is_up()
    }

    /// A handle on the connection (the manager multiplexes every request on one connection).
    pub(super) fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }

    /// Awaits `request` for the timeout at most; a failure marks Redis down.
    pub(super) async fn round_trip<T>(
        &self,
        operation: &'static str,
        request: impl Future<Output = Result<T, RedisError>>,
    ) -> Option<T> {
        match tokio::time::timeout(self.timeout, request).await {
            Ok(Ok(answer)) => Some(answer),
            Ok(Err(err)) => {
                self.health.failed(operation, &err.to_string());
                None
            }
            Err(_) => {
                self.health.failed(operation, "timed out");
                None
            }
        }
    }
}

impl Drop for RedisLink {
    fn drop(&mut self) {
        self.probe.abort();
    }
}

impl RedisJoinCounter {
    /// The join counter on `link`.
    pub fn new(link: Arc<RedisLink>) -> Self {
        RedisJoinCounter { link }
    }

    /// Whether decisions use the shared count.
    pub fn is_up(&self) -> bool {
        self.link.is_up()
    }

    /// The user's joins counted in the 60 minutes before `now`, or `None` if Redis is down or does not answer in
    /// time (the caller falls back).
    pub async fn count(&self, user: &UserId, now: SystemTime) -> Option<u32> {
        if !self.link.is_up() {
            return None;
        }
        let now = millis(now);
        let mut query = redis::cmd("ZCOUNT");
        query
            .arg(key(user))
            .arg(format!("({}", now - WINDOW_MS))
            .arg("+inf");
        let answer = self
            .link
            .round_trip(
                "count",
                query.query_async::<u32>(&mut self.link.connection()),
            )
            .await?;
        Some(answer)
    }

    /// Adds the join `id` of `user` at `now`, drops what left the window, and renews the key's expiry. A failure is
    /// counted and reported, never returned: the decision is taken already.
    pub async fn record(&self, user: &UserId, id: &str, now: SystemTime) {
        if !self.link.is_up() {
            return;
        }
        let now = millis(now);
        let key = key(user);
        let mut pipeline = redis::pipe();
        pipeline
            .cmd("ZADD")
            .arg(&key)
            .arg(now)
            .arg(id)
            .ignore()
            .cmd("ZREMRANGEBYSCORE")
            .arg(&key)
            .arg("-inf")
            .arg(now - WINDOW_MS)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(WINDOW_MS)
            .ignore();
        self.link
            .round_trip(
                "record",
                pipeline.query_async::<()>(&mut self.link.connection()),
            )
            .await;
    }
}

/// Pings Redis forever: often while it is down (to end the outage soon), seldom while it is up (to notice one).
async fn probe(mut connection: ConnectionManager, timeout: Duration, health: Arc<Health>) {
    let ping = redis::cmd("PING");
    loop {
        let wait = if health.is_up() { PROBE_UP } else { PROBE_DOWN };
        tokio::time::sleep(wait).await;
        match tokio::time::timeout(timeout, ping.query_async::<String>(&mut connection)).await {
            Ok(Ok(_)) => health.answered(),
            Ok(Err(err)) => health.failed("ping", &err.to_string()),
            Err(_) => health.failed("ping", "timed out"),
        }
    }
}

/// The user's sorted set.
fn key(user: &UserId) -> String {
    format!("{KEY_PREFIX}{{{}}}", user.as_str())
}

/// Milliseconds since the Unix epoch (0 for a clock before it).
pub(super) fn millis(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Redis URLs are accepted; anything else is refused with the schemes to use.
    #[test]
    fn only_redis_urls_are_accepted() {
        assert!(check_url("redis://127.0.0.1:6379/0").is_ok());
        assert!(check_url("rediss://redis.internal:6380").is_ok());
        assert!(check_url("redis+unix:///run/redis.sock").is_ok());
        let err = check_url("http://127.0.0.1:6379").unwrap_err();
        assert!(err.contains("redis://"), "{err}");
        assert!(check_url("127.0.0.1:6379").is_err());
    }

    /// A password in the URL is noticed (so that a password file besides it is refused) and never logged.
    #[test]
    fn a_password_in_the_url_is_noticed_and_never_described() {
        assert!(url_has_password("redis://:s3cret@127.0.0.1:6379"));
        assert!(url_has_password("redis://roomguard:s3cret@127.0.0.1:6379"));
        assert!(!url_has_password("redis://127.0.0.1:6379"));
        let info = "redis://:s3cret@127.0.0.1:6379"
            .into_connection_info()
            .unwrap();
        assert_eq!(describe(info.addr()), "redis://127.0.0.1:6379");
    }

    /// Every user has one key, hash-tagged on the user id.
    #[test]
    fn keys_are_per_user_with_a_cluster_hash_tag() {
        let alice = UserId::parse("@alice:agent.tchap.gouv.fr").unwrap();
        assert_eq!(
            key(&alice),
            "roomguard:public_joins:{@alice:agent.tchap.gouv.fr}"
        );
    }
}
