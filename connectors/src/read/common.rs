//! The polars-free part of the reading front-end: what every reader produces
//! ([`Prepared`], [`Rejected`]), what it needs ([`Ctx`], [`Sink`]), header choice and notes,
//! and the exact money conversions (万元 → yuan). Kept apart from `read.rs` (which drives
//! polars for Parquet and the scans) so that the fuzz target in `connectors/fuzz/` can build
//! the text reader without polars.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use super::FieldMap;
use super::fieldmap::{self, MappedColumn, Mapping, MoneyUnit, ValueKind};
use crate::ConnectorError;
use crate::file::FileFormat;

/// The result of reading a file's front end: where to scan, and what was found on the way.
#[derive(Debug)]
pub struct Prepared {
    /// The file to scan: the original (fast path, Parquet) or the canonical UTF-8 CSV copy
    /// (header = canonical column names) in a temp dir that lives as long as this value.
    pub path: PathBuf,
    /// The original file.
    pub source: PathBuf,
    /// The original's format as detected (extension and content).
    pub format: FileFormat,
    /// The original's text encoding: `utf-8`, `utf-8-bom`, `gb18030`, `utf-16le`,
    /// `utf-16be`, or `binary` (Parquet, workbooks: Unicode by format).
    pub encoding: String,
    /// The original's delimiter (text files only).
    pub delimiter: Option<char>,
    /// Physical line of the header row in the original (1 unless title rows stand above
    /// it; the sheet row for workbooks; 0 for Parquet and JSON lines).
    pub header_line: u64,
    /// (header as found, canonical column) for every mapped column, in file order.
    pub header_map: Vec<(String, String)>,
    /// Physical lines (sheet rows) of repeated header rows that were skipped.
    pub repeated_headers: Vec<u64>,
    /// For a rewritten file: the physical line in the original (sheet row for workbooks,
    /// line for JSON lines) of each data row of [`Prepared::path`]. `None` when the file is
    /// passed through: then data row `r` is on line `r + header_line + 1` (text) or has no
    /// line (Parquet). Use [`Prepared::line_of`].
    pub line_of_row: Option<Vec<u64>>,
    /// Rows refused while reading (not in [`Prepared::path`]).
    pub rejected: Vec<Rejected>,
    /// Values the reader changed in rows it kept (万元 → yuan, Excel serial → ISO date),
    /// one per changed value, in file order.
    pub normalised: Vec<Normalised>,
    /// What was decided and changed, as sentences for the summary (no row values).
    pub notes: Vec<String>,
    /// Owns the temp dir of a rewritten file.
    pub(crate) _temp: Option<tempfile::TempDir>,
    /// The original file as it was when reading began ([`FileStamp`]): see
    /// [`Prepared::changed_since_read`].
    pub(crate) stamp: Option<FileStamp>,
}

/// What identifies a file's contents without reading them: its length, modification time
/// and (on Unix) device and inode. A file rewritten in place changes its length or
/// modification time; one replaced by a rename (how exports usually land) changes its inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    dev: u64,
    ino: u64,
}

impl FileStamp {
    /// The stamp of the file at `path` now (links followed); `None` when it cannot be read.
    pub fn of(path: &std::path::Path) -> Option<FileStamp> {
        let m = std::fs::metadata(path).ok()?;
        #[cfg(unix)]
        let (dev, ino) = {
            use std::os::unix::fs::MetadataExt;
            (m.dev(), m.ino())
        };
        #[cfg(not(unix))]
        let (dev, ino) = (0, 0);
        Some(FileStamp {
            len: m.len(),
            modified: m.modified().ok(),
            dev,
            ino,
        })
    }
}

/// A value the reader changed on its way into the prepared file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalised {
    /// Physical line of the original (sheet row for workbooks).
    pub line: u64,
    /// 0-based data row of [`Prepared::path`].
    pub row: u64,
    /// The canonical column.
    pub column: String,
    /// Stable kind code: `money_wan` (万元 → yuan ×10,000), `money_unit_suffix` (a 元 suffix
    /// removed), `money_float_noise` (a number cell's binary noise past 15 significant
    /// digits dropped, [`money_from_f64`]), `date_excel_serial` (a workbook date cell by the
    /// 1900 date system rule), `date_excel_serial_1904`, `money_wan_number_format` (an .xlsx
    /// number cell formatted `0.00"万元"`, ×10,000), `money_yuan_shown_in_wan` (formatted
    /// `0!.0000"万"`: yuan as stored, [`super::numfmt`]).
    pub kind: String,
    /// What changed, never the value.
    pub detail: String,
}

/// A row refused while reading, with where it was and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Physical line of the original (sheet row for workbooks, line for JSON lines).
    pub line: u64,
    /// The canonical column at fault (empty when the whole row is at fault).
    pub column: String,
    /// The value (or the row) as found, unmasked: the caller masks it before showing it.
    pub raw: String,
    /// Stable reason code (`id_spreadsheet_number`, `money_too_many_decimals`,
    /// `money_not_a_number`, `row_field_count`, `json_invalid`, …).
    pub reason: String,
    /// A sentence for a clerk, naming the column; never a value.
    pub message: String,
    /// The row's `household_id` as found, when the table has that column and the row holds
    /// it (caseload tables): lets the caseload refer the household of a member or supporter
    /// row it could not read, instead of losing the person silently.
    pub household_id: Option<String>,
    /// The row's `id_number` as found, when the table has that column and the row holds a
    /// value there (source tables; for a ragged row, the field at the header's `id_number`
    /// position): lets the batch make that person's source `unverified` for a row it could
    /// not read, instead of reading as "no records". Unmasked: never shown.
    pub id_number: Option<String>,
    /// A second `household_id` or `id_number` of the row, as (canonical column, value):
    /// the value of another header of that field that differs from the one above
    /// (`duplicate_column_conflict`). The row may be either person's or household's, so
    /// both are treated like the one above. Unmasked: never shown.
    pub other_keys: Vec<(String, String)>,
}

impl Prepared {
    /// Whether [`Prepared::path`] is the original file (nothing was rewritten).
    pub fn is_passthrough(&self) -> bool {
        self.path == self.source
    }

    /// The format of [`Prepared::path`]: Parquet when a Parquet file is passed through,
    /// otherwise comma-separated UTF-8 text.
    pub fn path_format(&self) -> FileFormat {
        if self.format == FileFormat::Parquet {
            FileFormat::Parquet
        } else {
            FileFormat::Csv
        }
    }

    /// The physical line in the original of data row `row` (0-based) of [`Prepared::path`]:
    /// what a quarantine entry should name. `None` for Parquet.
    pub fn line_of(&self, row: u64) -> Option<u64> {
        match &self.line_of_row {
            Some(lines) => usize::try_from(row)
                .ok()
                .and_then(|r| lines.get(r))
                .copied(),
            None if self.path_format() == FileFormat::Csv => Some(row + self.header_line + 1),
            None => None,
        }
    }

    /// [`Prepared::line_of`] for every data row, compactly (none past [`MAX_LINE_RUNS`] runs): runs of (first data row, its
    /// physical line less its row), each holding until the next run's row; empty for Parquet.
    /// A regular text file is one run (`[(0, header_line + 1)]`); every title row, refused row,
    /// repeated header or value over several lines starts another. Kept in the batch's state,
    /// so that an incremental run names the lines a full run names.
    pub fn line_runs(&self) -> Vec<(u64, u64)> {
        match &self.line_of_row {
            Some(lines) => {
                let mut runs: Vec<(u64, u64)> = Vec::new();
                for (row, &line) in lines.iter().enumerate() {
                    let offset = line.saturating_sub(row as u64);
                    if runs.last().is_none_or(|&(_, o)| o != offset) {
                        if runs.len() == MAX_LINE_RUNS {
                            // (a file this irregular keeps no runs: its rows are still named)
                            return Vec::new();
                        }
                        runs.push((row as u64, offset));
                    }
                }
                runs
            }
            None if self.path_format() == FileFormat::Csv => vec![(0, self.header_line + 1)],
            None => Vec::new(),
        }
    }

