//! Transport security, black-box: TLS with certificates generated here (rcgen), mutual TLS, and the bearer token.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use roomguard_test_support as common;

use std::time::Duration;

use common::{TestServer, send};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use roomguard::{
    grpc::{
        proto::{JoinRule, policy_service_client::PolicyServiceClient},
        server::Options,
    },
    ops::{layers::auth::BearerToken, tls, tls::TlsConfig},
};
use tonic::{
    Code, Request,
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity},
};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

const AGENT: &str = "@alice:agent.finances.tchap.gouv.fr";

/// A CA, a server certificate for `localhost` and a client certificate, written as PEM files.
struct Pki {
    dir: tempfile::TempDir,
    ca_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
}

impl Pki {
    fn new() -> Pki {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let server_key = KeyPair::generate().unwrap();
        let server_cert = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&server_key, &ca)
            .unwrap();
        let client_key = KeyPair::generate().unwrap();
        let client_cert = CertificateParams::new(vec!["homeserver".to_owned()])
            .unwrap()
            .signed_by(&client_key, &ca)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.path().join("server.pem"), server_cert.pem()).unwrap();
        std::fs::write(dir.path().join("server.key"), server_key.serialize_pem()).unwrap();
        Pki {
            dir,
            ca_pem: ca.pem(),
            client_cert_pem: client_cert.pem(),
            client_key_pem: client_key.serialize_pem(),
        }
    }

    fn server_tls(&self, mutual: bool) -> TlsConfig {
        TlsConfig {
            cert: Some(self.dir.path().join("server.pem")),
            key: Some(self.dir.path().join("server.key")),
            client_ca: mutual.then(|| self.dir.path().join("ca.pem")),
        }
    }

    async fn start(&self, mutual: bool) -> TestServer {
        let options = Options {
            tls: tls::server_config(&self.server_tls(mutual)).unwrap(),
            ..Options::default()
        };
        TestServer::with_options(options).await
    }
}

async fn connect(addr: std::net::SocketAddr, tls: ClientTlsConfig) -> Result<Channel, String> {
    Endpoint::from_shared(format!("https://localhost:{}", addr.port()))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| roomguard::ops::tls::source_chain(&e))
}

async fn decide(channel: Channel) -> Result<(), tonic::Status> {
    PolicyServiceClient::new(channel)
        .check_message_send(send(AGENT, JoinRule::Invite, true, ""))
        .await
        .map(drop)
}

/// A TLS client that trusts the CA connects and is answered.
#[tokio::test]
async fn a_client_with_the_ca_connects_over_tls() {
    let pki = Pki::new();
    let server = pki.start(false).await;
    let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&pki.ca_pem));
    let channel = connect(server.addr, tls).await.unwrap();
    decide(channel).await.unwrap();
}

/// A TLS client that does not trust the CA fails the handshake; a plaintext client gets no answer.
#[tokio::test]
async fn a_client_without_the_ca_fails() {
    let pki = Pki::new();
    let server = pki.start(false).await;
    // No roots at all: the server's certificate cannot be verified.
    let result = connect(server.addr, ClientTlsConfig::new()).await;
    let failed = match result {
        Err(_) => true,
        Ok(channel) => decide(channel).await.is_err(),
    };
    assert!(
        failed,
        "a client that does not trust the CA must not be answered"
    );
    // Plaintext HTTP/2 to a TLS port.
    let plain = Endpoint::from_shared(format!("http://127.0.0.1:{}", server.addr.port()))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5));
    let failed = match plain.connect().await {
        Err(_) => true,
        Ok(channel) => decide(channel).await.is_err(),
    };
    assert!(
        failed,
        "a plaintext client must not be answered by a TLS listener"
    );
}

/// Under mutual TLS, a client with a certificate from the client CA is answered, one without is refused.
#[tokio::test]
async fn mutual_tls_requires_a_client_certificate() {
    let pki = Pki::new();
    let server = pki.start(true).await;
    let ca = Certificate::from_pem(&pki.ca_pem);

    let with_cert = ClientTlsConfig::new()
        .ca_certificate(ca.clone())
        .identity(Identity::from_pem(
            &pki.client_cert_pem,
            &pki.client_key_pem,
        ));
    decide(connect(server.addr, with_cert).await.unwrap())
        .await
        .unwrap();

    let without_cert = ClientTlsConfig::new().ca_certificate(ca);
    let failed = match connect(server.addr, without_cert).await {
        Err(_) => true,
        Ok(channel) => decide(channel).await.is_err(),
    };
    assert!(
        failed,
        "a client without a certificate must be refused under mTLS"
    );
}

