//! The department sources as the service reaches them: one call per source for the whole
//! household, all sources at once ([`Sources::fan_out`]), so a verification takes about
//! the slowest source, not the sum. The HTTP transport (mutual TLS, retries with backoff,
//! concurrency limit, circuit breaker, moka cache keyed by HMAC of the ID number) is
//! [`hedui_connectors::http::HttpSources`]; this adapter turns its answers into the
//! engine's [`SourceAnswer`].
//!
//! Config: the `[sources]` table of the service config is the transport's
//! [`HttpSourcesConfig`] (`cache_secret`, `[sources.tls]`, `[[sources.sources]]`); its TLS
//! paths resolve against the config file's folder.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use hedui_connectors::http::{HttpSources, HttpSourcesConfig};
use hedui_connectors::{RecordSet, SourceKind, SourceOutcome};

use crate::verify::SourceAnswer;

/// The configured sources.
pub struct Sources {
    http: Option<HttpSources>,
    kinds: Vec<SourceKind>,
}

fn resolve(base: &Path, p: &Path) -> std::path::PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

impl Sources {
    /// Build from the config's `[sources]` table (TLS paths relative to `base`). An empty
    /// table configures no source (every report then says `unverified` for all 12).
    ///
    /// # Errors
    /// A message naming the key that is wrong.
    pub fn from_config(
        table: &toml::Table,
        base: &Path,
        _secret: &[u8],
    ) -> Result<Sources, String> {
        if table.is_empty() {
            return Ok(Sources {
                http: None,
                kinds: Vec::new(),
            });
        }
        let mut cfg: HttpSourcesConfig = toml::Value::Table(table.clone())
            .try_into()
            .map_err(|e: toml::de::Error| e.to_string().trim().to_string())?;
        cfg.validate().map_err(|errs| errs.join("; "))?;
        cfg.tls.ca = resolve(base, &cfg.tls.ca);
        cfg.tls.cert = resolve(base, &cfg.tls.cert);
        cfg.tls.key = resolve(base, &cfg.tls.key);
        let http = HttpSources::new(&cfg).map_err(|e| e.to_string())?;
        let mut kinds = http.sources().to_vec();
        kinds.sort();
        Ok(Sources {
            http: Some(http),
            kinds,
        })
    }

    /// The sources configured (a source not configured is `unverified` in every report).
    pub fn kinds(&self) -> &[SourceKind] {
        &self.kinds
    }

    /// Ask one source about these normalised ID numbers.
    pub async fn fetch(&self, kind: SourceKind, ids: &[String]) -> SourceAnswer {
        let Some(http) = &self.http else {
            return not_configured(kind);
        };
        answer_of(kind, http.fetch(kind, ids).await)
    }

    /// Open the connections to the sources before the first verification (see
    /// [`HttpSources::warm_up`]); waits at most `limit`.
    pub async fn warm_up(&self, limit: std::time::Duration) -> usize {
        match &self.http {
            Some(h) => h.warm_up(limit).await,
            None => 0,
        }
    }

    /// Empty every source's cache (benchmarks: a cold run after a warm one).
    pub fn clear_caches(&self) {
        if let Some(h) = &self.http {
            h.clear_caches();
        }
    }

    /// Ask every configured source at once; returns each source's answer, seconds, and per
    /// ID number of `ids` (in its order) whether that person's answer came from the cache
    /// (no request sent for them: what their audit row says). The calls run concurrently
    /// inside the caller's task (one task per verification instead of one per source: under
    /// load the spawns and wake-ups of twelve tasks per household cost more than polling
    /// twelve futures).
    pub async fn fan_out(
        self: &Arc<Self>,
        ids: Arc<Vec<String>>,
    ) -> Vec<(SourceKind, SourceAnswer, f64, Vec<bool>)> {
        // the persons normalised and keyed once for all sources
        let persons = self.http.as_ref().map(|h| h.persons(&ids));
        let persons = persons.as_ref();
        let ids = &ids;
        let calls = self.kinds.iter().map(|&kind| async move {
            let t = Instant::now();
            let (a, cached) = match (&self.http, persons) {
                (Some(http), Some(p)) => {
                    let a = http.fetch_persons(kind, p).await;
                    let cached = ids
                        .iter()
                        .map(|id| {
                            p.index_of(id)
                                .and_then(|i| a.cached.get(i).copied())
                                .unwrap_or(false)
                        })
                        .collect();
                    (answer_of(kind, a), cached)
                }
                _ => (not_configured(kind), vec![false; ids.len()]),
            };
            (kind, a, t.elapsed().as_secs_f64(), cached)
        });
        let mut out = join_all(calls.collect()).await;
        out.sort_by_key(|(k, _, _, _)| *k);
        out
    }
}

/// The answer for a source that has no connection configured.
fn not_configured(kind: SourceKind) -> SourceAnswer {
    SourceAnswer::Failed {
        code: "source_not_configured".into(),
        message: format!("no connection to {} is configured", kind.name()),
    }
}

/// The transport's answer as the engine's.
fn answer_of(kind: SourceKind, a: hedui_connectors::http::SourceAnswer) -> SourceAnswer {
    let age_s = a.age_s();
    match a.outcome {
        SourceOutcome::Records(records) => SourceAnswer::Answered { records, age_s },
        SourceOutcome::NoRecords => SourceAnswer::Answered {
            records: RecordSet {
                columns: kind.columns().iter().map(|c| c.name).collect(),
                records: Vec::new(),
            },
            age_s,
        },
        SourceOutcome::Failed(e) => SourceAnswer::Failed {
            code: e.code().to_string(),
            message: e.to_string(),
        },
    }
}

/// Run the futures concurrently in the current task; their outputs in the order given. A
/// wake-up polls the futures not yet finished (a dozen at most here).
async fn join_all<F: std::future::Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut futs: Vec<std::pin::Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    let mut left = futs.len();
    std::future::poll_fn(|cx| {
        for (f, o) in futs.iter_mut().zip(out.iter_mut()) {
            if o.is_none()
                && let std::task::Poll::Ready(v) = f.as_mut().poll(cx)
            {
                *o = Some(v);
                left -= 1;
            }
        }
        if left == 0 {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn join_all_runs_the_futures_concurrently_and_keeps_their_order() {
        let t = Instant::now();
        let futs: Vec<_> = [30u64, 10, 20]
            .into_iter()
            .map(|ms| async move {
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                ms
            })
            .collect();
        assert_eq!(join_all(futs).await, vec![30, 10, 20]);
        let took = t.elapsed();
        assert!(took < std::time::Duration::from_millis(55), "{took:?}");
    }
}
