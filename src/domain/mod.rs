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

mod spelling;
pub use spelling::{
    chinese_vocabulary_word, half_width, spreadsheet_text, vocabulary_fold, whole_number_text,
    year_spelling,
};
pub(crate) use spelling::{
    full_width_points, invisible as spelling_invisible, invisible_points, spreadsheet_detail,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_read_through_markers_and_full_width_digits_and_say_so() {
        for raw in [
            "2025",
            " 2025 ",
            "２０２５",
            "'2025",
            "=\"2025\"",
            "=\"２０２５\"",
        ] {
            assert_eq!(whole_number_text(raw), "2025", "{raw}");
        }
        assert_eq!(whole_number_text("=2025"), "=2025");
        assert!(year_spelling("2025").is_empty());
        let kinds = |s: &str| {
            year_spelling(s)
                .into_iter()
                .map(|(k, _)| k)
                .collect::<Vec<_>>()
        };
        assert_eq!(kinds("２０２５"), ["year_fullwidth"]);
        assert_eq!(kinds("'2025"), ["year_spreadsheet_quote"]);
        // found by the session-14 attack: `+2025` read as 2025 without a record
        assert_eq!(whole_number_text("+2025").parse::<i64>(), Ok(2025));
        assert_eq!(kinds("+2025"), ["year_plus_sign"]);
        assert_eq!(kinds("＋２０２５"), ["year_fullwidth", "year_plus_sign"]);
        assert_eq!(
            kinds("=\"２０２５\""),
            ["year_spreadsheet_formula", "year_fullwidth"]
        );
        assert_eq!(spreadsheet_text(" '12 "), Some(("12", "quote")));
        assert_eq!(spreadsheet_text("12"), None);
    }
}
