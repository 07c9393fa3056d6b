"""End-to-end: a real Synapse with the module asks a real roomguard; every step is a client-server API call over HTTP.

Each test states the behaviour it pins in its docstring. Expected reason codes come from the default policy table
(DESIGN.md, `policies/`). The failure-mode tests stop roomguard and therefore run last (file order).
"""

from __future__ import annotations

import time

import pytest

from .conftest import TIMEOUT_MS
from .harness import Client, Response, Roomguard, Synapse

pytestmark = pytest.mark.e2e

REASON_CODES = "fr.roomguard.reason_codes"
REASONS = "fr.roomguard.reasons"
DECISION_ID = "fr.roomguard.decision_id"

MARKED = "Note de service - DIFFUSION RESTREINTE - ne pas transférer"
PLAIN = "Bonjour à toutes et à tous, la réunion est à 15 h."

#: "No request waits longer than the deadline plus one second."
MAX_WAIT_S = TIMEOUT_MS / 1000 + 1.0

ENCRYPTION = {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}


def forum(client: Client, **extra: object) -> str:
    """A proper forum: public join rule, shared history, no guests, not encrypted (preset public_chat)."""
    return client.create_room_id(preset="public_chat", name="Forum", **extra)


def encrypted_private_room(client: Client) -> str:
    return client.create_room_id(preset="private_chat", name="Équipe", initial_state=[ENCRYPTION])


def assert_denied(resp: Response, *codes: str) -> None:
    """403 M_FORBIDDEN whose body names exactly `codes`, shows the first reason's message, and has a decision id."""
    assert resp.status == 403, resp.body
    body = resp.body
    assert body["errcode"] == "M_FORBIDDEN", body
    assert sorted(body[REASON_CODES]) == sorted(codes), body
    assert body["error"] == body[REASONS][0]["message"], body
    assert body["error"] and "probable spam" not in body["error"], body
    assert [r["code"] for r in body[REASONS]] == body[REASON_CODES], body
    assert body[DECISION_ID], body


# === message send ===


def test_plain_message_in_public_forum_is_sent(alice: Client) -> None:
    """An agent's ordinary message in a public forum: 200."""
    room = forum(alice)
    resp = alice.send_text(room, PLAIN)
    assert resp.status == 200, resp.body
    assert resp.body["event_id"].startswith("$")


def test_restricted_marking_in_public_unencrypted_room_is_refused_with_reasons(alice: Client) -> None:
    """`Diffusion Restreinte` in a public unencrypted room: 403, both violated rules named, first message as `error`."""
    room = forum(alice)
    resp = alice.send_text(room, MARKED)
    assert_denied(resp, "CLASSIFIED_IN_UNENCRYPTED_ROOM", "CLASSIFIED_IN_PUBLIC_ROOM")


def test_marking_in_formatted_body_only_is_refused(alice: Client) -> None:
    """The HTML body is classified too: a marking split by tags, with a harmless plain body, is still refused."""
    room = forum(alice)
    resp = alice.send(
        room,
        {
            "msgtype": "m.text",
            "body": "Voir la pièce jointe",
            "format": "org.matrix.custom.html",
            "formatted_body": "<p>Diffusion <b>restreinte</b></p>",
        },
    )
    assert resp.status == 403, resp.body
    assert "CLASSIFIED_IN_PUBLIC_ROOM" in resp.body[REASON_CODES]


def test_edit_is_classified_on_its_new_content(alice: Client) -> None:
    """An edit's `m.new_content` is what gets classified: editing a harmless message into a marked one is refused."""
    room = forum(alice)
    original = alice.send_text(room, PLAIN)
    assert original.status == 200, original.body
    resp = alice.send(
        room,
        {
            "msgtype": "m.text",
            "body": "* (modifié)",
            "m.new_content": {"msgtype": "m.text", "body": MARKED},
            "m.relates_to": {"rel_type": "m.replace", "event_id": original.body["event_id"]},
        },
    )
    assert_denied(resp, "CLASSIFIED_IN_UNENCRYPTED_ROOM", "CLASSIFIED_IN_PUBLIC_ROOM")


