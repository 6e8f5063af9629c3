//! `hedui serve`: on-demand verification for intake systems (一门受理), axum over rustls.
//!
//! Routes (OpenAPI 3.1 at `GET /v1/openapi.json`, kept in `schemas/api/openapi.json`):
//! - `POST /v1/verifications[?wait=S]` (role `intake`): a household → `202 {"id"}`, or with
//!   `wait` the sealed report at once when it is ready within `min(S, wait_cap_s)` seconds.
//! - `GET /v1/verifications/{id}` (`intake`, same region): `200` sealed report or `202`.
//! - `POST /v1/consents`, `DELETE /v1/consents/{ref}` (`intake` of the person's household
//!   region or `admin`): register / revoke a consent (授权书).
//! - `POST /v1/tokens` (`admin`), `GET /v1/audit` (`auditor`), `GET /v1/health`,
//!   `GET /v1/metrics` (Prometheus text, no PII).
//!
//! Flow of a verification: authenticate (bearer token, SHA-256 looked up in the store) →
//! region scope → parse (deny unknown fields) and validate → every member's and
//! supporter's consent must be registered, unrevoked, unexpired, of that person and cover
//! every configured source, else the **whole request is refused** with 403 naming the
//! first person's position (`members[1].consent_ref`) and nothing is queried for anyone →
//! the job is stored (so a restart loses it not; a `?wait=` job only if its waiter answers
//! `202`, else it is stored once, `done`, with its report) → fan-out to every source at once →
//! [`crate::verify::link_answers`] + [`crate::verify::report_on_demand`] (the batch's
//! engine) → sealed with the server's current [`RunSealer`] (see *Sealing* below) → stored
//! and audited (one row per person: the sources asked and what each said) in one transaction → the waiter woken with
//! the sealed report in hand (no second read of the store, no re-parsing of the report).
//!
//! # Refusals
//! A handler refuses by returning its [`ApiError`]; the middleware around the whole router
//! (`track`) counts and audits every `4xx` answer with the code and field answered, by the
//! token `App::authenticate` found (task-local `ACTOR`), or as `unauthenticated` (at most a
//! row a second). Fields named back pass through `scrub` (ID numbers in any spelling
//! masked, at most [`MAX_FIELD_CHARS`]). A refusal is not answered without its row: one
//! that cannot be written turns the answer into `500 internal`, as for a report.
//!
//! # Sealing
//! The X25519 key agreement with each recipient is done once per *sealing run*, not per
//! report: a sealing run (`run_id` `serve-YYYYMMDDTHHMMSSZ-<8 hex>` in the envelope) lasts
//! [`SEAL_RUN_MAX_AGE`] or [`SEAL_RUN_MAX_REPORTS`] reports, whichever comes first. Every
//! report's content key is HKDF-derived from the run secret and its own `report_id`
//! (`<job id>/<household id>`, unique per job), and every envelope carries the run's wrapped
//! keys, so each report opens on its own with `hedui open` (module [`crate::seal`]). The
//! report inside keeps the job id as its `run_id`.
//!
//! # Overhead
//! For every verification answered at once (`?wait=`), hedui's own time is measured: from
//! the handler's start (request headers parsed) to the response ready, minus the slowest
//! source call as hedui saw it; `/v1/metrics` exports it as
//! `hedui_verification_overhead_seconds` (benches/serve.sh prints its p50/p99).

pub mod config;
pub mod metrics;
pub mod sources;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use chrono::NaiveDate;
use hedui_connectors::SourceKind;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::audit::{
    AuditEvent, NewJob, Role, Store, StoreError, Token, Write, new_job_id, token_hash,
};
use crate::domain::IdNumber;
use crate::evidence::Frame;
use crate::seal::RunSealer;
use crate::verify::{HouseholdRequest, InputError, SourceAnswer, ValidHousehold};
pub use config::{ConfigError, Settings};
use metrics::Metrics;
use sources::Sources;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

/// Longest `?wait=` accepted, seconds (longer ones are `wait_invalid`; any wait is capped at
/// `[limits] wait_cap_s`). Session 17's attack: `wait=99999999999999999999999` was taken.
pub const WAIT_MAX_S: f64 = 3600.0;

/// The OpenAPI document served at `/v1/openapi.json` (the file in `schemas/api/`).
pub const OPENAPI: &str = include_str!("../../schemas/api/openapi.json");

/// An error answer: status and `{"code", "field", "message"}`; never a value of the
/// request, never a cause chain. A `4xx` one is a refusal: `track` counts and audits it
/// as answered (`refused`, outcome `code:field`), so no handler can answer one unaudited.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code.
    pub code: &'static str,
    /// The JSON field or parameter concerned, if any: passed through `scrub` when the
    /// error is made (an ID number in any spelling is masked, the length bounded).
    pub field: Option<String>,
    /// A sentence.
    pub message: String,
    /// The job the refusal concerns (its audit row's `job_id`), or empty.
    job_id: String,
}

impl ApiError {
    fn new(
        status: StatusCode,
        code: &'static str,
        field: Option<String>,
        message: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            code,
            field: field.map(|f| scrub(&f)),
            message: message.into(),
            job_id: String::new(),
        }
    }
    /// The same refusal, audited with the job `id`.
    fn for_job(mut self, id: &str) -> Self {
        self.job_id = id.to_string();
        self
    }
    fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "Internal error.");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            None,
            "the service could not complete the request",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::internal(e)
    }
}

impl From<InputError> for ApiError {
    fn from(e: InputError) -> Self {
        let status = if e.code == "too_many_persons" {
            StatusCode::PAYLOAD_TOO_LARGE
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        ApiError::new(status, e.code, Some(e.field), e.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            axum::Json(json!({"code": self.code, "field": self.field, "message": self.message})),
        )
            .into_response();
        r.extensions_mut().insert(Refused {
            code: self.code,
            field: self.field,
            job_id: self.job_id,
        });
        r
    }
}

/// What an [`ApiError`] answer refused, for [`track`] to count and audit (a response
/// extension): the code and field the client was answered, and the job concerned.
#[derive(Clone, Debug)]
struct Refused {
    code: &'static str,
    field: Option<String>,
    job_id: String,
}

/// A `4xx` answer that refuses nothing (a response extension): the status of a job refused
/// while it waited (`GET /v1/verifications/{id}`; the job's refusal was audited then).
#[derive(Clone, Copy, Debug)]
struct NotRefused;

/// The code [`track`] audits a `4xx` answer by that carries neither [`Refused`] nor
/// [`NotRefused`] (one axum made itself, say): it is audited all the same.
const REJECTED: &str = "request_rejected";

tokio::task_local! {
    /// The token acting in the request being answered, once [`App::authenticate`] knows it:
    /// the actor of the request's refusal row ([`track`]). None: refused as
    /// [`UNAUTHENTICATED`].
    static ACTOR: std::cell::RefCell<Option<String>>;
}

/// The service state shared by every request and job.
pub struct App {
    /// Validated settings.
    pub settings: Settings,
    /// The store.
    pub store: Store,
    /// The sources.
    pub sources: Arc<Sources>,
    /// Metrics.
    pub metrics: Metrics,
    sealing: Mutex<Option<Arc<SealingRun>>>,
    /// Refusals of requests without a usable token since the last one audited, by code and
    /// field, and when that was ([`App::refused`]).
    unauthenticated: Mutex<(Option<Instant>, RefusalCounts)>,
    /// Set when the server is told to stop ([`App::stop`]).
    stopping: AtomicBool,
    /// The verifications under way, by their consent references ([`Running`]).
    running: Arc<Running>,
}

/// The verifications under way with the consent references they use, so that a consent
/// revoked while one of them asks the departments stops it (its retries included). Found by
/// session 22's attack: a revocation answered `200 revoked` while a job's retries went on
/// asking the departments about the person for seconds, and the job then made its report.
///
/// A job is registered before its consents are checked and stays so until its departments
/// have answered: a revocation committed before the check is refused by the check, one
/// committed after it finds the job here ([`Running::stop`] after the commit).
#[derive(Default)]
pub struct Running {
    next: AtomicU64,
    jobs: Mutex<HashMap<u64, RunningJob>>,
}

/// A registered verification: its consent references, the signal that stops it, and its job
/// id once known ([`RunGuard::job`]).
type RunningJob = (Vec<String>, Arc<tokio::sync::Notify>, Option<String>);

/// A verification's place among the [`Running`] ones; removed when dropped.
pub struct RunGuard {
    running: Arc<Running>,
    key: u64,
    stop: Arc<tokio::sync::Notify>,
}

impl Running {
    /// Register a verification using these consent references.
    pub fn register(self: &Arc<Self>, consents: Vec<String>) -> RunGuard {
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        let stop = Arc::new(tokio::sync::Notify::new());
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.insert(key, (consents, stop.clone(), None));
        }
        RunGuard {
            running: self.clone(),
            key,
            stop,
        }
    }

    /// Stop every registered verification that uses `consent` (it is refused, whether it
    /// waits to start or asks the departments); returns how many.
    pub fn stop(&self, consent: &str) -> usize {
        let Ok(jobs) = self.jobs.lock() else {
            return 0;
        };
        let mut n = 0;
        for (consents, stop, _) in jobs.values() {
            if consents.iter().any(|c| c == consent) {
                // a permit: a job not yet waiting on it finds it when it does
                stop.notify_one();
                n += 1;
            }
        }
        n
    }
}

impl Running {
    /// Whether the job `id` is under way in this process (`GET` says `running`, not `queued`:
    /// found in session 23, a job asking the departments read as queued).
    pub fn has_job(&self, id: &str) -> bool {
        self.jobs
            .lock()
            .is_ok_and(|jobs| jobs.values().any(|(_, _, j)| j.as_deref() == Some(id)))
    }
}

impl RunGuard {
    /// Name the job this verification runs as (see [`Running::has_job`]).
    pub fn job(&self, id: &str) {
        if let Ok(mut jobs) = self.running.jobs.lock()
            && let Some(j) = jobs.get_mut(&self.key)
        {
            j.2 = Some(id.to_string());
        }
    }

    /// Resolves when a consent of the verification is revoked.
    pub async fn stopped(&self) {
        self.stop.notified().await;
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        if let Ok(mut jobs) = self.running.jobs.lock() {
            jobs.remove(&self.key);
        }
    }
}

