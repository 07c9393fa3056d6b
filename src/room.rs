//! The room an action concerns, as the homeserver sees it now.

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
    /// Guests may join.
    pub guest_access: bool,
    /// Listed in the public room directory now.
    pub published: bool,
    /// Tchap's `im.vector.room.access_rules` rule, empty if none.
    pub access_rule: String,
}

impl Room {
    /// A room is public when anyone can get at its content: its join rule is public, it is listed in the directory,
    /// its history is world readable, or guests may join. Every one of these lets a stranger read what is posted.
    pub fn is_public(&self) -> bool {
        self.join_rule == JoinRule::Public
            || self.published
            || self.history_visibility == HistoryVisibility::WorldReadable
            || self.guest_access
    }
}
