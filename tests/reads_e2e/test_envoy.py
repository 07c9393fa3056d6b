"""Through a real Envoy (deploy/envoy/envoy.yaml) whose ext_authz filter calls the real roomguard's gRPC port
(envoy.service.auth.v3.Authorization/Check)."""

from __future__ import annotations

import json

import pytest

import matrix
from conftest import HISTORY_ROOMS_PER_HOUR
from matrix import metric


@pytest.fixture(scope="module")
def envoy(proxies, roomguard):
    """Envoy asking the main roomguard, failure_mode_allow false (a roomguard that did not answer would show as a
    503, never as a read served unchecked)."""
    return proxies.envoy(roomguard.endpoint, failure_mode_allow=False)


def test_the_41st_room_is_refused_with_the_answer_roomguard_built(envoy, roomguard, accounts, world):
    """A bulk reader paging through rooms' history through Envoy: 40 rooms served, the 41st refused with roomguard's
    denied_response as is: status 429, content-type application/json, the Matrix body (M_LIMIT_EXCEEDED,
    retry_after_ms > 0, READ_RATE_EXCEEDED), retry-after in seconds, CORS headers a browser needs to read it, and the
    decision id, which roomguard's decision log has as a deny asked by ext_authz."""
    bulk = accounts.new("bulk")
    rooms = world.rooms[:HISTORY_ROOMS_PER_HOUR + 1]
    matrix.join_all(bulk, rooms)
    answers = [matrix.history(envoy, bulk.token, room_id) for room_id in rooms]
    assert [r.status for r in answers] == [200] * HISTORY_ROOMS_PER_HOUR + [429]
    for resp in answers[:HISTORY_ROOMS_PER_HOUR]:
        assert resp.json()["chunk"]

    refused = answers[-1]
    body = matrix.assert_rate_refusal(refused, "READ_RATE_EXCEEDED", "41st room through Envoy")
    assert set(body) == {"errcode", "error", "retry_after_ms"}
    assert refused.headers.get("access-control-allow-origin") == "*", refused.headers
    assert "Retry-After" in refused.headers.get("access-control-expose-headers", ""), refused.headers
    decision_id = refused.headers.get("x-roomguard-decision-id", "")
    logged = matrix.wait_for(
        lambda: [d for d in matrix.read_lines(roomguard) if d["decision_id"] == decision_id],
        f"decision {decision_id!r} in roomguard's decision log",
    )
    assert [(d["user_id"], d["room_id"], d["effect"], d["read"]["front"]) for d in logged] == [
        (bulk.user_id, rooms[-1], "deny", "ext_authz")
    ]
    # A room already read is still served, and a send (no ext_authz on that route) too.
    assert matrix.history(envoy, bulk.token, rooms[0]).status == 200
    assert matrix.send(envoy, bulk.token, rooms[-1], "toujours là").status == 200


def test_a_legacy_download_without_a_token_is_refused_through_envoy(envoy, world):
    """GET /_matrix/media/v3/download/{server}/{mediaId} without a token, through Envoy: 403 M_FORBIDDEN with
    UNAUTHENTICATED_MEDIA, roomguard's body."""
    resp = matrix.legacy_download(envoy, None, world.files[0])
    assert resp.status == 403, (resp.status, resp.body)
    body = json.loads(resp.body)
    assert body["errcode"] == "M_FORBIDDEN" and "(UNAUTHENTICATED_MEDIA)" in body["error"], body


def test_with_roomguard_stopped_failure_mode_allow_decides(roomguards, proxies, accounts, world):
    """Two Envoys asking the same roomguard, failure_mode_allow true and false. While roomguard runs both ask it (a
    legacy download without a token is refused by both). Once it is stopped: with true, Synapse serves the reads
    (a history page, a download); with false they get 503 with the Matrix body M_UNKNOWN "The read guard is
    unavailable" (local_reply_config); non-reads are served by both."""
    guard = roomguards.start("roomguard-stopped-under-envoy")
    allow = proxies.envoy(guard.endpoint, failure_mode_allow=True)
    deny = proxies.envoy(guard.endpoint, failure_mode_allow=False)
    member = accounts.new("member")
    room_id, file = world.rooms[0], world.files[0]
    matrix.join_all(member, [room_id])
    assert member.send_text(room_id, "le dernier message").status == 200
    for proxy in (allow, deny):
        assert matrix.legacy_download(proxy, None, file).status == 403
        assert matrix.history(proxy, member.token, room_id).status == 200
    assert metric(guard, "roomguard_reads_total", kind="history") == 2

    guard.stop()

    resp = matrix.history(allow, member.token, room_id, limit=1)
    assert resp.status == 200, resp.body
    assert [e["content"]["body"] for e in resp.json()["chunk"]] == ["le dernier message"]
    resp = matrix.download(allow, member.token, file)
    assert (resp.status, resp.body) == (200, file.content)
    assert allow.stats("http.matrix.ext_authz").get("http.matrix.ext_authz.failure_mode_allowed", 0) >= 2

    for what, resp in [
        ("history", matrix.history(deny, member.token, room_id)),
        ("download", matrix.download(deny, member.token, file)),
    ]:
        assert resp.status == 503, (what, resp.status, resp.body)
        assert resp.headers.get("content-type", "").startswith("application/json"), (what, resp.headers)
        assert json.loads(resp.body) == {"errcode": "M_UNKNOWN", "error": "The read guard is unavailable"}, what

    for proxy in (allow, deny):
        assert matrix.send(proxy, member.token, room_id, "roomguard est arrêté").status == 200
