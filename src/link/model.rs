//! The Fellegi–Sunter model: a link schema (which columns are compared how, blocking rules,
//! thresholds), candidate pairs from blocking, m/u probabilities and match weights.
//!
//! Weights are in log2 units (bits), as Splink prints them: a pair's match weight is
//! `log2(λ/(1−λ)) + Σ log2(m_l/u_l)` over its comparisons' levels, with the exact level of a
//! term-frequency comparison using the value's own frequency instead of u
//! (Fellegi & Sunter 1969; Winkler 1988 for the frequency adjustment).
//! Training is unsupervised, as the field does it: u from random pairs (levels too rare for
//! random pairs to meet get the expected non-matches among the blocked pairs over all pairs),
//! m and λ by expectation–maximisation over the blocked pairs' comparison patterns.
#![allow(
    clippy::type_complexity,
    clippy::too_many_arguments,
    reason = "the model's tables are tuples named where they are built; the estimation passes take the model's parts one by one"
)]

use std::collections::HashMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::LinkError;
use super::compare::{
    ComparisonKind, Prepared, check_neighbourhood, id_form, normalise_name, pinyin_key,
};

/// One compared field of a schema (`[[comparison]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldComparison {
    /// Column name (the same on both sides).
    pub field: String,
    /// `exact`, `jaro_winkler`, `levenshtein`, `name`, `date` or `id_number`.
    pub kind: String,
    /// Level thresholds (Jaro-Winkler similarities descending, or edit distances ascending).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<f64>,
    /// Term-frequency adjustment of the exact level.
    #[serde(default)]
    pub tf: bool,
}

impl FieldComparison {
    /// The comparison this entry declares.
    ///
    /// # Errors
    /// [`LinkError::Schema`] for an unknown kind.
    pub fn comparison(&self) -> Result<ComparisonKind, LinkError> {
        let th = self.thresholds.clone();
        Ok(match self.kind.as_str() {
            "exact" => ComparisonKind::Exact { tf: self.tf },
            "jaro_winkler" => ComparisonKind::JaroWinkler {
                thresholds: if th.is_empty() { vec![0.92, 0.8] } else { th },
                tf: self.tf,
            },
            "levenshtein" => ComparisonKind::Levenshtein {
                thresholds: if th.is_empty() {
                    vec![1, 2]
                } else {
                    th.iter().map(|t| *t as usize).collect()
                },
                tf: self.tf,
            },
            "name" => ComparisonKind::Name {
                thresholds: if th.is_empty() { vec![0.92, 0.8] } else { th },
                tf: self.tf,
            },
            "date" => ComparisonKind::Date,
            "id_number" => ComparisonKind::IdNumber,
            k => {
                return Err(LinkError::Schema(format!(
                    "comparison of {}: unknown kind {k:?} (exact, jaro_winkler, levenshtein, name, date, id_number)",
                    self.field
                )));
            }
        })
    }
}

/// A blocking rule: pairs whose keys are equal are compared. A key is a list of expressions
/// over one record: `field`, `name(field)` (normalised name), `pinyin(field)`,
/// `substr(field,FROM,TO)` (characters FROM..TO, 0-based, of the value; of the 18-character
/// form for `id_number` comparisons), `id_mask(field)` (the ID with one body position or two
/// adjacent ones masked: 33 keys, the single-substitution and transposition neighbourhood).
/// `right` defaults to `left` (a different list compares swapped columns, e.g. given name and
/// surname exchanged).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockingRule {
    /// Key expressions on the left record.
    pub left: Vec<String>,
    /// Key expressions on the right record (default: `left`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub right: Option<Vec<String>>,
}

/// The two decision thresholds, in match-weight bits.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// At or above: `match` (linked, used by rules).
    #[serde(rename = "match")]
    pub match_weight: f64,
    /// At or above (and below `match`): `possible_match` (shown to a person, never used by a rule).
    pub possible_match: f64,
}

/// Training settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Training {
    /// Random pairs drawn for u.
    pub u_pairs: usize,
    /// EM iterations at most.
    pub em_iterations: usize,
    /// Seed of the random pairs.
    pub seed: u64,
}

impl Default for Training {
    fn default() -> Self {
        Training {
            u_pairs: 1_000_000,
            em_iterations: 40,
            seed: 1,
        }
    }
}

/// A link schema (TOML): the record id column, comparisons, blocking rules, thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schema {
    /// Column holding each record's unique id.
    pub id: String,
    /// Compared fields.
    #[serde(rename = "comparison")]
    pub comparisons: Vec<FieldComparison>,
    /// Blocking rules (pairs found by any rule are compared once).
    pub blocking: Vec<BlockingRule>,
    /// Decision thresholds.
    pub thresholds: Thresholds,
    /// Training settings.
    #[serde(default)]
    pub training: Training,
}

