//! Provincial scale (issue 5): the batch as a function of (region partition, as-of date),
//! incremental runs from a previous run's state and source deltas, and memory-limited runs
//! that take the region partitions one after another.
//!
//! Every full or partition run leaves its state in `--out/state/` (what an incremental run
//! needs, no private key): `manifest.json` (as-of, policy, recipients, caseload digest, per
//! source status and row accounting), `households.jsonl` (per household in caseload order:
//! determination, rules, per-capita values, byte length of its sealed report line) and
//! `linked.bin` (every source row linked to a caseload person: row, key and values, plus the
//! rows whose key misses a person's only in the check character). `linked.bin` holds
//! personal records; it stays beside `reports.jsonl` under the same access rules.
//!
//! The delta format (README "Incremental runs", `schemas/delta.json`): per source an
//! optional file `<source>.csv` (or `.parquet`) in `--delta` with the source's §2 columns plus
//! `op` (`add` / `change` / `remove`) and `row` (the 0-based data row in the previous
//! extract; empty for `add`). The end state it describes is the previous extract with each
//! `change` row replaced in place, each `remove` row taken out, the `add` rows filling the
//! freed rows in ascending order and then appended; when more rows are removed than added,
//! the last remaining rows move, last first, into the lowest freed rows. Row numbers in
//! reports are those of the end state, so an incremental run's reports equal a full run's on
//! the end state.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use hedui_connectors::file::{frame_to_records, locate};
use hedui_connectors::read::scan_prepared;
use hedui_connectors::{Record, RecordSet, SourceKind, prepare};
use polars::prelude::*;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{
    BatchError, BatchOptions, Ctx, FileCounts, Outcomes, OutputLock, PersonState, SourceSummary,
    Summary, fired_rules, new_run_id, run_selected, write_determinations, write_err, write_summary,
};
use crate::assess::Household;
use crate::domain::{IdError, IdNumber};
use crate::evidence::Frame;
use crate::ingest::{Action, Caseload, Quarantine, QuarantineEntry, load_caseload};
use crate::report::{Determination, Outcome, SourceStatus};
use crate::seal::RunSealer;

/// Which households a run covers.
pub(super) struct Selection {
    /// The region prefix (`--partition`), recorded in the state.
    pub prefix: Option<String>,
    keep: Option<Box<dyn Fn(usize, &Household) -> bool + Sync>>,
}

impl Selection {
    /// Every household.
    pub fn all() -> Selection {
        Selection {
            prefix: None,
            keep: None,
        }
    }

    /// Households whose region code starts with `prefix`.
    pub fn region(prefix: &str) -> Selection {
        let p = prefix.to_string();
        Selection {
            prefix: Some(prefix.to_string()),
            keep: Some(Box::new(move |_, h| h.region_code.starts_with(&p))),
        }
    }

    /// The caseload restricted to the selected households, their members and supporters
    /// (indices renumbered; caseload faults found over the whole caseload stay).
    pub fn slice(&self, caseload: Caseload) -> Caseload {
        match &self.keep {
            None => caseload,
            Some(f) => slice_caseload(caseload, |i, h| f(i, h)),
        }
    }
}

/// The caseload restricted to the households `keep` accepts (by caseload index).
fn slice_caseload(c: Caseload, keep: impl Fn(usize, &Household) -> bool) -> Caseload {
    let mut new_index = vec![usize::MAX; c.households.len()];
    let mut households = Vec::new();
    for (i, h) in c.households.into_iter().enumerate() {
        if keep(i, &h) {
            new_index[i] = households.len();
            households.push(h);
        }
    }
    let members = c
        .members
        .into_iter()
        .filter(|m| new_index[m.household] != usize::MAX)
        .map(|mut m| {
            m.household = new_index[m.household];
            m
        })
        .collect();
    let supporters = c
        .supporters
        .into_iter()
        .filter(|s| new_index[s.household] != usize::MAX)
        .map(|mut s| {
            s.household = new_index[s.household];
            s
        })
        .collect();
    Caseload {
        households,
        members,
        supporters,
        rows_read: c.rows_read,
        normalisations: c.normalisations,
    }
}

/// `hedui batch --partition PREFIX`: only the households whose region code starts with
/// `prefix` (GB/T 2260: `62` a province, `6205` a prefecture, `620503` a county), with their
/// members and supporters. Reports, determinations and the summary's counts are exactly that
/// slice of a full run's; rows that belong to no person (invalid keys) are quarantined by
/// every partition.
///
/// # Errors
/// As [`super::run`].
pub fn run_partition(opts: &BatchOptions, prefix: &str) -> Result<Summary, BatchError> {
    run_selected(opts, &Selection::region(prefix))
}

// ---------------------------------------------------------------- state

const LINKED_MAGIC: &[u8; 8] = b"HEDUIL1\n";

#[derive(Serialize, Deserialize, Clone)]
struct Manifest {
    version: u32,
    run_id: String,
    as_of: String,
    policy: String,
    partition: Option<String>,
    recipients: Vec<String>,
    caseload_digest: String,
    households: usize,
    sources: Vec<SourceState>,
}

#[derive(Serialize, Deserialize, Clone)]
struct SourceState {
    source: String,
    /// `answered` or `unverified`.
    status: String,
    reason: Option<String>,
    /// `csv` or `parquet`, file name, and the row accounting.
    format: String,
    file: String,
    rows: u64,
    linked: u64,
    unlinked: u64,
    quarantined: u64,
}

#[derive(Serialize, Deserialize, Clone)]
struct HouseholdState {
    id: String,
    determination: Determination,
    fired: Vec<(String, Outcome)>,
    review_due: bool,
    gap: Option<i64>,
    unverified: Vec<String>,
    per_capita: [Option<String>; 2],
    /// Bytes of the household's line in `reports.jsonl` (newline included).
    len: u64,
}

impl HouseholdState {
    fn of(o: &Outcomes, len: u64) -> Self {
        HouseholdState {
            id: o.household_id.clone(),
            determination: o.determination,
            fired: o.fired.clone(),
            review_due: o.review_due,
            gap: o.gap,
            unverified: o.unverified_sources.clone(),
            per_capita: o.per_capita.clone(),
            len,
        }
    }

    fn outcomes(&self) -> Outcomes {
        Outcomes {
            per_capita: self.per_capita.clone(),
            household_id: self.id.clone(),
            determination: self.determination,
            fired: self.fired.clone(),
            review_due: self.review_due,
            gap: self.gap,
            unverified_sources: self.unverified.clone(),
        }
    }
}

/// SHA-256 over the caseload files (name and bytes): an incremental run needs the same
/// caseload as its previous run.
fn caseload_digest(dir: &Path) -> Result<String, BatchError> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for table in ["households", "members", "supporters"] {
        if let Some((path, _)) = locate(dir, table) {
            let bytes = std::fs::read(&path).map_err(|e| BatchError::Previous {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
            ctx.update(table.as_bytes());
            ctx.update(&(bytes.len() as u64).to_le_bytes());
            ctx.update(&bytes);
        }
    }
    Ok(hex::encode(ctx.finish().as_ref()))
}

/// One linked row in `linked.bin`: source, row, person key and the encoded record (raw ID
/// and values), kept encoded until a household of the person is recomputed.
#[derive(Clone, Copy)]
struct LinkedRow {
    source: u8,
    row: u64,
    key: u64,
    /// The encoded record: `len` bytes at `at` of the state file's buffer, or of the
    /// buffer of new rows when `fresh`.
    at: usize,
    len: u32,
    fresh: bool,
}

impl LinkedRow {
    fn blob<'a>(&self, state: &'a [u8], fresh: &'a [u8]) -> &'a [u8] {
        let b = if self.fresh { fresh } else { state };
        &b[self.at..self.at + self.len as usize]
    }
}

fn encode_record(rec: &Record) -> Vec<u8> {
    let mut b = Vec::with_capacity(64);
    put_str(&mut b, Some(&rec.id_number));
    b.extend_from_slice(&(rec.values.len() as u16).to_le_bytes());
    for v in &rec.values {
        put_str(&mut b, v.as_deref());
    }
    b
}

fn put_str(b: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => b.extend_from_slice(&u32::MAX.to_le_bytes()),
        Some(s) => {
            b.extend_from_slice(&(s.len() as u32).to_le_bytes());
            b.extend_from_slice(s.as_bytes());
        }
    }
}

