//! The verification report as a page (核对报告): household and persons (masked), the chart of
//! per-capita income and assets against the policy's limits, the policy and its clauses, each
//! finding with its evidence, one table per source, and possible matches side by side when a
//! report carries them.

use serde::{Deserialize, Serialize};

use super::chart::{self, LimitRow};
use super::{Html, Texts, escape, run_time, yuan};
use crate::report::{
    Finding, Outcome, PersonEntry, SourceSection, SourceStatus, VerificationReport,
};

/// A possible match (疑似匹配): a source record that may be a person's, by the error-tolerant
/// fallback (name + birth date + region, DESIGN.md §1 link). It goes to a person, never to a rule,
/// so the page shows both sides for a clerk to confirm or reject.
///
/// Reports do not carry these yet (issue 7). When [`VerificationReport`] gains a field
/// `possible_matches` of this shape, [`report_html`] shows them with no change here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PossibleMatch {
    /// Index into the report's `persons`.
    pub person: usize,
    /// Source name (§2).
    pub source: String,
    /// 0-based data row in the source extract.
    pub row: u64,
    /// Similarity score, 0..1, if the linker gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Why it is only possible (reason code or text), if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The compared fields, person's value beside the record's.
    pub fields: Vec<MatchField>,
}

/// One compared field of a [`PossibleMatch`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchField {
    /// Field name (a §2 column such as `birth_date`, or `id_number`, `name`).
    pub field: String,
    /// The person's value from the caseload (masked where it is an ID).
    pub person: Option<String>,
    /// The source record's value.
    pub record: Option<String>,
}

