//! The nightly batch: the whole caseload against every source extract, as one polars plan
//! per source (the only module besides the file transport that drives polars).
//!
//! Stages (DESIGN.md §1): load the caseload → for each source, scan the extract once
//! (streaming), normalise every key with [`IdNumber::parse`] inside the plan, keep the rows
//! whose key is a caseload person (exact link on the 17-digit body as an integer key) or is
//! invalid (quarantine), or is valid but no caseload person's while the row's name and ID
//! birth date are one's (a candidate of the second linkage pass, `crate::link::caseload`;
//! the filter then reads `name` beside `id_number`) → evidence per person → the second
//! linkage pass → per household, in parallel (rayon): assess
//! with the policy, build the report, seal it → write `reports.jsonl`, `summary.json`,
//! `quarantine.csv`, `determinations.csv` and, with `--previous`, `changes.json`.
#![allow(
    clippy::result_large_err,
    reason = "BatchError carries the file, row, column and value it names; it is returned once per run, not in a hot path"
)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use chrono::NaiveDate;
use hedui_connectors::file::frame_to_records;
use hedui_connectors::{Connector, ConnectorError, FileConnector, RecordSet, SourceKind};
use indicatif::{ProgressBar, ProgressStyle};
use polars::prelude::*;
use rayon::prelude::*;
use serde_json::json;

use crate::assess::Policy;
use crate::domain::{IdNumber, IdRepair};
use crate::evidence::{Frame, PersonEvidence};
use crate::ingest::caseload::{Member, Supporter};
use crate::ingest::{Action, At, Caseload, Quarantine, QuarantineEntry, load_caseload};
use crate::records::CompactSet;
use crate::report::{Determination, Outcome, SourceStatus, VerificationReport};
use crate::seal::{BATCH_LEAVES, RecipientPublicKey, RunSealer, SigningKey, UnsignedReport};
use crate::verify::{PersonState, ReportInput};

mod direct;
mod keep;
mod scale;
mod scrub;
pub use scale::{
    DeltaError, OTHER_PARTITION, parse_memory_limit, previous_apart, run_incremental, run_limited,
    run_partition,
};

/// What a batch run needs.
pub struct BatchOptions {
    /// Directory with households, members, supporters (.parquet or .csv).
    pub caseload: PathBuf,
    /// Directory with the source extracts (`<source>.parquet` or `.csv`).
    pub sources: PathBuf,
    /// The policy.
    pub policy: Policy,
    /// Civil-affairs recipients the reports are sealed to.
    pub recipients: Vec<RecipientPublicKey>,
    /// hedui's signing key.
    pub signing: SigningKey,
    /// Output directory (created).
    pub out: PathBuf,
    /// As-of date D.
    pub as_of: NaiveDate,
    /// A previous run's output directory, for `changes.json`.
    pub previous: Option<PathBuf>,
    /// Draw progress bars on stderr.
    pub progress: bool,
    /// Fail on the first quarantined row (`--strict`) instead of quarantining and going on.
    pub strict: bool,
}

/// Errors that stop a batch (exit code 2). Bad rows and failed sources do not: they are
/// quarantined or reported `unverified`.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The caseload cannot be read.
    #[error(transparent)]
    Caseload(#[from] crate::ingest::caseload::CaseloadError),
    /// Writing outputs failed.
    #[error("cannot write {path}: {cause}")]
    Write {
        /// The file.
        path: String,
        /// The cause. (In the message, and not the error's `source`: as a source the CLI's
        /// error chain printed it twice, `… Is a directory (os error 21): Is a directory
        /// (os error 21)`.)
        cause: std::io::Error,
    },
    /// Sealing failed. (The sealer's message is in this one's, and not the error's `source`,
    /// so that an error chain prints it once.)
    #[error("sealing failed: {0}")]
    Seal(crate::seal::SealError),
    /// Another batch is writing to the same output directory.
    #[error(
        "{path} is in use by another hedui batch (its process holds {lock}; the lock ends with it)"
    )]
    Locked {
        /// The output directory.
        path: String,
        /// The lock file inside it.
        lock: String,
    },
    /// `--strict`: a source's extract was refused as a whole (every household would be
    /// unverified for it).
    #[error("--strict: source {source_name} refused as a whole ({reason}): {message}")]
    StrictSource {
        /// The source.
        source_name: String,
        /// Reason code (`source_unreadable`, `source_missing_columns`, `source_out_of_period`).
        reason: String,
        /// Why, naming the file.
        message: String,
    },
    /// `--strict`: a row was quarantined.
    #[error("--strict: {file} line {line} row {row} column {column} ({reason}): {message}")]
    Strict {
        /// File.
        file: String,
        /// Physical line, or `-`.
        line: String,
        /// Data row, or `-`.
        row: String,
        /// Column.
        column: String,
        /// Reason code.
        reason: String,
        /// The message.
        message: String,
    },
    /// A source delta (`--delta`) cannot be applied.
    #[error(transparent)]
    Delta(#[from] DeltaError),
    /// The previous run's output cannot be read.
    #[error("previous run {path}: {message}")]
    Previous {
        /// The directory.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A source extract was changed, replaced or removed between the slices of a
    /// memory-limited run ([`scale::run_limited`]): the slices would mix two versions.
    #[error(
        "{path}: the file was changed, replaced or removed while the run read it slice by slice (--memory-limit): its slices would mix two versions; nothing was written to the output (run again once the export has landed)"
    )]
    ChangedBetweenSlices {
        /// The extract.
        path: String,
    },
}

impl From<crate::seal::SealError> for BatchError {
    fn from(e: crate::seal::SealError) -> BatchError {
        BatchError::Seal(e)
    }
}

/// Per-file accounting: every row is linked, unlinked or quarantined.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct FileCounts {
    /// The file read.
    pub file: String,
    /// `csv` or `parquet`.
    pub format: String,
    /// Data rows read.
    pub rows: u64,
    /// Rows linked to a caseload person and used.
    pub linked: u64,
    /// Rows of persons outside the caseload.
    pub unlinked: u64,
    /// Rows quarantined (invalid key or unreadable value).
    pub quarantined: u64,
    /// Keys repaired on the way (lowercase x, 15-digit, spaces, …), by kind.
    pub key_repairs: BTreeMap<String, u64>,
    /// Encoding read (`utf-8`, `utf-8-bom`, `gb18030`, `utf-16le`, `utf-16be`, `binary`).
    pub encoding: String,
    /// Delimiter of a text file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<char>,
    /// Headers found → §2 columns, where they differ.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub header_map: Vec<(String, String)>,
    /// Physical lines skipped as repeated header rows (two exports concatenated).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub repeated_header_lines: Vec<u64>,
    /// What the reader decided (encoding detection, unit conversions, date rules).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Rows in the period the source's rules read (tax, medical and social insurance; `None`
    /// for the other sources or when unknown): kept in the run's state, not in summary.json.
    #[serde(skip)]
    pub period_rows: Option<PeriodRows>,
    /// The physical line of each data row, as runs ([`hedui_connectors::Prepared::line_runs`]):
    /// kept in the run's state, not in summary.json.
    #[serde(skip)]
    pub line_runs: Vec<(u64, u64)>,
    /// Lines the reader refused whole (cut short, `#REF!`): counted in `rows` and
    /// `quarantined`, but no data row (a delta's `row` numbers data rows only). Kept in the
    /// run's state, not in summary.json.
    #[serde(skip)]
    pub refused_lines: u64,
}

/// A source's outcome for the whole run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SourceSummary {
    /// `answered` or `unverified`.
    pub status: &'static str,
    /// Why unverified (code: message).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Row accounting, when the file was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<FileCounts>,
    /// Households that say `unverified` for this source.
    pub households_unverified: u64,
    /// Milliseconds spent.
    pub ms: u128,
}

/// `summary.json`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    /// Run id.
    pub run_id: String,
    /// As-of date.
    pub as_of: String,
    /// Policy id.
    pub policy: String,
    /// Households assessed.
    pub households: u64,
    /// Counts by determination.
    pub determination: BTreeMap<String, u64>,
    /// Counts by rule and outcome (households).
    pub rules: BTreeMap<String, BTreeMap<String, u64>>,
    /// Households due for periodic review.
    pub review_due: u64,
    /// Households with the largest verified-over-declared income gap (yuan), at most 20.
    pub declared_gap_top: Vec<serde_json::Value>,
    /// Per source: status and row accounting.
    pub sources: BTreeMap<String, SourceSummary>,
    /// Caseload rows read and persons.
    pub caseload: serde_json::Value,
    /// Quarantine counts by reason.
    pub quarantine: BTreeMap<String, u64>,
    /// Values changed on the way in, counted by kind (`id_fullwidth`, `name_invisible`,
    /// `money_thousands`, …); one row each in `normalisations.csv`.
    pub normalisations: BTreeMap<String, u64>,
    /// Milliseconds per stage.
    pub timings_ms: BTreeMap<String, u128>,
    /// 0 clean, 1 something quarantined or unverified.
    pub exit_code: i32,
}

struct LinkedSource {
    /// The source's rows as the scan kept them.
    kept: Kept,
    counts: FileCounts,
    /// Rows with a valid ID number by the holder's age band
    /// ([`crate::link::caseload::age_band`]): `[0]` persons outside the caseload, `[1]`
    /// caseload persons (what [`crate::link::caseload::HoldingRates`] is measured on).
    /// Counted in the scan's filter, which polars may also call on a few rows more than the
    /// file holds: rates over millions of rows, not exact counts.
    rows_by_age: [[u64; crate::link::caseload::AGE_BANDS]; 2],
}

const REPAIRS: [IdRepair; 6] = [
    IdRepair::Trimmed,
    IdRepair::SpreadsheetMarker,
    IdRepair::FullWidth,
    IdRepair::InnerSpaces,
    IdRepair::LowercaseX,
    IdRepair::Legacy15,
];

fn repair_name(r: &IdRepair) -> &'static str {
    match r {
        IdRepair::Trimmed => "trimmed",
        IdRepair::SpreadsheetMarker => "spreadsheet_marker",
        IdRepair::FullWidth => "full_width",
        IdRepair::InnerSpaces => "inner_spaces",
        IdRepair::LowercaseX => "lowercase_x",
        IdRepair::Legacy15 => "legacy_15",
    }
}

/// Key of a row whose ID number is invalid or missing (quarantined).
const KEY_INVALID: i64 = -1;
/// Key of a row with a valid ID number of a person outside the caseload (unlinked).
const KEY_UNLINKED: i64 = -2;
/// Key of an unlinked row whose ID number was repaired: kept only to log the repair.
const KEY_UNLINKED_REPAIRED: i64 = -3;
/// Key of an unlinked row whose valid ID is no caseload person's but whose name and birth
/// date are a caseload person's: a candidate of the second linkage pass.
const KEY_CANDIDATE: i64 = -4;
/// [`KEY_CANDIDATE`] with a repaired ID number.
const KEY_CANDIDATE_REPAIRED: i64 = -5;
/// Flag on a linked key whose ID number was repaired (keys are < 10^17 < 2^57).
const KEY_REPAIRED_FLAG: i64 = 1 << 60;

/// The key of one raw ID number (see [`link_source`]): the 17-digit body as an integer
/// (with [`KEY_REPAIRED_FLAG`] when it was repaired) for a caseload person, else
/// [`KEY_UNLINKED`] / [`KEY_UNLINKED_REPAIRED`], or [`KEY_INVALID`] (also for a missing
/// value); and the repairs made.
fn classify(
    raw: Option<&str>,
    persons: &crate::link::caseload::PersonKeys,
    as_of: NaiveDate,
) -> (i64, Vec<IdRepair>, Option<IdNumber>) {
    match raw.map(|raw| IdNumber::parse(raw, as_of)) {
        Some(Ok((id, rep))) => {
            let key = match (persons.contains(id.key()), rep.is_empty()) {
                (true, true) => id.key() as i64,
                (true, false) => id.key() as i64 | KEY_REPAIRED_FLAG,
                (false, true) => KEY_UNLINKED,
                (false, false) => KEY_UNLINKED_REPAIRED,
            };
            (key, rep, Some(id))
        }
        _ => (KEY_INVALID, Vec::new(), None),
    }
}

/// [`classify`], then a row of a person outside the caseload whose name (`name`) and ID birth
/// date are a caseload person's becomes [`KEY_CANDIDATE`] / [`KEY_CANDIDATE_REPAIRED`]
/// (`names`: `None` for a source whose rows are not candidates).
fn classify_named(
    raw: Option<&str>,
    name: Option<&str>,
    persons: &crate::link::caseload::PersonKeys,
    names: Option<&crate::link::caseload::NameDateIndex>,
    as_of: NaiveDate,
) -> (i64, Vec<IdRepair>, Option<IdNumber>) {
    let (key, rep, id) = classify(raw, persons, as_of);
    if key != KEY_UNLINKED && key != KEY_UNLINKED_REPAIRED {
        return (key, rep, id);
    }
    let named = id.is_some_and(|id| is_candidate(names, id.key(), name));
    match (named, key) {
        (false, _) => (key, rep, id),
        (true, KEY_UNLINKED) => (KEY_CANDIDATE, rep, id),
        (true, _) => (KEY_CANDIDATE_REPAIRED, rep, id),
    }
}

/// Runs `lf` in polars' streaming engine and hands its batches to `f`, in the file's order,
/// one at a time (each dropped after `f`), so that a scan never holds its whole result; the
/// plan runs on a thread of its own and stops when `f` fails.
///
/// # Errors
/// `f`'s first error, else the plan's (made by `plan_err`).
pub(crate) fn for_each_batch<E>(
    lf: LazyFrame,
    mut f: impl FnMut(DataFrame) -> Result<(), E>,
    plan_err: impl Fn(PolarsError) -> E,
) -> Result<(), E> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<DataFrame>(1);
    let sink = lf
        .sink_batches(
            // stop when the receiver is gone (a batch `f` could not take)
            PlanCallback::new(move |df| Ok(tx.send(df).is_err())),
            true,
            None,
        )
        .map_err(&plan_err)?;
    std::thread::scope(|sc| {
        let run = sc.spawn(move || sink.collect_with_engine(Engine::Streaming));
        let mut taken = Ok(());
        for df in rx.iter() {
            taken = f(df);
            if taken.is_err() {
                break;
            }
        }
        drop(rx);
        // (the plan's thread only panics if polars does: the scope passes the panic on)
        let ran = run.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        taken?;
        ran.map(drop).map_err(plan_err)
    })
}

/// The records of `records` that repeat an earlier record of the same person value for value,
/// each with the index of the first: record index → first index. Transient: 16 bytes per
/// record (a hash of the person key and the values above the index, one `u128`), sorted;
/// records of equal hashes are compared by key and value by value. (It was 24 bytes, (key,
/// hash, index): 110 MB for the 4.6 M social-insurance records of 300,000 households, held on
/// the main thread while the next extract is decoded, at the run's peak.)
fn repeated_records(kind: SourceKind, records: &CompactSet) -> HashMap<u32, u32> {
    // (aHash: SipHash over every linked record's values was 2 % of a run's instructions;
    // equal hashes are compared value by value, so only grouping depends on it)
    let hasher = ahash::RandomState::with_seeds(1, 2, 3, 4);
    // the values as the rules read them (`2026/10/31` is `2026-10-31`)
    let read = |ri: usize| {
        records
            .values(ri)
            .map(|v| crate::evidence::read_key(kind, &v))
    };
    let mut idx: Vec<u128> = (0..records.len())
        .filter_map(|ri| {
            let key = records.key(ri).filter(|k| *k != crate::records::NO_KEY)?;
            let values = records.values(ri)?;
            let h = hasher.hash_one((key, crate::evidence::read_values(kind, &values)));
            Some((u128::from(h) << 32) | ri as u128)
        })
        .collect();
    idx.sort_unstable();
    let index = |e: &u128| *e as u32;
    let mut out = HashMap::new();
    for group in idx.chunk_by(|a, b| a >> 32 == b >> 32) {
        for (i, e) in group.iter().enumerate().skip(1) {
            let ri = index(e);
            let (key, v) = (records.key(ri as usize), read(ri as usize));
            if let Some(first) = group[..i].iter().map(index).find(|&f| {
                !out.contains_key(&f) && records.key(f as usize) == key && read(f as usize) == v
            }) {
                out.insert(ri, first);
            }
        }
    }
    out
}

