//! What rules can see of a request: the attributes Rust computes and hands to casbin as `r.act`, `r.sub`, `r.role`,
//! `r.room`, `r.msg`, `r.next` (the room as a state change would leave it), `r.join`, `r.state`, `r.media` (an
//! uploaded file, as read) and `r.read` (a read the reverse proxy asks about, and the account's hourly read counts).
//!
//! Rust computes facts (roles, classification, whether a room is public, sizes); the policy files decide what to do
//! with them. The attributes are a typed record borrowed from the request ([`Attributes`]); casbin's maps are built
//! from it only for the rules casbin evaluates. Message text never becomes an attribute: rules see the classification label, not the words, so no
//! policy, log or error message can leak a body.

use casbin::rhai::{Dynamic, INT, Map};

use crate::{
    domain::{
        message::Message,
        read::{ReadCounts, ReadKind, ReadRequest},
        request::Action,
        room::Room,
        subject::Subject,
    },
    policy::roles::{RoleResolver, RoleSet},
};

/// The request definition every model must declare: `r = act, sub, role, room, msg, next, join, state, media, read`.
pub const REQUEST_TOKENS: [&str; 10] = [
    "act", "sub", "role", "room", "msg", "next", "join", "state", "media", "read",
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
        "upload: from the content: pdf, docx, xlsx, pptx, odt, ods, odp, rtf, html, text, zip, eml, csv, tar, gzip, json, svg, png, jpeg, tiff, webp, gif or unknown",
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
    (
        "read",
        "kind",
        Kind::Text,
        "read: history, search, sync_initial, media, thumbnail or other (from the request's path)",
    ),
    (
        "read",
        "authenticated",
        Kind::Bool,
        "read: the request carries an access token the homeserver resolved to an account (r.sub is that account)",
    ),
    (
        "read",
        "legacy_media",
        Kind::Bool,
        "read: a download or thumbnail on the legacy /_matrix/media/ paths, which serve older media without an account",
    ),
    (
        "read",
        "media_server",
        Kind::Text,
        "read: the server name of a download's or thumbnail's mxc:// id, empty otherwise",
    ),
    (
        "read",
        "room_known",
        Kind::Bool,
        "read: the attributes of the path's room (r.room.*) were read from the homeserver; otherwise only r.room.room_id is set",
    ),
    (
        "read",
        "new_room",
        Kind::Bool,
        "read: a history read of a room whose history the account did not read in the last hour",
    ),
    (
        "read",
        "history_rooms_1h",
        Kind::Integer,
        "read: distinct rooms whose history the account read in the last hour (this request not counted)",
    ),
    (
        "read",
        "history_requests_1h",
        Kind::Integer,
        "read: the account's history requests in the last hour",
    ),
    (
        "read",
        "initial_syncs_1h",
        Kind::Integer,
        "read: the account's initial syncs in the last hour",
    ),
    (
        "read",
        "searches_1h",
        Kind::Integer,
        "read: the account's searches in the last hour",
    ),
    (
        "read",
        "media_downloads_1h",
        Kind::Integer,
        "read: the account's media downloads in the last hour",
    ),
    (
        "read",
        "thumbnails_1h",
        Kind::Integer,
        "read: the account's thumbnails in the last hour",
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
    slot(object, field).map(|s| s.kind)
}

// === Slots: where a record keeps each attribute ===

/// Where a [`Attributes`] record keeps one attribute: at `index` among the attributes of its `kind`.
///
/// Slots follow [`SCHEMA`]'s order, then `r.next` (the fields of `r.room` again), so the schema stays the one list
/// of attributes: the record, the rule compiler and the casbin maps all derive from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    /// The attribute's kind, which picks the array it lives in.
    pub kind: Kind,
    /// Its index in that array.
    pub index: usize,
}

const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

const fn same_kind(a: Kind, b: Kind) -> bool {
    a as u8 == b as u8
}

/// How many attributes of `kind` the schema has (of `object` only, when given).
const fn count(kind: Kind, object: Option<&str>) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < SCHEMA.len() {
        let (o, _, k, _) = SCHEMA[i];
        let in_object = match object {
            Some(wanted) => same(o, wanted),
            None => true,
        };
        if same_kind(k, kind) && in_object {
            n += 1;
        }
        i += 1;
    }
    n
}

