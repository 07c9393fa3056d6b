"""One HTTP/2 connection to one roomguard, carrying unary gRPC calls, on the Twisted reactor itself.

Why not grpcio here: a grpcio call from Twisted costs thread wake-ups (a pool thread, grpc's poller thread, back to the
reactor), each 0.1 to 0.3 ms on a busy machine, several times roomguard's own work (README, "Measured"). This
protocol writes the request and reads the answer on the reactor thread, in the same `dataReceived` that Twisted calls
for any other socket: no thread, no hand-over.

A call is gRPC over HTTP/2 as the spec says ("gRPC over HTTP2", PROTOCOL-HTTP2.md): a `POST` to
`/<package>.<Service>/<Method>` with `content-type: application/grpc`, `te: trailers`, `grpc-timeout` (roomguard
stops working on a call whose caller gave up) and the caller's metadata (`authorization: Bearer <token>`, sent
never-indexed so that HPACK keeps it out of its tables); the body is the message behind a 5-byte prefix (not
compressed, length); the answer is one such message, then trailers with `grpc-status` and `grpc-message`, or a
"trailers-only" answer for an error. Many calls share the connection as concurrent streams.

What can go wrong and what the caller sees (`GrpcCallError.status`, the names grpc uses):

* the deadline passes: the stream is reset (`RST_STREAM CANCEL`, roomguard stops) and the call fails
  `DEADLINE_EXCEEDED`;
* roomguard answers a status: that status (`UNAUTHENTICATED`, `RESOURCE_EXHAUSTED`, ...);
* roomguard resets the stream: `REFUSED_STREAM` is `UNAVAILABLE` (never processed), any other code `INTERNAL`;
* `GOAWAY`: calls roomguard says it never saw fail `UNAVAILABLE` with `retryable` set; the others finish; no new call
  is started on the connection (the owner is told at once, `on_draining`, to open another);
* the connection is lost: every call on it fails `UNAVAILABLE`;
* an HTTP status other than 200 or a body that is not one gRPC message: the status grpc maps it to.

Request bodies larger than the peer's flow-control window wait for `WINDOW_UPDATE`s; received data is acknowledged at
once (the answers are small and read whole). Keepalive: while calls are in flight, a `PING` every `KEEPALIVE_S`;
no acknowledgement within `KEEPALIVE_TIMEOUT_S` drops the connection (a silently dead peer).
"""

from __future__ import annotations

import logging
import struct
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
from hpack import HeaderTuple, NeverIndexedHeaderTuple
from twisted.internet import defer
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure

logger = logging.getLogger(__name__)

#: gRPC status codes by number (the spec's table): roomguard's answers and our own failures use these names.
STATUS_NAMES = (
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
)
#: An HTTP status other than 200 as grpc reads it (the spec's "HTTP to gRPC Status Code Mapping").
HTTP_STATUS_TO_GRPC = {400: "INTERNAL", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "UNIMPLEMENTED"}
HTTP_STATUS_TO_GRPC.update(dict.fromkeys((429, 502, 503, 504), "UNAVAILABLE"))

#: Our receive window, per stream and for the connection: answers are a few hundred bytes, this is never the limit.
RECEIVE_WINDOW = 1 << 20
#: While calls are in flight, a PING this often; no acknowledgement within the timeout drops the connection.
KEEPALIVE_S = 60.0
KEEPALIVE_TIMEOUT_S = 5.0
#: Largest answer accepted (roomguard's answers are a few KiB at most).
MAX_RESPONSE_BYTES = 4 << 20

_PREFIX = struct.Struct(">BI")


class Timer(typing.Protocol):
    """What `reactor.callLater` returns (Twisted's `IDelayedCall`, as a structural type mypy can check)."""

    def active(self) -> bool: ...

    def cancel(self) -> None: ...


