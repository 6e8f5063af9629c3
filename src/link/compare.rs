//! Field comparisons of the Fellegi–Sunter linker: each turns a pair of values into a
//! comparison level (0 = a value is missing, 1 = the strongest agreement, …, last = disagree).
//!
//! Values are prepared once per record ([`Prepared`]) so the pair loop only compares:
//! names are normalised (NFKC, one middle dot, no spaces; `crate::domain::Name`) and carry
//! their pinyin without tones (the `pinyin` crate), which makes homophones and most
//! simplified/traditional pairs (陈/陳, 张/張) one "variant" level; dates become 8 digits;
//! ID numbers become 18 characters (15-digit legacy numbers widened, GB 11643-1999 §4) with a
//! flag saying whether the MOD 11-2 check character held.
//!
//! Measured facts the ID comparison respects (issue 7): MOD 11-2 catches every single-digit
//! substitution and adjacent transposition, so one edit between a valid ID and a key that fails
//! its check is a keying error; two valid IDs one edit apart are never "one edit" here (people
//! born on one day in one county share the first 14 characters), they fall to the else level.

use pinyin::ToPinyin;
use serde::{Deserialize, Serialize};

use crate::domain::Name;
use crate::domain::id_number::check_character;

/// How one field is compared (the `kind` of a `[[comparison]]` in a link schema).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ComparisonKind {
    /// Levels: exact, else.
    Exact {
        /// Term-frequency adjustment of the exact level.
        #[serde(default)]
        tf: bool,
    },
    /// Levels: exact, Jaro-Winkler ≥ each threshold (descending), else.
    JaroWinkler {
        /// Similarity thresholds, 0..1, descending.
        thresholds: Vec<f64>,
        /// Term-frequency adjustment of the exact level.
        #[serde(default)]
        tf: bool,
    },
    /// Levels: exact, Damerau (optimal string alignment) distance ≤ each threshold, else.
    Levenshtein {
        /// Edit-distance thresholds, ascending.
        thresholds: Vec<usize>,
        /// Term-frequency adjustment of the exact level.
        #[serde(default)]
        tf: bool,
    },
    /// Personal names. Levels: exact (normalised), variant (same pinyin: homophone or other
    /// script), Jaro-Winkler ≥ each threshold, else.
    Name {
        /// Jaro-Winkler thresholds, descending.
        #[serde(default = "default_name_thresholds")]
        thresholds: Vec<f64>,
        /// Term-frequency adjustment of the exact level.
        #[serde(default)]
        tf: bool,
    },
    /// Dates (`YYYY-MM-DD`, `YYYYMMDD`, `YYYY/MM/DD`). Levels: exact, one edit in the 8 digits
    /// (a typo or day/month digits swapped), same year and month, else.
    Date,
    /// Resident ID numbers (GB 11643-1999). Levels: exact (after repairs, 15→18), one edit
    /// (one substitution or adjacent transposition) where one side fails its check character
    /// or is a legacy 15-digit number (which has none), else.
    IdNumber,
}

fn default_name_thresholds() -> Vec<f64> {
    vec![0.92, 0.8]
}

impl ComparisonKind {
    /// Names of the levels, index = level (0 is `null`).
    pub fn level_names(&self) -> Vec<String> {
        let mut v = vec!["null".to_string(), "exact".to_string()];
        match self {
            ComparisonKind::Exact { .. } => {}
            ComparisonKind::JaroWinkler { thresholds, .. } => {
                v.extend(thresholds.iter().map(|t| format!("jaro_winkler>={t}")))
            }
            ComparisonKind::Levenshtein { thresholds, .. } => {
                v.extend(thresholds.iter().map(|t| format!("edits<={t}")))
            }
            ComparisonKind::Name { thresholds, .. } => {
                v.push("variant".into());
                v.extend(thresholds.iter().map(|t| format!("jaro_winkler>={t}")));
            }
            ComparisonKind::Date => {
                v.push("one_edit".into());
                v.push("same_month".into());
            }
            ComparisonKind::IdNumber => v.push("one_edit_damaged".into()),
        }
        v.push("else".into());
        v
    }

    /// Number of levels including `null`.
    pub fn levels(&self) -> usize {
        self.level_names().len()
    }

