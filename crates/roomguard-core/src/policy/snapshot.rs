//! A policy snapshot: everything loaded from one policy directory, checked, compiled and immutable.
//!
//! Loading reads every file, reports every problem it finds (each with file and line) and only then builds the
//! engine, so a broken directory never yields a half-built snapshot. Snapshots are shared behind an `Arc`; a reload
//! builds a new one off the request path and swaps it in only when it loaded cleanly. A mounted ConfigMap is read
//! from the one version its `..data` symlink publishes ([`PolicySource`]).

use std::sync::Arc;
use std::{
    fs,
    io::ErrorKind,
    path::{Path, PathBuf},
};

use sha2::{Digest, Sha256};

use crate::{
    domain::request::Action,
    policy::{
        diagnostics::{PolicyError, Problem},
        engine::{
            Engine,
            attributes::{Kind, kind_of},
            check::{self, MODEL_FILE},
        },
        markings::{Classifier, MARKINGS_FILE},
        reasons::{REASONS_FILE, ReasonCatalogue},
        roles::{ROLES_FILE, RoleResolver, USERS_FILE, UsersLoadError},
        rules::{RULES_FILE, Rule, attribute_references, parse_rules_lenient},
        source::PolicySource,
    },
};

/// How many times a load is tried when a ConfigMap volume publishes a new version while it reads (see
/// [`PolicySource`]), or `users.csv` changes while it is read.
const LOAD_ATTEMPTS: usize = 3;

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
    /// The policy directory it was loaded from (for a ConfigMap volume, the mount, not the version directory).
    pub dir: PathBuf,
    /// The rules, in file order.
    pub rules: Vec<Rule>,
    /// The compiled rules.
    pub engine: Engine,
    /// User id -> roles (shared with the previous snapshot when `roles.toml` and `users.csv` did not change, and
    /// shard by shard when only some of `users.csv`'s lines did).
    pub roles: Arc<RoleResolver>,
    /// The hash of `roles.toml` and `users.csv`, to tell whether a reload can keep the role table.
    roles_digest: [u8; 32],
    /// Message -> marking label (shared with the previous snapshot when `markings.toml` did not change: its phrase
    /// automaton is about 2 MB, and building it takes more for a moment).
    pub classifier: Arc<Classifier>,
    /// The hash of `markings.toml`, to tell whether a reload can keep the classifier.
    markings_digest: [u8; 32],
    /// Reason code -> message.
    pub reasons: ReasonCatalogue,
    /// The ids of the read rules that look at the room's attributes (`r.room.*` or `r.next.*` but its id): a read
    /// of a room needs its details from the homeserver only when there are some.
    pub read_rules_on_room: Vec<String>,
}

impl PolicySnapshot {
    /// Loads and checks the policy in `dir`. Blocking: call it off the async request path.
    ///
    /// No file content can make this panic by design; as a last line of defence a panic inside a dependency
    /// (the rule engine) is caught and reported as a problem, so a bad edit can never take the process down.
    pub fn load(dir: &Path) -> Result<PolicySnapshot, PolicyError> {
        Self::load_reusing(dir, None)
    }

