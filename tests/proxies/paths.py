"""Request paths shared by the nginx and Envoy tests: Synapse's reads, what must not be checked, and the tricks."""

from __future__ import annotations

import itertools
import re

ROOM = "%21room%3Aexample.org"
EVENT = "%24event%3Aexample.org"

# (method, raw request target, the kind roomguard reports). Every one is a read of Synapse 1.163 (test_paths.py checks
# them against Synapse's own servlet patterns when Synapse is installed).
READS = [
    ("GET", f"/_matrix/client/v3/rooms/{ROOM}/messages?dir=b&limit=10", "history"),
    ("GET", f"/_matrix/client/r0/rooms/{ROOM}/messages?dir=b", "history"),
    ("GET", f"/_matrix/client/api/v1/rooms/{ROOM}/messages", "history"),
    ("GET", "/_matrix/client/unstable/rooms/!room:example.org/messages?from=t1", "history"),
    ("GET", f"/_matrix/client/v3/rooms/{ROOM}/context/{EVENT}?limit=5", "history"),
    ("GET", f"/_matrix/client/v3/rooms/{ROOM}/event/{EVENT}", "history"),
    ("GET", "/_matrix/client/v3/initialSync?limit=1", "history"),
    ("GET", f"/_matrix/client/v3/rooms/{ROOM}/initialSync", "history"),
    ("GET", f"/_matrix/client/v1/rooms/{ROOM}/threads?include=all", "history"),
    ("GET", f"/_matrix/client/v1/rooms/{ROOM}/relations/{EVENT}", "history"),
    ("GET", f"/_matrix/client/v1/rooms/{ROOM}/relations/{EVENT}/m.thread", "history"),
    ("GET", f"/_matrix/client/unstable/rooms/{ROOM}/relations/{EVENT}/m.annotation/m.reaction", "history"),
    ("GET", f"/_matrix/client/v1/rooms/{ROOM}/timestamp_to_event?ts=1700000000000&dir=f", "history"),
    ("GET", "/_matrix/client/v3/events?from=s1&timeout=0", "history"),
    ("GET", f"/_matrix/client/v3/events/{EVENT}", "history"),
    ("POST", "/_matrix/client/v3/search?next_batch=b1", "search"),
    ("GET", "/_matrix/client/v3/sync?timeout=0", "sync_initial"),
    ("GET", "/_matrix/client/v3/sync?since=s72_1&timeout=30000", "other"),
    ("GET", "/_matrix/client/r0/sync?since=s72_1&full_state=true", "sync_initial"),
    ("POST", "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync?timeout=0", "sync_initial"),
    ("GET", "/_matrix/client/v1/media/download/example.org/abcDEF", "media"),
    ("GET", "/_matrix/client/v1/media/download/example.org/abcDEF/cat.png", "media"),
    ("GET", "/_matrix/client/v1/media/thumbnail/example.org/abcDEF?width=32&height=32", "thumbnail"),
    ("GET", "/_matrix/media/v3/download/example.org/abcDEF", "media"),
    ("GET", "/_matrix/media/r0/download/example.org/abcDEF/file%20name.pdf", "media"),
    ("GET", "/_matrix/media/v1/download/example.org/abcDEF?allow_redirect=true", "media"),
    ("GET", "/_matrix/media/v3/thumbnail/example.org/abcDEF?width=32&height=32&method=crop", "thumbnail"),
]

# (method, raw request target): never checked (and what nginx/Envoy must still pass to Synapse).
NOT_READS = [
    ("PUT", f"/_matrix/client/v3/rooms/{ROOM}/send/m.room.message/txn1"),
    ("POST", "/_matrix/media/v3/upload?filename=cat.png"),
    ("PUT", "/_matrix/media/v3/upload/example.org/abcDEF"),
    ("POST", "/_matrix/media/v1/create"),
    ("GET", "/_matrix/media/v3/config"),
    ("GET", "/_matrix/client/v1/media/preview_url?url=https%3A%2F%2Fexample.org%2Fmessages"),
    ("GET", "/_matrix/client/versions"),
    ("GET", f"/_matrix/client/v3/rooms/{ROOM}/state"),
    ("GET", f"/_matrix/client/v3/rooms/{ROOM}/state/m.room.name/"),
    ("GET", f"/_matrix/client/v3/rooms/{ROOM}/members"),
    ("PUT", f"/_matrix/client/v3/rooms/{ROOM}/typing/%40alice%3Aexample.org"),
    ("POST", f"/_matrix/client/v3/rooms/{ROOM}/receipt/m.read/{EVENT}"),
    ("POST", "/_matrix/client/v3/login"),
    ("GET", "/_matrix/client/v3/profile/%40alice%3Aexample.org"),
    ("GET", "/_matrix/client/v3/user/%40alice%3Aexample.org/account_data/im.vector.setting.sync_settings"),
    ("GET", f"/_matrix/client/v3/rooms/{ROOM}/messages_archive"),  # not the segment `messages`
    ("OPTIONS", f"/_matrix/client/v3/rooms/{ROOM}/messages?dir=b"),  # CORS preflight: Synapse answers it, no data
    ("GET", f"/_matrix/federation/v1/event/{EVENT}"),
    ("GET", "/_matrix/federation/v1/media/download/abcDEF"),
    ("GET", "/_matrix/key/v2/server"),
    ("GET", "/_synapse/client/pick_username/account_details"),
]

