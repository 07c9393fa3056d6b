//! Envoy's external authorization service (`envoy.service.auth.v3.Authorization/Check`), served on roomguard's gRPC
//! listener so that an Envoy or Istio gateway in front of the homeserver asks it about reads with no adapter. The
//! types are the `envoy-types` crate's (Envoy's protos, generated for tonic).
//!
//! Envoy sends the original request's method, path (with its query, undecoded) and headers; roomguard decides it as
//! every read ([`crate::ops::reads::ReadGuard`]). An allowed read is answered OK; a refused one with the
//! `denied_response` Envoy sends the client as it is: the status (429, 403, 401, 400, 503), the Matrix error body, its
//! `Content-Type`, `Retry-After` for a rate, and CORS headers so that a browser client can read it. A gRPC error
//! (roomguard overloaded past its own answer, the token check, a timeout) is left to Envoy's `failure_mode_allow`.

use envoy_types::pb::{
    envoy::{
        config::core::v3::{HeaderValue, HeaderValueOption},
        service::auth::v3::{
            AttributeContext, CheckRequest, CheckResponse, DeniedHttpResponse, OkHttpResponse,
            attribute_context::HttpRequest, authorization_server::Authorization,
            check_response::HttpResponse,
        },
        r#type::v3::HttpStatus,
    },
    google::rpc,
};
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::{
    domain::limits::MAX_ID_BYTES,
    grpc::PolicyServer,
    ops::reads::{Front, ReadAnswer, ReadAsk},
};

/// `google.rpc.Code.OK`.
const OK: i32 = 0;
/// `google.rpc.Code.PERMISSION_DENIED`.
const PERMISSION_DENIED: i32 = 7;

#[tonic::async_trait]
impl Authorization for PolicyServer {
    #[instrument(level = "debug", name = "ext_authz_check", skip_all)]
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        let request = request.into_inner();
        let http = request
            .attributes
            .and_then(|a: AttributeContext| a.request)
            .and_then(|r| r.http)
            .ok_or_else(|| {
                Status::invalid_argument(
                    "attributes.request.http: is required (an HTTP request to check)",
                )
            })?;
        let authorization = header(&http, "authorization");
        let request_id = if http.id.len() <= MAX_ID_BYTES {
            http.id.as_str()
        } else {
            ""
        };
        let ask = ReadAsk {
            request_id,
            method: &http.method,
            uri: &http.path,
            authorization: authorization.as_deref(),
            reader: None,
            front: Front::ExtAuthz,
        };
        let answer = self.reads().check(&ask).await;
        Ok(Response::new(check_response(&answer)))
    }
}

/// A request header by its lower-case name, from `headers` or, when Envoy encodes raw headers, `header_map`.
fn header(http: &HttpRequest, name: &str) -> Option<String> {
    if let Some(value) = http.headers.get(name) {
        return Some(value.clone());
    }
    http.header_map.as_ref().and_then(|map| {
        map.headers
            .iter()
            .find(|h| h.key.eq_ignore_ascii_case(name))
            .map(|h| {
                if h.raw_value.is_empty() {
                    h.value.clone()
                } else {
                    String::from_utf8_lossy(&h.raw_value).into_owned()
                }
            })
    })
}

/// The answer in Envoy's terms.
fn check_response(answer: &ReadAnswer) -> CheckResponse {
    let mut headers = vec![
        option("x-roomguard-decision-id", &answer.decision.decision_id),
        option("x-roomguard-kind", answer.kind().as_str()),
    ];
    let Some(status) = answer.status() else {
        return CheckResponse {
            status: Some(rpc::Status {
                code: OK,
                ..Default::default()
            }),
            http_response: Some(HttpResponse::OkResponse(OkHttpResponse::default())),
            ..Default::default()
        };
    };
    headers.extend([
        option("content-type", "application/json"),
        option("cache-control", "no-store"),
        option("x-roomguard-reasons", &answer.codes()),
        // Synapse answers every client request with these: a browser client must be able to read a refusal too.
        option("access-control-allow-origin", "*"),
        option(
            "access-control-allow-methods",
            "GET, HEAD, POST, PUT, DELETE, OPTIONS",
        ),
        option(
            "access-control-allow-headers",
            "X-Requested-With, Content-Type, Authorization, Date",
        ),
        option("access-control-expose-headers", "Retry-After"),
    ]);
    if status == 429
        && let Some(secs) = answer.retry_after_secs()
    {
        headers.push(option("retry-after", &secs.to_string()));
    }
    CheckResponse {
        status: Some(rpc::Status {
            code: PERMISSION_DENIED,
            message: answer.codes(),
            ..Default::default()
        }),
        http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus {
                code: i32::from(status),
            }),
            headers,
            body: answer.matrix_error(),
        })),
        ..Default::default()
    }
}

fn option(key: &str, value: &str) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.to_owned(),
            value: value.to_owned(),
            ..Default::default()
        }),
        ..Default::default()
    }
}
