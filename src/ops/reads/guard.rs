//! The one path of every read, whichever front asked (nginx's `auth_request`, Envoy's `ext_authz`, the `CheckRead`
//! rpc): classify the request, find the account, read the room's attributes when a rule needs them, read the
//! account's hourly counts, decide on the current policy, count what was allowed, contain an account that keeps
//! hitting its budgets, then log and answer.
//!
//! What roomguard does not decide:
//! - **An access token the homeserver does not know** is allowed: the homeserver answers 401 itself, and roomguard
//!   answers the same for every token it cannot resolve, so it is no oracle for tokens (`UNKNOWN_TOKEN`). On the
//!   legacy media paths, which the homeserver serves without looking at the token, such a read is decided as one
//!   without an account.
//! - **A read it cannot decide** (the homeserver does not answer, every permit is taken, the budget of
//!   `limits.request_timeout_ms` runs out) is answered by `reads.failure_mode`: allowed (`open`, the default: a
//!   proxy cannot stall every read of the messenger) or refused with `READ_GUARD_UNAVAILABLE` (`closed`).
//! - **A malformed request** (see [`crate::domain::read_uri`]) is refused with `INVALID_READ_REQUEST`.
//!
//! **Containment** (`reads.lock_account_after`): an account refused that many reads for a rate in an hour is locked
//! through the homeserver's admin API, once in the hour at most (the mark is in the counter backend, so replicas
//! agree), never a server admin or an account holding the `admin` role, never in shadow mode. Its cached token is
//! forgotten, so that its next read reaches the homeserver, which answers that the account is locked.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tracing::{debug, error, info, warn};

use super::{
    accounts::{Resolution, TokenCache},
    answer::ReadAnswer,
    homeserver::Homeserver,
    rooms::RoomCache,
};
use crate::{
    domain::{
        decision::{Decision, Effect},
        read::ReadRequest,
        read_uri::ReadUri,
        subject::Subject,
    },
    ops::{
        admission::Admission,
        counters::{AccountReads, ReadCounter},
        decision_log::{DecisionLog, Entry, ReadEntry},
        metrics::Metrics,
        read_metrics::NotDecided,
        {mode::Mode, reads::config::ReadFailureMode},
    },
    policy::{
        PolicySnapshot,
        decide::{decide_read, undecided_read},
        reasons::{INVALID_READ_REQUEST, MISSING_TOKEN, READ_GUARD_UNAVAILABLE, UNKNOWN_TOKEN},
        store::PolicyStore,
    },
};

/// The decision-log and metrics name of every read decision.
pub const RPC: &str = "CheckRead";

/// The longest `Authorization` header accepted: Synapse's tokens are about 60 bytes, an OIDC-issued one a few
/// hundred.
pub const MAX_AUTHORIZATION_BYTES: usize = 4096;

/// Which front asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Front {
    /// nginx's `auth_request` (the HTTP listener).
    AuthRequest,
    /// Envoy's `ext_authz` (gRPC).
    ExtAuthz,
    /// The `CheckRead` rpc.
    Rpc,
    /// Traefik's `forwardAuth`, Caddy's `forward_auth` (the HTTP listener's `/forward-auth`).
    ForwardAuth,
}

impl Front {
    /// As the decision log writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Front::AuthRequest => "auth_request",
            Front::ExtAuthz => "ext_authz",
            Front::Rpc => "rpc",
            Front::ForwardAuth => "forward_auth",
        }
    }
}

/// A read as a front received it. Its `Debug` leaves out the URI and the `Authorization` header (both may carry an
/// access token).
#[derive(Clone)]
pub struct ReadAsk<'a> {
    /// The caller's request id (echoed in the decision).
    pub request_id: &'a str,
    /// The request's method.
    pub method: &'a str,
    /// The request's URI as the client sent it.
    pub uri: &'a str,
    /// The request's `Authorization` header, if any.
    pub authorization: Option<&'a str>,
    /// The account, when the caller resolved the token itself (the `CheckRead` rpc's `reader`).
    pub reader: Option<Subject>,
    /// Which front asked.
    pub front: Front,
}

impl std::fmt::Debug for ReadAsk<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadAsk")
            .field("request_id", &self.request_id)
            .field("method", &self.method)
            .field("reader", &self.reader)
            .field("front", &self.front)
            .finish_non_exhaustive()
    }
}