fn decode_record(row: u64, blob: &[u8]) -> Option<Record> {
    let mut at = 0usize;
    let take_str = |at: &mut usize| -> Option<Option<String>> {
        let n = u32::from_le_bytes(blob.get(*at..*at + 4)?.try_into().ok()?);
        *at += 4;
        if n == u32::MAX {
            return Some(None);
        }
        let s = std::str::from_utf8(blob.get(*at..*at + n as usize)?).ok()?;
        *at += n as usize;
        Some(Some(s.to_string()))
    };
    let id_number = take_str(&mut at)??;
    let n = u16::from_le_bytes(blob.get(at..at + 2)?.try_into().ok()?);
    at += 2;
    let mut values = Vec::with_capacity(n as usize);
    for _ in 0..n {
        values.push(take_str(&mut at)?);
    }
    Some(Record {
        row,
        id_number,
        values,
    })
}

/// Writes `linked.bin`: rows, then near-miss rows, then the row count.
struct LinkedWriter {
    w: BufWriter<std::fs::File>,
    n: u64,
}

impl LinkedWriter {
    fn create(path: &Path) -> std::io::Result<Self> {
        let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
        w.write_all(LINKED_MAGIC)?;
        Ok(LinkedWriter { w, n: 0 })
    }

    fn row(&mut self, s: u8, row: u64, key: u64, blob: &[u8]) -> std::io::Result<()> {
        self.w.write_all(&[1, s])?;
        self.w.write_all(&row.to_le_bytes())?;
        self.w.write_all(&key.to_le_bytes())?;
        self.w.write_all(&(blob.len() as u32).to_le_bytes())?;
        self.w.write_all(blob)?;
        self.n += 1;
        Ok(())
    }

    fn near(&mut self, s: u8, row: u64, body: u64) -> std::io::Result<()> {
        self.w.write_all(&[2, s])?;
        self.w.write_all(&row.to_le_bytes())?;
        self.w.write_all(&body.to_le_bytes())
    }

    fn finish(mut self) -> std::io::Result<()> {
        self.w.write_all(&[0])?;
        self.w.write_all(&self.n.to_le_bytes())?;
        self.w.flush()
    }
}

fn write_linked<B: AsRef<[u8]>>(
    path: &Path,
    rows: impl Iterator<Item = (u8, u64, u64, B)>,
    near_miss: &[(u8, u64, u64)],
) -> std::io::Result<()> {
    let mut w = LinkedWriter::create(path)?;
    for (s, row, key, blob) in rows {
        w.row(s, row, key, blob.as_ref())?;
    }
    for &(s, row, body) in near_miss {
        w.near(s, row, body)?;
    }
    w.finish()
}

/// Read `linked.bin` front to back without holding it: `row` for each linked row, `near`
/// for each near-miss row. `None` when the file is missing, truncated or not hedui's.
fn stream_linked(
    path: &Path,
    mut row: impl FnMut(u8, u64, u64, &[u8]) -> std::io::Result<()>,
    mut near: impl FnMut(u8, u64, u64),
) -> Option<()> {
    let mut r = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(path).ok()?);
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic).ok()?;
    if &magic != LINKED_MAGIC {
        return None;
    }
    let mut n = 0u64;
    let mut head = [0u8; 21];
    let mut blob = Vec::new();
    loop {
        let mut tag = [0u8; 1];
        r.read_exact(&mut tag).ok()?;
        match tag[0] {
            0 => {
                let mut c = [0u8; 8];
                r.read_exact(&mut c).ok()?;
                return (u64::from_le_bytes(c) == n).then_some(());
            }
            1 => {
                r.read_exact(&mut head).ok()?;
                let s = head[0];
                let rw = u64::from_le_bytes(head[1..9].try_into().ok()?);
                let key = u64::from_le_bytes(head[9..17].try_into().ok()?);
                let len = u32::from_le_bytes(head[17..21].try_into().ok()?) as usize;
                blob.resize(len, 0);
                r.read_exact(&mut blob).ok()?;
                row(s, rw, key, &blob).ok()?;
                n += 1;
            }
            2 => {
                r.read_exact(&mut head[..17]).ok()?;
                near(
                    head[0],
                    u64::from_le_bytes(head[1..9].try_into().ok()?),
                    u64::from_le_bytes(head[9..17].try_into().ok()?),
                );
            }
            _ => return None,
        }
    }
}

fn read_linked(path: &Path) -> Option<(Vec<u8>, Vec<LinkedRow>, Vec<(u8, u64, u64)>)> {
    let b = std::fs::read(path).ok()?;
    let (rows, near) = index_linked(&b)?;
    Some((b, rows, near))
}

/// The rows of a `linked.bin` buffer, without decoding a record.
fn index_linked(b: &[u8]) -> Option<(Vec<LinkedRow>, Vec<(u8, u64, u64)>)> {
    if b.get(..8)? != LINKED_MAGIC {
        return None;
    }
    let mut at = 8;
    let mut rows = Vec::with_capacity(b.len() / 100);
    let mut near = Vec::new();
    let u64_at = |at: usize| -> Option<u64> {
        Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
    };
    loop {
        match *b.get(at)? {
            0 => {
                return (u64_at(at + 1)? == rows.len() as u64).then_some((rows, near));
            }
            1 => {
                let s = *b.get(at + 1)?;
                let row = u64_at(at + 2)?;
                let key = u64_at(at + 10)?;
                let n = u32::from_le_bytes(b.get(at + 18..at + 22)?.try_into().ok()?) as usize;
                b.get(at + 22..at + 22 + n)?;
                rows.push(LinkedRow {
                    source: s,
                    row,
                    key,
                    at: at + 22,
                    len: n as u32,
                    fresh: false,
                });
                at += 22 + n;
            }
            2 => {
                near.push((*b.get(at + 1)?, u64_at(at + 2)?, u64_at(at + 10)?));
                at += 18;
            }
            _ => return None,
        }
    }
}

/// Write `state/` for a run (see the module docs).
#[allow(clippy::too_many_arguments)]
pub(super) fn write_state(
    opts: &BatchOptions,
    partition: &Option<String>,
    run_id: &str,
    sources: &BTreeMap<String, SourceSummary>,
    record_sets: &[RecordSet],
    near_miss: &[(u8, u64, u64)],
    outcomes: &[Outcomes],
    report_lens: &[u64],
) -> Result<(), BatchError> {
    let dir = opts.out.join("state");
    std::fs::create_dir_all(&dir).map_err(write_err(&dir))?;
    let sealer_ids: Vec<String> = opts.recipients.iter().map(|r| r.key_id()).collect();
    let manifest = Manifest {
        version: 1,
        run_id: run_id.to_string(),
        as_of: opts.as_of.to_string(),
        policy: opts.policy.id.clone(),
        partition: partition.clone(),
        recipients: sealer_ids,
        caseload_digest: caseload_digest(&opts.caseload)?,
        households: outcomes.len(),
        sources: SourceKind::ALL
            .iter()
            .map(|k| source_state(k.name(), sources.get(k.name())))
            .collect(),
    };
    let mpath = dir.join("manifest.json");
    std::fs::write(&mpath, serde_json::to_vec_pretty(&manifest).expect("json"))
        .map_err(write_err(&mpath))?;
    write_households(
        &dir,
        outcomes
            .iter()
            .zip(report_lens)
            .map(|(o, &l)| HouseholdState::of(o, l)),
    )?;
    let as_of = opts.as_of;
    let lpath = dir.join("linked.bin");
    let rows = record_sets.iter().enumerate().flat_map(|(si, set)| {
        set.records.iter().filter_map(move |rec| {
            let key = IdNumber::parse(&rec.id_number, as_of).ok()?.0.key();
            Some((si as u8, rec.row, key, encode_record(rec)))
        })
    });
    write_linked(&lpath, rows, near_miss).map_err(write_err(&lpath))
}

fn source_state(name: &str, s: Option<&SourceSummary>) -> SourceState {
    let c = s.and_then(|s| s.counts.clone()).unwrap_or_default();
    SourceState {
        source: name.to_string(),
        status: s.map_or("unverified", |s| s.status).to_string(),
        reason: s.and_then(|s| s.reason.clone()),
        format: c.format,
        file: c.file,
        rows: c.rows,
        linked: c.linked,
        unlinked: c.unlinked,
        quarantined: c.quarantined,
    }
}

