"""Stub servers for the proxy configuration tests: a Synapse that echoes what it got, and a roomguard read guard that
follows the contract of roomguard's HTTP endpoint for nginx `auth_request` (the gRPC one for Envoy is in
stub_ext_authz.py).

Each stub runs in a thread of the test process, on 127.0.0.1 and a port of its own, and records what it received.

The authz stub decides from the client's token, so that a test chooses the answer with the request it sends:

    Authorization: Bearer allow        -> 204, user @alice:example.org
    Authorization: Bearer rate         -> deny 429 READ_RATE_EXCEEDED (DOWNLOAD_RATE_EXCEEDED for media), retry 1234567 ms
    Authorization: Bearer forbidden    -> deny 403 M_FORBIDDEN, with a non-ASCII message escaped as \\uXXXX
    Authorization: Bearer malformed    -> deny 400 M_UNRECOGNIZED (also any bad percent-encoding in the path)
    Authorization: Bearer undecided    -> deny with X-Roomguard-Status 503 (roomguard fails closed itself)
    Authorization: Bearer bare         -> 403 with no X-Roomguard-* header at all
    Authorization: Bearer broken       -> 500 (roomguard is broken: the proxy's failure mode)
    Authorization: Bearer slow         -> answers after 5 s (longer than the proxy's timeout)
    no token                           -> deny 403 UNAUTHENTICATED_MEDIA for media and thumbnails, else allow
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

# Synapse 1.163's read paths, matched on the raw path as Synapse does (case-sensitive, anchored).
_CLIENT = r"/_matrix/client/(?:r0|v3|v1|api/v1|unstable)"
_KINDS = [
    ("history", re.compile(_CLIENT + r"/rooms/[^/]*/(?:messages|initialSync)$")),
    ("history", re.compile(_CLIENT + r"/rooms/[^/]*/(?:context|event)/[^/]*$")),
    ("history", re.compile(r"/_matrix/client/(?:v1|unstable)/rooms/[^/]*/(?:threads|timestamp_to_event)$")),
    ("history", re.compile(r"/_matrix/client/(?:v1|unstable)/rooms/[^/]*/relations/[^/]*(?:/[^/]*){0,2}$")),
    ("history", re.compile(_CLIENT + r"/(?:initialSync|events)$")),
    ("history", re.compile(_CLIENT + r"/events/[^/]*$")),
    ("search", re.compile(_CLIENT + r"/search$")),
    ("sync_initial", re.compile(_CLIENT + r"/sync$")),
    ("sync_initial", re.compile(r"/_matrix/client/unstable/org\.matrix\.simplified_msc3575/sync$")),
    ("media", re.compile(r"/_matrix/(?:client/v1/media|media/(?:v3|r0|v1))/download/[^/]*/[^/]*(?:/[^/]*)?$")),
    ("thumbnail", re.compile(r"/_matrix/(?:client/v1/media|media/(?:v3|r0|v1))/thumbnail/[^/]*/[^/]*$")),
]

_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def read_kind(raw_uri: str) -> str:
    path, _, query = raw_uri.partition("?")
    for kind, pattern in _KINDS:
        if pattern.match(path):
            if kind == "sync_initial" and "simplified_msc3575" not in path:
                args = parse_qs(query)
                if "since" in args and args.get("full_state", ["false"])[0] != "true":
                    return "other"  # an incremental sync
            return kind
    return "other"


@dataclass
class Seen:
    """One request a stub received."""

    method: str
    target: str  # the request target exactly as received (raw path and query)
    headers: dict[str, str]  # lower-cased names; a repeated header keeps its last value
    body: bytes
    peer: tuple[str, int]  # the client's address: one value per TCP connection


@dataclass
class Recorder:
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, item: Seen) -> None:
        with self.lock:
            self.seen.append(item)

    def clear(self) -> None:
        with self.lock:
            self.seen.clear()

    def snapshot(self) -> list[Seen]:
        with self.lock:
            return list(self.seen)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # A proxy that gave up on a slow answer closed the connection: expected, not worth a traceback.
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keepalive, as nginx's upstream keepalive expects
    disable_nagle_algorithm = True  # headers and body are two writes: without this, each answer waits ~40 ms

    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length:
            return self.rfile.read(int(length))
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return b""

    def _record(self) -> Seen:
        item = Seen(
            method=self.command,
            # Not self.path: http.server turns a leading `//` into `/`. The request line is what was sent.
            target=self.requestline.split(" ")[1],
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self._read_body(),
            peer=self.client_address[:2],
        )
        self.server.recorder.add(item)
        return item

    def _send(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if status not in (204, 304):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD" and status not in (204, 304):
            self.wfile.write(body)

    def do_GET(self):
        self.handle_any()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_PATCH = do_GET


class _SynapseHandler(_Handler):
    """Echoes the request as JSON. `?synapse_status=N` makes it answer N with a Matrix error of its own."""

    def handle_any(self):
        item = self._record()
        query = parse_qs(item.target.split("?", 1)[1]) if "?" in item.target else {}
        status = int(query.get("synapse_status", ["200"])[0])
        if status != 200:
            body = {"errcode": "M_SYNAPSE_OWN", "error": f"Synapse's own {status}"}
        else:
            body = {
                "stub": "synapse",
                "method": item.method,
                "raw_target": item.target,
                "body": item.body.decode("latin-1"),
                "headers": item.headers,
            }
        self._send(status, {"Content-Type": "application/json", "X-Stub": "synapse"}, json.dumps(body).encode())


@dataclass
class Decision:
    """What the stub decided for one read, whatever the front (nginx's HTTP or Envoy's gRPC) asked it."""

    action: str  # allow | deny | broken (answer an error) | bare (deny with no detail)
    kind: str = "other"
    decision_id: str = ""
    user: str = ""
    status: int = 0  # the client's status on a deny
    reason: str = ""
    body: str = ""  # the Matrix error, ASCII JSON
    retry_after_ms: int | None = None

    @property
    def retry_after_s(self) -> int | None:
        return None if self.retry_after_ms is None else math.ceil(self.retry_after_ms / 1000)


def decide(method: str, uri: str, authorization: str) -> Decision:
    """The stub's policy: the answer is chosen by the token (see the module's docstring). Sleeps for `slow`."""
    kind = read_kind(uri)
    decision_id = str(uuid.uuid4())
    token = authorization[len("Bearer ") :] if authorization.startswith("Bearer ") else ""
    if not token and "?" in uri:
        token = parse_qs(uri.split("?", 1)[1]).get("access_token", [""])[0]

    def deny(status, errcode, message, reason, retry_after_ms=None):
        body = {"errcode": errcode, "error": f"{message} ({reason})"}
        if retry_after_ms is not None:
            body["retry_after_ms"] = retry_after_ms
        # ASCII only: json.dumps escapes non-ASCII as \uXXXX.
        text = json.dumps(body, ensure_ascii=True, separators=(",", ":"))
        return Decision("deny", kind, decision_id, "", status, reason, text, retry_after_ms)

    if token == "slow":
        time.sleep(5)
    if token == "broken":
        return Decision("broken", kind, decision_id)
    if token == "bare":
        return Decision("bare", kind, decision_id)
    if not uri or not method or token == "malformed" or _BAD_PERCENT.search(uri):
        return deny(400, "M_UNRECOGNIZED", "Unrecognised request", "MALFORMED_REQUEST")
    if token == "rate":
        reason = "DOWNLOAD_RATE_EXCEEDED" if kind in ("media", "thumbnail") else "READ_RATE_EXCEEDED"
        return deny(429, "M_LIMIT_EXCEEDED", "Too many reads", reason, retry_after_ms=1234567)
    if token == "forbidden":
        return deny(403, "M_FORBIDDEN", "Lecture refusée : salon classifié", "READ_FORBIDDEN")
    if token == "undecided":
        return deny(503, "M_UNKNOWN", "roomguard cannot decide", "READ_GUARD_UNAVAILABLE")
    if not token and kind in ("media", "thumbnail"):
        return deny(403, "M_FORBIDDEN", "Media need a token", "UNAUTHENTICATED_MEDIA")
    return Decision("allow", kind, decision_id, "@alice:example.org" if token else "")


class _AuthzHandler(_Handler):
    """roomguard's /authz endpoint for nginx auth_request, as the contract says."""

    def handle_any(self):
        item = self._record()
        if item.target.split("?", 1)[0] != "/authz":
            self._send(404, {})
            return
        d = decide(
            item.headers.get("x-original-method", ""),
            item.headers.get("x-original-uri", ""),
            item.headers.get("authorization", ""),
        )
        if d.action == "broken":
            self._send(500, {"Content-Type": "text/plain"}, b"stub: broken")
        elif d.action == "bare":
            self._send(403, {})
        elif d.action == "allow":
            self._send(204, {"X-Roomguard-Decision-Id": d.decision_id, "X-Roomguard-User": d.user, "X-Roomguard-Kind": d.kind})
        else:
            headers = {
                "X-Roomguard-Decision-Id": d.decision_id,
                "X-Roomguard-Kind": d.kind,
                "X-Roomguard-Status": str(d.status),
                "X-Roomguard-Reasons": d.reason,
                "X-Roomguard-Body": d.body,
            }
            if d.retry_after_ms is not None:
                headers["X-Roomguard-Retry-After-Ms"] = str(d.retry_after_ms)
                headers["X-Roomguard-Retry-After"] = str(d.retry_after_s)
            self._send(403, headers)


class StubServer:
    """A stub on 127.0.0.1, serving in a daemon thread until stop()."""

    def __init__(self, handler: type[_Handler], port: int = 0):
        self.recorder = Recorder()
        self._server = _Server(("127.0.0.1", port), handler)
        self._server.recorder = self.recorder
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def start(self) -> "StubServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def synapse_stub(port: int = 0) -> StubServer:
    return StubServer(_SynapseHandler, port).start()


def authz_stub(port: int = 0) -> StubServer:
    return StubServer(_AuthzHandler, port).start()


if __name__ == "__main__":
    # Run the stubs by hand: python tests/proxies/stubs.py authz 127.0.0.1:50052 | synapse 127.0.0.1:8008
    import sys

    which, listen = sys.argv[1], sys.argv[2]
    port = int(listen.rsplit(":", 1)[1])
    stub = (authz_stub if which == "authz" else synapse_stub)(port)
    print(f"{which} stub on {stub.address}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        stub.stop()
