"""End-to-end, issue #10 ("Every door"): what a new user could do before, tried the same way, over the client-server API
against the real Synapse with the module and the real roomguard.

* text in every event: polls (stable and unstable), custom event types, room names and topics, reaction keys, and the
  message kinds that were already refused, each marked (refused) and plain (sent); plaintext polls and custom events
  in an encrypted room; the text of a `createRoom` (name, topic);
* every room-access state rule refused and its allowed neighbour accepted, server admins included (guest-access
  cases on the guest-friendly homeserver);
* `createRoom`, every one: a world-readable room refused, ordinary private rooms and direct chats created;
* joins: one account's 21st public join in a row refused, another account unaffected, an invited join accepted.

The failure modes of these hooks (roomguard hung, roomguard stopped) are in test_scenarios.py, which stops roomguard
last. Expected reason codes are those of the shipped `policies/rules.csv`.
"""

from __future__ import annotations

import time
import urllib.parse

import pytest

from .harness import Client, Response, Synapse
from .test_scenarios import ENCRYPTION, MARKED, PLAIN, assert_denied, forum

pytestmark = pytest.mark.e2e

#: The codes of a marked text in a public, unencrypted room.
IN_FORUM = ("CLASSIFIED_IN_UNENCRYPTED_ROOM", "CLASSIFIED_IN_PUBLIC_ROOM")

ENCRYPTED_CONTENT = {
    "algorithm": "m.megolm.v1.aes-sha2",
    "ciphertext": "AwgAEnAC",
    "device_id": "DEV",
    "sender_key": "k",
    "session_id": "s",
}


def state_event(event_type: str, content: dict) -> dict:
    return {"type": event_type, "state_key": "", "content": content}


def encrypted_private_room(client: Client, **extra: object) -> str:
    return client.create_room_id(preset="private_chat", initial_state=[ENCRYPTION], **extra)


def assert_sent(resp: Response) -> None:
    assert resp.status == 200, resp.body


def stable_poll(question: str, answer: str) -> dict:
    return {
        "m.poll": {
            "kind": "m.disclosed",
            "max_selections": 1,
            "question": {"m.text": [{"body": question}]},
            "answers": [
                {"m.id": "a1", "m.text": [{"body": answer}]},
                {"m.id": "a2", "m.text": [{"body": "Non"}]},
            ],
        },
        "m.text": [{"body": f"{question}\n1. {answer}\n2. Non"}],
    }


def unstable_poll(question: str, answer: str) -> dict:
    """What Element sends."""
    return {
        "org.matrix.msc3381.poll.start": {
            "kind": "org.matrix.msc3381.poll.disclosed",
            "max_selections": 1,
            "question": {"org.matrix.msc1767.text": question, "body": question, "msgtype": "m.text"},
            "answers": [
                {"id": "k1", "org.matrix.msc1767.text": answer},
                {"id": "k2", "org.matrix.msc1767.text": "Non"},
            ],
        },
        "org.matrix.msc1767.text": f"{question}\n1. {answer}\n2. Non",
    }


# === text in every event ===


@pytest.mark.parametrize(
    ("event_type", "make"),
    [("m.poll.start", stable_poll), ("org.matrix.msc3381.poll.start", unstable_poll)],
    ids=["stable", "unstable"],
)
def test_polls_are_classified(alice: Client, event_type: str, make) -> None:
    """A poll whose question or one answer is marked is refused in a forum; an ordinary poll is sent."""
    room = forum(alice)
    assert_denied(alice.send(room, make(MARKED, "Oui"), event_type=event_type), *IN_FORUM)
    assert_denied(alice.send(room, make("Qui vient ?", MARKED), event_type=event_type), *IN_FORUM)
    assert_sent(alice.send(room, make("Qui vient ?", "Oui"), event_type=event_type))


def test_custom_event_types_are_classified(alice: Client) -> None:
    """Any event type with text: a marked `body` (or any string) is refused; identifiers and URIs are not text."""
    room = forum(alice)
    assert_denied(alice.send(room, {"body": MARKED}, event_type="fr.gouv.note"), *IN_FORUM)
    assert_denied(
        alice.send(room, {"sections": [{"titre": "Annexe", "texte": MARKED}]}, event_type="org.example.doc"),
        *IN_FORUM,
    )
    assert_sent(alice.send(room, {"body": PLAIN, "lien": "mxc://agent.finances.tchap.gouv.fr/x"}, "fr.gouv.note"))


