//! Requests in the proto3 JSON form (what `grpcurl -d` and every protobuf JSON library write), for
//! `roomguard check`: `{"sender": {"userId": "@a:b"}, "room": {"joinRule": "JOIN_RULE_PUBLIC", ...}, ...}`.
//!
//! Field names are accepted in lowerCamelCase (the canonical form) and as written in the proto; enums by name or
//! number; 64-bit integers as numbers or strings, as proto3 JSON allows.

use serde::{Deserialize, Deserializer, de::Error as _};

use crate::{
    domain::{
        read::ReadRequest,
        request::{JoinRequest, PublishRequest, SendRequest, StateChangeRequest},
    },
    grpc::{
        InvalidArgument,
        convert::{ReadQuestion, room_at},
        proto,
    },
};

/// Why a text is not a request in proto3 JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonRequestError {
    /// Not JSON.
    #[error("line {line}: {message}")]
    Syntax {
        /// 1-based line of the error.
        line: usize,
        /// What the JSON parser says.
        message: String,
    },
    /// `--rpc` names no rpc.
    #[error("`--rpc {0}`: expected `send`, `publish`, `join`, `state` or `read`")]
    UnknownRpc(String),
    /// Neither `--rpc` nor the fields say which rpc.
    #[error(
        "cannot tell the rpc: give `sender`/`message` (send), `requester`/`visibility` (publish), `user`/`invited` \
         (join), `proposed`/`eventType` (state) or `uri`/`method` (read), or --rpc"
    )]
    UnknownKind,
    /// JSON, but not the fields of the request message.
    #[error("{0}")]
    Fields(String),
}

/// A request of either rpc, converted to the domain exactly as the service converts it.
#[derive(Debug, Clone, PartialEq)]
pub enum Question {
    /// "May the sender send this message?"
    Send(SendRequest),
    /// "May the requester publish (or unpublish) this room?"
    Publish(PublishRequest),
    /// "May the user join this room?"
    Join(JoinRequest),
    /// "May the sender change the room's state this way?"
    State(StateChangeRequest),
    /// "May this account make this read?"
    Read(ReadRequest),
}

/// Which rpc a JSON request is for.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonRequest {
    /// A `CheckMessageSendRequest`.
    Send(proto::CheckMessageSendRequest),
    /// A `CheckRoomPublishRequest`.
    Publish(proto::CheckRoomPublishRequest),
    /// A `CheckRoomJoinRequest`.
    Join(proto::CheckRoomJoinRequest),
    /// A `CheckRoomStateChangeRequest`.
    State(proto::CheckRoomStateChangeRequest),
    /// A `CheckReadRequest` (with its `reader`: `check` resolves no token), and the room's attributes as the
    /// homeserver would report them (`room`, a field of `check`'s own: the service reads them from the homeserver).
    Read(proto::CheckReadRequest, Option<proto::Room>),
}

