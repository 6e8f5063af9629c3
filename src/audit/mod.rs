//! The service's store: one SQLite file (rusqlite, WAL) holding verification jobs and their
//! sealed reports, bearer tokens (SHA-256 hashes only), registered consents and the audit
//! log.
//!
//! The audit log records every query of every person at every source, every report
//! fetched, every refusal and every administrative act: who (token id), when (UTC), the
//! purpose, the consent reference, the person masked (`6205**********1234`), the source and
//! the outcome (a verification's queries: one `source_query` row per person, listing every
//! source asked and what each said, see [`AuditEvent`]). It is hash-chained: row `n` stores `hash_n = SHA-256(hash_{n-1} ‖ content_n)`
//! (hex; `hash_0` = 64 zeros), where `content_n` is the row's fields length-prefixed in
//! column order. [`Store::verify_chain`] recomputes the chain and names the first row that
//! was edited, or the first gap left by a deleted row. (Truncating the newest rows is only
//! detectable against a head hash kept elsewhere: `hedui audit verify` prints it.)
//!
//! Jobs: a job is stored with its request before the client is answered `202`, and the
//! request is wiped when the job is done; a job still `queued` at start-up is resumed
//! ([`Store::unfinished_jobs`]). A `?wait=` job whose report is handed out at once is stored
//! only with its report, as `done`, in one write ([`Write::Finish`] with `insert`): the
//! client never held its id, so there is nothing to resume; if its waiter answers `202`
//! instead, it stores the job first. Raw ID numbers never reach the audit log or the tokens and
//! consents tables: consents keep a keyed hash of the person (HMAC-SHA256 with the
//! service's secret) and the masked form.

use std::io::Write as _;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use ring::{digest, hmac};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

/// Store errors (I/O or SQLite); messages carry no request values.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed. (Its message is in this one's, and SQLite's error is not its `source`:
    /// as a source a chain printed the cause twice, `store: database is locked: database is
    /// locked: Error code 5`, found by session 20's attack.)
    #[error("store: {0}")]
    Sql(rusqlite::Error),
    /// A lock was poisoned by a panic elsewhere.
    #[error("store: lock poisoned")]
    Poisoned,
    /// A queued write failed with its whole group (the commit failed) or the writer thread
    /// is gone; the message is SQLite's, with no request values.
    #[error("store: {0}")]
    Group(String),
    /// The store's file could not be created (its path and the system's message).
    #[error("store: {0}")]
    File(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Sql(e)
    }
}

/// A write for [`Store::write`], committed by the store's writer thread together with the
/// other writes waiting at that moment (group commit: one transaction for all of them, each
/// in a savepoint of its own so that one failing does not undo the others).
#[derive(Debug, Clone)]
pub enum Write {
    /// [`Store::insert_job`].
    Job {
        /// Job id.
        id: String,
        /// Submitting token.
        token_id: String,
        /// Household region.
        region_code: String,
        /// Request JSON (with the persons' ID numbers: kept only while the job may be resumed
        /// by `hedui serve`; `None` for a job nobody would resume, `hedui check`'s).
        request: Option<String>,
        /// Audit rows appended with it.
        events: Vec<AuditEvent>,
        /// Whether the job may already be stored by its own [`Write::Finish`] with `insert`
        /// (a `?wait=` job whose waiter gave up and stores it before answering `202`): then
        /// an existing row is left as it is (`done` stays `done`) instead of failing.
        if_absent: bool,
    },
    /// [`Store::finish_job`].
    Finish {
        /// Job id.
        id: String,
        /// Sealed report JSON.
        sealed: String,
        /// Determination.
        determination: String,
        /// Audit rows appended with it.
        events: Vec<AuditEvent>,
        /// A job never stored as `queued` (a `?wait=` job answered at once, see
        /// [`NewJob`]): the row is inserted as `done` (or, if its waiter stored it as `queued`
        /// meanwhile, updated), so the report and the job row are one write.
        insert: Option<NewJob>,
    },
    /// A job refused while it ran (a consent revoked during its fan-out): the row marked
    /// `refused` with `code`, its request dropped; with `insert` (a `?wait=` job not stored
    /// yet) inserted so, or, if its waiter stored it as `queued` meanwhile, updated.
    Refuse {
        /// Job id.
        id: String,
        /// The reason code (`consent_revoked`).
        code: String,
        /// Audit rows appended with it.
        events: Vec<AuditEvent>,
        /// As [`Write::Finish`]'s.
        insert: Option<NewJob>,
    },
    /// [`Store::audit`].
    Audit(Vec<AuditEvent>),
}

/// The columns of a job row that [`Write::Finish`] inserts when the job was not stored
/// before it ran.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Submitting token.
    pub token_id: String,
    /// Household region.
    pub region_code: String,
    /// When it was accepted (UTC, RFC 3339).
    pub created_at: String,
}

/// A queued write and where its result goes, with the write itself: it is dropped by the
/// caller's thread, not the writer's (each job's write holds hundreds of small strings, and
/// memory freed by another thread than the one that allocated it costs the allocator more).
type Queued = (
    Write,
    tokio::sync::oneshot::Sender<(Result<(), StoreError>, Write)>,
);

/// Most writes committed in one transaction by the writer thread.
const GROUP_MAX: usize = 256;
/// How long the audit head file may lag the last commit of the group writer when no
/// checkpoint thread keeps it (see [`write_head`]); with that thread it lags at most
/// [`CHECKPOINT_EVERY`]. A clean shutdown leaves it up to date either way.
const HEAD_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// Roles a token can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Intake systems: submit verifications and fetch the sealed reports of their regions;
    /// register consents of their regions.
    Intake,
    /// Read the audit log.
    Auditor,
    /// Tokens, keys and consents.
    Admin,
}

impl Role {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Intake => "intake",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }
    /// Parse a role name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "intake" => Some(Role::Intake),
            "auditor" => Some(Role::Auditor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// A bearer token as stored (the secret itself is shown once, at creation).
#[derive(Debug, Clone, Serialize)]
pub struct Token {
    /// Public id (`tok_` + 16 hex), written to the audit log as the actor.
    pub id: String,
    /// Roles.
    pub roles: Vec<Role>,
    /// Region-code prefixes the token may act for (`620503`, `6205`; `*` = all).
    pub regions: Vec<String>,
    /// Free label (which intake system or person).
    pub label: String,
}

impl Token {
    /// Whether the token holds `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
    /// Whether the token may act for a household of `region_code`.
    pub fn covers(&self, region_code: &str) -> bool {
        self.regions
            .iter()
            .any(|p| p == "*" || (!p.is_empty() && region_code.starts_with(p.as_str())))
    }
    /// Whether every region of `other` (prefixes or `*`) lies inside this token's regions: an
    /// admin grants, and revokes or reads for, only what it covers itself.
    pub fn covers_all(&self, other: &[String]) -> bool {
        other.iter().all(|r| {
            self.regions
                .iter()
                .any(|p| p == "*" || (r != "*" && !p.is_empty() && r.starts_with(p.as_str())))
        })
    }
}

/// A registered consent (授权书).
#[derive(Debug, Clone, Serialize)]
pub struct Consent {
    /// Reference (`cr_` + 24 hex).
    pub reference: String,
    /// Keyed hash of the person's ID number (hex).
    #[serde(skip)]
    pub person_hash: String,
    /// Masked ID number.
    pub person_masked: String,
    /// Sources covered (names), or `["*"]` for all.
    pub scope: Vec<String>,
    /// Purpose.
    pub purpose: String,
    /// Last day it is valid (ISO date, inclusive).
    pub valid_until: String,
    /// When it was revoked (UTC), if it was.
    pub revoked_at: Option<String>,
    /// Token that registered it.
    pub registered_by: String,
}

/// One audit event to append.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditEvent {
    /// Token id, `cli`, or `system`.
    pub actor: String,
    /// `verification_accepted`, `source_query`, `report_built`, `report_fetched`,
    /// `refused`, `consent_registered`, `consent_revoked`, `token_created`, `token_revoked`,
    /// `job_resumed`.
    pub action: String,
    /// The verification (job) id, if any.
    pub job_id: String,
    /// Purpose of the query.
    pub purpose: String,
    /// Consent reference.
    pub consent_ref: String,
    /// Masked person.
    pub person: String,
    /// Source name; for `source_query`, every source asked for the person, comma-separated
    /// in the order asked (`household_registration,tax,…`).
    pub source: String,
    /// Outcome (`records:3`, `no_records`, `failed:timeout`, an error code, …); for
    /// `source_query`, each source's for the person, `;`-separated in the order of `source`
    /// (`household_registration=records:1;tax=no_records;bank=failed:timeout;…`; ` (cached)`
    /// after an answer from hedui's cache).
    pub outcome: String,
}

impl AuditEvent {
    /// The row of a token created by `actor` (a token id, or `cli`): outcome the new id, as
    /// [`Store::unaudited_acts`] looks for it.
    pub fn token_created(actor: &str, id: &str) -> AuditEvent {
        AuditEvent {
            actor: actor.into(),
            action: "token_created".into(),
            outcome: id.into(),
            ..AuditEvent::default()
        }
    }

    /// The row of a token revoked by `actor`: outcome its id, or `ID already_revoked` when it
    /// was not active.
    pub fn token_revoked(actor: &str, id: &str, was_active: bool) -> AuditEvent {
        AuditEvent {
            actor: actor.into(),
            action: "token_revoked".into(),
            outcome: if was_active {
                id.into()
            } else {
                format!("{id} already_revoked")
            },
            ..AuditEvent::default()
        }
    }
}

/// One audit row as read back.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRow {
    /// Sequence number from 1.
    pub seq: i64,
    /// UTC time, RFC 3339.
    pub at: String,
    /// The event.
    #[serde(flatten)]
    pub event: AuditEvent,
    /// Chain hash of this row (hex).
    pub hash: String,
}

/// Result of [`Store::verify_chain`].
#[derive(Debug, Clone, Serialize)]
pub struct ChainCheck {
    /// Rows checked.
    pub rows: i64,
    /// Hash of the last row (keep it elsewhere to detect truncation).
    pub head: String,
    /// The first bad row and why, if any.
    pub first_bad: Option<(i64, String)>,
}

/// A job row.
#[derive(Debug, Clone)]
pub struct Job {
    /// Id (`v_` + 24 hex).
    pub id: String,
    /// Submitting token.
    pub token_id: String,
    /// Region of the household.
    pub region_code: String,
    /// `queued` / `done`.
    pub status: String,
    /// The request JSON while queued (wiped when done).
    pub request: Option<String>,
    /// The sealed report JSON when done.
    pub sealed: Option<String>,
    /// Determination when done (kept for counts; the report itself is sealed).
    pub determination: Option<String>,
}

/// The store. Two connections to one WAL file: the *write* connection (behind a mutex:
/// SQLite serialises writers anyway, and the audit chain needs appends in one order) and a
/// *read* connection for the lookups of every request (token, consent, job), so that a
/// request's checks never wait behind another job's commit. WAL checkpoints run on a
/// background thread of their own ([`CHECKPOINT_EVERY`]), not inside a request's commit.
pub struct Store {
    conn: std::sync::Arc<Mutex<Connection>>,
    // The group-commit writer thread's queue (None: no thread could be started; writes
    // then commit one by one on the caller's thread).
    writer: Option<Mutex<std::sync::mpsc::Sender<Queued>>>,
    // Writes sent to the writer thread and not yet committed: while there are any, a write
    // queues behind them instead of committing on its caller's thread.
    pending: std::sync::Arc<AtomicUsize>,
    // Set while the checkpoint thread holds the write connection's mutex for long.
    long_hold: std::sync::Arc<std::sync::atomic::AtomicBool>,
    // Commits so far (every path): the checkpoint thread syncs the WAL when it moved.
    commits: std::sync::Arc<AtomicU64>,
    read: Mutex<Connection>,
    secret: hmac::Key,
    // `<store>.audit-head`: the last committed audit row (see [`write_head`]).
    head_path: std::path::PathBuf,
    // `<store>-wal`, synced by [`Store::stop_writes`].
    wal_path: std::path::PathBuf,
    // Whether the checkpoint thread keeps the head file (then no commit writes it but the
    // first of a store that has none: see `first_head`).
    head_kept: bool,
    // Dropping this sender stops the checkpoint thread (see `Drop for Store`).
    checkpointer: Option<std::sync::mpsc::Sender<()>>,
    // The writer and checkpoint threads, joined when the store is dropped: its last
    // commits, then the head file, are on disk when `drop` returns.
    writer_thread: Option<std::thread::JoinHandle<()>>,
    checkpoint_thread: Option<std::thread::JoinHandle<()>>,
}

