//! `roomguard audit`: what is already exposed on a live homeserver, decided by the same policy, classifier and
//! document scanner as the service, so that a finding is exactly what the service would refuse today; and, only
//! when asked, its clean-up.
//!
//! The run: check the admin token, list the rooms and select them (`--rooms`), read `--concurrency` rooms at once
//! ([`room_audit`]), act on each room's findings ([`remediate`], journalled), report each room as it finishes
//! ([`report`]), then the totals and the HTML page. Ctrl-C (or SIGTERM) stops the rooms at their next page or file;
//! an action under way finishes and is journalled; what was read is reported, marked incomplete.
//!
//! Operators' guide: `docs/audit.md`.

pub mod finding;
pub mod journal;
pub mod progress;
pub mod remediate;
pub mod report;
pub mod room_audit;
pub mod scan;
pub mod synapse_admin;

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    io::Write,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering::Relaxed},
    },
};

use clap::Args;

use crate::{
    ops::{config::Config, media_limits::MediaConfig},
    policy::PolicySnapshot,
};

use self::{
    finding::{Finding, RoomSummary, Totals},
    journal::{Entry, Journal, Resumed},
    progress::{Counts, Progress, ProgressMode},
    remediate::{Action, Remediator},
    report::{Format, Reporter},
    room_audit::{Auditor, listed_exposure},
    synapse_admin::{AdminError, RoomListEntry, SynapseAdmin},
};

/// The redaction reason when none is given.
pub const DEFAULT_REDACTION_REASON: &str =
    "Removed by the security audit: restricted content in a room that does not protect it";

/// `roomguard audit`'s arguments.
#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// The homeserver's base URL (`https://matrix.example.org`, or `http://127.0.0.1:8008` on its host).
    #[arg(long, value_name = "URL")]
    pub homeserver: String,
    /// A file holding a server admin's access token (never printed or logged).
    #[arg(long, value_name = "FILE")]
    pub admin_token_file: PathBuf,
    /// Policy directory.
    #[arg(long, env = "ROOMGUARD_POLICIES", default_value = "./policies")]
    pub policies: PathBuf,
    /// Which rooms: `exposed` (public join rule, in the directory, world-readable history, or not encrypted),
    /// `all`, or room ids separated by commas.
    #[arg(
        long,
        default_value = "exposed",
        value_name = "exposed|all|ROOM_ID,..."
    )]
    pub rooms: String,
    /// Read history back to this date only (`2024-01-31` or RFC 3339); files uploaded before it are not read.
    #[arg(long, value_name = "DATE", value_parser = parse_since)]
    pub since: Option<u64>,
    /// Report format, on stdout or `--out`.
    #[arg(long, value_enum, default_value_t = Format::Ndjson)]
    pub format: Format,
    /// Write the report to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Also write a one-page HTML report (no text, no external asset) to this file.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// What to do about findings: `quarantine-media`, `redact-events` (comma-separated). A dry run unless `--apply`.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "ACTIONS")]
    pub remediate: Vec<Action>,
    /// Take the `--remediate` actions (needs `--journal`).
    #[arg(long, requires = "journal", requires = "remediate")]
    pub apply: bool,
    /// Append-only journal of every action and finished room (NDJSON).
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// Continue the run recorded in `--journal`: finished rooms are not read again, done actions not repeated.
    #[arg(long, requires = "journal")]
    pub resume: bool,
    /// The reason given with each redaction.
    #[arg(long, default_value = DEFAULT_REDACTION_REASON, value_name = "TEXT")]
    pub redaction_reason: String,
    /// Rooms read at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Progress on stderr: `auto` (a bar on a terminal, lines otherwise), `bar`, `lines`, `none`.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
    /// roomguard's settings file: its `[media]` limits are the scan's (as in the service).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// How an audit ended (mapped to exit codes by the command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every selected room read; nothing left to clean up.
    Clean,
    /// Every selected room read; findings remain (a dry run, or actions that failed or are not possible).
    Findings,
    /// A bad argument or file.
    Usage,
    /// The policy does not load.
    Policy,
    /// The homeserver cannot be reached, or keeps failing.
    Unavailable,
    /// The token is refused, or is not a server admin's.
    NoPermission,
    /// Stopped by Ctrl-C or SIGTERM.
    Interrupted,
}