    /// Whether the exact level is term-frequency adjusted.
    pub fn tf(&self) -> bool {
        match self {
            ComparisonKind::Exact { tf }
            | ComparisonKind::JaroWinkler { tf, .. }
            | ComparisonKind::Levenshtein { tf, .. }
            | ComparisonKind::Name { tf, .. } => *tf,
            _ => false,
        }
    }

    /// Prepare a raw value for this comparison; `None` when empty (or not a date / ID shape).
    pub fn prepare(&self, raw: Option<&str>) -> Option<Prepared> {
        let raw = raw.map(str::trim).filter(|s| !s.is_empty())?;
        Some(match self {
            ComparisonKind::Name { .. } => {
                let norm = normalise_name(raw)?;
                let py = pinyin_key(&norm);
                Prepared {
                    text: norm,
                    alt: py,
                    checked: true,
                }
            }
            ComparisonKind::Date => Prepared {
                text: date_digits(raw)?,
                alt: String::new(),
                checked: true,
            },
            ComparisonKind::IdNumber => {
                let (text, checked) = id_form(raw)?;
                // a widened 15-digit number: its check character was computed, so only the
                // body can be compared (alt = "legacy")
                let legacy = !checked && is_valid18(&text);
                Prepared {
                    text,
                    alt: if legacy {
                        "legacy".into()
                    } else {
                        String::new()
                    },
                    checked,
                }
            }
            _ => Prepared {
                text: raw.to_string(),
                alt: String::new(),
                checked: true,
            },
        })
    }

    /// The comparison level of two prepared values (0 when either is missing).
    pub fn level(&self, a: Option<&Prepared>, b: Option<&Prepared>) -> u8 {
        let (Some(a), Some(b)) = (a, b) else { return 0 };
        if a.text == b.text {
            return 1;
        }
        let last = (self.levels() - 1) as u8;
        match self {
            ComparisonKind::Exact { .. } => last,
            ComparisonKind::JaroWinkler { thresholds, .. } => {
                let s = strsim::jaro_winkler(&a.text, &b.text);
                thresholds
                    .iter()
                    .position(|t| s >= *t)
                    .map_or(last, |i| 2 + i as u8)
            }
            ComparisonKind::Levenshtein { thresholds, .. } => {
                let d = strsim::osa_distance(&a.text, &b.text);
                thresholds
                    .iter()
                    .position(|t| d <= *t)
                    .map_or(last, |i| 2 + i as u8)
            }
            ComparisonKind::Name { thresholds, .. } => {
                if !a.alt.is_empty() && a.alt == b.alt {
                    return 2;
                }
                let s = strsim::jaro_winkler(&a.text, &b.text);
                thresholds
                    .iter()
                    .position(|t| s >= *t)
                    .map_or(last, |i| 3 + i as u8)
            }
            ComparisonKind::Date => {
                if one_edit(a.text.as_bytes(), b.text.as_bytes()) {
                    2
                } else if a.text.get(..6) == b.text.get(..6) {
                    3
                } else {
                    last
                }
            }
            ComparisonKind::IdNumber => {
                let body = a.alt == "legacy" || b.alt == "legacy";
                let (x, y) = if body {
                    (&a.text.as_bytes()[..17], &b.text.as_bytes()[..17])
                } else {
                    (a.text.as_bytes(), b.text.as_bytes())
                };
                if (!a.checked || !b.checked) && one_edit(x, y) {
                    2
                } else {
                    last
                }
            }
        }
    }
}

/// A value prepared for comparison: the normal form, an alternative key (pinyin of a name),
/// and for ID numbers whether the check character held (`false` also for a widened 15-digit
/// legacy number, whose check character was computed, not read).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Prepared {
    /// Normal form.
    pub text: String,
    /// Pinyin of a name (tones dropped, syllables joined by spaces); empty otherwise.
    pub alt: String,
    /// ID numbers: the check character held.
    pub checked: bool,
}

