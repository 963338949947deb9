//! Configuration of `stylerl grpo` (TOML, unknown keys are errors).
use super::loss::StdScale;
use super::optim::AdamWConfig;
use super::schedule::ScheduleKind;
use crate::adapter::load::ModelSection;
use crate::adapter::lora::LoraConfig;
use crate::reward::RewardConfig;
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct GrpoConfig {
    /// metrics.jsonl, samples.jsonl, checkpoints/, adapter/.
    pub out_dir: PathBuf,
    /// The starting policy: base model, SFT-merged model, or base + `adapters` (frozen).
    pub model: ModelSection,
    pub data: PromptData,
    #[serde(default)]
    pub lora: LoraConfig,
    pub reward: RewardConfig,
    pub grpo: GrpoSection,
}

/// Inputs the policy rewrites.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct PromptData {
    pub train: PathBuf,
    #[serde(default = "d_field")]
    pub field: String,
    /// Use at most this many inputs (left out: all; 0 is refused, as it would leave none).
    #[serde(default)]
    pub limit: Option<usize>,
    /// The rewrite instruction (the same the SFT stage used).
    #[serde(default = "d_instruction")]
    pub instruction: String,
    /// Reference sentences shown in each prompt as style examples (0: the instruction alone).
    /// Each input gets its own seeded draw of this many, in `example_template`.
    #[serde(default)]
    pub examples: usize,
    /// The user turn when `examples` > 0: `{examples}` becomes one "- sentence" line per
    /// example, `{input}` the text (the prompt `evaluate` gives a prompted system).
    #[serde(default = "d_example_template")]
    pub example_template: String,
    #[serde(default)]
    pub example_seed: u64,
}

impl PromptData {
    /// Checks the example settings; errors name the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.examples > MAX_EXAMPLES {
            anyhow::bail!(
                "data.examples = {}: must be in 0..={MAX_EXAMPLES} (reference sentences shown in each prompt)",
                self.examples
            );
        }
        if self.examples > 0 {
            if !self.example_template.contains("{examples}")
                || !self.example_template.contains("{input}")
            {
                anyhow::bail!("data.example_template must contain {{examples}} and {{input}} (data.examples = {} shows reference sentences in it)", self.examples);
            }
            if self.instruction != super::sft_data::DEFAULT_INSTRUCTION {
                anyhow::bail!("data.instruction is not used when data.examples > 0: put the wording in data.example_template");
            }
        }
        Ok(())
    }

    /// The template the user turn is built from: the instruction, or the example template.
    pub fn prompt_template(&self) -> &str {
        match self.examples {
            0 => &self.instruction,
            _ => &self.example_template,
        }
    }
}

/// Most reference sentences a prompt may show (a long prompt costs every rollout).
pub const MAX_EXAMPLES: usize = 32;
fn d_example_template() -> String {
    super::example_prompts::DEFAULT_PROMPTED_TEMPLATE.into()
}
fn d_field() -> String {
    "text".into()
}
fn d_instruction() -> String {
    super::sft_data::DEFAULT_INSTRUCTION.into()
}

/// π_old's per-token log-probs: the policy that sampled the batch.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum OldLogprobs {
    /// The log-probs `generate` returned while sampling (same temperature, no extra pass).
    /// They equal a re-scoring up to float rounding (about 1e-6 in f32).
    #[default]
    Generation,
    /// One extra no-grad scoring pass before the first update, for bit-equal ratios of 1
    /// at the first epoch (worth it in bf16, where decode and training rounding differ more).
    Recompute,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct GrpoSection {
    /// Rollout batches (each followed by `ppo_epochs` optimizer steps).
    pub steps: u64,
    /// P: prompts a step.
    #[serde(default = "d_p")]
    pub prompts_per_step: usize,
    /// G: completions per prompt.
    #[serde(default = "d_g")]
    pub num_generations: usize,
    /// L_max: the generation limit and the constant of the loss normaliser.
    #[serde(default = "d_lmax")]
    pub max_completion_length: usize,
    #[serde(default = "d_temp")]
    pub temperature: f64,
    pub top_p: Option<f64>,
    pub top_k: Option<i64>,
    /// μ: optimizer steps over each rollout batch (one full-batch gradient each).
    #[serde(default = "d_mu")]
    pub ppo_epochs: usize,
    /// Sequences per forward/backward pass; does not change the gradient.
    #[serde(default = "d_micro")]
    pub micro_batch_size: usize,
    #[serde(default = "d_eps")]
    pub eps_low: f64,
    #[serde(default = "d_eps")]
    pub eps_high: f64,
    /// KL weight; 0 = no KL and no reference model (Dr.GRPO as in the method).
    #[serde(default)]
    pub beta: f64,
    #[serde(default)]
    pub std_scale: StdScale,
    /// Generate with the adapter merged into a cached copy of each weight (one matmul per
    /// layer instead of three); costs one extra copy of the linear weights in memory.
    #[serde(default = "d_true")]
    pub merge_for_generation: bool,
    /// Precision of those cached weights: f32, bf16 (half the bytes to stream a decode step;
    /// implies the merge), int8 (a quarter; needs `old_logprobs = "recompute"`) or auto
    /// (bf16 where the AVX-512 decode kernel runs). Training passes never use them; π_old
    /// from "generation" then carries bf16's rounding (about 0.01 nats a token,
    /// tests/precision_modes.rs), far inside the clip range.
    #[serde(default = "d_f32")]
    pub sampling_weights: String,
    /// Where π_old's log-probs come from (see [`OldLogprobs`]).
    #[serde(default)]
    pub old_logprobs: OldLogprobs,
    #[serde(default)]
    pub optimizer: AdamWConfig,
    #[serde(default = "d_sched")]
    pub schedule: ScheduleKind,
    #[serde(default)]
    pub warmup_steps: u64,
    #[serde(default = "d_clip")]
    pub max_grad_norm: f64,
    #[serde(default)]
    pub seed: u64,
    /// Train ternary (Bit-LoRA) adapters; `--bitlora` sets it too.
    #[serde(default)]
    pub bitlora: bool,
    #[serde(default = "d_every")]
    pub checkpoint_every: u64,
    #[serde(default = "d_keep")]
    pub keep_checkpoints: usize,
    /// Dump prompts, completions and reward parts every N steps (0: never).
    #[serde(default = "d_every")]
    pub sample_every: u64,
    #[serde(default = "d_nan")]
    pub nan_patience: u32,
}
fn d_true() -> bool {
    true
}
fn d_p() -> usize {
    2
}
fn d_g() -> usize {
    4
}
fn d_lmax() -> usize {
    64
}
fn d_temp() -> f64 {
    1.0
}
fn d_mu() -> usize {
    4
}
fn d_micro() -> usize {
    8
}
fn d_eps() -> f64 {
    0.2
}
fn d_sched() -> ScheduleKind {
    ScheduleKind::Constant
}
fn d_clip() -> f64 {
    1.0
}
fn d_every() -> u64 {
    10
}
fn d_keep() -> usize {
    2
}
fn d_f32() -> String {
    "f32".into()
}
fn d_nan() -> u32 {
    5
}

