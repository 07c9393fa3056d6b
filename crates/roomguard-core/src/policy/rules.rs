//! The policy rules file, `rules.csv`: the engine's policy lines `p, id, action, condition, effect, code`.
//!
//! The condition is an expression over the request's attributes and may itself contain commas and quotes, so a line
//! is split on its first three commas and its last two, and the condition is everything between, verbatim. That keeps
//! lines readable without CSV quoting:
//!
//! ```text
//! p, send.classified-public, send, r.msg.classified && r.room.is_public, deny, CLASSIFIED_IN_PUBLIC_ROOM
//! ```

use std::collections::HashMap;

use crate::{
    domain::{decision::Effect, request::Action},
    policy::{diagnostics::Problem, reasons::is_code},
};

/// The file, inside the policy directory, that holds the rules.
pub const RULES_FILE: &str = "rules.csv";

/// One rule as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Unique id, returned in reasons so authors can find the rule.
    pub id: String,
    /// The action the rule is about.
    pub action: Action,
    /// A boolean expression over `r.act`, `r.sub`, `r.role`, `r.room`, `r.msg`.
    pub condition: String,
    /// What the rule says when its condition holds.
    pub effect: Effect,
    /// The reason code it gives, from the catalogue.
    pub code: String,
    /// Its 1-based line in `rules.csv`.
    pub line: usize,
}

impl Rule {
    /// The engine's policy values, in the order of the model's `p = id, act, cond, eft, code`.
    pub fn policy_values(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.action.as_str().to_owned(),
            self.condition.clone(),
            self.effect.as_str().to_owned(),
            self.code.clone(),
        ]
    }
}

/// Parses `rules.csv`, reporting every malformed line (not only the first).
#[cfg(test)]
pub fn parse_rules(text: &str) -> Result<Vec<Rule>, Vec<Problem>> {
    let (rules, problems) = parse_rules_lenient(text);
    if problems.is_empty() {
        Ok(rules)
    } else {
        Err(problems)
    }
}

/// Parses `rules.csv`, returning the well-formed rules beside the problems, so that later checks can still look at
/// the rules that did parse and an author sees every problem in one run.
pub fn parse_rules_lenient(text: &str) -> (Vec<Rule>, Vec<Problem>) {
    let mut rules: Vec<Rule> = Vec::new();
    let mut problems = Vec::new();
    // Id -> line of its first rule: a look-up, not a scan of the rules so far (10,000 rules made that 50 million
    // comparisons, most of a load).
    let mut lines: HashMap<String, usize> = HashMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match parse_line(trimmed, line) {
            Ok(rule) => {
                if let Some(first) = lines.get(&rule.id) {
                    problems.push(Problem::at(
                        RULES_FILE,
                        line,
                        format!(
                            "rule id `{}` is already used on line {first}: ids must be unique",
                            rule.id
                        ),
                    ));
                } else {
                    lines.insert(rule.id.clone(), rule.line);
                    rules.push(rule);
                }
            }
            Err(message) => problems.push(Problem::at(RULES_FILE, line, message)),
        }
    }
    (rules, problems)
}

fn parse_line(line: &str, number: usize) -> Result<Rule, String> {
    const SHAPE: &str = "expected `p, id, action, condition, effect, code`";
    let rest = line.strip_prefix('p').and_then(|r| r.trim_start().strip_prefix(',')).ok_or_else(|| {
        format!("{SHAPE}: a rule line starts with `p,` (role lines belong in roles.toml and users.csv)")
    })?;
    let (id, rest) = rest.split_once(',').ok_or(SHAPE)?;
    let (action, rest) = rest.split_once(',').ok_or(SHAPE)?;
    let (rest, code) = rest.rsplit_once(',').ok_or(SHAPE)?;
    let (condition, effect) = rest.rsplit_once(',').ok_or(SHAPE)?;
    let (id, action, condition, effect, code) = (
        id.trim(),
        action.trim(),
        condition.trim(),
        effect.trim(),
        code.trim(),
    );
    let id_ok = id.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    if !id_ok {
        return Err(format!(
            "rule id `{id}` must be lowercase letters, digits, `.`, `_` and `-`"
        ));
    }
    let action = Action::parse(action).ok_or_else(|| {
        format!("rule `{id}`: action `{action}` is not one of `send`, `publish`, `unpublish`, `join`, `state`")
    })?;
    if condition.is_empty() {
        return Err(format!(
            "rule `{id}`: the condition is empty (write `true` for a rule that always applies)"
        ));
    }
    let effect = match effect {
        "allow" => Effect::Allow,
        "deny" => Effect::Deny,
        other => {
            return Err(format!(
                "rule `{id}`: effect `{other}` is not `allow` or `deny`"
            ));
        }
    };
    if !is_code(code) {
        return Err(format!(
            "rule `{id}`: reason code `{code}` must be capital letters, digits and `_`"
        ));
    }
    Ok(Rule {
        id: id.to_owned(),
        action,
        condition: condition.to_owned(),
        effect,
        code: code.to_owned(),
        line: number,
    })
}

