//! A policy snapshot: everything loaded from one policy directory, checked, compiled and immutable.
//!
//! Loading reads every file, reports every problem it finds (each with file and line) and only then builds the
//! engine, so a broken directory never yields a half-built snapshot. Snapshots are shared behind an `Arc`; a reload
//! builds a new one off the request path and swaps it in only when it loaded cleanly.

use std::{
    fs,
    io::ErrorKind,
    path::{Path, PathBuf},
};

use sha2::{Digest, Sha256};

use crate::{
    attributes::{Attributes, Kind, REQUEST_TOKENS, kind_of},
    classifier::{Classifier, MARKINGS_FILE},
    diagnostics::{PolicyError, Problem},
    engine::{self, Engine, POLICY_TOKENS, SUPPORTED_EFFECT},
    message::Message,
    reasons::{REASONS_FILE, ReasonCatalogue},
    request::Action,
    roles::{ROLES_FILE, RoleResolver, RoleSet, USERS_FILE},
    room::{HistoryVisibility, JoinRule, Room},
    rules::{RULES_FILE, Rule, attribute_references, parse_rules_lenient},
    subject::{Subject, UserId},
};

/// The casbin model file.
pub const MODEL_FILE: &str = "model.conf";

/// The files a policy directory holds, in the order they are hashed; all but `users.csv` are required.
pub const POLICY_FILES: [&str; 6] = [
    MODEL_FILE,
    RULES_FILE,
    REASONS_FILE,
    ROLES_FILE,
    USERS_FILE,
    MARKINGS_FILE,
];

/// One loaded policy: immutable, shared by every request that began while it was current.
#[derive(Debug)]
pub struct PolicySnapshot {
    /// `sha256:` and the first 16 hex digits of the hash of every policy file's name and content.
    pub version: String,
    /// Where it was loaded from.
    pub dir: PathBuf,
    /// The rules, in file order.
    pub rules: Vec<Rule>,
    /// The compiled rules.
    pub engine: Engine,
    /// User id -> roles.
    pub roles: RoleResolver,
    /// Message -> marking label.
    pub classifier: Classifier,
    /// Reason code -> message.
    pub reasons: ReasonCatalogue,
}

impl PolicySnapshot {
    /// Loads and checks the policy in `dir`. Blocking: call it off the async request path.
    ///
    /// No file content can make this panic by design; as a last line of defence a panic inside a dependency
    /// (casbin, rhai) is caught and reported as a problem, so a bad edit can never take the process down.
    pub fn load(dir: &Path) -> Result<PolicySnapshot, PolicyError> {
        std::panic::catch_unwind(|| Self::load_unguarded(dir)).unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("unknown panic");
            Err(PolicyError {
                problems: vec![Problem::in_file(
                    &dir.display().to_string(),
                    format!("the policy engine failed on this policy ({what}); please report this as a roomguard bug"),
                )],
            })
        })
    }

    fn load_unguarded(dir: &Path) -> Result<PolicySnapshot, PolicyError> {
        let files = read_files(dir)?;
        let text = |name: &str| {
            files
                .iter()
                .find(|(n, _)| *n == name)
                .map_or("", |(_, t)| t.as_str())
        };
        let mut problems = Vec::new();

        let reasons = ReasonCatalogue::from_toml(text(REASONS_FILE))
            .map_err(|p| problems.extend(p))
            .ok();
        let roles = RoleResolver::load(text(ROLES_FILE), text(USERS_FILE))
            .map_err(|p| problems.extend(p))
            .ok();
        let classifier = Classifier::from_toml(text(MARKINGS_FILE))
            .map_err(|p| problems.extend(p))
            .ok();
        problems.extend(check_model(text(MODEL_FILE)));
        let (parsed, rule_problems) = parse_rules_lenient(text(RULES_FILE));
        problems.extend(rule_problems);
        problems.extend(check_rules(
            &parsed,
            reasons.as_ref(),
            roles.as_ref(),
            classifier.as_ref(),
        ));
        problems.extend(check_coverage(&parsed, classifier.as_ref()));
        let rules = Some(parsed);
        let (Some(rules), Some(reasons), Some(roles), Some(classifier), true) =
            (rules, reasons, roles, classifier, problems.is_empty())
        else {
            return Err(sorted(problems));
        };
        // Conditions are only compiled by casbin when evaluated, so each rule is evaluated once here, alone, on
        // sample requests: a type error or an unknown function is reported at its line instead of denying traffic.
        let model = text(MODEL_FILE);
        problems.extend(dry_run(model, &rules, &roles));
        if !problems.is_empty() {
            return Err(sorted(problems));
        }
        let engine =
            futures_executor::block_on(Engine::build(model, &rules)).map_err(|e| PolicyError {
                problems: vec![Problem::in_file(MODEL_FILE, e)],
            })?;
        Ok(PolicySnapshot {
            version: version(&files),
            dir: dir.to_owned(),
            rules,
            engine,
            roles,
            classifier,
            reasons,
        })
    }
}