    /// [`PolicySnapshot::load`], keeping `previous`'s role table when `roles.toml` and `users.csv` are unchanged: a
    /// rules edit then costs no second copy of a million-line `users.csv` (a reload would otherwise hold two tables
    /// at once, and leave the old one's memory to the allocator). When `users.csv` changed, the new table shares
    /// with `previous`'s every shard whose lines did not change (see [`RoleResolver::load_reusing`]).
    pub fn load_reusing(
        dir: &Path,
        previous: Option<&PolicySnapshot>,
    ) -> Result<PolicySnapshot, PolicyError> {
        // A load that ran while the kubelet published a new version of a ConfigMap volume may have read a version
        // being removed, and one that read users.csv while it was being written read two versions of it: either is
        // done again. Updates come a minute apart at most, so a third attempt that is still superseded means
        // something else is rewriting the volume; its result stands (a users.csv still changing is refused, the
        // previous policy keeps serving), and the next event reloads.
        let mut attempts = 1;
        loop {
            let source = PolicySource::resolve(dir);
            let loaded = Self::load_guarded(dir, &source, previous);
            let raced = matches!(loaded, Err(LoadFailure::UsersChanged));
            if attempts == LOAD_ATTEMPTS || !(raced || source.superseded(dir)) {
                return loaded.map_err(|failure| match failure {
                    LoadFailure::Invalid(err) => err,
                    LoadFailure::UsersChanged => PolicyError {
                        problems: vec![Problem::in_file(
                            USERS_FILE,
                            format!(
                                "changed while it was being read, {LOAD_ATTEMPTS} times in a row: the previous \
                                 policy keeps serving until a reload reads one version of it"
                            ),
                        )],
                    },
                });
            }
            attempts += 1;
        }
    }

    fn load_guarded(
        dir: &Path,
        source: &PolicySource,
        previous: Option<&PolicySnapshot>,
    ) -> Result<PolicySnapshot, LoadFailure> {
        let previous = previous.map(|p| Reusable {
            roles_digest: p.roles_digest,
            roles: p.roles.clone(),
            markings_digest: p.markings_digest,
            classifier: p.classifier.clone(),
        });
        std::panic::catch_unwind(|| Self::load_unguarded(dir, source.files(), previous)).unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("unknown panic");
            Err(LoadFailure::Invalid(PolicyError {
                problems: vec![Problem::in_file(
                    &dir.display().to_string(),
                    format!("the policy engine failed on this policy ({what}); please report this as a roomguard bug"),
                )],
            }))
        })
    }

    /// Loads the policy of `dir` from the files in `from` (`dir` itself, or the version a ConfigMap volume
    /// publishes: see [`PolicySource`]).
    fn load_unguarded(
        dir: &Path,
        from: &Path,
        previous: Option<Reusable>,
    ) -> Result<PolicySnapshot, LoadFailure> {
        // users.csv may hold a million lines: it is hashed in chunks, and read line by line only when the role table
        // must be rebuilt, so its text is never held whole.
        let users_digest = file_digest(&from.join(USERS_FILE));
        let files = read_files(dir, from).map_err(LoadFailure::Invalid)?;
        let unchanged_roles = roles_digest(&files, &users_digest);
        let markings_digest = digest(
            files
                .iter()
                .find(|(n, _)| *n == MARKINGS_FILE)
                .map_or("", |(_, t)| t.as_str())
                .as_bytes(),
        );
        let (kept_roles, previous_roles, kept_classifier) = match previous {
            Some(previous) => (
                (previous.roles_digest == unchanged_roles).then(|| previous.roles.clone()),
                Some(previous.roles),
                (previous.markings_digest == markings_digest).then_some(previous.classifier),
            ),
            None => (None, None, None),
        };
        let version = version(&files, &users_digest);
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
        let roles = match kept_roles {
            Some(kept) => Some(kept),
            None => match load_roles(from, text(ROLES_FILE), previous_roles.as_deref()) {
                // The table must be that of the users.csv the version names.
                Ok((roles, read)) if read == users_digest => Some(Arc::new(roles)),
                Ok(_) | Err(UsersLoadError::Changed) => return Err(LoadFailure::UsersChanged),
                Err(UsersLoadError::Invalid(p)) => {
                    problems.extend(p);
                    None
                }
            },
        };
        let classifier = match kept_classifier {
            Some(kept) => Some(kept),
            None => Classifier::from_toml(text(MARKINGS_FILE))
                .map(Arc::new)
                .map_err(|p| problems.extend(p))
                .ok(),
        };
        problems.extend(check::check_model(text(MODEL_FILE)));
        let (parsed, rule_problems) = parse_rules_lenient(text(RULES_FILE));
        problems.extend(rule_problems);
        problems.extend(check_rules(
            &parsed,
            reasons.as_ref(),
            roles.as_deref(),
            classifier.as_deref(),
        ));
        problems.extend(check_coverage(&parsed, classifier.as_deref()));
        let rules = Some(parsed);
        let (Some(rules), Some(reasons), Some(roles), Some(classifier), true) =
            (rules, reasons, roles, classifier, problems.is_empty())
        else {
            return Err(LoadFailure::Invalid(sorted(problems)));
        };
        // Conditions are only compiled by the engine when evaluated, so each rule is evaluated once here, alone, on
        // sample requests: a type error or an unknown function is reported at its line instead of denying traffic.
        let model = text(MODEL_FILE);
        problems.extend(check::dry_run(model, &rules, &roles));
        if !problems.is_empty() {
            return Err(LoadFailure::Invalid(sorted(problems)));
        }
        let engine = futures_executor::block_on(Engine::build(model, &rules, roles.role_names()))
            .map_err(|e| {
            LoadFailure::Invalid(PolicyError {
                problems: vec![Problem::in_file(MODEL_FILE, e.to_string())],
            })
        })?;
        let read_rules_on_room = read_rules_on_room(&rules);
        Ok(PolicySnapshot {
            version,
            dir: dir.to_owned(),
            read_rules_on_room,
            rules,
            engine,
            roles,
            roles_digest: unchanged_roles,
            classifier,
            markings_digest,
            reasons,
        })
    }
}

