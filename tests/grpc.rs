//! Black-box tests of the gRPC service: a real server on `127.0.0.1:0`, a tonic client, the public contract.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use roomguard_test_support as common;

use std::{path::Path, time::Duration};

use common::{
    TestServer, codes, copy_policies, decide_publish, decide_send, room, send, subject, text,
};
use roomguard::grpc::proto::{self, JoinRule};
use tokio_stream::StreamExt;
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

const AGENT: &str = "@alice:agent.finances.tchap.gouv.fr";
const EXTERNAL: &str = "@bob:agent.externe.tchap.gouv.fr";

/// A plain message in a public forum is allowed, with the allowing rule, roles, classification and ids.
#[tokio::test]
async fn check_message_send_allows_a_plain_message() {
    let server = TestServer::shipped().await;
    let mut client = server.client().await;
    let response = client
        .check_message_send(send(AGENT, JoinRule::Public, false, "Bonjour"))
        .await
        .unwrap();
    let d = response.into_inner().decision.unwrap();
    assert_eq!(d.effect, proto::Effect::Allow as i32);
    assert_eq!(codes(&d), ["ALLOWED"]);
    assert_eq!(d.reasons[0].rule, "send.allow");
    assert!(!d.reasons[0].message.is_empty());
    assert_eq!(d.roles, ["agent"]);
    assert_eq!(d.classification, "none");
    assert_eq!(d.request_id, "req-1");
    assert!(
        d.policy_version.starts_with("sha256:"),
        "{}",
        d.policy_version
    );
    assert_eq!(d.decision_id.len(), 36, "a UUID: {}", d.decision_id);
}

/// A marked message in a public unencrypted room is denied with both violated rules, each with its message.
#[tokio::test]
async fn check_message_send_denies_with_every_reason() {
    let server = TestServer::shipped().await;
    let mut client = server.client().await;
    let d = decide_send(
        &mut client,
        send(
            AGENT,
            JoinRule::Public,
            false,
            "Diffusion Restreinte : compte rendu",
        ),
    )
    .await;
    assert_eq!(d.effect, proto::Effect::Deny as i32);
    assert_eq!(
        codes(&d),
        [
            "CLASSIFIED_IN_UNENCRYPTED_ROOM",
            "CLASSIFIED_IN_PUBLIC_ROOM"
        ]
    );
    assert_eq!(d.classification, "restricted");
    assert!(
        d.reasons
            .iter()
            .all(|r| !r.message.is_empty() && !r.rule.is_empty())
    );
}

/// Every decision gets its own id.
#[tokio::test]
async fn decision_ids_are_unique() {
    let server = TestServer::shipped().await;
    let mut client = server.client().await;
    let mut ids = std::collections::HashSet::new();
    for _ in 0..50 {
        let d = client
            .check_message_send(send(AGENT, JoinRule::Invite, false, "x"))
            .await
            .unwrap();
        assert!(ids.insert(d.into_inner().decision.unwrap().decision_id));
    }
}

/// Room publish: a proper forum is allowed; an encrypted private room by a member lists all its reasons; unpublish
/// is always allowed.
#[tokio::test]
async fn check_room_publish() {
    let server = TestServer::shipped().await;
    let mut client = server.client().await;
    let mut decide = async |user: &str,
                            power: i64,
                            join_rule: JoinRule,
                            encrypted: bool,
                            visibility: proto::DirectoryVisibility| {
        let request = proto::CheckRoomPublishRequest {
            request_id: "p-1".into(),
            requester: subject(user, power),
            room: room(join_rule, encrypted),
            visibility: visibility as i32,
        };
        decide_publish(&mut client, request).await
    };
    let ok = decide(
        AGENT,
        100,
        JoinRule::Public,
        false,
        proto::DirectoryVisibility::Public,
    )
    .await;
    assert_eq!(
        (ok.effect, codes(&ok)),
        (proto::Effect::Allow as i32, vec!["ALLOWED".to_string()])
    );
    assert_eq!(ok.classification, "", "room-publish has no classification");

    let denied = decide(
        AGENT,
        0,
        JoinRule::Invite,
        true,
        proto::DirectoryVisibility::Public,
    )
    .await;
    assert_eq!(denied.effect, proto::Effect::Deny as i32);
    assert_eq!(
        codes(&denied),
        [
            "INSUFFICIENT_POWER_LEVEL",
            "ROOM_NOT_PUBLIC",
            "ENCRYPTED_ROOM_NOT_PUBLISHABLE"
        ]
    );

    let external = decide(
        EXTERNAL,
        100,
        JoinRule::Public,
        false,
        proto::DirectoryVisibility::Public,
    )
    .await;
    assert_eq!(codes(&external), ["EXTERNAL_CANNOT_PUBLISH"]);
    assert_eq!(external.roles, ["external"]);

    let unpublish = decide(
        EXTERNAL,
        0,
        JoinRule::Invite,
        true,
        proto::DirectoryVisibility::Private,
    )
    .await;
    assert_eq!(
        (unpublish.effect, codes(&unpublish)),
        (
            proto::Effect::Allow as i32,
            vec!["UNPUBLISH_ALLOWED".into()]
        )
    );
}