def test_marked_file_name_is_refused(alice: Client) -> None:
    """Attachments are classified by file name: a file named as restricted cannot be posted in a public forum."""
    room = forum(alice)
    resp = alice.send(
        room,
        {
            "msgtype": "m.file",
            "body": "note.pdf",
            "filename": "DIFFUSION_RESTREINTE_note.pdf",
            "url": "mxc://agent.finances.tchap.gouv.fr/abc",
            "info": {"mimetype": "application/pdf", "size": 1234},
        },
    )
    assert resp.status == 403, resp.body
    assert "CLASSIFIED_IN_PUBLIC_ROOM" in resp.body[REASON_CODES]


def test_marked_sticker_is_refused(alice: Client) -> None:
    """Stickers are checked like messages: a sticker whose description carries a marking is refused in a forum."""
    room = forum(alice)
    resp = alice.send(
        room,
        {
            "body": "Diffusion Restreinte",
            "url": "mxc://agent.finances.tchap.gouv.fr/s",
            "info": {"mimetype": "image/png"},
        },
        event_type="m.sticker",
    )
    assert_denied(resp, "CLASSIFIED_IN_UNENCRYPTED_ROOM", "CLASSIFIED_IN_PUBLIC_ROOM")


def test_plaintext_message_into_encrypted_room_is_refused(alice: Client) -> None:
    """A plaintext `m.room.message` into an encrypted room: 403 PLAINTEXT_IN_ENCRYPTED_ROOM."""
    room = encrypted_private_room(alice)
    assert_denied(alice.send_text(room, PLAIN), "PLAINTEXT_IN_ENCRYPTED_ROOM")


def test_encrypted_event_into_encrypted_room_is_sent(alice: Client) -> None:
    """The control: an `m.room.encrypted` event into the same kind of room is accepted."""
    room = encrypted_private_room(alice)
    resp = alice.send(
        room,
        {
            "algorithm": "m.megolm.v1.aes-sha2",
            "ciphertext": "AwgAEnAC",
            "device_id": "DEV",
            "sender_key": "k",
            "session_id": "s",
        },
        event_type="m.room.encrypted",
    )
    assert resp.status == 200, resp.body


def test_external_user_posting_into_public_room_is_refused(alice: Client, ext: Client) -> None:
    """A user made `external` by a per-user policy line may join a public forum but not post in it: 403."""
    room = forum(alice)
    assert ext.join(room).status == 200
    assert_denied(ext.send_text(room, PLAIN), "EXTERNAL_IN_PUBLIC_ROOM")


def test_room_state_change_is_seen_by_the_next_message(alice: Client) -> None:
    """The cached room attributes follow state changes: once a room turns encrypted, plaintext is refused at once."""
    room = alice.create_room_id(preset="private_chat", name="Bientôt chiffré")
    assert alice.send_text(room, PLAIN).status == 200  # fills the cache: unencrypted
    assert alice.set_state(room, "m.room.encryption", {"algorithm": "m.megolm.v1.aes-sha2"}).status == 200
    assert_denied(alice.send_text(room, PLAIN), "PLAINTEXT_IN_ENCRYPTED_ROOM")


def test_join_rule_change_is_seen_by_the_next_message(alice: Client) -> None:
    """A forum closed to invitations stops being public: a marked message then only breaks the unencrypted rule."""
    room = forum(alice)
    assert_denied(alice.send_text(room, MARKED), "CLASSIFIED_IN_UNENCRYPTED_ROOM", "CLASSIFIED_IN_PUBLIC_ROOM")
    assert alice.set_state(room, "m.room.join_rules", {"join_rule": "invite"}).status == 200
    assert_denied(alice.send_text(room, MARKED), "CLASSIFIED_IN_UNENCRYPTED_ROOM")


# === directory ===


