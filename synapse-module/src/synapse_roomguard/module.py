"""`RoomguardModule`: the Synapse module. It registers the hooks, gathers what roomguard decides on, asks, and answers.

Hooks (Synapse module API):

* `check_event_for_spam` -> `CheckMessageSend`, for `m.room.message`, `m.sticker`, `m.room.encrypted` sent by local
  users (events from other servers are theirs to police; refusing them here would only soft-fail them);
* `user_may_publish_room` -> `CheckRoomPublish`, with the visibility actually requested (see `visibility.py`);
* `user_may_create_room` with `visibility: public` -> `CheckRoomPublish` on the attributes the new room will have:
  Synapse publishes such a room without calling `user_may_publish_room`.

Room attributes come from Synapse's current state on each call, served by Synapse's caches; see `cache.py`. The
module deliberately registers no `on_new_event` callback: in Synapse 1.163 registering one makes Synapse load the
*full* current state of the room for every event persisted on the server, in every room, and log "Re-starting finished
log context" warnings (measured: see the README).

Logging: room ids, user ids, event ids, decision ids, reason codes, latencies. Never a body, formatted body or file
name, and never an exception message that could quote them (only the exception type and where it was raised).
"""

from __future__ import annotations

import logging
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from synapse.module_api import NOT_SPAM, EventBase, ModuleApi, make_deferred_yieldable
from synapse.module_api.errors import Codes

from . import visibility as vis
from ._proto.roomguard.v1 import policy_pb2 as pb
from .attributes import (
    TRACKED_STATE_TYPES,
    CreationDefaults,
    RoomAttributes,
    RoomState,
    attributes_from_state,
    state_from_create_request,
)
from .cache import RoomCache
from .client import PolicyClient, RoomguardUnavailableError
from .config import FailureMode, RoomguardConfig, parse_config
from .messages import CHECKED_EVENT_TYPES, message_from_event
from .verdict import Refusal, UndecidableError, is_allowed, refusal_from_decision, unavailable_refusal

logger = logging.getLogger(__name__)

#: The room id sent for a room that `createRoom` has not created yet (the request needs one; no rule reads it).
PENDING_ROOM_LOCALPART = "roomguard-pending-creation"

_VISIBILITY = {"public": pb.DIRECTORY_VISIBILITY_PUBLIC, "private": pb.DIRECTORY_VISIBILITY_PRIVATE}

SpamCheckResult = Any  # NOT_SPAM or (Codes, dict)


def _where(err: BaseException) -> str:
    """`TypeName at file.py:line`: enough to find a bug, without the exception's message (which may quote content)."""
    frames = traceback.extract_tb(err.__traceback__)
    if not frames:
        return type(err).__name__
    last = frames[-1]
    return f"{type(err).__name__} at {last.filename.rsplit('/', 1)[-1]}:{last.lineno}"


