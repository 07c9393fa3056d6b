//! Problems found in policy files, each pinned to a file and line so an author can go straight to it.

use std::{fmt, ops::Range};

/// One problem in one policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file's name inside the policy directory, e.g. `rules.csv`.
    pub file: String,
    /// 1-based line, when the problem has one.
    pub line: Option<usize>,
    /// What is wrong and, where it helps, what to do.
    pub message: String,
}

impl Problem {
    /// A problem at a line.
    pub fn at(file: &str, line: usize, message: impl Into<String>) -> Self {
        Problem {
            file: file.to_owned(),
            line: Some(line),
            message: message.into(),
        }
    }

    /// A problem with the file as a whole.
    pub fn in_file(file: &str, message: impl Into<String>) -> Self {
        Problem {
            file: file.to_owned(),
            line: None,
            message: message.into(),
        }
    }

    /// A problem at a byte span of the file's text (from a TOML span).
    pub fn at_span(
        file: &str,
        text: &str,
        span: Option<Range<usize>>,
        message: impl Into<String>,
    ) -> Self {
        match span {
            Some(span) => Problem::at(file, line_of(text, span.start), message),
            None => Problem::in_file(file, message),
        }
    }

    /// A TOML syntax or shape error, at its line.
    pub fn from_toml(file: &str, text: &str, err: &toml::de::Error) -> Self {
        Problem::at_span(file, text, err.span(), err.message().trim().to_owned())
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file, line, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// The 1-based line holding byte `offset` of `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    1 + text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

/// Every problem found while loading a policy directory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyError {
    /// In file order, then line order.
    pub problems: Vec<Problem>,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "the policy has {n} problem{}",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}
