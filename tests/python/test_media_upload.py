"""CheckMediaUpload through an independent client (grpcio), with documents made by real producers: marked documents
are refused whatever their format, clean ones stored, hostile ones answered within the budget, and the stream's rules
hold (header first, chunks after, every message with a part)."""

import grpc
import pytest

import documents

CHUNK = 64 * 1024


def stream(pb, data, *, request_id="up-1", media_id="mxc://agent.tchap.gouv.fr/AbCdEf", filename="", mimetype=""):
    """The messages a caller sends: the header, then the file in 64 KiB chunks."""
    policy_pb2 = pb[0]
    yield policy_pb2.CheckMediaUploadRequest(
        header=policy_pb2.MediaUploadHeader(
            request_id=request_id,
            media=policy_pb2.Media(media_id=media_id, filename=filename, mimetype=mimetype, size=len(data)),
        )
    )
    for at in range(0, len(data), CHUNK):
        yield policy_pb2.CheckMediaUploadRequest(chunk=data[at : at + CHUNK])


def codes(response):
    return [r.code for r in response.decision.reasons]


MARKED = [
    ("pdf", lambda: documents.pdf(True)),
    ("docx", lambda: documents.docx(True)),
    ("xlsx", lambda: documents.xlsx(True)),
    ("pptx", lambda: documents.pptx(True)),
    ("odt", lambda: documents.odt(True)),
    ("zip", lambda: documents.zipped("note.docx", documents.docx(True))),
]


@pytest.mark.parametrize("fmt,make", MARKED, ids=[m[0] for m in MARKED])
def test_a_marked_document_is_refused_whatever_its_format(stub, pb, fmt, make):
    response = stub.CheckMediaUpload(stream(pb, make()), timeout=10)
    assert response.decision.effect == pb[0].EFFECT_DENY, response
    assert codes(response) == ["CLASSIFIED_DOCUMENT_IN_CLEAR"]
    assert response.decision.classification == "restricted"
    assert response.decision.request_id == "up-1"
    assert response.scan.format == fmt
    assert response.scan.complete, response.scan


CLEAN = [
    ("pdf", lambda: documents.pdf(False)),
    ("docx", lambda: documents.docx(False)),
    ("xlsx", lambda: documents.xlsx(False)),
    ("pptx", lambda: documents.pptx(False)),
    ("odt", lambda: documents.odt(False)),
    ("zip", lambda: documents.zipped("note.docx", documents.docx(False))),
]


@pytest.mark.parametrize("fmt,make", CLEAN, ids=[c[0] for c in CLEAN])
def test_a_clean_document_is_stored_and_its_text_was_read(stub, pb, fmt, make):
    data = make()
    response = stub.CheckMediaUpload(stream(pb, data), timeout=10)
    assert response.decision.effect == pb[0].EFFECT_ALLOW, response
    assert response.decision.classification == "none"
    assert response.scan.format == fmt
    assert response.scan.bytes_read == len(data)
    assert response.scan.text_chars > 20, response.scan
    assert response.scan.complete and response.scan.incomplete_reason == ""


def test_a_broken_image_is_read_by_its_name_only(stub, pb):
    png = b"\x89PNG\r\n\x1a\n" + bytes(2000)
    response = stub.CheckMediaUpload(stream(pb, png, filename="photo.png"), timeout=10)
    assert response.decision.effect == pb[0].EFFECT_ALLOW
    assert response.scan.format == "png"
    assert response.scan.ocr_pages == 0 and not response.scan.complete
    named = stub.CheckMediaUpload(stream(pb, png, filename="DR_plan.png"), timeout=10)
    assert named.decision.effect == pb[0].EFFECT_DENY


def test_a_zip_bomb_is_answered_within_the_budget(stub, pb):
    # An answer at all proves the budget held: past media.timeout_ms (4 s) plus the layer's backstop (1 s) the call
    # would end DEADLINE_EXCEEDED instead.
    bomb = documents.zip_bomb(1 << 30)
    response = stub.CheckMediaUpload(stream(pb, bomb), timeout=10)
    assert response.scan.format == "zip"
    assert not response.scan.complete
    assert response.scan.incomplete_reason in ("size_limit", "time_limit")


def test_a_marking_read_before_the_size_limit_still_counts(stub, pb):
    """Padding a marked text past what is read must not hide what was read."""
    data = b"DIFFUSION RESTREINTE\n" + b"a" * 200_000
    response = stub.CheckMediaUpload(stream(pb, data), timeout=10)
    assert response.decision.effect == pb[0].EFFECT_DENY


def test_an_empty_stream_is_invalid(stub, pb):
    with pytest.raises(grpc.RpcError) as err:
        stub.CheckMediaUpload(iter([]), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "header: required" in err.value.details()


def test_a_first_message_without_header_is_invalid(stub, pb):
    with pytest.raises(grpc.RpcError) as err:
        stub.CheckMediaUpload(iter([pb[0].CheckMediaUploadRequest(chunk=b"abc")]), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "header: required" in err.value.details()


def test_a_second_header_is_invalid(stub, pb):
    messages = list(stream(pb, b"hello"))
    with pytest.raises(grpc.RpcError) as err:
        stub.CheckMediaUpload(iter(messages + messages[:1]), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "header: only the first message carries it" in err.value.details()


def test_a_message_without_part_is_invalid(stub, pb):
    messages = list(stream(pb, b"hello")) + [pb[0].CheckMediaUploadRequest()]
    with pytest.raises(grpc.RpcError) as err:
        stub.CheckMediaUpload(iter(messages), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "part: required" in err.value.details()


def test_a_bad_media_id_names_the_field(stub, pb):
    with pytest.raises(grpc.RpcError) as err:
        stub.CheckMediaUpload(stream(pb, b"x", media_id="https://example.org/x"), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith("header.media.media_id:")


def test_message_decisions_are_not_starved_by_uploads(stub, pb):
    """Uploads have their own slots and budget: while several large scans run, a message decision is answered."""
    policy_pb2 = pb[0]
    big = documents.pdf(False, pages=150)
    futures = [stub.CheckMediaUpload.future(stream(pb, big), timeout=20) for _ in range(6)]
    # Answered at all means answered within limits.request_timeout_ms (1 s), or it would be DEADLINE_EXCEEDED.
    send = stub.CheckMessageSend(
        policy_pb2.CheckMessageSendRequest(
            sender=policy_pb2.Subject(user_id="@alice:agent.tchap.gouv.fr"),
            room=policy_pb2.Room(
                room_id="!r:agent.tchap.gouv.fr",
                join_rule=policy_pb2.JOIN_RULE_INVITE,
                history_visibility=policy_pb2.HISTORY_VISIBILITY_SHARED,
                encrypted=True,
            ),
            message=policy_pb2.Message(event_type="m.room.encrypted"),
        ),
        timeout=5,
    )
    assert send.decision.effect == policy_pb2.EFFECT_ALLOW
    # Six uploads for four slots: on a loaded machine the last ones may be refused busy, which is the contract
    # (RESOURCE_EXHAUSTED after a quarter of the budget), never a hang; the first four are answered.
    answered = 0
    for future in futures:
        try:
            future.result()
            answered += 1
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err
    assert answered >= 4