    /// When the reader refused more than half of the data rows ([`Prepared::rejected`]
    /// beside the `read` rows it read): a sentence saying how many and naming the first
    /// refused line and its reason code, never a value. Such a file is damaged (a header
    /// that does not fit its rows, a wrong delimiter): its refused rows cannot stand for
    /// "no records" of the persons in them, so the caller does not read it.
    /// Subtotal and total rows (`row_subtotal`) are not counted: they are no damage.
    pub fn mostly_refused(&self, read: u64) -> Option<String> {
        let n = self
            .rejected
            .iter()
            .filter(|r| r.reason != "row_subtotal")
            .count() as u64;
        if n * 2 <= n + read {
            return None;
        }
        let first = self
            .rejected
            .iter()
            .find(|r| r.reason != "row_subtotal")
            .map(|r| format!(" (the first at line {}: {})", r.line, r.reason))
            .unwrap_or_default();
        Some(format!(
            "{n} of {} data rows were refused while reading{first}: a damaged export (a header that does not fit its rows, a value of the wrong type in every row)?",
            n + read
        ))
    }

    /// The canonical column that a found header was mapped to.
    pub fn canonical_of(&self, found: &str) -> Option<&str> {
        self.header_map
            .iter()
            .find(|(f, _)| f == found)
            .map(|(_, c)| c.as_str())
    }
}

/// A whole table as text (see [`Prepared::read_text`]).
#[derive(Debug, Clone, Default)]
pub struct TextTable {
    /// Column names of the prepared file (canonical names when a field map was used).
    pub columns: Vec<String>,
    /// Rows, values in column order.
    pub rows: Vec<Vec<String>>,
    /// Physical line in the original of each row (`None` for Parquet).
    pub lines: Vec<Option<u64>>,
}

impl TextTable {
    /// The index of a column.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// The values of one column (empty when the column does not exist).
    pub fn values(&self, name: &str) -> Vec<&str> {
        match self.column(name) {
            Some(i) => self
                .rows
                .iter()
                .map(|r| r.get(i).map_or("", String::as_str))
                .collect(),
            None => Vec::new(),
        }
    }
}

/// What every reader needs: the file, the field map (None = generic) and the required
/// canonical columns.
pub(crate) struct Ctx<'a> {
    pub path: &'a Path,
    pub map: Option<&'a FieldMap>,
    pub required: &'a [&'a str],
}

impl Ctx<'_> {
    /// Map a header row: through the field map, or generically.
    pub fn map_headers(&self, headers: &[String]) -> Mapping {
        match self.map {
            Some(m) => m.map_headers(headers, self.required),
            None => fieldmap::generic_mapping(headers),
        }
    }

    /// The error for a header that lacks required columns (None when nothing is missing).
    /// `line` is the header's physical line (0: no header line, as in Parquet and JSON).
    pub fn missing_error(&self, mapping: &Mapping, line: u64) -> Option<ConnectorError> {
        if mapping.missing.is_empty() {
            return None;
        }
        let unmapped = if mapping.looks_like_data {
            vec![format!(
                "(line {line} looks like data, not a header: it holds a long number; the file needs a header row)"
            )]
        } else {
            mapping
                .unmapped
                .iter()
                .map(|h| {
                    if line > 0 {
                        format!("{h} (line {line})")
                    } else {
                        h.clone()
                    }
                })
                .collect()
        };
        Some(ConnectorError::MissingColumns {
            path: self.path.display().to_string(),
            missing: mapping.missing.clone(),
            unmapped,
        })
    }

    /// The error for headers that cannot be told apart (same spelling twice).
    pub fn ambiguous_error(&self, mapping: &Mapping, line: u64) -> Option<ConnectorError> {
        let (col, a, b) = mapping.ambiguous.first()?;
        Some(self.unreadable(format!(
            "header line {line}: columns {a} and {b} both read as `{col}`; keep one of them or rename the other"
        )))
    }

    /// An [`ConnectorError::Unreadable`] for this file.
    pub fn unreadable(&self, message: String) -> ConnectorError {
        ConnectorError::Unreadable {
            path: self.path.display().to_string(),
            message,
        }
    }
}

/// Whether a line above the header is a data row rather than a title, read under the
/// header's `mapping`: the cell where the header puts `id_number` holds an ID number (15 to
/// 18 digits or an X, ASCII or full-width, spaces and dashes read through, or a number in
/// scientific notation as a spreadsheet writes a long one), or at least three cells and at
/// least half as many as the header names are filled and none of them is a label and its
/// value (`制表日期：2026年10月31日`, `Page: 1`). A title (`2026年10月存款明细`, `单位：万元`,
/// `填报单位：…,制表人：…,制表日期：…`, `查询批次号：202610311530120001`) is none of these.
///
/// Found by session 25's attacks: every line above the header was skipped as a title, so a
/// data row placed or sorted there (an export without a header joined before one with it)
/// was lost with a note (a member's earnings row read as no income, a deposit as none); and
/// the first rule (three cells, or 15 digits anywhere) refused real title blocks.
pub(crate) fn data_row_above_header<S: AsRef<str>>(cells: &[S], mapping: &Mapping) -> bool {
    let id_cell = mapping
        .cols
        .iter()
        .find(|c| c.name == "id_number")
        .and_then(|c| cells.get(c.src));
    if id_cell.is_some_and(|c| id_like_cell(c.as_ref())) {
        return true;
    }
    let filled: Vec<&str> = cells
        .iter()
        .map(|c| c.as_ref().trim())
        .filter(|c| !c.is_empty())
        .collect();
    let named = mapping.header_map.len().max(mapping.cols.len());
    filled.len() >= 3
        && filled.len() * 2 >= named
        && !filled.iter().any(|c| label_cell(c))
        // a value of a row holds a digit somewhere (an amount, a date, a code); a group
        // header over merged cells (`成员信息,,,家庭关系,,授权信息`) holds none
        && filled.iter().any(|c| c.chars().any(|ch| ch.is_ascii_digit() || ('０'..='９').contains(&ch)))
        // a row of column numbers (`1,2,3,4,5,6,7`) is a title
        && !filled.iter().all(|c| c.len() <= 3 && c.bytes().all(|b| b.is_ascii_digit()))
}

/// A cell that is a label and its value (`制表日期：2026年10月31日`, `Page: 1`): text without
/// digits before a colon (a time, `2026-10-30 09:15:00`, is a value: session 25's fifth attack
/// had a deposit row with one skipped as a title).
fn label_cell(cell: &str) -> bool {
    cell.find(['：', ':']).is_some_and(|i| {
        let head = cell[..i].trim();
        !head.is_empty()
            && !head
                .chars()
                .any(|c| c.is_ascii_digit() || ('０'..='９').contains(&c))
    })
}

/// A cell that is an ID number as a department may write it: 15 to 18 digits (ASCII or
/// full-width; spaces, dashes and full-width spaces between them), the last may be an X; or
/// a number in scientific notation of 10^14 or more (`6.20503E+17`).
fn id_like_cell(cell: &str) -> bool {
    let t = cell.trim().trim_matches(['\'', '"', '=']);
    let mut digits = 0usize;
    let mut x = false;
    for c in t.chars() {
        match c {
            '0'..='9' | '０'..='９' if !x => digits += 1,
            'X' | 'x' | 'Ｘ' | 'ｘ' if !x && digits >= 14 => x = true,
            // separators between the groups, visible or not (found by session 28's attack:
            // a row above the header whose ID was grouped with U+00A0 or held a U+200B was
            // skipped as a title, in no count)
            ' ' | '-' | '\u{3000}' | '－' | '\u{a0}' | '\u{2007}' | '\u{202f}' | '\u{200b}'
            | '\u{200c}' | '\u{200d}' | '\u{2060}' | '\u{feff}' | '\t' | '.' | '/' | '_' | '—'
            | '–' => {}
            _ => {
                return t.contains(['E', 'e'])
                    && t.parse::<f64>()
                        .is_ok_and(|v| v.is_finite() && v.abs() >= 1e14);
            }
        }
    }
    (15..=18).contains(&(digits + usize::from(x)))
}

