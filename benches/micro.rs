//! Micro-benchmarks per 1,000 households (issue 5): ID normalisation, exact linkage,
//! assessment and sealing. `cargo bench --bench micro` (criterion; `-- --quick` for a short
//! run). The inputs are synthetic and deterministic: 1,000 households of 3 members, ~25
//! source rows per person (the gen.py mix), one report of ~6 KiB per household sealed (the
//! size a batch report has with its records).

use std::collections::HashSet;
use std::hint::black_box;

use chrono::NaiveDate;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hedui::SourceKind;
use hedui::assess::{Household, HouseholdView, PersonView, Policy, assess};
use hedui::domain::id_number::check_character;
use hedui::domain::{Fen, IdNumber};
use hedui::evidence::{Frame, PersonEvidence};
use hedui::seal::{BATCH_LEAVES, RecipientPrivateKey, RunSealer, SigningKey};

const HOUSEHOLDS: usize = 1_000;
const MEMBERS: usize = 3;
const ROWS_PER_PERSON: usize = 25;

fn as_of() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 1).expect("a date")
}

/// A valid 18-character ID number for person `i` (region 620503, born 1950-2009).
fn id_of(i: usize) -> String {
    let year = 1950 + (i % 60);
    let month = 1 + (i / 60) % 12;
    let day = 1 + (i / 720) % 28;
    let seq = (i / 20_160) % 1000;
    let body = format!("620503{year:04}{month:02}{day:02}{seq:03}");
    let b: [u8; 17] = body.as_bytes().try_into().expect("17 digits");
    format!("{body}{}", check_character(&b) as char)
}

/// Source rows as departments write them: mostly clean, some lowercase x, some 15-digit.
fn raw_rows() -> Vec<String> {
    (0..HOUSEHOLDS * MEMBERS * ROWS_PER_PERSON)
        .map(|r| {
            // a fifth of the rows are caseload persons, the rest other residents
            let person = if r % 5 == 0 {
                r / 5 % (HOUSEHOLDS * MEMBERS)
            } else {
                100_000 + r
            };
            let id = id_of(person);
            match r % 50 {
                0 => id.to_lowercase(),
                1 => format!(" {id} "),
                _ => id,
            }
        })
        .collect()
}

fn bench_ids(c: &mut Criterion) {
    let rows = raw_rows();
    let mut g = c.benchmark_group("per_1000_households");
    g.throughput(Throughput::Elements(rows.len() as u64));
    g.bench_function("id_normalisation", |b| {
        b.iter(|| {
            let mut ok = 0u64;
            for r in &rows {
                if let Ok((id, _)) = IdNumber::parse(black_box(r), as_of()) {
                    ok = ok.wrapping_add(id.key());
                }
            }
            ok
        })
    });
    // exact linkage: the batch's keying function, parse + membership of the caseload set
    let persons: HashSet<u64> = (0..HOUSEHOLDS * MEMBERS)
        .map(|i| IdNumber::parse(&id_of(i), as_of()).expect("valid").0.key())
        .collect();
    g.bench_function("exact_linkage", |b| {
        b.iter(|| {
            let mut linked = 0u64;
            for r in &rows {
                if let Ok((id, _)) = IdNumber::parse(black_box(r), as_of())
                    && persons.contains(&id.key())
                {
                    linked += 1;
                }
            }
            linked
        })
    });
    g.finish();
}

fn households() -> (Vec<Household>, Vec<Vec<PersonEvidence>>, Policy) {
    let policy = Policy::bundled();
    let frame = Frame::new(as_of(), &policy);
    let v = |s: &str| Some(s.to_string());
    let mut hs = Vec::new();
    let mut ev = Vec::new();
    for h in 0..HOUSEHOLDS {
        hs.push(Household {
            id: format!("620503H{h:07}"),
            region_code: "620503".into(),
            area: if h % 3 == 0 { "rural" } else { "urban" }.into(),
            programme: "dibao".into(),
            category: "full".into(),
            declared_annual_income: Some(Fen(1_200_000)),
            declared_financial_assets: Some(Fen(500_000)),
            last_verified: None,
            faults: Vec::new(),
            at: None,
        });
        let mut persons = Vec::new();
        for m in 0..MEMBERS {
            let mut e = PersonEvidence::default();
            let amount = format!("{}.00", 3000 + (h * 7 + m * 13) % 9000);
            let _ = e.add(
                SourceKind::Tax,
                &[v("2025"), v("wages"), Some(amount.clone()), v("0.00")],
                &frame,
                &policy,
            );
            let _ = e.add(
                SourceKind::Bank,
                &[
                    v("LZBANK"),
                    v("6217****0001"),
                    v("current"),
                    Some(amount),
                    v("2026-10-01"),
                ],
                &frame,
                &policy,
            );
            persons.push(e);
        }
        ev.push(persons);
    }
    (hs, ev, policy)
}