/// Parses `--since`: a date (midnight UTC) or an RFC 3339 instant, as milliseconds since the epoch.
fn parse_since(text: &str) -> Result<u64, String> {
    let instant = if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        date.and_hms_opt(0, 0, 0).map(|t| t.and_utc())
    } else {
        chrono::DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc))
    };
    instant
        .and_then(|t| u64::try_from(t.timestamp_millis()).ok())
        .ok_or_else(|| {
            format!(
                "`{text}` is not a date (2024-01-31) or an RFC 3339 instant (2024-01-31T12:00:00Z)"
            )
        })
}

/// Runs an audit.
pub async fn run(args: AuditArgs) -> Outcome {
    match Run::prepare(&args).await {
        Ok(run) => run.execute(&args).await,
        Err(outcome) => outcome,
    }
}

/// An audit ready to read rooms.
struct Run {
    auditor: Arc<Auditor>,
    remediator: Arc<Remediator>,
    journal: Option<Arc<Journal>>,
    resumed: Arc<Resumed>,
    admin: SynapseAdmin,
    policy_version: String,
}

impl Run {
    /// Reads the token, the policy, the settings and the journal, and checks the token against the homeserver.
    async fn prepare(args: &AuditArgs) -> Result<Run, Outcome> {
        let token = read_token(&args.admin_token_file).map_err(|message| {
            eprintln!("error: --admin-token-file: {message}");
            Outcome::Usage
        })?;
        if !(args.homeserver.starts_with("http://") || args.homeserver.starts_with("https://")) {
            eprintln!(
                "error: --homeserver: `{}` is not an http:// or https:// URL",
                args.homeserver
            );
            return Err(Outcome::Usage);
        }
        let media = media_config(args.config.as_deref()).map_err(|message| {
            eprintln!("error: --config: {message}");
            Outcome::Usage
        })?;
        let policy: Arc<PolicySnapshot> =
            match crate::policy::loader::load_blocking(&args.policies, None) {
                Ok(policy) => Arc::new(policy),
                Err(err) => {
                    eprintln!(
                        "error: cannot load the policy in {}: {err}",
                        args.policies.display()
                    );
                    return Err(Outcome::Policy);
                }
            };
        let resumed = match (&args.journal, args.resume) {
            (Some(path), true) => journal::load(path).map_err(|err| {
                eprintln!("error: --resume: {err}");
                Outcome::Usage
            })?,
            _ => Resumed::default(),
        };
        let journal = match &args.journal {
            Some(path) => Some(Arc::new(Journal::open(path).map_err(|err| {
                eprintln!("error: --journal: {err}");
                Outcome::Usage
            })?)),
            None => None,
        };

        // A few quick tries first: a wrong URL or a stopped homeserver is said within seconds, not minutes.
        let admin = SynapseAdmin::new(&args.homeserver, &token, 6).map_err(|err| {
            eprintln!("error: {err}");
            Outcome::Unavailable
        })?;
        let admin_user = admin
            .with_attempts(2)
            .whoami()
            .await
            .map_err(|err| fail(&args.homeserver, &err))?;
        // An admin endpoint, to know now (not after an hour of reading) whether the token's account is an admin.
        admin
            .with_attempts(2)
            .rooms(0)
            .await
            .map_err(|err| fail(&args.homeserver, &err))?;
        let server_name = admin_user
            .split_once(':')
            .map(|(_, server)| server.to_owned())
            .unwrap_or_default();
        if let Some((homeserver, version)) = &resumed.last_run
            && (homeserver.trim_end_matches('/') != args.homeserver.trim_end_matches('/')
                || *version != policy.version)
        {
            eprintln!(
                "error: --resume: the journal's run was of {homeserver} with policy {version}, this one is of {} with \
                 policy {}: its findings would not be this policy's; start a new journal",
                args.homeserver, policy.version
            );
            return Err(Outcome::Usage);
        }
        let resumed = Arc::new(resumed);
        let cancel = Arc::new(AtomicBool::new(false));
        let auditor = Arc::new(Auditor {
            admin: admin.clone(),
            policy: policy.clone(),
            scanner: scan::Scanner::new(media),
            since_ms: args.since,
            counts: Arc::new(Counts::default()),
            cancel: cancel.clone(),
            server_name: server_name.clone(),
            admins: Mutex::new(HashMap::new()),
        });
        let remediator = Arc::new(Remediator {
            admin: admin.clone(),
            actions: args.remediate.iter().copied().collect::<HashSet<_>>(),
            apply: args.apply,
            reason: args.redaction_reason.clone(),
            journal: journal.clone(),
            resumed: resumed.clone(),
            admin_user,
            server_name,
            cancel,
            token_refused: Arc::new(AtomicBool::new(false)),
        });
        Ok(Run {
            auditor,
            remediator,
            journal,
            resumed,
            admin,
            policy_version: policy.version.clone(),
        })
    }

