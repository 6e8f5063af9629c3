//! The on-demand input: one household as JSON (the caseload fields of DESIGN.md §2 and
//! `schemas/caseload/`, one object instead of three tables), its validation into the
//! engine's [`Household`], [`Member`] and [`Supporter`] rows, and the linking of the
//! sources' answers to its persons ([`link_answers`]: the batch's key, the batch's
//! [`PersonEvidence::add`]).
//!
//! Validation errors name the JSON field (`members[1].id_number`) and carry a stable code;
//! they never contain a value of the request (no ID number, no name).

use std::collections::HashMap;

use chrono::NaiveDate;
use hedui_connectors::{RecordSet, SourceKind};
use serde::{Deserialize, Serialize};

use super::PersonState;
use crate::assess::{Household, Policy};
use crate::domain::id_number::is_invisible;
use crate::domain::money::MoneyError;
use crate::domain::{Fen, IdNumber, RegionCode, parse_day};
use crate::evidence::Frame;
use crate::ingest::caseload::{
    DISABILITY_GRADES, MEMBER_RELATIONS, Member, SUPPORTER_RELATIONS, Supporter,
};

/// A household to verify (`POST /v1/verifications`, `hedui check`). Unknown fields are
/// refused. Money is yuan as a string with up to 2 decimals (`"12000.50"`), dates ISO.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HouseholdRequest {
    /// The intake system's id of the application or household (no PII: not an ID number).
    pub household_id: String,
    /// GB/T 2260 region code of the household, 6 digits; the token must cover it.
    pub region_code: String,
    /// `urban` / `rural`.
    pub area: String,
    /// `dibao` / `tekun` / `low_income` / `applicant`.
    pub programme: String,
    /// `full` / `partial` / `class1`..`class4`, or absent.
    #[serde(default)]
    pub category: Option<String>,
    /// Declared yearly household income, yuan.
    #[serde(default)]
    pub declared_annual_income: Option<String>,
    /// Declared financial assets, yuan.
    #[serde(default)]
    pub declared_financial_assets: Option<String>,
    /// Date of the last verification, if any.
    #[serde(default)]
    pub last_verified: Option<String>,
    /// Why the records are queried (recorded in the audit log with every query).
    #[serde(default)]
    pub purpose: Option<String>,
    /// Members (at least one).
    pub members: Vec<MemberRequest>,
    /// Supporters outside the household.
    #[serde(default)]
    pub supporters: Vec<SupporterRequest>,
}

/// A member of the household.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberRequest {
    /// Resident ID number (GB 11643-1999).
    pub id_number: String,
    /// Name (not used by the rules; never logged or echoed).
    #[serde(default)]
    pub name: Option<String>,
    /// `applicant` / `spouse` / `child` / `parent` / `sibling` / `grandchild` / `other`.
    pub relation: String,
    /// Disability grade 1-4.
    #[serde(default)]
    pub disability_grade: Option<u8>,
    /// Reference of the member's registered consent (`POST /v1/consents`).
    pub consent_ref: String,
}

/// A supporter (法定赡养扶养抚养义务人) outside the household.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupporterRequest {
    /// Resident ID number.
    pub id_number: String,
    /// Name (not used; never logged or echoed).
    #[serde(default)]
    pub name: Option<String>,
    /// ID number of the supported member.
    #[serde(default)]
    pub supports_id_number: Option<String>,
    /// `child` / `parent` / `spouse`.
    pub relation: String,
    /// Persons in the supporter's own household (1-50).
    #[serde(default)]
    pub own_household_size: Option<i64>,
    /// Reference of the supporter's registered consent.
    pub consent_ref: String,
}

/// A request that cannot be verified: HTTP 422 (or 413 for too many persons) with
/// `{"code", "field", "message"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// Stable reason code (`id_number_invalid`, `value_unknown`, …).
    pub code: &'static str,
    /// The JSON field (`members[1].id_number`).
    pub field: String,
    /// A sentence without any value of the request.
    pub message: String,
}

fn bad(code: &'static str, field: impl Into<String>, message: impl Into<String>) -> InputError {
    InputError {
        code,
        field: field.into(),
        message: message.into(),
    }
}

/// A validated household: the engine's rows, each person's ID and consent reference in
/// request order (members, then supporters).
#[derive(Debug, Clone)]
pub struct ValidHousehold {
    /// The household row.
    pub household: Household,
    /// Member rows (household index 0).
    pub members: Vec<Member>,
    /// Supporters.
    pub supporters: Vec<Supporter>,
    /// Per person (members then supporters): JSON path of the person, ID, consent ref.
    pub persons: Vec<(String, IdNumber, String)>,
    /// The purpose given (or `verification`).
    pub purpose: String,
}

/// Whether free text holds what may be a resident ID number, in any spelling (15 or more
/// digits, contiguous or in groups: [`crate::domain::id_number::holds_id_like`]). Such text
/// is refused, never stored: it would be written into the audit log and the report's
/// plaintext id.
pub use crate::domain::id_number::holds_id_like;

