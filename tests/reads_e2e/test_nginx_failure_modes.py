"""roomguard stopped, behind nginx (deploy/nginx): the `$roomguard_failure_mode` knob decides what a read gets."""

from __future__ import annotations

import matrix


def test_with_roomguard_stopped_open_serves_reads_and_closed_refuses_them(roomguards, proxies, accounts, world):
    """Two nginx asking the same roomguard, one with the failure mode `open`, one `closed`. While roomguard runs both
    ask it (a legacy download without a token is refused 403 by both). Once it is stopped (SIGTERM, exited): through
    `open`, Synapse serves the reads unchecked (a room's history page, a download); through `closed` they get 503
    M_UNKNOWN "The read guard is unavailable"; non-reads (a send) are served by both."""
    guard = roomguards.start("roomguard-stopped-under-nginx")
    open_, closed = proxies.nginx(guard.reads_http, "open"), proxies.nginx(guard.reads_http, "closed")
    member = accounts.new("member")
    room_id, file = world.rooms[0], world.files[0]
    matrix.join_all(member, [room_id])
    assert member.send_text(room_id, "le dernier message").status == 200
    for proxy in (open_, closed):
        assert matrix.legacy_download(proxy, None, file).status == 403
        assert matrix.history(proxy, member.token, room_id).status == 200

    guard.stop()

    resp = matrix.history(open_, member.token, room_id, limit=1)
    assert resp.status == 200, resp.body
    assert [e["content"]["body"] for e in resp.json()["chunk"]] == ["le dernier message"]
    resp = matrix.download(open_, member.token, file)
    assert (resp.status, resp.body) == (200, file.content)
    assert "auth request unexpected status" in open_.error_log() or "connect() failed" in open_.error_log()

    for what, resp in [
        ("history", matrix.history(closed, member.token, room_id)),
        ("download", matrix.download(closed, member.token, file)),
        ("initial sync", matrix.sync(closed, member.token)),
    ]:
        assert resp.status == 503, (what, resp.status, resp.body)
        assert resp.headers.get("content-type", "").startswith("application/json"), (what, resp.headers)
        assert resp.json() == {"errcode": "M_UNKNOWN", "error": "The read guard is unavailable"}, (what, resp.body)

    for proxy in (open_, closed):
        resp = matrix.send(proxy, member.token, room_id, "roomguard est arrêté")
        assert resp.status == 200, resp.body
