//! The quarantine: rows and values refused, each with where it was and why.
//!
//! `quarantine.csv` columns: file, line (physical line of a CSV file; empty for Parquet),
//! row (0-based data row), column, value (masked), reason (stable code), action (what hedui
//! did: `rejected` = the row was not used; `referred` = the row was kept and its household
//! referred), message (a sentence for a clerk, never a person's value).

use std::collections::BTreeMap;
use std::path::Path;

use crate::domain::mask;

/// What hedui did with a quarantined row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The row was not used (no person could be linked, or a value is unreadable).
    Rejected,
    /// The row was kept; the household it belongs to is referred.
    Referred,
}

/// One quarantined row or value.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QuarantineEntry {
    /// File name (as given on the command line, or the source name).
    pub file: String,
    /// Physical line (CSV: data row + 2); None for Parquet.
    pub line: Option<u64>,
    /// 0-based data row of the file as read (None for a row refused while decoding, before
    /// it became a data row).
    pub row: Option<u64>,
    /// The column.
    pub column: String,
    /// The value, masked.
    pub value: String,
    /// Stable reason code.
    pub reason: String,
    /// What was done.
    pub action: Action,
    /// A sentence for a clerk.
    pub message: String,
}

impl QuarantineEntry {
    /// An entry for `file` at data row `row` (CSV files get a physical line).
    #[allow(
        clippy::too_many_arguments,
        reason = "every field of a quarantine row, named at each call"
    )]
    pub fn new(
        file: &str,
        is_csv: bool,
        row: u64,
        column: &str,
        raw_value: &str,
        reason: &str,
        action: Action,
        message: String,
    ) -> Self {
        QuarantineEntry::at(
            file,
            is_csv.then_some(row + 2),
            Some(row),
            column,
            raw_value,
            reason,
            action,
            message,
        )
    }

    /// An entry for a row the reader refused while decoding (before it became a data row).
    pub fn from_rejected(file: &str, r: &hedui_connectors::Rejected) -> Self {
        let mut e = QuarantineEntry::at(
            file,
            Some(r.line),
            None,
            &r.column,
            &r.raw,
            &r.reason,
            Action::Rejected,
            r.message.clone(),
        );
        if r.column.is_empty() {
            // A whole row (ragged, bad JSON) holds names and IDs anywhere: never shown.
            e.value = "(row withheld)".into();
        }
        e
    }

    /// The entry of a source row (data row `row`, physical `line`) that repeats an earlier row
    /// of the same person value for value (`first_line`: that row's physical line, if
    /// known): counted once, the person's source incomplete, the household referred
    /// (`row_duplicate`; the caller marks the source incomplete). Found by the s7 attack: a
    /// bank row given twice counted its balance twice.
    pub fn row_duplicate(
        file: &str,
        line: Option<u64>,
        row: u64,
        first_line: Option<u64>,
        kind: hedui_connectors::SourceKind,
    ) -> QuarantineEntry {
        let first =
            first_line.map_or_else(|| "an earlier line".to_string(), |n| format!("line {n}"));
        QuarantineEntry::at(
            file,
            line,
            Some(row),
            "",
            "",
            "row_duplicate",
            Action::Referred,
            format!(
                "the row repeats {first} of the same person value for value (an extract read twice?); counted once, the person's {} evidence is incomplete, household referred",
                kind.name()
            ),
        )
    }

    /// The entry of a linked source row that the evidence could not use (`fe`: a bad amount,
    /// an unknown vocabulary value): the row is kept and quoted at the column at fault, and
    /// the person's household is referred (the caller marks the source incomplete).
    pub fn evidence_fault(
        file: &str,
        line: Option<u64>,
        kind: hedui_connectors::SourceKind,
        rec: &hedui_connectors::Record,
        fe: &crate::evidence::FieldError,
    ) -> Self {
        let at = kind
            .columns()
            .iter()
            .position(|c| c.name == fe.column)
            .unwrap_or(0);
        let raw = rec.values.get(at).cloned().flatten().unwrap_or_default();
        QuarantineEntry::at(
            file,
            line,
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
        )
    }

    /// An entry at a known physical line (from the reader's line map) and data row.
    #[allow(clippy::too_many_arguments)]
    pub fn at(
        file: &str,
        line: Option<u64>,
        row: Option<u64>,
        column: &str,
        raw_value: &str,
        reason: &str,
        action: Action,
        message: String,
    ) -> Self {
        QuarantineEntry {
            file: file.to_string(),
            line,
            row,
            column: column.to_string(),
            value: mask_value(raw_value),
            reason: reason.to_string(),
            action,
            message,
        }
    }
}

/// Longest masked value written, in characters; a longer one keeps its first and last four
/// characters around 32 stars and says how long it was.
pub const MAX_MASKED_CHARS: usize = 40;

