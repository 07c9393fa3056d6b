//! The per-account counters: public joins behind `r.sub.public_joins_1h` ([`JoinCounter`]) and reads behind
//! `r.read.*_1h` ([`ReadCounter`]), each in this process's memory or in a Redis every replica shares.
//!
//! **Joins**: how many joins of public rooms without an invite roomguard allowed each user in the last 60 minutes.
//! One hijacked account joining public room after public room to read their history is the intrusion roomguard
//! exists for; the shipped rule `join.rate` stops the 21st.
//!
//! - **What counts**: one per `CheckRoomJoin` answered ALLOW for a room that was public and not invited, whether or
//!   not the homeserver then completes the join (roomguard cannot know). The request being decided is not counted.
//!   In shadow mode every answer is ALLOW, so every such join counts.
//! - **Where**: `counters.backend = "memory"` counts in this process ([`memory`]); `"redis"` counts in a Redis that
//!   every replica shares ([`redis`]), and also in memory when `counters.fallback = "local"`, so that an outage falls
//!   back on this process's own recent joins rather than on nothing.
//!
//! **Reads**: each account's history requests, distinct rooms read, initial syncs, searches, downloads and
//! thumbnails in the last hour, counted once a read is answered ALLOW (every read in shadow mode), and the reads
//! refused for a rate (containment locks an account after `reads.lock_account_after` of them). Same backends, same
//! Redis link, same fallback ([`memory_reads`], [`redis_reads`]).

pub mod config;
pub mod memory;
pub mod memory_reads;
pub mod redis;
pub mod redis_reads;

