"""Room attributes from current state, and predicted from a `createRoom` request."""

from __future__ import annotations

import pytest

from synapse_roomguard._proto.roomguard.v1 import policy_pb2 as pb
from synapse_roomguard.attributes import (
    CREATOR_POWER_LEVEL,
    NO_STATE,
    STATE_CHANGE_TYPES,
    UNKNOWN_ROOM_JOINED_UNINVITED,
    CreationDefaults,
    RoomAttributes,
    RoomState,
    is_state_change,
    state_from_create_request,
    state_from_stripped,
    with_event_applied,
)
from synapse_roomguard.attributes import attributes_from_state as _attributes_from_state

ALICE = "@alice:agent.finances.tchap.gouv.fr"
BOB = "@bob:agent.finances.tchap.gouv.fr"


def attributes_from_state(room: RoomState, *, guest_access_enabled: bool = True) -> RoomAttributes:
    """The attributes on a homeserver that lets guests in, unless a test says otherwise."""
    return _attributes_from_state(room, guest_access_enabled=guest_access_enabled)


def state(creator: str = ALICE, outrank: bool = False, **contents: dict) -> RoomState:
    by_type = {k.replace("__", "."): v for k, v in contents.items()}
    by_type.setdefault("m.room.create", {})
    return RoomState(contents=by_type, creator=creator, creators_outrank_everyone=outrank)


def test_public_forum_attributes() -> None:
    """Join rule, history visibility, encryption, guest access and access rule are read from their state events."""
    attrs = attributes_from_state(
        RoomState(
            contents={
                "m.room.create": {},
                "m.room.join_rules": {"join_rule": "public"},
                "m.room.history_visibility": {"history_visibility": "world_readable"},
                "m.room.guest_access": {"guest_access": "can_join"},
                "m.room.encryption": {"algorithm": "m.megolm.v1.aes-sha2"},
                "im.vector.room.access_rules": {"rule": "unrestricted"},
            },
            creator=ALICE,
        )
    )
    room = attrs.to_proto("!r:s", published=True)
    assert room.join_rule == pb.JOIN_RULE_PUBLIC
    assert room.history_visibility == pb.HISTORY_VISIBILITY_WORLD_READABLE
    assert room.encrypted and room.guest_access and room.published
    assert room.access_rule == "unrestricted"
    assert room.room_id == "!r:s"


def test_missing_state_gets_the_spec_defaults() -> None:
    """No join rules / history visibility event: invite and shared (never UNSPECIFIED, which roomguard rejects)."""
    attrs = attributes_from_state(RoomState(contents={"m.room.create": {}}, creator=ALICE))
    assert attrs.join_rule == pb.JOIN_RULE_INVITE
    assert attrs.history_visibility == pb.HISTORY_VISIBILITY_SHARED
    assert not attrs.encrypted and not attrs.guest_access
    assert attrs.access_rule == ""


def test_unknown_values_get_the_spec_defaults() -> None:
    """Garbage join rule or visibility values are read as Synapse enforces them: invite and shared."""
    attrs = attributes_from_state(
        state(m__room__join_rules={"join_rule": "everyone"}, m__room__history_visibility={"history_visibility": 1})
    )
    assert attrs.join_rule == pb.JOIN_RULE_INVITE
    assert attrs.history_visibility == pb.HISTORY_VISIBILITY_SHARED


def test_every_join_rule_and_visibility_maps_to_its_enum() -> None:
    """All six join rules and four history visibilities of the spec have their proto value."""
    for rule, value in [
        ("public", pb.JOIN_RULE_PUBLIC),
        ("invite", pb.JOIN_RULE_INVITE),
        ("knock", pb.JOIN_RULE_KNOCK),
        ("restricted", pb.JOIN_RULE_RESTRICTED),
        ("knock_restricted", pb.JOIN_RULE_KNOCK_RESTRICTED),
        ("private", pb.JOIN_RULE_PRIVATE),
    ]:
        assert attributes_from_state(state(m__room__join_rules={"join_rule": rule})).join_rule == value
    for vis, expected in [
        ("world_readable", pb.HISTORY_VISIBILITY_WORLD_READABLE),
        ("shared", pb.HISTORY_VISIBILITY_SHARED),
        ("invited", pb.HISTORY_VISIBILITY_INVITED),
        ("joined", pb.HISTORY_VISIBILITY_JOINED),
    ]:
        attrs = attributes_from_state(state(m__room__history_visibility={"history_visibility": vis}))
        assert attrs.history_visibility == expected


