//! Money: integer 分 (fen) inside the engine, yuan only at the edges.
//!
//! Department files carry yuan with up to two decimals (`1234.50`, DESIGN.md §2); they are
//! parsed exactly, digit by digit, never through floating point.

use std::fmt;

/// An amount of money in fen (1 yuan = 100 fen), signed.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Fen(pub i64);

/// Why a money value did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Empty value.
    #[error("empty amount")]
    Empty,
    /// Not a decimal number of yuan.
    #[error("not an amount of yuan: character {0} is not a digit")]
    NotANumber(usize),
    /// More than two decimals that are not zero (sub-fen amounts are not rounded silently).
    #[error("more than 2 decimals")]
    TooManyDecimals,
    /// Beyond ±[`MAX_YUAN`] yuan: no household's amount, and sums of up to 92,233 such
    /// amounts stay inside `i64` fen.
    #[error("amount out of range (more than 1,000,000,000,000 yuan)")]
    OutOfRange,
    /// Below zero where only zero or more makes sense ([`Fen::parse_amount`]).
    #[error("amount below zero")]
    Negative,
}

/// Largest amount accepted, in yuan (10^12 yuan = 10^14 fen): anything larger is a damaged
/// value (an Excel overflow, a concatenated column), never a household's income or asset.
pub const MAX_YUAN: i64 = 1_000_000_000_000;

impl MoneyError {
    /// Stable reason code for quarantine.csv.
    pub fn code(&self) -> &'static str {
        match self {
            MoneyError::Empty => "money_empty",
            MoneyError::NotANumber(_) => "money_not_a_number",
            MoneyError::TooManyDecimals => "money_too_many_decimals",
            MoneyError::OutOfRange => "money_out_of_range",
            MoneyError::Negative => "money_negative",
        }
    }
}

impl Fen {
    /// Zero fen.
    pub const ZERO: Fen = Fen(0);

    /// Parse yuan text exactly: optional sign, optional `¥`/`￥`, digits with optional `,`
    /// thousands separators, optional `.` and up to two decimals (further decimals must be
    /// zeros). Surrounding whitespace is ignored; full-width digits and signs
    /// ([`super::half_width`]) read as ASCII; a spreadsheet text marker (`="1234.50"`,
    /// `'1234.50`: [`super::spreadsheet_text`]) is removed.
    ///
    /// # Errors
    /// [`MoneyError`] naming what is wrong; nothing is rounded.
    pub fn parse_yuan(raw: &str) -> Result<Fen, MoneyError> {
        if let Some((inner, _)) = super::spreadsheet_text(raw) {
            return Fen::parse_yuan(inner);
        }
        if let Some(ascii) = super::half_width(raw) {
            return Fen::parse_yuan(&ascii);
        }
        let s = raw.trim();
        if s.is_empty() {
            return Err(MoneyError::Empty);
        }
        let (neg, s) = match s.as_bytes()[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let s = s.trim_start_matches(['¥', '￥']);
        let (int, frac) = match s.split_once('.') {
            Some((i, f)) => (i, f),
            None => (s, ""),
        };
        if int.is_empty() && frac.is_empty() {
            return Err(MoneyError::NotANumber(0));
        }
        // Thousands separators only where they group by three (1,234,567): `14,06` or
        // `14060,5` is a decimal comma or a typo, never 1406 yuan.
        if int.contains(',') {
            let groups: Vec<&str> = int.split(',').collect();
            let ok = !groups[0].is_empty()
                && groups[0].len() <= 3
                && groups[1..].iter().all(|g| g.len() == 3);
            if !ok {
                return Err(MoneyError::NotANumber(int.find(',').map_or(0, |p| p + 1)));
            }
        }
        let mut yuan: i64 = 0;
        for (i, c) in int.bytes().enumerate() {
            match c {
                b'0'..=b'9' => {
                    yuan = yuan
                        .checked_mul(10)
                        .and_then(|v| v.checked_add(i64::from(c - b'0')))
                        .ok_or(MoneyError::OutOfRange)?;
                }
                b',' if i > 0 => {}
                _ => return Err(MoneyError::NotANumber(i + 1)),
            }
        }
        let mut fen: i64 = 0;
        for (i, c) in frac.bytes().enumerate() {
            if !c.is_ascii_digit() {
                return Err(MoneyError::NotANumber(int.len() + 2 + i));
            }
            if i < 2 {
                fen = fen * 10 + i64::from(c - b'0');
            } else if c != b'0' {
                return Err(MoneyError::TooManyDecimals);
            }
        }
        if frac.len() == 1 {
            fen *= 10;
        }
        if yuan > MAX_YUAN || (yuan == MAX_YUAN && fen > 0) {
            return Err(MoneyError::OutOfRange);
        }
        let total = yuan * 100 + fen;
        Ok(Fen(if neg { -total } else { total }))
    }

    /// [`Fen::parse_yuan`] for amounts that are never below zero: a declared total, a
    /// department's balance, income or value (a loss or an overdraft is for a person to weigh,
    /// never netted against the rest).
    ///
    /// # Errors
    /// As [`Fen::parse_yuan`], and [`MoneyError::Negative`] below zero.
    pub fn parse_amount(raw: &str) -> Result<Fen, MoneyError> {
        let f = Fen::parse_yuan(raw)?;
        if f.0 < 0 {
            return Err(MoneyError::Negative);
        }
        Ok(f)
    }

    /// Yuan with two decimals, e.g. `-12.05`.
    pub fn to_yuan(self) -> String {
        // (by hand, not `format!`: every amount of every report is written so, a few dozen
        // per report)
        let a = self.0.unsigned_abs();
        let mut s = String::with_capacity(24);
        if self.0 < 0 {
            s.push('-');
        }
        s.push_str(itoa::Buffer::new().format(a / 100));
        let c = (a % 100) as u8;
        s.push('.');
        s.push(char::from(b'0' + c / 10));
        s.push(char::from(b'0' + c % 10));
        s
    }
}

impl fmt::Display for Fen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_yuan())
    }
}

