//! Domain types with `parse()`: identity numbers, names, region codes, money and dates.
//!
//! Every value that enters the engine from a file or an API passes through one of these
//! parsers; PII types (`IdNumber`, `Name`) print masked.

pub mod date;
pub mod id_number;
pub mod money;
pub mod name;
pub mod region;

pub use date::{DateError, DateValue, Month, parse_date, parse_day};
pub use id_number::{AsOfDay, IdError, IdNumber, IdRepair, mask};
pub use money::{Fen, MoneyError};
pub use name::{Name, NameError, NameRepair};
pub use region::{RegionCode, RegionError};

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

/// The distinct full-width characters of `raw`, as code points, for a normalisation detail.
pub(crate) fn full_width_points(raw: &str) -> String {
    id_number::code_points(
        raw.chars()
            .filter(|c| matches!(c, '\u{FF01}'..='\u{FF5E}' | '\u{3000}')),
    )
}
