//! `hedui gen`: a deterministic synthetic county in the DESIGN.md §2 exchange format.
//!
//! Produces the caseload (`households`, `members`, `supporters`) and the 12 department
//! extracts covering the whole resident population: `population_factor` residents per
//! caseload member (members, supporters and everybody else together; ≈ 600,000 residents for
//! 30,000 households at the default 8). The data feeds the demo, the benchmarks and the tests,
//! and is tuned so that the §3 reference policy at the as-of date gives roughly 55-70 %
//! eligible, 15-25 % ineligible and 10-25 % referred households with every rule firing
//! somewhere: income, financial assets, vehicle, housing and market entity (ineligible and
//! referred), supporter assets, household composition (deceased, emigrated, no registration
//! record), gradual exit, the single-person option (severe disability, medical cost above
//! income), the declared-versus-verified gap and review due. `member_identity` and
//! `consent_missing` fire only through the [`GenConfig::invalid_id_members`] and
//! [`GenConfig::missing_consent`] knobs; `source_unverified` never (every table is written).
//!
//! Measured with the reference policy (`shared/peers/reference.py`) on the default county
//! (30,000 households, 76,007 members, 608,056 residents, 7.35 M source rows):
//!
//! | outcome | share of households |
//! |---|---|
//! | eligible / ineligible / referred | 62.86 / 22.11 / 15.03 % |
//! | income ineligible (of which gradual exit) | 19.38 % (5.57 %, 1.17 % referred) |
//! | financial_assets ineligible | 5.04 % |
//! | vehicle ineligible / referred | 2.48 / 1.28 % |
//! | housing ineligible (second home / business property) / referred | 1.11 / 1.01 / 2.18 % |
//! | market_entity ineligible / referred | 1.02 / 6.24 % |
//! | supporter_assets referred | 7.19 % |
//! | household_composition: deceased / emigrated / no record | 2.92 / 0.86 / 1.21 % |
//! | single_person_option: disability 1-2 / medical cost | 7.66 / 16.32 % |
//! | declared_gap (income / assets) | 27.7 % (20.9 / 8.9 %) |
//! | review due | 30.3 % |
//!
//! Seeds 1-3 and D = 2025-06-15 stay within a point of these.
//!
//! Layout: `world.rs` draws the people (the caseload with its tuned household events, and the
//! residents), `sources.rs` derives the tables from them, `vocab.rs` holds the §2 vocabularies
//! and name pools. The distributions are documented in those modules.
//!
//! Determinism: the same [`GenConfig`] gives the same tables, row order included, on any
//! machine. Every purpose (caseload, residents, income, each source, …) draws from its own
//! `ChaCha8Rng` seeded from the seed and a fixed tag, so adding a row to one extract does not
//! move any other. IDs are GB 11643-1999 numbers from [`make_id`]: real region codes, valid
//! birth dates, sequence parity = gender, unique within the county.
//!
//! Conventions (DESIGN.md §2 and its "Precise readings"): money in fen inside, yuan with two
//! decimals in files; `social_insurance` covers month(D)−12 ..= month(D) (one month outside
//! §3's window on purpose) and its `amount` on a `contribution` row is the monthly
//! contribution base; `tax` and `medical_insurance` cover the years Y−1 and Y (Y = year(D)−1);
//! `provident_fund` the six months before month(D); `real_estate.share_pct` is the holder's
//! share (a couple's home is one certificate with two 50 % rows).

mod parquet;
mod sources;
mod vocab;
mod world;

pub use parquet::write_parquet;

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use chrono::{Datelike, NaiveDate};

use crate::domain::id_number::{IdNumber, make_id};

