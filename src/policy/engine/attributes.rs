//! What rules can see of a request: the attributes Rust computes and hands to casbin as `r.act`, `r.sub`, `r.role`,
//! `r.room`, `r.msg`, `r.next` (the room as a state change would leave it), `r.join`, `r.state` and `r.media` (an
//! uploaded file, as read).
//!
//! Rust computes facts (roles, classification, whether a room is public, sizes); the policy files decide what to do
//! with them. Message text never becomes an attribute: rules see the classification label, not the words, so no
//! policy, log or error message can leak a body.

use casbin::rhai::{Dynamic, INT, Map};

use crate::{
    domain::{message::Message, request::Action, room::Room, subject::Subject},
    policy::roles::{RoleResolver, RoleSet},
};

/// The request definition every model must declare: `r = act, sub, role, room, msg, next, join, state, media`.
pub const REQUEST_TOKENS: [&str; 9] = [
    "act", "sub", "role", "room", "msg", "next", "join", "state", "media",
];

/// Event types that clients never encrypt, so that one of them in an encrypted room is not a plaintext message
/// (`r.msg.never_encrypted`): state events (the server must read them) and redactions (the server must read what
/// they remove). An unknown type is taken for a message event: in an encrypted room its text should have been
/// encrypted.
pub const NEVER_ENCRYPTED_TYPES: &[&str] = &[
    "m.room.redaction",
    "m.beacon_info",
    "org.matrix.msc3672.beacon_info",
    "m.room.name",
    "m.room.topic",
    "m.room.avatar",
    "m.room.canonical_alias",
    "m.room.pinned_events",
    "m.room.server_acl",
    "m.room.tombstone",
    "m.room.power_levels",
    "m.room.member",
    "m.room.create",
    "m.room.join_rules",
    "m.room.history_visibility",
    "m.room.guest_access",
    "m.room.encryption",
    "m.room.third_party_invite",
    "m.space.child",
    "m.space.parent",
    "m.widget",
    "im.vector.modular.widgets",
    "io.element.widgets.layout",
    "im.vector.room.access_rules",
    "m.call.member",
    "org.matrix.msc3401.call.member",
];

/// The kind of value an attribute holds, for validation and for authors' documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string.
    Text,
    /// A 32-bit integer (casbin's expression engine has no wider integers, hence sizes in KiB and MiB).
    Integer,
    /// A boolean.
    Bool,
}

