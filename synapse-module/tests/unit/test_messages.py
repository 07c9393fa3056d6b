"""`message_from_event`: what roomguard's classifier receives for an event."""

from __future__ import annotations

from synapse_roomguard.messages import CHECKED_EVENT_TYPES, message_from_event


def test_checked_event_types_are_messages_stickers_and_encrypted_events() -> None:
    """The hook decides on exactly the three types of issue #3."""
    assert CHECKED_EVENT_TYPES == {"m.room.message", "m.sticker", "m.room.encrypted"}


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
