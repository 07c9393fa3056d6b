"""Turn an event's content into roomguard's `Message`: what the classifier reads.

Which events carry text, and where it is (issue #10, "Text in every event"):

* `m.room.message` and `m.sticker`: `msgtype`, `body`, `formatted_body`, `filename`, `info` (as since issue #3), an
  edit's `m.new_content` first; always asked about, even without text (the type alone can break a rule);
* `m.room.encrypted`: the type alone (ciphertext is not content); always asked about;
* every other event type: every string value of its content, walked in document order, except values that are Matrix
  identifiers or media URIs (`@user:server`, `!room:server`, `#alias:server`, `$event`, `mxc://...`) and the values
  of keys that carry no prose (`msgtype`, `algorithm`, `rel_type`, ids, encryption material, call signalling: see
  `NO_PROSE_KEYS`). HTML goes to `formatted_body`: `formatted_body` and `org.matrix.msc1767.html` values, and
  extensible-event text blocks (`m.text`, `org.matrix.msc1767.text`: `[{"body": ..., "mimetype": "text/html"}]`)
  with an HTML mimetype; the other blocks go to `body`. That covers polls, stable (`m.poll.start`: `m.poll`'s
  question and answers) and unstable (`org.matrix.msc3381.poll.start`), room names (`name`) and topics (`topic`,
  `m.topic`), a reaction's key (`m.relates_to.key`), redaction reasons, edits' `m.new_content` and any custom type.
  An event of these types without any text is not asked about (`message_from_event` answers None).

Membership events and the five room-access state types are not messages: the module routes them elsewhere
(`CheckRoomJoin`, `CheckRoomStateChange`) or not at all.

Bounds: the walk descends at most `MAX_DEPTH` levels and visits at most `MAX_VALUES` values (more than a 64 KiB event
can hold), and the text sent is at most `MAX_TEXT_BYTES`, roomguard's limit on `body` + `formatted_body` + `filename`
(a larger request would be refused INVALID_ARGUMENT, which is no decision, which fails open). Identifier-like fields
(`event_type`, `msgtype`, `mimetype`) are cut to roomguard's 255 bytes for the same reason. A Synapse event is at most
64 KiB of JSON, so the text of any event Synapse accepts fits; the cuts only ever apply to content Synapse refuses
after the spam check.

Nothing here logs: the values extracted are exactly the content that must never reach a log file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._proto.roomguard.v1 import policy_pb2 as pb
from .attributes import is_state_change

#: Asked about even when they carry no text: messages, stickers (issue #3) and encrypted events (type only).
ALWAYS_CHECKED_TYPES = frozenset({"m.room.message", "m.sticker", "m.room.encrypted"})

#: The event types with the message shape of issue #3 (`msgtype`, `body`, `formatted_body`, `filename`, `info`).
_MESSAGE_SHAPED_TYPES = frozenset({"m.room.message", "m.sticker"})

#: roomguard's limit on `body` + `formatted_body` + `filename` together (its `MAX_EVENT_BYTES`).
MAX_TEXT_BYTES = 65_536
#: roomguard's limit on identifier-like fields (`event_type`, `msgtype`, `mimetype`).
MAX_ID_BYTES = 255
#: How deep the walk over an event's content goes. Extensible events nest text about six levels deep (poll, answers,
#: answer, text blocks, block, body); no client shows text nested deeper than a few levels.
MAX_DEPTH = 64
#: How many values (objects, arrays, strings, numbers) the walk visits at most: more than a 64 KiB event can hold
#: (`0,` is two bytes), so the bound only stops content Synapse refuses anyway.
MAX_VALUES = 40_000

#: Keys whose values are not prose: structure, identifiers, links, encryption material, call signalling. The walk skips
#: the value, whole, whatever it holds.
NO_PROSE_KEYS = frozenset(
    {
        # structure of messages and extensible events
        "msgtype",
        "format",
        "mimetype",
        "algorithm",
        "rel_type",
        "kind",
        "type",
        "version",
        "id",
        "m.id",
        # identifiers and links
        "event_id",
        "room_id",
        "user_id",
        "sender",
        "state_key",
        "redacts",
        "via",
        "url",
        "avatar_url",
        "thumbnail_url",
        "geo_uri",
        # encryption material (encrypted events, encrypted attachments' JWK and hashes)
        "ciphertext",
        "session_id",
        "sender_key",
        "device_id",
        "hashes",
        "iv",
        "k",
        "kty",
        "key_ops",
        "alg",
        "v",
        "blurhash",
        "xyz.amorgan.blurhash",
        # poll responses: the answer ids chosen
        "m.selections",
        "org.matrix.msc3381.poll.response",
        # spaces' ordering keys, third-party invites' public keys
        "order",
        "public_key",
        "public_keys",
        "key_validity_url",
        # VoIP and MatrixRTC signalling
        "sdp",
        "candidates",
        "call_id",
        "party_id",
        "application",
        "scope",
        "focus_active",
        "foci_preferred",
        "membershipID",
    }
)

#: Keys whose string value is HTML.
_HTML_KEYS = frozenset({"formatted_body", "org.matrix.msc1767.html"})
#: Keys holding extensible-event text blocks (`[{"body": ..., "mimetype": ...}]`), or text itself (early MSC1767).
_TEXT_BLOCK_KEYS = frozenset({"m.text", "org.matrix.msc1767.text"})
_HTML_MIMETYPE = "text/html"

_SERVER_NAME = r"(?:[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?"
#: A whole value that is a Matrix identifier or a media URI, and nothing else: user ids, room aliases, room ids and
#: event ids with a server part; room ids (v12) and event ids (v3+) as unpadded base64 of a SHA-256 (43 characters);
#: `mxc://server/media`. A sigil followed by prose (`@tous DIFFUSION RESTREINTE`) does not match, so it stays text.
_IDENTIFIER = re.compile(
    rf"[@#!$][^\s:]+:{_SERVER_NAME}"
    r"|[!$][A-Za-z0-9+/_\-]{43}"
    r"|mxc://[^\s/]+/[A-Za-z0-9_\-]+"
)

#: proto `uint64`: sizes outside it are client nonsense, sent as 0 ("unknown").
_UINT64_MAX = 2**64 - 1


def is_identifier(value: str) -> bool:
    """Is this whole string a Matrix identifier or a media URI (not prose)?"""
    return len(value) <= MAX_ID_BYTES and _IDENTIFIER.fullmatch(value) is not None


def _str(content: Mapping[str, Any], key: str) -> str:
    value = content.get(key)
    return value if isinstance(value, str) else ""


_SURROGATE = re.compile("[\ud800-\udfff]")


def _utf8(text: str) -> bytes:
    """The text as UTF-8; lone surrogates (which JSON can carry) count as U+FFFD, which `_cut` puts in their place."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text).encode("utf-8")


