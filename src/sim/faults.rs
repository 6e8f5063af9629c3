//! The sim's per-source behaviour: latency distribution and fault rates, from a TOML file,
//! drawn from a seeded RNG per source so that a drill is reproducible (the same config and
//! the same sequence of requests to a source give the same outcomes and delays).
//!
//! ```toml
//! seed = 7                      # default 20261101
//! [defaults]                    # every source not listed below (same fields)
//! latency = { fixed_ms = 20, jitter_ms = 5 }     # 20 ms + uniform 0..5 ms
//! [sources.tax]
//! latency = { p50_ms = 30, p99_ms = 400 }        # log-normal through these percentiles
//! error_rate = 0.02             # answered with `error_status` (503)
//! hang_rate = 0.01              # held for `hang_ms`, then answered (the client times out)
//! slow_rate = 0.05              # held for `slow_ms` (default 500) more, then answered
//! rate_limit_rate = 0.05        # 429 with Retry-After: `retry_after_s`
//! malformed_rate = 0.01         # a 200 whose body is cut in half
//! empty_rate = 0.01             # a 200 with no records
//! stray_rate = 0.01             # the records plus one of a person not asked
//! unauthorized = false          # true: every request 401 (a source that rejects everyone)
//! redirect_to = "http://…"      # where a scripted `redirect` (307) points (default a
//!                               # plain-HTTP address on 127.0.0.1 port 9)
//! script = ["rate_limited", "ok"]  # outcomes of the first requests, before the rates apply
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

use hedui_connectors::SourceKind;

/// The sim's config file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    /// Seed of every source's RNG (each source mixes in its own index).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Behaviour of sources without their own entry.
    #[serde(default)]
    pub defaults: SourceFaults,
    /// Behaviour per §2 source name.
    #[serde(default)]
    pub sources: BTreeMap<SourceKind, SourceFaults>,
}

fn default_seed() -> u64 {
    20_261_101
}

/// One source's behaviour. Rates are probabilities per request, checked in the order
/// error, hang, slow, rate limit, malformed, empty, stray (their sum must not exceed 1).
#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SourceFaults {
    /// Delay before every answer (but 401).
    #[serde(default)]
    pub latency: Latency,
    /// Share of requests answered with `error_status`.
    #[serde(default)]
    pub error_rate: f64,
    /// Status of those answers (default 503).
    #[serde(default)]
    pub error_status: Option<u16>,
    /// Share of requests held for `hang_ms` before the answer.
    #[serde(default)]
    pub hang_rate: f64,
    /// How long a hung request is held (default 60000 ms).
    #[serde(default)]
    pub hang_ms: Option<u64>,
    /// Share of requests answered `slow_ms` late (a slow but working source).
    #[serde(default)]
    pub slow_rate: f64,
    /// The extra delay of a slow answer (default 500 ms).
    #[serde(default)]
    pub slow_ms: Option<u64>,
    /// Share of requests answered 429.
    #[serde(default)]
    pub rate_limit_rate: f64,
    /// The `Retry-After` of a 429, in seconds (default 1).
    #[serde(default)]
    pub retry_after_s: Option<u64>,
    /// Share of requests answered with a truncated body.
    #[serde(default)]
    pub malformed_rate: f64,
    /// Share of requests answered with no records.
    #[serde(default)]
    pub empty_rate: f64,
    /// Share of requests answered with one extra record of a person not asked.
    #[serde(default)]
    pub stray_rate: f64,
    /// Refuse every request with 401.
    #[serde(default)]
    pub unauthorized: bool,
    /// The `Location` of a `redirect` outcome (script only; default
    /// `http://127.0.0.1:9/v1/sources/query`, plain HTTP).
    #[serde(default)]
    pub redirect_to: Option<String>,
    /// Outcomes of the first requests, in order; then the rates apply.
    #[serde(default)]
    pub script: Vec<Outcome>,
}

/// Latency: `fixed_ms` + uniform `[0, jitter_ms]`, or log-normal through `p50_ms` and
/// `p99_ms` when both are given (then `fixed_ms`/`jitter_ms` are added on top).
#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Latency {
    /// Constant part, ms.
    #[serde(default)]
    pub fixed_ms: f64,
    /// Uniform jitter bound, ms.
    #[serde(default)]
    pub jitter_ms: f64,
    /// Median of the log-normal part, ms.
    #[serde(default)]
    pub p50_ms: Option<f64>,
    /// 99th percentile of the log-normal part, ms.
    #[serde(default)]
    pub p99_ms: Option<f64>,
}

/// What the sim does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The records.
    Ok,
    /// `error_status` (503) with an error body.
    Error,
    /// Held for `hang_ms`, then the records.
    Hang,
    /// Held for `slow_ms`, then the records.
    Slow,
    /// 429 with `Retry-After`.
    RateLimited,
    /// A 200 whose body is cut in half.
    Malformed,
    /// A 200 with no records.
    Empty,
    /// The records plus one record of a person not asked.
    Stray,
    /// 401.
    Unauthorized,
    /// 307 to `redirect_to` (a gateway that sends the client elsewhere; script only).
    Redirect,
}

