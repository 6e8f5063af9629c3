//! Issue 3 black-box tests: the per-row normalisation log and caseload rows that the reader
//! refuses or cannot place (run the real binary on a generated county, then damage it the
//! way department exports are damaged).

use super::{County, summary};

/// The 15-digit legacy form of an 18-digit ID born in the 1900s.
fn legacy15(id: &str) -> String {
    format!("{}{}", &id[..6], &id[8..17])
}

fn full_width(id: &str) -> String {
    id.chars()
        .map(|c| match c {
            '0'..='9' => char::from_u32(0xFF10 + (c as u32 - '0' as u32)).unwrap(),
            'X' => '\u{FF38}',
            c => c,
        })
        .collect()
}

fn csv_rows(path: &std::path::Path) -> Vec<Vec<String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    r.records()
        .map(|x| x.unwrap().iter().map(str::to_string).collect())
        .collect()
}

#[test]
fn every_repaired_value_is_logged_per_row_and_determinations_do_not_change() {
    let c = County::new(150);
    let (out, clean) = c.batch("clean", &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // members.csv: data row 0 full-width, a 1900s member of another row in the legacy
    // 15-digit form, a name with a zero-width space and a no-break space around it.
    let mpath = c.data().join("members.csv");
    let mut m = csv_rows(&mpath);
    let head: Vec<String> = csv::Reader::from_path(&mpath)
        .unwrap()
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    let col = |h: &str| head.iter().position(|x| x == h).unwrap();
    let (icol, ncol) = (col("id_number"), col("name"));
    let id0 = m[0][icol].clone();
    m[0][icol] = full_width(&id0);
    let legacy_row = m
        .iter()
        .position(|r| r[icol].as_bytes()[6..8] == *b"19" && !r[icol].ends_with('X'))
        .filter(|&i| i > 0)
        .unwrap();
    let legacy_id = m[legacy_row][icol].clone();
    m[legacy_row][icol] = legacy15(&legacy_id);
    let name_row = if legacy_row == 1 { 2 } else { 1 };
    m[name_row][ncol] = format!("\u{a0}{}\u{200b}", m[name_row][ncol]);
    let mut w = csv::Writer::from_path(&mpath).unwrap();
    w.write_record(&head).unwrap();
    for r in &m {
        w.write_record(r).unwrap();
    }
    w.flush().unwrap();

    // bank.csv: a member's row with a spreadsheet quote and its balance as ¥ with
    // thousands separators (same amount); a row ending in X lower-cased.
    let bpath = c.data().join("bank.csv");
    let mut b = csv_rows(&bpath);
    let bhead: Vec<String> = csv::Reader::from_path(&bpath)
        .unwrap()
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    let bal = bhead.iter().position(|x| x == "balance").unwrap();
    let ccol = col("consent_ref");
    let member_ids: Vec<&str> = m
        .iter()
        .filter(|r| !r[ccol].is_empty())
        .map(|r| r[icol].as_str())
        .collect();
    let quoted = b
        .iter()
        .position(|r| {
            member_ids.contains(&r[0].as_str()) && r[bal].split('.').next().unwrap().len() >= 5
        })
        .expect("a member with a bank balance of 10,000 yuan or more");
    let qid = b[quoted][0].clone();
    b[quoted][0] = format!("'{qid}");
    let v = b[quoted][bal].clone();
    let (int, frac) = v.split_once('.').unwrap_or((&v, "00"));
    let grouped = format!(
        "¥{},{}.{frac}",
        &int[..int.len() - 3],
        &int[int.len() - 3..]
    );
    b[quoted][bal] = grouped;
    let xrow = (0..b.len())
        .find(|&i| i != quoted && b[i][0].ends_with('X'))
        .expect("an ID ending in X");
    b[xrow][0] = b[xrow][0].to_lowercase();
    let mut w = csv::Writer::from_path(&bpath).unwrap();
    w.write_record(&bhead).unwrap();
    for r in &b {
        w.write_record(r).unwrap();
    }
    w.flush().unwrap();

    let (out, dir) = c.batch("dirty", &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(clean.join("determinations.csv")).unwrap(),
        std::fs::read(dir.join("determinations.csv")).unwrap(),
        "repairable keys and respelled amounts change no determination"
    );
    let log = std::fs::read_to_string(dir.join("normalisations.csv")).unwrap();
    assert!(log.starts_with("file,line,row,column,kind,detail\n"));
    let mut got: Vec<Vec<String>> = csv_rows(&dir.join("normalisations.csv"));
    let row = |file: &str, i: usize, column: &str, kind: &str, detail: &str| -> Vec<String> {
        [
            file,
            &(i + 2).to_string(),
            &i.to_string(),
            column,
            kind,
            detail,
        ]
        .iter()
        .map(|x| x.to_string())
        .collect()
    };
    let mut expected = vec![
        row(
            "members.csv",
            0,
            "id_number",
            "id_fullwidth",
            &format!(
                "{} full-width character(s) U+FF10–U+FF19 (digits){} → ASCII",
                id0.chars().count(),
                if id0.ends_with('X') {
                    ", U+FF38 (X)"
                } else {
                    ""
                }
            ),
        ),
        row(
            "members.csv",
            name_row,
            "name",
            "name_invisible",
            "removed: U+200B, U+00A0",
        ),
        row(
            "members.csv",
            legacy_row,
            "id_number",
            "id_legacy15",
            "15-digit legacy number → 18 characters: century 19 inserted before the birth year, check character computed (GB 11643-1999 §5.1)",
        ),
        row(
            "bank.csv",
            quoted,
            "id_number",
            "id_spreadsheet_quote",
            "leading spreadsheet text marker U+0027 (') removed",
        ),
        row(
            "bank.csv",
            xrow,
            "id_number",
            "id_lowercase_x",
            "check character U+0078 (x) → U+0058 (X)",
        ),
        row(
            "bank.csv",
            quoted,
            "balance",
            "money_currency_sign",
            "U+00A5 removed",
        ),
        row(
            "bank.csv",
            quoted,
            "balance",
            "money_thousands",
            "1 thousands separator(s) U+002C removed",
        ),
    ];
    expected.sort();
    got.sort();
    assert_eq!(got, expected);
    for id in [&id0, &legacy_id, &qid] {
        assert!(!log.contains(id.as_str()), "no ID number in the log");
    }
    let sm = summary(&dir);
    let n = &sm["normalisations"];
    for (kind, count) in [
        ("id_fullwidth", 1),
        ("id_legacy15", 1),
        ("id_spreadsheet_quote", 1),
        ("id_lowercase_x", 1),
        ("name_invisible", 1),
        ("money_thousands", 1),
        ("money_currency_sign", 1),
    ] {
        assert_eq!(n[kind], count, "{kind} in {n}");
    }
    assert_eq!(sm["caseload"]["key_repairs"]["id_fullwidth"], 1);
    assert_eq!(sm["caseload"]["key_repairs"]["id_legacy15"], 1);
    assert_eq!(
        sm["sources"]["bank"]["counts"]["key_repairs"]["spreadsheet_marker"],
        1
    );
    assert_eq!(
        sm["sources"]["bank"]["counts"]["key_repairs"]["lowercase_x"],
        1
    );
}
