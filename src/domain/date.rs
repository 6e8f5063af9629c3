//! Dates and months as department files spell them, normalised to ISO.
//!
//! The engine works with ISO dates (`YYYY-MM-DD`, chrono `NaiveDate`) and months
//! (`YYYY-MM`, [`Month`]). Non-ISO spellings that staff meet (`2021年9月8日`, `2021/9/8`,
//! `2021.9.8`, `20210908`, `二〇二一年九月八日`) are accepted and say so; a date without a
//! year is rejected, never completed with the current year; a month-only value is a
//! [`Month`], never silently day 1.

use std::fmt;

use chrono::{Datelike, NaiveDate};

/// Today's date in China Standard Time (UTC+08:00, no daylight saving time): the day that
/// civil-affairs staff, the departments' records and an applicant's authorization are dated
/// in. The default as-of date D of a run, the latest D a run accepts, and the day a consent's
/// `valid_until` is checked against. (Session 21's trial: the UTC date was used, one day
/// behind from 00:00 to 08:00 in China: a run then defaulted to yesterday, refused today's
/// date as "after today", and accepted a consent that had ended the day before.)
pub fn today() -> NaiveDate {
    // (the system clock read without chrono's `clock` feature, which the reader's fuzz crate,
    // compiling this file, does not build)
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    chrono::DateTime::from_timestamp(secs, 0)
        .map(day_in_china)
        .unwrap_or_default()
}

/// The date in China Standard Time (UTC+08:00) of the instant `t`.
pub fn day_in_china(t: chrono::DateTime<chrono::Utc>) -> NaiveDate {
    (t + chrono::TimeDelta::hours(8)).date_naive()
}

/// A calendar month.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    /// Year, e.g. 2026.
    pub year: i32,
    /// Month 1-12.
    pub month: u32,
}

impl Month {
    /// The month containing `d`.
    pub fn of(d: NaiveDate) -> Month {
        Month {
            year: d.year(),
            month: d.month(),
        }
    }
    /// Months since year 0 (for window arithmetic).
    pub fn index(self) -> i64 {
        i64::from(self.year) * 12 + i64::from(self.month) - 1
    }
    /// The month at an index made by [`Month::index`].
    pub fn from_index(i: i64) -> Month {
        Month {
            year: i.div_euclid(12) as i32,
            month: (i.rem_euclid(12) + 1) as u32,
        }
    }
    /// Parse `YYYY-MM` (also `YYYY-MM-DD`, read as its month, and `YYYYMM`).
    ///
    /// # Errors
    /// [`DateError`] when the text is not a month.
    pub fn parse(raw: &str) -> Result<Month, DateError> {
        if let Some(ascii) = super::half_width(raw) {
            return Month::parse(&ascii);
        }
        let s = raw.trim();
        let b = s.as_bytes();
        let digits = |r: std::ops::Range<usize>| -> Option<u32> {
            let t = s.get(r)?;
            if t.bytes().all(|c| c.is_ascii_digit()) {
                t.parse().ok()
            } else {
                None
            }
        };
        // Exactly YYYY-MM here: a longer value (`2026-05-15`, or the s7 attack's `2026-05-xx`
        // and `2026-05 至 2026-10`, whose tail was ignored) must be a whole date.
        let (y, m) = if b.len() == 7 && (b[4] == b'-' || b[4] == b'/') {
            (digits(0..4), digits(5..7))
        } else if b.len() == 6 {
            (digits(0..4), digits(4..6))
        } else {
            return match parse_date(s) {
                Ok(DateValue::Day(d)) => Ok(Month::of(d)),
                Ok(DateValue::Month(m)) => Ok(m),
                Err(e) => Err(e),
            };
        };
        match (y, m) {
            (Some(y), Some(m)) if (1..=12).contains(&m) && y >= 1000 => Ok(Month {
                year: y as i32,
                month: m,
            }),
            _ => Err(DateError::NotADate),
        }
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// A parsed date value: a day, or a month when the source gave only year and month.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DateValue {
    /// A full date.
    Day(NaiveDate),
    /// Year and month only (precision kept, flagged by the caller).
    Month(Month),
}

/// Why a date did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    /// Empty value.
    #[error("empty date")]
    Empty,
    /// No year in the value (`9月8日`): the year is never assumed.
    #[error("date without a year")]
    NoYear,
    /// Not a date in any accepted spelling.
    #[error("not a date (expected YYYY-MM-DD)")]
    NotADate,
    /// The spelled date does not exist (2021-02-30).
    #[error("date does not exist")]
    Impossible,
}

