//! Policy test suites: YAML files of requests and the decisions the policy must give them.
//!
//! Policy authors read and extend these files (`policies/tests/*.yaml`); the test suite runs them against the
//! shipped policy, so a rule edit that changes a decision shows up as a failing case with a diff. A case's request
//! goes through the same conversion as a gRPC request, so suites also pin what is refused as invalid input.

use std::path::Path;

use serde::Deserialize;

use crate::{
    decide::{decide_publish, decide_send},
    decision::Decision,
    grpc::InvalidArgument,
    policy::PolicySnapshot,
    proto,
    request::{PublishRequest, SendRequest},
};

/// One suite file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    /// What the suite covers.
    #[serde(default)]
    pub description: String,
    /// The cases, run in order.
    pub cases: Vec<Case>,
}

/// One request and what must come of it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// What the case shows, in a sentence.
    pub name: String,
    /// A `CheckMessageSend` request.
    #[serde(default)]
    pub send: Option<SendCase>,
    /// A `CheckRoomPublish` request.
    #[serde(default)]
    pub publish: Option<PublishCase>,
    /// The expected outcome.
    pub expect: Expect,
}

/// The fields of a `CheckMessageSendRequest`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendCase {
    /// The sender.
    #[serde(default)]
    pub sender: Option<SubjectCase>,
    /// The room.
    #[serde(default)]
    pub room: Option<RoomCase>,
    /// The message.
    #[serde(default)]
    pub message: Option<MessageCase>,
}

/// The fields of a `CheckRoomPublishRequest`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishCase {
    /// The requester.
    #[serde(default)]
    pub requester: Option<SubjectCase>,
    /// The room.
    #[serde(default)]
    pub room: Option<RoomCase>,
    /// `public` (publish) or `private` (unpublish).
    pub visibility: String,
}

/// A `Subject`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectCase {
    /// Matrix user id.
    pub user_id: String,
    /// Server admin flag.
    #[serde(default)]
    pub server_admin: bool,
    /// Power level in the room.
    #[serde(default)]
    pub power_level: i64,
}

/// A `Room`; enum values are written short (`public`) or in full (`JOIN_RULE_PUBLIC`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomCase {
    /// Defaults to `!test:agent.tchap.gouv.fr`.
    #[serde(default = "default_room_id")]
    pub room_id: String,
    /// `public`, `invite`, `knock`, `restricted`, `knock_restricted`, `private`.
    #[serde(default)]
    pub join_rule: String,
    /// `world_readable`, `shared`, `invited`, `joined`.
    #[serde(default)]
    pub history_visibility: String,
    /// Encrypted room.
    #[serde(default)]
    pub encrypted: bool,
    /// Guests can really join (effective guest access: the room allows it and so does the homeserver).
    #[serde(default)]
    pub guest_access: bool,
    /// Listed in the directory.
    #[serde(default)]
    pub published: bool,
    /// Tchap access rule.
    #[serde(default)]
    pub access_rule: String,
}

fn default_room_id() -> String {
    "!test:agent.tchap.gouv.fr".to_owned()
}

/// A `Message`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageCase {
    /// Defaults to `m.room.message`.
    #[serde(default = "default_event_type")]
    pub event_type: String,
    /// `m.text`, `m.file`, ...
    #[serde(default)]
    pub msgtype: String,
    /// Plain text.
    #[serde(default)]
    pub body: String,
    /// HTML.
    #[serde(default)]
    pub formatted_body: String,
    /// Attachment name.
    #[serde(default)]
    pub filename: String,
    /// Attachment type.
    #[serde(default)]
    pub mimetype: String,
    /// Attachment size in bytes.
    #[serde(default)]
    pub size: u64,
}

fn default_event_type() -> String {
    "m.room.message".to_owned()
}

/// What the decision must be. Unset fields are not checked.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// `allow` or `deny`.
    #[serde(default)]
    pub effect: Option<String>,
    /// The exact set of reason codes (order ignored).
    #[serde(default)]
    pub codes: Option<Vec<String>>,
    /// The exact set of rule ids that decided (order ignored).
    #[serde(default)]
    pub rules: Option<Vec<String>>,
    /// The exact set of roles.
    #[serde(default)]
    pub roles: Option<Vec<String>>,
    /// The classification label.
    #[serde(default)]
    pub classification: Option<String>,
    /// The request is refused as invalid, naming this field path.
    #[serde(default)]
    pub invalid: Option<String>,
}

/// The outcome of one case: `Ok` or the differences from what was expected.
pub type CaseOutcome = Result<(), Vec<String>>;

impl Suite {
    /// Reads a suite file.
    pub fn from_file(path: &Path) -> Result<Suite, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_yaml_ng::from_str(&text).map_err(|e| match e.location() {
            Some(loc) => format!("{}:{}: {e}", path.display(), loc.line()),
            None => format!("{}: {e}", path.display()),
        })
    }
}

impl Case {
    /// Runs the case against `policy`.
    pub fn run(&self, policy: &PolicySnapshot) -> CaseOutcome {
        match self.decide(policy) {
            Ok(Ok(decision)) => self.expect.compare(&decision),
            Ok(Err(invalid)) => match &self.expect.invalid {
                Some(field) if *field == invalid.field => Ok(()),
                _ => Err(vec![format!(
                    "the request was refused as invalid: {invalid}"
                )]),
            },
            Err(problem) => Err(vec![problem]),
        }
    }