/// The possible matches a report carries (`possible_matches`), none if it has no such field.
pub fn possible_matches(r: &VerificationReport) -> Vec<PossibleMatch> {
    serde_json::to_value(r)
        .ok()
        .and_then(|v| v.get("possible_matches").cloned())
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

/// The report page, with the possible matches the report carries.
pub fn report_html(r: &VerificationReport, lang: &Texts) -> String {
    report_html_with(r, &possible_matches(r), lang)
}

/// The report page with these possible matches (the section is left out when there are none).
pub fn report_html_with(r: &VerificationReport, matches: &[PossibleMatch], lang: &Texts) -> String {
    let title = format!("{} {}", lang.ui("report_title"), r.household_id);
    let mut h = Html::start(lang, &title, "report");
    head(&mut h, r, !matches.is_empty(), lang);
    h.raw("<main>\n");
    overview(&mut h, r, lang);
    findings(&mut h, r, lang);
    sources(&mut h, r, lang);
    if !matches.is_empty() {
        possible_match_section(&mut h, r, matches, lang);
    }
    h.raw("</main>\n");
    foot(&mut h, r, lang);
    h.finish()
}

fn head(h: &mut Html, r: &VerificationReport, with_matches: bool, lang: &Texts) {
    h.raw("<header class=\"page-head\">\n")
        .el("div", "conf", &lang.ui("confidential"));
    h.el("h1", "", &lang.ui("report_title"));
    h.el(
        "p",
        "sub",
        &lang.fill(
            "report_subtitle",
            &[("household", &r.household_id), ("date", &r.as_of)],
        ),
    );
    h.raw("<div class=\"verdict\">")
        .text(&lang.ui("determination"));
    let d = r.determination.as_str();
    h.badge(d, lang.term("determination", d)).raw("</div>\n");
    if r.policy.illustrative {
        h.el("p", "warn", &lang.ui("illustrative_policy"));
    }
    h.raw("<nav class=\"toc\">")
        .text(&lang.ui("page_contents"))
        .raw("：");
    let mut toc = vec![
        ("overview", "section_overview"),
        ("findings", "section_findings"),
        ("sources", "section_sources"),
    ];
    if with_matches {
        toc.push(("matches", "section_matches"));
    }
    for (id, key) in toc {
        h.raw(&format!("<a href=\"#{id}\">"))
            .text(&lang.ui(key))
            .raw("</a>");
    }
    h.raw("</nav>\n</header>\n");
}

fn foot(h: &mut Html, r: &VerificationReport, lang: &Texts) {
    h.raw("<footer class=\"page-foot\">");
    h.text(&format!(
        "{} {}　·　{} {}",
        lang.ui("report_id"),
        r.report_id,
        lang.ui("run_id"),
        r.run_id
    ));
    if let Some(t) = run_time(&r.run_id) {
        h.text(&format!("　·　{} {t}", lang.ui("run_time")));
    }
    h.raw("<br>")
        .text(&lang.ui("generated_by"))
        .raw("</footer>\n");
}

/// The person at an index and their 1-based position among persons of the same role.
fn with_position(r: &VerificationReport, index: usize) -> Option<(&PersonEntry, usize)> {
    let p = r.persons.get(index)?;
    Some((
        p,
        r.persons[..index]
            .iter()
            .filter(|q| q.role == p.role)
            .count()
            + 1,
    ))
}

/// `成员 1（6205**********1234）` for a person index.
pub(crate) fn person_ref(r: &VerificationReport, index: usize, lang: &Texts) -> String {
    match with_position(r, index) {
        Some((p, n)) => {
            let key = if p.role == "supporter" {
                "supporter_ref"
            } else {
                "member_ref"
            };
            lang.fill(key, &[("n", &n.to_string()), ("id", &p.id_number_masked)])
        }
        None => format!("#{index}"),
    }
}

/// `家庭成员 1` for a person index.
pub(crate) fn person_short(r: &VerificationReport, index: usize, lang: &Texts) -> String {
    match with_position(r, index) {
        Some((p, n)) => lang.fill(
            "person_short",
            &[("role", lang.term("role", &p.role)), ("n", &n.to_string())],
        ),
        None => format!("#{index}"),
    }
}

/// The index into `persons` of the n-th (0-based) person of a role.
/// The persons table (masked IDs, consent, whether queried), shared by the report and the
/// receipt; `not_linked` is the `ui` text key for a person not queried.
pub(crate) fn persons_table(h: &mut Html, r: &VerificationReport, lang: &Texts, not_linked: &str) {
    h.raw("<table>");
    h.thead(&[
        lang.ui("person_no"),
        lang.ui("person_role"),
        lang.ui("person_relation"),
        lang.ui("person_id"),
        lang.ui("person_consent"),
        lang.ui("person_linked"),
    ]);
    h.raw("<tbody>");
    for (i, p) in r.persons.iter().enumerate() {
        h.raw("<tr>")
            .td(&(i + 1).to_string())
            .td(lang.term("role", &p.role))
            .td(lang.term("relation", &p.relation));
        h.el("td", "id", &p.id_number_masked);
        h.td(&lang.ui(if p.consent {
            "consent_given"
        } else {
            "consent_missing"
        }));
        h.td(&lang.ui(if p.linked { "yes" } else { not_linked }))
            .raw("</tr>");
    }
    h.raw("</tbody></table>");
}

fn nth_of_role(persons: &[PersonEntry], role: &str, n: usize) -> Option<usize> {
    persons
        .iter()
        .enumerate()
        .filter(|(_, p)| p.role == role)
        .nth(n)
        .map(|(i, _)| i)
}

fn overview(h: &mut Html, r: &VerificationReport, lang: &Texts) {
    h.raw("<section class=\"page\" id=\"overview\">\n")
        .el("h2", "", &lang.ui("section_overview"));
    let money = |v: &Option<String>| {
        v.as_deref()
            .map(|a| lang.fill("yuan_amount", &[("amount", &yuan(a))]))
            .unwrap_or_else(|| lang.ui("dash").into_owned())
    };
    let category = if r.category.is_empty() {
        lang.ui("dash").into_owned()
    } else {
        lang.term("category", &r.category).to_string()
    };
    let review = lang
        .ui(if r.review_due {
            "review_due_yes"
        } else {
            "review_due_no"
        })
        .into_owned();
    let pairs: [(&str, String); 12] = [
        ("household_id", r.household_id.clone()),
        ("region_code", r.region_code.clone()),
        ("area", lang.term("area", &r.area).to_string()),
        (
            "programme",
            lang.term("programme", &r.programme).to_string(),
        ),
        ("category", category),
        (
            "members_count",
            lang.fill("persons_count_value", &[("n", &r.members.to_string())]),
        ),
        ("as_of", r.as_of.clone()),
        ("review_due", review),
        ("household_income_annual", money(&r.household_income_annual)),
        ("financial_assets_total", money(&r.financial_assets_total)),
        (
            "per_capita_monthly_income",
            money(&r.per_capita_monthly_income),
        ),
        (
            "per_capita_financial_assets",
            money(&r.per_capita_financial_assets),
        ),
    ];
    h.raw("<table class=\"kv4\"><tbody>");
    for pair in pairs.chunks(2) {
        h.raw("<tr>");
        for (k, v) in pair {
            h.el("th", "", &lang.ui(k)).td_text(v);
        }
        h.raw("</tr>");
    }
    h.raw("</tbody></table>\n");

    chart_figure(h, r, lang);

    h.el("h3", "", &lang.ui("persons_heading"));
    persons_table(h, r, lang, "no");
    h.raw("\n");

    h.el("h3", "", &lang.ui("policy_heading"));
    h.raw("<table class=\"kv\"><tbody>");
    h.raw("<tr>")
        .el("th", "", &lang.ui("policy_id"))
        .td_text(&r.policy.id)
        .raw("</tr>");
    h.raw("<tr>")
        .el("th", "", &lang.ui("policy_title"))
        .td_text(&r.policy.title)
        .raw("</tr>");
    h.raw("<tr>")
        .el("th", "", &lang.ui("policy_standard"))
        .td_text(&yuan(&r.policy.dibao_standard_monthly))
        .raw("</tr>");
    h.raw("<tr>")
        .el("th", "", &lang.ui("as_of"))
        .td_text(&r.as_of)
        .raw("</tr>");
    h.raw("</tbody></table>\n");
    h.el("h3", "", &lang.ui("policy_clauses"));
    h.raw("<table class=\"clauses\">");
    h.thead(&[lang.ui("clause_rule"), lang.ui("clause_text")]);
    h.raw("<tbody>");
    let mut seen: Vec<&str> = Vec::new();
    for f in &r.findings {
        if seen.contains(&f.rule.as_str()) {
            continue;
        }
        seen.push(&f.rule);
        h.raw("<tr><th>")
            .text(lang.term("rule", &f.rule))
            .raw(" <code>")
            .text(&f.rule)
            .raw("</code></th>")
            .td(&f.clause)
            .raw("</tr>");
    }
    h.raw("</tbody></table>\n</section>\n");
}

fn parse_yuan(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

fn chart_figure(h: &mut Html, r: &VerificationReport, lang: &Texts) {
    let standard = r.policy.dibao_standard_monthly.clone();
    let limit = r
        .findings
        .iter()
        .find(|f| f.rule == "financial_assets")
        .and_then(|f| f.evidence.get("threshold_per_capita"))
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let dash = lang.ui("dash").into_owned();
    let amount = |v: Option<&str>| {
        v.map(|a| lang.fill("yuan_amount", &[("amount", &yuan(a))]))
            .unwrap_or_else(|| dash.clone())
    };
    let rows = [
        LimitRow {
            label: lang.ui("chart_income").into_owned(),
            value: r.per_capita_monthly_income.as_deref().and_then(parse_yuan),
            value_text: amount(r.per_capita_monthly_income.as_deref()),
            limit: parse_yuan(&standard),
            limit_text: lang.fill("chart_income_limit", &[("amount", &yuan(&standard))]),
        },
        LimitRow {
            label: lang.ui("chart_assets").into_owned(),
            value: r
                .per_capita_financial_assets
                .as_deref()
                .and_then(parse_yuan),
            value_text: amount(r.per_capita_financial_assets.as_deref()),
            limit: limit.as_deref().and_then(parse_yuan),
            limit_text: limit
                .as_deref()
                .map(|l| lang.fill("chart_assets_limit", &[("amount", &yuan(l))]))
                .unwrap_or_default(),
        },
    ];
    let aria = lang.fill(
        "chart_aria",
        &[
            (
                "income",
                r.per_capita_monthly_income.as_deref().unwrap_or(&dash),
            ),
            ("standard", &standard),
            (
                "assets",
                r.per_capita_financial_assets.as_deref().unwrap_or(&dash),
            ),
            ("limit", limit.as_deref().unwrap_or(&dash)),
        ],
    );
    h.el("h3", "", &lang.ui("chart_heading"));
    h.raw("<figure class=\"chart\">");
    // (a figure is null without members, or over a total not whole: a source that did not
    // answer, a person not queried; found by session 27's attack, the page said "no members"
    // for a household of two)
    let no_value = if r.members == 0 {
        lang.ui("chart_no_value")
    } else {
        lang.ui("chart_no_value_partial")
    };
    h.raw(&chart::limit_bars(&rows, &no_value, &aria));
    h.el("figcaption", "", &lang.ui("chart_caption"))
        .raw("</figure>\n");
}

fn outcome_class(o: Outcome) -> &'static str {
    match o {
        Outcome::Eligible => "eligible",
        Outcome::Ineligible => "ineligible",
        Outcome::Referred => "referred",
        Outcome::Info => "info",
    }
}

fn findings(h: &mut Html, r: &VerificationReport, lang: &Texts) {
    h.raw("<section class=\"page\" id=\"findings\">\n")
        .el("h2", "", &lang.ui("section_findings"));
    h.raw("<div class=\"verdict\">")
        .text(&lang.ui("determination"));
    let d = r.determination.as_str();
    h.badge(d, lang.term("determination", d)).raw("</div>\n");
    h.el("p", "muted", &lang.ui("findings_intro"));
    for f in &r.findings {
        finding(h, r, f, lang);
    }
    h.raw("</section>\n");
}

fn finding(h: &mut Html, r: &VerificationReport, f: &Finding, lang: &Texts) {
    let o = outcome_class(f.outcome);
    h.raw(&format!(
        "<div class=\"finding {o}\">\n<div class=\"finding-head\">"
    ));
    h.badge(o, lang.term("outcome", o));
    h.raw("<strong>")
        .text(lang.term("rule", &f.rule))
        .raw("</strong><code>")
        .text(&f.rule)
        .raw("</code></div>\n");
    h.raw("<div class=\"clause\">")
        .text(&lang.ui("finding_clause"))
        .raw("：")
        .text(&f.clause)
        .raw("</div>\n");
    evidence(h, r, &f.evidence, lang);
    h.raw("</div>\n");
}

/// Render a finding's evidence: objects as labelled tables, lists as lists, codes translated,
/// member/supporter indices resolved to masked persons.
fn evidence(h: &mut Html, r: &VerificationReport, v: &serde_json::Value, lang: &Texts) {
    use serde_json::Value;
    match v {
        Value::Object(map) if map.is_empty() => {
            h.el("span", "muted", &lang.ui("evidence_empty"));
        }
        Value::Object(map) => {
            h.raw("<table class=\"evidence\"><tbody>");
            for (k, val) in map {
                h.raw("<tr>")
                    .el("th", "", lang.term("evidence", k))
                    .raw("<td>");
                evidence_value(h, r, k, val, lang);
                h.raw("</td></tr>");
            }
            h.raw("</tbody></table>");
        }
        other => evidence_value(h, r, "", other, lang),
    }
}

fn evidence_value(
    h: &mut Html,
    r: &VerificationReport,
    key: &str,
    v: &serde_json::Value,
    lang: &Texts,
) {
    use serde_json::Value;
    match v {
        Value::Null => {
            h.text(&lang.ui("dash"));
        }
        Value::Bool(b) => {
            h.text(&lang.ui(if *b { "yes" } else { "no" }));
        }
        Value::Number(n) => {
            let role = match key {
                "member" => Some("member"),
                "supporter" => Some("supporter"),
                _ => None,
            };
            match (role, n.as_u64().and_then(|i| usize::try_from(i).ok())) {
                (Some(role), Some(i)) => match nth_of_role(&r.persons, role, i) {
                    Some(p) => h.text(&person_ref(r, p, lang)),
                    None => h.text(&n.to_string()),
                },
                _ => h.text(&n.to_string()),
            };
        }
        Value::String(s) => {
            let shown = match key {
                "source" => lang.term("source", s).to_string(),
                "reason" => {
                    let t = lang.reason(s);
                    if t == *s {
                        lang.value("reason", s).to_string()
                    } else {
                        t
                    }
                }
                "role" => lang.term("role", s).to_string(),
                _ => lang.value(key, s).to_string(),
            };
            h.text(&shown);
        }
        Value::Array(items) => {
            if items.iter().all(|i| !i.is_object() && !i.is_array()) {
                for (n, i) in items.iter().enumerate() {
                    if n > 0 {
                        h.raw("、");
                    }
                    evidence_value(h, r, key, i, lang);
                }
            } else {
                h.raw("<ol>");
                for i in items {
                    h.raw("<li>");
                    evidence(h, r, i, lang);
                    h.raw("</li>");
                }
                h.raw("</ol>");
            }
        }
        Value::Object(_) => evidence(h, r, v, lang),
    }
}

fn status_class(s: SourceStatus) -> &'static str {
    match s {
        SourceStatus::Verified => "verified",
        SourceStatus::Unverified => "unverified",
        SourceStatus::NoRecords => "no_records",
    }
}

