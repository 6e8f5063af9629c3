//! Tables of the synthetic county: the three caseload tables and the 12 department extracts
//! (DESIGN.md §2), derived from the people of [`super::world`].
//!
//! Every extract lists persons in the one shuffled order of `World::people`, so caseload persons
//! are scattered among residents as in a real department export; a person's rows are
//! consecutive. Each extract draws its incidental details (amounts, dates, numbers) from its
//! own ChaCha8 stream.
//!
//! # Residents' assets and records (per person)
//!
//! | source | distribution |
//! |---|---|
//! | household_registration | everybody (caseload persons with a "no record" event excepted); residents deceased 0.3 %, emigrated 0.2 %, cancelled 0.1 % |
//! | real_estate | aged 25+: 0-3 homes 33 / 50 / 13 / 4 % (15 % of them a 50 % share), parking 8 %, commercial 3 %, office 0.5 %, industrial 0.3 %, other 3 % |
//! | market_entity | aged 18-70: an individual business with every business income and 3 % more, an enterprise 1.5 %, a cooperative 1 %, a revoked or deregistered entity 3 % |
//! | vehicle_vessel | adults: a private car 22 %, a business vehicle 3 %, an exempt kind 10 %, a scrapped or transferred car 3 % |
//! | bank | adults 0-4 accounts 5 / 30 / 35 / 20 / 10 %, balance lognormal median 8,000 yuan σ 1.4; minors one account 20 % |
//! | commercial_insurance | adults 12 %: life / annuity (cash value median 20,000) / health / accident / property |
//! | securities | adults 5 %, market value median 40,000 |
//! | internet_finance | adults 38 %, 1-2 products, median 2,000 |
//! | medical_insurance | 30 % in year Y (median 2,000 yuan, 30-60 % out of pocket; 60 % of them also in Y−1), serious illness 1 % |
//!
//! # Extract windows and rows
//! `social_insurance` covers the 13 months month(D)−12 ..= month(D) (month(D) lies outside
//! §3's window on purpose): per insured job month an `employee_pension` `contribution` (and an
//! `unemployment` one for half the employers) whose `amount` is the monthly contribution base
//! (缴费基数); per pension, benefit or allowance month a `benefit` row with the money paid;
//! the yearly resident medical-insurance premium as a `medical` `contribution` in January.
//! `provident_fund` covers the 6 months before month(D); `tax` and `medical_insurance` the
//! years Y−1 and Y; financial-asset rows are one per account or policy, as of 1-30 days
//! before D.

use chrono::{Datelike, Duration, NaiveDate};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::vocab::*;
use super::world::{
    Ctx, NONE, World, chance, lognormal_fen, mix, months_in, pick, tag, uniform_fen, yuan,
};
use super::{Column, Table};

// ================================================================================ helpers

/// The `id_number` and `name` columns every table but `households` starts with.
struct Holder {
    id: Vec<Option<u64>>,
    name: Vec<Option<String>>,
}

impl Holder {
    fn new() -> Holder {
        Holder {
            id: Vec::new(),
            name: Vec::new(),
        }
    }

    fn with_capacity(n: usize) -> Holder {
        Holder {
            id: Vec::with_capacity(n),
            name: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, w: &World, p: u32) {
        self.id.push(Some(w.people[p as usize].key));
        self.name.push(Some(w.person_name(p)));
    }

    fn table(self, name: &'static str, rest: Vec<(&'static str, Column)>) -> Table {
        let mut columns = vec![
            ("id_number", Column::Id(self.id)),
            ("name", Column::Text(self.name)),
        ];
        columns.extend(rest);
        Table { name, columns }
    }
}

fn en(codes: Vec<u8>, labels: &'static [&'static str]) -> Column {
    Column::Enum { codes, labels }
}

fn month(m: i32) -> (i32, u32) {
    (m.div_euclid(12), m.rem_euclid(12) as u32 + 1)
}

fn days(d: NaiveDate, n: i64) -> NaiveDate {
    d - Duration::days(n)
}

fn household_id(region: u32, h: u32) -> String {
    format!("{region}H{:07}", h + 1)
}

fn consent_ref(region: u32, year: i32, h: u32) -> String {
    format!("SQ-{region}-{year}-{:07}", h + 1)
}

// ================================================================================ caseload

pub(super) fn households(w: &World) -> Table {
    let n = w.households.len();
    let mut id = Vec::with_capacity(n);
    let mut region = Vec::with_capacity(n);
    let (mut area, mut programme, mut category) = (Vec::new(), Vec::new(), Vec::new());
    let (mut inc, mut assets, mut verified) = (Vec::new(), Vec::new(), Vec::new());
    for (h, hh) in w.households.iter().enumerate() {
        id.push(Some(household_id(hh.region, h as u32)));
        region.push(Some(hh.region.to_string()));
        area.push(hh.area);
        programme.push(hh.programme);
        category.push(hh.category);
        inc.push(Some(hh.declared_income));
        assets.push(Some(hh.declared_assets));
        verified.push(hh.last_verified);
    }
    Table {
        name: "households",
        columns: vec![
            ("household_id", Column::Text(id)),
            ("region_code", Column::Text(region)),
            ("area", en(area, AREA)),
            ("programme", en(programme, PROGRAMME)),
            ("category", en(category, CATEGORY)),
            ("declared_annual_income", Column::Money(inc)),
            ("declared_financial_assets", Column::Money(assets)),
            ("last_verified", Column::Date(verified)),
        ],
    }
}