def test_room_name_and_topic_are_classified_whatever_the_room(alice: Client) -> None:
    """Names and topics are never encrypted: a marked one is refused even in an encrypted private room
    (CLASSIFIED_IN_ROOM_STATE alone there), with the public-room reasons too in a forum; ordinary ones are set."""
    private = encrypted_private_room(alice)
    for event_type, key in (("m.room.name", "name"), ("m.room.topic", "topic")):
        assert_denied(alice.set_state(private, event_type, {key: MARKED}), "CLASSIFIED_IN_ROOM_STATE")
        assert_sent(alice.set_state(private, event_type, {key: "Réunion de service"}))
    room = forum(alice)
    assert_denied(alice.set_state(room, "m.room.topic", {"topic": MARKED}), "CLASSIFIED_IN_ROOM_STATE", *IN_FORUM)
    html_block = {"mimetype": "text/html", "body": f"<b>{MARKED}</b>"}
    html_topic = {"topic": "Ordre du jour", "m.topic": {"m.text": [html_block]}}
    assert_denied(alice.set_state(room, "m.room.topic", html_topic), "CLASSIFIED_IN_ROOM_STATE", *IN_FORUM)


def test_reaction_key_is_classified(alice: Client) -> None:
    """A reaction's key is text people see: a marked one is refused in a forum, an emoji is sent."""
    room = forum(alice)
    target = alice.send_text(room, PLAIN).body["event_id"]

    def react(key: str) -> Response:
        relation = {"m.relates_to": {"rel_type": "m.annotation", "event_id": target, "key": key}}
        return alice.send(room, relation, event_type="m.reaction")

    assert_denied(react(MARKED), *IN_FORUM)
    assert_sent(react("👍"))


@pytest.mark.parametrize(
    "content",
    [
        {"msgtype": "m.notice", "body": MARKED},
        {"msgtype": "m.emote", "body": MARKED},
        {"msgtype": "m.image", "body": MARKED, "filename": "photo.jpg", "url": "mxc://s/i", "info": {"size": 3}},
    ],
    ids=["notice", "emote", "image caption"],
)
def test_message_kinds_refused_before_still_are(alice: Client, content: dict) -> None:
    """The kinds the issue found refused already (notices, emotes, image captions) still are."""
    assert_denied(alice.send(forum(alice), content), *IN_FORUM)


def test_thread_reply_is_refused_still(alice: Client) -> None:
    """A marked thread reply, as before."""
    room = forum(alice)
    root = alice.send_text(room, PLAIN).body["event_id"]
    reply = {"msgtype": "m.text", "body": MARKED, "m.relates_to": {"rel_type": "m.thread", "event_id": root}}
    assert_denied(alice.send(room, reply), *IN_FORUM)


def test_plaintext_poll_and_custom_event_in_encrypted_room_are_refused(alice: Client) -> None:
    """An encrypted room carries encrypted events: a plaintext poll or custom event is refused like a plaintext
    message; a reaction, a name and an encrypted event are not."""
    room = encrypted_private_room(alice)
    assert_denied(alice.send(room, stable_poll("Qui vient ?", "Oui"), "m.poll.start"), "PLAINTEXT_IN_ENCRYPTED_ROOM")
    assert_denied(alice.send(room, {"body": PLAIN}, event_type="fr.gouv.note"), "PLAINTEXT_IN_ENCRYPTED_ROOM")
    target = alice.send(room, ENCRYPTED_CONTENT, event_type="m.room.encrypted")
    assert_sent(target)
    reaction = {"m.relates_to": {"rel_type": "m.annotation", "event_id": target.body["event_id"], "key": "👍"}}
    assert_sent(alice.send(room, reaction, event_type="m.reaction"))
    assert_sent(alice.set_state(room, "m.room.name", {"name": "Équipe"}))


