//! The batch's second linkage pass: source rows whose key did not link exactly (the ID is
//! missing or fails GB 11643-1999, or it is valid but no caseload person's while the row bears
//! a caseload person's name and birth date) against the caseload's members and supporters.
//!
//! A row keyed with another person's valid ID ([`PendingRow::other_valid_id`]; found by the
//! scan with [`NameDateIndex`]) is paired only with the persons of its name and birth date,
//! its ID is compared as another person's (`else`, never a damaged form of theirs), its birth
//! date is compared, and it is at most a `possible_match` (`rests_on =
//! name_and_birth_date_against_another_valid_id`). A row whose ID the household registration
//! gives to a resident of its name is that namesake's own and no candidate.
//!
//! What a row holds besides its key is used: the name (NFKC, middle dots, pinyin variants;
//! its frequency in the whole population of the household registration, so a name held by one
//! resident weighs more than a common one), the birth date and gender of a registration row,
//! and what survives of a damaged ID (one substitution or transposition from a caseload ID
//! whose check character fails). Blocking: the single-substitution neighbourhood of the key
//! (`id_mask`), the normalised name, the pinyin of the name with the birth date.
//!
//! Evidence from outside the row ([`SameSource`], measured on the run's exact links): the
//! values the candidate's own records of the same source share with the row (an employer and
//! a contribution base every month, a monthly deposit), and the region the row names (plate,
//! credit code, real-estate region; [`row_region`]) against the candidate's registered region.
//!
//! A row with no key is one of the residents' who bear its name, with chances set by how often
//! persons of each age band, in and outside the caseload, hold records of its source
//! ([`HoldingRates`], measured on the run's rows with a valid key): the `holding_rate:`
//! contributions. They weigh a possible match; they never make a `match`.
//!
//! m/u and λ are trained on these pairs (random-pair u, EM), weights are bits. Each row goes
//! to its best-scoring person; when other persons score within [`AMBIGUITY_BITS`] the row may
//! be any of theirs: each of them (up to [`MAX_RIVALS`]) gets it as a `possible_match`, none
//! as a `match`. A link that rests on the name alone says so (`name_only`) and is only ever a
//! `possible_match`: a clerk sees it, no rule uses it.
//!
//! A possible match refers its household only when it is decisive: the household is
//! assessed again as if the possible matches were confirmed ([`PersonLinks::what_if`],
//! `crate::verify::build_report`), and an `eligible` or `ineligible` household whose
//! determination would then differ becomes `referred`; otherwise the match is shown with an
//! `info` finding. It never makes a household `ineligible`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::compare::ComparisonKind;
use super::model::{self, BlockingRule, FieldComparison, Model, Schema, Table, Training};
use super::{Contribution, Decision, Thresholds};
use crate::domain::IdNumber;
use crate::verify::source_index;

/// A `match` whose best rival person scores within this many bits is only a `possible_match`.
pub const AMBIGUITY_BITS: f64 = 3.0;

/// At most this many equally likely persons get one row as a possible match (a name shared
/// by more caseload persons than this is no evidence about any one of them).
pub const MAX_RIVALS: usize = 4;

/// m of the name levels (null, exact, variant, Jaro-Winkler ≥ 0.92, ≥ 0.8, else): the share
/// of a holder's rows whose name is written so. Assumed, not measured on real extracts.
pub const NAME_M: [f64; 6] = [0.0, 0.975, 0.01, 0.01, 0.004, 0.001];
/// m of the ID levels (null, exact, one edit with a failing check, else) for a damaged key.
pub const ID_M: [f64; 4] = [0.0, 0.001, 0.98, 0.019];

/// Default thresholds of the batch pass (bits), used when the policy file names none;
/// chosen from the dirty-county evaluation (benches/link-county.sh), the same as the bundled
/// policy's `[possible_match]`.
pub const DEFAULT_THRESHOLDS: Thresholds = Thresholds {
    match_weight: 3.0,
    possible_match: -2.5,
};

/// A source row that did not link exactly.
#[derive(Debug, Clone, Default)]
pub struct PendingRow {
    /// The ID as written (may be empty).
    pub raw_id: Option<String>,
    /// The holder's name as written.
    pub name: Option<String>,
    /// Birth date from the record (household registration), ISO.
    pub birth_date: Option<String>,
    /// Gender from the record (`male`/`female`/`M`/`F`/`1`/`2`/`男`/`女`).
    pub gender: Option<String>,
    /// The row's ID number is valid (passes GB 11643-1999 MOD 11-2) but is no caseload
    /// person's: the row is pending only because its name and the birth date in its ID (or
    /// its record) are a caseload person's ([`NameDateIndex`]). `raw_id` then holds the
    /// valid ID in its 18-digit form and `birth_date` that birth date. Such a row is paired
    /// only with the caseload persons of that name and birth date; its ID is compared as
    /// another person's (level `else`, never `one_edit_damaged`: a near-miss ID with a valid
    /// check character is usually a same-day neighbour's), its birth date is compared, and
    /// it is at most a `possible_match`.
    pub other_valid_id: bool,
}

/// The outcome for one pending row that reached a person.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FuzzyLink {
    /// Index of the row in the pending list.
    pub row: usize,
    /// Index of the person (as given to [`second_pass`]).
    pub person: usize,
    /// Match weight, bits.
    pub weight: f64,
    /// `match` or `possible_match`.
    pub decision: Decision,
    /// The waterfall: prior, then each comparison's level and bits.
    pub waterfall: Vec<Contribution>,
    /// True when nothing but the name agrees (no ID digits, birth date or gender).
    pub name_only: bool,
    /// The next-best person's weight, if any.
    pub runner_up: Option<f64>,
    /// Persons whose weight is within [`AMBIGUITY_BITS`] of the best one's (the best included):
    /// above 1 the row may be any of theirs, so each of them (up to [`MAX_RIVALS`]) gets the
    /// row as a `possible_match` and none as a `match`.
    pub rivals: usize,
}

/// Counts of a second pass.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PassStats {
    /// Rows considered.
    pub rows: u64,
    /// Candidate pairs compared.
    pub pairs: u64,
    /// Rows linked (`match`).
    pub matched: u64,
    /// Of which on the name alone.
    pub matched_name_only: u64,
    /// Rows shown as `possible_match`.
    pub possible: u64,
    /// Milliseconds.
    pub ms: u128,
    /// EM iterations.
    pub em_iterations: usize,
    /// λ.
    pub lambda: f64,
}

fn gender_norm(g: &str) -> Option<&'static str> {
    match g.trim() {
        "male" | "M" | "m" | "1" | "男" => Some("male"),
        "female" | "F" | "f" | "2" | "女" => Some("female"),
        _ => None,
    }
}

/// The schema of the batch pass (comparisons and blocking over the columns built below).
pub fn schema(t: Thresholds) -> Schema {
    let fc = |field: &str, kind: &str, tf: bool| FieldComparison {
        field: field.into(),
        kind: kind.into(),
        thresholds: Vec::new(),
        tf,
    };
    Schema {
        id: "id".into(),
        comparisons: vec![
            fc("name", "name", true),
            fc("id_number", "id_number", false),
            fc("birth_date", "date", false),
            fc("gender", "exact", false),
        ],
        // the ID's check neighbourhood is looked up directly (see `second_pass`)
        blocking: vec![
            BlockingRule {
                left: vec!["name(name)".into()],
                right: None,
            },
            BlockingRule {
                left: vec!["pinyin(name)".into(), "birth_date".into()],
                right: None,
            },
        ],
        thresholds: t,
        training: Training {
            u_pairs: 300_000,
            em_iterations: 40,
            seed: 1,
        },
    }
}