/// A name in the form compared: `Name::parse` (NFKC, one middle dot, no invisible
/// characters) with inner spaces removed and Latin letters lower-cased; in a name written in
/// Han characters, every character that is neither a letter nor a digit is removed too (the
/// separator of a minority name's parts, `阿依古丽·买买提`, is written `·`, `.`, `．`, `-`, `。`,
/// a space or nothing, by department: found by session 16's attack, a row spelled with `.`
/// was no candidate of the error-tolerant linkage).
pub fn normalise_name(raw: &str) -> Option<String> {
    let (n, _) = Name::parse(raw).ok()?;
    // A placeholder is no name (found by session 16's second attack: a keyless row named
    // `不详` matched a member recorded as `不详` as an exact name); nor is a name without a
    // letter or digit (`·`, `-`).
    if is_name_placeholder(n.expose()) || !n.expose().chars().any(char::is_alphanumeric) {
        return None;
    }
    let han = n.expose().chars().any(is_han);
    let s: String = n
        .expose()
        .chars()
        .filter(|c| !c.is_whitespace() && (!han || is_name_letter(*c)))
        .flat_map(char::to_lowercase)
        .collect();
    (!s.is_empty()).then_some(s)
}

/// A letter or digit of a name, not a spacing modifier letter (`ˑ` U+02D1, `ˉ`: used as
/// separators, though Unicode calls them letters).
fn is_name_letter(c: char) -> bool {
    c.is_alphanumeric() && !('\u{02b0}'..='\u{02ff}').contains(&c)
}

/// Whether `name` (trimmed) is a text written where a name is not known (`不详`, `无`,
/// `NULL`, …): no name, for the linkage.
pub fn is_name_placeholder(name: &str) -> bool {
    let t = name.trim();
    NAME_PLACEHOLDERS.iter().any(|p| t.eq_ignore_ascii_case(p))
}

/// Texts written where a name is not known, compared without case: no name.
const NAME_PLACEHOLDERS: [&str; 14] = [
    "无",
    "不详",
    "未知",
    "不明",
    "暂无",
    "空",
    "无名",
    "无名氏",
    "某某",
    "null",
    "none",
    "n/a",
    "na",
    "unknown",
];

/// A CJK unified ideograph (the basic block, extensions A to H) or a compatibility ideograph.
fn is_han(c: char) -> bool {
    matches!(c, '\u{3400}'..='\u{9fff}' | '\u{f900}'..='\u{faff}' | '\u{20000}'..='\u{323af}')
}

/// Pinyin of a (normalised) name without tones, one syllable per Han character, joined by
/// spaces; characters without pinyin are kept as they are and the middle dot is dropped.
/// Homophones (王/汪) and most simplified/traditional pairs (陈/陳) share it.
pub fn pinyin_key(name: &str) -> String {
    let mut out = String::with_capacity(name.len() * 2);
    for c in name.chars() {
        if c == '\u{00b7}' {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        match c.to_pinyin() {
            Some(p) => out.push_str(p.plain()),
            None => out.push(c),
        }
    }
    out
}

/// A date as 8 digits `YYYYMMDD` (from `YYYY-MM-DD`, `YYYY/MM/DD`, `YYYY.MM.DD` or 8 digits).
pub fn date_digits(raw: &str) -> Option<String> {
    let d: String = raw.chars().filter(char::is_ascii_digit).collect();
    if d.len() == 8
        && raw
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '-' | '/' | '.'))
    {
        Some(d)
    } else {
        None
    }
}

/// An ID-number-like value as 18 characters and whether its check character holds.
/// Repairs that need no guess: spaces, full-width digits (NFKC), lowercase `x`; a 15-digit
/// legacy number is widened with century 19 (its computed check character proves nothing,
/// so it reports `false`). Anything else that is 18 characters is kept as given; other
/// lengths give `None` (nothing to compare position by position).
pub fn id_form(raw: &str) -> Option<(String, bool)> {
    use unicode_normalization::UnicodeNormalization;
    let s: String = raw
        .nfkc()
        .filter(|c| !c.is_whitespace() && !matches!(c, '\'' | '"' | '='))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let b = s.as_bytes();
    if b.len() == 15 && b.iter().all(u8::is_ascii_digit) {
        let mut body = [0u8; 17];
        body[..6].copy_from_slice(&b[..6]);
        body[6..8].copy_from_slice(b"19");
        body[8..].copy_from_slice(&b[6..]);
        let mut t = body.to_vec();
        t.push(check_character(&body));
        return Some((String::from_utf8(t).ok()?, false));
    }
    if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let body: &[u8; 17] = b[..17].try_into().ok()?;
    Some((s.clone(), check_character(body) == b[17]))
}

