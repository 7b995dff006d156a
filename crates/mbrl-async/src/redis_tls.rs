//! TLS to the Redis server (`rediss://` URLs): the `[async]` table's certificate files read into
//! the redis crate's TLS settings (rustls). Needs this crate's `tls` cargo feature (`mbrl-cli`'s
//! `tls`); without it a `rediss://` URL is refused with a message saying how to build.

use std::path::PathBuf;

use mbrl_core::{Error, Result};
use redis::Client;

use crate::redis_backend::masked;

/// PEM files for a `rediss://` connection, all optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate authority that signed the server's certificate; `None` trusts the web
    /// PKI's public roots.
    pub ca: Option<PathBuf>,
    /// This client's certificate, for a server that checks its clients (redis-server's
    /// default with TLS, `tls-auth-clients yes`); needs `client_key`.
    pub client_cert: Option<PathBuf>,
    /// The key of `client_cert`.
    pub client_key: Option<PathBuf>,
}

impl TlsFiles {
    /// Whether no file is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A client for `url`, configured with `tls` when the URL is `rediss://`.
pub(crate) fn client(url: &str, tls: &TlsFiles) -> Result<Client> {
    if url.starts_with("rediss://") {
        return tls_client(url, tls);
    }
    if !tls.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "TLS certificate files are set (async.redis_tls_*) but the Redis URL {} is not a \
             rediss:// URL",
            masked(url)
        )));
    }
    Client::open(url)
        .map_err(|e| Error::InvalidArgument(format!("bad Redis URL {}: {e}", masked(url))))
}

#[cfg(feature = "tls")]
fn tls_client(url: &str, tls: &TlsFiles) -> Result<Client> {
    use redis::{ClientTlsConfig, TlsCertificates};
    let read = |path: &PathBuf, what: &str| {
        std::fs::read(path).map_err(|e| {
            Error::InvalidArgument(format!(
                "cannot read the Redis TLS {what} {}: {e}",
                path.display()
            ))
        })
    };
    let client_tls = match (&tls.client_cert, &tls.client_key) {
        (Some(cert), Some(key)) => Some(ClientTlsConfig {
            client_cert: read(cert, "client certificate (async.redis_tls_cert_file)")?,
            client_key: read(key, "client key (async.redis_tls_key_file)")?,
        }),
        (None, None) => None,
        _ => {
            return Err(Error::InvalidArgument(
                "async.redis_tls_cert_file and async.redis_tls_key_file go together: set both \
                 or neither"
                    .into(),
            ))
        }
    };
    let root_cert = match &tls.ca {
        Some(ca) => Some(read(ca, "CA certificate (async.redis_tls_ca_file)")?),
        None => None,
    };
    let certificates = TlsCertificates {
        client_tls,
        root_cert,
    };
    Client::build_with_tls(url, certificates).map_err(|e| {
        Error::InvalidArgument(format!(
            "cannot set up TLS for the Redis server at {} (are the files PEM?): {e}",
            masked(url)
        ))
    })
}

#[cfg(not(feature = "tls"))]
fn tls_client(url: &str, _tls: &TlsFiles) -> Result<Client> {
    Err(Error::InvalidArgument(format!(
        "{} is a TLS (rediss://) URL, and this build has no TLS: build with the `tls` feature \
         (cargo build --release -p mbrl-cli --features tls)",
        masked(url)
    )))
}
