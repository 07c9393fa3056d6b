//! The command line: `roomguard serve` and `roomguard health` for operators, and the policy author's tools
//! `validate`, `check` and `test`.

use std::{
    io::Read as _,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
};

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio::net::{TcpListener, UnixListener};
use tracing::{error, info};

use crate::{
    author::{check_report, suite_report},
    domain::request::{PublishRequest, SendRequest},
    grpc::{
        health_client::{self, HealthArgs},
        json::JsonRequest,
        server::{self, Listeners, Options},
    },
    ops::{
        config::{Config, ConfigError, EXIT_BAD_CONFIG, Overrides},
        decision_log::DecisionLog,
        layers::auth::BearerToken,
        metrics::Metrics,
        tls,
    },
    policy::{
        PolicySnapshot,
        decide::{explain_publish, explain_send},
        store::PolicyStore,
    },
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
    /// Serve the gRPC policy service. Settings: flag > ROOMGUARD_* variable > --config file > default.
    Serve(Box<Overrides>),
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
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => {
            // --help, --version
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            // An unusable flag or ROOMGUARD_* variable is a config error: clap's message names it.
            let _ = err.print();
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    init_tracing();
    match cli.command {
        Command::Serve(overrides) => serve(&overrides),
        Command::Validate { dir } => validate(&dir),
        Command::Check {
            request,
            policies,
            rpc,
            json,
        } => check(&request, &policies, rpc.as_deref(), json),
        Command::Test { dir, format } => test(&dir, format),
        Command::Health(args) => health(&args),
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
                .filter_map(|p| crate::author::suite::Suite::from_file(p).err())
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

fn bad_config(err: &ConfigError) -> ExitCode {
    eprintln!("error: {err}");
    ExitCode::from(EXIT_BAD_CONFIG)
}

fn serve(overrides: &Overrides) -> ExitCode {
    let config = match Config::load(overrides) {
        Ok(config) => config,
        Err(err) => return bad_config(&err),
    };
    let tls = match tls::server_config(&config.tls) {
        Ok(tls) => tls,
        Err(err) => return bad_config(&err),
    };
    let token = match token(&config) {
        Ok(token) => token,
        Err(err) => return bad_config(&err),
    };
    let policy = match load(&config.policies) {
        Ok(policy) => policy,
        Err(code) => return code,
    };
    info!(dir = %config.policies.display(), policy_version = %policy.version, rules = policy.rules.len(), "policy loaded");
    withhold_panic_messages();
    let store = Arc::new(PolicyStore::new(policy));
    let metrics = Arc::new(Metrics::new());
    let decision_log = match DecisionLog::start(
        &config.decision_log.output(),
        config.decision_log.buffer,
        metrics.clone(),
    ) {
        Ok(log) => log,
        Err(err) => {
            return bad_config(&ConfigError {
                setting: "decision_log.output".into(),
                problem: format!("cannot open `{}`: {err}", config.decision_log.output),
            });
        }
    };
    let options = Options {
        mode: config.mode,
        tls,
        token,
        limits: config.limits.clone(),
        metrics,
        decision_log: decision_log.clone(),
    };
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")
        .and_then(|runtime| {
            runtime.block_on(async {
                let listeners = bind(&config).await?;
                server::serve(listeners, store, options, shutdown_signal())
                    .await
                    .context("server failed")
            })
        });
    // Every call has finished: write what is buffered and flush before exiting.
    decision_log.close();
    if let Some(path) = &config.unix_socket {
        let _ = std::fs::remove_file(path);
    }
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

fn token(config: &Config) -> Result<Option<BearerToken>, ConfigError> {
    let (setting, text) = match (&config.auth.token_file, &config.auth.token) {
        (Some(path), _) => (
            "auth.token_file",
            std::fs::read_to_string(path).map_err(|err| ConfigError {
                setting: "auth.token_file".into(),
                problem: format!("cannot read `{}`: {err}", path.display()),
            })?,
        ),
        (None, Some(token)) => ("ROOMGUARD_AUTH_TOKEN", token.clone()),
        (None, None) => return Ok(None),
    };
    BearerToken::new(&text)
        .map(Some)
        .ok_or_else(|| ConfigError {
            setting: setting.into(),
            problem: "the token is empty".into(),
        })
}

async fn bind(config: &Config) -> anyhow::Result<Listeners> {
    let grpc = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {} (listen)", config.listen))?;
    let unix =
        match &config.unix_socket {
            Some(path) => {
                // A socket file left by a previous run that did not stop cleanly would make bind fail.
                if std::fs::symlink_metadata(path).is_ok_and(|m| is_socket(&m)) {
                    let _ = std::fs::remove_file(path);
                }
                Some(UnixListener::bind(path).with_context(|| {
                    format!("cannot listen on {} (unix_socket)", path.display())
                })?)
            }
            None => None,
        };
    let metrics = match config.metrics.listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (metrics.listen)"))?,
        ),
        None => None,
    };
    Ok(Listeners {
        grpc,
        unix,
        metrics,
    })
}

fn is_socket(metadata: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    metadata.file_type().is_socket()
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
            ExitCode::SUCCESS
        }
        Err(health_client::HealthError::Usage(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(EXIT_BAD_CONFIG)
        }
        Err(err) => {
            eprintln!("{}: {err}", args.addr);
            ExitCode::FAILURE
        }
    }
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