def test_events_without_text_are_not_refused(alice: Client) -> None:
    """Events that carry only identifiers and protocol values (an avatar, pinned events) go through, in an encrypted
    room too."""
    room = encrypted_private_room(alice)
    pinned = alice.send(room, ENCRYPTED_CONTENT, event_type="m.room.encrypted").body["event_id"]
    assert_sent(alice.set_state(room, "m.room.pinned_events", {"pinned": [pinned]}))
    assert_sent(alice.set_state(room, "m.room.avatar", {"url": "mxc://agent.finances.tchap.gouv.fr/avatar"}))


def test_widget_and_call_state_in_encrypted_room_are_sent(alice: Client) -> None:
    """A widget and a MatrixRTC call membership (state, never encrypted) in an encrypted room: sent."""
    room = encrypted_private_room(alice)
    widget = {"type": "jitsi", "url": "https://meet.example/x", "name": "Réunion", "data": {"domain": "meet.example"}}
    assert_sent(alice.set_state(room, "im.vector.modular.widgets", widget, state_key="w1"))
    call = {"application": "m.call", "call_id": "", "scope": "m.room", "device_id": "D", "expires": 60000}
    assert_sent(alice.set_state(room, "org.matrix.msc3401.call.member", call, state_key=f"_{alice.user_id}_D"))


def test_redaction_with_a_reason_in_encrypted_room_is_sent(alice: Client) -> None:
    """Removing a message with a reason, in an encrypted room (Element asks for an optional reason)."""
    room = encrypted_private_room(alice)
    target = alice.send(room, ENCRYPTED_CONTENT, event_type="m.room.encrypted").body["event_id"]
    path = f"/rooms/{urllib.parse.quote(room)}/redact/{urllib.parse.quote(target)}/{time.time_ns()}"
    assert_sent(alice.call("PUT", path, {"reason": "doublon"}))


def test_live_location_sharing_in_encrypted_room_is_sent(alice: Client) -> None:
    """Element's live location sharing starts with an `m.beacon_info` state event, in the clear by nature."""
    room = encrypted_private_room(alice)
    beacon = {"description": "Position en direct", "live": True, "timeout": 60000}
    assert_sent(alice.set_state(room, "m.beacon_info", beacon, state_key=alice.user_id))


def test_oversized_fields_are_still_classified(alice: Client) -> None:
    """A `msgtype` over roomguard's 255 bytes, or a body over 64 KiB, used to make the request invalid to roomguard:
    no decision, so a marked message was sent (fail-open). The module cuts them to roomguard's limits: the marking is
    refused. An oversized plain body is allowed by roomguard and refused by Synapse itself (413, after the module)."""
    room = alice.create_room_id(preset="private_chat")
    assert_denied(alice.send(room, {"msgtype": "m" * 300, "body": MARKED}), "CLASSIFIED_IN_UNENCRYPTED_ROOM")
    long_marked = {"msgtype": "m.text", "body": MARKED + " " + "x" * 70_000}
    assert_denied(alice.send(room, long_marked), "CLASSIFIED_IN_UNENCRYPTED_ROOM")
    too_large = alice.send(room, {"msgtype": "m.text", "body": "x" * 70_000})
    assert too_large.status == 413, too_large.body


def test_room_creation_text_is_classified(alice: Client) -> None:
    """createRoom writes its name and topic without `check_event_for_spam`: the module asks for them at creation. A
    marked name refuses the room; an ordinary one does not."""
    assert_denied(encrypted_private_room_response(alice, name=MARKED), "CLASSIFIED_IN_ROOM_STATE")
    assert_denied(encrypted_private_room_response(alice, topic=MARKED), "CLASSIFIED_IN_ROOM_STATE")
    assert_sent(encrypted_private_room_response(alice, name="Équipe", topic="Sujets du jour"))


def encrypted_private_room_response(client: Client, **extra: object) -> Response:
    return client.create_room(preset="private_chat", initial_state=[ENCRYPTION], **extra)


