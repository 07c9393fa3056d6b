//! Synapse's admin API, as the audit reads and acts on a homeserver: the room list, a room's state, members,
//! history and media, a file's details and bytes, quarantine, and redaction as an event's own sender.
//!
//! Every call carries the admin token in the `Authorization` header and nowhere else; no error message quotes a
//! token or a body. A rate limit (429) is waited out as the homeserver asks (`retry_after_ms`, or `Retry-After`),
//! and a 5xx or a dropped connection is retried with a doubling back-off: a long audit must survive a homeserver
//! that is busy or restarting, and must not make it busier.

use std::{sync::Arc, time::Duration};

use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::Value;

pub use crate::ops::https_client::encode;
use crate::ops::https_client::{HttpsClient, https_client};

/// The most of a JSON answer read: a page of `MESSAGES_PAGE` events of at most 64 KiB each, and room lists.
const MAX_JSON_BYTES: usize = 96 << 20;

/// Events asked for per page of history (Synapse caps pages at 1,000).
pub const MESSAGES_PAGE: u32 = 1000;

/// Rooms asked for per page of the room list.
const ROOMS_PAGE: u32 = 500;

/// One call's deadline (a page of 1,000 events can take a few seconds on a loaded homeserver).
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// Back-off after a 5xx or a dropped connection: 0.5 s, doubling, at most this many attempts in all.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// How many times one call may be rate limited (429) and waited out before the audit gives up on it.
const RATE_LIMITED_ATTEMPTS: u32 = 8;

/// The longest wait a rate limit may ask for before the audit gives up on the call.
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(120);

/// Why a call failed. Never quotes a token or a body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    /// No connection, or no answer in time, after every retry.
    #[error("cannot reach the homeserver: {0}")]
    Unreachable(String),
    /// 401: the homeserver does not know the token (wrong, expired, logged out).
    #[error("the homeserver refuses the admin token (401 {0})")]
    BadToken(String),
    /// 403 on an admin endpoint: the token is valid but its account is not a server admin.
    #[error("the token's account is not a server administrator (403 {0})")]
    NotAdmin(String),
    /// 404: no such room, event or file (a quarantined file answers 404 too).
    #[error("not found")]
    NotFound,
    /// Any other answer roomguard cannot use (a 5xx after every retry, a body that is not the API's).
    #[error("the homeserver answered {0}")]
    Answer(String),
}

impl AdminError {
    /// Whether the error is about the token (exit 77) rather than the homeserver.
    pub fn is_permission(&self) -> bool {
        matches!(self, AdminError::BadToken(_) | AdminError::NotAdmin(_))
    }
}

/// A client of one homeserver's admin API.
#[derive(Clone)]
pub struct SynapseAdmin {
    base: Arc<str>,
    client: HttpsClient,
    token: Arc<str>,
    attempts: u32,
}

impl std::fmt::Debug for SynapseAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SynapseAdmin")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// One room of `GET /_synapse/admin/v1/rooms`.
#[derive(Debug, Clone, Deserialize)]
pub struct RoomListEntry {
    /// The room.
    pub room_id: String,
    /// Its canonical alias, if any.
    #[serde(default)]
    pub canonical_alias: Option<String>,
    /// Joined members.
    #[serde(default)]
    pub joined_members: u64,
    /// Listed in the public room directory.
    #[serde(default)]
    pub public: bool,
    /// Its join rule (`None`: no join rules event).
    #[serde(default)]
    pub join_rules: Option<String>,
    /// Its history visibility.
    #[serde(default)]
    pub history_visibility: Option<String>,
    /// The encryption algorithm, `None` when not encrypted.
    #[serde(default)]
    pub encryption: Option<String>,
}

/// A page of history.
#[derive(Debug, Deserialize)]
pub struct MessagesPage {
    /// The events, newest first (paging backwards).
    #[serde(default)]
    pub chunk: Vec<Value>,
    /// The token of the next page; `None` at the start of the room.
    #[serde(default)]
    pub end: Option<String>,
}

