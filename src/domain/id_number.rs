//! Resident identity numbers (公民身份号码), GB 11643-1999.
//!
//! Every key that links a person to a department record passes through
//! [`IdNumber::parse`]: caseload members and supporters, and every source row. The parser
//! repairs what can be repaired without guessing (spreadsheet markers, full-width digits,
//! inner spaces, a lowercase `x`, the 15-digit legacy form) and records each repair; it
//! rejects what would need a guess (scientific notation, a failing check character, an
//! impossible birth date) with an [`IdError`] that names the reason.
//!
//! Inside the engine an ID is its 17-digit body as a `u64` ([`IdNumber::key`]): the check
//! character is a function of the body, so the body alone identifies the number and joins as
//! a compact integer key.

use std::fmt;

use chrono::{Datelike, NaiveDate};

/// ISO 7064 MOD 11-2 weights of the 17 body digits (GB 11643-1999 §5.1).
static WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check character by `Σ(digit × weight) mod 11`.
const CHECK: [u8; 11] = *b"10X98765432";
/// Province-level prefixes of GB/T 2260 (mainland), plus 81/82/83 used by the residence
/// permits of Hong Kong, Macao and Taiwan residents.
const PROVINCES: [u8; 35] = [
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52,
    53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83,
];

/// `PROVINCE_CODE[p]`: `p` (two digits) is in [`PROVINCES`].
const PROVINCE_CODE: [bool; 100] = {
    let mut t = [false; 100];
    let mut i = 0;
    while i < PROVINCES.len() {
        t[PROVINCES[i] as usize] = true;
        i += 1;
    }
    t
};

/// Whether each of the eight bytes of `x` is an ASCII digit: its high nibble is 3, and adding
/// 6 to its low nibble does not carry into the high one (no borrow between bytes: both tests
/// stay within each byte).
#[inline]
fn all_digits(x: u64) -> bool {
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    (x & HIGH) == 0x3030_3030_3030_3030
        && ((x & 0x0F0F_0F0F_0F0F_0F0F).wrapping_add(0x0606_0606_0606_0606) & HIGH) == 0
}

/// The integer of eight ASCII digits loaded little-endian (the first digit in the lowest byte),
/// already checked by [`all_digits`]: pairs, then quadruples, then the whole, each step one
/// multiplication over the lanes.
#[inline]
fn eight_digits(x: u64) -> u64 {
    let d = x - 0x3030_3030_3030_3030;
    let d = (d * 10 + (d >> 8)) & 0x00FF_00FF_00FF_00FF;
    let d = (d * 100 + (d >> 16)) & 0x0000_FFFF_0000_FFFF;
    (d * 10_000 + (d >> 32)) & 0xFFFF_FFFF
}

/// Days in month `m` (1–12) of year `y` of the proleptic Gregorian calendar (as chrono).
fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        2 if y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400)) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// An as-of date as integers, for [`IdNumber::clean_key`] (computed once per run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsOfDay {
    y: u32,
    m: u32,
    d: u32,
}

impl AsOfDay {
    /// The date's year, month and day (a year before 1 BCE counts as 0: every birth date in
    /// an ID number is then after it).
    pub fn new(date: NaiveDate) -> AsOfDay {
        AsOfDay {
            y: date.year().max(0) as u32,
            m: date.month(),
            d: date.day(),
        }
    }
}

/// A valid 18-character resident ID number.
///
/// Holds the 17-digit body; the check character is derived. `Display` and `Debug` are masked
/// (`6205**********1234`); [`IdNumber::expose`] gives the full number for the places that
/// must carry it (source queries, the sealed report's plaintext is masked too).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdNumber(u64);

/// A repair the parser made on the way to a valid number, recorded per row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdRepair {
    /// Leading/trailing whitespace (ASCII, U+3000, NBSP, zero-width, BOM) removed.
    Trimmed,
    /// A spreadsheet text marker removed: leading `'` or the `="…"` formula wrapper.
    SpreadsheetMarker,
    /// Full-width digits or letter (U+FF10–FF19, U+FF38/FF58) turned into ASCII.
    FullWidth,
    /// Spaces inside the number (grouping) removed.
    InnerSpaces,
    /// A lowercase `x` check character upper-cased.
    LowercaseX,
    /// A 15-digit legacy number (before 1999) upgraded to 18 characters, century 19.
    Legacy15,
}

impl IdRepair {
    /// What the repair was and what it changed, for the per-row normalisation log
    /// (`normalisations.csv`): a stable kind code and a sentence naming the code points
    /// removed or replaced. Never the value: the digits of the number are not named.
    ///
    /// Kinds: `id_trimmed`, `id_spreadsheet_quote` (leading `'`), `id_spreadsheet_formula`
    /// (`="…"`), `id_fullwidth`, `id_inner_spaces`, `id_lowercase_x`, `id_legacy15`.
    pub fn describe(&self, raw: &str) -> (&'static str, String) {
        let t = raw.trim_matches(is_trim_char);
        match self {
            IdRepair::Trimmed => {
                let cut: Vec<char> = raw
                    .chars()
                    .take_while(|c| is_trim_char(*c))
                    .chain(raw.chars().rev().take_while(|c| is_trim_char(*c)))
                    .collect();
                ("id_trimmed", format!("removed around the number: {}", code_points(cut)))
            }
            IdRepair::SpreadsheetMarker if t.starts_with("=\"") => (
                "id_spreadsheet_formula",
                "spreadsheet formula wrapper U+003D U+0022 … U+0022 (=\"…\") removed".into(),
            ),
            IdRepair::SpreadsheetMarker => (
                "id_spreadsheet_quote",
                "leading spreadsheet text marker U+0027 (') removed".into(),
            ),
            IdRepair::FullWidth => {
                let n = raw.chars().filter(|c| is_full_width(*c)).count();
                let mut kinds = Vec::new();
                if raw.chars().any(|c| ('\u{ff10}'..='\u{ff19}').contains(&c)) {
                    kinds.push("U+FF10–U+FF19 (digits)");
                }
                if raw.contains('\u{ff38}') {
                    kinds.push("U+FF38 (X)");
                }
                if raw.contains('\u{ff58}') {
                    kinds.push("U+FF58 (x)");
                }
                (
                    "id_fullwidth",
                    format!("{n} full-width character(s) {} → ASCII", kinds.join(", ")),
                )
            }
            IdRepair::InnerSpaces => {
                let inner: Vec<char> = t.chars().filter(|c| is_trim_char(*c) || *c == '-').collect();
                (
                    "id_inner_spaces",
                    format!("{} separator(s) inside the number removed: {}", inner.len(), code_points(inner)),
                )
            }
            IdRepair::LowercaseX => (
                "id_lowercase_x",
                if raw.contains('\u{ff58}') {
                    "check character U+FF58 (full-width x) → U+0058 (X)".into()
                } else {
                    "check character U+0078 (x) → U+0058 (X)".into()
                },
            ),
            IdRepair::Legacy15 => (
                "id_legacy15",
                "15-digit legacy number → 18 characters: century 19 inserted before the birth year, check character computed (GB 11643-1999 §5.1)".into(),
            ),
        }
    }
}

fn is_full_width(c: char) -> bool {
    matches!(c, '\u{ff10}'..='\u{ff19}' | '\u{ff38}' | '\u{ff58}')
}

/// Distinct code points as `U+0020, U+3000` (in order of first appearance).
pub(crate) fn code_points(chars: impl IntoIterator<Item = char>) -> String {
    let mut seen: Vec<char> = Vec::new();
    for c in chars {
        if !seen.contains(&c) {
            seen.push(c);
        }
    }
    seen.iter()
        .map(|c| format!("U+{:04X}", *c as u32))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why a value is not a usable ID number. `code()` is the stable reason code of the
/// quarantine file and the summary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Empty or a placeholder (`NULL`, `\N`, `无`, `/`, `0`, `-` …): missing, never a join key.
    #[error("missing (empty or a placeholder)")]
    Missing,
    /// Scientific notation such as `6.20503E+17`: digits were lost in a spreadsheet.
    #[error("scientific notation: digits lost in a spreadsheet, not repairable")]
    Scientific,
    /// Not 15 or 18 characters after clean-up.
    #[error("{0} characters, expected 18 (or 15 for a legacy number)")]
    Length(usize),
    /// A character other than a digit (or a final X).
    #[error("character {position} is not a digit")]
    BadCharacter {
        /// 1-based position in the cleaned number.
        position: usize,
    },
    /// The MOD 11-2 check character does not match; `digits_lost` when the number ends in
    /// `000`, the usual trace of a spreadsheet keeping 15 significant digits.
    // The message never names the expected character: beside a masked number it would give
    // away part of the hidden digits.
    #[error("the check character does not match the other 17 digits (GB 11643-1999 MOD 11-2){}", if *.digits_lost { " (ends in 000: digits likely lost in a spreadsheet)" } else { "" })]
    CheckCharacter {
        /// The check character given.
        found: char,
        /// The one the body requires.
        expected: char,
        /// Whether the number ends in `000`.
        digits_lost: bool,
    },
    /// The birth date (characters 7-14) does not exist.
    #[error("birth date {0} does not exist")]
    ImpossibleDate(String),
    /// The birth date lies after the as-of date.
    #[error("birth date {0} is after the as-of date")]
    FutureBirthDate(String),
    /// The birth date lies more than [`MAX_AGE_YEARS`] years before the as-of date: nobody
    /// alive, so a damaged number (the date is not repeated: it is part of the number).
    #[error("birth date more than {MAX_AGE_YEARS} years before the as-of date")]
    ImplausibleBirthDate,
    /// The first two digits are not a GB/T 2260 province code.
    #[error("region prefix {0} is not a province code")]
    Region(String),
    /// A 15-digit number with sequence code 996-999 (reserved for centenarians born 18xx):
    /// the century cannot be assumed.
    #[error("15-digit number with sequence code {0}: century is ambiguous (18xx or 19xx)")]
    AmbiguousCentury(String),
}

