"""`roomguard audit` end to end: the real binary reads a real Synapse (without the roomguard module, so that marked
content could be stored, as on a homeserver that ran before roomguard did), reports, and remediates.

One Synapse per session with its rooms and files planted once (`world`, see world.py); the tests that change it
(remediation) run after every test that only reads it. The interruption test has a homeserver of its own. Each
process is stopped by its fixture's finalizer and, when `ROOMGUARD_TEST_PIDDIR` is set (run.sh sets it), recorded
there so that run.sh stops it by id whatever happens.

Environment: `ROOMGUARD_BIN` (default target/debug/roomguard), `ROOMGUARD_POLICIES` (default the repository's
policies/), `ROOMGUARD_CHROMIUM` / `ROOMGUARD_CHROMEDRIVER` (default /usr/bin/chromium, /usr/bin/chromedriver). A
missing binary or browser skips, unless `ROOMGUARD_REQUIRE_E2E=1` (run.sh), which makes it a failure.

Reuses, without copying: synapse-module/tests/e2e/harness.py (Synapse, shared-secret registration, the policy copy
with per-user roles) and documents.py (real PDF, DOCX and ODT files), loaded by path in world.py.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

import world as world_module  # noqa: E402  (tests/audit_e2e/world.py)
from audit import Auditor  # noqa: E402

harness = world_module.harness

#: The account that users.csv makes external in the policy copy the audit reads.
EXTERNAL_LOCALPART = "prestataire.ext"
EXTERNAL_USER = f"@{EXTERNAL_LOCALPART}:{harness.SERVER_NAME}"


def _required(value, what: str):
    if value:
        return value
    message = f"{what}: the audit's end-to-end suite needs it"
    if os.environ.get("ROOMGUARD_REQUIRE_E2E") == "1":
        pytest.fail(message)
    pytest.skip(message)


def pytest_configure(config):
    config.addinivalue_line("markers", "changes_world: acts on the session's homeserver; runs after every reader")


def pytest_collection_modifyitems(items):
    """Tests that change the shared world (remediation) run last, in file order among themselves."""
    items.sort(key=lambda item: item.get_closest_marker("changes_world") is not None)


# ------------------------------------------------------------------------------------------------------- binaries


@pytest.fixture(scope="session")
def roomguard_bin() -> Path:
    path = Path(os.environ.get("ROOMGUARD_BIN") or REPO / "target" / "debug" / "roomguard")
    return _required(path if path.is_file() else None, f"the roomguard binary ({path}; set ROOMGUARD_BIN)")


@pytest.fixture(scope="session")
def shipped_policies() -> Path:
    path = Path(os.environ.get("ROOMGUARD_POLICIES") or REPO / "policies")
    return _required(path if (path / "rules.csv").is_file() else None, f"the policy directory ({path})")


@pytest.fixture(scope="session")
def policies(shipped_policies, tmp_path_factory) -> Path:
    """The shipped policy with one more line in users.csv: EXTERNAL_USER is external."""
    return harness.copy_policies_with_users(
        shipped_policies, tmp_path_factory.mktemp("policy") / "policies", [f"{EXTERNAL_USER}, external"]
    )


@pytest.fixture(scope="session")
def chromium() -> tuple[str, str]:
    browser = os.environ.get("ROOMGUARD_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    driver = os.environ.get("ROOMGUARD_CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"
    _required(Path(browser).is_file() or None, f"Chromium ({browser}; Debian package chromium)")
    _required(Path(driver).is_file() or None, f"ChromeDriver ({driver}; Debian package chromium-driver)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        _required(None, "selenium (pip install -r tests/python/requirements.txt)")
    return browser, driver


# ------------------------------------------------------------------------------------------------------- Synapse


def start_synapse(workdir: Path, name: str):
    homeserver = harness.Synapse(workdir=workdir, module_config=None, name=name,
                                 extra_config=world_module.SYNAPSE_CONFIG)
    homeserver.start()
    return homeserver


@pytest.fixture(scope="session")
def synapse(tmp_path_factory):
    """Synapse without the roomguard module: it stores whatever its members send, markings included."""
    homeserver = None
    try:
        homeserver = start_synapse(tmp_path_factory.mktemp("synapse"), "synapse")
        yield homeserver
    finally:
        if homeserver is not None:
            homeserver.stop()


@pytest.fixture(scope="session")
def admin(synapse):
    """A server admin: its token is the audit's."""
    return synapse.register("auditeur", admin=True)


@pytest.fixture(scope="session")
def admin_token_file(admin, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("secrets") / "admin-token"
    path.write_text(admin.token + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture(scope="session")
def world(synapse, admin):
    """The six rooms and their content (world.py), planted once."""
    return world_module.seed_world(synapse, admin.token, EXTERNAL_LOCALPART)


@pytest.fixture(scope="session")
def auditor(roomguard_bin, synapse, admin_token_file, policies, tmp_path_factory) -> Auditor:
    return Auditor(roomguard_bin, synapse.base_url, admin_token_file, policies, tmp_path_factory.mktemp("audit"))


@pytest.fixture(scope="session")
def exposed_audit(auditor, world, tmp_path_factory):
    """The plain audit, as an operator first runs it: `--format ndjson` on stdout, and the HTML report."""
    html = tmp_path_factory.mktemp("report") / "report.html"
    run = auditor.run("--format", "ndjson", "--html", str(html))
    run.html = html
    return run
