//! From scored samples to one system's row of metrics (docs/method.md#evaluation-metrics).
//! Pure: the sentence matches come in already computed, so tests build them by hand.
use super::bootstrap::{Interval, Resamples};
use super::metrics::{
    average_style_similarity, edit_similarity, is_not_rewritten, style_vector_consistency,
    ConsistencySample,
};
use crate::reward::penalties::entity_f1;
use serde::Serialize;
use std::collections::BTreeMap;

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
    /// Mean cosine of input and output under the content encoder; `None` when not measured.
    pub meaning_kept: Option<f64>,
    /// Mean over outputs of output words / input words (inputs without words skipped).
    pub length_ratio_mean: Option<f64>,
    /// Every metric (keys in [`keys`]) as {mean, lo, hi}; empty until [`add_intervals`].
    pub intervals: BTreeMap<String, Interval>,
    /// Paired system − inputs differences (style similarity).
    pub minus_inputs: BTreeMap<String, Interval>,
    /// Paired system − baseline system differences, per metric; empty for the baseline
    /// itself and when no baseline is configured.
    pub minus_baseline: BTreeMap<String, Interval>,
    /// Style similarity of the same texts under each extra (judge) encoder.
    pub judge_encoders: Vec<JudgeEncoderMetrics>,
}

/// One extra scoring encoder's view of a system: style similarity of outputs and of the
/// inputs, and the paired differences.
#[derive(Debug, Clone, Serialize)]
pub struct JudgeEncoderMetrics {
    pub encoder: String,
    pub style_similarity: Option<Interval>,
    pub input_style_similarity: Option<Interval>,
    pub minus_inputs: Option<Interval>,
    pub minus_baseline: Option<Interval>,
}

/// Metric names, as used in `intervals`, `minus_baseline`, metrics.json and the table.
pub mod keys {
    pub const STYLE: &str = "style_similarity";
    pub const INPUT_STYLE: &str = "input_style_similarity";
    pub const NOT_REWRITTEN: &str = "not_rewritten_percent";
    pub const CONSISTENCY: &str = "style_consistency";
    pub const MEANING: &str = "meaning_kept";
    pub const ENTITY_F1: &str = "entity_f1";
    pub const WORDS: &str = "words";
    pub const INPUT_WORDS: &str = "input_words";
    pub const LENGTH_RATIO: &str = "length_ratio";
    pub const EDIT_SIMILARITY: &str = "edit_similarity";
    pub const TRUNCATED: &str = "truncated_percent";
}

/// One extra encoder's per-sample style similarity (mean over a text's sentences; `None`
/// for a text without sentences) of outputs and of inputs.
#[derive(Debug, Clone)]
pub struct JudgeSeries {
    pub encoder: String,
    pub output: Vec<Option<f64>>,
    pub input: Vec<Option<f64>>,
}

/// Everything the intervals are computed from: one value per input for each per-sample
/// metric, and the closest-reference indices for the corpus-level consistency.
#[derive(Debug, Clone)]
pub struct SampleSeries {
    /// (metric key, value per input); `None` where a sample has no value.
    pub per_sample: Vec<(&'static str, Vec<Option<f64>>)>,
    pub input_best: Vec<Vec<usize>>,
    pub output_best: Vec<Vec<usize>>,
    pub rewritten: Vec<bool>,
    pub judge: Vec<JudgeSeries>,
}

impl SampleSeries {
    pub fn get(&self, key: &str) -> Option<&[Option<f64>]> {
        self.per_sample
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_slice())
    }

    /// Style vector consistency recomputed over the (possibly repeated) samples `idx`.
    pub fn consistency_at(&self, idx: &[usize], n_refs: usize) -> Option<f64> {
        let cons: Vec<ConsistencySample> = idx
            .iter()
            .map(|&i| ConsistencySample {
                input_closest: &self.input_best[i],
                output_closest: &self.output_best[i],
                rewritten: self.rewritten[i],
            })
            .collect();
        style_vector_consistency(&cons, n_refs)
    }
}

/// Mean of a text's sentence similarities; `None` without sentences.
pub fn text_mean(sims: &[f32]) -> Option<f64> {
    (!sims.is_empty()).then(|| sims.iter().map(|&x| x as f64).sum::<f64>() / sims.len() as f64)
}

