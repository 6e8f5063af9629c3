//! The file transport: a source's extract on disk (CSV or Parquet), DESIGN.md §2.
//!
//! Reading is lazy (a polars plan) so that a batch scans each file once, streaming, and
//! only the rows of caseload persons are materialised. CSV is read with every column as
//! text, so ID numbers stay strings and money stays exact until hedui's own parsers read
//! it; Parquet keeps its types (decimal money, dates) and is turned into text the same way.
//! Columns are checked by name before any row is read.

use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::{Connector, ConnectorError, Record, RecordSet, SourceKind, SourceOutcome};

/// The on-disk format of an extract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// Comma-separated text with a header row, UTF-8.
    Csv,
    /// Apache Parquet.
    Parquet,
}

impl FileFormat {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            FileFormat::Csv => "csv",
            FileFormat::Parquet => "parquet",
        }
    }
}

/// Find `<stem>.parquet` or `<stem>.csv` in `dir` (Parquet first, as the reference does).
pub fn locate(dir: &Path, stem: &str) -> Option<(PathBuf, FileFormat)> {
    [FileFormat::Parquet, FileFormat::Csv].into_iter().find_map(|f| {
        let p = dir.join(format!("{stem}.{}", f.extension()));
        p.is_file().then_some((p, f))
    })
}

fn unreadable(path: &Path, e: impl std::fmt::Display) -> ConnectorError {
    // polars errors may quote a value; keep only the first line and cut it short.
    let msg = e.to_string();
    let first = msg.lines().next().unwrap_or("").chars().take(160).collect::<String>();
    ConnectorError::Unreadable { path: path.display().to_string(), message: first }
}

/// A lazy scan of a table file, checked to hold `required` columns and narrowed to them
/// (extra columns are allowed and ignored, §2).
///
/// # Errors
/// [`ConnectorError::MissingColumns`] naming every missing column, or
/// [`ConnectorError::Unreadable`].
pub fn scan_table(path: &Path, format: FileFormat, required: &[&str]) -> Result<LazyFrame, ConnectorError> {
    let p = PlRefPath::new(path.to_string_lossy().as_ref());
    let mut lf = match format {
        FileFormat::Csv => LazyCsvReader::new(p)
            .with_has_header(true)
            .with_infer_schema_length(Some(0))
            .with_missing_is_null(true)
            .finish()
            .map_err(|e| unreadable(path, e))?,
        FileFormat::Parquet => {
            LazyFrame::scan_parquet(p, ScanArgsParquet::default()).map_err(|e| unreadable(path, e))?
        }
    };
    let schema = lf.collect_schema().map_err(|e| unreadable(path, e))?;
    let missing: Vec<String> =
        required.iter().filter(|c| schema.get(c).is_none()).map(|c| c.to_string()).collect();
    if !missing.is_empty() {
        return Err(ConnectorError::MissingColumns { path: path.display().to_string(), missing });
    }
    Ok(lf.select(required.iter().map(|c| col(*c)).collect::<Vec<_>>()))
}

/// Cast every column but those named in `keep` to text (decimals as `1234.50`, dates ISO).
///
/// # Errors
/// A polars error when a column type cannot be written as text.
pub fn text_columns(df: DataFrame, keep: &[&str]) -> PolarsResult<DataFrame> {
    let exprs: Vec<Expr> = df
        .get_column_names()
        .into_iter()
        .map(|n| if keep.contains(&n.as_str()) { col(n.clone()) } else { col(n.clone()).cast(DataType::String) })
        .collect();
    df.lazy().select(exprs).collect()
}

/// One source's extract on disk.
#[derive(Debug, Clone)]
pub struct FileConnector {
    kind: SourceKind,
    path: PathBuf,
    format: FileFormat,
}

