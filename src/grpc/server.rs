//! Serves `roomguard.v1.PolicyService`, gRPC health and reflection on a TCP listener (and optionally a Unix socket),
//! behind the connection gate, the bearer-token and deadline layers, plus the metrics listener, until `shutdown`
//! resolves; then stops accepting, gives calls in flight and open connections `limits.shutdown_grace_ms` to finish,
//! closes whatever is left, and returns.

use std::{future::Future, sync::Arc, time::Duration};

use tokio::{
    net::{TcpListener, UnixListener},
    sync::watch,
};
use tokio_rustls::rustls::ServerConfig;
use tonic::transport::Server;
use tonic_health::ServingStatus;
use tracing::{info, warn};

use envoy_types::pb::envoy::service::auth::v3::authorization_server::AuthorizationServer;

use crate::{
    grpc::{
        PolicyServer,
        proto::{self, policy_service_server::PolicyServiceServer},
    },
    ops::{
        connections::{ConnectionGate, Listener},
        counters::{Counters, DEFAULT_MAX_TRACKED_USERS},
        decision_log::DecisionLog,
        layers::auth::{AuthLayer, BearerToken},
        metrics::{self, Metrics},
        reads::{
            ReadGuard, ReadGuardParts,
            homeserver::{Homeserver, HomeserverError},
        },
        reload,
        scan_slots::ScanSlots,
        {admission::Admission, layers::deadline::DeadlineLayer},
        {
            limits::LimitsConfig, media_limits::MediaConfig, media_limits::OcrMode, mode::Mode,
            reads::config::ReadsConfig,
        },
    },
    policy::store::PolicyStore,
};

/// The largest response sent: a decision is small; this only guards against a runaway reason catalogue.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// The gRPC service name, as health checks and reflection know it.
pub const SERVICE_NAME: &str = "roomguard.v1.PolicyService";

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Building the reflection service failed (a corrupt descriptor set: a build problem).
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The transport failed.
    #[error("transport error: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The homeserver client of the read guard cannot be built (no trust store for `https://`).
    #[error("reads.homeserver_url: {0}")]
    Homeserver(#[from] HomeserverError),
}

/// The sockets to serve on. Bound by the caller (so that tests can bind `127.0.0.1:0` and read the port).
#[derive(Debug)]
pub struct Listeners {
    /// The gRPC TCP listener (TLS when [`Options::tls`] is set).
    pub grpc: TcpListener,
    /// A Unix domain socket for a co-located homeserver: the same services and token check, no TLS (the socket file's
    /// permissions guard it).
    pub unix: Option<UnixListener>,
    /// The Prometheus metrics HTTP listener.
    pub metrics: Option<TcpListener>,
    /// The read guard's HTTP listener (nginx `auth_request`).
    pub reads: Option<TcpListener>,
}

impl From<TcpListener> for Listeners {
    fn from(grpc: TcpListener) -> Self {
        Listeners {
            grpc,
            unix: None,
            metrics: None,
            reads: None,
        }
    }
}

/// How to serve, beyond the sockets and the policy: built from the validated [`crate::ops::config::Config`].
#[derive(Debug, Clone)]
pub struct Options {
    /// Enforce or shadow.
    pub mode: Mode,
    /// TLS on the TCP listener (see [`crate::ops::tls::server_config`]).
    pub tls: Option<Arc<ServerConfig>>,
    /// The bearer token callers must present, if any.
    pub token: Option<BearerToken>,
    /// Concurrency, timeout, message size, keepalive.
    pub limits: LimitsConfig,
    /// Where counters go.
    pub metrics: Arc<Metrics>,
    /// Where decision-log lines go.
    pub decision_log: DecisionLog,
    /// The per-account join and read counters (they outlive policy reloads: they are the server's, not the
    /// policy's).
    pub counters: Counters,
    /// Uploads: file size, text and decompression limits, nesting, time budget and scan slots.
    pub media: MediaConfig,
    /// Reads: the homeserver, caches, failure mode, containment.
    pub reads: ReadsConfig,
    /// The homeserver admin's access token of `reads.admin_token_file`, read at start.
    pub reads_admin_token: Option<String>,
    /// Test support, zero otherwise (no setting reaches it): every decision also takes this long, as a deliberately
    /// slow policy would, so that overload tests do not depend on how slow the engine is with a large policy.
    pub decision_delay: Duration,
}

