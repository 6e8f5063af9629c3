//! The synthetic county as people: the caseload (households, members, supporters) with the
//! household events that make the §3 rules fire, and the resident population around it.
//!
//! Everything here is drawn once, in a fixed order, from named ChaCha8 streams (see
//! [`Ctx::stream`]); the source tables ([`super::sources`]) are then derived from these
//! people. Only what two sources must agree on is stored per person: identity, registration
//! facts, and income (jobs feed `tax`, `social_insurance` and `provident_fund`; business
//! income goes with an individual business in `market_entity`). Caseload persons also carry a
//! [`Plan`]: the asset and registration events chosen for their household. Residents' assets
//! are drawn while their source rows are written.
//!
//! # Caseload: households and members
//!
//! | what | distribution |
//! |---|---|
//! | area | urban 36 %, rural 64 % |
//! | programme | dibao 58 %, tekun 9 %, low_income 15 %, applicant 18 % |
//! | category | urban dibao: full 30 / partial 70 %; rural dibao: class1 15 / class2 25 / class3 30 / class4 30 %; others empty |
//! | size | tekun: 1 (88 %) or 2; others 1-6: 27 / 26 / 19 / 15 / 9 / 4 % |
//! | applicant age | tekun: 60-94 (76 %) or 18-59; others ≈ N(50, 15) clipped to 19-92; male 55 % |
//! | second member | spouse 72 % (tekun 50 %) when the applicant is 22+ |
//! | further members | child / parent / grandchild / sibling / other, weights 68 / 10 / 12 / 5 / 5 where the ages allow (tekun: sibling or other) |
//! | ID region / registration region | the county 86 % / 95 %, else another county |
//! | disability grade (per member) | tekun 33 %, others 6.5 %; grades 1 / 2 / 3 / 4: 18 / 24 / 30 / 28 % |
//! | last_verified | applicants empty, others 1.5 % empty; else D minus 5 days .. the review interval + 40 days (six months for partial / class3 / class4, a year otherwise), so some are due |
//! | declared income | the members' wages in the 12 months before D, pensions, labour, business, lease and unemployment income, × 0.92-1.08 (75 %) or × 0.30-0.80 (25 %), whole 100 yuan |
//! | declared assets | expected deposits, the large deposit, securities and cash values, × 0.92-1.08 (75 %) or × 0.20-0.80 (25 %), whole 100 yuan |
//!
//! # Caseload: household events
//! Each event is drawn once per household and carried by one eligible member chosen at
//! random ([`CASE`] holds the figures); "per member" and "per adult" events are drawn for each.
//!
//! | event | who carries it | probability |
//! |---|---|---|
//! | a job (see [`make_job`]) | member aged 18-59 | dibao 13 %, tekun 0, low_income 26 %, applicant 18 % |
//! | a second job | another member aged 18-59 | 10 % of households with a job |
//! | employee pension 1,700-3,800 yuan a month | retired member (men 60+, women 55+) | dibao 2.5 %, tekun 2 %, low_income 8 %, applicant 6 % |
//! | resident pension 115-300 yuan a month | per member 60+ without employee pension | 93 % |
//! | labour income 1,500-15,000 yuan in Y (half also in Y−1) | adult under 66 | 6 % |
//! | property lease 2,400-18,000 yuan | adult | 0.8 % |
//! | `other` tax income (never counted) | adult | 2 % |
//! | unemployment benefit 1,300-1,800 yuan, 2-12 months | member 18-59 without a job | 2 % |
//! | injury allowance 1,500-3,000 yuan a month | adult | 0.4 % |
//! | interest 3-300 yuan | per adult | 12 % |
//! | bank accounts 0-3 (25 / 50 / 20 / 5 %), median 500 yuan, σ 1.2 | per adult (minors one, 8 %) | — |
//! | a deposit of 1.05-2.6 × the 24 × S line (a tenth at 0.55-0.95 ×: no finding) | adult | 3.6 % |
//! | securities 3,000-80,000 yuan | adult | 0.8 % |
//! | commercial insurance: life / annuity (cash value 2,000-40,000) / health / accident | adult | 5 % |
//! | internet finance, median 150 yuan | per adult | 22 % |
//! | own home, sole owner | an adult | urban 46 %, rural 30 % |
//! | own home co-owned 50/50 with the spouse (one certificate, two rows) | applicant and spouse | urban 20 %, rural 6 % |
//! | a second home (sole) | adult | 1.2 % |
//! | an inherited residential share of 25, 33.33 or 50 % | adult | 1 % |
//! | two half shares of different homes (counts as one) | adult, no own home | 0.6 % |
//! | commercial / office / industrial property (70 / 15 / 15 %) | adult | 1 % |
//! | parking space | applicant | 2.2 % |
//! | `other` usage property (no finding) | applicant | 3 % |
//! | a commercial row with share 0 (no finding) | adult | 0.5 % |
//! | an exempt vehicle (motorcycle, tricycle, tractor, harvester, disabled vehicle; 20 % business use) | adult under 80 | urban 8 %, rural 27 % |
//! | a private car, SUV or van | adult under 80 | 2.6 % |
//! | a business truck, van, bus or vessel | adult under 80 | 1.4 % |
//! | a scrapped or transferred car (no finding) | adult under 80 | 2 % |
//! | active enterprise, legal representative or shareholder, capital ≥ 100,000 (15 % exactly 100,000) | adult under 80 | 1.1 % |
//! | active individual business (60 % with business income) | adult under 71 | 4.5 % |
//! | active cooperative | adult under 80 | 1.2 % |
//! | active enterprise shareholder with capital < 100,000 | adult under 80 | 0.6 % |
//! | active enterprise operator (capital ≥ 100,000, not an owner role) | adult under 80 | 0.4 % |
//! | revoked or deregistered entity (no finding) | adult under 80 | 3 % |
//! | registration status deceased / emigrated / cancelled | any member | 2.8 / 0.9 / 0.5 % |
//! | no registration record | a member other than the applicant | 1.5 % |
//! | outpatient costs (median 1,500 yuan, 30-60 % out of pocket) in Y (60 % also Y−1) | per member | 16 % |
//! | serious illness: 30,000-250,000 yuan in Y, 25-45 % out of pocket | any member | 3 % |
//!
//! # Caseload: supporters
//! None for tekun; others 0 / 1 / 2 / 3 persons with 40 / 31 / 20 / 9 %: the other parent of
//! a minor child (applicant under 50), the applicant's parent (applicant up to 45), a
//! separated spouse (no spouse in the household), or an adult child (applicant 38+; 35 % of
//! them support the spouse too: two rows, one person). Own household 1-6 persons with
//! 8 / 22 / 30 / 24 / 11 / 5 %. They live in another county (70 %) or the same one.
//!
//! | per supporter | probability |
//! |---|---|
//! | a job (median 3,600 yuan, σ 0.45), aged 18-59 | 18 % |
//! | labour income 3,000-30,000 yuan | 6 % |
//! | an individual business with 10,000-80,000 yuan business income | 3 % |
//! | resident pension (aged 60+) | 90 % |
//! | a non-exempt private car bought above 10,500 yuan (referred) | 6.5 % |
//! | a car bought at or below 10,500 yuan (a quarter exactly at it; no finding) | 2 % |
//! | an exempt vehicle / a business vehicle | 10 % / 0.8 % |
//! | a home / a second home (referred) / a half share besides (1.5: no finding) | 60 % / 1.2 % / 1 % |
//! | an active entity with capital ≥ 100,000 (referred) / a small enterprise share | 0.8 % / 3 % |
//!
//! # Residents (everybody else)
//! Ages 0-99: weight 0.85 below 15, 1 for 15-59, then falling linearly to 0 at 100. They
//! form registration households of 1-5 persons (20 / 28 / 22 / 18 / 12 %) sharing head,
//! region (the county 88 %, another county 12 %), type (urban 45 %) and mostly surname
//! (70 %). Income: a job for 40 % of ages 18-59 (median 4,300 yuan, σ 0.5; provident fund for
//! 44 % of the insured); at 60+ an
//! employee pension 30 % (median 3,300) or a resident pension 92 % (130-420 yuan); among
//! adults labour 5 %, business 3.5 % (with an individual business), lease 2 %, interest 25 %,
//! `other` 2 %; unemployment 1.5 % of ages 18-59 without a job. Their assets are drawn in
//! [`super::sources`].

