//! AdamW and grad-norm clipping with the exact arithmetic of torch.optim.AdamW
//! (single-tensor path) and torch.nn.utils.clip_grad_norm_.
//!
//! Per parameter with a gradient, step t += 1 then
//!   p ← p·(1 − lr·wd);  m ← m + (1−β₁)(g − m);  v ← β₂v + (1−β₂)g²
//!   p ← p − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε).
//! Parameters without a gradient are skipped (their step does not advance), as torch does.
//! State (step, exp_avg, exp_avg_sq per parameter) saves to safetensors for exact resume.
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;
use tch::{Kind, Tensor};

/// AdamW hyper-parameters (torch defaults except lr, which the schedule sets each step).
/// Usable as a TOML section: missing keys take these defaults, unknown keys are errors.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdamWConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl AdamWConfig {
    /// Every hyper-parameter in range; errors name the key under `prefix`
    /// (e.g. `train.optimizer.lr`).
    pub fn validate(&self, prefix: &str) -> Result<()> {
        use crate::config::check::{nonneg_finite, positive_finite, unit_half_open};
        positive_finite(&format!("{prefix}.lr"), self.lr)?;
        unit_half_open(&format!("{prefix}.beta1"), self.beta1)?;
        unit_half_open(&format!("{prefix}.beta2"), self.beta2)?;
        positive_finite(&format!("{prefix}.eps"), self.eps)?;
        nonneg_finite(&format!("{prefix}.weight_decay"), self.weight_decay)
    }
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }
}

/// AdamW over a fixed, ordered list of parameter tensors (shallow clones of the leaves).
pub struct AdamW {
    pub cfg: AdamWConfig,
    params: Vec<Tensor>,
    steps: Vec<i64>,
    exp_avg: Vec<Tensor>,
    exp_avg_sq: Vec<Tensor>,
}

impl AdamW {
    pub fn new(params: Vec<Tensor>, cfg: AdamWConfig) -> AdamW {
        let exp_avg = params.iter().map(|p| p.detach().zeros_like()).collect();
        let exp_avg_sq = params.iter().map(|p| p.detach().zeros_like()).collect();
        let steps = vec![0; params.len()];
        AdamW {
            cfg,
            params,
            steps,
            exp_avg,
            exp_avg_sq,
        }
    }

    pub fn params(&self) -> &[Tensor] {
        &self.params
    }

    /// Sets the learning rate used by the next [`AdamW::step`].
    pub fn set_lr(&mut self, lr: f64) {
        self.cfg.lr = lr;
    }

    /// One update with the current gradients.
    pub fn step(&mut self) {
        let _g = tch::no_grad_guard();
        let c = self.cfg;
        for i in 0..self.params.len() {
            let grad = self.params[i].grad();
            if !grad.defined() {
                continue;
            }
            self.steps[i] += 1;
            let t = self.steps[i] as f64;
            let mut p = self.params[i].shallow_clone();
            let _ = p.g_mul_scalar_(1.0 - c.lr * c.weight_decay);
            let _ = self.exp_avg[i].lerp_(&grad, 1.0 - c.beta1);
            let _ = self.exp_avg_sq[i].g_mul_scalar_(c.beta2);
            // addcmul(value=1−β₂) evaluates (value·g)·g
            let _ = self.exp_avg_sq[i].g_add_(&(&grad * (1.0 - c.beta2) * &grad));
            let bc1 = 1.0 - c.beta1.powf(t);
            let bc2_sqrt = (1.0 - c.beta2.powf(t)).sqrt();
            let denom = (self.exp_avg_sq[i].sqrt() / bc2_sqrt) + c.eps;
            let upd = &self.exp_avg[i] / denom * (c.lr / bc1);
            let _ = p.g_sub_(&upd);
        }
    }

    /// Clears every parameter's gradient (set to zero in place).
    pub fn zero_grad(&mut self) {
        for p in &mut self.params {
            p.zero_grad();
        }
    }