def test_publishing_encrypted_private_room_is_refused_with_all_reasons(admin: Client) -> None:
    """`PUT /directory/list/room` on an encrypted, invite-only, world-readable, externals-open room: every broken
    rule. (Its `can_join` guest access is no reason on this homeserver, which lets no guest in: see
    test_guest_access.py. Only a server admin, whose `createRoom` Synapse does not check, can still create a
    world-readable room; anyone else's is refused STATE_WORLD_READABLE: see test_every_door.py.)"""
    room = admin.create_room_id(
        preset="private_chat",
        initial_state=[
            ENCRYPTION,
            {"type": "m.room.guest_access", "state_key": "", "content": {"guest_access": "can_join"}},
            {"type": "m.room.history_visibility", "state_key": "", "content": {"history_visibility": "world_readable"}},
            {"type": "im.vector.room.access_rules", "state_key": "", "content": {"rule": "unrestricted"}},
        ],
    )
    resp = admin.set_directory_visibility(room, "public")
    assert_denied(
        resp,
        "ROOM_NOT_PUBLIC",
        "ENCRYPTED_ROOM_NOT_PUBLISHABLE",
        "ROOM_OPEN_TO_EXTERNALS",
        "ROOM_WORLD_READABLE",
    )
    assert admin.directory_visibility(room) == "private"


def test_forum_published_by_its_creator_then_unpublished(alice: Client) -> None:
    """A proper forum published by its creator: 200 and listed; unpublished: 200 and no longer listed."""
    room = forum(alice)
    resp = alice.set_directory_visibility(room, "public")
    assert resp.status == 200, resp.body
    assert alice.directory_visibility(room) == "public"

    resp = alice.set_directory_visibility(room, "private")
    assert resp.status == 200, resp.body
    assert alice.directory_visibility(room) == "private"


def test_unpublishing_is_told_apart_from_publishing(alice: Client) -> None:
    """Unpublishing a room that could never be published is allowed: the module sends visibility PRIVATE, not PUBLIC."""
    room = encrypted_private_room(alice)
    resp = alice.set_directory_visibility(room, "private")
    assert resp.status == 200, resp.body


def test_publishing_by_member_without_power_is_refused(alice: Client, bob: Client) -> None:
    """A member at power level 0 cannot list a proper forum: INSUFFICIENT_POWER_LEVEL alone."""
    room = forum(alice)
    assert bob.join(room).status == 200
    assert_denied(bob.set_directory_visibility(room, "public"), "INSUFFICIENT_POWER_LEVEL")


def test_server_admin_publishes_without_power_but_not_an_encrypted_room(alice: Client, admin: Client) -> None:
    """`server_admin` reaches roomguard: it lifts the power-level rule (200 with power 0) and nothing else (403)."""
    room = forum(alice)
    assert admin.set_directory_visibility(room, "public").status == 200
    assert alice.directory_visibility(room) == "public"
    encrypted = encrypted_private_room(alice)
    resp = admin.set_directory_visibility(encrypted, "public")
    assert resp.status == 403, resp.body
    assert "ENCRYPTED_ROOM_NOT_PUBLISHABLE" in resp.body[REASON_CODES]
    assert "INSUFFICIENT_POWER_LEVEL" not in resp.body[REASON_CODES]


def test_published_room_counts_as_public_for_messages(alice: Client) -> None:
    """A listed room stays public after its join rule turns to invite: a marked message still breaks the public rule."""
    room = forum(alice)
    assert alice.set_directory_visibility(room, "public").status == 200
    assert alice.set_state(room, "m.room.join_rules", {"join_rule": "invite"}).status == 200
    assert_denied(alice.send_text(room, MARKED), "CLASSIFIED_IN_UNENCRYPTED_ROOM", "CLASSIFIED_IN_PUBLIC_ROOM")


# === createRoom with visibility: public ===


def test_public_room_creation_by_external_user_is_refused(ext: Client) -> None:
    """`createRoom` with `visibility: public` by an external user: 403 with the reasons of every check (the
    publication, the room it opens, its name written into a public room), Synapse never lists it."""
    resp = ext.create_room(visibility="public", preset="public_chat", name="Forum externe")
    assert_denied(resp, "EXTERNAL_CANNOT_PUBLISH", "EXTERNAL_CANNOT_OPEN_ROOM", "EXTERNAL_IN_PUBLIC_ROOM")
    assert len(resp.body["fr.roomguard.decision_ids"]) == 3


