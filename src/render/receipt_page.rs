//! The data receipt (数据查询回执) for the applicant: which sources were queried about whom
//! (masked) and when, each household member's items by reference, and how to ask for a review
//! (复核) of one item.
//!
//! It carries no figures at all: no amounts, areas or shares, of anyone. Supporters are listed
//! as queried, but their items are left out (a supporter sees their own items on their own
//! receipt). Items are named by a reference (`bank-38535`: source and row) and by a few
//! describing columns that are never amounts ([`ITEM_LABEL_COLUMNS`]).

use super::report_page::person_short;
use super::{Html, Texts, run_time};
use crate::report::{SourceStatus, VerificationReport};

/// Per source, the columns that describe an item without any figure (DESIGN.md §2 names).
/// A column not listed here never reaches a receipt.
pub(crate) const ITEM_LABEL_COLUMNS: [(&str, &[&str]); 12] = [
    ("household_registration", &["hukou_region_code", "status"]),
    ("tax", &["tax_year", "income_type"]),
    (
        "social_insurance",
        &["period", "insurance_type", "record_type"],
    ),
    ("real_estate", &["certificate_no", "usage"]),
    ("market_entity", &["entity_name", "role"]),
    ("provident_fund", &["period"]),
    ("vehicle_vessel", &["plate_no", "kind"]),
    (
        "bank",
        &["institution_code", "account_no_masked", "product"],
    ),
    (
        "commercial_insurance",
        &["insurer_code", "policy_no", "product_type"],
    ),
    ("securities", &["institution_code", "account_no_masked"]),
    ("internet_finance", &["platform", "product"]),
    ("medical_insurance", &["year"]),
];

/// The reference of one item: `<source>-<row>`.
pub(crate) fn item_ref(source: &str, row: u64) -> String {
    format!("{source}-{row}")
}

