//! Requests written by hand, as policy authors write them in suite files (`policies/tests/*.yaml`): the fields of the
//! proto messages, with enum values by name (`public` or `JOIN_RULE_PUBLIC`). They are turned into domain requests
//! through the very conversion gRPC requests go through, so a suite also pins what the service refuses as invalid.

use serde::Deserialize;

use crate::{
    domain::{
        media::UploadRequest,
        read::{ReadCounts, ReadRequest, Tally},
        request::{JoinRequest, PublishRequest, SendRequest, StateChangeRequest},
    },
    grpc::{
        InvalidArgument,
        convert::{ReadQuestion, room_at},
        proto,
    },
};

/// A case that cannot even be made into a request (as opposed to a request the service refuses as invalid).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaseError {
    /// An enum value that is not a name of the enum.
    #[error("`{value}` is not a value of {prefix}*")]
    UnknownEnumValue {
        /// As written.
        value: String,
        /// The enum's value prefix (`JOIN_RULE_`).
        prefix: &'static str,
    },
}

/// The fields of a `CheckMessageSendRequest`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendCase {
    /// The sender.
    #[serde(default)]
    pub sender: Option<SubjectCase>,
    /// The room.
    #[serde(default)]
    pub room: Option<RoomCase>,
    /// The message.
    #[serde(default)]
    pub message: Option<MessageCase>,
}

/// The fields of a `CheckRoomPublishRequest`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishCase {
    /// The requester.
    #[serde(default)]
    pub requester: Option<SubjectCase>,
    /// The room.
    #[serde(default)]
    pub room: Option<RoomCase>,
    /// `public` (publish) or `private` (unpublish).
    pub visibility: String,
}

/// The fields of a `CheckRoomJoinRequest`, and the user's recent public joins.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinCase {
    /// Who joins.
    #[serde(default)]
    pub user: Option<SubjectCase>,
    /// The room.
    #[serde(default)]
    pub room: Option<RoomCase>,
    /// The user holds an invite.
    #[serde(default)]
    pub invited: bool,
    /// What the server's counter would say: the user's allowed public joins without an invite in the last hour.
    #[serde(default)]
    pub public_joins_1h: u32,
}

/// The fields of a `CheckRoomStateChangeRequest`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateCase {
    /// Who sends the state event.
    #[serde(default)]
    pub sender: Option<SubjectCase>,
    /// The room now.
    #[serde(default)]
    pub room: Option<RoomCase>,
    /// The room once the event is applied (its `room_id` defaults to the room's, like `room`'s).
    #[serde(default)]
    pub proposed: Option<RoomCase>,
    /// The state event's type.
    #[serde(default)]
    pub event_type: String,
    /// The state event's state key.
    #[serde(default)]
    pub state_key: String,
}

/// The header of a `CheckMediaUpload` stream, and the file: a fixture (`file:`, a path relative to the suite file) or
/// text written in the case (`content:`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadCase {
    /// The file to upload, relative to the suite file.
    #[serde(default)]
    pub file: Option<String>,
    /// The file's content, written in the case (UTF-8), instead of `file`.
    #[serde(default)]
    pub content: Option<String>,
    /// The uploader, when the caller knows it.
    #[serde(default)]
    pub uploader: Option<SubjectCase>,
    /// `mxc://server/id`.
    #[serde(default)]
    pub media_id: String,
    /// The file name the client gave (Synapse's hook gives none).
    #[serde(default)]
    pub filename: String,
    /// The declared type.
    #[serde(default)]
    pub mimetype: String,
    /// The file comes from another homeserver.
    #[serde(default)]
    pub remote: bool,
}

/// A read the reverse proxy asks about (the fields of a `CheckReadRequest`, the account resolved), with what the
/// homeserver and the counter would say: the room's attributes and the account's counts in the last hour.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadCase {
    /// The account; none for a request without a token (or with one the homeserver does not know).
    #[serde(default)]
    pub user: Option<SubjectCase>,
    /// Defaults to `GET`.
    #[serde(default = "default_method")]
    pub method: String,
    /// The URI as the client sent it.
    pub uri: String,
    /// The attributes of the path's room as the homeserver reports them (its id is the path's); none: unknown.
    #[serde(default)]
    pub room: Option<RoomCase>,
    /// The account's counts in the last hour, before this request.
    #[serde(default)]
    pub counts: ReadCountsCase,
    /// The path's room is among the rooms whose history the account read in the last hour.
    #[serde(default)]
    pub room_already_read: bool,
}