/// Every attribute of `r.sub`, `r.room` and `r.msg`, with its kind and meaning. `r.role.NAME` is a boolean for every
/// role the policy declares; `r.act` is `send`, `publish` or `unpublish`.
pub const SCHEMA: &[(&str, &str, Kind, &str)] = &[
    ("sub", "user_id", Kind::Text, "the Matrix user id"),
    (
        "sub",
        "server_name",
        Kind::Text,
        "the user's server host name, lowercased, without port",
    ),
    (
        "sub",
        "server_admin",
        Kind::Bool,
        "the homeserver says the user is a server admin",
    ),
    (
        "sub",
        "power_level",
        Kind::Integer,
        "the user's power level in the room (clamped to 32 bits)",
    ),
    (
        "sub",
        "public_joins_1h",
        Kind::Integer,
        "join: the user's allowed joins of public rooms without an invite in the last 60 minutes (0 otherwise)",
    ),
    (
        "join",
        "invited",
        Kind::Bool,
        "join: the user holds an invite to the room",
    ),
    (
        "state",
        "event_type",
        Kind::Text,
        "state: the state event's type (m.room.join_rules, ..., m.room.create for a new room)",
    ),
    (
        "state",
        "state_key",
        Kind::Text,
        "state: the state event's state key",
    ),
    ("room", "room_id", Kind::Text, "the room id"),
    (
        "room",
        "join_rule",
        Kind::Text,
        "public, invite, knock, restricted, knock_restricted or private",
    ),
    (
        "room",
        "history_visibility",
        Kind::Text,
        "world_readable, shared, invited or joined",
    ),
    (
        "room",
        "encrypted",
        Kind::Bool,
        "an m.room.encryption state event is present",
    ),
    (
        "room",
        "guest_access",
        Kind::Bool,
        "guests can really join: m.room.guest_access is can_join and the homeserver allows guests",
    ),
    (
        "room",
        "published",
        Kind::Bool,
        "listed in the public room directory now",
    ),
    (
        "room",
        "access_rule",
        Kind::Text,
        "Tchap's im.vector.room.access_rules rule, empty if none",
    ),
    (
        "room",
        "is_public",
        Kind::Bool,
        "join rule public, or published, or world-readable history",
    ),
    (
        "msg",
        "event_type",
        Kind::Text,
        "m.room.message, m.room.encrypted, m.sticker, ... (empty for publish)",
    ),
    ("msg", "msgtype", Kind::Text, "m.text, m.file, m.image, ..."),
    ("msg", "mimetype", Kind::Text, "the attachment's MIME type"),
    (
        "msg",
        "size_kib",
        Kind::Integer,
        "the attachment's size in KiB, rounded up",
    ),
    (
        "msg",
        "size_mib",
        Kind::Integer,
        "the attachment's size in MiB, rounded up",
    ),
    (
        "msg",
        "has_attachment",
        Kind::Bool,
        "the message names a file or has a size",
    ),
    (
        "msg",
        "has_text",
        Kind::Bool,
        "the event carries text (body or HTML body)",
    ),
    (
        "msg",
        "never_encrypted",
        Kind::Bool,
        "a type clients never encrypt: state (m.room.name, m.room.topic, widgets, live location, ...), redactions",
    ),
    (
        "msg",
        "classification",
        Kind::Text,
        "the protection marking label found, or none",
    ),
    (
        "msg",
        "classified",
        Kind::Bool,
        "a protection marking was found",
    ),
    (
        "media",
        "classified",
        Kind::Bool,
        "upload: a protection marking was found in the file's text, properties or name",
    ),
    (
        "media",
        "classification",
        Kind::Text,
        "upload: the most sensitive marking found, or none",
    ),
    (
        "media",
        "format",
        Kind::Text,
        "upload: from the content: pdf, docx, xlsx, pptx, odt, ods, odp, rtf, html, text, zip or unknown",
    ),
    (
        "media",
        "complete",
        Kind::Bool,
        "upload: all the file's text could be read",
    ),
    (
        "media",
        "incomplete_reason",
        Kind::Text,
        "upload: encrypted, corrupt, size_limit, time_limit, nesting_limit, unsupported, or empty when complete",
    ),
    (
        "media",
        "size_mib",
        Kind::Integer,
        "upload: the bytes actually received, in MiB, rounded up",
    ),
    (
        "media",
        "mimetype",
        Kind::Text,
        "upload: the type the client declared (never trusted for the format)",
    ),
    (
        "media",
        "remote",
        Kind::Bool,
        "upload: the file comes from another homeserver",
    ),
];

/// What an upload's rules see of the file (`r.media`): the scan's facts, never its text.
#[derive(Debug, Clone, Copy, Default)]
pub struct MediaFacts<'a> {
    /// The most sensitive marking label found (`none` when none).
    pub classification: &'a str,
    /// The format read from the content.
    pub format: &'a str,
    /// Why the text could not all be read; empty when it could.
    pub incomplete_reason: &'a str,
    /// The bytes actually received.
    pub received: u64,
    /// The declared type.
    pub mimetype: &'a str,
    /// The file comes from another homeserver.
    pub remote: bool,
}

/// The kind of `r.<object>.<field>`, if it exists. `r.next` has exactly the fields of `r.room`.
pub fn kind_of(object: &str, field: &str) -> Option<Kind> {
    let object = if object == "next" { "room" } else { object };
    SCHEMA
        .iter()
        .find(|(o, f, _, _)| *o == object && *f == field)
        .map(|(_, _, k, _)| *k)
}

/// The attributes of one request, ready for casbin.
#[derive(Debug, Clone)]
pub struct Attributes {
    act: &'static str,
    sub: Map,
    role: Map,
    room: Map,
    msg: Map,
    next: Map,
    join: Map,
    state: Map,
    media: Map,
}

