//! Resolves a subject's roles from its user id: per-user lines first, then the most specific domain pattern of its
//! server name, plus the server-admin roles when the homeserver says so.
//!
//! Every lookup is a hash lookup: one for the user, then one per label of the server name (`a.b.c` tries `a.b.c`,
//! `*.b.c`, `*.c`, `*`), so the cost per request is the same with ten per-user lines or ten million, and an unknown
//! user is never a scan (a generic RBAC graph walks every node for a user it does not know).
//!
//! Matching is on whole labels: `*.tchap.gouv.fr` matches `agent.tchap.gouv.fr` and `a.b.tchap.gouv.fr`, never
//! `evil-tchap.gouv.fr` (not a subdomain) nor `agent.tchap.gouv.fr.evil.com` (a subdomain of `evil.com`).

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::{
    domain::subject::{Subject, UserId},
    policy::{
        diagnostics::{Problem, line_of},
        engine::names::is_identifier,
        user_table::{PassResult, TablePass, UserTable},
    },
};

/// The file of domain patterns and server-admin roles.
pub const ROLES_FILE: &str = "roles.toml";
/// The file of per-user lines.
pub const USERS_FILE: &str = "users.csv";

pub use super::role_set::{MAX_ROLES, RoleSet};

/// Why [`RoleResolver::load_reusing`] gave no resolver.
#[derive(Debug)]
pub enum UsersLoadError {
    /// `roles.toml` or `users.csv` has problems, each with its file and line.
    Invalid(Vec<Problem>),
    /// `users.csv` changed between the two reads of a reload: read again (the previous policy keeps serving).
    Changed,
}

/// One read of `users.csv`.
struct UsersRead {
    /// The digest of every byte read (that of the file, when it was read to its end).
    digest: [u8; 32],
    table: PassResult,
    problems: Vec<Problem>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RolesFile {
    /// Every role of the policy. Roles are declared, never created by being used: a typo in users.csv
    /// (`extrenal`) would otherwise be a new role that no rule knows, silently lifting the user's restrictions.
    roles: Option<toml::Spanned<Vec<String>>>,
    server_admin: Option<toml::Spanned<Vec<String>>>,
    #[serde(default)]
    domains: BTreeMap<String, toml::Spanned<Vec<String>>>,
}

/// Turns user ids into role sets.
#[derive(Debug, Clone, Default)]
pub struct RoleResolver {
    names: Vec<String>,
    /// Exact host names, `*.suffix` patterns stored as `.suffix` (so that a look-up of a parent domain is a slice
    /// of the host, not a new string), and `*`.
    domains: HashMap<String, RoleSet, foldhash::quality::RandomState>,
    /// Normalised user id -> roles, replacing the domain roles.
    users: UserTable,
    server_admin: RoleSet,
}

impl RoleResolver {
    /// Builds the resolver from the texts of `roles.toml` and `users.csv` (either may be empty).
    pub fn load(roles_toml: &str, users_csv: &str) -> Result<Self, Vec<Problem>> {
        Self::load_reader(roles_toml, users_csv.as_bytes(), users_csv.len())
    }

    /// [`RoleResolver::load`], reading `users.csv` line by line from `users` (about `size_hint` bytes), so that a
    /// million-line file is never held whole next to the table built from it.
    pub fn load_reader(
        roles_toml: &str,
        users: impl std::io::BufRead,
        size_hint: usize,
    ) -> Result<Self, Vec<Problem>> {
        let (mut resolver, mut problems) = Self::from_roles_toml(roles_toml)?;
        let read = resolver.read_users(users, Self::building_all(size_hint));
        problems.extend(read.problems);
        resolver.users = UserTable::built(read.table);
        if problems.is_empty() {
            Ok(resolver)
        } else {
            Err(problems)
        }
    }

