//! Conversions between the protobuf messages and the domain types.
//!
//! Every rejection names the field path the caller got wrong (`sender.user_id: must start with `@``), so a client
//! developer can fix the call from the status message alone. Nothing here panics, whatever the input.

use crate::{
    domain::{
        decision::{Decision, Effect},
        limits::{MAX_EVENT_BYTES, MAX_ID_BYTES},
        media::{Media, UploadRequest, check_media_id},
        message::Message,
        read::ReadKind,
        read_uri::{ReadUri, ReadUriError},
        request::{JoinRequest, PublishRequest, SendRequest, StateChangeRequest},
        room::{HistoryVisibility, JoinRule, Room, RoomIdError, check_room_id},
        subject::{Subject, UserId},
    },
    grpc::proto,
    ops::reads::{ReadAnswer, guard::MAX_AUTHORIZATION_BYTES},
};

/// A request field that is missing or malformed: becomes `INVALID_ARGUMENT` with `field: problem`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct InvalidArgument {
    /// The field path, e.g. `sender.user_id`.
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

impl InvalidArgument {
    pub(crate) fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        InvalidArgument {
            field: field.into(),
            problem: problem.into(),
        }
    }

    /// The same problem, its field inside `parent` (`request_id` -> `header.request_id`).
    fn under(self, parent: &str) -> Self {
        InvalidArgument {
            field: format!("{parent}.{}", self.field),
            ..self
        }
    }
}

impl From<InvalidArgument> for tonic::Status {
    fn from(err: InvalidArgument) -> Self {
        tonic::Status::invalid_argument(err.to_string())
    }
}

impl TryFrom<proto::CheckRoomPublishRequest> for PublishRequest {
    type Error = InvalidArgument;

    fn try_from(req: proto::CheckRoomPublishRequest) -> Result<Self, Self::Error> {
        let request_id = request_id(req.request_id)?;
        let requester = subject("requester", req.requester)?;
        let room = room(req.room)?;
        let publish = match proto::DirectoryVisibility::try_from(req.visibility) {
            Ok(proto::DirectoryVisibility::Public) => true,
            Ok(proto::DirectoryVisibility::Private) => false,
            Ok(proto::DirectoryVisibility::Unspecified) => {
                return Err(InvalidArgument::new(
                    "visibility",
                    "must be DIRECTORY_VISIBILITY_PUBLIC (publish) or DIRECTORY_VISIBILITY_PRIVATE (unpublish)",
                ));
            }
            Err(_) => return Err(unknown_enum("visibility", req.visibility)),
        };
        Ok(PublishRequest {
            request_id,
            requester,
            room,
            publish,
        })
    }
}

impl TryFrom<proto::CheckMessageSendRequest> for SendRequest {
    type Error = InvalidArgument;

    fn try_from(req: proto::CheckMessageSendRequest) -> Result<Self, Self::Error> {
        let request_id = request_id(req.request_id)?;
        let sender = subject("sender", req.sender)?;
        let room = room(req.room)?;
        let message = message(req.message)?;
        Ok(SendRequest {
            request_id,
            sender,
            room,
            message,
        })
    }
}

impl TryFrom<proto::CheckRoomJoinRequest> for JoinRequest {
    type Error = InvalidArgument;

    fn try_from(req: proto::CheckRoomJoinRequest) -> Result<Self, Self::Error> {
        Ok(JoinRequest {
            request_id: request_id(req.request_id)?,
            user: subject("user", req.user)?,
            room: room(req.room)?,
            invited: req.invited,
        })
    }
}

impl TryFrom<proto::CheckRoomStateChangeRequest> for StateChangeRequest {
    type Error = InvalidArgument;

