//! The HTTP transport: department sources reached over HTTPS with mutual TLS, for the
//! on-demand path (`hedui serve`, `hedui check`). The same records as the file transport
//! (DESIGN.md §2), as JSON ([`wire`], `schemas/sources/api/`).
//!
//! Where it sits: `ingest` (connectors) → link → evidence → assess → seal. One
//! [`HttpSources`] holds one reqwest client (rustls, ring, the configured CA as the only root,
//! hedui's client certificate) and, per source, its base URL, timeout, retries, a concurrency
//! limit (tokio semaphore), a circuit breaker and an answer cache (moka, per person, keyed
//! by HMAC-SHA256 of the ID number).
//!
//! # Use
//! ```no_run
//! use hedui_connectors::http::{HttpSources, HttpSourcesConfig, TlsFiles};
//! use hedui_connectors::{SourceKind, SourceOutcome};
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // Usually a `[[sources]]` table in serve's TOML (see `HttpSourcesConfig`); here: every
//! // §2 source at one `hedui sim`, knobs at their defaults.
//! let tls = TlsFiles { ca: "certs/ca.pem".into(), cert: "certs/client.pem".into(),
//!                      key: "certs/client.key".into() };
//! let cfg = HttpSourcesConfig::all_at("https://127.0.0.1:8443", tls,
//!                                     "a secret of at least thirty-two bytes!!");
//! let sources = HttpSources::new(&cfg)?;          // cheap to clone (Arc inside)
//! let ids = vec!["620503198703151234".to_string()]; // normalised 18-character numbers
//! let answer = sources.fetch(SourceKind::Tax, &ids).await;
//! match &answer.outcome {
//!     SourceOutcome::Records(set) => println!("{} records, {} s old, cached: {}",
//!                                             set.records.len(), answer.age_s(), answer.from_cache),
//!     SourceOutcome::NoRecords => println!("the source holds nothing for them"),
//!     // never "no records": the report says `unverified` for the source
//!     SourceOutcome::Failed(e) => println!("unverified: {} ({e})", e.code()),
//! }
//! // Every configured source at once (about as long as the slowest one):
//! let all = sources.fetch_all(&ids).await;
//! # let _ = all; Ok(()) }
//! ```
//!
//! # What a call does
//! 1. ID numbers are trimmed and upper-cased (`x` → `X`) and de-duplicated; each person is
//!    looked up in the source's cache; only the others are asked.
//! 2. The persons asked are split into batches of `batch_size`, sent concurrently, each
//!    under the source's `max_in_flight` semaphore and `timeout_ms` (counted from asking for a
//!    slot, so a call queued behind a hanging source times out on time). A call of at most
//!    `batch_size` persons goes out together with the other calls to the same source that
//!    are waiting at the same moment (other households verified at once; no timer, nothing
//!    waits for company), up to `batch_size` persons per request: under load one request
//!    serves several households. Each call still gets only its own persons' records.
//! 3. Retries (at most `retries`) only where repeating cannot harm: connect/TLS errors,
//!    timeouts, 429 (waiting `Retry-After` when it is at most `retry_after_max_ms`, else
//!    giving up), 502/503/504. Waits between attempts are exponential with full jitter.
//!    400/401/403/404/500 and malformed bodies are not retried.
//! 4. An answer is checked: the JSON shape, the source name, the echoed request id, every §2
//!    column present on every record, no key the schema does not allow (an `error` object or
//!    paging beside `records`) nor any key twice, every record's ID number one of those asked
//!    (a record of another person, or of the person under another number, means the source
//!    mixed persons up), no row number twice. A body that fails is `source_malformed`, never
//!    "no records".
//! 5. If every batch succeeded each person's records (possibly none) are cached; a failure
//!    of any batch fails the whole call with its reason code, and nothing of it is cached.
//! 6. The breaker counts calls (after retries): `breaker.failures` in a row open it. A call
//!    that was waiting for a `max_in_flight` permit when the breaker opened is not sent
//!    (`source_circuit_open`): queued calls do not each wait a timeout against a failing source.
//!
//! Privacy: ID numbers travel only in request bodies; they are never logged, never part of
//! an error message or a cache key.

mod breaker;
mod cache;
mod config;
mod tls;
pub mod wire;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use rand::Rng;
use tokio::sync::Semaphore;

pub use breaker::BreakerState;
pub use config::{BreakerConfig, HttpSourcesConfig, SourceEndpoint, TlsFiles};

use crate::{ConnectorError, Record, RecordSet, SourceKind, SourceOutcome};
use breaker::Breaker;
use cache::{CacheKey, Keyer, PersonAnswer, SourceCache};
use wire::QueryRequest;

/// Why an HTTP source gave no usable answer. [`HttpFailure::code`] is the stable reason
/// code carried into the report (`unverified` with this reason) and the metrics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpFailure {
    /// No complete answer within `timeout_ms` (on the last attempt).
    #[error("no answer within {timeout_ms} ms")]
    Timeout {
        /// The per-attempt limit.
        timeout_ms: u64,
    },
    /// No connection: refused, reset, DNS, or the TLS handshake failed (either side's
    /// certificate refused).
    #[error("unreachable: {detail}")]
    Unreachable {
        /// What the transport said (no person data).
        detail: String,
    },
    /// 401/403: the source refused hedui's credentials.
    #[error("refused our credentials (HTTP {status})")]
    Unauthorized {
        /// 401 or 403.
        status: u16,
    },
    /// 429 on the last attempt, or with a `Retry-After` longer than allowed.
    #[error("rate limited (HTTP 429{})", retry_after_s.map(|s| format!(", Retry-After {s} s")).unwrap_or_default())]
    RateLimited {
        /// The `Retry-After` seconds, when given.
        retry_after_s: Option<u64>,
    },
    /// Any other non-200 status (5xx after retries, 400, 404, …).
    #[error("HTTP {status}")]
    Status {
        /// The status code.
        status: u16,
    },
    /// A 200 whose body is not a complete, well-formed answer to this query.
    #[error("malformed answer: {detail}")]
    Malformed {
        /// What is wrong (shape, position; never a value).
        detail: String,
    },
    /// The breaker is open: the source failed repeatedly and is not called for a while.
    #[error("circuit breaker open after repeated failures")]
    CircuitOpen,
    /// The source has no `[[sources]]` entry.
    #[error("no endpoint configured")]
    NotConfigured,
}

impl HttpFailure {
    /// Stable reason code: `source_timeout`, `source_unreachable`, `source_unauthorized`,
    /// `source_rate_limited`, `source_error`, `source_malformed`, `source_circuit_open`,
    /// `source_not_configured`.
    pub fn code(&self) -> &'static str {
        match self {
            HttpFailure::Timeout { .. } => "source_timeout",
            HttpFailure::Unreachable { .. } => "source_unreachable",
            HttpFailure::Unauthorized { .. } => "source_unauthorized",
            HttpFailure::RateLimited { .. } => "source_rate_limited",
            HttpFailure::Status { .. } => "source_error",
            HttpFailure::Malformed { .. } => "source_malformed",
            HttpFailure::CircuitOpen => "source_circuit_open",
            HttpFailure::NotConfigured => "source_not_configured",
        }
    }
}

/// Why the HTTP sources could not be set up (bad config, unreadable TLS files).
#[derive(Debug, thiserror::Error)]
pub enum HttpSetupError {
    /// The configuration is invalid; one sentence per problem, naming the field.
    #[error("invalid sources configuration: {}", .0.join("; "))]
    Config(Vec<String>),
    /// A TLS file could not be read or used.
    #[error("TLS: {path}: {message}")]
    Tls {
        /// The file.
        path: String,
        /// What was wrong.
        message: String,
    },
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(String),
}

