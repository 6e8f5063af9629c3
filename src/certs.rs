//! `hedui certs`: a test certificate authority and the certificates that `hedui sim`,
//! `hedui serve` and the source client need, for tests, drills and the demo (rcgen, ring,
//! ECDSA P-256). Production uses the province's PKI instead; the file names are the same.
//!
//! Written to `--out DIR` (PEM; private keys PKCS#8, mode 0600):
//! | file | what |
//! |---|---|
//! | `ca.pem`, `ca.key` | the test CA (trust anchor for both sides) |
//! | `server.pem`, `server.key` | server certificate for `localhost`, `127.0.0.1` and `::1` (sim and serve) |
//! | `client.pem`, `client.key` | client certificate `hedui-sources-client`: hedui → sources (mutual TLS) |
//! | `intake.pem`, `intake.key` | a second client certificate `hedui-intake-client` (an intake system → serve, if serve asks for one) |

use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// Why certificates could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// rcgen refused the parameters (a bug, not input). Its message is in this one's, and
    /// it is not the error's `source`, so that an error chain prints it once.
    #[error("certificate generation: {0}")]
    Generate(rcgen::Error),
    /// A file could not be written.
    #[error("{path}: {cause}")]
    Write {
        /// The file.
        path: String,
        /// The I/O error (in the message; not the `source`, as above).
        cause: std::io::Error,
    },
}

impl From<rcgen::Error> for CertError {
    fn from(e: rcgen::Error) -> CertError {
        CertError::Generate(e)
    }
}

/// The files written by [`generate`].
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// CA certificate.
    pub ca: PathBuf,
    /// CA private key.
    pub ca_key: PathBuf,
    /// Server certificate (localhost, 127.0.0.1, ::1).
    pub server: PathBuf,
    /// Server private key.
    pub server_key: PathBuf,
    /// Client certificate for hedui → sources.
    pub client: PathBuf,
    /// Its private key.
    pub client_key: PathBuf,
    /// Client certificate for an intake system → serve.
    pub intake: PathBuf,
    /// Its private key.
    pub intake_key: PathBuf,
}

fn write_file(path: &Path, text: &str, private: bool) -> Result<(), CertError> {
    let err = |cause| CertError::Write {
        path: path.display().to_string(),
        cause,
    };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let _ = private;
    let mut f = opts.open(path).map_err(err)?;
    // An existing file keeps its mode on open: set it again.
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(err)?;
    }
    f.write_all(text.as_bytes()).map_err(err)
}

fn leaf_params(
    common_name: &str,
    sans: Vec<String>,
    eku: ExtendedKeyUsagePurpose,
) -> Result<CertificateParams, rcgen::Error> {
    let mut p = CertificateParams::new(sans)?;
    p.distinguished_name.push(DnType::CommonName, common_name);
    p.distinguished_name
        .push(DnType::OrganizationName, "hedui test");
    p.is_ca = IsCa::NoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![eku];
    p.use_authority_key_identifier_extension = true;
    set_validity(&mut p, 825);
    Ok(p)
}

/// Valid from yesterday (clock skew) to `days` from today, UTC.
fn set_validity(p: &mut CertificateParams, days: u64) {
    use chrono::Datelike;
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let today = chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.date_naive())
        .unwrap_or_default();
    let at = |d: chrono::NaiveDate| rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8);
    p.not_before = at(today - chrono::Days::new(1));
    p.not_after = at(today + chrono::Days::new(days));
}

