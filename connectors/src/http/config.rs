//! What an operator writes to reach the department HTTP sources (TOML, embedded in
//! `hedui serve`'s config file), with defaults and validation.
//!
//! ```toml
//! cache_secret = "at least 32 characters of random text, kept like a password"
//!
//! [tls]
//! ca = "certs/ca.pem"          # the CA whose server certificates we trust
//! cert = "certs/client.pem"    # our client certificate (mutual TLS)
//! key = "certs/client.key"     # its private key (PKCS#8 PEM)
//!
//! [[sources]]
//! name = "tax"                 # a §2 source name (SourceKind)
//! base_url = "https://127.0.0.1:8443"
//! timeout_ms = 2000            # per attempt, connect to last body byte
//! retries = 2                  # extra attempts after the first, idempotent failures only
//! max_in_flight = 16           # concurrent requests to this source
//! batch_size = 100             # persons per request
//! cache_ttl_s = 300            # 0 = no cache
//! breaker = { failures = 5, cooldown_ms = 10000 }
//! ```

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::SourceKind;

/// The HTTP sources: TLS material, the cache secret and one entry per source.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSourcesConfig {
    /// Mutual-TLS material (PEM files).
    pub tls: TlsFiles,
    /// Key of the HMAC-SHA256 that turns a normalised ID number into a cache key (the raw
    /// number is never a key). At least 32 bytes; treat it as a secret.
    pub cache_secret: String,
    /// One entry per source queried; a §2 source without an entry is not queried (and is
    /// `unverified` in every report).
    pub sources: Vec<SourceEndpoint>,
}

/// PEM files for mutual TLS with the sources.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// CA certificate(s) that sign the sources' server certificates (the only roots trusted).
    pub ca: PathBuf,
    /// hedui's client certificate (chain), presented to every source.
    pub cert: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1 PEM).
    pub key: PathBuf,
}

/// How to reach one source and how hard to try.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceEndpoint {
    /// The §2 source name (`tax`, `bank`, …).
    pub name: SourceKind,
    /// Scheme, host and port (and an optional path prefix); queries go to
    /// `{base_url}/v1/sources/{name}/query`. Must be `https://`.
    pub base_url: String,
    /// Limit per attempt, from asking for one of the `max_in_flight` slots to the last byte
    /// of the body, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Attempts after the first, for idempotent failures only (connect error, timeout, 429,
    /// 502/503/504).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Base of the exponential backoff: attempt n waits a uniformly random time in
    /// `[0, min(backoff_max_ms, backoff_base_ms × 2^(n−1))]` ("full jitter").
    #[serde(default = "default_backoff_base_ms")]
    pub backoff_base_ms: u64,
    /// Cap of one backoff wait, in milliseconds.
    #[serde(default = "default_backoff_max_ms")]
    pub backoff_max_ms: u64,
    /// The longest `Retry-After` honoured on a 429, in milliseconds; a longer one fails the
    /// call at once with `source_rate_limited`.
    #[serde(default = "default_retry_after_max_ms")]
    pub retry_after_max_ms: u64,
    /// Requests in flight to this source at once (a tokio semaphore; waits, never fails).
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Persons per request; a larger query is split and the parts sent concurrently.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// How long a person's answer is reused, in seconds; 0 turns the cache off.
    #[serde(default = "default_cache_ttl_s")]
    pub cache_ttl_s: u64,
    /// Persons kept in this source's cache at most.
    #[serde(default = "default_cache_capacity")]
    pub cache_capacity: u64,
    /// The circuit breaker.
    #[serde(default)]
    pub breaker: BreakerConfig,
}

/// Circuit breaker of one source: after `failures` consecutive failed calls it opens and
/// every call fails at once (`source_circuit_open`) for `cooldown_ms`; then one probe call
/// is let through (half-open): success closes it, failure opens it again.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerConfig {
    /// Consecutive failed calls (after their retries) that open the breaker; 0 = never.
    #[serde(default = "default_breaker_failures")]
    pub failures: u32,
    /// How long it stays open before a probe, in milliseconds.
    #[serde(default = "default_breaker_cooldown_ms")]
    pub cooldown_ms: u64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failures: default_breaker_failures(),
            cooldown_ms: default_breaker_cooldown_ms(),
        }
    }
}

fn default_timeout_ms() -> u64 {
    2_000
}
fn default_retries() -> u32 {
    2
}
fn default_backoff_base_ms() -> u64 {
    50
}
fn default_backoff_max_ms() -> u64 {
    1_000
}
fn default_retry_after_max_ms() -> u64 {
    2_000
}
fn default_max_in_flight() -> usize {
    16
}
fn default_batch_size() -> usize {
    100
}
/// Longest cache time to live accepted, in seconds (31 days).
pub const MAX_CACHE_TTL_S: u64 = 31 * 24 * 3600;

fn default_cache_ttl_s() -> u64 {
    300
}
fn default_cache_capacity() -> u64 {
    200_000
}
fn default_breaker_failures() -> u32 {
    5
}
fn default_breaker_cooldown_ms() -> u64 {
    10_000
}