impl Default for Options {
    /// Enforcing, no TLS, no token, default limits, fresh metrics, no decision log.
    fn default() -> Self {
        let metrics = Arc::new(Metrics::new());
        Options {
            mode: Mode::Enforce,
            tls: None,
            token: None,
            limits: LimitsConfig::default(),
            counters: Counters::in_memory(DEFAULT_MAX_TRACKED_USERS, metrics.clone()),
            metrics,
            decision_log: DecisionLog::off(),
            media: MediaConfig::default(),
            reads: ReadsConfig::default(),
            reads_admin_token: None,
            decision_delay: Duration::ZERO,
        }
    }
}

/// The read guard `options` describe, on `store`'s policy and the process's `admission`.
fn read_guard(
    store: &Arc<PolicyStore>,
    options: &Options,
    admission: Admission,
) -> Result<ReadGuard, ServerError> {
    let config = &options.reads;
    let homeserver = match &config.homeserver_url {
        Some(url) => Some(Homeserver::new(
            url,
            options.reads_admin_token.clone(),
            config.homeserver_timeout(),
            options.metrics.clone(),
        )?),
        None => None,
    };
    // The read's own budget ends before the deadline layer's, so that a slow homeserver is answered by the failure
    // mode rather than by DEADLINE_EXCEEDED.
    let request_timeout = options.limits.request_timeout();
    let budget = request_timeout.saturating_sub(request_timeout / 10);
    Ok(ReadGuard::new(
        store.clone(),
        ReadGuardParts {
            mode: options.mode,
            failure_mode: config.failure_mode,
            homeserver,
            token_cache: config.token_cache(),
            token_cache_entries: config.token_cache_entries,
            room_cache: config.room_cache(),
            lock_account_after: config.lock_account_after,
            counter: options.counters.reads.clone(),
            admission,
            budget,
            metrics: options.metrics.clone(),
            decision_log: options.decision_log.clone(),
        },
    ))
}

/// Serves on `listener` with the policy in `store` and default [`Options`] until `shutdown` completes.
pub async fn run(
    listener: TcpListener,
    store: Arc<PolicyStore>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    serve(listener.into(), store, Options::default(), shutdown).await
}

