"""roomguard's decision log of reads (NDJSON on stdout), and the audit of everything every roomguard of the session
wrote: never an access token."""

from __future__ import annotations

import pytest

import matrix
from matrix import metric


def test_each_read_is_logged_once_with_its_kind_account_room_and_file(nginx, roomguard, accounts, world):
    """Every read asked through nginx is one CheckRead line: the account, the room for a history read, the
    `mxc://` id for a download or thumbnail, the kind (history, search, sync_initial, other, media, thumbnail), the
    effect and reasons, front auth_request, the same decision id as nginx's access log."""
    member = accounts.new("logged")
    room_id, file = world.rooms[5], world.files[5]
    matrix.join_all(member, [room_id])
    reads = [
        ("history", room_id, "", matrix.history(nginx, member.token, room_id)),
        ("search", "", "", matrix.search(nginx, member.token, "rapport")),
        ("sync_initial", "", "", matrix.sync(nginx, member.token)),
        ("other", "", "", matrix.sync(nginx, member.token, since="s1_1_0_1_1_1_1_1_0_1")),
        ("media", "", file.mxc, matrix.download(nginx, member.token, file)),
        ("thumbnail", "", file.mxc, matrix.thumbnail(nginx, member.token, file)),
    ]
    assert [r[3].status for r in reads][:5] == [200] * 5
    lines = matrix.wait_for(
        lambda: (lambda ls: ls if len(ls) >= len(reads) else None)(matrix.read_lines(roomguard, member.user_id)),
        "the member's reads in the decision log",
    )
    assert [
        (d["read"]["kind"], d["room_id"], d["read"]["media_id"], d["effect"], d["reasons"], d["read"]["front"])
        for d in lines
    ] == [(kind, room, media, "allow", ["ALLOWED"], "auth_request") for kind, room, media, _ in reads]
    for line in lines:
        assert line["rpc"] == "CheckRead" and line["shadow"] is False
        assert nginx.access_log_line(f"rg={line['decision_id']}")

    resp = matrix.legacy_download(nginx, None, file)
    assert resp.status == 403
    decision_id = resp.headers["x-roomguard-decision-id"]
    [line] = matrix.wait_for(
        lambda: [d for d in matrix.read_lines(roomguard) if d["decision_id"] == decision_id],
        "the legacy download's refusal in the decision log",
    )
    assert (line["user_id"], line["effect"], line["reasons"], line["rules"]) == (
        "", "deny", ["UNAUTHENTICATED_MEDIA"], ["read.unauthenticated-media"]
    )
    assert (line["read"]["kind"], line["read"]["media_id"]) == ("media", file.mxc)


def test_a_token_in_the_query_string_is_resolved_and_not_logged(nginx, roomguard, accounts, world):
    """A read that carries its token as `?access_token=` (deprecated, still served by Synapse) is decided for its
    account, like one with an Authorization header; the token is not in roomguard's output (checked with every other
    token by the audit below)."""
    member = accounts.new("querytoken")
    room_id = world.rooms[6]
    matrix.join_all(member, [room_id])
    resp = nginx.request(
        "GET", f"/_matrix/client/v3/rooms/{matrix.q(room_id)}/messages?dir=b&limit=1&access_token={member.token}"
    )
    assert resp.status == 200, resp.body
    [line] = matrix.wait_for(lambda: matrix.read_lines(roomguard, member.user_id), "the read in the decision log")
    assert (line["room_id"], line["read"]["kind"], line["effect"]) == (room_id, "history", "allow")


@pytest.mark.after_all
def test_no_roomguard_output_contains_an_access_token(roomguards, tokens):
    """Run after every other test: the whole output (decision log and roomguard's own log at debug) of every
    roomguard the session started, every start, holds none of the access tokens the session used: each account's,
    the admin token roomguard itself holds (reads.admin_token_file), tokens sent in the query string. Also checked:
    the token cache was used (roomguard_token_cache_entries > 0) and reads were logged."""
    assert len(tokens) >= 10 and all(len(t) > 20 for t in tokens.values())
    assert roomguards.all
    total_reads = 0
    for server in roomguards.all:
        text = server.log_text()
        leaked = [user for user, token in tokens.items() if token in text]
        assert not leaked, f"{server.name}'s output holds the access token of {leaked}"
        # Nor the token's secret part alone (a Synapse token is syt_<base64 localpart>_<random>_<checksum>).
        leaked = [user for user, token in tokens.items() if token.split("_")[2] in text]
        assert not leaked, f"{server.name}'s output holds part of the access token of {leaked}"
        total_reads += len(matrix.read_lines(server))
    assert total_reads > 1000
    main = next(s for s in roomguards.all if s.name == "roomguard-main")
    assert metric(main, "roomguard_token_cache_entries") > 0
