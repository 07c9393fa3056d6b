//! The policy author's command-line tools, run as a user runs them: `roomguard validate`, `check` and `test`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use roomguard_test_support as common;

use std::{
    io::Write,
    path::Path,
    process::{Command, Output, Stdio},
};

use common::copy_policies;

fn roomguard(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_roomguard"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The shipped policy validates.
#[test]
fn validate_accepts_the_shipped_policy() {
    let out = roomguard(&["validate", "policies"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("valid (34 rules"),
        "{}",
        text(&out.stdout)
    );
}

/// A deliberately broken copy fails with every problem as file:line, and a non-zero exit.
#[test]
fn validate_reports_every_problem_with_file_and_line() {
    let dir = copy_policies(Path::new("policies"));
    let p = dir.path();
    let rules = std::fs::read_to_string(p.join("rules.csv")).unwrap();
    let rules_lines = rules.lines().count();
    std::fs::write(
        p.join("rules.csv"),
        format!(
            "{rules}p, send.allow, send, true, allow, ALLOWED\np, x, send, r.msg.nope, deny, NO_SUCH_CODE\np, y, send, (, deny, ALLOWED\n"
        ),
    )
    .unwrap();
    let model = std::fs::read_to_string(p.join("model.conf")).unwrap();
    std::fs::write(
        p.join("model.conf"),
        model.replace(
            "e = some(where (p.eft == allow)) && !some(where (p.eft == deny))",
            "e = priority(p.eft) || deny",
        ),
    )
    .unwrap();
    std::fs::write(p.join("users.csv"), "@ok:example.org, agent\n@broken\n").unwrap();
    std::fs::write(
        p.join("markings.toml"),
        "[[marking]]\nlabel = \"x\"\nlevel = \n",
    )
    .unwrap();

    let out = roomguard(&["validate", p.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(65));
    let err = text(&out.stderr);
    for expected in [
        "model.conf:".to_string(),
        format!(
            "rules.csv:{}: rule id `send.allow` is already used",
            rules_lines + 1
        ),
        format!(
            "rules.csv:{}: rule `x`: reason code `NO_SUCH_CODE`",
            rules_lines + 2
        ),
        format!(
            "rules.csv:{}: rule `x`: `r.msg.nope` is not an attribute",
            rules_lines + 2
        ),
        format!(
            "rules.csv:{}: rule `y`: the condition does not parse",
            rules_lines + 3
        ),
        "users.csv:2:".to_string(),
        "markings.toml:3:".to_string(),
    ] {
        assert!(err.contains(&expected), "missing {expected:?} in:\n{err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

/// A matcher that does not parse and a malformed test suite are reported with their line.
#[test]
fn validate_reports_a_broken_matcher_and_a_broken_suite() {
    let dir = copy_policies(Path::new("policies"));
    let model = std::fs::read_to_string(dir.path().join("model.conf")).unwrap();
    std::fs::write(
        dir.path().join("model.conf"),
        model.replace("eval(p.cond)", "eval(p.cond) &&"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("tests")).unwrap();
    std::fs::write(
        dir.path().join("tests/broken.yaml"),
        "cases:\n  - name: x\n    expect: [unclosed\n",
    )
    .unwrap();
    let out = roomguard(&["validate", dir.path().to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(65));
    let err = text(&out.stderr);
    let matcher_line = model.lines().position(|l| l.starts_with("m =")).unwrap() + 1;
    assert!(
        err.contains(&format!(
            "model.conf:{matcher_line}: the matcher does not parse"
        )),
        "{err}"
    );
    assert!(err.contains("broken.yaml:"), "{err}");
}

/// Garbage in every file is reported, never a panic.
#[test]
fn validate_never_panics_on_garbage() {
    let dir = copy_policies(Path::new("policies"));
    for (i, file) in [
        "model.conf",
        "rules.csv",
        "reasons.toml",
        "roles.toml",
        "users.csv",
        "markings.toml",
    ]
    .iter()
    .enumerate()
    {
        let garbage: Vec<u8> = (0..400u32)
            .map(|n| ((n * 7919 + i as u32 * 31) % 251) as u8)
            .collect();
        std::fs::write(dir.path().join(file), &garbage).unwrap();
        let out = roomguard(&["validate", dir.path().to_str().unwrap()], None);
        assert_eq!(out.status.code(), Some(65), "{file}");
        assert!(
            !text(&out.stderr).contains("panicked"),
            "{file}: {}",
            text(&out.stderr)
        );
        std::fs::copy(Path::new("policies").join(file), dir.path().join(file)).unwrap();
        std::fs::write(
            dir.path().join(file),
            "[[[ \"unterminated\n p,,,,,,\n e = x\n",
        )
        .unwrap();
        let out = roomguard(&["validate", dir.path().to_str().unwrap()], None);
        assert_eq!(out.status.code(), Some(65), "{file}");
        assert!(
            !text(&out.stderr).contains("panicked"),
            "{file}: {}",
            text(&out.stderr)
        );
        std::fs::copy(Path::new("policies").join(file), dir.path().join(file)).unwrap();
    }
}

/// `check` decides a proto3 JSON request from stdin and shows which rules held.
#[test]
fn check_explains_a_decision() {
    let request = r#"{"sender": {"userId": "@bob:agent.externe.tchap.gouv.fr"},
        "room": {"roomId": "!r:agent.tchap.gouv.fr", "joinRule": "JOIN_RULE_PUBLIC", "historyVisibility": "HISTORY_VISIBILITY_SHARED"},
        "message": {"eventType": "m.room.message", "msgtype": "m.text", "body": "Bonjour"}}"#;
    let out = roomguard(&["check", "--policies", "policies"], Some(request));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("effect:         DENY"), "{stdout}");
    assert!(
        stdout.contains("EXTERNAL_IN_PUBLIC_ROOM (rule send.external-public)"),
        "{stdout}"
    );
    assert!(stdout.contains("[x] send.external-public"), "{stdout}");
    assert!(stdout.contains("[ ] send.classified-public"), "{stdout}");

    let out = roomguard(
        &["check", "--policies", "policies", "--json"],
        Some(request),
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["decision"]["effect"], "deny");
    assert_eq!(json["decision"]["roles"][0], "external");
    let matched: Vec<&str> = json["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["matched"] == true)
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(matched, ["send.external-public", "send.allow"]);
}

/// `check` refuses invalid requests the way the service does, naming the field.
#[test]
fn check_refuses_invalid_requests() {
    let out = roomguard(
        &["check", "--rpc", "publish"],
        Some(r#"{"requester": {"userId": "nobody"}}"#),
    );
    assert_eq!(out.status.code(), Some(64));
    assert!(
        text(&out.stderr).contains("requester.user_id:"),
        "{}",
        text(&out.stderr)
    );
    let out = roomguard(&["check"], Some("{not json"));
    assert_eq!(out.status.code(), Some(64));
}

/// `check` decides joins (with the counter's value given by flag) and state changes, told from their fields.
#[test]
fn check_decides_joins_and_state_changes() {
    let join = r#"{"user": {"userId": "@a:agent.tchap.gouv.fr"},
        "room": {"roomId": "!r:agent.tchap.gouv.fr", "joinRule": "PUBLIC", "historyVisibility": "SHARED"}}"#;
    let out = roomguard(
        &["check", "--policies", "policies", "--public-joins-1h", "20"],
        Some(join),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("JOIN_RATE_EXCEEDED"),
        "{}",
        text(&out.stdout)
    );
    let out = roomguard(&["check", "--policies", "policies"], Some(join));
    assert!(
        text(&out.stdout).contains("effect:         ALLOW"),
        "{}",
        text(&out.stdout)
    );

    let state = r#"{"sender": {"userId": "@a:agent.tchap.gouv.fr"},
        "room": {"roomId": "!r:agent.tchap.gouv.fr", "joinRule": "INVITE", "historyVisibility": "SHARED"},
        "proposed": {"roomId": "!r:agent.tchap.gouv.fr", "joinRule": "INVITE", "historyVisibility": "WORLD_READABLE"},
        "eventType": "m.room.history_visibility"}"#;
    let out = roomguard(&["check", "--policies", "policies", "--json"], Some(state));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("STATE_WORLD_READABLE"),
        "{}",
        text(&out.stdout)
    );
}

/// `test` passes on the shipped suites, fails with a diff on a wrong expectation, and speaks JSON and JUnit.
#[test]
fn test_runs_suites_and_reports() {
    let out = roomguard(&["test", "policies"], None);
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).trim_end().ends_with(" passed, 0 failed"),
        "{}",
        text(&out.stdout)
    );

    let dir = copy_policies(Path::new("policies"));
    std::fs::create_dir(dir.path().join("tests")).unwrap();
    std::fs::write(
        dir.path().join("tests/wrong.yaml"),
        "cases:\n  - name: wrongly expects an allow\n    send:\n      sender: { user_id: \"@e:matrix.org\" }\n      room: { join_rule: public, history_visibility: shared }\n      message: { body: hi }\n    expect: { effect: allow, codes: [ALLOWED] }\n",
    )
    .unwrap();
    let d = dir.path().to_str().unwrap();
    let out = roomguard(&["test", d], None);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("FAIL wrong.yaml: wrongly expects an allow"),
        "{stdout}"
    );
    assert!(
        stdout.contains("effect: expected allow, got deny"),
        "{stdout}"
    );
    assert!(
        stdout.contains("unexpected [\"EXTERNAL_IN_PUBLIC_ROOM\"]"),
        "{stdout}"
    );

    let out = roomguard(&["test", d, "--format", "json"], None);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["failed"], 1);
    let out = roomguard(&["test", d, "--format", "junit"], None);
    assert!(text(&out.stdout).contains("<failure message=\"effect: expected allow, got deny\">"));
}
