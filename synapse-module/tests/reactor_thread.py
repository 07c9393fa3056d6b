"""The real Twisted reactor, running in a thread of its own for the whole test session, as Synapse runs it.

The module's client lives on the reactor (its calls are written and answered there), so the tests drive it the way
Synapse does: every call to the client is made on the reactor thread (`wait`, `start`, `run`), and the test thread
only waits for the outcome. The reactor is started once, at the first use, and never stopped (a Twisted reactor
cannot be restarted); its thread is a daemon.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from twisted.internet import defer
from twisted.internet import reactor as _reactor
from twisted.internet.threads import blockingCallFromThread
from twisted.python.failure import Failure

#: The global reactor (Synapse installs its own the same way); typed loosely like the module does.
REACTOR: Any = _reactor
_started = threading.Lock()
_thread: threading.Thread | None = None


def _ensure_running() -> None:
    global _thread
    with _started:
        if _thread is None:
            _thread = threading.Thread(
                target=REACTOR.run, kwargs={"installSignalHandlers": False}, name="reactor", daemon=True
            )
            _thread.start()


class ReactorThread:
    """Hands work to the reactor thread and waits for it."""

    def __init__(self) -> None:
        _ensure_running()
        #: What the client under test gets as its `reactor`.
        self.reactor = REACTOR

    def run(self, f: Callable[..., Any], *args: Any) -> Any:
        """`f(*args)` on the reactor thread; its result (a Deferred's result once it fires)."""
        return blockingCallFromThread(REACTOR, f, *args)

    def start(self, f: Callable[..., Any], *args: Any) -> Future[tuple[Any, float]]:
        """Start `f(*args)` (which returns a Deferred) on the reactor thread now; the future of what `wait` returns."""
        outcome: Future[tuple[Any, float]] = Future()
        started = time.monotonic()

        def go() -> None:
            try:
                d = defer.maybeDeferred(f, *args)
            except Exception as err:  # pragma: no cover - maybeDeferred catches
                outcome.set_result((err, 0.0))
                return

            def done(result: Any) -> None:
                value = result.value if isinstance(result, Failure) else result
                outcome.set_result((value, time.monotonic() - started))

            d.addBoth(done)

        REACTOR.callFromThread(go)
        return outcome

    def wait(
        self, f: Callable[..., Any] | Future[tuple[Any, float]], *args: Any, limit_s: float = 15.0
    ) -> tuple[Any, float]:
        """(result, or the exception it failed with; seconds until it fired) of `f(*args)` run on the reactor, or of a
        call begun with `start`."""
        outcome = f if isinstance(f, Future) else self.start(f, *args)
        return outcome.result(timeout=limit_s)