    /// [`RoleResolver::load_reader`] for a reload: shares with `previous` (the serving resolver) every shard of the
    /// per-user table whose lines did not change, so that an edit of a few lines of a million-line `users.csv` costs
    /// a few shards, not a second table. Returns the digest of the `users.csv` it read.
    ///
    /// `open` opens `users.csv` (with its size; `None` when it is absent), once for a load from scratch (no
    /// `previous`, or one whose declared roles differ, so that its shards' role bits mostly mean other roles), twice
    /// otherwise: the first read computes each shard's digest, the second builds the shards whose digest changed. A
    /// file that changed between the two reads is [`UsersLoadError::Changed`], never a table mixing two versions.
    pub fn load_reusing<R: std::io::BufRead>(
        roles_toml: &str,
        mut open: impl FnMut() -> std::io::Result<Option<(R, usize)>>,
        previous: Option<&RoleResolver>,
    ) -> Result<(Self, [u8; 32]), UsersLoadError> {
        let (mut resolver, problems) =
            Self::from_roles_toml(roles_toml).map_err(UsersLoadError::Invalid)?;
        // A shard is shared only when its digest, of its ids and their role bits, is unchanged: that is what makes a
        // shared shard right. Under other role declarations the same lines mostly give other bits, so nearly nothing
        // could be shared: one read that builds every shard is then cheaper than two.
        let reusable = previous.filter(|p| problems.is_empty() && p.names == resolver.names);
        let Some(previous) = reusable else {
            let read = resolver.read_opened(&mut open, Self::building_all)?;
            let problems: Vec<Problem> = problems.into_iter().chain(read.problems).collect();
            if !problems.is_empty() {
                return Err(UsersLoadError::Invalid(problems));
            }
            resolver.users = UserTable::built(read.table);
            return Ok((resolver, read.digest));
        };
        let first = resolver.read_opened(&mut open, |_| TablePass::digests_only())?;
        if !first.problems.is_empty() {
            return Err(UsersLoadError::Invalid(first.problems));
        }
        let changed = previous.users.changed_shards(&first.table);
        let second =
            resolver.read_opened(&mut open, |_| TablePass::rebuilding(&first.table, &changed))?;
        // The same bytes give the same shards; the shard digests are compared too, so that the check does not rest
        // on the parsing being the same both times.
        if second.digest != first.digest || second.table != first.table {
            return Err(UsersLoadError::Changed);
        }
        if !second.problems.is_empty() {
            return Err(UsersLoadError::Invalid(second.problems));
        }
        resolver.users = previous.users.rebuilt(second.table);
        Ok((resolver, second.digest))
    }

    /// A pass that builds every shard of a `users.csv` of about `size_hint` bytes.
    fn building_all(size_hint: usize) -> TablePass {
        // About 40 bytes a line (`@first.last:agent.ministere.tchap.gouv.fr, agent`); each shard is built to its
        // exact size once every line is in.
        TablePass::building_all(size_hint / 40)
    }

    /// The resolver of `roles.toml`, without per-user lines, and the problems that do not stop `users.csv` from
    /// being checked (an unparsable `roles.toml` does: it is the error).
    fn from_roles_toml(roles_toml: &str) -> Result<(Self, Vec<Problem>), Vec<Problem>> {
        let file: RolesFile = toml::from_str(roles_toml)
            .map_err(|e| vec![Problem::from_toml(ROLES_FILE, roles_toml, &e)])?;
        let mut resolver = RoleResolver::default();
        let mut problems = Vec::new();
        match &file.roles {
            None => problems.push(Problem::in_file(
                ROLES_FILE,
                "declares no roles: list every role first, e.g. `roles = [\"agent\", \"external\", \"admin\"]`",
            )),
            Some(declared) => {
                let line = line_of(roles_toml, declared.span().start);
                for m in resolver.declare(declared.get_ref()) {
                    problems.push(Problem::at(ROLES_FILE, line, m));
                }
            }
        }
        if let Some(admin) = &file.server_admin {
            match resolver.role_set(admin.get_ref()) {
                Ok(set) => resolver.server_admin = set,
                Err(m) => problems.push(Problem::at(
                    ROLES_FILE,
                    line_of(roles_toml, admin.span().start),
                    format!("server_admin: {m}"),
                )),
            }
        }
        for (pattern, roles) in &file.domains {
            let line = line_of(roles_toml, roles.span().start);
            if let Err(m) = check_pattern(pattern) {
                problems.push(Problem::at(
                    ROLES_FILE,
                    line,
                    format!("domain pattern `{pattern}`: {m}"),
                ));
                continue;
            }
            match resolver.role_set(roles.get_ref()) {
                Ok(set) => {
                    let pattern = pattern.to_ascii_lowercase();
                    let key = match pattern.strip_prefix('*') {
                        Some(suffix) if suffix.starts_with('.') => suffix.to_owned(),
                        _ => pattern,
                    };
                    resolver.domains.insert(key, set);
                }
                Err(m) => problems.push(Problem::at(ROLES_FILE, line, m)),
            }
        }
        Ok((resolver, problems))
    }

