//! Whose access token a read carries: resolved by the homeserver (`whoami`, and whether the account is a server admin
//! when the admin API can be used), remembered for `reads.token_cache_s` in a cache of at most
//! `reads.token_cache_entries`.
//!
//! - **Never the token**: the cache is keyed by a 128-bit SipHash-1-3 of the token (and of the `user_id` an
//!   application service acts as), under a key drawn at random per process; the token itself is only sent to the
//!   homeserver, and never logged.
//! - **One call per token**: concurrent reads with a token not yet known (a client fetching a screen of thumbnails
//!   at once) wait for one `whoami`, not one each (moka coalesces the look-ups).
//! - **"Unknown" is remembered too**, for [`UNKNOWN_TTL`]: a client retrying with an expired token, or a stream of
//!   made-up tokens, does not turn every read into a homeserver call. A homeserver that does not answer is not
//!   remembered: the next read asks again. Nor is a locked account's token: it is the account's again the moment an
//!   admin unlocks it, and a remembered "unknown" would let its reads through undecided meanwhile.
//! - A revoked token stays resolved until its entry expires: the homeserver refuses it itself meanwhile, and reads
//!   decided for it count towards the account that owned it.

use std::{
    hash::Hasher,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use moka::{Expiry, future::Cache};
use rand::RngCore;
use siphasher::sip128::{Hasher128, SipHasher13};

use super::homeserver::{Homeserver, HomeserverError, Whoami};
use crate::{
    domain::subject::{Subject, UserId},
    ops::metrics::Metrics,
};

/// How long the homeserver's "unknown token" is remembered (less than an account, whatever `token_cache_s` says).
pub const UNKNOWN_TTL: Duration = Duration::from_secs(10);

/// What a token resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// An account, and whether the homeserver says it is a server admin.
    Account {
        /// The account.
        user: UserId,
        /// A server admin (known only with the admin token; otherwise false).
        server_admin: bool,
    },
    /// The homeserver does not know the token.
    Unknown,
    /// A locked account's token (never remembered).
    Locked,
}

impl Resolved {
    /// The account as a policy subject.
    pub fn subject(&self) -> Option<Subject> {
        match self {
            Resolved::Account { user, server_admin } => Some(Subject {
                user_id: user.clone(),
                server_admin: *server_admin,
                power_level: 0,
            }),
            Resolved::Unknown | Resolved::Locked => None,
        }
    }
}

/// A resolution, and whether it came from the cache (a remembered answer may be stale: see
/// [`TokenCache::forget`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// What the token resolves to.
    pub resolved: Resolved,
    /// It was remembered, not asked now.
    pub cached: bool,
    /// When the homeserver answered it.
    pub resolved_at: SystemTime,
    /// The cache key, to forget it.
    key: u128,
}

/// The token cache of one process.
#[derive(Clone)]
pub struct TokenCache {
    /// The resolution and when it was made.
    cache: Cache<u128, (Resolved, SystemTime)>,
    key: (u64, u64),
    homeserver: Homeserver,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("entries", &self.cache.entry_count())
            .finish_non_exhaustive()
    }
}

/// A resolution that is not remembered.
enum NotRemembered {
    /// The homeserver did not answer.
    Homeserver(HomeserverError),
    /// A locked account's token.
    Locked,
}

/// Unknown tokens expire sooner than accounts.
struct UnknownSooner;

impl Expiry<u128, (Resolved, SystemTime)> for UnknownSooner {
    fn expire_after_create(
        &self,
        _key: &u128,
        (value, _): &(Resolved, SystemTime),
        _created_at: Instant,
    ) -> Option<Duration> {
        match value {
            Resolved::Unknown => Some(UNKNOWN_TTL),
            // Never inserted (`resolve` answers it without the cache); a zero lifetime besides.
            Resolved::Locked => Some(Duration::ZERO),
            Resolved::Account { .. } => None,
        }
    }
}

impl TokenCache {
    /// A cache of at most `entries` tokens, each remembered `ttl` at most, resolving with `homeserver`.
    pub fn new(homeserver: Homeserver, ttl: Duration, entries: u64, metrics: Arc<Metrics>) -> Self {
        let mut rng = rand::rng();
        // The gauge counts insertions and removals: moka's own count lags until its housekeeping runs (and running
        // it on the request path can wait on the look-ups it coalesces).
        let gauge = metrics.clone();
        TokenCache {
            cache: Cache::builder()
                .max_capacity(entries)
                .time_to_live(ttl)
                .expire_after(UnknownSooner)
                .eviction_listener(move |_key, _value, _cause| gauge.reads.token_cache_entry(-1))
                .build(),
            key: (rng.next_u64(), rng.next_u64()),
            homeserver,
            metrics,
        }
    }

