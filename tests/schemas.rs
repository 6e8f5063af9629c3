//! The JSON Schemas of `schemas/` against the generator and the connector registry.
//!
//! `schemas/caseload/*.json` and `schemas/sources/*.json` describe one row of each DESIGN.md §2
//! table as a JSON object of the CSV field texts (an empty field is null or absent). This test
//! checks that
//! - the schema files are exactly the §2 tables: [`CaseloadTable::ALL`] and [`SourceKind::ALL`],
//!   and every file under `schemas/` is a valid draft 2020-12 schema;
//! - each schema's columns, `required` list and vocabularies agree with the registry
//!   (connectors/src/schema.rs), but for the differences §2 makes, listed in the constants
//!   below and in `schemas/README.md`;
//! - every row of a small generated county (`hedui gen`, written as CSV) matches its schema;
//! - rows broken on purpose (money `12.345`, an unknown vocabulary value, a 17-character ID,
//!   a missing required value, …) are rejected, so the schemas constrain something.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use hedui::SourceKind;
use hedui::r#gen::{GenConfig, Table, generate, write_csv};
use hedui_connectors::{CaseloadTable, ColumnKind, ColumnSpec};
use jsonschema::Validator;
use serde_json::{Map, Value};

// ---- where the schemas follow §2 rather than the registry --------------------------------

/// §2: "All tables carry `id_number` and `name` of the holder except `households`". The
/// schemas require both (non-empty) in every such table; the registry lists them for the
/// sources only by name (`SourceKind::required_columns`) and marks `members.name` and
/// `supporters.name` nullable.
const HOLDER_COLUMNS: [&str; 2] = ["id_number", "name"];

/// Registry `Text` columns that §2 and the glossary make GB/T 2260 region codes (6 digits).
const REGION_CODE_COLUMNS: &[(&str, &str)] = &[
    ("households", "region_code"),
    ("household_registration", "hukou_region_code"),
    ("real_estate", "region_code"),
];

/// Registry `Text` columns that hold an ID number (18 characters in the canonical form).
const ID_NUMBER_TEXT_COLUMNS: &[(&str, &str)] = &[("household_registration", "household_head_id")];

/// Registry `Enum` columns for which §2 lists no vocabulary: the schema takes any non-empty
/// text (the registry accepts `male`/`female`/`M`/`F`/`1`/`2`/`男`/`女`).
const NO_SECTION_2_VOCABULARY: &[(&str, &str)] = &[("household_registration", "gender")];

// ---- the §2 tables ---------------------------------------------------------------------------

/// One §2 table as the registry describes it.
struct TableSpec {
    /// `caseload` or `sources` (the folder under `schemas/`).
    folder: &'static str,
    /// Table name = file stem.
    name: &'static str,
    /// Chinese name of a source (the schema title starts with it).
    zh: Option<&'static str>,
    /// Every column in §2 order, the holder's `id_number` and `name` included.
    columns: Vec<ColumnSpec>,
}

impl TableSpec {
    /// The columns whose value may not be empty: the registry's non-nullable ones plus the
    /// holder columns (every table but `households`).
    fn required(&self) -> BTreeSet<&'static str> {
        let mut r: BTreeSet<_> = self
            .columns
            .iter()
            .filter(|c| !c.nullable)
            .map(|c| c.name)
            .collect();
        if self.name != "households" {
            r.extend(HOLDER_COLUMNS);
        }
        r
    }

    fn is(&self, list: &[(&str, &str)], column: &str) -> bool {
        list.iter().any(|&(t, c)| t == self.name && c == column)
    }
}

fn tables() -> Vec<TableSpec> {
    let caseload = CaseloadTable::ALL.into_iter().map(|t| TableSpec {
        folder: "caseload",
        name: t.name(),
        zh: None,
        columns: t.columns().to_vec(),
    });
    let sources = SourceKind::ALL.into_iter().map(|k| {
        // The registry gives the holder columns of a source by name only.
        let mut columns = vec![
            ColumnSpec {
                name: "id_number",
                kind: ColumnKind::IdNumber,
                nullable: false,
            },
            ColumnSpec {
                name: "name",
                kind: ColumnKind::Text,
                nullable: false,
            },
        ];
        columns.extend_from_slice(k.columns());
        TableSpec {
            folder: "sources",
            name: k.name(),
            zh: Some(k.zh()),
            columns,
        }
    });
    caseload.chain(sources).collect()
}