impl Schema {
    /// Parse a schema file's text.
    ///
    /// # Errors
    /// [`LinkError::Schema`] naming the field that is wrong.
    pub fn from_toml(text: &str) -> Result<Schema, LinkError> {
        let s: Schema = toml::from_str(text).map_err(|e| LinkError::Schema(e.to_string()))?;
        for c in &s.comparisons {
            c.comparison()?;
        }
        if s.thresholds.possible_match > s.thresholds.match_weight {
            return Err(LinkError::Schema(
                "thresholds.possible_match must not exceed thresholds.match".into(),
            ));
        }
        Ok(s)
    }

    /// The generic schema for the FEBRL data sets (given_name, surname, street_number,
    /// address_1, address_2, suburb, postcode, state, date_of_birth, soc_sec_id).
    pub fn febrl() -> Schema {
        Schema::from_toml(FEBRL_SCHEMA).expect("the bundled FEBRL schema parses")
    }
}

/// The bundled FEBRL schema (also `benches/febrl-schema.toml`).
pub const FEBRL_SCHEMA: &str = include_str!("febrl.toml");

/// A table of records: column names and rows of optional text values.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows, each aligned to `columns`.
    pub rows: Vec<Vec<Option<String>>>,
}

impl Table {
    /// Read a CSV file (UTF-8, header row); empty cells are missing values.
    ///
    /// # Errors
    /// [`LinkError::Read`] naming the file and line.
    pub fn read_csv(path: &std::path::Path) -> Result<Table, LinkError> {
        let err = |m: String| LinkError::Read {
            path: path.display().to_string(),
            message: m,
        };
        let mut r = csv::ReaderBuilder::new()
            .flexible(false)
            .from_path(path)
            .map_err(|e| err(e.to_string()))?;
        let columns: Vec<String> = r
            .headers()
            .map_err(|e| err(e.to_string()))?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        let mut rows = Vec::new();
        for rec in r.records() {
            let rec = rec.map_err(|e| err(e.to_string()))?;
            rows.push(
                rec.iter()
                    .map(|v| {
                        let v = v.trim();
                        (!v.is_empty()).then(|| v.to_string())
                    })
                    .collect(),
            );
        }
        Ok(Table { columns, rows })
    }

    /// Index of a column.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }
}

/// One side's values prepared for every comparison (column-major).
pub struct PreparedSide {
    /// `values[c][r]`: comparison c, record r.
    pub values: Vec<Vec<Option<Prepared>>>,
    /// Records.
    pub len: usize,
}

/// Prepare a table's values for the schema's comparisons.
///
/// # Errors
/// [`LinkError::Schema`] when a compared column is not in the table.
pub fn prepare(
    schema: &Schema,
    kinds: &[ComparisonKind],
    t: &Table,
    side: &str,
) -> Result<PreparedSide, LinkError> {
    let mut values = Vec::with_capacity(kinds.len());
    for (fc, k) in schema.comparisons.iter().zip(kinds) {
        let ci = t.column(&fc.field).ok_or_else(|| {
            LinkError::Schema(format!("the {side} file has no column {:?}", fc.field))
        })?;
        values.push(
            t.rows
                .par_iter()
                .map(|r| k.prepare(r[ci].as_deref()))
                .collect(),
        );
    }
    Ok(PreparedSide {
        values,
        len: t.rows.len(),
    })
}

fn key_exprs(
    rule: &[String],
    t: &Table,
) -> Result<Vec<(String, usize, Option<(usize, usize)>)>, LinkError> {
    rule.iter()
        .map(|e| {
            let e = e.trim();
            let (func, inner) = match e.split_once('(') {
                Some((f, rest)) => (f.trim(), rest.trim_end_matches(')')),
                None => ("", e),
            };
            let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
            let ci = t.column(parts[0]).ok_or_else(|| {
                LinkError::Schema(format!("blocking key {e:?}: no column {:?}", parts[0]))
            })?;
            let range = if func == "substr" {
                let a = parts.get(1).and_then(|v| v.parse().ok());
                let b = parts.get(2).and_then(|v| v.parse().ok());
                match (a, b) {
                    (Some(a), Some(b)) if a < b => Some((a, b)),
                    _ => {
                        return Err(LinkError::Schema(format!(
                            "blocking key {e:?}: substr(field,FROM,TO) with FROM < TO"
                        )));
                    }
                }
            } else {
                None
            };
            if !matches!(func, "" | "name" | "pinyin" | "substr" | "id_mask" | "id") {
                return Err(LinkError::Schema(format!(
                    "blocking key {e:?}: unknown function {func:?}"
                )));
            }
            Ok((func.to_string(), ci, range))
        })
        .collect()
}