    /// [`RoleResolver::read_users`] of the file `open` opens (an absent file has no line), with the pass `pass`
    /// makes for its size.
    fn read_opened<R: std::io::BufRead>(
        &self,
        open: &mut impl FnMut() -> std::io::Result<Option<(R, usize)>>,
        pass: impl FnOnce(usize) -> TablePass,
    ) -> Result<UsersRead, UsersLoadError> {
        match open() {
            Ok(Some((reader, size))) => Ok(self.read_users(reader, pass(size))),
            Ok(None) => Ok(self.read_users(&b""[..], pass(0))),
            Err(e) => Err(UsersLoadError::Invalid(vec![Problem::in_file(
                USERS_FILE,
                format!("cannot be read: {e}"),
            )])),
        }
    }

    /// Reads `users.csv` line by line into `pass`, checking every line, and hashes the bytes it read.
    fn read_users(&self, mut users: impl std::io::BufRead, mut pass: TablePass) -> UsersRead {
        let mut file = Sha256::new();
        let mut problems = Vec::new();
        let mut bytes = Vec::new();
        for index in 0.. {
            bytes.clear();
            match users.read_until(b'\n', &mut bytes) {
                Ok(0) => break,
                Ok(_) => file.update(&bytes),
                Err(e) => {
                    problems.push(Problem::at(
                        USERS_FILE,
                        index + 1,
                        format!("cannot be read: {e}"),
                    ));
                    break;
                }
            }
            let Ok(raw) = std::str::from_utf8(&bytes) else {
                problems.push(Problem::at(
                    USERS_FILE,
                    index + 1,
                    "is not valid UTF-8: save the file as UTF-8",
                ));
                continue;
            };
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split(',').map(str::trim);
            let user = fields.next().unwrap_or_default();
            let user_id = match UserId::parse(user) {
                Ok(id) => id,
                Err(e) => {
                    problems.push(Problem::at(
                        USERS_FILE,
                        index + 1,
                        format!("user id `{user}` {e}"),
                    ));
                    continue;
                }
            };
            let roles: Vec<String> = fields.map(str::to_owned).collect();
            if roles.is_empty() || roles.iter().any(String::is_empty) {
                problems.push(Problem::at(
                    USERS_FILE,
                    index + 1,
                    format!(
                        "expected `{user}, role[, role...]`: name at least one role, no empty field"
                    ),
                ));
                continue;
            }
            match self.role_set(&roles) {
                Ok(set) => {
                    if let Err(full) = pass.add(&user_key(&user_id), set) {
                        problems.push(Problem::at(USERS_FILE, index + 1, full.to_string()));
                        break;
                    }
                }
                Err(m) => problems.push(Problem::at(USERS_FILE, index + 1, m)),
            }
        }
        UsersRead {
            digest: file.finalize().into(),
            table: pass.finish(),
            problems,
        }
    }

    /// Declares the policy's roles, in order (the bits of a [`RoleSet`]); returns what is wrong with the list.
    fn declare(&mut self, roles: &[String]) -> Vec<String> {
        let mut problems = Vec::new();
        if roles.is_empty() {
            problems.push("`roles` is empty: declare at least one role".to_owned());
        }
        for role in roles {
            if !is_identifier(role) {
                problems.push(format!(
                    "role `{role}` must be lowercase letters, digits and `_`, start with a letter, and not be a \
                     reserved word (rules use it as `r.role.{role}`)"
                ));
            } else if self.names.contains(role) {
                problems.push(format!("role `{role}` is declared twice"));
            } else if self.names.len() == MAX_ROLES {
                problems.push(format!(
                    "role `{role}` is one too many: at most {MAX_ROLES} distinct roles"
                ));
            } else {
                self.names.push(role.clone());
            }
        }
        problems
    }

    /// The set of `roles`, each of which must be declared.
    fn role_set(&self, roles: &[String]) -> Result<RoleSet, String> {
        let mut set = RoleSet::default();
        for role in roles {
            match self.names.iter().position(|n| n == role) {
                Some(index) => set.insert(index),
                None => return Err(self.undeclared(role)),
            }
        }
        Ok(set)
    }

    /// Says that `role` is not declared, suggesting the declared role it most likely misspells.
    pub fn undeclared(&self, role: &str) -> String {
        let nearest = self
            .names
            .iter()
            .map(|name| (edit_distance(role, name), name))
            .filter(|(distance, _)| *distance <= 2)
            .min_by_key(|(distance, _)| *distance);
        let hint = match nearest {
            Some((_, name)) => format!("; did you mean `{name}`?"),
            None => String::new(),
        };
        format!(
            "role `{role}` is not declared in roles.toml (`roles = [...]` declares: {}){hint}",
            self.names.join(", ")
        )
    }

