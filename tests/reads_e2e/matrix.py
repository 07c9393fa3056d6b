"""Helpers of the read guard's end-to-end suite: accounts, rooms and files on the real Synapse; roomguard, nginx and
Envoy processes; Matrix reads sent through a proxy byte for byte; roomguard's metrics and decision log, parsed."""

from __future__ import annotations

import itertools
import json
import os
import re
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# --------------------------------------------------------------------------------------------------- Synapse side


class Accounts:
    """Fresh accounts on the session's Synapse, their tokens recorded for the log audits."""

    def __init__(self, synapse, tokens: dict[str, str]):
        self.synapse = synapse
        self.tokens = tokens
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    def new(self, prefix: str, *, admin: bool = False):
        with self._lock:
            localpart = f"{prefix}{next(self._numbers)}"
        client = self.synapse.register(localpart, admin=admin)
        self.tokens[client.user_id] = client.token
        return client


@dataclass
class File:
    mxc: str
    content: bytes

    @property
    def server_and_id(self) -> str:
        return self.mxc.removeprefix("mxc://")


@dataclass
class World:
    """The rooms and files every scenario reads, made once per session."""

    creator: Any
    rooms: list[str]
    files: list[File]


def make_room(creator, i: int) -> str:
    """A public room (join rule public, history `shared`) with three messages."""
    room_id = creator.create_room_id(preset="public_chat", name=f"Salon public {i}")
    for j in range(3):
        resp = creator.send_text(room_id, f"rapport {i}.{j} du salon public")
        assert resp.status == 200, resp.body
    return room_id


def upload_file(creator, i: int) -> File:
    content = b"fichier %d: note de service\n" % i
    resp = creator.upload(content, f"note-{i}.txt", "text/plain")
    assert resp.status == 200, resp.body
    return File(resp.body["content_uri"], content)


def join_all(client, rooms: Iterable[str]) -> None:
    """Joins every room (straight on Synapse: a join is not a read)."""
    with ThreadPoolExecutor(4) as pool:
        for room_id, resp in zip(rooms, pool.map(client.join, rooms)):
            assert resp.status == 200, (room_id, resp.body)


