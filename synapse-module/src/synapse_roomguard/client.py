"""The gRPC client of roomguard, shaped for Twisted: every call returns a Deferred and never blocks the reactor.

Each call is a plain blocking grpc call run in the module's own small thread pool (`max_concurrent_calls` threads),
and its result is handed back to the reactor thread with `callFromThread`. Why this shape:

* not `grpc.aio`: Synapse's reactor is not guaranteed to be the asyncio one;
* not Synapse's reactor thread pool (`defer_to_thread`): that pool also serves DNS resolution, password hashing and
  media work, and a slow roomguard must not starve logins;
* not grpc futures (`.future()` + a done-callback): measured in one Synapse 1.163.2, alternating call by call, the
  answer reached the reactor after a median 3.5 ms that way against 2.9 ms through this pool (README, "Never
  stalling the homeserver").

Every call has one deadline, `timeout_ms`, counted from the moment the hook asks: time spent waiting for a free thread
is deducted from what grpc gets, a call whose deadline passed while queued is not sent at all, and a reactor-side timer
slightly later gives up on the call whatever the thread is doing. No request of the homeserver waits on roomguard
longer than the deadline plus that grace.

One channel is created once the reactor runs (not at import: Synapse may fork to daemonize after loading modules, and
grpc does not survive a fork) and reused for every call. grpc reconnects it by itself; the reconnection backoff is
capped (`reconnect_backoff_max_ms`) so decisions resume within about a second of roomguard coming back, instead of
grpc's default of up to two minutes. Calls do not wait for a connection (`wait_for_ready` off): while roomguard is down
they fail at once with UNAVAILABLE and the hook applies its failure mode.

An endpoint that is a name (`host:port`, `dns:///host:port`) may stand for several replicas: the channel spreads calls
over every address round-robin. grpc resolves the name again only when a connection is lost, so a replica added to
the name (a pod added to a headless Service) would never be used while the others stay healthy. So every
`DNS_REFRESH_S` the client opens a fresh channel (a new resolution), lets it connect for `WARM_UP_S`, moves the calls
to it, and closes the old one once every call it carries is over (the longest deadline plus the grace).

`CheckMediaUpload` is client-streaming: the same shape, in a second pool of its own (a media check holds its thread
while the file streams, up to `media_timeout_ms`, and must not leave messages waiting for a thread), with its own
deadline covering the whole stream; grpc's request thread reads the file chunk by chunk as roomguard takes them.

With a token configured, every call carries the gRPC metadata `authorization: Bearer <token>` (roomguard's caller
authentication). A `unix:` endpoint gets the channel option `grpc.default_authority = localhost`: grpc-core would
otherwise send the socket path as the HTTP/2 `:authority`, which roomguard's HTTP/2 stack refuses (every call would
fail with INTERNAL).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar

import grpc
from twisted.internet import defer
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from ._proto.roomguard.v1 import policy_pb2 as pb
from ._proto.roomguard.v1 import policy_pb2_grpc as pb_grpc
from .config import TlsConfig
from .endpoint import DnsEndpoint, UnixEndpoint, parse_endpoint

logger = logging.getLogger(__name__)

#: How often a name endpoint gets a fresh channel, i.e. a new DNS resolution (replicas added to the name get calls
#: within this long).
DNS_REFRESH_S = 30.0
#: How long a fresh channel may connect before it takes the calls (at most half of the refresh interval).
WARM_UP_S = 1.0

#: How much later than grpc's deadline the reactor-side timer gives up on a call.
HARD_TIMEOUT_GRACE_S = 0.3
#: A call that has less than this left of its deadline when a thread picks it up is not sent: no answer could come back
#: in time, and roomguard would only do work for nobody.
MIN_CALL_BUDGET_S = 0.005

#: The least time between two DNS resolutions of a name `endpoint` (grpc re-resolves when a connection is lost).
DNS_MIN_REFRESH_MS = 1000

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

T = TypeVar("T")


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
        dns_refresh_s: float = DNS_REFRESH_S,
    ) -> None:
        self._endpoint = endpoint
        target = parse_endpoint(endpoint)
        #: Seconds between two fresh channels; None when the endpoint cannot change (an IP address, a Unix socket).
        self._dns_refresh_s: float | None = (
            dns_refresh_s if isinstance(target, DnsEndpoint) and not target.is_ip_literal else None
        )
        self._refresh_timer: Any = None
        #: The fresh channel connecting, and the old ones waiting for their last calls before they are closed.
        self._warming: grpc.Channel | None = None
        self._retiring: dict[grpc.Channel, Any] = {}
        self._tls = tls
        # Sent with every call; a tuple is what grpc accepts as is. Never logged.
        self._metadata: tuple[tuple[str, str], ...] | None = (
            (("authorization", f"Bearer {auth_token}"),) if auth_token else None
        )
        self._timeout_s = timeout_s
        self._backoff_max_ms = int(reconnect_backoff_max_s * 1000)
        self._media_timeout_s = media_timeout_s
        self._reactor = reactor
        self._channel: grpc.Channel | None = None
        self._stub: pb_grpc.PolicyServiceStub | None = None
        self._lock = threading.Lock()
        #: Last reachability reported in the log (None: nothing reported yet); only touched on the reactor thread.
        self._reachable: bool | None = None
        # Threads are started on demand, up to the maximum, once the pool is started (on first use).
        self._pool = ThreadPool(minthreads=0, maxthreads=max_concurrent_calls, name="roomguard-grpc")
        # Media checks get a pool of their own: one holds its thread while the file streams (up to `media_timeout_ms`),
        # and a burst of uploads must not leave messages waiting for a thread past their 200 ms deadline.
        self._media_pool = ThreadPool(minthreads=0, maxthreads=max_concurrent_calls, name="roomguard-grpc-media")

    # === channel ===

    def _channel_options(self) -> list[tuple[str, Any]]:
        options: list[tuple[str, Any]] = []
        if isinstance(parse_endpoint(self._endpoint), UnixEndpoint):
            options.append(("grpc.default_authority", UNIX_SOCKET_AUTHORITY))
        else:
            # Every address the name resolves to is a replica: spread the calls over all of them, skipping those
            # not connected (a replica that went away), instead of grpc's default of sticking to the first one.
            options.append(("grpc.lb_policy_name", "round_robin"))
            # grpc asks DNS again when a connection is lost (a replica leaving, a pod rescheduled); by default not
            # more than once every 30 s. A second is enough to find the pod that replaced it.
            options.append(("grpc.dns_min_time_between_resolutions_ms", DNS_MIN_REFRESH_MS))
        if self._tls is not None and self._tls.server_name:
            options.append(("grpc.ssl_target_name_override", self._tls.server_name))
        return options + [
            ("grpc.initial_reconnect_backoff_ms", min(100, self._backoff_max_ms)),
            ("grpc.min_reconnect_backoff_ms", min(100, self._backoff_max_ms)),
            ("grpc.max_reconnect_backoff_ms", self._backoff_max_ms),
            # Notice a silently dead connection (roomguard host gone, firewall state lost) while calls are in flight.
            ("grpc.keepalive_time_ms", 60_000),
            ("grpc.keepalive_timeout_ms", 5_000),
        ]

    def _new_channel(self) -> grpc.Channel:
        if self._tls is None:
            return grpc.insecure_channel(self._endpoint, options=self._channel_options())
        credentials = grpc.ssl_channel_credentials(
            root_certificates=self._tls.root_certificates,
            private_key=self._tls.private_key,
            certificate_chain=self._tls.certificate_chain,
        )
        return grpc.secure_channel(self._endpoint, credentials, options=self._channel_options())

    def _get_stub(self) -> pb_grpc.PolicyServiceStub:
        with self._lock:
            if self._stub is None:
                for pool in (self._pool, self._media_pool):
                    if not pool.started:
                        pool.start()
                self._channel = self._new_channel()
                self._stub = pb_grpc.PolicyServiceStub(self._channel)
                logger.info(
                    "roomguard channel created for %s (%s, %s)",
                    self._endpoint,
                    "plaintext" if self._tls is None else "TLS" if self._tls.private_key is None else "mutual TLS",
                    "bearer token" if self._metadata else "no token",
                )
                if self._dns_refresh_s is not None:
                    self._refresh_timer = self._reactor.callLater(self._dns_refresh_s, self._refresh)
            return self._stub

    # --- a fresh channel every `DNS_REFRESH_S` (on the reactor thread) ---

    def _warm_up_s(self) -> float:
        assert self._dns_refresh_s is not None
        return min(WARM_UP_S, self._dns_refresh_s / 2)

    def _refresh(self) -> None:
        """Open a fresh channel (a new resolution of the name) and start connecting it; it takes the calls later."""
        assert self._dns_refresh_s is not None
        with self._lock:
            if self._channel is None:  # closed
                return
            try:
                fresh = self._new_channel()
            except Exception as err:  # keep the channel we have
                logger.warning("roomguard channel could not be refreshed: %s", type(err).__name__)
                self._refresh_timer = self._reactor.callLater(self._dns_refresh_s, self._refresh)
                return
            self._warming = fresh
        _start_connecting(fresh)
        self._refresh_timer = self._reactor.callLater(self._warm_up_s(), self._swap, fresh)

    def _swap(self, fresh: grpc.Channel) -> None:
        """The fresh channel takes the calls; the old one is closed once the calls it carries are over."""
        assert self._dns_refresh_s is not None
        with self._lock:
            if self._channel is None or self._warming is not fresh:  # closed meanwhile
                fresh.close()
                return
            old, self._channel, self._warming = self._channel, fresh, None
            self._stub = pb_grpc.PolicyServiceStub(fresh)
        longest_call_s = max(self._timeout_s, self._media_timeout_s) + HARD_TIMEOUT_GRACE_S
        self._retiring[old] = self._reactor.callLater(longest_call_s, self._retire, old)
        self._refresh_timer = self._reactor.callLater(self._dns_refresh_s - self._warm_up_s(), self._refresh)

    def _retire(self, old: grpc.Channel) -> None:
        self._retiring.pop(old, None)
        old.close()

    def connect(self) -> None:
        """Create the channel now (call once the reactor runs): a bad endpoint shows in the log at start-up."""
        self._get_stub()

    def _note_reachability(self, reachable: bool) -> None:
        # From call outcomes, on the reactor thread; only changes are logged, so an outage is two lines, not thousands.
        # (Not from grpc's connectivity subscription: its polling thread races `close()` at shutdown.)
        if reachable == self._reachable:
            return
        self._reachable = reachable
        if reachable:
            logger.info("roomguard at %s is reachable", self._endpoint)
        else:
            logger.warning("roomguard at %s is unreachable; hooks apply their failure modes", self._endpoint)

    def close(self) -> None:
        if self._refresh_timer is not None and self._refresh_timer.active():
            self._refresh_timer.cancel()
        for old, timer in list(self._retiring.items()):
            if timer.active():
                timer.cancel()
            old.close()
        self._retiring.clear()
        with self._lock:
            for channel in (self._channel, self._warming):
                if channel is not None:
                    channel.close()  # ends calls in flight at once (CANCELLED), so the pool stops promptly
            self._channel = None
            self._warming = None
            self._stub = None
            for pool in (self._pool, self._media_pool):
                if pool.started:
                    pool.stop()

    # === calls ===

    def check_message_send(self, request: pb.CheckMessageSendRequest) -> defer.Deferred[pb.CheckMessageSendResponse]:
        return self._call(self._unary(lambda stub: stub.CheckMessageSend, request))

    def check_room_publish(self, request: pb.CheckRoomPublishRequest) -> defer.Deferred[pb.CheckRoomPublishResponse]:
        return self._call(self._unary(lambda stub: stub.CheckRoomPublish, request))

    def check_room_join(self, request: pb.CheckRoomJoinRequest) -> defer.Deferred[pb.CheckRoomJoinResponse]:
        return self._call(self._unary(lambda stub: stub.CheckRoomJoin, request))

    def check_room_state_change(
        self, request: pb.CheckRoomStateChangeRequest
    ) -> defer.Deferred[pb.CheckRoomStateChangeResponse]:
        return self._call(self._unary(lambda stub: stub.CheckRoomStateChange, request))

    def check_media_upload(
        self, header: pb.MediaUploadHeader, chunks: ChunkSource
    ) -> defer.Deferred[pb.CheckMediaUploadResponse]:
        """`CheckMediaUpload`, client-streaming: `header`, then the file's bytes as `chunks` yields them (each cut to at
        most `CHUNK_BYTES` per message). The chunks are read by grpc's request thread, never by the reactor, and only
        as fast as roomguard takes them (HTTP/2 flow control): the file is never held in memory. `media_timeout_ms` is
        the deadline of the whole call, streaming included. `chunks` is closed when the call ends, however it ends.
        `header.media.size` is set from `chunks.size()` when the source knows it."""

        def invoke(stub: pb_grpc.PolicyServiceStub, remaining_s: float) -> Any:
            requests = _UploadRequests(header, chunks)
            try:
                return stub.CheckMediaUpload(iter(requests), timeout=remaining_s, metadata=self._metadata)
            finally:
                requests.close()

        return self._call(invoke, timeout_s=self._media_timeout_s, pool=self._media_pool)

    def _unary(self, method: Callable[[pb_grpc.PolicyServiceStub], Any], request: Any) -> _Invoke:
        def invoke(stub: pb_grpc.PolicyServiceStub, remaining_s: float) -> Any:
            return method(stub)(request, timeout=remaining_s, metadata=self._metadata)

        return invoke

    def _call(
        self, invoke: _Invoke, *, timeout_s: float | None = None, pool: ThreadPool | None = None
    ) -> defer.Deferred[Any]:
        """Run `invoke(stub, remaining_s)` (a blocking grpc call) in a pool thread, within one deadline counted from
        now (`timeout_ms` unless told), and fire the result on the reactor thread."""
        asked_at = time.monotonic()
        deadline_s = self._timeout_s if timeout_s is None else timeout_s
        try:
            stub = self._get_stub()
        except Exception as err:  # channel creation failed: not a decision
            logger.warning("roomguard channel could not be created: %s", type(err).__name__)
            return defer.fail(RoomguardUnavailableError("START_FAILED"))

        def blocking_call() -> Any:  # in a pool thread
            remaining = deadline_s - (time.monotonic() - asked_at)
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
                self._note_reachability(True)
                result.callback(value)
                return
            error = value.value if isinstance(value, Failure) else value
            if isinstance(error, RoomguardUnavailableError):
                if error.status in UNREACHABLE_STATUSES:
                    self._note_reachability(False)
                result.errback(error)
            else:  # anything else grpc might raise is still "no decision"
                result.errback(RoomguardUnavailableError(type(error).__name__))

        (pool or self._pool).callInThreadWithCallback(
            lambda success, value: self._reactor.callFromThread(settle, success, value), blocking_call
        )

        def on_timeout(failure: Any) -> Any:
            if failure.check(defer.TimeoutError, defer.CancelledError):
                raise RoomguardUnavailableError("TIMEOUT")
            return failure

        result.addTimeout(deadline_s + HARD_TIMEOUT_GRACE_S, self._reactor)
        result.addErrback(on_timeout)
        return result


def _start_connecting(channel: grpc.Channel) -> None:
    """Make a new channel resolve its name and connect now, not at its first call. grpc's public way is a connectivity
    subscription, whose polling thread races `close()` at shutdown; this is the call that subscription makes once.
    If a grpc release renames it, the channel connects at its first call instead (a few ms more for that call)."""
    try:
        channel._channel.check_connectivity_state(True)  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - only an optimisation
        logger.debug("roomguard channel: cannot ask grpc to connect ahead of the first call")


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
