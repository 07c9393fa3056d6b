"""How a decision becomes Synapse's answer, and what the 403 body says."""

from __future__ import annotations

import pytest

from synapse_roomguard._proto.roomguard.v1 import policy_pb2 as pb
from synapse_roomguard.verdict import (
    UNAVAILABLE_CODE,
    UndecidableError,
    is_allowed,
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