/// How an accepted amount was spelled, when not in the §2 form (`-?digits[.d[d]]`): each
/// change as a stable kind code and a sentence naming the code points, for the per-row
/// normalisation log. Empty for §2 form and for values that do not parse.
///
/// Kinds: `money_fullwidth` (U+FF10–U+FF19 digits and other full-width forms),
/// `money_thousands` (U+002C separators), `money_currency_sign` (U+00A5/U+FFE5),
/// `money_plus_sign`, `money_whitespace`, `money_zero_decimals` (zeros beyond the fen),
/// `money_negative_zero` (`-0`, `-0.00`: read as 0), `money_trailing_point` (`900000.`),
/// `money_spreadsheet_formula` (`="…"`), `money_spreadsheet_quote` (a leading `'`).
pub fn spelling(raw: &str) -> Vec<(&'static str, String)> {
    if let Some((inner, marker)) = super::spreadsheet_text(raw) {
        if Fen::parse_yuan(inner).is_err() {
            return Vec::new();
        }
        let mut out = vec![(
            if marker == "formula" {
                "money_spreadsheet_formula"
            } else {
                "money_spreadsheet_quote"
            },
            super::spreadsheet_detail(marker).to_string(),
        )];
        out.extend(spelling(inner));
        return out;
    }
    if let Some(ascii) = super::half_width(raw) {
        if Fen::parse_yuan(&ascii).is_err() {
            return Vec::new();
        }
        let mut out = vec![(
            "money_fullwidth",
            format!("{} → ASCII", super::full_width_points(raw)),
        )];
        out.extend(spelling(&ascii));
        return out;
    }
    let b = raw.as_bytes();
    let body = b.strip_prefix(b"-").unwrap_or(b);
    let (int, frac) = match body.iter().position(|c| *c == b'.') {
        Some(p) => (&body[..p], &body[p + 1..]),
        None => (body, &body[..0]),
    };
    if !int.is_empty()
        && int.iter().all(u8::is_ascii_digit)
        && frac.len() <= 2
        && frac.iter().all(u8::is_ascii_digit)
    {
        // `-0` and `-0.00` (a small negative rounded by a spreadsheet) read as 0: the sign
        // that went away is logged (found by the session-14 attack)
        if body.len() < b.len() && body.iter().all(|c| matches!(c, b'0' | b'.')) {
            return vec![(
                "money_negative_zero",
                "a minus sign before zero dropped: read as 0".to_string(),
            )];
        }
        // `900000.`: a point with no decimals (session 28's attack: read with no log row)
        if body.last() == Some(&b'.') {
            return vec![(
                "money_trailing_point",
                "a decimal point with no decimals after it (U+002E) dropped: read as a whole amount"
                    .to_string(),
            )];
        }
        return Vec::new();
    }
    if Fen::parse_yuan(raw).is_err() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let t = raw.trim();
    if t.len() != raw.len() {
        out.push((
            "money_whitespace",
            "spaces around the amount removed".to_string(),
        ));
    }
    if t.starts_with('+') {
        out.push(("money_plus_sign", "leading U+002B (+) removed".to_string()));
    }
    let signs: Vec<char> = t.chars().filter(|c| matches!(c, '¥' | '￥')).collect();
    if !signs.is_empty() {
        out.push((
            "money_currency_sign",
            format!("{} removed", crate::domain::id_number::code_points(signs)),
        ));
    }
    let commas = t.matches(',').count();
    if commas > 0 {
        out.push((
            "money_thousands",
            format!("{commas} thousands separator(s) U+002C removed"),
        ));
    }
    if let Some((_, f)) = t.split_once('.')
        && f.len() > 2
    {
        out.push((
            "money_zero_decimals",
            format!("{} zero decimal(s) beyond the fen dropped", f.len() - 2),
        ));
    }
    out
}