/// The read rules whose condition reads a room attribute other than its id.
fn read_rules_on_room(rules: &[Rule]) -> Vec<String> {
    rules
        .iter()
        .filter(|rule| rule.action == Action::Read)
        .filter(|rule| {
            attribute_references(&rule.condition).iter().any(|r| {
                matches!(r.object, "room" | "next") && r.field.is_some_and(|f| f != "room_id")
            })
        })
        .map(|rule| rule.id.clone())
        .collect()
}

/// What a reload may keep of the serving snapshot, with the digests of the files each part was built from.
struct Reusable {
    roles_digest: [u8; 32],
    roles: Arc<RoleResolver>,
    markings_digest: [u8; 32],
    classifier: Arc<Classifier>,
}

/// Why one attempt at a load gave no snapshot.
enum LoadFailure {
    /// The policy has problems.
    Invalid(PolicyError),
    /// `users.csv` changed while it was read: the attempt read two versions of it.
    UsersChanged,
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

/// Reads every policy file from `from` but `users.csv`, which stands as empty text: it is hashed in chunks and read
/// line by line by the role table (see `load_roles`), never held whole. Problems name `dir`, the directory the
/// author knows.
fn read_files(dir: &Path, from: &Path) -> Result<Vec<(&'static str, String)>, PolicyError> {
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
        if name == USERS_FILE {
            files.push((name, String::new()));
            continue;
        }
        match fs::read(from.join(name)) {
            Ok(bytes) => match String::from_utf8(bytes) {
                // An editor that truncates a file and then writes it shows a reload an empty file for a moment;
                // an empty required file is never what an author meant (an empty markings.toml would let every
                // marked message through), so it is refused and the previous policy keeps serving.
                Ok(text) if text.trim().is_empty() => {
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

/// The hash of every file's name and content (`users.csv` by its digest, which is all that is known of it when
/// its text was not read), so any edit anywhere changes the version.
fn version(files: &[(&str, String)], users: &[u8; 32]) -> String {
    let mut hasher = Sha256::new();
    for (name, text) in files {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        if *name == USERS_FILE {
            hasher.update(users);
        } else {
            hasher.update(digest(text.as_bytes()));
        }
    }
    let digest = hasher.finalize();
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// The hash of the files the role table is built from: `roles.toml`'s text and `users.csv`'s digest.
fn roles_digest(files: &[(&str, String)], users: &[u8; 32]) -> [u8; 32] {
    let roles = files
        .iter()
        .find(|(n, _)| *n == ROLES_FILE)
        .map_or("", |(_, t)| t.as_str());
    let mut hasher = Sha256::new();
    hasher.update(digest(roles.as_bytes()));
    hasher.update(users);
    hasher.finalize().into()
}

/// Builds the role table, reading `users.csv` line by line (an absent file is no per-user line) and sharing with
/// `previous` the shards whose lines are unchanged; returns the digest of the `users.csv` it read, which the caller
/// compares with the one the version was computed from.
fn load_roles(
    dir: &Path,
    roles_toml: &str,
    previous: Option<&RoleResolver>,
) -> Result<(RoleResolver, [u8; 32]), UsersLoadError> {
    let path = dir.join(USERS_FILE);
    let open = || match fs::File::open(&path) {
        Ok(file) => {
            let size = file
                .metadata()
                .map_or(0, |m| usize::try_from(m.len()).unwrap_or(0));
            Ok(Some((std::io::BufReader::new(file), size)))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    };
    RoleResolver::load_reusing(roles_toml, open, previous)
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The digest of a file's content, read in chunks (that of empty content when the file is absent or unreadable:
/// reading it whole then reports the problem).
fn file_digest(path: &Path) -> [u8; 32] {
    use std::io::Read as _;
    let Ok(mut file) = fs::File::open(path) else {
        return digest(b"");
    };
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 1 << 20];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buffer[..n]),
            Err(_) => return digest(b"\0unreadable"),
        }
    }
    hasher.finalize().into()
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
                        "`r.{object}.{field}` is not an attribute (see the attribute table in docs/policy-authoring.md#attributes)"
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
                && classifier.is_some_and(|c| !c.labels().any(|l| l == label))
            {
                problems.push(at(format!(
                    "classification `{label}` is not a label of markings.toml"
                )));
            }
        }
        if let Some(e) = check::condition_syntax_error(&rule.condition) {
            problems.push(at(format!("the condition does not parse: {e}")));
        }
    }
    problems
}

/// The kind of the literal an attribute is compared with (`r.x.y == "text"`, `r.x.y < 50`), if it is compared with a
/// literal. The rule engine answers `false` for a comparison of mismatched kinds instead of failing, so without this
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A copy of the shipped policy (flat files only) that a test may edit.
    fn shipped_copy() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for name in POLICY_FILES {
            let from = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../policies")
                .join(name);
            if from.exists() {
                fs::copy(&from, dir.path().join(name)).unwrap();
            }
        }
        dir
    }

