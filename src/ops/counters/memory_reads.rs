//! The process's own read counter (`counters.backend = "memory"`, and the `local` fallback of the Redis backend):
//! each account's reads in the last hour, behind `r.read.*_1h`, and the rate refusals that lead to containment.
//!
//! - **Per minute**: each account keeps, for each minute it read in, one count per series (history requests,
//!   initial syncs, searches, downloads, thumbnails, rate refusals); a read counts for the 60 minutes that start with
//!   its own, and the oldest minute says when a count next falls (a refused client's retry time).
//! - **Distinct rooms**: each room whose history the account read, as a keyed 64-bit hash of its id (never the id)
//!   with the minute it was last read: a room stays "read" an hour after its last page. At most [`MAX_ROOMS`] per
//!   account (the oldest is forgotten first; the shipped policy refuses the 41st).
//! - **Bounded memory**: at most `counters.max_tracked_users` accounts, evicted as the join counter does (accounts
//!   with nothing in the window first, then the stalest). An account costs about 100 bytes plus 16 bytes per minute
//!   it read in and 12 per room: a few hundred bytes for a person, at most about 1.1 KB + 49 KB for one that reads
//!   every minute and [`MAX_ROOMS`] rooms.

use std::{
    collections::{HashMap, VecDeque, hash_map::RandomState},
    hash::BuildHasher,
    sync::{Arc, Mutex},
    time::Duration,
};

use crate::{
    domain::{
        read::{ReadCounts, ReadKind, Tally},
        subject::UserId,
    },
    ops::metrics::Metrics,
};

/// Minutes in the window.
const WINDOW: u64 = 60;

/// Rooms remembered per account at most.
pub const MAX_ROOMS: usize = 4096;

/// The series counted per minute, in the order of `Minute::counts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Series {
    /// History requests.
    History = 0,
    /// Initial syncs.
    InitialSyncs = 1,
    /// Searches.
    Searches = 2,
    /// Media downloads.
    Downloads = 3,
    /// Thumbnails.
    Thumbnails = 4,
    /// Reads refused for a rate (containment counts them).
    Refusals = 5,
}

impl Series {
    /// The series a read of `kind` adds to (`other` adds to none).
    pub fn of(kind: ReadKind) -> Option<Series> {
        match kind {
            ReadKind::History => Some(Series::History),
            ReadKind::SyncInitial => Some(Series::InitialSyncs),
            ReadKind::Search => Some(Series::Searches),
            ReadKind::Media => Some(Series::Downloads),
            ReadKind::Thumbnail => Some(Series::Thumbnails),
            ReadKind::Other => None,
        }
    }
}

/// An account's counts in one minute.
#[derive(Debug, Clone, Copy)]
struct Minute {
    minute: u64,
    counts: [u16; 6],
}

/// One account's reads in the window.
#[derive(Debug, Default)]
struct Account {
    /// Minutes with reads, oldest first.
    minutes: VecDeque<Minute>,
    /// (hash of the room id, minute it was last read), in no order.
    rooms: Vec<(u64, u64)>,
    /// When roomguard last locked the account, in milliseconds since the Unix epoch.
    locked_ms: Option<u64>,
}

impl Account {
    fn forget_before(&mut self, now: u64) {
        while self
            .minutes
            .front()
            .is_some_and(|m| m.minute + WINDOW <= now)
        {
            self.minutes.pop_front();
        }
        self.rooms.retain(|(_, last)| last + WINDOW > now);
    }

    fn tally(&self, series: Series, now_ms: u64) -> Tally {
        let mut tally = Tally::default();
        for minute in &self.minutes {
            let n = minute.counts[series as usize];
            if n > 0 {
                if tally.count == 0 {
                    tally.frees_in = frees_in(minute.minute, now_ms);
                }
                tally.count = tally.count.saturating_add(u32::from(n));
            }
        }
        tally
    }

    fn add(&mut self, series: Series, now: u64) {
        // A clock that steps back counts in the newest minute rather than out of order.
        let minute = self.minutes.back().map_or(now, |m| m.minute.max(now));
        match self.minutes.back_mut() {
            Some(last) if last.minute == minute => {}
            _ => self.minutes.push_back(Minute {
                minute,
                counts: [0; 6],
            }),
        }
        if let Some(last) = self.minutes.back_mut() {
            let n = &mut last.counts[series as usize];
            *n = n.saturating_add(1);
        }
    }