def _cut(text: str, max_bytes: int) -> str:
    """`text` as valid UTF-8 (lone surrogates replaced by U+FFFD) of at most `max_bytes` bytes, cut at a character
    boundary."""
    try:
        raw, clean = text.encode("utf-8"), text
    except UnicodeEncodeError:
        clean = _SURROGATE.sub("\ufffd", text)
        raw = clean.encode("utf-8")
    if len(raw) <= max_bytes:
        return clean
    return raw[: max(max_bytes, 0)].decode("utf-8", "ignore")


# === the walk over any content ===


@dataclass
class CollectedText:
    """Text found in an event's content, in document order, deduplicated, within `MAX_TEXT_BYTES`."""

    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    #: The walk stopped at one of its bounds (depth, values, bytes): some content was not read.
    truncated: bool = False
    _used: int = 0
    _seen: set[tuple[bool, str]] = field(default_factory=set)

    def add(self, text: str, *, html: bool) -> None:
        if not text.strip() or (html, text) in self._seen:
            return
        self._seen.add((html, text))
        cost = len(_utf8(text)) + 1  # the newline that joins it to the others
        if self._used + cost > MAX_TEXT_BYTES:
            self.truncated = True
            text = _cut(text, MAX_TEXT_BYTES - self._used - 1)
            if not text:
                return
            cost = len(_utf8(text)) + 1
        self._used += cost
        (self.html if html else self.plain).append(text)

    @property
    def full(self) -> bool:
        return self._used >= MAX_TEXT_BYTES - 1

    @property
    def body(self) -> str:
        return "\n".join(self.plain)

    @property
    def formatted_body(self) -> str:
        return "\n".join(self.html)