impl JsonRequest {
    /// Parses a request; `rpc` (`send` or `publish`) says which, or it is told from the fields present (`message` or
    /// `sender` -> send; `requester` or `visibility` -> publish).
    pub fn parse(text: &str, rpc: Option<&str>) -> Result<JsonRequest, JsonRequestError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| JsonRequestError::Syntax {
                line: e.line(),
                message: e.to_string(),
            })?;
        let has = |keys: &[&str]| keys.iter().any(|k| value.get(*k).is_some());
        let kind = match rpc {
            Some("send") | Some("CheckMessageSend") => "send",
            Some("publish") | Some("CheckRoomPublish") => "publish",
            Some("join") | Some("CheckRoomJoin") => "join",
            Some("state") | Some("CheckRoomStateChange") => "state",
            Some("read") | Some("CheckRead") => "read",
            Some(other) => return Err(JsonRequestError::UnknownRpc(other.to_owned())),
            // `sender` is in send and state requests: the state-only fields decide first.
            None if has(&[
                "proposed",
                "eventType",
                "event_type",
                "stateKey",
                "state_key",
            ]) =>
            {
                "state"
            }
            None if has(&["uri", "method", "reader"]) => "read",
            None if has(&["message", "sender"]) => "send",
            None if has(&["requester", "visibility"]) => "publish",
            None if has(&["user", "invited"]) => "join",
            None => return Err(JsonRequestError::UnknownKind),
        };
        let fields = |e: serde_json::Error| JsonRequestError::Fields(e.to_string());
        if kind == "join" {
            let r: JoinJson = serde_json::from_value(value).map_err(fields)?;
            return Ok(JsonRequest::Join(proto::CheckRoomJoinRequest {
                request_id: r.request_id,
                user: r.user.map(Into::into),
                room: r.room.map(Into::into),
                invited: r.invited,
            }));
        }
        if kind == "read" {
            let r: ReadJson = serde_json::from_value(value).map_err(fields)?;
            return Ok(JsonRequest::Read(
                proto::CheckReadRequest {
                    request_id: r.request_id,
                    method: r.method.unwrap_or_else(|| "GET".to_owned()),
                    uri: r.uri,
                    authorization: r.authorization,
                    reader: r.reader.map(Into::into),
                },
                r.room.map(Into::into),
            ));
        }
        if kind == "state" {
            let r: StateJson = serde_json::from_value(value).map_err(fields)?;
            return Ok(JsonRequest::State(proto::CheckRoomStateChangeRequest {
                request_id: r.request_id,
                sender: r.sender.map(Into::into),
                room: r.room.map(Into::into),
                proposed: r.proposed.map(Into::into),
                event_type: r.event_type,
                state_key: r.state_key,
            }));
        }
        if kind == "send" {
            let r: SendJson = serde_json::from_value(value)
                .map_err(|e| JsonRequestError::Fields(e.to_string()))?;
            Ok(JsonRequest::Send(proto::CheckMessageSendRequest {
                request_id: r.request_id,
                sender: r.sender.map(Into::into),
                room: r.room.map(Into::into),
                message: r.message.map(Into::into),
            }))
        } else {
            let r: PublishJson = serde_json::from_value(value)
                .map_err(|e| JsonRequestError::Fields(e.to_string()))?;
            Ok(JsonRequest::Publish(proto::CheckRoomPublishRequest {
                request_id: r.request_id,
                requester: r.requester.map(Into::into),
                room: r.room.map(Into::into),
                visibility: r.visibility,
            }))
        }
    }
}

