//! The domain: who asks (subject), about what (room, message, a read), what they want (requests) and the answer (decision),
//! with the Matrix grammar and limits they must respect. Nothing here knows protobuf, the rule engine or the network.

pub mod decision;
pub mod event_text;
pub mod limits;
pub mod media;
pub mod message;
pub mod read;
pub mod read_uri;
pub mod request;
pub mod room;
pub mod room_state;
pub mod subject;
