"""End-to-end: the module's transport options against the real roomguard binary: mutual TLS, the caller token, the
Unix socket, and a token roomguard refuses.

One extra roomguard serves both transports at once: TCP with TLS, client certificates required (`--tls-client-ca`)
and a token (`--auth-token-file`), and a plaintext Unix socket (`--unix-socket`) where the token still applies. Two
extra Synapses talk to it (each Synapse start costs about 3 s, so there are only two):

* `tls_synapse`: `tls` (CA, client certificate and key) and `auth_token_file`, over TCP: a marked message is refused
  with roomguard's reasons, so the authenticated mutual-TLS path decides;
* `wrong_token_synapse`: `auth_token` with a token roomguard does not know, over the Unix socket: roomguard answers
  UNAUTHENTICATED (which also proves the Unix-socket channel reaches roomguard's services: without the module's
  `grpc.default_authority` the status would be INTERNAL), and each hook follows its failure mode.

The module's own client then gets a real decision over the Unix socket with the right token.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from synapse_roomguard._proto.roomguard.v1 import policy_pb2 as pb
from synapse_roomguard.client import PolicyClient, RoomguardUnavailableError
from synapse_roomguard.verdict import UNAVAILABLE_CODE

from ..tls_material import Pem, make_pki
from ..unit.test_client import ThreadHopReactor
from .conftest import EXTERNAL_USER, MODULE_ROOT, required_path
from .harness import SERVER_NAME, Roomguard, Synapse, copy_policies_with_users
from .test_scenarios import DECISION_ID, MARKED, PLAIN, REASON_CODES, assert_denied, forum

pytestmark = pytest.mark.e2e

TOKEN = "e2e-roomguard-token-5b1d0c"
#: Generous: the first call of each Synapse includes a TLS handshake with a debug roomguard; the deadline itself is
#: tested in test_scenarios.py.
TIMEOUT_MS = 2000


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Pem, Pem, Pem]:
    """(CA, server certificate for localhost / 127.0.0.1, client certificate)."""
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def secured_roomguard(pki: tuple[Pem, Pem, Pem], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Roomguard]:
    ca, server, client = pki
    binary = required_path("ROOMGUARD_BIN")
    policies = required_path("ROOMGUARD_POLICIES", MODULE_ROOT.parent / "policies")
    workdir = tmp_path_factory.mktemp("roomguard-secured")
    token_file = workdir / "token"
    token_file.write_text(f"{TOKEN}\n")
    token_file.chmod(0o600)
    roomguard = Roomguard(
        binary=binary,
        policies=copy_policies_with_users(policies, workdir / "policies", [f"{EXTERNAL_USER}, external"]),
        workdir=workdir,
        name="roomguard-secured",
        extra_args=[
            *("--tls-cert", str(server.cert), "--tls-key", str(server.key)),
            *("--tls-client-ca", str(ca.cert)),
            *("--auth-token-file", str(token_file)),
        ],
        unix_socket=workdir / "roomguard.sock",
        tls_root=ca.cert.read_bytes(),
        tls_client=(client.key.read_bytes(), client.cert.read_bytes()),
    )
    roomguard.start()
    try:
        yield roomguard
    finally:
        roomguard.stop()


def _synapse(name: str, module_config: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synapse]:
    homeserver = Synapse(workdir=tmp_path_factory.mktemp(name), module_config=module_config, name=name)
    homeserver.start()
    try:
        yield homeserver
    finally:
        homeserver.stop()


@pytest.fixture(scope="module")
def tls_synapse(
    secured_roomguard: Roomguard, pki: tuple[Pem, Pem, Pem], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Synapse]:
    ca, _, client = pki
    token_file = tmp_path_factory.mktemp("synapse-secrets") / "roomguard-token"
    token_file.write_text(f"{TOKEN}\n")
    config = {
        "endpoint": secured_roomguard.endpoint,
        "timeout_ms": TIMEOUT_MS,
        "tls": {"ca_file": str(ca.cert), "cert_file": str(client.cert), "key_file": str(client.key)},
        "auth_token_file": str(token_file),
    }
    yield from _synapse("synapse-tls", config, tmp_path_factory)


@pytest.fixture(scope="module")
def wrong_token_synapse(secured_roomguard: Roomguard, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synapse]:
    assert secured_roomguard.unix_socket is not None
    config = {
        "endpoint": f"unix:{secured_roomguard.unix_socket}",
        "timeout_ms": TIMEOUT_MS,
        "auth_token": "not-the-roomguard-token",
    }
    yield from _synapse("synapse-wrong-token", config, tmp_path_factory)


def _wait_for_log(synapse: Synapse, needle: str, timeout_s: float = 5.0) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        log = synapse.log_path.read_text(encoding="utf8")
        if needle in log or time.monotonic() > deadline:
            return log
        time.sleep(0.1)


def test_mutual_tls_with_token_refuses_a_marked_message(tls_synapse: Synapse, secured_roomguard: Roomguard) -> None:
    """Module with `tls` (CA + client certificate) and `auth_token_file` against roomguard requiring both: a marked
    message in a public forum is refused with roomguard's reasons, decided by that roomguard; a plain message and
    a publication of the forum go through."""
    alice = tls_synapse.register("alice")
    room = forum(alice)
    refused = alice.send_text(room, MARKED)
    assert_denied(refused, "CLASSIFIED_IN_UNENCRYPTED_ROOM", "CLASSIFIED_IN_PUBLIC_ROOM")
    assert alice.send_text(room, PLAIN).status == 200
    published = alice.set_directory_visibility(room, "public")
    assert published.status == 200, published.body
    # The refusal's decision id is in the decision log of the TLS + token roomguard.
    assert refused.body[DECISION_ID] in secured_roomguard.log_text()
    log = _wait_for_log(tls_synapse, "is reachable")
    assert "transport=mutual-tls token=yes" in log
    assert TOKEN not in log


def test_wrong_token_over_unix_socket_follows_failure_modes(wrong_token_synapse: Synapse) -> None:
    """A token roomguard refuses (over the Unix socket): UNAUTHENTICATED, so no decision: the message send fails open
    (200, even marked), the publication fails closed (403 ROOMGUARD_UNAVAILABLE), and the homeserver log says
    UNAUTHENTICATED at ERROR."""
    marie = wrong_token_synapse.register("marie")
    room = forum(marie)
    assert marie.send_text(room, MARKED).status == 200
    refused = marie.set_directory_visibility(room, "public")
    assert refused.status == 403, refused.body
    assert refused.body["errcode"] == "M_FORBIDDEN"
    assert refused.body[REASON_CODES] == [UNAVAILABLE_CODE]
    assert marie.directory_visibility(room) == "private"
    log = _wait_for_log(wrong_token_synapse, "refused (fail-closed)")
    errors = [line for line in log.splitlines() if " - ERROR - " in line and "UNAUTHENTICATED" in line]
    assert any("allowed (fail-open)" in line for line in errors), log[-3000:]
    assert any("refused (fail-closed)" in line for line in errors), log[-3000:]
    assert "not-the-roomguard-token" not in log
    assert MARKED not in log


def test_module_client_decides_over_unix_socket_with_token(secured_roomguard: Roomguard) -> None:
    """The module's client on `unix:` with the right token gets the real decision; without a token, UNAUTHENTICATED."""
    request = pb.CheckMessageSendRequest(
        request_id="e2e-unix",
        sender=pb.Subject(user_id=f"@alice:{SERVER_NAME}"),
        room=pb.Room(
            room_id=f"!forum:{SERVER_NAME}",
            join_rule=pb.JOIN_RULE_PUBLIC,
            history_visibility=pb.HISTORY_VISIBILITY_SHARED,
        ),
        message=pb.Message(event_type="m.room.message", msgtype="m.text", body=MARKED),
    )
    endpoint = f"unix:{secured_roomguard.unix_socket}"
    outcomes = []
    for token in (TOKEN, None):
        reactor = ThreadHopReactor()
        client = PolicyClient(
            endpoint, timeout_s=TIMEOUT_MS / 1000, reconnect_backoff_max_s=0.5, reactor=reactor, auth_token=token
        )
        try:
            outcomes.append(reactor.wait(client.check_message_send(request))[0])
        finally:
            client.close()
    decided, refused = outcomes
    assert isinstance(decided, pb.CheckMessageSendResponse), decided
    assert decided.decision.effect == pb.EFFECT_DENY
    assert [r.code for r in decided.decision.reasons] == ["CLASSIFIED_IN_UNENCRYPTED_ROOM", "CLASSIFIED_IN_PUBLIC_ROOM"]
    assert isinstance(refused, RoomguardUnavailableError) and refused.status == "UNAUTHENTICATED"