fn bench_assess(c: &mut Criterion) {
    let (hs, ev, policy) = households();
    let ids: Vec<IdNumber> = (0..HOUSEHOLDS * MEMBERS)
        .map(|i| IdNumber::parse(&id_of(i), as_of()).expect("valid").0)
        .collect();
    let mut g = c.benchmark_group("per_1000_households");
    g.throughput(Throughput::Elements(HOUSEHOLDS as u64));
    g.bench_function("assessment", |b| {
        b.iter(|| {
            let mut ineligible = 0;
            for (h, hh) in hs.iter().enumerate() {
                let view = HouseholdView {
                    household: hh,
                    members: (0..MEMBERS)
                        .map(|m| PersonView {
                            id: Ok(ids[h * MEMBERS + m]),
                            relation: if m == 0 { "applicant" } else { "child" },
                            disability_grade: None,
                            consent: true,
                            own_household_size: None,
                            evidence: Some(&ev[h][m]),
                        })
                        .collect(),
                    supporters: Vec::new(),
                    unverified: Vec::new(),
                };
                let a = assess(black_box(&view), &policy, as_of());
                ineligible += usize::from(a.determination.as_str() == "ineligible");
            }
            ineligible
        })
    });
    let signing = SigningKey::generate().expect("a signing key");
    let recipient = RecipientPrivateKey::generate().expect("a key").public();
    // A report's JSON, ~6 KiB before sealing, about as compressible as a real one (2-3x with the
    // envelope's LZ4): fixed text (keys, clauses) between values that vary.
    let mut report = Vec::with_capacity(6 * 1024);
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    while report.len() < 6 * 1024 {
        report.extend_from_slice(br#"{"rule":"income","clause":"DESIGN 3 Person income","outcome":"eligible","evidence":{"#);
        for _ in 0..48 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            report.push(b'0' + (x % 10) as u8);
        }
        report.extend_from_slice(br#""}},"#);
    }
    g.bench_function("sealing", |b| {
        b.iter(|| {
            // one key agreement per run and recipient, then one derived key per report
            let sealer = RunSealer::new(&signing, std::slice::from_ref(&recipient), "bench-run")
                .expect("a sealer");
            let mut n = 0usize;
            for h in 0..HOUSEHOLDS {
                let s = sealer
                    .seal(&format!("bench-run/620503H{h:07}"), black_box(&report))
                    .expect("sealed");
                n += s.ciphertext.len();
            }
            n
        })
    });
    // what `hedui batch` does: the same reports, signed 32 at a time over a Merkle root
    g.bench_function("sealing_batch_signed", |b| {
        b.iter(|| {
            let sealer = RunSealer::new(&signing, std::slice::from_ref(&recipient), "bench-run")
                .expect("a sealer");
            let mut n = 0usize;
            let all: Vec<usize> = (0..HOUSEHOLDS).collect();
            for chunk in all.chunks(BATCH_LEAVES) {
                let unsigned = chunk
                    .iter()
                    .map(|h| {
                        sealer
                            .seal_unsigned(&format!("bench-run/620503H{h:07}"), black_box(&report))
                            .expect("sealed")
                    })
                    .collect();
                for s in sealer.sign_batch(unsigned) {
                    n += s.ciphertext.len() + s.batch.map_or(0, |p| p.path.len());
                }
            }
            n
        })
    });
    g.finish();
}

criterion_group!(benches, bench_ids, bench_assess);
criterion_main!(benches);
