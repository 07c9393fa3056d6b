"""The hooks of #10 against a stand-in for Synapse's module API and roomguard: which rpc each event or request becomes,
with which room, and what each failure mode does. (The end-to-end suite runs them in a real Synapse.)"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from synapse.module_api import NOT_SPAM
from synapse.module_api.errors import Codes
from twisted.internet import defer

from synapse_roomguard._proto.roomguard.v1 import policy_pb2 as pb
from synapse_roomguard.attributes import CreationDefaults
from synapse_roomguard.cache import RoomCache
from synapse_roomguard.client import RoomguardUnavailableError
from synapse_roomguard.config import parse_config
from synapse_roomguard.module import PENDING_ROOM_LOCALPART, RoomguardModule
from tests.fake_roomguard import allow, deny

SERVER = "agent.finances.tchap.gouv.fr"
ALICE = f"@alice:{SERVER}"
BOB = f"@bob:{SERVER}"
ROOM = f"!forum:{SERVER}"
REMOTE_ROOM = "!ailleurs:autre.example"
PENDING = f"!{PENDING_ROOM_LOCALPART}:{SERVER}"
MARKED = "DIFFUSION RESTREINTE"


class Event:
    """The parts of Synapse's `EventBase` the module reads."""

    _count = 0

    def __init__(
        self,
        event_type: str,
        content: dict[str, Any],
        *,
        sender: str = ALICE,
        state_key: str | None = None,
        room_id: str = ROOM,
        unsigned: dict[str, Any] | None = None,
    ) -> None:
        Event._count += 1
        self.type = event_type
        self.content = content
        self.sender = sender
        self.state_key = state_key
        self.room_id = room_id
        self.event_id = f"$event{Event._count}"
        self.unsigned = unsigned or {}

    def get_state_key(self) -> str | None:
        return self.state_key


class Store:
    def __init__(self) -> None:
        self.memberships: dict[tuple[str, str], tuple[str, str]] = {}
        self.events: dict[str, Event] = {}
        self.broken = False

    async def get_local_current_membership_for_user_in_room(self, user_id: str, room_id: str) -> tuple[Any, Any]:
        if self.broken:
            raise AttributeError("moved")
        return self.memberships.get((user_id, room_id), (None, None))

    async def get_event(self, event_id: str, allow_none: bool = False) -> Event | None:
        return self.events.get(event_id)


class Directory:
    def __init__(self) -> None:
        self.listed: set[str] = set()

    async def room_is_in_public_room_list(self, room_id: str) -> bool:
        return room_id in self.listed


class Api:
    """Synapse's `ModuleApi`, as far as the module uses it."""

    server_name = SERVER

    def __init__(self) -> None:
        self.rooms: dict[str, dict[tuple[str, str], Event]] = {}
        self.admins: set[str] = set()
        self._store = Store()
        self.public_room_list_manager = Directory()
        #: How many times whole state events were read through `get_room_state`.
        self.state_reads = 0

    def is_mine(self, user_id: str) -> bool:
        return user_id.endswith(f":{SERVER}")

    async def get_room_state(self, room_id: str, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Event]:
        self.state_reads += 1
        wanted = set(keys)
        return {key: event for key, event in self.rooms.get(room_id, {}).items() if key in wanted}

    async def state_ids(self, room_id: str) -> dict[tuple[str, str], str]:
        """What Synapse's state controller answers for the module's filter: ids of the tracked (type, "") events."""
        return {key: event.event_id for key, event in self.rooms.get(room_id, {}).items() if key[1] == ""}

    async def is_user_admin(self, user_id: str) -> bool:
        return user_id in self.admins

    def add_room(self, room_id: str, creator: str = ALICE, **contents: dict[str, Any]) -> None:
        state = {("m.room.create", ""): Event("m.room.create", {"room_version": "10"}, sender=creator, state_key="")}
        for name, content in contents.items():
            event_type = name.replace("__", ".")
            state[(event_type, "")] = Event(event_type, content, state_key="")
        self.rooms[room_id] = state

    def add_member(self, room_id: str, user_id: str, membership: str) -> None:
        key = ("m.room.member", user_id)
        self.rooms[room_id][key] = Event("m.room.member", {"membership": membership}, state_key=user_id)


