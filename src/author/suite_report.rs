//! Runs the test suites of a policy directory and renders the results for people (text with diffs), machines
//! (JSON) and CI systems (JUnit XML): `roomguard test`.

use std::{fmt::Write as _, path::Path};

use serde::Serialize;

use crate::{
    author::suite::{Suite, SuiteError},
    policy::PolicySnapshot,
};

/// One case's result.
#[derive(Debug, Clone, Serialize)]
pub struct CaseReport {
    /// The suite file, relative to the tests directory.
    pub file: String,
    /// The case's name.
    pub name: String,
    /// True when the decision matched every expectation.
    pub passed: bool,
    /// The differences, when it did not.
    pub failures: Vec<String>,
}

/// Runs every `*.yaml` suite of `tests_dir` (in name order) against `policy`.
pub fn run_suites(
    policy: &PolicySnapshot,
    tests_dir: &Path,
) -> Result<Vec<CaseReport>, SuiteError> {
    let entries = std::fs::read_dir(tests_dir).map_err(|source| SuiteError::Read {
        path: tests_dir.to_owned(),
        source,
    })?;
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(SuiteError::NoSuites(tests_dir.to_owned()));
    }
    let mut reports = Vec::new();
    for path in files {
        let suite = Suite::from_file(&path)?;
        let file = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        for case in &suite.cases {
            let outcome = case.run(policy);
            reports.push(CaseReport {
                file: file.clone(),
                name: case.name.clone(),
                passed: outcome.is_ok(),
                failures: outcome.err().unwrap_or_default(),
            });
        }
    }
    Ok(reports)
}

/// `PASS`/`FAIL` per case, each failure with its differences, and a closing `N passed, M failed` line.
pub fn render_text(reports: &[CaseReport]) -> String {
    let mut out = String::new();
    for r in reports {
        let _ = writeln!(
            out,
            "{} {}: {}",
            if r.passed { "PASS" } else { "FAIL" },
            r.file,
            r.name
        );
        for f in &r.failures {
            let _ = writeln!(out, "       {f}");
        }
    }
    let failed = reports.iter().filter(|r| !r.passed).count();
    let _ = writeln!(
        out,
        "\n{} passed, {} failed",
        reports.len() - failed,
        failed
    );
    out
}

/// The reports as a JSON document: `{"passed": N, "failed": M, "cases": [...]}`.
pub fn render_json(reports: &[CaseReport]) -> String {
    let failed = reports.iter().filter(|r| !r.passed).count();
    let doc =
        serde_json::json!({ "passed": reports.len() - failed, "failed": failed, "cases": reports });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// JUnit XML: one `<testsuite>` per suite file, one `<testcase>` per case, `<failure>` with the differences.
pub fn render_junit(reports: &[CaseReport]) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"roomguard policy\">\n",
    );
    let mut files: Vec<&str> = reports.iter().map(|r| r.file.as_str()).collect();
    files.dedup();
    for file in files {
        let cases: Vec<&CaseReport> = reports.iter().filter(|r| r.file == file).collect();
        let failures = cases.iter().filter(|r| !r.passed).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\">",
            xml_escape(file),
            cases.len()
        );
        for case in cases {
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\"",
                xml_escape(file),
                xml_escape(&case.name)
            );
            if case.passed {
                out.push_str("/>\n");
            } else {
                let text = case.failures.join("\n");
                let first = case.failures.first().map_or("", String::as_str);
                let _ = writeln!(
                    out,
                    ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                    xml_escape(first),
                    xml_escape(&text)
                );
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reports() -> Vec<CaseReport> {
        vec![
            CaseReport {
                file: "a.yaml".into(),
                name: "ok".into(),
                passed: true,
                failures: vec![],
            },
            CaseReport {
                file: "a.yaml".into(),
                name: "<bad> & \"quoted\"".into(),
                passed: false,
                failures: vec!["effect: expected deny, got allow".into()],
            },
        ]
    }

    /// The text report ends with the counts and shows each difference.
    #[test]
    fn text_report() {
        let text = render_text(&reports());
        assert!(text.contains("FAIL a.yaml: <bad>"));
        assert!(text.contains("effect: expected deny, got allow"));
        assert!(text.trim_end().ends_with("1 passed, 1 failed"));
    }

    /// JUnit and JSON are well formed and escaped.
    #[test]
    fn machine_reports() {
        let xml = render_junit(&reports());
        assert!(xml.contains("<testsuite name=\"a.yaml\" tests=\"2\" failures=\"1\">"));
        assert!(xml.contains("name=\"&lt;bad&gt; &amp; &quot;quoted&quot;\""));
        let json: serde_json::Value = serde_json::from_str(&render_json(&reports())).unwrap();
        assert_eq!(
            (json["passed"].as_u64(), json["failed"].as_u64()),
            (Some(1), Some(1))
        );
    }
}