    fn problems(dir: &Path) -> Vec<String> {
        match PolicySnapshot::load(dir) {
            Ok(_) => Vec::new(),
            Err(err) => err.problems.iter().map(ToString::to_string).collect(),
        }
    }

    /// The shipped policy loads, with a content-hash version.
    #[test]
    fn the_shipped_policy_loads() {
        let dir = shipped_copy();
        let policy = PolicySnapshot::load(dir.path()).unwrap();
        assert!(policy.version.starts_with("sha256:"), "{}", policy.version);
        assert_eq!(policy.version.len(), "sha256:".len() + 16);
        assert!(policy.rules.len() >= 3);
    }

    /// The version names the content: the same files give the same version, any edit (even a comment) another.
    #[test]
    fn the_version_follows_the_content() {
        let dir = shipped_copy();
        let first = PolicySnapshot::load(dir.path()).unwrap().version;
        assert_eq!(PolicySnapshot::load(dir.path()).unwrap().version, first);
        let reasons = dir.path().join(REASONS_FILE);
        let text = fs::read_to_string(&reasons).unwrap();
        fs::write(&reasons, format!("{text}\n# a comment\n")).unwrap();
        assert_ne!(PolicySnapshot::load(dir.path()).unwrap().version, first);
    }

    /// A reload keeps the serving role table when `roles.toml` and `users.csv` are unchanged (a rules edit costs no
    /// second table), and builds a new one when either changes; the version follows the content either way.
    #[test]
    fn a_reload_keeps_the_role_table_when_its_files_are_unchanged() {
        let dir = shipped_copy();
        let users = dir.path().join(USERS_FILE);
        fs::write(&users, "@bob:agent.finances.tchap.gouv.fr, external\n").unwrap();
        let serving = PolicySnapshot::load(dir.path()).unwrap();
        let rules = dir.path().join(RULES_FILE);
        let text = fs::read_to_string(&rules).unwrap();
        fs::write(&rules, format!("{text}\n# an edit\n")).unwrap();
        let edited = PolicySnapshot::load_reusing(dir.path(), Some(&serving)).unwrap();
        assert!(Arc::ptr_eq(&serving.roles, &edited.roles));
        assert_ne!(edited.version, serving.version);
        assert_eq!(edited.roles.user_count(), 1);

        fs::write(
            &users,
            "@bob:agent.finances.tchap.gouv.fr, agent\n@eve:matrix.org, external\n",
        )
        .unwrap();
        let new_users = PolicySnapshot::load_reusing(dir.path(), Some(&edited)).unwrap();
        assert!(!Arc::ptr_eq(&edited.roles, &new_users.roles));
        assert_eq!(new_users.roles.user_count(), 2);
    }

