//! The read guard, black box: a real server on loopback, asked through its three fronts (nginx's `/authz`, Envoy's
//! ext_authz over gRPC, the `CheckRead` rpc), resolving tokens with a stand-in homeserver (`common::homeserver`).
//! The same scenarios run against a real Synapse behind real nginx and Envoy in `tests/reads_e2e/`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use roomguard_test_support as common;

use std::{path::Path, sync::atomic::Ordering, time::Duration};

use common::{
    Extras, TestServer,
    homeserver::{ADMIN_TOKEN, FakeHomeserver, http_get},
};
use envoy_types::pb::envoy::service::auth::v3::{
    AttributeContext, CheckRequest,
    attribute_context::{HttpRequest, Request as AttrRequest},
    authorization_client::AuthorizationClient,
    check_response::HttpResponse,
};
use roomguard::{
    grpc::{proto, server::Options},
    ops::{
        metrics::Metrics,
        {mode::Mode, reads::config::ReadFailureMode, reads::config::ReadsConfig},
    },
};

const ALICE: &str = "@alice:agent.finances.tchap.gouv.fr";
const BOB: &str = "@bob:agent.finances.tchap.gouv.fr";
const ROOT: &str = "@root:agent.finances.tchap.gouv.fr";

fn history(room: usize) -> String {
    format!(
        "/_matrix/client/v3/rooms/%21room{room}%3Aagent.finances.tchap.gouv.fr/messages?dir=b&limit=20"
    )
}

fn download(file: usize) -> String {
    format!("/_matrix/client/v1/media/download/agent.finances.tchap.gouv.fr/file{file}")
}

/// A server whose read guard resolves tokens with `homeserver`, with `config`'s other settings.
async fn server(
    homeserver: &FakeHomeserver,
    config: ReadsConfig,
    mode: Mode,
) -> (TestServer, std::sync::Arc<Metrics>) {
    let metrics = std::sync::Arc::new(Metrics::new());
    let options = Options {
        mode,
        metrics: metrics.clone(),
        reads: ReadsConfig {
            homeserver_url: Some(homeserver.url()),
            ..config
        },
        reads_admin_token: Some(ADMIN_TOKEN.to_owned()),
        ..Options::default()
    };
    let extras = Extras {
        reads: true,
        ..Extras::default()
    };
    let server = TestServer::start_with(Path::new("policies"), options, extras).await;
    wait_for_http(&server).await;
    (server, metrics)
}

async fn wait_for_http(server: &TestServer) {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(server.reads_addr.unwrap())
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the read guard's listener did not open");
}

/// Asks `/authz` as nginx does: the original URI and method, the client's own Authorization header.
async fn authz(
    server: &TestServer,
    uri: &str,
    token: Option<&str>,
) -> (u16, std::collections::HashMap<String, String>) {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("X-Original-URI", uri), ("X-Original-Method", "GET")];
    if let Some(bearer) = &bearer {
        headers.push(("Authorization", bearer));
    }
    let (status, headers, _) = http_get(server.reads_addr.unwrap(), "/authz", &headers).await;
    (status, headers)
}

async fn people() -> FakeHomeserver {
    let homeserver = FakeHomeserver::start().await;
    homeserver.state.token("tok-alice", ALICE);
    homeserver.state.token("tok-bob", BOB);
    homeserver.state.token("tok-root", ROOT);
    homeserver
        .state
        .admins
        .lock()
        .unwrap()
        .push(ROOT.to_owned());
    homeserver
}

