//! The audit's journal: an append-only NDJSON file of what a run did, so that an interrupted run resumes without
//! acting twice, and an operator can show what was done.
//!
//! Every action is written twice: an `intent` before the call and its outcome (`done`) after, each line flushed to
//! the disk (`fsync`) before the run goes on. A run killed between the two leaves an intent without an outcome: on
//! resume that action is checked against the homeserver (is the event already redacted, the file already
//! quarantined?) before anything is done. A room's line (`room`: its summary and findings) is written once all its
//! actions have an outcome, so a resumed run does not read that room again. A last line torn by a kill is ignored.

use std::{
    collections::{HashMap, HashSet},
    fs::{File, OpenOptions},
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    sync::Mutex,
};

use serde::{Deserialize, Serialize};

use super::finding::{Finding, RoomSummary};

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Entry {
    /// A run started (or resumed).
    Run {
        /// When (RFC 3339).
        at: String,
        /// The homeserver.
        homeserver: String,
        /// The policy version deciding.
        policy_version: String,
        /// Whether actions are taken (else a dry run).
        apply: bool,
        /// This run resumes the journal's earlier one.
        resumed: bool,
    },
    /// An action is about to be taken.
    Intent {
        /// When.
        at: String,
        /// `redact` or `quarantine`.
        action: String,
        /// The event id or mxc URI.
        target: String,
        /// Its room.
        room_id: String,
    },
    /// An action's outcome.
    Done {
        /// When.
        at: String,
        /// `redact` or `quarantine`.
        action: String,
        /// The event id or mxc URI.
        target: String,
        /// Its room.
        room_id: String,
        /// `done`, `already`, `failed` or `not_possible`.
        status: String,
        /// Why it failed or was not possible.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// A room's findings, written before any action on them: a run killed while acting still has them, so that
    /// its resumption reports the findings it acted on (a redacted event is not found again).
    Findings {
        /// When.
        at: String,
        /// The room.
        room_id: String,
        /// Its findings.
        findings: Vec<Finding>,
    },
    /// A room was read to its end and every action on it has an outcome.
    Room {
        /// When.
        at: String,
        /// Its summary.
        summary: Box<RoomSummary>,
        /// Its findings, with their remediation.
        findings: Vec<Finding>,
    },
    /// The run ended.
    End {
        /// When.
        at: String,
        /// Every selected room was read.
        complete: bool,
    },
}

/// What an earlier run of a journal did.
#[derive(Debug, Default)]
pub struct Resumed {
    /// Rooms finished, with their summary and findings.
    pub rooms: HashMap<String, (RoomSummary, Vec<Finding>)>,
    /// The last outcome of each action, by `(action, target)`.
    pub outcomes: HashMap<(String, String), String>,
    /// Actions begun whose outcome was never written.
    pub unfinished: HashSet<(String, String)>,
    /// Findings of rooms an earlier run began acting on, by room.
    pub findings: HashMap<String, Vec<Finding>>,
    /// The homeserver and policy version of the journal's last run (a run resumed must be of the same).
    pub last_run: Option<(String, String)>,
}

impl Resumed {
    /// The outcome an earlier run wrote for this action, if it is final (`done` or `already`: never repeated).
    pub fn settled(&self, action: &str, target: &str) -> bool {
        self.outcome_is_final(action, target)
    }

    /// Whether an earlier run began this action or settled it (its finding belongs in the resumed report, even
    /// though the event or file is no longer found).
    pub fn acted_on(&self, action: &str, target: &str) -> bool {
        self.outcome_is_final(action, target)
            || self
                .unfinished
                .contains(&(action.to_owned(), target.to_owned()))
    }

    fn outcome_is_final(&self, action: &str, target: &str) -> bool {
        self.outcomes
            .get(&(action.to_owned(), target.to_owned()))
            .is_some_and(|status| status == "done" || status == "already")
    }
}

/// Why a journal cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("journal `{path}`{line}: {message}")]
pub struct JournalError {
    path: PathBuf,
    line: String,
    message: String,
}

/// A journal open for appending.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: Mutex<File>,
}

impl Journal {
    /// Opens `path` for appending (creating it).
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| error(path, 0, format!("cannot open it for appending: {e}")))?;
        Ok(Journal {
            path: path.to_owned(),
            file: Mutex::new(file),
        })
    }

    /// Appends one line and waits until it is on the disk.
    pub fn write(&self, entry: &Entry) -> Result<(), JournalError> {
        let mut line =
            serde_json::to_vec(entry).map_err(|e| error(&self.path, 0, e.to_string()))?;
        line.push(b'\n');
        let file = self
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (&*file)
            .write_all(&line)
            .and_then(|()| file.sync_data())
            .map_err(|e| error(&self.path, 0, format!("cannot write: {e}")))
    }
}