    fn try_from(req: proto::CheckRoomStateChangeRequest) -> Result<Self, Self::Error> {
        let request_id = request_id(req.request_id)?;
        let sender = subject("sender", req.sender)?;
        let room = room(req.room)?;
        let proposed = room_at("proposed", req.proposed)?;
        if proposed.room_id != room.room_id {
            return Err(InvalidArgument::new(
                "proposed.room_id",
                format!(
                    "`{}` must be the room's own id, `{}`",
                    shown(&proposed.room_id),
                    shown(&room.room_id)
                ),
            ));
        }
        if req.event_type.is_empty() {
            return Err(InvalidArgument::new(
                "event_type",
                "is required (e.g. `m.room.join_rules`, or `m.room.create` for a new room)",
            ));
        }
        for (field, value) in [
            ("event_type", &req.event_type),
            ("state_key", &req.state_key),
        ] {
            if value.len() > MAX_ID_BYTES {
                return Err(InvalidArgument::new(
                    field,
                    format!("is {} bytes, at most {MAX_ID_BYTES}", value.len()),
                ));
            }
        }
        Ok(StateChangeRequest {
            request_id,
            sender,
            room,
            proposed,
            event_type: req.event_type,
            state_key: req.state_key,
        })
    }
}

impl TryFrom<proto::MediaUploadHeader> for UploadRequest {
    type Error = InvalidArgument;

    /// Every field is optional (Synapse's media hook knows neither the uploader, nor the name, nor the type); what is
    /// present is checked like the other rpcs' fields.
    fn try_from(header: proto::MediaUploadHeader) -> Result<Self, Self::Error> {
        let request_id = request_id(header.request_id).map_err(|e| e.under("header"))?;
        let uploader = match header.uploader {
            Some(uploader) => Some(subject("header.uploader", Some(uploader))?),
            None => None,
        };
        let media = header.media.unwrap_or_default();
        if !media.media_id.is_empty() {
            check_media_id(&media.media_id).map_err(|e| {
                InvalidArgument::new(
                    "header.media.media_id",
                    format!("`{}`: {e}", shown(&media.media_id)),
                )
            })?;
        }
        for (field, value) in [
            ("header.media.media_id", &media.media_id),
            ("header.media.filename", &media.filename),
            ("header.media.mimetype", &media.mimetype),
        ] {
            if value.len() > MAX_ID_BYTES {
                return Err(InvalidArgument::new(
                    field,
                    format!("is {} bytes, at most {MAX_ID_BYTES}", value.len()),
                ));
            }
        }
        Ok(UploadRequest {
            request_id,
            uploader,
            media: Media {
                media_id: media.media_id,
                filename: media.filename,
                mimetype: media.mimetype,
                size: media.size,
                remote: media.remote,
            },
        })
    }
}

fn request_id(id: String) -> Result<String, InvalidArgument> {
    if id.len() > MAX_ID_BYTES {
        return Err(InvalidArgument::new(
            "request_id",
            format!("is {} bytes, at most {MAX_ID_BYTES}", id.len()),
        ));
    }
    Ok(id)
}

fn subject(field: &str, subject: Option<proto::Subject>) -> Result<Subject, InvalidArgument> {
    let subject = subject.ok_or_else(|| InvalidArgument::new(field, "is required"))?;
    let user_id = UserId::parse_owned(subject.user_id).map_err(|(e, user_id)| {
        InvalidArgument::new(
            format!("{field}.user_id"),
            format!("`{}` {e}", shown(&user_id)),
        )
    })?;
    Ok(Subject {
        user_id,
        server_admin: subject.server_admin,
        power_level: subject.power_level,
    })
}

