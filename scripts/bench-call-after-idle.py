#!/usr/bin/env python3
"""One gRPC call after an idle gap, roomguard against the no-op server of the same proto, from a Python grpcio
client (the Synapse module's client), interleaved in one run (issue #12: where the module's added latency goes).

A homeserver's sends are spaced out: between two of them every thread involved goes idle, and the next call pays for
waking them (client threads, server workers, and on a VM the virtual CPUs). This measures a `CheckMessageSend` made
after `--gap-ms` of idle against: the no-op server (`loadbench noop`: tonic, the same proto, answers a constant),
roomguard, and roomguard on one tokio worker; then the same back to back (`--gap-ms 0`). What roomguard adds is its
column minus the no-op's.

    cargo build --release --bin roomguard --example loadbench
    .venv/bin/python scripts/bench-call-after-idle.py [--gap-ms 10] [--calls 300]
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests/python"))
sys.path.insert(0, str(REPO / "scripts"))

import grpc  # noqa: E402
from conftest import free_port  # noqa: E402

from importlib import import_module  # noqa: E402

stubs = import_module("bench-join-counter").stubs


def start(command, env=None):
    port = free_port()
    proc = subprocess.Popen([*command(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, **(env or {})})
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    grpc.channel_ready_future(channel).result(timeout=30)
    return proc, channel


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target-dir", default=os.environ.get("CARGO_TARGET_DIR", str(REPO / "target")))
    parser.add_argument("--gap-ms", type=float, default=10.0)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    release = Path(args.target_dir) / "release"
    pb, grpc_pb = stubs()
    roomguard = lambda port: [str(release / "roomguard"), "serve", "--listen", f"127.0.0.1:{port}",  # noqa: E731
                              "--policies", str(REPO / "policies"), "--decision-log", "off"]
    servers = {
        "no-op": start(lambda port: [str(release / "examples/loadbench"), "noop", "--listen", f"127.0.0.1:{port}"]),
        "roomguard": start(roomguard),
        "roomguard, 1 worker": start(roomguard, {"TOKIO_WORKER_THREADS": "1"}),
    }
    request = pb.CheckMessageSendRequest(
        sender=pb.Subject(user_id="@alice:agent.tchap.gouv.fr"),
        room=pb.Room(room_id="!room:agent.tchap.gouv.fr", join_rule=pb.JOIN_RULE_INVITE,
                     history_visibility=pb.HISTORY_VISIBILITY_SHARED, encrypted=True),
        message=pb.Message(event_type="m.room.encrypted"),
    )
    try:
        for gap in (args.gap_ms / 1000, 0.0):
            took = {name: [] for name in servers}
            for _ in range(args.calls):
                for name, (_, channel) in servers.items():
                    stub = grpc_pb.PolicyServiceStub(channel)
                    time.sleep(gap)
                    started = time.perf_counter()
                    stub.CheckMessageSend(request, timeout=5)
                    took[name].append((time.perf_counter() - started) * 1e6)
            base = statistics.median(took["no-op"])
            print(f"\n{args.calls} calls per server, {gap * 1000:g} ms idle before each, interleaved")
            print("| server | p50 | p90 | p50 - no-op |")
            print("|---|---|---|---|")
            for name, samples in took.items():
                p50 = statistics.median(samples)
                print(f"| {name} | {p50:.0f} us | {sorted(samples)[int(len(samples) * 0.9)]:.0f} us "
                      f"| {p50 - base:+.0f} us |")
    finally:
        for proc, channel in servers.values():
            channel.close()
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=15)


if __name__ == "__main__":
    main()