/// A household's persons prepared once for all sources ([`HttpSources::persons`]):
/// normalised, de-duplicated ID numbers and their cache keys. Its `Debug` shows only how
/// many (never an ID number).
#[derive(Clone)]
pub struct Persons {
    ids: Vec<String>,
    keys: Vec<CacheKey>,
}

impl Persons {
    /// The position of `id_number` among the persons (normalised as [`HttpSources::persons`]
    /// normalises them), `None` when it is not one of them.
    pub fn index_of(&self, id_number: &str) -> Option<usize> {
        let t = id_number.trim();
        self.ids.iter().position(|id| id.eq_ignore_ascii_case(t))
    }

    /// How many distinct persons.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

impl std::fmt::Debug for Persons {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Persons({})", self.ids.len())
    }
}

/// One source's answer to one call, with how it came about.
#[derive(Debug, Clone)]
pub struct SourceAnswer {
    /// The source.
    pub source: SourceKind,
    /// Records, no records, or the failure (with its reason code: [`SourceAnswer::reason_code`]).
    /// Records are in the order of the ID numbers asked, then the source's row.
    pub outcome: SourceOutcome,
    /// When the source gave the oldest part of this answer (a cached person's answer may be
    /// older than the call). `None` when the call failed.
    pub answered_at: Option<SystemTime>,
    /// Age of the oldest part at the end of the call (zero for a fresh answer).
    pub age: Duration,
    /// Whether every person came from the cache (no request was sent).
    pub from_cache: bool,
    /// Persons answered from the cache.
    pub persons_cached: usize,
    /// Persons asked of the source in this call.
    pub persons_fetched: usize,
    /// Per person of the call, in [`Persons`] order ([`Persons::index_of`]): whether their
    /// answer came from the cache (no request sent for them). Empty when no person was
    /// looked up (no source configured, no person). `from_cache` and `age` are the call's
    /// as a whole: an audit row per person reads this (session 22's attack found a person
    /// asked in this call marked "(cached)" because another person's answer was old).
    pub cached: Vec<bool>,
    /// HTTP requests sent (all batches, all attempts; a request shared with other
    /// households' calls counts for each of them).
    pub attempts: u32,
    /// Wall time of the call.
    pub elapsed: Duration,
}

impl SourceAnswer {
    /// Age in whole seconds (what the report shows).
    pub fn age_s(&self) -> u64 {
        self.age.as_secs()
    }

    /// The failure's stable reason code, `None` when the source answered.
    pub fn reason_code(&self) -> Option<&'static str> {
        match &self.outcome {
            SourceOutcome::Failed(e) => Some(e.code()),
            _ => None,
        }
    }

    /// The HTTP failure, when the call failed.
    pub fn failure(&self) -> Option<&HttpFailure> {
        match &self.outcome {
            SourceOutcome::Failed(ConnectorError::Http { failure, .. }) => Some(failure),
            _ => None,
        }
    }

    /// Whether the source answered (records or none): `verified` or `no_records`.
    pub fn is_answered(&self) -> bool {
        !matches!(self.outcome, SourceOutcome::Failed(_))
    }
}

/// Counters of one source since start (for `/v1/metrics`): counts only, no person data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceStats {
    /// Calls of [`HttpSources::fetch`] for this source.
    pub calls: u64,
    /// Calls that failed.
    pub calls_failed: u64,
    /// HTTP requests sent (attempts, retries included).
    pub requests: u64,
    /// Of those, retries.
    pub retries: u64,
    /// Persons answered from the cache.
    pub cache_hits: u64,
    /// Persons that had to be asked.
    pub cache_misses: u64,
    /// Batches refused at once by the open breaker.
    pub circuit_rejections: u64,
    /// Persons in the cache now (approximate).
    pub cache_entries: u64,
}

#[derive(Default)]
struct Counters {
    calls: AtomicU64,
    calls_failed: AtomicU64,
    requests: AtomicU64,
    retries: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    circuit_rejections: AtomicU64,
}

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

struct Source {
    ep: SourceEndpoint,
    url: String,
    limit: Semaphore,
    breaker: Breaker,
    cache: Option<SourceCache>,
    counters: Counters,
    /// Calls waiting to go out together (see [`HttpSources::coalesced`]).
    queue: std::sync::Mutex<Vec<Waiter>>,
}

/// One call's persons waiting in a source's queue, and where its answer goes.
struct Waiter {
    ids: Vec<String>,
    reply: tokio::sync::oneshot::Sender<BatchResult>,
}

struct Inner {
    client: reqwest::Client,
    keyer: Keyer,
    /// Bumped by [`HttpSources::clear_caches`]: an answer to a call that started before the
    /// last clearing is not cached (found by session 16's third attack: a bank answer in
    /// flight while a consent was revoked entered the cache just emptied for it).
    epoch: AtomicU64,
    sources: HashMap<SourceKind, Source>,
    order: Vec<SourceKind>,
}

/// The department sources over HTTPS: one client, and per source its limits, breaker and
/// cache. Clone it freely (an `Arc`); use it from any tokio runtime.
#[derive(Clone)]
pub struct HttpSources {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for HttpSources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSources")
            .field("sources", &self.inner.order)
            .finish_non_exhaustive()
    }
}

/// The outcome of one batch: the records, or the failure; attempts either way.
type BatchResult = (Result<Vec<Record>, HttpFailure>, u32);

/// Whether and how long to wait before another attempt.
enum Retry {
    No,
    Backoff,
    After(Duration),
}

