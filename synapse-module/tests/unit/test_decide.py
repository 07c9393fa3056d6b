"""`RoomguardModule._decide`: decisions become Synapse answers; no decision follows the failure mode; nothing leaks."""

from __future__ import annotations

import asyncio
import logging

import pytest
from synapse.module_api import NOT_SPAM
from synapse.module_api.errors import Codes

from synapse_roomguard.client import RoomguardUnavailableError
from synapse_roomguard.config import FailureMode, parse_config
from synapse_roomguard.module import RoomguardModule
from tests.fake_roomguard import allow, deny

SECRET = "DIFFUSION RESTREINTE corps-7f3a"


def module() -> RoomguardModule:
    instance = RoomguardModule.__new__(RoomguardModule)  # the hooks' plumbing, without a homeserver
    instance._config = parse_config({"endpoint": "127.0.0.1:1"})
    return instance


def decide(mode: FailureMode, ask) -> object:
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
