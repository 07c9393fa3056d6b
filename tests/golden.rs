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

use roomguard::{policy::PolicySnapshot, suite::Suite};

/// Every case of every suite file gives the expected decision.
#[test]
fn shipped_suites_pass_against_the_shipped_policy() {
    let policy = PolicySnapshot::load(Path::new("policies")).expect("the shipped policy loads");
    let mut files: Vec<_> = std::fs::read_dir("policies/tests")
        .expect("policies/tests exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 3,
        "expected the default-policy, markings and invalid-input suites, found {files:?}"
    );
    let mut failures = Vec::new();
    let mut count = 0;
    for file in &files {
        let suite = Suite::from_file(file).unwrap_or_else(|e| panic!("{e}"));
        for case in &suite.cases {
            count += 1;
            if let Err(diffs) = case.run(&policy) {
                failures.push(format!(
                    "{}: {}\n    {}",
                    file.display(),
                    case.name,
                    diffs.join("\n    ")
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!("{count} policy cases passed");
}

/// Every rule of the shipped policy is exercised by at least one case of the default-policy suite.
#[test]
fn the_default_policy_suite_covers_every_rule() {
    let policy = PolicySnapshot::load(Path::new("policies")).expect("the shipped policy loads");
    let suite =
        Suite::from_file(Path::new("policies/tests/default-policy.yaml")).expect("suite parses");
    let text = std::fs::read_to_string("policies/tests/default-policy.yaml").expect("readable");
    for rule in &policy.rules {
        let named = text.contains(&rule.id) || text.contains(&rule.code);
        assert!(
            named,
            "rule `{}` ({}) is not exercised by default-policy.yaml",
            rule.id, rule.code
        );
    }
    assert!(suite.cases.len() >= 20);
}
