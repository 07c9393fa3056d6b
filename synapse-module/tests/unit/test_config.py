"""`parse_config`: the `config:` block of the module in `homeserver.yaml`."""

from __future__ import annotations

import pytest
from synapse.config._base import ConfigError

from synapse_roomguard import RoomguardModule
from synapse_roomguard.config import FailureMode, parse_config
from synapse_roomguard.endpoint import DnsEndpoint, UnixEndpoint


def test_minimal_config_gets_documented_defaults() -> None:
    """Only `endpoint` is required; the defaults are those the README documents."""
    config = RoomguardModule.parse_config({"endpoint": "127.0.0.1:50051"})
    assert config.endpoint == "127.0.0.1:50051"
    assert config.timeout_s == pytest.approx(0.2)
    assert config.failure_mode.message_send is FailureMode.OPEN
    assert config.failure_mode.room_publish is FailureMode.CLOSED
    assert config.failure_mode.room_create is FailureMode.CLOSED
    assert config.failure_mode.room_join is FailureMode.OPEN
    assert config.failure_mode.state_change is FailureMode.CLOSED
    assert config.failure_mode.private_room_create is FailureMode.OPEN
    assert config.reconnect_backoff_max_s == pytest.approx(1.0)
    assert config.room_cache_size == 10_000
    assert config.max_concurrent_calls == 16
    assert config.directory_cache_ttl_s == 10
    assert config.guest_access_enabled is None  # follow Synapse's own `allow_guest_access`
    assert config.failure_mode.media_upload is FailureMode.OPEN
    assert config.media_timeout_s == pytest.approx(5.0)
    assert config.check_remote_media is True


def test_every_key_can_be_set() -> None:
    """Every documented key is read."""
    config = parse_config(
        {
            "endpoint": "unix:/run/roomguard.sock",
            "timeout_ms": 150,
            "failure_mode": {
                "message_send": "closed",
                "room_publish": "open",
                "room_create": "open",
                "room_join": "closed",
                "state_change": "open",
                "private_room_create": "closed",
                "media_upload": "closed",
            },
            "reconnect_backoff_max_ms": 5000,
            "room_cache_size": 50,
            "max_concurrent_calls": 4,
            "directory_cache_ttl_seconds": 0,
            "guest_access_enabled": False,
            "media_timeout_ms": 12_000,
            "check_remote_media": False,
        }
    )
    assert config.endpoint == "unix:/run/roomguard.sock"
    assert config.timeout_s == pytest.approx(0.15)
    assert config.failure_mode.message_send is FailureMode.CLOSED
    assert config.failure_mode.room_publish is FailureMode.OPEN
    assert config.failure_mode.room_create is FailureMode.OPEN
    assert config.failure_mode.room_join is FailureMode.CLOSED
    assert config.failure_mode.state_change is FailureMode.OPEN
    assert config.failure_mode.private_room_create is FailureMode.CLOSED
    assert config.reconnect_backoff_max_s == pytest.approx(5.0)
    assert config.room_cache_size == 50
    assert config.max_concurrent_calls == 4
    assert config.directory_cache_ttl_s == 0
    assert config.guest_access_enabled is False
    assert config.failure_mode.media_upload is FailureMode.CLOSED
    assert config.media_timeout_s == pytest.approx(12.0)
    assert config.check_remote_media is False


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
        ({"endpoint": "x:1", "failure_mode": {"room_join": "shut"}}, "`failure_mode.room_join`"),
        ({"endpoint": "x:1", "failure_mode": {"state_change": None}}, "`failure_mode.state_change`"),
        ({"endpoint": "x:1", "failure_mode": {"private_room_create": 0}}, "`failure_mode.private_room_create`"),
        ({"endpoint": "x:1", "failure_mode": {"join": "open"}}, "`failure_mode.join`"),
        ({"endpoint": "x:1", "failure_mode": {1: "open"}}, "`failure_mode.1`"),
        ({"endpoint": "x:1", 7: "x", "zz": 1}, "`7`"),
        ({"endpoint": "x:1", "reconnect_backoff_max_ms": -1}, "`reconnect_backoff_max_ms`"),
        ({"endpoint": "x:1", "room_cache_size": 0}, "`room_cache_size`"),
        ({"endpoint": "x:1", "max_concurrent_calls": 0}, "`max_concurrent_calls`"),
        ({"endpoint": "x:1", "room_cache_ttl_seconds": 60}, "`room_cache_ttl_seconds`"),
        ({"endpoint": "x:1", "directory_cache_ttl_seconds": -1}, "`directory_cache_ttl_seconds`"),
        ({"endpoint": "x:1", "timeout": 200}, "`timeout`"),
        ({"endpoint": "x:1", "guest_access_enabled": "yes"}, "`guest_access_enabled`"),
        ({"endpoint": "x:1", "guest_access_enabled": 1}, "`guest_access_enabled`"),
        ({"endpoint": "x:1", "media_timeout_ms": 0}, "`media_timeout_ms`"),
        ({"endpoint": "x:1", "media_timeout_ms": "5s"}, "`media_timeout_ms`"),
        ({"endpoint": "x:1", "media_timeout_ms": 300_001}, "`media_timeout_ms`"),
        ({"endpoint": "x:1", "check_remote_media": "no"}, "`check_remote_media`"),
        ({"endpoint": "x:1", "check_remote_media": 0}, "`check_remote_media`"),
        ({"endpoint": "x:1", "failure_mode": {"media_upload": "block"}}, "`failure_mode.media_upload`"),
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


