//! What roomguard's integration tests share: a real server on `127.0.0.1:0` (in this process, with the listeners a
//! test asks for), request builders for the gRPC API, a stand-in homeserver for the read guard ([`homeserver`]), and
//! the kubelet's way of writing a mounted ConfigMap ([`atomic_writer`]).
//!
//! A crate of its own so that it is built once rather than in every test binary, and so that what the tests rely on
//! is an API with documentation like any other. Tests fail by panicking, so this crate may too.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support: a failed set-up fails the test that asked for it"
)]

pub mod atomic_writer;
pub mod homeserver;

use std::{net::SocketAddr, path::Path, sync::Arc, time::Duration};

use roomguard::{
    grpc::{
        proto::{self, policy_service_client::PolicyServiceClient},
        server::{self, Listeners, Options},
    },
    policy::{PolicySnapshot, store::PolicyStore},
};
use tokio::{
    net::{TcpListener, UnixListener},
    sync::oneshot,
    task::JoinHandle,
};
use tonic::transport::Channel;

/// Listeners beyond the gRPC TCP one, for [`TestServer::start_with`].
#[derive(Debug, Default)]
pub struct Extras {
    /// Serve on this Unix socket too.
    pub unix: Option<std::path::PathBuf>,
    /// Serve metrics on an ephemeral loopback port.
    pub metrics: bool,
    /// Serve the read guard's HTTP front (`/authz`) on an ephemeral loopback port.
    pub reads: bool,
}

/// A server running in this process, stopped when dropped or by [`TestServer::stop`].
pub struct TestServer {
    /// The gRPC listener (loopback, ephemeral port).
    pub addr: SocketAddr,
    /// The metrics listener, when asked for.
    pub metrics_addr: Option<SocketAddr>,
    /// The read guard's HTTP front, when asked for.
    pub reads_addr: Option<SocketAddr>,
    /// The live policy, for tests that swap or inspect it.
    pub store: Arc<PolicyStore>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Serves the policy in `dir` on an ephemeral loopback port.
    pub async fn start(dir: &Path) -> TestServer {
        TestServer::start_with(dir, Options::default(), Extras::default()).await
    }