/// The member ID as the caseload holds it: verbatim strings when some are mistyped.
fn caseload_ids(w: &World, rows: impl Iterator<Item = (u32, Option<usize>)>) -> Column {
    let rows: Vec<(u32, Option<usize>)> = rows.collect();
    let damaged = rows
        .iter()
        .any(|(_, m)| m.is_some_and(|m| w.members[m].bad_id.is_some()));
    if damaged {
        Column::RawId(
            rows.iter()
                .map(|&(p, m)| {
                    Some(
                        m.and_then(|m| w.members[m].bad_id.clone())
                            .unwrap_or_else(|| {
                                super::IdNumber::from_key(w.people[p as usize].key).expose()
                            }),
                    )
                })
                .collect(),
        )
    } else {
        Column::Id(
            rows.iter()
                .map(|&(p, _)| Some(w.people[p as usize].key))
                .collect(),
        )
    }
}

pub(super) fn members(w: &World, ctx: &Ctx) -> Table {
    let id = caseload_ids(
        w,
        w.members
            .iter()
            .enumerate()
            .map(|(i, m)| (m.person, Some(i))),
    );
    let mut name = Vec::new();
    let mut hid = Vec::new();
    let mut rel = Vec::new();
    let mut grade = Vec::new();
    let mut consent = Vec::new();
    for m in &w.members {
        let region = w.households[m.household as usize].region;
        name.push(Some(w.person_name(m.person)));
        hid.push(Some(household_id(region, m.household)));
        rel.push(m.relation);
        grade.push((m.disability > 0).then_some(i64::from(m.disability)));
        consent.push(
            m.consent
                .then(|| consent_ref(region, ctx.d.year(), m.household)),
        );
    }
    Table {
        name: "members",
        columns: vec![
            ("id_number", id),
            ("name", Column::Text(name)),
            ("household_id", Column::Text(hid)),
            ("relation", en(rel, RELATION)),
            ("disability_grade", Column::Int(grade)),
            ("consent_ref", Column::Text(consent)),
        ],
    }
}

pub(super) fn supporters(w: &World, ctx: &Ctx) -> Table {
    let id = caseload_ids(w, w.supporters.iter().map(|s| (s.person, None)));
    let supports = caseload_ids(
        w,
        w.supporters.iter().map(|s| {
            (
                w.members[s.supports as usize].person,
                Some(s.supports as usize),
            )
        }),
    );
    let mut name = Vec::new();
    let mut hid = Vec::new();
    let mut rel = Vec::new();
    let mut size = Vec::new();
    let mut consent = Vec::new();
    let mut k = 0u32; // supporter person number within the household
    let mut last = (NONE, NONE);
    for s in &w.supporters {
        let region = w.households[s.household as usize].region;
        if s.household != last.0 {
            k = 0;
        }
        if (s.household, s.person) != last {
            k += 1;
        }
        last = (s.household, s.person);
        name.push(Some(w.person_name(s.person)));
        hid.push(Some(household_id(region, s.household)));
        rel.push(s.relation);
        size.push(Some(i64::from(s.own_size)));
        consent.push(
            s.consent
                .then(|| format!("{}-S{k}", consent_ref(region, ctx.d.year(), s.household))),
        );
    }
    Table {
        name: "supporters",
        columns: vec![
            ("id_number", id),
            ("name", Column::Text(name)),
            ("household_id", Column::Text(hid)),
            ("supports_id_number", supports),
            ("relation", en(rel, SUPPORTER_RELATION)),
            ("own_household_size", Column::Int(size)),
            ("consent_ref", Column::Text(consent)),
        ],
    }
}

// ================================================================================ sources

/// Build source `i` of [`super::SOURCES`].
pub(super) fn source(i: usize, w: &World, ctx: &Ctx) -> Table {
    let mut rng = ctx.stream(tag::SOURCE + i as u64);
    let r = &mut rng;
    match i {
        0 => household_registration(r, w, ctx),
        1 => tax(r, w, ctx),
        2 => social_insurance(w, ctx),
        3 => real_estate(r, w, ctx),
        4 => market_entity(r, w, ctx),
        5 => provident_fund(w, ctx),
        6 => vehicle_vessel(r, w, ctx),
        7 => bank(r, w, ctx),
        8 => commercial_insurance(r, w, ctx),
        9 => securities(r, w, ctx),
        10 => internet_finance(r, w, ctx),
        _ => medical_insurance(r, w, ctx),
    }
}

fn household_registration(rng: &mut ChaCha8Rng, w: &World, ctx: &Ctx) -> Table {
    let n = w.people.len();
    let mut h = Holder::with_capacity(n);
    let (mut gender, mut hukou, mut status) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut birth, mut date) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut region, mut head) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for p in 0..w.people.len() as u32 {
        let person = &w.people[p as usize];
        let st = if person.plan != NONE {
            let plan = &w.plans[person.plan as usize];
            if plan.no_record {
                continue;
            }
            plan.status
        } else {
            let u = rng.random::<f64>();
            if u < 0.003 {
                ST_DECEASED
            } else if u < 0.005 {
                ST_EMIGRATED
            } else if u < 0.006 {
                ST_CANCELLED
            } else {
                ST_NORMAL
            }
        };
        let since_birth = (ctx.d - person.birth).num_days().max(1);
        let d = if st != ST_NORMAL {
            days(ctx.d, rng.random_range(5..=700).min(since_birth - 1).max(0))
        } else if chance(rng, 0.7) {
            person.birth + Duration::days(rng.random_range(0..=60).min(since_birth - 1).max(0))
        } else {
            // moved in: some day between birth and D
            person.birth + Duration::days(rng.random_range(0..since_birth))
        };
        h.push(w, p);
        gender.push(if person.male { 0 } else { 1 });
        birth.push(Some(person.birth));
        region.push(Some(person.hukou_region.to_string()));
        hukou.push(if person.hukou_urban { 0 } else { 1 });
        head.push(Some(w.people[person.head as usize].key));
        status.push(st);
        date.push(Some(d));
    }
    h.table(
        "household_registration",
        vec![
            ("gender", en(gender, GENDER)),
            ("birth_date", Column::Date(birth)),
            ("hukou_region_code", Column::Text(region)),
            ("hukou_type", en(hukou, HUKOU_TYPE)),
            ("household_head_id", Column::Id(head)),
            ("status", en(status, REGISTRATION_STATUS)),
            ("status_date", Column::Date(date)),
        ],
    )
}