use std::collections::HashMap;

use chrono::{Datelike, Duration, NaiveDate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::GenConfig;
use super::vocab::*;
use super::{IdNumber, make_id};

/// "No index" marker in `u32` index fields.
pub(super) const NONE: u32 = u32::MAX;

/// Stream tags: each purpose draws from its own ChaCha8 stream, so a change in one (say, the
/// bank rows) leaves every other table as it was.
pub(super) mod tag {
    pub const CASELOAD: u64 = 1;
    pub const RESIDENTS: u64 = 2;
    pub const INCOME: u64 = 3;
    pub const ORDER: u64 = 4;
    pub const KNOBS: u64 = 5;
    pub const DECLARED: u64 = 6;
    pub const EMPLOYERS: u64 = 7;
    /// Source `i` of [`super::super::SOURCES`] draws from `SOURCE + i`.
    pub const SOURCE: u64 = 100;
}

/// Caseload event probabilities (see the module docs for the whole table).
pub(super) struct CaseFigures {
    pub job: [f64; 4], // by programme code
    pub job2: f64,
    pub retiree: [f64; 4],
    pub labour: f64,
    pub lease: f64,
    pub other_tax: f64,
    pub unemployment: f64,
    pub injury: f64,
    pub interest_adult: f64,
    pub resident_pension: f64,
    pub big_deposit: f64,
    pub securities: f64,
    pub insurance: f64,
    pub internet_adult: f64,
    pub home_sole: [f64; 2], // by area code
    pub home_couple: [f64; 2],
    pub second_home: f64,
    pub inherited_share: f64,
    pub halves: f64,
    pub business_property: f64,
    pub parking: f64,
    pub other_usage: f64,
    pub zero_share: f64,
    pub exempt_vehicle: [f64; 2],
    pub private_car: f64,
    pub business_vehicle: f64,
    pub gone_car: f64,
    pub big_enterprise: f64,
    pub individual_business: f64,
    pub cooperative: f64,
    pub small_enterprise: f64,
    pub operator_role: f64,
    pub closed_entity: f64,
    pub deceased: f64,
    pub emigrated: f64,
    pub cancelled: f64,
    pub no_record: f64,
    pub outpatient_member: f64,
    pub serious_illness: f64,
}

/// The tuned figures (DESIGN.md §3 at the default as-of date: 55-70 % eligible).
pub(super) const CASE: CaseFigures = CaseFigures {
    job: [0.13, 0.0, 0.26, 0.18],
    job2: 0.10,
    retiree: [0.025, 0.02, 0.08, 0.06],
    labour: 0.06,
    lease: 0.008,
    other_tax: 0.02,
    unemployment: 0.02,
    injury: 0.004,
    interest_adult: 0.12,
    resident_pension: 0.93,
    big_deposit: 0.036,
    securities: 0.008,
    insurance: 0.05,
    internet_adult: 0.22,
    home_sole: [0.46, 0.30],
    home_couple: [0.20, 0.06],
    second_home: 0.012,
    inherited_share: 0.010,
    halves: 0.006,
    business_property: 0.010,
    parking: 0.022,
    other_usage: 0.03,
    zero_share: 0.005,
    exempt_vehicle: [0.08, 0.27],
    private_car: 0.026,
    business_vehicle: 0.014,
    gone_car: 0.02,
    big_enterprise: 0.011,
    individual_business: 0.045,
    cooperative: 0.012,
    small_enterprise: 0.006,
    operator_role: 0.004,
    closed_entity: 0.03,
    deceased: 0.028,
    emigrated: 0.009,
    cancelled: 0.005,
    no_record: 0.015,
    outpatient_member: 0.16,
    serious_illness: 0.03,
};

// ================================================================================ helpers

/// SplitMix64 finaliser: derives stream seeds and per-object attributes from integers.
pub(super) fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A deterministic hash of two integers.
pub(super) fn mix(a: u64, b: u64) -> u64 {
    splitmix(a ^ splitmix(b.wrapping_add(0x5851_F42D_4C95_7F2D)))
}

/// Yuan to fen.
pub(super) const fn yuan(y: i64) -> i64 {
    y * 100
}

/// True with probability `p`.
pub(super) fn chance(rng: &mut ChaCha8Rng, p: f64) -> bool {
    p > 0.0 && rng.random::<f64>() < p
}

/// An index drawn with the given (not necessarily normalised) weights.
pub(super) fn pick(rng: &mut ChaCha8Rng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut u = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if u < *w {
            return i;
        }
        u -= w;
    }
    weights.len() - 1
}

/// A standard normal draw, approximated by the Irwin–Hall sum of 12 uniforms (bounded at
/// ±6 σ). Only additions: the same on every machine, which libm's `ln`/`cos` do not promise.
pub(super) fn normal(rng: &mut ChaCha8Rng) -> f64 {
    (0..12).map(|_| rng.random::<f64>()).sum::<f64>() - 6.0
}

/// e^x from IEEE 754 additions, multiplications and divisions only (each correctly rounded,
/// so the result is the same on every machine; libm's `exp` may differ in the last bit, and
/// a rounded amount with it). Relative error below 1e-15 for |x| < 700.
pub(super) fn exp(x: f64) -> f64 {
    let k = (x * std::f64::consts::LOG2_E)
        .round()
        .clamp(-1000.0, 1000.0);
    let r = x - k * std::f64::consts::LN_2;
    let (mut term, mut sum) = (1.0f64, 1.0f64);
    for n in 1..=16 {
        term = term * r / f64::from(n);
        sum += term;
    }
    // 2^k, built from the exponent bits
    sum * f64::from_bits(((k as i64 + 1023) as u64) << 52)
}

/// Lognormal amount in fen with the given median (yuan) and σ, rounded to `step` fen.
pub(super) fn lognormal_fen(rng: &mut ChaCha8Rng, median_yuan: f64, sigma: f64, step: i64) -> i64 {
    let v = median_yuan * exp(sigma * normal(rng)) * 100.0;
    ((v / step as f64).round() as i64).max(1) * step
}

/// Uniform amount in fen between two yuan figures, in multiples of `step` fen.
pub(super) fn uniform_fen(rng: &mut ChaCha8Rng, lo_yuan: i64, hi_yuan: i64, step: i64) -> i64 {
    let lo = lo_yuan * 100 / step;
    let hi = hi_yuan * 100 / step;
    rng.random_range(lo..=hi) * step
}

/// Month index (year × 12 + month − 1) of a date.
pub(super) fn month_index(d: NaiveDate) -> i32 {
    d.year() * 12 + d.month0() as i32
}

/// Number of months of the spell `[start, end]` inside `[lo, hi]` (month indices).
pub(super) fn months_in(start: i32, end: i32, lo: i32, hi: i32) -> i32 {
    (end.min(hi) - start.max(lo) + 1).max(0)
}

/// Run-wide constants.
pub(super) struct Ctx {
    pub seed: u64,
    /// D, the as-of date.
    pub d: NaiveDate,
    /// Month index of D.
    pub md: i32,
    /// Y = year(D) − 1, the last complete tax year.
    pub y: i32,
    pub region: u32,
    /// Other counties (never empty: falls back to the region).
    pub others: Vec<u32>,
}