/// Bad input is INVALID_ARGUMENT naming the field path, and the server keeps answering afterwards.
#[tokio::test]
async fn invalid_input_names_the_field() {
    let server = TestServer::shipped().await;
    let mut client = server.client().await;
    let cases: Vec<(proto::CheckMessageSendRequest, &str)> = vec![
        (
            proto::CheckMessageSendRequest {
                sender: None,
                ..send(AGENT, JoinRule::Public, false, "x")
            },
            "sender:",
        ),
        (
            send("alice", JoinRule::Public, false, "x"),
            "sender.user_id:",
        ),
        (
            send(
                &format!("@{}:example.org", "a".repeat(300)),
                JoinRule::Public,
                false,
                "x",
            ),
            "sender.user_id:",
        ),
        (
            send(AGENT, JoinRule::Unspecified, false, "x"),
            "room.join_rule:",
        ),
        (
            proto::CheckMessageSendRequest {
                message: None,
                ..send(AGENT, JoinRule::Public, false, "x")
            },
            "message:",
        ),
        (
            proto::CheckMessageSendRequest {
                message: Some(proto::Message {
                    event_type: String::new(),
                    ..text("x").unwrap()
                }),
                ..send(AGENT, JoinRule::Public, false, "x")
            },
            "message.event_type:",
        ),
        (
            send(AGENT, JoinRule::Public, false, &"x".repeat(70_000)),
            "message.body:",
        ),
        (
            proto::CheckMessageSendRequest {
                room: Some(proto::Room {
                    room_id: "#alias:example.org".into(),
                    ..room(JoinRule::Public, false).unwrap()
                }),
                ..send(AGENT, JoinRule::Public, false, "x")
            },
            "room.room_id:",
        ),
        (
            proto::CheckMessageSendRequest {
                room: Some(proto::Room {
                    join_rule: 77,
                    ..room(JoinRule::Public, false).unwrap()
                }),
                ..send(AGENT, JoinRule::Public, false, "x")
            },
            "room.join_rule:",
        ),
    ];
    for (request, field) in cases {
        let status = client.check_message_send(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert!(
            status.message().starts_with(field),
            "{field}: {}",
            status.message()
        );
    }
    let publish = proto::CheckRoomPublishRequest {
        request_id: String::new(),
        requester: subject(AGENT, 100),
        room: room(JoinRule::Public, false),
        visibility: 0,
    };
    let status = client.check_room_publish(publish).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("visibility:"),
        "{}",
        status.message()
    );
    server.assert_answering().await;
}