fn write_households(
    dir: &Path,
    rows: impl Iterator<Item = HouseholdState>,
) -> Result<(), BatchError> {
    let hpath = dir.join("households.jsonl");
    let mut w = BufWriter::new(std::fs::File::create(&hpath).map_err(write_err(&hpath))?);
    for h in rows {
        serde_json::to_writer(&mut w, &h).expect("json");
        w.write_all(b"\n").map_err(write_err(&hpath))?;
    }
    w.flush().map_err(write_err(&hpath))
}

struct PreviousRun {
    dir: PathBuf,
    manifest: Manifest,
    households: Vec<HouseholdState>,
    buf: Vec<u8>,
    linked: Vec<LinkedRow>,
    near_miss: Vec<(u8, u64, u64)>,
}

fn load_previous(dir: &Path) -> Result<PreviousRun, BatchError> {
    load_state(dir, true)
}

/// A previous run's state; `linked.bin` only when `with_linked` (else left on disk).
fn load_state(dir: &Path, with_linked: bool) -> Result<PreviousRun, BatchError> {
    let err = |m: String| BatchError::Previous {
        path: dir.display().to_string(),
        message: m,
    };
    let state = dir.join("state");
    let manifest: Manifest = std::fs::read(state.join("manifest.json"))
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        .map_err(|m| {
            err(format!(
                "state/manifest.json: {m} (an incremental run needs the state a full run of this version writes)"
            ))
        })?;
    let text = std::fs::read_to_string(state.join("households.jsonl"))
        .map_err(|e| err(format!("state/households.jsonl: {e}")))?;
    let households = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str::<HouseholdState>(l)
                .map_err(|e| err(format!("state/households.jsonl line {}: {e}", i + 1)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (buf, linked, near_miss) = if with_linked {
        read_linked(&state.join("linked.bin"))
            .ok_or_else(|| err("state/linked.bin is missing, truncated or not hedui's".into()))?
    } else {
        Default::default()
    };
    Ok(PreviousRun {
        dir: dir.to_path_buf(),
        manifest,
        households,
        buf,
        linked,
        near_miss,
    })
}

// ---------------------------------------------------------------- delta

/// A delta file that cannot be applied (exit 2: nothing is written).
#[derive(Debug, thiserror::Error)]
#[error("delta {file} row {row} column {column}: {message}")]
pub struct DeltaError {
    /// The delta file.
    pub file: String,
    /// 0-based data row of the delta file, or `-`.
    pub row: String,
    /// The column.
    pub column: String,
    /// What is wrong (no values of persons).
    pub message: String,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Add,
    Change,
    Remove,
}

struct DeltaRow {
    op: Op,
    /// Row in the previous extract (change/remove).
    prev_row: Option<u64>,
    rec: Record,
}

struct SourceDelta {
    file: String,
    rows: Vec<DeltaRow>,
}

fn read_delta(dir: &Path, kind: SourceKind) -> Result<Option<SourceDelta>, BatchError> {
    let Some((path, _)) = locate(dir, kind.name()) else {
        return Ok(None);
    };
    let file = path.display().to_string();
    let derr = |row: String, column: &str, message: String| {
        BatchError::Delta(DeltaError {
            file: file.clone(),
            row,
            column: column.to_string(),
            message,
        })
    };
    let mut required = vec!["op", "row"];
    required.extend(kind.required_columns());
    // Table name without a field map: the delta's headers are the §2 names.
    let table = format!("{}_delta", kind.name());
    let prepared =
        prepare(&path, &table, &required).map_err(|e| derr("-".into(), "-", e.to_string()))?;
    let df = scan_prepared(&prepared, &required)
        .map_err(|e| derr("-".into(), "-", e.to_string()))?
        .with_row_index("_row", None)
        .collect()
        .map_err(|e| derr("-".into(), "-", e.to_string()))?;
    let text = |name: &str| -> Result<Vec<Option<String>>, BatchError> {
        let c = df
            .column(name)
            .and_then(|c| c.cast(&DataType::String))
            .map_err(|e| derr("-".into(), name, e.to_string()))?;
        Ok(c.str()
            .map_err(|e| derr("-".into(), name, e.to_string()))?
            .iter()
            .map(|v| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()))
            .collect())
    };
    let ops = text("op")?;
    let prev_rows = text("row")?;
    let recs = frame_to_records(&path, kind, df.drop_many(["op", "row"]))
        .map_err(|e| derr("-".into(), "-", e.to_string()))?;
    let mut rows = Vec::with_capacity(recs.records.len());
    for (i, rec) in recs.records.into_iter().enumerate() {
        let op = match ops[i].as_deref() {
            Some("add") => Op::Add,
            Some("change") => Op::Change,
            Some("remove") => Op::Remove,
            _ => {
                return Err(derr(
                    i.to_string(),
                    "op",
                    "op must be add, change or remove".into(),
                ));
            }
        };
        let prev_row = match (op, prev_rows[i].as_deref()) {
            (Op::Add, None) => None,
            (Op::Add, Some(_)) => {
                return Err(derr(
                    i.to_string(),
                    "row",
                    "an add row has no row (it is new)".into(),
                ));
            }
            (_, Some(r)) => Some(r.parse::<u64>().map_err(|_| {
                derr(
                    i.to_string(),
                    "row",
                    "row must be a 0-based row number of the previous extract".into(),
                )
            })?),
            (_, None) => {
                return Err(derr(
                    i.to_string(),
                    "row",
                    "a change or remove row names the row of the previous extract".into(),
                ));
            }
        };
        rows.push(DeltaRow { op, prev_row, rec });
    }
    Ok(Some(SourceDelta { file, rows }))
}

/// Where every previous row goes in the end state, per the apply rule in the module docs.
struct RowMap {
    /// Previous rows taken out (removed, or replaced by a change).
    gone: HashSet<u64>,
    /// Previous row → end-state row for rows that move (only when removals exceed adds).
    moved: HashMap<u64, u64>,
    /// End-state row of each delta row (change: its row; add: a freed or appended row;
    /// remove: none).
    delta_rows: Vec<Option<u64>>,
    /// Rows in the end state.
    rows: u64,
}

fn plan_rows(prev_rows: u64, delta: &SourceDelta) -> Result<RowMap, BatchError> {
    let mut removed: BTreeSet<u64> = BTreeSet::new();
    let mut gone = HashSet::new();
    let mut seen = HashSet::new();
    for (i, d) in delta.rows.iter().enumerate() {
        if let Some(r) = d.prev_row {
            if r >= prev_rows {
                return Err(BatchError::Delta(DeltaError {
                    file: delta.file.clone(),
                    row: i.to_string(),
                    column: "row".into(),
                    message: format!("row {r} is not in the previous extract ({prev_rows} rows)"),
                }));
            }
            if !seen.insert(r) {
                return Err(BatchError::Delta(DeltaError {
                    file: delta.file.clone(),
                    row: i.to_string(),
                    column: "row".into(),
                    message: format!("row {r} is named twice"),
                }));
            }
            gone.insert(r);
            if d.op == Op::Remove {
                removed.insert(r);
            }
        }
    }
    let adds = delta.rows.iter().filter(|d| d.op == Op::Add).count() as u64;
    let end_rows = prev_rows - removed.len() as u64 + adds;
    let mut free = removed.iter().copied();
    let mut next_new = prev_rows;
    let mut delta_rows = Vec::with_capacity(delta.rows.len());
    for d in &delta.rows {
        delta_rows.push(match d.op {
            Op::Remove => None,
            Op::Change => d.prev_row,
            Op::Add => Some(free.next().unwrap_or_else(|| {
                next_new += 1;
                next_new - 1
            })),
        });
    }
    // Freed rows left over (more removed than added): the last remaining rows move into them.
    let holes: Vec<u64> = free.filter(|&r| r < end_rows).collect();
    let mut moved = HashMap::new();
    let mut src = prev_rows;
    for hole in holes {
        loop {
            src -= 1;
            if !removed.contains(&src) {
                break;
            }
        }
        moved.insert(src, hole);
    }
    Ok(RowMap {
        gone,
        moved,
        delta_rows,
        rows: end_rows,
    })
}

// ---------------------------------------------------------------- incremental run

/// `hedui batch --previous DIR --delta DIR`: recompute only the households touched by the
/// delta (every household with a member or supporter whose ID appears in a delta row or in
/// a previous row the delta changes, removes or moves), reuse every other household's sealed
/// report and outcome from the previous run, and write `changes.json` (households whose
/// determination flipped, the rules that flipped, before and after values).
///
/// Needs the same caseload, as-of date, policy and recipients as the previous run (else a
/// full run is needed: [`BatchError::Previous`] says so).
///
/// # Errors
/// [`BatchError::Previous`] for a missing or mismatched previous state,
/// [`BatchError::Delta`] for a delta that cannot be applied, and the errors of a full run.
pub fn run_incremental(
    opts: &BatchOptions,
    previous: &Path,
    delta_dir: &Path,
) -> Result<Summary, BatchError> {
    let t0 = Instant::now();
    let mut timings = BTreeMap::new();
    std::fs::create_dir_all(&opts.out).map_err(write_err(&opts.out))?;
    let _lock = OutputLock::take(&opts.out)?;
    let prev = load_previous(previous)?;
    timings.insert("state_read".to_string(), t0.elapsed().as_millis());
    let mismatch = |what: &str| BatchError::Previous {
        path: previous.display().to_string(),
        message: format!(
            "{what} differs from the previous run's; an incremental run needs the same (run a full batch)"
        ),
    };
    let policy = &opts.policy;
    let run_id = new_run_id(opts.as_of);
    let sealer = RunSealer::new(&opts.signing, &opts.recipients, &run_id)?;
    if prev.manifest.as_of != opts.as_of.to_string() {
        return Err(mismatch("--as-of"));
    }
    if prev.manifest.policy != policy.id {
        return Err(mismatch("the policy"));
    }
    if prev.manifest.recipients
        != opts
            .recipients
            .iter()
            .map(|r| r.key_id())
            .collect::<Vec<_>>()
    {
        return Err(mismatch("the recipients"));
    }
    if prev.manifest.caseload_digest != caseload_digest(&opts.caseload)? {
        return Err(mismatch("the caseload"));
    }
    let mut q = Quarantine::default();
    let full = load_caseload(&opts.caseload, opts.as_of, &mut q)?;
    let caseload = match &prev.manifest.partition {
        Some(p) => Selection::region(p).slice(full),
        None => full,
    };
    if caseload.households.len() != prev.households.len() {
        return Err(mismatch("the number of households"));
    }
    let caseload_q = q.entries.len();
    // All queried persons (consent, valid ID), as in a full run.
    let mut everyone: HashSet<u64> = HashSet::new();
    for id in caseload.queried_ids() {
        everyone.insert(id.key());
    }
    timings.insert("caseload".to_string(), t0.elapsed().as_millis());

    // ---- the delta: end-state rows, and the persons it touches
    let ts = Instant::now();
    let mut deltas: Vec<Option<SourceDelta>> = Vec::new();
    let mut maps: Vec<Option<RowMap>> = Vec::new();
    let mut touched: HashSet<u64> = HashSet::new();
    // A file that names no source (a typo such as `taxes.csv`) is refused, never ignored: its
    // changes would silently not be applied.
    if let Ok(entries) = std::fs::read_dir(delta_dir) {
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().to_string();
            if !p.is_file() || name.starts_with('.') {
                continue;
            }
            let stem = name.split('.').next().unwrap_or("");
            if !SourceKind::ALL.iter().any(|k| k.name() == stem) {
                return Err(BatchError::Delta(DeltaError {
                    file: p.display().to_string(),
                    row: "-".into(),
                    column: "-".into(),
                    message: format!(
                        "the file name names no source: a delta file is <source>.csv or .parquet, the source one of {}",
                        SourceKind::ALL
                            .iter()
                            .map(|k| k.name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }));
            }
        }
    }
    for (si, kind) in SourceKind::ALL.into_iter().enumerate() {
        let st = &prev.manifest.sources[si];
        let d = read_delta(delta_dir, kind)?;
        if d.is_some() && st.status != "answered" {
            return Err(BatchError::Previous {
                path: previous.display().to_string(),
                message: format!(
                    "{} was unverified in the previous run: a delta cannot apply to it (run a full batch)",
                    kind.name()
                ),
            });
        }
        let m = d.as_ref().map(|d| plan_rows(st.rows, d)).transpose()?;
        if let (Some(d), Some(m)) = (&d, &m) {
            for row in &d.rows {
                if let Some(key) = delta_key(&row.rec.id_number, opts.as_of) {
                    touched.insert(key);
                }
            }
            for &(s, r, body) in &prev.near_miss {
                if s as usize == si && (m.gone.contains(&r) || m.moved.contains_key(&r)) {
                    touched.insert(body);
                }
            }
        }
        deltas.push(d);
        maps.push(m);
    }
    timings.insert("delta_read".to_string(), ts.elapsed().as_millis());
    // The persons of the previous rows the delta changes, removes or moves.
    for r in &prev.linked {
        if let Some(m) = &maps[r.source as usize]
            && (m.gone.contains(&r.row) || m.moved.contains_key(&r.row))
        {
            touched.insert(r.key);
        }
    }
    // Touched households, and every queried person of theirs.
    let mut recompute = vec![false; caseload.households.len()];
    for m in &caseload.members {
        if m.id.as_ref().is_ok_and(|id| touched.contains(&id.key())) {
            recompute[m.household] = true;
        }
    }
    for s in &caseload.supporters {
        if s.id.as_ref().is_ok_and(|id| touched.contains(&id.key())) {
            recompute[s.household] = true;
        }
    }
    let mut person_index: HashMap<u64, usize> = HashMap::new();
    let queried = caseload
        .members
        .iter()
        .filter(|m| m.consent && recompute[m.household])
        .map(|m| &m.id)
        .chain(
            caseload
                .supporters
                .iter()
                .filter(|s| s.consent && recompute[s.household])
                .map(|s| &s.id),
        );
    for id in queried.flatten() {
        let n = person_index.len();
        person_index.entry(id.key()).or_insert(n);
    }

    // ---- the end state's linked rows (all persons, for the next state) and the records of
    // the persons recomputed
    let mut end_linked: Vec<LinkedRow> = Vec::with_capacity(prev.linked.len());
    let mut fresh_buf: Vec<u8> = Vec::new();
    for r in &prev.linked {
        let m = maps[r.source as usize].as_ref();
        if m.is_some_and(|m| m.gone.contains(&r.row)) {
            continue;
        }
        let row = m
            .and_then(|m| m.moved.get(&r.row).copied())
            .unwrap_or(r.row);
        end_linked.push(LinkedRow { row, ..*r });
    }
    let mut end_near: Vec<(u8, u64, u64)> = prev
        .near_miss
        .iter()
        .filter_map(|&(s, r, b)| {
            let m = maps[s as usize].as_ref();
            if m.is_some_and(|m| m.gone.contains(&r)) {
                return None;
            }
            Some((s, m.and_then(|m| m.moved.get(&r).copied()).unwrap_or(r), b))
        })
        .collect();
    // Quarantine of source rows: the previous entries, less the rows the delta takes out and
    // the rows of recomputed persons (their entries are made again below).
    let mut drop_q: HashSet<(usize, u64)> = HashSet::new();
    let mut bad_new: Vec<(usize, u64, String)> = Vec::new();
    for (si, (d, m)) in deltas.iter().zip(&maps).enumerate() {
        let (Some(d), Some(m)) = (d, m) else { continue };
        for r in m.gone.iter().chain(m.moved.keys()) {
            drop_q.insert((si, *r));
        }
        for (row, end_row) in d.rows.iter().zip(&m.delta_rows) {
            let Some(end_row) = *end_row else { continue };
            match IdNumber::parse(&row.rec.id_number, opts.as_of) {
                Ok((id, _)) if everyone.contains(&id.key()) => {
                    let mut rec = row.rec.clone();
                    rec.row = end_row;
                    let blob = encode_record(&rec);
                    end_linked.push(LinkedRow {
                        source: si as u8,
                        row: end_row,
                        key: id.key(),
                        at: fresh_buf.len(),
                        len: blob.len() as u32,
                        fresh: true,
                    });
                    fresh_buf.extend_from_slice(&blob);
                }
                Ok(_) => {}
                Err(e) => {
                    if let Some(body) = near_miss_body(&row.rec.id_number, &e)
                        && everyone.contains(&body)
                    {
                        end_near.push((si as u8, end_row, body));
                    }
                    bad_new.push((si, end_row, row.rec.id_number.clone()));
                }
            }
        }
    }
    end_linked.sort_unstable_by_key(|r| (r.source, r.row));
    end_near.sort_unstable();

    let frame = Frame::new(opts.as_of, policy);
    let mut persons: Vec<PersonState> = (0..person_index.len())
        .map(|_| PersonState::default())
        .collect();
    let mut record_sets: Vec<RecordSet> = SourceKind::ALL
        .iter()
        .map(|k| RecordSet {
            columns: k.columns().iter().map(|c| c.name).collect(),
            records: Vec::new(),
        })
        .collect();
    let mut source_q: Vec<QuarantineEntry> = Vec::new();
    let mut linked_delta: Vec<i64> = vec![0; SourceKind::ALL.len()];
    let mut quarantined_delta: Vec<i64> = vec![0; SourceKind::ALL.len()];
    for &(s, row, body) in &end_near {
        if let Some(&pi) = person_index.get(&body) {
            let kind = SourceKind::ALL[s as usize];
            let p = &mut persons[pi];
            if !p.incomplete.iter().any(|(k, _)| *k == kind) {
                p.incomplete.push((kind, format!("rows_quarantined: a {} row whose ID differs from a person's only in the check character", kind.name())));
            }
            let _ = row;
        }
    }
    for r in end_linked
        .iter()
        .filter(|r| person_index.contains_key(&r.key))
    {
        let si = r.source as usize;
        let kind = SourceKind::ALL[si];
        let Some(rec) = decode_record(r.row, r.blob(&prev.buf, &fresh_buf)) else {
            return Err(BatchError::Previous {
                path: previous.display().to_string(),
                message: "state/linked.bin holds a record that does not decode".into(),
            });
        };
        let p = &mut persons[person_index[&r.key]];
        let file = &prev.manifest.sources[si].file;
        drop_q.insert((si, r.row));
        match p.evidence.add(kind, &rec.values, &frame, policy) {
            Ok(in_scope) => {
                if in_scope {
                    p.records
                        .push((si as u8, record_sets[si].records.len() as u32));
                }
            }
            Err(fe) => {
                quarantined_delta[si] += 1;
                let raw = rec.values[kind
                    .columns()
                    .iter()
                    .position(|c| c.name == fe.column)
                    .unwrap_or(0)]
                .clone()
                .unwrap_or_default();
                source_q.push(QuarantineEntry::at(
                    file,
                    line_of(&prev.manifest.sources[si], rec.row),
                    Some(rec.row),
                    fe.column,
                    &raw,
                    fe.code,
                    Action::Referred,
                    format!(
                        "{}; the person's {} evidence is incomplete, household referred",
                        fe.message,
                        kind.name()
                    ),
                ));
                if !p.incomplete.iter().any(|(k, _)| *k == kind) {
                    p.incomplete.push((
                        kind,
                        format!(
                            "rows_quarantined: a {} row of a person could not be read",
                            kind.name()
                        ),
                    ));
                }
            }
        }
        record_sets[si].records.push(rec);
    }
    for (si, row, raw) in &bad_new {
        let st = &prev.manifest.sources[*si];
        let e = IdNumber::parse(raw, opts.as_of)
            .err()
            .unwrap_or(IdError::Missing);
        quarantined_delta[*si] += 1;
        source_q.push(QuarantineEntry::at(
            &st.file,
            line_of(st, *row),
            Some(*row),
            "id_number",
            raw,
            e.code(),
            Action::Rejected,
            format!("id_number: {e}; the row cannot be linked to a person"),
        ));
    }
    // Row accounting: linked rows counted afresh over the end state's linked rows.
    let mut linked_now = vec![0u64; SourceKind::ALL.len()];
    for r in &end_linked {
        linked_now[r.source as usize] += 1;
    }
    for (si, st) in prev.manifest.sources.iter().enumerate() {
        linked_delta[si] = linked_now[si] as i64 - (st.linked + st.quarantined) as i64;
    }
    timings.insert("delta".to_string(), ts.elapsed().as_millis());

    // ---- assess + report + seal the recomputed households
    let ta = Instant::now();
    let unverified: Vec<(SourceKind, String)> = SourceKind::ALL
        .into_iter()
        .zip(&prev.manifest.sources)
        .filter(|(_, s)| s.status != "answered")
        .map(|(k, s)| (k, s.reason.clone().unwrap_or_default()))
        .collect();
    let (members_of, supporters_of) = caseload.persons_by_household();
    let ctx = Ctx {
        caseload: &caseload,
        persons: &persons,
        person_index: &person_index,
        record_sets: &record_sets,
        unverified: &unverified,
        policy,
        run_id: &run_id,
        as_of: opts.as_of,
    };
    let todo: Vec<usize> = (0..caseload.households.len())
        .filter(|&h| recompute[h])
        .collect();
    let fresh: Vec<Result<(usize, String, Outcomes), BatchError>> = todo
        .par_iter()
        .map(|&h| {
            let (report, gap) = ctx.report(h, &members_of[h], &supporters_of[h]);
            let text = serde_json::to_vec(&report).expect("reports serialise");
            let sealed = sealer.seal(&report.report_id, &text)?;
            let o = Outcomes {
                per_capita: [
                    report.per_capita_monthly_income.clone(),
                    report.per_capita_financial_assets.clone(),
                ],
                household_id: report.household_id.clone(),
                determination: report.determination,
                fired: report
                    .findings
                    .iter()
                    .map(|f| (f.rule.clone(), f.outcome))
                    .collect(),
                review_due: report.review_due,
                gap,
                unverified_sources: report
                    .sources
                    .iter()
                    .filter(|s| s.status == SourceStatus::Unverified)
                    .map(|s| s.source.clone())
                    .collect(),
            };
            Ok((
                h,
                serde_json::to_string(&sealed).expect("envelopes serialise"),
                o,
            ))
        })
        .collect();
    let mut fresh_by_h: HashMap<usize, (String, Outcomes)> = HashMap::new();
    for r in fresh {
        let (h, line, o) = r?;
        fresh_by_h.insert(h, (line, o));
    }
    timings.insert("assess_seal".to_string(), ta.elapsed().as_millis());

    // ---- write: reports (fresh lines, and byte ranges of the previous file), state, …
    let tw = Instant::now();
    let reports_path = opts.out.join("reports.jsonl");
    let mut prev_reports =
        std::fs::File::open(prev.dir.join("reports.jsonl")).map_err(write_err(&prev.dir))?;
    let mut out = BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(&reports_path).map_err(write_err(&reports_path))?,
    );
    let mut outcomes: Vec<Outcomes> = Vec::with_capacity(caseload.households.len());
    let mut states: Vec<HouseholdState> = Vec::with_capacity(caseload.households.len());
    let mut offset = 0u64;
    let mut pending: Option<(u64, u64)> = None; // previous file range still to copy
    let copy = |out: &mut BufWriter<std::fs::File>,
                src: &mut std::fs::File,
                (from, len): (u64, u64)|
     -> std::io::Result<()> {
        out.flush()?;
        src.seek(SeekFrom::Start(from))?;
        let n = std::io::copy(&mut Read::take(&mut *src, len), out.get_mut())?;
        if n != len {
            return Err(std::io::Error::other(
                "the previous reports.jsonl is shorter than its state says",
            ));
        }
        Ok(())
    };
    for (h, hs) in prev.households.iter().enumerate() {
        if hs.id != caseload.households[h].id {
            return Err(mismatch("the household order"));
        }
        match fresh_by_h.remove(&h) {
            Some((line, o)) => {
                if let Some(r) = pending.take() {
                    copy(&mut out, &mut prev_reports, r).map_err(write_err(&reports_path))?;
                }
                out.write_all(line.as_bytes())
                    .and_then(|_| out.write_all(b"\n"))
                    .map_err(write_err(&reports_path))?;
                states.push(HouseholdState::of(&o, line.len() as u64 + 1));
                outcomes.push(o);
            }
            None => {
                pending = Some(match pending {
                    Some((from, len)) => (from, len + hs.len),
                    None => (offset, hs.len),
                });
                states.push(hs.clone());
                outcomes.push(hs.outcomes());
            }
        }
        offset += hs.len;
    }
    if let Some(r) = pending.take() {
        copy(&mut out, &mut prev_reports, r).map_err(write_err(&reports_path))?;
    }
    out.flush().map_err(write_err(&reports_path))?;
    timings.insert("reports_copy".to_string(), tw.elapsed().as_millis());
    let det_path = opts.out.join("determinations.csv");
    write_determinations(&det_path, &outcomes).map_err(write_err(&det_path))?;
    let cpath = opts.out.join("changes.json");
    let changes = changes_json(previous, &prev.households, &outcomes, todo.len());
    std::fs::write(&cpath, serde_json::to_vec_pretty(&changes).expect("json"))
        .map_err(write_err(&cpath))?;

    // quarantine: caseload entries (read again), previous source entries kept, new ones
    let prev_q = read_quarantine(&prev.dir.join("quarantine.csv"), &prev.manifest)?;
    for mut e in prev_q {
        let Some(row) = e.row else { continue };
        let si = prev.manifest.sources.iter().position(|s| s.file == e.file);
        if si.is_some_and(|si| drop_q.contains(&(si, row))) {
            continue;
        }
        if let Some(si) = si
            && let Some(&to) = maps[si].as_ref().and_then(|m| m.moved.get(&row))
        {
            e.row = Some(to);
            e.line = line_of(&prev.manifest.sources[si], to);
        }
        source_q.push(e);
    }
    source_q.sort_by(|a, b| {
        let pos = |f: &str| prev.manifest.sources.iter().position(|s| s.file == f);
        (pos(&a.file), a.row, a.action).cmp(&(pos(&b.file), b.row, b.action))
    });
    q.entries.truncate(caseload_q);
    q.entries.extend(source_q);
    let qpath = opts.out.join("quarantine.csv");
    q.write_csv(&qpath).map_err(write_err(&qpath))?;

    // summary sources: the previous accounting, with the delta's rows
    let mut sources: BTreeMap<String, SourceSummary> = BTreeMap::new();
    let mut new_sources = prev.manifest.sources.clone();
    for (si, st) in new_sources.iter_mut().enumerate() {
        if let Some(m) = &maps[si] {
            let q_now = q
                .entries
                .iter()
                .filter(|e| e.file == st.file && e.row.is_some())
                .count() as u64;
            st.rows = m.rows;
            let _ = (linked_delta[si], quarantined_delta[si]);
            // linked + quarantined-while-linked rows are the end state's linked rows
            let referred = q
                .entries
                .iter()
                .filter(|e| e.file == st.file && e.action == Action::Referred)
                .count() as u64;
            st.linked = linked_now[si].saturating_sub(referred);
            st.quarantined = q_now;
            st.unlinked = st.rows.saturating_sub(st.linked + st.quarantined);
        }
        sources.insert(
            st.source.clone(),
            SourceSummary {
                status: if st.status == "answered" {
                    "answered"
                } else {
                    "unverified"
                },
                reason: st.reason.clone(),
                counts: (st.status == "answered").then(|| FileCounts {
                    file: st.file.clone(),
                    format: st.format.clone(),
                    rows: st.rows,
                    linked: st.linked,
                    unlinked: st.unlinked,
                    quarantined: st.quarantined,
                    ..FileCounts::default()
                }),
                households_unverified: 0,
                ms: 0,
            },
        );
    }

    // state for the next night
    let tst = Instant::now();
    let sdir = opts.out.join("state");
    std::fs::create_dir_all(&sdir).map_err(write_err(&sdir))?;
    let manifest = Manifest {
        run_id: run_id.clone(),
        sources: new_sources,
        ..prev.manifest.clone()
    };
    let mpath = sdir.join("manifest.json");
    std::fs::write(&mpath, serde_json::to_vec_pretty(&manifest).expect("json"))
        .map_err(write_err(&mpath))?;
    write_households(&sdir, states.into_iter())?;
    let lpath = sdir.join("linked.bin");
    write_linked(
        &lpath,
        end_linked
            .into_iter()
            .map(|r| (r.source, r.row, r.key, r.blob(&prev.buf, &fresh_buf))),
        &end_near,
    )
    .map_err(write_err(&lpath))?;
    timings.insert("state_write".to_string(), tst.elapsed().as_millis());
    timings.insert("write".to_string(), tw.elapsed().as_millis());
    timings.insert("households_recomputed".to_string(), todo.len() as u128);
    timings.insert("total".to_string(), t0.elapsed().as_millis());
    let persons_queried = everyone.len();
    write_summary(
        opts,
        run_id,
        &caseload,
        &outcomes,
        sources,
        &q,
        timings,
        persons_queried,
        // Normalisations are per full read; an incremental run reads only its delta.
        BTreeMap::new(),
        BTreeMap::new(),
    )
}

/// The 17-digit body of a key that fails only its check character (the row is probably that
/// person's; it is not used, and that person's source is unverified).
fn near_miss_body(raw: &str, e: &IdError) -> Option<u64> {
    if !matches!(e, IdError::CheckCharacter { .. }) {
        return None;
    }
    let t = raw.trim().as_bytes();
    (t.len() == 18 && t[..17].iter().all(u8::is_ascii_digit)).then(|| {
        t[..17]
            .iter()
            .fold(0u64, |a, d| a * 10 + u64::from(d - b'0'))
    })
}

/// The person a delta row concerns: its key, or the body of a near-miss key.
fn delta_key(raw: &str, as_of: chrono::NaiveDate) -> Option<u64> {
    match IdNumber::parse(raw, as_of) {
        Ok((id, _)) => Some(id.key()),
        Err(e) => near_miss_body(raw, &e),
    }
}

fn line_of(st: &SourceState, row: u64) -> Option<u64> {
    (st.format == "csv").then_some(row + 2)
}

fn read_quarantine(path: &Path, m: &Manifest) -> Result<Vec<QuarantineEntry>, BatchError> {
    let err = |e: String| BatchError::Previous {
        path: path.display().to_string(),
        message: e,
    };
    let mut r = csv::Reader::from_path(path).map_err(|e| err(e.to_string()))?;
    let files: HashSet<&str> = m.sources.iter().map(|s| s.file.as_str()).collect();
    let mut out = Vec::new();
    for row in r.records() {
        let row = row.map_err(|e| err(e.to_string()))?;
        let f = row.get(0).unwrap_or("");
        if !files.contains(f) || f.is_empty() {
            continue; // caseload entries are made again by reading the caseload
        }
        out.push(QuarantineEntry {
            file: f.to_string(),
            line: row.get(1).and_then(|v| v.parse().ok()),
            row: row.get(2).and_then(|v| v.parse().ok()),
            column: row.get(3).unwrap_or("").to_string(),
            value: row.get(4).unwrap_or("").to_string(),
            reason: row.get(5).unwrap_or("").to_string(),
            action: if row.get(6) == Some("referred") {
                Action::Referred
            } else {
                Action::Rejected
            },
            message: row.get(7).unwrap_or("").to_string(),
        });
    }
    Ok(out)
}

/// `changes.json` of an incremental run: households whose determination flipped, the rules
/// added and removed, and the per-capita values before and after (yuan).
fn changes_json(
    previous: &Path,
    before: &[HouseholdState],
    after: &[Outcomes],
    recomputed: usize,
) -> serde_json::Value {
    let mut flipped = Vec::new();
    for (b, a) in before.iter().zip(after) {
        if b.determination == a.determination {
            continue;
        }
        let was = fired_rules(&b.outcomes());
        let now = fired_rules(a);
        let was: BTreeSet<&str> = was.split(';').filter(|s| !s.is_empty()).collect();
        let now: BTreeSet<&str> = now.split(';').filter(|s| !s.is_empty()).collect();
        flipped.push(json!({
            "household_id": a.household_id,
            "before": b.determination.as_str(),
            "after": a.determination.as_str(),
            "rules_added": now.difference(&was).collect::<Vec<_>>(),
            "rules_removed": was.difference(&now).collect::<Vec<_>>(),
            "per_capita_monthly_income": {"before": b.per_capita[0], "after": a.per_capita[0]},
            "per_capita_financial_assets": {"before": b.per_capita[1], "after": a.per_capita[1]},
        }));
    }
    json!({
        "previous": previous.display().to_string(),
        "households_recomputed": recomputed,
        "flipped": flipped,
        "households_new": 0,
        "households_gone": 0,
    })
}

// ---------------------------------------------------------------- memory limit

/// Parse `8G`, `512M`, `2g`, `1024` (bytes) into bytes.
///
/// # Errors
/// A message naming the value when it is not a size.
pub fn parse_memory_limit(s: &str) -> Result<u64, String> {
    // `2GB`, `2GiB` and `2G` all mean 2 × 2^30 bytes (a memory limit is binary).
    let t = s.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix("ib"))
        .or_else(|| t.strip_suffix(['B', 'b']))
        .filter(|r| r.ends_with(|c: char| c.is_ascii_alphabetic()))
        .unwrap_or(t);
    let (num, mul) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m = match c.to_ascii_uppercase() {
                'K' => 1u64 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => {
                    return Err(format!(
                        "--memory-limit {s}: use a size like 8G, 2G or 512M"
                    ));
                }
            };
            (&t[..i], m)
        }
        _ => (t, 1),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("--memory-limit {s}: use a size like 8G, 2G or 512M"))?;
    if !(n > 0.0) {
        return Err(format!("--memory-limit {s}: must be more than zero"));
    }
    Ok((n * mul as f64) as u64)
}

