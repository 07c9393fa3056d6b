//! What an audit reports: a finding (one event or file the policy would refuse today), a room's summary, the run's
//! totals. Never the text: ids, senders, dates, classifications and reason codes only (as in the decision log).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// An event of the room's history (a message, a poll, a topic, ...).
    Event,
    /// A file of the room's media.
    Media,
}

/// One reason of the deny, as the decision gave it (without its message: the catalogue has it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingReason {
    /// The reason code (`CLASSIFIED_CONTENT_IN_PUBLIC_ROOM`, ...).
    pub code: String,
    /// The rule that decided (`""` for a reason roomguard writes itself).
    pub rule: String,
}

/// What was, or would be, done about a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remediation {
    /// `redact` (an event) or `quarantine` (a file).
    pub action: String,
    /// `planned` (dry run), `done`, `already` (done before: by an earlier run, or by someone else), `failed`,
    /// `not_possible` (e.g. a remote sender's event: only their own homeserver can act as them).
    pub status: String,
    /// Why it failed or is not possible; never a token or a body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// One event or file the policy refuses as the room is today.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The room it is in.
    pub room_id: String,
    /// An event or a file.
    pub kind: FindingKind,
    /// The event (for a file: the event that posted it, when the audit saw it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The event's type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// The file (`mxc://server/media_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mxc: Option<String>,
    /// Who sent the event or uploaded the file (`""` when the homeserver does not say).
    pub sender: String,
    /// When, in milliseconds since the epoch: the event's `origin_server_ts`; for a file, the time of the event that
    /// posted it (when it was exposed in the room) when the audit saw it, else its upload time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_server_ts: Option<u64>,
    /// The same instant, RFC 3339 in UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// The question the policy was asked: `send`, `state` or `upload`.
    pub action: String,
    /// The most sensitive marking found (`none` when the deny is for another reason).
    pub classification: String,
    /// Every reason of the deny.
    pub reasons: Vec<FindingReason>,
    /// The policy version that decided.
    pub policy_version: String,
    /// What was, or would be, done about it (absent when no remediation was asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<Remediation>,
}

/// A change to the room itself that the audit recommends and does not make (unpublishing, join rules, encryption).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recommendation {
    /// A stable code: `unpublish`, `restrict_join_rule`, `restrict_history`, `enable_encryption`, `redact_by_hand`.
    pub code: String,
    /// One sentence for the operator.
    pub message: String,
}

/// What the audit found in one room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RoomSummary {
    /// The room.
    pub room_id: String,
    /// Its canonical alias, an identifier (its name and topic are text, and are never reported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canonical_alias: Option<String>,
    /// `public`, `invite`, `knock`, `restricted`, ...
    pub join_rule: String,
    /// `world_readable`, `shared`, `invited`, `joined`.
    pub history_visibility: String,
    /// The room has an `m.room.encryption` state event.
    pub encrypted: bool,
    /// Listed in the public room directory.
    pub published: bool,
    /// Why the room counts as exposed: `public_join_rule`, `published`, `world_readable`, `not_encrypted`
    /// (empty: not exposed).
    pub exposure: Vec<String>,
    /// Joined members.
    pub members: u64,
    /// Joined members by role of the policy (a member with several roles counts in each).
    pub members_by_role: BTreeMap<String, u64>,
    /// Joined members from another homeserver than the room's own.
    pub members_from_other_servers: u64,
    /// Events read.
    pub events_read: u64,
    /// Files read.
    pub files_read: u64,
    /// Bytes of files read.
    pub bytes_read: u64,
    /// Findings in this room.
    pub findings: u64,
    /// Findings by classification.
    pub findings_by_classification: BTreeMap<String, u64>,
    /// The date of the oldest finding (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_finding: Option<String>,
    /// The date of the newest finding (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_finding: Option<String>,
    /// How urgent the room is, higher first (see `risk_score`).
    pub risk: u64,
    /// Denies that are not findings, by reason code: refused because of who sent or how (an external member in a
    /// public room, plaintext in an encrypted room), not because of a marking. Counted, never acted on.
    #[serde(default)]
    pub other_denials: BTreeMap<String, u64>,
    /// Changes to the room the audit recommends and does not make.
    pub recommendations: Vec<Recommendation>,
    /// What could not be read (a file the homeserver would not give, a page that failed after retries).
    pub errors: Vec<String>,
}

/// The whole run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Totals {
    /// The homeserver audited (its base URL).
    pub homeserver: String,
    /// The policy version every decision was taken on.
    pub policy_version: String,
    /// The roomguard version that ran the audit.
    #[serde(default)]
    pub roomguard_version: String,
    /// `--since`: events and files before this instant were not read (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// When the run started (RFC 3339).
    pub started_at: String,
    /// When the run ended.
    pub finished_at: String,
    /// Rooms on the homeserver.
    pub rooms_listed: u64,
    /// Rooms selected and read.
    pub rooms_audited: u64,
    /// Events read.
    pub events_read: u64,
    /// Files read.
    pub files_read: u64,
    /// Bytes of files read.
    pub bytes_read: u64,
    /// Findings.
    pub findings: u64,
    /// Findings by classification.
    pub findings_by_classification: BTreeMap<String, u64>,
    /// Denies that are not findings, by reason code (the rooms' `other_denials` added up).
    #[serde(default)]
    pub other_denials: BTreeMap<String, u64>,
    /// Remediations by status (`planned`, `done`, `already`, `failed`, `not_possible`).
    pub remediations: BTreeMap<String, u64>,
    /// Every selected room was read to the end (false when interrupted or a room failed).
    pub complete: bool,
}

/// Everything one run reports: what `--format json` prints and the HTML page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AuditReport {
    /// The run.
    pub totals: Totals,
    /// Every audited room, highest risk first.
    pub rooms: Vec<RoomSummary>,
    /// Every finding, by room in the order of `rooms`, then by date.
    pub findings: Vec<Finding>,
}
