//! The caseload's names out of the reader's words, for the whole run.
//!
//! The reader's notes, refusals and row messages quote the department's own words: a header
//! no field map reads, a sheet's name. The reader masks what has a name's or an ID
//! number's shape (`hedui_connectors::read`, `shown.rs`), but a name can stand in any shape
//! (`徐明远的存款`, `明细徐明远户`). The batch knows every caseload person's name, so every
//! reader text it passes on (summary.json `sources.<s>.reason` and `counts.notes`,
//! `caseload.files` notes, and with them summary.html and `state/manifest.json`; the row
//! messages of quarantine.csv; a `--strict` error; the error of a delta an incremental run
//! refuses) goes through [`NameScrub::text`] first:
//! each caseload name found in it (2 or more characters, compared as the linkage compares
//! names: without spaces or the middle dot, NFKC, Latin letters in lower case) becomes its
//! first character and a `*` per other character (`徐**`), and an ID-like number in any
//! spelling is masked as elsewhere (`6205**********540X`). Found by session 17's attack: a
//! name in a header with anything around it (`徐明远(元)`, `户主徐明远`, `徐 明远`) was printed
//! whole in summary.json, summary.html and the run's state.

use std::borrow::Cow;
use std::collections::HashSet;
use std::path::Path;

use chrono::NaiveDate;

use rayon::prelude::*;
use unicode_normalization::UnicodeNormalization;

use crate::domain::id_number::{holds_id_like, loose_id_numbers, mask, spelled_digit_runs};

/// A Chinese numeral as its ASCII digit (what [`loose_id_numbers`] reads), for masking.
fn loose_digit_char(c: char) -> Option<char> {
    crate::domain::id_number::loose_digit(c).map(char::from)
}
use crate::ingest::{Caseload, Quarantine, load_caseload};
use crate::link::compare::{is_name_placeholder, normalise_name};

/// Words hedui writes itself around the reader's text that are also names people bear
/// (`万元`): a unit, never masked.
const UNIT_WORDS: [&str; 6] = ["万元", "千元", "百元", "亿元", "人民币元", "人民币万元"];

/// Longest name compared, in characters (longer ones are compared on none of the text).
const MAX_NAME_CHARS: usize = 40;

/// At most this many spaces or dots between two characters of one name (`徐　　明远`).
const MAX_GAP: usize = 3;

/// The caseload's names, as [`NameScrub::text`] looks for them.
#[derive(Debug, Default)]
pub(crate) struct NameScrub {
    /// Names holding a Han character: found anywhere in a text.
    han: HashSet<String>,
    /// Other names (Latin letters, …): found as whole words only (`Li Na` is no part of
    /// `Linas` nor of `online`).
    words: HashSet<String>,
    /// Longest name of each set, in characters.
    han_max: usize,
    words_max: usize,
}

/// One character of a text as names are compared: its NFKC form in lower case (one
/// character), or `None` for a character that is no letter or digit.
fn letter(c: char) -> Option<char> {
    let c = if c.is_ascii() {
        c.to_ascii_lowercase()
    } else {
        let mut n = c.nfkc();
        match (n.next(), n.next()) {
            (Some(one), None) => one.to_lowercase().next().unwrap_or(one),
            _ => c,
        }
    };
    (c.is_alphanumeric() && !('\u{02b0}'..='\u{02ff}').contains(&c)).then_some(c)
}

/// A name as [`NameScrub`] compares it: [`normalise_name`], letters and digits only
/// ([`letter`]); `None` for no name, one of fewer than 2 or more than [`MAX_NAME_CHARS`]
/// characters, or a unit ([`UNIT_WORDS`]).
fn key_of(raw: &str) -> Option<String> {
    // (most names are unified ideographs alone, which normalisation leaves as they are: the
    // parse and NFKC of every name made this the run's slowest step of the caseload)
    let key: String = if raw.chars().all(|c| ('\u{3400}'..='\u{9fff}').contains(&c)) {
        if is_name_placeholder(raw) {
            return None;
        }
        raw.to_string()
    } else {
        normalise_name(raw)?.chars().filter_map(letter).collect()
    };
    let len = key.chars().count();
    ((2..=MAX_NAME_CHARS).contains(&len) && !UNIT_WORDS.contains(&key.as_str())).then_some(key)
}

/// Characters that may stand between the parts of one name: spaces and middle dots (and the
/// full stops and hyphens some departments write for them).
fn is_gap(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{00b7}'
                | '\u{2022}'
                | '\u{2027}'
                | '\u{30fb}'
                | '\u{ff65}'
                | '.'
                | '\u{ff0e}'
                | '-'
                | '\u{3002}'
        )
}

/// A CJK ideograph (as `crate::link::compare` counts them).
fn is_han(c: char) -> bool {
    matches!(c, '\u{3400}'..='\u{9fff}' | '\u{f900}'..='\u{faff}' | '\u{20000}'..='\u{323af}')
}

