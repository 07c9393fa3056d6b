//! The Matrix specification's limits on what roomguard is asked about, one constant each: every check in the crate
//! uses these, so a limit is written once.

/// The longest identifier, in bytes: user ids and room ids by the specification, and the identifier-like fields of a
/// request (event type, msgtype, MIME type, request id) by the same measure.
pub const MAX_ID_BYTES: usize = 255;

/// The largest event, in bytes: a message's text fields together must fit in it.
pub const MAX_EVENT_BYTES: usize = 65_536;
