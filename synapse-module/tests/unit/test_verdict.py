"""How a decision becomes Synapse's answer, and what the 403 body says."""

from __future__ import annotations

import pytest

from synapse_roomguard._proto.roomguard.v1 import policy_pb2 as pb
from synapse_roomguard.verdict import (
    UNAVAILABLE_CODE,
    UndecidableError,
    is_allowed,
    merge_refusals,
    refusal_from_decision,
    unavailable_refusal,
)


def test_deny_body_carries_first_message_every_code_and_decision_id() -> None:
    """The body: first reason's message as `error`, all codes in order, the decision id and policy version."""
    decision = pb.Decision(
        effect=pb.EFFECT_DENY,
        reasons=[
            pb.Reason(code="CLASSIFIED_IN_UNENCRYPTED_ROOM", rule="r1", message="Premier motif"),
            pb.Reason(code="CLASSIFIED_IN_PUBLIC_ROOM", rule="r2", message="Second motif"),
        ],
        decision_id="0192-abc",
        policy_version="sha256:1",
    )
    fields = refusal_from_decision(decision).fields
    assert fields["error"] == "Premier motif"
    assert fields["fr.roomguard.reason_codes"] == ["CLASSIFIED_IN_UNENCRYPTED_ROOM", "CLASSIFIED_IN_PUBLIC_ROOM"]
    assert fields["fr.roomguard.reasons"][1] == {"code": "CLASSIFIED_IN_PUBLIC_ROOM", "message": "Second motif"}
    assert fields["fr.roomguard.decision_id"] == "0192-abc"
    assert fields["fr.roomguard.policy_version"] == "sha256:1"


def test_deny_without_reasons_still_explains() -> None:
    """A deny with no reason (a roomguard bug) still gives the user a sentence and a code."""
    fields = refusal_from_decision(pb.Decision(effect=pb.EFFECT_DENY, decision_id="d")).fields
    assert fields["error"]
    assert fields["fr.roomguard.reason_codes"] == ["DENIED_WITHOUT_REASON"]


def test_unavailable_refusal_has_its_own_code_and_no_decision_id() -> None:
    """Fail-closed refusals say roomguard was unavailable; nobody decided, so there is no decision id."""
    fields = unavailable_refusal().fields
    assert fields["fr.roomguard.reason_codes"] == [UNAVAILABLE_CODE]
    assert fields["fr.roomguard.decision_id"] == ""
    assert "indisponible" in fields["error"]


def test_effect_allow_and_deny() -> None:
    """ALLOW lets through, DENY refuses."""
    assert is_allowed(pb.Decision(effect=pb.EFFECT_ALLOW))
    assert not is_allowed(pb.Decision(effect=pb.EFFECT_DENY))


def test_unspecified_effect_is_not_a_decision() -> None:
    """EFFECT_UNSPECIFIED is neither: it goes to the hook's failure mode."""
    with pytest.raises(UndecidableError):
        is_allowed(pb.Decision())


def _deny(decision_id: str, *codes: str) -> pb.Decision:
    return pb.Decision(
        effect=pb.EFFECT_DENY,
        reasons=[pb.Reason(code=c, rule=c.lower(), message=f"Motif {c}") for c in codes],
        decision_id=decision_id,
        policy_version="sha256:1",
    )


def test_one_refusal_is_not_merged() -> None:
    """A single refusal keeps its body as is (no `decision_ids`)."""
    refusal = refusal_from_decision(_deny("d1", "A"))
    assert merge_refusals([refusal]) is refusal


def test_refusals_of_one_request_merge_every_reason_and_decision() -> None:
    """createRoom refused as a publication and as a state change: every reason in order, the first message as
    `error`, the first decision id, and every decision id."""
    merged = merge_refusals(
        [
            refusal_from_decision(_deny("d-state", "ENCRYPTED_ROOM_CANNOT_BE_PUBLIC")),
            refusal_from_decision(_deny("d-publish", "ENCRYPTED_ROOM_NOT_PUBLISHABLE", "ROOM_WORLD_READABLE")),
        ]
    ).fields
    assert merged["fr.roomguard.reason_codes"] == [
        "ENCRYPTED_ROOM_CANNOT_BE_PUBLIC",
        "ENCRYPTED_ROOM_NOT_PUBLISHABLE",
        "ROOM_WORLD_READABLE",
    ]
    assert merged["error"] == merged["fr.roomguard.reasons"][0]["message"] == "Motif ENCRYPTED_ROOM_CANNOT_BE_PUBLIC"
    assert merged["fr.roomguard.decision_id"] == "d-state"
    assert merged["fr.roomguard.decision_ids"] == ["d-state", "d-publish"]
    assert merged["fr.roomguard.policy_version"] == "sha256:1"


def test_merged_refusals_name_a_code_once() -> None:
    """Two fail-closed checks of one request give one ROOMGUARD_UNAVAILABLE, and no decision id (nobody decided);
    a decision next to one keeps its id."""
    twice = merge_refusals([unavailable_refusal(), unavailable_refusal()]).fields
    assert twice["fr.roomguard.reason_codes"] == [UNAVAILABLE_CODE]
    assert twice["fr.roomguard.decision_id"] == ""
    assert twice["fr.roomguard.decision_ids"] == []
    mixed = merge_refusals([unavailable_refusal(), refusal_from_decision(_deny("d2", "B"))]).fields
    assert mixed["fr.roomguard.reason_codes"] == [UNAVAILABLE_CODE, "B"]
    assert mixed["fr.roomguard.decision_id"] == "d2"
    assert "indisponible" in mixed["error"]