class RoomguardModule:
    """Asks roomguard before local users send messages, publish rooms, or create rooms listed in the directory."""

    def __init__(self, config: RoomguardConfig, api: ModuleApi) -> None:
        from twisted.internet import reactor as _reactor

        # Synapse installs its reactor before loading modules; twisted's typing of the global is not usable as is.
        reactor: Any = _reactor
        self._config = config
        self._api = api
        self._reactor = reactor
        self._client = PolicyClient(
            config.endpoint,
            timeout_s=config.timeout_s,
            reconnect_backoff_max_s=config.reconnect_backoff_max_s,
            reactor=reactor,
            max_concurrent_calls=config.max_concurrent_calls,
            tls=config.tls,
            auth_token=config.auth_token,
        )
        self._cache = RoomCache(
            size=config.room_cache_size,
            directory_ttl_s=config.directory_cache_ttl_s,
            clock=reactor.seconds,
        )
        self._creation_defaults = _creation_defaults(api)
        self._guest_access_enabled = _guest_access_enabled(api, config)
        self._warned_visibility_fallback = False

        api.register_spam_checker_callbacks(
            check_event_for_spam=self.check_event_for_spam,
            user_may_publish_room=self.user_may_publish_room,
            user_may_create_room=self.user_may_create_room,
        )
        # Connect once the reactor runs (after any daemonizing fork), so the first request finds a warm channel.
        reactor.callWhenRunning(self._client.connect)
        reactor.addSystemEventTrigger("before", "shutdown", self._client.close)
        logger.info(
            "roomguard module ready: endpoint=%s transport=%s token=%s timeout_ms=%d "
            "failure_mode=message_send:%s,room_publish:%s,room_create:%s guest_access_enabled=%s",
            config.endpoint,
            _transport(config),
            "yes" if config.auth_token else "no",
            round(config.timeout_s * 1000),
            config.failure_mode.message_send.value,
            config.failure_mode.room_publish.value,
            config.failure_mode.room_create.value,
            "yes" if self._guest_access_enabled else "no",
        )
        if config.auth_token and config.tls is None and not config.is_unix_socket and not _is_loopback(config.endpoint):
            logger.warning(
                "roomguard: the bearer token goes to %s in plaintext; set `tls` (or use loopback or a Unix socket)",
                config.endpoint,
            )

    @staticmethod
    def parse_config(config: Mapping[str, Any]) -> RoomguardConfig:
        """Synapse calls this at start-up; a bad config stops the homeserver with a `ConfigError` naming the key."""
        return parse_config(config)

    # === hooks ===

    async def check_event_for_spam(self, event: EventBase) -> SpamCheckResult:
        """`CheckMessageSend` for messages, stickers and encrypted events of local senders."""
        if event.type not in CHECKED_EVENT_TYPES or not self._api.is_mine(event.sender):
            return NOT_SPAM

        async def ask() -> pb.Decision:
            attributes = await self._room_attributes(event.room_id)
            if attributes is None:  # cannot happen for an event being sent into a room; be total anyway
                raise LookupError("room has no create event")
            request = pb.CheckMessageSendRequest(
                request_id=event.event_id,
                sender=await self._subject(event.sender, attributes),
                room=attributes.to_proto(event.room_id, published=await self._published(event.room_id)),
                message=message_from_event(event.type, event.content),
            )
            response = await make_deferred_yieldable(self._client.check_message_send(request))
            return response.decision

        return await self._decide(
            action="send",
            mode=self._config.failure_mode.message_send,
            ask=ask,
            log_fields={"room": event.room_id, "user": event.sender, "event": event.event_id, "type": event.type},
        )

    async def user_may_publish_room(self, user_id: str, room_id: str) -> SpamCheckResult:
        """`CheckRoomPublish` with the visibility the client asked for (publish or unpublish)."""
        # Synchronously, before any await: the caller's frame is only on our stack until we first suspend.
        requested = vis.requested_visibility_from_caller()

        async def ask() -> pb.Decision | None:
            attributes = await self._room_attributes(room_id)
            if attributes is None:
                return None  # not a room this server knows: Synapse answers 400 "Unknown room" itself
            published = await self._published(room_id)
            visibility = requested
            if visibility is None:
                if not self._warned_visibility_fallback:
                    self._warned_visibility_fallback = True
                    logger.warning(
                        "roomguard: cannot see the requested directory visibility on this Synapse version; "
                        "inferring it from the directory state (see synapse_roomguard/visibility.py)"
                    )
                visibility = vis.visibility_from_listing(published)
            request = pb.CheckRoomPublishRequest(
                request_id=str(uuid.uuid4()),
                requester=await self._subject(user_id, attributes),
                room=attributes.to_proto(room_id, published=published),
                visibility=_VISIBILITY[visibility],
            )
            response = await make_deferred_yieldable(self._client.check_room_publish(request))
            return response.decision

        result = await self._decide(
            action=f"publish:{requested or 'inferred'}",
            mode=self._config.failure_mode.room_publish,
            ask=ask,
            log_fields={"room": room_id, "user": user_id},
        )
        if result is NOT_SPAM:
            self._cache.directory_changing(room_id)
        return result

    async def user_may_create_room(self, user_id: str, room_config: Mapping[str, Any]) -> SpamCheckResult:
        """`CheckRoomPublish` for a room created straight into the public directory (`visibility: public`)."""
        if room_config.get("visibility") != "public":
            return NOT_SPAM

        async def ask() -> pb.Decision:
            state = state_from_create_request(user_id, room_config, self._creation_defaults)
            attributes = attributes_from_state(state, guest_access_enabled=self._guest_access_enabled)
            room_id = f"!{PENDING_ROOM_LOCALPART}:{self._api.server_name}"
            request = pb.CheckRoomPublishRequest(
                request_id=str(uuid.uuid4()),
                requester=await self._subject(user_id, attributes),
                room=attributes.to_proto(room_id, published=False),
                visibility=pb.DIRECTORY_VISIBILITY_PUBLIC,
            )
            response = await make_deferred_yieldable(self._client.check_room_publish(request))
            return response.decision

        return await self._decide(
            action="create_public",
            mode=self._config.failure_mode.room_create,
            ask=ask,
            log_fields={"user": user_id},
        )

    # === facts ===

    async def _room_attributes(self, room_id: str) -> RoomAttributes | None:
        """The room's attributes now; None when the server does not know the room.

        `get_room_state` with concrete (type, "") keys is answered from Synapse's per-room current-state cache and its
        event cache; the attributes are re-derived only when a tracked state event id changed.
        """
        events = await self._api.get_room_state(room_id, [(t, "") for t in TRACKED_STATE_TYPES])
        if ("m.room.create", "") not in events:
            return None
        signature = tuple(sorted((key[0], event.event_id) for key, event in events.items()))
        return self._cache.attributes.get_or_build(
            room_id,
            signature,
            lambda: attributes_from_state(_room_state(events), guest_access_enabled=self._guest_access_enabled),
        )

    async def _published(self, room_id: str) -> bool:
        settled = self._cache.directory_settled(room_id)
        if settled:
            cached = self._cache.published.get(room_id)
            if cached is not None:
                return cached
        token = self._cache.published.begin_fill(room_id)
        published: bool | None = None
        try:
            published = bool(await self._api.public_room_list_manager.room_is_in_public_room_list(room_id))
        finally:
            self._cache.published.end_fill(room_id, token, published if settled else None)
        return published

    async def _subject(self, user_id: str, attributes: RoomAttributes) -> pb.Subject:
        # `is_user_admin` is served from Synapse's own cache of `is_server_admin`.
        return pb.Subject(
            user_id=user_id,
            server_admin=bool(await self._api.is_user_admin(user_id)),
            power_level=attributes.power_level(user_id),
        )

    # === deciding ===

    async def _decide(
        self,
        *,
        action: str,
        mode: FailureMode,
        ask: Callable[[], Awaitable[pb.Decision | None]],
        log_fields: Mapping[str, str],
    ) -> SpamCheckResult:
        """Run `ask`, turn its decision into Synapse's answer; no decision -> the hook's failure mode. Never raises."""
        started = time.monotonic()
        fields = " ".join(f"{k}={v}" for k, v in log_fields.items())
        try:
            decision = await ask()
            if decision is None:
                return NOT_SPAM
            allowed = is_allowed(decision)
        except Exception as err:  # noqa: BLE001 - a hook that raises turns the client's request into a 500
            elapsed_ms = (time.monotonic() - started) * 1000
            level = logging.WARNING
            if isinstance(err, RoomguardUnavailableError):
                cause = f"roomguard status {err.status}: {err.hint}"
                if err.misconfiguration:  # a wrong token fails every call until someone fixes it: say it loudly
                    level = logging.ERROR
            elif isinstance(err, UndecidableError):
                cause = "undecidable answer"
            else:
                cause = _where(err)
            outcome = "allowed (fail-open)" if mode is FailureMode.OPEN else "refused (fail-closed)"
            logger.log(
                level,
                "roomguard gave no decision (%s) for %s %s after %.0f ms: %s",
                cause,
                action,
                fields,
                elapsed_ms,
                outcome,
            )
            if mode is FailureMode.OPEN:
                return NOT_SPAM
            return self._refuse(unavailable_refusal())

        elapsed_ms = (time.monotonic() - started) * 1000
        codes = ",".join(r.code for r in decision.reasons)
        if allowed and decision.shadow and decision.policy_effect == pb.EFFECT_DENY:
            # Shadow mode: roomguard answers ALLOW and says what enforcing would have done. The module acts on
            # `effect` (allows) and leaves a trace of the would-be refusal for whoever reviews the new policy.
            logger.info(
                "roomguard shadow mode would have denied %s %s decision=%s codes=%s in %.1f ms (allowed)",
                action,
                fields,
                decision.decision_id,
                codes,
                elapsed_ms,
            )
            return NOT_SPAM
        if allowed:
            logger.debug(
                "roomguard allowed %s %s decision=%s codes=%s in %.1f ms",
                action,
                fields,
                decision.decision_id,
                codes,
                elapsed_ms,
            )
            return NOT_SPAM
        logger.info(
            "roomguard denied %s %s decision=%s codes=%s in %.1f ms",
            action,
            fields,
            decision.decision_id,
            codes,
            elapsed_ms,
        )
        return self._refuse(refusal_from_decision(decision))

    @staticmethod
    def _refuse(refusal: Refusal) -> tuple[Codes, dict[str, Any]]:
        return Codes.FORBIDDEN, refusal.fields


