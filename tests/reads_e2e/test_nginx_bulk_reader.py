"""A bulk script with one account, through nginx (deploy/nginx) in front of a real Synapse: refused from the 41st
room's history and the 301st file, as the shipped policy says, while the account still sends and another account
still reads."""

from __future__ import annotations

import threading

import matrix
from conftest import BULK_FILES, BULK_ROOMS, HISTORY_ROOMS_PER_HOUR, MEDIA_PER_HOUR
from matrix import metric


def colleague_reads(nginx, colleague, world) -> list[tuple[str, int]]:
    """An ordinary reader's reads of rooms and files the bulk reader is refused: (what, status) of each."""
    answers = []
    for room_id in world.rooms[HISTORY_ROOMS_PER_HOUR:HISTORY_ROOMS_PER_HOUR + 3]:
        first = matrix.history(nginx, colleague.token, room_id)
        answers.append((f"history {room_id}", first.status))
        if first.status == 200:
            answers.append((f"page 2 {room_id}", matrix.history(
                nginx, colleague.token, room_id, since=first.json()["end"]).status))
    for file in world.files[MEDIA_PER_HOUR:MEDIA_PER_HOUR + 3]:
        resp = matrix.download(nginx, colleague.token, file)
        answers.append((f"download {file.mxc}", resp.status if resp.body == file.content else -resp.status))
    return answers


def test_a_bulk_reader_is_refused_from_the_41st_room_and_the_301st_file(nginx, roomguard, accounts, world):
    """One account that joined 60 public rooms pages through their history then downloads 400 files through nginx:
    exactly 40 rooms and 300 files are served; the 41st room on and the 301st file on are refused with 429
    M_LIMIT_EXCEEDED, retry_after_ms > 0 and a Retry-After header (READ_RATE_EXCEEDED, DOWNLOAD_RATE_EXCEEDED).
    Meanwhile, and after, another account reads those same rooms and files normally. The refusals are counted per
    rule in roomguard's metrics."""
    bulk = accounts.new("bulk")
    colleague = accounts.new("colleague")
    matrix.join_all(bulk, world.rooms)
    matrix.join_all(colleague, world.rooms[HISTORY_ROOMS_PER_HOUR:HISTORY_ROOMS_PER_HOUR + 3])
    rooms_limited = metric(roomguard, "roomguard_reads_rate_limited_total", rule="read.history-rooms")
    media_limited = metric(roomguard, "roomguard_reads_rate_limited_total", rule="read.media")

    meanwhile: list = []
    thread = threading.Thread(target=lambda: meanwhile.extend(colleague_reads(nginx, colleague, world)))
    thread.start()
    run = matrix.bulk_read(nginx, bulk.token, world)
    thread.join(timeout=60)
    assert not thread.is_alive()

    assert (len(run.rooms), len(run.files)) == (BULK_ROOMS, BULK_FILES)
    matrix.assert_bulk_refused_past_budgets(run, world, HISTORY_ROOMS_PER_HOUR, MEDIA_PER_HOUR)
    assert all(status == 200 for _, status in meanwhile), meanwhile
    assert all(status == 200 for _, status in colleague_reads(nginx, colleague, world))

    assert metric(roomguard, "roomguard_reads_rate_limited_total", rule="read.history-rooms") - rooms_limited == (
        BULK_ROOMS - HISTORY_ROOMS_PER_HOUR
    )
    assert metric(roomguard, "roomguard_reads_rate_limited_total", rule="read.media") - media_limited == (
        BULK_FILES - MEDIA_PER_HOUR
    )


def test_a_refusal_is_traceable_from_the_client_to_the_decision_log(nginx, roomguard, accounts, world):
    """The 41st room's refusal carries X-Roomguard-Decision-Id; nginx's access log (log_format roomguard) and
    roomguard's decision log both have that decision: a deny of kind history for that account and that room, with
    READ_RATE_EXCEEDED, asked by auth_request."""
    bulk = accounts.new("bulk")
    rooms = world.rooms[:HISTORY_ROOMS_PER_HOUR + 1]
    matrix.join_all(bulk, rooms)
    answers = [matrix.history(nginx, bulk.token, room_id) for room_id in rooms]
    assert [r.status for r in answers] == [200] * HISTORY_ROOMS_PER_HOUR + [429]
    refused = answers[-1]
    decision_id = refused.headers.get("x-roomguard-decision-id", "")
    assert len(decision_id) == 36, refused.headers  # a UUID

    line = nginx.access_log_line(f"rg={decision_id}")
    assert " 429 " in line and "rg_kind=history" in line and "rg_reasons=READ_RATE_EXCEEDED" in line, line
    logged = matrix.wait_for(
        lambda: [d for d in matrix.read_lines(roomguard) if d["decision_id"] == decision_id],
        f"decision {decision_id} in roomguard's decision log",
    )
    assert len(logged) == 1
    entry = logged[0]
    assert (entry["user_id"], entry["room_id"], entry["effect"], entry["reasons"]) == (
        bulk.user_id, rooms[-1], "deny", ["READ_RATE_EXCEEDED"]
    )
    assert entry["rules"] == ["read.history-rooms"]
    assert (entry["read"]["kind"], entry["read"]["front"]) == ("history", "auth_request")


def test_a_refused_bulk_reader_still_sends_and_pages_rooms_it_already_read(nginx, roomguard, accounts, world):
    """Past the distinct-room budget (a 41st room refused), the same account still sends messages through nginx
    (PUT /send, not a read) to a room it may no longer read, and still pages back through a room it already read
    (a room already counted is no new room)."""
    bulk = accounts.new("bulk")
    rooms = world.rooms[:HISTORY_ROOMS_PER_HOUR + 1]
    matrix.join_all(bulk, rooms)
    statuses = [matrix.history(nginx, bulk.token, room_id).status for room_id in rooms]
    assert statuses == [200] * HISTORY_ROOMS_PER_HOUR + [429]

    resp = matrix.send(nginx, bulk.token, rooms[-1], "je peux encore écrire ici")
    assert resp.status == 200, resp.body
    assert resp.json()["event_id"].startswith("$")
    resp = matrix.send(nginx, bulk.token, rooms[0], "et ici")
    assert resp.status == 200, resp.body

    # Back through room 1's history, page after page, to its creation.
    since, events = None, []
    for _ in range(20):
        resp = matrix.history(nginx, bulk.token, rooms[0], limit=10, since=since)
        assert resp.status == 200, resp.body
        page = resp.json()
        events += page["chunk"]
        if "end" not in page or not page["chunk"]:
            break
        since = page["end"]
    assert any(e["type"] == "m.room.create" for e in events), "paged back to the room's creation"
    assert matrix.history(nginx, bulk.token, rooms[-1]).status == 429, "the 41st room is still refused"