    /// Serves the policy in `dir` with `options` on an ephemeral loopback port, and on `extras`.
    pub async fn start_with(dir: &Path, options: Options, extras: Extras) -> TestServer {
        let policy = PolicySnapshot::load(dir).unwrap_or_else(|e| panic!("{e}"));
        let store = Arc::new(PolicyStore::new(policy));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics = if extras.metrics {
            Some(TcpListener::bind("127.0.0.1:0").await.unwrap())
        } else {
            None
        };
        let metrics_addr = metrics.as_ref().map(|l| l.local_addr().unwrap());
        let reads = if extras.reads {
            Some(TcpListener::bind("127.0.0.1:0").await.unwrap())
        } else {
            None
        };
        let reads_addr = reads.as_ref().map(|l| l.local_addr().unwrap());
        let listeners = Listeners {
            grpc: listener,
            unix: extras.unix.map(|path| UnixListener::bind(path).unwrap()),
            metrics,
            reads,
        };
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn({
            let store = store.clone();
            async move {
                server::serve(listeners, store, options, async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
            }
        });
        TestServer {
            addr,
            metrics_addr,
            reads_addr,
            store,
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    /// Serves the shipped policy with `options`.
    pub async fn with_options(options: Options) -> TestServer {
        TestServer::start_with(Path::new("policies"), options, Extras::default()).await
    }

    /// Serves the shipped policy.
    pub async fn shipped() -> TestServer {
        TestServer::start(Path::new("policies")).await
    }

    /// A channel to the gRPC listener, retried for up to a second while the server comes up.
    pub async fn channel(&self) -> Channel {
        for _ in 0..50 {
            if let Ok(channel) = Channel::from_shared(format!("http://{}", self.addr))
                .unwrap()
                .connect()
                .await
            {
                return channel;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("server at {} did not accept connections", self.addr);
    }

    /// A `PolicyService` client on [`TestServer::channel`].
    pub async fn client(&self) -> PolicyServiceClient<Channel> {
        PolicyServiceClient::new(self.channel().await)
    }

    /// The metrics listener's answer to `GET /metrics` (the server must have been started with `metrics: true`).
    pub async fn scrape_metrics(&self) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(self.metrics_addr.unwrap())
            .await
            .unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).await.unwrap();
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        text
    }

    /// Fails the test unless an ordinary call is decided: the server is still answering after whatever came before.
    pub async fn assert_answering(&self) {
        let request = send(
            "@alice:agent.finances.tchap.gouv.fr",
            proto::JoinRule::Invite,
            true,
            "",
        );
        decide_send(&mut self.client().await, request).await;
    }

    /// Asks the server to shut down and waits until it has.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(10), handle)
                .await
                .expect("server stops")
                .unwrap();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A subject with no admin flag and this power level.
pub fn subject(user_id: &str, power_level: i64) -> Option<proto::Subject> {
    Some(proto::Subject {
        user_id: user_id.into(),
        server_admin: false,
        power_level,
    })
}

/// A room of the finance ministry with this join rule, shared history, encrypted or not, not published.
pub fn room(join_rule: proto::JoinRule, encrypted: bool) -> Option<proto::Room> {
    Some(proto::Room {
        room_id: "!forum:agent.finances.tchap.gouv.fr".into(),
        join_rule: join_rule as i32,
        history_visibility: proto::HistoryVisibility::Shared as i32,
        encrypted,
        guest_access: false,
        published: false,
        access_rule: String::new(),
    })
}

/// An `m.text` message.
pub fn text(body: &str) -> Option<proto::Message> {
    Some(proto::Message {
        event_type: "m.room.message".into(),
        msgtype: "m.text".into(),
        body: body.into(),
        ..Default::default()
    })
}

/// `user_id` sends `body` as `m.text` into a room with `join_rule`, encrypted or not.
pub fn send(
    user_id: &str,
    join_rule: proto::JoinRule,
    encrypted: bool,
    body: &str,
) -> proto::CheckMessageSendRequest {
    proto::CheckMessageSendRequest {
        request_id: "req-1".into(),
        sender: subject(user_id, 0),
        room: room(join_rule, encrypted),
        message: text(body),
    }
}

/// Sends a `CheckMessageSend` and returns its decision; any status fails the test (call the client directly to test
/// a status).
pub async fn decide_send(
    client: &mut PolicyServiceClient<Channel>,
    request: proto::CheckMessageSendRequest,
) -> proto::Decision {
    let response = client.check_message_send(request).await;
    response
        .unwrap_or_else(|status| panic!("CheckMessageSend failed: {status:?}"))
        .into_inner()
        .decision
        .expect("a response carries a decision")
}

/// Sends a `CheckRoomPublish` and returns its decision; any status fails the test.
pub async fn decide_publish(
    client: &mut PolicyServiceClient<Channel>,
    request: proto::CheckRoomPublishRequest,
) -> proto::Decision {
    let response = client.check_room_publish(request).await;
    response
        .unwrap_or_else(|status| panic!("CheckRoomPublish failed: {status:?}"))
        .into_inner()
        .decision
        .expect("a response carries a decision")
}

/// Sends a `CheckRoomJoin` and returns its decision; any status fails the test.
pub async fn decide_join(
    client: &mut PolicyServiceClient<Channel>,
    request: proto::CheckRoomJoinRequest,
) -> proto::Decision {
    let response = client.check_room_join(request).await;
    response
        .unwrap_or_else(|status| panic!("CheckRoomJoin failed: {status:?}"))
        .into_inner()
        .decision
        .expect("a response carries a decision")
}

/// A file message into a public unencrypted room carrying a protection marking in its body, its HTML body and its
/// file name, each followed by one of `canaries` (text that must never reach a log).
pub fn marked_message(request_id: &str, canaries: [&str; 3]) -> proto::CheckMessageSendRequest {
    proto::CheckMessageSendRequest {
        request_id: request_id.into(),
        sender: subject("@alice:agent.finances.tchap.gouv.fr", 0),
        room: room(proto::JoinRule::Public, false),
        message: Some(proto::Message {
            event_type: "m.room.message".into(),
            msgtype: "m.file".into(),
            body: format!("DIFFUSION RESTREINTE {}", canaries[0]),
            formatted_body: format!("<b>Diffusion restreinte</b> {}", canaries[1]),
            filename: format!("DR-{}.pdf", canaries[2]),
            mimetype: "application/pdf".into(),
            size: 1234,
        }),
    }
}

/// The reason codes of a decision, in order.
pub fn codes(decision: &proto::Decision) -> Vec<String> {
    decision.reasons.iter().map(|r| r.code.clone()).collect()
}

/// Copies a policy directory (flat files and `tests/`) into a fresh temporary directory.
pub fn copy_policies(from: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    dir
}
