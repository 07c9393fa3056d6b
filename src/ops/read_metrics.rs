//! The metrics of reads (the reverse proxy's questions), registered with the rest by
//! [`super::metrics::Metrics::new`]. Every read decision is also in `roomguard_decisions_total{rpc="CheckRead"}`.
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

use std::sync::OnceLock;

use prometheus_client::{
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use super::{exposition::register, named_counters::NamedCounters};
use crate::domain::{
    decision::{Decision, Effect},
    read::ReadKind,
};

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
#[derive(Debug)]
pub struct ReadMetrics {
    reads: Family<[(&'static str, &'static str); 2], Counter>,
    /// `reads`' series by kind and effect (see [`kind_index`], [`effect_index`]), each resolved on the first read
    /// that counts in it: every read comes here, and then costs one atomic increment.
    reads_by_kind: [[OnceLock<Counter>; 2]; ReadKind::ALL.len()],
    rate_limited: Family<[(&'static str, String); 1], Counter>,
    /// `rate_limited`'s series by rule.
    rate_limited_by_rule: NamedCounters,
    not_decided: Family<[(&'static str, &'static str); 1], Counter>,
    token_cache_entries: Gauge,
    tracked_users: Gauge,
    locked: Counter,
    lock_failures: Counter,
    homeserver: Family<[(&'static str, &'static str); 2], Counter>,
    homeserver_up: Gauge,
}

impl ReadMetrics {
    /// Zeroed metrics (the homeserver up), registered in `registry`.
    pub(super) fn new(registry: &mut Registry) -> Self {
        let reads = Family::default();
        register(
            registry,
            "roomguard_reads",
            "Reads decided, by kind (from the path) and the policy's effect.",
            reads.clone(),
        );
        let rate_limited = Family::default();
        register(
            registry,
            "roomguard_reads_rate_limited",
            "Reads refused for a rate (a *_RATE_EXCEEDED reason), by rule.",
            rate_limited.clone(),
        );
        let not_decided = Family::default();
        register(
            registry,
            "roomguard_reads_not_decided",
            "Reads answered without the policy deciding them, by cause (unknown_token: allowed for the homeserver \
             to refuse; homeserver_unavailable, overloaded, timeout: answered by reads.failure_mode; invalid, missing_token: \
             refused).",
            not_decided.clone(),
        );
        let token_cache_entries = Gauge::default();
        register(
            registry,
            "roomguard_token_cache_entries",
            "Access tokens resolved to an account (or to none) and cached, keyed by a hash of the token.",
            token_cache_entries.clone(),
        );
        let tracked_users = Gauge::default();
        register(
            registry,
            "roomguard_read_counter_tracked_users",
            "Accounts whose reads this process counts in memory (the memory backend, or Redis's local fallback).",
            tracked_users.clone(),
        );
        let locked = Counter::default();
        register(
            registry,
            "roomguard_accounts_locked",
            "Accounts locked through the homeserver's admin API after reads.lock_account_after rate refusals.",
            locked.clone(),
        );
        let lock_failures = Counter::default();
        register(
            registry,
            "roomguard_account_lock_failures",
            "Accounts roomguard tried to lock and could not (the homeserver refused or did not answer).",
            lock_failures.clone(),
        );
        let homeserver = Family::default();
        register(
            registry,
            "roomguard_homeserver_requests",
            "Calls roomguard made to the homeserver for reads, by call and outcome.",
            homeserver.clone(),
        );
        let homeserver_up = Gauge::default();
        homeserver_up.set(1);
        register(
            registry,
            "roomguard_homeserver_up",
            "1 while the homeserver answers roomguard's calls (or none was made yet), 0 after one failed.",
            homeserver_up.clone(),
        );
        ReadMetrics {
            reads,
            reads_by_kind: Default::default(),
            rate_limited,
            rate_limited_by_rule: NamedCounters::default(),
            not_decided,
            token_cache_entries,
            tracked_users,
            locked,
            lock_failures,
            homeserver,
            homeserver_up,
        }
    }

    /// Counts a read of `kind` decided with `decision` (the policy's effect), and each rule of its rate reasons.
    pub fn decided(&self, kind: ReadKind, decision: &Decision) {
        let effect = decision.effect;
        self.reads_by_kind[kind_index(kind)][effect_index(effect)]
            .get_or_init(|| {
                self.reads
                    .get_or_create_owned(&[("kind", kind.as_str()), ("effect", effect.as_str())])
            })
            .inc();
        let rates = decision
            .reasons
            .iter()
            .filter(|r| crate::policy::reasons::is_rate(&r.code));
        for reason in rates {
            self.rate_limited_by_rule.inc(&reason.rule, || {
                self.rate_limited
                    .get_or_create_owned(&[("rule", reason.rule.clone())])
            });
        }
    }

    /// A read answered without the policy deciding it.
    pub fn not_decided(&self, cause: NotDecided) {
        self.not_decided
            .get_or_create(&[("cause", cause.as_str())])
            .inc();
    }

    /// Reads answered without the policy deciding them for `cause`, so far.
    pub fn not_decided_count(&self, cause: NotDecided) -> u64 {
        self.not_decided
            .get(&[("cause", cause.as_str())])
            .map_or(0, |counter| counter.get())
    }

    /// An entry came into the token cache (`+1`) or left it (`-1`).
    pub fn token_cache_entry(&self, change: i64) {
        self.token_cache_entries.inc_by(change);
    }

    /// The in-memory read counter tracks `users` accounts now.
    pub fn tracked_users(&self, users: usize) {
        self.tracked_users
            .set(i64::try_from(users).unwrap_or(i64::MAX));
    }

    /// roomguard locked an account.
    pub fn account_locked(&self) {
        self.locked.inc();
    }

    /// Accounts locked so far.
    pub fn accounts_locked(&self) -> u64 {
        self.locked.get()
    }

    /// Locking an account failed.
    pub fn lock_failed(&self) {
        self.lock_failures.inc();
    }

    /// One call to the homeserver ended with `outcome`; `reachable` says whether the homeserver answered at all.
    /// Returns whether that changed (the homeserver went down, or came back).
    pub fn homeserver(&self, call: HomeserverCall, outcome: &'static str, reachable: bool) -> bool {
        self.homeserver
            .get_or_create(&[("call", call.as_str()), ("outcome", outcome)])
            .inc();
        let up = i64::from(reachable);
        self.homeserver_up.set(up) != up
    }

    /// Whether the homeserver answered roomguard's last call (true before any).
    pub fn homeserver_up(&self) -> bool {
        self.homeserver_up.get() != 0
    }
}

/// The position of `kind` in [`ReadKind::ALL`].
fn kind_index(kind: ReadKind) -> usize {
    match kind {
        ReadKind::History => 0,
        ReadKind::Search => 1,
        ReadKind::SyncInitial => 2,
        ReadKind::Media => 3,
        ReadKind::Thumbnail => 4,
        ReadKind::Other => 5,
    }
}

/// `0` for allow, `1` for deny.
pub(super) fn effect_index(effect: Effect) -> usize {
    match effect {
        Effect::Allow => 0,
        Effect::Deny => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each kind's index is its place in `ReadKind::ALL`.
    #[test]
    fn kind_indexes_follow_the_list_of_kinds() {
        for (i, kind) in ReadKind::ALL.into_iter().enumerate() {
            assert_eq!(kind_index(kind), i);
        }
    }
}
