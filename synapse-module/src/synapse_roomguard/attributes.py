"""Room attributes that roomguard decides on, read from room state or predicted from a `createRoom` request.

Pure functions over plain dicts (no Synapse objects), so they are unit-tested without a homeserver. The module turns
Synapse's state events into a `RoomState` (type -> content, plus the create event's facts) and asks these functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._proto.roomguard.v1 import policy_pb2 as pb

#: Synapse gives room creators this power level in room versions where creators outrank everyone (MSC4289, room
#: version 12): `synapse.api.constants.CREATOR_POWER_LEVEL`. It fits the proto's int64.
CREATOR_POWER_LEVEL = 2**53

#: Tchap's room access rules state event.
ACCESS_RULES_EVENT = "im.vector.room.access_rules"

#: The state events whose change can change a decision: the module reads these (with an empty state key), and a new
#: event id for any of them makes it derive the room's attributes again.
TRACKED_STATE_TYPES = frozenset(
    {
        "m.room.create",
        "m.room.join_rules",
        "m.room.history_visibility",
        "m.room.encryption",
        "m.room.guest_access",
        "m.room.power_levels",
        ACCESS_RULES_EVENT,
    }
)

#: The state events (with an empty state key) whose change roomguard decides on (`CheckRoomStateChange`): they decide
#: who can join and read the room. Power levels are tracked too, but change nothing roomguard's state rules read.
STATE_CHANGE_TYPES = frozenset(
    {
        "m.room.join_rules",
        "m.room.history_visibility",
        "m.room.guest_access",
        "m.room.encryption",
        ACCESS_RULES_EVENT,
    }
)

_JOIN_RULES: dict[str, pb.JoinRule] = {
    "public": pb.JOIN_RULE_PUBLIC,
    "invite": pb.JOIN_RULE_INVITE,
    "knock": pb.JOIN_RULE_KNOCK,
    "restricted": pb.JOIN_RULE_RESTRICTED,
    "knock_restricted": pb.JOIN_RULE_KNOCK_RESTRICTED,
    "private": pb.JOIN_RULE_PRIVATE,
}

_HISTORY_VISIBILITIES: dict[str, pb.HistoryVisibility] = {
    "world_readable": pb.HISTORY_VISIBILITY_WORLD_READABLE,
    "shared": pb.HISTORY_VISIBILITY_SHARED,
    "invited": pb.HISTORY_VISIBILITY_INVITED,
    "joined": pb.HISTORY_VISIBILITY_JOINED,
}


@dataclass(frozen=True)
class RoomState:
    """The part of a room's current state that roomguard needs, as plain data: `(type) -> content`.

    Only the tracked state events with an empty state key matter, so a dict keyed by event type is enough.
    """

    contents: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: Sender of `m.room.create` (the creator in every room version since 11).
    creator: str = ""
    #: The room version gives creators unbounded power (MSC4289, room version 12).
    creators_outrank_everyone: bool = False


@dataclass(frozen=True)
class RoomAttributes:
    """What roomguard's `Room` message says about a room, except `room_id` and `published` (added at request time)."""

    join_rule: pb.JoinRule
    history_visibility: pb.HistoryVisibility
    encrypted: bool
    guest_access: bool
    access_rule: str
    #: `m.room.power_levels` `users`, `users_default`, and the creators, to compute any user's level.
    power_users: Mapping[str, int]
    power_users_default: int
    creators: frozenset[str]
    creators_outrank_everyone: bool
    has_power_levels: bool

    def power_level(self, user_id: str) -> int:
        """The user's power level, computed as Synapse's `event_auth.get_user_power_level` does."""
        if self.creators_outrank_everyone and user_id in self.creators:
            return CREATOR_POWER_LEVEL
        if not self.has_power_levels:
            # No power levels event: the creator has 100, everyone else 0 (Matrix spec, "m.room.power_levels").
            return 100 if user_id in self.creators else 0
        return self.power_users.get(user_id, self.power_users_default)

    def to_proto(self, room_id: str, *, published: bool) -> pb.Room:
        return pb.Room(
            room_id=room_id,
            join_rule=self.join_rule,
            history_visibility=self.history_visibility,
            encrypted=self.encrypted,
            guest_access=self.guest_access,
            published=published,
            access_rule=self.access_rule,
        )


def _int(value: Any, default: int) -> int:
    """A power level as Synapse reads it: ints, and (in old room versions) numeric strings."""
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return default
    return default


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _content(state: Mapping[str, Mapping[str, Any]], event_type: str) -> Mapping[str, Any]:
    content = state.get(event_type)
    return content if isinstance(content, Mapping) else {}


