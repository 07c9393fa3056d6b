//! `roomguard.v1.PolicyService`: converts, decides on the current snapshot, counts and logs the decision, converts
//! back (and, in shadow mode, answers ALLOW carrying the policy's decision).

use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use tonic::{Request, Response, Status};
use tracing::{debug, instrument};

use crate::{
    domain::{
        decision::{Decision, Effect},
        request::{JoinRequest, PublishRequest, Question, SendRequest, StateChangeRequest},
    },
    grpc::convert::ReadQuestion,
    grpc::{
        InvalidArgument,
        proto::{self, policy_service_server::PolicyService},
    },
    ops::{
        admission::{Admission, Admitted},
        counters::{DEFAULT_MAX_TRACKED_USERS, JoinCounter, ReadCounter},
        decision_cost::{CostEstimate, Route},
        decision_log::{DecisionLog, Entry, MediaEntry},
        metrics::Metrics,
        reads::{Front, ReadAsk, ReadGuard, ReadGuardParts},
        scan_slots::ScanSlots,
        {media_limits::MediaConfig, media_limits::OcrMode, mode::Mode},
    },
    policy::{
        PolicySnapshot,
        decide::{decide_join, decide_publish, decide_send, decide_state_change},
        reasons::JOIN_RATE_EXCEEDED,
        store::PolicyStore,
    },
};

/// The gRPC service, deciding on whatever snapshot is current when each call begins.
#[derive(Debug, Clone)]
pub struct PolicyServer {
    store: Arc<PolicyStore>,
    mode: Mode,
    metrics: Arc<Metrics>,
    decision_log: DecisionLog,
    admission: Admission,
    join_counter: Arc<JoinCounter>,
    scans: ScanSlots,
    reads: ReadGuard,
    costs: Arc<DecisionCosts>,
    /// Test support: every decision also takes this long (see [`crate::grpc::server::Options::decision_delay`]).
    decision_delay: Duration,
}

/// The decision time of each decision rpc on the current policy, which decides where its next call runs (see
/// [`crate::ops::decision_cost`]).
#[derive(Debug, Default)]
struct DecisionCosts {
    publish: CostEstimate,
    send: CostEstimate,
    join: CostEstimate,
    state_change: CostEstimate,
}

/// A decision rpc's request once admitted and converted: what the rest of its path needs.
struct Asked<Q> {
    question: Q,
    /// The encoded request's size, for the cost estimate.
    request_bytes: usize,
    /// When the call began, for its latency.
    started: Instant,
    /// The admission permit, held until the call is answered.
    _admitted: Admitted,
}

impl PolicyServer {
    /// A service deciding with `store`'s current policy (enforcing, no decision log, metrics of its own, no
    /// concurrency limit).
    pub fn new(store: Arc<PolicyStore>) -> Self {
        let metrics = Arc::new(Metrics::new());
        let admission = Admission::unlimited(metrics.clone());
        let reads = ReadGuard::new(
            store.clone(),
            ReadGuardParts {
                mode: Mode::Enforce,
                failure_mode: Default::default(),
                homeserver: None,
                token_cache: Duration::from_secs(60),
                token_cache_entries: 1000,
                room_cache: Duration::from_secs(30),
                lock_account_after: 0,
                counter: Arc::new(ReadCounter::in_memory(
                    DEFAULT_MAX_TRACKED_USERS,
                    metrics.clone(),
                )),
                admission: admission.clone(),
                budget: Duration::from_secs(1),
                metrics: metrics.clone(),
                decision_log: DecisionLog::off(),
            },
        );
        PolicyServer {
            store,
            mode: Mode::Enforce,
            admission,
            join_counter: Arc::new(JoinCounter::in_memory(
                DEFAULT_MAX_TRACKED_USERS,
                metrics.clone(),
            )),
            scans: ScanSlots::new(MediaConfig::default(), metrics.clone()),
            reads,
            metrics,
            decision_log: DecisionLog::off(),
            costs: Arc::new(DecisionCosts::default()),
            decision_delay: Duration::ZERO,
        }
    }

    /// The same service with every decision taking `delay` longer (test support: a deliberately slow policy).
    pub(crate) fn with_decision_delay(self, delay: Duration) -> Self {
        PolicyServer {
            decision_delay: delay,
            ..self
        }
    }