    async fn execute(self, args: &AuditArgs) -> Outcome {
        let started_at = journal::now();
        let out: Box<dyn Write + Send> = match &args.out {
            Some(path) => match std::fs::File::create(path) {
                Ok(file) => Box::new(std::io::BufWriter::new(file)),
                Err(err) => {
                    eprintln!("error: --out: cannot write `{}`: {err}", path.display());
                    return Outcome::Usage;
                }
            },
            None => Box::new(std::io::stdout()),
        };
        if let Some(journal) = &self.journal
            && let Err(err) = journal.write(&Entry::Run {
                at: started_at.clone(),
                homeserver: args.homeserver.clone(),
                policy_version: self.policy_version.clone(),
                apply: args.apply,
                resumed: args.resume,
            })
        {
            eprintln!("error: {err}");
            return Outcome::Usage;
        }
        let (listed, selected) = match self.select(&args.rooms).await {
            Ok(rooms) => rooms,
            Err(outcome) => return outcome,
        };
        let counts = self.auditor.counts.clone();
        counts.rooms_total.store(selected.len() as u64, Relaxed);
        let progress = Progress::start(args.progress, counts.clone());
        let stop = watch_signals(self.auditor.cancel.clone());

        let mut reporter = Reporter::new(args.format, out, args.html.is_some());
        let mut failure: Option<Outcome> = None;
        let mut complete = true;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<RoomDone>(args.concurrency.into());
        let slots = Arc::new(tokio::sync::Semaphore::new(args.concurrency.into()));
        let feeder = {
            let auditor = self.auditor.clone();
            let remediator = self.remediator.clone();
            let journal = self.journal.clone();
            let resumed = self.resumed.clone();
            tokio::spawn(async move {
                let mut tasks = tokio::task::JoinSet::new();
                for entry in selected {
                    let Ok(permit) = slots.clone().acquire_owned().await else {
                        break;
                    };
                    if auditor.cancel.load(Relaxed) {
                        break;
                    }
                    let auditor = auditor.clone();
                    let remediator = remediator.clone();
                    let journal = journal.clone();
                    let resumed = resumed.clone();
                    let tx = tx.clone();
                    tasks.spawn(async move {
                        let done =
                            one_room(&auditor, &remediator, journal.as_deref(), &resumed, &entry)
                                .await;
                        auditor.counts.rooms_done.fetch_add(1, Relaxed);
                        drop(permit);
                        let _ = tx.send(done).await;
                    });
                    while tasks.try_join_next().is_some() {}
                }
                while tasks.join_next().await.is_some() {}
            })
        };
        while let Some(done) = rx.recv().await {
            match done {
                RoomDone::Finished {
                    summary,
                    findings,
                    interrupted,
                } => {
                    complete &= !interrupted;
                    if let Err(err) = reporter.room(*summary, findings) {
                        eprintln!("error: cannot write the report: {err}");
                        self.auditor.cancel.store(true, Relaxed);
                        failure.get_or_insert(Outcome::Usage);
                    }
                }
                RoomDone::Failed { room_id, error } => {
                    complete = false;
                    eprintln!("error: room {room_id}: {error}");
                    if error.is_permission() {
                        self.auditor.cancel.store(true, Relaxed);
                        failure.get_or_insert(Outcome::NoPermission);
                    } else if matches!(error, AdminError::Unreachable(_)) {
                        failure.get_or_insert(Outcome::Unavailable);
                    } else {
                        failure.get_or_insert(Outcome::Findings);
                    }
                }
                RoomDone::JournalFailed(message) => {
                    complete = false;
                    eprintln!(
                        "error: {message}: stopping, no action is taken that cannot be recorded"
                    );
                    self.auditor.cancel.store(true, Relaxed);
                    failure.get_or_insert(Outcome::Usage);
                }
            }
        }
        let _ = feeder.await;
        progress.finish();
        if self.remediator.token_refused.load(Relaxed) {
            eprintln!("error: the homeserver refused the admin token during remediation: stopped");
            failure.get_or_insert(Outcome::NoPermission);
        }
        let interrupted = self.auditor.cancel.load(Relaxed) && failure.is_none();
        complete &= !self.auditor.cancel.load(Relaxed);

        let totals = totals(
            args,
            &self.policy_version,
            started_at,
            listed,
            reporter.rooms(),
            reporter.remediations().clone(),
            complete,
        );
        let remaining = reporter.remaining();
        let report = match reporter.finish(totals) {
            Ok(report) => report,
            Err(err) => {
                eprintln!("error: cannot write the report: {err}");
                return Outcome::Usage;
            }
        };
        if let Some(path) = &args.html
            && let Err(err) = std::fs::write(path, report::html::render(&report))
        {
            eprintln!("error: --html: cannot write `{}`: {err}", path.display());
            return Outcome::Usage;
        }
        // The signal watcher stayed up while the reports were written (a Ctrl-C then still quits, the second one
        // at once); it goes now.
        stop.abort();
        if let Some(journal) = &self.journal {
            let _ = journal.write(&Entry::End {
                at: journal::now(),
                complete,
            });
        }
        if interrupted {
            eprintln!(
                "audit: interrupted; what was read is reported; run again with --resume to go on"
            );
            return Outcome::Interrupted;
        }
        if let Some(failure) = failure {
            return failure;
        }
        if remaining > 0 || report.rooms.iter().any(|r| !r.errors.is_empty()) {
            // A file that could not be read is not "every selected room read".
            Outcome::Findings
        } else {
            Outcome::Clean
        }
    }

