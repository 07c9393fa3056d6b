//! Checks of a policy that need the rule engine itself: the model file, the syntax of each condition, and a dry
//! run of each rule on sample requests. The engine compiles conditions lazily and reports problems without a line,
//! so these run at load time and pin every problem to its file and line.

use crate::{
    domain::{
        message::Message,
        read::{ReadCounts, ReadKind, ReadRequest, ReadTarget, Tally},
        request::Action,
        room::{HistoryVisibility, JoinRule, Room},
        subject::{Subject, UserId},
    },
    policy::{
        diagnostics::Problem,
        engine::{
            self, POLICY_TOKENS, SUPPORTED_EFFECT,
            attributes::{Attributes, MediaFacts, REQUEST_TOKENS},
            condition,
        },
        markings::NO_MARKING,
        roles::{RoleResolver, RoleSet},
        rules::{RULES_FILE, Rule},
    },
};

/// The model file.
pub const MODEL_FILE: &str = "model.conf";

/// Checks what roomguard relies on in the model: the request and policy definitions it fills, the one effect it
/// evaluates, and a matcher that evaluates each rule's condition.
pub fn check_model(text: &str) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut section = String::new();
    let mut seen: Vec<(String, String, usize)> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            section = line.trim_matches(['[', ']']).trim().to_owned();
            if ![
                "request_definition",
                "policy_definition",
                "policy_effect",
                "matchers",
            ]
            .contains(&section.as_str())
            {
                problems.push(Problem::at(
                    MODEL_FILE,
                    index + 1,
                    format!(
                        "section `[{section}]` is not supported: roles come from roles.toml and users.csv, so the \
                         model has only request_definition, policy_definition, policy_effect and matchers"
                    ),
                ));
            }
            continue;
        }
        match line.split_once('=') {
            Some((key, value)) => {
                seen.push((key.trim().to_owned(), value.trim().to_owned(), index + 1))
            }
            None => problems.push(Problem::at(
                MODEL_FILE,
                index + 1,
                format!("expected `key = value` in [{section}]"),
            )),
        }
    }
    let find = |key: &str| seen.iter().find(|(k, _, _)| k == key);
    let tokens = |value: &str| {
        value
            .split(',')
            .map(|t| t.trim().to_owned())
            .collect::<Vec<_>>()
    };
    match find("r") {
        Some((_, v, line)) if tokens(v) != REQUEST_TOKENS => problems.push(Problem::at(
            MODEL_FILE,
            *line,
            format!(
                "the request definition must be `r = {}`: roomguard fills exactly these",
                REQUEST_TOKENS.join(", ")
            ),
        )),
        None => problems.push(Problem::in_file(
            MODEL_FILE,
            format!("missing `r = {}`", REQUEST_TOKENS.join(", ")),
        )),
        _ => {}
    }
    match find("p") {
        Some((_, v, line)) if tokens(v) != POLICY_TOKENS => problems.push(Problem::at(
            MODEL_FILE,
            *line,
            format!(
                "the policy definition must be `p = {}`: rules.csv columns map onto it",
                POLICY_TOKENS.join(", ")
            ),
        )),
        None => problems.push(Problem::in_file(
            MODEL_FILE,
            format!("missing `p = {}`", POLICY_TOKENS.join(", ")),
        )),
        _ => {}
    }
    let squash = |s: &str| s.split_whitespace().collect::<String>();
    match find("e") {
        Some((_, v, line)) if squash(v) != squash(SUPPORTED_EFFECT) => problems.push(Problem::at(
            MODEL_FILE,
            *line,
            format!(
                "effect `{v}` is not supported: roomguard evaluates `e = {SUPPORTED_EFFECT}` (deny overrides allow, \
                 nothing allowed means deny), which lets it report every violated rule"
            ),
        )),
        None => problems.push(Problem::in_file(MODEL_FILE, format!("missing `e = {SUPPORTED_EFFECT}`"))),
        _ => {}
    }
    match find("m") {
        Some((_, v, line)) if !squash(v).contains("eval(p.cond)") || !squash(v).contains("p.act") => {
            problems.push(Problem::at(
                MODEL_FILE,
                *line,
                "the matcher must compare `r.act == p.act` and evaluate each rule's condition with `eval(p.cond)`; \
                 otherwise rules would apply to every action or regardless of their condition",
            ))
        }
        Some((_, v, line)) => {
            // casbin compiles the matcher when it loads the model and reports a syntax error without a line; compile
            // it here first so the author gets one. `r.`/`p.` become `r_`/`p_` as casbin does.
            let escaped = v.replace("r.", "r_").replace("p.", "p_");
            if let Err(e) = casbin::rhai::Engine::new_raw().compile_expression(&escaped) {
                problems.push(Problem::at(MODEL_FILE, *line, format!("the matcher does not parse: {e}")));
            }
        }
        None => problems.push(Problem::in_file(MODEL_FILE, "missing `m = r.act == p.act && eval(p.cond)`")),
    }
    problems
}

/// Why `condition` does not parse as an expression, if it does not.
pub fn condition_syntax_error(condition: &str) -> Option<String> {
    let escaped = condition.replace("r.", "r_");
    casbin::rhai::Engine::new_raw()
        .compile_expression(&escaped)
        .err()
        .map(|e| e.to_string())
}