def test_can_join_is_guest_access_only_where_the_homeserver_allows_guests() -> None:
    """`Room.guest_access` is effective guest access: `can_join` in the room **and** guests let in by the homeserver."""
    room = state(m__room__guest_access={"guest_access": "can_join"})
    assert attributes_from_state(room, guest_access_enabled=True).guest_access
    assert not attributes_from_state(room, guest_access_enabled=False).guest_access
    assert not attributes_from_state(state(), guest_access_enabled=True).guest_access


def test_guest_access_forbidden_is_off() -> None:
    """`guest_access: forbidden` is not guest access."""
    assert not attributes_from_state(state(m__room__guest_access={"guest_access": "forbidden"})).guest_access


def test_power_levels_from_users_and_default() -> None:
    """A listed user has their level, anyone else `users_default`; string levels (old rooms) are read as numbers."""
    attrs = attributes_from_state(state(m__room__power_levels={"users": {ALICE: 100, BOB: "50"}, "users_default": 5}))
    assert attrs.power_level(ALICE) == 100
    assert attrs.power_level(BOB) == 50
    assert attrs.power_level("@carol:x") == 5


def test_without_power_levels_the_creator_has_100() -> None:
    """No power levels event: creator 100, others 0 (Matrix spec)."""
    attrs = attributes_from_state(state())
    assert attrs.power_level(ALICE) == 100
    assert attrs.power_level(BOB) == 0


def test_room_v12_creators_outrank_everyone() -> None:
    """Room version 12: creator and additional creators have Synapse's creator level, whatever the users map says."""
    attrs = attributes_from_state(
        state(
            outrank=True,
            m__room__create={"additional_creators": [BOB]},
            m__room__power_levels={"users": {}, "users_default": 0},
        )
    )
    assert attrs.power_level(ALICE) == CREATOR_POWER_LEVEL
    assert attrs.power_level(BOB) == CREATOR_POWER_LEVEL
    assert attrs.power_level("@carol:x") == 0


def test_additional_creators_need_room_v12() -> None:
    """`additional_creators` means nothing before room version 12."""
    attrs = attributes_from_state(
        state(m__room__create={"additional_creators": [BOB]}, m__room__power_levels={"users": {}})
    )
    assert attrs.power_level(BOB) == 0


# === createRoom ===

NO_DEFAULTS = CreationDefaults(encrypted_presets=frozenset(), creators_outrank_everyone=False)


def predicted(config: dict, defaults: CreationDefaults = NO_DEFAULTS, *, guest_access_enabled: bool = True):
    return attributes_from_state(
        state_from_create_request(ALICE, config, defaults), guest_access_enabled=guest_access_enabled
    )


def test_public_visibility_defaults_to_public_chat_preset() -> None:
    """`visibility: public` without preset: public join rule, shared history, no guests, not encrypted; creator 100."""
    attrs = predicted({"visibility": "public"})
    assert attrs.join_rule == pb.JOIN_RULE_PUBLIC
    assert attrs.history_visibility == pb.HISTORY_VISIBILITY_SHARED
    assert not attrs.guest_access and not attrs.encrypted
    assert attrs.power_level(ALICE) == 100


def test_private_chat_preset_is_invite_only_with_guests() -> None:
    """`preset: private_chat` (even with `visibility: public`) is invite-only and lets guests join, as Synapse does,
    on a homeserver that allows guests."""
    attrs = predicted({"visibility": "public", "preset": "private_chat"})
    assert attrs.join_rule == pb.JOIN_RULE_INVITE
    assert attrs.guest_access


@pytest.mark.parametrize("preset", ["private_chat", "trusted_private_chat"])
def test_private_presets_give_no_guest_access_on_a_homeserver_without_guests(preset: str) -> None:
    """The private presets write `can_join`, but on a homeserver without guest access no guest can get in."""
    attrs = predicted({"visibility": "public", "preset": preset}, guest_access_enabled=False)
    assert attrs.join_rule == pb.JOIN_RULE_INVITE
    assert not attrs.guest_access


