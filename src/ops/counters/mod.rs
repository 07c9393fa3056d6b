//! The per-account public-join counter behind `r.sub.public_joins_1h`: how many joins of public rooms without an
//! invite roomguard allowed each user in the last 60 minutes. One hijacked account joining public room after public
//! room to read their history is the intrusion roomguard exists for; the shipped rule `join.rate` stops the 21st.
//!
//! - **What counts**: one per `CheckRoomJoin` answered ALLOW for a room that was public and not invited, whether or
//!   not the homeserver then completes the join (roomguard cannot know). The request being decided is not counted.
//!   In shadow mode every answer is ALLOW, so every such join counts.
//! - **Where**: `counters.backend = "memory"` counts in this process ([`memory`]); `"redis"` counts in a Redis that
//!   every replica shares ([`redis`]), and also in memory when `counters.fallback = "local"`, so that an outage falls
//!   back on this process's own recent joins rather than on nothing.

pub mod memory;
pub mod redis;

use std::{sync::Arc, time::SystemTime};

use crate::{
    domain::subject::UserId,
    ops::{
        config::{CounterBackend, CounterFallback, CountersConfig},
        metrics::Metrics,
    },
};
pub use memory::DEFAULT_MAX_TRACKED_USERS;
use memory::MemoryJoinCounter;
use redis::{RedisJoinCounter, RedisSetupError};

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

    /// The counter `config` describes. The Redis backend connects lazily and must be created inside the tokio
    /// runtime.
    pub fn from_config(
        config: &CountersConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Self, RedisSetupError> {
        match config.backend {
            CounterBackend::Memory => Ok(JoinCounter::in_memory(config.max_tracked_users, metrics)),
            CounterBackend::Redis => Ok(JoinCounter {
                local: match config.fallback {
                    CounterFallback::Local => Some(MemoryJoinCounter::new(
                        config.max_tracked_users,
                        metrics.clone(),
                    )),
                    CounterFallback::Zero => None,
                },
                shared: Some(RedisJoinCounter::connect(config, metrics.clone())?),
                metrics,
            }),
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

    /// With Redis, connects before serving (see [`RedisJoinCounter::first_contact`]); nothing in memory.
    pub async fn first_contact(&self) {
        if let Some(shared) = &self.shared {
            shared.first_contact().await;
        }
    }

    /// Whether decisions count in the shared (Redis) counter now: false with the memory backend, and while Redis is
    /// unreachable.
    pub fn shared_up(&self) -> bool {
        self.shared.as_ref().is_some_and(RedisJoinCounter::is_up)
    }
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
        let counter =
            JoinCounter::from_config(&unreachable_redis(CounterFallback::Local), metrics.clone())
                .unwrap();
        counter.first_contact().await;
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
        let counter =
            JoinCounter::from_config(&unreachable_redis(CounterFallback::Zero), metrics).unwrap();
        counter.first_contact().await;
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
}
