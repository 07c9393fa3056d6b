"""Per-room memory of the attributes roomguard needs, so that a message does not cost a state query storm.

Used only from Synapse's reactor thread: no locks. Two maps, because their truth changes in different ways:

* **room attributes** (join rule, history visibility, encryption, guest access, access rules, power levels) are room
  state. Each entry is stored with the ids of the state events it was read from (its *signature*). The module asks
  Synapse for the room's current tracked state on every message through `ModuleApi.get_room_state`, which Synapse
  answers from its own caches (per-room current-state ids and the event cache, both invalidated by Synapse when state
  is persisted); the attributes are rebuilt only when the signature changed, i.e. exactly when one of those state
  events changed. There is no invalidation to miss and no window in which a stale entry is served.
* **published** (listed in the public room directory) is not state, no event announces it, and Synapse does not cache
  it: the answer is kept for a short TTL, dropped when the module lets a publish/unpublish through, and not cached
  again until Synapse has written the change.

A fill that started before an invalidation must not store its (now stale) result: fills carry a token, and an
invalidation that lands while a fill is in flight marks that fill stale.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from .attributes import RoomAttributes

V = TypeVar("V")

#: After the module lets a (un)publish through, Synapse still has to write it; until then the answer is not cached.
DIRECTORY_SETTLE_S = 2.0


class _TtlLru(Generic[V]):
    """A bounded least-recently-used map whose entries expire, with stale-fill protection."""

    def __init__(self, size: int, ttl_s: float, clock: Callable[[], float]) -> None:
        self._size = size
        self._ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[str, tuple[V, float]] = OrderedDict()
        self._seq = 0
        self._inflight: dict[str, int] = {}  # room -> number of fills in flight
        self._invalidated_at: dict[str, int] = {}  # room -> seq of the last invalidation during an in-flight fill

    def get(self, key: str) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, stored_at = entry
        if self._clock() - stored_at >= self._ttl_s:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def begin_fill(self, key: str) -> int:
        self._seq += 1
        self._inflight[key] = self._inflight.get(key, 0) + 1
        return self._seq

    def end_fill(self, key: str, token: int, value: V | None) -> bool:
        """Store `value` (None: the fill failed) unless an invalidation happened since `begin_fill`; True if stored."""
        stale = self._invalidated_at.get(key, -1) >= token
        remaining = self._inflight.get(key, 1) - 1
        if remaining <= 0:
            self._inflight.pop(key, None)
            self._invalidated_at.pop(key, None)
        else:
            self._inflight[key] = remaining
        if stale or value is None:
            return False
        self.put(key, value)
        return True

    def put(self, key: str, value: V) -> None:
        if self._ttl_s <= 0:
            return
        self._entries[key] = (value, self._clock())
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def invalidate(self, key: str) -> None:
        self._entries.pop(key, None)
        if key in self._inflight:
            self._seq += 1
            self._invalidated_at[key] = self._seq

    def __len__(self) -> int:
        return len(self._entries)


class AttributeLru:
    """Room id -> (signature of the tracked state, attributes derived from it), least recently used evicted."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[str, tuple[Hashable, RoomAttributes]] = OrderedDict()
        self.rebuilds = 0  # how many times attributes were derived (for tests and curiosity)

    def get(self, room_id: str, signature: Hashable) -> RoomAttributes | None:
        """The attributes derived from exactly this tracked state, if they are still here."""
        entry = self._entries.get(room_id)
        if entry is None or entry[0] != signature:
            return None
        self._entries.move_to_end(room_id)
        return entry[1]

    def get_or_build(self, room_id: str, signature: Hashable, build: Callable[[], RoomAttributes]) -> RoomAttributes:
        cached = self.get(room_id, signature)
        if cached is not None:
            return cached
        attributes = build()
        self.rebuilds += 1
        self._entries[room_id] = (signature, attributes)
        self._entries.move_to_end(room_id)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)
        return attributes

    def __len__(self) -> int:
        return len(self._entries)


class RoomCache:
    """Room attributes and directory listing, per room id."""

    def __init__(self, *, size: int, directory_ttl_s: float, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.attributes = AttributeLru(size)
        self.published: _TtlLru[bool] = _TtlLru(size, directory_ttl_s, clock)
        self._directory_unsettled_until: dict[str, float] = {}

    def directory_changing(self, room_id: str) -> None:
        """The module just let a publish or unpublish of `room_id` through: forget the listing until it is written."""
        self.published.invalidate(room_id)
        now = self._clock()
        self._directory_unsettled_until[room_id] = now + DIRECTORY_SETTLE_S
        for room, until in list(self._directory_unsettled_until.items()):
            if until <= now:
                del self._directory_unsettled_until[room]

    def directory_settled(self, room_id: str) -> bool:
        until = self._directory_unsettled_until.get(room_id)
        if until is None:
            return True
        if until <= self._clock():
            del self._directory_unsettled_until[room_id]
            return True
        return False