impl DateError {
    /// Stable reason code for quarantine.csv.
    pub fn code(&self) -> &'static str {
        match self {
            DateError::Empty => "date_empty",
            DateError::NoYear => "date_no_year",
            DateError::NotADate => "date_unrecognised",
            DateError::Impossible => "date_impossible",
        }
    }
}

fn cn_digit(c: char) -> Option<u32> {
    "〇一二三四五六七八九"
        .chars()
        .position(|d| d == c)
        .map(|p| p as u32)
        .or(if c == '零' { Some(0) } else { None })
}

/// Chinese numerals as used in dates: digit strings (二〇二一) or tens (十, 二十三).
fn cn_number(s: &str) -> Option<u32> {
    if s.is_empty() {
        return None;
    }
    if let Ok(v) = s.parse::<u32>() {
        return Some(v);
    }
    if s.contains('十') {
        let (a, b) = s.split_once('十')?;
        let tens = if a.is_empty() {
            1
        } else {
            cn_digit(a.chars().next()?)?
        };
        let ones = if b.is_empty() {
            0
        } else {
            cn_digit(b.chars().next()?)?
        };
        return Some(tens * 10 + ones);
    }
    // Checked: a run of numerals longer than any year is not a number (fuzzing found the
    // unchecked sum overflowing).
    s.chars().try_fold(0u32, |acc, c| {
        acc.checked_mul(10)?.checked_add(cn_digit(c)?)
    })
}

