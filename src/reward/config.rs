//! `RewardConfig`: the `[reward]` table of `configs/reward.toml` and of every GRPO config.
//!
//! Every field has a default, and unknown keys are errors (`deny_unknown_fields`), so a
//! typo in a weight name fails loudly. Reference paths are relative to the working
//! directory (run from the repository root).
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// How per-sentence contributions combine into R_style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aggregation {
    /// Σ over sentences of the kept best similarities (the default, docs/method.md#aggregation).
    Sum,
    /// The same sum divided by the number of sentences (dropped ones count as 0).
    Mean,
}

/// How the reward terms become the number GRPO centres per group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Normalise {
    /// The weighted sum of the terms (docs/method.md#r_total).
    None,
    /// Each term standardised within its group, then the weighted sum (reward::normalise).
    Group,
}

/// The reference sentences R_style may match (docs/method.md#anchored-style-targets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StyleTarget {
    /// Every reference sentence (the paper).
    All,
    /// Only the `neighbours` nearest references of each of the input's sentences.
    Neighbours,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RewardConfig {
    /// Reference text files; their sentences, in file order, are the reference set.
    pub reference: Vec<PathBuf>,
    /// `stylometric` or a sentence-transformers directory (see `encoder::load`).
    pub encoder: String,
    /// Device of a transformer encoder: `cpu`, `cuda`, `cuda:N` or `auto`.
    pub encoder_device: String,
    /// Sentences per encoder forward pass.
    pub encoder_batch_size: usize,
    pub aggregation: Aggregation,
    /// Which reference sentences a generated sentence is scored against (see reward::anchor).
    pub style_target: StyleTarget,
    /// With `style_target = "neighbours"`: nearest references kept per input sentence.
    pub neighbours: usize,
    /// Most generated-sentence embeddings kept between batches (0 disables the cache).
    pub cache_size: usize,
    pub weights: Weights,
    /// `none` (the paper) or `group`: standardise each term within its group before summing.
    pub normalise: Normalise,
    pub dropout: DropoutConfig,
    pub length: LengthConfig,
    pub entities: EntityConfig,
    pub punctuation: PunctuationConfig,
    pub rewrite: RewriteConfig,
    pub meaning: MeaningConfig,
    pub balance: BalanceConfig,
    pub facts: super::guards::FactsConfig,
    pub defects: super::guards::DefectsConfig,
    pub fluency: super::guards::FluencyConfig,
}

/// R_rewrite (off by default, the paper has no such term): a penalty on near-copies.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RewriteConfig {
    /// 0 disables it.
    pub weight: f64,
    /// Edit similarity above which the penalty starts (0 ≤ threshold < 1).
    pub threshold: f64,
}

/// R_meaning (off by default): a penalty when a content encoder says the meaning changed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MeaningConfig {
    /// 0 disables it (and the content encoder is not loaded).
    pub weight: f64,
    /// Cosine of input and output below which the penalty applies.
    pub threshold: f64,
    /// A sentence-transformers directory that measures content (all-MiniLM-L6-v2 does).
    pub encoder: String,
}

/// R_balance (off by default, not in the paper; reward::usage::Usage::log_ratios): each
/// generated sentence earns clip(ln(e_k / g_k), ±clip) for its closest reference k over all
/// references, where e_k and g_k are the shares of input and generated sentences closest to
/// k so far (decayed counts, `prior` pseudo-counts); R_balance is the mean over the text's
/// sentences. It is the policy-gradient reward of −KL(g ‖ e): it pulls the outputs' use of
/// the references towards the inputs', which is what style vector consistency compares.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BalanceConfig {
    /// 0 disables it.
    pub weight: f64,
    /// Largest |ln(e_k / g_k)| (a reference no input or no output has used yet is at ±clip).
    pub clip: f64,
    /// Per-batch decay of the running counts (0 = the last batch's counts only).
    pub decay: f64,
    /// Pseudo-count per reference, so a few early sentences set no extreme ratio.
    pub prior: f64,
}

impl Default for BalanceConfig {
    fn default() -> Self {
        BalanceConfig {
            weight: 0.0,
            clip: 2.0,
            decay: 0.9,
            prior: 1.0,
        }
    }
}

impl Default for RewriteConfig {
    fn default() -> Self {
        RewriteConfig {
            weight: 0.0,
            threshold: 0.8,
        }
    }
}

impl Default for MeaningConfig {
    fn default() -> Self {
        MeaningConfig {
            weight: 0.0,
            threshold: 0.75,
            encoder: "models/all-minilm-l6-v2".into(),
        }
    }
}

/// Weights of R_style, R_length and R_punctuation in R_total. R_ne_overlap carries its own
/// weight, `entities.weight` (w_ne in docs/method.md#r_ne_overlap), and enters R_total as is.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Weights {
    pub style: f64,
    pub length: f64,
    pub punctuation: f64,
}