/// The column of a source whose rules read one period (tax and medical insurance: year Y;
/// social insurance: the months of the income window) and the period as messages name it
/// (`("tax_year", "tax_year 2025")`); `None` for the other sources.
pub(crate) fn period_of(kind: SourceKind, frame: &Frame) -> Option<(&'static str, String)> {
    Some(match kind {
        SourceKind::Tax => ("tax_year", format!("tax_year {}", frame.tax_year)),
        SourceKind::MedicalInsurance => ("year", format!("year {}", frame.tax_year)),
        SourceKind::SocialInsurance => (
            "period",
            format!("period {} to {}", frame.window_first, frame.window_last),
        ),
        _ => return None,
    })
}

/// Whether the value `v` of a row's period column ([`period_of`]) is in the period the rules
/// read (what [`crate::evidence::PersonEvidence::add`] takes as in scope; full-width digits
/// read as ASCII). Always `false` for a source without a period.
pub(crate) fn in_period(kind: SourceKind, frame: &Frame, v: &str) -> bool {
    match kind {
        SourceKind::SocialInsurance => crate::domain::date::Month::parse(v)
            .is_ok_and(|m| m >= frame.window_first && m <= frame.window_last),
        SourceKind::Tax | SourceKind::MedicalInsurance => crate::domain::whole_number_text(v)
            .parse::<i64>()
            .is_ok_and(|y| y == i64::from(frame.tax_year)),
        _ => false,
    }
}

/// Up to this many rows in the period are kept per source in the state ([`PeriodRows`]).
pub(crate) const PERIOD_ROWS_KEPT: usize = 256;

/// Up to this many rows of each month of the window are kept per source in the state
/// ([`PeriodRows::months`]).
pub(crate) const MONTH_ROWS_KEPT: usize = 16;

/// The months of the period a source's rules read, when the period is more than one unit and
/// an extract must cover each (social insurance: the income window, oldest first); empty for
/// the other sources (a year is one unit).
pub(crate) fn period_months(kind: SourceKind, frame: &Frame) -> Vec<crate::domain::date::Month> {
    match kind {
        SourceKind::SocialInsurance => (frame.window_first.index()..=frame.window_last.index())
            .map(crate::domain::date::Month::from_index)
            .collect(),
        _ => Vec::new(),
    }
}

/// The month of [`period_months`] (its index) that a row's period value `v` is in.
pub(crate) fn month_of(kind: SourceKind, frame: &Frame, v: &str) -> Option<usize> {
    match kind {
        SourceKind::SocialInsurance => crate::domain::date::Month::parse(v)
            .ok()
            .filter(|m| *m >= frame.window_first && *m <= frame.window_last)
            .map(|m| (m.index() - frame.window_first.index()) as usize),
        _ => None,
    }
}

/// Rows of one month of a period ([`PeriodRows::months`]).
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MonthRows {
    /// 0-based data rows of the month, ascending, at most [`MONTH_ROWS_KEPT`].
    pub rows: Vec<u64>,
    /// Whether `rows` is every such row of the extract.
    pub complete: bool,
}

/// An extract is checked month by month only with at least this many rows in the period
/// (20 a month of the window): in a smaller one a month without a row can be the population's
/// (found by the session-15 attack: a one-household county's social insurance held one
/// month). Below it the period is checked as a whole.
pub(crate) const MONTH_CHECK_MIN_ROWS: usize = 240;

/// The months of [`period_months`] with no row in `p` (`YYYY-MM`); empty when `p` keeps no
/// months (other sources; a state written before they were kept) or holds fewer than
/// [`MONTH_CHECK_MIN_ROWS`] rows in the period (`p.rows` is every such row then).
pub(crate) fn months_missing(kind: SourceKind, frame: &Frame, p: &PeriodRows) -> Vec<String> {
    let months = period_months(kind, frame);
    if p.months.len() != months.len() || (p.complete && p.rows.len() < MONTH_CHECK_MIN_ROWS) {
        return Vec::new();
    }
    months
        .iter()
        .zip(&p.months)
        .filter(|(_, r)| r.rows.is_empty())
        .map(|(m, _)| m.to_string())
        .collect()
}

/// Rows of an extract in the period its rules read ([`period_of`]), kept in the run's state
/// so that an incremental run can tell whether its end state still answers for the period
/// (`source_out_of_period`) without reading the whole extract again.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PeriodRows {
    /// 0-based data rows in the period, ascending, at most [`PERIOD_ROWS_KEPT`].
    pub rows: Vec<u64>,
    /// Whether `rows` is every such row of the extract (else there are more).
    pub complete: bool,
    /// Per month of [`period_months`] (social insurance), its rows: an extract with no row of
    /// one month of the window does not answer for the window (`source_out_of_period`).
    /// Empty for the other sources, and in a state written before session 15.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub months: Vec<MonthRows>,
}

/// For a source whose rules read one period, the rows of the whole file in it
/// ([`PeriodRows`]; empty: a stale extract). `None` for other sources, or when the file
/// cannot be scanned again (its rows were read: nothing is decided on a failed second look).
/// The scan stops once more than [`PERIOD_ROWS_KEPT`] rows are found.
fn period_rows(conn: &FileConnector, kind: SourceKind, frame: &Frame) -> Option<PeriodRows> {
    let (column, _) = period_of(kind, frame)?;
    let lf = conn
        .scan_indexed("_row")
        .ok()?
        .select([col("_row"), col(column).cast(DataType::String)]);
    let mut found: Vec<u64> = Vec::new();
    let mut months: Vec<MonthRows> = vec![MonthRows::default(); period_months(kind, frame).len()];
    // (the months still short of MONTH_ROWS_KEPT + 1 rows: the scan goes on while any is)
    let mut months_open = months.len();
    // Err(None): enough rows found (the scan stops); Err(Some(_)): it failed
    let r = for_each_batch(
        lf,
        |df| -> Result<(), Option<PolarsError>> {
            let rows = df
                .column("_row")
                .and_then(|c| c.cast(&DataType::UInt64))
                .map_err(Some)?;
            let rows = rows.u64().map_err(Some)?;
            let c = df.column(column).map_err(Some)?;
            for (r, v) in rows.iter().zip(c.str().map_err(Some)?.iter()) {
                if let (Some(r), Some(v)) = (r, v)
                    && in_period(kind, frame, v)
                {
                    if found.len() <= PERIOD_ROWS_KEPT {
                        found.push(r);
                    }
                    if let Some(m) = month_of(kind, frame, v).and_then(|i| months.get_mut(i))
                        && m.rows.len() <= MONTH_ROWS_KEPT
                    {
                        m.rows.push(r);
                        if m.rows.len() > MONTH_ROWS_KEPT {
                            months_open -= 1;
                        }
                    }
                    if found.len() > PERIOD_ROWS_KEPT && months_open == 0 {
                        return Err(None);
                    }
                }
            }
            Ok(())
        },
        Some,
    );
    match r {
        Err(Some(_)) => None,
        Ok(()) | Err(None) => {
            found.sort_unstable();
            let complete = found.len() <= PERIOD_ROWS_KEPT;
            found.truncate(PERIOD_ROWS_KEPT);
            for m in &mut months {
                m.rows.sort_unstable();
                m.complete = m.rows.len() <= MONTH_ROWS_KEPT;
                m.rows.truncate(MONTH_ROWS_KEPT);
            }
            Some(PeriodRows {
                rows: found,
                complete,
                months,
            })
        }
    }
}

/// The reason a source is unverified when no row of its extract at `path` is in the period
/// `what` ([`period_of`]) its rules read: the same words from a full and an incremental run.
pub(crate) fn out_of_period_reason(path: &Path, what: &str) -> String {
    format!(
        "source_out_of_period: {}: no row of the extract is of {what}, the period the rules read: a stale extract? It does not answer for the period; every household is unverified for it",
        path.display()
    )
}

/// An extract at `path` with no data rows: a failed export, never "nobody has anything"
/// (the same error from a full and an incremental run).
/// The reason a source is unverified when its extract at `path` has rows in the period `what`
/// but none in the months `missing` of it ([`months_missing`]): the same words from a full
/// and an incremental run.
pub(crate) fn months_missing_reason(path: &Path, what: &str, missing: &[String]) -> String {
    format!(
        "source_out_of_period: {}: no row of the extract is of {} {} (of the {what} the rules read): an export that ends early or leaves months out? It does not answer for the period; every household is unverified for it",
        path.display(),
        if missing.len() == 1 {
            "month"
        } else {
            "months"
        },
        missing.join(", "),
    )
}

pub(crate) fn no_data_rows(path: &Path) -> ConnectorError {
    ConnectorError::Unreadable {
        path: path.display().to_string(),
        message: "the extract has no data rows (a failed export?)".into(),
    }
}

/// Whether a row with the valid ID key `key` (no caseload person's) and the name `name` is a
/// candidate of the second linkage pass: the name and the ID's birth date are a caseload
/// person's (`names`: `None` for a source whose rows are not candidates). What
/// [`classify_named`] decides, for the scan's fast path that has only the key.
fn is_candidate(
    names: Option<&crate::link::caseload::NameDateIndex>,
    key: u64,
    name: Option<&str>,
) -> bool {
    match (names, name) {
        (Some(ix), Some(n)) => {
            ix.matches(
                crate::link::caseload::NameDateIndex::date_of(IdNumber::from_key(key)),
                n,
            ) && !ix.is_outside(key)
        }
        _ => false,
    }
}

/// The ID numbers an ID cell's text may hold inside other text (`备注：<ID> 王某 账户已销户`):
/// runs of 17 digits and a digit or `X`/`x`, or of 15 digits, once full-width digits read as
/// ASCII and separators between digits are left out (spaces, hyphens, dots, slashes,
/// underscores, dashes, no-break and zero-width spaces: `620503 19370809 9882`,
/// `620503－19380312－2411`, `６２０５…`: found by session 16's second attack and, the
/// separators beyond spaces and hyphens, session 28's). None when the cell is only that run as
/// written (a plain ID, which its parse decides).
fn embedded_id_numbers(raw: &str) -> Vec<String> {
    let chars: Vec<char> = raw
        .chars()
        .map(|c| match c {
            '０'..='９' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            'Ｘ' => 'X',
            'ｘ' => 'x',
            c => c,
        })
        .collect();
    let mut text = String::with_capacity(raw.len());
    for (i, &c) in chars.iter().enumerate() {
        let between_digits = i > 0
            && chars[i - 1].is_ascii_digit()
            && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit());
        if between_digits
            && matches!(
                c,
                ' ' | '\u{3000}'
                    | '-'
                    | '－'
                    | '.'
                    | '/'
                    | '_'
                    | '—'
                    | '–'
                    | '\u{a0}'
                    | '\u{2007}'
                    | '\u{202f}'
                    | '\u{200b}'..='\u{200d}' | '\u{2060}'
            )
        {
            continue;
        }
        text.push(c);
    }
    let whole = raw.trim().to_string();
    crate::domain::id_number::digit_runs(&text)
        .map(|r| &text[r])
        .filter(|run| (run.len() == 18 || run.len() == 15) && *run != whole)
        .map(str::to_string)
        .collect()
}

/// The quarantine entries of the caseload households whose region code is six digits outside
/// the policy's region (`region_not_in_policy`, referred: another region's standards would
/// apply). Found by session 16's second attack: such households were referred with no
/// quarantine row, and a caseload of them all ran with exit 0. (A code that is not six
/// digits is quarantined when the caseload is read: `region_code_invalid`.)
pub(crate) fn region_entries(
    caseload: &Caseload,
    policy: &crate::assess::Policy,
    q: &mut Quarantine,
) {
    let file = caseload
        .files
        .first()
        .and_then(|f| f["file"].as_str())
        .unwrap_or("households")
        .to_string();
    for h in &caseload.households {
        let code = h.region_code.trim();
        if code.len() == 6
            && code.bytes().all(|b| b.is_ascii_digit())
            && !policy.covers_region(code)
        {
            // (the households row's line and row: found missing by session 26's attack;
            // `None` only for a caseload taken from a previous run's state)
            q.push(QuarantineEntry {
                file: file.clone(),
                line: h.at.and_then(|(line, _)| line),
                row: h.at.map(|(_, row)| row),
                column: "region_code".into(),
                value: code.to_string(),
                reason: "region_not_in_policy".into(),
                action: Action::Referred,
                message: format!(
                    "household {}: region code outside the region of policy {} ({}…): its standards do not apply; household referred (caseload_fault)",
                    h.id, policy.id, policy.region_prefix
                ),
            });
        }
    }
}

/// `a == b`, inline for the lengths of ID numbers and names (a few overlapping word loads
/// instead of a call to `memcmp`): the scan compares every row's ID and name with the row
/// before.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let w4 = |s: &[u8], at: usize| u32::from_le_bytes([s[at], s[at + 1], s[at + 2], s[at + 3]]);
    let w8 = |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().unwrap_or_default());
    match n {
        4..=8 => w4(a, 0) == w4(b, 0) && w4(a, n - 4) == w4(b, n - 4),
        9..=16 => w8(a, 0) == w8(b, 0) && w8(a, n - 8) == w8(b, n - 8),
        17..=24 => w8(a, 0) == w8(b, 0) && w8(a, 8) == w8(b, 8) && w8(a, n - 8) == w8(b, n - 8),
        _ => a == b,
    }
}

/// What [`link_source`] keeps of a source, filled batch by batch, in the file's row order.
struct Kept {
    /// The exactly linked rows, with the person key of each.
    records: CompactSet,
    /// Rows whose key is invalid: data row and the raw ID.
    bad: Vec<(u64, String)>,
    /// Rows whose key was repaired (linked or not): data row and the raw ID, for the
    /// per-row normalisation log.
    repaired: Vec<(u64, String)>,
    /// The rows of `bad` as records, with their names (for the second linkage pass).
    bad_records: RecordSet,
    bad_names: Vec<Option<String>>,
    /// Rows whose valid ID is no caseload person's but whose name and ID birth date are one's
    /// (the second pass's candidates, [`crate::link::caseload::NameDateIndex`]): the ID, the
    /// name; `other_records` holds them as records, in the same order.
    other_valid: Vec<(Option<IdNumber>, Option<String>)>,
    other_records: RecordSet,
}

impl Kept {
    fn new(kind: SourceKind) -> Kept {
        let set = || RecordSet {
            columns: kind.columns().iter().map(|c| c.name).collect(),
            records: Vec::new(),
        };
        Kept {
            records: CompactSet::default(),
            bad: Vec::new(),
            repaired: Vec::new(),
            bad_records: set(),
            bad_names: Vec::new(),
            other_valid: Vec::new(),
            other_records: set(),
        }
    }