/// The slot of `r.<object>.<field>`, if it is an attribute.
pub(crate) const fn slot(object: &str, field: &str) -> Option<Slot> {
    let next = same(object, "next");
    let object = if next { "room" } else { object };
    let mut i = 0;
    while i < SCHEMA.len() {
        let (o, f, kind, _) = SCHEMA[i];
        if same(o, object) && same(f, field) {
            let mut index = if next { count(kind, None) } else { 0 };
            let mut j = 0;
            while j < i {
                let (other, _, k, _) = SCHEMA[j];
                if same_kind(k, kind) && (!next || same(other, "room")) {
                    index += 1;
                }
                j += 1;
            }
            return Some(Slot { kind, index });
        }
        i += 1;
    }
    None
}

/// The index of an attribute known to be of `kind`; out of range (so a constant index fails to compile) otherwise.
const fn at(object: &str, field: &str, kind: Kind) -> usize {
    match slot(object, field) {
        Some(s) if same_kind(s.kind, kind) => s.index,
        _ => usize::MAX,
    }
}

const TEXTS: usize = count(Kind::Text, None) + count(Kind::Text, Some("room"));
const INTEGERS: usize = count(Kind::Integer, None) + count(Kind::Integer, Some("room"));
const BOOLS: usize = count(Kind::Bool, None) + count(Kind::Bool, Some("room"));

/// The index of a named attribute of a kind, computed at compile time (a misspelt name is an out-of-range constant
/// index, which rustc refuses).
macro_rules! text {
    ($object:literal, $field:literal) => {{
        const INDEX: usize = at($object, $field, Kind::Text);
        INDEX
    }};
}
macro_rules! integer {
    ($object:literal, $field:literal) => {{
        const INDEX: usize = at($object, $field, Kind::Integer);
        INDEX
    }};
}
macro_rules! flag {
    ($object:literal, $field:literal) => {{
        const INDEX: usize = at($object, $field, Kind::Bool);
        INDEX
    }};
}

/// One attribute's value, to set a record's attribute by name ([`Attributes::set`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    /// A text attribute.
    Text(&'a str),
    /// An integer attribute (32 bits, as the expression language has them).
    Integer(i32),
    /// A boolean attribute, or a role.
    Bool(bool),
}

/// The attributes of one request: typed, borrowed from the request, in fixed slots.
///
/// Rules compiled by the engine read their slots directly; only rules the engine hands to casbin need the attributes
/// as casbin's maps (`Attributes::to_casbin`), and they are only built then.
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    act: &'static str,
    texts: [&'a str; TEXTS],
    integers: [INT; INTEGERS],
    bools: [bool; BOOLS],
    /// Bit `i`: the subject holds role `role_names[i]`.
    roles: u64,
    role_names: &'a [String],
}

impl<'a> Attributes<'a> {
    /// A request of `action` whose every attribute is empty, zero or `false`, and that holds no role: what the
    /// builders start from, and what tests fill with [`Attributes::set`].
    pub fn blank(action: Action, role_names: &'a [String]) -> Self {
        Attributes {
            act: action.as_str(),
            texts: [""; TEXTS],
            integers: [0; INTEGERS],
            bools: [false; BOOLS],
            roles: 0,
            role_names,
        }
    }

    /// The attributes of a send or publish request. `message` and `classification` are `None` for room-publish,
    /// whose `r.msg` attributes are then empty strings, zeros and `false`.
    pub fn new(
        action: Action,
        subject: &'a Subject,
        roles: RoleSet,
        resolver: &'a RoleResolver,
        room: &'a Room,
        message: Option<(&'a Message, &'a str)>,
    ) -> Self {
        let mut attributes = Attributes::blank(action, resolver.role_names());
        attributes.set_subject(subject, roles);
        attributes.set_room(room);
        attributes.set_next(room);
        if let Some((message, label)) = message {
            attributes.set_message(message, label);
        }
        attributes
    }