fn sorted(mut problems: Vec<Problem>) -> PolicyError {
    let order = |file: &str| {
        POLICY_FILES
            .iter()
            .position(|f| *f == file)
            .unwrap_or(usize::MAX)
    };
    problems.sort_by_key(|p| (order(&p.file), p.line));
    PolicyError { problems }
}

fn read_files(dir: &Path) -> Result<Vec<(&'static str, String)>, PolicyError> {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    if !dir.is_dir() {
        let shown = dir.display().to_string();
        return Err(PolicyError {
            problems: vec![Problem::in_file(
                &shown,
                "is not a policy directory (it does not exist or is not a directory)",
            )],
        });
    }
    for name in POLICY_FILES {
        match fs::read(dir.join(name)) {
            Ok(bytes) => match String::from_utf8(bytes) {
                // An editor that truncates a file and then writes it shows a reload an empty file for a moment;
                // an empty required file is never what an author meant (an empty markings.toml would let every
                // marked message through), so it is refused and the previous policy keeps serving.
                Ok(text) if name != USERS_FILE && text.trim().is_empty() => {
                    problems.push(Problem::in_file(
                        name,
                        "is empty: every policy needs it (a save in progress? the previous policy keeps serving)",
                    ));
                }
                Ok(text) => files.push((name, text)),
                Err(e) => problems.push(Problem::in_file(
                    name,
                    format!(
                        "is not valid UTF-8 (byte {}): save it as UTF-8",
                        e.utf8_error().valid_up_to()
                    ),
                )),
            },
            Err(e) if e.kind() == ErrorKind::NotFound && name == USERS_FILE => {
                files.push((name, String::new()))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => problems.push(Problem::in_file(
                name,
                format!("is missing from {}", dir.display()),
            )),
            Err(e) => problems.push(Problem::in_file(name, format!("cannot be read: {e}"))),
        }
    }
    if problems.is_empty() {
        Ok(files)
    } else {
        Err(sorted(problems))
    }
}

