//! Criterion benchmarks of one in-process decision (allow and deny path of each rpc, and a send under 10,000 more
//! rules), of loading a policy (shipped, and with 10,000 more rules), of the classifier on a
//! 64 KiB body and on hostile 64 KiB texts (characters that expand, scripts that decompose, shapes that multiply
//! candidates), and of role resolution with a million per-user lines.
//!
//! Run: `cargo bench --bench decision`. Results and their reading are in docs/performance.md.

#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "a benchmark aborts on a broken fixture"
)]
#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented function"
)]

use std::{hint::black_box, path::Path};

use criterion::{Criterion, criterion_group, criterion_main};
use roomguard::{
    documents::{Extraction, Format},
    domain::media::{Media, UploadRequest},
    domain::message::Message,
    domain::request::{JoinRequest, PublishRequest, SendRequest, StateChangeRequest},
    domain::room::{HistoryVisibility, JoinRule, Room},
    domain::subject::{Subject, UserId},
    policy::POLICY_FILES,
    policy::PolicySnapshot,
    policy::decide::{
        decide_join, decide_publish, decide_send, decide_state_change, decide_upload,
    },
    policy::engine::{Conditions, Engine},
    policy::roles::RoleResolver,
};

fn subject(id: &str, power_level: i64) -> Subject {
    Subject {
        user_id: UserId::parse(id).expect("valid id"),
        server_admin: false,
        power_level,
    }
}

fn room(join_rule: JoinRule, encrypted: bool) -> Room {
    Room {
        room_id: "!forum:agent.finances.tchap.gouv.fr".into(),
        join_rule,
        history_visibility: HistoryVisibility::Shared,
        encrypted,
        guest_access: false,
        published: false,
        access_rule: String::new(),
    }
}

fn text(body: &str) -> Message {
    Message {
        event_type: "m.room.message".into(),
        msgtype: "m.text".into(),
        body: body.into(),
        ..Default::default()
    }
}

