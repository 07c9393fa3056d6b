"""Turn an event's content into roomguard's `Message`: what the classifier reads.

Nothing here logs: the values extracted are exactly the content that must never reach a log file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._proto.roomguard.v1 import policy_pb2 as pb

#: The event types whose sending roomguard decides on (issue #3): text and media, stickers, and encrypted events
#: (whose type alone matters: an `m.room.encrypted` event has no readable content).
CHECKED_EVENT_TYPES = frozenset({"m.room.message", "m.sticker", "m.room.encrypted"})

#: proto `uint64`: sizes outside it are client nonsense, sent as 0 ("unknown").
_UINT64_MAX = 2**64 - 1


def _str(content: Mapping[str, Any], key: str) -> str:
    value = content.get(key)
    return value if isinstance(value, str) else ""


def _edit_target(content: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """`m.new_content` of an edit (`m.relates_to.rel_type == m.replace`), else None."""
    relates_to = content.get("m.relates_to")
    new_content = content.get("m.new_content")
    if (
        isinstance(relates_to, Mapping)
        and relates_to.get("rel_type") == "m.replace"
        and isinstance(new_content, Mapping)
    ):
        return new_content
    return None


def _join(primary: str, fallback: str) -> str:
    """Text for the classifier when an edit's fallback says something its `m.new_content` does not.

    Clients without edit support display the fallback (`* new text`), so a marking hidden there is still shown to
    people: classify both. When the fallback is the usual `* ` + new text, send the new text alone.
    """
    if not fallback or fallback in (primary, f"* {primary}"):
        return primary
    if not primary:
        return fallback
    return f"{primary}\n{fallback}"


def message_from_event(event_type: str, content: Mapping[str, Any]) -> pb.Message:
    """The `Message` roomguard classifies for an event of `event_type` with `content`.

    For an edit, the edited text (`m.new_content`) is what gets classified; the outer fallback is added when it differs.
    Encrypted events carry only their type: the ciphertext is not content.
    """
    if event_type == "m.room.encrypted":
        return pb.Message(event_type=event_type)

    source = content
    body = _str(content, "body")
    formatted_body = _str(content, "formatted_body")
    new_content = _edit_target(content)
    if new_content is not None:
        source = new_content
        body = _join(_str(new_content, "body"), body)
        formatted_body = _join(_str(new_content, "formatted_body"), formatted_body)

    info = source.get("info")
    info = info if isinstance(info, Mapping) else {}
    size = info.get("size")
    size = size if isinstance(size, int) and not isinstance(size, bool) and 0 <= size <= _UINT64_MAX else 0

    return pb.Message(
        event_type=event_type,
        msgtype=_str(source, "msgtype"),
        body=body,
        formatted_body=formatted_body,
        filename=_str(source, "filename"),
        mimetype=_str(info, "mimetype"),
        size=size,
    )