/// A refusal whose every reason is a rate (`*_RATE_EXCEEDED`): answered 429 with a retry time, and counted towards
/// containment. One with another reason too (the room is closed to the account) is no rate: waiting would not help.
pub fn only_rates(decision: &Decision) -> bool {
    !decision.reasons.is_empty()
        && decision
            .reasons
            .iter()
            .all(|r| crate::policy::reasons::is_rate(&r.code))
}

/// What the guard needs besides the policy: built by the server from `[reads]`.
#[derive(Debug, Clone)]
pub struct ReadGuardParts {
    /// Enforce or shadow.
    pub mode: Mode,
    /// What to answer when a read cannot be decided.
    pub failure_mode: ReadFailureMode,
    /// The homeserver, when `reads.homeserver_url` is set.
    pub homeserver: Option<Homeserver>,
    /// `reads.token_cache_s`.
    pub token_cache: Duration,
    /// `reads.token_cache_entries`.
    pub token_cache_entries: u64,
    /// `reads.room_cache_s`.
    pub room_cache: Duration,
    /// `reads.lock_account_after` (0: never).
    pub lock_account_after: u32,
    /// The read counter.
    pub counter: Arc<ReadCounter>,
    /// The process's concurrency limit.
    pub admission: Admission,
    /// The time a read may take, its homeserver and counter calls included.
    pub budget: Duration,
    /// Where counts go.
    pub metrics: Arc<Metrics>,
    /// Where decision-log lines go.
    pub decision_log: DecisionLog,
}

/// The read guard of one process.
#[derive(Debug, Clone)]
pub struct ReadGuard {
    store: Arc<PolicyStore>,
    parts: ReadGuardParts,
    tokens: Option<TokenCache>,
    rooms: Option<RoomCache>,
}

/// Why a read cannot be decided yet.
enum Undecided {
    /// Allowed without deciding: the homeserver does not know the token.
    UnknownToken,
    /// The homeserver (or the budget) failed: answered by the failure mode.
    Failure(NotDecided),
}

impl ReadGuard {
    /// The guard of `store`'s policy.
    pub fn new(store: Arc<PolicyStore>, parts: ReadGuardParts) -> Self {
        let tokens = parts.homeserver.clone().map(|homeserver| {
            TokenCache::new(
                homeserver,
                parts.token_cache,
                parts.token_cache_entries,
                parts.metrics.clone(),
            )
        });
        let rooms = parts
            .homeserver
            .clone()
            .filter(Homeserver::has_admin_token)
            .map(|homeserver| RoomCache::new(homeserver, parts.room_cache));
        ReadGuard {
            store,
            parts,
            tokens,
            rooms,
        }
    }

    /// Says at start what the guard can and cannot do with the current policy and settings: without the homeserver
    /// no token is resolved; without the admin token the rules on a room's attributes see none.
    pub fn report(&self) {
        let policy = self.store.current();
        match &self.parts.homeserver {
            None => info!(
                "reads: no reads.homeserver_url: access tokens cannot be resolved, reads carrying one are answered \
                 by reads.failure_mode ({})",
                self.parts.failure_mode.as_str()
            ),
            Some(homeserver) => info!(
                ?homeserver,
                failure_mode = self.parts.failure_mode.as_str(),
                "reads: resolving access tokens with the homeserver"
            ),
        }
        if self.rooms.is_none() && !policy.read_rules_on_room.is_empty() {
            warn!(
                rules = ?policy.read_rules_on_room,
                "reads: these rules read a room's attributes (r.room.*), which need the homeserver's admin API: set \
                 reads.admin_token_file; until then they are unusable and see no room attributes"
            );
        }
    }

    /// Classifies and decides `ask`, then counts, logs and answers. A malformed request (URI, method, an
    /// `Authorization` header over [`MAX_AUTHORIZATION_BYTES`]) is refused.
    pub async fn check(&self, ask: &ReadAsk<'_>) -> ReadAnswer {
        let started = Instant::now();
        if ask
            .authorization
            .is_some_and(|a| a.len() > MAX_AUTHORIZATION_BYTES)
        {
            return self.invalid(ask, &"the Authorization header is too long", started);
        }
        match ReadUri::parse(ask.method, ask.uri) {
            Ok(uri) => self.check_parsed(ask, uri, started).await,
            Err(err) => self.invalid(ask, &err, started),
        }
    }