    fn decide(&self, policy: &PolicySnapshot) -> Result<Result<Decision, InvalidArgument>, String> {
        match (&self.send, &self.publish) {
            (Some(send), None) => {
                let request = proto::CheckMessageSendRequest {
                    request_id: String::new(),
                    sender: send.sender.as_ref().map(SubjectCase::to_proto),
                    room: send.room.as_ref().map(RoomCase::to_proto).transpose()?,
                    message: send.message.as_ref().map(MessageCase::to_proto),
                };
                Ok(SendRequest::try_from(request).map(|r| decide_send(policy, &r)))
            }
            (None, Some(publish)) => {
                let visibility = enum_value(&publish.visibility, "DIRECTORY_VISIBILITY_", |s| {
                    proto::DirectoryVisibility::from_str_name(s).map(|v| v as i32)
                })?;
                let request = proto::CheckRoomPublishRequest {
                    request_id: String::new(),
                    requester: publish.requester.as_ref().map(SubjectCase::to_proto),
                    room: publish.room.as_ref().map(RoomCase::to_proto).transpose()?,
                    visibility,
                };
                Ok(PublishRequest::try_from(request).map(|r| decide_publish(policy, &r)))
            }
            _ => Err("a case has exactly one of `send` or `publish`".to_owned()),
        }
    }
}

impl SubjectCase {
    fn to_proto(&self) -> proto::Subject {
        proto::Subject {
            user_id: self.user_id.clone(),
            server_admin: self.server_admin,
            power_level: self.power_level,
        }
    }
}

impl RoomCase {
    fn to_proto(&self) -> Result<proto::Room, String> {
        Ok(proto::Room {
            room_id: self.room_id.clone(),
            join_rule: enum_value(&self.join_rule, "JOIN_RULE_", |s| {
                proto::JoinRule::from_str_name(s).map(|v| v as i32)
            })?,
            history_visibility: enum_value(&self.history_visibility, "HISTORY_VISIBILITY_", |s| {
                proto::HistoryVisibility::from_str_name(s).map(|v| v as i32)
            })?,
            encrypted: self.encrypted,
            guest_access: self.guest_access,
            published: self.published,
            access_rule: self.access_rule.clone(),
        })
    }
}

impl MessageCase {
    fn to_proto(&self) -> proto::Message {
        proto::Message {
            event_type: self.event_type.clone(),
            msgtype: self.msgtype.clone(),
            body: self.body.clone(),
            formatted_body: self.formatted_body.clone(),
            filename: self.filename.clone(),
            mimetype: self.mimetype.clone(),
            size: self.size,
        }
    }
}

/// `public`, `PUBLIC` or `JOIN_RULE_PUBLIC` -> the enum number; empty -> 0 (unspecified), to test that refusal.
fn enum_value(
    value: &str,
    prefix: &str,
    parse: impl Fn(&str) -> Option<i32>,
) -> Result<i32, String> {
    if value.is_empty() {
        return Ok(0);
    }
    let upper = value.to_ascii_uppercase();
    let full = if upper.starts_with(prefix) {
        upper
    } else {
        format!("{prefix}{upper}")
    };
    parse(&full).ok_or_else(|| format!("`{value}` is not a value of {}*", prefix))
}

impl Expect {
    /// Every difference between this expectation and `decision`.
    pub fn compare(&self, decision: &Decision) -> CaseOutcome {
        let mut diffs = Vec::new();
        if let Some(field) = &self.invalid {
            diffs.push(format!(
                "expected the request to be refused as invalid ({field}), but it was decided"
            ));
        }
        if let Some(effect) = &self.effect {
            if effect != decision.effect.as_str() {
                diffs.push(format!(
                    "effect: expected {effect}, got {}",
                    decision.effect.as_str()
                ));
            }
        }
        let mut compare_set = |what: &str, expected: &Option<Vec<String>>, actual: Vec<String>| {
            if let Some(expected) = expected {
                let mut e = expected.clone();
                let mut a = actual;
                e.sort();
                a.sort();
                if e != a {
                    let missing: Vec<&String> = e.iter().filter(|x| !a.contains(x)).collect();
                    let extra: Vec<&String> = a.iter().filter(|x| !e.contains(x)).collect();
                    diffs.push(format!("{what}: expected {e:?}, got {a:?} (missing {missing:?}, unexpected {extra:?})"));
                }
            }
        };
        compare_set(
            "codes",
            &self.codes,
            decision.reasons.iter().map(|r| r.code.clone()).collect(),
        );
        compare_set(
            "rules",
            &self.rules,
            decision.reasons.iter().map(|r| r.rule.clone()).collect(),
        );
        compare_set("roles", &self.roles, decision.roles.clone());
        if let Some(label) = &self.classification {
            if *label != decision.classification {
                diffs.push(format!(
                    "classification: expected {label}, got {}",
                    decision.classification
                ));
            }
        }
        if diffs.is_empty() { Ok(()) } else { Err(diffs) }
    }
}
