//! The doors of issue #10 over gRPC, black-box: `CheckRoomJoin` with the per-account public-join counter, and
//! `CheckRoomStateChange`'s contract (field paths of bad input). The rules themselves are pinned by
//! `policies/tests/doors.yaml`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use roomguard_test_support as common;

use std::{path::Path, sync::Arc};

use common::{TestServer, codes, decide_join, room, subject};
use roomguard::{
    grpc::{
        proto::{self, JoinRule},
        server::Options,
    },
    ops::{counters::Counters, metrics::Metrics, mode::Mode},
    policy::PolicySnapshot,
};
use tonic::Code;

const ALICE: &str = "@alice:agent.finances.tchap.gouv.fr";
const BOB: &str = "@bob:agent.finances.tchap.gouv.fr";

fn join(user: &str, join_rule: JoinRule, invited: bool) -> proto::CheckRoomJoinRequest {
    proto::CheckRoomJoinRequest {
        request_id: "join-1".into(),
        user: subject(user, 0),
        room: room(join_rule, false),
        invited,
    }
}

async fn server(mode: Mode) -> (TestServer, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let options = Options {
        mode,
        metrics: metrics.clone(),
        counters: Counters::in_memory(1000, metrics.clone()),
        ..Options::default()
    };
    (TestServer::with_options(options).await, metrics)
}

/// One account may join 20 public rooms without an invite in an hour; the 21st is refused with
/// JOIN_RATE_EXCEEDED, and refused joins are not counted. Another account, an invited join and a private room are
/// unaffected. The count survives a policy reload.
#[tokio::test]
async fn the_twenty_first_public_join_in_an_hour_is_refused() {
    let (server, metrics) = server(Mode::Enforce).await;
    let mut client = server.client().await;
    for n in 1..=20 {
        let d = decide_join(&mut client, join(ALICE, JoinRule::Public, false)).await;
        assert_eq!(d.effect, proto::Effect::Allow as i32, "join {n}");
    }
    // A reload swaps the policy, not the counter.
    server
        .store
        .replace(PolicySnapshot::load(Path::new("policies")).unwrap());
    for _ in 0..2 {
        let d = decide_join(&mut client, join(ALICE, JoinRule::Public, false)).await;
        assert_eq!(codes(&d), ["JOIN_RATE_EXCEEDED"]);
    }
    assert_eq!(metrics.joins_rate_limited_count(), 2);

    let invited = decide_join(&mut client, join(ALICE, JoinRule::Public, true)).await;
    assert_eq!(
        invited.effect,
        proto::Effect::Allow as i32,
        "an invited join"
    );
    let private = decide_join(&mut client, join(ALICE, JoinRule::Invite, false)).await;
    assert_eq!(
        private.effect,
        proto::Effect::Allow as i32,
        "a private room"
    );
    let other = decide_join(&mut client, join(BOB, JoinRule::Public, false)).await;
    assert_eq!(other.effect, proto::Effect::Allow as i32, "another account");
}

/// In shadow mode every join is answered ALLOW, so every public uninvited join counts, and the decisions past the
/// limit say what enforcing would have done.
#[tokio::test]
async fn shadow_mode_counts_every_answered_join() {
    let (server, _) = server(Mode::Shadow).await;
    let mut client = server.client().await;
    for _ in 0..25 {
        let d = decide_join(&mut client, join(ALICE, JoinRule::Public, false)).await;
        assert_eq!(d.effect, proto::Effect::Allow as i32);
    }
    let d = decide_join(&mut client, join(ALICE, JoinRule::Public, false)).await;
    assert!(d.shadow);
    assert_eq!(d.policy_effect, proto::Effect::Deny as i32);
    assert_eq!(codes(&d), ["JOIN_RATE_EXCEEDED"]);
}

/// Bad join and state-change input is INVALID_ARGUMENT naming the field path, as for the other rpcs.
#[tokio::test]
async fn bad_input_names_the_field() {
    let server = TestServer::shipped().await;
    let mut client = server.client().await;
    let mut no_user = join(ALICE, JoinRule::Public, false);
    no_user.user = None;
    let status = client.check_room_join(no_user).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("user:"),
        "{}",
        status.message()
    );

    let state =
        |proposed: Option<proto::Room>, event_type: &str| proto::CheckRoomStateChangeRequest {
            request_id: String::new(),
            sender: subject(ALICE, 100),
            room: room(JoinRule::Invite, false),
            proposed,
            event_type: event_type.into(),
            state_key: String::new(),
        };
    let mut elsewhere = room(JoinRule::Public, false);
    if let Some(r) = elsewhere.as_mut() {
        r.room_id = "!other:agent.tchap.gouv.fr".into();
    }
    for (request, field) in [
        (state(None, "m.room.join_rules"), "proposed:"),
        (state(elsewhere, "m.room.join_rules"), "proposed.room_id:"),
        (state(room(JoinRule::Public, false), ""), "event_type:"),
    ] {
        let status = client.check_room_state_change(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().starts_with(field), "{}", status.message());
    }
    let allowed = client
        .check_room_state_change(state(room(JoinRule::Public, false), "m.room.join_rules"))
        .await
        .unwrap()
        .into_inner()
        .decision
        .unwrap();
    assert_eq!(allowed.effect, proto::Effect::Allow as i32);
}