fn hash_key(s: &str) -> u64 {
    ahash::RandomState::with_seeds(1, 2, 3, 4).hash_one(s)
}

/// Keys of one record under one rule (several for `id_mask`), or none when a part is missing;
/// hashed to 64 bits (a collision only adds a pair, which the comparisons then reject).
fn record_keys(
    exprs: &[(String, usize, Option<(usize, usize)>)],
    row: &[Option<String>],
) -> Vec<u64> {
    record_key_strings(exprs, row)
        .iter()
        .map(|k| hash_key(k))
        .collect()
}

fn record_key_strings(
    exprs: &[(String, usize, Option<(usize, usize)>)],
    row: &[Option<String>],
) -> Vec<String> {
    let mut keys = vec![String::new()];
    for (func, ci, range) in exprs {
        let Some(raw) = row[*ci].as_deref().map(str::trim).filter(|v| !v.is_empty()) else {
            return Vec::new();
        };
        let parts: Vec<String> = match func.as_str() {
            "" => vec![raw.to_string()],
            "name" => normalise_name(raw).into_iter().collect(),
            "pinyin" => normalise_name(raw)
                .map(|n| pinyin_key(&n))
                .into_iter()
                .collect(),
            "id" => id_form(raw).map(|(s, _)| s).into_iter().collect(),
            "substr" => {
                let (a, b) = range.expect("checked");
                let s = id_form(raw)
                    .map(|(s, _)| s)
                    .unwrap_or_else(|| raw.to_string());
                let c: Vec<char> = s.chars().collect();
                if c.len() >= b {
                    vec![c[a..b].iter().collect()]
                } else {
                    Vec::new()
                }
            }
            "id_mask" => match id_form(raw) {
                Some((s, _)) => id_masks(&s),
                None => Vec::new(),
            },
            _ => Vec::new(),
        };
        if parts.is_empty() {
            return Vec::new();
        }
        keys = keys
            .iter()
            .flat_map(|k| parts.iter().map(move |p| format!("{k}\u{1f}{p}")))
            .collect();
    }
    keys
}