/// Refusals counted by code and field (the actor's rows not written yet).
type RefusalCounts = HashMap<(&'static str, String), u64>;

/// At most one audit row a second for refusals of requests without a usable token: each row
/// counts those refused since the one before. Found by session 16's second attack: 20,000
/// requests without credentials wrote 20,000 rows (96 MB) in four seconds, burying the rest.
pub const UNAUTHENTICATED_AUDIT_EVERY: Duration = Duration::from_secs(1);

/// How long one sealing run (one X25519 key agreement per recipient) seals reports.
pub const SEAL_RUN_MAX_AGE: Duration = Duration::from_secs(3600);
/// How many reports one sealing run seals at most.
pub const SEAL_RUN_MAX_REPORTS: u64 = 100_000;

/// The server's current sealing run: the sealer, when it started, reports sealed.
struct SealingRun {
    sealer: RunSealer,
    started: Instant,
    sealed: AtomicU64,
}

/// A finished job as its waiter receives it.
struct Finished {
    /// The sealed report (JSON text).
    sealed: String,
    /// The slowest source call, seconds (as hedui saw it; 0 when all were cached).
    source_wait_s: f64,
    /// Whether the `report_fetched` row was written with the report (the waiter's claim).
    fetched_audited: bool,
    /// Where the job's own time went, seconds: [`Phases`].
    phases: Phases,
    /// The sources that did not answer, as `name (code)` (`tax (source_unreachable)`): what
    /// `hedui check` says beside the determination.
    unverified: Vec<String>,
}

/// A verification's time by phase, seconds (`hedui_verification_phase_seconds`): the job
/// task waiting to start after it was spawned (`start`); the fan-out beyond its slowest
/// source call (`fan_out`: requests built, answers parsed, waiting to be polled); linking,
/// assessment, report and sealing (`build`); the store's commit of the report and its audit
/// rows (`commit`); the waiting handler woken and the response built (`deliver`, measured by
/// the handler). With the handler's `intake` (headers parsed → job spawned) they add up to
/// the verification's overhead.
#[derive(Clone, Copy, Default)]
struct Phases {
    start: f64,
    fan_out: f64,
    build: f64,
    commit: f64,
    /// When the commit returned.
    committed: Option<Instant>,
}

/// Who hands a `?wait=` report out, decided once between the job and its waiter: the job
/// writes `report_fetched` in the report's own transaction only if it moves the claim from
/// `OPEN` to `DELIVER` before the waiter gave up (`OPEN` → `GAVE_UP`); a waiter that times
/// out after the job claimed waits for the report instead of answering 202. So the audit
/// row is written exactly when the report is handed out at once.
mod claim {
    pub const OPEN: u8 = 0;
    pub const DELIVER: u8 = 1;
    pub const GAVE_UP: u8 = 2;
}

impl App {
    /// Open the store and the sources from settings.
    ///
    /// # Errors
    /// A message naming the store or the `[sources]` key.
    pub fn new(settings: Settings) -> Result<Arc<App>, String> {
        let store = Store::open(&settings.config.store, &settings.secret)
            .map_err(|e| format!("{}: {e}", settings.config.store.display()))?;
        let sources =
            Sources::from_config(&settings.config.sources, &settings.base, &settings.secret)
                .map_err(|e| format!("[sources]: {e}"))?;
        Ok(Arc::new(App {
            settings,
            store,
            sources: Arc::new(sources),
            metrics: Metrics::default(),
            sealing: Mutex::new(None),
            unauthenticated: Mutex::new((None, HashMap::new())),
            stopping: AtomicBool::new(false),
            running: Arc::new(Running::default()),
        }))
    }

    /// The current sealing run's sealer, starting a new run (one key agreement per
    /// recipient) when there is none or the current one is [`SEAL_RUN_MAX_AGE`] old or has
    /// sealed [`SEAL_RUN_MAX_REPORTS`].
    fn sealer(&self) -> Result<Arc<SealingRun>, String> {
        let mut current = self
            .sealing
            .lock()
            .map_err(|_| "sealing lock poisoned".to_string())?;
        if let Some(run) = current.as_ref()
            && run.started.elapsed() < SEAL_RUN_MAX_AGE
            && run.sealed.fetch_add(1, Ordering::Relaxed) < SEAL_RUN_MAX_REPORTS
        {
            return Ok(run.clone());
        }
        let mut tail = [0u8; 4];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut tail)
            .map_err(|_| "no system randomness".to_string())?;
        let run_id = format!(
            "serve-{}-{}",
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
            hex::encode(tail)
        );
        let sealer = RunSealer::new(&self.settings.signing, &self.settings.recipients, &run_id)
            .map_err(|e| e.to_string())?;
        let run = Arc::new(SealingRun {
            sealer,
            started: Instant::now(),
            sealed: AtomicU64::new(1),
        });
        *current = Some(run.clone());
        Ok(run)
    }

    /// The as-of date D of a verification started now.
    pub fn as_of(&self) -> NaiveDate {
        self.settings
            .config
            .as_of
            .unwrap_or_else(crate::domain::date::today)
    }

    /// Append audit rows (waiting for another process's write lock up to the store's busy
    /// timeout). A failure is logged and returned as `500 internal`, the answer of a request
    /// whose audit rows cannot be written: a refusal, a report or a page of the log is not
    /// handed out without its row, as a verification's report is not without its
    /// `source_query` rows.
    fn audit(&self, events: &[AuditEvent]) -> Result<(), ApiError> {
        self.store.audit(events).map_err(|e| {
            tracing::error!(error = %e, "The audit log could not be written.");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                None,
                "the service could not complete the request",
            )
        })
    }

    /// [`App::audit`] for an act already committed (a job resumed or refused at start-up):
    /// a failure is logged and the act stands, since it is done either way. (Consents and
    /// tokens are stored with their rows in one transaction instead, `500 internal` when
    /// that fails: `Store::audited`.)
    fn audit_act(&self, events: &[AuditEvent]) {
        let _logged = self.audit(events);
    }

    /// Count and audit a refusal answered with `code` and `field` (already [`scrub`]bed):
    /// as `refused` by `actor` (a token id, or `cli`), outcome `code:field`. A refusal
    /// without an actor (no usable token: none, unknown, revoked, two `Authorization`
    /// headers; or refused before any token was looked at) is audited as
    /// [`UNAUTHENTICATED`] at most once every [`UNAUTHENTICATED_AUDIT_EVERY`]: the first
    /// after a quiet second is written at once, with ` (N refused since the last row)` when
    /// others came in the second before; the others wait for [`App::flush_unauthenticated`],
    /// which `serve` calls every second and when it is stopped (SIGTERM, SIGINT).
    ///
    /// [`track`] calls it for every `4xx` answer of the router, so a handler only returns its
    /// [`ApiError`]: found by session 17's attack, handlers that forgot to call the old
    /// per-handler `refuse` answered `POST /v1/tokens` 422 and `DELETE /v1/tokens/…` 404
    /// without a row, and a refusal tried first (the intake role of an admin's consent
    /// request) was audited though the answer was another.
    ///
    /// # Errors
    /// `500 internal` when an actor's row cannot be written ([`App::audit`]): [`track`]
    /// answers that instead of the refusal, which is then neither counted nor audited.
    /// Session 17's attack: with the store's write lock held by `hedui token add`, the row was
    /// dropped at once and the refusal answered all the same.
    fn refused(
        &self,
        actor: Option<&str>,
        job_id: &str,
        code: &'static str,
        field: Option<&str>,
    ) -> Result<(), ApiError> {
        let field = field.unwrap_or("");
        let Some(actor) = actor else {
            self.metrics.refusal(code);
            {
                let mut g = self
                    .unauthenticated
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                *g.1.entry((code, field.to_string())).or_insert(0) += 1;
            }
            // once the server is stopping, at once: the stop's own flush may be past
            self.flush_unauthenticated(self.stopping.load(Ordering::SeqCst));
            return Ok(());
        };
        self.audit(&[AuditEvent {
            actor: actor.to_string(),
            action: "refused".into(),
            job_id: job_id.to_string(),
            outcome: format!("{code}:{field}"),
            ..AuditEvent::default()
        }])?;
        self.metrics.refusal(code);
        Ok(())
    }

    /// Count and audit the answer `resp` if it refuses the request (a `4xx`): by its
    /// [`Refused`] extension (the code and field answered), or as [`REJECTED`] with the
    /// status when it has none; not when it carries [`NotRefused`].
    ///
    /// # Errors
    /// As [`App::refused`].
    fn account(&self, resp: &Response, actor: Option<&str>) -> Result<(), ApiError> {
        if !resp.status().is_client_error() || resp.extensions().get::<NotRefused>().is_some() {
            return Ok(());
        }
        match resp.extensions().get::<Refused>() {
            Some(r) => self.refused(actor, &r.job_id, r.code, r.field.as_deref()),
            None => self.refused(actor, "", REJECTED, Some(resp.status().as_str())),
        }
    }

    /// Write the refusals without a usable token counted since the last audit row, if any:
    /// at once with `now`, else only when the last such row is at least
    /// [`UNAUTHENTICATED_AUDIT_EVERY`] old. Found by session 16's third attack: the refusals
    /// of a burst's last second waited for the next refusal, and were lost when the server
    /// stopped first. Rows that cannot be written (the store failed past its busy timeout)
    /// are counted again for the next flush; the refusals were answered already.
    pub fn flush_unauthenticated(&self, now: bool) {
        let t = Instant::now();
        let mut g = self
            .unauthenticated
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if g.1.is_empty()
            || !now
                && g.0
                    .is_some_and(|last| t.duration_since(last) < UNAUTHENTICATED_AUDIT_EVERY)
        {
            return;
        }
        g.0 = Some(t);
        let mut counts: Vec<((&'static str, String), u64)> =
            std::mem::take(&mut g.1).into_iter().collect();
        drop(g);
        counts.sort_unstable();
        let events: Vec<AuditEvent> = counts
            .iter()
            .map(|((code, field), n)| AuditEvent {
                actor: UNAUTHENTICATED.to_string(),
                action: "refused".into(),
                outcome: if *n == 1 {
                    format!("{code}:{field}")
                } else {
                    format!("{code}:{field} ({n} refused since the last row)")
                },
                ..AuditEvent::default()
            })
            .collect();
        if self.audit(&events).is_err() {
            let mut g = self
                .unauthenticated
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            for (key, n) in counts {
                *g.1.entry(key).or_insert(0) += n;
            }
        }
    }

    /// Before the process exits on a signal: the refusals without a usable token counted
    /// since the last row are written, and the store's head file anchors every row written
    /// (see [`Store::stop_writes`]; hold the value returned until the exit). A refusal
    /// answered after this moment is written at once ([`App::refused`]), so it either
    /// commits before the head or is never answered.
    pub fn stop(&self) -> crate::audit::WritesStopped<'_> {
        self.stopping.store(true, Ordering::SeqCst);
        self.flush_unauthenticated(true);
        self.store.stop_writes()
    }

    /// The bearer token of a request for `role`; once a token is found it is the request's
    /// actor ([`ACTOR`]), also when it lacks `role`. Every refusal is audited by [`track`],
    /// also those of a request without a usable token (actor [`UNAUTHENTICATED`]): found by
    /// session 16's attack, probing for tokens with household data in the body left no trace.
    fn authenticate(&self, headers: &HeaderMap, role: Role) -> Result<Token, ApiError> {
        // Found by the s8 newcomer: a request with two `Authorization` headers was answered
        // with the first one's token. Which token acts must never be a matter of order (a
        // proxy or a client library may add its own): two are refused.
        if headers
            .get_all(header::AUTHORIZATION)
            .iter()
            .nth(1)
            .is_some()
        {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "authorization_duplicate",
                Some("Authorization".into()),
                "the Authorization header is given more than once",
            ));
        }
        let raw = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let Some(secret) = raw.filter(|s| !s.is_empty()) else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "token_missing",
                Some("Authorization".into()),
                "a bearer token is required",
            ));
        };
        let Some(token) = self.store.token_by_hash(&token_hash(secret))? else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "token_invalid",
                Some("Authorization".into()),
                "the bearer token is not known or was revoked",
            ));
        };
        // outside a request (no scope) there is no refusal to attribute
        let _ = ACTOR.try_with(|a| *a.borrow_mut() = Some(token.id.clone()));
        if !token.has(role) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "role_forbidden",
                None,
                format!("this token does not hold the role {}", role.as_str()),
            ));
        }
        Ok(token)
    }

    /// Check every person's consent (see the module docs). Returns the first refusal.
    fn check_consents(&self, v: &ValidHousehold, today: NaiveDate) -> Result<(), ApiError> {
        let needed: Vec<&str> = self.sources.kinds().iter().map(|k| k.name()).collect();
        // Every consent and its registering token (looked up once per token: a household's
        // consents are usually registered by one intake system), in one read of the store.
        let references: Vec<&str> = v.persons.iter().map(|(_, _, r)| r.as_str()).collect();
        let found = self.store.consents_with_registrars(&references)?;
        for ((field, id, reference), found) in v.persons.iter().zip(found) {
            let refuse = |code: &'static str, why: &str| {
                Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    code,
                    Some(field.clone()),
                    format!("{field}: {why}; nothing was queried"),
                ))
            };
            if reference.is_empty() {
                return refuse("consent_missing", "no consent reference was given");
            }
            let Some((c, registrar)) = found else {
                return refuse("consent_unknown", "the consent reference is not registered");
            };
            if c.revoked_at.is_some() {
                return refuse("consent_revoked", "the consent was revoked");
            }
            if NaiveDate::parse_from_str(&c.valid_until, "%Y-%m-%d").map_or(true, |d| d < today) {
                return refuse("consent_expired", "the consent is no longer valid");
            }
            // A consent serves the region it was registered for: the registering token must
            // cover the household's region (county B cannot use county A's consents).
            if !registrar.is_some_and(|t| t.covers(&v.household.region_code)) {
                return refuse(
                    "consent_region",
                    "the consent was registered for another region",
                );
            }
            if c.person_hash != self.store.person_hash(&id.expose()) {
                return refuse(
                    "consent_person_mismatch",
                    "the consent was given by another person",
                );
            }
            if !c.scope.iter().any(|s| s == "*")
                && !needed.iter().all(|n| c.scope.iter().any(|s| s == n))
            {
                return refuse(
                    "consent_scope",
                    "the consent does not cover every source queried",
                );
            }
        }
        Ok(())
    }
}

