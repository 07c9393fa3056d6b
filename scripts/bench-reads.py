#!/usr/bin/env python3
"""The read guard's benchmark (issue #21): the latency a read gains when the proxy asks roomguard, against the same
proxy asking a static auth endpoint (a 204 that decides nothing), for nginx `auth_request` and Envoy `ext_authz`; and
how many decisions per second roomguard's HTTP endpoint answers with its token cache warm.

    cargo build --release --locked --bin roomguard --example loadbench
    .venv/bin/python scripts/bench-reads.py [--rounds 5] [--calls 2000]

Every process on loopback: a static upstream standing for Synapse (nginx answering a small JSON page), nginx and
Envoy twice each (the shipped configurations of deploy/, rendered by tests/proxies/harness.py: one asking roomguard,
one asking the no-op of examples/loadbench, which answers every HTTP request 204 and every ext_authz Check OK),
roomguard (release build, memory counters, decision log to a file, its token resolved once by a stand-in `whoami`),
and the Rust client of examples/loadbench (`http-latency`, `http-load`). The read is a page of a room's history with
an access token: the path nginx and Envoy send to their auth service, the kind roomguard counts. The shipped budgets
would refuse a benchmark's thousands of reads, so roomguard serves a copy of the policy whose read budgets are
raised to a billion (the same rules, the same cost).

Latency: one request at a time, the four proxies in turn call by call (the order rotating), so the machine's drift
falls on all alike; per round the median of each; the figure is the median over rounds and the ratio of the guarded
proxy to the same proxy with the static endpoint. Throughput: the HTTP endpoints straight, 16 kept-alive
connections, rounds alternating roomguard and the no-op.
"""

from __future__ import annotations

import argparse
import http.server
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests/proxies"))

import harness  # noqa: E402

TOKEN = "syt_YmVuY2g_benchmarktoken_0000"
USER = "@bench:agent.tchap.gouv.fr"
READ = "/_matrix/client/v3/rooms/%21forum%3Aagent.tchap.gouv.fr/messages?dir=b&limit=20"