/// The store's write connection, held from [`Store::stop_writes`] until the process exits.
pub struct WritesStopped<'a>(#[allow(dead_code)] std::sync::MutexGuard<'a, Connection>);

impl Drop for Store {
    fn drop(&mut self) {
        // The writer first (it commits what is queued and writes the head), then the
        // checkpoint thread (its last round writes the head if the writer could not).
        drop(self.writer.take());
        if let Some(w) = self.writer_thread.take() {
            let _ = w.join();
        }
        drop(self.checkpointer.take());
        if let Some(c) = self.checkpoint_thread.take() {
            let _ = c.join();
        }
    }
}

/// How often the background thread looks at the store: it syncs the WAL when anything was
/// committed, and copies it into the database file now and then (see `Keeper`).
pub const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// The WAL size (pages of 4 KiB) at which a commit checkpoints by itself, only when the
/// background thread could not be started (SQLite's default is 1,000).
///
/// With the thread running, commits never checkpoint: a commit that checkpoints syncs the
/// WAL and the database file (two `fsync`s, 50–160 ms on this machine's disk) while every
/// waiting verification waits for it. Under sustained load the WAL is never wholly copied at
/// the moment a write begins, so SQLite cannot start it over; once it had passed this size,
/// every commit checkpointed (measured: warm p99 overhead 175 ms in benches/serve.sh, with
/// commits of one write taking 159 ms).
const AUTOCHECKPOINT_PAGES: i64 = 20_000;

/// The WAL size (pages of 4 KiB, 256 MiB) above which the background thread starts the WAL
/// over (`PRAGMA wal_checkpoint(RESTART)`): it waits for the writer and the readers to
/// let go of the WAL (at most [`RESTART_WAIT`]), so commits pause once per 256 MiB of
/// writes instead of syncing at every commit; without it the WAL would grow as long as the
/// load lasts.
const WAL_RESTART_PAGES: i64 = 65_536;

/// Commits after which the checkpoint thread copies the WAL into the database file
/// (~24 MiB of WAL for verifications). Each copy that catches up ends with the WAL started
/// over ([`checkpoint_round`]); between copies the WAL only grows, so no request's commit
/// starts it over.
const CHECKPOINT_COMMITS: u64 = 1_000;

/// At least this often, what was committed since the last copy is copied, however few
/// commits it was.
const CHECKPOINT_IDLE: std::time::Duration = std::time::Duration::from_secs(10);

/// How long the background thread's `RESTART` checkpoint waits for the writer and the
/// readers before giving up until its next round.
const RESTART_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The size (bytes) the WAL file is cut back to after it is started over.
const WAL_KEEP_BYTES: i64 = 64 << 20;

const ZERO: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Current UTC time, RFC 3339 with milliseconds.
pub fn now_utc() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    hex::encode(b)
}

/// A token's terms as its `token_created` row keeps them (`purpose`): roles, regions and the
/// first 16 hexadecimal digits of its secret's hash, each as the `tokens` table holds it.
fn token_terms(roles: &str, regions: &str, hash: &str) -> String {
    format!(
        "roles:{roles}; regions:{regions}; secret_hash:{}",
        hash.get(..16).unwrap_or(hash)
    )
}

/// SHA-256 of a token secret, hex (what the store keeps).
pub fn token_hash(secret: &str) -> String {
    hex::encode(digest::digest(&digest::SHA256, secret.as_bytes()))
}

fn row_content(seq: i64, at: &str, e: &AuditEvent) -> Vec<u8> {
    let mut out = Vec::new();
    row_content_into(&mut out, seq, at, e);
    out
}

/// [`row_content`] into a buffer the caller reuses (cleared first).
fn row_content_into(out: &mut Vec<u8>, seq: i64, at: &str, e: &AuditEvent) {
    out.clear();
    let n = seq.to_string();
    for f in [
        n.as_str(),
        at,
        &e.actor,
        &e.action,
        &e.job_id,
        &e.purpose,
        &e.consent_ref,
        &e.person,
        &e.source,
        &e.outcome,
    ] {
        out.extend_from_slice(&(f.len() as u64).to_be_bytes());
        out.extend_from_slice(f.as_bytes());
    }
}

fn chain_hash(prev: &str, content: &[u8]) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(prev.as_bytes());
    ctx.update(content);
    // lower-case hex, as `hex::encode` writes it (without its per-character iterator)
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let d = ctx.finish();
    let mut out = String::with_capacity(64);
    for &b in d.as_ref() {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

/// The chain's last row (`seq`, `hash`) as a group's transaction has it, so that the writes
/// of one group read it once, not once each. `None`: read it from the table (at the start
/// of a transaction, and after a write of the group was rolled back).
type Head = Option<(i64, String)>;

/// Append `events` to the chain inside the caller's transaction (one statement, prepared
/// once per connection; the chain head is read from `head`, or from the table when unknown,
/// and left there for the next write of the same transaction).
fn append_events(
    tx: &Connection,
    events: &[AuditEvent],
    head: &mut Head,
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let (mut seq, mut prev): (i64, String) = match head.take() {
        Some(h) => h,
        None => tx
            .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?
            .unwrap_or((0, ZERO.to_string())),
    };
    let mut st = tx.prepare_cached(
        "INSERT INTO audit (seq, at, actor, action, job_id, purpose, consent_ref, person,
         source, outcome, prev_hash, hash) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)",
    )?;
    let at = now_utc();
    let mut content = Vec::with_capacity(512);
    for e in events {
        seq += 1;
        row_content_into(&mut content, seq, &at, e);
        let h = chain_hash(&prev, &content);
        st.execute(params![
            seq,
            at,
            e.actor,
            e.action,
            e.job_id,
            e.purpose,
            e.consent_ref,
            e.person,
            e.source,
            e.outcome,
            prev,
            h
        ])?;
        prev = h;
    }
    *head = Some((seq, prev));
    Ok(())
}

/// Apply one write inside the caller's transaction.
fn apply(tx: &Connection, w: &Write, head: &mut Head) -> Result<(), StoreError> {
    match w {
        Write::Job {
            id,
            token_id,
            region_code,
            request,
            events,
            if_absent,
        } => {
            // A duplicate id fails (a constraint error), unless the job may be stored already.
            let sql = if *if_absent {
                "INSERT INTO jobs (id, token_id, region_code, status, request, created_at)
                 VALUES (?1,?2,?3,'queued',?4,?5) ON CONFLICT(id) DO NOTHING"
            } else {
                "INSERT INTO jobs (id, token_id, region_code, status, request, created_at)
                 VALUES (?1,?2,?3,'queued',?4,?5)"
            };
            tx.prepare_cached(sql)?.execute(params![
                id,
                token_id,
                region_code,
                request,
                now_utc()
            ])?;
            append_events(tx, events, head)
        }
        Write::Finish {
            id,
            sealed,
            determination,
            events,
            insert,
        } => {
            append_events(tx, events, head)?;
            match insert {
                None => tx
                    .prepare_cached(
                        "UPDATE jobs SET status = 'done', sealed = ?2, determination = ?3,
                         request = NULL, finished_at = ?4 WHERE id = ?1",
                    )?
                    .execute(params![id, sealed, determination, now_utc()])?,
                Some(j) => tx
                    .prepare_cached(
                        "INSERT INTO jobs (id, token_id, region_code, status, sealed,
                         determination, created_at, finished_at)
                         VALUES (?1,?5,?6,'done',?2,?3,?7,?4)
                         ON CONFLICT(id) DO UPDATE SET status = 'done', sealed = excluded.sealed,
                         determination = excluded.determination, request = NULL,
                         finished_at = excluded.finished_at",
                    )?
                    .execute(params![
                        id,
                        sealed,
                        determination,
                        now_utc(),
                        j.token_id,
                        j.region_code,
                        j.created_at
                    ])?,
            };
            Ok(())
        }
        Write::Refuse {
            id,
            code,
            events,
            insert,
        } => {
            append_events(tx, events, head)?;
            match insert {
                None => tx
                    .prepare_cached(
                        "UPDATE jobs SET status = 'refused', determination = ?2, request = NULL,
                         finished_at = ?3 WHERE id = ?1",
                    )?
                    .execute(params![id, code, now_utc()])?,
                Some(j) => tx
                    .prepare_cached(
                        "INSERT INTO jobs (id, token_id, region_code, status, determination,
                         created_at, finished_at)
                         VALUES (?1,?4,?5,'refused',?2,?6,?3)
                         ON CONFLICT(id) DO UPDATE SET status = 'refused',
                         determination = excluded.determination, request = NULL,
                         finished_at = excluded.finished_at",
                    )?
                    .execute(params![
                        id,
                        code,
                        now_utc(),
                        j.token_id,
                        j.region_code,
                        j.created_at
                    ])?,
            };
            Ok(())
        }
        Write::Audit(events) => append_events(tx, events, head),
    }
}

/// A write transaction on `conn`, its write lock taken at `BEGIN IMMEDIATE`: while another
/// process holds the store's write lock (`hedui token add --store hedui.db` beside the
/// server), it waits for it up to the connection's busy timeout (10 s). A deferred
/// transaction reads the chain's head first and then asks for the write lock, and SQLite
/// answers a read transaction's upgrade with `database is locked` at once, without waiting
/// (no busy handler, since a wait there could deadlock): found by session 17's attack, a
/// refusal's audit row was dropped at once while a token was added from the command line.
fn write_transaction(conn: &mut Connection) -> Result<rusqlite::Transaction<'_>, rusqlite::Error> {
    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
}

/// Apply writes in one transaction, each in a savepoint; returns each write's result
/// (all failed when the transaction cannot begin or commit).
fn apply_group(conn: &mut Connection, group: &[&Write]) -> Vec<Result<(), StoreError>> {
    let all_failed = |e: &dyn std::fmt::Display| {
        group
            .iter()
            .map(|_| Err(StoreError::Group(e.to_string())))
            .collect()
    };
    let mut tx = match write_transaction(conn) {
        Ok(tx) => tx,
        Err(e) => return all_failed(&e),
    };
    let mut results = Vec::with_capacity(group.len());
    let mut head: Head = None;
    for w in group {
        let r = (|| -> Result<(), StoreError> {
            let sp = tx.savepoint()?;
            apply(&sp, w, &mut head)?;
            sp.commit()?;
            Ok(())
        })();
        if r.is_err() {
            // rolled back: the head it left may be gone
            head = None;
        }
        results.push(r);
    }
    match tx.commit() {
        Ok(()) => results,
        Err(e) => all_failed(&e),
    }
}

/// One checkpoint of the background thread: copy what the WAL holds into the database
/// file without blocking anyone (`PASSIVE`); when that copied all of it, or when the WAL
/// holds more than `restart_pages` ([`WAL_RESTART_PAGES`]) pages (then after a `RESTART`,
/// waiting at most [`RESTART_WAIT`] for the readers), start the WAL over by a write of its
/// own ([`restart_marker`]), holding `writer`'s mutex throughout. Returns whether the WAL
/// was started over. A failure is logged; the next round retries.
///
/// Why the thread writes: SQLite starts a wholly copied WAL over at the next write and
/// syncs the new WAL header then (`synchronous = NORMAL`), 1–50 ms on this machine's
/// disk. That write used to be a verification's, committed on the runtime's thread.
fn checkpoint_round(
    c: &Connection,
    writer: &Mutex<Connection>,
    long_hold: &std::sync::atomic::AtomicBool,
    restart_pages: i64,
) -> bool {
    let (busy, log, copied) = match wal_checkpoint(c, "PASSIVE") {
        Ok(r) => r,
        Err(e) => return checkpoint_failed(&e),
    };
    if log <= restart_pages && (busy != 0 || log == 0 || copied < log) {
        return false;
    }
    long_hold.store(true, Ordering::Release);
    let started = checkpoint_restart(c, writer, log, restart_pages);
    long_hold.store(false, Ordering::Release);
    started
}

