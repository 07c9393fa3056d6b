"""`parse_config`: the `config:` block of the module in `homeserver.yaml`."""

from __future__ import annotations

import pytest
from synapse.config._base import ConfigError

from synapse_roomguard import RoomguardModule
from synapse_roomguard.config import FailureMode, parse_config


def test_minimal_config_gets_documented_defaults() -> None:
    """Only `endpoint` is required; the defaults are those the README documents."""
    config = RoomguardModule.parse_config({"endpoint": "127.0.0.1:50051"})
    assert config.endpoint == "127.0.0.1:50051"
    assert config.timeout_s == pytest.approx(0.2)
    assert config.failure_mode.message_send is FailureMode.OPEN
    assert config.failure_mode.room_publish is FailureMode.CLOSED
    assert config.failure_mode.room_create is FailureMode.CLOSED
    assert config.reconnect_backoff_max_s == pytest.approx(1.0)
    assert config.room_cache_size == 10_000
    assert config.max_concurrent_calls == 16
    assert config.directory_cache_ttl_s == 10


def test_every_key_can_be_set() -> None:
    """Every documented key is read."""
    config = parse_config(
        {
            "endpoint": "unix:/run/roomguard.sock",
            "timeout_ms": 150,
            "failure_mode": {"message_send": "closed", "room_publish": "open", "room_create": "open"},
            "reconnect_backoff_max_ms": 5000,
            "room_cache_size": 50,
            "max_concurrent_calls": 4,
            "directory_cache_ttl_seconds": 0,
        }
    )
    assert config.endpoint == "unix:/run/roomguard.sock"
    assert config.timeout_s == pytest.approx(0.15)
    assert config.failure_mode.message_send is FailureMode.CLOSED
    assert config.failure_mode.room_publish is FailureMode.OPEN
    assert config.failure_mode.room_create is FailureMode.OPEN
    assert config.reconnect_backoff_max_s == pytest.approx(5.0)
    assert config.room_cache_size == 50
    assert config.max_concurrent_calls == 4
    assert config.directory_cache_ttl_s == 0


def test_failure_modes_can_be_set_one_at_a_time() -> None:
    """A partial `failure_mode` keeps the defaults of the hooks it does not name."""
    config = parse_config({"endpoint": "x:1", "failure_mode": {"message_send": "closed"}})
    assert config.failure_mode.message_send is FailureMode.CLOSED
    assert config.failure_mode.room_publish is FailureMode.CLOSED


@pytest.mark.parametrize(
    ("config", "named_key"),
    [
        ({}, "`endpoint`"),
        (None, "`endpoint`"),
        ({"endpoint": ""}, "`endpoint`"),
        ({"endpoint": 50051}, "`endpoint`"),
        ({"endpoint": "127.0.0.1: 50051"}, "`endpoint`"),
        ({"endpoint": "x:1", "timeout_ms": 0}, "`timeout_ms`"),
        ({"endpoint": "x:1", "timeout_ms": "200"}, "`timeout_ms`"),
        ({"endpoint": "x:1", "timeout_ms": 0.5}, "`timeout_ms`"),
        ({"endpoint": "x:1", "timeout_ms": True}, "`timeout_ms`"),
        ({"endpoint": "x:1", "timeout_ms": 600_000}, "`timeout_ms`"),
        ({"endpoint": "x:1", "failure_mode": "open"}, "`failure_mode`"),
        ({"endpoint": "x:1", "failure_mode": {"message_send": "fail-open"}}, "`failure_mode.message_send`"),
        ({"endpoint": "x:1", "failure_mode": {"room_publish": True}}, "`failure_mode.room_publish`"),
        ({"endpoint": "x:1", "failure_mode": {"message": "open"}}, "`failure_mode.message`"),
        ({"endpoint": "x:1", "reconnect_backoff_max_ms": -1}, "`reconnect_backoff_max_ms`"),
        ({"endpoint": "x:1", "room_cache_size": 0}, "`room_cache_size`"),
        ({"endpoint": "x:1", "max_concurrent_calls": 0}, "`max_concurrent_calls`"),
        ({"endpoint": "x:1", "room_cache_ttl_seconds": 60}, "`room_cache_ttl_seconds`"),
        ({"endpoint": "x:1", "directory_cache_ttl_seconds": -1}, "`directory_cache_ttl_seconds`"),
        ({"endpoint": "x:1", "timeout": 200}, "`timeout`"),
    ],
)
def test_bad_config_is_refused_naming_the_key(config: object, named_key: str) -> None:
    """A bad value, a missing required key or an unknown (misspelt) key stops Synapse with a ConfigError naming it."""
    with pytest.raises(ConfigError) as raised:
        parse_config(config)  # type: ignore[arg-type]
    assert named_key in str(raised.value)


def test_config_that_is_not_a_mapping_is_refused() -> None:
    """`config: [..]` is a ConfigError, not a crash."""
    with pytest.raises(ConfigError):
        parse_config(["endpoint"])  # type: ignore[arg-type]
