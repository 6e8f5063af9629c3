//! What a workbook cell's number format says about the unit of the number it holds
//! (ECMA-376 Part 1 §18.8.31 numFmt, the Excel format-code grammar).
//!
//! Found by session 28's attack: an .xlsx amount cell holding `12.5` with the format
//! `0.00"万元"` shows `12.50万元` in every spreadsheet, and was read as 12.50 yuan, 10,000
//! times too small. A format's literal text is a unit the clerk sees, so it is read:
//! - `0.00"万元"`, `#,##0.00"万"`, `[$万元]0.00`: the number is in 万元 ([`FormatUnit::Wan`]);
//! - `0!.0000"万"`, `0"."0000"万元"`, `0.0,"万"`: a yuan amount *shown* in 万 by a literal
//!   decimal point or a scaling comma (the spreadsheet trick for 万 display); the number is
//!   yuan ([`FormatUnit::YuanShownInWan`]);
//! - any other count word (`千元`, `百万`, `亿元`), or sections that disagree on the unit:
//!   [`FormatUnit::Unclear`], refused, never guessed.

/// The unit a money cell's number format gives the number it stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FormatUnit {
    /// No unit word: the number is read as the column's unit says.
    Plain,
    /// The number is in 万元 (10,000 yuan): `0.00"万元"`.
    Wan,
    /// The number is yuan, shown in 万 by a literal decimal point or a scaling comma
    /// (`0!.0000"万"`, `0.0,"万"`).
    YuanShownInWan,
    /// A count word hedui does not convert (千, 百万, 亿), or sections that disagree.
    Unclear,
}

/// A token of one format section.
#[derive(Debug, PartialEq)]
enum Tok {
    /// `0`, `#` or `?`.
    Digit,
    /// The decimal point `.`.
    Dot,
    /// `,`: a thousands separator between digit placeholders, a ÷1,000 after the last one.
    Comma,
    /// A literal `.` (`\.`, `!.`, `"."`).
    LitDot,
    /// Literal text (quoted, escaped, a `[$…]` currency text, or a bare non-ASCII letter).
    Lit(String),
    /// `@`: a text section.
    Text,
    /// A condition (`[>=10000]`).
    Condition,
}

/// The sections of a format code (split at `;` outside quotes, brackets and escapes).
fn sections(code: &str) -> Vec<Vec<Tok>> {
    let mut out = vec![Vec::new()];
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        let toks = out.last_mut().expect("one section at least");
        match c {
            ';' => out.push(Vec::new()),
            '"' => {
                let mut s = String::new();
                for q in chars.by_ref() {
                    if q == '"' {
                        break;
                    }
                    s.push(q);
                }
                toks.push(if s == "." { Tok::LitDot } else { Tok::Lit(s) });
            }
            '\\' | '!' => match chars.next() {
                Some('.') => toks.push(Tok::LitDot),
                Some(q) => toks.push(Tok::Lit(q.to_string())),
                None => {}
            },
            '_' | '*' => {
                chars.next();
            }
            '[' => {
                let mut s = String::new();
                for q in chars.by_ref() {
                    if q == ']' {
                        break;
                    }
                    s.push(q);
                }
                if let Some(cur) = s.strip_prefix('$') {
                    // `[$万元-804]`: the text before the locale
                    let text = cur.split('-').next().unwrap_or("");
                    toks.push(Tok::Lit(text.to_string()));
                } else if s.starts_with(['<', '>', '=']) {
                    toks.push(Tok::Condition);
                }
            }
            '0' | '#' | '?' => toks.push(Tok::Digit),
            '.' => toks.push(Tok::Dot),
            ',' => toks.push(Tok::Comma),
            '@' => toks.push(Tok::Text),
            c if !c.is_ascii() => toks.push(Tok::Lit(c.to_string())),
            _ => {}
        }
    }
    out
}

/// Count words hedui does not convert (thousands, hundreds of 万, 亿).
const OTHER_COUNTS: [char; 8] = ['千', '仟', '百', '佰', '十', '拾', '亿', '億'];

