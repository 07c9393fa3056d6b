//! The room an action concerns, as the homeserver sees it now, and the grammar of room ids.

use crate::domain::{limits::MAX_ID_BYTES, subject::check_server_name};

/// Why a string is not a room id. Messages are lowercase and name the offending part (never the whole input).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomIdError {
    /// The string is empty.
    #[error("is required")]
    Empty,
    /// Over the Matrix limit.
    #[error("is {0} bytes long, the Matrix limit is {MAX_ID_BYTES}")]
    TooLong(usize),
    /// No leading `!`.
    #[error("must start with `!`")]
    MissingSigil,
    /// A character outside printable ASCII.
    #[error("may only hold printable ASCII characters")]
    NotPrintable,
    /// `!:server`.
    #[error("has an empty opaque part")]
    EmptyOpaque,
    /// The part after `:` is not `hostname[:port]`.
    #[error("has an invalid server name: {0}")]
    ServerName(&'static str),
}

/// Checks a room id: `!opaque:server.name`, or room version 12's `!opaque` with no server part.
pub fn check_room_id(id: &str) -> Result<(), RoomIdError> {
    if id.is_empty() {
        return Err(RoomIdError::Empty);
    }
    if id.len() > MAX_ID_BYTES {
        return Err(RoomIdError::TooLong(id.len()));
    }
    let rest = id.strip_prefix('!').ok_or(RoomIdError::MissingSigil)?;
    if !id.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(RoomIdError::NotPrintable);
    }
    let (opaque, server) = match rest.split_once(':') {
        Some((opaque, server)) => (opaque, Some(server)),
        None => (rest, None),
    };
    if opaque.is_empty() {
        return Err(RoomIdError::EmptyOpaque);
    }
    if let Some(server) = server {
        check_server_name(server).map_err(RoomIdError::ServerName)?;
    }
    Ok(())
}

/// `m.room.join_rules`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JoinRule {
    /// Anyone may join.
    Public,
    /// Invitation only.
    Invite,
    /// Anyone may ask to join.
    Knock,
    /// Members of given rooms may join.
    Restricted,
    /// Restricted, or knock.
    KnockRestricted,
    /// Reserved by the specification; treated as closed.
    Private,
}

impl JoinRule {
    /// The Matrix spelling, as rules compare it (`r.room.join_rule == "public"`).
    pub fn as_str(self) -> &'static str {
        match self {
            JoinRule::Public => "public",
            JoinRule::Invite => "invite",
            JoinRule::Knock => "knock",
            JoinRule::Restricted => "restricted",
            JoinRule::KnockRestricted => "knock_restricted",
            JoinRule::Private => "private",
        }
    }
}

/// `m.room.history_visibility`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HistoryVisibility {
    /// Anyone, even without joining, may read the history.
    WorldReadable,
    /// Members may read all history.
    Shared,
    /// Members may read history from their invitation on.
    Invited,
    /// Members may read history from their joining on.
    Joined,
}

impl HistoryVisibility {
    /// The Matrix spelling, as rules compare it.
    pub fn as_str(self) -> &'static str {
        match self {
            HistoryVisibility::WorldReadable => "world_readable",
            HistoryVisibility::Shared => "shared",
            HistoryVisibility::Invited => "invited",
            HistoryVisibility::Joined => "joined",
        }
    }
}

/// The room's state that policies look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    /// `!opaque:server` or a room version 12 `!opaque`.
    pub room_id: String,
    /// Who may join.
    pub join_rule: JoinRule,
    /// Who may read the history.
    pub history_visibility: HistoryVisibility,
    /// An `m.room.encryption` state event is present.
    pub encrypted: bool,
    /// Guests can really join: the room's `m.room.guest_access` is `can_join` **and** the homeserver allows guest
    /// access. Synapse's private presets write `can_join` into every private room, so the state alone says little.
    pub guest_access: bool,
    /// Listed in the public room directory now.
    pub published: bool,
    /// Tchap's `im.vector.room.access_rules` rule, empty if none.
    pub access_rule: String,
}

impl Room {
    /// A room is public when anyone can get at its content: its join rule is public, it is listed in the directory,
    /// or its history is world readable. Every one of these lets a stranger read what is posted.
    ///
    /// Guest access is deliberately not one of them: a guest needs an invite to an invite-only room like anyone
    /// else, so `can_join` never opens a private room (and Synapse writes it into every private room it creates).
    pub fn is_public(&self) -> bool {
        self.join_rule == JoinRule::Public
            || self.published
            || self.history_visibility == HistoryVisibility::WorldReadable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn private_room() -> Room {
        Room {
            room_id: "!r:example.org".into(),
            join_rule: JoinRule::Invite,
            history_visibility: HistoryVisibility::Shared,
            encrypted: false,
            guest_access: false,
            published: false,
            access_rule: String::new(),
        }
    }

    /// An invite-only, unlisted room with shared history is private.
    #[test]
    fn an_invite_only_room_is_private() {
        assert!(!private_room().is_public());
    }

    /// Each of the three ways a stranger can read a room makes it public on its own.
    #[test]
    fn join_rule_directory_or_history_make_a_room_public() {
        let mut open = private_room();
        open.join_rule = JoinRule::Public;
        let mut listed = private_room();
        listed.published = true;
        let mut readable = private_room();
        readable.history_visibility = HistoryVisibility::WorldReadable;
        for room in [open, listed, readable] {
            assert!(room.is_public(), "{room:?}");
        }
    }

    /// Guest access alone never makes a room public: guests need an invite to an invite-only room like anyone else
    /// (and Synapse's private presets write `can_join` into every private room).
    #[test]
    fn guest_access_does_not_make_a_room_public() {
        let mut room = private_room();
        room.guest_access = true;
        assert!(!room.is_public());
    }
}