/// The hash of every file's name, length and content, so any edit anywhere changes the version.
fn version(files: &[(&str, String)]) -> String {
    let mut hasher = Sha256::new();
    for (name, text) in files {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update((text.len() as u64).to_be_bytes());
        hasher.update(text.as_bytes());
    }
    let digest = hasher.finalize();
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Checks what roomguard relies on in the model: the request and policy definitions it fills, the one effect it
/// evaluates, and a matcher that evaluates each rule's condition.
fn check_model(text: &str) -> Vec<Problem> {
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

/// What a policy must have to decide anything: a rule for every action the service decides (without one, every
/// request of that action would be denied `NO_MATCHING_RULE`), and at least one marking (without one, no message
/// is ever classified and every marked message goes through).
fn check_coverage(rules: &[Rule], classifier: Option<&Classifier>) -> Vec<Problem> {
    let mut problems = Vec::new();
    for action in Action::ALL {
        if !rules.iter().any(|rule| rule.action == action) {
            problems.push(Problem::in_file(
                RULES_FILE,
                format!(
                    "no rule for action `{}`: every request of it would be denied NO_MATCHING_RULE; add its rules \
                     (at least `p, {}.allow, {}, true, allow, ALLOWED`)",
                    action.as_str(),
                    action.as_str(),
                    action.as_str()
                ),
            ));
        }
    }
    if classifier.is_some_and(|c| c.labels().count() <= 1) {
        problems.push(Problem::in_file(
            MARKINGS_FILE,
            "declares no marking: no message would ever be classified, and every marked message would go through",
        ));
    }
    problems
}

/// Cross-file checks: codes in the catalogue, attributes and roles that exist, conditions that parse.
/// Checks that need another file are skipped when that file itself failed to load (its problems are reported).
fn check_rules(
    rules: &[Rule],
    reasons: Option<&ReasonCatalogue>,
    roles: Option<&RoleResolver>,
    classifier: Option<&Classifier>,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let syntax = casbin::rhai::Engine::new_raw();
    for rule in rules {
        let at = |m: String| Problem::at(RULES_FILE, rule.line, format!("rule `{}`: {m}", rule.id));
        if reasons.is_some_and(|reasons| !reasons.contains(&rule.code)) {
            problems.push(at(format!(
                "reason code `{}` is not in reasons.toml: add a message for it there",
                rule.code
            )));
        }
        for reference in attribute_references(&rule.condition) {
            let problem = match (reference.object, reference.field) {
                ("act", None) => None,
                ("role", Some(role)) => roles
                    .filter(|r| !r.role_names().iter().any(|n| n == role))
                    .map(|roles| format!("`r.role.{role}`: {}", roles.undeclared(role))),
                (object, Some(field)) => match kind_of(object, field) {
                    Some(kind) => compared_with(reference.rest)
                        .filter(|other| *other != kind)
                        .map(|other| {
                            format!(
                                "`r.{object}.{field}` is {} but is compared with {}",
                                kind_name(kind),
                                kind_name(other)
                            )
                        }),
                    None => Some(format!(
                        "`r.{object}.{field}` is not an attribute (see the attribute table in policies/README.md)"
                    )),
                },
                (object, None) => Some(format!(
                    "`r.{object}` is not an attribute: use `r.act` or `r.<object>.<field>`"
                )),
            };
            problems.extend(problem.map(&at));
        }
        for (label_ref, _) in rule.condition.match_indices("r.msg.classification") {
            let rest = &rule.condition[label_ref + "r.msg.classification".len()..];
            if let Some(label) = rest
                .trim_start()
                .strip_prefix("==")
                .and_then(|r| quoted(r.trim_start()))
            {
                if classifier.is_some_and(|c| !c.labels().any(|l| l == label)) {
                    problems.push(at(format!(
                        "classification `{label}` is not a label of markings.toml"
                    )));
                }
            }
        }
        let escaped = rule.condition.replace("r.", "r_");
        if let Err(e) = syntax.compile_expression(&escaped) {
            problems.push(at(format!("the condition does not parse: {e}")));
        }
    }
    problems
}

/// The kind of the literal an attribute is compared with (`r.x.y == "text"`, `r.x.y < 50`), if it is compared with a
/// literal. casbin's engine answers `false` for a comparison of mismatched kinds instead of failing, so without this
/// check a rule like `r.sub.power_level < "50"` would silently never match.
fn compared_with(rest: &str) -> Option<Kind> {
    let rest = rest.trim_start();
    let op_len = ["==", "!=", "<=", ">=", "<", ">"]
        .iter()
        .find(|op| rest.starts_with(**op))?
        .len();
    let literal = rest[op_len..].trim_start();
    if literal.starts_with('"') {
        Some(Kind::Text)
    } else if literal.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
        Some(Kind::Integer)
    } else if literal.starts_with("true") || literal.starts_with("false") {
        Some(Kind::Bool)
    } else {
        None
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Text => "text",
        Kind::Integer => "an integer",
        Kind::Bool => "a boolean",
    }
}

fn quoted(s: &str) -> Option<&str> {
    let s = s.strip_prefix('"')?;
    s.find('"').map(|end| &s[..end])
}

/// Evaluates each rule alone on two sample requests (every flag off, every flag on) so that type errors and unknown
/// functions surface at load, pinned to their line.
fn dry_run(model: &str, rules: &[Rule], roles: &RoleResolver) -> Vec<Problem> {
    let mut problems = Vec::new();
    for rule in rules {
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
        for sample in [false, true] {
            let attributes = sample_attributes(rule.action, sample, roles);
            if let Err(e) = casbin::CoreApi::enforce(&enforcer, attributes) {
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

fn sample_attributes(action: Action, on: bool, roles: &RoleResolver) -> Attributes {
    let subject = Subject {
        user_id: sample_user(),
        server_admin: on,
        power_level: if on { 100 } else { 0 },
    };
    let room = Room {
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
    };
    let message = Message {
        event_type: "m.room.message".into(),
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
    };
    let set = if on {
        RoleSet::all(roles.role_names().len())
    } else {
        RoleSet::default()
    };
    let label = if on {
        "restricted"
    } else {
        crate::classifier::NO_MARKING
    };
    let msg = (action == Action::Send).then_some((&message, label));
    Attributes::new(action, &subject, set, roles, &room, msg)
}

#[expect(
    clippy::expect_used,
    reason = "a literal that the user id grammar accepts"
)]
fn sample_user() -> UserId {
    UserId::parse("@sample:sample.example").expect("valid literal user id")
}