    /// The attributes of an upload: the uploader when known (otherwise `r.sub` is empty strings and no role holds),
    /// no room and no message (empty strings, zeros and `false`), and the file as read (`r.media`).
    pub fn upload(
        uploader: Option<(&'a Subject, RoleSet)>,
        resolver: &'a RoleResolver,
        media: &MediaFacts<'a>,
    ) -> Self {
        let mut attributes = Attributes::blank(Action::Upload, resolver.role_names());
        if let Some((subject, roles)) = uploader {
            attributes.set_subject(subject, roles);
        }
        let classified = !media.classification.is_empty()
            && media.classification != crate::policy::markings::NO_MARKING;
        attributes.bools[flag!("media", "classified")] = classified;
        attributes.texts[text!("media", "classification")] = media.classification;
        attributes.texts[text!("media", "format")] = media.format;
        attributes.bools[flag!("media", "complete")] =
            !media.format.is_empty() && media.incomplete_reason.is_empty();
        attributes.texts[text!("media", "incomplete_reason")] = media.incomplete_reason;
        attributes.integers[integer!("media", "size_mib")] = units(media.received, 1 << 20);
        attributes.texts[text!("media", "mimetype")] = media.mimetype;
        attributes.bools[flag!("media", "remote")] = media.remote;
        attributes
    }

    /// The attributes of a read: the account when the request has one (otherwise `r.sub` is empty strings and no
    /// role holds), the room the path names (only `r.room.room_id` when its attributes are unknown), and the read's
    /// facts and the account's hourly counts before this request (`r.read`).
    pub fn read(
        reader: Option<(&'a Subject, RoleSet)>,
        resolver: &'a RoleResolver,
        request: &'a ReadRequest,
        counts: &ReadCounts,
    ) -> Self {
        let mut attributes = Attributes::blank(Action::Read, resolver.role_names());
        if let Some((subject, roles)) = reader {
            attributes.set_subject(subject, roles);
        }
        let target = &request.target;
        match (&request.room, &target.room_id) {
            (Some(room), _) => {
                attributes.set_room(room);
                attributes.set_next(room);
            }
            (None, Some(room_id)) => {
                attributes.texts[text!("room", "room_id")] = room_id;
                attributes.texts[text!("next", "room_id")] = room_id;
            }
            (None, None) => {}
        }
        attributes.texts[text!("read", "kind")] = target.kind.as_str();
        attributes.bools[flag!("read", "authenticated")] = reader.is_some();
        attributes.bools[flag!("read", "legacy_media")] = target.legacy_media;
        attributes.texts[text!("read", "media_server")] = target
            .media_id
            .as_deref()
            .and_then(|id| id.strip_prefix("mxc://"))
            .and_then(|id| id.split_once('/'))
            .map_or("", |(server, _)| server);
        attributes.bools[flag!("read", "room_known")] = request.room.is_some();
        attributes.bools[flag!("read", "new_room")] = target.kind == ReadKind::History
            && target.room_id.is_some()
            && !counts.room_already_read;
        for (index, tally) in [
            (integer!("read", "history_rooms_1h"), counts.history_rooms),
            (
                integer!("read", "history_requests_1h"),
                counts.history_requests,
            ),
            (integer!("read", "initial_syncs_1h"), counts.initial_syncs),
            (integer!("read", "searches_1h"), counts.searches),
            (
                integer!("read", "media_downloads_1h"),
                counts.media_downloads,
            ),
            (integer!("read", "thumbnails_1h"), counts.thumbnails),
        ] {
            attributes.integers[index] = INT::try_from(tally.count).unwrap_or(INT::MAX);
        }
        attributes
    }

    /// A join: whether the user is invited, and their recent public joins (`r.join.invited`,
    /// `r.sub.public_joins_1h`).
    pub fn with_join(mut self, invited: bool, public_joins_1h: u32) -> Self {
        self.bools[flag!("join", "invited")] = invited;
        self.integers[integer!("sub", "public_joins_1h")] =
            INT::try_from(public_joins_1h).unwrap_or(INT::MAX);
        self
    }

    /// A state change: the room as it would become (`r.next`), and the event's type and state key (`r.state`).
    pub fn with_state_change(
        mut self,
        proposed: &'a Room,
        event_type: &'a str,
        state_key: &'a str,
    ) -> Self {
        self.set_next(proposed);
        self.texts[text!("state", "event_type")] = event_type;
        self.texts[text!("state", "state_key")] = state_key;
        self
    }

    /// Sets `r.<object>.<field>` (or the role `r.role.<field>`). `false` when there is no such attribute or the value
    /// is of another kind.
    pub fn set(&mut self, object: &str, field: &str, value: Value<'a>) -> bool {
        if object == "role" {
            let (Some(index), Value::Bool(holds)) =
                (self.role_names.iter().position(|n| n == field), value)
            else {
                return false;
            };
            if index >= 64 {
                return false;
            }
            self.roles = (self.roles & !(1 << index)) | (u64::from(holds) << index);
            return true;
        }
        match (slot(object, field), value) {
            (
                Some(Slot {
                    kind: Kind::Text,
                    index,
                }),
                Value::Text(v),
            ) => self.texts[index] = v,
            (
                Some(Slot {
                    kind: Kind::Integer,
                    index,
                }),
                Value::Integer(v),
            ) => self.integers[index] = v,
            (
                Some(Slot {
                    kind: Kind::Bool,
                    index,
                }),
                Value::Bool(v),
            ) => self.bools[index] = v,
            _ => return false,
        }
        true
    }

    fn set_subject(&mut self, subject: &'a Subject, roles: RoleSet) {
        self.texts[text!("sub", "user_id")] = subject.user_id.as_str();
        self.texts[text!("sub", "server_name")] = subject.user_id.host();
        self.bools[flag!("sub", "server_admin")] = subject.server_admin;
        self.integers[integer!("sub", "power_level")] = clamp(subject.power_level);
        for index in 0..self.role_names.len().min(64) {
            if roles.contains(index) {
                self.roles |= 1 << index;
            }
        }
    }

    fn set_room(&mut self, room: &'a Room) {
        self.texts[text!("room", "room_id")] = room.room_id.as_str();
        self.texts[text!("room", "join_rule")] = room.join_rule.as_str();
        self.texts[text!("room", "history_visibility")] = room.history_visibility.as_str();
        self.bools[flag!("room", "encrypted")] = room.encrypted;
        self.bools[flag!("room", "guest_access")] = room.guest_access;
        self.bools[flag!("room", "published")] = room.published;
        self.texts[text!("room", "access_rule")] = room.access_rule.as_str();
        self.bools[flag!("room", "is_public")] = room.is_public();
    }

    /// `r.next`: nothing changes unless a state change says so, so "becomes X" is false for the other actions.
    fn set_next(&mut self, room: &'a Room) {
        self.texts[text!("next", "room_id")] = room.room_id.as_str();
        self.texts[text!("next", "join_rule")] = room.join_rule.as_str();
        self.texts[text!("next", "history_visibility")] = room.history_visibility.as_str();
        self.bools[flag!("next", "encrypted")] = room.encrypted;
        self.bools[flag!("next", "guest_access")] = room.guest_access;
        self.bools[flag!("next", "published")] = room.published;
        self.texts[text!("next", "access_rule")] = room.access_rule.as_str();
        self.bools[flag!("next", "is_public")] = room.is_public();
    }

    fn set_message(&mut self, m: &'a Message, label: &'a str) {
        self.texts[text!("msg", "event_type")] = m.event_type.as_str();
        self.texts[text!("msg", "msgtype")] = m.msgtype.as_str();
        self.texts[text!("msg", "mimetype")] = m.mimetype.as_str();
        self.integers[integer!("msg", "size_kib")] = units(m.size, 1 << 10);
        self.integers[integer!("msg", "size_mib")] = units(m.size, 1 << 20);
        self.bools[flag!("msg", "has_attachment")] = !m.filename.is_empty() || m.size > 0;
        self.bools[flag!("msg", "has_text")] = !m.body.is_empty() || !m.formatted_body.is_empty();
        self.bools[flag!("msg", "never_encrypted")] =
            NEVER_ENCRYPTED_TYPES.contains(&m.event_type.as_str());
        self.texts[text!("msg", "classification")] = label;
        self.bools[flag!("msg", "classified")] =
            !label.is_empty() && label != crate::policy::markings::NO_MARKING;
    }

    /// `r.act`.
    pub(crate) fn act(&self) -> &'static str {
        self.act
    }

    /// The text attribute in slot `index`.
    pub(crate) fn text(&self, index: usize) -> &'a str {
        self.texts[index]
    }