impl Ctx {
    pub fn new(cfg: &GenConfig) -> Ctx {
        let others: Vec<u32> = cfg
            .other_counties
            .iter()
            .copied()
            .filter(|&c| c != cfg.region)
            .collect();
        Ctx {
            seed: cfg.seed,
            d: cfg.as_of,
            md: month_index(cfg.as_of),
            y: cfg.as_of.year() - 1,
            region: cfg.region,
            others: if others.is_empty() {
                vec![cfg.region]
            } else {
                others
            },
        }
    }

    /// The ChaCha8 stream of one purpose.
    pub fn stream(&self, tag: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(mix(self.seed, tag))
    }

    pub fn other_county(&self, rng: &mut ChaCha8Rng) -> u32 {
        self.others[rng.random_range(0..self.others.len())]
    }

    pub fn days_before(&self, n: i64) -> NaiveDate {
        self.d - Duration::days(n)
    }

    /// A birth date such that the age on D is exactly `age` years.
    pub fn birth_for_age(&self, rng: &mut ChaCha8Rng, age: i32) -> NaiveDate {
        let y = self.d.year() - age;
        let anniversary = NaiveDate::from_ymd_opt(y, self.d.month(), self.d.day())
            .or_else(|| NaiveDate::from_ymd_opt(y, self.d.month(), 28))
            .expect("day 28 exists in every month");
        anniversary - Duration::days(rng.random_range(0..=364))
    }

    pub fn age(&self, birth: NaiveDate) -> i32 {
        let mut a = self.d.year() - birth.year();
        if (self.d.month(), self.d.day()) < (birth.month(), birth.day()) {
            a -= 1;
        }
        a
    }
}

// ================================================================================ people

/// A person's name as indices into the pools of [`super::vocab`]; `g2 == NO_CHAR` for a
/// one-character given name. The pool (male or female) follows the person's gender.
#[derive(Clone, Copy, Debug)]
pub(super) struct Name {
    pub sur: u8,
    pub g1: u8,
    pub g2: u8,
}
pub(super) const NO_CHAR: u8 = u8::MAX;

/// Cumulative surname weights (Zipf-like, exponent 0.75).
pub(super) struct NamePools {
    sur_cdf: Vec<f64>,
}

impl NamePools {
    pub fn new() -> NamePools {
        let mut acc = 0.0;
        let sur_cdf = (0..SURNAMES.len())
            .map(|i| {
                // weight 1 / rank^0.75 (square roots are correctly rounded everywhere)
                let r = (i + 1) as f64;
                acc += 1.0 / (r * r * r).sqrt().sqrt();
                acc
            })
            .collect();
        NamePools { sur_cdf }
    }

    pub fn surname(&self, rng: &mut ChaCha8Rng) -> u8 {
        let total = *self.sur_cdf.last().expect("surnames");
        let u = rng.random::<f64>() * total;
        self.sur_cdf
            .partition_point(|&c| c <= u)
            .min(SURNAMES.len() - 1) as u8
    }

    pub fn name(&self, rng: &mut ChaCha8Rng, male: bool, sur: Option<u8>) -> Name {
        let sur = sur.unwrap_or_else(|| self.surname(rng));
        let pool = if male {
            GIVEN_MALE.len()
        } else {
            GIVEN_FEMALE.len()
        };
        let g1 = rng.random_range(0..pool) as u8;
        let g2 = if chance(rng, 0.72) {
            rng.random_range(0..pool) as u8
        } else {
            NO_CHAR
        };
        Name { sur, g1, g2 }
    }
}

pub(super) fn name_string(n: Name, male: bool) -> String {
    let pool = if male { GIVEN_MALE } else { GIVEN_FEMALE };
    let mut s = String::with_capacity(9);
    s.push_str(SURNAMES[n.sur as usize]);
    s.push_str(pool[n.g1 as usize]);
    if n.g2 != NO_CHAR {
        s.push_str(pool[n.g2 as usize]);
    }
    s
}

/// One person covered by the sources.
pub(super) struct Person {
    /// `IdNumber::key` of the person's (valid, unique) ID.
    pub key: u64,
    pub birth: NaiveDate,
    pub name: Name,
    pub male: bool,
    pub hukou_region: u32,
    pub hukou_urban: bool,
    /// Person index of the head of the registration household.
    pub head: u32,
    /// Index into `World::plans` (caseload persons) or [`NONE`].
    pub plan: u32,
}

/// A job: monthly wage, employment spell and what the tax and social-insurance records show.
pub(super) struct Job {
    /// Gross monthly wage, fen.
    pub wage: i64,
    /// Monthly contribution base (缴费基数), fen; 0 = informal work without social insurance.
    pub base: i64,
    /// Spell, month indices inclusive.
    pub start: i32,
    pub end: i32,
    pub employer: u32,
    /// Tax `wages` gross of year Y and Y−1, fen.
    pub tax_y: i64,
    pub tax_y1: i64,
    /// Year-Y wages reported by two withholding agents (two tax rows).
    pub split: bool,
    /// Housing provident fund: balance before the extract's first month, fen; 0 = none.
    pub pf_balance: i64,
}

/// What a person earns besides assets (fen; pensions and benefits per month).
#[derive(Default)]
pub(super) struct Income {
    pub job: Option<u32>,
    pub emp_pension: i64,
    pub pension_from: i32,
    pub res_pension: i64,
    pub unemployment: i64,
    pub unemployment_from: i32,
    pub unemployment_months: i32,
    pub injury: i64,
    /// [year Y, year Y−1]
    pub labour: [i64; 2],
    pub business: [i64; 2],
    pub lease: i64,
    pub interest: i64,
    pub other: i64,
    /// Pays the yearly resident medical-insurance premium (a `medical` contribution row).
    pub med_premium: bool,
}

/// The events chosen for a caseload person (member or supporter).
#[derive(Default, Clone)]
pub(super) struct Plan {
    pub status: u8,
    pub no_record: bool,
    pub supporter: bool,
    /// The household's region (a couple's home is registered there).
    pub region: u32,
    pub bank_accounts: u8,
    pub bank_median_yuan: f64,
    /// A large deposit (fen) and its product code.
    pub big_deposit: i64,
    pub big_product: u8,
    pub securities: i64,
    /// Product code + 1 (0 = none) and cash value (fen).
    pub insurance: u8,
    pub insurance_cash: i64,
    pub internet: u8,
    pub homes: u8,
    /// Shared certificate of a home co-owned 50/50 with the spouse.
    pub couple_cert: Option<u32>,
    /// Inherited residential share in hundredths of a percent (0 = none).
    pub inherited_share: i64,
    pub halves: bool,
    pub half_extra: bool,
    pub business_property: Option<u8>,
    pub parking: bool,
    pub other_usage: bool,
    pub zero_share: bool,
    pub exempt_vehicle: bool,
    pub private_car: bool,
    pub business_vehicle: bool,
    pub gone_car: bool,
    pub cheap_car: bool,
    pub big_enterprise: bool,
    pub individual_business: bool,
    pub cooperative: bool,
    pub small_enterprise: bool,
    pub operator_role: bool,
    pub closed_entity: bool,
    pub big_capital: bool,
    pub outpatient: bool,
    pub serious_illness: bool,
}

pub(super) struct Household {
    pub region: u32,
    pub area: u8,
    pub programme: u8,
    /// Category code or `u8::MAX` (empty).
    pub category: u8,
    pub declared_income: i64,
    pub declared_assets: i64,
    pub last_verified: Option<NaiveDate>,
}

pub(super) struct MemberRow {
    pub household: u32,
    pub person: u32,
    pub relation: u8,
    /// 1-4, 0 = none.
    pub disability: u8,
    /// The ID as the caseload holds it when it was mistyped (`invalid_id_members`).
    pub bad_id: Option<String>,
    pub consent: bool,
}

