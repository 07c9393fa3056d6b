//! The read guard: what the reverse proxy in front of the homeserver asks before serving a read (a room's history, a
//! search, a sync from scratch, a media download). No homeserver module callback sees a read, and reading is how one
//! hijacked account did the breach's damage, so the proxy asks: nginx through `auth_request` ([`http`]), Envoy
//! through `ext_authz` (`crate::grpc::ext_authz`), any other caller through the `CheckRead` rpc. Every front goes
//! through the same [`ReadGuard`].
//!
//! | file | what |
//! |---|---|
//! | [`guard`] | the one path of a read: classify, find the account, count, decide, contain, log |
//! | [`homeserver`] | the homeserver's `whoami` and admin API |
//! | [`accounts`] | the token cache (keyed hashes, never tokens) |
//! | [`rooms`] | the room-details cache |
//! | [`answer`] | a read's answer: status, Matrix error body, retry time |
//! | [`http`] | the nginx `auth_request` endpoint |

pub mod accounts;
pub mod answer;
pub mod config;
pub mod guard;
pub mod homeserver;
pub mod http;
pub mod rooms;

pub use answer::ReadAnswer;
pub use guard::{Front, ReadAsk, ReadGuard, ReadGuardParts};