impl HttpSources {
    /// Validate the configuration, read the TLS files and build the client.
    ///
    /// # Errors
    /// [`HttpSetupError::Config`] naming every bad field, [`HttpSetupError::Tls`] for a PEM
    /// file that cannot be read or a key that does not fit its certificate.
    pub fn new(cfg: &HttpSourcesConfig) -> Result<HttpSources, HttpSetupError> {
        cfg.validate().map_err(HttpSetupError::Config)?;
        let tls = tls::client_config(&cfg.tls.ca, &cfg.tls.cert, &cfg.tls.key)?;
        let max_idle = cfg
            .sources
            .iter()
            .map(|s| s.max_in_flight)
            .max()
            .unwrap_or(16);
        // No redirect is followed and nothing but HTTPS is spoken: found by session 16's
        // attack, a source answering 307 to `http://…` had hedui send the ID numbers there in
        // the clear and take that server's empty answer for the department's. A redirect is
        // an answer of its status (`source_error`).
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .https_only(true)
            .use_preconfigured_tls(tls)
            .pool_max_idle_per_host(max_idle)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| HttpSetupError::Client(e.to_string()))?;
        let sources = cfg
            .sources
            .iter()
            .map(|ep| {
                let src = Source {
                    url: ep.query_url(),
                    limit: Semaphore::new(ep.max_in_flight),
                    breaker: Breaker::new(
                        ep.breaker.failures,
                        Duration::from_millis(ep.breaker.cooldown_ms),
                    ),
                    cache: (ep.cache_ttl_s > 0).then(|| {
                        SourceCache::new(Duration::from_secs(ep.cache_ttl_s), ep.cache_capacity)
                    }),
                    counters: Counters::default(),
                    queue: std::sync::Mutex::new(Vec::new()),
                    ep: ep.clone(),
                };
                (ep.name, src)
            })
            .collect();
        Ok(HttpSources {
            inner: Arc::new(Inner {
                epoch: AtomicU64::new(0),
                client,
                keyer: Keyer::new(cfg.cache_secret.as_bytes()),
                sources,
                order: cfg.sources.iter().map(|s| s.name).collect(),
            }),
        })
    }

    /// Open the connection to each distinct base URL before the first verification needs
    /// it (`GET {base_url}/v1/health`; any HTTP answer counts, a failure is only logged), so
    /// that the first requests after a start do not each pay a TLS handshake or race to open
    /// parallel connections. Waits at most `limit`; returns how many base URLs answered.
    pub async fn warm_up(&self, limit: Duration) -> usize {
        let mut bases: Vec<String> = self
            .inner
            .sources
            .values()
            .map(|s| s.ep.base_url.trim_end_matches('/').to_string())
            .collect();
        bases.sort();
        bases.dedup();
        let mut set = tokio::task::JoinSet::new();
        for base in bases {
            let client = self.inner.client.clone();
            set.spawn(async move {
                client
                    .get(format!("{base}/v1/health"))
                    .timeout(limit)
                    .send()
                    .await
                    .is_ok()
            });
        }
        let mut answered = 0;
        while let Some(r) = set.join_next().await {
            if matches!(r, Ok(true)) {
                answered += 1;
            } else {
                tracing::info!("A source's base URL did not answer the warm-up request.");
            }
        }
        answered
    }

    /// The configured sources, in config order.
    pub fn sources(&self) -> &[SourceKind] {
        &self.inner.order
    }

    /// The persons of one household prepared for several sources: ID numbers trimmed,
    /// upper-cased (`x` → `X`) and de-duplicated in the caller's order, each with its cache
    /// key (one HMAC per person, not one per person and source). Pass it to
    /// [`HttpSources::fetch_persons`] for each source.
    pub fn persons(&self, id_numbers: &[String]) -> Persons {
        // a household has at most a few dozen persons: a scan is cheaper than hashing
        let mut ids: Vec<String> = Vec::with_capacity(id_numbers.len());
        for s in id_numbers {
            let t = s.trim();
            let id = if t.bytes().any(|b| b.is_ascii_lowercase()) {
                t.to_ascii_uppercase()
            } else {
                t.to_string()
            };
            if !id.is_empty() && !ids.contains(&id) {
                ids.push(id);
            }
        }
        let keys = ids.iter().map(|id| self.inner.keyer.key(id)).collect();
        Persons { ids, keys }
    }

    /// The records of `kind` for these persons (normalised 18-character ID numbers).
    /// Never panics and never errs: a failure is [`SourceOutcome::Failed`] with an
    /// [`HttpFailure`] inside [`ConnectorError::Http`].
    pub async fn fetch(&self, kind: SourceKind, id_numbers: &[String]) -> SourceAnswer {
        let persons = self.persons(id_numbers);
        self.fetch_persons(kind, &persons).await
    }

    /// [`HttpSources::fetch`] for persons prepared once by [`HttpSources::persons`] (the
    /// same household asked of every source).
    pub async fn fetch_persons(&self, kind: SourceKind, persons: &Persons) -> SourceAnswer {
        let started = Instant::now();
        let epoch = self.inner.epoch.load(Ordering::Acquire);
        let mut answer = SourceAnswer {
            source: kind,
            outcome: SourceOutcome::NoRecords,
            answered_at: None,
            age: Duration::ZERO,
            from_cache: false,
            persons_cached: 0,
            persons_fetched: 0,
            cached: Vec::new(),
            attempts: 0,
            elapsed: Duration::ZERO,
        };
        let Some(src) = self.inner.sources.get(&kind) else {
            answer.outcome = failed(kind, HttpFailure::NotConfigured, 0);
            return answer;
        };
        bump(&src.counters.calls, 1);
        let wanted = &persons.ids;
        if wanted.is_empty() {
            answer.answered_at = Some(SystemTime::now());
            answer.elapsed = started.elapsed();
            return answer;
        }

        // The cache first, person by person: `have[i]` is the answer for `wanted[i]`.
        let mut have: Vec<Option<Arc<PersonAnswer>>> = vec![None; wanted.len()];
        let mut keys: Vec<Option<CacheKey>> = vec![None; wanted.len()];
        // indices into `wanted` of the persons to ask
        let mut missing: Vec<usize> = Vec::new();
        for (i, &key) in persons.keys.iter().enumerate() {
            if let Some(cache) = &src.cache {
                if let Some(hit) = cache.get(&key).await {
                    have[i] = Some(hit);
                    continue;
                }
                keys[i] = Some(key);
            }
            missing.push(i);
        }
        answer.cached = have.iter().map(Option::is_some).collect();
        answer.persons_cached = wanted.len() - missing.len();
        answer.persons_fetched = missing.len();
        bump(&src.counters.cache_hits, answer.persons_cached as u64);
        bump(&src.counters.cache_misses, missing.len() as u64);

        // The rest from the source, in batches sent concurrently.
        if !missing.is_empty() {
            let batches: Vec<Vec<String>> = missing
                .chunks(src.ep.batch_size)
                .map(|c| c.iter().map(|&i| wanted[i].clone()).collect())
                .collect();
            let results: Vec<BatchResult> = if batches.len() == 1 {
                let batch = batches.into_iter().next().unwrap_or_default();
                vec![self.coalesced(kind, src, batch).await]
            } else {
                let mut set = tokio::task::JoinSet::new();
                let n = batches.len();
                for (i, batch) in batches.into_iter().enumerate() {
                    let this = self.clone();
                    set.spawn(async move { (i, this.request_batch(kind, batch).await) });
                }
                let mut out: Vec<Option<BatchResult>> = (0..n).map(|_| None).collect();
                while let Some(joined) = set.join_next().await {
                    match joined {
                        Ok((i, r)) => out[i] = Some(r),
                        // A panicked batch task: the call fails rather than lose persons.
                        Err(e) => {
                            tracing::error!(source = kind.name(), error = %e, "A source batch task failed.");
                        }
                    }
                }
                out.into_iter()
                    .map(|r| r.unwrap_or_else(batch_task_failed))
                    .collect()
            };
            let now = SystemTime::now();
            let mut first_failure = None;
            // the records by asked person (moved, not copied)
            let mut by_person: Vec<Vec<Record>> = wanted.iter().map(|_| Vec::new()).collect();
            for (res, attempts) in results {
                answer.attempts += attempts;
                match res {
                    Ok(records) => {
                        for r in records {
                            if let Some(i) = wanted.iter().position(|id| *id == r.id_number)
                                && have[i].is_none()
                            {
                                by_person[i].push(r);
                            }
                        }
                    }
                    Err(f) => {
                        if first_failure.is_none() {
                            first_failure = Some(f);
                        }
                    }
                }
            }
            for (i, recs) in by_person.into_iter().enumerate() {
                if !recs.is_empty() {
                    have[i] = Some(Arc::new(PersonAnswer {
                        records: recs,
                        answered_at: now,
                    }));
                }
            }
            if let Some(f) = first_failure {
                bump(&src.counters.calls_failed, 1);
                // Nothing of a call that failed is cached, the batches that succeeded
                // included: the call's audit rows say it failed for every person asked, and a
                // record kept from it would be answered later as the cache's with no row
                // saying it was received (found by session 26's attack; until then the
                // succeeded batches' persons were cached).
                answer.outcome = failed(kind, f, answer.attempts);
                answer.elapsed = started.elapsed();
                return answer;
            }
            // Persons asked that the source holds nothing for: an empty answer each.
            for &i in &missing {
                if have[i].is_none() {
                    have[i] = Some(Arc::new(PersonAnswer {
                        records: Vec::new(),
                        answered_at: now,
                    }));
                }
            }
            self.cache_batch_answers(src, &keys, &have, epoch).await;
        } else {
            answer.from_cache = true;
        }

        let oldest = have
            .iter()
            .flatten()
            .map(|a| a.answered_at)
            .min()
            .unwrap_or_else(SystemTime::now);
        answer.answered_at = Some(oldest);
        answer.age = SystemTime::now()
            .duration_since(oldest)
            .unwrap_or(Duration::ZERO);
        let mut records = Vec::with_capacity(have.iter().flatten().map(|a| a.records.len()).sum());
        for a in have.iter().flatten() {
            records.extend(a.records.iter().cloned());
        }
        answer.outcome = if records.is_empty() {
            SourceOutcome::NoRecords
        } else {
            SourceOutcome::Records(RecordSet {
                columns: kind.columns().iter().map(|c| c.name).collect(),
                records,
            })
        };
        answer.elapsed = started.elapsed();
        answer
    }

    /// Every configured source for the same persons, concurrently; answers in config order.
    pub async fn fetch_all(&self, id_numbers: &[String]) -> Vec<SourceAnswer> {
        let wanted: Vec<(SourceKind, Vec<String>)> = self
            .inner
            .order
            .iter()
            .map(|k| (*k, id_numbers.to_vec()))
            .collect();
        self.fetch_many(wanted).await
    }

    /// Several sources, each for its own persons (e.g. only those whose consent covers
    /// it), concurrently; answers in the order given.
    pub async fn fetch_many(&self, wanted: Vec<(SourceKind, Vec<String>)>) -> Vec<SourceAnswer> {
        let mut set = tokio::task::JoinSet::new();
        let kinds: Vec<SourceKind> = wanted.iter().map(|(k, _)| *k).collect();
        for (i, (kind, ids)) in wanted.into_iter().enumerate() {
            let this = self.clone();
            set.spawn(async move { (i, this.fetch(kind, &ids).await) });
        }
        let mut out: Vec<Option<SourceAnswer>> = (0..kinds.len()).map(|_| None).collect();
        while let Some(joined) = set.join_next().await {
            if let Ok((i, a)) = joined {
                out[i] = Some(a);
            }
        }
        out.into_iter()
            .zip(kinds)
            .map(|(a, kind)| {
                a.unwrap_or_else(|| SourceAnswer {
                    source: kind,
                    outcome: failed(
                        kind,
                        HttpFailure::Unreachable {
                            detail: "fetch task failed".into(),
                        },
                        0,
                    ),
                    answered_at: None,
                    age: Duration::ZERO,
                    from_cache: false,
                    persons_cached: 0,
                    persons_fetched: 0,
                    cached: Vec::new(),
                    attempts: 0,
                    elapsed: Duration::ZERO,
                })
            })
            .collect()
    }

    /// Counters of one configured source.
    pub fn stats(&self, kind: SourceKind) -> Option<SourceStats> {
        let s = self.inner.sources.get(&kind)?;
        let c = &s.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Some(SourceStats {
            calls: g(&c.calls),
            calls_failed: g(&c.calls_failed),
            requests: g(&c.requests),
            retries: g(&c.retries),
            cache_hits: g(&c.cache_hits),
            cache_misses: g(&c.cache_misses),
            circuit_rejections: g(&c.circuit_rejections),
            cache_entries: s.cache.as_ref().map_or(0, SourceCache::len),
        })
    }

    /// The breaker state of one configured source.
    pub fn breaker_state(&self, kind: SourceKind) -> Option<BreakerState> {
        Some(self.inner.sources.get(&kind)?.breaker.state())
    }

    /// Empty every source's cache (operator action; a consent revoked; tests). Calls out at
    /// the time keep their answers out of the caches too.
    pub fn clear_caches(&self) {
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        for s in self.inner.sources.values() {
            if let Some(c) = &s.cache {
                c.clear();
            }
        }
    }

    async fn cache_batch_answers(
        &self,
        src: &Source,
        keys: &[Option<CacheKey>],
        have: &[Option<Arc<PersonAnswer>>],
        epoch: u64,
    ) {
        let Some(cache) = &src.cache else { return };
        // (the caches were emptied while this call was out: its answers are not kept)
        if self.inner.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        for (key, a) in keys.iter().zip(have) {
            if let (Some(key), Some(a)) = (key, a) {
                cache.insert(*key, a.clone()).await;
            }
        }
    }

    /// `ids` (at most `batch_size`) asked together with the persons of the calls to the
    /// same source that are waiting at the same moment: one HTTP request for all of them
    /// instead of one per household. Nothing waits on a timer: the first caller queues a
    /// flush task that yields once to the runtime, so only calls already under way join;
    /// alone, a call goes out at once. The flush runs as its own task, so a caller that is
    /// dropped never strands the others. Each caller gets the records of its own persons
    /// (or the request's failure) and the request's attempt count.
    async fn coalesced(&self, kind: SourceKind, src: &Source, ids: Vec<String>) -> BatchResult {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let waiter = Waiter { ids, reply };
        let queued: Result<bool, Waiter> = match src.queue.lock() {
            Ok(mut q) => {
                q.push(waiter);
                Ok(q.len() == 1)
            }
            Err(_) => Err(waiter),
        };
        let first = match queued {
            Ok(first) => first,
            // A poisoned queue (a panic while it was held): ask alone.
            Err(w) => return self.request_batch(kind, w.ids).await,
        };
        if first {
            let this = self.clone();
            tokio::spawn(async move {
                tokio::task::yield_now().await;
                this.flush(kind).await;
            });
        }
        answer.await.unwrap_or_else(|_| batch_task_failed())
    }

    /// Send what waits in `kind`'s queue: waiters grouped into requests of at most
    /// `batch_size` persons, sent concurrently; each waiter answered.
    async fn flush(&self, kind: SourceKind) {
        let Some(src) = self.inner.sources.get(&kind) else {
            return;
        };
        let waiters = match src.queue.lock() {
            Ok(mut q) => std::mem::take(&mut *q),
            Err(_) => return,
        };
        let mut groups: Vec<Vec<Waiter>> = Vec::new();
        let mut persons = 0;
        for w in waiters {
            if groups.is_empty() || persons + w.ids.len() > src.ep.batch_size {
                groups.push(Vec::new());
                persons = 0;
            }
            persons += w.ids.len();
            if let Some(g) = groups.last_mut() {
                g.push(w);
            }
        }
        let mut rest = groups.into_iter();
        let first = rest.next();
        for group in rest {
            let this = self.clone();
            tokio::spawn(async move { this.answer_group(kind, group).await });
        }
        if let Some(group) = first {
            self.answer_group(kind, group).await;
        }
    }

    /// One request for a group of waiters; each gets its own persons' records. A retry asks
    /// only for the persons of the waiters still waiting, and none is sent when every waiter
    /// is gone: a verification stopped because a consent was revoked drops its waiter, and
    /// nothing more may be asked for it (session 22's attacks: the retries went on after the
    /// revocation, then a shared request's retry still carried the person).
    async fn answer_group(&self, kind: SourceKind, group: Vec<Waiter>) {
        let mut seen = HashSet::new();
        let ids: Vec<String> = group
            .iter()
            .flat_map(|w| w.ids.iter())
            .filter(|id| seen.insert(id.as_str()))
            .cloned()
            .collect();
        // the persons of the waiters still waiting, for each retry
        let live = || -> Vec<String> {
            let mut seen = HashSet::new();
            group
                .iter()
                .filter(|w| !w.reply.is_closed())
                .flat_map(|w| w.ids.iter())
                .filter(|id| seen.insert(id.as_str()))
                .cloned()
                .collect()
        };
        let (result, attempts) = self.request_batch_for(kind, ids, Some(&live)).await;
        if group.len() == 1 {
            if let Some(w) = group.into_iter().next() {
                let _ = w.reply.send((result, attempts));
            }
            return;
        }
        match result {
            Err(f) => {
                for w in group {
                    let _ = w.reply.send((Err(f.clone()), attempts));
                }
            }
            Ok(records) => {
                // Each record moves to the waiter that asked for its person; it is copied only
                // for a person that several waiters asked for (a supporter of two households).
                let mut askers: HashMap<&str, Vec<usize>> = HashMap::new();
                for (i, w) in group.iter().enumerate() {
                    for id in &w.ids {
                        askers.entry(id.as_str()).or_default().push(i);
                    }
                }
                let mut mine: Vec<Vec<Record>> = group.iter().map(|_| Vec::new()).collect();
                for r in records {
                    match askers.get(r.id_number.as_str()).map(Vec::as_slice) {
                        Some([only]) => mine[*only].push(r),
                        Some([first, more @ ..]) => {
                            for &i in more {
                                mine[i].push(r.clone());
                            }
                            mine[*first].push(r);
                        }
                        // (none: `check_answer` refuses an answer with a record of nobody asked)
                        _ => {}
                    }
                }
                drop(askers);
                for (w, mine) in group.into_iter().zip(mine) {
                    let _ = w.reply.send((Ok(mine), attempts));
                }
            }
        }
    }

    /// One batch with its retries, under the breaker.
    async fn request_batch(&self, kind: SourceKind, ids: Vec<String>) -> BatchResult {
        self.request_batch_for(kind, ids, None).await
    }

    /// [`HttpSources::request_batch`]; with `live`, each retry asks only for the persons
    /// `live` still names (the persons of the waiters still waiting), and none is sent when
    /// it names none. A request shared by several households' verifications must not ask
    /// again about a person whose verification was stopped (a consent revoked): found by
    /// session 22's second attack, a shared request's retry still carried that person.
    async fn request_batch_for(
        &self,
        kind: SourceKind,
        mut ids: Vec<String>,
        live: Option<&(dyn Fn() -> Vec<String> + Sync)>,
    ) -> BatchResult {
        let Some(src) = self.inner.sources.get(&kind) else {
            return (Err(HttpFailure::NotConfigured), 0);
        };
        // a call let through while the breaker is not closed is its one probe
        let probe = src.breaker.state() != BreakerState::Closed;
        if !src.breaker.allow() {
            bump(&src.counters.circuit_rejections, 1);
            return (Err(HttpFailure::CircuitOpen), 0);
        }
        let mut attempts = 0u32;
        let result = loop {
            if attempts > 0
                && let Some(live) = live
            {
                ids = live();
                if ids.is_empty() {
                    break Err(abandoned());
                }
            }
            attempts += 1;
            bump(&src.counters.requests, 1);
            if attempts > 1 {
                bump(&src.counters.retries, 1);
            }
            let (failure, retry) = match self.attempt(kind, src, &ids, live, probe).await {
                Ok(ok) => break Ok(ok),
                Err(e) => e,
            };
            let wait = match retry {
                Retry::No => break Err(failure),
                _ if attempts > src.ep.retries => break Err(failure),
                Retry::After(d) => d,
                Retry::Backoff => full_jitter(&src.ep, attempts),
            };
            tracing::debug!(
                source = kind.name(),
                attempt = attempts,
                code = failure.code(),
                wait_ms = wait.as_millis() as u64,
                "Retrying a source query."
            );
            tokio::time::sleep(wait).await;
        };
        // a call stopped because the breaker opened while it waited, or given up because no
        // one waits for it, tells nothing new
        let given_up = matches!(&result, Err(f) if *f == abandoned());
        if !given_up && !matches!(result, Err(HttpFailure::CircuitOpen)) {
            src.breaker.record(result.is_ok());
        }
        if let Err(f) = &result {
            tracing::info!(
                source = kind.name(),
                code = f.code(),
                attempts,
                "A source query failed."
            );
        }
        (result, attempts)
    }

    /// One HTTP request: send, read, check.
    ///
    /// With `live`, the persons are those `live` names once the request has its slot (a
    /// request waits for one behind others to a slow source: a verification stopped meanwhile
    /// is not asked about; session 22's third attack), and none is sent when it names none.
    async fn attempt(
        &self,
        kind: SourceKind,
        src: &Source,
        ids: &[String],
        live: Option<&(dyn Fn() -> Vec<String> + Sync)>,
        probe: bool,
    ) -> Result<Vec<Record>, (HttpFailure, Retry)> {
        let timeout_ms = src.ep.timeout_ms;
        let request_id = format!("{:032x}", rand::rng().random::<u128>());
        // `timeout_ms` counts from asking for a slot: a call queued behind a hanging source
        // times out on time instead of after the calls ahead of it (unbounded otherwise).
        let limit = Duration::from_millis(timeout_ms);
        let asked_at = Instant::now();
        let _permit = match tokio::time::timeout(limit, src.limit.acquire()).await {
            Err(_) => return Err((HttpFailure::Timeout { timeout_ms }, Retry::Backoff)),
            // The semaphore is never closed; a closed one would mean shutdown.
            Ok(p) => p.map_err(|_| {
                (
                    HttpFailure::Unreachable {
                        detail: "shutting down".into(),
                    },
                    Retry::No,
                )
            })?,
        };
        let now_live = live.map(|l| l());
        let ids: &[String] = match &now_live {
            Some(l) if l.is_empty() => return Err((abandoned(), Retry::No)),
            Some(l) => l,
            None => ids,
        };
        let asked: HashSet<&str> = ids.iter().map(String::as_str).collect();
        let asked = &asked;
        let body = QueryRequest {
            request_id: request_id.clone(),
            id_numbers: ids.to_vec(),
        };
        let left = limit
            .saturating_sub(asked_at.elapsed())
            .max(Duration::from_millis(1));
        // A call let through while the breaker was closed may have waited for its permit
        // while the calls ahead of it opened the breaker: it is not sent (otherwise every
        // queued call still waits its own timeout against a source known to be failing);
        // once the cooldown has passed, only the half-open probe goes out.
        if !probe && src.breaker.state() != BreakerState::Closed {
            bump(&src.counters.circuit_rejections, 1);
            return Err((HttpFailure::CircuitOpen, Retry::No));
        }
        let transport = |e: reqwest::Error| {
            if e.is_timeout() {
                (HttpFailure::Timeout { timeout_ms }, Retry::Backoff)
            } else {
                (
                    HttpFailure::Unreachable {
                        detail: error_chain(&e),
                    },
                    Retry::Backoff,
                )
            }
        };
        let resp = self
            .inner
            .client
            .post(&src.url)
            .timeout(left)
            .json(&body)
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status().as_u16();
        match status {
            200 => {}
            401 | 403 => return Err((HttpFailure::Unauthorized { status }, Retry::No)),
            429 => {
                let retry_after_s = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                let f = HttpFailure::RateLimited { retry_after_s };
                return Err(match retry_after_s {
                    None => (f, Retry::Backoff),
                    Some(s) if s.saturating_mul(1000) <= src.ep.retry_after_max_ms => {
                        (f, Retry::After(Duration::from_secs(s)))
                    }
                    Some(_) => (f, Retry::No),
                });
            }
            502..=504 => return Err((HttpFailure::Status { status }, Retry::Backoff)),
            _ => return Err((HttpFailure::Status { status }, Retry::No)),
        }
        // Read at most MAX_ANSWER_BYTES: found by session 16's attack, one answer padded to
        // 200 MiB was read whole (and twelve sources answer each household at once).
        let too_large = || {
            (
                HttpFailure::Malformed {
                    detail: format!(
                        "the answer is larger than {} MiB, more than any household's records",
                        MAX_ANSWER_BYTES >> 20
                    ),
                },
                Retry::No,
            )
        };
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut resp = resp;
        let mut bytes: Vec<u8> = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(transport)? {
            if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        check_answer(kind, &request_id, asked, &bytes).map_err(|f| (f, Retry::No))
    }
}