/// An account's read counts in the last hour, named as rules read them (`r.read.<name>`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadCountsCase {
    /// Distinct rooms whose history the account read.
    #[serde(default)]
    pub history_rooms_1h: u32,
    /// History requests.
    #[serde(default)]
    pub history_requests_1h: u32,
    /// Initial syncs.
    #[serde(default)]
    pub initial_syncs_1h: u32,
    /// Searches.
    #[serde(default)]
    pub searches_1h: u32,
    /// Media downloads.
    #[serde(default)]
    pub media_downloads_1h: u32,
    /// Thumbnails.
    #[serde(default)]
    pub thumbnails_1h: u32,
}

fn default_method() -> String {
    "GET".to_owned()
}

impl ReadCase {
    /// The read this case describes, classified and converted as the `CheckRead` rpc converts it, and the counts.
    pub fn to_request(
        &self,
    ) -> Result<Result<(ReadRequest, ReadCounts), InvalidArgument>, CaseError> {
        let room = self.room.as_ref().map(RoomCase::to_proto).transpose()?;
        let request = proto::CheckReadRequest {
            request_id: String::new(),
            method: self.method.clone(),
            uri: self.uri.clone(),
            authorization: String::new(),
            reader: self.user.as_ref().map(SubjectCase::to_proto),
        };
        let question = match ReadQuestion::try_from(request) {
            Ok(question) => question,
            Err(invalid) => return Ok(Err(invalid)),
        };
        let target = question.uri.target;
        let room = match (room, &target.room_id) {
            (Some(mut room), Some(room_id)) => {
                room.room_id.clone_from(room_id);
                match room_at("room", Some(room)) {
                    Ok(room) => Some(room),
                    Err(invalid) => return Ok(Err(invalid)),
                }
            }
            _ => None,
        };
        let c = &self.counts;
        let counts = ReadCounts {
            history_rooms: Tally::of(c.history_rooms_1h),
            room_already_read: self.room_already_read,
            history_requests: Tally::of(c.history_requests_1h),
            initial_syncs: Tally::of(c.initial_syncs_1h),
            searches: Tally::of(c.searches_1h),
            media_downloads: Tally::of(c.media_downloads_1h),
            thumbnails: Tally::of(c.thumbnails_1h),
        };
        Ok(Ok((
            ReadRequest {
                request_id: String::new(),
                reader: question.reader,
                target,
                room,
            },
            counts,
        )))
    }
}

/// A `Subject`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectCase {
    /// Matrix user id.
    pub user_id: String,
    /// Server admin flag.
    #[serde(default)]
    pub server_admin: bool,
    /// Power level in the room.
    #[serde(default)]
    pub power_level: i64,
}

/// A `Room`; enum values are written short (`public`) or in full (`JOIN_RULE_PUBLIC`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomCase {
    /// Defaults to `!test:agent.tchap.gouv.fr`.
    #[serde(default = "default_room_id")]
    pub room_id: String,
    /// `public`, `invite`, `knock`, `restricted`, `knock_restricted`, `private`.
    #[serde(default)]
    pub join_rule: String,
    /// `world_readable`, `shared`, `invited`, `joined`.
    #[serde(default)]
    pub history_visibility: String,
    /// Encrypted room.
    #[serde(default)]
    pub encrypted: bool,
    /// Guests can really join (effective guest access: the room allows it and so does the homeserver).
    #[serde(default)]
    pub guest_access: bool,
    /// Listed in the directory.
    #[serde(default)]
    pub published: bool,
    /// Tchap access rule.
    #[serde(default)]
    pub access_rule: String,
}

fn default_room_id() -> String {
    "!test:agent.tchap.gouv.fr".to_owned()
}

/// A `Message`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageCase {
    /// Defaults to `m.room.message`.
    #[serde(default = "default_event_type")]
    pub event_type: String,
    /// `m.text`, `m.file`, ...
    #[serde(default)]
    pub msgtype: String,
    /// Plain text.
    #[serde(default)]
    pub body: String,
    /// HTML.
    #[serde(default)]
    pub formatted_body: String,
    /// Attachment name.
    #[serde(default)]
    pub filename: String,
    /// Attachment type.
    #[serde(default)]
    pub mimetype: String,
    /// Attachment size in bytes.
    #[serde(default)]
    pub size: u64,
}

fn default_event_type() -> String {
    "m.room.message".to_owned()
}

impl SendCase {
    /// The `CheckMessageSendRequest` this case describes, converted as the service converts it.
    pub fn to_request(&self) -> Result<Result<SendRequest, InvalidArgument>, CaseError> {
        let request = proto::CheckMessageSendRequest {
            request_id: String::new(),
            sender: self.sender.as_ref().map(SubjectCase::to_proto),
            room: self.room.as_ref().map(RoomCase::to_proto).transpose()?,
            message: self.message.as_ref().map(MessageCase::to_proto),
        };
        Ok(SendRequest::try_from(request))
    }
}

