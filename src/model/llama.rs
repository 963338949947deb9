//! The Llama decoder in tch: embeddings, N × (RMSNorm → attention → RMSNorm → SwiGLU MLP),
//! final norm, lm_head. Mirrors transformers' LlamaForCausalLM operation for operation.
//!
//! One forward serves training (no cache; gradients flow into adapter parameters) and
//! decoding (a [`KvCache`]). Padding may be on either side: position ids come from the
//! attention mask and padded keys are masked, so a row's result does not depend on the
//! other rows of its batch.
use super::config::LlamaConfig;
use super::kv_cache::KvCache;
use super::linear::{input_major, Linear};
use super::rope::{self, Rope};
use super::weights::{SafetensorFiles, Weights};
use anyhow::{bail, Context, Result};
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// Llama's RMSNorm: computed in f32, scaled by the weight in the model dtype.
#[derive(Debug)]
pub struct RmsNorm {
    pub weight: Tensor,
    pub eps: f64,
}

impl RmsNorm {
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let kind = x.kind();
        let h = x.to_kind(Kind::Float);
        let var = h.square().mean_dim(-1, true, Kind::Float);
        &self.weight * (h * (var + self.eps).rsqrt()).to_kind(kind)
    }
}

#[derive(Debug)]
pub struct Attention {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub o_proj: Linear,
    pub num_heads: i64,
    pub num_kv_heads: i64,
    pub head_dim: i64,
}

impl Attention {
    /// x [B,T,H]; mask [B,1,T,Tk] bool (true = attend); cache slot for this layer if decoding.
    fn forward(
        &self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        mask: &Tensor,
        cache: Option<(&mut KvCache, usize)>,
    ) -> Tensor {
        let (b, t, _) = x.size3().unwrap();
        let heads =
            |p: &Linear, n: i64| p.forward(x).view([b, t, n, self.head_dim]).transpose(1, 2);
        let q = rope::apply(&heads(&self.q_proj, self.num_heads), cos, sin);
        let k = rope::apply(&heads(&self.k_proj, self.num_kv_heads), cos, sin);
        let v = heads(&self.v_proj, self.num_kv_heads);
        let (k, v) = match cache {
            Some((c, layer)) => c.write(layer, &k, &v),
            None => (k, v),
        };
        let gqa = self.num_kv_heads != self.num_heads;
        let o = Tensor::scaled_dot_product_attention(&q, &k, &v, Some(mask), 0.0, false, None, gqa);
        self.o_proj.forward(
            &o.transpose(1, 2)
                .reshape([b, t, self.num_heads * self.head_dim]),
        )
    }
}

#[derive(Debug)]
pub struct Mlp {
    pub gate_proj: Linear,
    pub up_proj: Linear,
    pub down_proj: Linear,
}

impl Mlp {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.down_proj
            .forward(&(self.gate_proj.forward(x).silu() * self.up_proj.forward(x)))
    }
}

#[derive(Debug)]
pub struct DecoderLayer {
    pub input_layernorm: RmsNorm,
    pub self_attn: Attention,
    pub post_attention_layernorm: RmsNorm,
    pub mlp: Mlp,
}

#[derive(Debug)]
pub struct Llama {
    pub config: LlamaConfig,
    /// [vocab, hidden], frozen.
    pub embed_tokens: Tensor,
    pub layers: Vec<DecoderLayer>,
    pub norm: RmsNorm,
    /// Tied models share the embedding tensor here.
    pub lm_head: Linear,
    pub rope: Rope,
    pub device: Device,
    pub kind: Kind,
}

