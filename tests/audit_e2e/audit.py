"""Running `roomguard audit` as an operator would, and reading what it printed (NDJSON, JSON, the journal)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

def _register_pid(name: str, pid: int) -> None:
    piddir = os.environ.get("ROOMGUARD_TEST_PIDDIR")
    if piddir:
        Path(piddir, f"{name}.pid").write_text(str(pid))


def _unregister_pid(name: str) -> None:
    piddir = os.environ.get("ROOMGUARD_TEST_PIDDIR")
    if piddir:
        Path(piddir, f"{name}.pid").unlink(missing_ok=True)


#: Exit codes of the contract.
EXIT_CLEAN, EXIT_FINDINGS, EXIT_USAGE, EXIT_POLICY, EXIT_UNAVAILABLE, EXIT_PERMISSION = 0, 1, 64, 65, 69, 77


@dataclass
class AuditRun:
    command: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    #: NDJSON output, parsed (empty unless the format is ndjson and it parsed).
    lines: list[dict] = field(default_factory=list)

    #: Where the whole stdout and stderr were kept.
    kept: Path | None = None

    def describe(self) -> str:
        """For assertion messages: the command, its exit code and the end of what it said."""
        kept = f" (whole output: {self.kept}.stdout / .stderr)" if self.kept else ""
        return (f"$ {' '.join(self.command)}\nexit {self.returncode} after {self.seconds:.1f} s{kept}\n"
                f"--- stderr (end) ---\n{self.stderr[-3000:]}\n--- stdout (start) ---\n{self.stdout[:2000]}")

    @property
    def findings(self) -> list[dict]:
        return [line for line in self.lines if line.get("type") == "finding"]

    @property
    def rooms(self) -> list[dict]:
        return [line for line in self.lines if line.get("type") == "room"]

    @property
    def totals(self) -> dict:
        totals = [line for line in self.lines if line.get("type") == "totals"]
        assert len(totals) == 1, f"exactly one totals line expected, got {len(totals)}\n{self.describe()}"
        return totals[0]

    def room(self, room_id: str) -> dict:
        matches = [r for r in self.rooms if r.get("room_id") == room_id]
        assert len(matches) == 1, f"one room line for {room_id} expected, got {len(matches)}\n{self.describe()}"
        return matches[0]


class Mismatches:
    """Every difference between what a report says and what it should, gathered, so that one failure lists them
    all (a field wrong for every file shows as such, not as the first file alone)."""

    def __init__(self):
        self.found: list[str] = []

    def check(self, what: str, field: str, got: Any, expected: Any, ok: bool | None = None) -> None:
        if not (got == expected if ok is None else ok):
            self.found.append(f"{what}: {field} is {got!r}, expected {expected!r}")

    def assert_none(self) -> None:
        assert not self.found, f"{len(self.found)} mismatches:\n" + "\n".join(self.found)


def finding_target(finding: dict) -> str:
    """What a finding names: its file (media) or its event."""
    return finding["mxc"] if finding.get("kind") == "media" else finding["event_id"]


def parse_ndjson(text: str) -> list[dict]:
    lines = []
    for n, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except ValueError as err:
            raise AssertionError(f"NDJSON line {n} is not JSON ({err}): {raw[:300]!r}") from None
        assert isinstance(value, dict) and "type" in value, f"NDJSON line {n} has no `type`: {raw[:300]!r}"
        lines.append(value)
    return lines


def read_journal(path: Path) -> list[dict]:
    """The journal's lines; a last line torn by a kill is left out (as the audit itself does)."""
    out = []
    raw_lines = path.read_text().splitlines() if path.exists() else []
    for n, raw in enumerate(raw_lines):
        try:
            out.append(json.loads(raw))
        except ValueError:
            assert n == len(raw_lines) - 1, f"journal line {n + 1} is not JSON and is not the last: {raw[:200]!r}"
    return out


@dataclass
class Auditor:
    """`roomguard audit` against one homeserver with one admin token file and one policy directory."""

    binary: Path
    homeserver: str
    token_file: Path
    policies: Path
    workdir: Path
    runs: int = 0

    def command(self, *args: str, homeserver: str | None = None, token_file: Path | None = None,
                policies: Path | None = None) -> list[str]:
        command = [str(self.binary), "audit"]
        if homeserver is not False:
            command += ["--homeserver", homeserver or self.homeserver]
        if token_file is not False:
            command += ["--admin-token-file", str(token_file or self.token_file)]
        if policies is not False:
            command += ["--policies", str(policies or self.policies)]
        return command + list(args)

    def run(self, *args: str, timeout_s: float = 600, parse: bool | None = None, env: dict | None = None,
            **overrides: Any) -> AuditRun:
        command = self.command(*args, **overrides)
        started = time.monotonic()
        proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=self.workdir,
            env={**os.environ, **(env or {})},
        )
        # Recorded for run.sh, which stops it by id if pytest itself is stopped mid-run.
        pid_name = f"audit-{proc.pid}"
        _register_pid(pid_name, proc.pid)
        try:
            stdout, stderr = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
            raise AssertionError(
                f"$ {' '.join(command)}\ndid not end within {timeout_s} s\n--- stderr ---\n{stderr[-3000:]}"
            ) from None
        finally:
            _unregister_pid(pid_name)
        run = AuditRun(command, proc.returncode, stdout, stderr, time.monotonic() - started)
        self.runs += 1
        run.kept = self.workdir / f"run-{self.runs:02d}"
        run.kept.with_suffix(".stdout").write_text(stdout)
        run.kept.with_suffix(".stderr").write_text(f"$ {' '.join(command)}\nexit {proc.returncode}\n{stderr}")
        ndjson = "--format" not in args or args[list(args).index("--format") + 1] == "ndjson"
        if (parse if parse is not None else ndjson and "--out" not in args) and proc.returncode in (0, 1):
            try:
                run.lines = parse_ndjson(stdout)
            except AssertionError as err:
                raise AssertionError(f"{err}\n{run.describe()}") from None
        return run