/// The failure of a request given up because no verification waits for it any more (each
/// stopped: a consent revoked); never recorded by the breaker.
fn abandoned() -> HttpFailure {
    HttpFailure::Unreachable {
        detail: "no verification waits for this request any more".into(),
    }
}

/// The result of a batch whose task ended without answering (it panicked, or the runtime
/// is shutting down): a failure, never "no records".
fn batch_task_failed() -> BatchResult {
    (
        Err(HttpFailure::Unreachable {
            detail: "batch task failed".into(),
        }),
        0,
    )
}

/// The failure as a [`SourceOutcome`].
fn failed(kind: SourceKind, failure: HttpFailure, attempts: u32) -> SourceOutcome {
    SourceOutcome::Failed(ConnectorError::Http {
        source_name: kind.name(),
        failure,
        attempts,
    })
}

/// Full jitter (AWS Architecture Blog, "Exponential Backoff and Jitter", 2015): uniform in
/// `[0, min(max, base × 2^(attempt−1))]`.
fn full_jitter(ep: &SourceEndpoint, attempt: u32) -> Duration {
    let exp = ep
        .backoff_base_ms
        .saturating_mul(1u64 << (attempt.saturating_sub(1)).min(20));
    let cap = exp.min(ep.backoff_max_ms);
    Duration::from_millis(rand::rng().random_range(0..=cap))
}