# === caller token ===

TOKEN = "rg-7f3a9c0d1e2b4a5f"


def test_no_token_by_default() -> None:
    """Without `auth_token_file` or `auth_token`, calls carry no `authorization` metadata."""
    assert parse_config({"endpoint": "x:1"}).auth_token is None


def test_token_file_is_read_stripped_and_never_shown(tmp_path) -> None:
    """`auth_token_file` is read at start-up; its final newline is not part of the token; `repr` never shows it."""
    path = tmp_path / "token"
    path.write_text(f"  {TOKEN}\n")
    config = parse_config({"endpoint": "x:1", "auth_token_file": str(path)})
    assert config.auth_token == TOKEN
    assert TOKEN not in repr(config)


def test_inline_token_is_read_and_never_shown() -> None:
    """`auth_token` (inline) gives the same token; `repr` never shows it."""
    config = parse_config({"endpoint": "x:1", "auth_token": f"{TOKEN}\n"})
    assert config.auth_token == TOKEN
    assert TOKEN not in repr(config)


@pytest.mark.parametrize(
    ("token_config", "named_key"),
    [
        ({"auth_token_file": "/nonexistent/roomguard-token"}, "`auth_token_file`"),
        ({"auth_token_file": "EMPTY"}, "`auth_token_file`"),
        ({"auth_token_file": "BLANK"}, "`auth_token_file`"),
        ({"auth_token_file": "TWO_LINES"}, "`auth_token_file`"),
        ({"auth_token_file": "NOT_ASCII"}, "`auth_token_file`"),
        ({"auth_token_file": ""}, "`auth_token_file`"),
        ({"auth_token_file": 7}, "`auth_token_file`"),
        ({"auth_token": ""}, "`auth_token`"),
        ({"auth_token": "   "}, "`auth_token`"),
        ({"auth_token": 12345}, "`auth_token`"),
        ({"auth_token": "tab\there"}, "`auth_token`"),
        ({"auth_token": "jeton-é"}, "`auth_token`"),
        ({"auth_token": TOKEN, "auth_token_file": "GOOD"}, "`auth_token`"),
        ({"auth_tokenfile": "GOOD"}, "`auth_tokenfile`"),
    ],
)
def test_bad_token_config_is_refused_naming_the_key(tmp_path, token_config: dict, named_key: str) -> None:
    """Unreadable, empty or unusable token, or both keys at once: a ConfigError naming the key, never the token."""
    files = {"EMPTY": "", "BLANK": " \n\n", "TWO_LINES": "abc\ndef\n", "NOT_ASCII": "jeton-é\n", "GOOD": TOKEN}
    for name, content in files.items():
        (tmp_path / name).write_text(content, encoding="utf8")
    resolved = {k: str(tmp_path / v) if isinstance(v, str) and v in files else v for k, v in token_config.items()}
    with pytest.raises(ConfigError) as raised:
        parse_config({"endpoint": "x:1", **resolved})
    assert named_key in str(raised.value)
    assert TOKEN not in str(raised.value)
    assert "tab\there" not in str(raised.value)