/// A request far over any real event is refused by size before it is decoded.
#[tokio::test]
async fn oversized_requests_are_refused() {
    let server = TestServer::shipped().await;
    let mut client = server.client().await;
    let status = client
        .check_message_send(send(AGENT, JoinRule::Public, false, &"x".repeat(1 << 20)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    server.assert_answering().await;
}

/// Health answers SERVING for the server and for the policy service, and NOT_FOUND for others.
#[tokio::test]
async fn health_reports_serving() {
    let server = TestServer::shipped().await;
    let mut health = HealthClient::new(server.channel().await);
    for service in ["", "roomguard.v1.PolicyService"] {
        let r = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.status, ServingStatus::Serving as i32, "{service:?}");
    }
    let missing = health
        .check(HealthCheckRequest {
            service: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

/// Reflection v1 lists the policy service and health, and describes the policy proto.
#[tokio::test]
async fn reflection_lists_the_services() {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let server = TestServer::shipped().await;
    let mut client = ServerReflectionClient::new(server.channel().await);
    let requests = vec![
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        },
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(
                "roomguard.v1.PolicyService".into(),
            )),
        },
    ];
    let mut responses = client
        .server_reflection_info(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let first = responses
        .next()
        .await
        .unwrap()
        .unwrap()
        .message_response
        .unwrap();
    let MessageResponse::ListServicesResponse(list) = first else {
        panic!("unexpected {first:?}")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"roomguard.v1.PolicyService".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_string()),
        "{names:?}"
    );
    let second = responses
        .next()
        .await
        .unwrap()
        .unwrap()
        .message_response
        .unwrap();
    let MessageResponse::FileDescriptorResponse(files) = second else {
        panic!("unexpected {second:?}")
    };
    assert!(!files.file_descriptor_proto.is_empty());
}

/// A policy author adds a rule by editing files only: a new deny rule and reason code, and the new reason comes back.
#[tokio::test]
async fn an_author_adds_a_rule_by_editing_files() {
    let dir = copy_policies(Path::new("policies"));
    let mut rules = std::fs::read_to_string(dir.path().join("rules.csv")).unwrap();
    rules = rules.replace(
        "p, send.allow,",
        "p, send.large-file-public, send, r.msg.msgtype == \"m.file\" && r.msg.size_mib > 50 && r.room.is_public, deny, FILE_TOO_LARGE_IN_PUBLIC_ROOM\np, send.allow,",
    );
    std::fs::write(dir.path().join("rules.csv"), rules).unwrap();
    let mut reasons = std::fs::read_to_string(dir.path().join("reasons.toml")).unwrap();
    reasons.push_str("\n[FILE_TOO_LARGE_IN_PUBLIC_ROOM]\nfr = \"Fichier de plus de 50 Mo interdit dans un salon public.\"\n");
    std::fs::write(dir.path().join("reasons.toml"), reasons).unwrap();

    let server = TestServer::start(dir.path()).await;
    let mut client = server.client().await;
    let file = |size: u64| proto::CheckMessageSendRequest {
        message: Some(proto::Message {
            event_type: "m.room.message".into(),
            msgtype: "m.file".into(),
            body: "video.mp4".into(),
            filename: "video.mp4".into(),
            mimetype: "video/mp4".into(),
            size,
            ..Default::default()
        }),
        ..send(AGENT, JoinRule::Public, false, "")
    };
    let big = decide_send(&mut client, file((50 << 20) + 1)).await;
    assert_eq!(big.effect, proto::Effect::Deny as i32);
    assert_eq!(codes(&big), ["FILE_TOO_LARGE_IN_PUBLIC_ROOM"]);
    assert_eq!(big.reasons[0].rule, "send.large-file-public");
    assert_eq!(
        big.reasons[0].message,
        "Fichier de plus de 50 Mo interdit dans un salon public."
    );
    let small = decide_send(&mut client, file(50 << 20)).await;
    assert_eq!(small.effect, proto::Effect::Allow as i32);

    let shipped = TestServer::shipped().await;
    let d = decide_send(&mut shipped.client().await, file((50 << 20) + 1)).await;
    assert_eq!(
        d.effect,
        proto::Effect::Allow as i32,
        "the shipped policy has no such rule"
    );
    assert_ne!(
        d.policy_version, big.policy_version,
        "the edit changed the policy version"
    );
}

/// Shutdown lets in-flight calls finish, flips health to NOT_SERVING, and then refuses new connections.
#[tokio::test]
async fn shutdown_drains_and_stops() {
    let server = TestServer::shipped().await;
    let mut client = server.client().await;
    let addr = server.addr;
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let mut c = client.clone();
            tokio::spawn(async move {
                c.check_message_send(send(AGENT, JoinRule::Public, false, "x"))
                    .await
            })
        })
        .collect();
    server.stop().await;
    for call in calls {
        // Each call either completed before shutdown or was answered during the drain: none is cut off mid-way.
        let result = call.await.unwrap();
        if let Err(status) = &result {
            assert_ne!(status.code(), Code::Internal, "{status:?}");
        }
    }
    let refused = tokio::time::timeout(
        Duration::from_secs(2),
        client.check_message_send(send(AGENT, JoinRule::Public, false, "x")),
    )
    .await
    .map(|r| r.is_err())
    .unwrap_or(true);
    assert!(refused, "a stopped server must not answer");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the listener is closed"
    );
}
