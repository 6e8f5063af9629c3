//! Unit tests of the pages: a hand-built report with all 12 sources, an unverified source,
//! supporters and several findings; the receipt; the run dashboard; the texts file.

use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::report::{
    Determination, Finding, Outcome, PersonEntry, PolicyRef, ReportRecord, SourceSection,
    SourceStatus, VerificationReport,
};

/// A full ID number that must never reach a page (valid shape; the household head's).
const HEAD_ID: &str = "622925197302246125";
/// An amount of a supporter's bank account, and one of a member's.
const SUPPORTER_BALANCE: &str = "98765.43";
const MEMBER_BALANCE: &str = "1606.61";

const SOURCES: [(&str, &str, &[&str]); 12] = [
    (
        "household_registration",
        "户籍",
        &[
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
        "纳税记录",
        &["tax_year", "income_type", "gross_income", "tax_paid"],
    ),
    (
        "social_insurance",
        "社会保险",
        &[
            "period",
            "insurance_type",
            "record_type",
            "employer_credit_code",
            "amount",
        ],
    ),
    (
        "real_estate",
        "不动产登记",
        &[
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
        "市场主体登记",
        &[
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
        "住房公积金",
        &["period", "monthly_deposit", "balance"],
    ),
    (
        "vehicle_vessel",
        "车船登记",
        &[
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
        "银行存款",
        &[
            "institution_code",
            "account_no_masked",
            "product",
            "balance",
            "as_of_date",
        ],
    ),
    (
        "commercial_insurance",
        "商业保险",
        &[
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
        "证券",
        &[
            "institution_code",
            "account_no_masked",
            "market_value",
            "cash_balance",
            "as_of_date",
        ],
    ),
    (
        "internet_finance",
        "互联网金融资产",
        &["platform", "product", "balance", "as_of_date"],
    ),
    (
        "medical_insurance",
        "医保结算",
        &["year", "total_cost", "out_of_pocket"],
    ),
];

fn rec(person: usize, row: u64, values: &[&str]) -> ReportRecord {
    ReportRecord {
        person,
        row,
        values: values
            .iter()
            .map(|v| {
                if v.is_empty() {
                    None
                } else {
                    Some(v.to_string())
                }
            })
            .collect(),
    }
}

fn finding(rule: &str, clause: &str, outcome: Outcome, evidence: serde_json::Value) -> Finding {
    Finding {
        rule: rule.into(),
        clause: clause.into(),
        outcome,
        evidence,
    }
}

fn person(role: &str, relation: &str, masked: &str, linked: bool, consent: bool) -> PersonEntry {
    PersonEntry {
        role: role.into(),
        relation: relation.into(),
        id_number_masked: masked.into(),
        linked,
        consent,
    }
}

/// Three members, one supporter; records in most sources (the supporter's bank account among
/// them); securities unverified; findings of every outcome.
fn sample() -> VerificationReport {
    let mut records: BTreeMap<&str, Vec<ReportRecord>> = BTreeMap::new();
    records.insert(
        "household_registration",
        vec![
            rec(
                0,
                25362,
                &[
                    "female",
                    "1973-02-24",
                    "620503",
                    "urban",
                    HEAD_ID,
                    "normal",
                    "1973-03-30",
                ],
            ),
            rec(
                1,
                15487,
                &[
                    "male",
                    "1970-11-02",
                    "620503",
                    "urban",
                    HEAD_ID,
                    "normal",
                    "1990-12-23",
                ],
            ),
            rec(
                2,
                579,
                &[
                    "male",
                    "2001-09-03",
                    "620503",
                    "urban",
                    HEAD_ID,
                    "deceased",
                    "2026-05-03",
                ],
            ),
        ],
    );
    records.insert(
        "tax",
        vec![rec(1, 354, &["2025", "wages", "27707.00", "0.00"])],
    );
    records.insert(
        "social_insurance",
        vec![rec(
            1,
            88,
            &[
                "2026-09",
                "employee_pension",
                "contribution",
                "91620503MA0000000X",
                "2400.00",
            ],
        )],
    );
    records.insert(
        "real_estate",
        vec![rec(
            0,
            10121,
            &[
                "甘(2018)麦积区不动产权第0010152号",
                "620503",
                "residential",
                "76.68",
                "100.00",
                "2018-04-22",
            ],
        )],
    );
    records.insert(
        "vehicle_vessel",
        vec![rec(
            1,
            7,
            &[
                "甘E·12345",
                "car",
                "private",
                "68000.00",
                "2019-05-01",
                "normal",
            ],
        )],
    );
    records.insert(
        "bank",
        vec![
            rec(
                0,
                23669,
                &[
                    "B0002H",
                    "6228****2014",
                    "current",
                    MEMBER_BALANCE,
                    "2026-10-28",
                ],
            ),
            rec(
                3,
                932,
                &[
                    "B0002H",
                    "6228****6886",
                    "time",
                    SUPPORTER_BALANCE,
                    "2026-10-31",
                ],
            ),
        ],
    );
    records.insert(
        "internet_finance",
        vec![rec(0, 5681, &["alipay", "余额宝", "314.82", "2026-10-29"])],
    );
    records.insert(
        "medical_insurance",
        vec![rec(0, 2602, &["2025", "480.55", "251.02"])],
    );
    let sources = SOURCES
        .iter()
        .map(|(name, _, cols)| {
            let recs = records.remove(name).unwrap_or_default();
            let (status, reason) = if *name == "securities" {
                (
                    SourceStatus::Unverified,
                    Some(
                        "source_missing: no securities.csv or securities.parquet in /data/in"
                            .to_string(),
                    ),
                )
            } else if recs.is_empty() {
                (SourceStatus::NoRecords, None)
            } else {
                (SourceStatus::Verified, None)
            };
            SourceSection {
                source: name.to_string(),
                status,
                reason,
                age_s: None,
                columns: cols.iter().map(|c| c.to_string()).collect(),
                records: recs,
            }
        })
        .collect();
    VerificationReport {
        report_id: "20261101-20261130T004428Z-999289fc/620503H0000003".into(),
        run_id: "20261101-20261130T004428Z-999289fc".into(),
        household_id: "620503H0000003".into(),
        region_code: "620503".into(),
        area: "urban".into(),
        programme: "dibao".into(),
        category: "partial".into(),
        as_of: "2026-11-01".into(),
        determination: Determination::Ineligible,
        per_capita_monthly_income: Some("578.53".into()),
        per_capita_financial_assets: Some("1734.27".into()),
        household_income_annual: Some("20828.16".into()),
        financial_assets_total: Some("5202.81".into()),
        members: 3,
        review_due: true,
        findings: vec![
            finding(
                "income",
                "DESIGN §3 Income test: household income / 12 / members < S",
                Outcome::Eligible,
                json!({"dibao_standard_monthly": "700.00", "household_income_annual": "20828.16", "members": 3, "per_capita_monthly_income": "578.53", "support_owed_annual": "0.00"}),
            ),
            finding(
                "financial_assets",
                "DESIGN §3 Financial assets: per capita > 24 x S is ineligible",
                Outcome::Eligible,
                json!({"financial_assets_total": "5202.81", "per_capita_financial_assets": "1734.27", "threshold_per_capita": "16800.00"}),
            ),
            finding(
                "vehicle",
                "DESIGN §3 Vehicles: status normal, non-exempt kind; private -> ineligible",
                Outcome::Ineligible,
                json!({"usage": "private"}),
            ),
            finding(
                "household_composition",
                "DESIGN §3 Household registration: a member deceased -> referred",
                Outcome::Referred,
                json!({"members": [{"member": 2, "status": "deceased"}]}),
            ),
            finding(
                "supporter_assets",
                "DESIGN §3 Supporters: per supporter, costly vehicle -> referred",
                Outcome::Referred,
                json!({"supporters": [{"supporter": 0, "id_number_masked": "6205**********7027", "assets": ["vehicle"]}]}),
            ),
            finding(
                "source_unverified",
                "DESIGN §3 A source not answered -> referred, naming it",
                Outcome::Referred,
                json!({"source": "securities", "reason": "source_missing: no securities.csv or securities.parquet in /data/in"}),
            ),
            finding(
                "declared_gap",
                "DESIGN §3 Declared vs verified (informational)",
                Outcome::Info,
                json!({"income": {"declared": "0.00", "verified": "20828.16"}, "head": HEAD_ID}),
            ),
        ],
        sources,
        persons: vec![
            person("member", "applicant", "6229**********6125", true, true),
            person("member", "spouse", "6205**********1387", true, true),
            person("member", "child", "6205**********7658", true, true),
            person("supporter", "child", "6205**********7027", true, true),
        ],
        policy: PolicyRef {
            id: "gansu-illustrative-2026".into(),
            title: "甘肃省县级低保核对政策（示意）".into(),
            illustrative: true,
            dibao_standard_monthly: "700.00".into(),
        },
        fuzzy_links: Vec::new(),
        possible_matches: Vec::new(),
    }
}

fn summary() -> serde_json::Value {
    json!({
        "run_id": "20261101-20261130T004428Z-999289fc", "as_of": "2026-11-01", "policy": "gansu-illustrative-2026",
        "households": 2000,
        "determination": {"eligible": 1242, "ineligible": 462, "referred": 296},
        "rules": {"income": {"eligible": 1599, "ineligible": 401}, "vehicle": {"ineligible": 45, "referred": 22}, "declared_gap": {"info": 567}},
        "review_due": 602,
        "declared_gap_top": [{"household_id": "620503H0001697", "income_gap": "84314.70"}],
        "sources": {
            "bank": {"status": "answered", "counts": {"file": "bank.parquet", "format": "parquet", "rows": 61898, "linked": 7245, "unlinked": 54650, "quarantined": 3, "key_repairs": {}}, "households_unverified": 2, "ms": 16},
            "securities": {"status": "unverified", "reason": "source_missing: no securities file", "households_unverified": 2000, "ms": 0}
        },
        "caseload": {"households": 2000, "members": 5058, "supporters": 1796, "persons_queried": 6854},
        "quarantine": {"id_check_character": 3, "money_not_a_number": 1},
        "timings_ms": {"assess_seal": 506, "caseload": 32, "sources": 192, "total": 843, "write": 112},
        "exit_code": 1
    })
}

fn regions() -> Vec<(String, BTreeMap<String, u64>)> {
    let m = |e: u64, i: u64, r: u64, due: u64| -> BTreeMap<String, u64> {
        [
            ("eligible", e),
            ("ineligible", i),
            ("referred", r),
            ("review_due", due),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    };
    vec![
        ("620502 秦州区".to_string(), m(700, 200, 100, 300)),
        ("620503 麦积区".to_string(), m(542, 262, 196, 302)),
    ]
}

/// Where the pattern `[0-9]{17}[0-9X]` matches (an unmasked ID number), if anywhere.
fn full_id(page: &str) -> Option<&str> {
    let b = page.as_bytes();
    (0..b.len().saturating_sub(17)).find_map(|i| {
        let ok = b[i..i + 17].iter().all(u8::is_ascii_digit)
            && (b[i + 17].is_ascii_digit() || b[i + 17] == b'X');
        ok.then(|| &page[i..i + 18])
    })
}

/// Every element opened is closed in order (void elements and `/>` aside); returns the count
/// of each element name.
fn balanced(page: &str) -> BTreeMap<String, usize> {
    const VOID: [&str; 8] = ["meta", "br", "hr", "img", "input", "link", "col", "wbr"];
    let body = page
        .strip_prefix("<!DOCTYPE html>")
        .expect("starts with the doctype");
    let mut stack: Vec<String> = Vec::new();
    let mut counts = BTreeMap::new();
    let mut rest = body;
    while let Some(start) = rest.find('<') {
        let end = rest[start..].find('>').expect("every tag ends") + start;
        let tag = &rest[start + 1..end];
        rest = &rest[end + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack
                .pop()
                .unwrap_or_else(|| panic!("</{name}> closes nothing"));
            assert_eq!(open, name, "<{open}> closed by </{name}>");
            continue;
        }
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        assert!(!name.is_empty(), "a tag without a name: <{tag}>");
        *counts.entry(name.clone()).or_insert(0) += 1;
        if name == "style" {
            // The style sheet holds no markup; skip to its end.
            let close = rest.find("</style>").expect("style is closed");
            rest = &rest[close + "</style>".len()..];
            continue;
        }
        if !tag.ends_with('/') && !VOID.contains(&name.as_str()) {
            stack.push(name);
        }
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    counts
}

/// No fetch: no http(s) URL anywhere, no `src=`, links only to anchors in the page.
fn assert_no_network(page: &str) {
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "a network URL in the page"
    );
    assert!(!page.contains("src="), "a src attribute");
    assert!(!page.contains("url("), "a CSS url()");
    assert!(!page.contains("@import"), "a CSS import");
    for (i, _) in page.match_indices("href=\"") {
        assert_eq!(
            &page[i + 6..i + 7],
            "#",
            "a link leaves the page: {}",
            &page[i..(i + 60).min(page.len())]
        );
    }
    assert!(
        page.contains("default-src 'none'"),
        "the CSP forbids fetches"
    );
    assert!(!page.contains("<script"), "no JavaScript");
}

fn common_checks(page: &str) {
    assert_no_network(page);
    let counts = balanced(page);
    for el in ["html", "head", "body", "main", "header", "footer", "style"] {
        assert_eq!(counts.get(el), Some(&1), "exactly one <{el}>");
    }
    let head = &page[..page.find("</head>").expect("a head")];
    assert_eq!(
        head.matches("<title>").count(),
        1,
        "one document title (SVG titles are in the body)"
    );
    if let Some(id) = full_id(page) {
        panic!("a full ID number in the page: {id}");
    }
    assert!(
        !page.contains('⟦'),
        "a [ui] text missing from zh.toml: {}",
        &page[page.find('⟦').unwrap_or(0)..][..40]
    );
}

#[test]
fn a_report_page_names_every_source_in_chinese() {
    let page = report_html(&sample(), &Texts::zh());
    for (name, zh, _) in SOURCES {
        assert!(page.contains(zh), "{name} ({zh}) is missing");
        assert!(
            page.contains(&format!("id=\"source-{name}\"")),
            "{name} has no section"
        );
    }
}

#[test]
fn a_report_page_shows_every_finding_with_its_rule_and_clause() {
    let r = sample();
    let lang = Texts::zh();
    let page = report_html(&r, &lang);
    for f in &r.findings {
        assert!(
            page.contains(&format!("<code>{}</code>", f.rule)),
            "rule {} is missing",
            f.rule
        );
        assert!(
            page.contains(lang.term("rule", &f.rule)),
            "the Chinese name of {} is missing",
            f.rule
        );
        assert!(
            page.contains(&escape(&f.clause)),
            "the clause of {} is missing",
            f.rule
        );
    }
    assert_eq!(
        page.matches("<div class=\"finding ").count(),
        r.findings.len()
    );
    for outcome in ["符合", "不符合", "需人工复核", "提示"] {
        assert!(page.contains(outcome), "outcome {outcome} is missing");
    }
    // Evidence is labelled and resolved: the deceased member is named by position and masked ID.
    assert!(
        page.contains("成员 3（6205**********7658）"),
        "member index resolved"
    );
    assert!(page.contains("死亡"), "the status is translated");
    assert!(
        page.contains("人均金融资产上限（元）"),
        "evidence keys are labelled"
    );
}

#[test]
fn a_report_page_shows_masked_ids_and_never_a_full_id() {
    let r = sample();
    let page = report_html(&r, &Texts::zh());
    for p in &r.persons {
        assert!(
            page.contains(&p.id_number_masked),
            "{} is missing",
            p.id_number_masked
        );
    }
    assert_eq!(full_id(&page), None);
    assert!(
        !page.contains(HEAD_ID),
        "the household head's ID from the source record"
    );
    assert!(
        page.contains("6229**********6125"),
        "the record value is masked like the persons' IDs"
    );
}

#[test]
fn a_report_page_is_well_formed_and_fetches_nothing() {
    let page = report_html(&sample(), &Texts::zh());
    common_checks(&page);
    assert!(page.starts_with("<!DOCTYPE html>\n<html lang=\"zh-CN\">"));
    assert_eq!(
        page.matches("<section class=\"page\"").count(),
        3,
        "overview, findings, sources; no possible matches"
    );
    assert!(
        page.contains("size: A4") && page.contains("break-before: page"),
        "prints on A4 with page breaks"
    );
}

#[test]
fn an_unverified_source_reads_as_unverified_with_its_reason_never_as_no_records() {
    let page = report_html(&sample(), &Texts::zh());
    let start = page
        .find("id=\"source-securities\"")
        .expect("the securities section");
    let section = &page[start..start + page[start..].find("</div>\n").expect("section end")];
    assert!(section.contains("未核实"));
    assert!(
        section.contains("数据源文件缺失（source_missing：no securities.csv"),
        "the reason, translated with its code"
    );
    assert!(
        section.contains("badge unverified") && !section.contains("badge no_records"),
        "unverified is not no records"
    );
    assert!(section.contains("本报告不将其视为无记录"));
    let start = page
        .find("id=\"source-provident_fund\"")
        .expect("the provident fund section");
    assert!(page[start..].contains("已查询：该数据源没有上述人员在本次核对范围（所核期间、计入的类别）内的记录；范围以外的记录不列出。"));
}

#[test]
fn the_chart_compares_income_with_the_standard_and_assets_with_the_threshold() {
    let page = report_html(&sample(), &Texts::zh());
    let svg = &page[page.find("<svg").expect("a chart")..page.find("</svg>").expect("chart end")];
    assert!(
        svg.contains("人均月收入") && svg.contains("578.53 元") && svg.contains("低保标准 700.00")
    );
    assert!(
        svg.contains("人均金融资产")
            && svg.contains("1,734.27 元")
            && svg.contains("上限 16,800.00")
    );
    assert!(svg.contains("#2e7d32"), "below the limits: green");
    let mut over = sample();
    over.per_capita_monthly_income = Some("812.00".into());
    let page = report_html(&over, &Texts::zh());
    assert!(page.contains("fill=\"#c62828\""), "above the standard: red");
    // null figures: of a household without members, or (session 27's attack: the page said
    // "no members" for a household of two) over a total not whole
    let mut none = sample();
    none.per_capita_monthly_income = None;
    none.per_capita_financial_assets = None;
    let partial = report_html(&none, &Texts::zh());
    assert!(partial.contains("无法确定（有数据源未答复或人员未查询"));
    assert!(!partial.contains("无家庭成员"));
    none.members = 0;
    assert!(report_html(&none, &Texts::zh()).contains("无法计算（无家庭成员）"));
}

#[test]
fn the_possible_match_section_appears_only_when_a_report_carries_matches() {
    let r = sample();
    let lang = Texts::zh();
    assert!(possible_matches(&r).is_empty());
    assert!(!report_html(&r, &lang).contains("id=\"matches\""));
    let m = PossibleMatch {
        person: 1,
        source: "tax".into(),
        row: 4242,
        score: Some(0.87),
        reason: Some("name_and_birth_date".into()),
        fields: vec![
            MatchField {
                field: "id_number".into(),
                person: Some("6205**********1387".into()),
                record: Some("620503197011020000".into()),
            },
            MatchField {
                field: "birth_date".into(),
                person: Some("1970-11-02".into()),
                record: Some("1970-11-02".into()),
            },
        ],
    };
    let page = report_html_with(&r, &[m], &lang);
    common_checks(&page);
    let section = &page[page.find("id=\"matches\"").expect("the section")..];
    assert!(section.contains("纳税记录　第 4242 行　对照 成员 2（6205**********1387）"));
    assert!(
        section.contains("家庭成员（台账）") && section.contains("数据源记录"),
        "both sides"
    );
    assert!(
        section.contains("<td class=\"same\">1970-11-02</td><td class=\"same\">1970-11-02</td>")
    );
    assert!(
        section.contains("class=\"differs\">6205**********0000"),
        "the record's ID is masked too"
    );
    assert!(page.contains("href=\"#matches\""));
}

#[test]
fn every_value_is_html_escaped() {
    let mut r = sample();
    r.household_id = "<script>alert(1)</script>\"'&".into();
    r.findings[2].evidence = json!({"usage": "<img src=x onerror=alert(1)>"});
    r.sources[0].records[0].values[0] = Some("<b>".into());
    let page = report_html(&r, &Texts::zh());
    assert!(!page.contains("<script>") && !page.contains("<img") && !page.contains("<b>"));
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;"));
    balanced(&page);
    common_checks(&receipt_html(&r, &Texts::zh()));
}

#[test]
fn a_receipt_has_no_figures_and_no_supporter_items() {
    let r = sample();
    let page = receipt_html(&r, &Texts::zh());
    common_checks(&page);
    assert!(
        !page.contains(SUPPORTER_BALANCE) && !page.contains("98,765.43"),
        "a supporter's balance"
    );
    assert!(!page.contains(MEMBER_BALANCE), "no amounts at all");
    // No money-like figure of anyone: no decimal number anywhere in the page's text.
    let text = &page[page.find("</style>").expect("style end")..];
    let b = text.as_bytes();
    let decimal = (1..b.len().saturating_sub(1))
        .find(|&i| b[i] == b'.' && b[i - 1].is_ascii_digit() && b[i + 1].is_ascii_digit());
    assert_eq!(
        decimal.map(|i| &text[i.saturating_sub(12)..(i + 6).min(text.len())]),
        None,
        "a decimal figure"
    );
    // Supporters: queried (listed), but none of their items.
    assert!(
        page.contains("6205**********7027"),
        "the supporter is listed as queried"
    );
    assert!(
        !page.contains("bank-932"),
        "the supporter's item is left out"
    );
    assert!(page.contains("赡养扶养抚养义务人的数据条目只向其本人提供"));
    // Members' items by reference, and how to ask for a review of one.
    for item in [
        "household_registration-25362",
        "bank-23669",
        "vehicle_vessel-7",
        "real_estate-10121",
    ] {
        assert!(page.contains(item), "item {item} is missing");
    }
    assert!(
        page.contains("账号（已脱敏） 6228****2014"),
        "items are described, not valued"
    );
    assert!(page.contains("复核") && page.contains("有异议的条目编号"));
    assert!(
        page.contains("（见第三部分，例如 household_registration-25362）"),
        "the example is a real item"
    );
    // Which sources about whom, and when.
    assert!(page.contains("2026-11-01") && page.contains("2026-11-30 00:44:28"));
    assert!(
        page.contains("未答复（未核实）"),
        "securities did not answer"
    );
    for (_, zh, _) in SOURCES {
        assert!(page.contains(zh));
    }
}

#[test]
fn a_receipt_leaves_out_persons_who_were_not_queried() {
    let mut r = sample();
    r.persons[2].linked = false;
    r.persons[2].consent = false;
    let page = receipt_html(&r, &Texts::zh());
    assert!(page.contains("未查询（未签署授权书或身份号码无效）") && page.contains("未签署"));
    let queries = &page[page.find("二、查询的数据源").expect("queries")
        ..page.find("三、家庭成员的数据条目").expect("items")];
    assert!(
        !queries.contains("6205**********7658"),
        "not listed as queried"
    );
}

#[test]
fn a_summary_page_shows_counts_by_determination_rule_region_and_quarantine() {
    let page = summary_html(&summary(), &regions(), &Texts::zh());
    common_checks(&page);
    for s in [
        "1242",
        "462",
        "296",
        "62.1%",
        "602",
        "30.1%",
        "620502 秦州区",
        "620503 麦积区",
        "84,314.70",
        "5058",
        "6854",
    ] {
        assert!(page.contains(s), "{s} is missing");
    }
    for s in [
        "收入",
        "车辆",
        "申报与核实差距",
        "身份号码校验码错误（id_check_character）",
        "金额不是数字",
        "证券",
        "银行存款",
    ] {
        assert!(page.contains(s), "{s} is missing");
    }
    assert!(
        page.contains("未核实的数据源：证券"),
        "the unverified source is named"
    );
    assert!(page.contains("数据源文件缺失（source_missing：no securities file）"));
    assert!(
        page.contains("这些家庭的该数据源为“未核实”：银行存款 2 户"),
        "households unverified by unreadable rows"
    );
    assert!(
        page.contains("核对与加密") && page.contains("843"),
        "timings"
    );
    assert!(
        page.matches("<svg").count() >= 5,
        "charts: determination, rules, regions, review, quarantine, timings"
    );
    assert!(page.contains("本批次已完成，但有数据被隔离"));
}

#[test]
fn a_summary_page_without_regions_quarantine_or_gaps_says_so() {
    let mut s = summary();
    s["quarantine"] = json!({});
    s["declared_gap_top"] = json!([]);
    s["exit_code"] = json!(0);
    let page = summary_html(&s, &[], &Texts::zh());
    common_checks(&page);
    assert!(
        page.contains("本批次没有隔离数据。")
            && page.contains("没有按地区的统计。")
            && page.contains("没有申报与核实差距超过阈值的家庭。")
    );
    assert!(page.contains("本批次运行正常"));
    // An empty summary renders too (every field missing).
    common_checks(&summary_html(&json!({}), &[], &Texts::zh()));
}

#[test]
fn another_language_file_changes_the_pages_without_code() {
    let en = Texts::from_toml("[meta]\nlang = \"en\"\n[ui]\nreport_title = \"Verification report\"\n[source]\ntax = \"Tax\"\n").expect("valid");
    let page = report_html(&sample(), &en);
    assert!(page.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
    assert!(
        page.contains("<h1>Verification report</h1>") && page.contains(">Tax <code>tax</code>")
    );
    assert!(
        page.contains("⟦ui.section_findings⟧"),
        "a missing sentence is visible, not silent"
    );
    assert!(
        page.contains("bank <code>bank</code>"),
        "a missing term shows its code"
    );
    assert!(matches!(
        Texts::from_toml("[ui]\n"),
        Err(TextsError::Missing("meta.lang"))
    ));
    assert!(matches!(
        Texts::from_toml("not toml ="),
        Err(TextsError::Parse(_))
    ));
}

#[test]
fn the_bundled_texts_cover_every_source_rule_and_outcome() {
    let zh = Texts::zh();
    assert_eq!(zh.lang(), "zh-CN");
    for (name, cn, cols) in SOURCES {
        assert_eq!(zh.term("source", name), cn);
        for c in cols {
            assert_ne!(zh.term("column", c), *c, "column {c} has no text");
        }
    }
    for rule in [
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
        "gradual_exit",
        "single_person_option",
        "declared_gap",
    ] {
        assert_ne!(zh.term("rule", rule), rule, "rule {rule} has no text");
    }
    assert_eq!(zh.term("determination", "referred"), "需人工复核");
    assert_eq!(zh.ui_list("receipt_review_steps").len(), 5);
}

#[test]
fn digit_runs_of_an_id_or_card_are_masked_and_shorter_numbers_are_not() {
    assert_eq!(
        mask_digit_runs("head 622925197302246125."),
        "head 6229**********6125."
    );
    assert_eq!(
        mask_digit_runs("11010519491231002X and 11010519491231002x"),
        "1101**********002X and 1101**********002x"
    );
    assert_eq!(
        mask_digit_runs("legacy 110105491231002"),
        "legacy 1101*******1002"
    );
    assert_eq!(
        mask_digit_runs("card 6228480402564890018"),
        "card 6228***********0018"
    );
    assert_eq!(
        mask_digit_runs("20261101-20261130T004428Z 27769.40 620503"),
        "20261101-20261130T004428Z 27769.40 620503"
    );
    assert_eq!(
        mask_digit_runs("中文622925197302246125中文"),
        "中文6229**********6125中文"
    );
    assert!(matches!(
        mask_digit_runs("no digits"),
        std::borrow::Cow::Borrowed(_)
    ));
    assert_eq!(
        escape("<12345678901234>"),
        "&lt;12345678901234&gt;",
        "14 digits are left alone"
    );
    // session 23's attack: a right-to-left override in a department value reversed the rest
    // of the receipt's cell
    assert_eq!(
        escape("\u{202e}evil\u{202c}名 \u{2067}x\u{2069}\u{200f}<"),
        "evil名 x&lt;"
    );
}

#[test]
fn placeholders_are_filled_once_and_unknown_ones_stay() {
    let t = Texts::from_toml("[meta]\nlang = \"x\"\n[ui]\ns = \"{a} and {b} and {c}\"\n")
        .expect("valid");
    assert_eq!(
        t.fill("s", &[("a", "{b}"), ("b", "2")]),
        "{b} and 2 and {c}"
    );
    assert_eq!(t.fill("missing", &[]), "⟦ui.missing⟧");
}

#[test]
fn yuan_amounts_are_grouped_by_thousands() {
    assert_eq!(yuan("27769.40"), "27,769.40");
    assert_eq!(yuan("700.00"), "700.00");
    assert_eq!(yuan("-1234567.5"), "-1,234,567.5");
    assert_eq!(yuan("100000"), "100,000");
    assert_eq!(yuan("n/a"), "n/a");
    assert_eq!(
        run_time("20261101-20261130T004428Z-999289fc").as_deref(),
        Some("2026-11-30 00:44:28")
    );
    assert_eq!(run_time("manual-run"), None);
}
