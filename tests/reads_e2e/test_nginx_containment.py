"""Containment (`--reads-lock-account-after 3` with an admin token): an account refused three reads for a rate in
the hour is locked through Synapse's admin API, and Synapse itself then refuses it; never a server admin."""

from __future__ import annotations

import pytest

import matrix
from conftest import HISTORY_ROOMS_PER_HOUR
from matrix import admin_api, metric

INITIAL_SYNCS_PER_HOUR = 30  # read.initial-syncs


@pytest.fixture(scope="module")
def guard(roomguards, admin, tmp_path_factory):
    """A roomguard that locks after 3 refusals, with the admin's access token in a file (mode 600)."""
    token_file = tmp_path_factory.mktemp("admin-token") / "admin_token"
    token_file.write_text(admin.token + "\n")
    token_file.chmod(0o600)
    return roomguards.start(
        "roomguard-containment",
        "--reads-admin-token-file", str(token_file),
        "--reads-lock-account-after", "3",
    )


@pytest.fixture(scope="module")
def nginx_guard(proxies, guard):
    return proxies.nginx(guard.reads_http, "closed")


def locked(synapse, admin, user_id: str) -> bool:
    status, body = admin_api(synapse, admin, "GET", f"/v2/users/{matrix.q(user_id)}")
    assert status == 200, body
    return body["locked"]


def test_a_bulk_reader_refused_three_times_is_locked_then_unlocked(
    nginx_guard, guard, synapse, admin, accounts, world
):
    """A bulk reader reads 40 rooms' history, is refused the 41st, 42nd and 43rd (429): roomguard locks it (PUT
    /_synapse/admin/v2/users/{userId} {"locked": true}), and its next request through nginx, a read or a send, gets
    Synapse's own answer for a locked account: 401 M_USER_LOCKED. An ordinary reader reading meanwhile is not
    locked and still reads. roomguard_accounts_locked_total counts the one lock, and roomguard's log says how to
    unlock. The unlock command of docs/reads.md (PUT {"locked": false}), sent to Synapse (the shipped nginx does not
    serve the admin API), gives the account back: it sends and reads a room it already read again."""
    bulk = accounts.new("bulk")
    reader = accounts.new("reader")
    matrix.join_all(bulk, world.rooms[:HISTORY_ROOMS_PER_HOUR + 4])
    matrix.join_all(reader, world.rooms[:2])
    locks_before = metric(guard, "roomguard_accounts_locked_total")
    assert locks_before == 0

    served = [matrix.history(nginx_guard, bulk.token, r).status for r in world.rooms[:HISTORY_ROOMS_PER_HOUR]]
    assert served == [200] * HISTORY_ROOMS_PER_HOUR
    assert matrix.history(nginx_guard, reader.token, world.rooms[0]).status == 200
    for n in range(3):
        resp = matrix.history(nginx_guard, bulk.token, world.rooms[HISTORY_ROOMS_PER_HOUR + n])
        matrix.assert_rate_refusal(resp, "READ_RATE_EXCEEDED", f"refusal {n + 1}")
        assert locked(synapse, admin, bulk.user_id) == (n == 2), f"locked after refusal {n + 1}"

    for what, resp in [
        ("a read of a new room", matrix.history(nginx_guard, bulk.token, world.rooms[HISTORY_ROOMS_PER_HOUR + 3])),
        ("a read of a room already read", matrix.history(nginx_guard, bulk.token, world.rooms[0])),
        ("a send", matrix.send(nginx_guard, bulk.token, world.rooms[0], "encore moi")),
        ("a download", matrix.download(nginx_guard, bulk.token, world.files[0])),
    ]:
        assert resp.status == 401, (what, resp.status, resp.body)
        assert resp.json()["errcode"] == "M_USER_LOCKED", (what, resp.body)

    assert not locked(synapse, admin, reader.user_id)
    for room_id in world.rooms[:2]:
        assert matrix.history(nginx_guard, reader.token, room_id).status == 200
    assert metric(guard, "roomguard_accounts_locked_total") == locks_before + 1
    assert metric(guard, "roomguard_account_lock_failures_total") == 0
    log = matrix.wait_for(
        lambda: [line for line in guard.log_text().splitlines() if "account locked" in line and bulk.user_id in line],
        "roomguard's log line about the lock",
    )
    assert len(log) == 1 and '{"locked": false}' in log[0], log

    # The unlock command of docs/reads.md, as curl sends it: `curl -X PUT -H "Authorization: Bearer $ADMIN_TOKEN"
    # -d '{"locked": false}' ".../_synapse/admin/v2/users/@alice:example.com"` (the user id as is in the path, curl's
    # form content type). Not through the shipped nginx, which does not serve the admin API (deploy/nginx/README.md):
    # there the account stays locked; on Synapse's own listener it works.
    unlock = dict(
        headers={"Authorization": f"Bearer {admin.token}", "Content-Type": "application/x-www-form-urlencoded"},
        body=b'{"locked": false}',
    )
    resp = nginx_guard.request("PUT", f"/_synapse/admin/v2/users/{bulk.user_id}", **unlock)
    assert resp.status in (404, 405), (resp.status, resp.body)  # nginx's own answer, not Synapse's
    assert locked(synapse, admin, bulk.user_id)
    resp = matrix.proxy_request(synapse.port, "PUT", f"/_synapse/admin/v2/users/{bulk.user_id}", **unlock)
    assert resp.status == 200, (resp.status, resp.body)
    assert resp.json()["locked"] is False
    assert not locked(synapse, admin, bulk.user_id)
    resp = matrix.send(nginx_guard, bulk.token, world.rooms[0], "de retour")
    assert resp.status == 200, resp.body
    resp = matrix.history(nginx_guard, bulk.token, world.rooms[0])
    assert resp.status == 200, resp.body
    assert metric(guard, "roomguard_accounts_locked_total") == locks_before + 1