/// Peak memory (bytes) of a run over `slice` of the caseload's `total` persons (members and
/// supporters): the streaming engine's buffers and a chunk of sealed reports (~300 MiB on 2
/// cores), the whole caseload read before it is sliced (~1 KiB per person), and per person
/// of the slice the linked records held as text until the reports are written and the person
/// state (~4 KiB at the gen.py mix, ~7 linked rows each). Fitted to peaks measured on gen.py
/// data: 30k households (103k persons) 0.81 GiB; 300k (1.07 M persons) 4.4-5.1 GiB in one
/// run, 1.8-2.1 GiB in slices of a quarter to a seventh.
fn estimate_bytes(slice: u64, total: u64) -> u64 {
    300 * (1 << 20) + total * 1024 + slice * 4 * 1024
}

/// `hedui batch --memory-limit SIZE`: when the estimated footprint of one run exceeds the
/// limit, run slices of the caseload one after another (region partitions, split further by
/// household ranges when one region is too big) and merge their outputs into `--out`: the
/// same reports, determinations and counts as one run. The polars engine's buffers are
/// the floor: a limit below ~400 MiB still completes, in slices of a few thousand households.
///
/// # Errors
/// As [`super::run`].
pub fn run_limited(opts: &BatchOptions, limit: u64) -> Result<Summary, BatchError> {
    let t0 = Instant::now();
    let mut q = Quarantine::default();
    let caseload = load_caseload(&opts.caseload, opts.as_of, &mut q)?;
    let persons_of = |hs: &[usize]| -> u64 {
        let set: HashSet<usize> = hs.iter().copied().collect();
        (caseload
            .members
            .iter()
            .filter(|m| set.contains(&m.household))
            .count()
            + caseload
                .supporters
                .iter()
                .filter(|s| set.contains(&s.household))
                .count()) as u64
    };
    let all: Vec<usize> = (0..caseload.households.len()).collect();
    let total_persons = persons_of(&all);
    if estimate_bytes(total_persons, total_persons) <= limit {
        tracing::info!("The estimated footprint is within --memory-limit: one run.");
        return super::run(opts);
    }
    // Per-person budget → households per slice; regions first, then ranges within them.
    let per_person =
        estimate_bytes(1000, total_persons).saturating_sub(estimate_bytes(0, total_persons)) / 1000;
    let budget = limit
        .saturating_sub(estimate_bytes(0, total_persons))
        .max(1 << 20);
    let persons_per_slice = (budget / per_person.max(1)).max(200);
    let mut by_region: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, h) in caseload.households.iter().enumerate() {
        by_region.entry(h.region_code.as_str()).or_default().push(i);
    }
    let persons_per_household = (total_persons as f64 / all.len().max(1) as f64).max(1.0);
    let mut slices: Vec<Vec<usize>> = Vec::new();
    let mut cur: Vec<usize> = Vec::new();
    let per_slice = ((persons_per_slice as f64) / persons_per_household) as usize;
    for (_, hs) in by_region {
        for chunk in hs.chunks(per_slice.max(1)) {
            if cur.len() + chunk.len() > per_slice && !cur.is_empty() {
                slices.push(std::mem::take(&mut cur));
            }
            cur.extend_from_slice(chunk);
        }
    }
    if !cur.is_empty() {
        slices.push(cur);
    }
    for s in &mut slices {
        s.sort_unstable(); // a slice run keeps caseload order
    }
    tracing::info!(
        slices = slices.len(),
        limit_mib = limit >> 20,
        "The estimated footprint exceeds --memory-limit: slices one after another."
    );
    let work = tempfile::Builder::new()
        .prefix(".hedui-slices")
        .tempdir_in(opts.out.parent().unwrap_or(Path::new(".")))
        .map_err(write_err(&opts.out))?;
    let mut slice_of = vec![usize::MAX; caseload.households.len()];
    for (k, s) in slices.iter().enumerate() {
        for &h in s {
            slice_of[h] = k;
        }
    }
    let mut caseload_held = Some(caseload);
    let mut slice_summaries = Vec::new();
    for (k, s) in slices.iter().enumerate() {
        let set: HashSet<usize> = s.iter().copied().collect();
        let sel = Selection {
            prefix: None,
            keep: Some(Box::new(move |i, _| set.contains(&i))),
        };
        let o = BatchOptions {
            caseload: opts.caseload.clone(),
            sources: opts.sources.clone(),
            policy: opts.policy.clone(),
            recipients: opts.recipients.clone(),
            signing: opts.signing.clone(),
            out: work.path().join(format!("slice{k}")),
            as_of: opts.as_of,
            previous: None,
            progress: opts.progress,
            strict: opts.strict,
        };
        if k == 0 {
            // Only the slice plan is needed while the slices run: the caseload is read
            // again for the merge.
            caseload_held = None;
        }
        slice_summaries.push(run_selected(&o, &sel)?);
        release_free_memory();
    }
    let caseload = match caseload_held {
        Some(c) => c,
        None => load_caseload(&opts.caseload, opts.as_of, &mut Quarantine::default())?,
    };
    merge_slices(
        opts,
        &caseload,
        q,
        &slices,
        &slice_of,
        work.path(),
        &slice_summaries,
        t0,
    )
}

