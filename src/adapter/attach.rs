//! Wiring LoRA adapters into the model: the LoRA handle is a [`LinearAdapter`], attached to
//! the `Linear` with the same module path. Handles share tensors with their adapter, so
//! optimizer steps and checkpoint restores reach the model without re-attaching.
use super::lora::{LoraAdapter, LoraHandle, LoraSet};
use crate::model::linear::LinearAdapter;
use crate::model::llama::Llama;
use anyhow::{bail, Context, Result};
use tch::{Device, Tensor};

impl LinearAdapter for LoraHandle {
    fn delta(&self, x: &Tensor) -> Tensor {
        LoraHandle::delta(self, x)
    }
    fn delta_low(&self, x: &Tensor, x_low: &Tensor) -> Tensor {
        LoraHandle::delta_low(self, x, x_low)
    }
    fn delta_weight(&self) -> Option<Tensor> {
        // Dropout is random in training mode: such a layer has no single merged weight.
        if self.layer.dropout > 0.0 && self.in_training() {
            return None;
        }
        Some(self.layer.delta_weight() * self.weight)
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

/// Every linear module as (path, in_features, out_features), for creating adapters.
pub fn linear_modules(model: &Llama) -> Vec<(String, i64, i64)> {
    model
        .linears()
        .iter()
        .map(|l| (l.path.clone(), l.in_features(), l.out_features()))
        .collect()
}

/// Attaches handles to the linear layers with the same path; shapes must agree.
pub fn attach(model: &mut Llama, handles: Vec<LoraHandle>) -> Result<()> {
    for h in handles {
        let path = h.path.clone();
        let lin = model
            .linear_mut(&path)
            .with_context(|| format!("adapter module '{path}' does not exist in the model: was the adapter trained on another architecture?"))?;
        let (i, o) = (h.layer.in_features(), h.layer.out_features());
        if i != lin.in_features() || o != lin.out_features() {
            bail!(
                "adapter module '{path}' is [{o}, {i}] but the model's layer is [{}, {}]: the adapter belongs to another model size",
                lin.out_features(),
                lin.in_features()
            );
        }
        lin.adapters.push(Box::new(h));
    }
    Ok(())
}

/// Removes every attached adapter (the base model again).
pub fn detach_all(model: &mut Llama) {
    for l in model.linears_mut() {
        l.adapters.clear();
    }
}

/// Loads `PATH[:WEIGHT]` adapter specs (PEFT directories), attaches them, returns the set.
pub fn load_and_attach(model: &mut Llama, specs: &[String], device: Device) -> Result<LoraSet> {
    let set = super::peft::load_set(specs, device)?;
    for (a, _) in &set.adapters {
        a.set_trainable(false);
    }
    attach(model, set.handles())?;
    Ok(set)
}

/// A fresh trainable adapter on the targeted modules, attached to the model.
pub fn new_trainable(
    model: &mut Llama,
    cfg: &super::lora::LoraConfig,
    quant: super::lora::Quant,
) -> Result<LoraAdapter> {
    let mut adapter = LoraAdapter::new(cfg, &linear_modules(model), quant, model.device)?;
    // PEFT's adapter_config.json says whether the adapted layers are Conv1D (GPT-2).
    adapter.fan_in_fan_out = model
        .linears()
        .iter()
        .any(|l| l.fan_in_fan_out && adapter.layers.contains_key(&l.path));
    attach(model, adapter.handles(1.0))?;
    Ok(adapter)
}

/// Number of base-model parameters (for PEFT's trainable-parameter line).
pub fn base_parameter_count(model: &Llama) -> i64 {
    model
        .named_tensors()
        .iter()
        .map(|(_, t)| t.numel() as i64)
        .sum()
}

/// Folds the set's deltas into the base weights (W += Σ wᵢ sᵢ Bᵢ Aᵢ) and detaches adapters.
pub fn merge_into_model(model: &mut Llama, set: &LoraSet) -> Result<usize> {
    let mut n = 0;
    let mut bad: Option<String> = None;
    tch::no_grad(|| {
        for lin in model.linears_mut() {
            if let Some(merged) =
                crate::model::linear::merge(&lin.weight, set.delta_weight(&lin.path))
            {
                if merged.isfinite().all().int64_value(&[]) == 0 && bad.is_none() {
                    bad = Some(lin.path.clone());
                }
                lin.weight.copy_(&merged);
                n += 1;
            }
        }
    });
    detach_all(model);
    if let Some(path) = bad {
        bail!(
            "folding the adapters into '{path}' gives NaN or infinite weights (an adapter weight too large?): lower the weights given as --adapter PATH:WEIGHT"
        );
    }
    Ok(n)
}

/// Folds every attached adapter into its layer's weight in place (W += Σ delta) and detaches
/// them: for inference with frozen adapters, one matmul per layer and no extra memory.
/// Returns how many layers changed; layers whose adapter cannot be merged keep it attached.
pub fn fold_attached(model: &mut Llama) -> usize {
    let _g = tch::no_grad_guard();
    let mut n = 0;
    for lin in model.linears_mut() {
        if let Some(w) = lin.merged_weight() {
            lin.weight.copy_(&w);
            lin.adapters.clear();
            lin.merged = None;
            n += 1;
        }
    }
    n
}