/// Round `num / den` half away from zero (den > 0), on exact integers.
pub fn div_round_half_up(num: i128, den: i128) -> i128 {
    debug_assert!(den > 0);
    if num >= 0 {
        (2 * num + den) / (2 * den)
    } else {
        -((-2 * num + den) / (2 * den))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Full-width digits, point and separators read as ASCII and say so; the rules for what
    /// is an amount do not change (`１４，０６` is still not 1,406 yuan).
    #[test]
    fn full_width_amounts_read_as_ascii_and_are_logged() {
        assert_eq!(Fen::parse_yuan("１２３４．５６"), Ok(Fen(123_456)));
        assert_eq!(Fen::parse_yuan("￥１，２３４．００"), Ok(Fen(123_400)));
        assert_eq!(Fen::parse_yuan("－５．００"), Ok(Fen(-500)));
        assert_eq!(Fen::parse_amount("－５．００"), Err(MoneyError::Negative));
        assert!(Fen::parse_yuan("１４，０６").is_err());
        let kinds: Vec<&str> = spelling("￥１，２３４．００").iter().map(|k| k.0).collect();
        assert_eq!(
            kinds,
            ["money_fullwidth", "money_currency_sign", "money_thousands"]
        );
        assert_eq!(
            spelling("１２３４．５６")[0].1,
            "U+FF11, U+FF12, U+FF13, U+FF14, U+FF0E, U+FF15, U+FF16 → ASCII"
        );
        assert!(spelling("１４，０６").is_empty());
        assert!(spelling("1234.56").is_empty());
        // a point with no decimals is read and logged
        assert_eq!(Fen::parse_yuan("900000."), Ok(Fen(90_000_000)));
        let kinds: Vec<&str> = spelling("900000.").iter().map(|k| k.0).collect();
        assert_eq!(kinds, ["money_trailing_point"]);
        assert_eq!(spelling("-5.").len(), 1);
    }

    /// Found left by sessions 9-13: `="1234.50"` (a spreadsheet export keeping a cell as
    /// text) was refused as "not an amount" though IDs so wrapped were read.
    #[test]
    fn spreadsheet_text_markers_are_read_through_and_logged() {
        assert_eq!(Fen::parse_yuan("=\"1234.50\""), Ok(Fen(123_450)));
        assert_eq!(Fen::parse_yuan(" '1,234.5 "), Ok(Fen(123_450)));
        assert_eq!(Fen::parse_yuan("=\"－５\""), Ok(Fen(-500)));
        assert!(Fen::parse_yuan("=\"12.345\"").is_err());
        assert!(
            Fen::parse_yuan("=1234.50").is_err(),
            "a formula, not a text marker"
        );
        assert!(Fen::parse_yuan("=\"\"").is_err());
        let kinds = |s: &str| spelling(s).into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        assert_eq!(kinds("=\"1234.50\""), ["money_spreadsheet_formula"]);
        assert_eq!(
            kinds("'1,234.50"),
            ["money_spreadsheet_quote", "money_thousands"]
        );
        assert!(kinds("=\"abc\"").is_empty());
        assert!(
            !spelling("=\"1234.50\"")[0].1.contains("1234"),
            "never the value"
        );
    }

    #[test]
    fn respelled_amounts_name_each_change_and_plain_ones_none() {
        let kinds = |s: &str| spelling(s).into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        assert!(kinds("1234.50").is_empty());
        assert!(kinds("-12").is_empty());
        assert!(
            kinds("abc").is_empty(),
            "refused values are not normalisations"
        );
        assert_eq!(
            kinds("¥1,234,567.50"),
            vec!["money_currency_sign", "money_thousands"]
        );
        assert_eq!(
            spelling("¥1,234,567.50")[1].1,
            "2 thousands separator(s) U+002C removed"
        );
        assert_eq!(
            kinds(" +12.500"),
            vec!["money_whitespace", "money_plus_sign", "money_zero_decimals"]
        );
        assert_eq!(spelling("￥3")[0].1, "U+FFE5 removed");
        // a minus sign before zero (found by the session-14 attack: read without a record)
        assert_eq!(kinds("-0"), vec!["money_negative_zero"]);
        assert_eq!(kinds("-0.00"), vec!["money_negative_zero"]);
        assert!(kinds("0").is_empty() && kinds("-0.01").is_empty());
        assert_eq!(Fen::parse_yuan("-0.00"), Ok(Fen(0)));
    }

    #[test]
    fn yuan_strings_parse_exactly_to_fen() {
        assert_eq!(Fen::parse_yuan("1234.50"), Ok(Fen(123450)));
        assert_eq!(Fen::parse_yuan("1234.5"), Ok(Fen(123450)));
        assert_eq!(Fen::parse_yuan("1234"), Ok(Fen(123400)));
        assert_eq!(Fen::parse_yuan("0.07"), Ok(Fen(7)));
        assert_eq!(Fen::parse_yuan(".5"), Ok(Fen(50)));
        assert_eq!(Fen::parse_yuan("-12.05"), Ok(Fen(-1205)));
        assert_eq!(Fen::parse_yuan("1,234,567.89"), Ok(Fen(123456789)));
        assert_eq!(Fen::parse_yuan("¥465.00"), Ok(Fen(46500)));
        assert_eq!(Fen::parse_yuan("1.2300"), Ok(Fen(123)));
        // 0.1 + 0.2 style float traps do not exist here
        assert_eq!(Fen::parse_yuan("9007199254.93"), Ok(Fen(900719925493)));
        // the bound: 10^12 yuan is accepted, a fen more is not (sums must stay inside i64)
        assert_eq!(
            Fen::parse_yuan("1,000,000,000,000.00"),
            Ok(Fen(100_000_000_000_000))
        );
        assert_eq!(
            Fen::parse_yuan("-1000000000000"),
            Ok(Fen(-100_000_000_000_000))
        );
        assert_eq!(
            Fen::parse_yuan("1000000000000.01"),
            Err(MoneyError::OutOfRange)
        );
        assert_eq!(
            Fen::parse_yuan("92233720368547758.07"),
            Err(MoneyError::OutOfRange)
        );
    }

    #[test]
    fn bad_amounts_are_rejected_with_a_reason() {
        assert_eq!(Fen::parse_yuan(""), Err(MoneyError::Empty));
        assert_eq!(Fen::parse_yuan("12.345"), Err(MoneyError::TooManyDecimals));
        assert_eq!(Fen::parse_yuan("12a"), Err(MoneyError::NotANumber(3)));
        assert_eq!(Fen::parse_yuan("1e5"), Err(MoneyError::NotANumber(2)));
        // a decimal comma or a misplaced separator is refused, never read as thousands
        assert!(Fen::parse_yuan("14,06").is_err());
        assert!(Fen::parse_yuan("14060,5").is_err());
        assert!(Fen::parse_yuan(",123").is_err());
        assert!(Fen::parse_yuan("1234,567.00").is_err());
        assert_eq!(Fen::parse_yuan("."), Err(MoneyError::NotANumber(0)));
        assert_eq!(
            Fen::parse_yuan("99999999999999999999"),
            Err(MoneyError::OutOfRange)
        );
    }

    #[test]
    fn fen_prints_as_yuan() {
        assert_eq!(Fen(123450).to_yuan(), "1234.50");
        assert_eq!(Fen(-5).to_yuan(), "-0.05");
        assert_eq!(Fen(0).to_string(), "0.00");
        assert_eq!(Fen(10).to_yuan(), "0.10");
        assert_eq!(Fen(-123_456_789).to_yuan(), "-1234567.89");
        assert_eq!(Fen(i64::MIN).to_yuan(), "-92233720368547758.08");
    }

    #[test]
    fn rounding_is_half_up() {
        assert_eq!(div_round_half_up(5, 10), 1);
        assert_eq!(div_round_half_up(4, 10), 0);
        assert_eq!(div_round_half_up(-5, 10), -1);
        assert_eq!(div_round_half_up(15, 10), 2);
    }

    proptest::proptest! {
        #[test]
        fn the_money_parser_never_panics(s in "\\PC{0,24}") {
            let _ = Fen::parse_yuan(&s);
        }

        #[test]
        fn what_it_prints_it_parses_back(v in -100_000_000_000_000i64..=100_000_000_000_000) {
            proptest::prop_assert_eq!(Fen::parse_yuan(&Fen(v).to_yuan()), Ok(Fen(v)));
        }
    }
}