/// A file's details (`GET /_synapse/admin/v1/media/{server}/{id}`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MediaInfo {
    /// The name the uploader gave, if any.
    #[serde(default)]
    pub upload_name: Option<String>,
    /// The declared MIME type.
    #[serde(default)]
    pub media_type: Option<String>,
    /// The size in bytes.
    #[serde(default)]
    pub media_length: Option<u64>,
    /// The uploader (local files).
    #[serde(default)]
    pub user_id: Option<String>,
    /// Upload time, ms since the epoch.
    #[serde(default)]
    pub created_ts: Option<u64>,
    /// Who quarantined it, if it is.
    #[serde(default)]
    pub quarantined_by: Option<String>,
}

/// What a call answered, before it is interpreted.
struct Answer {
    status: StatusCode,
    body: Bytes,
}

impl SynapseAdmin {
    /// A client of the homeserver at `base_url`, HTTPS verified against the system's trust store. `attempts` bounds
    /// the retries of one call (5xx, dropped connections).
    pub fn new(base_url: &str, token: &str, attempts: u32) -> Result<Self, AdminError> {
        let client =
            https_client().map_err(|e| AdminError::Unreachable(format!("no trust store: {e}")))?;
        Ok(SynapseAdmin {
            base: base_url.trim_end_matches('/').into(),
            client,
            token: token.trim().into(),
            attempts: attempts.max(1),
        })
    }