fn schemas_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas")
}

fn load_schema(folder: &str, name: &str) -> Value {
    let path = schemas_dir().join(folder).join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A draft 2020-12 validator that also asserts `format` (so `2025-02-30` is not a date).
fn validator(schema: &Value) -> Validator {
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(schema)
        .unwrap_or_else(|e| panic!("{}: the schema does not compile: {e}", schema["$id"]))
}

// ---- the generated county ---------------------------------------------------------------------

/// A small county as CSV in a temp dir: 300 households, 3 residents per member.
fn generate_county() -> (tempfile::TempDir, Vec<&'static str>) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let cfg = GenConfig {
        households: 300,
        population_factor: 3.0,
        ..GenConfig::default()
    };
    let mut names = Vec::new();
    generate(&cfg, &mut |t: Table| {
        write_csv(&t, &dir.path().join(format!("{}.csv", t.name)))?;
        names.push(t.name);
        Ok(())
    })
    .expect("the generator runs");
    (dir, names)
}

/// The rows of a CSV file as JSON objects of field texts, an empty field as null, each with
/// its line number; and the header.
fn read_rows(path: &Path) -> (Vec<String>, Vec<(u64, Value)>) {
    let mut reader =
        csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header: Vec<String> = reader
        .headers()
        .expect("a header row")
        .iter()
        .map(str::to_owned)
        .collect();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let line = record.position().map_or(0, |p| p.line());
        let row: Map<String, Value> = header
            .iter()
            .zip(record.iter())
            .map(|(h, v)| {
                (
                    h.clone(),
                    if v.is_empty() {
                        Value::Null
                    } else {
                        Value::String(v.to_owned())
                    },
                )
            })
            .collect();
        rows.push((line, Value::Object(row)));
    }
    (header, rows)
}

// ---- tests ----------------------------------------------------------------------------------

#[test]
fn the_schema_files_are_exactly_the_section_2_tables() {
    let expected: BTreeSet<String> = tables()
        .iter()
        .map(|t| format!("{}/{}.json", t.folder, t.name))
        .collect();
    assert_eq!(expected.len(), 3 + SourceKind::ALL.len());
    let mut found = BTreeSet::new();
    for folder in ["caseload", "sources"] {
        for entry in std::fs::read_dir(schemas_dir().join(folder)).expect("the schema folder") {
            let entry = entry.expect("a directory entry");
            if entry.path().is_dir() {
                continue; // sources/api/: the HTTP sources' API, checked in tests/sources
            }
            found.insert(format!("{folder}/{}", entry.file_name().to_string_lossy()));
        }
    }
    assert_eq!(
        found, expected,
        "schemas/caseload and schemas/sources must hold one file per §2 table"
    );
}

#[test]
fn every_schema_file_is_a_valid_draft_2020_12_schema() {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("a schema folder") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "json") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&schemas_dir(), &mut files);
    assert!(files.len() > 15, "found only {files:?}");
    for path in files {
        let schema: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("readable"))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // schemas/api/openapi.json is an OpenAPI 3.1 document, not a schema: its component
        // schemas (OpenAPI 3.1's dialect is draft 2020-12) are checked one by one.
        if schema.get("openapi").is_some() {
            assert_eq!(schema["openapi"], "3.1.0", "{}", path.display());
            let components = schema["components"]["schemas"]
                .as_object()
                .expect("components");
            for (name, s) in components {
                if let Err(e) = jsonschema::draft202012::meta::validate(s) {
                    panic!("{}: components.schemas.{name}: {e}", path.display());
                }
            }
            continue;
        }
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema",
            "{}",
            path.display()
        );
        if let Err(e) = jsonschema::draft202012::meta::validate(&schema) {
            panic!("{}: not a valid draft 2020-12 schema: {e}", path.display());
        }
        validator(&schema);
    }
}

