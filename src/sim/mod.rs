//! `hedui sim`: department source servers for tests, drills and the demo.
//!
//! Loads the 12 source extracts that `hedui gen` writes (any format the file connector
//! reads) into memory once, then serves each source of DESIGN.md §2 over HTTPS with mutual
//! TLS (a client without a certificate signed by the CA is refused in the handshake):
//!
//! | route | what |
//! |---|---|
//! | `POST /v1/sources/{source}/query` | `{"request_id", "id_numbers": [..]}` → the records of those persons (`schemas/sources/api/`) |
//! | `GET /v1/stats` | counts per source: requests, persons asked, records returned, outcomes |
//! | `GET /v1/health` | `{"status": "ok", "sources": N}` |
//!
//! Each source behaves as its config says ([`faults`]): latency distribution, 5xx, hangs,
//! 429 with `Retry-After`, truncated bodies, empty answers, a record of a person not asked,
//! 401 for everyone, and a script
//! of outcomes for the first requests, from a seeded RNG. Logs carry counts only, never an
//! ID number.

pub mod faults;
pub mod index;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::NaiveDate;
use hedui_connectors::SourceKind;
use hedui_connectors::http::wire::{ErrorBody, ErrorDetail, MAX_IDS_PER_QUERY, QueryRequest};
use rayon::prelude::*;
use serde::Serialize;

use crate::domain::IdNumber;
use crate::domain::date::today;
use faults::{FaultState, Outcome, SimConfig};
use index::SourceIndex;

/// What `hedui sim` needs.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// The folder `hedui gen` wrote (the 12 source extracts).
    pub data: PathBuf,
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// Folder with `ca.pem`, `server.pem`, `server.key` (`hedui certs`).
    pub certs: PathBuf,
    /// Behaviour per source (none: every source answers at once, no faults).
    pub config: Option<PathBuf>,
    /// As-of date for ID validation (birth dates after it are invalid); default today.
    pub as_of: Option<NaiveDate>,
}

/// Why the sim could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The config file is invalid.
    #[error("{0}")]
    Config(String),
    /// TLS material unusable.
    #[error(transparent)]
    Tls(#[from] crate::certs::TlsError),
    /// A source extract could not be loaded.
    #[error("{source_name}: {error}")]
    Load {
        /// The source.
        source_name: &'static str,
        /// Why.
        error: hedui_connectors::ConnectorError,
    },
    /// Binding or serving failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Per-source counters (counts only).
#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    persons: AtomicU64,
    records: AtomicU64,
    bad_requests: AtomicU64,
    outcomes: [AtomicU64; 10],
}

struct SimSource {
    index: Option<SourceIndex>,
    faults: Mutex<FaultState>,
    counters: Counters,
}

struct Sim {
    sources: Vec<SimSource>,
    as_of: NaiveDate,
}

/// The loaded data of every source, ready to serve.
pub struct Loaded {
    sim: Arc<Sim>,
    /// Rows indexed per source (0 for a missing extract).
    pub rows: Vec<(SourceKind, usize)>,
    /// Seconds the load took.
    pub seconds: f64,
    /// Bytes held by the indexes.
    pub bytes: usize,
}

