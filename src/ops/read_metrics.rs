//! The metrics of reads (the reverse proxy's questions), rendered with the rest by
//! [`super::metrics::Metrics::render`]. Every read decision is also in `roomguard_decisions_total{rpc="CheckRead"}`.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `roomguard_reads_total` | counter | `kind` (`history`, `search`, `sync_initial`, `media`, `thumbnail`, `other`), `effect` (the policy's) |
//! | `roomguard_reads_rate_limited_total` | counter | `rule` (each rule of a `*_RATE_EXCEEDED` reason) |
//! | `roomguard_reads_not_decided_total` | counter | `cause` (`unknown_token`: allowed for the homeserver to refuse; `homeserver_unavailable`, `overloaded`, `timeout`: answered by `reads.failure_mode`; `invalid`: a malformed request, `missing_token`: a read without a token, both refused) |
//! | `roomguard_token_cache_entries` | gauge | |
//! | `roomguard_read_counter_tracked_users` | gauge | |
//! | `roomguard_accounts_locked_total` | counter | |
//! | `roomguard_account_lock_failures_total` | counter | |
//! | `roomguard_homeserver_requests_total` | counter | `call` (`whoami`, `room`, `user`, `lock`), `outcome` (`ok`, `not_found`, `unknown_token`, `error`, `timeout`) |
//! | `roomguard_homeserver_up` | gauge | (1 while the homeserver answers roomguard's calls) |

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::{
        Mutex,
        atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering},
    },
};

use super::exposition::{escape, family};
use crate::domain::{decision::Decision, read::ReadKind};

/// Why a read was answered without the policy deciding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NotDecided {
    /// The homeserver does not know the access token: allowed, for the homeserver to answer 401 itself.
    UnknownToken,
    /// The homeserver could not be asked (token, room): answered by `reads.failure_mode`.
    HomeserverUnavailable,
    /// The concurrency limit was reached: answered by `reads.failure_mode`.
    Overloaded,
    /// Deciding took longer than `limits.request_timeout_ms`: answered by `reads.failure_mode`.
    Timeout,
    /// The request is malformed: refused.
    Invalid,
    /// A read the homeserver serves to an account only, carrying no token: refused, as the homeserver refuses it.
    MissingToken,
}

impl NotDecided {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            NotDecided::UnknownToken => "unknown_token",
            NotDecided::HomeserverUnavailable => "homeserver_unavailable",
            NotDecided::Overloaded => "overloaded",
            NotDecided::Timeout => "timeout",
            NotDecided::Invalid => "invalid",
            NotDecided::MissingToken => "missing_token",
        }
    }
}

/// The homeserver calls roomguard makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum HomeserverCall {
    /// `GET /_matrix/client/v3/account/whoami`.
    Whoami,
    /// `GET /_synapse/admin/v1/rooms/{roomId}`.
    Room,
    /// `GET /_synapse/admin/v2/users/{userId}`.
    User,
    /// `PUT /_synapse/admin/v2/users/{userId}` with `locked: true`.
    Lock,
}

impl HomeserverCall {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            HomeserverCall::Whoami => "whoami",
            HomeserverCall::Room => "room",
            HomeserverCall::User => "user",
            HomeserverCall::Lock => "lock",
        }
    }
}

/// The read metrics of one process.
#[derive(Debug, Default)]
pub struct ReadMetrics {
    reads: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    rate_limited: Mutex<BTreeMap<String, u64>>,
    not_decided: Mutex<BTreeMap<NotDecided, u64>>,
    token_cache_entries: AtomicI64,
    tracked_users: AtomicI64,
    locked: AtomicU64,
    lock_failures: AtomicU64,
    homeserver: Mutex<BTreeMap<(HomeserverCall, &'static str), u64>>,
    homeserver_down: AtomicBool,
}

impl ReadMetrics {
    /// Counts a read of `kind` decided with `decision` (the policy's effect), and each rule of its rate reasons.
    pub fn decided(&self, kind: ReadKind, decision: &Decision) {
        if let Ok(mut reads) = self.reads.lock() {
            *reads
                .entry((kind.as_str(), decision.effect.as_str()))
                .or_default() += 1;
        }
        let rates = decision
            .reasons
            .iter()
            .filter(|r| crate::policy::reasons::is_rate(&r.code));
        for reason in rates {
            if let Ok(mut rules) = self.rate_limited.lock() {
                match rules.get_mut(reason.rule.as_str()) {
                    Some(n) => *n += 1,
                    None => {
                        rules.insert(reason.rule.clone(), 1);
                    }
                }
            }
        }
    }

    /// A read answered without the policy deciding it.
    pub fn not_decided(&self, cause: NotDecided) {
        if let Ok(mut map) = self.not_decided.lock() {
            *map.entry(cause).or_default() += 1;
        }
    }

    /// Reads answered without the policy deciding them for `cause`, so far.
    pub fn not_decided_count(&self, cause: NotDecided) -> u64 {
        self.not_decided
            .lock()
            .map_or(0, |map| map.get(&cause).copied().unwrap_or(0))
    }

