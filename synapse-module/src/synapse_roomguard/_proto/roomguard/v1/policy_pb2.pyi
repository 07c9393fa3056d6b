import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JoinRule(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOIN_RULE_UNSPECIFIED: _ClassVar[JoinRule]
    JOIN_RULE_PUBLIC: _ClassVar[JoinRule]
    JOIN_RULE_INVITE: _ClassVar[JoinRule]
    JOIN_RULE_KNOCK: _ClassVar[JoinRule]
    JOIN_RULE_RESTRICTED: _ClassVar[JoinRule]
    JOIN_RULE_KNOCK_RESTRICTED: _ClassVar[JoinRule]
    JOIN_RULE_PRIVATE: _ClassVar[JoinRule]

class HistoryVisibility(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HISTORY_VISIBILITY_UNSPECIFIED: _ClassVar[HistoryVisibility]
    HISTORY_VISIBILITY_WORLD_READABLE: _ClassVar[HistoryVisibility]
    HISTORY_VISIBILITY_SHARED: _ClassVar[HistoryVisibility]
    HISTORY_VISIBILITY_INVITED: _ClassVar[HistoryVisibility]
    HISTORY_VISIBILITY_JOINED: _ClassVar[HistoryVisibility]

class DirectoryVisibility(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DIRECTORY_VISIBILITY_UNSPECIFIED: _ClassVar[DirectoryVisibility]
    DIRECTORY_VISIBILITY_PUBLIC: _ClassVar[DirectoryVisibility]
    DIRECTORY_VISIBILITY_PRIVATE: _ClassVar[DirectoryVisibility]

class Effect(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EFFECT_UNSPECIFIED: _ClassVar[Effect]
    EFFECT_ALLOW: _ClassVar[Effect]
    EFFECT_DENY: _ClassVar[Effect]

class ReadKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    READ_KIND_UNSPECIFIED: _ClassVar[ReadKind]
    READ_KIND_HISTORY: _ClassVar[ReadKind]
    READ_KIND_SEARCH: _ClassVar[ReadKind]
    READ_KIND_SYNC_INITIAL: _ClassVar[ReadKind]
    READ_KIND_MEDIA: _ClassVar[ReadKind]
    READ_KIND_THUMBNAIL: _ClassVar[ReadKind]
    READ_KIND_OTHER: _ClassVar[ReadKind]
JOIN_RULE_UNSPECIFIED: JoinRule
JOIN_RULE_PUBLIC: JoinRule
JOIN_RULE_INVITE: JoinRule
JOIN_RULE_KNOCK: JoinRule
JOIN_RULE_RESTRICTED: JoinRule
JOIN_RULE_KNOCK_RESTRICTED: JoinRule
JOIN_RULE_PRIVATE: JoinRule
HISTORY_VISIBILITY_UNSPECIFIED: HistoryVisibility
HISTORY_VISIBILITY_WORLD_READABLE: HistoryVisibility
HISTORY_VISIBILITY_SHARED: HistoryVisibility
HISTORY_VISIBILITY_INVITED: HistoryVisibility
HISTORY_VISIBILITY_JOINED: HistoryVisibility
DIRECTORY_VISIBILITY_UNSPECIFIED: DirectoryVisibility
DIRECTORY_VISIBILITY_PUBLIC: DirectoryVisibility
DIRECTORY_VISIBILITY_PRIVATE: DirectoryVisibility
EFFECT_UNSPECIFIED: Effect
EFFECT_ALLOW: Effect
EFFECT_DENY: Effect
READ_KIND_UNSPECIFIED: ReadKind
READ_KIND_HISTORY: ReadKind
READ_KIND_SEARCH: ReadKind
READ_KIND_SYNC_INITIAL: ReadKind
READ_KIND_MEDIA: ReadKind
READ_KIND_THUMBNAIL: ReadKind
READ_KIND_OTHER: ReadKind

class Subject(_message.Message):
    __slots__ = ("user_id", "server_admin", "power_level")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SERVER_ADMIN_FIELD_NUMBER: _ClassVar[int]
    POWER_LEVEL_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    server_admin: bool
    power_level: int
    def __init__(self, user_id: _Optional[str] = ..., server_admin: _Optional[bool] = ..., power_level: _Optional[int] = ...) -> None: ...

class Room(_message.Message):
    __slots__ = ("room_id", "join_rule", "history_visibility", "encrypted", "guest_access", "published", "access_rule")
    ROOM_ID_FIELD_NUMBER: _ClassVar[int]
    JOIN_RULE_FIELD_NUMBER: _ClassVar[int]
    HISTORY_VISIBILITY_FIELD_NUMBER: _ClassVar[int]
    ENCRYPTED_FIELD_NUMBER: _ClassVar[int]
    GUEST_ACCESS_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_FIELD_NUMBER: _ClassVar[int]
    ACCESS_RULE_FIELD_NUMBER: _ClassVar[int]
    room_id: str
    join_rule: JoinRule
    history_visibility: HistoryVisibility
    encrypted: bool
    guest_access: bool
    published: bool
    access_rule: str
    def __init__(self, room_id: _Optional[str] = ..., join_rule: _Optional[_Union[JoinRule, str]] = ..., history_visibility: _Optional[_Union[HistoryVisibility, str]] = ..., encrypted: _Optional[bool] = ..., guest_access: _Optional[bool] = ..., published: _Optional[bool] = ..., access_rule: _Optional[str] = ...) -> None: ...

class Message(_message.Message):
    __slots__ = ("event_type", "msgtype", "body", "formatted_body", "filename", "mimetype", "size")
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    MSGTYPE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    FORMATTED_BODY_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    MIMETYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    event_type: str
    msgtype: str
    body: str
    formatted_body: str
    filename: str
    mimetype: str
    size: int
    def __init__(self, event_type: _Optional[str] = ..., msgtype: _Optional[str] = ..., body: _Optional[str] = ..., formatted_body: _Optional[str] = ..., filename: _Optional[str] = ..., mimetype: _Optional[str] = ..., size: _Optional[int] = ...) -> None: ...

class CheckRoomPublishRequest(_message.Message):
    __slots__ = ("request_id", "requester", "room", "visibility")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    REQUESTER_FIELD_NUMBER: _ClassVar[int]
    ROOM_FIELD_NUMBER: _ClassVar[int]
    VISIBILITY_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    requester: Subject
    room: Room
    visibility: DirectoryVisibility
    def __init__(self, request_id: _Optional[str] = ..., requester: _Optional[_Union[Subject, _Mapping]] = ..., room: _Optional[_Union[Room, _Mapping]] = ..., visibility: _Optional[_Union[DirectoryVisibility, str]] = ...) -> None: ...

class CheckRoomPublishResponse(_message.Message):
    __slots__ = ("decision",)
    DECISION_FIELD_NUMBER: _ClassVar[int]
    decision: Decision
    def __init__(self, decision: _Optional[_Union[Decision, _Mapping]] = ...) -> None: ...

class CheckMessageSendRequest(_message.Message):
    __slots__ = ("request_id", "sender", "room", "message")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    ROOM_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    sender: Subject
    room: Room
    message: Message
    def __init__(self, request_id: _Optional[str] = ..., sender: _Optional[_Union[Subject, _Mapping]] = ..., room: _Optional[_Union[Room, _Mapping]] = ..., message: _Optional[_Union[Message, _Mapping]] = ...) -> None: ...

class CheckMessageSendResponse(_message.Message):
    __slots__ = ("decision",)
    DECISION_FIELD_NUMBER: _ClassVar[int]
    decision: Decision
    def __init__(self, decision: _Optional[_Union[Decision, _Mapping]] = ...) -> None: ...

class Decision(_message.Message):
    __slots__ = ("effect", "reasons", "decision_id", "request_id", "policy_version", "roles", "classification", "shadow", "policy_effect")
    EFFECT_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    CLASSIFICATION_FIELD_NUMBER: _ClassVar[int]
    SHADOW_FIELD_NUMBER: _ClassVar[int]
    POLICY_EFFECT_FIELD_NUMBER: _ClassVar[int]
    effect: Effect
    reasons: _containers.RepeatedCompositeFieldContainer[Reason]
    decision_id: str
    request_id: str
    policy_version: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    classification: str
    shadow: bool
    policy_effect: Effect
    def __init__(self, effect: _Optional[_Union[Effect, str]] = ..., reasons: _Optional[_Iterable[_Union[Reason, _Mapping]]] = ..., decision_id: _Optional[str] = ..., request_id: _Optional[str] = ..., policy_version: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ..., classification: _Optional[str] = ..., shadow: _Optional[bool] = ..., policy_effect: _Optional[_Union[Effect, str]] = ...) -> None: ...

class Reason(_message.Message):
    __slots__ = ("code", "rule", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    rule: str
    message: str
    def __init__(self, code: _Optional[str] = ..., rule: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class GetPolicyStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetPolicyStatusResponse(_message.Message):
    __slots__ = ("policy_version", "loaded_at", "rules", "reloads_succeeded", "reloads_refused", "last_refused_at", "last_refused_error", "shared_counter_up", "reads_homeserver_up", "ocr_available")
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    LOADED_AT_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    RELOADS_SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    RELOADS_REFUSED_FIELD_NUMBER: _ClassVar[int]
    LAST_REFUSED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_REFUSED_ERROR_FIELD_NUMBER: _ClassVar[int]
    SHARED_COUNTER_UP_FIELD_NUMBER: _ClassVar[int]
    READS_HOMESERVER_UP_FIELD_NUMBER: _ClassVar[int]
    OCR_AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    policy_version: str
    loaded_at: _timestamp_pb2.Timestamp
    rules: int
    reloads_succeeded: int
    reloads_refused: int
    last_refused_at: _timestamp_pb2.Timestamp
    last_refused_error: str
    shared_counter_up: bool
    reads_homeserver_up: bool
    ocr_available: bool
    def __init__(self, policy_version: _Optional[str] = ..., loaded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rules: _Optional[int] = ..., reloads_succeeded: _Optional[int] = ..., reloads_refused: _Optional[int] = ..., last_refused_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_refused_error: _Optional[str] = ..., shared_counter_up: _Optional[bool] = ..., reads_homeserver_up: _Optional[bool] = ..., ocr_available: _Optional[bool] = ...) -> None: ...

class CheckRoomJoinRequest(_message.Message):
    __slots__ = ("request_id", "user", "room", "invited")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    ROOM_FIELD_NUMBER: _ClassVar[int]
    INVITED_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    user: Subject
    room: Room
    invited: bool
    def __init__(self, request_id: _Optional[str] = ..., user: _Optional[_Union[Subject, _Mapping]] = ..., room: _Optional[_Union[Room, _Mapping]] = ..., invited: _Optional[bool] = ...) -> None: ...

class CheckRoomJoinResponse(_message.Message):
    __slots__ = ("decision",)
    DECISION_FIELD_NUMBER: _ClassVar[int]
    decision: Decision
    def __init__(self, decision: _Optional[_Union[Decision, _Mapping]] = ...) -> None: ...

class CheckRoomStateChangeRequest(_message.Message):
    __slots__ = ("request_id", "sender", "room", "proposed", "event_type", "state_key")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    ROOM_FIELD_NUMBER: _ClassVar[int]
    PROPOSED_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    STATE_KEY_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    sender: Subject
    room: Room
    proposed: Room
    event_type: str
    state_key: str
    def __init__(self, request_id: _Optional[str] = ..., sender: _Optional[_Union[Subject, _Mapping]] = ..., room: _Optional[_Union[Room, _Mapping]] = ..., proposed: _Optional[_Union[Room, _Mapping]] = ..., event_type: _Optional[str] = ..., state_key: _Optional[str] = ...) -> None: ...

class CheckRoomStateChangeResponse(_message.Message):
    __slots__ = ("decision",)
    DECISION_FIELD_NUMBER: _ClassVar[int]
    decision: Decision
    def __init__(self, decision: _Optional[_Union[Decision, _Mapping]] = ...) -> None: ...

class CheckMediaUploadRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: MediaUploadHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[MediaUploadHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class MediaUploadHeader(_message.Message):
    __slots__ = ("request_id", "uploader", "media")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    UPLOADER_FIELD_NUMBER: _ClassVar[int]
    MEDIA_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    uploader: Subject
    media: Media
    def __init__(self, request_id: _Optional[str] = ..., uploader: _Optional[_Union[Subject, _Mapping]] = ..., media: _Optional[_Union[Media, _Mapping]] = ...) -> None: ...

class Media(_message.Message):
    __slots__ = ("media_id", "filename", "mimetype", "size", "remote")
    MEDIA_ID_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    MIMETYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    REMOTE_FIELD_NUMBER: _ClassVar[int]
    media_id: str
    filename: str
    mimetype: str
    size: int
    remote: bool
    def __init__(self, media_id: _Optional[str] = ..., filename: _Optional[str] = ..., mimetype: _Optional[str] = ..., size: _Optional[int] = ..., remote: _Optional[bool] = ...) -> None: ...

class CheckMediaUploadResponse(_message.Message):
    __slots__ = ("decision", "scan")
    DECISION_FIELD_NUMBER: _ClassVar[int]
    SCAN_FIELD_NUMBER: _ClassVar[int]
    decision: Decision
    scan: MediaScan
    def __init__(self, decision: _Optional[_Union[Decision, _Mapping]] = ..., scan: _Optional[_Union[MediaScan, _Mapping]] = ...) -> None: ...

class MediaScan(_message.Message):
    __slots__ = ("format", "bytes_read", "text_chars", "complete", "incomplete_reason", "ocr_pages", "ocr_chars")
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    BYTES_READ_FIELD_NUMBER: _ClassVar[int]
    TEXT_CHARS_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    INCOMPLETE_REASON_FIELD_NUMBER: _ClassVar[int]
    OCR_PAGES_FIELD_NUMBER: _ClassVar[int]
    OCR_CHARS_FIELD_NUMBER: _ClassVar[int]
    format: str
    bytes_read: int
    text_chars: int
    complete: bool
    incomplete_reason: str
    ocr_pages: int
    ocr_chars: int
    def __init__(self, format: _Optional[str] = ..., bytes_read: _Optional[int] = ..., text_chars: _Optional[int] = ..., complete: _Optional[bool] = ..., incomplete_reason: _Optional[str] = ..., ocr_pages: _Optional[int] = ..., ocr_chars: _Optional[int] = ...) -> None: ...

class CheckReadRequest(_message.Message):
    __slots__ = ("request_id", "method", "uri", "authorization", "reader")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    AUTHORIZATION_FIELD_NUMBER: _ClassVar[int]
    READER_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    method: str
    uri: str
    authorization: str
    reader: Subject
    def __init__(self, request_id: _Optional[str] = ..., method: _Optional[str] = ..., uri: _Optional[str] = ..., authorization: _Optional[str] = ..., reader: _Optional[_Union[Subject, _Mapping]] = ...) -> None: ...

class CheckReadResponse(_message.Message):
    __slots__ = ("decision", "kind", "room_id", "user_id", "retry_after_ms", "http_status", "matrix_error")
    DECISION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ROOM_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    HTTP_STATUS_FIELD_NUMBER: _ClassVar[int]
    MATRIX_ERROR_FIELD_NUMBER: _ClassVar[int]
    decision: Decision
    kind: ReadKind
    room_id: str
    user_id: str
    retry_after_ms: int
    http_status: int
    matrix_error: str
    def __init__(self, decision: _Optional[_Union[Decision, _Mapping]] = ..., kind: _Optional[_Union[ReadKind, str]] = ..., room_id: _Optional[str] = ..., user_id: _Optional[str] = ..., retry_after_ms: _Optional[int] = ..., http_status: _Optional[int] = ..., matrix_error: _Optional[str] = ...) -> None: ...
