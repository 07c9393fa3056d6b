//! Hot reload, black-box: a server on a copy of the policy, edited on disk while it serves.
//!
//! A valid edit decides new requests within two seconds and changes `policy_version`; every kind of broken edit is
//! refused and changes nothing; a burst of edits under load fails no request and never serves a broken policy.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use roomguard_test_support as common;

use std::{
    path::Path,
    time::{Duration, Instant},
};

use common::{TestServer, codes, copy_policies, decide_send, send};
use roomguard::grpc::proto::{self, GetPolicyStatusRequest, JoinRule};

const AGENT: &str = "@alice:agent.finances.tchap.gouv.fr";
const SIGNED: &str = "p, send.allow, send, true, allow, ALLOWED";
const BLOCK_HELLO: &str = "p, send.no-hello, send, r.msg.msgtype == \"m.text\" && r.room.is_public, deny, ROOM_NOT_PUBLIC\np, send.allow, send, true, allow, ALLOWED";

fn edit(dir: &Path, file: &str, from: &str, to: &str) {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} does not contain {from:?}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

async fn status(server: &TestServer) -> proto::GetPolicyStatusResponse {
    server
        .client()
        .await
        .get_policy_status(GetPolicyStatusRequest {})
        .await
        .unwrap()
        .into_inner()
}