/// How a dropout rate acts on a generated sentence's style contribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DropoutMode {
    /// A seeded draw drops the contribution with probability p (docs/method.md#dropout-modes),
    /// with the all-dropped safeguard. With `aggregation = "mean"` the safeguard makes a
    /// one-sentence text immune to dropout while a longer one is not, which rewards shortening.
    Sample,
    /// The contribution is weighted by its expectation 1 − p: the same mean incentive away
    /// from dominant references, no sampling noise, no safeguard, and neutral to sentence count.
    Expected,
    /// A dropped reference hands the sentence to its best surviving candidate, in expectation
    /// over independent drops (reward::dropout::expected_surviving_max): an over-used reference
    /// costs only its margin over the next, so under `aggregation = "mean"` deleting the
    /// sentence does not pay, where `expected` (a loss of p · cosine) made it pay.
    Fallback,
}

/// Where the dropout rates come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DropoutRates {
    /// Once per reference from its dominance among the reference sentences
    /// (docs/method.md#static-rates).
    Static,
    /// From the policy's own use of each reference against the inputs' (reward::usage):
    /// p_k = clip(1 − e_k / g_k, eps_min, eps_max), updated after every rollout batch.
    Usage,
}

/// Style reward dropout (docs/method.md#style-reward-dropout): p_i = clip((D_i / max D)^gamma,
/// eps_min, eps_max), or with `rates = "usage"` keyed on what the policy generates
/// (reward::usage).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DropoutConfig {
    pub enabled: bool,
    /// `sample` (the paper), `expected` or `fallback`.
    pub mode: DropoutMode,
    /// `static` (the paper) or `usage`.
    pub rates: DropoutRates,
    /// Usage rates: per-batch decay of the running counts (0 = this batch's counts only).
    pub decay: f64,
    /// Usage rates: pseudo-count per reference, so a few early sentences set no extreme rate.
    pub prior: f64,
    pub gamma: f64,
    pub eps_min: f64,
    pub eps_max: f64,
    /// Base seed; each batch draws from seed ⊕ step, so a run is reproducible.
    pub seed: u64,
}

/// How L_max for R_length is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LengthMode {
    /// L_max = ratio · input tokens + slack.
    Relative,
    /// L_max = max_tokens.
    Absolute,
}

/// R_length: DAPO soft overlong penalty. L_max is capped by max_completion_length either
/// way, and the cache zone is at most L_max wide.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LengthConfig {
    pub mode: LengthMode,
    pub max_tokens: usize,
    pub ratio: f64,
    pub slack: f64,
    /// Width L_cache of the soft zone below L_max, in tokens.
    pub cache: f64,
    pub max_completion_length: usize,
    /// Shortfall floor (0 = off, the paper): an output shorter than `min_ratio` × the input's
    /// tokens costs up to `short_weight`, linearly (reward::penalties::shortfall). Without it
    /// the policy met the rewrite penalty by deleting clauses instead of rewriting them.
    pub min_ratio: f64,
    pub short_weight: f64,
}

/// R_ne_overlap = weight · (F1(E_in, E_out) − 1).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EntityConfig {
    pub weight: f64,
}

/// R_punctuation: soft cutoff on the output's punctuation count at ratio · input count + slack.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PunctuationConfig {
    pub ratio: f64,
    pub slack: f64,
    /// Width of the soft zone below the limit, in punctuation characters.
    pub cache: f64,
}

impl Default for RewardConfig {
    fn default() -> Self {
        RewardConfig {
            reference: Vec::new(),
            encoder: "stylometric".into(),
            encoder_device: "cpu".into(),
            encoder_batch_size: 32,
            aggregation: Aggregation::Sum,
            style_target: StyleTarget::All,
            neighbours: 3,
            cache_size: 65536,
            weights: Weights::default(),
            normalise: Normalise::None,
            dropout: DropoutConfig::default(),
            length: LengthConfig::default(),
            entities: EntityConfig::default(),
            punctuation: PunctuationConfig::default(),
            rewrite: RewriteConfig::default(),
            meaning: MeaningConfig::default(),
            balance: BalanceConfig::default(),
            facts: Default::default(),
            defects: Default::default(),
            fluency: Default::default(),
        }
    }
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            style: 1.0,
            length: 1.0,
            punctuation: 1.0,
        }
    }
}

impl Default for DropoutConfig {
    fn default() -> Self {
        DropoutConfig {
            enabled: true,
            mode: DropoutMode::Sample,
            rates: DropoutRates::Static,
            decay: 0.9,
            prior: 1.0,
            gamma: 10.0,
            eps_min: 0.0,
            eps_max: 0.9,
            seed: 0,
        }
    }
}

impl Default for LengthConfig {
    fn default() -> Self {
        LengthConfig {
            mode: LengthMode::Relative,
            max_tokens: 256,
            ratio: 2.0,
            slack: 16.0,
            cache: 32.0,
            max_completion_length: 256,
            min_ratio: 0.0,
            short_weight: 1.0,
        }
    }
}

impl Default for EntityConfig {
    fn default() -> Self {
        EntityConfig { weight: 1.0 }
    }
}

