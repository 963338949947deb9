//! The `stylerl evaluate` config: held-out data, the `[reward]` table (reference + encoder),
//! generation settings, an optional judge, and the systems to compare.
//!
//! Every table denies unknown keys. Paths are relative to the working directory (run from
//! the repository root). Systems whose model or adapter directories are missing fail before
//! anything is loaded, with one line naming each missing path and the command that makes it
//! (the system's `created_by`).
use super::judge::JudgeConfig;
use crate::adapter::load::ModelSection;
use crate::reward::RewardConfig;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    /// Results go to `results/<name>/` (or `out_dir` when given).
    pub name: String,
    /// Overrides `results/<name>`.
    pub out_dir: Option<PathBuf>,
    pub data: EvalData,
    pub reward: RewardConfig,
    #[serde(default)]
    pub generation: GenerationSection,
    /// Outputs whose normalised edit similarity to the input is ≥ this count as not rewritten.
    #[serde(default = "d_threshold")]
    pub not_rewritten_threshold: f64,
    #[serde(default)]
    pub judge: JudgeConfig,
    /// A system every other one is compared with (paired differences with intervals).
    pub baseline: Option<String>,
    #[serde(default)]
    pub bootstrap: BootstrapSection,
    #[serde(default)]
    pub meaning: MeaningSection,
    #[serde(default)]
    pub fluency: FluencySection,
    /// Extra encoders (specs as for `reward.encoder`) that score the same outputs for style
    /// similarity, so that hacking the training encoder shows. Empty: none.
    #[serde(default)]
    pub judge_encoders: Vec<String>,
    pub systems: Vec<SystemConfig>,
}
fn d_threshold() -> f64 {
    DEFAULT_NOT_REWRITTEN
}
/// The default not-rewritten threshold (also `rewrite --best-of`'s copy check).
pub const DEFAULT_NOT_REWRITTEN: f64 = 0.95;

/// `[bootstrap]`: the paired bootstrap behind every interval.
#[derive(Deserialize, Serialize, Debug, Clone)]
#[serde(default, deny_unknown_fields)]
pub struct BootstrapSection {
    /// Resamples of the held-out inputs (≥ 100; docs/method.md#bootstrap-intervals uses 2000).
    pub resamples: usize,
    pub seed: u64,
}
impl Default for BootstrapSection {
    fn default() -> Self {
        BootstrapSection {
            resamples: 2000,
            seed: 0,
        }
    }
}

/// The content encoder used when `[meaning] encoder` is not given and it exists.
pub const DEFAULT_MEANING_ENCODER: &str = "models/all-minilm-l6-v2";

/// `[meaning]`: the content encoder of "meaning kept".
#[derive(Deserialize, Debug, Clone, Default)]
#[serde(default, deny_unknown_fields)]
pub struct MeaningSection {
    /// An encoder spec, or "none" to skip. Unset: DEFAULT_MEANING_ENCODER if that directory
    /// exists, else none.
    pub encoder: Option<String>,
}
impl MeaningSection {
    /// The encoder to load, or `None` to skip the metric.
    pub fn resolved(&self) -> Option<String> {
        match self.encoder.as_deref() {
            Some("none") => None,
            Some(e) => Some(e.to_string()),
            None => Path::new(DEFAULT_MEANING_ENCODER)
                .is_dir()
                .then(|| DEFAULT_MEANING_ENCODER.to_string()),
        }
    }
}

/// The frozen base model used when `[fluency] model` is not given and it exists.
pub const DEFAULT_FLUENCY_MODEL: &str = "models/smollm2-135m-instruct";

/// `[fluency]`: the frozen base model (no adapters) whose mean per-token NLL of each text is
/// the fluency guard (docs/method.md#fluency).
#[derive(Deserialize, Debug, Clone)]
#[serde(default, deny_unknown_fields)]
pub struct FluencySection {
    /// A model directory, or "none" to skip. Unset: DEFAULT_FLUENCY_MODEL if it exists.
    pub model: Option<String>,
    /// Texts scored per forward pass (1..=256).
    pub batch_size: usize,
}
impl Default for FluencySection {
    fn default() -> Self {
        FluencySection {
            model: None,
            batch_size: 16,
        }
    }
}
impl FluencySection {
    /// The model directory to load, or `None` to skip the metric.
    pub fn resolved(&self) -> Option<PathBuf> {
        match self.model.as_deref() {
            Some("none") => None,
            Some(m) => Some(PathBuf::from(m)),
            None => Path::new(DEFAULT_FLUENCY_MODEL)
                .is_dir()
                .then(|| PathBuf::from(DEFAULT_FLUENCY_MODEL)),
        }
    }
}

/// `[data]`: the held-out inputs.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct EvalData {
    /// JSONL, JSON, CSV, Parquet or plain text (see `data::load_texts`).
    pub heldout: PathBuf,
    /// Field / column holding the text.
    #[serde(default = "d_field")]
    pub field: String,
    /// Use only the first `limit` inputs (file order).
    pub limit: Option<usize>,
}
fn d_field() -> String {
    "text".into()
}