/// Polls the policy status until `reached` holds (a reload is asynchronous and, on a busy machine, slow): the test
/// waits for the state it needs instead of guessing a delay.
async fn wait_for(
    server: &TestServer,
    what: &str,
    reached: impl Fn(&proto::GetPolicyStatusResponse) -> bool,
) -> proto::GetPolicyStatusResponse {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let s = status(server).await;
        if reached(&s) {
            return s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never reached: {what}; last status {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `check` holds, for at most `limit`.
async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// A valid edit is serving within two seconds of the save, with a new policy version.
#[tokio::test]
async fn a_valid_edit_changes_decisions_and_version() {
    let dir = copy_policies(Path::new("policies"));
    let server = TestServer::start(dir.path()).await;
    let mut client = server.client().await;
    let before = client
        .check_message_send(send(AGENT, JoinRule::Public, false, "Bonjour"))
        .await
        .unwrap();
    let before = before.into_inner().decision.unwrap();
    assert_eq!(before.effect, proto::Effect::Allow as i32);

    edit(dir.path(), "rules.csv", SIGNED, BLOCK_HELLO);
    let saved = Instant::now();
    let changed = eventually(Duration::from_secs(2), || {
        let mut client = client.clone();
        async move {
            let d = client
                .check_message_send(send(AGENT, JoinRule::Public, false, "Bonjour"))
                .await
                .unwrap();
            d.into_inner().decision.unwrap().effect == proto::Effect::Deny as i32
        }
    })
    .await;
    assert!(changed, "the edit was not serving within 2 s");
    println!("edit serving after {:?}", saved.elapsed());
    let after = client
        .check_message_send(send(AGENT, JoinRule::Public, false, "Bonjour"))
        .await
        .unwrap();
    let after = after.into_inner().decision.unwrap();
    assert_eq!(codes(&after), ["ROOM_NOT_PUBLIC"]);
    assert_ne!(after.policy_version, before.policy_version);
    let s = status(&server).await;
    assert_eq!(
        (
            s.policy_version.as_str(),
            s.reloads_succeeded,
            s.reloads_refused
        ),
        (after.policy_version.as_str(), 1, 0)
    );
}

/// Each kind of broken edit is refused with file:line, and the previous policy keeps deciding.
#[tokio::test]
async fn broken_edits_change_nothing() {
    let dir = copy_policies(Path::new("policies"));
    let server = TestServer::start(dir.path()).await;
    let mut client = server.client().await;
    let serving = status(&server).await.policy_version;
    let broken: &[(&str, &str, &str, &str)] = &[
        (
            "rules.csv",
            SIGNED,
            "p, send.allow, send, true && (, allow, ALLOWED",
            "rules.csv:",
        ),
        (
            "rules.csv",
            SIGNED,
            "p, send.allow, send, r.msg.no_such_thing, allow, ALLOWED",
            "no_such_thing",
        ),
        (
            "rules.csv",
            SIGNED,
            "p, send.allow, send, true, allow, NOT_IN_THE_CATALOGUE",
            "NOT_IN_THE_CATALOGUE",
        ),
        (
            "rules.csv",
            SIGNED,
            "p, send.allow, send, true, allow, ALLOWED\np, send.allow, send, true, allow, ALLOWED",
            "already used",
        ),
        (
            "rules.csv",
            SIGNED,
            "p, send.allow, send, r.role.wizard, allow, ALLOWED",
            "wizard",
        ),
        (
            "rules.csv",
            SIGNED,
            "p, send.allow, send, r.sub.power_level > \"x\", allow, ALLOWED",
            "compared with text",
        ),
        (
            "rules.csv",
            SIGNED,
            "p, send.allow, send, no_such_function(r.sub.user_id), allow, ALLOWED",
            "fails to evaluate",
        ),
        ("rules.csv", SIGNED, "p, send.allow", "rules.csv:"),
        (
            "model.conf",
            "e = some(where (p.eft == allow)) && !some(where (p.eft == deny))",
            "e = max(p.eft)",
            "model.conf:",
        ),
        (
            "model.conf",
            "r = act, sub, role, room, msg",
            "r = sub, obj, act",
            "model.conf:",
        ),
        ("reasons.toml", "[ALLOWED]", "[ALLOWED", "reasons.toml:"),
        (
            "roles.toml",
            "\"*.tchap.gouv.fr\" = [\"agent\"]",
            "\"tchap.*.fr\" = [\"agent\"]",
            "roles.toml:",
        ),
        (
            "markings.toml",
            "level = 1",
            "level = \"one\"",
            "markings.toml:",
        ),
        (
            "users.csv",
            "# Example",
            "@not a user, external\n# Example",
            "users.csv:",
        ),
    ];
    for (round, (file, from, to, expected)) in broken.iter().enumerate() {
        let original = std::fs::read_to_string(dir.path().join(file)).unwrap();
        edit(dir.path(), file, from, to);
        let refused = eventually(Duration::from_secs(5), || {
            let server = &server;
            async move { status(server).await.reloads_refused as usize > round }
        })
        .await;
        assert!(refused, "{file}: broken edit {to:?} was not refused");
        let s = status(&server).await;
        assert_eq!(
            s.policy_version, serving,
            "{file}: {to:?} replaced the policy"
        );
        assert!(
            s.last_refused_error.contains(expected),
            "{file}: {to:?}: {}",
            s.last_refused_error
        );
        assert!(s.last_refused_at.is_some());
        let d = client
            .check_message_send(send(AGENT, JoinRule::Public, false, "Bonjour"))
            .await
            .unwrap();
        let d = d.into_inner().decision.unwrap();
        assert_eq!(
            (d.effect, d.policy_version.as_str()),
            (proto::Effect::Allow as i32, serving.as_str())
        );
        // Restore, and wait for the restore to settle (it loads to the serving version: nothing to swap).
        std::fs::write(dir.path().join(file), original).unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    assert_eq!(
        status(&server).await.reloads_succeeded,
        0,
        "restoring the same content is not a new version"
    );
}

/// Under a burst of valid and broken edits, clients see no failure and only decisions of valid versions, each
/// consistent with its version's rules.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_reloads_under_load_fails_nothing() {
    let dir = copy_policies(Path::new("policies"));
    let original = std::fs::read_to_string(dir.path().join("rules.csv")).unwrap();
    let blocking = original.replacen(SIGNED, BLOCK_HELLO, 1);
    let broken = original.replacen(SIGNED, "p, send.allow, send, true &&, allow, ALLOWED", 1);
    let server = TestServer::start(dir.path()).await;
    let allow_version = status(&server).await.policy_version;

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let channel = server.channel().await;
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            let mut client =
                roomguard::grpc::proto::policy_service_client::PolicyServiceClient::new(
                    channel.clone(),
                );
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let d = client
                        .check_message_send(send(AGENT, JoinRule::Public, false, "Bonjour"))
                        .await;
                    let d = d
                        .expect("no request fails during reloads")
                        .into_inner()
                        .decision
                        .unwrap();
                    seen.push((d.policy_version, d.effect));
                }
                seen
            })
        })
        .collect();
    for i in 0..30 {
        let text = match i % 3 {
            0 => &blocking,
            1 => &broken,
            _ => &original,
        };
        std::fs::write(dir.path().join("rules.csv"), text).unwrap();
        tokio::time::sleep(Duration::from_millis(if i % 2 == 0 { 20 } else { 400 })).await;
    }
    // Then one valid edit, one broken one and one valid one, each waited for, so that the burst ends having swapped
    // twice and refused once whatever the machine's speed.
    std::fs::write(dir.path().join("rules.csv"), &original).unwrap();
    wait_for(&server, "the original rules serve", |s| {
        s.policy_version == allow_version
    })
    .await;
    std::fs::write(dir.path().join("rules.csv"), &blocking).unwrap();
    let blocked = wait_for(&server, "the blocking rules serve", |s| {
        s.policy_version != allow_version
    })
    .await;
    let block_version = blocked.policy_version;
    std::fs::write(dir.path().join("rules.csv"), &broken).unwrap();
    wait_for(&server, "the broken edit is refused", |s| {
        s.reloads_refused > blocked.reloads_refused
    })
    .await;
    std::fs::write(dir.path().join("rules.csv"), &original).unwrap();
    wait_for(&server, "the original rules serve again", |s| {
        s.policy_version == allow_version
    })
    .await;
    std::fs::write(dir.path().join("rules.csv"), &blocking).unwrap();
    wait_for(&server, "the blocking rules serve again", |s| {
        s.policy_version == block_version
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_ne!(block_version, allow_version);
    let mut total = 0;
    for client in clients {
        for (version, effect) in client.await.unwrap() {
            total += 1;
            if version == allow_version {
                assert_eq!(effect, proto::Effect::Allow as i32);
            } else if version == block_version {
                assert_eq!(effect, proto::Effect::Deny as i32);
            } else {
                panic!("a decision came from version {version}, which is neither valid version");
            }
        }
    }
    let s = status(&server).await;
    assert!(total > 100, "only {total} requests ran");
    assert!(s.reloads_succeeded >= 2 && s.reloads_refused >= 1, "{s:?}");
    println!(
        "{total} requests, {} reloads, {} refused",
        s.reloads_succeeded, s.reloads_refused
    );
}

/// An editor that truncates then writes, an emptied file, a file with only comments, a rules file that forgot an
/// action, a misspelt role: each is refused, the serving policy keeps deciding (marked messages stay refused), and
/// the refusal names the file.
#[tokio::test]
async fn hollow_policy_files_and_undeclared_roles_are_refused() {
    let dir = copy_policies(Path::new("policies"));
    let server = TestServer::start(dir.path()).await;
    let serving = status(&server).await.policy_version;
    let mut client = server.client().await;
    let rules = std::fs::read_to_string(dir.path().join("rules.csv")).unwrap();
    let without_publish: String = rules
        .lines()
        .filter(|l| !l.starts_with("p, publish."))
        .map(|l| format!("{l}\n"))
        .collect();
    let cases: [(&str, String, &str); 6] = [
        ("markings.toml", String::new(), "markings.toml: is empty"),
        ("rules.csv", "\n \n".into(), "rules.csv: is empty"),
        ("model.conf", String::new(), "model.conf: is empty"),
        (
            "markings.toml",
            "# every marking removed\n".into(),
            "markings.toml: declares no marking",
        ),
        ("rules.csv", without_publish, "no rule for action `publish`"),
        (
            "users.csv",
            "@bob:gmail.com, extrenal\n".into(),
            "did you mean `external`?",
        ),
    ];
    for (round, (file, content, expected)) in cases.into_iter().enumerate() {
        let original = std::fs::read_to_string(dir.path().join(file)).unwrap();
        std::fs::write(dir.path().join(file), &content).unwrap();
        let refused = eventually(Duration::from_secs(5), || {
            let server = &server;
            async move { status(server).await.reloads_refused as usize > round }
        })
        .await;
        assert!(refused, "{file}: {content:?} was not refused");
        let s = status(&server).await;
        assert_eq!(
            s.policy_version, serving,
            "{file}: {content:?} replaced the policy"
        );
        assert!(
            s.last_refused_error.contains(expected),
            "{file}: {}",
            s.last_refused_error
        );
        let marked = decide_send(
            &mut client,
            send(AGENT, JoinRule::Public, false, "DIFFUSION RESTREINTE"),
        )
        .await;
        assert_eq!(marked.effect, proto::Effect::Deny as i32, "{file}");
        std::fs::write(dir.path().join(file), original).unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
}
