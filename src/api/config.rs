//! `hedui serve --config FILE` and `hedui check --config FILE`: what the operator wrote
//! (TOML, [`ServeConfig`]) → validated settings ([`Settings`]: keys loaded, policy loaded,
//! paths resolved against the config file's folder). Two steps, so a bad file is refused
//! at start-up with the key that is wrong.
//!
//! ```toml
//! listen = "127.0.0.1:8443"
//! tls_cert = "certs/server.pem"       # PEM chain
//! tls_key = "certs/server.key"        # PEM private key
//! store = "hedui.db"                  # SQLite: jobs, reports, tokens, consents, audit
//! policy = "policies/gansu-illustrative-2026.toml"   # optional: the bundled policy
//! recipients = ["keys/civil.pub"]     # civil-affairs public keys (hedui keygen)
//! signing_key = "keys/hedui-signing.key"
//! secret_file = "secret"              # ≥ 32 bytes: keys person hashes (consents, cache)
//! # as_of = "2026-11-01"              # drills only: pin the as-of date D
//!
//! [limits]
//! max_body_bytes = 65536
//! max_persons = 20
//! wait_cap_s = 30
//! max_consent_days = 366              # longest consent POST /v1/consents registers
//!
//! [sources]                           # the HTTP transport's settings (connectors::http)
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::Deserialize;

use crate::assess::Policy;
use crate::seal::{RecipientPublicKey, SigningKey};

/// The config file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// Address to listen on (`127.0.0.1:8443`; port 0 picks one, printed at start).
    pub listen: SocketAddr,
    /// Server certificate chain (PEM).
    pub tls_cert: PathBuf,
    /// Server private key (PEM).
    pub tls_key: PathBuf,
    /// The SQLite store file (created).
    pub store: PathBuf,
    /// Policy file; default: the bundled illustrative policy.
    #[serde(default)]
    pub policy: Option<PathBuf>,
    /// Civil-affairs recipient public keys the reports are sealed to.
    pub recipients: Vec<PathBuf>,
    /// hedui's Ed25519 signing key.
    pub signing_key: PathBuf,
    /// File holding the service secret (≥ 32 bytes).
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// The service secret inline (hex or text, ≥ 32 bytes); `secret_file` is preferred.
    #[serde(default)]
    pub secret: Option<String>,
    /// Pin the as-of date D (drills and tests); default: today (UTC) per verification.
    #[serde(default)]
    pub as_of: Option<NaiveDate>,
    /// Limits.
    #[serde(default)]
    pub limits: Limits,
    /// The department sources (the HTTP transport's configuration).
    #[serde(default)]
    pub sources: toml::Table,
}

/// Request limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest request body, bytes (413 `body_too_large` above).
    #[serde(default = "default_body")]
    pub max_body_bytes: usize,
    /// Most members + supporters in one household (413 `too_many_persons` above).
    #[serde(default = "default_persons")]
    pub max_persons: usize,
    /// Longest `?wait=` honoured, seconds.
    #[serde(default = "default_wait")]
    pub wait_cap_s: u64,
    /// Longest consent `POST /v1/consents` registers, in days from the day it is registered
    /// (422 `valid_until_too_late` beyond): 低保 households are re-verified at least yearly,
    /// so a consent needs to outlive one year's verifications, not a lifetime. Default 366.
    #[serde(default = "default_consent_days")]
    pub max_consent_days: u32,
}

fn default_body() -> usize {
    64 * 1024
}
fn default_persons() -> usize {
    20
}
fn default_wait() -> u64 {
    30
}
fn default_consent_days() -> u32 {
    366
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: default_body(),
            max_persons: default_persons(),
            wait_cap_s: default_wait(),
            max_consent_days: default_consent_days(),
        }
    }
}

/// Validated settings.
pub struct Settings {
    /// The config as written (paths resolved).
    pub config: ServeConfig,
    /// The policy.
    pub policy: Policy,
    /// Recipients.
    pub recipients: Vec<RecipientPublicKey>,
    /// Signing key.
    pub signing: SigningKey,
    /// The secret bytes.
    pub secret: Vec<u8>,
    /// The folder of the config file (relative paths in `[sources]` resolve against it).
    pub base: PathBuf,
}

/// A config file that cannot be used: names the file and the key.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    /// The config file (or a file it names).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

impl Settings {
    /// Read and validate the config at `path`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key or file: unreadable TOML, unknown keys, a key file
    /// that does not load, a secret shorter than 32 bytes.
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        let err = |m: String| ConfigError {
            path: path.display().to_string(),
            message: m,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
        let mut config: ServeConfig =
            toml::from_str(&text).map_err(|e| err(e.to_string().trim().to_string()))?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        config.tls_cert = resolve(&base, &config.tls_cert);
        config.tls_key = resolve(&base, &config.tls_key);
        config.store = resolve(&base, &config.store);
        config.signing_key = resolve(&base, &config.signing_key);
        config.policy = config.policy.map(|p| resolve(&base, &p));
        config.recipients = config
            .recipients
            .iter()
            .map(|p| resolve(&base, p))
            .collect();
        config.secret_file = config.secret_file.map(|p| resolve(&base, &p));
        let policy = match &config.policy {
            Some(p) => Policy::load(p).map_err(|e| err(format!("policy: {e}")))?,
            None => Policy::bundled(),
        };
        if let Some(d) = config.as_of {
            policy
                .check_in_force(d)
                .map_err(|e| err(format!("as_of: {e}")))?;
        }
        if config.recipients.is_empty() {
            return Err(err(
                "recipients: at least one civil-affairs public key".into()
            ));
        }
        let recipients = config
            .recipients
            .iter()
            .map(|p| {
                RecipientPublicKey::load(p)
                    .map_err(|e| err(format!("recipients: {}: {e}", p.display())))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let signing =
            SigningKey::load(&config.signing_key).map_err(|e| err(format!("signing_key: {e}")))?;
        let secret = match (&config.secret_file, &config.secret) {
            (Some(f), _) => {
                std::fs::read(f).map_err(|e| err(format!("secret_file {}: {e}", f.display())))?
            }
            (None, Some(s)) => s.as_bytes().to_vec(),
            (None, None) => return Err(err("secret_file (or secret): required".into())),
        };
        let secret: Vec<u8> = secret
            .into_iter()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        if secret.len() < 32 {
            return Err(err("the secret must be at least 32 bytes".into()));
        }
        // Found by the s7 newcomer: the README's example `cache_secret` was accepted as it
        // is, so a config pasted from it keeps a secret anyone can read.
        if config
            .sources
            .get("cache_secret")
            .and_then(|v| v.as_str())
            .is_some_and(|v| v.starts_with("replace-me"))
        {
            eprintln!(
                "hedui: warning: [sources] cache_secret is the README's placeholder: replace it with your own random text (e.g. `head -c 48 /dev/urandom | base64`)"
            );
        }
        if config.limits.max_persons == 0 || config.limits.max_body_bytes < 256 {
            return Err(err(
                "limits: max_persons ≥ 1 and max_body_bytes ≥ 256".into()
            ));
        }
        if !(1..=3660).contains(&config.limits.max_consent_days) {
            return Err(err(
                "limits: max_consent_days is 1-3660 (a consent of ten years at most)".into(),
            ));
        }
        Ok(Settings {
            config,
            policy,
            recipients,
            signing,
            secret,
            base,
        })
    }
}
