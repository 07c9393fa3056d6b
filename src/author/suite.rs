//! Policy test suites: YAML files of requests and the decisions the policy must give them.
//!
//! Policy authors read and extend these files (`policies/tests/*.yaml`); the test suite runs them against the
//! shipped policy, so a rule edit that changes a decision shows up as a failing case with a diff. A case's request
//! goes through the same conversion as a gRPC request, so suites also pin what is refused as invalid input.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{
    documents::{self, Extraction, Incomplete, Limits},
    domain::decision::Decision,
    grpc::{
        InvalidArgument,
        cases::{JoinCase, PublishCase, ReadCase, SendCase, StateCase, UploadCase},
    },
    ops::media_limits::MediaConfig,
    policy::{
        PolicySnapshot,
        decide::{
            decide_join, decide_publish, decide_read, decide_send, decide_state_change,
            decide_upload,
        },
    },
};

/// How long a suite's upload case may take to read its file: generous, since a suite pins what is read, not how
/// fast (a file meant to hit a limit hits a size or nesting limit, which does not depend on the machine).
const SUITE_SCAN_BUDGET: std::time::Duration = std::time::Duration::from_secs(60);

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
    /// A `CheckRoomJoin` request (with the user's recent public joins, as the server's counter would give them).
    #[serde(default)]
    pub join: Option<JoinCase>,
    /// A `CheckRoomStateChange` request.
    #[serde(default)]
    pub state: Option<StateCase>,
    /// A `CheckMediaUpload` stream: its header and the file (read with the default `[media]` limits).
    #[serde(default)]
    pub upload: Option<UploadCase>,
    /// A read the reverse proxy asks about (`CheckRead`), with the account's counts.
    #[serde(default)]
    pub read: Option<ReadCase>,
    /// The expected outcome.
    pub expect: Expect,
    /// The suite file's directory, against which `upload.file` is resolved.
    #[serde(skip)]
    pub dir: PathBuf,
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
    /// Uploads: the format read from the content.
    #[serde(default)]
    pub format: Option<String>,
    /// Uploads: whether all the text could be read.
    #[serde(default)]
    pub complete: Option<bool>,
    /// Uploads: why not (`encrypted`, `corrupt`, `size_limit`, `time_limit`, `nesting_limit`, `unsupported`).
    #[serde(default)]
    pub incomplete_reason: Option<String>,
    /// Reads: the kind the path reads (`history`, `search`, `sync_initial`, `media`, `thumbnail`, `other`).
    #[serde(default)]
    pub kind: Option<String>,
}

/// The outcome of one case: `Ok` or the differences from what was expected.
pub type CaseOutcome = Result<(), Vec<String>>;

/// Why suites could not be run (as opposed to a case that fails).
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    /// A suite file or the tests directory cannot be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A suite file is not a suite (YAML syntax, unknown keys, missing fields).
    #[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Parse {
        /// The file.
        path: PathBuf,
        /// Where, when the parser knows.
        line: Option<usize>,
        /// What the parser says.
        message: String,
    },
    /// The tests directory holds no suite.
    #[error("{}: no test suites (*.yaml)", .0.display())]
    NoSuites(PathBuf),
}

impl Suite {
    /// Reads a suite file.
    pub fn from_file(path: &Path) -> Result<Suite, SuiteError> {
        let text = std::fs::read_to_string(path).map_err(|source| SuiteError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut suite: Suite = serde_yaml_ng::from_str(&text).map_err(|e| SuiteError::Parse {
            path: path.to_owned(),
            line: e.location().map(|loc| loc.line()),
            message: e.to_string(),
        })?;
        let dir = path.parent().map(Path::to_owned).unwrap_or_default();
        for case in &mut suite.cases {
            case.dir.clone_from(&dir);
        }
        Ok(suite)
    }
}

impl Case {
    /// Runs the case against `policy`.
    pub fn run(&self, policy: &PolicySnapshot) -> CaseOutcome {
        let others = [
            self.send.is_some(),
            self.publish.is_some(),
            self.join.is_some(),
            self.state.is_some(),
        ];
        if let Some(upload) = &self.upload {
            if others.contains(&true) || self.read.is_some() {
                return Err(vec![ONE_REQUEST.to_owned()]);
            }
            return self.run_upload(policy, upload);
        }
        if let Some(read) = &self.read {
            if others.contains(&true) {
                return Err(vec![ONE_REQUEST.to_owned()]);
            }
            return self.run_read(policy, read);
        }
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
        let decided = match (&self.send, &self.publish, &self.join, &self.state) {
            (Some(send), None, None, None) => send
                .to_request()
                .map(|r| r.map(|r| decide_send(policy, &r))),
            (None, Some(publish), None, None) => publish
                .to_request()
                .map(|r| r.map(|r| decide_publish(policy, &r))),
            (None, None, Some(join), None) => join
                .to_request()
                .map(|r| r.map(|r| decide_join(policy, &r, join.public_joins_1h))),
            (None, None, None, Some(state)) => state
                .to_request()
                .map(|r| r.map(|r| decide_state_change(policy, &r))),
            _ => return Err(ONE_REQUEST.to_owned()),
        };
        decided.map_err(|e| e.to_string())
    }

