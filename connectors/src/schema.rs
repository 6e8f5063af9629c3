//! The §2 exchange format as data: every source and caseload table with its columns.
//!
//! This is the one list of sources (like a flag registry): adding a source means adding a
//! variant here and its columns; file and HTTP transports, schemas/ and the summary all
//! iterate [`SourceKind::ALL`].

/// How a column's text is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// Free text.
    Text,
    /// One of a fixed vocabulary (§2 lists them).
    Enum(&'static [&'static str]),
    /// Yuan with up to 2 decimals (engine: fen).
    Money,
    /// ISO date `YYYY-MM-DD`.
    Date,
    /// Month `YYYY-MM`.
    Month,
    /// Whole number (years, grades, sizes).
    Integer,
    /// Decimal with up to 2 places (m², percent).
    Decimal2,
    /// A resident ID number (GB 11643-1999).
    IdNumber,
}

/// One column of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnSpec {
    /// §2 column name.
    pub name: &'static str,
    /// How to read it.
    pub kind: ColumnKind,
    /// Whether the value may be empty.
    pub nullable: bool,
}

const fn c(name: &'static str, kind: ColumnKind) -> ColumnSpec {
    ColumnSpec {
        name,
        kind,
        nullable: false,
    }
}
const fn n(name: &'static str, kind: ColumnKind) -> ColumnSpec {
    ColumnSpec {
        name,
        kind,
        nullable: true,
    }
}

use ColumnKind::*;

/// The §2 vocabularies, in §2 order (generators index them; readers check against them).
pub mod vocab {
    /// §2 vocabulary `area`.
    pub const AREA: &[&str] = &["urban", "rural"];
    /// §2 vocabulary `programme`.
    pub const PROGRAMME: &[&str] = &["dibao", "tekun", "low_income", "applicant"];
    /// §2 vocabulary `category`.
    pub const CATEGORY: &[&str] = &["full", "partial", "class1", "class2", "class3", "class4"];
    /// §2 vocabulary `relation`.
    pub const RELATION: &[&str] = &[
        "applicant",
        "spouse",
        "child",
        "parent",
        "sibling",
        "grandchild",
        "other",
    ];
    /// §2 vocabulary `supporter_relation`.
    pub const SUPPORTER_RELATION: &[&str] = &["child", "parent", "spouse"];
    /// §2 vocabulary `hukou_type`.
    pub const HUKOU_TYPE: &[&str] = &["urban", "rural"];
    /// §2 vocabulary `registration_status`.
    pub const REGISTRATION_STATUS: &[&str] = &["normal", "deceased", "emigrated", "cancelled"];
    /// §2 vocabulary `income_type`.
    pub const INCOME_TYPE: &[&str] = &[
        "wages",
        "labour",
        "business",
        "property_lease",
        "interest_dividend",
        "other",
    ];
    /// §2 vocabulary `insurance_type`.
    pub const INSURANCE_TYPE: &[&str] = &[
        "employee_pension",
        "resident_pension",
        "unemployment",
        "medical",
        "injury",
    ];
    /// §2 vocabulary `record_type`.
    pub const RECORD_TYPE: &[&str] = &["contribution", "benefit"];
    /// §2 vocabulary `property_usage`.
    pub const PROPERTY_USAGE: &[&str] = &[
        "residential",
        "commercial",
        "office",
        "parking",
        "industrial",
        "other",
    ];
    /// §2 vocabulary `entity_type`.
    pub const ENTITY_TYPE: &[&str] = &["enterprise", "individual_business", "cooperative"];
    /// §2 vocabulary `entity_role`.
    pub const ENTITY_ROLE: &[&str] = &["legal_representative", "shareholder", "operator"];
    /// §2 vocabulary `entity_status`.
    pub const ENTITY_STATUS: &[&str] = &["active", "revoked", "deregistered"];
    /// §2 vocabulary `vehicle_kind`.
    pub const VEHICLE_KIND: &[&str] = &[
        "car",
        "suv",
        "van",
        "truck",
        "bus",
        "motorcycle",
        "tricycle",
        "tractor",
        "harvester",
        "vessel",
        "disabled_vehicle",
    ];
    /// §2 vocabulary `vehicle_usage`.
    pub const VEHICLE_USAGE: &[&str] = &["private", "business"];
    /// §2 vocabulary `vehicle_status`.
    pub const VEHICLE_STATUS: &[&str] = &["normal", "scrapped", "transferred"];
    /// §2 vocabulary `bank_product`.
    pub const BANK_PRODUCT: &[&str] = &["current", "time", "wealth_management"];
    /// §2 vocabulary `insurance_product`.
    pub const INSURANCE_PRODUCT: &[&str] = &["life", "annuity", "health", "accident", "property"];
}

