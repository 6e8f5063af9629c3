//! The run dashboard (批次汇总, `summary.html` beside `summary.json`): counts by determination
//! and by rule, by region, households due for review, quarantine by reason, sources and their
//! row accounting, the largest declared-vs-verified gaps, timings. Charts where a chart reads
//! faster than a table (shares, rule counts, regions, timings); tables keep the exact numbers.
//!
//! It reads `summary.json` as a `serde_json::Value` (the shape of `batch::Summary`), so a field
//! that is missing leaves its part out rather than failing.

use std::collections::BTreeMap;

use serde_json::Value;

use super::chart::{self, Segment};
use super::{Html, Texts, run_time, yuan};

const DETERMINATIONS: [&str; 3] = ["eligible", "ineligible", "referred"];
const OUTCOMES: [&str; 4] = ["ineligible", "referred", "info", "eligible"];

fn u(v: Option<&Value>) -> u64 {
    v.and_then(Value::as_u64).unwrap_or(0)
}

fn pct(n: u64, of: u64) -> String {
    if of == 0 {
        "0.0%".to_string()
    } else {
        format!("{:.1}%", 100.0 * n as f64 / of as f64)
    }
}

/// The run dashboard. `by_region`: per region (the reports' `region_code`, optionally with its
/// name), households by determination, and optionally `review_due`.
pub fn summary_html(
    s: &Value,
    by_region: &[(String, BTreeMap<String, u64>)],
    lang: &Texts,
) -> String {
    let run = s.get("run_id").and_then(Value::as_str).unwrap_or("");
    let as_of = s.get("as_of").and_then(Value::as_str).unwrap_or("");
    let policy = s.get("policy").and_then(Value::as_str).unwrap_or("");
    let households = u(s.get("households"));
    let determination = s.get("determination");
    let count = |d: &str| u(determination.and_then(|m| m.get(d)));
    let quarantined: u64 = s
        .get("quarantine")
        .and_then(Value::as_object)
        .map(|m| m.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0);
    let sources = s.get("sources").and_then(Value::as_object);
    let unverified: Vec<(&String, &Value)> = sources
        .map(|m| {
            m.iter()
                .filter(|(_, v)| v.get("status").and_then(Value::as_str) != Some("answered"))
                .collect()
        })
        .unwrap_or_default();
    let review_due = u(s.get("review_due"));

    let title = format!("{} {run}", lang.ui("summary_title"));
    let mut h = Html::start(lang, &title, "summary");
    h.raw("<header class=\"page-head\">\n")
        .el("h1", "", &lang.ui("summary_title"));
    h.el(
        "p",
        "sub",
        &lang.fill(
            "summary_subtitle",
            &[("run", run), ("date", as_of), ("policy", policy)],
        ),
    );
    if let Some(t) = run_time(run) {
        h.el("p", "sub", &format!("{} {t}", lang.ui("run_time")));
    }
    let clean = s.get("exit_code").and_then(Value::as_i64) == Some(0);
    h.el(
        "p",
        if clean { "note" } else { "warn" },
        &lang.ui(if clean {
            "summary_exit_clean"
        } else {
            "summary_exit_attention"
        }),
    );
    h.raw("<div class=\"kpis\">");
    let mut kpi = |class: &str, n: u64, label: &str| {
        h.raw(&format!("<div class=\"kpi {class}\"><div class=\"n\">"))
            .text(&n.to_string())
            .raw("</div><div class=\"l\">")
            .text(label)
            .raw("</div></div>");
    };
    kpi("", households, &lang.ui("kpi_households"));
    for d in DETERMINATIONS {
        kpi(d, count(d), lang.term("determination", d));
    }
    kpi("", review_due, &lang.ui("kpi_review_due"));
    kpi("", quarantined, &lang.ui("kpi_quarantined"));
    kpi("", unverified.len() as u64, &lang.ui("kpi_unverified"));
    h.raw("</div>\n</header>\n<main>\n");

    // ---- 1 determination
    h.raw("<section class=\"block\" id=\"determination\">").el(
        "h2",
        "",
        &lang.ui("section_determination"),
    );
    let segs: Vec<Segment> = DETERMINATIONS
        .iter()
        .map(|d| Segment {
            value: count(d) as f64,
            class: d.to_string(),
            label: format!("{} {}", lang.term("determination", d), count(d)),
        })
        .collect();
    h.raw("<figure>")
        .raw(&chart::share_bar(&segs, &lang.ui("section_determination")))
        .raw("</figure>");
    h.raw("<table>");
    h.thead(&[
        lang.ui("determination"),
        lang.ui("households"),
        lang.ui("share"),
    ]);
    h.raw("<tbody>");
    for d in DETERMINATIONS {
        h.raw("<tr><td>")
            .badge(d, lang.term("determination", d))
            .raw("</td>")
            .td(&count(d).to_string())
            .td(&pct(count(d), households))
            .raw("</tr>");
    }
    h.raw("<tr>")
        .el("th", "", &lang.ui("total"))
        .td(&households.to_string())
        .td(&pct(households, households))
        .raw("</tr>");
    h.raw("</tbody></table></section>\n");

    // ---- 2 rules
    if let Some(rules) = s.get("rules").and_then(Value::as_object) {
        h.raw("<section class=\"block\" id=\"rules\">")
            .el("h2", "", &lang.ui("section_rules"));
        let mut rows: Vec<(String, Vec<Segment>, u64)> = rules
            .iter()
            .map(|(rule, outs)| {
                let segs: Vec<Segment> = OUTCOMES[..3]
                    .iter()
                    .map(|o| {
                        let n = u(outs.get(*o));
                        Segment {
                            value: n as f64,
                            class: o.to_string(),
                            label: format!("{} {n}", lang.term("outcome", o)),
                        }
                    })
                    .collect();
                let fired: u64 = OUTCOMES[..3].iter().map(|o| u(outs.get(*o))).sum();
                (lang.term("rule", rule).to_string(), segs, fired)
            })
            .filter(|(_, _, fired)| *fired > 0)
            .collect();
        rows.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
        let rows: Vec<(String, Vec<Segment>)> = rows.into_iter().map(|(l, s, _)| (l, s)).collect();
        if !rows.is_empty() {
            h.raw("<figure>").raw(&chart::stacked_rows(
                &rows,
                150.0,
                &lang.ui("section_rules"),
            ));
            h.raw("<figcaption>");
            for (k, o) in OUTCOMES[..3].iter().enumerate() {
                if k > 0 {
                    h.raw("　");
                }
                h.raw(&format!(
                    "<span style=\"color:{}\">■</span> ",
                    chart::colour(o)
                ))
                .text(lang.term("outcome", o));
            }
            h.raw("</figcaption></figure>");
        }
        h.raw("<table>");
        let mut labels = vec![lang.ui("rule").into_owned()];
        labels.extend(OUTCOMES.iter().map(|o| lang.term("outcome", o).to_string()));
        h.thead(&labels);
        h.raw("<tbody>");
        for (rule, outs) in rules {
            h.raw("<tr><td>")
                .text(lang.term("rule", rule))
                .raw(" <code>")
                .text(rule)
                .raw("</code></td>");
            for o in OUTCOMES {
                let n = outs.get(o).and_then(Value::as_u64);
                h.td(&n
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| lang.ui("dash").into_owned()));
            }
            h.raw("</tr>");
        }
        h.raw("</tbody></table></section>\n");
    }

    // ---- 3 regions
    h.raw("<section class=\"block\" id=\"regions\">")
        .el("h2", "", &lang.ui("section_regions"));
    if by_region.is_empty() {
        h.el("p", "muted", &lang.ui("regions_none"));
    } else {
        let rows: Vec<(String, Vec<Segment>)> = by_region
            .iter()
            .map(|(region, m)| {
                let segs = DETERMINATIONS
                    .iter()
                    .map(|d| {
                        let n = m.get(*d).copied().unwrap_or(0);
                        Segment {
                            value: n as f64,
                            class: d.to_string(),
                            label: format!("{} {n}", lang.term("determination", d)),
                        }
                    })
                    .collect();
                (region.clone(), segs)
            })
            .collect();
        h.raw("<figure>")
            .raw(&chart::stacked_rows(
                &rows,
                150.0,
                &lang.ui("section_regions"),
            ))
            .raw("</figure>");
        h.raw("<table>");
        let mut labels = vec![
            lang.ui("region").into_owned(),
            lang.ui("total").into_owned(),
        ];
        labels.extend(
            DETERMINATIONS
                .iter()
                .map(|d| lang.term("determination", d).to_string()),
        );
        labels.push(lang.ui("review_due_count").into_owned());
        h.thead(&labels);
        h.raw("<tbody>");
        for (region, m) in by_region {
            let total: u64 = DETERMINATIONS
                .iter()
                .map(|d| m.get(*d).copied().unwrap_or(0))
                .sum();
            h.raw("<tr>").td(region).td(&total.to_string());
            for d in DETERMINATIONS {
                h.td(&m.get(d).copied().unwrap_or(0).to_string());
            }
            h.td(&m
                .get("review_due")
                .map(|n| n.to_string())
                .unwrap_or_else(|| lang.ui("dash").into_owned()))
                .raw("</tr>");
        }
        h.raw("</tbody></table>");
    }
    h.raw("</section>\n");

    // ---- 4 review due
    h.raw("<section class=\"block\" id=\"review\">")
        .el("h2", "", &lang.ui("section_review"));
    let segs = [
        Segment {
            value: review_due as f64,
            class: "due".into(),
            label: format!("{} {review_due}", lang.ui("review_due_yes")),
        },
        Segment {
            value: households.saturating_sub(review_due) as f64,
            class: "none".into(),
            label: format!(
                "{} {}",
                lang.ui("review_due_no"),
                households.saturating_sub(review_due)
            ),
        },
    ];
    h.raw("<figure>")
        .raw(&chart::share_bar(&segs, &lang.ui("section_review")))
        .raw("</figure>");
    h.el(
        "p",
        "",
        &lang.fill(
            "review_due_text",
            &[
                ("n", &review_due.to_string()),
                ("pct", &pct(review_due, households)),
            ],
        ),
    );
    h.raw("</section>\n");

    // ---- 5 quarantine
    h.raw("<section class=\"block\" id=\"quarantine\">").el(
        "h2",
        "",
        &lang.ui("section_quarantine"),
    );
    match s
        .get("quarantine")
        .and_then(Value::as_object)
        .filter(|m| !m.is_empty())
    {
        None => {
            h.el("p", "muted", &lang.ui("quarantine_none"));
        }
        Some(q) => {
            let mut rows: Vec<(&String, u64)> = q
                .iter()
                .map(|(k, v)| (k, v.as_u64().unwrap_or(0)))
                .collect();
            rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            let bars: Vec<(String, Vec<Segment>)> = rows
                .iter()
                .map(|(k, n)| {
                    (
                        lang.term("reason", k).to_string(),
                        vec![Segment {
                            value: *n as f64,
                            class: "referred".into(),
                            label: format!("{} {n}", lang.reason(k)),
                        }],
                    )
                })
                .collect();
            h.raw("<figure>")
                .raw(&chart::stacked_rows(
                    &bars,
                    200.0,
                    &lang.ui("section_quarantine"),
                ))
                .raw("</figure>");
            h.raw("<table>");
            h.thead(&[lang.ui("quarantine_reason"), lang.ui("quarantine_rows")]);
            h.raw("<tbody>");
            for (k, n) in rows {
                h.raw("<tr>")
                    .td(&lang.reason(k))
                    .td(&n.to_string())
                    .raw("</tr>");
            }
            h.raw("</tbody></table>");
        }
    }
    h.raw("</section>\n");

    // ---- 6 sources
    if let Some(sources) = sources {
        h.raw("<section class=\"block\" id=\"sources\">")
            .el("h2", "", &lang.ui("summary_sources"));
        if unverified.is_empty() {
            h.el("p", "note", &lang.ui("sources_all_answered"));
        } else {
            let list: Vec<String> = unverified
                .iter()
                .map(|(k, _)| lang.term("source", k).to_string())
                .collect();
            h.el(
                "p",
                "warn",
                &lang.fill(
                    "sources_unverified_list",
                    &[("list", &list.join(lang.ui("list_sep").as_ref()))],
                ),
            );
        }
        let partly: Vec<String> = sources
            .iter()
            .filter(|(_, v)| {
                v.get("status").and_then(Value::as_str) == Some("answered")
                    && u(v.get("households_unverified")) > 0
            })
            .map(|(k, v)| {
                lang.fill(
                    "source_households",
                    &[
                        ("source", lang.term("source", k)),
                        ("n", &u(v.get("households_unverified")).to_string()),
                    ],
                )
            })
            .collect();
        if !partly.is_empty() {
            h.el(
                "p",
                "warn",
                &lang.fill(
                    "sources_partly_unverified",
                    &[("list", &partly.join(lang.ui("list_sep").as_ref()))],
                ),
            );
        }
        h.raw("<table class=\"records\">");
        h.thead(&[
            lang.ui("source_name"),
            lang.ui("source_status"),
            lang.ui("source_file"),
            lang.ui("source_rows"),
            lang.ui("source_linked"),
            lang.ui("source_unlinked"),
            lang.ui("source_quarantined"),
            lang.ui("source_households_unverified"),
            lang.ui("source_ms"),
        ]);
        h.raw("<tbody>");
        for (name, v) in sources {
            let status = v
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("unverified");
            let class = if status == "answered" {
                "answered"
            } else {
                "unverified"
            };
            let counts = v.get("counts");
            let c = |k: &str| {
                counts
                    .and_then(|c| c.get(k))
                    .and_then(Value::as_u64)
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| lang.ui("dash").into_owned())
            };
            h.raw("<tr><td>")
                .text(lang.term("source", name))
                .raw("</td><td>")
                .badge(class, lang.term("source_status", status));
            if let Some(reason) = v.get("reason").and_then(Value::as_str) {
                h.raw("<br><span class=\"muted\">")
                    .text(&lang.reason(reason))
                    .raw("</span>");
            }
            h.raw("</td>");
            h.td(&counts
                .and_then(|c| c.get("file"))
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| lang.ui("dash").into_owned()));
            h.td(&c("rows"))
                .td(&c("linked"))
                .td(&c("unlinked"))
                .td(&c("quarantined"));
            h.td(&u(v.get("households_unverified")).to_string())
                .td(&u(v.get("ms")).to_string())
                .raw("</tr>");
        }
        h.raw("</tbody></table></section>\n");
    }

    // ---- 7 declared gap
    h.raw("<section class=\"block\" id=\"gap\">")
        .el("h2", "", &lang.ui("section_gap"));
    match s
        .get("declared_gap_top")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
    {
        None => {
            h.el("p", "muted", &lang.ui("gap_none"));
        }
        Some(gaps) => {
            h.raw("<table>");
            h.thead(&[
                lang.ui("person_no"),
                lang.ui("gap_household"),
                lang.ui("gap_income"),
            ]);
            h.raw("<tbody>");
            for (i, g) in gaps.iter().enumerate() {
                let id = g.get("household_id").and_then(Value::as_str).unwrap_or("");
                let gap = g.get("income_gap").and_then(Value::as_str).unwrap_or("");
                h.raw("<tr>")
                    .td(&(i + 1).to_string())
                    .td(id)
                    .raw("<td class=\"num\">")
                    .text(&yuan(gap))
                    .raw("</td></tr>");
            }
            h.raw("</tbody></table>");
        }
    }
    h.raw("</section>\n");

    // ---- 8 timings and caseload
    h.raw("<section class=\"block\" id=\"timings\">")
        .el("h2", "", &lang.ui("section_timings"));
    if let Some(t) = s.get("timings_ms").and_then(Value::as_object) {
        let rows: Vec<(String, Vec<Segment>)> = t
            .iter()
            .filter(|(k, _)| k.as_str() != "total")
            .map(|(k, v)| {
                (
                    lang.term("timing", k).to_string(),
                    vec![Segment {
                        value: u(Some(v)) as f64,
                        class: "info".into(),
                        label: format!("{} ms", u(Some(v))),
                    }],
                )
            })
            .collect();
        h.raw("<figure>")
            .raw(&chart::stacked_rows(
                &rows,
                150.0,
                &lang.ui("section_timings"),
            ))
            .raw("</figure>");
        h.raw("<table>");
        h.thead(&[lang.ui("timing_stage"), lang.ui("timing_ms")]);
        h.raw("<tbody>");
        for (k, v) in t {
            h.raw("<tr>")
                .td(lang.term("timing", k))
                .td(&u(Some(v)).to_string())
                .raw("</tr>");
        }
        h.raw("</tbody></table>");
    }
    if let Some(c) = s.get("caseload") {
        h.el("h3", "", &lang.ui("caseload_heading"));
        h.raw("<table class=\"kv\"><tbody>");
        for (key, label) in [
            ("households", "caseload_households"),
            ("members", "caseload_members"),
            ("supporters", "caseload_supporters"),
            ("persons_queried", "caseload_persons_queried"),
        ] {
            if let Some(n) = c.get(key).and_then(Value::as_u64) {
                h.raw("<tr>")
                    .el("th", "", &lang.ui(label))
                    .td(&n.to_string())
                    .raw("</tr>");
            }
        }
        h.raw("</tbody></table>");
    }
    h.raw("</section>\n</main>\n");
    h.raw("<footer class=\"page-foot\">")
        .text(&format!("{} {run}", lang.ui("run_id")))
        .raw("<br>")
        .text(&lang.ui("generated_by"))
        .raw("</footer>\n");
    h.finish()
}