/// An account reads the history of 40 rooms; the 41st is refused 429 M_LIMIT_EXCEEDED with the time to retry, while
/// the same account still pages through a room it read and another account reads normally; the 301st download is
/// refused the same way. Counts are per account and only count what was served.
#[tokio::test]
async fn one_account_is_refused_past_its_hourly_budgets() {
    let homeserver = people().await;
    let (server, metrics) = server(&homeserver, ReadsConfig::default(), Mode::Enforce).await;
    for room in 1..=40 {
        let (status, headers) = authz(&server, &history(room), Some("tok-alice")).await;
        assert_eq!(status, 204, "room {room}: {headers:?}");
        assert_eq!(headers["x-roomguard-kind"], "history");
        assert_eq!(headers["x-roomguard-user"], ALICE);
    }
    for attempt in 0..2 {
        let (status, headers) = authz(&server, &history(41), Some("tok-alice")).await;
        assert_eq!(status, 403, "attempt {attempt}");
        assert_eq!(headers["x-roomguard-status"], "429");
        assert_eq!(headers["x-roomguard-reasons"], "READ_RATE_EXCEEDED");
        let body: serde_json::Value = serde_json::from_str(&headers["x-roomguard-body"]).unwrap();
        assert_eq!(body["errcode"], "M_LIMIT_EXCEEDED");
        let retry = body["retry_after_ms"].as_u64().unwrap();
        assert!((1_000..=3_600_000).contains(&retry), "{retry}");
        assert_eq!(headers["x-roomguard-retry-after-ms"], retry.to_string());
        assert_eq!(
            headers["x-roomguard-retry-after"],
            retry.div_ceil(1000).to_string()
        );
    }
    let (status, _) = authz(&server, &history(7), Some("tok-alice")).await;
    assert_eq!(status, 204, "a room already read stays readable");
    let (status, _) = authz(&server, &history(41), Some("tok-bob")).await;
    assert_eq!(status, 204, "another account reads normally");

    for file in 1..=300 {
        let (status, _) = authz(&server, &download(file), Some("tok-bob")).await;
        assert_eq!(status, 204, "file {file}");
    }
    let (status, headers) = authz(&server, &download(301), Some("tok-bob")).await;
    assert_eq!(
        (status, headers["x-roomguard-status"].as_str()),
        (403, "429")
    );
    assert_eq!(headers["x-roomguard-reasons"], "DOWNLOAD_RATE_EXCEEDED");
    let rendered = metrics.render(&server.store);
    assert!(
        rendered.contains("roomguard_reads_rate_limited_total{rule=\"read.history-rooms\"} 2"),
        "{rendered}"
    );
    assert!(
        rendered.contains("roomguard_reads_total{kind=\"media\",effect=\"allow\"} 300"),
        "{rendered}"
    );
    assert_eq!(
        homeserver.state.whoami_calls.load(Ordering::SeqCst),
        2,
        "each token resolved once, then remembered"
    );
}