/// A `Room` at `field` (`room`, `proposed`), every error naming the field path.
/// A room given under `field` (required), checked as every request's room.
pub(crate) fn room_at(field: &str, room: Option<proto::Room>) -> Result<Room, InvalidArgument> {
    let room = room.ok_or_else(|| InvalidArgument::new(field, "is required"))?;
    check_room_id(&room.room_id).map_err(|e| {
        let problem = match e {
            // Nothing to quote, or too long to quote usefully.
            RoomIdError::Empty | RoomIdError::TooLong(_) => e.to_string(),
            _ => format!("`{}` {e}", shown(&room.room_id)),
        };
        InvalidArgument::new(format!("{field}.room_id"), problem)
    })?;
    let join_rule = match proto::JoinRule::try_from(room.join_rule) {
        Ok(proto::JoinRule::Public) => JoinRule::Public,
        Ok(proto::JoinRule::Invite) => JoinRule::Invite,
        Ok(proto::JoinRule::Knock) => JoinRule::Knock,
        Ok(proto::JoinRule::Restricted) => JoinRule::Restricted,
        Ok(proto::JoinRule::KnockRestricted) => JoinRule::KnockRestricted,
        Ok(proto::JoinRule::Private) => JoinRule::Private,
        Ok(proto::JoinRule::Unspecified) => {
            return Err(InvalidArgument::new(
                format!("{field}.join_rule"),
                "must be set (JOIN_RULE_UNSPECIFIED is not a join rule)",
            ));
        }
        Err(_) => return Err(unknown_enum(&format!("{field}.join_rule"), room.join_rule)),
    };
    let history_visibility = match proto::HistoryVisibility::try_from(room.history_visibility) {
        Ok(proto::HistoryVisibility::WorldReadable) => HistoryVisibility::WorldReadable,
        Ok(proto::HistoryVisibility::Shared) => HistoryVisibility::Shared,
        Ok(proto::HistoryVisibility::Invited) => HistoryVisibility::Invited,
        Ok(proto::HistoryVisibility::Joined) => HistoryVisibility::Joined,
        Ok(proto::HistoryVisibility::Unspecified) => {
            return Err(InvalidArgument::new(
                format!("{field}.history_visibility"),
                "must be set (HISTORY_VISIBILITY_UNSPECIFIED is not a history visibility)",
            ));
        }
        Err(_) => {
            return Err(unknown_enum(
                &format!("{field}.history_visibility"),
                room.history_visibility,
            ));
        }
    };
    if room.access_rule.len() > MAX_ID_BYTES {
        return Err(InvalidArgument::new(
            format!("{field}.access_rule"),
            format!("is longer than {MAX_ID_BYTES} bytes"),
        ));
    }
    Ok(Room {
        room_id: room.room_id,
        join_rule,
        history_visibility,
        encrypted: room.encrypted,
        guest_access: room.guest_access,
        published: room.published,
        access_rule: room.access_rule,
    })
}

fn room(room: Option<proto::Room>) -> Result<Room, InvalidArgument> {
    room_at("room", room)
}

fn message(message: Option<proto::Message>) -> Result<Message, InvalidArgument> {
    let m = message.ok_or_else(|| InvalidArgument::new("message", "is required"))?;
    if m.event_type.is_empty() {
        return Err(InvalidArgument::new(
            "message.event_type",
            "is required (e.g. `m.room.message`)",
        ));
    }
    for (field, value) in [
        ("message.event_type", &m.event_type),
        ("message.msgtype", &m.msgtype),
        ("message.mimetype", &m.mimetype),
    ] {
        if value.len() > MAX_ID_BYTES {
            return Err(InvalidArgument::new(
                field,
                format!("is {} bytes, at most {MAX_ID_BYTES}", value.len()),
            ));
        }
    }
    // The text a user wrote; the short identifier fields are bounded separately above.
    let text = m.body.len() + m.formatted_body.len() + m.filename.len();
    if text > MAX_EVENT_BYTES {
        let field = [
            ("message.body", m.body.len()),
            ("message.formatted_body", m.formatted_body.len()),
            ("message.filename", m.filename.len()),
        ]
        .into_iter()
        .find(|(_, len)| *len > MAX_EVENT_BYTES)
        .map_or(
            "message.body, message.formatted_body, message.filename",
            |(f, _)| f,
        );
        return Err(InvalidArgument::new(
            field,
            format!(
                "the message text is {text} bytes; a Matrix event holds at most {MAX_EVENT_BYTES}"
            ),
        ));
    }
    Ok(Message {
        event_type: m.event_type,
        msgtype: m.msgtype,
        body: m.body,
        formatted_body: m.formatted_body,
        filename: m.filename,
        mimetype: m.mimetype,
        size: m.size,
    })
}

fn unknown_enum(field: &str, value: i32) -> InvalidArgument {
    InvalidArgument::new(field, format!("{value} is not a known value"))
}

/// Quotes caller input in an error without echoing a huge or control-laden string back.
fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(64).flat_map(char::escape_default).collect();
    if s.chars().count() > 64 {
        out.push_str("...");
    }
    out
}

/// A `CheckReadRequest`, checked and classified. No `Debug`: it holds the request's access token.
#[derive(Clone)]
pub(crate) struct ReadQuestion {
    pub request_id: String,
    pub method: String,
    /// The URI as sent (for the log of a malformed one: never logged whole).
    pub uri_text: String,
    pub uri: ReadUri,
    pub authorization: Option<String>,
    pub reader: Option<Subject>,
}

