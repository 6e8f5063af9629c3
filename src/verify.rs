//! One engine for batch and on-demand verification: from a household's persons, the
//! evidence linked to each of them and the sources' answers to one verification report
//! (DESIGN.md §1: link → evidence → assess → report; sealing is the caller's, with
//! [`crate::seal::RunSealer`]).
//!
//! The batch (`crate::batch`) links whole extracts inside a polars plan and hands each
//! household to [`build_report`]; the service (`crate::api`) and `hedui check` link the
//! records the department APIs answered for one household with [`link_answers`] (the same
//! normalised ID key, the same [`PersonEvidence::add`]) and call the same [`build_report`].
//! [`request`] holds the on-demand input (a household as JSON) and its validation.

pub mod request;

pub use request::{
    HouseholdRequest, InputError, Linked, SourceAnswer, ValidHousehold, link_answers,
};

use chrono::NaiveDate;
use hedui_connectors::{ColumnKind, SourceKind};

use crate::assess::{self, Household, HouseholdView, PersonView, Policy};
use crate::evidence::PersonEvidence;
use crate::ingest::caseload::{Member, Supporter};
use crate::report::{
    PersonEntry, PolicyRef, ReportRecord, SourceSection, SourceStatus, VerificationReport,
};

/// What the linked records say about one queried person.
#[derive(Debug, Default, Clone)]
pub struct PersonState {
    /// Income and asset evidence (amounts in fen).
    pub evidence: PersonEvidence,
    /// Sources whose rows of this person could not be read: (source, reason). Each makes
    /// the source `unverified` in the person's household's report.
    pub incomplete: Vec<(SourceKind, String)>,
    /// The records used, as (index into [`SourceKind::ALL`] and the record sets, record
    /// index in that set).
    pub records: Vec<(u8, u32)>,
    /// Error-tolerant links and possible matches of this person (issue 7; batch only:
    /// `crate::link::caseload`). Empty on demand, where sources answer by exact ID number.
    pub links: crate::link::caseload::PersonLinks,
}

impl PersonState {
    /// Mark `kind` incomplete for this person (its source is `unverified` in the household's
    /// report), keeping the first reason given for that source.
    fn mark_incomplete(&mut self, kind: SourceKind, reason: impl FnOnce() -> String) {
        if !self.incomplete.iter().any(|(k, _)| *k == kind) {
            self.incomplete.push((kind, reason()));
        }
    }

    /// Mark `kind` incomplete because one of its rows carries an ID number that differs
    /// from this person's only in the check character (`rows_quarantined`): it may be theirs.
    pub fn mark_near_miss(&mut self, kind: SourceKind) {
        self.mark_incomplete(kind, || {
            format!(
                "rows_quarantined: a {} row whose ID differs from a person's only in the check character",
                kind.name()
            )
        });
    }

    /// Mark `kind` incomplete because a row of this person's in it could not be read
    /// (`rows_quarantined`).
    pub fn mark_row_unreadable(&mut self, kind: SourceKind) {
        self.mark_incomplete(kind, || {
            format!(
                "rows_quarantined: a {} row of a person could not be read",
                kind.name()
            )
        });
    }
}

/// Everything [`build_report`] reads for one household.
pub struct ReportInput<'a> {
    /// The household row.
    pub household: &'a Household,
    /// Member rows.
    pub members: &'a [&'a Member],
    /// Distinct supporters.
    pub supporters: &'a [&'a Supporter],
    /// Per person (members, then supporters): the linked evidence, or `None` when the
    /// person was not queried (invalid ID or no consent).
    pub states: &'a [Option<&'a PersonState>],
    /// One record set per source, in [`SourceKind::ALL`] order (what `records` index).
    pub record_sets: &'a dyn crate::records::RecordLookup,
    /// Sources not answered for this household: (source, `code: message`).
    pub unverified: &'a [(SourceKind, String)],
    /// How old each answered source's answer is, seconds (on demand, from the cache);
    /// empty in a batch.
    pub ages_s: &'a [(SourceKind, u64)],
    /// The policy.
    pub policy: &'a Policy,
    /// The run (batch run id, or the on-demand verification id).
    pub run_id: &'a str,
    /// As-of date D.
    pub as_of: NaiveDate,
}