    /// [`ReadGuard::check`] of a request already classified (the rpc refuses a malformed one itself).
    pub async fn check_parsed(
        &self,
        ask: &ReadAsk<'_>,
        uri: ReadUri,
        started: Instant,
    ) -> ReadAnswer {
        let Ok(_admitted) = self.parts.admission.admit() else {
            return self.not_decided(ask, Some(uri), NotDecided::Overloaded, started);
        };
        let budget = self.parts.budget;
        match tokio::time::timeout(budget, self.decide(ask, &uri, started)).await {
            Ok(answer) => answer,
            Err(_) => self.not_decided(ask, Some(uri), NotDecided::Timeout, started),
        }
    }

    async fn decide(&self, ask: &ReadAsk<'_>, uri: &ReadUri, started: Instant) -> ReadAnswer {
        let target = &uri.target;
        let policy = self.store.current();
        // At most twice: a second time when the account was locked since its token was remembered.
        let mut stale = false;
        let (reader, resolution, reads) = loop {
            let resolution = match self.account(ask, uri).await {
                Ok(resolution) => resolution,
                Err(Undecided::UnknownToken) => return self.unknown_token(ask, uri, started),
                Err(Undecided::Failure(cause)) => {
                    return self.not_decided(ask, Some(uri.clone()), cause, started);
                }
            };
            let (reader, resolution) = match resolution {
                Some((subject, resolution)) => (Some(subject), resolution),
                None => (None, None),
            };
            let reads = match &reader {
                Some(reader) => {
                    self.parts
                        .counter
                        .reserve(&reader.user_id, target.kind, target.history_room())
                        .await
                }
                None => AccountReads::default(),
            };
            // The account was locked (by this replica or another) after its token was remembered: ask the
            // homeserver again, which now refuses the token, so the read goes to the homeserver, which says the
            // account is locked. A resolution made after the lock (the account was unlocked since) is current.
            if let (Some(tokens), Some(resolution), Some(locked_at), false) =
                (&self.tokens, &resolution, reads.locked_at, stale)
                && resolution.cached
                && resolution.resolved_at < locked_at
            {
                if let Some(reader) = &reader {
                    self.parts.counter.refund(&reader.user_id, &reads).await;
                }
                tokens.forget(resolution).await;
                stale = true;
                continue;
            }
            break (reader, resolution, reads);
        };
        let room = match (&self.rooms, target.room_id.as_deref()) {
            (Some(rooms), Some(room_id)) if !policy.read_rules_on_room.is_empty() => {
                match rooms.room(room_id).await {
                    Ok(room) => room,
                    Err(err) => {
                        debug!(%err, "reads: cannot read the room's attributes");
                        if let Some(reader) = &reader {
                            self.parts.counter.refund(&reader.user_id, &reads).await;
                        }
                        return self.not_decided(
                            ask,
                            Some(uri.clone()),
                            NotDecided::HomeserverUnavailable,
                            started,
                        );
                    }
                }
            }
            _ => None,
        };
        let request = ReadRequest {
            request_id: ask.request_id.to_owned(),
            reader,
            target: target.clone(),
            room,
        };
        let decision = decide_read(&policy, &request, &reads.counts);
        let answered_allow = self.parts.mode == Mode::Shadow || decision.effect == Effect::Allow;
        if let Some(reader) = &request.reader
            && !answered_allow
        {
            // Refused: the read does not count.
            self.parts.counter.refund(&reader.user_id, &reads).await;
        }
        let mut retry_after = None;
        if decision.effect == Effect::Deny && only_rates(&decision) {
            retry_after = Some(reads.counts.retry_after(target).max(Duration::from_secs(1)));
            // Containment is for accounts roomguard resolved from a token, never for one a caller names.
            if let (Some(reader), Some(_), Mode::Enforce) =
                (&request.reader, &resolution, self.parts.mode)
            {
                self.contain(reader, &decision, resolution.as_ref()).await;
            }
        }
        let answer = ReadAnswer {
            allow: answered_allow,
            shadow: self.parts.mode == Mode::Shadow,
            target: Some(request.target),
            user_id: request.reader.map(|r| r.user_id),
            retry_after,
            not_decided: None,
            decision,
        };
        self.finish(ask, answer, started)
    }

