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
    #[error("cannot read policy file {path}: {cause}")]
    Io {
        /// The file.
        path: String,
        /// The cause (in the message, and not the error's `source`, so that an error chain
        /// prints it once).
        cause: std::io::Error,
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
    #[serde(deserialize_with = "date_text_or_toml")]
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
    // a list, not `[i32; 2]`: serde read `[2021, 2023, 2025]` into two years and dropped the
    // third; the length is checked with a message
    resident_pension_excluded_years: Vec<i32>,
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

/// The income window a policy may give (`income.window_months`): 12, the only value.
/// DESIGN §3 reads a year of income (the 12 months before D) and the engine adds the window's
/// contribution bases and benefits as they are, without annualising them: a window of 6
/// would count half a year's income as a year's. A shorter or longer window is refused rather
/// than scaled, because 12 / n is not exact in fen for most n, and the reference reads 12.
pub const INCOME_WINDOW_MONTHS: u32 = 12;

/// The lengths of a policy's `region_prefix`: a GB/T 2260 province (`62`), prefecture
/// (`6205`) or county (`620503`), in ASCII digits.
pub const REGION_PREFIX_LENGTHS: [usize; 3] = [2, 4, 6];

/// The gradual exit periods a policy may give (`gradual_exit.months`), months. 0 is refused:
/// the rule would still grant a gradual exit, of no months.
pub const GRADUAL_EXIT_MONTHS: std::ops::RangeInclusive<u32> = 1..=12;

/// The review intervals a policy may give (`review.default_months`, `review.short_months`),
/// months: at 0 every household is due at every run, and an interval of years is no
/// periodic review (定期核查).
pub const REVIEW_MONTHS: std::ops::RangeInclusive<u32> = 1..=24;

/// `effective_from` as `"2026-01-01"` or as a TOML date `2026-01-01` (the usual TOML form,
/// found refused by session 17's attack with "invalid type: map").
fn date_text_or_toml<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<chrono::NaiveDate, D::Error> {
    use serde::de::Error;
    let day = |s: &str| {
        chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map_err(|e| D::Error::custom(format!("{s:?} is not a date YYYY-MM-DD: {e}")))
    };
    match <toml::Value as serde::Deserialize>::deserialize(d)? {
        toml::Value::String(s) => day(&s),
        toml::Value::Datetime(dt) if dt.time.is_none() && dt.offset.is_none() => {
            day(&dt.to_string())
        }
        other => Err(D::Error::custom(format!(
            "{other} is not a date YYYY-MM-DD (a day, without a time)"
        ))),
    }
}

/// Plausible bounds of a 低保 notice's figures (yuan; months; percent; a multiple): a value
/// outside is a unit slip (a yearly figure in a monthly key, fen for yuan), refused (found by
/// session 17's attack: `urban_monthly = "8400"` and `rural_yearly = "450"` were applied and
/// moved hundreds of determinations). Urban standards run from ~600 to ~1,500 yuan a month,
/// rural ones from ~4,000 to ~18,000 a year (2024-2026).
pub const URBAN_MONTHLY_YUAN: std::ops::RangeInclusive<i64> = 100..=5_000;
/// See [`URBAN_MONTHLY_YUAN`].
pub const RURAL_YEARLY_YUAN: std::ops::RangeInclusive<i64> = 1_200..=60_000;
/// Months of S a household may hold per head in financial assets (see [`URBAN_MONTHLY_YUAN`]).
pub const MONTHS_OF_STANDARD: std::ops::RangeInclusive<u32> = 1..=120;
/// The employment-cost deduction of wages, percent (see [`URBAN_MONTHLY_YUAN`]).
pub const EMPLOYMENT_DEDUCTION_MAX_PCT: u32 = 50;
/// The multiple of S a supporter keeps per person, in hundredths (0.01 to 10).
pub const SUPPORT_MULTIPLE_MAX_PCT: i64 = 1_000;
/// A declared-gap percentage (see [`URBAN_MONTHLY_YUAN`]).
pub const GAP_MAX_PCT: u32 = 1_000;
/// The least match weight (bits) at which an error-tolerant link is used by the rules: odds
/// of 8 to 1 (89 %), the bundled policy's. Below it a weak link decides a household (found
/// by session 17's attack: at -2.5 bits, 15 %, a row matched on a name alone made two
/// households ineligible; DESIGN §1: a possible match goes to a person, never to a rule).
pub const MIN_MATCH_WEIGHT: f64 = 3.0;

/// The years `income.resident_pension_excluded_years` may name: four digits, as the tax
/// year of a record (a two-digit year is never guessed).
pub const POLICY_YEARS: std::ops::RangeInclusive<i32> = 1900..=9999;

/// A validated policy: the figures the rules use, in engine units.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Policy {
    /// Policy id (e.g. `gansu-illustrative-2026`).
    pub id: String,
    /// Human title.
    pub title: String,
    /// Region prefix it applies to (GB/T 2260, 2, 4 or 6 digits: [`REGION_PREFIX_LENGTHS`]).
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
    /// Months in the income window before the month of D: always
    /// [`INCOME_WINDOW_MONTHS`] (12).
    pub window_months: u32,
    /// Years of D during which resident pensions are excluded (inclusive, from ≤ to).
    pub resident_pension_excluded_years: (i32, i32),
    /// Support threshold multiple of S, in hundredths (1.5 → 150).
    pub support_multiple_pct: i64,
    /// Support share, percent.
    pub support_share_pct: i64,
    /// Asset threshold in months of S per person.
    pub asset_months: i64,
    /// Vehicle kinds that never count (§2 `vehicle_vessel.kind` values).
    pub exempt_vehicle_kinds: Vec<String>,
    /// Residential count (share-weighted, hundredths of a property) above which housing is
    /// ineligible (1.00 → 100).
    pub max_residential_hundredths: i64,
    /// Usages that are business property (§2 `real_estate.usage` values, never
    /// `residential`; not empty).
    pub business_usages: Vec<String>,
    /// Subscribed capital threshold of a member's enterprise, fen.
    pub entity_capital: Fen,
    /// Supporter vehicle purchase price threshold (strictly above), fen.
    pub supporter_vehicle_price: Fen,
    /// Supporter residential count at or above which assets refer (hundredths).
    pub supporter_residential_hundredths: i64,
    /// Supporter entity capital threshold, fen.
    pub supporter_capital: Fen,
    /// Registration statuses that refer a member (§2 `household_registration.status` values
    /// other than `normal`; `deceased` among them).
    pub gone_statuses: Vec<String>,
    /// Gradual exit period, months ([`GRADUAL_EXIT_MONTHS`]).
    pub gradual_exit_months: u32,
    /// Disability grades for the single-person option (§2 grades 1-4).
    pub single_person_grades: Vec<u8>,
    /// Categories reviewed every `short_months` (§2 `households.category` values).
    pub six_monthly_categories: Vec<String>,
    /// Default review interval, months ([`REVIEW_MONTHS`]).
    pub review_default_months: u32,
    /// Short review interval, months ([`REVIEW_MONTHS`], at most the default).
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
        let text = std::fs::read_to_string(path).map_err(|cause| PolicyError::Io {
            path: path.display().to_string(),
            cause,
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
    /// [`PolicyError::Parse`] (not TOML, an unknown key, a wrong type) /
    /// [`PolicyError::Invalid`] naming the dotted key, for a value that would not be applied
    /// as written: a standard or multiple of S at or below 0, an asset period of 0 months, a
    /// home count below 1.00, a price, capital or gap threshold below 0, an income window other
    /// than [`INCOME_WINDOW_MONTHS`], a pension exclusion that is not two four-digit years in
    /// order, a vocabulary value outside §2 (or an empty list where that means no rule), a
    /// gradual exit or review period outside [`GRADUAL_EXIT_MONTHS`] / [`REVIEW_MONTHS`], a
    /// `region_prefix` that is not 2, 4 or 6 digits, a rule without a clause.
    pub fn from_toml(text: &str, origin: &str) -> Result<Policy, PolicyError> {
        // The message and the line only: toml's Display quotes the offending line, which
        // could be a key or a person's data if the wrong file was given.
        let f: PolicyFile = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|r| text[..r.start.min(text.len())].matches('\n').count() + 1);
            // Where: the table the line is in and the key it sets, each only when it is a
            // plain name (found by session 26's attack: "line 40: missing field `clause`"
            // and "line 39: duplicate key" named neither `vehicle.clause` nor the key).
            let plain = |t: &str| {
                !t.is_empty()
                    && t.len() <= 64
                    && t.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            };
            let place = line.map(|l| {
                let lines: Vec<&str> = text.lines().take(l).collect();
                let table = lines
                    .iter()
                    .rev()
                    .map(|t| t.trim())
                    .find(|t| t.starts_with('['))
                    .map(|t| t.trim_matches(['[', ']']).trim())
                    .filter(|t| plain(t));
                let key = lines
                    .last()
                    .map(|t| t.trim())
                    .filter(|t| !t.starts_with('['))
                    .and_then(|t| t.split_once('='))
                    .map(|(k, _)| k.trim().trim_matches('"'))
                    .filter(|k| plain(k));
                let at = match (table, key) {
                    (Some(t), Some(k)) => format!(" (key `{t}.{k}`)"),
                    (Some(t), None) => format!(" (table `{t}`)"),
                    (None, Some(k)) => format!(" (key `{k}`)"),
                    (None, None) => String::new(),
                };
                format!("line {l}{at}: ")
            });
            PolicyError::Parse {
                path: origin.into(),
                message: format!("{}{}", place.unwrap_or_default(), e.message()),
            }
        })?;
        Policy::validate(f, origin)
    }

    /// The second step: what the file says → the figures the rules use. Every value is
    /// applied exactly or refused naming its key; nothing is clamped or guessed (found by the
    /// session-17 policy attack: a standard of -700.00, a window of 6 months, a misspelt
    /// vehicle kind and a prefix `6x` were loaded and silently gave wrong determinations).
    fn validate(f: PolicyFile, origin: &str) -> Result<Policy, PolicyError> {
        use hedui_connectors::schema::vocab;
        let invalid = |field: &str, message: String| PolicyError::Invalid {
            path: origin.into(),
            field: field.into(),
            message,
        };
        let money =
            |field: &str, v: &str| Fen::parse_yuan(v).map_err(|e| invalid(field, e.to_string()));
        // A standard, or a multiple of it: at 0 or below every test reads against nothing.
        let above_zero = |field: &str, v: &str, unit: &str, what: &str| {
            let x = money(field, v)?;
            if x.0 <= 0 {
                return Err(invalid(field, format!("{x}{unit}: {what} must be above 0")));
            }
            Ok(x)
        };
        // A price or capital threshold or a minimum gap: 0 is what a notice says by "any".
        let not_below_zero = |field: &str, v: &str, at_zero: &str| {
            let x = money(field, v)?;
            if x.0 < 0 {
                return Err(invalid(
                    field,
                    format!("{x} yuan: must not be below 0 (0: {at_zero})"),
                ));
            }
            Ok(x)
        };
        // A share-weighted count of homes (hundredths): a notice counts homes from one up.
        let homes = |field: &str, v: &str, why: &str| {
            let x = money(field, v)?;
            if x.0 < 100 {
                return Err(invalid(
                    field,
                    format!("{x}: a count of homes of at least 1.00 ({why})"),
                ));
            }
            Ok(x.0)
        };
        let pct = |field: &str, v: u32, max: u32| {
            if v > max {
                Err(invalid(field, format!("{v} > {max}")))
            } else {
                Ok(i64::from(v))
            }
        };
        // Every value of `values` in `allowed` (a §2 vocabulary, the connectors' list).
        let vocabulary = |field: &str, values: &[String], column: &str, allowed: &[&str]| {
            let unknown = values.iter().find(|v| !allowed.contains(&v.as_str()));
            unknown.map_or(Ok(()), |v| {
                Err(invalid(
                    field,
                    format!(
                        "{v:?} is not in the §2 vocabulary of {column} ({})",
                        allowed.join(", ")
                    ),
                ))
            })
        };
        let months = |field: &str, v: u32, range: &std::ops::RangeInclusive<u32>, what: &str| {
            if range.contains(&v) {
                Ok(v)
            } else {
                Err(invalid(
                    field,
                    format!("{v}: {what} is {} to {} months", range.start(), range.end()),
                ))
            }
        };

        if f.id.trim().is_empty() {
            return Err(invalid(
                "id",
                "is empty: the id names the policy in every report".into(),
            ));
        }
        if f.id.chars().any(char::is_control) {
            return Err(invalid(
                "id",
                "holds a control character (a line break?): the id is one line of every report"
                    .into(),
            ));
        }
        let prefix = &f.region_prefix;
        if !REGION_PREFIX_LENGTHS.contains(&prefix.len())
            || !prefix.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(invalid(
                "region_prefix",
                format!(
                    "{prefix:?}: a GB/T 2260 region code prefix is 2, 4 or 6 ASCII digits (62 a province, 6205 a prefecture, 620503 a county)"
                ),
            ));
        }
        // A province's or prefecture's own code (620000, 620500, 6200) is no prefix of its
        // counties': no household's code starts with it (session 17's attack: every household
        // referred as region_not_in_policy).
        if prefix.len() > 2 && prefix.ends_with("00") {
            let short = prefix.trim_end_matches("00");
            let short = if short.len() % 2 == 1 {
                &prefix[..short.len() + 1]
            } else {
                short
            };
            return Err(invalid(
                "region_prefix",
                format!(
                    "{prefix:?} is a province's or prefecture's own code, which no county's code starts with: write the prefix {short:?}"
                ),
            ));
        }

        // ---- thresholds
        let urban = above_zero(
            "dibao_standard.urban_monthly",
            &f.dibao_standard.urban_monthly,
            " yuan",
            "the dibao standard S",
        )?;
        let urban_year = urban.0.checked_mul(12).ok_or_else(|| {
            invalid(
                "dibao_standard.urban_monthly",
                format!("{urban} yuan: out of range"),
            )
        })?;
        let rural = above_zero(
            "dibao_standard.rural_yearly",
            &f.dibao_standard.rural_yearly,
            " yuan",
            "the dibao standard S",
        )?;
        let plausible = |field: &str, x: Fen, range: &std::ops::RangeInclusive<i64>, slip: &str| {
            if range.contains(&(x.0 / 100)) && (x.0 % 100 == 0 || x.0 / 100 < *range.end()) {
                Ok(())
            } else {
                Err(invalid(
                    field,
                    format!(
                        "{x} yuan: outside {} to {} yuan, the range of real notices ({slip}?)",
                        range.start(),
                        range.end()
                    ),
                ))
            }
        };
        plausible(
            "dibao_standard.urban_monthly",
            urban,
            &URBAN_MONTHLY_YUAN,
            "a yearly figure in the monthly key, or fen for yuan",
        )?;
        plausible(
            "dibao_standard.rural_yearly",
            rural,
            &RURAL_YEARLY_YUAN,
            "a monthly figure in the yearly key, or fen for yuan",
        )?;
        let multiple = above_zero(
            "support.threshold_standard_multiple",
            &f.support.threshold_standard_multiple,
            "",
            "the multiple of S a supporter keeps per person",
        )?;
        if multiple.0 > SUPPORT_MULTIPLE_MAX_PCT {
            return Err(invalid(
                "support.threshold_standard_multiple",
                format!(
                    "{multiple}: at most {}.00 times S (a larger one leaves no support owed by anyone: a unit slip?)",
                    SUPPORT_MULTIPLE_MAX_PCT / 100
                ),
            ));
        }
        if !MONTHS_OF_STANDARD.contains(&f.financial_assets.months_of_standard) {
            return Err(invalid(
                "financial_assets.months_of_standard",
                format!(
                    "{}: {} to {} months of S (at 0 any financial asset at all makes a household ineligible; more is a unit slip?)",
                    f.financial_assets.months_of_standard,
                    MONTHS_OF_STANDARD.start(),
                    MONTHS_OF_STANDARD.end(),
                ),
            ));
        }
        let max_residential = homes(
            "housing.max_residential",
            &f.housing.max_residential,
            "a household's one home never makes it ineligible",
        )?;
        let supporter_residential = homes(
            "supporter_assets.residential_at_least",
            &f.supporter_assets.residential_at_least,
            "at 0 every supporter, one without a home too, is referred",
        )?;
        let entity_capital = not_below_zero(
            "market_entity.capital_threshold",
            &f.market_entity.capital_threshold,
            "every enterprise held as legal representative or shareholder",
        )?;
        let supporter_vehicle_price = not_below_zero(
            "supporter_assets.vehicle_price_above",
            &f.supporter_assets.vehicle_price_above,
            "every priced non-exempt vehicle",
        )?;
        let supporter_capital = not_below_zero(
            "supporter_assets.capital_threshold",
            &f.supporter_assets.capital_threshold,
            "every active entity",
        )?;
        let gap_income_min = not_below_zero(
            "declared_gap.income_min",
            &f.declared_gap.income_min,
            "the percent alone",
        )?;
        let gap_assets_min = not_below_zero(
            "declared_gap.assets_min",
            &f.declared_gap.assets_min,
            "the percent alone",
        )?;

        // ---- the income window and the pension exclusion
        let window = f.income.window_months;
        if window != INCOME_WINDOW_MONTHS {
            return Err(invalid(
                "income.window_months",
                format!(
                    "{window}: must be {INCOME_WINDOW_MONTHS}: DESIGN §3 reads a year of income (the 12 months before D) and hedui does not annualise another window ({window} months of contributions and benefits would be taken as a year's income)"
                ),
            ));
        }
        let years_field = "income.resident_pension_excluded_years";
        let (lo, hi) = match f.income.resident_pension_excluded_years[..] {
            [lo, hi] => (lo, hi),
            // no exclusion (a region that counts the resident pension every year): an empty
            // range (session 17's attack found `[]` refused)
            [] => (1, 0),
            ref other => {
                return Err(invalid(
                    years_field,
                    format!(
                        "{} value{}: give exactly two years, [from, to], or [] for none",
                        other.len(),
                        if other.len() == 1 { "" } else { "s" }
                    ),
                ));
            }
        };
        if let Some(y) = [lo, hi]
            .into_iter()
            .find(|y| !POLICY_YEARS.contains(y) && (lo, hi) != (1, 0))
        {
            return Err(invalid(
                years_field,
                format!(
                    "{y}: a year is four digits, {} to {} (a two-digit year is never guessed)",
                    POLICY_YEARS.start(),
                    POLICY_YEARS.end()
                ),
            ));
        }
        if lo > hi && (lo, hi) != (1, 0) {
            return Err(invalid(
                years_field,
                format!(
                    "[{lo}, {hi}]: from must not be after to (a reversed range excludes no year)"
                ),
            ));
        }

        // ---- vocabularies (§2, the connectors' lists)
        vocabulary(
            "vehicle.exempt_kinds",
            &f.vehicle.exempt_kinds,
            "vehicle_vessel.kind",
            vocab::VEHICLE_KIND,
        )?;
        let statuses = &f.household_composition.statuses;
        let deceased_rule = "DESIGN §1: a deceased member is looked at by a person";
        if statuses.is_empty() {
            return Err(invalid(
                "household_composition.statuses",
                format!(
                    "is empty: list the statuses that refer a member, deceased at least ({deceased_rule})"
                ),
            ));
        }
        vocabulary(
            "household_composition.statuses",
            statuses,
            "household_registration.status",
            vocab::REGISTRATION_STATUS,
        )?;
        if statuses.iter().any(|s| s == "normal") {
            return Err(invalid(
                "household_composition.statuses",
                "\"normal\" cannot refer a member: every living resident's status is normal (give deceased, emigrated or cancelled)".into(),
            ));
        }
        if !statuses.iter().any(|s| s == "deceased") {
            return Err(invalid(
                "household_composition.statuses",
                format!("does not list deceased ({deceased_rule})"),
            ));
        }
        let usages = &f.housing.business_usages;
        if usages.is_empty() {
            return Err(invalid(
                "housing.business_usages",
                "is empty: a household owning a shop, office or factory would pass the housing test".into(),
            ));
        }
        vocabulary(
            "housing.business_usages",
            usages,
            "real_estate.usage",
            vocab::PROPERTY_USAGE,
        )?;
        if usages.iter().any(|u| u == "residential") {
            return Err(invalid(
                "housing.business_usages",
                "\"residential\" cannot be business property: residential rows are counted against housing.max_residential (listed here it would be ignored)".into(),
            ));
        }
        vocabulary(
            "review.six_monthly_categories",
            &f.review.six_monthly_categories,
            "households.category",
            vocab::CATEGORY,
        )?;
        let grades = crate::ingest::caseload::DISABILITY_GRADES;
        if let Some(g) = f
            .single_person_option
            .disability_grades
            .iter()
            .find(|g| !grades.contains(g))
        {
            return Err(invalid(
                "single_person_option.disability_grades",
                format!(
                    "{g} is not a §2 members.disability_grade ({} to {})",
                    grades.start(),
                    grades.end()
                ),
            ));
        }

        // ---- periods
        let gradual_exit_months = months(
            "gradual_exit.months",
            f.gradual_exit.months,
            &GRADUAL_EXIT_MONTHS,
            "a gradual exit period",
        )?;
        let review_default_months = months(
            "review.default_months",
            f.review.default_months,
            &REVIEW_MONTHS,
            "a review interval",
        )?;
        let review_short_months = months(
            "review.short_months",
            f.review.short_months,
            &REVIEW_MONTHS,
            "a review interval",
        )?;
        if review_short_months > review_default_months {
            return Err(invalid(
                "review.short_months",
                format!(
                    "{review_short_months}: must not exceed review.default_months ({review_default_months})"
                ),
            ));
        }

        let link_thresholds = match &f.possible_match {
            Some(p) if !p.match_weight.is_finite() => {
                return Err(invalid(
                    "possible_match.match_weight",
                    format!("{}: a weight in bits is a finite number", p.match_weight),
                ));
            }
            Some(p) if !p.possible_match_weight.is_finite() => {
                return Err(invalid(
                    "possible_match.possible_match_weight",
                    format!(
                        "{}: a weight in bits is a finite number",
                        p.possible_match_weight
                    ),
                ));
            }
            Some(p) if p.match_weight < MIN_MATCH_WEIGHT => {
                return Err(invalid(
                    "possible_match.match_weight",
                    format!(
                        "{}: at least {MIN_MATCH_WEIGHT} bits (odds of 8 to 1): below it a row linked by name and birth date alone would decide a household, where DESIGN §1 sends a possible match to a person",
                        p.match_weight
                    ),
                ));
            }
            Some(p) if p.possible_match_weight < p.match_weight => crate::link::Thresholds {
                match_weight: p.match_weight,
                possible_match: p.possible_match_weight,
            },
            Some(_) => {
                return Err(invalid(
                    "possible_match.possible_match_weight",
                    "must be below match_weight (a possible match is weaker than a match)".into(),
                ));
            }
            None => {
                // (optional by design, but not silently: session 21's list)
                tracing::warn!(
                    policy = %f.id,
                    match_weight = crate::link::caseload::DEFAULT_THRESHOLDS.match_weight,
                    possible_match_weight = crate::link::caseload::DEFAULT_THRESHOLDS.possible_match,
                    "The policy has no [possible_match] table: the error-tolerant linkage uses its default thresholds (bits)."
                );
                crate::link::caseload::DEFAULT_THRESHOLDS
            }
        };

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
                return Err(invalid(
                    &format!("{rule}.clause"),
                    "every rule must cite the clause it implements".into(),
                ));
            }
            clauses.insert(rule.to_string(), clause.clone());
        }
        Ok(Policy {
            employment_deduction_pct: pct(
                "income.employment_deduction_pct",
                f.income.employment_deduction_pct,
                EMPLOYMENT_DEDUCTION_MAX_PCT,
            )?,
            // 0 % would leave no supporter owing anything, silently (session 22's attack):
            // refused as the multiple above 10 × S is.
            support_share_pct: match f.support.share_pct {
                0 => {
                    return Err(invalid(
                        "support.share_pct",
                        "0: no supporter would owe anything (DESIGN §3 counts support owed; a unit slip?)".into(),
                    ));
                }
                v => pct("support.share_pct", v, 100)?,
            },
            wrong_valid_id_candidates: f
                .possible_match
                .as_ref()
                .and_then(|p| p.wrong_valid_id_candidates)
                .unwrap_or(true),
            id: f.id,
            title: f.title,
            region_prefix: f.region_prefix,
            effective_from: f.effective_from,
            illustrative: f.illustrative,
            standard_year_urban: Fen(urban_year),
            standard_year_rural: rural,
            window_months: window,
            resident_pension_excluded_years: (lo, hi),
            support_multiple_pct: multiple.0,
            asset_months: i64::from(f.financial_assets.months_of_standard),
            exempt_vehicle_kinds: f.vehicle.exempt_kinds,
            max_residential_hundredths: max_residential,
            business_usages: f.housing.business_usages,
            entity_capital,
            supporter_vehicle_price,
            supporter_residential_hundredths: supporter_residential,
            supporter_capital,
            gone_statuses: f.household_composition.statuses,
            gradual_exit_months,
            single_person_grades: f.single_person_option.disability_grades,
            six_monthly_categories: f.review.six_monthly_categories,
            review_default_months,
            review_short_months,
            gap_income_pct: pct(
                "declared_gap.income_pct",
                f.declared_gap.income_pct,
                GAP_MAX_PCT,
            )?,
            gap_income_min,
            gap_assets_pct: pct(
                "declared_gap.assets_pct",
                f.declared_gap.assets_pct,
                GAP_MAX_PCT,
            )?,
            gap_assets_min,
            clauses,
            link_thresholds,
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

    /// The bundled policy with `section.key` set to `value` (TOML), as a tester would edit it.
    fn bundled_with(section: &str, key: &str, value: &str) -> String {
        let mut t: toml::Table = include_str!("../../policies/gansu-illustrative-2026.toml")
            .parse()
            .unwrap();
        let v: toml::Value = format!("v = {value}").parse::<toml::Table>().unwrap()["v"].clone();
        let table = if section.is_empty() {
            &mut t
        } else {
            t[section].as_table_mut().unwrap()
        };
        assert!(table.contains_key(key), "no key {section}.{key}");
        table.insert(key.into(), v);
        toml::to_string(&t).unwrap()
    }

    /// The error loading the bundled policy with `section.key = value`.
    fn refused(section: &str, key: &str, value: &str) -> String {
        match Policy::from_toml(&bundled_with(section, key, value), "t.toml") {
            Ok(_) => panic!("{section}.{key} = {value} was accepted"),
            Err(e) => e.to_string(),
        }
    }

    /// The policy loaded from the bundled one with `section.key = value`.
    fn accepted(section: &str, key: &str, value: &str) -> Policy {
        Policy::from_toml(&bundled_with(section, key, value), "t.toml")
            .unwrap_or_else(|e| panic!("{section}.{key} = {value} was refused: {e}"))
    }

    /// Found by the session-17 policy attack: `urban_monthly = "-700.00"` loaded and reports
    /// showed S = -700.00; a zero or negative standard, multiple or asset period, a negative
    /// price or capital threshold, a home count below one were all applied.
    #[test]
    fn a_negative_or_zero_threshold_is_refused_naming_its_key() {
        for (section, key, value, message) in [
            (
                "dibao_standard",
                "urban_monthly",
                "\"-700.00\"",
                "policy file t.toml: dibao_standard.urban_monthly: -700.00 yuan: the dibao standard S must be above 0",
            ),
            (
                "dibao_standard",
                "urban_monthly",
                "\"0.00\"",
                "policy file t.toml: dibao_standard.urban_monthly: 0.00 yuan: the dibao standard S must be above 0",
            ),
            (
                "dibao_standard",
                "rural_yearly",
                "\"-5000\"",
                "policy file t.toml: dibao_standard.rural_yearly: -5000.00 yuan: the dibao standard S must be above 0",
            ),
            (
                "housing",
                "max_residential",
                "\"-1.00\"",
                "policy file t.toml: housing.max_residential: -1.00: a count of homes of at least 1.00 (a household's one home never makes it ineligible)",
            ),
            (
                "housing",
                "max_residential",
                "\"0.50\"",
                "policy file t.toml: housing.max_residential: 0.50: a count of homes of at least 1.00 (a household's one home never makes it ineligible)",
            ),
            (
                "supporter_assets",
                "residential_at_least",
                "\"0\"",
                "policy file t.toml: supporter_assets.residential_at_least: 0.00: a count of homes of at least 1.00 (at 0 every supporter, one without a home too, is referred)",
            ),
            (
                "financial_assets",
                "months_of_standard",
                "0",
                "policy file t.toml: financial_assets.months_of_standard: 0: 1 to 120 months of S (at 0 any financial asset at all makes a household ineligible; more is a unit slip?)",
            ),
            (
                "support",
                "threshold_standard_multiple",
                "\"-1.5\"",
                "policy file t.toml: support.threshold_standard_multiple: -1.50: the multiple of S a supporter keeps per person must be above 0",
            ),
            (
                "support",
                "share_pct",
                "0",
                "policy file t.toml: support.share_pct: 0: no supporter would owe anything (DESIGN §3 counts support owed; a unit slip?)",
            ),
            (
                "support",
                "threshold_standard_multiple",
                "\"0\"",
                "policy file t.toml: support.threshold_standard_multiple: 0.00: the multiple of S a supporter keeps per person must be above 0",
            ),
            (
                "supporter_assets",
                "vehicle_price_above",
                "\"-1.00\"",
                "policy file t.toml: supporter_assets.vehicle_price_above: -1.00 yuan: must not be below 0 (0: every priced non-exempt vehicle)",
            ),
            (
                "supporter_assets",
                "capital_threshold",
                "\"-5.00\"",
                "policy file t.toml: supporter_assets.capital_threshold: -5.00 yuan: must not be below 0 (0: every active entity)",
            ),
            (
                "market_entity",
                "capital_threshold",
                "\"-5.00\"",
                "policy file t.toml: market_entity.capital_threshold: -5.00 yuan: must not be below 0 (0: every enterprise held as legal representative or shareholder)",
            ),
            (
                "declared_gap",
                "income_min",
                "\"-1000.00\"",
                "policy file t.toml: declared_gap.income_min: -1000.00 yuan: must not be below 0 (0: the percent alone)",
            ),
            (
                "declared_gap",
                "assets_min",
                "\"-0.01\"",
                "policy file t.toml: declared_gap.assets_min: -0.01 yuan: must not be below 0 (0: the percent alone)",
            ),
        ] {
            assert_eq!(refused(section, key, value), message);
        }
        // what a regional notice may say is applied exactly: "any enterprise", "any vehicle",
        // "three or more homes"
        assert_eq!(
            accepted("market_entity", "capital_threshold", "\"0.00\"").entity_capital,
            Fen(0)
        );
        let p = accepted("supporter_assets", "vehicle_price_above", "\"0\"");
        assert_eq!(p.supporter_vehicle_price, Fen(0));
        let p = accepted("supporter_assets", "capital_threshold", "\"0\"");
        assert_eq!(p.supporter_capital, Fen(0));
        let p = accepted("housing", "max_residential", "\"2.00\"");
        assert_eq!(p.max_residential_hundredths, 200);
        let p = accepted("dibao_standard", "urban_monthly", "\"100.00\"");
        assert_eq!(p.standard_year("urban"), Fen(120_000));
        let p = accepted("support", "threshold_standard_multiple", "\"2\"");
        assert_eq!(p.support_multiple_pct, 200);
    }

    /// Found by the session-17 policy attack: `[2021, 2023, 2025]` loaded as 2021-2023 (the
    /// third year dropped) and `[2025, 2021]` as a range that excludes nothing.
    #[test]
    fn a_pension_exclusion_range_is_two_years_from_to_in_order() {
        assert_eq!(
            refused(
                "income",
                "resident_pension_excluded_years",
                "[2021, 2023, 2025]"
            ),
            "policy file t.toml: income.resident_pension_excluded_years: 3 values: give exactly two years, [from, to], or [] for none"
        );
        assert_eq!(
            refused("income", "resident_pension_excluded_years", "[2021]"),
            "policy file t.toml: income.resident_pension_excluded_years: 1 value: give exactly two years, [from, to], or [] for none"
        );
        assert_eq!(
            refused("income", "resident_pension_excluded_years", "[2025, 2021]"),
            "policy file t.toml: income.resident_pension_excluded_years: [2025, 2021]: from must not be after to (a reversed range excludes no year)"
        );
        assert_eq!(
            refused("income", "resident_pension_excluded_years", "[21, 25]"),
            "policy file t.toml: income.resident_pension_excluded_years: 21: a year is four digits, 1900 to 9999 (a two-digit year is never guessed)"
        );
        let p = accepted("income", "resident_pension_excluded_years", "[2021, 2021]");
        assert_eq!(p.resident_pension_excluded_years, (2021, 2021));
        assert_eq!(
            Policy::bundled().resident_pension_excluded_years,
            (2021, 2025)
        );
    }

    /// Found by the session-17 policy attack: `window_months = 6` counted half a year's
    /// contributions and benefits as a year's income, and 0 counted one month.
    #[test]
    fn an_income_window_other_than_twelve_months_is_refused() {
        for months in ["0", "1", "6", "11", "13", "24"] {
            assert_eq!(
                refused("income", "window_months", months),
                format!(
                    "policy file t.toml: income.window_months: {months}: must be 12: DESIGN §3 reads a year of income (the 12 months before D) and hedui does not annualise another window ({months} months of contributions and benefits would be taken as a year's income)"
                )
            );
        }
        assert_eq!(Policy::bundled().window_months, 12);
    }

    /// Found by the session-17 policy attack: a misspelt vehicle kind (motorcycles were then
    /// not exempt), an unknown registration status, category, grade or usage were accepted
    /// and matched nothing.
    #[test]
    fn a_value_outside_the_design_vocabularies_is_refused() {
        for (section, key, value, message) in [
            (
                "vehicle",
                "exempt_kinds",
                "[\"motorcyle\", \"tricycle\"]",
                "policy file t.toml: vehicle.exempt_kinds: \"motorcyle\" is not in the §2 vocabulary of vehicle_vessel.kind (car, suv, van, truck, bus, motorcycle, tricycle, tractor, harvester, vessel, disabled_vehicle)",
            ),
            (
                "vehicle",
                "exempt_kinds",
                "[\"Motorcycle\"]",
                "policy file t.toml: vehicle.exempt_kinds: \"Motorcycle\" is not in the §2 vocabulary of vehicle_vessel.kind (car, suv, van, truck, bus, motorcycle, tricycle, tractor, harvester, vessel, disabled_vehicle)",
            ),
            (
                "household_composition",
                "statuses",
                "[\"deceased\", \"dead\"]",
                "policy file t.toml: household_composition.statuses: \"dead\" is not in the §2 vocabulary of household_registration.status (normal, deceased, emigrated, cancelled)",
            ),
            (
                "household_composition",
                "statuses",
                "[\"deceased\", \"normal\"]",
                "policy file t.toml: household_composition.statuses: \"normal\" cannot refer a member: every living resident's status is normal (give deceased, emigrated or cancelled)",
            ),
            (
                "household_composition",
                "statuses",
                "[]",
                "policy file t.toml: household_composition.statuses: is empty: list the statuses that refer a member, deceased at least (DESIGN §1: a deceased member is looked at by a person)",
            ),
            (
                "household_composition",
                "statuses",
                "[\"emigrated\"]",
                "policy file t.toml: household_composition.statuses: does not list deceased (DESIGN §1: a deceased member is looked at by a person)",
            ),
            (
                "review",
                "six_monthly_categories",
                "[\"partial\", \"class9\"]",
                "policy file t.toml: review.six_monthly_categories: \"class9\" is not in the §2 vocabulary of households.category (full, partial, class1, class2, class3, class4)",
            ),
            (
                "single_person_option",
                "disability_grades",
                "[1, 7]",
                "policy file t.toml: single_person_option.disability_grades: 7 is not a §2 members.disability_grade (1 to 4)",
            ),
            (
                "housing",
                "business_usages",
                "[\"commercial\", \"shop\"]",
                "policy file t.toml: housing.business_usages: \"shop\" is not in the §2 vocabulary of real_estate.usage (residential, commercial, office, parking, industrial, other)",
            ),
            (
                "housing",
                "business_usages",
                "[\"residential\", \"commercial\"]",
                "policy file t.toml: housing.business_usages: \"residential\" cannot be business property: residential rows are counted against housing.max_residential (listed here it would be ignored)",
            ),
            (
                "housing",
                "business_usages",
                "[]",
                "policy file t.toml: housing.business_usages: is empty: a household owning a shop, office or factory would pass the housing test",
            ),
        ] {
            assert_eq!(refused(section, key, value), message);
        }
        // a list a regional notice may leave empty: no exempt vehicle kind, no six-monthly
        // category, no disability route to the single-person option
        assert!(
            accepted("vehicle", "exempt_kinds", "[]")
                .exempt_vehicle_kinds
                .is_empty()
        );
        assert!(
            accepted("review", "six_monthly_categories", "[]")
                .six_monthly_categories
                .is_empty()
        );
        assert_eq!(
            accepted("single_person_option", "disability_grades", "[1, 2, 3]").single_person_grades,
            vec![1, 2, 3]
        );
    }

    /// Found by the session-17 policy attack: `gradual_exit.months = 0` still granted a
    /// gradual exit; review intervals of 0 or 1000 months were applied.
    #[test]
    fn a_zero_or_absurd_period_is_refused_with_its_bounds() {
        for (section, key, value, message) in [
            (
                "gradual_exit",
                "months",
                "0",
                "policy file t.toml: gradual_exit.months: 0: a gradual exit period is 1 to 12 months",
            ),
            (
                "gradual_exit",
                "months",
                "13",
                "policy file t.toml: gradual_exit.months: 13: a gradual exit period is 1 to 12 months",
            ),
            (
                "review",
                "short_months",
                "0",
                "policy file t.toml: review.short_months: 0: a review interval is 1 to 24 months",
            ),
            (
                "review",
                "default_months",
                "1000",
                "policy file t.toml: review.default_months: 1000: a review interval is 1 to 24 months",
            ),
            (
                "review",
                "short_months",
                "18",
                "policy file t.toml: review.short_months: 18: must not exceed review.default_months (12)",
            ),
        ] {
            assert_eq!(refused(section, key, value), message);
        }
        assert_eq!(
            accepted("gradual_exit", "months", "3").gradual_exit_months,
            3
        );
        let p = accepted("review", "short_months", "3");
        assert_eq!((p.review_short_months, p.review_default_months), (3, 12));
    }

    /// Found by the session-17 policy attack: `region_prefix = "6x"` loaded, and then no
    /// household's region code started with it: every household was referred.
    #[test]
    fn a_region_prefix_that_is_not_2_4_or_6_digits_is_refused() {
        for prefix in ["6x", "", "6", "620", "62050", "6205031", " 62", "６２"] {
            assert_eq!(
                refused("", "region_prefix", &format!("{prefix:?}")),
                format!(
                    "policy file t.toml: region_prefix: {prefix:?}: a GB/T 2260 region code prefix is 2, 4 or 6 ASCII digits (62 a province, 6205 a prefecture, 620503 a county)"
                )
            );
        }
        for prefix in ["62", "6205", "620503"] {
            let p = accepted("", "region_prefix", &format!("{prefix:?}"));
            assert_eq!(p.region_prefix, prefix);
        }
    }

    /// Found by session 17's second policy attack: values applied as written that no notice
    /// means (a yearly figure in the monthly key, a province's own code as the prefix, a match
    /// weight at the possible-match weight), and two real forms refused (a TOML date, no
    /// pension exclusion).
    #[test]
    fn implausible_figures_a_province_code_and_a_weak_match_weight_are_refused() {
        for (section, key, value, message) in [
            (
                "dibao_standard",
                "urban_monthly",
                "\"8400.00\"",
                "8400.00 yuan: outside 100 to 5000 yuan, the range of real notices (a yearly figure in the monthly key, or fen for yuan?)",
            ),
            (
                "dibao_standard",
                "rural_yearly",
                "\"450.00\"",
                "450.00 yuan: outside 1200 to 60000 yuan, the range of real notices (a monthly figure in the yearly key, or fen for yuan?)",
            ),
            (
                "financial_assets",
                "months_of_standard",
                "4294967295",
                "4294967295: 1 to 120 months of S (at 0 any financial asset at all makes a household ineligible; more is a unit slip?)",
            ),
            ("income", "employment_deduction_pct", "100", "100 > 50"),
            (
                "support",
                "threshold_standard_multiple",
                "\"1000000\"",
                "1000000.00: at most 10.00 times S (a larger one leaves no support owed by anyone: a unit slip?)",
            ),
            (
                "declared_gap",
                "income_pct",
                "4294967295",
                "4294967295 > 1000",
            ),
            (
                "possible_match",
                "match_weight",
                "-2.5",
                "-2.5: at least 3 bits (odds of 8 to 1): below it a row linked by name and birth date alone would decide a household, where DESIGN §1 sends a possible match to a person",
            ),
            (
                "",
                "region_prefix",
                "\"620500\"",
                "\"620500\" is a province's or prefecture's own code, which no county's code starts with: write the prefix \"6205\"",
            ),
            (
                "",
                "region_prefix",
                "\"620000\"",
                "\"620000\" is a province's or prefecture's own code, which no county's code starts with: write the prefix \"62\"",
            ),
            (
                "",
                "id",
                "\"a\\nb\"",
                "holds a control character (a line break?): the id is one line of every report",
            ),
        ] {
            let field = if section.is_empty() {
                key.to_string()
            } else {
                format!("{section}.{key}")
            };
            assert_eq!(
                refused(section, key, value),
                format!("policy file t.toml: {field}: {message}")
            );
        }
        // the edges of the ranges load
        let p = accepted("dibao_standard", "urban_monthly", "\"5000.00\"");
        assert_eq!(p.standard_year_urban.0, 12 * 500_000);
        accepted("dibao_standard", "rural_yearly", "\"1200.00\"");
        // a TOML date, and no pension exclusion
        let p = accepted("", "effective_from", "2026-01-01");
        assert_eq!(
            p.effective_from,
            chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
        );
        assert!(refused("", "effective_from", "2026-01-01T08:00:00").contains("without a time"));
        let p = accepted("income", "resident_pension_excluded_years", "[]");
        assert_eq!(p.resident_pension_excluded_years, (1, 0));
    }

    /// An empty id would name no policy in the reports; a weight of `nan` was refused as
    /// "must not exceed match_weight", and `inf` made every link a possible match.
    #[test]
    fn an_empty_id_or_a_weight_that_is_not_a_finite_number_is_refused() {
        assert_eq!(
            refused("", "id", "\" \""),
            "policy file t.toml: id: is empty: the id names the policy in every report"
        );
        assert_eq!(
            refused("possible_match", "match_weight", "nan"),
            "policy file t.toml: possible_match.match_weight: NaN: a weight in bits is a finite number"
        );
        assert_eq!(
            refused("possible_match", "possible_match_weight", "-inf"),
            "policy file t.toml: possible_match.possible_match_weight: -inf: a weight in bits is a finite number"
        );
        assert_eq!(
            refused("possible_match", "possible_match_weight", "4.0"),
            "policy file t.toml: possible_match.possible_match_weight: must be below match_weight (a possible match is weaker than a match)"
        );
    }

    /// Found by session 26's attack: toml's own messages named neither the table of a
    /// missing field nor a key given twice.
    #[test]
    fn a_missing_field_or_a_key_twice_names_its_table_and_key() {
        let text = include_str!("../../policies/gansu-illustrative-2026.toml");
        let clause = text
            .lines()
            .skip_while(|l| *l != "[vehicle]")
            .nth(1)
            .unwrap();
        let no_clause = text.replacen(&format!("[vehicle]\n{clause}\n"), "[vehicle]\n", 1);
        let e = Policy::from_toml(&no_clause, "t.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("(table `vehicle`)") && e.contains("clause"),
            "{e}"
        );
        let twice = text.replacen(
            "months_of_standard = 24",
            "months_of_standard = 24\nmonths_of_standard = 12",
            1,
        );
        let e = Policy::from_toml(&twice, "t.toml").unwrap_err().to_string();
        assert!(
            e.contains("(key `financial_assets.months_of_standard`)"),
            "{e}"
        );
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
