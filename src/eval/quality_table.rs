//! The reader-check tables (Markdown under the style table in table.md, and
//! reader_checks.csv): fluency, facts and defects per system, each cell "estimate [lo, hi]".
use super::aggregate::SystemMetrics;
use super::quality::qkeys as q;
use super::table::cell;
use anyhow::Result;

/// (key, header, digits) of the facts-and-fluency table; Δ columns follow fluency and defective.
const FACTS: &[(&str, &str, usize)] = &[
    (q::FACTS_KEPT, "facts kept %", 1),
    (q::FACTS_INVENTED, "facts invented %", 1),
    (q::NEGATION_FLIP, "negation flips %", 1),
    (q::NAMES_INVENTED, "names invented %", 1),
    (q::ENTITY_PRECISION, "entity precision", 3),
    (q::ENTITY_RECALL, "entity recall", 3),
];

const DEFECTS: &[(&str, &str)] = &[
    (q::REPETITION, "repetition %"),
    (q::ASSISTANT, "assistant speech %"),
    (q::COPIED, "copied reference %"),
    (q::EMPTY, "empty %"),
    (q::CUT_OFF, "cut off %"),
    (q::FACT_CHANGED, "fact changed %"),
    (q::DEFECTIVE, "defective %"),
];

fn table(head: Vec<String>, body: Vec<Vec<String>>) -> String {
    super::table::render(&head, &body)
}

/// The two reader-check tables with their legends; empty when no row has reader checks.
pub fn markdown(
    rows: &[SystemMetrics],
    baseline: Option<&str>,
    fluency_model: Option<&str>,
) -> String {
    if rows.iter().all(|m| !m.intervals.contains_key(q::DEFECTIVE)) {
        return String::new();
    }
    let is_base = |m: &SystemMetrics| baseline == Some(m.name.as_str());
    let delta = |m: &SystemMetrics, k: &str, d: usize| {
        if is_base(m) {
            "baseline".to_string()
        } else {
            cell(m.minus_baseline.get(k), d, true)
        }
    };
    let mut head: Vec<String> = vec!["system".into(), "fluency NLL".into(), "Δ vs inputs".into()];
    if let Some(b) = baseline {
        head.push(format!("Δ vs {b}"));
    }
    head.extend(FACTS.iter().map(|(_, h, _)| h.to_string()));
    let mut body = Vec::new();
    if let Some(first) = rows.first() {
        let mut r = vec![
            "inputs".to_string(),
            cell(first.intervals.get(q::INPUT_FLUENCY), 3, false),
            "—".into(),
        ];
        if baseline.is_some() {
            r.push("—".into());
        }
        r.extend(FACTS.iter().map(|_| "—".to_string()));
        body.push(r);
    }
    for m in rows {
        let mut r = vec![
            m.name.clone(),
            cell(m.intervals.get(q::FLUENCY), 3, false),
            cell(m.minus_inputs.get(q::FLUENCY), 3, true),
        ];
        if baseline.is_some() {
            r.push(delta(m, q::FLUENCY, 3));
        }
        r.extend(
            FACTS
                .iter()
                .map(|(k, _, d)| cell(m.intervals.get(*k), *d, false)),
        );
        body.push(r);
    }
    let fl = match fluency_model {
        Some(p) => format!("fluency NLL = mean per-token negative log-likelihood of the text alone under the frozen base model {p} (lower = more ordinary text; a guard, not a style score)"),
        None => "fluency not measured (set [fluency] model)".into(),
    };
    let mut out = String::from("Reader checks: fluency and facts\n\n");
    out.push_str(&table(head, body));
    out.push_str(&format!(
        "\n{fl}; facts = numbers, amounts, dates, weekdays and times of the input (kept % over inputs that have any); invented / flips / names: % of outputs with at least one.\n\n"
    ));
    let mut head: Vec<String> = vec!["system".into()];
    head.extend(DEFECTS.iter().map(|(_, h)| h.to_string()));
    if let Some(b) = baseline {
        head.push(format!("defective Δ vs {b}"));
    }
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|m| {
            let mut r = vec![m.name.clone()];
            r.extend(
                DEFECTS
                    .iter()
                    .map(|(k, _)| cell(m.intervals.get(*k), 1, false)),
            );
            if baseline.is_some() {
                r.push(delta(m, q::DEFECTIVE, 1));
            }
            r
        })
        .collect();
    out.push_str("Reader checks: defects (% of outputs)\n\n");
    out.push_str(&table(head, body));
    out.push_str("\ndefective = any defect or any changed fact (a number, date or time lost or invented, a negation flipped, a name invented); detectors in src/text/defects.rs and src/text/facts.rs, held to precision and recall ≥ 0.8 on datasets/eval/defects.jsonl.\n");
    out
}

/// Every reader-check key, in CSV column order.
const CSV_KEYS: &[&str] = &[
    q::FLUENCY,
    q::INPUT_FLUENCY,
    q::FACTS_KEPT,
    q::FACTS_INVENTED,
    q::NEGATION_FLIP,
    q::NAMES_INVENTED,
    q::ENTITY_PRECISION,
    q::ENTITY_RECALL,
    q::REPETITION,
    q::ASSISTANT,
    q::COPIED,
    q::EMPTY,
    q::CUT_OFF,
    q::FACT_CHANGED,
    q::DEFECTIVE,
];

/// reader_checks.csv: per system, each key's estimate, lo, hi, then its paired difference
/// to the baseline (estimate, lo, hi); empty cells where undefined.
pub fn csv(rows: &[SystemMetrics]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut head = vec!["system".to_string()];
    for k in CSV_KEYS {
        for s in [
            "",
            "_lo",
            "_hi",
            "_minus_baseline",
            "_minus_baseline_lo",
            "_minus_baseline_hi",
        ] {
            head.push(format!("{k}{s}"));
        }
    }
    w.write_record(&head)?;
    for m in rows {
        let mut r = vec![m.name.clone()];
        for k in CSV_KEYS {
            for iv in [m.intervals.get(*k), m.minus_baseline.get(*k)] {
                match iv {
                    Some(i) => r.extend([i.mean.to_string(), i.lo.to_string(), i.hi.to_string()]),
                    None => r.extend([String::new(), String::new(), String::new()]),
                }
            }
        }
        w.write_record(&r)?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}