def test_initial_state_overrides_preset() -> None:
    """`initial_state` events replace the preset's: join rule, history visibility, encryption, access rules."""
    attrs = predicted(
        {
            "visibility": "public",
            "preset": "public_chat",
            "initial_state": [
                {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}},
                {"type": "m.room.history_visibility", "content": {"history_visibility": "world_readable"}},
                {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}},
                {"type": "im.vector.room.access_rules", "state_key": "", "content": {"rule": "restricted"}},
                {"type": "m.room.guest_access", "state_key": "other", "content": {"guest_access": "can_join"}},
                "not an event",
            ],
        }
    )
    assert attrs.join_rule == pb.JOIN_RULE_KNOCK
    assert attrs.history_visibility == pb.HISTORY_VISIBILITY_WORLD_READABLE
    assert attrs.encrypted
    assert attrs.access_rule == "restricted"
    assert not attrs.guest_access  # non-empty state key: not the room's guest access


def test_power_level_override_sets_creator_level() -> None:
    """`power_level_content_override.users` decides the creator's level (pre-v12 rooms)."""
    attrs = predicted({"visibility": "public", "power_level_content_override": {"users": {ALICE: 10}}})
    assert attrs.power_level(ALICE) == 10


def test_server_forced_encryption_applies_to_preset() -> None:
    """`encryption_enabled_by_default_for_room_type` encrypts rooms of the listed presets."""
    defaults = CreationDefaults(encrypted_presets=frozenset({"public_chat"}), creators_outrank_everyone=False)
    assert predicted({"visibility": "public"}, defaults).encrypted
    assert not predicted({"visibility": "public", "preset": "private_chat"}, defaults).encrypted


def test_v12_creator_outranks_any_override() -> None:
    """Default room version 12: the creator has the creator level even if the override lists nobody."""
    defaults = CreationDefaults(creators_outrank_everyone=True)
    assert predicted({"visibility": "public"}, defaults).power_level(ALICE) == CREATOR_POWER_LEVEL


def test_requested_room_version_decides_creator_power() -> None:
    """`room_version: "10"` on a v12-default server: the creator is an ordinary user with their users-map level."""
    defaults = CreationDefaults(creators_outrank_everyone=True)
    attrs = predicted({"visibility": "public", "room_version": "10"}, defaults)
    assert attrs.power_level(ALICE) == 100


# === state changes ===


def test_state_change_types_are_the_five_that_decide_who_enters() -> None:
    """Join rules, history visibility, guest access, encryption and Tchap's access rules, with an empty state key."""
    assert STATE_CHANGE_TYPES == {
        "m.room.join_rules",
        "m.room.history_visibility",
        "m.room.guest_access",
        "m.room.encryption",
        "im.vector.room.access_rules",
    }
    assert is_state_change("m.room.join_rules", "")
    assert not is_state_change("m.room.join_rules", "x")  # not the room's join rule
    assert not is_state_change("m.room.join_rules", None)  # not a state event
    assert not is_state_change("m.room.power_levels", "")
    assert not is_state_change("m.room.name", "")


def forum_state() -> RoomState:
    return state(
        m__room__join_rules={"join_rule": "public"},
        m__room__history_visibility={"history_visibility": "shared"},
        m__room__power_levels={"users": {ALICE: 100}},
    )


def test_proposed_room_applies_the_event_content() -> None:
    """The proposed room is the current one with the event's content in place of its type's current content; the
    current room is left untouched."""
    now = forum_state()
    after = with_event_applied(now, "m.room.history_visibility", {"history_visibility": "world_readable"})
    assert attributes_from_state(after).history_visibility == pb.HISTORY_VISIBILITY_WORLD_READABLE
    assert attributes_from_state(after).join_rule == pb.JOIN_RULE_PUBLIC
    assert attributes_from_state(after).power_level(ALICE) == 100
    assert attributes_from_state(now).history_visibility == pb.HISTORY_VISIBILITY_SHARED


@pytest.mark.parametrize(
    ("event_type", "content", "attribute", "expected"),
    [
        ("m.room.join_rules", {"join_rule": "invite"}, "join_rule", pb.JOIN_RULE_INVITE),
        ("m.room.join_rules", {}, "join_rule", pb.JOIN_RULE_INVITE),  # content replaced whole: the spec's default
        ("m.room.encryption", {"algorithm": "m.megolm.v1.aes-sha2"}, "encrypted", True),
        ("m.room.encryption", {}, "encrypted", True),  # present is encrypted, as clients read it
        ("m.room.guest_access", {"guest_access": "can_join"}, "guest_access", True),
        ("im.vector.room.access_rules", {"rule": "unrestricted"}, "access_rule", "unrestricted"),
        ("im.vector.room.access_rules", {"rule": 3}, "access_rule", ""),
    ],
)
def test_each_state_change_type_moves_its_attribute(
    event_type: str, content: dict, attribute: str, expected: object
) -> None:
    """Each of the five types changes exactly the attribute it carries."""
    after = attributes_from_state(with_event_applied(forum_state(), event_type, content))
    assert getattr(after, attribute) == expected


