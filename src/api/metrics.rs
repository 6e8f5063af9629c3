//! `GET /v1/metrics`: Prometheus text exposition (format 0.0.4). Counters and histograms
//! kept in memory; labels are route templates, status codes, source names and outcome
//! codes only — never an ID number, a name or a household id.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Histogram bucket bounds, seconds.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, v: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if v <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }
    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {}",
                self.counts[i]
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
    verification: Histogram,
    source_outcomes: BTreeMap<(String, String), u64>,
    source_latency: BTreeMap<String, Histogram>,
    determinations: BTreeMap<String, u64>,
    refusals: BTreeMap<String, u64>,
}

/// The service's metrics.
#[derive(Default)]
pub struct Metrics(Mutex<Inner>);

impl Metrics {
    fn with(&self, f: impl FnOnce(&mut Inner)) {
        if let Ok(mut g) = self.0.lock() {
            f(&mut g);
        }
    }
    /// One HTTP request: method, route template, status, seconds.
    pub fn request(&self, method: &str, route: &str, status: u16, secs: f64) {
        self.with(|m| {
            *m.requests
                .entry((method.to_string(), route.to_string(), status))
                .or_default() += 1;
            m.latency
                .entry(route.to_string())
                .or_default()
                .observe(secs);
        });
    }
    /// One verification built: seconds from start of fan-out to sealed report.
    pub fn verification(&self, determination: &str, secs: f64) {
        self.with(|m| {
            m.verification.observe(secs);
            *m.determinations
                .entry(determination.to_string())
                .or_default() += 1;
        });
    }
    /// One source call: outcome code (`answered`, `failed:timeout`, …) and seconds.
    pub fn source(&self, source: &str, outcome: &str, secs: f64) {
        self.with(|m| {
            *m.source_outcomes
                .entry((source.to_string(), outcome.to_string()))
                .or_default() += 1;
            m.source_latency
                .entry(source.to_string())
                .or_default()
                .observe(secs);
        });
    }
    /// One refused request, by code.
    pub fn refusal(&self, code: &str) {
        self.with(|m| *m.refusals.entry(code.to_string()).or_default() += 1);
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let Ok(m) = self.0.lock() else { return out };
        out.push_str("# HELP hedui_http_requests_total HTTP requests by method, route and status.\n# TYPE hedui_http_requests_total counter\n");
        for ((method, route, status), n) in &m.requests {
            let _ = writeln!(
                out,
                "hedui_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str("# HELP hedui_http_request_duration_seconds Request latency by route.\n# TYPE hedui_http_request_duration_seconds histogram\n");
        for (route, h) in &m.latency {
            h.write(
                &mut out,
                "hedui_http_request_duration_seconds",
                &format!("route=\"{route}\""),
            );
        }
        out.push_str("# HELP hedui_verification_duration_seconds Fan-out to sealed report.\n# TYPE hedui_verification_duration_seconds histogram\n");
        m.verification
            .write(&mut out, "hedui_verification_duration_seconds", "");
        out.push_str("# HELP hedui_verifications_total Verifications by determination.\n# TYPE hedui_verifications_total counter\n");
        for (d, n) in &m.determinations {
            let _ = writeln!(
                out,
                "hedui_verifications_total{{determination=\"{d}\"}} {n}"
            );
        }
        out.push_str("# HELP hedui_source_requests_total Source calls by source and outcome.\n# TYPE hedui_source_requests_total counter\n");
        for ((s, o), n) in &m.source_outcomes {
            let _ = writeln!(
                out,
                "hedui_source_requests_total{{source=\"{s}\",outcome=\"{o}\"}} {n}"
            );
        }
        out.push_str("# HELP hedui_source_duration_seconds Source call latency.\n# TYPE hedui_source_duration_seconds histogram\n");
        for (s, h) in &m.source_latency {
            h.write(
                &mut out,
                "hedui_source_duration_seconds",
                &format!("source=\"{s}\""),
            );
        }
        out.push_str("# HELP hedui_refusals_total Refused requests by code.\n# TYPE hedui_refusals_total counter\n");
        for (c, n) in &m.refusals {
            let _ = writeln!(out, "hedui_refusals_total{{code=\"{c}\"}} {n}");
        }
        out
    }
}
