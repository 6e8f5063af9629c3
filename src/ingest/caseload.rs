//! The caseload (台账): households, members and supporters (DESIGN.md §2).
//!
//! Read with the same file transport as the sources (CSV or Parquet, checked columns), then
//! parsed row by row with the domain parsers. A member or supporter whose ID number is
//! invalid stays in the caseload (the household is referred, rule `member_identity`) and is
//! listed in the quarantine with action `referred`; rows that cannot belong to any household
//! are rejected and listed.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use chrono::NaiveDate;
use hedui_connectors::file::{locate, text_columns};
use hedui_connectors::read::scan_prepared;
use hedui_connectors::{CaseloadTable, ConnectorError};
use hedui_connectors::{Prepared, prepare};
use polars::prelude::*;

use crate::assess::Household;
use crate::domain::{Fen, IdNumber, parse_day};
use crate::ingest::quarantine::{Action, Quarantine, QuarantineEntry};

/// A member row.
#[derive(Debug, Clone)]
pub struct Member {
    /// Index of the household in [`Caseload::households`].
    pub household: usize,
    /// The ID, or the reason it is invalid (code: message).
    pub id: Result<IdNumber, String>,
    /// The raw ID masked (for reports when invalid).
    pub id_masked: String,
    /// Relation.
    pub relation: String,
    /// Disability grade 1-4.
    pub disability_grade: Option<u8>,
    /// Whether a consent reference was given.
    pub consent: bool,
    /// The name as written (for the error-tolerant linkage only; never logged or reported).
    pub name: Option<String>,
}

/// A distinct supporter of one household (rows of the same person in one household are
/// one supporter: support owed is computed once, §3).
#[derive(Debug, Clone)]
pub struct Supporter {
    /// Index of the household.
    pub household: usize,
    /// The ID, or the reason it is invalid.
    pub id: Result<IdNumber, String>,
    /// The raw ID masked.
    pub id_masked: String,
    /// Relation (of the first row).
    pub relation: String,
    /// max(1, the largest own_household_size given).
    pub own_household_size: i64,
    /// Whether every row had a consent reference.
    pub consent: bool,
    /// The name of the first row (for the error-tolerant linkage only).
    pub name: Option<String>,
}

/// The loaded caseload.
#[derive(Debug, Default)]
pub struct Caseload {
    /// Households, in file order.
    pub households: Vec<Household>,
    /// Member rows.
    pub members: Vec<Member>,
    /// Distinct supporters per household.
    pub supporters: Vec<Supporter>,
    /// Rows read per table (households, members, supporters).
    pub rows_read: [u64; 3],
}

/// Errors that stop a run: without a readable caseload there is nothing to assess.
#[derive(Debug, thiserror::Error)]
pub enum CaseloadError {
    /// A table is missing or unreadable.
    #[error("caseload table {table}: {cause}")]
    Table {
        /// The table.
        table: &'static str,
        /// The cause (shown in the message; not chained, so it is said once).
        cause: ConnectorError,
    },
}

fn read(
    dir: &Path,
    t: CaseloadTable,
    q: &mut Quarantine,
) -> Result<(DataFrame, String, Prepared), CaseloadError> {
    let (path, _) = locate(dir, t.name()).ok_or_else(|| CaseloadError::Table {
        table: t.name(),
        cause: ConnectorError::NotFound {
            source_name: t.name(),
            expected: format!(
                "{}/{}.csv, .parquet, .xlsx, .tsv or .jsonl",
                dir.display(),
                t.name()
            ),
        },
    })?;
    let cols: Vec<&str> = t.columns().iter().map(|c| c.name).collect();
    let table_err = |source| CaseloadError::Table {
        table: t.name(),
        cause: source,
    };
    let unreadable = |e: PolarsError| CaseloadError::Table {
        table: t.name(),
        cause: ConnectorError::Unreadable {
            path: path.display().to_string(),
            message: e.to_string().lines().next().unwrap_or("").to_string(),
        },
    };
    // The same reader as the sources: encodings, workbooks, Chinese headers, repeated
    // headers; rows refused while decoding are quarantined with their physical line.
    let prep = prepare(&path, t.name(), &cols).map_err(table_err)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for r in &prep.rejected {
        q.push(QuarantineEntry::from_rejected(&name, r));
    }
    let df = scan_prepared(&prep, &cols)
        .map_err(table_err)?
        .collect()
        .map_err(unreadable)?;
    let df = text_columns(df, &[]).map_err(unreadable)?;
    Ok((df, name, prep))
}

