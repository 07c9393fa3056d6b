//! The client roomguard calls a homeserver with (the read guard's `whoami` and admin calls, the audit): HTTP/1.1 over
//! plain HTTP or HTTPS verified against the system's trust store, with the same rustls/ring build as the rest; and the
//! percent-encoding of ids put into its paths.

use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};

/// A pooled client of one or more homeservers.
pub type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A client for `http://` and `https://` URLs; fails only when the system's trust store cannot be read.
pub fn https_client() -> std::io::Result<HttpsClient> {
    let connector = HttpsConnectorBuilder::new()
        .with_native_roots()?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector))
}

/// Percent-encodes everything but RFC 3986's unreserved characters, for an id in a path or a query: room ids carry
/// `!` and `:`, event ids `$`, tokens anything, and none may change the path.
pub fn encode(id: &str) -> String {
    let mut out = String::with_capacity(id.len() * 3);
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids go into paths percent-encoded, so that `!room:server` and `$event` cannot change the path.
    #[test]
    fn ids_are_percent_encoded() {
        assert_eq!(encode("!abc:example.org"), "%21abc%3Aexample.org");
        assert_eq!(encode("$e/../x?y"), "%24e%2F..%2Fx%3Fy");
        assert_eq!(encode("Az09-._~"), "Az09-._~");
    }
}
