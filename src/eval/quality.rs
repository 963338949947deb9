//! What a reader checks besides style (docs/method.md#reader-checks): fluency under the
//! frozen base model, facts kept, and defects, as per-sample series so every one gets a
//! paired bootstrap interval like the other metrics.
//!
//! Pure: fluency arrives as already computed per-text NLLs, so tests call this without a model.
use crate::text::defects::{find_defects, Defects, ReferenceRuns};
use crate::text::facts::{check_facts, FactCheck};
use serde_json::{json, Value};
use std::collections::HashSet;

/// Reader-check metric keys (per-sample means; the `_percent` ones are 0/100 per sample).
pub mod qkeys {
    pub const FLUENCY: &str = "fluency_nll";
    pub const INPUT_FLUENCY: &str = "input_fluency_nll";
    pub const FACTS_KEPT: &str = "facts_kept_percent";
    pub const FACTS_INVENTED: &str = "facts_invented_percent";
    pub const NEGATION_FLIP: &str = "negation_flip_percent";
    pub const NAMES_INVENTED: &str = "names_invented_percent";
    pub const ENTITY_PRECISION: &str = "entity_precision";
    pub const ENTITY_RECALL: &str = "entity_recall";
    pub const REPETITION: &str = "repetition_percent";
    pub const ASSISTANT: &str = "assistant_percent";
    pub const COPIED: &str = "copied_reference_percent";
    pub const EMPTY: &str = "empty_percent";
    pub const CUT_OFF: &str = "cut_off_percent";
    pub const FACT_CHANGED: &str = "fact_changed_percent";
    pub const DEFECTIVE: &str = "defective_percent";
}

/// One output's reader checks.
#[derive(Debug, Clone)]
pub struct Checked {
    pub facts: FactCheck,
    pub defects: Defects,
    /// Share of the output's entities (all kinds) that the input has; `None` without any.
    pub entity_precision: Option<f64>,
    /// Share of the input's entities that the output keeps; `None` when the input has none.
    pub entity_recall: Option<f64>,
}

impl Checked {
    /// Any defect or any changed fact.
    pub fn defective(&self) -> bool {
        self.defects.any() || self.facts.any_change()
    }
}

/// Entity precision and recall over distinct normal forms of every entity kind.
pub fn entity_precision_recall(input: &str, output: &str) -> (Option<f64>, Option<f64>) {
    let (a, b) = crate::text::entity_pair(input, output);
    let sa: HashSet<String> = a.into_iter().map(|e| e.norm).collect();
    let sb: HashSet<String> = b.into_iter().map(|e| e.norm).collect();
    let both = sa.intersection(&sb).count() as f64;
    (
        (!sb.is_empty()).then(|| both / sb.len() as f64),
        (!sa.is_empty()).then(|| both / sa.len() as f64),
    )
}

/// The reader checks of one output.
pub fn check(
    input: &str,
    output: &str,
    refs: &ReferenceRuns,
    stopped_at_eos: Option<bool>,
) -> Checked {
    let (p, r) = entity_precision_recall(input, output);
    Checked {
        facts: check_facts(input, output),
        defects: find_defects(input, output, refs, stopped_at_eos),
        entity_precision: p,
        entity_recall: r,
    }
}

fn pct(b: bool) -> Option<f64> {
    Some(if b { 100.0 } else { 0.0 })
}

/// Per-sample series of the reader checks, ready to append to a system's
/// `SampleSeries::per_sample`. `fluency`/`input_fluency`: per-text mean NLL (or `None` when
/// no fluency model was configured).
pub fn series(
    checked: &[Checked],
    fluency: Option<(&[Option<f64>], &[Option<f64>])>,
) -> Vec<(&'static str, Vec<Option<f64>>)> {
    let col = |f: &dyn Fn(&Checked) -> Option<f64>| checked.iter().map(f).collect::<Vec<_>>();
    let mut out: Vec<(&'static str, Vec<Option<f64>>)> = Vec::new();
    if let Some((o, i)) = fluency {
        out.push((qkeys::FLUENCY, o.to_vec()));
        out.push((qkeys::INPUT_FLUENCY, i.to_vec()));
    }
    out.extend([
        (
            qkeys::FACTS_KEPT,
            col(&|c| c.facts.kept_share().map(|x| 100.0 * x)),
        ),
        (
            qkeys::FACTS_INVENTED,
            col(&|c| pct(c.facts.number_invented())),
        ),
        (qkeys::NEGATION_FLIP, col(&|c| pct(c.facts.negation_flip()))),
        (
            qkeys::NAMES_INVENTED,
            col(&|c| pct(c.facts.name_invented())),
        ),
        (qkeys::ENTITY_PRECISION, col(&|c| c.entity_precision)),
        (qkeys::ENTITY_RECALL, col(&|c| c.entity_recall)),
        (qkeys::REPETITION, col(&|c| pct(c.defects.repetition))),
        (qkeys::ASSISTANT, col(&|c| pct(c.defects.assistant))),
        (qkeys::COPIED, col(&|c| pct(c.defects.copied_reference))),
        (qkeys::EMPTY, col(&|c| pct(c.defects.empty))),
        (qkeys::CUT_OFF, col(&|c| pct(c.defects.truncated))),
        (qkeys::FACT_CHANGED, col(&|c| pct(c.facts.any_change()))),
        (qkeys::DEFECTIVE, col(&|c| pct(c.defective()))),
    ]);
    out
}

/// The per-output record of the reader checks, for outputs.jsonl.
pub fn record(c: &Checked, fluency: Option<f64>) -> Value {
    json!({
        "fluency_nll": fluency,
        "facts": c.facts,
        "entity_precision": c.entity_precision,
        "entity_recall": c.entity_recall,
        "defects": c.defects,
        "defective": c.defective(),
    })
}

/// Keys whose paired difference to the inputs is reported (fluency only: the other checks
/// compare an output with its input already).
pub const MINUS_INPUTS: &[(&str, &str)] = &[(qkeys::FLUENCY, qkeys::INPUT_FLUENCY)];
