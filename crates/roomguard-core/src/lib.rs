//! roomguard's decision core: the Matrix domain (who asks, about which room, to do what) and the policy (a directory
//! of files that authors edit, loaded and checked into one immutable snapshot), and the decisions taken with it: a
//! total value, an effect and every reason for it.
//!
//! No server, no network: nothing here knows gRPC, protobuf, HTTP or Redis. The server (the `roomguard` package) and
//! any other front (a command, a test) call the same functions.
//!
//! | module | what | knows |
//! |---|---|---|
//! | [`domain`] | subject, room, message, reads, requests, decision; Matrix grammar and limits; the text of an event and a room's attributes from its JSON (the audit) | serde_json values only |
//! | [`policy`] | loading and checking a policy directory, roles, markings, reasons, deciding, the store, reload | domain, the documents' passages; the rule engine only in [`policy::engine`] |
//!
//! # Example
//!
//! Loading the shipped policy and deciding whether a message may be sent:
//!
//! ```
//! use roomguard_core::domain::message::Message;
//! use roomguard_core::domain::request::SendRequest;
//! use roomguard_core::domain::room::{HistoryVisibility, JoinRule, Room};
//! use roomguard_core::domain::subject::{Subject, UserId};
//! use roomguard_core::policy::{PolicySnapshot, decide::decide_send};
//! use roomguard_core::Effect;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let policies = concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies");
//! let policy = PolicySnapshot::load(policies.as_ref())?;
//!
//! let request = SendRequest {
//!     request_id: "req-1".into(),
//!     sender: Subject {
//!         user_id: UserId::parse("@alice:agent.tchap.gouv.fr")?,
//!         server_admin: false,
//!         power_level: 0,
//!     },
//!     room: Room {
//!         room_id: "!lobby:agent.tchap.gouv.fr".into(),
//!         join_rule: JoinRule::Public,
//!         history_visibility: HistoryVisibility::Shared,
//!         encrypted: false,
//!         guest_access: false,
//!         published: true,
//!         access_rule: String::new(),
//!     },
//!     message: Message {
//!         event_type: "m.room.message".into(),
//!         msgtype: "m.text".into(),
//!         body: "DIFFUSION RESTREINTE - note de service".into(),
//!         ..Message::default()
//!     },
//! };
//!
//! let decision = decide_send(&policy, &request);
//! assert_eq!(decision.effect, Effect::Deny);
//! assert_eq!(decision.classification, "restricted");
//! for reason in &decision.reasons {
//!     println!("{} ({}): {}", reason.code, reason.rule, reason.message);
//! }
//! # Ok(())
//! # }
//! ```

pub mod domain;
pub mod policy;

pub use domain::decision::{Decision, Effect, Reason};