/// Load every source's extract from `data` (in parallel) with the behaviour of `config`.
/// A missing extract is served as 503 (the source is down); any other load error stops.
///
/// # Errors
/// [`SimError::Load`] naming the source and the file problem.
pub fn load(data: &Path, config: &SimConfig, as_of: Option<NaiveDate>) -> Result<Loaded, SimError> {
    let t = Instant::now();
    let as_of = as_of.unwrap_or_else(today);
    let indexes: Vec<Result<Option<SourceIndex>, SimError>> = SourceKind::ALL
        .par_iter()
        .map(|&kind| match SourceIndex::load(data, kind, as_of) {
            Ok(ix) => Ok(Some(ix)),
            Err(hedui_connectors::ConnectorError::NotFound { .. }) => {
                tracing::warn!(
                    source = kind.name(),
                    "No extract for this source; it will answer 503."
                );
                Ok(None)
            }
            Err(error) => Err(SimError::Load {
                source_name: kind.name(),
                error,
            }),
        })
        .collect();
    let mut sources = Vec::new();
    let mut rows = Vec::new();
    for (i, (kind, ix)) in SourceKind::ALL.into_iter().zip(indexes).enumerate() {
        let ix = ix?;
        rows.push((kind, ix.as_ref().map_or(0, SourceIndex::len)));
        if let Some(ix) = &ix
            && ix.refused_rows > 0
        {
            tracing::warn!(
                source = kind.name(),
                rows = ix.refused_rows,
                "Rows the reader refused; a request for a person they name is answered with an error."
            );
        }
        if let Some(ix) = &ix
            && ix.invalid_rows > 0
        {
            tracing::info!(
                source = kind.name(),
                rows = ix.invalid_rows,
                "Rows with an invalid ID number are not served."
            );
        }
        sources.push(SimSource {
            index: ix,
            faults: Mutex::new(FaultState::new(config.faults(kind).clone(), config.seed, i)),
            counters: Counters::default(),
        });
    }
    release_free_memory();
    let bytes = sources
        .iter()
        .filter_map(|s| s.index.as_ref().map(SourceIndex::bytes))
        .sum();
    Ok(Loaded {
        bytes,
        sim: Arc::new(Sim { sources, as_of }),
        rows,
        seconds: t.elapsed().as_secs_f64(),
    })
}

/// Hand memory freed after loading (the polars frames) back to the OS: glibc keeps freed
/// heap in its arenas, which left the sim at 2.7× its index size in RSS.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: malloc_trim only returns free heap pages to the kernel; it has no
        // preconditions and is thread-safe (glibc takes each arena's lock).
        unsafe {
            malloc_trim(0);
        }
    }
}

/// The routes of a loaded sim (TLS is the listener's business).
pub fn router(loaded: &Loaded) -> Router {
    Router::new()
        .route("/v1/sources/{source}/query", post(query))
        .route("/v1/stats", get(stats))
        .route("/v1/health", get(health))
        .with_state(loaded.sim.clone())
}

/// Run `hedui sim` until Ctrl-C / SIGTERM: load, bind, print the address, serve.
///
/// Prints `listening on https://ADDR` on stdout once ready (tests and scripts wait for it).
///
/// # Errors
/// [`SimError`] when loading, TLS or binding fails.
pub fn run(opts: &SimOptions) -> Result<(), SimError> {
    let config = match &opts.config {
        Some(p) => SimConfig::load(p).map_err(SimError::Config)?,
        None => SimConfig::default(),
    };
    let tls = crate::certs::server_tls_config(
        &opts.certs.join("server.pem"),
        &opts.certs.join("server.key"),
        Some(&opts.certs.join("ca.pem")),
    )?;
    let loaded = load(&opts.data, &config, opts.as_of)?;
    let total: usize = loaded.rows.iter().map(|(_, n)| n).sum();
    println!(
        "loaded {} sources, {total} records ({} MiB) in {:.1} s",
        loaded.rows.iter().filter(|(_, n)| *n > 0).count(),
        loaded.bytes >> 20,
        loaded.seconds
    );
    /// Concurrent HTTP/2 streams per connection.
    const MAX_STREAMS: u32 = 4096;
    let listener = std::net::TcpListener::bind(opts.listen)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let app = router(&loaded);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let handle = axum_server::Handle::new();
        let h = handle.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            h.graceful_shutdown(Some(std::time::Duration::from_secs(2)));
        });
        // TCP_NODELAY on every accepted connection: without it a response written in two
        // segments waits for the client's delayed ACK (40 ms on Linux) — measured as +44 ms
        // per household at concurrency 1 (benches/sources.rs).
        let mut server = axum_server::from_tcp(listener)?
            .acceptor(crate::certs::tls_acceptor(tls))
            .handle(handle);
        // hedui multiplexes every query to one sim over one HTTP/2 connection: hyper's
        // default of 200 streams queued the 600 queries of 50 households in flight (12
        // sources each) behind one another (source wait 80 ms instead of 20 in
        // benches/serve.sh).
        server
            .http_builder()
            .http2()
            .max_concurrent_streams(Some(MAX_STREAMS));
        println!("listening on https://{addr}");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        server.serve(app.into_make_service()).await
    })?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code: code.to_string(),
            message: message.into(),
        },
    };
    (status, axum::Json(body)).into_response()
}

