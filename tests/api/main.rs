//! Black-box tests of `hedui serve` (issue #4): the real binary over TLS on loopback,
//! against `hedui sim` serving a generated county, with sealed reports opened by the
//! civil-affairs key. zero-to-production's `spawn_app` style: every test starts its own
//! processes in a temporary directory (helpers.rs).

mod audit_writes;
mod check;
mod helpers;
mod refusals;
mod regions;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use helpers::*;
use serde_json::{Value, json};

fn valid_id(raw: &str) -> bool {
    let d = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    hedui::domain::IdNumber::parse(raw, d)
        .map(|(id, rep)| rep.is_empty() && id.expose() == raw)
        .unwrap_or(false)
}

/// Caseload rows of one household: (household, members, supporters).
type Rows = (
    BTreeMap<String, String>,
    Vec<BTreeMap<String, String>>,
    Vec<BTreeMap<String, String>>,
);

/// Generated households whose every person has a clean ID and a consent reference.
fn clean_households(w: &World, n: usize) -> Vec<Rows> {
    let hh = w.caseload("households");
    let members = w.caseload("members");
    let supporters = w.caseload("supporters");
    let mut out = Vec::new();
    for h in hh {
        let id = &h["household_id"];
        let ms: Vec<_> = members
            .iter()
            .filter(|m| &m["household_id"] == id)
            .cloned()
            .collect();
        let ss: Vec<_> = supporters
            .iter()
            .filter(|m| &m["household_id"] == id)
            .cloned()
            .collect();
        let clean = !ms.is_empty()
            && ms.len() + ss.len() <= 8
            && ms
                .iter()
                .chain(&ss)
                .all(|p| valid_id(&p["id_number"]) && !p["consent_ref"].is_empty())
            && ["area", "programme"].iter().all(|c| !h[*c].is_empty())
            && ms.iter().all(|m| !m["relation"].is_empty());
        let mut seen = std::collections::HashSet::new();
        if clean && ms.iter().all(|m| seen.insert(m["id_number"].clone())) {
            out.push((h, ms, ss));
        }
        if out.len() == n {
            break;
        }
    }
    out
}

fn opt(v: &str) -> Value {
    if v.is_empty() { Value::Null } else { json!(v) }
}

/// The request for a household, with consent references from `consents` (ID → ref).
fn request(rows: &Rows, consents: &BTreeMap<String, String>) -> Value {
    let (h, ms, ss) = rows;
    json!({
        "household_id": h["household_id"],
        "region_code": h["region_code"],
        "area": h["area"],
        "programme": h["programme"],
        "category": opt(&h["category"]),
        "declared_annual_income": opt(&h["declared_annual_income"]),
        "declared_financial_assets": opt(&h["declared_financial_assets"]),
        "last_verified": opt(&h["last_verified"]),
        "purpose": "periodic review",
        "members": ms.iter().map(|m| json!({
            "id_number": m["id_number"], "name": m["name"], "relation": m["relation"],
            "disability_grade": m["disability_grade"].parse::<u8>().ok(),
            "consent_ref": consents.get(&m["id_number"]).cloned().unwrap_or_default(),
        })).collect::<Vec<_>>(),
        "supporters": ss.iter().map(|s| json!({
            "id_number": s["id_number"], "name": s["name"], "supports_id_number": opt(&s["supports_id_number"]),
            "relation": s["relation"], "own_household_size": s["own_household_size"].parse::<i64>().ok(),
            "consent_ref": consents.get(&s["id_number"]).cloned().unwrap_or_default(),
        })).collect::<Vec<_>>(),
    })
}

fn write_caseload(dir: &std::path::Path, households: &[Rows]) {
    std::fs::create_dir_all(dir).unwrap();
    let write = |name: &str, rows: Vec<&BTreeMap<String, String>>, cols: &[&str]| {
        let mut w = csv::Writer::from_path(dir.join(name)).unwrap();
        w.write_record(cols).unwrap();
        for r in rows {
            w.write_record(
                cols.iter()
                    .map(|c| r.get(*c).map(String::as_str).unwrap_or("")),
            )
            .unwrap();
        }
        w.flush().unwrap();
    };
    write(
        "households.csv",
        households.iter().map(|r| &r.0).collect(),
        &[
            "household_id",
            "region_code",
            "area",
            "programme",
            "category",
            "declared_annual_income",
            "declared_financial_assets",
            "last_verified",
        ],
    );
    write(
        "members.csv",
        households.iter().flat_map(|r| &r.1).collect(),
        &[
            "household_id",
            "id_number",
            "name",
            "relation",
            "disability_grade",
            "consent_ref",
        ],
    );
    write(
        "supporters.csv",
        households.iter().flat_map(|r| &r.2).collect(),
        &[
            "household_id",
            "id_number",
            "name",
            "supports_id_number",
            "relation",
            "own_household_size",
            "consent_ref",
        ],
    );
}

/// What must agree between the batch and the service for one household.
fn essence(r: &Value) -> Value {
    let mut findings: Vec<(String, String)> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    findings.sort();
    json!({
        "determination": r["determination"],
        "per_capita_monthly_income": r["per_capita_monthly_income"],
        "per_capita_financial_assets": r["per_capita_financial_assets"],
        "household_income_annual": r["household_income_annual"],
        "financial_assets_total": r["financial_assets_total"],
        "findings": findings,
        "sources": r["sources"].as_array().unwrap().iter()
            .map(|s| json!([s["source"], s["status"], s["records"].as_array().map(|a| a.len())]))
            .collect::<Vec<_>>(),
        "persons": r["persons"].as_array().unwrap().iter()
            .map(|p| json!([p["role"], p["id_number_masked"], p["linked"]])).collect::<Vec<_>>(),
    })
}

async fn verify(api: &Api, token: &str, body: &Value) -> (u16, Value) {
    api.post("/v1/verifications?wait=15", token, body).await
}

const FAST: &str = "[defaults]\nlatency = { fixed_ms = 2 }\n";

/// Sim faults with tax answering after 1.5 s (the others at once), and the serve settings that
/// make each attempt give up after 0.4 s and try 4 times: a job that asks tax for ~2 s.
const SLOW_TAX: &str =
    "[defaults]\nlatency = { fixed_ms = 2 }\n[sources.tax]\nlatency = { fixed_ms = 1500 }\n";
const RETRYING: &str = "cache_ttl_s = 0\ntimeout_ms = 400\nretries = 3\nbackoff_base_ms = 100";

