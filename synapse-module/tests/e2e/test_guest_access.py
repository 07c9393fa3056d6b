"""End-to-end: guest access means *effective* guest access, and it never makes an invite-only room public.

Synapse's `private_chat` and `trusted_private_chat` presets write `m.room.guest_access: can_join` into every room
they create. Guests exist only where the homeserver allows them (`allow_guest_access`, off by default), and even then
a guest needs an invite to an invite-only room like anyone else. Two homeservers, one roomguard (the session's):

* the session's `synapse`, **without** guest access (Synapse's default): an external user invited to an ordinary
  encrypted private room writes in it; a marked message in an unencrypted private room breaks only the encryption
  rule; a public room whose state says `can_join` can be published, since no guest can get in;
* `guest_synapse`, **with** `allow_guest_access: true`: a public room that guests can join cannot be published
  (`ROOM_WORLD_READABLE`), by the directory or at creation, while a `private_chat` room stays private: a real guest
  cannot join it, and the external member still writes in it. (Making a room guest-joinable and public is itself a
  refused state change, `STATE_WORLD_READABLE`: see test_every_door.py.)
"""

from __future__ import annotations

import pytest

from .harness import Client, Synapse
from .test_scenarios import ENCRYPTION, MARKED, PLAIN, assert_denied

pytestmark = pytest.mark.e2e

GUESTS_CAN_JOIN = {"type": "m.room.guest_access", "state_key": "", "content": {"guest_access": "can_join"}}

ENCRYPTED_CONTENT = {
    "algorithm": "m.megolm.v1.aes-sha2",
    "ciphertext": "AwgAEnAC",
    "device_id": "DEV",
    "sender_key": "k",
    "session_id": "s",
}


def private_chat_with_member(owner: Client, member: Client, *, encrypted: bool) -> str:
    """A room made the way clients make ordinary private rooms (`preset: private_chat`), `member` invited and joined."""
    room = owner.create_room_id(preset="private_chat", name="Équipe", initial_state=[ENCRYPTION] if encrypted else [])
    assert owner.invite(room, member.user_id).status == 200
    assert member.join(room).status == 200
    return room


def guest_state(client: Client, room: str) -> dict:
    resp = client.call("GET", f"/rooms/{room}/state/m.room.guest_access/")
    assert resp.status == 200, resp.body
    return resp.body


# === a homeserver without guest access (Synapse's default) ===


def test_external_user_writes_encrypted_in_an_ordinary_private_room(alice: Client, ext: Client) -> None:
    """An external user invited to a `private_chat` encrypted room sends encrypted messages: allowed, although the
    preset wrote `can_join` into the room."""
    room = private_chat_with_member(alice, ext, encrypted=True)
    assert guest_state(alice, room) == {"guest_access": "can_join"}
    for _ in range(2):
        resp = ext.send(room, ENCRYPTED_CONTENT, event_type="m.room.encrypted")
        assert resp.status == 200, resp.body


def test_external_user_writes_in_an_unencrypted_private_room(alice: Client, ext: Client) -> None:
    """The same in an unencrypted `private_chat` room: an ordinary message goes through."""
    room = private_chat_with_member(alice, ext, encrypted=False)
    resp = ext.send_text(room, PLAIN)
    assert resp.status == 200, resp.body


def test_marked_message_in_unencrypted_private_room_breaks_only_the_encryption_rule(alice: Client) -> None:
    """A marked message in an unencrypted `private_chat` room: refused with CLASSIFIED_IN_UNENCRYPTED_ROOM alone (the
    room is not public)."""
    room = alice.create_room_id(preset="private_chat", name="Équipe en clair")
    assert_denied(alice.send_text(room, MARKED), "CLASSIFIED_IN_UNENCRYPTED_ROOM")


def test_public_room_with_can_join_is_publishable_where_no_guest_exists(alice: Client) -> None:
    """Without guest access on the homeserver, `can_join` in a proper forum opens it to nobody more: it is published."""
    room = alice.create_room_id(preset="public_chat", name="Forum", initial_state=[GUESTS_CAN_JOIN])
    resp = alice.set_directory_visibility(room, "public")
    assert resp.status == 200, resp.body
    assert alice.directory_visibility(room) == "public"


def test_guest_registration_is_off_on_the_default_homeserver(synapse: Synapse) -> None:
    """The premise of the tests above: this homeserver lets no guest in."""
    assert synapse.register_guest().status == 403


# === a homeserver with guest access ===


@pytest.fixture(scope="module")
def carol(guest_synapse: Synapse) -> Client:
    """An agent of the guest-friendly homeserver who runs rooms there."""
    return guest_synapse.register("carol")


@pytest.fixture(scope="module")
def guest_ext(guest_synapse: Synapse) -> Client:
    """The external user (same per-user policy line as the session's `ext`) on the guest-friendly homeserver."""
    return guest_synapse.register("ext")


@pytest.fixture(scope="module")
def guest_admin(guest_synapse: Synapse) -> Client:
    """A server admin of the guest-friendly homeserver: Synapse does not ask the module about their `createRoom`."""
    return guest_synapse.register("admin", admin=True)


def test_public_room_that_guests_can_join_cannot_be_published(guest_synapse: Synapse, guest_admin: Client) -> None:
    """With guest access on, a public room with `can_join` is open to anyone without an account: publishing it is
    refused with ROOM_WORLD_READABLE, and a real guest can indeed join it. (Only a server admin can still create such
    a room: anyone else's `createRoom` is refused STATE_WORLD_READABLE, see test_every_door.py.)"""
    room = guest_admin.create_room_id(preset="public_chat", name="Forum", initial_state=[GUESTS_CAN_JOIN])
    assert_denied(guest_admin.set_directory_visibility(room, "public"), "ROOM_WORLD_READABLE")
    assert guest_admin.directory_visibility(room) == "private"
    assert guest_synapse.guest().join(room).status == 200


def test_public_room_created_for_guests_is_not_listed(carol: Client) -> None:
    """The same at creation: `visibility: public` with `can_join` in `initial_state` is refused as a publication and
    as a state change (the preset prediction applies the homeserver's setting too)."""
    resp = carol.create_room(visibility="public", preset="public_chat", initial_state=[GUESTS_CAN_JOIN])
    assert_denied(resp, "STATE_WORLD_READABLE", "ROOM_WORLD_READABLE")


def test_private_chat_room_stays_private_with_guest_access_on(
    guest_synapse: Synapse, carol: Client, guest_ext: Client
) -> None:
    """A `private_chat` room on a homeserver with guests is still private: a guest cannot join it without an invite,
    the external member writes in it, and a marked message there breaks only the encryption rule."""
    room = private_chat_with_member(carol, guest_ext, encrypted=False)
    assert guest_synapse.guest().join(room).status == 403
    resp = guest_ext.send_text(room, PLAIN)
    assert resp.status == 200, resp.body
    assert_denied(carol.send_text(room, MARKED), "CLASSIFIED_IN_UNENCRYPTED_ROOM")

    encrypted = private_chat_with_member(carol, guest_ext, encrypted=True)
    resp = guest_ext.send(encrypted, ENCRYPTED_CONTENT, event_type="m.room.encrypted")
    assert resp.status == 200, resp.body