/// Oldest age an ID number may show, in years before the as-of date (the oldest verified
/// person lived 122 years): an older birth date is a damaged number.
pub const MAX_AGE_YEARS: i32 = 130;

impl IdError {
    /// Stable reason code (quarantine.csv `reason`, summary counts).
    pub fn code(&self) -> &'static str {
        match self {
            IdError::Missing => "id_missing",
            IdError::Scientific => "id_scientific_notation",
            IdError::Length(_) => "id_length",
            IdError::BadCharacter { .. } => "id_bad_character",
            IdError::CheckCharacter {
                digits_lost: true, ..
            } => "id_digits_lost",
            IdError::CheckCharacter { .. } => "id_check_character",
            IdError::ImpossibleDate(_) => "id_impossible_date",
            IdError::FutureBirthDate(_) => "id_future_birth_date",
            IdError::ImplausibleBirthDate => "id_implausible_birth_date",
            IdError::Region(_) => "id_region",
            IdError::AmbiguousCentury(_) => "id_ambiguous_century",
        }
    }
}

/// Placeholders that mean "no value" in department exports.
pub const PLACEHOLDERS: [&str; 12] = [
    "", "null", "NULL", "Null", "\\N", "无", "/", "0", "-", "N/A", "n/a", "NaN",
];

fn is_trim_char(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{3000}' | '\u{a0}' | '\u{200b}' | '\u{feff}' | '\u{2060}'
        )
}

/// The MOD 11-2 check character of a 17-digit body (ASCII digits).
pub fn check_character(body: &[u8; 17]) -> u8 {
    let sum: u32 = body
        .iter()
        // by reference: `zip(WEIGHTS)` moves the array onto the stack on every call
        .zip(&WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    CHECK[(sum % 11) as usize]
}

impl IdNumber {
    /// Parse and normalise a raw value as it came from a file or an API.
    ///
    /// `as_of` is the run's as-of date D: a birth date after it is rejected. Returns the
    /// number and the repairs made (empty for a value already in normal form).
    ///
    /// # Errors
    /// An [`IdError`] naming the reason; the value is never repaired by guessing.
    pub fn parse(raw: &str, as_of: NaiveDate) -> Result<(IdNumber, Vec<IdRepair>), IdError> {
        // Fast path: 18 ASCII characters already in normal form (the common case).
        let b = raw.as_bytes();
        if b.len() == 18
            && b[..17].iter().all(u8::is_ascii_digit)
            && (b[17].is_ascii_digit() || b[17] == b'X')
        {
            return Self::from_normal(b, as_of).map(|id| (id, Vec::new()));
        }
        let mut repairs = Vec::new();
        let mut s = raw.trim_matches(is_trim_char);
        if s.len() != raw.len() {
            repairs.push(IdRepair::Trimmed);
        }
        // Spreadsheet text markers: ="…" and a leading apostrophe.
        if let Some(inner) = s.strip_prefix("=\"").and_then(|r| r.strip_suffix('"')) {
            s = inner.trim_matches(is_trim_char);
            repairs.push(IdRepair::SpreadsheetMarker);
        } else if let Some(inner) = s.strip_prefix('\'') {
            s = inner.trim_matches(is_trim_char);
            repairs.push(IdRepair::SpreadsheetMarker);
        }
        if PLACEHOLDERS.contains(&s) {
            return Err(IdError::Missing);
        }
        let mut out = String::with_capacity(18);
        let mut full_width = false;
        let mut inner_space = false;
        let mut lower_x = false;
        for c in s.chars() {
            let c = match c {
                '\u{ff10}'..='\u{ff19}' => {
                    full_width = true;
                    char::from(b'0' + (c as u32 - 0xff10) as u8)
                }
                '\u{ff38}' => {
                    full_width = true;
                    'X'
                }
                '\u{ff58}' => {
                    full_width = true;
                    lower_x = true;
                    'X'
                }
                'x' => {
                    lower_x = true;
                    'X'
                }
                c if is_trim_char(c) || c == '-' => {
                    inner_space = true;
                    continue;
                }
                c => c,
            };
            out.push(c);
        }
        if full_width {
            repairs.push(IdRepair::FullWidth);
        }
        if inner_space {
            repairs.push(IdRepair::InnerSpaces);
        }
        if lower_x {
            repairs.push(IdRepair::LowercaseX);
        }
        if PLACEHOLDERS.contains(&out.as_str()) {
            return Err(IdError::Missing);
        }
        if (out.contains('E') || out.contains('e')) && out.contains('+') {
            return Err(IdError::Scientific);
        }
        let b = out.as_bytes();
        match b.len() {
            18 => {}
            15 => {
                if let Some(p) = b.iter().position(|c| !c.is_ascii_digit()) {
                    return Err(IdError::BadCharacter { position: p + 1 });
                }
                let seq = &out[12..15];
                if matches!(seq, "996" | "997" | "998" | "999") {
                    return Err(IdError::AmbiguousCentury(seq.to_string()));
                }
                let mut body = [0u8; 17];
                body[..6].copy_from_slice(&b[..6]);
                body[6..8].copy_from_slice(b"19");
                body[8..].copy_from_slice(&b[6..15]);
                let mut full = [0u8; 18];
                full[..17].copy_from_slice(&body);
                full[17] = check_character(&body);
                repairs.push(IdRepair::Legacy15);
                return Self::from_normal(&full, as_of).map(|id| (id, repairs));
            }
            _ => {
                if let Some(p) = out.chars().position(|c| !c.is_ascii_digit() && c != 'X') {
                    return Err(IdError::BadCharacter { position: p + 1 });
                }
                return Err(IdError::Length(out.chars().count()));
            }
        }
        if let Some(p) = b[..17].iter().position(|c| !c.is_ascii_digit()) {
            return Err(IdError::BadCharacter { position: p + 1 });
        }
        if !(b[17].is_ascii_digit() || b[17] == b'X') {
            return Err(IdError::BadCharacter { position: 18 });
        }
        Self::from_normal(b, as_of).map(|id| (id, repairs))
    }

    /// Validate 18 bytes already in normal form (17 ASCII digits + digit or `X`).
    fn from_normal(b: &[u8], as_of: NaiveDate) -> Result<IdNumber, IdError> {
        let body: &[u8; 17] = b[..17].try_into().expect("caller passes 18 bytes");
        let expected = check_character(body);
        if expected != b[17] {
            return Err(IdError::CheckCharacter {
                found: char::from(b[17]),
                expected: char::from(expected),
                digits_lost: b.ends_with(b"000"),
            });
        }
        let province = (b[0] - b'0') * 10 + (b[1] - b'0');
        if !PROVINCE_CODE[usize::from(province)] {
            return Err(IdError::Region(
                String::from_utf8_lossy(&b[..2]).into_owned(),
            ));
        }
        let num =
            |r: std::ops::Range<usize>| b[r].iter().fold(0u32, |a, d| a * 10 + u32::from(d - b'0'));
        let ymd = || String::from_utf8_lossy(&b[6..14]).into_owned();
        // The calendar checks in integers (this runs for every row of every extract); the
        // same answers as `NaiveDate::from_ymd_opt` and comparing dates (a 4-digit year is
        // always in chrono's range).
        let (y, m, d) = (num(6..10), num(10..12), num(12..14));
        if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
            return Err(IdError::ImpossibleDate(ymd()));
        }
        if (y as i32, m, d) > (as_of.year(), as_of.month(), as_of.day()) {
            return Err(IdError::FutureBirthDate(ymd()));
        }
        // (to the day: 130 years and a day before the as-of date is more than 130 years,
        // found by session 24's attack, which the comparison of years let through)
        if (y as i32 + MAX_AGE_YEARS, m, d) < (as_of.year(), as_of.month(), as_of.day()) {
            return Err(IdError::ImplausibleBirthDate);
        }
        Ok(IdNumber(
            body.iter().fold(0u64, |a, d| a * 10 + u64::from(d - b'0')),
        ))
    }

    /// The scan's fast path: for a value that is exactly 18 ASCII characters in normal form
    /// (17 digits and a digit or `X`) and valid, its key ([`IdNumber::key`]) and birth year;
    /// `None` for anything else (not in normal form, or invalid), for which
    /// [`IdNumber::parse`] gives the answer. Never `Some` where `parse` would fail or repair:
    /// the same checks as `parse`'s normal-form path in one pass over the bytes, with the
    /// as-of date as integers ([`AsOfDay`]) and no allocation. Called on every row of every
    /// extract.
    #[inline]
    pub fn clean_key(raw: &[u8], as_of: AsOfDay) -> Option<(u64, u32)> {
        let b: &[u8; 18] = raw.try_into().ok()?;
        // The first 16 digits eight at a time (SWAR): checked as digits and turned into
        // integers with three multiplications each, not a chain of 17 dependent ones.
        let hi = u64::from_le_bytes(b[..8].try_into().ok()?);
        let lo = u64::from_le_bytes(b[8..16].try_into().ok()?);
        let last = b[16].wrapping_sub(b'0');
        if !all_digits(hi) || !all_digits(lo) || last > 9 {
            return None;
        }
        let body = eight_digits(hi) * 1_000_000_000 + eight_digits(lo) * 10 + u64::from(last);
        // digits now known: independent products, no early exit (the compiler vectorises it)
        let sum: u32 = b[..17]
            .iter()
            .zip(&WEIGHTS)
            .map(|(d, w)| u32::from(d - b'0') * w)
            .sum();
        if CHECK[(sum % 11) as usize] != b[17] {
            return None;
        }
        if !PROVINCE_CODE[usize::from((b[0] - b'0') * 10 + (b[1] - b'0'))] {
            return None;
        }
        let ymd = ((body / 1000) % 100_000_000) as u32;
        let (y, m, d) = (ymd / 10_000, (ymd / 100) % 100, ymd % 100);
        if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
            return None;
        }
        if (y, m, d) > (as_of.y, as_of.m, as_of.d)
            || (y as i32 + MAX_AGE_YEARS, m, d) < (as_of.y as i32, as_of.m, as_of.d)
        {
            return None;
        }
        Some((body, y))
    }

    /// The compact join key: the 17-digit body as an integer (< 10^17).
    pub fn key(self) -> u64 {
        self.0
    }

    /// Rebuild from a key produced by [`IdNumber::key`].
    pub fn from_key(key: u64) -> IdNumber {
        IdNumber(key)
    }

    /// The full 18 characters as bytes (what [`IdNumber::expose`] gives, without a
    /// `String`): for exact outputs that need them, never for logs or client-facing errors.
    pub fn canonical_bytes(self) -> [u8; 18] {
        let mut out = [0u8; 18];
        let mut v = self.0;
        for i in (0..17).rev() {
            out[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
        let body: &[u8; 17] = out[..17].try_into().expect("17 bytes");
        out[17] = check_character(body);
        out
    }

    /// The full 18-character number. Only for source queries and exact outputs that need
    /// it; never for logs, metrics or client-facing errors.
    pub fn expose(self) -> String {
        String::from_utf8(self.canonical_bytes().to_vec()).expect("ASCII")
    }

    /// The six-digit region code of issue (GB/T 2260, current or retired).
    pub fn region_prefix(self) -> u32 {
        (self.0 / 100_000_000_000) as u32
    }

    /// Birth date (characters 7-14).
    pub fn birth_date(self) -> NaiveDate {
        let ymd = ((self.0 / 1000) % 100_000_000) as u32;
        NaiveDate::from_ymd_opt((ymd / 10000) as i32, (ymd / 100) % 100, ymd % 100)
            .expect("validated at parse")
    }

    /// Gender from the sequence code's parity (odd = male), GB 11643-1999 §4.3.
    pub fn is_male(self) -> bool {
        self.0 % 2 == 1
    }

    /// Age in whole years on `date`.
    pub fn age_on(self, date: NaiveDate) -> i32 {
        let b = self.birth_date();
        let mut age = date.year() - b.year();
        if (date.month(), date.day()) < (b.month(), b.day()) {
            age -= 1;
        }
        age
    }

    /// Masked form `6205**********1234` (first four and last four characters).
    pub fn masked(self) -> String {
        mask(&self.expose())
    }
}

/// The maximal runs of ASCII digits in `s`, as byte ranges, each taking an `X`/`x` right after
/// its 17th digit (the check character of an ID number): where an ID number, a legacy one or
/// another long number can hide in text.
pub fn digit_runs(s: &str) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    let b = s.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < b.len() && !b[i].is_ascii_digit() {
            i += 1;
        }
        if i >= b.len() {
            return None;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i - start == 17 && i < b.len() && matches!(b[i], b'X' | b'x') {
            i += 1;
        }
        Some(start..i)
    })
}

