"""The committed gRPC stubs are exactly what the pinned grpcio-tools generates from the project's proto."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

MODULE_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(MODULE_ROOT / "tools"))

from generate_stubs import DEFAULT_PROTO_DIR, VIRTUAL_ROOT, generate  # noqa: E402

COMMITTED = MODULE_ROOT / "src" / VIRTUAL_ROOT


def test_committed_stubs_match_the_proto(tmp_path: Path) -> None:
    """Regenerating from proto/ gives the committed files byte for byte (run tools/generate_stubs.py if not)."""
    if not DEFAULT_PROTO_DIR.exists():
        pytest.fail(f"proto directory {DEFAULT_PROTO_DIR} not found")
    generated = generate(tmp_path)
    names = sorted(p.relative_to(tmp_path / VIRTUAL_ROOT) for p in generated)
    assert names, "protoc generated nothing"
    for name in names:
        fresh = (tmp_path / VIRTUAL_ROOT / name).read_bytes()
        committed = COMMITTED / name
        assert committed.exists(), f"{name} is generated but not committed"
        assert committed.read_bytes() == fresh, f"{name} differs from the proto: run `python tools/generate_stubs.py`"


def test_stubs_import_as_part_of_the_package() -> None:
    """The stubs import under `synapse_roomguard._proto` and speak the wire name `roomguard.v1.PolicyService`."""
    from synapse_roomguard._proto.roomguard.v1 import policy_pb2, policy_pb2_grpc

    assert policy_pb2.DESCRIPTOR.package == "roomguard.v1"
    assert policy_pb2.DESCRIPTOR.services_by_name["PolicyService"].full_name == "roomguard.v1.PolicyService"
    assert hasattr(policy_pb2_grpc, "PolicyServiceStub")
