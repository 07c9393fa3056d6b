"""What a hook answers Synapse: allow, or a 403 `M_FORBIDDEN` whose JSON body explains why.

Synapse builds the error body as `{"errcode": ..., "error": <its own text>, **extra_fields}` (`synapse.api.errors
.cs_error`), so an `error` key among the extra fields replaces Synapse's generic "rejected as probable spam" with the
first reason's message, and namespaced keys carry what support staff need:

    {
      "errcode": "M_FORBIDDEN",
      "error": "<first reason's message, French, from roomguard's catalogue>",
      "fr.roomguard.reason_codes": ["CLASSIFIED_IN_UNENCRYPTED_ROOM", "CLASSIFIED_IN_PUBLIC_ROOM"],
      "fr.roomguard.reasons": [{"code": "...", "message": "..."}, ...],
      "fr.roomguard.decision_id": "0192...",
      "fr.roomguard.policy_version": "..."
    }

When one client request needed several decisions and more than one refused (a `createRoom` checked as a publication
and as a state change), the body merges them: every reason of every refusal in order (a code once), the first
reason's message as `error`, and `fr.roomguard.decision_ids` listing every decision id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._proto.roomguard.v1 import policy_pb2 as pb

NAMESPACE = "fr.roomguard"
FIELD_REASON_CODES = f"{NAMESPACE}.reason_codes"
FIELD_REASONS = f"{NAMESPACE}.reasons"
FIELD_DECISION_ID = f"{NAMESPACE}.decision_id"
FIELD_POLICY_VERSION = f"{NAMESPACE}.policy_version"
#: Only in a merged refusal: the ids of every decision that refused.
FIELD_DECISION_IDS = f"{NAMESPACE}.decision_ids"

#: Reason code of a refusal made by the module itself because roomguard gave no decision and the hook fails closed.
UNAVAILABLE_CODE = "ROOMGUARD_UNAVAILABLE"
UNAVAILABLE_MESSAGE = (
    "Le service de contrôle des salons (roomguard) est momentanément indisponible : "
    "l'action est refusée par précaution. Réessayez dans quelques instants."
)
#: A deny that names no reason (a roomguard bug): the user still deserves a sentence.
UNEXPLAINED_CODE = "DENIED_WITHOUT_REASON"
UNEXPLAINED_MESSAGE = "Cette action est refusée par la politique de sécurité du serveur."


@dataclass(frozen=True)
class Refusal:
    """A refusal, ready to be returned to Synapse as `(Codes.FORBIDDEN, fields)`."""

    fields: dict[str, Any]

    @property
    def reason_codes(self) -> list[str]:
        return list(self.fields[FIELD_REASON_CODES])


def refusal_from_decision(decision: pb.Decision) -> Refusal:
    """The 403 body for a DENY decision: first reason's message as `error`, every code, the decision id."""
    reasons = [{"code": r.code, "message": r.message} for r in decision.reasons]
    if not reasons:
        reasons = [{"code": UNEXPLAINED_CODE, "message": UNEXPLAINED_MESSAGE}]
    error = reasons[0]["message"] or UNEXPLAINED_MESSAGE
    return Refusal(
        fields={
            "error": error,
            FIELD_REASON_CODES: [r["code"] for r in reasons],
            FIELD_REASONS: reasons,
            FIELD_DECISION_ID: decision.decision_id,
            FIELD_POLICY_VERSION: decision.policy_version,
        }
    )


def unavailable_refusal() -> Refusal:
    """The 403 body of a fail-closed hook when roomguard gave no decision (no decision id: nobody decided)."""
    return Refusal(
        fields={
            "error": UNAVAILABLE_MESSAGE,
            FIELD_REASON_CODES: [UNAVAILABLE_CODE],
            FIELD_REASONS: [{"code": UNAVAILABLE_CODE, "message": UNAVAILABLE_MESSAGE}],
            FIELD_DECISION_ID: "",
            FIELD_POLICY_VERSION: "",
        }
    )


def merge_refusals(refusals: list[Refusal]) -> Refusal:
    """One 403 body for one or more refusals of the same client request (see the module docstring)."""
    if len(refusals) == 1:
        return refusals[0]
    reasons: list[dict[str, str]] = []
    seen: set[str] = set()
    for refusal in refusals:
        for reason in refusal.fields[FIELD_REASONS]:
            if reason["code"] not in seen:
                seen.add(reason["code"])
                reasons.append(reason)
    decision_ids = [r.fields[FIELD_DECISION_ID] for r in refusals if r.fields[FIELD_DECISION_ID]]
    versions = [r.fields[FIELD_POLICY_VERSION] for r in refusals if r.fields[FIELD_POLICY_VERSION]]
    return Refusal(
        fields={
            "error": reasons[0]["message"] or UNEXPLAINED_MESSAGE,
            FIELD_REASON_CODES: [r["code"] for r in reasons],
            FIELD_REASONS: reasons,
            FIELD_DECISION_ID: decision_ids[0] if decision_ids else "",
            FIELD_DECISION_IDS: decision_ids,
            FIELD_POLICY_VERSION: versions[0] if versions else "",
        }
    )


class UndecidableError(Exception):
    """roomguard answered, but not with a usable decision (e.g. `EFFECT_UNSPECIFIED` from a newer/buggy server)."""


def is_allowed(decision: pb.Decision) -> bool:
    """ALLOW -> True, DENY -> False; anything else is not a decision and goes to the hook's failure mode."""
    if decision.effect == pb.EFFECT_ALLOW:
        return True
    if decision.effect == pb.EFFECT_DENY:
        return False
    raise UndecidableError(f"decision {decision.decision_id or '?'} has effect {decision.effect}")