// `is_invisible` and `is_digit_separator`: one list with the reader's (its masking of
// reader text), shared as a file.
include!("../../connectors/src/read/separators.rs");

/// The numbers of `s` in any spelling an ID number is written in, as byte ranges of `s`
/// with their length in characters once read: ASCII or full-width digits, read on through
/// separators between two digits ([`is_digit_separator`]: `6205 0319 7503 2454 0X`,
/// `620503-1975-0324-540X`, `620503197 50324540X`, `６２０５ ０３１９ …`, one digit at a time),
/// and an `X`/`x` (or full-width, after separators too) right after the 17th digit. [`digit_runs`] over the text
/// so read: what may hide an ID number in a free text or a JSON key (session 17's attack: a
/// check of contiguous digits let every grouped spelling through).
pub fn spelled_digit_runs(s: &str) -> Vec<(std::ops::Range<usize>, usize)> {
    spelled_digit_runs_through(s, |_| false)
}

/// [`spelled_digit_runs`], reading on through the characters `also` holds as well (never a
/// digit or a check character): what a text is shown through decides what separates its
/// digits there (`scrub` in `src/api`, which shows every non-ASCII character as `?`).
pub fn spelled_digit_runs_through(
    s: &str,
    also: impl Fn(char) -> bool,
) -> Vec<(std::ops::Range<usize>, usize)> {
    let chars: Vec<(usize, char)> = s.char_indices().collect();
    let is_digit =
        |c: char| c.is_ascii_digit() || ('０'..='９').contains(&c) || other_digit(c).is_some();
    let is_check = |c: char| matches!(c, 'X' | 'x' | 'Ｘ' | 'ｘ');
    let is_separator = |c: char| is_digit_separator(c) || (also(c) && !is_digit(c) && !is_check(c));
    // `read`: one ASCII byte per character kept (a digit, `X`/`x`, `#` for any other);
    // `at[k]`: the byte range of `s` it was read from
    let mut read: Vec<u8> = Vec::with_capacity(chars.len());
    let mut at: Vec<(usize, usize)> = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let (b, c) = chars[i];
        if is_separator(c) && read.last().is_some_and(u8::is_ascii_digit) {
            let mut j = i;
            while j < chars.len() && is_separator(chars[j].1) {
                j += 1;
            }
            if j < chars.len() && (is_digit(chars[j].1) || is_check(chars[j].1)) {
                // separators between two digits, or before a check character, are left out
                i = j;
                continue;
            }
        }
        read.push(match c {
            '0'..='9' | 'X' | 'x' => c as u8,
            '０'..='９' => b'0' + (u32::from(c) - u32::from('０')) as u8,
            'Ｘ' => b'X',
            'ｘ' => b'x',
            _ => other_digit(c).unwrap_or(b'#'),
        });
        at.push((b, b + c.len_utf8()));
        i += 1;
    }
    let read = String::from_utf8(read).expect("only ASCII bytes are pushed");
    digit_runs(&read)
        .map(|r| (at[r.start].0..at[r.end - 1].1, r.len()))
        .collect()
}

/// Whether free text holds what may be a resident ID number in any spelling
/// ([`spelled_digit_runs`]): 15 or more contiguous digits (GB 11643-1999 numbers have 15 or
/// 18 characters), or digits in groups of which 18 or 15 in a row read as a number of that
/// form ([`id_shaped`]: a birth date, and for 18 the check character). Such text is refused,
/// never stored. The groups must read as one so that a date range (`2026-01-01 2026-12-31`,
/// 16 digits once joined: found refused after session 17's fix) is not an ID number.
pub fn holds_id_like(text: &str) -> bool {
    !loose_id_numbers(text).is_empty()
        || scattered_id_number(text)
        || spelled_digit_runs(text).iter().any(|(r, n)| {
            if *n < 15 {
                return false;
            }
            let spelled = &text[r.clone()];
            if spelled.chars().count() == *n {
                return true;
            }
            has_id_window(spelled)
        })
}