/// Individual income tax withheld, roughly (informational: no rule reads `tax_paid`).
fn tax_paid(itype: u8, gross: i64) -> i64 {
    let g = gross as f64;
    let t = match itype {
        IT_WAGES => {
            // 60,000 yuan a year standard deduction, 3 % / 10 % / 20 % brackets
            let taxable = (g - 6_000_000.0).max(0.0);
            let b1 = taxable.min(3_600_000.0) * 0.03;
            let b2 = (taxable - 3_600_000.0).clamp(0.0, 10_800_000.0) * 0.10;
            let b3 = (taxable - 14_400_000.0).max(0.0) * 0.20;
            b1 + b2 + b3
        }
        IT_LABOUR => (g * 0.8 * 0.2).max(0.0),
        IT_BUSINESS => (g - 6_000_000.0).max(0.0) * 0.05,
        IT_LEASE => g * 0.8 * 0.1,
        _ => g * 0.2,
    };
    (t / 100.0).round() as i64 * 100
}

fn tax(rng: &mut ChaCha8Rng, w: &World, ctx: &Ctx) -> Table {
    let mut h = Holder::new();
    let (mut year, mut itype, mut gross, mut paid) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let y = ctx.y as i64;
    for p in 0..w.people.len() as u32 {
        let inc = &w.incomes[p as usize];
        let mut rows: Vec<(i64, u8, i64)> = Vec::new();
        if let Some(j) = inc.job {
            let j = &w.jobs[j as usize];
            if j.tax_y1 > 0 {
                rows.push((y - 1, IT_WAGES, j.tax_y1));
            }
            if j.tax_y > 0 {
                if j.split {
                    let a =
                        (j.tax_y as f64 * rng.random_range(0.3..0.7) / 100.0).round() as i64 * 100;
                    rows.push((y, IT_WAGES, a));
                    rows.push((y, IT_WAGES, j.tax_y - a));
                } else {
                    rows.push((y, IT_WAGES, j.tax_y));
                }
            }
        }
        for (k, yr) in [(0, y), (1, y - 1)] {
            if inc.labour[k] > 0 {
                rows.push((yr, IT_LABOUR, inc.labour[k]));
            }
            if inc.business[k] > 0 {
                rows.push((yr, IT_BUSINESS, inc.business[k]));
            }
        }
        for (amount, t) in [
            (inc.lease, IT_LEASE),
            (inc.interest, IT_INTEREST),
            (inc.other, IT_OTHER),
        ] {
            if amount > 0 {
                rows.push((y, t, amount));
            }
        }
        rows.sort_by_key(|r| (r.0, r.1));
        for (yr, t, g) in rows {
            h.push(w, p);
            year.push(Some(yr));
            itype.push(t);
            gross.push(Some(g));
            paid.push(Some(tax_paid(t, g)));
        }
    }
    h.table(
        "tax",
        vec![
            ("tax_year", Column::Int(year)),
            ("income_type", en(itype, INCOME_TYPE)),
            ("gross_income", Column::Money(gross)),
            ("tax_paid", Column::Money(paid)),
        ],
    )
}

/// The social-insurance rows of one person in period order: (month, insurance type, record
/// type, employer index or [`NONE`], amount).
fn insurance_rows(w: &World, ctx: &Ctx, p: u32, rows: &mut Vec<(i32, u8, u8, u32, i64)>) {
    let (lo, hi) = (ctx.md - 12, ctx.md);
    let jan = ctx.d.year() * 12;
    let inc = &w.incomes[p as usize];
    rows.clear();
    if let Some(j) = inc.job {
        let j = &w.jobs[j as usize];
        if j.base > 0 {
            // half of the employers also report unemployment insurance on the same base
            let unemployment = j.employer.is_multiple_of(2);
            for m in j.start.max(lo)..=j.end.min(hi) {
                rows.push((m, INS_EMPLOYEE_PENSION, RT_CONTRIBUTION, j.employer, j.base));
                if unemployment {
                    rows.push((m, INS_UNEMPLOYMENT, RT_CONTRIBUTION, j.employer, j.base));
                }
            }
        }
    }
    let unemployment_to = inc.unemployment_from + inc.unemployment_months - 1;
    for (amt, t, from, to) in [
        (inc.emp_pension, INS_EMPLOYEE_PENSION, inc.pension_from, hi),
        (inc.res_pension, INS_RESIDENT_PENSION, inc.pension_from, hi),
        (inc.injury, INS_INJURY, lo, hi),
        (
            inc.unemployment,
            INS_UNEMPLOYMENT,
            inc.unemployment_from,
            unemployment_to,
        ),
    ] {
        if amt > 0 {
            for m in from.max(lo)..=to.min(hi) {
                rows.push((m, t, RT_BENEFIT, NONE, amt));
            }
        }
    }
    if inc.med_premium {
        // the yearly resident medical-insurance premium, paid in January
        rows.push((jan, INS_MEDICAL, RT_CONTRIBUTION, NONE, yuan(400)));
        if jan - 12 >= lo {
            rows.push((jan - 12, INS_MEDICAL, RT_CONTRIBUTION, NONE, yuan(380)));
        }
    }
    rows.sort_by_key(|r| (r.0, r.1, r.2));
}