def test_guest_access_change_is_effective_only_where_guests_exist() -> None:
    """`can_join` proposed on a homeserver without guest access changes nothing roomguard sees."""
    after = with_event_applied(forum_state(), "m.room.guest_access", {"guest_access": "can_join"})
    assert not attributes_from_state(after, guest_access_enabled=False).guest_access


def test_a_room_with_no_state_has_the_spec_defaults() -> None:
    """`createRoom`'s room before: invite, shared, not encrypted, no guests, no access rule."""
    attrs = attributes_from_state(NO_STATE)
    assert (attrs.join_rule, attrs.history_visibility) == (pb.JOIN_RULE_INVITE, pb.HISTORY_VISIBILITY_SHARED)
    assert not attrs.encrypted and not attrs.guest_access and attrs.access_rule == ""


# === rooms this homeserver is not in ===


def test_unknown_room_joined_without_invite_is_public_with_shared_history() -> None:
    """A join over federation without an invitation can only succeed into a room others may join freely."""
    attrs = attributes_from_state(UNKNOWN_ROOM_JOINED_UNINVITED)
    assert attrs.join_rule == pb.JOIN_RULE_PUBLIC
    assert attrs.history_visibility == pb.HISTORY_VISIBILITY_SHARED
    assert not attrs.encrypted and attrs.access_rule == ""


def test_invite_stripped_state_describes_the_room() -> None:
    """An invitation's stripped state gives the join rule, encryption and (when shared) access rule; history
    visibility the inviting server did not share gets the spec's default; other entries are ignored."""
    stripped = [
        {"type": "m.room.create", "state_key": "", "sender": BOB, "content": {"room_version": "10"}},
        {"type": "m.room.join_rules", "state_key": "", "sender": BOB, "content": {"join_rule": "knock"}},
        {"type": "m.room.encryption", "state_key": "", "sender": BOB, "content": {"algorithm": "m.megolm.v1"}},
        {"type": "im.vector.room.access_rules", "state_key": "", "sender": BOB, "content": {"rule": "restricted"}},
        {"type": "m.room.name", "state_key": "", "sender": BOB, "content": {"name": "Salon"}},
        {"type": "m.room.member", "state_key": ALICE, "sender": BOB, "content": {"membership": "invite"}},
    ]
    room = state_from_stripped(stripped)
    attrs = attributes_from_state(room)
    assert attrs.join_rule == pb.JOIN_RULE_KNOCK
    assert attrs.history_visibility == pb.HISTORY_VISIBILITY_SHARED
    assert attrs.encrypted and attrs.access_rule == "restricted"
    assert set(room.contents) == {
        "m.room.create",
        "m.room.join_rules",
        "m.room.encryption",
        "im.vector.room.access_rules",
    }
    assert attrs.power_level(BOB) == 100 and attrs.power_level(ALICE) == 0  # creator, no power levels shared


def test_invite_stripped_state_of_a_v12_room_makes_its_creator_outrank() -> None:
    """The create event's room version decides whether the creator outranks everyone."""
    stripped = [{"type": "m.room.create", "state_key": "", "sender": BOB, "content": {"room_version": "12"}}]
    assert attributes_from_state(state_from_stripped(stripped)).power_level(BOB) == CREATOR_POWER_LEVEL


@pytest.mark.parametrize(
    "stripped",
    [None, "state", 3, [None, "x", {"type": 3}, {"type": "m.room.join_rules", "state_key": "", "content": "public"}]],
)
def test_malformed_stripped_state_is_an_invite_only_room(stripped: object) -> None:
    """No usable stripped state: the spec's defaults (what an invitation alone says), never an exception."""
    attrs = attributes_from_state(state_from_stripped(stripped))
    assert attrs.join_rule == pb.JOIN_RULE_INVITE
    assert attrs.history_visibility == pb.HISTORY_VISIBILITY_SHARED