/// The 12 department sources in DESIGN.md §2 order (file name = source name).
pub const SOURCES: [&str; 12] = {
    let mut t = [""; 12];
    let mut i = 0;
    while i < 12 {
        t[i] = hedui_connectors::SourceKind::ALL[i].name();
        i += 1;
    }
    t
};

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenConfig {
    /// Caseload households.
    pub households: usize,
    /// Seed of every random stream.
    pub seed: u64,
    /// The county being generated (GB/T 2260): the caseload and most residents live here.
    pub region: u32,
    /// Other county codes of the province: supporters' homes, migrants' origins, the issuing
    /// region of some IDs. Empty means `region` only.
    pub other_counties: Vec<u32>,
    /// D, the as-of date the data is tuned for (windows and years are relative to it).
    pub as_of: NaiveDate,
    /// Residents covered by the sources per caseload member (members, supporters and
    /// everybody else together); at least the caseload persons themselves.
    pub population_factor: f64,
    /// Fraction of households with one member whose caseload ID has a wrong check character
    /// (source rows keep the right one): fires `member_identity`.
    pub invalid_id_members: f64,
    /// Fraction of households with one member without `consent_ref`: fires `consent_missing`.
    pub missing_consent: f64,
    /// Fraction of caseload persons' source rows (every source but the household registration)
    /// keyed with another person's *valid* ID number, the name left as it is (issue 7: a bank
    /// or a vehicle office keyed the wrong customer, or a two-digit slip passed MOD 11-2).
    /// Half get a fresh valid ID of the same region and birth date that no resident holds
    /// (kind `valid_same_day`), half another resident's ID (outside the caseload; kind
    /// `valid_other_resident`). Each damaged row is listed in the table `truth_dirty`
    /// (`source`, `row`, `true_id_number`, `kind`; the layout of gen.py's), written only when
    /// this is above 0. Each source draws from its own stream.
    pub wrong_valid_ids: f64,
}

/// The `kind`s of [`GenConfig::wrong_valid_ids`] in `truth_dirty`.
pub const WRONG_VALID_KINDS: [&str; 2] = ["valid_same_day", "valid_other_resident"];

impl Default for GenConfig {
    /// 30,000 households in 麦积区 (620503) as of 2026-11-01, seed 20261101, 8 residents per
    /// member, the other 85 Gansu counties around it, no damage.
    fn default() -> Self {
        GenConfig {
            households: 30_000,
            seed: 20_261_101,
            region: 620_503,
            other_counties: vocab::GANSU_COUNTIES
                .iter()
                .map(|&(c, _)| c)
                .filter(|&c| c != 620_503)
                .collect(),
            as_of: NaiveDate::from_ymd_opt(2026, 11, 1).expect("a real date"),
            population_factor: 8.0,
            invalid_id_members: 0.0,
            missing_consent: 0.0,
            wrong_valid_ids: 0.0,
        }
    }
}

impl GenConfig {
    fn validate(&self) -> anyhow::Result<()> {
        if !(110_000..=829_999).contains(&self.region) {
            bail!("region {} is not a six-digit GB/T 2260 code", self.region);
        }
        if let Some(c) = self
            .other_counties
            .iter()
            .find(|c| !(110_000..=829_999).contains(*c))
        {
            bail!("other county {c} is not a six-digit GB/T 2260 code");
        }
        if !(self.population_factor.is_finite() && self.population_factor >= 0.0) {
            bail!(
                "population_factor must be a finite number ≥ 0, not {}",
                self.population_factor
            );
        }
        for (name, v) in [
            ("invalid_id_members", self.invalid_id_members),
            ("missing_consent", self.missing_consent),
            ("wrong_valid_ids", self.wrong_valid_ids),
        ] {
            if !(0.0..=1.0).contains(&v) {
                bail!("{name} must be a fraction between 0 and 1, not {v}");
            }
        }
        if !(1920..=2200).contains(&self.as_of.year()) {
            bail!("as_of {} is outside 1920-2200", self.as_of);
        }
        Ok(())
    }
}

/// One column of a generated table. Every variant holds one value per row; `None` (and
/// `u8::MAX` in an `Enum`) is null, written as an empty field.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// Free text (names, numbers that are not amounts, region codes).
    Text(Vec<Option<String>>),
    /// A vocabulary column: codes index `labels`; `u8::MAX` = null.
    Enum {
        /// One code per row, an index into `labels`; `u8::MAX` = null.
        codes: Vec<u8>,
        /// The vocabulary, spelled as in DESIGN.md §2.
        labels: &'static [&'static str],
    },
    /// ID numbers as [`IdNumber::key`]; written as the 18-character number.
    Id(Vec<Option<u64>>),
    /// ID numbers written verbatim (the deliberately invalid ones of `invalid_id_members`).
    RawId(Vec<Option<String>>),
    /// Integers: tax_year, year, disability_grade, own_household_size.
    Int(Vec<Option<i64>>),
    /// Money in fen; written as yuan with two decimals.
    Money(Vec<Option<i64>>),
    /// Hundredths (area_m2, share_pct); written with two decimals.
    Decimal2(Vec<Option<i64>>),
    /// Dates; written `YYYY-MM-DD`.
    Date(Vec<Option<NaiveDate>>),
    /// (year, month); written `YYYY-MM`.
    Month(Vec<Option<(i32, u32)>>),
}

