//! The questions roomguard answers, as domain values that have passed validation.

use crate::domain::{
    message::Message,
    room::Room,
    subject::{Subject, UserId},
};

/// What every question says about itself for logs and metrics: who asks, about which room, with which caller id.
/// Never the content (a message body is exactly what must not reach a log).
pub trait Question {
    /// The user the decision is about.
    fn asker(&self) -> &UserId;
    /// The room the decision is about.
    fn room_id(&self) -> &str;
}

/// What the subject wants to do; rules are selected by it (`p.act`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Send a message into a room.
    Send,
    /// List a room in the public room directory.
    Publish,
    /// Remove a room from the public room directory.
    Unpublish,
    /// Join a room.
    Join,
    /// Change a room's state (join rule, history visibility, guest access, encryption, access rule), or create a
    /// room with its initial state.
    State,
    /// Store an uploaded file.
    Upload,
    /// Read: a room's history, a search, a sync from scratch, a media download (asked by the reverse proxy).
    Read,
}

impl Action {
    /// Every action, in the order rules files list them.
    pub const ALL: [Action; 7] = [
        Action::Send,
        Action::Publish,
        Action::Unpublish,
        Action::Join,
        Action::State,
        Action::Upload,
        Action::Read,
    ];

    /// The name used in rule lines (`p, id, send, ...`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Send => "send",
            Action::Publish => "publish",
            Action::Unpublish => "unpublish",
            Action::Join => "join",
            Action::State => "state",
            Action::Upload => "upload",
            Action::Read => "read",
        }
    }

    /// Parses a rule line's action name.
    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// "May `requester` publish (or unpublish) `room`?"
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishRequest {
    /// Echoed in the decision.
    pub request_id: String,
    /// Who asks.
    pub requester: Subject,
    /// Which room.
    pub room: Room,
    /// `true` to publish, `false` to unpublish.
    pub publish: bool,
}

/// "May `sender` send `message` into `room`?"
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendRequest {
    /// Echoed in the decision.
    pub request_id: String,
    /// Who sends.
    pub sender: Subject,
    /// Into which room.
    pub room: Room,
    /// What.
    pub message: Message,
}

/// "May `user` join `room`?"
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    /// Echoed in the decision.
    pub request_id: String,
    /// Who wants to join.
    pub user: Subject,
    /// Which room, as the homeserver knows it.
    pub room: Room,
    /// The user holds an invite to the room.
    pub invited: bool,
}

impl JoinRequest {
    /// Whether an allowed join counts towards the user's public-join rate: a public room joined without an invite
    /// (how one hijacked account reads room after room).
    pub fn counts_towards_join_rate(&self) -> bool {
        self.room.is_public() && !self.invited
    }
}

/// "May `sender` change `room`'s state so that it becomes `proposed`?"
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChangeRequest {
    /// Echoed in the decision.
    pub request_id: String,
    /// Who sends the state event.
    pub sender: Subject,
    /// The room as it is now.
    pub room: Room,
    /// The room as it would be once the event is applied (same room id).
    pub proposed: Room,
    /// The state event's type (`m.room.join_rules`, ..., `m.room.create` for a room being created).
    pub event_type: String,
    /// The state event's state key.
    pub state_key: String,
}

impl Question for PublishRequest {
    fn asker(&self) -> &UserId {
        &self.requester.user_id
    }

    fn room_id(&self) -> &str {
        &self.room.room_id
    }
}

impl Question for SendRequest {
    fn asker(&self) -> &UserId {
        &self.sender.user_id
    }

    fn room_id(&self) -> &str {
        &self.room.room_id
    }
}

impl Question for JoinRequest {
    fn asker(&self) -> &UserId {
        &self.user.user_id
    }

    fn room_id(&self) -> &str {
        &self.room.room_id
    }
}

impl Question for StateChangeRequest {
    fn asker(&self) -> &UserId {
        &self.sender.user_id
    }

    fn room_id(&self) -> &str {
        &self.room.room_id
    }
}
