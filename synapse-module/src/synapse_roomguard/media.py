"""What `check_media_file_for_spam` sends: which files are asked about, the upload header, and the file's bytes.

Synapse 1.163 calls the hook once the file is complete on disk (in its media store, or a temporary file when only
storage providers keep media), for local uploads, remote media being fetched, every thumbnail it generates and the
pages and images of URL previews; it passes a `ReadableFileWrapper(clock, path)` and a `FileInfo(server_name (None
when local), file_id, url_cache, thumbnail)`. Nothing says who uploaded the file, its name or its declared type.

The bytes are read from `ReadableFileWrapper.path` by grpc's request thread, 64 KiB at a time and only as fast as
roomguard takes them, rather than through `write_chunks_to`, which reads on the reactor thread and pushes every
chunk into a callback that cannot wait: with roomguard slower than the disk, the file would pile up in memory.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

from ._proto.roomguard.v1 import policy_pb2 as pb
from .client import CHUNK_BYTES

#: Synapse's `MediaRepository` methods that fetch a remote file: they hold the remote `media_id`, which `FileInfo`
#: does not carry (its `file_id` is a local random name).
_REMOTE_FETCHERS = frozenset({"_download_remote_file", "_federation_download_remote_file"})
_REPOSITORY_CLASS = "MediaRepository"
_MAX_DEPTH = 64


def is_checked(file_info: Any, *, check_remote_media: bool) -> bool:
    """Uploads always; remote media when `check_remote_media`; never thumbnails (derived from a file that was checked,
    or an image) nor URL previews (pages fetched by the server, not documents a user shares)."""
    if getattr(file_info, "thumbnail", None) is not None or getattr(file_info, "url_cache", False):
        return False
    return file_info.server_name is None or check_remote_media


def remote_media_id_from_caller(server_name: str) -> str | None:
    """The remote `media_id` of the `MediaRepository` fetch that is storing the file, if it is on the call stack.

    Must be called synchronously from the hook, before its first `await` (see `visibility.py` for why the caller's
    frame is there). Read-only; None when not found (then the module sends no media id for the remote file).
    """
    frame: FrameType | None = sys._getframe(1)
    for _ in range(_MAX_DEPTH):
        if frame is None:
            return None
        if frame.f_code.co_name in _REMOTE_FETCHERS:
            local_vars = frame.f_locals
            media_id = local_vars.get("media_id")
            if (
                type(local_vars.get("self")).__name__ == _REPOSITORY_CLASS
                and local_vars.get("server_name") == server_name
                and isinstance(media_id, str)
                and media_id
            ):
                return media_id
            return None
        frame = frame.f_back
    return None


def upload_header(file_info: Any, *, local_server_name: str, remote_media_id: str | None) -> pb.MediaUploadHeader:
    """The header of `CheckMediaUpload`: `media_id` (`mxc://server/id`) and `remote` from the file info; `uploader`,
    `filename` and `mimetype` empty (Synapse's hook does not give them); `size` is filled in from the file itself."""
    if file_info.server_name is None:
        media_id = f"mxc://{local_server_name}/{file_info.file_id}"
        remote = False
    else:
        media_id = f"mxc://{file_info.server_name}/{remote_media_id}" if remote_media_id else ""
        remote = True
    # The request id ties roomguard's decision log to Synapse's: the media id, or the local file name when the remote
    # media id is unknown.
    request_id = media_id or str(file_info.file_id)
    return pb.MediaUploadHeader(request_id=request_id, media=pb.Media(media_id=media_id, remote=remote))


class FileChunks:
    """The file at `path`, read in chunks of at most `CHUNK_BYTES` by whichever thread iterates it (grpc's request
    thread, never the reactor). `close()`, from any thread, stops the reading and closes the file."""

    def __init__(self, path: str, chunk_bytes: int = CHUNK_BYTES) -> None:
        self._path = path
        self._chunk_bytes = chunk_bytes
        self._lock = threading.Lock()
        self._file: Any = None
        self._closed = False
        #: Bytes read from the file so far: how much was sent before roomguard answered (it answers as soon as a
        #: marking decides, and the rest is never read).
        self.sent = 0

    def _open(self) -> Any:
        # Under the lock. Opened lazily, in the iterating thread: even the open is off the reactor.
        if self._file is None and not self._closed:
            self._file = open(self._path, "rb")  # noqa: SIM115 - closed by close()
        return self._file

    def size(self) -> int:
        with self._lock:
            file = self._open()
            return os.fstat(file.fileno()).st_size if file is not None else 0

    def __iter__(self) -> Iterator[bytes]:
        while True:
            with self._lock:
                file = self._open()
                chunk = file.read(self._chunk_bytes) if file is not None else b""
            if not chunk:
                return
            self.sent += len(chunk)
            yield chunk

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._file is not None:
                self._file.close()
                self._file = None


def file_path(file_wrapper: Any) -> str | None:
    """`ReadableFileWrapper.path` (an attribute of Synapse 1.163's wrapper); None if a future Synapse drops it."""
    path = getattr(file_wrapper, "path", None)
    return path if isinstance(path, str) and path else None
