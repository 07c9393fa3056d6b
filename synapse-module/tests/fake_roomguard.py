"""An in-process stand-in for roomguard's gRPC service, for the client's unit tests (deadlines, errors, reconnection).

It is not a policy engine: each test scripts the answers. The end-to-end suite runs the real roomguard binary.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent import futures

import grpc

from synapse_roomguard._proto.roomguard.v1 import policy_pb2 as pb
from synapse_roomguard._proto.roomguard.v1 import policy_pb2_grpc as pb_grpc


def allow(reason_code: str = "ALLOWED") -> pb.Decision:
    return pb.Decision(
        effect=pb.EFFECT_ALLOW,
        reasons=[pb.Reason(code=reason_code, rule="allow", message="ok")],
        decision_id="dec-allow",
    )


def deny(*codes: str) -> pb.Decision:
    return pb.Decision(
        effect=pb.EFFECT_DENY,
        reasons=[pb.Reason(code=c, rule=c.lower(), message=f"message {c}") for c in codes],
        decision_id="dec-deny",
        policy_version="v-test",
    )


class FakePolicyService(pb_grpc.PolicyServiceServicer):
    """Answers with `decide(request)` after `delay_s`, or with the status `abort_code`; records every request and the
    metadata it came with."""

    def __init__(self) -> None:
        self.decide: Callable[[object], pb.Decision] = lambda _request: allow()
        self.delay_s = 0.0
        self.abort_code: grpc.StatusCode | None = None
        self.requests: list[object] = []
        self.metadata: list[dict[str, str]] = []
        #: `CheckMediaUpload` streams received in full, and how long the fake waits before reading one.
        self.uploads: list[Upload] = []
        self.read_delay_s = 0.0
        self.scan = pb.MediaScan(format="pdf", bytes_read=0, text_chars=0, complete=True)
        self._lock = threading.Lock()

    def _answer(self, request: object, context: grpc.ServicerContext) -> pb.Decision:
        with self._lock:
            self.requests.append(request)
            self.metadata.append({key: value for key, value in context.invocation_metadata()})
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.abort_code is not None:
            context.abort(self.abort_code, f"scripted {self.abort_code.name}")
        return self.decide(request)

    def CheckMessageSend(self, request, context):  # noqa: N802 - gRPC method name
        return pb.CheckMessageSendResponse(decision=self._answer(request, context))

    def CheckRoomPublish(self, request, context):  # noqa: N802 - gRPC method name
        return pb.CheckRoomPublishResponse(decision=self._answer(request, context))

    def CheckRoomJoin(self, request, context):  # noqa: N802 - gRPC method name
        return pb.CheckRoomJoinResponse(decision=self._answer(request, context))

    def CheckRoomStateChange(self, request, context):  # noqa: N802 - gRPC method name
        return pb.CheckRoomStateChangeResponse(decision=self._answer(request, context))

    def CheckMediaUpload(self, request_iterator, context):  # noqa: N802 - gRPC method name
        """Reads the whole stream (after `read_delay_s`, to play a slow reader), records it as an `Upload`, then
        answers like the other rpcs, with `scan` (what a reader would have found)."""
        if self.read_delay_s:
            time.sleep(self.read_delay_s)
        upload = Upload()
        for message in request_iterator:
            upload.kinds.append(message.WhichOneof("part"))
            if message.HasField("header"):
                upload.header = message.header
            else:
                upload.chunk_sizes.append(len(message.chunk))
                upload.content.extend(message.chunk)
        with self._lock:
            self.uploads.append(upload)
        decision = self._answer(upload, context)
        return pb.CheckMediaUploadResponse(decision=decision, scan=self.scan)


class Upload:
    """One `CheckMediaUpload` stream as the server received it."""

    def __init__(self) -> None:
        #: `header` or `chunk`, per message, in order.
        self.kinds: list[str] = []
        self.header: pb.MediaUploadHeader | None = None
        self.chunk_sizes: list[int] = []
        self.content = bytearray()


class FakeRoomguard:
    """A gRPC server on 127.0.0.1 that can be stopped and started again on the same port."""

    def __init__(
        self, port: int = 0, credentials: grpc.ServerCredentials | None = None, unix_socket: str | None = None
    ) -> None:
        self.service = FakePolicyService()
        self.port = port
        self.credentials = credentials
        #: Listen on this Unix socket path instead of a TCP port.
        self.unix_socket = unix_socket
        self._server: grpc.Server | None = None

    def start(self) -> FakeRoomguard:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        pb_grpc.add_PolicyServiceServicer_to_server(self.service, server)
        if self.unix_socket is not None:
            server.add_insecure_port(f"unix:{self.unix_socket}")
        elif self.credentials is None:
            self.port = server.add_insecure_port(f"127.0.0.1:{self.port}")
        else:
            self.port = server.add_secure_port(f"127.0.0.1:{self.port}", self.credentials)
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None).wait()
            self._server = None

    @property
    def endpoint(self) -> str:
        return f"unix:{self.unix_socket}" if self.unix_socket is not None else f"127.0.0.1:{self.port}"