fn sources(h: &mut Html, r: &VerificationReport, lang: &Texts) {
    h.raw("<section class=\"page\" id=\"sources\">\n")
        .el("h2", "", &lang.ui("section_sources"));
    h.el(
        "p",
        "muted",
        &lang.fill("sources_intro", &[("n", &r.sources.len().to_string())]),
    );
    h.el("h3", "", &lang.ui("sources_overview"));
    h.raw("<table>");
    h.thead(&[
        lang.ui("source_name"),
        lang.ui("source_status"),
        lang.ui("source_records"),
        lang.ui("source_as_of"),
        lang.ui("source_cache_age"),
    ]);
    h.raw("<tbody>");
    for s in &r.sources {
        let st = status_class(s.status);
        h.raw("<tr><td>")
            .raw(&format!("<a href=\"#source-{}\">", escape(&s.source)))
            .text(lang.term("source", &s.source))
            .raw("</a></td><td>");
        h.badge(st, lang.term("source_status", st)).raw("</td>");
        h.td(&s.records.len().to_string())
            .td(&r.as_of)
            .td(&lang.ui("source_cache_none"))
            .raw("</tr>");
    }
    h.raw("</tbody></table>\n");
    for s in &r.sources {
        source(h, r, s, lang);
    }
    h.raw("</section>\n");
}