    /// The same client with another bound on retries.
    pub fn with_attempts(&self, attempts: u32) -> Self {
        SynapseAdmin {
            attempts: attempts.max(1),
            ..self.clone()
        }
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The admin token's account (`/_matrix/client/v3/account/whoami`).
    pub async fn whoami(&self) -> Result<String, AdminError> {
        #[derive(Deserialize)]
        struct Whoami {
            user_id: String,
        }
        let whoami: Whoami = self
            .json(Method::GET, "/_matrix/client/v3/account/whoami", None)
            .await?;
        Ok(whoami.user_id)
    }

    /// One page of the room list from offset `from`; the offset of the next page, `None` after the last.
    pub async fn rooms(
        &self,
        from: u64,
    ) -> Result<(Vec<RoomListEntry>, Option<u64>, u64), AdminError> {
        #[derive(Deserialize)]
        struct Page {
            rooms: Vec<RoomListEntry>,
            #[serde(default)]
            next_batch: Option<Value>,
            #[serde(default)]
            total_rooms: u64,
        }
        // By name, Synapse's default order: the whole list is read before any room is, in a few calls, so a room
        // created meanwhile can at worst be missed (or listed twice: the selection reads it once).
        let path =
            format!("/_synapse/admin/v1/rooms?from={from}&limit={ROOMS_PAGE}&order_by=name&dir=f");
        let page: Page = self.json(Method::GET, &path, None).await?;
        // Synapse sends `next_batch` as a number (older versions as a string).
        let next = page.next_batch.and_then(|n| match n {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        });
        Ok((page.rooms, next, page.total_rooms))
    }

    /// Whether a local user is a server admin (`GET /_synapse/admin/v2/users/{userId}`).
    pub async fn user_is_admin(&self, user_id: &str) -> Result<bool, AdminError> {
        #[derive(Deserialize)]
        struct User {
            #[serde(default)]
            admin: Option<Value>,
        }
        let path = format!("/_synapse/admin/v2/users/{}", encode(user_id));
        let user: User = self.json(Method::GET, &path, None).await?;
        // Older Synapse versions answer 0/1.
        Ok(matches!(user.admin, Some(Value::Bool(true)))
            || user.admin.and_then(|a| a.as_u64()) == Some(1))
    }

    /// A room's current state events.
    pub async fn state(&self, room_id: &str) -> Result<Vec<Value>, AdminError> {
        #[derive(Deserialize)]
        struct State {
            state: Vec<Value>,
        }
        let path = format!("/_synapse/admin/v1/rooms/{}/state", encode(room_id));
        let state: State = self.json(Method::GET, &path, None).await?;
        Ok(state.state)
    }

    /// A room's joined members.
    pub async fn members(&self, room_id: &str) -> Result<Vec<String>, AdminError> {
        #[derive(Deserialize)]
        struct Members {
            members: Vec<String>,
        }
        let path = format!("/_synapse/admin/v1/rooms/{}/members", encode(room_id));
        let members: Members = self.json(Method::GET, &path, None).await?;
        Ok(members.members)
    }

    /// A page of a room's history, backwards from `from` (the newest event when `None`).
    pub async fn messages(
        &self,
        room_id: &str,
        from: Option<&str>,
    ) -> Result<MessagesPage, AdminError> {
        let mut path = format!(
            "/_synapse/admin/v1/rooms/{}/messages?dir=b&limit={MESSAGES_PAGE}",
            encode(room_id)
        );
        if let Some(from) = from {
            path.push_str("&from=");
            path.push_str(&encode(from));
        }
        self.json(Method::GET, &path, None).await
    }

    /// The files a room's events refer to: local ones, then remote ones (`mxc://` URIs).
    pub async fn room_media(&self, room_id: &str) -> Result<Vec<String>, AdminError> {
        #[derive(Deserialize)]
        struct RoomMedia {
            #[serde(default)]
            local: Vec<String>,
            #[serde(default)]
            remote: Vec<String>,
        }
        let path = format!("/_synapse/admin/v1/room/{}/media", encode(room_id));
        let media: RoomMedia = self.json(Method::GET, &path, None).await?;
        Ok(media.local.into_iter().chain(media.remote).collect())
    }

    /// A file's details; `None` when the homeserver does not have it.
    pub async fn media_info(
        &self,
        server: &str,
        media_id: &str,
    ) -> Result<Option<MediaInfo>, AdminError> {
        #[derive(Deserialize)]
        struct Info {
            media_info: MediaInfo,
        }
        let path = format!(
            "/_synapse/admin/v1/media/{}/{}",
            encode(server),
            encode(media_id)
        );
        match self.json::<Info>(Method::GET, &path, None).await {
            Ok(info) => Ok(Some(info.media_info)),
            Err(AdminError::NotFound) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Starts downloading a file with the admin token (the authenticated media API); `None` when the homeserver
    /// will not give it (quarantined, deleted, unknown). The caller reads the body as it arrives.
    pub async fn download(
        &self,
        server: &str,
        media_id: &str,
    ) -> Result<Option<Incoming>, AdminError> {
        let path = format!(
            "/_matrix/client/v1/media/download/{}/{}",
            encode(server),
            encode(media_id)
        );
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=self.attempts {
            let response = match self.send(Method::GET, &path, None, &self.token).await {
                Ok(response) => response,
                Err(err) if attempt < self.attempts => {
                    tracing::debug!(%err, attempt, "download failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    continue;
                }
                Err(err) => return Err(err),
            };
            let status = response.status();
            if status.is_success() {
                return Ok(Some(response.into_body()));
            }
            if status == StatusCode::NOT_FOUND {
                return Ok(None);
            }
            let retry_after = header_retry_after(response.headers());
            let body = read_limited(response.into_body(), 64 << 10)
                .await
                .unwrap_or_default();
            let answer = Answer { status, body };
            match self
                .classify(answer, retry_after, attempt, &mut backoff)
                .await
            {
                Retry::Again => {}
                Retry::Fail(err) => return Err(err),
            }
        }
        Err(AdminError::Answer("no answer after every retry".into()))
    }

    /// Quarantines a file: nobody can download it from this homeserver any more.
    pub async fn quarantine(&self, server: &str, media_id: &str) -> Result<(), AdminError> {
        let path = format!(
            "/_synapse/admin/v1/media/quarantine/{}/{}",
            encode(server),
            encode(media_id)
        );
        let _: Value = self.json(Method::POST, &path, Some(b"{}".to_vec())).await?;
        Ok(())
    }

    /// An event of a room as clients see it, redactions applied (a redacted event has `unsigned.redacted_because`);
    /// `None` when the homeserver does not know it. (Not `fetch_event`: it answers the event as first stored, its
    /// redaction not applied.)
    pub async fn event_in_room(
        &self,
        room_id: &str,
        event_id: &str,
    ) -> Result<Option<Value>, AdminError> {
        #[derive(Deserialize)]
        struct Context {
            #[serde(default)]
            event: Option<Value>,
        }
        let path = format!(
            "/_synapse/admin/v1/rooms/{}/context/{}?limit=0",
            encode(room_id),
            encode(event_id)
        );
        match self.json::<Context>(Method::GET, &path, None).await {
            Ok(context) => Ok(context.event),
            Err(AdminError::NotFound) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// A short-lived access token acting as `user_id` (a local user), without a device of its own.
    pub async fn login_as(&self, user_id: &str, valid_for: Duration) -> Result<String, AdminError> {
        #[derive(Deserialize)]
        struct Login {
            access_token: String,
        }
        let until = chrono::Utc::now().timestamp_millis()
            + i64::try_from(valid_for.as_millis()).unwrap_or(i64::MAX / 2);
        let body = serde_json::json!({ "valid_until_ms": until })
            .to_string()
            .into_bytes();
        let path = format!("/_synapse/admin/v1/users/{}/login", encode(user_id));
        // One attempt: a retry after a lost answer would leave a token of the sender's that nobody logs out.
        let login: Login = self
            .with_attempts(1)
            .json(Method::POST, &path, Some(body))
            .await?;
        Ok(login.access_token)
    }

    /// Redacts `event_id` with `token` (the sender's own, or the admin's when the admin sent it). `txn_id` makes a
    /// retried call one redaction.
    pub async fn redact(
        &self,
        token: &str,
        room_id: &str,
        event_id: &str,
        txn_id: &str,
        reason: &str,
    ) -> Result<(), AdminError> {
        let path = format!(
            "/_matrix/client/v3/rooms/{}/redact/{}/{}",
            encode(room_id),
            encode(event_id),
            encode(txn_id)
        );
        let body = serde_json::json!({ "reason": reason })
            .to_string()
            .into_bytes();
        let _: Value = self.json_as(Method::PUT, &path, Some(body), token).await?;
        Ok(())
    }

    /// Redacts `event_id` with the admin token itself (the admin sent it).
    pub async fn redact_with_own_token(
        &self,
        room_id: &str,
        event_id: &str,
        txn_id: &str,
        reason: &str,
    ) -> Result<(), AdminError> {
        let token = self.token.clone();
        self.redact(&token, room_id, event_id, txn_id, reason).await
    }

    /// Ends a token made by [`SynapseAdmin::login_as`].
    pub async fn logout(&self, token: &str) -> Result<(), AdminError> {
        let _: Value = self
            .json_as(
                Method::POST,
                "/_matrix/client/v3/logout",
                Some(b"{}".to_vec()),
                token,
            )
            .await?;
        Ok(())
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, AdminError> {
        let token = self.token.clone();
        self.json_as(method, path, body, &token).await
    }

    /// One call, retried as the module documentation says, its JSON answer parsed.
    async fn json_as<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        token: &str,
    ) -> Result<T, AdminError> {
        let mut backoff = FIRST_BACKOFF;
        // Rate limits are waited out up to `RATE_LIMITED_ATTEMPTS` times; failures count against `self.attempts`.
        for attempt in 1..=self.attempts.max(RATE_LIMITED_ATTEMPTS) {
            let answer = match self.send(method.clone(), path, body.clone(), token).await {
                Ok(response) => {
                    let status = response.status();
                    let retry_after = header_retry_after(response.headers());
                    let body = tokio::time::timeout(
                        CALL_TIMEOUT,
                        read_limited(response.into_body(), MAX_JSON_BYTES),
                    )
                    .await
                    .unwrap_or_else(|_| {
                        Err(AdminError::Unreachable(format!(
                            "an answer still arriving after {}s",
                            CALL_TIMEOUT.as_secs()
                        )))
                    });
                    match body {
                        Ok(body) => (Answer { status, body }, retry_after),
                        Err(err) if attempt < self.attempts => {
                            tracing::debug!(%err, attempt, "an answer broke off; retrying");
                            tokio::time::sleep(backoff).await;
                            backoff *= 2;
                            continue;
                        }
                        Err(err) => return Err(err),
                    }
                }
                Err(err) if attempt < self.attempts => {
                    tracing::debug!(%err, attempt, "a call failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    continue;
                }
                Err(err) => return Err(err),
            };
            let (answer, retry_after) = answer;
            if answer.status.is_success() {
                // JSON may escape a lone UTF-16 surrogate (`"\ud800"`), which no Rust string can hold: one such
                // event would make a whole page of history unreadable. Read it as U+FFFD, as the module does.
                let parsed = serde_json::from_slice(&answer.body).or_else(|first| {
                    without_lone_surrogates(&answer.body)
                        .map_or(Err(first), |clean| serde_json::from_slice(&clean))
                });
                return parsed.map_err(|e| {
                    AdminError::Answer(format!(
                        "{} with a body that is not the admin API's ({:?} at line {} column {})",
                        answer.status,
                        e.classify(),
                        e.line(),
                        e.column()
                    ))
                });
            }
            match self
                .classify(answer, retry_after, attempt, &mut backoff)
                .await
            {
                Retry::Again => {}
                Retry::Fail(err) => return Err(err),
            }
        }
        Err(AdminError::Answer("no answer after every retry".into()))
    }

    /// What to do about an answer that is not a success: wait and retry, or fail with which error.
    async fn classify(
        &self,
        answer: Answer,
        retry_after: Option<Duration>,
        attempt: u32,
        backoff: &mut Duration,
    ) -> Retry {
        #[derive(Deserialize, Default)]
        struct MatrixError {
            #[serde(default)]
            errcode: Option<String>,
            #[serde(default)]
            retry_after_ms: Option<u64>,
        }
        let error: MatrixError = serde_json::from_slice(&answer.body).unwrap_or_default();
        let errcode = error.errcode.unwrap_or_default();
        match answer.status {
            StatusCode::UNAUTHORIZED => Retry::Fail(AdminError::BadToken(errcode)),
            StatusCode::FORBIDDEN if errcode == "M_FORBIDDEN" || errcode.is_empty() => {
                Retry::Fail(AdminError::NotAdmin(errcode))
            }
            StatusCode::NOT_FOUND => Retry::Fail(AdminError::NotFound),
            StatusCode::TOO_MANY_REQUESTS if attempt < self.attempts.max(RATE_LIMITED_ATTEMPTS) => {
                let wait = error
                    .retry_after_ms
                    .map(Duration::from_millis)
                    .or(retry_after)
                    .unwrap_or(*backoff)
                    .min(MAX_RATE_LIMIT_WAIT);
                tracing::debug!(?wait, "rate limited by the homeserver; waiting as asked");
                tokio::time::sleep(wait).await;
                *backoff *= 2;
                Retry::Again
            }
            status if status.is_server_error() && attempt < self.attempts => {
                tracing::debug!(%status, attempt, "the homeserver failed; retrying");
                tokio::time::sleep(*backoff).await;
                *backoff *= 2;
                Retry::Again
            }
            status => Retry::Fail(AdminError::Answer(if errcode.is_empty() {
                status.to_string()
            } else {
                format!("{status} {errcode}")
            })),
        }
    }

    /// Sends one request and waits for the answer's head.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        token: &str,
    ) -> Result<http::Response<Incoming>, AdminError> {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(
                header::USER_AGENT,
                concat!("roomguard-audit/", env!("CARGO_PKG_VERSION")),
            );
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|_| {
                AdminError::Unreachable("a request that cannot be written (the URL?)".into())
            })?;
        match tokio::time::timeout(CALL_TIMEOUT, self.client.request(request)).await {
            Ok(Ok(response)) => Ok(response),
            // The error's own text names the connection problem (refused, DNS, TLS), never the request.
            Ok(Err(err)) => Err(AdminError::Unreachable(connection_error(&err))),
            Err(_) => Err(AdminError::Unreachable(format!(
                "no answer within {}s",
                CALL_TIMEOUT.as_secs()
            ))),
        }
    }
}

enum Retry {
    Again,
    Fail(AdminError),
}

/// The root cause of a connection error: hyper's own text is "client error (Connect)".
fn connection_error(err: &hyper_util::client::legacy::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = Some(err);
    let mut last = err.to_string();
    while let Some(e) = source {
        last = e.to_string();
        source = e.source();
    }
    last
}

/// `Retry-After` in seconds, when the homeserver (or a proxy in front of it) sends one.
fn header_retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    headers
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

async fn read_limited(body: Incoming, max: usize) -> Result<Bytes, AdminError> {
    Limited::new(body, max)
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .map_err(|_| AdminError::Answer(format!("an answer that broke off or exceeds {max} bytes")))
}

/// `body` with every escaped lone surrogate (`\ud800` not followed by a low surrogate, or a low one alone) written
/// `\ufffd`; `None` when there is none (the parse error is then another).
fn without_lone_surrogates(body: &[u8]) -> Option<Vec<u8>> {
    fn escaped_unit(body: &[u8], at: usize) -> Option<u16> {
        if body.get(at) != Some(&b'\\') || body.get(at + 1) != Some(&b'u') {
            return None;
        }
        let hex = std::str::from_utf8(body.get(at + 2..at + 6)?).ok()?;
        u16::from_str_radix(hex, 16).ok()
    }
    let mut out = Vec::with_capacity(body.len());
    let mut changed = false;
    let mut i = 0;
    while i < body.len() {
        if body[i] != b'\\' {
            out.push(body[i]);
            i += 1;
            continue;
        }
        match escaped_unit(body, i) {
            Some(0xD800..=0xDBFF) => {
                if matches!(escaped_unit(body, i + 6), Some(0xDC00..=0xDFFF)) {
                    out.extend_from_slice(&body[i..i + 12]);
                    i += 12;
                } else {
                    out.extend_from_slice(b"\\ufffd");
                    changed = true;
                    i += 6;
                }
            }
            Some(0xDC00..=0xDFFF) => {
                out.extend_from_slice(b"\\ufffd");
                changed = true;
                i += 6;
            }
            // Any other escape, `\\` included, is copied whole so that its second byte is not read as a start.
            _ => {
                out.extend_from_slice(&body[i..(i + 2).min(body.len())]);
                i += 2;
            }
        }
    }
    changed.then_some(out)
}

/// `(server, media_id)` of an `mxc://server/media_id` URI.
pub fn parse_mxc(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("mxc://")?;
    let (server, media_id) = rest.split_once('/')?;
    (!server.is_empty() && !media_id.is_empty() && !media_id.contains('/'))
        .then_some((server, media_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lone surrogate becomes U+FFFD and the page parses; a pair, and an escaped backslash before `u`, are kept.
    #[test]
    fn lone_surrogates_are_read_as_replacement_characters() {
        let body = br#"{"a":"x\ud800y","b":"\udc00","c":"\ud83d\ude00","d":"\\ud800"}"#;
        assert!(serde_json::from_slice::<Value>(body).is_err());
        let clean = without_lone_surrogates(body).unwrap();
        let value: Value = serde_json::from_slice(&clean).unwrap();
        assert_eq!(value["a"], "x\u{fffd}y");
        assert_eq!(value["b"], "\u{fffd}");
        assert_eq!(value["c"], "\u{1f600}");
        assert_eq!(value["d"], "\\ud800");
        assert_eq!(without_lone_surrogates(br#"{"ok":"\u00e9"}"#), None);
    }

    /// An mxc URI names a server and one media id; anything else is not a file of the homeserver.
    #[test]
    fn mxc_uris_are_parsed_strictly() {
        assert_eq!(
            parse_mxc("mxc://example.org/AbC"),
            Some(("example.org", "AbC"))
        );
        for bad in [
            "mxc://example.org/",
            "mxc:///x",
            "https://x/y",
            "mxc://a/b/c",
            "",
        ] {
            assert_eq!(parse_mxc(bad), None, "{bad}");
        }
    }
}