    /// A reload keeps the serving classifier (its phrase automaton is megabytes) when `markings.toml` is unchanged,
    /// and builds one from the new text when it changes.
    #[test]
    fn a_reload_keeps_the_classifier_when_markings_toml_is_unchanged() {
        let dir = shipped_copy();
        let serving = PolicySnapshot::load(dir.path()).unwrap();
        let rules = dir.path().join(RULES_FILE);
        let text = fs::read_to_string(&rules).unwrap();
        fs::write(&rules, format!("{text}\n# an edit\n")).unwrap();
        let edited = PolicySnapshot::load_reusing(dir.path(), Some(&serving)).unwrap();
        assert!(Arc::ptr_eq(&serving.classifier, &edited.classifier));

        let markings = dir.path().join(MARKINGS_FILE);
        let text = fs::read_to_string(&markings).unwrap();
        assert!(text.contains("\"spécial France\""));
        fs::write(
            &markings,
            text.replace("\"spécial France\"", "\"spécial France\", \"usage France\""),
        )
        .unwrap();
        let message = crate::domain::message::Message {
            event_type: "m.room.message".into(),
            msgtype: "m.text".into(),
            body: "Note à usage France uniquement".into(),
            ..Default::default()
        };
        assert_eq!(
            edited.classifier.classify(&message),
            crate::policy::markings::NO_MARKING
        );
        let new_markings = PolicySnapshot::load_reusing(dir.path(), Some(&edited)).unwrap();
        assert!(!Arc::ptr_eq(&edited.classifier, &new_markings.classifier));
        assert_eq!(new_markings.classifier.classify(&message), "special_france");
    }

    /// A reload after one line is appended to a 5,000-line users.csv shares every shard of the role table but the
    /// new user's with the serving snapshot, and has the version and the look-ups of a load from scratch.
    #[test]
    fn a_users_edit_rebuilds_only_the_shard_it_touches() {
        let dir = shipped_copy();
        let users = dir.path().join(USERS_FILE);
        let mut text: String = (0..5_000)
            .map(|i| format!("@user{i}:agent.tchap.gouv.fr, external\n"))
            .collect();
        fs::write(&users, &text).unwrap();
        let serving = PolicySnapshot::load(dir.path()).unwrap();
        text.push_str("@eve:matrix.org, agent\n");
        fs::write(&users, &text).unwrap();
        let reloaded = PolicySnapshot::load_reusing(dir.path(), Some(&serving)).unwrap();
        assert_eq!(
            reloaded.roles.shards_shared_with(&serving.roles),
            crate::policy::user_table::SHARDS - 1
        );
        let fresh = PolicySnapshot::load(dir.path()).unwrap();
        assert_eq!(reloaded.version, fresh.version);
        assert_eq!(reloaded.roles.user_count(), 5_001);
        let eve = crate::domain::subject::Subject {
            user_id: crate::domain::subject::UserId::parse("@eve:matrix.org").unwrap(),
            server_admin: false,
            power_level: 0,
        };
        assert_eq!(
            reloaded.roles.names_of(reloaded.roles.resolve(&eve)),
            ["agent"]
        );
    }