/// A vocabulary value, case and spaces normalised (`Urban` → `urban`); an unknown or (when
/// required) empty value is kept as given and recorded as a fault of the household.
fn vocab_value(
    raw: Option<&str>,
    allowed: &[&str],
    optional: bool,
    column: &str,
    faults: &mut Vec<String>,
) -> String {
    let v = raw.unwrap_or("").trim().to_lowercase();
    if (v.is_empty() && !optional) || (!v.is_empty() && !allowed.contains(&v.as_str())) {
        faults.push(format!("{column}_unknown"));
    }
    v
}

fn col<'a>(df: &'a DataFrame, name: &str) -> &'a StringChunked {
    df.column(name)
        .and_then(|c| c.str())
        .expect("text_columns made every checked column a string")
}

/// Load the caseload from `dir` (`households`, `members`, `supporters` as .parquet or .csv).
///
/// # Errors
/// [`CaseloadError`] when a table is missing, lacks columns or cannot be read.
pub fn load_caseload(
    dir: &Path,
    as_of: NaiveDate,
    q: &mut Quarantine,
) -> Result<Caseload, CaseloadError> {
    let mut out = Caseload::default();
    let mut index: HashMap<String, usize> = HashMap::new();

    let (df, file, prep) = read(dir, CaseloadTable::Households, q)?;
    out.rows_read[0] = df.height() as u64;
    let [hid, region, area, programme, category, dinc, dfin, lv] = [
        "household_id",
        "region_code",
        "area",
        "programme",
        "category",
        "declared_annual_income",
        "declared_financial_assets",
        "last_verified",
    ]
    .map(|c| col(&df, c));
    for i in 0..df.height() {
        let id = hid.get(i).unwrap_or("").trim();
        if id.is_empty() {
            q.push(QuarantineEntry::at(
                &file,
                prep.line_of(i as u64),
                Some(i as u64),
                "household_id",
                "",
                "household_id_missing",
                Action::Rejected,
                "household row without household_id".into(),
            ));
            continue;
        }
        if index.contains_key(&id.to_uppercase()) {
            q.push(QuarantineEntry::at(
                &file,
                prep.line_of(i as u64),
                Some(i as u64),
                "household_id",
                id,
                "household_duplicate",
                Action::Rejected,
                "household_id appears earlier in the file; the first row is used".into(),
            ));
            continue;
        }
        let mut money = |c: &StringChunked, name: &str| -> Option<Fen> {
            let v = c.get(i)?.trim();
            if v.is_empty() {
                return None;
            }
            match Fen::parse_yuan(v) {
                Ok(f) => Some(f),
                Err(e) => {
                    q.push(QuarantineEntry::at(
                        &file,
                        prep.line_of(i as u64),
                        Some(i as u64),
                        name,
                        v,
                        e.code(),
                        Action::Rejected,
                        format!("{name}: {e}; the value is not used"),
                    ));
                    None
                }
            }
        };
        let declared_annual_income = money(dinc, "declared_annual_income");
        let declared_financial_assets = money(dfin, "declared_financial_assets");
        let last_verified = lv
            .get(i)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .and_then(|v| match parse_day(v) {
                Ok(d) => Some(d),
                Err(e) => {
                    q.push(QuarantineEntry::at(
                        &file,
                        prep.line_of(i as u64),
                        Some(i as u64),
                        "last_verified",
                        v,
                        e.code(),
                        Action::Rejected,
                        format!("last_verified: {e}; the household reads as never verified"),
                    ));
                    None
                }
            });
        let mut faults = Vec::new();
        // Matched case-insensitively: a member row's `620503h0000047` is household 620503H0000047.
        index.insert(id.to_uppercase(), out.households.len());
        out.households.push(Household {
            id: id.to_string(),
            region_code: region.get(i).unwrap_or("").trim().to_string(),
            area: vocab_value(area.get(i), &["urban", "rural"], false, "area", &mut faults),
            programme: vocab_value(
                programme.get(i),
                &["dibao", "tekun", "low_income", "applicant"],
                false,
                "programme",
                &mut faults,
            ),
            category: vocab_value(
                category.get(i),
                &["full", "partial", "class1", "class2", "class3", "class4"],
                true,
                "category",
                &mut faults,
            ),
            declared_annual_income,
            declared_financial_assets,
            last_verified,
            faults,
        });
    }

    let parse_id = |raw: &str| {
        IdNumber::parse(raw, as_of)
            .map(|(id, _)| id)
            .map_err(|e| format!("{}: {e}", e.code()))
    };

    let (df, file, prep) = read(dir, CaseloadTable::Members, q)?;
    let mut member_seen: HashSet<(usize, u64)> = HashSet::new();
    out.rows_read[1] = df.height() as u64;
    let [hid, idn, rel, grade, consent] = [
        "household_id",
        "id_number",
        "relation",
        "disability_grade",
        "consent_ref",
    ]
    .map(|c| col(&df, c));
    let names = df.column("name").and_then(|c| c.str()).ok();
    for i in 0..df.height() {
        let h = hid.get(i).unwrap_or("").trim();
        let Some(&household) = index.get(&h.to_uppercase()) else {
            q.push(QuarantineEntry::at(
                &file,
                prep.line_of(i as u64),
                Some(i as u64),
                "household_id",
                h,
                "member_orphan",
                Action::Rejected,
                "member of a household that is not in households".into(),
            ));
            continue;
        };
        let raw = idn.get(i).unwrap_or("");
        let id = parse_id(raw);
        if let Err(why) = &id {
            q.push(QuarantineEntry::at(
                &file,
                prep.line_of(i as u64),
                Some(i as u64),
                "id_number",
                raw,
                why.split(':').next().unwrap_or(""),
                Action::Referred,
                format!("member ID number invalid ({why}); household referred (member_identity)"),
            ));
        }
        let disability_grade = grade
            .get(i)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .and_then(|v| match v.parse::<u8>() {
                Ok(g @ 1..=4) => Some(g),
                _ => {
                    q.push(QuarantineEntry::at(
                        &file,
                        prep.line_of(i as u64),
                        Some(i as u64),
                        "disability_grade",
                        v,
                        "disability_grade_invalid",
                        Action::Rejected,
                        "disability_grade must be 1-4; the value is not used".into(),
                    ));
                    None
                }
            });
        if let Ok(idv) = &id {
            if !member_seen.insert((household, idv.key())) {
                q.push(QuarantineEntry::at(
                    &file,
                    prep.line_of(i as u64),
                    Some(i as u64),
                    "id_number",
                    raw,
                    "member_duplicate",
                    Action::Referred,
                    "the same member appears twice in this household; counted once, household referred (caseload_fault)".into(),
                ));
                out.households[household]
                    .faults
                    .push("member_duplicate".into());
                continue;
            }
        }
        out.members.push(Member {
            household,
            id_masked: crate::domain::mask(raw.trim()),
            id,
            relation: rel.get(i).unwrap_or("").trim().to_string(),
            disability_grade,
            consent: consent.get(i).is_some_and(|c| !c.trim().is_empty()),
            name: names.and_then(|n| n.get(i)).map(str::to_string),
        });
    }

    let (df, file, prep) = read(dir, CaseloadTable::Supporters, q)?;
    out.rows_read[2] = df.height() as u64;
    let [hid, idn, rel, size, consent] = [
        "household_id",
        "id_number",
        "relation",
        "own_household_size",
        "consent_ref",
    ]
    .map(|c| col(&df, c));
    let names = df.column("name").and_then(|c| c.str()).ok();
    let mut seen: HashMap<(usize, String), usize> = HashMap::new();
    let mut flagged: HashSet<(usize, String)> = HashSet::new();
    for i in 0..df.height() {
        let h = hid.get(i).unwrap_or("").trim();
        let Some(&household) = index.get(&h.to_uppercase()) else {
            q.push(QuarantineEntry::at(
                &file,
                prep.line_of(i as u64),
                Some(i as u64),
                "household_id",
                h,
                "supporter_orphan",
                Action::Rejected,
                "supporter of a household that is not in households".into(),
            ));
            continue;
        };
        let raw = idn.get(i).unwrap_or("");
        let id = parse_id(raw);
        let key = match &id {
            Ok(id) => id.expose(),
            Err(_) => raw.trim().to_uppercase(),
        };
        if let Err(why) = &id {
            if flagged.insert((household, key.clone())) {
                q.push(QuarantineEntry::at(
                    &file,
                    prep.line_of(i as u64),
                    Some(i as u64),
                    "id_number",
                    raw,
                    why.split(':').next().unwrap_or(""),
                    Action::Referred,
                    format!(
                        "supporter ID number invalid ({why}); household referred (member_identity)"
                    ),
                ));
            }
        }
        let own = match size.get(i).map(str::trim).filter(|v| !v.is_empty()) {
            None => None,
            Some(v) => match v.parse::<i64>() {
                Ok(n) if (1..=50).contains(&n) => Some(n),
                _ => {
                    q.push(QuarantineEntry::at(
                        &file,
                        prep.line_of(i as u64),
                        Some(i as u64),
                        "own_household_size",
                        v,
                        "own_household_size_invalid",
                        Action::Referred,
                        "own_household_size must be a whole number 1-50; support owed cannot be computed, household referred (caseload_fault)".into(),
                    ));
                    out.households[household]
                        .faults
                        .push("own_household_size_invalid".into());
                    None
                }
            },
        };
        let has_consent = consent.get(i).is_some_and(|c| !c.trim().is_empty());
        match seen.get(&(household, key.clone())) {
            Some(&s) => {
                let sup = &mut out.supporters[s];
                sup.own_household_size = sup.own_household_size.max(own.unwrap_or(1)).max(1);
                sup.consent &= has_consent;
            }
            None => {
                seen.insert((household, key), out.supporters.len());
                out.supporters.push(Supporter {
                    household,
                    id_masked: crate::domain::mask(raw.trim()),
                    id,
                    relation: rel.get(i).unwrap_or("").trim().to_string(),
                    own_household_size: own.unwrap_or(1).max(1),
                    consent: has_consent,
                    name: names.and_then(|n| n.get(i)).map(str::to_string),
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(dir: &Path) -> (Caseload, Quarantine) {
        let mut q = Quarantine::default();
        let c = load_caseload(dir, NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(), &mut q).unwrap();
        (c, q)
    }

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn one_supporter_of_two_members_is_one_supporter_with_the_largest_household_size() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "households.csv",
            "household_id,region_code,area,programme,category,declared_annual_income,declared_financial_assets,last_verified\nH1,620503,urban,dibao,full,1000.00,,2026-01-02\nH1,620503,urban,dibao,full,,,\n",
        );
        write(
            d.path(),
            "members.csv",
            "household_id,id_number,name,relation,disability_grade,consent_ref\nH1,620503195809200176,马福祥,applicant,2,C1\nH1,620503196207080319,李建国,spouse,,C1\nH9,620503198703151234,王秀兰,child,,C9\n",
        );
        write(
            d.path(),
            "supporters.csv",
            "household_id,id_number,name,supports_id_number,relation,own_household_size,consent_ref\nH1,620503198703151234,王秀兰,620503195809200176,child,2,C1-S1\nH1,620503198703151234,王秀兰,620503196207080319,child,4,C1-S1\nH1,620503198703151235,张三,620503196207080319,child,1,C1-S2\n",
        );
        let (c, q) = load(d.path());
        assert_eq!(
            c.households.len(),
            1,
            "the duplicate household row is rejected"
        );
        assert_eq!(c.households[0].declared_annual_income, Some(Fen(100_000)));
        assert_eq!(c.members.len(), 2, "the orphan member is rejected");
        assert_eq!(c.members[0].disability_grade, Some(2));
        assert_eq!(
            c.supporters.len(),
            2,
            "two rows of one supporter are one supporter"
        );
        assert_eq!(c.supporters[0].own_household_size, 4);
        assert!(
            c.supporters[1].id.is_err(),
            "the bad check character is kept as invalid"
        );
        let reasons: Vec<&str> = q.entries.iter().map(|e| e.reason.as_str()).collect();
        assert_eq!(
            reasons,
            vec!["household_duplicate", "member_orphan", "id_check_character"]
        );
        assert_eq!(q.entries[1].line, Some(4));
        assert_eq!(q.entries[2].value, "6205**********1235");
    }

    #[test]
    fn a_gbk_caseload_with_chinese_headers_loads_like_the_utf8_one() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "households.csv",
            "household_id,region_code,area,programme,category,declared_annual_income,declared_financial_assets,last_verified\nH1,620503,rural,dibao,class1,,,\n",
        );
        let members = "household_id,身份证号,姓名,relation,disability_grade,consent_ref\r\nH1,620503195809200176,马福祥,applicant,,C1\r\nH1,620503196207080319,李建国,spouse,,C1\r\n";
        let (gbk, _, lossy) = encoding_rs::GBK.encode(members);
        assert!(!lossy);
        std::fs::write(d.path().join("members.csv"), &gbk).unwrap();
        write(
            d.path(),
            "supporters.csv",
            "household_id,id_number,name,supports_id_number,relation,own_household_size,consent_ref\n",
        );
        let (c, q) = load(d.path());
        assert_eq!(c.members.len(), 2);
        assert_eq!(
            c.members[1].id.as_ref().unwrap().expose(),
            "620503196207080319"
        );
        assert!(q.entries.is_empty(), "{:?}", q.entries);
    }
}
