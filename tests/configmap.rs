//! Hot reload of a policy directory mounted from a Kubernetes ConfigMap, black-box: the kubelet's atomic writer
//! (`common::atomic_writer`, step for step as in kubernetes' `atomic_writer.go`) updates the volume while a server
//! serves it.
//!
//! "The reload counters" are `reloads_succeeded` and `reloads_refused` of `GetPolicyStatus`, which are
//! `roomguard_policy_reloads_total{result="succeeded"|"refused"}` in the metrics. A reload that finds the files
//! hashing to the serving version swaps nothing and counts in neither: it counts only in
//! `roomguard_policy_reloads_unchanged_total`, which is how these tests know the reloader has looked.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use roomguard_test_support as common;

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use common::{
    Extras, TestServer,
    atomic_writer::{ConfigMapVolume, Payload, Step, edited, payload_of, utc_timestamp},
    codes, send,
};
use roomguard::{
    grpc::{
        proto::{self, GetPolicyStatusRequest, JoinRule},
        server::Options,
    },
    policy::PolicySnapshot,
};

const AGENT: &str = "@alice:agent.finances.tchap.gouv.fr";
const SIGNED: &str = "p, send.allow, send, true, allow, ALLOWED";
const BLOCK_HELLO: &str = "p, send.no-hello, send, r.msg.msgtype == \"m.text\" && r.room.is_public, deny, ROOM_NOT_PUBLIC\np, send.allow, send, true, allow, ALLOWED";
const ALICE_EXTERNAL: &str = "@alice:agent.finances.tchap.gouv.fr, external\n";

/// The shipped policy as a ConfigMap made with `kubectl create configmap --from-file=policies/` (README.md
/// included: a key roomguard does not read).
fn shipped() -> Payload {
    payload_of(Path::new("policies"))
}

fn without(payload: &Payload, key: &str) -> Payload {
    let mut payload = payload.clone();
    payload.remove(key);
    payload
}

fn with(payload: &Payload, key: &str, content: &str) -> Payload {
    let mut payload = payload.clone();
    payload.insert(key.into(), content.as_bytes().to_vec());
    payload
}

/// The version roomguard gives `payload` laid out as plain files: what the volume must serve once updated.
fn version_of(payload: &Payload) -> String {
    let dir = tempfile::tempdir().unwrap();
    for (key, content) in payload {
        std::fs::write(dir.path().join(key), content).unwrap();
    }
    PolicySnapshot::load(dir.path())
        .unwrap_or_else(|e| panic!("{e}"))
        .version
}

async fn serve(dir: &Path) -> TestServer {
    let extras = Extras {
        metrics: true,
        ..Extras::default()
    };
    TestServer::start_with(dir, Options::default(), extras).await
}

/// What a reload may change, as the status rpc and the metrics report it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reloads {
    policy_version: String,
    succeeded: u64,
    refused: u64,
    /// Reloads that found the serving version again (not a reload counter: the reloader's trace).
    unchanged: u64,
}

/// The reload record as `GetPolicyStatus` reports it, checked against the metrics scraped in between two status
/// calls that agree (a reload landing between the two reports is read again).
async fn reloads(server: &TestServer) -> Reloads {
    let status = || async {
        let s = server
            .client()
            .await
            .get_policy_status(GetPolicyStatusRequest {})
            .await
            .unwrap()
            .into_inner();
        (s.policy_version, s.reloads_succeeded, s.reloads_refused)
    };
    loop {
        let before = status().await;
        let metrics = server.scrape_metrics().await;
        if status().await != before {
            continue;
        }
        let sample = |series: &str| -> u64 {
            metrics
                .lines()
                .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
                .unwrap_or_else(|| panic!("no `{series}` in\n{metrics}"))
        };
        let (policy_version, succeeded, refused) = before;
        // The two reports are one record.
        assert_eq!(
            (
                sample("roomguard_policy_reloads_total{result=\"succeeded\"}"),
                sample("roomguard_policy_reloads_total{result=\"refused\"}"),
            ),
            (succeeded, refused),
            "the metrics and GetPolicyStatus disagree"
        );
        assert!(
            metrics.contains(&format!(
                "roomguard_policy_info{{policy_version=\"{policy_version}\"}} 1"
            )),
            "{metrics}"
        );
        return Reloads {
            policy_version,
            succeeded,
            refused,
            unchanged: sample("roomguard_policy_reloads_unchanged_total"),
        };
    }
}