/// A number of more than 15 digits as a spreadsheet shows it, in scientific notation with 15
/// significant digits (`6.20503199410116E+17`): the form the ID parser refuses as digits lost,
/// never repaired. Used for ID numbers held in a workbook's number cell and given as JSON
/// numbers.
pub(crate) fn scientific_15(v: f64) -> String {
    let text = format!("{v:.14E}");
    // (Rust writes `6.20503199410116E17`; the sign of the exponent as a spreadsheet shows it)
    match text.split_once('E') {
        Some((m, e)) if !e.starts_with('-') => format!("{m}E+{e}"),
        _ => text,
    }
}

/// Pick the header among the first records: with a field map, the first record that maps
/// every required column, else the one that maps the most (ties: the first); without one,
/// the first record. Returns the index into `records`.
pub(crate) fn choose_header(ctx: &Ctx, records: &[(u64, Vec<String>)]) -> usize {
    if ctx.map.is_none() {
        return 0;
    }
    let mut best = (0usize, 0usize);
    for (i, (_, fields)) in records.iter().enumerate().take(10) {
        let m = ctx.map_headers(fields);
        if m.missing.is_empty() && m.ambiguous.is_empty() {
            return i;
        }
        let n = m.cols.len();
        if n > best.1 {
            best = (i, n);
        }
    }
    best.0
}

/// Notes about a header mapping (renames, ignored and unrecognised headers).
pub(crate) fn mapping_notes(mapping: &Mapping, header_line: u64, notes: &mut Vec<String>) {
    let renamed: Vec<String> = mapping
        .header_map
        .iter()
        .filter(|(f, c)| f != c)
        .map(|(f, c)| format!("{f} → {c}"))
        .collect();
    if !renamed.is_empty() {
        notes.push(format!(
            "header line {header_line}: columns mapped by the field map: {}",
            renamed.join(", ")
        ));
    }
    for (col, used, other) in &mapping.shadowed {
        if !mapping
            .cols
            .iter()
            .any(|c| c.name == *col && !c.also.is_empty())
        {
            notes.push(format!(
                "header {other} also reads as `{col}`; {used} is used (listed first in the field map)"
            ));
            continue;
        }
        notes.push(format!(
            "header {other} also reads as `{col}`: {used} is read (listed first in the field map), {other} where {used} is empty; a row where the two hold different values is refused (duplicate_column_conflict)"
        ));
    }
    if !mapping.unmapped.is_empty() && !mapping.looks_like_data {
        notes.push(format!(
            "columns not in the field map, ignored: {}",
            mapping.unmapped.join(", ")
        ));
    }
    for c in &mapping.cols {
        if c.unit == Some(MoneyUnit::Wan) {
            notes.push(format!(
                "column `{}` is in 万元: amounts converted to yuan exactly (×10,000)",
                c.name
            ));
        }
    }
}

/// What a row inside a table is, when it is a header again but not in the current header's
/// words: the same table's header in other words, units or order, as where two exports of one
/// table were concatenated (`收入额(元)` above, `收入额(万元)` from the middle on).
pub(crate) enum HeaderAgain {
    /// The same columns at the same places in the same units: skipped like a repeated header.
    Same,
    /// Another layout: the rows after it are read under it. The mapping's columns are in the
    /// first header's order (the prepared file's columns).
    Switch(Mapping),
    /// A title row declaring the unit the amounts are already read in (`单位：元` over a table
    /// in yuan), or a row of those units under the header: skipped.
    Title(String),
    /// A header that names at least half of the table's columns but not exactly them (one
    /// not in the field map, one missing, one more, two that read as one): the rows after it
    /// cannot be read under either header. What it lacks, as a phrase for the message.
    Unreadable(String),
}

/// Whether a cell says its row is a subtotal or total of rows, not a record. After removing
/// spaces, brackets, colons, full-width forms, case and a trailing `元`/`万元`, and reading
/// traditional forms (`小計`, `總計`) as simplified: the cell is `total`, `subtotal`,
/// `grandtotal` or `sum`; or, at most six characters and no digit, it starts or ends with
/// `小计`, `合计`, `总计`, `共计` or `汇总` (`本户合计`, `余额合计`, `合计人数`, `（小计）`,
/// `小计(元)`), or is `累计`. Found by session 16's attacks: a per-person `小计` row carrying
/// the holder's ID number counted their deposits twice, and then `小计(元)`, `小計`, `本户合计`
/// slipped through an exact list. Whether such a cell in the name column makes a subtotal
/// is [`subtotal_cell`]'s to decide (合 and 共 are surnames).
pub(crate) fn total_marker(v: &str) -> bool {
    if v.len() > 60 {
        return false;
    }
    let n = total_norm(v);
    let n = n
        .strip_suffix("万元")
        .or_else(|| n.strip_suffix('元'))
        .unwrap_or(&n);
    if matches!(n, "total" | "subtotal" | "grandtotal" | "sum" | "累计") {
        return true;
    }
    n.chars().count() <= 6
        && !n.chars().any(|c| c.is_ascii_digit())
        && TOTAL_WORDS
            .iter()
            .any(|w| n.starts_with(w) || n.ends_with(w))
}

/// The words of a subtotal or total ([`total_marker`]).
const TOTAL_WORDS: [&str; 5] = ["小计", "合计", "总计", "共计", "汇总"];

/// Whether a cell of a row that repeats the ID of the row above, every other text column
/// empty, says the row is that person's subtotal ([`subtotal_cell`]'s third shape): as
/// [`total_marker`], or any length and digits allowed, it holds `小计`, `合计`, `总计`, `共计`
/// or `汇总` anywhere (`小计(1笔)`, `合计1笔`, `个人存款余额合计`, `本户存款合计数`), or starts
/// with `total`, `subtotal` or `grandtotal` (`TOTAL AMOUNT`). Found by session 28's attack:
/// those labels were read as a second deposit of the person's.
pub(crate) fn person_total_marker(v: &str) -> bool {
    if v.len() > 120 {
        return false;
    }
    if total_marker(v) {
        return true;
    }
    let n = total_norm(v);
    TOTAL_WORDS.iter().any(|w| n.contains(w))
        || ["total", "subtotal", "grandtotal"]
            .iter()
            .any(|w| n.starts_with(w))
}

/// A cell as [`total_marker`] reads it: spaces, brackets, colons, full-width forms and case
/// removed, traditional forms read as simplified.
fn total_norm(v: &str) -> String {
    super::fieldmap::norm(v)
        .chars()
        .filter_map(|c| match c {
            '(' | ')' | '[' | ']' | '（' | '）' | '【' | '】' | '〔' | '〕' | ':' | '：' | '<'
            | '>' | '《' | '》' | '*' | '_' | '-' | '—' => None,
            '計' => Some('计'),
            '總' => Some('总'),
            '彙' | '匯' => Some('汇'),
            '頁' => Some('页'),
            '額' => Some('额'),
            '數' => Some('数'),
            '戶' => Some('户'),
            '餘' => Some('余'),
            c => Some(c),
        })
        .collect()
}

/// A quick test of a field's bytes before [`total_marker`], for the scan that decides whether
/// a file is read as it is: a marker holds `计`, `計`, `总` or `總` (every Chinese one), or is
/// ASCII of at most 16 bytes starting with `t`, `s` or `g` after spaces and brackets; a
/// full-width form or an ideographic space at its start sends it to [`total_marker`] too.
pub(crate) fn maybe_total(v: &[u8]) -> bool {
    const WORDS: [&[u8]; 4] = [
        "计".as_bytes(),
        "計".as_bytes(),
        "总".as_bytes(),
        "總".as_bytes(),
    ];
    if v.len() > 60 || v.is_empty() {
        return false;
    }
    let t = v.trim_ascii();
    let mut ascii = t;
    while let Some((&c, rest)) = ascii.split_first() {
        if matches!(c, b'(' | b'[' | b'*' | b'<' | b' ' | b'-' | b'_') {
            ascii = rest;
        } else {
            break;
        }
    }
    if t.is_ascii() {
        return ascii.len() <= 16
            && matches!(ascii.first(), Some(b't' | b'T' | b's' | b'S' | b'g' | b'G'));
    }
    WORDS.iter().any(|w| t.windows(3).any(|x| x == *w))
        || t.starts_with(&[0xEF, 0xBC])
        || t.starts_with("\u{3000}".as_bytes())
}

