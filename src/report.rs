//! The verification report (核对报告): what one verification concludes, before sealing.
//!
//! Shape of DESIGN.md §4 (`hedui open` prints it): household, determination, per-capita
//! amounts in yuan (strings with two decimals, exact), findings with rule, clause, outcome
//! and evidence, every source's status with the records used, the persons (masked), the
//! policy. ID numbers appear masked only; names do not appear.

use serde::{Deserialize, Serialize};

/// The three determinations (符合 / 不符合 / 需人工复核).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Determination {
    /// 符合: meets the policy.
    Eligible,
    /// 不符合: fails a test.
    Ineligible,
    /// 需人工复核: a person must look.
    Referred,
}

impl Determination {
    /// The serde name.
    pub fn as_str(self) -> &'static str {
        match self {
            Determination::Eligible => "eligible",
            Determination::Ineligible => "ineligible",
            Determination::Referred => "referred",
        }
    }
}

/// A rule's outcome in a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The test passed (income and financial assets are always reported).
    Eligible,
    /// The test failed.
    Ineligible,
    /// A person must look.
    Referred,
    /// Informational; does not change the determination.
    Info,
}

/// One finding: a rule that was evaluated and what it found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Rule name (policy file section), e.g. `income`.
    pub rule: String,
    /// The clause the rule implements (from the policy file).
    pub clause: String,
    /// The outcome.
    pub outcome: Outcome,
    /// The figures and facts behind it (yuan as strings, masked persons).
    pub evidence: serde_json::Value,
}

/// Whether a source answered for this household.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceStatus {
    /// Answered, with records.
    Verified,
    /// Not answered, or answered with rows that could not be read: never "no assets".
    Unverified,
    /// Answered, and holds no record of these persons in the rules' scope (the period and
    /// the kinds of record they read: e.g. social insurance outside the income window, or a
    /// medical contribution); records outside it are not listed here, while the audit log's
    /// `source_query` row counts every record the source answered.
    NoRecords,
}

/// One source's section of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceSection {
    /// Source name (§2).
    pub source: String,
    /// Status.
    pub status: SourceStatus,
    /// Why unverified (reason code and message), if so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How old the source's answer was when the report was built, seconds (on demand: 0
    /// for a fresh answer, more when it came from the cache); absent in a batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_s: Option<u64>,
    /// The §2 columns of each record's `values` (besides id_number and name).
    pub columns: Vec<String>,
    /// The records used: person index (into `persons`), source row, §2 values.
    pub records: Vec<ReportRecord>,
}

/// One source record as shown in a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportRecord {
    /// Index into the report's `persons`.
    pub person: usize,
    /// 0-based data row in the source extract.
    pub row: u64,
    /// Values in the section's `columns` order (text as delivered; money in yuan; null
    /// when empty).
    pub values: Vec<Option<String>>,
}

/// A person the report is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonEntry {
    /// `member` or `supporter`.
    pub role: String,
    /// Relation (§2 members/supporters).
    pub relation: String,
    /// The ID number masked (`6205**********1234`), or the raw value masked if invalid.
    pub id_number_masked: String,
    /// Whether the person was linked to source records (queried with a valid ID).
    pub linked: bool,
    /// Whether a consent reference was given.
    pub consent: bool,
}

/// The policy the report applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyRef {
    /// Policy id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Whether its figures are illustrative.
    pub illustrative: bool,
    /// S per person per month for this household, yuan (exact to the fen or more decimals).
    pub dibao_standard_monthly: String,
}

/// A verification report (DESIGN.md §4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerificationReport {
    /// `<run_id>/<household_id>`: unique per run.
    pub report_id: String,
    /// The run that produced it.
    pub run_id: String,
    /// Household id.
    pub household_id: String,
    /// Region code of the household.
    pub region_code: String,
    /// `urban` / `rural`.
    pub area: String,
    /// Programme.
    pub programme: String,
    /// Category, if any.
    pub category: String,
    /// As-of date D.
    pub as_of: String,
    /// The determination.
    pub determination: Determination,
    /// Household income / 12 / members, yuan, half-up to the fen (null without members, and
    /// when a source of the income finding did not answer, a person was not queried or a
    /// member row not counted: missing is never zero; the partial sum is in the finding's
    /// `partial_totals`).
    pub per_capita_monthly_income: Option<String>,
    /// Financial assets / members, yuan, half-up to the fen (null as
    /// `per_capita_monthly_income`, for the financial-asset sources).
    pub per_capita_financial_assets: Option<String>,
    /// Household yearly income including support owed, yuan (half-up); null when not every
    /// record of it is known (as `per_capita_monthly_income`).
    pub household_income_annual: Option<String>,
    /// Household financial assets, yuan; null when not every record of it is known.
    pub financial_assets_total: Option<String>,
    /// Member rows counted.
    pub members: u32,
    /// Whether a periodic review is due.
    pub review_due: bool,
    /// Findings: income and financial assets always; other rules when they fire.
    pub findings: Vec<Finding>,
    /// Every source's status and records.
    pub sources: Vec<SourceSection>,
    /// Members then supporters.
    pub persons: Vec<PersonEntry>,
    /// The policy applied.
    pub policy: PolicyRef,
    /// Source records linked by the error-tolerant pass (`match`): their weight and the
    /// comparisons that produced it (issue 7). Used by the rules like exact links.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fuzzy_links: Vec<FuzzyLinkEntry>,
    /// Source records that may be a person's (`possible_match`): shown side by side for a
    /// clerk, never used by a rule (the household is referred, rule `possible_match`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub possible_matches: Vec<crate::render::PossibleMatch>,
}

/// A source record linked to a person although its ID number was damaged or missing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FuzzyLinkEntry {
    /// Index into the report's `persons`.
    pub person: usize,
    /// Source name (§2).
    pub source: String,
    /// 0-based data row in the source extract.
    pub row: u64,
    /// The ID number as the record wrote it, masked (null when missing).
    pub id_number_masked: Option<String>,
    /// Match weight, bits (log2 of the odds, prior included).
    pub weight: f64,
    /// The same as a probability, 0..1.
    pub probability: f64,
    /// Nothing but the name agrees (no ID digits, birth date or gender): weaker evidence.
    pub name_only: bool,
    /// The waterfall: the prior, then each comparison's level and bits.
    pub waterfall: Vec<crate::link::Contribution>,
}