def test_tls_on_a_unix_socket_is_refused(tmp_path) -> None:
    """roomguard's Unix socket listener is plaintext: `tls` with a `unix:` endpoint is a ConfigError naming `tls`."""
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    with pytest.raises(ConfigError) as raised:
        parse_config({"endpoint": "unix:/run/roomguard.sock", "tls": {"ca_file": str(ca)}})
    assert "`tls`" in str(raised.value)


def test_unix_socket_endpoints_are_recognised() -> None:
    """`unix:/path`, `unix:///path` and `unix-abstract:` are Unix sockets; `host:port` and `dns:` are not."""
    assert parse_config({"endpoint": "unix:/run/roomguard.sock"}).is_unix_socket
    assert parse_config({"endpoint": "unix:///run/roomguard.sock"}).is_unix_socket
    assert parse_config({"endpoint": "unix-abstract:roomguard"}).is_unix_socket
    assert not parse_config({"endpoint": "127.0.0.1:50051"}).is_unix_socket
    assert not parse_config({"endpoint": "dns:///roomguard.internal:50051"}).is_unix_socket


@pytest.mark.parametrize(
    ("endpoint", "target"),
    [
        ("127.0.0.1:50051", DnsEndpoint("127.0.0.1", 50051)),
        ("roomguard.internal:50051", DnsEndpoint("roomguard.internal", 50051)),
        ("dns:///roomguard-headless:50051", DnsEndpoint("roomguard-headless", 50051)),
        (
            "dns:///roomguard-headless.roomguard.svc.cluster.local:50051",
            DnsEndpoint("roomguard-headless.roomguard.svc.cluster.local", 50051),
        ),
        ("dns://10.96.0.10/roomguard-headless:50051", DnsEndpoint("roomguard-headless", 50051, ("10.96.0.10", 53))),
        ("dns://127.0.0.1:5353/rg.test:1", DnsEndpoint("rg.test", 1, ("127.0.0.1", 5353))),
        ("[::1]:50051", DnsEndpoint("::1", 50051)),
        ("unix:/run/roomguard.sock", UnixEndpoint("/run/roomguard.sock")),
        ("unix:///run/roomguard.sock", UnixEndpoint("/run/roomguard.sock")),
        ("unix-abstract:roomguard", UnixEndpoint("roomguard", abstract=True)),
    ],
)
def test_endpoint_shapes_are_understood(endpoint: str, target: object) -> None:
    """`endpoint` is a name or address with a port (resolved through DNS, every address a replica), optionally asking
    a given DNS server, or a Unix socket."""
    assert parse_config({"endpoint": endpoint}).target == target


@pytest.mark.parametrize(
    ("endpoint", "says"),
    [
        ("roomguard-headless", "a port is required"),
        ("dns:///roomguard-headless", "a port is required"),
        ("dns://roomguard-headless:50051", "three slashes"),
        ("roomguard:0", "port `0`"),
        ("roomguard:65536", "port `65536`"),
        ("roomguard:grpc", "port `grpc`"),
        ("::1:50051", "brackets"),
        ("[::1:50051", "`]`"),
        ("[fe80::zz]:50051", "not an IPv6 address"),
        ("dns:///:50051", "not a host name"),
        ("room_guard!:50051", "not a host name"),
        ("ipv4:10.0.0.1:50051,10.0.0.2:50051", "scheme `ipv4:`"),
        ("http://roomguard:50051", "scheme `http:`"),
        ("unix:run/roomguard.sock", "absolute socket path"),
        ("unix-abstract:", "socket name"),
    ],
)
def test_malformed_endpoint_is_refused_saying_why(endpoint: str, says: str) -> None:
    """A malformed `endpoint` stops Synapse with a ConfigError naming the key, quoting the value and saying what is
    wrong with it, rather than failing every call later."""
    with pytest.raises(ConfigError) as raised:
        parse_config({"endpoint": endpoint})
    message = str(raised.value)
    assert "`endpoint`" in message and f"`{endpoint}`" in message and says in message, message
