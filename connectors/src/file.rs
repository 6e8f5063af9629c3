//! The file transport: a source's extract on disk, DESIGN.md §2.
//!
//! An extract is first read by the front-end ([`crate::read::prepare`]): whatever the
//! department sent (CSV/TSV in UTF-8, GBK/GB18030 or UTF-16, a workbook, JSON lines,
//! Parquet) becomes a file polars can scan with canonical column names, or is refused with
//! an error a clerk can act on. Reading is then lazy (a polars plan) so that a batch scans
//! each file once, streaming, and only the rows of caseload persons are materialised. Text
//! is read with every column as text, so ID numbers stay strings and money stays exact until
//! hedui's own parsers read it; Parquet keeps its types (decimal money, dates) and is turned
//! into text the same way. Columns are checked by name before any row is read.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use polars::prelude::*;

use crate::read::{Prepared, prepare, scan_prepared};
use crate::{Connector, ConnectorError, Record, RecordSet, SourceKind, SourceOutcome};

/// The on-disk format of an extract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// Delimited text with a header row (`.csv`, `.tsv`, `.txt`; delimiter and encoding
    /// detected by [`crate::read`]). A prepared file is always comma-separated UTF-8.
    Csv,
    /// Apache Parquet.
    Parquet,
    /// A workbook (`.xlsx`, `.xlsm`, `.xls`): the first sheet is read.
    Workbook,
    /// JSON lines (`.jsonl`, `.ndjson`): one object per line.
    JsonLines,
}

impl FileFormat {
    /// The usual file extension (also the format's name in the summary).
    pub fn extension(self) -> &'static str {
        match self {
            FileFormat::Csv => "csv",
            FileFormat::Parquet => "parquet",
            FileFormat::Workbook => "xlsx",
            FileFormat::JsonLines => "jsonl",
        }
    }
}

/// The extensions `locate` looks for, in order: Parquet first (as the reference does),
/// then CSV, then the others.
pub const EXTENSIONS: [(&str, FileFormat); 9] = [
    ("parquet", FileFormat::Parquet),
    ("csv", FileFormat::Csv),
    ("tsv", FileFormat::Csv),
    ("txt", FileFormat::Csv),
    ("xlsx", FileFormat::Workbook),
    ("xlsm", FileFormat::Workbook),
    ("xls", FileFormat::Workbook),
    ("jsonl", FileFormat::JsonLines),
    ("ndjson", FileFormat::JsonLines),
];

/// Find `<stem>.<ext>` in `dir` for the [`EXTENSIONS`] in order (lower- or upper-case
/// extension). The format is the extension's; [`crate::read::prepare`] checks the content.
pub fn locate(dir: &Path, stem: &str) -> Option<(PathBuf, FileFormat)> {
    EXTENSIONS.into_iter().find_map(|(ext, f)| {
        [ext.to_string(), ext.to_ascii_uppercase()]
            .into_iter()
            .find_map(|e| {
                let p = dir.join(format!("{stem}.{e}"));
                p.is_file().then_some((p, f))
            })
    })
}

/// The other files of `stem` in `dir` that [`locate`] passed over for `chosen` (file names):
/// an extract given twice (`bank.csv` and `bank.tsv`) is read once, and the others are named.
pub fn passed_over(dir: &Path, stem: &str, chosen: &Path) -> Vec<String> {
    let same = |p: &Path| std::fs::canonicalize(p).ok() == std::fs::canonicalize(chosen).ok();
    let mut out: Vec<String> = Vec::new();
    for (ext, _) in EXTENSIONS {
        for e in [ext.to_string(), ext.to_ascii_uppercase()] {
            let name = format!("{stem}.{e}");
            let p = dir.join(&name);
            if p.is_file() && !same(&p) && !out.contains(&name) {
                out.push(name);
            }
        }
    }
    out
}

fn expected(dir: &Path, stem: &str) -> String {
    let exts: Vec<&str> = EXTENSIONS.iter().map(|(e, _)| *e).collect();
    format!("{}/{stem}.{{{}}}", dir.display(), exts.join(",")) + &instead(dir, stem)
}

/// `; in the folder instead: …` ([`near_misses`]) for a "looked for" message, or empty.
pub fn instead(dir: &Path, stem: &str) -> String {
    let near = near_misses(dir, stem);
    if near.is_empty() {
        String::new()
    } else {
        format!("; in the folder instead: {}", near.join(", "))
    }
}