pub(super) struct SupporterRow {
    pub household: u32,
    pub person: u32,
    /// Index into `World::members` of the supported member.
    pub supports: u32,
    pub relation: u8,
    pub own_size: u8,
    pub consent: bool,
}

/// The whole synthetic county.
pub(super) struct World {
    pub households: Vec<Household>,
    pub members: Vec<MemberRow>,
    pub supporters: Vec<SupporterRow>,
    /// Everybody, in the order of the extracts (see [`shuffle`]).
    pub people: Vec<Person>,
    /// Parallel to `people`.
    pub incomes: Vec<Income>,
    pub jobs: Vec<Job>,
    /// Caseload persons' events, indexed by `Person::plan`.
    pub plans: Vec<Plan>,
    /// Number of supporter persons (distinct).
    pub supporter_persons: usize,
    /// Couples' shared certificates are numbered 0..couples.
    pub couples: u32,
    /// Employers' unified social credit codes.
    pub employers: Vec<String>,
}

impl World {
    pub fn person_name(&self, p: u32) -> String {
        let q = &self.people[p as usize];
        name_string(q.name, q.male)
    }
}

/// Unique ID numbers: one sequence counter per (region, birth date, gender), starting at an
/// offset derived from the group so sequence codes look scattered. Sequence parity is the
/// gender (GB 11643-1999 §4.3: odd = male). A full group moves the birth date a day back.
struct IdAlloc {
    used: HashMap<u64, u16, BuildMix>,
}

/// A fast hasher for the allocator's integer keys (SplitMix64; no DoS concern here).
#[derive(Default, Clone, Copy)]
struct BuildMix;

#[derive(Default)]
struct MixHasher(u64);

impl std::hash::BuildHasher for BuildMix {
    type Hasher = MixHasher;
    fn build_hasher(&self) -> MixHasher {
        MixHasher(0)
    }
}

impl std::hash::Hasher for MixHasher {
    fn finish(&self) -> u64 {
        splitmix(self.0)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 ^= v;
    }
}

impl IdAlloc {
    fn alloc(&mut self, region: u32, mut birth: NaiveDate, male: bool) -> (u64, NaiveDate) {
        loop {
            let ymd =
                birth.year() as u64 * 10_000 + birth.month() as u64 * 100 + birth.day() as u64;
            let g = (region as u64 * 100_000_000 + ymd) * 2 + male as u64;
            let c = self.used.entry(g).or_insert(0);
            let cap: u64 = if male { 500 } else { 499 };
            if u64::from(*c) < cap {
                let k = (splitmix(g) % cap + u64::from(*c)) % cap;
                *c += 1;
                // male: 1, 3, …, 999; female: 2, 4, …, 998 (never 000)
                let seq = if male { 2 * k + 1 } else { 2 * (k + 1) };
                return (make_id(region, birth, seq as u32).key(), birth);
            }
            birth -= Duration::days(1);
        }
    }
}

/// A job: wage lognormal with the given median (yuan a month) and σ, at least 1,200 yuan.
///
/// | spell (month indices around month(D)) | probability |
/// |---|---|
/// | ongoing: started 14-120 months ago | 62 % |
/// | started within the last 12 months, ongoing | 14 % |
/// | ended 1-18 months ago after 5-60 months | 14 % |
/// | seasonal: 2-7 months starting 3-22 months ago | 10 % |
///
/// Tax `wages` of a year = wage × months worked in it × 1.00-1.18 (bonuses), Y−1 at 96 % of
/// the wage; 30 % of those who started after January of Y had an earlier job in Y
/// (2-9 months more of tax wages, no contributions). Contribution base: the wage 75 %,
/// 60-90 % of it 17 % (under-declared), none 8 % (informal: no social-insurance rows).
/// Provident fund for 30 % of the insured. Wages of Y split over two withholding agents 12 %.
fn make_job(
    rng: &mut ChaCha8Rng,
    ctx: &Ctx,
    median: f64,
    sigma: f64,
    jobs: &mut Vec<Job>,
    n_employers: u32,
) -> u32 {
    let md = ctx.md;
    let wage = lognormal_fen(rng, median, sigma, 100).max(yuan(1_200));
    let (start, end) = match pick(rng, &[0.62, 0.14, 0.14, 0.10]) {
        0 => (md - rng.random_range(14..=120), md + 36),
        1 => (md - rng.random_range(1..=12), md + 36),
        2 => {
            let end = md - rng.random_range(1..=18);
            (end - rng.random_range(5..=60), end)
        }
        _ => {
            let s = md - rng.random_range(3..=22);
            (s, s + rng.random_range(1..=6))
        }
    };
    let y = ctx.y;
    let in_y = months_in(start, end, y * 12, y * 12 + 11) as f64;
    let in_y1 = months_in(start, end, (y - 1) * 12, (y - 1) * 12 + 11) as f64;
    let mut tax_y = (wage as f64 * in_y * rng.random_range(1.0..1.18) / 100.0).round() as i64 * 100;
    let tax_y1 =
        (wage as f64 * 0.96 * in_y1 * rng.random_range(1.0..1.15) / 100.0).round() as i64 * 100;
    if start > y * 12 && chance(rng, 0.3) {
        // an earlier job in Y, not in the social-insurance window
        tax_y += (wage as f64 * rng.random_range(2.0..9.0) / 100.0).round() as i64 * 100;
    }
    let base = match pick(rng, &[0.75, 0.17, 0.08]) {
        0 => wage,
        1 => (wage as f64 * rng.random_range(0.6..0.9) / 100.0).round() as i64 * 100,
        _ => 0,
    };
    let pf_balance = if base > 0 && chance(rng, 0.3) {
        (base as f64 * rng.random_range(0.5..30.0)).round() as i64 / 100 * 100
    } else {
        0
    };
    jobs.push(Job {
        wage,
        base,
        start,
        end,
        employer: rng.random_range(0..n_employers),
        tax_y,
        tax_y1,
        split: chance(rng, 0.12),
        pf_balance,
    });
    (jobs.len() - 1) as u32
}

/// A member being drafted: relation, age, gender.
struct Draft {
    rel: u8,
    age: i32,
    male: bool,
}

/// The member with the highest random score among those `ok` accepts (uniform choice), or
/// `None`.
fn choose(rng: &mut ChaCha8Rng, idx: &[u32], ok: impl Fn(u32) -> bool) -> Option<u32> {
    let mut best = None;
    let mut seen = 0u32;
    for &i in idx {
        if ok(i) {
            seen += 1;
            if rng.random_range(0..seen) == 0 {
                best = Some(i);
            }
        }
    }
    best
}

/// With probability `p`, the member (position) chosen by [`choose`]; else `None`.
fn event(rng: &mut ChaCha8Rng, p: f64, idx: &[u32], ok: impl Fn(u32) -> bool) -> Option<u32> {
    if chance(rng, p) {
        choose(rng, idx, ok)
    } else {
        None
    }
}

