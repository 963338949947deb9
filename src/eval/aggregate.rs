//! From scored samples to one system's row of metrics (shared/SPEC.md, "Evaluation").
//! Pure: the sentence matches come in already computed, so tests build them by hand.
use super::metrics::{
    average_style_similarity, edit_similarity, is_not_rewritten, style_vector_consistency,
    ConsistencySample,
};
use crate::reward::penalties::entity_f1;
use serde::Serialize;

/// One input and one system's output, with each text's per-sentence closest reference
/// index and similarity.
#[derive(Debug, Clone)]
pub struct ScoredSample {
    pub input: String,
    pub output: String,
    pub input_best: Vec<usize>,
    pub input_sim: Vec<f32>,
    pub output_best: Vec<usize>,
    pub output_sim: Vec<f32>,
    /// The completion ended with an EOS token (false: cut at max_new_tokens).
    pub stopped_at_eos: bool,
}

/// The judge column of a system.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", content = "value", rename_all = "snake_case")]
pub enum JudgeCell {
    /// No `judge.url` configured.
    NoEndpoint,
    /// This system is the baseline the others are compared with.
    Baseline,
    /// % of items where the judge preferred this system over the baseline.
    Percent(f64),
    /// The endpoint failed; the message is in metrics.json.
    Error(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct SystemMetrics {
    pub name: String,
    pub n: usize,
    /// Mean over outputs of the mean best similarity of their sentences (texts without
    /// sentences skipped); `None` when no output has a sentence.
    pub style_similarity: Option<f64>,
    /// The same over the inputs (shown in parentheses).
    pub input_style_similarity: Option<f64>,
    pub not_rewritten_percent: f64,
    /// Cosine of the inputs' and outputs' closest-reference count vectors over rewritten
    /// samples only; `None` when undefined (no rewritten sample, or an empty vector).
    pub style_consistency: Option<f64>,
    pub judge: JudgeCell,
    /// Mean output length in whitespace-separated words.
    pub words_mean: f64,
    /// Mean entity F1 between input and output (R_ne_overlap's F1; 1 = every entity kept).
    pub entity_f1_mean: f64,
    /// Mean normalised edit similarity of output to input.
    pub edit_similarity_mean: f64,
    /// % of outputs cut at max_new_tokens.
    pub truncated_percent: f64,
}

/// Entity F1 of one input/output pair, over entity normal forms.
pub fn pair_entity_f1(input: &str, output: &str) -> f64 {
    let (a, b) = crate::text::entity_pair(input, output);
    let norms = |e: &[crate::text::Entity]| e.iter().map(|x| x.norm.clone()).collect::<Vec<_>>();
    entity_f1(&norms(&a), &norms(&b))
}

/// Number of whitespace-separated words.
pub fn word_count(s: &str) -> usize {
    s.split_whitespace().count()
}

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let (mut s, mut n) = (0.0, 0usize);
    for x in xs {
        s += x;
        n += 1;
    }
    if n == 0 {
        0.0
    } else {
        s / n as f64
    }
}

/// Every metric of one system except the judge (left as `NoEndpoint`; the caller fills it).
pub fn aggregate(
    name: &str,
    samples: &[ScoredSample],
    n_refs: usize,
    threshold: f64,
) -> SystemMetrics {
    let out_sims: Vec<Vec<f32>> = samples.iter().map(|s| s.output_sim.clone()).collect();
    let in_sims: Vec<Vec<f32>> = samples.iter().map(|s| s.input_sim.clone()).collect();
    let rewritten: Vec<bool> = samples
        .iter()
        .map(|s| !is_not_rewritten(&s.input, &s.output, threshold))
        .collect();
    let cons: Vec<ConsistencySample> = samples
        .iter()
        .zip(&rewritten)
        .map(|(s, &r)| ConsistencySample {
            input_closest: &s.input_best,
            output_closest: &s.output_best,
            rewritten: r,
        })
        .collect();
    let n = samples.len();
    let pct = |k: usize| {
        if n == 0 {
            0.0
        } else {
            100.0 * k as f64 / n as f64
        }
    };
    SystemMetrics {
        name: name.to_string(),
        n,
        style_similarity: average_style_similarity(&out_sims),
        input_style_similarity: average_style_similarity(&in_sims),
        not_rewritten_percent: pct(rewritten.iter().filter(|r| !**r).count()),
        style_consistency: style_vector_consistency(&cons, n_refs),
        judge: JudgeCell::NoEndpoint,
        words_mean: mean(samples.iter().map(|s| word_count(&s.output) as f64)),
        entity_f1_mean: mean(samples.iter().map(|s| pair_entity_f1(&s.input, &s.output))),
        edit_similarity_mean: mean(samples.iter().map(|s| edit_similarity(&s.input, &s.output))),
        truncated_percent: pct(samples.iter().filter(|s| !s.stopped_at_eos).count()),
    }
}