/// One record on the wire: values as a map in column order, borrowed from the index.
struct RecordOut<'a> {
    id_number: &'a str,
    row: u32,
    columns: &'a [&'static str],
    values: Vec<Option<&'a str>>,
}

impl Serialize for RecordOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        struct Values<'b>(&'b [&'static str], &'b [Option<&'b str>]);
        impl Serialize for Values<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(self.0.len()))?;
                for (c, v) in self.0.iter().zip(self.1) {
                    m.serialize_entry(c, v)?;
                }
                m.end()
            }
        }
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("id_number", self.id_number)?;
        m.serialize_entry("row", &self.row)?;
        m.serialize_entry("values", &Values(self.columns, &self.values))?;
        m.end()
    }
}

#[derive(Serialize)]
struct ResponseOut<'a> {
    source: &'static str,
    request_id: &'a str,
    records: Vec<RecordOut<'a>>,
}

async fn query(
    State(sim): State<Arc<Sim>>,
    UrlPath(source): UrlPath<String>,
    body: Bytes,
) -> Response {
    let Some(kind) = SourceKind::from_name(&source) else {
        return error(
            StatusCode::NOT_FOUND,
            "unknown_source",
            "no such source; the §2 source names are served",
        );
    };
    let i = SourceKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
    let src = &sim.sources[i];
    src.counters.requests.fetch_add(1, Ordering::Relaxed);
    let decision = src
        .faults
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .decide();
    let (error_status, retry_after_s, hang, slow, redirect_to) = {
        let f = src.faults.lock().unwrap_or_else(|p| p.into_inner());
        (
            f.error_status(),
            f.retry_after_s(),
            f.hang(),
            f.slow(),
            f.redirect_to(),
        )
    };
    src.counters.outcomes[Outcome::ALL
        .iter()
        .position(|o| *o == decision.outcome)
        .unwrap_or(0)]
    .fetch_add(1, Ordering::Relaxed);
    if decision.outcome == Outcome::Unauthorized {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this source does not accept the client",
        );
    }

    let req: QueryRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            src.counters.bad_requests.fetch_add(1, Ordering::Relaxed);
            let what = match e.classify() {
                serde_json::error::Category::Data => "not a query (request_id, id_numbers)",
                _ => "not JSON",
            };
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("{what} at line {} column {}", e.line(), e.column()),
            );
        }
    };
    if req.id_numbers.is_empty() || req.id_numbers.len() > MAX_IDS_PER_QUERY {
        src.counters.bad_requests.fetch_add(1, Ordering::Relaxed);
        return error(
            StatusCode::BAD_REQUEST,
            "too_many_ids",
            format!(
                "id_numbers: {} given, 1 to {MAX_IDS_PER_QUERY} allowed",
                req.id_numbers.len()
            ),
        );
    }
    let mut ids: Vec<IdNumber> = Vec::with_capacity(req.id_numbers.len());
    for (n, raw) in req.id_numbers.iter().enumerate() {
        match IdNumber::parse(raw, sim.as_of) {
            Ok((id, _)) => {
                if !ids.contains(&id) {
                    ids.push(id)
                }
            }
            Err(e) => {
                src.counters.bad_requests.fetch_add(1, Ordering::Relaxed);
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_id_number",
                    format!("id_numbers[{n}]: {}", e.code()),
                );
            }
        }
    }
    src.counters
        .persons
        .fetch_add(ids.len() as u64, Ordering::Relaxed);

    let delay = match decision.outcome {
        Outcome::Hang => hang + decision.delay,
        Outcome::Slow => slow + decision.delay,
        _ => decision.delay,
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match decision.outcome {
        Outcome::Error => {
            return error(
                StatusCode::from_u16(error_status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                "source_error",
                "the source failed (simulated)",
            );
        }
        Outcome::Redirect => {
            let mut r = StatusCode::TEMPORARY_REDIRECT.into_response();
            if let Ok(v) = HeaderValue::from_str(&redirect_to) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            return r;
        }
        Outcome::RateLimited => {
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests (simulated)",
            );
            if let Ok(v) = HeaderValue::from_str(&retry_after_s.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return r;
        }
        _ => {}
    }
    let Some(index) = &src.index else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "source_error",
            "no extract loaded for this source",
        );
    };
    if ids.iter().any(|id| index.is_refused(*id)) {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "source_error",
            "a record of a person asked for could not be read from the extract; the answer would be incomplete",
        );
    }
    let stray = if decision.outcome == Outcome::Stray {
        index.stray(&ids)
    } else {
        None
    };
    let mut exposed: Vec<String> = ids.iter().map(|id| id.expose()).collect();
    if let Some((other, _)) = &stray {
        exposed.push(other.expose());
    }
    let mut records = Vec::new();
    if decision.outcome != Outcome::Empty {
        for (id, text) in ids.iter().zip(&exposed) {
            for (row, values) in index.lookup(*id) {
                records.push(RecordOut {
                    id_number: text,
                    row,
                    columns: &index.columns,
                    values,
                });
            }
        }
    }
    if let Some((_, (row, values))) = stray {
        records.push(RecordOut {
            id_number: &exposed[exposed.len() - 1],
            row,
            columns: &index.columns,
            values,
        });
    }
    src.counters
        .records
        .fetch_add(records.len() as u64, Ordering::Relaxed);
    let out = ResponseOut {
        source: kind.name(),
        request_id: &req.request_id,
        records,
    };
    let mut bytes = match serde_json::to_vec(&out) {
        Ok(b) => b,
        Err(_) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "source_error",
                "could not encode the answer",
            );
        }
    };
    if decision.outcome == Outcome::Malformed {
        bytes.truncate(bytes.len() / 2);
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        bytes,
    )
        .into_response()
}

