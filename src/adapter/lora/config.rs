//! LoRA hyper-parameters and PEFT's rule for which modules get an adapter.
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// Which linear modules get an adapter: `"all-linear"` (every linear but `lm_head`),
/// another single string (a regex that must match the whole module path, as PEFT), or a
/// list of names matched exactly or as a dot-separated suffix of the path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TargetModules {
    One(String),
    List(Vec<String>),
}

impl Default for TargetModules {
    fn default() -> Self {
        TargetModules::One("all-linear".into())
    }
}

/// LoRA hyper-parameters (a section of the SFT/GRPO TOML). Defaults are PEFT's
/// (r 8, α 8, dropout 0) except the targets, which default to all-linear
/// (docs/method.md#lora-and-rslora).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoraConfig {
    #[serde(default = "d_r")]
    pub r: i64,
    #[serde(default = "d_alpha")]
    pub alpha: f64,
    #[serde(default)]
    pub dropout: f64,
    #[serde(default)]
    pub use_rslora: bool,
    #[serde(default)]
    pub target_modules: TargetModules,
}
fn d_r() -> i64 {
    8
}
fn d_alpha() -> f64 {
    8.0
}

impl Default for LoraConfig {
    fn default() -> Self {
        LoraConfig {
            r: 8,
            alpha: 8.0,
            dropout: 0.0,
            use_rslora: false,
            target_modules: TargetModules::default(),
        }
    }
}

impl LoraConfig {
    /// α/r, or α/√r with rsLoRA (PEFT's `scaling`).
    pub fn scaling(&self) -> f64 {
        if self.use_rslora {
            self.alpha / (self.r as f64).sqrt()
        } else {
            self.alpha / self.r as f64
        }
    }

    /// Checks ranges; one error line naming the field.
    pub fn validate(&self) -> Result<()> {
        if self.r < 1 {
            bail!("lora.r = {} must be ≥ 1", self.r);
        }
        if !(0.0..1.0).contains(&self.dropout) {
            bail!("lora.dropout = {} must be in [0, 1)", self.dropout);
        }
        if !self.alpha.is_finite() || self.alpha <= 0.0 {
            bail!("lora.alpha = {} must be a positive number", self.alpha);
        }
        match &self.target_modules {
            TargetModules::List(l) if l.is_empty() => bail!("lora.target_modules is empty: list module names such as [\"q_proj\", \"v_proj\"] or use \"all-linear\""),
            TargetModules::One(s) if s != "all-linear" => {
                regex::Regex::new(&format!("^(?:{s})$")).with_context(|| format!("lora.target_modules '{s}' is not a valid regex (or use \"all-linear\" or a list)"))?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether the linear module at `path` (e.g. `model.layers.3.self_attn.q_proj`) is targeted.
    pub fn is_targeted(&self, path: &str) -> bool {
        is_targeted(&self.target_modules, path)
    }
}

/// PEFT's matching rule (see the type doc); `lm_head` is never targeted by all-linear.
pub fn is_targeted(t: &TargetModules, path: &str) -> bool {
    match t {
        TargetModules::One(s) if s == "all-linear" => leaf_name(path) != "lm_head",
        TargetModules::One(re) => regex::Regex::new(&format!("^(?:{re})$"))
            .map(|r| r.is_match(path))
            .unwrap_or(false),
        TargetModules::List(names) => names
            .iter()
            .any(|n| path == n || path.ends_with(&format!(".{n}"))),
    }
}

/// The last dot-separated component of a module path.
pub fn leaf_name(path: &str) -> &str {
    path.rsplit('.').next().unwrap_or(path)
}