impl NameScrub {
    /// The names of every member and supporter of `caseload` (all of it: a partition's or a
    /// slice's notes may name a person of another).
    pub(crate) fn of_caseload(caseload: &Caseload) -> NameScrub {
        let keys: Vec<String> = caseload
            .members
            .par_iter()
            .filter_map(|m| m.name.as_deref())
            .chain(
                caseload
                    .supporters
                    .par_iter()
                    .filter_map(|s| s.name.as_deref()),
            )
            .filter_map(key_of)
            .collect();
        NameScrub::of_keys(keys)
    }

    /// [`NameScrub::of_caseload`] of the caseload files in `dir`, read again (for an error
    /// of a run whose caseload in memory has no names: an incremental run's, from its
    /// state); none (the ID numbers masked alone) when they cannot be read.
    pub(crate) fn of_caseload_files(dir: &Path, as_of: NaiveDate) -> NameScrub {
        load_caseload(dir, as_of, &mut Quarantine::default())
            .map(|c| NameScrub::of_caseload(&c))
            .unwrap_or_default()
    }

    /// The scrub of `names` (as written).
    #[cfg(test)]
    pub(crate) fn of_names<'a>(names: impl IntoIterator<Item = &'a str>) -> NameScrub {
        NameScrub::of_keys(names.into_iter().filter_map(key_of).collect())
    }

    /// The scrub of names as [`key_of`] gives them.
    fn of_keys(keys: Vec<String>) -> NameScrub {
        let mut s = NameScrub::default();
        for key in keys {
            let len = key.chars().count();
            if key.chars().any(is_han) {
                s.han_max = s.han_max.max(len);
                s.han.insert(key);
            } else {
                s.words_max = s.words_max.max(len);
                s.words.insert(key);
            }
        }
        s
    }

    /// `text` with every caseload name in it, and every ID-like number, masked (see the
    /// module docs); borrowed when there was none.
    pub(crate) fn text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let ids = mask_ids(text);
        match self.names(&ids) {
            Some(masked) => Cow::Owned(masked),
            None => ids,
        }
    }

    /// Each of `texts` through [`NameScrub::text`].
    pub(crate) fn texts(&self, texts: &mut [String]) {
        for t in texts {
            if let Cow::Owned(s) = self.text(t) {
                *t = s;
            }
        }
    }

    /// The caseload tables' reader notes (`summary.json` `caseload.files`) and the messages
    /// of the quarantine entries made so far (the caseload's rows, some refused by the
    /// reader, whose messages may name a sheet).
    pub(crate) fn caseload(&self, caseload: &mut Caseload, q: &mut Quarantine) {
        for f in &mut caseload.files {
            let Some(notes) = f.get_mut("notes").and_then(|n| n.as_array_mut()) else {
                continue;
            };
            for n in notes {
                if let Some(Cow::Owned(m)) = n.as_str().map(|t| self.text(t)) {
                    *n = m.into();
                }
            }
        }
        for e in &mut q.entries {
            if let Cow::Owned(m) = self.text(&e.message) {
                e.message = m;
            }
        }
    }

    /// `text` with the caseload names in it masked, or `None` when it holds none.
    fn names(&self, text: &str) -> Option<String> {
        if self.han.is_empty() && self.words.is_empty() {
            return None;
        }
        let chars: Vec<(usize, char)> = text.char_indices().collect();
        let mut out: Option<String> = None;
        let mut copied = 0; // bytes of `text` in `out` (or skipped over)
        let mut i = 0;
        while i < chars.len() {
            let (b, c) = chars[i];
            let Some(first) = letter(c) else {
                i += 1;
                continue;
            };
            let han = is_han(first);
            let word_start = i == 0 || letter(chars[i - 1].1).is_none();
            if !han && (self.words.is_empty() || !word_start) {
                i += 1;
                continue;
            }
            if han && self.han.is_empty() {
                i += 1;
                continue;
            }
            let (set, max) = if han {
                (&self.han, self.han_max)
            } else {
                (&self.words, self.words_max)
            };
            // the longest name from here: letters, with short gaps of spaces or dots
            let mut key = String::new();
            let (mut n, mut j, mut found) = (0usize, i, None);
            while j < chars.len() && n < max {
                let Some(l) = letter(chars[j].1) else {
                    break;
                };
                key.push(l);
                n += 1;
                j += 1;
                let word_end = j == chars.len() || letter(chars[j].1).is_none();
                if n >= 2 && (han || word_end) && set.contains(&key) {
                    found = Some((j, n));
                }
                // on over a gap to the next letter
                let mut k = j;
                while k < chars.len() && k - j < MAX_GAP && is_gap(chars[k].1) {
                    k += 1;
                }
                if k > j && k < chars.len() && letter(chars[k].1).is_some() {
                    j = k;
                }
            }
            let Some((end, letters)) = found else {
                i += 1;
                continue;
            };
            let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
            o.push_str(&text[copied..b]);
            o.push(c);
            o.extend(std::iter::repeat_n('*', letters - 1));
            copied = chars.get(end).map_or(text.len(), |&(e, _)| e);
            i = end;
        }
        out.map(|mut o| {
            o.push_str(&text[copied..]);
            o
        })
    }
}

