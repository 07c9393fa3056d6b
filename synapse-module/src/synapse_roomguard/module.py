"""`RoomguardModule`: the Synapse module. It registers the hooks, gathers what roomguard decides on, asks, and answers.

Hooks (Synapse module API), each with its failure mode (`config.FailureModes`):

* `check_event_for_spam`, for events of local senders (events from other servers are theirs to police; refusing them
  here would only soft-fail them):
  * `m.room.join_rules`, `m.room.history_visibility`, `m.room.guest_access`, `m.room.encryption` and
    `im.vector.room.access_rules` with an empty state key -> `CheckRoomStateChange` (the room now, and as the event
    would leave it); this hook and not `user_may_send_state_event`, which Synapse skips for server admins;
  * `m.room.member` -> nothing (joins are `user_may_join_room`'s);
  * every other event that carries text, and messages, stickers and encrypted events always -> `CheckMessageSend`
    (see `messages.py` for where the text is);
* `user_may_join_room` -> `CheckRoomJoin` (not for a user already in the room: Synapse calls it for profile updates);
* `user_may_publish_room` -> `CheckRoomPublish`, with the visibility actually requested (see `visibility.py`);
* `user_may_create_room`, every one -> `CheckRoomStateChange` from a room with no state to the attributes predicted for
  the new room, plus `CheckRoomPublish` on those attributes for `visibility: public` (Synapse publishes such a room
  without calling `user_may_publish_room`), plus `CheckMessageSend` for the text the request writes (name, topic,
  other `initial_state`), all at once; the room is refused if any of them refuses, with every reason.
* `check_media_file_for_spam` -> `CheckMediaUpload`, the file streamed from disk by a thread (see `media.py`): local
  uploads always, remote media when `check_remote_media`, never thumbnails nor URL previews.

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
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from synapse.module_api import NOT_SPAM, EventBase, ModuleApi, make_deferred_yieldable, run_in_background
from synapse.module_api.errors import Codes
from twisted.internet import defer

from . import visibility as vis
from ._proto.roomguard.v1 import policy_pb2 as pb
from .attributes import (
    NO_STATE,
    TRACKED_STATE_TYPES,
    UNKNOWN_ROOM_JOINED_UNINVITED,
    CreationDefaults,
    RoomAttributes,
    RoomState,
    attributes_from_state,
    is_state_change,
    state_from_create_request,
    state_from_stripped,
    with_event_applied,
)
from .cache import RoomCache
from .client import PolicyClient, RoomguardUnavailableError
from .config import FailureMode, FailureModes, RoomguardConfig, parse_config
from .endpoint import DnsEndpoint, parse_endpoint
from .media import FileChunks, file_path, is_checked, remote_media_id_from_caller, upload_header
from .messages import message_from_event, messages_from_create_request
from .verdict import (
    Refusal,
    UndecidableError,
    is_allowed,
    merge_refusals,
    refusal_from_decision,
    unavailable_refusal,
)

logger = logging.getLogger(__name__)

#: The room id sent for a room that `createRoom` has not created yet (the request needs one; no rule reads it).
PENDING_ROOM_LOCALPART = "roomguard-pending-creation"

_VISIBILITY = {"public": pb.DIRECTORY_VISIBILITY_PUBLIC, "private": pb.DIRECTORY_VISIBILITY_PRIVATE}

#: The `get_room_state` filter for the room's tracked state (concrete keys: served from Synapse's caches).
_TRACKED_KEYS = [(event_type, "") for event_type in sorted(TRACKED_STATE_TYPES)]

SpamCheckResult = Any  # NOT_SPAM or (Codes, dict)


def _where(err: BaseException) -> str:
    """`TypeName at file.py:line`: enough to find a bug, without the exception's message (which may quote content)."""
    frames = traceback.extract_tb(err.__traceback__)
    if not frames:
        return type(err).__name__
    last = frames[-1]
    return f"{type(err).__name__} at {last.filename.rsplit('/', 1)[-1]}:{last.lineno}"


