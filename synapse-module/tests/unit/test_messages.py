"""`message_from_event`: what roomguard's classifier receives for an event."""

from __future__ import annotations

from typing import Any

import pytest

from synapse_roomguard._proto.roomguard.v1 import policy_pb2 as pb
from synapse_roomguard.messages import (
    ALWAYS_CHECKED_TYPES,
    MAX_CREATE_MESSAGES,
    MAX_DEPTH,
    MAX_TEXT_BYTES,
    MAX_VALUES,
    collect_text,
    is_identifier,
    messages_from_create_request,
)
from synapse_roomguard.messages import message_from_event as _message_from_event

MARKED = "DIFFUSION RESTREINTE"


def message_from_event(event_type: str, content: Any) -> pb.Message:
    """The message, for events that are asked about (most tests)."""
    message = _message_from_event(event_type, content)
    assert message is not None
    return message


def test_messages_stickers_and_encrypted_events_are_always_asked_about() -> None:
    """The three types of issue #3 are asked about even without text: their type alone can break a rule."""
    assert ALWAYS_CHECKED_TYPES == {"m.room.message", "m.sticker", "m.room.encrypted"}
    for event_type in ALWAYS_CHECKED_TYPES:
        assert _message_from_event(event_type, {}) == pb.Message(event_type=event_type)


def test_text_message_carries_body_and_html() -> None:
    """A text message: msgtype, body and formatted body as sent."""
    msg = message_from_event(
        "m.room.message",
        {
            "msgtype": "m.text",
            "body": "bonjour",
            "format": "org.matrix.custom.html",
            "formatted_body": "<b>bonjour</b>",
        },
    )
    assert (msg.event_type, msg.msgtype, msg.body, msg.formatted_body) == (
        "m.room.message",
        "m.text",
        "bonjour",
        "<b>bonjour</b>",
    )


def test_file_message_carries_name_type_and_size() -> None:
    """An attachment: file name, MIME type and size from `info`."""
    msg = message_from_event(
        "m.room.message",
        {
            "msgtype": "m.file",
            "body": "a.pdf",
            "filename": "DR_note.pdf",
            "info": {"mimetype": "application/pdf", "size": 42},
        },
    )
    assert (msg.filename, msg.mimetype, msg.size) == ("DR_note.pdf", "application/pdf", 42)


def test_sticker_has_no_msgtype() -> None:
    """A sticker: body and info, no msgtype."""
    msg = message_from_event(
        "m.sticker", {"body": "chat", "info": {"mimetype": "image/png", "size": 10}, "url": "mxc://a/b"}
    )
    assert (msg.event_type, msg.msgtype, msg.body, msg.mimetype) == ("m.sticker", "", "chat", "image/png")


def test_encrypted_event_sends_only_its_type() -> None:
    """Ciphertext is not content: an encrypted event is described by its type alone."""
    msg = message_from_event(
        "m.room.encrypted", {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "diffusion restreinte"}
    )
    assert msg.event_type == "m.room.encrypted"
    assert (msg.body, msg.formatted_body, msg.filename, msg.msgtype) == ("", "", "", "")


