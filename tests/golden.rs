//! The policy test suites under `policies/tests/` run against the shipped policy: each case's decision must match.
//!
//! These files are the readable specification of the default policy; a failure prints every difference.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use std::path::Path;

use roomguard::{
    author::{
        suite::Suite,
        suite_report::{render_text, run_suites},
    },
    policy::PolicySnapshot,
};

/// Every case of every suite file gives the expected decision (the same runner as `roomguard test`).
#[test]
fn shipped_suites_pass_against_the_shipped_policy() {
    let policy = PolicySnapshot::load(Path::new("policies")).expect("the shipped policy loads");
    let reports =
        run_suites(&policy, Path::new("policies/tests")).unwrap_or_else(|e| panic!("{e}"));
    let files: std::collections::BTreeSet<&str> = reports.iter().map(|r| r.file.as_str()).collect();
    assert!(
        files.len() >= 3,
        "expected the default-policy, markings and invalid-input suites, found {files:?}"
    );
    let failed: Vec<_> = reports.iter().filter(|r| !r.passed).collect();
    assert!(failed.is_empty(), "{}", render_text(&reports));
    println!("{} policy cases passed", reports.len());
}

/// Every rule of the shipped policy is exercised by at least one case of the shipped suites: the default-policy
/// suite for sending and publishing, `doors.yaml` for joins, state changes and text in every event, `uploads.yaml`
/// for uploaded files, `reads.yaml` for reads.
#[test]
fn the_shipped_suites_cover_every_rule() {
    let policy = PolicySnapshot::load(Path::new("policies")).expect("the shipped policy loads");
    let mut text = String::new();
    for (file, at_least) in [
        ("default-policy.yaml", 20),
        ("doors.yaml", 20),
        ("uploads.yaml", 8),
        ("reads.yaml", 30),
    ] {
        let path = Path::new("policies/tests").join(file);
        let suite = Suite::from_file(&path).expect("suite parses");
        assert!(suite.cases.len() >= at_least, "{file}");
        text.push_str(&std::fs::read_to_string(&path).expect("readable"));
    }
    for rule in &policy.rules {
        let named = text.contains(&rule.id) || text.contains(&rule.code);
        assert!(
            named,
            "rule `{}` ({}) is not exercised by default-policy.yaml, doors.yaml, uploads.yaml or reads.yaml",
            rule.id, rule.code
        );
    }
}

/// Compiling the conditions into the matcher is an optimisation only: every suite case decides the same with the
/// literal `eval(p.cond)` of the model file.
#[tokio::test]
async fn compiled_conditions_decide_exactly_as_eval() {
    use roomguard::policy::engine::{Conditions, Engine};
    let model = std::fs::read_to_string("policies/model.conf").unwrap();
    let compiled = PolicySnapshot::load(Path::new("policies")).unwrap();
    let mut literal = PolicySnapshot::load(Path::new("policies")).unwrap();
    literal.engine = Engine::build_with(&model, &literal.rules, Conditions::Eval)
        .await
        .unwrap();
    let a = run_suites(&compiled, Path::new("policies/tests")).unwrap();
    let b = run_suites(&literal, Path::new("policies/tests")).unwrap();
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert!(
            x.passed && y.passed,
            "{} / {}: {:?} {:?}",
            x.file,
            x.name,
            x.failures,
            y.failures
        );
    }
}
