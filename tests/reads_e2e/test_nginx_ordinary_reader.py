"""An ordinary member reading through nginx (deploy/nginx) in front of a real Synapse: nothing is refused, and every
read was decided by roomguard (not passed through unchecked)."""

from __future__ import annotations

import matrix
from matrix import metric


def test_an_ordinary_member_reads_without_any_refusal(nginx, roomguard, accounts, world):
    """A member who pages through the history of 3 rooms, downloads 3 files and a thumbnail (authenticated media),
    syncs from scratch then incrementally and searches gets every answer from Synapse (200, the rooms' messages, the
    files' bytes), and roomguard allowed each of these reads with the kind it is (history, media, thumbnail,
    sync_initial, other, search)."""
    reader = accounts.new("member")
    rooms = world.rooms[:3]
    matrix.join_all(reader, rooms)
    before = {kind: metric(roomguard, "roomguard_reads_total", kind=kind) for kind in
              ("history", "media", "thumbnail", "sync_initial", "other", "search")}
    denied_before = metric(roomguard, "roomguard_reads_total", effect="deny")

    pages = 0
    for room_id in rooms:
        # Back through the room's history, page after page (bounded), to its creation.
        since, events = None, []
        for _ in range(30):
            resp = matrix.history(nginx, reader.token, room_id, limit=5, since=since)
            assert resp.status == 200, resp.body
            pages += 1
            page = resp.json()
            events += page["chunk"]
            if "end" not in page or not page["chunk"]:
                break
            since = page["end"]
        assert events[-1]["type"] == "m.room.create", "paged back to the room's creation"
        n = world.rooms.index(room_id)
        bodies = [e["content"].get("body") for e in events if e["type"] == "m.room.message"]
        assert [f"rapport {n}.{j} du salon public" for j in (2, 1, 0)] == [b for b in bodies if b.startswith("rapport")]

    for file in world.files[:3]:
        resp = matrix.download(nginx, reader.token, file)
        assert (resp.status, resp.body) == (200, file.content)
    resp = matrix.thumbnail(nginx, reader.token, world.files[0])
    # A text file has no thumbnail: Synapse answers for itself (not roomguard: no X-Roomguard header, not a 429).
    assert resp.status in (200, 400, 404), (resp.status, resp.body)
    assert resp.status != 429 and "read guard" not in resp.body.decode(errors="replace")

    resp = matrix.sync(nginx, reader.token)
    assert resp.status == 200, resp.body
    initial = resp.json()
    assert set(rooms) <= set(initial["rooms"]["join"])
    resp = matrix.sync(nginx, reader.token, since=initial["next_batch"])
    assert resp.status == 200, resp.body

    resp = matrix.search(nginx, reader.token, "rapport")
    assert resp.status == 200, resp.body
    results = resp.json()["search_categories"]["room_events"]["results"]
    assert {r["result"]["room_id"] for r in results} == set(rooms)

    after = {kind: metric(roomguard, "roomguard_reads_total", kind=kind) for kind in before}
    assert {kind: after[kind] - before[kind] for kind in before} == {
        "history": pages, "media": 3, "thumbnail": 1, "sync_initial": 1, "other": 1, "search": 1,
    }
    assert metric(roomguard, "roomguard_reads_total", effect="deny") == denied_before
    allowed = matrix.wait_for(
        lambda: [d for d in matrix.read_lines(roomguard, reader.user_id)] if len(
            matrix.read_lines(roomguard, reader.user_id)) >= pages + 7 else None,
        "the member's reads in the decision log",
    )
    assert {d["effect"] for d in allowed} == {"allow"}
    assert all(d["read"]["front"] == "auth_request" for d in allowed)


def test_sends_and_other_non_reads_are_not_asked_about(nginx, roomguard, accounts, world):
    """A message sent through nginx (PUT /send) and a state read (GET /state, not a read for roomguard) reach Synapse
    without a question to roomguard: its count of reads does not move."""
    member = accounts.new("sender")
    matrix.join_all(member, world.rooms[:1])
    before = metric(roomguard, "roomguard_reads_total")
    resp = matrix.send(nginx, member.token, world.rooms[0], "bonjour")
    assert resp.status == 200, resp.body
    resp = nginx.request("GET", f"/_matrix/client/v3/rooms/{matrix.q(world.rooms[0])}/state",
                         headers=matrix.auth(member.token))
    assert resp.status == 200, resp.body
    assert metric(roomguard, "roomguard_reads_total") == before


def test_an_unknown_token_gets_synapses_own_401(nginx, roomguard):
    """A read with an access token Synapse does not know is allowed by roomguard (UNKNOWN_TOKEN, never an oracle for
    tokens) and Synapse itself answers 401 M_UNKNOWN_TOKEN; a read without any token gets Synapse's 401
    M_MISSING_TOKEN."""
    before = metric(roomguard, "roomguard_reads_not_decided_total", cause="unknown_token")
    resp = matrix.history(nginx, "syt_bm90LWEtdG9rZW4_notarealtoken_0abc12", "!nowhere:agent.finances.tchap.gouv.fr")
    assert resp.status == 401, resp.body
    assert resp.json()["errcode"] == "M_UNKNOWN_TOKEN"
    assert metric(roomguard, "roomguard_reads_not_decided_total", cause="unknown_token") == before + 1
    resp = matrix.history(nginx, None, "!nowhere:agent.finances.tchap.gouv.fr")
    assert resp.status == 401, resp.body
    assert resp.json()["errcode"] == "M_MISSING_TOKEN"