/// What in `dir` looks like the file of `stem` and is not read as it (found by session 24's
/// attack: a folder, a link to nothing or a FIFO named `bank.csv`, and `BANK.CSV`, were all
/// "no file for bank"): entries named `stem.…` in any case, each with why it is not read.
/// A name is shown with its parts after the stem only when they are short ASCII words
/// (`bank.csv.gz`), any other part as `…` (`bank.….csv`: a file may be named after a person or
/// by an ID number). Sorted; at most 5.
pub fn near_misses(dir: &Path, stem: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            // (compared character by character: a lower-cased name may be shorter in bytes,
            // `K` U+212A is `k`, so no byte offset of one is cut in the other)
            let mut chars = name.chars();
            let same_stem = stem.chars().all(|c| {
                chars
                    .next()
                    .is_some_and(|n| n.to_lowercase().eq(c.to_lowercase()))
            });
            if !same_stem || chars.next() != Some('.') {
                return None;
            }
            let ext: String = chars.collect();
            let known = EXTENSIONS.iter().any(|(x, _)| ext.eq_ignore_ascii_case(x));
            let located = name.starts_with(stem)
                && EXTENSIONS
                    .iter()
                    .any(|(x, _)| ext == *x || ext == x.to_ascii_uppercase());
            let path = e.path();
            let why = match (std::fs::metadata(&path), std::fs::symlink_metadata(&path)) {
                (Err(_), Ok(l)) if l.file_type().is_symlink() => "a link to nothing",
                (Ok(m), _) if m.is_dir() => "a folder, not a file",
                (Ok(m), _) if !m.is_file() => "not a regular file: a FIFO, socket or device",
                (Err(_), _) => "cannot be read",
                (Ok(_), _) if !known => "an extension hedui does not read: unpack or rename it",
                (Ok(_), _) if !located => "the name differs in case: rename it",
                // (read: it is the file located)
                (Ok(_), _) => return None,
            };
            // the name's parts after the stem as they are only when they are short ASCII words
            // (`csv`, `gz`, `bak`), each other part `…`: a file may be named after a person,
            // by an ID number in any script, or hold controls and bidi overrides (session 24's
            // second and third attacks)
            let stem_written: String = name.chars().take(stem.chars().count()).collect();
            let rest = &name[stem_written.len()..];
            let shown: String = std::iter::once(stem_written)
                .chain(rest.split('.').skip(1).map(|part| {
                    if !part.is_empty()
                        && part.len() <= 5
                        && part.bytes().all(|b| b.is_ascii_alphanumeric())
                    {
                        part.to_string()
                    } else {
                        "…".to_string()
                    }
                }))
                .collect::<Vec<_>>()
                .join(".");
            Some(format!("{shown} ({why})"))
        })
        .collect();
    out.sort();
    out.truncate(5);
    out
}

fn unreadable(path: &Path, e: impl std::fmt::Display) -> ConnectorError {
    crate::read::unreadable(path, e)
}

/// A lazy scan of a table file, checked to hold `required` columns and narrowed to them
/// (extra columns are allowed and ignored, §2).
///
/// The file is first read by [`prepare`] with the field map of the table named by the
/// file's stem (`members.csv` → `members`; other stems accept the required names only).
/// A file that needed a canonical copy (another encoding, delimiter or header spelling,
/// a workbook, JSON lines) is read into memory here, since the copy does not outlive this
/// call: for large extracts, and to report rows refused while reading and their original
/// lines, call [`prepare`] and [`scan_prepared`] and keep the [`Prepared`].
///
/// # Errors
/// [`ConnectorError::MissingColumns`] naming every missing column, or
/// [`ConnectorError::Unreadable`].
pub fn scan_table(
    path: &Path,
    format: FileFormat,
    required: &[&str],
) -> Result<LazyFrame, ConnectorError> {
    let _ = format; // detected again from the content by `prepare`
    let table = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prepared = prepare(path, &table, required)?;
    let lf = scan_prepared(&prepared, required)?;
    if prepared.is_passthrough() {
        return Ok(lf);
    }
    let df = lf.collect().map_err(|e| unreadable(path, e))?;
    Ok(df.lazy())
}