def attributes_from_state(state: RoomState, *, guest_access_enabled: bool) -> RoomAttributes:
    """Read the room's attributes from its current state, with the Matrix spec's defaults for missing events.

    A missing or unknown join rule is `invite` (the spec's default) and a missing history visibility is `shared`, so
    that roomguard always receives a valid, non-UNSPECIFIED value describing what Synapse actually enforces.

    `guest_access_enabled` is the homeserver's own setting: guest access is *effective* (what roomguard's
    `Room.guest_access` means) only when the room says `can_join` and the homeserver lets guests in at all. Synapse's
    `private_chat` and `trusted_private_chat` presets write `can_join` into every room they create, so the state event
    alone says little.
    """
    contents = state.contents
    join_rule = _JOIN_RULES.get(_text(_content(contents, "m.room.join_rules").get("join_rule")), pb.JOIN_RULE_INVITE)
    history = _HISTORY_VISIBILITIES.get(
        _text(_content(contents, "m.room.history_visibility").get("history_visibility")), pb.HISTORY_VISIBILITY_SHARED
    )
    # DESIGN: "an m.room.encryption state event is present". A redacted or malformed one still makes clients encrypt
    # (and Synapse refuses to remove it), so its mere presence counts.
    encrypted = "m.room.encryption" in contents
    room_lets_guests_in = _content(contents, "m.room.guest_access").get("guest_access") == "can_join"
    guest_access = guest_access_enabled and room_lets_guests_in
    access_rule = _content(contents, ACCESS_RULES_EVENT).get("rule")
    access_rule = access_rule if isinstance(access_rule, str) else ""

    power_levels = contents.get("m.room.power_levels")
    users: dict[str, int] = {}
    users_default = 0
    if isinstance(power_levels, Mapping):
        raw_users = power_levels.get("users")
        if isinstance(raw_users, Mapping):
            users = {str(k): _int(v, 0) for k, v in raw_users.items()}
        users_default = _int(power_levels.get("users_default"), 0)

    creators = {state.creator} if state.creator else set()
    if state.creators_outrank_everyone:
        additional = _content(contents, "m.room.create").get("additional_creators")
        if isinstance(additional, list):
            creators.update(u for u in additional if isinstance(u, str))

    return RoomAttributes(
        join_rule=join_rule,
        history_visibility=history,
        encrypted=encrypted,
        guest_access=guest_access,
        access_rule=access_rule,
        power_users=users,
        power_users_default=users_default,
        creators=frozenset(creators),
        creators_outrank_everyone=state.creators_outrank_everyone,
        has_power_levels=isinstance(power_levels, Mapping),
    )


def is_state_change(event_type: str, state_key: str | None) -> bool:
    """Is this event a change of the room attributes that `CheckRoomStateChange` decides on?

    Only with an empty state key: `m.room.join_rules` with another state key is not the room's join rule.
    """
    return state_key == "" and event_type in STATE_CHANGE_TYPES


def with_event_applied(state: RoomState, event_type: str, content: Mapping[str, Any]) -> RoomState:
    """The room's state once a state event of `event_type` (empty state key) with `content` replaces the current one.

    The content replaces the previous event's content as a whole, as state does: `{}` for `m.room.join_rules` means
    the spec's default (invite), not "unchanged".
    """
    contents = dict(state.contents)
    contents[event_type] = dict(content)
    return RoomState(
        contents=contents, creator=state.creator, creators_outrank_everyone=state.creators_outrank_everyone
    )


#: A room that `createRoom` has not created yet, as `CheckRoomStateChange.room`: no state at all, so every attribute is
#: the spec's default (invite join rule, shared history, no encryption, no guest access, no access rule).
NO_STATE = RoomState()

#: A room this homeserver is not in, joined without an invitation (a join over federation): such a join can only
#: succeed into a room that others may join freely, so it is described as public with shared history.
UNKNOWN_ROOM_JOINED_UNINVITED = RoomState(
    contents={
        "m.room.join_rules": {"join_rule": "public"},
        "m.room.history_visibility": {"history_visibility": "shared"},
    }
)


def state_from_stripped(stripped: Any) -> RoomState:
    """The tracked state of a room this homeserver is not in, from an invite's stripped state (`invite_room_state`).

    Stripped state holds what the inviting server chose to share: by default (Synapse's `room_prejoin_state`) the
    create event, join rules and encryption, not history visibility, guest access or Tchap's access rules, which
    then get the spec's defaults. Malformed entries are skipped.
    """
    contents: dict[str, dict[str, Any]] = {}
    creator = ""
    if isinstance(stripped, Sequence) and not isinstance(stripped, str):
        for entry in stripped:
            if not isinstance(entry, Mapping) or entry.get("state_key") != "":
                continue
            event_type = entry.get("type")
            content = entry.get("content")
            if not isinstance(event_type, str) or event_type not in TRACKED_STATE_TYPES:
                continue
            if not isinstance(content, Mapping):
                continue
            contents[event_type] = dict(content)
            if event_type == "m.room.create" and isinstance(entry.get("sender"), str):
                creator = entry["sender"]
    # The room version decides whether creators outrank everyone; the create event names it ("1" when absent).
    room_version = contents.get("m.room.create", {}).get("room_version", "1")
    outrank = room_version_outranks(room_version, default=False) if isinstance(room_version, str) else False
    return RoomState(contents=contents, creator=creator, creators_outrank_everyone=outrank)


