//! The homeserver, as the read guard calls it: who owns an access token (`whoami`, the client API, with the token
//! itself), a room's attributes, whether an account is a server admin, and locking an account (Synapse's admin API,
//! with the admin token of `reads.admin_token_file`).
//!
//! Every call is bounded by `reads.homeserver_timeout_ms` and reads at most `MAX_BODY_BYTES` of the answer. An
//! access token is only ever sent to the homeserver it belongs to, in the `Authorization` header; no error message
//! or log line here quotes a token or a response body.

use std::{sync::Arc, time::Duration};

use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use serde::Deserialize;
use tracing::{info, warn};

use crate::{
    domain::{
        room::{HistoryVisibility, JoinRule, Room},
        subject::UserId,
    },
    ops::{
        https_client::{HttpsClient, encode, https_client},
        metrics::Metrics,
        read_metrics::HomeserverCall,
    },
};

/// The most of an answer read: whoami and room details are a few hundred bytes.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// Why the homeserver could not answer a call. Never quotes a token or a body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HomeserverError {
    /// No answer within `reads.homeserver_timeout_ms`.
    #[error("the homeserver did not answer within {0:?}")]
    Timeout(Duration),
    /// The connection failed.
    #[error("cannot reach the homeserver: {0}")]
    Unreachable(String),
    /// An answer roomguard cannot use (a 5xx, a rate limit, a body that is not the API's).
    #[error("the homeserver answered {0}")]
    Answer(String),
    /// The call needs the admin token and none is configured.
    #[error("no admin token (reads.admin_token_file)")]
    NoAdminToken,
}

/// Whose token it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Whoami {
    /// The token is an account's (or an application service's acting as that account).
    Account(UserId),
    /// The homeserver does not know the token (or refuses it: expired, logged out, a user outside an application
    /// service's namespace).
    Unknown,
    /// The token is a locked account's (`M_USER_LOCKED`): refused now, and its own again as soon as an admin
    /// unlocks the account.
    Locked,
}

/// A client of one homeserver.
#[derive(Clone)]
pub struct Homeserver {
    base: Arc<str>,
    client: HttpsClient,
    admin_token: Option<Arc<str>>,
    timeout: Duration,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Homeserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Homeserver")
            .field("base", &self.base)
            .field("admin_token", &self.admin_token.as_ref().map(|_| "<set>"))
            .finish_non_exhaustive()
    }
}