    /// The same service in `mode`, counting into `metrics`, logging to `decision_log`, deciding at most as many
    /// calls at once as `admission` admits, counting public joins in `join_counter`, scanning uploads in `scans`,
    /// deciding reads with `reads`.
    #[expect(
        clippy::too_many_arguments,
        reason = "each is one operation's part, named at the one call site"
    )]
    pub fn with_operations(
        self,
        mode: Mode,
        metrics: Arc<Metrics>,
        decision_log: DecisionLog,
        admission: Admission,
        join_counter: Arc<JoinCounter>,
        scans: ScanSlots,
        reads: ReadGuard,
    ) -> Self {
        PolicyServer {
            mode,
            metrics,
            decision_log,
            admission,
            join_counter,
            scans,
            reads,
            ..self
        }
    }

    /// The read guard.
    pub(crate) fn reads(&self) -> &ReadGuard {
        &self.reads
    }

    /// The upload scan slots and limits.
    pub(crate) fn scans(&self) -> &ScanSlots {
        &self.scans
    }

    /// The policy store.
    pub(crate) fn store(&self) -> Arc<PolicyStore> {
        self.store.clone()
    }

    /// The metrics.
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The one path of every decision rpc: admit (once the request is decoded, so a stalled body never holds a
    /// permit), convert to the domain question `Q` (bad input is `INVALID_ARGUMENT` naming the field), decide on the
    /// current snapshot with the panic guard, inline or on the blocking pool as `cost` says (see
    /// [`crate::ops::decision_cost`]), then count, log and answer (see [`PolicyServer::answer`]). An rpc only brings
    /// its question type, its decide function and its cost estimate; one that needs to wait on something around its
    /// decision (the join counter) calls the three steps itself.
    async fn decide<Q, P>(
        &self,
        rpc: &'static str,
        cost: fn(&DecisionCosts) -> &CostEstimate,
        request: P,
        decide: impl FnOnce(&PolicySnapshot, &Q) -> Decision + Send + 'static,
    ) -> Result<proto::Decision, Status>
    where
        P: prost::Message,
        Q: TryFrom<P, Error = InvalidArgument> + Question + Send + 'static,
    {
        let asked = self.ask::<Q, P>(request)?;
        let (asked, decision) = self.decide_asked(rpc, cost, asked, decide).await?;
        Ok(self.answer_asked(rpc, &asked, decision))
    }

    /// Admits the call and converts its request.
    fn ask<Q, P>(&self, request: P) -> Result<Asked<Q>, Status>
    where
        P: prost::Message,
        Q: TryFrom<P, Error = InvalidArgument>,
    {
        let started = Instant::now();
        let admitted = self.admission.admit()?;
        let request_bytes = request.encoded_len();
        let question = Q::try_from(request)?;
        Ok(Asked {
            question,
            request_bytes,
            started,
            _admitted: admitted,
        })
    }

    /// Decides `asked` on the current snapshot with the panic guard, inline or on the blocking pool.
    async fn decide_asked<Q>(
        &self,
        rpc: &'static str,
        cost: fn(&DecisionCosts) -> &CostEstimate,
        asked: Asked<Q>,
        decide: impl FnOnce(&PolicySnapshot, &Q) -> Decision + Send + 'static,
    ) -> Result<(Asked<Q>, Decision), Status>
    where
        Q: Send + 'static,
    {
        let Asked {
            question,
            request_bytes,
            started,
            _admitted,
        } = asked;
        let policy = self.store.current();
        let cost = cost(&self.costs);
        let delay = self.decision_delay;
        // The rpc's decide function behind the panic guard (and the test-only delay).
        let guarded_decide = move |policy: &PolicySnapshot, question: &Q| {
            if !delay.is_zero() {
                std::thread::sleep(delay);
            }
            guarded(rpc, || decide(policy, question))
        };
        let (question, decision, took) = match cost.route(&policy, request_bytes) {
            Route::Inline => {
                // Timed from the call's start: admission and conversion add well under a microsecond to an estimate
                // whose threshold is 100 µs, and it saves a clock read per call.
                let decision = guarded_decide(&policy, &question);
                (question, decision, started.elapsed())
            }
            Route::Blocking => {
                self.metrics.decided_off_the_workers();
                let policy = policy.clone();
                off_the_runtime(move || {
                    // Timed on the pool thread: the wait for a thread is not the decision's cost.
                    let deciding = Instant::now();
                    let decision = guarded_decide(&policy, &question);
                    (question, decision, deciding.elapsed())
                })
                .await?
            }
        };
        cost.record(&policy, request_bytes, took);
        let decision = decision?;
        let asked = Asked {
            question,
            request_bytes,
            started,
            _admitted,
        };
        Ok((asked, decision))
    }

    /// Records the decision in the call's span, then counts, logs and converts it.
    fn answer_asked<Q: Question>(
        &self,
        rpc: &'static str,
        asked: &Asked<Q>,
        decision: Decision,
    ) -> proto::Decision {
        let question = &asked.question;
        debug!(
            decision_id = %decision.decision_id,
            effect = decision.effect.as_str(),
            room_id = %question.room_id(),
            user_id = %question.asker(),
            codes = ?decision.codes(),
            "decided"
        );
        self.answer(
            rpc,
            question.asker().as_str(),
            question.room_id(),
            decision,
            asked.started,
            None,
        )
    }

    /// Counts and logs `decision`, then converts it; in shadow mode the answer is ALLOW, marked `shadow`, with the
    /// policy's effect in `policy_effect` and its reasons unchanged.
    pub(crate) fn answer(
        &self,
        rpc: &'static str,
        user_id: &str,
        room_id: &str,
        decision: Decision,
        started: Instant,
        media: Option<MediaEntry<'_>>,
    ) -> proto::Decision {
        let latency = started.elapsed();
        let shadow = self.mode == Mode::Shadow;
        self.metrics
            .decision(rpc, self.mode.as_str(), &decision, latency);
        if self.decision_log.is_on() {
            let entry = Entry::new(rpc, user_id, room_id, &decision, latency, shadow);
            self.decision_log.log(&match media {
                Some(media) => entry.with_media(media),
                None => entry,
            });
        }
        let mut answer = proto::Decision::from(decision);
        if shadow {
            answer.shadow = true;
            answer.effect = proto::Effect::Allow as i32;
        }
        answer
    }
}