impl Outcome {
    /// Every outcome, for the stats.
    pub const ALL: [Outcome; 10] = [
        Outcome::Ok,
        Outcome::Error,
        Outcome::Hang,
        Outcome::Slow,
        Outcome::RateLimited,
        Outcome::Malformed,
        Outcome::Empty,
        Outcome::Stray,
        Outcome::Unauthorized,
        Outcome::Redirect,
    ];

    /// The snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Hang => "hang",
            Outcome::Slow => "slow",
            Outcome::RateLimited => "rate_limited",
            Outcome::Malformed => "malformed",
            Outcome::Empty => "empty",
            Outcome::Stray => "stray",
            Outcome::Unauthorized => "unauthorized",
            Outcome::Redirect => "redirect",
        }
    }
}

impl SimConfig {
    /// Read and check a config file.
    ///
    /// # Errors
    /// A sentence naming the file and the field at fault.
    pub fn load(path: &std::path::Path) -> Result<SimConfig, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let cfg: SimConfig =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        cfg.validate()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(cfg)
    }

    /// Rates in [0, 1] summing to at most 1, percentiles ordered, latencies not negative.
    ///
    /// # Errors
    /// The first problem, naming the field.
    pub fn validate(&self) -> Result<(), String> {
        let entries = std::iter::once(("defaults".to_string(), &self.defaults)).chain(
            self.sources
                .iter()
                .map(|(k, f)| (format!("sources.{}", k.name()), f)),
        );
        for (at, f) in entries {
            let rates = [
                ("error_rate", f.error_rate),
                ("hang_rate", f.hang_rate),
                ("slow_rate", f.slow_rate),
                ("rate_limit_rate", f.rate_limit_rate),
                ("malformed_rate", f.malformed_rate),
                ("empty_rate", f.empty_rate),
                ("stray_rate", f.stray_rate),
            ];
            for (name, r) in rates {
                if !(0.0..=1.0).contains(&r) {
                    return Err(format!("{at}.{name}: {r} is not between 0 and 1"));
                }
            }
            let sum: f64 = rates.iter().map(|(_, r)| r).sum();
            if sum > 1.0 + 1e-9 {
                return Err(format!("{at}: the rates add up to {sum}, more than 1"));
            }
            let l = &f.latency;
            if l.fixed_ms < 0.0 || l.jitter_ms < 0.0 {
                return Err(format!("{at}.latency: negative"));
            }
            match (l.p50_ms, l.p99_ms) {
                (Some(p50), Some(p99)) if p50 > 0.0 && p99 >= p50 => {}
                (None, None) => {}
                _ => {
                    return Err(format!(
                        "{at}.latency: p50_ms and p99_ms go together, 0 < p50_ms <= p99_ms"
                    ));
                }
            }
            if let Some(s) = f.error_status
                && !(400..=599).contains(&s)
            {
                return Err(format!("{at}.error_status: {s} is not an error status"));
            }
        }
        Ok(())
    }

    /// The behaviour of one source.
    pub fn faults(&self, kind: SourceKind) -> &SourceFaults {
        self.sources.get(&kind).unwrap_or(&self.defaults)
    }
}

/// A source's behaviour with its RNG and script position.
#[derive(Debug)]
pub struct FaultState {
    faults: SourceFaults,
    rng: ChaCha8Rng,
    scripted: usize,
}

/// The decision for one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    /// What to do.
    pub outcome: Outcome,
    /// Delay before answering.
    pub delay: Duration,
}

/// z of the 99th percentile of the standard normal distribution.
const Z99: f64 = 2.326_347_874;

