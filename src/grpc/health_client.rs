//! `roomguard health --addr ...`: a gRPC health client for container `HEALTHCHECK`s and scripts. It asks
//! `grpc.health.v1.Health/Check` and succeeds only on `SERVING`.
//!
//! Health needs no bearer token (the server leaves it open), so the check holds no secret; with TLS it needs the CA
//! (and, under mTLS, a client certificate and key).

use std::{path::PathBuf, time::Duration};

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// What to check and how to connect.
#[derive(Debug, Clone, clap::Args)]
pub struct HealthArgs {
    /// Server address: `http://host:port`, or `https://host:port` for TLS.
    #[arg(
        long,
        env = "ROOMGUARD_HEALTH_ADDR",
        default_value = "http://127.0.0.1:50051"
    )]
    pub addr: String,
    /// The service to ask about (`""` is the whole server).
    #[arg(long, default_value = "roomguard.v1.PolicyService")]
    pub service: String,
    /// CA certificate (PEM) to verify the server's certificate with (https).
    #[arg(long, env = "ROOMGUARD_HEALTH_CA")]
    pub ca: Option<PathBuf>,
    /// Name to verify the server certificate against, when it differs from the address's host.
    #[arg(long)]
    pub domain: Option<String>,
    /// Client certificate (PEM), when the server requires mTLS.
    #[arg(long, env = "ROOMGUARD_HEALTH_CERT", requires = "key")]
    pub cert: Option<PathBuf>,
    /// Client private key (PEM), when the server requires mTLS.
    #[arg(long, env = "ROOMGUARD_HEALTH_KEY", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Give up after this many milliseconds.
    #[arg(long, default_value_t = 3000)]
    pub timeout_ms: u64,
}

/// Why the check did not say `SERVING`.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// A file could not be read or the address is not a URL.
    #[error("{0}")]
    Usage(String),
    /// No connection could be made.
    #[error("cannot connect to `{addr}`: {error}")]
    Connect {
        /// The address.
        addr: String,
        /// The transport error, with its causes.
        error: String,
    },
    /// The call failed.
    #[error("health check failed: {0}")]
    Call(#[from] tonic::Status),
    /// The server answered, but not `SERVING`.
    #[error("not serving: {0:?}")]
    NotServing(ServingStatus),
}

/// Asks the server at `args.addr`; `Ok` only when it answers `SERVING`.
pub async fn check(args: &HealthArgs) -> Result<(), HealthError> {
    let timeout = Duration::from_millis(args.timeout_ms);
    let mut endpoint = Endpoint::from_shared(args.addr.clone())
        .map_err(|err| HealthError::Usage(format!("--addr `{}`: {err}", args.addr)))?
        .connect_timeout(timeout)
        .timeout(timeout);
    if args.addr.starts_with("https://") || args.ca.is_some() {
        let mut tls = ClientTlsConfig::new();
        if let Some(ca) = &args.ca {
            tls = tls.ca_certificate(Certificate::from_pem(read("--ca", ca)?));
        }
        if let Some(domain) = &args.domain {
            tls = tls.domain_name(domain.clone());
        }
        if let (Some(cert), Some(key)) = (&args.cert, &args.key) {
            tls = tls.identity(Identity::from_pem(
                read("--cert", cert)?,
                read("--key", key)?,
            ));
        }
        endpoint = endpoint.tls_config(tls).map_err(|err| {
            HealthError::Usage(format!("tls: {}", crate::ops::tls::source_chain(&err)))
        })?;
    }
    let channel: Channel = endpoint
        .connect()
        .await
        .map_err(|err| HealthError::Connect {
            addr: args.addr.clone(),
            error: crate::ops::tls::source_chain(&err),
        })?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: args.service.clone(),
        })
        .await?
        .into_inner();
    match ServingStatus::try_from(response.status) {
        Ok(ServingStatus::Serving) => Ok(()),
        Ok(other) => Err(HealthError::NotServing(other)),
        Err(_) => Err(HealthError::NotServing(ServingStatus::Unknown)),
    }
}

fn read(flag: &str, path: &std::path::Path) -> Result<Vec<u8>, HealthError> {
    std::fs::read(path)
        .map_err(|err| HealthError::Usage(format!("{flag} `{}`: {err}", path.display())))
}