/// The index (into the row's `texts`, `None` for a cell that is no text) of the cell that
/// makes a data row a subtotal or total row ([`total_marker`]), if any, under the columns
/// `cols`. A row is a subtotal only by its shape as well as its words:
/// - its key cell (`id_number`, else `household_id`) is itself such a word (`合计,,,305.00`);
/// - or it has no key (no ID number: no run of six digits; no household id) and any cell,
///   mapped or not, is such a word;
/// - or it repeats `prev_id`, the ID of the data row above, with every other text column
///   empty but the one holding the word (a per-person `小计` under the person's rows).
///
/// A row with its own key is a record whatever its cells say: found by session 16's third
/// attack, a remark column reading `未汇总` on every bank row dropped the whole extract, and
/// an entity named `合计商店` lost its finding; its second, a member named `合计` was dropped.
pub(crate) fn subtotal_cell(
    texts: &[Option<&str>],
    cols: &[super::fieldmap::MappedColumn],
    prev_id: Option<&str>,
) -> Option<usize> {
    let marked_by = |test: fn(&str) -> bool| -> Vec<usize> {
        texts
            .iter()
            .enumerate()
            .filter(|(_, t)| t.is_some_and(|t| maybe_total(t.as_bytes()) && test(t)))
            .map(|(i, _)| i)
            .collect()
    };
    let marked = marked_by(total_marker);
    // (a person's subtotal under their rows may say more: [`person_total_marker`])
    let person_marked = marked_by(person_total_marker);
    if person_marked.is_empty() {
        return None;
    }
    let cell = |c: &super::fieldmap::MappedColumn| {
        texts
            .get(c.src)
            .copied()
            .flatten()
            .map(str::trim)
            .unwrap_or("")
    };
    let key_col = cols
        .iter()
        .find(|c| c.name == "id_number")
        .or_else(|| cols.iter().find(|c| c.name == "household_id"));
    let Some(key_col) = key_col else {
        return marked.first().copied();
    };
    if marked.contains(&key_col.src) {
        return Some(key_col.src);
    }
    let key = cell(key_col);
    let keyless = if key_col.name == "id_number" {
        !key_like(key)
    } else {
        key.is_empty()
    };
    if keyless {
        return marked.first().copied();
    }
    if key_col.name != "id_number" || prev_id.is_none_or(|p| p.trim() != key) {
        return None;
    }
    person_marked.iter().copied().find(|&m| {
        cols.iter().all(|c| {
            c.src == m
                || matches!(c.name.as_str(), "name" | "id_number" | "household_id")
                || c.kind == super::fieldmap::ValueKind::Money
                || cell(c).is_empty()
        })
    })
}

/// The row refused as a subtotal or total ([`total_marker`]) at `line`, whose cell of column
/// `column` (its header `header`) says so. It carries no key: it is nobody's record (a
/// caseload's `合计` row is no household either).
pub(crate) fn subtotal_row(line: u64, column: &str, header: &str, raw: &str) -> Rejected {
    Rejected {
        line,
        column: column.to_string(),
        raw: raw.to_string(),
        reason: "row_subtotal".into(),
        // (the cell is not quoted: in the name column it may be a name)
        message: format!(
            "line {line}, column {header}: a subtotal or total row (its cell reads as 小计/合计/Total), not a record: counting it would count the rows above it twice; not read"
        ),
        household_id: None,
        id_number: None,
        other_keys: Vec::new(),
    }
}

/// Whether a key cell (`id_number`, `household_id`) holds what a key holds: a run of six or
/// more digits (ASCII or full-width; spaces and hyphens inside do not end it, as the ID
/// reader repairs `6205 0319 …`: found by the session-15 attack). A header cell (`身份证号`,
/// `身份证号码(18位)`, `ID`, an empty one) does not.
pub(crate) fn key_like(v: &str) -> bool {
    let mut run = 0;
    for ch in v.chars() {
        if ch.is_ascii_digit() || ('０'..='９').contains(&ch) {
            run += 1;
            if run >= 6 {
                return true;
            }
        } else if !matches!(ch, ' ' | '\u{3000}' | '-' | '－') {
            run = 0;
        }
    }
    false
}

/// Money unit spellings a title may declare, longest first: the unit, or `None` for one hedui
/// does not read (a header `收入额(千元)` is refused alike).
const UNIT_WORDS: [(&str, Option<MoneyUnit>); 7] = [
    ("人民币万元", Some(MoneyUnit::Wan)),
    ("万元", Some(MoneyUnit::Wan)),
    ("千元", None),
    ("百元", None),
    ("亿元", None),
    ("人民币元", Some(MoneyUnit::Yuan)),
    ("元", Some(MoneyUnit::Yuan)),
];

/// A money unit a cell declares: `Ok` a unit hedui reads, `Err` the spelling of one it does
/// not (`千元`, `百元`, `亿元`).
pub(crate) type Declared = Result<MoneyUnit, &'static str>;

/// The money units a title cell declares: each unit after a `单位` (`单位：万元`, `金额单位：元`,
/// `（单位：万元）`, `单位 万元`, `单位=万元`, `单位（万元）`, `单位：万元（保留两位小数）`), or,
/// without `单位`, a cell that is a unit or a word with a unit marker (`万元`, `(万元)`,
/// `金额（万元）`). Empty when it declares none (`单位：人`, `填报单位：麦积区税务局`).
/// Found by the session-15 attacks: a `单位：万元` title read its amounts in yuan.
pub(crate) fn declared_units(cell: &str) -> Vec<Declared> {
    // (traditional forms as simplified: `單位：萬元`, session 28's attack)
    let n: String = fieldmap::norm(cell)
        .chars()
        .map(|c| match c {
            '萬' => '万',
            '單' => '单',
            c => c,
        })
        .collect();
    let word_at = |t: &str| {
        UNIT_WORDS
            .iter()
            .find(|(w, _)| t.starts_with(w))
            .copied()
            // `单位：万` and `单位：10000元` (session 28's attack: read as no declaration, the
            // amounts in yuan); 万 only where the cell or its bracket ends (`单位：万州区…`
            // is a place)
            .or_else(|| {
                t.strip_prefix('万')
                    .filter(|r| r.is_empty() || r.starts_with([')', ']', ',', '、', '。', ';']))
                    .map(|_| ("万", Some(MoneyUnit::Wan)))
            })
            .or_else(|| {
                t.starts_with("10000元")
                    .then_some(("10000元", Some(MoneyUnit::Wan)))
            })
    };
    let mut out = Vec::new();
    let mut rest = n.as_str();
    while let Some(pos) = rest.find("单位") {
        rest = &rest[pos + "单位".len()..];
        let mut t = rest.trim_start_matches([':', '=', '(', '[', '-', '—', '–', '~', '_']);
        // a list of units after one `单位` (`单位：元、万元`) declares each
        while let Some((w, u)) = word_at(t) {
            out.push(u.ok_or(w));
            t = &t[w.len()..];
            match t
                .strip_prefix(['、', ',', '，', '/'])
                .or_else(|| t.strip_prefix("或"))
            {
                Some(next) if word_at(next).is_some() => t = next,
                _ => break,
            }
        }
    }
    if out.is_empty() {
        let inner = n
            .trim_start_matches(['(', '['])
            .trim_end_matches([')', ']']);
        if let Some((w, u)) = UNIT_WORDS.iter().find(|(w, _)| inner == *w) {
            out.push(u.ok_or(*w));
        } else if let Some(open) = n.rfind('(')
            && n.ends_with(')')
            && !n[..open].is_empty()
            && !n[..open].chars().any(|c| c.is_ascii_digit())
            && let Some((w, u)) = UNIT_WORDS
                .iter()
                .find(|(w, _)| n[open + 1..n.len() - 1] == **w)
        {
            out.push(u.ok_or(*w));
        }
    }
    // 万元 written in any other way (`金额：万元`, `（金额：万元）`, `万元人民币`, `以万元为单位`,
    // `余额(万)`): a unit the amounts may be in, which this cannot read as declared; refused
    // rather than read as yuan (session 28's attack: each was skipped as a plain title and
    // the amounts under it read 10,000 times too small). Not a value's unit (`1.5万元`).
    if out.is_empty() && wan_mentioned(&n) {
        out.push(Err(WAN_UNDECLARED));
    }
    out
}