    /// When the account was locked, if it was in the hour before minute `now`.
    fn locked_in_window(&self, now: u64) -> Option<u64> {
        self.locked_ms.filter(|ms| ms / 60_000 + WINDOW > now)
    }

    /// The counts in the hour before `now_ms`, and whether `room` (a hash) is among the rooms read.
    fn snapshot(&self, room: Option<u64>, now_ms: u64) -> ReadCounts {
        let oldest_room = self.rooms.iter().map(|(_, last)| *last).min();
        ReadCounts {
            history_rooms: Tally {
                count: u32::try_from(self.rooms.len()).unwrap_or(u32::MAX),
                frees_in: oldest_room.map_or(Duration::ZERO, |m| frees_in(m, now_ms)),
            },
            room_already_read: room.is_some_and(|r| self.rooms.iter().any(|(h, _)| *h == r)),
            history_requests: self.tally(Series::History, now_ms),
            initial_syncs: self.tally(Series::InitialSyncs, now_ms),
            searches: self.tally(Series::Searches, now_ms),
            media_downloads: self.tally(Series::Downloads, now_ms),
            thumbnails: self.tally(Series::Thumbnails, now_ms),
        }
    }

    /// Marks `room` (a hash) read in minute `now`; returns the minute it was last read before (`None`: new).
    fn read_room(&mut self, room: u64, now: u64) -> Option<u64> {
        match self.rooms.iter_mut().find(|(h, _)| *h == room) {
            Some((_, last)) => {
                let before = *last;
                *last = before.max(now);
                Some(before)
            }
            None => {
                if self.rooms.len() >= MAX_ROOMS
                    && let Some(oldest) = (0..self.rooms.len()).min_by_key(|i| self.rooms[*i].1)
                {
                    self.rooms.swap_remove(oldest);
                }
                self.rooms.push((room, now));
                None
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.minutes.is_empty() && self.rooms.is_empty() && self.locked_ms.is_none()
    }

    fn last_minute(&self) -> u64 {
        let reads = self.minutes.back().map_or(0, |m| m.minute);
        let rooms = self.rooms.iter().map(|(_, m)| *m).max().unwrap_or(0);
        reads
            .max(rooms)
            .max(self.locked_ms.map_or(0, |ms| ms / 60_000))
    }
}

/// When a read counted in `minute` leaves the window, from `now_ms`.
fn frees_in(minute: u64, now_ms: u64) -> Duration {
    Duration::from_millis(((minute + WINDOW) * 60_000).saturating_sub(now_ms))
}

/// What a reservation counted, to take it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryRefund {
    series: Series,
    minute: u64,
    /// The room's hash and the minute it was last read before (`None`: the reservation added it).
    room: Option<(u64, Option<u64>)>,
}

/// The read counts of every tracked account.
#[derive(Debug)]
pub struct MemoryReadCounter {
    accounts: Mutex<HashMap<Box<str>, Account>>,
    /// Keys the hashes of room ids (random per process).
    rooms: RandomState,
    max_users: usize,
    metrics: Arc<Metrics>,
}

impl MemoryReadCounter {
    /// A counter of at most `max_users` accounts.
    pub fn new(max_users: usize, metrics: Arc<Metrics>) -> Self {
        MemoryReadCounter {
            accounts: Mutex::new(HashMap::new()),
            rooms: RandomState::new(),
            max_users: max_users.max(1),
            metrics,
        }
    }

    /// The account's counts in the hour before `now_ms` (milliseconds since the Unix epoch), whether `room`'s
    /// history is among what it read, and when roomguard locked the account if it did in that hour.
    pub fn counts(
        &self,
        user: &UserId,
        room: Option<&str>,
        now_ms: u64,
    ) -> (ReadCounts, Option<u64>) {
        let now = now_ms / 60_000;
        let Ok(mut accounts) = self.accounts.lock() else {
            return (ReadCounts::default(), None);
        };
        let Some(account) = accounts.get_mut(user.as_str()) else {
            return (ReadCounts::default(), None);
        };
        account.forget_before(now);
        let room = room.map(|r| self.rooms.hash_one(r));
        (
            account.snapshot(room, now_ms),
            account.locked_in_window(now),
        )
    }