fn decisions(c: &mut Criterion) {
    let policy = PolicySnapshot::load(Path::new("policies")).expect("shipped policy loads");
    let agent = "@alice:agent.finances.tchap.gouv.fr";
    let send_allow = SendRequest {
        request_id: "b".into(),
        sender: subject(agent, 0),
        room: room(JoinRule::Public, false),
        message: text("Bonjour à tous, la réunion est déplacée à 15 h."),
    };
    let send_deny = SendRequest {
        message: text("DIFFUSION RESTREINTE - note de synthèse"),
        ..send_allow.clone()
    };
    let publish_allow = PublishRequest {
        request_id: "b".into(),
        requester: subject(agent, 100),
        room: room(JoinRule::Public, false),
        publish: true,
    };
    let publish_deny = PublishRequest {
        requester: subject(agent, 0),
        room: room(JoinRule::Invite, true),
        ..publish_allow.clone()
    };
    assert!(decide_send(&policy, &send_allow).is_allowed());
    assert!(!decide_send(&policy, &send_deny).is_allowed());
    assert!(decide_publish(&policy, &publish_allow).is_allowed());
    assert!(!decide_publish(&policy, &publish_deny).is_allowed());

    let mut group = c.benchmark_group("decision");
    group.bench_function("send/allow", |b| {
        b.iter(|| decide_send(&policy, black_box(&send_allow)))
    });
    group.bench_function("send/deny", |b| {
        b.iter(|| decide_send(&policy, black_box(&send_deny)))
    });
    group.bench_function("publish/allow", |b| {
        b.iter(|| decide_publish(&policy, black_box(&publish_allow)))
    });
    group.bench_function("publish/deny", |b| {
        b.iter(|| decide_publish(&policy, black_box(&publish_deny)))
    });

    let join = JoinRequest {
        request_id: "b".into(),
        user: subject(agent, 0),
        room: room(JoinRule::Public, false),
        invited: false,
    };
    let state = StateChangeRequest {
        request_id: "b".into(),
        sender: subject(agent, 100),
        room: room(JoinRule::Invite, true),
        proposed: room(JoinRule::Public, true),
        event_type: "m.room.join_rules".into(),
        state_key: String::new(),
    };
    let upload = UploadRequest {
        request_id: "b".into(),
        uploader: Some(subject(agent, 0)),
        media: Media {
            media_id: "mxc://agent.finances.tchap.gouv.fr/abc".into(),
            filename: "compte-rendu.pdf".into(),
            mimetype: "application/pdf".into(),
            size: 48_213,
            remote: false,
        },
    };
    let extraction = Extraction {
        format: Format::Pdf,
        passages: Vec::new(),
        text_chars: 0,
        incomplete: None,
        ocr_pages: 0,
        ocr_chars: 0,
    };
    assert!(decide_join(&policy, &join, 3).is_allowed());
    assert!(!decide_state_change(&policy, &state).is_allowed());
    assert!(decide_upload(&policy, &upload, &extraction, 48_213).is_allowed());
    group.bench_function("join/allow", |b| {
        b.iter(|| decide_join(&policy, black_box(&join), 3))
    });
    group.bench_function("state/deny", |b| {
        b.iter(|| decide_state_change(&policy, black_box(&state)))
    });
    group.bench_function("upload/allow", |b| {
        b.iter(|| decide_upload(&policy, black_box(&upload), &extraction, 48_213))
    });

    // The shipped policy plus 10,000 send rules that never match (see `generated_rules`): a decision should cost
    // about what it costs with the shipped policy alone.
    let big_dir = policy_with_generated_rules(10_000);
    let big = PolicySnapshot::load(big_dir.path()).expect("generated policy loads");
    assert!(decide_send(&big, &send_allow).is_allowed());
    assert_eq!(
        decide_send(&big, &send_deny).reasons,
        decide_send(&policy, &send_deny).reasons
    );
    group.bench_function("10k-rules/send/allow", |b| {
        b.iter(|| decide_send(&big, black_box(&send_allow)))
    });
    group.bench_function("10k-rules/send/deny", |b| {
        b.iter(|| decide_send(&big, black_box(&send_deny)))
    });

    // The same decisions with casbin evaluating every rule: conditions compiled into its matcher (what roomguard
    // did before the typed engine), and each condition evaluated by `eval()` per row, as the model file literally
    // says.
    let model = std::fs::read_to_string("policies/model.conf").expect("model.conf");
    for (name, conditions) in [
        ("casbin-matcher", Conditions::Matcher),
        ("eval-per-row", Conditions::Eval),
    ] {
        let mut casbin = PolicySnapshot::load(Path::new("policies")).expect("shipped policy loads");
        casbin.engine =
            futures_executor::block_on(Engine::build_with(&model, &casbin.rules, conditions))
                .expect("engine builds");
        group.bench_function(format!("send/allow/{name}"), |b| {
            b.iter(|| decide_send(&casbin, black_box(&send_allow)))
        });
        group.bench_function(format!("send/deny/{name}"), |b| {
            b.iter(|| decide_send(&casbin, black_box(&send_deny)))
        });
        group.bench_function(format!("publish/deny/{name}"), |b| {
            b.iter(|| decide_publish(&casbin, black_box(&publish_deny)))
        });
    }
    group.finish();
}