impl Attributes {
    /// The attributes of a send or publish request. `message` and `classification` are `None` for room-publish,
    /// whose `r.msg` attributes are then empty strings, zeros and `false`.
    pub fn new(
        action: Action,
        subject: &Subject,
        roles: RoleSet,
        resolver: &RoleResolver,
        room: &Room,
        message: Option<(&Message, &str)>,
    ) -> Self {
        Attributes::build(action, Some(subject), roles, resolver, Some(room), message)
    }

    /// The attributes of an upload: the uploader when known (otherwise `r.sub` is empty strings and no role holds),
    /// no room and no message (empty strings, zeros and `false`), and the file as read (`r.media`).
    pub fn upload(
        uploader: Option<(&Subject, RoleSet)>,
        resolver: &RoleResolver,
        media: &MediaFacts<'_>,
    ) -> Self {
        let (subject, roles) = match uploader {
            Some((subject, roles)) => (Some(subject), roles),
            None => (None, RoleSet::default()),
        };
        let mut attributes =
            Attributes::build(Action::Upload, subject, roles, resolver, None, None);
        attributes.media = media_map(media);
        attributes
    }

    fn build(
        action: Action,
        subject: Option<&Subject>,
        roles: RoleSet,
        resolver: &RoleResolver,
        room: Option<&Room>,
        message: Option<(&Message, &str)>,
    ) -> Self {
        let mut sub = Map::new();
        let (user_id, host, server_admin, power_level) = match subject {
            Some(s) => (
                s.user_id.as_str(),
                s.user_id.host(),
                s.server_admin,
                s.power_level,
            ),
            None => ("", "", false, 0),
        };
        sub.insert("user_id".into(), user_id.into());
        sub.insert("server_name".into(), host.into());
        sub.insert("server_admin".into(), server_admin.into());
        sub.insert("power_level".into(), Dynamic::from_int(clamp(power_level)));
        sub.insert("public_joins_1h".into(), Dynamic::from_int(0));

        let mut role = Map::new();
        for (index, name) in resolver.role_names().iter().enumerate() {
            role.insert(name.as_str().into(), roles.contains(index).into());
        }

        let r = room.map_or_else(empty_room_map, room_map);

        let mut msg = Map::new();
        let (m, label) = match message {
            Some((m, label)) => (m, label),
            None => (&EMPTY_MESSAGE, ""),
        };
        msg.insert("event_type".into(), m.event_type.as_str().into());
        msg.insert("msgtype".into(), m.msgtype.as_str().into());
        msg.insert("mimetype".into(), m.mimetype.as_str().into());
        msg.insert("size_kib".into(), Dynamic::from_int(units(m.size, 1 << 10)));
        msg.insert("size_mib".into(), Dynamic::from_int(units(m.size, 1 << 20)));
        msg.insert(
            "has_attachment".into(),
            (!m.filename.is_empty() || m.size > 0).into(),
        );
        msg.insert(
            "has_text".into(),
            (!m.body.is_empty() || !m.formatted_body.is_empty()).into(),
        );
        msg.insert(
            "never_encrypted".into(),
            NEVER_ENCRYPTED_TYPES
                .contains(&m.event_type.as_str())
                .into(),
        );
        msg.insert("classification".into(), label.into());
        msg.insert(
            "classified".into(),
            (!label.is_empty() && label != crate::policy::markings::NO_MARKING).into(),
        );

        let mut join = Map::new();
        join.insert("invited".into(), false.into());
        let mut state = Map::new();
        state.insert("event_type".into(), "".into());
        state.insert("state_key".into(), "".into());
        Attributes {
            act: action.as_str(),
            sub,
            role,
            // Nothing changes unless a state change says so: "becomes X" is then always false.
            next: r.clone(),
            room: r,
            msg,
            join,
            state,
            media: media_map(&MediaFacts::default()),
        }
    }

    /// A join: whether the user is invited, and their recent public joins (`r.join.invited`,
    /// `r.sub.public_joins_1h`).
    pub fn with_join(mut self, invited: bool, public_joins_1h: u32) -> Self {
        self.join.insert("invited".into(), invited.into());
        self.sub.insert(
            "public_joins_1h".into(),
            Dynamic::from_int(INT::try_from(public_joins_1h).unwrap_or(INT::MAX)),
        );
        self
    }