/// Assess one household and build its report (DESIGN.md §4). Returns the report and the
/// verified-over-declared income gap in fen (for the batch summary), if any.
///
/// The report id is `<run_id>/<household_id>`. Sources in `unverified`, or in a person's
/// `incomplete`, are `unverified` with their reason; the others are `verified` when they
/// hold records of the household's persons, else `no_records`.
pub fn build_report(input: &ReportInput<'_>) -> (VerificationReport, Option<i64>) {
    let hh = input.household;
    let ms = input.members;
    let ss = input.supporters;
    let states = input.states;
    let mut unverified: Vec<(SourceKind, String)> = input.unverified.to_vec();
    for st in states.iter().flatten() {
        for (k, why) in &st.incomplete {
            if !unverified.iter().any(|(u, _)| u == k) {
                unverified.push((*k, why.clone()));
            }
        }
    }
    unverified.sort_by_key(|(k, _)| *k);
    let view = HouseholdView {
        household: hh,
        members: ms
            .iter()
            .zip(states.iter())
            .map(|(m, st)| PersonView {
                id: m.id.clone(),
                relation: &m.relation,
                disability_grade: m.disability_grade,
                consent: m.consent,
                own_household_size: None,
                evidence: st.map(|s| &s.evidence),
            })
            .collect(),
        supporters: ss
            .iter()
            .zip(&states[ms.len()..])
            .map(|(s, st)| PersonView {
                id: s.id.clone(),
                relation: &s.relation,
                disability_grade: None,
                consent: s.consent,
                own_household_size: s.own_household_size,
                evidence: st.map(|s| &s.evidence),
            })
            .collect(),
        unverified: unverified.clone(),
    };
    let a = assess::assess(&view, input.policy, input.as_of);
    // Would confirming the household's possible matches (error-tolerant linkage, issue 7)
    // change an `eligible` or `ineligible` determination? Assess again with their records
    // added. (A record added can lift an `ineligible`: earned income that opens a gradual
    // exit, for one.)
    let decisive = a.determination != crate::report::Determination::Referred
        && states.iter().flatten().any(|s| s.links.has_possible())
        && {
            let frame = crate::evidence::Frame::new(input.as_of, input.policy);
            let alt: Vec<Option<PersonEvidence>> = states
                .iter()
                .map(|s| s.and_then(|s| s.links.what_if(&s.evidence, &frame, input.policy)))
                .collect();
            let mut v = view.clone();
            for (p, e) in v
                .members
                .iter_mut()
                .chain(v.supporters.iter_mut())
                .zip(&alt)
            {
                if let Some(e) = e {
                    p.evidence = Some(e);
                }
            }
            assess::assess(&v, input.policy, input.as_of).determination != a.determination
        };

    let mut persons = Vec::with_capacity(states.len());
    for (m, st) in ms.iter().zip(states.iter()) {
        persons.push(PersonEntry {
            role: "member".into(),
            relation: m.relation.clone(),
            id_number_masked: m
                .id
                .as_ref()
                .map(|i| i.masked())
                .unwrap_or_else(|_| m.id_masked.clone()),
            linked: st.is_some(),
            consent: m.consent,
        });
    }
    for (s, st) in ss.iter().zip(&states[ms.len()..]) {
        persons.push(PersonEntry {
            role: "supporter".into(),
            relation: s.relation.clone(),
            id_number_masked: s
                .id
                .as_ref()
                .map(|i| i.masked())
                .unwrap_or_else(|_| s.id_masked.clone()),
            linked: st.is_some(),
            consent: s.consent,
        });
    }
    let mut sections: Vec<SourceSection> = SourceKind::ALL
        .iter()
        .map(|k| SourceSection {
            source: k.name().into(),
            status: SourceStatus::NoRecords,
            age_s: None,
            reason: None,
            columns: k.columns().iter().map(|c| c.name.to_string()).collect(),
            records: Vec::new(),
        })
        .collect();
    for (pi, st) in states.iter().enumerate() {
        let Some(st) = st else { continue };
        for &(si, ri) in &st.records {
            let Some((row, vals)) = input.record_sets.record(si as usize, ri as usize) else {
                continue;
            };
            // ID numbers inside a record (e.g. household_head_id) are masked like every
            // other ID in a report.
            let kinds = SourceKind::ALL[si as usize].columns();
            let values = vals
                .iter()
                .zip(kinds)
                .map(|(v, spec)| match spec.kind {
                    ColumnKind::IdNumber => v.map(crate::domain::mask),
                    _ => v.map(str::to_string),
                })
                .collect();
            sections[si as usize].records.push(ReportRecord {
                person: pi,
                row,
                values,
            });
        }
    }
    for s in &mut sections {
        if !s.records.is_empty() {
            s.status = SourceStatus::Verified;
        }
    }
    for (k, why) in &unverified {
        let s = &mut sections[SourceKind::ALL
            .iter()
            .position(|x| x == k)
            .expect("known source")];
        s.status = SourceStatus::Unverified;
        s.reason = Some(why.clone());
    }
    for (k, age) in input.ages_s {
        let s = &mut sections[source_index(*k)];
        if s.status != SourceStatus::Unverified {
            s.age_s = Some(*age);
        }
    }
    let s_year = input.policy.standard_year(&hh.area).0;
    let gap = assess::income_gap(&a, hh);
    let mut report = VerificationReport {
        report_id: format!("{}/{}", input.run_id, hh.id),
        run_id: input.run_id.to_string(),
        household_id: hh.id.clone(),
        region_code: hh.region_code.clone(),
        area: hh.area.clone(),
        programme: hh.programme.clone(),
        category: hh.category.clone(),
        as_of: input.as_of.to_string(),
        determination: a.determination,
        per_capita_monthly_income: a.per_capita_monthly_income.map(|f| f.to_yuan()),
        per_capita_financial_assets: a.per_capita_financial_assets.map(|f| f.to_yuan()),
        household_income_annual: a.income_whole.then(|| {
            crate::domain::Fen(
                crate::domain::money::div_round_half_up(a.income_x10000, 10_000) as i64,
            )
            .to_yuan()
        }),
        financial_assets_total: a
            .assets_whole
            .then(|| crate::domain::Fen(a.financial_assets).to_yuan()),
        members: a.members,
        review_due: a.review_due,
        findings: a.findings,
        sources: sections,
        persons,
        policy: PolicyRef {
            id: input.policy.id.clone(),
            title: input.policy.title.clone(),
            illustrative: input.policy.illustrative,
            // (empty for an `area` outside the vocabulary: no standard is the household's,
            // and the rules applied none; the session 26 trial read the rural one as applied)
            dibao_standard_monthly: if matches!(hh.area.as_str(), "urban" | "rural") {
                crate::domain::Fen(
                    crate::domain::money::div_round_half_up(i128::from(s_year), 12) as i64,
                )
                .to_yuan()
            } else {
                String::new()
            },
        },
        fuzzy_links: Vec::new(),
        possible_matches: Vec::new(),
    };
    let links: Vec<Option<&crate::link::caseload::PersonLinks>> =
        input.states.iter().map(|s| s.map(|s| &s.links)).collect();
    crate::link::caseload::attach(&mut report, &links, input.policy, decisive);
    (report, gap)
}