def test_homeserver_log_never_contains_extracted_text(synapse: Synapse, alice: Client) -> None:
    """Text read from polls, custom events and names never reaches the homeserver log, allowed or refused."""
    room = forum(alice)
    secrets = ["Sondage-9a1f", "Reponse-3b7c", "Note-5d2e diffusion restreinte", "Nom-8e4a", "Creation-1c6b"]
    alice.send(room, stable_poll(secrets[0], secrets[1]), event_type="m.poll.start")
    alice.send(room, {"body": secrets[2]}, event_type="fr.gouv.note")
    alice.set_state(room, "m.room.name", {"name": secrets[3]})
    alice.create_room(preset="private_chat", name=secrets[4])
    time.sleep(1.5)  # let the log handler flush
    log = synapse.log_path.read_text(encoding="utf8")
    assert "roomguard denied send" in log and "roomguard allowed create:text" in log
    for secret in secrets:
        assert secret.split()[0] not in log


# === room-access state changes ===


def test_world_readable_history_is_refused(alice: Client) -> None:
    """History made world-readable: refused (STATE_WORLD_READABLE), in a private room and in a forum; another
    visibility is set."""
    for room in (alice.create_room_id(preset="private_chat"), forum(alice)):
        resp = alice.set_state(room, "m.room.history_visibility", {"history_visibility": "world_readable"})
        assert_denied(resp, "STATE_WORLD_READABLE")
        assert_sent(alice.set_state(room, "m.room.history_visibility", {"history_visibility": "joined"}))


def test_server_admin_state_changes_are_decided_too(admin: Client) -> None:
    """A server admin bypasses `user_may_send_state_event`, not `check_event_for_spam`: their state change is
    decided like anyone's."""
    room = admin.create_room_id(preset="private_chat")
    resp = admin.set_state(room, "m.room.history_visibility", {"history_visibility": "world_readable"})
    assert_denied(resp, "STATE_WORLD_READABLE")


def test_encrypted_room_cannot_be_made_public(alice: Client) -> None:
    """An encrypted room made public, or a public room encrypted: refused (ENCRYPTED_ROOM_CANNOT_BE_PUBLIC); an
    encrypted room made knock-only, or a private room encrypted, is fine."""
    encrypted = encrypted_private_room(alice)
    assert_denied(
        alice.set_state(encrypted, "m.room.join_rules", {"join_rule": "public"}), "ENCRYPTED_ROOM_CANNOT_BE_PUBLIC"
    )
    assert_sent(alice.set_state(encrypted, "m.room.join_rules", {"join_rule": "knock"}))
    public = forum(alice)
    assert_denied(
        alice.set_state(public, "m.room.encryption", {"algorithm": "m.megolm.v1.aes-sha2"}),
        "ENCRYPTED_ROOM_CANNOT_BE_PUBLIC",
    )
    private = alice.create_room_id(preset="private_chat")
    assert_sent(alice.set_state(private, "m.room.encryption", {"algorithm": "m.megolm.v1.aes-sha2"}))


def test_external_user_cannot_open_a_room(alice: Client, ext: Client) -> None:
    """An external user may create a private room, not make it public (EXTERNAL_CANNOT_OPEN_ROOM); making it
    knock-only is fine, and an agent may make their own room public."""
    room = ext.create_room_id(preset="private_chat")
    assert_denied(ext.set_state(room, "m.room.join_rules", {"join_rule": "public"}), "EXTERNAL_CANNOT_OPEN_ROOM")
    assert_sent(ext.set_state(room, "m.room.join_rules", {"join_rule": "knock"}))
    own = alice.create_room_id(preset="private_chat")
    assert_sent(alice.set_state(own, "m.room.join_rules", {"join_rule": "public"}))


def test_access_rule_changes(alice: Client) -> None:
    """Tchap's access rules: restricted -> unrestricted is the only change allowed once a rule is set
    (ACCESS_RULE_CHANGE_FORBIDDEN otherwise); setting a first rule is fine."""

    def room_with(rule: str | None) -> str:
        state = [] if rule is None else [state_event("im.vector.room.access_rules", {"rule": rule})]
        return alice.create_room_id(preset="private_chat", initial_state=state)

    def set_rule(room: str, rule: str) -> Response:
        return alice.set_state(room, "im.vector.room.access_rules", {"rule": rule})

    assert_sent(set_rule(room_with("restricted"), "unrestricted"))
    assert_denied(set_rule(room_with("unrestricted"), "restricted"), "ACCESS_RULE_CHANGE_FORBIDDEN")
    assert_denied(set_rule(room_with("direct"), "restricted"), "ACCESS_RULE_CHANGE_FORBIDDEN")
    assert_sent(set_rule(room_with(None), "restricted"))