def _transport(config: RoomguardConfig) -> str:
    if config.tls is not None:
        return "tls" if config.tls.private_key is None else "mutual-tls"
    return "unix-socket" if config.is_unix_socket else "plaintext"


def _is_loopback(endpoint: str) -> bool:
    """Whether a `host:port` / `dns:///host:port` / `ipv4:` / `ipv6:` target names this host."""
    target = endpoint
    for scheme in ("dns:///", "dns:", "ipv4:", "ipv6:"):
        if target.startswith(scheme):
            target = target[len(scheme) :]
            break
    host = target.rsplit(":", 1)[0] if not target.startswith("[") else target[1:].split("]", 1)[0]
    return host == "localhost" or host.startswith("127.") or host == "::1"


def _room_state(events: Mapping[tuple[str, str], EventBase]) -> RoomState:
    """Synapse's state map (with its create event) -> `RoomState`."""
    create = events[("m.room.create", "")]
    contents = {
        event_type: dict(event.content)
        for (event_type, state_key), event in events.items()
        if state_key == "" and event_type in TRACKED_STATE_TYPES
    }
    room_version = getattr(create, "room_version", None)
    return RoomState(
        contents=contents,
        creator=create.sender,
        creators_outrank_everyone=bool(getattr(room_version, "msc4289_creator_power_enabled", False)),
    )