/// A key that does not match the certificate is a config error naming the TLS settings, found before binding.
#[test]
fn a_mismatched_key_is_a_config_error() {
    let pki = Pki::new();
    let other = Pki::new();
    let config = TlsConfig {
        cert: Some(pki.dir.path().join("server.pem")),
        key: Some(other.dir.path().join("server.key")),
        client_ca: None,
    };
    let err = tls::server_config(&config).unwrap_err();
    assert!(err.setting.starts_with("tls"), "{err}");
}

async fn token_server() -> TestServer {
    let options = Options {
        token: BearerToken::new("correct horse battery staple"),
        ..Options::default()
    };
    TestServer::with_options(options).await
}

fn with_token(token: Option<&str>) -> Request<roomguard::grpc::proto::CheckMessageSendRequest> {
    let mut request = Request::new(send(AGENT, JoinRule::Invite, true, ""));
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    request
}

/// With a token configured, a call without it or with a wrong one is refused UNAUTHENTICATED; the right one passes.
#[tokio::test]
async fn an_unauthenticated_call_is_refused() {
    let server = token_server().await;
    let mut client = server.client().await;
    let missing = client
        .check_message_send(with_token(None))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated, "{missing:?}");
    let wrong = client
        .check_message_send(with_token(Some("correct horse battery")))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated, "{wrong:?}");
    client
        .check_message_send(with_token(Some("correct horse battery staple")))
        .await
        .unwrap();
}

/// Health stays open without the token (load balancers and `roomguard health` hold no secret).
#[tokio::test]
async fn health_needs_no_token() {
    let server = token_server().await;
    let response = HealthClient::new(server.channel().await)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(response.into_inner().status, 1, "SERVING");
}

/// `roomguard health` speaks TLS with `--ca` (the container HEALTHCHECK of a TLS deployment), and fails without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_subcommand_over_tls() {
    let pki = Pki::new();
    let server = pki.start(false).await;
    let addr = format!("https://localhost:{}", server.addr.port());
    let ca = pki.dir.path().join("ca.pem");
    let run = move |with_ca: bool| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_roomguard"));
        command.args(["health", "--addr", &addr, "--timeout-ms", "2000"]);
        if with_ca {
            command.arg("--ca").arg(&ca);
        }
        command.output().unwrap()
    };
    let run = std::sync::Arc::new(run);
    let ok = tokio::task::spawn_blocking({
        let run = run.clone();
        move || run(true)
    })
    .await
    .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let refused = tokio::task::spawn_blocking(move || run(false))
        .await
        .unwrap();
    assert_eq!(
        refused.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

/// With TLS on, a client that opens a TCP connection and never starts (or never finishes) its handshake is closed
/// once `limits.handshake_timeout_ms` is over, and so is one that finishes TLS but never sends the HTTP/2 preface.
#[tokio::test]
async fn a_silent_client_is_closed_after_the_handshake_timeout_over_tls() {
    use roomguard::ops::{limits::LimitsConfig, metrics::ConnectionDrop};
    use tokio::io::AsyncReadExt;

    let pki = Pki::new();
    let metrics = std::sync::Arc::new(roomguard::ops::metrics::Metrics::new());
    let options = Options {
        tls: tls::server_config(&pki.server_tls(false)).unwrap(),
        limits: LimitsConfig {
            handshake_timeout_ms: 300,
            ..LimitsConfig::default()
        },
        metrics: metrics.clone(),
        ..Options::default()
    };
    let server = TestServer::with_options(options).await;
    let mut silent = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buf))
        .await
        .expect("the server closes a connection that never starts TLS");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert_eq!(
        metrics.connections_dropped(ConnectionDrop::HandshakeTimeout),
        1
    );
}