/// Build the county. Deterministic in `cfg`.
pub(super) fn build(cfg: &GenConfig, ctx: &Ctx) -> World {
    let pools = NamePools::new();
    let mut ids = IdAlloc {
        used: HashMap::with_capacity_and_hasher(1 << 16, BuildMix),
    };
    let mut rng = ctx.stream(tag::CASELOAD);
    let n_employers = 4000u32;
    let mut w = World {
        households: Vec::with_capacity(cfg.households),
        members: Vec::new(),
        supporters: Vec::new(),
        people: Vec::new(),
        incomes: Vec::new(),
        jobs: Vec::new(),
        plans: Vec::new(),
        supporter_persons: 0,
        couples: 0,
        employers: Vec::new(),
    };
    let md = ctx.md;

    for h in 0..cfg.households as u32 {
        // ---- the household
        let area = if chance(&mut rng, 0.36) {
            AREA_URBAN
        } else {
            AREA_RURAL
        };
        let urban = area == AREA_URBAN;
        let programme = pick(&mut rng, &[0.58, 0.09, 0.15, 0.18]) as u8;
        let category = if programme == PROG_DIBAO {
            if urban {
                pick(&mut rng, &[0.3, 0.7]) as u8
            } else {
                2 + pick(&mut rng, &[0.15, 0.25, 0.30, 0.30]) as u8
            }
        } else {
            u8::MAX
        };
        let tekun = programme == PROG_TEKUN;
        let size = if tekun {
            if chance(&mut rng, 0.88) { 1 } else { 2 }
        } else {
            1 + pick(&mut rng, &[0.27, 0.26, 0.19, 0.15, 0.09, 0.04])
        };
        let s_year: i64 = if urban { 840_000 } else { 500_000 }; // S × 12, fen
        let region = ctx.region;
        // reviewed on time mostly: within the interval (six months for partial / class3 /
        // class4, a year otherwise) plus up to 40 days
        let interval = if matches!(category, 1 | 4 | 5) {
            183
        } else {
            365
        };
        let last_verified = if programme == PROG_APPLICANT || chance(&mut rng, 0.015) {
            None
        } else {
            Some(ctx.days_before(rng.random_range(5..=interval + 40)))
        };

        // ---- members
        let app_age = if tekun {
            if chance(&mut rng, 0.76) {
                rng.random_range(60..=94)
            } else {
                rng.random_range(18..=59)
            }
        } else {
            (50.0 + 15.0 * normal(&mut rng)).round().clamp(19.0, 92.0) as i32
        };
        let app_male = chance(&mut rng, 0.55);
        let mut drafts = vec![Draft {
            rel: REL_APPLICANT,
            age: app_age,
            male: app_male,
        }];
        while drafts.len() < size {
            if drafts.len() == 1
                && app_age >= 22
                && chance(&mut rng, if tekun { 0.5 } else { 0.72 })
            {
                let age = (app_age + rng.random_range(-6..=6)).clamp(20, 99);
                drafts.push(Draft {
                    rel: REL_SPOUSE,
                    age,
                    male: !app_male,
                });
                continue;
            }
            let child_ok = app_age >= 20;
            let parent_ok = app_age <= 68;
            let grand_ok = app_age >= 44;
            let weights = [
                if child_ok && !tekun { 0.68 } else { 0.0 },
                if parent_ok && !tekun { 0.10 } else { 0.0 },
                if grand_ok && !tekun { 0.12 } else { 0.0 },
                0.05,
                0.05,
            ];
            let (rel, age) = match pick(&mut rng, &weights) {
                0 => (REL_CHILD, (app_age - rng.random_range(20..=38)).max(0)),
                1 => (REL_PARENT, (app_age + rng.random_range(20..=33)).min(99)),
                2 => (REL_GRANDCHILD, (app_age - rng.random_range(42..=62)).max(0)),
                3 => (
                    REL_SIBLING,
                    (app_age + rng.random_range(-12..=12)).clamp(1, 99),
                ),
                _ => (REL_OTHER, rng.random_range(1..=85)),
            };
            drafts.push(Draft {
                rel,
                age,
                male: chance(&mut rng, 0.5),
            });
        }
        // family surname: the husband's among applicant and spouse, else the applicant's
        let app_sur = pools.surname(&mut rng);
        let spouse_sur = pools.surname(&mut rng);
        let has_spouse = drafts.iter().any(|d| d.rel == REL_SPOUSE);
        let family_sur = if !app_male && has_spouse {
            spouse_sur
        } else {
            app_sur
        };

        let first_member = w.members.len() as u32;
        let mut member_persons = Vec::with_capacity(size);
        let mut head = NONE;
        for d in &drafts {
            let sur = match d.rel {
                REL_APPLICANT => app_sur,
                REL_SPOUSE => spouse_sur,
                REL_CHILD | REL_GRANDCHILD => family_sur,
                REL_PARENT if d.male && app_male => app_sur,
                _ => pools.surname(&mut rng),
            };
            let id_region = if chance(&mut rng, 0.86) {
                region
            } else {
                ctx.other_county(&mut rng)
            };
            let hukou_region = if chance(&mut rng, 0.95) {
                region
            } else {
                ctx.other_county(&mut rng)
            };
            let hukou_urban = if chance(&mut rng, 0.9) { urban } else { !urban };
            let birth = ctx.birth_for_age(&mut rng, d.age);
            let (key, birth) = ids.alloc(id_region, birth, d.male);
            let p = w.people.len() as u32;
            if head == NONE {
                head = p;
            }
            let disability = if chance(&mut rng, if tekun { 0.33 } else { 0.065 }) {
                1 + pick(&mut rng, &[0.18, 0.24, 0.30, 0.28]) as u8
            } else {
                0
            };
            w.people.push(Person {
                key,
                birth,
                name: pools.name(&mut rng, d.male, Some(sur)),
                male: d.male,
                hukou_region,
                hukou_urban,
                head: if hukou_region == region { head } else { p },
                plan: p,
            });
            w.plans.push(Plan {
                region,
                ..Plan::default()
            });
            w.incomes.push(Income::default());
            w.members.push(MemberRow {
                household: h,
                person: p,
                relation: d.rel,
                disability,
                bad_id: None,
                consent: true,
            });
            member_persons.push(p);
        }
        // From here on members are addressed by position in the household (0 = applicant);
        // a caseload person's plan has the person's index.
        let mp = member_persons;
        let ages: Vec<i32> = mp
            .iter()
            .map(|&p| ctx.age(w.people[p as usize].birth))
            .collect();
        let rels: Vec<u8> = drafts.iter().map(|d| d.rel).collect();
        let males: Vec<bool> = drafts.iter().map(|d| d.male).collect();
        let pos: Vec<u32> = (0..size as u32).collect();
        let adult = |i: u32| ages[i as usize] >= 18;
        let working = |i: u32| (18..60).contains(&ages[i as usize]);
        let spouse_pos = rels.iter().position(|&r| r == REL_SPOUSE).map(|i| i as u32);

        // ---- supporters
        if !tekun {
            let n = pick(&mut rng, &[0.40, 0.31, 0.20, 0.09]);
            let minor = choose(&mut rng, &pos, |i| {
                rels[i as usize] == REL_CHILD && ages[i as usize] < 18
            });
            let mut used_other_parent = false;
            let mut used_spouse = false;
            for _ in 0..n {
                // (relation, supported member position, age, gender, surname)
                let parent_of_applicant = |rng: &mut ChaCha8Rng| {
                    let male = chance(rng, 0.5);
                    let sur = if male && app_male {
                        Some(app_sur)
                    } else {
                        None
                    };
                    (
                        SREL_PARENT,
                        0u32,
                        (app_age + rng.random_range(21..=33)).min(88),
                        male,
                        sur,
                    )
                };
                let (srel, supported, age, male, sur) = if let Some(c) = minor
                    && !used_other_parent
                    && app_age < 50
                    && chance(&mut rng, 0.45)
                {
                    // the other parent of a minor child, living apart
                    used_other_parent = true;
                    let male = !app_male;
                    let sur = if male {
                        Some(w.people[mp[c as usize] as usize].name.sur)
                    } else {
                        None
                    };
                    (
                        SREL_PARENT,
                        c,
                        (app_age + rng.random_range(-5..=6)).max(20),
                        male,
                        sur,
                    )
                } else if app_age <= 45 && chance(&mut rng, 0.5) {
                    parent_of_applicant(&mut rng)
                } else if spouse_pos.is_none()
                    && !used_spouse
                    && (25..=70).contains(&app_age)
                    && chance(&mut rng, 0.2)
                {
                    used_spouse = true;
                    (
                        SREL_SPOUSE,
                        0,
                        (app_age + rng.random_range(-5..=5)).max(20),
                        !app_male,
                        None,
                    )
                } else if app_age >= 38 {
                    let male = chance(&mut rng, 0.5);
                    let age = (app_age - rng.random_range(20..=36)).max(18);
                    (SREL_CHILD, 0, age, male, Some(family_sur))
                } else {
                    parent_of_applicant(&mut rng)
                };
                let home = if chance(&mut rng, 0.3) {
                    region
                } else {
                    ctx.other_county(&mut rng)
                };
                let id_region = if chance(&mut rng, 0.9) {
                    home
                } else {
                    ctx.other_county(&mut rng)
                };
                let birth = ctx.birth_for_age(&mut rng, age);
                let (key, birth) = ids.alloc(id_region, birth, male);
                let p = w.people.len() as u32;
                w.people.push(Person {
                    key,
                    birth,
                    name: pools.name(&mut rng, male, sur),
                    male,
                    hukou_region: home,
                    hukou_urban: chance(&mut rng, 0.55),
                    head: p,
                    plan: p,
                });
                w.plans.push(Plan {
                    region,
                    supporter: true,
                    ..Plan::default()
                });
                w.incomes.push(Income::default());
                w.supporter_persons += 1;
                let own_size = 1 + pick(&mut rng, &[0.08, 0.22, 0.30, 0.24, 0.11, 0.05]) as u8;
                w.supporters.push(SupporterRow {
                    household: h,
                    person: p,
                    supports: first_member + supported,
                    relation: srel,
                    own_size,
                    consent: true,
                });
                if srel == SREL_CHILD
                    && let Some(sp) = spouse_pos.filter(|_| chance(&mut rng, 0.35))
                {
                    w.supporters.push(SupporterRow {
                        household: h,
                        person: p,
                        supports: first_member + sp,
                        relation: srel,
                        own_size,
                        consent: true,
                    });
                }
                supporter_events(&mut rng, ctx, &mut w, p, n_employers);
            }
        }

        // ---- household events, each carried by one member
        let pg = programme as usize;
        let ai = area as usize;
        let person = |i: u32| mp[i as usize] as usize;

        // income
        let mut job_holder = None;
        if let Some(i) = event(&mut rng, CASE.job[pg], &pos, working) {
            let j = make_job(&mut rng, ctx, 2900.0, 0.35, &mut w.jobs, n_employers);
            w.incomes[person(i)].job = Some(j);
            job_holder = Some(i);
        }
        if let Some(first) = job_holder
            && let Some(i) = event(&mut rng, CASE.job2, &pos, |i| working(i) && i != first)
        {
            let j = make_job(&mut rng, ctx, 2900.0, 0.35, &mut w.jobs, n_employers);
            w.incomes[person(i)].job = Some(j);
        }
        let retired = |i: u32| ages[i as usize] >= if males[i as usize] { 60 } else { 55 };
        if let Some(i) = event(&mut rng, CASE.retiree[pg], &pos, |i| {
            retired(i) && w.incomes[person(i)].job.is_none()
        }) {
            let inc = &mut w.incomes[person(i)];
            inc.emp_pension = uniform_fen(&mut rng, 1700, 3800, 100);
            inc.pension_from = md - 12 - rng.random_range(0..120);
        }
        if let Some(i) = event(&mut rng, CASE.labour, &pos, |i| {
            adult(i) && ages[i as usize] < 66
        }) {
            let inc = &mut w.incomes[person(i)];
            inc.labour[0] = uniform_fen(&mut rng, 1500, 15000, 100);
            if chance(&mut rng, 0.5) {
                inc.labour[1] = uniform_fen(&mut rng, 1000, 12000, 100);
            }
        }
        if let Some(i) = event(&mut rng, CASE.lease, &pos, adult) {
            w.incomes[person(i)].lease = uniform_fen(&mut rng, 2400, 18000, 100);
        }
        if let Some(i) = event(&mut rng, CASE.other_tax, &pos, adult) {
            w.incomes[person(i)].other = uniform_fen(&mut rng, 300, 30000, 100);
        }
        if let Some(i) = event(&mut rng, CASE.unemployment, &pos, |i| {
            working(i) && w.incomes[person(i)].job.is_none()
        }) {
            let inc = &mut w.incomes[person(i)];
            inc.unemployment = uniform_fen(&mut rng, 1300, 1800, 1000);
            inc.unemployment_from = md - rng.random_range(1..=14);
            inc.unemployment_months = rng.random_range(2..=12);
        }
        if let Some(i) = event(&mut rng, CASE.injury, &pos, adult) {
            w.incomes[person(i)].injury = uniform_fen(&mut rng, 1500, 3000, 1000);
        }
        for &i in &pos {
            let a = ages[i as usize];
            let inc = &mut w.incomes[person(i)];
            if a >= 18 && chance(&mut rng, CASE.interest_adult) {
                inc.interest = uniform_fen(&mut rng, 3, 300, 1);
            }
            if a >= 60 && inc.emp_pension == 0 && chance(&mut rng, CASE.resident_pension) {
                inc.res_pension = uniform_fen(&mut rng, 115, 300, 100);
                inc.pension_from = md - 12 - rng.random_range(0..120);
            }
            inc.med_premium = inc.job.is_none() && chance(&mut rng, 0.85);
        }

        // financial assets
        for &i in &pos {
            let plan = &mut w.plans[person(i)];
            if adult(i) {
                plan.bank_accounts = pick(&mut rng, &[0.25, 0.5, 0.2, 0.05]) as u8;
                plan.bank_median_yuan = 500.0;
                plan.internet = chance(&mut rng, CASE.internet_adult) as u8;
            } else {
                plan.bank_accounts = chance(&mut rng, 0.08) as u8;
                plan.bank_median_yuan = 200.0;
            }
        }
        if let Some(i) = event(&mut rng, CASE.big_deposit, &pos, adult) {
            // 24 × S per capita is 2 × S_year × size; a tenth stay just below the line
            let factor = if chance(&mut rng, 0.1) {
                rng.random_range(0.55..0.95)
            } else {
                rng.random_range(1.05..2.6)
            };
            let plan = &mut w.plans[person(i)];
            plan.big_deposit =
                ((2 * s_year * size as i64) as f64 * factor / 100.0).round() as i64 * 100;
            plan.big_product = if chance(&mut rng, 0.35) { 2 } else { 1 };
        }
        if let Some(i) = event(&mut rng, CASE.securities, &pos, adult) {
            w.plans[person(i)].securities = uniform_fen(&mut rng, 3000, 80000, 1);
        }
        if let Some(i) = event(&mut rng, CASE.insurance, &pos, adult) {
            let k = pick(&mut rng, &[0.35, 0.25, 0.25, 0.15]) as u8; // life, annuity, health, accident
            let plan = &mut w.plans[person(i)];
            plan.insurance = k + 1;
            plan.insurance_cash = if k <= 1 {
                uniform_fen(&mut rng, 2000, 40000, 1)
            } else {
                0
            };
        }

        // real estate
        let u = rng.random::<f64>();
        let mut owns_home = false;
        if let Some(sp) = spouse_pos.filter(|_| u < CASE.home_couple[ai]) {
            let cert = w.couples;
            w.couples += 1;
            for i in [0, sp] {
                w.plans[person(i)].couple_cert = Some(cert);
            }
            owns_home = true;
        } else if u < CASE.home_couple[ai] + CASE.home_sole[ai] {
            let i = choose(&mut rng, &pos, adult).unwrap_or(0);
            w.plans[person(i)].homes = 1;
            owns_home = true;
        }
        if let Some(i) = event(&mut rng, CASE.second_home, &pos, adult) {
            w.plans[person(i)].homes += 1;
        }
        if let Some(i) = event(&mut rng, CASE.inherited_share, &pos, adult) {
            w.plans[person(i)].inherited_share = [2500, 3333, 5000][rng.random_range(0..3)];
        }
        if !owns_home && let Some(i) = event(&mut rng, CASE.halves, &pos, adult) {
            w.plans[person(i)].halves = true;
        }
        if let Some(i) = event(&mut rng, CASE.business_property, &pos, adult) {
            let u =
                [USE_COMMERCIAL, USE_OFFICE, USE_INDUSTRIAL][pick(&mut rng, &[0.7, 0.15, 0.15])];
            w.plans[person(i)].business_property = Some(u);
        }
        if chance(&mut rng, CASE.parking) {
            w.plans[person(0)].parking = true;
        }
        if chance(&mut rng, CASE.other_usage) {
            w.plans[person(0)].other_usage = true;
        }
        if let Some(i) = event(&mut rng, CASE.zero_share, &pos, adult) {
            w.plans[person(i)].zero_share = true;
        }

        // vehicles and market entities: one adult member under 80 carries each
        let driver = |i: u32| adult(i) && ages[i as usize] < 80;
        type Set = fn(&mut Plan);
        let events: [(f64, Set); 9] = [
            (CASE.exempt_vehicle[ai], |p| p.exempt_vehicle = true),
            (CASE.private_car, |p| p.private_car = true),
            (CASE.business_vehicle, |p| p.business_vehicle = true),
            (CASE.gone_car, |p| p.gone_car = true),
            (CASE.big_enterprise, |p| p.big_enterprise = true),
            (CASE.cooperative, |p| p.cooperative = true),
            (CASE.small_enterprise, |p| p.small_enterprise = true),
            (CASE.operator_role, |p| p.operator_role = true),
            (CASE.closed_entity, |p| p.closed_entity = true),
        ];
        for (prob, set) in events {
            if let Some(i) = event(&mut rng, prob, &pos, driver) {
                set(&mut w.plans[person(i)]);
            }
        }
        if let Some(i) = event(&mut rng, CASE.individual_business, &pos, |i| {
            adult(i) && ages[i as usize] < 71
        }) {
            w.plans[person(i)].individual_business = true;
            if chance(&mut rng, 0.6) {
                let inc = &mut w.incomes[person(i)];
                inc.business[0] = uniform_fen(&mut rng, 3000, 30000, 100);
                if chance(&mut rng, 0.6) {
                    inc.business[1] = uniform_fen(&mut rng, 2000, 25000, 100);
                }
            }
        }

        // registration
        for (st, p_ev) in [
            (ST_DECEASED, CASE.deceased),
            (ST_EMIGRATED, CASE.emigrated),
            (ST_CANCELLED, CASE.cancelled),
        ] {
            if let Some(i) = event(&mut rng, p_ev, &pos, |_| true) {
                w.plans[person(i)].status = st;
            }
        }
        if let Some(i) = event(&mut rng, CASE.no_record, &pos, |i| i != 0) {
            w.plans[person(i)].no_record = true;
        }

        // medical
        for &i in &pos {
            w.plans[person(i)].outpatient = chance(&mut rng, CASE.outpatient_member);
        }
        if let Some(i) = event(&mut rng, CASE.serious_illness, &pos, |_| true) {
            w.plans[person(i)].serious_illness = true;
        }

        w.households.push(Household {
            region,
            area,
            programme,
            category,
            declared_income: 0,
            declared_assets: 0,
            last_verified,
        });
    }

    declare(ctx, &mut w);
    w.employers = employers(ctx, n_employers);
    residents(cfg, ctx, &pools, &mut ids, &mut w, n_employers);
    knobs(cfg, ctx, &mut w);

    shuffle(ctx, &mut w);
    w
}

