//! The event a user is about to send.

/// A message event's policy-relevant content. The text fields are classified and then dropped: they never reach a log.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// `m.room.message`, `m.room.encrypted`, `m.sticker`, ...
    pub event_type: String,
    /// `m.text`, `m.file`, ...
    pub msgtype: String,
    /// Plain text.
    pub body: String,
    /// HTML text.
    pub formatted_body: String,
    /// Attachment file name.
    pub filename: String,
    /// Attachment MIME type.
    pub mimetype: String,
    /// Attachment size in bytes.
    pub size: u64,
}

/// Deliberately omits the text fields: a `{:?}` in a log line must not leak what roomguard exists to keep out of logs.
impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("event_type", &self.event_type)
            .field("msgtype", &self.msgtype)
            .field("body_bytes", &self.body.len())
            .field("formatted_body_bytes", &self.formatted_body.len())
            .field("filename_bytes", &self.filename.len())
            .field("mimetype", &self.mimetype)
            .field("size", &self.size)
            .finish()
    }
}