/// Score pending rows against caseload persons.
///
/// `persons[i]` = (valid ID, name as written in the caseload). `name_counts`: residents per
/// normalised name in the population (household registration); `population`: residents.
/// Returns, per row that reached a person at or above `possible_match`, its best link.
pub fn second_pass(
    persons: &[(IdNumber, Option<String>)],
    rows: &[PendingRow],
    name_counts: &HashMap<String, u64>,
    population: u64,
    thresholds: Thresholds,
    context: &(dyn Fn(usize, usize) -> Vec<Contribution> + Sync),
) -> (Vec<FuzzyLink>, PassStats) {
    let t0 = std::time::Instant::now();
    let mut stats = PassStats {
        rows: rows.len() as u64,
        ..PassStats::default()
    };
    if rows.is_empty() || persons.is_empty() {
        return (Vec::new(), stats);
    }
    let cols = ["id", "id_number", "name", "birth_date", "gender"]
        .map(String::from)
        .to_vec();
    let left = Table {
        columns: cols.clone(),
        rows: persons
            .iter()
            .enumerate()
            .map(|(i, (id, name))| {
                vec![
                    Some(i.to_string()),
                    Some(id.expose()),
                    name.clone(),
                    Some(id.birth_date().to_string()),
                    Some(if id.is_male() { "male" } else { "female" }.to_string()),
                ]
            })
            .collect(),
    };
    let right = Table {
        columns: cols,
        rows: rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                // A key that still has the shape of an ID carries the holder's birth date and
                // gender in its digits: comparing the record's too would count them twice
                // (and a same-day neighbour's damaged key would look like a match).
                let keyed = r
                    .raw_id
                    .as_deref()
                    .and_then(super::compare::id_form)
                    .is_some();
                // A valid ID of another person carries *that* person's gender: only the
                // record's is compared; the birth date is the one the row was paired on.
                let (birth, gender) = if keyed && !r.other_valid_id {
                    (None, None)
                } else {
                    (r.birth_date.as_deref(), r.gender.as_deref())
                };
                vec![
                    Some(i.to_string()),
                    r.raw_id.clone(),
                    r.name.clone(),
                    birth
                        .and_then(super::compare::date_digits)
                        .map(|d| format!("{}-{}-{}", &d[..4], &d[4..6], &d[6..])),
                    gender.and_then(gender_norm).map(String::from),
                ]
            })
            .collect(),
    };
    let sc = schema(thresholds);
    let kinds: Vec<ComparisonKind> = sc
        .comparisons
        .iter()
        .map(|c| c.comparison().expect("built-in schema"))
        .collect();
    let names: Vec<String> = sc.comparisons.iter().map(|c| c.field.clone()).collect();
    let Ok((mut pairs, _)) = model::block(&sc, &left, &right) else {
        return (Vec::new(), stats);
    };
    // the single-substitution / transposition neighbourhood of each key that fails its check
    let by_key: HashMap<u64, u32> = persons
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (id.key(), i as u32))
        .collect();
    for (j, r) in rows.iter().enumerate().filter(|(_, r)| !r.other_valid_id) {
        for k in r
            .raw_id
            .as_deref()
            .map(model::neighbourhood)
            .unwrap_or_default()
        {
            if let Some(&i) = by_key.get(&k) {
                pairs.push((i, j as u32));
            }
        }
    }
    // A row with a valid ID of another person is a candidate of the caseload persons who bear
    // its name and its birth date, and of no one else (see `PendingRow::other_valid_id`).
    if rows.iter().any(|r| r.other_valid_id) {
        let norm = |n: Option<&str>| n.and_then(super::compare::normalise_name);
        let mut by_name_date: HashMap<(String, String), Vec<u32>> = HashMap::new();
        for (i, (id, name)) in persons.iter().enumerate() {
            if let Some(n) = norm(name.as_deref()) {
                let date = id.birth_date().format("%Y%m%d").to_string();
                by_name_date.entry((n, date)).or_default().push(i as u32);
            }
        }
        pairs.retain(|&(_, j)| !rows[j as usize].other_valid_id);
        for (j, r) in rows.iter().enumerate().filter(|(_, r)| r.other_valid_id) {
            let key = r
                .birth_date
                .as_deref()
                .and_then(super::compare::date_digits)
                .zip(norm(r.name.as_deref()));
            let Some((date, name)) = key else { continue };
            for &i in by_name_date.get(&(name, date)).into_iter().flatten() {
                pairs.push((i, j as u32));
            }
        }
    }
    pairs.sort_unstable();
    pairs.dedup();
    let (Ok(l), Ok(r)) = (
        model::prepare(&sc, &kinds, &left, "caseload"),
        model::prepare(&sc, &kinds, &right, "source"),
    ) else {
        return (Vec::new(), stats);
    };
    stats.pairs = pairs.len() as u64;
    tracing::info!(
        ms = t0.elapsed().as_millis() as u64,
        pairs = pairs.len(),
        "Second pass blocked."
    );
    let gamma = model::gammas(&kinds, &l, &r, &pairs);
    // u of agreeing on a name among non-matches: the other residents who bear it
    let pop = population.max(1) as f64;
    let tf: HashMap<String, f64> = name_counts
        .iter()
        .map(|(n, c)| (n.clone(), ((*c as f64 - 1.0).max(0.05)) / pop))
        .collect();
    // Fixed from what is known rather than learnt (EM over these pairs collapses: nearly all
    // of them agree on the name by construction of the blocking):
    // - λ: each row belongs to one of `population` residents, so a given person is its holder
    //   with probability 1/population;
    // - name m: departments write the holder's name as the caseload does (NAME_M);
    // - ID m: a damaged key is one edit from its holder's ID (MOD 11-2 catches every single
    //   substitution and adjacent transposition, so the damage seen is one edit; ID_M);
    // - ID u of "one edit": the pairs one edit apart whose names disagree, over all pairs.
    let n_pairs_all = (persons.len() as f64) * (rows.len() as f64);
    let nc = kinds.len();
    let last_name = (kinds[0].levels() - 1) as u8;
    let stranger_edits = gamma
        .chunks(nc)
        .filter(|g| g[1] == 2 && g[0] == last_name)
        .count() as f64;
    let u_edit = (stranger_edits.max(1.0) / n_pairs_all.max(1.0)).min(0.5);
    let u_exact = 1.0 / n_pairs_all.max(1.0);
    let fixed = model::Fixed {
        m: vec![Some(NAME_M.to_vec()), Some(ID_M.to_vec()), None, None],
        u: vec![
            None,
            Some(vec![0.0, u_exact, u_edit, 1.0 - u_edit - u_exact]),
            None,
            None,
        ],
        lambda: Some(1.0 / pop.max(persons.len() as f64 + 1.0)),
    };
    let m = Model::train(
        &kinds,
        &names,
        &l,
        &r,
        &gamma,
        &sc.training,
        vec![Some(tf)],
        &fixed,
        None,
    );
    tracing::info!(ms = t0.elapsed().as_millis() as u64, "Second pass trained.");
    stats.em_iterations = m.em_iterations;
    stats.lambda = m.lambda;
    let mut weights = m.score(&l, &gamma, &pairs);
    // evidence from outside the row (the person's own records of the row's source), in bits
    let extra: Vec<Vec<Contribution>> = {
        use rayon::prelude::*;
        pairs
            .par_iter()
            .map(|&(i, j)| context(j as usize, i as usize))
            .collect()
    };
    for (w, e) in weights.iter_mut().zip(&extra) {
        *w += e.iter().map(|c| c.weight).sum::<f64>();
    }
    // every person a row reached, best first
    let mut reached: Vec<Vec<(f64, usize)>> = vec![Vec::new(); rows.len()];
    for (p, (&(_, j), &w)) in pairs.iter().zip(&weights).enumerate() {
        reached[j as usize].push((w, p));
    }
    let n = kinds.len();
    let mut out = Vec::new();
    for (j, cands) in reached.iter_mut().enumerate() {
        if cands.is_empty() {
            continue;
        }
        cands.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let (w, _) = cands[0];
        let runner_up = cands.get(1).map(|c| c.0);
        // the persons as likely as the best one: the row may be any of theirs
        let rivals = cands
            .iter()
            .take_while(|c| w - c.0 < AMBIGUITY_BITS)
            .count();
        let mut first = true;
        for &(w, p) in cands.iter().take(rivals.min(MAX_RIVALS)) {
            let mut decision = Decision::of(w, &thresholds);
            if decision == Decision::NonMatch {
                break;
            }
            if decision == Decision::Match && rivals > 1 {
                decision = Decision::PossibleMatch;
            }
            let (i, _) = pairs[p];
            let g = &gamma[p * n..(p + 1) * n];
            let lv: Vec<_> = (0..n).map(|c| l.values[c][i as usize].as_ref()).collect();
            let mut waterfall = m.explain(g, &lv);
            waterfall.extend(extra[p].iter().cloned());
            // agreeing evidence other than the name: an ID level, birth date or gender above 0 bits
            // (how often persons like the candidate hold such records says how likely the row is
            // theirs among the name's bearers, not that it is: it is no identity evidence)
            // A same-source contribution is evidence only when a value is shared: a row that
            // shares nothing with the candidate's records (`nothing_shared`, `not_shared`) may
            // weigh above 0 bits by how often holders' rows share nothing, and made a bank row
            // of a member's name, a balance and no other cell a match that made a family
            // ineligible (session 25's attack).
            let name_only = waterfall
                .iter()
                .skip(2)
                .filter(|c| !c.comparison.starts_with("holding_rate:"))
                .filter(|c| !c.comparison.starts_with("same_source:") || c.level == "shared")
                .all(|c| c.weight <= 0.0 || c.level == "null");
            // A link that rests on the name alone is shown to a clerk, never used by a rule: on
            // the gen.py --dirty county 1 of 146 such links was a stranger's row, and it made a
            // family ineligible (a wrong link is worse than a missed one; issue 7).
            if decision == Decision::Match && name_only {
                decision = Decision::PossibleMatch;
            }
            // How often persons like the candidate hold such records may make a row more likely
            // theirs, never a link: a match needs its weight without that support.
            let support: f64 = waterfall
                .iter()
                .filter(|c| c.comparison.starts_with("holding_rate:"))
                .map(|c| c.weight.max(0.0))
                .sum();
            if decision == Decision::Match && w - support < thresholds.match_weight {
                decision = Decision::PossibleMatch;
            }
            // A row keyed with another person's valid ID is never linked, however high its
            // weight: the ID is evidence that the row is that person's (a bank or a vehicle
            // office keyed the wrong customer, or its holder is a same-name, same-day birth
            // outside the household registration), and nothing in the row tells the two apart
            // with the certainty a rule needs (a wrong link makes a family ineligible). A clerk
            // sees both records.
            if decision == Decision::Match && rows[j].other_valid_id {
                decision = Decision::PossibleMatch;
            }
            if first {
                match decision {
                    Decision::Match => {
                        stats.matched += 1;
                        stats.matched_name_only += u64::from(name_only);
                    }
                    _ => stats.possible += 1,
                }
            }
            first = false;
            out.push(FuzzyLink {
                row: j,
                person: i as usize,
                weight: w,
                decision,
                waterfall,
                name_only,
                runner_up,
                rivals,
            });
        }
    }
    stats.ms = t0.elapsed().as_millis();
    (out, stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::id_number::make_id;
    use chrono::NaiveDate;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn typo(s: &str, pos: usize) -> String {
        let mut b = s.as_bytes().to_vec();
        b[pos] = if b[pos] == b'9' { b'0' } else { b[pos] + 1 };
        String::from_utf8(b).unwrap()
    }

    /// A small county: 400 caseload persons with mostly distinct names, a population four
    /// times larger; pending rows of several kinds.
    #[allow(clippy::type_complexity, reason = "a test fixture")]
    fn world() -> (Vec<(IdNumber, Option<String>)>, HashMap<String, u64>) {
        let sur = ["王", "李", "张", "刘", "陈", "杨", "赵", "黄"];
        let giv = [
            "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟",
            "涛", "明", "超", "秀", "霞", "平",
        ];
        let mut persons = Vec::new();
        let mut counts: HashMap<String, u64> = HashMap::new();
        for k in 0..400u32 {
            let name = format!(
                "{}{}{}",
                sur[(k % 8) as usize],
                giv[(k / 8 % 20) as usize],
                giv[((k / 160) + k % 3) as usize % 20]
            );
            let id = make_id(
                620503,
                d(1950 + (k % 50) as i32, 1 + k % 12, 1 + k % 28),
                100 + k,
            );
            *counts
                .entry(super::super::compare::normalise_name(&name).unwrap())
                .or_insert(0) += 3;
            persons.push((id, Some(name)));
        }
        (persons, counts)
    }

    fn run(
        persons: &[(IdNumber, Option<String>)],
        rows: &[PendingRow],
        counts: &HashMap<String, u64>,
    ) -> Vec<FuzzyLink> {
        second_pass(persons, rows, counts, 1600, DEFAULT_THRESHOLDS, &|_, _| {
            Vec::new()
        })
        .0
    }

    fn row(id: Option<&str>, name: &str) -> PendingRow {
        PendingRow {
            raw_id: id.map(String::from),
            name: Some(name.into()),
            ..PendingRow::default()
        }
    }

    fn padding(persons: &[(IdNumber, Option<String>)]) -> Vec<PendingRow> {
        // typo rows of caseload persons give EM something to learn from
        persons
            .iter()
            .step_by(4)
            .map(|(id, n)| row(Some(&typo(&id.expose(), 12)), n.as_deref().unwrap()))
            .collect()
    }

    #[test]
    fn a_one_digit_typo_and_an_adjacent_transposition_link_to_the_person() {
        let (persons, counts) = world();
        let mut rows = padding(&persons);
        let (id, name) = (&persons[7].0, persons[7].1.clone().unwrap());
        let s = id.expose();
        rows.push(row(Some(&typo(&s, 3)), &name));
        let mut t = s.clone().into_bytes();
        let pos = (0..16)
            .find(|&i| {
                t[i] != t[i + 1] && {
                    let mut u = t.clone();
                    u.swap(i, i + 1);
                    crate::domain::id_number::check_character(u[..17].try_into().unwrap()) != u[17]
                }
            })
            .unwrap();
        t.swap(pos, pos + 1);
        rows.push(row(Some(std::str::from_utf8(&t).unwrap()), &name));
        let links = run(&persons, &rows, &counts);
        for k in [rows.len() - 2, rows.len() - 1] {
            let l = links.iter().find(|l| l.row == k).expect("linked");
            assert_eq!(
                (l.person, l.decision),
                (7, Decision::Match),
                "row {k}: {l:?}"
            );
            assert!(!l.name_only);
            assert!(l.waterfall.iter().any(|c| c.comparison == "id_number"
                && c.level == "one_edit_damaged"
                && c.weight > 10.0));
        }
    }

    #[test]
    fn a_legacy_15_digit_key_and_variant_names_link() {
        let (persons, counts) = world();
        let mut rows = padding(&persons);
        let (id, name) = (&persons[11].0, persons[11].1.clone().unwrap());
        let s = id.expose();
        let legacy = format!("{}{}", &s[..6], &s[8..17]);
        // a legacy number with one wrong digit: no check character to tell, still one edit
        rows.push(row(Some(&typo(&legacy, 12)), &name));
        // full-width and traditional forms of the name with a damaged key
        let trad: String = name
            .chars()
            .map(|c| match c {
                '陈' => '陳',
                '张' => '張',
                '刘' => '劉',
                '杨' => '楊',
                '赵' => '趙',
                '黄' => '黃',
                '伟' => '偉',
                '丽' => '麗',
                '军' => '軍',
                '杰' => '傑',
                '涛' => '濤',
                '艳' => '艷',
                '霞' => '霞',
                x => x,
            })
            .collect();
        rows.push(row(Some(&typo(&s, 9)), &trad));
        let links = run(&persons, &rows, &counts);
        for k in [rows.len() - 2, rows.len() - 1] {
            let l = links
                .iter()
                .find(|l| l.row == k)
                .unwrap_or_else(|| panic!("row {k} linked"));
            assert_eq!(l.person, 11);
            assert_eq!(l.decision, Decision::Match, "{l:?}");
        }
    }

    #[test]
    fn a_valid_near_miss_id_of_another_person_is_not_linked() {
        let (persons, counts) = world();
        let mut rows = padding(&persons);
        // another resident born the same day in the same county: valid ID, one digit away
        let id = persons[5].0;
        let b = id.birth_date();
        let other = (0..999)
            .map(|q| make_id(620503, b, q))
            .find(|o| {
                *o != id
                    && super::super::compare::one_edit(
                        &o.expose().as_bytes()[..17],
                        &id.expose().as_bytes()[..17],
                    )
            })
            .unwrap();
        rows.push(row(Some(&other.expose()), "孙悟空"));
        // and the same stranger's key with a typo (fails the check): the name disagrees
        rows.push(row(Some(&typo(&other.expose(), 16)), "孙悟空"));
        let links = run(&persons, &rows, &counts);
        for k in [rows.len() - 2, rows.len() - 1] {
            assert!(
                links.iter().all(|l| l.row != k
                    || l.decision == Decision::PossibleMatch && l.person != 5
                    || l.decision != Decision::Match),
                "{:?}",
                links.iter().find(|l| l.row == k)
            );
        }
    }

    fn other_valid(id: IdNumber, name: &str) -> PendingRow {
        PendingRow {
            raw_id: Some(id.expose()),
            name: Some(name.into()),
            birth_date: Some(id.birth_date().to_string()),
            gender: None,
            other_valid_id: true,
        }
    }

    #[test]
    fn another_persons_valid_id_with_the_name_and_birth_date_is_a_possible_match_never_a_match() {
        let (persons, counts) = world();
        let mut rows = padding(&persons);
        let (id, name) = (persons[9].0, persons[9].1.clone().unwrap());
        // a same-day, same-county neighbour's valid ID one digit away (the wrong customer, or
        // a two-digit slip that passes the check)
        let neighbour = (0..999)
            .map(|q| make_id(620503, id.birth_date(), q))
            .find(|o| {
                *o != id
                    && super::super::compare::one_edit(
                        &o.expose().as_bytes()[..17],
                        &id.expose().as_bytes()[..17],
                    )
            })
            .unwrap();
        rows.push(other_valid(neighbour, &name));
        // a fresh valid ID of the same day issued in another county
        rows.push(other_valid(make_id(620104, id.birth_date(), 777), &name));
        // the same name with a birth date one day later: nobody's candidate
        let later = make_id(620503, id.birth_date().succ_opt().unwrap(), 555);
        rows.push(other_valid(later, &name));
        let n = rows.len();
        let links = run(&persons, &rows, &counts);
        for k in [n - 3, n - 2] {
            let l: Vec<_> = links.iter().filter(|l| l.row == k).collect();
            assert_eq!(l.len(), 1, "{l:?}");
            let l = l[0];
            assert_eq!(
                (l.person, l.decision, l.name_only, l.rivals),
                (9, Decision::PossibleMatch, false, 1)
            );
            let level = |c: &str| {
                l.waterfall
                    .iter()
                    .find(|x| x.comparison == c)
                    .map(|x| (x.level.clone(), x.weight))
                    .unwrap()
            };
            // the valid ID is compared as another person's, never as a damaged form of theirs
            let (id_level, id_bits) = level("id_number");
            assert_eq!(id_level, "else");
            assert!(id_bits < -5.0, "{id_bits}");
            let (birth, birth_bits) = level("birth_date");
            assert_eq!(birth, "exact");
            assert!(birth_bits > 5.0, "{birth_bits}");
            assert_eq!(level("name").0, "exact");
            // the other person's gender digit is not the holder's evidence
            assert_eq!(level("gender").0, "null");
            // the weight alone would make a match: the valid ID of another keeps it possible
            assert_eq!(
                Decision::of(l.weight, &DEFAULT_THRESHOLDS),
                Decision::Match,
                "{l:?}"
            );
        }
        assert!(
            links.iter().all(|l| l.row != n - 1),
            "a different birth date pairs with nobody"
        );
    }

    #[test]
    fn the_name_date_index_finds_a_caseload_name_on_its_birth_date_only() {
        let a = make_id(620503, d(1970, 5, 6), 61);
        let b = make_id(620503, d(1988, 9, 30), 42);
        let ix = NameDateIndex::new([(&a, Some("欧阳修远")), (&b, Some("阿依古丽·买买提"))]);
        assert_eq!(NameDateIndex::date_of(a), 19_700_506);
        assert_eq!(NameDateIndex::date_key(d(1970, 5, 6)), 19_700_506);
        assert!(ix.matches(19_700_506, "欧阳修远"));
        // written with spaces or another middle dot: normalised before the lookup
        assert!(ix.matches(19_700_506, " 欧阳 修远"));
        assert!(ix.matches(19_880_930, "阿依古丽\u{2022}买买提"));
        // any separator of the name's parts, or none (a name of plain ideographs: the fast
        // path's own normal form)
        assert!(ix.matches(19_880_930, "阿依古丽.买买提"));
        assert!(ix.matches(19_880_930, "阿依古丽－买买提"));
        assert!(ix.matches(19_880_930, "阿依古丽买买提"));
        assert!(!ix.matches(19_700_507, "欧阳修远"));
        assert!(!ix.matches(19_700_506, "欧阳修"));
        assert!(!ix.matches(19_880_930, "欧阳修远"));
        assert!(!ix.matches(19_700_506, ""));
        assert!(NameDateIndex::new([]).is_empty());
    }

    #[test]
    fn person_keys_find_every_key_and_turn_away_most_others() {
        // a county-sized caseload: 100,000 keys of one region, consecutive sequence numbers
        let keys: Vec<u64> = (0..100_000u64)
            .map(|i| {
                make_id(
                    620503,
                    d(1950, 1, 1) + chrono::Days::new(i / 7),
                    (i % 7) as u32 * 10 + 1,
                )
                .key()
            })
            .collect();
        let set = PersonKeys::new(keys.iter().copied());
        assert_eq!(set.len(), 100_000);
        assert!(keys.iter().all(|&k| set.contains(k)), "no false negatives");
        // the neighbours of the keys (the next sequence number): none is a person's, and the
        // bit filter turns away all but about 1 % of them before the hash set
        let others: Vec<u64> = keys.iter().map(|k| k + 1).collect();
        assert!(others.iter().all(|&k| !set.contains(k)));
        let passed = others.iter().filter(|&&k| set.bits.may_contain(k)).count();
        assert!(passed < 2_000, "{passed} of 100,000 passed the bit filter");
        assert!(PersonKeys::new([]).is_empty());
        assert!(!PersonKeys::new([]).contains(keys[0]));
    }

    #[test]
    fn homonyms_with_different_birth_dates_are_kept_apart() {
        let (mut persons, mut counts) = world();
        // two caseload persons share a name; a registration row with that name, no key, and
        // the birth date of the second
        let a = make_id(620503, d(1961, 2, 3), 41);
        let b = make_id(620503, d(1988, 9, 30), 42);
        persons.push((a, Some("欧阳娜娜".into())));
        persons.push((b, Some("欧阳娜娜".into())));
        counts.insert("欧阳娜娜".into(), 2);
        let mut rows = padding(&persons);
        rows.push(PendingRow {
            raw_id: None,
            name: Some("欧阳娜娜".into()),
            birth_date: Some("1988-09-30".into()),
            gender: Some("女".into()),
            other_valid_id: false,
        });
        let links = run(&persons, &rows, &counts);
        let l = links
            .iter()
            .find(|l| l.row == rows.len() - 1)
            .expect("reaches a person");
        assert_eq!(l.person, persons.len() - 1, "{l:?}");
        assert!(
            l.waterfall
                .iter()
                .any(|c| c.comparison == "birth_date" && c.level == "exact" && c.weight > 0.0)
        );
        let homonym = l
            .waterfall
            .iter()
            .find(|c| c.comparison == "birth_date")
            .unwrap();
        assert!(homonym.weight > 5.0);
    }

    #[test]
    fn a_common_name_alone_is_never_a_match_and_a_unique_one_says_name_only() {
        let (persons, mut counts) = world();
        let mut rows = padding(&persons);
        let common = persons[20].1.clone().unwrap();
        counts.insert(common.clone(), 200);
        let unique = persons[30].1.clone().unwrap();
        counts.insert(unique.clone(), 1);
        rows.push(row(None, &common));
        rows.push(row(None, &unique));
        let links = run(&persons, &rows, &counts);
        assert!(
            links
                .iter()
                .all(|l| l.row != rows.len() - 2 || l.decision != Decision::Match)
        );
        if let Some(l) = links.iter().find(|l| l.row == rows.len() - 1) {
            assert_eq!(l.person, 30);
            assert!(l.name_only);
            assert_eq!(
                l.decision,
                Decision::PossibleMatch,
                "name-only links are for a clerk"
            );
        }
    }

    #[test]
    fn a_missing_key_row_whose_name_fits_one_person_is_a_possible_match_and_several_say_so() {
        let (mut persons, mut counts) = world();
        // one caseload person bears 欧阳修远, the only resident who does
        let one = make_id(620503, d(1970, 5, 6), 61);
        persons.push((one, Some("欧阳修远".into())));
        counts.insert("欧阳修远".into(), 1);
        // two caseload persons (two households) bear 司马青衫, the only two residents who do
        let a = make_id(620503, d(1961, 2, 3), 41);
        let b = make_id(620503, d(1988, 9, 30), 42);
        persons.push((a, Some("司马青衫".into())));
        persons.push((b, Some("司马青衫".into())));
        counts.insert("司马青衫".into(), 2);
        let mut rows = padding(&persons);
        rows.push(row(None, "欧阳修远"));
        rows.push(row(None, "司马青衫"));
        let t = Thresholds {
            match_weight: 3.0,
            possible_match: -1.0,
        };
        let (links, _) = second_pass(&persons, &rows, &counts, 1600, t, &|_, _| Vec::new());
        let n = persons.len();
        let unique: Vec<_> = links.iter().filter(|l| l.row == rows.len() - 2).collect();
        assert_eq!(unique.len(), 1, "{unique:?}");
        assert_eq!(
            (unique[0].person, unique[0].decision, unique[0].rivals),
            (n - 3, Decision::PossibleMatch, 1)
        );
        assert!(
            unique[0].name_only && unique[0].weight > 3.0,
            "{:?}",
            unique[0]
        );
        // the shared name: the row may be either's; both are shown, neither is linked
        let mut shared: Vec<_> = links.iter().filter(|l| l.row == rows.len() - 1).collect();
        shared.sort_by_key(|l| l.person);
        assert_eq!(
            shared
                .iter()
                .map(|l| (l.person, l.decision, l.rivals))
                .collect::<Vec<_>>(),
            vec![
                (n - 2, Decision::PossibleMatch, 2),
                (n - 1, Decision::PossibleMatch, 2)
            ]
        );
        // one posterior of 1/2 each: 0 bits, give or take the prior
        assert!(shared.iter().all(|l| l.weight.abs() < 0.1), "{shared:?}");
    }

    #[test]
    fn evidence_from_outside_the_row_is_added_to_the_weight_and_the_waterfall() {
        let (persons, counts) = world();
        let mut rows = padding(&persons);
        let name = persons[40].1.clone().unwrap();
        rows.push(row(None, &name));
        let j = rows.len() - 1;
        let ctx = |r: usize, i: usize| {
            if r == j && i == 40 {
                vec![Contribution {
                    comparison: "same_source:employer_credit_code".into(),
                    level: "shared".into(),
                    weight: 12.0,
                }]
            } else {
                Vec::new()
            }
        };
        let (links, _) = second_pass(&persons, &rows, &counts, 1600, DEFAULT_THRESHOLDS, &ctx);
        let l = links.iter().find(|l| l.row == j).expect("reaches a person");
        assert_eq!(
            (l.person, l.decision, l.name_only),
            (40, Decision::Match, false)
        );
        assert!(
            l.waterfall
                .iter()
                .any(|c| c.comparison == "same_source:employer_credit_code" && c.weight == 12.0)
        );
        let sum: f64 = l.waterfall.iter().map(|c| c.weight).sum();
        assert!((sum - l.weight).abs() < 1e-6, "{sum} vs {}", l.weight);
    }

    #[test]
    fn holding_rate_support_raises_a_weight_but_never_makes_a_match() {
        let (persons, counts) = world();
        let mut rows = padding(&persons);
        let name = persons[40].1.clone().unwrap();
        rows.push(row(None, &name));
        let j = rows.len() - 1;
        let support = |bits: f64| {
            move |r: usize, i: usize| {
                if r == j && i == 40 {
                    vec![Contribution {
                        comparison: "holding_rate:candidate".into(),
                        level: "caseload_age_40_44".into(),
                        weight: bits,
                    }]
                } else {
                    Vec::new()
                }
            }
        };
        let t = Thresholds {
            match_weight: 3.0,
            possible_match: -2.5,
        };
        let plain = second_pass(&persons, &rows, &counts, 1600, t, &support(0.0)).0;
        let base = plain.iter().find(|l| l.row == j).expect("reaches a person");
        let (with, _) = second_pass(&persons, &rows, &counts, 1600, t, &support(12.0));
        let l = with.iter().find(|l| l.row == j).expect("reaches a person");
        assert_eq!(l.person, 40);
        // the support is in the weight and the waterfall ...
        assert!(
            (l.weight - base.weight - 12.0).abs() < 1e-9,
            "{l:?} {base:?}"
        );
        // (three residents bear the name: log2(0.975 / 2) = -1.04 bits before the support,
        // far above the match threshold after it)
        assert!((base.weight + 1.04).abs() < 0.05, "{base:?}");
        assert!(l.weight > t.match_weight + 7.0);
        // ... but the row still rests on the name only: shown to a clerk, used by no rule
        assert!(l.name_only);
        assert_eq!(l.decision, Decision::PossibleMatch);
        // and support against a candidate lowers the weight below the possible-match cut
        let (against, _) = second_pass(&persons, &rows, &counts, 1600, t, &support(-20.0));
        assert!(against.iter().all(|l| l.row != j || l.person != 40));
    }
}