/// Reads what an earlier run wrote. A missing file is an empty journal; a line that does not parse is an error
/// naming it, except a last line without its newline (torn by a kill), which is ignored.
pub fn load(path: &Path) -> Result<Resumed, JournalError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Resumed::default()),
        Err(e) => return Err(error(path, 0, format!("cannot read it: {e}"))),
    };
    let mut resumed = Resumed::default();
    let mut reader = BufReader::new(file);
    let mut line = String::new();
    let mut number = 0;
    loop {
        line.clear();
        let read = reader
            .read_line(&mut line)
            .map_err(|e| error(path, number + 1, format!("cannot read it: {e}")))?;
        if read == 0 {
            break;
        }
        number += 1;
        if !line.ends_with('\n') {
            tracing::warn!(
                line = number,
                "the journal's last line is torn (the run was killed while writing it); ignored"
            );
            break;
        }
        if line.trim().is_empty() {
            continue;
        }
        let entry: Entry = serde_json::from_str(&line)
            .map_err(|e| error(path, number, format!("not a journal line: {e}")))?;
        match entry {
            Entry::Intent { action, target, .. } => {
                resumed.unfinished.insert((action, target));
            }
            Entry::Done {
                action,
                target,
                status,
                ..
            } => {
                let key = (action, target);
                resumed.unfinished.remove(&key);
                resumed.outcomes.insert(key, status);
            }
            Entry::Room {
                summary, findings, ..
            } => {
                resumed
                    .rooms
                    .insert(summary.room_id.clone(), (*summary, findings));
            }
            Entry::Findings {
                room_id, findings, ..
            } => {
                resumed
                    .findings
                    .entry(room_id)
                    .or_default()
                    .extend(findings);
            }
            Entry::Run {
                homeserver,
                policy_version,
                ..
            } => resumed.last_run = Some((homeserver, policy_version)),
            Entry::End { .. } => {}
        }
    }
    Ok(resumed)
}

fn error(path: &Path, line: usize, message: String) -> JournalError {
    JournalError {
        path: path.to_owned(),
        line: if line == 0 {
            String::new()
        } else {
            format!(":{line}")
        },
        message,
    }
}

/// Now, RFC 3339 in UTC to the millisecond.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intent(target: &str) -> Entry {
        Entry::Intent {
            at: now(),
            action: "redact".into(),
            target: target.into(),
            room_id: "!r:example.org".into(),
        }
    }

    fn done(target: &str, status: &str) -> Entry {
        Entry::Done {
            at: now(),
            action: "redact".into(),
            target: target.into(),
            room_id: "!r:example.org".into(),
            status: status.into(),
            detail: None,
        }
    }

    /// What was done is settled; what was begun and never finished is known, to be checked before acting.
    #[test]
    fn a_reloaded_journal_knows_what_was_done_and_what_was_begun() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.ndjson");
        let journal = Journal::open(&path).unwrap();
        for entry in [
            intent("$a"),
            done("$a", "done"),
            intent("$b"),
            intent("$c"),
            done("$c", "failed"),
        ] {
            journal.write(&entry).unwrap();
        }
        let resumed = load(&path).unwrap();
        assert!(resumed.settled("redact", "$a"));
        assert!(!resumed.settled("redact", "$b"));
        assert!(!resumed.settled("redact", "$c"), "a failure is tried again");
        assert!(resumed.unfinished.contains(&("redact".into(), "$b".into())));
        assert!(!resumed.settled("quarantine", "$a"));
    }

    /// A kill in the middle of a line leaves it torn: the lines before it count, the torn one does not.
    #[test]
    fn a_torn_last_line_is_ignored_and_a_corrupt_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.ndjson");
        let journal = Journal::open(&path).unwrap();
        journal.write(&done("$a", "done")).unwrap();
        drop(journal);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(br#"{"type":"done","at":"x","act"#)
            .unwrap();
        assert!(load(&path).unwrap().settled("redact", "$a"));

        let first = serde_json::to_string(&done("$a", "done")).unwrap();
        std::fs::write(&path, format!("{first}\nnot json\n")).unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("journal.ndjson`:2:"), "{err}");
    }

    /// No journal yet: nothing was done.
    #[test]
    fn a_missing_journal_is_empty() {
        let resumed = load(Path::new("/nonexistent/roomguard-journal")).unwrap();
        assert!(resumed.rooms.is_empty() && resumed.outcomes.is_empty());
    }
}
