"""The gRPC client of roomguard, shaped for Twisted: every call returns a Deferred and never blocks the reactor.

The four decision rpcs (`CheckMessageSend`, `CheckRoomPublish`, `CheckRoomJoin`, `CheckRoomStateChange`) run on the
reactor thread itself: HTTP/2 with `h2` over Twisted connections (`h2client.py`), one connection per address of the
endpoint and calls spread round-robin (`balancer.py`, `resolver.py`). No thread is woken for a call: the request is
written and the answer read by the reactor, which is what a message send waits for (README, "Measured": a grpcio
call made from a thread pool cost about 1 ms more per send on a busy 2-core machine, in thread wake-ups).

Every call has one deadline, `timeout_ms`, counted from the moment the hook asks. At most `max_concurrent_calls`
calls are in flight at once; more wait in order, that wait counts against the deadline, and a call whose deadline
passes while waiting is never sent (`QUEUE_TIMEOUT`). The deadline is a reactor timer: at it, the call's stream is
reset (roomguard stops working on it) and the call fails `DEADLINE_EXCEEDED`. Calls do not wait for a connection
unless one is being made (start-up): while roomguard is down they fail at once with UNAVAILABLE and the hook applies
its failure mode. Connections are made once the reactor runs (not at import: Synapse may fork to daemonize after
loading modules) and re-made after a backoff capped at `reconnect_backoff_max_ms`.

`CheckMediaUpload` is client-streaming and stays on grpcio, in a thread pool of its own (`max_concurrent_calls`
threads): a media check streams a file of up to tens of MB from disk as fast as roomguard takes it, which grpc's
request thread does without the reactor reading the file; its cost is the file, not thread wake-ups. The grpcio
channel (round robin over the same name) is created at the first upload; its deadline `media_timeout_ms` covers the
whole stream, backed by a reactor timer slightly later.

With a token configured, every call carries the gRPC metadata `authorization: Bearer <token>` (roomguard's caller
authentication). A `unix:` endpoint sends `localhost` as the HTTP/2 `:authority` (roomguard's HTTP/2 stack refuses a
socket path there; grpc needs the channel option `grpc.default_authority`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar

import grpc
from twisted.internet import defer
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from ._proto.roomguard.v1 import policy_pb2 as pb
from ._proto.roomguard.v1 import policy_pb2_grpc as pb_grpc
from .balancer import REFRESH_S, Channel
from .config import TlsConfig
from .endpoint import UnixEndpoint, parse_endpoint
from .h2client import GrpcCallError
from .resolver import Address, AddressResolver

logger = logging.getLogger(__name__)

#: How much later than grpc's deadline the reactor-side timer gives up on a media upload call.
HARD_TIMEOUT_GRACE_S = 0.3
#: A call that has less than this left of its deadline when a thread picks it up is not sent: no answer could come back
#: in time, and roomguard would only do work for nobody.
MIN_CALL_BUDGET_S = 0.005

#: The `:authority` sent on a Unix socket channel (see the module docstring).
UNIX_SOCKET_AUTHORITY = "localhost"

#: What a status that replaces a decision tells the operator. Every status, these and any other, is "no decision":
#: the hook applies its failure mode. The module's own pseudo-statuses are `TIMEOUT`, `QUEUE_TIMEOUT`, `START_FAILED`.
STATUS_HINTS: dict[str, str] = {
    "UNAVAILABLE": "roomguard unreachable or restarting",
    "DEADLINE_EXCEEDED": "no answer within the deadline (`timeout_ms`, or roomguard's `limits.request_timeout_ms`)",
    "RESOURCE_EXHAUSTED": "roomguard shed the call at its concurrency limit (`limits.max_concurrent_requests`)",
    "UNAUTHENTICATED": (
        "roomguard refused the module's token, missing or wrong: `auth_token_file` must hold the token of "
        "roomguard's `auth.token_file` (or ROOMGUARD_AUTH_TOKEN); no call succeeds until this is fixed"
    ),
    "OUT_OF_RANGE": "the request is larger than roomguard's `limits.max_request_bytes`",
    "TIMEOUT": "no answer within the deadline plus grace; the module gave up",
    "QUEUE_TIMEOUT": "every one of the `max_concurrent_calls` threads stayed busy until the deadline",
}
#: Statuses that no retry fixes: the module's or roomguard's configuration is wrong. The hooks log them at ERROR.
MISCONFIGURATION_STATUSES = frozenset({"UNAUTHENTICATED"})
#: Statuses that say roomguard could not be reached at all (judged for the "reachable"/"unreachable" log lines).
UNREACHABLE_STATUSES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED"})

R = TypeVar("R")

#: The full name of roomguard's gRPC service (`package.Service`), the first part of every call's path.
SERVICE = "roomguard.v1.PolicyService"


class RoomguardUnavailableError(Exception):
    """roomguard gave no decision: not reachable, deadline exceeded, or a gRPC error status instead of an answer."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        #: The gRPC status code name (`UNAVAILABLE`, `UNAUTHENTICATED`, `RESOURCE_EXHAUSTED`, ...) or one of the
        #: module's own: `TIMEOUT` (reactor-side timer), `QUEUE_TIMEOUT`, `START_FAILED`.
        self.status = status

    @property
    def misconfiguration(self) -> bool:
        """True when retrying cannot help (a wrong or missing token): worth an ERROR, not a WARNING."""
        return self.status in MISCONFIGURATION_STATUSES

    @property
    def hint(self) -> str:
        """What the status means for the operator; never quotes anything from the request."""
        return STATUS_HINTS.get(self.status, "gRPC error status instead of a decision")


