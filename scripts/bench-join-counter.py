#!/usr/bin/env python3
"""Join decision latency with the Redis counter vs the memory one, measured side by side in one run (issue #13).

Starts a real redis-server and two release roomguard processes on loopback (one with `counters.backend = "memory"`,
one with `"redis"`), then, round after round, sends the same number of public joins to each in turn, one at a time
(each counts: the Redis one makes its two round trips). Prints, per backend, the median and 99th percentile of the
server's own latency for the call (`latency_us` of the decision log: admission to answer, Redis round trips
included) and of the latency the client saw, and the ratios redis / memory.

    cargo build --release --bin roomguard
    .venv/bin/python scripts/bench-join-counter.py [--rounds 5] [--joins 1000]
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests/python"))

from replicas import RedisServer, Replica, public_join  # noqa: E402


def stubs():
    """Python stubs from proto/, as the tests make them."""
    import grpc_tools
    from grpc_tools import protoc

    out = tempfile.mkdtemp(prefix="roomguard-stubs-")
    include = str(Path(grpc_tools.__file__).parent / "_proto")
    rc = protoc.main(["protoc", f"-I{REPO / 'proto'}", f"-I{include}", f"--python_out={out}",
                      f"--grpc_python_out={out}", str(REPO / "proto/roomguard/v1/policy.proto")])
    assert rc == 0, "protoc failed"
    sys.path.insert(0, out)
    from roomguard.v1 import policy_pb2, policy_pb2_grpc

    return policy_pb2, policy_pb2_grpc


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def server_latencies(replica, skip):
    """`latency_us` of every join in the replica's decision log after the first `skip` lines."""
    lines = replica.decision_log.read_text().splitlines()[skip:]
    return [json.loads(line)["latency_us"] for line in lines if '"CheckRoomJoin"' in line]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--roomguard-bin", default=str(REPO / "target/release/roomguard"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--joins", type=int, default=1000, help="joins per backend per round")
    args = parser.parse_args()
    pb = stubs()
    redis = RedisServer(persistent=False)
    policies = REPO / "policies"
    servers = {"memory": Replica(args.roomguard_bin, policies, None),
               "redis": Replica(args.roomguard_bin, policies, redis.url)}
    client_us = {name: [] for name in servers}
    server_us = {name: [] for name in servers}
    logged = {name: 0 for name in servers}
    try:
        stub = {name: pb[1].PolicyServiceStub(s.channel) for name, s in servers.items()}
        for name in servers:  # warm-up: connections, the policy's first decision
            for n in range(50):
                stub[name].CheckRoomJoin(public_join(pb, f"@warmup{n}:agent.tchap.gouv.fr", n), timeout=5)
        for round_ in range(args.rounds):
            for name, server in servers.items():
                time.sleep(0.1)  # the decision log is written in batches: what was logged so far is on disk
                logged[name] = len(server.decision_log.read_text().splitlines())
                for n in range(args.joins):
                    # Ten joins per user: every join counts and none reaches the limit.
                    request = public_join(pb, f"@bench{round_}-{n // 10}:agent.tchap.gouv.fr", n)
                    started = time.perf_counter()
                    decision = stub[name].CheckRoomJoin(request, timeout=5).decision
                    client_us[name].append((time.perf_counter() - started) * 1e6)
                    assert decision.effect == pb[0].EFFECT_ALLOW
                time.sleep(0.1)
                server_us[name] += server_latencies(server, logged[name])
        print(f"{args.rounds} rounds x {args.joins} public joins per backend, one at a time, interleaved\n")
        print("| backend | server latency p50 | p99 | client latency p50 | p99 |")
        print("|---|---|---|---|---|")
        for name in servers:
            s, c = server_us[name], client_us[name]
            print(f"| {name} | {statistics.median(s):.0f} us | {percentile(s, 0.99):.0f} us "
                  f"| {statistics.median(c):.0f} us | {percentile(c, 0.99):.0f} us |")
        ratio = statistics.median(server_us["redis"]) / statistics.median(server_us["memory"])
        client_ratio = statistics.median(client_us["redis"]) / statistics.median(client_us["memory"])
        print(f"\nredis / memory: server p50 {ratio:.2f}x, client p50 {client_ratio:.2f}x")
        assert servers["redis"].metric("roomguard_counter_backend_up") == 1
    finally:
        for server in servers.values():
            server.stop()
        redis.close()


if __name__ == "__main__":
    main()