fn social_insurance(w: &World, ctx: &Ctx) -> Table {
    let mut rows = Vec::new();
    // count first: this is the largest extract, and growing its columns costs more than a pass
    let n: usize = (0..w.people.len() as u32)
        .map(|p| {
            insurance_rows(w, ctx, p, &mut rows);
            rows.len()
        })
        .sum();
    let mut h = Holder::with_capacity(n);
    let (mut ins, mut rec) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut period, mut employer, mut amount) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for p in 0..w.people.len() as u32 {
        insurance_rows(w, ctx, p, &mut rows);
        for &(m, t, rt, e, a) in &rows {
            h.push(w, p);
            period.push(Some(month(m)));
            ins.push(t);
            rec.push(rt);
            employer.push((e != NONE).then(|| w.employers[e as usize].clone()));
            amount.push(Some(a));
        }
    }
    h.table(
        "social_insurance",
        vec![
            ("period", Column::Month(period)),
            ("insurance_type", en(ins, INSURANCE_TYPE)),
            ("record_type", en(rec, RECORD_TYPE)),
            ("employer_credit_code", Column::Text(employer)),
            ("amount", Column::Money(amount)),
        ],
    )
}

/// One real-estate row before numbering: usage, share (hundredths of a percent), and the
/// shared certificate of a couple's home.
struct Property {
    usage: u8,
    share: i64,
    couple: Option<u32>,
}

fn property_area(rng: &mut ChaCha8Rng, usage: u8) -> f64 {
    match usage {
        USE_RESIDENTIAL => 88.0 * super::world::exp(0.3 * super::world::normal(rng)),
        USE_PARKING => rng.random_range(12.0..35.0),
        USE_COMMERCIAL => rng.random_range(20.0..300.0),
        USE_OFFICE => rng.random_range(40.0..200.0),
        USE_INDUSTRIAL => rng.random_range(200.0..3000.0),
        _ => rng.random_range(8.0..60.0),
    }
}

fn real_estate(rng: &mut ChaCha8Rng, w: &World, ctx: &Ctx) -> Table {
    let mut h = Holder::new();
    let (mut cert, mut region, mut usage, mut area, mut share, mut date) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    let mut serial = w.couples; // couples' certificates are 1..=couples
    let mut props: Vec<Property> = Vec::new();
    for p in 0..w.people.len() as u32 {
        let person = &w.people[p as usize];
        props.clear();
        let sole = |u: u8| Property {
            usage: u,
            share: 10_000,
            couple: None,
        };
        if person.plan != NONE {
            let plan = &w.plans[person.plan as usize];
            for _ in 0..plan.homes {
                props.push(sole(USE_RESIDENTIAL));
            }
            if let Some(c) = plan.couple_cert {
                props.push(Property {
                    usage: USE_RESIDENTIAL,
                    share: 5_000,
                    couple: Some(c),
                });
            }
            if plan.inherited_share > 0 {
                props.push(Property {
                    usage: USE_RESIDENTIAL,
                    share: plan.inherited_share,
                    couple: None,
                });
            }
            if plan.halves {
                props.push(Property {
                    usage: USE_RESIDENTIAL,
                    share: 5_000,
                    couple: None,
                });
                props.push(Property {
                    usage: USE_RESIDENTIAL,
                    share: 5_000,
                    couple: None,
                });
            }
            if plan.half_extra {
                props.push(Property {
                    usage: USE_RESIDENTIAL,
                    share: 5_000,
                    couple: None,
                });
            }
            if let Some(u) = plan.business_property {
                let s = if chance(rng, 0.8) { 10_000 } else { 5_000 };
                props.push(Property {
                    usage: u,
                    share: s,
                    couple: None,
                });
            }
            if plan.parking {
                props.push(sole(USE_PARKING));
            }
            if plan.other_usage {
                props.push(sole(USE_OTHER));
            }
            if plan.zero_share {
                props.push(Property {
                    usage: USE_COMMERCIAL,
                    share: 0,
                    couple: None,
                });
            }
        } else if ctx.age(person.birth) >= 25 {
            for _ in 0..pick(rng, &[0.33, 0.50, 0.13, 0.04]) {
                let s = if chance(rng, 0.15) { 5_000 } else { 10_000 };
                props.push(Property {
                    usage: USE_RESIDENTIAL,
                    share: s,
                    couple: None,
                });
            }
            for (prob, u) in [
                (0.08, USE_PARKING),
                (0.03, USE_COMMERCIAL),
                (0.005, USE_OFFICE),
                (0.003, USE_INDUSTRIAL),
                (0.03, USE_OTHER),
            ] {
                if chance(rng, prob) {
                    props.push(sole(u));
                }
            }
        }
        for pr in &props {
            let (no, a, d, reg) = match pr.couple {
                Some(c) => {
                    // one property, two rows: number, area, date and region agree
                    let hsh = mix(ctx.seed, 0xC0_0000_0000 + u64::from(c));
                    let a = 60.0 + (hsh % 9000) as f64 / 100.0;
                    let d = days(ctx.d, 200 + (hsh >> 20) as i64 % 8000);
                    (c + 1, a, d, w.plans[person.plan as usize].region)
                }
                None => {
                    serial += 1;
                    let a = property_area(rng, pr.usage);
                    (
                        serial,
                        a,
                        days(ctx.d, rng.random_range(100..9000)),
                        person.hukou_region,
                    )
                }
            };
            let place = county_name(reg).unwrap_or("");
            h.push(w, p);
            cert.push(Some(format!(
                "{}({}){}不动产权第{:07}号",
                province_abbr(reg),
                d.year(),
                place,
                no
            )));
            region.push(Some(reg.to_string()));
            usage.push(pr.usage);
            area.push(Some((a * 100.0).round() as i64));
            share.push(Some(pr.share));
            date.push(Some(d));
        }
    }
    h.table(
        "real_estate",
        vec![
            ("certificate_no", Column::Text(cert)),
            ("region_code", Column::Text(region)),
            ("usage", en(usage, PROPERTY_USAGE)),
            ("area_m2", Column::Decimal2(area)),
            ("share_pct", Column::Decimal2(share)),
            ("registered_date", Column::Date(date)),
        ],
    )
}

