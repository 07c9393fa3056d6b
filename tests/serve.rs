//! The binary, black-box: config errors and their exit code, `roomguard health`, and a full serve run whose every
//! output (decision log on stdout, trace-level logs on stderr, metrics) is searched for message text.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use roomguard_test_support as common;

use std::{
    net::SocketAddr,
    path::Path,
    process::{Command, Output, Stdio},
    time::Duration,
};

use common::{Extras, TestServer, decide_send};
use roomguard::grpc::{
    proto::{self, policy_service_client::PolicyServiceClient},
    server::Options,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_roomguard");

fn roomguard(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BIN);
    command.args(args).env_remove("RUST_LOG");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// An invalid config file exits with code 64 and names the setting.
#[test]
fn an_invalid_config_file_exits_64_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("roomguard.toml");
    std::fs::write(&path, "[limits]\nrequest_timeout_ms = \"soon\"\n").unwrap();
    let out = roomguard(&["serve", "--config", path.to_str().unwrap()], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("limits.request_timeout_ms"), "{stderr}");
}

/// A half TLS set-up, an unknown key, a bad environment variable and an unknown `--set` are config errors too, each
/// naming its setting and where its value came from.
#[test]
fn invalid_settings_from_every_source_exit_64() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("roomguard.toml");
    std::fs::write(&path, "[tls]\ncert = \"Cargo.toml\"\n").unwrap();
    let out = roomguard(&["serve", "--config", path.to_str().unwrap()], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("tls.key"), "{stderr}");

    std::fs::write(&path, "listen_address = \"0.0.0.0:1\"\n").unwrap();
    let out = roomguard(&["serve", "--config", path.to_str().unwrap()], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("listen_address"), "{stderr}");

    let out = roomguard(&["serve"], &[("ROOMGUARD_MODE", "dry-run")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(
        stderr.contains("mode: unknown variant `dry-run`"),
        "{stderr}"
    );
    assert!(stderr.contains("from ROOMGUARD_MODE"), "{stderr}");

    let out = roomguard(&["serve"], &[("ROOMGUARD_MAX_CONNECTIONS", "many")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("limits.max_connections"), "{stderr}");
    assert!(
        stderr.contains("from ROOMGUARD_MAX_CONNECTIONS"),
        "{stderr}"
    );

    let out = roomguard(&["serve", "--set", "limits.max_conections=5"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("limits.max_conections"), "{stderr}");
    assert!(stderr.contains("from --set"), "{stderr}");

    // An empty variable is an unset one: the error is about the flag, not about ROOMGUARD_MODE.
    let out = roomguard(
        &["serve", "--max-concurrent-requests", "0"],
        &[("ROOMGUARD_MODE", "")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(
        stderr.contains("limits.max_concurrent_requests"),
        "{stderr}"
    );
}

/// `roomguard health` exits 0 against a serving server and 1 when nothing answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_subcommand_reports_serving_and_unreachable() {
    let server =
        TestServer::start_with(Path::new("policies"), Options::default(), Extras::default()).await;
    let addr = format!("http://{}", server.addr);
    let out = tokio::task::spawn_blocking(move || roomguard(&["health", "--addr", &addr], &[]))
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("SERVING"));
    let stopped = server.addr;
    server.stop().await;
    let addr = format!("http://{stopped}");
    let out = tokio::task::spawn_blocking(move || {
        roomguard(&["health", "--addr", &addr, "--timeout-ms", "1000"], &[])
    })
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const CANARIES: [&str; 3] = [
    "canary-body-77d0c3",
    "canary-html-2e94ab",
    "canary-file-c5a1f8",
];

fn marked(i: usize) -> proto::CheckMessageSendRequest {
    common::marked_message(&format!("req-{i}"), CANARIES)
}

/// A real `roomguard serve` at trace level, decision log on stdout, metrics on: marked messages are decided, one
/// NDJSON line each is flushed on SIGTERM, and no message text appears on stdout, stderr or the metrics page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marked_message_text_never_reaches_any_output() {
    let listen = free_port();
    let metrics = free_port();
    let mut child = tokio::process::Command::new(BIN)
        .args([
            "serve",
            "--listen",
            &listen.to_string(),
            "--metrics-listen",
            &metrics.to_string(),
        ])
        .args(["--decision-log", "stdout", "--policies", "policies"])
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_task = tokio::spawn(async move {
        let mut s = String::new();
        stdout.read_to_string(&mut s).await.unwrap();
        s
    });
    let err_task = tokio::spawn(async move {
        let mut s = String::new();
        stderr.read_to_string(&mut s).await.unwrap();
        s
    });

    let mut channel = None;
    for _ in 0..100 {
        match tonic::transport::Channel::from_shared(format!("http://{listen}"))
            .unwrap()
            .connect()
            .await
        {
            Ok(c) => {
                channel = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let mut client =
        PolicyServiceClient::new(channel.expect("roomguard serve accepts connections"));
    for i in 0..3 {
        let d = decide_send(&mut client, marked(i)).await;
        assert_eq!(d.effect, proto::Effect::Deny as i32);
        assert_ne!(d.classification, "none");
    }
    let mut http = tokio::net::TcpStream::connect(metrics).await.unwrap();
    http.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut metrics_text = String::new();
    http.read_to_string(&mut metrics_text).await.unwrap();
    assert!(
        metrics_text.contains("roomguard_decisions_total"),
        "{metrics_text}"
    );

    drop(client);
    let pid = child.id().unwrap().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("roomguard stops on SIGTERM")
        .unwrap();
    let stdout = out_task.await.unwrap();
    let stderr = err_task.await.unwrap();
    assert!(status.success(), "{status:?}\n{stderr}");

    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not NDJSON: {e}: {l}")))
        .collect();
    assert_eq!(
        lines.len(),
        3,
        "one line per decision, flushed at shutdown:\n{stdout}"
    );
    assert!(
        lines
            .iter()
            .all(|l| l["effect"] == "deny" && l["shadow"] == false)
    );
    assert!(
        stderr.contains("TRACE") || stderr.contains("DEBUG"),
        "trace logging was on"
    );
    for canary in CANARIES {
        for (name, text) in [
            ("stdout", &stdout),
            ("stderr", &stderr),
            ("metrics", &metrics_text),
        ] {
            assert!(!text.contains(canary), "`{canary}` leaked into {name}");
        }
    }
}

/// The image's HEALTHCHECK runs `roomguard health` against the address the image listens on, as a non-root user.
#[test]
fn the_dockerfile_health_checks_through_the_binary() {
    let dockerfile = std::fs::read_to_string("Dockerfile").unwrap();
    let healthcheck = dockerfile
        .lines()
        .skip_while(|l| !l.starts_with("HEALTHCHECK"))
        .take(2)
        .collect::<String>();
    assert!(
        healthcheck.contains("\"roomguard\", \"health\""),
        "{healthcheck}"
    );
    assert!(dockerfile.contains("ROOMGUARD_LISTEN=0.0.0.0:50051"));
    assert!(dockerfile.contains("ROOMGUARD_HEALTH_ADDR=http://127.0.0.1:50051"));
    assert!(dockerfile.contains("USER 10001"));
    // The variable the HEALTHCHECK relies on is the one `roomguard health` reads.
    let out = roomguard(&["health", "--help"], &[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("ROOMGUARD_HEALTH_ADDR"));
}