impl Column {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            Column::Text(v) | Column::RawId(v) => v.len(),
            Column::Enum { codes, .. } => codes.len(),
            Column::Id(v) => v.len(),
            Column::Int(v) | Column::Money(v) | Column::Decimal2(v) => v.len(),
            Column::Date(v) => v.len(),
            Column::Month(v) => v.len(),
        }
    }

    /// Whether the column has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `i` as it is written to a file (empty for null).
    pub fn render(&self, i: usize, out: &mut Vec<u8>) {
        out.clear();
        match self {
            Column::Text(v) | Column::RawId(v) => {
                if let Some(s) = &v[i] {
                    out.extend_from_slice(s.as_bytes());
                }
            }
            Column::Enum { codes, labels } => {
                if let Some(l) = labels.get(codes[i] as usize) {
                    out.extend_from_slice(l.as_bytes());
                }
            }
            Column::Id(v) => {
                if let Some(k) = v[i] {
                    out.extend_from_slice(IdNumber::from_key(k).expose().as_bytes());
                }
            }
            Column::Int(v) => {
                if let Some(x) = v[i] {
                    let _ = write!(out, "{x}");
                }
            }
            Column::Money(v) | Column::Decimal2(v) => {
                if let Some(x) = v[i] {
                    let sign = if x < 0 { "-" } else { "" };
                    let a = x.unsigned_abs();
                    let _ = write!(out, "{sign}{}.{:02}", a / 100, a % 100);
                }
            }
            Column::Date(v) => {
                if let Some(d) = v[i] {
                    let _ = write!(out, "{:04}-{:02}-{:02}", d.year(), d.month(), d.day());
                }
            }
            Column::Month(v) => {
                if let Some((y, m)) = v[i] {
                    let _ = write!(out, "{y:04}-{m:02}");
                }
            }
        }
    }
}

/// A generated table: its file name (without extension) and its columns in DESIGN.md §2
/// order, `id_number` and `name` first in every table but `households`.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Table name = file name without extension (`households`, …, `medical_insurance`).
    pub name: &'static str,
    /// (column name, values), all of one length.
    pub columns: Vec<(&'static str, Column)>,
}

impl Table {
    /// Number of rows (0 for a table without columns).
    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, |(_, c)| c.len())
    }

    /// The column named `name`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, c)| c)
    }
}

/// What a run produced.
#[derive(Debug, Clone, PartialEq)]
pub struct GenStats {
    /// Caseload households.
    pub households: usize,
    /// Member rows (= member persons).
    pub members: usize,
    /// Distinct supporter persons (the `supporters` table may hold two rows for one).
    pub supporters: usize,
    /// Persons covered by the sources: members, supporters and everybody else.
    pub residents: usize,
    /// Rows per table, in the order the tables were handed over.
    pub rows: Vec<(&'static str, usize)>,
}

/// Generate the county and hand each table to `sink`: `households`, `members`,
/// `supporters`, then the 12 sources in DESIGN.md §2 order ([`SOURCES`]). Tables are handed
/// over one at a time, so a caller can write and drop each; the next table is built on a
/// second thread while `sink` runs (the output does not depend on it).
///
/// # Errors
/// An invalid configuration, or the first error `sink` returns (generation stops there).
pub fn generate(
    cfg: &GenConfig,
    sink: &mut dyn FnMut(Table) -> anyhow::Result<()>,
) -> anyhow::Result<GenStats> {
    cfg.validate()?;
    let ctx = world::Ctx::new(cfg);
    let w = world::build(cfg, &ctx);
    let mut rows = Vec::with_capacity(15);
    let stats_base = (
        w.households.len(),
        w.members.len(),
        w.supporter_persons,
        w.people.len(),
    );
    std::thread::scope(|scope| -> anyhow::Result<()> {
        // a rendezvous channel: at most the table being written and the next one are alive
        let (tx, rx) = std::sync::mpsc::sync_channel::<Table>(0);
        let (w, ctx) = (&w, &ctx);
        let producer = scope.spawn(move || {
            let builders: [&dyn Fn() -> Table; 3] = [
                &|| sources::households(w),
                &|| sources::members(w, ctx),
                &|| sources::supporters(w, ctx),
            ];
            for b in builders {
                if tx.send(b()).is_err() {
                    return;
                }
            }
            let damage = (cfg.wrong_valid_ids > 0.0).then(|| WrongIds::new(w));
            let mut truth = Vec::new();
            for i in 0..SOURCES.len() {
                let mut t = sources::source(i, w, ctx);
                if let Some(d) = &damage {
                    d.apply(&mut t, i, ctx, cfg.wrong_valid_ids, &mut truth);
                }
                if tx.send(t).is_err() {
                    return;
                }
            }
            if damage.is_some() {
                let _ = tx.send(truth_table(truth));
            }
        });
        let mut result = Ok(());
        for table in rx.iter() {
            rows.push((table.name, table.rows()));
            if let Err(e) = sink(table) {
                result = Err(e);
                break;
            }
        }
        drop(rx); // a failed sink stops the producer at its next send
        if producer.join().is_err() {
            bail!("the table generator thread panicked");
        }
        result
    })?;
    Ok(GenStats {
        households: stats_base.0,
        members: stats_base.1,
        supporters: stats_base.2,
        residents: stats_base.3,
        rows,
    })
}

/// The persons of [`GenConfig::wrong_valid_ids`]: caseload persons' keys and every resident's.
struct WrongIds<'a> {
    caseload: std::collections::HashSet<u64>,
    everyone: std::collections::HashSet<u64>,
    people: &'a [world::Person],
}