def test_public_room_creation_with_encryption_in_initial_state_is_refused(alice: Client) -> None:
    """The new room's `initial_state` is what gets checked: an encrypted room cannot be created into the directory,
    nor be created public at all: the reasons of both decisions."""
    resp = alice.create_room(visibility="public", preset="public_chat", initial_state=[ENCRYPTION])
    assert_denied(resp, "ENCRYPTED_ROOM_NOT_PUBLISHABLE", "ENCRYPTED_ROOM_CANNOT_BE_PUBLIC")


def test_public_room_creation_with_lowered_creator_power_is_refused(alice: Client, synapse: Synapse) -> None:
    """`power_level_content_override` is taken into account (room version 10, where creators have no special power)."""
    resp = alice.create_room(
        visibility="public",
        preset="public_chat",
        room_version="10",
        power_level_content_override={"users": {alice.user_id: 10}},
    )
    assert_denied(resp, "INSUFFICIENT_POWER_LEVEL")


def test_public_room_creation_by_agent_is_listed(alice: Client) -> None:
    """An agent creating a proper forum straight into the directory: 200 and listed."""
    resp = alice.create_room(visibility="public", preset="public_chat", name="Forum des agents")
    assert resp.status == 200, resp.body
    assert alice.directory_visibility(resp.body["room_id"]) == "public"


# === logging ===


def test_homeserver_log_never_contains_message_content(synapse: Synapse, alice: Client) -> None:
    """Neither bodies nor formatted bodies nor file names reach the homeserver log, allowed or refused."""
    room = forum(alice)
    secret_body = "Corps-confidentiel-7f3a diffusion restreinte"
    secret_html = "<i>Html-confidentiel-9c2e</i>"
    secret_file = "Fichier-confidentiel-41bd.pdf"
    alice.send(
        room,
        {"msgtype": "m.text", "body": secret_body, "format": "org.matrix.custom.html", "formatted_body": secret_html},
    )
    alice.send(room, {"msgtype": "m.file", "body": "x", "filename": secret_file, "url": "mxc://a/b"})
    alice.send_text(room, "Corps-ordinaire-5e1d")
    time.sleep(1.5)  # let the log handler flush
    log = synapse.log_path.read_text(encoding="utf8")
    assert "roomguard denied send" in log  # the module does log its decisions...
    for secret in (
        "Corps-confidentiel-7f3a",
        "Html-confidentiel-9c2e",
        "Fichier-confidentiel-41bd",
        "Corps-ordinaire-5e1d",
    ):
        assert secret not in log  # ...but never what was written


def test_state_event_ids_are_read_from_this_synapse(synapse: Synapse, alice: Client) -> None:
    """The module reads a room's state event ids from Synapse's state controller (an internal: the module API returns
    whole events), so that a message into an unchanged room loads no state event; on this Synapse that works (no
    fallback warning in the log)."""
    room = forum(alice)
    for i in range(3):
        assert alice.send_text(room, f"Bonjour {i}").status == 200
    time.sleep(1.5)  # let the log handler flush
    log = synapse.log_path.read_text(encoding="utf8")
    assert "roomguard module ready" in log
    assert "cannot read state event ids" not in log


# === roomguard unavailable (these run last: they stop roomguard) ===


POLL = {
    "m.poll": {
        "kind": "m.disclosed",
        "question": {"m.text": [{"body": MARKED}]},
        "answers": [{"m.id": "a", "m.text": [{"body": "Oui"}]}],
    },
    "m.text": [{"body": MARKED}],
}