class Roomguard:
    """The module's client, answering at once with `decide(request)` (or failing with `error`)."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.decide: Callable[[Any], pb.Decision] = lambda _request: allow()
        self.error: Exception | None = None
        self.uploaded: list[bytes] = []
        self.scan = pb.MediaScan(format="pdf", bytes_read=1, text_chars=1, complete=True)

    def _answer(self, response_type: type, request: Any) -> defer.Deferred:
        self.requests.append(request)
        if self.error is not None:
            return defer.fail(self.error)
        return defer.succeed(response_type(decision=self.decide(request)))

    def check_message_send(self, request: pb.CheckMessageSendRequest) -> defer.Deferred:
        return self._answer(pb.CheckMessageSendResponse, request)

    def check_room_publish(self, request: pb.CheckRoomPublishRequest) -> defer.Deferred:
        return self._answer(pb.CheckRoomPublishResponse, request)

    def check_room_join(self, request: pb.CheckRoomJoinRequest) -> defer.Deferred:
        return self._answer(pb.CheckRoomJoinResponse, request)

    def check_room_state_change(self, request: pb.CheckRoomStateChangeRequest) -> defer.Deferred:
        return self._answer(pb.CheckRoomStateChangeResponse, request)

    def check_media_upload(self, header: pb.MediaUploadHeader, chunks: Any) -> defer.Deferred:
        """Reads the source at once (the real client streams it from a thread); records the header, the file in
        `uploaded`, and answers with `scan`."""
        try:
            header.media.size = header.media.size or chunks.size()
            self.uploaded.append(b"".join(chunks))
        finally:
            chunks.close()
        self.requests.append(header)
        if self.error is not None:
            return defer.fail(self.error)
        return defer.succeed(pb.CheckMediaUploadResponse(decision=self.decide(header), scan=self.scan))

    def kinds(self) -> list[str]:
        return [type(r).__name__.removeprefix("Check").removesuffix("Request") for r in self.requests]


def make_module(api: Api, roomguard: Roomguard, **config: Any) -> RoomguardModule:
    module = RoomguardModule.__new__(RoomguardModule)  # the hooks without a homeserver or a reactor
    module._config = parse_config({"endpoint": "127.0.0.1:1", **config})
    module._api = api
    module._client = roomguard
    module._cache = RoomCache(size=100, directory_ttl_s=10, clock=time.monotonic)
    module._creation_defaults = CreationDefaults(creators_outrank_everyone=False)
    module._guest_access_enabled = False
    module._warned_visibility_fallback = False
    module._warned_invite_state = False
    module._state_ids_reader = None  # the module API only, unless a test gives the module Synapse's state ids
    return module


@pytest.fixture
def api() -> Api:
    api = Api()
    api.add_room(
        ROOM,
        m__room__join_rules={"join_rule": "public"},
        m__room__history_visibility={"history_visibility": "shared"},
        m__room__power_levels={"users": {ALICE: 100}},
    )
    return api


@pytest.fixture
def roomguard() -> Roomguard:
    return Roomguard()


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def codes(result: Any) -> list[str]:
    code, fields = result
    assert code == Codes.FORBIDDEN
    return fields["fr.roomguard.reason_codes"]


# === room state ===


def message(text: str = "Bonjour") -> Event:
    return Event("m.room.message", {"msgtype": "m.text", "body": text})


def test_unchanged_room_state_is_not_read_again(api: Api, roomguard: Roomguard) -> None:
    """With Synapse's state ids at hand, a message into a room whose tracked state did not change costs no event read;
    a new state event (new id) is read and seen by the next message."""
    module = make_module(api, roomguard)
    module._state_ids_reader = api.state_ids
    for _ in range(3):
        run(module.check_event_for_spam(message()))
    assert api.state_reads == 1
    api.rooms[ROOM][("m.room.join_rules", "")] = Event("m.room.join_rules", {"join_rule": "invite"}, state_key="")
    run(module.check_event_for_spam(message()))
    assert api.state_reads == 2
    assert [r.room.join_rule for r in roomguard.requests] == [pb.JOIN_RULE_PUBLIC] * 3 + [pb.JOIN_RULE_INVITE]


def test_state_ids_that_fail_fall_back_to_the_module_api_for_good(
    api: Api, roomguard: Roomguard, caplog: pytest.LogCaptureFixture
) -> None:
    """A Synapse whose state ids cannot be read (an internal moved): the same decisions through `get_room_state`,
    one warning, and the ids are not tried again."""
    calls = []

    async def broken(room_id: str) -> dict:
        calls.append(room_id)
        raise TypeError("get_current_state_ids() got an unexpected keyword argument")

    module = make_module(api, roomguard)
    module._state_ids_reader = broken
    with caplog.at_level(logging.WARNING, logger="synapse_roomguard.module"):
        for _ in range(2):
            assert run(module.check_event_for_spam(message())) is NOT_SPAM
    assert len(calls) == 1 and api.state_reads == 2
    assert [r.room.join_rule for r in roomguard.requests] == [pb.JOIN_RULE_PUBLIC] * 2
    assert sum("cannot read state event ids" in r.getMessage() for r in caplog.records) == 1


# === check_event_for_spam ===


def test_room_access_state_event_is_a_state_change(api: Api, roomguard: Roomguard) -> None:
    """`m.room.history_visibility` with an empty state key: `CheckRoomStateChange` with the room now and as the
    event leaves it (same room id, same listing), the sender's power level, the event's type and state key."""
    api.public_room_list_manager.listed.add(ROOM)
    event = Event("m.room.history_visibility", {"history_visibility": "world_readable"}, state_key="")
    assert run(make_module(api, roomguard).check_event_for_spam(event)) is NOT_SPAM
    [request] = roomguard.requests
    assert isinstance(request, pb.CheckRoomStateChangeRequest)
    assert (request.request_id, request.event_type, request.state_key) == (event.event_id, event.type, "")
    assert (request.sender.user_id, request.sender.power_level) == (ALICE, 100)
    assert request.room.history_visibility == pb.HISTORY_VISIBILITY_SHARED
    assert request.proposed.history_visibility == pb.HISTORY_VISIBILITY_WORLD_READABLE
    assert request.room.room_id == request.proposed.room_id == ROOM
    assert request.room.join_rule == request.proposed.join_rule == pb.JOIN_RULE_PUBLIC
    assert request.room.published and request.proposed.published


@pytest.mark.parametrize(
    ("event_type", "content", "field", "now", "after"),
    [
        ("m.room.join_rules", {"join_rule": "invite"}, "join_rule", pb.JOIN_RULE_PUBLIC, pb.JOIN_RULE_INVITE),
        ("m.room.encryption", {"algorithm": "m.megolm.v1.aes-sha2"}, "encrypted", False, True),
        ("im.vector.room.access_rules", {"rule": "unrestricted"}, "access_rule", "", "unrestricted"),
        ("m.room.guest_access", {"guest_access": "can_join"}, "guest_access", False, False),  # no guests here
    ],
)
def test_each_room_access_type_is_a_state_change(
    api: Api, roomguard: Roomguard, event_type: str, content: dict, field: str, now: object, after: object
) -> None:
    """The five types all go to `CheckRoomStateChange`, with the attribute they carry changed in `proposed`."""
    run(make_module(api, roomguard).check_event_for_spam(Event(event_type, content, state_key="")))
    [request] = roomguard.requests
    assert isinstance(request, pb.CheckRoomStateChangeRequest)
    assert (getattr(request.room, field), getattr(request.proposed, field)) == (now, after)


def test_refused_state_change_is_a_403_and_an_outage_refuses_it(api: Api, roomguard: Roomguard) -> None:
    """A deny is 403 with the reasons; no decision fails closed by default (`failure_mode.state_change`), open when
    configured so."""
    event = Event("m.room.join_rules", {"join_rule": "public"}, state_key="")
    roomguard.decide = lambda _r: deny("ENCRYPTED_ROOM_CANNOT_BE_PUBLIC")
    assert codes(run(make_module(api, roomguard).check_event_for_spam(event))) == ["ENCRYPTED_ROOM_CANNOT_BE_PUBLIC"]
    roomguard.error = RoomguardUnavailableError("UNAVAILABLE")
    assert codes(run(make_module(api, roomguard).check_event_for_spam(event))) == ["ROOMGUARD_UNAVAILABLE"]
    open_module = make_module(api, roomguard, failure_mode={"state_change": "open"})
    assert run(open_module.check_event_for_spam(event)) is NOT_SPAM


def test_room_access_type_with_a_state_key_is_not_a_state_change(api: Api, roomguard: Roomguard) -> None:
    """`m.room.join_rules` with a non-empty state key is not the room's join rule: its text is a message."""
    run(make_module(api, roomguard).check_event_for_spam(Event("m.room.join_rules", {"note": MARKED}, state_key="x")))
    [request] = roomguard.requests
    assert isinstance(request, pb.CheckMessageSendRequest)
    assert (request.message.event_type, request.message.body) == ("m.room.join_rules", MARKED)