/// Longest field path or key named back (answer, audit row, `hedui check`), in characters:
/// a longer one keeps its first [`MAX_FIELD_CHARS`] and ends in `...`.
pub const MAX_FIELD_CHARS: usize = 64;

/// A field path or key as the client sent it, made safe to name back: every number of 6 or
/// more digits in any spelling an ID number is written in
/// ([`crate::domain::id_number::spelled_digit_runs`]: contiguous, in groups, full-width,
/// one digit at a time, with invisible characters between them; with its check character)
/// becomes `?`, then every non-ASCII or control character `?`, and the result is cut at
/// [`MAX_FIELD_CHARS`]. Since what is shown is that text, a character shown as `?` (any
/// non-ASCII or control character, and `?` itself) also separates the digits of a number
/// ([`crate::domain::id_number::spelled_digit_runs_through`]). So an ID number or a name used
/// as a key is never echoed, nor written into the audit log. Session 17's attacks: only
/// contiguous digits were masked (`6205 0319 7503 2454 0X` went through); a 300 character
/// key was stored whole; a number with U+200B between its digits came back as `6?2?0?…`.
/// Idempotent (every [`ApiError`] field passes through it).
fn scrub(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len().min(MAX_FIELD_CHARS + 3));
    let shown = |t: &str, out: &mut String| {
        out.extend(t.chars().map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '?'
            }
        }));
    };
    let mut copied = 0;
    // (and the separators an ID number is loosely spelled with, `6205|0319|7503|2454|0`,
    // brackets and quotation marks aside, which a field path is written with: masking a key
    // more than needed costs nothing, and 17 digits are the whole number)
    let shown_as_mark = |c: char| {
        !c.is_ascii()
            || c.is_ascii_control()
            || c == '?'
            || (crate::domain::id_number::is_loose_separator(c)
                && !matches!(crate::domain::id_number::separator_class(c), '(' | '"'))
    };
    // the numbers of 6 digits or more, and the ID numbers spelled loosely (between colons,
    // brackets, `+`, `|`…: session 18's attack), in order, overlapping ones as one
    let mut hidden: Vec<std::ops::Range<usize>> =
        crate::domain::id_number::spelled_digit_runs_through(raw, shown_as_mark)
            .into_iter()
            .filter(|(_, n)| *n >= 6)
            .map(|(r, _)| r)
            .chain(crate::domain::id_number::loose_id_numbers(raw))
            .collect();
    hidden.sort_by_key(|r| r.start);
    for r in hidden {
        if r.end <= copied {
            continue;
        }
        if r.start >= copied {
            shown(&raw[copied..r.start], &mut out);
            out.push('?');
        }
        copied = r.end;
    }
    shown(&raw[copied..], &mut out);
    if out.len() > MAX_FIELD_CHARS {
        // ASCII only by now: bytes are characters
        out.truncate(MAX_FIELD_CHARS);
        out.push_str("...");
    }
    out
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // RFC 8259 §8.1 lets a parser ignore a leading UTF-8 byte order mark (the cases' BOM rule
    // holds for JSON too); a UTF-16 body is named as such, not "invalid JSON at column 1".
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if body.starts_with(&[0xFF, 0xFE]) || body.starts_with(&[0xFE, 0xFF]) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "json_malformed",
            None,
            "the body is UTF-16 (byte order mark FF FE or FE FF): send the JSON as UTF-8"
                .to_string(),
        ));
    }
    // A body in GBK or GB18030 (what a Chinese Windows client sends when it does not set
    // UTF-8) only read as "not valid JSON at column N": say what it is. (JSON text is UTF-8,
    // RFC 8259 §8.1.)
    if let Err(e) = std::str::from_utf8(body) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "json_malformed",
            None,
            format!(
                "the body is not UTF-8 (byte {} is not valid UTF-8): JSON must be sent as UTF-8 (RFC 8259 §8.1); a body in GBK or GB18030 must be re-encoded",
                e.valid_up_to()
            ),
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let r: Result<T, _> = serde_path_to_error_lite(&mut de);
    r.map_err(|(path, e)| {
        let path = scrub(&path);
        let msg = e.to_string();
        // serde's messages for wrong types quote the value: they are not passed on.
        let (code, message) = if msg.starts_with(DUPLICATE) {
            return ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "field_duplicate",
                Some(path.clone()),
                format!("the key {path} appears twice in one object; which value is meant is not guessed"),
            );
        } else if msg.starts_with("unknown field") {
            let name = scrub(msg.split('`').nth(1).unwrap_or(""));
            return ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "field_unknown",
                Some(if path.is_empty() { name.clone() } else { path }),
                format!("unknown field {name}"),
            );
        } else if msg.starts_with("missing field") {
            let name = scrub(msg.split('`').nth(1).unwrap_or(""));
            return ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "field_missing",
                Some(if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                }),
                format!("missing field {name}"),
            );
        } else if e.is_syntax() || e.is_eof() {
            (
                "json_malformed",
                format!(
                    "the body is not valid JSON (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            )
        } else {
            ("field_type", "a field has the wrong type".to_string())
        };
        ApiError::new(
            if code == "json_malformed" {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            },
            code,
            if path.is_empty() { None } else { Some(path) },
            message,
        )
    })
}

/// Deserialize, and on error say where: a small stand-in for `serde_path_to_error` (not a
/// dependency): re-parse as a `Value` and walk to the first place the typed parse fails.
fn serde_path_to_error_lite<T: serde::de::DeserializeOwned>(
    de: &mut serde_json::Deserializer<serde_json::de::SliceRead<'_>>,
) -> Result<T, (String, serde_json::Error)> {
    let v: Value = match serde::de::DeserializeSeed::deserialize(Strict(String::new()), &mut *de) {
        Ok(v) => v,
        Err(e) => return Err((duplicate_path(&e), e)),
    };
    if let Err(e) = de.end() {
        return Err((String::new(), e));
    }
    match serde_json::from_value::<T>(v.clone()) {
        Ok(t) => Ok(t),
        Err(e) => Err((locate_error::<T>(&v), e)),
    }
}

/// The message prefix of a key given twice in one object (see [`Strict`]).
const DUPLICATE: &str = "duplicate key at ";

/// The actor of an audited refusal of a request without a usable bearer token.
pub const UNAUTHENTICATED: &str = "unauthenticated";

/// The JSON path of a duplicate key from a [`Strict`] parse error (empty for any other).
fn duplicate_path(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    msg.strip_prefix(DUPLICATE)
        .and_then(|rest| rest.split(" at line ").next())
        .unwrap_or("")
        .to_string()
}

/// A body parsed as a `serde_json::Value` that refuses a key given twice in one object, at
/// any depth (the field is the key's JSON path, `members[0].id_number`). Found by the s7
/// attack: `Value` keeps the last of two `id_number` (or `declared_annual_income`, or
/// `household_id`) keys silently, so a request could carry one value past a reviewer who
/// reads the first. serde_json's nesting limit (128) still applies.
struct Strict(String);

impl<'de> serde::de::DeserializeSeed<'de> for Strict {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Strict {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = a.next_element_seed(Strict(format!("{}[{}]", self.0, out.len())))? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(k) = a.next_key::<String>()? {
            let path = if self.0.is_empty() {
                k.clone()
            } else {
                format!("{}.{k}", self.0)
            };
            if out.contains_key(&k) {
                return Err(serde::de::Error::custom(format!("{DUPLICATE}{path}")));
            }
            let v = a.next_value_seed(Strict(path))?;
            out.insert(k, v);
        }
        Ok(Value::Object(out))
    }
}

/// Where a typed parse of `v` fails, as a JSON path (`members[1].disability_grade`): the
/// value is printed one field per line and parsed again, and serde's error line is walked
/// back to the keys and list positions that lead to it. Empty when it cannot be told.
fn locate_error<T: serde::de::DeserializeOwned>(v: &Value) -> String {
    let Ok(pretty) = serde_json::to_string_pretty(v) else {
        return String::new();
    };
    let Err(e) = serde_json::from_str::<T>(&pretty) else {
        return String::new();
    };
    let target = e.line();
    enum Seg {
        Key(String),
        List(String, usize),
        Item(usize),
    }
    let mut stack: Vec<Seg> = Vec::new();
    let path = |stack: &[Seg], leaf: Option<&str>| {
        let mut out = String::new();
        for s in stack {
            match s {
                Seg::Key(k) | Seg::List(k, _) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Seg::Item(i) => out.push_str(&format!("[{i}]")),
            }
        }
        if let Some(l) = leaf {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(l);
        }
        out
    };
    for (n, line) in pretty.lines().enumerate() {
        let t = line.trim().trim_end_matches(',');
        let at_target = n + 1 == target;
        if let Some(rest) = t.strip_prefix('"') {
            let Some(end) = rest.find("\": ") else {
                continue;
            };
            let key = rest[..end].to_string();
            let value = &rest[end + 3..];
            if at_target {
                return path(&stack, Some(&key));
            }
            match value {
                "{" => stack.push(Seg::Key(key)),
                "[" => stack.push(Seg::List(key, 0)),
                _ => {}
            }
        } else if t == "{" || t == "[" {
            if let Some(Seg::List(_, next)) = stack.last_mut() {
                let i = *next;
                *next += 1;
                stack.push(Seg::Item(i));
            } else if n > 0 {
                stack.push(Seg::Item(0));
            }
            if at_target {
                return path(&stack, None);
            }
        } else if t == "}" || t == "]" {
            if at_target {
                return path(&stack, None);
            }
            stack.pop();
        } else if at_target {
            return path(&stack, None);
        }
    }
    String::new()
}