    /// Whose `token` is (acting as `as_user`, for an application service): remembered, or asked of the homeserver
    /// once for every concurrent reader of the same token.
    pub async fn resolve(
        &self,
        token: &str,
        as_user: Option<&str>,
    ) -> Result<Resolution, Arc<HomeserverError>> {
        let key = self.key_of(token, as_user);
        // The common case, a token already known, without the entry API's bookkeeping.
        if let Some((resolved, resolved_at)) = self.cache.get(&key).await {
            return Ok(Resolution {
                resolved,
                cached: true,
                resolved_at,
                key,
            });
        }
        let homeserver = &self.homeserver;
        let entry = self
            .cache
            .entry(key)
            .or_try_insert_with(async move {
                match homeserver.whoami(token, as_user).await {
                    Ok(Whoami::Unknown) => Ok((Resolved::Unknown, SystemTime::now())),
                    // Not inserted: the error path leaves the cache as it was.
                    Ok(Whoami::Locked) => Err(NotRemembered::Locked),
                    Ok(Whoami::Account(user)) => {
                        let server_admin = if homeserver.has_admin_token() {
                            homeserver
                                .is_admin(&user)
                                .await
                                .map_err(NotRemembered::Homeserver)?
                        } else {
                            false
                        };
                        Ok((Resolved::Account { user, server_admin }, SystemTime::now()))
                    }
                    Err(err) => Err(NotRemembered::Homeserver(err)),
                }
            })
            .await;
        let entry = match entry {
            Ok(entry) => entry,
            Err(not_remembered) => {
                return match &*not_remembered {
                    NotRemembered::Locked => Ok(Resolution {
                        resolved: Resolved::Locked,
                        cached: false,
                        resolved_at: SystemTime::now(),
                        key,
                    }),
                    NotRemembered::Homeserver(err) => Err(Arc::new(err.clone())),
                };
            }
        };
        let cached = !entry.is_fresh();
        if !cached {
            self.metrics.reads.token_cache_entry(1);
        }
        let (resolved, resolved_at) = entry.into_value();
        Ok(Resolution {
            resolved,
            cached,
            resolved_at,
            key,
        })
    }

    /// Forgets a remembered resolution (the account was just locked: the homeserver must be asked again).
    pub async fn forget(&self, resolution: &Resolution) {
        self.cache.invalidate(&resolution.key).await;
    }

    fn key_of(&self, token: &str, as_user: Option<&str>) -> u128 {
        let mut hasher = SipHasher13::new_with_keys(self.key.0, self.key.1);
        hasher.write(token.as_bytes());
        if let Some(user) = as_user {
            hasher.write_u8(0);
            hasher.write(user.as_bytes());
        }
        hasher.finish128().as_u128()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> TokenCache {
        let metrics = Arc::new(Metrics::new());
        let homeserver = Homeserver::new(
            "http://127.0.0.1:9",
            None,
            Duration::from_millis(50),
            metrics.clone(),
        )
        .unwrap();
        TokenCache::new(homeserver, Duration::from_secs(60), 10, metrics)
    }

    /// Keys are keyed hashes: the same token and acting user give the same key, anything else another; and two
    /// processes (two random keys) never share one.
    #[tokio::test]
    async fn keys_are_keyed_hashes_of_the_token_and_acting_user() {
        let (a, b) = (cache(), cache());
        assert_eq!(a.key_of("syt_x", None), a.key_of("syt_x", None));
        assert_ne!(a.key_of("syt_x", None), a.key_of("syt_y", None));
        assert_ne!(a.key_of("syt_x", None), a.key_of("syt_x", Some("@bot:s")));
        assert_ne!(a.key_of("syt_x", None), b.key_of("syt_x", None));
    }

    /// A homeserver that does not answer is an error, and is not remembered.
    #[tokio::test]
    async fn an_unreachable_homeserver_is_not_remembered() {
        let cache = cache();
        assert!(cache.resolve("syt_x", None).await.is_err());
        cache.cache.run_pending_tasks().await;
        assert_eq!(cache.cache.entry_count(), 0);
    }
}