#[cfg(test)]
mod holding_tests {
    use super::*;
    use hedui_connectors::SourceKind as K;

    fn as_of() -> chrono::NaiveDate {
        chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap()
    }

    #[test]
    fn a_possible_matchs_waterfall_is_one_line_of_comparisons_levels_and_bits() {
        let w = vec![
            Contribution {
                comparison: "prior".into(),
                level: "λ".into(),
                weight: -20.519,
            },
            Contribution {
                comparison: "name".into(),
                level: "exact".into(),
                weight: 18.5,
            },
            Contribution {
                comparison: "holding_rate:bearers".into(),
                level: "by_age".into(),
                weight: 0.8985,
            },
        ];
        assert_eq!(
            waterfall_text(&w),
            "prior λ -20.52; name exact +18.50; holding_rate:bearers by_age +0.90"
        );
    }

    #[test]
    fn age_bands_are_five_years_wide_with_one_for_95_and_over() {
        assert_eq!(age_band(1990, as_of()), 7); // 36
        assert_eq!(age_band(2026, as_of()), 0);
        assert_eq!(age_band(2030, as_of()), 0); // after as_of: band 0, never a panic
        assert_eq!(age_band(1931, as_of()), 19); // 95
        assert_eq!(age_band(1800, as_of()), 19);
        assert_eq!(UNKNOWN_AGE, 20);
    }

    /// 1,000 residents aged 10-14 (none in the caseload), 1,000 aged 40-44 (100 in the
    /// caseload); 450 vehicles of the 900 outside adults, 20 of the 100 caseload adults.
    fn rates() -> HoldingRates {
        let mut pop = Population::default();
        pop.by_band[2] = 1000;
        pop.by_band[8] = 1000;
        pop.total = 2000;
        let mut case = [0u64; AGE_BANDS];
        case[8] = 100;
        let mut rows = vec![[[0u64; AGE_BANDS]; 2]; 12];
        rows[source_index(K::VehicleVessel)][0][8] = 450;
        rows[source_index(K::VehicleVessel)][1][8] = 20;
        // every resident has a registration row: no rate for it
        rows[source_index(K::HouseholdRegistration)][0][8] = 900;
        rows[source_index(K::HouseholdRegistration)][0][2] = 1000;
        // too few rows to measure
        rows[source_index(K::Securities)][0][8] = HOLDING_MIN_ROWS - 1;
        HoldingRates::measure(&rows, &pop, &case)
    }

    #[test]
    fn holding_rates_weigh_the_candidate_and_the_other_bearers_of_the_name_by_age() {
        let r = rates();
        let v = source_index(K::VehicleVessel);
        // r̄ = 450 / 1900; outside 40-44: (450 + 20 r̄) / 920; outside 10-14: 20 r̄ / 1020;
        // caseload 40-44: (20 + 20 × 0.2) / 120 = 0.2
        let mean: f64 = 450.0 / 1900.0;
        let adult = (450.0 + 20.0 * mean) / 920.0;
        let child = 20.0 * mean / 1020.0;
        assert!((mean - 0.236_842).abs() < 1e-6);
        assert!((adult - 0.494_279).abs() < 1e-6 && (child - 0.004_644).abs() < 1e-6);
        // a 40-44-year-old candidate; the name is borne by them, one other adult, three children
        let mut bearers = [0u32; AGE_BANDS];
        bearers[8] = 2;
        bearers[2] = 3;
        let c = r.contributions(v, 8, Some(&bearers), true);
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!(
            (c[0].comparison.as_str(), c[0].level.as_str()),
            ("holding_rate:candidate", "caseload_age_40_44")
        );
        // the caseload holds vehicles less often than others: log2(0.2 / r̄) = -0.2439
        assert!((c[0].weight - (0.2 / mean).log2()).abs() < 1e-9);
        assert!((c[0].weight + 0.2439).abs() < 1e-4, "{c:?}");
        // children rarely hold a vehicle: 4 other bearers count as 1.07 → +0.8985 bits
        assert_eq!(c[1].comparison, "holding_rate:bearers");
        let expected = (4.0 * mean / (adult + 3.0 * child)).log2();
        assert!((c[1].weight - expected).abs() < 1e-9);
        assert!((c[1].weight - 0.8985).abs() < 1e-4, "{c:?}");
        // four other adults: they are likelier holders than the average resident
        bearers[8] = 5;
        bearers[2] = 0;
        let c = r.contributions(v, 8, Some(&bearers), true);
        assert!((c[1].weight - (4.0 * mean / (4.0 * adult)).log2()).abs() < 1e-9);
        assert!(c[1].weight < -1.0);
        // a child candidate of a source children hold at the overall caseload rate (shrunk)
        let kid = r.contributions(v, 2, None, true);
        assert_eq!(kid.len(), 1);
        assert!((kid[0].weight - (0.2 / mean).log2()).abs() < 1e-9);
        // a variant name: the bearers' count is not the row's
        assert_eq!(r.contributions(v, 8, Some(&bearers), false).len(), 1);
        // no rate for the registration, a thin source or a source out of range
        assert!(
            r.contributions(source_index(K::HouseholdRegistration), 8, None, true)
                .is_empty()
        );
        assert!(
            r.contributions(source_index(K::Securities), 8, None, true)
                .is_empty()
        );
        assert!(r.contributions(99, 8, None, true).is_empty());
    }
}

/// One pending row as the batch hands it over: where it came from and what it holds.
#[derive(Debug, Clone)]
pub struct BatchRow {
    /// Index of the source in `SourceKind::ALL`.
    pub source: usize,
    /// 0-based data row.
    pub row: u64,
    /// Index of its entry in the run's quarantine; `None` for a row whose valid ID is no
    /// caseload person's (an unlinked row, not quarantined; see [`PendingRow::other_valid_id`]).
    pub quarantine_index: Option<usize>,
    /// The record's §2 values (as `frame_to_records` gives them).
    pub record: hedui_connectors::Record,
    /// What the linker compares.
    pub pending: PendingRow,
}