/// The spelling [`declared_units`] gives a 万元 it cannot read as declared.
const WAN_UNDECLARED: &str = "万元 outside a 单位 declaration";

/// Whether normalised text mentions 万元 (or 万 closing a bracket or the text) other than
/// after a number (`1.5万元` is a value).
fn wan_mentioned(n: &str) -> bool {
    n.char_indices().any(|(i, c)| {
        let after = &n[i + c.len_utf8()..];
        c == '万'
            && (after.starts_with('元') || after.is_empty() || after.starts_with([')', ']']))
            && !n[..i]
                .chars()
                .next_back()
                .is_some_and(|p| p.is_ascii_digit() || p == '.')
    })
}

/// One unit from what cells declare ([`declared_units`]): `Ok(None)` none, `Ok(Some(u))` one
/// unit (said once or more), `Err` a phrase for a unit hedui does not read or for two
/// different units.
fn one_unit(declared: impl Iterator<Item = Declared>) -> Result<Option<MoneyUnit>, String> {
    let mut unit = None;
    for d in declared {
        match d {
            Err(WAN_UNDECLARED) => {
                return Err(
                    "万元 in words hedui does not read as a declaration (write 单位：万元)"
                        .to_string(),
                );
            }
            Err(w) => {
                return Err(format!(
                    "the unit {w}, which hedui does not read (元 and 万元 only)"
                ));
            }
            Ok(u) if unit.is_some_and(|x| x != u) => {
                return Err("both 元 and 万元".to_string());
            }
            Ok(u) => unit = Some(u),
        }
    }
    Ok(unit)
}

/// A unit as the sheet writes it.
pub(crate) fn unit_label(u: MoneyUnit) -> &'static str {
    match u {
        MoneyUnit::Wan => "万元",
        MoneyUnit::Yuan => "元",
    }
}

/// A unit declared above the header, by a title row or by a header cell no column reads that
/// says `单位` (`单位：万元`, [`declared_units`]), applied to the money columns whose header names no
/// unit: they are read in it. `Ok` the note naming the line and the columns (`None` when
/// nothing changes: 元, or no such column); `Err` the message refusing the file when the
/// title declares a unit hedui does not read (`千元`) or two units. Found by the session-15
/// attacks: a `单位：万元` title row was skipped as a title and every amount under it read in
/// yuan, 10,000 times too small.
pub(crate) fn apply_declared_unit(
    mapping: &mut Mapping,
    title: &[(u64, Vec<String>)],
    header: &(u64, Vec<String>),
) -> Result<Option<String>, String> {
    let read = |i: usize| {
        mapping
            .cols
            .iter()
            .any(|c| c.src == i || c.also.iter().any(|a| a.src == i))
    };
    let header_cells: Vec<&String> = header
        .1
        .iter()
        .enumerate()
        .filter(|(i, c)| !read(*i) && fieldmap::norm(c).contains("单位"))
        .map(|(_, c)| c)
        .collect();
    let mut lines: Vec<u64> = Vec::new();
    let mut all: Vec<Declared> = Vec::new();
    for (l, cells) in title
        .iter()
        .map(|(l, c)| (*l, c.iter().collect::<Vec<_>>()))
        .chain(std::iter::once((header.0, header_cells)))
    {
        let d: Vec<Declared> = cells.iter().flat_map(|c| declared_units(c)).collect();
        if !d.is_empty() {
            lines.push(l);
            all.extend(d);
        }
    }
    let at = lines
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let unit = match one_unit(all.into_iter()) {
        Err(what) => {
            return Err(format!(
                "line {at} above the rows declares {what}: the amounts would be misread, so the file is not read; write 元 or 万元 in each amount column's header"
            ));
        }
        Ok(None) | Ok(Some(MoneyUnit::Yuan)) => return Ok(None),
        Ok(Some(u)) => u,
    };
    let mut cols = Vec::new();
    for c in mapping
        .cols
        .iter_mut()
        .filter(|c| c.kind == ValueKind::Money)
    {
        if c.unit.is_none() {
            c.unit = Some(unit);
            c.as_is = false;
            cols.push(format!("`{}`", c.name));
        }
        for a in c.also.iter_mut().filter(|a| a.unit.is_none()) {
            a.unit = Some(unit);
        }
    }
    Ok((!cols.is_empty()).then(|| {
        format!(
            "line {at} above the rows declares the unit {}: {} (no unit in the header) read in it, converted to yuan exactly",
            unit_label(unit),
            cols.join(", ")
        )
    }))
}

/// Whether a cell is a header word with a money unit marker (`收入额(万元)`, `余额[单位:元]`):
/// a header, never a value (`1.5万元` has digits before its unit).
fn unit_header(cell: &str) -> bool {
    let n = fieldmap::norm(cell);
    let (stem, unit) = fieldmap::split_unit(&n);
    unit.is_some() && !stem.is_empty() && !stem.chars().any(|c| c.is_ascii_digit())
}