/// The WAL copied and cut to nothing (`PRAGMA wal_checkpoint(TRUNCATE)`), when no one is
/// using it: a WAL started over keeps its earlier pages in the file (up to 64 MiB) until they
/// are written over, and those pages hold what later writes removed (a finished job's request,
/// with its persons' ID numbers and names: session 26's attack found 12 copies in
/// `hedui.db-wal`). Called by the checkpoint thread when it started the WAL over at an idle
/// round; a busy WAL is tried again every idle period (`Keeper::round`). `true` when cut.
fn scrub_wal(c: &Connection) -> bool {
    match wal_checkpoint(c, "TRUNCATE") {
        Ok((0, _, _)) => {
            tracing::debug!("The WAL was cut to nothing.");
            true
        }
        Ok(_) => {
            tracing::debug!("The WAL is busy; it is cut at a later idle round.");
            false
        }
        Err(e) => checkpoint_failed(&e),
    }
}

/// `PRAGMA wal_checkpoint(mode)` on `c`: (busy, pages in the WAL, pages copied).
fn wal_checkpoint(c: &Connection, mode: &str) -> rusqlite::Result<(i64, i64, i64)> {
    c.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
}

/// A failed checkpoint step, logged (the next round retries); `false`: not started over.
fn checkpoint_failed(e: &dyn std::fmt::Display) -> bool {
    tracing::warn!(error = %e, "A WAL checkpoint failed; the next one retries.");
    false
}

/// The part of [`checkpoint_round`] under `writer`'s mutex.
fn checkpoint_restart(
    c: &Connection,
    writer: &Mutex<Connection>,
    log: i64,
    restart_pages: i64,
) -> bool {
    let Ok(w) = writer.lock() else { return false };
    if log > restart_pages {
        match wal_checkpoint(c, "RESTART") {
            Ok((0, _, _)) => {}
            Ok(_) => {
                tracing::debug!(
                    pages = log,
                    "The WAL is busy; it is started over at a later round."
                );
                return false;
            }
            Err(e) => return checkpoint_failed(&e),
        }
    }
    match restart_marker(&w) {
        Ok(()) => {
            tracing::debug!(pages = log, "The WAL was started over.");
            true
        }
        Err(e) => checkpoint_failed(&e),
    }
}

/// The write that starts a wholly copied WAL over (see [`checkpoint_round`]): the time, in
/// `store_meta`.
fn restart_marker(w: &Connection) -> Result<(), rusqlite::Error> {
    w.prepare_cached(
        "INSERT INTO store_meta (k, v) VALUES ('wal_started', ?1)
         ON CONFLICT (k) DO UPDATE SET v = excluded.v",
    )?
    .execute([now_utc()])
    .map(drop)
}

/// The checkpoint thread's state (see [`Store::open`]): every [`CHECKPOINT_EVERY`] it syncs
/// the WAL when anything was committed (a commit is on disk within that time, as SQLite's
/// own checkpoints did), copies the WAL into the database file after
/// [`CHECKPOINT_COMMITS`] commits, or [`CHECKPOINT_IDLE`] after the last copy when anything
/// was committed ([`checkpoint_round`]), and keeps the audit head file ([`keep_head`]).
struct Keeper {
    c: Connection,
    writer: std::sync::Arc<Mutex<Connection>>,
    /// Set while this thread holds `writer`'s mutex for long (see `Store::write_returning`).
    long_hold: std::sync::Arc<std::sync::atomic::AtomicBool>,
    wal_path: std::path::PathBuf,
    head_path: std::path::PathBuf,
    /// The audit row the head file was last written for.
    head: Option<i64>,
    commits: std::sync::Arc<AtomicU64>,
    /// `commits` at the last WAL sync and at the last checkpoint.
    synced: u64,
    copied: u64,
    copied_at: std::time::Instant,
    /// `commits` when the WAL was last cut to nothing ([`scrub_wal`]).
    scrubbed: u64,
}

impl Keeper {
    fn round(&mut self) {
        self.sync_wal();
        let n = self.synced;
        let busy = n.saturating_sub(self.copied) >= CHECKPOINT_COMMITS;
        let idle = self.copied_at.elapsed() >= CHECKPOINT_IDLE;
        if busy || (n != self.copied && idle) {
            let started =
                checkpoint_round(&self.c, &self.writer, &self.long_hold, WAL_RESTART_PAGES);
            // (idle: the WAL cut to nothing, see `scrub_wal`; under load it is only started
            // over, as the serve benchmarks measured)
            if started && !busy && scrub_wal(&self.c) {
                self.scrubbed = n;
            }
            self.copied = n;
            self.copied_at = std::time::Instant::now();
        } else if self.scrubbed != n && idle {
            // Not cut since the last commits (a reader held the WAL, or the last copy came
            // at the end of a burst): tried again every idle period until it is. Found by
            // session 26's second attack: a reader open at the one idle round left the
            // finished requests in the WAL for good.
            if checkpoint_round(&self.c, &self.writer, &self.long_hold, WAL_RESTART_PAGES)
                && scrub_wal(&self.c)
            {
                self.scrubbed = n;
            }
            self.copied_at = std::time::Instant::now();
        }
        keep_head(&self.c, &self.head_path, &mut self.head);
    }

    /// `fsync` the WAL file when anything was committed since the last time.
    fn sync_wal(&mut self) {
        let n = self.commits.load(Ordering::Acquire);
        if n != self.synced {
            if let Err(e) = std::fs::File::open(&self.wal_path).and_then(|f| f.sync_data()) {
                tracing::warn!(error = %e, "The WAL could not be synced; the next round retries.");
                return;
            }
            self.synced = n;
        }
    }
}

/// `hedui.db` → `hedui.db-wal` (SQLite's name for the WAL).
fn wal_path_of(store: &Path) -> std::path::PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push("-wal");
    std::path::PathBuf::from(name)
}

/// `hedui.db` → `hedui.db.audit-head`.
fn head_path_of(store: &Path) -> std::path::PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(".audit-head");
    std::path::PathBuf::from(name)
}

/// Record the last committed audit row (`seq hash`) in the head file beside the store,
/// replaced atomically (a file `<head>.<who>.<pid>.tmp` renamed over it). The store's checkpoint
/// thread writes it at most [`CHECKPOINT_EVERY`] after a commit, and the writer thread when
/// it stops; without a checkpoint thread, every direct commit and the group writer (at most
/// [`HEAD_EVERY`] after a commit) write it. It is never written inside a request's commit:
/// replacing a file by a rename makes ext4 start writing its data out at once, 2–7 ms
/// during which the writer held the store and every verification's commit waited
/// (README, "Serve load").
///
/// [`Store::verify_chain`] checks the table against it, so rows deleted from the end of the
/// log (which leave a valid, shorter chain) are found unless the head file is rewritten
/// too; copy it elsewhere (a log shipper, a daily print) for a guarantee that does not rest
/// on this machine. The head never moves back to an earlier row. A failure to write it is
/// logged, never fatal: the rows themselves are committed.
fn write_head(conn: &Connection, head_path: &Path, who: &str) {
    // One writer of the head file at a time in this process: a thread that read an older row
    // must not rename its file over a newer one written meanwhile (the last head written at
    // a stop, [`Store::stop_writes`], against the checkpoint thread's round).
    static WRITING: Mutex<()> = Mutex::new(());
    let _one = WRITING.lock().unwrap_or_else(|p| p.into_inner());
    let head: Result<Option<(i64, String)>, rusqlite::Error> = conn
        .query_row(
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional();
    let Ok(Some((seq, hash))) = head else { return };
    let exists = head_path.exists();
    // A store that has had a head file never makes a new one: a missing head file is
    // evidence (rows deleted from the end, then the head removed) that every `audit verify`
    // keeps naming. Found by session 26's attack: the first `verify` said "head file
    // missing", and closing its store wrote a new head at the cut, so the second said
    // `chain ok`.
    if !exists && had_head(conn) {
        tracing::error!(
            "The audit head file is missing, though this store had one: it is not made again (evidence). Run `hedui audit verify`."
        );
        return;
    }
    // The head never moves past evidence: if the row it records is gone or changed (rows
    // deleted from the end, then new rows appended under the same numbers), it stays as it
    // is, so `audit verify` keeps naming the break instead of a later write erasing it.
    if let Some((seq0, hash0)) = std::fs::read_to_string(head_path).ok().and_then(|t| {
        let (a, b) = t.trim().split_once(' ')?;
        Some((a.parse::<i64>().ok()?, b.to_string()))
    }) {
        let still: Option<String> = conn
            .query_row("SELECT hash FROM audit WHERE seq = ?1", [seq0], |r| {
                r.get(0)
            })
            .optional()
            .ok()
            .flatten();
        if still.as_deref() != Some(hash0.as_str()) {
            tracing::error!(
                recorded_row = seq0,
                "The audit log no longer holds the row its head file records (rows deleted or rewritten); the head file is kept as evidence. Run `hedui audit verify`."
            );
            return;
        }
        if seq0 >= seq {
            return; // up to date (or another thread wrote a later row's head meanwhile)
        }
    }
    // the process id too: `hedui token add` beside a running server writes the same head
    // file, and two writers of one temporary file had one rename fail
    let tmp = head_path.with_extension(format!("audit-head.{who}.{}.tmp", std::process::id()));
    let r = private_file(&tmp)
        .and_then(|mut f| f.write_all(format!("{seq} {hash}\n").as_bytes()))
        .and_then(|()| std::fs::rename(&tmp, head_path));
    match r {
        Err(e) => tracing::warn!(error = %e, "The audit head file could not be written."),
        // (the store records that it has a head file; if this write fails, the next open
        // records it: `Store::open`)
        Ok(()) if !exists => mark_head(conn),
        Ok(()) => {}
    }
}

/// Whether the store records that it has had an audit head file (`store_meta` `audit_head`).
fn had_head(conn: &Connection) -> bool {
    conn.query_row(
        "SELECT 1 FROM store_meta WHERE k = 'audit_head'",
        [],
        |_| Ok(()),
    )
    .optional()
    .ok()
    .flatten()
    .is_some()
}

/// Record in the store that it has an audit head file (see [`write_head`]).
fn mark_head(conn: &Connection) {
    if let Err(e) = conn.execute(
        "INSERT OR IGNORE INTO store_meta (k, v) VALUES ('audit_head', '1')",
        [],
    ) {
        tracing::warn!(error = %e, "The store could not record that it has an audit head file; its next open does.");
    }
}

/// `path` created empty with mode 0600 (owner only) when it does not exist; an existing
/// file is left as it is.
///
/// # Errors
/// The file system's, other than the file existing.
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

/// `path` opened for writing from its start, created with mode 0600 (owner only) when new.
///
/// # Errors
/// The file system's.
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

/// A store without a head file gets one at the commit that finds it missing (a new store's
/// first, or the first after an operator set the file aside); after that the checkpoint
/// thread keeps it. Without it, a check within the first [`CHECKPOINT_EVERY`] would find
/// rows and no head file, which is what rows deleted with the head file look like. Costs a
/// `stat` per commit.
fn first_head(conn: &Connection, head_path: &Path) {
    if !head_path.exists() {
        write_head(conn, head_path, "first");
    }
}

/// The checkpoint thread's part in keeping the head file: write it (see [`write_head`])
/// when the log's last row is not `last`, the row written last time.
fn keep_head(conn: &Connection, head_path: &Path, last: &mut Option<i64>) {
    let seq: Option<i64> = conn
        .query_row("SELECT max(seq) FROM audit", [], |r| r.get(0))
        .ok()
        .flatten();
    if seq.is_some() && seq != *last {
        write_head(conn, head_path, "checkpoint");
        *last = seq;
    }
}

/// Start the group-commit writer thread on the write connection; it stops when the
/// store (the only sender) is dropped.
fn start_writer(
    conn: std::sync::Arc<Mutex<Connection>>,
    head_path: std::path::PathBuf,
    head_kept: bool,
    pending: std::sync::Arc<AtomicUsize>,
    commits: std::sync::Arc<AtomicU64>,
) -> Option<(std::sync::mpsc::Sender<Queued>, std::thread::JoinHandle<()>)> {
    let (tx, rx) = std::sync::mpsc::channel::<Queued>();
    std::thread::Builder::new()
        .name("hedui-store-writer".into())
        .spawn(move || {
            // The head file is rewritten at most every HEAD_EVERY (and when the writer falls
            // idle or stops), not after every commit: under load it cost as much CPU as the
            // audit rows themselves.
            // None: the first commit writes the head at once.
            let mut head_written: Option<std::time::Instant> = None;
            let mut head_dirty = false;
            loop {
                let first = match rx.recv_timeout(HEAD_EVERY) {
                    Ok(q) => q,
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                        if !head_kept
                            && head_dirty
                            && let Ok(c) = conn.lock()
                        {
                            write_head(&c, &head_path, "writer");
                            head_dirty = false;
                            head_written = Some(std::time::Instant::now());
                        }
                        continue;
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                        if head_dirty && let Ok(c) = conn.lock() {
                            write_head(&c, &head_path, "writer");
                        }
                        break;
                    }
                };
                let mut batch = vec![first];
                while batch.len() < GROUP_MAX {
                    match rx.try_recv() {
                        Ok(q) => batch.push(q),
                        Err(_) => break,
                    }
                }
                let writes: Vec<&Write> = batch.iter().map(|(w, _)| w).collect();
                let results = match conn.lock() {
                    Ok(mut c) => {
                        let r = apply_group(&mut c, &writes);
                        if head_kept {
                            // the checkpoint thread writes it; this thread when it stops
                            first_head(&c, &head_path);
                            head_dirty = true;
                        } else if head_written.is_none_or(|t| t.elapsed() >= HEAD_EVERY) {
                            write_head(&c, &head_path, "writer");
                            head_written = Some(std::time::Instant::now());
                            head_dirty = false;
                        } else {
                            head_dirty = true;
                        }
                        r
                    }
                    Err(_) => writes.iter().map(|_| Err(StoreError::Poisoned)).collect(),
                };
                drop(writes);
                commits.fetch_add(1, Ordering::Release);
                pending.fetch_sub(batch.len(), Ordering::AcqRel);
                for ((w, reply), r) in batch.into_iter().zip(results) {
                    // A caller gone (its request was dropped) needs no answer.
                    let _ = reply.send((r, w));
                }
            }
        })
        .ok()
        .map(|h| (tx, h))
}

