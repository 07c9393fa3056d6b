//! The command line: `roomguard serve` and `roomguard health` for operators, and the policy author's tools
//! `validate`, `check` and `test`, and the security officer's `audit`.

use std::{
    io::Read as _,
    path::{Path, PathBuf},
    process::ExitCode,
};

use clap::{Parser, Subcommand};

use crate::{
    audit::{AuditArgs, Outcome},
    author::{check_report, suite::scan_with_defaults, suite_report},
    domain::{
        media::{Media, UploadRequest},
        read::{ReadCounts, Tally},
    },
    grpc::{
        health_client::{self, HealthArgs},
        json::{JsonRequest, Question},
    },
    ops::config::settings::ServeArgs,
    policy::{
        PolicySnapshot,
        decide::{
            explain_join, explain_publish, explain_read, explain_send, explain_state_change,
            explain_upload,
        },
    },
};

mod exit;
mod serve;

pub use exit::Exit;

/// roomguard: a policy decision point for Matrix homeservers.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the gRPC policy service. Settings: --set > flag > ROOMGUARD_* variable > --config file > default.
    Serve(Box<ServeArgs>),
    /// Check a policy directory and report every problem with file and line.
    Validate {
        /// Policy directory.
        #[arg(env = "ROOMGUARD_POLICIES", default_value = "./policies")]
        dir: PathBuf,
    },
    /// Ask a running server's gRPC health service; exit 0 only when it is SERVING.
    Health(HealthArgs),
    /// Decide one request given as proto3 JSON (a file, or `-` for stdin) with no server, and explain the decision.
    Check {
        /// The request: a `CheckMessageSendRequest`, `CheckRoomPublishRequest`, `CheckRoomJoinRequest`,
        /// `CheckRoomStateChangeRequest` or `CheckReadRequest` (with `reader`, and the room's attributes as `room`)
        /// in proto3 JSON.
        #[arg(default_value = "-")]
        request: PathBuf,
        /// Policy directory.
        #[arg(long, env = "ROOMGUARD_POLICIES", default_value = "./policies")]
        policies: PathBuf,
        /// `send`, `publish`, `join`, `state` or `read` (default: told from the request's fields).
        #[arg(long)]
        rpc: Option<String>,
        /// For a join: the user's allowed public joins without an invite in the last hour, as a server's counter
        /// would give them (`r.sub.public_joins_1h`).
        #[arg(long, default_value_t = 0)]
        public_joins_1h: u32,
        /// For a read: one of the account's counts in the last hour, as a server's counter would give them, e.g.
        /// `--read-count history_rooms_1h=40` (history_rooms_1h, history_requests_1h, initial_syncs_1h, searches_1h,
        /// media_downloads_1h, thumbnails_1h); repeat it for several.
        #[arg(long, value_name = "NAME=N", value_parser = parse_read_count)]
        read_count: Vec<(String, u32)>,
        /// For a read: the path's room is among the rooms whose history the account read in the last hour.
        #[arg(long)]
        room_already_read: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Read this file as an upload (`CheckMediaUpload`) instead of deciding a JSON request: print its format,
        /// what could be read of it, the marking found and the decision, with the default `[media]` limits.
        #[arg(long, value_name = "PATH")]
        media: Option<PathBuf>,
        /// With --media: the file name the client gave (Synapse's media hook gives none, so by default none).
        #[arg(long, requires = "media")]
        filename: Option<String>,
        /// With --media: the declared MIME type (`r.media.mimetype`).
        #[arg(long, requires = "media")]
        mimetype: Option<String>,
    },
    /// Audit a live Synapse homeserver through its admin API: every event and file of the selected rooms decided as
    /// the policy would today; findings (never their text) as NDJSON, JSON, a table and an HTML page; quarantine and
    /// redaction only with `--remediate ... --apply`. Exit 0: nothing left to clean up; 1: findings remain.
    Audit(Box<AuditArgs>),
    /// Run the policy test suites (`DIR/tests/*.yaml`) against the policy in DIR; exit 1 on any failure.
    Test {
        /// Policy directory.
        #[arg(env = "ROOMGUARD_POLICIES", default_value = "./policies")]
        dir: PathBuf,
        /// Report format.
        #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
        format: ReportFormat,
    },
}