/// `[generation]`: one completion per input, seeded. Every key has a default.
#[derive(Deserialize, Serialize, Debug, Clone)]
#[serde(default, deny_unknown_fields)]
pub struct GenerationSection {
    pub max_new_tokens: usize,
    pub temperature: f64,
    pub top_p: Option<f64>,
    pub seed: u64,
    /// Prompts per generation batch. Each input's random stream is keyed by its place in the
    /// length-sorted order, so outputs depend on the seed, not on the batch size.
    pub batch_size: usize,
    /// Argmax decoding (temperature and top_p are then unused).
    pub greedy: bool,
    /// Systems generated at once, each on one libtorch thread (1: one after another on the
    /// configured threads). On 2 cores, 2 jobs beat 2 threads: a decode step is too small
    /// to keep two threads busy.
    pub jobs: usize,
}
impl Default for GenerationSection {
    fn default() -> Self {
        GenerationSection {
            max_new_tokens: 128,
            temperature: 0.7,
            top_p: Some(0.9),
            seed: 0,
            batch_size: 8,
            greedy: false,
            jobs: 1,
        }
    }
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SystemKind {
    /// The base model shown K reference sentences as style examples ("direct prompting").
    Prompted,
    /// A trained system prompted exactly as in training: user_turn(instruction, input).
    Model,
}

/// How the K style examples of a prompted system are picked from the reference sentences.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ExampleSelection {
    /// K distinct sentences drawn with a seeded RNG (`example_seed`), shown in reference order.
    #[default]
    Random,
    /// The first K sentences of the reference.
    First,
    /// Input i draws its own K with seed `example_seed + i`: the prompts of a run trained with
    /// `data.examples` (whose `example_seed` is the run's `data.example_seed`).
    #[serde(rename = "per_input")]
    PerInput,
}

/// One `[[systems]]` entry.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct SystemConfig {
    pub name: String,
    pub kind: SystemKind,
    pub model: ModelSection,
    /// Prompted: how many reference sentences to show.
    #[serde(default = "d_examples")]
    pub examples: usize,
    #[serde(default)]
    pub example_selection: ExampleSelection,
    #[serde(default)]
    pub example_seed: u64,
    /// Prompted: a template with `{examples}` and `{input}`; model: the instruction put
    /// before the input (default: the training instruction, `sft_data::DEFAULT_INSTRUCTION`).
    pub instruction: Option<String>,
    /// The command that creates this system's files, quoted when they are missing.
    pub created_by: Option<String>,
    /// Rewrites sampled per input; the one kept is the most faithful, in `select::pick`'s
    /// order (docs/method.md#best-of-n). 1: the one sample as drawn.
    #[serde(default = "d_best_of")]
    pub best_of: usize,
}
fn d_best_of() -> usize {
    1
}
/// The most rewrites `best_of` may sample per input.
pub const MAX_BEST_OF: usize = 32;
impl SystemConfig {
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            SystemKind::Prompted => "prompted",
            SystemKind::Model => "model",
        }
    }
}

fn d_examples() -> usize {
    8
}

/// The default prompted-system template (shared with runs that train on example prompts).
pub use crate::train::example_prompts::DEFAULT_PROMPTED_TEMPLATE;

