//! The scan's keep filter, decided a block of rows at a time.
//!
//! Every row of every extract passes through it (148 M rows at 300,000 households). Decided a
//! row at a time, each row waited for its loads into the persons' and the names' filters
//! ([`crate::link::caseload::KeyBits`], then 512 KiB each, evicted from the core's cache by
//! the reader's pages as the scan goes): a third of the filter's time at 300,000 households
//! was that wait (perf, session 18). A block first reads its rows' keys, then tests them all
//! in one pass of independent loads ([`PersonKeys::contains_each`],
//! [`NameDateIndex::matches_each`]), whose misses the processor overlaps; then it decides the
//! rows in order. The decisions are the row-at-a-time filter's, row for row. (The filter's
//! samples: 6,170 → 5,005 of ~29,500 in a 300k run; 4,402 with the filters at 2 MiB.)

use chrono::NaiveDate;

use crate::domain::{AsOfDay, IdNumber};
use crate::link::caseload::{AGE_BANDS, NameDateIndex, PersonKeys, age_band};

/// Rows decided together: their keys, names and decisions stay in the core's first-level
/// cache (a few tens of KiB).
const BLOCK: usize = 2048;

/// What the filter decides of one row: kept or not, and the (caseload status: 0 outside,
/// 1 a caseload person's; age band) cell its valid key counts in, if it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Decision {
    pub keep: bool,
    pub cell: Option<(usize, usize)>,
}

/// How a row of a block is decided.
#[derive(Clone, Copy)]
enum Kind {
    /// The same ID and name as the last clean row before it: that row's decision.
    Repeat,
    /// A clean valid 18-character number: the `usize`-th of the block's clean keys.
    Clean(usize),
    /// Anything else: `slow` decides it.
    Other,
}

