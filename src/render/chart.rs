//! Hand-written inline SVG charts for the pages: horizontal bars against a limit (the report)
//! and stacked horizontal bars (the run dashboard). Geometry only; labels arrive as plain text
//! and are escaped here.

use super::escape;

/// Fill colour per class (the same palette as style.css, spelled out so a copied SVG keeps it).
pub(crate) fn colour(class: &str) -> &'static str {
    match class {
        "eligible" | "verified" | "answered" | "ok" => "#2e7d32",
        "ineligible" | "over" => "#c62828",
        "referred" | "unverified" => "#b26a00",
        "info" => "#1565c0",
        "due" => "#6a1b9a",
        _ => "#6e7781",
    }
}

/// One part of a stacked bar.
pub(crate) struct Segment {
    /// Its size (a count).
    pub value: f64,
    /// Colour class.
    pub class: String,
    /// Tooltip (`<title>`).
    pub label: String,
}

/// One row of a bar chart against a limit: a value bar and a dashed marker at the limit.
pub(crate) struct LimitRow {
    pub label: String,
    pub value: Option<f64>,
    pub value_text: String,
    pub limit: Option<f64>,
    pub limit_text: String,
}

fn svg_open(width: f64, height: f64, aria: &str) -> String {
    format!(
        "<svg viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"{a}\"><title>{a}</title>",
        a = escape(aria)
    )
}

fn text(x: f64, y: f64, anchor: &str, size: f64, fill: &str, s: &str) -> String {
    format!(
        "<text x=\"{x:.1}\" y=\"{y:.1}\" text-anchor=\"{anchor}\" font-size=\"{size}\" fill=\"{fill}\">{}</text>",
        escape(s)
    )
}

/// Bars of values against limits (per-capita income vs S, per-capita assets vs the limit).
/// Each row is scaled on its own (the two rows have different units of magnitude).
pub(crate) fn limit_bars(rows: &[LimitRow], no_value: &str, aria: &str) -> String {
    let (w, label_w, row_h) = (680.0, 120.0, 58.0);
    let bar_w = w - label_w - 110.0;
    let h = row_h * rows.len() as f64 + 8.0;
    let mut s = svg_open(w, h, aria);
    for (i, r) in rows.iter().enumerate() {
        let y = 8.0 + i as f64 * row_h;
        s.push_str(&text(0.0, y + 20.0, "start", 13.0, "#1f2328", &r.label));
        s.push_str(&format!("<rect x=\"{label_w}\" y=\"{y:.1}\" width=\"{bar_w}\" height=\"26\" fill=\"#f6f8fa\" stroke=\"#d0d7de\"/>"));
        let max = r.value.unwrap_or(0.0).max(r.limit.unwrap_or(0.0)) * 1.15;
        let scale = if max > 0.0 { bar_w / max } else { 0.0 };
        match r.value {
            Some(v) => {
                let over = r.limit.is_some_and(|l| v >= l);
                let len = (v.max(0.0) * scale).max(if v > 0.0 { 1.0 } else { 0.0 });
                s.push_str(&format!(
                    "<rect x=\"{label_w}\" y=\"{:.1}\" width=\"{len:.1}\" height=\"18\" fill=\"{}\"/>",
                    y + 4.0,
                    colour(if over { "over" } else { "ok" })
                ));
                s.push_str(&text(
                    label_w + bar_w + 8.0,
                    y + 19.0,
                    "start",
                    13.0,
                    "#1f2328",
                    &r.value_text,
                ));
            }
            None => s.push_str(&text(
                label_w + 8.0,
                y + 18.0,
                "start",
                12.0,
                "#57606a",
                no_value,
            )),
        }
        if let Some(l) = r.limit {
            let x = label_w + l * scale;
            s.push_str(&format!("<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#1f2328\" stroke-width=\"2\" stroke-dasharray=\"4 3\"/>", y - 3.0, y + 31.0));
            s.push_str(&text(x, y + 46.0, "middle", 11.5, "#1f2328", &r.limit_text));
        }
    }
    s.push_str("</svg>");
    s
}

/// Labelled stacked horizontal bars on one scale (the largest total fills the width); the
/// total is written after each bar.
pub(crate) fn stacked_rows(rows: &[(String, Vec<Segment>)], label_w: f64, aria: &str) -> String {
    let (w, row_h) = (680.0, 24.0);
    let bar_w = w - label_w - 70.0;
    let max = rows
        .iter()
        .map(|(_, segs)| segs.iter().map(|s| s.value).sum::<f64>())
        .fold(0.0, f64::max);
    let scale = if max > 0.0 { bar_w / max } else { 0.0 };
    let h = row_h * rows.len() as f64 + 4.0;
    let mut s = svg_open(w, h, aria);
    for (i, (label, segs)) in rows.iter().enumerate() {
        let y = 2.0 + i as f64 * row_h;
        s.push_str(&text(
            label_w - 6.0,
            y + 15.0,
            "end",
            12.0,
            "#1f2328",
            label,
        ));
        let mut x = label_w;
        for seg in segs {
            let len = seg.value * scale;
            if len <= 0.0 {
                continue;
            }
            s.push_str(&format!(
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{len:.1}\" height=\"16\" fill=\"{}\"><title>{}</title></rect>",
                y + 2.0,
                colour(&seg.class),
                escape(&seg.label)
            ));
            x += len;
        }
        let total: f64 = segs.iter().map(|s| s.value).sum();
        s.push_str(&text(
            x + 5.0,
            y + 15.0,
            "start",
            12.0,
            "#57606a",
            &format!("{total}"),
        ));
    }
    s.push_str("</svg>");
    s
}

/// One full-width stacked bar of shares with a legend under it (e.g. determinations).
pub(crate) fn share_bar(segs: &[Segment], aria: &str) -> String {
    let (w, bar_h) = (680.0, 28.0);
    let total: f64 = segs.iter().map(|s| s.value).sum();
    let h = bar_h + 30.0;
    let mut s = svg_open(w, h, aria);
    let mut x = 0.0;
    if total > 0.0 {
        for seg in segs {
            let len = seg.value / total * w;
            if len <= 0.0 {
                continue;
            }
            s.push_str(&format!(
                "<rect x=\"{x:.1}\" y=\"0\" width=\"{len:.1}\" height=\"{bar_h}\" fill=\"{}\"><title>{}</title></rect>",
                colour(&seg.class),
                escape(&seg.label)
            ));
            if len > 60.0 {
                s.push_str(&text(
                    x + len / 2.0,
                    19.0,
                    "middle",
                    12.0,
                    "#ffffff",
                    &format!("{:.1}%", 100.0 * seg.value / total),
                ));
            }
            x += len;
        }
    }
    let mut lx = 0.0;
    for seg in segs {
        s.push_str(&format!(
            "<rect x=\"{lx:.1}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{}\"/>",
            bar_h + 10.0,
            colour(&seg.class)
        ));
        s.push_str(&text(
            lx + 16.0,
            bar_h + 21.0,
            "start",
            12.0,
            "#1f2328",
            &seg.label,
        ));
        lx += 16.0 + 13.0 * seg.label.chars().count() as f64 + 20.0;
    }
    s.push_str("</svg>");
    s
}