/// Parse a date in the spellings listed in the module doc. Excel serial numbers are NOT
/// accepted here: a caller that knows a column came from a spreadsheet uses
/// [`from_excel_serial`] explicitly.
///
/// # Errors
/// [`DateError`] naming what is wrong.
pub fn parse_date(raw: &str) -> Result<DateValue, DateError> {
    if let Some(ascii) = super::half_width(raw) {
        return parse_date(&ascii);
    }
    let s = raw.trim();
    if s.is_empty() {
        return Err(DateError::Empty);
    }
    let ymd = |y: u32, m: u32, d: u32| {
        // Four-digit years only (as the 年 spelling): year 0000 is no date.
        if y < 1000 {
            return Err(DateError::NotADate);
        }
        NaiveDate::from_ymd_opt(y as i32, m, d)
            .map(DateValue::Day)
            .ok_or(DateError::Impossible)
    };
    // 20210908
    if s.len() == 8 && s.bytes().all(|c| c.is_ascii_digit()) {
        let v: u32 = s.parse().map_err(|_| DateError::NotADate)?;
        return ymd(v / 10000, v / 100 % 100, v % 100);
    }
    // ISO with an optional time part: 2021-09-08, 2021-09-08T00:00:00, 2021-09-08 00:00:00
    let head = s.split(['T', ' ']).next().unwrap_or(s);
    // Found by the s7 attack: whatever followed the date was dropped as "a time of day"
    // (`2026-10-30 至 2026-11-30`, `2026-10-30 abc`, `2026-10-30 99:99`). Only a time of day
    // (and a zone) may follow a full date; a month is followed by nothing.
    let timed = head.len() < s.len();
    for sep in ['-', '/', '.'] {
        let parts: Vec<&str> = head.split(sep).collect();
        if parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
        {
            if parts[0].len() != 4 || (timed && !is_time_of_day(&s[head.len() + 1..])) {
                return Err(DateError::NotADate);
            }
            let n = |p: &str| p.parse::<u32>().map_err(|_| DateError::NotADate);
            let day = ymd(n(parts[0])?, n(parts[1])?, n(parts[2])?)?;
            // Found by the s9 attack: `2026-10-29T16:00:00Z` (JavaScript's toISOString of a
            // Beijing midnight) was read as 29 October: the zone was dropped with the time.
            let shift = if timed {
                zone_shift_days(&s[head.len() + 1..])
            } else {
                0
            };
            return match day {
                DateValue::Day(d) if shift != 0 => d
                    .checked_add_signed(chrono::TimeDelta::days(shift))
                    .map(DateValue::Day)
                    .ok_or(DateError::Impossible),
                other => Ok(other),
            };
        }
        if parts.len() == 2
            && parts[0].len() == 4
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
        {
            if timed {
                return Err(DateError::NotADate);
            }
            let m: u32 = parts[1].parse().map_err(|_| DateError::NotADate)?;
            let y: i32 = parts[0].parse().map_err(|_| DateError::NotADate)?;
            if y < 1000 {
                return Err(DateError::NotADate);
            }
            return if (1..=12).contains(&m) {
                Ok(DateValue::Month(Month { year: y, month: m }))
            } else {
                Err(DateError::Impossible)
            };
        }
    }
    // 2021年9月8日, 二〇二一年九月八日, 2021年9月
    if s.contains('月') || s.contains('年') {
        let Some((y, rest)) = s.split_once('年') else {
            return Err(DateError::NoYear);
        };
        let y = cn_number(y.trim()).ok_or(DateError::NotADate)?;
        // Four-digit years only, as in ISO `YYYY-MM-DD` (fuzzing found 20210年 accepted as
        // the year 20210, which does not print back as a date).
        if !(1000..=9999).contains(&y) {
            return Err(DateError::NotADate);
        }
        let Some((m, rest)) = rest.split_once('月') else {
            return Err(DateError::NotADate);
        };
        let m = cn_number(m.trim()).ok_or(DateError::NotADate)?;
        let d = rest.trim().trim_end_matches(['日', '号']);
        if d.is_empty() {
            return if (1..=12).contains(&m) {
                Ok(DateValue::Month(Month {
                    year: y as i32,
                    month: m,
                }))
            } else {
                Err(DateError::Impossible)
            };
        }
        let d = cn_number(d).ok_or(DateError::NotADate)?;
        return ymd(y, m, d);
    }
    Err(DateError::NotADate)
}

/// Whether `t` (what follows a date after `T` or a space) is a time of day: `HH:MM`,
/// `HH:MM:SS` or `HH:MM:SS.fff` (hours 0-23, minutes 0-59, seconds 0-60), then optionally
/// `Z` or a UTC offset `+08:00` / `+0800`, with spaces allowed around it.
fn is_time_of_day(t: &str) -> bool {
    let t = t.trim();
    let (clock, zone) = match t.find(['Z', 'z', '+', '-']) {
        Some(i) => (t[..i].trim_end(), &t[i..]),
        None => (t, ""),
    };
    let two = |p: &str, max: u32| {
        p.len() == 2
            && p.bytes().all(|c| c.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|v| v <= max)
    };
    let parts: Vec<&str> = clock.split(':').collect();
    let clock_ok = match parts.as_slice() {
        [h, m] => two(h, 23) && two(m, 59),
        [h, m, sec] => {
            let (whole, frac) = sec.split_once('.').unwrap_or((sec, "0"));
            two(h, 23)
                && two(m, 59)
                && two(whole, 60)
                && !frac.is_empty()
                && frac.bytes().all(|c| c.is_ascii_digit())
        }
        _ => false,
    };
    let zone_ok = match zone.as_bytes() {
        [] => true,
        [b'Z' | b'z'] => true,
        [b'+' | b'-', ..] => {
            let z = &zone[1..];
            let (h, m) = match z.split_once(':') {
                Some((h, m)) => (h, m),
                None if z.len() == 4 => z.split_at(2),
                None => (z, "00"),
            };
            two(h, 14) && two(m, 59)
        }
        _ => false,
    };
    clock_ok && zone_ok
}