def test_hung_roomguard_costs_at_most_the_deadline(alice: Client, bob: Client, roomguard: Roomguard) -> None:
    """roomguard frozen (accepts connections, never answers): each hook gives up at the deadline, applies its mode;
    a public createRoom, checked twice at once, waits for one deadline, not two."""
    room = forum(alice)
    unpublished = forum(alice)
    to_join = forum(alice)
    private = alice.create_room_id(preset="private_chat")
    assert alice.send_text(room, PLAIN).status == 200  # warm the room cache and the channel
    roomguard.pause()
    try:
        send = alice.send_text(room, MARKED)
        poll = alice.send(room, POLL, event_type="m.poll.start")
        publish = alice.set_directory_visibility(unpublished, "public")
        create = alice.create_room(visibility="public", preset="public_chat")
        private_create = alice.create_room(preset="private_chat", name="Équipe")
        join = bob.join(to_join)
        state = alice.set_state(private, "m.room.history_visibility", {"history_visibility": "joined"})
    finally:
        roomguard.resume()
    assert send.status == 200, send.body  # message_send fails open
    assert poll.status == 200, poll.body  # a poll is a message: the same
    assert publish.status == 403 and publish.body[REASON_CODES] == ["ROOMGUARD_UNAVAILABLE"], publish.body
    assert create.status == 403 and create.body[REASON_CODES] == ["ROOMGUARD_UNAVAILABLE"], create.body
    assert private_create.status == 200, private_create.body  # private_room_create fails open
    assert join.status == 200, join.body  # room_join fails open
    assert state.status == 403 and state.body[REASON_CODES] == ["ROOMGUARD_UNAVAILABLE"], state.body
    for resp in (send, poll, publish, create, private_create, join, state):
        assert resp.seconds < MAX_WAIT_S, resp.seconds


def test_stopped_roomguard_failure_modes_then_recovery(
    alice: Client, bob: Client, roomguard: Roomguard, synapse: Synapse
) -> None:
    """roomguard stopped: sends (messages, polls), joins and private createRooms fail open; publishing, public
    createRoom and room-access state changes fail closed; none waits past deadline + 1 s; roomguard started again on
    the same address: decisions resume without restarting Synapse."""
    room = forum(alice)
    unpublished = forum(alice)
    to_join = forum(alice)
    private = alice.create_room_id(preset="private_chat")
    roomguard.stop()
    try:
        send = alice.send_text(room, MARKED)
        poll = alice.send(room, POLL, event_type="m.poll.start")
        publish = alice.set_directory_visibility(unpublished, "public")
        unpublish = alice.set_directory_visibility(unpublished, "private")
        create = alice.create_room(visibility="public", preset="public_chat")
        private_create = alice.create_room(preset="private_chat")
        direct_chat = alice.create_room(preset="trusted_private_chat", is_direct=True, invite=[bob.user_id])
        join = bob.join(to_join)
        state = alice.set_state(private, "m.room.join_rules", {"join_rule": "knock"})
    finally:
        roomguard.start()

    assert send.status == 200, send.body  # fail-open: conversation goes on
    assert poll.status == 200, poll.body
    assert publish.status == 403, publish.body  # fail-closed: nothing gets listed unchecked
    assert publish.body["errcode"] == "M_FORBIDDEN"
    assert publish.body[REASON_CODES] == ["ROOMGUARD_UNAVAILABLE"]
    assert unpublish.status == 403, unpublish.body  # room_publish fails closed for both directions
    assert create.status == 403 and create.body[REASON_CODES] == ["ROOMGUARD_UNAVAILABLE"], create.body
    assert private_create.status == 200, private_create.body  # private_room_create: an outage stops no direct chat
    assert direct_chat.status == 200, direct_chat.body
    assert join.status == 200, join.body  # room_join fails open
    assert state.status == 403 and state.body[REASON_CODES] == ["ROOMGUARD_UNAVAILABLE"], state.body
    for resp in (send, poll, publish, unpublish, create, private_create, direct_chat, join, state):
        assert resp.seconds < MAX_WAIT_S, resp.seconds

    # Same Synapse process, same channel: it reconnects by itself (backoff capped at 1 s by default).
    assert synapse.proc is not None and synapse.proc.poll() is None
    deadline = time.monotonic() + 10
    while True:
        resp = alice.send_text(room, MARKED)
        if resp.status == 403 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert_denied(resp, "CLASSIFIED_IN_UNENCRYPTED_ROOM", "CLASSIFIED_IN_PUBLIC_ROOM")
    assert alice.set_directory_visibility(unpublished, "public").status == 200
    assert_denied(
        alice.set_state(private, "m.room.history_visibility", {"history_visibility": "world_readable"}),
        "STATE_WORLD_READABLE",
    )