async fn stats(State(sim): State<Arc<Sim>>) -> Response {
    let mut sources = serde_json::Map::new();
    for (kind, s) in SourceKind::ALL.iter().zip(&sim.sources) {
        let c = &s.counters;
        let outcomes: serde_json::Map<String, serde_json::Value> = Outcome::ALL
            .iter()
            .zip(&c.outcomes)
            .map(|(o, n)| (o.name().to_string(), n.load(Ordering::Relaxed).into()))
            .collect();
        sources.insert(
            kind.name().to_string(),
            serde_json::json!({
                "loaded": s.index.is_some(),
                "rows": s.index.as_ref().map_or(0, SourceIndex::len),
                "requests": c.requests.load(Ordering::Relaxed),
                "bad_requests": c.bad_requests.load(Ordering::Relaxed),
                "persons": c.persons.load(Ordering::Relaxed),
                "records": c.records.load(Ordering::Relaxed),
                "outcomes": outcomes,
            }),
        );
    }
    axum::Json(serde_json::json!({ "sources": sources })).into_response()
}

async fn health(State(sim): State<Arc<Sim>>) -> Response {
    let n = sim.sources.iter().filter(|s| s.index.is_some()).count();
    axum::Json(serde_json::json!({"status": "ok", "sources": n})).into_response()
}