/// A transport error and its causes, one line (reqwest's top message alone says little).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s.chars().take(300).collect()
}

/// The largest answer body read from a source, in bytes (16 MiB): a query carries at most
/// [`wire::MAX_IDS_PER_QUERY`] persons, and a household's records of one source are a few
/// KB. A larger answer is `source_malformed`, the source unverified.
pub const MAX_ANSWER_BYTES: usize = 16 << 20;

/// Whether `s` is an 18-character resident ID number in the normalised form (17 digits and a
/// digit or `X`) whose check character holds (GB 11643-1999, ISO 7064 MOD 11-2).
fn normalised_valid_id(s: &str) -> bool {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let b = s.as_bytes();
    if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = b[..17]
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    b[17] == CHECK[(sum % 11) as usize]
}

/// Check a 200 body against the query: shape (no key the schema does not allow, none twice),
/// source, request id, §2 columns, every record's ID number one of those asked (after
/// upper-casing a final `x` and trimming spaces), each row number once; anything else makes
/// the answer `source_malformed`. The body is read straight into column order
/// ([`answer::AnswerSeed`]): no map per record, no copy of a value that is not a column.
fn check_answer(
    kind: SourceKind,
    request_id: &str,
    asked: &HashSet<&str>,
    body: &[u8],
) -> Result<Vec<Record>, HttpFailure> {
    use serde::de::DeserializeSeed;
    let malformed = |detail: String| HttpFailure::Malformed { detail };
    let columns = kind.columns();
    // serde_json's messages can quote a value (an ID number): keep only kind and position.
    let mut de = serde_json::Deserializer::from_slice(body);
    let resp = answer::AnswerSeed { columns }
        .deserialize(&mut de)
        .and_then(|r| de.end().map(|()| r))
        .map_err(|e| {
            let text = e.to_string();
            let own = text
                .strip_prefix(answer::OWN)
                .and_then(|t| t.rsplit_once(" at line "))
                .map(|(m, _)| m.to_string());
            malformed(format!(
                "{} at line {} column {} of {} bytes",
                own.as_deref().unwrap_or(match e.classify() {
                    serde_json::error::Category::Eof => "body ends early",
                    serde_json::error::Category::Syntax => "not JSON",
                    serde_json::error::Category::Data => "not the answer shape",
                    serde_json::error::Category::Io => "unreadable",
                }),
                e.line(),
                e.column(),
                body.len()
            ))
        })?;
    if resp.source != kind.name() {
        return Err(malformed("the answer names another source".into()));
    }
    if resp.request_id != request_id {
        return Err(malformed("the answer is for another request".into()));
    }
    let mut rows_seen: HashMap<u64, usize> = HashMap::with_capacity(resp.records.len());
    let mut records = Vec::with_capacity(resp.records.len());
    for (i, r) in resp.records.into_iter().enumerate() {
        let id = if r
            .id_number
            .bytes()
            .any(|b| b.is_ascii_lowercase() || b.is_ascii_whitespace())
        {
            r.id_number.trim().to_ascii_uppercase()
        } else {
            r.id_number
        };
        if !asked.contains(id.as_str()) {
            // Found by session 16's attacks: a bank that wrote the holder's number in the old
            // 15-digit form, in full-width digits, with a U+3000 or a wrong check character
            // had every record discarded as another person's, and the family read as holding
            // nothing there; then the same with another valid number. A record of a person
            // not asked means the source has mixed persons up: its answer is not used.
            return Err(malformed(format!(
                "records[{i}].id_number is {}: the source answered for a person it was not asked about (or wrote the number in another form), so its answer cannot be placed",
                if normalised_valid_id(&id) {
                    "not one of the numbers asked"
                } else {
                    "not a valid normalised ID number (17 digits and a digit or X, GB 11643-1999 MOD 11-2)"
                }
            )));
        }
        // One source row is one record: a row number twice (an old and a new copy of an
        // account, or two persons' records) is an answer that contradicts itself (found by
        // session 16's second attack: both copies were summed).
        if let Some(first) = rows_seen.insert(r.row, i) {
            return Err(malformed(format!(
                "records[{i}] repeats the row {} of records[{first}]: one source row is one record",
                r.row
            )));
        }
        let mut values = Vec::with_capacity(columns.len());
        for (c, v) in columns.iter().zip(r.values) {
            match v {
                Some(v) => values.push(v.filter(|v| !v.is_empty())),
                None => {
                    return Err(malformed(format!(
                        "records[{i}].values lacks column {}",
                        c.name
                    )));
                }
            }
        }
        records.push(Record {
            row: r.row,
            id_number: id,
            values,
        });
    }
    Ok(records)
}

