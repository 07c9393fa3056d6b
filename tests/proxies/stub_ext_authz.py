"""A roomguard stub for Envoy's ext_authz filter: envoy.service.auth.v3.Authorization/Check over gRPC, deciding as
the HTTP stub does (stubs.decide: the answer is chosen by the client's token).

The messages come from proto/ext_authz_wire.proto, compiled with grpcio-tools at start-up into a temporary directory.
"""

from __future__ import annotations

import importlib
import sys
import tempfile
import threading
from concurrent import futures
from pathlib import Path

import grpc
import stubs

PROTO_DIR = Path(__file__).resolve().parent / "proto"
_compiled: tuple | None = None
_lock = threading.Lock()

OK, PERMISSION_DENIED = 0, 7
OVERWRITE_IF_EXISTS_OR_ADD = 2


def _modules():
    """(pb2, pb2_grpc), compiled once per process."""
    global _compiled
    with _lock:
        if _compiled is None:
            from grpc_tools import protoc

            out = tempfile.mkdtemp(prefix="ext_authz_wire_")
            args = ["protoc", f"-I{PROTO_DIR}", f"--python_out={out}", f"--grpc_python_out={out}", "ext_authz_wire.proto"]
            if protoc.main(args) != 0:
                raise RuntimeError("protoc failed on ext_authz_wire.proto")
            sys.path.insert(0, out)
            _compiled = (importlib.import_module("ext_authz_wire_pb2"), importlib.import_module("ext_authz_wire_pb2_grpc"))
        return _compiled


class ExtAuthzStub:
    """Serves Check on 127.0.0.1 until stop(); records every CheckRequest's http part."""

    def __init__(self, port: int = 0):
        pb2, pb2_grpc = _modules()
        self.pb2 = pb2
        self.seen: list = []
        self.metadata: list[dict[str, str]] = []  # the gRPC metadata of each call (a caller token, say)
        self._lock = threading.Lock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        outer = self

        class Servicer(pb2_grpc.AuthorizationServicer):
            def Check(self, request, context):
                return outer._check(request, context)

        pb2_grpc.add_AuthorizationServicer_to_server(Servicer(), self._server)
        self.port = self._server.add_insecure_port(f"127.0.0.1:{port}")
        self.address = f"127.0.0.1:{self.port}"

    def start(self) -> "ExtAuthzStub":
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(grace=None).wait(5)

    def clear(self) -> None:
        with self._lock:
            self.seen.clear()
            self.metadata.clear()

    def snapshot(self) -> list:
        with self._lock:
            return list(self.seen)

    def _header(self, name: str, value: str):
        return self.pb2.HeaderValueOption(
            header=self.pb2.HeaderValue(key=name, value=value), append_action=OVERWRITE_IF_EXISTS_OR_ADD
        )

    def _check(self, request, context):
        http = request.attributes.request.http
        with self._lock:
            self.seen.append(http)
            self.metadata.append(dict(context.invocation_metadata()))
        d = stubs.decide(http.method, http.path, http.headers.get("authorization", ""))
        pb2 = self.pb2
        if d.action == "broken":
            context.abort(grpc.StatusCode.INTERNAL, "stub: broken")
        if d.action == "allow":
            return pb2.CheckResponse(
                status=pb2.RpcStatus(code=OK),
                ok_response=pb2.OkHttpResponse(
                    # Tell Synapse nothing; drop any x-roomguard-* header a client might send.
                    headers_to_remove=["x-roomguard-decision-id"],
                ),
            )
        if d.action == "bare":
            return pb2.CheckResponse(status=pb2.RpcStatus(code=PERMISSION_DENIED))
        headers = [
            self._header("content-type", "application/json"),
            self._header("x-roomguard-decision-id", d.decision_id),
        ]
        if d.retry_after_s is not None:
            headers.append(self._header("retry-after", str(d.retry_after_s)))
        return pb2.CheckResponse(
            status=pb2.RpcStatus(code=PERMISSION_DENIED, message=d.reason),
            denied_response=pb2.DeniedHttpResponse(status=pb2.HttpStatus(code=d.status), headers=headers, body=d.body),
        )
