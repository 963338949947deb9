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
//! the result back to x's kind, so the caller adds it to the base output directly. The mixed
//! bf16 training mode instead takes [`LoraLayer::delta_low`]: products in bf16, masters f32.
mod config;
pub mod dropout;
mod set;
pub use config::*;
pub use set::*;

use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

/// PEFT's name prefix of every adapter tensor.
pub const PREFIX: &str = "base_model.model.";

/// PEFT's key of a module's A factor (`base_model.model.<path>.lora_A.weight`).
pub fn key_a(path: &str) -> String {
    format!("{PREFIX}{path}.lora_A.weight")
}
/// PEFT's key of a module's B factor.
pub fn key_b(path: &str) -> String {
    format!("{PREFIX}{path}.lora_B.weight")
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
    /// Dropout only when `train` (inverted dropout, seeded from torch's global RNG).
    pub fn delta(&self, x: &Tensor, train: bool) -> Tensor {
        let xf = x.to_kind(Kind::Float);
        let xf = if train && self.dropout > 0.0 {
            dropout::dropout(&xf, self.dropout)
        } else {
            xf
        };
        let (a, b) = self.effective();
        // scaling applied to the rank-r intermediate: r ≪ out, so this is the cheap spot
        ((xf.matmul(&a.tr()) * self.scaling).matmul(&b.tr())).to_kind(x.kind())
    }

    /// The same term for the mixed bf16 mode: `x_low` is the input already rounded for the base
    /// matmul, A and B are rounded from their f32 masters on each call (gradients reach the
    /// masters in f32), and the term comes back in `x_low`'s kind for the caller to add to the
    /// base product before widening — as PEFT runs under torch's bf16 autocast. The products are
    /// about twice as fast as f32 on an AMD Zen 4 (slower on the Intel Xeon measured). Bit-LoRA keeps the f32 math.
    pub fn delta_low(&self, x: &Tensor, x_low: &Tensor, train: bool) -> Tensor {
        if self.quant != Quant::None {
            return self.delta(x, train).to_kind(x_low.kind());
        }
        let (xd, factor) = if train && self.dropout > 0.0 {
            dropout::dropout_unscaled(x_low, self.dropout)
        } else {
            (x_low.shallow_clone(), 1.0)
        };
        let a = self.a.to_kind(x_low.kind());
        let b = self.b.to_kind(x_low.kind());
        (xd.matmul(&a.tr()) * (self.scaling * factor)).matmul(&b.tr())
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
    crate::model::linear::merge(w, [d]).expect("one delta")
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
    /// The adapted layers store their weight [in, out] (GPT-2's Conv1D): written to
    /// adapter_config.json as PEFT does. A and B have the usual shapes either way.
    pub fan_in_fan_out: bool,
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
            fan_in_fan_out: false,
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
        // A rank-r update B·A of an out×in matrix has rank ≤ min(in, out): a larger r only
        // costs memory, and an absurd one would abort on allocation.
        let usable = sorted
            .iter()
            .map(|(_, i, o)| (*i).min(*o))
            .max()
            .unwrap_or(0);
        if cfg.r > usable {
            bail!(
                "lora.r = {}: more than any targeted module can use (a LoRA update of an in×out matrix has rank ≤ min(in, out), at most {usable} here): set lora.r ≤ {usable}",
                cfg.r
            );
        }
        // The factors in f32 with their gradients and AdamW's two moments.
        let numel: f64 = sorted
            .iter()
            .map(|(_, i, o)| cfg.r as f64 * (*i + *o) as f64)
            .sum();
        crate::util::check_fits(
            16.0 * numel,
            &format!(
                "lora.r = {} over {} modules (factors, gradients and optimizer state)",
                cfg.r,
                sorted.len()
            ),
            "lower lora.r or target fewer modules",
        )?;
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
            out.push((key_a(p), l.a.shallow_clone()));
            out.push((key_b(p), l.b.shallow_clone()));
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