def admin_api(synapse, admin, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """Synapse's admin API, straight on Synapse (the shipped proxy configurations do not serve it)."""
    return synapse_request(synapse, method, f"/_synapse/admin{path}", body, admin.token)


def synapse_request(synapse, method: str, path: str, body: Any = None, token: str | None = None):
    return sys.modules["reads_e2e_synapse_harness"].request(method, f"{synapse.base_url}{path}", body, token)


def proxy_request(port: int, method: str, target: str, **kwargs):
    """tests/proxies/harness.py's request: the target sent byte for byte, the answer with its headers."""
    return sys.modules["reads_e2e_proxy_harness"].request(port, method, target, **kwargs)


# --------------------------------------------------------------------------------------------------- reads


def q(identifier: str) -> str:
    """An id in one path segment, as clients encode it."""
    return urllib.parse.quote(identifier, safe="")


def auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def history(proxy, token: str | None, room_id: str, *, limit: int = 2, since: str | None = None):
    """`GET /_matrix/client/v3/rooms/{roomId}/messages?dir=b`: a page of the room's history, from the end or `since`."""
    target = f"/_matrix/client/v3/rooms/{q(room_id)}/messages?dir=b&limit={limit}"
    if since:
        target += f"&from={q(since)}"
    return proxy.request("GET", target, headers=auth(token))


def download(proxy, token: str | None, file: File):
    """`GET /_matrix/client/v1/media/download/{server}/{mediaId}` (authenticated media)."""
    return proxy.request("GET", f"/_matrix/client/v1/media/download/{file.server_and_id}", headers=auth(token))


def thumbnail(proxy, token: str | None, file: File):
    return proxy.request(
        "GET",
        f"/_matrix/client/v1/media/thumbnail/{file.server_and_id}?width=32&height=32&method=scale",
        headers=auth(token),
    )


def legacy_download(proxy, token: str | None, file: File, version: str = "v3"):
    """`GET /_matrix/media/{v3,r0,v1}/download/{server}/{mediaId}`: the legacy, unauthenticated media API."""
    return proxy.request("GET", f"/_matrix/media/{version}/download/{file.server_and_id}", headers=auth(token))


def sync(proxy, token: str, since: str | None = None):
    target = "/_matrix/client/v3/sync?timeout=0"
    if since:
        target += f"&since={q(since)}"
    return proxy.request("GET", target, headers=auth(token))


def search(proxy, token: str, term: str):
    body = json.dumps({"search_categories": {"room_events": {"search_term": term}}}).encode()
    return proxy.request(
        "POST", "/_matrix/client/v3/search", headers={**auth(token), "Content-Type": "application/json"}, body=body
    )


_txn = itertools.count(1)


def send(proxy, token: str, room_id: str, text: str):
    """`PUT /rooms/{roomId}/send/m.room.message/{txnId}`: not a read."""
    body = json.dumps({"msgtype": "m.text", "body": text}).encode()
    return proxy.request(
        "PUT",
        f"/_matrix/client/v3/rooms/{q(room_id)}/send/m.room.message/e2e-{time.time_ns()}-{next(_txn)}",
        headers={**auth(token), "Content-Type": "application/json"},
        body=body,
    )


def assert_rate_refusal(resp, reason: str, what: str) -> dict:
    """A refusal for a rate as a Matrix client expects it: 429 M_LIMIT_EXCEEDED, retry_after_ms > 0, a Retry-After
    header in whole seconds that agrees with it, the reason code in the error. Returns the body."""
    assert resp.status == 429, (what, resp.status, resp.body[:500])
    assert resp.headers.get("content-type", "").startswith("application/json"), (what, resp.headers)
    body = resp.json()
    assert body["errcode"] == "M_LIMIT_EXCEEDED", (what, body)
    assert f"({reason})" in body["error"], (what, body)
    assert isinstance(body["retry_after_ms"], int) and body["retry_after_ms"] > 0, (what, body)
    retry_after = resp.headers.get("retry-after")
    assert retry_after is not None and retry_after.isdigit(), (what, resp.headers)
    # Whole seconds, rounded up: never earlier than retry_after_ms.
    assert int(retry_after) * 1000 >= body["retry_after_ms"] > (int(retry_after) - 1) * 1000, (what, retry_after, body)
    # The budgets are per hour and every test's account made its first read moments ago: the count falls in about an
    # hour (the shared counter counts by the minute, hence the margin).
    assert 3_300_000 <= body["retry_after_ms"] <= 3_600_000, (what, body)
    return body


# --------------------------------------------------------------------------------------------------- roomguard


class Roomguards:
    """Real roomguard processes with the read guard on (`--reads-http-listen`, `--reads-homeserver-url`)."""

    def __init__(self, binary: Path, policies: Path, synapse, tmp_path_factory, synapse_harness):
        self.binary = binary
        self.policies = policies
        self.synapse = synapse
        self.tmp_path_factory = tmp_path_factory
        self.harness = synapse_harness
        self.all: list = []

    def start(self, name: str, *flags: str):
        """A roomguard named `name` (its logs: `<workdir>/<name>.<n>.log`), with `flags` after the read guard's."""
        h = self.harness
        workdir = self.tmp_path_factory.mktemp(name)
        reads_port = h.free_port()
        server = h.Roomguard(
            binary=self.binary,
            policies=self.policies,
            workdir=workdir,
            name=name,
            metrics_port=h.free_port(),
            extra_args=[
                "--reads-http-listen", f"127.0.0.1:{reads_port}",
                "--reads-homeserver-url", self.synapse.base_url,
                *flags,
            ],
        )
        server.reads_http = f"127.0.0.1:{reads_port}"
        self.all.append(server)
        # roomguard's own log at debug: the audits check that even its most verbose logging never writes a token.
        saved = os.environ.get("RUST_LOG")
        os.environ["RUST_LOG"] = saved or "info,roomguard=debug"
        try:
            server.start()
        finally:
            if saved is None:
                del os.environ["RUST_LOG"]
        wait_http_ok(f"http://{server.reads_http}/health", server)
        return server

    def stop_all(self) -> None:
        for server in self.all:
            if server.proc is not None:
                server.resume()
            server.stop()


def wait_http_ok(url: str, server, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if server.proc is not None and server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.proc.returncode}:\n{server.log_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer 200 within {timeout_s}s")
        time.sleep(0.05)


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def metrics(server) -> list[tuple[str, dict[str, str], float]]:
    """`GET /metrics` of a roomguard: (name, labels, value) of every sample."""
    with urllib.request.urlopen(f"http://{server.host}:{server.metrics_port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    samples = []
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and not line.startswith("#"):
            labels = dict(_LABEL.findall(match.group(2) or ""))
            samples.append((match.group(1), labels, float(match.group(3))))
    return samples


def metric(server, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels` (0 when there is none)."""
    return sum(v for n, l, v in metrics(server) if n == name and labels.items() <= l.items())


def decision_lines(server) -> list[dict]:
    """Every decision-log line (NDJSON on stdout) roomguard wrote, all its starts."""
    lines = []
    for line in server.log_text().splitlines():
        if line.startswith("{") and '"decision_id"' in line:
            lines.append(json.loads(line))
    return lines


def read_lines(server, user_id: str | None = None) -> list[dict]:
    """The decision-log lines of reads (`"rpc":"CheckRead"`), of one account when `user_id` is given."""
    return [
        d for d in decision_lines(server)
        if d.get("rpc") == "CheckRead" and (user_id is None or d.get("user_id") == user_id)
    ]


def wait_for(predicate, what: str, timeout_s: float = 5.0, interval_s: float = 0.02):
    """Polls `predicate` until it returns a true value (the decision log is written in 20 ms batches)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s}s: {what}")
        time.sleep(interval_s)


# --------------------------------------------------------------------------------------------------- proxies


@dataclass
class Proxies:
    nginx_bin: str
    envoy_bin: str
    synapse: Any
    tmp_path_factory: Any
    proxy_harness: Any
    synapse_harness: Any
    started: list = field(default_factory=list)

    def nginx(self, authz: str | list[str], failure_mode: str):
        """deploy/nginx in front of the session's Synapse, asking `authz` (one roomguard's reads.http_listen, or
        several: one upstream server each)."""
        name = f"nginx-{len(self.started)}-{failure_mode}"
        workdir = self.tmp_path_factory.mktemp(name)
        proxy = self.proxy_harness.Nginx(workdir, f"127.0.0.1:{self.synapse.port}", authz, failure_mode)
        self.started.append((name, proxy))  # stopped at the end even if it does not start
        proxy.start()
        self.synapse_harness._register_pid(name, proxy.proc.pid)
        return proxy

    def envoy(self, grpc_address: str, failure_mode_allow: bool):
        """deploy/envoy/envoy.yaml in front of the session's Synapse, ext_authz to `grpc_address`."""
        name = f"envoy-{len(self.started)}-{'open' if failure_mode_allow else 'closed'}"
        workdir = self.tmp_path_factory.mktemp(name)
        proxy = self.proxy_harness.Envoy(
            self.envoy_bin, workdir, f"127.0.0.1:{self.synapse.port}", grpc_address, failure_mode_allow
        )
        self.started.append((name, proxy))  # stopped at the end even if it does not start
        proxy.start()
        self.synapse_harness._register_pid(name, proxy.proc.pid)
        return proxy

    def stop_all(self) -> None:
        for name, proxy in self.started:
            proxy.stop()
            self.synapse_harness._unregister_pid(name)


# --------------------------------------------------------------------------------------------------- the bulk script


@dataclass
class BulkRun:
    """What the bulk script got: the answer to each room's first history page and to each file's download."""

    rooms: list  # proxy Response per room, in order
    files: list  # proxy Response per file, in order

    def first_refused(self, answers: list) -> int | None:
        """1-based position of the first answer that is not a 200."""
        return next((i + 1 for i, r in enumerate(answers) if r.status != 200), None)


def bulk_read(proxy, token: str, world: World, rooms: int | None = None, files: int | None = None) -> BulkRun:
    """One account paging through the history of every room (its latest page, `dir=b`), then downloading every file,
    one request at a time, as a scraping script does."""
    room_answers = [history(proxy, token, room_id) for room_id in world.rooms[:rooms]]
    file_answers = [download(proxy, token, file) for file in world.files[:files]]
    return BulkRun(room_answers, file_answers)


def assert_bulk_refused_past_budgets(run: BulkRun, world: World, rooms_budget: int, files_budget: int) -> None:
    """Exactly the first `rooms_budget` rooms and `files_budget` files served (200, with their content), every read
    after them refused for its rate."""
    statuses = [r.status for r in run.rooms]
    assert statuses == [200] * rooms_budget + [429] * (len(run.rooms) - rooms_budget), statuses
    for resp in run.rooms[:rooms_budget]:
        assert resp.json()["chunk"], "a served page has the room's events"
    for n, resp in enumerate(run.rooms[rooms_budget:], rooms_budget + 1):
        assert_rate_refusal(resp, "READ_RATE_EXCEEDED", f"history of room {n}")
    statuses = [r.status for r in run.files]
    assert statuses == [200] * files_budget + [429] * (len(run.files) - files_budget), (
        f"first refused: {run.first_refused(run.files)}, served: {statuses.count(200)}"
    )
    for file, resp in zip(world.files, run.files[:files_budget]):
        assert resp.body == file.content
    for n, resp in enumerate(run.files[files_budget:], files_budget + 1):
        assert_rate_refusal(resp, "DOWNLOAD_RATE_EXCEEDED", f"file {n}")
