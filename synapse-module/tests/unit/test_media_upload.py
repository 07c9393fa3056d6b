"""`check_media_file_for_spam` and `CheckMediaUpload` (#11): which files are asked about, what the header says, how the
file is streamed (in order, at most 64 KiB a message, off the reactor), and what a deny, a slow or a stopped roomguard
do. The hook runs against Synapse's real `FileInfo` and `ReadableFileWrapper`; the client against an in-process gRPC
server. (The end-to-end suite uploads real documents to a real Synapse: tests/e2e/test_media_upload.py.)"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from synapse.media._base import FileInfo, ThumbnailInfo
from synapse.media.media_storage import ReadableFileWrapper
from synapse.module_api import NOT_SPAM
from synapse.module_api.errors import Codes
from twisted.internet import defer

from synapse_roomguard._proto.roomguard.v1 import policy_pb2 as pb
from synapse_roomguard.client import CHUNK_BYTES, RoomguardUnavailableError
from synapse_roomguard.media import FileChunks, remote_media_id_from_caller
from tests.fake_roomguard import FakeRoomguard, deny

from .test_client import ThreadHopReactor, close_clients, make_client, message_request  # noqa: F401 - autouse
from .test_hooks import SERVER, Api, Roomguard, codes, make_module

REMOTE = "autre.example"
#: Not a multiple of 64 KiB, so the last chunk is short.
FILE_BYTES = 3 * CHUNK_BYTES + 1234


@pytest.fixture
def document(tmp_path: Path) -> Path:
    path = tmp_path / "upload"
    path.write_bytes(os.urandom(FILE_BYTES))
    return path


@pytest.fixture
def api() -> Api:
    return Api()


@pytest.fixture
def roomguard() -> Roomguard:
    return Roomguard()


@pytest.fixture
def server():
    fake = FakeRoomguard().start()
    yield fake
    fake.stop()


def wrapper(path: Path) -> ReadableFileWrapper:
    return ReadableFileWrapper(clock=None, path=str(path))  # type: ignore[arg-type]  # the module never uses the clock


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


LOCAL = FileInfo(server_name=None, file_id="AbCdEfGhIj")
THUMBNAIL = FileInfo(
    server_name=None,
    file_id="AbCdEfGhIj",
    thumbnail=ThumbnailInfo(width=32, height=32, method="scale", type="image/png", length=99),
)
URL_PREVIEW = FileInfo(server_name=None, file_id="2024-01-01_xyz", url_cache=True)
REMOTE_FILE = FileInfo(server_name=REMOTE, file_id="localRandomName")


# === which files ===


def test_local_upload_is_asked_with_its_header(api: Api, roomguard: Roomguard, document: Path) -> None:
    """A local upload: `media_id` `mxc://<this server>/<file_id>`, `remote` false, `size` the file's, `uploader`,
    `filename` and `mimetype` empty (Synapse's hook does not give them); the whole file, unchanged."""
    assert run(make_module(api, roomguard).check_media_file_for_spam(wrapper(document), LOCAL)) is NOT_SPAM
    [header] = roomguard.requests
    assert isinstance(header, pb.MediaUploadHeader)
    assert header.media.media_id == f"mxc://{SERVER}/AbCdEfGhIj" == header.request_id
    assert not header.media.remote and header.media.size == FILE_BYTES
    assert (header.media.filename, header.media.mimetype) == ("", "")
    assert not header.HasField("uploader")
    assert roomguard.uploaded == [document.read_bytes()]


@pytest.mark.parametrize("file_info", [THUMBNAIL, URL_PREVIEW], ids=["thumbnail", "url preview"])
def test_thumbnails_and_url_previews_are_never_sent(
    api: Api, roomguard: Roomguard, document: Path, file_info: FileInfo
) -> None:
    """Thumbnails (`file_info.thumbnail`) and URL previews (`file_info.url_cache`) are let through unasked, even with
    every failure mode closed."""
    roomguard.error = RoomguardUnavailableError("UNAVAILABLE")
    module = make_module(api, roomguard, failure_mode={"media_upload": "closed"})
    assert run(module.check_media_file_for_spam(wrapper(document), file_info)) is NOT_SPAM
    assert roomguard.requests == []


def test_remote_media_is_asked_by_default_and_skipped_when_off(api: Api, roomguard: Roomguard, document: Path) -> None:
    """Remote media: asked with `remote` true by default (`check_remote_media`); not asked when it is off."""
    run(make_module(api, roomguard).check_media_file_for_spam(wrapper(document), REMOTE_FILE))
    [header] = roomguard.requests
    assert header.media.remote
    # FileInfo's file_id is a local random name, not the remote media id: without the fetcher on the stack, no id.
    assert header.media.media_id == "" and header.request_id == "localRandomName"
    off = make_module(api, roomguard, check_remote_media=False)
    assert run(off.check_media_file_for_spam(wrapper(document), REMOTE_FILE)) is NOT_SPAM
    assert len(roomguard.requests) == 1


class MediaRepository:
    """Shaped like Synapse's: the remote fetch holds the remote `media_id` and awaits the storage's spam check."""

    def __init__(self, hook: Any) -> None:
        self.hook = hook

    async def _download_remote_file(self, server_name: str, media_id: str, file_info: FileInfo, path: Path) -> Any:
        return await self.hook(wrapper(path), file_info)


def test_remote_media_id_is_read_from_the_fetch_on_the_stack(api: Api, roomguard: Roomguard, document: Path) -> None:
    """Fetching remote media: the header's `media_id` is `mxc://<origin>/<its media id>`, read from Synapse's fetch
    on the call stack (FileInfo does not carry it)."""
    module = make_module(api, roomguard)
    repository = MediaRepository(module.check_media_file_for_spam)
    run(repository._download_remote_file(REMOTE, "OrigineMediaId", REMOTE_FILE, document))
    assert roomguard.requests[0].media.media_id == f"mxc://{REMOTE}/OrigineMediaId"
    assert remote_media_id_from_caller(REMOTE) is None  # from anywhere else: unknown


# === answers ===


def test_deny_refuses_the_upload_with_forbidden(api: Api, roomguard: Roomguard, document: Path) -> None:
    """A deny is `(Codes.FORBIDDEN, fields)`: Synapse turns it into `400 Bad content` (it keeps only the code)."""
    roomguard.decide = lambda _h: deny("CLASSIFIED_DOCUMENT_IN_CLEAR")
    result = run(make_module(api, roomguard).check_media_file_for_spam(wrapper(document), LOCAL))
    assert result[0] == Codes.FORBIDDEN
    assert codes(result) == ["CLASSIFIED_DOCUMENT_IN_CLEAR"]


def test_deny_is_logged_with_the_scan_and_never_the_content(
    api: Api, roomguard: Roomguard, document: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The log line of a refused upload names the media, the decision, the codes, the format, the classification and
    whether the scan was complete (and why not); nothing of the file."""
    roomguard.decide = lambda _h: pb.Decision(
        effect=pb.EFFECT_DENY,
        reasons=[pb.Reason(code="CLASSIFIED_DOCUMENT_IN_CLEAR", message="m")],
        decision_id="dec-42",
        classification="DR",
    )
    roomguard.scan = pb.MediaScan(format="zip", bytes_read=99, complete=False, incomplete_reason="size_limit")
    document.write_bytes(b"DIFFUSION RESTREINTE secret-7c1f")
    with caplog.at_level(logging.DEBUG, logger="synapse_roomguard"):
        run(make_module(api, roomguard).check_media_file_for_spam(wrapper(document), LOCAL))
    [line] = [r.getMessage() for r in caplog.records if "roomguard denied upload" in r.getMessage()]
    for part in (f"media=mxc://{SERVER}/AbCdEfGhIj", "decision=dec-42", "codes=CLASSIFIED_DOCUMENT_IN_CLEAR"):
        assert part in line
    for part in ("format=zip", "classification=DR", "complete=no(size_limit)", "remote=no"):
        assert part in line
    assert "secret-7c1f" not in caplog.text and "DIFFUSION" not in caplog.text


def test_no_decision_follows_media_upload_failure_mode(api: Api, roomguard: Roomguard, document: Path) -> None:
    """roomguard gives no decision: the upload is stored by default (`failure_mode.media_upload: open`), refused
    with ROOMGUARD_UNAVAILABLE when closed; other hooks' modes do not matter."""
    for status in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "TIMEOUT"):
        roomguard.error = RoomguardUnavailableError(status)
        elsewhere = make_module(api, roomguard, failure_mode={"message_send": "closed", "state_change": "closed"})
        assert run(elsewhere.check_media_file_for_spam(wrapper(document), LOCAL)) is NOT_SPAM
        closed = make_module(api, roomguard, failure_mode={"media_upload": "closed"})
        assert codes(run(closed.check_media_file_for_spam(wrapper(document), LOCAL))) == ["ROOMGUARD_UNAVAILABLE"]


def test_unreadable_file_follows_the_failure_mode(api: Api, roomguard: Roomguard, tmp_path: Path) -> None:
    """A file that cannot be read (gone, or a Synapse whose wrapper has no `path`) is no decision, never a 500."""
    missing = wrapper(tmp_path / "gone")
    assert run(make_module(api, roomguard).check_media_file_for_spam(missing, LOCAL)) is NOT_SPAM
    closed = make_module(api, roomguard, failure_mode={"media_upload": "closed"})
    assert codes(run(closed.check_media_file_for_spam(missing, LOCAL))) == ["ROOMGUARD_UNAVAILABLE"]
    assert codes(run(closed.check_media_file_for_spam(object(), LOCAL))) == ["ROOMGUARD_UNAVAILABLE"]


# === streaming, through the real client ===


def test_file_is_streamed_in_order_in_bounded_chunks(server: FakeRoomguard, document: Path) -> None:
    """The header first, then the file's bytes in order, every chunk at most 64 KiB; roomguard gets the file
    exactly, and `size` is the file's."""
    reactor = ThreadHopReactor()
    client = make_client(server.endpoint, reactor)
    header = pb.MediaUploadHeader(request_id="r", media=pb.Media(media_id="mxc://s/x"))
    response, _ = reactor.wait(client.check_media_upload(header, FileChunks(str(document))))
    assert isinstance(response, pb.CheckMediaUploadResponse) and response.scan.format == "pdf"
    [upload] = server.service.uploads
    assert upload.kinds == ["header"] + ["chunk"] * 4
    assert upload.chunk_sizes == [CHUNK_BYTES] * 3 + [1234]
    assert bytes(upload.content) == document.read_bytes()
    assert upload.header is not None
    assert upload.header.media.size == FILE_BYTES and upload.header.media.media_id == "mxc://s/x"


class BigPieces:
    """A source that yields pieces larger than a message may carry."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces
        self.closed = False

    def __iter__(self):
        return iter(self.pieces)

    def size(self) -> int:
        return 0

    def close(self) -> None:
        self.closed = True


def test_large_pieces_are_cut_to_64_kib(server: FakeRoomguard) -> None:
    """Whatever the source yields, no message carries more than 64 KiB; the source is closed after the call."""
    reactor = ThreadHopReactor()
    client = make_client(server.endpoint, reactor)
    source = BigPieces([b"a" * (CHUNK_BYTES * 2 + 5), b"", b"b" * 10])
    reactor.wait(client.check_media_upload(pb.MediaUploadHeader(), source))
    [upload] = server.service.uploads
    assert upload.chunk_sizes == [CHUNK_BYTES, CHUNK_BYTES, 5, 10]
    assert bytes(upload.content) == b"a" * (CHUNK_BYTES * 2 + 5) + b"b" * 10
    assert source.closed


def test_slow_roomguard_is_abandoned_at_the_media_deadline(server: FakeRoomguard, document: Path) -> None:
    """roomguard slower than `media_timeout_ms`: the call fails with DEADLINE_EXCEEDED at about that deadline (its
    own, not `timeout_ms`), and the file is closed."""
    reactor = ThreadHopReactor()
    server.service.read_delay_s = 2.0
    client = make_client(server.endpoint, reactor, timeout_s=0.05)
    client._media_timeout_s = 0.4
    chunks = FileChunks(str(document))
    error, waited = reactor.wait(client.check_media_upload(pb.MediaUploadHeader(), chunks))
    assert isinstance(error, RoomguardUnavailableError) and error.status == "DEADLINE_EXCEEDED"
    assert 0.35 < waited < 0.4 + 0.3
    assert chunks._closed


def test_media_deadline_is_its_own(server: FakeRoomguard, document: Path) -> None:
    """A check that takes longer than `timeout_ms` (messages' 200 ms) but less than `media_timeout_ms` is answered."""
    reactor = ThreadHopReactor()
    server.service.read_delay_s = 0.4
    client = make_client(server.endpoint, reactor, timeout_s=0.2)
    client._media_timeout_s = 3.0
    response, waited = reactor.wait(client.check_media_upload(pb.MediaUploadHeader(), FileChunks(str(document))))
    assert isinstance(response, pb.CheckMediaUploadResponse) and waited >= 0.4


def test_stopped_roomguard_fails_at_once(document: Path) -> None:
    """Nothing listening: UNAVAILABLE at once, not at the deadline."""
    reactor = ThreadHopReactor()
    fake = FakeRoomguard().start()
    endpoint = fake.endpoint
    fake.stop()
    client = make_client(endpoint, reactor)
    client._media_timeout_s = 5.0
    error, waited = reactor.wait(client.check_media_upload(pb.MediaUploadHeader(), FileChunks(str(document))))
    assert isinstance(error, RoomguardUnavailableError) and error.status == "UNAVAILABLE"
    assert waited < 1.0


def test_uploads_in_flight_leave_messages_their_threads(server: FakeRoomguard, document: Path) -> None:
    """Media checks have their own pool: with every message thread's worth of slow uploads in flight, a message
    is still answered within its deadline."""
    reactor = ThreadHopReactor()
    server.service.read_delay_s = 1.0
    client = make_client(server.endpoint, reactor, timeout_s=0.3, threads=1)
    client._media_timeout_s = 3.0
    upload = client.check_media_upload(pb.MediaUploadHeader(), FileChunks(str(document)))
    time.sleep(0.05)
    response, waited = reactor.wait(client.check_message_send(message_request()))
    assert isinstance(response, pb.CheckMessageSendResponse) and waited < 0.3
    reactor.wait(upload)


def test_hook_with_a_slow_roomguard_applies_its_mode_at_the_deadline(
    api: Api, server: FakeRoomguard, document: Path
) -> None:
    """The hook and the real client together: roomguard slower than `media_timeout_ms` -> the upload is stored
    (open) or refused (closed) once the deadline passes, not when roomguard would have answered."""
    server.service.read_delay_s = 2.0
    for mode, expect_refused in (("open", False), ("closed", True)):
        reactor = ThreadHopReactor()
        client = make_client(server.endpoint, reactor)
        client._media_timeout_s = 0.3
        module = make_module(api, Roomguard(), failure_mode={"media_upload": mode})
        module._client = client
        hook = defer.Deferred.fromCoroutine(module.check_media_file_for_spam(wrapper(document), LOCAL))
        result, waited = reactor.wait(hook)
        assert waited < 0.3 + 0.4
        if expect_refused:
            assert codes(result) == ["ROOMGUARD_UNAVAILABLE"]
        else:
            assert result is NOT_SPAM


# === the file source ===


def test_file_chunks_close_stops_reading_from_another_thread(document: Path) -> None:
    """`close()` from another thread ends the iteration at the next chunk and closes the file."""
    chunks = FileChunks(str(document))
    assert chunks.size() == FILE_BYTES
    iterator = iter(chunks)
    first = next(iterator)
    assert first == document.read_bytes()[:CHUNK_BYTES]
    closer = threading.Thread(target=chunks.close)
    closer.start()
    closer.join()
    assert list(iterator) == []