    /// Adds one batch of the scan (`_row`, `_key`, `id_number`, `name` and the source's
    /// columns; keys as [`link_source`] gives them).
    ///
    /// # Errors
    /// A column that cannot be read as text (`unreadable` makes the error).
    fn add(
        &mut self,
        df: DataFrame,
        path: &Path,
        kind: SourceKind,
        as_of: NaiveDate,
        unreadable: &dyn Fn(PolarsError) -> ConnectorError,
    ) -> Result<(), ConnectorError> {
        let key_col = df
            .column("_key")
            .and_then(|c| c.i64())
            .map_err(unreadable)?
            .clone();
        let text = |df: &DataFrame, name: &str| -> Result<Column, ConnectorError> {
            df.column(name)
                .and_then(|c| c.cast(&DataType::String))
                .map_err(unreadable)
        };
        let row_numbers = |df: &DataFrame| -> Result<Vec<u64>, ConnectorError> {
            Ok(df
                .column("_row")
                .and_then(|c| c.cast(&DataType::UInt64))
                .map_err(unreadable)?
                .u64()
                .map_err(unreadable)?
                .into_no_null_iter()
                .collect())
        };
        // (row number, `id_number` as found) of each row of `df`
        let rows_and_ids = |df: &DataFrame| -> Result<Vec<(u64, String)>, ConnectorError> {
            let ids = text(df, "id_number")?;
            Ok(row_numbers(df)?
                .into_iter()
                .zip(ids.str().map_err(unreadable)?.iter())
                .map(|(r, v)| (r, v.unwrap_or("").to_string()))
                .collect())
        };
        // Rows whose key was repaired: linked ones carry the flag, unlinked ones their own key.
        let repaired_mask: BooleanChunked = key_col
            .iter()
            .map(|k| {
                k.map(|k| {
                    k == KEY_UNLINKED_REPAIRED
                        || k == KEY_CANDIDATE_REPAIRED
                        || (k >= 0 && k & KEY_REPAIRED_FLAG != 0)
                })
            })
            .collect();
        if repaired_mask.any() {
            let repaired_df = df.filter(&repaired_mask).map_err(unreadable)?;
            self.repaired.extend(rows_and_ids(&repaired_df)?);
        }
        let good = key_col.gt_eq(0);
        let linked = df.filter(&good).map_err(unreadable)?;
        let keys: Vec<u64> = linked
            .column("_key")
            .and_then(|c| c.i64())
            .map_err(unreadable)?
            .into_no_null_iter()
            .map(|k| (k & !KEY_REPAIRED_FLAG) as u64)
            .collect();
        frame_to_compact(
            kind,
            linked.drop("_key").map_err(unreadable)?,
            &keys,
            &mut self.records,
        )
        .map_err(unreadable)?;
        tracing::trace!(
            source = %kind,
            batch = df.height(),
            records = self.records.len(),
            heap_bytes = self.records.heap_bytes(),
            "Batch kept."
        );
        let invalid = key_col.equal(KEY_INVALID);
        if invalid.any() {
            let bad_df = df.filter(&invalid).map_err(unreadable)?;
            self.bad.extend(rows_and_ids(&bad_df)?);
            let names = text(&bad_df, "name")?;
            self.bad_names.extend(
                names
                    .str()
                    .map_err(unreadable)?
                    .iter()
                    .map(|v| v.map(str::to_string)),
            );
            self.bad_records.records.extend(
                frame_to_records(path, kind, bad_df.drop("_key").map_err(unreadable)?)?.records,
            );
        }
        let cand_mask: BooleanChunked = key_col
            .iter()
            .map(|k| k.map(|k| k == KEY_CANDIDATE || k == KEY_CANDIDATE_REPAIRED))
            .collect();
        if cand_mask.any() {
            let cand_df = df.filter(&cand_mask).map_err(unreadable)?;
            let names = text(&cand_df, "name")?;
            let ids = text(&cand_df, "id_number")?;
            self.other_valid.extend(
                ids.str()
                    .map_err(unreadable)?
                    .iter()
                    .zip(names.str().map_err(unreadable)?.iter())
                    .map(|(raw, n)| {
                        let id = raw
                            .and_then(|r| IdNumber::parse(r, as_of).ok())
                            .map(|(id, _)| id);
                        (id, n.map(str::to_string))
                    }),
            );
            self.other_records.records.extend(
                frame_to_records(path, kind, cand_df.drop("_key").map_err(unreadable)?)?.records,
            );
        }
        Ok(())
    }
}

/// The compressed bytes of a Parquet extract the scan reads at a time (whole row groups):
/// polars maps the file, and the pages it has read stay resident until its scan ends. At
/// 300,000 households the registration extract (361 MB) was resident whole at the run's peak.
pub(crate) const SCAN_RANGE_BYTES: u64 = 64 << 20;

/// The polars plan for one source: scan, key every row (the 17-digit body as an integer,
/// or [`KEY_INVALID`] / [`KEY_UNLINKED`]), keep caseload persons' rows and rows with invalid
/// keys. Membership is tested inside the keying function against one hash set built once
/// per run, so the cost per row is one parse and one lookup; the filter reads only the key
/// column, so the other columns are decoded only for the rows kept.
///
/// `names`: the caseload persons' names by birth date. With it, the filter also reads the
/// `name` column and keeps the rows whose valid ID is no caseload person's but whose name and
/// ID birth date are a caseload person's ([`KEY_CANDIDATE`]; a hash lookup and a few byte
/// comparisons per row of a person outside the caseload). `None` keeps the filter on
/// `id_number` alone.
///
/// `range_bytes`: a Parquet extract is scanned whole row groups at a time, at most this many
/// compressed bytes to a scan ([`SCAN_RANGE_BYTES`] in a run).
fn link_source(
    conn: &FileConnector,
    persons: &Arc<crate::link::caseload::PersonKeys>,
    names: Option<Arc<crate::link::caseload::NameDateIndex>>,
    as_of: NaiveDate,
    range_bytes: u64,
) -> Result<LinkedSource, ConnectorError> {
    let rows = Arc::new(AtomicU64::new(0));
    let unlinked = Arc::new(AtomicU64::new(0));
    let repairs: Arc<[AtomicU64; 6]> = Arc::new(Default::default());
    let by_age: Arc<[[AtomicU64; crate::link::caseload::AGE_BANDS]; 2]> =
        Arc::new(Default::default());
    let (rows_c, unlinked_c, repairs_c, persons, persons_c, by_age_c) = (
        rows.clone(),
        unlinked.clone(),
        repairs.clone(),
        persons.clone(),
        persons.clone(),
        by_age.clone(),
    );
    let (names_c, named) = (names.clone(), names.is_some());
    // the `name` column beside `id_number`, when the rows are tested for candidacy
    fn columns(cols: &[Column]) -> PolarsResult<(Column, Option<Column>)> {
        let id = cols[0].cast(&DataType::String)?;
        let name = cols.get(1).map(|n| n.cast(&DataType::String)).transpose()?;
        Ok((id, name))
    }
    // (`Either`, not a boxed iterator: this runs once per row of every extract, and a call
    // through a vtable per row cannot be inlined)
    fn with_names<'a>(
        name: &'a Option<Column>,
    ) -> PolarsResult<impl Iterator<Item = Option<&'a str>> + 'a> {
        Ok(match name {
            Some(n) => either::Either::Left(n.str()?.iter()),
            None => either::Either::Right(std::iter::repeat(None)),
        })
    }
    // Two passes over the key column, both inside the plan. The filter decides which rows
    // are kept (caseload persons', invalid keys, repaired keys); it only reads `id_number`,
    // so it reaches the reader, which decodes the extract's other columns only for the kept
    // rows (a few per cent of a population's extract). It counts nothing: polars may call a
    // filter on more than the rows (it does, on a few rows per file). The kept rows are keyed
    // again, and counted, in the projection; the rows dropped are unlinked rows without a
    // repair, counted as all rows less the kept ones.
    // It also counts the rows with a valid key by the holder's age band and caseload status
    // (the holding rates of the second linkage pass): every row passes through it.
    let day = crate::domain::AsOfDay::new(as_of);
    let keep_of = move |cols: &mut [Column]| -> PolarsResult<Column> {
        let (c, name) = columns(cols)?;
        let mut ages = [[0u64; crate::link::caseload::AGE_BANDS]; 2];
        // A block of rows at a time ([`keep::decide_rows`]): a clean, valid 18-character
        // number (nearly every row) is one pass over its bytes and a test among its block's;
        // a row that repeats the last clean row's ID and name is decided by one comparison
        // (records of a period come grouped by person: social insurance, 68.7 M rows of 8.3 M
        // IDs at 300k households, ~8 in a row); anything else takes `classify`.
        let ids = c.str()?;
        let mut keep: Vec<bool> = Vec::with_capacity(ids.len());
        keep::decide_rows(
            ids.iter().zip(with_names(&name)?),
            &persons_c,
            names_c.as_deref(),
            day,
            as_of,
            |v, n| {
                let (key, _, id) = classify_named(v, n, &persons_c, names_c.as_deref(), as_of);
                keep::Decision {
                    keep: key != KEY_UNLINKED,
                    cell: id.map(|id| {
                        (
                            usize::from(key >= 0),
                            crate::link::caseload::age_band(
                                chrono::Datelike::year(&id.birth_date()),
                                as_of,
                            ),
                        )
                    }),
                }
            },
            &mut ages,
            &mut keep,
        );
        let keep = BooleanChunked::from_iter_values(c.name().clone(), keep.into_iter());
        for (k, band) in ages.iter().enumerate() {
            for (b, n) in band.iter().enumerate() {
                if *n > 0 {
                    by_age_c[k][b].fetch_add(*n, Ordering::Relaxed);
                }
            }
        }
        Ok(keep.into_series().into())
    };
    let key_of = move |cols: &mut [Column]| -> PolarsResult<Column> {
        let (c, name) = columns(cols)?;
        let ca = c.str()?;
        rows_c.fetch_add(ca.len() as u64, Ordering::Relaxed);
        let mut outside = 0u64;
        let keys: Int64Chunked = ca
            .iter()
            .zip(with_names(&name)?)
            .map(|(v, n)| {
                // the filter's fast path: a clean valid number has no repairs
                if let Some((key, _)) = v.and_then(|v| IdNumber::clean_key(v.as_bytes(), day)) {
                    return Some(if persons.contains(key) {
                        key as i64
                    } else if is_candidate(names.as_deref(), key, n) {
                        outside += 1;
                        KEY_CANDIDATE
                    } else {
                        KEY_UNLINKED
                    });
                }
                let (key, rep, _) = classify_named(v, n, &persons, names.as_deref(), as_of);
                for r in &rep {
                    if let Some(i) = REPAIRS.iter().position(|x| x == r) {
                        repairs_c[i].fetch_add(1, Ordering::Relaxed);
                    }
                }
                // kept but unlinked (a candidate stays unlinked: never used by a rule)
                if matches!(
                    key,
                    KEY_UNLINKED_REPAIRED | KEY_CANDIDATE | KEY_CANDIDATE_REPAIRED
                ) {
                    outside += 1;
                }
                Some(key)
            })
            .collect();
        unlinked_c.fetch_add(outside, Ordering::Relaxed);
        Ok(keys.with_name(c.name().clone()).into_series().into())
    };
    let path = conn.path().to_path_buf();
    let unreadable = |e: PolarsError| ConnectorError::Unreadable {
        path: path.display().to_string(),
        message: e
            .to_string()
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(160)
            .collect(),
    };
    let mut keep: Vec<Expr> = vec![col("_row"), col("_key"), col("id_number"), col("name")];
    keep.extend(conn.kind().columns().iter().map(|c| col(c.name)));
    // Every kept text column is copied out of the reader's buffers, morsel by morsel (see
    // [`compact_text`]): without it the few kept rows hold every decoded page of the extract.
    let keep: Vec<Expr> = keep
        .into_iter()
        .map(|e| e.map(compact_text, |_, f| Ok(f.clone())))
        .collect();
    let also: &[Expr] = if named { &[col("name")] } else { &[] };
    // the plan over the rows `rows` of the extract (`None`: all of it)
    let plan = |rows: Option<std::ops::Range<u64>>| -> Result<LazyFrame, ConnectorError> {
        let scan = match rows {
            Some(rows) => conn.scan_indexed_rows("_row", rows)?,
            None => conn.scan_indexed("_row")?,
        };
        Ok(scan
            .filter(col("id_number").map_many(keep_of.clone(), also, |_, f| {
                Ok(Field::new(f[0].name().clone(), DataType::Boolean))
            }))
            .with_column(
                col("id_number")
                    .map_many(key_of.clone(), also, |_, f| {
                        Ok(Field::new(f[0].name().clone(), DataType::Int64))
                    })
                    .alias("_key"),
            )
            .select(keep.clone()))
    };
    // every data row of the extract (Parquet: from its footer)
    let total = conn
        .scan()?
        .select([len()])
        .collect()
        .map_err(unreadable)?
        .column("len")
        .and_then(|c| c.cast(&DataType::UInt64))
        .map_err(unreadable)?
        .u64()
        .map_err(unreadable)?
        .get(0)
        .unwrap_or(0);
    // The kept rows come batch by batch, in the file's order: each batch becomes records here
    // and is dropped, so only caseload persons' rows (in compact form) and the rows of the
    // second pass are ever held, never the whole extract nor all kept rows as a frame.
    let mut kept = Kept::new(conn.kind());
    // A Parquet extract is scanned a range of row groups at a time (at most
    // [`SCAN_RANGE_BYTES`] of the file's pages resident at once, see
    // [`FileConnector::parquet_row_ranges`]); the ranges' kept rows come in the file's order,
    // as from one scan.
    let ranges = match conn.parquet_row_ranges(range_bytes) {
        Some(ranges) if ranges.len() > 1 => ranges.into_iter().map(Some).collect(),
        _ => vec![None],
    };
    for rows in ranges {
        for_each_batch(
            plan(rows)?,
            |df| kept.add(df, conn.path(), conn.kind(), as_of, &unreadable),
            unreadable,
        )?;
    }
    kept.records.shrink_to_fit();
    let kept_rows = rows.load(Ordering::Relaxed);
    // the rows the filter dropped: unlinked, unrepaired
    unlinked.fetch_add(total.saturating_sub(kept_rows), Ordering::Relaxed);
    rows.store(total.max(kept_rows), Ordering::Relaxed);
    let file = conn
        .path()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let counts = FileCounts {
        file,
        format: conn.format().extension().to_string(),
        rows: rows.load(Ordering::Relaxed),
        unlinked: unlinked.load(Ordering::Relaxed),
        key_repairs: REPAIRS
            .iter()
            .zip(repairs.iter())
            .filter(|(_, n)| n.load(Ordering::Relaxed) > 0)
            .map(|(r, n)| (repair_name(r).to_string(), n.load(Ordering::Relaxed)))
            .collect(),
        ..FileCounts::default()
    };
    Ok(LinkedSource {
        kept,
        counts,
        rows_by_age: std::array::from_fn(|k| {
            std::array::from_fn(|b| by_age[k][b].load(Ordering::Relaxed))
        }),
    })
}

/// A text column with its own, tight buffers: the kept strings copied out; any other column
/// as it is.
///
/// The Parquet reader decodes a page of a plain-encoded text column into one buffer sized for
/// the whole page (also when the page's values are inlined in their views, or when only the
/// filter's rows are decoded), and polars' filter keeps the buffers of the filtered column
/// whole. So a scan that keeps a few per cent of the rows would hold every page of `id_number`,
/// `name` and the other plain text columns until the source is done: ~1.7 GB at 300,000
/// households for `name` alone. Copying the kept rows' strings (a few per cent of the rows,
/// in the streaming engine, per morsel) frees the pages as the scan goes.
///
/// # Errors
/// None in practice (a `String` column is read as such).
fn compact_text(c: Column) -> PolarsResult<Column> {
    if c.dtype() != &DataType::String {
        return Ok(c);
    }
    let ca = c.str()?;
    let out: StringChunked = ca.iter().collect();
    Ok(out.with_name(c.name().clone()).into_series().into())
}

/// The linked rows of a frame (`_row`, `id_number` and the source's columns) appended to
/// `set`, with the person key of each row (`keys`, in the frame's order): what
/// [`frame_to_records`] gives, without a `String` per value (an empty value is null, as
/// there).
///
/// # Errors
/// A column that cannot be read as text.
fn frame_to_compact(
    kind: SourceKind,
    df: DataFrame,
    keys: &[u64],
    set: &mut CompactSet,
) -> PolarsResult<()> {
    let df = hedui_connectors::file::text_columns(df, &["_row"])?;
    let rows = df.column("_row")?.cast(&DataType::UInt64)?;
    let rows = rows.u64()?;
    let ids = df.column("id_number")?.str()?;
    let cols: Vec<&StringChunked> = kind
        .columns()
        .iter()
        .map(|c| df.column(c.name).and_then(|c| c.str()))
        .collect::<PolarsResult<_>>()?;
    // the arena's exact size: per record the ID, the count, and per value 4 bytes + its text
    let text: usize = std::iter::once(ids)
        .chain(cols.iter().copied())
        .map(|c| c.iter().map(|v| v.map_or(0, str::len)).sum::<usize>())
        .sum();
    let n = df.height();
    set.reserve(n, text + n * (2 + 2 * cols.len()));
    // Column iterators, not `get(i)`: a frame read in many chunks would search its chunks
    // for every cell.
    let mut values: Vec<_> = cols.iter().map(|c| c.iter()).collect();
    for ((row, id), &key) in rows.iter().zip(ids.iter()).zip(keys) {
        let v = crate::records::Values::new(
            values
                .iter_mut()
                .map(|c| c.next().flatten().filter(|v| !v.is_empty())),
        );
        set.push(row.unwrap_or(0), key, id.unwrap_or(""), &v);
    }
    Ok(())
}

fn progress(enabled: bool, len: u64, msg: &'static str) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(
            "{msg:>12} [{bar:40}] {pos}/{len} {elapsed_precise} {wide_msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    pb.set_message(msg);
    pb
}

/// A run id: as-of date, UTC time of the run and 4 random bytes.
pub fn new_run_id(as_of: NaiveDate) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let t = chrono::DateTime::from_timestamp(now, 0)
        .map(|t| t.format("%Y%m%dT%H%M%SZ").to_string())
        .unwrap_or_default();
    let mut r = [0u8; 4];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut r);
    format!("{}-{t}-{}", as_of.format("%Y%m%d"), hex::encode(r))
}