/// Whether a `household_id` holds an ID number: 15 or more contiguous digits (ASCII or
/// full-width), or digits in groups that read as a valid ID number
/// (`620503-1975-0324-540X`). Other grouped numbers are an intake system's own ids
/// (`620503-2026-00001`: region, year, sequence) and pass.
fn household_id_holds_id(hid: &str, as_of: NaiveDate) -> bool {
    use crate::domain::id_number::{is_digit_separator, loose_id_numbers, spelled_digit_runs};
    // (an ID number between colons, brackets, in Chinese numerals…: session 18's attack;
    // one that is a valid number on the as-of day, as for groups below: session 19's attack
    // found `620503#20261215#0008`, dated after it, refused)
    if loose_id_numbers(hid)
        .into_iter()
        .any(|r| IdNumber::parse(&crate::domain::id_number::loose_read(&hid[r]), as_of).is_ok())
        // (its digits with other text between them: session 26's attack)
        || crate::domain::id_number::scattered_id_number(hid)
    {
        return true;
    }
    spelled_digit_runs(hid).into_iter().any(|(r, n)| {
        let run = &hid[r];
        n >= 15
            && (run
                .split(is_digit_separator)
                .any(|g| g.chars().count() >= 15)
                || {
                    let bare: String = run.chars().filter(|c| !is_digit_separator(*c)).collect();
                    IdNumber::parse(&bare, as_of).is_ok()
                })
    })
}

fn one_of(v: &str, allowed: &[&'static str], field: &str) -> Result<String, InputError> {
    // full-width letters (`ａｐｐｌｉｃａｎｔ`) read as ASCII and invisible characters
    // removed, and a Chinese word (`配偶`) as the §2 word it stands for, as the batch's
    // caseload reads them
    let folded = crate::domain::vocabulary_fold(v);
    let t = folded.as_deref().unwrap_or(v).trim().to_lowercase();
    if allowed.contains(&t.as_str()) {
        Ok(t)
    } else if let Some(word) = crate::domain::chinese_vocabulary_word(v, allowed) {
        Ok(word.to_string())
    } else {
        Err(bad(
            "value_unknown",
            field,
            format!("{field} must be one of {}", allowed.join(", ")),
        ))
    }
}

fn money(v: &Option<String>, field: &str) -> Result<Option<Fen>, InputError> {
    match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        // a declared income or asset total is never below zero (a loss is declared as 0)
        Some(s) => Fen::parse_amount(s).map(Some).map_err(|e| {
            let message = match e {
                MoneyError::Negative => format!("{field} must not be negative"),
                _ => format!("{field} must be yuan with up to 2 decimals, e.g. \"1234.50\""),
            };
            bad(e.code(), field, message)
        }),
    }
}

/// Check a (trimmed) `purpose` of a verification or a consent: it is written into audit rows.
///
/// # Errors
/// `purpose_too_long` over [`MAX_PURPOSE_CHARS`] characters, `purpose_invalid` when it holds
/// an ID number.
pub fn check_purpose(purpose: &str) -> Result<(), InputError> {
    if purpose.chars().count() > MAX_PURPOSE_CHARS {
        return Err(bad(
            "purpose_too_long",
            "purpose",
            format!("purpose is at most {MAX_PURPOSE_CHARS} characters"),
        ));
    }
    if purpose.chars().any(|c| c.is_control() || is_invisible(c)) {
        return Err(bad(
            "purpose_invalid",
            "purpose",
            "purpose must be printable text without control, invisible or direction-changing characters",
        ));
    }
    if holds_id_like(purpose) {
        return Err(bad(
            "purpose_invalid",
            "purpose",
            "purpose must not hold an ID number (it is written into the audit log)",
        ));
    }
    Ok(())
}

/// Longest `purpose` accepted, in characters (it is written into every audit row of the
/// verification; schemas/api/openapi.json says the same).
pub const MAX_PURPOSE_CHARS: usize = 200;

fn id(raw: &str, field: String, as_of: NaiveDate) -> Result<IdNumber, InputError> {
    let idn = IdNumber::parse(raw, as_of).map(|(id, _)| id).map_err(|e| {
        let code = e.code();
        bad(
            "id_number_invalid",
            field.clone(),
            format!("{field} is not a valid resident ID number (GB 11643-1999; {code})"),
        )
    })?;
    Ok(idn)
}

impl HouseholdRequest {
    /// Whether `text` (a household_id, a purpose: logged, audited, shown) holds a name given
    /// for one of the request's members or supporters. A name cannot be told from other
    /// text, but the request's own names can be found: compared without spaces and
    /// separators (`徐 明远`, `买买提·吐尔逊`), names of two characters or more. One rule for
    /// every such field.
    fn holds_a_name(&self, text: &str) -> bool {
        let bare = crate::domain::name::letters_of;
        let text = bare(text);
        self.members
            .iter()
            .map(|m| m.name.as_deref())
            .chain(self.supporters.iter().map(|s| s.name.as_deref()))
            .flatten()
            .map(bare)
            .any(|n| n.chars().count() >= 2 && text.contains(&n))
    }