/// Give the heap's free pages back to the system between slices, so that one slice's peak
/// is not carried into the next (glibc keeps freed memory in its arenas otherwise).
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: malloc_trim only returns unused heap pages to the kernel; it is
        // thread-safe and has no preconditions.
        unsafe {
            malloc_trim(0);
        }
    }
}

/// Merge slice runs into `opts.out` in caseload order.
#[allow(clippy::too_many_arguments)]
fn merge_slices(
    opts: &BatchOptions,
    caseload: &Caseload,
    caseload_q: Quarantine,
    slices: &[Vec<usize>],
    slice_of: &[usize],
    work: &Path,
    summaries: &[Summary],
    t0: Instant,
) -> Result<Summary, BatchError> {
    std::fs::create_dir_all(&opts.out).map_err(write_err(&opts.out))?;
    let _lock = OutputLock::take(&opts.out)?;
    // the slices' households only: their linked rows are streamed below, never all held
    let prevs: Vec<PreviousRun> = (0..slices.len())
        .map(|k| load_state(&work.join(format!("slice{k}")), false))
        .collect::<Result<_, _>>()?;
    // position of household h inside its slice
    let mut pos = vec![0usize; caseload.households.len()];
    for s in slices {
        for (i, &h) in s.iter().enumerate() {
            pos[h] = i;
        }
    }
    let mut offsets: Vec<Vec<u64>> = prevs
        .iter()
        .map(|p| {
            let mut o = 0;
            p.households
                .iter()
                .map(|h| {
                    o += h.len;
                    o - h.len
                })
                .collect()
        })
        .collect();
    let reports_path = opts.out.join("reports.jsonl");
    let mut out = std::fs::File::create(&reports_path).map_err(write_err(&reports_path))?;
    let mut files: Vec<std::fs::File> = (0..slices.len())
        .map(|k| std::fs::File::open(work.join(format!("slice{k}/reports.jsonl"))))
        .collect::<Result<_, _>>()
        .map_err(write_err(work))?;
    let mut outcomes = Vec::with_capacity(caseload.households.len());
    let mut states = Vec::with_capacity(caseload.households.len());
    let mut h = 0;
    while h < caseload.households.len() {
        // a run of consecutive households from one slice is one copy
        let k = slice_of[h];
        let start = h;
        while h < caseload.households.len()
            && slice_of[h] == k
            && (h == start || pos[h] == pos[h - 1] + 1)
        {
            h += 1;
        }
        let (a, b) = (pos[start], pos[h - 1]);
        let from = offsets[k][a];
        let len: u64 = prevs[k].households[a..=b].iter().map(|x| x.len).sum();
        files[k]
            .seek(SeekFrom::Start(from))
            .map_err(write_err(&reports_path))?;
        std::io::copy(&mut (&mut files[k]).take(len), &mut out)
            .map_err(write_err(&reports_path))?;
        for x in &prevs[k].households[a..=b] {
            outcomes.push(x.outcomes());
            states.push(x.clone());
        }
    }
    offsets.clear();
    let det_path = opts.out.join("determinations.csv");
    write_determinations(&det_path, &outcomes).map_err(write_err(&det_path))?;
    // quarantine: the caseload's once, then every slice's source entries, each row once
    let mut q = caseload_q;
    let mut seen: HashSet<(String, Option<u64>, String, String)> = HashSet::new();
    let mut source_q = Vec::new();
    for p in &prevs {
        for e in read_quarantine(&p.dir.join("quarantine.csv"), &p.manifest)? {
            if seen.insert((e.file.clone(), e.row, e.column.clone(), e.reason.clone())) {
                source_q.push(e);
            }
        }
    }
    let order: Vec<String> = prevs[0]
        .manifest
        .sources
        .iter()
        .map(|s| s.file.clone())
        .collect();
    source_q.sort_by_key(|e| (order.iter().position(|f| *f == e.file), e.row));
    q.entries.extend(source_q);
    let qpath = opts.out.join("quarantine.csv");
    q.write_csv(&qpath).map_err(write_err(&qpath))?;
    // sources: rows and invalid keys are the same in every slice; linked rows add up
    let mut sources: BTreeMap<String, SourceSummary> = summaries[0].sources.clone();
    for (name, s) in &mut sources {
        if let Some(c) = &mut s.counts {
            c.linked = summaries
                .iter()
                .filter_map(|x| x.sources.get(name).and_then(|s| s.counts.as_ref()))
                .map(|c| c.linked)
                .sum();
            c.quarantined = q.entries.iter().filter(|e| e.file == c.file).count() as u64;
            c.unlinked = c.rows.saturating_sub(c.linked + c.quarantined);
        }
        s.households_unverified = 0;
        s.ms = summaries
            .iter()
            .filter_map(|x| x.sources.get(name))
            .map(|s| s.ms)
            .sum();
    }
    let run_id = prevs[0].manifest.run_id.clone();
    // state: the merged households and linked rows, as one run would leave them
    let sdir = opts.out.join("state");
    std::fs::create_dir_all(&sdir).map_err(write_err(&sdir))?;
    let mut manifest = prevs[0].manifest.clone();
    manifest.households = caseload.households.len();
    for (st, (_, s)) in manifest
        .sources
        .iter_mut()
        .zip(SourceKind::ALL.iter().map(|k| (k, sources.get(k.name()))))
    {
        *st = source_state(&st.source.clone(), s);
    }
    let mpath = sdir.join("manifest.json");
    std::fs::write(&mpath, serde_json::to_vec_pretty(&manifest).expect("json"))
        .map_err(write_err(&mpath))?;
    write_households(&sdir, states.into_iter())?;
    // A person in two slices (a supporter of households in both) has their rows in each:
    // each (source, row) is written once.
    let lpath = sdir.join("linked.bin");
    let mut w = LinkedWriter::create(&lpath).map_err(write_err(&lpath))?;
    let mut seen_rows: HashSet<u64> = HashSet::new();
    let mut near = BTreeSet::new();
    for p in &prevs {
        let src = p.dir.join("state/linked.bin");
        let mut failed = None;
        stream_linked(
            &src,
            |s, row, key, blob| {
                if seen_rows.insert((u64::from(s) << 56) | row) {
                    w.row(s, row, key, blob).inspect_err(|e| {
                        failed = Some(e.to_string());
                    })?;
                }
                Ok(())
            },
            |s, row, body| {
                near.insert((s, row, body));
            },
        )
        .ok_or_else(|| BatchError::Previous {
            path: src.display().to_string(),
            message: failed.unwrap_or_else(|| "a slice's linked.bin does not read back".into()),
        })?;
    }
    drop(seen_rows);
    for (s, row, body) in near {
        w.near(s, row, body).map_err(write_err(&lpath))?;
    }
    w.finish().map_err(write_err(&lpath))?;
    if let Some(prev) = &opts.previous {
        let changes = super::changes(prev, &outcomes)?;
        let p = opts.out.join("changes.json");
        std::fs::write(&p, serde_json::to_vec_pretty(&changes).expect("json"))
            .map_err(write_err(&p))?;
    }
    let mut timings = BTreeMap::new();
    timings.insert("slices".to_string(), slices.len() as u128);
    timings.insert("total".to_string(), t0.elapsed().as_millis());
    let mut persons: HashSet<u64> = HashSet::new();
    for id in caseload.queried_ids() {
        persons.insert(id.key());
    }
    write_summary(
        opts,
        run_id,
        caseload,
        &outcomes,
        sources,
        &q,
        timings,
        persons.len(),
        BTreeMap::new(),
        BTreeMap::new(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(ops: &[(Op, Option<u64>)]) -> SourceDelta {
        SourceDelta {
            file: "delta/bank.csv".into(),
            rows: ops
                .iter()
                .map(|&(op, prev_row)| DeltaRow {
                    op,
                    prev_row,
                    rec: Record {
                        row: 0,
                        id_number: String::new(),
                        values: Vec::new(),
                    },
                })
                .collect(),
        }
    }

    #[test]
    fn adds_fill_the_freed_rows_in_ascending_order_then_append() {
        let d = delta(&[
            (Op::Remove, Some(7)),
            (Op::Change, Some(2)),
            (Op::Remove, Some(3)),
            (Op::Add, None),
            (Op::Add, None),
            (Op::Add, None),
        ]);
        let m = plan_rows(10, &d).expect("a valid delta");
        assert_eq!(
            m.delta_rows,
            vec![None, Some(2), None, Some(3), Some(7), Some(10)]
        );
        assert_eq!(m.rows, 11);
        assert!(m.moved.is_empty());
        let gone: BTreeSet<u64> = m.gone.iter().copied().collect();
        assert_eq!(gone, BTreeSet::from([2, 3, 7]));
    }

    #[test]
    fn when_more_rows_are_removed_than_added_the_last_rows_move_into_the_lowest_freed_rows() {
        // 10 rows; remove 1, 4, 8 and 9; add one: it takes row 1. The end state has 7 rows
        // (0-6), so row 7 (the last remaining row, 8 and 9 being removed) moves into row 4.
        let d = delta(&[
            (Op::Remove, Some(1)),
            (Op::Remove, Some(4)),
            (Op::Remove, Some(8)),
            (Op::Remove, Some(9)),
            (Op::Add, None),
        ]);
        let m = plan_rows(10, &d).expect("a valid delta");
        assert_eq!(m.rows, 7);
        assert_eq!(m.delta_rows[4], Some(1));
        assert_eq!(m.moved, HashMap::from([(7, 4)]));
    }

    #[test]
    fn a_delta_naming_a_row_twice_or_past_the_end_is_refused_with_file_row_and_column() {
        let twice = plan_rows(10, &delta(&[(Op::Change, Some(2)), (Op::Remove, Some(2))]));
        let e = twice.err().expect("refused").to_string();
        assert!(
            e.contains("delta/bank.csv row 1 column row") && e.contains("named twice"),
            "{e}"
        );
        let past = plan_rows(10, &delta(&[(Op::Remove, Some(10))]));
        let e = past.err().expect("refused").to_string();
        assert!(e.contains("not in the previous extract (10 rows)"), "{e}");
    }

    #[test]
    fn memory_limits_read_as_binary_sizes() {
        assert_eq!(parse_memory_limit("8G"), Ok(8 << 30));
        assert_eq!(parse_memory_limit("512m"), Ok(512 << 20));
        assert_eq!(parse_memory_limit("1.5G"), Ok(3 << 29));
        assert_eq!(parse_memory_limit("4096"), Ok(4096));
        assert_eq!(parse_memory_limit("2GB"), Ok(2 << 30));
        assert_eq!(parse_memory_limit("2GiB"), Ok(2 << 30));
        assert_eq!(parse_memory_limit("512MB"), Ok(512 << 20));
        assert!(parse_memory_limit("8B").is_err());
        assert!(parse_memory_limit("8X").is_err());
        assert!(parse_memory_limit("0G").is_err());
        assert!(parse_memory_limit("lots").is_err());
    }

    #[test]
    fn a_record_survives_the_state_encoding() {
        let rec = Record {
            row: 41,
            id_number: "62050319900101123X".into(),
            values: vec![
                Some("LZBANK".into()),
                None,
                Some("12.50".into()),
                Some(String::new()),
            ],
        };
        let back = decode_record(41, &encode_record(&rec)).expect("decodes");
        assert_eq!(back.row, 41);
        assert_eq!(back.id_number, rec.id_number);
        assert_eq!(back.values, rec.values);
        assert!(decode_record(41, &encode_record(&rec)[..10]).is_none());
    }
}