/// Whether `text` holds the 18 characters of a resident ID number in order with any other
/// text between them (`620503 1975年03月24日 540X`, `region 620503 born 19750324 seq 540X`,
/// `a620503b19750324c540X`, `证号620503197503后段24540X`): its digits (ASCII, full-width,
/// other scripts' decimal digits; not Chinese numerals, common in text) and an `X` right
/// after a digit, read as one sequence, hold 18 in a row that are a valid number today
/// ([`IdNumber::parse`]: a birth date not after today, the check character) under a current
/// county-level code of GB/T 2260 (not ending in `00`: a time range's `150800…` reads as a
/// prefecture's code; a number under a retired code is found only by [`loose_id_numbers`]'s
/// groups). Found by session 26's
/// attack: such spellings passed the `purpose`, `label` and `household_id` checks, which read
/// digits in groups only through separators, and were written into every audit row and a
/// sealed envelope's clear `report_id`. A false reading needs a county's code, a past date and
/// a check character to come together: a text so refused can be written otherwise, an ID
/// number in the audit log cannot be taken back.
pub fn scattered_id_number(text: &str) -> bool {
    // the runs of digits (an `X` right after one ends it) and the text after each
    let mut groups: Vec<(Vec<u8>, String)> = Vec::new();
    let mut in_digits = false;
    // (spaces after a group's last digit: an `X` after them is still its check character,
    // `540 X`: session 26's sixth attack)
    let mut spaced = false;
    for c in text.chars() {
        if in_digits && c.is_whitespace() {
            spaced = true;
            if let Some(g) = groups.last_mut() {
                g.1.push(c);
            }
            continue;
        }
        if spaced {
            spaced = false;
            in_digits = false;
            if is_loose_check(c) {
                if let Some(g) = groups.last_mut() {
                    g.0.push(b'X');
                    g.1.clear();
                }
                continue;
            }
        }
        let han_numeral = ('\u{4e00}'..='\u{9fff}').contains(&c) || c == '〇';
        let d = if han_numeral { None } else { loose_digit(c) };
        match d {
            Some(d) if in_digits => {
                if let Some(g) = groups.last_mut() {
                    g.0.push(d);
                }
            }
            Some(d) => {
                groups.push((vec![d], String::new()));
                in_digits = true;
            }
            None if in_digits && is_loose_check(c) => {
                if let Some(g) = groups.last_mut() {
                    g.0.push(b'X');
                }
                in_digits = false;
            }
            None => {
                in_digits = false;
                if let Some(g) = groups.last_mut() {
                    g.1.push(c);
                }
            }
        }
    }
    if groups.iter().map(|g| g.0.len()).sum::<usize>() < 14 {
        return false;
    }
    let today = crate::domain::date::today();
    let year = chrono::Datelike::year(&today);
    // A birth date in the last five years is an event's date far more often than a person's
    // (`低保复核 620503 2023.3.1 第0012号`: one such text in eleven read as a number, session
    // 26's attacks): such a number is found only by its spellings in groups
    // ([`loose_id_numbers`]).
    let recent = today
        .checked_sub_months(chrono::Months::new(60))
        .unwrap_or(today);
    let num = |g: &[u8]| -> Option<u32> {
        g.iter().try_fold(0u32, |a, &b| {
            b.is_ascii_digit().then(|| a * 10 + u32::from(b - b'0'))
        })
    };
    // Dates written as people write them, `1975年3月24日`, `1975.3.24`, `1975 3 24`,
    // `75年03月24日`, read with two-digit months and days (session 26's second attack found
    // only `1975年03月24日` caught): at group `j`, the date's eight digits for each year it
    // may be (a two-digit year as 19.. up to a hundred years back and 20.. up to five).
    let date_sep = |t: &str, first: bool| {
        let u = t.trim();
        matches!(u, "." | "-" | "/")
            || u == if first { "年" } else { "月" }
            || (u.is_empty() && !t.is_empty())
    };
    let date_at = |j: usize| -> Vec<Vec<u8>> {
        let (Some(y), Some(m), Some(d)) = (groups.get(j), groups.get(j + 1), groups.get(j + 2))
        else {
            return Vec::new();
        };
        // (a county's code written against the year, `6205031975年3月24日`: the first six
        // digits go before the date; session 26's sixth attack)
        let (lead, y) = if y.0.len() == 10 {
            (&y.0[..6], (y.0[6..].to_vec(), y.1.clone()))
        } else {
            (&y.0[..0], y.clone())
        };
        let y = &y;
        let ok = matches!(y.0.len(), 2 | 4)
            && (1..=2).contains(&m.0.len())
            && (1..=2).contains(&d.0.len())
            && date_sep(&y.1, true)
            && date_sep(&m.1, false)
            && num(&m.0).is_some_and(|m| (1..=12).contains(&m))
            && num(&d.0).is_some_and(|d| (1..=31).contains(&d));
        let Some(yy) = num(&y.0).filter(|_| ok) else {
            return Vec::new();
        };
        let years: Vec<i32> = if y.0.len() == 4 {
            vec![yy as i32]
        } else {
            [1900 + yy as i32, 2000 + yy as i32]
                .into_iter()
                .filter(|c| *c >= year - 100 && *c <= year - 5)
                .collect()
        };
        years
            .into_iter()
            .map(|c| {
                let mut b = lead.to_vec();
                b.extend(
                    format!(
                        "{c:04}{:02}{:02}",
                        num(&m.0).unwrap_or(0),
                        num(&d.0).unwrap_or(0)
                    )
                    .into_bytes(),
                );
                b
            })
            .collect()
    };
    let is_id = |w: &[u8]| {
        let code = std::str::from_utf8(&w[..6])
            .ok()
            .and_then(|c| c.parse::<u32>().ok());
        code.is_some_and(|c| c % 100 != 0 && crate::domain::region::is_current(c))
            && std::str::from_utf8(w).is_ok_and(|t| {
                IdNumber::parse(t, today).is_ok_and(|(id, _)| id.birth_date() <= recent)
            })
    };
    // Whole groups in a row, each as written or (a date's three) as a date, 18 characters
    // from a group's start to a group's end: `620503 1975年3月24日 540X`, not digits picked
    // from inside other numbers (`2026.10.8受理` before it: session 26's third attack found
    // the readings of earlier dates crowding out the number's own).
    fn walk(
        groups: &[(Vec<u8>, String)],
        j: usize,
        acc: &mut Vec<u8>,
        date_at: &dyn Fn(usize) -> Vec<Vec<u8>>,
        is_id: &dyn Fn(&[u8]) -> bool,
    ) -> bool {
        if acc.len() >= 18 {
            return acc.len() == 18 && is_id(acc);
        }
        let Some(g) = groups.get(j) else {
            return false;
        };
        let n = acc.len();
        acc.extend_from_slice(&g.0);
        let found = walk(groups, j + 1, acc, date_at, is_id);
        acc.truncate(n);
        if found {
            return true;
        }
        for d in date_at(j) {
            acc.extend_from_slice(&d);
            let found = walk(groups, j + 3, acc, date_at, is_id);
            acc.truncate(n);
            if found {
                return true;
            }
        }
        false
    }
    (0..groups.len()).any(|s| walk(&groups, s, &mut Vec::with_capacity(24), &date_at, &is_id))
}

/// Whether `text` holds a resident ID number in any spelling ([`spelled_digit_runs`]):
/// 18 or 15 characters in a row, contiguous or in groups, of an ID number's form
/// ([`id_shaped`]). Unlike [`holds_id_like`] a long number of another form (a department's
/// 18-digit household code) is none: for values that must be shown when they are not one.
pub fn holds_id_number(text: &str) -> bool {
    !loose_id_numbers(text).is_empty()
        || scattered_id_number(text)
        || spelled_digit_runs(text)
            .iter()
            .any(|(r, _)| has_id_window(&text[r.clone()]))
}

/// The characters of `text[range]` that [`loose_id_numbers`] reads, as ASCII (digits and
/// `X`): what such a range spells, for a parse.
pub fn loose_read(text: &str) -> String {
    text.chars()
        .filter_map(|c| loose_digit(c).or_else(|| is_loose_check(c).then_some(b'X')))
        .map(char::from)
        .collect()
}

/// Characters that may stand between an ID number's digit groups only where what they join
/// reads as a whole 18-character ID number ([`loose_id_numbers`]): colons, `+`, `|`,
/// semicolons, the ideographic full stop and comma, tildes and wave dashes, `#`, `=`, `*`,
/// `!`, `@`, `&`, `$`, `%`, `^`, `?`, brackets, quotation marks and backslashes, ASCII or
/// full-width. Unlike [`is_digit_separator`] they join times, offsets, sums and ranges too
/// (`2026-11-01 10:30:00+08:00`), so a run read through them counts only as
/// [`loose_id_numbers`] says.
pub fn is_loose_separator(c: char) -> bool {
    // the full-width forms of the ASCII punctuation below
    let ascii = if ('\u{ff01}'..='\u{ff5e}').contains(&c) {
        char::from_u32(u32::from(c) - 0xfee0).unwrap_or(c)
    } else {
        c
    };
    matches!(
        ascii,
        ':' | '+'
            | '\u{207a}'
            | '\u{207c}'
            | '\u{208a}'
            | '\u{208c}'
            | '|'
            | ';'
            | '~'
            | '#'
            | '='
            | '*'
            | '!'
            | '@'
            | '&'
            | '$'
            | '%'
            | '^'
            | '?'
            | '\\'
            | '('
            | ')'
            | '['
            | ']'
            | '{'
            | '}'
            | '<'
            | '>'
            | '"'
            | '\''
    ) || matches!(
        c,
        '\u{3002}'
            | '\u{3001}'
            | '\u{301c}'
            | '\u{3008}'..='\u{3011}'
            | '\u{3014}'..='\u{301b}'
            | '\u{2018}'..='\u{201f}'
    )
}

/// The class of a separator for [`loose_id_numbers`]: brackets are one class (an opening and
/// its closing one), quotation marks another; any other separator is its own class, a
/// full-width one as its ASCII form.
pub(crate) fn separator_class(c: char) -> char {
    let ascii = if ('\u{ff01}'..='\u{ff5e}').contains(&c) {
        char::from_u32(u32::from(c) - 0xfee0).unwrap_or(c)
    } else {
        c
    };
    match ascii {
        '(' | ')' | '[' | ']' | '{' | '}' | '<' | '>' => '(',
        '\u{3008}'..='\u{3011}' | '\u{3014}'..='\u{301b}' => '(',
        '"' | '\'' | '\u{2018}'..='\u{201f}' => '"',
        c if c.is_whitespace() => ' ',
        c => c,
    }
}

/// The first code point (the digit zero) of each run of decimal digits in Unicode 15.0
/// (general category Nd: every run is the ten digits 0-9 in order), ascending. Generated from
/// Python's `unicodedata` (Unicode 14.0: `category == "Nd" and decimal == 0`), with Unicode
/// 15.0's two new runs (Kawi U+11F50, Nag Mundari U+1E4F0).
const DECIMAL_ZEROS: [u32; 68] = [
    0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66,
    0xDE6, 0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90,
    0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10,
    0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650,
    0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x11F50, 0x16A60, 0x16AC0,
    0x16B50, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E4F0, 0x1E950,
    0x1FBF0,
];

/// The value of a decimal digit of any script (Thai `๖`, Bengali `৬`, Tibetan `༦`, …:
/// [`DECIMAL_ZEROS`]), `None` for any other character.
fn decimal_digit(c: char) -> Option<u8> {
    let u = u32::from(c);
    let at = DECIMAL_ZEROS.partition_point(|z| *z <= u).checked_sub(1)?;
    let d = u - DECIMAL_ZEROS[at];
    (d < 10).then_some(d as u8)
}