/// The `value` column of quarantine.csv: [`mask`] (first and last four characters of an
/// ID-like value), except that a value holding two or more letters besides the check
/// character `X` (a name, in any script: `努尔艾合买提·阿布都热合曼` in an id_number column
/// showed 8 of its 13 characters) is starred whole, and a value longer than
/// [`MAX_MASKED_CHARS`] (a 5 MB field) is cut. `6.20503E+17` and full-width digits stay
/// ID-like.
pub fn mask_value(raw: &str) -> String {
    // Bidirectional controls (U+202A-U+202E, U+2066-U+2069, U+200E/U+200F) are left out: in
    // a viewer they reorder what the clerk sees (found by session 16's attack, kept around a
    // masked value).
    let shown: String;
    let raw = if raw.chars().any(bidi_control) {
        shown = raw.chars().filter(|c| !bidi_control(*c)).collect();
        shown.as_str()
    } else {
        raw
    };
    let n = raw.chars().count();
    let text = raw
        .chars()
        .filter(|c| c.is_alphabetic() && !matches!(c, 'x' | 'X' | 'ｘ' | 'Ｘ'))
        .count()
        >= 2;
    if text {
        return if n > MAX_MASKED_CHARS {
            format!("{} ({n} characters)", "*".repeat(MAX_MASKED_CHARS))
        } else {
            "*".repeat(n)
        };
    }
    if n > MAX_MASKED_CHARS {
        let chars: Vec<char> = raw.chars().collect();
        let head: String = chars[..4].iter().collect();
        let tail: String = chars[n - 4..].iter().collect();
        return format!("{head}{}{tail} ({n} characters)", "*".repeat(32));
    }
    mask(raw)
}

/// A character that changes the display order of text around it.
fn bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// All quarantined entries of a run.
#[derive(Debug, Default)]
pub struct Quarantine {
    /// The entries, in the order found.
    pub entries: Vec<QuarantineEntry>,
}

impl Quarantine {
    /// Add an entry.
    pub fn push(&mut self, e: QuarantineEntry) {
        self.entries.push(e);
    }

    /// Counts by reason code.
    pub fn by_reason(&self) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for e in &self.entries {
            *m.entry(e.reason.clone()).or_insert(0) += 1;
        }
        m
    }

    /// Write `quarantine.csv`.
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
        let mut w = csv::Writer::from_path(path)?;
        w.write_record([
            "file", "line", "row", "column", "value", "reason", "action", "message",
        ])?;
        for e in &self.entries {
            w.write_record([
                e.file.as_str(),
                &e.line.map(|l| l.to_string()).unwrap_or_default(),
                &e.row.map(|r| r.to_string()).unwrap_or_default(),
                &e.column,
                &e.value,
                &e.reason,
                match e.action {
                    Action::Rejected => "rejected",
                    Action::Referred => "referred",
                },
                &e.message,
            ])?;
        }
        w.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the s5 attack: a bank row with id_number and name swapped put
    /// `努尔艾合*****都热合曼` (8 of the name's 13 characters) into quarantine.csv, and a 5 MB
    /// balance field wrote a 5 MB value.
    #[test]
    fn a_name_is_starred_whole_and_a_huge_value_is_cut() {
        assert_eq!(mask_value("努尔艾合买提·阿布都热合曼"), "*".repeat(13));
        assert_eq!(mask_value("王秀兰"), "***");
        assert_eq!(mask_value("Zhang Xiuying-Wang"), "*".repeat(18));
        // ID-like values keep their first and last four, full-width ones too
        assert_eq!(mask_value("620503198703151234"), "6205**********1234");
        assert_eq!(
            mask_value("６２０５０３１９８７０３１５１２３Ｘ"),
            "６２０５**********１２３Ｘ"
        );
        assert_eq!(mask_value("6.20503E+17"), "6.20***E+17");
        let huge = "9".repeat(5_000_000);
        assert_eq!(
            mask_value(&huge),
            format!("9999{}9999 (5000000 characters)", "*".repeat(32))
        );
        let long_name = "阿".repeat(100);
        assert_eq!(
            mask_value(&long_name),
            format!("{} (100 characters)", "*".repeat(40))
        );
        let e = QuarantineEntry::at(
            "bank.csv",
            Some(3),
            Some(1),
            "id_number",
            "努尔艾合买提·阿布都热合曼",
            "id_bad_character",
            Action::Rejected,
            String::new(),
        );
        assert_eq!(e.value, "*".repeat(13));
    }

    #[test]
    fn bidirectional_controls_are_left_out_of_a_masked_value() {
        assert_eq!(
            mask_value("\u{202d}620503198703151234\u{202c}"),
            "6205**********1234"
        );
        assert_eq!(mask_value("\u{2067}6.20503E+17\u{2069}"), "6.20***E+17");
    }
}
