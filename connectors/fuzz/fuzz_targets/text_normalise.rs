//! Fuzz target: arbitrary bytes → read as a department CSV (encoding, delimiter, header,
//! repeated headers, field-map matching, 万元 conversion) → every cell through the ID,
//! name, date and money normalisers.
//!
//! Invariants (a violation panics, which libFuzzer reports as a crash):
//! - nothing panics on any input;
//! - a prepared file is canonical CSV: as many fields per row as columns, one physical line
//!   per row, lines strictly increasing after the header; every refused row is after it;
//! - an accepted or repaired ID number is 18 characters, passes GB 11643-1999 MOD 11-2
//!   (checked here independently), re-parses to itself with no repair, and a value that
//!   reports no repair was already in normal form;
//! - an accepted name holds no `?`/U+FFFD and is a fixed point (normalising it again changes
//!   nothing);
//! - an accepted date or month prints as ISO and parses back to itself;
//! - an accepted amount prints as yuan and parses back to the same fen.
//!
//! The first input byte picks the table (generic, or one of the 15 field maps); the rest
//! is the file.
#![no_main]

use std::io::Write;
use std::sync::OnceLock;

use chrono::NaiveDate;
use hedui_connectors_fuzz::domain::date::{DateValue, Month, parse_date};
use hedui_connectors_fuzz::domain::id_number::IdNumber;
use hedui_connectors_fuzz::domain::money::Fen;
use hedui_connectors_fuzz::domain::name::Name;
use hedui_connectors_fuzz::read::{TABLES, prepare_text};
use hedui_connectors_fuzz::{CaseloadTable, SourceKind};
use libfuzzer_sys::fuzz_target;

fn dir() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a temp dir for the fuzz input"))
}

/// GB 11643-1999 §5.1, written again here so the parser is not checked against itself.
fn mod11_2_ok(id: &str) -> bool {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let b = id.as_bytes();
    if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let s: u32 = b[..17]
        .iter()
        .zip(W)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    b[17] == b"10X98765432"[(s % 11) as usize]
}

fn check_cell(v: &str, as_of: NaiveDate) {
    if let Ok((id, repairs)) = IdNumber::parse(v, as_of) {
        let s = id.expose();
        assert!(mod11_2_ok(&s), "accepted ID fails MOD 11-2");
        let (again, r2) = IdNumber::parse(&s, as_of).expect("a normal ID re-parses");
        assert_eq!(again, id);
        assert!(r2.is_empty());
        if repairs.is_empty() {
            assert_eq!(v, s, "no repair recorded, yet the value changed");
        }
        assert!(id.birth_date() <= as_of);
    }
    if let Ok((n, _)) = Name::parse(v) {
        let t = n.expose();
        assert!(!t.is_empty());
        assert!(!t.contains(['?', '？', '\u{fffd}']));
        let (again, r2) = Name::parse(t).expect("a normalised name re-parses");
        assert_eq!(again.expose(), t, "name normalisation is not idempotent");
        assert!(r2.is_empty(), "a normalised name is repaired again: {r2:?}");
    }
    match parse_date(v) {
        Ok(DateValue::Day(d)) => {
            let iso = d.format("%Y-%m-%d").to_string();
            assert_eq!(iso.len(), 10, "a date outside years 1000-9999 accepted");
            assert_eq!(parse_date(&iso), Ok(DateValue::Day(d)));
        }
        Ok(DateValue::Month(m)) => {
            let iso = m.to_string();
            assert_eq!(iso.len(), 7, "a month outside years 1000-9999 accepted");
            assert_eq!(parse_date(&iso), Ok(DateValue::Month(m)));
            assert_eq!(Month::parse(&iso), Ok(m));
        }
        Err(_) => {}
    }
    if let Ok(m) = Month::parse(v) {
        assert!((1..=12).contains(&m.month));
        let iso = m.to_string();
        assert_eq!(Month::parse(&iso), Ok(m), "month does not round-trip");
    }
    if let Ok(f) = Fen::parse_yuan(v) {
        assert_eq!(
            Fen::parse_yuan(&f.to_yuan()),
            Ok(f),
            "amount does not round-trip"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let as_of = NaiveDate::from_ymd_opt(2026, 11, 1).expect("a date");
    let pick = usize::from(pick) % (TABLES.len() + 1);
    let (table, required): (Option<&str>, Vec<&str>) = if pick == 0 {
        (None, Vec::new())
    } else {
        let t = TABLES[pick - 1];
        let req = match SourceKind::ALL.iter().find(|k| k.name() == t) {
            Some(k) => k.required_columns(),
            None => CaseloadTable::ALL
                .iter()
                .find(|c| c.name() == t)
                .map(|c| c.columns().iter().map(|c| c.name).collect())
                .unwrap_or_default(),
        };
        (Some(t), req)
    };
    let path = dir().path().join("input.csv");
    {
        let mut f = std::fs::File::create(&path).expect("write the fuzz input");
        f.write_all(body).expect("write the fuzz input");
    }
    let Ok(p) = prepare_text(&path, table, &required) else {
        return;
    };
    for r in &p.rejected {
        assert!(
            r.line > p.header_line,
            "a refused row at or above the header"
        );
        assert!(!r.reason.is_empty());
    }
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_path(&p.path)
        .expect("the prepared copy opens");
    let width = rdr.headers().expect("the prepared copy has a header").len();
    if table.is_some() {
        for c in &required {
            assert!(
                rdr.headers().unwrap().iter().any(|h| h == *c),
                "required column {c} missing from a prepared file"
            );
        }
    }
    let mut last_line = p.header_line;
    let mut n = 0u64;
    for rec in rdr.records() {
        let rec = rec.expect("the prepared copy is valid CSV");
        assert_eq!(rec.len(), width, "a prepared row of the wrong width");
        let line = p.line_of(n).expect("every prepared row has a line");
        assert!(line > last_line, "lines not increasing");
        last_line = line;
        n += 1;
        for v in rec.iter() {
            check_cell(v, as_of);
        }
    }
    if let Some(lines) = &p.line_of_row {
        assert_eq!(lines.len() as u64, n, "line map and rows disagree");
    }
});