class RoomguardModule:
    """Asks roomguard before local users send events, join rooms, change who may enter a room, publish or create one,
    and before the homeserver keeps an uploaded (or fetched) file."""

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
            media_timeout_s=config.media_timeout_s,
        )
        self._cache = RoomCache(
            size=config.room_cache_size,
            directory_ttl_s=config.directory_cache_ttl_s,
            clock=reactor.seconds,
        )
        self._creation_defaults = _creation_defaults(api)
        self._guest_access_enabled = _guest_access_enabled(api, config)
        self._state_ids_reader = _state_ids_reader(api)
        self._warned_visibility_fallback = False
        self._warned_invite_state = False

        api.register_spam_checker_callbacks(
            check_event_for_spam=self.check_event_for_spam,
            user_may_join_room=self.user_may_join_room,
            user_may_publish_room=self.user_may_publish_room,
            user_may_create_room=self.user_may_create_room,
            check_media_file_for_spam=self.check_media_file_for_spam,
        )
        # Connect once the reactor runs (after any daemonizing fork), so the first request finds a warm channel.
        reactor.callWhenRunning(self._client.connect)
        reactor.addSystemEventTrigger("before", "shutdown", self._client.close)
        logger.info(
            "roomguard module ready: endpoint=%s transport=%s token=%s timeout_ms=%d media_timeout_ms=%d "
            "check_remote_media=%s failure_mode=%s guest_access_enabled=%s",
            config.endpoint,
            _transport(config),
            "yes" if config.auth_token else "no",
            round(config.timeout_s * 1000),
            round(config.media_timeout_s * 1000),
            "yes" if config.check_remote_media else "no",
            ",".join(f"{hook.name}:{getattr(config.failure_mode, hook.name).value}" for hook in fields(FailureModes)),
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
        """Events of local senders: a room-access state change -> `CheckRoomStateChange`; memberships -> nothing;
        messages, stickers, encrypted events and any other event that carries text -> `CheckMessageSend`."""
        if not self._api.is_mine(event.sender) or event.type == "m.room.member":
            return NOT_SPAM
        state_key = event.get_state_key()
        if is_state_change(event.type, state_key):
            return await self._check_state_change(event)

        async def ask() -> pb.Decision | None:
            message = message_from_event(event.type, event.content)
            if message is None:
                return None  # no text, and not a type asked about for its type alone
            attributes = await self._room_attributes(event.room_id)
            if attributes is None:  # cannot happen for an event being sent into a room; be total anyway
                raise LookupError("room has no create event")
            request = pb.CheckMessageSendRequest(
                request_id=event.event_id,
                sender=await self._subject(event.sender, attributes),
                room=attributes.to_proto(event.room_id, published=await self._published(event.room_id)),
                message=message,
            )
            response = await make_deferred_yieldable(self._client.check_message_send(request))
            return response.decision

        return await self._decide(
            action="send",
            mode=self._config.failure_mode.message_send,
            ask=ask,
            log_fields={"room": event.room_id, "user": event.sender, "event": event.event_id, "type": event.type},
        )

    async def _check_state_change(self, event: EventBase) -> SpamCheckResult:
        """`CheckRoomStateChange`: the room now, and the room once `event` (a room-access state event) replaces the
        current event of its type."""

        async def ask() -> pb.Decision:
            events = await self._api.get_room_state(event.room_id, _TRACKED_KEYS)
            if ("m.room.create", "") not in events:  # cannot happen for an event being sent into a room
                raise LookupError("room has no create event")
            state = _room_state(events)
            current = attributes_from_state(state, guest_access_enabled=self._guest_access_enabled)
            proposed = attributes_from_state(
                with_event_applied(state, event.type, event.content), guest_access_enabled=self._guest_access_enabled
            )
            # The directory listing is not state: the event leaves it as it is.
            published = await self._published(event.room_id)
            request = pb.CheckRoomStateChangeRequest(
                request_id=event.event_id,
                sender=await self._subject(event.sender, current),
                room=current.to_proto(event.room_id, published=published),
                proposed=proposed.to_proto(event.room_id, published=published),
                event_type=event.type,
                state_key="",
            )
            response = await make_deferred_yieldable(self._client.check_room_state_change(request))
            return response.decision

        return await self._decide(
            action="state",
            mode=self._config.failure_mode.state_change,
            ask=ask,
            log_fields={"room": event.room_id, "user": event.sender, "event": event.event_id, "type": event.type},
        )

    async def user_may_join_room(self, user_id: str, room_id: str, is_invited: bool) -> SpamCheckResult:
        """`CheckRoomJoin` for a local user entering a room (not for one already in it).

        Synapse does not call this for server admins, the server-notices user, or a room's creator joining the room
        they just created.
        """

        async def ask() -> pb.Decision | None:
            member_key = ("m.room.member", user_id)
            events = dict(await self._api.get_room_state(room_id, [*_TRACKED_KEYS, member_key]))
            member = events.pop(member_key, None)
            if member is not None and member.content.get("membership") == "join":
                # Already in the room: Synapse treats a profile update (display name, avatar) as a join of every room
                # the user is in. Not an entry, so not asked (and not counted by roomguard's join rate).
                return None
            attributes = self._attributes_from_events(room_id, events)
            if attributes is None:
                # The homeserver is not in the room: a join over federation. An invitation says what the room is;
                # without one, the join can only succeed into a room that others may join freely.
                state = await self._invite_state(user_id, room_id) if is_invited else UNKNOWN_ROOM_JOINED_UNINVITED
                attributes = attributes_from_state(state, guest_access_enabled=self._guest_access_enabled)
            request = pb.CheckRoomJoinRequest(
                request_id=str(uuid.uuid4()),
                user=await self._subject(user_id, attributes),
                room=attributes.to_proto(room_id, published=await self._published(room_id)),
                invited=is_invited,
            )
            response = await make_deferred_yieldable(self._client.check_room_join(request))
            return response.decision

        return await self._decide(
            action="join",
            mode=self._config.failure_mode.room_join,
            ask=ask,
            log_fields={"room": room_id, "user": user_id, "invited": "yes" if is_invited else "no"},
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
        """Every `createRoom` (and room upgrade): the new room's attributes as a state change from a room with no
        state (`CheckRoomStateChange`, `event_type` `m.room.create`); for `visibility: public` also as a publication
        (`CheckRoomPublish`); and the text the request writes (`CheckMessageSend`). All asked at once; refused if any
        refuses, with every reason. Synapse does not call this for server admins' `createRoom` (it does for their room
        upgrades)."""
        public = room_config.get("visibility") == "public"
        room_id = f"!{PENDING_ROOM_LOCALPART}:{self._api.server_name}"
        log_fields = {"user": user_id, "visibility": "public" if public else "private"}
        predicted: list[RoomAttributes] = []

        def new_room() -> RoomAttributes:
            # Inside the asks, so that a prediction error is "no decision" and follows each check's failure mode.
            if not predicted:
                state = state_from_create_request(user_id, room_config, self._creation_defaults)
                predicted.append(attributes_from_state(state, guest_access_enabled=self._guest_access_enabled))
            return predicted[0]

        async def ask_state_change() -> pb.Decision:
            proposed = new_room()
            before = attributes_from_state(NO_STATE, guest_access_enabled=self._guest_access_enabled)
            request = pb.CheckRoomStateChangeRequest(
                request_id=str(uuid.uuid4()),
                sender=await self._subject(user_id, proposed),
                room=before.to_proto(room_id, published=False),
                # `visibility: public` lists the room as it is created.
                proposed=proposed.to_proto(room_id, published=public),
                event_type="m.room.create",
                state_key="",
            )
            response = await make_deferred_yieldable(self._client.check_room_state_change(request))
            return response.decision

        async def ask_publish() -> pb.Decision:
            attributes = new_room()
            request = pb.CheckRoomPublishRequest(
                request_id=str(uuid.uuid4()),
                requester=await self._subject(user_id, attributes),
                room=attributes.to_proto(room_id, published=False),
                visibility=pb.DIRECTORY_VISIBILITY_PUBLIC,
            )
            response = await make_deferred_yieldable(self._client.check_room_publish(request))
            return response.decision

        def ask_send(message: pb.Message) -> Callable[[], Awaitable[pb.Decision]]:
            async def ask() -> pb.Decision:
                attributes = new_room()
                request = pb.CheckMessageSendRequest(
                    request_id=str(uuid.uuid4()),
                    sender=await self._subject(user_id, attributes),
                    room=attributes.to_proto(room_id, published=public),
                    message=message,
                )
                response = await make_deferred_yieldable(self._client.check_message_send(request))
                return response.decision

            return ask

        mode = self._config.failure_mode
        checks = [_Check("create:state", mode.room_create if public else mode.private_room_create, ask_state_change)]
        if public:
            checks.append(_Check("create:publish", mode.room_create, ask_publish))
        try:
            messages = messages_from_create_request(room_config)
            checks.extend(_Check("create:text", mode.message_send, ask_send(message)) for message in messages)
        except Exception as err:  # noqa: BLE001 - never raise from a hook: "no decision" for the text
            checks.append(_Check("create:text", mode.message_send, _raising(err)))
        refusals = [r for r in await self._all(checks, log_fields) if r is not None]
        return self._answer(merge_refusals(refusals) if refusals else None)

    async def check_media_file_for_spam(self, file_wrapper: Any, file_info: Any) -> SpamCheckResult:
        """`CheckMediaUpload` for a file Synapse is about to keep: local uploads always, remote media when
        `check_remote_media`, never thumbnails nor URL previews. The file is streamed to roomguard from disk by a
        thread (see `media.py`); a refusal becomes Synapse's `400 Bad content` (it keeps only the error code)."""
        if not is_checked(file_info, check_remote_media=self._config.check_remote_media):
            return NOT_SPAM
        remote = file_info.server_name is not None
        # Synchronously, before any await: the fetching frame is only on our stack until we first suspend.
        remote_media_id = remote_media_id_from_caller(file_info.server_name) if remote else None
        header = upload_header(file_info, local_server_name=self._api.server_name, remote_media_id=remote_media_id)
        notes: dict[str, str] = {}

        async def ask() -> pb.Decision:
            path = file_path(file_wrapper)
            if path is None:
                raise LookupError("Synapse's ReadableFileWrapper has no `path`")
            chunks = FileChunks(path)
            response = await make_deferred_yieldable(self._client.check_media_upload(header, chunks))
            scan = response.scan
            notes.update(
                {
                    "format": scan.format or "?",
                    "bytes_read": str(scan.bytes_read),
                    "bytes_sent": str(chunks.sent),
                    "complete": "yes" if scan.complete else f"no({scan.incomplete_reason or '?'})",
                    "classification": response.decision.classification or "?",
                }
            )
            return response.decision

        log_fields = {
            "media": header.media.media_id or "?",
            "file": str(file_info.file_id),
            "remote": "yes" if remote else "no",
        }
        check = _Check("upload", self._config.failure_mode.media_upload, ask, notes)
        return self._answer(await self._verdict(check, log_fields))

    # === facts ===

    async def _room_attributes(self, room_id: str) -> RoomAttributes | None:
        """The room's attributes now; None when the server does not know the room.

        Nearly always the room's tracked state has not changed since the last call: the state event *ids* say so
        (Synapse's per-room, per-key current-state cache), and the attributes come from the module's cache without
        loading the events. Otherwise, and on a Synapse whose internals moved, the events are read through the module
        API and the attributes derived again.
        """
        ids = await self._tracked_state_ids(room_id)
        if ids is not None:
            cached = self._cache.attributes.get(room_id, _signature(ids.items()))
            if cached is not None:
                return cached
        return self._attributes_from_events(room_id, await self._api.get_room_state(room_id, _TRACKED_KEYS))

    async def _tracked_state_ids(self, room_id: str) -> Mapping[tuple[str, str], str] | None:
        """The ids of the room's tracked current state events, or None when Synapse's internals cannot give them.

        The module API only returns whole events (`get_room_state` = the ids, then an event fetch per id), so this
        asks Synapse's state storage controller directly, with a filter built once. Any failure (a future Synapse
        renamed or reshaped it) turns this path off for good, with one warning: the attributes are then read through
        the module API on every call, as before, never "no decision".
        """
        read = self._state_ids_reader
        if read is None:
            return None
        try:
            return await read(room_id)
        except Exception as err:  # noqa: BLE001 - a Synapse internal moved: the public path still works
            self._state_ids_reader = None
            logger.warning(
                "roomguard: cannot read state event ids from this Synapse (%s); room state is read through the "
                "module API on every call (slower, same decisions)",
                _where(err),
            )
            return None

    def _attributes_from_events(
        self, room_id: str, events: Mapping[tuple[str, str], EventBase]
    ) -> RoomAttributes | None:
        """The attributes of a room from its tracked current state; None without a create event (not in the room).

        `get_room_state` with concrete (type, "") keys is answered from Synapse's per-room current-state cache and its
        event cache; the attributes are re-derived only when a tracked state event id changed.
        """
        if ("m.room.create", "") not in events:
            return None
        return self._cache.attributes.get_or_build(
            room_id,
            _signature((key, event.event_id) for key, event in events.items()),
            lambda: attributes_from_state(_room_state(events), guest_access_enabled=self._guest_access_enabled),
        )

    async def _invite_state(self, user_id: str, room_id: str) -> RoomState:
        """The stripped state of `user_id`'s invitation to a room this homeserver is not in (`invite_room_state`).

        The module API has no accessor for it: it is read from Synapse's store, where the invite event keeps it in
        `unsigned`. When it cannot be read, the room is described by the spec's defaults (invite-only, shared
        history), which is all an invitation says.
        """
        stripped: Any = None
        try:
            store = self._api._store  # noqa: SLF001 - no public accessor for an invite's stripped state
            membership, event_id = await store.get_local_current_membership_for_user_in_room(user_id, room_id)
            if membership == "invite" and event_id:
                invite = await store.get_event(event_id, allow_none=True)
                if invite is not None:
                    stripped = invite.unsigned.get("invite_room_state")
        except Exception as err:  # noqa: BLE001 - a Synapse internal moved: decide on the defaults, say it once
            if not self._warned_invite_state:
                self._warned_invite_state = True
                logger.warning(
                    "roomguard: cannot read an invitation's stripped state on this Synapse version (%s); joins of "
                    "rooms this homeserver is not in are decided as invite-only rooms",
                    _where(err),
                )
        return state_from_stripped(stripped)

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
        return self._answer(await self._verdict(_Check(action, mode, ask), log_fields))

    async def _all(self, checks: list[_Check], log_fields: Mapping[str, str]) -> list[Refusal | None]:
        """Several checks of one client request, at once: their roomguard calls overlap, so the request waits for one
        deadline, not one per check. Never raises."""
        if len(checks) == 1:
            return [await self._verdict(checks[0], log_fields)]
        running = [run_in_background(self._verdict, check, log_fields) for check in checks]
        results: list[Refusal | None] = await make_deferred_yieldable(defer.gatherResults(running, consumeErrors=True))
        return results

    async def _verdict(self, check: _Check, log_fields: Mapping[str, str]) -> Refusal | None:
        """Run `check.ask`: None to let the action through, or the refusal; no decision -> the check's failure mode.
        Logs the outcome (never content). Never raises."""
        action, mode = check.action, check.mode
        started = time.monotonic()
        try:
            decision = await check.ask()
            if decision is None:
                return None
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
                _describe(log_fields, check.notes),
                elapsed_ms,
                outcome,
            )
            return None if mode is FailureMode.OPEN else unavailable_refusal()

        if allowed and not (decision.shadow and decision.policy_effect == pb.EFFECT_DENY):
            # The common case, once per message: its line is DEBUG, so build it only when it is written.
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "roomguard allowed %s %s decision=%s codes=%s in %.1f ms",
                    action,
                    _describe(log_fields, check.notes),
                    decision.decision_id,
                    ",".join(r.code for r in decision.reasons),
                    (time.monotonic() - started) * 1000,
                )
            return None
        elapsed_ms = (time.monotonic() - started) * 1000
        codes = ",".join(r.code for r in decision.reasons)
        described = _describe(log_fields, check.notes)
        if allowed:
            # Shadow mode: roomguard answers ALLOW and says what enforcing would have done. The module acts on
            # `effect` (allows) and leaves a trace of the would-be refusal for whoever reviews the new policy.
            logger.info(
                "roomguard shadow mode would have denied %s %s decision=%s codes=%s in %.1f ms (allowed)",
                action,
                described,
                decision.decision_id,
                codes,
                elapsed_ms,
            )
            return None
        logger.info(
            "roomguard denied %s %s decision=%s codes=%s in %.1f ms",
            action,
            described,
            decision.decision_id,
            codes,
            elapsed_ms,
        )
        return refusal_from_decision(decision)

    @staticmethod
    def _answer(refusal: Refusal | None) -> SpamCheckResult:
        """Synapse's answer: NOT_SPAM, or 403 `M_FORBIDDEN` with the refusal's body."""
        if refusal is None:
            return NOT_SPAM
        return Codes.FORBIDDEN, refusal.fields


