//! The per-row normalisation log: every value hedui changed on the way in (an ID number
//! repaired, a name normalised, a date or amount respelled, 万元 converted), one record per
//! changed value, written as `normalisations.csv` and counted by kind in `summary.json`.
//!
//! Columns: file, line (physical line of the original; sheet row of a workbook; empty for
//! Parquet), row (0-based data row as read), column, kind (stable code such as
//! `id_fullwidth`, `id_spreadsheet_quote`, `id_legacy15`, `id_lowercase_x`, `name_nfkc`,
//! `name_invisible`, `date_chinese`, `money_thousands`, `money_wan`, `region_fullwidth`), detail (what changed,
//! naming code points such as U+FF11; never the value). Only changed values produce a
//! record, so a clean extract costs nothing here.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDate;

use crate::domain::{IdNumber, IdRepair, Name, NameError, date, money};

/// One changed value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Normalisation {
    /// File name.
    pub file: String,
    /// Physical line (sheet row for workbooks); None for Parquet.
    pub line: Option<u64>,
    /// 0-based data row.
    pub row: Option<u64>,
    /// The canonical column.
    pub column: String,
    /// Stable kind code.
    pub kind: String,
    /// What changed (code points, rules), never the value.
    pub detail: String,
}

/// All normalisations of a run (or of one table while it is read).
#[derive(Debug, Default)]
pub struct Normalisations {
    /// The records, in the order found.
    pub records: Vec<Normalisation>,
}

/// Where a value was: file, physical line, data row, column.
#[derive(Debug, Clone, Copy)]
pub struct At<'a> {
    /// File name.
    pub file: &'a str,
    /// Physical line.
    pub line: Option<u64>,
    /// Data row.
    pub row: Option<u64>,
    /// Column.
    pub column: &'a str,
}

impl Normalisations {
    /// Record one change.
    pub fn push(&mut self, at: At, kind: &str, detail: String) {
        self.records.push(Normalisation {
            file: at.file.to_string(),
            line: at.line,
            row: at.row,
            column: at.column.to_string(),
            kind: kind.to_string(),
            detail,
        });
    }

    /// Record the repairs [`IdNumber::parse`] made to `raw` (none when it is invalid or
    /// already normal). Returns the kinds recorded.
    pub fn id(&mut self, at: At, raw: &str, as_of: NaiveDate) -> Vec<&'static str> {
        match IdNumber::parse(raw, as_of) {
            Ok((_, repairs)) => self.id_repairs(at, raw, &repairs),
            Err(_) => Vec::new(),
        }
    }

    /// [`Normalisations::id`] for a number already parsed: record `repairs`, what
    /// [`IdNumber::parse`] gave for `raw`, and return their kinds.
    pub fn id_repairs(&mut self, at: At, raw: &str, repairs: &[IdRepair]) -> Vec<&'static str> {
        let mut kinds = Vec::with_capacity(repairs.len());
        for r in repairs {
            let (kind, detail) = r.describe(raw);
            kinds.push(kind);
            self.push(at, kind, detail);
        }
        kinds
    }

    /// Record what [`Name::parse`] changed in `raw`, or flag a name a lossy export damaged
    /// (`name_lossy`: a `?` or U+FFFD; the name is not accepted, so the error-tolerant linkage
    /// treats it as missing).
    pub fn name(&mut self, at: At, raw: &str) {
        if (raw.is_ascii() && raw.trim() == raw && !raw.contains('?'))
            || Name::is_plain_ideographs(raw)
        {
            return;
        }
        match Name::parse(raw) {
            Ok((_, repairs)) => {
                for r in &repairs {
                    let (kind, detail) = r.describe(raw);
                    self.push(at, kind, detail);
                }
            }
            Err(NameError::Lossy) => self.push(
                at,
                "name_lossy",
                "a '?' or U+FFFD: characters were lost by a lossy export (wrong encoding); the name is not used".to_string(),
            ),
            Err(_) => {}
        }
    }

    /// Record a date (or month) that was not spelled in ISO form.
    pub fn date(&mut self, at: At, raw: &str, month: bool) {
        if let Some((kind, detail)) = date::spelling(raw, month) {
            self.push(at, kind, detail.to_string());
        }
    }

    /// Record an amount that was not spelled in the §2 form.
    pub fn money(&mut self, at: At, raw: &str) {
        for (kind, detail) in money::spelling(raw) {
            self.push(at, kind, detail);
        }
    }

    /// Record a year (`tax_year`, `year`) read through a spreadsheet text marker or in
    /// full-width digits ([`crate::domain::year_spelling`]).
    pub fn year(&mut self, at: At, raw: &str) {
        for (kind, detail) in crate::domain::year_spelling(raw) {
            self.push(at, kind, detail);
        }
    }

    /// Append another log.
    pub fn append(&mut self, other: &mut Normalisations) {
        self.records.append(&mut other.records);
    }

    /// Counts by kind.
    pub fn by_kind(&self) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for r in &self.records {
            *m.entry(r.kind.clone()).or_insert(0) += 1;
        }
        m
    }

    /// Write `normalisations.csv`.
    ///
    /// # Errors
    /// I/O errors.
    pub fn write_csv(&self, path: &Path) -> std::io::Result<()> {
        // a new file: a file or link already there is removed, not written through
        if let Err(e) = std::fs::remove_file(path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            return Err(e);
        }
        let mut w = csv::Writer::from_writer(std::io::BufWriter::new(std::fs::File::create(path)?));
        w.write_record(["file", "line", "row", "column", "kind", "detail"])?;
        for r in &self.records {
            w.write_record([
                r.file.as_str(),
                &r.line.map(|l| l.to_string()).unwrap_or_default(),
                &r.row.map(|l| l.to_string()).unwrap_or_default(),
                &r.column,
                &r.kind,
                &r.detail,
            ])?;
        }
        w.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> At<'static> {
        At {
            file: "members.csv",
            line: Some(7),
            row: Some(5),
            column: "name",
        }
    }

    #[test]
    fn a_lossy_name_is_flagged_and_a_clean_one_is_not() {
        let mut n = Normalisations::default();
        n.name(at(), "王?兰");
        n.name(at(), "\u{FFFD}\u{FFFD}");
        n.name(at(), "??");
        n.name(at(), "王秀兰");
        n.name(at(), "Li Lei");
        assert_eq!(n.by_kind().get("name_lossy"), Some(&3));
        assert_eq!(n.records.len(), 3);
        assert_eq!(n.records[0].line, Some(7));
        assert!(!n.records[0].detail.contains('王'), "never the value");
    }
}