/// Decides each `(ID cell, name cell)` of `rows` in order, pushing keep or not to `out` and
/// counting each row's cell into `ages` ([`Decision`]).
///
/// A clean valid number ([`IdNumber::clean_key`], nearly every row) is kept when a caseload
/// person holds it (`persons`), or when no one does and its name and birth date are a caseload
/// person's (`names`; never for a key [`NameDateIndex::is_outside`] names). A row repeating the
/// ID and name of the last clean row before it has that row's decision (records of a period
/// come grouped by person). Any other row is `slow`'s to decide.
#[allow(clippy::too_many_arguments)]
pub(super) fn decide_rows<'s>(
    rows: impl Iterator<Item = (Option<&'s str>, Option<&'s str>)>,
    persons: &PersonKeys,
    names: Option<&NameDateIndex>,
    day: AsOfDay,
    as_of: NaiveDate,
    mut slow: impl FnMut(Option<&'s str>, Option<&'s str>) -> Decision,
    ages: &mut [[u64; AGE_BANDS]; 2],
    out: &mut Vec<bool>,
) {
    let mut rows = rows;
    let mut block: Vec<(Option<&'s str>, Option<&'s str>)> = Vec::with_capacity(BLOCK);
    let mut kinds: Vec<Kind> = Vec::with_capacity(BLOCK);
    // the clean rows of the block: key, age band, name
    let mut keys: Vec<u64> = Vec::with_capacity(BLOCK);
    let mut bands: Vec<usize> = Vec::with_capacity(BLOCK);
    let mut clean_names: Vec<Option<&'s str>> = Vec::with_capacity(BLOCK);
    let mut known: Vec<bool> = Vec::with_capacity(BLOCK);
    let mut candidate: Vec<bool> = Vec::with_capacity(BLOCK);
    // the clean rows tested by name: their index among the clean rows, (birth date, name)
    let mut tested: Vec<usize> = Vec::with_capacity(BLOCK);
    let mut tested_rows: Vec<(u32, &'s str)> = Vec::with_capacity(BLOCK);
    let mut hashes: Vec<u64> = Vec::with_capacity(BLOCK);
    let mut hits: Vec<bool> = Vec::with_capacity(BLOCK);
    // the last clean row's ID and name (a block's first row may repeat the last block's) and
    // its decision
    let mut prev: Option<(&'s str, Option<&'s str>)> = None;
    let mut last = Decision {
        keep: false,
        cell: None,
    };
    loop {
        block.clear();
        block.extend(rows.by_ref().take(BLOCK));
        if block.is_empty() {
            return;
        }
        kinds.clear();
        keys.clear();
        bands.clear();
        clean_names.clear();
        for &(v, n) in &block {
            if let (Some(v), Some((pv, pn))) = (v, prev)
                && super::same_bytes(v.as_bytes(), pv.as_bytes())
                && match (n, pn) {
                    (Some(n), Some(pn)) => super::same_bytes(n.as_bytes(), pn.as_bytes()),
                    (None, None) => true,
                    _ => false,
                }
            {
                kinds.push(Kind::Repeat);
                continue;
            }
            match v.and_then(|v| IdNumber::clean_key(v.as_bytes(), day).map(|k| (v, k))) {
                Some((v, (key, year))) => {
                    kinds.push(Kind::Clean(keys.len()));
                    keys.push(key);
                    bands.push(age_band(year as i32, as_of));
                    clean_names.push(n);
                    prev = Some((v, n));
                }
                None => {
                    kinds.push(Kind::Other);
                    prev = None;
                }
            }
        }
        persons.contains_each(&keys, &mut known);
        candidate.clear();
        candidate.resize(keys.len(), false);
        if let Some(ix) = names {
            tested.clear();
            tested_rows.clear();
            for (j, (&key, n)) in keys.iter().zip(&clean_names).enumerate() {
                if let (false, Some(n)) = (known[j], n) {
                    tested.push(j);
                    tested_rows.push((NameDateIndex::date_of(IdNumber::from_key(key)), n));
                }
            }
            ix.matches_each(&tested_rows, &mut hashes, &mut hits);
            for (&j, &hit) in tested.iter().zip(&hits) {
                candidate[j] = hit && !ix.is_outside(keys[j]);
            }
        }
        for (&kind, &(v, n)) in kinds.iter().zip(&block) {
            let d = match kind {
                Kind::Repeat => last,
                Kind::Clean(j) => {
                    last = Decision {
                        keep: known[j] || candidate[j],
                        cell: Some((usize::from(known[j]), bands[j])),
                    };
                    last
                }
                Kind::Other => slow(v, n),
            };
            if let Some((k, b)) = d.cell {
                ages[k][b] += 1;
            }
            out.push(d.keep);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::id_number::check_character;

    fn id(body: &str) -> String {
        let b: [u8; 17] = body.as_bytes().try_into().unwrap();
        format!("{body}{}", char::from(check_character(&b)))
    }

    /// The block filter against the row-at-a-time decision, over more rows than a block:
    /// caseload persons, namesakes, outsiders, repeats, dirty and missing cells.
    #[test]
    fn blocks_decide_as_one_row_at_a_time() {
        let as_of: NaiveDate = "2026-11-01".parse().unwrap();
        let day = AsOfDay::new(as_of);
        let member = id("62050319800101123");
        let namesake_date = id("62050219800101555"); // born the member's day, not a person
        let other = id("62050219900505777");
        let persons = PersonKeys::new([IdNumber::parse(&member, as_of).unwrap().0.key()]);
        let m = IdNumber::parse(&member, as_of).unwrap().0;
        let names = NameDateIndex::new([(&m, Some("王小明"))]);
        let cells: Vec<(Option<String>, Option<String>)> = vec![
            (Some(member.clone()), Some("王小明".into())),
            (Some(member.clone()), Some("王小明".into())), // repeat
            (Some(namesake_date.clone()), Some("王小明".into())), // candidate
            (Some(namesake_date.clone()), Some("王小明".into())), // repeat of a candidate
            (Some(namesake_date.clone()), Some("王 小明".into())), // normalised name
            (Some(namesake_date.clone()), Some("李四".into())),
            (Some(other.clone()), Some("王小明".into())), // another day
            (Some(other.clone()), None),
            (None, Some("王小明".into())),
            (Some(format!(" {member}")), Some("王小明".into())), // not clean
            (Some(member.clone()), None),
        ];
        // repeated past two blocks, so that a repeat crosses a block's edge
        let rows: Vec<(Option<&str>, Option<&str>)> = (0..3 * BLOCK + 7)
            .map(|i| {
                let (v, n) = &cells[(i / 3) % cells.len()];
                (v.as_deref(), n.as_deref())
            })
            .collect();
        let slow = |v: Option<&str>, _n: Option<&str>| Decision {
            keep: v.is_some_and(|v| v.trim() == member),
            cell: None,
        };
        let mut ages = [[0u64; AGE_BANDS]; 2];
        let mut out = Vec::new();
        decide_rows(
            rows.iter().copied(),
            &persons,
            Some(&names),
            day,
            as_of,
            slow,
            &mut ages,
            &mut out,
        );
        // one row at a time, as the filter decided before blocks
        let mut want_ages = [[0u64; AGE_BANDS]; 2];
        let want: Vec<bool> = rows
            .iter()
            .map(
                |&(v, n)| match v.and_then(|v| IdNumber::clean_key(v.as_bytes(), day)) {
                    Some((key, year)) => {
                        let k = persons.contains(key);
                        want_ages[usize::from(k)][age_band(year as i32, as_of)] += 1;
                        k || n.is_some_and(|n| {
                            names.matches(NameDateIndex::date_of(IdNumber::from_key(key)), n)
                        })
                    }
                    None => slow(v, n).keep,
                },
            )
            .collect();
        assert_eq!(out, want);
        assert_eq!(ages, want_ages);
        // the cases themselves, on the first three rows of each cell
        let first: Vec<bool> = (0..cells.len()).map(|c| out[c * 3]).collect();
        assert_eq!(
            first,
            [
                true, true, true, true, true, false, false, false, false, true, true
            ]
        );
    }
}