    /// [`MemoryReadCounter::counts`], and counts the read being decided in `series` (and `room`'s history) in the
    /// same step, under the same lock: reads of one account decided at once see each other, so a budget is never
    /// overshot. A read then refused is taken back with [`MemoryReadCounter::refund`].
    pub fn reserve(
        &self,
        user: &UserId,
        series: Series,
        room: Option<&str>,
        now_ms: u64,
    ) -> (ReadCounts, Option<u64>, MemoryRefund) {
        let now = now_ms / 60_000;
        let room = room.map(|r| self.rooms.hash_one(r));
        self.with_account(user, now, |account| {
            let counts = account.snapshot(room, now_ms);
            let locked = account.locked_in_window(now);
            account.add(series, now);
            let minute = account.minutes.back().map_or(now, |m| m.minute);
            let room = room.map(|hash| (hash, account.read_room(hash, now)));
            (
                counts,
                locked,
                MemoryRefund {
                    series,
                    minute,
                    room,
                },
            )
        })
        .unwrap_or((
            ReadCounts::default(),
            None,
            MemoryRefund {
                series,
                minute: now,
                room: None,
            },
        ))
    }

    /// Takes back a reserved read that was refused: it does not count.
    pub fn refund(&self, user: &UserId, refund: &MemoryRefund) {
        let Ok(mut accounts) = self.accounts.lock() else {
            return;
        };
        let Some(account) = accounts.get_mut(user.as_str()) else {
            return;
        };
        if let Some(minute) = account
            .minutes
            .iter_mut()
            .find(|m| m.minute == refund.minute)
        {
            let n = &mut minute.counts[refund.series as usize];
            *n = n.saturating_sub(1);
        }
        if let Some((hash, before)) = refund.room {
            match before {
                None => account.rooms.retain(|(h, _)| *h != hash),
                Some(before) => {
                    if let Some((_, last)) = account.rooms.iter_mut().find(|(h, _)| *h == hash) {
                        *last = before;
                    }
                }
            }
        }
    }

    /// Forgets a lock claimed by [`MemoryReadCounter::claim_lock`] (locking failed: the next refusal may try again).
    pub fn release_lock(&self, user: &UserId) {
        if let Ok(mut accounts) = self.accounts.lock()
            && let Some(account) = accounts.get_mut(user.as_str())
        {
            account.locked_ms = None;
        }
    }

    /// Counts one read in `series` at `now_ms` (a refusal, for containment); returns the series' count in the
    /// window, this one included.
    pub fn record(&self, user: &UserId, series: Series, now_ms: u64) -> u32 {
        let now = now_ms / 60_000;
        self.with_account(user, now, |account| {
            account.add(series, now);
            account.tally(series, now_ms).count
        })
        .unwrap_or(0)
    }

    /// Marks the account locked at `now_ms`, unless it was locked in the last hour: `true` when this call marked it
    /// (the caller locks it then), so that an account is never locked twice in the hour.
    pub fn claim_lock(&self, user: &UserId, now_ms: u64) -> bool {
        let now = now_ms / 60_000;
        self.with_account(user, now, |account| match account.locked_in_window(now) {
            Some(_) => false,
            None => {
                account.locked_ms = Some(now_ms);
                true
            }
        })
        .unwrap_or(false)
    }

    /// Accounts tracked now.
    pub fn tracked_users(&self) -> usize {
        self.accounts.lock().map_or(0, |a| a.len())
    }