async fn read_body(app: &App, body: Body) -> Result<Bytes, ApiError> {
    use http_body_util::BodyExt as _;
    let limit = app.settings.config.limits.max_body_bytes;
    // An oversized body is read on (and thrown away) up to DRAIN_BYTES before the 413: a
    // refusal sent while the client is still sending resets the connection (an HTTP/2
    // stream, when serve still spoke HTTP/2), and the client would see a reset instead of
    // the reason.
    const DRAIN_BYTES: usize = 8 << 20;
    let mut body = body;
    let read = tokio::time::timeout(std::time::Duration::from_secs(15), async {
        let mut buf: Vec<u8> = Vec::new();
        let mut total = 0usize;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else {
                return Err(None);
            };
            if let Ok(data) = frame.into_data() {
                total += data.len();
                if total <= limit {
                    buf.extend_from_slice(&data);
                } else if total > DRAIN_BYTES.max(limit) {
                    break;
                }
            }
        }
        if total > limit {
            Err(Some(total))
        } else {
            Ok(Bytes::from(buf))
        }
    })
    .await
    .map_err(|_| {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            None,
            "the body did not arrive within 15 s",
        )
    })?;
    read.map_err(|over| match over {
        Some(_) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            None,
            format!("the body exceeds {limit} bytes"),
        ),
        None => ApiError::new(
            StatusCode::BAD_REQUEST,
            "body_unreadable",
            None,
            "the body could not be read to its end",
        ),
    })
}

/// A request's query parameters by name. A parameter of `known` given more than once
/// (`after=1&after=2`) is `400 parameter_invalid` naming it: which value is meant is not
/// guessed, as for a key given twice in a JSON body (`field_duplicate`); before, the last
/// one was taken silently. Unknown names are left for the handler to refuse
/// (`parameter_unknown`).
fn query_once(
    pairs: Vec<(String, String)>,
    known: &[&str],
) -> Result<HashMap<String, String>, ApiError> {
    let mut q = HashMap::with_capacity(pairs.len());
    for (k, v) in pairs {
        if let Some(_first) = q.insert(k.clone(), v)
            && known.contains(&k.as_str())
        {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "parameter_invalid",
                Some(k.clone()),
                format!("{k} is given more than once; which value is meant is not guessed"),
            ));
        }
    }
    Ok(q)
}

async fn post_verification(
    State(app): State<Arc<App>>,
    Query(q): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    // The body is read (bounded by the limit) before any refusal: over HTTP/2, answering
    // before the request body was consumed reset the stream and clients saw no answer at all.
    let body = read_body(&app, body).await;
    let token = app.authenticate(&headers, Role::Intake)?;
    let q = query_once(q, &["wait"])?;
    let wait = match q.get("wait") {
        None => None,
        Some(w) => match w.parse::<f64>() {
            Ok(s) if (0.0..=WAIT_MAX_S).contains(&s) => {
                Some(s.min(app.settings.config.limits.wait_cap_s as f64))
            }
            _ => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "wait_invalid",
                    Some("wait".into()),
                    format!(
                        "wait must be a number of seconds from 0 to {WAIT_MAX_S} (waits are capped at [limits] wait_cap_s)"
                    ),
                ));
            }
        },
    };
    if let Some(other) = q.keys().find(|k| k.as_str() != "wait") {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "parameter_unknown",
            Some(other.clone()),
            "unknown query parameter",
        ));
    }
    let bytes = body?;
    let req: HouseholdRequest = parse_json(&bytes)?;
    let as_of = app.as_of();
    let v = req.validate(as_of, app.settings.config.limits.max_persons)?;
    if !token.covers(&v.household.region_code) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "region_forbidden",
            Some("region_code".into()),
            "this token may not act for households of this region",
        ));
    }
    // registered before its consents are checked: a revocation after the check stops it
    let guard = app.running.register(consent_refs(&v));
    app.check_consents(&v, crate::domain::date::today())?;
    let id = new_job_id();
    // The request is stored as it came (it parsed, so it is UTF-8 JSON that parses again to
    // the same request): no re-serialisation.
    let text = match std::str::from_utf8(&bytes) {
        Ok(t) => t.to_string(),
        Err(_) => serde_json::to_string(&req).map_err(ApiError::internal)?,
    };
    let accepted = AuditEvent {
        actor: token.id.clone(),
        action: "verification_accepted".into(),
        job_id: id.clone(),
        purpose: v.purpose.clone(),
        outcome: format!("persons:{}", v.persons.len()),
        ..AuditEvent::default()
    };
    let stored = Write::Job {
        id: id.clone(),
        token_id: token.id.clone(),
        region_code: v.household.region_code.clone(),
        request: Some(text),
        events: vec![accepted.clone()],
        if_absent: wait.is_some(),
    };
    // Without `?wait=` the job is stored before it starts. With it, the job row and
    // `verification_accepted` go into the report's own write when the report is handed out
    // at once (one write per verification instead of two); a waiter that answers `202`
    // stores the job first (below), so an accepted (`202`) job always survives a restart.
    let stored = match wait {
        None => {
            app.store.write(stored).await?;
            None
        }
        Some(_) => Some(stored),
    };
    let delivery = wait.map(|_| Delivery {
        claim: Arc::new(AtomicU8::new(claim::OPEN)),
        new_job: NewJob {
            token_id: token.id.clone(),
            region_code: v.household.region_code.clone(),
            created_at: crate::audit::now_utc(),
        },
        accepted,
        accepted_taken: Arc::new(AtomicBool::new(false)),
    });
    let claim_of = delivery.as_ref().map(|d| d.claim.clone());
    let accepted_taken = delivery.as_ref().map(|d| d.accepted_taken.clone());
    let intake = started.elapsed().as_secs_f64();
    let rx = start_job(&app, id.clone(), v, token.id.clone(), delivery, guard);
    if let (Some(secs), Some(delivery)) = (wait, claim_of) {
        let mut rx = rx;
        // The watch guard is dropped at once (it must not live across an await).
        let finished =
            match tokio::time::timeout(Duration::from_secs_f64(secs), rx.wait_for(|d| d.is_some()))
                .await
            {
                Ok(Ok(d)) => d.clone(),
                _ => None,
            };
        let finished = match finished {
            Some(f) => Some(f),
            None => match delivery.compare_exchange(
                claim::OPEN,
                claim::GAVE_UP,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => None,
                // The job claimed delivery just before the deadline: its report (and the
                // report_fetched row) is being committed; hand it out.
                Err(_) => rx
                    .wait_for(|d| d.is_some())
                    .await
                    .ok()
                    .and_then(|d| d.clone()),
            },
        };
        if let Some(JobEnd::Refused) = finished {
            // stored as refused by the job (with this request's `verification_accepted`)
            return fetch_report(&app, &token, &id, StatusCode::OK);
        }
        if let Some(JobEnd::Done(f)) = finished {
            if !f.fetched_audited {
                let fetched = AuditEvent {
                    actor: token.id.clone(),
                    action: "report_fetched".into(),
                    job_id: id.clone(),
                    outcome: "sealed_report".into(),
                    ..AuditEvent::default()
                };
                app.store.write(Write::Audit(vec![fetched])).await?;
            }
            let resp = sealed_response(StatusCode::OK, &id, &f.sealed);
            app.metrics.overhead(
                started.elapsed().as_secs_f64() - f.source_wait_s,
                f.source_wait_s,
            );
            let p = f.phases;
            let deliver = p.committed.map_or(0.0, |c| c.elapsed().as_secs_f64());
            app.metrics.phases(&[
                ("intake", intake),
                ("start", p.start),
                ("fan_out", p.fan_out),
                ("build", p.build),
                ("commit", p.commit),
                ("deliver", deliver),
            ]);
            return Ok(resp);
        }
    }
    // Not handed out at once: the job (queued, with its request) is stored before the `202`
    // unless it is stored already (its report may have been committed meanwhile), with its
    // `verification_accepted` row unless the job wrote that already (see [`Delivery`]).
    if let Some(mut w) = stored {
        if accepted_taken.is_some_and(|t| t.swap(true, Ordering::AcqRel))
            && let Write::Job { events, .. } = &mut w
        {
            events.clear();
        }
        app.store.write(w).await?;
    }
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({"id": id, "status": queued_or_running(&app, &id)})),
    )
        .into_response())
}

fn fetch_report(app: &App, token: &Token, id: &str, ok: StatusCode) -> Result<Response, ApiError> {
    let Some(job) = app.store.job(id)? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "verification_unknown",
            Some("id".into()),
            "no such verification",
        )
        .for_job(id));
    };
    if !token.covers(&job.region_code) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "region_forbidden",
            Some("id".into()),
            "this token may not read reports of this region",
        )
        .for_job(id));
    }
    match (&job.status[..], &job.sealed) {
        ("done", Some(sealed)) => {
            app.audit(&[AuditEvent {
                actor: token.id.clone(),
                action: "report_fetched".into(),
                job_id: id.to_string(),
                outcome: "sealed_report".into(),
                ..AuditEvent::default()
            }])?;
            Ok(sealed_response(ok, id, sealed))
        }
        ("refused", _) => Ok((
            StatusCode::FORBIDDEN,
            axum::Extension(NotRefused),
            axum::Json(json!({"id": id, "status": "refused", "code": job.determination,
                "message": "the job was refused and made no report: a consent it uses was revoked (or had ended) while it waited or while the departments were asked; the audit log says which departments, if any, had been asked"})),
        )
            .into_response()),
        _ => Ok((
            StatusCode::ACCEPTED,
            axum::Json(json!({"id": id, "status": queued_or_running(app, id)})),
        )
            .into_response()),
    }
}

/// A job not done nor refused: `running` while this process runs it (asks the departments,
/// seals), else `queued` (waiting to be resumed at the next start).
fn queued_or_running(app: &App, id: &str) -> &'static str {
    if app.running.has_job(id) {
        "running"
    } else {
        "queued"
    }
}

/// `{"id": ID, "status": "done", "sealed_report": SEALED}` written around the stored text
/// (the sealed report is JSON already; `id` is a job id, `v_` + hex, nothing to escape).
fn sealed_response(status: StatusCode, id: &str, sealed: &str) -> Response {
    let mut body = String::with_capacity(sealed.len() + id.len() + 48);
    body.push_str("{\"id\":\"");
    body.push_str(id);
    body.push_str("\",\"status\":\"done\",\"sealed_report\":");
    body.push_str(sealed);
    body.push('}');
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A path parameter (`{id}`, `{reference}`) as text; one that is not valid UTF-8 after
/// percent-decoding is refused with the API's JSON body (400 `path_invalid`, field `path`,
/// the value not echoed) instead of axum's plain-text rejection.
struct PathParam(String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for PathParam {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match UrlPath::<String>::from_request_parts(parts, state).await {
            Ok(UrlPath(s)) => Ok(PathParam(s)),
            Err(_) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "path_invalid",
                Some("path".into()),
                "a path segment is not valid UTF-8 after percent-decoding",
            )),
        }
    }
}

async fn get_verification(
    State(app): State<Arc<App>>,
    PathParam(id): PathParam,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = app.authenticate(&headers, Role::Intake)?;
    // Only a job id (`v_` + 24 hex) is looked up: anything else (an ID number pasted into the
    // URL, say) is refused without being stored in the audit log.
    let well_formed =
        id.len() == 26 && id.starts_with("v_") && id[2..].bytes().all(|b| b.is_ascii_hexdigit());
    if !well_formed {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "verification_unknown",
            Some("id".into()),
            "no verification has this id (ids are v_ and 24 hexadecimal digits)",
        ));
    }
    fetch_report(&app, &token, &id, StatusCode::OK)
}