/// `count` send rules that never match the benchmark's requests, in the shapes generated policies take: 99 in 100
/// test one user, room or server for equality (in four shapes, the literal on either side, with a second condition),
/// 1 in 100 compares numbers and cannot be looked up by value.
fn generated_rules(count: usize) -> String {
    let mut rules = String::new();
    for i in 0..count {
        let condition = match i % 100 {
            99 => format!(
                "r.sub.power_level > {} || r.msg.size_kib > {}",
                1000 + i,
                1_000_000 + i
            ),
            n if n % 4 == 0 => {
                format!("r.sub.user_id == \"@gen{i}:gen.example\" && r.msg.classified")
            }
            n if n % 4 == 1 => {
                format!("\"@gen{i}:gen.example\" == r.sub.user_id && !r.room.encrypted")
            }
            n if n % 4 == 2 => {
                format!(
                    "r.room.room_id == \"!gen{i}:gen.example\" && (r.role.external || r.room.is_public)"
                )
            }
            _ => format!("r.sub.server_name == \"gen{i}.example\" && r.msg.size_mib > 10"),
        };
        rules.push_str(&format!(
            "p, send.gen-{i}, send, {condition}, deny, CLASSIFIED_IN_PUBLIC_ROOM\n"
        ));
    }
    rules
}

/// A copy of the shipped policy with `count` generated rules appended to rules.csv.
fn policy_with_generated_rules(count: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary directory");
    for name in POLICY_FILES {
        let from = Path::new("policies").join(name);
        if from.exists() {
            std::fs::copy(&from, dir.path().join(name)).expect("copy the shipped policy");
        }
    }
    let rules = dir.path().join("rules.csv");
    let mut text = std::fs::read_to_string(&rules).expect("rules.csv");
    text.push_str(&generated_rules(count));
    std::fs::write(&rules, text).expect("write rules.csv");
    dir
}

/// Loading (reading, checking, dry-running and compiling) the shipped policy, and the same with 10,000 more rules.
fn load(c: &mut Criterion) {
    let big = policy_with_generated_rules(10_000);
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    group.bench_function("shipped", |b| {
        b.iter(|| PolicySnapshot::load(black_box(Path::new("policies"))).expect("loads"))
    });
    group.bench_function("10k-rules", |b| {
        b.iter(|| PolicySnapshot::load(black_box(big.path())).expect("loads"))
    });
    group.finish();
}

fn classifier(c: &mut Criterion) {
    let policy = PolicySnapshot::load(Path::new("policies")).expect("shipped policy loads");
    let paragraph = "Bonjour à tous, voici le compte rendu de la réunion de ce matin avec le Dr Martin. \
                     <b>Points</b> abordés : budget, calendrier, recrutement.\n";
    let mut body = String::new();
    while body.len() + paragraph.len() < 64 * 1024 {
        body.push_str(paragraph);
    }
    let plain = Message {
        formatted_body: String::new(),
        ..text(&body)
    };
    let html = Message {
        body: String::new(),
        formatted_body: body.clone(),
        ..text("")
    };
    assert_eq!(policy.classifier.classify(&plain), "none");
    // The message of `scripts/loadbench`: an ordinary chat line, the classifier's everyday work.
    let message = text(
        "Bonjour à tous, la réunion de demain est décalée à 14 h 30 en salle 4. Merci de confirmer votre présence \
         avant ce soir, et d'apporter le compte rendu de la semaine dernière.",
    );
    assert_eq!(policy.classifier.classify(&message), "none");
    let mut group = c.benchmark_group("classify");
    group.bench_function("185B-message", |b| {
        b.iter(|| policy.classifier.classify(black_box(&message)))
    });
    group.bench_function("64KiB-body", |b| {
        b.iter(|| policy.classifier.classify(black_box(&plain)))
    });
    group.bench_function("64KiB-html", |b| {
        b.iter(|| policy.classifier.classify(black_box(&html)))
    });
    group.finish();
}

/// A text of about `bytes` bytes made of `unit` repeated.
fn repeat_to(unit: &str, bytes: usize) -> String {
    unit.repeat((bytes / unit.len()).max(1))
}

