//! The decision pipeline: resolve roles, classify the message, evaluate the rules, explain.
//!
//! Input has already been validated (the gRPC layer converts proto to domain types and rejects what is malformed),
//! so every function here is total: it always returns a [`Decision`]. A rule that fails to evaluate gives a deny with
//! `POLICY_EVALUATION_ERROR` (fail closed), and nothing allowing gives `NO_MATCHING_RULE` (default deny).

use std::{
    cell::Cell,
    time::{SystemTime, UNIX_EPOCH},
};

use rand::RngCore;
use roomguard_documents::Extraction;
use tracing::warn;

use crate::{
    domain::{
        decision::{Decision, Effect, Reason},
        media::UploadRequest,
        read::{ReadCounts, ReadRequest},
        request::{Action, JoinRequest, PublishRequest, SendRequest, StateChangeRequest},
    },
    policy::{
        PolicySnapshot,
        engine::attributes::{Attributes, MediaFacts},
        engine::{EngineError, Matched},
        reasons::{NO_MATCHING_RULE, POLICY_EVALUATION_ERROR},
    },
};

/// May the sender send this message into this room?
pub fn decide_send(policy: &PolicySnapshot, request: &SendRequest) -> Decision {
    explain_send(policy, request).decision
}

/// May the requester publish (or unpublish) this room in the public directory?
pub fn decide_publish(policy: &PolicySnapshot, request: &PublishRequest) -> Decision {
    explain_publish(policy, request).decision
}

/// May the user join this room, having joined `public_joins_1h` public rooms without an invite in the last hour?
pub fn decide_join(
    policy: &PolicySnapshot,
    request: &JoinRequest,
    public_joins_1h: u32,
) -> Decision {
    explain_join(policy, request, public_joins_1h).decision
}

/// May the sender change the room's state so that it becomes `proposed`?
pub fn decide_state_change(policy: &PolicySnapshot, request: &StateChangeRequest) -> Decision {
    explain_state_change(policy, request).decision
}

/// May this file be stored, `received` bytes of it having been read into `extraction`? The classification is the
/// most sensitive marking in the text read (even when the scan could not read it all), its properties and names.
pub fn decide_upload(
    policy: &PolicySnapshot,
    request: &UploadRequest,
    extraction: &Extraction,
    received: u64,
) -> Decision {
    explain_upload(policy, request, extraction, received).decision
}

/// May this account (or no account) make this read, having made `counts` reads in the last hour?
pub fn decide_read(
    policy: &PolicySnapshot,
    request: &ReadRequest,
    counts: &ReadCounts,
) -> Decision {
    explain_read(policy, request, counts).decision
}

/// A read answered without the policy deciding it (an unknown token, the homeserver unavailable, a malformed request:
/// decided by the read guard of the server, `roomguard::ops::reads`): `effect` with one reason roomguard writes itself (`code`, no rule), its message from
/// the catalogue or a built-in one, on the current policy's version.
pub fn undecided_read(
    policy: &PolicySnapshot,
    request_id: &str,
    effect: Effect,
    code: &str,
) -> Decision {
    let decided_at = SystemTime::now();
    Decision {
        effect,
        reasons: vec![Reason {
            code: code.to_owned(),
            rule: String::new(),
            message: policy
                .reasons
                .message(code)
                .unwrap_or_else(|| crate::policy::reasons::read_fallback_message(code))
                .to_owned(),
        }],
        decision_id: decision_id(decided_at),
        decided_at,
        request_id: request_id.to_owned(),
        policy_version: policy.version.clone(),
        roles: Vec::new(),
        classification: String::new(),
    }
}

/// A decision and how it came about: for authors (`roomguard check`) when a result surprises them.
#[derive(Debug, Clone)]
pub struct Explanation {
    /// The decision, exactly as the service would answer it.
    pub decision: Decision,
    /// The action the request asked about (which rules were considered).
    pub action: Action,
    /// The room counted as public (join rule, directory or history).
    pub room_is_public: bool,
    /// The ids of the rules whose condition held, in file order; `Err` when evaluation failed.
    pub matched: Result<Vec<String>, EngineError>,
}

/// [`decide_send`], with the explanation.
pub fn explain_send(policy: &PolicySnapshot, request: &SendRequest) -> Explanation {
    let roles = policy.roles.resolve(&request.sender);
    let classification = policy.classifier.classify(&request.message);
    let attributes = Attributes::new(
        Action::Send,
        &request.sender,
        roles,
        &policy.roles,
        &request.room,
        Some((&request.message, classification)),
    );
    let mut explanation = evaluate(policy, Action::Send, attributes, &request.request_id);
    explanation.decision.roles = policy.roles.names_of(roles);
    explanation.decision.classification = classification.to_owned();
    explanation.room_is_public = request.room.is_public();
    explanation
}