/// One `r.<object>.<field>` reference in a condition, and the text after it (to check what it is compared with).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reference<'a> {
    /// `sub`, `role`, `room`, `msg`, or `act`.
    pub object: &'a str,
    /// The field, absent for `r.act`.
    pub field: Option<&'a str>,
    /// The condition's text after the reference.
    pub rest: &'a str,
}

/// The `r.<object>.<field>` references in a condition, outside string literals.
pub fn attribute_references(condition: &str) -> Vec<Reference<'_>> {
    let bytes = condition.as_bytes();
    let mut refs = Vec::new();
    let mut i = 0;
    let mut in_string = false;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            if b == b'\\' {
                i += 1;
            } else if b == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        let boundary = i == 0 || !is_ident_byte(bytes[i - 1]) && bytes[i - 1] != b'.';
        if boundary && b == b'r' && bytes.get(i + 1) == Some(&b'.') {
            let object_start = i + 2;
            let object_end = ident_end(bytes, object_start);
            let object = &condition[object_start..object_end];
            let (field, end) = if bytes.get(object_end) == Some(&b'.') {
                let field_end = ident_end(bytes, object_end + 1);
                (Some(&condition[object_end + 1..field_end]), field_end)
            } else {
                (None, object_end)
            };
            refs.push(Reference {
                object,
                field,
                rest: &condition[end..],
            });
            i = end;
            continue;
        }
        i += 1;
    }
    refs
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn ident_end(bytes: &[u8], start: usize) -> usize {
    let mut end = start;
    while end < bytes.len() && is_ident_byte(bytes[end]) {
        end += 1;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Conditions keep their commas and quotes; the other fields are trimmed.
    #[test]
    fn splits_on_the_outer_commas() {
        let rules = parse_rules(
            "# comment\n\np, send.big-file, send, r.msg.msgtype == \"m.file\" && (r.msg.size_mib > 50), deny, FILE_TOO_LARGE\n",
        )
        .unwrap();
        assert_eq!(rules.len(), 1);
        let r = &rules[0];
        assert_eq!(r.id, "send.big-file");
        assert_eq!(r.action, Action::Send);
        assert_eq!(
            r.condition,
            "r.msg.msgtype == \"m.file\" && (r.msg.size_mib > 50)"
        );
        assert_eq!(r.effect, Effect::Deny);
        assert_eq!(r.code, "FILE_TOO_LARGE");
        assert_eq!(r.line, 3);
    }

    /// Every malformed line is reported with its line number.
    #[test]
    fn reports_every_bad_line() {
        let text = "p, ok, send, true, allow, ALLOWED\n\
                    g, alice, admin\n\
                    p, Bad Id, send, true, allow, ALLOWED\n\
                    p, x, fly, true, allow, ALLOWED\n\
                    p, y, send, true, maybe, ALLOWED\n\
                    p, z, send, true, allow, lower\n\
                    p, ok, send, true, allow, ALLOWED\n\
                    p, w, send, , allow, ALLOWED\n\
                    p, short\n";
        let problems = parse_rules(text).unwrap_err();
        let lines: Vec<usize> = problems.iter().filter_map(|p| p.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 5, 6, 7, 8, 9], "{problems:#?}");
        assert!(problems[5].message.contains("already used on line 1"));
    }

    /// Attribute references are found outside strings only.
    #[test]
    fn finds_attribute_references() {
        let refs = attribute_references(
            "r.room.is_public && r.role.external || r.act == \"r.sub.fake\" && xr.y.z",
        );
        let found: Vec<_> = refs.iter().map(|r| (r.object, r.field)).collect();
        assert_eq!(
            found,
            vec![
                ("room", Some("is_public")),
                ("role", Some("external")),
                ("act", None)
            ]
        );
        assert_eq!(refs[2].rest, " == \"r.sub.fake\" && xr.y.z");
    }
}