@pytest.mark.parametrize(
    ("event_type", "content", "state_key", "body"),
    [
        ("m.poll.start", {"m.poll": {"question": {"m.text": [{"body": MARKED}]}, "answers": []}}, None, MARKED),
        ("org.matrix.msc3381.poll.start", {"org.matrix.msc3381.poll.start": {"question": {"body": "Q"}}}, None, "Q"),
        ("fr.gouv.note", {"texte": MARKED}, None, MARKED),
        ("m.room.name", {"name": MARKED}, "", MARKED),
        ("m.room.topic", {"topic": MARKED}, "", MARKED),
        ("m.reaction", {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$e:s", "key": "👍"}}, None, "👍"),
    ],
)
def test_events_with_text_are_message_sends(
    api: Api, roomguard: Roomguard, event_type: str, content: dict, state_key: str | None, body: str
) -> None:
    """Polls, custom types, room names and topics, reactions: `CheckMessageSend` with the real type and the text."""
    event = Event(event_type, content, state_key=state_key)
    run(make_module(api, roomguard).check_event_for_spam(event))
    [request] = roomguard.requests
    assert isinstance(request, pb.CheckMessageSendRequest)
    assert (request.message.event_type, request.message.body) == (event_type, body)
    assert request.room.join_rule == pb.JOIN_RULE_PUBLIC and request.request_id == event.event_id


@pytest.mark.parametrize(
    "event",
    [
        Event("m.room.member", {"membership": "join", "displayname": MARKED}, state_key=ALICE),
        Event("m.room.message", {"msgtype": "m.text", "body": MARKED}, sender="@eve:autre.example"),
        Event("m.room.avatar", {"url": "mxc://s/a"}, state_key=""),
        Event("m.room.power_levels", {"users": {ALICE: 100}}, state_key=""),
    ],
    ids=["membership", "remote sender", "avatar", "power levels"],
)
def test_events_not_asked_about(api: Api, roomguard: Roomguard, event: Event) -> None:
    """Memberships, events of other servers and events without text: no call, let through."""
    assert run(make_module(api, roomguard).check_event_for_spam(event)) is NOT_SPAM
    assert roomguard.requests == []


def test_text_event_without_decision_fails_open(api: Api, roomguard: Roomguard) -> None:
    """A poll, like a message, follows `failure_mode.message_send` (open by default)."""
    roomguard.error = RoomguardUnavailableError("UNAVAILABLE")
    event = Event("m.poll.start", {"m.poll": {"question": {"m.text": [{"body": MARKED}]}}})
    assert run(make_module(api, roomguard).check_event_for_spam(event)) is NOT_SPAM
    closed = make_module(api, roomguard, failure_mode={"message_send": "closed"})
    assert codes(run(closed.check_event_for_spam(event))) == ["ROOMGUARD_UNAVAILABLE"]


# === user_may_join_room ===


def test_join_of_a_local_room_sends_the_room_and_the_invitation(api: Api, roomguard: Roomguard) -> None:
    """A join of a room this homeserver is in: `CheckRoomJoin` with its attributes, listing and `invited`."""
    api.public_room_list_manager.listed.add(ROOM)
    assert run(make_module(api, roomguard).user_may_join_room(BOB, ROOM, False)) is NOT_SPAM
    [request] = roomguard.requests
    assert isinstance(request, pb.CheckRoomJoinRequest)
    assert (request.user.user_id, request.user.power_level, request.invited) == (BOB, 0, False)
    assert request.room.room_id == ROOM and request.room.join_rule == pb.JOIN_RULE_PUBLIC and request.room.published
    run(make_module(api, roomguard).user_may_join_room(BOB, ROOM, True))
    assert roomguard.requests[-1].invited


def test_refused_join_is_a_403_and_an_outage_lets_it_through(api: Api, roomguard: Roomguard) -> None:
    """A deny is 403 with roomguard's reasons; no decision follows `failure_mode.room_join` (open by default)."""
    roomguard.decide = lambda _r: deny("JOIN_RATE_EXCEEDED")
    assert codes(run(make_module(api, roomguard).user_may_join_room(BOB, ROOM, False))) == ["JOIN_RATE_EXCEEDED"]
    roomguard.error = RoomguardUnavailableError("UNAVAILABLE")
    assert run(make_module(api, roomguard).user_may_join_room(BOB, ROOM, False)) is NOT_SPAM
    closed = make_module(api, roomguard, failure_mode={"room_join": "closed"})
    assert codes(run(closed.user_may_join_room(BOB, ROOM, False))) == ["ROOMGUARD_UNAVAILABLE"]


def test_member_already_joined_is_not_asked(api: Api, roomguard: Roomguard) -> None:
    """Synapse calls the join hook for a profile update of every room the user is in: not an entry, not asked (so
    roomguard does not count it as a join). A user who left is asked again."""
    api.add_member(ROOM, BOB, "join")
    assert run(make_module(api, roomguard).user_may_join_room(BOB, ROOM, False)) is NOT_SPAM
    assert roomguard.requests == []
    api.add_member(ROOM, BOB, "leave")
    run(make_module(api, roomguard).user_may_join_room(BOB, ROOM, False))
    assert roomguard.kinds() == ["RoomJoin"]


def test_uninvited_join_of_a_remote_room_is_a_public_room(api: Api, roomguard: Roomguard) -> None:
    """A room this homeserver is not in, no invitation: public join rule, shared history (so the join is counted)."""
    run(make_module(api, roomguard).user_may_join_room(BOB, REMOTE_ROOM, False))
    [request] = roomguard.requests
    assert request.room.room_id == REMOTE_ROOM
    assert (request.room.join_rule, request.room.history_visibility) == (
        pb.JOIN_RULE_PUBLIC,
        pb.HISTORY_VISIBILITY_SHARED,
    )
    assert not request.invited and not request.room.published


def test_invited_join_of_a_remote_room_uses_the_invite_stripped_state(api: Api, roomguard: Roomguard) -> None:
    """Invited to a room this homeserver is not in: the room as the invitation's stripped state describes it."""
    invite = Event(
        "m.room.member",
        {"membership": "invite"},
        room_id=REMOTE_ROOM,
        state_key=BOB,
        sender="@carol:autre.example",
        unsigned={
            "invite_room_state": [
                {"type": "m.room.create", "state_key": "", "sender": "@carol:autre.example", "content": {}},
                {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}},
                {"type": "im.vector.room.access_rules", "state_key": "", "content": {"rule": "restricted"}},
                {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}},
            ]
        },
    )
    api._store.memberships[(BOB, REMOTE_ROOM)] = ("invite", invite.event_id)
    api._store.events[invite.event_id] = invite
    run(make_module(api, roomguard).user_may_join_room(BOB, REMOTE_ROOM, True))
    [request] = roomguard.requests
    assert request.invited
    assert (request.room.join_rule, request.room.access_rule, request.room.encrypted) == (
        pb.JOIN_RULE_KNOCK,
        "restricted",
        True,
    )


