//! Policy files: a region's thresholds and rules as data (`policies/*.toml`).
//!
//! Two steps, as with all configuration: [`PolicyFile`] is what the file says (serde, yuan
//! strings, clause texts); [`Policy`] is the validated form the rules read (fen, integer
//! ratios). Every rule carries the clause it implements, copied into each finding.

use std::path::Path;

use crate::domain::Fen;

/// Errors loading a policy file.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("cannot read policy file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML for a policy.
    #[error("policy file {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong (field named).
        message: String,
    },
    /// A value is out of range or malformed.
    #[error("policy file {path}: {field}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// The field, dotted.
        field: String,
        /// What is wrong.
        message: String,
    },
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Clause {
    clause: String,
}

/// What a policy file says (see `policies/gansu-illustrative-2026.toml`).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    id: String,
    title: String,
    region_prefix: String,
    effective_from: chrono::NaiveDate,
    illustrative: bool,
    dibao_standard: StandardSection,
    income: IncomeSection,
    support: SupportSection,
    financial_assets: AssetSection,
    vehicle: VehicleSection,
    housing: HousingSection,
    market_entity: EntitySection,
    supporter_assets: SupporterSection,
    household_composition: CompositionSection,
    source_unverified: Clause,
    member_identity: Clause,
    caseload_fault: Clause,
    consent: Clause,
    gradual_exit: GradualSection,
    single_person_option: SingleSection,
    review: ReviewSection,
    declared_gap: GapSection,
    #[serde(default)]
    possible_match: Option<LinkSection>,
}

/// `[possible_match]`: the error-tolerant linkage's thresholds (match weights in bits) and the
/// clause cited when a possible match refers a household (issue 7).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkSection {
    clause: String,
    match_weight: f64,
    possible_match_weight: f64,
    /// Whether the batch's scan also reads `name` to find rows keyed with another person's
    /// valid ID (default true).
    #[serde(default)]
    wrong_valid_id_candidates: Option<bool>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StandardSection {
    clause: String,
    urban_monthly: String,
    rural_yearly: String,
}
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct IncomeSection {
    clause: String,
    employment_deduction_pct: u32,
    window_months: u32,
    resident_pension_excluded_years: [i32; 2],
}
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SupportSection {
    clause: String,
    threshold_standard_multiple: String,
    share_pct: u32,
}
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AssetSection {
    clause: String,
    months_of_standard: u32,
}
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct VehicleSection {
    clause: String,
    exempt_kinds: Vec<String>,
}
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct HousingSection {
    clause: String,
    max_residential: String,
    business_usages: Vec<String>,
}
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct EntitySection {
    clause: String,
    capital_threshold: String,
}
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SupporterSection {
    clause: String,
    vehicle_price_above: String,
    residential_at_least: String,
    capital_threshold: String,
}
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CompositionSection {
    clause: String,
    statuses: Vec<String>,
}
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct GradualSection {
    clause: String,
    months: u32,
}
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SingleSection {
    clause: String,
    disability_grades: Vec<u8>,
}
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewSection {
    clause: String,
    six_monthly_categories: Vec<String>,
    default_months: u32,
    short_months: u32,
}
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct GapSection {
    clause: String,
    income_pct: u32,
    income_min: String,
    assets_pct: u32,
    assets_min: String,
}

/// The rules a policy file's clauses are cited for, in report order.
pub const RULES: [&str; 15] = [
    "income",
    "financial_assets",
    "vehicle",
    "housing",
    "market_entity",
    "supporter_assets",
    "household_composition",
    "source_unverified",
    "member_identity",
    "consent_missing",
    "caseload_fault",
    "gradual_exit",
    "single_person_option",
    "declared_gap",
    "review",
];

