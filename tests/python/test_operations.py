"""The operations contract seen by an independent client (Python grpcio, as the Synapse module uses): TLS with the CA,
the bearer token as `authorization` metadata, the Unix socket, and shadow mode, against the real binary."""

import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import grpc
import pytest
import trustme
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conftest import REPO, free_port

AGENT = "@alice:agent.finances.tchap.gouv.fr"
TOKEN = "py-token-0123456789"


class Serve:
    """`roomguard serve` with extra flags and environment; stopped by SIGTERM."""

    def __init__(self, binary, *args, env=None):
        self.port = free_port()
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [str(binary), "serve", "--listen", f"127.0.0.1:{self.port}", "--policies", str(REPO / "policies"),
             "--decision-log", "off", *args],
            stdout=subprocess.DEVNULL,
            stderr=self.stderr,
            env={**os.environ, "RUST_LOG": "info", **(env or {})},
        )

    def wait_ready(self, channel):
        grpc.channel_ready_future(channel).result(timeout=30)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=15)


def marked(pb):
    p = pb[0]
    return p.CheckMessageSendRequest(
        request_id="py-ops",
        sender=p.Subject(user_id=AGENT),
        room=p.Room(room_id="!forum:agent.finances.tchap.gouv.fr", join_rule=p.JOIN_RULE_PUBLIC,
                    history_visibility=p.HISTORY_VISIBILITY_SHARED),
        message=p.Message(event_type="m.room.message", msgtype="m.text", body="Diffusion restreinte : budget"),
    )


@pytest.fixture(scope="module")
def tls_server(binary, tmp_path_factory):
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    d = tmp_path_factory.mktemp("tls")
    cert.private_key_and_cert_chain_pem.write_to_path(str(d / "server.pem"))
    cert.private_key_pem.write_to_path(str(d / "server.key"))
    token_file = d / "token"
    token_file.write_text(TOKEN + "\n")
    server = Serve(binary, "--tls-cert", str(d / "server.pem"), "--tls-key", str(d / "server.key"),
                   "--auth-token-file", str(token_file))
    server.ca_pem = ca.cert_pem.bytes()
    yield server
    server.stop()


def tls_channel(server, root_pem):
    creds = grpc.ssl_channel_credentials(root_certificates=root_pem)
    return grpc.secure_channel(f"localhost:{server.port}", creds)


def test_tls_with_the_ca_and_the_token_is_answered(pb, tls_server):
    channel = tls_channel(tls_server, tls_server.ca_pem)
    tls_server.wait_ready(channel)
    stub = pb[1].PolicyServiceStub(channel)
    d = stub.CheckMessageSend(marked(pb), metadata=[("authorization", f"Bearer {TOKEN}")], timeout=5).decision
    assert d.effect == pb[0].EFFECT_DENY
    assert d.policy_effect == pb[0].EFFECT_DENY
    assert not d.shadow


def test_a_call_without_the_token_is_unauthenticated_but_health_is_open(pb, tls_server):
    channel = tls_channel(tls_server, tls_server.ca_pem)
    tls_server.wait_ready(channel)
    stub = pb[1].PolicyServiceStub(channel)
    with pytest.raises(grpc.RpcError) as err:
        stub.CheckMessageSend(marked(pb), timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as err:
        stub.CheckMessageSend(marked(pb), metadata=[("authorization", "Bearer nope")], timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    assert health.status == health_pb2.HealthCheckResponse.SERVING


def test_a_client_without_the_ca_fails(pb, tls_server):
    wrong_ca = trustme.CA().cert_pem.bytes()
    channel = tls_channel(tls_server, wrong_ca)
    stub = pb[1].PolicyServiceStub(channel)
    with pytest.raises(grpc.RpcError) as err:
        stub.CheckMessageSend(marked(pb), metadata=[("authorization", f"Bearer {TOKEN}")], timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_unix_socket_and_shadow_mode(pb, binary, tmp_path):
    sock = tmp_path / "roomguard.sock"
    server = Serve(binary, "--unix-socket", str(sock), "--mode", "shadow")
    try:
        # grpc-core sends the socket path as :authority, which HTTP/2 servers built on hyper refuse
        # (PROTOCOL_ERROR): name an ordinary authority instead.
        channel = grpc.insecure_channel(f"unix:{sock}", options=[("grpc.default_authority", "localhost")])
        server.wait_ready(channel)
        d = pb[1].PolicyServiceStub(channel).CheckMessageSend(marked(pb), timeout=5).decision
        assert d.effect == pb[0].EFFECT_ALLOW
        assert d.shadow
        assert d.policy_effect == pb[0].EFFECT_DENY
        assert [r.code for r in d.reasons] == ["CLASSIFIED_IN_UNENCRYPTED_ROOM", "CLASSIFIED_IN_PUBLIC_ROOM"]
    finally:
        assert server.stop() == 0
    assert not sock.exists(), "the socket file is removed on shutdown"