/// The answer body ([`wire::QueryResponse`]) read for one source's columns: each record's
/// `values` straight into column order, keys that are not a column (`name`) skipped.
mod answer {
    use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

    use crate::schema::ColumnSpec;

    /// The start of hedui's own messages about an answer's shape: they name keys of the
    /// schema, never a value, so [`super::check_answer`] passes them on (serde_json's own
    /// messages can quote a value and are not).
    pub(super) const OWN: &str = "answer shape: ";

    /// What [`AnswerSeed`] reads.
    pub(super) struct Answer {
        pub source: String,
        pub request_id: String,
        pub records: Vec<AnswerRecord>,
    }

    /// One record: `values[i]` is column `i` (`None`: absent; `Some(None)`: `null`).
    pub(super) struct AnswerRecord {
        pub id_number: String,
        pub row: u64,
        pub values: Vec<Option<Option<String>>>,
    }

    pub(super) struct AnswerSeed {
        pub columns: &'static [ColumnSpec],
    }

    impl<'de> DeserializeSeed<'de> for AnswerSeed {
        type Value = Answer;
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Answer, D::Error> {
            d.deserialize_map(self)
        }
    }

    impl<'de> Visitor<'de> for AnswerSeed {
        type Value = Answer;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an answer object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Answer, A::Error> {
            let (mut source, mut request_id, mut records) = (None, None, None);
            while let Some(key) = map.next_key::<Key>()? {
                match key.0 {
                    Some("source") if source.is_none() => {
                        source = Some(map.next_value::<String>()?)
                    }
                    Some("request_id") if request_id.is_none() => {
                        request_id = Some(map.next_value::<String>()?)
                    }
                    Some("records") if records.is_none() => {
                        records = Some(map.next_value_seed(Records {
                            columns: self.columns,
                        })?)
                    }
                    // Found by session 16's attack: a 200 answer carrying an `error` object
                    // or paging (`has_more`, `next_page`) beside `records` read as the whole
                    // answer: no records, or a first page, taken for everything the source
                    // holds. The schema allows no other key: the answer is malformed.
                    _ => {
                        return Err(de::Error::custom(format!(
                            "{OWN}the answer holds a key its schema does not allow, or one twice (only source, request_id and records: an error object, paging or a second copy in a 200 answer is not an answer)"
                        )));
                    }
                }
            }
            Ok(Answer {
                source: source.ok_or_else(|| de::Error::missing_field("source"))?,
                request_id: request_id.ok_or_else(|| de::Error::missing_field("request_id"))?,
                records: records.ok_or_else(|| de::Error::missing_field("records"))?,
            })
        }
    }

