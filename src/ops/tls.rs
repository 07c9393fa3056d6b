//! TLS on the TCP listener, with rustls (ring): a certificate chain and key in PEM, and optionally a client CA that
//! every client certificate must chain to (mutual TLS). The handshake itself runs in `ops::connections`, under
//! `limits.handshake_timeout_ms`.
//!
//! The files are read and the configuration is built before anything binds, so a wrong path, a file that is not PEM
//! or a key that does not match is a config error naming the setting (exit code 64), not a failure on the first
//! connection.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use serde::Deserialize;

use tokio_rustls::rustls::{
    self, RootCertStore, ServerConfig,
    crypto::{CryptoProvider, ring},
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    server::WebPkiClientVerifier,
};

use crate::ops::config_error::{ConfigError, readable};

/// `[tls]`: TLS on the TCP listener when `cert` and `key` are set; mutual TLS when `client_ca` is set too.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain of the server.
    pub cert: Option<PathBuf>,
    /// PEM private key of the server.
    pub key: Option<PathBuf>,
    /// PEM CA certificates that client certificates must chain to; set to require client certificates (mTLS).
    pub client_ca: Option<PathBuf>,
}

impl TlsConfig {
    /// Both halves or neither, client certificates only over TLS, and every file readable now.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match (&self.cert, &self.key) {
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "tls.key",
                    "required when `tls.cert` is set",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "tls.cert",
                    "required when `tls.key` is set",
                ));
            }
            _ => {}
        }
        if self.client_ca.is_some() && self.cert.is_none() {
            return Err(ConfigError::new(
                "tls.client_ca",
                "client certificates need TLS: set `tls.cert` and `tls.key` too",
            ));
        }
        for (setting, path) in [
            ("tls.cert", &self.cert),
            ("tls.key", &self.key),
            ("tls.client_ca", &self.client_ca),
        ] {
            if let Some(path) = path {
                readable(setting, path)?;
            }
        }
        Ok(())
    }
}

/// gRPC runs over HTTP/2 only: the one protocol offered in ALPN.
const ALPN_H2: &[u8] = b"h2";

/// The server side of TLS, read from files and checked; None when TLS is not configured.
pub fn server_config(config: &TlsConfig) -> Result<Option<Arc<ServerConfig>>, ConfigError> {
    let (Some(cert), Some(key)) = (&config.cert, &config.key) else {
        return Ok(None);
    };
    let chain = certificates("tls.cert", cert)?;
    let key_der = PrivateKeyDer::from_pem_slice(&read("tls.key", key)?).map_err(|err| {
        ConfigError::new(
            "tls.key",
            format!("`{}` holds no usable private key: {err}", key.display()),
        )
    })?;
    // The provider is named, not taken from the process default, so that no other crate's choice can change it.
    let provider = Arc::new(ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|err| ConfigError::new("tls", err.to_string()))?;
    let builder = match &config.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => builder.with_client_cert_verifier(client_verifier(ca, provider)?),
    };
    let mut server = builder.with_single_cert(chain, key_der).map_err(|err| {
        ConfigError::new(
            if config.client_ca.is_some() {
                "tls (cert, key, client_ca)"
            } else {
                "tls (cert, key)"
            },
            format!("not a usable certificate and key: {err}"),
        )
    })?;
    server.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Some(Arc::new(server)))
}

fn client_verifier(
    ca: &Path,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, ConfigError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates("tls.client_ca", ca)? {
        roots.add(cert).map_err(|err| {
            ConfigError::new("tls.client_ca", format!("`{}`: {err}", ca.display()))
        })?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|err| ConfigError::new("tls.client_ca", format!("`{}`: {err}", ca.display())))
}

/// Every certificate of a PEM file; none is an error.
fn certificates(setting: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let pem = read(setting, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| {
            ConfigError::new(setting, format!("`{}` is not PEM: {err}", path.display()))
        })?;
    if certs.is_empty() {
        return Err(ConfigError::new(
            setting,
            format!("`{}` holds no PEM certificate", path.display()),
        ));
    }
    Ok(certs)
}

fn read(setting: &str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|err| {
        ConfigError::new(setting, format!("cannot read `{}`: {err}", path.display()))
    })
}

/// `err` and its sources, joined with `: ` (transport errors keep the useful part in the source).
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