/// Cast every column but those named in `keep` to text (decimals as `1234.50`, dates ISO).
///
/// # Errors
/// A polars error when a column type cannot be written as text.
pub fn text_columns(df: DataFrame, keep: &[&str]) -> PolarsResult<DataFrame> {
    let exprs: Vec<Expr> = df
        .columns()
        .iter()
        .map(|c| {
            let n = c.name().clone();
            if keep.contains(&n.as_str()) {
                col(n)
            } else {
                temporal_text(col(n), c.dtype()).cast(DataType::String)
            }
        })
        .collect();
    df.lazy().select(exprs).collect()
}

/// Days since 1970-01-01 of 0001-01-01 and of 9999-12-31: the days [`temporal_text`] writes
/// as dates.
const FIRST_DAY: i64 = -719_162;
const LAST_DAY: i64 = 2_932_896;

/// A `Date` column as text: `YYYY-MM-DD` for the days of the years 1 to 9999 (what chrono's
/// `%Y-%m-%d` writes there), any other day as its integer (days since 1970-01-01), null as
/// null. The calendar is the proleptic Gregorian one (H. Hinnant's `civil_from_days`).
///
/// # Errors
/// A column that is not a date (never: [`temporal_text`] maps only dates here).
fn date_text(c: Column) -> PolarsResult<Column> {
    let days = c.cast(&DataType::Int32)?;
    let days = days.i32()?;
    let mut out = StringChunkedBuilder::new(c.name().clone(), days.len());
    let mut buf = [0u8; 10];
    for d in days.iter() {
        match d {
            None => out.append_null(),
            Some(d) if (FIRST_DAY..=LAST_DAY).contains(&i64::from(d)) => {
                let (y, m, day) = civil_from_days(i64::from(d));
                let mut put = |at: usize, v: u32, width: usize| {
                    let mut v = v;
                    for i in (0..width).rev() {
                        buf[at + i] = b'0' + (v % 10) as u8;
                        v /= 10;
                    }
                };
                put(0, y as u32, 4);
                put(5, m, 2);
                put(8, day, 2);
                buf[4] = b'-';
                buf[7] = b'-';
                // (ASCII digits and dashes only)
                out.append_value(std::str::from_utf8(&buf).unwrap_or_default());
            }
            Some(d) => out.append_value(d.to_string()),
        }
    }
    Ok(out.finish().into_series().into())
}

/// (year, month, day) of the day `z` days after 1970-01-01, proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A Parquet date or timestamp column as text that polars can write for every value: a
/// timestamp with a time zone (`dtype` `Datetime(_, Some(zone))`: an instant, as Spark and
/// pandas write them, stored in UTC) as the wall-clock time of China Standard Time (UTC+08:00,
/// no daylight saving since 1991), without a zone: the day the department recorded; a value
/// outside the years 1 to 9999 as its stored integer (which no date reader takes for a
/// date). Any other column is returned as it is.
///
/// Found by the s9 attack: a timestamp with a time zone could not be cast to text at all
/// (this build of polars has no time-zone support), so the whole extract was refused with
/// "cannot format timezone-naive Datetime", naming no column (read as UTC days, a Beijing
/// midnight would be the day before); and a date or timestamp beyond chrono's range (a
/// corrupt file, nanoseconds labelled milliseconds) made polars panic ("out-of-range date").
pub fn temporal_text(e: Expr, dtype: &DataType) -> Expr {
    match dtype {
        // one pass writing each day's text (polars' cast formats through chrono's strftime,
        // ~4 % of a 300,000-household scan's CPU for the kept rows' dates)
        DataType::Date => e.map(date_text, |_, f| {
            Ok(Field::new(f.name().clone(), DataType::String))
        }),
        DataType::Datetime(unit, zone) => {
            let per_day: i64 = match unit {
                TimeUnit::Nanoseconds => 86_400_000_000_000,
                TimeUnit::Microseconds => 86_400_000_000,
                TimeUnit::Milliseconds => 86_400_000,
            };
            // a day inside the bounds on each side: the zone's hours never cross them
            // (nanoseconds: every i64 is inside, but not a day from its ends)
            let (lo, hi) = (
                (FIRST_DAY + 1)
                    .saturating_mul(per_day)
                    .max(i64::MIN + per_day),
                LAST_DAY.saturating_mul(per_day).min(i64::MAX - per_day),
            );
            let raw = e.cast(DataType::Int64);
            let local = if zone.is_some() {
                raw.clone() + lit(per_day / 24 * 8)
            } else {
                raw.clone()
            };
            let inside = raw.clone().gt_eq(lit(lo)).and(raw.clone().lt_eq(lit(hi)));
            // every branch is computed for every row: the others are given 0 to write
            let safe = when(inside.clone())
                .then(local)
                .otherwise(lit(0i64))
                .cast(DataType::Datetime(*unit, None));
            when(inside)
                .then(safe.cast(DataType::String))
                .otherwise(raw.cast(DataType::String))
        }
        _ => e,
    }
}