/// A digit as an ID number may be spelled in free text: ASCII, full-width, a Chinese numeral
/// (`〇一二…九`, `○` for zero as input methods give it, `零`, `幺`, `两`, and the financial
/// forms `壹贰叁…`), another script's decimal digit (Arabic-Indic, the mathematical
/// alphanumerics, circled and parenthesised digits), or any character whose NFKC form is
/// one ASCII digit (superscripts, subscripts).
pub fn loose_digit(c: char) -> Option<u8> {
    let u = u32::from(c);
    let from = |zero: u32| Some(b'0' + (u - zero) as u8);
    match c {
        '0'..='9' => Some(c as u8),
        '０'..='９' => from(0xff10),
        '\u{0660}'..='\u{0669}' => from(0x0660),
        '\u{06f0}'..='\u{06f9}' => from(0x06f0),
        '\u{0966}'..='\u{096f}' => from(0x0966),
        '\u{1d7ce}'..='\u{1d7ff}' => Some(b'0' + ((u - 0x1d7ce) % 10) as u8),
        '\u{2460}'..='\u{2468}' => Some(b'1' + (u - 0x2460) as u8),
        '\u{2474}'..='\u{247c}' => Some(b'1' + (u - 0x2474) as u8),
        '\u{2488}'..='\u{2490}' => Some(b'1' + (u - 0x2488) as u8),
        '\u{2776}'..='\u{277e}' => Some(b'1' + (u - 0x2776) as u8),
        '\u{2780}'..='\u{2788}' => Some(b'1' + (u - 0x2780) as u8),
        '\u{278a}'..='\u{2792}' => Some(b'1' + (u - 0x278a) as u8),
        '\u{24ea}' | '\u{24ff}' | '\u{1f10b}' | '\u{1f10c}' => Some(b'0'),
        // double circled digits (`⓵`…`⓽`)
        '\u{24f5}'..='\u{24fd}' => Some(b'1' + (u - 0x24f5) as u8),
        '〇' | '○' | '零' => Some(b'0'),
        '一' | '壹' | '幺' => Some(b'1'),
        '二' | '贰' | '貳' | '两' | '兩' => Some(b'2'),
        '三' | '叁' | '參' => Some(b'3'),
        '四' | '肆' => Some(b'4'),
        '五' | '伍' => Some(b'5'),
        '六' | '陆' | '陸' => Some(b'6'),
        '七' | '柒' => Some(b'7'),
        '八' | '捌' => Some(b'8'),
        '九' | '玖' => Some(b'9'),
        // digit full stop and digit comma (`⒍`, `🄇`)
        '\u{1f100}' => Some(b'0'),
        '\u{1f101}'..='\u{1f10a}' => Some(b'0' + (u - 0x1f101) as u8),
        // Any other character that is a decimal digit of its script (Thai, Bengali, Tibetan,
        // Mongolian, …) or whose compatibility form is one digit: superscripts and subscripts
        // (`⁶²⁰⁵⁰³…`), the other circled and negative forms (Unicode's NFKC, UAX #15). Found
        // by session 22's attacks in a `purpose` and a household_id.
        _ if c.is_numeric() && !c.is_ascii() => decimal_digit(c).map(|d| b'0' + d).or_else(|| {
            use unicode_normalization::UnicodeNormalization;
            let mut n = std::iter::once(c).nfkc();
            match (n.next(), n.next()) {
                (Some(d @ '0'..='9'), None) => Some(d as u8),
                _ => None,
            }
        }),
        _ => None,
    }
}

/// Whether `c` may stand for the check character X: the Latin letter (either case, ASCII or
/// full-width), the multiplication sign and the Roman numeral ten.
fn is_loose_check(c: char) -> bool {
    matches!(
        c,
        'X' | 'x' | 'Ｘ' | 'ｘ' | '×' | 'Ⅹ' | 'ⅹ' | '\u{02e3}' | '\u{2093}' | '\u{1d66}'
    )
}

/// The byte ranges of `text` that spell an 18-character resident ID number loosely: its
/// digits (ASCII, full-width, Chinese numerals and other scripts' digits, [`loose_digit`])
/// and check character read through separators ([`is_digit_separator`],
/// [`is_loose_separator`]): `6205:0319:7503:2454:0X`, `(620503)19750324[540X]`,
/// `六二〇五〇三一九七五〇三二四五四〇X`. Eighteen characters count when they have an ID number's
/// form with its check character ([`id_shaped`]) and are spelled as an ID number is written:
/// whole groups (they start and end where a group of the text does), every group boundary
/// an even number of characters in, or 3, or 17 (`6-8-4`, `4-4-4-4-2`, `6-4-4-4`,
/// `3-3-4-4-4`, `…-540-X`), and one kind of separator between them (brackets count as one
/// kind, quotation marks as another).
///
/// Found by session 18's attack: such spellings passed the API's checks of `purpose`,
/// `label` and `household_id` and its echo of keys, and a caseload `household_id` spelled so
/// got no alias. The rules keep times, time ranges (`08:00~2026-01-15 18:00`: colons, a
/// tilde, hyphens and spaces), telephone numbers (`0931-8600432；19306255599`: groups of 7
/// and 11) and sums out, which session 19's attack found refused by a reading through any
/// separator. A 15-digit number is not read loosely (times and sums join into 15 digits
/// with a legacy number's date). What stays ambiguous: 18 digits in groups of 6, 8 and 4
/// that form an ID number (one in eleven `region#date#sequence` numbers), as with hyphens.
pub fn loose_id_numbers(text: &str) -> Vec<std::ops::Range<usize>> {
    // the run being read: (character read, its byte range in `text`, the class of the
    // separators before it, if any)
    let mut run: Vec<(u8, usize, usize, Option<char>)> = Vec::new();
    let mut found: Vec<std::ops::Range<usize>> = Vec::new();
    let mut close = |run: &mut Vec<(u8, usize, usize, Option<char>)>| {
        if run.len() >= 18 {
            let read: Vec<u8> = run.iter().map(|c| c.0).collect();
            for (k, w) in read.windows(18).enumerate() {
                let cells = &run[k..k + 18];
                // whole groups: a group starts at the window's first character, one ends at
                // its last
                let starts = k == 0 || cells[0].3.is_some();
                let ends = run.get(k + 18).is_none_or(|next| next.3.is_some());
                // boundaries at even offsets, one kind of separator
                let mut kind: Option<char> = None;
                let spelled = cells.iter().enumerate().skip(1).all(|(i, c)| match c.3 {
                    None => true,
                    Some(class) => {
                        class != '\u{0}'
                            && (i % 2 == 0 || i == 3 || i == 17)
                            && *kind.get_or_insert(class) == class
                    }
                });
                if starts && ends && spelled && id_shaped(w) {
                    let r = cells[0].1..cells[17].2;
                    match found.last_mut() {
                        Some(last) if last.end >= r.start => last.end = last.end.max(r.end),
                        _ => found.push(r),
                    }
                }
            }
        }
        run.clear();
    };
    // the class of the separators read since the last digit (mixed kinds: none can hold)
    let mut pending: Option<Option<char>> = None;
    for (b, c) in text.char_indices() {
        let end = b + c.len_utf8();
        let read = loose_digit(c).or_else(|| is_loose_check(c).then_some(b'X'));
        if let Some(d) = read {
            let sep = match pending.take() {
                Some(Some(class)) => Some(class),
                // two kinds of separator in one gap: no group boundary an ID number has
                Some(None) => Some('\u{0}'),
                None => None,
            };
            run.push((d, b, end, sep));
        } else if !run.is_empty() && (is_digit_separator(c) || is_loose_separator(c)) {
            let class = separator_class(c);
            pending = Some(match pending {
                None => Some(class),
                Some(None) => None,
                // (a closing and an opening bracket, `)(`, are one class)
                Some(Some(k)) if k == class => Some(k),
                // spaces beside another separator (`620503: 1975…`) are that separator's
                Some(Some(' ')) => Some(class),
                Some(Some(k)) if class == ' ' => Some(k),
                Some(Some(_)) => None,
            });
        } else {
            pending = None;
            close(&mut run);
        }
    }
    close(&mut run);
    found
}

/// Whether a spelled run of digits (one of [`spelled_digit_runs`], separators inside) holds 18
/// or 15 characters in a row of an ID number's form ([`id_shaped`]), read as ASCII.
fn has_id_window(spelled: &str) -> bool {
    let read: Vec<u8> = spelled
        .chars()
        .filter_map(|c| match c {
            '0'..='9' | 'X' | 'x' => Some(c.to_ascii_uppercase() as u8),
            '０'..='９' => Some(b'0' + (u32::from(c) - u32::from('０')) as u8),
            'Ｘ' | 'ｘ' => Some(b'X'),
            _ => other_digit(c),
        })
        .collect();
    [18, 15].iter().any(|&w| read.windows(w).any(id_shaped))
}

/// A digit of another script or a digit form ([`loose_digit`]: Thai `๖`, superscript `⁶`,
/// `⑥`, …) as ASCII, but not the Chinese numerals, which ordinary text is full of: what
/// [`spelled_digit_runs`] reads besides ASCII and full-width digits (session 22's third
/// attack: Thai or superscript digits one at a time between spaces passed the ID checks).
fn other_digit(c: char) -> Option<u8> {
    (!c.is_ascii() && !matches!(c, '\u{3000}'..='\u{9fff}' | '○'))
        .then(|| loose_digit(c))
        .flatten()
}

/// Whether `b` (ASCII digits, `X` last) has the form of a resident ID number: 18 characters
/// with a birth date `YYYYMMDD` (1850-2199) at 6..14 and a right check character, or 15
/// digits with a date `YYMMDD` at 6..12 (GB 11643-1999; the region is not looked up).
fn id_shaped(b: &[u8]) -> bool {
    let num = |s: &[u8]| -> Option<u32> {
        s.iter().try_fold(0u32, |a, &d| {
            d.is_ascii_digit().then(|| a * 10 + u32::from(d - b'0'))
        })
    };
    let day_ok = |m: Option<u32>, d: Option<u32>| matches!((m, d), (Some(m), Some(d)) if (1..=12).contains(&m) && (1..=31).contains(&d));
    match b.len() {
        18 => {
            let Ok(body) = <[u8; 17]>::try_from(&b[..17]) else {
                return false;
            };
            num(&body).is_some()
                && num(&b[6..10]).is_some_and(|y| (1850..=2199).contains(&y))
                && day_ok(num(&b[10..12]), num(&b[12..14]))
                && check_character(&body) == b[17]
        }
        15 => num(b).is_some() && day_ok(num(&b[8..10]), num(&b[10..12])),
        _ => false,
    }
}