/// Days to add to a date followed by the time of day `t` (as [`is_time_of_day`] accepts it)
/// for the day in China Standard Time (UTC+08:00), the departments' clock: 0 without a zone
/// or at `+08:00`; a time in another zone may fall on the day before or after
/// (`2026-10-29T16:00:00Z` is 30 October in Beijing).
fn zone_shift_days(t: &str) -> i64 {
    let t = t.trim();
    let Some(i) = t.find(['Z', 'z', '+', '-']) else {
        return 0;
    };
    let (clock, zone) = (t[..i].trim_end(), &t[i..]);
    let num = |p: Option<&str>| p.and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
    let local = num(clock.get(0..2)) * 60 + num(clock.get(3..5));
    let offset = match zone.as_bytes().first() {
        Some(b'+' | b'-') => {
            let z = zone[1..].replace(':', "");
            let minutes = num(z.get(0..2)) * 60 + num(z.get(2..4));
            if zone.starts_with('-') {
                -minutes
            } else {
                minutes
            }
        }
        _ => 0,
    };
    (local - offset + 8 * 60).div_euclid(24 * 60)
}

/// Parse a value that must be a full ISO-like date (month-only values are an error).
///
/// # Errors
/// [`DateError`]; a month-only value is [`DateError::NotADate`].
pub fn parse_day(raw: &str) -> Result<NaiveDate, DateError> {
    match parse_date(raw)? {
        DateValue::Day(d) => Ok(d),
        DateValue::Month(_) => Err(DateError::NotADate),
    }
}

/// How an accepted date or month was spelled, when not in ISO form: a stable kind code and
/// a sentence for the per-row normalisation log (`normalisations.csv`). `None` for ISO
/// (`YYYY-MM-DD`, or `YYYY-MM` when `month` is set) and for values that do not parse.
///
/// Kinds: `date_chinese` (2021年9月8日), `date_chinese_numerals` (二〇二一年九月八日),
/// `date_compact` (20210908), `date_slash` (2021/9/8), `date_dot` (2021.9.8),
/// `date_unpadded` (2021-9-8), `date_time_dropped` (a time part after the date),
/// `date_time_zone` (a time in another zone that falls on another day in UTC+08:00), and for
/// months `month_compact` (202109), `month_from_date` (a full date in a month column).
pub fn spelling(raw: &str, month: bool) -> Option<(&'static str, &'static str)> {
    if let Some(ascii) = super::half_width(raw) {
        if month {
            Month::parse(&ascii).ok()?;
        } else {
            parse_date(&ascii).ok()?;
        }
        return Some((
            "date_fullwidth",
            "full-width digits or separators (U+FF10–U+FF19, U+FF0D, U+FF0F) → ASCII, then ISO",
        ));
    }
    let s = raw.trim();
    let b = s.as_bytes();
    let iso_day = b.len() == 10 && b[4] == b'-' && b[7] == b'-';
    let iso_month = b.len() == 7 && b[4] == b'-';
    if (!month && iso_day) || (month && iso_month) {
        return if s.len() == raw.len() {
            None
        } else {
            Some(("date_whitespace", "spaces around the date removed"))
        };
    }
    if month {
        let m = Month::parse(s).ok()?;
        if b.len() == 6 && b.iter().all(u8::is_ascii_digit) {
            return Some(("month_compact", "YYYYMM → YYYY-MM"));
        }
        if let Ok(DateValue::Day(_)) = parse_date(s) {
            let _ = m;
            return Some((
                "month_from_date",
                "a full date in a month column: read as its month (YYYY-MM)",
            ));
        }
    } else {
        parse_date(s).ok()?;
    }
    Some(if s.contains('年') {
        if s.chars().any(|c| cn_digit(c).is_some() || c == '十') {
            (
                "date_chinese_numerals",
                "Chinese numerals (二〇二一年九月八日) → ISO",
            )
        } else {
            ("date_chinese", "年/月/日 (U+5E74, U+6708, U+65E5) → ISO")
        }
    } else if b.len() == 8 && b.iter().all(u8::is_ascii_digit) {
        ("date_compact", "YYYYMMDD → YYYY-MM-DD")
    } else if s.contains(['T', ' ']) {
        let head = s.split(['T', ' ']).next().unwrap_or(s);
        if zone_shift_days(&s[head.len() + 1..]) != 0 {
            (
                "date_time_zone",
                "a time in another time zone: its day in China Standard Time (UTC+08:00) taken, the time dropped",
            )
        } else {
            ("date_time_dropped", "time of day after the date dropped")
        }
    } else if s.contains('/') {
        ("date_slash", "U+002F (/) separators → ISO")
    } else if s.contains('.') {
        ("date_dot", "U+002E (.) separators → ISO")
    } else {
        ("date_unpadded", "month or day without a leading zero → ISO")
    })
}