impl FaultState {
    /// The state of source number `index` (its position in `SourceKind::ALL`).
    pub fn new(faults: SourceFaults, seed: u64, index: usize) -> FaultState {
        let mix = seed ^ (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        FaultState {
            faults,
            rng: ChaCha8Rng::seed_from_u64(mix),
            scripted: 0,
        }
    }

    /// The status of an `Error` answer.
    pub fn error_status(&self) -> u16 {
        self.faults.error_status.unwrap_or(503)
    }

    /// The `Retry-After` of a 429, seconds.
    pub fn retry_after_s(&self) -> u64 {
        self.faults.retry_after_s.unwrap_or(1)
    }

    /// The `Location` of a `redirect`.
    pub fn redirect_to(&self) -> String {
        self.faults
            .redirect_to
            .clone()
            .unwrap_or_else(|| "http://127.0.0.1:9/v1/sources/query".into())
    }

    /// How long a hung request is held.
    pub fn hang(&self) -> Duration {
        Duration::from_millis(self.faults.hang_ms.unwrap_or(60_000))
    }

    /// The extra delay of a slow answer.
    pub fn slow(&self) -> Duration {
        Duration::from_millis(self.faults.slow_ms.unwrap_or(500))
    }

    /// Decide the next request's fate. Always draws the same number of random values, so a
    /// script does not shift the sequence that follows it.
    pub fn decide(&mut self) -> Decision {
        let u: f64 = self.rng.random();
        let delay = self.latency();
        let f = &self.faults;
        let outcome = if f.unauthorized {
            Outcome::Unauthorized
        } else if let Some(o) = f.script.get(self.scripted) {
            self.scripted += 1;
            *o
        } else {
            let mut acc = 0.0;
            let mut pick = Outcome::Ok;
            for (rate, o) in [
                (f.error_rate, Outcome::Error),
                (f.hang_rate, Outcome::Hang),
                (f.slow_rate, Outcome::Slow),
                (f.rate_limit_rate, Outcome::RateLimited),
                (f.malformed_rate, Outcome::Malformed),
                (f.empty_rate, Outcome::Empty),
                (f.stray_rate, Outcome::Stray),
            ] {
                acc += rate;
                if u < acc {
                    pick = o;
                    break;
                }
            }
            pick
        };
        Decision {
            outcome,
            delay: if outcome == Outcome::Unauthorized {
                Duration::ZERO
            } else {
                delay
            },
        }
    }

    fn latency(&mut self) -> Duration {
        let l = &self.faults.latency;
        let (fixed, jitter, p50, p99) = (l.fixed_ms, l.jitter_ms, l.p50_ms, l.p99_ms);
        let mut ms = fixed;
        let uj: f64 = self.rng.random();
        ms += uj * jitter;
        // Box-Muller for one standard normal draw.
        let (u1, u2): (f64, f64) = (self.rng.random(), self.rng.random());
        if let (Some(p50), Some(p99)) = (p50, p99) {
            let z = (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            let sigma = (p99.ln() - p50.ln()) / Z99;
            ms += (p50.ln() + sigma * z).exp();
        }
        Duration::from_secs_f64(ms.max(0.0) / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_reads_from_toml_and_unknown_fields_are_refused() {
        let cfg: SimConfig = toml::from_str(
            r#"
            seed = 3
            [defaults]
            latency = { fixed_ms = 20 }
            [sources.tax]
            error_rate = 0.5
            script = ["rate_limited", "ok"]
            "#,
        )
        .unwrap();
        assert_eq!(cfg.seed, 3);
        assert_eq!(cfg.faults(SourceKind::Bank).latency.fixed_ms, 20.0);
        assert_eq!(cfg.faults(SourceKind::Tax).error_rate, 0.5);
        assert_eq!(cfg.validate(), Ok(()));
        assert!(toml::from_str::<SimConfig>("[defaults]\nerror_rat = 0.1").is_err());
        let bad: SimConfig =
            toml::from_str("[sources.bank]\nerror_rate = 0.7\nempty_rate = 0.4").unwrap();
        assert_eq!(
            bad.validate(),
            Err("sources.bank: the rates add up to 1.1, more than 1".into())
        );
    }

    #[test]
    fn the_script_comes_first_then_the_rates() {
        let f = SourceFaults {
            error_rate: 1.0,
            script: vec![Outcome::RateLimited, Outcome::Ok],
            ..Default::default()
        };
        let mut s = FaultState::new(f, 1, 0);
        let got: Vec<Outcome> = (0..4).map(|_| s.decide().outcome).collect();
        assert_eq!(
            got,
            vec![
                Outcome::RateLimited,
                Outcome::Ok,
                Outcome::Error,
                Outcome::Error
            ]
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_drill() {
        let f = SourceFaults {
            error_rate: 0.3,
            empty_rate: 0.2,
            latency: Latency {
                p50_ms: Some(20.0),
                p99_ms: Some(200.0),
                ..Default::default()
            },
            ..Default::default()
        };
        let run = |seed| {
            let mut s = FaultState::new(f.clone(), seed, 4);
            (0..50).map(|_| s.decide()).collect::<Vec<_>>()
        };
        assert_eq!(run(9), run(9));
        assert_ne!(run(9), run(10));
    }

    #[test]
    fn log_normal_latency_has_the_configured_median_and_p99() {
        let f = SourceFaults {
            latency: Latency {
                p50_ms: Some(20.0),
                p99_ms: Some(200.0),
                ..Default::default()
            },
            ..Default::default()
        };
        let mut s = FaultState::new(f, 5, 0);
        let mut ms: Vec<f64> = (0..20_000)
            .map(|_| s.decide().delay.as_secs_f64() * 1000.0)
            .collect();
        ms.sort_by(|a, b| a.total_cmp(b));
        let p50 = ms[10_000];
        let p99 = ms[19_800];
        assert!((18.0..22.0).contains(&p50), "p50 {p50}");
        assert!((170.0..235.0).contains(&p99), "p99 {p99}");
    }

    #[test]
    fn rates_give_their_shares() {
        let f = SourceFaults {
            error_rate: 0.1,
            rate_limit_rate: 0.2,
            ..Default::default()
        };
        let mut s = FaultState::new(f, 11, 2);
        let n = 10_000;
        let outs: Vec<Outcome> = (0..n).map(|_| s.decide().outcome).collect();
        let share = |o| outs.iter().filter(|x| **x == o).count() as f64 / n as f64;
        assert!((share(Outcome::Error) - 0.1).abs() < 0.015);
        assert!((share(Outcome::RateLimited) - 0.2).abs() < 0.015);
        assert!((share(Outcome::Ok) - 0.7).abs() < 0.015);
    }
}