def test_published_room_must_stay_restricted(alice: Client) -> None:
    """A listed forum cannot be opened to externals (PUBLISHED_ROOM_MUST_STAY_RESTRICTED); the same change in an
    unlisted forum is allowed."""
    restricted = [state_event("im.vector.room.access_rules", {"rule": "restricted"})]
    listed = forum(alice, initial_state=restricted)
    assert_sent(alice.set_directory_visibility(listed, "public"))
    resp = alice.set_state(listed, "im.vector.room.access_rules", {"rule": "unrestricted"})
    assert_denied(resp, "PUBLISHED_ROOM_MUST_STAY_RESTRICTED")
    unlisted = forum(alice, initial_state=restricted)
    assert_sent(alice.set_state(unlisted, "im.vector.room.access_rules", {"rule": "unrestricted"}))


def test_guest_access_without_guests_opens_nothing(alice: Client) -> None:
    """On a homeserver that lets no guest in, `can_join` in a forum is no guest access: the change is set."""
    assert_sent(alice.set_state(forum(alice), "m.room.guest_access", {"guest_access": "can_join"}))


@pytest.fixture(scope="module")
def dora(guest_synapse: Synapse) -> Client:
    """An agent of the guest-friendly homeserver."""
    return guest_synapse.register("dora")


def test_guests_in_a_public_room_are_refused_where_guests_exist(dora: Client) -> None:
    """With guest access on the homeserver: letting guests into a public room, or making a guest-joinable room
    public, is refused (STATE_WORLD_READABLE); keeping guests out of a forum, or making a guest-joinable room
    knock-only, is fine."""
    public = forum(dora)
    assert_denied(dora.set_state(public, "m.room.guest_access", {"guest_access": "can_join"}), "STATE_WORLD_READABLE")
    assert_sent(dora.set_state(public, "m.room.guest_access", {"guest_access": "forbidden"}))
    guests_welcome = dora.create_room_id(preset="private_chat")  # the preset writes `can_join`
    assert_denied(dora.set_state(guests_welcome, "m.room.join_rules", {"join_rule": "public"}), "STATE_WORLD_READABLE")
    assert_sent(dora.set_state(guests_welcome, "m.room.join_rules", {"join_rule": "knock"}))


def test_guest_joinable_public_room_creation_is_refused_where_guests_exist(dora: Client) -> None:
    """The same at creation: a forum with `can_join` in `initial_state` is refused, even unlisted."""
    guests = state_event("m.room.guest_access", {"guest_access": "can_join"})
    assert_denied(dora.create_room(preset="public_chat", initial_state=[guests]), "STATE_WORLD_READABLE")


# === createRoom, every one ===


def test_world_readable_room_creation_is_refused(alice: Client) -> None:
    """A private createRoom with `world_readable` history in `initial_state`: refused, STATE_WORLD_READABLE."""
    world_readable = state_event("m.room.history_visibility", {"history_visibility": "world_readable"})
    resp = alice.create_room(preset="private_chat", initial_state=[world_readable])
    assert_denied(resp, "STATE_WORLD_READABLE")


def test_encrypted_public_room_creation_is_refused_even_unlisted(alice: Client) -> None:
    """An encrypted forum is refused at creation without `visibility: public` too."""
    resp = alice.create_room(preset="public_chat", initial_state=[ENCRYPTION])
    assert_denied(resp, "ENCRYPTED_ROOM_CANNOT_BE_PUBLIC")


def test_external_user_cannot_create_a_public_room(ext: Client) -> None:
    """An external user's unlisted forum opens a room: refused, EXTERNAL_CANNOT_OPEN_ROOM."""
    assert_denied(ext.create_room(preset="public_chat"), "EXTERNAL_CANNOT_OPEN_ROOM")


