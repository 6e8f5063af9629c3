//! The code under fuzzing, compiled from its own source files without polars: the text
//! reading front-end of `hedui-connectors` (`connectors/src/read/{common,fieldmap,text}.rs`,
//! the source registry `connectors/src/schema.rs`) and the domain normalisers of `hedui`
//! (`src/domain/{id_number,name,date,money,region}.rs`).
//!
//! The module tree mirrors the crates' (`crate::read`, `crate::schema`, `crate::file`,
//! `crate::ConnectorError`) so that the included files compile unchanged. Two small stand-ins
//! replace the polars-bound originals: [`ConnectorError`] (the variants the reader raises)
//! and [`file::FileFormat`].
#![allow(dead_code, unused_imports, missing_docs)]

#[path = "../../src/schema.rs"]
pub mod schema;

pub use schema::{CaseloadTable, ColumnKind, ColumnSpec, SourceKind};

pub mod read;

pub mod domain;

/// Stand-in for `hedui_connectors::file` (which drives polars): the format enum only.
pub mod file {
    /// As `hedui_connectors::file::FileFormat`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum FileFormat {
        Csv,
        Parquet,
        Workbook,
        JsonLines,
    }
}

/// Stand-in for `hedui_connectors::ConnectorError`: the variants the reader raises.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("no file for {source_name} (looked for {expected})")]
    NotFound {
        source_name: &'static str,
        expected: String,
    },
    #[error("{path}: missing required column(s) {}", missing.join(", "))]
    MissingColumns {
        path: String,
        missing: Vec<String>,
        unmapped: Vec<String>,
    },
    #[error("{path}: unreadable: {message}")]
    Unreadable { path: String, message: String },
}