/// Index of a source in [`SourceKind::ALL`] (the record sets' and sections' order).
pub fn source_index(kind: SourceKind) -> usize {
    SourceKind::ALL
        .iter()
        .position(|x| *x == kind)
        .expect("every SourceKind is in SourceKind::ALL")
}

/// The on-demand report of a validated household from its linked answers: the same
/// [`build_report`] as the batch, with every person queried (consent was checked before).
pub fn report_on_demand(
    v: &ValidHousehold,
    linked: &Linked,
    policy: &Policy,
    run_id: &str,
    as_of: NaiveDate,
) -> VerificationReport {
    let ms: Vec<&Member> = v.members.iter().collect();
    let ss: Vec<&Supporter> = v.supporters.iter().collect();
    let states: Vec<Option<&PersonState>> = linked
        .position
        .iter()
        .map(|&i| linked.states.get(i))
        .collect();
    build_report(&ReportInput {
        household: &v.household,
        members: &ms,
        supporters: &ss,
        states: &states,
        record_sets: &linked.record_sets,
        unverified: &linked.unverified,
        ages_s: &linked.ages_s,
        policy,
        run_id,
        as_of,
    })
    .0
}

#[cfg(test)]
mod possible_match_tests {
    use super::*;
    use crate::domain::id_number::make_id;
    use crate::link::caseload::{LinkEntry, PersonLinks};
    use crate::report::{Determination, Outcome};
    use hedui_connectors::RecordSet;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn values(v: &[&str]) -> Vec<Option<String>> {
        v.iter()
            .map(|x| (!x.is_empty()).then(|| x.to_string()))
            .collect()
    }