/// One market-entity row before naming: type, role, capital (fen), status.
type EntityRow = (u8, u8, i64, u8);

fn market_entity(rng: &mut ChaCha8Rng, w: &World, ctx: &Ctx) -> Table {
    let mut h = Holder::new();
    let (mut code, mut ename, mut etype, mut role, mut capital, mut status, mut date) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    let mut serial = 0u64;
    let mut rows: Vec<EntityRow> = Vec::new();
    for p in 0..w.people.len() as u32 {
        let person = &w.people[p as usize];
        let inc = &w.incomes[p as usize];
        rows.clear();
        let rep_or_holder = |rng: &mut ChaCha8Rng| {
            if chance(rng, 0.5) {
                ROLE_LEGAL_REP
            } else {
                ROLE_SHAREHOLDER
            }
        };
        let closed = |rng: &mut ChaCha8Rng| 1 + rng.random_range(0..2u8);
        if person.plan != NONE {
            let plan = &w.plans[person.plan as usize];
            if plan.big_enterprise {
                let cap = if chance(rng, 0.15) {
                    yuan(100_000)
                } else {
                    uniform_fen(rng, 100_000, 2_000_000, yuan(1000))
                };
                rows.push((ET_ENTERPRISE, rep_or_holder(rng), cap, ES_ACTIVE));
            }
            if plan.big_capital {
                let t = if chance(rng, 0.7) {
                    ET_ENTERPRISE
                } else {
                    ET_COOPERATIVE
                };
                rows.push((
                    t,
                    rep_or_holder(rng),
                    uniform_fen(rng, 100_000, 1_000_000, yuan(1000)),
                    ES_ACTIVE,
                ));
            }
            if plan.individual_business || inc.business[0] > 0 {
                rows.push((
                    ET_INDIVIDUAL,
                    ROLE_OPERATOR,
                    uniform_fen(rng, 5_000, 80_000, yuan(1000)),
                    ES_ACTIVE,
                ));
            }
            if plan.cooperative {
                rows.push((
                    ET_COOPERATIVE,
                    rep_or_holder(rng),
                    uniform_fen(rng, 10_000, 300_000, yuan(1000)),
                    ES_ACTIVE,
                ));
            }
            if plan.small_enterprise {
                rows.push((
                    ET_ENTERPRISE,
                    ROLE_SHAREHOLDER,
                    uniform_fen(rng, 10_000, 99_999, 1),
                    ES_ACTIVE,
                ));
            }
            if plan.operator_role {
                rows.push((
                    ET_ENTERPRISE,
                    ROLE_OPERATOR,
                    uniform_fen(rng, 200_000, 1_000_000, yuan(1000)),
                    ES_ACTIVE,
                ));
            }
            if plan.closed_entity {
                let t = rng.random_range(0..3u8);
                let r = if t == ET_INDIVIDUAL {
                    ROLE_OPERATOR
                } else {
                    rep_or_holder(rng)
                };
                rows.push((
                    t,
                    r,
                    uniform_fen(rng, 5_000, 500_000, yuan(1000)),
                    closed(rng),
                ));
            }
        } else {
            let age = ctx.age(person.birth);
            if (18..=70).contains(&age) {
                if inc.business[0] > 0 || chance(rng, 0.03) {
                    rows.push((
                        ET_INDIVIDUAL,
                        ROLE_OPERATOR,
                        uniform_fen(rng, 5_000, 200_000, yuan(1000)),
                        ES_ACTIVE,
                    ));
                }
                if chance(rng, 0.015) {
                    let r = [ROLE_LEGAL_REP, ROLE_SHAREHOLDER, ROLE_OPERATOR]
                        [pick(rng, &[0.45, 0.45, 0.1])];
                    rows.push((
                        ET_ENTERPRISE,
                        r,
                        lognormal_fen(rng, 500_000.0, 1.0, yuan(1000)),
                        ES_ACTIVE,
                    ));
                }
                if chance(rng, 0.01) {
                    rows.push((
                        ET_COOPERATIVE,
                        rep_or_holder(rng),
                        uniform_fen(rng, 10_000, 500_000, yuan(1000)),
                        ES_ACTIVE,
                    ));
                }
                if chance(rng, 0.03) {
                    let t = rng.random_range(0..3u8);
                    let r = if t == ET_INDIVIDUAL {
                        ROLE_OPERATOR
                    } else {
                        rep_or_holder(rng)
                    };
                    rows.push((
                        t,
                        r,
                        uniform_fen(rng, 5_000, 500_000, yuan(1000)),
                        closed(rng),
                    ));
                }
            }
        }
        for &(t, r, cap, st) in &rows {
            serial += 1;
            let reg = person.hukou_region;
            let prefix = ["91", "92", "93"][t as usize];
            let sfx = ENTITY_SUFFIX[t as usize];
            let name = format!(
                "{}{}{}{}",
                county_name(reg).unwrap_or(""),
                SURNAMES[person.name.sur as usize],
                ENTITY_LUCKY[rng.random_range(0..ENTITY_LUCKY.len())],
                sfx[rng.random_range(0..sfx.len())]
            );
            h.push(w, p);
            code.push(Some(credit_code(
                prefix,
                reg,
                mix(ctx.seed, 0xE0_0000_0000 + serial) % 27_512_614_111,
            )));
            ename.push(Some(name));
            etype.push(t);
            role.push(r);
            capital.push(Some(cap));
            status.push(st);
            date.push(Some(days(ctx.d, rng.random_range(60..7000))));
        }
    }
    h.table(
        "market_entity",
        vec![
            ("credit_code", Column::Text(code)),
            ("entity_name", Column::Text(ename)),
            ("entity_type", en(etype, ENTITY_TYPE)),
            ("role", en(role, ENTITY_ROLE)),
            ("subscribed_capital", Column::Money(capital)),
            ("status", en(status, ENTITY_STATUS)),
            ("registered_date", Column::Date(date)),
        ],
    )
}

