//! `roomguard.v1.PolicyService`: converts, decides on the current snapshot, converts back.

use std::{sync::Arc, time::SystemTime};

use tonic::{Request, Response, Status};
use tracing::{debug, instrument};

use crate::{
    decide::{decide_publish, decide_send},
    proto::{self, policy_service_server::PolicyService},
    request::{PublishRequest, SendRequest},
    store::PolicyStore,
};

/// The gRPC service, deciding on whatever snapshot is current when each call begins.
#[derive(Debug, Clone)]
pub struct PolicyServer {
    store: Arc<PolicyStore>,
}

impl PolicyServer {
    /// A service deciding with `store`'s current policy.
    pub fn new(store: Arc<PolicyStore>) -> Self {
        PolicyServer { store }
    }
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
        let request = PublishRequest::try_from(request.into_inner())?;
        let policy = self.store.current();
        let decision = guarded("check_room_publish", || decide_publish(&policy, &request))?;
        tracing::Span::current().record("decision_id", decision.decision_id.as_str());
        tracing::Span::current().record("effect", decision.effect.as_str());
        debug!(room_id = %request.room.room_id, user_id = %request.requester.user_id, codes = ?decision.codes(), "decided");
        Ok(Response::new(proto::CheckRoomPublishResponse {
            decision: Some(decision.into()),
        }))
    }

    #[instrument(name = "check_message_send", skip_all, fields(decision_id, effect))]
    async fn check_message_send(
        &self,
        request: Request<proto::CheckMessageSendRequest>,
    ) -> Result<Response<proto::CheckMessageSendResponse>, Status> {
        let request = SendRequest::try_from(request.into_inner())?;
        let policy = self.store.current();
        let decision = guarded("check_message_send", || decide_send(&policy, &request))?;
        tracing::Span::current().record("decision_id", decision.decision_id.as_str());
        tracing::Span::current().record("effect", decision.effect.as_str());
        debug!(room_id = %request.room.room_id, user_id = %request.sender.user_id, codes = ?decision.codes(), "decided");
        Ok(Response::new(proto::CheckMessageSendResponse {
            decision: Some(decision.into()),
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