/// The 1-based fields of `fields` that no column of `m` reads, as `field 3, field 5` (never
/// their text: a data row taken for a header would echo an ID number or a name).
fn unread_fields(m: &Mapping, width: usize) -> String {
    (0..width)
        .filter(|i| {
            !m.cols
                .iter()
                .any(|c| c.src == *i || c.also.iter().any(|a| a.src == *i))
        })
        .map(|i| format!("field {}", i + 1))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether the row `fields` is a header of the table whose rows are read under `current`,
/// mapped by the field map ([`Ctx::map_headers`]): exactly `current`'s canonical columns, none
/// missing, none ambiguous ([`HeaderAgain::Same`] or [`HeaderAgain::Switch`]); at least two
/// and at least half of them but not exactly them ([`HeaderAgain::Unreadable`]). Cheap for a
/// data row: only a row whose ID cells are not [`key_like`] is mapped at all. `None`: a data
/// row (its values are no header words).
///
/// Found by the session-14 attack: a file whose second half came from an export in 万元 (its
/// own header, `收入额(万元)`, in the middle) had that header refused as a data row and every
/// amount after it read in yuan, 10,000 times too small. And by the session-15 attack: a
/// header naming most columns but one (`税(元)`) was refused as one data row and the rows after
/// it, their amounts in other columns, read under the first header.
pub(crate) fn header_again(ctx: &Ctx, current: &Mapping, fields: &[&str]) -> Option<HeaderAgain> {
    let mut keys = current
        .cols
        .iter()
        .filter(|c| matches!(c.name.as_str(), "id_number" | "household_id"))
        .peekable();
    keys.peek()?;
    for c in keys {
        if fields.get(c.src).is_some_and(|v| key_like(v)) {
            return None;
        }
    }
    // A title row declaring a unit (`单位：万元`: at most two cells filled, at most half of
    // them), or a row of units under a header (`,,万元`: every filled cell a unit): skipped
    // when it is the unit the amounts are read in, else the rows after it cannot be told
    // (found by the session-15 attacks: the title refused as one data row and the 万元 rows
    // under it read as yuan; a data row whose `product` read `单位：元` skipped as a title).
    let read_in = |c: &MappedColumn| c.unit.unwrap_or(MoneyUnit::Yuan);
    let filled: Vec<(usize, &str)> = fields
        .iter()
        .enumerate()
        .filter(|(_, f)| !f.trim().is_empty())
        .map(|(i, f)| (i, *f))
        .collect();
    let money = || current.cols.iter().filter(|c| c.kind == ValueKind::Money);
    let units_row = !filled.is_empty()
        && filled.iter().all(|(_, f)| {
            let d = declared_units(f);
            d.len() == 1
                && UNIT_WORDS.iter().any(|(w, _)| {
                    let n = fieldmap::norm(f);
                    n.trim_start_matches('(').trim_end_matches(')') == *w
                })
        });
    if units_row {
        let consistent = filled.iter().all(|(i, f)| {
            money().find(|c| c.src == *i).is_some_and(|c| {
                declared_units(f)
                    .first()
                    .is_some_and(|d| *d == Ok(read_in(c)))
            })
        });
        return Some(if consistent {
            HeaderAgain::Title("of the units the amounts are read in".into())
        } else {
            HeaderAgain::Unreadable(
                "a row of units that are not the units the amounts are read in; write the unit in the header, 收入额(万元)".into(),
            )
        });
    }
    // (or a title line of one or two fields, unpadded: found by session 28's attack, the
    // 万元 rows after it read as yuan)
    if filled.len() <= 2 && (filled.len() * 2 <= fields.len() || fields.len() <= 2) {
        let declared: Vec<Declared> = filled.iter().flat_map(|(_, f)| declared_units(f)).collect();
        if !declared.is_empty() {
            return Some(match one_unit(declared.into_iter()) {
                Ok(Some(u)) if money().all(|c| read_in(c) == u) => {
                    HeaderAgain::Title(format!("declaring the unit {}", unit_label(u)))
                }
                Ok(Some(u)) => HeaderAgain::Unreadable(format!(
                    "a title declaring the unit {}, not the unit the amounts above it are read in",
                    unit_label(u)
                )),
                Ok(None) => return None,
                Err(what) => HeaderAgain::Unreadable(format!("a title declaring {what}")),
            });
        }
    }
    // a header holds no data value (an amount, a date, a long number): a junk row is not one
    if fields.iter().any(|f| fieldmap::looks_like_data_value(f)) {
        return None;
    }
    let texts: Vec<String> = fields.iter().map(|f| (*f).to_string()).collect();
    let m = ctx.map_headers(&texts);
    let named: Vec<&str> = current
        .cols
        .iter()
        .filter(|c| m.cols.iter().any(|n| n.name == c.name))
        .map(|c| c.name.as_str())
        .collect();
    // a header by its words (at least two and half of the table's columns), or by a money
    // unit marker (`收入额(万元)`: found by the session-15 attack, a header naming fewer columns
    // had its 万元 rows read in yuan)
    let by_words = named.len() >= 2 && named.len() * 2 >= current.cols.len();
    if !by_words && !fields.iter().any(|f| unit_header(f)) {
        return None;
    }
    if named.len() != current.cols.len()
        || m.cols.len() != current.cols.len()
        || !m.missing.is_empty()
        || !m.ambiguous.is_empty()
    {
        let mut lacks = Vec::new();
        let absent: Vec<&str> = current
            .cols
            .iter()
            .map(|c| c.name.as_str())
            .filter(|n| !named.contains(n))
            .collect();
        if !absent.is_empty() {
            lacks.push(format!("no header of {}", absent.join(", ")));
        }
        let more: Vec<&str> = m
            .cols
            .iter()
            .map(|c| c.name.as_str())
            .filter(|n| !named.contains(n))
            .collect();
        if !more.is_empty() {
            lacks.push(format!(
                "columns the first header has not: {}",
                more.join(", ")
            ));
        }
        if let Some((col, a, b)) = m.ambiguous.first() {
            lacks.push(format!("{a} and {b} both read as `{col}`"));
        }
        if !m.unmapped.is_empty() {
            lacks.push(format!(
                "in no field map: {}",
                unread_fields(&m, fields.len())
            ));
        }
        return Some(HeaderAgain::Unreadable(lacks.join("; ")));
    }
    let mut cols = Vec::with_capacity(m.cols.len());
    for c in &current.cols {
        cols.push(m.cols.iter().find(|n| n.name == c.name)?.clone());
    }
    let same = cols.iter().zip(&current.cols).all(|(a, b)| {
        a.src == b.src
            && a.unit == b.unit
            && a.kind == b.kind
            && a.also.len() == b.also.len()
            && a.also
                .iter()
                .zip(&b.also)
                .all(|(x, y)| x.src == y.src && x.unit == y.unit)
    });
    if same {
        return Some(HeaderAgain::Same);
    }
    Some(HeaderAgain::Switch(Mapping { cols, ..m }))
}

/// [`mapping_notes`] of a header inside the table that the rows after it are read under
/// ([`HeaderAgain::Switch`]; `width`: its fields), each saying from which line it holds. Its
/// cells in no field map are named by position, not text.
pub(crate) fn switched_mapping_notes(mapping: &Mapping, line: u64, width: usize) -> Vec<String> {
    let mut notes = Vec::new();
    let quiet = Mapping {
        unmapped: Vec::new(),
        ..mapping.clone()
    };
    mapping_notes(&quiet, line, &mut notes);
    if !mapping.unmapped.is_empty() {
        notes.push(format!(
            "in no field map, ignored: {}",
            unread_fields(mapping, width)
        ));
    }
    notes
        .into_iter()
        .map(|n| format!("from line {line} on: {n}"))
        .collect()
}

/// The header rows of `skipped` that repeat a header (not in `switched`, the lines of headers
/// and titles noted on their own), for the "repeated header rows skipped" note.
pub(crate) fn repeats_only(skipped: &[u64], switched: &[u64]) -> Vec<u64> {
    skipped
        .iter()
        .copied()
        .filter(|l| !switched.contains(l))
        .collect()
}

/// The message of a file not read because of a header inside its table that cannot be read
/// ([`HeaderAgain::Unreadable`]): `at` names the line or sheet row.
pub(crate) fn header_unreadable_message(at: &str, lacks: &str) -> String {
    format!(
        "{at} is a header again, in other words than the header above it, and it cannot be read ({lacks}): the rows after it are in a layout hedui cannot tell, so the file is not read; give every part of the file the same header, or split it at {at}"
    )
}

/// The note for a header inside the table that changes how the rows after it are read
/// ([`HeaderAgain::Switch`]): which columns moved or changed unit.
pub(crate) fn header_switch_note(line: &str, old: &Mapping, new: &Mapping) -> String {
    let unit = |u: Option<MoneyUnit>| match u {
        Some(MoneyUnit::Wan) => "万元",
        _ => "yuan",
    };
    let changed: Vec<String> = new
        .cols
        .iter()
        .zip(&old.cols)
        .filter(|(a, b)| a.src != b.src || a.unit != b.unit)
        .map(|(a, b)| {
            if a.unit != b.unit {
                format!(
                    "`{}` from {} in {} (was {})",
                    a.name,
                    a.header,
                    unit(a.unit),
                    unit(b.unit)
                )
            } else {
                format!(
                    "`{}` from {} (field {}, was {})",
                    a.name,
                    a.header,
                    a.src + 1,
                    b.src + 1
                )
            }
        })
        .collect();
    let changed = if changed.is_empty() {
        "the same columns under other headers".to_string()
    } else {
        changed.join(", ")
    };
    format!(
        "{line} is a header again, not the first one (two exports concatenated?): the rows after it are read under it: {changed}"
    )
}

/// The comparison form of a value of column kind `kind` (unit `unit` for money): money as
/// exact yuan with two decimals (`1.2345` in 万元 and `12,345` in yuan agree), anything
/// else as [`fieldmap::norm`] (whitespace removed, full-width ASCII folded, case ignored).
fn comparable(kind: ValueKind, unit: Option<MoneyUnit>, v: &str) -> String {
    if kind == ValueKind::Money {
        let t = match money_text(v, unit) {
            Ok(Some(s)) => s,
            _ => v.trim().to_string(),
        };
        if let Ok(y) = money_exact(&t, None) {
            return y;
        }
    }
    fieldmap::norm(v)
}

/// Which field of a row to read for column `c` when the file has other headers of the same
/// field ([`MappedColumn::also`]): the column's own (`c.src`) unless it is empty and another
/// is not. `Err` (reason `duplicate_column_conflict`, at `c.name`, the raw value of `c.src`)
/// when two non-empty values differ once normalised: the reader cannot know which is right,
/// and picking one by the field map's priority would be a silent guess.
#[allow(
    clippy::result_large_err,
    reason = "the rejected row is handed back whole with its reason"
)]
pub(crate) fn pick_source(c: &MappedColumn, fields: &[&str], line: u64) -> Result<usize, Rejected> {
    let own = fields.get(c.src).copied().unwrap_or("");
    let mut src = c.src;
    for a in &c.also {
        let other = fields.get(a.src).copied().unwrap_or("");
        if other.trim().is_empty() {
            continue;
        }
        let cur = fields.get(src).copied().unwrap_or("");
        if cur.trim().is_empty() {
            src = a.src;
            continue;
        }
        let unit_cur = if src == c.src {
            c.unit
        } else {
            c.also.iter().find(|x| x.src == src).and_then(|x| x.unit)
        };
        if comparable(c.kind, unit_cur, cur) != comparable(c.kind, a.unit, other) {
            let used = if src == c.src {
                c.header.as_str()
            } else {
                c.also
                    .iter()
                    .find(|x| x.src == src)
                    .map_or("", |x| x.header.as_str())
            };
            return Err(Rejected {
                line,
                column: c.name.clone(),
                raw: own.to_string(),
                reason: "duplicate_column_conflict".into(),
                message: format!(
                    "line {line}, column {}: columns {used} and {} both read as `{}` and hold different values in this row; the row is not read (correct one of them, or drop the column that is not wanted)",
                    c.name, a.header, c.name
                ),
                household_id: None,
                id_number: None,
                other_keys: if matches!(c.name.as_str(), "id_number" | "household_id") {
                    vec![(c.name.clone(), other.trim().to_string())]
                } else {
                    Vec::new()
                },
            });
        }
    }
    Ok(src)
}