@dataclass(frozen=True)
class _Check:
    """One question to roomguard within a hook: what to ask, and what to do without an answer."""

    #: Names the check in the log (`send`, `state`, `join`, `publish:public`, `create:state`, ...).
    action: str
    mode: FailureMode
    #: Asks roomguard; None means there is nothing to decide (the action goes through).
    ask: Callable[[], Awaitable[pb.Decision | None]]
    #: Facts the ask adds to the decision's log line (never content), e.g. what roomguard could read of a file.
    notes: dict[str, str] = field(default_factory=dict)


def _raising(err: Exception) -> Callable[[], Awaitable[pb.Decision | None]]:
    """An ask that fails with `err`: an error found before asking still goes through the check's failure mode."""

    async def ask() -> pb.Decision | None:
        raise err

    return ask


def _transport(config: RoomguardConfig) -> str:
    if config.tls is not None:
        return "tls" if config.tls.private_key is None else "mutual-tls"
    return "unix-socket" if config.is_unix_socket else "plaintext"


def _is_loopback(endpoint: str) -> bool:
    """Whether a (validated) `endpoint` names this host by name or address (a Unix socket is not a network endpoint)."""
    target = parse_endpoint(endpoint)
    return isinstance(target, DnsEndpoint) and target.is_loopback


