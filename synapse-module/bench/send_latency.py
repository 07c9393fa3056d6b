"""What the module adds to a message send on a real homeserver.

Starts one roomguard and two Synapses on loopback (SQLite, same configuration, one with the module and one without),
creates a public forum on each, then sends N plain messages to each, interleaved (one to each in turn, the order
swapped every pair) so that both see the same machine conditions, then N marked messages (refused) to the one with the
module, and prints the client-observed latency of `PUT /rooms/{id}/send/m.room.message/{txn}`. It does that `--runs`
times, each run with fresh processes, and ends with the added median of every run:

    python bench/send_latency.py --roomguard-bin ../target/release/roomguard --policies ../policies -n 500 --runs 3

The module logs at INFO, as in production (the test suite runs it at DEBUG). Needs the `test` extra installed
(`pip install -e '.[test]'`). Sends are sequential: this measures latency, not load.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
from pathlib import Path

MODULE_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(MODULE_ROOT))

from tests.e2e.harness import Client, Roomguard, Synapse, copy_policies_with_users  # noqa: E402


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def summary(samples: list[float]) -> str:
    ms = [s * 1000 for s in samples]
    return (
        f"| {statistics.median(ms):6.2f} | {percentile(ms, 0.90):6.2f} | {percentile(ms, 0.99):6.2f} "
        f"| {statistics.fmean(ms):6.2f} |"
    )


def send(client: Client, room: str, text: str, expect: int, allowed: tuple[int, ...] = ()) -> float:
    """Seconds the send took; negative if it answered one of the `allowed` other statuses."""
    resp = client.send_text(room, text)
    if resp.status in allowed:
        return -resp.seconds
    if resp.status != expect:
        raise SystemExit(f"unexpected {resp.status} from {client.base_url}: {resp.body}")
    return resp.seconds


def one_run(args: argparse.Namespace) -> dict[str, list[float]]:
    """Fresh roomguard and Synapses; the samples (seconds) of the three rows."""
    with tempfile.TemporaryDirectory(prefix="roomguard-bench-", dir=args.tmpdir) as tmp:
        work = Path(tmp)
        roomguard = Roomguard(
            binary=args.roomguard_bin.resolve(),
            policies=copy_policies_with_users(args.policies, work / "policies", []),
            workdir=work,
        )
        with_module = Synapse(
            workdir=work / "with",
            module_config={"endpoint": roomguard.endpoint},
            name="with",
            module_log_level="INFO",
        )
        without = Synapse(workdir=work / "without", module_config=None, name="without")
        try:
            roomguard.start()
            with_module.start()
            without.start()
            users = {"with": with_module.register("alice"), "without": without.register("alice")}
            rooms = {k: c.create_room_id(preset="public_chat", name="Bench") for k, c in users.items()}

            for i in range(args.warmup):
                for key in ("with", "without"):
                    send(users[key], rooms[key], f"échauffement {i}", 200)

            samples: dict[str, list[float]] = {"with": [], "without": [], "denied": [], "fail_open": []}
            for i in range(args.n):
                # Swap who goes first every pair: neither homeserver always runs right after the other.
                for key in ("with", "without") if i % 2 == 0 else ("without", "with"):
                    samples[key].append(send(users[key], rooms[key], f"Message ordinaire numéro {i}", 200))
            for i in range(args.n):
                # A 200 here is a send that got no decision in time (the module fails open): counted, not fatal.
                seconds = send(users["with"], rooms["with"], f"DIFFUSION RESTREINTE {i}", 403, allowed=(200,))
                samples["denied" if seconds > 0 else "fail_open"].append(abs(seconds))
        finally:
            with_module.stop()
            without.stop()
            roomguard.stop()
        # roomguard's own time per decision (`latency_us` of its decision log), for the allowed sends.
        samples["roomguard"] = [
            entry["latency_us"] / 1e6
            for entry in map(json.loads, (line for line in roomguard.log_text().splitlines() if line.startswith("{")))
            if entry.get("rpc") == "CheckMessageSend" and entry.get("effect") == "allow" and "latency_us" in entry
        ]
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--roomguard-bin", type=Path, required=True)
    parser.add_argument("--policies", type=Path, default=MODULE_ROOT.parent / "policies")
    parser.add_argument("-n", type=int, default=500, help="measured sends per homeserver and run (default 500)")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3, help="independent runs, fresh processes each (default 3)")
    parser.add_argument(
        "--tmpdir",
        default="/dev/shm" if Path("/dev/shm").is_dir() else None,
        help="where the homeservers keep their files (default /dev/shm when there is one: in memory, so that the "
        "databases' disk flushes, which take tens of ms and vary with whatever else writes to the disk, do not drown "
        "a difference of a millisecond)",
    )
    args = parser.parse_args()

    import synapse

    print(
        f"Synapse {synapse.__version__}, SQLite, Python {platform.python_version()}, {platform.machine()}, "
        f"N={args.n} sequential sends per row after {args.warmup} warm-up sends, loopback HTTP, "
        f"roomguard {args.roomguard_bin}"
    )
    added: list[float] = []
    for run in range(1, args.runs + 1):
        samples = one_run(args)
        added_median = (statistics.median(samples["with"]) - statistics.median(samples["without"])) * 1000
        added_p99 = (percentile(samples["with"], 0.99) - percentile(samples["without"], 0.99)) * 1000
        added.append(added_median)
        print()
        print(f"Run {run} of {args.runs}")
        print()
        print("| homeserver | median ms | p90 ms | p99 ms | mean ms |")
        print("|---|---|---|---|---|")
        print(f"| without the module (allowed) {summary(samples['without'])}")
        print(f"| with the module (allowed) {summary(samples['with'])}")
        print(f"| with the module (denied, 403) {summary(samples['denied'])}")
        print()
        print(f"Added by the module: median {added_median:+.2f} ms, p99 {added_p99:+.2f} ms", flush=True)
        if samples["fail_open"]:
            print(f"{len(samples['fail_open'])} marked sends got no decision in time and went through (fail-open)")
        if samples["roomguard"]:
            roomguard_ms = statistics.median(samples["roomguard"]) * 1000
            print(f"roomguard's own work (its decision log's latency_us): median {roomguard_ms:.3f} ms")
    print()
    print(
        "Added by the module, median of each run: "
        + " / ".join(f"{a:+.2f}" for a in added)
        + f" ms (median of the runs {statistics.median(added):+.2f} ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