/// Polls until `reached` holds, failing the test after `limit` (a reload is asynchronous: the test waits for the
/// state it needs rather than guessing a delay).
async fn wait_for(
    server: &TestServer,
    limit: Duration,
    what: &str,
    reached: impl Fn(&Reloads) -> bool,
) -> Reloads {
    let start = Instant::now();
    loop {
        let now = reloads(server).await;
        if reached(&now) {
            return now;
        }
        assert!(
            start.elapsed() < limit,
            "not within {limit:?}: {what}; last {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A public-room "Bonjour" from an agent, decided by the server: (effect, reason codes, policy version).
async fn hello(server: &TestServer) -> (proto::Effect, Vec<String>, String) {
    let decision = server
        .client()
        .await
        .check_message_send(send(AGENT, JoinRule::Public, false, "Bonjour"))
        .await
        .unwrap()
        .into_inner()
        .decision
        .unwrap();
    (decision.effect(), codes(&decision), decision.policy_version)
}

/// A ConfigMap update (a new timestamped directory, `..data` swapped, the old directory removed) is serving within
/// two seconds: the new rules decide, `policy_version` is the new content's, and one successful reload is counted.
#[tokio::test]
async fn a_configmap_update_is_serving_within_two_seconds() {
    let volume = ConfigMapVolume::mount(&shipped());
    let server = serve(volume.path()).await;
    let before = reloads(&server).await;
    assert_eq!(before.policy_version, version_of(&shipped()));
    assert_eq!(hello(&server).await.0, proto::Effect::Allow);

    let blocking = edited(&shipped(), "rules.csv", SIGNED, BLOCK_HELLO);
    let old_version_dir = volume.current_version_dir();
    volume.write(&blocking);
    let written = Instant::now();
    assert_ne!(volume.current_version_dir(), old_version_dir);
    let after = wait_for(
        &server,
        Duration::from_secs(2),
        "the update is serving",
        |r| r.policy_version != before.policy_version,
    )
    .await;
    println!("the update was serving after {:?}", written.elapsed());
    assert_eq!(after.policy_version, version_of(&blocking));
    assert_eq!((after.succeeded, after.refused), (1, 0));
    assert_eq!(
        hello(&server).await,
        (
            proto::Effect::Deny,
            vec!["ROOM_NOT_PUBLIC".to_owned()],
            after.policy_version
        )
    );
}

/// An update whose `rules.csv` does not parse is refused: the last good policy keeps deciding, the refusal is in
/// `GetPolicyStatus` (count, time, `file:line`) and the metrics, and the next good update is followed.
#[tokio::test]
async fn a_broken_update_is_refused_and_the_next_good_one_is_followed() {
    let volume = ConfigMapVolume::mount(&shipped());
    let server = serve(volume.path()).await;
    let good = reloads(&server).await;

    let broken = edited(
        &shipped(),
        "rules.csv",
        SIGNED,
        "p, send.allow, send, true && (, allow, ALLOWED",
    );
    volume.write(&broken);
    let refused = wait_for(
        &server,
        Duration::from_secs(10),
        "the broken update is refused",
        |r| r.refused > good.refused,
    )
    .await;
    assert_eq!(
        refused,
        Reloads {
            refused: 1,
            ..good.clone()
        },
        "a refusal changes nothing but the refusal count"
    );
    let status = server
        .client()
        .await
        .get_policy_status(GetPolicyStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(status.last_refused_at.is_some());
    assert!(
        status.last_refused_error.contains("rules.csv:"),
        "{}",
        status.last_refused_error
    );
    assert_eq!(
        hello(&server).await,
        (
            proto::Effect::Allow,
            vec!["ALLOWED".to_owned()],
            good.policy_version.clone()
        )
    );

    let fixed = edited(&shipped(), "rules.csv", SIGNED, BLOCK_HELLO);
    volume.write(&fixed);
    let after = wait_for(
        &server,
        Duration::from_secs(2),
        "the good update after the broken one is serving",
        |r| r.policy_version != good.policy_version,
    )
    .await;
    assert_eq!(after.policy_version, version_of(&fixed));
    assert_eq!((after.succeeded, after.refused), (1, 1));
    assert_eq!(hello(&server).await.0, proto::Effect::Deny);
}

/// Neither the kubelet's own cleanup (removing the old timestamped directory, after the swap has been served),
/// nor its periodic resync of unchanged data, nor an update that leaves every policy file as it was (only the
/// README key edited) reloads: `policy_version` and the reload counters stay as they were.
#[tokio::test]
async fn the_kubelets_cleanup_and_unchanged_content_do_not_reload() {
    let volume = ConfigMapVolume::mount(&shipped());
    let server = serve(volume.path()).await;
    let started = reloads(&server).await;

    // The periodic resync of unchanged data writes nothing at all (step 4 of the atomic writer).
    let entries = volume.entries();
    volume.write(&shipped());
    assert_eq!(volume.entries(), entries);

    // An update, served, with the cleanup held back.
    let blocking = edited(&shipped(), "rules.csv", SIGNED, BLOCK_HELLO);
    let cleanup = volume.write_until_cleanup(&blocking);
    assert!(cleanup.replaced_a_version());
    let swapped = wait_for(
        &server,
        Duration::from_secs(2),
        "the update is serving",
        |r| r.policy_version != started.policy_version,
    )
    .await;
    assert_eq!(
        (swapped.succeeded, swapped.refused),
        (started.succeeded + 1, started.refused)
    );
    let old_dirs = volume
        .entries()
        .iter()
        .filter(|e| e.starts_with("..2"))
        .count();
    assert_eq!(old_dirs, 2, "{:?}", volume.entries());

    // The cleanup: the reloader looks, and finds nothing to do.
    cleanup.run();
    assert_eq!(
        volume
            .entries()
            .iter()
            .filter(|e| e.starts_with("..2"))
            .count(),
        1
    );
    let cleaned = wait_for(
        &server,
        Duration::from_secs(10),
        "the reloader has looked at the directory after the cleanup",
        |r| r.unchanged > swapped.unchanged,
    )
    .await;
    assert_eq!(
        cleaned,
        Reloads {
            unchanged: cleaned.unchanged,
            ..swapped.clone()
        }
    );

    // A whole update (new timestamped directory, swap, cleanup) whose policy files are byte for byte the same.
    let readme_only = edited(&blocking, "README.md", "#", "# (edited)");
    let version_dir = volume.current_version_dir();
    volume.write(&readme_only);
    assert_ne!(volume.current_version_dir(), version_dir);
    let rewritten = wait_for(
        &server,
        Duration::from_secs(10),
        "the reloader has looked at the README-only update",
        |r| r.unchanged > cleaned.unchanged,
    )
    .await;
    assert_eq!(
        rewritten,
        Reloads {
            unchanged: rewritten.unchanged,
            ..swapped.clone()
        }
    );
    assert_eq!(
        hello(&server).await,
        (
            proto::Effect::Deny,
            vec!["ROOM_NOT_PUBLIC".to_owned()],
            swapped.policy_version
        )
    );
}

/// A key added to the ConfigMap (a `users.csv` appears) is followed, and so is its removal: each serves within two
/// seconds with exactly the version of the files then published.
#[tokio::test]
async fn an_added_key_and_a_removed_key_are_followed() {
    let without_users = without(&shipped(), "users.csv");
    let volume = ConfigMapVolume::mount(&without_users);
    let server = serve(volume.path()).await;
    let start = reloads(&server).await;
    assert_eq!(start.policy_version, version_of(&without_users));
    assert_eq!(hello(&server).await.0, proto::Effect::Allow);

    let with_users = with(&without_users, "users.csv", ALICE_EXTERNAL);
    volume.write(&with_users);
    assert!(volume.entries().contains(&"users.csv".to_owned()));
    let added = wait_for(
        &server,
        Duration::from_secs(2),
        "the added users.csv is serving",
        |r| r.policy_version != start.policy_version,
    )
    .await;
    assert_eq!(added.policy_version, version_of(&with_users));
    assert_eq!(
        hello(&server).await.1,
        ["EXTERNAL_IN_PUBLIC_ROOM"],
        "alice is external by users.csv"
    );

    volume.write(&without_users);
    assert!(!volume.entries().contains(&"users.csv".to_owned()));
    let removed = wait_for(
        &server,
        Duration::from_secs(2),
        "the removal of users.csv is serving",
        |r| r.policy_version != added.policy_version,
    )
    .await;
    assert_eq!(removed.policy_version, start.policy_version);
    assert_eq!((removed.succeeded, removed.refused), (2, 0));
    assert_eq!(hello(&server).await.0, proto::Effect::Allow);
}

/// Whatever step of an update a load starts at, it reads one published version whole: the old one until `..data`
/// is swapped, the new one from then on, never a mix (here: an update that edits `rules.csv` and adds `users.csv`,
/// whose top-level symlink appears only after the swap, then one that takes both back).
#[test]
fn a_load_during_an_update_reads_one_published_version() {
    let base = without(&shipped(), "users.csv");
    let grown = with(
        &edited(&base, "rules.csv", SIGNED, BLOCK_HELLO),
        "users.csv",
        ALICE_EXTERNAL,
    );
    let volume = ConfigMapVolume::mount(&base);
    for (old, new) in [(&base, &grown), (&grown, &base)] {
        let (old_version, new_version) = (version_of(old), version_of(new));
        assert_ne!(old_version, new_version);
        let mut published = false;
        volume.write_observed(new, &mut |step| {
            published |= step == Step::DataLinkSwapped;
            let loaded = PolicySnapshot::load(volume.path())
                .unwrap_or_else(|e| panic!("after {step:?}: {e}"))
                .version;
            let expected = if published {
                &new_version
            } else {
                &old_version
            };
            assert_eq!(&loaded, expected, "a load after {step:?}");
        });
        assert!(published);
    }
}

/// `roomguard validate` reads a ConfigMap volume as the server does: valid, with the version of its files.
#[test]
fn validate_reads_a_configmap_volume() {
    let volume = ConfigMapVolume::mount(&shipped());
    let output = Command::new(env!("CARGO_BIN_EXE_roomguard"))
        .arg("validate")
        .arg(volume.path())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("policy_version {}", version_of(&shipped()))),
        "{stdout}"
    );
}

/// A policy directory reached through a symlink is watched where the symlink leads; when the symlink is moved to
/// another directory (a git-sync style deployment, the old directory then deleted), the new directory is served
/// and its own updates are followed.
#[tokio::test]
async fn a_symlinked_policy_directory_is_followed_when_it_moves() {
    let first = ConfigMapVolume::mount(&shipped());
    let links = tempfile::tempdir().unwrap();
    let policies = links.path().join("policies");
    std::os::unix::fs::symlink(first.path(), &policies).unwrap();
    let server = serve(&policies).await;
    let start = reloads(&server).await;

    // An update inside the directory the symlink leads to.
    let blocking = edited(&shipped(), "rules.csv", SIGNED, BLOCK_HELLO);
    first.write(&blocking);
    let updated = wait_for(
        &server,
        Duration::from_secs(2),
        "the update behind the symlink is serving",
        |r| r.policy_version != start.policy_version,
    )
    .await;
    assert_eq!(updated.policy_version, version_of(&blocking));

    // The symlink moved atomically to another directory, and the old one deleted.
    let with_users = with(&shipped(), "users.csv", ALICE_EXTERNAL);
    let second = ConfigMapVolume::mount(&with_users);
    let next = links.path().join("policies.next");
    std::os::unix::fs::symlink(second.path(), &next).unwrap();
    std::fs::rename(&next, &policies).unwrap();
    drop(first);
    let moved = wait_for(
        &server,
        Duration::from_secs(2),
        "the directory the symlink now leads to is serving",
        |r| r.policy_version != updated.policy_version,
    )
    .await;
    assert_eq!(moved.policy_version, version_of(&with_users));

    // And updates there are followed.
    second.write(&shipped());
    let followed = wait_for(
        &server,
        Duration::from_secs(2),
        "an update in the new directory is serving",
        |r| r.policy_version != moved.policy_version,
    )
    .await;
    assert_eq!(followed.policy_version, version_of(&shipped()));
    assert_eq!((followed.succeeded, followed.refused), (3, 0));
}

/// The simulated kubelet names its timestamped directories as the real one does (UTC, `2006_01_02_15_04_05`).
#[test]
fn the_simulated_timestamps_are_the_kubelets() {
    assert_eq!(utc_timestamp(0), "1970_01_01_00_00_00");
    assert_eq!(utc_timestamp(1_795_807_800), "2026_11_27_19_30_00");
    assert_eq!(utc_timestamp(1_709_251_199), "2024_02_29_23_59_59");
    let volume = ConfigMapVolume::mount(&shipped());
    let entries = volume.entries();
    let data = volume.current_version_dir();
    let data = data.to_str().unwrap();
    assert!(
        data.starts_with("..20") && data.len() > "..2006_01_02_15_04_05.".len(),
        "{data}"
    );
    assert!(
        entries.contains(&"..data".to_owned()) && entries.contains(&data.to_owned()),
        "{entries:?}"
    );
    assert!(!entries.contains(&"..data_tmp".to_owned()), "{entries:?}");
    for key in shipped().keys() {
        let link = std::fs::read_link(volume.path().join(key)).unwrap();
        assert_eq!(link, Path::new("..data").join(key));
    }
}