/// Excel's serial day number (days since 1899-12-30, the 1900 date system with Lotus's
/// leap-year bug absorbed), for spreadsheet columns declared as such.
pub fn from_excel_serial(serial: i64) -> Option<NaiveDate> {
    if !(1..=2_958_465).contains(&serial) {
        return None;
    }
    NaiveDate::from_ymd_opt(1899, 12, 30)?.checked_add_signed(chrono::Duration::days(serial))
}

#[cfg(test)]
mod tests {

    /// The China date turns at 16:00 UTC: a run at 07:30 in Beijing is dated that day.
    #[test]
    fn the_day_is_china_standard_times() {
        let at = |t: &str| super::day_in_china(t.parse().expect("instant"));
        let day = |d: &str| d.parse::<chrono::NaiveDate>().expect("date");
        assert_eq!(at("2026-12-01T15:59:59Z"), day("2026-12-01"));
        assert_eq!(at("2026-12-01T16:00:00Z"), day("2026-12-02"));
        assert_eq!(at("2026-12-01T23:30:00Z"), day("2026-12-02"));
        assert_eq!(at("2026-12-31T16:00:00Z"), day("2027-01-01"));
    }

    use super::*;

    /// Full-width digits and separators, as an input method types them, read as ASCII and
    /// say so; the rules for what is a date do not change.
    #[test]
    fn full_width_dates_read_as_ascii_and_are_logged() {
        let d = DateValue::Day(NaiveDate::from_ymd_opt(2026, 10, 30).unwrap());
        for s in [
            "２０２６-１０-３０",
            "２０２６／１０／３０",
            "２０２６年１０月３０日",
            "\u{3000}2026-10-30",
        ] {
            assert_eq!(parse_date(s), Ok(d), "{s}");
            assert_eq!(
                spelling(s, false).map(|k| k.0),
                Some("date_fullwidth"),
                "{s}"
            );
        }
        assert_eq!(parse_date("２０２６-０２-３０"), Err(DateError::Impossible));
        assert_eq!(spelling("２０２６-０２-３０", false), None);
        assert_eq!(parse_date("１０月３０日"), Err(DateError::NoYear));
        assert_eq!(
            Month::parse("２０２６-１０"),
            Ok(Month {
                year: 2026,
                month: 10
            })
        );
        assert_eq!(
            spelling("２０２６-１０", true).map(|k| k.0),
            Some("date_fullwidth")
        );
        assert_eq!(spelling("2026-10-30", false), None);
    }

