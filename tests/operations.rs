//! Operations, black-box: metrics, the decision log (and that message content never reaches it), shadow mode, the
//! Unix socket listener, the message size limit, and overload protection.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use roomguard_test_support as common;

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use common::{Extras, TestServer, decide_send, send};
use roomguard::{
    grpc::{
        proto::{self, JoinRule, policy_service_client::PolicyServiceClient},
        server::Options,
    },
    ops::{
        decision_log::DecisionLog,
        metrics::Metrics,
        {decision_log::LogOutput, limits::LimitsConfig, mode::Mode},
    },
};
use tonic::Code;

const AGENT: &str = "@alice:agent.finances.tchap.gouv.fr";

/// Text that must never appear in any output: in the body, the HTML body and the file name of marked messages.
const CANARIES: [&str; 3] = [
    "canary-body-5f1e2d",
    "canary-html-9a7c41",
    "canary-file-03b8e6",
];

fn marked() -> proto::CheckMessageSendRequest {
    common::marked_message("req-marked", CANARIES)
}

/// Marked messages are decided and logged; the decision log and the metrics hold their decisions but none of their
/// text (body, formatted body, file name).
#[tokio::test]
async fn marked_message_text_is_absent_from_the_decision_log_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("decisions.ndjson");
    let metrics = Arc::new(Metrics::new());
    let log = DecisionLog::start(&LogOutput::File(log_path.clone()), 64, metrics.clone()).unwrap();
    let options = Options {
        metrics,
        decision_log: log.clone(),
        ..Options::default()
    };
    let extras = Extras {
        metrics: true,
        ..Extras::default()
    };
    let server = TestServer::start_with(Path::new("policies"), options, extras).await;
    let mut client = server.client().await;
    for _ in 0..3 {
        let d = decide_send(&mut client, marked()).await;
        assert_eq!(d.effect, proto::Effect::Deny as i32);
        assert_eq!(d.classification, "restricted");
    }
    let metrics_text = server.scrape_metrics().await;
    server.stop().await;
    log.close();

    let logged = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<serde_json::Value> = logged
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "one line per decision:\n{logged}");
    let line = &lines[0];
    assert_eq!(line["rpc"], "CheckMessageSend");
    assert_eq!(line["request_id"], "req-marked");
    assert_eq!(line["user_id"], AGENT);
    assert_eq!(line["room_id"], "!forum:agent.finances.tchap.gouv.fr");
    assert_eq!(line["effect"], "deny");
    assert_eq!(line["classification"], "restricted");
    assert_eq!(line["shadow"], false);
    assert_eq!(line["roles"][0], "agent");
    assert_eq!(line["reasons"][0], "CLASSIFIED_IN_UNENCRYPTED_ROOM");
    assert_eq!(line["rules"][0], "send.classified-unencrypted");
    assert!(
        line["policy_version"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert_eq!(line["decision_id"].as_str().unwrap().len(), 36);
    assert!(line["latency_us"].is_u64());
    for canary in CANARIES {
        assert!(
            !logged.contains(canary),
            "`{canary}` leaked into the decision log"
        );
        assert!(
            !metrics_text.contains(canary),
            "`{canary}` leaked into the metrics"
        );
    }
    assert!(
        !logged.to_lowercase().contains("diffusion"),
        "marking text in the log"
    );
}

/// The metrics endpoint serves every documented family in the Prometheus text format, counting decisions.
#[tokio::test]
async fn metrics_count_decisions_and_report_the_policy() {
    let extras = Extras {
        metrics: true,
        ..Extras::default()
    };
    let server = TestServer::start_with(Path::new("policies"), Options::default(), extras).await;
    let mut client = server.client().await;
    client
        .check_message_send(send(AGENT, JoinRule::Public, false, "Bonjour"))
        .await
        .unwrap();
    client.check_message_send(marked()).await.unwrap();
    let text = server.scrape_metrics().await;
    let version = server.store.status().policy_version;
    for expected in [
        "# TYPE roomguard_decisions_total counter",
        "roomguard_decisions_total{rpc=\"CheckMessageSend\",effect=\"allow\",mode=\"enforce\"} 1",
        "roomguard_decisions_total{rpc=\"CheckMessageSend\",effect=\"deny\",mode=\"enforce\"} 1",
        "roomguard_decision_reasons_total{rpc=\"CheckMessageSend\",effect=\"allow\",code=\"ALLOWED\"} 1",
        "roomguard_decision_reasons_total{rpc=\"CheckMessageSend\",effect=\"deny\",code=\"CLASSIFIED_IN_PUBLIC_ROOM\"} 1",
        "# TYPE roomguard_decision_duration_seconds histogram",
        "roomguard_decision_duration_seconds_count{rpc=\"CheckMessageSend\"} 2",
        "roomguard_decision_duration_seconds_bucket{rpc=\"CheckMessageSend\",le=\"+Inf\"} 2",
        "roomguard_policy_reloads_total{result=\"succeeded\"} 0",
        "roomguard_policy_reloads_total{result=\"refused\"} 0",
        "roomguard_policy_reloads_unchanged_total 0",
        &format!("roomguard_policy_info{{policy_version=\"{version}\"}} 1"),
        "roomguard_requests_in_flight 0",
        "roomguard_requests_shed_total 0",
        "roomguard_decision_log_dropped_total 0",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in\n{text}");
    }
}

/// In shadow mode a deny is answered ALLOW, marked shadow, carrying the policy's effect and reasons.
#[tokio::test]
async fn shadow_mode_allows_and_carries_the_enforced_decision() {
    let options = Options {
        mode: Mode::Shadow,
        ..Options::default()
    };
    let server = TestServer::with_options(options).await;
    let mut client = server.client().await;
    let d = decide_send(&mut client, marked()).await;
    assert_eq!(d.effect, proto::Effect::Allow as i32);
    assert!(d.shadow);
    assert_eq!(d.policy_effect, proto::Effect::Deny as i32);
    assert_eq!(
        common::codes(&d),
        [
            "CLASSIFIED_IN_UNENCRYPTED_ROOM",
            "CLASSIFIED_IN_PUBLIC_ROOM"
        ]
    );
}

/// When enforcing, `policy_effect` equals `effect` and `shadow` is false.
#[tokio::test]
async fn enforce_mode_answers_the_policy_effect() {
    let server = TestServer::shipped().await;
    let mut client = server.client().await;
    let d = decide_send(&mut client, marked()).await;
    assert_eq!(d.effect, proto::Effect::Deny as i32);
    assert_eq!(d.policy_effect, proto::Effect::Deny as i32);
    assert!(!d.shadow);
}

/// A co-located homeserver can call over the Unix socket.
#[tokio::test]
async fn serves_on_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("roomguard.sock");
    let extras = Extras {
        unix: Some(path.clone()),
        ..Extras::default()
    };
    let server = TestServer::start_with(Path::new("policies"), Options::default(), extras).await;
    let channel = tonic::transport::Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                    tokio::net::UnixStream::connect(path).await?,
                ))
            }
        }))
        .await
        .unwrap();
    let d = PolicyServiceClient::new(channel)
        .check_message_send(send(AGENT, JoinRule::Public, false, "Bonjour"))
        .await
        .unwrap()
        .into_inner()
        .decision
        .unwrap();
    assert_eq!(d.effect, proto::Effect::Allow as i32);
    server.stop().await;
}

