//! Record linkage: attach source records to persons when the key is damaged
//! (DESIGN.md §1 link; issue 7). Exact linkage on the 17-digit ID body lives in the batch plan
//! (`crate::batch`); this module is the error-tolerant second pass and its evaluation.
//!
//! - [`compare`]: field comparisons and their levels (names with NFKC, middle dots and pinyin;
//!   dates; ID numbers with MOD 11-2, 15/18 forms, one substitution or transposition).
//! - [`model`]: the generic, schema-configured Fellegi–Sunter linker: blocking rules, m/u by
//!   random pairs and expectation–maximisation, match weights in bits, two thresholds.
//! - [`eval`]: `hedui link eval` (precision / recall / F1, blocking recall, PR curve as SVG).
//! - [`caseload`]: the batch's second pass: source rows whose key is invalid or missing (or
//!   valid but another person's, on a caseload person's name and birth date: at most a
//!   `possible_match`),
//!   scored against the caseload's members and supporters (with the candidate's own records of
//!   the same source and registered region as extra evidence); `match` is used like an exact
//!   link, `possible_match` goes to a person (the report's `possible_matches`), never to a
//!   rule, and refers the household only when confirming it would change the determination.

pub mod caseload;
pub mod cli;
pub mod compare;
pub mod eval;
pub mod model;

use std::collections::BTreeMap;
use std::time::Instant;

pub use compare::ComparisonKind;
pub use model::{Contribution, Model, Schema, Table, Thresholds};

/// Errors of the linker and its evaluation.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The schema is wrong or does not fit the files.
    #[error("link schema: {0}")]
    Schema(String),
    /// A file cannot be read.
    #[error("cannot read {path}: {message}")]
    Read {
        /// The file.
        path: String,
        /// What is wrong (line, column).
        message: String,
    },
    /// An output cannot be written.
    #[error("cannot write {path}: {message}")]
    Write {
        /// The file.
        path: String,
        /// The cause.
        message: String,
    },
}

/// The decision for a scored pair (匹配 / 疑似匹配 / 不匹配).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Linked; used by rules like an exact link.
    Match,
    /// Shown to a person with both records; never used by a rule to make a family ineligible.
    PossibleMatch,
    /// Not linked.
    NonMatch,
}

impl Decision {
    /// The decision for a match weight (bits) under the thresholds.
    pub fn of(weight: f64, t: &Thresholds) -> Decision {
        if weight >= t.match_weight {
            Decision::Match
        } else if weight >= t.possible_match {
            Decision::PossibleMatch
        } else {
            Decision::NonMatch
        }
    }
}

/// The result of linking two tables: candidate pairs, their weights (bits), the model.
pub struct LinkRun {
    /// Candidate pairs (left row, right row).
    pub pairs: Vec<(u32, u32)>,
    /// Match weight of each pair, bits.
    pub weights: Vec<f64>,
    /// Pairs per blocking rule (before de-duplication).
    pub pairs_per_rule: Vec<u64>,
    /// The trained model.
    pub model: Model,
    /// Seconds per step (block, compare, train, score).
    pub seconds: BTreeMap<String, f64>,
}

/// Link two tables with a schema: block, compare, train (random-pair u, EM), score.
///
/// # Errors
/// [`LinkError::Schema`] when a compared or blocking column is missing.
pub fn link_tables(schema: &Schema, left: &Table, right: &Table) -> Result<LinkRun, LinkError> {
    let mut secs = BTreeMap::new();
    let kinds: Vec<ComparisonKind> = schema
        .comparisons
        .iter()
        .map(|c| c.comparison())
        .collect::<Result<_, _>>()?;
    let names: Vec<String> = schema.comparisons.iter().map(|c| c.field.clone()).collect();
    let t = Instant::now();
    let (blocked, prepared) = rayon::join(
        || model::block_with_rules(schema, left, right),
        || {
            rayon::join(
                || model::prepare(schema, &kinds, left, "left"),
                || model::prepare(schema, &kinds, right, "right"),
            )
        },
    );
    let (pairs, per_rule, rule_of) = blocked?;
    let sessions = model::Sessions {
        rule_of,
        used: model::rule_fields(schema),
    };
    let (l, r) = (prepared.0?, prepared.1?);
    secs.insert("block".to_string(), t.elapsed().as_secs_f64());
    let t = Instant::now();
    let gamma = model::gammas(&kinds, &l, &r, &pairs);
    secs.insert("compare".to_string(), t.elapsed().as_secs_f64());
    let t = Instant::now();
    let m = Model::train(
        &kinds,
        &names,
        &l,
        &r,
        &gamma,
        &schema.training,
        Vec::new(),
        &model::Fixed::default(),
        Some(&sessions),
    );
    secs.insert("train".to_string(), t.elapsed().as_secs_f64());
    let t = Instant::now();
    let weights = m.score(&l, &gamma, &pairs);
    secs.insert("score".to_string(), t.elapsed().as_secs_f64());
    Ok(LinkRun {
        pairs,
        weights,
        pairs_per_rule: per_rule,
        model: m,
        seconds: secs,
    })
}