/// A list of lines for a note: the first few, then a count.
pub(crate) fn lines_list(lines: &[u64]) -> String {
    let shown: Vec<String> = lines.iter().take(10).map(u64::to_string).collect();
    if lines.len() > 10 {
        format!("{} … ({} in all)", shown.join(", "), lines.len())
    } else {
        shown.join(", ")
    }
}

/// The canonical CSV being written for a rewritten file.
pub(crate) struct Sink {
    dir: tempfile::TempDir,
    path: PathBuf,
    writer: csv::Writer<BufWriter<File>>,
    lines: Vec<u64>,
    source: PathBuf,
}

impl Sink {
    /// A canonical CSV with header `names` in a new temp dir.
    pub fn new(source: &Path, names: &[&str]) -> Result<Sink, ConnectorError> {
        let err =
            |e: std::io::Error| unreadable(source, format!("cannot write the prepared copy: {e}"));
        let dir = tempfile::Builder::new()
            .prefix("hedui-prepared-")
            .tempdir()
            .map_err(err)?;
        let stem = source
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "table".into());
        let path = dir.path().join(format!("{stem}.csv"));
        let file = File::create(&path).map_err(err)?;
        let mut writer =
            csv::WriterBuilder::new().from_writer(BufWriter::with_capacity(1 << 20, file));
        writer
            .write_record(names)
            .map_err(|e| unreadable(source, format!("cannot write the prepared copy: {e}")))?;
        Ok(Sink {
            dir,
            path,
            writer,
            lines: Vec::new(),
            source: source.to_path_buf(),
        })
    }

    /// Write one data row that came from physical line `line`.
    pub fn row<I, T>(&mut self, line: u64, fields: I) -> Result<(), ConnectorError>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        self.writer.write_record(fields).map_err(|e| {
            unreadable(&self.source, format!("cannot write the prepared copy: {e}"))
        })?;
        self.lines.push(line);
        Ok(())
    }

    /// Rows written so far (the data row the next row will be).
    pub fn rows(&self) -> u64 {
        self.lines.len() as u64
    }

    /// Flush; the temp dir, the file and the line of each row.
    pub fn finish(mut self) -> Result<(tempfile::TempDir, PathBuf, Vec<u64>), ConnectorError> {
        self.writer.flush().map_err(|e| {
            unreadable(&self.source, format!("cannot write the prepared copy: {e}"))
        })?;
        Ok((self.dir, self.path, self.lines))
    }
}

/// A value problem: reason code and a sentence (without the value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Issue {
    pub reason: &'static str,
    pub message: String,
}

impl Issue {
    fn new(reason: &'static str, message: impl Into<String>) -> Issue {
        Issue {
            reason,
            message: message.into(),
        }
    }

    /// The rejected row for this issue at `line` in `column`.
    pub fn at(self, line: u64, column: &str, raw: &str) -> Rejected {
        Rejected {
            line,
            column: column.to_string(),
            raw: raw.to_string(),
            reason: self.reason.to_string(),
            message: format!("line {line}, column {column}: {}", self.message),
            household_id: None,
            id_number: None,
            other_keys: Vec::new(),
        }
    }
}

/// Placeholders that mean "no value" (the same list as the ID parser's): never converted.
pub(crate) const PLACEHOLDERS: [&str; 12] = [
    "", "null", "NULL", "Null", "\\N", "无", "/", "0", "-", "N/A", "n/a", "NaN",
];

/// An exact decimal read from text: sign, integer digits and fraction digits.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Decimal {
    neg: bool,
    int: String,
    frac: String,
}

/// Parse `[+-][¥￥]digits[,digits…][.digits]` exactly (no exponent, no floats).
fn parse_decimal(s: &str) -> Option<Decimal> {
    let s = s.trim();
    let (neg, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let s = s.trim_start_matches(['¥', '￥']).trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    // Thousands separators only where they group by three (`1,234,567`), as
    // `Fen::parse_yuan` reads yuan: `14,06万` is a decimal comma or a typo, and read as
    // 140,600 万 it was 14,060,000 yuan (found by the session-14 attack).
    if int.contains(',') {
        let groups: Vec<&str> = int.split(',').collect();
        let grouped = !groups[0].is_empty()
            && groups[0].len() <= 3
            && groups[1..].iter().all(|g| g.len() == 3);
        if !grouped {
            return None;
        }
    }
    let mut digits = String::with_capacity(int.len());
    for c in int.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ',' => {}
            _ => return None,
        }
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(Decimal {
        neg,
        int: digits,
        frac: frac.to_string(),
    })
}

/// Multiply by 10^shift and print with exactly two decimals; more than two non-zero
/// decimals is an error (nothing is rounded).
fn format_yuan(d: &Decimal, shift: usize) -> Result<String, Issue> {
    let mut int = d.int.clone();
    let mut frac = d.frac.clone();
    for _ in 0..shift {
        if frac.is_empty() {
            int.push('0');
        } else {
            int.push(frac.remove(0));
        }
    }
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let extra = frac.get(2..).unwrap_or("");
    if extra.bytes().any(|b| b != b'0') {
        return Err(Issue::new(
            "money_too_many_decimals",
            "more than 2 decimals in yuan; sub-fen amounts are not rounded",
        ));
    }
    let mut cents: String = frac.chars().take(2).collect();
    while cents.len() < 2 {
        cents.push('0');
    }
    let zero = int == "0" && cents == "00";
    Ok(format!(
        "{}{int}.{cents}",
        if d.neg && !zero { "-" } else { "" }
    ))
}

