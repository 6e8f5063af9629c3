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

/// Finer bounds for hedui's own overhead (goal: under 5 ms at p99), seconds.
const OVERHEAD_BUCKETS: [f64; 26] = [
    0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.0025, 0.003, 0.004, 0.005, 0.006, 0.0075,
    0.01, 0.0125, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 5.0,
];

struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::with_bounds(&BUCKETS)
    }
}

impl Histogram {
    fn with_bounds(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }
    fn observe(&mut self, v: f64) {
        for (i, b) in self.bounds.iter().enumerate() {
            if v <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }
    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, b) in self.bounds.iter().enumerate() {
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

struct Inner {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
    verification: Histogram,
    overhead: Histogram,
    source_wait: Histogram,
    phases: BTreeMap<&'static str, Histogram>,
    source_outcomes: BTreeMap<(String, String), u64>,
    source_latency: BTreeMap<String, Histogram>,
    determinations: BTreeMap<String, u64>,
    refusals: BTreeMap<String, u64>,
}

impl Default for Inner {
    fn default() -> Self {
        Inner {
            requests: BTreeMap::new(),
            latency: BTreeMap::new(),
            verification: Histogram::default(),
            overhead: Histogram::with_bounds(&OVERHEAD_BUCKETS),
            source_wait: Histogram::with_bounds(&OVERHEAD_BUCKETS),
            phases: BTreeMap::new(),
            source_outcomes: BTreeMap::new(),
            source_latency: BTreeMap::new(),
            determinations: BTreeMap::new(),
            refusals: BTreeMap::new(),
        }
    }
}

/// The label of an HTTP method in the metrics: one of the methods of RFC 9110 §9 and
/// `PATCH` as sent, any other `other`. A method is whatever token the client sends (`curl -X
/// 62050319750324540X`): as a label it put an ID number in the metrics, which need no token,
/// and every new string a new series (session 22's attack).
pub fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    KNOWN.into_iter().find(|m| *m == method).unwrap_or("other")
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
    /// One HTTP request: method, route template, status, seconds. The method is labelled by
    /// [`method_label`]: a client's own method string never becomes a label.
    pub fn request(&self, method: &str, route: &str, status: u16, secs: f64) {
        self.with(|m| {
            *m.requests
                .entry((method_label(method).to_string(), route.to_string(), status))
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
    /// hedui's own time for one verification answered at once (`?wait=` and the report
    /// ready in time), seconds: from the handler's start (headers parsed) to the response
    /// ready to be written, minus `source_wait` — the wall time of the slowest source call
    /// as hedui saw it (request sent to answer parsed; 0 when every source answered from the
    /// cache). Both are recorded, `source_wait` as `hedui_verification_source_wait_seconds`.
    pub fn overhead(&self, overhead: f64, source_wait: f64) {
        self.with(|m| {
            m.overhead.observe(overhead.max(0.0));
            m.source_wait.observe(source_wait);
        });
    }
    /// Where one verification answered at once spent hedui's own time, seconds by phase
    /// (`intake`, `start`, `fan_out`, `build`, `commit`, `deliver`; see `Phases` in
    /// `src/api/mod.rs`): `hedui_verification_phase_seconds{phase=…}`.
    pub fn phases(&self, phases: &[(&'static str, f64)]) {
        self.with(|m| {
            for (name, secs) in phases {
                m.phases
                    .entry(name)
                    .or_insert_with(|| Histogram::with_bounds(&OVERHEAD_BUCKETS))
                    .observe(secs.max(0.0));
            }
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
        out.push_str("# HELP hedui_verification_overhead_seconds hedui's own time per verification answered at once: request headers parsed to response ready, minus the slowest source call as hedui saw it.\n# TYPE hedui_verification_overhead_seconds histogram\n");
        m.overhead
            .write(&mut out, "hedui_verification_overhead_seconds", "");
        out.push_str("# HELP hedui_verification_source_wait_seconds The slowest source call of each verification answered at once (0 when all were cached).\n# TYPE hedui_verification_source_wait_seconds histogram\n");
        m.source_wait
            .write(&mut out, "hedui_verification_source_wait_seconds", "");
        out.push_str("# HELP hedui_verification_phase_seconds hedui's own time per verification answered at once, by phase: intake (headers parsed to job started), start (job waiting to run), fan_out (beyond the slowest source call), build (link, assess, report, seal), commit (store), deliver (waiter woken to response ready).\n# TYPE hedui_verification_phase_seconds histogram\n");
        for (phase, h) in &m.phases {
            h.write(
                &mut out,
                "hedui_verification_phase_seconds",
                &format!("phase=\"{phase}\""),
            );
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_method_outside_the_standard_ones_is_labelled_other() {
        let m = Metrics::default();
        m.request("GET", "/v1/health", 200, 0.01);
        m.request("62050319750324540X", "/v1/verifications", 405, 0.01);
        m.request("get", "/v1/verifications", 405, 0.01);
        m.request("BREW", "/v1/verifications", 405, 0.01);
        let text = m.render();
        assert!(
            text.contains(
                "hedui_http_requests_total{method=\"GET\",route=\"/v1/health\",status=\"200\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "hedui_http_requests_total{method=\"other\",route=\"/v1/verifications\",status=\"405\"} 3"
            ),
            "{text}"
        );
        assert!(!text.contains("62050319750324540X"), "{text}");
        assert!(!text.contains("BREW"), "{text}");
    }
}
