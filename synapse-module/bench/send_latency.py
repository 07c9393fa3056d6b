"""What the module adds to a message send on a real homeserver.

Starts one roomguard and two Synapses on loopback (SQLite, same configuration, one with the module and one without),
creates a public forum on each, then sends N plain messages to each, alternating between the two so that both see the
same machine conditions, and prints the client-observed latency of `PUT /rooms/{id}/send/m.room.message/{txn}`:

    python bench/send_latency.py --roomguard-bin ../target/debug/roomguard --policies ../policies -n 500

Needs the `test` extra installed (`pip install -e '.[test]'`). Sends are sequential: this measures latency, not load.
"""

from __future__ import annotations

import argparse
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


def send(client: Client, room: str, text: str, expect: int) -> float:
    resp = client.send_text(room, text)
    if resp.status != expect:
        raise SystemExit(f"unexpected {resp.status} from {client.base_url}: {resp.body}")
    return resp.seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--roomguard-bin", type=Path, required=True)
    parser.add_argument("--policies", type=Path, default=MODULE_ROOT.parent / "policies")
    parser.add_argument("-n", type=int, default=500, help="measured sends per homeserver (default 500)")
    parser.add_argument("--warmup", type=int, default=50)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="roomguard-bench-") as tmp:
        work = Path(tmp)
        roomguard = Roomguard(
            binary=args.roomguard_bin.resolve(),
            policies=copy_policies_with_users(args.policies, work / "policies", []),
            workdir=work,
        )
        with_module = Synapse(workdir=work / "with", module_config={"endpoint": roomguard.endpoint}, name="with")
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

            samples: dict[str, list[float]] = {"with": [], "without": [], "denied": []}
            for i in range(args.n):
                for key in ("with", "without"):
                    samples[key].append(send(users[key], rooms[key], f"Message ordinaire numéro {i}", 200))
            for i in range(args.n):
                samples["denied"].append(send(users["with"], rooms["with"], f"DIFFUSION RESTREINTE {i}", 403))
        finally:
            with_module.stop()
            without.stop()
            roomguard.stop()

    import synapse

    print(
        f"Synapse {synapse.__version__}, SQLite, Python {platform.python_version()}, {platform.machine()}, "
        f"N={args.n} sequential sends per row after {args.warmup} warm-up sends, loopback HTTP"
    )
    print()
    print("| homeserver | median ms | p90 ms | p99 ms | mean ms |")
    print("|---|---|---|---|---|")
    print(f"| without the module (allowed) {summary(samples['without'])}")
    print(f"| with the module (allowed) {summary(samples['with'])}")
    print(f"| with the module (denied, 403) {summary(samples['denied'])}")
    added_median = (statistics.median(samples["with"]) - statistics.median(samples["without"])) * 1000
    added_p99 = (percentile(samples["with"], 0.99) - percentile(samples["without"], 0.99)) * 1000
    print()
    print(f"Added by the module: median {added_median:+.2f} ms, p99 {added_p99:+.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
