"""`RoomguardModule._decide`: decisions become Synapse answers; no decision follows the failure mode; nothing leaks."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from synapse.module_api import NOT_SPAM
from synapse.module_api.errors import Codes

from synapse_roomguard._proto.roomguard.v1 import policy_pb2 as pb
from synapse_roomguard.client import RoomguardUnavailableError
from synapse_roomguard.config import FailureMode, parse_config
from synapse_roomguard.module import RoomguardModule, _guest_access_enabled, _is_loopback
from tests.fake_roomguard import allow, deny

SECRET = "DIFFUSION RESTREINTE corps-7f3a"


def module() -> RoomguardModule:
    instance = RoomguardModule.__new__(RoomguardModule)  # the hooks' plumbing, without a homeserver
    instance._config = parse_config({"endpoint": "127.0.0.1:1"})
    return instance


def decide(mode: FailureMode, ask) -> Any:  # NOT_SPAM or (Codes, fields)
    return asyncio.run(module()._decide(action="send", mode=mode, ask=ask, log_fields={"room": "!r:s"}))


def test_allow_is_not_spam() -> None:
    """ALLOW -> NOT_SPAM: Synapse goes on."""

    async def ask():
        return allow()

    assert decide(FailureMode.CLOSED, ask) is NOT_SPAM


def test_deny_is_forbidden_with_reasons() -> None:
    """DENY -> (M_FORBIDDEN, body with the reasons)."""

    async def ask():
        return deny("CLASSIFIED_IN_PUBLIC_ROOM")

    code, fields = decide(FailureMode.OPEN, ask)
    assert code == Codes.FORBIDDEN
    assert fields["fr.roomguard.reason_codes"] == ["CLASSIFIED_IN_PUBLIC_ROOM"]


@pytest.mark.parametrize(
    "failure",
    [RoomguardUnavailableError("UNAVAILABLE"), TypeError(f"bad value {SECRET!r}"), LookupError("room")],
)
def test_no_decision_follows_failure_mode_and_never_raises(failure: Exception) -> None:
    """Unavailable roomguard or a bug: open -> NOT_SPAM, closed -> ROOMGUARD_UNAVAILABLE; never an exception (a 500)."""

    async def ask():
        raise failure

    assert decide(FailureMode.OPEN, ask) is NOT_SPAM
    code, fields = decide(FailureMode.CLOSED, ask)
    assert code == Codes.FORBIDDEN
    assert fields["fr.roomguard.reason_codes"] == ["ROOMGUARD_UNAVAILABLE"]


def test_exception_text_never_reaches_the_log(caplog: pytest.LogCaptureFixture) -> None:
    """An error whose message quotes content is logged by type and place only."""

    async def ask():
        raise TypeError(f"bad value {SECRET!r}")

    with caplog.at_level(logging.DEBUG, logger="synapse_roomguard"):
        decide(FailureMode.OPEN, ask)
    assert "TypeError at test_decide.py" in caplog.text
    assert "corps-7f3a" not in caplog.text


@pytest.mark.parametrize("status", ["RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED", "UNAUTHENTICATED", "OUT_OF_RANGE"])
def test_roomguard_refusal_statuses_follow_failure_mode(status: str, caplog: pytest.LogCaptureFixture) -> None:
    """Load shed, deadline, token refused, request too large: no decision, so the hook's failure mode applies; the
    log names the status. UNAUTHENTICATED is a misconfiguration: logged at ERROR (the others at WARNING)."""

    async def ask():
        raise RoomguardUnavailableError(status)

    with caplog.at_level(logging.DEBUG, logger="synapse_roomguard"):
        assert decide(FailureMode.OPEN, ask) is NOT_SPAM
        code, fields = decide(FailureMode.CLOSED, ask)
    assert code == Codes.FORBIDDEN
    assert fields["fr.roomguard.reason_codes"] == ["ROOMGUARD_UNAVAILABLE"]
    records = [r for r in caplog.records if status in r.getMessage()]
    assert [r.getMessage().rsplit(": ", 1)[1] for r in records] == ["allowed (fail-open)", "refused (fail-closed)"]
    expected = logging.ERROR if status == "UNAUTHENTICATED" else logging.WARNING
    assert {r.levelno for r in records} == {expected}
    if status == "UNAUTHENTICATED":
        assert "auth_token_file" in records[0].getMessage()  # the log says what to fix


def shadow(policy_effect: pb.Effect, *codes: str) -> pb.Decision:
    return pb.Decision(
        effect=pb.EFFECT_ALLOW,
        shadow=True,
        policy_effect=policy_effect,
        reasons=[pb.Reason(code=c, rule=c.lower(), message=f"message {SECRET}") for c in codes],
        decision_id="dec-shadow",
    )


def test_shadow_decision_that_would_deny_is_allowed_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Shadow mode: the module acts on `effect` (ALLOW) and logs at INFO that enforcing would have denied, with the
    codes and the decision id, never the reasons' text."""

    async def ask():
        return shadow(pb.EFFECT_DENY, "CLASSIFIED_IN_UNENCRYPTED_ROOM", "CLASSIFIED_IN_PUBLIC_ROOM")

    with caplog.at_level(logging.DEBUG, logger="synapse_roomguard"):
        assert decide(FailureMode.CLOSED, ask) is NOT_SPAM
    [record] = [r for r in caplog.records if "shadow" in r.getMessage()]
    assert record.levelno == logging.INFO
    message = record.getMessage()
    assert "would have denied" in message
    assert "decision=dec-shadow" in message
    assert "codes=CLASSIFIED_IN_UNENCRYPTED_ROOM,CLASSIFIED_IN_PUBLIC_ROOM" in message
    assert "corps-7f3a" not in caplog.text