/// The caseload persons' normalised names by birth date: what the batch's scan tests a row
/// against when its ID number is valid but no caseload person's (issue 7: a department keyed
/// the wrong person's valid ID, or a two-digit error passed the check). Such a row is a
/// candidate of the second pass when its name, normalised as [`super::compare::normalise_name`]
/// does, is the name of a caseload person born on the date its ID encodes.
///
/// Shapes: dates as `YYYYMMDD` integers; a date holds a handful of names (about 3.6 on the
/// 30,000-household county: 103,069 persons over 28,540 dates). The test costs one hash lookup
/// and a few byte comparisons for a name of plain CJK ideographs (U+4E00–U+9FFF, which NFKC and
/// [`crate::domain::Name::parse`] leave as they are); any other name is normalised first.
#[derive(Debug)]
pub struct NameDateIndex {
    /// Hashes of (birth date, normalised name): a row is tested with one hash and one probe.
    /// A hash collision (about 10^-14 per row on a county) only sends a row to the second
    /// pass, which pairs it by the names themselves.
    keys: ahash::AHashSet<u64>,
    /// One bit per hash value (modulo the filter's size, [`KeyBits`]): most rows are turned
    /// away here without a probe into `keys`.
    bits: KeyBits,
    hasher: ahash::RandomState,
    /// ID keys of caseload persons the run does not query because they are in another slice
    /// (`--partition`, `--memory-limit`): a row keyed with one of them is that person's, as
    /// the full run links it, never a candidate of a namesake in this slice.
    outside: ahash::AHashSet<u64>,
}

/// A blocked Bloom filter in front of a hash set probed on every row of every extract: two
/// bits per value, both in one 64-bit word, so a test is one load. Its size is a power of two
/// of at least 2^21 bits (256 KiB) and about 16 bits per value, up to 2^24 (2 MiB). A row the
/// filter turns away costs that load instead of a probe into the set's tables (16 MiB and more
/// for the million persons of 300,000 households: a miss to memory per row). False positives:
/// ~1 % of the rows at 100,000 values (the 30,000 households' persons), ~2 % at a million.
///
/// (Sessions 14-17 kept it under 512 KiB, in a core's second-level cache beside the reader's
/// pages, at ~15 % false positives at a million values, each a probe into the set. Since the
/// scan tests a block of rows at a time ([`PersonKeys::contains_each`]), the loads of a block
/// overlap, and a filter in the third-level cache with a tenth of the probes costs less: the
/// filter's and the probes' samples 5,005 → 4,402 at 300k households, perf, session 18.)
#[derive(Debug, Clone)]
pub struct KeyBits {
    words: Vec<u64>,
    /// The number of words less one.
    mask: usize,
}

impl KeyBits {
    /// The filter of `values` (hashes or keys: [`KeyBits::probe`] mixes them).
    pub fn new(values: impl ExactSizeIterator<Item = u64>) -> KeyBits {
        let size = (values.len() as u64 * 16)
            .next_power_of_two()
            .clamp(1 << 21, 1 << 24);
        let mut bits = KeyBits {
            words: vec![0; (size / 64) as usize],
            mask: (size / 64 - 1) as usize,
        };
        for v in values {
            let (w, m) = bits.probe(v);
            bits.words[w] |= m;
        }
        bits
    }

    /// The word of `v` and its two bits in it (a 64-bit finaliser, splitmix64's).
    #[inline]
    fn probe(&self, v: u64) -> (usize, u64) {
        let mut h = v;
        h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^= h >> 31;
        (
            (h >> 32) as usize & self.mask,
            (1 << (h & 63)) | (1 << ((h >> 6) & 63)),
        )
    }

    /// `false` when `v` is certainly not a value of the filter.
    #[inline]
    pub fn may_contain(&self, v: u64) -> bool {
        let (w, m) = self.probe(v);
        self.words[w] & m == m
    }
}

/// Caseload person ID key (17-digit body) → index into the run's persons. aHash, not
/// SipHash: looked up once per linked record and per person assessed (7.3 M records at
/// 300,000 households); nothing iterates it into an output.
pub type PersonIndex = HashMap<u64, usize, ahash::RandomState>;

/// The ID keys ([`IdNumber::key`]) of the persons a run queries: the membership test of every
/// row of every extract, a [`KeyBits`] filter in front of a hash set.
#[derive(Debug, Clone)]
pub struct PersonKeys {
    keys: ahash::AHashSet<u64>,
    bits: KeyBits,
}

impl PersonKeys {
    /// The set of `keys`.
    pub fn new(keys: impl IntoIterator<Item = u64>) -> PersonKeys {
        let keys: ahash::AHashSet<u64> = keys.into_iter().collect();
        let bits = KeyBits::new(keys.iter().copied());
        PersonKeys { keys, bits }
    }

    /// Whether `key` is one of the persons'.
    #[inline]
    pub fn contains(&self, key: u64) -> bool {
        self.bits.may_contain(key) && self.keys.contains(&key)
    }

    /// Whether each of `keys` is one of the persons': `out[i]` for `keys[i]` (`out` is
    /// cleared first). The filter's words of all keys are loaded in one pass, each load
    /// independent of the others, so that the processor overlaps their cache misses; then the
    /// set is probed for the keys the filter let through. Tested a row at a time, each row
    /// waited for its filter word alone: a third of the scan's filter time at 300,000
    /// households (perf, session 18).
    pub fn contains_each(&self, keys: &[u64], out: &mut Vec<bool>) {
        out.clear();
        out.extend(keys.iter().map(|&k| self.bits.may_contain(k)));
        for (o, k) in out.iter_mut().zip(keys) {
            if *o {
                *o = self.keys.contains(k);
            }
        }
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl Default for NameDateIndex {
    fn default() -> Self {
        NameDateIndex::new([])
    }
}

impl NameDateIndex {
    /// The index of `persons` (ID, name as written); persons without a readable name are left
    /// out.
    pub fn new<'a>(persons: impl IntoIterator<Item = (&'a IdNumber, Option<&'a str>)>) -> Self {
        // fixed seeds: the same index in every run
        let hasher =
            ahash::RandomState::with_seeds(0x0068_6564_7569, 0x6c69_6e6b, 0x6e61_6d65, 0x6461_7465);
        let mut ix = NameDateIndex {
            keys: ahash::AHashSet::new(),
            bits: KeyBits::new(std::iter::empty()),
            hasher,
            outside: ahash::AHashSet::new(),
        };
        // normalised and hashed in parallel (a million persons of a province: ~0.5 s on one
        // core); a name of plain ideographs is its own normal form
        // ([`crate::domain::Name::is_plain_ideographs`])
        use rayon::prelude::*;
        let persons: Vec<(&IdNumber, &str)> = persons
            .into_iter()
            .filter_map(|(id, name)| Some((id, name?)))
            .collect();
        let hashes: Vec<u64> = persons
            .par_iter()
            .with_min_len(4096)
            .filter_map(|&(id, name)| {
                let date = Self::date_of(*id);
                if crate::domain::Name::is_plain_ideographs(name) {
                    // (`不详` is plain ideographs, and no name)
                    return (!super::compare::is_name_placeholder(name))
                        .then(|| ix.hash(date, name));
                }
                super::compare::normalise_name(name).map(|n| ix.hash(date, &n))
            })
            .collect();
        ix.keys = hashes.into_iter().collect();
        ix.bits = KeyBits::new(ix.keys.iter().copied());
        ix
    }

    /// The index of the caseload's members and supporters whose valid ID's key
    /// ([`IdNumber::key`]) `queried` accepts (the persons a run queries), by their names as
    /// written.
    pub fn of_caseload(
        caseload: &crate::ingest::caseload::Caseload,
        queried: impl Fn(u64) -> bool,
    ) -> Self {
        NameDateIndex::new(
            caseload
                .members
                .iter()
                .map(|m| (&m.id, &m.name))
                .chain(caseload.supporters.iter().map(|s| (&s.id, &s.name)))
                .filter_map(|(id, name)| {
                    let id = id.as_ref().ok()?;
                    queried(id.key()).then_some((id, name.as_deref()))
                }),
        )
    }

    /// The index's hashes, sorted: what an incremental run's state keeps of the caseload's
    /// names ([`NameDateIndex::from_hashes`]), no name itself.
    pub fn hashes(&self) -> Vec<u64> {
        let mut h: Vec<u64> = self.keys.iter().copied().collect();
        h.sort_unstable();
        h
    }

    /// A value of this build's hash function (of a fixed date and name): an index is rebuilt
    /// from kept hashes only by a build whose probe is the same ([`NameDateIndex::from_hashes`]).
    pub fn probe() -> u64 {
        NameDateIndex::default().hash(20_261_101, "核对")
    }

    /// The index whose hashes are `hashes` ([`NameDateIndex::hashes`]), when they were made by
    /// a build with this one's `probe` ([`NameDateIndex::probe`]); `None` otherwise (another
    /// hash function: the caller indexes the names again).
    pub fn from_hashes(probe: u64, hashes: Vec<u64>) -> Option<Self> {
        let mut ix = NameDateIndex::default();
        if ix.hash(20_261_101, "核对") != probe {
            return None;
        }
        ix.keys = hashes.into_iter().collect();
        ix.bits = KeyBits::new(ix.keys.iter().copied());
        Some(ix)
    }

    fn hash(&self, date: u32, name: &str) -> u64 {
        use std::hash::{BuildHasher, Hasher};
        let mut h = self.hasher.build_hasher();
        h.write_u32(date);
        h.write(name.as_bytes());
        h.finish()
    }

    fn contains(&self, h: u64) -> bool {
        self.bits.may_contain(h) && self.keys.contains(&h)
    }

    /// The birth date an ID encodes, `YYYYMMDD` as an integer (characters 7–14).
    pub fn date_of(id: IdNumber) -> u32 {
        ((id.key() / 1000) % 100_000_000) as u32
    }

    /// `YYYYMMDD` as an integer.
    pub fn date_key(d: chrono::NaiveDate) -> u32 {
        use chrono::Datelike;
        d.year().max(0) as u32 * 10_000 + d.month() * 100 + d.day()
    }

    /// Whether no person is indexed.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The ID keys of the caseload persons of the other slices of a sliced run: rows keyed
    /// with them are never candidates ([`NameDateIndex::is_outside`]).
    pub fn set_outside(&mut self, keys: ahash::AHashSet<u64>) {
        self.outside = keys;
    }

    /// Whether `key` is a caseload person's of another slice ([`NameDateIndex::set_outside`]).
    pub fn is_outside(&self, key: u64) -> bool {
        !self.outside.is_empty() && self.outside.contains(&key)
    }

    /// [`NameDateIndex::matches`] of each `(date, raw name)` of `rows`: `out[i]` for
    /// `rows[i]` (`out` is cleared first; `hashes` is scratch). As in
    /// [`PersonKeys::contains_each`], the filter's words of all rows are loaded in one pass,
    /// then the set is probed for the rows it let through, then a name that is not plain
    /// ideographs and missed is normalised and tested again.
    pub fn matches_each(&self, rows: &[(u32, &str)], hashes: &mut Vec<u64>, out: &mut Vec<bool>) {
        hashes.clear();
        hashes.extend(rows.iter().map(|&(date, raw)| self.hash(date, raw)));
        out.clear();
        out.extend(hashes.iter().map(|&h| self.bits.may_contain(h)));
        for ((o, h), &(date, raw)) in out.iter_mut().zip(hashes.iter()).zip(rows) {
            if *o {
                *o = self.keys.contains(h);
            }
            if !*o && !crate::domain::Name::is_plain_ideographs(raw) {
                *o = super::compare::normalise_name(raw)
                    .is_some_and(|n| n != raw && self.contains(self.hash(date, &n)));
            }
        }
    }

    /// Whether a caseload person born on `date` (`YYYYMMDD`) bears the name `raw`.
    pub fn matches(&self, date: u32, raw: &str) -> bool {
        if self.contains(self.hash(date, raw)) {
            return true;
        }
        // a name of plain ideographs is its own normal form, and it missed; any other name is
        // normalised first
        !crate::domain::Name::is_plain_ideographs(raw)
            && super::compare::normalise_name(raw)
                .is_some_and(|n| n != raw && self.contains(self.hash(date, &n)))
    }
}

/// Age bands of the holding rates: five years each (0–4, 5–9, …, 90–94, 95 and over) and
/// a last one for an unknown birth date.
pub const AGE_BANDS: usize = 21;
/// The band of an unknown birth date.
pub const UNKNOWN_AGE: usize = AGE_BANDS - 1;

/// The age band (index into `[_; AGE_BANDS]`) of a person born in `birth_year`, by years
/// at `as_of` (a birth year after `as_of` is band 0).
pub fn age_band(birth_year: i32, as_of: chrono::NaiveDate) -> usize {
    use chrono::Datelike;
    let age = (as_of.year() - birth_year).max(0) as usize;
    (age / 5).min(UNKNOWN_AGE - 1)
}

/// The residents of the household registration extract (the whole population the sources
/// cover): per normalised name, residents by age band ([`age_band`]; a birth date that cannot
/// be read is [`UNKNOWN_AGE`]); residents by band; residents.
#[derive(Debug, Default, Clone)]
pub struct Population {
    /// Residents per normalised name and age band.
    pub names: HashMap<String, [u32; AGE_BANDS]>,
    /// Residents per age band.
    pub by_band: [u64; AGE_BANDS],
    /// Residents (rows of the extract).
    pub total: u64,
    /// For the ID keys asked for ([`Population::read`]'s `holders_of`): the normalised names
    /// the registration gives their holders (usually one).
    pub holders: HashMap<u64, Vec<String>>,
}

impl Population {
    /// Read the household registration extract under `sources` (name and birth date).
    /// `None` when it cannot be read (then names carry no frequency: every name is treated
    /// as shared by many, so no link rests on a name alone, and no holding rate is measured).
    ///
    /// `holders_of`: ID keys (17-digit bodies) whose registered holders' names are wanted
    /// ([`Population::holders`]); the ID column is read only when it is not empty.
    pub fn read(
        sources: &std::path::Path,
        as_of: chrono::NaiveDate,
        holders_of: &ahash::AHashSet<u64>,
    ) -> Option<Population> {
        use polars::prelude::*;
        let conn = hedui_connectors::FileConnector::locate(
            sources,
            hedui_connectors::SourceKind::HouseholdRegistration,
        )
        .ok()?;
        let mut cols = vec![
            col("name").cast(DataType::String),
            col("birth_date").cast(DataType::String),
        ];
        if !holders_of.is_empty() {
            cols.push(col("id_number").cast(DataType::String));
        }
        // Read in batches (the streaming engine, in file order), each dropped once counted:
        // the extract holds every resident (20 M rows for a million caseload persons), and
        // collected whole its three text columns took ~1.3 GB at that size.
        let lf = conn.scan().ok()?.select(cols);
        let mut p = Population::default();
        // residents by written name and band first: a name is normalised once, not per resident
        let mut by_raw: HashMap<String, [u32; AGE_BANDS]> = HashMap::new();
        crate::batch::for_each_batch(
            lf,
            |df| p.add_batch(&df, as_of, holders_of, &mut by_raw).ok_or(()),
            |_| (),
        )
        .ok()?;
        for (raw, bands) in by_raw {
            if let Some(k) = super::compare::normalise_name(&raw) {
                let e = p.names.entry(k).or_insert([0; AGE_BANDS]);
                for (a, b) in e.iter_mut().zip(bands) {
                    *a += b;
                }
            }
        }
        Some(p)
    }

