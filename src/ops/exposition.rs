//! The Prometheus text exposition format (version 0.0.4): the pieces every metrics family renders with.

use std::fmt::Write as _;

/// The `# HELP` and `# TYPE` lines of one metric family.
pub(super) fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Escapes a label value (backslash, double quote, line feed), as the exposition format requires.
pub(super) fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
