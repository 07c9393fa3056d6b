"""End-to-end, issue #11 (uploaded documents): real documents uploaded through `POST /_matrix/media/v3/upload` to the
real Synapse with the module, read by the real roomguard.

* marked documents, each with the marking in one place a reader must look (a PDF stamped on every page, a docx in its
  header only, an odt in its page header only, an xlsx in its second sheet only, a pptx on its second slide, a zip
  holding a marked docx), are
  refused: Synapse answers `400 Bad content` (it drops the module's code and fields), and the reason
  `CLASSIFIED_DOCUMENT_IN_CLEAR` is in the module's log line and in roomguard's decision log, under one decision id;
* the same documents without the marking are stored (200, `content_uri`) and download byte for byte;
* a zip bomb (1 GiB of zeros, deflated to about 1 MB) is answered within the module's `media_timeout_ms`, and so is a
  40 MB text file marked on its first line (refused);
* roomguard stopped: the upload is stored (`failure_mode.media_upload: open`, the default) on the main homeserver and
  refused on one configured `closed`; decisions resume once roomguard is back.

The stopped-roomguard test restarts the session's roomguard and waits until the main homeserver gets decisions again,
so the suites that run after it are unaffected.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from . import documents
from .conftest import TIMEOUT_MS
from .harness import Client, Response, Roomguard, Synapse
from .test_scenarios import MARKED, forum

pytestmark = pytest.mark.e2e

CODE = "CLASSIFIED_DOCUMENT_IN_CLEAR"
#: The module's default `media_timeout_ms` (the session homeserver does not set it).
MEDIA_TIMEOUT_S = 5.0
#: An upload's answer: the module's deadline, its grace (0.3 s) and Synapse's own work on a 1 MB body.
MAX_UPLOAD_WAIT_S = MEDIA_TIMEOUT_S + 1.5

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ODT = "application/vnd.oasis.opendocument.text"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"

#: (file name, declared type, producer(marked) -> bytes, format roomguard must recognise from the content)
DOCUMENTS: dict[str, tuple[str, str, Callable[[bool], bytes], str]] = {
    "pdf stamped on every page": ("rapport.pdf", "application/pdf", documents.pdf, "pdf"),
    "docx marked in its header": ("note.docx", DOCX, documents.docx, "docx"),
    "odt marked in its page header": ("note.odt", ODT, documents.odt, "odt"),
    "xlsx marked in its second sheet": ("budget.xlsx", XLSX, documents.xlsx, "xlsx"),
    "pptx marked on its second slide": ("point.pptx", PPTX, documents.pptx, "pptx"),
    "zip holding a marked docx": (
        "dossier.zip",
        "application/zip",
        lambda marked: documents.zipped("note.docx", documents.docx(marked)),
        "zip",
    ),
}


class LogWatch:
    """The lines a log file gains from now on."""

    def __init__(self, synapse: Synapse) -> None:
        self._path = synapse.log_path
        self._offset = self._path.stat().st_size

    def wait_for(self, needle: str, timeout_s: float = 5.0) -> str:
        """The first new line containing `needle` (Synapse's file handler flushes every record; allow a moment)."""
        deadline = time.monotonic() + timeout_s
        while True:
            with open(self._path, encoding="utf8", errors="replace") as log:
                log.seek(self._offset)
                for line in log:
                    if needle in line:
                        return line
            if time.monotonic() > deadline:
                raise AssertionError(f"no new line with {needle!r} in {self._path}")
            time.sleep(0.1)


def decision_log_entry(roomguard: Roomguard, decision_id: str, timeout_s: float = 5.0) -> dict[str, Any]:
    """roomguard's decision log line (JSON, on its stdout) for `decision_id`.

    The writer writes in batches (within about 20 ms), hence the polling."""
    deadline = time.monotonic() + timeout_s
    while True:
        for line in roomguard.log_text().splitlines():
            if decision_id in line and line.lstrip().startswith("{"):
                entry = json.loads(line)
                if entry.get("decision_id") == decision_id:
                    return entry
        if time.monotonic() > deadline:
            raise AssertionError(f"decision {decision_id} not in roomguard's decision log")
        time.sleep(0.1)


def module_decision(line: str) -> dict[str, str]:
    """`key=value` pairs of the module's log line."""
    return dict(re.findall(r"(\w+)=(\S+)", line))


def assert_stored(client: Client, resp: Response, data: bytes) -> None:
    assert resp.status == 200, resp.body
    content_uri = resp.body["content_uri"]
    assert content_uri.startswith("mxc://"), resp.body
    status, downloaded = client.download(content_uri)
    assert status == 200 and downloaded == data


# === marked documents refused, clean ones stored ===


@pytest.mark.parametrize("kind", list(DOCUMENTS))
def test_marked_document_is_refused(alice: Client, synapse: Synapse, roomguard: Roomguard, kind: str) -> None:
    """A marked document uploaded in the clear: 400 `Bad content` (all Synapse shows); the module's log line and
    roomguard's decision log say CLASSIFIED_DOCUMENT_IN_CLEAR, the format read from the content, one decision id."""
    filename, content_type, make, fmt = DOCUMENTS[kind]
    watch = LogWatch(synapse)
    resp = alice.upload(make(True), filename, content_type)
    assert resp.status == 400, resp.body
    # Synapse drops the module's code and fields: its own 400 with a generic errcode, nothing of roomguard's.
    assert (resp.body.get("errcode"), resp.body.get("error")) == ("M_UNKNOWN", "Bad content"), resp.body
    assert not any(key.startswith("fr.roomguard") for key in resp.body), resp.body
    line = module_decision(watch.wait_for("roomguard denied upload"))
    assert line["codes"] == CODE and line["format"] == fmt, line
    assert line["remote"] == "no" and line["media"].startswith(f"mxc://{synapse.server_name}/"), line
    entry = decision_log_entry(roomguard, line["decision"])
    assert entry["rpc"] == "CheckMediaUpload" and entry["effect"] == "deny", entry
    assert CODE in entry["reasons"], entry
    assert entry["media"]["media_id"] == line["media"] and entry["media"]["format"] == fmt, entry


@pytest.mark.parametrize("kind", list(DOCUMENTS))
def test_clean_document_is_stored_and_downloadable(alice: Client, synapse: Synapse, kind: str) -> None:
    """The same document without the marking: 200 with a `content_uri`, the same bytes back on download; the module
    asked roomguard (its log line), which read the format from the content."""
    filename, content_type, make, fmt = DOCUMENTS[kind]
    data = make(False)
    watch = LogWatch(synapse)
    resp = alice.upload(data, filename, content_type)
    assert_stored(alice, resp, data)
    line = module_decision(watch.wait_for("roomguard allowed upload"))
    assert line["media"] == resp.body["content_uri"] and line["format"] == fmt, line


def test_marking_in_an_ordinary_text_file_is_refused(alice: Client) -> None:
    """The simplest document: a plain text file with the marking; and a plain one stored."""
    assert alice.upload(f"{MARKED}\n".encode(), "note.txt", "text/plain").status == 400
    plain = b"Ordre du jour : budget, calendrier.\n"
    assert_stored(alice, alice.upload(plain, "note.txt", "text/plain"), plain)


SCANS = Path(__file__).resolve().parents[3] / "tests/fixtures/media/scan"


@pytest.mark.parametrize(
    ("name", "mimetype", "status"),
    [
        ("stamped-150dpi.png", "image/png", 400),
        ("stamped-dct-150dpi.pdf", "application/pdf", 400),
        ("clean-150dpi.png", "image/png", 200),
    ],
)
def test_scanned_pages_are_read_with_ocr(
    alice: Client, synapse: Synapse, name: str, mimetype: str, status: int
) -> None:
    """A stamped memo scanned (a PNG, a scanner's PDF with no text layer) is refused through the real module: roomguard
    reads it with Tesseract, the stamp band first; a clean scanned page is stored."""
    data = (SCANS / name).read_bytes()
    watch = LogWatch(synapse)
    resp = alice.upload(data, name, mimetype)
    assert resp.status == status, resp.body
    verb = "denied" if status == 400 else "allowed"
    line = module_decision(watch.wait_for(f"roomguard {verb} upload"))
    if status == 400:
        assert line["codes"] == CODE and line["classification"] == "restricted", line
    else:
        assert line["complete"] == "yes" and line["classification"] == "none", line


def test_zip_bomb_is_answered_within_the_budget(alice: Client, synapse: Synapse) -> None:
    """One entry of 1 GiB of zeros deflated to about 1 MB: answered within `media_timeout_ms` (+ grace), read in part
    only (size or time limit), and stored (no marking in what was read)."""
    bomb = documents.zip_bomb(1 << 30)
    assert len(bomb) < 2 << 20
    watch = LogWatch(synapse)
    resp = alice.upload(bomb, "archive.zip", "application/zip")
    assert resp.seconds < MAX_UPLOAD_WAIT_S, resp.seconds
    assert resp.status == 200, resp.body
    line = module_decision(watch.wait_for("roomguard allowed upload"))
    assert line["format"] == "zip" and line["complete"] in ("no(size_limit)", "no(time_limit)"), line


def test_large_marked_file_is_refused_within_the_budget(alice: Client, synapse: Synapse) -> None:
    """40 MB (under Synapse's 50 MB `max_upload_size`) whose first line is the marking: roomguard answers as soon as it
    has read the marking, and the module stops sending the file there: a small part of it is ever read from disk."""
    data = f"{MARKED}\n".encode() + b"Ligne de texte ordinaire, sans marquage.\n" * (40_000_000 // 41)
    watch = LogWatch(synapse)
    resp = alice.upload(data, "journal.txt", "text/plain")
    assert resp.status == 400, resp.body
    assert resp.seconds < MAX_UPLOAD_WAIT_S, resp.seconds
    raw = watch.wait_for("roomguard denied upload")
    line = module_decision(raw)
    assert line["codes"] == CODE and line["complete"] == "no(stopped_early)", line
    # The module's own measure of the call, from the first byte sent to the answer.
    elapsed_ms = float(re.search(r" in ([\d.]+) ms", raw).group(1))  # type: ignore[union-attr]
    assert elapsed_ms < 1000, raw
    assert 0 < int(line["bytes_read"]) <= 4 << 20, line
    assert int(line["bytes_sent"]) <= 8 << 20, line


# === roomguard stopped (restarted afterwards) ===


@pytest.fixture(scope="module")
def closed_synapse(roomguard: Roomguard, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synapse]:
    """A homeserver whose uploads fail closed (`failure_mode.media_upload: closed`), asking the session's roomguard."""
    homeserver = Synapse(
        workdir=tmp_path_factory.mktemp("synapse-media-closed"),
        module_config={
            "endpoint": roomguard.endpoint,
            "timeout_ms": TIMEOUT_MS,
            "failure_mode": {"media_upload": "closed"},
        },
        name="synapse-media-closed",
    )
    homeserver.start()
    try:
        yield homeserver
    finally:
        homeserver.stop()


def test_stopped_roomguard_follows_the_media_failure_mode(
    alice: Client, synapse: Synapse, closed_synapse: Synapse, roomguard: Roomguard
) -> None:
    """roomguard stopped: a marked document is stored where `media_upload` is open (the default) and refused (400)
    where it is closed, both at once (UNAVAILABLE, not the deadline); roomguard back: uploads are decided again."""
    carol = closed_synapse.register("carol")
    marked = documents.pdf(True)
    clean = documents.docx(False)
    watch = LogWatch(synapse)
    roomguard.stop()
    try:
        stored = alice.upload(marked, "rapport.pdf", "application/pdf")
        refused = carol.upload(clean, "note.docx", DOCX)
    finally:
        roomguard.start()
    assert_stored(alice, stored, marked)
    assert refused.status == 400 and refused.body.get("error") == "Bad content", refused.body
    for resp in (stored, refused):
        assert resp.seconds < 2.0, resp.seconds
    line = watch.wait_for("roomguard gave no decision")
    assert "for upload" in line and "allowed (fail-open)" in line, line

    # The channel reconnects by itself (backoff capped at 1 s): wait until the main homeserver decides again, so the
    # suites after this one find roomguard answering.
    room = forum(alice)
    deadline = time.monotonic() + 10
    while alice.send_text(room, MARKED).status != 403:
        assert time.monotonic() < deadline, "decisions did not resume after roomguard restarted"
        time.sleep(0.2)
    assert carol.upload(clean, "note.docx", DOCX).status == 200