    /// Counts one batch of the registration extract (`name`, `birth_date` as text, and
    /// `id_number` when `holders_of` is not empty) into `self` and `by_raw` (residents by
    /// written name and age band). `None` when a column cannot be read.
    fn add_batch(
        &mut self,
        df: &polars::prelude::DataFrame,
        as_of: chrono::NaiveDate,
        holders_of: &ahash::AHashSet<u64>,
        by_raw: &mut HashMap<String, [u32; AGE_BANDS]>,
    ) -> Option<()> {
        let names = df.column("name").ok()?.str().ok()?;
        let births = df.column("birth_date").ok()?.str().ok()?;
        if !holders_of.is_empty() {
            let ids = df.column("id_number").ok()?.str().ok()?;
            for (raw, name) in ids.iter().zip(names.iter()) {
                let Some(raw) = raw else { continue };
                let t = raw.trim().as_bytes();
                // the common form without a parse; any other through the full parser
                let key = if t.len() == 18 && t[..17].iter().all(u8::is_ascii_digit) {
                    Some(
                        t[..17]
                            .iter()
                            .fold(0u64, |a, d| a * 10 + u64::from(d - b'0')),
                    )
                } else {
                    IdNumber::parse(raw, as_of).ok().map(|(id, _)| id.key())
                };
                if let Some(k) = key.filter(|k| holders_of.contains(k))
                    && let Some(n) = name.and_then(super::compare::normalise_name)
                {
                    self.holders.entry(k).or_default().push(n);
                }
            }
        }
        for (name, birth) in names.iter().zip(births.iter()) {
            let band = birth
                .and_then(|b| b.trim().get(..4))
                .and_then(|y| y.parse::<i32>().ok())
                .map_or(UNKNOWN_AGE, |y| age_band(y, as_of));
            self.total += 1;
            self.by_band[band] += 1;
            if let Some(n) = name {
                match by_raw.get_mut(n) {
                    Some(c) => c[band] += 1,
                    None => {
                        let mut c = [0; AGE_BANDS];
                        c[band] = 1;
                        by_raw.insert(n.to_string(), c);
                    }
                }
            }
        }
        Some(())
    }

    /// Residents per normalised name (all ages).
    pub fn counts(&self) -> HashMap<String, u64> {
        self.names
            .iter()
            .map(|(n, b)| (n.clone(), b.iter().map(|&c| u64::from(c)).sum()))
            .collect()
    }
}

/// How many records of a source a person holds, by who they are: measured per source and age
/// band on the run's rows with a valid ID number (persons outside the caseload: their rows over
/// the residents of the band who are not in the caseload; caseload persons: their exactly linked
/// rows over the caseload persons of the band), shrunk towards the source's overall rate with
/// [`HOLDING_SHRINK`] persons' weight.
///
/// A row with no usable key is one of the residents' who bear its name; without other evidence
/// the chance that it is a given caseload person's is that person's rate over the sum of the
/// rates of every resident bearing the name (a row of a source that minors rarely hold is
/// rarely a child's; a source the caseload holds less often than others is less often a
/// caseload person's). The name comparison alone assumes every bearer equally likely
/// (odds `m / (bearers - 1)`); [`HoldingRates::contributions`] gives the two corrections in
/// bits: `holding_rate:candidate` = log2(r_caseload(band) / r̄) and `holding_rate:bearers`
/// = log2((bearers - 1) r̄ / Σ r_outside(band of each other bearer)), r̄ the source's mean rate
/// outside the caseload. They say how likely the row is the candidate's among the residents,
/// not that it is the candidate's: a link they support still rests on the name only.
#[derive(Debug, Default)]
pub struct HoldingRates {
    sources: Vec<Option<SourceRates>>,
}

/// Weight (persons) of a source's overall rate in each band's holding rate.
pub const HOLDING_SHRINK: f64 = 20.0;
/// A source with fewer rows than this outside the caseload gets no holding rate.
pub const HOLDING_MIN_ROWS: u64 = 200;

#[derive(Debug, Clone)]
struct SourceRates {
    outside: [f64; AGE_BANDS],
    caseload: [f64; AGE_BANDS],
    mean: f64,
}

impl HoldingRates {
    /// Measure the rates. `rows_by_age[s]`: source s's rows with a valid key by the holder's
    /// band, `[outside the caseload, caseload persons]`; `pop`: the residents;
    /// `caseload_by_band`: caseload persons by band. The household registration gets none
    /// (every resident has one row; its pending rows compare birth dates instead).
    pub fn measure(
        rows_by_age: &[[[u64; AGE_BANDS]; 2]],
        pop: &Population,
        caseload_by_band: &[u64; AGE_BANDS],
    ) -> HoldingRates {
        let registration = source_index(hedui_connectors::SourceKind::HouseholdRegistration);
        let sources = rows_by_age
            .iter()
            .enumerate()
            .map(|(si, [out, case])| {
                let out_rows: u64 = out.iter().sum();
                if si == registration || out_rows < HOLDING_MIN_ROWS {
                    return None;
                }
                let residents_out: Vec<f64> = (0..AGE_BANDS)
                    .map(|b| pop.by_band[b].saturating_sub(caseload_by_band[b]) as f64)
                    .collect();
                let n_out: f64 = residents_out.iter().sum();
                let n_case: u64 = caseload_by_band.iter().sum();
                if n_out <= 0.0 || n_case == 0 {
                    return None;
                }
                let mean = out_rows as f64 / n_out;
                let mean_case = case.iter().sum::<u64>() as f64 / n_case as f64;
                let shrunk = |rows: u64, persons: f64, overall: f64| {
                    (rows as f64 + HOLDING_SHRINK * overall) / (persons + HOLDING_SHRINK)
                };
                let mut outside = [mean; AGE_BANDS];
                let mut caseload = [mean_case; AGE_BANDS];
                for b in 0..UNKNOWN_AGE {
                    outside[b] = shrunk(out[b], residents_out[b], mean);
                    caseload[b] = shrunk(case[b], caseload_by_band[b] as f64, mean_case);
                }
                Some(SourceRates {
                    outside,
                    caseload,
                    mean,
                })
            })
            .collect();
        HoldingRates { sources }
    }

    /// The corrections (bits) for a row of source `source` whose name is borne by the
    /// residents `bearers` (by band; `None` when the name is not in the registration) and a
    /// caseload candidate of band `band` who bears the same name (`same_name`; otherwise only
    /// the candidate's own rate counts). Empty when the source has no rates.
    pub fn contributions(
        &self,
        source: usize,
        band: usize,
        bearers: Option<&[u32; AGE_BANDS]>,
        same_name: bool,
    ) -> Vec<Contribution> {
        let Some(Some(r)) = self.sources.get(source) else {
            return Vec::new();
        };
        let band = band.min(UNKNOWN_AGE);
        let floor = 1e-6 * r.mean.max(1e-12);
        let mut out = vec![Contribution {
            comparison: "holding_rate:candidate".into(),
            level: band_label(band),
            weight: (r.caseload[band].max(floor) / r.mean.max(floor)).log2(),
        }];
        if let (Some(bearers), true) = (bearers, same_name) {
            let n: f64 = bearers.iter().map(|&c| f64::from(c)).sum();
            let mut others: f64 = bearers
                .iter()
                .zip(&r.outside)
                .map(|(&c, rate)| f64::from(c) * rate)
                .sum();
            if bearers[band] > 0 {
                others -= r.outside[band];
            }
            // the name comparison's frequency floors one bearer at 0.05 (see `second_pass`)
            let expected = (n - 1.0).max(0.05) * r.mean;
            let others = others.max(0.05 * r.mean);
            out.push(Contribution {
                comparison: "holding_rate:bearers".into(),
                level: "by_age".into(),
                weight: (expected / others).log2(),
            });
        }
        out
    }
}

fn band_label(band: usize) -> String {
    if band >= UNKNOWN_AGE {
        "age_unknown".into()
    } else if band == UNKNOWN_AGE - 1 {
        format!("caseload_age_{}_plus", band * 5)
    } else {
        format!("caseload_age_{}_{}", band * 5, band * 5 + 4)
    }
}

/// The batch's second pass over every pending row of the run: caseload persons (consenting,
/// valid ID; `person_of` maps an ID key to the batch's person index) against the rows.
/// Returns links whose `person` is the batch's person index.
#[allow(
    clippy::too_many_arguments,
    reason = "the batch's parts the pass reads, each named"
)]
pub fn batch_pass(
    caseload: &crate::ingest::Caseload,
    person_of: &PersonIndex,
    rows: &[BatchRow],
    sources: &std::path::Path,
    thresholds: Thresholds,
    own: &OwnRecords<'_>,
    rows_by_age: &[[[u64; AGE_BANDS]; 2]],
    as_of: chrono::NaiveDate,
) -> (Vec<FuzzyLink>, PassStats) {
    if rows.is_empty() {
        return (Vec::new(), PassStats::default());
    }
    let mut persons: Vec<(IdNumber, Option<String>)> = Vec::with_capacity(person_of.len());
    let mut index: Vec<usize> = Vec::with_capacity(person_of.len());
    let mut seen = std::collections::HashSet::new();
    let all = caseload
        .members
        .iter()
        .map(|m| (&m.id, &m.name))
        .chain(caseload.supporters.iter().map(|s| (&s.id, &s.name)));
    for (id, name) in all {
        let Ok(id) = id else { continue };
        let Some(&pi) = person_of.get(&id.key()) else {
            continue;
        };
        if seen.insert(pi) {
            persons.push((*id, name.clone()));
            index.push(pi);
        }
    }
    // the IDs of the rows keyed with another person's valid ID: who holds them
    let foreign: ahash::AHashSet<u64> = rows
        .iter()
        .filter(|r| r.pending.other_valid_id)
        .filter_map(|r| IdNumber::parse(r.pending.raw_id.as_deref()?, as_of).ok())
        .map(|(id, _)| id.key())
        .collect();
    let tn = std::time::Instant::now();
    let pop = Population::read(sources, as_of, &foreign);
    let (counts, population) = pop
        .as_ref()
        .map(|p| (p.counts(), p.total))
        .unwrap_or_default();
    tracing::info!(
        ms = tn.elapsed().as_millis() as u64,
        "Population name frequencies read."
    );
    let band_of = |id: &IdNumber| age_band(chrono::Datelike::year(&id.birth_date()), as_of);
    let bands: Vec<usize> = persons.iter().map(|(id, _)| band_of(id)).collect();
    let mut caseload_by_band = [0u64; AGE_BANDS];
    for &b in &bands {
        caseload_by_band[b] += 1;
    }
    let rates = pop
        .as_ref()
        .map(|p| HoldingRates::measure(rows_by_age, p, &caseload_by_band));
    let norm = |n: Option<&str>| n.and_then(super::compare::normalise_name);
    // (normalised when a pair first needs one: a row reaches a handful of the persons, and
    // normalising every caseload person's name took ~1 s at 300,000 households)
    let person_names: Vec<std::sync::OnceLock<Option<String>>> =
        persons.iter().map(|_| std::sync::OnceLock::new()).collect();
    let person_name = |i: usize| person_names[i].get_or_init(|| norm(persons[i].1.as_deref()));
    let row_names: Vec<Option<String>> = rows
        .iter()
        .map(|r| norm(r.pending.name.as_deref()))
        .collect();
    // A row keyed with another person's valid ID whose registered holder bears the row's name
    // is that holder's (a same-name, same-day birth outside the caseload): it is no candidate.
    // Without the registration nobody can say so: then no such row is a candidate. (Its name
    // is taken away, so that it reaches no person; the row keeps its index.)
    let holder = |j: usize| -> Option<&'static str> {
        let r = &rows[j];
        if !r.pending.other_valid_id {
            return None;
        }
        let key = r
            .pending
            .raw_id
            .as_deref()
            .and_then(|raw| IdNumber::parse(raw, as_of).ok())
            .map(|(id, _)| id.key())?;
        let names = pop.as_ref()?.holders.get(&key);
        match names {
            None => Some("not_registered"),
            Some(ns)
                if ns
                    .iter()
                    .any(|n| same_or_variant(n, r.pending.name.as_deref())) =>
            {
                None
            }
            Some(_) => Some("registered_other_name"),
        }
    };
    let holder_levels: Vec<Option<&'static str>> = (0..rows.len()).map(holder).collect();
    let pending: Vec<PendingRow> = rows
        .iter()
        .zip(&holder_levels)
        .map(|(r, h)| {
            let mut p = r.pending.clone();
            if p.other_valid_id && h.is_none() {
                p.name = None;
            }
            p
        })
        .collect();
    // (only the sources of the pending rows: the others' evidence is never compared)
    let mut of_rows = vec![false; own.sets.sources()];
    for r in rows {
        if let Some(w) = of_rows.get_mut(r.source) {
            *w = true;
        }
    }
    let same = SameSource::measure_for(own, rows, |si| of_rows[si]);
    let context = |j: usize, i: usize| {
        let mut v = same.compare(own, index[i], &rows[j]);
        // who holds the row's valid ID, for the clerk (0 bits: a stranger's ID says the row
        // may be the stranger's, which the ID comparison already weighs)
        if let Some(level) = holder_levels[j] {
            v.push(Contribution {
                comparison: "id_number_holder".into(),
                level: level.into(),
                weight: 0.0,
            });
        }
        // a row with a birth date (registration) compares it instead
        if let (Some(rates), Some(pop), None) = (&rates, &pop, &rows[j].pending.birth_date) {
            let bearers = row_names[j].as_ref().and_then(|n| pop.names.get(n));
            let same_name = row_names[j].is_some() && row_names[j] == *person_name(i);
            v.extend(rates.contributions(rows[j].source, bands[i], bearers, same_name));
        }
        v
    };
    let (mut links, stats) = second_pass(
        &persons, &pending, &counts, population, thresholds, &context,
    );
    for l in &mut links {
        l.person = index[l.person];
    }
    (links, stats)
}