impl Homeserver {
    /// A client of the homeserver at `base_url` (`http://` or `https://`, checked by the config), with the admin
    /// token if any. HTTPS is verified against the system's trust store.
    pub fn new(
        base_url: &str,
        admin_token: Option<String>,
        timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> Result<Self, HomeserverError> {
        let client = https_client()
            .map_err(|e| HomeserverError::Unreachable(format!("no trust store: {e}")))?;
        Ok(Homeserver {
            base: base_url.trim_end_matches('/').into(),
            client,
            admin_token: admin_token.map(|t| t.trim().into()),
            timeout,
            metrics,
        })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Whether the admin API can be used.
    pub fn has_admin_token(&self) -> bool {
        self.admin_token.is_some()
    }

    /// Whose access token `token` is (`GET /_matrix/client/v3/account/whoami`); `as_user` is the `user_id` an
    /// application service acts as.
    pub async fn whoami(
        &self,
        token: &str,
        as_user: Option<&str>,
    ) -> Result<Whoami, HomeserverError> {
        #[derive(Deserialize)]
        struct Answer {
            user_id: String,
        }
        // A token no header can hold (a query token with a space, say) is no account's: the homeserver would refuse
        // the request too.
        if http::HeaderValue::from_str(token).is_err() {
            return Ok(Whoami::Unknown);
        }
        let mut path = String::from("/_matrix/client/v3/account/whoami");
        if let Some(user) = as_user {
            path.push_str("?user_id=");
            path.push_str(&encode(user));
        }
        let answer = self
            .call(HomeserverCall::Whoami, Method::GET, &path, token, None)
            .await;
        match answer {
            Ok((StatusCode::OK, body)) => {
                let answer: Answer = serde_json::from_slice(&body).map_err(|_| {
                    self.failed(HomeserverCall::Whoami, "error");
                    HomeserverError::Answer("a whoami body without a user_id".into())
                })?;
                match UserId::parse_owned(answer.user_id) {
                    Ok(user) => {
                        self.succeeded(HomeserverCall::Whoami, "ok");
                        Ok(Whoami::Account(user))
                    }
                    Err(_) => {
                        self.failed(HomeserverCall::Whoami, "error");
                        Err(HomeserverError::Answer(
                            "a whoami user_id that is not a Matrix user id".into(),
                        ))
                    }
                }
            }
            Ok((StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, body)) => {
                #[derive(Deserialize)]
                struct Error {
                    errcode: Option<String>,
                }
                let errcode = serde_json::from_slice::<Error>(&body)
                    .ok()
                    .and_then(|e| e.errcode);
                if errcode.as_deref() == Some("M_USER_LOCKED") {
                    self.succeeded(HomeserverCall::Whoami, "locked");
                    return Ok(Whoami::Locked);
                }
                self.succeeded(HomeserverCall::Whoami, "unknown_token");
                Ok(Whoami::Unknown)
            }
            Ok((status, _)) => Err(self.unusable(HomeserverCall::Whoami, status)),
            Err(err) => Err(err),
        }
    }

    /// The room's attributes (`GET /_synapse/admin/v1/rooms/{roomId}`), `None` when the homeserver does not know
    /// it. The homeserver's `guest_access` is the room's state: whether the server itself allows guests is not in
    /// the answer. Tchap's access rule is not in it either (`r.room.access_rule` is empty for reads).
    pub async fn room(&self, room_id: &str) -> Result<Option<Room>, HomeserverError> {
        #[derive(Deserialize)]
        struct Answer {
            room_id: String,
            join_rules: Option<String>,
            history_visibility: Option<String>,
            encryption: Option<String>,
            guest_access: Option<String>,
            public: Option<bool>,
        }
        let token = self
            .admin_token
            .clone()
            .ok_or(HomeserverError::NoAdminToken)?;
        let path = format!("/_synapse/admin/v1/rooms/{}", encode(room_id));
        match self
            .call(HomeserverCall::Room, Method::GET, &path, &token, None)
            .await?
        {
            (StatusCode::OK, body) => {
                let answer: Answer = serde_json::from_slice(&body).map_err(|_| {
                    self.failed(HomeserverCall::Room, "error");
                    HomeserverError::Answer("room details that are not the admin API's".into())
                })?;
                self.succeeded(HomeserverCall::Room, "ok");
                Ok(Some(Room {
                    room_id: answer.room_id,
                    join_rule: join_rule(answer.join_rules.as_deref()),
                    history_visibility: history_visibility(answer.history_visibility.as_deref()),
                    encrypted: answer.encryption.is_some(),
                    guest_access: answer.guest_access.as_deref() == Some("can_join"),
                    published: answer.public.unwrap_or(false),
                    access_rule: String::new(),
                }))
            }
            // 404: no such room; 400: not a room id the homeserver accepts.
            (StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST, _) => {
                self.succeeded(HomeserverCall::Room, "not_found");
                Ok(None)
            }
            (status, _) => Err(self.unusable(HomeserverCall::Room, status)),
        }
    }

    /// Whether the account is a server admin (`GET /_synapse/admin/v2/users/{userId}`); an account the homeserver
    /// does not know is not.
    pub async fn is_admin(&self, user: &UserId) -> Result<bool, HomeserverError> {
        #[derive(Deserialize)]
        struct Answer {
            admin: Option<bool>,
        }
        let token = self
            .admin_token
            .clone()
            .ok_or(HomeserverError::NoAdminToken)?;
        let path = format!("/_synapse/admin/v2/users/{}", encode(user.as_str()));
        match self
            .call(HomeserverCall::User, Method::GET, &path, &token, None)
            .await?
        {
            (StatusCode::OK, body) => {
                let answer: Answer = serde_json::from_slice(&body).map_err(|_| {
                    self.failed(HomeserverCall::User, "error");
                    HomeserverError::Answer("user details that are not the admin API's".into())
                })?;
                self.succeeded(HomeserverCall::User, "ok");
                Ok(answer.admin.unwrap_or(false))
            }
            (StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST, _) => {
                self.succeeded(HomeserverCall::User, "not_found");
                Ok(false)
            }
            (status, _) => Err(self.unusable(HomeserverCall::User, status)),
        }
    }

    /// Locks the account (`PUT /_synapse/admin/v2/users/{userId}` with `{"locked": true}`): the homeserver then
    /// refuses every request of it, reads included, until an admin unlocks it. Suspension would not do: a suspended
    /// account still reads.
    pub async fn lock(&self, user: &UserId) -> Result<(), HomeserverError> {
        let token = self
            .admin_token
            .clone()
            .ok_or(HomeserverError::NoAdminToken)?;
        let path = format!("/_synapse/admin/v2/users/{}", encode(user.as_str()));
        let body = Bytes::from_static(br#"{"locked": true}"#);
        match self
            .call(HomeserverCall::Lock, Method::PUT, &path, &token, Some(body))
            .await?
        {
            (StatusCode::OK | StatusCode::CREATED, _) => {
                self.succeeded(HomeserverCall::Lock, "ok");
                Ok(())
            }
            (status, _) => Err(self.unusable(HomeserverCall::Lock, status)),
        }
    }

    /// One call: the status and at most [`MAX_BODY_BYTES`] of the body, within the timeout.
    async fn call(
        &self,
        call: HomeserverCall,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, Bytes), HomeserverError> {
        let uri = format!("{}{path}", self.base);
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::USER_AGENT, "roomguard");
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(body.unwrap_or_default()))
            // A token with a character a header cannot hold: no account's, and not sent anywhere.
            .map_err(|_| HomeserverError::Answer("a request that cannot be sent".into()))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| HomeserverError::Unreachable(describe(&e)))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_BODY_BYTES)
                .collect()
                .await
                .map_err(|_| HomeserverError::Answer("a body cut short or too long".into()))?
                .to_bytes();
            Ok((status, body))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(err)) => {
                self.failed(call, "error");
                Err(err)
            }
            Err(_) => {
                self.failed(call, "timeout");
                Err(HomeserverError::Timeout(self.timeout))
            }
        }
    }

    fn succeeded(&self, call: HomeserverCall, outcome: &'static str) {
        if self.metrics.reads.homeserver(call, outcome, true) {
            info!(homeserver = %self.base, "reads: the homeserver answers again");
        }
    }

    /// A failed call: the first of an outage is logged (with what failed), the others only counted.
    fn failed(&self, call: HomeserverCall, outcome: &'static str) {
        if self.metrics.reads.homeserver(call, outcome, false) {
            warn!(
                homeserver = %self.base,
                call = call.as_str(),
                outcome,
                "reads: the homeserver does not answer: reads that need it are answered by reads.failure_mode until \
                 it does"
            );
        }
    }

    fn unusable(&self, call: HomeserverCall, status: StatusCode) -> HomeserverError {
        self.failed(call, "error");
        HomeserverError::Answer(format!("HTTP {}", status.as_u16()))
    }
}