def _creation_defaults(api: ModuleApi) -> CreationDefaults:
    """The server settings that shape new rooms. Read from Synapse's config, which the module API does not expose."""
    try:
        hs_config = api._hs.config  # noqa: SLF001 - no public accessor for these two settings
        encrypted = frozenset(hs_config.room.encryption_enabled_by_default_for_room_presets)
        outrank = bool(hs_config.server.default_room_version.msc4289_creator_power_enabled)
        return CreationDefaults(encrypted_presets=encrypted, creators_outrank_everyone=outrank)
    except AttributeError:
        logger.warning(
            "roomguard: cannot read encryption_enabled_by_default_for_room_type / default_room_version from this "
            "Synapse; public room creation is checked as if neither applied"
        )
        return CreationDefaults(creators_outrank_everyone=False)


def _guest_access_enabled(api: ModuleApi, config: RoomguardConfig) -> bool:
    """Does this homeserver let guests in? The module option wins; else Synapse's `allow_guest_access`.

    The module API has no accessor for it, so it is read from Synapse's parsed config
    (`hs.config.registration.allow_guest_access`, where Synapse 1.163 keeps it). If a future Synapse moves it, the
    module cannot tell whether guests exist, assumes they do (the strict reading: a room whose state says `can_join`
    then counts as open to guests, which only ever refuses more publications), and says so once at start-up, naming
    the option that settles it.
    """
    if config.guest_access_enabled is not None:
        return config.guest_access_enabled
    try:
        allowed = api._hs.config.registration.allow_guest_access  # noqa: SLF001 - no public accessor
    except AttributeError:
        allowed = None
    if not isinstance(allowed, bool):
        logger.warning(
            "roomguard: cannot read allow_guest_access from this Synapse; assuming guests are allowed "
            "(rooms whose state says can_join count as open to guests); set the module option "
            "`guest_access_enabled` to say whether this homeserver lets guests in"
        )
        return True
    return allowed