/// Serves on every listener in `listeners` with the policy in `store` until `shutdown` completes, reloading the policy
/// when its directory changes or on SIGHUP (see `ops::reload`).
///
/// On shutdown the health status turns `NOT_SERVING` first (so load balancers stop sending), then the servers stop
/// accepting connections and wait for in-flight calls to finish, for `limits.shutdown_grace_ms` at most: a client
/// that keeps a connection open or never finishes a request must not keep the process alive. Connections still open
/// then are closed when the runtime ends. The decision log is not closed here: the caller closes it once this
/// returns.
pub async fn serve(
    listeners: Listeners,
    store: Arc<PolicyStore>,
    options: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<PolicyServiceServer<PolicyServer>>()
        .await;

    // v1 is the standard; v1alpha is still what many clients ask for (grpcurl before 1.9, Python's grpc_reflection
    // descriptor database), so both are served from the same descriptors.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;

    let limits = &options.limits;
    // One admission for every listener: the limit is the process's, not a listener's or a connection's.
    let admission = Admission::new(limits.max_concurrent_requests, options.metrics.clone());
    // Reads have permits of their own: a flood of reads must not shed the homeserver module's decisions.
    let read_admission = Admission::new(limits.max_concurrent_requests, options.metrics.clone());
    let reads = read_guard(&store, &options, read_admission)?;
    reads.report();
    if options.media.ocr != OcrMode::Off {
        // Loads Tesseract off the async workers (a few hundred milliseconds, once), so that neither the first
        // scanned upload nor GetPolicyStatus waits for it.
        tokio::task::spawn_blocking(|| {
            let _ = crate::documents::ocr_availability();
        });
    }
    let service = PolicyServer::new(store.clone())
        .with_operations(
            options.mode,
            options.metrics.clone(),
            options.decision_log.clone(),
            admission,
            options.counters.joins.clone(),
            ScanSlots::new(options.media.clone(), options.metrics.clone()),
            reads.clone(),
        )
        .with_decision_delay(options.decision_delay);
    let policy = PolicyServiceServer::new(service.clone())
        .max_decoding_message_size(limits.max_request_bytes)
        .max_encoding_message_size(MAX_RESPONSE_BYTES);
    // Envoy's ext_authz, on the same listeners and behind the same token and deadline.
    let ext_authz = AuthorizationServer::new(service)
        .max_decoding_message_size(limits.max_request_bytes)
        .max_encoding_message_size(MAX_RESPONSE_BYTES);

    // One shutdown signal for every listener and the policy reloader.
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    // The reloader lives as long as the server: it stops when shutdown begins.
    let policy_dir = store.current().dir.clone();
    tokio::spawn(reload::watch(store.clone(), policy_dir, stopped()));
    // Uploads keep their own budget (media.timeout_ms, enforced by the upload path itself); the layer only backs it
    // up, a second later.
    let deadline = DeadlineLayer::new(limits.request_timeout(), options.metrics.clone())
        .with_upload_timeout(options.media.timeout() + Duration::from_secs(1));
    let auth = AuthLayer::new(options.token.clone(), options.metrics.clone());
    // One gate for every listener: the connection slots are the process's file descriptors.
    let gate = ConnectionGate::new(
        limits.max_connections,
        limits.handshake_timeout(),
        options.metrics.clone(),
    )
    .with_tcp_keepalive(limits.tcp_keepalive());
    let builder = || {
        Server::builder()
            .http2_keepalive_interval(limits.http2_keepalive_interval())
            .http2_keepalive_timeout(Some(Duration::from_secs(limits.http2_keepalive_timeout_s)))
            .layer(auth.clone())
            .layer(deadline.clone())
    };

    let grpc = {
        if let Ok(addr) = listeners.grpc.local_addr() {
            info!(%addr, tls = options.tls.is_some(), token = options.token.is_some(), mode = options.mode.as_str(), "roomguard listening");
        }
        let incoming = gate.incoming(
            Listener::Tcp(listeners.grpc),
            options.tls.clone(),
            stopped(),
        );
        builder()
            .add_service(health_service.clone())
            .add_service(reflection_v1.clone())
            .add_service(reflection_v1alpha.clone())
            .add_service(policy.clone())
            .add_service(ext_authz.clone())
            .serve_with_incoming_shutdown(incoming, stopped())
    };
    let unix = listeners.unix.map(|listener| {
        if let Ok(addr) = listener.local_addr() {
            info!(path = ?addr.as_pathname(), "roomguard listening on a Unix socket");
        }
        builder()
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(policy)
            .add_service(ext_authz)
            .serve_with_incoming_shutdown(
                gate.incoming(Listener::Unix(listener), None, stopped()),
                stopped(),
            )
    });
    let reads_http = listeners.reads.map(|listener| {
        tokio::spawn(crate::ops::reads::http::serve(
            listener,
            reads,
            limits.max_connections,
            stopped(),
        ))
    });
    let metrics = listeners.metrics.map(|listener| {
        tokio::spawn(metrics::serve(
            listener,
            options.metrics.clone(),
            store.clone(),
            stopped(),
        ))
    });

    let draining = async move {
        shutdown.await;
        info!("shutting down: no new calls, finishing calls in flight");
        health
            .set_service_status("", ServingStatus::NotServing)
            .await;
        health
            .set_not_serving::<PolicyServiceServer<PolicyServer>>()
            .await;
        let _ = stop_tx.send(true);
    };
    let unix = async move {
        match unix {
            Some(server) => server.await,
            None => Ok(()),
        }
    };
    // A listener that fails ends the whole server (rather than serving on what is left until a signal comes).
    let servers = async move { tokio::try_join!(grpc, unix).map(drop) };
    // Once shutdown begins, the servers get the grace period to drain; after it, whatever is still open is closed:
    // the servers' futures are dropped here and their connection tasks end with the runtime.
    let grace = limits.shutdown_grace();
    let grace_begins = stopped();
    let expired = async move {
        grace_begins.await;
        tokio::time::sleep(grace).await;
    };
    let (result, ()) = tokio::join!(
        async move {
            tokio::select! {
                result = servers => result,
                () = expired => {
                    warn!(grace_ms = grace.as_millis() as u64, "shutdown grace period over: closing the connections still open");
                    Ok(())
                }
            }
        },
        draining
    );
    for task in [metrics, reads_http].into_iter().flatten() {
        task.abort();
        let _ = task.await;
    }
    result?;
    info!("roomguard stopped");
    Ok(())
}
