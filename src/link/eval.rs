//! `hedui link eval`: link two files with a schema and score the result against known true
//! pairs: precision, recall and F1 at the schema's thresholds and at the best-F1 threshold,
//! blocking recall, pairs compared, seconds, and a precision–recall curve as SVG (plotters).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::LinkError;
use super::model::{Schema, Table};

/// Precision, recall, F1 and counts at one threshold.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Prf {
    /// Match-weight threshold (bits): pairs at or above it are links.
    pub threshold: f64,
    /// Share of links that are true.
    pub precision: f64,
    /// Share of true pairs linked.
    pub recall: f64,
    /// Harmonic mean.
    pub f1: f64,
    /// True links.
    pub tp: u64,
    /// False links.
    pub fp: u64,
    /// True pairs missed (JSON key `fn`).
    #[serde(rename = "fn")]
    pub fn_: u64,
}

fn prf(threshold: f64, tp: u64, fp: u64, n_true: u64) -> Prf {
    let p = if tp + fp > 0 {
        tp as f64 / (tp + fp) as f64
    } else {
        0.0
    };
    let r = if n_true > 0 {
        tp as f64 / n_true as f64
    } else {
        0.0
    };
    let f1 = if p + r > 0.0 {
        2.0 * p * r / (p + r)
    } else {
        0.0
    };
    Prf {
        threshold,
        precision: p,
        recall: r,
        f1,
        tp,
        fp,
        fn_: n_true.saturating_sub(tp),
    }
}

/// The evaluation's result (printed as one JSON line).
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// Records per side.
    pub records: [usize; 2],
    /// True pairs in the truth file.
    pub true_pairs: u64,
    /// Candidate pairs compared (after blocking).
    pub pairs_compared: u64,
    /// Pairs each blocking rule produced (before de-duplication).
    pub pairs_per_rule: Vec<u64>,
    /// Share of true pairs among the candidates.
    pub blocking_recall: f64,
    /// At the schema's `match` threshold (every pair at or above).
    pub at_match: Prf,
    /// At the schema's `possible_match` threshold.
    pub at_possible_match: Prf,
    /// At the best-F1 threshold.
    pub best: Prf,
    /// One-to-one (each record's best partner, mutually), at `match` and at its best.
    pub one_to_one_at_match: Prf,
    /// One-to-one, best F1.
    pub one_to_one_best: Prf,
    /// The trained model (m, u per level, λ).
    pub model: super::model::Model,
    /// Seconds: reading, blocking, comparing, training, scoring, total (wall time of the run,
    /// without the metrics and the plot).
    pub seconds: std::collections::BTreeMap<String, f64>,
    /// Where the precision–recall curve was written.
    pub pr_curve: Option<String>,
}

/// Best F1 over thresholds for scored pairs (weight, truth), and the PR curve points.
fn sweep(mut scored: Vec<(f64, bool)>, n_true: u64) -> (Prf, Vec<(f64, f64)>) {
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut tp, mut fp) = (0u64, 0u64);
    let mut best = prf(f64::INFINITY, 0, 0, n_true);
    let mut curve = Vec::new();
    let mut i = 0;
    while i < scored.len() {
        let w = scored[i].0;
        while i < scored.len() && scored[i].0 == w {
            if scored[i].1 {
                tp += 1
            } else {
                fp += 1
            }
            i += 1;
        }
        let p = prf(w, tp, fp, n_true);
        curve.push((p.recall, p.precision));
        if p.f1 > best.f1 {
            best = p;
        }
    }
    (best, curve)
}

fn at(scored: &[(f64, bool)], t: f64, n_true: u64) -> Prf {
    let tp = scored.iter().filter(|(w, y)| *w >= t && *y).count() as u64;
    let fp = scored.iter().filter(|(w, y)| *w >= t && !*y).count() as u64;
    prf(t, tp, fp, n_true)
}