    /// Every role the policy knows, in the order the bits of a [`RoleSet`] index them.
    pub fn role_names(&self) -> &[String] {
        &self.names
    }

    /// The number of per-user lines (distinct users).
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// How many shards of the per-user table this resolver shares with `other` (the same allocation).
    #[cfg(test)]
    pub(crate) fn shards_shared_with(&self, other: &RoleResolver) -> usize {
        self.users.shards_shared_with(&other.users)
    }

    /// The subject's roles: its per-user lines if it has any, otherwise its server's most specific domain pattern,
    /// plus the server-admin roles if the homeserver says it is an admin.
    pub fn resolve(&self, subject: &Subject) -> RoleSet {
        let base = self
            .user_roles(&subject.user_id)
            .unwrap_or_else(|| self.domain_roles(subject.user_id.host()));
        if subject.server_admin {
            base.union(self.server_admin)
        } else {
            base
        }
    }

    /// The names of the roles in `set`, sorted.
    pub fn names_of(&self, set: RoleSet) -> Vec<String> {
        let mut names: Vec<String> = self
            .names
            .iter()
            .enumerate()
            .filter(|(i, _)| set.contains(*i))
            .map(|(_, n)| n.clone())
            .collect();
        names.sort_unstable();
        names
    }

    fn user_roles(&self, user: &UserId) -> Option<RoleSet> {
        if self.users.is_empty() {
            return None;
        }
        if user.server_name().bytes().any(|b| b.is_ascii_uppercase()) {
            self.users.get(user_key(user).as_str())
        } else {
            self.users.get(user.as_str())
        }
    }