use std::{
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use crate::{
    domain::{
        read::{ReadCounts, ReadKind},
        subject::UserId,
    },
    ops::{
        metrics::Metrics,
        {
            counters::config::CounterBackend, counters::config::CounterFallback,
            counters::config::CountersConfig,
        },
    },
};
pub use memory::DEFAULT_MAX_TRACKED_USERS;
use memory::MemoryJoinCounter;
use memory_reads::{MemoryReadCounter, MemoryRefund, Series};
use redis::{RedisJoinCounter, RedisLink, RedisSetupError};
use redis_reads::{RedisReadCounter, RedisRefund};

/// Both counters of a process, on one backend.
#[derive(Debug, Clone)]
pub struct Counters {
    /// Public joins.
    pub joins: Arc<JoinCounter>,
    /// Reads.
    pub reads: Arc<ReadCounter>,
    /// The Redis link both use, with the Redis backend.
    link: Option<Arc<RedisLink>>,
}

impl Counters {
    /// Both counters in this process's memory, of at most `max_users` accounts each.
    pub fn in_memory(max_users: usize, metrics: Arc<Metrics>) -> Self {
        Counters {
            joins: Arc::new(JoinCounter::in_memory(max_users, metrics.clone())),
            reads: Arc::new(ReadCounter::in_memory(max_users, metrics)),
            link: None,
        }
    }

    /// The counters `config` describes. The Redis backend connects lazily and must be created inside the tokio
    /// runtime.
    pub fn from_config(
        config: &CountersConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Self, RedisSetupError> {
        match config.backend {
            CounterBackend::Memory => Ok(Counters::in_memory(config.max_tracked_users, metrics)),
            CounterBackend::Redis => {
                let link = RedisLink::connect(config, metrics.clone())?;
                let local = config.fallback == CounterFallback::Local;
                Ok(Counters {
                    joins: Arc::new(JoinCounter {
                        local: local.then(|| {
                            MemoryJoinCounter::new(config.max_tracked_users, metrics.clone())
                        }),
                        shared: Some(RedisJoinCounter::new(link.clone())),
                        metrics: metrics.clone(),
                    }),
                    reads: Arc::new(ReadCounter {
                        local: local.then(|| {
                            MemoryReadCounter::new(config.max_tracked_users, metrics.clone())
                        }),
                        shared: Some(RedisReadCounter::new(link.clone())),
                        metrics,
                    }),
                    link: Some(link),
                })
            }
        }
    }

    /// With Redis, connects before serving (see [`RedisLink::first_contact`]); nothing in memory.
    pub async fn first_contact(&self) {
        if let Some(link) = &self.link {
            link.first_contact().await;
        }
    }
}

/// The public-join counter of a process, whichever backend holds it.
#[derive(Debug)]
pub struct JoinCounter {
    /// This process's count: the whole counter with the memory backend, the fallback with Redis.
    local: Option<MemoryJoinCounter>,
    /// The shared count, with the Redis backend.
    shared: Option<RedisJoinCounter>,
    metrics: Arc<Metrics>,
}

impl JoinCounter {
    /// A counter in this process's memory of at most `max_users` users.
    pub fn in_memory(max_users: usize, metrics: Arc<Metrics>) -> Self {
        metrics.counters.backend_up(false);
        JoinCounter {
            local: Some(MemoryJoinCounter::new(max_users, metrics.clone())),
            shared: None,
            metrics,
        }
    }

    /// The user's counted joins in the last 60 minutes: the shared count when there is one and it answers, else the
    /// fallback (this process's count, or zero).
    pub async fn count(&self, user: &UserId) -> u32 {
        let now = SystemTime::now();
        if let Some(shared) = &self.shared {
            if let Some(count) = shared.count(user, now).await {
                return count;
            }
            self.metrics.counters.fell_back();
        }
        self.local
            .as_ref()
            .map_or(0, |local| local.count(user, MemoryJoinCounter::minute(now)))
    }

    /// Counts one allowed join of `user`, `id` being its decision id.
    pub async fn record(&self, user: &UserId, id: &str) {
        let now = SystemTime::now();
        if let Some(local) = &self.local {
            local.record(user, MemoryJoinCounter::minute(now));
        }
        if let Some(shared) = &self.shared {
            shared.record(user, id, now).await;
        }
    }

    /// Whether decisions count in the shared (Redis) counter now: false with the memory backend, and while Redis is
    /// unreachable.
    pub fn shared_up(&self) -> bool {
        self.shared.as_ref().is_some_and(RedisJoinCounter::is_up)
    }
}

/// An account's reads in the last hour before the one being decided, as the read counter says, and that read,
/// counted already (take it back with [`ReadCounter::refund`] if it is refused).
#[derive(Debug, Clone, Default)]
pub struct AccountReads {
    /// The counts, this read not included.
    pub counts: ReadCounts,
    /// When roomguard locked the account, if it did in the last hour (a resolution of its token remembered from
    /// before then is stale).
    pub locked_at: Option<SystemTime>,
    /// What was counted of this read.
    reservation: Reservation,
}

/// What a reservation counted, in memory and in Redis.
#[derive(Debug, Clone, Default)]
struct Reservation {
    local: Option<MemoryRefund>,
    shared: Option<RedisRefund>,
}

/// The read counter of a process, whichever backend holds it.
#[derive(Debug)]
pub struct ReadCounter {
    /// This process's count: the whole counter with the memory backend, the fallback with Redis.
    local: Option<MemoryReadCounter>,
    /// The shared count, with the Redis backend.
    shared: Option<RedisReadCounter>,
    metrics: Arc<Metrics>,
}

impl ReadCounter {
    /// A counter in this process's memory of at most `max_users` accounts.
    pub fn in_memory(max_users: usize, metrics: Arc<Metrics>) -> Self {
        ReadCounter {
            local: Some(MemoryReadCounter::new(max_users, metrics.clone())),
            shared: None,
            metrics,
        }
    }

    /// The account's reads in the last hour and when it was locked if it was, and the read of `kind` being decided
    /// (of `room`'s history when the path names one) counted in the same step, so that reads decided at once see
    /// each other: the shared counts when there are and they answer, else the fallback (this process's counts, or
    /// zero). An `other` read is not counted.
    pub async fn reserve(&self, user: &UserId, kind: ReadKind, room: Option<&str>) -> AccountReads {
        let now = SystemTime::now();
        let series = Series::of(kind);
        let local = self.local.as_ref().map(|local| match series {
            Some(series) => {
                let (counts, locked, refund) = local.reserve(user, series, room, millis(now));
                (counts, locked, Some(refund))
            }
            None => {
                let (counts, locked) = local.counts(user, room, millis(now));
                (counts, locked, None)
            }
        });
        let at = |ms: u64| UNIX_EPOCH + std::time::Duration::from_millis(ms);
        let local_refund = local.as_ref().and_then(|(_, _, refund)| *refund);
        if let Some(shared) = &self.shared {
            if let Some((counts, locked, refund)) = shared.reserve(user, series, room, now).await {
                return AccountReads {
                    counts,
                    locked_at: locked.and_then(|ms| u64::try_from(ms).ok()).map(at),
                    reservation: Reservation {
                        local: local_refund,
                        shared: refund,
                    },
                };
            }
            self.metrics.counters.fell_back();
        }
        let (counts, locked) = local.map_or((ReadCounts::default(), None), |(c, l, _)| (c, l));
        AccountReads {
            counts,
            locked_at: locked.map(at),
            reservation: Reservation {
                local: local_refund,
                shared: None,
            },
        }
    }

    /// Takes back the read of `reads` (it was refused: it does not count).
    pub async fn refund(&self, user: &UserId, reads: &AccountReads) {
        if let (Some(local), Some(refund)) = (&self.local, &reads.reservation.local) {
            local.refund(user, refund);
        }
        if let (Some(shared), Some(refund)) = (&self.shared, &reads.reservation.shared) {
            shared.refund(user, refund).await;
        }
    }

    /// Counts one read refused for a rate; returns the account's refusals in the last hour, this one included.
    pub async fn refused(&self, user: &UserId) -> u32 {
        let now = SystemTime::now();
        let local = self
            .local
            .as_ref()
            .map(|local| local.record(user, Series::Refusals, millis(now)));
        if let Some(shared) = &self.shared
            && let Some(count) = shared.refused(user, now).await
        {
            return count;
        }
        local.unwrap_or(0)
    }

    /// Marks the account locked, unless it was in the last hour (here, or on any replica while Redis answers):
    /// `true` when this call marked it and the caller is to lock it.
    pub async fn claim_lock(&self, user: &UserId) -> bool {
        let now = SystemTime::now();
        let local = self
            .local
            .as_ref()
            .is_some_and(|local| local.claim_lock(user, millis(now)));
        match &self.shared {
            Some(shared) => shared.claim_lock(user, now).await.unwrap_or(local),
            None => local,
        }
    }

    /// Forgets a lock claimed with [`ReadCounter::claim_lock`] (locking failed: the next refusal may try again).
    pub async fn release_lock(&self, user: &UserId) {
        if let Some(local) = &self.local {
            local.release_lock(user);
        }
        if let Some(shared) = &self.shared {
            shared.release_lock(user).await;
        }
    }
}

/// Milliseconds since the Unix epoch (0 for a clock before it).
fn millis(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unreachable_redis(fallback: CounterFallback) -> CountersConfig {
        // A port nothing listens on: bound, then closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        CountersConfig {
            backend: CounterBackend::Redis,
            redis_url: Some(format!("redis://127.0.0.1:{port}/0")),
            fallback,
            ..CountersConfig::default()
        }
    }

    fn alice() -> UserId {
        UserId::parse("@alice:agent.tchap.gouv.fr").unwrap()
    }

    /// With Redis unreachable and the `local` fallback, the process's own joins still count, and the counter says
    /// the shared count is not in use.
    #[tokio::test]
    async fn an_unreachable_redis_falls_back_on_the_local_count() {
        let metrics = Arc::new(Metrics::new());
        let counters =
            Counters::from_config(&unreachable_redis(CounterFallback::Local), metrics.clone())
                .unwrap();
        counters.first_contact().await;
        let counter = &counters.joins;
        assert!(!counter.shared_up());
        for id in ["j1", "j2", "j3"] {
            counter.record(&alice(), id).await;
        }
        assert_eq!(counter.count(&alice()).await, 3);
        assert!(metrics.counters.fallbacks() >= 1);
    }

    /// With the `zero` fallback, nothing counts while Redis is unreachable: no join-rate limit.
    #[tokio::test]
    async fn the_zero_fallback_counts_nothing_while_redis_is_down() {
        let metrics = Arc::new(Metrics::new());
        let counters =
            Counters::from_config(&unreachable_redis(CounterFallback::Zero), metrics).unwrap();
        counters.first_contact().await;
        let counter = &counters.joins;
        for id in ["j1", "j2"] {
            counter.record(&alice(), id).await;
        }
        assert_eq!(counter.count(&alice()).await, 0);
    }

    /// The memory backend counts in the process and never claims a shared count.
    #[tokio::test]
    async fn the_memory_backend_counts_in_the_process() {
        let counter = JoinCounter::in_memory(10, Arc::new(Metrics::new()));
        counter.record(&alice(), "j1").await;
        assert_eq!(counter.count(&alice()).await, 1);
        assert!(!counter.shared_up());
    }

    /// Reads fall back like joins: the process's own reads still count while Redis is down (a refunded one not,
    /// an `other` one not), and a lock is still claimed once.
    #[tokio::test]
    async fn reads_fall_back_on_the_local_count() {
        let metrics = Arc::new(Metrics::new());
        let counters =
            Counters::from_config(&unreachable_redis(CounterFallback::Local), metrics).unwrap();
        counters.first_contact().await;
        let reads = &counters.reads;
        reads
            .reserve(&alice(), ReadKind::History, Some("!a:s"))
            .await;
        reads.reserve(&alice(), ReadKind::Media, None).await;
        let refused = reads.reserve(&alice(), ReadKind::Media, None).await;
        reads.refund(&alice(), &refused).await;
        reads.reserve(&alice(), ReadKind::Other, None).await;
        let counts = reads
            .reserve(&alice(), ReadKind::Other, Some("!a:s"))
            .await
            .counts;
        assert_eq!(
            (
                counts.history_rooms.count,
                counts.history_requests.count,
                counts.media_downloads.count
            ),
            (1, 1, 1)
        );
        assert!(counts.room_already_read);
        assert_eq!(reads.refused(&alice()).await, 1);
        assert_eq!(reads.refused(&alice()).await, 2);
        assert!(reads.claim_lock(&alice()).await);
        assert!(!reads.claim_lock(&alice()).await);
    }
}
