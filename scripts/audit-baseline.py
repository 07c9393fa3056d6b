#!/usr/bin/env python3
"""The floor under `roomguard audit`'s run time: only the reads an audit cannot avoid, and nothing else.

For each room (a list, or every room of the homeserver), with N rooms at once as `roomguard audit --concurrency N`:
page through its whole history backwards with the admin API (`/_synapse/admin/v1/rooms/{roomId}/messages?dir=b&
limit=1000`), then download each of its files (`/_synapse/admin/v1/room/{roomId}/media`, each file fetched whole from
`/_matrix/client/v1/media/download/...` with the admin token). No decision, no extraction, no report. One keep-alive
connection per worker, as a pooled client has. Prints the elapsed seconds and what was read.

    .venv/bin/python scripts/audit-baseline.py --homeserver http://127.0.0.1:8008 --admin-token-file admin.token \\
        [--rooms all|!a:server,!b:server] [--concurrency 4] [--json]

scripts/bench-audit.py runs it against the audit on the same homeserver.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor


class Reader:
    """One worker's keep-alive connection to the homeserver."""

    def __init__(self, base: str, token: str):
        url = urllib.parse.urlsplit(base)
        self.https = url.scheme == "https"
        self.host = url.hostname
        self.port = url.port or (443 if self.https else 80)
        self.prefix = url.path.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"}
        self.conn = None

    def _connect(self):
        cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        return cls(self.host, self.port, timeout=120)

    def get(self, path: str) -> tuple[int, bytes]:
        for attempt in range(3):
            if self.conn is None:
                self.conn = self._connect()
            try:
                self.conn.request("GET", self.prefix + path, headers=self.headers)
                resp = self.conn.getresponse()
                return resp.status, resp.read()
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def json(self, path: str):
        status, body = self.get(path)
        if status != 200:
            raise RuntimeError(f"GET {path.split('?')[0]}: {status}")
        return json.loads(body)


def q(identifier: str) -> str:
    return urllib.parse.quote(identifier, safe="")


def all_rooms(reader: Reader) -> list[str]:
    rooms, start = [], 0
    while True:
        page = reader.json(f"/_synapse/admin/v1/rooms?from={start}&limit=500&order_by=name&dir=f")
        rooms += [r["room_id"] for r in page["rooms"]]
        if page.get("next_batch") is None:
            return rooms
        start = int(page["next_batch"])


def read_room(reader: Reader, room_id: str) -> dict:
    counts = {"events": 0, "pages": 0, "files": 0, "bytes": 0, "file_errors": 0}
    since = None
    while True:
        path = f"/_synapse/admin/v1/rooms/{q(room_id)}/messages?dir=b&limit=1000"
        if since:
            path += f"&from={q(since)}"
        page = reader.json(path)
        counts["pages"] += 1
        counts["events"] += len(page["chunk"])
        if not page["chunk"] or not page.get("end"):
            break
        since = page["end"]
    media = reader.json(f"/_synapse/admin/v1/room/{q(room_id)}/media")
    for mxc in media.get("local", []) + media.get("remote", []):
        server_and_id = mxc.removeprefix("mxc://")
        status, body = reader.get(f"/_matrix/client/v1/media/download/{server_and_id}")
        if status == 200:
            counts["files"] += 1
            counts["bytes"] += len(body)
        else:
            counts["file_errors"] += 1
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--homeserver", required=True)
    parser.add_argument("--admin-token-file", required=True)
    parser.add_argument("--rooms", default="all", help="`all` or a comma-separated list of room ids")
    parser.add_argument("--concurrency", type=int, default=4, help="rooms at once (the audit's default: 4)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = parser.parse_args()
    with open(args.admin_token_file) as f:
        token = f.read().strip()

    started = time.monotonic()
    local = threading.local()

    def reader() -> Reader:
        if not hasattr(local, "reader"):
            local.reader = Reader(args.homeserver, token)
        return local.reader

    rooms = all_rooms(reader()) if args.rooms == "all" else [r for r in args.rooms.split(",") if r]
    with ThreadPoolExecutor(max(1, args.concurrency)) as pool:
        per_room = list(pool.map(lambda room_id: read_room(reader(), room_id), rooms))
    elapsed = time.monotonic() - started
    totals = {key: sum(c[key] for c in per_room) for key in ("events", "pages", "files", "bytes", "file_errors")}
    totals.update(rooms=len(rooms), seconds=round(elapsed, 3), concurrency=args.concurrency)
    if args.json:
        print(json.dumps(totals))
    else:
        print(f"baseline: {elapsed:.2f} s, {len(rooms)} rooms, {totals['events']} events in {totals['pages']} pages, "
              f"{totals['files']} files ({totals['bytes']} bytes), {totals['file_errors']} files not served")
    return 0


if __name__ == "__main__":
    sys.exit(main())
