//! Composition: several adapters with weights, per-module handles for the model's
//! linear layers, merging, and PEFT's trainable-parameter line.
use super::{LoraAdapter, LoraLayer};
use anyhow::{bail, Context, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tch::Tensor;

/// One adapter's layer as a model's linear layer sees it: weight · delta(x), dropout
/// following the owning adapter's training flag. The model's `LinearAdapter` impl for this
/// type is a one-line forward to [`LoraHandle::delta`].
#[derive(Debug)]
pub struct LoraHandle {
    pub path: String,
    pub layer: LoraLayer,
    /// Composition weight (`--adapter PATH:WEIGHT`), 1.0 for a trained adapter.
    pub weight: f64,
    pub(super) training: Arc<AtomicBool>,
}

impl LoraHandle {
    /// Whether the owning adapter is in training mode (dropout on).
    pub fn in_training(&self) -> bool {
        self.training.load(Ordering::Relaxed)
    }

    pub fn delta(&self, x: &Tensor) -> Tensor {
        self.weighted(self.layer.delta(x, self.in_training()))
    }

    /// [`LoraLayer::delta_low`], weighted.
    pub fn delta_low(&self, x: &Tensor, x_low: &Tensor) -> Tensor {
        self.weighted(self.layer.delta_low(x, x_low, self.in_training()))
    }

    fn weighted(&self, d: Tensor) -> Tensor {
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
        crate::model::linear::sum_deltas(
            self.adapters
                .iter()
                .filter_map(|(a, w)| a.layers.get(path).map(|l| l.delta_weight() * *w)),
        )
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
            *w = crate::model::linear::merge(w, [d]).expect("one delta");
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