/// One source's extract on disk, read by the front-end ([`Connector`] over a file).
#[derive(Debug, Clone)]
pub struct FileConnector {
    kind: SourceKind,
    prepared: Arc<Prepared>,
}

impl FileConnector {
    /// Find the extract of `kind` in `dir` (see [`locate`]) and read its front end
    /// ([`prepare`]): encoding, delimiter, header, field map. Rows are read by [`scan`].
    ///
    /// [`scan`]: FileConnector::scan
    ///
    /// # Errors
    /// [`ConnectorError::NotFound`]; [`ConnectorError::MissingColumns`] (every missing
    /// column, before any row is read); [`ConnectorError::Unreadable`].
    pub fn locate(dir: &Path, kind: SourceKind) -> Result<FileConnector, ConnectorError> {
        let (path, _) = locate(dir, kind.name()).ok_or_else(|| ConnectorError::NotFound {
            source_name: kind.name(),
            expected: expected(dir, kind.name()),
        })?;
        let mut prepared = prepare(&path, kind.name(), &kind.required_columns())?;
        // Found by the session-14 attack: a stale `bank.csv` beside a whole `bank.tsv` was
        // read, and the other passed over without a word.
        let others = passed_over(dir, kind.name(), &path);
        if !others.is_empty() {
            prepared.notes.push(format!(
                "also in the folder and not read: {} (one file per source is read, the first of {}); remove the others, or check that this is the extract meant",
                others.join(", "),
                EXTENSIONS.iter().map(|(e, _)| format!(".{e}")).collect::<Vec<_>>().join(", ")
            ));
        }
        Ok(FileConnector {
            kind,
            prepared: Arc::new(prepared),
        })
    }

    /// The original file.
    pub fn path(&self) -> &Path {
        self.prepared.source.as_path()
    }

    /// The original file's format (as detected).
    pub fn format(&self) -> FileFormat {
        self.prepared.format
    }

    /// What the front-end found and did: encoding, header map, repeated headers, rows
    /// refused while reading, the original line of each row.
    pub fn prepared(&self) -> &Prepared {
        &self.prepared
    }

    /// A lazy scan of the §2 columns (`id_number`, `name`, then the source's columns) of
    /// the prepared file. Row `r` of the scan is [`Prepared::line_of`]`(r)` in the original.
    ///
    /// # Errors
    /// As [`scan_prepared`].
    pub fn scan(&self) -> Result<LazyFrame, ConnectorError> {
        scan_prepared(&self.prepared, &self.kind.required_columns())
    }

    /// [`FileConnector::scan`] with the data row number as a first column `row_index`,
    /// numbered by the reader (see [`crate::read::scan_prepared_indexed`]): filters on the
    /// extract's columns reach the reader, which then decodes the other columns only for the
    /// rows kept.
    ///
    /// # Errors
    /// As [`FileConnector::scan`].
    pub fn scan_indexed(&self, row_index: &str) -> Result<LazyFrame, ConnectorError> {
        crate::read::scan_prepared_indexed(
            &self.prepared,
            &self.kind.required_columns(),
            Some(row_index),
        )
    }

    /// [`FileConnector::scan_indexed`] over the data rows `rows` only (0-based, end
    /// excluded); the row index still numbers the file's rows. See
    /// [`crate::read::scan_prepared_rows`].
    ///
    /// # Errors
    /// As [`FileConnector::scan`].
    pub fn scan_indexed_rows(
        &self,
        row_index: &str,
        rows: std::ops::Range<u64>,
    ) -> Result<LazyFrame, ConnectorError> {
        crate::read::scan_prepared_rows(
            &self.prepared,
            &self.kind.required_columns(),
            Some(row_index),
            Some(rows),
        )
    }

