"""Tell a publish from an unpublish in `user_may_publish_room`, which Synapse calls for both with `(user, room)` only.

`PUT /_matrix/client/v3/directory/list/room/{roomId}` with `{"visibility": "public"}` or `{"visibility": "private"}`
reaches `DirectoryHandler.edit_published_room_list(requester, room_id, visibility)`, which awaits the spam checker
before anything else. A coroutine runs on its awaiter's stack until it first suspends, so at the very start of our
callback that handler's frame is on the call stack with `visibility` among its locals: we read it there. This is a
read-only look at a caller's argument, done before our first `await`; nothing of Synapse is patched.

It depends on Synapse's internal names, so it is checked: the end-to-end tests pin it on the tested Synapse version
(unpublishing a room that is not listed must give 200, which the fallback below would refuse), and if a future Synapse
renames things the module logs a warning once and falls back to the directory state: a room listed now can only be
unpublished (a re-publish of a listed room changes nothing), a room not listed can only be published (an unpublish of
an unlisted room changes nothing, but would then be checked as a publish and may get a needless 403).
"""

from __future__ import annotations

import sys
from types import FrameType
from typing import Literal

Visibility = Literal["public", "private"]

_HANDLER_FUNCTION = "edit_published_room_list"
_HANDLER_CLASS = "DirectoryHandler"
_MAX_DEPTH = 64


def requested_visibility_from_caller() -> Visibility | None:
    """The `visibility` argument of the `DirectoryHandler.edit_published_room_list` call that is asking, if any.

    Must be called synchronously from the callback, before its first `await`.
    """
    frame: FrameType | None = sys._getframe(1)
    for _ in range(_MAX_DEPTH):
        if frame is None:
            return None
        code = frame.f_code
        if code.co_name == _HANDLER_FUNCTION:
            local_vars = frame.f_locals
            owner = local_vars.get("self")
            visibility = local_vars.get("visibility")
            if type(owner).__name__ == _HANDLER_CLASS and visibility in ("public", "private"):
                return visibility  # type: ignore[return-value]
            return None
        frame = frame.f_back
    return None


def visibility_from_listing(published_now: bool) -> Visibility:
    """Fallback: a listed room can only be unpublished, an unlisted one only published (see the module docstring)."""
    return "private" if published_now else "public"