/// A screen of thumbnails fetched at once with a token roomguard has not seen makes one `whoami`, not one each.
#[tokio::test]
async fn concurrent_reads_with_a_new_token_make_one_homeserver_call() {
    let homeserver = people().await;
    *homeserver.state.delay.lock().unwrap() = Duration::from_millis(50);
    let (server, metrics) = server(&homeserver, ReadsConfig::default(), Mode::Enforce).await;
    let addr = server.reads_addr.unwrap();
    let mut reads = tokio::task::JoinSet::new();
    for i in 0..24 {
        let uri = format!("/_matrix/client/v1/media/thumbnail/s/m{i}?width=96&height=96");
        reads.spawn(async move {
            let headers = [
                ("X-Original-URI", uri.as_str()),
                ("Authorization", "Bearer tok-alice"),
            ];
            let (status, headers, _) = http_get(addr, "/authz", &headers).await;
            (status, headers["x-roomguard-reasons"].clone())
        });
    }
    let answers = reads.join_all().await;
    assert!(
        answers.iter().all(|(s, r)| *s == 204 && r == "ALLOWED"),
        "every read decided, none left to the failure mode: {answers:?}"
    );
    assert_eq!(homeserver.state.whoami_calls.load(Ordering::SeqCst), 1);
    let rendered = metrics.render(&server.store);
    assert!(
        rendered.contains("roomguard_token_cache_entries 1"),
        "{}",
        rendered
            .lines()
            .filter(|l| l.contains("token_cache"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// A token the homeserver does not know is not decided: allowed, for the homeserver to answer 401 (so roomguard
/// tells nothing about tokens), and remembered as unknown. On the legacy media paths, which the homeserver serves
/// without looking at the token, it counts as no account: refused.
#[tokio::test]
async fn an_unknown_token_is_left_to_the_homeserver() {
    let homeserver = people().await;
    let (server, _) = server(&homeserver, ReadsConfig::default(), Mode::Enforce).await;
    for _ in 0..3 {
        let (status, headers) = authz(&server, &history(1), Some("tok-nobody")).await;
        assert_eq!(status, 204);
        assert_eq!(headers["x-roomguard-reasons"], "UNKNOWN_TOKEN");
        assert_eq!(headers["x-roomguard-user"], "");
    }
    assert_eq!(homeserver.state.whoami_calls.load(Ordering::SeqCst), 1);
    let legacy = "/_matrix/media/v3/download/agent.finances.tchap.gouv.fr/old";
    for token in [None, Some("tok-nobody")] {
        let (status, headers) = authz(&server, legacy, token).await;
        assert_eq!(status, 403, "{token:?}");
        assert_eq!(headers["x-roomguard-reasons"], "UNAUTHENTICATED_MEDIA");
        assert_eq!(headers["x-roomguard-status"], "403");
    }
    let (status, _) = authz(&server, legacy, Some("tok-alice")).await;
    assert_eq!(status, 204, "an account may use the legacy path");
    // A token in the query is read as the homeserver reads it.
    let (status, headers) = authz(
        &server,
        &format!("{}&access_token=tok-alice", history(2)),
        None,
    )
    .await;
    assert_eq!((status, headers["x-roomguard-user"].as_str()), (204, ALICE));
}

/// A locked account's token is never remembered: while locked its reads are left to the homeserver (which says it is
/// locked), and the first read after an unlock is decided for the account again.
#[tokio::test]
async fn a_locked_accounts_token_is_never_remembered() {
    let homeserver = people().await;
    homeserver
        .state
        .locked_tokens
        .lock()
        .unwrap()
        .push("tok-alice".to_owned());
    let (server, _) = server(&homeserver, ReadsConfig::default(), Mode::Enforce).await;
    for _ in 0..2 {
        let (status, headers) = authz(&server, &history(1), Some("tok-alice")).await;
        assert_eq!(
            (status, headers["x-roomguard-reasons"].as_str()),
            (204, "UNKNOWN_TOKEN")
        );
    }
    assert_eq!(homeserver.state.whoami_calls.load(Ordering::SeqCst), 2);
    homeserver.state.locked_tokens.lock().unwrap().clear();
    let (status, headers) = authz(&server, &history(1), Some("tok-alice")).await;
    assert_eq!((status, headers["x-roomguard-user"].as_str()), (204, ALICE));
    assert_eq!(headers["x-roomguard-reasons"], "ALLOWED");
}

/// A read that the homeserver serves to an account only, with no token in its header or URI, is refused as the
/// homeserver refuses it (401 M_MISSING_TOKEN), in every mode: a token in a form-encoded POST body reaches the
/// homeserver and not roomguard, so such a read must never be served undecided. The legacy media paths, and paths
/// that are not reads, are decided as without an account.
#[tokio::test]
async fn a_read_without_a_token_is_refused_as_the_homeserver_refuses_it() {
    let homeserver = people().await;
    for mode in [Mode::Enforce, Mode::Shadow] {
        let (server, _) = server(&homeserver, ReadsConfig::default(), mode).await;
        for uri in [
            history(1),
            "/_matrix/client/v3/search".to_owned(),
            download(1),
        ] {
            let (status, headers) = authz(&server, &uri, None).await;
            assert_eq!(status, 403, "{mode:?} {uri}");
            assert_eq!(headers["x-roomguard-status"], "401");
            assert_eq!(headers["x-roomguard-reasons"], "MISSING_TOKEN");
            let body: serde_json::Value =
                serde_json::from_str(&headers["x-roomguard-body"]).unwrap();
            assert_eq!(body["errcode"], "M_MISSING_TOKEN");
        }
        let (status, _) = authz(&server, "/_matrix/client/versions", None).await;
        assert_eq!(status, 204, "not a read");
    }
}

/// Reads of one account decided at once see each other: 60 history reads of new rooms sent together serve
/// exactly 40, whatever their order.
#[tokio::test]
async fn a_budget_holds_against_reads_sent_at_once() {
    let homeserver = people().await;
    let (server, _) = server(&homeserver, ReadsConfig::default(), Mode::Enforce).await;
    assert_eq!(authz(&server, &history(0), Some("tok-alice")).await.0, 204);
    let addr = server.reads_addr.unwrap();
    let mut reads = tokio::task::JoinSet::new();
    for room in 1..=60 {
        reads.spawn(async move {
            let uri = history(room);
            let headers = [
                ("X-Original-URI", uri.as_str()),
                ("Authorization", "Bearer tok-alice"),
            ];
            http_get(addr, "/authz", &headers).await.0
        });
    }
    let statuses = reads.join_all().await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 204).count(),
        39,
        "{statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|s| **s == 403).count(), 21);
}

/// When the homeserver does not answer, a read is answered by the failure mode: allowed when open (with the reason
/// READ_GUARD_UNAVAILABLE), refused 503 when closed; a request that needs no homeserver is still decided.
#[tokio::test]
async fn a_homeserver_that_does_not_answer_gets_the_failure_mode() {
    for (mode, expected) in [(ReadFailureMode::Open, 204), (ReadFailureMode::Closed, 403)] {
        let homeserver = people().await;
        *homeserver.state.delay.lock().unwrap() = Duration::from_secs(5);
        let config = ReadsConfig {
            failure_mode: mode,
            homeserver_timeout_ms: 100,
            ..ReadsConfig::default()
        };
        let (server, metrics) = server(&homeserver, config, Mode::Enforce).await;
        let (status, headers) = authz(&server, &history(1), Some("tok-alice")).await;
        assert_eq!(status, expected, "{mode:?}");
        assert_eq!(headers["x-roomguard-reasons"], "READ_GUARD_UNAVAILABLE");
        if mode == ReadFailureMode::Closed {
            assert_eq!(headers["x-roomguard-status"], "503");
        }
        let (status, _) = authz(&server, "/_matrix/media/v3/download/s/m", None).await;
        assert_eq!(status, 403, "no token: decided without the homeserver");
        assert!(
            metrics
                .render(&server.store)
                .contains("roomguard_reads_not_decided_total{cause=\"homeserver_unavailable\"} 1")
        );
    }
}

/// Malformed requests are refused 400 naming nothing of the URI; a proxy that forgets the original URI is refused
/// too (never a silent allow).
#[tokio::test]
async fn malformed_requests_are_refused() {
    let homeserver = people().await;
    let (server, _) = server(&homeserver, ReadsConfig::default(), Mode::Enforce).await;
    for uri in [
        "/_matrix/client/v3/rooms/!a:s/../!b:s/messages",
        "/_matrix/client/v3/rooms/%zz/messages",
        "",
    ] {
        let (status, headers) = authz(&server, uri, Some("tok-alice")).await;
        assert_eq!(status, 403, "{uri:?}");
        assert_eq!(headers["x-roomguard-status"], "400", "{uri:?}");
        assert_eq!(headers["x-roomguard-reasons"], "INVALID_READ_REQUEST");
    }
    let long = format!("Bearer {}", "a".repeat(5000));
    let (status, headers, _) = http_get(
        server.reads_addr.unwrap(),
        "/authz",
        &[
            ("X-Original-URI", "/_matrix/client/v3/sync"),
            ("Authorization", &long),
        ],
    )
    .await;
    assert_eq!(
        (status, headers["x-roomguard-status"].as_str()),
        (403, "400")
    );
    let (status, _, _) = http_get(server.reads_addr.unwrap(), "/nope", &[]).await;
    assert_eq!(status, 404);
    let (status, _, body) = http_get(server.reads_addr.unwrap(), "/health", &[]).await;
    assert_eq!((status, body.as_str()), (200, "SERVING\n"));
}

/// After `lock_account_after` refusals for a rate in the hour, the account is locked through the admin API, once;
/// a server admin never is.
#[tokio::test]
async fn containment_locks_a_bulk_reader_once_and_never_an_admin() {
    let homeserver = people().await;
    let config = ReadsConfig {
        lock_account_after: 3,
        ..ReadsConfig::default()
    };
    let (server, metrics) = server(&homeserver, config, Mode::Enforce).await;
    for token in ["tok-alice", "tok-root"] {
        for room in 1..=40 {
            assert_eq!(authz(&server, &history(room), Some(token)).await.0, 204);
        }
        for _ in 0..5 {
            let (status, headers) = authz(&server, &history(99), Some(token)).await;
            assert_eq!(
                (status, headers["x-roomguard-status"].as_str()),
                (403, "429"),
                "{token}"
            );
        }
    }
    // The lock runs on a task of its own: wait for it.
    for _ in 0..100 {
        if metrics.reads.accounts_locked() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        *homeserver.state.locked.lock().unwrap(),
        vec![ALICE.to_owned()]
    );
    assert_eq!(metrics.reads.accounts_locked(), 1);
}

/// Shadow mode answers every read 204, saying what enforcement would have answered; nothing is locked.
#[tokio::test]
async fn shadow_mode_lets_every_read_through_and_says_what_it_would_refuse() {
    let homeserver = people().await;
    let config = ReadsConfig {
        lock_account_after: 1,
        ..ReadsConfig::default()
    };
    let (server, _) = server(&homeserver, config, Mode::Shadow).await;
    let (status, headers) = authz(&server, "/_matrix/media/r0/download/s/m", None).await;
    assert_eq!(status, 204);
    assert_eq!(headers["x-roomguard-shadow"], "deny");
    assert_eq!(headers["x-roomguard-reasons"], "UNAUTHENTICATED_MEDIA");
    for room in 1..=45 {
        assert_eq!(
            authz(&server, &history(room), Some("tok-alice")).await.0,
            204
        );
    }
    assert!(homeserver.state.locked.lock().unwrap().is_empty());
}

/// The rule on public rooms reads the room's details from the admin API, once per room while they are remembered.
#[tokio::test]
async fn room_details_come_from_the_admin_api_when_a_rule_needs_them() {
    let homeserver = people().await;
    homeserver
        .state
        .token("tok-ext", "@ext:agent.externe.tchap.gouv.fr");
    homeserver
        .state
        .room("!room1:agent.finances.tchap.gouv.fr", "public", false);
    homeserver
        .state
        .room("!room2:agent.finances.tchap.gouv.fr", "invite", false);
    let (server, _) = server(&homeserver, ReadsConfig::default(), Mode::Enforce).await;
    for _ in 0..3 {
        let (status, headers) = authz(&server, &history(1), Some("tok-ext")).await;
        assert_eq!(
            (status, headers["x-roomguard-status"].as_str()),
            (403, "403")
        );
        assert_eq!(headers["x-roomguard-reasons"], "EXTERNAL_IN_PUBLIC_ROOM");
    }
    assert_eq!(authz(&server, &history(2), Some("tok-ext")).await.0, 204);
    assert_eq!(
        authz(&server, &history(3), Some("tok-ext")).await.0,
        204,
        "unknown room"
    );
    assert_eq!(homeserver.state.room_calls.load(Ordering::SeqCst), 3);
}

/// Envoy's ext_authz on the gRPC listener: a refusal is the denied response Envoy sends the client as it is
/// (status, Matrix JSON body, Retry-After, CORS); an allowed read is OK.
#[tokio::test]
async fn envoy_ext_authz_answers_with_the_response_for_the_client() {
    let homeserver = people().await;
    let (server, _) = server(&homeserver, ReadsConfig::default(), Mode::Enforce).await;
    let mut client = AuthorizationClient::new(server.channel().await);
    let check = |path: String, token: &str| CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(AttrRequest {
                http: Some(HttpRequest {
                    id: "envoy-1".into(),
                    method: "GET".into(),
                    path,
                    headers: [("authorization".to_owned(), format!("Bearer {token}"))].into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    };
    for room in 1..=40 {
        let answer = client
            .check(check(history(room), "tok-alice"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.status.unwrap().code, 0, "room {room}");
        assert!(matches!(
            answer.http_response,
            Some(HttpResponse::OkResponse(_))
        ));
    }
    let answer = client
        .check(check(history(41), "tok-alice"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.status.unwrap().code, 7);
    let Some(HttpResponse::DeniedResponse(denied)) = answer.http_response else {
        panic!("a refusal carries the denied response");
    };
    assert_eq!(denied.status.unwrap().code, 429);
    let headers: std::collections::HashMap<String, String> = denied
        .headers
        .iter()
        .filter_map(|h| h.header.as_ref().map(|h| (h.key.clone(), h.value.clone())))
        .collect();
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["access-control-allow-origin"], "*");
    let body: serde_json::Value = serde_json::from_str(&denied.body).unwrap();
    assert_eq!(body["errcode"], "M_LIMIT_EXCEEDED");
    assert_eq!(
        headers["retry-after"],
        body["retry_after_ms"]
            .as_u64()
            .unwrap()
            .div_ceil(1000)
            .to_string()
    );
}

/// The `CheckRead` rpc: the same decision for a caller that resolved the account itself, and bad input is
/// INVALID_ARGUMENT naming the field.
#[tokio::test]
async fn the_check_read_rpc_decides_for_a_given_reader() {
    let homeserver = people().await;
    let (server, _) = server(&homeserver, ReadsConfig::default(), Mode::Enforce).await;
    let mut client = server.client().await;
    let read = |uri: &str| proto::CheckReadRequest {
        request_id: "r-1".into(),
        method: "GET".into(),
        uri: uri.into(),
        authorization: String::new(),
        reader: common::subject(BOB, 0),
    };
    let answer = client
        .check_read(read(&history(1)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.kind, proto::ReadKind::History as i32);
    assert_eq!(answer.room_id, "!room1:agent.finances.tchap.gouv.fr");
    assert_eq!(answer.user_id, BOB);
    assert_eq!(answer.http_status, 0);
    let decision = answer.decision.unwrap();
    assert_eq!(decision.effect, proto::Effect::Allow as i32);
    assert_eq!(decision.request_id, "r-1");
    let answer = client
        .check_read(proto::CheckReadRequest {
            reader: None,
            ..read("/_matrix/media/v3/thumbnail/s/m")
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (answer.http_status, answer.kind),
        (403, proto::ReadKind::Thumbnail as i32)
    );
    assert!(answer.matrix_error.contains("UNAUTHENTICATED_MEDIA"));
    for (request, field) in [
        (read("/_matrix/client/v3/rooms/%zz/messages"), "uri"),
        (read(""), "uri"),
        (
            proto::CheckReadRequest {
                method: String::new(),
                ..read("/x")
            },
            "method",
        ),
        (
            proto::CheckReadRequest {
                authorization: "x".repeat(5000),
                ..read("/x")
            },
            "authorization",
        ),
        (
            proto::CheckReadRequest {
                reader: common::subject("alice", 0),
                ..read("/x")
            },
            "reader.user_id",
        ),
    ] {
        let status = client.check_read(request).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(
            status.message().starts_with(field),
            "{field}: {}",
            status.message()
        );
    }
    assert_eq!(homeserver.state.whoami_calls.load(Ordering::SeqCst), 0);
}

/// A caller that names the reader itself never gets an account locked: containment is for accounts roomguard
/// resolved from a token (otherwise any gRPC caller could lock anyone).
#[tokio::test]
async fn a_reader_named_by_the_caller_is_never_locked() {
    let homeserver = people().await;
    let config = ReadsConfig {
        lock_account_after: 1,
        ..ReadsConfig::default()
    };
    let (server, _) = server(&homeserver, config, Mode::Enforce).await;
    let mut client = server.client().await;
    for room in 1..=45 {
        client
            .check_read(proto::CheckReadRequest {
                request_id: String::new(),
                method: "GET".into(),
                uri: history(room),
                authorization: String::new(),
                reader: common::subject(BOB, 0),
            })
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(homeserver.state.locked.lock().unwrap().is_empty());
}