fn is_valid18(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 18
        && b[..17].iter().all(u8::is_ascii_digit)
        && check_character(b[..17].try_into().expect("17")) == b[17]
}

/// The 17-digit bodies one substitution (outside the century digits 7-8) or one adjacent
/// transposition from a widened 15-digit number's body: a legacy number has no check
/// character, so every such body is a candidate (at most 149).
pub fn legacy_neighbourhood(key18: &str) -> Vec<u64> {
    let b = key18.as_bytes();
    if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
        return Vec::new();
    }
    let mut body: [u8; 17] = b[..17].try_into().expect("17 bytes");
    let to_key = |x: &[u8; 17]| x.iter().fold(0u64, |a, d| a * 10 + u64::from(d - b'0'));
    let mut out = Vec::new();
    for i in (0..17).filter(|i| !matches!(i, 6 | 7)) {
        let orig = body[i];
        for d in b'0'..=b'9' {
            if d != orig {
                body[i] = d;
                out.push(to_key(&body));
            }
        }
        body[i] = orig;
        if i < 16 && !matches!(i + 1, 6 | 7) && body[i] != body[i + 1] {
            body.swap(i, i + 1);
            out.push(to_key(&body));
            body.swap(i, i + 1);
        }
    }
    out
}

/// Whether two equal-length byte strings differ by exactly one substitution or one swap of
/// adjacent characters.
pub fn one_edit(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).take(3).collect();
    match diff.as_slice() {
        [_] => true,
        [i, j] => *j == i + 1 && a[*i] == b[*j] && a[*j] == b[*i],
        _ => false,
    }
}