fn source(h: &mut Html, r: &VerificationReport, s: &SourceSection, lang: &Texts) {
    let st = status_class(s.status);
    h.raw(&format!(
        "<div class=\"source {st}\" id=\"source-{}\">\n<h3>",
        escape(&s.source)
    ));
    h.text(lang.term("source", &s.source))
        .raw(" <code>")
        .text(&s.source)
        .raw("</code> ");
    h.badge(st, lang.term("source_status", st)).raw("</h3>\n");
    h.raw("<p class=\"meta\">").text(&format!(
        "{} {}　·　{} {}　·　{} {}",
        lang.ui("source_as_of"),
        r.as_of,
        lang.ui("source_cache_age"),
        lang.ui("source_cache_none"),
        lang.ui("source_records"),
        lang.fill("records_count", &[("n", &s.records.len().to_string())])
    ));
    h.raw("</p>\n");
    match s.status {
        SourceStatus::Unverified => {
            h.el("p", "warn", &lang.ui("source_unverified_note"));
            if let Some(reason) = &s.reason {
                h.raw("<p>")
                    .text(&lang.ui("source_reason"))
                    .raw("：")
                    .text(&lang.reason(reason))
                    .raw("</p>\n");
            }
        }
        SourceStatus::NoRecords if s.records.is_empty() => {
            h.el("p", "muted", &lang.ui("source_no_records"));
        }
        _ => {}
    }
    if !s.records.is_empty() {
        h.raw("<table class=\"records\">");
        let mut labels: Vec<String> = vec![
            lang.ui("record_person").into_owned(),
            lang.ui("record_row").into_owned(),
        ];
        labels.extend(s.columns.iter().map(|c| lang.term("column", c).to_string()));
        h.thead(&labels);
        h.raw("<tbody>");
        for rec in &s.records {
            h.raw("<tr>");
            let who = r.persons.get(rec.person);
            h.raw("<td class=\"person\">");
            h.text(&person_short(r, rec.person, lang));
            if let Some(p) = who {
                h.raw(" ")
                    .text(lang.term("relation", &p.relation))
                    .raw("<br><span class=\"id\">")
                    .text(&p.id_number_masked)
                    .raw("</span>");
            }
            h.raw("</td>").td(&rec.row.to_string());
            for (i, v) in rec.values.iter().enumerate() {
                let col = s.columns.get(i).map(String::as_str).unwrap_or("");
                match v {
                    Some(v) => h.td_value(lang.value(col, v)),
                    None => h.td_text(&lang.ui("dash")),
                };
            }
            h.raw("</tr>");
        }
        h.raw("</tbody></table>\n");
    }
    h.raw("</div>\n");
}