fn write_err(path: &Path) -> impl Fn(std::io::Error) -> BatchError + '_ {
    move |cause| BatchError::Write {
        path: path.display().to_string(),
        cause,
    }
}

/// Removes the file or link at `path`, if any (not an error when there is none).
///
/// # Errors
/// The removal's, other than "not found".
pub(crate) fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Writes `bytes` to `path` as a new file: whatever file or link is at `path` is removed
/// first, not truncated, so that a run never writes through a hard or symbolic link into
/// another run's files. Found by session 20's attack: an incremental run whose
/// `--out/reports.jsonl` was a hard link to the previous run's (a `cp -al` snapshot) emptied
/// the previous run's reports; a full run into a folder whose `state/linked.bin` an
/// incremental run had linked to the next night's would have overwritten that one's. Every
/// output file of the batch is made this way ([`direct::DirectWriter`], the CSV writers).
///
/// # Errors
/// The removal's or the write's.
pub(crate) fn write_fresh(path: &Path, bytes: impl AsRef<[u8]>) -> std::io::Result<()> {
    remove_if_present(path)?;
    std::fs::write(path, bytes)
}

/// Whether a run leaves its largest structures to the operating system at its end instead
/// of freeing them an allocation at a time ([`leave_memory_to_exit`]).
static LEAVE_TO_EXIT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Tells the batch that the process ends right after the run (the command line's `hedui
/// batch`): the run's largest structures (caseload, state, outcomes) are then left to the
/// operating system, which takes the whole heap back at once, instead of freed one
/// allocation at a time on the run's critical path (~0.2-0.3 s on one core at the end of an
/// incremental run at 300,000 households, `mi_free` and `munmap` in perf). Library callers
/// and tests, which go on after a run, do not call it and free as usual; a memory-limited
/// run ([`run_limited`]) frees each slice before the next all the same.
pub fn leave_memory_to_exit() {
    LEAVE_TO_EXIT.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Drops `x`, or forgets it when the process ends after the run ([`leave_memory_to_exit`]).
pub(crate) fn release<T>(x: T) {
    if LEAVE_TO_EXIT.load(std::sync::atomic::Ordering::Relaxed) {
        std::mem::forget(x);
    } else {
        drop(x);
    }
}

/// The folder inside `--out` that a run of [`run_published`] writes into before its outputs
/// are put in place: removed when the run is refused, and at the start of the next run when
/// a run was killed.
pub const STAGING_DIR: &str = ".hedui-run-incomplete";

/// The names a run writes in `--out` (files, and the `state` folder): those of an earlier
/// run that this one does not write (an earlier incremental run's `changes.json`, say) go
/// when this run's outputs are put in place, so that `--out` holds one run's outputs only.
const OUTPUT_NAMES: [&str; 8] = [
    "reports.jsonl",
    "determinations.csv",
    "quarantine.csv",
    "normalisations.csv",
    "changes.json",
    "summary.json",
    "summary.html",
    "state",
];

/// Runs `run` (any of [`run`], [`run_incremental`], [`run_partition`], [`run_limited`]) with
/// `opts.out` pointing at [`STAGING_DIR`] inside the `--out` folder, and puts the outputs in
/// place only when it succeeds: a refused run (a previous run whose reports were changed
/// after it, a delta that cannot be applied, `--strict`, a full disk) leaves `--out` as it
/// was, an earlier run's outputs there whole, never a half-written `reports.jsonl` beside
/// them. Found by session 20's attack: an incremental run refused for a changed previous
/// `reports.jsonl` had already replaced `--out`'s reports with the lines it had copied.
///
/// Putting in place renames each output (same file system: no copy); the earlier run's
/// `state/manifest.json` goes first and the new `state` folder last, so that a process killed
/// in between leaves no state an incremental run would take. `opts.out` is the `--out`
/// folder again when this returns.
///
/// # Errors
/// The run's; [`BatchError::Locked`] when another batch writes to `--out`;
/// [`BatchError::Write`] naming the file that could not be created, removed or renamed.
pub fn run_published(
    opts: &mut BatchOptions,
    run: impl FnOnce(&BatchOptions) -> Result<Summary, BatchError>,
) -> Result<Summary, BatchError> {
    let out = opts.out.clone();
    std::fs::create_dir_all(&out).map_err(write_err(&out))?;
    let _lock = OutputLock::take(&out)?;
    let staging = out.join(STAGING_DIR);
    // a run killed before it put its outputs in place (this one holds the lock: no run is
    // writing there)
    remove_any(&staging).map_err(write_err(&staging))?;
    remove_killed_slices(&out)?;
    std::fs::create_dir(&staging).map_err(write_err(&staging))?;
    opts.out = staging.clone();
    let result = run(opts);
    opts.out = out.clone();
    let result = result.and_then(|summary| put_in_place(&staging, &out).map(|()| summary));
    // (what is left there: a refused run's outputs, or this run's that could not be put in place)
    if let Err(e) = remove_any(&staging) {
        tracing::warn!(path = %staging.display(), error = %e, "The run's working folder could not be removed (the next run into this folder removes it).");
    }
    result
}

/// Removes the slices folders ([`scale::SLICES_PREFIX`]) a `--memory-limit` run killed
/// before its merge left in `out`: their states hold the slices' persons' raw ID numbers
/// (folders 0700). Called holding `out`'s lock, so no run is writing there. Left until
/// removed by hand before session 25.
///
/// # Errors
/// [`BatchError::Write`] naming the folder that could not be read or removed.
fn remove_killed_slices(out: &Path) -> Result<(), BatchError> {
    for entry in std::fs::read_dir(out).map_err(write_err(out))? {
        let entry = entry.map_err(write_err(out))?;
        let name = entry.file_name();
        if name
            .as_encoded_bytes()
            .starts_with(scale::SLICES_PREFIX.as_bytes())
        {
            let path = entry.path();
            remove_any(&path).map_err(write_err(&path))?;
            tracing::warn!(
                path = %path.display(),
                "Removed the slices folder of a --memory-limit run that stopped before its merge (it held the slices' states)."
            );
        }
    }
    Ok(())
}

/// Removes the file, link or folder (with what it holds) at `path`, if any; a link is
/// removed, never followed.
fn remove_any(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// The folder inside `--out` that an earlier run's outputs are moved into while a run puts
/// its own in place ([`put_in_place`]); removed once they are, and at the start of the next
/// run when a run was killed in between.
const REPLACED_DIR: &str = ".hedui-run-replaced";

/// Moves every output in `staging` into `out` (see [`run_published`]), in two steps of
/// renames: first every earlier output of `out` (the names this run writes, and
/// [`OUTPUT_NAMES`]) into [`REPLACED_DIR`], then this run's into `out`, `state` last. `out`
/// never holds two runs' outputs side by side: killed in between, it holds some of this run's
/// and no `state`, which no incremental run takes for a previous run. A rename that fails
/// (a file the run may not move) moves everything back: `out` as it was, the error returned.
/// A link in `out` is moved as a link, never followed (found by session 21's attack: a
/// `state` linked to another run's had that run's manifest removed through it).
fn put_in_place(staging: &Path, out: &Path) -> Result<(), BatchError> {
    put_in_place_by(staging, out, |from, to| std::fs::rename(from, to))
}

/// [`put_in_place`] with `rename` for `std::fs::rename` (a test makes one fail).
fn put_in_place_by(
    staging: &Path,
    out: &Path,
    rename: impl Fn(&Path, &Path) -> std::io::Result<()>,
) -> Result<(), BatchError> {
    let replaced = out.join(REPLACED_DIR);
    remove_any(&replaced).map_err(write_err(&replaced))?;
    std::fs::create_dir(&replaced).map_err(write_err(&replaced))?;
    let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(staging)
        .map_err(write_err(staging))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()
        .map_err(write_err(staging))?;
    names.retain(|n| n != ".hedui-batch.lock");
    // the state last: it says the outputs beside it are whole
    names.sort_by_key(|n| n == "state");
    let mut earlier: Vec<std::ffi::OsString> = OUTPUT_NAMES.iter().map(Into::into).collect();
    earlier.extend(
        names
            .iter()
            .filter(|n| !OUTPUT_NAMES.iter().any(|o| n == o))
            .cloned(),
    );
    // the earlier run's state first: without it no incremental run takes what is left
    earlier.sort_by_key(|n| n != "state");
    let mut moved_out: Vec<&std::ffi::OsString> = Vec::new();
    let mut moved_in: Vec<&std::ffi::OsString> = Vec::new();
    let mut failed: Option<BatchError> = None;
    for name in &earlier {
        let from = out.join(name);
        if std::fs::symlink_metadata(&from).is_err() {
            continue;
        }
        match rename(&from, &replaced.join(name)) {
            Ok(()) => moved_out.push(name),
            Err(e) => {
                failed = Some(write_err(&from)(e));
                break;
            }
        }
    }
    if failed.is_none() {
        for name in &names {
            let to = out.join(name);
            match rename(&staging.join(name), &to) {
                Ok(()) => moved_in.push(name),
                Err(e) => {
                    failed = Some(write_err(&to)(e));
                    break;
                }
            }
        }
    }
    if let Some(e) = failed {
        // back as it was: this run's outputs to the staging folder (removed with it), the
        // earlier ones to `out`
        for name in moved_in.iter().rev() {
            let _ = rename(&out.join(name), &staging.join(name));
        }
        for name in moved_out.iter().rev() {
            if let Err(r) = rename(&replaced.join(name), &out.join(name)) {
                tracing::error!(path = %replaced.join(name).display(), error = %r, "An earlier output could not be moved back into the output folder: it is in this folder.");
                return Err(e);
            }
        }
        let _ = remove_any(&replaced);
        return Err(e);
    }
    if let Err(e) = remove_any(&replaced) {
        tracing::warn!(path = %replaced.display(), error = %e, "The earlier run's outputs could not be removed (the next run into this folder removes them).");
    }
    Ok(())
}

/// Run the batch. Returns the summary (also written to `summary.json`).
///
/// # Errors
/// [`BatchError`] when the caseload cannot be read or outputs cannot be written; failed
/// sources and bad rows are not errors (see the summary's exit code).
pub fn run(opts: &BatchOptions) -> Result<Summary, BatchError> {
    run_selected(opts, &scale::Selection::all())
}

/// [`run`] over the households `sel` keeps (a region partition, or one slice of a
/// memory-limited run); the outputs are that slice of a full run's outputs.
fn run_selected(opts: &BatchOptions, sel: &scale::Selection) -> Result<Summary, BatchError> {
    let t0 = Instant::now();
    let mut timings = BTreeMap::new();
    std::fs::create_dir_all(&opts.out).map_err(write_err(&opts.out))?;
    let _lock = OutputLock::take(&opts.out)?;
    if opts.previous.is_none() {
        // an earlier run's changes.json in this folder would pass for this run's
        let p = opts.out.join("changes.json");
        if p.exists() {
            std::fs::remove_file(&p).map_err(write_err(&p))?;
        }
    }
    let policy = &opts.policy;
    let frame = Frame::new(opts.as_of, policy);
    let run_id = sel.run_id.clone().unwrap_or_else(|| new_run_id(opts.as_of));
    let mut q = Quarantine::default();

    // ---- caseload
    // (its digest, which the state records, taken beside the read; both between two looks at
    // the files, so that they are of the same files: session 24's attack)
    let stamps = scale::caseload_stamps(&opts.caseload);
    let (loaded, caseload_digest) = rayon::join(
        || load_caseload(&opts.caseload, opts.as_of, &mut q),
        || scale::caseload_digest(&opts.caseload),
    );
    let (mut loaded, caseload_digest) = (loaded?, caseload_digest?);
    scale::caseload_unchanged(&opts.caseload, &stamps)?;
    region_entries(&loaded, &opts.policy, &mut q);
    // every caseload name (the whole caseload's: a slice's notes may name a person of
    // another), masked in the reader's words the run passes on
    let scrub = scrub::NameScrub::of_caseload(&loaded);
    scrub.caseload(&mut loaded, &mut q);
    let mut norms = std::mem::take(&mut loaded.normalisations);
    // In a slice, the persons of the other slices: a row keyed with one of their IDs is
    // theirs (as in one run), never a namesake's candidate here.
    let everyone: Option<ahash::AHashSet<u64>> = sel
        .is_slice()
        .then(|| loaded.queried_ids().map(|id| id.key()).collect());
    let in_no_region_partition = sel.is_region_prefix().then(|| {
        loaded
            .households
            .iter()
            .filter(|h| !scale::in_region_partitions(policy, &h.region_code))
            .count() as u64
    });
    // (a slice's changes.json counts as gone only households no longer in the caseload)
    let whole_caseload: Option<HashSet<String>> = (sel.is_slice() && opts.previous.is_some())
        .then(|| loaded.households.iter().map(|h| h.id.clone()).collect());
    let households_in_caseload = loaded.households.len();
    let mut caseload = sel.slice(loaded);
    caseload.in_no_region_partition = in_no_region_partition;
    let caseload_key_repairs: BTreeMap<String, u64> = norms
        .by_kind()
        .into_iter()
        .filter(|(k, _)| k.starts_with("id_"))
        .collect();
    check_strict(opts.strict, &q)?;
    let mut near_miss: Vec<(u8, u64, u64)> = Vec::new();
    let mut person_index = crate::link::caseload::PersonIndex::default();
    for id in caseload.queried_ids() {
        let n = person_index.len();
        person_index.entry(id.key()).or_insert(n);
    }
    // whether this run counts each person's linked rows (a memory-limited slice counts a
    // person in households of two slices in the first only)
    let mut counted = vec![true; person_index.len()];
    for (&key, &pi) in person_index.iter() {
        counted[pi] = sel.counts_person(key);
    }
    let mut persons: Vec<PersonState> = (0..person_index.len())
        .map(|_| PersonState {
            evidence: PersonEvidence::default(),
            incomplete: Vec::new(),
            records: Vec::new(),
            links: Default::default(),
        })
        .collect();
    // the persons' keys beside the caseload persons' names by birth date: a source row whose
    // valid ID is nobody's in the caseload but whose name and ID birth date are a caseload
    // person's is a candidate of the second linkage pass
    let (person_keys, mut person_names) = rayon::join(
        || crate::link::caseload::PersonKeys::new(person_index.keys().copied()),
        || {
            crate::link::caseload::NameDateIndex::of_caseload(&caseload, |key| {
                person_index.contains_key(&key)
            })
        },
    );
    let person_keys = Arc::new(person_keys);
    if let Some(everyone) = everyone {
        person_names.set_outside(
            everyone
                .into_iter()
                .filter(|k| !person_index.contains_key(k))
                .collect(),
        );
    }
    let person_names = Arc::new(person_names);
    timings.insert("caseload".to_string(), t0.elapsed().as_millis());
    tracing::info!(
        households = caseload.households.len(),
        persons = persons.len(),
        "Caseload loaded."
    );

    // ---- sources
    let pb = progress(opts.progress, SourceKind::ALL.len() as u64, "sources");
    let mut unverified: Vec<(SourceKind, String)> = Vec::new();
    let mut sources: BTreeMap<String, SourceSummary> = BTreeMap::new();
    let mut record_sets: Vec<CompactSet> = Vec::with_capacity(12);
    // per source: rows with a valid key by the holder's age band (outside / in the caseload)
    let mut rows_by_age: Vec<[[u64; crate::link::caseload::AGE_BANDS]; 2]> = Vec::with_capacity(12);
    let mut pending: Vec<crate::link::caseload::BatchRow> = Vec::new();
    let mut check_only: Vec<(usize, SourceKind, usize)> = Vec::new();
    // residents outside the caseload who bear a caseload person's name and birth date (their
    // registration rows): ID key → normalised names
    let mut homonyms: HashMap<u64, Vec<String>> = HashMap::new();
    // the same, as the state keeps them for an incremental run: (registration row, ID, name)
    // pseudonyms ([`scale::Namesake`])
    let mut namesakes: Vec<scale::Namesake> = Vec::new();
    // The next sources are scanned and linked (polars, on its own threads) while this one's
    // rows become evidence here: a reader thread runs ahead, never waiting for this one (a
    // source's linked rows are a few per cent of its extract, and all are kept in the end;
    // with one source of room the scan stalled behind the evidence of the large ones).
    std::thread::scope(|sc| -> Result<(), BatchError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(SourceKind::ALL.len());
        let (sources_dir, keys, as_of) = (&opts.sources, &person_keys, opts.as_of);
        let names = &person_names;
        // Without the registration extract no row keyed with another person's valid ID is a
        // candidate (who holds that ID cannot be told: see the pass below), so the scan does
        // not read `name` for them.
        let candidates = policy.wrong_valid_id_candidates
            && FileConnector::locate(sources_dir, SourceKind::HouseholdRegistration).is_ok();
        sc.spawn(move || {
            for kind in SourceKind::ALL {
                let t = Instant::now();
                let names = (!names.is_empty() && candidates).then(|| names.clone());
                let linked = FileConnector::locate(sources_dir, kind)
                    .and_then(|c| link_source(&c, keys, names, as_of, SCAN_RANGE_BYTES).map(|l| (c, l)))
                    .and_then(|(c, l)| {
                        // an extract replaced while it was read: its counts and its rows may be
                        // of two versions (session 24's attack)
                        c.prepared().changed_since_read()?;
                        // An extract of a whole population with no rows is a failed export, not
                        // "nobody has anything": it is unverified, never read as no records.
                        let bad = l.kept.bad.len() as u64;
                        let refused = c.prepared().mostly_refused(l.counts.rows);
                        // Total rows are no data rows: a header and a `合计` line is an export
                        // that lost its rows (found by session 17's attack: such a bank file
                        // read as answered, and 122 households eligible on no deposits).
                        let only_totals = c
                            .prepared()
                            .rejected
                            .iter()
                            .all(|r| r.reason == "row_subtotal");
                        if l.counts.rows == 0 && only_totals {
                            Err(no_data_rows(c.path()))
                        } else if let Some(refused) = refused {
                            // Found by the s9 attack: a header one column wider than its rows
                            // (`seq,id_number,…` over rows without `seq`) had every row refused
                            // while reading, yet the source read as answered with no rows:
                            // families were eligible on deposits nobody could read. Most rows
                            // refused is a damaged extract, like most keys unusable.
                            Err(ConnectorError::Unreadable {
                                path: c.path().display().to_string(),
                                message: format!(
                                    "{refused} It is not read, every household is unverified for it"
                                ),
                            })
                        } else if bad > 0 && bad * 2 > l.counts.rows {
                            // Found by the s7 attack: an extract whose ID column was emptied or
                            // turned into `6.20503E+17` by a spreadsheet had every row
                            // quarantined one by one, yet the source read as answered: every
                            // caseload person had "no records" of it (no deposits, no car) and
                            // families were eligible on a source nobody could read. A key
                            // unusable in most rows is a damaged extract, like a missing column.
                            Err(ConnectorError::Unreadable {
                                path: c.path().display().to_string(),
                                message: format!(
                                    "{bad} of {} data rows have no usable ID number (empty, scientific notation, digits lost, not a number): the extract cannot be linked to persons (a damaged export, or another column read as id_number?); it is not read, every household is unverified for it",
                                    l.counts.rows
                                ),
                            })
                        } else {
                            Ok((c, l))
                        }
                    });
                // the run stopped (--strict): no more sources
                if tx.send((linked, t.elapsed())).is_err() {
                    return;
                }
            }
        });
        for (si, kind) in SourceKind::ALL.into_iter().enumerate() {
            pb.set_message(kind.name());
            // (an error here means the reader panicked: the scope passes the panic on)
            let Ok((linked, took)) = rx.recv() else {
                break;
            };
            // the source's time: its scan and link, and its rows' evidence below
            let ts = Instant::now()
                .checked_sub(took)
                .unwrap_or_else(Instant::now);
            match linked {
                Err(e) => {
                    // (the full reason, with the file and the columns, is in summary.json:
                    // the log keeps to the code, never a value of the file)
                    tracing::warn!(source = %kind, reason = e.code(), see = "summary.json: sources.<source>.reason", "Source not answered; every household says unverified for it.");
                    // (the reader's words in it, a header or a sheet's name, may name a
                    // caseload person)
                    let reason = scrub.text(&format!("{}: {e}", e.code())).into_owned();
                    unverified.push((kind, reason.clone()));
                    sources.insert(
                        kind.name().into(),
                        SourceSummary {
                            status: "unverified",
                            reason: Some(reason),
                            counts: None,
                            households_unverified: 0,
                            ms: ts.elapsed().as_millis(),
                        },
                    );
                    record_sets.push(CompactSet::default());
                    rows_by_age.push(Default::default());
                    // --strict: an extract that is there and was refused whole stops the run
                    // like a refused row (one that is not there at all is a source not
                    // queried, as without --strict)
                    if opts.strict && !matches!(e, ConnectorError::NotFound { .. }) {
                        return Err(strict_source(kind, &scrub.text(&e.to_string()), e.code()));
                    }
                }
                Ok((conn, mut l)) => {
                    let prep = conn.prepared();
                    if prep
                        .notes
                        .iter()
                        .any(|n| n.starts_with("also in the folder and not read"))
                    {
                        tracing::warn!(source = %kind, see = "summary.json: sources.<source>.counts.notes", "Another file of this source is in the folder and not read.");
                    }
                    let file = l.counts.file.clone();
                    for r in &prep.rejected {
                        let mut e = QuarantineEntry::from_rejected(&file, r);
                        if let std::borrow::Cow::Owned(m) = scrub.text(&e.message) {
                            e.message = m;
                        }
                        // A row refused while reading (cut-off line, a 万元 value that is not
                        // an amount, …) whose ID names a caseload person: that person's records
                        // of this source are incomplete, never "no records".
                        // Two `id_number` headers that disagree (duplicate_column_conflict):
                        // the row may be either person's, so both are.
                        let mut pis: Vec<(usize, u64)> = r
                            .id_number
                            .iter()
                            .chain(
                                r.other_keys
                                    .iter()
                                    .filter(|(c, _)| c == "id_number")
                                    .map(|(_, v)| v),
                            )
                            .filter_map(|raw| IdNumber::parse(raw, opts.as_of).ok())
                            .filter_map(|(id, _)| {
                                person_index.get(&id.key()).map(|&pi| (pi, id.key()))
                            })
                            .collect();
                        if pis.is_empty() {
                            // A row refused whole (a stray delimiter, a line cut short) has its
                            // fields out of place: an ID number anywhere in it names its person
                            // (found by session 23's attack: an unquoted comma in a company
                            // name before a last `id_number` column dropped the row of a
                            // shareholding, and the household turned eligible).
                            pis = r
                                .raw
                                .split(|c: char| !c.is_alphanumeric())
                                .filter(|t| t.chars().count() >= 15)
                                .filter_map(|t| IdNumber::parse(t, opts.as_of).ok())
                                .filter_map(|(id, _)| {
                                    person_index.get(&id.key()).map(|&pi| (pi, id.key()))
                                })
                                .collect();
                            pis.sort_unstable();
                        }
                        pis.dedup();
                        if !pis.is_empty() {
                            e.action = Action::Referred;
                            e.message.push_str(&format!(
                                "; the row names a caseload person: their {} evidence is incomplete, household referred",
                                kind.name()
                            ));
                        }
                        for (pi, key) in pis {
                            let p = &mut persons[pi];
                            p.mark_row_unreadable(kind);
                            // kept in the state, so that an incremental run recomputing the
                            // person marks them again (found by session 17's attack: the
                            // household turned eligible)
                            near_miss.push((si as u8, scale::refused_line_row(r.line), key));
                        }
                        q.push(e);
                    }
                    for (bi, (row, raw)) in l.kept.bad.iter().enumerate() {
                        // second linkage pass (issue 7): decided after every source is read
                        if let Some(rec) = l.kept.bad_records.records.get(bi) {
                            pending.push(crate::link::caseload::BatchRow::new(
                                si,
                                kind,
                                q.entries.len(),
                                rec.clone(),
                                l.kept.bad_names.get(bi).cloned().flatten(),
                            ));
                        }
                        let e = IdNumber::parse(raw, opts.as_of)
                            .err()
                            .unwrap_or(crate::domain::IdError::Missing);
                        // A key that fails only its check character and whose 17-digit body is a
                        // caseload person's: the row is probably theirs. It is not used (no guess),
                        // but that person's source is unverified, never read as "no records".
                        if let crate::domain::IdError::CheckCharacter { .. } = e {
                            let t = raw.trim().as_bytes();
                            if t.len() == 18 && t[..17].iter().all(u8::is_ascii_digit) {
                                let body = t[..17]
                                    .iter()
                                    .fold(0u64, |a, d| a * 10 + u64::from(d - b'0'));
                                // decided after the second linkage pass: the row may be another
                                // person's (a same-day neighbour's key with a typo)
                                if let Some(&pi) = person_index.get(&body) {
                                    near_miss.push((si as u8, *row, body));
                                    check_only.push((pi, kind, q.entries.len()));
                                }
                            }
                        }
                        let mut entry = QuarantineEntry::at(
                            &file,
                            prep.line_of(*row),
                            Some(*row),
                            "id_number",
                            raw,
                            e.code(),
                            Action::Rejected,
                            format!("id_number: {e}; the row cannot be linked to a person"),
                        );
                        // The key sits in another field (name and id_number swapped, a
                        // shifted column): the row is a caseload person's and cannot be
                        // read, so their records of this source are incomplete, never "no
                        // records" (a swapped bank row of 50,000 yuan left a family eligible).
                        // A column that holds an ID number by design (the registration's
                        // `household_head_id`: the head's, not the row's person) is not such
                        // a field.
                        let named =
                            l.kept
                                .bad_names
                                .get(bi)
                                .and_then(|n| n.as_deref())
                                .into_iter()
                                .chain(l.kept.bad_records.records.get(bi).into_iter().flat_map(
                                    |r| {
                                        r.values
                                            .iter()
                                            .zip(&l.kept.bad_records.columns)
                                            .filter(|(_, name)| {
                                                !kind.columns().iter().any(|c| {
                                                    c.name == **name
                                                && c.kind == hedui_connectors::ColumnKind::IdNumber
                                                })
                                            })
                                            .filter_map(|(v, _)| v.as_deref())
                                    },
                                ))
                                .find_map(|v| {
                                    let v = v.trim();
                                    if !(15..=20).contains(&v.len()) {
                                        return None;
                                    }
                                    IdNumber::parse(v, opts.as_of)
                                        .ok()
                                        .and_then(|(id, _)| person_index.get(&id.key()).copied())
                                });
                        if let Some(pi) = named {
                            entry.action = Action::Referred;
                            entry.message.push_str(&format!(
                                "; another field of the row holds a caseload person's ID number (columns swapped?): their {} evidence is incomplete, household referred",
                                kind.name()
                            ));
                            persons[pi].mark_row_unreadable(kind);
                        } else if let Some(pi) = embedded_id_numbers(raw)
                            .iter()
                            .filter_map(|v| IdNumber::parse(v, opts.as_of).ok())
                            .find_map(|(id, _)| person_index.get(&id.key()).copied())
                        {
                            // Found by session 16's attack: a note in the ID column
                            // (`备注：<ID> <name> 账户已销户`) naming a caseload person was
                            // refused as an unreadable ID, and their household left as it was.
                            entry.action = Action::Referred;
                            entry.message.push_str(&format!(
                                "; the cell holds a caseload person's ID number among other text (a note?): their {} evidence is incomplete, household referred",
                                kind.name()
                            ));
                            persons[pi].mark_row_unreadable(kind);
                        }
                        q.push(entry);
                    }
                    // second linkage pass (issue 7): rows keyed with another person's valid ID
                    // that bear a caseload person's name and birth date (unlinked rows: no
                    // quarantine entry)
                    for ((id, name), rec) in
                        l.kept.other_valid.iter().zip(&l.kept.other_records.records)
                    {
                        let Some(id) = id else { continue };
                        if kind == SourceKind::HouseholdRegistration {
                            // a registration row is its ID's holder's own: a resident outside
                            // the caseload with a caseload person's name and birth date
                            if let Some(n) = name
                                .as_deref()
                                .and_then(crate::link::compare::normalise_name)
                            {
                                namesakes.push(scale::Namesake::new(rec.row, id.key(), &n));
                                homonyms.entry(id.key()).or_default().push(n);
                            }
                            continue;
                        }
                        pending.push(crate::link::caseload::BatchRow::other_valid_id(
                            si,
                            kind,
                            rec.clone(),
                            name.clone(),
                            *id,
                        ));
                    }
                    for (row, raw) in &l.kept.repaired {
                        norms.id(
                            At {
                                file: &file,
                                line: prep.line_of(*row),
                                row: Some(*row),
                                column: "id_number",
                            },
                            raw,
                            opts.as_of,
                        );
                    }
                    for n in &prep.normalised {
                        norms.push(
                            At {
                                file: &file,
                                line: Some(n.line),
                                row: Some(n.row),
                                column: &n.column,
                            },
                            &n.kind,
                            n.detail.clone(),
                        );
                    }
                    let parsed = crate::evidence::parsed_columns(kind);
                    l.counts.quarantined = (l.kept.bad.len() + prep.rejected.len()) as u64;
                    l.counts.rows += prep.rejected.len() as u64;
                    l.counts.refused_lines = prep.rejected.len() as u64;
                    l.counts.encoding = prep.encoding.clone();
                    l.counts.line_runs = prep.line_runs();
                    l.counts.delimiter = prep.delimiter;
                    l.counts.header_map = prep
                        .header_map
                        .iter()
                        .filter(|(a, b)| a != b)
                        .cloned()
                        .collect();
                    l.counts.repeated_header_lines = prep.repeated_headers.clone();
                    l.counts.notes = prep.notes.clone();
                    scrub.texts(&mut l.counts.notes);
                    // whether a caseload person's row is in the rules' period (tax year Y,
                    // the income window): if none is, is any row of the file?
                    let mut any_in_period = false;
                    let repeats = repeated_records(kind, &l.kept.records);
                    for ri in 0..l.kept.records.len() {
                        let Some(&pi) = l.kept.records.key(ri).and_then(|k| person_index.get(&k))
                        else {
                            continue;
                        };
                        let (Some(row), Some(values)) =
                            (l.kept.records.row(ri), l.kept.records.values(ri))
                        else {
                            continue;
                        };
                        let p = &mut persons[pi];
                        // Found by the s7 attack: a bank row given twice (two overlapping
                        // exports concatenated) counted its balance twice. A row that repeats
                        // an earlier row of the same person value for value is counted once
                        // and refers the household: whether the department meant two is not
                        // guessed.
                        if let Some(&first) = repeats.get(&(ri as u32)) {
                            l.counts.quarantined += 1;
                            let first_line = l
                                .kept
                                .records
                                .row(first as usize)
                                .and_then(|r| prep.line_of(r));
                            q.push(QuarantineEntry::row_duplicate(
                                &file,
                                prep.line_of(row),
                                row,
                                first_line,
                                kind,
                            ));
                            p.mark_row_unreadable(kind);
                            continue;
                        }
                        match p.evidence.add(kind, &values, &frame, policy) {
                            Ok(in_scope) => {
                                if counted[pi] {
                                    l.counts.linked += 1;
                                } else {
                                    // (another slice's count; rows still add up here)
                                    l.counts.unlinked += 1;
                                }
                                any_in_period |= in_scope;
                                // The values the evidence parsed, when not spelled as §2 says.
                                for &(ci, how) in parsed.iter().filter(|_| in_scope) {
                                    let Some(v) = values.get(ci).copied().flatten() else {
                                        continue;
                                    };
                                    let at = At {
                                        file: &file,
                                        line: prep.line_of(row),
                                        row: Some(row),
                                        column: kind.columns()[ci].name,
                                    };
                                    match how {
                                        crate::evidence::Parsed::Month => norms.date(at, v, true),
                                        crate::evidence::Parsed::Day => norms.date(at, v, false),
                                        crate::evidence::Parsed::Money => norms.money(at, v),
                                        crate::evidence::Parsed::Year => norms.year(at, v),
                                    }
                                }
                                if in_scope {
                                    p.records.push((si as u8, ri as u32));
                                }
                            }
                            Err(fe) => {
                                l.counts.quarantined += 1;
                                if let Some(rec) = l.kept.records.record(ri) {
                                    q.push(QuarantineEntry::evidence_fault(
                                        &file,
                                        prep.line_of(row),
                                        kind,
                                        &rec,
                                        &fe,
                                    ));
                                }
                                p.mark_row_unreadable(kind);
                            }
                        }
                    }
                    // rows = linked + unlinked + quarantined, each counted where it was decided
                    debug_assert_eq!(
                        l.counts.rows,
                        l.counts.linked + l.counts.unlinked + l.counts.quarantined
                    );
                    // Found by the s7 attack: last year's tax extract (every row of 2024 when
                    // Y is 2025) or a social-insurance extract that ends before the income
                    // window was answered: every person had no income of the period, and
                    // families over the line were eligible. An extract with no row at all in
                    // the period the rules read is unverified, never "no income".
                    // The rows in the period are kept in the state: an incremental run tells
                    // from them whether its end state still answers for the period.
                    l.counts.period_rows = if l.counts.rows == 0 {
                        None
                    } else {
                        period_rows(&conn, kind, &frame)
                    };
                    // Found by the session-14 attack: a social-insurance extract holding one
                    // month of the twelve of the window passed (a row was in the period), and
                    // the contribution bases of the other eleven read as none: a family over
                    // the line was eligible. Each month of the window must have a row.
                    let stale = match (&l.counts.period_rows, period_of(kind, &frame)) {
                        (Some(p), Some((_, what))) if !any_in_period && p.rows.is_empty() => {
                            Some(out_of_period_reason(conn.path(), &what))
                        }
                        (Some(p), Some((_, what))) => {
                            let missing = months_missing(kind, &frame, p);
                            (!missing.is_empty())
                                .then(|| months_missing_reason(conn.path(), &what, &missing))
                        }
                        _ => None,
                    };
                    if let Some(reason) = stale {
                        tracing::warn!(source = %kind, reason = "source_out_of_period", see = "summary.json: sources.<source>.reason", "Source not answered; every household says unverified for it.");
                        unverified.push((kind, reason.clone()));
                        sources.insert(
                            kind.name().into(),
                            SourceSummary {
                                status: "unverified",
                                reason: Some(reason.clone()),
                                counts: None,
                                households_unverified: 0,
                                ms: ts.elapsed().as_millis(),
                            },
                        );
                        record_sets.push(l.kept.records);
                        rows_by_age.push(l.rows_by_age);
                        pb.inc(1);
                        check_strict(opts.strict, &q)?;
                        if opts.strict {
                            return Err(strict_source(kind, &reason, "source_out_of_period"));
                        }
                        continue;
                    }
                    // Found by the s7 attack: another county's (or an old) extract links no
                    // one, and every person reads as having no records of it. Whether a
                    // caseload holds none of a sparse source's rows cannot be told from the
                    // file, so this is said, not decided: in the log and summary.json.
                    // (a memory-limited slice leaves it to the merge, which says it for
                    // the whole caseload: a slice of a few households may hold none of a
                    // sparse source's rows, found by the s13 trial)
                    if l.counts.rows > 0
                        && l.counts.linked == 0
                        && l.counts.quarantined == 0
                        && !persons.is_empty()
                        && !sel.is_memory_slice()
                    {
                        say_another_population(kind, &mut l.counts);
                    }
                    sources.insert(
                        kind.name().into(),
                        SourceSummary {
                            status: "answered",
                            reason: None,
                            counts: Some(l.counts),
                            households_unverified: 0,
                            ms: ts.elapsed().as_millis(),
                        },
                    );
                    tracing::debug!(
                        source = %kind,
                        records = l.kept.records.len(),
                        heap_bytes = l.kept.records.heap_bytes(),
                        "Source linked."
                    );
                    record_sets.push(l.kept.records);
                    rows_by_age.push(l.rows_by_age);
                }
            }
            pb.inc(1);
            check_strict(opts.strict, &q)?;
        }
        Ok(())
    })?;
    pb.finish_and_clear();
    timings.insert(
        "sources".to_string(),
        t0.elapsed().as_millis() - timings["caseload"],
    );
    let tl = Instant::now();
    // A row keyed with a resident's valid ID whose registration gives the row's name is that
    // resident's own (a namesake born the same day as a caseload person), not a candidate. On
    // the 30,000-household county all 1,841 rows the scan keeps are such (clean data), and
    // without them the second pass has nothing to do.
    // Without the registration (missing or refused) none is: who holds the ID cannot be told,
    // and the pass would take the row's name away, so that it reaches no person. Left in, such
    // rows cost the pass its whole setup (9.3 s of a 32 s run at 300,000 households over two
    // extracts, found in session 12) for no link.
    let registration = sources
        .get(SourceKind::HouseholdRegistration.name())
        .is_some_and(|s| s.status == "answered");
    pending.retain(|r| {
        if !r.pending.other_valid_id {
            return true;
        }
        if !registration {
            return false;
        }
        let key = r
            .pending
            .raw_id
            .as_deref()
            .and_then(|raw| IdNumber::parse(raw, opts.as_of).ok())
            .map(|(id, _)| id.key());
        let own = key.and_then(|k| homonyms.get(&k)).is_some_and(|ns| {
            r.pending
                .name
                .as_deref()
                .and_then(crate::link::compare::normalise_name)
                .is_some_and(|n| ns.contains(&n))
        });
        !own
    });
    // (a slice holding every household is the full run: said only of a part, the s25 trial)
    if sel.is_slice() && caseload.households.len() < households_in_caseload && !pending.is_empty() {
        // The pass's model (m/u probabilities, holding rates) is measured on the run's own
        // exact links and pending rows: a slice measures it on its own, so its fuzzy links
        // and possible matches can differ from a full run's (found by session 23's attacks:
        // determinations of dirty data differed between a full run and its partitions).
        tracing::warn!(
            rows = pending.len(),
            "This run is a slice of the caseload (--partition, or a --memory-limit slice) and sends source rows to the error-tolerant linkage pass, whose model is fitted on the slice's own links: its fuzzy links and possible matches (and the determinations they decide) can differ from a full run's. Only data whose keys all link exactly gives exactly a full run's slice."
        );
    }
    let fuzzy = crate::link::caseload::apply_batch_pass(
        &caseload,
        &person_index,
        &pending,
        &opts.sources,
        policy.link_thresholds,
        &mut q,
        &crate::link::caseload::OwnRecords {
            persons: &persons,
            sets: &record_sets,
        },
        &rows_by_age,
        opts.as_of,
    );
    let mut linked_rows = std::collections::HashSet::new();
    let decided: std::collections::HashSet<usize> = fuzzy
        .iter()
        .filter_map(|a| a.row.quarantine_index)
        .collect();
    // (the rows and the persons' names looked up once: a search per row made this quadratic
    // in a dirty extract's check-character slips)
    let mut row_of_entry: HashMap<usize, usize> = HashMap::new();
    for (j, r) in pending.iter().enumerate() {
        if let Some(qi) = r.quarantine_index {
            row_of_entry.entry(qi).or_insert(j);
        }
    }
    let wanted: std::collections::HashSet<usize> = check_only.iter().map(|c| c.0).collect();
    let mut name_of: HashMap<usize, Option<&str>> = HashMap::new();
    // (no slip, as in clean extracts: no walk over the caseload)
    if !wanted.is_empty() {
        for (id, name) in caseload
            .members
            .iter()
            .map(|m| (&m.id, &m.name))
            .chain(caseload.supporters.iter().map(|s| (&s.id, &s.name)))
        {
            if let Some(&pi) = id.as_ref().ok().and_then(|id| person_index.get(&id.key()))
                && wanted.contains(&pi)
            {
                name_of.entry(pi).or_insert(name.as_deref());
            }
        }
    }
    for (pi, kind, qi) in check_only {
        let row = row_of_entry.get(&qi).map(|&j| &pending[j]);
        let theirs = name_of.get(&pi).copied().flatten();
        if !decided.contains(&qi) && !crate::link::caseload::another_persons(theirs, row) {
            let p = &mut persons[pi];
            p.mark_near_miss(kind);
        }
    }
    for crate::link::caseload::Applied { link, row, entry } in fuzzy {
        let kind = SourceKind::ALL[row.source];
        let p = &mut persons[link.person];
        let counts = sources.get_mut(kind.name()).and_then(|s| s.counts.as_mut());
        // (a row with another person's valid ID is never a `match`: second_pass caps it; and
        // it is an unlinked row, not a quarantined one)
        if let (crate::link::Decision::Match, Some(qi)) = (link.decision, row.quarantine_index) {
            // used like an exact link; a value that cannot be read leaves the row quarantined
            if let Ok(in_scope) = p.evidence.add(kind, &row.record.values, &frame, policy) {
                if in_scope {
                    let rs = &mut record_sets[row.source];
                    p.records.push((row.source as u8, rs.len() as u32));
                    rs.push_record(&row.record);
                }
                if let Some(c) = counts {
                    if counted[link.person] {
                        c.linked += 1;
                    } else {
                        c.unlinked += 1;
                    }
                    c.quarantined -= 1;
                }
                linked_rows.insert(qi);
                p.links.add(entry);
            }
        } else {
            p.links.add(entry);
        }
    }
    // a linked row is not quarantined any more (its link and weight are in the report)
    q.entries = std::mem::take(&mut q.entries)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !linked_rows.contains(i))
        .map(|(_, e)| e)
        .collect();
    timings.insert("fuzzy_link".to_string(), tl.elapsed().as_millis());

    // ---- assess + report + seal, per household in parallel
    let ta = Instant::now();
    let sealer = RunSealer::new(&opts.signing, &opts.recipients, &run_id)?;
    let (members_of, supporters_of) = caseload.persons_by_household();
    let pb = progress(
        opts.progress,
        caseload.households.len() as u64,
        "households",
    );
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
    // Households are assessed and sealed in parallel, a chunk at a time, and written in
    // caseload order as each chunk completes: memory holds a chunk of reports being written
    // and the next one being made, not all. A thread of its own writes, so that both cores
    // keep making reports while a chunk (~18 MB at 4,096 households) goes to the file.
    let reports_path = opts.out.join("reports.jsonl");
    let file = direct::DirectWriter::create(&reports_path).map_err(write_err(&reports_path))?;
    let mut outcomes = Vec::with_capacity(caseload.households.len());
    let mut report_lens: Vec<u64> = Vec::with_capacity(caseload.households.len());
    let mut report_crcs: Vec<u32> = Vec::with_capacity(caseload.households.len());
    let all: Vec<usize> = (0..caseload.households.len()).collect();
    // `state/`'s linked records and caseload are written beside the assessment, on a thread
    // of their own: they hold none of its outcomes (at 300k households they were ~2 s of the
    // run's end).
    let (write_ms, (state_records, records_ms)) = std::thread::scope(|sc| {
        let records = sc.spawn(|| {
            let t = Instant::now();
            let r = scale::write_state_records(
                opts,
                &caseload,
                &record_sets,
                &near_miss,
                &person_names,
            );
            (r, t.elapsed().as_millis())
        });
        let reports = std::thread::scope(|sc| -> Result<u128, BatchError> {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Vec<u8>>>(1);
            let writer = sc.spawn(|| -> std::io::Result<u128> {
                let mut w = file;
                let mut ms = 0u128;
                for lines in rx {
                    let tw = Instant::now();
                    for line in lines {
                        w.write_all(&line)?;
                        w.write_all(b"\n")?;
                    }
                    ms += tw.elapsed().as_millis();
                }
                w.finish()?;
                Ok(ms)
            });
            for chunk in all.chunks(4096) {
                let (lines, chunk_outcomes) =
                    ctx.sealed_lines(chunk, &members_of, &supporters_of, &sealer, &pb)?;
                report_lens.extend(lines.iter().map(|l| l.len() as u64 + 1));
                report_crcs.par_extend(lines.par_iter().map(|l| line_crc(l)));
                outcomes.extend(chunk_outcomes);
                // a closed channel means the writer failed: its error is taken at the join
                if tx.send(lines).is_err() {
                    break;
                }
            }
            drop(tx);
            // (the writer only panics if the allocator does: the scope passes the panic on)
            writer
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
                .map_err(write_err(&reports_path))
        });
        // (the thread only panics if the allocator does: the scope passes the panic on)
        let records = records
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        reports.map(|ms| (ms, records))
    })?;
    state_records?;
    pb.finish_and_clear();
    // (the reports' write overlaps the assessment: its own time is `reports_write`)
    timings.insert("assess_seal".to_string(), ta.elapsed().as_millis());
    timings.insert("reports_write".to_string(), write_ms);
    timings.insert("state_records".to_string(), records_ms);

    // ---- write
    let tw = Instant::now();
    // The run's own files beside the state (independent files, written side by side).
    let (outputs, state) = rayon::join(
        || -> Result<(), BatchError> {
            let det_path = opts.out.join("determinations.csv");
            write_determinations(&det_path, &outcomes).map_err(write_err(&det_path))?;
            if let Some(prev) = &opts.previous {
                let changes = changes(prev, &outcomes, whole_caseload.as_ref())?;
                let p = opts.out.join("changes.json");
                write_fresh(&p, serde_json::to_vec_pretty(&changes).expect("json"))
                    .map_err(write_err(&p))?;
            }
            let qpath = opts.out.join("quarantine.csv");
            q.write_csv(&qpath).map_err(write_err(&qpath))?;
            let npath = opts.out.join("normalisations.csv");
            norms.write_csv(&npath).map_err(write_err(&npath))
        },
        || {
            scale::write_state(
                opts,
                &sel.prefix,
                &run_id,
                &sources,
                &outcomes,
                &report_lens,
                &report_crcs,
                pending.len() as u64,
                namesakes,
                caseload_digest,
            )
        },
    );
    outputs?;
    state?.seal(&opts.signing)?;
    timings.insert("write".to_string(), tw.elapsed().as_millis());
    timings.insert("total".to_string(), t0.elapsed().as_millis());
    let summary = write_summary(
        opts,
        run_id,
        &caseload,
        &outcomes,
        sources,
        &q,
        timings,
        person_index.len(),
        norms.by_kind(),
        caseload_key_repairs,
    );
    release((
        persons,
        record_sets,
        near_miss,
        person_index,
        members_of,
        supporters_of,
        outcomes,
        caseload,
    ));
    summary
}

/// Counts by determination, rule and source; `summary.json` and `summary.html`.
#[allow(clippy::too_many_arguments)]
fn write_summary(
    opts: &BatchOptions,
    run_id: String,
    caseload: &Caseload,
    outcomes: &[Outcomes],
    sources: BTreeMap<String, SourceSummary>,
    q: &Quarantine,
    timings: BTreeMap<String, u128>,
    persons_queried: usize,
    normalisations: BTreeMap<String, u64>,
    caseload_key_repairs: BTreeMap<String, u64>,
) -> Result<Summary, BatchError> {
    let (summary, by_region) = summarize(
        opts,
        run_id,
        caseload,
        outcomes,
        sources,
        q,
        timings,
        persons_queried,
        normalisations,
        caseload_key_repairs,
    );
    write_summary_files(opts, summary, &by_region)
}

/// Determinations and review counts per region (`"code name"`, as `summary.html` shows them).
type ByRegion = Vec<(String, BTreeMap<String, u64>)>;

/// The run's [`Summary`] (counts by determination, rule and source, the largest gaps) and its
/// counts per region, as [`write_summary`] writes them; nothing is written. (An incremental
/// run counts while its reports are still being copied, then sets the timings.)
#[allow(clippy::too_many_arguments)]
fn summarize(
    opts: &BatchOptions,
    run_id: String,
    caseload: &Caseload,
    outcomes: &[Outcomes],
    mut sources: BTreeMap<String, SourceSummary>,
    q: &Quarantine,
    timings: BTreeMap<String, u128>,
    persons_queried: usize,
    normalisations: BTreeMap<String, u64>,
    caseload_key_repairs: BTreeMap<String, u64>,
) -> (Summary, ByRegion) {
    let policy = &opts.policy;

    // ---- summary
    let mut determination: BTreeMap<String, u64> = ["eligible", "ineligible", "referred"]
        .iter()
        .map(|d| (d.to_string(), 0))
        .collect();
    // Counted by the rules' names as the outcomes hold them, without a string made per
    // household and rule (300,000 households: ~0.25 s of an incremental run's end on one
    // core, allocating and comparing, before); each household counts a rule once, at its
    // most severe outcome.
    let mut counted: HashMap<&str, [u64; 4]> = HashMap::new();
    let mut combined: Vec<(&str, Outcome)> = Vec::new();
    for o in outcomes {
        match determination.get_mut(o.determination.as_str()) {
            Some(n) => *n += 1,
            None => {
                determination.insert(o.determination.as_str().to_string(), 1);
            }
        }
        combined.clear();
        for (rule, out) in &o.fired {
            match combined.iter_mut().find(|(r, _)| *r == rule.as_str()) {
                Some((_, e)) if severity(*out) > severity(*e) => *e = *out,
                Some(_) => {}
                None => combined.push((rule, *out)),
            }
        }
        for &(rule, out) in &combined {
            counted.entry(rule).or_default()[usize::from(severity(out))] += 1;
        }
        for s in &o.unverified_sources {
            if let Some(ss) = sources.get_mut(s) {
                ss.households_unverified += 1;
            }
        }
    }
    let mut rules: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for (rule, n) in counted {
        let by_outcome = rules.entry(rule.to_string()).or_default();
        for out in [
            Outcome::Eligible,
            Outcome::Info,
            Outcome::Referred,
            Outcome::Ineligible,
        ] {
            if n[usize::from(severity(out))] > 0 {
                by_outcome.insert(outcome_name(out).to_string(), n[usize::from(severity(out))]);
            }
        }
    }
    let mut gaps: Vec<(&str, i64)> = outcomes
        .iter()
        .filter_map(|o| {
            o.gap
                .filter(|g| *g > 0)
                .map(|g| (o.household_id.as_str(), g))
        })
        .collect();
    // the 20 largest, largest first (ties by household id): picked, then only they sorted
    let order = |a: &(&str, i64), b: &(&str, i64)| b.1.cmp(&a.1).then(a.0.cmp(b.0));
    if gaps.len() > 20 {
        gaps.select_nth_unstable_by(19, order);
        gaps.truncate(20);
    }
    gaps.sort_by(order);
    let any_unverified = outcomes.iter().any(|o| !o.unverified_sources.is_empty());
    let exit_code = if q.entries.is_empty() && !any_unverified {
        0
    } else {
        1
    };
    let summary = Summary {
        run_id,
        as_of: opts.as_of.to_string(),
        policy: policy.id.clone(),
        households: outcomes.len() as u64,
        determination,
        rules,
        review_due: outcomes.iter().filter(|o| o.review_due).count() as u64,
        declared_gap_top: gaps
            .iter()
            .take(20)
            .map(
                |(h, g)| json!({"household_id": h, "income_gap": crate::domain::Fen(*g).to_yuan()}),
            )
            .collect(),
        sources,
        caseload: {
            let mut c = json!({
                "households_rows": caseload.rows_read[0], "members_rows": caseload.rows_read[1], "supporters_rows": caseload.rows_read[2],
                "households": caseload.households.len(), "members": caseload.members.len(), "supporters": caseload.supporters.len(),
                "persons_queried": persons_queried,
                "key_repairs": caseload_key_repairs,
                "files": caseload.files,
            });
            if let Some(n) = caseload.in_no_region_partition {
                c["households_in_no_region_partition"] = json!(n);
            }
            c
        },
        quarantine: q.by_reason(),
        normalisations,
        timings_ms: timings,
        exit_code,
    };
    let mut by_region: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for (o, hh) in outcomes.iter().zip(&caseload.households) {
        let m = by_region.entry(hh.region_code.clone()).or_default();
        *m.entry(o.determination.as_str().to_string()).or_insert(0) += 1;
        *m.entry("review_due".to_string()).or_insert(0) += u64::from(o.review_due);
    }
    // A code that is not one is shown as none, never as written: a shifted column put ID
    // numbers and names there, which the dashboard printed (session 17's attack). Such
    // households are one row; quarantine.csv names each, masked.
    let mut invalid: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_region: ByRegion = by_region
        .into_iter()
        .filter_map(|(code, m)| match crate::domain::RegionCode::parse(&code) {
            Ok(r) => Some((format!("{code} {}", r.name()), m)),
            // six digits outside the table (`region_not_in_policy` or unknown): no person's
            Err(_) if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) => {
                Some((code, m))
            }
            Err(_) => {
                for (k, n) in m {
                    *invalid.entry(k).or_insert(0) += n;
                }
                None
            }
        })
        .collect();
    if !invalid.is_empty() {
        by_region.push((INVALID_REGION_LABEL.to_string(), invalid));
    }
    (summary, by_region)
}

