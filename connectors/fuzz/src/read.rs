//! `crate::read` as in `hedui-connectors`, without the polars-bound parts (Parquet, the
//! scans, workbooks, JSON lines): the shared front-end, the field maps and the text reader.

#[path = "../../src/read/common.rs"]
mod common;
#[path = "../../src/read/fieldmap.rs"]
mod fieldmap;
#[path = "../../src/read/shown.rs"]
mod shown;
#[path = "../../src/read/text.rs"]
mod text;

pub(crate) use common::*;
pub use common::{Prepared, Rejected, TextTable};
pub(crate) use fieldmap::Mapping;
pub use fieldmap::{FieldMap, MoneyUnit, TABLES, TextEncoding};

/// Read a delimited text file as `hedui_connectors::read::prepare` does for text (field map
/// of `table`, or generic when `table` is `None`).
pub fn prepare_text(
    path: &std::path::Path,
    table: Option<&str>,
    required: &[&str],
) -> Result<Prepared, crate::ConnectorError> {
    let map = match table {
        Some(t) => FieldMap::for_table(t)?,
        None => None,
    };
    let ctx = Ctx {
        path,
        map: map.as_ref(),
        required,
    };
    text::prepare_text(&ctx, Vec::new())
}