impl FileConnector {
    /// Find the extract of `kind` in `dir` (`<source>.parquet` or `<source>.csv`).
    ///
    /// # Errors
    /// [`ConnectorError::NotFound`].
    pub fn locate(dir: &Path, kind: SourceKind) -> Result<FileConnector, ConnectorError> {
        locate(dir, kind.name()).map(|(path, format)| FileConnector { kind, path, format }).ok_or_else(|| {
            ConnectorError::NotFound {
                source_name: kind.name(),
                expected: format!("{}/{}.parquet or .csv", dir.display(), kind.name()),
            }
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The format.
    pub fn format(&self) -> FileFormat {
        self.format
    }

    /// A lazy scan of the §2 columns (`id_number`, `name`, then the source's columns).
    ///
    /// # Errors
    /// As [`scan_table`].
    pub fn scan(&self) -> Result<LazyFrame, ConnectorError> {
        scan_table(&self.path, self.format, &self.kind.required_columns())
    }

    /// Turn a collected frame of this source (with a `_row` index column, `id_number` and
    /// the §2 columns) into canonical records.
    ///
    /// # Errors
    /// [`ConnectorError::Unreadable`] when a column cannot be read as text.
    pub fn records(&self, df: DataFrame) -> Result<RecordSet, ConnectorError> {
        frame_to_records(&self.path, self.kind, df)
    }
}

/// Canonical records from a frame holding `_row`, `id_number` and the source's columns.
///
/// # Errors
/// [`ConnectorError::Unreadable`] when a column cannot be read as text.
pub fn frame_to_records(path: &Path, kind: SourceKind, df: DataFrame) -> Result<RecordSet, ConnectorError> {
    let df = text_columns(df, &["_row"]).map_err(|e| unreadable(path, e))?;
    let rows = df.column("_row").and_then(|c| c.cast(&DataType::UInt64)).map_err(|e| unreadable(path, e))?;
    let rows = rows.u64().map_err(|e| unreadable(path, e))?;
    let ids = df.column("id_number").and_then(|c| c.str()).map_err(|e| unreadable(path, e))?;
    let cols: Vec<&StringChunked> = kind
        .columns()
        .iter()
        .map(|c| df.column(c.name).and_then(|c| c.str()))
        .collect::<PolarsResult<_>>()
        .map_err(|e| unreadable(path, e))?;
    let mut records = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        records.push(Record {
            row: rows.get(i).unwrap_or(0),
            id_number: ids.get(i).unwrap_or("").to_string(),
            values: cols.iter().map(|c| c.get(i).filter(|v| !v.is_empty()).map(str::to_string)).collect(),
        });
    }
    Ok(RecordSet { columns: kind.columns().iter().map(|c| c.name).collect(), records })
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
                .filter(col("id_number").cast(DataType::String).is_in(lit(wanted).implode(false), false))
                .collect()
                .map_err(|e| unreadable(&self.path, e))
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

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::File::create(dir.join(name)).unwrap().write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn a_missing_column_is_named_before_any_row_is_read() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "tax.csv", "id_number,name,tax_year,gross_income\n620503198703151234,王秀兰,2025,100.00\n");
        let c = FileConnector::locate(d.path(), SourceKind::Tax).unwrap();
        match c.scan() {
            Err(ConnectorError::MissingColumns { missing, .. }) => assert_eq!(missing, vec!["income_type", "tax_paid"]),
            Err(other) => panic!("expected MissingColumns, got {other:?}"),
            Ok(_) => panic!("expected MissingColumns, the scan was accepted"),
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
        let SourceOutcome::Records(set) = c.fetch(&["620503196207080319".to_string()]) else { panic!("no records") };
        assert_eq!(set.records.len(), 1);
        let r = &set.records[0];
        assert_eq!(r.row, 1);
        assert_eq!(r.values, vec![Some("2025".into()), Some("labour".into()), Some("1200.00".into()), None]);
        assert!(matches!(c.fetch(&["62050219900101118X".to_string()]), SourceOutcome::NoRecords));
    }

    #[test]
    fn a_missing_file_is_not_found() {
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(FileConnector::locate(d.path(), SourceKind::Bank), Err(ConnectorError::NotFound { .. })));
    }
}
