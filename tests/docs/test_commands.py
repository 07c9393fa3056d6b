"""Every command the documentation shows in a shell block is run here, or checked as far as a test machine allows.

The commands are read from the pages themselves (README.md, docs/, policies/README.md, synapse-module/README.md,
deploy/*/README.md): nothing is copied into this file. Each command is matched against RULES below, which say how
it is verified: run as written (with the server's port and the example paths put where a test machine has them),
its flags checked against the program's own `--help`, or not run here, with the reason and the test that covers
what it does. A command that no rule matches fails the test, so whoever adds one to the docs decides how it is
verified. When a `text` block follows a shell block, the lines it shows (without `...` and without numbers, which
vary) must appear in what the command printed.

Run by scripts/test after the Synapse module's tests (the module's benchmarks need it installed in .venv).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("ROOMGUARD_BIN", REPO / "target/debug/roomguard"))
VENV_BIN = Path(sys.executable).parent
PAGES = (
    [REPO / "README.md"]
    + sorted((REPO / "docs").glob("*.md"))
    + [REPO / "policies/README.md", REPO / "synapse-module/README.md"]
    + sorted((REPO / "deploy").glob("*/README.md"))
)
BLOCK = re.compile(r"^```(sh|bash|shell|console)\n(.*?)^```\n(?:\n*```text\n(.*?)^```)?", re.M | re.S)


@dataclass
class Command:
    page: Path
    line: int
    text: str
    cwd: str
    output: str | None

    def __str__(self):
        return f"{self.page.relative_to(REPO)}:{self.line}: {self.text}"


def commands() -> list[Command]:
    found = []
    for page in PAGES:
        text = page.read_text()
        for block in BLOCK.finditer(text):
            line = text[: block.start()].count("\n") + 1
            cwd = "."
            current = ""
            for raw in block.group(2).splitlines():
                current = f"{current} {raw.strip()}" if current else raw.strip()
                if current.endswith("\\"):
                    current = current[:-1].rstrip()
                    continue
                if open_quote(current):
                    continue
                command, current = strip_comment(current), ""
                if not command:
                    continue
                if command.startswith("cd "):
                    cwd = command[3:].strip()
                    continue
                found.append(Command(page, line, command, cwd, block.group(3)))
    return found


def open_quote(command: str) -> bool:
    """A quote opened and not yet closed: the command goes on on the next line."""
    quote = None
    for c in command:
        if quote:
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
    return quote is not None


def strip_comment(command: str) -> str:
    """The command without a trailing `# comment` (outside quotes)."""
    quote = None
    for i, c in enumerate(command):
        if quote:
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or command[i - 1] == " "):
            return command[:i].rstrip()
    return command.strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_with_binary() -> dict:
    """`roomguard` on PATH is the binary under test; `grpcurl` and `envoy` are the venv's."""
    path = f"{BINARY.parent}:{VENV_BIN}:{os.environ.get('PATH', '')}:/usr/sbin"
    return {**os.environ, "PATH": path, "RUST_LOG": "warn"}


