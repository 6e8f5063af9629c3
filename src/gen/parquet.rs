//! Parquet output of generated tables: money as `decimal(18,2)` yuan (exact), areas and
//! shares as `decimal(10,2)`, dates as Parquet dates, IDs and text as strings.

use std::path::Path;

use chrono::NaiveDate;
use polars::prelude::*;

use super::{Column, Table};
use crate::domain::IdNumber;

fn series(name: &str, col: &Column) -> PolarsResult<Series> {
    let name: PlSmallStr = name.into();
    Ok(match col {
        Column::Text(v) | Column::RawId(v) => {
            Series::new(name, v.iter().map(|s| s.as_deref()).collect::<Vec<_>>())
        }
        Column::Enum { codes, labels } => Series::new(
            name,
            codes
                .iter()
                .map(|c| labels.get(*c as usize).copied())
                .collect::<Vec<Option<&str>>>(),
        ),
        Column::Id(v) => Series::new(
            name,
            v.iter()
                .map(|k| k.map(|k| IdNumber::from_key(k).expose()))
                .collect::<Vec<_>>(),
        ),
        Column::Int(v) => Series::new(name, v),
        Column::Money(v) | Column::Decimal2(v) => {
            let precision = if matches!(col, Column::Money(_)) {
                18
            } else {
                10
            };
            let ca: Int128Chunked = v.iter().map(|x| x.map(i128::from)).collect();
            ca.with_name(name).into_decimal(precision, 2)?.into_series()
        }
        Column::Date(v) => {
            let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
            let ca: Int32Chunked = v
                .iter()
                .map(|d| d.map(|d| (d - epoch).num_days() as i32))
                .collect();
            ca.with_name(name).into_date().into_series()
        }
        Column::Month(v) => Series::new(
            name,
            v.iter()
                .map(|m| m.map(|(y, m)| format!("{y:04}-{m:02}")))
                .collect::<Vec<_>>(),
        ),
    })
}

/// Write one generated table as Parquet (snappy).
///
/// # Errors
/// I/O or encoding errors, with the file named.
pub fn write_parquet(table: &Table, path: &Path) -> anyhow::Result<()> {
    let columns = table
        .columns
        .iter()
        .map(|(n, c)| series(n, c).map(polars::prelude::Column::from))
        .collect::<PolarsResult<Vec<_>>>()
        .map_err(|e| anyhow::anyhow!("Failed to build table {}: {e}", table.name))?;
    let mut df = DataFrame::new(table.rows(), columns)
        .map_err(|e| anyhow::anyhow!("Failed to build table {}: {e}", table.name))?;
    let f = std::fs::File::create(path)
        .map_err(|e| anyhow::anyhow!("Failed to create {}: {e}", path.display()))?;
    ParquetWriter::new(f)
        .with_compression(ParquetCompression::Snappy)
        .finish(&mut df)
        .map_err(|e| anyhow::anyhow!("Failed to write {}: {e}", path.display()))?;
    Ok(())
}