impl PublishCase {
    /// The `CheckRoomPublishRequest` this case describes, converted as the service converts it.
    pub fn to_request(&self) -> Result<Result<PublishRequest, InvalidArgument>, CaseError> {
        let visibility = enum_value(&self.visibility, "DIRECTORY_VISIBILITY_", |s| {
            proto::DirectoryVisibility::from_str_name(s).map(|v| v as i32)
        })?;
        let request = proto::CheckRoomPublishRequest {
            request_id: String::new(),
            requester: self.requester.as_ref().map(SubjectCase::to_proto),
            room: self.room.as_ref().map(RoomCase::to_proto).transpose()?,
            visibility,
        };
        Ok(PublishRequest::try_from(request))
    }
}

impl JoinCase {
    /// The `CheckRoomJoinRequest` this case describes, converted as the service converts it.
    pub fn to_request(&self) -> Result<Result<JoinRequest, InvalidArgument>, CaseError> {
        let request = proto::CheckRoomJoinRequest {
            request_id: String::new(),
            user: self.user.as_ref().map(SubjectCase::to_proto),
            room: self.room.as_ref().map(RoomCase::to_proto).transpose()?,
            invited: self.invited,
        };
        Ok(JoinRequest::try_from(request))
    }
}

impl StateCase {
    /// The `CheckRoomStateChangeRequest` this case describes, converted as the service converts it.
    pub fn to_request(&self) -> Result<Result<StateChangeRequest, InvalidArgument>, CaseError> {
        let request = proto::CheckRoomStateChangeRequest {
            request_id: String::new(),
            sender: self.sender.as_ref().map(SubjectCase::to_proto),
            room: self.room.as_ref().map(RoomCase::to_proto).transpose()?,
            proposed: self.proposed.as_ref().map(RoomCase::to_proto).transpose()?,
            event_type: self.event_type.clone(),
            state_key: self.state_key.clone(),
        };
        Ok(StateChangeRequest::try_from(request))
    }
}

impl UploadCase {
    /// The `MediaUploadHeader` this case describes (of a file of `size` bytes), converted as the service converts it.
    pub fn to_request(&self, size: u64) -> Result<UploadRequest, InvalidArgument> {
        UploadRequest::try_from(proto::MediaUploadHeader {
            request_id: String::new(),
            uploader: self.uploader.as_ref().map(SubjectCase::to_proto),
            media: Some(proto::Media {
                media_id: self.media_id.clone(),
                filename: self.filename.clone(),
                mimetype: self.mimetype.clone(),
                size,
                remote: self.remote,
            }),
        })
    }
}

impl SubjectCase {
    fn to_proto(&self) -> proto::Subject {
        proto::Subject {
            user_id: self.user_id.clone(),
            server_admin: self.server_admin,
            power_level: self.power_level,
        }
    }
}

impl RoomCase {
    fn to_proto(&self) -> Result<proto::Room, CaseError> {
        Ok(proto::Room {
            room_id: self.room_id.clone(),
            join_rule: enum_value(&self.join_rule, "JOIN_RULE_", |s| {
                proto::JoinRule::from_str_name(s).map(|v| v as i32)
            })?,
            history_visibility: enum_value(&self.history_visibility, "HISTORY_VISIBILITY_", |s| {
                proto::HistoryVisibility::from_str_name(s).map(|v| v as i32)
            })?,
            encrypted: self.encrypted,
            guest_access: self.guest_access,
            published: self.published,
            access_rule: self.access_rule.clone(),
        })
    }
}

impl MessageCase {
    fn to_proto(&self) -> proto::Message {
        proto::Message {
            event_type: self.event_type.clone(),
            msgtype: self.msgtype.clone(),
            body: self.body.clone(),
            formatted_body: self.formatted_body.clone(),
            filename: self.filename.clone(),
            mimetype: self.mimetype.clone(),
            size: self.size,
        }
    }
}

/// `public`, `PUBLIC` or `JOIN_RULE_PUBLIC` -> the enum number; empty -> 0 (unspecified), to test that refusal.
fn enum_value(
    value: &str,
    prefix: &'static str,
    parse: impl Fn(&str) -> Option<i32>,
) -> Result<i32, CaseError> {
    if value.is_empty() {
        return Ok(0);
    }
    let upper = value.to_ascii_uppercase();
    let full = if upper.starts_with(prefix) {
        upper
    } else {
        format!("{prefix}{upper}")
    };
    parse(&full).ok_or_else(|| CaseError::UnknownEnumValue {
        value: value.to_owned(),
        prefix,
    })
}