impl GrpoConfig {
    /// Every range, before anything is loaded; one line naming the key on failure.
    pub fn validate(&self) -> anyhow::Result<()> {
        use crate::config::check::*;
        let g = &self.grpo;
        self.model.validate("model")?;
        self.lora.validate()?;
        self.reward.validate()?;
        at_least_one("grpo.steps", g.steps)?;
        at_least_one("grpo.prompts_per_step", g.prompts_per_step as u64)?;
        at_least_one("grpo.num_generations", g.num_generations as u64)?;
        if g.num_generations < 2 {
            anyhow::bail!(
                "grpo.num_generations = {}: a completion's advantage is its reward minus its group's mean, so a group of one has advantage 0 and nothing is learned: use ≥ 2",
                g.num_generations
            );
        }
        if self.data.limit == Some(0) {
            anyhow::bail!(
                "data.limit = 0: no input would be used; leave it out to use every input"
            );
        }
        self.data.validate()?;
        let updates = g.steps.saturating_mul(g.ppo_epochs as u64);
        if g.warmup_steps > 0 && g.warmup_steps >= updates {
            anyhow::bail!(
                "grpo.warmup_steps = {} ≥ the run's {updates} optimizer steps (grpo.steps × grpo.ppo_epochs): the learning rate would never reach grpo.optimizer.lr; set warmup_steps below {updates}",
                g.warmup_steps
            );
        }
        at_least_one("grpo.max_completion_length", g.max_completion_length as u64)?;
        at_least_one("grpo.ppo_epochs", g.ppo_epochs as u64)?;
        at_least_one("grpo.micro_batch_size", g.micro_batch_size as u64)?;
        at_least_one("grpo.nan_patience", g.nan_patience as u64)?;
        // Sampling is never greedy in GRPO: the group needs different completions.
        temperature("grpo.temperature", g.temperature, false)?;
        top_p("grpo.top_p", g.top_p)?;
        top_k("grpo.top_k", g.top_k)?;
        unit_half_open("grpo.eps_low", g.eps_low)?;
        nonneg_finite("grpo.eps_high", g.eps_high)?;
        if g.eps_high > 1e6 {
            anyhow::bail!(
                "grpo.eps_high = {}: at most 1e6 (the ratio is clipped at 1 + eps_high; past a few units the clip never binds)",
                g.eps_high
            );
        }
        nonneg_finite("grpo.beta", g.beta)?;
        let sampling = crate::model::precision::Precision::parse_setting(
            "grpo.sampling_weights",
            &g.sampling_weights,
        )?;
        if sampling == crate::model::precision::Precision::Int8
            && g.old_logprobs == OldLogprobs::Generation
        {
            anyhow::bail!(
                "grpo.sampling_weights = int8 needs grpo.old_logprobs = \"recompute\": int8 sampling log-probs are off by ~0.03 nats a token on average and 0.2 at the 99th percentile (tests/precision_modes.rs), as wide as the clip range"
            );
        }
        g.optimizer.validate("grpo.optimizer")?;
        positive_finite("grpo.max_grad_norm", g.max_grad_norm)
    }
}