impl JsonRequest {
    /// The domain question, converted as the service converts a gRPC request (bad input: the field path).
    pub fn into_question(self) -> Result<Question, InvalidArgument> {
        Ok(match self {
            JsonRequest::Send(r) => Question::Send(SendRequest::try_from(r)?),
            JsonRequest::Publish(r) => Question::Publish(PublishRequest::try_from(r)?),
            JsonRequest::Join(r) => Question::Join(JoinRequest::try_from(r)?),
            JsonRequest::State(r) => Question::State(StateChangeRequest::try_from(r)?),
            JsonRequest::Read(r, room) => {
                if !r.authorization.is_empty() && r.reader.is_none() {
                    return Err(InvalidArgument::new(
                        "authorization",
                        "roomguard check resolves no token: give the account as `reader`",
                    ));
                }
                let question = ReadQuestion::try_from(r)?;
                let target = question.uri.target;
                let room = match (room, &target.room_id) {
                    (Some(mut room), Some(room_id)) => {
                        room.room_id.clone_from(room_id);
                        Some(room_at("room", Some(room))?)
                    }
                    (Some(_), None) => {
                        return Err(InvalidArgument::new(
                            "room",
                            "the URI names no room: this read has no room attributes",
                        ));
                    }
                    (None, _) => None,
                };
                Question::Read(ReadRequest {
                    request_id: question.request_id,
                    reader: question.reader,
                    target,
                    room,
                })
            }
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ReadJson {
    #[serde(default, alias = "request_id")]
    request_id: String,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    uri: String,
    #[serde(default)]
    authorization: String,
    #[serde(default)]
    reader: Option<SubjectJson>,
    #[serde(default)]
    room: Option<RoomJson>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SendJson {
    #[serde(default, alias = "request_id")]
    request_id: String,
    #[serde(default)]
    sender: Option<SubjectJson>,
    #[serde(default)]
    room: Option<RoomJson>,
    #[serde(default)]
    message: Option<MessageJson>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PublishJson {
    #[serde(default, alias = "request_id")]
    request_id: String,
    #[serde(default)]
    requester: Option<SubjectJson>,
    #[serde(default)]
    room: Option<RoomJson>,
    #[serde(default, deserialize_with = "visibility")]
    visibility: i32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct JoinJson {
    #[serde(default, alias = "request_id")]
    request_id: String,
    #[serde(default)]
    user: Option<SubjectJson>,
    #[serde(default)]
    room: Option<RoomJson>,
    #[serde(default)]
    invited: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct StateJson {
    #[serde(default, alias = "request_id")]
    request_id: String,
    #[serde(default)]
    sender: Option<SubjectJson>,
    #[serde(default)]
    room: Option<RoomJson>,
    #[serde(default)]
    proposed: Option<RoomJson>,
    #[serde(default, alias = "event_type")]
    event_type: String,
    #[serde(default, alias = "state_key")]
    state_key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SubjectJson {
    #[serde(default, alias = "user_id")]
    user_id: String,
    #[serde(default, alias = "server_admin")]
    server_admin: bool,
    #[serde(default, alias = "power_level", deserialize_with = "int64")]
    power_level: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RoomJson {
    #[serde(default, alias = "room_id")]
    room_id: String,
    #[serde(default, alias = "join_rule", deserialize_with = "join_rule")]
    join_rule: i32,
    #[serde(
        default,
        alias = "history_visibility",
        deserialize_with = "history_visibility"
    )]
    history_visibility: i32,
    #[serde(default)]
    encrypted: bool,
    #[serde(default, alias = "guest_access")]
    guest_access: bool,
    #[serde(default)]
    published: bool,
    #[serde(default, alias = "access_rule")]
    access_rule: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MessageJson {
    #[serde(default, alias = "event_type")]
    event_type: String,
    #[serde(default)]
    msgtype: String,
    #[serde(default)]
    body: String,
    #[serde(default, alias = "formatted_body")]
    formatted_body: String,
    #[serde(default)]
    filename: String,
    #[serde(default)]
    mimetype: String,
    #[serde(default, deserialize_with = "uint64")]
    size: u64,
}

impl From<SubjectJson> for proto::Subject {
    fn from(s: SubjectJson) -> Self {
        proto::Subject {
            user_id: s.user_id,
            server_admin: s.server_admin,
            power_level: s.power_level,
        }
    }
}

impl From<RoomJson> for proto::Room {
    fn from(r: RoomJson) -> Self {
        proto::Room {
            room_id: r.room_id,
            join_rule: r.join_rule,
            history_visibility: r.history_visibility,
            encrypted: r.encrypted,
            guest_access: r.guest_access,
            published: r.published,
            access_rule: r.access_rule,
        }
    }
}

impl From<MessageJson> for proto::Message {
    fn from(m: MessageJson) -> Self {
        proto::Message {
            event_type: m.event_type,
            msgtype: m.msgtype,
            body: m.body,
            formatted_body: m.formatted_body,
            filename: m.filename,
            mimetype: m.mimetype,
            size: m.size,
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrString {
    Signed(i64),
    Unsigned(u64),
    Text(String),
}

fn int64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    match NumberOrString::deserialize(d)? {
        NumberOrString::Signed(n) => Ok(n),
        NumberOrString::Unsigned(n) => i64::try_from(n).map_err(D::Error::custom),
        NumberOrString::Text(s) => s
            .parse()
            .map_err(|_| D::Error::custom(format!("`{s}` is not an int64"))),
    }
}

fn uint64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match NumberOrString::deserialize(d)? {
        NumberOrString::Signed(n) => u64::try_from(n).map_err(D::Error::custom),
        NumberOrString::Unsigned(n) => Ok(n),
        NumberOrString::Text(s) => s
            .parse()
            .map_err(|_| D::Error::custom(format!("`{s}` is not a uint64"))),
    }
}

fn enum_by<'de, D: Deserializer<'de>>(
    d: D,
    prefix: &str,
    parse: impl Fn(&str) -> Option<i32>,
) -> Result<i32, D::Error> {
    match NumberOrString::deserialize(d)? {
        NumberOrString::Signed(n) => i32::try_from(n).map_err(D::Error::custom),
        NumberOrString::Unsigned(n) => i32::try_from(n).map_err(D::Error::custom),
        NumberOrString::Text(s) => {
            let upper = s.to_ascii_uppercase();
            let full = if upper.starts_with(prefix) {
                upper
            } else {
                format!("{prefix}{upper}")
            };
            parse(&full).ok_or_else(|| D::Error::custom(format!("`{s}` is not a {prefix}* value")))
        }
    }
}

fn join_rule<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    enum_by(d, "JOIN_RULE_", |s| {
        proto::JoinRule::from_str_name(s).map(|v| v as i32)
    })
}

fn history_visibility<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    enum_by(d, "HISTORY_VISIBILITY_", |s| {
        proto::HistoryVisibility::from_str_name(s).map(|v| v as i32)
    })
}

fn visibility<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    enum_by(d, "DIRECTORY_VISIBILITY_", |s| {
        proto::DirectoryVisibility::from_str_name(s).map(|v| v as i32)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The canonical proto3 JSON form parses, with enums by name and 64-bit integers as strings.
    #[test]
    fn parses_canonical_json() {
        let text = r#"{"requestId": "r1", "sender": {"userId": "@a:b.c", "powerLevel": "50"},
            "room": {"roomId": "!r:b.c", "joinRule": "JOIN_RULE_PUBLIC", "historyVisibility": 2},
            "message": {"eventType": "m.room.message", "body": "x", "size": "1024"}}"#;
        let JsonRequest::Send(r) = JsonRequest::parse(text, None).unwrap() else {
            panic!("not a send")
        };
        assert_eq!(r.request_id, "r1");
        assert_eq!(r.sender.unwrap().power_level, 50);
        let room = r.room.unwrap();
        assert_eq!(
            (room.join_rule, room.history_visibility),
            (proto::JoinRule::Public as i32, 2)
        );
        assert_eq!(r.message.unwrap().size, 1024);
    }

    /// Field names as written in the proto and short enum names are accepted too; the rpc is told from the fields.
    #[test]
    fn parses_snake_case_and_short_enums() {
        let text = r#"{"requester": {"user_id": "@a:b.c", "power_level": 100},
            "room": {"room_id": "!r:b.c", "join_rule": "public", "history_visibility": "shared"},
            "visibility": "PUBLIC"}"#;
        let JsonRequest::Publish(r) = JsonRequest::parse(text, None).unwrap() else {
            panic!("not a publish")
        };
        assert_eq!(r.visibility, proto::DirectoryVisibility::Public as i32);
    }

    /// Mistakes are explained.
    #[test]
    fn explains_mistakes() {
        assert!(
            JsonRequest::parse("{", None)
                .unwrap_err()
                .to_string()
                .contains("line")
        );
        assert!(
            JsonRequest::parse("{}", None)
                .unwrap_err()
                .to_string()
                .contains("cannot tell")
        );
        assert!(
            JsonRequest::parse(r#"{"sender": {"userid": "x"}}"#, None)
                .unwrap_err()
                .to_string()
                .contains("userid")
        );
        assert!(
            JsonRequest::parse(r#"{"room": {"joinRule": "OPEN"}}"#, Some("send"))
                .unwrap_err()
                .to_string()
                .contains("OPEN")
        );
    }

    /// A read is told from its `uri`; the account is `reader`, the room's attributes `room`, which takes the path's
    /// room id.
    #[test]
    fn parses_a_read() {
        let text = r#"{"reader": {"userId": "@a:agent.tchap.gouv.fr"},
            "uri": "/_matrix/client/v3/rooms/%21r%3As/messages", "room": {"joinRule": "public", "historyVisibility": "shared"}}"#;
        let Question::Read(read) = JsonRequest::parse(text, None)
            .unwrap()
            .into_question()
            .unwrap()
        else {
            panic!("not a read")
        };
        assert_eq!(read.target.kind, crate::domain::read::ReadKind::History);
        assert_eq!(read.room.unwrap().room_id, "!r:s");
        assert_eq!(
            read.reader.unwrap().user_id.as_str(),
            "@a:agent.tchap.gouv.fr"
        );
        let token = r#"{"uri": "/_matrix/client/v3/sync", "authorization": "Bearer x"}"#;
        let err = JsonRequest::parse(token, None)
            .unwrap()
            .into_question()
            .unwrap_err();
        assert_eq!(err.field, "authorization");
        let bad = r#"{"uri": "/_matrix/client/v3/rooms/%zz/messages"}"#;
        let err = JsonRequest::parse(bad, None)
            .unwrap()
            .into_question()
            .unwrap_err();
        assert_eq!(err.field, "uri");
    }
}
