#!/usr/bin/env python3
"""How long `roomguard audit` takes next to the reads it cannot avoid, and how much memory it needs.

Starts a Synapse on loopback (synapse-module/tests/e2e/harness.py: sqlite, rate limits off, no roomguard module),
seeds ROOMS public unencrypted rooms of EVENTS ordinary messages each (about one in a hundred marked) and FILES files
(text, PDF and DOCX in turn, one in 23 marked), then runs ROUNDS rounds, each of:

  1. the baseline, scripts/audit-baseline.py: every room's history paged through with the admin API and every file
     downloaded, CONCURRENCY rooms at once, and nothing else;
  2. `roomguard audit --rooms all --format ndjson --out /dev/null --progress none --concurrency CONCURRENCY`.

and prints the median wall time of each (process start to exit), the ratio (the target is 1.3 x at most) and the
audit's peak resident memory (the kernel's ru_maxrss for that child, i.e. its VmHWM). Not a test: nothing is asserted.

    .venv/bin/python scripts/bench-audit.py                      # 20 rooms x 1,000 events, 200 files, 3 rounds
    .venv/bin/python scripts/bench-audit.py --rooms 40 --events 2000 --files 400 --rounds 5 --concurrency 8

ROOMGUARD_BIN names the binary (default target/release/roomguard if it exists, else target/debug/roomguard: build
with `cargo build --release` first for figures worth quoting). `--baseline-only` seeds and runs the baseline alone
(to check the seeding before an audit binary exists). Seeding takes minutes (Synapse on sqlite writes one event at a
time, some 25 to 50 a second on 2 CPUs): `--workdir DIR` keeps the seeded homeserver there and a later run with the
same `--workdir` and shape reuses it.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "audit_e2e"))

import world  # noqa: E402  (tests/audit_e2e/world.py: the harness, the documents, the seeding)


#: The suite's settings, and presence off: each message sent would otherwise also write the sender's presence, which
#: slows the seeding (sqlite has one writer) and is no part of what an audit reads.
BENCH_SYNAPSE_CONFIG = {**world.SYNAPSE_CONFIG, "presence": {"enabled": False}}


def binary() -> Path:
    named = os.environ.get("ROOMGUARD_BIN")
    if named:
        return Path(named)
    release = REPO / "target" / "release" / "roomguard"
    return release if release.is_file() else REPO / "target" / "debug" / "roomguard"


def timed(command: list[str], *, stdout=subprocess.DEVNULL) -> tuple[float, int, int, str]:
    """Runs `command`; (wall seconds, exit code, peak RSS in KiB, stderr's end)."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(command, stdout=stdout, stderr=err)
        world.harness._register_pid(f"bench-{proc.pid}", proc.pid)
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            world.harness._unregister_pid(f"bench-{proc.pid}")
        seconds = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        tail = err.read()[-2000:].decode(errors="replace")
    return seconds, proc.returncode, usage.ru_maxrss, tail


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--events", type=int, default=1000, help="messages per room")
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4, help="rooms at once, for both")
    parser.add_argument("--seed-threads", type=int, default=16)
    parser.add_argument("--baseline-only", action="store_true")
    parser.add_argument("--workdir", type=Path, help="where the homeserver lives (default: a temporary directory)")
    args = parser.parse_args()

    roomguard = binary()
    if not args.baseline_only:
        check = subprocess.run([str(roomguard), "audit", "--help"], capture_output=True, text=True)
        if check.returncode != 0:
            print(f"bench-audit: {roomguard} has no `audit` subcommand (exit {check.returncode})", file=sys.stderr)
            return 2

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="roomguard-bench-audit."))
    workdir.mkdir(parents=True, exist_ok=True)
    shape = {"rooms": args.rooms, "events": args.events, "files": args.files}
    record = workdir / "seeded.json"
    previous = json.loads(record.read_text()) if record.is_file() else None
    if previous is not None and previous["shape"] != shape:
        print(f"bench-audit: {workdir} holds a homeserver seeded as {previous['shape']}, not {shape}",
              file=sys.stderr)
        return 2
    synapse = world.harness.Synapse(workdir=workdir / "synapse", module_config=None, name="synapse-bench",
                                    extra_config=BENCH_SYNAPSE_CONFIG, module_log_level="INFO")
    if previous is not None:
        synapse.port = previous["port"]  # the homeserver.yaml written then listens there
    try:
        print(f"starting Synapse in {workdir} ...", flush=True)
        synapse.start()
        token_file = workdir / "admin.token"
        if previous is None:
            admin = synapse.register("bench.admin", admin=True)
            token_file.write_text(admin.token)
            token_file.chmod(0o600)
            print(f"seeding {args.rooms} rooms x {args.events} events and {args.files} files ...", flush=True)
            seeded = world.seed_bulk(synapse, rooms=args.rooms, events_per_room=args.events, files=args.files,
                                     threads=args.seed_threads, log=lambda line: print(line, flush=True))
            record.write_text(json.dumps({"shape": shape, "port": synapse.port, "seeded": seeded}))
            print(f"seeded in {seeded['seconds']} s: {seeded['events']} events ({seeded['marked_events']} marked), "
                  f"{seeded['files']} files ({seeded['marked_files']} marked, {seeded['bytes']} bytes)", flush=True)
        else:
            seeded = previous["seeded"]
            print(f"reusing the homeserver seeded in {workdir} ({seeded['seconds']} s then)", flush=True)

        baseline_cmd = [sys.executable, str(REPO / "scripts" / "audit-baseline.py"), "--homeserver", synapse.base_url,
                        "--admin-token-file", str(token_file), "--rooms", "all",
                        "--concurrency", str(args.concurrency), "--json"]
        audit_cmd = [str(roomguard), "audit", "--homeserver", synapse.base_url, "--admin-token-file", str(token_file),
                     "--policies", str(REPO / "policies"), "--rooms", "all", "--format", "ndjson", "--out", "/dev/null",
                     "--progress", "none", "--concurrency", str(args.concurrency)]
        baseline, audit, rss, read = [], [], [], None
        for n in range(1, args.rounds + 1):
            out = workdir / "baseline.json"
            with open(out, "wb") as f:
                seconds, code, _, tail = timed(baseline_cmd, stdout=f)
            if code != 0:
                print(f"baseline failed (exit {code}):\n{tail}", file=sys.stderr)
                return 1
            read = out.read_text().strip()
            baseline.append(seconds)
            line = f"round {n}: baseline {seconds:.2f} s ({read})"
            if not args.baseline_only:
                seconds, code, maxrss, tail = timed(audit_cmd)
                # 1: findings remain (the seeded markings); anything else is a failed run.
                if code not in (0, 1):
                    print(f"audit failed (exit {code}):\n{tail}", file=sys.stderr)
                    return 1
                audit.append(seconds)
                rss.append(maxrss)
                line += f", audit {seconds:.2f} s (exit {code}, peak RSS {maxrss / 1024:.0f} MiB)"
            print(line, flush=True)

        found = None
        if not args.baseline_only:
            # Once more, untimed, with the report kept: what the timed runs found.
            report = workdir / "audit.ndjson"
            _, code, _, tail = timed([*audit_cmd[:audit_cmd.index("--out") + 1], str(report),
                                      *audit_cmd[audit_cmd.index("--out") + 2:]])
            totals = json.loads(report.read_text().splitlines()[-1]) if report.is_file() else {}
            found = (code, totals.get("findings"), totals.get("events_read"), totals.get("files_read"))
        synapse_version = importlib.metadata.version("matrix-synapse")
        read = json.loads(read)
        print()
        print("```text")
        print(f"scripts/bench-audit.py --rooms {args.rooms} --events {args.events} --files {args.files} "
              f"--rounds {args.rounds} --concurrency {args.concurrency}   ({time.strftime('%Y-%m-%d')})")
        print(f"machine:   {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
              f"Synapse {synapse_version} (sqlite) on loopback")
        print(f"seeded:    {seeded['rooms']} public unencrypted rooms, {seeded['events']} messages "
              f"({seeded['marked_events']} marked), {seeded['files']} files of {seeded['bytes'] / 1e6:.1f} MB "
              f"({seeded['marked_files']} marked)")
        print(f"baseline:  median {statistics.median(baseline):.2f} s  (rounds: "
              f"{', '.join(f'{s:.2f}' for s in baseline)})  admin API reads only: {read['events']} events in "
              f"{read['pages']} pages, {read['files']} files, {read['bytes']} bytes")
        if audit:
            ratio = statistics.median(audit) / statistics.median(baseline)
            shown = roomguard.relative_to(REPO) if roomguard.is_relative_to(REPO) else roomguard
            print(f"audit:     median {statistics.median(audit):.2f} s  (rounds: "
                  f"{', '.join(f'{s:.2f}' for s in audit)})  {shown}")
            print(f"ratio:     {ratio:.2f} x the baseline (target: <= 1.30 x)")
            print(f"peak RSS:  {max(rss) / 1024:.0f} MiB (audit, ru_maxrss; rounds: "
                  f"{', '.join(f'{r / 1024:.0f}' for r in rss)} MiB)")
            code, findings, events, files = found
            print(f"found:     {findings} findings (seeded: {seeded['marked_events'] + seeded['marked_files']} "
                  f"marked), {events} events and {files} files read, exit {code}")
        print("```")
        return 0
    finally:
        synapse.stop()


if __name__ == "__main__":
    sys.exit(main())