    /// The account behind the request: the caller's, the token's, or none. `Ok(None)`: no account (on the legacy
    /// media paths, no token or one the homeserver does not know). A read without any token elsewhere is refused
    /// ([`Undecided::Failure`] with [`NotDecided::MissingToken`]).
    async fn account(
        &self,
        ask: &ReadAsk<'_>,
        uri: &ReadUri,
    ) -> Result<Option<(Subject, Option<Resolution>)>, Undecided> {
        if let Some(reader) = &ask.reader {
            return Ok(Some((reader.clone(), None)));
        }
        let header = ask.authorization.and_then(bearer);
        // As the homeserver reads it: the header first, else the query parameter.
        let Some(token) = header.or(uri.query_token.as_deref()) else {
            // Synapse serves these reads to an account only, and it reads a token in a form-encoded POST body too
            // (Twisted merges the body into the arguments), which no proxy passes on: a read with no token in the
            // header or the URI is refused as Synapse itself refuses one (401 M_MISSING_TOKEN), so that it can never
            // be served undecided. The legacy media paths serve without an account: the policy decides them.
            return if uri.target.kind.is_counted() && !uri.target.legacy_media {
                Err(Undecided::Failure(NotDecided::MissingToken))
            } else {
                Ok(None)
            };
        };
        let Some(tokens) = &self.tokens else {
            return Err(Undecided::Failure(NotDecided::HomeserverUnavailable));
        };
        match tokens.resolve(token, uri.as_user.as_deref()).await {
            Ok(resolution) => match resolution.resolved.subject() {
                Some(subject) => Ok(Some((subject, Some(resolution)))),
                // The legacy media paths serve without looking at the token: decide as without an account.
                None if uri.target.legacy_media => Ok(None),
                None => Err(Undecided::UnknownToken),
            },
            Err(err) => {
                debug!(%err, "reads: cannot resolve an access token");
                Err(Undecided::Failure(NotDecided::HomeserverUnavailable))
            }
        }
    }

    /// Counts a refusal for a rate and, past `reads.lock_account_after` in the hour, locks the account once. The
    /// lock itself (an admin API call) runs on a task of its own, which the answer waits for (so that the account's
    /// next request meets the lock) but which the read's time budget cannot cut off between claiming the lock and
    /// making it: a budget that runs out drops the wait, not the task.
    async fn contain(
        &self,
        reader: &Subject,
        decision: &Decision,
        resolution: Option<&Resolution>,
    ) {
        let limit = self.parts.lock_account_after;
        if limit == 0 {
            return;
        }
        let refusals = self.parts.counter.refused(&reader.user_id).await;
        if refusals < limit || decision.roles.iter().any(|r| r == "admin") || reader.server_admin {
            return;
        }
        let Some(homeserver) = self.parts.homeserver.clone() else {
            return;
        };
        let counter = self.parts.counter.clone();
        let metrics = self.parts.metrics.clone();
        let tokens = self.tokens.clone();
        let resolution = resolution.cloned();
        let user = reader.user_id.clone();
        let decision_id = decision.decision_id.clone();
        let lock = tokio::spawn(async move {
            if !counter.claim_lock(&user).await {
                return;
            }
            match homeserver.lock(&user).await {
                Ok(()) => {
                    metrics.reads.account_locked();
                    warn!(
                        user_id = %user,
                        refusals,
                        %decision_id,
                        "reads: account locked after {refusals} reads refused for a rate in an hour (unlock: PUT \
                         /_synapse/admin/v2/users/<user> {{\"locked\": false}})"
                    );
                    if let (Some(tokens), Some(resolution)) = (tokens, resolution) {
                        tokens.forget(&resolution).await;
                    }
                }
                Err(err) => {
                    metrics.reads.lock_failed();
                    counter.release_lock(&user).await;
                    error!(user_id = %user, %err, "reads: cannot lock the account");
                }
            }
        });
        let _ = lock.await;
    }

    /// The homeserver does not know the token: allowed, not decided.
    fn unknown_token(&self, ask: &ReadAsk<'_>, uri: &ReadUri, started: Instant) -> ReadAnswer {
        let policy = self.store.current();
        self.parts
            .metrics
            .reads
            .not_decided(NotDecided::UnknownToken);
        let answer = ReadAnswer {
            decision: undecided_read(&policy, ask.request_id, Effect::Allow, UNKNOWN_TOKEN),
            allow: true,
            shadow: self.parts.mode == Mode::Shadow,
            target: Some(uri.target.clone()),
            user_id: None,
            retry_after: None,
            not_decided: Some(NotDecided::UnknownToken),
        };
        self.finish(ask, answer, started)
    }

