//! The classifier measured on the two corpora of `policies/tests/`: several hundred ordinary French workplace messages
//! (with `Dr`, `DRH`, `secret`, `restreint`, `diffusion` in their ordinary senses) and the marked ones, with every
//! evasion class, in body, HTML body and file name. Prints both rates, and what one-edit matching adds to each:
//! `cargo test --test corpus -- --nocapture`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use std::path::Path;

use roomguard::{author::suite::Suite, domain::message::Message, policy::PolicySnapshot};

/// The messages of a corpus suite and the label each expects.
fn corpus(file: &str) -> Vec<(Message, String)> {
    let suite = Suite::from_file(&Path::new("policies/tests").join(file)).expect("corpus parses");
    suite
        .cases
        .iter()
        .map(|case| {
            let m = case
                .send
                .as_ref()
                .and_then(|s| s.message.as_ref())
                .expect("a corpus case sends a message");
            let message = Message {
                event_type: m.event_type.clone(),
                msgtype: m.msgtype.clone(),
                body: m.body.clone(),
                formatted_body: m.formatted_body.clone(),
                filename: m.filename.clone(),
                ..Message::default()
            };
            let label = case
                .expect
                .classification
                .clone()
                .expect("a corpus case expects a label");
            (message, label)
        })
        .collect()
}

/// The shipped policy, and the same with one-edit matching turned off for every marking.
fn policies() -> (PolicySnapshot, PolicySnapshot, tempfile::TempDir) {
    let shipped = PolicySnapshot::load(Path::new("policies")).expect("the shipped policy loads");
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir("policies").unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    let markings = dir.path().join("markings.toml");
    let text = std::fs::read_to_string(&markings).unwrap();
    std::fs::write(
        &markings,
        text.replace("[[marking]]", "[[marking]]\nmisspellings = false"),
    )
    .unwrap();
    let exact = PolicySnapshot::load(dir.path()).expect("loads without misspellings");
    (shipped, exact, dir)
}

/// Recall on the marked corpus is 100 % (every message found, with its label) and the ordinary corpus has no false
/// positive.
#[test]
fn corpus_rates() {
    let marked = corpus("corpus-marked.yaml");
    let ordinary = corpus("corpus-ordinary.yaml");
    let (shipped, exact, _dir) = policies();
    let rates = |p: &PolicySnapshot| {
        let label = |m: &Message| p.classifier.classify(m).to_owned();
        let found = marked.iter().filter(|(m, _)| label(m) != "none").count();
        let labelled = marked.iter().filter(|(m, l)| label(m) == *l).count();
        let false_positives = ordinary.iter().filter(|(m, _)| label(m) != "none").count();
        (found, labelled, false_positives)
    };
    let percent = |n: usize, of: usize| 100.0 * n as f64 / of as f64;
    let (found, labelled, fp) = rates(&shipped);
    let (found_exact, labelled_exact, fp_exact) = rates(&exact);
    println!(
        "corpus-marked.yaml:   {} messages, {found} found (recall {:.1} %), {labelled} with the expected label",
        marked.len(),
        percent(found, marked.len())
    );
    println!(
        "corpus-ordinary.yaml: {} messages, {fp} classified (false positives {:.1} %)",
        ordinary.len(),
        percent(fp, ordinary.len())
    );
    println!(
        "without one-edit matching (misspellings = false): recall {:.1} % ({found_exact} found, \
         {labelled_exact} labelled), false positives {fp_exact}",
        percent(found_exact, marked.len())
    );
    assert!(marked.len() >= 200 && ordinary.len() >= 300);
    assert_eq!(
        labelled,
        marked.len(),
        "every marked message gets its label"
    );
    assert_eq!(fp, 0, "no ordinary message is classified");
}
