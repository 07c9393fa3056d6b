"""The real roomguard classifies every raw path that Synapse itself serves as a read as that kind of read (or refuses
it as malformed): never `other`. The paths are the many variants of `paths.variants()` (prefixes, encodings, case,
`//`, dot segments, trailing slashes); the judge is Synapse's own servlet patterns, matched against the raw path as
Synapse matches them. No proxy in between: this pins roomguard's parser, the proxies are pinned by the other files.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import paths  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def roomguard():
    """The real binary with its HTTP front; no token is ever sent, so the homeserver URL is never called."""
    binary = Path(os.environ.get("ROOMGUARD_BIN", REPO / "target/debug/roomguard"))
    if not binary.exists():
        pytest.skip(f"{binary} is missing: cargo build first")
    grpc_port, http_port = free_port(), free_port()
    proc = subprocess.Popen(
        [str(binary), "serve", "--listen", f"127.0.0.1:{grpc_port}", "--policies", str(REPO / "policies"),
         "--decision-log", "off", "--reads-http-listen", f"127.0.0.1:{http_port}",
         "--reads-homeserver-url", "http://127.0.0.1:9"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/health", timeout=1):
                break
        except OSError:
            assert proc.poll() is None, "roomguard exited at start"
            assert time.monotonic() < deadline, "roomguard did not open its HTTP front"
            time.sleep(0.05)
    yield f"http://127.0.0.1:{http_port}"
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=15)


def ask(base: str, method: str, target: str) -> tuple[int, str, str]:
    """roomguard's answer to an auth_request for `target`: status, kind, reasons."""
    request = urllib.request.Request(
        f"{base}/authz", headers={"X-Original-URI": target, "X-Original-Method": method}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, answer.headers["X-Roomguard-Kind"], answer.headers["X-Roomguard-Reasons"]
    except urllib.error.HTTPError as refusal:
        return (
            int(refusal.headers["X-Roomguard-Status"]),
            refusal.headers["X-Roomguard-Kind"],
            refusal.headers["X-Roomguard-Reasons"],
        )


def synapse_kinds() -> list[tuple[str, object]]:
    """(kind, pattern) for each of Synapse's read servlets."""
    pytest.importorskip("synapse")
    from synapse.rest.client import events, initial_sync, media, relations, room, sync
    from synapse.rest.media import download_resource, thumbnail_resource

    by_kind = {
        "history": [
            room.RoomMessageListRestServlet, room.RoomInitialSyncRestServlet, room.RoomEventServlet,
            room.RoomEventContextServlet, room.TimestampLookupRestServlet, relations.RelationPaginationServlet,
            relations.ThreadsServlet, events.EventStreamRestServlet, events.EventRestServlet,
            initial_sync.InitialSyncRestServlet,
        ],
        "search": [room.SearchRestServlet],
        "sync_initial": [sync.SyncRestServlet, sync.SlidingSyncRestServlet],
        "media": [media.DownloadResource, download_resource.DownloadResource],
        "thumbnail": [media.ThumbnailResource, thumbnail_resource.ThumbnailResource],
    }
    return [(kind, p) for kind, servlets in by_kind.items() for s in servlets for p in s.PATTERNS]


def test_every_path_synapse_serves_as_a_read_is_that_read(roomguard):
    """For every variant whose raw path one of Synapse's read servlets matches, roomguard answers that servlet's kind
    (a sync without `since` is an initial sync), or refuses the request as malformed (400); never `other`."""
    judged = synapse_kinds()
    checked = 0
    wrong = []
    for target in paths.variants():
        path = target.split("?", 1)[0]
        kinds = {kind for kind, pattern in judged if pattern.match(path)}
        if not kinds:
            continue
        checked += 1
        method = "POST" if kinds & {"search"} or "msc3575" in path else "GET"
        status, kind, reasons = ask(roomguard, method, target)
        if status == 400 and reasons == "INVALID_READ_REQUEST":
            continue
        if kind not in kinds:
            wrong.append((target, kinds, kind, status, reasons))
    assert checked > 100, f"only {checked} variants are Synapse reads: the judge is broken"
    assert not wrong, "\n".join(map(str, wrong[:40]))


def test_a_sample_of_other_paths_is_other(roomguard):
    """Paths that are not reads (sends, state, members, uploads, versions) are `other`: allowed, never counted."""
    for target in [
        "/_matrix/client/v3/rooms/%21r%3Ae.org/send/m.room.message/t1",
        "/_matrix/client/v3/rooms/%21r%3Ae.org/state",
        "/_matrix/client/v3/rooms/%21r%3Ae.org/members",
        "/_matrix/media/v3/upload",
        "/_matrix/client/versions",
        "/_matrix/client/v3/sync?since=s1_2",
    ]:
        assert ask(roomguard, "GET", target)[:2] == (204, "other"), target