impl TryFrom<proto::CheckReadRequest> for ReadQuestion {
    type Error = InvalidArgument;

    fn try_from(req: proto::CheckReadRequest) -> Result<Self, Self::Error> {
        let request_id = request_id(req.request_id)?;
        if req.method.is_empty() {
            return Err(InvalidArgument::new(
                "method",
                "is required (`GET`, `POST`...)",
            ));
        }
        if req.uri.is_empty() {
            return Err(InvalidArgument::new(
                "uri",
                "is required: the request's path and query as the client sent them",
            ));
        }
        if req.authorization.len() > MAX_AUTHORIZATION_BYTES {
            return Err(InvalidArgument::new(
                "authorization",
                format!(
                    "is {} bytes, at most {MAX_AUTHORIZATION_BYTES}",
                    req.authorization.len()
                ),
            ));
        }
        let uri = ReadUri::parse(&req.method, &req.uri).map_err(|err| match err {
            ReadUriError::BadMethod => InvalidArgument::new("method", err.to_string()),
            _ => InvalidArgument::new("uri", err.to_string()),
        })?;
        let reader = match req.reader {
            Some(reader) => Some(subject("reader", Some(reader))?),
            None => None,
        };
        Ok(ReadQuestion {
            request_id,
            method: req.method,
            uri_text: req.uri,
            uri,
            authorization: (!req.authorization.is_empty()).then_some(req.authorization),
            reader,
        })
    }
}

impl From<ReadAnswer> for proto::CheckReadResponse {
    /// The answer; in shadow mode the decision's effect is ALLOW, marked `shadow`, the policy's in `policy_effect`.
    fn from(answer: ReadAnswer) -> Self {
        let kind = match answer.kind() {
            ReadKind::History => proto::ReadKind::History,
            ReadKind::Search => proto::ReadKind::Search,
            ReadKind::SyncInitial => proto::ReadKind::SyncInitial,
            ReadKind::Media => proto::ReadKind::Media,
            ReadKind::Thumbnail => proto::ReadKind::Thumbnail,
            ReadKind::Other => proto::ReadKind::Other,
        } as i32;
        let status = answer.status();
        let matrix_error = status.map(|_| answer.matrix_error()).unwrap_or_default();
        let retry_after_ms = answer
            .retry_after
            .filter(|_| status == Some(429))
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut decision = proto::Decision::from(answer.decision.clone());
        if answer.shadow {
            decision.shadow = true;
            decision.effect = proto::Effect::Allow as i32;
        }
        proto::CheckReadResponse {
            kind,
            room_id: answer.room_id().unwrap_or_default().to_owned(),
            user_id: answer
                .user_id
                .as_ref()
                .map(|u| u.as_str().to_owned())
                .unwrap_or_default(),
            retry_after_ms,
            http_status: status.map_or(0, u32::from),
            matrix_error,
            decision: Some(decision),
        }
    }
}