def _describe(log_fields: Mapping[str, str], notes: Mapping[str, str] | None = None) -> str:
    """`key=value ...` of a decision's log line, then what the ask learnt besides the decision (a media scan's format,
    completeness, ...)."""
    described = " ".join(f"{k}={v}" for k, v in log_fields.items())
    if notes:
        described += " " + " ".join(f"{k}={v}" for k, v in notes.items())
    return described


def _signature(ids: Iterable[tuple[tuple[str, str], str]]) -> tuple[tuple[str, str], ...]:
    """What identifies a room's tracked state: its event ids by type (every tracked key has an empty state key)."""
    return tuple(sorted((key[0], event_id) for key, event_id in ids))


def _state_ids_reader(api: ModuleApi) -> Callable[[str], Awaitable[Mapping[tuple[str, str], str]]] | None:
    """`room_id -> {(type, ""): event id}` of the tracked state, from Synapse's state storage controller (no public
    accessor: the module API returns whole events). None when this Synapse has no such thing: the module API it is."""
    try:
        from synapse.types.state import StateFilter

        get_ids = api._storage_controllers.state.get_current_state_ids  # noqa: SLF001 - see above
        tracked = StateFilter.from_types(_TRACKED_KEYS)
    except Exception as err:  # noqa: BLE001 - any Synapse that moved it gets the public path
        logger.warning(
            "roomguard: cannot read state event ids from this Synapse (%s); room state is read through the module "
            "API on every call (slower, same decisions)",
            _where(err),
        )
        return None

    def read(room_id: str) -> Awaitable[Mapping[tuple[str, str], str]]:
        return get_ids(room_id, tracked)

    return read


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