/// Mask any value that may hold an ID number: keep the first four and the last four
/// characters of values longer than 8, star the rest; shorter values are fully starred.
pub fn mask(raw: &str) -> String {
    // ASCII (every valid number): by bytes, without a `Vec<char>`
    if raw.is_ascii() {
        let n = raw.len();
        if n <= 8 {
            return "*".repeat(n);
        }
        let mut s = String::with_capacity(n);
        s.push_str(&raw[..4]);
        s.extend(std::iter::repeat_n('*', n - 8));
        s.push_str(&raw[n - 4..]);
        return s;
    }
    let chars: Vec<char> = raw.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let n = chars.len();
    chars[..4]
        .iter()
        .chain(std::iter::repeat_n(&'*', n - 8))
        .chain(chars[n - 4..].iter())
        .collect()
}

impl fmt::Display for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdNumber({})", self.masked())
    }
}

/// Build a valid ID from region, birth date and sequence code (for generators and tests).
pub fn make_id(region: u32, birth: NaiveDate, seq: u32) -> IdNumber {
    let body = format!(
        "{:06}{:04}{:02}{:02}{:03}",
        region,
        birth.year(),
        birth.month(),
        birth.day(),
        seq % 1000
    );
    IdNumber(body.parse().expect("17 digits"))
}

#[cfg(test)]
mod clean_key_tests {
    use super::*;