    /// An entry came into the token cache (`+1`) or left it (`-1`).
    pub fn token_cache_entry(&self, change: i64) {
        self.token_cache_entries
            .fetch_add(change, Ordering::Relaxed);
    }

    /// The in-memory read counter tracks `users` accounts now.
    pub fn tracked_users(&self, users: usize) {
        self.tracked_users
            .store(i64::try_from(users).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    /// roomguard locked an account.
    pub fn account_locked(&self) {
        self.locked.fetch_add(1, Ordering::Relaxed);
    }

    /// Accounts locked so far.
    pub fn accounts_locked(&self) -> u64 {
        self.locked.load(Ordering::Relaxed)
    }

    /// Locking an account failed.
    pub fn lock_failed(&self) {
        self.lock_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// One call to the homeserver ended with `outcome`; `reachable` says whether the homeserver answered at all.
    /// Returns whether that changed (the homeserver went down, or came back).
    pub fn homeserver(&self, call: HomeserverCall, outcome: &'static str, reachable: bool) -> bool {
        if let Ok(mut map) = self.homeserver.lock() {
            *map.entry((call, outcome)).or_default() += 1;
        }
        self.homeserver_down.swap(!reachable, Ordering::Relaxed) == reachable
    }

    /// Whether the homeserver answered roomguard's last call (true before any).
    pub fn homeserver_up(&self) -> bool {
        !self.homeserver_down.load(Ordering::Relaxed)
    }

    /// Appends the read metrics in the Prometheus text format.
    pub(crate) fn render(&self, out: &mut String) {
        family(
            out,
            "roomguard_reads_total",
            "counter",
            "Reads decided, by kind (from the path) and the policy's effect.",
        );
        if let Ok(reads) = self.reads.lock() {
            for ((kind, effect), n) in reads.iter() {
                let _ = writeln!(
                    out,
                    "roomguard_reads_total{{kind=\"{kind}\",effect=\"{effect}\"}} {n}"
                );
            }
        }
        family(
            out,
            "roomguard_reads_rate_limited_total",
            "counter",
            "Reads refused for a rate (a *_RATE_EXCEEDED reason), by rule.",
        );
        if let Ok(rules) = self.rate_limited.lock() {
            for (rule, n) in rules.iter() {
                let _ = writeln!(
                    out,
                    "roomguard_reads_rate_limited_total{{rule=\"{}\"}} {n}",
                    escape(rule)
                );
            }
        }
        family(
            out,
            "roomguard_reads_not_decided_total",
            "counter",
            "Reads answered without the policy deciding them, by cause (unknown_token: allowed for the homeserver \
             to refuse; homeserver_unavailable, overloaded, timeout: answered by reads.failure_mode; invalid, missing_token: \
             refused).",
        );
        if let Ok(map) = self.not_decided.lock() {
            for (cause, n) in map.iter() {
                let _ = writeln!(
                    out,
                    "roomguard_reads_not_decided_total{{cause=\"{}\"}} {n}",
                    cause.as_str()
                );
            }
        }
        family(
            out,
            "roomguard_token_cache_entries",
            "gauge",
            "Access tokens resolved to an account (or to none) and cached, keyed by a hash of the token.",
        );
        let _ = writeln!(
            out,
            "roomguard_token_cache_entries {}",
            self.token_cache_entries.load(Ordering::Relaxed)
        );
        family(
            out,
            "roomguard_read_counter_tracked_users",
            "gauge",
            "Accounts whose reads this process counts in memory (the memory backend, or Redis's local fallback).",
        );
        let _ = writeln!(
            out,
            "roomguard_read_counter_tracked_users {}",
            self.tracked_users.load(Ordering::Relaxed)
        );
        family(
            out,
            "roomguard_accounts_locked_total",
            "counter",
            "Accounts locked through the homeserver's admin API after reads.lock_account_after rate refusals.",
        );
        let _ = writeln!(
            out,
            "roomguard_accounts_locked_total {}",
            self.locked.load(Ordering::Relaxed)
        );
        family(
            out,
            "roomguard_account_lock_failures_total",
            "counter",
            "Accounts roomguard tried to lock and could not (the homeserver refused or did not answer).",
        );
        let _ = writeln!(
            out,
            "roomguard_account_lock_failures_total {}",
            self.lock_failures.load(Ordering::Relaxed)
        );
        family(
            out,
            "roomguard_homeserver_requests_total",
            "counter",
            "Calls roomguard made to the homeserver for reads, by call and outcome.",
        );
        if let Ok(map) = self.homeserver.lock() {
            for ((call, outcome), n) in map.iter() {
                let _ = writeln!(
                    out,
                    "roomguard_homeserver_requests_total{{call=\"{}\",outcome=\"{outcome}\"}} {n}",
                    call.as_str()
                );
            }
        }
        family(
            out,
            "roomguard_homeserver_up",
            "gauge",
            "1 while the homeserver answers roomguard's calls (or none was made yet), 0 after one failed.",
        );
        let _ = writeln!(
            out,
            "roomguard_homeserver_up {}",
            u8::from(self.homeserver_up())
        );
    }
}