class GrpcCallError(Exception):
    """A call ended without an answer message: `status` is the gRPC status name (never quotes the request)."""

    def __init__(self, status: str, *, retryable: bool = False) -> None:
        super().__init__(status)
        self.status = status
        #: True when roomguard never saw the call (GOAWAY, REFUSED_STREAM): it can go to another connection.
        self.retryable = retryable


def grpc_frame(message: bytes) -> bytes:
    """`message` as the body of a gRPC request: not compressed (0), its length, itself."""
    return _PREFIX.pack(0, len(message)) + message


@dataclass
class _Call:
    result: defer.Deferred[bytes]
    #: Request bytes not yet sent (waiting for flow-control window), and whether END_STREAM is still to send.
    pending: bytes
    deadline: Timer | None = None
    http_status: int | None = None
    body: bytearray = field(default_factory=bytearray)
    grpc_status: str | None = None


class H2ClientProtocol(Protocol):
    """An HTTP/2 client connection for unary gRPC calls (`call`), owned by a `Subchannel` (see `balancer.py`)."""

    def __init__(
        self,
        *,
        reactor: Any,
        authority: str,
        scheme: str,
        metadata: Sequence[tuple[str, str]] = (),
        on_draining: Callable[[H2ClientProtocol], None] = lambda _p: None,
        on_lost: Callable[[H2ClientProtocol], None] = lambda _p: None,
    ) -> None:
        self._reactor = reactor
        self._authority = authority
        self._scheme = scheme
        self._metadata = [NeverIndexedHeaderTuple(k, v) for k, v in metadata]
        self._on_draining = on_draining
        self._on_lost = on_lost
        self._h2 = h2.connection.H2Connection(
            config=h2.config.H2Configuration(
                client_side=True,
                header_encoding=None,
                validate_outbound_headers=False,
                normalize_outbound_headers=False,
                validate_inbound_headers=False,
                normalize_inbound_headers=False,
            )
        )
        self._calls: dict[int, _Call] = {}
        self._connected = False
        #: No new call is started: GOAWAY received, `close()` called or the connection lost.
        self.draining = False
        #: Whether the peer ever sent anything (its SETTINGS): a connection lost before that is a failed attempt
        #: (TLS handshake refused, not an HTTP/2 server), retried after a backoff, not at once.
        self.received_any = False
        self._keepalive: Timer | None = None
        self._ping_timeout: Timer | None = None

    # === state ===

    @property
    def in_flight(self) -> int:
        return len(self._calls)

    @property
    def usable(self) -> bool:
        """Whether a new call may start here now (connected, not draining, under the peer's stream limit)."""
        return (
            self._connected
            and not self.draining
            and self._h2.open_outbound_streams < self._h2.remote_settings.max_concurrent_streams
        )

    # === Twisted ===

    def connectionMade(self) -> None:  # noqa: N802 - Twisted's name
        set_no_delay = getattr(self.transport, "setTcpNoDelay", None)
        if set_no_delay is not None:
            set_no_delay(True)  # a request is one small write: never wait for Nagle
        self._h2.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: RECEIVE_WINDOW,
            },
        )
        self._h2.initiate_connection()
        self._h2.increment_flow_control_window(RECEIVE_WINDOW - 65_535)  # the connection's window too
        self._connected = True
        self._flush()

    def dataReceived(self, data: bytes) -> None:  # noqa: N802 - Twisted's name
        self.received_any = True
        try:
            events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError as err:
            logger.warning("roomguard connection to %s: HTTP/2 protocol error %s", self._authority, type(err).__name__)
            self._flush()
            self._stop_new_calls()
            self._abort()
            return
        for event in events:
            self._handle(event)
        self._flush()

    def connectionLost(self, reason: Failure = Failure(ConnectionError())) -> None:  # noqa: N802, B008
        self._connected = False
        self.draining = True
        for timer in (self._keepalive, self._ping_timeout):
            if timer is not None and timer.active():
                timer.cancel()
        calls, self._calls = self._calls, {}
        for call in calls.values():
            self._fail(call, GrpcCallError("UNAVAILABLE"))
        self._on_lost(self)

    # === calls ===

    def call(self, path: str, message: bytes, timeout_s: float) -> defer.Deferred[bytes]:
        """Send `message` to the method at `path` (`/roomguard.v1.PolicyService/CheckMessageSend`); the Deferred fires
        with the answer message's bytes, or fails with `GrpcCallError`, by `timeout_s` at the latest."""
        if not self.usable:
            return defer.fail(GrpcCallError("UNAVAILABLE", retryable=True))
        stream_id = self._h2.get_next_available_stream_id()
        headers = [
            HeaderTuple(":method", "POST"),
            HeaderTuple(":scheme", self._scheme),
            HeaderTuple(":path", path),
            HeaderTuple(":authority", self._authority),
            HeaderTuple("te", "trailers"),
            HeaderTuple("content-type", "application/grpc"),
            HeaderTuple("user-agent", "synapse-roomguard-h2"),
            # Whole milliseconds, rounded up (a 0 would be an already-expired deadline), at most 8 digits.
            HeaderTuple("grpc-timeout", f"{min(99_999_999, max(1, int(timeout_s * 1000 + 0.999)))}m"),
            *self._metadata,
        ]
        call = _Call(result=defer.Deferred(), pending=grpc_frame(message))
        try:
            self._h2.send_headers(stream_id, headers)
        except h2.exceptions.ProtocolError:  # the connection closed under us (GOAWAY being processed)
            self._stop_new_calls()
            return defer.fail(GrpcCallError("UNAVAILABLE", retryable=True))
        self._calls[stream_id] = call
        call.deadline = self._reactor.callLater(timeout_s, self._expire, stream_id)
        self._send_pending(stream_id, call)
        self._flush()
        if self._keepalive is None or not self._keepalive.active():
            self._keepalive = self._reactor.callLater(KEEPALIVE_S, self._ping)
        return call.result

    def close(self) -> None:
        """No new calls; the connection closes once the calls in flight are done (at once when there are none)."""
        self._stop_new_calls()
        self._close_if_idle()

    def _stop_new_calls(self) -> None:
        if not self.draining:
            self.draining = True
            self._on_draining(self)

    # === internals ===

    def _send_pending(self, stream_id: int, call: _Call) -> None:
        while call.pending:
            window = min(self._h2.local_flow_control_window(stream_id), self._h2.max_outbound_frame_size)
            if window <= 0:
                return  # the rest goes when a WINDOW_UPDATE comes
            chunk, call.pending = call.pending[:window], call.pending[window:]
            self._h2.send_data(stream_id, chunk, end_stream=not call.pending)

    def _handle(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.ResponseReceived):
            call = self._calls.get(event.stream_id)
            if call is not None:
                call.http_status, call.grpc_status = _response_headers(event.headers)
        elif isinstance(event, h2.events.DataReceived):
            self._h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            call = self._calls.get(event.stream_id)
            if call is not None:
                call.body += event.data
                if len(call.body) > MAX_RESPONSE_BYTES:
                    self._h2.reset_stream(event.stream_id, h2.errors.ErrorCodes.CANCEL)
                    self._finish(event.stream_id, GrpcCallError("RESOURCE_EXHAUSTED"))
        elif isinstance(event, h2.events.TrailersReceived):
            call = self._calls.get(event.stream_id)
            if call is not None:
                _, call.grpc_status = _response_headers(event.headers)
        elif isinstance(event, h2.events.StreamEnded):
            call = self._calls.get(event.stream_id)
            if call is not None:
                self._finish(event.stream_id, _outcome(call))
        elif isinstance(event, h2.events.StreamReset):
            refused = event.error_code == h2.errors.ErrorCodes.REFUSED_STREAM
            self._finish(
                event.stream_id,
                GrpcCallError("UNAVAILABLE", retryable=True) if refused else GrpcCallError("INTERNAL"),
            )
        elif isinstance(event, h2.events.WindowUpdated):
            for stream_id, call in list(self._calls.items()):
                if call.pending:
                    self._send_pending(stream_id, call)
        elif isinstance(event, h2.events.PingAckReceived):
            if self._ping_timeout is not None and self._ping_timeout.active():
                self._ping_timeout.cancel()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self._goaway(event.last_stream_id)

    def _goaway(self, last_stream_id: int | None) -> None:
        self._stop_new_calls()
        last = last_stream_id if last_stream_id is not None else 0
        for stream_id in [s for s in self._calls if s > last]:
            self._finish(stream_id, GrpcCallError("UNAVAILABLE", retryable=True))
        self._close_if_idle()

    def _expire(self, stream_id: int) -> None:
        call = self._calls.get(stream_id)
        if call is None:
            return
        call.deadline = None
        try:
            self._h2.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
        except h2.exceptions.StreamClosedError:
            pass
        self._finish(stream_id, GrpcCallError("DEADLINE_EXCEEDED"))
        self._flush()

    def _finish(self, stream_id: int, outcome: bytes | GrpcCallError) -> None:
        call = self._calls.pop(stream_id, None)
        if call is None:
            return
        if call.deadline is not None and call.deadline.active():
            call.deadline.cancel()
        if isinstance(outcome, GrpcCallError):
            self._fail(call, outcome)
        else:
            call.result.callback(outcome)
        self._close_if_idle()

    @staticmethod
    def _fail(call: _Call, error: GrpcCallError) -> None:
        if call.deadline is not None and call.deadline.active():
            call.deadline.cancel()
        call.result.errback(error)

    def _close_if_idle(self) -> None:
        if self.draining and not self._calls and self._connected:
            self._connected = False
            try:
                self._h2.close_connection()
                self._flush()
            except h2.exceptions.ProtocolError:
                pass
            transport: Any = self.transport
            if transport is not None:
                transport.loseConnection()

    def _ping(self) -> None:
        if not self._calls or not self._connected:
            return  # idle: nothing to protect; the next call rearms it
        self._h2.ping(b"rg-alive")
        self._flush()
        self._ping_timeout = self._reactor.callLater(KEEPALIVE_TIMEOUT_S, self._abort)
        self._keepalive = self._reactor.callLater(KEEPALIVE_S, self._ping)

    def _abort(self) -> None:
        transport: Any = self.transport
        if transport is not None:
            transport.abortConnection()

    def _flush(self) -> None:
        data = self._h2.data_to_send()
        transport: Any = self.transport
        if data and transport is not None:
            transport.write(data)