    fn with_account<T>(
        &self,
        user: &UserId,
        now: u64,
        change: impl FnOnce(&mut Account) -> T,
    ) -> Option<T> {
        let mut accounts = self.accounts.lock().ok()?;
        if !accounts.contains_key(user.as_str()) && accounts.len() >= self.max_users {
            evict(&mut accounts, self.max_users, now);
        }
        let account = accounts.entry(user.as_str().into()).or_default();
        account.forget_before(now);
        let result = change(account);
        self.metrics.reads.tracked_users(accounts.len());
        Some(result)
    }
}

/// Makes room: drops every account with nothing in the window, then, if that freed less than a sixteenth of the
/// capacity, the stalest.
fn evict(accounts: &mut HashMap<Box<str>, Account>, max_users: usize, now: u64) {
    accounts.retain(|_, account| {
        account.forget_before(now);
        if account.locked_in_window(now).is_none() {
            account.locked_ms = None;
        }
        !account.is_empty()
    });
    let target = max_users - (max_users / 16).max(1);
    if accounts.len() > target {
        let mut by_age: Vec<(u64, Box<str>)> = accounts
            .iter()
            .map(|(user, account)| (account.last_minute(), user.clone()))
            .collect();
        let excess = accounts.len() - target;
        by_age.select_nth_unstable_by_key(excess - 1, |(last, _)| *last);
        for (_, user) in by_age.into_iter().take(excess) {
            accounts.remove(&user);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: u64 = 60_000;
    /// Some time, on a minute boundary.
    const T0: u64 = 29_000_000 * MINUTE;

    fn user(name: &str) -> UserId {
        UserId::parse(&format!("@{name}:agent.tchap.gouv.fr")).unwrap()
    }

    fn counter(max: usize) -> MemoryReadCounter {
        MemoryReadCounter::new(max, Arc::new(Metrics::new()))
    }

    /// Each series counts its own reads for an hour, per account, and says when its oldest read leaves the window;
    /// a reservation answers the counts before the read it counts.
    #[test]
    fn series_count_for_an_hour_per_account() {
        let c = counter(10);
        let (alice, bob) = (user("alice"), user("bob"));
        c.reserve(&alice, Series::Downloads, None, T0);
        let (before, _, _) = c.reserve(&alice, Series::Downloads, None, T0 + 10 * MINUTE);
        assert_eq!(
            before.media_downloads.count, 1,
            "the read itself is not in its own counts"
        );
        c.reserve(&alice, Series::Thumbnails, None, T0 + 10 * MINUTE);
        let (counts, _) = c.counts(&alice, None, T0 + 30 * MINUTE);
        assert_eq!(counts.media_downloads.count, 2);
        assert_eq!(
            counts.media_downloads.frees_in,
            Duration::from_secs(30 * 60)
        );
        assert_eq!(counts.thumbnails.count, 1);
        assert_eq!(counts.thumbnails.frees_in, Duration::from_secs(40 * 60));
        assert_eq!(counts.searches, Tally::default());
        assert_eq!(c.counts(&bob, None, T0), (ReadCounts::default(), None));
        // The first download leaves the window at T0 + 60 min, the second ten minutes later.
        assert_eq!(
            c.counts(&alice, None, T0 + 60 * MINUTE)
                .0
                .media_downloads
                .count,
            1
        );
        assert_eq!(
            c.counts(&alice, None, T0 + 70 * MINUTE)
                .0
                .media_downloads
                .count,
            0
        );
    }

    /// Distinct rooms count once each however many pages are read, stay an hour after their last read, and the
    /// request's own room is recognised.
    #[test]
    fn rooms_are_counted_once_and_stay_an_hour_after_their_last_read() {
        let c = counter(10);
        let alice = user("alice");
        for page in 0..5 {
            c.reserve(&alice, Series::History, Some("!a:s"), T0 + page);
        }
        c.reserve(&alice, Series::History, Some("!b:s"), T0 + 5 * MINUTE);
        let (counts, _) = c.counts(&alice, Some("!a:s"), T0 + 6 * MINUTE);
        assert_eq!(counts.history_rooms.count, 2);
        assert_eq!(counts.history_requests.count, 6);
        assert!(counts.room_already_read);
        assert!(
            !c.counts(&alice, Some("!c:s"), T0 + 6 * MINUTE)
                .0
                .room_already_read
        );
        // Reading !a:s again at minute 50 keeps it in the window until minute 110; !b:s leaves at minute 65.
        c.reserve(&alice, Series::History, Some("!a:s"), T0 + 50 * MINUTE);
        let (later, _) = c.counts(&alice, Some("!b:s"), T0 + 65 * MINUTE);
        assert_eq!(later.history_rooms.count, 1);
        assert!(!later.room_already_read);
        assert_eq!(later.history_rooms.frees_in, Duration::from_secs(45 * 60));
    }

    /// A refused read is taken back whole: its count, and the room it would have added (or the room's previous
    /// last read).
    #[test]
    fn a_refund_takes_the_read_back() {
        let c = counter(10);
        let alice = user("alice");
        c.reserve(&alice, Series::History, Some("!a:s"), T0);
        let (_, _, new_room) = c.reserve(&alice, Series::History, Some("!b:s"), T0 + MINUTE);
        c.refund(&alice, &new_room);
        let (counts, _) = c.counts(&alice, Some("!b:s"), T0 + 2 * MINUTE);
        assert_eq!(
            (counts.history_rooms.count, counts.history_requests.count),
            (1, 1)
        );
        assert!(!counts.room_already_read);
        let (_, _, again) = c.reserve(&alice, Series::History, Some("!a:s"), T0 + 50 * MINUTE);
        c.refund(&alice, &again);
        let (counts, _) = c.counts(&alice, Some("!a:s"), T0 + 61 * MINUTE);
        assert!(
            !counts.room_already_read,
            "!a:s keeps its first read's time: out of the window"
        );
    }

    /// Reservations from many threads at once never let a budget through twice: each sees the ones before it.
    #[test]
    fn concurrent_reservations_see_each_other() {
        let c = counter(10);
        let alice = user("alice");
        let seen: Vec<u32> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|t| {
                    let (c, alice) = (&c, &alice);
                    scope.spawn(move || {
                        (0..50)
                            .map(|i| {
                                let room = format!("!{t}-{i}:s");
                                c.reserve(alice, Series::History, Some(&room), T0)
                                    .0
                                    .history_rooms
                                    .count
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let mut seen = seen;
        seen.sort_unstable();
        assert_eq!(
            seen,
            (0..400).collect::<Vec<_>>(),
            "every count from 0 to 399 seen once"
        );
    }

    /// An account is locked once in the hour at most, and counts say when.
    #[test]
    fn a_lock_is_claimed_once_an_hour() {
        let c = counter(10);
        let alice = user("alice");
        assert!(c.claim_lock(&alice, T0 + 7));
        assert_eq!(c.counts(&alice, None, T0 + MINUTE).1, Some(T0 + 7));
        assert!(!c.claim_lock(&alice, T0 + 59 * MINUTE));
        assert!(c.claim_lock(&alice, T0 + 60 * MINUTE));
        c.release_lock(&alice);
        assert!(
            c.claim_lock(&alice, T0 + 61 * MINUTE),
            "a released claim can be taken again"
        );
    }

    /// Refusals are a series of their own: they count towards containment, never towards a read budget.
    #[test]
    fn refusals_are_counted_apart() {
        let c = counter(10);
        let alice = user("alice");
        assert_eq!(c.record(&alice, Series::Refusals, T0), 1);
        assert_eq!(c.record(&alice, Series::Refusals, T0 + MINUTE), 2);
        assert_eq!(
            c.counts(&alice, None, T0 + MINUTE),
            (ReadCounts::default(), None)
        );
    }

    /// The counter is bounded: accounts with nothing in the window go first, then the stalest; an account's rooms
    /// are bounded too.
    #[test]
    fn memory_is_bounded() {
        let c = counter(32);
        for i in 0..32 {
            c.reserve(&user(&format!("old{i}")), Series::History, None, T0);
        }
        c.reserve(&user("fresh"), Series::History, None, T0 + 90 * MINUTE);
        assert_eq!(c.tracked_users(), 1);
        for i in 0..40 {
            c.reserve(
                &user(&format!("u{i}")),
                Series::Downloads,
                None,
                T0 + (100 + i) * MINUTE,
            );
        }
        assert!(c.tracked_users() <= 32);
        let now = T0 + 139 * MINUTE;
        assert_eq!(c.counts(&user("u39"), None, now).0.media_downloads.count, 1);
        assert_eq!(c.counts(&user("u0"), None, now).0.media_downloads.count, 0);
        let alice = user("alice");
        for room in 0..MAX_ROOMS + 10 {
            c.reserve(&alice, Series::History, Some(&format!("!{room}:s")), now);
        }
        assert_eq!(
            c.counts(&alice, None, now).0.history_rooms.count as usize,
            MAX_ROOMS
        );
    }
}
