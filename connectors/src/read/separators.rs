// The characters a number's digits are read through, one list for the reader (this crate's
// `shown`, which masks names and ID numbers in the reader's words) and the main crate's
// `domain::id_number` (the API's and the batch's checks for an ID number in any spelling),
// which includes this file (`include!`): its fuzz crate compiles `id_number.rs` without this
// crate, so the list is shared as a file, not as an item.

/// Characters that print as nothing or turn the text around (Unicode format characters:
/// zero-width space and joiners, soft hyphen, word joiner, BOM, the bidirectional marks,
/// embeddings, overrides and isolates). Text pasted from a word processor or a web page
/// carries them between digits; in a household_id or a purpose (logged, audited, shown on
/// pages) they let `APP\u{202e}1000-PPA` read as another application's id.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00ad}'
            | '\u{061c}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
    )
}

/// Whether `c` may stand between the digits of a number written in groups
/// (`6205 0319 7503 2454 0X`, `620503-1975-0324-540X`, `6205.0319.…`, `6 2 0 5 …`): white
/// space (U+3000 too), hyphens and dashes (superscript and subscript minus too), full stops and middle dots, `/`, `_` and commas,
/// ASCII or full-width, and the characters that print as nothing ([`is_invisible`]:
/// `6\u{200b}2\u{200b}0…` reads as `620…`; session 17's attack named such a key back as
/// `6?2?0?…` and took such a token label).
///
/// Not colons, `+` or `|` (tried in session 18): they join a date, a time and its offset
/// (`2026-11-01 10:30:00+08:00`) or a sum (`12,000.00+3,500.00`) into 15 digits or more, some
/// 15 of which read as a legacy number's date, so ordinary purposes and labels were refused
/// and headers masked. The main crate reads an 18-character ID number with its check
/// character through them (`domain::id_number::loose_id_numbers`); the reader's masking of
/// its own words does not.
pub fn is_digit_separator(c: char) -> bool {
    c.is_whitespace()
        || is_invisible(c)
        // combining marks, the keycap and variation selectors after a digit (`6️⃣`, `6́`):
        // between two digits they join them (session 22's third attack)
        || matches!(c, '\u{0300}'..='\u{036f}' | '\u{20d0}'..='\u{20ff}' | '\u{fe00}'..='\u{fe0f}')
        || matches!(
            c,
            '-' | '\u{2010}'
                ..='\u{2015}'
                    | '\u{2212}'
                    | '\u{207b}'
                    | '\u{208b}'
                    | '\u{ff0d}'
                    | '.'
                    | '\u{ff0e}'
                    | '\u{00b7}'
                    | '\u{30fb}'
                    | '/'
                    | '\u{ff0f}'
                    | '_'
                    | '\u{ff3f}'
                    | ','
                    | '\u{ff0c}'
        )
}
