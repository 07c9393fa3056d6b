"""The cost of one `CheckMessageSend` from the reactor's point of view, by the way the call is made.

Starts a roomguard, runs a real Twisted reactor (the default one, epoll on Linux, as Synapse's) and, interleaved call by
call, measures the time from asking to having the answer on the reactor thread for:

* `module`: the module's own `PolicyClient.check_message_send` (whatever it does now);
* `pool`: a blocking grpc call in a thread of a Twisted thread pool, answer handed back with `callFromThread`;
* `future`: grpc's non-blocking `.future()`, its done-callback handing the answer back with `callFromThread`;
* `blocking`: the blocking call on the reactor thread itself: the floor (grpc plus roomguard), never acceptable in a
  homeserver, since it stalls the reactor for the whole call.

    python bench/client_paths.py --roomguard-bin ../target/release/roomguard -n 2000

Needs the `test` extra installed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MODULE_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(MODULE_ROOT))

import grpc  # noqa: E402
from twisted.internet import defer  # noqa: E402
from twisted.python.threadpool import ThreadPool  # noqa: E402

from synapse_roomguard._proto.roomguard.v1 import policy_pb2 as pb  # noqa: E402
from synapse_roomguard._proto.roomguard.v1 import policy_pb2_grpc as pb_grpc  # noqa: E402
from synapse_roomguard.client import PolicyClient  # noqa: E402
from tests.e2e.harness import Roomguard, copy_policies_with_users  # noqa: E402


def request(i: int) -> pb.CheckMessageSendRequest:
    return pb.CheckMessageSendRequest(
        request_id=f"$bench{i}",
        sender=pb.Subject(user_id="@alice:agent.finances.tchap.gouv.fr", power_level=100),
        room=pb.Room(
            room_id="!bench:agent.finances.tchap.gouv.fr",
            join_rule=pb.JOIN_RULE_PUBLIC,
            history_visibility=pb.HISTORY_VISIBILITY_SHARED,
        ),
        message=pb.Message(event_type="m.room.message", msgtype="m.text", body=f"Message ordinaire numéro {i}"),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--roomguard-bin", type=Path, required=True)
    parser.add_argument("--policies", type=Path, default=MODULE_ROOT.parent / "policies")
    parser.add_argument("-n", type=int, default=2000, help="calls per way (default 2000)")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument(
        "--gap-ms",
        type=float,
        default=10.0,
        help="idle time between two calls (default 10, about what Synapse spends on a send besides the check): "
        "back-to-back calls find every thread on the way still awake and measure less than a homeserver sees",
    )
    args = parser.parse_args()

    from twisted.internet import reactor as _reactor

    reactor: Any = _reactor
    with tempfile.TemporaryDirectory(prefix="roomguard-client-bench-") as tmp:
        work = Path(tmp)
        roomguard = Roomguard(
            binary=args.roomguard_bin.resolve(),
            policies=copy_policies_with_users(args.policies, work / "policies", []),
            workdir=work,
        )
        roomguard.start()
        channel = grpc.insecure_channel(roomguard.endpoint)
        stub = pb_grpc.PolicyServiceStub(channel)
        pool = ThreadPool(minthreads=0, maxthreads=16, name="bench-pool")
        pool.start()
        module_client = PolicyClient(
            roomguard.endpoint, timeout_s=0.2, reconnect_backoff_max_s=1.0, reactor=reactor, max_concurrent_calls=16
        )

        def via_module(req: Any) -> defer.Deferred:
            return module_client.check_message_send(req)

        def via_pool(req: Any) -> defer.Deferred:
            d: defer.Deferred = defer.Deferred()

            def done(ok: bool, value: Any) -> None:
                reactor.callFromThread(d.callback if ok else d.errback, value)

            pool.callInThreadWithCallback(done, lambda: stub.CheckMessageSend(req, timeout=0.2))
            return d

        def via_future(req: Any) -> defer.Deferred:
            d: defer.Deferred = defer.Deferred()
            future = stub.CheckMessageSend.future(req, timeout=0.2)
            future.add_done_callback(lambda f: reactor.callFromThread(d.callback, f.result()))
            return d

        def via_blocking(req: Any) -> defer.Deferred:
            return defer.succeed(stub.CheckMessageSend(req, timeout=0.2))

        ways: dict[str, Callable[[Any], defer.Deferred]] = {
            "module": via_module,
            "pool": via_pool,
            "future": via_future,
            "blocking": via_blocking,
        }
        samples: dict[str, list[float]] = {name: [] for name in ways}

        @defer.inlineCallbacks
        def run() -> Any:
            try:
                for i in range(args.warmup + args.n):
                    for name, way in ways.items():
                        req = request(i)
                        started = time.perf_counter()
                        response = yield way(req)
                        elapsed = time.perf_counter() - started
                        assert response.decision.effect == pb.EFFECT_ALLOW, response
                        if i >= args.warmup:
                            samples[name].append(elapsed * 1e6)
                        # Let every thread on the way go idle between calls, as between two client requests.
                        yield deferLater(args.gap_ms / 1000)
            finally:
                reactor.stop()

        def deferLater(delay: float) -> defer.Deferred:  # noqa: N802 - Twisted's name
            from twisted.internet import task

            return task.deferLater(reactor, delay, lambda: None)

        reactor.callWhenRunning(run)
        try:
            reactor.run()
        finally:
            module_client.close()
            pool.stop()
            channel.close()
            roomguard.stop()

    print(
        f"{args.n} calls per way after {args.warmup} warm-up rounds, interleaved, {args.gap_ms:g} ms apart; "
        "microseconds from asking to the answer on the reactor"
    )
    print()
    print("| way | median µs | p90 µs | p99 µs |")
    print("|---|---|---|---|")
    for name, values in samples.items():
        ordered = sorted(values)
        print(
            f"| {name} | {statistics.median(values):7.0f} | {ordered[int(0.9 * (len(ordered) - 1))]:7.0f} "
            f"| {ordered[int(0.99 * (len(ordered) - 1))]:7.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