    /// Classifies and decides the case's read, and compares the decision and the kind.
    fn run_read(&self, policy: &PolicySnapshot, read: &ReadCase) -> CaseOutcome {
        let (request, counts) = match read.to_request().map_err(|e| vec![e.to_string()])? {
            Ok(request) => request,
            Err(invalid) => {
                return match &self.expect.invalid {
                    Some(field) if *field == invalid.field => Ok(()),
                    _ => Err(vec![format!(
                        "the request was refused as invalid: {invalid}"
                    )]),
                };
            }
        };
        let decision = decide_read(policy, &request, &counts);
        let mut diffs = self.expect.compare(&decision).err().unwrap_or_default();
        if let Some(kind) = &self.expect.kind {
            let actual = request.target.kind.as_str();
            if kind != actual {
                diffs.push(format!("kind: expected {kind}, got {actual}"));
            }
        }
        if diffs.is_empty() { Ok(()) } else { Err(diffs) }
    }

    /// Reads the case's file as the service would (default `[media]` limits), decides, and compares the decision
    /// and what was read.
    fn run_upload(&self, policy: &PolicySnapshot, upload: &UploadCase) -> CaseOutcome {
        let bytes = match (&upload.file, &upload.content) {
            (Some(file), None) => {
                let path = self.dir.join(file);
                std::fs::read(&path)
                    .map_err(|e| vec![format!("upload.file `{}`: {e}", path.display())])?
            }
            (None, Some(content)) => content.as_bytes().to_vec(),
            (None, None) => Vec::new(),
            (Some(_), Some(_)) => {
                return Err(vec![
                    "upload: give `file` or `content`, not both".to_owned(),
                ]);
            }
        };
        let request = match upload.to_request(bytes.len() as u64) {
            Ok(request) => request,
            Err(invalid) => {
                return match &self.expect.invalid {
                    Some(field) if *field == invalid.field => Ok(()),
                    _ => Err(vec![format!(
                        "the request was refused as invalid: {invalid}"
                    )]),
                };
            }
        };
        let (extraction, received) = scan_with_defaults(&bytes);
        let decision = decide_upload(policy, &request, &extraction, received);
        let mut diffs = self.expect.compare(&decision).err().unwrap_or_default();
        diffs.extend(self.expect.compare_scan(&extraction));
        if diffs.is_empty() { Ok(()) } else { Err(diffs) }
    }
}

/// Reads a file with the default `[media]` limits (and a generous time budget), as the service would read it: the
/// first `media.max_bytes` bytes. Returns what was read and how many bytes.
pub fn scan_with_defaults(bytes: &[u8]) -> (Extraction, u64) {
    let config = MediaConfig::default();
    let max = usize::try_from(config.max_bytes).unwrap_or(usize::MAX);
    let kept = &bytes[..bytes.len().min(max)];
    let limits = Limits {
        max_text_chars: config.max_text_chars,
        max_uncompressed_bytes: config.max_uncompressed_bytes,
        max_nesting: config.max_nesting,
        deadline: std::time::Instant::now() + SUITE_SCAN_BUDGET,
        ocr: config.ocr_limits(),
    };
    (
        documents::extract(kept, kept.len() < bytes.len(), &limits),
        kept.len() as u64,
    )
}

const ONE_REQUEST: &str =
    "a case has exactly one of `send`, `publish`, `join`, `state`, `upload` or `read`";

impl Expect {
    /// Every difference between this expectation and `decision`.
    pub fn compare(&self, decision: &Decision) -> CaseOutcome {
        let mut diffs = Vec::new();
        if let Some(field) = &self.invalid {
            diffs.push(format!(
                "expected the request to be refused as invalid ({field}), but it was decided"
            ));
        }
        if let Some(effect) = &self.effect
            && effect != decision.effect.as_str()
        {
            diffs.push(format!(
                "effect: expected {effect}, got {}",
                decision.effect.as_str()
            ));
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
        if let Some(label) = &self.classification
            && *label != decision.classification
        {
            diffs.push(format!(
                "classification: expected {label}, got {}",
                decision.classification
            ));
        }
        if diffs.is_empty() { Ok(()) } else { Err(diffs) }
    }

    /// Every difference between the expectation and what an upload's scan read.
    fn compare_scan(&self, extraction: &Extraction) -> Vec<String> {
        let mut diffs = Vec::new();
        if let Some(format) = &self.format
            && format != extraction.format.as_str()
        {
            diffs.push(format!(
                "format: expected {format}, got {}",
                extraction.format.as_str()
            ));
        }
        if let Some(complete) = self.complete
            && complete != extraction.incomplete.is_none()
        {
            diffs.push(format!(
                "complete: expected {complete}, got {} ({})",
                extraction.incomplete.is_none(),
                extraction.incomplete.map_or("", Incomplete::as_str)
            ));
        }
        if let Some(reason) = &self.incomplete_reason {
            let actual = extraction.incomplete.map_or("", Incomplete::as_str);
            if reason != actual {
                diffs.push(format!(
                    "incomplete_reason: expected {reason}, got {actual}"
                ));
            }
        }
        diffs
    }
}