    /// Regressions found by the fuzz target `text_normalise` (connectors/fuzz): a long run
    /// of Chinese numerals overflowed, and a five-digit year was accepted as a date that
    /// does not print back as ISO.
    #[test]
    fn years_outside_four_digits_and_overflowing_numerals_are_not_dates() {
        assert_eq!(parse_date("20210年9月8日"), Err(DateError::NotADate));
        assert_eq!(
            parse_date("九九九九九九九九九九九九年1月1日"),
            Err(DateError::NotADate)
        );
        assert_eq!(parse_date("二〇二一〇年9月"), Err(DateError::NotADate));
        assert_eq!(Month::parse("20210年9月"), Err(DateError::NotADate));
        assert_eq!(parse_date("二〇二一年九月八日"), Ok(day("2021-09-08")));
    }

    #[test]
    fn each_non_iso_spelling_names_its_kind() {
        let k = |s: &str, m: bool| spelling(s, m).map(|(k, _)| k);
        assert_eq!(k("2021-09-08", false), None);
        assert_eq!(k("2021年9月8日", false), Some("date_chinese"));
        assert_eq!(
            k("二〇二一年九月八日", false),
            Some("date_chinese_numerals")
        );
        assert_eq!(k("20210908", false), Some("date_compact"));
        assert_eq!(k("2021/9/8", false), Some("date_slash"));
        assert_eq!(k("2021.9.8", false), Some("date_dot"));
        assert_eq!(k("2021-9-8", false), Some("date_unpadded"));
        assert_eq!(k("2021-09-08 00:00:00", false), Some("date_time_dropped"));
        assert_eq!(k(" 2021-09-08", false), Some("date_whitespace"));
        assert_eq!(
            k("9月8日", false),
            None,
            "refused values are not normalisations"
        );
        assert_eq!(k("2026-10", true), None);
        assert_eq!(k("202610", true), Some("month_compact"));
        assert_eq!(k("2026-10-01", true), Some("month_from_date"));
        assert_eq!(k("2026年10月", true), Some("date_chinese"));
    }

    fn day(s: &str) -> DateValue {
        DateValue::Day(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap())
    }

    #[test]
    fn every_spelling_of_one_date_reads_the_same() {
        for s in [
            "2021-09-08",
            "2021/9/8",
            "2021.9.8",
            "20210908",
            "2021年9月8日",
            "2021年09月08日",
            "二〇二一年九月八日",
            "2021-09-08 00:00:00",
            "2021-09-08T00:00:00",
        ] {
            assert_eq!(parse_date(s), Ok(day("2021-09-08")), "{s}");
        }
    }

