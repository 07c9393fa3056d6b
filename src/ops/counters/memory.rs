//! The process's own public-join counter (`counters.backend = "memory"`, and the `local` fallback of the Redis
//! backend): what [`super::JoinCounter`] counts in memory.
//!
//! - **Sliding window, per minute**: each user has 60 one-byte buckets, one per minute (saturating at 255), and the
//!   minute of their last counted join; a join counts for the 60 minutes that start with its own.
//! - **Bounded memory**: at most `counters.max_tracked_users` users. When full, users with no join in the window are
//!   dropped first (they count zero anyway), then the stalest, a sixteenth of the capacity at a time, so that a full
//!   counter costs amortised constant time per join. A user entry is about 130 bytes (the buckets and minute, 64
//!   bytes in the table's slot, plus the user id on the heap): 1,000,000 users are about 130 MB.
//! - **Per process**: it survives policy reloads (it lives beside the policy, not in it), but not a restart, and each
//!   replica counts on its own: with N replicas behind a load balancer an account can make up to N times the limit
//!   (the Redis backend, [`super::redis`], shares the count).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{SystemTime, UNIX_EPOCH},
};

use crate::{domain::subject::UserId, ops::metrics::Metrics};

/// Minutes in the window.
const WINDOW: u32 = 60;

/// The default of `counters.max_tracked_users`.
pub const DEFAULT_MAX_TRACKED_USERS: usize = 1_000_000;

/// One user's joins in the window.
#[derive(Debug, Clone, Copy)]
struct Joins {
    /// Joins per minute, at index `minute % 60`, for the minutes `last - 59 ..= last`.
    buckets: [u8; WINDOW as usize],
    /// The minute of the last counted join.
    last: u32,
}

impl Joins {
    /// Joins in the window that ends at `now`.
    fn count(&self, now: u32) -> u32 {
        if now.saturating_sub(self.last) >= WINDOW {
            return 0;
        }
        // Buckets hold minutes `last - 59 ..= last`; the window is `now - 59 ..= now`: the overlap.
        let from = now.saturating_sub(WINDOW - 1);
        (from..=self.last)
            .map(|minute| u32::from(self.buckets[(minute % WINDOW) as usize]))
            .sum()
    }

    /// Counts a join at `now` (never earlier than the last one: a clock that steps back counts at the last minute).
    fn record(&mut self, now: u32) {
        let now = now.max(self.last);
        // Clear the buckets of the minutes that passed since the last join: they now stand for new minutes.
        let passed = (now - self.last).min(WINDOW);
        for step in 1..=passed {
            self.buckets[((self.last + step) % WINDOW) as usize] = 0;
        }
        self.last = now;
        let bucket = &mut self.buckets[(now % WINDOW) as usize];
        *bucket = bucket.saturating_add(1);
    }
}

/// The counter of every tracked user.
#[derive(Debug)]
pub struct MemoryJoinCounter {
    users: Mutex<HashMap<Box<str>, Joins>>,
    max_users: usize,
    metrics: Arc<Metrics>,
}

impl MemoryJoinCounter {
    /// A counter of at most `max_users` users, reporting its size to `metrics`.
    pub fn new(max_users: usize, metrics: Arc<Metrics>) -> Self {
        MemoryJoinCounter {
            users: Mutex::new(HashMap::new()),
            max_users: max_users.max(1),
            metrics,
        }
    }

    /// The minute of `at` since the Unix epoch (0 for a clock before it).
    pub fn minute(at: SystemTime) -> u32 {
        let seconds = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        u32::try_from(seconds / 60).unwrap_or(u32::MAX)
    }

    /// The user's counted joins in the 60 minutes ending at `now`.
    pub fn count(&self, user: &UserId, now: u32) -> u32 {
        self.users
            .lock()
            .map(|users| users.get(user.as_str()).map_or(0, |j| j.count(now)))
            .unwrap_or(0)
    }