class Whoami(http.server.BaseHTTPRequestHandler):
    """The stand-in homeserver: `whoami` for the benchmark's token (asked once: the answer is then cached)."""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        known = self.headers.get("Authorization") == f"Bearer {TOKEN}"
        body = json.dumps({"user_id": USER} if known else {"errcode": "M_UNKNOWN_TOKEN"}).encode()
        self.send_response(200 if known else 401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def bench_policy(workdir: Path) -> Path:
    """The shipped policy with every read budget raised to a billion."""
    policies = workdir / "policies"
    shutil.copytree(REPO / "policies", policies, ignore=shutil.ignore_patterns("tests"))
    rules = policies / "rules.csv"
    lines = []
    for line in rules.read_text().splitlines():
        if line.startswith("p, read."):
            line = re.sub(r">= \d+", ">= 1000000000", line)
        lines.append(line)
    rules.write_text("\n".join(lines) + "\n")
    return policies


def upstream(workdir: Path) -> tuple[subprocess.Popen, str]:
    """nginx standing for Synapse: a small JSON page for every request."""
    port = harness.free_port()
    (workdir / "tmp").mkdir(parents=True, exist_ok=True)
    conf = workdir / "upstream.conf"
    conf.write_text(
        f"""
worker_processes 1;
pid {workdir}/upstream.pid;
error_log {workdir}/upstream-error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {workdir}/tmp/body;
    proxy_temp_path {workdir}/tmp/proxy;
    fastcgi_temp_path {workdir}/tmp/fastcgi;
    uwsgi_temp_path {workdir}/tmp/uwsgi;
    scgi_temp_path {workdir}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port};
        keepalive_requests 1000000;
        location / {{
            default_type application/json;
            return 200 '{{"chunk":[],"start":"t1","end":"t2"}}';
        }}
    }}
}}
"""
    )
    proc = subprocess.Popen(
        [harness.nginx_binary(), "-p", str(workdir), "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    harness.wait_for_port(port, proc, None)
    return proc, f"127.0.0.1:{port}"


def loadbench(args: list[str]) -> dict:
    out = subprocess.run(
        [str(REPO / "target/release/examples/loadbench"), *args], capture_output=True, text=True
    )
    if out.returncode != 0:
        sys.exit(f"loadbench {args[0]} failed: {out.stderr}")
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=2000, help="requests per proxy per round, one at a time")
    parser.add_argument("--duration-ms", type=int, default=3000, help="each throughput window")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()

    roomguard = REPO / "target/release/roomguard"
    for binary in (roomguard, REPO / "target/release/examples/loadbench"):
        if not binary.exists():
            sys.exit(f"{binary} is missing: cargo build --release --locked --bin roomguard --example loadbench")
    envoy = harness.envoy_binary()
    if not envoy or not harness.nginx_binary():
        sys.exit("nginx and envoy are needed (scripts/test installs both)")

    work = Path(tempfile.mkdtemp(prefix="roomguard-bench-reads-"))
    procs: list[subprocess.Popen] = []
    stops = []
    try:
        homeserver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Whoami)
        threading.Thread(target=homeserver.serve_forever, daemon=True).start()
        stops.append(homeserver.shutdown)

        grpc_port, http_port = harness.free_port(), harness.free_port()
        rg = subprocess.Popen(
            [str(roomguard), "serve", "--listen", f"127.0.0.1:{grpc_port}", "--policies", str(bench_policy(work)),
             "--decision-log", str(work / "decisions.ndjson"), "--reads-http-listen", f"127.0.0.1:{http_port}",
             "--reads-homeserver-url", f"http://127.0.0.1:{homeserver.server_address[1]}"],
            stdout=subprocess.DEVNULL,
            stderr=open(work / "roomguard.log", "wb"),
        )
        procs.append(rg)
        harness.wait_for_port(http_port, rg, work / "roomguard.log", timeout=30)
        noop_grpc, noop_http = harness.free_port(), harness.free_port()
        noop = subprocess.Popen(
            [str(REPO / "target/release/examples/loadbench"), "noop", "--listen", f"127.0.0.1:{noop_grpc}",
             "--http", f"127.0.0.1:{noop_http}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs.append(noop)
        harness.wait_for_port(noop_http, noop, None)
        harness.wait_for_port(noop_grpc, noop, None)

        for name in ("upstream", "nginx-rg", "nginx-noop", "envoy-rg", "envoy-noop"):
            (work / name).mkdir()
        synapse_proc, synapse = upstream(work / "upstream")
        procs.append(synapse_proc)
        proxies = {
            "nginx+roomguard": harness.Nginx(work / "nginx-rg", synapse, f"127.0.0.1:{http_port}", "open"),
            "nginx+204": harness.Nginx(work / "nginx-noop", synapse, f"127.0.0.1:{noop_http}", "open"),
            "envoy+roomguard": harness.Envoy(envoy, work / "envoy-rg", synapse, f"127.0.0.1:{grpc_port}", True),
            "envoy+ok": harness.Envoy(envoy, work / "envoy-noop", synapse, f"127.0.0.1:{noop_grpc}", True),
        }
        for name, proxy in proxies.items():
            proxy.start()
            stops.append(proxy.stop)
            answer = proxy.request("GET", READ, headers={"Authorization": f"Bearer {TOKEN}"})
            assert answer.status == 200, (name, answer.status, answer.body)

        urls = {name: f"http://127.0.0.1:{proxy.port}{READ}" for name, proxy in proxies.items()}
        p50: dict[str, list[int]] = {name: [] for name in urls}
        p99: dict[str, list[int]] = {name: [] for name in urls}
        rate: dict[str, list[float]] = {"roomguard /authz": [], "no-op 204": []}
        authz_headers = [
            "--header", f"Authorization: Bearer {TOKEN}",
            "--header", f"X-Original-URI: {READ}",
            "--header", "X-Original-Method: GET",
        ]
        for round_ in range(args.rounds):
            figures = loadbench(
                ["http-latency", "--calls", str(args.calls), "--header", f"Authorization: Bearer {TOKEN}",
                 *[a for url in urls.values() for a in ("--target", url)]]
            )
            for name, url in urls.items():
                p50[name].append(figures[url]["p50_us"])
                p99[name].append(figures[url]["p99_us"])
                assert set(figures[url]["statuses"]) == {"200"}, (name, figures[url])
            order = [("roomguard /authz", http_port), ("no-op 204", noop_http)]
            for name, port in order if round_ % 2 == 0 else reversed(order):
                load = loadbench(
                    ["http-load", "--target", f"http://127.0.0.1:{port}/authz", "--connections",
                     str(args.connections), "--duration-ms", str(args.duration_ms), *authz_headers]
                )
                assert set(load["statuses"]) == {"204"}, (name, load)
                rate[name].append(load["throughput"])
            print(f"round {round_ + 1}/{args.rounds}: " + ", ".join(
                f"{name} p50 {p50[name][-1]} us" for name in urls
            ), file=sys.stderr)

        med = {name: statistics.median(values) for name, values in p50.items()}
        print(f"\nlatency of a read, one at a time ({args.rounds} rounds x {args.calls} requests each, alternated):")
        print("| proxy | p50 (median of rounds) | p99 (median of rounds) | ratio to the same proxy with a static auth |")
        print("|---|---|---|---|")
        for name, base in [("nginx+roomguard", "nginx+204"), ("nginx+204", None),
                           ("envoy+roomguard", "envoy+ok"), ("envoy+ok", None)]:
            ratio = f"{med[name] / med[base]:.2f}x" if base else "1.00x"
            print(f"| {name} | {med[name]:.0f} us | {statistics.median(p99[name]):.0f} us | {ratio} |")
        print(f"\ndecisions per second of the HTTP endpoint, token cache warm ({args.connections} connections, "
              f"{args.duration_ms} ms windows, {args.rounds} rounds alternated):")
        for name, values in rate.items():
            print(f"| {name} | {statistics.median(values):,.0f}/s (min {min(values):,.0f}, max {max(values):,.0f}) |")
        lines = sum(1 for _ in open(work / "decisions.ndjson"))
        print(f"\nroomguard logged {lines:,} decisions; work directory {work}", file=sys.stderr)
    finally:
        for stop in reversed(stops):
            try:
                stop()
            except Exception as err:  # noqa: BLE001 (stop what can be stopped)
                print(f"stopping: {err}", file=sys.stderr)
        for proc in procs:
            harness.stop_process(proc)


if __name__ == "__main__":
    main()
