"""Telling a publish from an unpublish inside `user_may_publish_room`."""

from __future__ import annotations

import asyncio

from synapse_roomguard.visibility import requested_visibility_from_caller, visibility_from_listing


class DirectoryHandler:
    """Shaped like Synapse's: `edit_published_room_list` awaits the spam checker with (user, room) only."""

    def __init__(self, callback) -> None:
        self.callback = callback

    async def edit_published_room_list(self, requester: str, room_id: str, visibility: str) -> object:
        return await self.spam_checker(requester, room_id)

    async def spam_checker(self, user: str, room_id: str) -> object:
        return await self.callback(user, room_id)


async def callback(user: str, room_id: str) -> object:
    seen = requested_visibility_from_caller()
    await asyncio.sleep(0)
    return seen


def test_visibility_is_read_from_the_directory_handler_call() -> None:
    """The callback sees the visibility its caller was asked for, publish and unpublish alike."""
    handler = DirectoryHandler(callback)
    assert asyncio.run(handler.edit_published_room_list("@a:s", "!r:s", "public")) == "public"
    assert asyncio.run(handler.edit_published_room_list("@a:s", "!r:s", "private")) == "private"


def test_other_callers_give_none() -> None:
    """Called from anywhere else, the resolver says it does not know (the module then falls back)."""
    assert asyncio.run(callback("@a:s", "!r:s")) is None

    class NotTheHandler:
        async def edit_published_room_list(self, visibility: str) -> object:
            return await callback("@a:s", "!r:s")

    assert asyncio.run(NotTheHandler().edit_published_room_list("public")) is None


def test_fallback_infers_from_listing() -> None:
    """Fallback: a listed room can only be unpublished, an unlisted one only published."""
    assert visibility_from_listing(True) == "private"
    assert visibility_from_listing(False) == "public"