class PolicyClient:
    """A `roomguard.v1.PolicyService` client whose calls are Deferreds fired on the reactor thread."""

    def __init__(
        self,
        endpoint: str,
        *,
        timeout_s: float,
        reconnect_backoff_max_s: float,
        reactor: Any,
        max_concurrent_calls: int = 16,
        tls: TlsConfig | None = None,
        auth_token: str | None = None,
        media_timeout_s: float = 5.0,
        dns_refresh_s: float = REFRESH_S,
    ) -> None:
        self._endpoint = endpoint
        #: How often a name endpoint is resolved again (tests shorten it).
        self._dns_refresh_s = dns_refresh_s
        self._target = parse_endpoint(endpoint)
        self._tls = tls
        # Sent with every call. Never logged.
        self._metadata: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {auth_token}"),) if auth_token else ()
        self._timeout_s = timeout_s
        self._backoff_max_s = reconnect_backoff_max_s
        self._media_timeout_s = media_timeout_s
        self._reactor = reactor
        self._max_in_flight = max_concurrent_calls
        self._in_flight = 0
        #: Calls waiting for one of the `max_concurrent_calls` places, oldest first.
        self._queue: deque[_Queued] = deque()
        self._channel: Channel | None = None
        #: Last reachability reported in the log (None: nothing reported yet); only touched on the reactor thread.
        self._reachable: bool | None = None
        # grpcio, for `CheckMediaUpload` only (see the module docstring); created at the first upload.
        self._lock = threading.Lock()
        self._media_channel: grpc.Channel | None = None
        self._media_stub: pb_grpc.PolicyServiceStub | None = None
        self._media_pool = ThreadPool(minthreads=0, maxthreads=max_concurrent_calls, name="roomguard-grpc-media")

    # === channel ===

    def _get_channel(self) -> Channel:
        if self._channel is None:
            target = self._target
            if isinstance(target, UnixEndpoint):
                authority = UNIX_SOCKET_AUTHORITY
            else:
                authority = f"[{target.host}]:{target.port}" if ":" in target.host else f"{target.host}:{target.port}"
            self._channel = Channel(
                AddressResolver(target, self._reactor),
                reactor=self._reactor,
                authority=authority,
                tls=self._tls_options(),
                metadata=self._metadata,
                backoff_max_s=self._backoff_max_s,
                refresh_s=self._dns_refresh_s,
                on_addresses=self._log_addresses,
            )
            self._channel.connect()
            logger.info(
                "roomguard channel created for %s (%s, %s)",
                self._endpoint,
                "plaintext" if self._tls is None else "TLS" if self._tls.private_key is None else "mutual TLS",
                "bearer token" if self._metadata else "no token",
            )
        return self._channel

    def _tls_options(self) -> Any:
        if self._tls is None:
            return None
        from twisted.internet import ssl

        target = self._target
        assert not isinstance(target, UnixEndpoint)  # refused by parse_config
        roots = [ssl.Certificate.loadPEM(pem) for pem in _pem_certificates(self._tls.root_certificates)]
        client_certificate = None
        if self._tls.private_key is not None and self._tls.certificate_chain is not None:
            client_certificate = ssl.PrivateCertificate.loadPEM(
                self._tls.private_key + b"\n" + self._tls.certificate_chain
            )
        return ssl.optionsForClientTLS(
            self._tls.server_name or target.host,
            trustRoot=ssl.trustRootFromCertificates(roots),
            clientCertificate=client_certificate,
            acceptableProtocols=[b"h2"],
        )

    def _log_addresses(self, addresses: list[Address]) -> None:
        if not isinstance(self._target, UnixEndpoint) and not self._target.is_ip_literal:
            logger.info("roomguard endpoint %s resolves to %s", self._endpoint, ", ".join(str(a) for a in addresses))

    def connect(self) -> None:
        """Resolve and connect now (call once the reactor runs): a bad endpoint shows in the log at start-up."""
        self._get_channel()

    def _note_reachability(self, reachable: bool) -> None:
        # From call outcomes, on the reactor thread; only changes are logged, so an outage is two lines, not thousands.
        if reachable == self._reachable:
            return
        self._reachable = reachable
        if reachable:
            logger.info("roomguard at %s is reachable", self._endpoint)
        else:
            logger.warning("roomguard at %s is unreachable; hooks apply their failure modes", self._endpoint)

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        while self._queue:
            self._queue.popleft().fail(RoomguardUnavailableError("UNAVAILABLE"))
        with self._lock:
            if self._media_channel is not None:
                self._media_channel.close()  # ends calls in flight at once (CANCELLED), so the pool stops promptly
            self._media_channel = None
            self._media_stub = None
            if self._media_pool.started:
                self._media_pool.stop()

    # === decision calls (on the reactor) ===

    def check_message_send(self, request: pb.CheckMessageSendRequest) -> defer.Deferred[pb.CheckMessageSendResponse]:
        return self._unary("CheckMessageSend", request, pb.CheckMessageSendResponse)

    def check_room_publish(self, request: pb.CheckRoomPublishRequest) -> defer.Deferred[pb.CheckRoomPublishResponse]:
        return self._unary("CheckRoomPublish", request, pb.CheckRoomPublishResponse)

    def check_room_join(self, request: pb.CheckRoomJoinRequest) -> defer.Deferred[pb.CheckRoomJoinResponse]:
        return self._unary("CheckRoomJoin", request, pb.CheckRoomJoinResponse)

    def check_room_state_change(
        self, request: pb.CheckRoomStateChangeRequest
    ) -> defer.Deferred[pb.CheckRoomStateChangeResponse]:
        return self._unary("CheckRoomStateChange", request, pb.CheckRoomStateChangeResponse)

    def _unary(self, method: str, request: Any, response_type: type[R]) -> defer.Deferred[R]:
        """`method` with `request`, within `timeout_ms` from now, at most `max_concurrent_calls` at once."""
        result: defer.Deferred[R] = defer.Deferred()
        deadline = self._reactor.seconds() + self._timeout_s
        try:
            channel = self._get_channel()
        except Exception as err:  # a TLS file pyOpenSSL cannot use, ...: not a decision
            logger.warning("roomguard channel could not be created: %s", type(err).__name__)
            return defer.fail(RoomguardUnavailableError("START_FAILED"))
        path = f"/{SERVICE}/{method}"

        def send() -> None:
            remaining = deadline - self._reactor.seconds()
            if remaining < MIN_CALL_BUDGET_S:
                self._settle(result, RoomguardUnavailableError("QUEUE_TIMEOUT"))
                self._release()
                return
            d = channel.call(path, request.SerializeToString(), remaining)
            d.addCallbacks(lambda data: self._answered(result, response_type, data), lambda f: self._failed(result, f))
            d.addBoth(lambda _: self._release())

        if self._in_flight < self._max_in_flight:
            self._in_flight += 1
            send()
        else:
            queued = _Queued(send=send, fail=lambda error: self._settle(result, error))
            queued.timer = self._reactor.callLater(
                max(0.0, self._timeout_s - MIN_CALL_BUDGET_S), self._give_up_queued, queued
            )
            self._queue.append(queued)
        return result

    def _release(self) -> None:
        """A call ended: its place goes to the oldest waiting call."""
        self._in_flight -= 1
        while self._queue and self._in_flight < self._max_in_flight:
            queued = self._queue.popleft()
            if queued.timer is not None and queued.timer.active():
                queued.timer.cancel()
            self._in_flight += 1
            queued.send()

    def _give_up_queued(self, queued: _Queued) -> None:
        if queued in self._queue:
            self._queue.remove(queued)
            queued.fail(RoomguardUnavailableError("QUEUE_TIMEOUT"))

    def _answered(self, result: defer.Deferred[R], response_type: type[R], data: bytes) -> None:
        try:
            response = response_type.FromString(data)  # type: ignore[attr-defined]
        except Exception:  # not the message roomguard's proto says: no decision
            self._settle(result, RoomguardUnavailableError("INTERNAL"))
            return
        self._settle(result, response)

    def _failed(self, result: defer.Deferred[Any], failure: Failure) -> None:
        error = failure.value
        status = error.status if isinstance(error, GrpcCallError) else type(error).__name__
        self._settle(result, RoomguardUnavailableError(status))

    def _settle(self, result: defer.Deferred[Any], outcome: Any) -> None:
        if result.called:
            return
        if isinstance(outcome, RoomguardUnavailableError):
            if outcome.status in UNREACHABLE_STATUSES:
                self._note_reachability(False)
            result.errback(outcome)
        else:
            self._note_reachability(True)
            result.callback(outcome)

    # === media upload (grpcio, in a thread pool) ===

    def _media_channel_options(self) -> list[tuple[str, Any]]:
        options: list[tuple[str, Any]] = []
        if isinstance(self._target, UnixEndpoint):
            options.append(("grpc.default_authority", UNIX_SOCKET_AUTHORITY))
        else:
            # Every address the name resolves to is a replica: spread the calls over all of them, skipping those
            # not connected, instead of grpc's default of sticking to the first one; grpc asks DNS again when a
            # connection is lost, here at most once a second.
            options.append(("grpc.lb_policy_name", "round_robin"))
            options.append(("grpc.dns_min_time_between_resolutions_ms", 1000))
        if self._tls is not None and self._tls.server_name:
            options.append(("grpc.ssl_target_name_override", self._tls.server_name))
        backoff_max_ms = int(self._backoff_max_s * 1000)
        return options + [
            ("grpc.initial_reconnect_backoff_ms", min(100, backoff_max_ms)),
            ("grpc.min_reconnect_backoff_ms", min(100, backoff_max_ms)),
            ("grpc.max_reconnect_backoff_ms", backoff_max_ms),
            ("grpc.keepalive_time_ms", 60_000),
            ("grpc.keepalive_timeout_ms", 5_000),
        ]

    def _get_media_stub(self) -> pb_grpc.PolicyServiceStub:
        with self._lock:
            if self._media_stub is None:
                if not self._media_pool.started:
                    self._media_pool.start()
                if self._tls is None:
                    self._media_channel = grpc.insecure_channel(self._endpoint, options=self._media_channel_options())
                else:
                    credentials = grpc.ssl_channel_credentials(
                        root_certificates=self._tls.root_certificates,
                        private_key=self._tls.private_key,
                        certificate_chain=self._tls.certificate_chain,
                    )
                    self._media_channel = grpc.secure_channel(
                        self._endpoint, credentials, options=self._media_channel_options()
                    )
                self._media_stub = pb_grpc.PolicyServiceStub(self._media_channel)
            return self._media_stub

    def check_media_upload(
        self, header: pb.MediaUploadHeader, chunks: ChunkSource
    ) -> defer.Deferred[pb.CheckMediaUploadResponse]:
        """`CheckMediaUpload`, client-streaming: `header`, then the file's bytes as `chunks` yields them (each cut to at
        most `CHUNK_BYTES` per message). The chunks are read by grpc's request thread, never by the reactor, and only
        as fast as roomguard takes them (HTTP/2 flow control): the file is never held in memory. `media_timeout_ms` is
        the deadline of the whole call, streaming included. `chunks` is closed when the call ends, however it ends.
        `header.media.size` is set from `chunks.size()` when the source knows it."""
        metadata = self._metadata or None

        def invoke(stub: pb_grpc.PolicyServiceStub, remaining_s: float) -> Any:
            requests = _UploadRequests(header, chunks)
            try:
                return stub.CheckMediaUpload(iter(requests), timeout=remaining_s, metadata=metadata)
            finally:
                requests.close()

        return self._call_in_thread(invoke, timeout_s=self._media_timeout_s)

    def _call_in_thread(self, invoke: _Invoke, *, timeout_s: float) -> defer.Deferred[Any]:
        """Run `invoke(stub, remaining_s)` (a blocking grpc call) in a media pool thread, within one deadline counted
        from now, and fire the result on the reactor thread."""
        asked_at = time.monotonic()
        try:
            stub = self._get_media_stub()
        except Exception as err:  # channel creation failed: not a decision
            logger.warning("roomguard channel could not be created: %s", type(err).__name__)
            return defer.fail(RoomguardUnavailableError("START_FAILED"))

        def blocking_call() -> Any:  # in a pool thread
            remaining = timeout_s - (time.monotonic() - asked_at)
            if remaining < MIN_CALL_BUDGET_S:
                raise RoomguardUnavailableError("QUEUE_TIMEOUT")
            try:
                return invoke(stub, remaining)
            except grpc.RpcError as err:
                code = err.code() if callable(getattr(err, "code", None)) else None
                raise RoomguardUnavailableError(code.name if code is not None else "UNKNOWN") from None

        result: defer.Deferred[Any] = defer.Deferred()

        def settle(success: bool, value: Any) -> None:  # on the reactor thread
            if result.called:  # the reactor-side timer already gave up
                return
            if success:
                self._settle(result, value)
                return
            error = value.value if isinstance(value, Failure) else value
            if not isinstance(error, RoomguardUnavailableError):  # anything else grpc might raise: no decision
                error = RoomguardUnavailableError(type(error).__name__)
            self._settle(result, error)

        self._media_pool.callInThreadWithCallback(
            lambda success, value: self._reactor.callFromThread(settle, success, value), blocking_call
        )

        def on_timeout(failure: Any) -> Any:
            if failure.check(defer.TimeoutError, defer.CancelledError):
                raise RoomguardUnavailableError("TIMEOUT")
            return failure

        result.addTimeout(timeout_s + HARD_TIMEOUT_GRACE_S, self._reactor)
        result.addErrback(on_timeout)
        return result