#[test]
fn every_table_schema_has_its_id_title_and_open_object() {
    for t in tables() {
        let s = load_schema(t.folder, t.name);
        let what = format!("{}/{}", t.folder, t.name);
        assert_eq!(
            s["$id"],
            format!("https://hedui.example/schemas/{}/{}.json", t.folder, t.name),
            "{what}"
        );
        let title = s["title"].as_str().expect("a title");
        assert!(
            title.ends_with(&format!("({})", t.name)),
            "{what}: title {title}"
        );
        assert!(
            !title.is_ascii(),
            "{what}: the title carries the Chinese name"
        );
        if let Some(zh) = t.zh {
            assert_eq!(title, format!("{zh} ({})", t.name), "{what}");
        }
        assert_eq!(s["type"], "object", "{what}");
        assert_eq!(
            s["additionalProperties"], true,
            "{what}: §2 allows extra columns"
        );
        assert!(
            s["description"].as_str().is_some_and(|d| d.contains("§2")),
            "{what}"
        );
        for (column, p) in s["properties"].as_object().expect("properties") {
            assert!(
                p["description"].as_str().is_some_and(|d| !d.is_empty()),
                "{what}.{column}: a description"
            );
        }
    }
}

#[test]
fn every_schema_agrees_with_the_registry_but_for_the_listed_section_2_differences() {
    for t in tables() {
        let s = load_schema(t.folder, t.name);
        let what = format!("{}/{}", t.folder, t.name);
        let properties = s["properties"].as_object().expect("properties");

        // (serde_json's map is sorted, so the order of the file is not compared)
        let columns: BTreeSet<&str> = properties.keys().map(String::as_str).collect();
        let registry: BTreeSet<&str> = t.columns.iter().map(|c| c.name).collect();
        assert_eq!(columns, registry, "{what}: the columns");

        let required: BTreeSet<&str> = s["required"]
            .as_array()
            .expect("required")
            .iter()
            .map(|v| v.as_str().expect("a name"))
            .collect();
        assert_eq!(
            required,
            t.required(),
            "{what}: required = the registry's non-nullable columns + id_number, name"
        );

        for c in &t.columns {
            let p = &properties[c.name];
            let at = format!("{what}.{}", c.name);
            let nullable = !required.contains(c.name);
            let ty = if nullable {
                serde_json::json!(["string", "null"])
            } else {
                serde_json::json!("string")
            };
            assert_eq!(p["type"], ty, "{at}: type");
            let reference = p.get("$ref").and_then(Value::as_str);
            match c.kind {
                ColumnKind::Enum(_) if t.is(NO_SECTION_2_VOCABULARY, c.name) => {
                    assert!(
                        p.get("enum").is_none() && reference.is_none(),
                        "{at}: §2 lists no vocabulary"
                    );
                }
                ColumnKind::Enum(labels) => {
                    let mut expected: Vec<Value> = labels.iter().map(|&l| Value::from(l)).collect();
                    if nullable {
                        expected.push(Value::Null);
                    }
                    assert_eq!(p["enum"], Value::Array(expected), "{at}: the §2 vocabulary");
                }
                ColumnKind::Text if t.is(REGION_CODE_COLUMNS, c.name) => {
                    assert_eq!(reference, Some("#/$defs/region_code"), "{at}");
                }
                ColumnKind::Text if t.is(ID_NUMBER_TEXT_COLUMNS, c.name) => {
                    assert_eq!(reference, Some("#/$defs/id_number"), "{at}");
                }
                ColumnKind::Text => {
                    assert!(
                        reference.is_none()
                            && p.get("enum").is_none()
                            && p.get("pattern").is_none(),
                        "{at}: free text"
                    );
                }
                ColumnKind::IdNumber => assert_eq!(reference, Some("#/$defs/id_number"), "{at}"),
                ColumnKind::Money => assert_eq!(reference, Some("#/$defs/money"), "{at}"),
                ColumnKind::Date => assert_eq!(reference, Some("#/$defs/date"), "{at}"),
                ColumnKind::Month => assert_eq!(reference, Some("#/$defs/month"), "{at}"),
                ColumnKind::Integer | ColumnKind::Decimal2 => {
                    assert!(reference.is_some(), "{at}: a number pattern")
                }
            }
        }
        if let Some(defs) = s.get("$defs").and_then(Value::as_object) {
            let used: BTreeSet<&str> = properties
                .values()
                .filter_map(|p| p.get("$ref").and_then(Value::as_str))
                .filter_map(|r| r.strip_prefix("#/$defs/"))
                .collect();
            let defined: BTreeSet<&str> = defs.keys().map(String::as_str).collect();
            assert_eq!(
                defined, used,
                "{what}: every $def is used and every $ref defined"
            );
        }
    }
}