    /// A one-person urban household with nothing but a registration record, and a keyless
    /// row of `kind` that may be the member's (a possible match).
    fn report_with(kind: SourceKind, row: &[&str]) -> VerificationReport {
        let policy = Policy::bundled();
        let as_of = day("2026-11-01");
        let household = Household {
            id: "H".into(),
            region_code: "620503".into(),
            area: "urban".into(),
            programme: "dibao".into(),
            category: String::new(),
            declared_annual_income: None,
            declared_financial_assets: None,
            last_verified: Some(day("2026-10-01")),
            faults: Vec::new(),
            at: None,
        };
        let id = make_id(620503, day("1970-01-01"), 101);
        let member = Member {
            household: 0,
            id: Ok(id),
            id_masked: id.masked(),
            relation: "applicant".into(),
            disability_grade: None,
            consent: true,
            name: Some("欧阳修远".into()),
        };
        let mut state = PersonState::default();
        let frame = crate::evidence::Frame::new(as_of, &policy);
        state
            .evidence
            .add(
                SourceKind::HouseholdRegistration,
                &values(&["male", "1970-01-01", "620503", "urban", "", "normal", ""]),
                &frame,
                &policy,
            )
            .unwrap();
        let mut links = PersonLinks::default();
        links.add(LinkEntry::Possible(
            crate::render::PossibleMatch {
                person: 0,
                source: kind.name().into(),
                row: 7,
                score: Some(0.8),
                reason: Some("possible_match".into()),
                fields: Vec::new(),
            },
            Some((kind, values(row))),
        ));
        state.links = links;
        let sets: Vec<RecordSet> = (0..12).map(|_| RecordSet::default()).collect();
        build_report(&ReportInput {
            household: &household,
            members: &[&member],
            supporters: &[],
            states: &[Some(&state)],
            record_sets: &sets,
            unverified: &[],
            ages_s: &[],
            policy: &policy,
            run_id: "r",
            as_of,
        })
        .0
    }

    fn finding(r: &VerificationReport) -> (Outcome, bool) {
        let f = r
            .findings
            .iter()
            .find(|f| f.rule == "possible_match")
            .expect("a possible_match finding");
        (
            f.outcome,
            f.evidence["would_change_determination"].as_bool().unwrap(),
        )
    }

    #[test]
    fn a_possible_match_that_would_make_the_household_ineligible_refers_it() {
        // a private car in normal use: confirmed, the household would be ineligible
        let r = report_with(
            SourceKind::VehicleVessel,
            &[
                "甘E53423",
                "car",
                "private",
                "136800.00",
                "2018-04-19",
                "normal",
            ],
        );
        assert_eq!(r.determination, Determination::Referred);
        assert_eq!(finding(&r), (Outcome::Referred, true));
        assert_eq!(r.possible_matches.len(), 1);
        // its record is not evidence: nothing counts the car
        assert!(
            r.sources
                .iter()
                .all(|s| s.records.is_empty() || s.source == "household_registration")
        );
    }

    #[test]
    fn a_possible_match_that_cannot_change_the_outcome_is_shown_and_the_household_stays_eligible() {
        // a deposit of 10 yuan: confirmed or not, the household is eligible
        let r = report_with(
            SourceKind::Bank,
            &["ICBC", "6217****4608", "current", "10.00", "2026-10-28"],
        );
        assert_eq!(r.determination, Determination::Eligible);
        assert_eq!(finding(&r), (Outcome::Info, false));
        assert_eq!(r.possible_matches.len(), 1);
    }
}
