//! HTTPS served directly (`[tls]`), for deployments without a reverse proxy in front.
//!
//! With both `cert_path` and `key_path` set, every listener of the process (`run`,
//! `demo`, `serve`, `ingest`) speaks TLS only: rustls (ring provider, TLS 1.2 and 1.3,
//! ALPN `h2` and `http/1.1`) in front of the same axum router, so `/api/live` is `wss://`
//! on the same port. Nothing is served in plain text on that port. Without them the
//! listener is plain HTTP, for a proxy that terminates TLS (docs/security.md).
//!
//! The certificate and key are read once, at start: a file that is missing, not PEM,
//! or a key that does not match is an error naming the file, before anything listens.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

/// How long a graceful shutdown waits for open connections (live sockets included)
/// before closing them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A TLS client must send its request headers within this time (a connection that
/// trickles them in holds memory for nothing).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// `[tls]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSection {
    /// PEM file of the server's certificate chain, leaf first. With `key_path`: serve
    /// HTTPS (and `wss://`) only. Neither: plain HTTP, for a TLS-terminating proxy.
    pub cert_path: Option<PathBuf>,
    /// PEM file of the certificate's private key (PKCS #8, PKCS #1 or SEC1). Keep it
    /// readable by the server's user only.
    pub key_path: Option<PathBuf>,
}

impl TlsSection {
    /// The rustls configuration these paths describe, `None` for plain HTTP.
    ///
    /// # Errors
    /// Only one of the two paths set; a file that cannot be read or holds no
    /// certificate or key; a key that does not belong to the certificate.
    pub fn server_config(&self) -> anyhow::Result<Option<Arc<rustls::ServerConfig>>> {
        let (cert_path, key_path) = match (&self.cert_path, &self.key_path) {
            (None, None) => return Ok(None),
            (Some(cert), Some(key)) => (cert, key),
            _ => anyhow::bail!(
                "[tls] cert_path and key_path go together: set both for HTTPS, neither for plain HTTP"
            ),
        };
        let certs = read_certs(cert_path)?;
        let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| {
            anyhow::anyhow!(
                "[tls] key_path {}: no private key read: {e}",
                key_path.display()
            )
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("[tls] the TLS protocol versions")?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .with_context(|| {
                format!(
                    "[tls] the key in {} does not fit the certificate in {}",
                    key_path.display(),
                    cert_path.display()
                )
            })?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Some(Arc::new(config)))
    }
}

fn read_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("[tls] cert_path {}: {e}", path.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "[tls] cert_path {}: no certificate in the file",
        path.display()
    );
    Ok(certs)
}

/// Serves `app` on `listener` until `shutdown` resolves: over TLS with `tls`, else
/// plain HTTP.
///
/// # Errors
/// When accepting connections fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    let Some(tls) = tls else {
        println!("crmpulse listening on http://{addr}");
        tracing::info!(%addr, tls = false, "listening");
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await?;
        return Ok(());
    };
    println!("crmpulse listening on https://{addr}");
    tracing::info!(%addr, tls = true, "listening");
    let handle = axum_server::Handle::new();
    let stop = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stop.graceful_shutdown(Some(SHUTDOWN_GRACE));
    });
    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(
        axum_server::tls_rustls::RustlsConfig::from_config(tls),
    );
    let mut server = axum_server::Server::<std::net::SocketAddr>::from_listener(listener)
        .acceptor(acceptor)
        .handle(handle);
    server
        .http_builder()
        .http1()
        .header_read_timeout(HEADER_READ_TIMEOUT);
    server.serve(app.into_make_service()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn self_signed() -> (String, String) {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        (cert.cert.pem(), cert.signing_key.serialize_pem())
    }

    #[test]
    fn no_paths_is_plain_http_and_both_load_a_certificate() {
        assert!(TlsSection::default().server_config().unwrap().is_none());
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed();
        let tls = TlsSection {
            cert_path: Some(write(dir.path(), "cert.pem", &cert)),
            key_path: Some(write(dir.path(), "key.pem", &key)),
        };
        let config = tls.server_config().unwrap().expect("a TLS configuration");
        assert_eq!(
            config.alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }

    #[test]
    fn a_bad_tls_section_is_an_error_naming_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed();
        let (_, other_key) = self_signed();
        let cert_path = write(dir.path(), "cert.pem", &cert);
        let key_path = write(dir.path(), "key.pem", &key);
        let missing = dir.path().join("missing.pem");
        let not_pem = write(dir.path(), "notes.txt", "not a certificate\n");
        let wrong_key = write(dir.path(), "other.pem", &other_key);
        let cases = [
            (
                Some(cert_path.clone()),
                None,
                "cert_path and key_path go together",
            ),
            (
                None,
                Some(key_path.clone()),
                "cert_path and key_path go together",
            ),
            (Some(missing.clone()), Some(key_path.clone()), "cert_path"),
            (
                Some(not_pem.clone()),
                Some(key_path.clone()),
                "no certificate",
            ),
            (Some(cert_path.clone()), Some(not_pem.clone()), "key_path"),
            (
                Some(cert_path.clone()),
                Some(wrong_key),
                "does not fit the certificate",
            ),
        ];
        for (cert_path, key_path, says) in cases {
            let what = format!("{cert_path:?} {key_path:?}");
            let err = TlsSection {
                cert_path,
                key_path,
            }
            .server_config()
            .expect_err(&what);
            let message = format!("{err:#}");
            assert!(message.contains(says), "{what}: {message}");
        }
    }
}
