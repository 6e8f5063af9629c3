//! The real-world fault cases (`tests/data/cases/`, copied from the shared case collection)
//! read through the connectors' front-end and hedui's domain parsers, each asserted against
//! its right value.
//!
//! The case files are not §2 tables (they carry columns like 序号, 申请日期, 月保障金额), so
//! they are read with `prepare_generic` (decode, delimiter, header, repeated headers; every
//! column kept under its own header); where a case's columns have §2 meanings, it is also
//! read through a §2 field map with `prepare`. "Line" is the physical line of the original
//! file; "row" is the 1-based data row the case table speaks of.

use std::path::PathBuf;

use chrono::NaiveDate;
use hedui::domain::date::{from_excel_serial, parse_date};
use hedui::domain::id_number::PLACEHOLDERS;
use hedui::domain::{DateError, DateValue, Fen, IdError, IdNumber, IdRepair, Month, Name};
use hedui_connectors::read::{Prepared, TextTable, prepare, prepare_generic};

fn case(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/cases")
        .join(name)
}

fn as_of() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
}

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn read(name: &str) -> (Prepared, TextTable) {
    let p = prepare_generic(&case(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let t = p.read_text().unwrap_or_else(|e| panic!("{name}: {e}"));
    (p, t)
}

fn id(raw: &str) -> (IdNumber, Vec<IdRepair>) {
    IdNumber::parse(raw, as_of()).unwrap_or_else(|e| panic!("{}: {e}", hedui::domain::mask(raw)))
}

#[test]
fn c01_a_gbk_caseload_is_decoded_with_gb18030_never_lossy() {
    let (p, t) = read("C01_gbk_caseload.csv");
    assert_eq!(p.encoding, "gb18030");
    assert!(
        p.notes
            .iter()
            .any(|n| n.contains("GB18030 decoder") && n.contains("byte offset")),
        "{:?}",
        p.notes
    );
    assert_eq!(
        t.columns,
        vec!["序号", "户主姓名", "身份证号", "家庭人口", "月保障金额(元)"]
    );
    assert_eq!(t.rows.len(), 3);
    assert_eq!(t.values("户主姓名"), vec!["王秀兰", "李建国", "马福祥"]);
    assert_eq!(
        t.values("身份证号"),
        vec![
            "620503198703151234",
            "620503196207080319",
            "620503195809200176"
        ]
    );
    assert_eq!(
        t.values("月保障金额(元)"),
        vec!["1260.00", "465.00", "1680.00"]
    );
    assert_eq!(t.lines, vec![Some(2), Some(3), Some(4)]);
    for raw in t.values("身份证号") {
        assert_eq!(id(raw), (IdNumber::parse(raw, as_of()).unwrap().0, vec![]));
        assert_eq!(id(raw).0.expose(), raw, "kept as a string, digit for digit");
    }
    for n in t.values("户主姓名") {
        assert!(Name::parse(n).is_ok(), "no U+FFFD or ? in a decoded name");
    }
    let fen: Vec<Fen> = t
        .values("月保障金额(元)")
        .iter()
        .map(|v| Fen::parse_yuan(v).unwrap())
        .collect();
    assert_eq!(fen, vec![Fen(126_000), Fen(46_500), Fen(168_000)]);
    // The same file through the members field map: 户主姓名 → name, 身份证号 → id_number.
    let m = prepare(
        &case("C01_gbk_caseload.csv"),
        "members",
        &["id_number", "name"],
    )
    .unwrap();
    let mt = m.read_text().unwrap();
    assert_eq!(mt.values("name"), vec!["王秀兰", "李建国", "马福祥"]);
    assert_eq!(mt.values("id_number"), t.values("身份证号"));
}

#[test]
fn c03_a_second_bom_and_header_is_skipped_and_reported_never_a_person() {
    let (p, t) = read("C03_bom_header.csv");
    assert_eq!(p.encoding, "utf-8-bom");
    assert_eq!(
        t.columns[0], "身份证号",
        "the BOM is not part of the first column's name"
    );
    assert_eq!(p.repeated_headers, vec![4]);
    assert_eq!(t.rows.len(), 3, "exactly 3 persons");
    assert_eq!(t.values("姓名"), vec!["王秀兰", "李建国", "张秀英"]);
    assert_eq!(
        t.values("身份证号"),
        vec![
            "620503198703151234",
            "620503196207080319",
            "620502197501010467"
        ]
    );
    assert_eq!(t.lines, vec![Some(2), Some(3), Some(5)]);
    let keys: std::collections::BTreeSet<u64> =
        t.values("身份证号").iter().map(|v| id(v).0.key()).collect();
    assert_eq!(keys.len(), 3);
    // Through a field map too.
    let m = prepare(
        &case("C03_bom_header.csv"),
        "members",
        &["id_number", "name"],
    )
    .unwrap();
    assert_eq!(m.repeated_headers, vec![4]);
    assert_eq!(
        m.read_text().unwrap().values("name"),
        vec!["王秀兰", "李建国", "张秀英"]
    );
}

#[test]
fn c04_excel_mangled_ids_are_refused_and_text_markers_repaired_and_recorded() {
    let (p, t) = read("C04_excel_mangled_ids.csv");
    assert!(p.is_passthrough(), "a plain UTF-8 CSV is read as it is");
    let raws = t.values("身份证号");
    assert_eq!(
        raws,
        vec![
            "6.20503E+17",
            "620503198703151000",
            "'62050219900101118X",
            "=\"620503199505050015\"",
            "\t620503196904120523"
        ],
        "ID columns are read as text, exactly as written"
    );
    // Row 1: scientific notation, digits lost: refused, never repaired.
    let e1 = IdNumber::parse(raws[0], as_of()).unwrap_err();
    assert_eq!(
        (e1.clone(), e1.code()),
        (IdError::Scientific, "id_scientific_notation")
    );
    // Row 2: check character fails, ends in 000: refused as digits lost.
    let e2 = IdNumber::parse(raws[1], as_of()).unwrap_err();
    assert_eq!(e2.code(), "id_digits_lost");
    assert!(matches!(
        e2,
        IdError::CheckCharacter {
            digits_lost: true,
            ..
        }
    ));
    // Rows 3-5: the marker is stripped and the repair recorded per row.
    let ok: Vec<(String, Vec<IdRepair>)> = raws[2..]
        .iter()
        .map(|r| id(r))
        .map(|(i, rep)| (i.expose(), rep))
        .collect();
    assert_eq!(
        ok,
        vec![
            (
                "62050219900101118X".to_string(),
                vec![IdRepair::SpreadsheetMarker]
            ),
            (
                "620503199505050015".to_string(),
                vec![IdRepair::SpreadsheetMarker]
            ),
            ("620503196904120523".to_string(), vec![IdRepair::Trimmed]),
        ]
    );
    // The lines a clerk is told: data row r is on line r + 1.
    assert_eq!((p.line_of(0), p.line_of(1)), (Some(2), Some(3)));
    // The kind, not only the file: every spreadsheet marker and scientific spelling.
    for raw in [
        "'620503199505050015",
        "=\"620503199505050015\"",
        "\u{3000}'620503199505050015",
        "\t620503199505050015\t",
    ] {
        assert_eq!(id(raw).0.expose(), "620503199505050015", "{raw:?}");
        assert!(!id(raw).1.is_empty(), "the repair is recorded for {raw:?}");
    }
    for raw in ["6.20503E+17", "6.20503e+17", "6.205032E+17", "'6.20503E+17"] {
        assert_eq!(
            IdNumber::parse(raw, as_of()),
            Err(IdError::Scientific),
            "{raw:?}"
        );
    }
    for raw in PLACEHOLDERS {
        assert_eq!(
            IdNumber::parse(raw, as_of()),
            Err(IdError::Missing),
            "placeholder {raw:?} is never a key"
        );
    }
}

#[test]
fn c05_a_lowercase_x_links_one_person_and_keeps_the_original_spelling() {
    let (_, t) = read("C05_lowercase_x.csv");
    let raws = t.values("身份证号");
    assert_eq!(
        raws,
        vec!["62050319880808105x", "62050319880808105X"],
        "the original spelling is kept for audit"
    );
    let (a, ra) = id(raws[0]);
    let (b, rb) = id(raws[1]);
    assert_eq!(a.expose(), "62050319880808105X");
    assert_eq!(
        a.key(),
        b.key(),
        "one person (赵丽) across both departments"
    );
    assert_eq!((ra, rb), (vec![IdRepair::LowercaseX], vec![]));
    assert_eq!(t.values("姓名"), vec!["赵丽", "赵丽"]);
    assert_eq!(t.values("金额"), vec!["465.00", "0.00"]);
}

#[test]
fn c06_full_width_and_grouped_ids_normalise_and_the_repair_is_recorded() {
    let (_, t) = read("C06_fullwidth_id.csv");
    assert_eq!(
        t.values("姓名"),
        vec!["周建华", "吴秀梅", "郑国庆", "冯玉兰"]
    );
    let got: Vec<(String, Vec<IdRepair>)> = t
        .values("身份证号")
        .iter()
        .map(|r| id(r))
        .map(|(i, rep)| (i.expose(), rep))
        .collect();
    assert_eq!(
        got,
        vec![
            ("620503197911203575".to_string(), vec![IdRepair::FullWidth]),
            ("62052119660303101X".to_string(), vec![IdRepair::FullWidth]),
            (
                "620503198302140462".to_string(),
                vec![IdRepair::InnerSpaces]
            ),
            (
                "62052219711009104X".to_string(),
                vec![IdRepair::InnerSpaces]
            ),
        ]
    );
    // The kind: a lowercase full-width ｘ, and grouping with hyphens.
    assert_eq!(
        id("６２０５２１１９６６０３０３１０１ｘ").0.expose(),
        "62052119660303101X"
    );
    assert_eq!(id("620503-19830214-0462").0.expose(), "620503198302140462");
}

#[test]
fn c12_legacy_15_digit_ids_upgrade_or_are_refused_with_a_reason() {
    let (_, t) = read("C12_legacy_15digit.csv");
    let raws = t.values("身份证号");
    assert_eq!(
        t.values("姓名"),
        vec!["马德福", "马德福", "马秀珍", "杨桂花"]
    );
    let (r1, rep1) = id(raws[0]);
    assert_eq!(r1.expose(), "62050319480612031X");
    assert_eq!(rep1, vec![IdRepair::Legacy15]);
    assert_eq!(
        r1.key(),
        id(raws[1]).0.key(),
        "one person (马德福) with row 2"
    );
    assert_eq!(
        IdNumber::parse(raws[2], as_of()),
        Err(IdError::ImpossibleDate("19520231".into()))
    );
    assert_eq!(
        IdNumber::parse(raws[3], as_of()),
        Err(IdError::BadCharacter { position: 8 })
    );
    // Sequence codes 996-999 (centenarians born 18xx): the century is not assumed.
    for seq in ["996", "997", "998", "999"] {
        let raw = format!("620503480612{seq}");
        let e = IdNumber::parse(&raw, as_of()).unwrap_err();
        assert_eq!(
            (e.clone(), e.code()),
            (
                IdError::AmbiguousCentury(seq.into()),
                "id_ambiguous_century"
            )
        );
    }
}

#[test]
fn c13_ten_date_spellings_each_get_their_right_outcome() {
    let (p, t) = read("C13_date_formats.csv");
    assert_eq!(t.columns, vec!["序号", "身份证号", "申请日期"]);
    let v = t.values("申请日期");
    assert_eq!(v.len(), 10);
    let d = DateValue::Day(day("2021-09-08"));
    for row in [1, 2, 3, 4, 5, 7] {
        assert_eq!(parse_date(v[row - 1]), Ok(d), "row {row}: {}", v[row - 1]);
    }
    // Row 6: 44447 is a date only by the explicit Excel-serial rule, never the year 44447.
    assert_eq!(parse_date(v[5]), Err(DateError::NotADate));
    assert_eq!(
        from_excel_serial(v[5].parse().unwrap()),
        Some(day("2021-09-08"))
    );
    // Row 8: Chinese numerals.
    assert_eq!(parse_date(v[7]), Ok(d));
    // Row 9: no year: refused, naming row 9 (line 10) and 申请日期, never the current year.
    assert_eq!(parse_date(v[8]), Err(DateError::NoYear));
    assert_eq!(DateError::NoYear.code(), "date_no_year");
    assert_eq!((t.lines[8], p.line_of(8)), (Some(10), Some(10)));
    assert!(t.column("申请日期").is_some());
    // Row 10: month precision kept as such, never day 1.
    assert_eq!(
        parse_date(v[9]),
        Ok(DateValue::Month(Month {
            year: 2021,
            month: 9
        }))
    );
    // The family, not only the file.
    for s in [
        "2021-09-08",
        "2021/9/8",
        "2021.09.08",
        "20210908",
        "2021年9月8日",
        "2021年09月08日",
        "二〇二一年九月八日",
        "2021-09-08 00:00:00",
    ] {
        assert_eq!(parse_date(s), Ok(d), "{s}");
    }
    for s in ["9月8日", "九月八日", "09-08"] {
        assert!(parse_date(s).is_err(), "{s} has no year");
    }
}

#[test]
fn c16_excel_unicode_text_is_read_as_utf16le_tab_separated() {
    let (p, t) = read("C16_utf16le_unicode_text.txt");
    assert_eq!(p.encoding, "utf-16le");
    assert_eq!(p.delimiter, Some('\t'));
    assert_eq!(t.columns, vec!["姓名", "身份证号", "户籍地"]);
    assert_eq!(
        t.rows,
        vec![
            vec!["王秀兰", "620503198703151234", "甘肃省天水市麦积区"],
            vec!["张秀英", "620502197501010467", "甘肃省天水市秦州区"],
        ]
    );
    assert_eq!(t.lines, vec![Some(2), Some(3)]);
}