#[test]
fn every_generated_row_matches_its_schema() {
    let (dir, generated) = generate_county();
    let names: BTreeSet<&str> = tables().iter().map(|t| t.name).collect();
    assert_eq!(
        generated.iter().copied().collect::<BTreeSet<_>>(),
        names,
        "the generator writes every §2 table"
    );

    let mut failures = Vec::new();
    let mut counts = BTreeMap::new();
    for t in tables() {
        let schema = load_schema(t.folder, t.name);
        let v = validator(&schema);
        let path = dir.path().join(format!("{}.csv", t.name));
        let (header, rows) = read_rows(&path);
        for c in &t.columns {
            assert!(
                header.iter().any(|h| h == c.name),
                "{}.csv lacks the §2 column {}",
                t.name,
                c.name
            );
        }
        assert!(
            !rows.is_empty(),
            "{}.csv has no rows: the check would be empty",
            t.name
        );
        for (line, row) in &rows {
            for e in v.iter_errors(row) {
                if failures.len() < 20 {
                    failures.push(format!(
                        "{}.csv line {line}, {}: {e}",
                        t.name,
                        e.instance_path()
                    ));
                }
            }
        }
        counts.insert(t.name, rows.len());
    }
    assert!(
        failures.is_empty(),
        "generated rows that do not match their schema:\n{}",
        failures.join("\n")
    );
    eprintln!("validated rows per table: {counts:?}");
}

/// Values of a column's kind that its schema must accept, and ones it must reject.
fn samples(t: &TableSpec, c: &ColumnSpec) -> (Vec<String>, Vec<String>) {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    if t.is(REGION_CODE_COLUMNS, c.name) {
        return (
            s(&["620503", "110101"]),
            s(&["62050", "6205031", "62050a", ""]),
        );
    }
    let id = (
        s(&["620503198703151234", "62050319870315123X"]),
        s(&[
            "62050319870315123",
            "6205031987031512345",
            "62050319870315123x",
            "6.20503E+17",
            "",
        ]),
    );
    if t.is(ID_NUMBER_TEXT_COLUMNS, c.name) {
        return id;
    }
    match c.kind {
        ColumnKind::IdNumber => id,
        ColumnKind::Money => (
            s(&["0", "1234", "1234.5", "1234.50", "-20.00"]),
            s(&["12.345", "1,234.50", "¥12", "1e3", ".5", "12.", ""]),
        ),
        ColumnKind::Date => (
            s(&["2025-06-15", "2024-02-29"]),
            s(&[
                "2025/06/15",
                "2025-6-15",
                "20250615",
                "2025-13-01",
                "2025-02-30",
                "2025-06",
                "",
            ]),
        ),
        ColumnKind::Month => (
            s(&["2025-06", "2024-12"]),
            s(&["2025-6", "2025-13", "2025-06-01", "202506", ""]),
        ),
        ColumnKind::Integer => {
            let good = match c.name {
                "tax_year" | "year" => s(&["2025"]),
                _ => s(&["1", "2"]),
            };
            (good, s(&["3.5", "x", "-", "1e2", ""]))
        }
        ColumnKind::Decimal2 => (
            s(&["0", "50", "89.5", "100.00"]),
            s(&["1.234", "-5", "abc", "1,000", ""]),
        ),
        ColumnKind::Enum(_) if t.is(NO_SECTION_2_VOCABULARY, c.name) => {
            (s(&["male", "女", "2"]), s(&[""]))
        }
        ColumnKind::Enum(labels) => {
            let mut bad = s(&["unknown_value", ""]);
            bad.push(labels[0].to_uppercase());
            (s(labels), bad)
        }
        ColumnKind::Text if c.nullable => (s(&["x", "甲"]), vec![]),
        ColumnKind::Text => (s(&["x", "甲"]), s(&[""])),
    }
}