    /// Check every field and build the engine's rows.
    ///
    /// # Errors
    /// The first [`InputError`], naming the field: `too_many_persons` (more than
    /// `max_persons` members + supporters), `members_empty`, `id_number_invalid`,
    /// `value_unknown`, `region_code_invalid`, money and date codes, `person_duplicate`.
    pub fn validate(
        &self,
        as_of: NaiveDate,
        max_persons: usize,
    ) -> Result<ValidHousehold, InputError> {
        let n = self.members.len() + self.supporters.len();
        if n > max_persons {
            return Err(bad(
                "too_many_persons",
                "members",
                format!("{n} members and supporters; at most {max_persons} per household"),
            ));
        }
        if self.members.is_empty() {
            return Err(bad(
                "members_empty",
                "members",
                "a household needs at least one member",
            ));
        }
        let hid = self.household_id.trim();
        if hid.is_empty()
            || hid.len() > 64
            || hid.chars().any(|c| c.is_control() || is_invisible(c))
        {
            return Err(bad(
                "household_id_invalid",
                "household_id",
                "household_id must be 1-64 printable characters",
            ));
        }
        if (hid.len() >= 15 && IdNumber::parse(hid, as_of).is_ok())
            || household_id_holds_id(hid, as_of)
        {
            return Err(bad(
                "household_id_invalid",
                "household_id",
                "household_id must not be a resident ID number (it is logged and shown)",
            ));
        }
        // a household_id holding a name (`张伟家`, `李建国-2026`) would show it in the sealed
        // envelope's clear report id, the audit and the logs (session 16's attack)
        if self.holds_a_name(hid) {
            return Err(bad(
                "household_id_invalid",
                "household_id",
                "household_id must not hold a member's or supporter's name (it is logged and shown)",
            ));
        }
        let region = RegionCode::parse(self.region_code.trim()).map_err(|_| {
            bad(
                "region_code_invalid",
                "region_code",
                "region_code must be a GB/T 2260 code of 6 digits",
            )
        })?;
        let area = one_of(&self.area, &["urban", "rural"], "area")?;
        let programme = one_of(
            &self.programme,
            &["dibao", "tekun", "low_income", "applicant"],
            "programme",
        )?;
        let category = match self
            .category
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            None => String::new(),
            Some(c) => one_of(
                c,
                &["full", "partial", "class1", "class2", "class3", "class4"],
                "category",
            )?,
        };
        let last_verified = match self
            .last_verified
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            None => None,
            Some(d) => Some(parse_day(d).map_err(|e| {
                bad(
                    e.code(),
                    "last_verified",
                    "last_verified must be a date YYYY-MM-DD",
                )
            })?),
        };
        let household = Household {
            id: hid.to_string(),
            region_code: format!("{:06}", region.code()),
            area,
            programme,
            category,
            declared_annual_income: money(&self.declared_annual_income, "declared_annual_income")?,
            declared_financial_assets: money(
                &self.declared_financial_assets,
                "declared_financial_assets",
            )?,
            last_verified,
            faults: Vec::new(),
            at: None,
        };
        let mut persons = Vec::with_capacity(n);
        let mut members = Vec::with_capacity(self.members.len());
        let mut seen = std::collections::HashSet::new();
        for (i, m) in self.members.iter().enumerate() {
            let f = format!("members[{i}]");
            let idn = id(&m.id_number, format!("{f}.id_number"), as_of)?;
            if !seen.insert(idn.key()) {
                return Err(bad(
                    "person_duplicate",
                    format!("{f}.id_number"),
                    format!("{f} is the same person as an earlier member"),
                ));
            }
            let relation = one_of(&m.relation, MEMBER_RELATIONS, &format!("{f}.relation"))?;
            if let Some(g) = m.disability_grade
                && !DISABILITY_GRADES.contains(&g)
            {
                return Err(bad(
                    "disability_grade_invalid",
                    format!("{f}.disability_grade"),
                    "disability_grade must be 1-4",
                ));
            }
            persons.push((
                format!("{f}.consent_ref"),
                idn,
                m.consent_ref.trim().to_string(),
            ));
            members.push(Member {
                // on demand, sources answer by exact ID number: no name is needed
                name: None,
                household: 0,
                id: Ok(idn),
                id_masked: idn.masked(),
                relation,
                disability_grade: m.disability_grade,
                consent: !m.consent_ref.trim().is_empty(),
            });
        }
        let mut supporters: Vec<Supporter> = Vec::with_capacity(self.supporters.len());
        let mut sup_index: HashMap<u64, usize> = HashMap::new();
        // (supporter, supported member) → relation, as first given
        let mut relations: HashMap<(u64, u64), String> = HashMap::new();
        for (i, s) in self.supporters.iter().enumerate() {
            let f = format!("supporters[{i}]");
            let idn = id(&s.id_number, format!("{f}.id_number"), as_of)?;
            // A member is not their own household's supporter: their income would count twice.
            if seen.contains(&idn.key()) {
                return Err(bad(
                    "person_duplicate",
                    format!("{f}.id_number"),
                    format!("{f} is the same person as a member of the household"),
                ));
            }
            let relation = one_of(&s.relation, SUPPORTER_RELATIONS, &format!("{f}.relation"))?;
            if let Some(sup) = s
                .supports_id_number
                .as_deref()
                .filter(|v| !v.trim().is_empty())
            {
                // Found by the s7 attack: the supporter themself or a person who is no
                // member of this household was accepted; whom support is owed to is unclear.
                let supported = id(sup, format!("{f}.supports_id_number"), as_of)?;
                if !seen.contains(&supported.key()) {
                    return Err(bad(
                        "supported_not_member",
                        format!("{f}.supports_id_number"),
                        format!("{f}.supports_id_number names no member of the household"),
                    ));
                }
                // One supporter's relation to one member given twice, differently (`child`,
                // then `parent`): which is meant is not guessed (found by session 27's
                // attack: the second was dropped without a word). A relation to another
                // member may differ (a separated spouse is the parent of a child member).
                match relations.get(&(idn.key(), supported.key())) {
                    Some(r) if *r != relation => {
                        return Err(bad(
                            "relation_conflict",
                            format!("{f}.relation"),
                            format!(
                                "{f} repeats an earlier supporter of the same member with another relation ({relation}, earlier {r})"
                            ),
                        ));
                    }
                    Some(_) => {}
                    None => {
                        relations.insert((idn.key(), supported.key()), relation.clone());
                    }
                }
            }
            // absent: not given (never read as 1; the rules refer the household when support
            // owed depends on it, `crate::assess::PersonView::own_household_size`)
            let size = match s.own_household_size {
                None => None,
                Some(k @ 1..=50) => Some(k),
                Some(_) => {
                    return Err(bad(
                        "own_household_size_invalid",
                        format!("{f}.own_household_size"),
                        "own_household_size must be a whole number 1-50",
                    ));
                }
            };
            // One supporter of two members is one supporter (support owed once, §3).
            if let Some(&j) = sup_index.get(&idn.key()) {
                let sup: &mut Supporter = &mut supporters[j];
                // Two sizes of one supporter's household: support owed would follow whichever
                // is taken (session 22's attack: [4, 50] gave 50, and the household turned
                // eligible). Refused, as the batch refers it.
                if let (Some(a), Some(b)) = (sup.own_household_size, size)
                    && a != b
                {
                    return Err(bad(
                        "own_household_size_conflict",
                        format!("{f}.own_household_size"),
                        format!(
                            "{f} repeats an earlier supporter with another own_household_size ({b}, earlier {a})"
                        ),
                    ));
                }
                sup.own_household_size = sup.own_household_size.max(size);
                // Every copy must carry the consent reference of the first one (which is
                // checked): another reference, valid or not, is refused, never ignored.
                if let Some((_, _, first)) = persons.iter().find(|(_, p, _)| p.key() == idn.key())
                    && first != s.consent_ref.trim()
                {
                    return Err(bad(
                        "consent_ref_conflict",
                        format!("{f}.consent_ref"),
                        format!("{f} repeats an earlier supporter with another consent reference"),
                    ));
                }
                continue;
            }
            sup_index.insert(idn.key(), supporters.len());
            persons.push((
                format!("{f}.consent_ref"),
                idn,
                s.consent_ref.trim().to_string(),
            ));
            supporters.push(Supporter {
                name: None,
                household: 0,
                id: Ok(idn),
                id_masked: idn.masked(),
                relation,
                own_household_size: size,
                consent: !s.consent_ref.trim().is_empty(),
            });
        }
        if let Some(p) = self.purpose.as_deref() {
            check_purpose(p.trim())?;
            // written into every audit row of the verification (session 17's attack:
            // `低保 徐明远` was, in each of them, and served by `GET /v1/audit`)
            if self.holds_a_name(p) {
                return Err(bad(
                    "purpose_invalid",
                    "purpose",
                    "purpose must not hold a member's or supporter's name (it is written into the audit log)",
                ));
            }
        }
        let purpose = self
            .purpose
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .unwrap_or("verification")
            .chars()
            .take(200)
            .collect();
        Ok(ValidHousehold {
            household,
            members,
            supporters,
            persons,
            purpose,
        })
    }
}

