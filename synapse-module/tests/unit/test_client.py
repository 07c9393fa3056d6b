"""The gRPC client against an in-process server: answers, deadlines, roomguard down, roomguard back."""

from __future__ import annotations

import queue
import socket
import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from twisted.internet import defer, task

from synapse_roomguard._proto.roomguard.v1 import policy_pb2 as pb
from synapse_roomguard.client import (
    HARD_TIMEOUT_GRACE_S,
    UNIX_SOCKET_AUTHORITY,
    PolicyClient,
    RoomguardUnavailableError,
)
from tests.fake_roomguard import FakeRoomguard, allow, deny


class ThreadHopReactor:
    """Enough of a reactor for the client: `callFromThread` queues, `callLater` follows the wall clock."""

    def __init__(self) -> None:
        self.clock = task.Clock()
        self.calls: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...]]] = queue.Queue()
        self._started = time.monotonic()

    def callFromThread(self, f: Callable[..., Any], *args: Any) -> None:  # noqa: N802 - Twisted's name
        self.calls.put((f, args))

    def callLater(self, delay: float, f: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:  # noqa: N802
        return self.clock.callLater(delay, f, *args, **kwargs)

    def wait(self, d: defer.Deferred, limit_s: float = 5.0) -> tuple[Any, float]:
        """Run the queued calls and the clock until `d` fires; return (result or failure value, seconds waited)."""
        started = time.monotonic()
        outcome: list[Any] = []
        d.addBoth(outcome.append)
        while not outcome:
            if time.monotonic() - started > limit_s:
                raise AssertionError("deferred did not fire")
            try:
                f, args = self.calls.get(timeout=0.005)
                f(*args)
            except queue.Empty:
                pass
            self.clock.advance(time.monotonic() - self._started - self.clock.seconds())
        result = outcome[0]
        return (result.value if hasattr(result, "value") else result), time.monotonic() - started


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def message_request() -> pb.CheckMessageSendRequest:
    return pb.CheckMessageSendRequest(
        sender=pb.Subject(user_id="@a:s"),
        room=pb.Room(room_id="!r:s", join_rule=pb.JOIN_RULE_PUBLIC, history_visibility=pb.HISTORY_VISIBILITY_SHARED),
        message=pb.Message(event_type="m.room.message", body="x"),
    )


@pytest.fixture
def server():
    fake = FakeRoomguard().start()
    yield fake
    fake.stop()


_clients: list[PolicyClient] = []


def make_client(
    endpoint: str,
    reactor: ThreadHopReactor,
    timeout_s: float = 0.2,
    threads: int = 4,
    auth_token: str | None = None,
) -> PolicyClient:
    client = PolicyClient(
        endpoint,
        timeout_s=timeout_s,
        reconnect_backoff_max_s=0.5,
        reactor=reactor,
        max_concurrent_calls=threads,
        auth_token=auth_token,
    )
    _clients.append(client)
    return client


@pytest.fixture(autouse=True)
def close_clients():
    """Every client's channel and thread pool is closed, even when a test fails."""
    yield
    while _clients:
        _clients.pop().close()


def test_decision_is_delivered_on_the_reactor(server: FakeRoomguard) -> None:
    """A decision comes back through `callFromThread`, untouched."""
    reactor = ThreadHopReactor()
    server.service.decide = lambda _r: deny("CLASSIFIED_IN_PUBLIC_ROOM")
    client = make_client(server.endpoint, reactor)
    response, _ = reactor.wait(client.check_message_send(message_request()))
    assert response.decision.reasons[0].code == "CLASSIFIED_IN_PUBLIC_ROOM"
    publish, _ = reactor.wait(client.check_room_publish(pb.CheckRoomPublishRequest()))
    assert publish.decision.effect == pb.EFFECT_DENY


def test_join_and_state_change_rpcs_reach_roomguard(server: FakeRoomguard) -> None:
    """`CheckRoomJoin` and `CheckRoomStateChange` go out as their own rpcs, request untouched, decision back."""
    reactor = ThreadHopReactor()
    server.service.decide = lambda r: deny(type(r).__name__)
    client = make_client(server.endpoint, reactor)
    join = pb.CheckRoomJoinRequest(request_id="j", user=pb.Subject(user_id="@a:s"), invited=True)
    response, _ = reactor.wait(client.check_room_join(join))
    assert isinstance(response, pb.CheckRoomJoinResponse)
    assert response.decision.reasons[0].code == "CheckRoomJoinRequest"
    change = pb.CheckRoomStateChangeRequest(request_id="s", event_type="m.room.join_rules")
    response, _ = reactor.wait(client.check_room_state_change(change))
    assert isinstance(response, pb.CheckRoomStateChangeResponse)
    assert response.decision.reasons[0].code == "CheckRoomStateChangeRequest"
    assert server.service.requests == [join, change]


def test_slow_roomguard_is_abandoned_at_the_deadline(server: FakeRoomguard) -> None:
    """roomguard slower than `timeout_ms`: the call fails with DEADLINE_EXCEEDED at about the deadline, not later."""
    reactor = ThreadHopReactor()
    server.service.delay_s = 2.0
    client = make_client(server.endpoint, reactor, timeout_s=0.2)
    error, waited = reactor.wait(client.check_message_send(message_request()))
    assert isinstance(error, RoomguardUnavailableError)
    assert error.status in ("DEADLINE_EXCEEDED", "TIMEOUT")
    assert waited < 0.2 + HARD_TIMEOUT_GRACE_S + 0.1


def test_unreachable_roomguard_fails_fast() -> None:
    """Nothing listening: UNAVAILABLE well before the deadline (calls do not wait for a connection)."""
    reactor = ThreadHopReactor()
    client = make_client(f"127.0.0.1:{free_port()}", reactor, timeout_s=2.0)
    error, waited = reactor.wait(client.check_message_send(message_request()))
    assert isinstance(error, RoomguardUnavailableError)
    assert error.status == "UNAVAILABLE"
    assert waited < 1.0


def test_calls_queued_past_their_deadline_are_not_sent(server: FakeRoomguard) -> None:
    """One thread, roomguard slow: the calls queued behind give up at their own deadline and never reach roomguard."""
    reactor = ThreadHopReactor()
    client = make_client(server.endpoint, reactor, timeout_s=0.2, threads=1)
    reactor.wait(client.check_message_send(message_request()))  # connected: the next call occupies the thread
    server.service.delay_s = 0.5
    calls = [client.check_message_send(message_request()) for _ in range(3)]
    started = time.monotonic()
    statuses = []
    for call in calls:
        error, _ = reactor.wait(call)
        assert isinstance(error, RoomguardUnavailableError)
        statuses.append(error.status)
    assert time.monotonic() - started < 0.2 + HARD_TIMEOUT_GRACE_S + 0.1
    assert statuses == ["DEADLINE_EXCEEDED", "QUEUE_TIMEOUT", "QUEUE_TIMEOUT"]
    time.sleep(0.6)  # let the one slow call that was sent finish on the server
    assert len(server.service.requests) == 2  # the warm-up and the first slow call


def test_same_channel_reconnects_after_restart() -> None:
    """roomguard stopped then started on the same port: the same client gets decisions again within ~1 s."""
    reactor = ThreadHopReactor()
    port = free_port()
    first = FakeRoomguard(port).start()
    client = make_client(first.endpoint, reactor)
    response, _ = reactor.wait(client.check_message_send(message_request()))
    assert response.decision.effect == pb.EFFECT_ALLOW
    first.stop()
    error, _ = reactor.wait(client.check_message_send(message_request()))
    assert isinstance(error, RoomguardUnavailableError)

    second = FakeRoomguard(port).start()
    second.service.decide = lambda _r: allow()
    try:
        deadline = time.monotonic() + 3
        while True:
            result, _ = reactor.wait(client.check_message_send(message_request()))
            if not isinstance(result, RoomguardUnavailableError) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert isinstance(result, pb.CheckMessageSendResponse), result
    finally:
        second.stop()


# === token, status codes, Unix socket ===


def test_token_is_sent_as_bearer_metadata_on_every_call(server: FakeRoomguard) -> None:
    """With a token, every call (both rpcs) carries `authorization: Bearer <token>`, exactly."""
    reactor = ThreadHopReactor()
    client = make_client(server.endpoint, reactor, auth_token="s3cr3t-token")
    reactor.wait(client.check_message_send(message_request()))
    reactor.wait(client.check_room_publish(pb.CheckRoomPublishRequest()))
    assert [m.get("authorization") for m in server.service.metadata] == ["Bearer s3cr3t-token"] * 2


def test_no_token_sends_no_authorization(server: FakeRoomguard) -> None:
    """Without a token, no `authorization` metadata at all (not an empty one)."""
    reactor = ThreadHopReactor()
    client = make_client(server.endpoint, reactor)
    reactor.wait(client.check_message_send(message_request()))
    assert "authorization" not in server.service.metadata[0]


@pytest.mark.parametrize(
    ("code", "misconfiguration"),
    [
        (grpc.StatusCode.RESOURCE_EXHAUSTED, False),  # roomguard shed the call at its concurrency limit
        (grpc.StatusCode.DEADLINE_EXCEEDED, False),  # roomguard's own request timeout
        (grpc.StatusCode.UNAUTHENTICATED, True),  # wrong or missing token
        (grpc.StatusCode.OUT_OF_RANGE, False),  # request over roomguard's max_request_bytes
    ],
)
def test_roomguard_status_codes_are_no_decision(
    server: FakeRoomguard, code: grpc.StatusCode, misconfiguration: bool
) -> None:
    """roomguard's refusals to decide arrive as RoomguardUnavailableError with the status name and a hint; only
    UNAUTHENTICATED is a misconfiguration (no retry helps)."""
    reactor = ThreadHopReactor()
    server.service.abort_code = code
    client = make_client(server.endpoint, reactor, timeout_s=2.0)
    error, waited = reactor.wait(client.check_message_send(message_request()))
    assert isinstance(error, RoomguardUnavailableError)
    assert error.status == code.name
    assert error.misconfiguration is misconfiguration
    assert error.hint != "gRPC error status instead of a decision"
    assert waited < 1.0


def test_unix_socket_endpoint_gets_a_decision(tmp_path) -> None:
    """`unix:/path` works, with `grpc.default_authority = localhost` (roomguard refuses the socket path as
    `:authority`; the end-to-end suite checks that against the real binary) and the token."""
    fake = FakeRoomguard(unix_socket=str(tmp_path / "rg.sock")).start()
    try:
        reactor = ThreadHopReactor()
        client = make_client(fake.endpoint, reactor, timeout_s=2.0, auth_token="tok")
        assert ("grpc.default_authority", UNIX_SOCKET_AUTHORITY) in client._channel_options()
        response, _ = reactor.wait(client.check_message_send(message_request()))
        assert isinstance(response, pb.CheckMessageSendResponse)
        assert fake.service.metadata[0]["authorization"] == "Bearer tok"
    finally:
        fake.stop()


def test_tcp_endpoint_keeps_grpc_authority() -> None:
    """A TCP endpoint's `:authority` is left to grpc (the dialled host, as TLS name checks expect)."""
    client = make_client("127.0.0.1:50051", ThreadHopReactor())
    assert not any(name == "grpc.default_authority" for name, _ in client._channel_options())


def test_a_name_endpoint_gets_a_fresh_channel_without_losing_calls(server: FakeRoomguard) -> None:
    """A name endpoint (`localhost:port`) is resolved again by a fresh channel every `dns_refresh_s`; a call in
    flight on the old channel when the fresh one takes over is still answered (the old one is closed only after the
    longest deadline), and later calls go through the fresh one."""
    reactor = ThreadHopReactor()
    client = PolicyClient(
        f"localhost:{server.port}", timeout_s=2.0, reconnect_backoff_max_s=0.5, reactor=reactor, dns_refresh_s=0.2
    )
    _clients.append(client)
    reactor.wait(client.check_message_send(message_request()))
    first = client._channel
    server.service.delay_s = 0.5  # the refresh (0.2 s) and the swap (0.1 s later) happen while this call waits
    response, _ = reactor.wait(client.check_message_send(message_request()))
    assert isinstance(response, pb.CheckMessageSendResponse), response
    assert client._channel is not first
    server.service.delay_s = 0.0
    again, _ = reactor.wait(client.check_message_send(message_request()))
    assert isinstance(again, pb.CheckMessageSendResponse), again


def test_an_address_endpoint_keeps_its_channel(server: FakeRoomguard) -> None:
    """An IP address (or a Unix socket) cannot resolve to anything else: no fresh channel is ever opened."""
    reactor = ThreadHopReactor()
    client = PolicyClient(
        server.endpoint, timeout_s=2.0, reconnect_backoff_max_s=0.5, reactor=reactor, dns_refresh_s=0.1
    )
    _clients.append(client)
    reactor.wait(client.check_message_send(message_request()))
    first = client._channel
    server.service.delay_s = 0.3
    reactor.wait(client.check_message_send(message_request()))
    assert client._channel is first