    /// The state as named tensors: `<i>.exp_avg`, `<i>.exp_avg_sq`, `<i>.step` (i64 [1]).
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for i in 0..self.params.len() {
            out.push((format!("{i}.exp_avg"), self.exp_avg[i].shallow_clone()));
            out.push((
                format!("{i}.exp_avg_sq"),
                self.exp_avg_sq[i].shallow_clone(),
            ));
            out.push((format!("{i}.step"), Tensor::from_slice(&[self.steps[i]])));
        }
        out
    }

    /// Saves the state (and the hyper-parameters as metadata) atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let meta = std::collections::HashMap::from([
            ("optimizer".to_string(), "adamw".to_string()),
            ("config".to_string(), serde_json::to_string(&self.cfg)?),
            ("num_params".to_string(), self.params.len().to_string()),
        ]);
        crate::io::tensorfile::write(path, &self.state_tensors(), Some(meta))
    }

    /// Restores the state saved by [`AdamW::save`] for the same parameter list.
    pub fn load(&mut self, path: &Path) -> Result<()> {
        let f = crate::io::tensorfile::read(path)?;
        let n: usize = f
            .metadata
            .get("num_params")
            .and_then(|s| s.parse().ok())
            .unwrap_or(usize::MAX);
        if n != self.params.len() {
            bail!("{}: optimizer state is for {n} tensors, the adapter has {} (different LoRA config?)", path.display(), self.params.len());
        }
        if let Some(c) = f.metadata.get("config") {
            self.cfg = serde_json::from_str(c)?;
        }
        let _g = tch::no_grad_guard();
        for i in 0..n {
            let m = f.get(&format!("{i}.exp_avg"), path)?;
            let v = f.get(&format!("{i}.exp_avg_sq"), path)?;
            if m.size() != self.params[i].size() || v.size() != self.params[i].size() {
                bail!(
                    "{}: state {i} has shape {:?}, parameter has {:?}",
                    path.display(),
                    m.size(),
                    self.params[i].size()
                );
            }
            let dev = self.params[i].device();
            self.exp_avg[i] = m.to_kind(Kind::Float).to_device(dev);
            self.exp_avg_sq[i] = v.to_kind(Kind::Float).to_device(dev);
            self.steps[i] = f.get(&format!("{i}.step"), path)?.int64_value(&[0]);
        }
        Ok(())
    }
}

/// torch.nn.utils.clip_grad_norm_: total = ‖(‖g₁‖₂, …, ‖gₙ‖₂)‖₂ over the tensors with a
/// gradient; each gradient is scaled by min(1, max_norm/(total + 1e-6)). Returns the
/// pre-clip total (NaN/inf passes through so the caller's NaN guard sees it).
pub fn clip_grad_norm(params: &[Tensor], max_norm: f64) -> f64 {
    let _g = tch::no_grad_guard();
    let Some(total) = total_norm(params) else {
        return 0.0;
    };
    let coef = (max_norm / (&total + 1e-6)).clamp_max(1.0);
    for p in params {
        let mut g = p.grad();
        if g.defined() {
            let _ = g.g_mul_(&coef.to_kind(g.kind()));
        }
    }
    total.double_value(&[])
}

/// The global L2 norm of the gradients, without clipping (0 when none has a gradient).
pub fn grad_norm(params: &[Tensor]) -> f64 {
    let _g = tch::no_grad_guard();
    total_norm(params)
        .map(|t| t.double_value(&[]))
        .unwrap_or(0.0)
}

fn total_norm(params: &[Tensor]) -> Option<Tensor> {
    let norms: Vec<Tensor> = params
        .iter()
        .map(|p| p.grad())
        .filter(|g| g.defined())
        .map(|g| g.to_kind(Kind::Float).norm())
        .collect();
    if norms.is_empty() {
        return None;
    }
    Some(Tensor::stack(&norms, 0).norm())
}