def _response_headers(headers: Sequence[tuple[bytes, bytes]]) -> tuple[int | None, str | None]:
    """(HTTP status, gRPC status name) found in a header block."""
    http_status: int | None = None
    grpc_status: str | None = None
    for name, value in headers:
        if name == b":status":
            http_status = int(value) if value.isdigit() else None
        elif name == b"grpc-status":
            code = int(value) if value.isdigit() else -1
            grpc_status = STATUS_NAMES[code] if 0 <= code < len(STATUS_NAMES) else "UNKNOWN"
    return http_status, grpc_status


def _outcome(call: _Call) -> bytes | GrpcCallError:
    """What a finished stream amounts to: the answer message, or the status that replaces it."""
    if call.http_status != 200:
        return GrpcCallError(HTTP_STATUS_TO_GRPC.get(call.http_status or 0, "UNKNOWN"))
    if call.grpc_status is None:
        return GrpcCallError("INTERNAL")  # the stream ended without trailers
    if call.grpc_status != "OK":
        return GrpcCallError(call.grpc_status)
    body = bytes(call.body)
    if len(body) < _PREFIX.size:
        return GrpcCallError("INTERNAL")
    compressed, length = _PREFIX.unpack_from(body)
    if compressed or len(body) != _PREFIX.size + length:
        return GrpcCallError("INTERNAL")  # we never offer compression; a unary answer is exactly one message
    return body[_PREFIX.size :]
