//! The command line: `roomguard serve`, and the policy author's tools `validate`, `check` and `test`.

use std::{
    io::Read as _,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
};

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tracing::{error, info};

use crate::{
    check_report,
    decide::{explain_publish, explain_send},
    json_request::JsonRequest,
    policy::PolicySnapshot,
    request::{PublishRequest, SendRequest},
    server,
    store::PolicyStore,
    suite_report,
};

/// Exit code for a policy directory that does not load (sysexits' EX_DATAERR).
pub const EXIT_BAD_POLICY: u8 = 65;
/// Exit code for an unreadable or invalid request given to `check` (sysexits' EX_USAGE).
pub const EXIT_USAGE: u8 = 64;

/// roomguard: a policy decision point for Matrix homeservers.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the gRPC policy service.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "ROOMGUARD_LISTEN", default_value = "127.0.0.1:50051")]
        listen: SocketAddr,
        /// Policy directory.
        #[arg(long, env = "ROOMGUARD_POLICIES", default_value = "./policies")]
        policies: PathBuf,
    },
    /// Check a policy directory and report every problem with file and line.
    Validate {
        /// Policy directory.
        #[arg(env = "ROOMGUARD_POLICIES", default_value = "./policies")]
        dir: PathBuf,
    },
    /// Decide one request given as proto3 JSON (a file, or `-` for stdin) with no server, and explain the decision.
    Check {
        /// The request: a `CheckMessageSendRequest` or `CheckRoomPublishRequest` in proto3 JSON.
        #[arg(default_value = "-")]
        request: PathBuf,
        /// Policy directory.
        #[arg(long, env = "ROOMGUARD_POLICIES", default_value = "./policies")]
        policies: PathBuf,
        /// `send` or `publish` (default: told from the request's fields).
        #[arg(long)]
        rpc: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
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
    let cli = Cli::parse();
    init_tracing();
    match cli.command {
        Command::Serve { listen, policies } => serve(listen, policies),
        Command::Validate { dir } => validate(&dir),
        Command::Check {
            request,
            policies,
            rpc,
            json,
        } => check(&request, &policies, rpc.as_deref(), json),
        Command::Test { dir, format } => test(&dir, format),
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn load(dir: &std::path::Path) -> Result<PolicySnapshot, ExitCode> {
    PolicySnapshot::load(dir).map_err(|err| {
        eprintln!("error: cannot load the policy in {}: {err}", dir.display());
        ExitCode::from(EXIT_BAD_POLICY)
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
                .filter_map(|p| crate::suite::Suite::from_file(p).err())
                .collect()
        })
        .unwrap_or_default();
    for error in &suite_errors {
        eprintln!("error: {error}");
    }
    match load(dir) {
        Ok(_) if !suite_errors.is_empty() => ExitCode::from(EXIT_BAD_POLICY),
        Ok(policy) => {
            println!(
                "{}: valid ({} rules, {} roles, {} per-user lines, policy_version {})",
                dir.display(),
                policy.rules.len(),
                policy.roles.role_names().len(),
                policy.roles.user_count(),
                policy.version
            );
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

fn check(request: &Path, dir: &Path, rpc: Option<&str>, json: bool) -> ExitCode {
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
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let parsed = match JsonRequest::parse(&text, rpc) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("error: {}: {e}", request.display());
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let policy = match load(dir) {
        Ok(policy) => policy,
        Err(code) => return code,
    };
    let explained = match parsed {
        JsonRequest::Send(r) => SendRequest::try_from(r).map(|r| explain_send(&policy, &r)),
        JsonRequest::Publish(r) => {
            PublishRequest::try_from(r).map(|r| explain_publish(&policy, &r))
        }
    };
    match explained {
        Ok(e) if json => println!("{}", check_report::render_json(&policy, &e)),
        Ok(e) => print!("{}", check_report::render_text(&policy, &e)),
        Err(invalid) => {
            eprintln!("error: INVALID_ARGUMENT: {invalid}");
            return ExitCode::from(EXIT_USAGE);
        }
    }
    ExitCode::SUCCESS
}

fn test(dir: &Path, format: ReportFormat) -> ExitCode {
    let policy = match load(dir) {
        Ok(policy) => policy,
        Err(code) => return code,
    };
    let reports = match suite_report::run_suites(&policy, &dir.join("tests")) {
        Ok(reports) => reports,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_BAD_POLICY);
        }
    };
    match format {
        ReportFormat::Text => print!("{}", suite_report::render_text(&reports)),
        ReportFormat::Json => println!("{}", suite_report::render_json(&reports)),
        ReportFormat::Junit => print!("{}", suite_report::render_junit(&reports)),
    }
    if reports.iter().all(|r| r.passed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn serve(listen: SocketAddr, dir: PathBuf) -> ExitCode {
    let policy = match load(&dir) {
        Ok(policy) => policy,
        Err(code) => return code,
    };
    info!(dir = %dir.display(), policy_version = %policy.version, rules = policy.rules.len(), "policy loaded");
    withhold_panic_messages();
    let store = Arc::new(PolicyStore::new(policy));
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")
        .and_then(|runtime| {
            runtime.block_on(async {
                let listener = TcpListener::bind(listen)
                    .await
                    .with_context(|| format!("cannot listen on {listen}"))?;
                server::run(listener, store, shutdown_signal())
                    .await
                    .context("server failed")
            })
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            error!("{err:#}");
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// A panic message can quote the data being processed (slicing errors print the string), and the data here is
/// message content that must never reach a log: the serving process logs where a panic happened, not its text.
fn withhold_panic_messages() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        error!(%location, "panic (its message is withheld because it may quote request content)");
    }));
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            error!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(err) => {
                error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => info!("received Ctrl-C"),
        () = terminate => info!("received SIGTERM"),
    }
}