/// Put the persons in extract order: a shuffle, so caseload persons are scattered among
/// residents as in a real department export. People and incomes are moved physically (the
/// sources then read them sequentially); plans stay where they are (`Person::plan`).
fn shuffle(ctx: &Ctx, w: &mut World) {
    let n = w.people.len();
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut rng = ctx.stream(tag::ORDER);
    for i in (1..n).rev() {
        let j = rng.random_range(0..=i);
        order.swap(i, j);
    }
    let mut new_index = vec![0u32; n];
    for (new, &old) in order.iter().enumerate() {
        new_index[old as usize] = new as u32;
    }
    let mut people: Vec<Option<Person>> = std::mem::take(&mut w.people)
        .into_iter()
        .map(Some)
        .collect();
    let mut incomes: Vec<Option<Income>> = std::mem::take(&mut w.incomes)
        .into_iter()
        .map(Some)
        .collect();
    w.people = order
        .iter()
        .map(|&o| people[o as usize].take().expect("a permutation"))
        .collect();
    w.incomes = order
        .iter()
        .map(|&o| incomes[o as usize].take().expect("a permutation"))
        .collect();
    for p in &mut w.people {
        p.head = new_index[p.head as usize];
    }
    for m in &mut w.members {
        m.person = new_index[m.person as usize];
    }
    for s in &mut w.supporters {
        s.person = new_index[s.person as usize];
    }
}