def sh(command: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        cwd=cwd,
        env=env_with_binary(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def shown_lines(output: str | None) -> list[str]:
    """The lines of a docs `text` block that must appear as printed: not elided, not a number that varies."""
    if not output:
        return []
    lines = []
    for line in output.splitlines():
        line = " ".join(line.split())
        if not line or "..." in line or re.search(r"\d", line):
            continue
        lines.append(line)
    return lines


def assert_shows(command: Command, printed: str):
    printed = "\n".join(" ".join(line.split()) for line in printed.splitlines())
    for line in shown_lines(command.output):
        assert line in printed, f"{command}\n  the docs show `{line}`; it printed:\n{printed}"


def flags_of(command: str) -> list[str]:
    return sorted(set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", command)))


def assert_flags_in_help(command: Command, help_argv: list[str], cwd: Path):
    out = subprocess.run(help_argv, cwd=cwd, env=env_with_binary(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"{command}\n  {' '.join(help_argv)} failed:\n{out.stderr}"
    for flag in flags_of(command.text):
        assert flag in out.stdout, f"{command}\n  `{flag}` is not in `{' '.join(help_argv)}`"


class Server:
    """`roomguard serve` as a page shows it, on a free port, until the test ends."""

    def __init__(self, command: str, workdir: Path):
        self.port = free_port()
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            ["bash", "-c", f"exec {command} --decision-log off"],
            cwd=workdir,
            env={**env_with_binary(), "ROOMGUARD_LISTEN": f"127.0.0.1:{self.port}"},
            stdout=subprocess.DEVNULL,
            stderr=self.stderr,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stderr.seek(0)
                raise AssertionError(f"`{command}` exited {self.proc.returncode}:\n{self.stderr.read().decode()}")
            health = subprocess.run(
                [str(BINARY), "health", "--addr", f"http://127.0.0.1:{self.port}", "--timeout-ms", "500"],
                capture_output=True,
            )
            if health.returncode == 0:
                return
            time.sleep(0.1)
        raise AssertionError(f"`{command}` did not serve within 30 s")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=15)


def serve_command(text: str, workdir: Path) -> str:
    """The page's `serve` with the example paths of an installed host put where this machine has them, and with
    `--listen` left to the environment (the test's free port)."""
    config = workdir / "roomguard.toml"
    shutil.copy(REPO / "roomguard.example.toml", config)
    text = text.replace("/etc/roomguard/roomguard.toml", str(config))
    text = text.replace("/etc/roomguard/policies", str(REPO / "policies"))
    text = re.sub(r"--listen \S+", "", text)
    # The README's first command builds the release binary (fat LTO, minutes): the test serves the debug build of the
    # same sources, which the test command has just built.
    text = re.sub(r"^cargo run (--release )?-- ", "roomguard ", text)
    return text


def run_serve(command: Command):
    workdir = Path(tempfile.mkdtemp(prefix="roomguard-docs-"))
    (workdir / "policies").symlink_to(REPO / "policies")
    server = Server(serve_command(command.text, workdir), workdir)
    server.stop()


def run_against_server(command: Command):
    """A client command of the docs, against a server started as the README starts it, on the port it names."""
    workdir = Path(tempfile.mkdtemp(prefix="roomguard-docs-"))
    (workdir / "policies").symlink_to(REPO / "policies")
    server = Server("roomguard serve", workdir)
    try:
        text = command.text.replace("127.0.0.1:50051", f"127.0.0.1:{server.port}")
        out = sh(text, REPO)
        assert out.returncode == 0, f"{command}\n{out.stdout}\n{out.stderr}"
        assert "EFFECT_DENY" in out.stdout or "SERVING" in out.stdout, f"{command}\n{out.stdout}"
        assert_shows(command, out.stdout)
    finally:
        server.stop()


def run_here(command: Command):
    """Run as written from the page's directory (the repository root unless the block changes directory)."""
    out = sh(command.text, REPO / command.cwd)
    assert out.returncode == 0, f"{command}\n{out.stdout}\n{out.stderr}"
    assert_shows(command, out.stdout)


def run_with_example_files(command: Command):
    """Run in a directory that holds the files the command names: `request.json` (the page's own `check` example)
    and `rapport.pdf` (a PDF marked "Diffusion Restreinte" from the fixtures)."""
    workdir = Path(tempfile.mkdtemp(prefix="roomguard-docs-"))
    (workdir / "policies").symlink_to(REPO / "policies")
    (workdir / "request.json").write_text(
        '{"sender": {"userId": "@bob:agent.externe.tchap.gouv.fr"}, "room": {"roomId": "!r:agent.tchap.gouv.fr",'
        ' "joinRule": "JOIN_RULE_PUBLIC", "historyVisibility": "HISTORY_VISIBILITY_SHARED"},'
        ' "message": {"eventType": "m.room.message", "msgtype": "m.text", "body": "Bonjour"}}'
    )
    shutil.copy(REPO / "tests/fixtures/media/pdf/libreoffice.pdf", workdir / "rapport.pdf")
    out = sh(command.text, workdir)
    assert out.returncode == 0, f"{command}\n{out.stdout}\n{out.stderr}"
    assert "effect:" in out.stdout, f"{command}\n{out.stdout}"
    assert_shows(command, out.stdout)


def help_of_roomguard(command: Command):
    subcommand = command.text.split()[1]
    assert_flags_in_help(command, [str(BINARY), subcommand, "--help"], REPO)


def help_of_script(command: Command):
    words = command.text.split()
    python = words.index(next(w for w in words if w.endswith("python") or w.endswith("python3")))
    script = words[python + 1]
    cwd = REPO / command.cwd
    if command.cwd == "synapse-module" and os.environ.get("ROOMGUARD_SKIP_SYNAPSE") == "1":
        pytest.skip("the Synapse module's benchmarks need the module, not installed with ROOMGUARD_SKIP_SYNAPSE=1")
    assert (cwd / script).exists(), f"{command}\n  {script} does not exist"
    assert_flags_in_help(command, [sys.executable, script, "--help"], cwd)


def cargo_targets(command: Command):
    """A release build takes minutes: the targets it names exist (the debug build of the same targets is part of
    the test command)."""
    out = subprocess.run(
        ["cargo", "metadata", "--no-deps", "--format-version", "1"], cwd=REPO, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    for kind, name in re.findall(r"--(bin|example) (\S+)", command.text):
        assert f'"name":"{name}"' in out.stdout.replace(" ", ""), f"{command}\n  no {kind} `{name}`"


def docker_settings(command: Command):
    """No Docker daemon on the test machines: every variable handed to the image is one `serve` reads, and every
    host path mounted from the checkout exists."""
    help_text = subprocess.run([str(BINARY), "serve", "--help"], capture_output=True, text=True).stdout
    for variable in re.findall(r"-e (ROOMGUARD_[A-Z0-9_]+)=", command.text):
        assert variable in help_text, f"{command}\n  `{variable}` is not a setting of `serve`"
    for mounted in re.findall(r"\$PWD/(\S+?):", command.text):
        if mounted in ("token", "roomguard.toml"):
            continue  # the operator's own files
        assert (REPO / mounted).exists(), f"{command}\n  {mounted} is not in the checkout"
    if " serve " in command.text:
        served = command.text.split(" serve ", 1)[1]
        assert_flags_in_help(Command(command.page, command.line, served, ".", None), [str(BINARY), "serve", "--help"], REPO)


def regenerates_unchanged(path: str):
    def check(command: Command):
        before = (REPO / path).read_bytes()
        run_here(command)
        assert (REPO / path).read_bytes() == before, f"{command}\n  {path} is not what the command generates"

    return check


def not_run(reason: str):
    def skip(command: Command):
        pytest.skip(f"not run here: {reason}")

    return skip


# (pattern of the command, how it is verified). The first that matches decides.
RULES = [
    (r"^\./scripts/test$", not_run("it is the command that runs this test")),
    (r"^cargo run (--release )?-- serve", run_serve),
    (r"^roomguard serve", run_serve),
    (r"^roomguard health --addr http://127\.0\.0\.1:50051$", run_against_server),
    (r"^roomguard health ", help_of_roomguard),
    # Needs a homeserver with history: its flags are checked here; tests/audit_e2e runs it against a real Synapse.
    (r"^roomguard audit ", help_of_roomguard),
    (r"^\.venv/bin/python scripts/example_call\.py", run_against_server),
    (r"^grpcurl -plaintext .* 127\.0\.0\.1:50051 ", run_against_server),
    (r"^roomguard (validate|test) policies( && roomguard (validate|test) policies)?$", run_here),
    (r"^echo '.*' \| roomguard check$", run_here),
    (r"^roomguard check ", run_with_example_files),
    (r"^python3 deploy/kubernetes/generate-policies-configmap\.py$",
     regenerates_unchanged("deploy/kubernetes/base/policies-configmap.yaml")),
    (r"^envoy --mode validate -c envoy\.yaml$", lambda c: run_here(Command(c.page, c.line, c.text, "deploy/envoy", None))),
    (r"^(\.venv/bin/)?python3? (scripts|bench)/\S+\.py", help_of_script),
    (r"^python synapse-module/tools/generate_stubs\.py$",
     not_run("it rewrites the module's stubs; synapse-module/tests/unit/test_stubs.py checks they match proto/")),
    (r"^(CARGO_TARGET_DIR=\S+ )?cargo build --release", cargo_targets),
    (r"^ROOMGUARD_BIN=.* synapse-module/run-tests\.sh$", not_run("scripts/test runs it (the Synapse module step)")),
    (r"^pip install ", not_run("synapse-module/run-tests.sh installs the module into the test venv the same way")),
    (r"^docker ", docker_settings),
    (r"^kubectl |^kubectl$", not_run("no Kubernetes cluster; tests/python/test_kubernetes_manifests.py validates the "
                                     "manifests against the Kubernetes schemas and checks the Secrets they name")),
    (r"^(HS|TOKEN|ROOM)=|^curl ", not_run("needs a running Synapse; synapse-module/tests/e2e and tests/reads_e2e make "
                                          "the same client and admin calls to a real one")),
    (r"^install |^nginx -t", not_run("installs into the host's /etc/nginx; tests/proxies and tests/reads_e2e run the "
                                     "shipped nginx files under a real nginx")),
]


def rule_for(command: Command):
    for pattern, check in RULES:
        if re.search(pattern, command.text):
            return check
    return None


ALL = commands()


def test_the_docs_show_commands():
    assert len(ALL) > 20, [str(c) for c in ALL]


@pytest.mark.parametrize("command", ALL, ids=[f"{c.page.relative_to(REPO)}:{c.line}" for c in ALL])
def test_command(command: Command):
    check = rule_for(command)
    assert check is not None, f"{command}\n  no rule of tests/docs/test_commands.py says how this command is verified"
    check(command)
