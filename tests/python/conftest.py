"""Fixtures: stubs generated from proto/ at test time, and the roomguard binary serving the shipped policies."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def pb():
    """Generates Python stubs from proto/ into a temporary directory, as any other client would."""
    from grpc_tools import protoc

    out = tempfile.mkdtemp(prefix="roomguard-stubs-")
    import grpc_tools

    include = str(Path(grpc_tools.__file__).parent / "_proto")
    rc = protoc.main(
        ["protoc", f"-I{REPO / 'proto'}", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}",
         str(REPO / "proto/roomguard/v1/policy.proto")]
    )
    assert rc == 0, "protoc failed"
    sys.path.insert(0, out)
    from roomguard.v1 import policy_pb2, policy_pb2_grpc

    return policy_pb2, policy_pb2_grpc


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def binary():
    path = Path(os.environ.get("ROOMGUARD_BIN", REPO / "target/debug/roomguard"))
    assert path.exists(), f"{path} is missing: run `cargo build` first"
    return path


class Server:
    def __init__(self, binary, policies):
        self.addr = f"127.0.0.1:{free_port()}"
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [str(binary), "serve", "--listen", self.addr, "--policies", str(policies)],
            stdout=subprocess.DEVNULL,
            stderr=self.stderr,
            env={**os.environ, "RUST_LOG": "info"},
        )
        self.channel = grpc.insecure_channel(self.addr)
        grpc.channel_ready_future(self.channel).result(timeout=30)

    def log(self):
        self.stderr.seek(0)
        return self.stderr.read().decode("utf-8", "replace")

    def stop(self):
        """SIGTERM, as an orchestrator would; returns the exit code."""
        self.channel.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=15)


@pytest.fixture(scope="session")
def server(binary):
    s = Server(binary, REPO / "policies")
    yield s
    s.stop()


@pytest.fixture
def stub(server, pb):
    return pb[1].PolicyServiceStub(server.channel)