/// A consent registered by `token` for each of `persons` (caseload rows): ID number →
/// consent reference.
async fn register_consents<'a>(
    api: &Api,
    token: &str,
    persons: impl IntoIterator<Item = &'a BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    let mut consents = BTreeMap::new();
    for p in persons {
        consents.insert(
            p["id_number"].clone(),
            api.consent(token, &p["id_number"]).await,
        );
    }
    consents
}

/// A valid ID number masked as the audit log shows it.
fn masked(id: &str) -> String {
    hedui::domain::IdNumber::parse(id, chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap())
        .unwrap()
        .0
        .masked()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_demand_reports_agree_with_the_batch_for_the_same_households() {
    let w = World::new(60);
    let (_sim, sim_addr) = w.sim(FAST);
    let cfg = w.serve_config(&sim_addr, "");
    let (_serve, addr) = w.serve(&cfg);
    let api = Api::new(&w, &addr);
    let (_, intake) = w.token("intake", COUNTY);

    // Hand-built households: generated ones as they are, two households recombined from
    // persons of different generated households, and a stranger no source knows.
    let mut hh = clean_households(&w, 8);
    assert!(hh.len() >= 6, "the generated county has clean households");
    let (a, b) = (hh[0].clone(), hh[1].clone());
    let mut mixed = a.0.clone();
    mixed.insert("household_id".into(), "HAND0001".into());
    let mut m1 = a.1[0].clone();
    m1.insert("household_id".into(), "HAND0001".into());
    m1.insert("relation".into(), "applicant".into());
    let mut m2 = b.1[0].clone();
    m2.insert("household_id".into(), "HAND0001".into());
    m2.insert("relation".into(), "spouse".into());
    let sups: Vec<_> =
        b.2.iter()
            .map(|s| {
                let mut s = s.clone();
                s.insert("household_id".into(), "HAND0001".into());
                s
            })
            .collect();
    // In a caseload one person is a member of one household (else both are referred as a
    // caseload fault, which the service cannot know): the two sources of HAND0001 leave.
    hh.drain(0..2);
    hh.push((mixed, vec![m1, m2], sups));
    let stranger_id = hedui::domain::id_number::make_id(
        620503,
        chrono::NaiveDate::from_ymd_opt(1961, 2, 3).unwrap(),
        917,
    )
    .expose();
    let mut sh = a.0.clone();
    sh.insert("household_id".into(), "HAND0002".into());
    sh.insert("area".into(), "urban".into());
    sh.insert("programme".into(), "applicant".into());
    sh.insert("declared_annual_income".into(), String::new());
    sh.insert("declared_financial_assets".into(), String::new());
    let stranger: BTreeMap<String, String> = [
        ("household_id", "HAND0002"),
        ("id_number", stranger_id.as_str()),
        ("name", "王测试"),
        ("relation", "applicant"),
        ("disability_grade", ""),
        ("consent_ref", "C-HAND-0001"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    hh.push((sh, vec![stranger], vec![]));

    // The batch on exactly these households.
    let hand = w.path("hand");
    write_caseload(&hand, &hh);
    let batch = w.batch_reports(&hand, "batch-out");
    assert_eq!(batch.len(), hh.len());

    let mut determinations = BTreeMap::new();
    for rows in &hh {
        let mut consents = BTreeMap::new();
        for p in rows.1.iter().chain(&rows.2) {
            let id = p["id_number"].clone();
            if let std::collections::btree_map::Entry::Vacant(e) = consents.entry(id) {
                let r = api.consent(&intake, e.key()).await;
                e.insert(r);
            }
        }
        let (st, v) = verify(&api, &intake, &request(rows, &consents)).await;
        assert_eq!(st, 200, "{v}");
        let report = w.open(&v["sealed_report"]);
        let hid = rows.0["household_id"].clone();
        assert_eq!(report["household_id"], json!(hid));
        assert_eq!(
            essence(&report),
            essence(&batch[&hid]),
            "household {hid}: service vs batch"
        );
        for s in report["sources"].as_array().unwrap() {
            assert_ne!(s["status"], "unverified", "{hid}: {s}");
            assert_eq!(s["age_s"], json!(0), "a fresh answer is 0 s old: {s}");
        }
        *determinations
            .entry(report["determination"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
        if hid == "HAND0002" {
            // Nobody knows the stranger: no registration record while the source answered.
            assert_eq!(report["determination"], "referred");
            let rules: Vec<&str> = report["findings"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| f["outcome"] == "referred")
                .map(|f| f["rule"].as_str().unwrap())
                .collect();
            assert_eq!(rules, vec!["household_composition"], "{report}");
            assert_eq!(report["per_capita_monthly_income"], "0.00");
            assert!(
                report["sources"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|s| s["status"] == "no_records")
            );
        }
    }
    assert!(
        determinations.len() >= 2,
        "more than one determination among {determinations:?}"
    );

    // The same household again: answered from the cache, the report says how old.
    let rows = &hh[2];
    let mut consents = register_consents(&api, &intake, rows.1.iter().chain(&rows.2)).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // the answers' ages (s) of the household's verified report
    let ages = |v: &Value| -> Vec<u64> {
        w.open(&v["sealed_report"])["sources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["age_s"].as_u64().unwrap())
            .collect()
    };
    let (st, v) = verify(&api, &intake, &request(rows, &consents)).await;
    assert_eq!(st, 200);
    assert!(ages(&v).iter().all(|a| *a >= 1), "{:?}", ages(&v));

    // A consent revoked: no answer cached before it is used again (session 16's second
    // attack: a person verified under a new consent got answers fetched under the old one).
    let person = rows.1[0]["id_number"].clone();
    let old = consents[&person].clone();
    assert_eq!(api.revoke_consent(&intake, &old).await, 200);
    consents.insert(person.clone(), api.consent(&intake, &person).await);
    let (st, v) = verify(&api, &intake, &request(rows, &consents)).await;
    assert_eq!(st, 200);
    assert!(ages(&v).iter().all(|a| *a == 0), "{:?}", ages(&v));

    // A method of the client's own making: answered 405, counted as `other` (session 22's
    // attack had an ID number sent as the method shown as a label of the metrics).
    let odd = &rows.1[0]["id_number"];
    let r = api
        .http
        .request(
            reqwest::Method::from_bytes(odd.as_bytes()).unwrap(),
            format!("{}/v1/verifications", api.base),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
    // Metrics: per-source outcomes, no ID number.
    let (st, text) = api.get("/v1/metrics", "").await;
    assert!(
        text.contains(
            "hedui_http_requests_total{method=\"other\",route=\"/v1/verifications\",status=\"405\"} 1"
        ),
        "{text}"
    );
    assert_eq!(st, 200);
    assert!(
        text.contains("hedui_source_requests_total{source=\"tax\",outcome=\"answered\"}"),
        "{text}"
    );
    assert!(
        text.contains("hedui_http_request_duration_seconds_bucket{route=\"/v1/verifications\"")
    );
    // hedui's own time per verification answered at once, and the same verifications'
    // time by phase: one observation of each phase per verification
    let count = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    };
    let answered = count("hedui_verification_overhead_seconds_count ");
    assert!(answered >= 4, "{answered} verifications answered at once");
    for phase in ["intake", "start", "fan_out", "build", "commit", "deliver"] {
        assert_eq!(
            count(&format!(
                "hedui_verification_phase_seconds_count{{phase=\"{phase}\"}} "
            )),
            answered,
            "{phase}"
        );
    }
    for rows in &hh {
        for p in rows.1.iter().chain(&rows.2) {
            assert!(!text.contains(&p["id_number"]));
        }
    }
    // The OpenAPI document served is the one kept in schemas/api/.
    let (st, doc) = api.get("/v1/openapi.json", "").await;
    assert_eq!(st, 200);
    let kept = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schemas/api/openapi.json"
    ))
    .unwrap();
    assert_eq!(doc, kept);
    let doc: Value = serde_json::from_str(&doc).unwrap();
    for p in [
        "/v1/verifications",
        "/v1/verifications/{id}",
        "/v1/consents",
        "/v1/consents/{reference}",
        "/v1/health",
        "/v1/metrics",
        "/v1/audit",
        "/v1/tokens",
        "/v1/openapi.json",
    ] {
        assert!(doc["paths"].get(p).is_some(), "{p} documented");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_takes_about_the_slowest_source_not_the_sum() {
    let w = World::new(20);
    // Eleven sources at 100 ms, tax at 300 ms: sequentially 1,400 ms, concurrently ~300.
    let (_sim, sim_addr) = w.sim(
        "[defaults]\nlatency = { fixed_ms = 100 }\n[sources.tax]\nlatency = { fixed_ms = 300 }\n",
    );
    let cfg = w.serve_config(&sim_addr, "cache_ttl_s = 0\nretries = 0");
    let (_serve, addr) = w.serve(&cfg);
    let api = Api::new(&w, &addr);
    let (_, intake) = w.token("intake", COUNTY);
    let hh = clean_households(&w, 3);
    let mut times = Vec::new();
    for rows in &hh {
        let consents = register_consents(&api, &intake, rows.1.iter().chain(&rows.2)).await;
        let body = request(rows, &consents);
        let t = Instant::now();
        let (st, v) = verify(&api, &intake, &body).await;
        let ms = t.elapsed().as_millis();
        assert_eq!(st, 200, "{v}");
        times.push(ms);
    }
    // The first call also opens the connections; the later ones show the fan-out.
    let best = *times[1..].iter().min().unwrap();
    assert!(best >= 300, "at least the slowest source: {times:?}");
    assert!(
        best < 300 + 150,
        "about the slowest source (300 ms), far below the sum (1,400 ms): {times:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_source_makes_the_report_referred_with_source_unverified() {
    let w = World::new(40);
    // A household the batch finds eligible with every source answered: with two sources
    // failing it must be referred, never eligible for lack of data.
    let eligible: Vec<String> = w
        .batch_reports(&w.path("data"), "batch-out")
        .into_iter()
        .filter(|(_, r)| r["determination"] == "eligible")
        .map(|(h, _)| h)
        .collect();
    let rows = &clean_households(&w, 40)
        .into_iter()
        .find(|r| eligible.contains(&r.0["household_id"]))
        .expect("an eligible household with clean persons");
    let (_sim, sim_addr) = w.sim(&format!(
        "{FAST}[sources.bank]\nunauthorized = true\n[sources.securities]\nmalformed_rate = 1.0\n"
    ));
    let cfg = w.serve_config(&sim_addr, "retries = 0");
    let (_serve, addr) = w.serve(&cfg);
    let api = Api::new(&w, &addr);
    let (_, intake) = w.token("intake", COUNTY);
    let consents = register_consents(&api, &intake, rows.1.iter().chain(&rows.2)).await;
    let (st, v) = verify(&api, &intake, &request(rows, &consents)).await;
    assert_eq!(st, 200, "{v}");
    let r = w.open(&v["sealed_report"]);
    assert_eq!(r["determination"], "referred");
    let status: BTreeMap<&str, (&str, &str)> = r["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["source"].as_str().unwrap(),
                (
                    s["status"].as_str().unwrap(),
                    s["reason"].as_str().unwrap_or(""),
                ),
            )
        })
        .collect();
    assert_eq!(status["bank"].0, "unverified");
    assert!(
        status["bank"].1.starts_with("source_unauthorized"),
        "{:?}",
        status["bank"]
    );
    assert_eq!(status["securities"].0, "unverified");
    assert!(
        status["securities"].1.starts_with("source_malformed"),
        "{:?}",
        status["securities"]
    );
    assert_eq!(status.values().filter(|s| s.0 == "unverified").count(), 2);
    let mut named: Vec<&str> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "source_unverified")
        .inspect(|f| assert_eq!(f["outcome"], "referred"))
        .map(|f| f["evidence"]["source"].as_str().unwrap())
        .collect();
    named.sort();
    assert_eq!(
        named,
        vec!["bank", "securities"],
        "one source_unverified finding per failed source"
    );
    // The audit log says, for every person, which sources failed and how.
    let job = v["id"].as_str().unwrap();
    let conn = rusqlite::Connection::open(w.path("hedui.db")).unwrap();
    let rows_: Vec<(String, String)> = conn
        .prepare("SELECT source, outcome FROM audit WHERE action = 'source_query' AND job_id = ?1")
        .unwrap()
        .query_map([job], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        rows_.len(),
        rows.1.len() + rows.2.len(),
        "one row per person"
    );
    for (asked, said) in &rows_ {
        assert_eq!(asked.split(',').count(), 12, "{asked}");
        let said: BTreeMap<&str, &str> = said
            .split(';')
            .map(|o| o.split_once('=').unwrap())
            .collect();
        assert_eq!(said.len(), 12, "{said:?}");
        assert!(
            said["bank"].starts_with("failed:source_unauthorized"),
            "{said:?}"
        );
        assert!(
            said["securities"].starts_with("failed:source_malformed"),
            "{said:?}"
        );
        assert_eq!(
            said.values().filter(|o| o.starts_with("failed:")).count(),
            2,
            "{said:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_tokens_regions_bad_input_audit_and_restart() {
    let w = World::new(20);
    // Slow sources, so that a job is still running when the server is killed.
    let (_sim, sim_addr) = w.sim("[defaults]\nlatency = { fixed_ms = 1500 }\n");
    let cfg = w.serve_config(&sim_addr, "cache_ttl_s = 0\ntimeout_ms = 5000");
    let (serve, addr) = w.serve(&cfg);
    let api = Api::new(&w, &addr);
    let (a_id, intake_a) = w.token("intake", COUNTY);
    let (_, intake_b) = w.token("intake", "620502");
    let (_, auditor) = w.token("auditor", "*");
    let rows = clean_households(&w, 2);
    let two = rows
        .iter()
        .find(|r| r.1.len() + r.2.len() >= 2)
        .expect("a household of two persons");
    let persons: Vec<String> = two
        .1
        .iter()
        .chain(&two.2)
        .map(|p| p["id_number"].clone())
        .collect();

    // --- missing consent: 403 naming the position, never the ID; nothing queried
    let mut consents = BTreeMap::new();
    consents.insert(
        persons[0].clone(),
        api.consent(&intake_a, &persons[0]).await,
    );
    let body = request(two, &consents);
    let (st, text) = api
        .post_raw(
            "/v1/verifications?wait=1",
            &intake_a,
            serde_json::to_vec(&body).unwrap(),
        )
        .await;
    assert_eq!(st, 403, "{text}");
    let e: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(e["code"], "consent_missing");
    let second = if two.1.len() >= 2 {
        "members[1].consent_ref"
    } else {
        "supporters[0].consent_ref"
    };
    assert_eq!(e["field"], second);
    assert!(persons.iter().all(|p| !text.contains(p.as_str())));
    // a consent of someone else, and a revoked consent
    consents.insert(persons[1].clone(), consents[&persons[0]].clone());
    let (st, e) = api
        .post("/v1/verifications", &intake_a, &request(two, &consents))
        .await;
    assert_eq!(
        (st, e["code"].as_str()),
        (403, Some("consent_person_mismatch"))
    );
    let r1 = api.consent(&intake_a, &persons[1]).await;
    assert_eq!(api.revoke_consent(&intake_a, &r1).await, 200);
    consents.insert(persons[1].clone(), r1);
    let (st, e) = api
        .post("/v1/verifications", &intake_a, &request(two, &consents))
        .await;
    assert_eq!(
        (st, e["code"].as_str(), e["field"].as_str()),
        (403, Some("consent_revoked"), Some(second))
    );

    // --- bad input: 4xx with code and field, no PII echoed
    let mut good = BTreeMap::new();
    for p in &persons {
        good.insert(p.clone(), api.consent(&intake_a, p).await);
    }
    let body = request(two, &good);
    let cases: Vec<(Vec<u8>, u16, &str, Option<&str>)> = vec![
        (b"{\"household_id\": ".to_vec(), 400, "json_malformed", None),
        (
            {
                let mut b = body.clone();
                b["members"][0]["nickname"] = json!("x");
                serde_json::to_vec(&b).unwrap()
            },
            422,
            "field_unknown",
            Some("members[0].nickname"),
        ),
        (
            {
                let mut b = body.clone();
                let mut id = persons[0].clone();
                id.replace_range(17..18, if id.ends_with('1') { "2" } else { "1" });
                b["members"][0]["id_number"] = json!(id);
                serde_json::to_vec(&b).unwrap()
            },
            422,
            "id_number_invalid",
            Some("members[0].id_number"),
        ),
        (
            {
                let mut b = body.clone();
                b["members"] = json!(vec![b["members"][0].clone(); 9]);
                serde_json::to_vec(&b).unwrap()
            },
            413,
            "too_many_persons",
            Some("members"),
        ),
        (
            {
                let mut b = body.clone();
                b["purpose"] = json!("x".repeat(20_000));
                serde_json::to_vec(&b).unwrap()
            },
            413,
            "body_too_large",
            None,
        ),
        (
            {
                let mut b = body.clone();
                b["area"] = json!("suburban");
                serde_json::to_vec(&b).unwrap()
            },
            422,
            "value_unknown",
            Some("area"),
        ),
        // the batch refers a household with such a relation (relation_unknown): same vocabulary
        (
            {
                let mut b = body.clone();
                b["members"][0]["relation"] = json!("wife");
                serde_json::to_vec(&b).unwrap()
            },
            422,
            "value_unknown",
            Some("members[0].relation"),
        ),
        // an ID number used as a key is not named back (nor written to the audit log)
        (
            {
                let mut b = body.clone();
                b["members"][0][persons[0].as_str()] = json!(1);
                serde_json::to_vec(&b).unwrap()
            },
            422,
            "field_unknown",
            Some("members[0].?"),
        ),
        // a member listed again as a supporter would count their income twice
        (
            {
                let mut b = body.clone();
                let mut s = b["members"][0].clone();
                s.as_object_mut().unwrap().remove("disability_grade");
                s["relation"] = json!("child");
                b["supporters"].as_array_mut().unwrap().insert(0, s);
                serde_json::to_vec(&b).unwrap()
            },
            422,
            "person_duplicate",
            Some("supporters[0].id_number"),
        ),
        // s7 attack: a key given twice kept its last value silently (an ID, an amount);
        // it is refused at its path, and a key that is an ID number is not named back
        (
            {
                let text = serde_json::to_string(&body).unwrap();
                let first = format!("\"id_number\":\"{}\"", persons[0]);
                let twice = format!("{first},\"id_number\":\"{}\"", persons[1]);
                text.replacen(&first, &twice, 1).into_bytes()
            },
            422,
            "field_duplicate",
            Some("members[0].id_number"),
        ),
        (
            {
                let text = serde_json::to_string(&body).unwrap();
                let income = "\"purpose\":\"periodic review\",\"declared_annual_income\":\"0.00\"";
                text.replacen("\"purpose\":\"periodic review\"", income, 1)
                    .into_bytes()
            },
            422,
            "field_duplicate",
            Some("declared_annual_income"),
        ),
        (
            {
                let mut b = body.clone();
                b["members"][0][persons[0].as_str()] = json!(1);
                let text = serde_json::to_string(&b).unwrap();
                let key = format!("\"{}\":1", persons[0]);
                text.replacen(&key, &format!("{key},{key}"), 1).into_bytes()
            },
            422,
            "field_duplicate",
            Some("members[0].?"),
        ),
        // a UTF-8 byte order mark is ignored (RFC 8259 §8.1): the body is read on to its
        // first fault; a UTF-16 body is named as such
        (
            {
                let mut b = body.clone();
                b["area"] = json!("suburban");
                let mut raw = b"\xEF\xBB\xBF".to_vec();
                raw.extend(serde_json::to_vec(&b).unwrap());
                raw
            },
            422,
            "value_unknown",
            Some("area"),
        ),
        (
            {
                let text = serde_json::to_string(&body).unwrap();
                let mut raw = vec![0xFF, 0xFE];
                raw.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
                raw
            },
            400,
            "json_malformed",
            None,
        ),
        // a supporter must support a member of the household (not themself)
        (
            {
                let mut b = body.clone();
                b["supporters"] = json!([{
                    "id_number": "620503198703151234", "supports_id_number": "620503198703151234",
                    "relation": "child", "own_household_size": 2, "consent_ref": "cr_x",
                }]);
                serde_json::to_vec(&b).unwrap()
            },
            422,
            "supported_not_member",
            Some("supporters[0].supports_id_number"),
        ),
        (
            {
                let mut b = body.clone();
                b["purpose"] = json!(format!("review of {}", persons[0]));
                serde_json::to_vec(&b).unwrap()
            },
            422,
            "purpose_invalid",
            Some("purpose"),
        ),
    ];
    for (raw, status, code, field) in cases {
        let (st, text) = api.post_raw("/v1/verifications", &intake_a, raw).await;
        assert_eq!(st, status, "{code}: {text}");
        let e: Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{code}: JSON error body: {text}"));
        assert_eq!(e["code"], code, "{text}");
        assert_eq!(e["field"].as_str(), field, "{text}");
        assert!(
            persons.iter().all(|p| !text.contains(&p[..14])),
            "no ID echoed: {text}"
        );
    }
    // a body in GB18030 (a client that did not set UTF-8) is named as such
    let utf8 = serde_json::to_string(&body).unwrap();
    let (gbk, _, _) = encoding_rs::GB18030.encode(&utf8);
    assert!(
        std::str::from_utf8(&gbk).is_err(),
        "the body has Chinese text"
    );
    let (st, text) = api
        .post_raw("/v1/verifications", &intake_a, gbk.into_owned())
        .await;
    assert_eq!(st, 400, "{text}");
    let e: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(e["code"], "json_malformed");
    let m = e["message"].as_str().unwrap_or_default();
    assert!(m.contains("not UTF-8") && m.contains("GB18030"), "{text}");
    assert!(
        persons.iter().all(|p| !text.contains(&p[..14])),
        "no ID echoed: {text}"
    );
    let (st, _) = api
        .post_raw(
            "/v1/verifications",
            "hd_wrong",
            serde_json::to_vec(&body).unwrap(),
        )
        .await;
    assert_eq!(st, 401);
    let (st, _) = api
        .post_raw(
            "/v1/verifications",
            &auditor,
            serde_json::to_vec(&body).unwrap(),
        )
        .await;
    assert_eq!(st, 403);

    // --- cross-county: B may neither submit for A's county nor read A's report
    let (st, e) = api.post("/v1/verifications", &intake_b, &body).await;
    assert_eq!((st, e["code"].as_str()), (403, Some("region_forbidden")));
    // nor use A's consents for a household it moves into its own county
    let mut moved = body.clone();
    moved["region_code"] = json!("620502");
    let (st, e) = api.post("/v1/verifications", &intake_b, &moved).await;
    assert_eq!(
        (st, e["code"].as_str()),
        (403, Some("consent_region")),
        "{e}"
    );
    let (st, v) = api.post("/v1/verifications", &intake_a, &body).await;
    assert_eq!(st, 202, "{v}");
    let job = v["id"].as_str().unwrap().to_string();
    let (st, text) = api
        .get(&format!("/v1/verifications/{job}"), &intake_b)
        .await;
    assert_eq!(st, 403, "{text}");
    assert!(text.contains("region_forbidden"));

    // a `?wait=` that runs out first answers 202 too: that job is stored as well
    let (st, v) = api
        .post("/v1/verifications?wait=0.2", &intake_a, &body)
        .await;
    // (`running`: it asks the departments; until session 24 it read `queued`)
    assert_eq!((st, v["status"].as_str()), (202, Some("running")), "{v}");
    let waited = v["id"].as_str().unwrap().to_string();

    // --- a second server on the same store is refused: it would resume the first's running
    // jobs and ask the departments again (session 24's second attack)
    let second = hedui(&["serve", "--config", s(&cfg)]);
    assert_eq!(second.status.code(), Some(2), "{second:?}");
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("another hedui serve uses the store") && err.contains("hedui.db"),
        "{err}"
    );
    // ... whatever name it is given: a symbolic or a hard link (session 24's third attack)
    for (name, link) in [
        ("via-symlink.toml", w.path("link.db")),
        ("via-hardlink.toml", w.path("hard.db")),
    ] {
        if name.contains("sym") {
            std::os::unix::fs::symlink(w.path("hedui.db"), &link).unwrap();
        } else {
            std::fs::hard_link(w.path("hedui.db"), &link).unwrap();
        }
        let link_name = link.file_name().unwrap().to_str().unwrap();
        let text = std::fs::read_to_string(&cfg).unwrap().replace(
            r#"store = "hedui.db""#,
            &format!(r#"store = "{link_name}""#),
        );
        assert!(text.contains(link_name), "the config names the store");
        let other = w.path(name);
        std::fs::write(&other, text).unwrap();
        let second = hedui(&["serve", "--config", s(&other)]);
        assert_eq!(second.status.code(), Some(2), "{name}: {second:?}");
        assert!(
            String::from_utf8_lossy(&second.stderr).contains("another hedui serve uses the store"),
            "{name}: {second:?}"
        );
    }

    // --- kill the server while the jobs run (sources take 1.5 s); restart; they finish
    for j in [&job, &waited] {
        let (st, text) = api.get(&format!("/v1/verifications/{j}"), &intake_a).await;
        assert_eq!(st, 202, "still running");
        assert!(text.contains(r#""status":"running""#), "{text}");
    }
    let pid = serve.0.id();
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
    drop(serve);
    let (_serve2, addr2) = w.serve(&cfg);
    let api2 = Api::new(&w, &addr2);
    let t = Instant::now();
    // a job's answer once it is done (202 until then), within 30 s of the restart
    let done = |job: String| {
        let (api2, intake_a) = (&api2, &intake_a);
        async move {
            loop {
                let (st, text) = api2
                    .get(&format!("/v1/verifications/{job}"), intake_a)
                    .await;
                if st == 200 {
                    break serde_json::from_str::<Value>(&text).unwrap();
                }
                assert_eq!(st, 202, "{text}");
                assert!(
                    t.elapsed() < Duration::from_secs(30),
                    "the resumed job {job} finishes"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let report = done(job.to_string()).await;
    let r = w.open(&report["sealed_report"]);
    assert_eq!(r["household_id"], two.0["household_id"]);
    assert_eq!(r["run_id"], json!(job));
    let waited_report = done(waited.to_string()).await;
    let r2 = w.open(&waited_report["sealed_report"]);
    assert_eq!(r2["run_id"], json!(waited));
    assert_eq!(r2["household_id"], two.0["household_id"]);
    assert_eq!(r2["determination"], r["determination"]);
    assert!(
        r["sources"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["status"] != "unverified"),
        "{}",
        r["sources"]
    );

    // requests without a usable token are refused and audited (session 16's attack: no
    // trace), at most one row a second, each counting those since the row before (its second
    // attack: a flood wrote a row each)
    let (st, _) = api2.get("/v1/audit", "").await;
    assert_eq!(st, 401);
    for _ in 0..30 {
        let (st, _) = api2.get("/v1/audit", "not-a-token").await;
        assert_eq!(st, 401);
    }
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (st, _) = api2.get("/v1/audit", "").await;
    assert_eq!(st, 401);
    // the last one is written at once or by the server's flush within a second or two
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;

    // --- audit: every person at every source, fetches and refusals; the chain verifies
    let (st, text) = api2
        .get("/v1/audit?verify=true&limit=10000", &auditor)
        .await;
    assert_eq!(st, 200);
    let a: Value = serde_json::from_str(&text).unwrap();
    let rows_ = a["rows"].as_array().unwrap();
    let queries: Vec<&Value> = rows_
        .iter()
        .filter(|r| r["action"] == "source_query" && r["job_id"] == json!(job))
        .collect();
    assert_eq!(queries.len(), persons.len(), "one row per person");
    for q in &queries {
        // every source asked, in order, and what each said of this person
        let asked: Vec<&str> = q["source"].as_str().unwrap().split(',').collect();
        assert_eq!(asked.len(), 12, "{q}");
        assert_eq!(asked[0], "household_registration", "{q}");
        let said: Vec<&str> = q["outcome"].as_str().unwrap().split(';').collect();
        assert_eq!(said.len(), 12, "{q}");
        for (a, o) in asked.iter().zip(&said) {
            let (src, what) = o.split_once('=').unwrap();
            assert_eq!(src, *a, "{q}");
            assert!(what == "no_records" || what.starts_with("records:"), "{q}");
        }
        // the registration knows every person of these hand-built households
        assert!(
            said[0].starts_with("household_registration=records:"),
            "{q}"
        );
        assert!(q["consent_ref"].as_str().unwrap().starts_with("cr_"), "{q}");
    }
    for j in [&job, &waited] {
        let accepted = rows_
            .iter()
            .filter(|r| r["action"] == "verification_accepted" && r["job_id"] == json!(j))
            .count();
        assert_eq!(accepted, 1, "accepted once");
    }
    assert!(rows_.iter().any(|r| {
        r["action"] == "refused"
            && r["outcome"]
                .as_str()
                .unwrap()
                .starts_with("consent_missing:")
    }));
    assert!(rows_.iter().any(|r| {
        r["action"] == "refused"
            && r["outcome"]
                .as_str()
                .unwrap()
                .starts_with("region_forbidden:")
    }));
    assert!(
        rows_
            .iter()
            .any(|r| r["action"] == "report_fetched" && r["actor"] == json!(a_id))
    );
    assert!(
        persons.iter().all(|p| !text.contains(p.as_str())),
        "the audit log holds masked persons only"
    );
    assert!(a["chain"]["first_bad"].is_null());
    let unauthenticated: Vec<&str> = rows_
        .iter()
        .filter(|r| r["action"] == "refused" && r["actor"] == "unauthenticated")
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    // (the last three: earlier steps of this test used a revoked token)
    assert_eq!(
        unauthenticated[unauthenticated.len().saturating_sub(3)..],
        [
            "token_missing:Authorization",
            "token_invalid:Authorization (30 refused since the last row)",
            "token_missing:Authorization",
        ]
    );
    assert_eq!(a["more"], false, "the whole log in one page");
    // paging while `more` ends, though every page writes a row of its own
    let mut after = 0i64;
    let mut pages = 0;
    let mut seen: Vec<i64> = Vec::new();
    loop {
        let (st, text) = api2
            .get(&format!("/v1/audit?after={after}&limit=50"), &auditor)
            .await;
        assert_eq!(st, 200);
        let page: Value = serde_json::from_str(&text).unwrap();
        seen.extend(
            page["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["seq"].as_i64().unwrap()),
        );
        after = page["next_after"].as_i64().unwrap();
        pages += 1;
        assert!(pages < 1000, "paging does not end");
        if page["more"] == false {
            break;
        }
    }
    assert!(
        seen.len() >= rows_.len(),
        "{} of {}",
        seen.len(),
        rows_.len()
    );
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
    let (st, _) = api2.get("/v1/audit", &intake_a).await;
    assert_eq!(st, 403, "intake tokens cannot read the audit log");
    drop(_serve2);

    let store = w.path("hedui.db");
    let out = hedui(&["audit", "verify", "--store", s(&store)]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let victim = rows_
        .iter()
        .find(|r| r["action"] == "source_query")
        .unwrap()["seq"]
        .as_i64()
        .unwrap();
    let conn = rusqlite::Connection::open(&store).unwrap();
    conn.execute(
        "UPDATE audit SET outcome = 'no_records' WHERE seq = ?1 AND outcome <> 'no_records'",
        [victim],
    )
    .unwrap();
    conn.execute(
        "UPDATE audit SET person = '6205**********0000' WHERE seq = ?1",
        [victim],
    )
    .unwrap();
    drop(conn);
    let out = hedui(&["audit", "verify", "--store", s(&store)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains(&format!("row {victim}")), "{text}");
}

/// Found by session 22's attack: a person's `source_query` row said " (cached)" when the
/// source's answer was a second old or more, which is its oldest part's age: a person asked
/// in this call read as cached beside a cached one, and a person answered from the cache
/// within the second read as asked. Now " (cached)" is said for each person whose answer
/// came from the cache, and only for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persons_audit_row_says_cached_exactly_when_their_answer_came_from_the_cache() {
    let w = World::new(20);
    let (_sim, sim_addr) = w.sim(FAST);
    let cfg = w.serve_config(&sim_addr, "");
    let (_serve, addr) = w.serve(&cfg);
    let api = Api::new(&w, &addr);
    let (_, intake) = w.token("intake", COUNTY);
    let hh = clean_households(&w, 2);
    let consents = register_consents(
        &api,
        &intake,
        hh.iter().flat_map(|r| r.1.iter().chain(&r.2)),
    )
    .await;
    // per masked person of the job: how many of the 12 sources say " (cached)"
    let cached = |job: &str| -> BTreeMap<String, usize> {
        let conn = rusqlite::Connection::open(w.path("hedui.db")).unwrap();
        let rows: Vec<(String, String)> = conn
            .prepare(
                "SELECT person, outcome FROM audit WHERE action = 'source_query' AND job_id = ?1",
            )
            .unwrap()
            .query_map([job], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        rows.into_iter()
            .map(|(p, o)| {
                assert_eq!(o.split(';').count(), 12, "{o}");
                (p, o.split(';').filter(|s| s.ends_with(" (cached)")).count())
            })
            .collect()
    };
    let persons = |rows: &Rows| -> Vec<String> {
        rows.1
            .iter()
            .chain(&rows.2)
            .map(|p| masked(&p["id_number"]))
            .collect()
    };
    // asked: no person cached
    let (st, v) = verify(&api, &intake, &request(&hh[0], &consents)).await;
    assert_eq!(st, 200, "{v}");
    let first = cached(v["id"].as_str().unwrap());
    assert_eq!(first.len(), persons(&hh[0]).len());
    assert!(first.values().all(|n| *n == 0), "{first:?}");
    // the same household again at once: every person from the cache, though under a second old
    let (st, v) = verify(&api, &intake, &request(&hh[0], &consents)).await;
    assert_eq!(st, 200, "{v}");
    let again = cached(v["id"].as_str().unwrap());
    assert_eq!(again.len(), first.len());
    assert!(again.values().all(|n| *n == 12), "{again:?}");
    // a second later, the other household with the first one's applicant as a supporter:
    // only that person is cached
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let known = hh[0].1[0]["id_number"].clone();
    let mut body = request(&hh[1], &consents);
    body["supporters"].as_array_mut().unwrap().push(json!({
        "id_number": known, "supports_id_number": hh[1].1[0]["id_number"],
        "relation": "child", "own_household_size": 2, "consent_ref": consents[&known],
    }));
    let (st, v) = verify(&api, &intake, &body).await;
    assert_eq!(st, 200, "{v}");
    let mixed = cached(v["id"].as_str().unwrap());
    assert_eq!(mixed.get(&masked(&known)), Some(&12), "{mixed:?}");
    for p in persons(&hh[1]) {
        assert_eq!(mixed.get(&p), Some(&0), "{p}: {mixed:?}");
    }
}

/// The audit actions of a job, in the order written.
fn job_actions(w: &World, job: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open(w.path("hedui.db")).unwrap();
    conn.prepare("SELECT action FROM audit WHERE job_id = ?1 ORDER BY rowid")
        .unwrap()
        .query_map([job], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Found by session 22's attack: a consent revoked while a job asked the departments was
/// answered `200 revoked`, and the job's retries went on asking about the person for seconds,
/// then made its report. Now the revocation stops the job's fan-out, retries included, and
/// the job is refused (no report), with and without `?wait=`. Its queries are audited before
/// they are sent (`source_query_sent`): before, they were written only with the report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consent_revoked_while_the_departments_are_asked_stops_the_job_and_its_retries() {
    let w = World::new(20);
    let (_sim, sim_addr) = w.sim(SLOW_TAX);
    let cfg = w.serve_config(&sim_addr, RETRYING);
    let (_serve, addr) = w.serve(&cfg);
    let api = Api::new(&w, &addr);
    let (_, intake) = w.token("intake", COUNTY);
    let hh = clean_households(&w, 2);
    let consents = register_consents(
        &api,
        &intake,
        hh.iter().flat_map(|r| r.1.iter().chain(&r.2)),
    )
    .await;

    // Without `?wait=`: accepted, then a member's consent revoked during the fan-out.
    let (st, v) = api
        .post("/v1/verifications", &intake, &request(&hh[0], &consents))
        .await;
    assert_eq!(st, 202, "{v}");
    let job = v["id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(250)).await;
    let person = hh[0].1[0]["id_number"].clone();
    assert_eq!(api.revoke_consent(&intake, &consents[&person]).await, 200);
    let t = Instant::now();
    let body = loop {
        let (st, body) = api.get(&format!("/v1/verifications/{job}"), &intake).await;
        if st == 403 {
            break body;
        }
        assert_eq!(st, 202, "{body}");
        assert!(t.elapsed() < Duration::from_secs(3), "not refused in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["status"], "refused");
    assert_eq!(body["code"], "consent_revoked");
    // no attempt after the refusal (the retries would have gone on for ~1.5 s more)
    let then = sim_requests(&w, &sim_addr, "tax").await;
    assert!(then >= 1);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(sim_requests(&w, &sim_addr, "tax").await, then);
    assert_eq!(
        job_actions(&w, &job),
        vec!["verification_accepted", "source_query_sent", "job_refused"]
    );
    let conn = rusqlite::Connection::open(w.path("hedui.db")).unwrap();
    let (persons, sources): (String, String) = conn
        .query_row(
            "SELECT person, source FROM audit WHERE job_id = ?1 AND action = 'source_query_sent'",
            [&job],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        persons.split(',').count(),
        hh[0].1.len() + hh[0].2.len(),
        "{persons}"
    );
    assert!(!persons.contains(&person), "masked: {persons}");
    assert_eq!(sources.split(',').count(), 12, "{sources}");

    // With `?wait=`: the waiting request itself is answered 403, at once.
    let body = request(&hh[1], &consents);
    let waiting = {
        let api = Api::new(&w, &addr);
        let intake = intake.clone();
        tokio::spawn(async move {
            let t = Instant::now();
            let (st, v) = verify(&api, &intake, &body).await;
            (st, v, t.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(250)).await;
    let person = hh[1].1[0]["id_number"].clone();
    assert_eq!(api.revoke_consent(&intake, &consents[&person]).await, 200);
    let (st, v, took) = waiting.await.unwrap();
    assert_eq!(st, 403, "{v}");
    assert_eq!(
        (&v["status"], &v["code"]),
        (&json!("refused"), &json!("consent_revoked"))
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
    let job = v["id"].as_str().unwrap();
    assert_eq!(
        job_actions(&w, job),
        vec!["verification_accepted", "source_query_sent", "job_refused"]
    );
}

/// A job posted to a server killed (SIGKILL) while the departments were being asked: tax
/// answers in 5 s, the server is killed once tax was asked.
struct KilledJob {
    _sim: Proc,
    sim_addr: String,
    cfg: std::path::PathBuf,
    job: String,
    intake_id: String,
}

async fn job_killed_during_fan_out(w: &World) -> KilledJob {
    let (sim, sim_addr) = w.sim(
        "[defaults]\nlatency = { fixed_ms = 2 }\n[sources.tax]\nlatency = { fixed_ms = 5000 }\n",
    );
    let cfg = w.serve_config(&sim_addr, "cache_ttl_s = 0\ntimeout_ms = 8000\nretries = 0");
    let (serve, addr) = w.serve(&cfg);
    let api = Api::new(w, &addr);
    let (intake_id, intake) = w.token("intake", COUNTY);
    let hh = clean_households(w, 1);
    let consents = register_consents(&api, &intake, hh[0].1.iter().chain(&hh[0].2)).await;
    let (st, v) = api
        .post("/v1/verifications", &intake, &request(&hh[0], &consents))
        .await;
    assert_eq!(st, 202, "{v}");
    let job = v["id"].as_str().unwrap().to_string();
    // the departments asked (tax still answering), then the server killed
    let t = Instant::now();
    while sim_requests(w, &sim_addr, "tax").await == 0 {
        assert!(t.elapsed() < Duration::from_secs(3), "tax never asked");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(serve);
    KilledJob {
        _sim: sim,
        sim_addr,
        cfg,
        job,
        intake_id,
    }
}

/// Found by session 22's attack: the queries of a job were audited only with its report, so a
/// server killed while the departments were being asked left them unaudited. The job's
/// `source_query_sent` row is committed before any department is asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_of_a_job_killed_during_its_fan_out_are_audited() {
    let w = World::new(20);
    let k = job_killed_during_fan_out(&w).await;
    let job = k.job;
    assert_eq!(
        job_actions(&w, &job),
        vec!["verification_accepted", "source_query_sent"]
    );
}

/// Found by session 22's second attack: a person answered from the cache beside a person
/// whose request failed had the failure in their `source_query` row as if asked. The call
/// failed (the source is unverified for the household), and the row says the person's answer
/// was the cache's: ` (cached)` after the failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_person_beside_a_failed_request_is_marked_cached_in_the_audit() {
    let w = World::new(20);
    let sim_config = |faults: &str| {
        let p = w.path(&format!("sim-{}.toml", faults.len()));
        std::fs::write(&p, faults).unwrap();
        p
    };
    let sim_on = |listen: &str, config: &std::path::Path| {
        spawn_listening(&[
            "sim",
            "--data",
            s(&w.path("data")),
            "--listen",
            listen,
            "--certs",
            s(&w.path("certs")),
            "--config",
            s(config),
            "--as-of",
            AS_OF,
        ])
    };
    let (sim, sim_addr) = sim_on("127.0.0.1:0", &sim_config(FAST));
    let cfg = w.serve_config(&sim_addr, "retries = 0");
    let (_serve, addr) = w.serve(&cfg);
    let api = Api::new(&w, &addr);
    let (_, intake) = w.token("intake", COUNTY);
    let hh = clean_households(&w, 2);
    let consents = register_consents(
        &api,
        &intake,
        hh.iter().flat_map(|r| r.1.iter().chain(&r.2)),
    )
    .await;
    // the first household answered (and cached) while tax works
    let (st, v) = verify(&api, &intake, &request(&hh[0], &consents)).await;
    assert_eq!(st, 200, "{v}");
    // then tax fails for everyone: the same sim's address, every tax answer a 503
    drop(sim);
    let (_sim, again) = sim_on(
        &sim_addr,
        &sim_config(&format!("{FAST}[sources.tax]\nerror_rate = 1.0\n")),
    );
    assert_eq!(again, sim_addr);
    let known = hh[0].1[0]["id_number"].clone();
    let mut body = request(&hh[1], &consents);
    body["supporters"].as_array_mut().unwrap().push(json!({
        "id_number": known, "supports_id_number": hh[1].1[0]["id_number"],
        "relation": "child", "own_household_size": 2, "consent_ref": consents[&known],
    }));
    let (st, v) = verify(&api, &intake, &body).await;
    assert_eq!(st, 200, "{v}");
    let conn = rusqlite::Connection::open(w.path("hedui.db")).unwrap();
    let rows: BTreeMap<String, String> = conn
        .prepare("SELECT person, outcome FROM audit WHERE action = 'source_query' AND job_id = ?1")
        .unwrap()
        .query_map([v["id"].as_str().unwrap()], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let tax = |person: &str| -> String {
        rows[person]
            .split(';')
            .find(|o| o.starts_with("tax="))
            .unwrap()
            .to_string()
    };
    assert_eq!(tax(&masked(&known)), "tax=failed:source_error (cached)");
    for p in hh[1].1.iter().chain(&hh[1].2) {
        assert_eq!(tax(&masked(&p["id_number"])), "tax=failed:source_error");
    }
}

/// Found by session 26's attack: a job of a token revoked while the server was down (killed
/// during the job's fan-out, `hedui token revoke`, started again) was resumed: 12 departments
/// asked and a report built under the revoked token. Resumed jobs are refused
/// (`token_revoked`) before any department is asked, as for a revoked consent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_of_a_token_revoked_while_the_server_was_down_is_not_resumed() {
    let w = World::new(20);
    let KilledJob {
        _sim,
        sim_addr,
        cfg,
        job,
        intake_id,
    } = job_killed_during_fan_out(&w).await;
    w.revoke_token(&intake_id);
    let asked = sim_requests(&w, &sim_addr, "tax").await;
    let (_serve2, _addr2) = w.serve(&cfg);
    let conn = rusqlite::Connection::open(w.path("hedui.db")).unwrap();
    let t = Instant::now();
    let status = loop {
        let (status, determination): (String, Option<String>) = conn
            .query_row(
                "SELECT status, determination FROM jobs WHERE id = ?1",
                [&job],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        if status != "queued" && status != "running" {
            break (status, determination);
        }
        assert!(t.elapsed() < Duration::from_secs(10), "{status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        status,
        ("refused".to_string(), Some("token_revoked".to_string()))
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sim_requests(&w, &sim_addr, "tax").await, asked);
    let actions = job_actions(&w, &job);
    assert_eq!(
        actions.last().map(String::as_str),
        Some("job_refused"),
        "{actions:?}"
    );
    assert!(!actions.iter().any(|a| a == "job_resumed"), "{actions:?}");
}