    /// The data rows of a Parquet extract in consecutive ranges of whole row groups, each of
    /// at most `max_bytes` compressed bytes (a row group larger than that is a range of its
    /// own): `[0..a, a..b, …, ..rows]`, from the file's footer. `None` for a text file, a
    /// workbook or a Parquet file whose footer cannot be read (the caller then scans the
    /// file whole; a damaged file is refused by that scan).
    ///
    /// Why: polars maps a local Parquet file whole, and every page it has read stays in the
    /// process's resident memory until the scan ends (a 361 MB registration extract at
    /// 300,000 households was a fifth of the batch's peak RSS). Scanned a range at a time
    /// ([`FileConnector::scan_indexed_rows`]), at most one range's pages are resident.
    pub fn parquet_row_ranges(&self, max_bytes: u64) -> Option<Vec<std::ops::Range<u64>>> {
        if self.prepared.path_format() != crate::FileFormat::Parquet {
            return None;
        }
        let file = std::fs::File::open(&self.prepared.path).ok()?;
        let mut reader = ParquetReader::new(file);
        let meta = reader.get_metadata().ok()?;
        let mut ranges = Vec::new();
        let (mut start, mut end, mut bytes) = (0u64, 0u64, 0u64);
        for rg in &meta.row_groups {
            let (n, b) = (rg.num_rows() as u64, rg.compressed_size() as u64);
            if end > start && bytes + b > max_bytes {
                ranges.push(start..end);
                (start, bytes) = (end, 0);
            }
            end += n;
            bytes += b;
        }
        if end > start || ranges.is_empty() {
            ranges.push(start..end);
        }
        Some(ranges)
    }

    /// Turn a collected frame of this source (with a `_row` index column, `id_number` and
    /// the §2 columns) into canonical records.
    ///
    /// # Errors
    /// [`ConnectorError::Unreadable`] when a column cannot be read as text.
    pub fn records(&self, df: DataFrame) -> Result<RecordSet, ConnectorError> {
        frame_to_records(self.path(), self.kind, df)
    }
}

/// Canonical records from a frame holding `_row`, `id_number` and the source's columns.
///
/// # Errors
/// [`ConnectorError::Unreadable`] when a column cannot be read as text.
pub fn frame_to_records(
    path: &Path,
    kind: SourceKind,
    df: DataFrame,
) -> Result<RecordSet, ConnectorError> {
    let df = text_columns(df, &["_row"]).map_err(|e| unreadable(path, e))?;
    let rows = df
        .column("_row")
        .and_then(|c| c.cast(&DataType::UInt64))
        .map_err(|e| unreadable(path, e))?;
    let rows = rows.u64().map_err(|e| unreadable(path, e))?;
    let ids = df
        .column("id_number")
        .and_then(|c| c.str())
        .map_err(|e| unreadable(path, e))?;
    let cols: Vec<&StringChunked> = kind
        .columns()
        .iter()
        .map(|c| df.column(c.name).and_then(|c| c.str()))
        .collect::<PolarsResult<_>>()
        .map_err(|e| unreadable(path, e))?;
    // Column iterators, not `get(i)`: a frame read in many chunks would search its chunks
    // for every cell.
    let mut values: Vec<_> = cols.iter().map(|c| c.iter()).collect();
    let mut records = Vec::with_capacity(df.height());
    for (row, id) in rows.iter().zip(ids.iter()) {
        records.push(Record {
            row: row.unwrap_or(0),
            id_number: id.unwrap_or("").to_string(),
            values: values
                .iter_mut()
                .map(|c| {
                    c.next()
                        .flatten()
                        .filter(|v| !v.is_empty())
                        .map(str::to_string)
                })
                .collect(),
        });
    }
    Ok(RecordSet {
        columns: kind.columns().iter().map(|c| c.name).collect(),
        records,
    })
}

impl Connector for FileConnector {
    fn kind(&self) -> SourceKind {
        self.kind
    }

