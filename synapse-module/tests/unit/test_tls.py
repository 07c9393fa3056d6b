"""TLS towards roomguard: configuration, server verification, mutual TLS."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from synapse.config._base import ConfigError

from synapse_roomguard._proto.roomguard.v1 import policy_pb2 as pb
from synapse_roomguard.client import PolicyClient, RoomguardUnavailableError
from synapse_roomguard.config import parse_config
from tests.fake_roomguard import FakeRoomguard
from tests.tls_material import make_pki
from tests.unit.test_client import ThreadHopReactor, message_request


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory):
    directory = tmp_path_factory.mktemp("pki")
    ca, server, client = make_pki(directory)
    other_ca, _, _ = make_pki(directory / "other", ca_name="someone else's CA")
    return ca, server, client, other_ca


def tls_server(server_pem, ca_pem, *, require_client_cert: bool) -> FakeRoomguard:
    credentials = grpc.ssl_server_credentials(
        [(server_pem.key.read_bytes(), server_pem.cert.read_bytes())],
        root_certificates=ca_pem.cert.read_bytes() if require_client_cert else None,
        require_client_auth=require_client_cert,
    )
    return FakeRoomguard(credentials=credentials).start()


def ask(config: dict, endpoint: str) -> object:
    parsed = parse_config({"endpoint": endpoint, **config})
    reactor = ThreadHopReactor()
    client = PolicyClient(
        endpoint, timeout_s=2.0, reconnect_backoff_max_s=0.5, reactor=reactor, max_concurrent_calls=2, tls=parsed.tls
    )
    try:
        result, _ = reactor.wait(client.check_message_send(message_request()))
    finally:
        client.close()
    return result


# === configuration ===


def test_tls_config_reads_the_files(pki) -> None:
    """`tls.ca_file` (and the client pair) are read at start-up; their bytes never show in the config's repr."""
    ca, _, client, _ = pki
    config = parse_config(
        {
            "endpoint": "roomguard.internal:50051",
            "tls": {"ca_file": str(ca.cert), "cert_file": str(client.cert), "key_file": str(client.key)},
        }
    )
    assert config.tls is not None
    assert config.tls.root_certificates == ca.cert.read_bytes()
    assert config.tls.private_key == client.key.read_bytes()
    assert "PRIVATE KEY" not in repr(config)


@pytest.mark.parametrize(
    ("tls", "named_key"),
    [
        ({}, "`tls.ca_file`"),
        ("yes", "`tls`"),
        ({"ca_file": "/nonexistent/ca.pem"}, "`tls.ca_file`"),
        ({"ca_file": "CA", "cert_file": "CLIENT"}, "`tls.key_file`"),
        ({"ca_file": "CA", "key_file": "KEY"}, "`tls.cert_file`"),
        ({"ca_file": "CA", "server_name": ""}, "`tls.server_name`"),
        ({"ca_file": "CA", "ca_path": "x"}, "`tls.ca_path`"),
        ({"ca_file": "NOT_PEM"}, "`tls.ca_file`"),
    ],
)
def test_bad_tls_config_is_refused_naming_the_key(pki, tmp_path: Path, tls, named_key: str) -> None:
    """Missing CA, unreadable or non-PEM files, half a client pair, unknown keys: a ConfigError naming the key."""
    ca, _, client, _ = pki
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello")
    paths = {"CA": str(ca.cert), "CLIENT": str(client.cert), "KEY": str(client.key), "NOT_PEM": str(not_pem)}
    if isinstance(tls, dict):
        tls = {k: paths.get(v, v) for k, v in tls.items()}
    with pytest.raises(ConfigError) as raised:
        parse_config({"endpoint": "x:1", "tls": tls})
    assert named_key in str(raised.value)


# === channel ===


def test_tls_server_verified_by_its_ca(pki) -> None:
    """With roomguard's CA, a TLS call gets its decision."""
    ca, server, _, _ = pki
    fake = tls_server(server, ca, require_client_cert=False)
    try:
        result = ask({"tls": {"ca_file": str(ca.cert)}}, f"localhost:{fake.port}")
        assert isinstance(result, pb.CheckMessageSendResponse)
    finally:
        fake.stop()


def test_tls_server_with_unknown_ca_is_refused(pki) -> None:
    """A server whose certificate does not chain to `tls.ca_file` gets no request: UNAVAILABLE."""
    ca, server, _, other_ca = pki
    fake = tls_server(server, ca, require_client_cert=False)
    try:
        result = ask({"tls": {"ca_file": str(other_ca.cert)}}, f"localhost:{fake.port}")
        assert isinstance(result, RoomguardUnavailableError)
        assert fake.service.requests == []
    finally:
        fake.stop()


def test_mutual_tls(pki) -> None:
    """A roomguard that demands a client certificate answers with `cert_file`/`key_file`, refuses without."""
    ca, server, client, _ = pki
    fake = tls_server(server, ca, require_client_cert=True)
    try:
        endpoint = f"127.0.0.1:{fake.port}"
        with_cert = {"ca_file": str(ca.cert), "cert_file": str(client.cert), "key_file": str(client.key)}
        assert isinstance(ask({"tls": with_cert}, endpoint), pb.CheckMessageSendResponse)
        assert isinstance(ask({"tls": {"ca_file": str(ca.cert)}}, endpoint), RoomguardUnavailableError)
    finally:
        fake.stop()


def test_server_name_override(pki) -> None:
    """`tls.server_name` is the name checked in roomguard's certificate instead of the endpoint's host."""
    ca, server, _, _ = pki
    fake = tls_server(server, ca, require_client_cert=False)
    try:
        endpoint = f"127.0.0.1:{fake.port}"
        good = ask({"tls": {"ca_file": str(ca.cert), "server_name": "localhost"}}, endpoint)
        assert isinstance(good, pb.CheckMessageSendResponse)
        wrong = ask({"tls": {"ca_file": str(ca.cert), "server_name": "roomguard.example"}}, endpoint)
        assert isinstance(wrong, RoomguardUnavailableError)
    finally:
        fake.stop()
