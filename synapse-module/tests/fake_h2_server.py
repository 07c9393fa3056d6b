"""A scripted HTTP/2 server on the test reactor, to drive the module's gRPC client into the cases a real roomguard
seldom shows on demand: GOAWAY before or after a call, streams reset, an HTTP error, a call never answered, a
request larger than the flow-control window.

It speaks just enough gRPC: each request is recorded (headers, body, connection number), then `script(request)`
says what to do with it (see `Action`). The client's unit tests against a real gRPC server are in `test_client.py`;
this server is for the protocol's edges.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
from twisted.internet.protocol import Factory, Protocol

from synapse_roomguard._proto.roomguard.v1 import policy_pb2 as pb


class Action(enum.Enum):
    #: 200, one `CheckMessageSendResponse` allowing, `grpc-status: 0`.
    ANSWER = "answer"
    #: Trailers-only answer with `grpc-status: 8` (RESOURCE_EXHAUSTED).
    STATUS = "status"
    #: Never answer (the client's deadline must end it, with RST_STREAM).
    HANG = "hang"
    #: GOAWAY naming the previous stream as the last one processed: this call was never seen.
    GOAWAY_BEFORE = "goaway_before"
    #: Answer, then GOAWAY naming this stream as the last one: the call succeeds, the connection is done.
    GOAWAY_AFTER = "goaway_after"
    #: RST_STREAM REFUSED_STREAM: not processed, safe to send elsewhere.
    REFUSE = "refuse"
    #: RST_STREAM INTERNAL_ERROR.
    RESET = "reset"
    #: HTTP 503 without any gRPC status.
    HTTP_503 = "http_503"
    #: Drop the connection (TCP reset), the call unanswered.
    DROP = "drop"


@dataclass
class Received:
    """One request as the server saw it."""

    connection: int
    stream_id: int
    headers: dict[str, str]
    body: bytearray = field(default_factory=bytearray)


def allow_answer() -> bytes:
    message = pb.CheckMessageSendResponse(
        decision=pb.Decision(effect=pb.EFFECT_ALLOW, reasons=[pb.Reason(code="ALLOWED")], decision_id="fake-h2")
    ).SerializeToString()
    return struct.pack(">BI", 0, len(message)) + message


class FakeH2Server:
    """Listens on 127.0.0.1 (port picked by the kernel) once `listen` runs on the reactor thread."""

    def __init__(self, script: Callable[[Received], Action] = lambda _r: Action.ANSWER) -> None:
        self.script = script
        self.requests: list[Received] = []
        #: Streams the client reset, by (connection, stream id).
        self.resets: list[tuple[int, int]] = []
        self.connections = 0
        self.port = 0
        self._listening: Any = None

    def listen(self, reactor: Any) -> int:
        """On the reactor thread: start listening; the port."""
        self._listening = reactor.listenTCP(
            0, Factory.forProtocol(lambda: _ServerProtocol(self)), interface="127.0.0.1"
        )
        self.port = self._listening.getHost().port
        return self.port

    def stop(self) -> Any:
        """On the reactor thread: stop listening (open connections stay)."""
        return self._listening.stopListening() if self._listening is not None else None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"


class _ServerProtocol(Protocol):
    def __init__(self, server: FakeH2Server) -> None:
        self.server = server
        server.connections += 1
        self.number = server.connections
        self.h2 = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False))
        self.pending: dict[int, Received] = {}
        self.last_stream = 0

    def connectionMade(self) -> None:  # noqa: N802 - Twisted's name
        # HTTP/2's default windows (64 KiB), which the server reopens (WINDOW_UPDATE) as it reads.
        self.h2.initiate_connection()
        self.flush()

    def dataReceived(self, data: bytes) -> None:  # noqa: N802 - Twisted's name
        for event in self.h2.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                headers = {
                    k.decode() if isinstance(k, bytes) else k: v.decode() if isinstance(v, bytes) else v
                    for k, v in event.headers
                }
                self.pending[event.stream_id] = Received(self.number, event.stream_id, headers)
            elif isinstance(event, h2.events.DataReceived):
                self.pending[event.stream_id].body += event.data
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                request = self.pending.pop(event.stream_id)
                self.server.requests.append(request)
                self.act(request, self.server.script(request))
            elif isinstance(event, h2.events.StreamReset):
                self.server.resets.append((self.number, event.stream_id))
        self.flush()

    def act(self, request: Received, action: Action) -> None:
        stream = request.stream_id
        if action is Action.ANSWER:
            self.answer(stream)
        elif action is Action.STATUS:
            self.h2.send_headers(
                stream,
                [
                    (":status", "200"),
                    ("content-type", "application/grpc"),
                    ("grpc-status", "8"),
                    ("grpc-message", "shed"),
                ],
                end_stream=True,
            )
        elif action is Action.GOAWAY_BEFORE:
            self.h2.close_connection(last_stream_id=self.last_stream)
        elif action is Action.GOAWAY_AFTER:
            self.answer(stream)
            self.h2.close_connection(last_stream_id=stream)
        elif action is Action.REFUSE:
            self.h2.reset_stream(stream, h2.errors.ErrorCodes.REFUSED_STREAM)
        elif action is Action.RESET:
            self.h2.reset_stream(stream, h2.errors.ErrorCodes.INTERNAL_ERROR)
        elif action is Action.HTTP_503:
            self.h2.send_headers(stream, [(":status", "503")], end_stream=True)
        elif action is Action.DROP:
            self.transport.abortConnection()  # type: ignore[union-attr]
        self.last_stream = max(self.last_stream, stream)

    def answer(self, stream: int) -> None:
        self.h2.send_headers(stream, [(":status", "200"), ("content-type", "application/grpc")])
        self.h2.send_data(stream, allow_answer())
        self.h2.send_headers(stream, [("grpc-status", "0")], end_stream=True)

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data:
            self.transport.write(data)  # type: ignore[union-attr]