/// The connection error's chain, without anything that could quote a request.
fn describe(err: &hyper_util::client::legacy::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A join rule as the admin API spells it; one roomguard does not know reads as `private` (closed).
fn join_rule(rule: Option<&str>) -> JoinRule {
    match rule {
        Some("public") => JoinRule::Public,
        Some("invite") => JoinRule::Invite,
        Some("knock") => JoinRule::Knock,
        Some("restricted") => JoinRule::Restricted,
        Some("knock_restricted") => JoinRule::KnockRestricted,
        _ => JoinRule::Private,
    }
}

/// A history visibility as the admin API spells it; none is `shared`, the specification's default.
fn history_visibility(visibility: Option<&str>) -> HistoryVisibility {
    match visibility {
        Some("world_readable") => HistoryVisibility::WorldReadable,
        Some("invited") => HistoryVisibility::Invited,
        Some("joined") => HistoryVisibility::Joined,
        _ => HistoryVisibility::Shared,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids are encoded whole into one path segment: sigils, separators and slashes included.
    #[test]
    fn ids_are_encoded_into_one_segment() {
        assert_eq!(
            encode("!abc:agent.tchap.gouv.fr"),
            "%21abc%3Aagent.tchap.gouv.fr"
        );
        assert_eq!(encode("@a/b:s"), "%40a%2Fb%3As");
        assert_eq!(encode("a-b_c.d~e"), "a-b_c.d~e");
    }

    /// The admin API's spellings map onto the domain's; what roomguard does not know is the closed reading.
    #[test]
    fn room_attributes_map_onto_the_domain() {
        assert_eq!(join_rule(Some("public")), JoinRule::Public);
        assert_eq!(
            join_rule(Some("knock_restricted")),
            JoinRule::KnockRestricted
        );
        assert_eq!(join_rule(Some("org.example.custom")), JoinRule::Private);
        assert_eq!(join_rule(None), JoinRule::Private);
        assert_eq!(
            history_visibility(Some("world_readable")),
            HistoryVisibility::WorldReadable
        );
        assert_eq!(history_visibility(None), HistoryVisibility::Shared);
    }
}
