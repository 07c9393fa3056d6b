//! A stand-in homeserver for the read guard's black-box tests: the few client and admin API calls roomguard makes
//! (`whoami`, room details, user details, locking), answering from tables the test sets, and counting the calls.
//! The end-to-end suite (`tests/reads_e2e/`) runs the same scenarios against a real Synapse.

use std::{
    collections::HashMap,
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use http_body_util::Full;
use hyper::{Request, Response, StatusCode, body::Bytes, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The admin token the stand-in accepts on its admin API.
pub const ADMIN_TOKEN: &str = "tok-admin";

/// What the stand-in knows and what it was asked.
#[derive(Debug, Default)]
pub struct State {
    /// Access token -> user id.
    pub tokens: Mutex<HashMap<String, String>>,
    /// User ids that are server admins.
    pub admins: Mutex<Vec<String>>,
    /// Room id -> the admin API's room details (JSON).
    pub rooms: Mutex<HashMap<String, serde_json::Value>>,
    /// Tokens of locked accounts (`whoami` answers 401 `M_USER_LOCKED`).
    pub locked_tokens: Mutex<Vec<String>>,
    /// Users locked through the admin API, in order.
    pub locked: Mutex<Vec<String>>,
    /// `whoami` calls answered.
    pub whoami_calls: AtomicUsize,
    /// Room-details calls answered.
    pub room_calls: AtomicUsize,
    /// Each answer waits this long.
    pub delay: Mutex<Duration>,
}

impl State {
    /// Gives `token` to `user`.
    pub fn token(&self, token: &str, user: &str) {
        self.tokens
            .lock()
            .unwrap()
            .insert(token.to_owned(), user.to_owned());
    }

    /// The details of `room_id`, as `GET /_synapse/admin/v1/rooms/{roomId}` answers them.
    pub fn room(&self, room_id: &str, join_rules: &str, public: bool) {
        self.rooms.lock().unwrap().insert(
            room_id.to_owned(),
            serde_json::json!({
                "room_id": room_id, "join_rules": join_rules, "public": public,
                "history_visibility": "shared", "encryption": null, "guest_access": null,
                "joined_members": 3,
            }),
        );
    }
}

/// A stand-in homeserver serving on a loopback port until dropped with the runtime.
pub struct FakeHomeserver {
    /// Its address.
    pub addr: SocketAddr,
    /// Its tables and counters.
    pub state: Arc<State>,
}

impl FakeHomeserver {
    /// Starts one.
    pub async fn start() -> FakeHomeserver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let served = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = served.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(answer(&state, &request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FakeHomeserver { addr, state }
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

async fn answer<B>(state: &State, request: &Request<B>) -> Response<Full<Bytes>> {
    let delay = *state.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let token = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_owned();
    let path = request.uri().path().to_owned();
    let decoded = percent_decode(&path);
    if path == "/_matrix/client/v3/account/whoami" {
        state.whoami_calls.fetch_add(1, Ordering::SeqCst);
        if state.locked_tokens.lock().unwrap().contains(&token) {
            return json(
                StatusCode::UNAUTHORIZED,
                serde_json::json!({"errcode": "M_USER_LOCKED", "error": "This account has been locked"}),
            );
        }
        return match state.tokens.lock().unwrap().get(&token) {
            Some(user) => json(
                StatusCode::OK,
                serde_json::json!({"user_id": user, "is_guest": false}),
            ),
            None => json(
                StatusCode::UNAUTHORIZED,
                serde_json::json!({"errcode": "M_UNKNOWN_TOKEN", "error": "Unknown access token"}),
            ),
        };
    }
    if token != ADMIN_TOKEN {
        return json(
            StatusCode::FORBIDDEN,
            serde_json::json!({"errcode": "M_FORBIDDEN"}),
        );
    }
    if let Some(room) = decoded.strip_prefix("/_synapse/admin/v1/rooms/") {
        state.room_calls.fetch_add(1, Ordering::SeqCst);
        return match state.rooms.lock().unwrap().get(room) {
            Some(details) => json(StatusCode::OK, details.clone()),
            None => json(
                StatusCode::NOT_FOUND,
                serde_json::json!({"errcode": "M_NOT_FOUND"}),
            ),
        };
    }
    if let Some(user) = decoded.strip_prefix("/_synapse/admin/v2/users/") {
        if request.method() == hyper::Method::PUT {
            state.locked.lock().unwrap().push(user.to_owned());
            return json(
                StatusCode::OK,
                serde_json::json!({"name": user, "locked": true}),
            );
        }
        let admin = state.admins.lock().unwrap().iter().any(|a| a == user);
        return json(
            StatusCode::OK,
            serde_json::json!({"name": user, "admin": admin}),
        );
    }
    json(
        StatusCode::NOT_FOUND,
        serde_json::json!({"errcode": "M_UNRECOGNIZED"}),
    )
}

fn json(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One HTTP/1.1 request on a fresh connection: the status and the headers (lower-case names) and body of the answer.
pub async fn http_get(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, HashMap<String, String>, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: roomguard\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}