/// The token matching `condition` (`?1` = `key`) on `conn`.
fn token_where(conn: &Connection, condition: &str, key: &str) -> Result<Option<Token>, StoreError> {
    let row: Option<(String, String, String, String)> = conn
        .prepare_cached(&format!(
            "SELECT id, roles, regions, label FROM tokens WHERE {condition}"
        ))?
        .query_row(params![key], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    Ok(row.map(|(id, roles, regions, label)| Token {
        id,
        roles: roles.split(',').filter_map(Role::parse).collect(),
        regions: regions
            .split(',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        label,
    }))
}

/// A consent by reference on `conn`.
fn consent_on(conn: &Connection, reference: &str) -> Result<Option<Consent>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT ref, person_hash, person_masked, scope, purpose, valid_until, revoked_at,
             registered_by FROM consents WHERE ref = ?1",
        )?
        .query_row(params![reference], |r| {
            Ok(Consent {
                reference: r.get(0)?,
                person_hash: r.get(1)?,
                person_masked: r.get(2)?,
                scope: r
                    .get::<_, String>(3)?
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect(),
                purpose: r.get(4)?,
                valid_until: r.get(5)?,
                revoked_at: r.get(6)?,
                registered_by: r.get(7)?,
            })
        })
        .optional()?)
}

impl Store {
    /// Open (and create) the store at `path` in WAL mode. `secret` keys the person hashes
    /// of consents.
    ///
    /// # Errors
    /// [`StoreError::Sql`] when the file cannot be opened or the schema created.
    pub fn open(path: &Path, secret: &[u8]) -> Result<Store, StoreError> {
        // A new store is the owner's alone (0600): it holds consents, sealed reports, token
        // hashes and the audit log. SQLite gives its `-wal` and `-shm` files the database
        // file's mode. An existing file keeps the mode its operator gave it.
        create_private(path).map_err(|e| StoreError::File(format!("{}: {e}", path.display())))?;
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS jobs (
                id TEXT PRIMARY KEY, token_id TEXT NOT NULL, region_code TEXT NOT NULL,
                status TEXT NOT NULL, request TEXT, sealed TEXT, determination TEXT,
                created_at TEXT NOT NULL, finished_at TEXT);
             CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
             CREATE TABLE IF NOT EXISTS tokens (
                id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, roles TEXT NOT NULL,
                regions TEXT NOT NULL, label TEXT NOT NULL, created_at TEXT NOT NULL,
                revoked INTEGER NOT NULL DEFAULT 0);
             CREATE TABLE IF NOT EXISTS consents (
                ref TEXT PRIMARY KEY, person_hash TEXT NOT NULL, person_masked TEXT NOT NULL,
                scope TEXT NOT NULL, purpose TEXT NOT NULL, valid_until TEXT NOT NULL,
                created_at TEXT NOT NULL, revoked_at TEXT, registered_by TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS audit (
                seq INTEGER PRIMARY KEY, at TEXT NOT NULL, actor TEXT NOT NULL,
                action TEXT NOT NULL, job_id TEXT NOT NULL, purpose TEXT NOT NULL,
                consent_ref TEXT NOT NULL, person TEXT NOT NULL, source TEXT NOT NULL,
                outcome TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS store_meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);",
        )?;
        conn.pragma_update(None, "journal_size_limit", WAL_KEEP_BYTES)?;
        // A value deleted or overwritten (a finished job's request, with its persons' ID
        // numbers and names) is overwritten with zeros in the database file, not left in its
        // free pages. Found by session 26's attack: `request = NULL` left 4 copies of a
        // request in `hedui.db` (and 12 in the WAL, which the checkpoint thread now cuts to
        // nothing when it starts it over: `checkpoint_round`).
        conn.pragma_update(None, "secure_delete", "ON")?;
        if head_path_of(path).exists() {
            mark_head(&conn);
        }
        let read = Connection::open(path)?;
        read.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let conn = std::sync::Arc::new(Mutex::new(conn));
        let commits = std::sync::Arc::new(AtomicU64::new(0));
        let long_hold = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        // The checkpoint thread: a third connection (see [`Keeper`]). It also keeps the audit
        // head file (see [`write_head`]). Commits checkpoint by themselves (at
        // AUTOCHECKPOINT_PAGES) only when it cannot be started.
        let head_path = head_path_of(path);
        let checkpointer = Connection::open(path).ok().and_then(|c| {
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let _ = c.busy_timeout(RESTART_WAIT);
            let mut keeper = Keeper {
                c,
                writer: conn.clone(),
                long_hold: long_hold.clone(),
                wal_path: wal_path_of(path),
                head_path: head_path.clone(),
                head: None,
                commits: commits.clone(),
                synced: 0,
                copied: 0,
                copied_at: std::time::Instant::now(),
                scrubbed: 0,
            };
            std::thread::Builder::new()
                .name("hedui-store-checkpoint".into())
                .spawn(move || {
                    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                        rx.recv_timeout(CHECKPOINT_EVERY)
                    {
                        keeper.round();
                    }
                    keeper.sync_wal();
                    keep_head(&keeper.c, &keeper.head_path, &mut keeper.head);
                })
                .ok()
                .map(|h| (tx, h))
        });
        if checkpointer.is_none() {
            conn.lock()
                .map_err(|_| StoreError::Poisoned)?
                .pragma_update(None, "wal_autocheckpoint", AUTOCHECKPOINT_PAGES)?;
        }
        let head_kept = checkpointer.is_some();
        let (checkpointer, checkpoint_thread) = checkpointer.unzip();

        let pending = std::sync::Arc::new(AtomicUsize::new(0));
        let (writer, writer_thread) = start_writer(
            conn.clone(),
            head_path.clone(),
            head_kept,
            pending.clone(),
            commits.clone(),
        )
        .unzip();
        Ok(Store {
            conn,
            writer: writer.map(Mutex::new),
            pending,
            long_hold,
            commits,
            head_path,
            wal_path: wal_path_of(path),
            head_kept,
            read: Mutex::new(read),
            secret: hmac::Key::new(hmac::HMAC_SHA256, secret),
            checkpointer,
            writer_thread,
            checkpoint_thread,
        })
    }