#[test]
fn each_column_rejects_values_outside_its_form_and_vocabulary() {
    let (dir, _) = generate_county();
    let mut problems = Vec::new();
    for t in tables() {
        let v = validator(&load_schema(t.folder, t.name));
        let (_, rows) = read_rows(&dir.path().join(format!("{}.csv", t.name)));
        let base = rows
            .first()
            .map(|(_, r)| r.clone())
            .expect("a generated row");
        assert!(
            v.is_valid(&base),
            "{}: the first generated row is valid",
            t.name
        );
        let required = t.required();

        let with = |column: &str, value: Option<Value>| {
            let mut row = base.as_object().expect("an object").clone();
            match value {
                Some(x) => row.insert(column.to_owned(), x),
                None => row.remove(column),
            };
            Value::Object(row)
        };
        let mut expect = |valid: bool, row: Value, what: String| {
            if v.is_valid(&row) != valid {
                problems.push(format!(
                    "{}: {what} should be {}",
                    t.name,
                    if valid { "accepted" } else { "rejected" }
                ));
            }
        };

        expect(
            true,
            with("an_extra_column", Some(Value::from("anything"))),
            "an extra column".into(),
        );
        for c in &t.columns {
            let (good, bad) = samples(&t, c);
            for g in good {
                expect(
                    true,
                    with(c.name, Some(Value::from(g.as_str()))),
                    format!("{} = {g:?}", c.name),
                );
            }
            for b in bad {
                expect(
                    false,
                    with(c.name, Some(Value::from(b.as_str()))),
                    format!("{} = {b:?}", c.name),
                );
            }
            let nullable = !required.contains(c.name);
            expect(nullable, with(c.name, None), format!("{} absent", c.name));
            expect(
                nullable,
                with(c.name, Some(Value::Null)),
                format!("{} null", c.name),
            );
            expect(
                false,
                with(c.name, Some(Value::from(12))),
                format!("{} as a JSON number", c.name),
            );
        }
        if t.name == "real_estate" {
            expect(
                false,
                with("share_pct", Some(Value::from("100.01"))),
                "share_pct = 100.01".into(),
            );
            expect(
                false,
                with("share_pct", Some(Value::from("250"))),
                "share_pct = 250".into(),
            );
        }
        if t.name == "members" {
            for g in ["0", "5"] {
                expect(
                    false,
                    with("disability_grade", Some(Value::from(g))),
                    format!("disability_grade = {g}"),
                );
            }
        }
        if t.name == "supporters" {
            expect(
                false,
                with("own_household_size", Some(Value::from("0"))),
                "own_household_size = 0".into(),
            );
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_row_with_bad_money_an_unknown_vocabulary_value_and_a_short_id_is_rejected() {
    let v = validator(&load_schema("sources", "tax"));
    let good: Value = serde_json::json!({
        "id_number": "620503198703151234",
        "name": "王秀兰",
        "tax_year": "2025",
        "income_type": "wages",
        "gross_income": "36000.00",
        "tax_paid": null,
        "branch_office": "an extra column, ignored"
    });
    assert!(
        v.is_valid(&good),
        "{:?}",
        v.iter_errors(&good)
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
    );

    let mut broken = good.clone();
    broken["gross_income"] = Value::from("12.345");
    broken["income_type"] = Value::from("salary");
    broken["id_number"] = Value::from("62050319870315123");
    let paths: BTreeSet<String> = v
        .iter_errors(&broken)
        .map(|e| e.instance_path().to_string())
        .collect();
    assert_eq!(
        paths,
        ["/gross_income", "/id_number", "/income_type"]
            .map(String::from)
            .into_iter()
            .collect(),
        "each broken field is reported"
    );
}
