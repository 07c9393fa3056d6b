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
}

impl Action {
    /// Every action, in the order rules files list them.
    pub const ALL: [Action; 3] = [Action::Send, Action::Publish, Action::Unpublish];

    /// The name used in rule lines (`p, id, send, ...`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Send => "send",
            Action::Publish => "publish",
            Action::Unpublish => "unpublish",
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
