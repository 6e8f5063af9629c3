//! How a value was spelled on its way in: spreadsheet text markers, full-width forms, whole
//! numbers and years. Kept apart from `mod.rs` so that the reader's fuzz crate
//! (`connectors/fuzz/`) compiles the same functions from this file.

/// The text inside a spreadsheet text marker, and the marker's kind: `="2025"` (a formula
/// a spreadsheet export writes to keep a cell as text; `"formula"`) or `'2025` (the leading
/// apostrophe Excel keeps a cell as text with; `"quote"`). `None` when `raw` (trimmed) has
/// neither. ID numbers have their own rule (`id_spreadsheet_formula`, `id_spreadsheet_quote`);
/// amounts and years are read through this one, the change logged per row
/// (`money_spreadsheet_formula`, `year_spreadsheet_quote`, …).
pub fn spreadsheet_text(raw: &str) -> Option<(&str, &'static str)> {
    let t = raw.trim();
    if let Some(inner) = t.strip_prefix("=\"").and_then(|r| r.strip_suffix('"')) {
        return Some((inner, "formula"));
    }
    t.strip_prefix('\'').map(|inner| (inner, "quote"))
}

/// What a spreadsheet text marker's removal is logged as (never the value).
pub(crate) fn spreadsheet_detail(marker: &str) -> &'static str {
    if marker == "formula" {
        "spreadsheet formula wrapper U+003D U+0022 … U+0022 (=\"…\") removed"
    } else {
        "leading spreadsheet text marker U+0027 (') removed"
    }
}

/// A whole number as written in a department's file, ready for `parse::<i64>()`: trimmed,
/// a spreadsheet text marker removed ([`spreadsheet_text`]), full-width digits as ASCII
/// ([`half_width`]). `２０２５`, `'2025` and `="2025"` all read `2025`.
pub fn whole_number_text(raw: &str) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    let t = spreadsheet_text(raw).map_or(raw, |(inner, _)| inner);
    match half_width(t) {
        Some(ascii) => Cow::Owned(ascii.trim().to_string()),
        None => Cow::Borrowed(t.trim()),
    }
}

/// The changes [`whole_number_text`] made to a year column's `raw`, for the per-row log:
/// `year_spreadsheet_formula` / `year_spreadsheet_quote`, `year_fullwidth` (never the value).
pub fn year_spelling(raw: &str) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let t = match spreadsheet_text(raw) {
        Some((inner, marker)) => {
            out.push((
                if marker == "formula" {
                    "year_spreadsheet_formula"
                } else {
                    "year_spreadsheet_quote"
                },
                spreadsheet_detail(marker).to_string(),
            ));
            inner
        }
        None => raw,
    };
    let ascii = half_width(t);
    if ascii.is_some() {
        out.push((
            "year_fullwidth",
            format!("{} → ASCII", full_width_points(t)),
        ));
    }
    // `+2025` reads as 2025 (found by the session-14 attack: without a record)
    if ascii.as_deref().unwrap_or(t).trim_start().starts_with('+') {
        out.push(("year_plus_sign", "leading U+002B (+) removed".to_string()));
    }
    out
}

/// `raw` with its full-width forms (U+FF01–U+FF5E: `１２３`, `．`, `，`, `－`, `／`) as
/// their ASCII twins and the ideographic space (U+3000) as a space, as a Chinese input method
/// types them; `None` when it has none. Amounts and dates are read through it (IDs have their
/// own rule, `id_fullwidth`); the change is logged per row (`money_fullwidth`,
/// `date_fullwidth`).
pub fn half_width(raw: &str) -> Option<String> {
    let wide = |c: char| matches!(c, '\u{FF01}'..='\u{FF5E}' | '\u{3000}');
    if !raw.chars().any(wide) {
        return None;
    }
    Some(
        raw.chars()
            .map(|c| match c {
                '\u{3000}' => ' ',
                '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
                _ => c,
            })
            .collect(),
    )
}

/// Zero-width and byte-order-mark characters (U+200B–U+200F, U+2060, U+FEFF): invisible in
/// a spreadsheet, typed by copying from web pages and word processors.
pub(crate) fn invisible(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{2060}' | '\u{feff}')
}

/// A vocabulary word (`urban`, `applicant`, `child`) as written in a department's file, ready
/// to be matched: full-width forms as ASCII ([`half_width`]) and invisible characters
/// ([`invisible`]) removed; `None` when `raw` has neither. Case and spaces are the caller's.
/// (Found by session 27's attack: `child` followed by U+200B was refused as `relation_unknown`.)
pub fn vocabulary_fold(raw: &str) -> Option<String> {
    let folded = half_width(raw);
    let t = folded.as_deref().unwrap_or(raw);
    if t.chars().any(invisible) {
        Some(t.chars().filter(|&c| !invisible(c)).collect())
    } else {
        folded
    }
}

/// The distinct invisible characters of `raw` ([`invisible`]), as code points, for a
/// normalisation detail.
pub(crate) fn invisible_points(raw: &str) -> String {
    super::id_number::code_points(raw.chars().filter(|&c| invisible(c)))
}

/// The distinct full-width characters of `raw`, as code points, for a normalisation detail.
pub(crate) fn full_width_points(raw: &str) -> String {
    super::id_number::code_points(
        raw.chars()
            .filter(|c| matches!(c, '\u{FF01}'..='\u{FF5E}' | '\u{3000}')),
    )
}