def test_unreadable_invite_is_an_invite_only_room_and_warns_once(
    api: Api, roomguard: Roomguard, caplog: pytest.LogCaptureFixture
) -> None:
    """A Synapse whose store moved: the invited remote room is decided as invite-only, with one warning."""
    api._store.broken = True
    module = make_module(api, roomguard)
    with caplog.at_level(logging.WARNING, logger="synapse_roomguard"):
        run(module.user_may_join_room(BOB, REMOTE_ROOM, True))
        run(module.user_may_join_room(BOB, REMOTE_ROOM, True))
    assert [r.room.join_rule for r in roomguard.requests] == [pb.JOIN_RULE_INVITE] * 2
    assert len([r for r in caplog.records if "stripped state" in r.getMessage()]) == 1


# === user_may_create_room ===


def test_private_room_creation_is_a_state_change_from_no_state(api: Api, roomguard: Roomguard) -> None:
    """Every createRoom: `CheckRoomStateChange`, `m.room.create`, from a room with no state to the prediction; no
    publication check without `visibility: public`; no text check without text."""
    config = {"preset": "private_chat", "initial_state": [{"type": "m.room.encryption", "content": {"algorithm": "x"}}]}
    assert run(make_module(api, roomguard).user_may_create_room(ALICE, config)) is NOT_SPAM
    [request] = roomguard.requests
    assert isinstance(request, pb.CheckRoomStateChangeRequest)
    assert (request.event_type, request.state_key) == ("m.room.create", "")
    assert request.room == pb.Room(
        room_id=PENDING,
        join_rule=pb.JOIN_RULE_INVITE,
        history_visibility=pb.HISTORY_VISIBILITY_SHARED,
    )
    assert request.proposed.room_id == PENDING
    assert request.proposed.join_rule == pb.JOIN_RULE_INVITE and request.proposed.encrypted
    assert not request.proposed.published
    assert request.sender.user_id == ALICE and request.sender.power_level == 100


