"""The module's on-reactor gRPC client (`h2client.py`, `balancer.py`) at the protocol's edges, against a scripted
HTTP/2 server (`tests/fake_h2_server.py`): what goes on the wire, many calls on one connection, deadlines, GOAWAY,
reset streams, HTTP errors, flow control, a connection dropped mid-call. (Against a real gRPC server:
`test_client.py`; against the real roomguard: the end-to-end suite.)"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest

from synapse_roomguard._proto.roomguard.v1 import policy_pb2 as pb
from synapse_roomguard.client import PolicyClient, RoomguardUnavailableError
from tests.fake_h2_server import Action, FakeH2Server, Received
from tests.reactor_thread import ReactorThread
from tests.unit.test_client import message_request

REACTOR = ReactorThread()


@pytest.fixture
def server() -> Iterator[FakeH2Server]:
    fake = FakeH2Server()
    REACTOR.run(fake.listen, REACTOR.reactor)
    yield fake
    REACTOR.run(fake.stop)


_clients: list[PolicyClient] = []


def client_for(server: FakeH2Server, timeout_s: float = 5.0, auth_token: str | None = None) -> PolicyClient:
    client = PolicyClient(
        server.endpoint,
        timeout_s=timeout_s,
        reconnect_backoff_max_s=0.2,
        reactor=REACTOR.reactor,
        auth_token=auth_token,
    )
    _clients.append(client)
    return client


@pytest.fixture(autouse=True)
def close_clients() -> Iterator[None]:
    yield
    while _clients:
        REACTOR.run(_clients.pop().close)


def ask(client: PolicyClient, request: pb.CheckMessageSendRequest | None = None) -> object:
    """The outcome of one `CheckMessageSend`: the response, or the `RoomguardUnavailableError`."""
    return REACTOR.wait(client.check_message_send, request or message_request())[0]


def status_of(outcome: object) -> str:
    assert isinstance(outcome, RoomguardUnavailableError), outcome
    return outcome.status


def script(*actions: Action):
    """Answer the n-th request with the n-th action, and every later one with ANSWER."""
    remaining = list(actions)
    return lambda _request: remaining.pop(0) if remaining else Action.ANSWER


def test_a_call_is_grpc_over_http2(server: FakeH2Server) -> None:
    """A unary call is a POST to `/roomguard.v1.PolicyService/<rpc>` with gRPC's headers, the endpoint as
    `:authority`, the deadline as `grpc-timeout` (milliseconds, at most `timeout_ms`), the token as `authorization`,
    and the request behind gRPC's 5-byte prefix (not compressed, length)."""
    client = client_for(server, timeout_s=0.2, auth_token="s3cr3t")
    request = message_request()
    assert isinstance(ask(client, request), pb.CheckMessageSendResponse)
    (seen,) = server.requests
    headers = seen.headers
    assert headers[":method"] == "POST"
    assert headers[":path"] == "/roomguard.v1.PolicyService/CheckMessageSend"
    assert headers[":scheme"] == "http"
    assert headers[":authority"] == server.endpoint
    assert headers["content-type"] == "application/grpc"
    assert headers["te"] == "trailers"
    assert headers["authorization"] == "Bearer s3cr3t"
    assert headers["grpc-timeout"].endswith("m") and 0 < int(headers["grpc-timeout"][:-1]) <= 200
    message = request.SerializeToString()
    assert bytes(seen.body) == struct.pack(">BI", 0, len(message)) + message


def test_no_token_sends_no_authorization(server: FakeH2Server) -> None:
    """Without a token there is no `authorization` header at all."""
    ask(client_for(server))
    assert "authorization" not in server.requests[0].headers


def test_calls_in_flight_share_one_connection(server: FakeH2Server) -> None:
    """Twenty calls made at once go out together as twenty streams of one connection, and are all answered."""
    client = client_for(server)
    ask(client)  # connected
    pending = [REACTOR.start(client.check_message_send, message_request()) for _ in range(20)]
    outcomes = [REACTOR.wait(p)[0] for p in pending]
    assert all(isinstance(o, pb.CheckMessageSendResponse) for o in outcomes)
    assert server.connections == 1
    assert len({r.stream_id for r in server.requests}) == 21