/// A supporter's own income and assets (see the module docs).
fn supporter_events(rng: &mut ChaCha8Rng, ctx: &Ctx, w: &mut World, p: u32, n_employers: u32) {
    let age = ctx.age(w.people[p as usize].birth);
    let mut inc = Income::default();
    if (18..60).contains(&age) && chance(rng, 0.18) {
        inc.job = Some(make_job(rng, ctx, 3600.0, 0.45, &mut w.jobs, n_employers));
    }
    if chance(rng, 0.06) {
        inc.labour[0] = uniform_fen(rng, 3000, 30000, 100);
    }
    let mut plan = w.plans[p as usize].clone();
    if age < 71 && chance(rng, 0.03) {
        inc.business[0] = uniform_fen(rng, 10000, 80000, 100);
        inc.business[1] = uniform_fen(rng, 8000, 70000, 100);
        plan.individual_business = true;
    }
    if age >= 60 && chance(rng, 0.9) {
        inc.res_pension = uniform_fen(rng, 130, 350, 100);
        inc.pension_from = ctx.md - 12 - rng.random_range(0..120);
    }
    inc.med_premium = inc.job.is_none() && chance(rng, 0.8);
    plan.bank_accounts = pick(rng, &[0.1, 0.45, 0.3, 0.15]) as u8;
    plan.bank_median_yuan = 2500.0;
    plan.internet = chance(rng, 0.35) as u8;
    plan.homes = chance(rng, 0.6) as u8;
    if chance(rng, 0.012) {
        plan.homes += 1;
    }
    plan.half_extra = chance(rng, 0.01);
    plan.private_car = chance(rng, 0.065);
    plan.cheap_car = chance(rng, 0.02);
    plan.exempt_vehicle = chance(rng, 0.10);
    plan.business_vehicle = chance(rng, 0.008);
    plan.big_capital = chance(rng, 0.008);
    plan.small_enterprise = chance(rng, 0.03);
    plan.outpatient = chance(rng, 0.2);
    w.plans[p as usize] = plan;
    w.incomes[p as usize] = inc;
}

