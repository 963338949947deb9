//! LoRA adapters as in PEFT, independent of any model type.
//!
//! y = W x + scaling · B A dropout(x), scaling = α/r (or α/√r with rsLoRA).
//! A [r, in] starts kaiming-uniform(a = √5) — U(−1/√in, 1/√in), the bound that
//! `torch.nn.init.kaiming_uniform_(a=√5)` gives for fan_in = in — and B [out, r] starts
//! at zero, so a fresh adapter leaves the model unchanged. A and B are f32 leaf tensors
//! with `requires_grad`; the base weights are never touched.
//!
//! Dtypes: the base layer may run in bf16/f16. Like PEFT (which casts x to lora_A's
//! dtype), [`LoraLayer::delta`] casts x to f32, does the adapter math in f32, and casts
//! the result back to x's kind, so the caller adds it to the base output directly.
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

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
/// (r 8, α 8, dropout 0) except the targets, which default to all-linear as SPEC asks.
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

/// How the factors enter the forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quant {
    /// Plain LoRA.
    None,
    /// Bit-LoRA: ternary A and B with straight-through gradients.
    Ternary,
}

/// The adapter of one linear layer.
#[derive(Debug)]
pub struct LoraLayer {
    /// [r, in], f32, requires_grad (latent weights for Bit-LoRA).
    pub a: Tensor,
    /// [out, r], f32, requires_grad.
    pub b: Tensor,
    pub scaling: f64,
    pub dropout: f64,
    pub quant: Quant,
}

impl LoraLayer {
    /// A fresh PEFT-initialised adapter (A kaiming-uniform from torch's global RNG, B = 0).
    pub fn new(
        in_features: i64,
        out_features: i64,
        cfg: &LoraConfig,
        quant: Quant,
        device: Device,
    ) -> LoraLayer {
        let bound = kaiming_uniform_bound(in_features);
        let a = Tensor::empty([cfg.r, in_features], (Kind::Float, device))
            .uniform_(-bound, bound)
            .set_requires_grad(true);
        let b = Tensor::zeros([out_features, cfg.r], (Kind::Float, device)).set_requires_grad(true);
        LoraLayer {
            a,
            b,
            scaling: cfg.scaling(),
            dropout: cfg.dropout,
            quant,
        }
    }

    /// Wraps given factors (copied to f32 leaves that require grad).
    pub fn from_tensors(
        a: &Tensor,
        b: &Tensor,
        scaling: f64,
        dropout: f64,
        quant: Quant,
        device: Device,
    ) -> LoraLayer {
        let a = a
            .detach()
            .to_kind(Kind::Float)
            .to_device(device)
            .copy()
            .set_requires_grad(true);
        let b = b
            .detach()
            .to_kind(Kind::Float)
            .to_device(device)
            .copy()
            .set_requires_grad(true);
        LoraLayer {
            a,
            b,
            scaling,
            dropout,
            quant,
        }
    }

    pub fn rank(&self) -> i64 {
        self.a.size()[0]
    }
    pub fn in_features(&self) -> i64 {
        self.a.size()[1]
    }
    pub fn out_features(&self) -> i64 {
        self.b.size()[0]
    }

    /// The factors as the forward pass sees them (ternary with STE for Bit-LoRA).
    pub fn effective(&self) -> (Tensor, Tensor) {
        match self.quant {
            Quant::None => (self.a.shallow_clone(), self.b.shallow_clone()),
            Quant::Ternary => (
                super::bitlora::ternary_ste(&self.a),
                super::bitlora::ternary_ste(&self.b),
            ),
        }
    }

    /// scaling · (dropout(x) Aᵀ) Bᵀ for x [..., in]; f32 math, result in x's kind.
    /// Dropout only when `train` (inverted dropout, torch's global RNG).
    pub fn delta(&self, x: &Tensor, train: bool) -> Tensor {
        let xf = x.to_kind(Kind::Float);
        let xf = if train && self.dropout > 0.0 {
            xf.dropout(self.dropout, true)
        } else {
            xf
        };
        let (a, b) = self.effective();
        // scaling applied to the rank-r intermediate: r ≪ out, so this is the cheap spot
        ((xf.matmul(&a.tr()) * self.scaling).matmul(&b.tr())).to_kind(x.kind())
    }

    /// Another handle on the same A and B (shallow clones: shared storage and grad).
    pub fn share(&self) -> LoraLayer {
        LoraLayer {
            a: self.a.shallow_clone(),
            b: self.b.shallow_clone(),
            scaling: self.scaling,
            dropout: self.dropout,
            quant: self.quant,
        }
    }

    /// scaling · B A, [out, in] f32 (what merging adds to W).
    pub fn delta_weight(&self) -> Tensor {
        let (a, b) = self.effective();
        b.detach().matmul(&a.detach()) * self.scaling
    }
}