impl From<Decision> for proto::Decision {
    /// The policy's decision as is (`shadow` false, `policy_effect` equal to `effect`); the service marks shadow
    /// answers.
    fn from(d: Decision) -> Self {
        let effect = match d.effect {
            Effect::Allow => proto::Effect::Allow,
            Effect::Deny => proto::Effect::Deny,
        } as i32;
        proto::Decision {
            effect,
            shadow: false,
            policy_effect: effect,
            reasons: d
                .reasons
                .into_iter()
                .map(|r| proto::Reason {
                    code: r.code,
                    rule: r.rule,
                    message: r.message,
                })
                .collect(),
            decision_id: d.decision_id,
            request_id: d.request_id,
            policy_version: d.policy_version,
            roles: d.roles,
            classification: d.classification,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid_send() -> proto::CheckMessageSendRequest {
        proto::CheckMessageSendRequest {
            request_id: "r1".into(),
            sender: Some(proto::Subject {
                user_id: "@a:agent.tchap.gouv.fr".into(),
                server_admin: false,
                power_level: 0,
            }),
            room: Some(proto::Room {
                room_id: "!room:agent.tchap.gouv.fr".into(),
                join_rule: proto::JoinRule::Invite as i32,
                history_visibility: proto::HistoryVisibility::Shared as i32,
                ..Default::default()
            }),
            message: Some(proto::Message {
                event_type: "m.room.message".into(),
                body: "hello".into(),
                ..Default::default()
            }),
        }
    }

    fn field_of(req: proto::CheckMessageSendRequest) -> String {
        SendRequest::try_from(req).unwrap_err().field
    }

    /// A well-formed request converts.
    #[test]
    fn valid_request_converts() {
        let req = SendRequest::try_from(valid_send()).unwrap();
        assert_eq!(req.sender.user_id.as_str(), "@a:agent.tchap.gouv.fr");
        assert_eq!(req.room.join_rule, JoinRule::Invite);
    }

    /// Each kind of bad input names its field.
    #[test]
    fn bad_input_names_the_field() {
        let mut r = valid_send();
        r.sender = None;
        assert_eq!(field_of(r), "sender");
        let mut r = valid_send();
        r.sender.as_mut().unwrap().user_id = "alice".into();
        assert_eq!(field_of(r), "sender.user_id");
        let mut r = valid_send();
        r.room.as_mut().unwrap().room_id = "#alias:server".into();
        assert_eq!(field_of(r), "room.room_id");
        let mut r = valid_send();
        r.room.as_mut().unwrap().join_rule = 0;
        assert_eq!(field_of(r), "room.join_rule");
        let mut r = valid_send();
        r.room.as_mut().unwrap().join_rule = 42;
        assert_eq!(field_of(r), "room.join_rule");
        let mut r = valid_send();
        r.room.as_mut().unwrap().history_visibility = 0;
        assert_eq!(field_of(r), "room.history_visibility");
        let mut r = valid_send();
        r.message = None;
        assert_eq!(field_of(r), "message");
        let mut r = valid_send();
        r.message.as_mut().unwrap().event_type.clear();
        assert_eq!(field_of(r), "message.event_type");
        let mut r = valid_send();
        r.message.as_mut().unwrap().body = "x".repeat(MAX_EVENT_BYTES + 1);
        assert_eq!(field_of(r), "message.body");
        let mut r = valid_send();
        r.message.as_mut().unwrap().body = "x".repeat(40_000);
        r.message.as_mut().unwrap().formatted_body = "x".repeat(40_000);
        assert!(field_of(r).contains("message.formatted_body"));
        let mut r = valid_send();
        r.request_id = "x".repeat(300);
        assert_eq!(field_of(r), "request_id");
    }

    /// The limit is inclusive: a body of exactly 65,536 bytes is a valid event, one byte more is not; so is the
    /// Matrix user id limit of 255 bytes.
    #[test]
    fn limits_are_inclusive() {
        let mut r = valid_send();
        r.message.as_mut().unwrap().body = "x".repeat(MAX_EVENT_BYTES);
        assert!(SendRequest::try_from(r).is_ok());
        let mut r = valid_send();
        r.sender.as_mut().unwrap().user_id = format!("@{}:example.org", "a".repeat(255 - 13));
        assert_eq!(r.sender.as_ref().unwrap().user_id.len(), 255);
        assert!(SendRequest::try_from(r.clone()).is_ok());
        r.sender.as_mut().unwrap().user_id.insert(1, 'a');
        assert_eq!(field_of(r), "sender.user_id");
    }

    /// Room ids of every room version are accepted; anything else is not.
    #[test]
    fn room_ids() {
        for ok in [
            "!abc:example.org",
            "!abc:example.org:8448",
            "!31hneApxJ_1o-63DmFrpeqnkFfWppnzWso1JvH3ogLM",
        ] {
            assert!(check_room_id(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "abc:example.org",
            "!",
            "!:example.org",
            "!a b:example.org",
            "!abc:bad host",
            "!é",
        ] {
            assert!(check_room_id(bad).is_err(), "{bad}");
        }
    }

    /// Unpublish is visibility PRIVATE; UNSPECIFIED is refused.
    #[test]
    fn visibility() {
        let base = proto::CheckRoomPublishRequest {
            request_id: String::new(),
            requester: valid_send().sender,
            room: valid_send().room,
            visibility: proto::DirectoryVisibility::Private as i32,
        };
        assert!(!PublishRequest::try_from(base.clone()).unwrap().publish);
        let unspecified = proto::CheckRoomPublishRequest {
            visibility: 0,
            ..base
        };
        assert_eq!(
            PublishRequest::try_from(unspecified).unwrap_err().field,
            "visibility"
        );
    }
}
