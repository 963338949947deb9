//! `chart.svg` beside table.md: one panel per key metric, a point per system with its 95 %
//! interval as an error bar, and the inputs' level as a dashed line where one exists (style
//! similarity under each encoder; length ratio 1). Same look as `stylerl plot` (plot.rs).
use super::aggregate::{keys, SystemMetrics};
use super::bootstrap::Interval;
use super::table::{encoder_label, TableOptions};
use anyhow::{bail, Context, Result};
use plotters::prelude::*;
use std::path::Path;

/// One panel: a title, each system's interval (None: undefined for that system) and the
/// optional dashed reference level.
pub struct Panel {
    pub title: String,
    pub points: Vec<Option<Interval>>,
    pub level: Option<f64>,
}

/// The panels drawn for these rows; panels where no system has a value are left out.
pub fn panels(rows: &[SystemMetrics], o: &TableOptions) -> Vec<Panel> {
    let get = |k: &str| -> Vec<Option<Interval>> {
        rows.iter().map(|m| m.intervals.get(k).copied()).collect()
    };
    let input_style = rows
        .first()
        .and_then(|m| m.intervals.get(keys::INPUT_STYLE))
        .map(|i| i.mean);
    let mut out = vec![
        Panel {
            title: format!("style similarity ({}); dashed: inputs", o.style_encoder),
            points: get(keys::STYLE),
            level: input_style,
        },
        Panel {
            title: "not rewritten %".into(),
            points: get(keys::NOT_REWRITTEN),
            level: None,
        },
        Panel {
            title: "style vector consistency".into(),
            points: get(keys::CONSISTENCY),
            level: None,
        },
        Panel {
            title: "meaning kept".into(),
            points: get(keys::MEANING),
            level: None,
        },
        Panel {
            title: "entity F1".into(),
            points: get(keys::ENTITY_F1),
            level: None,
        },
        Panel {
            title: "length ratio (output / input words); dashed: 1".into(),
            points: get(keys::LENGTH_RATIO),
            level: Some(1.0),
        },
    ];
    for e in &o.judge_encoders {
        let pick = |m: &SystemMetrics| m.judge_encoders.iter().find(|j| &j.encoder == e).cloned();
        out.push(Panel {
            title: format!("style similarity ({}); dashed: inputs", encoder_label(e)),
            points: rows
                .iter()
                .map(|m| pick(m).and_then(|j| j.style_similarity))
                .collect(),
            level: rows
                .first()
                .and_then(pick)
                .and_then(|j| j.input_style_similarity)
                .map(|i| i.mean),
        });
    }
    out.retain(|p| p.points.iter().any(|x| x.is_some()));
    out
}

/// Writes the chart; returns the number of panels.
pub fn draw(rows: &[SystemMetrics], o: &TableOptions, out: &Path) -> Result<usize> {
    let ps = panels(rows, o);
    if ps.is_empty() {
        bail!("chart: no metric has a value to draw");
    }
    let names: Vec<String> = rows.iter().map(|m| m.name.clone()).collect();
    draw_panels(&ps, &names, 2, out)?;
    Ok(ps.len())
}

/// Draws `ps` in a grid of `cols` columns, 1100 px wide, each panel's points at the x
/// positions labelled `names`; creates the file's folder.
pub fn draw_panels(ps: &[Panel], names: &[String], cols: usize, out: &Path) -> Result<()> {
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let cols = cols.max(1);
    let nrows = ps.len().div_ceil(cols);
    let root = SVGBackend::new(out, (1100, 300 * nrows as u32)).into_drawing_area();
    root.fill(&WHITE)
        .map_err(|e| anyhow::anyhow!("chart: {e}"))?;
    for (p, area) in ps.iter().zip(root.split_evenly((nrows, cols))) {
        draw_panel(&area, p, names).map_err(|e| anyhow::anyhow!("chart {}: {e}", p.title))?;
    }
    root.present()
        .map_err(|e| anyhow::anyhow!("chart: cannot write {}: {e}", out.display()))?;
    Ok(())
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    p: &Panel,
    names: &[String],
) -> Result<(), Box<dyn std::error::Error + 'static>>
where
    DB::ErrorType: 'static,
{
    let (mut y0, mut y1) = (f64::MAX, f64::MIN);
    for iv in p.points.iter().flatten() {
        y0 = y0.min(iv.lo).min(iv.mean);
        y1 = y1.max(iv.hi).max(iv.mean);
    }
    if let Some(l) = p.level {
        y0 = y0.min(l);
        y1 = y1.max(l);
    }
    // Zero-width data (e.g. 0 % everywhere) still needs a visible range.
    let pad = ((y1 - y0) * 0.1)
        .max(y1.abs().max(y0.abs()) * 0.05)
        .max(1e-3);
    let k = names.len();
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, ("sans-serif", 16))
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(56)
        .build_cartesian_2d(-0.5..(k as f64 - 0.5), (y0 - pad)..(y1 + pad))?;
    // Systems sit at integer x; ticks at half steps are left unlabelled.
    let label = |v: &f64| {
        let i = v.round();
        if (v - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < k {
            names[i as usize].clone()
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .x_labels(2 * k + 2)
        .x_label_formatter(&label)
        .disable_x_mesh()
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    if let Some(l) = p.level {
        chart.draw_series(DashedLineSeries::new(
            [(-0.5, l), (k as f64 - 0.5, l)],
            6,
            4,
            BLACK.mix(0.6).stroke_width(1),
        ))?;
    }
    for (i, iv) in p.points.iter().enumerate() {
        let Some(iv) = iv else { continue };
        let color = Palette99::pick(i).to_rgba();
        let x = i as f64;
        chart.draw_series(std::iter::once(ErrorBar::new_vertical(
            x,
            iv.lo,
            iv.mean,
            iv.hi,
            color.stroke_width(2),
            12,
        )))?;
        chart.draw_series(std::iter::once(Circle::new(
            (x, iv.mean),
            4,
            color.filled(),
        )))?;
    }
    Ok(())
}
