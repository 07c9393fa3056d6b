#!/usr/bin/env python3
"""Calls a running roomguard with Python grpcio and prints the decision: the README's example of a real client.

    .venv/bin/python scripts/example_call.py [ADDR]        (default 127.0.0.1:50051)

Stubs are generated from proto/ into a temporary directory, as any client in any language would.
"""

import sys
import tempfile
from pathlib import Path

import grpc
import grpc_tools
from grpc_tools import protoc

REPO = Path(__file__).resolve().parents[1]


def stubs():
    out = tempfile.mkdtemp(prefix="roomguard-stubs-")
    include = Path(grpc_tools.__file__).parent / "_proto"
    args = ["protoc", f"-I{REPO / 'proto'}", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}",
            str(REPO / "proto/roomguard/v1/policy.proto")]
    if protoc.main(args) != 0:
        sys.exit("protoc failed")
    sys.path.insert(0, out)
    from roomguard.v1 import policy_pb2, policy_pb2_grpc

    return policy_pb2, policy_pb2_grpc


def main():
    addr = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:50051"
    pb, rpc = stubs()
    stub = rpc.PolicyServiceStub(grpc.insecure_channel(addr))
    request = pb.CheckMessageSendRequest(
        request_id="example-1",
        sender=pb.Subject(user_id="@alice:agent.finances.tchap.gouv.fr", power_level=0),
        room=pb.Room(room_id="!forum:agent.finances.tchap.gouv.fr", join_rule=pb.JOIN_RULE_PUBLIC,
                     history_visibility=pb.HISTORY_VISIBILITY_SHARED),
        message=pb.Message(event_type="m.room.message", msgtype="m.text",
                           body="DIFFUSION RESTREINTE - compte rendu du comité"),
    )
    print(stub.CheckMessageSend(request, timeout=2).decision)


if __name__ == "__main__":
    main()