def test_world_readable_creation_is_refused(api: Api, roomguard: Roomguard) -> None:
    """A refused creation state change is a 403 with its reasons."""
    roomguard.decide = lambda r: deny("STATE_WORLD_READABLE")
    world_readable = {"type": "m.room.history_visibility", "content": {"history_visibility": "world_readable"}}
    config = {"initial_state": [world_readable]}
    assert codes(run(make_module(api, roomguard).user_may_create_room(ALICE, config))) == ["STATE_WORLD_READABLE"]
    assert roomguard.requests[0].proposed.history_visibility == pb.HISTORY_VISIBILITY_WORLD_READABLE


def test_private_creation_without_decision_follows_private_room_create(api: Api, roomguard: Roomguard) -> None:
    """roomguard down: a direct chat is still created (`private_room_create` open by default), unless configured
    closed."""
    roomguard.error = RoomguardUnavailableError("UNAVAILABLE")
    config = {"preset": "trusted_private_chat", "is_direct": True, "invite": [BOB]}
    assert run(make_module(api, roomguard).user_may_create_room(ALICE, config)) is NOT_SPAM
    closed = make_module(api, roomguard, failure_mode={"private_room_create": "closed"})
    assert codes(run(closed.user_may_create_room(ALICE, config))) == ["ROOMGUARD_UNAVAILABLE"]