impl SourceEndpoint {
    /// An endpoint with every knob at its default.
    pub fn new(name: SourceKind, base_url: impl Into<String>) -> SourceEndpoint {
        SourceEndpoint {
            name,
            base_url: base_url.into(),
            timeout_ms: default_timeout_ms(),
            retries: default_retries(),
            backoff_base_ms: default_backoff_base_ms(),
            backoff_max_ms: default_backoff_max_ms(),
            retry_after_max_ms: default_retry_after_max_ms(),
            max_in_flight: default_max_in_flight(),
            batch_size: default_batch_size(),
            cache_ttl_s: default_cache_ttl_s(),
            cache_capacity: default_cache_capacity(),
            breaker: BreakerConfig::default(),
        }
    }

    /// The query URL of this source.
    pub fn query_url(&self) -> String {
        format!(
            "{}/v1/sources/{}/query",
            self.base_url.trim_end_matches('/'),
            self.name.name()
        )
    }
}

impl HttpSourcesConfig {
    /// Every source of §2 at one base URL (the sim serves them all), knobs at their defaults.
    pub fn all_at(base_url: &str, tls: TlsFiles, cache_secret: impl Into<String>) -> Self {
        HttpSourcesConfig {
            tls,
            cache_secret: cache_secret.into(),
            sources: SourceKind::ALL
                .into_iter()
                .map(|k| SourceEndpoint::new(k, base_url))
                .collect(),
        }
    }

    /// Check what serde cannot: the secret's length, unique sources, https URLs, non-zero
    /// limits. Each problem names its field (`sources[2].batch_size`).
    ///
    /// # Errors
    /// Every problem found, one sentence each.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if self.cache_secret.len() < 32 {
            problems.push(format!(
                "cache_secret: {} bytes, at least 32 needed",
                self.cache_secret.len()
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, s) in self.sources.iter().enumerate() {
            let at = format!("sources[{i}]");
            if !seen.insert(s.name) {
                problems.push(format!("{at}.name: {} is listed twice", s.name.name()));
            }
            if !s.base_url.starts_with("https://") {
                problems.push(format!("{at}.base_url: must start with https://"));
            }
            for (field, v) in [
                ("timeout_ms", s.timeout_ms),
                ("max_in_flight", s.max_in_flight as u64),
                ("batch_size", s.batch_size as u64),
            ] {
                if v == 0 {
                    problems.push(format!("{at}.{field}: must be at least 1"));
                }
            }
            if s.retries > 10 {
                problems.push(format!("{at}.retries: {} is more than 10", s.retries));
            }
            // an answer older than a month is no verification (and the cache cannot hold
            // entries for centuries)
            if s.cache_ttl_s > MAX_CACHE_TTL_S {
                problems.push(format!(
                    "{at}.cache_ttl_s: {} is more than {MAX_CACHE_TTL_S} (31 days)",
                    s.cache_ttl_s
                ));
            }
            if s.timeout_ms > 600_000 {
                problems.push(format!(
                    "{at}.timeout_ms: {} is more than 600000 (10 minutes)",
                    s.timeout_ms
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sources_table_reads_from_toml_with_defaults() {
        let cfg: HttpSourcesConfig = toml::from_str(
            r#"
            cache_secret = "0123456789abcdef0123456789abcdef"
            [tls]
            ca = "ca.pem"
            cert = "client.pem"
            key = "client.key"
            [[sources]]
            name = "tax"
            base_url = "https://127.0.0.1:8443"
            timeout_ms = 500
            breaker = { failures = 3 }
            [[sources]]
            name = "bank"
            base_url = "https://bank.example"
            "#,
        )
        .unwrap();
        assert_eq!(cfg.sources[0].name, SourceKind::Tax);
        assert_eq!(cfg.sources[0].timeout_ms, 500);
        assert_eq!(cfg.sources[0].breaker.failures, 3);
        assert_eq!(cfg.sources[0].breaker.cooldown_ms, 10_000);
        assert_eq!(cfg.sources[1].batch_size, 100);
        assert_eq!(
            cfg.sources[0].query_url(),
            "https://127.0.0.1:8443/v1/sources/tax/query"
        );
        assert_eq!(cfg.validate(), Ok(()));
    }

    #[test]
    fn validation_names_each_bad_field() {
        let mut cfg = HttpSourcesConfig::all_at(
            "http://x",
            TlsFiles {
                ca: "a".into(),
                cert: "b".into(),
                key: "c".into(),
            },
            "short",
        );
        cfg.sources[1].batch_size = 0;
        cfg.sources[2].cache_ttl_s = 31_556_952_000; // a thousand years: moka would panic
        let p = cfg.validate().unwrap_err();
        assert!(p.contains(
            &"sources[2].cache_ttl_s: 31556952000 is more than 2678400 (31 days)".to_string()
        ));
        assert_eq!(p[0], "cache_secret: 5 bytes, at least 32 needed");
        assert!(p.contains(&"sources[0].base_url: must start with https://".to_string()));
        assert!(p.contains(&"sources[1].batch_size: must be at least 1".to_string()));
    }

    #[test]
    fn an_unknown_source_name_is_refused_by_serde() {
        let e = toml::from_str::<SourceEndpoint>("name = \"taxes\"\nbase_url = \"https://x\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("taxes"), "{e}");
    }
}