/// `text` with each number that may be an ID number, in any spelling
/// ([`spelled_digit_runs`], [`holds_id_like`]), masked as ID numbers are: its first and last
/// four characters kept (`6205**********540X`), the separators dropped.
pub(crate) fn mask_ids(text: &str) -> Cow<'_, str> {
    // the numbers in any spelling, and the ID numbers spelled loosely (between colons,
    // brackets, in Chinese numerals…: session 18's attack), in order
    let mut runs: Vec<std::ops::Range<usize>> = spelled_digit_runs(text)
        .into_iter()
        .filter(|(r, n)| *n >= 15 && holds_id_like(&text[r.clone()]))
        .map(|(r, _)| r)
        .chain(loose_id_numbers(text))
        .collect();
    if runs.is_empty() {
        return Cow::Borrowed(text);
    }
    runs.sort_by_key(|r| r.start);
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for r in runs {
        if r.end <= copied {
            continue;
        }
        let r = r.start.max(copied)..r.end;
        out.push_str(&text[copied..r.start]);
        let compact: String = text[r.clone()]
            .chars()
            .filter_map(|c| match c {
                '0'..='9' => Some(c),
                'X' | 'x' | 'Ｘ' | 'ｘ' => Some('X'),
                '０'..='９' => char::from_u32(u32::from(c) - u32::from('０') + u32::from('0')),
                _ => loose_digit_char(c),
            })
            .collect();
        out.push_str(&mask(&compact));
        copied = r.end;
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrub() -> NameScrub {
        NameScrub::of_names(["徐明远", "买买提·吐尔逊", "王芳", "Li Na", "万元", "李"])
    }

    #[test]
    fn a_caseload_name_is_masked_in_any_shape_around_it() {
        let s = scrub();
        for (text, shown) in [
            (
                "columns found but not recognised: 徐明远(元) (line 1)",
                "columns found but not recognised: 徐**(元) (line 1)",
            ),
            ("（徐明远）", "（徐**）"),
            ("户主徐明远", "户主徐**"),
            ("徐明远1", "徐**1"),
            ("徐 明远", "徐**"),
            ("徐　明远的存款", "徐**的存款"),
            ("买买提·吐尔逊", "买*****"),
            ("买买提.吐尔逊", "买*****"),
            ("买买提吐尔逊", "买*****"),
            (
                "sheet 2 (明细王芳户) holds other data",
                "sheet 2 (明细王*户) holds other data",
            ),
            ("header Li Na (line 1)", "header L*** (line 1)"),
            ("header LINA", "header L***"),
        ] {
            assert_eq!(s.text(text), shown, "{text}");
        }
    }

    #[test]
    fn words_that_are_no_caseload_name_stay_as_written() {
        let s = scrub();
        for text in [
            "columns not in the field map, ignored: 开户行名称, 余额(元), 交易日期, 备注",
            // a one-character name is no name to look for; a unit is never one
            "column `balance` is in 万元: amounts converted to yuan exactly (×10,000)",
            // a Latin name is a whole word only
            "online, Linas, linage",
            "王 芬",
        ] {
            assert!(matches!(s.text(text), Cow::Borrowed(_)), "{text}");
        }
    }

    #[test]
    fn an_id_number_in_any_spelling_is_masked() {
        let s = NameScrub::default();
        assert_eq!(
            s.text("sheet 2 (620503 19750324 540X) is hidden"),
            "sheet 2 (6205**********540X) is hidden"
        );
        assert_eq!(
            s.text("sheet 2 (62050319750324540X)"),
            "sheet 2 (6205**********540X)"
        );
        // a date range is no ID number
        assert!(matches!(s.text("2026-01-01 2026-12-31"), Cow::Borrowed(_)));
        // between colons or brackets, in Chinese numerals (session 18's attack)
        assert_eq!(
            s.text("sheet 620503:19750324:540X and (6205)(0319)(7503)(2454)(0X)."),
            "sheet 6205**********540X and (6205**********540X)."
        );
        assert_eq!(
            s.text("备注 六二〇五〇三一九七五〇三二四五四〇X 已核"),
            "备注 6205**********540X 已核"
        );
        assert!(matches!(
            s.text("at 2026-11-01 10:30:00+08:00"),
            Cow::Borrowed(_)
        ));
    }
}