/// A `?wait=` job's link to its waiter: the [`claim`], and the job row and its
/// `verification_accepted` row, not stored yet. The job inserts the row with its report when
/// it claims delivery; otherwise its waiter stores it before answering `202`. The
/// `verification_accepted` row is written by whichever of the two takes `accepted_taken`
/// first: the job with its `source_query_sent` row, before any department is asked (so that
/// the log reads accepted, sent, …), or a waiter that gave up before that.
struct Delivery {
    claim: Arc<AtomicU8>,
    new_job: NewJob,
    accepted: AuditEvent,
    accepted_taken: Arc<AtomicBool>,
}

/// Start (or resume) a job in the background; the receiver turns `true` when it is done.
fn start_job(
    app: &Arc<App>,
    id: String,
    v: ValidHousehold,
    actor: String,
    delivery: Option<Delivery>,
    guard: RunGuard,
) -> watch::Receiver<Option<JobEnd>> {
    let (tx, rx) = watch::channel(None);
    let app = app.clone();
    let spawned = Instant::now();
    guard.job(&id);
    tokio::spawn(async move {
        match run_job_timed(&app, &id, &v, &actor, delivery, spawned, &guard).await {
            // A waiter gone (timed out, disconnected) is fine: the report is stored.
            Ok(done) => drop(tx.send(Some(JobEnd::Done(Arc::new(done))))),
            // stored as refused: a waiter answers from the job's row
            Err(JobError::Refused) => drop(tx.send(Some(JobEnd::Refused))),
            // The sender is dropped unsent: a waiter answers 202 and the job is resumed.
            Err(JobError::Failed(e)) => {
                tracing::error!(job = %id, error = %e, "A verification could not be finished; it stays queued and is resumed at the next start.");
            }
        }
    });
    rx
}

/// Run one verification: fan out, link, assess, seal, store, audit, for `hedui check` (which
/// has no HTTP in front; the service runs the same steps in [`start_job`]).
///
/// Returns the sealed report and the sources that did not answer (`name (code)`), or `None`
/// when the job was refused because a consent it uses
/// was revoked (or ended) while it ran: `hedui serve`, another process, revokes in the store,
/// so the store is looked at every [`CONSENT_RECHECK`] until the departments have answered
/// (session 22's second attack: `hedui check` went on asking, 29 requests, and made its
/// report).
///
/// # Errors
/// A message when sealing or the store fails (the job stays queued).
pub async fn run_job(
    app: &Arc<App>,
    id: &str,
    v: &ValidHousehold,
    actor: &str,
) -> Result<Option<(String, Vec<String>)>, String> {
    let guard = app.running.register(consent_refs(v));
    let watcher = {
        let (app, v, stop) = (app.clone(), v.clone(), guard.stop.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(CONSENT_RECHECK).await;
                if app
                    .check_consents(&v, crate::domain::date::today())
                    .is_err()
                {
                    stop.notify_one();
                    return;
                }
            }
        })
    };
    let done = run_job_timed(app, id, v, actor, None, Instant::now(), &guard).await;
    watcher.abort();
    match done {
        Ok(f) => Ok(Some((f.sealed, f.unverified))),
        Err(JobError::Refused) => Ok(None),
        Err(JobError::Failed(e)) => Err(e),
    }
}

/// How often `hedui check` ([`run_job`]) looks in the store for a consent revoked by another
/// process while its departments are asked.
pub const CONSENT_RECHECK: Duration = Duration::from_millis(200);

/// The consent references of a household's persons (what [`Running`] keys a job by).
fn consent_refs(v: &ValidHousehold) -> Vec<String> {
    v.persons.iter().map(|(_, _, r)| r.clone()).collect()
}

/// How a job ended, as its `?wait=` waiter learns it.
#[derive(Clone)]
enum JobEnd {
    /// Its report, stored.
    Done(Arc<Finished>),
    /// Refused while it ran (a consent revoked), stored so.
    Refused,
}

/// Why [`run_job_timed`] made no report.
enum JobError {
    /// It failed (sealing, the store): the job stays queued.
    Failed(String),
    /// A consent was revoked while the departments were asked: stored as refused, with its
    /// audit rows.
    Refused,
}

impl From<String> for JobError {
    fn from(e: String) -> JobError {
        JobError::Failed(e)
    }
}