    /// The integer attribute in slot `index`.
    pub(crate) fn integer(&self, index: usize) -> INT {
        self.integers[index]
    }

    /// The boolean attribute in slot `index`.
    pub(crate) fn flag(&self, index: usize) -> bool {
        self.bools[index]
    }

    /// Whether the subject holds role number `index` (of the policy's declared roles).
    pub(crate) fn role(&self, index: usize) -> bool {
        index < 64 && self.roles & (1 << index) != 0
    }

    /// The attributes as casbin's request values (`r.act`, then one map per object, in [`REQUEST_TOKENS`] order),
    /// for the rules casbin evaluates.
    pub(crate) fn to_casbin(&self) -> CasbinRequest {
        // REQUEST_TOKENS[1..]: sub, role, room, msg, next, join, state, media, read.
        let mut maps: [Map; REQUEST_TOKENS.len() - 1] = Default::default();
        let map_of = |object: &str| {
            REQUEST_TOKENS
                .iter()
                .position(|t| *t == object)
                .map(|i| i - 1)
        };
        let mut put = |object: &str, field: &str| {
            let (Some(map), Some(slot)) = (map_of(object), slot(object, field)) else {
                return;
            };
            let value = match slot.kind {
                Kind::Text => self.texts[slot.index].into(),
                Kind::Integer => Dynamic::from_int(self.integers[slot.index]),
                Kind::Bool => self.bools[slot.index].into(),
            };
            if let Some(map) = maps.get_mut(map) {
                map.insert(field.into(), value);
            }
        };
        for (object, field, _, _) in SCHEMA {
            put(object, field);
            if *object == "room" {
                put("next", field);
            }
        }
        for (index, name) in self.role_names.iter().enumerate() {
            if let Some(map) = map_of("role").and_then(|m| maps.get_mut(m)) {
                map.insert(name.as_str().into(), self.role(index).into());
            }
        }
        let mut values = Vec::with_capacity(REQUEST_TOKENS.len());
        values.push(self.act.into());
        values.extend(maps.into_iter().map(Dynamic::from_map));
        CasbinRequest(values)
    }
}