impl Llama {
    /// Loads a Hugging Face Llama directory (config.json + safetensors) to `device` in `kind`.
    pub fn load(dir: &Path, device: Device, kind: Kind) -> Result<Self> {
        let config = LlamaConfig::from_dir(dir)?;
        let files = SafetensorFiles::open(dir)?;
        let w = Weights::from_files(&files, device, kind)?;
        // Extra layers in the files would otherwise be ignored without a word.
        let layer = |l: i64| format!("model.layers.{l}.self_attn.q_proj.weight");
        let mut held = config.num_hidden_layers;
        while w.contains(&layer(held)) {
            held += 1;
        }
        if held > config.num_hidden_layers {
            bail!(
                "{}: num_hidden_layers = {} but the weights hold {held} layers: set num_hidden_layers = {held} (or use the matching weights)",
                dir.join("config.json").display(),
                config.num_hidden_layers
            );
        }
        Self::build(config, &w, device, kind)
            .with_context(|| format!("cannot load model {}", dir.display()))
    }

    /// A model at the config's real shapes with random weights (seeded), for speed and memory work.
    pub fn random_init(dir: &Path, device: Device, kind: Kind, seed: u64) -> Result<Self> {
        let config = LlamaConfig::from_dir(dir)?;
        Self::random_from_config(config, device, kind, seed)
    }

    pub fn random_from_config(
        config: LlamaConfig,
        device: Device,
        kind: Kind,
        seed: u64,
    ) -> Result<Self> {
        tch::manual_seed(seed as i64);
        let w = Weights::random(config.initializer_range, device, kind);
        tch::no_grad(|| Self::build(config, &w, device, kind))
    }

    fn build(config: LlamaConfig, w: &Weights, device: Device, kind: Kind) -> Result<Self> {
        let c = &config;
        let (h, i) = (c.hidden_size, c.intermediate_size);
        let (q_out, kv_out) = (
            c.num_attention_heads * c.head_dim,
            c.num_key_value_heads * c.head_dim,
        );
        let lin = |path: String, out: i64, inp: i64, bias: bool| -> Result<Linear> {
            let weight = w.get(&format!("{path}.weight"), &[out, inp])?;
            let b = if bias {
                Some(w.get_zeros(&format!("{path}.bias"), &[out])?)
            } else {
                None
            };
            Ok(Linear::new(path, input_major(&weight), b))
        };
        let embed_tokens = w.get("model.embed_tokens.weight", &[c.vocab_size, h])?;
        let mut layers = Vec::with_capacity(c.num_hidden_layers as usize);
        for l in 0..c.num_hidden_layers {
            let p = format!("model.layers.{l}");
            let ab = c.attention_bias;
            layers.push(DecoderLayer {
                input_layernorm: RmsNorm {
                    weight: w.get_ones(&format!("{p}.input_layernorm.weight"), &[h])?,
                    eps: c.rms_norm_eps,
                },
                self_attn: Attention {
                    q_proj: lin(format!("{p}.self_attn.q_proj"), q_out, h, ab)?,
                    k_proj: lin(format!("{p}.self_attn.k_proj"), kv_out, h, ab)?,
                    v_proj: lin(format!("{p}.self_attn.v_proj"), kv_out, h, ab)?,
                    o_proj: lin(format!("{p}.self_attn.o_proj"), h, q_out, ab)?,
                    num_heads: c.num_attention_heads,
                    num_kv_heads: c.num_key_value_heads,
                    head_dim: c.head_dim,
                },
                post_attention_layernorm: RmsNorm {
                    weight: w.get_ones(&format!("{p}.post_attention_layernorm.weight"), &[h])?,
                    eps: c.rms_norm_eps,
                },
                mlp: Mlp {
                    gate_proj: lin(format!("{p}.mlp.gate_proj"), i, h, c.mlp_bias)?,
                    up_proj: lin(format!("{p}.mlp.up_proj"), i, h, c.mlp_bias)?,
                    down_proj: lin(format!("{p}.mlp.down_proj"), h, i, c.mlp_bias)?,
                },
            });
        }
        let norm = RmsNorm {
            weight: w.get_ones("model.norm.weight", &[h])?,
            eps: c.rms_norm_eps,
        };
        let lm_head = if c.tie_word_embeddings {
            // On CPU the head gets its own input-major copy (the embedding lookup wants rows).
            Linear::new("lm_head", input_major(&embed_tokens), None)
        } else {
            lin("lm_head".to_string(), c.vocab_size, h, false)?
        };
        let rope = Rope::new(c.head_dim, c.rope_theta, &c.rope_scaling, device);
        Ok(Self {
            config,
            embed_tokens,
            layers,
            norm,
            lm_head,
            rope,
            device,
            kind,
        })
    }