def test_ordinary_rooms_and_direct_chats_are_still_created(alice: Client, bob: Client) -> None:
    """Private rooms, encrypted private rooms, forums and direct chats: created as before; the invited user joins
    the direct chat."""
    assert_sent(alice.create_room(preset="private_chat", name="Équipe"))
    assert_sent(encrypted_private_room_response(alice))
    assert_sent(alice.create_room(preset="public_chat", name="Forum"))
    direct = alice.create_room(preset="trusted_private_chat", is_direct=True, invite=[bob.user_id])
    assert_sent(direct)
    assert_sent(bob.join(direct.body["room_id"]))


def test_room_upgrades_are_checked_as_creations(alice: Client, admin: Client) -> None:
    """Synapse checks a room upgrade as a `createRoom` of the new room, server admins included: ordinary rooms are
    upgraded; a world-readable room (which only an admin could create) cannot be."""

    def upgrade(client: Client, room: str) -> Response:
        return client.call("POST", f"/rooms/{urllib.parse.quote(room)}/upgrade", {"new_version": "11"})

    assert_sent(upgrade(alice, forum(alice)))
    assert_sent(upgrade(alice, encrypted_private_room(alice, name="Équipe")))
    world_readable = state_event("m.room.history_visibility", {"history_visibility": "world_readable"})
    legacy = admin.create_room_id(preset="private_chat", initial_state=[world_readable])
    assert_denied(upgrade(admin, legacy), "STATE_WORLD_READABLE")


# === joins ===


def test_twenty_first_public_join_in_a_row_is_refused(synapse: Synapse) -> None:
    """One account joins 25 public rooms in a row: the first 20 go through, the 21st is refused 403 M_FORBIDDEN
    JOIN_RATE_EXCEEDED; another account joins that room; an invited join of the first account still works."""
    owner, joiner, other = synapse.register("ruth"), synapse.register("joiner"), synapse.register("other")
    rooms = [forum(owner) for _ in range(25)]
    for room in rooms[:20]:
        assert_sent(joiner.join(room))
    refused = joiner.join(rooms[20])
    assert_denied(refused, "JOIN_RATE_EXCEEDED")
    assert refused.body["errcode"] == "M_FORBIDDEN"
    assert_denied(joiner.join(rooms[21]), "JOIN_RATE_EXCEEDED")
    assert_sent(other.join(rooms[20]))
    assert_sent(owner.invite(rooms[22], joiner.user_id))
    assert_sent(joiner.join(rooms[22]))
    members = owner.call("GET", f"/rooms/{urllib.parse.quote(rooms[20])}/joined_members").body["joined"]
    assert joiner.user_id not in members and other.user_id in members

    # Synapse re-sends a join into every room of a user whose display name changes. Those are no entries: the module
    # does not ask (roomguard would refuse them now, and the new name would stay out of those rooms).
    renamed = joiner.call("PUT", f"/profile/{urllib.parse.quote(joiner.user_id)}/displayname", {"displayname": "J"})
    assert_sent(renamed)
    deadline = time.monotonic() + 15
    pending = set(rooms[:20])
    while pending and time.monotonic() < deadline:
        for room in list(pending):
            path = f"/rooms/{urllib.parse.quote(room)}/state/m.room.member/{urllib.parse.quote(joiner.user_id)}"
            if joiner.call("GET", path).body.get("displayname") == "J":
                pending.discard(room)
        time.sleep(0.2)
    assert not pending, f"{len(pending)} rooms kept the old display name"


def test_external_joins(alice: Client, ext: Client) -> None:
    """Tchap's access rules at the door: an external user cannot join a restricted room (EXTERNAL_IN_RESTRICTED_ROOM)
    nor an unrestricted one uninvited (EXTERNAL_NEEDS_INVITE), but joins an unrestricted one when invited, and a
    forum without access rules."""

    def public_room(rule: str) -> str:
        return forum(alice, initial_state=[state_event("im.vector.room.access_rules", {"rule": rule})])

    assert_denied(ext.join(public_room("restricted")), "EXTERNAL_IN_RESTRICTED_ROOM")
    unrestricted = public_room("unrestricted")
    assert_denied(ext.join(unrestricted), "EXTERNAL_NEEDS_INVITE")
    assert_sent(alice.invite(unrestricted, ext.user_id))
    assert_sent(ext.join(unrestricted))
    assert_sent(ext.join(forum(alice)))