    /// A read roomguard cannot decide, answered by the failure mode.
    fn not_decided(
        &self,
        ask: &ReadAsk<'_>,
        uri: Option<ReadUri>,
        cause: NotDecided,
        started: Instant,
    ) -> ReadAnswer {
        let policy = self.store.current();
        self.parts.metrics.reads.not_decided(cause);
        // A read without a token is refused in every mode, as the homeserver refuses it; the others follow the
        // failure mode.
        let (effect, code) = match (cause, self.parts.failure_mode) {
            (NotDecided::MissingToken, _) => (Effect::Deny, MISSING_TOKEN),
            (_, ReadFailureMode::Open) => (Effect::Allow, READ_GUARD_UNAVAILABLE),
            (_, ReadFailureMode::Closed) => (Effect::Deny, READ_GUARD_UNAVAILABLE),
        };
        let enforced = self.parts.mode == Mode::Enforce || cause == NotDecided::MissingToken;
        let answer = ReadAnswer {
            decision: undecided_read(&policy, ask.request_id, effect, code),
            allow: effect == Effect::Allow || !enforced,
            shadow: self.parts.mode == Mode::Shadow,
            target: uri.map(|u| u.target),
            user_id: ask.reader.as_ref().map(|r| r.user_id.clone()),
            retry_after: None,
            not_decided: Some(cause),
        };
        self.finish(ask, answer, started)
    }

    /// A malformed request: refused (whatever the mode: no homeserver serves it either).
    fn invalid(
        &self,
        ask: &ReadAsk<'_>,
        err: &dyn std::fmt::Display,
        started: Instant,
    ) -> ReadAnswer {
        let policy = self.store.current();
        self.parts.metrics.reads.not_decided(NotDecided::Invalid);
        debug!(%err, front = ask.front.as_str(), "reads: malformed request refused");
        let answer = ReadAnswer {
            decision: undecided_read(&policy, ask.request_id, Effect::Deny, INVALID_READ_REQUEST),
            allow: false,
            shadow: self.parts.mode == Mode::Shadow,
            target: None,
            user_id: None,
            retry_after: None,
            not_decided: Some(NotDecided::Invalid),
        };
        self.finish(ask, answer, started)
    }

    /// Counts and logs the answer.
    fn finish(&self, ask: &ReadAsk<'_>, answer: ReadAnswer, started: Instant) -> ReadAnswer {
        let latency = started.elapsed();
        let metrics = &self.parts.metrics;
        metrics.decision(RPC, self.parts.mode.as_str(), &answer.decision, latency);
        metrics.reads.decided(answer.kind(), &answer.decision);
        if self.parts.decision_log.is_on() {
            let user_id = answer.user_id.as_ref().map_or("", |u| u.as_str());
            let media_id = answer
                .target
                .as_ref()
                .and_then(|t| t.media_id.as_deref())
                .unwrap_or("");
            let entry = Entry::new(
                RPC,
                user_id,
                answer.room_id().unwrap_or(""),
                &answer.decision,
                latency,
                answer.shadow,
            )
            .with_read(ReadEntry {
                kind: answer.kind().as_str(),
                media_id,
                front: ask.front.as_str(),
                not_decided: answer.not_decided.map_or("", NotDecided::as_str),
            });
            self.parts.decision_log.log(&entry);
        }
        answer
    }

    /// The current policy (tests).
    pub fn policy(&self) -> Arc<PolicySnapshot> {
        self.store.current()
    }
}

/// The token of an `Authorization: Bearer <token>` header (the scheme in any case, as HTTP has it); `None` for
/// another scheme or an over-long header.
pub fn bearer(header: &str) -> Option<&str> {
    if header.len() > MAX_AUTHORIZATION_BYTES {
        return None;
    }
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::read::ReadKind;

    /// Only a bearer token is a token; the scheme's case does not matter, an over-long header is none.
    #[test]
    fn bearer_tokens_are_read_from_the_header() {
        assert_eq!(bearer("Bearer syt_abc"), Some("syt_abc"));
        assert_eq!(bearer("bearer  syt_abc "), Some("syt_abc"));
        assert_eq!(bearer("Basic dXNlcjpwYXNz"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("Bearer"), None);
        let long = format!("Bearer {}", "a".repeat(MAX_AUTHORIZATION_BYTES));
        assert_eq!(bearer(&long), None);
    }

    /// Every kind has a front-independent name in the log.
    #[test]
    fn fronts_have_names() {
        assert_eq!(Front::AuthRequest.as_str(), "auth_request");
        assert_eq!(Front::ExtAuthz.as_str(), "ext_authz");
        assert_eq!(Front::Rpc.as_str(), "rpc");
        assert!(ReadKind::History.is_counted());
    }
}