/// [`decide_publish`], with the explanation.
pub fn explain_publish(policy: &PolicySnapshot, request: &PublishRequest) -> Explanation {
    let action = if request.publish {
        Action::Publish
    } else {
        Action::Unpublish
    };
    let roles = policy.roles.resolve(&request.requester);
    let attributes = Attributes::new(
        action,
        &request.requester,
        roles,
        &policy.roles,
        &request.room,
        None,
    );
    let mut explanation = evaluate(policy, action, attributes, &request.request_id);
    explanation.decision.roles = policy.roles.names_of(roles);
    explanation.room_is_public = request.room.is_public();
    explanation
}

/// [`decide_join`], with the explanation.
pub fn explain_join(
    policy: &PolicySnapshot,
    request: &JoinRequest,
    public_joins_1h: u32,
) -> Explanation {
    let roles = policy.roles.resolve(&request.user);
    let attributes = Attributes::new(
        Action::Join,
        &request.user,
        roles,
        &policy.roles,
        &request.room,
        None,
    )
    .with_join(request.invited, public_joins_1h);
    let mut explanation = evaluate(policy, Action::Join, attributes, &request.request_id);
    explanation.decision.roles = policy.roles.names_of(roles);
    explanation.room_is_public = request.room.is_public();
    explanation
}

/// [`decide_state_change`], with the explanation.
pub fn explain_state_change(policy: &PolicySnapshot, request: &StateChangeRequest) -> Explanation {
    let roles = policy.roles.resolve(&request.sender);
    let attributes = Attributes::new(
        Action::State,
        &request.sender,
        roles,
        &policy.roles,
        &request.room,
        None,
    )
    .with_state_change(&request.proposed, &request.event_type, &request.state_key);
    let mut explanation = evaluate(policy, Action::State, attributes, &request.request_id);
    explanation.decision.roles = policy.roles.names_of(roles);
    explanation.room_is_public = request.room.is_public();
    explanation
}

/// [`decide_upload`], with the explanation.
pub fn explain_upload(
    policy: &PolicySnapshot,
    request: &UploadRequest,
    extraction: &Extraction,
    received: u64,
) -> Explanation {
    let classification = policy
        .classifier
        .classify_document(&request.media.filename, &extraction.passages);
    let scan = ScanFacts {
        classification,
        format: extraction.format.as_str(),
        incomplete_reason: extraction.incomplete.map_or("", |i| i.as_str()),
        received,
    };
    explain_scanned_upload(policy, request, &scan)
}

/// What reading an upload found, as the rules see it (the passages already classified).
#[derive(Debug, Clone, Copy)]
pub struct ScanFacts<'a> {
    /// The label of the most sensitive marking (`none` if none).
    pub classification: &'a str,
    /// The format, from the content.
    pub format: &'a str,
    /// Why it was not all read, `""` if it was.
    pub incomplete_reason: &'a str,
    /// Bytes received.
    pub received: u64,
}

/// May this file be stored, its reading having found `scan`? (What [`decide_upload`] does once the text is
/// classified; a scan that classifies as it reads calls this.)
pub fn explain_scanned_upload(
    policy: &PolicySnapshot,
    request: &UploadRequest,
    scan: &ScanFacts<'_>,
) -> Explanation {
    let roles = request
        .uploader
        .as_ref()
        .map(|uploader| (uploader, policy.roles.resolve(uploader)));
    let media = MediaFacts {
        classification: scan.classification,
        format: scan.format,
        incomplete_reason: scan.incomplete_reason,
        received: scan.received,
        mimetype: &request.media.mimetype,
        remote: request.media.remote,
    };
    let attributes = Attributes::upload(roles, &policy.roles, &media);
    let mut explanation = evaluate(policy, Action::Upload, attributes, &request.request_id);
    explanation.decision.roles = roles.map_or_else(Vec::new, |(_, set)| policy.roles.names_of(set));
    explanation.decision.classification = scan.classification.to_owned();
    explanation
}

/// [`decide_read`], with the explanation.
pub fn explain_read(
    policy: &PolicySnapshot,
    request: &ReadRequest,
    counts: &ReadCounts,
) -> Explanation {
    let reader = request
        .reader
        .as_ref()
        .map(|reader| (reader, policy.roles.resolve(reader)));
    let attributes = Attributes::read(reader, &policy.roles, request, counts);
    let mut explanation = evaluate(policy, Action::Read, attributes, &request.request_id);
    explanation.decision.roles =
        reader.map_or_else(Vec::new, |(_, set)| policy.roles.names_of(set));
    explanation.room_is_public = request.room.as_ref().is_some_and(|room| room.is_public());
    explanation
}