def test_edit_is_classified_on_new_content() -> None:
    """An edit: the new content is what gets classified (the usual `* ` fallback adds nothing)."""
    msg = message_from_event(
        "m.room.message",
        {
            "msgtype": "m.text",
            "body": "* texte secret",
            "m.new_content": {"msgtype": "m.text", "body": "texte secret"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": "$x"},
        },
    )
    assert msg.body == "texte secret"


def test_edit_fallback_that_differs_is_classified_too() -> None:
    """A fallback that says something else (shown by clients without edit support) is classified with the new text."""
    msg = message_from_event(
        "m.room.message",
        {
            "msgtype": "m.text",
            "body": "DIFFUSION RESTREINTE",
            "m.new_content": {"msgtype": "m.text", "body": "rien"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": "$x"},
        },
    )
    assert msg.body == "rien\nDIFFUSION RESTREINTE"


def test_new_content_without_replace_relation_is_not_an_edit() -> None:
    """`m.new_content` without `rel_type: m.replace` is ignored: the event's own body is classified."""
    msg = message_from_event(
        "m.room.message", {"msgtype": "m.text", "body": "vrai", "m.new_content": {"body": "leurre"}}
    )
    assert msg.body == "vrai"


def test_malformed_fields_become_empty_not_errors() -> None:
    """Clients send anything: wrong types become empty values, never an exception in the hook."""
    msg = message_from_event(
        "m.room.message",
        {"msgtype": 3, "body": ["x"], "formatted_body": None, "filename": {}, "info": {"size": -1, "mimetype": 5}},
    )
    assert (msg.msgtype, msg.body, msg.formatted_body, msg.filename, msg.mimetype, msg.size) == ("", "", "", "", "", 0)
    assert message_from_event("m.room.message", {"info": {"size": True}}).size == 0
    assert message_from_event("m.room.message", {"info": "big"}).size == 0


# === text in every event (#10) ===


def test_stable_poll_question_and_answers_are_text() -> None:
    """`m.poll.start`: the question, every answer and the fallback, as plain text; answer ids and kind are not text."""
    msg = message_from_event(
        "m.poll.start",
        {
            "m.poll": {
                "kind": "m.disclosed",
                "max_selections": 1,
                "question": {"m.text": [{"body": "Quelle date ?"}]},
                "answers": [
                    {"m.id": "a1", "m.text": [{"body": "Lundi"}]},
                    {"m.id": "a2", "m.text": [{"body": MARKED}]},
                ],
            },
            "m.text": [{"body": "Quelle date ?\n1. Lundi\n2. " + MARKED}],
        },
    )
    assert msg.event_type == "m.poll.start"
    assert msg.body.split("\n")[:3] == ["Quelle date ?", "Lundi", MARKED]
    assert "a1" not in msg.body and "m.disclosed" not in msg.body
    assert msg.formatted_body == ""


def test_stable_poll_html_blocks_go_to_the_formatted_body() -> None:
    """Text blocks with an HTML mimetype are HTML, the others plain text."""
    msg = message_from_event(
        "m.poll.start",
        {
            "m.poll": {
                "question": {
                    "m.text": [
                        {"mimetype": "text/plain", "body": "Question"},
                        {"mimetype": "text/html", "body": "<b>Diffusion</b> restreinte ?"},
                    ]
                },
                "answers": [{"m.id": "x", "m.text": [{"body": "Oui"}]}],
            }
        },
    )
    assert msg.body == "Question\nOui"
    assert msg.formatted_body == "<b>Diffusion</b> restreinte ?"


def test_unstable_poll_question_and_answers_are_text() -> None:
    """`org.matrix.msc3381.poll.start` (what Element sends): question (string text, its `body` once), answers, the
    fallback; ids, kind and msgtype are not text."""
    msg = message_from_event(
        "org.matrix.msc3381.poll.start",
        {
            "org.matrix.msc3381.poll.start": {
                "kind": "org.matrix.msc3381.poll.disclosed",
                "max_selections": 1,
                "question": {"org.matrix.msc1767.text": "Qui vient ?", "body": "Qui vient ?", "msgtype": "m.text"},
                "answers": [
                    {"id": "9f2c", "org.matrix.msc1767.text": "Moi"},
                    {"id": "77aa", "org.matrix.msc1767.text": MARKED},
                ],
            },
            "org.matrix.msc1767.text": "Qui vient ?\n1. Moi",
        },
    )
    assert msg.event_type == "org.matrix.msc3381.poll.start"
    assert msg.body == f"Qui vient ?\nMoi\n{MARKED}\nQui vient ?\n1. Moi"
    for not_text in ("9f2c", "disclosed", "m.text"):
        assert not_text not in msg.body


def test_poll_edit_classifies_the_new_poll() -> None:
    """An edited poll: `m.new_content`'s question and answers are text too."""
    msg = message_from_event(
        "m.poll.start",
        {
            "m.new_content": {"m.poll": {"question": {"m.text": [{"body": MARKED}]}, "answers": []}},
            "m.relates_to": {"rel_type": "m.replace", "event_id": "$" + "A" * 43},
            "m.text": [{"body": "* sondage"}],
        },
    )
    assert MARKED in msg.body and "* sondage" in msg.body


def test_extensible_text_blocks_of_any_event_are_text() -> None:
    """`m.text` blocks (MSC1767) of an unknown type: plain and HTML by mimetype; `org.matrix.msc1767.html` is HTML."""
    msg = message_from_event(
        "org.example.note",
        {
            "m.text": [{"body": "note"}, {"body": "<i>note</i>", "mimetype": "text/html"}],
            "org.matrix.msc1767.html": "<p>autre</p>",
        },
    )
    assert (msg.body, msg.formatted_body) == ("note", "<i>note</i>\n<p>autre</p>")


def test_room_name_and_topic_are_text() -> None:
    """`m.room.name`'s name; `m.room.topic`'s topic once, and its `m.topic` HTML block as HTML."""
    assert message_from_event("m.room.name", {"name": MARKED}).body == MARKED
    topic = message_from_event(
        "m.room.topic",
        {
            "topic": "Ordre du jour",
            "m.topic": {
                "m.text": [
                    {"body": "Ordre du jour", "mimetype": "text/plain"},
                    {"body": "<b>Ordre</b> du jour", "mimetype": "text/html"},
                ]
            },
        },
    )
    assert (topic.event_type, topic.body, topic.formatted_body) == (
        "m.room.topic",
        "Ordre du jour",
        "<b>Ordre</b> du jour",
    )


def test_reaction_key_is_text() -> None:
    """`m.reaction`: the key is what people see; the relation's type and target are not text."""
    msg = message_from_event(
        "m.reaction",
        {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$" + "b" * 43, "key": MARKED}},
    )
    assert (msg.event_type, msg.body) == ("m.reaction", MARKED)


def test_custom_event_strings_are_text_but_identifiers_and_uris_are_not() -> None:
    """Any other type: every string value, in document order, except Matrix identifiers, `mxc://` URIs and the
    values of keys that carry no prose; numbers and booleans are not text."""
    msg = message_from_event(
        "fr.gouv.note",
        {
            "title": "Compte rendu",
            "details": {"lines": ["ligne 1", MARKED], "count": 2, "urgent": True},
            "author": "@alice:agent.finances.tchap.gouv.fr",
            "room": "!abc:agent.finances.tchap.gouv.fr",
            "alias": "#forum:agent.finances.tchap.gouv.fr",
            "reply_to": "$" + "c" * 43,
            "new_room": "!" + "d" * 43,
            "legacy_event": "$1234:agent.finances.tchap.gouv.fr",
            "file": "mxc://agent.finances.tchap.gouv.fr/AbCd_12",
            "msgtype": "fr.gouv.note",
            "algorithm": "m.megolm.v1.aes-sha2",
            "m.relates_to": {"rel_type": "m.thread", "event_id": "$" + "e" * 43},
        },
    )
    assert msg.event_type == "fr.gouv.note"
    assert msg.body == f"Compte rendu\nligne 1\n{MARKED}"
    assert msg.msgtype == "fr.gouv.note"


@pytest.mark.parametrize(
    "text",
    [
        f"@tous {MARKED}",
        f"#{MARKED}",
        "@DIFFUSION RESTREINTE:agent.gouv.fr",
        "$" + "x" * 42,
        "mxc://server/media id",
        "!court",
    ],
)
def test_prose_that_starts_like_an_identifier_is_text(text: str) -> None:
    """Only a whole, well-formed identifier is left out: a sigil in front of prose does not hide it."""
    assert not is_identifier(text)
    assert message_from_event("fr.gouv.note", {"t": text}).body == text


def test_redaction_reason_is_text() -> None:
    """A redaction's reason is shown to people; the redacted event id is not text."""
    msg = message_from_event("m.room.redaction", {"redacts": "$" + "f" * 43, "reason": MARKED})
    assert msg.body == MARKED


@pytest.mark.parametrize(
    ("event_type", "content"),
    [
        ("m.room.power_levels", {"users": {"@a:s": 100}, "users_default": 0, "events": {"m.room.name": 50}}),
        ("m.room.canonical_alias", {"alias": "#a:s", "alt_aliases": ["#b:s"]}),
        ("m.room.avatar", {"url": "mxc://s/abc", "info": {"mimetype": "image/png", "size": 3, "w": 1, "h": 1}}),
        ("m.room.pinned_events", {"pinned": ["$" + "g" * 43]}),
        ("m.space.child", {"via": ["agent.finances.tchap.gouv.fr"], "order": "a1", "suggested": True}),
        ("m.poll.response", {"m.selections": ["a1"], "m.relates_to": {"rel_type": "m.reference", "event_id": "$x:s"}}),
        (
            "org.matrix.msc3381.poll.response",
            {"org.matrix.msc3381.poll.response": {"answers": ["9f2c"]}, "m.relates_to": {"event_id": "$y:s"}},
        ),
        (
            "org.matrix.msc3401.call.member",
            {
                "application": "m.call",
                "call_id": "",
                "scope": "m.room",
                "device_id": "DEVICE",
                "expires": 14400000,
                "focus_active": {"type": "livekit", "focus_selection": "oldest_membership"},
                "foci_preferred": [{"type": "livekit", "livekit_service_url": "https://lk.example"}],
            },
        ),
        ("m.call.invite", {"call_id": "c1", "party_id": "p", "version": "1", "offer": {"type": "offer", "sdp": "v=0"}}),
        ("m.reaction", {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$z:s", "key": "  "}}),
        ("fr.gouv.empty", {}),
    ],
)
def test_events_without_prose_are_not_asked_about(event_type: str, content: dict) -> None:
    """Events whose content holds only identifiers, numbers and protocol values: nothing to classify, no call."""
    assert _message_from_event(event_type, content) is None


def test_encrypted_attachment_material_is_not_text() -> None:
    """An encrypted file's key, IV and hashes, and a blurhash, are not prose."""
    text = collect_text(
        {
            "caption": "Photo",
            "file": {
                "url": "mxc://s/m",
                "key": {"kty": "oct", "key_ops": ["encrypt"], "alg": "A256CTR", "k": "qcHVMSgY", "ext": True},
                "iv": "X85+XgHN+HEAAAAAAAAAAA",
                "hashes": {"sha256": "6DisCpOSD5fuk"},
                "v": "v2",
            },
            "info": {"mimetype": "image/jpeg", "xyz.amorgan.blurhash": "LEHV6nWB2yk8"},
        }
    )
    assert text.plain == ["Photo"]


def test_text_is_deduplicated_and_in_document_order() -> None:
    """The same string twice is classified once; order follows the content."""
    text = collect_text({"a": "un", "b": ["deux", "un"], "c": {"d": "trois"}})
    assert text.plain == ["un", "deux", "trois"]


def test_walk_depth_is_bounded() -> None:
    """Text nested deeper than `MAX_DEPTH` levels is not read (and the walk says it stopped short)."""
    shallow: Any = "visible"
    for _ in range(MAX_DEPTH - 1):
        shallow = [shallow]
    deep: Any = "cachée"
    for _ in range(MAX_DEPTH + 1):
        deep = {"x": deep}
    text = collect_text({"a": shallow, "b": deep})
    assert text.plain == ["visible"]
    assert text.truncated


def test_walk_values_are_bounded() -> None:
    """At most `MAX_VALUES` values are visited; a 64 KiB event cannot hold that many."""
    text = collect_text([0] * MAX_VALUES + ["après"])
    assert text.plain == [] and text.truncated
    assert collect_text([0] * (MAX_VALUES - 10) + ["avant"]).plain == ["avant"]


def test_text_never_exceeds_what_roomguard_accepts() -> None:
    """Text, plain and HTML together, stops at roomguard's 65,536 bytes, cut at a character boundary."""
    big = "é" * 20_000  # 40,000 bytes each
    msg = message_from_event("fr.gouv.note", {"a": big, "b": big + "x", "formatted_body": "<p>" + big + "</p>"})
    total = len(msg.body.encode()) + len(msg.formatted_body.encode()) + len(msg.filename.encode())
    assert total <= MAX_TEXT_BYTES
    assert msg.body.startswith(big)
    msg.body.encode("utf-8")  # valid UTF-8


def test_message_fields_are_cut_to_roomguard_limits() -> None:
    """Oversized messages (Synapse refuses them after the spam check) are cut rather than refused by roomguard as
    INVALID_ARGUMENT, which would be no decision, which fails open: the marking at the start is still read."""
    msg = message_from_event(
        "m.room.message",
        {
            "msgtype": "m." + "x" * 300,
            "body": MARKED + " " + "a" * 70_000,
            "formatted_body": "b" * 70_000,
            "filename": "c" * 10,
            "info": {"mimetype": "d" * 300},
        },
    )
    assert len(msg.msgtype.encode()) <= 255 and len(msg.mimetype.encode()) <= 255
    assert len(msg.body) + len(msg.formatted_body) + len(msg.filename) <= MAX_TEXT_BYTES
    assert msg.body.startswith(MARKED)
    long_type = message_from_event("x" * 300, {"t": "texte"})
    assert len(long_type.event_type) == 255


def test_lone_surrogates_become_replacement_characters() -> None:
    """JSON can carry a lone surrogate; it would make the request unserialisable (no decision, fail-open)."""
    msg = message_from_event("m.room.message", {"msgtype": "m.text", "body": "\ud800" + MARKED})
    assert msg.body == "\ufffd" + MARKED
    assert message_from_event("fr.gouv.note", {"t": "\udfff" + MARKED}).body == "\ufffd" + MARKED
    pb.Message(body=msg.body).SerializeToString()


# === createRoom ===


def test_create_request_text_is_name_topic_and_initial_state() -> None:
    """createRoom writes its name, topic and `initial_state` itself (no `check_event_for_spam`): one message per
    event type; memberships and the room-access types are not messages."""
    messages = messages_from_create_request(
        {
            "name": MARKED,
            "topic": "Sujet",
            "initial_state": [
                {"type": "m.room.history_visibility", "state_key": "", "content": {"history_visibility": "shared"}},
                {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "public"}},
                {"type": "m.room.member", "state_key": "@a:s", "content": {"membership": "join", "displayname": "A"}},
                {"type": "fr.gouv.note", "state_key": "x", "content": {"text": "Note"}},
                {"type": "fr.gouv.note", "state_key": "y", "content": {"text": "Note 2"}},
                {"type": "m.room.topic", "state_key": "", "content": {"topic": "Ancien sujet"}},
                {"type": "m.room.avatar", "state_key": "", "content": {"url": "mxc://s/a"}},
            ],
        }
    )
    assert [(m.event_type, m.body) for m in messages] == [
        ("fr.gouv.note", "Note\nNote 2"),
        ("m.room.topic", "Ancien sujet\nSujet"),
        ("m.room.name", MARKED),
    ]


def test_create_request_without_text_asks_nothing() -> None:
    """An ordinary direct chat request has no text to classify."""
    assert messages_from_create_request({"preset": "trusted_private_chat", "is_direct": True, "invite": ["@b:s"]}) == []
    assert messages_from_create_request({"name": 3, "topic": None, "initial_state": "x"}) == []


def test_create_request_text_is_asked_in_a_bounded_number_of_calls() -> None:
    """Many event types in `initial_state`: at most `MAX_CREATE_MESSAGES` messages, none of the text lost."""
    state = [{"type": f"fr.gouv.t{i}", "state_key": "", "content": {"t": f"texte {i}"}} for i in range(20)]
    messages = messages_from_create_request({"initial_state": state, "name": "Nom"})
    assert len(messages) == MAX_CREATE_MESSAGES
    everything = "\n".join(m.body for m in messages)
    assert all(f"texte {i}" in everything for i in range(20)) and "Nom" in everything