def test_a_server_admin_is_refused_but_never_locked(nginx_guard, guard, synapse, admin, accounts):
    """A server admin past a budget (31st initial sync of the hour and three more) is refused for the rate like
    anyone, but never locked: it still syncs incrementally, and Synapse's admin API says it is not locked."""
    locks_before = metric(guard, "roomguard_accounts_locked_total")
    statuses = [matrix.sync(nginx_guard, admin.token).status for _ in range(INITIAL_SYNCS_PER_HOUR)]
    assert statuses == [200] * INITIAL_SYNCS_PER_HOUR
    for n in range(4):
        matrix.assert_rate_refusal(
            matrix.sync(nginx_guard, admin.token), "READ_RATE_EXCEEDED", f"initial sync refusal {n + 1}"
        )
    assert not locked(synapse, admin, admin.user_id)
    resp = matrix.sync(nginx_guard, admin.token)
    assert resp.status == 429, "still refused for the rate, not locked"
    first = matrix.sync(nginx_guard, admin.token, since="s0_0_0_0_0_0_0_0_0_0")
    assert first.status != 401, first.body
    assert metric(guard, "roomguard_accounts_locked_total") == locks_before


def test_an_unlocked_account_is_still_over_its_budget(nginx_guard, guard, synapse, admin, accounts, world):
    """Unlocking an account gives it back, not a fresh budget: right after the unlock, a history read of a room it
    has not read yet is still refused for the rate (it read 40 rooms this hour). While locked, its token was never
    remembered as unknown, so no read of it goes through undecided once it is unlocked."""
    bulk = accounts.new("bulk")
    matrix.join_all(bulk, world.rooms[:HISTORY_ROOMS_PER_HOUR + 4])
    assert [matrix.history(nginx_guard, bulk.token, r).status for r in world.rooms[:HISTORY_ROOMS_PER_HOUR + 3]] == (
        [200] * HISTORY_ROOMS_PER_HOUR + [429] * 3
    )
    assert matrix.history(nginx_guard, bulk.token, world.rooms[0]).status == 401  # locked
    status, body = admin_api(synapse, admin, "PUT", f"/v2/users/{matrix.q(bulk.user_id)}", {"locked": False})
    assert status == 200, body
    resp = matrix.history(nginx_guard, bulk.token, world.rooms[HISTORY_ROOMS_PER_HOUR + 3])
    assert resp.status == 429, (resp.status, resp.headers.get("x-roomguard-decision-id"))