fn provident_fund(w: &World, ctx: &Ctx) -> Table {
    let (lo, hi) = (ctx.md - 6, ctx.md - 1);
    let mut h = Holder::new();
    let (mut period, mut deposit, mut balance) = (Vec::new(), Vec::new(), Vec::new());
    for p in 0..w.people.len() as u32 {
        let Some(j) = w.incomes[p as usize].job else {
            continue;
        };
        let j = &w.jobs[j as usize];
        if j.pf_balance == 0 || j.base == 0 || months_in(j.start, j.end, lo, hi) == 0 {
            continue;
        }
        // 10 % from the employee and 10 % from the employer, in whole yuan
        let dep = (j.base as f64 * 0.2 / 100.0).round() as i64 * 100;
        let mut bal = j.pf_balance;
        for m in j.start.max(lo)..=j.end.min(hi) {
            bal += dep;
            h.push(w, p);
            period.push(Some(month(m)));
            deposit.push(Some(dep));
            balance.push(Some(bal));
        }
    }
    h.table(
        "provident_fund",
        vec![
            ("period", Column::Month(period)),
            ("monthly_deposit", Column::Money(deposit)),
            ("balance", Column::Money(balance)),
        ],
    )
}

/// One vehicle before numbering: kind, usage (0 private / 1 business), price (fen), status.
type VehicleRow = (u8, u8, i64, u8);

fn exempt_vehicle(rng: &mut ChaCha8Rng) -> VehicleRow {
    let k = [
        VK_MOTORCYCLE,
        VK_TRICYCLE,
        VK_TRACTOR,
        VK_HARVESTER,
        VK_DISABLED,
    ][pick(rng, &[0.35, 0.3, 0.2, 0.05, 0.1])];
    let price = match k {
        VK_HARVESTER => uniform_fen(rng, 30_000, 150_000, yuan(100)),
        VK_TRACTOR => uniform_fen(rng, 8_000, 60_000, yuan(100)),
        _ => uniform_fen(rng, 2_000, 12_000, yuan(100)),
    };
    (k, chance(rng, 0.2) as u8, price, VS_NORMAL)
}

fn private_car(rng: &mut ChaCha8Rng) -> VehicleRow {
    let k = [VK_CAR, VK_SUV, VK_VAN][pick(rng, &[0.6, 0.3, 0.1])];
    (
        k,
        0,
        uniform_fen(rng, 20_000, 200_000, yuan(100)),
        VS_NORMAL,
    )
}

fn business_vehicle(rng: &mut ChaCha8Rng) -> VehicleRow {
    let k = [VK_TRUCK, VK_VAN, VK_BUS, VK_VESSEL][pick(rng, &[0.6, 0.25, 0.1, 0.05])];
    (
        k,
        1,
        uniform_fen(rng, 30_000, 300_000, yuan(100)),
        VS_NORMAL,
    )
}

fn gone_car(rng: &mut ChaCha8Rng) -> VehicleRow {
    (
        VK_CAR,
        0,
        uniform_fen(rng, 15_000, 120_000, yuan(100)),
        1 + rng.random_range(0..2u8),
    )
}

/// The five characters after the prefecture letter, unique per `serial`: a letter and four
/// digits for the first 240,000 vehicles, two letters and three digits for the next 576,000,
/// then a digit and four characters of base 34 (numbers are scattered by a multiplicative
/// permutation).
pub(super) fn plate_body(serial: u64, out: &mut String) {
    const LETTERS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const CHARS: &[u8] = b"0123456789ABCDEFGHJKLMNPQRSTUVWXYZ";
    if serial < 240_000 {
        let k = serial * 7919 % 240_000;
        out.push(LETTERS[(k / 10_000) as usize] as char);
        out.push_str(&format!("{:04}", k % 10_000));
    } else if serial < 816_000 {
        let k = (serial - 240_000) * 7919 % 576_000;
        out.push(LETTERS[(k / 24_000) as usize] as char);
        out.push(LETTERS[(k / 1000 % 24) as usize] as char);
        out.push_str(&format!("{:03}", k % 1000));
    } else {
        // a leading digit keeps these apart from the two forms above
        let mut k = serial - 816_000;
        out.push(CHARS[(k % 10) as usize] as char);
        k /= 10;
        for _ in 0..4 {
            out.push(CHARS[(k % 34) as usize] as char);
            k /= 34;
        }
    }
}

