"""The module's configuration: one frozen dataclass, parsed and validated before Synapse finishes starting.

Every error is a Synapse `ConfigError` whose message names the offending key with its full path under the module's
`config:` block (e.g. `failure_mode.room_publish`), so an operator can fix `homeserver.yaml` without reading code.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .endpoint import Endpoint, EndpointError, UnixEndpoint, parse_endpoint

try:  # The module always runs inside Synapse; the fallback only serves tooling that imports this file alone.
    from synapse.config._base import ConfigError
except ImportError:  # pragma: no cover

    class ConfigError(Exception):  # type: ignore[no-redef]
        """Stand-in for `synapse.config._base.ConfigError`."""

        def __init__(self, msg: str, path: Any = None) -> None:
            super().__init__(msg)
            self.msg = msg
            self.path = path


# The module's keys live under `modules: [{module: ..., config: {...}}]`: Synapse's ConfigError `path` renders them as
# `modules.<n>.config.<key>`, but we do not know <n>, so the message itself spells the key.
_PREFIX = "synapse_roomguard"


class FailureMode(enum.Enum):
    """What a hook does when roomguard cannot give a decision in time (down, deadline exceeded, internal error)."""

    #: Let the action through and log a warning: availability of the homeserver wins.
    OPEN = "open"
    #: Refuse the action with 403 `M_FORBIDDEN` and reason code `ROOMGUARD_UNAVAILABLE`: the policy wins.
    CLOSED = "closed"


@dataclass(frozen=True)
class FailureModes:
    """One failure mode per hook: the stakes differ (see the README's "Failure modes")."""

    #: `check_event_for_spam`: constant traffic, a refusal blocks conversation for everyone.
    message_send: FailureMode = FailureMode.OPEN
    #: `user_may_publish_room`: rare and high-stakes, a wrongly listed room is visible to the whole federation.
    room_publish: FailureMode = FailureMode.CLOSED
    #: `user_may_create_room` with `visibility: public`: publishing by another door, same stakes as `room_publish`.
    room_create: FailureMode = FailureMode.CLOSED
    #: `user_may_join_room`: joining is everyday traffic (invitations, direct chats), like sending.
    room_join: FailureMode = FailureMode.OPEN
    #: `check_event_for_spam` on join rules, history visibility, guest access, encryption and access rules: rare,
    #: deliberate, and a wrong change opens a room to people who must not read it.
    state_change: FailureMode = FailureMode.CLOSED
    #: `user_may_create_room` without `visibility: public`: an outage must not stop people from creating direct chats.
    private_room_create: FailureMode = FailureMode.OPEN
    #: `check_media_file_for_spam`: attachments are everyday traffic like messages; a refused upload is lost work.
    media_upload: FailureMode = FailureMode.OPEN


@dataclass(frozen=True)
class TlsConfig:
    """TLS towards roomguard: the trust anchor, and optionally a client certificate (mutual TLS).

    The files are read when Synapse starts, so a wrong path stops it with a ConfigError; their content is kept out of
    `repr` so that a logged config never shows a private key.
    """

    #: PEM certificates that roomguard's certificate must chain to (key `tls.ca_file`).
    root_certificates: bytes = field(repr=False)
    #: PEM client certificate chain and private key for mutual TLS (keys `tls.cert_file`, `tls.key_file`).
    certificate_chain: bytes | None = field(default=None, repr=False)
    private_key: bytes | None = field(default=None, repr=False)
    #: Name checked in roomguard's certificate instead of the endpoint's host (key `tls.server_name`).
    server_name: str | None = None


@dataclass(frozen=True)
class RoomguardConfig:
    """The validated module configuration."""

    #: roomguard's address as written (`host:port`, `dns:///host:port`, `dns://dns-server/host:port`, `unix:/path`),
    #: validated by `parse_endpoint`; a name resolving to several addresses is several replicas, used round-robin.
    endpoint: str
    #: Deadline of every roomguard call, in seconds (config key `timeout_ms`, default 200 ms).
    timeout_s: float = 0.2
    #: Per-hook behaviour when roomguard gives no decision.
    failure_mode: FailureModes = FailureModes()
    #: Deadline of a whole `CheckMediaUpload` call (queueing, streaming the file, roomguard reading it), in seconds
    #: (config key `media_timeout_ms`, default 5 s): documents take longer to read than messages.
    media_timeout_s: float = 5.0
    #: Whether media fetched from other homeservers is checked too (key `check_remote_media`, default on): a marked
    #: document downloaded from elsewhere would otherwise be served from this homeserver's media store.
    check_remote_media: bool = True
    #: Threads of the module's own pool that carry roomguard calls: calls in flight at once, beyond which they queue
    #: (queueing time counts against the deadline).
    max_concurrent_calls: int = 16
    #: Upper bound of the channel's reconnection backoff, in seconds (config key `reconnect_backoff_max_ms`).
    reconnect_backoff_max_s: float = 1.0
    #: How many rooms' attributes are kept in memory (least recently used evicted first).
    room_cache_size: int = 10_000
    #: How long the "is this room in the public directory" answer is reused, in seconds (0: ask every time). The
    #: directory is not room state, so no event says it changed; the module forgets the answer when it lets a
    #: (un)publish through, and this bounds staleness after changes made elsewhere (admin API, other workers).
    directory_cache_ttl_s: float = 10.0
    #: TLS settings; None: plaintext HTTP/2 (loopback, Unix socket or a private link only).
    tls: TlsConfig | None = None
    #: The bearer token sent to roomguard as `authorization: Bearer <token>` on every call (keys `auth_token_file`,
    #: `auth_token`); None: no token. Kept out of `repr` so that a logged config never shows it.
    auth_token: str | None = field(default=None, repr=False)
    #: Whether this homeserver lets guests in (key `guest_access_enabled`); None: read Synapse's own
    #: `allow_guest_access`. `Room.guest_access` is *effective* guest access: the room says `can_join` and the
    #: homeserver allows guests. Set it when Synapse's setting cannot be read (the module then warns and assumes
    #: guests are allowed), or when guests reach the rooms by another door than this Synapse's own registration.
    guest_access_enabled: bool | None = None

    @property
    def target(self) -> Endpoint:
        """`endpoint` parsed (it was validated by `parse_config`)."""
        return parse_endpoint(self.endpoint)

    @property
    def is_unix_socket(self) -> bool:
        """Whether `endpoint` names a Unix domain socket (`unix:/path`, `unix:///path`, `unix-abstract:name`)."""
        return isinstance(self.target, UnixEndpoint)


def _key(name: str) -> str:
    return f"`{_PREFIX}` config key `{name}`"


def _int_in_range(config: Mapping[str, Any], name: str, default: int, *, minimum: int = 1, maximum: int) -> int:
    value = config.get(name, default)
    # bool is an int in Python: `timeout_ms: true` is a typo, not 1 ms.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{_key(name)} must be an integer, got {type(value).__name__} `{value!r}`")
    if not minimum <= value <= maximum:
        raise ConfigError(f"{_key(name)} must be between {minimum} and {maximum}, got `{value}`")
    return value


def _failure_modes(raw: Any) -> FailureModes:
    if raw is None:
        return FailureModes()
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{_key('failure_mode')} must be a mapping of hook name to `open` or `closed`")
    defaults = FailureModes()
    known = {hook.name for hook in fields(FailureModes)}
    unknown = sorted(set(raw) - known, key=str)
    if unknown:
        raise ConfigError(
            f"{_key('failure_mode.' + str(unknown[0]))} is not a hook; known hooks: {', '.join(sorted(known))}"
        )
    modes: dict[str, FailureMode] = {}
    for hook in sorted(known):
        value = raw.get(hook, getattr(defaults, hook).value)
        try:
            modes[hook] = FailureMode(value)
        except ValueError:
            raise ConfigError(f"{_key('failure_mode.' + hook)} must be `open` or `closed`, got `{value!r}`") from None
    return FailureModes(**modes)


def _pem_file(raw: Mapping[str, Any], name: str) -> bytes | None:
    path = raw.get(name)
    if path is None:
        return None
    key = _key(f"tls.{name}")
    if not isinstance(path, str) or not path:
        raise ConfigError(f"{key} must be a file path, got `{path!r}`")
    try:
        content = Path(path).read_bytes()
    except OSError as err:
        raise ConfigError(f"{key}: cannot read `{path}`: {err.strerror}") from None
    if b"-----BEGIN " not in content:
        raise ConfigError(f"{key}: `{path}` is not a PEM file")
    return content


def _tls(raw: Any) -> TlsConfig | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{_key('tls')} must be a mapping with `ca_file` (and optionally `cert_file`, `key_file`)")
    known = {"ca_file", "cert_file", "key_file", "server_name"}
    unknown = sorted(set(raw) - known, key=str)
    if unknown:
        raise ConfigError(f"{_key('tls.' + str(unknown[0]))} is unknown; known keys: {', '.join(sorted(known))}")
    root = _pem_file(raw, "ca_file")
    if root is None:
        raise ConfigError(f"{_key('tls.ca_file')} is required when `tls` is set (PEM of roomguard's CA)")
    chain = _pem_file(raw, "cert_file")
    key = _pem_file(raw, "key_file")
    if (chain is None) != (key is None):
        missing = "tls.key_file" if key is None else "tls.cert_file"
        raise ConfigError(f"{_key(missing)} is required: `tls.cert_file` and `tls.key_file` go together (mutual TLS)")
    server_name = raw.get("server_name")
    if server_name is not None and (not isinstance(server_name, str) or not server_name.strip()):
        raise ConfigError(f"{_key('tls.server_name')} must be a host name, got `{server_name!r}`")
    return TlsConfig(root_certificates=root, certificate_chain=chain, private_key=key, server_name=server_name)


def _token_is_usable(token: str) -> bool:
    # gRPC metadata values are printable ASCII; roomguard compares the exact text after `Bearer `.
    return all(0x20 <= ord(c) <= 0x7E for c in token)


def _auth_token(config: Mapping[str, Any]) -> str | None:
    """The bearer token from `auth_token_file` (recommended) or `auth_token` (inline), at most one of them."""
    path = config.get("auth_token_file")
    inline = config.get("auth_token")
    if path is not None and inline is not None:
        raise ConfigError(
            f"{_key('auth_token')} and `auth_token_file` are mutually exclusive: set one "
            "(preferably `auth_token_file`, a file readable only by Synapse)"
        )
    if path is not None:
        key = _key("auth_token_file")
        if not isinstance(path, str) or not path:
            raise ConfigError(f"{key} must be a file path, got `{path!r}`")
        try:
            raw = Path(path).read_bytes()
        except OSError as err:
            raise ConfigError(f"{key}: cannot read `{path}`: {err.strerror}") from None
        try:
            # Surrounding whitespace (the file's final newline) is not part of the token, as for roomguard's
            # `auth.token_file`.
            token = raw.decode("ascii").strip()
        except UnicodeDecodeError:
            raise ConfigError(f"{key}: `{path}` must hold an ASCII token") from None
        if not token:
            raise ConfigError(f"{key}: `{path}` is empty")
        if not _token_is_usable(token):
            raise ConfigError(f"{key}: `{path}` holds control characters (a token is one line of printable ASCII)")
        return token
    if inline is not None:
        key = _key("auth_token")
        # The value itself is never quoted in an error: it is a secret, even when it is a wrong one.
        if not isinstance(inline, str):
            raise ConfigError(f"{key} must be a string, got {type(inline).__name__}")
        token = inline.strip()
        if not token:
            raise ConfigError(f"{key} is empty")
        if not _token_is_usable(token):
            raise ConfigError(f"{key} holds characters other than printable ASCII")
        return token
    return None


def parse_config(config: Mapping[str, Any] | None) -> RoomguardConfig:
    """Validate the module's `config:` block from `homeserver.yaml`; raise `ConfigError` naming the first bad key."""
    if config is None:
        config = {}
    if not isinstance(config, Mapping):
        raise ConfigError(f"`{_PREFIX}` config must be a mapping, got {type(config).__name__}")

    known = {
        "endpoint",
        "timeout_ms",
        "failure_mode",
        "reconnect_backoff_max_ms",
        "max_concurrent_calls",
        "room_cache_size",
        "directory_cache_ttl_seconds",
        "tls",
        "auth_token_file",
        "auth_token",
        "guest_access_enabled",
        "media_timeout_ms",
        "check_remote_media",
    }
    unknown = sorted(set(config) - known, key=str)
    if unknown:
        # A misspelt key silently falling back to a default (e.g. a fail-open hook) is worse than refusing to start.
        raise ConfigError(f"{_key(str(unknown[0]))} is unknown; known keys: {', '.join(sorted(known))}")

    endpoint = config.get("endpoint")
    if endpoint is None:
        raise ConfigError(f"{_key('endpoint')} is required (roomguard's gRPC address, e.g. `127.0.0.1:50051`)")
    if not isinstance(endpoint, str):
        raise ConfigError(f"{_key('endpoint')} must be a string such as `127.0.0.1:50051`, got `{endpoint!r}`")
    try:
        target = parse_endpoint(endpoint)
    except EndpointError as err:
        raise ConfigError(
            f"{_key('endpoint')} `{endpoint}` is not roomguard's address: {err} (accepted: `host:port`, "
            "`dns:///host:port`, `dns://dns-server/host:port`, `unix:/path`)"
        ) from None

    timeout_ms = _int_in_range(config, "timeout_ms", 200, maximum=60_000)
    media_timeout_ms = _int_in_range(config, "media_timeout_ms", 5_000, maximum=300_000)
    backoff_ms = _int_in_range(config, "reconnect_backoff_max_ms", 1_000, maximum=120_000)
    max_calls = _int_in_range(config, "max_concurrent_calls", 16, maximum=1_000)
    cache_size = _int_in_range(config, "room_cache_size", 10_000, maximum=10_000_000)
    directory_ttl = _int_in_range(config, "directory_cache_ttl_seconds", 10, minimum=0, maximum=3_600)
    tls = _tls(config.get("tls"))
    if tls is not None and isinstance(target, UnixEndpoint):
        # roomguard's Unix socket listener is plaintext (the socket's directory permissions guard it): a TLS
        # handshake there could never succeed, so say so now rather than fail every call.
        raise ConfigError(
            f"{_key('tls')} cannot be used with a Unix socket `endpoint` (`{endpoint}`): roomguard serves its Unix "
            "socket without TLS; remove `tls`, or dial roomguard's TCP listener"
        )

    guest_access_enabled = config.get("guest_access_enabled")
    if guest_access_enabled is not None and not isinstance(guest_access_enabled, bool):
        raise ConfigError(
            f"{_key('guest_access_enabled')} must be `true` or `false` (or left out to follow Synapse's "
            f"`allow_guest_access`), got `{guest_access_enabled!r}`"
        )

    check_remote_media = config.get("check_remote_media", True)
    if not isinstance(check_remote_media, bool):
        raise ConfigError(f"{_key('check_remote_media')} must be `true` or `false`, got `{check_remote_media!r}`")

    return RoomguardConfig(
        endpoint=endpoint,
        timeout_s=timeout_ms / 1000,
        media_timeout_s=media_timeout_ms / 1000,
        check_remote_media=check_remote_media,
        failure_mode=_failure_modes(config.get("failure_mode")),
        reconnect_backoff_max_s=backoff_ms / 1000,
        max_concurrent_calls=max_calls,
        room_cache_size=cache_size,
        directory_cache_ttl_s=float(directory_ttl),
        tls=tls,
        auth_token=_auth_token(config),
        guest_access_enabled=guest_access_enabled,
    )