/// The 12 department sources of DESIGN.md §2.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// 户籍: household registration (hukou).
    HouseholdRegistration,
    /// 纳税: tax records.
    Tax,
    /// 社会保险: contributions and benefits.
    SocialInsurance,
    /// 不动产登记: real estate.
    RealEstate,
    /// 市场主体登记: companies, individual businesses, cooperatives.
    MarketEntity,
    /// 住房公积金: housing provident fund.
    ProvidentFund,
    /// 车船登记: vehicles and vessels.
    VehicleVessel,
    /// 银行存款: bank deposits.
    Bank,
    /// 商业保险: commercial insurance.
    CommercialInsurance,
    /// 证券: securities.
    Securities,
    /// 互联网金融: internet-finance assets.
    InternetFinance,
    /// 医保结算: medical settlement (costs, out-of-pocket).
    MedicalInsurance,
}

impl SourceKind {
    /// Every source, in §2 order.
    pub const ALL: [SourceKind; 12] = [
        SourceKind::HouseholdRegistration,
        SourceKind::Tax,
        SourceKind::SocialInsurance,
        SourceKind::RealEstate,
        SourceKind::MarketEntity,
        SourceKind::ProvidentFund,
        SourceKind::VehicleVessel,
        SourceKind::Bank,
        SourceKind::CommercialInsurance,
        SourceKind::Securities,
        SourceKind::InternetFinance,
        SourceKind::MedicalInsurance,
    ];

    /// The §2 name (also the file stem and the serde tag).
    pub const fn name(self) -> &'static str {
        match self {
            SourceKind::HouseholdRegistration => "household_registration",
            SourceKind::Tax => "tax",
            SourceKind::SocialInsurance => "social_insurance",
            SourceKind::RealEstate => "real_estate",
            SourceKind::MarketEntity => "market_entity",
            SourceKind::ProvidentFund => "provident_fund",
            SourceKind::VehicleVessel => "vehicle_vessel",
            SourceKind::Bank => "bank",
            SourceKind::CommercialInsurance => "commercial_insurance",
            SourceKind::Securities => "securities",
            SourceKind::InternetFinance => "internet_finance",
            SourceKind::MedicalInsurance => "medical_insurance",
        }
    }

    /// The Chinese name used in reports.
    pub fn zh(self) -> &'static str {
        match self {
            SourceKind::HouseholdRegistration => "户籍",
            SourceKind::Tax => "纳税",
            SourceKind::SocialInsurance => "社会保险",
            SourceKind::RealEstate => "不动产登记",
            SourceKind::MarketEntity => "市场主体登记",
            SourceKind::ProvidentFund => "住房公积金",
            SourceKind::VehicleVessel => "车船登记",
            SourceKind::Bank => "银行存款",
            SourceKind::CommercialInsurance => "商业保险",
            SourceKind::Securities => "证券",
            SourceKind::InternetFinance => "互联网金融",
            SourceKind::MedicalInsurance => "医保结算",
        }
    }

    /// Look a source up by its §2 name.
    pub fn from_name(name: &str) -> Option<SourceKind> {
        SourceKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The §2 columns besides `id_number` and `name`, in §2 order.
    pub fn columns(self) -> &'static [ColumnSpec] {
        match self {
            SourceKind::HouseholdRegistration => {
                const C: &[ColumnSpec] = &[
                    c(
                        "gender",
                        Enum(&["male", "female", "M", "F", "1", "2", "男", "女"]),
                    ),
                    c("birth_date", Date),
                    c("hukou_region_code", Text),
                    c("hukou_type", Enum(vocab::HUKOU_TYPE)),
                    n("household_head_id", IdNumber),
                    c("status", Enum(vocab::REGISTRATION_STATUS)),
                    n("status_date", Date),
                ];
                C
            }
            SourceKind::Tax => {
                const C: &[ColumnSpec] = &[
                    c("tax_year", Integer),
                    c("income_type", Enum(vocab::INCOME_TYPE)),
                    c("gross_income", Money),
                    n("tax_paid", Money),
                ];
                C
            }
            SourceKind::SocialInsurance => {
                const C: &[ColumnSpec] = &[
                    c("period", Month),
                    c("insurance_type", Enum(vocab::INSURANCE_TYPE)),
                    c("record_type", Enum(vocab::RECORD_TYPE)),
                    n("employer_credit_code", Text),
                    c("amount", Money),
                ];
                C
            }
            SourceKind::RealEstate => {
                const C: &[ColumnSpec] = &[
                    c("certificate_no", Text),
                    n("region_code", Text),
                    c("usage", Enum(vocab::PROPERTY_USAGE)),
                    n("area_m2", Decimal2),
                    c("share_pct", Decimal2),
                    n("registered_date", Date),
                ];
                C
            }
            SourceKind::MarketEntity => {
                const C: &[ColumnSpec] = &[
                    c("credit_code", Text),
                    n("entity_name", Text),
                    c("entity_type", Enum(vocab::ENTITY_TYPE)),
                    c("role", Enum(vocab::ENTITY_ROLE)),
                    n("subscribed_capital", Money),
                    c("status", Enum(vocab::ENTITY_STATUS)),
                    n("registered_date", Date),
                ];
                C
            }
            SourceKind::ProvidentFund => {
                const C: &[ColumnSpec] = &[
                    c("period", Month),
                    n("monthly_deposit", Money),
                    n("balance", Money),
                ];
                C
            }
            SourceKind::VehicleVessel => {
                const C: &[ColumnSpec] = &[
                    n("plate_no", Text),
                    c("kind", Enum(vocab::VEHICLE_KIND)),
                    c("usage", Enum(vocab::VEHICLE_USAGE)),
                    n("purchase_price", Money),
                    n("registered_date", Date),
                    c("status", Enum(vocab::VEHICLE_STATUS)),
                ];
                C
            }
            SourceKind::Bank => {
                const C: &[ColumnSpec] = &[
                    n("institution_code", Text),
                    n("account_no_masked", Text),
                    n("product", Enum(vocab::BANK_PRODUCT)),
                    c("balance", Money),
                    n("as_of_date", Date),
                ];
                C
            }
            SourceKind::CommercialInsurance => {
                const C: &[ColumnSpec] = &[
                    n("insurer_code", Text),
                    n("policy_no", Text),
                    n("product_type", Enum(vocab::INSURANCE_PRODUCT)),
                    n("cash_value", Money),
                    n("annual_premium", Money),
                    n("as_of_date", Date),
                ];
                C
            }
            SourceKind::Securities => {
                const C: &[ColumnSpec] = &[
                    n("institution_code", Text),
                    n("account_no_masked", Text),
                    c("market_value", Money),
                    c("cash_balance", Money),
                    n("as_of_date", Date),
                ];
                C
            }
            SourceKind::InternetFinance => {
                const C: &[ColumnSpec] = &[
                    n("platform", Text),
                    n("product", Text),
                    c("balance", Money),
                    n("as_of_date", Date),
                ];
                C
            }
            SourceKind::MedicalInsurance => {
                const C: &[ColumnSpec] = &[
                    c("year", Integer),
                    n("total_cost", Money),
                    c("out_of_pocket", Money),
                ];
                C
            }
        }
    }

    /// Every column the file must have: `id_number`, `name`, then [`SourceKind::columns`].
    pub fn required_columns(self) -> Vec<&'static str> {
        ["id_number", "name"]
            .into_iter()
            .chain(self.columns().iter().map(|c| c.name))
            .collect()
    }
}