    fn domain_roles(&self, host: &str) -> RoleSet {
        if let Some(set) = self.domains.get(host) {
            return *set;
        }
        // IP literals have no parent domains.
        let is_name =
            !host.starts_with('[') && !host.bytes().all(|b| b.is_ascii_digit() || b == b'.');
        if is_name {
            // `*.b.c` is stored as `.b.c`: each parent domain of `a.b.c` is a slice of it from one of its dots.
            for (dot, _) in host.match_indices('.') {
                if let Some(set) = self.domains.get(&host[dot..]) {
                    return *set;
                }
            }
        }
        self.domains.get("*").copied().unwrap_or_default()
    }
}

/// Levenshtein distance with adjacent swaps counted as one edit (optimal string alignment), on characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

/// Per-user lines compare the localpart exactly and the server name without regard to case.
fn user_key(user: &UserId) -> String {
    let local_len = user.as_str().len() - user.server_name().len();
    format!(
        "{}{}",
        &user.as_str()[..local_len],
        user.server_name().to_ascii_lowercase()
    )
}

fn check_pattern(pattern: &str) -> Result<(), &'static str> {
    if pattern == "*" {
        return Ok(());
    }
    let host = pattern.strip_prefix("*.").unwrap_or(pattern);
    if host.contains('*') {
        return Err("`*` may only stand alone or as the whole first label (`*.example.org`)");
    }
    let labels_ok = host.split('.').all(|l| {
        !l.is_empty()
            && !l.starts_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    if !labels_ok {
        return Err("expected a host name such as `agent.tchap.gouv.fr` or `*.tchap.gouv.fr`");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::user_table::SHARDS;

    const ROLES: &str = include_str!("../../../../policies/roles.toml");

    fn subject(id: &str, admin: bool) -> Subject {
        Subject {
            user_id: UserId::parse(id).unwrap(),
            server_admin: admin,
            power_level: 0,
        }
    }

    fn roles(resolver: &RoleResolver, id: &str, admin: bool) -> Vec<String> {
        resolver.names_of(resolver.resolve(&subject(id, admin)))
    }

    /// The shipped domain patterns give the roles of the default policy table.
    #[test]
    fn shipped_domains_give_the_default_roles() {
        let r = RoleResolver::load(ROLES, "").unwrap();
        let cases: &[(&str, bool, &[&str])] = &[
            ("@a:agent.externe.tchap.gouv.fr", false, &["external"]),
            ("@a:e.tchap.gouv.fr", false, &["external"]),
            ("@a:E.Tchap.Gouv.Fr:8448", false, &["external"]),
            ("@a:agent.finances.tchap.gouv.fr", false, &["agent"]),
            ("@a:agent.tchap.gouv.fr", false, &["agent"]),
            ("@a:deep.sub.agent.tchap.gouv.fr", false, &["agent"]),
            ("@a:agent.tchap.gouv.fr:443", false, &["agent"]),
            ("@a:agent.tchap.gouv.fr.", false, &["agent"]),
            ("@a:matrix.org", false, &["foreign"]),
            ("@a:127.0.0.1:8008", false, &["foreign"]),
            ("@a:[::1]", false, &["foreign"]),
            ("@a:agent.tchap.gouv.fr", true, &["agent", "admin"]),
            ("@a:matrix.org", true, &["foreign", "admin"]),
        ];
        for (id, admin, expected) in cases {
            let mut got = roles(&r, id, *admin);
            let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
            got.sort();
            want.sort();
            assert_eq!(got, want, "{id} admin={admin}");
        }
    }

    /// Look-alike domains never inherit a `*.tchap.gouv.fr` role.
    #[test]
    fn domain_tricks_are_foreign() {
        let r = RoleResolver::load(ROLES, "").unwrap();
        for id in [
            "@a:evil-tchap.gouv.fr",
            "@a:tchap.gouv.fr.evil.com",
            "@a:agent.externe.tchap.gouv.fr.evil.com",
            "@a:agent.tchap.gouv.fr.evil.com:8448",
            "@a:tchap.gouv.fr",
            "@a:xtchap.gouv.fr",
            "@a:agent.tchap.gouv.frx",
            "@a:gouv.fr",
        ] {
            assert_eq!(roles(&r, id, false), vec!["foreign".to_string()], "{id}");
        }
    }

    /// A per-user line replaces the domain roles; server admin still adds its roles.
    #[test]
    fn per_user_lines_replace_domain_roles() {
        let users = "# contractors\n@bob:agent.finances.tchap.gouv.fr, external\n@carol:matrix.org, agent, auditor\n";
        let declared = ROLES.replace(
            "\"foreign\", \"admin\"]",
            "\"foreign\", \"admin\", \"auditor\"]",
        );
        let r = RoleResolver::load(&declared, users).unwrap();
        assert_eq!(
            roles(&r, "@bob:agent.finances.tchap.gouv.fr", false),
            vec!["external"]
        );
        assert_eq!(
            roles(&r, "@bob:Agent.Finances.Tchap.Gouv.Fr", false),
            vec!["external"]
        );
        assert_eq!(
            roles(&r, "@bob:agent.finances.tchap.gouv.fr", true),
            vec!["admin", "external"]
        );
        assert_eq!(
            roles(&r, "@carol:matrix.org", false),
            vec!["agent", "auditor"]
        );
        assert_eq!(
            roles(&r, "@Bob:agent.finances.tchap.gouv.fr", false),
            vec!["agent"]
        );
    }

    /// Lookups stay hash lookups with a million per-user lines (the cost is measured by the criterion benchmark).
    #[test]
    fn a_million_users_load_and_resolve() {
        let mut users = String::new();
        for i in 0..1_000_000 {
            users.push_str(&format!("@user{i}:agent.tchap.gouv.fr, external\n"));
        }
        let r = RoleResolver::load(ROLES, &users).unwrap();
        assert_eq!(r.user_count(), 1_000_000);
        assert_eq!(
            roles(&r, "@user999999:agent.tchap.gouv.fr", false),
            vec!["external"]
        );
        assert_eq!(
            roles(&r, "@stranger:agent.tchap.gouv.fr", false),
            vec!["agent"]
        );
    }

    /// Mistakes are reported with file and line.
    #[test]
    fn reports_bad_lines() {
        let users =
            "@ok:example.org, agent\nnot-a-user, agent\n@x:example.org\n@y:example.org, Bad Role\n";
        let problems = RoleResolver::load(ROLES, users).unwrap_err();
        let lines: Vec<Option<usize>> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![Some(2), Some(3), Some(4)], "{problems:?}");
        assert!(problems.iter().all(|p| p.file == USERS_FILE));

        let bad_roles = "roles = [\"agent\", \"public\"]\n[domains]\n\"*.ok.org\" = [\"agent\"]\n\"a.*.org\" = [\"agent\"]\n";
        let problems = RoleResolver::load(bad_roles, "").unwrap_err();
        let rendered: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(
            rendered
                .iter()
                .any(|p| p.starts_with("roles.toml:1:") && p.contains("reserved")),
            "{rendered:?}"
        );
        assert!(
            rendered.iter().any(|p| p.starts_with("roles.toml:4:")),
            "{rendered:?}"
        );
    }

    /// users.csv is read line by line: a line that is not UTF-8 is reported at its line, the others still checked.
    #[test]
    fn a_line_that_is_not_utf8_is_reported_at_its_line() {
        let users: &[u8] =
            b"@bob:gmail.com, external\n@b\xffd:gmail.com, external\n@eve:gmail.com, nobody\n";
        let problems = RoleResolver::load_reader(ROLES, users, users.len()).unwrap_err();
        let rendered: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(rendered.len(), 2, "{rendered:?}");
        assert!(
            rendered[0].starts_with("users.csv:2:") && rendered[0].contains("UTF-8"),
            "{rendered:?}"
        );
        assert!(rendered[1].starts_with("users.csv:3:"), "{rendered:?}");
    }

    /// A role is declared before it is used: a misspelt role in users.csv is a load error at its line that names
    /// the role it most likely means, never a new role that no rule knows (which would lift the user's
    /// restrictions).
    #[test]
    fn an_undeclared_role_in_users_csv_is_an_error_at_its_line() {
        let users = "# contractors\n@bob:gmail.com, extrenal\n";
        let problems = RoleResolver::load(ROLES, users).unwrap_err();
        let rendered: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(rendered.len(), 1, "{rendered:?}");
        assert!(rendered[0].starts_with("users.csv:2:"), "{rendered:?}");
        assert!(
            rendered[0].contains("`extrenal` is not declared"),
            "{rendered:?}"
        );
        assert!(
            rendered[0].contains("did you mean `external`?"),
            "{rendered:?}"
        );
    }

    /// Domain patterns and `server_admin` may only name declared roles either, each reported at its line.
    #[test]
    fn undeclared_roles_in_roles_toml_are_errors_at_their_lines() {
        let toml = "roles = [\"agent\", \"admin\"]\nserver_admin = [\"admn\"]\n[domains]\n\"*\" = [\"foriegn\"]\n";
        let problems = RoleResolver::load(toml, "").unwrap_err();
        let rendered: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(
            rendered
                .iter()
                .any(|p| p.starts_with("roles.toml:2:") && p.contains("`admn`")),
            "{rendered:?}"
        );
        assert!(
            rendered
                .iter()
                .any(|p| p.starts_with("roles.toml:4:") && p.contains("`foriegn`")),
            "{rendered:?}"
        );
    }

    /// A roles.toml without a `roles` list, with an empty one, or declaring a role twice is refused.
    #[test]
    fn the_roles_list_is_required_and_distinct() {
        for toml in [
            "[domains]\n\"*\" = []\n",
            "roles = []\n",
            "roles = [\"agent\", \"agent\"]\n",
        ] {
            assert!(RoleResolver::load(toml, "").is_err(), "{toml}");
        }
    }

    /// Reloads `users` with `previous` as the serving resolver.
    fn reload(
        roles_toml: &str,
        users: &str,
        previous: &RoleResolver,
    ) -> Result<RoleResolver, UsersLoadError> {
        let open = || Ok(Some((users.as_bytes(), users.len())));
        RoleResolver::load_reusing(roles_toml, open, Some(previous)).map(|(r, _)| r)
    }

    /// `count` per-user lines over a few servers (some spelt in capitals, which normalise to the same user).
    fn user_lines(count: usize) -> Vec<String> {
        (0..count)
            .map(|i| {
                let server = ["agent.tchap.gouv.fr", "Matrix.Org", "e.tchap.gouv.fr"][i % 3];
                let roles = ["agent", "external", "foreign, admin", "external, agent"][i % 4];
                format!("@user{i}:{server}, {roles}")
            })
            .collect()
    }

    fn text(lines: &[String]) -> String {
        lines.iter().map(|l| format!("{l}\n")).collect()
    }

    /// Every id the lines name, the same ids with the server name in other capitals, and strangers: the look-ups
    /// that two resolvers must agree on.
    fn probes(lines: &[String]) -> Vec<String> {
        let mut ids: Vec<String> = lines
            .iter()
            .filter_map(|l| l.split(',').next())
            .map(str::trim)
            .filter(|id| id.starts_with('@'))
            .flat_map(|id| {
                [
                    id.to_owned(),
                    id.to_ascii_lowercase(),
                    id.to_ascii_uppercase(),
                ]
            })
            .filter(|id| UserId::parse(id).is_ok())
            .collect();
        ids.extend((0..50).map(|i| format!("@stranger{i}:agent.tchap.gouv.fr")));
        ids
    }

    /// Two resolvers give every probed subject the same roles, admin or not, and list as many users.
    fn assert_same_lookups(got: &RoleResolver, want: &RoleResolver, probes: &[String]) {
        assert_eq!(got.user_count(), want.user_count());
        assert_eq!(got.role_names(), want.role_names());
        for id in probes {
            for admin in [false, true] {
                assert_eq!(
                    got.resolve(&subject(id, admin)),
                    want.resolve(&subject(id, admin)),
                    "{id} admin={admin}"
                );
            }
        }
    }

    /// A reload that appends one line to a 5,000-line users.csv rebuilds the one shard of the new user and shares
    /// every other shard with the serving table, and it looks up exactly as a load from scratch.
    #[test]
    fn a_reload_that_appends_a_line_shares_every_shard_but_one() {
        let mut lines = user_lines(5_000);
        let serving = RoleResolver::load(ROLES, &text(&lines)).unwrap();
        assert_eq!(
            serving.shards_shared_with(&RoleResolver::load(ROLES, "").unwrap()),
            0,
            "5,000 users fill every shard"
        );
        lines.push("@newcomer:agent.tchap.gouv.fr, external".to_owned());
        let reloaded = reload(ROLES, &text(&lines), &serving).unwrap();
        assert_eq!(reloaded.shards_shared_with(&serving), SHARDS - 1);
        let fresh = RoleResolver::load(ROLES, &text(&lines)).unwrap();
        assert_same_lookups(&reloaded, &fresh, &probes(&lines));
        assert_eq!(
            roles(&reloaded, "@newcomer:agent.tchap.gouv.fr", false),
            ["external"]
        );
    }

    /// Random edits (a line removed, a role changed, a line added, duplicated or commented out, two lines swapped,
    /// the whole file rewritten), reloaded one after the other each over the previous reload: every reload looks up
    /// exactly as a load of the same file from scratch, returns the digest of the file, and rebuilds at most the
    /// shards of the lines the edits touched.
    #[test]
    fn reloads_after_random_edits_look_up_as_a_load_from_scratch() {
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move |bound: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % bound as u64) as usize
        };
        let mut lines = user_lines(3_000);
        let mut serving = RoleResolver::load(ROLES, &text(&lines)).unwrap();
        let role_lists = [
            "agent",
            "external",
            "foreign",
            "admin, external",
            "agent, agent",
        ];
        for round in 0..40 {
            let edits = 1 + next(4);
            let rewritten = round % 10 == 9;
            if rewritten {
                lines = user_lines(2_000 + round)
                    .into_iter()
                    .map(|l| l.replace("@user", &format!("@r{round}u")))
                    .collect();
            }
            for _ in 0..if rewritten { 0 } else { edits } {
                let at = next(lines.len());
                match next(7) {
                    0 => {
                        lines.remove(at);
                    }
                    1 => {
                        let id = lines[at].split(',').next().unwrap().to_owned();
                        lines[at] = format!("{id}, {}", role_lists[next(role_lists.len())]);
                    }
                    2 => lines.insert(at, format!("@added{round}x{at}:Matrix.org, agent")),
                    3 => lines.push(lines[at].clone()),
                    4 => lines[at] = format!("# {}", lines[at]),
                    5 => {
                        let other = next(lines.len());
                        lines.swap(at, other);
                    }
                    _ => lines.insert(at, format!("@added{round}y{at}:e.tchap.gouv.fr, foreign")),
                }
            }
            let users = text(&lines);
            let open = || Ok(Some((users.as_bytes(), users.len())));
            let (reloaded, digest) =
                RoleResolver::load_reusing(ROLES, open, Some(&serving)).unwrap();
            let fresh = RoleResolver::load(ROLES, &users).unwrap();
            assert_same_lookups(&reloaded, &fresh, &probes(&lines));
            assert_eq!(digest, <[u8; 32]>::from(Sha256::digest(users.as_bytes())));
            if !rewritten {
                // An edit touches the shards of at most two ids (a swap), a duplicate or a comment one.
                assert!(
                    reloaded.shards_shared_with(&serving) >= SHARDS - 2 * edits,
                    "round {round}: {} shared after {edits} edits",
                    reloaded.shards_shared_with(&serving)
                );
            }
            serving = reloaded;
        }
    }

