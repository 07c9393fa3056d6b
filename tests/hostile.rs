//! Hostile clients, black-box against a server on `127.0.0.1:0`: bytes that are not a request, sockets that never
//! speak, request bodies that never end, more connections than the server allows. Each test is one way an intruder
//! (or a broken client) could get around or lock up a security product, and pins the answer roomguard gives instead.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use roomguard_test_support as common;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use common::{TestServer, send};
use roomguard::{
    grpc::{proto::JoinRule, server::Options},
    ops::{
        limits::LimitsConfig,
        metrics::{ConnectionDrop, Metrics},
    },
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const AGENT: &str = "@alice:agent.finances.tchap.gouv.fr";
const SEND: &str = "/roomguard.v1.PolicyService/CheckMessageSend";

/// A server on the shipped policy with `limits`, and its metrics.
async fn server_with(limits: LimitsConfig) -> (TestServer, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let options = Options {
        limits,
        metrics: metrics.clone(),
        ..Options::default()
    };
    (TestServer::with_options(options).await, metrics)
}

/// An HTTP/2 connection with no gRPC library in between: frames as a hostile client writes them.
async fn h2_connection(addr: SocketAddr) -> h2::client::SendRequest<Bytes> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    client.ready().await.unwrap()
}

fn grpc_request(addr: SocketAddr, path: &str) -> http::Request<()> {
    http::Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap()
}

/// One gRPC frame: uncompressed, with its length.
fn frame(message: &[u8]) -> Bytes {
    let mut body = vec![0u8];
    body.extend(u32::try_from(message.len()).unwrap().to_be_bytes());
    body.extend(message);
    body.into()
}

/// Sends `message` as the whole body of a unary call to `path`; returns `grpc-status` and `grpc-message`.
async fn raw_unary(addr: SocketAddr, path: &str, message: &[u8]) -> (String, String) {
    let mut client = h2_connection(addr).await;
    let (response, mut stream) = client
        .send_request(grpc_request(addr, path), false)
        .unwrap();
    stream.send_data(frame(message), true).unwrap();
    let response = response.await.unwrap();
    let status = |headers: &http::HeaderMap| {
        headers.get("grpc-status").map(|s| {
            let message = headers
                .get("grpc-message")
                .map(|m| percent_decode(m.to_str().unwrap()))
                .unwrap_or_default();
            (s.to_str().unwrap().to_owned(), message)
        })
    };
    if let Some(trailers_only) = status(response.headers()) {
        return trailers_only;
    }
    let mut body = response.into_body();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    status(&body.trailers().await.unwrap().unwrap()).unwrap()
}