    /// An object key: kept only when it is one of the few names the answer uses (no
    /// allocation for the others).
    struct Key(Option<&'static str>);

    impl<'de> de::Deserialize<'de> for Key {
        fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
            struct V;
            impl Visitor<'_> for V {
                type Value = Key;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a key")
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                    Ok(Key([
                        "source",
                        "request_id",
                        "records",
                        "id_number",
                        "row",
                        "values",
                    ]
                    .into_iter()
                    .find(|k| *k == v)))
                }
            }
            d.deserialize_str(V)
        }
    }

    struct Records {
        columns: &'static [ColumnSpec],
    }

    impl<'de> DeserializeSeed<'de> for Records {
        type Value = Vec<AnswerRecord>;
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_seq(self)
        }
    }

    impl<'de> Visitor<'de> for Records {
        type Value = Vec<AnswerRecord>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an array of records")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
            while let Some(r) = seq.next_element_seed(RecordSeed {
                columns: self.columns,
            })? {
                out.push(r);
            }
            Ok(out)
        }
    }

    struct RecordSeed {
        columns: &'static [ColumnSpec],
    }

    impl<'de> DeserializeSeed<'de> for RecordSeed {
        type Value = AnswerRecord;
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<AnswerRecord, D::Error> {
            d.deserialize_map(self)
        }
    }

    impl<'de> Visitor<'de> for RecordSeed {
        type Value = AnswerRecord;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a record object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AnswerRecord, A::Error> {
            let (mut id_number, mut row, mut values) = (None, None, None);
            while let Some(key) = map.next_key::<Key>()? {
                match key.0 {
                    Some("id_number") if id_number.is_none() => {
                        id_number = Some(map.next_value::<String>()?)
                    }
                    Some("row") if row.is_none() => row = Some(map.next_value::<u64>()?),
                    Some("values") if values.is_none() => {
                        values = Some(map.next_value_seed(Values {
                            columns: self.columns,
                        })?)
                    }
                    _ => {
                        return Err(de::Error::custom(format!(
                            "{OWN}a record holds a key its schema does not allow, or one twice (only id_number, row and values)"
                        )));
                    }
                }
            }
            Ok(AnswerRecord {
                id_number: id_number.ok_or_else(|| de::Error::missing_field("id_number"))?,
                row: row.ok_or_else(|| de::Error::missing_field("row"))?,
                values: values.ok_or_else(|| de::Error::missing_field("values"))?,
            })
        }
    }

    struct Values {
        columns: &'static [ColumnSpec],
    }

    impl<'de> DeserializeSeed<'de> for Values {
        type Value = Vec<Option<Option<String>>>;
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
    }

    impl<'de> Visitor<'de> for Values {
        type Value = Vec<Option<Option<String>>>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object of column values")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out: Vec<Option<Option<String>>> = vec![None; self.columns.len()];
            // the other keys (`name`, extra columns), each at most once too
            let mut others: std::collections::HashSet<String> = std::collections::HashSet::new();
            while let Some(col) = map.next_key_seed(Column {
                columns: self.columns,
            })? {
                let col = match col {
                    ColumnKey::Known(i) => Some(i),
                    ColumnKey::Other(k) => {
                        if !others.insert(k) {
                            return Err(de::Error::custom(format!(
                                "{OWN}a record's values name a key twice"
                            )));
                        }
                        None
                    }
                };
                match col {
                    Some(i) if out[i].is_some() => {
                        return Err(de::Error::custom(format!(
                            "{OWN}a record's values name the column {} twice",
                            self.columns[i].name
                        )));
                    }
                    Some(i) => out[i] = Some(map.next_value::<Option<String>>()?),
                    None => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(out)
        }
    }

    /// A `values` key: a §2 column (its index) or another name.
    enum ColumnKey {
        Known(usize),
        Other(String),
    }

    /// A `values` key, read as a [`ColumnKey`].
    struct Column {
        columns: &'static [ColumnSpec],
    }

    impl<'de> DeserializeSeed<'de> for Column {
        type Value = ColumnKey;
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_str(self)
        }
    }

    impl Visitor<'_> for Column {
        type Value = ColumnKey;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a column name")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<ColumnKey, E> {
            Ok(match self.columns.iter().position(|c| c.name == v) {
                Some(i) => ColumnKey::Known(i),
                None => ColumnKey::Other(v.to_string()),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    fn tax_values() -> serde_json::Value {
        serde_json::json!({"name": "王秀兰", "tax_year": "2025", "income_type": "wages",
                           "gross_income": "36000.50", "tax_paid": null})
    }

    #[test]
    fn a_good_answer_becomes_records_in_column_order() {
        let asked: HashSet<&str> = ["62050319870315123X"].into_iter().collect();
        let b = body(
            serde_json::json!({"source": "tax", "request_id": "r1", "records": [
            {"id_number": "62050319870315123x", "row": 7, "values": tax_values()}]}),
        );
        let recs = check_answer(SourceKind::Tax, "r1", &asked, &b).unwrap();
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].row, 7);
        assert_eq!(recs[0].id_number, "62050319870315123X");
        assert_eq!(
            recs[0].values,
            vec![
                Some("2025".to_string()),
                Some("wages".to_string()),
                Some("36000.50".to_string()),
                None
            ]
        );
    }

    /// Found by session 16's second attack: the asked person's records under another valid
    /// number were discarded, and the person read as holding nothing.
    #[test]
    fn a_record_of_a_person_not_asked_or_a_row_twice_makes_the_answer_malformed() {
        let asked: HashSet<&str> = ["620503198703151234"].into_iter().collect();
        let b = body(
            serde_json::json!({"source": "tax", "request_id": "r1", "records": [
            {"id_number": "620503196207080319", "row": 1, "values": tax_values()},
            {"id_number": "620503198703151234", "row": 2, "values": tax_values()}]}),
        );
        let e = check_answer(SourceKind::Tax, "r1", &asked, &b).unwrap_err();
        assert_eq!(e.code(), "source_malformed");
        assert!(
            e.to_string()
                .contains("records[0].id_number is not one of the numbers asked"),
            "{e}"
        );
        // one row number on two records, the same person's or not
        let mut other = tax_values();
        other["gross_income"] = serde_json::json!("1.00");
        let b = body(
            serde_json::json!({"source": "tax", "request_id": "r1", "records": [
            {"id_number": "620503198703151234", "row": 2, "values": tax_values()},
            {"id_number": "620503198703151234", "row": 2, "values": other}]}),
        );
        let e = check_answer(SourceKind::Tax, "r1", &asked, &b).unwrap_err();
        assert!(
            e.to_string()
                .contains("records[1] repeats the row 2 of records[0]"),
            "{e}"
        );
        // a key twice: the last one would win
        for twice in [
            r#"{"source":"tax","request_id":"r1","records":[{"id_number":"620503198703151234","id_number":"620503196207080319","row":2,"values":{"name":null,"tax_year":"2025","income_type":"wages","gross_income":"1.00","tax_paid":null}}]}"#,
            r#"{"source":"tax","request_id":"r1","records":[{"id_number":"620503198703151234","row":2,"row":3,"values":{"name":null,"tax_year":"2025","income_type":"wages","gross_income":"1.00","tax_paid":null}}]}"#,
            r#"{"source":"tax","source":"bank","request_id":"r1","records":[]}"#,
            r#"{"source":"tax","request_id":"r0","request_id":"r1","records":[]}"#,
        ] {
            let e = check_answer(SourceKind::Tax, "r1", &asked, twice.as_bytes()).unwrap_err();
            assert!(e.to_string().contains("or one twice"), "{e}");
        }
    }

    #[test]
    fn a_truncated_or_wrong_body_is_malformed_and_quotes_no_value() {
        let asked: HashSet<&str> = ["620503198703151234"].into_iter().collect();
        let good = body(
            serde_json::json!({"source": "tax", "request_id": "r1", "records": [
            {"id_number": "620503198703151234", "row": 2, "values": tax_values()}]}),
        );
        let cut = &good[..good.len() / 2];
        let e = check_answer(SourceKind::Tax, "r1", &asked, cut).unwrap_err();
        assert_eq!(e.code(), "source_malformed");
        assert!(e.to_string().contains("body ends early"), "{e}");
        let wrong_type = body(
            serde_json::json!({"source": "tax", "request_id": "r1", "records": [
            {"id_number": "620503198703151234", "row": "620503198703151234", "values": {}}]}),
        );
        let e = check_answer(SourceKind::Tax, "r1", &asked, &wrong_type).unwrap_err();
        assert!(!e.to_string().contains("620503"), "{e}");
        let lacking = body(
            serde_json::json!({"source": "tax", "request_id": "r1", "records": [
            {"id_number": "620503198703151234", "row": 2, "values": {"tax_year": "2025"}}]}),
        );
        let e = check_answer(SourceKind::Tax, "r1", &asked, &lacking).unwrap_err();
        assert_eq!(
            e.to_string(),
            "malformed answer: records[0].values lacks column income_type"
        );
        let other = body(serde_json::json!({"source": "bank", "request_id": "r1", "records": []}));
        assert!(check_answer(SourceKind::Tax, "r1", &asked, &other).is_err());
        let stale = body(serde_json::json!({"source": "tax", "request_id": "r0", "records": []}));
        assert!(check_answer(SourceKind::Tax, "r1", &asked, &stale).is_err());
        let no_records = body(serde_json::json!({"source": "tax", "request_id": "r1"}));
        assert!(check_answer(SourceKind::Tax, "r1", &asked, &no_records).is_err());
    }

    #[test]
    fn a_record_whose_id_number_is_of_another_form_or_invalid_makes_the_answer_malformed() {
        let asked: HashSet<&str> = ["620503198703151234"].into_iter().collect();
        for id in [
            "620503870315123",                      // the old 15-digit form
            "６２０５０３１９８７０３１５１２３４", // full-width digits
            "620503198703151234\u{3000}",
            "620503198703151235", // the check character fails
            "62050319870315123",
        ] {
            let b = body(
                serde_json::json!({"source": "tax", "request_id": "r1", "records": [
                {"id_number": id, "row": 2, "values": tax_values()}]}),
            );
            let e = check_answer(SourceKind::Tax, "r1", &asked, &b).unwrap_err();
            assert_eq!(e.code(), "source_malformed", "{id}");
            assert!(
                e.to_string()
                    .contains("records[0].id_number is not a valid normalised ID number"),
                "{e}"
            );
            assert!(!e.to_string().contains("198703"), "{e}");
        }
    }

    #[test]
    fn an_error_object_paging_or_an_unknown_key_in_a_200_answer_makes_it_malformed() {
        let asked: HashSet<&str> = ["620503198703151234"].into_iter().collect();
        let rec = serde_json::json!({"id_number": "620503198703151234", "row": 2, "values": tax_values()});
        let cases = [
            serde_json::json!({"source": "tax", "request_id": "r1", "records": [],
                               "error": {"code": "source_error", "message": "busy"}}),
            serde_json::json!({"source": "tax", "request_id": "r1", "records": [rec.clone()],
                               "has_more": true, "next_page": 2}),
            serde_json::json!({"source": "tax", "request_id": "r1", "records": [
                {"id_number": "620503198703151234", "row": 2, "values": tax_values(), "page": 1}]}),
        ];
        for c in cases {
            let e = check_answer(SourceKind::Tax, "r1", &asked, &body(c.clone())).unwrap_err();
            assert_eq!(e.code(), "source_malformed", "{c}");
            assert!(e.to_string().contains("its schema does not allow"), "{e}");
        }
        // a column given twice (the text, not a JSON value: serde_json would keep one)
        let twice = br#"{"source":"tax","request_id":"r1","records":[{"id_number":"620503198703151234","row":2,"values":{"name":null,"tax_year":"2025","tax_year":"2024","income_type":"wages","gross_income":"1.00","tax_paid":null}}]}"#;
        let e = check_answer(SourceKind::Tax, "r1", &asked, twice).unwrap_err();
        assert!(
            e.to_string()
                .contains("values name the column tax_year twice"),
            "{e}"
        );
        // `name` or another key twice in `values` (found by session 16's third attack)
        let name_twice = br#"{"source":"tax","request_id":"r1","records":[{"id_number":"620503198703151234","row":2,"values":{"name":"a","name":"b","tax_year":"2025","income_type":"wages","gross_income":"1.00","tax_paid":null}}]}"#;
        let e = check_answer(SourceKind::Tax, "r1", &asked, name_twice).unwrap_err();
        assert!(e.to_string().contains("values name a key twice"), "{e}");
        // `records` twice: the second would replace the first
        let two = br#"{"source":"tax","request_id":"r1","records":[],"records":[]}"#;
        assert!(check_answer(SourceKind::Tax, "r1", &asked, two).is_err());
    }

    #[test]
    fn full_jitter_stays_under_the_exponential_cap() {
        let mut ep = SourceEndpoint::new(SourceKind::Tax, "https://x");
        ep.backoff_base_ms = 10;
        ep.backoff_max_ms = 35;
        for _ in 0..200 {
            assert!(full_jitter(&ep, 1) <= Duration::from_millis(10));
            assert!(full_jitter(&ep, 2) <= Duration::from_millis(20));
            assert!(full_jitter(&ep, 30) <= Duration::from_millis(35));
        }
    }
}