def collect_text(content: Any) -> CollectedText:
    """Every prose string of `content` (see the module docstring), bounded by depth, values and bytes."""
    found = CollectedText()
    # (value, depth, is_html); a stack in reverse document order, so that text comes out in document order.
    stack: list[tuple[Any, int, bool]] = [(content, 0, False)]
    visited = 0
    while stack:
        if visited >= MAX_VALUES or found.full:
            found.truncated = True
            break
        value, depth, html = stack.pop()
        visited += 1
        if isinstance(value, str):
            if not is_identifier(value):
                found.add(value, html=html)
            continue
        if not isinstance(value, (Mapping, Sequence)) or isinstance(value, (bytes, bytearray)):
            continue  # numbers, booleans, null
        if depth >= MAX_DEPTH:
            found.truncated = True
            continue
        children: list[tuple[Any, int, bool]] = []
        if isinstance(value, Mapping):
            for key, child in value.items():
                if key in NO_PROSE_KEYS:
                    continue
                if key in _TEXT_BLOCK_KEYS and isinstance(child, Sequence) and not isinstance(child, str):
                    children.extend(_text_blocks(child, depth + 1))
                else:
                    children.append((child, depth + 1, html or key in _HTML_KEYS))
        else:
            children.extend((child, depth + 1, html) for child in value)
        stack.extend(reversed(children))
    return found


def _text_blocks(blocks: Iterable[Any], depth: int) -> list[tuple[Any, int, bool]]:
    """Extensible-event text blocks: each block's `body`, as HTML when its `mimetype` says so."""
    out: list[tuple[Any, int, bool]] = []
    for block in blocks:
        if isinstance(block, Mapping) and isinstance(block.get("body"), str):
            is_html = isinstance(block.get("mimetype"), str) and block["mimetype"].lower() == _HTML_MIMETYPE
            out.append((block["body"], depth + 1, is_html))
        else:
            out.append((block, depth, False))
    return out


# === messages and stickers (the shape of issue #3) ===


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


def _message_shaped(event_type: str, content: Mapping[str, Any]) -> pb.Message:
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

    return build_message(
        event_type,
        msgtype=_str(source, "msgtype"),
        body=body,
        formatted_body=formatted_body,
        filename=_str(source, "filename"),
        mimetype=_str(info, "mimetype"),
        size=size,
    )


def build_message(
    event_type: str,
    *,
    msgtype: str = "",
    body: str = "",
    formatted_body: str = "",
    filename: str = "",
    mimetype: str = "",
    size: int = 0,
) -> pb.Message:
    """A `Message` within what roomguard accepts: valid UTF-8 (a lone surrogate, which JSON can carry, becomes U+FFFD),
    identifiers cut to 255 bytes, the text fields to 64 KiB together (the body first, then the file name, then the
    HTML). The cuts never apply to an event Synapse accepts (see the module docstring), but a request roomguard refuses
    is no decision, and no decision on a send fails open."""
    budget = MAX_TEXT_BYTES
    body = _cut(body, budget)
    budget -= len(_utf8(body))
    filename = _cut(filename, budget)
    budget -= len(_utf8(filename))
    return pb.Message(
        event_type=_cut(event_type, MAX_ID_BYTES),
        msgtype=_cut(msgtype, MAX_ID_BYTES),
        body=body,
        formatted_body=_cut(formatted_body, budget),
        filename=filename,
        mimetype=_cut(mimetype, MAX_ID_BYTES),
        size=size,
    )


