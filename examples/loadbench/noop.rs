//! The baseline: `roomguard.v1.PolicyService` from the same generated code, on plain tonic defaults (no layers, no
//! connection gate, no admission, no log), answering every decision rpc with one fixed ALLOW decision shaped like
//! roomguard's (one reason, a 36-character id, a policy version, a role), so that both servers encode about the same
//! bytes. Whatever roomguard costs beyond this is the cost of deciding, counting, logging and guarding.
//!
//! For the read benchmark it also answers Envoy's ext_authz `Check` with OK, and (with `--http`) every HTTP request
//! with 204: the static auth endpoint a proxy would ask if nothing were decided.

use std::path::PathBuf;

use envoy_types::pb::envoy::service::auth::v3::{
    CheckRequest, CheckResponse, OkHttpResponse,
    authorization_server::{Authorization, AuthorizationServer},
    check_response::HttpResponse,
};
use roomguard::grpc::proto::{
    self,
    policy_service_server::{PolicyService, PolicyServiceServer},
};
use tokio::net::{TcpListener, UnixListener};
use tokio_stream::wrappers::UnixListenerStream;
use tonic::{
    Request, Response, Status,
    transport::{Server, server::TcpIncoming},
};

/// The no-op service.
#[derive(Debug, Clone)]
struct Noop {
    decision: proto::Decision,
}

impl Noop {
    fn new() -> Self {
        Noop {
            decision: proto::Decision {
                effect: proto::Effect::Allow as i32,
                reasons: vec![proto::Reason {
                    code: "ALLOWED".into(),
                    rule: "send.default-allow".into(),
                    message: "nothing in the policy refuses this message".into(),
                }],
                decision_id: "0193a6f0-0000-7000-8000-000000000000".into(),
                request_id: String::new(),
                policy_version:
                    "sha256:0000000000000000000000000000000000000000000000000000000000000000".into(),
                roles: vec!["agent".into()],
                classification: "none".into(),
                shadow: false,
                policy_effect: proto::Effect::Allow as i32,
            },
        }
    }

    fn answer(&self, request_id: String) -> Option<proto::Decision> {
        Some(proto::Decision {
            request_id,
            ..self.decision.clone()
        })
    }
}

#[tonic::async_trait]
impl PolicyService for Noop {
    async fn check_room_publish(
        &self,
        request: Request<proto::CheckRoomPublishRequest>,
    ) -> Result<Response<proto::CheckRoomPublishResponse>, Status> {
        Ok(Response::new(proto::CheckRoomPublishResponse {
            decision: self.answer(request.into_inner().request_id),
        }))
    }

    async fn check_message_send(
        &self,
        request: Request<proto::CheckMessageSendRequest>,
    ) -> Result<Response<proto::CheckMessageSendResponse>, Status> {
        Ok(Response::new(proto::CheckMessageSendResponse {
            decision: self.answer(request.into_inner().request_id),
        }))
    }

    async fn get_policy_status(
        &self,
        _request: Request<proto::GetPolicyStatusRequest>,
    ) -> Result<Response<proto::GetPolicyStatusResponse>, Status> {
        Ok(Response::new(proto::GetPolicyStatusResponse::default()))
    }

    async fn check_room_join(
        &self,
        request: Request<proto::CheckRoomJoinRequest>,
    ) -> Result<Response<proto::CheckRoomJoinResponse>, Status> {
        Ok(Response::new(proto::CheckRoomJoinResponse {
            decision: self.answer(request.into_inner().request_id),
        }))
    }

    async fn check_room_state_change(
        &self,
        request: Request<proto::CheckRoomStateChangeRequest>,
    ) -> Result<Response<proto::CheckRoomStateChangeResponse>, Status> {
        Ok(Response::new(proto::CheckRoomStateChangeResponse {
            decision: self.answer(request.into_inner().request_id),
        }))
    }

    async fn check_media_upload(
        &self,
        _request: Request<tonic::Streaming<proto::CheckMediaUploadRequest>>,
    ) -> Result<Response<proto::CheckMediaUploadResponse>, Status> {
        Ok(Response::new(proto::CheckMediaUploadResponse {
            decision: self.answer(String::new()),
            scan: None,
        }))
    }

    async fn check_read(
        &self,
        request: Request<proto::CheckReadRequest>,
    ) -> Result<Response<proto::CheckReadResponse>, Status> {
        Ok(Response::new(proto::CheckReadResponse {
            decision: self.answer(request.into_inner().request_id),
            ..Default::default()
        }))
    }
}

#[tonic::async_trait]
impl Authorization for Noop {
    async fn check(
        &self,
        _request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        Ok(Response::new(CheckResponse {
            status: Some(envoy_types::pb::google::rpc::Status::default()),
            http_response: Some(HttpResponse::OkResponse(OkHttpResponse::default())),
            ..Default::default()
        }))
    }
}

/// Answers 204 to every HTTP/1.1 request on `addr`, on kept-alive connections.
async fn serve_http(addr: String) -> anyhow::Result<()> {
    let listener = TcpListener::bind(&addr).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(async move {
            let service = hyper::service::service_fn(|_request| async {
                let mut response =
                    hyper::Response::new(http_body_util::Empty::<hyper::body::Bytes>::new());
                *response.status_mut() = hyper::StatusCode::NO_CONTENT;
                Ok::<_, std::convert::Infallible>(response)
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Serves the no-op service on `listen` (TCP), on `unix`, and answers 204 on `http`, until the process is killed.
pub async fn serve(
    listen: String,
    unix: Option<PathBuf>,
    http: Option<String>,
) -> anyhow::Result<()> {
    if let Some(addr) = http {
        tokio::spawn(serve_http(addr));
    }
    // No Nagle delay, as roomguard's own accept loop sets: otherwise small answers would wait for an ACK.
    let tcp = TcpIncoming::from(TcpListener::bind(&listen).await?).with_nodelay(Some(true));
    let service = PolicyServiceServer::new(Noop::new());
    let tcp = Server::builder()
        .add_service(service.clone())
        .add_service(AuthorizationServer::new(Noop::new()))
        .serve_with_incoming(tcp);
    match unix {
        Some(path) => {
            let unix = UnixListener::bind(path)?;
            let unix = Server::builder()
                .add_service(service)
                .serve_with_incoming(UnixListenerStream::new(unix));
            tokio::try_join!(tcp, unix)?;
        }
        None => tcp.await?,
    }
    Ok(())
}