# === createRoom prediction ===

#: Synapse's room creation presets (synapse/handlers/room.py `_presets_dict`), without the encryption flag, which
#: depends on the server's `encryption_enabled_by_default_for_room_type`.
_PRESETS: Mapping[str, Mapping[str, Any]] = {
    "private_chat": {"join_rule": "invite", "history_visibility": "shared", "guest_can_join": True},
    "trusted_private_chat": {"join_rule": "invite", "history_visibility": "shared", "guest_can_join": True},
    "public_chat": {"join_rule": "public", "history_visibility": "shared", "guest_can_join": False},
}


@dataclass(frozen=True)
class CreationDefaults:
    """The server settings that shape a new room and that `createRoom` requests do not carry."""

    #: Presets for which the server forces `m.room.encryption` (`encryption_enabled_by_default_for_room_type`).
    encrypted_presets: frozenset[str] = frozenset()
    #: The server's default room version gives creators unbounded power (room version 12 does).
    creators_outrank_everyone: bool = True


def preset_of(room_config: Mapping[str, Any]) -> str:
    """The preset Synapse will apply: the requested one, else by `visibility` (public -> public_chat)."""
    preset = room_config.get("preset")
    if isinstance(preset, str):
        return preset
    return "public_chat" if room_config.get("visibility") == "public" else "private_chat"


def state_from_create_request(creator: str, room_config: Mapping[str, Any], defaults: CreationDefaults) -> RoomState:
    """Predict the tracked state a room created by `createRoom` with `room_config` will have right after creation.

    Follows Synapse's order: preset state, then `power_level_content_override` merged into the power levels, then
    `initial_state` events, which replace the preset's events of the same type; the server's forced encryption
    applies unless the request brings its own `m.room.encryption`.
    """
    preset_name = preset_of(room_config)
    # An unknown preset is refused by Synapse with 400 after this check; describe it as the private default.
    preset = _PRESETS.get(preset_name, _PRESETS["private_chat"])

    contents: dict[str, dict[str, Any]] = {
        "m.room.join_rules": {"join_rule": preset["join_rule"]},
        "m.room.history_visibility": {"history_visibility": preset["history_visibility"]},
    }
    if preset["guest_can_join"]:
        contents["m.room.guest_access"] = {"guest_access": "can_join"}
    if preset_name in defaults.encrypted_presets:
        contents["m.room.encryption"] = {"algorithm": "m.megolm.v1.aes-sha2"}

    creation_content = room_config.get("creation_content")
    create: dict[str, Any] = dict(creation_content) if isinstance(creation_content, Mapping) else {}
    outrank = defaults.creators_outrank_everyone
    room_version = room_config.get("room_version")
    if isinstance(room_version, str):
        outrank = room_version_outranks(room_version, default=outrank)
    contents["m.room.create"] = create

    power_levels: dict[str, Any] = {"users": {} if outrank else {creator: 100}, "users_default": 0}
    override = room_config.get("power_level_content_override")
    if isinstance(override, Mapping):
        power_levels.update(override)
    contents["m.room.power_levels"] = power_levels

    initial_state = room_config.get("initial_state")
    if isinstance(initial_state, list):
        for event in initial_state:
            if not isinstance(event, Mapping) or event.get("state_key", "") != "":
                continue
            event_type = event.get("type")
            content = event.get("content")
            if isinstance(event_type, str) and isinstance(content, Mapping):
                contents[event_type] = dict(content)

    return RoomState(contents=contents, creator=creator, creators_outrank_everyone=outrank)


def room_version_outranks(room_version: str, *, default: bool) -> bool:
    """Does this room version give creators unbounded power (MSC4289)? Asks Synapse's table when it is importable."""
    try:
        from synapse.api.room_versions import KNOWN_ROOM_VERSIONS
    except ImportError:  # pragma: no cover - always importable inside Synapse
        return default
    version = KNOWN_ROOM_VERSIONS.get(room_version)
    if version is None:
        return default
    return bool(getattr(version, "msc4289_creator_power_enabled", False))