/// The dashboard's row of the households whose region code is not six digits (their codes
/// are not shown: see [`summarize`]).
pub(crate) const INVALID_REGION_LABEL: &str =
    "(region code not six digits: see quarantine.csv, region_code_invalid)";

/// `summary.json` and `summary.html` of `summary` and its counts per region.
///
/// # Errors
/// [`BatchError::Write`] when either file cannot be written.
fn write_summary_files(
    opts: &BatchOptions,
    summary: Summary,
    by_region: &ByRegion,
) -> Result<Summary, BatchError> {
    let spath = opts.out.join("summary.json");
    write_fresh(&spath, serde_json::to_vec_pretty(&summary).expect("json"))
        .map_err(write_err(&spath))?;
    let hpath = opts.out.join("summary.html");
    let page = crate::render::summary_html(
        &serde_json::to_value(&summary).expect("json"),
        by_region,
        &crate::render::Texts::zh(),
    );
    write_fresh(&hpath, page).map_err(write_err(&hpath))?;
    Ok(summary)
}

/// Says (in the log and as a note of `counts`) that none of a source's rows names a caseload
/// person: every person reads as having no records of it, which an extract of another region
/// or period would also give. Said, not decided: whether a caseload holds none of a sparse
/// source's rows cannot be told from the file.
pub(crate) fn say_another_population(kind: SourceKind, counts: &mut FileCounts) {
    tracing::warn!(source = %kind, rows = counts.rows, "No row of the extract is a caseload person's: an extract of another population?");
    counts.notes.push(format!(
        "none of the {} rows names a caseload person: every person reads as having no {} records; if the extract is of another region or period, it does not answer for this caseload",
        counts.rows,
        kind.name()
    ));
}