/// A validated policy: the figures the rules use, in engine units.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Policy {
    /// Policy id (e.g. `gansu-illustrative-2026`).
    pub id: String,
    /// Human title.
    pub title: String,
    /// Region prefix it applies to (GB/T 2260, 2-6 digits).
    pub region_prefix: String,
    /// First as-of date it applies to.
    pub effective_from: chrono::NaiveDate,
    /// Whether the figures are illustrative (not an official notice).
    pub illustrative: bool,
    /// S × 12 for urban households, fen per person per year.
    pub standard_year_urban: Fen,
    /// S × 12 for rural households, fen per person per year.
    pub standard_year_rural: Fen,
    /// Employment-cost deduction, percent of W.
    pub employment_deduction_pct: i64,
    /// Months in the income window before the month of D.
    pub window_months: u32,
    /// Years of D during which resident pensions are excluded (inclusive).
    pub resident_pension_excluded_years: (i32, i32),
    /// Support threshold multiple of S, in hundredths (1.5 → 150).
    pub support_multiple_pct: i64,
    /// Support share, percent.
    pub support_share_pct: i64,
    /// Asset threshold in months of S per person.
    pub asset_months: i64,
    /// Vehicle kinds that never count.
    pub exempt_vehicle_kinds: Vec<String>,
    /// Residential count (share-weighted, hundredths of a property) above which housing is
    /// ineligible (1.00 → 100).
    pub max_residential_hundredths: i64,
    /// Usages that are business property.
    pub business_usages: Vec<String>,
    /// Subscribed capital threshold of a member's enterprise, fen.
    pub entity_capital: Fen,
    /// Supporter vehicle purchase price threshold (strictly above), fen.
    pub supporter_vehicle_price: Fen,
    /// Supporter residential count at or above which assets refer (hundredths).
    pub supporter_residential_hundredths: i64,
    /// Supporter entity capital threshold, fen.
    pub supporter_capital: Fen,
    /// Registration statuses that refer a member.
    pub gone_statuses: Vec<String>,
    /// Gradual exit period, months.
    pub gradual_exit_months: u32,
    /// Disability grades for the single-person option.
    pub single_person_grades: Vec<u8>,
    /// Categories reviewed every `short_months`.
    pub six_monthly_categories: Vec<String>,
    /// Default review interval, months.
    pub review_default_months: u32,
    /// Short review interval, months.
    pub review_short_months: u32,
    /// Declared-gap thresholds: income percent and minimum (fen), assets percent and minimum.
    pub gap_income_pct: i64,
    /// Minimum income gap, fen.
    pub gap_income_min: Fen,
    /// Assets gap percent.
    pub gap_assets_pct: i64,
    /// Minimum assets gap, fen.
    pub gap_assets_min: Fen,
    /// The clause each rule implements, by rule name (see [`RULES`]).
    pub clauses: std::collections::BTreeMap<String, String>,
    /// Thresholds of the error-tolerant linkage (`[possible_match]`; bits), or its defaults.
    pub link_thresholds: crate::link::Thresholds,
    /// `[possible_match] wrong_valid_id_candidates` (default `true`): the batch's scan reads
    /// each source row's `name` beside its ID number so that a row keyed with another person's
    /// valid ID but bearing a caseload person's name and ID birth date becomes a
    /// `possible_match` candidate (`crate::link::caseload::NameDateIndex`). `false` keeps the
    /// scan on `id_number` alone (about 15 % less batch CPU on the 30k county, such rows then
    /// stay unlinked), for runs where that cost matters more than those rows.
    pub wrong_valid_id_candidates: bool,
}

