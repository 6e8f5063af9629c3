//! Mutual TLS for the source client: trust only the configured CA, present hedui's client
//! certificate, ring as the crypto provider (no process-wide default is needed).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::HttpSetupError;

/// The certificates of a PEM file (at least one).
pub(crate) fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, HttpSetupError> {
    let bad = |m: String| HttpSetupError::Tls {
        path: path.display().to_string(),
        message: m,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no CERTIFICATE block".into()));
    }
    Ok(certs)
}

/// The private key of a PEM file.
pub(crate) fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, HttpSetupError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| HttpSetupError::Tls {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// A rustls client config: roots = the CA file only, client auth = cert + key, ALPN h2 and
/// http/1.1.
pub(crate) fn client_config(
    ca: &Path,
    cert: &Path,
    key: &Path,
) -> Result<rustls::ClientConfig, HttpSetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in load_certs(ca)? {
        roots.add(c).map_err(|e| HttpSetupError::Tls {
            path: ca.display().to_string(),
            message: e.to_string(),
        })?;
    }
    let chain = load_certs(cert)?;
    let key_der = load_key(key)?;
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| HttpSetupError::Tls {
            path: String::new(),
            message: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key_der)
        .map_err(|e| HttpSetupError::Tls {
            path: key.display().to_string(),
            message: format!(
                "the key does not fit the certificate {}: {e}",
                cert.display()
            ),
        })?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}
