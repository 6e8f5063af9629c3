//! The HTTP transport alone against `hedui sim`: how long one household's fan-out to all 12
//! sources takes, and how much of it is hedui's (transport, TLS, JSON) rather than the
//! sources' simulated latency. Not criterion: a load run with percentiles.
//!
//! ```sh
//! cargo test --release --bench sources          # 2,000-household county, 20 ms per source
//! HEDUI_BENCH_HOUSEHOLDS=30000 HEDUI_BENCH_LATENCY_MS=20 cargo test --release --bench sources
//! ```
//! (`cargo test --release` rather than `cargo bench`: the same release artifacts as every
//! other build here, no second polars.)
//! For each concurrency (1, 50, 500 households in flight) it runs every household once with
//! the caches cleared (cold), then again (warm: every person cached, nothing sent), and prints
//! households per second and p50/p99 of the per-household wall time, and the same minus the
//! configured source latency (hedui's own overhead, since the 12 sources run concurrently).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hedui_connectors::http::{HttpSources, HttpSourcesConfig, TlsFiles};

const BIN: &str = env!("CARGO_BIN_EXE_hedui");

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn run(args: &[&str]) {
    let ok = Command::new(BIN)
        .args(args)
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "hedui {args:?} failed");
}

fn households(data: &Path) -> Vec<Vec<String>> {
    let mut by: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut r = csv::Reader::from_path(data.join("members.csv")).expect("members.csv");
    for rec in r.records() {
        let rec = rec.expect("row");
        by.entry(rec[2].to_string())
            .or_default()
            .push(rec[0].to_string());
    }
    by.into_values().collect()
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let n_households = env_or("HEDUI_BENCH_HOUSEHOLDS", 2_000);
    let latency_ms = env_or("HEDUI_BENCH_LATENCY_MS", 20);
    let dir = tempfile::tempdir().expect("temp dir");
    let (certs, data) = (dir.path().join("certs"), dir.path().join("data"));
    let s = |p: &Path| p.to_str().expect("utf-8").to_string();
    run(&["certs", "--out", &s(&certs)]);
    run(&[
        "gen",
        "--households",
        &n_households.to_string(),
        "--out",
        &s(&data),
    ]);
    let cfg_path = dir.path().join("sim.toml");
    std::fs::write(
        &cfg_path,
        format!("[defaults]\nlatency = {{ fixed_ms = {latency_ms} }}\n"),
    )
    .expect("sim config");
    let mut sim = Command::new(BIN)
        .args(["sim", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .arg("--certs")
        .arg(&certs)
        .arg("--config")
        .arg(&cfg_path)
        .stdout(Stdio::piped())
        .spawn()
        .expect("sim starts");
    let mut out = BufReader::new(sim.stdout.take().expect("stdout"));
    let mut base = String::new();
    let mut line = String::new();
    while out.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
        print!("sim: {line}");
        if let Some(a) = line.trim().strip_prefix("listening on ") {
            base = a.to_string();
            break;
        }
        line.clear();
    }
    assert!(!base.is_empty(), "the sim did not start");

    let tls = TlsFiles {
        ca: certs.join("ca.pem"),
        cert: certs.join("client.pem"),
        key: certs.join("client.key"),
    };
    let mut cfg = HttpSourcesConfig::all_at(&base, tls, "bench cache secret, thirty-two bytes+");
    for src in &mut cfg.sources {
        src.max_in_flight = 64;
        src.timeout_ms = 5_000;
    }
    let sources = HttpSources::new(&cfg).expect("transport");
    let hh = Arc::new(households(&data));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "{} households, 12 sources at {latency_ms} ms each; per household: wall time of fetch_all",
        hh.len()
    );
    println!(
        "{:>11} {:>5} {:>10} {:>9} {:>9} {:>13} {:>13}",
        "concurrency", "cache", "hh/s", "p50 ms", "p99 ms", "p50-src ms", "p99-src ms"
    );
    for conc in [1usize, 50, 500] {
        sources.clear_caches();
        for cache in ["cold", "warm"] {
            let (times, wall) = rt.block_on(async {
                let sem = Arc::new(tokio::sync::Semaphore::new(conc));
                let started = Instant::now();
                let mut set = tokio::task::JoinSet::new();
                let take = if conc == 1 {
                    hh.len().min(300)
                } else {
                    hh.len()
                };
                for i in 0..take {
                    let (sem, sources, hh) = (sem.clone(), sources.clone(), hh.clone());
                    set.spawn(async move {
                        let _p = sem.acquire_owned().await.expect("semaphore");
                        let t = Instant::now();
                        let answers = sources.fetch_all(&hh[i]).await;
                        let failed = answers.iter().filter(|a| !a.is_answered()).count();
                        (t.elapsed(), failed)
                    });
                }
                let mut times = Vec::new();
                let mut failed = 0;
                while let Some(r) = set.join_next().await {
                    let (d, f) = r.expect("task");
                    times.push(d);
                    failed += f;
                }
                assert_eq!(failed, 0, "{failed} source answers failed");
                (times, started.elapsed())
            });
            let mut t = times;
            t.sort();
            let src = if cache == "cold" {
                Duration::from_millis(latency_ms)
            } else {
                Duration::ZERO
            };
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            println!(
                "{conc:>11} {cache:>5} {:>10.0} {:>9.2} {:>9.2} {:>13.2} {:>13.2}",
                t.len() as f64 / wall.as_secs_f64(),
                ms(pct(&t, 0.5)),
                ms(pct(&t, 0.99)),
                ms(pct(&t, 0.5).saturating_sub(src)),
                ms(pct(&t, 0.99).saturating_sub(src)),
            );
        }
    }
    let _ = sim.kill();
    let _ = sim.wait();
}