    /// Rows whose `id_number` equals one of the given numbers exactly (the caller passes
    /// normalised numbers; rows with damaged keys are the linkage stage's business).
    fn fetch(&self, id_numbers: &[String]) -> SourceOutcome {
        let wanted = Series::new("wanted".into(), id_numbers);
        let df = self.scan().and_then(|lf| {
            lf.with_row_index("_row", None)
                .filter(
                    col("id_number")
                        .cast(DataType::String)
                        .is_in(lit(wanted).implode(false), false),
                )
                .collect()
                .map_err(|e| unreadable(self.path(), e))
        });
        match df.and_then(|df| self.records(df)) {
            Ok(set) if set.records.is_empty() => SourceOutcome::NoRecords,
            Ok(set) => SourceOutcome::Records(set),
            Err(e) => SourceOutcome::Failed(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Found by session 24's attack: a folder, a link to nothing or a FIFO named `bank.csv`,
    /// and `BANK.CSV`, were all "no file for bank": the error now says what is there.
    #[test]
    fn a_missing_extract_names_what_stands_in_its_place() {
        let d = tempfile::tempdir().unwrap();
        let said = |d: &Path| match FileConnector::locate(d, SourceKind::Bank) {
            Err(e @ ConnectorError::NotFound { .. }) => e.to_string(),
            other => panic!("{:?}", other.map(|c| c.path().to_path_buf())),
        };
        assert!(!said(d.path()).contains("instead"));
        std::fs::create_dir(d.path().join("bank.csv")).unwrap();
        std::os::unix::fs::symlink(d.path().join("gone.csv"), d.path().join("bank.tsv")).unwrap();
        std::fs::write(d.path().join("BANK.CSV"), "id_number\n").unwrap();
        std::fs::write(d.path().join("bank.csv.gz"), "x").unwrap();
        // the Kelvin sign is `k` in lower case, one byte shorter (session 24's second
        // attack: a panic, "byte index 5 is not a char boundary")
        let kelvin = tempfile::tempdir().unwrap();
        std::fs::write(kelvin.path().join("BAN\u{212A}.csv"), "x").unwrap();
        assert!(
            said(kelvin.path()).contains("BAN\u{212A}.csv (the name differs in case: rename it)")
        );
        // a file named after a person or by an ID number is shown masked, a new line escaped
        let named = tempfile::tempdir().unwrap();
        for n in [
            "bank.王小明.csv",
            "bank.62050319750324540X.csv",
            "bank.a\nb.csv",
        ] {
            std::fs::write(named.path().join(n), "x").unwrap();
        }
        std::fs::write(named.path().join("bank.\u{202e}vsc.lmx"), "x").unwrap();
        std::fs::write(named.path().join("bank.户主徐萍霞的存款.csv"), "x").unwrap();
        let e = said(named.path());
        let odd = "bank.….csv (an extension hedui does not read: unpack or rename it)";
        assert!(
            e.ends_with(&format!(
                "; in the folder instead: {odd}, {odd}, {odd}, {odd}, bank.….lmx (an extension hedui does not read: unpack or rename it))"
            )),
            "{e}"
        );
        let e = said(d.path());
        assert!(
            e.ends_with("; in the folder instead: BANK.CSV (the name differs in case: rename it), bank.csv (a folder, not a file), bank.csv.gz (an extension hedui does not read: unpack or rename it), bank.tsv (a link to nothing))"),
            "{e}"
        );
    }

    /// Found by the session-14 attack: of `bank.csv` and `bank.tsv`, one was read and the
    /// other passed over without a word. The one read says which it passed over.
    #[test]
    fn an_extract_given_twice_is_read_once_and_the_other_named() {
        let d = tempfile::tempdir().unwrap();
        let head = "id_number,name,institution_code,account_no_masked,product,balance,as_of_date";
        let row = "620503195809200176,马福祥,B1,6222****0001,current,1.00,2026-10-30";
        std::fs::write(d.path().join("bank.csv"), format!("{head}\n{row}\n")).unwrap();
        let alone = FileConnector::locate(d.path(), SourceKind::Bank).unwrap();
        assert!(
            alone
                .prepared()
                .notes
                .iter()
                .all(|n| !n.contains("not read"))
        );
        std::fs::write(
            d.path().join("bank.tsv"),
            format!("{}\n{}\n", head.replace(',', "\t"), row.replace(',', "\t")),
        )
        .unwrap();
        let c = FileConnector::locate(d.path(), SourceKind::Bank).unwrap();
        assert!(c.path().ends_with("bank.csv"));
        assert!(
            c.prepared()
                .notes
                .iter()
                .any(|n| n.starts_with("also in the folder and not read: bank.tsv")),
            "{:?}",
            c.prepared().notes
        );
    }

    /// A Parquet extract scanned a range of row groups at a time gives the rows of one whole
    /// scan, row for row, with the file's row numbers, a filter on `id_number` applied inside
    /// each range (polars' pre-slice and predicate together), and no row twice or lost.
    #[test]
    fn a_parquet_extract_scanned_by_row_group_ranges_gives_the_whole_scan_row_for_row() {
        let d = tempfile::tempdir().unwrap();
        let n = 10_000usize;
        let ids: Vec<String> = (0..n).map(|i| format!("6205031994{i:08}")).collect();
        let names: Vec<String> = (0..n).map(|i| format!("名{i}")).collect();
        let balances: Vec<String> = (0..n).map(|i| format!("{i}.50")).collect();
        let mut df = DataFrame::new(
            n,
            vec![
                Column::new("id_number".into(), ids),
                Column::new("name".into(), names),
                Column::new("institution_code".into(), vec!["B1"; n]),
                Column::new("account_no_masked".into(), vec!["6222****0001"; n]),
                Column::new("product".into(), vec!["current"; n]),
                Column::new("balance".into(), balances),
                Column::new("as_of_date".into(), vec!["2026-10-30"; n]),
            ],
        )
        .unwrap();
        let f = std::fs::File::create(d.path().join("bank.parquet")).unwrap();
        ParquetWriter::new(f)
            .with_row_group_size(Some(700))
            .finish(&mut df)
            .unwrap();
        let c = FileConnector::locate(d.path(), SourceKind::Bank).unwrap();
        // the row groups' first rows, from the footer
        let meta = ParquetReader::new(std::fs::File::open(d.path().join("bank.parquet")).unwrap())
            .get_metadata()
            .unwrap()
            .clone();
        let starts: Vec<u64> = meta
            .row_groups
            .iter()
            .scan(0u64, |at, rg| {
                let s = *at;
                *at += rg.num_rows() as u64;
                Some(s)
            })
            .collect();
        assert!(starts.len() > 4, "{starts:?}");
        // whole row groups, a few to a range
        let biggest = meta
            .row_groups
            .iter()
            .map(|rg| rg.compressed_size())
            .max()
            .unwrap();
        let ranges = c.parquet_row_ranges(2 * biggest as u64).unwrap();
        assert!(ranges.len() > 2, "{ranges:?}");
        assert!(ranges.len() < starts.len(), "{ranges:?}");
        assert_eq!(ranges.first().unwrap().start, 0);
        assert_eq!(ranges.last().unwrap().end, n as u64);
        for w in ranges.windows(2) {
            assert_eq!(w[0].end, w[1].start);
            assert!(starts.contains(&w[0].end), "{ranges:?} {starts:?}");
        }
        // a limit below one row group: one group to a range
        assert_eq!(c.parquet_row_ranges(1).unwrap().len(), starts.len());
        assert_eq!(c.parquet_row_ranges(u64::MAX).unwrap(), vec![0..n as u64]);
        // every 7th row and every row ending in 3, by a filter on the ID number
        let keep = |lf: LazyFrame| {
            lf.filter(col("id_number").map(
                |c| {
                    let s = c.str()?;
                    let k: BooleanChunked = s
                        .iter()
                        .map(|v| {
                            v.map(|v| {
                                let i: u64 = v[10..].parse().unwrap();
                                i.is_multiple_of(7) || i % 10 == 3
                            })
                        })
                        .collect();
                    Ok(k.into_series().into())
                },
                |_, f| Ok(Field::new(f.name().clone(), DataType::Boolean)),
            ))
            .collect()
            .unwrap()
        };
        let whole = keep(c.scan_indexed("_row").unwrap());
        let mut parts = Vec::new();
        for r in &ranges {
            parts.push(keep(c.scan_indexed_rows("_row", r.clone()).unwrap()));
        }
        let mut joined = parts[0].clone();
        for p in &parts[1..] {
            joined.vstack_mut(p).unwrap();
        }
        assert!(whole.height() > 2_000, "{}", whole.height());
        assert!(whole.equals(&joined), "{whole}\n{joined}");
        // the row numbers are the file's: row 703 is the ID ending in 703
        let rows = joined
            .column("_row")
            .unwrap()
            .cast(&DataType::UInt64)
            .unwrap();
        let ids = joined.column("id_number").unwrap();
        for (r, id) in rows.u64().unwrap().iter().zip(ids.str().unwrap().iter()) {
            let (r, id) = (r.unwrap(), id.unwrap());
            assert_eq!(id[10..].parse::<u64>().unwrap(), r);
        }
    }

    /// `date_text` writes what chrono's `%Y-%m-%d` writes for every day of the years 1 to
    /// 9999 (every day of the first and last years and of leap-rule years, every 7th day
    /// between), the integer beyond them, and null as null.
    #[test]
    fn date_text_writes_each_day_as_chrono_does_and_other_days_as_integers() {
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        let mut days: Vec<i64> = (FIRST_DAY..=LAST_DAY).step_by(7).collect();
        for year in [1, 4, 100, 400, 1582, 1900, 1970, 2000, 2024, 2100, 9999] {
            let first = chrono::NaiveDate::from_ymd_opt(year, 1, 1).unwrap();
            let start = (first - epoch).num_days();
            days.extend(start..start + 366);
        }
        days.retain(|d| (FIRST_DAY..=LAST_DAY).contains(d));
        let outside = [
            FIRST_DAY - 1,
            LAST_DAY + 1,
            i64::from(i32::MIN),
            i64::from(i32::MAX),
        ];
        let values: Vec<Option<i32>> = days
            .iter()
            .chain(&outside)
            .map(|&d| Some(d as i32))
            .chain([None])
            .collect();
        let col = Int32Chunked::from_iter_options("d".into(), values.clone().into_iter())
            .into_series()
            .cast(&DataType::Date)
            .unwrap()
            .into_column();
        let text = date_text(col).unwrap();
        let text = text.str().unwrap();
        for (v, t) in values.iter().zip(text.iter()) {
            let want = v.map(|d| {
                let d = i64::from(d);
                if (FIRST_DAY..=LAST_DAY).contains(&d) {
                    (epoch + chrono::Duration::days(d))
                        .format("%Y-%m-%d")
                        .to_string()
                } else {
                    d.to_string()
                }
            });
            assert_eq!(t.map(str::to_string), want, "{v:?}");
        }
        assert_eq!(text.get(0), Some("0001-01-01"));
    }

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::File::create(dir.join(name))
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }

    #[test]
    fn a_missing_column_is_named_before_any_row_is_read() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "tax.csv",
            "id_number,name,tax_year,gross_income\n620503198703151234,王秀兰,2025,100.00\n",
        );
        match FileConnector::locate(d.path(), SourceKind::Tax) {
            Err(ConnectorError::MissingColumns { missing, .. }) => {
                assert_eq!(missing, vec!["income_type", "tax_paid"])
            }
            Err(other) => panic!("expected MissingColumns, got {other:?}"),
            Ok(_) => panic!("expected MissingColumns, the file was accepted"),
        }
    }

    #[test]
    fn fetch_returns_the_rows_of_the_asked_persons_as_text() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "tax.csv",
            "id_number,name,tax_year,income_type,gross_income,tax_paid,extra\n\
             620503198703151234,王秀兰,2025,wages,36000.50,0,x\n\
             620503196207080319,李建国,2025,labour,1200.00,,y\n",
        );
        let c = FileConnector::locate(d.path(), SourceKind::Tax).unwrap();
        let SourceOutcome::Records(set) = c.fetch(&["620503196207080319".to_string()]) else {
            panic!("no records")
        };
        assert_eq!(set.records.len(), 1);
        let r = &set.records[0];
        assert_eq!(r.row, 1);
        assert_eq!(
            r.values,
            vec![
                Some("2025".into()),
                Some("labour".into()),
                Some("1200.00".into()),
                None
            ]
        );
        assert!(matches!(
            c.fetch(&["62050219900101118X".to_string()]),
            SourceOutcome::NoRecords
        ));
    }

    #[test]
    fn a_missing_file_is_not_found() {
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(
            FileConnector::locate(d.path(), SourceKind::Bank),
            Err(ConnectorError::NotFound { .. })
        ));
    }
}