    /// `clean_key` agrees with `parse` on every value it answers, and answers every clean
    /// valid one: valid numbers, each digit and the check character changed, impossible and
    /// future dates, unknown provinces, lengths 17 and 19, repairs `parse` would make.
    /// The eight-digit steps of `clean_key` against the plain loop, over every digit in
    /// every position and every byte value in one position.
    #[test]
    fn eight_digits_read_as_the_plain_loop_does() {
        for seed in [
            *b"00000000",
            *b"99999999",
            *b"12345678",
            *b"62050219",
            *b"90817263",
        ] {
            for i in 0..8 {
                for byte in 0..=255u8 {
                    let mut v = seed;
                    v[i] = byte;
                    let x = u64::from_le_bytes(v);
                    let digits = v.iter().all(u8::is_ascii_digit);
                    assert_eq!(all_digits(x), digits, "{v:?}");
                    if digits {
                        let plain = v.iter().fold(0u64, |a, d| a * 10 + u64::from(d - b'0'));
                        assert_eq!(eight_digits(x), plain, "{v:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn masks_keep_four_characters_each_side_of_ascii_and_other_text() {
        assert_eq!(mask("620503199001011234"), "6205**********1234");
        assert_eq!(mask("12345678"), "********");
        assert_eq!(mask(""), "");
        assert_eq!(mask("123456789"), "1234*6789");
        // not ASCII: by characters, not bytes
        assert_eq!(
            mask("６２０５０３１９９００１０１１２３４"),
            "６２０５**********１２３４"
        );
        assert_eq!(mask("张三李四王五"), "******");
    }

    /// Session 17's attack: `purpose`, a token `label` and an unknown JSON key took an ID
    /// number written in groups, full-width or one digit at a time, since only contiguous
    /// digits were looked for. Each spelling reads as one run of the whole number.
    #[test]
    fn an_id_number_reads_as_one_run_in_every_spelling_it_is_written_in() {
        for spelled in [
            "62050319750324540X",
            "6205 0319 7503 2454 0X",
            "620503197 50324540X",
            "620503-1975-0324-540X",
            "6205.0319.7503.2454.0x",
            "620503 / 19750324 / 540X",
            "6 2 0 5 0 3 1 9 7 5 0 3 2 4 5 4 0 X",
            "６２０５　０３１９　７５０３　２４５４　０Ｘ",
            "６２０５０３－１９７５－０３２４－５４０Ｘ",
            "6205 ０３１９ 7503 2454 0X",
        ] {
            let text = format!("dibao {spelled}, again");
            let runs = spelled_digit_runs(&text);
            assert_eq!(runs.len(), 1, "{spelled}: {runs:?}");
            let (range, n) = runs[0].clone();
            assert_eq!((&text[range], n), (spelled, 18), "{spelled}");
            assert!(holds_id_like(&text), "{spelled}");
        }
        // a legacy 15-digit number in groups
        assert!(holds_id_like("review 620503 750324 540"));
        // found by session 26's attack: the digits in order with other text between them
        for text in [
            "620503 1975年03月24日 540X",
            "region 620503 born 19750324 seq 540X",
            "a620503b19750324c540X",
            "证号620503197503后段24540X",
            "APP-620503-1975年03月24日-540X",
            "６２０５０３号 一九七五 19750324 号 540x",
        ] {
            assert!(holds_id_like(text), "{text}");
            assert!(holds_id_number(text), "{text}");
        }
        // session 26's second attack: dates as people write them
        for text in [
            "申请人 620503 1975年3月24日 540X",
            "身份证 620503 1975.3.24 540X",
            "620503 75年03月24日 540X",
        ] {
            assert!(holds_id_like(text), "{text}");
        }
        // an intake system's templates with a county, a recent date and a serial: none of a
        // thousand serials (session 26's third attack: one in eleven was refused)
        for n in 0..1000 {
            for text in [
                format!("低保复核 620503 2023.3.1 第{n:04}号"),
                format!("城关区 620102 2024年5月6日 受理{n:04}"),
                format!("复核 620503 23年3月1日 批次{n:04}"),
            ] {
                assert!(!scattered_id_number(&text), "{text}");
            }
        }
        // and its third: the number after other dates, a date with spaces
        for text in [
            "2026.10.8受理 2026.10.9复核 2026.10.10审批 申请人 620503 1975年3月24日 540X",
            "26.10.8受理 26.10.9复核 申请人 620503 1975年3月24日 540X",
            "申请人 620503 1975 3 24 540X",
            // and its sixth
            "6205031975年3月24日540X",
            "620503 1975年3月24日 540 X",
        ] {
            assert!(holds_id_like(text), "{text}");
        }
        // and what must still pass: a wrong check character, no province, an X in a word,
        // an event's date of the last five years (session 26's second and third attacks: one
        // such text in eleven was refused)
        for text in [
            "低保复核 620503 2026年10月31日 第0012号",
            "dibao review 620503, 2025-01-15, batch 0013",
            "窗口620503 受理20250115 序号0013",
            "620503 1975年03月24日 5401",
            "990503 1975年03月24日 5403",
            "低保 2026年复核 第3批 620503-2026-00001",
            "tax 620503 next 19750324 540 text",
        ] {
            assert!(!scattered_id_number(text), "{text}");
        }
        // dates, amounts, ids of applications and short numbers are no ID numbers
        for text in [
            "dibao application",
            "window 1",
            "review 2026-11-01",
            "APP-2026-0001",
            "income 12,000.50 yuan",
            "620503H0000001",
            "members[0].id_number",
            "",
            // a date range: 16 digits once joined, no ID number in them
            "低保年审 2026-01-01 2026-12-31",
            "period 2025.11.01-2026.10.31",
            "period 2026-01-01:2026-12-31 at 10:30:00",
            "(2026)[001] 12",
            // session 18's attack on colons, `+` and `|` as separators: none of these is one
            "appointment 2026-11-02 09:30-11:00",
            "复核 2026-11-01 10:30:00+08:00",
            "收入 12,000.00+3,500.00+1,200.50",
            "复核 2026-11-01 09:00|2026-11-08 09:00",
            "APP-2026:0001+2|620503-2026-00001",
        ] {
            assert!(!holds_id_like(text), "{text}");
        }
        // separators are left out only between two digits; a letter ends a run
        let t = "a-12 34-b 56x78";
        let runs: Vec<(&str, usize)> = spelled_digit_runs(t)
            .into_iter()
            .map(|(r, n)| (&t[r], n))
            .collect();
        assert_eq!(runs, [("12 34", 4), ("56", 2), ("78", 2)]);
    }

    /// Session 18's attack: an ID number in groups between colons, `+`, `|`, semicolons,
    /// full stops, tildes, `#`, `=`, brackets, or in Chinese numerals passed every check. Read
    /// loosely, 18 characters with a birth date and a right check character are one; times,
    /// offsets, sums, ranges and a wrong check character are not.
    #[test]
    fn an_id_number_between_loose_separators_or_in_chinese_numerals_is_found() {
        let id = "62050319750324540X";
        assert!(IdNumber::parse(id, NaiveDate::from_ymd_opt(2026, 11, 1).unwrap()).is_ok());
        let (a, b, c) = (&id[..6], &id[6..14], &id[14..]);
        let mut spelled: Vec<String> = [":", "：", "+", "|", "；", ";", "。", "～", "#", "=", "、"]
            .iter()
            .map(|sep| format!("{a}{sep}{b}{sep}{c}"))
            .collect();
        spelled.push(format!("({a}){b}[{c}]"));
        spelled.push(format!("【{a}】{b}（{c}）"));
        spelled.push(format!("\"{a}\"\"{b}\"\"{c}\""));
        spelled.push("六二〇五〇三一九七五〇三二四五四〇X".to_string());
        spelled.push("陆贰零伍零叁壹玖柒伍零叁贰肆伍肆零x".to_string());
        // session 19's attack: full-width brackets and quotes, ○ 幺 两, × as the check
        // character, other punctuation, other scripts' digits, spaces beside a separator
        spelled.push(format!(
            "{}［{}］{}｛{}｝{}",
            &id[..4],
            &id[4..8],
            &id[8..12],
            &id[12..16],
            &id[16..]
        ));
        spelled.push(format!("＜{a}＞＜{b}＞＜{c}＞"));
        spelled.push("六二○五○三幺九七五○三两四五四○X".to_string());
        spelled.push("6205:0319:7503:2454:0×".to_string());
        spelled.push("6205!0319!7503!2454!0X".to_string());
        spelled.push("⑥②⓪⑤⓪③①⑨⑦⑤⓪③②④⑤④⓪X".to_string());
        spelled.push("٦٢٠٥٠٣١٩٧٥٠٣٢٤٥٤٠X".to_string());
        // superscript and subscript digits, other scripts' decimal digits, digit full stops
        // and commas, a modifier or subscript x, superscript minus between groups (session
        // 22's two attacks: each passed a `purpose` or a household_id)
        spelled.push("⁶²⁰⁵⁰³¹⁹⁷⁵⁰³²⁴⁵⁴⁰X".to_string());
        spelled.push("₆₂₀₅₀₃₁₉₇₅₀₃₂₄₅₄₀X".to_string());
        spelled.push("⁶²⁰⁵⁰³¹⁹⁷⁵⁰³²⁴⁵⁴⁰ˣ".to_string());
        spelled.push("₆₂₀₅₀₃₁₉₇₅₀₃₂₄₅₄₀ₓ".to_string());
        spelled.push("⁶²⁰⁵⁰³⁻¹⁹⁷⁵⁰³²⁴⁻⁵⁴⁰X".to_string());
        for zero in [0x0e50u32, 0x09e6, 0x0f20, 0x1810, 0x17e0, 0x1040, 0x07c0] {
            let digit = |d: u8| char::from_u32(zero + u32::from(d - b'0')).unwrap();
            spelled.push(id[..17].bytes().map(digit).chain(['X']).collect());
        }
        // digit commas (U+1F101 is zero)
        spelled.push(
            id[..17]
                .bytes()
                .map(|d| char::from_u32(0x1f101 + u32::from(d - b'0')).unwrap())
                .chain(['X'])
                .collect(),
        );
        spelled.push("⒍⒉🄀⒌🄀⒊⒈⒐⒎⒌🄀⒊⒉⒋⒌⒋🄀X".to_string());
        // session 22's third attack: double circled digits, superscript plus and equals
        // between groups
        spelled.push("⓺⓶⓪⓹⓪⓷⓵⓽⓻⓹⓪⓷⓶⓸⓹⓸⓪X".replace('⓪', "⓿"));
        spelled.push("⁶²⁰⁵⁰³⁺¹⁹⁷⁵⁰³²⁴⁺⁵⁴⁰ˣ".to_string());
        spelled.push("⁶²⁰⁵⁰³⁼¹⁹⁷⁵⁰³²⁴⁼⁵⁴⁰X".to_string());
        spelled.push(format!("{a}: {b}: {c}"));
        spelled.push("620:503:1975:0324:540X".to_string());
        spelled.push("620503:19750324:540:X".to_string());
        for s in &spelled {
            let text = format!("申请人 {s} 复核");
            let found = loose_id_numbers(&text);
            assert_eq!(found.len(), 1, "{text}: {found:?}");
            // from its first digit to its check character
            let got = &text[found[0].clone()];
            assert!(s.contains(got), "{text}: {got}");
            let read = got
                .chars()
                .filter(|c| loose_digit(*c).is_some() || is_loose_check(*c))
                .count();
            assert_eq!(read, 18, "{text}: {got}");
            assert!(holds_id_like(&text), "{text}");
            assert!(holds_id_number(&text), "{text}");
        }
        // One character at a time (session 22's third attack): a keycap or a combining mark
        // after each digit, other scripts' digits between spaces or hyphens. Not a grouping
        // `loose_id_numbers` reads; the ID checks read it as they read the ASCII spelling.
        let thai = |d: char| char::from_u32(0x0e50 + d.to_digit(10).unwrap()).unwrap();
        let one_at_a_time: [String; 4] = [
            id[..17]
                .chars()
                .flat_map(|d| [d, '\u{fe0f}', '\u{20e3}'])
                .collect(),
            id[..17].chars().flat_map(|d| [d, '\u{0301}']).collect(),
            id[..17].chars().flat_map(|d| [thai(d), ' ']).collect(),
            id[..17].chars().flat_map(|d| [thai(d), '-']).collect(),
        ];
        for s in one_at_a_time {
            let text = format!("申请人 {s}X 复核");
            assert!(holds_id_like(&text), "{text}");
        }
        // a wrong check character, 17 characters, times, offsets, sums and ranges: none
        for text in [
            "620503:19750324:5401",
            "620503:19750324:540",
            "复核 2026-11-01 10:30:00+08:00",
            "时段 2026-11-01 08:00:00～2026-11-01 17:00:00",
            "收入 12,000.00+3,500.00+1,200.50=16,700.50",
            "复核 2026-11-01 09:00|2026-11-08 09:00|2026-11-15 09:00",
            "APP-2026:0001+2|620503-2026-00001",
            "一二三四五六七八九十",
            "二〇二六年十一月一日",
            "(2026)[001]#12=3",
            // session 19's attack: a time range, a telephone number and a mobile one, sums,
            // two kinds of separator in one number
            "核对时段 2026-01-15 08:00~2026-01-15 18:00",
            "2026-11-01 14:30:00~2026-01-10 18:00:00",
            "联系人电话 0931-8600432；19306255599",
            "存款 18,805.00+93,210.00=112,015.00",
            "APP:2026:0115:0800:2026:0115:1800",
        ] {
            assert!(loose_id_numbers(text).is_empty(), "{text}");
            assert!(!holds_id_like(text), "{text}");
        }
        // two kinds of separator are no loose reading, but a valid number under a county's
        // code is found with any text between its digits (session 26: `scattered_id_number`)
        assert!(loose_id_numbers("620503:19750324-540X").is_empty());
        assert!(holds_id_like("620503:19750324-540X"));
    }

    /// Session 17's attack (repros 02 and 04): an ID number with a character that prints as
    /// nothing between its digits (zero-width space or joiner, word joiner, BOM, soft hyphen:
    /// what a word processor pastes) was no run at all, so a token label took it and a key
    /// holding it was named back digit by digit (`6?2?0?…`).
    #[test]
    fn invisible_characters_between_digits_separate_them_as_spaces_do() {
        let id = "62050319750324540X";
        for sep in ['\u{200b}', '\u{200d}', '\u{2060}', '\u{feff}', '\u{00ad}'] {
            let one_by_one: String = id
                .chars()
                .map(String::from)
                .collect::<Vec<_>>()
                .join(&sep.to_string());
            let groups = format!("{}{sep}{}{sep}{}", &id[..6], &id[6..14], &id[14..]);
            for spelled in [one_by_one, groups] {
                let text = format!("w {spelled}");
                let runs = spelled_digit_runs(&text);
                assert_eq!(runs.len(), 1, "{spelled:?}: {runs:?}");
                assert_eq!(
                    (&text[runs[0].0.clone()], runs[0].1),
                    (spelled.as_str(), 18)
                );
                assert!(holds_id_like(&text), "{spelled:?}");
            }
        }
        // through characters a caller shows as marks, but never through a digit's own forms
        let t = "6中2中0中5中0中3 and ６Ｘ";
        let runs: Vec<(&str, usize)> = spelled_digit_runs_through(t, |c| !c.is_ascii())
            .into_iter()
            .map(|(r, n)| (&t[r], n))
            .collect();
        assert_eq!(runs, [("6中2中0中5中0中3", 6), ("６", 1)]);
        assert_eq!(spelled_digit_runs(t).len(), 7);
    }

    #[test]
    fn clean_key_agrees_with_parse() {
        let as_of: NaiveDate = "2026-11-01".parse().unwrap();
        let day = AsOfDay::new(as_of);
        let mut seeds: Vec<String> = Vec::new();
        for (region, date, seq) in [
            ("620502", "19900101", "123"),
            ("110101", "20261101", "001"),
            ("110101", "20261102", "001"),
            ("650102", "18961101", "777"),
            ("650102", "18961031", "777"),
            ("440305", "20000229", "456"),
            ("440305", "19000229", "456"),
            ("440305", "20240431", "456"),
            ("990101", "19800101", "111"),
            ("000101", "19800101", "111"),
            ("620502", "19801301", "111"),
            ("620502", "19800100", "111"),
        ] {
            let body = format!("{region}{date}{seq}");
            let b: [u8; 17] = body.as_bytes().try_into().unwrap();
            let full = format!("{body}{}", char::from(check_character(&b)));
            for i in 0..18 {
                // (`/` and `:` border the digits; `é` makes 19 bytes; `\u{7f}` and `\0` end
                // the ASCII range)
                for c in "0123456789Xx /:é\u{7f}\0".chars() {
                    let mut v: Vec<char> = full.chars().collect();
                    v[i] = c;
                    seeds.push(v.into_iter().collect());
                }
            }
            seeds.push(full.clone());
            seeds.push(full[..17].to_string());
            seeds.push(format!("{full}1"));
            seeds.push(format!(" {full}"));
            seeds.push(format!("'{full}"));
        }
        let mut answered = 0;
        for raw in &seeds {
            let parsed = IdNumber::parse(raw, as_of);
            match IdNumber::clean_key(raw.as_bytes(), day) {
                Some((key, year)) => {
                    answered += 1;
                    let (id, rep) = parsed.unwrap_or_else(|e| panic!("{e:?}"));
                    assert!(rep.is_empty());
                    assert_eq!(id.key(), key);
                    assert_eq!(id.birth_date().year() as u32, year);
                }
                None => {
                    // not clean (parse repairs or refuses it) or invalid
                    let b = raw.as_bytes();
                    let clean = b.len() == 18
                        && b[..17].iter().all(u8::is_ascii_digit)
                        && (b[17].is_ascii_digit() || b[17] == b'X');
                    if clean {
                        assert!(parsed.is_err(), "{raw}");
                    }
                }
            }
        }
        assert!(answered > 20, "{answered}");
    }
}

#[cfg(test)]
mod tests {

    /// The integer calendar check of `from_normal` agrees with chrono on every year a
    /// 4-digit field can hold, every month 0-13 and day 0-32.
    #[test]
    fn the_integer_calendar_check_agrees_with_chrono() {
        for y in 0..=9999u32 {
            for m in 0..=13u32 {
                for d in 0..=32u32 {
                    let ours = (1..=12).contains(&m) && d != 0 && d <= days_in_month(y, m);
                    let chrono = NaiveDate::from_ymd_opt(y as i32, m, d).is_some();
                    assert_eq!(ours, chrono, "{y:04}-{m:02}-{d:02}");
                }
            }
        }
        for p in 0..100u8 {
            assert_eq!(PROVINCE_CODE[usize::from(p)], PROVINCES.contains(&p), "{p}");
        }
    }
    use super::*;

    #[test]
    fn each_repair_is_described_by_code_points_never_by_the_number() {
        let as_of = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        let d = |raw: &str| -> Vec<(&'static str, String)> {
            let (_, r) = IdNumber::parse(raw, as_of).unwrap();
            r.iter().map(|x| x.describe(raw)).collect()
        };
        assert_eq!(
            d("\t620503195809200176 "),
            vec![(
                "id_trimmed",
                "removed around the number: U+0009, U+0020".to_string()
            )]
        );
        assert_eq!(
            d("=\"620503195809200176\""),
            vec![(
                "id_spreadsheet_formula",
                "spreadsheet formula wrapper U+003D U+0022 … U+0022 (=\"…\") removed".to_string()
            )]
        );
        assert_eq!(
            d("６２０５０３１９５８０９２００１７６"),
            vec![(
                "id_fullwidth",
                "18 full-width character(s) U+FF10–U+FF19 (digits) → ASCII".to_string()
            )]
        );
        assert_eq!(
            d("620503 19580920 0176"),
            vec![(
                "id_inner_spaces",
                "2 separator(s) inside the number removed: U+0020".to_string()
            )]
        );
        assert_eq!(d("620503580920017")[0].0, "id_legacy15");
        for (_, detail) in d("'620503 19580920 0176") {
            assert!(
                !detail.contains("0176") && !detail.contains("620503"),
                "{detail}"
            );
        }
    }

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }
    const AS_OF: &str = "2026-11-01";

    fn ok(raw: &str) -> (String, Vec<IdRepair>) {
        let (id, r) = IdNumber::parse(raw, d(AS_OF)).unwrap_or_else(|e| panic!("{raw:?}: {e}"));
        (id.expose(), r)
    }

    #[test]
    fn a_valid_number_parses_without_repairs() {
        assert_eq!(
            ok("620503198703151234"),
            ("620503198703151234".into(), vec![])
        );
        assert_eq!(ok("62050219900101118X").0, "62050219900101118X");
    }

    #[test]
    fn a_bad_check_character_is_rejected_with_the_expected_one() {
        let e = IdNumber::parse("620503198703151235", d(AS_OF)).unwrap_err();
        assert_eq!(
            e,
            IdError::CheckCharacter {
                found: '5',
                expected: '4',
                digits_lost: false
            }
        );
        assert_eq!(e.code(), "id_check_character");
    }

    #[test]
    fn trailing_000_reads_as_digits_lost() {
        let e = IdNumber::parse("620503198703151000", d(AS_OF)).unwrap_err();
        assert_eq!(e.code(), "id_digits_lost");
    }

    #[test]
    fn an_impossible_or_future_birth_date_is_rejected() {
        // 1987-02-30 does not exist; build a body with a correct check character anyway.
        let mut body = *b"62050319870230123";
        let c = check_character(&body);
        let raw = format!("{}{}", std::str::from_utf8(&body).unwrap(), c as char);
        assert_eq!(
            IdNumber::parse(&raw, d(AS_OF)).unwrap_err(),
            IdError::ImpossibleDate("19870230".into())
        );
        body.copy_from_slice(b"62050320270101123");
        let c = check_character(&body);
        let raw = format!("{}{}", std::str::from_utf8(&body).unwrap(), c as char);
        assert_eq!(
            IdNumber::parse(&raw, d(AS_OF)).unwrap_err().code(),
            "id_future_birth_date"
        );
        // born 1800: a valid check character, nobody alive; 130 years back to the day is
        // still accepted, a day more is not (session 24's attack)
        for (body, ok) in [
            (b"62050318000304123", false),
            (b"62050318960101123", false),
            // AS_OF is 2026-11-01: born 1896-11-01, and 1896-10-31
            (b"62050318961101123", true),
            (b"62050318961031123", false),
        ] {
            let c = check_character(body);
            let raw = format!("{}{}", std::str::from_utf8(body).unwrap(), c as char);
            let r = IdNumber::parse(&raw, d(AS_OF));
            if ok {
                assert!(r.is_ok(), "{r:?}");
            } else {
                let e = r.unwrap_err();
                assert_eq!(e, IdError::ImplausibleBirthDate);
                assert_eq!(e.code(), "id_implausible_birth_date");
                assert!(!e.to_string().contains("1800"));
            }
        }
    }

    #[test]
    fn a_15_digit_legacy_number_is_upgraded_to_18() {
        assert_eq!(
            ok("620503480612031"),
            ("62050319480612031X".into(), vec![IdRepair::Legacy15])
        );
    }

    #[test]
    fn legacy_centenarian_sequence_codes_are_ambiguous() {
        for seq in ["996", "997", "998", "999"] {
            let raw = format!("620503010203{seq}");
            assert_eq!(
                IdNumber::parse(&raw, d(AS_OF)).unwrap_err().code(),
                "id_ambiguous_century"
            );
        }
    }

    #[test]
    fn a_lowercase_x_check_digit_is_normalised() {
        assert_eq!(
            ok("62050319880808105x"),
            ("62050319880808105X".into(), vec![IdRepair::LowercaseX])
        );
    }

    #[test]
    fn full_width_digits_and_grouping_spaces_are_normalised() {
        let (id, r) = ok("６２０５２１１９６６０３０３１０１Ｘ");
        assert_eq!(id, "62052119660303101X");
        assert_eq!(r, vec![IdRepair::FullWidth]);
        let (id, r) = ok("620503\u{3000}19791120\u{3000}3575");
        assert_eq!(id, "620503197911203575");
        assert_eq!(r, vec![IdRepair::InnerSpaces]);
        assert_eq!(ok("620503 19830214 0462").0, "620503198302140462");
    }

    #[test]
    fn spreadsheet_markers_are_stripped_and_recorded() {
        assert_eq!(
            ok("'62050219900101118X"),
            (
                "62050219900101118X".into(),
                vec![IdRepair::SpreadsheetMarker]
            )
        );
        assert_eq!(
            ok("=\"620503199505050015\"").1,
            vec![IdRepair::SpreadsheetMarker]
        );
        assert_eq!(ok("\t620503196904120523").1, vec![IdRepair::Trimmed]);
    }

    #[test]
    fn scientific_notation_is_never_repaired() {
        assert_eq!(
            IdNumber::parse("6.20503E+17", d(AS_OF)).unwrap_err(),
            IdError::Scientific
        );
        assert_eq!(
            IdNumber::parse("6.20503e+17", d(AS_OF)).unwrap_err(),
            IdError::Scientific
        );
    }

    #[test]
    fn every_placeholder_is_missing() {
        for p in PLACEHOLDERS.iter().chain(&["  ", "\u{3000}", "'", "=\"\""]) {
            assert_eq!(
                IdNumber::parse(p, d(AS_OF)).unwrap_err(),
                IdError::Missing,
                "{p:?}"
            );
        }
    }

    #[test]
    fn the_key_round_trips_and_display_is_masked() {
        let (id, _) = IdNumber::parse("62050219900101118X", d(AS_OF)).unwrap();
        assert_eq!(IdNumber::from_key(id.key()).expose(), "62050219900101118X");
        assert_eq!(id.to_string(), "6205**********118X");
        assert_eq!(format!("{id:?}"), "IdNumber(6205**********118X)");
        assert_eq!(id.birth_date(), d("1990-01-01"));
        assert!(!id.is_male(), "sequence 118 is even: female");
        assert_eq!(id.region_prefix(), 620502);
    }

    #[test]
    fn a_letter_inside_is_a_bad_character() {
        assert_eq!(
            IdNumber::parse("62050319A8061203", d(AS_OF))
                .unwrap_err()
                .code(),
            "id_bad_character"
        );
        assert_eq!(
            IdNumber::parse("6205031948061A031", d(AS_OF))
                .unwrap_err()
                .code(),
            "id_bad_character"
        );
    }

    #[test]
    fn make_id_builds_a_valid_number() {
        let id = make_id(620503, d("1987-03-15"), 123);
        assert_eq!(IdNumber::parse(&id.expose(), d(AS_OF)).unwrap().0, id);
    }

    proptest::proptest! {
        #[test]
        fn the_parser_never_panics(s in "\\PC{0,30}") {
            let _ = IdNumber::parse(&s, d(AS_OF));
        }

        #[test]
        fn what_it_accepts_round_trips(region in 110000u32..659999, days in 0i64..40000, seq in 0u32..1000) {
            let birth = d("1910-01-01") + chrono::Duration::days(days);
            let id = make_id(region, birth, seq);
            if let Ok((p, _)) = IdNumber::parse(&id.expose(), d(AS_OF)) {
                proptest::prop_assert_eq!(p, id);
                let (q, r) = IdNumber::parse(&p.expose(), d(AS_OF)).unwrap();
                proptest::prop_assert_eq!(q, p);
                proptest::prop_assert!(r.is_empty());
            }
        }
    }
}
