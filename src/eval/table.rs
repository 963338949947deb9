//! The results table as Markdown (printed and written to table.md) and CSV (table.csv).
//!
//! Markdown: one row for the inputs themselves, then one per system; every metric cell is
//! "estimate [lo, hi]" with its 95 % paired bootstrap interval, and a legend line under the
//! table says how the intervals were made and which encoders scored what. Undefined values
//! print as "n/a"; the judge column says "no endpoint" without a judge.
use super::aggregate::{keys, JudgeCell, SystemMetrics};
use super::bootstrap::Interval;
use anyhow::Result;

/// What the table needs besides the rows.
#[derive(Debug, Clone, Default)]
pub struct TableOptions {
    /// The LLM judge's baseline system ("" without a judge endpoint).
    pub judge_baseline: String,
    /// The system the Δ vs baseline column compares with.
    pub baseline: Option<String>,
    /// Extra scoring encoders, one pair of columns each.
    pub judge_encoders: Vec<String>,
    pub n_inputs: usize,
    pub resamples: usize,
    /// The content encoder of meaning kept; `None`: not measured.
    pub meaning_encoder: Option<String>,
    /// The encoder behind "style similarity" (the `[reward]` one).
    pub style_encoder: String,
}

/// A short column label for an encoder spec: the last path component.
pub fn encoder_label(spec: &str) -> String {
    let t = spec.trim_end_matches(['/', '\\']);
    t.rsplit(['/', '\\']).next().unwrap_or(t).to_string()
}

/// Column headers, in order.
pub fn headers(o: &TableOptions) -> Vec<String> {
    let judge = if o.judge_baseline.is_empty() {
        "judge preference %".to_string()
    } else {
        format!("judge preference vs {} %", o.judge_baseline)
    };
    let mut h: Vec<String> = vec![
        "system".into(),
        "style similarity".into(),
        "Δ vs inputs".into(),
    ];
    if let Some(b) = &o.baseline {
        h.push(format!("Δ vs {b}"));
    }
    h.extend([
        "not rewritten %".into(),
        "style vector consistency".into(),
        "meaning kept".into(),
        "entity F1".into(),
        "words".into(),
        "length ratio".into(),
        judge,
    ]);
    for e in &o.judge_encoders {
        let l = encoder_label(e);
        h.push(format!("{l} similarity"));
        h.push(format!("{l} Δ vs inputs"));
    }
    h
}

fn opt(v: Option<f64>, digits: usize) -> String {
    match v {
        Some(x) => format!("{x:.digits$}"),
        None => "n/a".into(),
    }
}

/// "0.512 [0.490, 0.533]"; differences carry an explicit sign ("+0.031 [+0.010, +0.052]").
pub fn cell(iv: Option<&Interval>, digits: usize, signed: bool) -> String {
    let Some(iv) = iv else {
        return "n/a".into();
    };
    let f = |x: f64| {
        if signed {
            format!("{x:+.digits$}")
        } else {
            format!("{x:.digits$}")
        }
    };
    format!("{} [{}, {}]", f(iv.mean), f(iv.lo), f(iv.hi))
}

fn judge_text(j: &JudgeCell) -> String {
    match j {
        JudgeCell::NoEndpoint => "no endpoint".into(),
        JudgeCell::Baseline => "baseline".into(),
        JudgeCell::Percent(p) => format!("{p:.1}"),
        JudgeCell::Error(_) => "error".into(),
    }
}

/// One system's row of display strings. Without intervals (no bootstrap run) cells fall
/// back to the point values.
pub fn row(m: &SystemMetrics, o: &TableOptions) -> Vec<String> {
    let iv = |k: &str| m.intervals.get(k);
    let point = |k: &str, v: Option<f64>, d: usize| match iv(k) {
        Some(i) => cell(Some(i), d, false),
        None => opt(v, d),
    };
    let mut r = vec![
        m.name.clone(),
        point(keys::STYLE, m.style_similarity, 3),
        cell(m.minus_inputs.get(keys::STYLE), 3, true),
    ];
    if let Some(b) = &o.baseline {
        r.push(if &m.name == b {
            "baseline".into()
        } else {
            cell(m.minus_baseline.get(keys::STYLE), 3, true)
        });
    }
    let meaning = match (iv(keys::MEANING), &o.meaning_encoder) {
        (Some(i), _) => cell(Some(i), 3, false),
        (None, None) => "not measured".into(),
        (None, Some(_)) => "n/a".into(),
    };
    r.extend([
        point(keys::NOT_REWRITTEN, Some(m.not_rewritten_percent), 1),
        point(keys::CONSISTENCY, m.style_consistency, 3),
        meaning,
        point(keys::ENTITY_F1, Some(m.entity_f1_mean), 3),
        point(keys::WORDS, Some(m.words_mean), 1),
        point(keys::LENGTH_RATIO, m.length_ratio_mean, 2),
        judge_text(&m.judge),
    ]);
    for e in &o.judge_encoders {
        let j = m.judge_encoders.iter().find(|j| &j.encoder == e);
        r.push(cell(j.and_then(|j| j.style_similarity.as_ref()), 3, false));
        r.push(cell(j.and_then(|j| j.minus_inputs.as_ref()), 3, true));
    }
    r
}