/// The per-sample series of one system. `meaning` holds one content cosine per sample when
/// a content encoder was run.
pub fn series(
    samples: &[ScoredSample],
    threshold: f64,
    meaning: Option<&[f64]>,
    judge: Vec<JudgeSeries>,
) -> SampleSeries {
    let rewritten: Vec<bool> = samples
        .iter()
        .map(|s| !is_not_rewritten(&s.input, &s.output, threshold))
        .collect();
    let col = |f: &dyn Fn(&ScoredSample) -> Option<f64>| samples.iter().map(f).collect();
    let mut per_sample: Vec<(&'static str, Vec<Option<f64>>)> = vec![
        (keys::STYLE, col(&|s| text_mean(&s.output_sim))),
        (keys::INPUT_STYLE, col(&|s| text_mean(&s.input_sim))),
        (
            keys::NOT_REWRITTEN,
            rewritten
                .iter()
                .map(|&r| Some(if r { 0.0 } else { 100.0 }))
                .collect(),
        ),
        (
            keys::ENTITY_F1,
            col(&|s| Some(pair_entity_f1(&s.input, &s.output))),
        ),
        (keys::WORDS, col(&|s| Some(word_count(&s.output) as f64))),
        (
            keys::INPUT_WORDS,
            col(&|s| Some(word_count(&s.input) as f64)),
        ),
        (
            keys::LENGTH_RATIO,
            col(&|s| {
                let w = word_count(&s.input);
                (w > 0).then(|| word_count(&s.output) as f64 / w as f64)
            }),
        ),
        (
            keys::EDIT_SIMILARITY,
            col(&|s| Some(edit_similarity(&s.input, &s.output))),
        ),
        (
            keys::TRUNCATED,
            col(&|s| Some(if s.stopped_at_eos { 0.0 } else { 100.0 })),
        ),
    ];
    if let Some(m) = meaning {
        per_sample.push((keys::MEANING, m.iter().map(|&x| Some(x)).collect()));
    }
    SampleSeries {
        per_sample,
        input_best: samples.iter().map(|s| s.input_best.clone()).collect(),
        output_best: samples.iter().map(|s| s.output_best.clone()).collect(),
        rewritten,
        judge,
    }
}

/// Fills the intervals of `m` from its series `s`: every per-sample metric and the
/// consistency, style similarity − inputs, and (when `base` is given, the baseline
/// system's series over the same inputs) each metric − the baseline's.
pub fn add_intervals(
    m: &mut SystemMetrics,
    s: &SampleSeries,
    base: Option<&SampleSeries>,
    rs: &Resamples,
    n_refs: usize,
) {
    for (k, v) in &s.per_sample {
        if let Some(iv) = rs.mean(v) {
            m.intervals.insert(k.to_string(), iv);
        }
        if let Some(bv) = base.and_then(|b| b.get(k)) {
            if let Some(iv) = rs.mean_diff(v, bv) {
                m.minus_baseline.insert(k.to_string(), iv);
            }
        }
    }
    // Consistency is a cosine of count vectors: drawing with replacement makes a resample's
    // vectors lumpier, so its bootstrap values sit mostly below the estimate (the percentile
    // interval is then shifted down; the estimate itself is on all inputs).
    if let Some(iv) = rs.interval(|idx| s.consistency_at(idx, n_refs)) {
        m.intervals.insert(keys::CONSISTENCY.into(), iv);
    }
    if let Some(b) = base {
        let d = rs
            .interval(|idx| Some(s.consistency_at(idx, n_refs)? - b.consistency_at(idx, n_refs)?));
        if let Some(iv) = d {
            m.minus_baseline.insert(keys::CONSISTENCY.into(), iv);
        }
    }
    let pairs = [(keys::STYLE, keys::INPUT_STYLE)];
    for (ko, ki) in pairs.iter().chain(super::quality::MINUS_INPUTS) {
        if let (Some(o), Some(i)) = (s.get(ko), s.get(ki)) {
            if let Some(iv) = rs.mean_diff(o, i) {
                m.minus_inputs.insert(ko.to_string(), iv);
            }
        }
    }
    m.meaning_kept = m.intervals.get(keys::MEANING).map(|iv| iv.mean);
    m.length_ratio_mean = m.intervals.get(keys::LENGTH_RATIO).map(|iv| iv.mean);
    m.judge_encoders = s
        .judge
        .iter()
        .map(|j| {
            let bj = base.and_then(|b| b.judge.iter().find(|x| x.encoder == j.encoder));
            JudgeEncoderMetrics {
                encoder: j.encoder.clone(),
                style_similarity: rs.mean(&j.output),
                input_style_similarity: rs.mean(&j.input),
                minus_inputs: rs.mean_diff(&j.output, &j.input),
                minus_baseline: bj.and_then(|b| rs.mean_diff(&j.output, &b.output)),
            }
        })
        .collect();
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
        meaning_kept: None,
        length_ratio_mean: None,
        intervals: BTreeMap::new(),
        minus_inputs: BTreeMap::new(),
        minus_baseline: BTreeMap::new(),
        judge_encoders: Vec::new(),
    }
}