/// One section's unit (`None`: a text section, or one with no digit placeholder).
fn section_unit(toks: &[Tok]) -> Option<FormatUnit> {
    if toks.contains(&Tok::Text) || !toks.contains(&Tok::Digit) {
        return None;
    }
    let text: String = toks
        .iter()
        .filter_map(|t| match t {
            Tok::Lit(s) => Some(s.as_str()),
            _ => None,
        })
        .collect();
    let wan = text.contains(['万', '萬']);
    if text.contains(OTHER_COUNTS) {
        return Some(FormatUnit::Unclear);
    }
    if !wan {
        return Some(FormatUnit::Plain);
    }
    let digit_at = |from: usize, back: bool| {
        if back {
            toks[..from].contains(&Tok::Digit)
        } else {
            toks[from + 1..].contains(&Tok::Digit)
        }
    };
    let literal_dot = toks
        .iter()
        .enumerate()
        .any(|(i, t)| *t == Tok::LitDot && digit_at(i, true) && digit_at(i, false));
    // a comma after a digit whose next digit-or-dot is not a digit scales by 1,000
    let scaling = toks.iter().enumerate().any(|(i, t)| {
        *t == Tok::Comma
            && digit_at(i, true)
            && toks[i + 1..]
                .iter()
                .find(|t| matches!(t, Tok::Digit | Tok::Dot))
                .is_none_or(|t| *t == Tok::Dot)
    });
    Some(if literal_dot || scaling {
        FormatUnit::YuanShownInWan
    } else {
        FormatUnit::Wan
    })
}

/// The unit the format `code` gives the number `v` (the section Excel shows `v` with: the
/// first for a positive number, the second for a negative one, the third for zero; every
/// numeric section when one has a condition such as `[>=10000]`, and [`FormatUnit::Unclear`]
/// when those disagree on 万).
pub(crate) fn format_unit(code: &str, v: f64) -> FormatUnit {
    if code.eq_ignore_ascii_case("general")
        || !code.contains(['万', '萬']) && !code.contains(OTHER_COUNTS)
    {
        return FormatUnit::Plain;
    }
    let secs = sections(code);
    let conditional = secs.iter().any(|s| s.contains(&Tok::Condition));
    let units: Vec<FormatUnit> = if conditional {
        secs.iter()
            .take(3)
            .filter_map(|s| section_unit(s))
            .collect()
    } else {
        let i = match (v, secs.len()) {
            (v, n) if v < 0.0 && n >= 2 => 1,
            (v, n) if v == 0.0 && n >= 3 => 2,
            _ => 0,
        };
        secs.get(i)
            .and_then(|s| section_unit(s))
            .into_iter()
            .collect()
    };
    if units.contains(&FormatUnit::Unclear) {
        FormatUnit::Unclear
    } else if units.contains(&FormatUnit::Wan) {
        if units.iter().all(|u| *u == FormatUnit::Wan) {
            FormatUnit::Wan
        } else {
            FormatUnit::Unclear
        }
    } else if units.contains(&FormatUnit::YuanShownInWan) {
        FormatUnit::YuanShownInWan
    } else {
        FormatUnit::Plain
    }
}

#[cfg(test)]
mod tests {
    use super::{FormatUnit::*, format_unit};

    #[test]
    fn formats_are_read_for_the_unit_of_the_number_they_show() {
        for (code, v, want) in [
            ("General", 12.5, Plain),
            ("0.00", 12.5, Plain),
            ("#,##0.00\"元\"", 12.5, Plain),
            ("¥#,##0.00;[Red]-¥#,##0.00", -3.0, Plain),
            ("0.00\"万元\"", 12.5, Wan),
            ("#,##0.00\"万\"", 12.5, Wan),
            ("0.00\\万\\元", 12.5, Wan),
            ("0.00万元", 12.5, Wan),
            ("[$万元-804]0.00", 12.5, Wan),
            ("0.00\"萬元\"", 12.5, Wan),
            ("0.00\"万元\";-0.00\"万元\"", -1.0, Wan),
            // the 万 display of a yuan amount
            ("0!.0000\"万\"", 123456.0, YuanShownInWan),
            ("0\\.0000\"万元\"", 123456.0, YuanShownInWan),
            ("0\".\"0000\"万\"", 123456.0, YuanShownInWan),
            ("0.0,\"万\"", 123456.0, YuanShownInWan),
            ("#,##0,\"万\"", 123456.0, YuanShownInWan),
            ("[>=10000]0!.0000\"万\";0.00", 123456.0, YuanShownInWan),
            ("[>=10000]0!.0000\"万\";0.00", 12.0, YuanShownInWan),
            // a thousands separator is no scaling
            ("#,##0.00\"万元\"", 1234.5, Wan),
            // other count words, and sections that disagree
            ("0.00\"千元\"", 12.5, Unclear),
            ("0.00\"百万元\"", 12.5, Unclear),
            ("0.00\"亿元\"", 1.5, Unclear),
            ("[>=1]0.00\"万元\";0.00", 12.5, Unclear),
            // the section shown: a negative amount with a plain second section
            ("0.00\"万元\";-0.00", -1.0, Plain),
            ("0.00\"万元\";-0.00", 1.0, Wan),
            // a text section says nothing of numbers
            ("0.00;-0.00;0;@\"万元\"", 1.0, Plain),
        ] {
            assert_eq!(format_unit(code, v), want, "{code} for {v}");
        }
    }
}
