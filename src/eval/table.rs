//! The results table as Markdown (printed and written to table.md) and CSV (table.csv).
//! Undefined values print as "n/a"; the judge column says "no endpoint" without a judge.
use super::aggregate::{JudgeCell, SystemMetrics};
use anyhow::Result;

/// Column headers, in order; the judge header names the baseline.
pub fn headers(judge_baseline: &str) -> Vec<String> {
    let judge = if judge_baseline.is_empty() {
        "judge preference %".to_string()
    } else {
        format!("judge preference vs {judge_baseline} %")
    };
    vec![
        "system".into(),
        "style similarity (inputs)".into(),
        "not rewritten %".into(),
        "style vector consistency".into(),
        judge,
        "words".into(),
        "entity F1".into(),
    ]
}

fn opt(v: Option<f64>, digits: usize) -> String {
    match v {
        Some(x) => format!("{x:.digits$}"),
        None => "n/a".into(),
    }
}

fn judge_text(j: &JudgeCell) -> String {
    match j {
        JudgeCell::NoEndpoint => "no endpoint".into(),
        JudgeCell::Baseline => "baseline".into(),
        JudgeCell::Percent(p) => format!("{p:.1}"),
        JudgeCell::Error(_) => "error".into(),
    }
}

/// One row of display strings.
pub fn row(m: &SystemMetrics) -> Vec<String> {
    vec![
        m.name.clone(),
        format!(
            "{} ({})",
            opt(m.style_similarity, 3),
            opt(m.input_style_similarity, 3)
        ),
        format!("{:.1}", m.not_rewritten_percent),
        opt(m.style_consistency, 3),
        judge_text(&m.judge),
        format!("{:.1}", m.words_mean),
        format!("{:.3}", m.entity_f1_mean),
    ]
}

/// A Markdown table with padded columns.
pub fn markdown(rows: &[SystemMetrics], judge_baseline: &str) -> String {
    let head = headers(judge_baseline);
    let body: Vec<Vec<String>> = rows.iter().map(row).collect();
    let width = |c: usize| {
        body.iter()
            .map(|r| r[c].chars().count())
            .chain([head[c].chars().count()])
            .max()
            .unwrap_or(3)
            .max(3)
    };
    let widths: Vec<usize> = (0..head.len()).map(width).collect();
    let line = |cells: &[String]| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, &w)| format!("{c:<w$}"))
            .collect();
        format!("| {} |", parts.join(" | "))
    };
    let mut out = line(&head);
    out.push('\n');
    let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
    out.push_str(&format!("|-{}-|\n", rule.join("-|-")));
    for r in &body {
        out.push_str(&line(r));
        out.push('\n');
    }
    out
}

/// CSV with raw numbers: empty cells where a value is undefined; the judge column holds a
/// number or its status ("no endpoint", "baseline", "error").
pub fn csv(rows: &[SystemMetrics]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "system",
        "style_similarity",
        "input_style_similarity",
        "not_rewritten_percent",
        "style_vector_consistency",
        "judge_preference_percent",
        "words_mean",
        "entity_f1_mean",
        "edit_similarity_mean",
        "truncated_percent",
        "n",
    ])?;
    let num = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    for m in rows {
        let judge = match &m.judge {
            JudgeCell::Percent(p) => p.to_string(),
            other => judge_text(other),
        };
        w.write_record([
            m.name.clone(),
            num(m.style_similarity),
            num(m.input_style_similarity),
            m.not_rewritten_percent.to_string(),
            num(m.style_consistency),
            judge,
            m.words_mean.to_string(),
            m.entity_f1_mean.to_string(),
            m.edit_similarity_mean.to_string(),
            m.truncated_percent.to_string(),
            m.n.to_string(),
        ])?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}