/// A request as casbin takes it: `r.act` and one map per object.
pub(crate) struct CasbinRequest(Vec<Dynamic>);

impl casbin::EnforceArgs for CasbinRequest {
    fn try_into_vec(self) -> casbin::Result<Vec<Dynamic>> {
        Ok(self.0)
    }

    /// roomguard never uses casbin's cache (it would lose the explanation), so the key is never read.
    fn cache_key(&self) -> u64 {
        0
    }
}

fn clamp(v: i64) -> INT {
    INT::try_from(v).unwrap_or(if v < 0 { INT::MIN } else { INT::MAX })
}

/// `bytes` in units of `unit`, rounded up, so `size_mib > 50` means "more than 50 MiB" exactly.
fn units(bytes: u64, unit: u64) -> INT {
    INT::try_from(bytes.div_ceil(unit)).unwrap_or(INT::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every attribute of the schema, and of `r.next`, has a slot of its own kind, and no two share one.
    #[test]
    fn every_attribute_has_its_own_slot() {
        let mut seen = std::collections::HashSet::new();
        for (object, field, kind, _) in SCHEMA {
            for object in [*object, if *object == "room" { "next" } else { *object }] {
                let slot = slot(object, field).unwrap();
                assert_eq!(slot.kind, *kind, "r.{object}.{field}");
                let size = match kind {
                    Kind::Text => TEXTS,
                    Kind::Integer => INTEGERS,
                    Kind::Bool => BOOLS,
                };
                assert!(slot.index < size, "r.{object}.{field}");
                seen.insert((*kind as u8, slot.index));
            }
        }
        assert_eq!(seen.len(), TEXTS + INTEGERS + BOOLS);
        assert_eq!(slot("next", "user_id"), None);
        assert_eq!(slot("msg", "nope"), None);
    }

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