def test_shadow_decision_that_would_allow_is_not_logged_at_info(caplog: pytest.LogCaptureFixture) -> None:
    """A shadow ALLOW is an ordinary allow (DEBUG only)."""

    async def ask():
        return shadow(pb.EFFECT_ALLOW, "ALLOWED")

    with caplog.at_level(logging.DEBUG, logger="synapse_roomguard"):
        assert decide(FailureMode.CLOSED, ask) is NOT_SPAM
    assert [r.levelno for r in caplog.records] == [logging.DEBUG]


@pytest.mark.parametrize(
    ("endpoint", "loopback"),
    [
        ("127.0.0.1:50051", True),
        ("localhost:50051", True),
        ("dns:///localhost:50051", True),
        ("127.0.0.2:50051", True),
        ("dns://10.96.0.10/127.0.0.3:50051", True),
        ("[::1]:50051", True),
        ("roomguard.internal:50051", False),
        ("dns:///roomguard.internal:50051", False),
        ("10.0.0.5:50051", False),
    ],
)
def test_plaintext_token_warning_spares_loopback(endpoint: str, loopback: bool) -> None:
    """The start-up warning about a token sent in plaintext is for endpoints off this host only."""
    assert _is_loopback(endpoint) is loopback


class _Registration:
    def __init__(self, allow_guest_access: object) -> None:
        self.allow_guest_access = allow_guest_access


class _HomeserverWithRegistration:
    def __init__(self, allow_guest_access: object) -> None:
        self.config = type("Config", (), {"registration": _Registration(allow_guest_access)})()


class _Api:
    def __init__(self, hs: object) -> None:
        self._hs = hs


@pytest.mark.parametrize("allowed", [True, False])
def test_guest_access_follows_synapse_allow_guest_access(allowed: bool) -> None:
    """Without the module option, the homeserver's own `allow_guest_access` says whether guests exist."""
    api: Any = _Api(_HomeserverWithRegistration(allowed))
    assert _guest_access_enabled(api, parse_config({"endpoint": "x:1"})) is allowed


@pytest.mark.parametrize("option", [True, False])
def test_guest_access_option_overrides_synapse(option: bool) -> None:
    """`guest_access_enabled` wins over Synapse's setting, whichever way."""
    api: Any = _Api(_HomeserverWithRegistration(not option))
    assert _guest_access_enabled(api, parse_config({"endpoint": "x:1", "guest_access_enabled": option})) is option


def test_unreadable_guest_setting_assumes_guests_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    """A Synapse that moved the setting: assume guests can join (the strict reading) and name the option to set."""
    api: Any = _Api(object())
    with caplog.at_level(logging.WARNING, logger="synapse_roomguard"):
        assert _guest_access_enabled(api, parse_config({"endpoint": "x:1"})) is True
    assert "guest_access_enabled" in caplog.text