impl EvalConfig {
    /// Checks values; every error names the key.
    pub fn validate(&self) -> Result<()> {
        if self.name.trim().is_empty() || self.name.contains(['/', '\\']) {
            bail!(
                "name = '{}': give a plain folder name (results go to results/<name>/)",
                self.name
            );
        }
        if !(0.0..=1.0).contains(&self.not_rewritten_threshold) {
            bail!(
                "not_rewritten_threshold = {}: must be in [0, 1]",
                self.not_rewritten_threshold
            );
        }
        let g = &self.generation;
        if g.batch_size == 0 || g.max_new_tokens == 0 {
            bail!("generation.batch_size and generation.max_new_tokens must be ≥ 1");
        }
        if !(1..=64).contains(&g.jobs) {
            bail!(
                "generation.jobs = {}: must be between 1 and 64 (systems generated at once)",
                g.jobs
            );
        }
        crate::config::check::temperature("generation.temperature", g.temperature, g.greedy)?;
        crate::config::check::top_p("generation.top_p", g.top_p)?;
        if self.data.limit == Some(0) {
            bail!("data.limit = 0: leave it out to use every input");
        }
        if self.systems.is_empty() {
            bail!("no [[systems]]: list at least one system to evaluate");
        }
        let mut seen = std::collections::HashSet::new();
        for s in &self.systems {
            if !seen.insert(s.name.as_str()) {
                bail!("two systems are named '{}': names must be unique", s.name);
            }
            if !(1..=MAX_BEST_OF).contains(&s.best_of) {
                bail!(
                    "system '{}': best_of = {}: use 1 to {MAX_BEST_OF} (rewrites sampled per input)",
                    s.name,
                    s.best_of
                );
            }
            if s.kind == SystemKind::Prompted {
                if s.examples == 0 {
                    bail!("system '{}': examples must be ≥ 1", s.name);
                }
                if let Some(t) = &s.instruction {
                    if !t.contains("{input}") || !t.contains("{examples}") {
                        bail!(
                            "system '{}': instruction must contain {{examples}} and {{input}}",
                            s.name
                        );
                    }
                }
            }
        }
        self.judge.validate()?;
        if !(100..=1_000_000).contains(&self.bootstrap.resamples) {
            bail!(
                "bootstrap.resamples = {}: use 100 to 1000000 (2000 or more for reported intervals)",
                self.bootstrap.resamples
            );
        }
        if !(1..=256).contains(&self.fluency.batch_size) {
            bail!(
                "fluency.batch_size = {}: use 1 to 256",
                self.fluency.batch_size
            );
        }
        if self
            .fluency
            .model
            .as_deref()
            .is_some_and(|e| e.trim().is_empty())
        {
            bail!("fluency.model is empty: give the base model directory or \"none\"");
        }
        if let Some(b) = &self.baseline {
            if !seen.contains(b.as_str()) {
                let all: Vec<&str> = self.systems.iter().map(|s| s.name.as_str()).collect();
                bail!(
                    "baseline = '{b}': must name one of the systems ({})",
                    all.join(", ")
                );
            }
        }
        if let Some(e) = self.judge_encoders.iter().find(|e| e.trim().is_empty()) {
            bail!("judge_encoders has an empty entry '{e}': give encoder specs such as \"stylometric\" or a model directory");
        }
        if self
            .meaning
            .encoder
            .as_deref()
            .is_some_and(|e| e.trim().is_empty())
        {
            bail!("meaning.encoder is empty: give a content encoder directory or \"none\"");
        }
        if self.judge.url.is_some() && !seen.contains(self.judge.baseline.as_str()) {
            bail!(
                "judge.baseline = '{}': must name one of the systems",
                self.judge.baseline
            );
        }
        Ok(())
    }

    pub fn out_dir(&self) -> PathBuf {
        self.out_dir
            .clone()
            .unwrap_or_else(|| Path::new("results").join(&self.name))
    }

    /// Keeps only the named systems (all when `only` is empty); unknown names are errors.
    pub fn select_systems(&mut self, only: &[String]) -> Result<()> {
        if only.is_empty() {
            return Ok(());
        }
        for n in only {
            if !self.systems.iter().any(|s| &s.name == n) {
                let all: Vec<&str> = self.systems.iter().map(|s| s.name.as_str()).collect();
                bail!(
                    "--systems: no system named '{n}' (the config has: {})",
                    all.join(", ")
                );
            }
        }
        // A baseline left out by --systems cannot be compared with: say so, and go on
        // without the Δ vs baseline column rather than fail a partial re-run.
        if let Some(b) = &self.baseline {
            if self.systems.iter().any(|s| &s.name == b) && !only.contains(b) {
                tracing::warn!(
                    "baseline '{b}' is not among --systems: no differences to it are reported (add it to --systems to get them)"
                );
                self.baseline = None;
            }
        }
        self.systems.retain(|s| only.contains(&s.name));
        Ok(())
    }
}

/// The directory part of an adapter spec `PATH[:WEIGHT]`.
fn adapter_path(spec: &str) -> &str {
    match spec.rsplit_once(':') {
        Some((p, w)) if w.parse::<f64>().is_ok() => p,
        _ => spec,
    }
}

/// Paths a system needs that do not exist: the model's config.json and each adapter's
/// adapter_config.json.
pub fn missing_paths(s: &SystemConfig) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if !s.model.path.join("config.json").is_file() {
        out.push(s.model.path.clone());
    }
    for a in &s.model.adapters {
        let p = PathBuf::from(adapter_path(a));
        if !p.join("adapter_config.json").is_file() {
            out.push(p);
        }
    }
    out
}

/// Fails with one line listing every missing system file and how to create it.
pub fn check_systems_exist(systems: &[SystemConfig]) -> Result<()> {
    let mut problems = Vec::new();
    for s in systems {
        let miss = missing_paths(s);
        if miss.is_empty() {
            continue;
        }
        let paths: Vec<String> = miss.iter().map(|p| p.display().to_string()).collect();
        let how = match &s.created_by {
            Some(c) => format!("create it with `{c}`"),
            None => "train it first or fix the path".to_string(),
        };
        problems.push(format!(
            "system '{}' needs {} which does not exist: {how}",
            s.name,
            paths.join(" and ")
        ));
    }
    if !problems.is_empty() {
        bail!("{}", problems.join("; "));
    }
    Ok(())
}
