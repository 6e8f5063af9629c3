//! hedui's department data sources (数据源) and how they are reached.
//!
//! One registry of every source ([`SourceKind::ALL`], DESIGN.md §2) with the columns each
//! delivers; one trait ([`Connector`]) with one required method; one file transport
//! ([`file::FileConnector`]) that reads a source's extract into a schema-checked polars
//! plan, behind the reading front-end ([`read`]: encodings, delimiters, workbooks, JSON
//! lines, field maps from `connectors/fieldmaps/`, repeated headers, 万元 amounts). A
//! source that cannot be read is data, not an abort: [`SourceOutcome::Failed`] makes every
//! affected report say `unverified` for it. The HTTP transport ([`http::HttpSources`]) asks
//! department APIs for the same records over mutual TLS, with retries, limits, a circuit
//! breaker and a per-person cache (the on-demand path).
//!
//! Where it sits: `ingest` (connectors) → link → evidence → assess → seal.
#![deny(missing_docs)]

pub mod file;
pub mod http;
pub mod read;
pub mod schema;

pub use file::{FileConnector, FileFormat};
pub use read::{FieldMap, FileStamp, Prepared, Rejected, prepare, prepare_generic};
pub use schema::{CaseloadTable, ColumnKind, ColumnSpec, SourceKind};

/// What a connector answered for a set of persons.
#[derive(Debug, Clone)]
pub enum SourceOutcome {
    /// Records were found; one per source row, text values in §2 column order.
    Records(RecordSet),
    /// The source answered and holds nothing for these persons.
    NoRecords,
    /// The source did not answer usably: every report must say `unverified` for it.
    Failed(ConnectorError),
}

/// Canonical records of one source: §2 columns (besides `id_number`) as text, in
/// [`SourceKind::columns`] order, with the source's own row number.
#[derive(Debug, Clone, Default)]
pub struct RecordSet {
    /// The column names (same order as each record's values).
    pub columns: Vec<&'static str>,
    /// The records.
    pub records: Vec<Record>,
}

/// One source row.
#[derive(Debug, Clone)]
pub struct Record {
    /// 0-based data row of the scanned file; its physical line in the original is
    /// [`Prepared::line_of`]`(row)` (row + 2 for a CSV passed through as is).
    pub row: u64,
    /// The holder's ID number as the source wrote it.
    pub id_number: String,
    /// Values in [`RecordSet::columns`] order; `None` for null/empty.
    pub values: Vec<Option<String>>,
}

/// Why a source could not be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectorError {
    /// No extract for the source in the directory.
    #[error("no file for {source_name} (looked for {expected})")]
    NotFound {
        /// The source name.
        source_name: &'static str,
        /// What was looked for.
        expected: String,
    },
    /// The file lacks required §2 columns (named before any row is read).
    #[error(
        "{path}: missing required column(s) {}{}",
        missing.join(", "),
        if unmapped.is_empty() { String::new() } else { format!("; columns found but not recognised: {}", unmapped.join(", ")) }
    )]
    MissingColumns {
        /// The file.
        path: String,
        /// Every missing column (canonical §2 names).
        missing: Vec<String>,
        /// The headers found that the field map does not recognise (a header row that looks
        /// like data is described, never echoed).
        unmapped: Vec<String>,
    },
    /// The file could not be read (I/O, format, encoding).
    #[error("{path}: unreadable: {message}")]
    Unreadable {
        /// The file.
        path: String,
        /// What the reader said (no row values).
        message: String,
    },
    /// An HTTP source gave no usable answer ([`http::HttpFailure`] says why).
    #[error("{source_name}: {failure} (after {attempts} request(s))")]
    Http {
        /// The source name.
        source_name: &'static str,
        /// What went wrong; its `code()` is this error's code.
        failure: http::HttpFailure,
        /// HTTP requests made.
        attempts: u32,
    },
}

impl ConnectorError {
    /// Stable reason code for the report and the summary.
    pub fn code(&self) -> &'static str {
        match self {
            ConnectorError::NotFound { .. } => "source_missing",
            ConnectorError::MissingColumns { .. } => "source_missing_columns",
            ConnectorError::Unreadable { .. } => "source_unreadable",
            ConnectorError::Http { failure, .. } => failure.code(),
        }
    }
}

/// A department data source that answers for persons given by ID number.
///
/// Implementations: [`FileConnector`] (an extract on disk). One required method; the
/// engine calls it once per household (on demand) or uses the transport's bulk path
/// (batch).
pub trait Connector: Send + Sync {
    /// Which source this is.
    fn kind(&self) -> SourceKind;
    /// The records held for these normalised 18-character ID numbers.
    fn fetch(&self, id_numbers: &[String]) -> SourceOutcome;
}
