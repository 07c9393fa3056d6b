//! The answer roomguard gives: a total value, an effect and every reason for it.
//!
//! A decision is never an error: a policy that cannot be evaluated yields a deny with a reason saying so. Only invalid
//! input and internal faults become a gRPC status, and that happens at the edge, not here.

use std::time::SystemTime;

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    /// The action may happen.
    Allow,
    /// The action must not happen.
    Deny,
}

impl Effect {
    /// The lowercase name used in logs and test suites: `allow` or `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
        }
    }
}

/// One rule that decided, with the text shown to the end user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// Stable machine code from the reason catalogue, e.g. `CLASSIFIED_IN_PUBLIC_ROOM`.
    pub code: String,
    /// Id of the policy rule that matched (empty for reasons roomguard itself writes, such as `NO_MATCHING_RULE`).
    pub rule: String,
    /// Human text from the reason catalogue.
    pub message: String,
}

/// A total decision: what to do and why, plus what the policy saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Allow or deny.
    pub effect: Effect,
    /// Every violated rule on a deny (file order); the allowing rule on an allow.
    pub reasons: Vec<Reason>,
    /// Unique per decision (UUIDv7: time-ordered, so log lines sort by it).
    pub decision_id: String,
    /// When it was decided: the time in its id, and its decision-log line's timestamp (one clock read for both).
    pub decided_at: SystemTime,
    /// The caller's request id, echoed.
    pub request_id: String,
    /// Hash of the policy content that decided.
    pub policy_version: String,
    /// The subject's resolved roles, sorted.
    pub roles: Vec<String>,
    /// The protection marking label found in the message (`none` when none); empty for room-publish.
    pub classification: String,
}

impl Decision {
    /// True when the effect is [`Effect::Allow`].
    pub fn is_allowed(&self) -> bool {
        self.effect == Effect::Allow
    }

    /// The reason codes, in order.
    pub fn codes(&self) -> Vec<&str> {
        self.reasons.iter().map(|r| r.code.as_str()).collect()
    }
}