/// [`run_job`], also saying how long the slowest source took; with `delivery` (a `?wait=`
/// waiter, see [`Delivery`]) the job row, `verification_accepted` and `report_fetched` go
/// into the report's transaction when the job claims delivery.
async fn run_job_timed(
    app: &Arc<App>,
    id: &str,
    v: &ValidHousehold,
    actor: &str,
    delivery: Option<Delivery>,
    spawned: Instant,
    guard: &RunGuard,
) -> Result<Finished, JobError> {
    let t = Instant::now();
    let mut phases = Phases {
        start: t.duration_since(spawned).as_secs_f64(),
        ..Phases::default()
    };
    let as_of = app.as_of();
    let ids: Arc<Vec<String>> = Arc::new(v.persons.iter().map(|(_, id, _)| id.expose()).collect());
    // Written before any department is asked, so that a server that dies during the fan-out
    // leaves the queries it sent audited (session 22's attack: the `source_query` rows came
    // only with the report, and a job killed in its fan-out left none). One row for the job:
    // the persons (masked) and their consents, the sources to be asked.
    let sent = AuditEvent {
        actor: actor.to_string(),
        action: "source_query_sent".into(),
        job_id: id.to_string(),
        purpose: v.purpose.clone(),
        consent_ref: consent_refs(v).join(","),
        person: v
            .persons
            .iter()
            .map(|(_, idn, _)| idn.masked())
            .collect::<Vec<_>>()
            .join(","),
        source: app
            .sources
            .kinds()
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(","),
        outcome: format!("persons:{}", v.persons.len()),
    };
    // a `?wait=` job's acceptance goes first, unless its waiter gave up and wrote it
    let mut ahead = Vec::with_capacity(2);
    let took_accepted = delivery
        .as_ref()
        .is_some_and(|d| !d.accepted_taken.swap(true, Ordering::AcqRel));
    if let (true, Some(d)) = (took_accepted, &delivery) {
        ahead.push(d.accepted.clone());
    }
    ahead.push(sent);
    if let Err(e) = app.store.write(Write::Audit(ahead)).await {
        // not written: the waiter that stores the job writes its acceptance
        if let (true, Some(d)) = (took_accepted, &delivery) {
            d.accepted_taken.store(false, Ordering::Release);
        }
        return Err(JobError::Failed(e.to_string()));
    }
    // A consent revoked before the fan-out or while the departments are asked stops it, its
    // retries included (the requests in flight are dropped), and the job is refused. (A
    // revocation's signal waits for the job: `biased` looks at it first.)
    let answers = tokio::select! {
        biased;
        () = guard.stopped() => {
            refuse_running(app, id, actor, delivery).await?;
            return Err(JobError::Refused);
        }
        answers = app.sources.fan_out(ids.clone()) => answers,
    };
    let fanned = Instant::now();
    let policy = &app.settings.policy;
    let frame = Frame::new(as_of, policy);
    // Audit: one `source_query` row per person: their consent, the sources asked (`source`,
    // in the order asked) and what each said about that person (`outcome`,
    // `source=outcome;…`). One row per person and source (12 per person) made the audit
    // rows most of what a verification writes, and the commit of 50 concurrent households'
    // rows most of hedui's median overhead (README, "Serve load").
    // (+3: verification_accepted, report_built, report_fetched)
    let mut events = Vec::with_capacity(v.persons.len() + 3);
    let mut per_source: Vec<(SourceKind, SourceAnswer)> = Vec::with_capacity(answers.len());
    let mut asked = String::with_capacity(answers.len() * 16);
    let mut outcomes: Vec<String> = vec![String::with_capacity(answers.len() * 32); ids.len()];
    let source_wait_s = answers.iter().map(|(_, _, s, _)| *s).fold(0.0, f64::max);
    phases.fan_out = (fanned.duration_since(t).as_secs_f64() - source_wait_s).max(0.0);
    let mut unverified: Vec<String> = Vec::new();
    for (kind, answer, secs, cached) in answers {
        let outcome_code = match &answer {
            // every person's answer from the cache: no request sent
            SourceAnswer::Answered { .. } if !cached.is_empty() && cached.iter().all(|c| *c) => {
                "cached".to_string()
            }
            SourceAnswer::Answered { .. } => "answered".to_string(),
            SourceAnswer::Failed { code, .. } => {
                unverified.push(format!("{} ({code})", kind.name()));
                format!("failed:{code}")
            }
        };
        app.metrics.source(kind.name(), &outcome_code, secs);
        if !asked.is_empty() {
            asked.push(',');
        }
        asked.push_str(kind.name());
        // records per person: the connector returns each record under the normalised number
        // it was asked for, which is `ids[i]` (a household has a few persons: a scan)
        let mut counts = vec![0usize; ids.len()];
        if let SourceAnswer::Answered { records, .. } = &answer {
            for r in &records.records {
                if let Some(i) = ids.iter().position(|p| *p == r.id_number) {
                    counts[i] += 1;
                }
            }
        }
        for ((out, n), from_cache) in outcomes.iter_mut().zip(counts).zip(&cached) {
            use std::fmt::Write as _;
            if !out.is_empty() {
                out.push(';');
            }
            let _ = match &answer {
                // a person answered from the cache beside others whose request failed: the
                // call failed (the source is unverified for the household), but no request
                // was sent for them (session 22's second attack)
                SourceAnswer::Failed { code, .. } => {
                    let cached = if *from_cache { " (cached)" } else { "" };
                    write!(out, "{}=failed:{code}{cached}", kind.name())
                }
                // "(cached)" only for a person whose answer came from the cache: no request
                // was sent for them. (Until session 22 it followed the answer's age, which is
                // its oldest part's: a person asked in this call read as cached beside a
                // cached one, and one asked again within the second read as asked.)
                SourceAnswer::Answered { .. } => {
                    let cached = if *from_cache { " (cached)" } else { "" };
                    match n {
                        0 => write!(out, "{}=no_records{cached}", kind.name()),
                        n => write!(out, "{}=records:{n}{cached}", kind.name()),
                    }
                }
            };
        }
        per_source.push((kind, answer));
    }
    for ((_, idn, cref), outcome) in v.persons.iter().zip(outcomes) {
        events.push(AuditEvent {
            actor: actor.to_string(),
            action: "source_query".into(),
            job_id: id.to_string(),
            purpose: v.purpose.clone(),
            consent_ref: cref.clone(),
            person: idn.masked(),
            source: asked.clone(),
            outcome,
        });
    }
    let persons: Vec<IdNumber> = v.persons.iter().map(|(_, id, _)| *id).collect();
    let linked = crate::verify::link_answers(&persons, per_source, &frame, policy);
    let report = crate::verify::report_on_demand(v, &linked, policy, id, as_of);
    let run = app.sealer()?;
    // Reports run to tens of kB: written into a buffer kept by the worker thread (no await
    // while it is borrowed) instead of a fresh allocation of that size per report.
    thread_local! {
        static REPORT_TEXT: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let sealed = REPORT_TEXT.with_borrow_mut(|text| {
        text.clear();
        serde_json::to_writer(&mut *text, &report).map_err(|e| e.to_string())?;
        let sealed = run
            .sealer
            .seal(&report.report_id, text)
            .map_err(|e| e.to_string());
        if text.capacity() > 1 << 20 {
            *text = Vec::new(); // an outsized report does not pin its memory
        }
        sealed
    })?;
    let sealed = sealed.to_json_line();
    let det = report.determination.as_str();
    events.push(AuditEvent {
        actor: actor.to_string(),
        action: "report_built".into(),
        job_id: id.to_string(),
        purpose: v.purpose.clone(),
        outcome: format!(
            "sealed; unverified:{}",
            linked
                .unverified
                .iter()
                .map(|(k, _)| k.name())
                .collect::<Vec<_>>()
                .join(",")
        ),
        ..AuditEvent::default()
    });
    let fetched_audited = delivery.as_ref().is_some_and(|d| {
        d.claim
            .compare_exchange(
                claim::OPEN,
                claim::DELIVER,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    });
    // (its `verification_accepted` row went with `source_query_sent`, or with its waiter's
    // write of the job)
    let insert = delivery.map(|d| d.new_job);
    if fetched_audited {
        events.push(AuditEvent {
            actor: actor.to_string(),
            action: "report_fetched".into(),
            job_id: id.to_string(),
            outcome: "sealed_report".into(),
            ..AuditEvent::default()
        });
    }
    // Committed by the store's writer thread together with the other jobs' writes; the
    // sealed report comes back with the write (no copy of it is kept meanwhile).
    let det = det.to_string();
    let sealed_at = Instant::now();
    phases.build = sealed_at.duration_since(fanned).as_secs_f64();
    let done = app
        .store
        .write_returning(Write::Finish {
            id: id.to_string(),
            sealed,
            determination: det.clone(),
            events,
            insert,
        })
        .await
        .map_err(|e| e.to_string())?;
    let Write::Finish { sealed, .. } = done else {
        return Err(JobError::Failed(
            "the store handed back another write".into(),
        ));
    };
    let committed = Instant::now();
    phases.commit = committed.duration_since(sealed_at).as_secs_f64();
    phases.committed = Some(committed);
    app.metrics.verification(&det, t.elapsed().as_secs_f64());
    Ok(Finished {
        sealed,
        source_wait_s,
        fetched_audited,
        phases,
        unverified,
    })
}

/// A running job stopped by a revoked consent: stored as `refused` (`consent_revoked`) with
/// its `job_refused` row; a `?wait=` job not stored yet is inserted so (its waiter answers
/// from the stored row, `403`), or, when its waiter gave up and stores it as `queued`, the two
/// writes end `refused` in either order.
///
/// # Errors
/// The store's message (the job then stays as it was: queued, resumed at the next start,
/// where its consent is checked again and it is refused).
async fn refuse_running(
    app: &Arc<App>,
    id: &str,
    actor: &str,
    delivery: Option<Delivery>,
) -> Result<(), String> {
    let mut events = Vec::with_capacity(1);
    let mut insert = None;
    if let Some(d) = delivery {
        // a waiter still waiting answers from the stored row; one that gave up stores the
        // job itself (its `queued` row and this `refused` one, in either order, end refused)
        let _ = d.claim.compare_exchange(
            claim::OPEN,
            claim::DELIVER,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        insert = Some(d.new_job);
    }
    events.push(AuditEvent {
        actor: actor.to_string(),
        action: "job_refused".into(),
        job_id: id.to_string(),
        outcome:
            "consent_revoked: a consent was revoked while the departments were asked; no report"
                .into(),
        ..AuditEvent::default()
    });
    tracing::info!(job = %id, "A verification was stopped: a consent it uses was revoked.");
    app.store
        .write(Write::Refuse {
            id: id.to_string(),
            code: "consent_revoked".into(),
            events,
            insert,
        })
        .await
        .map_err(|e| e.to_string())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsentRequest {
    id_number: String,
    region_code: String,
    #[serde(default)]
    scope: Option<Vec<String>>,
    purpose: String,
    valid_until: String,
}

async fn post_consent(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    // The body is read (bounded by the limit) before any refusal: over HTTP/2, answering
    // before the request body was consumed reset the stream and clients saw no answer at all.
    let body = read_body(&app, body).await;
    let token = match app.authenticate(&headers, Role::Intake) {
        Ok(t) => t,
        Err(e) if e.code == "role_forbidden" => app.authenticate(&headers, Role::Admin)?,
        Err(e) => return Err(e),
    };
    let bytes = body?;
    let c: ConsentRequest = parse_json(&bytes)?;
    let bad = |code, field: &str, m: &str| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            code,
            Some(field.into()),
            m,
        )
    };
    let (idn, _) = IdNumber::parse(&c.id_number, crate::domain::date::today()).map_err(|_| {
        bad(
            "id_number_invalid",
            "id_number",
            "id_number is not a valid resident ID number",
        )
    })?;
    // A region code that is not one (short, letters, not in GB/T 2260) is a format error
    // naming the field, before any region check; full-width digits read as ASCII, as in ID
    // numbers (`RegionCode::parse`).
    let region = crate::domain::RegionCode::parse(&c.region_code).map_err(|_| {
        bad(
            "region_code_invalid",
            "region_code",
            "region_code must be a GB/T 2260 code of 6 digits",
        )
    })?;
    if !token.covers(&format!("{:06}", region.code())) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "region_forbidden",
            Some("region_code".into()),
            "this token may not register consents for this region",
        ));
    }
    let until_s = c.valid_until.trim();
    let until = (if until_s.len() == 10 {
        NaiveDate::parse_from_str(until_s, "%Y-%m-%d").ok()
    } else {
        None // `+10000-01-01` and other spellings chrono would take
    })
    .ok_or(())
    .map_err(|()| {
        bad(
            "date_invalid",
            "valid_until",
            "valid_until must be a date YYYY-MM-DD",
        )
    })?;
    let today = crate::domain::date::today();
    if until < today {
        return Err(bad(
            "consent_expired",
            "valid_until",
            "valid_until is in the past",
        ));
    }
    // Found by the s7 attack: `9999-12-31` was registered, a consent for life. A consent is
    // valid at most `[limits] max_consent_days` from today (default 366: 低保 is re-verified
    // at least yearly).
    let max_days = app.settings.config.limits.max_consent_days;
    if until > today + chrono::Days::new(u64::from(max_days)) {
        return Err(bad(
            "valid_until_too_late",
            "valid_until",
            &format!(
                "valid_until is at most {max_days} days from today ([limits] max_consent_days)"
            ),
        ));
    }
    let scope = c.scope.unwrap_or_else(|| vec!["*".into()]);
    if scope.is_empty() {
        return Err(bad(
            "scope_empty",
            "scope",
            "scope names at least one source, or \"*\" for all (omit it for all)",
        ));
    }
    for (i, s) in scope.iter().enumerate() {
        if s != "*" && SourceKind::from_name(s).is_none() {
            return Err(bad(
                "value_unknown",
                &format!("scope[{i}]"),
                "scope names sources (DESIGN.md §2) or \"*\"",
            ));
        }
    }
    let purpose: String = c.purpose.trim().to_string();
    crate::verify::request::check_purpose(&purpose)?;
    if purpose.is_empty() {
        return Err(bad("field_missing", "purpose", "purpose is required"));
    }
    // the consent and its audit row in one transaction: neither without the other
    let reference = app.store.add_consent(
        &idn.expose(),
        &idn.masked(),
        &scope,
        &purpose,
        &until.to_string(),
        &token.id,
        |reference| {
            vec![AuditEvent {
                actor: token.id.clone(),
                action: "consent_registered".into(),
                purpose: purpose.clone(),
                consent_ref: reference.to_string(),
                person: idn.masked(),
                // (the person's keyed hash too, so that `audit verify` finds a consent
                // whose person, scope or term was edited in the store: session 26's attack)
                outcome: format!(
                    "scope:{}; valid_until:{until}; person:{}",
                    scope.join(","),
                    app.store.person_hash(&idn.expose())
                ),
                ..AuditEvent::default()
            }]
        },
    )?;
    Ok((
        StatusCode::CREATED,
        axum::Json(
            json!({"consent_ref": reference, "valid_until": until.to_string(), "scope": scope}),
        ),
    )
        .into_response())
}

async fn delete_consent(
    State(app): State<Arc<App>>,
    PathParam(reference): PathParam,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = match app.authenticate(&headers, Role::Intake) {
        Ok(t) => t,
        Err(e) if e.code == "role_forbidden" => app.authenticate(&headers, Role::Admin)?,
        Err(e) => return Err(e),
    };
    let Some(c) = app.store.consent(&reference)? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "consent_unknown",
            Some("ref".into()),
            "no such consent",
        ));
    };
    // an admin revokes within its regions: those of the token that registered the consent
    let admin_may = token.has(Role::Admin)
        && app
            .store
            .token_by_id(&c.registered_by)?
            .is_some_and(|r| token.covers_all(&r.regions));
    if !admin_may && c.registered_by != token.id {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "consent_forbidden",
            Some("ref".into()),
            "only the registering token or an admin may revoke a consent",
        ));
    }
    let revoked = app.store.revoke_consent(&reference, |revoked| {
        vec![AuditEvent {
            actor: token.id.clone(),
            action: "consent_revoked".into(),
            consent_ref: reference.clone(),
            person: c.person_masked.clone(),
            outcome: if revoked {
                "revoked".into()
            } else {
                "already_revoked".into()
            },
            ..AuditEvent::default()
        }]
    })?;
    // The sources' answers cached for anyone are dropped: found by session 16's second
    // attack, a person verified again under a new consent got answers fetched under the
    // revoked one. (The store keeps no ID number to find the person's entries by, and a
    // revocation is rare: the caches fill again on the next verifications.)
    if revoked {
        app.sources.clear_caches();
        // the verifications using it stop (their fan-out and retries), after the commit
        app.running.stop(&reference);
    }
    Ok((
        StatusCode::OK,
        axum::Json(json!({"consent_ref": reference, "revoked": true})),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    roles: Vec<String>,
    regions: Vec<String>,
    #[serde(default)]
    label: String,
}

async fn post_token(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let body = read_body(&app, body).await;
    let token = app.authenticate(&headers, Role::Admin)?;
    let bytes = body?;
    let t: TokenRequest = parse_json(&bytes)?;
    let mut roles = Vec::new();
    for (i, r) in t.roles.iter().enumerate() {
        roles.push(Role::parse(r).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "value_unknown",
                Some(format!("roles[{i}]")),
                "roles are intake, auditor, admin",
            )
        })?);
    }
    for (i, r) in t.regions.iter().enumerate() {
        if !(r == "*" || (!r.is_empty() && r.len() <= 6 && r.bytes().all(|b| b.is_ascii_digit()))) {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "region_code_invalid",
                Some(format!("regions[{i}]")),
                "regions are region-code prefixes (1-6 digits) or \"*\"",
            ));
        }
    }
    // An admin of a county grants no more than its county.
    if let Some(i) = t
        .regions
        .iter()
        .position(|r| !token.covers_all(std::slice::from_ref(r)))
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "region_forbidden",
            Some(format!("regions[{i}]")),
            "a token can only be granted regions inside the granting admin's regions",
        ));
    }
    if crate::verify::request::holds_id_like(&t.label) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "label_invalid",
            Some("label".into()),
            "label must not hold an ID number (it is stored and listed)",
        ));
    }
    let (id, secret) = app.store.create_token(&roles, &t.regions, &t.label, |id| {
        vec![AuditEvent::token_created(&token.id, id)]
    })?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"id": id, "token": secret})),
    )
        .into_response())
}