impl BatchRow {
    /// A pending row from a record whose key did not link (`si`: index in `SourceKind::ALL`).
    pub fn new(
        si: usize,
        kind: hedui_connectors::SourceKind,
        quarantine_index: usize,
        record: hedui_connectors::Record,
        name: Option<String>,
    ) -> BatchRow {
        let col = |c: &str| {
            kind.columns()
                .iter()
                .position(|x| x.name == c)
                .and_then(|i| record.values.get(i).cloned().flatten())
        };
        let registration = kind == hedui_connectors::SourceKind::HouseholdRegistration;
        let pending = PendingRow {
            raw_id: Some(record.id_number.clone()).filter(|s| !s.trim().is_empty()),
            name,
            birth_date: if registration {
                col("birth_date")
            } else {
                None
            },
            gender: if registration { col("gender") } else { None },
            other_valid_id: false,
        };
        BatchRow {
            source: si,
            row: record.row,
            quarantine_index: Some(quarantine_index),
            record,
            pending,
        }
    }

    /// A pending row whose ID number `id` is valid but no caseload person's, kept because its
    /// name and birth date are a caseload person's (see [`PendingRow::other_valid_id`]): the
    /// birth date is the record's when it has one, else the ID's.
    pub fn other_valid_id(
        si: usize,
        kind: hedui_connectors::SourceKind,
        record: hedui_connectors::Record,
        name: Option<String>,
        id: IdNumber,
    ) -> BatchRow {
        let mut b = BatchRow::new(si, kind, 0, record, name);
        b.quarantine_index = None;
        b.pending.raw_id = Some(id.expose());
        b.pending.other_valid_id = true;
        if b.pending.birth_date.is_none() {
            b.pending.birth_date = Some(id.birth_date().to_string());
        }
        b
    }
}

/// What the report shows of one link: a fuzzy link or a possible match (person index filled
/// in when the report is built).
#[derive(Debug, Clone)]
pub enum LinkEntry {
    /// `match`.
    Fuzzy(crate::report::FuzzyLinkEntry),
    /// `possible_match`, with the record it would add if a clerk confirmed it (source, §2
    /// values); `None` when the record is not known (then it cannot be weighed).
    Possible(
        crate::render::PossibleMatch,
        Option<(hedui_connectors::SourceKind, Vec<Option<String>>)>,
    ),
}

/// A person's error-tolerant links and possible matches, for the reports they appear in.
#[derive(Debug, Clone, Default)]
pub struct PersonLinks {
    entries: Vec<LinkEntry>,
}

impl PersonLinks {
    /// Add one.
    pub fn add(&mut self, e: LinkEntry) {
        self.entries.push(e);
    }

    /// Whether the person has possible matches.
    pub fn has_possible(&self) -> bool {
        self.entries
            .iter()
            .any(|e| matches!(e, LinkEntry::Possible(..)))
    }

    /// The person's evidence as it would be if every possible match of theirs were confirmed:
    /// `base` plus each possible-match record (a record whose values the rules cannot read
    /// adds nothing). `None` when the person has no possible match whose record is known.
    pub fn what_if(
        &self,
        base: &crate::evidence::PersonEvidence,
        frame: &crate::evidence::Frame,
        policy: &crate::assess::Policy,
    ) -> Option<crate::evidence::PersonEvidence> {
        let mut e = None;
        for entry in &self.entries {
            if let LinkEntry::Possible(_, Some((kind, values))) = entry {
                let ev = e.get_or_insert_with(|| base.clone());
                let _ = ev.add(*kind, values, frame, policy);
            }
        }
        e
    }
}

/// One decided pending row: the link, the row, and what the report shows.
pub struct Applied {
    /// The link (person = the batch's person index).
    pub link: FuzzyLink,
    /// The row.
    pub row: BatchRow,
    /// The report entry.
    pub entry: LinkEntry,
}

fn masked_name(n: Option<&str>) -> Option<String> {
    n.and_then(|n| crate::domain::Name::parse(n).ok())
        .map(|(n, _)| n.masked())
}

/// Run the second pass over the pending rows and build each decided row's report entry;
/// possible matches' quarantine entries say so (they stay quarantined: never used).
#[allow(
    clippy::too_many_arguments,
    reason = "the batch's parts the pass reads and fills, each named"
)]
pub fn apply_batch_pass(
    caseload: &crate::ingest::Caseload,
    person_of: &PersonIndex,
    rows: &[BatchRow],
    sources: &std::path::Path,
    thresholds: Thresholds,
    q: &mut crate::ingest::Quarantine,
    own: &OwnRecords<'_>,
    rows_by_age: &[[[u64; AGE_BANDS]; 2]],
    as_of: chrono::NaiveDate,
) -> Vec<Applied> {
    let (links, stats) = batch_pass(
        caseload,
        person_of,
        rows,
        sources,
        thresholds,
        own,
        rows_by_age,
        as_of,
    );
    tracing::info!(
        rows = stats.rows,
        pairs = stats.pairs,
        matched = stats.matched,
        name_only = stats.matched_name_only,
        possible = stats.possible,
        ms = stats.ms as u64,
        "Error-tolerant linkage done."
    );
    if links.is_empty() {
        // (no walk over the caseload for names nobody needs: the clean run's case)
        return Vec::new();
    }
    // the linked persons' IDs and names, by batch person index
    let linked: std::collections::HashSet<usize> = links.iter().map(|l| l.person).collect();
    let mut who: HashMap<usize, (IdNumber, Option<String>)> = HashMap::new();
    for (id, name) in caseload
        .members
        .iter()
        .map(|m| (&m.id, &m.name))
        .chain(caseload.supporters.iter().map(|s| (&s.id, &s.name)))
    {
        if let Ok(id) = id
            && let Some(&pi) = person_of.get(&id.key())
            && linked.contains(&pi)
        {
            who.entry(pi).or_insert((*id, name.clone()));
        }
    }
    links
        .into_iter()
        .map(|link| {
            let row = rows[link.row].clone();
            let source = hedui_connectors::SourceKind::ALL[row.source].name().to_string();
            let id_masked = row.pending.raw_id.as_deref().map(|r| crate::domain::mask(r.trim()));
            let entry = match link.decision {
                Decision::Match => LinkEntry::Fuzzy(crate::report::FuzzyLinkEntry {
                    person: 0,
                    source,
                    row: row.row,
                    id_number_masked: id_masked,
                    weight: round2(link.weight),
                    probability: model::probability(link.weight),
                    name_only: link.name_only,
                    waterfall: link
                        .waterfall
                        .iter()
                        .map(|c| Contribution { weight: round2(c.weight), ..c.clone() })
                        .collect(),
                }),
                _ => {
                    let (pid, pname) = who.get(&link.person).cloned().unwrap_or((IdNumber::from_key(0), None));
                    let reason = if link.rivals > 1 {
                        "possible_match_ambiguous"
                    } else {
                        "possible_match"
                    };
                    if let Some(e) = row.quarantine_index.and_then(|qi| q.entries.get_mut(qi)).filter(|e| !e.message.contains("possible match")) {
                        e.message.push_str("; a possible match of a caseload person, shown in that household's report (not used by any rule)");
                    }
                    let mut fields = vec![
                        crate::render::MatchField { field: "id_number".into(), person: Some(pid.masked()), record: id_masked },
                        crate::render::MatchField { field: "name".into(), person: masked_name(pname.as_deref()), record: masked_name(row.pending.name.as_deref()) },
                    ];
                    if link.rivals > 1 {
                        // how many caseload persons the row fits as well as this one
                        fields.push(crate::render::MatchField { field: "equally_likely_persons".into(), person: Some(link.rivals.to_string()), record: None });
                    }
                    if row.pending.birth_date.is_some() {
                        fields.push(crate::render::MatchField { field: "birth_date".into(), person: Some(pid.birth_date().to_string()), record: row.pending.birth_date.clone() });
                    }
                    // why it was raised: what it rests on and the waterfall (comparisons, levels
                    // and bits; no values), so a clerk sees that a name alone is behind it
                    fields.push(crate::render::MatchField {
                        field: "rests_on".into(),
                        person: None,
                        record: Some(if row.pending.other_valid_id {
                            // the name and birth date agree, the row's valid ID is another's
                            "name_and_birth_date_against_another_valid_id"
                        } else if link.name_only { "name_only" } else { "name_and_other_evidence" }.into()),
                    });
                    fields.push(crate::render::MatchField {
                        field: "match_weight_bits".into(),
                        person: None,
                        record: Some(format!("{:.2}", link.weight)),
                    });
                    fields.push(crate::render::MatchField {
                        field: "waterfall".into(),
                        person: None,
                        record: Some(waterfall_text(&link.waterfall)),
                    });
                    LinkEntry::Possible(crate::render::PossibleMatch {
                        person: 0,
                        source,
                        row: row.row,
                        score: Some(model::probability(link.weight)),
                        reason: Some(reason.into()),
                        fields,
                    }, Some((hedui_connectors::SourceKind::ALL[row.source], row.record.values.clone())))
                }
            };
            Applied { link, row, entry }
        })
        .collect()
}