    /// `users.csv` may be absent; every other file is required, and each missing one is named.
    #[test]
    fn required_files_are_named_when_missing() {
        let dir = shipped_copy();
        let _ = fs::remove_file(dir.path().join(USERS_FILE));
        assert!(PolicySnapshot::load(dir.path()).is_ok());
        fs::remove_file(dir.path().join(MARKINGS_FILE)).unwrap();
        fs::remove_file(dir.path().join(MODEL_FILE)).unwrap();
        let found = problems(dir.path());
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("model.conf: is missing"), "{found:?}");
        assert!(
            found[1].starts_with("markings.toml: is missing"),
            "{found:?}"
        );
    }

    /// A file that is not UTF-8 is reported with the offset of the first bad byte.
    #[test]
    fn a_file_that_is_not_utf8_is_reported_with_its_offset() {
        let dir = shipped_copy();
        fs::write(dir.path().join(REASONS_FILE), b"[ALLOWED]\nfr = \"\xff\"\n").unwrap();
        let found = problems(dir.path());
        assert!(
            found
                .iter()
                .any(|p| p.contains("reasons.toml") && p.contains("UTF-8 (byte 16)")),
            "{found:?}"
        );
    }

    /// Problems in several files are all reported, in the order of the files, each with its line.
    #[test]
    fn every_problem_is_reported_in_file_order() {
        let dir = shipped_copy();
        let rules = dir.path().join(RULES_FILE);
        let text = fs::read_to_string(&rules).unwrap();
        fs::write(&rules, text.replace("ALLOWED\n", "NOT_A_CODE\n")).unwrap();
        fs::write(dir.path().join(USERS_FILE), "@bob:example.org, extrenal\n").unwrap();
        let found = problems(dir.path());
        assert!(found.len() >= 2, "{found:?}");
        let rules_at = found.iter().position(|p| p.starts_with("rules.csv:"));
        let users_at = found.iter().position(|p| p.starts_with("users.csv:1:"));
        assert!(rules_at.is_some() && users_at.is_some(), "{found:?}");
        assert!(rules_at < users_at, "{found:?}");
    }

    /// A policy that could not decide (an action without rules, no marking, an empty file) is refused.
    #[test]
    fn a_hollow_policy_is_refused() {
        let dir = shipped_copy();
        let rules = dir.path().join(RULES_FILE);
        let text = fs::read_to_string(&rules).unwrap();
        let without_unpublish: String = text
            .lines()
            .filter(|l| !l.starts_with("p, unpublish."))
            .map(|l| format!("{l}\n"))
            .collect();
        fs::write(&rules, without_unpublish).unwrap();
        fs::write(dir.path().join(MARKINGS_FILE), "# nothing\n").unwrap();
        fs::write(dir.path().join(REASONS_FILE), "\n").unwrap();
        let found = problems(dir.path()).join("\n");
        assert!(found.contains("reasons.toml: is empty"), "{found}");
        // The other checks need the reasons to load: fix them and look again.
        fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../policies")
                .join(REASONS_FILE),
            dir.path().join(REASONS_FILE),
        )
        .unwrap();
        let found = problems(dir.path()).join("\n");
        assert!(found.contains("no rule for action `unpublish`"), "{found}");
        assert!(
            found.contains("markings.toml: declares no marking"),
            "{found}"
        );
    }

    /// A path that is not a directory is one problem, not a panic.
    #[test]
    fn a_missing_directory_is_reported() {
        let found = problems(Path::new("/nonexistent/roomguard-policies"));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("is not a policy directory"), "{found:?}");
    }
}