    /// A rewrite of every line shares no shard (the table is built anew, as a load is) and looks up as a load.
    #[test]
    fn a_rewritten_file_shares_nothing_and_looks_up_as_a_load() {
        let serving = RoleResolver::load(ROLES, &text(&user_lines(5_000))).unwrap();
        let rewritten: Vec<String> = user_lines(5_000)
            .into_iter()
            .map(|l| l.replace("@user", "@member"))
            .collect();
        let reloaded = reload(ROLES, &text(&rewritten), &serving).unwrap();
        assert_eq!(reloaded.shards_shared_with(&serving), 0);
        let fresh = RoleResolver::load(ROLES, &text(&rewritten)).unwrap();
        let mut probed = probes(&rewritten);
        probed.extend(probes(&user_lines(100)));
        assert_same_lookups(&reloaded, &fresh, &probed);
    }

    /// Shards hold role bits, which mean what roles.toml declares: when the declared roles change (here, reordered),
    /// nothing is shared, and the unchanged users.csv resolves to the roles by their new bits. (Without the check of
    /// the declarations the shards' digests, which cover the bits, would still refuse to share any shard here.)
    #[test]
    fn a_reload_with_other_declared_roles_shares_no_shard() {
        let lines = user_lines(5_000);
        let serving = RoleResolver::load(ROLES, &text(&lines)).unwrap();
        let reordered = ROLES.replace(
            "roles = [\"agent\", \"external\", \"foreign\", \"admin\"]",
            "roles = [\"admin\", \"foreign\", \"external\", \"agent\"]",
        );
        assert_ne!(reordered, ROLES);
        let reloaded = reload(&reordered, &text(&lines), &serving).unwrap();
        assert_eq!(reloaded.shards_shared_with(&serving), 0);
        let fresh = RoleResolver::load(&reordered, &text(&lines)).unwrap();
        assert_same_lookups(&reloaded, &fresh, &probes(&lines));
        assert_eq!(
            roles(&reloaded, "@user0:agent.tchap.gouv.fr", false),
            ["agent"]
        );
    }