/// How `roomguard test` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ReportFormat {
    /// PASS/FAIL per case with diffs, then `N passed, M failed`.
    Text,
    /// One JSON document.
    Json,
    /// JUnit XML, for CI systems.
    Junit,
}

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    // Before anything reads a picture (`serve`, `test`, `check`): libgomp reads the limit when Tesseract loads it.
    // SAFETY: the process has one thread yet: nothing else reads or writes the environment.
    #[expect(
        unsafe_code,
        reason = "setting an environment variable, before any thread starts"
    )]
    unsafe {
        crate::documents::limit_openmp_threads();
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => {
            // --help, --version
            let _ = err.print();
            return Exit::Success.into();
        }
        Err(err) => {
            // An unusable flag or ROOMGUARD_* variable is a config error: clap's message names it.
            let _ = err.print();
            return Exit::Usage.into();
        }
    };
    init_tracing();
    match cli.command {
        Command::Serve(overrides) => serve::serve(&overrides),
        Command::Validate { dir } => validate(&dir),
        Command::Check {
            media: Some(media),
            policies,
            json,
            filename,
            mimetype,
            ..
        } => check_media(&media, &policies, json, filename, mimetype),
        Command::Check {
            request,
            policies,
            rpc,
            json,
            public_joins_1h,
            read_count,
            room_already_read,
            media: None,
            ..
        } => {
            let counts = read_counts(&read_count, room_already_read);
            check(
                &request,
                &policies,
                rpc.as_deref(),
                json,
                Counts {
                    public_joins_1h,
                    reads: counts,
                },
            )
        }
        Command::Test { dir, format } => test(&dir, format),
        Command::Health(args) => health(&args),
        Command::Audit(args) => audit(*args),
    }
}

/// `roomguard audit`: on a runtime of its own, its outcome as an exit code.
fn audit(args: AuditArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            return Exit::Failed.into();
        }
    };
    let outcome = runtime.block_on(crate::audit::run(args));
    // Scans still reading a file past a Ctrl-C are not waited for.
    runtime.shutdown_background();
    match outcome {
        Outcome::Clean => Exit::Success,
        Outcome::Findings => Exit::Failed,
        Outcome::Usage => Exit::Usage,
        Outcome::Policy => Exit::Policy,
        Outcome::Unavailable => Exit::Unavailable,
        Outcome::NoPermission => Exit::NoPermission,
        Outcome::Interrupted => Exit::Interrupted,
    }
    .into()
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: a log file or a container's log must not carry escape codes.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn load(dir: &std::path::Path) -> Result<PolicySnapshot, ExitCode> {
    // On the loader thread, where every reload of a serving process runs too (see `policy::loader`).
    crate::policy::loader::load_blocking(dir, None).map_err(|err| {
        eprintln!("error: cannot load the policy in {}: {err}", dir.display());
        Exit::Policy.into()
    })
}