/// A request larger than `limits.max_request_bytes` is refused OUT_OF_RANGE (tonic's code for it), not decoded.
#[tokio::test]
async fn an_oversized_request_is_refused() {
    let options = Options {
        limits: LimitsConfig {
            max_request_bytes: 4096,
            ..LimitsConfig::default()
        },
        ..Options::default()
    };
    let server = TestServer::with_options(options).await;
    let mut client = server.client().await;
    let err = client
        .check_message_send(send(AGENT, JoinRule::Public, false, &"a".repeat(8192)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::OutOfRange, "{err:?}");
    client
        .check_message_send(send(AGENT, JoinRule::Public, false, "Bonjour"))
        .await
        .unwrap();
}

/// Driven past its concurrency limit, the server sheds the excess at once with RESOURCE_EXHAUSTED, admitted calls
/// keep a bounded latency, and once the burst is over every call is answered again. The slow decisions run off the
/// async workers, which stay free to shed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_is_shed_at_once_and_the_server_recovers() {
    let metrics = Arc::new(Metrics::new());
    let options = Options {
        limits: LimitsConfig {
            max_concurrent_requests: 2,
            ..LimitsConfig::default()
        },
        metrics: metrics.clone(),
        // A deliberately slow policy: every decision takes 30 ms.
        decision_delay: Duration::from_millis(30),
        ..Options::default()
    };
    let server = TestServer::start_with(Path::new("policies"), options, Extras::default()).await;
    let channel = server.channel().await;

    // One call alone: how long an admitted call takes with no contention.
    let started = Instant::now();
    PolicyServiceClient::new(channel.clone())
        .check_message_send(send(AGENT, JoinRule::Public, false, "Bonjour"))
        .await
        .unwrap();
    let alone = started.elapsed();

    let calls = 40;
    let mut tasks = Vec::new();
    for _ in 0..calls {
        let mut client = PolicyServiceClient::new(channel.clone());
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            let result = client
                .check_message_send(send(AGENT, JoinRule::Public, false, "Bonjour"))
                .await;
            (result.map(drop).map_err(|s| s.code()), started.elapsed())
        }));
    }
    let (mut admitted, mut shed) = (Vec::new(), Vec::new());
    for task in tasks {
        match task.await.unwrap() {
            (Ok(()), latency) => admitted.push(latency),
            (Err(Code::ResourceExhausted), latency) => shed.push(latency),
            (Err(code), _) => panic!("unexpected {code:?}"),
        }
    }
    let worst_admitted = admitted.iter().max().copied().unwrap_or_default();
    let worst_shed = shed.iter().max().copied().unwrap_or_default();
    eprintln!(
        "alone {alone:?}; {} admitted (worst {worst_admitted:?}), {} shed (worst {worst_shed:?})",
        admitted.len(),
        shed.len()
    );
    assert!(!shed.is_empty(), "the burst must exceed the limit");
    assert!(!admitted.is_empty(), "some calls must be admitted");
    assert_eq!(metrics.shed_count(), shed.len() as u64);

    // Admitted calls wait for at most the few calls ahead of them, never for the whole burst.
    let bound = alone * 12 + Duration::from_millis(500);
    assert!(
        worst_admitted < bound,
        "admitted latency {worst_admitted:?} over {bound:?}"
    );
    // Shed calls do not wait for a permit.
    let bound = alone * 4 + Duration::from_millis(200);
    assert!(
        worst_shed < bound,
        "shed latency {worst_shed:?} over {bound:?}"
    );
    // Recovery: the burst is over, every call is answered.
    assert_eq!(metrics.in_flight(), 0);
    let mut client = PolicyServiceClient::new(channel);
    for _ in 0..5 {
        client
            .check_message_send(send(AGENT, JoinRule::Public, false, "Bonjour"))
            .await
            .unwrap();
    }
    assert_eq!(
        metrics.decided_off_the_workers_count(),
        1 + admitted.len() as u64 + 5,
        "every slow decision runs on the blocking pool"
    );
}