/// The 33 masked forms of an 18-character ID: one body position (17) or two adjacent body
/// positions (16) starred. Two IDs one substitution or one adjacent transposition apart in
/// the body (check character equal) share one of them.
pub fn id_masks(s: &str) -> Vec<String> {
    let b = s.as_bytes();
    if b.len() != 18 {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(33);
    for i in 0..17 {
        let mut t = b.to_vec();
        t[i] = b'*';
        out.push(format!("1{}", String::from_utf8_lossy(&t)));
        if i < 16 {
            let mut t = b.to_vec();
            t[i] = b'*';
            t[i + 1] = b'*';
            out.push(format!("2{}", String::from_utf8_lossy(&t)));
        }
    }
    out
}

/// Candidate pairs (left index, right index), distinct, sorted, from every blocking rule;
/// and per rule the pairs it produced (before de-duplication).
///
/// # Errors
/// [`LinkError::Schema`] for a rule naming a missing column or an unknown function.
pub fn block(
    schema: &Schema,
    left: &Table,
    right: &Table,
) -> Result<(Vec<(u32, u32)>, Vec<u64>), LinkError> {
    let (pairs, per_rule, _) = block_with_rules(schema, left, right)?;
    Ok((pairs, per_rule))
}

/// [`block`], and for each pair the set of rules that found it (bit k = rule k).
///
/// # Errors
/// As [`block`].
pub fn block_with_rules(
    schema: &Schema,
    left: &Table,
    right: &Table,
) -> Result<(Vec<(u32, u32)>, Vec<u64>, Vec<u32>), LinkError> {
    let mut all: Vec<(u32, u32, u8)> = Vec::new();
    let mut per_rule = Vec::new();
    for rule in &schema.blocking {
        let le = key_exprs(&rule.left, left)?;
        let re = key_exprs(rule.right.as_ref().unwrap_or(&rule.left), right)?;
        let mut index: HashMap<u64, Vec<u32>> = HashMap::new();
        for (j, row) in right.rows.iter().enumerate() {
            for k in record_keys(&re, row) {
                index.entry(k).or_default().push(j as u32);
            }
        }
        let pairs: Vec<(u32, u32)> = left
            .rows
            .par_iter()
            .enumerate()
            .flat_map_iter(|(i, row)| {
                let mut v: Vec<(u32, u32)> = Vec::new();
                for k in record_keys(&le, row) {
                    if let Some(js) = index.get(&k) {
                        v.extend(js.iter().map(|&j| (i as u32, j)));
                    }
                }
                v
            })
            .collect();
        let mut pairs = pairs;
        pairs.par_sort_unstable();
        pairs.dedup();
        per_rule.push(pairs.len() as u64);
        let k = per_rule.len() as u8 - 1;
        all.extend(pairs.into_iter().map(|(i, j)| (i, j, k)));
    }
    all.par_sort_unstable();
    // one entry per pair, with the set of rules that found it (bit k = rule k; rules past
    // the 32nd share bit 31)
    let mut pairs: Vec<(u32, u32)> = Vec::with_capacity(all.len());
    let mut rules: Vec<u32> = Vec::with_capacity(all.len());
    for (i, j, k) in all {
        let bit = 1u32 << k.min(31);
        if pairs.last() == Some(&(i, j)) {
            *rules.last_mut().expect("same length") |= bit;
        } else {
            pairs.push((i, j));
            rules.push(bit);
        }
    }
    Ok((pairs, per_rule, rules))
}

/// Per rule, the comparisons (indices into `schema.comparisons`) whose fields its keys use.
pub fn rule_fields(schema: &Schema) -> Vec<Vec<usize>> {
    schema
        .blocking
        .iter()
        .map(|r| {
            let mut used = Vec::new();
            for e in r.left.iter().chain(r.right.iter().flatten()) {
                let inner = e
                    .split_once('(')
                    .map_or(e.as_str(), |(_, x)| x.trim_end_matches(')'));
                let field = inner.split(',').next().unwrap_or("").trim();
                for (c, fc) in schema.comparisons.iter().enumerate() {
                    if fc.field == field && !used.contains(&c) {
                        used.push(c);
                    }
                }
            }
            used
        })
        .collect()
}

/// Comparison vectors of pairs: `gamma[p * n + c]` is the level of comparison c for pair p.
pub fn gammas(
    kinds: &[ComparisonKind],
    l: &PreparedSide,
    r: &PreparedSide,
    pairs: &[(u32, u32)],
) -> Vec<u8> {
    let n = kinds.len();
    let mut out = vec![0u8; pairs.len() * n];
    out.par_chunks_mut(n)
        .zip(pairs.par_iter())
        .for_each(|(g, &(i, j))| {
            for (c, k) in kinds.iter().enumerate() {
                g[c] = k.level(
                    l.values[c][i as usize].as_ref(),
                    r.values[c][j as usize].as_ref(),
                );
            }
        });
    out
}

/// Which blocking rule found each pair first, and which comparisons each rule's keys use:
/// EM then runs one session per rule (see [`Model::train`]).
#[derive(Debug, Clone, Default)]
pub struct Sessions {
    /// Per pair, the rules that found it (bit k = rule k).
    pub rule_of: Vec<u32>,
    /// Per rule, the comparisons whose fields its keys use.
    pub used: Vec<Vec<usize>>,
}

/// Parameters fixed from outside the data (domain knowledge or a labelled measurement)
/// instead of estimated: per comparison an m vector (index = level), and λ.
#[derive(Debug, Clone, Default)]
pub struct Fixed {
    /// `m[c]`: fixed m of comparison c (levels 1.. sum to 1), or estimated by EM.
    pub m: Vec<Option<Vec<f64>>>,
    /// `u[c]`: fixed u of comparison c, or from random pairs.
    pub u: Vec<Option<Vec<f64>>>,
    /// λ over all pairs, or estimated by EM.
    pub lambda: Option<f64>,
}

/// A trained model: per comparison and level, m and u; λ over all pairs; term frequencies.
#[derive(Debug, Clone, Serialize)]
pub struct Model {
    /// Comparison names (the field names).
    pub names: Vec<String>,
    /// The comparisons.
    #[serde(skip)]
    pub kinds: Vec<ComparisonKind>,
    /// `m[c][level]` (level 0 unused).
    pub m: Vec<Vec<f64>>,
    /// `u[c][level]`.
    pub u: Vec<Vec<f64>>,
    /// Prior probability that two records drawn at random (one per side) match.
    pub lambda: f64,
    /// Term frequencies of exact-level values, per comparison (share of values).
    #[serde(skip)]
    pub tf: Vec<Option<HashMap<String, f64>>>,
    /// EM iterations run.
    pub em_iterations: usize,
}

/// One comparison's part in a match weight (a waterfall step).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    /// Comparison (field) name, or `prior`.
    pub comparison: String,
    /// Level name.
    pub level: String,
    /// Bits added.
    pub weight: f64,
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Model {
    /// Train on the two prepared sides and their blocked pairs' comparison vectors.
    ///
    /// `tf_override`: per comparison, an external frequency table (value → u of agreeing on
    /// it among non-matches), e.g. each name's share of a whole population.
    pub fn train(
        kinds: &[ComparisonKind],
        names: &[String],
        l: &PreparedSide,
        r: &PreparedSide,
        gamma: &[u8],
        training: &Training,
        tf_override: Vec<Option<HashMap<String, f64>>>,
        fixed: &Fixed,
        sessions: Option<&Sessions>,
    ) -> Model {
        let n = kinds.len();
        let total_pairs = (l.len as f64 * r.len as f64).max(1.0);
        // ---- u from random pairs
        let draws = training.u_pairs.min((l.len * r.len).max(1));
        let mut state = training.seed;
        let sample: Vec<(u32, u32)> = (0..draws)
            .map(|_| {
                (
                    (splitmix(&mut state) % l.len.max(1) as u64) as u32,
                    (splitmix(&mut state) % r.len.max(1) as u64) as u32,
                )
            })
            .collect();
        let g = if l.len == 0 || r.len == 0 {
            Vec::new()
        } else {
            gammas(kinds, l, r, &sample)
        };
        let levels: Vec<usize> = kinds.iter().map(|k| k.levels()).collect();
        let mut ucount: Vec<Vec<f64>> = kinds.iter().map(|k| vec![0.0; k.levels()]).collect();
        for p in g.chunks(n) {
            for c in 0..n {
                ucount[c][p[c] as usize] += 1.0;
            }
        }
        // ---- patterns of the blocked pairs
        let mut patterns: HashMap<&[u8], f64> = HashMap::new();
        for p in gamma.chunks(n) {
            *patterns.entry(p).or_insert(0.0) += 1.0;
        }
        let patterns: Vec<(&[u8], f64)> = patterns.into_iter().collect();
        let blocked: f64 = patterns.iter().map(|(_, c)| c).sum();
        let mut u: Vec<Vec<f64>> = ucount
            .iter()
            .map(|cs| {
                let tot: f64 = cs[1..].iter().sum();
                let mut v = vec![0.0; cs.len()];
                for lv in 1..cs.len() {
                    v[lv] = if tot > 0.0 {
                        cs[lv] / tot
                    } else {
                        1.0 / (cs.len() - 1) as f64
                    };
                }
                v
            })
            .collect();
        let mut m: Vec<Vec<f64>> = kinds
            .iter()
            .map(|k| {
                let nl = k.levels();
                let mut v = vec![0.0; nl];
                let mut w = 0.9;
                for x in v.iter_mut().take(nl - 1).skip(1) {
                    *x = w;
                    w *= 0.1;
                }
                v[nl - 1] = 0.02;
                let s: f64 = v[1..].iter().sum();
                v.iter().map(|x| x / s).collect()
            })
            .collect();
        for (c, fu) in fixed.u.iter().enumerate() {
            if let Some(fu) = fu {
                u[c] = fu.clone();
                ucount[c] = vec![f64::INFINITY; fu.len()];
            }
        }
        for (c, fm) in fixed.m.iter().enumerate() {
            if let Some(fm) = fm {
                m[c] = fm.clone();
            }
        }
        let fixed_lam_b = fixed
            .lambda
            .map(|l| (l * total_pairs / blocked.max(1.0)).clamp(1e-12, 0.999));
        let mut lam_b =
            fixed_lam_b.unwrap_or((l.len.max(r.len) as f64 / blocked.max(1.0)).clamp(1e-6, 0.5));
        let mut iterations = 0;
        let mut posts = vec![0.0; patterns.len()];
        for round in 0..2 {
            for _ in 0..training.em_iterations {
                iterations += 1;
                let (matched, mut delta) =
                    em_step(&patterns, lam_b, &mut m, &u, &levels, &mut posts, |c| {
                        fixed.m.get(c).is_some_and(Option::is_some)
                    });
                let lnew = fixed_lam_b.unwrap_or((matched / blocked.max(1.0)).clamp(1e-9, 0.999));
                delta = delta.max((lnew - lam_b).abs());
                lam_b = lnew;
                if delta < 1e-7 {
                    break;
                }
            }
            if round == 1 {
                break;
            }
            // levels random pairs (almost) never meet: expected non-matches among the blocked
            // pairs (blocking meets nearly all such pairs) over all pairs
            let mut changed = false;
            for c in 0..n {
                let mut nonmatch = vec![0.0; kinds[c].levels()];
                for ((p, cnt), post) in patterns.iter().zip(&posts) {
                    nonmatch[p[c] as usize] += cnt * (1.0 - post);
                }
                let nl = u[c].len();
                for lv in 1..nl - 1 {
                    if ucount[c][lv] < 5.0 {
                        u[c][lv] =
                            ((nonmatch[lv] + ucount[c][lv]).max(1.0) / total_pairs).max(u[c][lv]);
                        changed = true;
                    }
                }
                let rest: f64 = u[c][1..nl - 1].iter().sum();
                u[c][nl - 1] = (1.0 - rest).max(1e-9);
            }
            if !changed {
                break;
            }
        }
        let matched: f64 = patterns.iter().zip(&posts).map(|((_, c), p)| c * p).sum();
        let mut lambda = fixed
            .lambda
            .unwrap_or((matched / total_pairs).clamp(1e-15, 0.5));
        if let (Some(sess), None) = (sessions, fixed.lambda) {
            // Pairs found by a blocking rule agree on the rule's fields by construction, so
            // EM over the union of all rules learns "agrees on the blocking field" as the
            // match class. As Splink does: one EM session per rule over the pairs it found,
            // with the comparisons of its own fields left out; m of a comparison is the
            // average of the sessions that estimated it (weighted by their expected matches),
            // λ the expected matches of the largest session over all pairs (each session
            // sees only the matches its rule finds; the largest is the best lower bound).
            for c in 0..n {
                let nl = u[c].len();
                for lv in 1..nl {
                    if ucount[c][lv] == 0.0 {
                        u[c][lv] = 0.5 / draws.max(1) as f64; // never met by random pairs
                    }
                }
            }
            let mut acc: Vec<Vec<f64>> = kinds.iter().map(|k| vec![0.0; k.levels()]).collect();
            let mut wsum = vec![0.0; n];
            let mut expected = 0.0;
            for (k, used) in sess.used.iter().enumerate() {
                let mut pats: HashMap<Vec<u8>, f64> = HashMap::new();
                for (p, g) in gamma.chunks(n).enumerate() {
                    if sess.rule_of[p] & (1u32 << k.min(31)) != 0 {
                        let mut g = g.to_vec();
                        for &c in used {
                            g[c] = 0;
                        }
                        *pats.entry(g).or_insert(0.0) += 1.0;
                    }
                }
                let total_k: f64 = pats.values().sum();
                if total_k < 1.0 || used.len() == n {
                    continue;
                }
                let pats: Vec<(Vec<u8>, f64)> = pats.into_iter().collect();
                let mut mk = m.clone();
                let mut lk = (l.len.max(r.len) as f64 / total_k).clamp(1e-6, 0.5);
                let mut post = vec![0.0; pats.len()];
                for _ in 0..training.em_iterations {
                    let (matched, mut delta) =
                        em_step(&pats, lk, &mut mk, &u, &levels, &mut post, |c| {
                            used.contains(&c) || fixed.m.get(c).is_some_and(Option::is_some)
                        });
                    let lnew = (matched / total_k).clamp(1e-9, 0.999);
                    delta = delta.max((lnew - lk).abs());
                    lk = lnew;
                    iterations += 1;
                    if delta < 1e-7 {
                        break;
                    }
                }
                let e: f64 = pats.iter().zip(&post).map(|((_, c), q)| c * q).sum();
                expected = f64::max(expected, e);
                for c in 0..n {
                    if used.contains(&c) {
                        continue;
                    }
                    for lv in 1..mk[c].len() {
                        acc[c][lv] += e * mk[c][lv];
                    }
                    wsum[c] += e;
                }
            }
            for c in 0..n {
                if wsum[c] > 0.0 && !fixed.m.get(c).is_some_and(Option::is_some) {
                    for lv in 1..acc[c].len() {
                        m[c][lv] = acc[c][lv] / wsum[c];
                    }
                }
            }
            lambda = (expected / total_pairs).clamp(1e-15, 0.5);
        }
        let tf = kinds
            .iter()
            .enumerate()
            .map(|(c, k)| {
                if !k.tf() {
                    return None;
                }
                if let Some(t) = tf_override.get(c).cloned().flatten() {
                    return Some(t);
                }
                let mut counts: HashMap<String, f64> = HashMap::new();
                let mut total = 0.0;
                for v in l.values[c].iter().chain(&r.values[c]).flatten() {
                    *counts.entry(v.text.clone()).or_insert(0.0) += 1.0;
                    total += 1.0;
                }
                Some(counts.into_iter().map(|(k, v)| (k, v / total)).collect())
            })
            .collect();
        Model {
            names: names.to_vec(),
            kinds: kinds.to_vec(),
            m,
            u,
            lambda,
            tf,
            em_iterations: iterations,
        }
    }

    /// Prior weight in bits.
    pub fn prior(&self) -> f64 {
        (self.lambda / (1.0 - self.lambda)).log2()
    }

    /// Bits of comparison c at a level (without frequency adjustment).
    pub fn level_weight(&self, c: usize, level: u8) -> f64 {
        if level == 0 {
            return 0.0;
        }
        let l = level as usize;
        (self.m[c][l].max(1e-12) / self.u[c][l].max(1e-300)).log2()
    }

    /// The frequency adjustment (bits) of comparison c for an exact agreement on `value`.
    pub fn tf_adjust(&self, c: usize, level: u8, value: Option<&Prepared>) -> f64 {
        match (level, &self.tf[c], value) {
            (1, Some(t), Some(v)) => match t.get(&v.text) {
                Some(f) => (self.u[c][1] / f.max(1e-12)).log2(),
                None => 0.0,
            },
            _ => 0.0,
        }
    }

    /// Match weight (bits) of one pair.
    pub fn weight(&self, g: &[u8], lv: &[Option<&Prepared>]) -> f64 {
        let mut w = self.prior();
        for c in 0..g.len() {
            w += self.level_weight(c, g[c]) + self.tf_adjust(c, g[c], lv[c]);
        }
        w
    }

    /// The waterfall of one pair: the prior, then each comparison's level and bits.
    pub fn explain(&self, g: &[u8], lv: &[Option<&Prepared>]) -> Vec<Contribution> {
        let mut out = vec![Contribution {
            comparison: "prior".into(),
            level: "λ".into(),
            weight: self.prior(),
        }];
        for c in 0..g.len() {
            out.push(Contribution {
                comparison: self.names[c].clone(),
                level: self.kinds[c].level_names()[g[c] as usize].clone(),
                weight: self.level_weight(c, g[c]) + self.tf_adjust(c, g[c], lv[c]),
            });
        }
        out
    }

    /// Scores of pairs (bits), in parallel.
    pub fn score(&self, l: &PreparedSide, gamma: &[u8], pairs: &[(u32, u32)]) -> Vec<f64> {
        let n = self.kinds.len();
        pairs
            .par_iter()
            .zip(gamma.par_chunks(n))
            .map(|(&(i, _), g)| {
                let lv: Vec<Option<&Prepared>> =
                    (0..n).map(|c| l.values[c][i as usize].as_ref()).collect();
                self.weight(g, &lv)
            })
            .collect()
    }
}

/// Probability from a match weight in bits.
pub fn probability(weight: f64) -> f64 {
    1.0 / (1.0 + (-weight * std::f64::consts::LN_2).exp())
}

/// Valid IDs one substitution or transposition from a damaged key (see
/// [`check_neighbourhood`]); re-exported here for the blocking of the batch pass.
pub fn neighbourhood(raw: &str) -> Vec<u64> {
    match id_form(raw) {
        Some((s, false)) => {
            let n = check_neighbourhood(&s);
            // a widened 15-digit number passes its computed check: no check neighbourhood
            if n.is_empty() {
                super::compare::legacy_neighbourhood(&s)
            } else {
                n
            }
        }
        _ => Vec::new(),
    }
}

/// One expectation–maximisation step of the Fellegi–Sunter model over comparison patterns
/// (levels per comparison, with their counts): each pattern's match posterior under the prior
/// `lam` and the current `m`/`u` (into `post`), then the new m of every level of every
/// comparison not `held` (add-0.01 smoothing keeps every level possible). `levels[c]` is the
/// number of levels of comparison `c`. Returns the expected matched count and the largest change
/// of an m.
fn em_step<P: AsRef<[u8]>>(
    pats: &[(P, f64)],
    lam: f64,
    m: &mut [Vec<f64>],
    u: &[Vec<f64>],
    levels: &[usize],
    post: &mut [f64],
    held: impl Fn(usize) -> bool,
) -> (f64, f64) {
    let n = levels.len();
    for (pi, (p, _)) in pats.iter().enumerate() {
        let p = p.as_ref();
        let mut lo = (lam / (1.0 - lam)).ln();
        for c in 0..n {
            let lv = p[c] as usize;
            if lv > 0 {
                lo += (m[c][lv].max(1e-12) / u[c][lv].max(1e-300)).ln();
            }
        }
        post[pi] = 1.0 / (1.0 + (-lo).exp());
    }
    let mut mnew: Vec<Vec<f64>> = levels.iter().map(|&l| vec![0.0; l]).collect();
    let mut matched = 0.0;
    for ((p, cnt), q) in pats.iter().zip(post.iter()) {
        let p = p.as_ref();
        matched += cnt * q;
        for c in 0..n {
            mnew[c][p[c] as usize] += cnt * q;
        }
    }
    let mut delta: f64 = 0.0;
    for c in 0..n {
        if held(c) {
            continue;
        }
        let tot: f64 = mnew[c][1..].iter().sum();
        for lv in 1..mnew[c].len() {
            let v = (mnew[c][lv] + 0.01) / (tot + 0.01 * (mnew[c].len() - 1) as f64);
            delta = delta.max((v - m[c][lv]).abs());
            m[c][lv] = v;
        }
    }
    (matched, delta)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A synthetic pair of files with known m and u: 3,000 entities on each side (2,000 shared),
    /// four fields; a shared entity's field agrees with probability 0.9 / 0.8 / 0.95 / 0.85, two
    /// different entities agree with probability 1/50 / 1/20 / 1/365 / 1/100 (uniform values).
    fn synthetic() -> (Table, Table, Schema) {
        let mut st = 7u64;
        let mut draw = |n: u64| splitmix(&mut st) % n;
        let card = [50u64, 20, 365, 100];
        let keep = [0.9, 0.8, 0.95, 0.85];
        let ents: Vec<[u64; 4]> = (0..4000)
            .map(|_| [draw(card[0]), draw(card[1]), draw(card[2]), draw(card[3])])
            .collect();
        let row = |e: usize, id: String, noisy: bool, draw: &mut dyn FnMut(u64) -> u64| {
            let mut v = vec![Some(id)];
            for f in 0..4 {
                let x = if noisy && (draw(1000) as f64) >= keep[f] * 1000.0 {
                    (ents[e][f] + 1 + draw(card[f] - 1)) % card[f]
                } else {
                    ents[e][f]
                };
                v.push(Some(format!("v{x}")));
            }
            v
        };
        let columns = ["id", "a", "b", "c", "d"].map(String::from).to_vec();
        let left = Table {
            columns: columns.clone(),
            rows: (0..3000)
                .map(|e| row(e, format!("e{e}"), false, &mut draw))
                .collect(),
        };
        let right = Table {
            columns,
            rows: (1000..4000)
                .map(|e| row(e, format!("e{e}"), true, &mut draw))
                .collect(),
        };
        let schema = Schema::from_toml(
            r#"id = "id"
            [thresholds]
            match = 5.0
            possible_match = 0.0
            [[comparison]]
            field = "a"
            kind = "exact"
            [[comparison]]
            field = "b"
            kind = "exact"
            [[comparison]]
            field = "c"
            kind = "exact"
            [[comparison]]
            field = "d"
            kind = "exact"
            [[blocking]]
            left = ["a"]
            [[blocking]]
            left = ["c"]"#,
        )
        .unwrap();
        (left, right, schema)
    }

    #[test]
    fn em_recovers_the_m_and_u_of_a_synthetic_set() {
        let (l, r, schema) = synthetic();
        let run = crate::link::link_tables(&schema, &l, &r).unwrap();
        let m = &run.model;
        // level 1 = exact
        for (c, (want_m, want_u)) in [
            (0.9, 1.0 / 50.0),
            (0.8, 1.0 / 20.0),
            (0.95, 1.0 / 365.0),
            (0.85, 1.0 / 100.0),
        ]
        .iter()
        .enumerate()
        {
            assert!(
                (m.m[c][1] - want_m).abs() < 0.04,
                "m[{c}] = {} want {want_m}",
                m.m[c][1]
            );
            assert!(
                (m.u[c][1] - want_u).abs() < want_u * 0.25,
                "u[{c}] = {} want {want_u}",
                m.u[c][1]
            );
        }
        // λ: 2,000 true pairs among 3,000 × 3,000
        let want = 2000.0 / 9.0e6;
        assert!(
            (m.lambda - want).abs() < want * 0.1,
            "λ = {} want {want}",
            m.lambda
        );
        // every field agreeing is strong evidence, every field disagreeing strong against
        assert!(m.weight(&[1, 1, 1, 1], &[None, None, None, None]) > 10.0);
        assert!(m.weight(&[2, 2, 2, 2], &[None, None, None, None]) < -10.0);
    }

    #[test]
    fn blocking_keys_join_swapped_columns_and_id_neighbourhoods() {
        let t = |rows: Vec<Vec<Option<String>>>| Table {
            columns: ["id", "given", "surname", "idn"].map(String::from).to_vec(),
            rows,
        };
        let s = |v: &str| Some(v.to_string());
        let left = t(vec![vec![
            s("l0"),
            s("mary"),
            s("smith"),
            s("620503197003140014"),
        ]]);
        let right = t(vec![
            vec![s("r0"), s("smith"), s("mary"), None],
            vec![s("r1"), s("x"), s("y"), s("620503197008140014")],
            vec![s("r2"), s("x"), s("y"), s("620503197030140014")],
            vec![s("r3"), s("x"), s("y"), s("620503199999999999")],
        ]);
        let schema = Schema::from_toml(
            r#"id = "id"
            [thresholds]
            match = 5.0
            possible_match = 0.0
            [[comparison]]
            field = "given"
            kind = "name"
            [[blocking]]
            left = ["given", "surname"]
            right = ["surname", "given"]
            [[blocking]]
            left = ["id_mask(idn)"]"#,
        )
        .unwrap();
        let (pairs, per_rule) = block(&schema, &left, &right).unwrap();
        assert_eq!(pairs, vec![(0, 0), (0, 1), (0, 2)]);
        assert_eq!(per_rule, vec![1, 2]);
    }
}