/// Normalise a money text value for a column whose header unit is `unit`: a value suffix
/// (`万元`, `万`, `元`) wins over the header; 万元 amounts are shifted exactly. `Ok(None)`
/// when the value is to be written unchanged.
pub(crate) fn money_text(raw: &str, unit: Option<MoneyUnit>) -> Result<Option<String>, Issue> {
    let t = raw.trim();
    if PLACEHOLDERS.contains(&t) {
        return Ok(None);
    }
    let (body, value_unit) =
        if let Some(b) = t.strip_suffix("万元").or_else(|| t.strip_suffix('万')) {
            (b, Some(MoneyUnit::Wan))
        } else if let Some(b) = t.strip_suffix('元') {
            (b, Some(MoneyUnit::Yuan))
        } else {
            (t, None)
        };
    match value_unit.or(unit) {
        Some(MoneyUnit::Wan) => {
            // (full-width digits as an input method types them: `２万`, as in yuan)
            let d = parse_decimal(&ascii_forms(body)).ok_or_else(|| {
                Issue::new(
                    "money_not_a_number",
                    // found by session 16's attack: `贰万元` in a column in yuan was said to be
                    // refused because "the column is in 万元"
                    if value_unit.is_some() {
                        "not an amount: the text before its 万 or 万元 is no number in digits (an amount in 万元 is converted to yuan; 贰万 is not read)"
                    } else {
                        "not an amount (the column is in 万元 and is converted to yuan)"
                    },
                )
            })?;
            format_yuan(&d, 4).map(Some)
        }
        // (only from an amount: `壹仟元` is written as it came, and refused as not an amount
        // without a log record claiming a change; it had one until session 14)
        Some(MoneyUnit::Yuan) if value_unit.is_some() && is_amount_text(body) => {
            Ok(Some(body.trim().to_string()))
        }
        _ => Ok(None),
    }
}

/// Whether `body` reads as an amount (digits, sign, `¥`, separators, point), its full-width
/// forms (U+FF01–U+FF5E, as an input method types them) read as ASCII.
fn is_amount_text(body: &str) -> bool {
    parse_decimal(&ascii_forms(body)).is_some()
}

/// `body` with its full-width forms (U+FF01–U+FF5E) as ASCII and U+3000 as a space.
fn ascii_forms(body: &str) -> std::borrow::Cow<'_, str> {
    if body.is_ascii() {
        return std::borrow::Cow::Borrowed(body);
    }
    std::borrow::Cow::Owned(
        body.chars()
            .map(|c| match c {
                '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
                '\u{3000}' => ' ',
                c => c,
            })
            .collect(),
    )
}

/// The normalisation record of a money value [`money_text`] changed.
pub(crate) fn money_change(raw: &str, unit: Option<MoneyUnit>) -> (&'static str, String) {
    let t = raw.trim();
    if t.ends_with('万') || t.ends_with("万元") {
        (
            "money_wan",
            "value suffix 万 (U+4E07): 万元 → yuan, ×10,000 exactly".into(),
        )
    } else if unit == Some(MoneyUnit::Wan) && !t.ends_with('元') {
        (
            "money_wan",
            "column in 万元 (header or field map): → yuan, ×10,000 exactly".into(),
        )
    } else {
        (
            "money_unit_suffix",
            "value suffix 元 (U+5143) removed".into(),
        )
    }
}

/// The most runs [`Prepared::line_runs`] keeps (16 bytes each in a run's state).
pub const MAX_LINE_RUNS: usize = 65_536;

/// Significant digits a spreadsheet keeps and shows of a number (Excel: 15).
const SPREADSHEET_DIGITS: i32 = 15;

/// An amount stored as a binary float (a workbook's number cell, a JSON number) as yuan with
/// two decimals after the unit, and whether binary noise was dropped to read it.
///
/// The shortest decimal form that round-trips the f64 (`1234.5`) when it is exact to the
/// cent. Otherwise the value as a spreadsheet shows it, at 15 significant digits: a formula's
/// binary noise (`=A2*1.1` giving 366.43000000000006; `0.1 + 0.2`) sits in the 16th and 17th
/// digits, and the clerk who made the file saw and checked 366.43. That reading is used when it
/// is exact to the cent, with `true` (logged as `money_float_noise`); an amount with a third
/// decimal within the 15 digits (366.437) is still refused (`money_too_many_decimals`).
///
/// # Errors
/// `money_not_a_number` for NaN or ±∞; what [`money_exact`] refuses of the shortest form.
pub(crate) fn money_from_f64(v: f64, unit: Option<MoneyUnit>) -> Result<(String, bool), Issue> {
    if !v.is_finite() {
        return Err(Issue::new("money_not_a_number", "not a finite amount"));
    }
    let exact = money_exact(&format!("{v}"), unit);
    if exact.is_ok() || v == 0.0 {
        return exact.map(|t| (t, false));
    }
    // the decimal exponent of v's leading digit, then as many decimals as leave 15 digits
    let exponent: i32 = format!("{v:e}")
        .rsplit_once('e')
        .and_then(|(_, e)| e.parse().ok())
        .unwrap_or(0);
    let decimals = (SPREADSHEET_DIGITS - 1 - exponent).clamp(0, 40) as usize;
    let shown = format!("{v:.decimals$}");
    match money_exact(&shown, unit) {
        Ok(t) => Ok((t, true)),
        Err(_) => exact.map(|t| (t, false)),
    }
}

/// The per-row log's record of an amount read from a number (never the value): binary noise
/// dropped ([`money_from_f64`]'s `noise`), or a 万元 column's shift (`wan`); `None` when
/// neither. `what` names the number (`number cell`, `JSON number`).
pub(crate) fn number_money_change(
    noise: bool,
    wan: bool,
    what: &str,
) -> Option<(&'static str, String)> {
    let shift = "a 万元 column: → yuan, ×10,000 exactly";
    match (noise, wan) {
        (true, wan) => Some((
            "money_float_noise",
            format!(
                "binary float noise beyond the 15 significant digits a spreadsheet keeps: read as the spreadsheet shows the number{}",
                if wan {
                    format!("; {shift}")
                } else {
                    String::new()
                }
            ),
        )),
        (false, true) => Some(("money_wan", format!("{what} in {shift}"))),
        (false, false) => None,
    }
}

/// Exact decimal text (digits, optional sign and point) as yuan with two decimals after
/// the unit.
pub(crate) fn money_exact(text: &str, unit: Option<MoneyUnit>) -> Result<String, Issue> {
    let d = parse_decimal(text).ok_or_else(|| Issue::new("money_not_a_number", "not an amount"))?;
    format_yuan(&d, if unit == Some(MoneyUnit::Wan) { 4 } else { 0 })
}

/// Text of a number cell outside money columns: integers without `.0`; integers beyond
/// 2^53 cannot have come through a spreadsheet intact.
pub(crate) fn number_text(v: f64) -> Result<String, Issue> {
    if !v.is_finite() {
        return Err(Issue::new("number_not_finite", "not a finite number"));
    }
    if v.fract() == 0.0 && v.abs() >= 9_007_199_254_740_992.0 {
        return Err(Issue::new(
            "spreadsheet_number_digits_lost",
            "a number this long was stored as a spreadsheet number, which keeps 15 significant digits; format the column as text",
        ));
    }
    Ok(format!("{v}"))
}

pub(crate) fn unreadable(path: &Path, e: impl std::fmt::Display) -> ConnectorError {
    // Library errors may quote a value; keep only the first line and cut it short.
    let msg = e.to_string();
    let first = msg
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(200)
        .collect::<String>();
    ConnectorError::Unreadable {
        path: path.display().to_string(),
        message: first,
    }
}

/// Strip a leading BOM (U+FEFF) from a field.
pub(crate) fn strip_bom(s: &str) -> Cow<'_, str> {
    match s.strip_prefix('\u{feff}') {
        Some(r) => Cow::Owned(r.to_string()),
        None => Cow::Borrowed(s),
    }
}

/// Counts of value changes by kind, for the notes.
#[derive(Debug, Default)]
pub(crate) struct Changes(pub BTreeMap<String, u64>);

impl Changes {
    pub fn add(&mut self, what: impl Into<String>) {
        *self.0.entry(what.into()).or_insert(0) += 1;
    }

    pub fn into_notes(self, notes: &mut Vec<String>) {
        for (what, n) in self.0 {
            notes.push(format!("{what}: {n} value(s)"));
        }
    }
}