/// Runs a slow decision on tokio's blocking pool. A large policy costs milliseconds of CPU per decision; on the async
/// workers that would stall every connection, so that calls queue in HTTP/2 buffers instead of being admitted or shed
/// by the overload layer, and the request timeout could never fire. The price is two thread wake-ups per call, more
/// than an ordinary decision costs: only slow ones come here.
async fn off_the_runtime<T: Send + 'static>(
    decide: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(decide)
        .await
        .map_err(|err| Status::internal(format!("the decision task failed: {err}")))
}

// Each rpc's span is at DEBUG: at the default INFO level a span per call was about 3 % of the server's CPU under
// load (the registry's slot, and the fmt layer formatting every recorded field into a string) for context that no
// INFO line inside a call reads; the decision log has every call, and the DEBUG `decided` line its id and effect.
#[tonic::async_trait]
impl PolicyService for PolicyServer {
    async fn get_policy_status(
        &self,
        _request: Request<proto::GetPolicyStatusRequest>,
    ) -> Result<Response<proto::GetPolicyStatusResponse>, Status> {
        let status = self.store.status();
        let (last_refused_at, last_refused_error) = match status.last_refusal {
            Some(refusal) => (Some(timestamp(refusal.at)), refusal.error),
            None => (None, String::new()),
        };
        Ok(Response::new(proto::GetPolicyStatusResponse {
            policy_version: status.policy_version,
            loaded_at: Some(timestamp(status.loaded_at)),
            rules: u32::try_from(status.rules).unwrap_or(u32::MAX),
            reloads_succeeded: status.reloads_succeeded,
            reloads_refused: status.reloads_refused,
            last_refused_at,
            last_refused_error,
            shared_counter_up: self.join_counter.shared_up(),
            reads_homeserver_up: self.metrics.reads.homeserver_up(),
            ocr_available: self.scans.config().ocr != OcrMode::Off
                && crate::documents::ocr_availability().is_ok(),
        }))
    }

    #[instrument(level = "debug", name = "check_room_publish", skip_all)]
    async fn check_room_publish(
        &self,
        request: Request<proto::CheckRoomPublishRequest>,
    ) -> Result<Response<proto::CheckRoomPublishResponse>, Status> {
        let decision = self
            .decide::<PublishRequest, _>(
                "CheckRoomPublish",
                |c| &c.publish,
                request.into_inner(),
                decide_publish,
            )
            .await?;
        Ok(Response::new(proto::CheckRoomPublishResponse {
            decision: Some(decision),
        }))
    }