/// The inputs' own row: their style similarity (both encoders) and length; "—" where a
/// metric compares an output with its input.
pub fn inputs_row(m: &SystemMetrics, o: &TableOptions) -> Vec<String> {
    let dash = || "—".to_string();
    let mut r = vec![
        "inputs".into(),
        match m.intervals.get(keys::INPUT_STYLE) {
            Some(i) => cell(Some(i), 3, false),
            None => opt(m.input_style_similarity, 3),
        },
        dash(),
    ];
    if o.baseline.is_some() {
        r.push(dash());
    }
    r.extend([dash(), dash(), dash(), dash()]);
    r.push(cell(m.intervals.get(keys::INPUT_WORDS), 1, false));
    r.extend([dash(), dash()]);
    for e in &o.judge_encoders {
        let j = m.judge_encoders.iter().find(|j| &j.encoder == e);
        r.push(cell(
            j.and_then(|j| j.input_style_similarity.as_ref()),
            3,
            false,
        ));
        r.push(dash());
    }
    r
}

/// The line under the table that says what the brackets are and who scored what.
pub fn legend(o: &TableOptions) -> String {
    let meaning = match &o.meaning_encoder {
        Some(e) => format!("meaning kept = cosine of input and output by {e}"),
        None => "meaning kept not measured (no content encoder: set [meaning] encoder)".into(),
    };
    let judges = if o.judge_encoders.is_empty() {
        String::new()
    } else {
        format!(
            "; also scored by {}",
            o.judge_encoders
                .iter()
                .map(|e| encoder_label(e))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    format!(
        "[lo, hi]: 95 % paired bootstrap, {} inputs, {} resamples; Δ = system − inputs (or − baseline) on the same inputs; style similarity by {}{judges}; {meaning}.",
        o.n_inputs, o.resamples, o.style_encoder
    )
}

/// A Markdown table with padded columns, an inputs row first, and the legend line.
pub fn markdown(rows: &[SystemMetrics], o: &TableOptions) -> String {
    let head = headers(o);
    let mut body: Vec<Vec<String>> = Vec::new();
    if let Some(first) = rows.first() {
        body.push(inputs_row(first, o));
    }
    body.extend(rows.iter().map(|m| row(m, o)));
    let mut out = render(&head, &body);
    out.push('\n');
    out.push_str(&legend(o));
    out.push('\n');
    out
}

/// Header, rule and rows of a Markdown table, each column padded to its widest cell.
pub fn render(head: &[String], body: &[Vec<String>]) -> String {
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
        format!("| {} |\n", parts.join(" | "))
    };
    let mut out = line(head);
    let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
    out.push_str(&format!("|-{}-|\n", rule.join("-|-")));
    for r in body {
        out.push_str(&line(r));
    }
    out
}

/// The interval columns of table.csv: (metric key, csv prefix).
const CSV_INTERVALS: &[(&str, &str)] = &[
    (keys::STYLE, "style_similarity"),
    (keys::INPUT_STYLE, "input_style_similarity"),
    (keys::NOT_REWRITTEN, "not_rewritten_percent"),
    (keys::CONSISTENCY, "style_vector_consistency"),
    (keys::MEANING, "meaning_kept"),
    (keys::ENTITY_F1, "entity_f1"),
    (keys::WORDS, "words"),
    (keys::LENGTH_RATIO, "length_ratio"),
];

/// CSV with raw numbers: empty cells where a value is undefined; the judge column holds a
/// number or its status ("no endpoint", "baseline", "error"). The point values come first
/// (as before intervals existed), then lo/hi of each interval, the paired differences,
/// and each judge encoder's similarity.
pub fn csv(rows: &[SystemMetrics]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut head: Vec<String> = [
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
        "meaning_kept",
        "length_ratio_mean",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for (_, p) in CSV_INTERVALS {
        head.push(format!("{p}_lo"));
        head.push(format!("{p}_hi"));
    }
    for d in [
        "style_similarity_minus_inputs",
        "style_similarity_minus_baseline",
    ] {
        head.extend([d.to_string(), format!("{d}_lo"), format!("{d}_hi")]);
    }
    // Judge encoders differ by config; every row lists the same ones, so the first row names them.
    let judges: Vec<String> = rows
        .first()
        .map(|m| m.judge_encoders.iter().map(|j| j.encoder.clone()).collect())
        .unwrap_or_default();
    for e in &judges {
        let l = encoder_label(e);
        for k in [
            "similarity",
            "input_similarity",
            "minus_inputs",
            "minus_baseline",
        ] {
            head.extend([
                format!("{l}_{k}"),
                format!("{l}_{k}_lo"),
                format!("{l}_{k}_hi"),
            ]);
        }
    }
    w.write_record(&head)?;
    let num = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    let three = |iv: Option<&Interval>| -> [String; 3] {
        match iv {
            Some(i) => [i.mean.to_string(), i.lo.to_string(), i.hi.to_string()],
            None => Default::default(),
        }
    };
    for m in rows {
        let judge = match &m.judge {
            JudgeCell::Percent(p) => p.to_string(),
            other => judge_text(other),
        };
        let mut r = vec![
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
            num(m.meaning_kept),
            num(m.length_ratio_mean),
        ];
        for (k, _) in CSV_INTERVALS {
            let [_, lo, hi] = three(m.intervals.get(*k));
            r.extend([lo, hi]);
        }
        r.extend(three(m.minus_inputs.get(keys::STYLE)));
        r.extend(three(m.minus_baseline.get(keys::STYLE)));
        for e in &judges {
            let j = m.judge_encoders.iter().find(|j| &j.encoder == e);
            for iv in [
                j.and_then(|j| j.style_similarity.as_ref()),
                j.and_then(|j| j.input_style_similarity.as_ref()),
                j.and_then(|j| j.minus_inputs.as_ref()),
                j.and_then(|j| j.minus_baseline.as_ref()),
            ] {
                r.extend(three(iv));
            }
        }
        w.write_record(&r)?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}