    /// Lists the rooms and selects those `--rooms` names. Returns how many the homeserver has, and the selection.
    async fn select(&self, rooms: &str) -> Result<(u64, Vec<RoomListEntry>), Outcome> {
        let wanted: Option<HashSet<&str>> = match rooms {
            "exposed" | "all" => None,
            list => Some(
                list.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect(),
            ),
        };
        if let Some(ids) = &wanted {
            for id in ids {
                if let Err(err) = crate::domain::room::check_room_id(id) {
                    eprintln!("error: --rooms: `{id}`: {err}");
                    return Err(Outcome::Usage);
                }
            }
        }
        let mut selected = Vec::new();
        // A room that moves in the list between two pages (created or renamed meanwhile) is read once.
        let mut seen = HashSet::new();
        let mut from = 0;
        let mut listed = 0;
        loop {
            let (page, next, total) = self
                .admin
                .rooms(from)
                .await
                .map_err(|err| fail(self.admin.base(), &err))?;
            listed = listed.max(total);
            for entry in page {
                let keep = match (&wanted, rooms) {
                    (Some(ids), _) => ids.contains(entry.room_id.as_str()),
                    (None, "all") => true,
                    (None, _) => listed_exposure(&entry),
                };
                if keep && seen.insert(entry.room_id.clone()) {
                    selected.push(entry);
                }
            }
            match next {
                Some(next) if next > from => from = next,
                _ => break,
            }
        }
        if let Some(ids) = &wanted {
            let found: HashSet<&str> = selected.iter().map(|e| e.room_id.as_str()).collect();
            let missing: Vec<&&str> = ids.iter().filter(|id| !found.contains(**id)).collect();
            if !missing.is_empty() {
                eprintln!(
                    "error: --rooms: the homeserver has no room {}",
                    missing
                        .iter()
                        .map(|s| format!("`{s}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                return Err(Outcome::Usage);
            }
        }
        Ok((listed, selected))
    }
}

/// What one room's task sends back.
enum RoomDone {
    Finished {
        summary: Box<RoomSummary>,
        findings: Vec<Finding>,
        interrupted: bool,
    },
    Failed {
        room_id: String,
        error: AdminError,
    },
    JournalFailed(String),
}

/// Reads one room (or takes it from the journal), acts on its findings, and journals it.
async fn one_room(
    auditor: &Arc<Auditor>,
    remediator: &Remediator,
    journal: Option<&Journal>,
    resumed: &Resumed,
    entry: &RoomListEntry,
) -> RoomDone {
    let (summary, mut findings, interrupted, from_journal) = match resumed.rooms.get(&entry.room_id)
    {
        Some((summary, findings)) => (summary.clone(), findings.clone(), false, true),
        None => match auditor.audit_room(entry).await {
            Ok(audit) => (audit.summary, audit.findings, audit.interrupted, false),
            Err(error) => {
                return RoomDone::Failed {
                    room_id: entry.room_id.clone(),
                    error,
                };
            }
        },
    };
    let mut summary = summary;
    if !from_journal {
        merge_earlier(
            &mut summary,
            &mut findings,
            resumed.findings.get(&entry.room_id),
            resumed,
        );
    }
    if remediator.apply
        && !findings.is_empty()
        && let Some(journal) = journal
        && let Err(err) = journal.write(&Entry::Findings {
            at: journal::now(),
            room_id: entry.room_id.clone(),
            findings: findings.clone(),
        })
    {
        return RoomDone::JournalFailed(err.to_string());
    }
    // A room from the journal had every action settled, unless that run was a dry run: act now if asked.
    if let Err(err) = remediator.remediate(&mut findings).await {
        return RoomDone::JournalFailed(err.to_string());
    }
    if let Some(journal) = journal
        && !interrupted
        && !from_journal
        && !auditor.cancel.load(Relaxed)
        && let Err(err) = journal.write(&Entry::Room {
            at: journal::now(),
            summary: Box::new(summary.clone()),
            findings: findings.clone(),
        })
    {
        return RoomDone::JournalFailed(err.to_string());
    }
    RoomDone::Finished {
        summary: Box::new(summary),
        findings,
        interrupted,
    }
}

/// Adds to a room read again the findings an earlier run of the journal acted on (a redacted event or a quarantined
/// file is not found again), so that the resumed run's report is the whole room's.
fn merge_earlier(
    summary: &mut RoomSummary,
    findings: &mut Vec<Finding>,
    earlier: Option<&Vec<Finding>>,
    resumed: &Resumed,
) {
    let Some(earlier) = earlier else { return };
    let key = |f: &Finding| match f.kind {
        finding::FindingKind::Media => ("quarantine", f.mxc.clone().unwrap_or_default()),
        finding::FindingKind::Event => ("redact", f.event_id.clone().unwrap_or_default()),
    };
    let mut seen: HashSet<(&str, String)> = findings.iter().map(key).collect();
    let mut added = false;
    for finding in earlier {
        let (action, target) = key(finding);
        if resumed.acted_on(action, &target) && seen.insert((action, target)) {
            findings.push(finding.clone());
            added = true;
        }
    }
    if added {
        room_audit::tally(summary, findings);
    }
}

fn totals(
    args: &AuditArgs,
    policy_version: &str,
    started_at: String,
    listed: u64,
    rooms: &[RoomSummary],
    remediations: BTreeMap<String, u64>,
    complete: bool,
) -> Totals {
    let mut by_classification = BTreeMap::new();
    for room in rooms {
        for (label, n) in &room.findings_by_classification {
            *by_classification.entry(label.clone()).or_default() += n;
        }
    }
    let mut other_denials = BTreeMap::new();
    for room in rooms {
        for (code, n) in &room.other_denials {
            *other_denials.entry(code.clone()).or_default() += n;
        }
    }
    Totals {
        homeserver: args.homeserver.clone(),
        policy_version: policy_version.to_owned(),
        roomguard_version: env!("CARGO_PKG_VERSION").to_owned(),
        since: args.since.and_then(room_audit::rfc3339),
        started_at,
        finished_at: journal::now(),
        rooms_listed: listed,
        rooms_audited: rooms.len() as u64,
        events_read: rooms.iter().map(|r| r.events_read).sum(),
        files_read: rooms.iter().map(|r| r.files_read).sum(),
        bytes_read: rooms.iter().map(|r| r.bytes_read).sum(),
        findings: rooms.iter().map(|r| r.findings).sum(),
        findings_by_classification: by_classification,
        other_denials,
        remediations,
        complete,
    }
}

/// The token, trimmed; an empty or unreadable file is an error naming it (never quoting it).
fn read_token(path: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(format!("`{}` is empty", path.display()));
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "`{}` holds more than one token (whitespace inside)",
            path.display()
        ));
    }
    Ok(token.to_owned())
}

