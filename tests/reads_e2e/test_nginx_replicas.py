"""Two roomguard replicas sharing one real redis-server, both in nginx's `upstream roomguard_reads` (round robin): an
account's read budget is one, whichever replica decides."""

from __future__ import annotations

import pytest

import matrix
from conftest import BULK_FILES, BULK_ROOMS, HISTORY_ROOMS_PER_HOUR, MEDIA_PER_HOUR
from matrix import metric


@pytest.fixture(scope="module")
def replicas(roomguards, redis):
    return [
        roomguards.start(f"roomguard-replica-{n}", "--counters-backend", "redis", "--counters-redis-url", redis)
        for n in ("a", "b")
    ]


@pytest.fixture(scope="module")
def nginx_replicas(proxies, replicas):
    return proxies.nginx([r.reads_http for r in replicas], "closed")


def test_two_replicas_sharing_redis_refuse_from_the_41st_room_and_the_301st_file(
    nginx_replicas, replicas, accounts, world
):
    """The same bulk run (60 rooms' history, 400 files) through nginx with both replicas in its upstream, each read
    decided by one or the other in turn: still exactly 40 rooms and 300 files served, refused from the 41st room and
    the 301st file. Each replica decided a large share of the reads and refused some (so each saw counts the other
    recorded), and none fell back to its own local count."""
    bulk = accounts.new("bulk")
    matrix.join_all(bulk, world.rooms)

    run = matrix.bulk_read(nginx_replicas, bulk.token, world)

    matrix.assert_bulk_refused_past_budgets(run, world, HISTORY_ROOMS_PER_HOUR, MEDIA_PER_HOUR)
    total = BULK_ROOMS + BULK_FILES
    # The decision logs are written in batches: wait until both have every read.
    decided = matrix.wait_for(
        lambda: (lambda ns: ns if sum(ns) == total else None)(
            [len(matrix.read_lines(r, bulk.user_id)) for r in replicas]),
        "every bulk read in one of the two decision logs",
    )
    for replica, count in zip(replicas, decided):
        assert count >= total // 4, (replica.name, decided)
        effects = {d["effect"] for d in matrix.read_lines(replica, bulk.user_id)}
        assert effects == {"allow", "deny"}, (replica.name, effects)
        assert metric(replica, "roomguard_counter_fallbacks_total") == 0, replica.name