/// Evaluates each rule that casbin evaluates alone on two sample requests (every flag off, every flag on) so that
/// type errors and unknown functions surface at load, pinned to their line. A rule the typed evaluator compiles is
/// well-typed by construction (see `condition`): it cannot fail on any request, so running it would find nothing,
/// and it is not run (this was one casbin enforcer per rule, 2.3 s for 10,000 rules).
pub fn dry_run(model: &str, rules: &[Rule], roles: &RoleResolver) -> Vec<Problem> {
    let mut problems = Vec::new();
    let typed = futures_executor::block_on(engine::is_plain_matcher(model)).unwrap_or(false);
    let samples = [Sample::new(false, roles), Sample::new(true, roles)];
    for rule in rules {
        if typed && condition::compile(&rule.condition, roles.role_names()).is_ok() {
            continue;
        }
        let enforcer =
            match futures_executor::block_on(engine::enforcer(model, vec![rule.policy_values()])) {
                Ok(e) => e,
                Err(e) => {
                    problems.push(Problem::at(
                        RULES_FILE,
                        rule.line,
                        format!("rule `{}`: {e}", rule.id),
                    ));
                    continue;
                }
            };
        for sample in &samples {
            let attributes = sample.attributes(rule.action, roles);
            if let Err(e) = casbin::CoreApi::enforce(&enforcer, attributes.to_casbin()) {
                problems.push(Problem::at(
                    RULES_FILE,
                    rule.line,
                    format!("rule `{}`: the condition fails to evaluate: {e}", rule.id),
                ));
                break;
            }
        }
    }
    problems
}

/// A sample request with every flag off, or every flag on.
struct Sample {
    on: bool,
    subject: Subject,
    room: Room,
    /// The proposed room of a state change: the other sample's, so that "becomes" conditions are exercised both ways.
    proposed: Room,
    message: Message,
    roles: RoleSet,
    /// A read: of a known room's history with an account ("on"), of a legacy media file without one ("off").
    read: ReadRequest,
}

impl Sample {
    fn new(on: bool, roles: &RoleResolver) -> Sample {
        Sample {
            on,
            subject: Subject {
                user_id: sample_user(),
                server_admin: on,
                power_level: if on { 100 } else { 0 },
            },
            room: sample_room(on),
            proposed: sample_room(!on),
            // The "on" sample is a custom event with text, so that a condition's branches after `event_type ==
            // "m.room.message"` are evaluated too (an unknown function there must fail at load, not on traffic).
            message: Message {
                event_type: if on {
                    "org.example.sample".into()
                } else {
                    "m.room.message".into()
                },
                body: if on { "sample".into() } else { String::new() },
                msgtype: if on { "m.file".into() } else { "m.text".into() },
                filename: if on {
                    "sample.pdf".into()
                } else {
                    String::new()
                },
                mimetype: if on {
                    "application/pdf".into()
                } else {
                    String::new()
                },
                size: if on { 100 << 20 } else { 0 },
                ..Message::default()
            },
            roles: if on {
                RoleSet::all(roles.role_names().len())
            } else {
                RoleSet::default()
            },
            read: ReadRequest {
                request_id: String::new(),
                reader: None,
                target: ReadTarget {
                    kind: if on {
                        ReadKind::History
                    } else {
                        ReadKind::Media
                    },
                    room_id: on.then(|| sample_room(on).room_id),
                    media_id: (!on).then(|| "mxc://sample.example/sample".to_owned()),
                    legacy_media: !on,
                },
                room: on.then(|| sample_room(on)),
            },
        }
    }

    fn attributes<'a>(&'a self, action: Action, resolver: &'a RoleResolver) -> Attributes<'a> {
        let on = self.on;
        let label = if on { "restricted" } else { NO_MARKING };
        let msg = (action == Action::Send).then_some((&self.message, label));
        if action == Action::Upload {
            // Uploads are decided with and without an uploader: a rule must evaluate in both.
            let media = MediaFacts {
                classification: label,
                format: if on { "pdf" } else { "unknown" },
                incomplete_reason: if on { "encrypted" } else { "" },
                received: if on { 100 << 20 } else { 0 },
                mimetype: if on { "application/pdf" } else { "" },
                remote: on,
            };
            return Attributes::upload(on.then_some((&self.subject, self.roles)), resolver, &media);
        }
        if action == Action::Read {
            // Reads are decided with and without an account, and every count at its extreme.
            let tally = Tally::of(if on { 1_000_000 } else { 0 });
            let counts = ReadCounts {
                history_rooms: tally,
                room_already_read: !on,
                history_requests: tally,
                initial_syncs: tally,
                searches: tally,
                media_downloads: tally,
                thumbnails: tally,
            };
            return Attributes::read(
                on.then_some((&self.subject, self.roles)),
                resolver,
                &self.read,
                &counts,
            );
        }
        let attributes =
            Attributes::new(action, &self.subject, self.roles, resolver, &self.room, msg);
        match action {
            Action::Join => attributes.with_join(on, if on { 1000 } else { 0 }),
            Action::State => attributes.with_state_change(
                &self.proposed,
                if on {
                    "m.room.join_rules"
                } else {
                    "m.room.create"
                },
                "",
            ),
            _ => attributes,
        }
    }
}

/// A room with every flag off, or every flag on.
fn sample_room(on: bool) -> Room {
    Room {
        room_id: "!sample:sample.example".into(),
        join_rule: if on {
            JoinRule::Public
        } else {
            JoinRule::Invite
        },
        history_visibility: if on {
            HistoryVisibility::WorldReadable
        } else {
            HistoryVisibility::Joined
        },
        encrypted: on,
        guest_access: on,
        published: on,
        access_rule: if on {
            "unrestricted".into()
        } else {
            String::new()
        },
    }
}

#[expect(
    clippy::expect_used,
    reason = "a literal that the user id grammar accepts"
)]
fn sample_user() -> UserId {
    UserId::parse("@sample:sample.example").expect("valid literal user id")
}
