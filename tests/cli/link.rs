//! `hedui link eval` run as a user would: two CSV files, a truth file and a schema.

use super::{hedui, ok};

/// 300 persons on the left; the right holds 200 of them with damage (a typo in the ID, a
/// traditional-script or full-width name, a day typo in the birth date) and 100 strangers.
fn files(dir: &std::path::Path) {
    let sur = ["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴"];
    let giv = [
        "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛",
    ];
    let trad = |s: &str| {
        s.replace('陈', "陳")
            .replace('张', "張")
            .replace('伟', "偉")
            .replace('丽', "麗")
    };
    let id = |k: usize| {
        let body = format!(
            "620503{:04}{:02}{:02}{:03}",
            1950 + k % 50,
            1 + k % 12,
            1 + k % 28,
            k % 1000
        );
        let w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
        let s: u32 = body
            .bytes()
            .zip(w)
            .map(|(d, w)| u32::from(d - b'0') * w)
            .sum();
        format!(
            "{body}{}",
            "10X98765432".as_bytes()[(s % 11) as usize] as char
        )
    };
    let person = |k: usize| {
        (
            format!(
                "{}{}{}",
                sur[k % 10],
                giv[k / 10 % 15],
                giv[(k / 150 + k) % 15]
            ),
            id(k),
        )
    };
    let dob = |k: usize| format!("{}-{:02}-{:02}", 1950 + k % 50, 1 + k % 12, 1 + k % 28);
    let mut left = String::from("rec_id,name,dob,idn\n");
    let mut right = String::from("rec_id,name,dob,idn\n");
    let mut truth = String::from("left_id,right_id\n");
    for k in 0..300 {
        let (n, i) = person(k);
        left += &format!("L{k},{n},{},{i}\n", dob(k));
    }
    for k in 0..200 {
        let (n, i) = person(k);
        let mut i = i.into_bytes();
        if k % 2 == 0 {
            i[12] = if i[12] == b'9' { b'0' } else { i[12] + 1 };
        }
        let n = if k % 3 == 0 { trad(&n) } else { n };
        let d = if k % 5 == 0 {
            dob(k).replace("-0", "-1")
        } else {
            dob(k)
        };
        right += &format!("R{k},{n},{d},{}\n", String::from_utf8(i).unwrap());
        truth += &format!("L{k},R{k}\n");
    }
    for k in 300..400 {
        let (n, i) = person(k + 1000);
        right += &format!("R{k},{n},{},{i}\n", dob(k + 7));
    }
    std::fs::write(dir.join("left.csv"), left).unwrap();
    std::fs::write(dir.join("right.csv"), right).unwrap();
    std::fs::write(dir.join("truth.csv"), truth).unwrap();
    std::fs::write(
        dir.join("schema.toml"),
        r#"id = "rec_id"
[thresholds]
match = 5.0
possible_match = 0.0
[[comparison]]
field = "name"
kind = "name"
tf = true
[[comparison]]
field = "dob"
kind = "date"
[[comparison]]
field = "idn"
kind = "id_number"
[[blocking]]
left = ["pinyin(name)"]
[[blocking]]
left = ["dob"]
[[blocking]]
left = ["id_mask(idn)"]
"#,
    )
    .unwrap();
}

#[test]
fn link_eval_scores_damaged_ids_and_variant_names_and_draws_the_pr_curve() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    files(d);
    let p = |f: &str| d.join(f).display().to_string();
    let out = ok(&hedui(&[
        "link",
        "eval",
        "--left",
        &p("left.csv"),
        "--right",
        &p("right.csv"),
        "--truth",
        &p("truth.csv"),
        "--schema",
        &p("schema.toml"),
        "--plot",
        &p("pr.svg"),
    ]));
    let json: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(json["true_pairs"], 200);
    assert_eq!(json["records"], serde_json::json!([300, 300]));
    assert!(json["blocking_recall"].as_f64().unwrap() >= 0.99, "{out}");
    assert!(json["best"]["f1"].as_f64().unwrap() >= 0.98, "{out}");
    assert!(
        json["at_match"]["precision"].as_f64().unwrap() >= 0.98,
        "{out}"
    );
    assert!(json["pairs_compared"].as_u64().unwrap() >= 200);
    // the JSON says `fn` like the table (true pairs missed), never the Rust field's `fn_`
    for at in ["best", "at_match"] {
        let (tp, fn_) = (json[at]["tp"].as_u64(), json[at]["fn"].as_u64());
        assert_eq!(tp.zip(fn_).map(|(t, f)| t + f), Some(200), "{out}");
        assert!(json[at].get("fn_").is_none(), "{out}");
    }
    assert!(out.contains("best F1"));
    let svg = std::fs::read_to_string(d.join("pr.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("recall"));
}

#[test]
fn link_eval_refuses_a_schema_naming_a_missing_column() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    files(d);
    let bad = std::fs::read_to_string(d.join("schema.toml"))
        .unwrap()
        .replace("field = \"dob\"", "field = \"birthday\"");
    std::fs::write(d.join("bad.toml"), bad).unwrap();
    let p = |f: &str| d.join(f).display().to_string();
    let out = hedui(&[
        "link",
        "eval",
        "--left",
        &p("left.csv"),
        "--right",
        &p("right.csv"),
        "--truth",
        &p("truth.csv"),
        "--schema",
        &p("bad.toml"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("birthday"));
}
