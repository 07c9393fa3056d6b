"""Regenerate the committed gRPC stubs from the project's `proto/` directory.

    python tools/generate_stubs.py            # rewrite src/synapse_roomguard/_proto/
    python tools/generate_stubs.py --out DIR  # write them under DIR instead (the stub test compares the two)

The proto directory is mapped to the virtual path `synapse_roomguard/_proto`, so protoc writes imports such as
`from synapse_roomguard._proto.roomguard.v1 import policy_pb2`: the stubs import as part of this package without any
rewriting of the generated text. The wire names (`/roomguard.v1.PolicyService/...`) come from the proto `package` and
are unchanged by the mapping.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

MODULE_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PROTO_DIR = MODULE_ROOT.parent / "proto"
PROTO_FILES = ["roomguard/v1/policy.proto"]
VIRTUAL_ROOT = "synapse_roomguard/_proto"


def generate(out_dir: Path, proto_dir: Path = DEFAULT_PROTO_DIR) -> list[Path]:
    """Generate `*_pb2.py`, `*_pb2.pyi` and `*_pb2_grpc.py` for every proto file under `out_dir`; return their paths."""
    from importlib import resources

    from grpc_tools import protoc  # only needed by developers and tests, not at run time

    # The well-known types (google/protobuf/timestamp.proto, ...) ship inside grpcio-tools;
    # `python -m grpc_tools.protoc` adds them to the include path by itself, `protoc.main` does not.
    well_known = resources.files("grpc_tools") / "_proto"
    out_dir.mkdir(parents=True, exist_ok=True)
    args = [
        "grpc_tools.protoc",
        f"-I{VIRTUAL_ROOT}={proto_dir}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
    ] + [f"{VIRTUAL_ROOT}/{name}" for name in PROTO_FILES]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed on {proto_dir}")
    generated = sorted(p for p in (out_dir / VIRTUAL_ROOT).rglob("*") if p.is_file())
    # Packages need their `__init__.py` so that the generated absolute imports resolve.
    for directory in {p.parent for p in generated}:
        while directory != out_dir / "synapse_roomguard":
            (directory / "__init__.py").touch()
            directory = directory.parent
    return generated


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--out", type=Path, default=MODULE_ROOT / "src", help="directory that receives synapse_roomguard/_proto/"
    )
    parser.add_argument("--proto-dir", type=Path, default=DEFAULT_PROTO_DIR)
    args = parser.parse_args()
    for path in generate(args.out, args.proto_dir):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