/// The `[media]` settings: those of `--config`, else the defaults.
fn media_config(path: Option<&std::path::Path>) -> Result<MediaConfig, String> {
    let Some(path) = path else {
        return Ok(MediaConfig::default());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let config = Config::from_toml(&text).map_err(|e| format!("`{}`: {e}", path.display()))?;
    config
        .media
        .validate()
        .map_err(|e| format!("`{}`: {e}", path.display()))?;
    Ok(config.media)
}

/// Says why the homeserver could not be used, and how that ends the run.
fn fail(homeserver: &str, err: &AdminError) -> Outcome {
    eprintln!("error: {homeserver}: {err}");
    match err {
        AdminError::BadToken(_) | AdminError::NotAdmin(_) => Outcome::NoPermission,
        AdminError::Unreachable(_) => Outcome::Unavailable,
        AdminError::NotFound => {
            eprintln!(
                "hint: is this a Synapse homeserver, with its admin API reachable at this URL?"
            );
            Outcome::Unavailable
        }
        AdminError::Answer(_) => Outcome::Unavailable,
    }
}

/// Sets `cancel` on Ctrl-C or SIGTERM; a second Ctrl-C exits at once.
fn watch_signals(cancel: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let terminated = async {
            match term.as_mut() {
                Some(term) => {
                    term.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = terminated => {}
        }
        eprintln!(
            "audit: stopping: the rooms under way stop at their next page or file (Ctrl-C again to quit now)"
        );
        cancel.store(true, Relaxed);
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(130);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--since` takes a day (midnight UTC) or an instant, and names what it cannot read.
    #[test]
    fn since_takes_a_date_or_an_instant() {
        assert_eq!(parse_since("2024-01-31"), Ok(1_706_659_200_000));
        assert_eq!(
            parse_since("2024-01-31T01:00:00+01:00"),
            Ok(1_706_659_200_000)
        );
        let err = parse_since("31/01/2024").unwrap_err();
        assert!(err.contains("31/01/2024"), "{err}");
    }

    /// A token file holds one token: trimmed, never quoted back in an error.
    #[test]
    fn the_token_file_holds_one_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "syt_secret\n").unwrap();
        assert_eq!(read_token(&path).unwrap(), "syt_secret");
        std::fs::write(&path, "syt_secret other").unwrap();
        let err = read_token(&path).unwrap_err();
        assert!(!err.contains("syt_secret"), "{err}");
        std::fs::write(&path, "\n").unwrap();
        assert!(read_token(&path).unwrap_err().contains("empty"));
    }
}