impl std::fmt::Display for SourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The three caseload tables of DESIGN.md §2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CaseloadTable {
    /// One row per household.
    Households,
    /// One row per member.
    Members,
    /// One row per (supporter, supported member).
    Supporters,
}

impl CaseloadTable {
    /// All three, in §2 order.
    pub const ALL: [CaseloadTable; 3] = [
        CaseloadTable::Households,
        CaseloadTable::Members,
        CaseloadTable::Supporters,
    ];

    /// The §2 name (file stem).
    pub const fn name(self) -> &'static str {
        match self {
            CaseloadTable::Households => "households",
            CaseloadTable::Members => "members",
            CaseloadTable::Supporters => "supporters",
        }
    }

    /// The table's columns in §2 order.
    pub fn columns(self) -> &'static [ColumnSpec] {
        match self {
            CaseloadTable::Households => {
                const C: &[ColumnSpec] = &[
                    c("household_id", Text),
                    c("region_code", Text),
                    c("area", Enum(vocab::AREA)),
                    c("programme", Enum(vocab::PROGRAMME)),
                    n("category", Enum(vocab::CATEGORY)),
                    n("declared_annual_income", Money),
                    n("declared_financial_assets", Money),
                    n("last_verified", Date),
                ];
                C
            }
            CaseloadTable::Members => {
                const C: &[ColumnSpec] = &[
                    c("household_id", Text),
                    c("id_number", IdNumber),
                    n("name", Text),
                    c("relation", Enum(vocab::RELATION)),
                    n("disability_grade", Integer),
                    n("consent_ref", Text),
                ];
                C
            }
            CaseloadTable::Supporters => {
                const C: &[ColumnSpec] = &[
                    c("household_id", Text),
                    c("id_number", IdNumber),
                    n("name", Text),
                    n("supports_id_number", IdNumber),
                    c("relation", Enum(vocab::SUPPORTER_RELATION)),
                    n("own_household_size", Integer),
                    n("consent_ref", Text),
                ];
                C
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_source_has_a_unique_name_that_round_trips() {
        let mut names: Vec<_> = SourceKind::ALL.iter().map(|k| k.name()).collect();
        for k in SourceKind::ALL {
            assert_eq!(SourceKind::from_name(k.name()), Some(k));
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 12);
    }

    #[test]
    fn the_tax_source_requires_its_section_2_columns() {
        assert_eq!(
            SourceKind::Tax.required_columns(),
            vec![
                "id_number",
                "name",
                "tax_year",
                "income_type",
                "gross_income",
                "tax_paid"
            ]
        );
    }
}
