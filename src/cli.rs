//! The command line: `roomguard serve` and `roomguard validate`.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, sync::Arc};

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tracing::{error, info};

use crate::{policy::PolicySnapshot, server, store::PolicyStore};

/// Exit code for a policy directory that does not load (sysexits' EX_DATAERR).
pub const EXIT_BAD_POLICY: u8 = 65;

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
}

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match cli.command {
        Command::Serve { listen, policies } => serve(listen, policies),
        Command::Validate { dir } => validate(&dir),
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
    match load(dir) {
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

fn serve(listen: SocketAddr, dir: PathBuf) -> ExitCode {
    let policy = match load(&dir) {
        Ok(policy) => policy,
        Err(code) => return code,
    };
    info!(dir = %dir.display(), policy_version = %policy.version, rules = policy.rules.len(), "policy loaded");
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