/// One batch per output directory at a time: the lock file `.hedui-batch.lock` held with an
/// exclusive `flock(2)` for the run's length (its text, `pid N` and `host H`, says whose),
/// removed when the run ends (also on error). The kernel ends the lock with its process, so a
/// run that is gone (killed, the machine restarted) never holds a folder: its file is taken
/// over with a warning naming its pid. Found by session 21's attack: the earlier scheme (the
/// file created exclusively, a dead pid's file removed and created again) let two runs that
/// found the same dead pid's file both take the folder, one removing the other's working files.
struct OutputLock {
    path: PathBuf,
    /// the open, locked file (closing it ends the lock)
    _file: std::fs::File,
}

/// This machine's host name (Linux: `/proc/sys/kernel/hostname`), empty when unknown.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

impl OutputLock {
    fn take(out: &Path) -> Result<OutputLock, BatchError> {
        use std::io::{Read, Seek};
        use std::os::unix::fs::MetadataExt;
        let path = out.join(".hedui-batch.lock");
        let failed = |cause: std::io::Error| BatchError::Write {
            path: path.display().to_string(),
            cause,
        };
        // A run that ends removes the file while it holds the lock: a file opened before that
        // and locked after is no longer the lock, and is opened again.
        for _ in 0..100 {
            // Never written through a link (session 21's second attack: a symbolic or hard link
            // at the lock's name had the file it names overwritten): a lock file is a plain
            // file of one link, anything else there is removed (a link, never its target) and
            // the file opened without following a link.
            // (a folder at its name is not removed: opening it fails, naming the lock)
            if let Ok(m) = std::fs::symlink_metadata(&path)
                && !m.is_dir()
                && (!m.file_type().is_file() || m.nlink() != 1)
            {
                remove_if_present(&path).map_err(failed)?;
            }
            let mut file = {
                use std::os::unix::fs::OpenOptionsExt;
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&path)
                    .map_err(failed)?
            };
            match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {}
                Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                    return Err(BatchError::Locked {
                        path: out.display().to_string(),
                        lock: path.display().to_string(),
                    });
                }
                Err(e) => return Err(failed(e.into())),
            }
            let held = file.metadata().map_err(failed)?;
            match std::fs::symlink_metadata(&path) {
                Ok(m) if m.dev() == held.dev() && m.ino() == held.ino() && held.nlink() == 1 => {}
                _ => continue,
            }
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            if let Some(pid) = text.lines().find_map(|l| l.strip_prefix("pid ")) {
                tracing::warn!(pid = pid.trim(), lock = %path.display(), "The output folder's lock was left by a run that is gone (its lock ended with its process): taken over.");
            }
            file.set_len(0).map_err(failed)?;
            file.seek(std::io::SeekFrom::Start(0)).map_err(failed)?;
            writeln!(file, "pid {}\nhost {}", std::process::id(), host_name()).map_err(failed)?;
            return Ok(OutputLock { path, _file: file });
        }
        Err(BatchError::Locked {
            path: out.display().to_string(),
            lock: path.display().to_string(),
        })
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        // removed while still locked: the lock ends when the file closes, after this
        let _ = std::fs::remove_file(&self.path);
    }
}