/// What one source answered for the household's persons (one request per source).
#[derive(Debug, Clone)]
pub enum SourceAnswer {
    /// Records (possibly none), and how old the answer is (seconds; 0 when fresh).
    Answered {
        /// The records, §2 columns in [`SourceKind::columns`] order.
        records: RecordSet,
        /// Age of the answer, seconds.
        age_s: u64,
    },
    /// No usable answer: the report says `unverified` with this reason.
    Failed {
        /// Stable reason code (`timeout`, `http_status`, `malformed`, …).
        code: String,
        /// A sentence (no values of persons).
        message: String,
    },
}

/// The sources' answers linked to a household's persons: what [`super::build_report`]
/// reads.
#[derive(Debug, Default)]
pub struct Linked {
    /// Per distinct person (by ID key).
    pub states: Vec<PersonState>,
    /// Index into `states` per person position (members, then supporters).
    pub position: Vec<usize>,
    /// One record set per source, [`SourceKind::ALL`] order.
    pub record_sets: Vec<RecordSet>,
    /// Sources that failed: (source, `code: message`).
    pub unverified: Vec<(SourceKind, String)>,
    /// Answer ages of the sources that answered.
    pub ages_s: Vec<(SourceKind, u64)>,
    /// Records that named none of the persons, or no valid ID (not used), per source.
    pub foreign_records: Vec<(SourceKind, u64)>,
}