# Raw request targets that nginx would normalise (or that only differ from a read by case, a slash, an encoding):
# each must be checked, whatever Synapse then makes of it.
TRICKS = [
    f"/_matrix/client/v3//rooms/{ROOM}/messages",
    "//_matrix/client/v3/sync",
    "/_matrix/client/v3/./sync",
    f"/_matrix/client/v3/rooms/{ROOM}/./messages",
    f"/_matrix/client/v3/rooms/x/../{ROOM}/messages",
    f"/_matrix/client/v3/rooms/{ROOM}/messages/..",
    "/x/../_matrix/client/v3/sync",
    f"/_matrix/client/v3/rooms/{ROOM}/%2e%2e/{ROOM}/messages",
    f"/_matrix/client/v3/rooms/{ROOM}/%2E/messages",
    f"/_matrix/client/V3/ROOMS/{ROOM}/MESSAGES",
    "/_matrix/client/v3/Sync",
    "/_matrix/client/v3/sync/",
    f"/_matrix/client/v3/rooms/{ROOM}/messages/?dir=b",
    "/_matrix/client/v3/rooms/%21a%2Fb%3Aexample.org/messages",
    "/_matrix/client/v3/rooms/%21a%2F..%2Fb%3Aexample.org/messages",
    "/_matrix/client/v3/rooms/!room:example.org/messages",
    "/_matrix/client/r0/rooms/%21room%3Aexample.org/messages",
    "/_matrix/client/api/v1/initialSync",
    "/_matrix/client/v3/sync;jsessionid=1",
    "/_matrix/client/v3/sync.json",
    "/_matrix/%63lient/v3/sync",
    "/_matrix/client/v3/sync?access_token=secret",
    "/_matrix/media/v3/download/example.org/abcDEF/..%2F..%2Fetc",
    "/_matrix/client/v1/media/THUMBNAIL/example.org/abcDEF?width=1&height=1",
]


def synapse_read_patterns() -> list[re.Pattern]:
    """Synapse's own read servlet patterns (imports Synapse: only where it is installed)."""
    from synapse.rest.client import events, initial_sync, media, relations, room, sync
    from synapse.rest.media import download_resource, thumbnail_resource

    servlets = [
        room.RoomMessageListRestServlet,
        room.RoomInitialSyncRestServlet,
        room.RoomEventServlet,
        room.RoomEventContextServlet,
        room.SearchRestServlet,
        room.TimestampLookupRestServlet,
        relations.RelationPaginationServlet,
        relations.ThreadsServlet,
        events.EventStreamRestServlet,
        events.EventRestServlet,
        initial_sync.InitialSyncRestServlet,
        sync.SyncRestServlet,
        sync.SlidingSyncRestServlet,
        media.DownloadResource,
        media.ThumbnailResource,
        download_resource.DownloadResource,
        thumbnail_resource.ThumbnailResource,
    ]
    return [pattern for servlet in servlets for pattern in servlet.PATTERNS]


def variants() -> list[str]:
    """Many raw targets around Synapse's reads: prefixes, encodings, case, dots, slashes, trailing bits."""
    prefixes = ["/_matrix/client/r0", "/_matrix/client/v3", "/_matrix/client/v1", "/_matrix/client/api/v1",
                "/_matrix/client/unstable", "/_matrix/client/unstable/org.matrix.simplified_msc3575"]
    rooms = ["!r:e.org", "%21r%3Ae.org", "%21r%2Fx%3Ae.org", "%21r%2F..%2Fx%3Ae.org", ".", ".."]
    tails = ["messages", "initialSync", "context/%24e", "event/%24e", "threads", "relations/%24e",
             "relations/%24e/m.thread/m.room.message", "timestamp_to_event", "state", "members", "send/m.room.message/t1"]
    tops = ["sync", "search", "events", "events/%24e", "initialSync", "versions", "notifications", "pushrules/"]
    media = ["/_matrix/client/v1/media", "/_matrix/media/v3", "/_matrix/media/r0", "/_matrix/media/v1"]
    media_tails = ["download/e.org/m1", "download/e.org/m1/f.png", "thumbnail/e.org/m1", "upload", "config",
                   "preview_url", "download/e.org/m1/a/b"]
    paths = []
    for prefix, room_id, tail in itertools.product(prefixes, rooms, tails):
        paths.append(f"{prefix}/rooms/{room_id}/{tail}")
    for prefix, top in itertools.product(prefixes, tops):
        paths.append(f"{prefix}/{top}")
    for prefix, tail in itertools.product(media, media_tails):
        paths.append(f"{prefix}/{tail}")
    mutated = []
    for path in paths:
        mutated.append(path)
        mutated.append(path + "/")
        mutated.append(path.upper())
        mutated.append(path.replace("/_matrix/", "//_matrix/"))
        mutated.append(path.replace("/rooms/", "/rooms//").replace("/media/", "/media/./"))
        mutated.append(path.rsplit("/", 1)[0] + "/x/../" + path.rsplit("/", 1)[1])
    return sorted(set(mutated))