def test_public_creation_is_a_state_change_and_a_publication_with_both_reasons(api: Api, roomguard: Roomguard) -> None:
    """`visibility: public`: the state change (to a listed room) and the publication; both refusing gives one 403
    with the reasons of both."""
    roomguard.decide = lambda r: deny(
        "ENCRYPTED_ROOM_CANNOT_BE_PUBLIC"
        if isinstance(r, pb.CheckRoomStateChangeRequest)
        else "ENCRYPTED_ROOM_NOT_PUBLISHABLE"
    )
    config = {"visibility": "public", "initial_state": [{"type": "m.room.encryption", "content": {"algorithm": "x"}}]}
    result = run(make_module(api, roomguard).user_may_create_room(ALICE, config))
    assert codes(result) == ["ENCRYPTED_ROOM_CANNOT_BE_PUBLIC", "ENCRYPTED_ROOM_NOT_PUBLISHABLE"]
    assert len(result[1]["fr.roomguard.decision_ids"]) == 2
    state_change, publish = roomguard.requests
    assert state_change.proposed.published and state_change.proposed.join_rule == pb.JOIN_RULE_PUBLIC
    assert publish.visibility == pb.DIRECTORY_VISIBILITY_PUBLIC and not publish.room.published


def test_public_creation_is_refused_if_either_check_refuses(api: Api, roomguard: Roomguard) -> None:
    """One refusal is enough, whichever check it is."""
    for refusing in (pb.CheckRoomStateChangeRequest, pb.CheckRoomPublishRequest):
        roomguard.decide = lambda r, refusing=refusing: deny("NO") if isinstance(r, refusing) else allow()
        assert codes(run(make_module(api, roomguard).user_may_create_room(ALICE, {"visibility": "public"}))) == ["NO"]