/// `DELETE /v1/tokens/{id}`: an admin revokes a token whose regions lie inside its own.
async fn delete_token(
    State(app): State<Arc<App>>,
    PathParam(id): PathParam,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = app.authenticate(&headers, Role::Admin)?;
    let unknown = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "token_unknown",
            Some("id".into()),
            "no such token in your regions",
        )
    };
    // a malformed id is refused (and audited as `token_unknown:id`) without looking it up
    if !(id.starts_with("tok_") && id.len() <= 40 && id[4..].bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(unknown());
    }
    let Some(t) = app.store.token_by_id(&id)? else {
        return Err(unknown());
    };
    if !token.covers_all(&t.regions) {
        return Err(unknown());
    }
    app.store.revoke_token(&id, |was_active| {
        vec![AuditEvent::token_revoked(&token.id, &id, was_active)]
    })?;
    Ok((
        StatusCode::OK,
        axum::Json(json!({"id": id, "revoked": true})),
    )
        .into_response())
}

async fn get_audit(
    State(app): State<Arc<App>>,
    Query(q): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = app.authenticate(&headers, Role::Auditor)?;
    let q = query_once(q, &["after", "limit", "verify"])?;
    let number = |name: &str, default: i64, lo: i64, hi: i64| -> Result<i64, ApiError> {
        match q.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| (lo..=hi).contains(n))
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "parameter_invalid",
                        Some(name.to_string()),
                        format!("{name} must be a whole number from {lo} to {hi}"),
                    )
                }),
        }
    };
    // `after` is a row of the log, or 0: a larger one is refused, not named back as
    // `next_after` (session 17's attack: an 18-digit number, an ID number's length, came
    // back in the answer).
    let last = app.store.last_seq()?;
    let after = number("after", 0, 0, last)?;
    let limit = number("limit", 1000, 1, 10_000)?;
    if let Some(k) = q
        .keys()
        .find(|k| !["after", "limit", "verify"].contains(&k.as_str()))
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "parameter_unknown",
            Some(k.clone()),
            "parameters are after, limit and verify",
        ));
    }
    if q.get("verify").is_some_and(|v| v != "true" && v != "false") {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "parameter_invalid",
            Some("verify".into()),
            "verify is true or false",
        ));
    }
    let scanned = app.store.audit_rows(after, limit)?;
    // `next_after`: the last row read, for paging past rows of other regions. `more`: whether
    // rows after it existed when this page was read (a full page). Found by session 16's
    // attack: each page writes its own `audit_read` row after the ones read, so a client
    // that paged until a page came back empty never stopped.
    let next_after = scanned.last().map_or(after, |r| r.seq);
    let more = scanned.len() as i64 >= limit;
    // An auditor of a county reads its county's rows: a job's rows by the job's region, other
    // rows (consents, tokens, refusals) by the acting token's regions. `*` reads everything.
    let rows: Vec<_> = if token.regions.iter().any(|r| r == "*") {
        scanned
    } else {
        let mut jobs: HashMap<String, bool> = HashMap::new();
        let mut actors: HashMap<String, bool> = HashMap::new();
        let mut keep = Vec::with_capacity(scanned.len());
        for r in scanned {
            let ok = if !r.event.job_id.is_empty() {
                match jobs.get(&r.event.job_id) {
                    Some(&b) => b,
                    None => {
                        let b = app
                            .store
                            .job(&r.event.job_id)?
                            .is_some_and(|j| token.covers(&j.region_code));
                        jobs.insert(r.event.job_id.clone(), b);
                        b
                    }
                }
            } else {
                match actors.get(&r.event.actor) {
                    Some(&b) => b,
                    None => {
                        let b = app
                            .store
                            .token_by_id(&r.event.actor)?
                            .is_some_and(|t| token.covers_all(&t.regions));
                        actors.insert(r.event.actor.clone(), b);
                        b
                    }
                }
            };
            if ok {
                keep.push(r);
            }
        }
        keep
    };
    let check = if q.get("verify").is_some_and(|v| v == "true") {
        Some(app.store.verify_chain()?)
    } else {
        None
    };
    app.audit(&[AuditEvent {
        actor: token.id.clone(),
        action: "audit_read".into(),
        outcome: format!("rows:{}", rows.len()),
        ..AuditEvent::default()
    }])?;
    Ok(
        axum::Json(json!({"rows": rows, "next_after": next_after, "more": more, "chain": check}))
            .into_response(),
    )
}

async fn health(State(app): State<Arc<App>>) -> Response {
    let store_ok = app.store.audit_rows(i64::MAX - 1, 1).is_ok();
    let status = if store_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        axum::Json(json!({
            "status": if store_ok { "ok" } else { "store_unavailable" },
            "sources": app.sources.kinds().iter().map(|k| k.name()).collect::<Vec<_>>(),
            "policy": app.settings.policy.id,
        })),
    )
        .into_response()
}

async fn metrics_text(State(app): State<Arc<App>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        None,
        "this route does not take this method (see /v1/openapi.json)",
    )
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "route_unknown",
        None,
        "no such route (see /v1/openapi.json)",
    )
}

/// Around every request, routed or not: its metrics, and the one place a refusal is counted
/// and audited ([`App::account`]): as answered, by the token [`App::authenticate`] found
/// ([`ACTOR`]), whichever handler (or extractor, or fallback) answered it.
async fn track(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let t = Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let (resp, actor) = ACTOR
        .scope(std::cell::RefCell::new(None), async move {
            let resp = next.run(req).await;
            (resp, ACTOR.with(|a| a.borrow_mut().take()))
        })
        .await;
    let resp = match app.account(&resp, actor.as_deref()) {
        Ok(()) => resp,
        // the refusal's row could not be written: not answered without it
        Err(e) => e.into_response(),
    };
    app.metrics.request(
        &method,
        &route,
        resp.status().as_u16(),
        t.elapsed().as_secs_f64(),
    );
    resp
}

/// The router.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v1/verifications", post(post_verification))
        .route("/v1/verifications/{id}", get(get_verification))
        .route("/v1/consents", post(post_consent))
        .route("/v1/consents/{reference}", delete(delete_consent))
        .route("/v1/tokens", post(post_token))
        .route("/v1/tokens/{id}", delete(delete_token))
        .route("/v1/audit", get(get_audit))
        .route("/v1/health", get(health))
        .route("/v1/metrics", get(metrics_text))
        .route("/v1/openapi.json", get(openapi))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // `layer`, not `route_layer`: the fallbacks' refusals are audited too
        .layer(middleware::from_fn_with_state(app.clone(), track))
        .with_state(app)
}

/// Resume every job accepted but not finished (after a crash or kill).
pub fn resume_jobs(app: &Arc<App>) -> usize {
    let jobs = match app.store.unfinished_jobs() {
        Ok(j) => j,
        Err(e) => {
            tracing::error!(error = %e, "Unfinished jobs could not be read.");
            return 0;
        }
    };
    let mut n = 0;
    for job in jobs {
        let Some(text) = job.request.as_deref() else {
            continue;
        };
        // serde's message could quote a value of the request: only a code is kept.
        let v = serde_json::from_str::<HouseholdRequest>(text)
            .map_err(|_| "request_unreadable".to_string())
            .and_then(|r| {
                r.validate(app.as_of(), usize::MAX)
                    .map_err(|e| e.code.to_string())
            })
            // consents are checked again: one revoked or expired while the server was down
            // stops the job before any department is asked
            // and the token that posted it: one revoked while the server was down stops it
            // too (found by session 26's attack: the job was resumed and 12 departments asked
            // under a token revoked before the restart)
            .and_then(|v| match app.store.active_token_by_id(&job.token_id) {
                Ok(Some(_)) => Ok(v),
                Ok(None) => Err("token_revoked".to_string()),
                Err(_) => Err("store_unreadable".to_string()),
            })
            .and_then(|v| {
                let guard = app.running.register(consent_refs(&v));
                app.check_consents(&v, crate::domain::date::today())
                    .map(|()| (v, guard))
                    .map_err(|e| e.code.to_string())
            });
        match v {
            Ok((v, guard)) => {
                app.audit_act(&[AuditEvent {
                    actor: "system".into(),
                    action: "job_resumed".into(),
                    job_id: job.id.clone(),
                    purpose: v.purpose.clone(),
                    ..AuditEvent::default()
                }]);
                start_job(app, job.id.clone(), v, job.token_id.clone(), None, guard);
                n += 1;
            }
            Err(code) => {
                tracing::error!(job = %job.id, reason = %code, "A stored job cannot be resumed: refused.");
                if let Err(e) = app.store.refuse_job(&job.id, &code) {
                    tracing::error!(job = %job.id, error = %e, "The job could not be marked refused.");
                }
                app.audit_act(&[AuditEvent {
                    actor: "system".into(),
                    action: "job_refused".into(),
                    job_id: job.id.clone(),
                    outcome: code,
                    ..AuditEvent::default()
                }]);
            }
        }
    }
    n
}

/// Take the store's server lock: an `flock` on the store's database file itself (created
/// empty when it is not there yet; SQLite reads an empty file as a new database), so that a
/// second server finds it whatever name it is given (a symbolic or hard link: session 24's
/// third attack, against a lock file named after the path). Released when the process ends
/// however it ends; SQLite's own locks are of another kind (`fcntl`) and the file stays open.
///
/// # Errors
/// Another `hedui serve` holds it (naming the store), or the file cannot be opened.
fn lock_store_for_serve(store: &std::path::Path) -> anyhow::Result<std::fs::File> {
    use anyhow::Context;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(store)
        .with_context(|| format!("Failed to open the store {}", store.display()))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Err(anyhow::anyhow!(
            "another hedui serve uses the store {}: one server per store (a second would resume the first's running jobs and ask the departments again); stop it, or give this one a store of its own",
            store.display()
        )),
        Err(e) => Err(std::io::Error::from(e))
            .with_context(|| format!("Failed to lock the store {}", store.display())),
    }
}

/// `hedui serve`: load the config, open the store, resume jobs, serve HTTPS until killed.
///
/// # Errors
/// Start-up failures (config, TLS files, binding, another server on the store), as messages naming the file or key.
pub fn serve(config: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let settings = Settings::load(config)?;
    // One server per store: a second one resumed the first's running jobs (asking the
    // departments again) and read them as `queued` (session 24's second attack). Held until
    // the process ends; `hedui check` shares the store with a server by design.
    let _one_server = lock_store_for_serve(&settings.config.store)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .global_queue_interval(
            std::env::var("HEDUI_GQI")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(61),
        )
        .build()
        .context("Failed to start the runtime")?;
    rt.block_on(async move {
        // TLS with TCP_NODELAY (crate::certs::tls_acceptor): without it a response written in
        // two segments waits for the client's delayed ACK (40 ms).
        let tls = crate::certs::server_tls_config(&settings.config.tls_cert, &settings.config.tls_key, None)
            .map_err(|e| anyhow::anyhow!("Failed to load the TLS certificate/key: {e}"))?;
        // HTTP/1.1 only: hyper's header timeout (below) is HTTP/1's, and over HTTP/2 a client
        // that never finished a HEADERS frame, or opened no stream, kept its connection for
        // ever (session 25's attack: 150 such connections starved a server of its file
        // descriptors). The departments' sources are still asked over HTTP/2.
        let tls = {
            let mut cfg = std::sync::Arc::unwrap_or_clone(tls);
            cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
            std::sync::Arc::new(cfg)
        };
        let listen = settings.config.listen;
        let app = App::new(settings).map_err(anyhow::Error::msg)?;
        // refusals without a usable token: written within a second or two, and when stopped
        let flusher = app.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(UNAUTHENTICATED_AUDIT_EVERY).await;
                flusher.flush_unauthenticated(false);
            }
        });
        let stopper = app.clone();
        tokio::spawn(async move {
            let term = async {
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                () = term => {}
            }
            let _stopped = stopper.stop();
            std::process::exit(0);
        });
        let std_listener = std::net::TcpListener::bind(listen).with_context(|| format!("Failed to listen on {listen}"))?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        app.sources.warm_up(std::time::Duration::from_secs(2)).await;
        let resumed = resume_jobs(&app);
        println!("hedui serve: listening on https://{addr} ({} sources; {resumed} unfinished jobs resumed)", app.sources.kinds().len());
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let mut server = axum_server::from_tcp(std_listener)?
            .acceptor(crate::certs::tls_acceptor(tls))
            .http1_only();
        // A client that never finishes its headers is dropped after 10 s (without a timer
        // hyper waits forever: thousands of such connections starved the server).
        server
            .http_builder()
            .http1()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(std::time::Duration::from_secs(10));
        server
            .serve(router(app).into_make_service())
            .await
            .context("The server stopped")
    })
}

