"""Session fixtures of the end-to-end suite: one roomguard (test copy of the policies), one Synapse with the module.

Needs `ROOMGUARD_BIN` (the built roomguard binary) and `ROOMGUARD_POLICIES` (the repository's `policies/`, default
`../policies` from this package). Without `ROOMGUARD_BIN` the suite is skipped, unless `ROOMGUARD_REQUIRE_E2E=1`
(set by `run-tests.sh`), which makes that a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import SERVER_NAME, Client, Roomguard, Synapse, copy_policies_with_users

MODULE_ROOT = Path(__file__).resolve().parents[2]
EXTERNAL_USER = f"@ext:{SERVER_NAME}"
#: The deadline configured in the test homeserver (the module's default).
TIMEOUT_MS = 200


def required_path(var: str, default: Path | None = None) -> Path:
    value = os.environ.get(var)
    path = Path(value) if value else default
    if path is None or not path.exists():
        message = f"{var} is not set to an existing path (got {value!r}); the end-to-end suite needs it"
        if os.environ.get("ROOMGUARD_REQUIRE_E2E") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path.resolve()


@pytest.fixture(scope="session")
def roomguard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Roomguard]:
    binary = required_path("ROOMGUARD_BIN")
    policies = required_path("ROOMGUARD_POLICIES", MODULE_ROOT.parent / "policies")
    workdir = tmp_path_factory.mktemp("roomguard")
    copy = copy_policies_with_users(policies, workdir / "policies", [f"{EXTERNAL_USER}, external"])
    server = Roomguard(binary=binary, policies=copy, workdir=workdir)
    server.start()
    try:
        yield server
    finally:
        if server.proc is not None:
            server.resume()  # in case a test stopped it mid-way with SIGSTOP
        server.stop()


@pytest.fixture(scope="session")
def synapse(roomguard: Roomguard, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synapse]:
    homeserver = Synapse(
        workdir=tmp_path_factory.mktemp("synapse"),
        module_config={"endpoint": roomguard.endpoint, "timeout_ms": TIMEOUT_MS},
    )
    homeserver.start()
    try:
        yield homeserver
    finally:
        homeserver.stop()


@pytest.fixture(scope="session")
def guest_synapse(roomguard: Roomguard, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synapse]:
    """A second homeserver, with `allow_guest_access: true`, asking the same roomguard."""
    homeserver = Synapse(
        workdir=tmp_path_factory.mktemp("synapse-guests"),
        module_config={"endpoint": roomguard.endpoint, "timeout_ms": TIMEOUT_MS},
        name="synapse-guests",
        extra_config={"allow_guest_access": True},
    )
    homeserver.start()
    try:
        yield homeserver
    finally:
        homeserver.stop()


@pytest.fixture(scope="session")
def alice(synapse: Synapse) -> Client:
    """An agent who creates and runs rooms."""
    return synapse.register("alice")


@pytest.fixture(scope="session")
def bob(synapse: Synapse) -> Client:
    """An agent with no power in alice's rooms."""
    return synapse.register("bob")


@pytest.fixture(scope="session")
def ext(synapse: Synapse) -> Client:
    """A user of the agents' domain whom the test policies make `external` by a per-user line."""
    client = synapse.register("ext")
    assert client.user_id == EXTERNAL_USER
    return client


@pytest.fixture(scope="session")
def admin(synapse: Synapse) -> Client:
    """A server administrator (`Subject.server_admin`), member of no room."""
    return synapse.register("admin", admin=True)