/// `grpc-message` is percent-encoded on the wire (gRPC over HTTP/2).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(&text[i + 1..i + 3], 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads until the server closes the connection; returns how long that took, or None if it stays open past `limit`.
async fn closed_within(socket: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = tokio::time::Instant::now();
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout_at(started + limit, socket.read(&mut buf)).await {
            Err(_elapsed) => return None,
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

/// Bytes that are not a `CheckMessageSendRequest` are the caller's bug: INVALID_ARGUMENT (3), never INTERNAL (13),
/// whatever is wrong with them, and the message says what could not be decoded.
#[tokio::test]
async fn undecodable_requests_are_invalid_arguments() {
    let server = TestServer::shipped().await;
    let mut nested_groups = vec![0x1b_u8; 200]; // field 3, start group, 200 deep: past prost's recursion limit
    nested_groups.extend([0x1c; 200]);
    let cases: [(&str, Vec<u8>); 5] = [
        ("invalid UTF-8 in request_id", vec![0x0a, 0x01, 0xff]),
        ("wrong wire type for a string", vec![0x0d, 0, 0, 0, 0]),
        ("length past the end", vec![0x0a, 0x10, b'a', b'b']),
        ("over-long varint", [vec![0x10], vec![0xff; 11]].concat()),
        ("nested groups", nested_groups),
    ];
    for (what, bytes) in cases {
        let (status, message) = raw_unary(server.addr, SEND, &bytes).await;
        assert_eq!(status, "3", "{what}: {message}");
        assert!(
            message.contains("not a valid protobuf message"),
            "{what}: {message}"
        );
    }
    // The invalid UTF-8 case names the field it was in.
    let (_, message) = raw_unary(server.addr, SEND, &[0x0a, 0x01, 0xff]).await;
    assert!(message.contains("request_id"), "{message}");
}

/// Request bodies that never finish hold no concurrency permit: with four permits and eight stalled streams, an
/// ordinary call is still decided, and each stalled stream is ended by the request timeout (DEADLINE_EXCEEDED).
#[tokio::test]
async fn stalled_request_bodies_do_not_lock_out_other_callers() {
    let (server, metrics) = server_with(LimitsConfig {
        max_concurrent_requests: 4,
        request_timeout_ms: 1500,
        ..LimitsConfig::default()
    })
    .await;
    let mut h2 = h2_connection(server.addr).await;
    let mut stalled = Vec::new();
    for _ in 0..8 {
        let (response, mut stream) = h2
            .send_request(grpc_request(server.addr, SEND), false)
            .unwrap();
        // A frame header announcing 100 bytes, then 3 of them, then nothing: the body never completes.
        let mut partial = vec![0u8];
        partial.extend(100u32.to_be_bytes());
        partial.extend(b"\x0a\x01a");
        stream.send_data(partial.into(), false).unwrap();
        stalled.push((response, stream));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;

    let mut client = server.client().await;
    let decision = client
        .check_message_send(send(AGENT, JoinRule::Invite, true, ""))
        .await
        .expect("an ordinary call is admitted")
        .into_inner()
        .decision
        .unwrap();
    assert!(!decision.decision_id.is_empty());
    assert_eq!(metrics.shed_count(), 0);

    let (response, _stream) = stalled.pop().unwrap();
    let response = tokio::time::timeout(Duration::from_secs(5), response)
        .await
        .expect("the stalled call is answered")
        .unwrap();
    assert_eq!(response.headers()["grpc-status"], "4");
}

/// A socket that never sends the HTTP/2 preface, or sends half of it, is closed once the handshake timeout is
/// over, and counted.
#[tokio::test]
async fn silent_connections_are_closed_after_the_handshake_timeout() {
    let (server, metrics) = server_with(LimitsConfig {
        handshake_timeout_ms: 300,
        ..LimitsConfig::default()
    })
    .await;
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let mut half = TcpStream::connect(server.addr).await.unwrap();
    half.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();

    let opened = tokio::time::Instant::now();
    for socket in [&mut silent, &mut half] {
        closed_within(socket, Duration::from_secs(5))
            .await
            .expect("the server closes the connection");
        let took = opened.elapsed();
        assert!(took >= Duration::from_millis(250), "closed after {took:?}");
    }
    assert_eq!(
        metrics.connections_dropped(ConnectionDrop::HandshakeTimeout),
        2
    );
    // A client that speaks at once is unaffected.
    server.assert_answering().await;
}

/// Bytes that are not HTTP/2 are closed at once, without waiting for the timeout.
#[tokio::test]
async fn a_connection_that_is_not_http2_is_closed_at_once() {
    let (server, metrics) = server_with(LimitsConfig::default()).await;
    let mut socket = TcpStream::connect(server.addr).await.unwrap();
    socket
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    closed_within(&mut socket, Duration::from_secs(2))
        .await
        .expect("closed before the 10 s handshake timeout");
    assert_eq!(metrics.connections_dropped(ConnectionDrop::NotHttp2), 1);
}

/// At `limits.max_connections` open connections, one more is closed as soon as it is accepted (not left to hang),
/// counted; once a slot frees, calls are served again.
#[tokio::test]
async fn connections_beyond_the_limit_are_closed_at_once() {
    let (server, metrics) = server_with(LimitsConfig {
        max_connections: 3,
        ..LimitsConfig::default()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(server.addr).await.unwrap());
    }
    while metrics.connections_open() < 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut extra = TcpStream::connect(server.addr).await.unwrap();
    closed_within(&mut extra, Duration::from_secs(2))
        .await
        .expect(
            "the connection over the limit is closed at once, not after the 10 s handshake timeout",
        );
    assert_eq!(metrics.connections_refused_at_limit(), 1);

    drop(held);
    while metrics.connections_open() > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.assert_answering().await;
}

/// Shutdown does not wait for clients that hold connections: an idle HTTP/2 connection, a stalled request body
/// and a socket that never sent its preface are all closed when the grace period ends.
#[tokio::test]
async fn shutdown_ends_after_the_grace_period_whatever_clients_hold() {
    let (server, _) = server_with(LimitsConfig {
        shutdown_grace_ms: 300,
        request_timeout_ms: 60_000,
        ..LimitsConfig::default()
    })
    .await;
    let _silent = TcpStream::connect(server.addr).await.unwrap();
    let _idle = h2_connection(server.addr).await;
    let mut busy = h2_connection(server.addr).await;
    let (_response, mut stream) = busy
        .send_request(grpc_request(server.addr, SEND), false)
        .unwrap();
    stream
        .send_data(Bytes::from_static(&[0, 0, 0, 0, 100]), false)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    let started = tokio::time::Instant::now();
    server.stop().await; // panics past 10 s
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}