    /// An empty cache sized for this model.
    pub fn new_cache(&self, batch: i64, max_len: i64) -> KvCache {
        let c = &self.config;
        KvCache::new(
            self.layers.len(),
            batch,
            c.num_key_value_heads,
            c.head_dim,
            max_len,
            self.kind,
            self.device,
        )
    }

    /// Final hidden states [B,T,H] (after the last norm). `attention_mask` [B,T] (1 = real
    /// token, 0 = pad) defaults to all ones; with a cache, the new tokens go after the cached ones.
    pub fn forward_hidden(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        mut cache: Option<&mut KvCache>,
    ) -> Tensor {
        let (b, t) = input_ids.size2().expect("input_ids must be [B, T]");
        let mask = match attention_mask {
            Some(m) => m.to_device(self.device).to_kind(Kind::Int64),
            None => Tensor::ones([b, t], (Kind::Int64, self.device)),
        };
        let mask_bool = mask.gt(0);
        let steps = mask.cumsum(1, Kind::Int64);
        let (past, positions, key_valid) = match cache.as_deref_mut() {
            Some(c) => {
                assert!(
                    c.len + t <= c.max_len,
                    "KV cache full: {} + {} > {}",
                    c.len,
                    t,
                    c.max_len
                );
                assert_eq!(
                    c.batch(),
                    b,
                    "KV cache batch {} != input batch {}",
                    c.batch(),
                    b
                );
                c.valid.narrow(1, c.len, t).copy_(&mask_bool);
                let pos = (c.next_pos.unsqueeze(1) + &steps - 1).clamp_min(0);
                c.next_pos += mask.sum_dim_intlist(1, false, Kind::Int64);
                (c.len, pos, c.valid.narrow(1, 0, c.len + t))
            }
            None => (0, (&steps - 1).clamp_min(0), mask_bool.shallow_clone()),
        };
        let opts = (Kind::Int64, self.device);
        let q_abs = Tensor::arange_start(past, past + t, opts).unsqueeze(1);
        let k_idx = Tensor::arange(past + t, opts).unsqueeze(0);
        // Causal and not padding; each query also sees itself so pad rows never softmax over nothing.
        let allowed = k_idx
            .le_tensor(&q_abs)
            .unsqueeze(0)
            .logical_and(&key_valid.unsqueeze(1))
            .logical_or(&k_idx.eq_tensor(&q_abs).unsqueeze(0))
            .unsqueeze(1);
        let (cos, sin) = self.rope.cos_sin(&positions, self.kind);
        let mut x = Tensor::embedding(
            &self.embed_tokens,
            &input_ids.to_device(self.device),
            -1,
            false,
            false,
        );
        for (l, layer) in self.layers.iter().enumerate() {
            let slot = cache.as_deref_mut().map(|c| (c, l));
            let a = layer.self_attn.forward(
                &layer.input_layernorm.forward(&x),
                &cos,
                &sin,
                &allowed,
                slot,
            );
            x = x + a;
            x = &x
                + layer
                    .mlp
                    .forward(&layer.post_attention_layernorm.forward(&x));
        }
        if let Some(c) = cache {
            c.len += t;
        }
        self.norm.forward(&x)
    }

    /// Logits [B,T,V] in the model dtype.
    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        cache: Option<&mut KvCache>,
    ) -> Tensor {
        self.lm_head
            .forward(&self.forward_hidden(input_ids, attention_mask, cache))
    }
}