/// The waterfall as one line for a possible match's evidence: `comparison level ±bits; …`
/// (comparisons and levels only, never a value).
pub fn waterfall_text(w: &[Contribution]) -> String {
    w.iter()
        .map(|c| format!("{} {} {:+.2}", c.comparison, c.level, c.weight))
        .collect::<Vec<_>>()
        .join("; ")
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Put the persons' links into a report (`persons[i]` ↔ `links[i]`).
///
/// `decisive`: whether confirming the household's possible matches would change its
/// determination (the caller assesses the household again with their records added, see
/// [`PersonLinks::what_if`]). A decisive possible match adds the finding `possible_match`
/// (referred) and turns an `eligible` determination into `referred`: a clerk must decide
/// whose record it is before the household is paid. It turns an `ineligible` one into
/// `referred` too: the refusal then rests on a record nobody has confirmed is not theirs (a
/// confirmed earned income can open a gradual exit). One that could not change the outcome
/// is still shown with both records (finding `possible_match`, `info`): the determination is
/// the same whoever holds the record. A possible match never makes a household `ineligible`
/// (its record is not in the evidence at all).
pub fn attach(
    report: &mut crate::report::VerificationReport,
    links: &[Option<&PersonLinks>],
    policy: &crate::assess::Policy,
    decisive: bool,
) {
    for (pi, l) in links.iter().enumerate() {
        let Some(l) = l else { continue };
        for e in &l.entries {
            match e {
                LinkEntry::Fuzzy(f) => report.fuzzy_links.push(crate::report::FuzzyLinkEntry {
                    person: pi,
                    ..f.clone()
                }),
                LinkEntry::Possible(p, _) => {
                    report.possible_matches.push(crate::render::PossibleMatch {
                        person: pi,
                        ..p.clone()
                    })
                }
            }
        }
    }
    if !report.possible_matches.is_empty() {
        let sources: std::collections::BTreeSet<&str> = report
            .possible_matches
            .iter()
            .map(|p| p.source.as_str())
            .collect();
        let refer = decisive || report.determination == crate::report::Determination::Referred;
        report.findings.push(crate::report::Finding {
            rule: "possible_match".into(),
            clause: policy.clause("possible_match").to_string(),
            outcome: if refer {
                crate::report::Outcome::Referred
            } else {
                crate::report::Outcome::Info
            },
            evidence: serde_json::json!({
                "possible_matches": report.possible_matches.len(),
                "sources": sources,
                "would_change_determination": decisive,
            }),
        });
        if decisive {
            report.determination = crate::report::Determination::Referred;
        }
    }
}

/// Whether two names are the same or variants of each other (any level of the name
/// comparison but the last: exact, variant, or close by Jaro-Winkler).
fn same_or_variant(a: &str, b: Option<&str>) -> bool {
    let k = ComparisonKind::Name {
        thresholds: vec![0.92, 0.8],
        tf: false,
    };
    let (a, b) = (k.prepare(Some(a)), k.prepare(b));
    a.is_some() && b.is_some() && k.level(a.as_ref(), b.as_ref()) != (k.levels() - 1) as u8
}

/// Whether the pending `row`, whose key differs from a caseload person's only in the check
/// character, is plainly another person's: it names someone else than `theirs`, the person's
/// name as written (the normalised names differ and are not variants). A same-day neighbour's
/// key with a typo can look like a check-character slip of a caseload ID; without that
/// evidence (no row, no name on either side) the person's source stays unverified (missing is
/// not zero).
pub fn another_persons(theirs: Option<&str>, row: Option<&BatchRow>) -> bool {
    let (Some(theirs), Some(row)) = (theirs, row) else {
        return false;
    };
    let k = ComparisonKind::Name {
        thresholds: vec![0.92, 0.8],
        tf: false,
    };
    let (a, b) = (
        k.prepare(Some(theirs)),
        k.prepare(row.pending.name.as_deref()),
    );
    a.is_some() && b.is_some() && k.level(a.as_ref(), b.as_ref()) == (k.levels() - 1) as u8
}

#[cfg(test)]
mod report_tests {
    use super::*;
    use crate::report::{Determination, Outcome, VerificationReport};
    use crate::verify::source_index;

    fn report(d: Determination) -> VerificationReport {
        serde_json::from_value(serde_json::json!({
            "report_id": "r/h", "run_id": "r", "household_id": "h", "region_code": "620503",
            "area": "urban", "programme": "dibao", "category": "full", "as_of": "2026-11-01",
            "determination": d, "per_capita_monthly_income": "100.00",
            "per_capita_financial_assets": "0.00", "household_income_annual": "1200.00",
            "financial_assets_total": "0.00", "members": 1, "review_due": false,
            "findings": [], "sources": [], "persons": [],
            "policy": {"id": "p", "title": "t", "illustrative": true, "dibao_standard_monthly": "700.00"}
        }))
        .unwrap()
    }

    fn possible() -> PersonLinks {
        let mut l = PersonLinks::default();
        l.add(LinkEntry::Possible(
            crate::render::PossibleMatch {
                person: 9,
                source: "vehicle_vessel".into(),
                row: 4,
                score: Some(0.7),
                reason: Some("possible_match".into()),
                fields: Vec::new(),
            },
            None,
        ));
        l
    }

    #[test]
    fn a_possible_match_that_cannot_change_the_outcome_is_shown_without_a_referral() {
        let policy = crate::assess::Policy::bundled();
        for before in [
            Determination::Eligible,
            Determination::Referred,
            Determination::Ineligible,
        ] {
            let mut r = report(before);
            let l = possible();
            attach(&mut r, &[Some(&l)], &policy, false);
            assert_eq!(r.determination, before);
            assert_eq!(r.possible_matches.len(), 1);
            let f = r
                .findings
                .iter()
                .find(|f| f.rule == "possible_match")
                .unwrap();
            // only an already referred household's finding says referred
            let expected = if before == Determination::Referred {
                Outcome::Referred
            } else {
                Outcome::Info
            };
            assert_eq!(f.outcome, expected);
            assert_eq!(f.evidence["would_change_determination"], false);
        }
    }

    fn vehicle(usage: &str, status: &str) -> Vec<Option<String>> {
        ["甘E12345", "car", usage, "90000.00", "2024-06-18", status]
            .iter()
            .map(|v| Some(v.to_string()))
            .collect()
    }

    #[test]
    fn what_if_adds_the_possible_matches_records_to_the_evidence() {
        let policy = crate::assess::Policy::bundled();
        let frame = crate::evidence::Frame::new(
            chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            &policy,
        );
        let base = crate::evidence::PersonEvidence::default();
        // no possible match: nothing to weigh
        assert_eq!(PersonLinks::default().what_if(&base, &frame, &policy), None);
        let mut l = PersonLinks::default();
        let LinkEntry::Possible(p, _) = possible().entries.remove(0) else {
            unreachable!()
        };
        l.add(LinkEntry::Possible(
            p.clone(),
            Some((
                hedui_connectors::SourceKind::VehicleVessel,
                vehicle("private", "normal"),
            )),
        ));
        let e = l.what_if(&base, &frame, &policy).unwrap();
        assert!(e.private_vehicle && !base.private_vehicle);
        // a scrapped vehicle adds nothing a rule reads
        let mut l = PersonLinks::default();
        l.add(LinkEntry::Possible(
            p,
            Some((
                hedui_connectors::SourceKind::VehicleVessel,
                vehicle("private", "scrapped"),
            )),
        ));
        assert_eq!(l.what_if(&base, &frame, &policy).unwrap(), base);
    }

    fn state(
        sets: &mut [hedui_connectors::RecordSet],
        recs: &[(hedui_connectors::SourceKind, Vec<&str>)],
    ) -> crate::verify::PersonState {
        let mut st = crate::verify::PersonState::default();
        for (kind, values) in recs {
            let si = source_index(*kind);
            st.records.push((si as u8, sets[si].records.len() as u32));
            sets[si].records.push(hedui_connectors::Record {
                row: 0,
                id_number: String::new(),
                values: values.iter().map(|v| Some(v.to_string())).collect(),
            });
        }
        st
    }

    fn pending(kind: hedui_connectors::SourceKind, values: Vec<&str>) -> BatchRow {
        BatchRow {
            source: source_index(kind),
            row: 0,
            quarantine_index: Some(0),
            record: hedui_connectors::Record {
                row: 0,
                id_number: String::new(),
                values: values.iter().map(|v| Some(v.to_string())).collect(),
            },
            pending: PendingRow::default(),
        }
    }

    #[test]
    fn a_persons_own_records_and_registered_region_weigh_a_keyless_row() {
        use hedui_connectors::SourceKind as K;
        let mut sets: Vec<hedui_connectors::RecordSet> = (0..12)
            .map(|_| hedui_connectors::RecordSet::default())
            .collect();
        fn si<'a>(emp: &'a str, month: &'a str) -> (K, Vec<&'a str>) {
            (
                K::SocialInsurance,
                vec![month, "employee_pension", "contribution", emp, "5981.00"],
            )
        }
        let mut persons = Vec::new();
        // 30 holders, each with three months at their own employer, registered in 620503,
        // with a Tianshui plate; person 0 is registered in 621202 (Longnan) with a 甘K plate
        for k in 0..30 {
            let emp = format!("91620503MA{:08}", 10_000 + k);
            let home = if k == 0 { "621202" } else { "620503" };
            let plate = if k == 0 { "甘K48058" } else { "甘E53423" };
            let reg = (
                K::HouseholdRegistration,
                vec![
                    "male",
                    "1970-01-01",
                    home,
                    "urban",
                    "",
                    "normal",
                    "1970-01-31",
                ],
            );
            let car = (
                K::VehicleVessel,
                vec![plate, "car", "private", "90000.00", "2020-01-01", "normal"],
            );
            persons.push(state(
                &mut sets,
                &[
                    reg,
                    car,
                    si(&emp, "2026-01"),
                    si(&emp, "2026-02"),
                    si(&emp, "2026-03"),
                ],
            ));
        }
        let own = OwnRecords {
            persons: &persons,
            sets: &sets,
        };
        // pending: a month of person 0's contributions without its key; strangers' plates
        let row = pending(
            K::SocialInsurance,
            vec![
                "2026-04",
                "employee_pension",
                "contribution",
                "91620503MA00010000",
                "5981.00",
            ],
        );
        let mut rows: Vec<BatchRow> = (0..50)
            .map(|_| {
                pending(
                    K::VehicleVessel,
                    vec![
                        "甘E10000",
                        "car",
                        "private",
                        "50000.00",
                        "2020-01-01",
                        "normal",
                    ],
                )
            })
            .collect();
        rows.push(pending(
            K::VehicleVessel,
            vec![
                "甘K99999",
                "suv",
                "private",
                "46900.00",
                "2026-02-06",
                "normal",
            ],
        ));
        let same = SameSource::measure(&own, &rows);
        let theirs = same.compare(&own, 0, &row);
        let other = same.compare(&own, 5, &row);
        assert_eq!(theirs.len(), 1, "{theirs:?}");
        assert_eq!(theirs[0].comparison, "same_source:employer_credit_code");
        // 1 holder of 30 has that employer and every holder's months share it (m = 0.99)
        assert!(
            (theirs[0].weight - (0.99f64 * 30.0).log2()).abs() < 1e-9,
            "{theirs:?}"
        );
        assert!(other.iter().all(|c| c.weight <= 0.0), "{other:?}");
        // the 甘K plate: Longnan, where person 0 is registered and 1 in 51 pending rows is
        let plate = rows.last().unwrap();
        assert_eq!(
            row_region(K::VehicleVessel, &plate.record.values).as_deref(),
            Some("6212")
        );
        let r0 = same.compare(&own, 0, plate);
        let r5 = same.compare(&own, 5, plate);
        let bits = |v: &[Contribution]| {
            v.iter()
                .find(|c| c.comparison == "region")
                .map(|c| (c.level.clone(), c.weight))
                .unwrap()
        };
        assert_eq!(bits(&r0).0, "agrees_with_registration");
        assert!(
            (bits(&r0).1 - (0.99f64 * 51.0).log2()).abs() < 1e-9,
            "{r0:?}"
        );
        assert_eq!(bits(&r5).0, "differs_from_registration");
        assert!(bits(&r5).1 < -5.0, "{r5:?}");
        // measured for the pending rows' sources only: the same evidence for their rows, none
        // for a source left out
        let (si_ix, vv_ix) = (
            source_index(K::SocialInsurance),
            source_index(K::VehicleVessel),
        );
        let only = SameSource::measure_for(&own, &rows, |s| s == si_ix || s == vv_ix);
        for p in [0, 5] {
            assert_eq!(only.compare(&own, p, &row), same.compare(&own, p, &row));
            assert_eq!(only.compare(&own, p, plate), same.compare(&own, p, plate));
        }
        let without_vehicles = SameSource::measure_for(&own, &rows, |s| s == si_ix);
        assert!(without_vehicles.compare(&own, 0, plate).is_empty());
        assert_eq!(without_vehicles.compare(&own, 0, &row), theirs);
        // credit codes name their registering authority's division
        assert_eq!(
            row_region(
                K::MarketEntity,
                &[
                    Some("93620922MA00000431".to_string()),
                    None,
                    None,
                    None,
                    None,
                    None,
                    None
                ]
            )
            .as_deref(),
            Some("620922")
        );
    }

    #[test]
    fn a_row_that_shares_nothing_or_a_candidate_without_the_series_is_weighed_as_a_whole() {
        use hedui_connectors::SourceKind as K;
        let mut sets: Vec<hedui_connectors::RecordSet> = (0..12)
            .map(|_| hedui_connectors::RecordSet::default())
            .collect();
        let reg = || {
            (
                K::HouseholdRegistration,
                vec![
                    "male",
                    "1970-01-01",
                    "620503",
                    "urban",
                    "",
                    "normal",
                    "1970-01-31",
                ],
            )
        };
        let mut persons = Vec::new();
        // 30 holders with three months each at their own employer; 30 persons with none
        for k in 0..60 {
            let emp = format!("91620503MA{:08}", 10_000 + k);
            let mut recs = vec![reg()];
            if k < 30 {
                for m in ["2026-01", "2026-02", "2026-03"] {
                    recs.push((
                        K::SocialInsurance,
                        vec![m, "employee_pension", "contribution", &emp, "5981.00"],
                    ));
                }
            }
            let recs: Vec<(K, Vec<&str>)> = recs
                .iter()
                .map(|(k, v)| (*k, v.iter().map(|s| &**s).collect()))
                .collect();
            persons.push(state(&mut sets, &recs));
        }
        let own = OwnRecords {
            persons: &persons,
            sets: &sets,
        };
        let same = SameSource::measure(&own, &[]);
        let w = same.records[source_index(K::SocialInsurance)]
            .clone()
            .unwrap();
        // no holder has a lone record (0 of 90, floored at 0.001); half the persons have none;
        // every record shares a value with its holder's others (0.5 / 91) and with the next
        // holder's (the insurance type: 0.5 / 31)
        assert_eq!(
            w,
            RecordStats {
                alone_m: 0.001,
                alone_u: 0.5,
                none_m: 0.5 / 91.0,
                none_u: 0.5 / 31.0,
            }
        );
        // a month of a resident pension: shares nothing with holder 5's contributions
        let row = pending(
            K::SocialInsurance,
            vec!["2026-09", "resident_pension", "benefit", "-", "237.00"],
        );
        let c = same.compare(&own, 5, &row);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(
            (c[0].comparison.as_str(), c[0].level.as_str()),
            ("same_source:record", "nothing_shared")
        );
        assert!((c[0].weight - ((0.5 / 91.0) / (0.5 / 31.0f64)).log2()).abs() < 1e-9);
        // person 40 has no social insurance at all: log2(0.001 / 0.5) = -8.97 bits
        let c = same.compare(&own, 40, &row);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(
            (c[0].comparison.as_str(), c[0].level.as_str()),
            ("holding_rate:own_records", "none")
        );
        assert!((c[0].weight - (0.001f64 / 0.5).log2()).abs() < 1e-9);
        assert!((c[0].weight + 8.9658).abs() < 1e-4);
    }

    #[test]
    fn a_decisive_possible_match_refers_the_household_and_never_makes_one_ineligible() {
        let policy = crate::assess::Policy::bundled();
        // an ineligible household is referred too: its refusal rests on a record nobody has
        // confirmed is not its own
        for (before, after) in [
            (Determination::Eligible, Determination::Referred),
            (Determination::Referred, Determination::Referred),
            (Determination::Ineligible, Determination::Referred),
        ] {
            let mut r = report(before);
            let l = possible();
            attach(&mut r, &[Some(&l)], &policy, true);
            assert_eq!(r.determination, after);
            assert_eq!(r.possible_matches.len(), 1);
            assert_eq!(r.possible_matches[0].person, 0);
            let f = r
                .findings
                .iter()
                .find(|f| f.rule == "possible_match")
                .unwrap();
            assert_eq!(f.outcome, Outcome::Referred);
            assert!(!f.clause.is_empty());
            assert!(r.fuzzy_links.is_empty());
            // the page shows them side by side
            assert_eq!(crate::render::possible_matches(&r).len(), 1);
        }
        let mut r = report(Determination::Eligible);
        attach(&mut r, &[None], &policy, false);
        assert_eq!(r.determination, Determination::Eligible);
        assert!(r.findings.is_empty());
    }
}

/// The records each caseload person linked exactly, by the batch's person index: what a
/// pending row of the same source is compared with ([`SameSource`]).
pub struct OwnRecords<'a> {
    /// Per person: (index in `SourceKind::ALL` and `sets`, record index).
    pub persons: &'a [crate::verify::PersonState],
    /// The record sets, one per source in `SourceKind::ALL` order.
    pub sets: &'a dyn crate::records::RecordLookup,
}

impl<'a> OwnRecords<'a> {
    /// The person's registered region (`hukou_region_code` of their registration record).
    fn home(&self, person: usize) -> Option<String> {
        let kind = hedui_connectors::SourceKind::HouseholdRegistration;
        self.of(person, source_index(kind))
            .find_map(|r| row_region(kind, &r))
    }

    fn of(
        &self,
        person: usize,
        source: usize,
    ) -> impl Iterator<Item = crate::records::Values<'a>> + '_ {
        self.persons
            .get(person)
            .map(|p| p.records.as_slice())
            .unwrap_or_default()
            .iter()
            .filter(move |(s, _)| *s as usize == source)
            .filter_map(move |&(s, r)| self.sets.record(s as usize, r as usize).map(|(_, v)| v))
    }
}

/// Evidence a pending row draws from its candidate's own records of the same source: a
/// holder's rows share values (an employer's credit code and a monthly contribution base
/// every month; the same deposit every month; a bank), a stranger's rarely do.
///
/// Per source and column, measured on the run's exact links (no assumption): `m` = the share
/// of a holder's records whose value recurs among that holder's other records (holders with
/// at least two records), `u(v)` = the share of the source's holders who have value `v`.
/// A row's value found among the candidate's records is worth log2(m / u(v)) bits, one not
/// found log2((1 - m) / (1 - u(v))); the columns of a record are not independent, so one
/// column counts: the shared value worth most, else (nothing shared) the whole record's
/// evidence ([`RecordStats`]; the mildest single-column disagreement when it cannot be
/// measured). A candidate with no record of the source counts against only where holders
/// mostly have several ([`RecordStats`]); a null value adds nothing. Columns with ID numbers
/// are not compared.
#[derive(Debug, Default)]
pub struct SameSource {
    /// Per source (`SourceKind::ALL` order): holders, and per column m and holders by value.
    sources: Vec<Option<(u64, Vec<ColumnStats>)>>,
    /// Per source: whole-record evidence (see [`RecordStats`]).
    records: Vec<Option<RecordStats>>,
    /// Per source: m of the region a row names (see [`row_region`]) agreeing with its holder's
    /// registered region, and the pending rows by region (u).
    regions: Vec<Option<RegionStats>>,
}