/// Make the test CA and the server and client certificates in `out` (created if needed;
/// existing files are replaced).
///
/// # Errors
/// [`CertError::Write`] naming the file that could not be written.
pub fn generate(out: &Path) -> Result<CertFiles, CertError> {
    std::fs::create_dir_all(out).map_err(|cause| CertError::Write {
        path: out.display().to_string(),
        cause,
    })?;
    let files = CertFiles {
        ca: out.join("ca.pem"),
        ca_key: out.join("ca.key"),
        server: out.join("server.pem"),
        server_key: out.join("server.key"),
        client: out.join("client.pem"),
        client_key: out.join("client.key"),
        intake: out.join("intake.pem"),
        intake_key: out.join("intake.key"),
    };

    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(DnType::CommonName, "hedui test CA (not for production)");
    ca.distinguished_name
        .push(DnType::OrganizationName, "hedui test");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut ca, 3650);
    let ca_cert = ca.self_signed(&ca_key)?;
    write_file(&files.ca, &ca_cert.pem(), false)?;
    write_file(&files.ca_key, &ca_key.serialize_pem(), true)?;
    let issuer = Issuer::new(ca, ca_key);

    let leaves = [
        (
            "localhost",
            vec![
                "localhost".to_string(),
                "127.0.0.1".to_string(),
                "::1".to_string(),
            ],
            ExtendedKeyUsagePurpose::ServerAuth,
            &files.server,
            &files.server_key,
        ),
        (
            "hedui-sources-client",
            Vec::new(),
            ExtendedKeyUsagePurpose::ClientAuth,
            &files.client,
            &files.client_key,
        ),
        (
            "hedui-intake-client",
            Vec::new(),
            ExtendedKeyUsagePurpose::ClientAuth,
            &files.intake,
            &files.intake_key,
        ),
    ];
    for (cn, sans, eku, cert_path, key_path) in leaves {
        let key = KeyPair::generate()?;
        let cert = leaf_params(cn, sans, eku)?.signed_by(&key, &issuer)?;
        write_file(cert_path, &cert.pem(), false)?;
        write_file(key_path, &key.serialize_pem(), true)?;
    }
    Ok(files)
}

/// Why a TLS server configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[error("TLS: {path}: {message}")]
pub struct TlsError {
    /// The file at fault (empty when none is).
    pub path: String,
    /// What was wrong.
    pub message: String,
}

fn pem_certs(path: &Path) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, TlsError> {
    use rustls::pki_types::pem::PemObject;
    let bad = |m: String| TlsError {
        path: path.display().to_string(),
        message: m,
    };
    let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no CERTIFICATE block".into()));
    }
    Ok(certs)
}

/// A rustls server configuration (ring provider, TLS 1.2 and 1.3, ALPN h2 and http/1.1)
/// from PEM files: the server's certificate chain and key, and — when `client_ca` is given —
/// mutual TLS: a client must present a certificate signed by that CA or the handshake
/// fails. For `hedui sim` (always mutual) and `hedui serve`.
///
/// # Errors
/// [`TlsError`] naming the file that cannot be read or used.
pub fn server_tls_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<std::sync::Arc<rustls::ServerConfig>, TlsError> {
    use rustls::pki_types::pem::PemObject;
    use std::sync::Arc;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = pem_certs(cert)?;
    let key_der = rustls::pki_types::PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError {
        path: key.display().to_string(),
        message: e.to_string(),
    })?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError {
            path: String::new(),
            message: e.to_string(),
        })?;
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in pem_certs(ca)? {
                roots.add(c).map_err(|e| TlsError {
                    path: ca.display().to_string(),
                    message: e.to_string(),
                })?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| TlsError {
                path: ca.display().to_string(),
                message: e.to_string(),
            })?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder
        .with_single_cert(chain, key_der)
        .map_err(|e| TlsError {
            path: key.display().to_string(),
            message: format!("does not fit {}: {e}", cert.display()),
        })?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// The TLS acceptor for an axum-server listener: `config` (from [`server_tls_config`]) over
/// accepted TCP connections with `TCP_NODELAY` set. Without it a response written in two
/// segments waits for the client's delayed ACK (40 ms on Linux): measured +44 ms per request
/// against `hedui sim`. Use as
/// `axum_server::from_tcp(listener)?.acceptor(hedui::certs::tls_acceptor(cfg))`.
pub fn tls_acceptor(
    config: std::sync::Arc<rustls::ServerConfig>,
) -> axum_server::tls_rustls::RustlsAcceptor<axum_server::accept::NoDelayAcceptor> {
    axum_server::tls_rustls::RustlsAcceptor::new(
        axum_server::tls_rustls::RustlsConfig::from_config(config),
    )
    .acceptor(axum_server::accept::NoDelayAcceptor::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_pem_and_the_keys_are_private() {
        let d = tempfile::tempdir().unwrap();
        let f = generate(d.path()).unwrap();
        for p in [&f.ca, &f.server, &f.client, &f.intake] {
            let t = std::fs::read_to_string(p).unwrap();
            assert!(
                t.starts_with("-----BEGIN CERTIFICATE-----"),
                "{}",
                p.display()
            );
        }
        for p in [&f.ca_key, &f.server_key, &f.client_key, &f.intake_key] {
            let t = std::fs::read_to_string(p).unwrap();
            assert!(
                t.starts_with("-----BEGIN PRIVATE KEY-----"),
                "{}",
                p.display()
            );
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{}", p.display());
            }
        }
    }
}