impl<'a> WrongIds<'a> {
    fn new(w: &'a world::World) -> Self {
        let caseload = w
            .members
            .iter()
            .map(|m| m.person)
            .chain(w.supporters.iter().map(|s| s.person))
            .map(|p| w.people[p as usize].key)
            .collect();
        WrongIds {
            caseload,
            everyone: w.people.iter().map(|p| p.key).collect(),
            people: &w.people,
        }
    }

    /// Re-key a fraction `frac` of the caseload persons' rows of source `i` (not the
    /// registration); one `(source, row, true key, kind)` per damaged row into `truth`.
    fn apply(
        &self,
        t: &mut Table,
        i: usize,
        ctx: &world::Ctx,
        frac: f64,
        truth: &mut Vec<(usize, u64, u64, u8)>,
    ) {
        use rand::Rng;
        if SOURCES[i] == "household_registration" {
            return;
        }
        let Some((_, Column::Id(ids))) = t.columns.iter_mut().find(|(n, _)| *n == "id_number")
        else {
            return;
        };
        let mut rng = ctx.stream(0x7772_6f6e_6769_6400 + i as u64);
        for (row, id) in ids.iter_mut().enumerate() {
            let Some(k) = *id else { continue };
            if !self.caseload.contains(&k) || rng.random::<f64>() >= frac {
                continue;
            }
            let same_day = rng.random::<bool>();
            let new = if same_day {
                // a fresh valid number: the holder's region and birth date, another sequence
                let p = IdNumber::from_key(k);
                (0..64)
                    .map(|_| make_id(p.region_prefix(), p.birth_date(), rng.random_range(1..1000)))
                    .map(IdNumber::key)
                    .find(|x| !self.everyone.contains(x))
            } else {
                (0..64)
                    .map(|_| self.people[rng.random_range(0..self.people.len())].key)
                    .find(|x| !self.caseload.contains(x))
            };
            if let Some(n) = new {
                *id = Some(n);
                truth.push((i, row as u64, k, u8::from(!same_day)));
            }
        }
    }
}

/// The table `truth_dirty`: per damaged row its source, 0-based data row, true ID and kind.
fn truth_table(truth: Vec<(usize, u64, u64, u8)>) -> Table {
    Table {
        name: "truth_dirty",
        columns: vec![
            (
                "source",
                Column::Text(
                    truth
                        .iter()
                        .map(|t| Some(SOURCES[t.0].to_string()))
                        .collect(),
                ),
            ),
            (
                "row",
                Column::Int(truth.iter().map(|t| Some(t.1 as i64)).collect()),
            ),
            (
                "true_id_number",
                Column::Id(truth.iter().map(|t| Some(t.2)).collect()),
            ),
            (
                "kind",
                Column::Text(
                    truth
                        .iter()
                        .map(|t| Some(WRONG_VALID_KINDS[t.3 as usize].to_string()))
                        .collect(),
                ),
            ),
        ],
    }
}