    /// Found by the s7 attack: anything after a date was dropped as "a time of day" (a
    /// range `2026-10-30 至 2026-11-30`, a note, `25:00`), a month column ignored all after
    /// `YYYY-MM-` (`2026-05-xx`, `2026-05-99`) or a space, and year 0000 was a date. Only a
    /// real time of day (with a zone) may follow a date; a month is followed by nothing.
    #[test]
    fn only_a_time_of_day_may_follow_a_date_and_nothing_a_month() {
        for s in [
            "2026-10-30 至 2026-11-30",
            "2026-10-30 abc",
            "2026-10-30T",
            "2026-10-30 99:99",
            "2026-10-30T25:00:00",
            "2026-10-30T12",
            "2026/10/30 下午",
            "2026-10-30 12:00+99:00",
            "0000-01-01",
            "00001030",
        ] {
            assert_eq!(parse_date(s), Err(DateError::NotADate), "{s}");
            assert_eq!(spelling(s, false), None, "{s}");
        }
        for s in [
            "2026-10-30 12:00",
            "2026-10-30T00:00:00+08:00",
            "2026-10-30T00:00:00Z",
            "2026-10-30 00:00:00.000",
            "2026/10/30 23:59:60",
            "2026-10-30T08:00:00+0800",
        ] {
            assert_eq!(parse_date(s), Ok(day("2026-10-30")), "{s}");
            assert_eq!(
                spelling(s, false).map(|k| k.0),
                Some("date_time_dropped"),
                "{s}"
            );
        }
        // Found by the s9 attack: the day in China Standard Time, whatever the zone.
        for (s, want) in [
            ("2026-10-29T16:00:00Z", "2026-10-30"),
            ("2026-10-29T16:00:00.000Z", "2026-10-30"),
            ("2026-10-30T15:59:59Z", "2026-10-30"),
            ("2026-10-30 23:30-01:00", "2026-10-31"),
            ("2026-10-30T07:00:00+09:00", "2026-10-30"),
            ("2026-10-30T07:00:00+0900", "2026-10-30"),
            ("2026-10-30T06:00:00+09:00", "2026-10-30"),
            ("2026-10-31T01:00:00+14:00", "2026-10-30"),
            ("2026-12-31T16:00:00Z", "2027-01-01"),
            ("2026-10-30T00:00:00+08:00", "2026-10-30"),
            ("2026-10-30T23:59:59+08:00", "2026-10-30"),
        ] {
            assert_eq!(parse_date(s), Ok(day(want)), "{s}");
            let kind = if want == &s[..10] {
                "date_time_dropped"
            } else {
                "date_time_zone"
            };
            assert_eq!(spelling(s, false).map(|k| k.0), Some(kind), "{s}");
        }
        assert_eq!(
            Month::parse("2026-10-31T16:00:00Z"),
            Ok(Month {
                year: 2026,
                month: 11
            })
        );
        for s in [
            "2026-05 至 2026-10",
            "2026-05-xx",
            "2026-05-99",
            "2026-05 abc",
            "0000-05",
            "2026-05 12:00",
        ] {
            assert!(Month::parse(s).is_err(), "{s}");
        }
        let may = Month {
            year: 2026,
            month: 5,
        };
        for s in [
            "2026-05",
            "2026/05",
            "202605",
            "2026-05-15",
            "2026年5月",
            "2026-05-15 08:00",
        ] {
            assert_eq!(Month::parse(s), Ok(may), "{s}");
        }
        // spaces inside a 年月日 date are not a time part
        assert_eq!(parse_date("2021年 9月 8日"), Ok(day("2021-09-08")));
    }

    #[test]
    fn a_date_without_a_year_is_rejected() {
        assert_eq!(parse_date("9月8日"), Err(DateError::NoYear));
    }

    #[test]
    fn month_precision_is_kept() {
        assert_eq!(
            parse_date("2021年9月"),
            Ok(DateValue::Month(Month {
                year: 2021,
                month: 9
            }))
        );
        assert_eq!(
            Month::parse("2025-11"),
            Ok(Month {
                year: 2025,
                month: 11
            })
        );
        assert_eq!(
            Month::parse("202511"),
            Ok(Month {
                year: 2025,
                month: 11
            })
        );
        assert_eq!(Month::parse("2025-13"), Err(DateError::NotADate));
    }

    #[test]
    fn impossible_dates_are_rejected() {
        assert_eq!(parse_date("1952-02-31"), Err(DateError::Impossible));
        assert_eq!(parse_date("44447"), Err(DateError::NotADate));
    }

    #[test]
    fn excel_serials_convert_only_when_asked() {
        assert_eq!(
            from_excel_serial(44447).map(DateValue::Day),
            Some(day("2021-09-08"))
        );
        assert_eq!(from_excel_serial(0), None);
    }

    #[test]
    fn month_indices_round_trip() {
        let m = Month {
            year: 2026,
            month: 1,
        };
        assert_eq!(
            Month::from_index(m.index() - 1),
            Month {
                year: 2025,
                month: 12
            }
        );
    }

    proptest::proptest! {
        #[test]
        fn the_date_parser_never_panics(s in "\\PC{0,20}") {
            let _ = parse_date(&s);
            let _ = Month::parse(&s);
        }

        #[test]
        fn iso_dates_round_trip(days in 0i64..80000) {
            let d = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap() + chrono::Duration::days(days);
            proptest::prop_assert_eq!(parse_date(&d.format("%Y-%m-%d").to_string()), Ok(DateValue::Day(d)));
        }
    }
}