    /// A state change: the room as it would become (`r.next`), and the event's type and state key (`r.state`).
    pub fn with_state_change(mut self, proposed: &Room, event_type: &str, state_key: &str) -> Self {
        self.next = room_map(proposed);
        self.state.insert("event_type".into(), event_type.into());
        self.state.insert("state_key".into(), state_key.into());
        self
    }
}

/// `r.media` of a scanned file (all empty for the other actions).
fn media_map(media: &MediaFacts<'_>) -> Map {
    let mut m = Map::new();
    let classified = !media.classification.is_empty()
        && media.classification != crate::policy::markings::NO_MARKING;
    m.insert("classified".into(), classified.into());
    m.insert("classification".into(), media.classification.into());
    m.insert("format".into(), media.format.into());
    m.insert(
        "complete".into(),
        (!media.format.is_empty() && media.incomplete_reason.is_empty()).into(),
    );
    m.insert("incomplete_reason".into(), media.incomplete_reason.into());
    m.insert(
        "size_mib".into(),
        Dynamic::from_int(units(media.received, 1 << 20)),
    );
    m.insert("mimetype".into(), media.mimetype.into());
    m.insert("remote".into(), media.remote.into());
    m
}

/// `r.room` when no room is involved: empty strings and `false`.
fn empty_room_map() -> Map {
    let mut r = Map::new();
    for field in ["room_id", "join_rule", "history_visibility", "access_rule"] {
        r.insert(field.into(), "".into());
    }
    for field in ["encrypted", "guest_access", "published", "is_public"] {
        r.insert(field.into(), false.into());
    }
    r
}

/// A room's attributes, as `r.room` and `r.next` show them.
fn room_map(room: &Room) -> Map {
    let mut r = Map::new();
    r.insert("room_id".into(), room.room_id.as_str().into());
    r.insert("join_rule".into(), room.join_rule.as_str().into());
    r.insert(
        "history_visibility".into(),
        room.history_visibility.as_str().into(),
    );
    r.insert("encrypted".into(), room.encrypted.into());
    r.insert("guest_access".into(), room.guest_access.into());
    r.insert("published".into(), room.published.into());
    r.insert("access_rule".into(), room.access_rule.as_str().into());
    r.insert("is_public".into(), room.is_public().into());
    r
}

static EMPTY_MESSAGE: Message = Message {
    event_type: String::new(),
    msgtype: String::new(),
    body: String::new(),
    formatted_body: String::new(),
    filename: String::new(),
    mimetype: String::new(),
    size: 0,
};

fn clamp(v: i64) -> INT {
    INT::try_from(v).unwrap_or(if v < 0 { INT::MIN } else { INT::MAX })
}

/// `bytes` in units of `unit`, rounded up, so `size_mib > 50` means "more than 50 MiB" exactly.
fn units(bytes: u64, unit: u64) -> INT {
    INT::try_from(bytes.div_ceil(unit)).unwrap_or(INT::MAX)
}

impl casbin::EnforceArgs for Attributes {
    fn try_into_vec(self) -> casbin::Result<Vec<Dynamic>> {
        Ok(vec![
            self.act.into(),
            Dynamic::from_map(self.sub),
            Dynamic::from_map(self.role),
            Dynamic::from_map(self.room),
            Dynamic::from_map(self.msg),
            Dynamic::from_map(self.next),
            Dynamic::from_map(self.join),
            Dynamic::from_map(self.state),
            Dynamic::from_map(self.media),
        ])
    }

    /// roomguard never uses casbin's cache (it would lose the explanation), so the key is never read.
    fn cache_key(&self) -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sizes round up, so a threshold in whole units is exact, and never overflow the 32-bit engine.
    #[test]
    fn sizes_round_up_and_saturate() {
        assert_eq!(units(0, 1024), 0);
        assert_eq!(units(1, 1024), 1);
        assert_eq!(units(50 << 20, 1 << 20), 50);
        assert_eq!(units((50 << 20) + 1, 1 << 20), 51);
        assert_eq!(units(u64::MAX, 1024), INT::MAX);
        assert_eq!(clamp(i64::MAX), INT::MAX);
        assert_eq!(clamp(i64::MIN), INT::MIN);
        assert_eq!(clamp(100), 100);
    }
}