/// Declared income and assets: what the family knows, sometimes understated.
fn declare(ctx: &Ctx, w: &mut World) {
    let mut rng = ctx.stream(tag::DECLARED);
    let (lo, hi) = (ctx.md - 12, ctx.md - 1);
    let mut income = vec![0f64; w.households.len()];
    let mut assets = vec![0f64; w.households.len()];
    for m in &w.members {
        let inc = &w.incomes[m.person as usize];
        let mut y = 0f64;
        if let Some(j) = inc.job {
            let j = &w.jobs[j as usize];
            y += (j.wage * months_in(j.start, j.end, lo, hi) as i64) as f64;
        }
        y += ((inc.emp_pension + inc.res_pension) * 12) as f64;
        y += (inc.labour[0] + inc.business[0] + inc.lease) as f64;
        y += (inc.unemployment * inc.unemployment_months as i64) as f64;
        income[m.household as usize] += y;
        let plan = &w.plans[m.person as usize];
        assets[m.household as usize] += plan.bank_accounts as f64 * plan.bank_median_yuan * 100.0
            + plan.big_deposit as f64
            + plan.securities as f64
            + plan.insurance_cash as f64;
    }
    for (h, hh) in w.households.iter_mut().enumerate() {
        let fi = if chance(&mut rng, 0.75) {
            rng.random_range(0.92..1.08)
        } else {
            rng.random_range(0.30..0.80)
        };
        let fa = if chance(&mut rng, 0.75) {
            rng.random_range(0.92..1.08)
        } else {
            rng.random_range(0.20..0.80)
        };
        hh.declared_income = (income[h] * fi / 10_000.0).round() as i64 * 10_000;
        hh.declared_assets = (assets[h] * fa / 10_000.0).round() as i64 * 10_000;
    }
}

/// Employers' unified social credit codes: most in the county, some in other counties.
fn employers(ctx: &Ctx, n: u32) -> Vec<String> {
    let mut rng = ctx.stream(tag::EMPLOYERS);
    (0..n)
        .map(|i| {
            let region = if chance(&mut rng, 0.75) {
                ctx.region
            } else {
                ctx.other_county(&mut rng)
            };
            credit_code(
                "91",
                region,
                mix(ctx.seed, 0x0E00_0000 + u64::from(i)) % 27_512_614_111,
            )
        })
        .collect()
}

/// Residents' age pyramid: flat to 15 (slightly lower), flat 15-59, then linear to 0 at 100.
fn age_cdf() -> Vec<f64> {
    let mut acc = 0.0;
    (0..100)
        .map(|a| {
            acc += match a {
                0..15 => 0.85,
                15..60 => 1.0,
                _ => (100 - a) as f64 / 40.0,
            };
            acc
        })
        .collect()
}

/// Everybody else: the residents covered by the sources.
fn residents(
    cfg: &GenConfig,
    ctx: &Ctx,
    pools: &NamePools,
    ids: &mut IdAlloc,
    w: &mut World,
    n_employers: u32,
) {
    let m = w.members.len();
    let caseload_persons = w.people.len();
    let total = ((cfg.population_factor * m as f64).round() as usize).max(caseload_persons);
    let r = total - caseload_persons;
    let mut rng = ctx.stream(tag::RESIDENTS);
    let mut irng = ctx.stream(tag::INCOME);
    let cdf = age_cdf();
    let total_w = *cdf.last().expect("ages");
    w.people.reserve(r);
    w.incomes.reserve(r);
    let md = ctx.md;
    let mut left_in_group = 0usize;
    let (mut head, mut g_region, mut g_urban, mut g_sur) = (NONE, ctx.region, false, 0u8);
    for _ in 0..r {
        let p = w.people.len() as u32;
        if left_in_group == 0 {
            left_in_group = 1 + pick(&mut rng, &[0.2, 0.28, 0.22, 0.18, 0.12]);
            head = p;
            g_region = if chance(&mut rng, 0.88) {
                ctx.region
            } else {
                ctx.other_county(&mut rng)
            };
            g_urban = chance(&mut rng, 0.45);
            g_sur = pools.surname(&mut rng);
        }
        left_in_group -= 1;
        let u = rng.random::<f64>() * total_w;
        let age = cdf.partition_point(|&c| c <= u).min(99) as i32;
        let male = chance(&mut rng, 0.5);
        let id_region = if chance(&mut rng, 0.92) {
            g_region
        } else {
            ctx.other_county(&mut rng)
        };
        let birth = ctx.birth_for_age(&mut rng, age);
        let (key, birth) = ids.alloc(id_region, birth, male);
        let sur = if chance(&mut rng, 0.7) {
            Some(g_sur)
        } else {
            None
        };
        w.people.push(Person {
            key,
            birth,
            name: pools.name(&mut rng, male, sur),
            male,
            hukou_region: g_region,
            hukou_urban: g_urban,
            head,
            plan: NONE,
        });

        // income (its own stream: the caseload's draws above stay the same)
        let age = ctx.age(birth);
        let mut inc = Income::default();
        let rg = &mut irng;
        if (18..60).contains(&age) && chance(rg, 0.40) {
            let j = make_job(rg, ctx, 4300.0, 0.5, &mut w.jobs, n_employers);
            if chance(rg, 0.2) {
                // residents' provident fund is more common than the caseload's
                let job = &mut w.jobs[j as usize];
                if job.base > 0 && job.pf_balance == 0 {
                    job.pf_balance = job.base * rg.random_range(1..40);
                }
            }
            inc.job = Some(j);
        } else if age >= 60 {
            if chance(rg, 0.30) {
                inc.emp_pension = lognormal_fen(rg, 3300.0, 0.3, 100);
                inc.pension_from = md - rg.random_range(1..240);
            } else if chance(rg, 0.92) {
                inc.res_pension = uniform_fen(rg, 130, 420, 100);
                inc.pension_from = md - rg.random_range(1..240);
            }
        } else if (18..60).contains(&age) && chance(rg, 0.015) {
            inc.unemployment = uniform_fen(rg, 1300, 1800, 1000);
            inc.unemployment_from = md - rg.random_range(1..=14);
            inc.unemployment_months = rg.random_range(2..=12);
        }
        if age >= 18 {
            if chance(rg, 0.05) {
                inc.labour[0] = uniform_fen(rg, 1000, 40000, 100);
                if chance(rg, 0.5) {
                    inc.labour[1] = uniform_fen(rg, 1000, 40000, 100);
                }
            }
            if age < 71 && chance(rg, 0.035) {
                inc.business[0] = uniform_fen(rg, 5000, 250000, 100);
                if chance(rg, 0.7) {
                    inc.business[1] = uniform_fen(rg, 5000, 250000, 100);
                }
            }
            if chance(rg, 0.02) {
                inc.lease = uniform_fen(rg, 3000, 60000, 100);
            }
            if chance(rg, 0.25) {
                inc.interest = uniform_fen(rg, 10, 3000, 1);
            }
            if chance(rg, 0.02) {
                inc.other = uniform_fen(rg, 500, 50000, 100);
            }
        }
        inc.med_premium = inc.job.is_none() && chance(rg, 0.85);
        w.incomes.push(inc);
    }
}

/// The optional damage of `invalid_id_members` and `missing_consent`, from its own stream
/// so that the rest of the county is identical with the knobs at 0.
fn knobs(cfg: &GenConfig, ctx: &Ctx, w: &mut World) {
    if cfg.invalid_id_members <= 0.0 && cfg.missing_consent <= 0.0 {
        return;
    }
    let mut rng = ctx.stream(tag::KNOBS);
    let mut first = vec![0u32; w.households.len() + 1];
    for m in &w.members {
        first[m.household as usize + 1] += 1;
    }
    for h in 0..w.households.len() {
        first[h + 1] += first[h];
    }
    for h in 0..w.households.len() {
        let (a, b) = (first[h], first[h + 1]);
        if b == a {
            continue;
        }
        if chance(&mut rng, cfg.invalid_id_members) {
            let i = rng.random_range(a..b) as usize;
            let good = IdNumber::from_key(w.people[w.members[i].person as usize].key).expose();
            let mut bytes = good.into_bytes();
            let wrong = b"0123456789X";
            let mut c = wrong[rng.random_range(0..wrong.len())];
            while c == bytes[17] {
                c = wrong[rng.random_range(0..wrong.len())];
            }
            bytes[17] = c;
            w.members[i].bad_id = Some(String::from_utf8(bytes).expect("ASCII"));
        }
        if chance(&mut rng, cfg.missing_consent) {
            let i = rng.random_range(a..b) as usize;
            w.members[i].consent = false;
        }
    }
}