    #[instrument(level = "debug", name = "check_message_send", skip_all)]
    async fn check_message_send(
        &self,
        request: Request<proto::CheckMessageSendRequest>,
    ) -> Result<Response<proto::CheckMessageSendResponse>, Status> {
        let decision = self
            .decide::<SendRequest, _>(
                "CheckMessageSend",
                |c| &c.send,
                request.into_inner(),
                decide_send,
            )
            .await?;
        Ok(Response::new(proto::CheckMessageSendResponse {
            decision: Some(decision),
        }))
    }

    #[instrument(level = "debug", name = "check_room_join", skip_all)]
    async fn check_room_join(
        &self,
        request: Request<proto::CheckRoomJoinRequest>,
    ) -> Result<Response<proto::CheckRoomJoinResponse>, Status> {
        const RPC: &str = "CheckRoomJoin";
        let asked = self.ask::<JoinRequest, _>(request.into_inner())?;
        // Read, decide, and count an allowed join in one place, so the request is never counted in its own decision.
        // Two joins of one user decided at the same instant (on this replica or another) may both read the same
        // count: the limit can be overshot by the joins in flight at once.
        let user = asked.question.user.user_id.clone();
        let recent = self.join_counter.count(&user).await;
        let (asked, decision) = self
            .decide_asked(
                RPC,
                |c| &c.join,
                asked,
                move |policy, join| decide_join(policy, join, recent),
            )
            .await?;
        // The caller acts on the answered effect, which shadow mode makes ALLOW. The join is counted before the
        // answer leaves, so that the user's next join, wherever it is decided, sees it.
        let answered_allow = self.mode == Mode::Shadow || decision.effect == Effect::Allow;
        if answered_allow && asked.question.counts_towards_join_rate() {
            self.join_counter
                .record(&user, decision.decision_id.as_str())
                .await;
        }
        if decision
            .reasons
            .iter()
            .any(|r| r.code == JOIN_RATE_EXCEEDED)
        {
            self.metrics.join_rate_limited();
        }
        let decision = self.answer_asked(RPC, &asked, decision);
        Ok(Response::new(proto::CheckRoomJoinResponse {
            decision: Some(decision),
        }))
    }

    #[instrument(level = "debug", name = "check_room_state_change", skip_all)]
    async fn check_room_state_change(
        &self,
        request: Request<proto::CheckRoomStateChangeRequest>,
    ) -> Result<Response<proto::CheckRoomStateChangeResponse>, Status> {
        let decision = self
            .decide::<StateChangeRequest, _>(
                "CheckRoomStateChange",
                |c| &c.state_change,
                request.into_inner(),
                decide_state_change,
            )
            .await?;
        Ok(Response::new(proto::CheckRoomStateChangeResponse {
            decision: Some(decision),
        }))
    }

    #[instrument(level = "debug", name = "check_read", skip_all)]
    async fn check_read(
        &self,
        request: Request<proto::CheckReadRequest>,
    ) -> Result<Response<proto::CheckReadResponse>, Status> {
        let started = Instant::now();
        let asked = ReadQuestion::try_from(request.into_inner())?;
        let ask = ReadAsk {
            request_id: &asked.request_id,
            method: &asked.method,
            uri: &asked.uri_text,
            authorization: asked.authorization.as_deref(),
            reader: asked.reader,
            front: Front::Rpc,
        };
        let answer = self.reads.check_parsed(&ask, asked.uri, started).await;
        Ok(Response::new(proto::CheckReadResponse::from(answer)))
    }

    #[instrument(level = "debug", name = "check_media_upload", skip_all)]
    async fn check_media_upload(
        &self,
        request: Request<tonic::Streaming<proto::CheckMediaUploadRequest>>,
    ) -> Result<Response<proto::CheckMediaUploadResponse>, Status> {
        self.upload(request.into_inner()).await.map(Response::new)
    }
}

fn timestamp(at: SystemTime) -> prost_types::Timestamp {
    let since = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    prost_types::Timestamp {
        seconds: i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(since.subsec_nanos()).unwrap_or(0),
    }
}

/// Runs a decision so that a bug (a panic) answers this one call with `INTERNAL` instead of tearing down the
/// connection and every call multiplexed on it. The log line names the rpc, never the request's content.
pub(crate) fn guarded<T>(rpc: &'static str, decide: impl FnOnce() -> T) -> Result<T, Status> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(decide)).map_err(|_| {
        tracing::error!(rpc, "decision panicked; answering INTERNAL");
        Status::internal("internal error while deciding; the event is logged")
    })
}