/// torch.nn.init.kaiming_uniform_(a=√5) bound for fan_in:
/// gain = √(2/(1+a²)) = √(1/3), bound = √3·gain/√fan_in = 1/√fan_in.
pub fn kaiming_uniform_bound(fan_in: i64) -> f64 {
    let a2 = 5.0f64;
    let gain = (2.0 / (1.0 + a2)).sqrt();
    3f64.sqrt() * gain / (fan_in as f64).sqrt()
}

/// W' = W + scaling·B A, computed in f32 and returned in W's kind.
pub fn merge_weight(w: &Tensor, a: &Tensor, b: &Tensor, scaling: f64) -> Tensor {
    let d = b.to_kind(Kind::Float).matmul(&a.to_kind(Kind::Float)) * scaling;
    (w.to_kind(Kind::Float) + d.to_device(w.device())).to_kind(w.kind())
}

/// One whole-model adapter: a config and a layer per targeted module path.
#[derive(Debug)]
pub struct LoraAdapter {
    pub config: LoraConfig,
    pub quant: Quant,
    /// Module path (e.g. `model.layers.0.self_attn.q_proj`) → layer; sorted.
    pub layers: BTreeMap<String, LoraLayer>,
    /// Training mode (dropout on) for the [`LoraHandle`]s of this adapter; starts off.
    pub training: Arc<AtomicBool>,
}

impl LoraAdapter {
    pub fn from_layers(
        config: LoraConfig,
        quant: Quant,
        layers: BTreeMap<String, LoraLayer>,
    ) -> LoraAdapter {
        LoraAdapter {
            config,
            quant,
            layers,
            training: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Switches dropout on (training) or off (generation, evaluation) in every handle.
    pub fn set_training(&self, on: bool) {
        self.training.store(on, Ordering::Relaxed);
    }

    /// One [`LoraHandle`] per adapted module, for attaching to the model's linear layers.
    /// Handles share A and B with this adapter (same storage and gradients), so the
    /// optimizer, checkpoint restore and saving here act on what the model uses.
    pub fn handles(&self, weight: f64) -> Vec<LoraHandle> {
        self.layers
            .iter()
            .map(|(p, l)| LoraHandle {
                path: p.clone(),
                layer: l.share(),
                weight,
                training: self.training.clone(),
            })
            .collect()
    }

    /// Fresh adapter on every targeted module among `modules` = (path, in, out).
    /// Layers are created in sorted path order, so a seeded torch RNG gives the same A.
    pub fn new(
        cfg: &LoraConfig,
        modules: &[(String, i64, i64)],
        quant: Quant,
        device: Device,
    ) -> Result<LoraAdapter> {
        cfg.validate()?;
        let mut sorted: Vec<&(String, i64, i64)> = modules
            .iter()
            .filter(|(p, _, _)| cfg.is_targeted(p))
            .collect();
        sorted.sort_by(|x, y| x.0.cmp(&y.0));
        if sorted.is_empty() {
            let names: Vec<&str> = modules.iter().take(8).map(|m| m.0.as_str()).collect();
            bail!(
                "lora.target_modules {:?} matches no linear module (modules look like {names:?})",
                cfg.target_modules
            );
        }
        let mut layers = BTreeMap::new();
        for (p, i, o) in sorted {
            layers.insert(p.clone(), LoraLayer::new(*i, *o, cfg, quant, device));
        }
        Ok(LoraAdapter::from_layers(cfg.clone(), quant, layers))
    }

    /// Trainable tensors in a fixed order: for each path (sorted), A then B.
    pub fn parameters(&self) -> Vec<Tensor> {
        self.layers
            .values()
            .flat_map(|l| [l.a.shallow_clone(), l.b.shallow_clone()])
            .collect()
    }

    /// PEFT key names with the latent tensors, in the same order as [`Self::parameters`].
    pub fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (p, l) in &self.layers {
            out.push((super::peft::key_a(p), l.a.shallow_clone()));
            out.push((super::peft::key_b(p), l.b.shallow_clone()));
        }
        out
    }

    /// Number of trainable scalars.
    pub fn num_parameters(&self) -> i64 {
        self.layers
            .values()
            .map(|l| (l.a.numel() + l.b.numel()) as i64)
            .sum()
    }

    /// Turns training on or off for all factors in place (handles stay shared), e.g. to
    /// freeze an SFT adapter stacked under a GRPO adapter.
    pub fn set_trainable(&self, on: bool) {
        for l in self.layers.values() {
            let _ = l.a.set_requires_grad(on);
            let _ = l.b.set_requires_grad(on);
        }
    }

    /// The scaled layer delta for `path`, if this adapter covers it.
    pub fn delta(&self, path: &str, x: &Tensor, train: bool) -> Option<Tensor> {
        self.layers.get(path).map(|l| l.delta(x, train))
    }
}

/// One adapter's layer as a model's linear layer sees it: weight · delta(x), dropout
/// following the owning adapter's training flag. The model's `LinearAdapter` impl for this
/// type is a one-line forward to [`LoraHandle::delta`].
#[derive(Debug)]
pub struct LoraHandle {
    pub path: String,
    pub layer: LoraLayer,
    /// Composition weight (`--adapter PATH:WEIGHT`), 1.0 for a trained adapter.
    pub weight: f64,
    training: Arc<AtomicBool>,
}

impl LoraHandle {
    pub fn delta(&self, x: &Tensor) -> Tensor {
        let d = self.layer.delta(x, self.training.load(Ordering::Relaxed));
        if self.weight == 1.0 {
            d
        } else {
            d * self.weight
        }
    }
}

/// PEFT's `print_trainable_parameters` line, e.g.
/// `trainable params: 460,800 || all params: 134,975,808 || trainable%: 0.3414`.
/// `all` counts base and adapter parameters (PEFT counts every named parameter).
pub fn trainable_line(trainable: i64, all: i64) -> String {
    let pct = if all > 0 {
        100.0 * trainable as f64 / all as f64
    } else {
        0.0
    };
    format!(
        "trainable params: {} || all params: {} || trainable%: {pct:.4}",
        thousands(trainable),
        thousands(all)
    )
}

/// 1234567 → "1,234,567" (Python's `{:,d}`).
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// Several adapters applied together, each with a weight: Σ wᵢ·deltaᵢ. An adapter that
/// does not cover a module adds nothing there.
#[derive(Debug, Default)]
pub struct LoraSet {
    pub adapters: Vec<(LoraAdapter, f64)>,
}

impl LoraSet {
    pub fn new() -> LoraSet {
        LoraSet {
            adapters: Vec::new(),
        }
    }