def has_text(message: pb.Message) -> bool:
    return bool(message.body or message.formatted_body or message.filename)


# === entry points ===


def message_from_event(event_type: str, content: Mapping[str, Any]) -> pb.Message | None:
    """The `Message` roomguard classifies for an event of `event_type` with `content`; None when there is nothing to
    ask about (an event of another type than `ALWAYS_CHECKED_TYPES` that carries no text).

    For an edited message, the edited text (`m.new_content`) is what gets classified; the outer fallback is added when
    it differs. Encrypted events carry only their type: the ciphertext is not content.
    """
    if event_type == "m.room.encrypted":
        return build_message(event_type)
    if event_type in _MESSAGE_SHAPED_TYPES:
        return _message_shaped(event_type, content)
    text = collect_text(content)
    if not text.plain and not text.html:
        return None
    return build_message(
        event_type, msgtype=_str(content, "msgtype"), body=text.body, formatted_body=text.formatted_body
    )


#: `createRoom` can bring many state events; their text is asked about in at most this many `CheckMessageSend` calls
#: (one per event type, the types beyond the limit merged into the last call).
MAX_CREATE_MESSAGES = 8


def messages_from_create_request(room_config: Mapping[str, Any]) -> list[pb.Message]:
    """The text a `createRoom` request writes into the new room, one `Message` per event type, in request order.

    Synapse sends these events itself, without `check_event_for_spam`: the room's `name` and `topic`, and the
    `initial_state` events other than memberships and the room-access types (which `CheckRoomStateChange` decides).
    Only events with text are kept (a name or topic that is not a string has none).
    """
    events: list[tuple[str, Mapping[str, Any]]] = []
    initial_state = room_config.get("initial_state")
    if isinstance(initial_state, Sequence) and not isinstance(initial_state, str):
        for event in initial_state:
            if not isinstance(event, Mapping):
                continue
            event_type, content = event.get("type"), event.get("content")
            state_key = event.get("state_key", "")
            if not isinstance(event_type, str) or not isinstance(content, Mapping):
                continue
            if not isinstance(state_key, str) or event_type == "m.room.member":
                continue
            if is_state_change(event_type, state_key):
                continue
            events.append((event_type, content))
    if isinstance(room_config.get("name"), str):
        events.append(("m.room.name", {"name": room_config["name"]}))
    if isinstance(room_config.get("topic"), str):
        events.append(("m.room.topic", {"topic": room_config["topic"]}))

    by_type: dict[str, list[pb.Message]] = {}
    for event_type, content in events:
        message = message_from_event(event_type, content)
        if message is not None and has_text(message):
            by_type.setdefault(event_type, []).append(message)
    merged = [_merge(messages) for messages in by_type.values()]
    if len(merged) > MAX_CREATE_MESSAGES:
        merged = merged[: MAX_CREATE_MESSAGES - 1] + [_merge(merged[MAX_CREATE_MESSAGES - 1 :])]
    return merged


def _merge(messages: list[pb.Message]) -> pb.Message:
    """One message with the text of several (the first one's type and attachment facts)."""
    first = messages[0]
    if len(messages) == 1:
        return first

    def joined(values: Iterable[str]) -> str:
        return "\n".join(dict.fromkeys(v for v in values if v))

    return build_message(
        first.event_type,
        msgtype=first.msgtype,
        body=joined(m.body for m in messages),
        formatted_body=joined(m.formatted_body for m in messages),
        filename=joined(m.filename for m in messages),
        mimetype=first.mimetype,
        size=first.size,
    )
