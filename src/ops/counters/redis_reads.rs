//! The shared read counter (`counters.backend = "redis"`): every replica reads and adds to the same hourly read
//! counts of an account, on the link the join counter uses (same timeout, outage handling and fallback).
//!
//! - **Per-minute slots in one hash per account**, key `roomguard:reads:{<user id>}`: for each of the 60 slots
//!   (`minute % 60`) the minute it holds (`m<slot>`) and one count per series (`h` history, `y` initial syncs, `s`
//!   searches, `d` downloads, `t` thumbnails, `r` rate refusals, as `<series><slot>`). A slot whose minute is an
//!   hour old is reset when it comes round again, so the hash never holds more than 60 x 7 fields, whatever the
//!   account reads. Sorted sets with a member per read, as for joins, would hold one member per thumbnail (3,000 an
//!   hour with the shipped budget).
//! - **Distinct rooms in a sorted set**, key `roomguard:read_rooms:{<user id>}`: room id scored by the time of its
//!   last read, trimmed to the hour on each write.
//! - **One round trip per read**, a Lua script (atomic, and one round trip whatever the number of fields): `reserve`
//!   sums the slots in the window and finds the oldest minute of each series (when a refused client may retry), the
//!   rooms in the window and whether the request's room is one of them, and counts the read being decided, all in
//!   one step, so that reads of one account decided at once on any replica see each other and a budget is never
//!   overshot. A read then refused is taken back (`refund`, a second round trip, only on a refusal). Refusals are
//!   counted by `refused` (containment).
//! - **Locks**: `roomguard:locked:{<user id>}`, set if absent for an hour, so that replicas never lock an account
//!   twice.
//! - The braces are a Redis Cluster hash tag: an account's keys live on one shard, as the scripts need.

use std::{
    sync::{Arc, LazyLock},
    time::{Duration, SystemTime},
};

use redis::Script;

use super::{
    memory_reads::Series,
    redis::{RedisLink, millis},
};
use crate::domain::{
    read::{ReadCounts, Tally},
    subject::UserId,
};

/// An hour, in milliseconds.
const WINDOW_MS: i64 = 60 * 60 * 1000;

/// Sums an account's slots in the window, then counts the read being decided, in one atomic step (reads of one
/// account decided at once, on any replica, see each other). KEYS: the hash, the room set, the lock mark. ARGV: the
/// minute now, the time now in ms, the series letter of the read (empty: count nothing), the room whose history it
/// reads (or empty).
/// Returns, counted before this read: for each series in order h y s d t r, its count then its oldest minute (-1
/// when nothing is counted); the rooms in the window, the oldest room's last read (ms, -1 when none), 1 when the
/// request's room is among them; then when the account was locked (ms, -1 when not in the hour), and the room's
/// score before this read (-1 when it was not in the set), for a refund.
const RESERVE: &str = r"
local now = tonumber(ARGV[1])
local at = tonumber(ARGV[2])
local fields = redis.call('HGETALL', KEYS[1])
local minutes, values = {}, {}
for i = 1, #fields, 2 do
  local name, value = fields[i], tonumber(fields[i + 1])
  if string.sub(name, 1, 1) == 'm' then
    minutes[string.sub(name, 2)] = value
  else
    values[name] = value
  end