/// Link every answered record to a person by the normalised ID key (as the batch does),
/// add it to the person's evidence with [`crate::evidence::PersonEvidence::add`], and mark a source whose
/// row of a person cannot be read `unverified` for that person (never zero). A source
/// missing from `answers` is `unverified` (`source_not_queried`).
///
/// No period check is made here, unlike the batch's `source_out_of_period`: the batch
/// decides that over a whole extract (no row of a county's tax file is of year Y: a stale
/// export), while an answer holds only this household's persons' records, and a person whose
/// records are all of earlier periods (wages that stopped last year) is a true "no income of
/// the period", which a batch run over a current extract also reports. Referring such
/// households would make the on-demand report differ from the batch's for the same data.
pub fn link_answers(
    persons: &[IdNumber],
    answers: Vec<(SourceKind, SourceAnswer)>,
    frame: &Frame,
    policy: &Policy,
) -> Linked {
    let mut index: HashMap<u64, usize> = HashMap::new();
    let mut out = Linked::default();
    for p in persons {
        let n = index.len();
        let i = *index.entry(p.key()).or_insert(n);
        out.position.push(i);
    }
    out.states = (0..index.len()).map(|_| PersonState::default()).collect();
    out.record_sets = SourceKind::ALL
        .iter()
        .map(|_| RecordSet::default())
        .collect();
    let mut answered = [false; SourceKind::ALL.len()];
    for (kind, answer) in answers {
        let si = super::source_index(kind);
        answered[si] = true;
        match answer {
            SourceAnswer::Failed { code, message } => {
                out.unverified.push((kind, format!("{code}: {message}")));
            }
            SourceAnswer::Answered { records, age_s } => {
                out.ages_s.push((kind, age_s));
                let mut foreign = 0u64;
                // (person, values) of the records read so far: a record repeating an earlier
                // one of the same person value for value is counted once and leaves the
                // person's source incomplete, as in the batch (`row_duplicate`)
                let mut seen: std::collections::HashSet<(usize, Vec<u8>)> =
                    std::collections::HashSet::new();
                for (ri, rec) in records.records.iter().enumerate() {
                    let Some(&pi) = IdNumber::parse(&rec.id_number, frame.as_of)
                        .ok()
                        .and_then(|(id, _)| index.get(&id.key()))
                    else {
                        foreign += 1;
                        continue;
                    };
                    let p = &mut out.states[pi];
                    // the values as the rules read them (`2026/10/31` is `2026-10-31`)
                    let read = crate::evidence::read_key(kind, &rec.values);
                    if !seen.insert((pi, read)) {
                        if !p.incomplete.iter().any(|(k, _)| *k == kind) {
                            p.incomplete.push((
                                kind,
                                format!(
                                    "row_duplicate: a {} record of a person repeats an earlier one value for value (counted once; whether the department meant two is not guessed)",
                                    kind.name()
                                ),
                            ));
                        }
                        continue;
                    }
                    match p.evidence.add(kind, &rec.values, frame, policy) {
                        Ok(true) => p.records.push((si as u8, ri as u32)),
                        Ok(false) => {}
                        Err(fe) => {
                            if !p.incomplete.iter().any(|(k, _)| *k == kind) {
                                p.incomplete.push((
                                    kind,
                                    format!(
                                        "rows_unreadable: a {} record of a person could not be read ({}: {})",
                                        kind.name(),
                                        fe.code,
                                        fe.column
                                    ),
                                ));
                            }
                        }
                    }
                }
                drop(seen);
                if foreign > 0 {
                    out.foreign_records.push((kind, foreign));
                }
                out.record_sets[si] = records;
            }
        }
    }
    for (si, kind) in SourceKind::ALL.iter().enumerate() {
        if !answered[si] {
            out.unverified.push((
                *kind,
                "source_not_queried: no connection to this source is configured".into(),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::id_number::make_id;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn household(supporters: serde_json::Value) -> HouseholdRequest {
        let member = make_id(620503, d(1980, 1, 1), 123).expose();
        serde_json::from_value(serde_json::json!({
            "household_id": "APP-1", "region_code": "620503", "area": "rural",
            "programme": "dibao", "purpose": "application",
            "members": [{"id_number": member, "relation": "applicant", "consent_ref": "cr_m"}],
            "supporters": supporters,
        }))
        .unwrap()
    }

    /// Found by the s8 review: a region code typed in full-width digits, or cut short, was
    /// refused with `region_forbidden` (403) by `POST /v1/consents`. The request reads it as
    /// `RegionCode::parse` does everywhere (full-width digits as ASCII, as ID numbers); a code
    /// that is not one is `region_code_invalid` naming the field.
    #[test]
    fn a_full_width_region_code_is_read_and_a_short_one_is_a_format_error() {
        let as_of = d(2026, 11, 1);
        let mut h = household(serde_json::json!([]));
        h.region_code = "６２０５０３".into();
        let v = h.validate(as_of, 20).expect("valid");
        assert_eq!(v.household.region_code, "620503");
        for bad in ["62050", "６２０５０", "62050X", ""] {
            h.region_code = bad.into();
            let e = h.validate(as_of, 20).expect_err(bad);
            assert_eq!(
                (e.code, e.field.as_str()),
                ("region_code_invalid", "region_code"),
                "{bad}"
            );
        }
    }

    /// The request reads a vocabulary word as the batch's caseload does: full-width letters
    /// as ASCII, zero-width characters and a BOM removed; any other word is refused.
    #[test]
    fn a_vocabulary_word_is_read_without_width_or_invisible_characters() {
        let as_of = d(2026, 11, 1);
        let mut h = household(serde_json::json!([]));
        h.area = "\u{feff}ｒｕｒａｌ".into();
        h.programme = "di\u{200b}bao".into();
        let v = h.validate(as_of, 20).expect("valid");
        assert_eq!(
            (v.household.area.as_str(), v.household.programme.as_str()),
            ("rural", "dibao")
        );
        // a Chinese word for a §2 word is that word (since session 29), as the caseload reads it
        h.area = "城镇".into();
        h.programme = "最低生活保障".into();
        let v = h.validate(as_of, 20).expect("valid");
        assert_eq!(
            (v.household.area.as_str(), v.household.programme.as_str()),
            ("urban", "dibao")
        );
        h.area = "城里".into();
        let e = h
            .validate(as_of, 20)
            .expect_err("not a word of the vocabulary");
        assert_eq!((e.code, e.field.as_str()), ("value_unknown", "area"));
    }

    /// An absent own_household_size is not given (never 1); one out of 1-50 is refused.
    #[test]
    fn an_absent_own_household_size_is_not_given_and_an_out_of_range_one_is_refused() {
        let as_of = d(2026, 11, 1);
        let member = make_id(620503, d(1980, 1, 1), 123).expose();
        let sup = make_id(620503, d(1950, 1, 1), 125).expose();
        let h = household(
            serde_json::json!([{"id_number": sup, "supports_id_number": member,
            "relation": "parent", "consent_ref": "cr_s"}]),
        );
        let v = h.validate(as_of, 20).expect("valid");
        assert_eq!(v.supporters[0].own_household_size, None);
        let h = household(serde_json::json!([{"id_number": sup, "relation": "parent",
            "own_household_size": 0, "consent_ref": "cr_s"}]));
        let e = h.validate(as_of, 20).expect_err("0 persons");
        assert_eq!(
            (e.code, e.field.as_str()),
            (
                "own_household_size_invalid",
                "supporters[0].own_household_size"
            )
        );
        // One supporter of the member sent twice (session 22's attack: sizes 4 and 50 gave
        // 50, and the household turned eligible): two sizes are refused; one size and none,
        // or the same twice, are that size.
        let twice = |a: serde_json::Value, b: serde_json::Value| {
            household(serde_json::json!([
                {"id_number": sup, "supports_id_number": member, "relation": "parent",
                 "own_household_size": a, "consent_ref": "cr_s"},
                {"id_number": sup, "supports_id_number": member, "relation": "parent",
                 "own_household_size": b, "consent_ref": "cr_s"}]))
            .validate(as_of, 20)
        };
        let e = twice(4.into(), 50.into()).expect_err("two sizes");
        assert_eq!(
            (e.code, e.field.as_str()),
            (
                "own_household_size_conflict",
                "supporters[1].own_household_size"
            )
        );
        for (a, b) in [(4.into(), 4.into()), (4.into(), serde_json::Value::Null)] {
            let v = twice(a, b).expect("one size");
            assert_eq!(v.supporters.len(), 1);
            assert_eq!(v.supporters[0].own_household_size, Some(4));
        }
    }

    /// Found by session 27's attack: a supporter of one member given twice with two
    /// relations was accepted and the second dropped without a word.
    #[test]
    fn a_supporter_of_one_member_given_twice_with_two_relations_is_refused() {
        let as_of = d(2026, 11, 1);
        let member = make_id(620503, d(1980, 1, 1), 123).expose();
        let sup = make_id(620503, d(1950, 1, 1), 125).expose();
        let twice = |a: &str, b: &str| {
            household(serde_json::json!([
                {"id_number": sup, "supports_id_number": member, "relation": a, "consent_ref": "cr_s"},
                {"id_number": sup, "supports_id_number": member, "relation": b, "consent_ref": "cr_s"}]))
            .validate(as_of, 20)
        };
        let e = twice("child", "parent").expect_err("two relations");
        assert_eq!(
            (e.code, e.field.as_str()),
            ("relation_conflict", "supporters[1].relation")
        );
        assert!(
            e.message.contains("(parent, earlier child)"),
            "{}",
            e.message
        );
        let v = twice("parent", " Parent ").expect("one relation");
        assert_eq!(v.supporters.len(), 1);
        assert_eq!(v.supporters[0].relation, "parent");
    }

    /// Found by the s7 attack in the batch (a bank row given twice counted its balance
    /// twice); the on-demand path reads source answers with the same rule.
    #[test]
    fn an_answered_record_repeated_value_for_value_is_counted_once_and_leaves_the_source_incomplete()
     {
        let as_of = d(2026, 11, 1);
        let policy = Policy::bundled();
        let frame = Frame::new(as_of, &policy);
        let member = make_id(620503, d(1980, 1, 1), 123);
        let other = make_id(620503, d(1981, 2, 2), 124);
        let columns: Vec<&'static str> =
            SourceKind::Bank.columns().iter().map(|c| c.name).collect();
        let row = |id: IdNumber, balance: &str, account: &str| hedui_connectors::Record {
            row: 0,
            id_number: id.expose(),
            values: columns
                .iter()
                .map(|c| match *c {
                    "balance" => Some(balance.to_string()),
                    "account_no_masked" => Some(account.to_string()),
                    "institution_code" => Some("B001".to_string()),
                    "as_of_date" => Some("2026-10-31".to_string()),
                    _ => None,
                })
                .collect(),
        };
        let answer = |records| SourceAnswer::Answered {
            records: RecordSet {
                columns: columns.clone(),
                records,
            },
            age_s: 0,
        };
        // the member's 1,000.00 twice (an answer repeating a row), another account of 50.00,
        // and the other person's 1,000.00 (the same values, another person: not a repeat)
        let linked = link_answers(
            &[member, other],
            vec![(
                SourceKind::Bank,
                answer(vec![
                    row(member, "1000.00", "1234"),
                    row(member, "1000.00", "1234"),
                    // s9 attack: a repeat spelled otherwise is a repeat too
                    row(member, " ¥1,000.0", "1234"),
                    row(member, "50.00", "5678"),
                    row(other, "1000.00", "1234"),
                ]),
            )],
            &frame,
            &policy,
        );
        let m = &linked.states[linked.position[0]];
        let o = &linked.states[linked.position[1]];
        assert_eq!(
            m.evidence.financial_assets, 105_000,
            "counted once: 1,050.00 yuan in fen"
        );
        assert_eq!(o.evidence.financial_assets, 100_000);
        assert_eq!(m.incomplete.len(), 1, "{:?}", m.incomplete);
        assert_eq!(m.incomplete[0].0, SourceKind::Bank);
        assert!(
            m.incomplete[0].1.starts_with("row_duplicate:"),
            "{:?}",
            m.incomplete
        );
        assert!(!m.incomplete[0].1.contains(&member.expose()));
        assert!(o.incomplete.is_empty(), "{:?}", o.incomplete);
    }

    #[test]
    fn negative_declared_money_and_implausibly_old_ids_are_refused_naming_the_field() {
        let as_of = d(2026, 11, 1);
        let mut h = household(serde_json::json!([]));
        h.declared_annual_income = Some("-1.00".into());
        let e = h.validate(as_of, 20).unwrap_err();
        assert_eq!(
            (e.code, e.field.as_str()),
            ("money_negative", "declared_annual_income")
        );
        h.declared_annual_income = Some("0".into());
        h.declared_financial_assets = Some("-0.01".into());
        let e = h.validate(as_of, 20).unwrap_err();
        assert_eq!(
            (e.code, e.field.as_str()),
            ("money_negative", "declared_financial_assets")
        );
        h.declared_financial_assets = Some("1234.50".into());
        let v = h.validate(as_of, 20).unwrap();
        assert_eq!(v.household.declared_financial_assets, Some(Fen(123_450)));
        // born 1800: a valid check character, but nobody alive
        let old = make_id(620503, d(1800, 3, 4), 12).expose();
        let e = household(
            serde_json::json!([{"id_number": old, "relation": "parent", "consent_ref": "c"}]),
        )
        .validate(as_of, 20)
        .unwrap_err();
        assert_eq!(
            (e.code, e.field.as_str()),
            ("id_number_invalid", "supporters[0].id_number")
        );
        assert!(!e.message.contains(&old));
        // 130 years to the day before the as-of date is accepted, a day more is not (session
        // 24's attack: the years alone were compared, so 1896-01-01 passed against 2026-11-01)
        use chrono::Datelike;
        let born = d(as_of.year() - 130, as_of.month(), as_of.day());
        for (birth, ok) in [(born, true), (born - chrono::Days::new(1), false)] {
            let id = make_id(620503, birth, 12).expose();
            let v = household(
                serde_json::json!([{"id_number": id, "relation": "parent", "consent_ref": "c"}]),
            )
            .validate(as_of, 20);
            assert_eq!(v.is_ok(), ok, "{birth}: {v:?}");
        }
    }

    /// Found by the s5 attack on the API: `APP\u{202e}1000-PPA` was accepted and logged,
    /// audited and shown as it displays (`APPAPP-0001`); a zero-width space made two ids
    /// that look alike.
    #[test]
    fn a_household_id_or_purpose_with_invisible_or_direction_characters_is_refused() {
        let as_of = d(2026, 11, 1);
        for bad_id in [
            "APP\u{202e}1000-PPA",
            "APP-1\u{200b}",
            "\u{2066}APP-1",
            "AP\u{00ad}P-1",
        ] {
            let mut h = household(serde_json::json!([]));
            h.household_id = bad_id.into();
            let e = h.validate(as_of, 20).unwrap_err();
            assert_eq!(
                (e.code, e.field.as_str()),
                ("household_id_invalid", "household_id")
            );
            assert!(!e.message.contains(bad_id));
        }
        for bad_purpose in ["dibao\u{202e}", "dibao\u{200d}application", "\u{feff}dibao"] {
            let mut h = household(serde_json::json!([]));
            h.purpose = Some(bad_purpose.into());
            let e = h.validate(as_of, 20).unwrap_err();
            assert_eq!((e.code, e.field.as_str()), ("purpose_invalid", "purpose"));
        }
        // a household_id holding a member's name, spaced or not, is refused without echoing it
        for bad_id in ["张伟家", "APP-张 伟-2026"] {
            let mut h = household(serde_json::json!([]));
            h.members[0].name = Some("张伟".into());
            h.household_id = bad_id.into();
            let e = h.validate(as_of, 20).unwrap_err();
            assert_eq!(
                (e.code, e.field.as_str()),
                ("household_id_invalid", "household_id")
            );
            assert!(!e.message.contains("张"));
        }
        let mut h = household(serde_json::json!([]));
        h.household_id = "申请-2026-0001".into();
        h.purpose = Some("低保申请 dibao".into());
        let v = h.validate(as_of, 20).unwrap();
        assert_eq!(v.household.id, "申请-2026-0001");
    }

    #[test]
    fn a_repeated_supporter_must_repeat_the_consent_and_a_member_cannot_be_a_supporter() {
        let s = make_id(620503, d(1950, 5, 6), 31).expose();
        let m = make_id(620503, d(1980, 1, 1), 123).expose();
        let sup = |id: &str, c: &str| serde_json::json!({"id_number": id, "relation": "parent", "consent_ref": c});
        let as_of = d(2026, 11, 1);
        // the same supporter twice with the same reference: one person, checked once
        let v = household(serde_json::json!([sup(&s, "cr_s"), sup(&s, "cr_s")]))
            .validate(as_of, 20)
            .unwrap();
        assert_eq!(v.persons.len(), 2);
        // another reference on the copy is refused, not ignored
        let e = household(serde_json::json!([sup(&s, "cr_s"), sup(&s, "bogus")]))
            .validate(as_of, 20)
            .unwrap_err();
        assert_eq!(
            (e.code, e.field.as_str()),
            ("consent_ref_conflict", "supporters[1].consent_ref")
        );
        // a member listed as a supporter
        let e = household(serde_json::json!([sup(&m, "cr_m")]))
            .validate(as_of, 20)
            .unwrap_err();
        assert_eq!(
            (e.code, e.field.as_str()),
            ("person_duplicate", "supporters[0].id_number")
        );
        // an ID number in the purpose
        let mut h = household(serde_json::json!([]));
        h.purpose = Some(format!("review {s}"));
        assert_eq!(h.validate(as_of, 20).unwrap_err().code, "purpose_invalid");
        assert!(holds_id_like("６２０５０３１９８００１０１１２３"));
        assert!(!holds_id_like("HH6205030000001"));
    }

    /// Session 17's attack (repro 08): a purpose holding an ID number in groups, with
    /// hyphens or one digit at a time passed (only contiguous digits were refused) and was
    /// written into every audit row of the verification.
    #[test]
    fn a_purpose_or_household_id_holding_an_id_number_in_groups_is_refused() {
        let s = make_id(620503, d(1950, 5, 6), 31).expose();
        let as_of = d(2026, 11, 1);
        let g = format!(
            "{} {} {} {} {}",
            &s[..4],
            &s[4..8],
            &s[8..12],
            &s[12..16],
            &s[16..]
        );
        let hyphens = format!("{}-{}-{}-{}", &s[..6], &s[6..10], &s[10..14], &s[14..]);
        let one_by_one: String = s.chars().flat_map(|c| [c, ' ']).collect();
        for spelled in [g, hyphens, one_by_one] {
            let mut h = household(serde_json::json!([]));
            h.purpose = Some(format!("review {spelled}"));
            let e = h.validate(as_of, 20).unwrap_err();
            assert_eq!((e.code, e.field.as_str()), ("purpose_invalid", "purpose"));
            assert!(!e.message.contains(&s[4..8]), "{}", e.message);
            assert_eq!(
                check_purpose(&format!("consent {spelled}"))
                    .unwrap_err()
                    .code,
                "purpose_invalid"
            );
            // and in a household_id, where it is a valid number
            let mut h = household(serde_json::json!([]));
            h.household_id = format!("H {spelled}");
            let e = h.validate(as_of, 20).unwrap_err();
            assert_eq!(
                (e.code, e.field.as_str()),
                ("household_id_invalid", "household_id")
            );
        }
        // an intake system's id in groups (region, year, sequence: 15 digits) is no ID number
        let mut h = household(serde_json::json!([]));
        h.household_id = "620503-2026-00001".into();
        assert!(h.validate(as_of, 20).is_ok());
        // between colons or in Chinese numerals (session 18's attack), a valid number
        for hid in [
            "6205:0319:7503:2454:0X",
            "H 六二〇五〇三一九七五〇三二四五四〇X",
        ] {
            let mut h = household(serde_json::json!([]));
            h.household_id = hid.into();
            let e = h.validate(as_of, 20).unwrap_err();
            assert_eq!(e.code, "household_id_invalid", "{hid}");
        }
        // session 19's attack: a region, a date after the as-of day and a sequence is no ID
        // number however it is separated; a time range is none
        for hid in [
            "620503#20261215#0008",
            "SQ(620503)20261215-0008",
            "HH2026-01-15 08:00~2026-01-15 18:00",
        ] {
            let mut h = household(serde_json::json!([]));
            h.household_id = hid.into();
            assert!(h.validate(as_of, 20).is_ok(), "{hid}");
        }
    }

    /// Session 17's attack (repro 03): a purpose holding a member's name (`低保 徐明远`) was
    /// taken and written in the clear into every audit row of the verification, while a
    /// household_id holding it was refused. One rule for both, supporters' names too.
    #[test]
    fn a_purpose_holding_a_name_of_the_request_is_refused_without_echoing_it() {
        let as_of = d(2026, 11, 1);
        let s = make_id(620503, d(1950, 5, 6), 31).expose();
        let with_names = || {
            let mut h = household(serde_json::json!([
                {"id_number": s, "name": "买买提·吐尔逊", "relation": "parent", "consent_ref": "cr_s"}
            ]));
            h.members[0].name = Some("徐明远".into());
            h
        };
        for purpose in [
            "低保 徐明远",
            "徐 明远 年审",
            "dibao 买买提吐尔逊",
            "赡养 买买提·吐尔逊",
            // session 26's attack: other separators, full-width letters
            "低保 徐明_远",
            "低保 徐明、远",
            "低保 徐（明）远",
            "低保 徐\u{3000}明远",
        ] {
            let mut h = with_names();
            h.purpose = Some(purpose.into());
            let e = h.validate(as_of, 20).unwrap_err();
            assert_eq!(
                (e.code, e.field.as_str()),
                ("purpose_invalid", "purpose"),
                "{purpose}"
            );
            assert!(!e.message.contains('徐') && !e.message.contains('买'));
        }
        // the same purpose without the name, or a name of one character: taken
        for purpose in ["低保年审", "低保 徐"] {
            let mut h = with_names();
            h.purpose = Some(purpose.into());
            assert!(h.validate(as_of, 20).is_ok(), "{purpose}");
        }
        // a name given with a zero-width space or in full-width letters (session 26's attack)
        let mut h = with_names();
        h.members[0].name = Some("ＸＵ Ｍｉｎｇｙｕａｎ".into());
        h.purpose = Some("dibao XU Mingyuan".into());
        assert_eq!(h.validate(as_of, 20).unwrap_err().code, "purpose_invalid");
        // and an ID number's digits with text between them, in a purpose or household_id
        let mut h = with_names();
        h.purpose = Some(format!(
            "低保 {} 年{}月{}日 {}",
            &s[..6],
            &s[6..10],
            &s[10..14],
            &s[14..]
        ));
        assert_eq!(h.validate(as_of, 20).unwrap_err().code, "purpose_invalid");
        let mut h = with_names();
        h.household_id = format!("APP-{}-{}年{}-{}", &s[..6], &s[6..10], &s[10..14], &s[14..]);
        assert_eq!(
            h.validate(as_of, 20).unwrap_err().code,
            "household_id_invalid"
        );
    }
}