/// Whole-record evidence of one source, measured on the exact links.
///
/// - `alone_m`: the share of records whose holder has no other record of the source (holders
///   with one record over records); `alone_u`: the share of caseload persons with no record
///   of it. A candidate with no record of the source is worth log2(alone_m / alone_u) bits
///   when that is below 0 (a monthly series' row is rarely a lone record, so a candidate
///   without the series is rarely its holder); see [`SameSource`] for why the converse is
///   not counted.
/// - `none_m`: the share of a holder's records (holders with two or more) that share no
///   compared value with the holder's other records; `none_u`: the same for a record of one
///   holder against the records of another (each holder's first record against the next
///   holder's records). A row that shares nothing with the candidate's records is worth
///   log2(none_m / none_u) bits: measured on whole records, because the columns of one record
///   are not independent.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RecordStats {
    /// P(holder has no other record | the row is the holder's).
    pub alone_m: f64,
    /// P(a caseload person has no record of the source).
    pub alone_u: f64,
    /// P(no value shared with the holder's other records | true holder).
    pub none_m: f64,
    /// P(no value shared with another holder's records).
    pub none_u: f64,
}

#[derive(Debug, Default)]
struct RegionStats {
    m: f64,
    pending: u64,
    by_region: HashMap<String, u64>,
}

/// Gansu's plate prefixes (甘A 兰州 … 甘P 甘南) and the prefectures' division codes.
const GANSU_PLATES: [(char, &str); 14] = [
    ('A', "6201"),
    ('B', "6202"),
    ('C', "6203"),
    ('D', "6204"),
    ('E', "6205"),
    ('F', "6209"),
    ('G', "6207"),
    ('H', "6206"),
    ('J', "6211"),
    ('K', "6212"),
    ('L', "6208"),
    ('M', "6210"),
    ('N', "6229"),
    ('P', "6230"),
];

/// The region a source row names, as a division-code prefix: the registered region of a
/// registration or real-estate row (6 digits), the registering authority's division in a
/// unified social credit code (characters 3-8), the prefecture of a Gansu plate (4 digits).
/// `None` for other sources and unreadable values.
pub fn row_region<S: AsRef<str>>(
    kind: hedui_connectors::SourceKind,
    values: &[Option<S>],
) -> Option<String> {
    use hedui_connectors::SourceKind as K;
    let col = |c: &str| {
        kind.columns()
            .iter()
            .position(|x| x.name == c)
            .and_then(|i| values.get(i).and_then(|v| v.as_ref()))
            .map(|v| v.as_ref().trim().to_string())
    };
    let six =
        |v: &str| (v.len() == 6 && v.bytes().all(|b| b.is_ascii_digit())).then(|| v.to_string());
    match kind {
        K::HouseholdRegistration => col("hukou_region_code").and_then(|v| six(&v)),
        K::RealEstate => col("region_code").and_then(|v| six(&v)),
        K::MarketEntity => col("credit_code").and_then(|v| v.get(2..8).and_then(six)),
        K::VehicleVessel => {
            let plate = col("plate_no")?;
            let mut ch = plate.chars();
            (ch.next() == Some('甘')).then_some(())?;
            let letter = ch.next()?.to_ascii_uppercase();
            GANSU_PLATES
                .iter()
                .find(|(l, _)| *l == letter)
                .map(|(_, code)| code.to_string())
        }
        _ => None,
    }
}

#[derive(Debug, Default)]
struct ColumnStats {
    m: f64,
    holders_with: ahash::AHashMap<String, u32>,
}

impl SameSource {
    /// Measure m and u per source and column on the persons' exact links; the regions' u on
    /// the pending rows (nearly all of them other residents').
    pub fn measure(own: &OwnRecords<'_>, pending: &[BatchRow]) -> SameSource {
        Self::measure_for(own, pending, |_| true)
    }

    /// [`SameSource::measure`] for the sources `wanted` accepts (index into
    /// `SourceKind::ALL`); the others are left unmeasured (no evidence), as a source with no
    /// holder is. [`SameSource::compare`] reads only the pending row's own source, so measuring
    /// only the sources of the pending rows gives every comparison the same evidence: each
    /// measured source reads every person's exact links (7.3 M records at 300,000 households),
    /// which made one dirty row cost a run most of a minute there.
    pub fn measure_for(
        own: &OwnRecords<'_>,
        pending: &[BatchRow],
        wanted: impl Fn(usize) -> bool,
    ) -> SameSource {
        let n_src = own.sets.sources();
        let mut sources = Vec::with_capacity(n_src);
        let mut records = Vec::with_capacity(n_src);
        for si in 0..n_src {
            let Some(kind) = hedui_connectors::SourceKind::ALL.get(si) else {
                sources.push(None);
                continue;
            };
            if !wanted(si) {
                sources.push(None);
                records.push(None);
                continue;
            }
            let cols = kind.columns();
            let mut stats: Vec<ColumnStats> = cols.iter().map(|_| ColumnStats::default()).collect();
            let (mut recur, mut total) = (vec![0u64; cols.len()], vec![0u64; cols.len()]);
            let mut holders = 0u64;
            // (one map for every holder's values, cleared: aHash, not SipHash; a source's
            // holders are a million persons at 300,000 households)
            let mut seen: ahash::AHashMap<&str, u32> = ahash::AHashMap::new();
            for pi in 0..own.persons.len() {
                let recs: Vec<crate::records::Values<'_>> = own.of(pi, si).collect();
                if recs.is_empty() {
                    continue;
                }
                holders += 1;
                for (ci, st) in stats.iter_mut().enumerate() {
                    seen.clear();
                    for r in &recs {
                        if let Some(Some(v)) = r.get(ci) {
                            *seen.entry(*v).or_insert(0) += 1;
                        }
                    }
                    if recs.len() >= 2 {
                        for r in &recs {
                            if let Some(Some(v)) = r.get(ci) {
                                total[ci] += 1;
                                recur[ci] += u64::from(seen[*v] >= 2);
                            }
                        }
                    }
                    for v in seen.keys() {
                        *st.holders_with.entry((*v).to_string()).or_insert(0) += 1;
                    }
                }
            }
            for (ci, st) in stats.iter_mut().enumerate() {
                st.m = if total[ci] == 0 {
                    0.0
                } else {
                    (recur[ci] as f64 / total[ci] as f64).clamp(0.01, 0.99)
                };
            }
            records.push(record_stats(own, si, &stats, holders));
            sources.push((holders > 0).then_some((holders, stats)));
        }
        // regions: m on the exact links (a row's region against its holder's registration),
        // u on the pending rows
        let mut regions: Vec<Option<RegionStats>> = (0..n_src).map(|_| None).collect();
        for (si, kind) in hedui_connectors::SourceKind::ALL
            .iter()
            .enumerate()
            .take(n_src)
        {
            if *kind == hedui_connectors::SourceKind::HouseholdRegistration || !wanted(si) {
                continue;
            }
            let (mut agree, mut total) = (0u64, 0u64);
            for pi in 0..own.persons.len() {
                let Some(home) = own.home(pi) else { continue };
                for r in own.of(pi, si) {
                    if let Some(reg) = row_region(*kind, &r) {
                        total += 1;
                        agree += u64::from(home.starts_with(&reg));
                    }
                }
            }
            if total < 20 {
                continue;
            }
            let mut st = RegionStats {
                m: (agree as f64 / total as f64).clamp(0.01, 0.99),
                ..RegionStats::default()
            };
            for r in pending.iter().filter(|r| r.source == si) {
                if let Some(reg) = row_region(*kind, &r.record.values) {
                    st.pending += 1;
                    *st.by_region.entry(reg).or_insert(0) += 1;
                }
            }
            regions[si] = (st.pending > 0).then_some(st);
        }
        SameSource {
            sources,
            records,
            regions,
        }
    }

    /// Region evidence: the region a pending row names against the candidate's registered
    /// region (log2(m / u(r)) when they agree, log2((1 - m) / (1 - u(r))) when not).
    fn region(&self, own: &OwnRecords<'_>, person: usize, row: &BatchRow) -> Option<Contribution> {
        let st = self.regions.get(row.source)?.as_ref()?;
        let kind = hedui_connectors::SourceKind::ALL[row.source];
        let reg = row_region(kind, &row.record.values)?;
        let home = own.home(person)?;
        let agree = home.starts_with(&reg);
        let with = (st.by_region.get(&reg).copied().unwrap_or(0) as f64).max(0.5);
        let u = (with / st.pending as f64).clamp(1e-9, 0.999);
        let weight = if agree {
            (st.m / u).log2()
        } else {
            ((1.0 - st.m) / (1.0 - u)).log2()
        };
        Some(Contribution {
            comparison: "region".into(),
            level: if agree {
                "agrees_with_registration"
            } else {
                "differs_from_registration"
            }
            .into(),
            weight,
        })
    }

    /// The contributions (bits) of comparing pending `row` with batch person `person`'s own
    /// records of the row's source; empty when the person has none.
    pub fn compare(
        &self,
        own: &OwnRecords<'_>,
        person: usize,
        row: &BatchRow,
    ) -> Vec<Contribution> {
        let mut all: Vec<Contribution> = self.region(own, person, row).into_iter().collect();
        all.extend(self.same_records(own, person, row));
        all
    }

    fn same_records(
        &self,
        own: &OwnRecords<'_>,
        person: usize,
        row: &BatchRow,
    ) -> Vec<Contribution> {
        let Some(Some((holders, stats))) = self.sources.get(row.source) else {
            return Vec::new();
        };
        let recs: Vec<crate::records::Values<'_>> = own.of(person, row.source).collect();
        let whole = self.records.get(row.source).cloned().flatten();
        if recs.is_empty() {
            // A candidate with no record of a source whose holders mostly have several (a
            // monthly series) is rarely the holder of one of its rows. Counted against only:
            // the converse (a candidate with records is likelier) raised the false referrals
            // on the dirty county by half (social insurance, +2 bits each; benches/link-county.sh),
            // and is no identity evidence either way (a `holding_rate:` contribution).
            return whole
                .map(|w| Contribution {
                    comparison: "holding_rate:own_records".into(),
                    level: "none".into(),
                    weight: (w.alone_m / w.alone_u).log2().min(0.0),
                })
                .into_iter()
                .collect();
        }
        let cols = hedui_connectors::SourceKind::ALL[row.source].columns();
        let mut out = Vec::new();
        for (ci, (spec, st)) in cols.iter().zip(stats).enumerate() {
            if spec.kind == hedui_connectors::ColumnKind::IdNumber || st.m <= 0.0 {
                continue;
            }
            let Some(Some(v)) = row.record.values.get(ci) else {
                continue;
            };
            let found = recs
                .iter()
                .any(|r| r.get(ci).copied().flatten() == Some(v.as_str()));
            // holders with v (the candidate's own count included when found), at least half a holder
            let with = f64::from(st.holders_with.get(v).copied().unwrap_or(0)).max(0.5);
            let u = (with / *holders as f64).clamp(1e-9, 0.999);
            let weight = if found {
                (st.m / u).log2()
            } else {
                ((1.0 - st.m) / (1.0 - u)).log2()
            };
            out.push((
                found,
                Contribution {
                    comparison: format!("same_source:{}", spec.name),
                    level: if found { "shared" } else { "not_shared" }.into(),
                    weight,
                },
            ));
        }
        // The columns of one record are not independent (an employer, its contribution base
        // and the insurance type change together), so they count once: the most telling shared
        // value if there is one, else the whole record's evidence.
        let best = |found: bool| {
            out.iter()
                .filter(|(f, _)| *f == found)
                .map(|(_, c)| c)
                .max_by(|a, b| a.weight.total_cmp(&b.weight))
                .cloned()
        };
        let shared = best(true);
        let record = match (&shared, &whole) {
            (Some(c), _) => Some(c.clone()),
            // nothing shared: the whole record's evidence, else the mildest disagreement
            (None, Some(w)) if !out.is_empty() => Some(Contribution {
                comparison: "same_source:record".into(),
                level: "nothing_shared".into(),
                weight: (w.none_m / w.none_u).log2(),
            }),
            (None, _) => best(false),
        };
        record.into_iter().collect()
    }
}

/// Whole-record evidence of source `si` ([`RecordStats`]) on the persons' exact links; `None`
/// with fewer than 20 holders or no comparable column.
fn record_stats(
    own: &OwnRecords<'_>,
    si: usize,
    stats: &[ColumnStats],
    holders: u64,
) -> Option<RecordStats> {
    let cols = hedui_connectors::SourceKind::ALL.get(si)?.columns();
    let compared: Vec<usize> = cols
        .iter()
        .zip(stats)
        .enumerate()
        .filter(|(_, (spec, st))| spec.kind != hedui_connectors::ColumnKind::IdNumber && st.m > 0.0)
        .map(|(ci, _)| ci)
        .collect();
    if holders < 20 || compared.is_empty() {
        return None;
    }
    let shares = |a: &[Option<&str>], b: &[Option<&str>]| {
        compared
            .iter()
            .any(|&ci| matches!((a.get(ci), b.get(ci)), (Some(Some(x)), Some(Some(y))) if x == y))
    };
    let by_holder: Vec<Vec<crate::records::Values<'_>>> = (0..own.persons.len())
        .map(|pi| own.of(pi, si).collect::<Vec<_>>())
        .filter(|r| !r.is_empty())
        .collect();
    let n_records: usize = by_holder.iter().map(Vec::len).sum();
    let single = by_holder.iter().filter(|r| r.len() == 1).count();
    let (mut none, mut multi) = (0u64, 0u64);
    for recs in by_holder.iter().filter(|r| r.len() >= 2) {
        for (k, r) in recs.iter().enumerate() {
            multi += 1;
            let any = recs
                .iter()
                .enumerate()
                .any(|(k2, o)| k2 != k && shares(r, o));
            none += u64::from(!any);
        }
    }
    let (mut none_x, mut pairs) = (0u64, 0u64);
    for (h, recs) in by_holder.iter().enumerate() {
        let next = &by_holder[(h + 1) % by_holder.len()];
        if by_holder.len() < 2 {
            break;
        }
        pairs += 1;
        none_x += u64::from(!next.iter().any(|o| shares(&recs[0], o)));
    }
    let clamp = |x: f64| x.clamp(0.001, 0.999);
    let persons = own.persons.len().max(1) as f64;
    Some(RecordStats {
        alone_m: clamp(single as f64 / n_records.max(1) as f64),
        alone_u: clamp(1.0 - by_holder.len() as f64 / persons),
        none_m: clamp((none as f64 + 0.5) / (multi as f64 + 1.0)),
        none_u: clamp((none_x as f64 + 0.5) / (pairs as f64 + 1.0)),
    })
}