    /// Make what is committed durable and anchored when the process is about to exit without
    /// dropping the store (`hedui serve` stopped by SIGTERM or SIGINT exits at once, and an
    /// exit runs no destructor: neither the writer thread's last head nor the checkpoint
    /// thread's last round happened). Waits for a commit in progress, then keeps the write
    /// connection, syncs the WAL and writes the head file ([`write_head`]). No commit can
    /// follow that head while the returned value lives: hold it until the process exits
    /// (a write waiting for it then never returns, and its request is never answered).
    /// Found by session 17's attack (repro 10): the refusal rows written at the stop were
    /// after the head file's row, so deleting them still verified as `chain ok`.
    pub fn stop_writes(&self) -> WritesStopped<'_> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = std::fs::File::open(&self.wal_path).and_then(|f| f.sync_data())
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(error = %e, "The WAL could not be synced at the stop.");
        }
        write_head(&conn, &self.head_path, "stop");
        WritesStopped(conn)
    }

    fn conn(&self) -> Result<std::sync::MutexGuard<'_, Connection>, StoreError> {
        self.conn.lock().map_err(|_| StoreError::Poisoned)
    }

    fn reader(&self) -> Result<std::sync::MutexGuard<'_, Connection>, StoreError> {
        self.read.lock().map_err(|_| StoreError::Poisoned)
    }

    /// Keyed hash of an ID number (HMAC-SHA256 with the service secret, hex): the only
    /// form of a person's ID the store keeps besides the masked one.
    pub fn person_hash(&self, id_number: &str) -> String {
        hex::encode(hmac::sign(&self.secret, id_number.as_bytes()).as_ref())
    }

    // ---- audit

    /// Append events to the chain, in one transaction.
    ///
    /// # Errors
    /// [`StoreError`] when SQLite fails (nothing is appended then).
    pub fn audit(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        self.audited(|_| Ok(((), events.to_vec())))
    }

    /// Runs `act` in one write transaction (`BEGIN IMMEDIATE`, waiting for another process's
    /// write lock up to the busy timeout) and appends the audit rows it returns in the same
    /// transaction: an act (a consent or token registered or revoked) is stored with its rows
    /// or not at all. Before session 20 an act and its row were two writes, and a row that
    /// failed after the act (the lock held past the timeout) left the act unaudited.
    ///
    /// # Errors
    /// `act`'s, or [`StoreError`] when SQLite fails (nothing is stored then).
    fn audited<T>(
        &self,
        act: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<(T, Vec<AuditEvent>), StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn()?;
        let tx = write_transaction(&mut conn)?;
        let (out, events) = act(&tx)?;
        append_events(&tx, &events, &mut None)?;
        tx.commit()?;
        if !events.is_empty() {
            self.commits.fetch_add(1, Ordering::Release);
            if self.head_kept {
                first_head(&conn, &self.head_path);
            } else {
                write_head(&conn, &self.head_path, "direct");
            }
        }
        Ok(out)
    }

    /// The `seq` of the log's last row (0 when it is empty).
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn last_seq(&self) -> Result<i64, StoreError> {
        let conn = self.reader()?;
        let seq: Option<i64> = conn.query_row("SELECT max(seq) FROM audit", [], |r| r.get(0))?;
        Ok(seq.unwrap_or(0))
    }

    /// Audit rows with `seq > after`, at most `limit`.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn audit_rows(&self, after: i64, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
        let conn = self.reader()?;
        let mut st = conn.prepare(
            "SELECT seq, at, actor, action, job_id, purpose, consent_ref, person, source, outcome,
             hash FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        let rows = st
            .query_map(params![after, limit], |r| {
                Ok(AuditRow {
                    seq: r.get(0)?,
                    at: r.get(1)?,
                    event: AuditEvent {
                        actor: r.get(2)?,
                        action: r.get(3)?,
                        job_id: r.get(4)?,
                        purpose: r.get(5)?,
                        consent_ref: r.get(6)?,
                        person: r.get(7)?,
                        source: r.get(8)?,
                        outcome: r.get(9)?,
                    },
                    hash: r.get(10)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The consents and tokens the store holds without the audit row of their act: a token
    /// without its `token_created` row (outcome its id), a revoked token without a
    /// `token_revoked` row, a consent without its `consent_registered` row (its reference), a
    /// revoked consent without a `consent_revoked` row (outcome `revoked`). Each as `token
    /// tok_… created` / `… revoked`, `consent cr_… registered` / `… revoked`; empty when
    /// every act has its row. Since session 20 an act and its row are one write, so an entry
    /// here is a store written by an older hedui whose row failed, or a store edited by hand;
    /// the chain check ([`Store::verify_chain`]) cannot see either.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn unaudited_acts(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.reader()?;
        let mut out = Vec::new();
        for (sql, what) in [
            (
                "SELECT id FROM tokens WHERE id NOT IN
                 (SELECT outcome FROM audit WHERE action = 'token_created') ORDER BY id",
                "token {} created",
            ),
            (
                "SELECT id FROM tokens WHERE revoked = 1 AND id NOT IN
                 (SELECT outcome FROM audit WHERE action = 'token_revoked') ORDER BY id",
                "token {} revoked",
            ),
            (
                "SELECT ref FROM consents WHERE ref NOT IN
                 (SELECT consent_ref FROM audit WHERE action = 'consent_registered') ORDER BY ref",
                "consent {} registered",
            ),
            (
                "SELECT ref FROM consents WHERE revoked_at IS NOT NULL AND ref NOT IN
                 (SELECT consent_ref FROM audit WHERE action = 'consent_revoked'
                  AND outcome = 'revoked') ORDER BY ref",
                "consent {} revoked",
            ),
            // The other way: an act the log holds that the store no longer shows (a revoked
            // token or consent made active again; below, a consent or token whose terms
            // differ from its registration row). Found by session 26's attack: such edits
            // with sqlite3 verified `chain ok` and the server acted on them (a revoked token's
            // job done, a person verified under another's consent).
            (
                "SELECT id FROM tokens WHERE revoked = 0 AND id IN
                 (SELECT outcome FROM audit WHERE action = 'token_revoked') ORDER BY id",
                "token {} revoked in the audit log but active in the store",
            ),
            (
                "SELECT ref FROM consents WHERE revoked_at IS NULL AND ref IN
                 (SELECT consent_ref FROM audit WHERE action = 'consent_revoked'
                  AND outcome = 'revoked') ORDER BY ref",
                "consent {} revoked in the audit log but not in the store",
            ),
        ] {
            let mut st = conn.prepare(sql)?;
            let ids = st.query_map([], |r| r.get::<_, String>(0))?;
            for id in ids {
                out.push(what.replace("{}", &id?));
            }
        }
        let mut st = conn.prepare(
            "SELECT c.ref, c.scope, c.valid_until, c.person_hash, c.person_masked, a.outcome, a.person,
             c.registered_by, a.actor
             FROM consents c JOIN audit a ON a.consent_ref = c.ref
             AND a.action = 'consent_registered' ORDER BY c.ref, a.seq",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                (
                    r.get::<_, String>(6)?,
                    r.get::<_, String>(7)?,
                    r.get::<_, String>(8)?,
                ),
            ))
        })?;
        for row in rows {
            let (reference, scope, until, hash, masked, outcome, (person, by, actor)) = row?;
            let registered = format!("scope:{scope}; valid_until:{until}");
            // (rows before session 26 hold no `; person:` part)
            let same = match outcome.split_once("; person:") {
                Some((terms, h)) => terms == registered && h == hash,
                None => outcome == registered,
            };
            // (who registered it: the row's actor; session 26's second attack gave a consent
            // to another county's token)
            if !same || person != masked || by != actor {
                out.push(format!(
                    "consent {reference} differs from its consent_registered row (scope, term or person edited in the store)"
                ));
            }
        }
        // A token's terms against its `token_created` row (rows before session 26 hold none).
        let mut st = conn.prepare(
            "SELECT t.id, t.roles, t.regions, t.hash, a.purpose FROM tokens t JOIN audit a
             ON a.outcome = t.id AND a.action = 'token_created' AND a.purpose <> ''
             ORDER BY t.id, a.seq",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                token_terms(
                    &r.get::<_, String>(1)?,
                    &r.get::<_, String>(2)?,
                    &r.get::<_, String>(3)?,
                ),
                r.get::<_, String>(4)?,
            ))
        })?;
        for row in rows {
            let (id, terms, recorded) = row?;
            if terms != recorded {
                out.push(format!(
                    "token {id} differs from its token_created row (roles, regions or secret edited in the store)"
                ));
            }
        }
        Ok(out)
    }

    /// Recompute the hash chain from the first row: a row whose content or `prev_hash` no
    /// longer matches, or a gap in the sequence (a deleted row), is the first bad row. Then
    /// the end: the head file beside the store (written after every commit) must name a row
    /// that exists with the same hash, so rows deleted from the end, or a chain rebuilt from
    /// an edited row on, are found too, unless the head file was rewritten with them (the
    /// chain has no secret: keep a copy of the head elsewhere for that).
    ///
    /// # Errors
    /// [`StoreError`] when the table cannot be read.
    pub fn verify_chain(&self) -> Result<ChainCheck, StoreError> {
        // This store's own commits are in the head file first, when there is one: it lags
        // the last commit by up to CHECKPOINT_EVERY. It is never created here (a missing
        // one is evidence) and never moves past a row that is gone ([`write_head`]).
        if self.head_kept && self.head_path.exists() {
            write_head(&*self.reader()?, &self.head_path, "verify");
        }
        // The head file first: it is written after a commit (up to CHECKPOINT_EVERY later
        // under `hedui serve`), so the rows read below (a later snapshot) include the row it
        // names, even while a server is writing.
        let anchor: Option<(i64, String)> =
            std::fs::read_to_string(&self.head_path).ok().and_then(|t| {
                let (a, b) = t.trim().split_once(' ')?;
                Some((a.parse().ok()?, b.to_string()))
            });
        let conn = self.reader()?;
        let mut st = conn.prepare(
            "SELECT seq, at, actor, action, job_id, purpose, consent_ref, person, source, outcome,
             prev_hash, hash FROM audit ORDER BY seq",
        )?;
        let mut rows = st.query([])?;
        let mut prev = ZERO.to_string();
        let mut expect = 1i64;
        let mut n = 0i64;
        let mut anchor_hash: Option<String> = None;
        while let Some(r) = rows.next()? {
            let seq: i64 = r.get(0)?;
            let at: String = r.get(1)?;
            let e = AuditEvent {
                actor: r.get(2)?,
                action: r.get(3)?,
                job_id: r.get(4)?,
                purpose: r.get(5)?,
                consent_ref: r.get(6)?,
                person: r.get(7)?,
                source: r.get(8)?,
                outcome: r.get(9)?,
            };
            let stored_prev: String = r.get(10)?;
            let stored: String = r.get(11)?;
            n += 1;
            let bad = |why: String| ChainCheck {
                rows: n,
                head: stored.clone(),
                first_bad: Some((seq, why)),
            };
            if seq != expect {
                return Ok(bad(format!(
                    "row {expect} is missing (deleted?): the next row is {seq}"
                )));
            }
            if stored_prev != prev {
                return Ok(bad("its prev_hash is not the previous row's hash".into()));
            }
            if chain_hash(&prev, &row_content(seq, &at, &e)) != stored {
                return Ok(bad("its content does not match its hash (edited)".into()));
            }
            if anchor.as_ref().is_some_and(|(a, _)| *a == seq) {
                anchor_hash = Some(stored.clone());
            }
            prev = stored;
            expect += 1;
        }
        let tail = |why: String| ChainCheck {
            rows: n,
            head: prev.clone(),
            first_bad: Some((n + 1, why)),
        };
        match (&anchor, anchor_hash) {
            (None, _) if n > 0 || had_head(&conn) => {
                return Ok(tail(format!(
                    "the head file {} is missing or unreadable: rows deleted from the end cannot be ruled out (a store that had a head file never makes a new one; to anchor a copied or restored store anew, delete the row `audit_head` of its table store_meta)",
                    self.head_path.display()
                )));
            }
            (Some((seq, _)), None) => {
                return Ok(tail(format!(
                    "the log ends at row {n} but the head file records row {seq}: rows deleted from the end"
                )));
            }
            (Some((seq, want)), Some(got)) if *want != got => {
                return Ok(tail(format!(
                    "row {seq} does not have the hash the head file records: the chain was rebuilt"
                )));
            }
            _ => {}
        }
        Ok(ChainCheck {
            rows: n,
            head: prev,
            first_bad: None,
        })
    }

    // ---- tokens

    /// Create a token; returns its id and the secret (shown once; only its hash is kept).
    /// `audit` gives the act's audit rows from the new id; they are written in the same
    /// transaction as the token ([`Store::audited`]).
    ///
    /// # Errors
    /// [`StoreError`] (no token is stored then).
    pub fn create_token(
        &self,
        roles: &[Role],
        regions: &[String],
        label: &str,
        audit: impl FnOnce(&str) -> Vec<AuditEvent>,
    ) -> Result<(String, String), StoreError> {
        let id = format!("tok_{}", random_hex(8));
        let secret = format!("hd_{}", random_hex(32));
        let roles_s: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        let hash = token_hash(&secret);
        // the token's terms in its `token_created` row, so that `audit verify` finds them
        // edited in the store (session 26's second attack widened a token's regions with
        // sqlite3, unseen)
        let terms = token_terms(&roles_s.join(","), &regions.join(","), &hash);
        self.audited(|tx| {
            tx.execute(
                "INSERT INTO tokens (id, hash, roles, regions, label, created_at) VALUES (?1,?2,?3,?4,?5,?6)",
                params![id, hash, roles_s.join(","), regions.join(","), label, now_utc()],
            )?;
            let mut events = audit(&id);
            for e in &mut events {
                if e.action == "token_created" && e.outcome == id && e.purpose.is_empty() {
                    e.purpose = terms.clone();
                }
            }
            Ok(((), events))
        })?;
        Ok((id, secret))
    }

    /// Revoke a token: its secret is refused from now on (`401 token_invalid`); its id stays
    /// in the audit log and still names the regions of the consents it registered. Returns
    /// whether it was active. `audit` gives the act's audit rows from that; they are
    /// written in the same transaction ([`Store::audited`]).
    ///
    /// # Errors
    /// [`StoreError`] (the token is unchanged then).
    pub fn revoke_token(
        &self,
        id: &str,
        audit: impl FnOnce(bool) -> Vec<AuditEvent>,
    ) -> Result<bool, StoreError> {
        self.audited(|tx| {
            let n = tx.execute(
                "UPDATE tokens SET revoked = 1 WHERE id = ?1 AND revoked = 0",
                params![id],
            )?;
            Ok((n == 1, audit(n == 1)))
        })
    }

    /// The token whose secret hashes to `hash`, unless revoked.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn token_by_hash(&self, hash: &str) -> Result<Option<Token>, StoreError> {
        self.token_where("hash = ?1 AND revoked = 0", hash)
    }

    /// A token by its id (revoked or not): whose regions a consent was registered under.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn token_by_id(&self, id: &str) -> Result<Option<Token>, StoreError> {
        self.token_where("id = ?1", id)
    }

    /// A token by its id when it is not revoked.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn active_token_by_id(&self, id: &str) -> Result<Option<Token>, StoreError> {
        self.token_where("id = ?1 AND revoked = 0", id)
    }

    fn token_where(&self, condition: &str, key: &str) -> Result<Option<Token>, StoreError> {
        token_where(&*self.reader()?, condition, key)
    }

    // ---- consents

    /// Register a consent for the person with `id_number` (normalised 18 characters).
    /// `audit` gives the act's audit rows from the new reference; they are written in the
    /// same transaction as the consent ([`Store::audited`]).
    ///
    /// # Errors
    /// [`StoreError`] (no consent is stored then).
    #[allow(clippy::too_many_arguments)]
    pub fn add_consent(
        &self,
        id_number: &str,
        person_masked: &str,
        scope: &[String],
        purpose: &str,
        valid_until: &str,
        registered_by: &str,
        audit: impl FnOnce(&str) -> Vec<AuditEvent>,
    ) -> Result<String, StoreError> {
        let reference = format!("cr_{}", random_hex(12));
        let person = self.person_hash(id_number);
        self.audited(|tx| {
            tx.execute(
                "INSERT INTO consents (ref, person_hash, person_masked, scope, purpose, valid_until,
                 created_at, registered_by) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
                params![
                    reference,
                    person,
                    person_masked,
                    scope.join(","),
                    purpose,
                    valid_until,
                    now_utc(),
                    registered_by
                ],
            )?;
            Ok(((), audit(&reference)))
        })?;
        Ok(reference)
    }

    /// A consent by reference.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn consent(&self, reference: &str) -> Result<Option<Consent>, StoreError> {
        consent_on(&*self.reader()?, reference)
    }

    /// The consents of `references` (in their order; `None`: not registered), each with the
    /// token that registered it (`None`: no such token), read in one read transaction: one
    /// snapshot and one look at the WAL for a whole household instead of one per lookup.
    ///
    /// # Errors
    /// [`StoreError`].
    #[allow(
        clippy::type_complexity,
        reason = "each reference's consent and the token that registered it, in the order asked"
    )]
    pub fn consents_with_registrars(
        &self,
        references: &[&str],
    ) -> Result<Vec<Option<(Consent, Option<Token>)>>, StoreError> {
        let conn = self.reader()?;
        let tx = conn.unchecked_transaction()?;
        let mut registrars: Vec<(String, Option<Token>)> = Vec::new();
        let mut out = Vec::with_capacity(references.len());
        for r in references {
            let Some(c) = consent_on(&tx, r)? else {
                out.push(None);
                continue;
            };
            let t = match registrars.iter().find(|(id, _)| *id == c.registered_by) {
                Some((_, t)) => t.clone(),
                None => {
                    let t = token_where(&tx, "id = ?1", &c.registered_by)?;
                    registrars.push((c.registered_by.clone(), t.clone()));
                    t
                }
            };
            out.push(Some((c, t)));
        }
        tx.finish()?;
        Ok(out)
    }

    /// Revoke a consent; false when there is no such (unrevoked) consent. `audit` gives the
    /// act's audit rows from that; they are written in the same transaction
    /// ([`Store::audited`]).
    ///
    /// # Errors
    /// [`StoreError`] (the consent is unchanged then).
    pub fn revoke_consent(
        &self,
        reference: &str,
        audit: impl FnOnce(bool) -> Vec<AuditEvent>,
    ) -> Result<bool, StoreError> {
        self.audited(|tx| {
            let n = tx.execute(
                "UPDATE consents SET revoked_at = ?2 WHERE ref = ?1 AND revoked_at IS NULL",
                params![reference, now_utc()],
            )?;
            Ok((n > 0, audit(n > 0)))
        })
    }

    // ---- jobs

    /// Store an accepted job with its request (before the client is answered) and append
    /// `events` (its `verification_accepted` row) to the audit chain, in one transaction.
    /// `request: None` stores the job without its request: a job that is never resumed
    /// (`hedui check`'s, whose process alone waits for its report) keeps no ID numbers in
    /// the store, and a `hedui serve` started later passes it over ([`Store::unfinished_jobs`]
    /// lists it; the resume skips a job without a request).
    ///
    /// # Errors
    /// [`StoreError`] (nothing is stored then).
    pub fn insert_job(
        &self,
        id: &str,
        token_id: &str,
        region_code: &str,
        request: Option<&str>,
        events: &[AuditEvent],
    ) -> Result<(), StoreError> {
        self.write_now(&Write::Job {
            id: id.into(),
            token_id: token_id.into(),
            region_code: region_code.into(),
            request: request.map(str::to_string),
            events: events.to_vec(),
            if_absent: false,
        })
    }

    /// Mark a job done with its sealed report (the request, with its ID numbers, is wiped)
    /// and append `events` (one `source_query` row per person, `report_built`, and
    /// `report_fetched` when the report is handed out at once) to the audit chain, in one
    /// transaction: a report is never stored without its audit rows.
    ///
    /// # Errors
    /// [`StoreError`] (nothing is stored then; the job stays queued).
    pub fn finish_job(
        &self,
        id: &str,
        sealed: &str,
        determination: &str,
        events: &[AuditEvent],
    ) -> Result<(), StoreError> {
        self.write_now(&Write::Finish {
            id: id.into(),
            sealed: sealed.into(),
            determination: determination.into(),
            events: events.to_vec(),
            insert: None,
        })
    }

    fn write_now(&self, w: &Write) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = write_transaction(&mut conn)?;
        apply(&tx, w, &mut None)?;
        tx.commit()?;
        self.commits.fetch_add(1, Ordering::Release);
        if self.head_kept {
            first_head(&conn, &self.head_path);
        } else {
            write_head(&conn, &self.head_path, "direct");
        }
        Ok(())
    }

    /// [`Store::write_returning`]'s way for a write to commit on its caller's thread: `None`
    /// when it must queue for the writer thread instead.
    fn commit_inline(&self, w: &Write) -> Option<Result<(), StoreError>> {
        // Committed at once on this thread (~80 µs for a verification's report and audit
        // rows) unless writes are queued for the writer thread or the checkpoint thread holds
        // the write connection for long (`long_hold`: its restart write syncs, `RESTART`
        // waits for readers); another worker's commit in progress is waited for. A write
        // handed to the writer thread and back waited for two threads to be scheduled, and
        // its answer, woken from outside the runtime, for a worker to look at the runtime's
        // shared queue: that was most of the p99 overhead, with one worker (`PIN=1`) and with
        // two (README, "Serve load"). The write connection never waits for SQLite's locks
        // here: the checkpoint thread starts the WAL over only while it holds its mutex.
        let conn = if self.pending.load(Ordering::Acquire) == 0
            && !self.long_hold.load(Ordering::Acquire)
        {
            match self.conn.try_lock() {
                Ok(c) => Some(c),
                Err(std::sync::TryLockError::WouldBlock) => self.conn.lock().ok(),
                Err(std::sync::TryLockError::Poisoned(_)) => None,
            }
        } else {
            None
        };
        let mut c = conn?;
        let r = apply_group(&mut c, &[w])
            .pop()
            .unwrap_or(Err(StoreError::Poisoned));
        first_head(&c, &self.head_path);
        drop(c);
        self.commits.fetch_add(1, Ordering::Release);
        Some(r)
    }

    /// Queue a write for the writer thread and wait (without blocking the async runtime)
    /// until it is committed with the writes queued alongside it: one transaction and one
    /// commit for all of them. Durable (committed) when this returns `Ok`.
    ///
    /// # Errors
    /// [`StoreError`] for this write (its savepoint was rolled back; the others stand), or
    /// [`StoreError::Group`] when the group's commit failed (nothing of it was stored).
    pub async fn write(&self, w: Write) -> Result<(), StoreError> {
        self.write_returning(w).await.map(drop)
    }

    /// [`Store::write`], handing the committed write back (its parts can be used again, and
    /// its memory is freed on the caller's thread).
    ///
    /// # Errors
    /// As [`Store::write`].
    pub async fn write_returning(&self, w: Write) -> Result<Write, StoreError> {
        let Some(writer) = &self.writer else {
            return self.write_now(&w).map(|()| w);
        };
        if let Some(r) = self.commit_inline(&w) {
            return r.map(|()| w);
        }
        self.pending.fetch_add(1, Ordering::AcqRel);
        let (reply, answer) = tokio::sync::oneshot::channel();
        writer
            .lock()
            .map_err(|_| StoreError::Poisoned)?
            .send((w, reply))
            .map_err(|_| StoreError::Group("the store's writer thread has stopped".into()))?;
        let (r, w) = answer
            .await
            .map_err(|_| StoreError::Group("the store's writer thread has stopped".into()))?;
        r.map(|()| w)
    }

    /// Refuse an accepted job that can no longer run (at start-up: a consent was revoked or
    /// expired meanwhile, or the stored request is unreadable). Its request (with ID numbers)
    /// is wiped; `code` is kept in `determination`; nothing is queried.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn refuse_job(&self, id: &str, code: &str) -> Result<(), StoreError> {
        self.conn()?.execute(
            "UPDATE jobs SET status = 'refused', determination = ?2, request = NULL,
             finished_at = ?3 WHERE id = ?1",
            params![id, code, now_utc()],
        )?;
        Ok(())
    }

    /// A job by id.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn job(&self, id: &str) -> Result<Option<Job>, StoreError> {
        let conn = self.reader()?;
        Ok(conn
            .prepare_cached(
                "SELECT id, token_id, region_code, status, request, sealed, determination
                 FROM jobs WHERE id = ?1",
            )?
            .query_row(params![id], |r| {
                Ok(Job {
                    id: r.get(0)?,
                    token_id: r.get(1)?,
                    region_code: r.get(2)?,
                    status: r.get(3)?,
                    request: r.get(4)?,
                    sealed: r.get(5)?,
                    determination: r.get(6)?,
                })
            })
            .optional()?)
    }

    /// Jobs accepted but not finished (to resume at start-up), oldest first.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn unfinished_jobs(&self) -> Result<Vec<Job>, StoreError> {
        let ids: Vec<String> = {
            let conn = self.reader()?;
            let mut st =
                conn.prepare("SELECT id FROM jobs WHERE status = 'queued' ORDER BY created_at")?;
            st.query_map([], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?
        };
        let mut out = Vec::new();
        for id in ids {
            if let Some(j) = self.job(&id)? {
                out.push(j);
            }
        }
        Ok(out)
    }
}