impl Default for PunctuationConfig {
    fn default() -> Self {
        PunctuationConfig {
            ratio: 1.5,
            slack: 3.0,
            cache: 3.0,
        }
    }
}

impl RewardConfig {
    /// Checks ranges; each error names the key and the allowed values.
    pub fn validate(&self) -> Result<()> {
        let finite_nonneg = |name: &str, v: f64| -> Result<()> {
            if !(v.is_finite() && v >= 0.0) {
                bail!("reward.{name} = {v}: must be a finite number ≥ 0");
            }
            Ok(())
        };
        crate::config::check::device("reward.encoder_device", &self.encoder_device)?;
        finite_nonneg("dropout.gamma", self.dropout.gamma)?;
        finite_nonneg("dropout.prior", self.dropout.prior)?;
        if !(0.0..1.0).contains(&self.dropout.decay) {
            bail!(
                "reward.dropout.decay = {}: must be in [0, 1) (the share of the running counts kept per batch)",
                self.dropout.decay
            );
        }
        let d = &self.dropout;
        if !(0.0..=1.0).contains(&d.eps_min)
            || !(0.0..=1.0).contains(&d.eps_max)
            || d.eps_min > d.eps_max
        {
            bail!(
                "reward.dropout eps_min = {}, eps_max = {}: need 0 ≤ eps_min ≤ eps_max ≤ 1",
                d.eps_min,
                d.eps_max
            );
        }
        finite_nonneg("length.ratio", self.length.ratio)?;
        finite_nonneg("length.slack", self.length.slack)?;
        finite_nonneg("length.cache", self.length.cache)?;
        finite_nonneg("length.short_weight", self.length.short_weight)?;
        if !(0.0..=1.0).contains(&self.length.min_ratio) {
            bail!(
                "reward.length.min_ratio = {}: must be in [0, 1] (0 turns the shortfall floor off)",
                self.length.min_ratio
            );
        }
        if self.length.max_completion_length == 0 {
            bail!("reward.length.max_completion_length must be > 0");
        }
        finite_nonneg("punctuation.ratio", self.punctuation.ratio)?;
        finite_nonneg("punctuation.slack", self.punctuation.slack)?;
        finite_nonneg("punctuation.cache", self.punctuation.cache)?;
        for (k, v) in [
            ("weights.style", self.weights.style),
            ("weights.length", self.weights.length),
            ("weights.punctuation", self.weights.punctuation),
            ("entities.weight", self.entities.weight),
        ] {
            if !v.is_finite() {
                bail!("reward.{k} = {v}: must be finite");
            }
        }
        finite_nonneg("rewrite.weight", self.rewrite.weight)?;
        if !(0.0..1.0).contains(&self.rewrite.threshold) {
            bail!(
                "reward.rewrite.threshold = {}: must be in [0, 1)",
                self.rewrite.threshold
            );
        }
        finite_nonneg("meaning.weight", self.meaning.weight)?;
        finite_nonneg("facts.weight", self.facts.weight)?;
        finite_nonneg("defects.weight", self.defects.weight)?;
        finite_nonneg("fluency.weight", self.fluency.weight)?;
        finite_nonneg("fluency.margin", self.fluency.margin)?;
        if !(1..=256).contains(&self.fluency.batch_size) {
            bail!(
                "reward.fluency.batch_size = {}: use 1 to 256",
                self.fluency.batch_size
            );
        }
        if self.fluency.weight > 0.0 && self.fluency.model.trim().is_empty() {
            bail!("reward.fluency.model is empty: give the frozen base model directory");
        }
        if !(-1.0..=1.0).contains(&self.meaning.threshold) {
            bail!(
                "reward.meaning.threshold = {}: must be in [-1, 1]",
                self.meaning.threshold
            );
        }
        finite_nonneg("balance.weight", self.balance.weight)?;
        finite_nonneg("balance.prior", self.balance.prior)?;
        if !(self.balance.clip.is_finite() && self.balance.clip > 0.0) {
            bail!(
                "reward.balance.clip = {}: must be finite and > 0",
                self.balance.clip
            );
        }
        if !(0.0..1.0).contains(&self.balance.decay) {
            bail!(
                "reward.balance.decay = {}: must be in [0, 1) (the share of the running counts kept per batch)",
                self.balance.decay
            );
        }
        if self.meaning.weight > 0.0 && self.meaning.encoder.trim().is_empty() {
            bail!("reward.meaning.encoder is empty: name a content encoder directory, e.g. models/all-minilm-l6-v2");
        }
        if self.neighbours == 0 {
            bail!(
                "reward.neighbours = 0: must be ≥ 1 (nearest references kept per input sentence)"
            );
        }
        if self.encoder_batch_size == 0 {
            bail!("reward.encoder_batch_size must be > 0");
        }
        if self.encoder.trim().is_empty() {
            bail!(
                "reward.encoder is empty: use 'stylometric' or a sentence-transformers directory"
            );
        }
        Ok(())
    }
}