impl Policy {
    /// Load and validate a policy file.
    ///
    /// # Errors
    /// [`PolicyError`] naming the file and the field.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Policy::from_toml(&text, &path.display().to_string())
    }

    /// The policy shipped with hedui (`policies/gansu-illustrative-2026.toml`), used by
    /// `hedui demo` and as the default.
    pub fn bundled() -> Policy {
        Policy::from_toml(
            include_str!("../../policies/gansu-illustrative-2026.toml"),
            "bundled policy",
        )
        .expect("the bundled policy file is valid (checked by a test)")
    }

    /// Parse and validate policy TOML; `origin` names it in errors.
    ///
    /// # Errors
    /// [`PolicyError::Parse`] / [`PolicyError::Invalid`].
    pub fn from_toml(text: &str, origin: &str) -> Result<Policy, PolicyError> {
        // The message and the line only: toml's Display quotes the offending line, which
        // could be a key or a person's data if the wrong file was given.
        let f: PolicyFile = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|r| text[..r.start.min(text.len())].matches('\n').count() + 1);
            PolicyError::Parse {
                path: origin.into(),
                message: format!(
                    "{}{}",
                    line.map(|l| format!("line {l}: ")).unwrap_or_default(),
                    e.message()
                ),
            }
        })?;
        let money = |field: &str, v: &str| {
            Fen::parse_yuan(v).map_err(|e| PolicyError::Invalid {
                path: origin.into(),
                field: field.into(),
                message: e.to_string(),
            })
        };
        let pct = |field: &str, v: u32, max: u32| {
            if v > max {
                Err(PolicyError::Invalid {
                    path: origin.into(),
                    field: field.into(),
                    message: format!("{v} > {max}"),
                })
            } else {
                Ok(i64::from(v))
            }
        };
        let urban = money(
            "dibao_standard.urban_monthly",
            &f.dibao_standard.urban_monthly,
        )?;
        let rural = money(
            "dibao_standard.rural_yearly",
            &f.dibao_standard.rural_yearly,
        )?;
        let multiple = money(
            "support.threshold_standard_multiple",
            &f.support.threshold_standard_multiple,
        )?;
        let mut clauses = std::collections::BTreeMap::new();
        for (rule, clause) in [
            ("income", &f.income.clause),
            ("dibao_standard", &f.dibao_standard.clause),
            ("support", &f.support.clause),
            ("financial_assets", &f.financial_assets.clause),
            ("vehicle", &f.vehicle.clause),
            ("housing", &f.housing.clause),
            ("market_entity", &f.market_entity.clause),
            ("supporter_assets", &f.supporter_assets.clause),
            ("household_composition", &f.household_composition.clause),
            ("source_unverified", &f.source_unverified.clause),
            ("member_identity", &f.member_identity.clause),
            ("consent_missing", &f.consent.clause),
            ("caseload_fault", &f.caseload_fault.clause),
            ("gradual_exit", &f.gradual_exit.clause),
            ("single_person_option", &f.single_person_option.clause),
            ("review", &f.review.clause),
            ("declared_gap", &f.declared_gap.clause),
        ]
        .into_iter()
        .chain(
            f.possible_match
                .as_ref()
                .map(|p| ("possible_match", &p.clause)),
        ) {
            if clause.trim().is_empty() {
                return Err(PolicyError::Invalid {
                    path: origin.into(),
                    field: format!("{rule}.clause"),
                    message: "every rule must cite the clause it implements".into(),
                });
            }
            clauses.insert(rule.to_string(), clause.clone());
        }
        let (lo, hi) = (
            f.income.resident_pension_excluded_years[0],
            f.income.resident_pension_excluded_years[1],
        );
        Ok(Policy {
            id: f.id,
            title: f.title,
            region_prefix: f.region_prefix,
            effective_from: f.effective_from,
            illustrative: f.illustrative,
            standard_year_urban: Fen(urban.0 * 12),
            standard_year_rural: rural,
            employment_deduction_pct: pct(
                "income.employment_deduction_pct",
                f.income.employment_deduction_pct,
                100,
            )?,
            window_months: f.income.window_months.max(1),
            resident_pension_excluded_years: (lo, hi),
            support_multiple_pct: multiple.0,
            support_share_pct: pct("support.share_pct", f.support.share_pct, 100)?,
            asset_months: i64::from(f.financial_assets.months_of_standard),
            exempt_vehicle_kinds: f.vehicle.exempt_kinds,
            max_residential_hundredths: money(
                "housing.max_residential",
                &f.housing.max_residential,
            )?
            .0,
            business_usages: f.housing.business_usages,
            entity_capital: money(
                "market_entity.capital_threshold",
                &f.market_entity.capital_threshold,
            )?,
            supporter_vehicle_price: money(
                "supporter_assets.vehicle_price_above",
                &f.supporter_assets.vehicle_price_above,
            )?,
            supporter_residential_hundredths: money(
                "supporter_assets.residential_at_least",
                &f.supporter_assets.residential_at_least,
            )?
            .0,
            supporter_capital: money(
                "supporter_assets.capital_threshold",
                &f.supporter_assets.capital_threshold,
            )?,
            gone_statuses: f.household_composition.statuses,
            gradual_exit_months: f.gradual_exit.months,
            single_person_grades: f.single_person_option.disability_grades,
            six_monthly_categories: f.review.six_monthly_categories,
            review_default_months: f.review.default_months,
            review_short_months: f.review.short_months,
            gap_income_pct: i64::from(f.declared_gap.income_pct),
            gap_income_min: money("declared_gap.income_min", &f.declared_gap.income_min)?,
            gap_assets_pct: i64::from(f.declared_gap.assets_pct),
            gap_assets_min: money("declared_gap.assets_min", &f.declared_gap.assets_min)?,
            clauses,
            link_thresholds: match &f.possible_match {
                Some(p) if p.possible_match_weight <= p.match_weight => crate::link::Thresholds {
                    match_weight: p.match_weight,
                    possible_match: p.possible_match_weight,
                },
                Some(_) => {
                    return Err(PolicyError::Invalid {
                        path: origin.into(),
                        field: "possible_match.possible_match_weight".into(),
                        message: "must not exceed match_weight".into(),
                    });
                }
                None => crate::link::caseload::DEFAULT_THRESHOLDS,
            },
            wrong_valid_id_candidates: f
                .possible_match
                .as_ref()
                .and_then(|p| p.wrong_valid_id_candidates)
                .unwrap_or(true),
        })
    }

    /// Check that this policy is in force on the as-of date `as_of` (on or after its
    /// `effective_from`). A run dated before it would apply standards that did not exist yet.
    ///
    /// # Errors
    /// A sentence naming the policy id, its `effective_from` and `as_of`.
    pub fn check_in_force(&self, as_of: chrono::NaiveDate) -> Result<(), String> {
        if as_of < self.effective_from {
            return Err(format!(
                "policy {} is in force from {}; the as-of date {as_of} is before it (give the policy file in force on {as_of} with --policy)",
                self.id, self.effective_from
            ));
        }
        Ok(())
    }

    /// Whether a household's `region_code` (GB/T 2260, as given) is six ASCII digits that
    /// start with this policy's `region_prefix`: only then do the policy's standards apply
    /// to it (`caseload_fault` fault `region_not_in_policy` otherwise). Surrounding spaces
    /// are ignored.
    pub fn covers_region(&self, region_code: &str) -> bool {
        let r = region_code.trim();
        r.len() == 6 && r.bytes().all(|c| c.is_ascii_digit()) && r.starts_with(&self.region_prefix)
    }

    /// S × 12 (fen per person per year) for an area; anything but `urban` is rural.
    pub fn standard_year(&self, area: &str) -> Fen {
        if area == "urban" {
            self.standard_year_urban
        } else {
            self.standard_year_rural
        }
    }

    /// The clause a rule implements.
    pub fn clause(&self, rule: &str) -> &str {
        self.clauses.get(rule).map(String::as_str).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_policy_loads_with_the_design_figures() {
        let p = Policy::bundled();
        assert_eq!(p.standard_year("urban"), Fen(840_000));
        assert_eq!(p.standard_year("rural"), Fen(500_000));
        assert_eq!(p.standard_year("other"), Fen(500_000));
        assert_eq!(p.support_multiple_pct, 150);
        assert_eq!(p.entity_capital, Fen(10_000_000));
        assert_eq!(p.supporter_vehicle_price, Fen(1_050_000));
        assert_eq!(p.max_residential_hundredths, 100);
        assert_eq!(p.supporter_residential_hundredths, 200);
        assert!(p.illustrative);
        for r in RULES {
            assert!(!p.clause(r).is_empty(), "rule {r} cites no clause");
        }
    }

    #[test]
    fn a_rule_without_a_clause_is_refused() {
        let text = include_str!("../../policies/gansu-illustrative-2026.toml")
            .replace("clause = \"DESIGN §3 Vehicles", "clause = \"\" # ");
        let e = Policy::from_toml(&text, "t.toml").unwrap_err();
        assert!(e.to_string().contains("vehicle.clause"), "{e}");
    }

    #[test]
    fn the_wrong_valid_id_candidate_test_is_on_unless_the_policy_turns_it_off() {
        let text = include_str!("../../policies/gansu-illustrative-2026.toml");
        assert!(
            Policy::from_toml(text, "t.toml")
                .unwrap()
                .wrong_valid_id_candidates
        );
        let off = text.replace(
            "wrong_valid_id_candidates = true",
            "wrong_valid_id_candidates = false",
        );
        assert!(
            !Policy::from_toml(&off, "t.toml")
                .unwrap()
                .wrong_valid_id_candidates
        );
        // a policy written before the switch existed keeps the test on
        let absent = text.replace("wrong_valid_id_candidates = true", "");
        assert!(
            Policy::from_toml(&absent, "t.toml")
                .unwrap()
                .wrong_valid_id_candidates
        );
        let typo = text.replace(
            "wrong_valid_id_candidates = true",
            "wrong_valid_id_candidates = \"yes\"",
        );
        let e = Policy::from_toml(&typo, "t.toml").unwrap_err();
        assert!(e.to_string().contains("expected a boolean"), "{e}");
    }

    #[test]
    fn a_malformed_amount_names_its_field() {
        let text = include_str!("../../policies/gansu-illustrative-2026.toml")
            .replace("urban_monthly = \"700.00\"", "urban_monthly = \"7OO\"");
        let e = Policy::from_toml(&text, "t.toml").unwrap_err();
        assert!(
            e.to_string().contains("dibao_standard.urban_monthly"),
            "{e}"
        );
    }
}