/// With `--strict`, the first quarantined row stops the run with its message.
fn check_strict(strict: bool, q: &Quarantine) -> Result<(), BatchError> {
    match (strict, q.entries.first()) {
        (true, Some(e)) => Err(BatchError::Strict {
            file: e.file.clone(),
            line: e.line.map_or("-".into(), |l| l.to_string()),
            row: e.row.map_or("-".into(), |r| r.to_string()),
            column: e.column.clone(),
            reason: e.reason.clone(),
            message: e.message.clone(),
        }),
        _ => Ok(()),
    }
}

/// `--strict`: the error for a source whose extract was refused whole (`reason`: why, naming
/// the file; `code`: `source_unreadable`, `source_missing_columns`, `source_out_of_period`).
/// Found by the session-14 attack: a strict run went on and wrote every report with the source
/// unverified, where a refused row would have stopped it.
fn strict_source(kind: SourceKind, reason: &str, code: &str) -> BatchError {
    let detail = reason.strip_prefix(&format!("{code}: ")).unwrap_or(reason);
    BatchError::StrictSource {
        source_name: kind.name().to_string(),
        reason: code.to_string(),
        message: detail.to_string(),
    }
}

fn severity(o: Outcome) -> u8 {
    match o {
        Outcome::Ineligible => 3,
        Outcome::Referred => 2,
        Outcome::Info => 1,
        Outcome::Eligible => 0,
    }
}

fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Eligible => "eligible",
        Outcome::Ineligible => "ineligible",
        Outcome::Referred => "referred",
        Outcome::Info => "info",
    }
}

struct Outcomes {
    /// Per-capita monthly income and financial assets (yuan) as the report shows them.
    per_capita: [Option<String>; 2],
    household_id: String,
    determination: Determination,
    fired: Vec<(String, Outcome)>,
    review_due: bool,
    gap: Option<i64>,
    unverified_sources: Vec<String>,
}

fn fired_rules(o: &Outcomes) -> String {
    let mut v: Vec<String> = o
        .fired
        .iter()
        .filter(|(r, out)| {
            !(matches!(r.as_str(), "income" | "financial_assets") && *out == Outcome::Eligible)
        })
        .map(|(r, out)| format!("{r}:{}", outcome_name(*out)))
        .collect();
    v.sort();
    v.dedup();
    v.join(";")
}

/// Write `determinations.csv`: `household_id,determination,rules` and one line per outcome
/// (rules as [`fired_rules`]), CSV-quoted where a household id needs it.
fn write_determinations(path: &Path, outcomes: &[Outcomes]) -> std::io::Result<()> {
    remove_if_present(path)?;
    let mut w = csv::Writer::from_path(path)?;
    w.write_record(["household_id", "determination", "rules"])?;
    for o in outcomes {
        w.write_record([
            o.household_id.as_str(),
            o.determination.as_str(),
            &fired_rules(o),
        ])?;
    }
    w.flush()
}

/// `changes.json` against the previous run at `prev`: the households of `outcomes` whose
/// determination flipped, the new ones, and the previous run's households that are gone
/// (`caseload`: every household id of this run's caseload, when the run covers a slice of it
/// (`--partition`): a household of another slice is not gone; found by session 16's attack,
/// a partition run against a full run counted every other partition's household as gone).
fn changes(
    prev: &Path,
    outcomes: &[Outcomes],
    caseload: Option<&HashSet<String>>,
) -> Result<serde_json::Value, BatchError> {
    let path = prev.join("determinations.csv");
    let err = |m: String| BatchError::Previous {
        path: prev.display().to_string(),
        message: m,
    };
    let mut r =
        csv::Reader::from_path(&path).map_err(|e| err(format!("determinations.csv: {e}")))?;
    let mut before: HashMap<String, (String, String)> = HashMap::new();
    for row in r.records() {
        let row = row.map_err(|e| err(format!("determinations.csv: {e}")))?;
        before.insert(
            row.get(0).unwrap_or("").to_string(),
            (
                row.get(1).unwrap_or("").to_string(),
                row.get(2).unwrap_or("").to_string(),
            ),
        );
    }
    let mut flipped = Vec::new();
    let mut new = 0;
    for o in outcomes {
        match before.get(&o.household_id) {
            None => new += 1,
            Some((d, rules)) if d != o.determination.as_str() => {
                let now = fired_rules(o);
                let a: std::collections::BTreeSet<&str> =
                    rules.split(';').filter(|s| !s.is_empty()).collect();
                let b: std::collections::BTreeSet<&str> =
                    now.split(';').filter(|s| !s.is_empty()).collect();
                flipped.push(json!({
                    "household_id": o.household_id, "before": d, "after": o.determination.as_str(),
                    "rules_added": b.difference(&a).collect::<Vec<_>>(), "rules_removed": a.difference(&b).collect::<Vec<_>>(),
                }));
            }
            Some(_) => {}
        }
    }
    let ids: std::collections::HashSet<&str> =
        outcomes.iter().map(|o| o.household_id.as_str()).collect();
    let gone = before
        .keys()
        .filter(|k| !ids.contains(k.as_str()) && caseload.is_none_or(|c| !c.contains(*k)))
        .count();
    Ok(
        json!({"previous": prev.display().to_string(), "flipped": flipped, "households_new": new, "households_gone": gone}),
    )
}

struct Ctx<'a> {
    caseload: &'a Caseload,
    persons: &'a [PersonState],
    person_index: &'a crate::link::caseload::PersonIndex,
    record_sets: &'a dyn crate::records::RecordLookup,
    unverified: &'a [(SourceKind, String)],
    policy: &'a Policy,
    run_id: &'a str,
    as_of: NaiveDate,
}

impl Ctx<'_> {
    fn state(&self, id: &Result<IdNumber, String>, consent: bool) -> Option<&PersonState> {
        if !consent {
            return None;
        }
        id.as_ref()
            .ok()
            .and_then(|id| self.person_index.get(&id.key()))
            .map(|&i| &self.persons[i])
    }

    fn report(
        &self,
        h: usize,
        members: &[usize],
        supporters: &[usize],
    ) -> (VerificationReport, Option<i64>) {
        let ms: Vec<&Member> = members.iter().map(|&i| &self.caseload.members[i]).collect();
        let ss: Vec<&Supporter> = supporters
            .iter()
            .map(|&i| &self.caseload.supporters[i])
            .collect();
        let states: Vec<Option<&PersonState>> = ms
            .iter()
            .map(|m| self.state(&m.id, m.consent))
            .chain(ss.iter().map(|s| self.state(&s.id, s.consent)))
            .collect();
        crate::verify::build_report(&ReportInput {
            household: &self.caseload.households[h],
            members: &ms,
            supporters: &ss,
            states: &states,
            record_sets: self.record_sets,
            unverified: self.unverified,
            ages_s: &[],
            policy: self.policy,
            run_id: self.run_id,
            as_of: self.as_of,
        })
    }

    /// Assess, build and seal household `h`: its envelope, still to be signed with others by
    /// [`signed_lines`], and what the run keeps of it. The one way every run (full, slice,
    /// incremental) makes a report.
    ///
    /// # Errors
    /// [`BatchError::Seal`].
    fn unsigned_report(
        &self,
        h: usize,
        members: &[usize],
        supporters: &[usize],
        sealer: &RunSealer,
    ) -> Result<(UnsignedReport, Outcomes), BatchError> {
        let (report, gap) = self.report(h, members, supporters);
        // (room for a report of a large household: the buffer is not regrown as it fills)
        let mut text = Vec::with_capacity(16 << 10);
        serde_json::to_writer(&mut text, &report).expect("reports serialise");
        let sealed = sealer.seal_unsigned(&report.report_id, &text)?;
        let outcomes = Outcomes {
            per_capita: [
                report.per_capita_monthly_income.clone(),
                report.per_capita_financial_assets.clone(),
            ],
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
            household_id: report.household_id,
        };
        Ok((sealed, outcomes))
    }
}

