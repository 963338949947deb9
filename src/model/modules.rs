//! Walking the model's modules by their Hugging Face names: the linear layers (where LoRA
//! attaches, addressed as PEFT does, e.g. `model.layers.3.self_attn.q_proj`) and the
//! base tensors (for saving a merged model).
use super::linear::Linear;
use super::llama::Llama;
use anyhow::{Context, Result};
use std::path::Path;
use tch::{Device, Tensor};

impl Llama {
    /// Every linear layer in model order (q,k,v,o,gate,up,down per layer, then lm_head).
    pub fn linears(&self) -> Vec<&Linear> {
        let mut v = Vec::new();
        for l in &self.layers {
            let (a, m) = (&l.self_attn, &l.mlp);
            v.extend([
                &a.q_proj,
                &a.k_proj,
                &a.v_proj,
                &a.o_proj,
                &m.gate_proj,
                &m.up_proj,
                &m.down_proj,
            ]);
        }
        v.push(&self.lm_head);
        v
    }

    pub fn linears_mut(&mut self) -> Vec<&mut Linear> {
        let mut v = Vec::new();
        for l in &mut self.layers {
            let (a, m) = (&mut l.self_attn, &mut l.mlp);
            v.extend([&mut a.q_proj, &mut a.k_proj, &mut a.v_proj, &mut a.o_proj]);
            v.extend([&mut m.gate_proj, &mut m.up_proj, &mut m.down_proj]);
        }
        v.push(&mut self.lm_head);
        v
    }

    /// HF module paths of every linear layer, e.g. `model.layers.3.self_attn.q_proj`, `lm_head`.
    pub fn module_paths(&self) -> Vec<String> {
        self.linears().iter().map(|l| l.path.clone()).collect()
    }

    /// The linear layer at an HF module path.
    pub fn linear_mut(&mut self, path: &str) -> Option<&mut Linear> {
        self.linears_mut().into_iter().find(|l| l.path == path)
    }

    /// Base weights by their Hugging Face names (lm_head left out when tied), e.g. for saving
    /// a merged model. Linear weights come back as contiguous [out, in] copies (their CPU
    /// storage is input-major); the others share storage with the model.
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let mut v = vec![(
            "model.embed_tokens.weight".to_string(),
            self.embed_tokens.shallow_clone(),
        )];
        for (i, l) in self.layers.iter().enumerate() {
            let p = format!("model.layers.{i}");
            v.push((
                format!("{p}.input_layernorm.weight"),
                l.input_layernorm.weight.shallow_clone(),
            ));
            v.push((
                format!("{p}.post_attention_layernorm.weight"),
                l.post_attention_layernorm.weight.shallow_clone(),
            ));
        }
        v.push((
            "model.norm.weight".to_string(),
            self.norm.weight.shallow_clone(),
        ));
        for lin in self.linears() {
            if lin.path == "lm_head" && self.config.tie_word_embeddings {
                continue;
            }
            v.push((format!("{}.weight", lin.path), lin.weight.contiguous()));
            if let Some(b) = &lin.bias {
                v.push((format!("{}.bias", lin.path), b.shallow_clone()));
            }
        }
        v
    }

    /// Writes the base weights as one safetensors file (CPU, contiguous, current dtype).
    pub fn save_safetensors(&self, path: &Path) -> Result<()> {
        let t: Vec<(String, Tensor)> = self
            .named_tensors()
            .into_iter()
            .map(|(n, t)| (n, t.to_device(Device::Cpu).contiguous()))
            .collect();
        Tensor::write_safetensors(&t, path)
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// Switches every adapter on or off (off = the frozen base model, e.g. a reference policy).
    pub fn set_adapters_enabled(&mut self, on: bool) {
        for l in self.linears_mut() {
            l.adapters_enabled = on;
        }
    }
}