/// Hostile texts: each fills the body, the HTML body and the file name of one message (64 KiB each, so about the
/// largest request roomguard accepts), the worst place for it being whichever field costs most. `ascii` is the
/// baseline: ordinary French text of the same size.
fn classifier_hostile(c: &mut Criterion) {
    let policy = PolicySnapshot::load(Path::new("policies")).expect("shipped policy loads");
    let size = 64 * 1024;
    let shapes: Vec<(&str, String)> = vec![
        (
            "ascii",
            repeat_to(
                "Bonjour, la reunion du service est deplacee a 15 h demain. ",
                size,
            ),
        ),
        // One character that compatibility normalisation expands to 18 (ARABIC LIGATURE SALLALLAHOU...).
        ("fdfa", repeat_to("\u{FDFA}", size)),
        // Hangul syllables decompose into two or three jamo each.
        ("hangul", repeat_to("한국어", size)),
        // A letter under a stack of combining marks.
        ("combining", repeat_to("e\u{0301}\u{0302}\u{0303}", size)),
        // Compatibility characters that expand to several ASCII letters: ⒇ -> (20), ㎯ -> rad∕s2.
        ("expanding", repeat_to("\u{2487}\u{33AF}", size)),
        // Reversed text under right-to-left overrides.
        (
            "rlo",
            repeat_to("\u{202E}etniertser noisuffid\u{202C} ", size),
        ),
        // Many short bracketed candidates and separators on short lines.
        ("brackets", repeat_to("(dx)[DR]-DR-\n", size)),
        // Near-misses of the phrases: every word a candidate.
        (
            "near-miss",
            repeat_to("diffussion restrainte spéciale ", size),
        ),
        // Tags, attributes and entities.
        (
            "html",
            repeat_to("<b title=\"x\">d</b>&eacute;<!--c-->", size),
        ),
        // File-name parts: many short words in capitals.
        ("parts", repeat_to("DR_A1b", size)),
        // Short lines, each a banner candidate alone, at its start and end, and in brackets.
        ("lines", repeat_to("DR\n(A)\nB - C\n", size)),
        // Symbols read as letters, each needing a look at its neighbours.
        ("symbols", repeat_to("d!f$u@s|i€o ", size)),
        // Look-alikes of several scripts, each folded through the table.
        ("look-alikes", repeat_to("DіᎠꓓᴅ𝐃Ｄ", size)),
        // Four-byte characters beyond the table (CJK extension B).
        ("plane-2", repeat_to("\u{20000}", size)),
    ];
    let mut group = c.benchmark_group("classify-hostile");
    group.sample_size(20);
    group.measurement_time(std::time::Duration::from_secs(4));
    for (name, sample) in &shapes {
        let m = Message {
            body: sample.clone(),
            formatted_body: sample.clone(),
            filename: sample.clone(),
            ..text("")
        };
        group.bench_function(*name, |b| {
            b.iter(|| policy.classifier.classify(black_box(&m)))
        });
    }
    group.finish();
}

fn roles(c: &mut Criterion) {
    let roles_toml = std::fs::read_to_string("policies/roles.toml").expect("roles.toml");
    let small =
        RoleResolver::load(&roles_toml, "@x:agent.tchap.gouv.fr, external\n").expect("loads");
    let mut users = String::with_capacity(48 << 20);
    for i in 0..1_000_000 {
        users.push_str(&format!(
            "@user{i}:agent.finances.tchap.gouv.fr, external\n"
        ));
    }
    let big = RoleResolver::load(&roles_toml, &users).expect("loads");
    let known = subject("@user654321:agent.finances.tchap.gouv.fr", 0);
    let unknown = subject("@stranger:deep.sub.agent.finances.tchap.gouv.fr", 0);
    let mut group = c.benchmark_group("roles");
    group.bench_function("1-user-line/unknown-user", |b| {
        b.iter(|| small.resolve(black_box(&unknown)))
    });
    group.bench_function("1M-user-lines/known-user", |b| {
        b.iter(|| big.resolve(black_box(&known)))
    });
    group.bench_function("1M-user-lines/unknown-user", |b| {
        b.iter(|| big.resolve(black_box(&unknown)))
    });
    group.finish();
}

criterion_group!(
    benches,
    decisions,
    load,
    classifier,
    classifier_hostile,
    roles
);
criterion_main!(benches);
