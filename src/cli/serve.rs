//! The wiring of `roomguard serve`: configuration, TLS material, token, policy, decision log and metrics are all
//! loaded and checked before anything binds (a bad setting exits 64 naming it); then the listeners, the runtime, and
//! the server until SIGTERM or Ctrl-C; then the decision log is flushed.

use std::{process::ExitCode, sync::Arc};

use anyhow::Context;
use tokio::net::{TcpListener, UnixListener};
use tracing::{error, info, warn};

use super::exit::Exit;
use crate::{
    grpc::server::{self, Listeners, Options},
    ops::{
        config::settings::ServeArgs,
        counters::Counters,
        decision_log::DecisionLog,
        layers::auth::BearerToken,
        metrics::Metrics,
        tls,
        {config::Config, config_error::ConfigError, media_limits::OcrMode},
    },
    policy::store::PolicyStore,
};

/// Says at start whether uploads' pictures are read with OCR; with `media.ocr = "required"`, a server that cannot
/// load Tesseract does not start.
fn report_ocr(mode: OcrMode) -> Result<(), ConfigError> {
    if mode == OcrMode::Off {
        info!("OCR off (media.ocr = \"off\"): pictures in uploads are not read");
        return Ok(());
    }
    match crate::documents::ocr_availability() {
        Ok(version) => {
            info!(
                tesseract = version,
                languages = "fra+eng",
                "OCR available: pictures in uploads are read"
            );
            Ok(())
        }
        Err(why) if mode == OcrMode::Required => Err(ConfigError::new(
            "media.ocr",
            format!("`required`, but OCR is unavailable: {why}"),
        )),
        Err(why) => {
            warn!(
                reason = why,
                "OCR unavailable: pictures in uploads are not read (noted `unsupported`)"
            );
            Ok(())
        }
    }
}

fn bad_config(err: &ConfigError) -> ExitCode {
    eprintln!("error: {err}");
    Exit::Usage.into()
}

/// `roomguard serve`: loads and checks the config, the TLS material, the token and the policy before anything binds,
/// then serves until SIGTERM or Ctrl-C.
pub fn serve(args: &ServeArgs) -> ExitCode {
    crate::ops::allocator::return_large_buffers_at_once();
    let config = match Config::load(args) {
        Ok(config) => config,
        Err(err) => return bad_config(&err),
    };
    if let Err(err) = report_ocr(config.media.ocr) {
        return bad_config(&err);
    }
    let tls = match tls::server_config(&config.tls) {
        Ok(tls) => tls,
        Err(err) => return bad_config(&err),
    };
    let token = match token(&config) {
        Ok(token) => token,
        Err(err) => return bad_config(&err),
    };
    let reads_admin_token = match reads_admin_token(&config) {
        Ok(token) => token,
        Err(err) => return bad_config(&err),
    };
    let policy = match super::load(&config.policies) {
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
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            error!("cannot start the runtime: {err}");
            eprintln!("error: cannot start the runtime: {err}");
            return Exit::Failed.into();
        }
    };
    // The Redis counter's connection and probe are tasks: it is created inside the runtime.
    let counters = {
        let _inside = runtime.enter();
        match Counters::from_config(&config.counters, metrics.clone()) {
            Ok(counters) => counters,
            Err(err) => {
                let setting = match err {
                    crate::ops::counters::redis::RedisSetupError::PasswordFile { .. } => {
                        "counters.redis_password_file"
                    }
                    crate::ops::counters::redis::RedisSetupError::Url(_) => "counters.redis_url",
                };
                return bad_config(&ConfigError::new(setting, err.to_string()));
            }
        }
    };
    let options = Options {
        mode: config.mode,
        tls,
        token,
        limits: config.limits.clone(),
        counters: counters.clone(),
        metrics,
        decision_log: decision_log.clone(),
        media: config.media.clone(),
        reads: config.reads.clone(),
        reads_admin_token,
        decision_delay: std::time::Duration::ZERO,
    };
    let result = runtime.block_on(async {
        counters.first_contact().await;
        let listeners = bind(&config).await?;
        server::serve(listeners, store, options, shutdown_signal())
            .await
            .context("server failed")
    });
    // Connections still open after the grace period close with the runtime.
    drop(runtime);
    // Every call has finished: write what is buffered and flush before exiting.
    decision_log.close();
    if let Some(path) = &config.unix_socket {
        let _ = std::fs::remove_file(path);
    }
    match result {
        Ok(()) => Exit::Success.into(),
        Err(err) => {
            error!("{err:#}");
            eprintln!("error: {err:#}");
            Exit::Failed.into()
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

/// The homeserver admin's access token of `reads.admin_token_file` (surrounding whitespace ignored); never logged.
fn reads_admin_token(config: &Config) -> Result<Option<String>, ConfigError> {
    let Some(path) = &config.reads.admin_token_file else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).map_err(|err| {
        ConfigError::new(
            "reads.admin_token_file",
            format!("cannot read `{}`: {err}", path.display()),
        )
    })?;
    let token = text.trim();
    if token.is_empty() || token.bytes().any(|b| !b.is_ascii_graphic()) {
        return Err(ConfigError::new(
            "reads.admin_token_file",
            "must hold one access token (printable characters, no spaces)",
        ));
    }
    Ok(Some(token.to_owned()))
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
    let reads = match config.reads.http_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (reads.http_listen)"))?,
        ),
        None => None,
    };
    Ok(Listeners {
        grpc,
        unix,
        metrics,
        reads,
    })
}

fn is_socket(metadata: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    metadata.file_type().is_socket()
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