/// A new job id (`v_` + 24 hex).
pub fn new_job_id() -> String {
    format!("v_{}", random_hex(12))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(i: usize) -> AuditEvent {
        AuditEvent {
            actor: "tok_1".into(),
            action: "source_query".into(),
            person: format!("6205**********{i:04}"),
            source: "tax".into(),
            outcome: "no_records".into(),
            ..AuditEvent::default()
        }
    }

    /// Pages in the WAL (`PRAGMA wal_checkpoint(PASSIVE)`'s second column) seen from `c`.
    fn wal_pages(c: &Connection) -> i64 {
        c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
            .unwrap()
    }

    /// Found by the s9 newcomer: the store and its files were created 0644 (readable by
    /// every local user) though they hold consents, sealed reports and the audit log.
    #[test]
    fn a_new_store_and_its_files_are_the_owners_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        {
            let s = Store::open(&path, b"k").unwrap();
            s.audit(&[ev(1)]).unwrap();
            for f in ["s.db", "s.db-wal", "s.db-shm", "s.db.audit-head"] {
                assert_eq!(mode(&dir.path().join(f)), 0o600, "{f}");
            }
        }
        // an existing store keeps the mode its operator gave it
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let s = Store::open(&path, b"k").unwrap();
        s.audit(&[ev(2)]).unwrap();
        assert_eq!(mode(&path), 0o640);
        assert_eq!(s.verify_chain().unwrap().rows, 2);
    }

    #[test]
    fn commits_leave_the_wal_to_the_checkpoint_thread_which_starts_it_over_when_large() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let s = Store::open(&path, b"k").unwrap();
        // the writer never checkpoints while the thread runs
        let auto: i64 = s
            .conn()
            .unwrap()
            .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
            .unwrap();
        assert_eq!(auto, 0);
        for i in 0..40 {
            s.audit(&(0..25).map(|j| ev(i * 25 + j)).collect::<Vec<_>>())
                .unwrap();
        }
        let c = Connection::open(&path).unwrap();
        let before = wal_pages(&c);
        assert!(before > 40, "{before} pages");
        // a reader inside the WAL: the copy cannot catch up, and the WAL is left as it is
        s.audit(&[ev(1000)]).unwrap();
        let reader = Connection::open(&path).unwrap();
        reader.execute_batch("BEGIN").unwrap();
        let _: i64 = reader
            .query_row("SELECT count(*) FROM audit", [], |r| r.get(0))
            .unwrap();
        s.audit(&[ev(1001)]).unwrap();
        assert!(!checkpoint_round(&c, &s.conn, &s.long_hold, i64::MAX));
        let (log, copied): (i64, i64) = c
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert!(copied < log, "{copied} of {log} pages copied");
        reader.execute_batch("COMMIT").unwrap();
        // once it can catch up, the thread's own write starts the WAL over: a few pages
        assert!(checkpoint_round(&c, &s.conn, &s.long_hold, i64::MAX));
        let restarted = wal_pages(&c);
        assert!(
            restarted < 5,
            "{restarted} pages after the restart (was {before})"
        );
        s.audit(&[ev(1002)]).unwrap();
        // above the size limit, it is started over (RESTART) whatever the copy did
        assert!(checkpoint_round(&c, &s.conn, &s.long_hold, 0));
        assert!(wal_pages(&c) < 5);
        // nothing was lost on the way
        let ok = s.verify_chain().unwrap();
        assert_eq!(ok.rows, 1003);
        assert!(ok.first_bad.is_none());
    }

    /// Session 17's attack (repro 01): with `hedui token add` holding the store's write lock,
    /// a refusal's audit row failed at once with `database is locked` (a deferred
    /// transaction reads the chain's head, then cannot upgrade) and was lost. Every kind of
    /// write now waits for the lock (up to the busy timeout).
    #[test]
    fn a_write_waits_for_another_process_holding_the_write_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let s = Store::open(&path, b"k").unwrap();
        s.audit(&[ev(0)]).unwrap();
        let hold = |ms: u64| {
            let other = Connection::open(&path).unwrap();
            other.execute_batch("BEGIN IMMEDIATE").unwrap();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(ms));
                other.execute_batch("COMMIT").unwrap();
            })
        };
        let waited = |f: &dyn Fn() -> Result<(), StoreError>| {
            let t = hold(300);
            let started = std::time::Instant::now();
            let r = f();
            t.join().unwrap();
            assert!(r.is_ok(), "{r:?}");
            assert!(started.elapsed() >= std::time::Duration::from_millis(250));
        };
        waited(&|| s.audit(&[ev(1)]));
        waited(&|| s.insert_job("v_1", "tok_1", "620503", Some("{}"), &[ev(2)]));
        waited(&|| s.finish_job("v_1", "{}", "eligible", &[ev(3)]));
        waited(&|| {
            apply_group(&mut s.conn().unwrap(), &[&Write::Audit(vec![ev(4)])])
                .pop()
                .unwrap()
        });
        let check = s.verify_chain().unwrap();
        assert_eq!((check.rows, check.first_bad), (5, None));
    }

    #[test]
    fn an_edited_or_deleted_audit_row_is_named_by_the_chain_check() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let s = Store::open(&path, b"k").unwrap();
        s.audit(&(0..5).map(ev).collect::<Vec<_>>()).unwrap();
        s.audit(&[ev(5)]).unwrap();
        let ok = s.verify_chain().unwrap();
        assert_eq!(ok.rows, 6);
        assert!(ok.first_bad.is_none());
        s.conn()
            .unwrap()
            .execute("UPDATE audit SET outcome = 'records:1' WHERE seq = 3", [])
            .unwrap();
        assert_eq!(s.verify_chain().unwrap().first_bad.unwrap().0, 3);
        s.conn()
            .unwrap()
            .execute("UPDATE audit SET outcome = 'no_records' WHERE seq = 3", [])
            .unwrap();
        assert!(s.verify_chain().unwrap().first_bad.is_none());
        s.conn()
            .unwrap()
            .execute("DELETE FROM audit WHERE seq = 4", [])
            .unwrap();
        let bad = s.verify_chain().unwrap().first_bad.unwrap();
        assert_eq!(bad.0, 5, "{bad:?}");
        assert!(bad.1.contains("row 4 is missing"));
    }

    #[test]
    fn rows_deleted_from_the_end_or_a_rebuilt_chain_are_found_by_the_head_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let s = Store::open(&path, b"k").unwrap();
        s.audit(&(0..5).map(ev).collect::<Vec<_>>()).unwrap();
        let head = std::fs::read_to_string(dir.path().join("s.db.audit-head")).unwrap();
        assert_eq!(head.split(' ').next(), Some("5"));
        assert!(s.verify_chain().unwrap().first_bad.is_none());
        // the last two rows deleted: a valid but shorter chain
        s.conn()
            .unwrap()
            .execute("DELETE FROM audit WHERE seq >= 4", [])
            .unwrap();
        let bad = s.verify_chain().unwrap().first_bad.unwrap();
        assert_eq!(bad.0, 4, "{bad:?}");
        assert!(
            bad.1
                .contains("ends at row 3 but the head file records row 5"),
            "{bad:?}"
        );
        // rebuilt: rows 4 and 5 appended again with other content (hashes chained correctly)
        {
            let mut c = s.conn().unwrap();
            let tx = c.transaction().unwrap();
            append_events(&tx, &[ev(40), ev(50)], &mut None).unwrap();
            tx.commit().unwrap();
        }
        let bad = s.verify_chain().unwrap().first_bad.unwrap();
        assert!(bad.1.contains("chain was rebuilt"), "{bad:?}");
        // later writes do not erase the evidence: the head file stays at the break
        s.audit(&[ev(60), ev(70)]).unwrap();
        let bad = s.verify_chain().unwrap().first_bad.unwrap();
        assert!(bad.1.contains("chain was rebuilt"), "{bad:?}");
        // every row deleted, or the head file gone: not "ok: 0 rows"
        s.conn().unwrap().execute("DELETE FROM audit", []).unwrap();
        assert!(s.verify_chain().unwrap().first_bad.is_some());
        s.audit(&[ev(1)]).unwrap();
        assert!(s.verify_chain().unwrap().first_bad.is_some());
        // The head file removed: no write, no verify and no new store of the same file makes
        // a new one (found by session 26's attack: closing the store of a first `verify`
        // that said "missing" wrote a head at the cut, and the second said `chain ok`)
        let head = dir.path().join("s.db.audit-head");
        std::fs::remove_file(&head).unwrap();
        s.audit(&[ev(2)]).unwrap();
        let bad = s.verify_chain().unwrap().first_bad.unwrap();
        assert!(bad.1.contains("missing or unreadable"), "{bad:?}");
        drop(s);
        let s = Store::open(&dir.path().join("s.db"), b"k").unwrap();
        let bad = s.verify_chain().unwrap().first_bad.unwrap();
        assert!(bad.1.contains("missing or unreadable"), "{bad:?}");
        drop(s);
        assert!(!head.exists());
        // an emptied log too
        let s = Store::open(&dir.path().join("s.db"), b"k").unwrap();
        s.conn().unwrap().execute("DELETE FROM audit", []).unwrap();
        let bad = s.verify_chain().unwrap().first_bad.unwrap();
        assert!(bad.1.contains("missing or unreadable"), "{bad:?}");
        // a store that never had a head file (a new one) makes its first
        let dir2 = tempfile::tempdir().unwrap();
        let s2 = Store::open(&dir2.path().join("s.db"), b"k").unwrap();
        assert!(s2.verify_chain().unwrap().first_bad.is_none());
        s2.audit(&[ev(1)]).unwrap();
        drop(s2);
        assert!(dir2.path().join("s.db.audit-head").exists());
    }

    /// Found by session 26's attack: a finished job's request (`request = NULL`) stayed in the
    /// database file's free pages and in the WAL, with its persons' ID numbers and names.
    #[test]
    fn a_finished_jobs_request_leaves_no_copy_in_the_store_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let s = Store::open(&path, b"k").unwrap();
        let secret = "62050319750324540X-XU-PINGXIA-REQUEST";
        for i in 0..20 {
            let id = format!("v_{i:024x}");
            s.insert_job(
                &id,
                "tok_1",
                "620503",
                Some(&format!(
                    "{{\"id_number\":\"{secret}\",\"pad\":\"{}\"}}",
                    "x".repeat(3000)
                )),
                &[ev(i)],
            )
            .unwrap();
            s.finish_job(&id, "sealed", "eligible", &[ev(i + 100)])
                .unwrap();
        }
        let holds = |f: &str| {
            let b = std::fs::read(dir.path().join(f)).unwrap_or_default();
            b.windows(secret.len())
                .filter(|w| *w == secret.as_bytes())
                .count()
        };
        assert!(holds("s.db-wal") > 0, "the test writes what it looks for");
        // the checkpoint thread's rounds, an idle period apart, while a reader holds the WAL
        // (found by session 26's second attack: the one idle round failed, and none came
        // after), then without it
        let c = Connection::open(&path).unwrap();
        c.busy_timeout(std::time::Duration::from_millis(50))
            .unwrap();
        let n = s.commits.load(Ordering::Acquire);
        let mut keeper = Keeper {
            c,
            writer: s.conn.clone(),
            long_hold: s.long_hold.clone(),
            wal_path: wal_path_of(&path),
            head_path: dir.path().join("keeper-head"),
            head: None,
            commits: s.commits.clone(),
            synced: n,
            copied: 0,
            copied_at: std::time::Instant::now() - CHECKPOINT_IDLE,
            scrubbed: 0,
        };
        let mut reader = Connection::open(&path).unwrap();
        let tx = reader.transaction().unwrap();
        let _: i64 = tx
            .query_row("SELECT count(*) FROM jobs", [], |r| r.get(0))
            .unwrap();
        keeper.round();
        assert_eq!((keeper.copied, keeper.scrubbed), (n, 0), "busy: not cut");
        assert!(holds("s.db-wal") > 0);
        drop(tx);
        keeper.copied_at = std::time::Instant::now() - CHECKPOINT_IDLE;
        keeper.round();
        assert_eq!(keeper.scrubbed, n, "cut at the next idle round");
        assert_eq!((holds("s.db"), holds("s.db-wal")), (0, 0));
    }

    fn job(i: usize) -> Write {
        Write::Job {
            id: format!("v_{i:024x}"),
            token_id: "tok_1".into(),
            region_code: "620503".into(),
            request: Some("{}".into()),
            events: vec![ev(i), ev(i + 1000)],
            if_absent: false,
        }
    }

    #[test]
    fn a_failing_write_of_a_group_is_rolled_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("s.db"), b"k").unwrap();
        let (a, b) = (job(1), job(2));
        let results = apply_group(&mut s.conn().unwrap(), &[&a, &a, &b]);
        write_head(&s.conn().unwrap(), &s.head_path, "test"); // as the writer thread does
        assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
        assert!(matches!(results[1], Err(StoreError::Sql(_))), "{results:?}");
        let check = s.verify_chain().unwrap();
        assert_eq!((check.rows, check.first_bad), (4, None));
        assert_eq!(
            s.job("v_000000000000000000000002").unwrap().unwrap().status,
            "queued"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_are_committed_into_one_valid_chain() {
        let dir = tempfile::tempdir().unwrap();
        let s = std::sync::Arc::new(Store::open(&dir.path().join("s.db"), b"k").unwrap());
        let mut set = tokio::task::JoinSet::new();
        for i in 0..60 {
            let s = s.clone();
            set.spawn(async move {
                s.write(job(i)).await?;
                s.write(Write::Finish {
                    id: format!("v_{i:024x}"),
                    sealed: format!("{{\"n\":{i}}}"),
                    determination: "eligible".into(),
                    events: vec![ev(i + 2000)],
                    insert: None,
                })
                .await
            });
        }
        while let Some(r) = set.join_next().await {
            r.unwrap().unwrap();
        }
        // a duplicate fails on its own; the writer goes on
        assert!(matches!(s.write(job(0)).await, Err(StoreError::Sql(_))));
        s.write(Write::Audit(vec![ev(9)])).await.unwrap();
        let check = s.verify_chain().unwrap();
        assert_eq!((check.rows, check.first_bad), (60 * 3 + 1, None));
        let j = s.job("v_00000000000000000000002a").unwrap().unwrap();
        assert_eq!(
            (j.status.as_str(), j.sealed.as_deref()),
            ("done", Some("{\"n\":42}"))
        );
        assert!(j.request.is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_finished_before_it_was_stored_is_inserted_done_in_either_order() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("s.db"), b"k").unwrap();
        let new_job = || NewJob {
            token_id: "tok_1".into(),
            region_code: "620503".into(),
            created_at: "2026-11-30T12:00:00.000Z".into(),
        };
        let finish = |i: usize| Write::Finish {
            id: format!("v_{i:024x}"),
            sealed: format!("{{\"n\":{i}}}"),
            determination: "eligible".into(),
            events: vec![ev(i + 2000)],
            insert: Some(new_job()),
        };
        let late = |i: usize| match job(i) {
            Write::Job {
                id,
                token_id,
                region_code,
                request,
                events,
                ..
            } => Write::Job {
                id,
                token_id,
                region_code,
                request,
                events,
                if_absent: true,
            },
            other => other,
        };
        // answered at once: one write, the row inserted as done
        s.write(finish(1)).await.unwrap();
        // the waiter gave up; its job row committed after the report: the report stays
        s.write(finish(2)).await.unwrap();
        s.write(late(2)).await.unwrap();
        // ... or before it: the report replaces the queued row and wipes the request
        s.write(late(3)).await.unwrap();
        assert_eq!(
            s.job(&format!("v_{:024x}", 3)).unwrap().unwrap().status,
            "queued"
        );
        s.write(finish(3)).await.unwrap();
        for i in 1..=3 {
            let j = s.job(&format!("v_{i:024x}")).unwrap().unwrap();
            assert_eq!(
                (
                    j.status.as_str(),
                    j.sealed.clone(),
                    j.token_id.as_str(),
                    j.region_code.as_str()
                ),
                ("done", Some(format!("{{\"n\":{i}}}")), "tok_1", "620503")
            );
            assert!(j.request.is_none());
        }
        // a plain insert of an existing id still fails
        assert!(matches!(s.write(job(1)).await, Err(StoreError::Sql(_))));
        let check = s.verify_chain().unwrap();
        assert_eq!((check.rows, check.first_bad), (3 + 2 * 2, None));
    }

    #[test]
    fn the_chain_hash_is_lower_case_hex_of_sha256_of_prev_and_content() {
        // stores written before keep verifying: the same text as `hex::encode` gave
        let content = row_content(7, "2026-11-30T12:00:00.000Z", &ev(3));
        let mut both = ZERO.as_bytes().to_vec();
        both.extend_from_slice(&content);
        let want = hex::encode(digest::digest(&digest::SHA256, &both));
        assert_eq!(chain_hash(ZERO, &content), want);
        let mut reused = b"left over from a longer row".repeat(20);
        row_content_into(&mut reused, 7, "2026-11-30T12:00:00.000Z", &ev(3));
        assert_eq!(reused, content);
    }

    #[test]
    fn a_token_is_found_by_its_hash_and_covers_only_its_region_prefixes() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("s.db"), b"k").unwrap();
        let (id, secret) = s
            .create_token(&[Role::Intake], &["620503".into()], "window 1", |_| {
                Vec::new()
            })
            .unwrap();
        let t = s.token_by_hash(&token_hash(&secret)).unwrap().unwrap();
        assert_eq!(t.id, id);
        assert!(t.has(Role::Intake) && !t.has(Role::Admin));
        assert!(t.covers("620503") && !t.covers("620502"));
        assert!(s.token_by_hash(&token_hash("hd_other")).unwrap().is_none());
        let raw: String = s
            .conn()
            .unwrap()
            .query_row("SELECT hash FROM tokens", [], |r| r.get(0))
            .unwrap();
        assert_ne!(raw, secret);
    }

    /// A consent or token act is stored with its audit row or not at all: with the row's
    /// insert refused (a trigger standing in for a failed write), the act fails and nothing
    /// of it is stored; without the trigger each act and its row are there together.
    #[test]
    fn an_act_without_its_audit_row_is_not_stored() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("s.db"), b"k").unwrap();
        let ev = |action: &str, outcome: &str| AuditEvent {
            actor: "tok_test".into(),
            action: action.into(),
            outcome: outcome.into(),
            ..AuditEvent::default()
        };
        let count = |table: &str| -> i64 {
            s.conn()
                .unwrap()
                .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
                .unwrap()
        };
        let consent = s
            .add_consent(
                "620503198001011234",
                "6205**********1234",
                &["*".into()],
                "dibao",
                "2027-01-01",
                "tok_test",
                |r| vec![ev("consent_registered", r)],
            )
            .unwrap();
        let (token, secret) = s
            .create_token(&[Role::Intake], &["620503".into()], "w", |id| {
                vec![ev("token_created", id)]
            })
            .unwrap();
        assert_eq!(
            (count("consents"), count("tokens"), count("audit")),
            (1, 1, 2)
        );
        s.conn()
            .unwrap()
            .execute_batch(
                "CREATE TRIGGER refuse_rows BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'no row'); END;",
            )
            .unwrap();
        let refused = s.add_consent(
            "620503198001011234",
            "6205**********1234",
            &["*".into()],
            "dibao",
            "2027-01-01",
            "tok_test",
            |r| vec![ev("consent_registered", r)],
        );
        assert!(refused.is_err());
        assert!(
            s.create_token(&[Role::Intake], &["620503".into()], "w", |id| vec![ev(
                "token_created",
                id
            )])
            .is_err()
        );
        assert!(
            s.revoke_consent(&consent, |_| vec![ev("consent_revoked", "revoked")])
                .is_err()
        );
        assert!(
            s.revoke_token(&token, |_| vec![ev("token_revoked", "x")])
                .is_err()
        );
        // nothing of the four acts is stored: no new consent or token, nothing revoked
        assert_eq!(
            (count("consents"), count("tokens"), count("audit")),
            (1, 1, 2)
        );
        assert!(s.consent(&consent).unwrap().unwrap().revoked_at.is_none());
        assert!(
            s.token_by_hash(&token_hash(&secret)).unwrap().is_some(),
            "the token stays active"
        );
        // an act whose rows are written goes through, with its row
        s.conn()
            .unwrap()
            .execute_batch("DROP TRIGGER refuse_rows;")
            .unwrap();
        assert!(
            s.revoke_consent(&consent, |r| vec![ev("consent_revoked", &r.to_string())])
                .unwrap()
        );
        assert_eq!(count("audit"), 3);
        assert!(s.consent(&consent).unwrap().unwrap().revoked_at.is_some());
    }

    /// `unaudited_acts` names each consent or token act the store holds without its row (a
    /// store edited by hand or written by an older hedui), and none when every act has its.
    #[test]
    fn acts_without_their_audit_row_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("s.db"), b"k").unwrap();
        let ev = |action: &str, outcome: &str, consent_ref: &str| AuditEvent {
            actor: "cli".into(),
            action: action.into(),
            outcome: outcome.into(),
            consent_ref: consent_ref.into(),
            ..AuditEvent::default()
        };
        let (token, _) = s
            .create_token(&[Role::Intake], &["620503".into()], "w", |id| {
                vec![ev("token_created", id, "")]
            })
            .unwrap();
        // (a registration row as `hedui serve` writes it: terms, the person's keyed hash)
        let registered = format!(
            "scope:*; valid_until:2027-01-01; person:{}",
            s.person_hash("620503198001011234")
        );
        let register = |id: &str, masked: &str, outcome: &str| {
            s.add_consent(
                id,
                masked,
                &["*".into()],
                "dibao",
                "2027-01-01",
                &token,
                |r| {
                    vec![AuditEvent {
                        person: masked.into(),
                        actor: token.clone(),
                        ..ev("consent_registered", outcome, r)
                    }]
                },
            )
            .unwrap()
        };
        let consent = register("620503198001011234", "6205**********1234", &registered);
        // and one as before session 26 (no person's hash in the row)
        let older = register(
            "620503198001021230",
            "6205**********1230",
            "scope:*; valid_until:2027-01-01",
        );
        assert!(
            s.revoke_consent(&consent, |_| vec![ev(
                "consent_revoked",
                "revoked",
                &consent
            )])
            .unwrap()
        );
        assert_eq!(s.unaudited_acts().unwrap(), Vec::<String>::new());
        // acts stored without their rows, as before session 20 when a row failed
        let conn = s.conn().unwrap();
        conn.execute_batch(
            "INSERT INTO tokens (id, hash, roles, regions, label, created_at, revoked)
               VALUES ('tok_0000000000000001', 'h1', 'intake', '*', '', 't', 1);
             INSERT INTO consents (ref, person_hash, person_masked, scope, purpose, valid_until,
               created_at, revoked_at, registered_by)
               VALUES ('cr_000000000001', 'p', 'm', '*', 'x', '2027-01-01', 't', 't', 'cli');",
        )
        .unwrap();
        conn.execute("UPDATE tokens SET revoked = 1 WHERE id = ?1", [&token])
            .unwrap();
        drop(conn);
        assert_eq!(
            s.unaudited_acts().unwrap(),
            [
                "token tok_0000000000000001 created".to_string(),
                "token tok_0000000000000001 revoked".into(),
                format!("token {token} revoked"),
                "consent cr_000000000001 registered".into(),
                "consent cr_000000000001 revoked".into(),
            ]
        );
        // Found by session 26's attack: a revocation undone, a term, scope or person edited
        // in the store (the chain intact) were not named.
        s.conn()
            .unwrap()
            .execute("UPDATE tokens SET revoked = 0 WHERE id = ?1", [&token])
            .unwrap();
        assert!(
            s.revoke_token(&token, |_| vec![ev("token_revoked", &token, "")])
                .unwrap()
        );
        let conn = s.conn().unwrap();
        conn.execute("UPDATE tokens SET revoked = 0 WHERE id = ?1", [&token])
            .unwrap();
        let (hash_of_older,): (String,) = conn
            .query_row(
                "SELECT person_hash FROM consents WHERE ref = ?1",
                [&older],
                |r| Ok((r.get(0)?,)),
            )
            .unwrap();
        conn.execute(
            "UPDATE consents SET revoked_at = NULL, person_hash = ?2 WHERE ref = ?1",
            [&consent, &hash_of_older],
        )
        .unwrap();
        conn.execute(
            "UPDATE consents SET valid_until = '2099-12-31' WHERE ref = ?1",
            [&older],
        )
        .unwrap();
        drop(conn);
        let named = s.unaudited_acts().unwrap();
        let mut want = vec![
            format!("token {token} revoked in the audit log but active in the store"),
            format!("consent {consent} revoked in the audit log but not in the store"),
        ];
        let mut edited = vec![
            format!(
                "consent {consent} differs from its consent_registered row (scope, term or person edited in the store)"
            ),
            format!(
                "consent {older} differs from its consent_registered row (scope, term or person edited in the store)"
            ),
        ];
        edited.sort();
        want.extend(edited);
        assert_eq!(named.len(), 4 + want.len(), "{named:?}");
        assert_eq!(named[4..], want[..], "{named:?}");
        // a token's regions widened, a consent given to another token (session 26's second
        // attack: both unseen, and the server acted on them)
        let third = register(
            "620503198001031237",
            "6205**********1237",
            &format!(
                "scope:*; valid_until:2027-01-01; person:{}",
                s.person_hash("620503198001031237")
            ),
        );
        assert_eq!(s.unaudited_acts().unwrap(), named);
        let conn = s.conn().unwrap();
        conn.execute(
            "UPDATE tokens SET regions = '620502' WHERE id = ?1",
            [&token],
        )
        .unwrap();
        conn.execute(
            "UPDATE consents SET registered_by = 'tok_other' WHERE ref = ?1",
            [&third],
        )
        .unwrap();
        drop(conn);
        let now = s.unaudited_acts().unwrap();
        for w in [
            format!(
                "consent {third} differs from its consent_registered row (scope, term or person edited in the store)"
            ),
            format!(
                "token {token} differs from its token_created row (roles, regions or secret edited in the store)"
            ),
        ] {
            assert!(now.contains(&w), "{w} in {now:?}");
        }
        assert_eq!(now.len(), named.len() + 2, "{now:?}");
        // the chain itself is intact: only this check sees them
        assert_eq!(s.verify_chain().unwrap().first_bad, None);
    }
}
