//! `roomguard.v1.PolicyService`: converts, decides on the current snapshot, counts and logs the decision, converts
//! back (and, in shadow mode, answers ALLOW carrying the policy's decision).

use std::{
    sync::Arc,
    time::{Instant, SystemTime},
};

use tonic::{Request, Response, Status};
use tracing::{debug, instrument};

use crate::{
    domain::decision::Decision,
    domain::request::{PublishRequest, SendRequest},
    grpc::proto::{self, policy_service_server::PolicyService},
    ops::admission::Admission,
    ops::config::Mode,
    ops::decision_log::{DecisionLog, Entry},
    ops::metrics::Metrics,
    policy::decide::{decide_publish, decide_send},
    policy::store::PolicyStore,
};

/// The gRPC service, deciding on whatever snapshot is current when each call begins.
#[derive(Debug, Clone)]
pub struct PolicyServer {
    store: Arc<PolicyStore>,
    mode: Mode,
    metrics: Arc<Metrics>,
    decision_log: DecisionLog,
    admission: Admission,
}

impl PolicyServer {
    /// A service deciding with `store`'s current policy (enforcing, no decision log, metrics of its own, no
    /// concurrency limit).
    pub fn new(store: Arc<PolicyStore>) -> Self {
        let metrics = Arc::new(Metrics::new());
        PolicyServer {
            store,
            mode: Mode::Enforce,
            admission: Admission::unlimited(metrics.clone()),
            metrics,
            decision_log: DecisionLog::off(),
        }
    }

    /// The same service in `mode`, counting into `metrics`, logging to `decision_log`, deciding at most as many
    /// calls at once as `admission` admits.
    pub fn with_operations(
        self,
        mode: Mode,
        metrics: Arc<Metrics>,
        decision_log: DecisionLog,
        admission: Admission,
    ) -> Self {
        PolicyServer {
            mode,
            metrics,
            decision_log,
            admission,
            ..self
        }
    }

    /// Counts and logs `decision`, then converts it; in shadow mode the answer is ALLOW, marked `shadow`, with the
    /// policy's effect in `policy_effect` and its reasons unchanged.
    fn answer(
        &self,
        rpc: &'static str,
        user_id: &str,
        room_id: &str,
        decision: Decision,
        started: Instant,
    ) -> proto::Decision {
        let latency = started.elapsed();
        let shadow = self.mode == Mode::Shadow;
        self.metrics
            .decision(rpc, self.mode.as_str(), &decision, latency);
        self.decision_log.log(&Entry::new(
            rpc, user_id, room_id, &decision, latency, shadow,
        ));
        let mut answer = proto::Decision::from(decision);
        if shadow {
            answer.shadow = true;
            answer.effect = proto::Effect::Allow as i32;
        }
        answer
    }
}

/// Runs a decision on tokio's blocking pool. A large policy costs milliseconds of CPU per decision; on the async
/// workers that would stall every connection, so that calls queue in HTTP/2 buffers instead of being admitted or shed
/// by the overload layer, and the request timeout could never fire. The price is one thread handoff per call (not
/// measured here).
async fn off_the_runtime<T: Send + 'static>(
    decide: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(decide)
        .await
        .map_err(|err| Status::internal(format!("the decision task failed: {err}")))
}

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
        }))
    }

    #[instrument(name = "check_room_publish", skip_all, fields(decision_id, effect))]
    async fn check_room_publish(
        &self,
        request: Request<proto::CheckRoomPublishRequest>,
    ) -> Result<Response<proto::CheckRoomPublishResponse>, Status> {
        let started = Instant::now();
        // The request is decoded by now: a client that never finishes its body never holds a permit.
        let _admitted = self.admission.admit()?;
        let request = PublishRequest::try_from(request.into_inner())?;
        let store = self.store.clone();
        let (request, decision) = off_the_runtime(move || {
            let decision = guarded("check_room_publish", || {
                decide_publish(&store.current(), &request)
            });
            (request, decision)
        })
        .await?;
        let decision = decision?;
        tracing::Span::current().record("decision_id", decision.decision_id.as_str());
        tracing::Span::current().record("effect", decision.effect.as_str());
        debug!(room_id = %request.room.room_id, user_id = %request.requester.user_id, codes = ?decision.codes(), "decided");
        let answer = self.answer(
            "CheckRoomPublish",
            request.requester.user_id.as_str(),
            &request.room.room_id,
            decision,
            started,
        );
        Ok(Response::new(proto::CheckRoomPublishResponse {
            decision: Some(answer),
        }))
    }

    #[instrument(name = "check_message_send", skip_all, fields(decision_id, effect))]
    async fn check_message_send(
        &self,
        request: Request<proto::CheckMessageSendRequest>,
    ) -> Result<Response<proto::CheckMessageSendResponse>, Status> {
        let started = Instant::now();
        // The request is decoded by now: a client that never finishes its body never holds a permit.
        let _admitted = self.admission.admit()?;
        let request = SendRequest::try_from(request.into_inner())?;
        let store = self.store.clone();
        let (request, decision) = off_the_runtime(move || {
            let decision = guarded("check_message_send", || {
                decide_send(&store.current(), &request)
            });
            (request, decision)
        })
        .await?;
        let decision = decision?;
        tracing::Span::current().record("decision_id", decision.decision_id.as_str());
        tracing::Span::current().record("effect", decision.effect.as_str());
        debug!(room_id = %request.room.room_id, user_id = %request.sender.user_id, codes = ?decision.codes(), "decided");
        let answer = self.answer(
            "CheckMessageSend",
            request.sender.user_id.as_str(),
            &request.room.room_id,
            decision,
            started,
        );
        Ok(Response::new(proto::CheckMessageSendResponse {
            decision: Some(answer),
        }))
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
fn guarded<T>(rpc: &'static str, decide: impl FnOnce() -> T) -> Result<T, Status> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(decide)).map_err(|_| {
        tracing::error!(rpc, "decision panicked; answering INTERNAL");
        Status::internal("internal error while deciding; the event is logged")
    })
}