def test_deadline_ends_the_call_and_resets_its_stream(server: FakeH2Server) -> None:
    """roomguard never answers: at the deadline the call fails DEADLINE_EXCEEDED and its stream is reset
    (RST_STREAM), so roomguard stops working for nobody; the connection serves the next call."""
    server.script = script(Action.HANG)
    client = client_for(server, timeout_s=0.1)
    assert status_of(ask(client)) == "DEADLINE_EXCEEDED"
    assert isinstance(ask(client), pb.CheckMessageSendResponse)  # after the reset, in order, on the same connection
    assert server.resets == [(1, server.requests[0].stream_id)]
    assert server.connections == 1


def test_goaway_before_the_call_sends_it_again_on_a_new_connection(server: FakeH2Server) -> None:
    """GOAWAY naming an earlier stream as the last processed: roomguard never saw the call, so it goes out once more
    on a new connection and is answered; nothing fails."""
    server.script = script(Action.ANSWER, Action.GOAWAY_BEFORE)
    client = client_for(server)
    ask(client)
    assert isinstance(ask(client), pb.CheckMessageSendResponse)
    assert [r.connection for r in server.requests] == [1, 1, 2]


def test_goaway_after_the_call_finishes_it_and_moves_on(server: FakeH2Server) -> None:
    """GOAWAY naming the call's own stream: the call is answered on the old connection, the next one on a new."""
    server.script = script(Action.GOAWAY_AFTER)
    client = client_for(server)
    assert isinstance(ask(client), pb.CheckMessageSendResponse)
    assert isinstance(ask(client), pb.CheckMessageSendResponse)
    assert [r.connection for r in server.requests] == [1, 2]


def test_refused_stream_is_sent_again(server: FakeH2Server) -> None:
    """RST_STREAM REFUSED_STREAM means "not processed": the call is sent once more, and answered."""
    server.script = script(Action.REFUSE)
    assert isinstance(ask(client_for(server)), pb.CheckMessageSendResponse)
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    ("action", "status"),
    [
        (Action.STATUS, "RESOURCE_EXHAUSTED"),  # trailers-only answer carrying grpc-status 8
        (Action.RESET, "INTERNAL"),  # RST_STREAM INTERNAL_ERROR
        (Action.HTTP_503, "UNAVAILABLE"),  # HTTP status without gRPC status, mapped as gRPC's spec says
    ],
)
def test_answers_that_are_not_a_decision(server: FakeH2Server, action: Action, status: str) -> None:
    """Every way of not answering with a message is no decision, under the status name grpc would give it."""
    server.script = script(action)
    assert status_of(ask(client_for(server))) == status


def test_a_request_larger_than_the_window_waits_for_window_updates(server: FakeH2Server) -> None:
    """A request larger than the flow-control window the server grants (HTTP/2's default, 64 KiB) is sent in pieces
    as the window reopens, and arrives whole."""
    request = message_request()
    request.message.body = "x" * 200_000
    assert isinstance(ask(client_for(server), request), pb.CheckMessageSendResponse)
    assert len(server.requests[0].body) == 5 + len(request.SerializeToString())


def test_connection_dropped_mid_call_is_unavailable_at_once(server: FakeH2Server) -> None:
    """The connection drops while a call is in flight: the call fails UNAVAILABLE (not DEADLINE_EXCEEDED: it does
    not wait for its 5 s deadline), and the next call is answered on a new connection."""
    server.script = script(Action.DROP)
    client = client_for(server, timeout_s=5.0)
    assert status_of(ask(client)) == "UNAVAILABLE"
    assert isinstance(ask(client), pb.CheckMessageSendResponse)
    assert server.connections == 2


def test_requests_received_are_recorded_per_connection(server: FakeH2Server) -> None:
    """(The fake server's own bookkeeping, which the tests above rely on.)"""
    ask(client_for(server))
    assert server.requests == [Received(1, 1, server.requests[0].headers, server.requests[0].body)]
