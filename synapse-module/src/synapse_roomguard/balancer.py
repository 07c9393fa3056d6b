"""The module's channel to roomguard: one HTTP/2 connection per address of the `endpoint`, calls spread round-robin.

`Channel.call` picks the next connected replica in turn; a replica whose connection is down is skipped, so that only
calls in flight on a replica that goes away fail. Each address keeps its own connection (`Subchannel`) and
reconnects by itself when it is lost, after a backoff that starts at `INITIAL_BACKOFF_S` and grows to the configured
maximum (`reconnect_backoff_max_ms`), with jitter, so that a restarted roomguard is found within about that long.

The addresses are asked again (`resolver.py`) every `REFRESH_S` and, at most every `MIN_REFRESH_S`, whenever a
connection is lost: a pod added to a headless Service gets calls within `REFRESH_S`, a pod removed from it is
dropped (its calls in flight finish first). An answer that fails or is empty keeps the addresses known so far.

A call made while no connection is ready yet (start-up, or every replica reconnecting) waits for the first one to
connect, within its own deadline; when no address is even trying (all in backoff after failures), it fails
`UNAVAILABLE` at once, as grpc does without `wait_for_ready`, and the hook applies its failure mode.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet import defer
from twisted.internet.endpoints import (
    TCP4ClientEndpoint,
    TCP6ClientEndpoint,
    UNIXClientEndpoint,
    wrapClientTLS,
)
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from twisted.internet.protocol import Factory
from twisted.python.failure import Failure

from .h2client import GrpcCallError, H2ClientProtocol, Timer
from .resolver import Address, AddressResolver

logger = logging.getLogger(__name__)

#: First reconnection delay after a failure, and how it grows (grpc's defaults, with a configurable cap).
INITIAL_BACKOFF_S = 0.1
BACKOFF_MULTIPLIER = 1.6
BACKOFF_JITTER = 0.2
#: How long one connection attempt may take.
CONNECT_TIMEOUT_S = 5.0
#: Ask the addresses again this often, and (at most this often) when a connection is lost.
REFRESH_S = 30.0
MIN_REFRESH_S = 1.0


class Subchannel:
    """One address: its connection, reconnected after a backoff whenever it is lost or fails."""

    def __init__(
        self,
        address: Address,
        *,
        connect: Callable[[Address, Factory[Any]], defer.Deferred[Any]],
        protocol_factory: Callable[[Subchannel], H2ClientProtocol],
        reactor: Any,
        backoff_max_s: float,
        on_change: Callable[[], None],
    ) -> None:
        self.address = address
        self._connect = connect
        self._protocol_factory = protocol_factory
        self._reactor = reactor
        self._backoff_max_s = backoff_max_s
        self._backoff_s = INITIAL_BACKOFF_S
        self._on_change = on_change
        self.protocol: H2ClientProtocol | None = None
        self.connecting = False
        self._retry: Timer | None = None
        self._closed = False

    @property
    def ready(self) -> bool:
        return self.protocol is not None and self.protocol.usable

    def start(self) -> None:
        if self._closed or self.connecting or self.protocol is not None:
            return
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None
        self.connecting = True
        factory: Factory[Any] = Factory.forProtocol(lambda: self._protocol_factory(self))
        attempt = self._connect(self.address, factory)
        attempt.addCallbacks(self._connected, self._failed)

    def close(self) -> None:
        """Stop reconnecting; the connection closes once its calls in flight are done."""
        self._closed = True
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        if self.protocol is not None:
            self.protocol.close()

    def _connected(self, protocol: H2ClientProtocol) -> None:
        self.connecting = False
        if self._closed:
            protocol.close()
            return
        self.protocol = protocol
        self._backoff_s = INITIAL_BACKOFF_S
        self._on_change()

    def _failed(self, failure: Failure) -> None:
        self.connecting = False
        logger.debug("roomguard connection to %s failed: %s", self.address, failure.type.__name__)
        self._schedule_retry()
        self._on_change()

    def lost(self, protocol: H2ClientProtocol) -> None:
        """The connection is gone, or draining (GOAWAY): open a new one."""
        if protocol is not self.protocol:
            return
        self.protocol = None
        if protocol.received_any:
            # A connection that worked is re-opened at once (a roomguard restart, a GOAWAY); the backoff is for
            # attempts that fail.
            self.start()
        else:  # lost before roomguard said anything: TLS refused, not roomguard, ...
            logger.debug("roomguard connection to %s closed before any answer", self.address)
            self._schedule_retry()
        self._on_change()

    def _schedule_retry(self) -> None:
        if self._closed:
            return
        delay = self._backoff_s * random.uniform(1 - BACKOFF_JITTER, 1 + BACKOFF_JITTER)
        self._backoff_s = min(self._backoff_s * BACKOFF_MULTIPLIER, self._backoff_max_s)
        self._retry = self._reactor.callLater(min(delay, self._backoff_max_s), self.start)


class Channel:
    """Unary calls to roomguard over one connection per address, round-robin (see the module docstring)."""

    def __init__(
        self,
        resolver: AddressResolver,
        *,
        reactor: Any,
        authority: str,
        tls: IOpenSSLClientConnectionCreator | None = None,
        metadata: Sequence[tuple[str, str]] = (),
        backoff_max_s: float = 1.0,
        refresh_s: float = REFRESH_S,
        on_addresses: Callable[[list[Address]], None] = lambda _a: None,
    ) -> None:
        self._resolver = resolver
        self._refresh_s = refresh_s
        self._reactor = reactor
        self._authority = authority
        self._tls = tls
        self._metadata = tuple(metadata)
        self._backoff_max_s = backoff_max_s
        self._on_addresses = on_addresses
        self._subchannels: dict[Address, Subchannel] = {}
        self._next = 0
        #: Calls waiting for a first connection: (fire, fail) pairs.
        self._waiting: list[tuple[Callable[[], None], Callable[[GrpcCallError], None]]] = []
        self._resolving = False
        self._resolved_once = False
        self._last_resolve = -MIN_REFRESH_S
        self._refresh: Timer | None = None
        self._closed = False

    # === lifecycle ===

    def connect(self) -> None:
        """Resolve the endpoint and connect to every address (call once the reactor runs)."""
        if not self._resolving and not self._resolved_once:
            self._resolve()

    def close(self) -> None:
        self._closed = True
        if self._refresh is not None and self._refresh.active():
            self._refresh.cancel()
        for sub in self._subchannels.values():
            sub.close()
        self._subchannels.clear()
        self._fail_waiting()

    @property
    def addresses(self) -> list[Address]:
        return sorted(self._subchannels)

    # === calls ===

    def call(self, path: str, message: bytes, timeout_s: float) -> defer.Deferred[bytes]:
        """One unary call on the next ready connection (round robin); `GrpcCallError` when there is no answer."""
        started = self._reactor.seconds()
        result: defer.Deferred[bytes] = defer.Deferred()

        def attempt(retried: bool) -> None:
            remaining = timeout_s - (self._reactor.seconds() - started)
            if remaining <= 0:
                result.errback(GrpcCallError("DEADLINE_EXCEEDED"))
                return
            protocol = self._pick()
            if protocol is None:
                if self._someone_connecting():
                    self._wait_for_connection(lambda: attempt(retried), result.errback, remaining)
                else:
                    result.errback(GrpcCallError("UNAVAILABLE"))
                return
            d = protocol.call(path, message, remaining)

            def failed(failure: Failure) -> None:
                error = failure.value
                if isinstance(error, GrpcCallError) and error.retryable and not retried:
                    attempt(True)  # roomguard never saw it (GOAWAY, refused stream): once more elsewhere
                else:
                    result.errback(failure)

            d.addCallbacks(result.callback, failed)

        attempt(False)
        return result

    def _pick(self) -> H2ClientProtocol | None:
        subchannels = list(self._subchannels.values())
        for i in range(len(subchannels)):
            sub = subchannels[(self._next + i) % len(subchannels)]
            if sub.ready:
                self._next = (self._next + i + 1) % len(subchannels)
                return sub.protocol
        return None

    def _someone_connecting(self) -> bool:
        return (self._resolving and not self._subchannels) or any(s.connecting for s in self._subchannels.values())

    def _wait_for_connection(
        self, fire: Callable[[], None], fail: Callable[[GrpcCallError], None], remaining: float
    ) -> None:
        entry: list[Any] = []

        def give_up() -> None:
            if entry[0] in self._waiting:
                self._waiting.remove(entry[0])
                fail(GrpcCallError("DEADLINE_EXCEEDED"))

        timer = self._reactor.callLater(remaining, give_up)

        def go() -> None:
            if timer.active():
                timer.cancel()
            fire()

        def stop(error: GrpcCallError) -> None:
            if timer.active():
                timer.cancel()
            fail(error)

        entry.append((go, stop))
        self._waiting.append(entry[0])

    def _subchannel_changed(self) -> None:
        """A connection came up, failed or was lost: start waiting calls, or fail them if nothing is trying."""
        if any(sub.ready for sub in self._subchannels.values()):
            waiting, self._waiting = self._waiting, []
            for go, _ in waiting:
                go()
        elif not self._someone_connecting():
            self._fail_waiting()

    def _fail_waiting(self) -> None:
        waiting, self._waiting = self._waiting, []
        for _, stop in waiting:
            stop(GrpcCallError("UNAVAILABLE"))

    # === addresses ===

    def _resolve(self) -> None:
        if self._closed or self._resolving:
            return
        self._resolving = True
        self._last_resolve = self._reactor.seconds()
        d = self._resolver.resolve()
        d.addCallbacks(self._resolved, self._resolve_failed)

    def _resolved(self, addresses: list[Address]) -> None:
        self._resolving = False
        self._resolved_once = True
        if self._closed:
            return
        current = set(self._subchannels)
        wanted = set(addresses)
        if current != wanted:
            for gone in current - wanted:
                self._subchannels.pop(gone).close()
            for new in sorted(wanted - current):
                sub = Subchannel(
                    new,
                    connect=self._dial,
                    protocol_factory=self._protocol_for,
                    reactor=self._reactor,
                    backoff_max_s=self._backoff_max_s,
                    on_change=self._subchannel_changed,
                )
                self._subchannels[new] = sub
            self._on_addresses(sorted(wanted))
            for sub in list(self._subchannels.values()):
                sub.start()
        self._schedule_refresh()
        self._subchannel_changed()

    def _resolve_failed(self, failure: Failure) -> None:
        self._resolving = False
        self._resolved_once = True
        logger.warning(
            "roomguard endpoint could not be resolved (%s); keeping %d known address(es)",
            failure.getErrorMessage() or failure.type.__name__,
            len(self._subchannels),
        )
        self._schedule_refresh(MIN_REFRESH_S if not self._subchannels else self._refresh_s)
        self._subchannel_changed()

    def _schedule_refresh(self, delay: float | None = None) -> None:
        if self._closed or self._resolver.is_static:
            return
        delay = self._refresh_s if delay is None else delay
        if self._refresh is not None and self._refresh.active():
            self._refresh.cancel()
        self._refresh = self._reactor.callLater(delay, self._resolve)

    def _connection_lost(self) -> None:
        """Something changed at one address: ask DNS again soon (a pod may have been replaced)."""
        if self._resolver.is_static or self._closed:
            return
        since = self._reactor.seconds() - self._last_resolve
        if since >= MIN_REFRESH_S:
            self._resolve()
        else:
            self._schedule_refresh(MIN_REFRESH_S - since)

    # === connections ===

    def _protocol_for(self, sub: Subchannel) -> H2ClientProtocol:
        def lost(protocol: H2ClientProtocol) -> None:
            sub.lost(protocol)
            self._connection_lost()

        return H2ClientProtocol(
            reactor=self._reactor,
            authority=self._authority,
            scheme="https" if self._tls is not None else "http",
            metadata=self._metadata,
            on_draining=lost,
            on_lost=lost,
        )

    def _dial(self, address: Address, factory: Factory[Any]) -> defer.Deferred[Any]:
        endpoint: Any
        if address.unix:
            endpoint = UNIXClientEndpoint(
                self._reactor, ("\0" + address.host) if address.abstract else address.host, timeout=CONNECT_TIMEOUT_S
            )
        elif ":" in address.host:
            endpoint = TCP6ClientEndpoint(self._reactor, address.host, address.port, timeout=CONNECT_TIMEOUT_S)
        else:
            endpoint = TCP4ClientEndpoint(self._reactor, address.host, address.port, timeout=CONNECT_TIMEOUT_S)
        if self._tls is not None:
            endpoint = wrapClientTLS(self._tls, endpoint)
        return endpoint.connect(factory)