fn validate(dir: &std::path::Path) -> ExitCode {
    // The test suites are not served, but an author who broke one wants to hear it here too.
    let tests = dir.join("tests");
    let suite_errors: Vec<String> = std::fs::read_dir(&tests)
        .map(|entries| {
            let mut paths: Vec<PathBuf> =
                entries.filter_map(Result::ok).map(|e| e.path()).collect();
            paths.sort();
            paths
                .iter()
                .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
                .filter_map(|p| {
                    crate::author::suite::Suite::from_file(p)
                        .err()
                        .map(|e| e.to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    for error in &suite_errors {
        eprintln!("error: {error}");
    }
    match load(dir) {
        Ok(_) if !suite_errors.is_empty() => Exit::Policy.into(),
        Ok(policy) => {
            println!(
                "{}: valid ({} rules, {} roles, {} per-user lines, policy_version {})",
                dir.display(),
                policy.rules.len(),
                policy.roles.role_names().len(),
                policy.roles.user_count(),
                policy.version
            );
            Exit::Success.into()
        }
        Err(code) => code,
    }
}

/// What `check` takes for a server's counters.
struct Counts {
    public_joins_1h: u32,
    reads: ReadCounts,
}

/// The read counts `check` can be given, by the names rules read them.
const READ_COUNTS: [&str; 6] = [
    "history_rooms_1h",
    "history_requests_1h",
    "initial_syncs_1h",
    "searches_1h",
    "media_downloads_1h",
    "thumbnails_1h",
];

fn parse_read_count(text: &str) -> Result<(String, u32), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}`: expected NAME=N"))?;
    if !READ_COUNTS.contains(&name) {
        return Err(format!(
            "`{name}` is not a read count: one of {}",
            READ_COUNTS.join(", ")
        ));
    }
    let value = value
        .parse()
        .map_err(|_| format!("`{value}` is not a count"))?;
    Ok((name.to_owned(), value))
}

fn read_counts(given: &[(String, u32)], room_already_read: bool) -> ReadCounts {
    let of = |name: &str| {
        Tally::of(
            given
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map_or(0, |(_, v)| *v),
        )
    };
    ReadCounts {
        history_rooms: of("history_rooms_1h"),
        room_already_read,
        history_requests: of("history_requests_1h"),
        initial_syncs: of("initial_syncs_1h"),
        searches: of("searches_1h"),
        media_downloads: of("media_downloads_1h"),
        thumbnails: of("thumbnails_1h"),
    }
}

fn check(request: &Path, dir: &Path, rpc: Option<&str>, json: bool, counts: Counts) -> ExitCode {
    let text = if request == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map(|_| text)
    } else {
        std::fs::read_to_string(request)
    };
    let text = match text {
        Ok(text) => text,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", request.display());
            return Exit::Usage.into();
        }
    };
    let parsed = match JsonRequest::parse(&text, rpc) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("error: {}: {e}", request.display());
            return Exit::Usage.into();
        }
    };
    let policy = match load(dir) {
        Ok(policy) => policy,
        Err(code) => return code,
    };
    let explained = parsed.into_question().map(|question| match question {
        Question::Send(r) => (explain_send(&policy, &r), None),
        Question::Publish(r) => (explain_publish(&policy, &r), None),
        Question::Join(r) => (explain_join(&policy, &r, counts.public_joins_1h), None),
        Question::State(r) => (explain_state_change(&policy, &r), None),
        Question::Read(r) => (explain_read(&policy, &r, &counts.reads), Some(r.target)),
    });
    match explained {
        Ok((e, Some(read))) if json => {
            println!("{}", check_report::render_json_read(&policy, &e, &read));
        }
        Ok((e, Some(read))) => print!("{}", check_report::render_text_read(&policy, &e, &read)),
        Ok((e, None)) if json => println!("{}", check_report::render_json(&policy, &e)),
        Ok((e, None)) => print!("{}", check_report::render_text(&policy, &e)),
        Err(invalid) => {
            eprintln!("error: INVALID_ARGUMENT: {invalid}");
            return Exit::Usage.into();
        }
    }
    Exit::Success.into()
}

fn check_media(
    path: &Path,
    dir: &Path,
    json: bool,
    filename: Option<String>,
    mimetype: Option<String>,
) -> ExitCode {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", path.display());
            return Exit::Usage.into();
        }
    };
    let policy = match load(dir) {
        Ok(policy) => policy,
        Err(code) => return code,
    };
    let request = UploadRequest {
        request_id: String::new(),
        uploader: None,
        media: Media {
            filename: filename.unwrap_or_default(),
            mimetype: mimetype.unwrap_or_default(),
            size: bytes.len() as u64,
            ..Media::default()
        },
    };
    let (extraction, received) = scan_with_defaults(&bytes);
    let explained = explain_upload(&policy, &request, &extraction, received);
    if json {
        println!(
            "{}",
            check_report::render_json_upload(&policy, &explained, &extraction, received)
        );
    } else {
        print!(
            "{}",
            check_report::render_text_upload(&policy, &explained, &extraction, received)
        );
    }
    Exit::Success.into()
}

fn test(dir: &Path, format: ReportFormat) -> ExitCode {
    let policy = match load(dir) {
        Ok(policy) => policy,
        Err(code) => return code,
    };
    let tests = dir.join("tests");
    if !tests.is_dir() {
        // A ConfigMap mount is flat: its suites stay in the source tree the ConfigMap was made from.
        eprintln!(
            "error: no policy suites: `{}` is not a directory (the suites live in `tests/` beside the policy; a \
             mounted ConfigMap has none: run `roomguard test` on the source tree)",
            tests.display()
        );
        return Exit::Policy.into();
    }
    let reports = match suite_report::run_suites(&policy, &tests) {
        Ok(reports) => reports,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Policy.into();
        }
    };
    match format {
        ReportFormat::Text => print!("{}", suite_report::render_text(&reports)),
        ReportFormat::Json => println!("{}", suite_report::render_json(&reports)),
        ReportFormat::Junit => print!("{}", suite_report::render_junit(&reports)),
    }
    if reports.iter().all(|r| r.passed) {
        Exit::Success.into()
    } else {
        Exit::Failed.into()
    }
}

fn health(args: &HealthArgs) -> ExitCode {
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| health_client::HealthError::Usage(err.to_string()))
        .and_then(|runtime| runtime.block_on(health_client::check(args)));
    match result {
        Ok(()) => {
            println!("{}: SERVING", args.addr);
            Exit::Success.into()
        }
        Err(health_client::HealthError::Usage(message)) => {
            eprintln!("error: {message}");
            Exit::Usage.into()
        }
        Err(err) => {
            eprintln!("{}: {err}", args.addr);
            Exit::Failed.into()
        }
    }
}