/// `hedui check --config FILE household.json`: the same verification as
/// `POST /v1/verifications`, from the command line (actor `cli` in the audit log). Writes
/// the sealed report to `out` (or stdout) and returns the exit code: 0 eligible,
/// 1 referred, 3 ineligible, 4 refused (bad input or consent, the reason on stderr as
/// `{"code","field","message"}`; or a consent revoked while the departments were asked, by
/// `hedui serve` in the same store, [`run_job`]), 2 failed.
///
/// # Errors
/// Start-up failures (config, store).
pub fn check(
    config: &std::path::Path,
    household: &std::path::Path,
    out: Option<&std::path::Path>,
) -> anyhow::Result<i32> {
    use anyhow::Context;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let settings = Settings::load(config)?;
    let bytes = std::fs::read(household)
        .with_context(|| format!("Failed to read {}", household.display()))?;
    // Whether the report can be written is checked before anything is queried (a report that
    // cannot be written would leave audited source queries behind for nothing). Nothing is
    // created, truncated or removed until the sealed report exists.
    if let Some(p) = out {
        if p.is_dir() {
            // (session 22's attack: the raw `Is a directory (os error 21)`)
            anyhow::bail!("Failed to open {} for writing: it is a folder", p.display());
        }
        if p.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .open(p)
                .with_context(|| format!("Failed to open {} for writing", p.display()))?;
        } else {
            let dir = p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            if !dir.is_dir() {
                // (session 22's attack: a file at the folder's place was said not to exist)
                anyhow::bail!(
                    "Failed to create {}: {} {}",
                    p.display(),
                    dir.display(),
                    if dir.exists() {
                        "is not a folder"
                    } else {
                        "does not exist"
                    }
                );
            }
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("Failed to start the runtime")?;
    rt.block_on(async move {
        let app = App::new(settings).map_err(anyhow::Error::msg)?;
        let refused = |e: ApiError| {
            if app
                .refused(Some("cli"), "", e.code, e.field.as_deref())
                .is_err()
            {
                anyhow::bail!("Failed to write the refusal's audit row (see the log)");
            }
            say!(
                "{}",
                json!({"code": e.code, "field": e.field, "message": e.message})
            );
            Ok(4)
        };
        let req: HouseholdRequest = match parse_json(&bytes) {
            Ok(r) => r,
            Err(e) => return refused(e),
        };
        let v = match req.validate(app.as_of(), app.settings.config.limits.max_persons) {
            Ok(v) => v,
            Err(e) => return refused(e.into()),
        };
        if let Err(e) = app.check_consents(&v, crate::domain::date::today()) {
            return refused(e);
        }
        let id = new_job_id();
        // Stored without its request: this process alone waits for the report, so a check
        // interrupted before it ends is never resumed by a `hedui serve` on the same store
        // (session 22's attack: serve resumed it, asking the departments for a report nobody
        // would read, and the request's ID numbers stayed in the store).
        app.store.insert_job(
            &id,
            "cli",
            &v.household.region_code,
            None,
            &[AuditEvent {
                actor: "cli".into(),
                action: "verification_accepted".into(),
                job_id: id.clone(),
                purpose: v.purpose.clone(),
                outcome: format!("persons:{}", v.persons.len()),
                ..AuditEvent::default()
            }],
        )?;
        let done = tokio::select! {
            done = run_job(&app, &id, &v, "cli") => done,
            signal = interrupted() => {
                // The fan-out is dropped with `run_job`'s future: no request is sent after
                // this. The departments already asked stay audited (`source_query_sent`).
                let code = "interrupted";
                app.store.write(Write::Refuse {
                    id: id.clone(),
                    code: code.into(),
                    events: vec![AuditEvent {
                        actor: "cli".into(),
                        action: "job_refused".into(),
                        job_id: id.clone(),
                        outcome: format!("{code}: {signal} while the departments were asked; no report"),
                        ..AuditEvent::default()
                    }],
                    insert: None,
                })
                .await
                .map_err(|e| anyhow::anyhow!("Failed to mark the interrupted verification {id} refused: {e}"))?;
                say!("verification {id}: refused ({code}: {signal} while the departments were asked; no report)");
                return Ok(EXIT_INTERRUPTED);
            }
        };
        let Some((sealed, unverified)) = done.map_err(anyhow::Error::msg)? else {
            say!(
                "verification {id}: refused (consent_revoked: a consent was revoked while the departments were asked; no report)"
            );
            return Ok(4);
        };
        match out {
            Some(p) => std::fs::write(p, &sealed)
                .with_context(|| format!("Failed to write {}", p.display()))?,
            None => {
                use std::io::Write as _;
                let mut o = std::io::stdout().lock();
                writeln!(o, "{sealed}").context("Failed to write the report to stdout")?;
            }
        }
        let det = app
            .store
            .job(&id)?
            .and_then(|j| j.determination)
            .unwrap_or_default();
        say!("verification {id}: {det}");
        // Which departments did not answer, and why (codes only: a department's own words may
        // echo what it was asked): the intake engineer running the check holds no key to the
        // report (found by the session 28 trial: `referred` and nothing else when every
        // department was unreachable).
        if !unverified.is_empty() {
            say!(
                "  unverified sources: {} (details in the sealed report and the audit log)",
                unverified.join(", ")
            );
        }
        Ok(match det.as_str() {
            "eligible" => 0,
            "referred" => 1,
            "ineligible" => 3,
            _ => 2,
        })
    })
}

/// `hedui check`'s exit code when it was interrupted (SIGINT, Ctrl-C, or SIGTERM) while the
/// departments were asked: 128 + SIGINT, the shells' convention. The job is stored refused
/// (`interrupted`), with its `job_refused` audit row; no report.
pub const EXIT_INTERRUPTED: i32 = 130;

/// Waits for SIGINT (Ctrl-C) or SIGTERM; says which. A signal whose handler cannot be set up
/// is never awaited (the process then ends by the signal's default action, as before).
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let wait = |kind: SignalKind| async move {
        match signal(kind) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = wait(SignalKind::interrupt()) => "SIGINT (Ctrl-C)",
        () = wait(SignalKind::terminate()) => "SIGTERM",
    }
}

#[cfg(test)]
mod tests {
    use super::scrub;

    #[test]
    fn keys_that_could_be_person_data_are_never_named_back() {
        assert_eq!(
            scrub("members[1].disability_grade"),
            "members[1].disability_grade"
        );
        assert_eq!(scrub("620503199803075480"), "?");
        assert_eq!(scrub("members[0].徐萍霞"), "members[0].???");
        assert_eq!(scrub("members.62050319750324540X\\"), "members.?\\");
        assert_eq!(scrub("wait"), "wait");
    }

    /// Session 18's attack: a key holding an ID number between colons, `|`, brackets or `+`
    /// was named back whole (groups of fewer than 6 digits were not masked).
    #[test]
    fn a_key_holding_an_id_number_between_loose_separators_is_masked() {
        for (key, shown) in [
            ("6205:0319:7503:2454:0X", "?"),
            ("members[0].620503|19750324|540X", "members[0].?"),
            ("x.(6205)(0319)(7503)(2454)(0X)", "x.(?)"),
            ("a.6205+0319+7503+2454+0X.b", "a.?.b"),
            // (a time as a key is masked too: more than needed, never less)
            ("t.10:30:00+08:00", "t.?"),
            ("t.10:30", "t.10:30"),
            // 17 digits (a wrong or lost check character) are the whole number
            ("k.6205|0319|7503|2454|0", "k.?"),
            ("6205:0319:7503:2454:0×", "?"),
        ] {
            assert_eq!(scrub(key), shown, "{key}");
        }
    }

    /// Session 17's attack: an unknown key `6205 0319 7503 2454 0X` was answered and
    /// audited as `6205 **** **** **** 0X` (only runs of 6 or more contiguous digits were
    /// masked), and a 300-character key was stored whole.
    #[test]
    fn a_key_holding_an_id_number_in_groups_is_masked_and_a_long_key_is_cut() {
        for (key, shown) in [
            ("6205 0319 7503 2454 0X", "?"),
            ("members[0].620503-1975-0324-540X", "members[0].?"),
            ("620503197 50324540X", "?"),
            ("x.6 2 0 5 0 3 1 9 7 5 0 3 2 4 5 4 0 X", "x.?"),
            ("６２０５ ０３１９ ７５０３ ２４５４ ０Ｘ", "?"),
            ("6205 ０３１９ 7503 2454 0X", "?"),
            ("card 6228.4804.0256", "card ?"),
            ("members[12].relation", "members[12].relation"),
            // 6 digits or more are masked, also in groups; fewer are not
            ("v 2026 11", "v ?"),
            ("v 2026 1", "v 2026 1"),
        ] {
            assert_eq!(scrub(key), shown, "{key}");
            assert_eq!(scrub(shown), shown, "idempotent: {shown}");
        }
        let long = "k".repeat(300);
        let cut = scrub(&long);
        assert_eq!(cut, format!("{}...", "k".repeat(super::MAX_FIELD_CHARS)));
        assert_eq!(scrub(&cut), cut, "idempotent");
        // cut after masking: no part of a number is left at the end
        let tail = format!("{}6205 0319 7503 2454 0X", "k".repeat(60));
        assert_eq!(scrub(&tail), format!("{}?", "k".repeat(60)));
    }

    /// Session 17's attack (repro 02): a key holding an ID number with an invisible
    /// character between its digits (U+200B, U+200D, U+2060, U+FEFF, U+00AD) was named back,
    /// audited and printed as `6?2?0?5?…0?X`: every non-ASCII character became `?` after the
    /// masking, which had seen no run. So did any other non-ASCII character, or `?` itself,
    /// between the digits: what is shown decides.
    #[test]
    fn a_key_holding_an_id_number_split_by_characters_shown_as_marks_is_masked() {
        let id = "62050319750324540X";
        let spread = |sep: &str| id.chars().map(String::from).collect::<Vec<_>>().join(sep);
        for sep in [
            "\u{200b}", "\u{200d}", "\u{2060}", "\u{feff}", "\u{00ad}", "中", "?", "\u{7}",
        ] {
            assert_eq!(scrub(&spread(sep)), "?", "{sep:?}");
            let key = format!("members[0].{}", spread(sep));
            assert_eq!(scrub(&key), "members[0].?", "{sep:?}");
        }
        let groups = format!("{}\u{200b}{}\u{feff}{}", &id[..6], &id[6..14], &id[14..]);
        assert_eq!(scrub(&groups), "?");
        // paths stay as they were; fewer than 6 digits are no number to hide
        assert_eq!(scrub("members[0].徐萍霞"), "members[0].???");
        assert_eq!(scrub("a?1?2?3?4"), "a?1?2?3?4");
        assert_eq!(scrub("supporters[1].x[2]"), "supporters[1].x[2]");
    }
}