fn evaluate(
    policy: &PolicySnapshot,
    action: Action,
    attributes: Attributes<'_>,
    request_id: &str,
) -> Explanation {
    let (effect, reasons, matched) = match policy.engine.evaluate(action, &attributes) {
        Ok(matched) => {
            let (effect, reasons) = explain(policy, &matched);
            (
                effect,
                reasons,
                Ok(matched.into_iter().map(|m| m.rule).collect()),
            )
        }
        Err(err) => {
            // The error names the rule text and types, never request content: message text is not an attribute.
            warn!(%err, action = action.as_str(), policy_version = %policy.version, "policy evaluation failed; denying");
            (
                Effect::Deny,
                vec![reason(policy, POLICY_EVALUATION_ERROR, "")],
                Err(err),
            )
        }
    };
    let decided_at = SystemTime::now();
    let decision = Decision {
        effect,
        reasons,
        decision_id: decision_id(decided_at),
        decided_at,
        request_id: request_id.to_owned(),
        policy_version: policy.version.clone(),
        roles: Vec::new(),
        classification: String::new(),
    };
    Explanation {
        decision,
        action,
        room_is_public: false,
        matched,
    }
}

/// Deny overrides allow: every matching deny rule is a reason; otherwise the first matching allow rule; otherwise
/// nothing allows and the answer is the default deny.
fn explain(policy: &PolicySnapshot, matched: &[Matched]) -> (Effect, Vec<Reason>) {
    let denies: Vec<Reason> = matched
        .iter()
        .filter(|m| m.effect == Effect::Deny)
        .map(|m| reason(policy, &m.code, &m.rule))
        .collect();
    if !denies.is_empty() {
        return (Effect::Deny, denies);
    }
    match matched.iter().find(|m| m.effect == Effect::Allow) {
        Some(allow) => (
            Effect::Allow,
            vec![reason(policy, &allow.code, &allow.rule)],
        ),
        None => (Effect::Deny, vec![reason(policy, NO_MATCHING_RULE, "")]),
    }
}

/// A new decision id: a UUIDv7 (time-ordered, as the contract says).
///
/// `Uuid::now_v7` reads the OS's random source on every call, a system call per decision. Here the 74 bits after the
/// timestamp come from the thread's ChaCha generator (seeded from the OS, cryptographically strong), and the first 12
/// of them count within a millisecond: a thread's ids always increase (a counter that overflows moves on to the next
/// millisecond, as `uuid`'s own context does), and ids of different threads differ by their 62 random bits.
fn decision_id(at: SystemTime) -> String {
    thread_local! {
        /// The millisecond and counter of this thread's last id.
        static LAST: Cell<(u64, u16)> = const { Cell::new((0, 0)) };
    }
    let now = at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let mut bytes = [0u8; 10];
    rand::rng().fill_bytes(&mut bytes);
    let (millis, counter) = LAST.with(|last| {
        let (last_millis, last_counter) = last.get();
        let next = if now > last_millis {
            // A random start in the lower half leaves room to count.
            (now, u16::from_be_bytes([bytes[0], bytes[1]]) & 0x07ff)
        } else if last_counter < 0x0fff {
            (last_millis, last_counter + 1)
        } else {
            (last_millis + 1, 0)
        };
        last.set(next);
        next
    });
    bytes[..2].copy_from_slice(&counter.to_be_bytes());
    uuid::Builder::from_unix_timestamp_millis(millis, &bytes)
        .into_uuid()
        .to_string()
}

fn reason(policy: &PolicySnapshot, code: &str, rule: &str) -> Reason {
    Reason {
        code: code.to_owned(),
        rule: rule.to_owned(),
        // Every code a rule names was checked against the catalogue at load; the fallback only keeps this total.
        message: policy.reasons.message(code).unwrap_or(code).to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decision ids are UUIDv7, strictly increasing within a thread and never repeated across threads.
    #[test]
    fn decision_ids_are_unique_and_time_ordered() {
        let threads: Vec<Vec<String>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        (0..20_000)
                            .map(|_| decision_id(SystemTime::now()))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut all = std::collections::HashSet::new();
        for ids in &threads {
            for pair in ids.windows(2) {
                assert!(pair[0] < pair[1], "{} then {}", pair[0], pair[1]);
            }
            for id in ids {
                let uuid = uuid::Uuid::parse_str(id).unwrap();
                assert_eq!(uuid.get_version_num(), 7, "{id}");
                assert!(all.insert(id.clone()), "{id} repeated");
            }
        }
        let first = uuid::Uuid::parse_str(&threads[0][0]).unwrap();
        let (seconds, _) = first.get_timestamp().unwrap().to_unix();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(now.abs_diff(seconds) < 60, "{seconds} vs {now}");
    }
}