class _Queued:
    """A call waiting for a place among the `max_concurrent_calls`."""

    def __init__(self, send: Callable[[], None], fail: Callable[[RoomguardUnavailableError], None]) -> None:
        self.send = send
        self.fail = fail
        self.timer: Any = None


def _pem_certificates(pem: bytes) -> list[bytes]:
    """Each certificate of a PEM bundle (a CA file may hold several)."""
    marker = b"-----END CERTIFICATE-----"
    return [
        part.strip() + b"\n" + marker + b"\n" for part in pem.split(marker) if b"-----BEGIN CERTIFICATE-----" in part
    ]


#: The largest chunk of a file sent in one `CheckMediaUploadRequest` (what roomguard's contract expects of clients).
CHUNK_BYTES = 64 * 1024


class ChunkSource(Protocol):
    """A file's bytes, read in whatever thread iterates it; `close()` may come from another thread, at any time."""

    def __iter__(self) -> Iterator[bytes]: ...

    def size(self) -> int:
        """The file's size in bytes, 0 when unknown (called from the iterating thread, before the first chunk)."""
        ...

    def close(self) -> None: ...


class _UploadRequests:
    """The request stream of one `CheckMediaUpload` call: the header, then every chunk (at most `CHUNK_BYTES` each).

    Iterated by grpc's request-consuming thread; `close()` (from the pool thread, once the call is over) stops it and
    releases the source, even while that thread is still inside an iteration.
    """

    def __init__(self, header: pb.MediaUploadHeader, chunks: ChunkSource) -> None:
        self._header: pb.MediaUploadHeader | None = header
        self._source = chunks
        self._chunks: Iterator[bytes] | None = None
        self._pending = b""
        self._closed = False

    def __iter__(self) -> _UploadRequests:
        return self

    def __next__(self) -> pb.CheckMediaUploadRequest:
        if self._closed:
            raise StopIteration
        if self._header is not None:
            header, self._header = self._header, None
            if not header.media.size:
                header.media.size = self._source.size()
            self._chunks = iter(self._source)
            return pb.CheckMediaUploadRequest(header=header)
        assert self._chunks is not None
        while not self._pending:
            self._pending = next(self._chunks)  # StopIteration ends the stream
        chunk, self._pending = self._pending[:CHUNK_BYTES], self._pending[CHUNK_BYTES:]
        return pb.CheckMediaUploadRequest(chunk=chunk)

    def close(self) -> None:
        self._closed = True
        self._source.close()


_Invoke = Callable[[pb_grpc.PolicyServiceStub, float], Any]