    /// Counts one join of `user` at `now`.
    pub fn record(&self, user: &UserId, now: u32) {
        let Ok(mut users) = self.users.lock() else {
            return;
        };
        if let Some(joins) = users.get_mut(user.as_str()) {
            joins.record(now);
            return;
        }
        if users.len() >= self.max_users {
            evict(&mut users, self.max_users, now);
        }
        let mut joins = Joins {
            buckets: [0; WINDOW as usize],
            last: now,
        };
        joins.record(now);
        users.insert(user.as_str().into(), joins);
        self.metrics.join_counter_tracked_users(users.len());
    }

    /// Users tracked now.
    pub fn tracked_users(&self) -> usize {
        self.users.lock().map_or(0, |users| users.len())
    }
}

/// Makes room for new users: drops every user with no join in the window, then, if that freed less than a sixteenth
/// of the capacity, the stalest users until it has.
fn evict(users: &mut HashMap<Box<str>, Joins>, max_users: usize, now: u32) {
    users.retain(|_, joins| joins.count(now) > 0);
    let target = max_users - (max_users / 16).max(1);
    if users.len() > target {
        let mut by_age: Vec<(u32, Box<str>)> = users
            .iter()
            .map(|(user, joins)| (joins.last, user.clone()))
            .collect();
        let excess = users.len() - target;
        by_age.select_nth_unstable_by_key(excess - 1, |(last, _)| *last);
        for (_, user) in by_age.into_iter().take(excess) {
            users.remove(&user);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> UserId {
        UserId::parse(&format!("@{name}:agent.tchap.gouv.fr")).unwrap()
    }

    fn counter(max: usize) -> MemoryJoinCounter {
        MemoryJoinCounter::new(max, Arc::new(Metrics::new()))
    }

    /// Joins count for 60 minutes, then no more; each user is counted apart.
    #[test]
    fn joins_count_for_sixty_minutes_per_user() {
        let c = counter(10);
        let (alice, bob) = (user("alice"), user("bob"));
        for minute in [1000, 1000, 1010, 1059] {
            c.record(&alice, minute);
        }
        assert_eq!(c.count(&alice, 1059), 4);
        assert_eq!(c.count(&bob, 1059), 0);
        // The two joins of minute 1000 leave the window at minute 1060.
        assert_eq!(c.count(&alice, 1060), 2);
        assert_eq!(c.count(&alice, 1069), 2);
        assert_eq!(c.count(&alice, 1070), 1);
        assert_eq!(c.count(&alice, 1119), 0);
    }

    /// A join after a long pause starts from a clean window (stale buckets are cleared, not added).
    #[test]
    fn old_buckets_are_cleared_when_the_minutes_come_round_again() {
        let c = counter(10);
        let alice = user("alice");
        c.record(&alice, 100);
        c.record(&alice, 100);
        c.record(&alice, 160); // same bucket index as minute 100
        assert_eq!(c.count(&alice, 160), 1);
        c.record(&alice, 250);
        assert_eq!(c.count(&alice, 250), 1);
    }

    /// A clock that steps back counts at the last minute rather than corrupting the window.
    #[test]
    fn a_clock_stepping_back_is_harmless() {
        let c = counter(10);
        let alice = user("alice");
        c.record(&alice, 500);
        c.record(&alice, 490);
        assert_eq!(c.count(&alice, 500), 2);
    }

    /// At capacity, users with no join in the window go first, then the stalest; the counter never grows past
    /// its bound.
    #[test]
    fn the_counter_is_bounded_and_evicts_the_stalest() {
        let c = counter(32);
        for i in 0..32 {
            c.record(&user(&format!("old{i}")), 10);
        }
        c.record(&user("fresh"), 100); // every old user is out of the window: all dropped
        assert_eq!(c.tracked_users(), 1);
        for i in 0..40 {
            c.record(&user(&format!("u{i}")), 200 + i);
        }
        assert!(c.tracked_users() <= 32);
        assert_eq!(c.count(&user("u39"), 239), 1, "the newest survive");
        assert_eq!(c.count(&user("u0"), 239), 0, "the stalest were evicted");
    }
}