/// The applicant's data receipt.
pub fn receipt_html(r: &VerificationReport, lang: &Texts) -> String {
    let title = format!("{} {}", lang.ui("receipt_title"), r.household_id);
    let mut h = Html::start(lang, &title, "receipt");
    h.raw("<header class=\"page-head\">\n")
        .el("div", "conf", &lang.ui("confidential"));
    h.el("h1", "", &lang.ui("receipt_title"));
    h.el(
        "p",
        "sub",
        &lang.fill("receipt_subtitle", &[("household", &r.household_id)]),
    );
    h.el("p", "", &lang.fill("receipt_intro", &[("date", &r.as_of)]));
    h.raw("<table class=\"kv\"><tbody>");
    h.raw("<tr>")
        .el("th", "", &lang.ui("receipt_form_receipt"))
        .td_text(&r.report_id)
        .raw("</tr>");
    h.raw("<tr>")
        .el("th", "", &lang.ui("as_of"))
        .td_text(&r.as_of)
        .raw("</tr>");
    if let Some(t) = run_time(&r.run_id) {
        h.raw("<tr>")
            .el("th", "", &lang.ui("run_time"))
            .td_text(&t)
            .raw("</tr>");
    }
    h.raw("</tbody></table>\n</header>\n<main>\n");

    // ---- persons
    h.raw("<section class=\"block\">")
        .el("h2", "", &lang.ui("receipt_section_persons"));
    super::report_page::persons_table(&mut h, r, lang, "receipt_not_queried");
    h.raw("</section>\n");

    // ---- sources: whom each was asked about, and whether it answered (no record counts:
    // they would reveal supporters' items). Every queried person is asked of every source.
    h.raw("<section class=\"block\">")
        .el("h2", "", &lang.ui("receipt_section_queries"));
    h.el(
        "p",
        "",
        &lang.fill("receipt_queries_intro", &[("date", &r.as_of)]),
    );
    let queried: Vec<usize> = (0..r.persons.len())
        .filter(|&i| r.persons[i].linked)
        .collect();
    h.raw("<table class=\"matrix records\"><thead><tr>")
        .el("th", "", &lang.ui("source_name"));
    for &i in &queried {
        h.raw("<th>")
            .text(&person_short(r, i, lang))
            .raw("<span class=\"id\">")
            .text(&r.persons[i].id_number_masked)
            .raw("</span></th>");
    }
    h.el("th", "", &lang.ui("receipt_result"))
        .raw("</tr></thead><tbody>");
    let mark = lang.ui("receipt_cell_queried");
    for s in &r.sources {
        h.raw("<tr>").td_text(lang.term("source", &s.source));
        for _ in &queried {
            h.td_text(&mark);
        }
        let result = if s.status == SourceStatus::Unverified {
            lang.ui("receipt_unanswered").into_owned()
        } else {
            lang.term("source_status", "answered").to_string()
        };
        h.td_text(&result).raw("</tr>");
    }
    h.raw("</tbody></table></section>\n\n");

    // ---- members' items, by reference
    h.raw("<section class=\"block\">")
        .el("h2", "", &lang.ui("receipt_section_items"));
    h.el("p", "", &lang.ui("receipt_items_intro"));
    let mut first_ref: Option<String> = None;
    let mut any = false;
    for (pi, p) in r
        .persons
        .iter()
        .enumerate()
        .filter(|(_, p)| p.role == "member" && p.linked)
    {
        let items: Vec<(&str, &[String], &crate::report::ReportRecord)> = r
            .sources
            .iter()
            .flat_map(|s| {
                s.records
                    .iter()
                    .filter(move |rec| rec.person == pi)
                    .map(move |rec| (s.source.as_str(), s.columns.as_slice(), rec))
            })
            .collect();
        if items.is_empty() {
            continue;
        }
        any = true;
        h.raw("<h3>")
            .text(&person_short(r, pi, lang))
            .raw(" ")
            .text(lang.term("relation", &p.relation));
        h.raw(" <span class=\"id\">")
            .text(&p.id_number_masked)
            .raw("</span></h3>\n<table class=\"records\">");
        h.thead(&[
            lang.ui("receipt_item_ref"),
            lang.ui("source_name"),
            lang.ui("receipt_item_label"),
        ]);
        h.raw("<tbody>");
        for (source, columns, rec) in items {
            let reference = item_ref(source, rec.row);
            first_ref.get_or_insert_with(|| reference.clone());
            h.raw("<tr>")
                .el("td", "id", &reference)
                .td(lang.term("source", source))
                .td(&item_label(source, columns, &rec.values, lang))
                .raw("</tr>");
        }
        h.raw("</tbody></table>\n");
    }
    if !any {
        h.el("p", "muted", &lang.ui("receipt_items_none"));
    }
    if r.persons.iter().any(|p| p.role == "supporter") {
        h.el("p", "note", &lang.ui("receipt_supporter_note"));
    }
    h.raw("</section>\n");

    // ---- review of one item
    h.raw("<section class=\"block\">")
        .el("h2", "", &lang.ui("receipt_section_review"));
    let example = first_ref.unwrap_or_else(|| item_ref("bank", 12345));
    h.raw("<ol class=\"steps\">");
    for step in lang.ui_list("receipt_review_steps") {
        h.el("li", "", &step.replace("{example}", &example));
    }
    h.raw("</ol>\n<div class=\"form\">")
        .el("h3", "", &lang.ui("receipt_form_heading"));
    h.raw("<table class=\"kv\"><tbody>");
    h.raw("<tr>")
        .el("th", "", &lang.ui("receipt_form_receipt"))
        .td_text(&r.report_id)
        .raw("</tr>");
    for key in [
        "receipt_form_item",
        "receipt_form_reason",
        "receipt_form_signature",
        "receipt_form_date",
    ] {
        h.raw("<tr>")
            .el("th", "", &lang.ui(key))
            .raw("<td><div class=\"line\"></div></td></tr>");
    }
    h.raw("</tbody></table></div>\n</section>\n</main>\n");
    h.raw("<footer class=\"page-foot\">")
        .text(&lang.ui("generated_by"))
        .raw("</footer>\n");
    h.finish()
}

/// `纳税年度 2025，所得类型 经营所得`: the describing columns of an item, never an amount.
fn item_label(source: &str, columns: &[String], values: &[Option<String>], lang: &Texts) -> String {
    let wanted: &[&str] = ITEM_LABEL_COLUMNS
        .iter()
        .find(|(s, _)| *s == source)
        .map(|(_, c)| *c)
        .unwrap_or(&[]);
    let parts: Vec<String> = wanted
        .iter()
        .filter_map(|w| {
            let i = columns.iter().position(|c| c == w)?;
            let v = values.get(i)?.as_deref()?;
            Some(format!("{} {}", lang.term("column", w), lang.value(w, v)))
        })
        .collect();
    if parts.is_empty() {
        lang.ui("dash").into_owned()
    } else {
        parts.join(lang.ui("list_sep").as_ref())
    }
}