def test_public_creation_without_decision_fails_closed_once(api: Api, roomguard: Roomguard) -> None:
    """roomguard down: a public createRoom is refused (`room_create` closed), one ROOMGUARD_UNAVAILABLE reason."""
    roomguard.error = RoomguardUnavailableError("UNAVAILABLE")
    result = run(make_module(api, roomguard).user_may_create_room(ALICE, {"visibility": "public", "name": "Forum"}))
    assert codes(result) == ["ROOMGUARD_UNAVAILABLE"]
    assert roomguard.kinds() == ["RoomStateChange", "RoomPublish", "MessageSend"]


def test_creation_text_is_a_message_send_in_the_new_room(api: Api, roomguard: Roomguard) -> None:
    """The name and topic a createRoom writes are `CheckMessageSend` in the predicted room (listed if public); a
    marked name refuses the room."""
    roomguard.decide = lambda r: (
        deny("CLASSIFIED_IN_ROOM_STATE") if isinstance(r, pb.CheckMessageSendRequest) else allow()
    )
    config = {"preset": "public_chat", "name": MARKED, "topic": "Sujet"}
    assert codes(run(make_module(api, roomguard).user_may_create_room(ALICE, config))) == ["CLASSIFIED_IN_ROOM_STATE"]
    _, name, topic = roomguard.requests
    assert (name.message.event_type, name.message.body) == ("m.room.name", MARKED)
    assert (topic.message.event_type, topic.message.body) == ("m.room.topic", "Sujet")
    assert name.room.join_rule == pb.JOIN_RULE_PUBLIC and not name.room.published
    assert name.room.room_id == PENDING


def test_creation_text_without_decision_follows_message_send(api: Api, roomguard: Roomguard) -> None:
    """The text checks of a createRoom follow `failure_mode.message_send`: with only them failing, the private room
    is created."""

    def answer(request: Any) -> pb.Decision:
        if isinstance(request, pb.CheckMessageSendRequest):
            raise RoomguardUnavailableError("UNAVAILABLE")
        return allow()

    roomguard.decide = answer
    assert run(make_module(api, roomguard).user_may_create_room(ALICE, {"name": MARKED})) is NOT_SPAM
    closed = make_module(api, roomguard, failure_mode={"message_send": "closed"})
    assert codes(run(closed.user_may_create_room(ALICE, {"name": MARKED}))) == ["ROOMGUARD_UNAVAILABLE"]
