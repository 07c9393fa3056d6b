//! The reason catalogue: for each reason code, the text shown to the end user, in the deployment's language and
//! optionally others.

use std::collections::HashMap;

use crate::policy::diagnostics::Problem;

/// The file, inside the policy directory, that holds the catalogue.
pub const REASONS_FILE: &str = "reasons.toml";

/// The code roomguard gives when no rule allows the action (default deny).
pub const NO_MATCHING_RULE: &str = "NO_MATCHING_RULE";
/// The code roomguard gives when a rule's condition cannot be evaluated for a request (a deny: fail closed).
pub const POLICY_EVALUATION_ERROR: &str = "POLICY_EVALUATION_ERROR";

/// The code of the shipped public-join rate rule (`join.rate`); `roomguard_joins_rate_limited_total` counts the
/// decisions that give it, whichever rule an author makes give it.
pub const JOIN_RATE_EXCEEDED: &str = "JOIN_RATE_EXCEEDED";

/// A read whose access token the homeserver does not know: allowed without deciding, so that the homeserver answers
/// 401 itself and roomguard tells nothing about tokens.
pub const UNKNOWN_TOKEN: &str = "UNKNOWN_TOKEN";
/// A read roomguard could not decide (the homeserver did not answer, overload, timeout), answered by
/// `reads.failure_mode`.
pub const READ_GUARD_UNAVAILABLE: &str = "READ_GUARD_UNAVAILABLE";
/// A read request roomguard cannot classify (a malformed URI or method): refused.
pub const INVALID_READ_REQUEST: &str = "INVALID_READ_REQUEST";

/// A read the homeserver serves to an account only, with no access token in its header or URI: refused (401
/// `M_MISSING_TOKEN`, as the homeserver answers it), since a token elsewhere (a form-encoded body) reaches the
/// homeserver and not roomguard.
pub const MISSING_TOKEN: &str = "MISSING_TOKEN";

/// The English message of a code roomguard writes about reads, for a catalogue that lacks it (these codes came with
/// the read guard: a policy written before it loads without them).
pub fn read_fallback_message(code: &str) -> &'static str {
    match code {
        UNKNOWN_TOKEN => {
            "The homeserver does not know this access token: it answers the request itself."
        }
        READ_GUARD_UNAVAILABLE => {
            "The read could not be checked (the read guard or the homeserver is unavailable): try again later."
        }
        INVALID_READ_REQUEST => "This request is malformed: it cannot be served.",
        MISSING_TOKEN => "This request needs an access token in its Authorization header.",
        _ => "",
    }
}

/// A reason code for a rate (`JOIN_RATE_EXCEEDED`, `READ_RATE_EXCEEDED`, `DOWNLOAD_RATE_EXCEEDED`, or any code an
/// author names so): a read refused for one is answered 429 `M_LIMIT_EXCEEDED` with a time to retry after.
pub fn is_rate(code: &str) -> bool {
    code.ends_with("_RATE_EXCEEDED")
}

/// Codes that roomguard itself writes, so the catalogue must have them.
pub const BUILT_IN_CODES: [&str; 2] = [NO_MATCHING_RULE, POLICY_EVALUATION_ERROR];

/// Reason code -> user-facing message.
#[derive(Debug, Clone, Default)]
pub struct ReasonCatalogue {
    language: String,
    messages: HashMap<String, String>,
}

impl ReasonCatalogue {
    /// Parses `reasons.toml`: a `language = "fr"` line, then one table per code with a message per language.
    pub fn from_toml(text: &str) -> Result<Self, Vec<Problem>> {
        let table: toml::Table =
            toml::from_str(text).map_err(|e| vec![Problem::from_toml(REASONS_FILE, text, &e)])?;
        let mut problems = Vec::new();
        let language = match table.get("language") {
            Some(toml::Value::String(language)) => language.clone(),
            _ => {
                return Err(vec![Problem::in_file(
                    REASONS_FILE,
                    "needs a first line `language = \"fr\"` naming the language of the messages returned",
                )]);
            }
        };
        let mut messages = HashMap::new();
        for (code, texts) in table.iter().filter(|(k, _)| k.as_str() != "language") {
            let line = header_line(text, code);
            let at = |m: String| match line {
                Some(line) => Problem::at(REASONS_FILE, line, m),
                None => Problem::in_file(REASONS_FILE, m),
            };
            if !is_code(code) {
                problems.push(at(format!(
                    "reason code `{code}` must be capital letters, digits and `_`, starting with a letter"
                )));
            }
            match texts.get(&language) {
                Some(toml::Value::String(message)) if !message.trim().is_empty() => {
                    messages.insert(code.clone(), message.trim().to_owned());
                }
                _ => problems.push(at(format!(
                    "reason `{code}` has no `{language}` message (the catalogue's language)"
                ))),
            }
        }
        for code in BUILT_IN_CODES {
            if !table.contains_key(code) {
                problems.push(Problem::in_file(
                    REASONS_FILE,
                    format!("reason `{code}` is missing: roomguard writes it itself, so the catalogue must have it"),
                ));
            }
        }
        if problems.is_empty() {
            Ok(ReasonCatalogue { language, messages })
        } else {
            Err(problems)
        }
    }

    /// The message for `code`, if the catalogue has it.
    pub fn message(&self, code: &str) -> Option<&str> {
        self.messages.get(code).map(String::as_str)
    }

    /// True when the catalogue has `code`.
    pub fn contains(&self, code: &str) -> bool {
        self.messages.contains_key(code)
    }

    /// The language of the messages returned.
    pub fn language(&self) -> &str {
        &self.language
    }
}

/// The line of the `[CODE]` table header, where an author looks for the code.
fn header_line(text: &str, code: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            l.trim()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .trim()
                == code
                && l.trim().starts_with('[')
        })
        .map(|i| i + 1)
}

/// Reason codes are stable machine identifiers: `CLASSIFIED_IN_PUBLIC_ROOM`.
pub fn is_code(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shipped catalogue loads and speaks French.
    #[test]
    fn shipped_catalogue_loads() {
        let c =
            ReasonCatalogue::from_toml(include_str!("../../../../policies/reasons.toml")).unwrap();
        assert_eq!(c.language(), "fr");
        assert!(c.message(NO_MATCHING_RULE).is_some());
        assert!(
            c.message("CLASSIFIED_IN_PUBLIC_ROOM")
                .unwrap()
                .contains("salon")
        );
    }

    /// A missing message, a bad code and a missing built-in code are each reported.
    #[test]
    fn reports_mistakes() {
        let text =
            "language = \"fr\"\n\n[bad_code]\nfr = \"x\"\n\n[NO_FR]\nen = \"only english\"\n";
        let problems = ReasonCatalogue::from_toml(text).unwrap_err();
        let rendered: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(
            rendered
                .iter()
                .any(|p| p.starts_with("reasons.toml:3:") && p.contains("bad_code")),
            "{rendered:?}"
        );
        assert!(
            rendered
                .iter()
                .any(|p| p.starts_with("reasons.toml:6:") && p.contains("`fr`")),
            "{rendered:?}"
        );
        assert!(
            rendered.iter().any(|p| p.contains(NO_MATCHING_RULE)),
            "{rendered:?}"
        );
    }
}