impl Ctx<'_> {
    /// Households `chunk` assessed, built and sealed in parallel ([`Ctx::unsigned_report`]),
    /// then signed ([`signed_lines`]): their envelope lines and outcomes, in `chunk`'s order.
    /// `pb` counts each household.
    ///
    /// # Errors
    /// The first [`BatchError::Seal`].
    pub(crate) fn sealed_lines(
        &self,
        chunk: &[usize],
        members_of: &[Vec<usize>],
        supporters_of: &[Vec<usize>],
        sealer: &RunSealer,
        pb: &ProgressBar,
    ) -> Result<(Vec<Vec<u8>>, Vec<Outcomes>), BatchError> {
        let made: Vec<Result<(UnsignedReport, Outcomes), BatchError>> = chunk
            .par_iter()
            .map(|&h| {
                pb.inc(1);
                self.unsigned_report(h, &members_of[h], &supporters_of[h], sealer)
            })
            .collect();
        let (unsigned, outcomes): (Vec<_>, Vec<_>) = made
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .unzip();
        Ok((signed_lines(sealer, unsigned), outcomes))
    }
}

/// CRC-32 of a report line as `reports.jsonl` holds it (the line and its `\n`): kept per
/// household in `state/households.bin`, so that an incremental run checks each line it copies.
pub(crate) fn line_crc(line: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(line);
    h.update(b"\n");
    h.finalize()
}

/// Signs `unsigned` envelopes [`BATCH_LEAVES`] at a time (one Ed25519 signature per batch,
/// in parallel) and serialises them: one JSON line (no newline) per envelope, in the order
/// given.
fn signed_lines(sealer: &RunSealer, unsigned: Vec<UnsignedReport>) -> Vec<Vec<u8>> {
    let mut batches: Vec<Vec<UnsignedReport>> = Vec::new();
    let mut it = unsigned.into_iter().peekable();
    while it.peek().is_some() {
        batches.push(it.by_ref().take(BATCH_LEAVES).collect());
    }
    batches
        .into_par_iter()
        .flat_map_iter(|b| sealer.sign_batch(b).into_iter().map(|e| e.to_json_bytes()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::same_bytes;

    /// Outputs go in place by rename: an earlier run's outputs this run does not write go, a
    /// folder of the user's stays, a link in `--out` is replaced (its target left as it was),
    /// and the new `state` holds the new manifest.
    #[test]
    fn outputs_are_put_in_place_and_the_earlier_run_leaves_nothing_behind() {
        let dir = tempfile::tempdir().expect("tmp");
        let (out, staging) = (dir.path().join("out"), dir.path().join("out/.staging"));
        let elsewhere = dir.path().join("elsewhere.jsonl");
        std::fs::write(&elsewhere, b"another run's").expect("write");
        std::fs::create_dir_all(out.join("state")).expect("mkdir");
        for (name, text) in [
            ("changes.json", "old changes"),
            ("summary.json", "old summary"),
            ("state/manifest.json", "old manifest"),
            ("state/linked.bin", "old records"),
            ("notes.txt", "the clerk's"),
        ] {
            std::fs::write(out.join(name), text).expect("write");
        }
        std::os::unix::fs::symlink(&elsewhere, out.join("reports.jsonl")).expect("link");
        std::fs::create_dir_all(staging.join("state")).expect("mkdir");
        for (name, text) in [
            ("reports.jsonl", "new reports"),
            ("summary.json", "new summary"),
            ("state/manifest.json", "new manifest"),
            (".hedui-batch.lock", "pid 1"),
        ] {
            std::fs::write(staging.join(name), text).expect("write");
        }
        super::put_in_place(&staging, &out).expect("in place");
        let read = |n: &str| std::fs::read_to_string(out.join(n)).ok();
        assert_eq!(read("reports.jsonl").as_deref(), Some("new reports"));
        assert!(!out.join("reports.jsonl").is_symlink());
        assert_eq!(std::fs::read(&elsewhere).expect("read"), b"another run's");
        assert_eq!(read("summary.json").as_deref(), Some("new summary"));
        assert_eq!(read("state/manifest.json").as_deref(), Some("new manifest"));
        assert_eq!(read("state/linked.bin"), None);
        assert_eq!(read("changes.json"), None);
        assert_eq!(read("notes.txt").as_deref(), Some("the clerk's"));
        assert_eq!(read(".hedui-batch.lock"), None);
        assert!(!out.join(super::REPLACED_DIR).exists());
    }

    /// One lock per output folder while its holder lives; a file left behind (a run that is
    /// gone) locks nothing and is taken over; the file goes when the holder ends.
    #[test]
    fn an_output_folder_is_locked_while_its_run_holds_it() {
        let dir = tempfile::tempdir().expect("tmp");
        let first = super::OutputLock::take(dir.path()).expect("free");
        assert!(matches!(
            super::OutputLock::take(dir.path()),
            Err(super::BatchError::Locked { .. })
        ));
        let text = std::fs::read_to_string(dir.path().join(".hedui-batch.lock")).expect("read");
        assert!(
            text.starts_with(&format!("pid {}\n", std::process::id())),
            "{text}"
        );
        drop(first);
        assert!(!dir.path().join(".hedui-batch.lock").exists());
        std::fs::write(dir.path().join(".hedui-batch.lock"), "pid 4000000000\n").expect("write");
        let second = super::OutputLock::take(dir.path()).expect("a gone run's file");
        assert!(matches!(
            super::OutputLock::take(dir.path()),
            Err(super::BatchError::Locked { .. })
        ));
        drop(second);
        // a link at the lock's name: replaced, the file it names left as it was
        let victim = dir.path().join("victim");
        for hard in [false, true] {
            std::fs::write(&victim, "the clerk's").expect("write");
            let lock = dir.path().join(".hedui-batch.lock");
            if hard {
                std::fs::hard_link(&victim, &lock).expect("link");
            } else {
                std::os::unix::fs::symlink(&victim, &lock).expect("link");
            }
            let held = super::OutputLock::take(dir.path()).expect("taken");
            assert!(!lock.is_symlink());
            drop(held);
            assert_eq!(
                std::fs::read_to_string(&victim).expect("read"),
                "the clerk's"
            );
        }
    }

    /// A `state` in `--out` that links to another run's is moved as a link: the other run's
    /// state stays whole (session 21's attack: its manifest was removed through the link).
    #[test]
    fn a_linked_state_is_replaced_never_followed() {
        let dir = tempfile::tempdir().expect("tmp");
        let (out, staging, other) = (
            dir.path().join("out"),
            dir.path().join("out/.staging"),
            dir.path().join("other"),
        );
        std::fs::create_dir_all(other.join("state")).expect("mkdir");
        std::fs::write(other.join("state/manifest.json"), "other's").expect("write");
        std::fs::create_dir_all(&out).expect("mkdir");
        std::os::unix::fs::symlink(other.join("state"), out.join("state")).expect("link");
        std::fs::create_dir_all(staging.join("state")).expect("mkdir");
        std::fs::write(staging.join("state/manifest.json"), "new").expect("write");
        super::put_in_place(&staging, &out).expect("in place");
        assert_eq!(
            std::fs::read_to_string(other.join("state/manifest.json")).expect("read"),
            "other's"
        );
        assert!(!out.join("state").is_symlink());
        assert_eq!(
            std::fs::read_to_string(out.join("state/manifest.json")).expect("read"),
            "new"
        );
    }

    /// A rename that fails while the outputs are put in place (the earlier run's moved out, or
    /// this run's moved in) leaves `--out` as it was, with the error.
    #[test]
    fn a_failed_move_leaves_the_earlier_outputs_in_place() {
        for fail_at in ["summary.html", "state"] {
            for moving_in in [false, true] {
                let dir = tempfile::tempdir().expect("tmp");
                let (out, staging) = (dir.path().join("out"), dir.path().join("out/.staging"));
                for d in [&out, &staging] {
                    std::fs::create_dir_all(d.join("state")).expect("mkdir");
                    for name in ["reports.jsonl", "summary.html", "state/manifest.json"] {
                        std::fs::write(d.join(name), format!("{} {name}", d.display()))
                            .expect("write");
                    }
                }
                std::fs::write(out.join("changes.json"), "old changes").expect("write");
                let was = |name: &str| format!("{} {name}", out.display());
                let err = super::put_in_place_by(&staging, &out, |from, to| {
                    let (src, name) = if moving_in {
                        (&staging, to)
                    } else {
                        (&out, from)
                    };
                    if from.starts_with(src) && name.ends_with(fail_at) {
                        return Err(std::io::Error::other("refused"));
                    }
                    std::fs::rename(from, to)
                })
                .expect_err("refused");
                assert!(err.to_string().contains(fail_at), "{err}");
                for name in ["reports.jsonl", "summary.html", "state/manifest.json"] {
                    assert_eq!(
                        std::fs::read_to_string(out.join(name)).expect("read"),
                        was(name),
                        "{fail_at} {moving_in} {name}"
                    );
                }
                assert_eq!(
                    std::fs::read_to_string(out.join("changes.json")).expect("read"),
                    "old changes"
                );
                assert!(!out.join(super::REPLACED_DIR).exists());
            }
        }
    }

    #[test]
    fn an_id_number_inside_a_note_is_found_and_a_plain_one_is_left_to_its_parse() {
        fn runs(v: &str) -> Vec<String> {
            super::embedded_id_numbers(v)
        }
        assert_eq!(
            runs("备注：620503199410116704 王梅敏 账户已销户"),
            vec!["620503199410116704"]
        );
        assert_eq!(runs("见62050319870315123x号"), vec!["62050319870315123x"]);
        assert_eq!(runs("旧证620503480612031"), vec!["620503480612031"]);
        // a plain number, too short or too long a run: none
        assert!(runs(" 620503199410116704 ").is_empty());
        assert!(runs("编号6205031994101167041").is_empty());
        assert!(runs("账户已销户").is_empty());
        // full-width digits, groups split by spaces or hyphens
        for note in [
            "备注：６２０５０３１９９４１０１１６７０４ 已核实",
            "620503 19941011 6704 备注",
            "620503-19941011-6704 已核实",
        ] {
            assert_eq!(runs(note), vec!["620503199410116704"], "{note}");
        }
        // the number alone, grouped by separators its parse refuses (session 28's attack:
        // the row was quarantined, the member's household not referred)
        for cell in [
            "620503－19941011－6704",
            "620503.19941011.6704",
            "620503/19941011/6704",
            "620503_19941011_6704",
            "620503\u{a0}19941011\u{a0}6704",
            "620503\u{200b}199410116704",
        ] {
            assert_eq!(runs(cell), vec!["620503199410116704"], "{cell}");
        }
    }

    /// Found by the session-15 attack: a one-household county's social insurance held rows of
    /// one month only, and the month check made it unverified. Months are checked only with
    /// at least 240 rows in the period (every one of them known, or more than 256 seen).
    #[test]
    fn months_are_checked_only_in_an_extract_with_enough_rows_in_the_period() {
        use super::{MonthRows, PeriodRows, months_missing};
        let policy = crate::assess::Policy::bundled();
        let frame = crate::evidence::Frame::new(
            chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            &policy,
        );
        let kind = hedui_connectors::SourceKind::SocialInsurance;
        let with = |rows: usize, complete: bool| {
            let mut months = vec![
                MonthRows {
                    rows: vec![1],
                    complete: false
                };
                12
            ];
            months[4] = MonthRows {
                rows: Vec::new(),
                complete: true,
            };
            PeriodRows {
                rows: (0..rows as u64).collect(),
                complete,
                months,
            }
        };
        assert!(months_missing(kind, &frame, &with(239, true)).is_empty());
        assert_eq!(
            months_missing(kind, &frame, &with(240, true)),
            vec!["2026-03"]
        );
        assert_eq!(
            months_missing(kind, &frame, &with(256, false)),
            vec!["2026-03"]
        );
        // other sources keep no months
        let tax = hedui_connectors::SourceKind::Tax;
        assert!(months_missing(tax, &frame, &with(256, false)).is_empty());
    }

    /// A Parquet extract linked a few row groups at a time keeps what one scan keeps: the
    /// caseload persons' records (row, key, values) in the file's order, the invalid and the
    /// repaired keys, and the same counts.
    #[test]
    fn an_extract_linked_by_row_group_ranges_keeps_what_one_scan_keeps() {
        use polars::prelude::*;
        let d = tempfile::tempdir().unwrap();
        let id = |i: u64| {
            let body = format!("62050319{:02}0101{:03}", 50 + i % 40, i % 1000);
            let b: [u8; 17] = body.as_bytes().try_into().unwrap();
            format!(
                "{body}{}",
                crate::domain::id_number::check_character(&b) as char
            )
        };
        let n = 12_000u64;
        let mut ids = Vec::new();
        for i in 0..n {
            ids.push(match i % 97 {
                5 => "6.20503E+17".to_string(),
                11 => format!(" {} ", id(i / 3)),
                _ => id(i / 3),
            });
        }
        let col_of = |name: &str, v: Vec<String>| Column::new(name.into(), v);
        let mut df = DataFrame::new(
            n as usize,
            vec![
                col_of("id_number", ids),
                col_of("name", (0..n).map(|i| format!("名{}", i / 3)).collect()),
                col_of("institution_code", vec!["B1".into(); n as usize]),
                col_of(
                    "account_no_masked",
                    (0..n).map(|i| format!("6222****{i:04}")).collect(),
                ),
                col_of("product", vec!["current".into(); n as usize]),
                col_of("balance", (0..n).map(|i| format!("{i}.25")).collect()),
                col_of("as_of_date", vec!["2026-10-30".into(); n as usize]),
            ],
        )
        .unwrap();
        let f = std::fs::File::create(d.path().join("bank.parquet")).unwrap();
        ParquetWriter::new(f)
            .with_row_group_size(Some(1000))
            .finish(&mut df)
            .unwrap();
        let conn =
            hedui_connectors::FileConnector::locate(d.path(), hedui_connectors::SourceKind::Bank)
                .unwrap();
        assert!(conn.parquet_row_ranges(1).unwrap().len() > 3);
        // every fifth person of the file is a caseload person
        let persons = Arc::new(crate::link::caseload::PersonKeys::new(
            (0..n / 3).step_by(5).map(|i| {
                let full = id(i);
                full[..17].parse::<u64>().unwrap()
            }),
        ));
        let as_of = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        let whole = super::link_source(&conn, &persons, None, as_of, u64::MAX).unwrap();
        let ranged = super::link_source(&conn, &persons, None, as_of, 1).unwrap();
        let records = |l: &super::LinkedSource| -> Vec<(u64, u64, Vec<Option<String>>)> {
            let r = &l.kept.records;
            (0..r.len())
                .map(|i| {
                    (
                        r.row(i).unwrap(),
                        r.key(i).unwrap(),
                        r.values(i)
                            .unwrap()
                            .iter()
                            .map(|v| v.map(str::to_string))
                            .collect(),
                    )
                })
                .collect()
        };
        let (a, b) = (records(&whole), records(&ranged));
        // 1 in 5 persons, 3 rows each, less the 2 in 97 rows with other keys
        assert!(a.len() > 2_300 && a.len() < 2_450, "{}", a.len());
        assert_eq!(a, b);
        assert!(a.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(whole.kept.bad, ranged.kept.bad);
        assert_eq!(whole.kept.bad.len(), 124);
        assert_eq!(whole.kept.repaired, ranged.kept.repaired);
        assert!(!whole.kept.repaired.is_empty());
        assert_eq!(
            serde_json::to_value(&whole.counts).unwrap(),
            serde_json::to_value(&ranged.counts).unwrap()
        );
        assert_eq!(whole.counts.rows, n);
    }

    #[test]
    fn same_bytes_is_equality_at_every_length_and_every_differing_byte() {
        for n in 0..40usize {
            let a: Vec<u8> = (0..n).map(|i| (i * 31 + 7) as u8).collect();
            assert!(same_bytes(&a, &a.clone()), "length {n}");
            for i in 0..n {
                let mut b = a.clone();
                b[i] ^= 0x20;
                assert!(!same_bytes(&a, &b), "length {n}, byte {i}");
            }
            // a prefix, or one byte more, is not equal
            if n > 0 {
                assert!(!same_bytes(&a, &a[..n - 1]));
            }
            let mut longer = a.clone();
            longer.push(0);
            assert!(!same_bytes(&a, &longer));
        }
    }
}
