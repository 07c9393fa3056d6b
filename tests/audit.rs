//! `roomguard audit` as a command: its errors and exit codes, and how it treats a homeserver that is slow to answer.
//! The homeserver here is a small scripted HTTP server (what a real Synapse answers is in tests/audit_e2e, against
//! a real one): it answers each path with the answers it is given, in order, and records what was asked.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use std::{
    collections::HashMap,
    io::{Read, Write},
    net::TcpListener,
    process::Output,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// A scripted homeserver: for each path prefix, answers `(status, body)` in order, the last one repeated.
struct Scripted {
    url: String,
    asked: Arc<Mutex<Vec<(String, Instant)>>>,
}

fn scripted(answers: Vec<(&'static str, Vec<(u16, &'static str)>)>) -> Scripted {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let asked = Arc::new(Mutex::new(Vec::new()));
    let recorded = asked.clone();
    std::thread::spawn(move || {
        let mut served: HashMap<&str, usize> = HashMap::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).to_string();
            let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
            recorded
                .lock()
                .unwrap()
                .push((path.clone(), Instant::now()));
            let (status, body) = answers
                .iter()
                .find(|(prefix, _)| path.starts_with(prefix))
                .map(|(prefix, list)| {
                    let n = served.entry(prefix).or_default();
                    let answer = list[(*n).min(list.len() - 1)];
                    *n += 1;
                    answer
                })
                .unwrap_or((404, r#"{"errcode":"M_UNRECOGNIZED"}"#));
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    Scripted { url, asked }
}

fn audit(homeserver: &str, token_file: &std::path::Path, extra: &[&str]) -> Output {
    let policies = concat!(env!("CARGO_MANIFEST_DIR"), "/policies");
    std::process::Command::new(env!("CARGO_BIN_EXE_roomguard"))
        .args(["audit", "--homeserver", homeserver, "--admin-token-file"])
        .arg(token_file)
        .args(["--policies", policies, "--progress", "none"])
        .args(extra)
        .output()
        .unwrap()
}

fn token_file(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let path = dir.path().join("token");
    std::fs::write(&path, "syt_the_secret_admin_token\n").unwrap();
    path
}

const WHOAMI: (&str, Vec<(u16, &str)>) = ("/_matrix/client/v3/account/whoami", Vec::new());

fn whoami() -> (&'static str, Vec<(u16, &'static str)>) {
    (WHOAMI.0, vec![(200, r#"{"user_id":"@admin:example.org"}"#)])
}

/// A token file that is missing or empty is a usage error naming the file; the token is never printed.
#[test]
fn a_missing_or_empty_token_file_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let out = audit("http://127.0.0.1:9", &missing, &[]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--admin-token-file"));
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let out = audit("http://127.0.0.1:9", &empty, &[]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty"));
}

/// `--apply` without a journal, or a `--since` that is not a date, is refused before anything is asked.
#[test]
fn unsafe_or_unreadable_flags_are_refused_before_any_call() {
    let dir = tempfile::tempdir().unwrap();
    let token = token_file(&dir);
    let out = audit(
        "http://127.0.0.1:9",
        &token,
        &["--remediate", "redact-events", "--apply"],
    );
    assert_eq!(
        out.status.code(),
        Some(64),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--journal"));
    let out = audit("http://127.0.0.1:9", &token, &["--since", "31/12/2024"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("31/12/2024"));
}

/// Nothing listening: said within seconds, exit 69.
#[test]
fn an_unreachable_homeserver_exits_69() {
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let out = audit(&format!("http://127.0.0.1:{port}"), &token_file(&dir), &[]);
    assert_eq!(
        out.status.code(),
        Some(69),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach"));
}

/// A refused token, and a token of an account that is not a server admin: exit 77, the token never in the output.
#[test]
fn a_refused_or_non_admin_token_exits_77_without_printing_it() {
    let dir = tempfile::tempdir().unwrap();
    let refused = scripted(vec![(
        WHOAMI.0,
        vec![(401, r#"{"errcode":"M_UNKNOWN_TOKEN"}"#)],
    )]);
    let out = audit(&refused.url, &token_file(&dir), &[]);
    assert_eq!(out.status.code(), Some(77));
    let not_admin = scripted(vec![
        whoami(),
        (
            "/_synapse/admin/v1/rooms",
            vec![(
                403,
                r#"{"errcode":"M_FORBIDDEN","error":"You are not a server admin"}"#,
            )],
        ),
    ]);
    let out2 = audit(&not_admin.url, &token_file(&dir), &[]);
    assert_eq!(out2.status.code(), Some(77));
    assert!(String::from_utf8_lossy(&out2.stderr).contains("not a server administrator"));
    for out in [out, out2] {
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains("syt_the_secret_admin_token"), "{all}");
    }
}

/// A rate limit is waited out as long as the homeserver asks (`retry_after_ms`), then the call is made again; a 502
/// is retried too. With nothing found, the audit exits 0 and its totals line says it is complete.
#[test]
fn rate_limits_and_server_errors_are_waited_out_and_retried() {
    let dir = tempfile::tempdir().unwrap();
    let server = scripted(vec![
        whoami(),
        (
            "/_synapse/admin/v1/rooms",
            vec![
                (200, r#"{"rooms":[],"total_rooms":0}"#),
                (
                    429,
                    r#"{"errcode":"M_LIMIT_EXCEEDED","retry_after_ms":700}"#,
                ),
                (502, "bad gateway"),
                (200, r#"{"rooms":[],"total_rooms":0}"#),
            ],
        ),
    ]);
    let out = audit(&server.url, &token_file(&dir), &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let totals: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(totals["type"], "totals");
    assert_eq!(totals["complete"], true);
    let asked = server.asked.lock().unwrap();
    let rooms: Vec<Instant> = asked
        .iter()
        .filter(|(path, _)| path.starts_with("/_synapse/admin/v1/rooms"))
        .map(|(_, at)| *at)
        .collect();
    assert_eq!(rooms.len(), 4, "{asked:?}");
    assert!(
        rooms[2] - rooms[1] >= Duration::from_millis(700),
        "the retry came {:?} after the 429 asked for 700 ms",
        rooms[2] - rooms[1]
    );
}

/// A room named in `--rooms` that the homeserver does not have is a usage error naming it.
#[test]
fn an_unknown_room_in_the_list_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let server = scripted(vec![
        whoami(),
        (
            "/_synapse/admin/v1/rooms",
            vec![(200, r#"{"rooms":[],"total_rooms":0}"#)],
        ),
    ]);
    let out = audit(
        &server.url,
        &token_file(&dir),
        &["--rooms", "!nope:example.org"],
    );
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("!nope:example.org"));
}

/// The admin token revoked while the audit acts: the action in hand is journalled `failed`, no other is tried, and
/// the run ends with 77 (every further call would be refused the same way).
#[test]
fn a_token_revoked_during_remediation_stops_the_run_with_77() {
    let dir = tempfile::tempdir().unwrap();
    let room = "/_synapse/admin/v1/rooms/%21r%3Aexample.org";
    let server = scripted(vec![
        whoami(),
        (
            "/_synapse/admin/v1/rooms?",
            vec![(
                200,
                r#"{"rooms":[{"room_id":"!r:example.org","join_rules":"public","public":false,"joined_members":1}],"total_rooms":1}"#,
            )],
        ),
        (
            leak(format!("{room}/state")),
            vec![(
                200,
                r#"{"state":[{"type":"m.room.create","state_key":"","sender":"@a:example.org","event_id":"$c","origin_server_ts":1,"content":{"room_version":"10"}},{"type":"m.room.join_rules","state_key":"","sender":"@a:example.org","event_id":"$j","origin_server_ts":1,"content":{"join_rule":"public"}}]}"#,
            )],
        ),
        (
            leak(format!("{room}/members")),
            vec![(200, r#"{"members":["@a:example.org"]}"#)],
        ),
        (
            leak(format!("{room}/messages")),
            vec![(
                200,
                r#"{"chunk":[{"type":"m.room.message","event_id":"$m1","sender":"@a:example.org","origin_server_ts":2,"content":{"msgtype":"m.text","body":"DIFFUSION RESTREINTE : note 1"}},{"type":"m.room.message","event_id":"$m2","sender":"@a:example.org","origin_server_ts":3,"content":{"msgtype":"m.text","body":"DIFFUSION RESTREINTE : note 2"}}]}"#,
            )],
        ),
        (
            leak(format!("{room}/context")),
            vec![(401, r#"{"errcode":"M_UNKNOWN_TOKEN"}"#)],
        ),
        (
            "/_synapse/admin/v1/room/",
            vec![(200, r#"{"local":[],"remote":[]}"#)],
        ),
        (
            "/_synapse/admin/v2/users/",
            vec![(200, r#"{"admin":false}"#)],
        ),
    ]);
    let journal = dir.path().join("journal.ndjson");
    let out = audit(
        &server.url,
        &token_file(&dir),
        &[
            "--remediate",
            "redact-events",
            "--apply",
            "--journal",
            journal.to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(77), "{stderr}");
    assert!(stderr.contains("refused the admin token"), "{stderr}");
    let journal = std::fs::read_to_string(&journal).unwrap();
    let outcomes: Vec<&str> = journal
        .lines()
        .filter(|l| l.contains(r#""type":"done""#))
        .collect();
    assert_eq!(
        outcomes.len(),
        1,
        "one action tried, then the run stopped:\n{journal}"
    );
    assert!(outcomes[0].contains(r#""status":"failed""#), "{journal}");
    assert_eq!(
        server
            .asked
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p.contains("/context/"))
            .count(),
        1,
        "no second action was tried"
    );
}

/// A path built at run time, as the scripted server's `&'static str`.
fn leak(path: String) -> &'static str {
    Box::leak(path.into_boxed_str())
}