/// Write `table` as CSV: UTF-8, a header row, `,` separators, RFC 4180 quoting; money and
/// decimals with two decimals (`1234.50`), dates `YYYY-MM-DD`, months `YYYY-MM`, IDs as 18
/// characters, null as an empty field.
///
/// # Errors
/// The file cannot be created or written.
pub fn write_csv(table: &Table, path: &Path) -> anyhow::Result<()> {
    let file = std::fs::File::create(path)
        .with_context(|| format!("Failed to create {}", path.display()))?;
    let mut out =
        csv::WriterBuilder::new().from_writer(std::io::BufWriter::with_capacity(1 << 20, file));
    out.write_record(table.columns.iter().map(|(n, _)| *n))
        .with_context(|| format!("Failed to write {}", path.display()))?;
    let mut buf = Vec::with_capacity(64);
    for i in 0..table.rows() {
        for (_, c) in &table.columns {
            c.render(i, &mut buf);
            out.write_field(&buf)
                .with_context(|| format!("Failed to write {}", path.display()))?;
        }
        out.write_record(None::<&[u8]>)
            .with_context(|| format!("Failed to write {}", path.display()))?;
    }
    out.flush()
        .with_context(|| format!("Failed to write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;

    fn small(seed: u64) -> GenConfig {
        GenConfig {
            households: 300,
            seed,
            population_factor: 5.0,
            ..GenConfig::default()
        }
    }

    fn tables(cfg: &GenConfig) -> (Vec<Table>, GenStats) {
        let mut out = Vec::new();
        let stats = generate(cfg, &mut |t| {
            out.push(t);
            Ok(())
        })
        .expect("generate");
        (out, stats)
    }

    fn csv_bytes(t: &Table) -> Vec<u8> {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(format!("{}.csv", t.name));
        write_csv(t, &path).expect("write");
        std::fs::read(&path).expect("read")
    }

    fn ids(c: &Column) -> Vec<String> {
        let mut buf = Vec::new();
        (0..c.len())
            .map(|i| {
                c.render(i, &mut buf);
                String::from_utf8(buf.clone()).expect("UTF-8")
            })
            .collect()
    }

    fn text(c: &Column, i: usize) -> String {
        let mut buf = Vec::new();
        c.render(i, &mut buf);
        String::from_utf8(buf).expect("UTF-8")
    }

    #[test]
    fn the_same_seed_gives_the_same_bytes() {
        let (a, sa) = tables(&small(7));
        let (b, sb) = tables(&small(7));
        assert_eq!(sa, sb);
        assert_eq!(a.len(), 15);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(csv_bytes(x), csv_bytes(y), "table {}", x.name);
        }
    }

    #[test]
    fn a_different_seed_gives_different_data() {
        let (a, _) = tables(&small(7));
        let (b, _) = tables(&small(8));
        for (x, y) in a.iter().zip(&b) {
            assert_ne!(csv_bytes(x), csv_bytes(y), "table {}", x.name);
        }
    }

    #[test]
    fn the_tables_come_in_design_order_with_the_design_columns() {
        let (t, stats) = tables(&small(1));
        let expected: Vec<(&str, Vec<&str>)> = vec![
            (
                "households",
                vec![
                    "household_id",
                    "region_code",
                    "area",
                    "programme",
                    "category",
                    "declared_annual_income",
                    "declared_financial_assets",
                    "last_verified",
                ],
            ),
            (
                "members",
                vec![
                    "id_number",
                    "name",
                    "household_id",
                    "relation",
                    "disability_grade",
                    "consent_ref",
                ],
            ),
            (
                "supporters",
                vec![
                    "id_number",
                    "name",
                    "household_id",
                    "supports_id_number",
                    "relation",
                    "own_household_size",
                    "consent_ref",
                ],
            ),
            (
                "household_registration",
                vec![
                    "gender",
                    "birth_date",
                    "hukou_region_code",
                    "hukou_type",
                    "household_head_id",
                    "status",
                    "status_date",
                ],
            ),
            (
                "tax",
                vec!["tax_year", "income_type", "gross_income", "tax_paid"],
            ),
            (
                "social_insurance",
                vec![
                    "period",
                    "insurance_type",
                    "record_type",
                    "employer_credit_code",
                    "amount",
                ],
            ),
            (
                "real_estate",
                vec![
                    "certificate_no",
                    "region_code",
                    "usage",
                    "area_m2",
                    "share_pct",
                    "registered_date",
                ],
            ),
            (
                "market_entity",
                vec![
                    "credit_code",
                    "entity_name",
                    "entity_type",
                    "role",
                    "subscribed_capital",
                    "status",
                    "registered_date",
                ],
            ),
            (
                "provident_fund",
                vec!["period", "monthly_deposit", "balance"],
            ),
            (
                "vehicle_vessel",
                vec![
                    "plate_no",
                    "kind",
                    "usage",
                    "purchase_price",
                    "registered_date",
                    "status",
                ],
            ),
            (
                "bank",
                vec![
                    "institution_code",
                    "account_no_masked",
                    "product",
                    "balance",
                    "as_of_date",
                ],
            ),
            (
                "commercial_insurance",
                vec![
                    "insurer_code",
                    "policy_no",
                    "product_type",
                    "cash_value",
                    "annual_premium",
                    "as_of_date",
                ],
            ),
            (
                "securities",
                vec![
                    "institution_code",
                    "account_no_masked",
                    "market_value",
                    "cash_balance",
                    "as_of_date",
                ],
            ),
            (
                "internet_finance",
                vec!["platform", "product", "balance", "as_of_date"],
            ),
            (
                "medical_insurance",
                vec!["year", "total_cost", "out_of_pocket"],
            ),
        ];
        assert_eq!(t.len(), expected.len());
        for (i, (table, (name, cols))) in t.iter().zip(&expected).enumerate() {
            assert_eq!(table.name, *name);
            let mut want: Vec<&str> = cols.clone();
            if i >= 3 {
                want.splice(0..0, ["id_number", "name"]);
            }
            let got: Vec<&str> = table.columns.iter().map(|(n, _)| *n).collect();
            assert_eq!(got, want, "columns of {name}");
            assert!(
                table.columns.iter().all(|(_, c)| c.len() == table.rows()),
                "ragged {name}"
            );
            assert!(table.rows() > 0, "{name} is empty");
            assert_eq!(stats.rows[i], (table.name, table.rows()));
        }
        for (i, s) in SOURCES.iter().enumerate() {
            assert_eq!(t[3 + i].name, *s);
        }
    }

    #[test]
    fn every_id_is_valid_unique_and_matches_the_registered_gender_and_birth() {
        let cfg = small(3);
        let (t, stats) = tables(&cfg);
        let reg = &t[3];
        let id = ids(reg.column("id_number").expect("id"));
        let gender = reg.column("gender").expect("gender");
        let birth = reg.column("birth_date").expect("birth");
        let mut seen = HashSet::new();
        for (i, s) in id.iter().enumerate() {
            let (p, repairs) = IdNumber::parse(s, cfg.as_of).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert!(repairs.is_empty());
            assert!(
                seen.insert(p.key()),
                "duplicate ID in household_registration"
            );
            assert_eq!(p.is_male(), text(gender, i) == "male");
            assert_eq!(p.birth_date().to_string(), text(birth, i));
        }
        // everybody but the few members without a registration record has one row
        assert!(seen.len() <= stats.residents && seen.len() + 50 > stats.residents);
        for table in &t {
            for (name, c) in &table.columns {
                if matches!(c, Column::Id(_)) {
                    for s in ids(c) {
                        assert!(
                            IdNumber::parse(&s, cfg.as_of).is_ok(),
                            "{}.{name}: {s}",
                            table.name
                        );
                    }
                }
            }
        }
        let members: HashSet<String> = ids(t[1].column("id_number").expect("id"))
            .into_iter()
            .collect();
        assert_eq!(members.len(), t[1].rows(), "member IDs are unique");
        for s in ids(t[2].column("supports_id_number").expect("supports")) {
            assert!(members.contains(&s), "a supporter supports a member");
        }
    }

    #[test]
    fn caseload_persons_are_a_minority_of_source_rows() {
        let (t, stats) = tables(&GenConfig {
            households: 300,
            seed: 5,
            ..GenConfig::default()
        });
        let mut caseload: HashSet<String> = ids(t[1].column("id_number").expect("id"))
            .into_iter()
            .collect();
        caseload.extend(ids(t[2].column("id_number").expect("id")));
        assert!(stats.residents as f64 >= 7.5 * stats.members as f64);
        let (mut ours, mut all) = (0usize, 0usize);
        for table in &t[3..] {
            for s in ids(table.column("id_number").expect("id")) {
                all += 1;
                ours += caseload.contains(&s) as usize;
            }
        }
        assert!(
            ours * 4 < all,
            "{ours} of {all} source rows are caseload persons'"
        );
        assert!(ours > 0);
    }

    #[test]
    fn social_insurance_spans_thirteen_months_ending_in_the_month_of_d() {
        let cfg = small(2);
        let (t, _) = tables(&cfg);
        let Some(Column::Month(p)) = t[5].column("period") else {
            panic!("period")
        };
        let months: HashSet<(i32, u32)> = p.iter().flatten().copied().collect();
        assert_eq!(months.len(), 13);
        assert!(months.contains(&(2026, 11)) && months.contains(&(2025, 11)));
        let Some(Column::Int(y)) = t[4].column("tax_year") else {
            panic!("tax_year")
        };
        let years: HashSet<i64> = y.iter().flatten().copied().collect();
        assert_eq!(years, HashSet::from([2024, 2025]));
    }

    #[test]
    fn wrong_valid_ids_rekey_caseload_rows_with_valid_ids_of_others_and_record_the_truth() {
        let clean = small(5);
        let dirty = GenConfig {
            wrong_valid_ids: 0.05,
            ..small(5)
        };
        let (a, _) = tables(&clean);
        let (b, _) = tables(&dirty);
        assert!(
            a.iter().all(|t| t.name != "truth_dirty"),
            "no truth without damage"
        );
        let truth = b
            .iter()
            .find(|t| t.name == "truth_dirty")
            .expect("truth_dirty");
        let col = |t: &Table, c: &str, i: usize| {
            let mut buf = Vec::new();
            t.column(c).expect(c).render(i, &mut buf);
            String::from_utf8(buf).unwrap()
        };
        let caseload: HashSet<String> = ids(b[1].column("id_number").unwrap())
            .into_iter()
            .chain(ids(b[2].column("id_number").unwrap()))
            .collect();
        let residents: HashSet<String> =
            ids(b[3].column("id_number").unwrap()).into_iter().collect();
        let mut kinds = std::collections::BTreeMap::new();
        for i in 0..truth.rows() {
            let (source, kind) = (col(truth, "source", i), col(truth, "kind", i));
            let row: usize = col(truth, "row", i).parse().unwrap();
            let true_id = col(truth, "true_id_number", i);
            assert_ne!(source, "household_registration");
            let (ta, tb) = (
                a.iter().find(|t| t.name == source).unwrap(),
                b.iter().find(|t| t.name == source).unwrap(),
            );
            // the clean twin's row is the true person's; the dirty row has the same name and a
            // valid ID of nobody in the caseload
            assert_eq!(col(ta, "id_number", row), true_id);
            assert!(caseload.contains(&true_id));
            assert_eq!(col(ta, "name", row), col(tb, "name", row));
            let wrong = col(tb, "id_number", row);
            let (id, _) = IdNumber::parse(&wrong, dirty.as_of).expect("a valid ID");
            assert!(!caseload.contains(&wrong));
            let same_day = id.birth_date()
                == IdNumber::parse(&true_id, dirty.as_of)
                    .unwrap()
                    .0
                    .birth_date();
            // a fresh number of the holder's day and region, or another resident's
            if kind == "valid_same_day" {
                assert!(same_day && wrong[..6] == true_id[..6]);
                assert!(!residents.contains(&wrong));
            } else {
                assert!(residents.contains(&wrong));
            }
            *kinds.entry(kind).or_insert(0) += 1;
        }
        let mut want = WRONG_VALID_KINDS.map(String::from).to_vec();
        want.sort();
        assert_eq!(kinds.keys().cloned().collect::<Vec<_>>(), want);
        assert!(kinds.values().all(|&n| n >= 20), "{kinds:?}");
        // nothing else changed: the other rows and the caseload are the clean twin's
        for (x, y) in a.iter().zip(&b).take(4) {
            assert_eq!(csv_bytes(x), csv_bytes(y), "{} changed", x.name);
        }
    }

    #[test]
    fn the_knobs_damage_ids_and_consents_and_nothing_else() {
        let clean = small(4);
        let dirty = GenConfig {
            invalid_id_members: 0.1,
            missing_consent: 0.1,
            ..small(4)
        };
        let (a, _) = tables(&clean);
        let (b, _) = tables(&dirty);
        let bad = ids(b[1].column("id_number").expect("id"))
            .iter()
            .filter(|s| IdNumber::parse(s, dirty.as_of).is_err())
            .count();
        let missing = (0..b[1].rows())
            .filter(|&i| text(b[1].column("consent_ref").expect("c"), i).is_empty())
            .count();
        assert!((10..=60).contains(&bad), "{bad} invalid member IDs");
        assert!(
            (10..=60).contains(&missing),
            "{missing} members without consent"
        );
        for (x, y) in a.iter().zip(&b).skip(3) {
            assert_eq!(csv_bytes(x), csv_bytes(y), "source {} changed", x.name);
        }
    }

    #[test]
    fn money_and_decimals_are_written_with_two_decimals() {
        let t = Table {
            name: "x",
            columns: vec![
                (
                    "m",
                    Column::Money(vec![Some(123_450), Some(-5), None, Some(0)]),
                ),
                (
                    "e",
                    Column::Enum {
                        codes: vec![0, 1, u8::MAX, 0],
                        labels: &["a", "b,c"],
                    },
                ),
                (
                    "d",
                    Column::Date(vec![NaiveDate::from_ymd_opt(2026, 1, 2), None, None, None]),
                ),
                ("p", Column::Month(vec![Some((2025, 3)), None, None, None])),
                (
                    "i",
                    Column::Id(vec![
                        Some(
                            make_id(
                                620503,
                                NaiveDate::from_ymd_opt(1987, 3, 15).expect("date"),
                                123,
                            )
                            .key(),
                        ),
                        None,
                        None,
                        None,
                    ]),
                ),
            ],
        };
        let s = String::from_utf8(csv_bytes(&t)).expect("UTF-8");
        assert_eq!(
            s,
            "m,e,d,p,i\n1234.50,a,2026-01-02,2025-03,620503198703151234\n-0.05,\"b,c\",,,\n,,,,\n0.00,a,,,\n"
        );
    }

    #[test]
    fn an_empty_caseload_gives_empty_tables() {
        let (t, stats) = tables(&GenConfig {
            households: 0,
            ..small(1)
        });
        assert_eq!(t.len(), 15);
        assert!(t.iter().all(|t| t.rows() == 0));
        assert_eq!((stats.members, stats.residents), (0, 0));
    }

    #[test]
    fn a_bad_configuration_is_refused() {
        for cfg in [
            GenConfig {
                region: 62,
                ..small(1)
            },
            GenConfig {
                population_factor: f64::NAN,
                ..small(1)
            },
            GenConfig {
                missing_consent: 1.5,
                ..small(1)
            },
        ] {
            assert!(generate(&cfg, &mut |_| Ok(())).is_err());
        }
    }

    #[test]
    fn a_failing_sink_stops_the_run_with_its_error() {
        let mut seen = 0;
        let r = generate(&small(1), &mut |t| {
            seen += 1;
            if t.name == "tax" {
                anyhow::bail!("disk full")
            } else {
                Ok(())
            }
        });
        assert_eq!(r.expect_err("the sink failed").to_string(), "disk full");
        assert_eq!(seen, 5);
    }

    #[test]
    fn the_portable_exp_agrees_with_libm() {
        for i in -2000..=2000 {
            let x = f64::from(i) / 100.0;
            let (a, b) = (world::exp(x), x.exp());
            assert!(((a - b) / b).abs() < 1e-14, "exp({x}) = {a}, libm {b}");
        }
    }

    #[test]
    fn plate_numbers_are_unique_across_their_three_forms() {
        let mut seen = HashSet::new();
        let mut s = String::new();
        let serials: std::collections::BTreeSet<u64> = (0..1_200_000)
            .step_by(3)
            .chain(239_990..240_010)
            .chain(815_990..816_010)
            .collect();
        for serial in serials {
            s.clear();
            sources::plate_body(serial, &mut s);
            assert_eq!(s.chars().count(), 5);
            assert!(seen.insert(s.clone()), "{serial} repeats {s}");
        }
    }

    #[test]
    fn every_member_has_one_household_and_every_household_members() {
        let (t, stats) = tables(&small(9));
        let hid = t[0].column("household_id").expect("hid");
        let households: HashSet<String> = (0..t[0].rows()).map(|i| text(hid, i)).collect();
        let mut size: HashMap<String, usize> = HashMap::new();
        let mh = t[1].column("household_id").expect("hid");
        for i in 0..t[1].rows() {
            *size.entry(text(mh, i)).or_default() += 1;
        }
        assert_eq!(households.len(), stats.households);
        assert!(
            households
                .iter()
                .all(|h| size.get(h).is_some_and(|&n| (1..=6).contains(&n)))
        );
    }
}