fn possible_match_section(
    h: &mut Html,
    r: &VerificationReport,
    matches: &[PossibleMatch],
    lang: &Texts,
) {
    h.raw("<section class=\"page\" id=\"matches\">\n")
        .el("h2", "", &lang.ui("section_matches"));
    h.el("p", "note", &lang.ui("matches_intro"));
    for m in matches {
        h.raw("<div class=\"match\">");
        h.el(
            "h3",
            "",
            &lang.fill(
                "match_heading",
                &[
                    ("source", lang.term("source", &m.source)),
                    ("row", &m.row.to_string()),
                    ("person", &person_ref(r, m.person, lang)),
                ],
            ),
        );
        if m.score.is_some() || m.reason.is_some() {
            h.raw("<p class=\"meta\">");
            if let Some(score) = m.score {
                h.text(&format!("{} {score:.2}　", lang.ui("match_score")));
            }
            if let Some(reason) = &m.reason {
                h.text(&format!(
                    "{}：{}",
                    lang.ui("match_reason"),
                    lang.reason(reason)
                ));
            }
            h.raw("</p>");
        }
        h.raw("<table>");
        h.thead(&[
            lang.ui("match_field"),
            lang.ui("match_person"),
            lang.ui("match_record"),
            lang.ui("match_same"),
        ]);
        h.raw("<tbody>");
        for f in &m.fields {
            let same = f.person.is_some() && f.person == f.record;
            let class = if same { "same" } else { "differs" };
            let label = if f.field == "id_number" {
                lang.ui("person_id").into_owned()
            } else {
                lang.term("column", &f.field).to_string()
            };
            let dash = lang.ui("dash");
            h.raw("<tr>").el("th", "", &label);
            h.el("td", class, f.person.as_deref().unwrap_or(&dash));
            h.el("td", class, f.record.as_deref().unwrap_or(&dash));
            h.el(
                "td",
                class,
                &lang.ui(if same { "match_same" } else { "match_differs" }),
            );
            h.raw("</tr>");
        }
        h.raw("</tbody></table></div>\n");
    }
    h.raw("</section>\n");
}