/// The valid ID numbers one substitution away from an 18-character key that fails its check
/// character: for each of the 17 body positions at most one digit makes the check hold
/// (the MOD 11-2 weights are invertible), so at most 17 bodies; plus the body itself when
/// only the check character was damaged. Adjacent transpositions of the body that restore
/// the check are included too. Returned as 17-digit keys (`IdNumber::key`).
pub fn check_neighbourhood(key18: &str) -> Vec<u64> {
    let b = key18.as_bytes();
    if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
        return Vec::new();
    }
    let mut body: [u8; 17] = b[..17].try_into().expect("17 bytes");
    let check = b[17];
    let mut out = Vec::new();
    let to_key = |x: &[u8; 17]| x.iter().fold(0u64, |a, d| a * 10 + u64::from(d - b'0'));
    if check_character(&body) == check {
        return out; // valid: not damaged in a way the check can see
    }
    out.push(to_key(&body)); // the check character itself was mistyped
    for i in 0..17 {
        let orig = body[i];
        for d in b'0'..=b'9' {
            if d == orig {
                continue;
            }
            body[i] = d;
            if check_character(&body) == check {
                out.push(to_key(&body));
            }
        }
        body[i] = orig;
        if i < 16 && body[i] != body[i + 1] {
            body.swap(i, i + 1);
            if check_character(&body) == check {
                out.push(to_key(&body));
            }
            body.swap(i, i + 1);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::id_number::make_id;
    use chrono::NaiveDate;

    fn name() -> ComparisonKind {
        ComparisonKind::Name {
            thresholds: vec![0.92, 0.8],
            tf: false,
        }
    }

    fn lv(k: &ComparisonKind, a: &str, b: &str) -> String {
        let (pa, pb) = (k.prepare(Some(a)), k.prepare(Some(b)));
        k.level_names()[k.level(pa.as_ref(), pb.as_ref()) as usize].clone()
    }

    #[test]
    fn middle_dot_and_full_width_forms_of_a_name_are_exact() {
        assert_eq!(lv(&name(), "阿依古丽•买买提", "阿依古丽·买买提"), "exact");
        assert_eq!(lv(&name(), "阿依古丽・买买提", "阿依古丽·买买提"), "exact");
        assert_eq!(lv(&name(), "ＡＬＩ", "ali"), "exact");
        assert_eq!(lv(&name(), "王 芳", "王芳"), "exact");
        // every separator of a minority name's parts, or none, is the same name
        for spelled in [
            "阿依古丽.买买提",
            "阿依古丽．买买提",
            "阿依古丽 买买提",
            "阿依古丽\u{3000}买买提",
            "阿依古丽买买提",
            "阿依古丽-买买提",
            "阿依古丽－买买提",
            "阿依古丽。买买提",
            "阿依古丽ˑ买买提",
            "阿依古丽∙买买提",
        ] {
            assert_eq!(
                normalise_name(spelled).as_deref(),
                Some("阿依古丽买买提"),
                "{spelled}"
            );
            assert_eq!(
                lv(&name(), spelled, "阿依古丽·买买提"),
                "exact",
                "{spelled}"
            );
        }
        // a Latin name keeps its hyphen
        assert_eq!(normalise_name("Jean-Luc").as_deref(), Some("jean-luc"));
        // a placeholder or a name of no letter is no name
        for none in ["不详", "无", "未知", "NULL", "-", "·", "/", "？"] {
            assert_eq!(normalise_name(none), None, "{none}");
        }
    }

    #[test]
    fn homophones_and_traditional_characters_are_variants() {
        assert_eq!(lv(&name(), "陳建國", "陈建国"), "variant");
        assert_eq!(lv(&name(), "汪芳", "王芳"), "variant");
        assert_eq!(lv(&name(), "王芳", "李强"), "else");
    }

    #[test]
    fn a_one_digit_typo_and_a_transposition_are_one_edit_but_a_valid_near_miss_is_not() {
        let k = ComparisonKind::IdNumber;
        let id = make_id(620503, NaiveDate::from_ymd_opt(1970, 3, 14).unwrap(), 123).expose();
        let mut typo = id.clone().into_bytes();
        typo[10] = if typo[10] == b'9' { b'0' } else { typo[10] + 1 };
        let typo = String::from_utf8(typo).unwrap();
        assert_eq!(lv(&k, &id, &typo), "one_edit_damaged");
        let mut tr = id.clone().into_bytes();
        tr.swap(14, 15);
        let tr = String::from_utf8(tr).unwrap();
        if tr != id {
            assert_eq!(lv(&k, &id, &tr), "one_edit_damaged");
        }
        // the same-day neighbour in the same county: valid, one digit apart, another person
        let other = make_id(620503, NaiveDate::from_ymd_opt(1970, 3, 14).unwrap(), 125).expose();
        assert!(one_edit(&id.as_bytes()[..17], &other.as_bytes()[..17]));
        assert_eq!(lv(&k, &id, &other), "else");
    }

    #[test]
    fn a_legacy_15_digit_number_equals_its_18_digit_form() {
        let k = ComparisonKind::IdNumber;
        let id = make_id(620503, NaiveDate::from_ymd_opt(1948, 6, 12).unwrap(), 31).expose();
        let legacy = format!("{}{}", &id[..6], &id[8..17]);
        assert_eq!(lv(&k, &id, &legacy), "exact");
        assert_eq!(lv(&k, &id, &format!(" {} ", id.to_lowercase())), "exact");
        // a typo in a 15-digit number cannot be seen by a check character: still one edit
        let mut l2 = legacy.into_bytes();
        l2[12] = if l2[12] == b'9' { b'0' } else { l2[12] + 1 };
        assert_eq!(
            lv(&k, &id, std::str::from_utf8(&l2).unwrap()),
            "one_edit_damaged"
        );
    }

    #[test]
    fn the_check_neighbourhood_of_a_typo_holds_the_true_id() {
        let id = make_id(620503, NaiveDate::from_ymd_opt(1985, 12, 1).unwrap(), 77);
        let s = id.expose();
        for pos in 0..17 {
            let mut t = s.clone().into_bytes();
            t[pos] = if t[pos] == b'9' { b'0' } else { t[pos] + 1 };
            let n = check_neighbourhood(std::str::from_utf8(&t).unwrap());
            assert!(n.contains(&id.key()), "position {pos}");
            assert!(n.len() <= 1 + 17 + 16);
        }
        assert!(check_neighbourhood(&s).is_empty());
    }

    #[test]
    fn dates_compare_by_digits() {
        let k = ComparisonKind::Date;
        assert_eq!(lv(&k, "1970-03-14", "19700314"), "exact");
        assert_eq!(lv(&k, "1970-03-14", "1970-03-41"), "one_edit");
        assert_eq!(lv(&k, "1970-03-14", "1970-03-28"), "same_month");
        assert_eq!(lv(&k, "1970-03-14", "1971-05-28"), "else");
    }
}
