//! Walking the model's modules by their Hugging Face names: the linear layers (where LoRA
//! attaches, addressed as PEFT does, e.g. `model.layers.3.self_attn.q_proj` or
//! `transformer.h.3.attn.c_attn`) and the
//! base tensors (for saving a merged model).
use super::config::Family;
use super::linear::Linear;
use super::llama::{Llama, Names, Norm, GPT2_WPE};
use anyhow::{Context, Result};
use std::path::Path;
use tch::{Device, Tensor};

impl Llama {
    /// Every linear layer in model order (per layer the attention's, then the MLP's; then
    /// lm_head): q,k,v,o,gate,up,down for Llama/Qwen, c_attn, c_proj, c_fc, c_proj for GPT-2.
    pub fn linears(&self) -> Vec<&Linear> {
        let mut v = Vec::new();
        for l in &self.layers {
            v.extend(l.self_attn.linears());
            v.extend(l.mlp.linears());
        }
        v.push(&self.lm_head);
        v
    }

    pub fn linears_mut(&mut self) -> Vec<&mut Linear> {
        let mut v = Vec::new();
        for l in &mut self.layers {
            v.extend(l.self_attn.linears_mut());
            v.extend(l.mlp.linears_mut());
        }
        v.push(&mut self.lm_head);
        v
    }

    /// HF module paths of every linear layer, e.g. `model.layers.3.self_attn.q_proj`, `lm_head`.
    pub fn module_paths(&self) -> Vec<String> {
        self.linears().iter().map(|l| l.path.clone()).collect()
    }

    /// The linear layer at an HF module path.
    pub fn linear(&self, path: &str) -> Option<&Linear> {
        self.linears().into_iter().find(|l| l.path == path)
    }

    /// The linear layer at an HF module path, mutable.
    pub fn linear_mut(&mut self, path: &str) -> Option<&mut Linear> {
        self.linears_mut().into_iter().find(|l| l.path == path)
    }

    /// Base weights by their Hugging Face names (lm_head left out when tied), e.g. for saving
    /// a merged model. Linear weights come back as contiguous copies in the files' layout
    /// ([out, in], or [in, out] for GPT-2's Conv1D); the others share storage with the model.
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let names = Names::of(self.config.family);
        let mut v = vec![(
            format!("{}.weight", names.embed),
            self.embed_tokens.shallow_clone(),
        )];
        if let Some(wpe) = &self.wpe {
            v.push((format!("{GPT2_WPE}.weight"), wpe.shallow_clone()));
        }
        let mut norm = |path: String, n: &Norm| {
            v.push((format!("{path}.weight"), n.weight.shallow_clone()));
            if let Some(b) = &n.bias {
                v.push((format!("{path}.bias"), b.shallow_clone()));
            }
        };
        let gpt2 = self.config.family == Family::Gpt2;
        for (i, l) in self.layers.iter().enumerate() {
            let p = format!("{}.{i}", names.layer);
            let (n1, n2, attn) = if gpt2 {
                ("ln_1", "ln_2", "attn")
            } else {
                ("input_layernorm", "post_attention_layernorm", "self_attn")
            };
            norm(format!("{p}.{n1}"), &l.input_layernorm);
            norm(format!("{p}.{n2}"), &l.post_attention_layernorm);
            if let Some(q) = &l.self_attn.q_norm {
                norm(format!("{p}.{attn}.q_norm"), q);
            }
            if let Some(k) = &l.self_attn.k_norm {
                norm(format!("{p}.{attn}.k_norm"), k);
            }
        }
        norm(names.final_norm.to_string(), &self.norm);
        for lin in self.linears() {
            if lin.path == "lm_head" && self.config.tie_word_embeddings {
                continue;
            }
            let w = if lin.fan_in_fan_out {
                lin.weight.tr().contiguous()
            } else {
                lin.weight.contiguous()
            };
            v.push((format!("{}.weight", lin.path), w));
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

    /// Caches every layer's sampling weight (W + Σ adapters) in `kind`, or drops the caches
    /// (None). Call after the adapters change; training passes must run without it.
    pub fn prepare_sampling(&mut self, kind: Option<tch::Kind>) {
        for l in self.linears_mut() {
            l.prepare_sampling(kind);
        }
    }

    /// The kind of the training matmuls' weight copies (None: the weights themselves).
    pub fn matmul_kind(&self) -> Option<tch::Kind> {
        self.linears()
            .first()
            .and_then(|l| l.matmul_weight.as_ref().map(|w| w.kind()))
    }

    /// Gives every layer a copy of its weight in `kind` for the training matmuls (bf16 on
    /// an f32 model), or drops the copies (None).
    pub fn set_matmul_kind(&mut self, kind: Option<tch::Kind>) {
        for l in self.linears_mut() {
            l.set_matmul_kind(kind);
        }
    }
}