    pub fn push(&mut self, adapter: LoraAdapter, weight: f64) {
        self.adapters.push((adapter, weight));
    }

    /// Handles of every adapter (in order) with its weight, for the model's linear layers.
    pub fn handles(&self) -> Vec<LoraHandle> {
        self.adapters
            .iter()
            .flat_map(|(a, w)| a.handles(*w))
            .collect()
    }

    /// Whether any adapter covers `path`.
    pub fn covers(&self, path: &str) -> bool {
        self.adapters
            .iter()
            .any(|(a, _)| a.layers.contains_key(path))
    }

    /// Σ wᵢ · deltaᵢ(x) over the adapters covering `path`; None when none does.
    pub fn delta(&self, path: &str, x: &Tensor, train: bool) -> Option<Tensor> {
        let mut acc: Option<Tensor> = None;
        for (a, w) in &self.adapters {
            if let Some(d) = a.delta(path, x, train) {
                let d = if *w == 1.0 { d } else { d * *w };
                acc = Some(match acc {
                    Some(s) => s + d,
                    None => d,
                });
            }
        }
        acc
    }

    /// Σ wᵢ · scalingᵢ Bᵢ Aᵢ for merging, f32 [out, in]; None when no adapter covers `path`.
    pub fn delta_weight(&self, path: &str) -> Option<Tensor> {
        let mut acc: Option<Tensor> = None;
        for (a, w) in &self.adapters {
            if let Some(l) = a.layers.get(path) {
                let d = l.delta_weight() * *w;
                acc = Some(match acc {
                    Some(s) => s + d,
                    None => d,
                });
            }
        }
        acc
    }
}

impl LoraSet {
    /// Merges every covered module into `weights` = (`<module path>.weight`, W) pairs:
    /// W' = W + Σ wᵢ·scalingᵢ·Bᵢ Aᵢ (f32 math, W's kind kept). Returns how many changed;
    /// errors when an adapted module has no weight in the list or shapes differ.
    pub fn merge_into(&self, weights: &mut [(String, Tensor)]) -> Result<usize> {
        let _g = tch::no_grad_guard();
        let mut paths: Vec<&String> = self
            .adapters
            .iter()
            .flat_map(|(a, _)| a.layers.keys())
            .collect();
        paths.sort();
        paths.dedup();
        let mut changed = 0;
        for p in paths {
            let key = format!("{p}.weight");
            let (_, w) = weights.iter_mut().find(|(k, _)| *k == key).with_context(|| format!("merge: the model has no weight '{key}' for an adapted module (wrong base model?)"))?;
            let d = self.delta_weight(p).expect("path comes from an adapter");
            if d.size() != w.size() {
                bail!(
                    "merge: '{key}' is {:?} in the model but the adapter delta is {:?}",
                    w.size(),
                    d.size()
                );
            }
            *w = (w.to_kind(Kind::Float) + d.to_device(w.device())).to_kind(w.kind());
            changed += 1;
        }
        Ok(changed)
    }
}

/// Parses a CLI `PATH[:WEIGHT]` adapter spec (weight defaults to 1.0).
pub fn parse_adapter_spec(spec: &str) -> Result<(std::path::PathBuf, f64)> {
    if let Some((p, w)) = spec.rsplit_once(':') {
        if let Ok(w) = w.parse::<f64>() {
            if !w.is_finite() {
                bail!("--adapter '{spec}': weight must be a finite number");
            }
            return Ok((p.into(), w));
        }
    }
    Ok((spec.into(), 1.0))
}