fn vehicle_vessel(rng: &mut ChaCha8Rng, w: &World, ctx: &Ctx) -> Table {
    let mut h = Holder::new();
    let (mut plate, mut kind, mut usage, mut price, mut date, mut status) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    let mut rows: Vec<VehicleRow> = Vec::new();
    let mut serial = 0u64;
    for p in 0..w.people.len() as u32 {
        let person = &w.people[p as usize];
        rows.clear();
        if person.plan != NONE {
            let plan = &w.plans[person.plan as usize];
            if plan.exempt_vehicle {
                rows.push(exempt_vehicle(rng));
            }
            if plan.private_car {
                rows.push(private_car(rng));
            }
            if plan.business_vehicle {
                rows.push(business_vehicle(rng));
            }
            if plan.gone_car {
                rows.push(gone_car(rng));
            }
            if plan.cheap_car {
                // an old car at or below 15 × 700 yuan (a quarter exactly at it)
                let price = if chance(rng, 0.25) {
                    yuan(10_500)
                } else {
                    uniform_fen(rng, 3_000, 10_500, yuan(100))
                };
                rows.push((VK_CAR, 0, price, VS_NORMAL));
            }
        } else if ctx.age(person.birth) >= 18 {
            for (prob, f) in [
                (0.22, private_car as fn(&mut ChaCha8Rng) -> VehicleRow),
                (0.03, business_vehicle),
                (0.10, exempt_vehicle),
                (0.03, gone_car),
            ] {
                if chance(rng, prob) {
                    rows.push(f(rng));
                }
            }
        }
        for &(k, u, pr, st) in &rows {
            let reg = person.hukou_region;
            let mut no = String::with_capacity(12);
            no.push_str(province_abbr(reg));
            no.push(plate_letter(reg));
            plate_body(serial, &mut no);
            serial += 1;
            h.push(w, p);
            plate.push(Some(no));
            kind.push(k);
            usage.push(u);
            price.push(Some(pr));
            date.push(Some(days(ctx.d, rng.random_range(30..5500))));
            status.push(st);
        }
    }
    h.table(
        "vehicle_vessel",
        vec![
            ("plate_no", Column::Text(plate)),
            ("kind", en(kind, VEHICLE_KIND)),
            ("usage", en(usage, VEHICLE_USAGE)),
            ("purchase_price", Column::Money(price)),
            ("registered_date", Column::Date(date)),
            ("status", en(status, VEHICLE_STATUS)),
        ],
    )
}

/// Card-number prefixes by bank (index into [`BANKS`]).
const CARD_PREFIX: &[&str] = &[
    "6222", "6228", "6217", "6227", "6222", "6221", "6236", "6230", "6224", "6225",
];

fn bank(rng: &mut ChaCha8Rng, w: &World, ctx: &Ctx) -> Table {
    let mut h = Holder::new();
    let (mut inst, mut acct, mut product, mut balance, mut date) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut rows: Vec<(u8, i64)> = Vec::new(); // product, balance
    for p in 0..w.people.len() as u32 {
        let person = &w.people[p as usize];
        rows.clear();
        if person.plan != NONE {
            let plan = &w.plans[person.plan as usize];
            for _ in 0..plan.bank_accounts {
                let prod = if chance(rng, 0.85) { 0 } else { 1 };
                rows.push((prod, lognormal_fen(rng, plan.bank_median_yuan, 1.2, 1)));
            }
            if plan.big_deposit > 0 {
                rows.push((plan.big_product, plan.big_deposit));
            }
        } else if ctx.age(person.birth) >= 18 {
            for _ in 0..pick(rng, &[0.05, 0.30, 0.35, 0.20, 0.10]) {
                let prod = pick(rng, &[0.75, 0.2, 0.05]) as u8;
                rows.push((prod, lognormal_fen(rng, 8000.0, 1.4, 1)));
            }
        } else if chance(rng, 0.2) {
            rows.push((0, lognormal_fen(rng, 800.0, 1.0, 1)));
        }
        for &(prod, bal) in &rows {
            let b = pick(rng, BANK_WEIGHTS);
            h.push(w, p);
            inst.push(b as u8);
            acct.push(Some(format!(
                "{}****{:04}",
                CARD_PREFIX[b],
                rng.random_range(0..10_000)
            )));
            product.push(prod);
            balance.push(Some(bal));
            date.push(Some(days(ctx.d, rng.random_range(1..=7))));
        }
    }
    h.table(
        "bank",
        vec![
            ("institution_code", en(inst, BANKS)),
            ("account_no_masked", Column::Text(acct)),
            ("product", en(product, BANK_PRODUCT)),
            ("balance", Column::Money(balance)),
            ("as_of_date", Column::Date(date)),
        ],
    )
}