/// Run the evaluation.
///
/// `truth`: CSV whose first two columns are a left and a right record id of a true pair.
///
/// # Errors
/// [`LinkError`] when a file cannot be read or the schema does not fit the files.
pub fn eval(
    left: &Path,
    right: &Path,
    truth: &Path,
    schema: &Schema,
    plot: Option<PathBuf>,
) -> Result<EvalReport, LinkError> {
    let t0 = Instant::now();
    let mut secs = std::collections::BTreeMap::new();
    let (lt, rt) = rayon::join(|| Table::read_csv(left), || Table::read_csv(right));
    let (lt, rt) = (lt?, rt?);
    secs.insert("read".to_string(), t0.elapsed().as_secs_f64());
    let run = super::link_tables(schema, &lt, &rt)?;
    for (k, v) in &run.seconds {
        secs.insert(k.clone(), *v);
    }
    secs.insert("total".to_string(), t0.elapsed().as_secs_f64());

    // ---- scoring against the truth (not timed)
    let lid = lt
        .column(&schema.id)
        .ok_or_else(|| LinkError::Schema(format!("left file has no id column {:?}", schema.id)))?;
    let rid = rt
        .column(&schema.id)
        .ok_or_else(|| LinkError::Schema(format!("right file has no id column {:?}", schema.id)))?;
    let tt = Table::read_csv(truth)?;
    if tt.columns.len() < 2 {
        return Err(LinkError::Read {
            path: truth.display().to_string(),
            message: "needs two columns: left id, right id".into(),
        });
    }
    let truth: HashSet<(String, String)> = tt
        .rows
        .iter()
        .filter_map(|r| Some((r[0].clone()?, r[1].clone()?)))
        .collect();
    let n_true = truth.len() as u64;
    let is_true = |i: u32, j: u32| {
        let a = lt.rows[i as usize][lid].clone().unwrap_or_default();
        let b = rt.rows[j as usize][rid].clone().unwrap_or_default();
        truth.contains(&(a, b))
    };
    let scored: Vec<(f64, bool)> = run
        .pairs
        .iter()
        .zip(&run.weights)
        .map(|(&(i, j), &w)| (w, is_true(i, j)))
        .collect();
    let reached = scored.iter().filter(|s| s.1).count() as u64;
    let (best, curve) = sweep(scored.clone(), n_true);
    // one-to-one: pairs that are each other's best partner
    let mut best_l: Vec<f64> = vec![f64::NEG_INFINITY; lt.rows.len()];
    let mut best_r: Vec<f64> = vec![f64::NEG_INFINITY; rt.rows.len()];
    for (&(i, j), &w) in run.pairs.iter().zip(&run.weights) {
        best_l[i as usize] = best_l[i as usize].max(w);
        best_r[j as usize] = best_r[j as usize].max(w);
    }
    let one: Vec<(f64, bool)> = run
        .pairs
        .iter()
        .zip(&run.weights)
        .zip(&scored)
        .filter(|((p, w), _)| **w >= best_l[p.0 as usize] && **w >= best_r[p.1 as usize])
        .map(|(_, s)| *s)
        .collect();
    let (one_best, _) = sweep(one.clone(), n_true);
    let th = schema.thresholds;
    let pr_curve = match plot {
        Some(p) => {
            plot_curve(&p, &curve, &best)?;
            Some(p.display().to_string())
        }
        None => None,
    };
    Ok(EvalReport {
        records: [lt.rows.len(), rt.rows.len()],
        true_pairs: n_true,
        pairs_compared: run.pairs.len() as u64,
        pairs_per_rule: run.pairs_per_rule,
        blocking_recall: if n_true > 0 {
            reached as f64 / n_true as f64
        } else {
            0.0
        },
        at_match: at(&scored, th.match_weight, n_true),
        at_possible_match: at(&scored, th.possible_match, n_true),
        best,
        one_to_one_at_match: at(&one, th.match_weight, n_true),
        one_to_one_best: one_best,
        model: run.model,
        seconds: secs,
        pr_curve,
    })
}

/// Write the precision–recall curve (recall on x, precision on y) as SVG.
///
/// # Errors
/// [`LinkError::Write`] when the file cannot be written.
pub fn plot_curve(path: &Path, curve: &[(f64, f64)], best: &Prf) -> Result<(), LinkError> {
    use plotters::prelude::*;
    let err = |e: String| LinkError::Write {
        path: path.display().to_string(),
        message: e,
    };
    let root = SVGBackend::new(path, (640, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let lo = curve
        .iter()
        .map(|p| p.1)
        .fold(1.0f64, f64::min)
        .min(best.precision)
        .max(0.0);
    let y0 = (lo - 0.02).max(0.0);
    let mut chart = ChartBuilder::on(&root)
        .caption("precision-recall (hedui link eval)", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(0.0f64..1.0f64, y0..1.0f64)
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("recall")
        .y_desc("precision")
        .draw()
        .map_err(|e| err(e.to_string()))?;
    chart
        .draw_series(LineSeries::new(curve.iter().copied(), &BLUE))
        .map_err(|e| err(e.to_string()))?;
    chart
        .draw_series(std::iter::once(Circle::new(
            (best.recall, best.precision),
            4,
            RED.filled(),
        )))
        .map_err(|e| err(e.to_string()))?
        .label(format!(
            "best F1 {:.4} at {:.2} bits",
            best.f1, best.threshold
        ))
        .legend(|(x, y)| Circle::new((x, y), 4, RED.filled()));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerLeft)
        .draw()
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(())
}
