//! The sim's data: each source's extract read once at start through the file connector
//! (the same front-end as the batch: encodings, field maps, Parquet), all values as text,
//! with a sorted index from the normalised ID key ([`IdNumber::key`]) to rows.
//!
//! Memory: the columns stay polars string columns (one buffer per column), the index is
//! 12 bytes a row; the demo county (7.35 M rows) loads in seconds.

use std::path::Path;

use chrono::NaiveDate;
use hedui_connectors::file::text_columns;
use hedui_connectors::{ConnectorError, FileConnector, SourceKind};
use polars::prelude::*;

use crate::domain::IdNumber;

/// One source in memory.
pub struct SourceIndex {
    /// Which source.
    pub kind: SourceKind,
    /// Column names served in `values`: `name`, then the §2 columns.
    pub columns: Vec<&'static str>,
    /// Text columns in `columns` order (one chunk each).
    data: Vec<StringChunked>,
    /// Sorted normalised keys, and the data row of each.
    keys: Vec<u64>,
    rows: Vec<u32>,
    /// Rows whose ID number did not parse (never served).
    pub invalid_rows: u64,
}

/// What [`SourceIndex::lookup`] finds: data row and values (`None` = empty).
pub type Found<'a> = (u32, Vec<Option<&'a str>>);

impl SourceIndex {
    /// Read `kind`'s extract from `dir` and index it.
    ///
    /// # Errors
    /// The connector's error (missing file, missing columns, unreadable).
    pub fn load(
        dir: &Path,
        kind: SourceKind,
        as_of: NaiveDate,
    ) -> Result<SourceIndex, ConnectorError> {
        let conn = FileConnector::locate(dir, kind)?;
        let unreadable = |e: PolarsError| ConnectorError::Unreadable {
            path: conn.path().display().to_string(),
            message: e
                .to_string()
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(160)
                .collect(),
        };
        let df = conn.scan()?.collect().map_err(unreadable)?;
        let df = text_columns(df, &[]).map_err(unreadable)?;
        let mut columns: Vec<&'static str> = vec!["name"];
        columns.extend(kind.columns().iter().map(|c| c.name));
        let data: Vec<StringChunked> = columns
            .iter()
            .map(|c| {
                df.column(c)
                    .and_then(|c| c.str())
                    .map(|s| s.rechunk().into_owned())
            })
            .collect::<PolarsResult<_>>()
            .map_err(unreadable)?;
        let ids = df
            .column("id_number")
            .and_then(|c| c.str())
            .map_err(unreadable)?;
        let mut pairs: Vec<(u64, u32)> = Vec::with_capacity(ids.len());
        let mut invalid = 0u64;
        for (i, v) in ids.iter().enumerate() {
            match v.map(|raw| IdNumber::parse(raw, as_of)) {
                Some(Ok((id, _))) => pairs.push((id.key(), i as u32)),
                _ => invalid += 1,
            }
        }
        pairs.sort_unstable();
        let (keys, rows) = pairs.into_iter().unzip();
        Ok(SourceIndex {
            kind,
            columns,
            data,
            keys,
            rows,
            invalid_rows: invalid,
        })
    }

    /// Rows indexed.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The rows of one person, in file order.
    pub fn lookup(&self, id: IdNumber) -> Vec<Found<'_>> {
        let k = id.key();
        let start = self.keys.partition_point(|x| *x < k);
        let end = start + self.keys[start..].partition_point(|x| *x == k);
        self.rows[start..end]
            .iter()
            .map(|&r| {
                let values = self
                    .data
                    .iter()
                    .map(|c| c.get(r as usize).filter(|v| !v.is_empty()))
                    .collect();
                (r, values)
            })
            .collect()
    }
}