fn commercial_insurance(rng: &mut ChaCha8Rng, w: &World, ctx: &Ctx) -> Table {
    let mut h = Holder::new();
    let (mut insurer, mut policy, mut ptype, mut cash, mut premium, mut date) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for p in 0..w.people.len() as u32 {
        let person = &w.people[p as usize];
        let row = if person.plan != NONE {
            let plan = &w.plans[person.plan as usize];
            (plan.insurance > 0).then(|| (plan.insurance - 1, plan.insurance_cash))
        } else if ctx.age(person.birth) >= 18 && chance(rng, 0.12) {
            let k = pick(rng, &[0.3, 0.2, 0.3, 0.15, 0.05]) as u8;
            let c = if k <= 1 {
                lognormal_fen(rng, 20_000.0, 1.0, 1)
            } else {
                0
            };
            Some((k, c))
        } else {
            None
        };
        if let Some((k, c)) = row {
            h.push(w, p);
            insurer.push(rng.random_range(0..INSURERS.len()) as u8);
            policy.push(Some(format!(
                "P{:015}",
                rng.random_range(0..1_000_000_000_000_000u64)
            )));
            ptype.push(k);
            cash.push(Some(c));
            premium.push(Some(uniform_fen(rng, 300, 8_000, yuan(10))));
            date.push(Some(days(ctx.d, rng.random_range(1..=30))));
        }
    }
    h.table(
        "commercial_insurance",
        vec![
            ("insurer_code", en(insurer, INSURERS)),
            ("policy_no", Column::Text(policy)),
            ("product_type", en(ptype, INSURANCE_PRODUCT)),
            ("cash_value", Column::Money(cash)),
            ("annual_premium", Column::Money(premium)),
            ("as_of_date", Column::Date(date)),
        ],
    )
}

fn securities(rng: &mut ChaCha8Rng, w: &World, ctx: &Ctx) -> Table {
    let mut h = Holder::new();
    let (mut inst, mut acct, mut value, mut cash, mut date) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for p in 0..w.people.len() as u32 {
        let person = &w.people[p as usize];
        let v = if person.plan != NONE {
            let s = w.plans[person.plan as usize].securities;
            (s > 0).then_some(s)
        } else if ctx.age(person.birth) >= 18 && chance(rng, 0.05) {
            Some(lognormal_fen(rng, 40_000.0, 1.3, 1))
        } else {
            None
        };
        if let Some(v) = v {
            h.push(w, p);
            inst.push(rng.random_range(0..BROKERS.len()) as u8);
            let market = if chance(rng, 0.5) { 'A' } else { '0' };
            acct.push(Some(format!(
                "{market}{:02}****{:03}",
                rng.random_range(0..100),
                rng.random_range(0..1000)
            )));
            value.push(Some(v));
            cash.push(Some(if chance(rng, 0.5) {
                uniform_fen(rng, 0, 3_000, 1)
            } else {
                0
            }));
            date.push(Some(days(ctx.d, rng.random_range(1..=7))));
        }
    }
    h.table(
        "securities",
        vec![
            ("institution_code", en(inst, BROKERS)),
            ("account_no_masked", Column::Text(acct)),
            ("market_value", Column::Money(value)),
            ("cash_balance", Column::Money(cash)),
            ("as_of_date", Column::Date(date)),
        ],
    )
}

fn internet_finance(rng: &mut ChaCha8Rng, w: &World, ctx: &Ctx) -> Table {
    let mut h = Holder::new();
    let (mut platform, mut product, mut balance, mut date) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for p in 0..w.people.len() as u32 {
        let person = &w.people[p as usize];
        let (n, median) = if person.plan != NONE {
            let plan = &w.plans[person.plan as usize];
            (
                plan.internet as usize,
                if plan.supporter { 1500.0 } else { 150.0 },
            )
        } else if ctx.age(person.birth) >= 18 && chance(rng, 0.38) {
            (1 + chance(rng, 0.3) as usize, 2000.0)
        } else {
            (0, 0.0)
        };
        for _ in 0..n {
            let pf = rng.random_range(0..PLATFORMS.len());
            let prods = PLATFORM_PRODUCTS[pf];
            h.push(w, p);
            platform.push(pf as u8);
            product.push(prods[rng.random_range(0..prods.len())]);
            balance.push(Some(lognormal_fen(rng, median, 1.2, 1)));
            date.push(Some(days(ctx.d, rng.random_range(1..=7))));
        }
    }
    h.table(
        "internet_finance",
        vec![
            ("platform", en(platform, PLATFORMS)),
            ("product", en(product, INTERNET_PRODUCTS)),
            ("balance", Column::Money(balance)),
            ("as_of_date", Column::Date(date)),
        ],
    )
}

fn medical_insurance(rng: &mut ChaCha8Rng, w: &World, ctx: &Ctx) -> Table {
    let mut h = Holder::new();
    let (mut year, mut total, mut oop) = (Vec::new(), Vec::new(), Vec::new());
    let y = ctx.y as i64;
    let mut rows: Vec<(i64, i64, i64)> = Vec::new();
    for p in 0..w.people.len() as u32 {
        let person = &w.people[p as usize];
        rows.clear();
        let (outpatient, serious, median) = if person.plan != NONE {
            let plan = &w.plans[person.plan as usize];
            (plan.outpatient, plan.serious_illness, 1500.0)
        } else {
            (chance(rng, 0.30), chance(rng, 0.01), 2000.0)
        };
        if outpatient {
            for yr in [y - 1, y] {
                if yr == y || chance(rng, 0.6) {
                    let t = lognormal_fen(rng, median, 1.0, 1);
                    let o = (t as f64 * rng.random_range(0.3..0.6)).round() as i64;
                    rows.push((yr, t, o));
                }
            }
        }
        if serious {
            let t = uniform_fen(rng, 30_000, 250_000, 1);
            let o = (t as f64 * rng.random_range(0.25..0.45)).round() as i64;
            rows.push((y, t, o));
        }
        for &(yr, t, o) in &rows {
            h.push(w, p);
            year.push(Some(yr));
            total.push(Some(t));
            oop.push(Some(o));
        }
    }
    h.table(
        "medical_insurance",
        vec![
            ("year", Column::Int(year)),
            ("total_cost", Column::Money(total)),
            ("out_of_pocket", Column::Money(oop)),
        ],
    )
}