end
local series = {'h', 'y', 's', 'd', 't', 'r'}
local out = {}
for k = 1, #series do
  local count, oldest = 0, -1
  for slot, minute in pairs(minutes) do
    if minute > now - 60 then
      local n = values[series[k] .. slot]
      if n and n > 0 then
        count = count + n
        if oldest < 0 or minute < oldest then oldest = minute end
      end
    end
  end
  out[#out + 1] = count
  out[#out + 1] = oldest
end
local since = at - 3600000
out[#out + 1] = redis.call('ZCOUNT', KEYS[2], '(' .. since, '+inf')
local first = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. since, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
if #first == 2 then out[#out + 1] = tonumber(first[2]) else out[#out + 1] = -1 end
local before = -1
if ARGV[4] ~= '' then
  local score = redis.call('ZSCORE', KEYS[2], ARGV[4])
  if score then before = tonumber(score) end
end
if before > since then out[#out + 1] = 1 else out[#out + 1] = 0 end
local locked = tonumber(redis.call('GET', KEYS[3]))
if locked and locked > since then out[#out + 1] = locked else out[#out + 1] = -1 end
out[#out + 1] = before
if ARGV[3] == '' then return out end
local slot = tostring(now % 60)
if minutes[slot] ~= now then
  redis.call('HDEL', KEYS[1], 'h' .. slot, 'y' .. slot, 's' .. slot, 'd' .. slot, 't' .. slot, 'r' .. slot)
  redis.call('HSET', KEYS[1], 'm' .. slot, now)
end
redis.call('HINCRBY', KEYS[1], ARGV[3] .. slot, 1)
redis.call('PEXPIRE', KEYS[1], 3660000)
if ARGV[4] ~= '' then
  redis.call('ZADD', KEYS[2], math.max(at, before), ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', since)
  redis.call('PEXPIRE', KEYS[2], 3600000)
end
return out
";

/// Takes back a reserved read that was refused. KEYS: the hash, the room set. ARGV: the minute it was counted in,
/// its series letter, the room (or empty) and the room's score before it (-1: remove the room).
const REFUND: &str = r"
local minute = tonumber(ARGV[1])
local slot = tostring(minute % 60)
if ARGV[2] ~= '' and tonumber(redis.call('HGET', KEYS[1], 'm' .. slot)) == minute then
  local n = tonumber(redis.call('HGET', KEYS[1], ARGV[2] .. slot))
  if n and n > 0 then redis.call('HINCRBY', KEYS[1], ARGV[2] .. slot, -1) end
end
if ARGV[3] ~= '' then
  local before = tonumber(ARGV[4])
  if before < 0 then
    redis.call('ZREM', KEYS[2], ARGV[3])
  else
    redis.call('ZADD', KEYS[2], before, ARGV[3])
  end
end
return 1
";

/// Counts one refusal (series `r`). KEYS: the hash. ARGV: the minute now. Returns the refusals in the window, this
/// one included.
const REFUSED: &str = r"
local now = tonumber(ARGV[1])
local slot = tostring(now % 60)
local held = tonumber(redis.call('HGET', KEYS[1], 'm' .. slot))
if held ~= now then
  redis.call('HDEL', KEYS[1], 'h' .. slot, 'y' .. slot, 's' .. slot, 'd' .. slot, 't' .. slot, 'r' .. slot)
  redis.call('HSET', KEYS[1], 'm' .. slot, now)
end
redis.call('HINCRBY', KEYS[1], 'r' .. slot, 1)
redis.call('PEXPIRE', KEYS[1], 3660000)
local fields = redis.call('HGETALL', KEYS[1])
local minutes, values = {}, {}
for i = 1, #fields, 2 do
  local name, value = fields[i], tonumber(fields[i + 1])
  if string.sub(name, 1, 1) == 'm' then minutes[string.sub(name, 2)] = value else values[name] = value end
end
local count = 0
for s, minute in pairs(minutes) do
  if minute > now - 60 then count = count + (values['r' .. s] or 0) end
end
return count
";

static RESERVE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(RESERVE));
static REFUND_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(REFUND));
static REFUSED_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(REFUSED));

/// What a reservation counted in Redis, to take it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisRefund {
    minute: i64,
    series: Option<Series>,
    /// The room and its score before the reservation (-1: it was not in the set).
    room: Option<(String, i64)>,
}

/// The read counter in Redis.
#[derive(Debug)]
pub struct RedisReadCounter {
    link: Arc<RedisLink>,
}

impl RedisReadCounter {
    /// The read counter on `link`.
    pub fn new(link: Arc<RedisLink>) -> Self {
        RedisReadCounter { link }
    }

    /// The account's counts in the hour before `now` and when it was locked if it was (ms), counting the read being
    /// decided in the same atomic step; `None` if Redis is down or does not answer in time (the caller falls back).
    pub async fn reserve(
        &self,
        user: &UserId,
        series: Option<Series>,
        room: Option<&str>,
        now: SystemTime,
    ) -> Option<(ReadCounts, Option<i64>, Option<RedisRefund>)> {
        if !self.link.is_up() {
            return None;
        }
        let now_ms = millis(now);
        let minute = now_ms / 60_000;
        let mut invocation = RESERVE_SCRIPT.prepare_invoke();
        invocation
            .key(key("reads", user))
            .key(key("read_rooms", user))
            .key(key("locked", user))
            .arg(minute)
            .arg(now_ms)
            .arg(series.map_or("", letter))
            .arg(room.unwrap_or(""));
        let answer: Vec<i64> = self
            .link
            .round_trip(
                "count",
                invocation.invoke_async(&mut self.link.connection()),
            )
            .await?;
        let locked = answer.get(15).copied().filter(|ms| *ms >= 0);
        let before = answer.get(16).copied().unwrap_or(-1);
        let refund = series.map(|series| RedisRefund {
            minute,
            series: Some(series),
            room: room.map(|r| (r.to_owned(), before)),
        });
        Some((parse_counts(&answer, now_ms), locked, refund))
    }

    /// Takes back a reserved read that was refused.
    pub async fn refund(&self, user: &UserId, refund: &RedisRefund) {
        if !self.link.is_up() {
            return;
        }
        let (room, before) = refund
            .room
            .as_ref()
            .map_or(("", -1), |(room, before)| (room.as_str(), *before));
        let mut invocation = REFUND_SCRIPT.prepare_invoke();
        invocation
            .key(key("reads", user))
            .key(key("read_rooms", user))
            .arg(refund.minute)
            .arg(refund.series.map_or("", letter))
            .arg(room)
            .arg(before);
        self.link
            .round_trip(
                "record",
                invocation.invoke_async::<i64>(&mut self.link.connection()),
            )
            .await;
    }

    /// Counts one read refused for a rate; returns the refusals in the window, this one included, or `None` if
    /// Redis did not take it.
    pub async fn refused(&self, user: &UserId, now: SystemTime) -> Option<u32> {
        if !self.link.is_up() {
            return None;
        }
        let mut invocation = REFUSED_SCRIPT.prepare_invoke();
        invocation.key(key("reads", user)).arg(millis(now) / 60_000);
        let count: i64 = self
            .link
            .round_trip(
                "record",
                invocation.invoke_async(&mut self.link.connection()),
            )
            .await?;
        Some(u32::try_from(count).unwrap_or(u32::MAX))
    }

    /// Marks the account locked for an hour unless a replica did in the last hour: `Some(true)` when this call
    /// marked it.
    pub async fn claim_lock(&self, user: &UserId, now: SystemTime) -> Option<bool> {
        if !self.link.is_up() {
            return None;
        }
        let mut set = redis::cmd("SET");
        set.arg(key("locked", user))
            .arg(millis(now))
            .arg("NX")
            .arg("PX")
            .arg(WINDOW_MS);
        let answer: Option<String> = self
            .link
            .round_trip("record", set.query_async(&mut self.link.connection()))
            .await?;
        Some(answer.is_some())
    }

    /// Forgets a lock mark (locking failed: the next refusal may try again).
    pub async fn release_lock(&self, user: &UserId) {
        if !self.link.is_up() {
            return;
        }
        let mut del = redis::cmd("DEL");
        del.arg(key("locked", user));
        self.link
            .round_trip("record", del.query_async::<()>(&mut self.link.connection()))
            .await;
    }
}

/// One of an account's keys.
fn key(what: &str, user: &UserId) -> String {
    format!("roomguard:{what}:{{{}}}", user.as_str())
}

fn letter(series: Series) -> &'static str {
    match series {
        Series::History => "h",
        Series::InitialSyncs => "y",
        Series::Searches => "s",
        Series::Downloads => "d",
        Series::Thumbnails => "t",
        Series::Refusals => "r",
    }
}

/// The `RESERVE` script's answer as counts; a short answer (which a script of this file never gives) reads as zeros.
fn parse_counts(answer: &[i64], now_ms: i64) -> ReadCounts {
    let at = |i: usize| answer.get(i).copied().unwrap_or(-1);
    let count = |i: usize| u32::try_from(at(i).max(0)).unwrap_or(u32::MAX);
    // A read counted in minute m leaves the window when minute m + 60 begins.
    let frees = |until_ms: i64| {
        Duration::from_millis(u64::try_from(until_ms.saturating_sub(now_ms)).unwrap_or(0))
    };
    let series = |k: usize| {
        let oldest = at(2 * k + 1);
        Tally {
            count: count(2 * k),
            frees_in: if oldest < 0 {
                Duration::ZERO
            } else {
                frees((oldest + 60) * 60_000)
            },
        }
    };
    let oldest_room = at(13);
    ReadCounts {
        history_rooms: Tally {
            count: count(12),
            frees_in: if oldest_room < 0 {
                Duration::ZERO
            } else {
                frees(oldest_room + WINDOW_MS)
            },
        },
        room_already_read: at(14) == 1,
        history_requests: series(0),
        initial_syncs: series(1),
        searches: series(2),
        media_downloads: series(3),
        thumbnails: series(4),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every account's keys carry its id as a Redis Cluster hash tag, so one script can touch them all.
    #[test]
    fn keys_share_the_account_hash_tag() {
        let alice = UserId::parse("@alice:agent.tchap.gouv.fr").unwrap();
        assert_eq!(
            key("reads", &alice),
            "roomguard:reads:{@alice:agent.tchap.gouv.fr}"
        );
        assert_eq!(
            key("read_rooms", &alice),
            "roomguard:read_rooms:{@alice:agent.tchap.gouv.fr}"
        );
    }

    /// The script's flat answer becomes the counts, with the time until each count falls.
    #[test]
    fn the_counts_answer_is_read_in_order() {
        let now_ms = 1_000 * 60_000 + 30_000;
        // h: 5 since minute 990; y: none; s: 2 since 999; d: 1 since 941; t: none; r: 3 since 995.
        let answer = [
            5,
            990,
            0,
            -1,
            2,
            999,
            1,
            941,
            0,
            -1,
            3,
            995,
            7,
            now_ms - 600_000,
            1,
        ];
        let counts = parse_counts(&answer, now_ms);
        assert_eq!(counts.history_requests.count, 5);
        assert_eq!(
            counts.history_requests.frees_in,
            Duration::from_secs(50 * 60 - 30)
        );
        assert_eq!(counts.initial_syncs, Tally::default());
        assert_eq!(counts.searches.count, 2);
        assert_eq!(counts.media_downloads.frees_in, Duration::from_secs(30));
        assert_eq!(counts.history_rooms.count, 7);
        assert_eq!(counts.history_rooms.frees_in, Duration::from_secs(50 * 60));
        assert!(counts.room_already_read);
        assert_eq!(parse_counts(&[], now_ms), ReadCounts::default());
    }
}
