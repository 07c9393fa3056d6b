//! TLS on the TCP listener, with rustls (through tonic's `tls-ring`): a certificate chain and key in PEM, and
//! optionally a client CA that every client certificate must chain to (mutual TLS).
//!
//! The files are read and the acceptor is built before anything binds, so a wrong path or a key that does not match
//! is a config error naming the setting (exit code 64), not a failure on the first connection.

use std::{path::Path, time::Duration};

use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

use crate::config::{ConfigError, TlsConfig};

/// A client that has not finished its TLS handshake within this is dropped (slowloris protection).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The server side of TLS, read from files and checked.
pub fn server_config(config: &TlsConfig) -> Result<Option<ServerTlsConfig>, ConfigError> {
    let (Some(cert), Some(key)) = (&config.cert, &config.key) else {
        return Ok(None);
    };
    let identity = Identity::from_pem(read("tls.cert", cert)?, read("tls.key", key)?);
    let mut tls = ServerTlsConfig::new()
        .identity(identity)
        .timeout(HANDSHAKE_TIMEOUT);
    if let Some(ca) = &config.client_ca {
        tls = tls.client_ca_root(Certificate::from_pem(read("tls.client_ca", ca)?));
    }
    // Building the acceptor parses every PEM and checks that the key matches the certificate.
    Server::builder()
        .tls_config(tls.clone())
        .map_err(|err| ConfigError {
            setting: if config.client_ca.is_some() {
                "tls (cert, key, client_ca)"
            } else {
                "tls (cert, key)"
            }
            .into(),
            problem: format!("not a usable certificate and key: {}", source_chain(&err)),
        })?;
    Ok(Some(tls))
}

fn read(setting: &str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|err| ConfigError {
        setting: setting.into(),
        problem: format!("cannot read `{}`: {err}", path.display()),
    })
}

/// `err` and its sources, joined with `: ` (tonic's transport errors keep the useful part in the source).
pub fn source_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
