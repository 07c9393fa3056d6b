"""The room cache: attributes rebuilt exactly when their state changes; directory answers with TTL and invalidation."""

from __future__ import annotations

from synapse_roomguard.attributes import RoomState, attributes_from_state
from synapse_roomguard.cache import DIRECTORY_SETTLE_S, AttributeLru, RoomCache, _TtlLru


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_entry_expires_after_ttl() -> None:
    """An entry is served until its TTL, then refetched."""
    clock = Clock()
    lru: _TtlLru[int] = _TtlLru(size=10, ttl_s=5, clock=clock)
    lru.put("!a", 1)
    clock.now += 4.9
    assert lru.get("!a") == 1
    clock.now += 0.2
    assert lru.get("!a") is None


def test_least_recently_used_room_is_evicted() -> None:
    """The size bound evicts the room used least recently."""
    lru: _TtlLru[int] = _TtlLru(size=2, ttl_s=60, clock=Clock())
    lru.put("!a", 1)
    lru.put("!b", 2)
    assert lru.get("!a") == 1
    lru.put("!c", 3)
    assert lru.get("!b") is None and lru.get("!a") == 1 and lru.get("!c") == 3


def test_fill_started_before_invalidation_is_not_stored() -> None:
    """State fetched before a state change landed must not be cached after it."""
    lru: _TtlLru[str] = _TtlLru(size=10, ttl_s=60, clock=Clock())
    token = lru.begin_fill("!a")
    lru.invalidate("!a")  # a state event arrives while the fetch is in flight
    assert not lru.end_fill("!a", token, "old state")
    assert lru.get("!a") is None
    token = lru.begin_fill("!a")
    assert lru.end_fill("!a", token, "new state")
    assert lru.get("!a") == "new state"


def test_failed_fill_stores_nothing() -> None:
    """A fetch that failed leaves no entry."""
    lru: _TtlLru[str] = _TtlLru(size=10, ttl_s=60, clock=Clock())
    assert not lru.end_fill("!a", lru.begin_fill("!a"), None)
    assert lru.get("!a") is None


def test_zero_ttl_disables_caching() -> None:
    """`directory_cache_ttl_seconds: 0`: always ask."""
    lru: _TtlLru[bool] = _TtlLru(size=10, ttl_s=0, clock=Clock())
    lru.put("!a", True)
    assert lru.get("!a") is None


def test_directory_answer_is_not_cached_while_a_change_settles() -> None:
    """Right after the module lets a (un)publish through, the listing is re-read until Synapse has written it."""
    clock = Clock()
    cache = RoomCache(size=10, directory_ttl_s=10, clock=clock)
    cache.published.put("!a", False)
    cache.directory_changing("!a")
    assert cache.published.get("!a") is None
    assert not cache.directory_settled("!a")
    clock.now += DIRECTORY_SETTLE_S
    assert cache.directory_settled("!a")


def test_attributes_are_rebuilt_only_when_the_state_signature_changes() -> None:
    """Same tracked state event ids: the derived attributes are reused; a new id (a state change): rebuilt."""
    lru = AttributeLru(size=10)
    builds: list[str] = []

    def build(rule: str):
        def _build():
            builds.append(rule)
            return attributes_from_state(
                RoomState(contents={"m.room.create": {}, "m.room.join_rules": {"join_rule": rule}}),
                guest_access_enabled=False,
            )

        return _build

    first = lru.get_or_build("!a", (("m.room.join_rules", "$1"),), build("public"))
    again = lru.get_or_build("!a", (("m.room.join_rules", "$1"),), build("public"))
    assert again is first and builds == ["public"]
    changed = lru.get_or_build("!a", (("m.room.join_rules", "$2"),), build("invite"))
    assert changed is not first and builds == ["public", "invite"]


def test_attribute_cache_is_bounded() -> None:
    """The least recently used room is dropped beyond `room_cache_size`."""
    lru = AttributeLru(size=2)
    attrs = attributes_from_state(RoomState(contents={"m.room.create": {}}), guest_access_enabled=False)
    for room in ("!a", "!b", "!c"):
        lru.get_or_build(room, (), lambda: attrs)
    assert len(lru) == 2
