//! `stylerl plot RUN_DIR`: training metrics (metrics.jsonl) as SVG line charts, one panel a
//! quantity, all panels in one grid so a run can be read at a glance.
use anyhow::{bail, Context, Result};
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

/// Panels: a title and the metric keys drawn in it (missing keys are skipped, empty panels dropped).
const PANELS: &[(&str, &[&str])] = &[
    ("reward and its std", &["reward", "reward_std"]),
    (
        "reward components",
        &[
            "rewards/style",
            "rewards/length",
            "rewards/ne_overlap",
            "rewards/punctuation",
            "rewards/rewrite",
            "rewards/meaning",
            "rewards/balance",
            "rewards/facts",
            "rewards/defects",
            "rewards/fluency",
        ],
    ),
    (
        "completion length",
        &[
            "completion_length/mean",
            "completion_length/min",
            "completion_length/max",
        ],
    ),
    (
        "clipping",
        &[
            "completion_length/clipped_ratio",
            "clip_ratio/low",
            "clip_ratio/high",
            "frac_reward_zero_std",
        ],
    ),
    (
        "style similarity std",
        &["dynamics/inner", "dynamics/outer"],
    ),
    ("loss", &["loss", "eval_loss"]),
    ("grad norm", &["grad_norm"]),
    ("learning rate", &["lr"]),
];

/// Steps and values beyond ±this are left out of the charts: axis ranges and tick steps
/// computed from ±1e308 overflow to infinity, and the tick loop would then never end.
pub const PLOTTABLE: f64 = 1e100;

/// Reads metrics.jsonl into key → [(step, value)], numeric fields only; non-finite values
/// and those beyond ±[`PLOTTABLE`] are left out (with a warning naming how many).
pub fn read_metrics(path: &Path) -> Result<BTreeMap<String, Vec<(f64, f64)>>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {}: is it a run directory?", path.display()))?;
    let mut series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    let mut left_out = 0usize;
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{} line {}: not JSON", path.display(), n + 1))?;
        let Some(step) = v.get("step").and_then(|s| s.as_f64()) else {
            continue;
        };
        let Some(obj) = v.as_object() else {
            continue;
        };
        for (k, x) in obj {
            let Some(x) = x.as_f64() else {
                continue;
            };
            if k == "step" {
                continue;
            }
            if x.abs() <= PLOTTABLE && step.abs() <= PLOTTABLE {
                series.entry(k.clone()).or_default().push((step, x));
            } else {
                left_out += 1;
            }
        }
    }
    if left_out > 0 {
        tracing::warn!(
            "{}: {left_out} value(s) non-finite or beyond ±{PLOTTABLE:e} left out of the plot",
            path.display()
        );
    }
    Ok(series)
}

/// Draws every non-empty panel into one SVG grid; returns the number of panels.
pub fn plot_series(series: &BTreeMap<String, Vec<(f64, f64)>>, out: &Path) -> Result<usize> {
    let panels: Vec<(&str, Vec<&str>)> = PANELS
        .iter()
        .map(|(t, keys)| {
            (
                *t,
                keys.iter()
                    .copied()
                    // A reward term that stays 0 is off in this run: not drawn, so every
                    // drawn line is a term that counted (and is named in the legend).
                    .filter(|k| {
                        series.get(*k).is_some_and(|s| {
                            !s.is_empty()
                                && (!k.starts_with("rewards/") || s.iter().any(|p| p.1 != 0.0))
                        })
                    })
                    .collect::<Vec<_>>(),
            )
        })
        .filter(|(_, keys)| !keys.is_empty())
        .collect();
    if panels.is_empty() {
        bail!("no known metrics to plot (expected keys like reward, loss, lr)");
    }
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let cols = 2usize;
    let rows = panels.len().div_ceil(cols);
    let root = SVGBackend::new(out, (1100, 320 * rows as u32)).into_drawing_area();
    root.fill(&WHITE)
        .map_err(|e| anyhow::anyhow!("plot: {e}"))?;
    let areas = root.split_evenly((rows, cols));
    for ((title, keys), area) in panels.iter().zip(areas) {
        draw_panel(&area, title, keys, series).map_err(|e| anyhow::anyhow!("plot {title}: {e}"))?;
    }
    root.present()
        .map_err(|e| anyhow::anyhow!("plot: cannot write {}: {e}", out.display()))?;
    Ok(panels.len())
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    keys: &[&str],
    series: &BTreeMap<String, Vec<(f64, f64)>>,
) -> Result<(), Box<dyn std::error::Error + 'static>>
where
    DB::ErrorType: 'static,
{
    let pts = keys.iter().flat_map(|k| series[*k].iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    // A flat series (e.g. a constant lr) gets a range proportional to its value, so tick
    // labels stay distinct.
    let pad = ((y1 - y0) * 0.08)
        .max(y1.abs().max(y0.abs()) * 0.1)
        .max(1e-12);
    // Headroom above the data for the legend (about one line of it per series), so the
    // legend box sits over empty space instead of the curves.
    let span = (y1 - y0).max(pad);
    let top = y1 + pad + span * (0.14 * keys.len() as f64 + 0.06);
    // Only finite ranges reach plotters (its tick loop never ends on an infinite one).
    if ![x0, x1, y0 - pad, top].iter().all(|v| v.is_finite()) {
        return Err(format!("axis range {x0}..{x1} × {y0}..{y1} is not finite").into());
    }
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(56)
        .build_cartesian_2d(x0..x1, (y0 - pad)..top)?;
    // Float noise around zero ("6.9e-18") reads as 0.
    let zero = (top - (y0 - pad)).abs() * 1e-6;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_label_formatter(&|v| tick_label(if v.abs() < zero { 0.0 } else { *v }))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for (i, k) in keys.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(
                series[*k].iter().copied(),
                color.stroke_width(2),
            ))?
            .label(*k)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 13))
        .draw()?;
    Ok(())
}

/// Three significant digits; scientific notation for small magnitudes (e.g. learning rates).
fn tick_label(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else if a >= 0.01 {
        format!("{v:.3}")
    } else {
        format!("{v:.2e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plots_known_metrics_and_refuses_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("metrics.jsonl");
        let lines: Vec<String> = (0..5)
            .map(|s| serde_json::json!({"step": s, "reward": s as f64 * 0.1, "rewards/style": 0.5, "lr": 1e-4, "note": "x"}).to_string())
            .collect();
        std::fs::write(&m, lines.join("\n")).unwrap();
        let series = read_metrics(&m).unwrap();
        assert_eq!(series["reward"].len(), 5);
        assert!(!series.contains_key("note"));
        let out = dir.path().join("p.svg");
        assert_eq!(plot_series(&series, &out).unwrap(), 3);
        let svg = std::fs::read_to_string(&out).unwrap();
        assert!(svg.contains("rewards/style") && svg.contains("<svg"));

        assert_eq!(
            (
                tick_label(3e-4),
                tick_label(40.0),
                tick_label(-0.25),
                tick_label(1234.0)
            ),
            (
                "3.00e-4".into(),
                "40.0".into(),
                "-0.250".into(),
                "1234".into()
            )
        );

        std::fs::write(&m, "{\"step\": 1, \"other\": 2}\n").unwrap();
        assert!(plot_series(&read_metrics(&m).unwrap(), &out).is_err());
    }
}