    /// A users.csv that changes between the two reads of a reload is reported as changed, never loaded as a table
    /// that mixes the two versions; one that changes in a way the second read cannot tell from the first (the same
    /// bytes) is simply loaded.
    #[test]
    fn a_file_changed_between_the_two_reads_is_detected() {
        let before = text(&user_lines(1_000));
        let serving = RoleResolver::load(ROLES, &before).unwrap();
        let first = format!("{before}@eve:matrix.org, external\n");
        for second in [
            format!("{before}@eve:matrix.org, agent\n"),
            format!("{before}@eve:matrix.org, external\n# a comment\n"),
            before.clone(),
        ] {
            let mut reads = [first.as_str(), second.as_str()].into_iter();
            let open = || Ok(reads.next().map(|t| (t.as_bytes(), t.len())));
            let loaded = RoleResolver::load_reusing(ROLES, open, Some(&serving));
            assert!(matches!(loaded, Err(UsersLoadError::Changed)), "{second:?}");
        }
        let mut reads = [first.as_str(), first.as_str()].into_iter();
        let open = || Ok(reads.next().map(|t| (t.as_bytes(), t.len())));
        assert!(RoleResolver::load_reusing(ROLES, open, Some(&serving)).is_ok());
    }

    /// A reload reports the problems of a broken users.csv exactly as a load does, each at its line.
    #[test]
    fn a_reload_reports_problems_as_a_load_does() {
        let serving = RoleResolver::load(ROLES, &text(&user_lines(100))).unwrap();
        let mut lines = user_lines(100);
        lines[10] = "@bob:matrix.org, extrenal".to_owned();
        lines[20] = "not-a-user, agent".to_owned();
        let broken = text(&lines);
        let Err(UsersLoadError::Invalid(problems)) = reload(ROLES, &broken, &serving) else {
            panic!("a broken users.csv reloads");
        };
        let rendered: Vec<String> = problems.iter().map(ToString::to_string).collect();
        let want: Vec<String> = RoleResolver::load(ROLES, &broken)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(rendered, want);
        assert!(rendered[0].starts_with("users.csv:11:"), "{rendered:?}");
        assert!(rendered[1].starts_with("users.csv:21:"), "{rendered:?}");
    }

    /// Declared order is bit order, and a declared role that nothing gives still exists for rules.
    #[test]
    fn declared_roles_exist_even_when_unused() {
        let r = RoleResolver::load(
            "roles = [\"b\", \"a\", \"unused\"]\n[domains]\n\"*\" = [\"a\"]\n",
            "",
        )
        .unwrap();
        assert_eq!(r.role_names(), ["b", "a", "unused"]);
    }
}
