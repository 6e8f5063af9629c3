//! The JSON the department sources speak (`schemas/sources/api/`): one query, one answer,
//! one error shape. `hedui sim` serves it; [`super::HttpSources`] sends and checks it.
//!
//! ```text
//! POST /v1/sources/{source}/query
//! {"request_id": "9f1c…", "id_numbers": ["620503198703151234", …]}
//! → 200 {"source": "tax", "request_id": "9f1c…",
//!        "records": [{"id_number": "620503198703151234", "row": 17,
//!                     "values": {"name": "王秀兰", "tax_year": "2025", "gross_income": "36000.50", "tax_paid": null, …}}]}
//! → 4xx/5xx {"error": {"code": "rate_limited", "message": "…"}}   (429 carries Retry-After)
//! ```
//! `values` holds the §2 columns of the source (and `name`) as the text of the file, `null`
//! for an empty field. Records are returned only for the ID numbers asked, in their
//! normalised 18-character form.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The most ID numbers one query may carry (the sim refuses more with 400 `too_many_ids`).
pub const MAX_IDS_PER_QUERY: usize = 1_000;

/// A query: the records of these persons.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    /// Opaque correlation id chosen by the caller (32 hex digits from hedui); echoed back.
    pub request_id: String,
    /// Normalised 18-character ID numbers (GB 11643-1999), 1 to [`MAX_IDS_PER_QUERY`].
    pub id_numbers: Vec<String>,
}

/// The answer to a query.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueryResponse {
    /// The §2 source name.
    pub source: String,
    /// The query's `request_id`.
    pub request_id: String,
    /// The records held for the persons asked (none: `[]`).
    pub records: Vec<WireRecord>,
}

/// One source row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireRecord {
    /// The holder's ID number, normalised (one of the numbers asked).
    pub id_number: String,
    /// The source's own 0-based data row (stable across answers).
    pub row: u64,
    /// §2 column → text (`null` when empty).
    pub values: BTreeMap<String, Option<String>>,
}

/// An error answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// Code and sentence of an error answer (never a person's data).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable code: `invalid_json`, `invalid_id_number`, `too_many_ids`, `unknown_source`,
    /// `unauthorized`, `rate_limited`, `source_error`.
    pub code: String,
    /// A sentence naming the field at fault (e.g. `id_numbers[3]`), never its value.
    pub message: String,
}
