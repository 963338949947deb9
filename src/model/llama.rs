//! The one decoder in tch, for every supported family: embeddings (plus learned positions
//! for GPT-2), N × (norm → attention → norm → MLP) with residuals, final norm, lm_head.
//! Mirrors transformers' LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM and
//! GPT2LMHeadModel operation for operation; the families differ only in the parts the
//! config names (norm kind, RoPE or learned positions, SwiGLU or GELU MLP, biases, q/k
//! norm, fused qkv), so training, generation and adapters are written once.
//!
//! One forward serves training (no cache; gradients flow into adapter parameters) and
//! decoding (a [`KvCache`]). Padding may be on either side: position ids come from the
//! attention mask and padded keys are masked, so a row's result does not depend on the
//! other rows of its batch.
use super::config::{Family, LlamaConfig};
use super::kv_cache::KvCache;
use super::linear::{input_major, Linear};
use super::rope::{self, Rope};
use super::weights::{SafetensorFiles, Weights};
use crate::util::{new_f32, plain_f32};
use anyhow::{bail, Context, Result};
use std::path::Path;
use tch::{Device, Kind, Tensor};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormKind {
    /// Llama/Qwen RMSNorm: computed in f32, scaled by the weight in the model dtype.
    Rms,
    /// GPT-2's LayerNorm with weight and bias.
    Layer,
}

#[derive(Debug)]
pub struct Norm {
    pub kind: NormKind,
    pub weight: Tensor,
    /// LayerNorm only.
    pub bias: Option<Tensor>,
    pub eps: f64,
}

impl Norm {
    pub fn forward(&self, x: &Tensor) -> Tensor {
        match self.kind {
            NormKind::Rms => {
                if let Some(y) = rms_rows(x, &self.weight, self.eps) {
                    return y;
                }
                let kind = x.kind();
                let h = x.to_kind(Kind::Float);
                let var = h.square().mean_dim(-1, true, Kind::Float);
                &self.weight * (h * (var + self.eps).rsqrt()).to_kind(kind)
            }
            NormKind::Layer => x.layer_norm(
                [self.weight.size()[0]],
                Some(&self.weight),
                self.bias.as_ref(),
                self.eps,
                false,
            ),
        }
    }
}

/// RMSNorm of the few f32 rows of a decode step on the CPU, in one loop instead of seven
/// torch ops (whose dispatch is most of its cost at these sizes). The same arithmetic:
/// w · (h · rsqrt(mean(h²) + eps)) in f32. None where it does not apply (gradients, other
/// kinds or devices, more than 64 rows).
fn rms_rows(x: &Tensor, weight: &Tensor, eps: f64) -> Option<Tensor> {
    let h = *x.size().last()? as usize;
    let (xs, ws) = (plain_f32(x)?, plain_f32(weight)?);
    if ws.len() != h || h == 0 || xs.len() > 64 * h {
        return None;
    }
    Some(new_f32(&x.size(), |ys| {
        rms_norm_rows(xs, ws, eps as f32, ys)
    }))
}

/// y = w · (x · rsqrt(mean(x²) + eps)) for each row of `x` (rows of w.len()), in f32: the
/// RMSNorm of the decode-sized loops (this file's and the fused decode step's).
pub fn rms_norm_rows(x: &[f32], w: &[f32], eps: f32, y: &mut [f32]) {
    let h = w.len();
    for (xr, yr) in x.chunks_exact(h).zip(y.chunks_exact_mut(h)) {
        let ms = xr.iter().map(|v| v * v).sum::<f32>() / h as f32;
        let r = 1.0 / (ms + eps).sqrt();
        for ((y, x), w) in yr.iter_mut().zip(xr).zip(w) {
            *y = w * (x * r);
        }
    }
}

/// The q, k, v projections: three layers, or GPT-2's one `c_attn` split after the product.
#[derive(Debug)]
pub enum Qkv {
    Split {
        q_proj: Linear,
        k_proj: Linear,
        v_proj: Linear,
    },
    Fused(Linear),
}

#[derive(Debug)]
pub struct Attention {
    pub qkv: Qkv,
    /// o_proj (GPT-2: attn.c_proj).
    pub o_proj: Linear,
    /// Qwen3's per-head RMSNorm on q and k (over head_dim, before RoPE).
    pub q_norm: Option<Norm>,
    pub k_norm: Option<Norm>,
    pub num_heads: i64,
    pub num_kv_heads: i64,
    pub head_dim: i64,
}

impl Attention {
    /// x [B,T,H]; RoPE cos/sin unless positions are learned; mask [B,1,T,Tk] bool (true =
    /// attend); cache slot for this layer if decoding.
    fn forward(
        &self,
        x: &Tensor,
        rope_cs: Option<(&Tensor, &Tensor)>,
        mask: &Tensor,
        cache: Option<(&mut KvCache, usize)>,
    ) -> Tensor {
        let (b, t, _) = x.size3().unwrap();
        let (nq, nkv, hd) = (self.num_heads, self.num_kv_heads, self.head_dim);
        let (q, k, v) = match &self.qkv {
            Qkv::Split {
                q_proj,
                k_proj,
                v_proj,
            } => (q_proj.forward(x), k_proj.forward(x), v_proj.forward(x)),
            Qkv::Fused(c) => {
                let y = c.forward(x);
                let p = y.split_with_sizes([nq * hd, nkv * hd, nkv * hd], -1);
                (
                    p[0].shallow_clone(),
                    p[1].shallow_clone(),
                    p[2].shallow_clone(),
                )
            }
        };
        // [B,T,n·hd] → [B,T,n,hd], q/k norm over hd, → [B,n,T,hd], RoPE.
        let heads = |y: Tensor, n: i64, norm: &Option<Norm>| {
            let y = y.reshape([b, t, n, hd]);
            let y = match norm {
                Some(nm) => nm.forward(&y),
                None => y,
            }
            .transpose(1, 2);
            match rope_cs {
                Some((cos, sin)) => rope::apply(&y, cos, sin),
                None => y,
            }
        };
        let q = heads(q, nq, &self.q_norm);
        let k = heads(k, nkv, &self.k_norm);
        let v = v.reshape([b, t, nkv, hd]).transpose(1, 2);
        let (k, v) = match cache {
            Some((c, layer)) => c.write(layer, &k, &v),
            None => (k, v),
        };
        let gqa = nkv != nq;
        let o = Tensor::scaled_dot_product_attention(&q, &k, &v, Some(mask), 0.0, false, None, gqa);
        self.o_proj
            .forward(&o.transpose(1, 2).reshape([b, t, nq * hd]))
    }

    /// Its linear layers in model order.
    pub fn linears(&self) -> Vec<&Linear> {
        match &self.qkv {
            Qkv::Split {
                q_proj,
                k_proj,
                v_proj,
            } => vec![q_proj, k_proj, v_proj, &self.o_proj],
            Qkv::Fused(c) => vec![c, &self.o_proj],
        }
    }

    pub fn linears_mut(&mut self) -> Vec<&mut Linear> {
        match &mut self.qkv {
            Qkv::Split {
                q_proj,
                k_proj,
                v_proj,
            } => vec![q_proj, k_proj, v_proj, &mut self.o_proj],
            Qkv::Fused(c) => vec![c, &mut self.o_proj],
        }
    }
}

#[derive(Debug)]
pub enum Mlp {
    /// Llama/Qwen SwiGLU: down(silu(gate x) · up x).
    Gated {
        gate_proj: Linear,
        up_proj: Linear,
        down_proj: Linear,
    },
    /// GPT-2: c_proj(gelu_tanh(c_fc x)).
    Gelu { c_fc: Linear, c_proj: Linear },
}

impl Mlp {
    fn forward(&self, x: &Tensor) -> Tensor {
        match self {
            Mlp::Gated {
                gate_proj,
                up_proj,
                down_proj,
            } => down_proj.forward(&(gate_proj.forward(x).silu() * up_proj.forward(x))),
            Mlp::Gelu { c_fc, c_proj } => c_proj.forward(&c_fc.forward(x).gelu("tanh")),
        }
    }

    pub fn linears(&self) -> Vec<&Linear> {
        match self {
            Mlp::Gated {
                gate_proj,
                up_proj,
                down_proj,
            } => vec![gate_proj, up_proj, down_proj],
            Mlp::Gelu { c_fc, c_proj } => vec![c_fc, c_proj],
        }
    }

    pub fn linears_mut(&mut self) -> Vec<&mut Linear> {
        match self {
            Mlp::Gated {
                gate_proj,
                up_proj,
                down_proj,
            } => vec![gate_proj, up_proj, down_proj],
            Mlp::Gelu { c_fc, c_proj } => vec![c_fc, c_proj],
        }
    }
}

#[derive(Debug)]
pub struct DecoderLayer {
    pub input_layernorm: Norm,
    pub self_attn: Attention,
    pub post_attention_layernorm: Norm,
    pub mlp: Mlp,
}

/// The Hugging Face names of a family's tensors (module paths, without `.weight`).
pub struct Names {
    pub embed: &'static str,
    pub layer: &'static str,
    pub final_norm: &'static str,
}

impl Names {
    pub fn of(family: Family) -> Names {
        match family {
            Family::Gpt2 => Names {
                embed: "transformer.wte",
                layer: "transformer.h",
                final_norm: "transformer.ln_f",
            },
            _ => Names {
                embed: "model.embed_tokens",
                layer: "model.layers",
                final_norm: "model.norm",
            },
        }
    }
}

/// Saved buffers that are not weights: GPT-2's causal-mask buffers (older checkpoints) and
/// rotary inverse frequencies (older Llama checkpoints); both are recomputed here.
fn is_buffer(name: &str) -> bool {
    name.ends_with(".attn.bias")
        || name.ends_with(".attn.masked_bias")
        || name.ends_with("rotary_emb.inv_freq")
}

/// GPT-2's learned position table, module path.
pub const GPT2_WPE: &str = "transformer.wpe";

#[derive(Debug)]
pub struct Llama {
    pub config: LlamaConfig,
    /// [vocab, hidden], frozen (GPT-2: wte).
    pub embed_tokens: Tensor,
    /// GPT-2's learned positions [n_positions, hidden]; None with RoPE.
    pub wpe: Option<Tensor>,
    pub layers: Vec<DecoderLayer>,
    pub norm: Norm,
    /// Tied models share the embedding tensor here.
    pub lm_head: Linear,
    /// None with learned positions.
    pub rope: Option<Rope>,
    pub device: Device,
    pub kind: Kind,
}

impl Llama {
    /// Loads a Hugging Face model directory (config.json + safetensors) to `device` in `kind`.
    pub fn load(dir: &Path, device: Device, kind: Kind) -> Result<Self> {
        let config = LlamaConfig::from_dir(dir)?;
        let files = SafetensorFiles::open(dir)?;
        let w = Weights::from_files(&files, device, kind)?;
        // Extra layers in the files would otherwise be ignored without a word.
        let names = Names::of(config.family);
        let first = match config.family {
            Family::Gpt2 => "attn.c_attn",
            _ => "self_attn.q_proj",
        };
        let layer = |l: i64| {
            let p = format!("{}.{l}.{first}.weight", names.layer);
            // Checkpoints saved from GPT2Model have no `transformer.` prefix.
            w.contains(&p) || w.contains(p.trim_start_matches("transformer."))
        };
        let mut held = config.num_hidden_layers;
        while layer(held) {
            held += 1;
        }
        if held > config.num_hidden_layers {
            bail!(
                "{}: num_hidden_layers = {} but the weights hold {held} layers: set num_hidden_layers = {held} (or use the matching weights)",
                dir.join("config.json").display(),
                config.num_hidden_layers
            );
        }
        let model = Self::build(config, &w, device, kind)
            .with_context(|| format!("cannot load model {}", dir.display()))?;
        // A tensor left over means the files hold a part this family's config does not
        // name (e.g. Qwen3's q_norm under model_type qwen2): the model would run without it.
        let tied = model.config.tie_word_embeddings;
        let left: Vec<String> = w
            .unused()
            .into_iter()
            .filter(|n| !(tied && n == "lm_head.weight") && !is_buffer(n))
            .collect();
        if let Some(first) = left.first() {
            bail!(
                "{}: {} tensor(s) in the weights are not part of a '{}' model (first: '{first}'): the config's model_type or options do not match the weights",
                dir.display(),
                left.len(),
                model.config.model_type
            );
        }
        // A NaN or inf weight turns every output into NaN: text comes out empty and logits
        // NaN, with exit 0. One pass over the weights at load refuses such files instead.
        let broken = model
            .named_tensors()
            .into_iter()
            .find(|(_, t)| t.isfinite().all().int64_value(&[]) == 0);
        if let Some((name, _)) = broken {
            bail!(
                "{}: weight '{name}' holds NaN or infinite values: the model files are damaged; re-download, re-import or re-merge the model",
                dir.display()
            );
        }
        Ok(model)
    }

    /// A model at the config's real shapes with random weights (seeded), for speed and memory work.
    pub fn random_init(dir: &Path, device: Device, kind: Kind, seed: u64) -> Result<Self> {
        let config = LlamaConfig::from_dir(dir)?;
        Self::random_from_config(config, device, kind, seed)
            .with_context(|| format!("{}", dir.join("config.json").display()))
    }

    pub fn random_from_config(
        config: LlamaConfig,
        device: Device,
        kind: Kind,
        seed: u64,
    ) -> Result<Self> {
        let c = &config;
        let (h, i, l) = (
            c.hidden_size as f64,
            c.intermediate_size as f64,
            c.num_hidden_layers as f64,
        );
        let q = (c.num_attention_heads * c.head_dim) as f64;
        let kv = (c.num_key_value_heads * c.head_dim) as f64;
        // The embedding and the head (a copy even when tied), then every layer's matrices.
        let params = 2.0 * c.vocab_size as f64 * h + l * (2.0 * h * q + 2.0 * h * kv + 3.0 * h * i);
        let elem = if kind == Kind::Float { 4.0 } else { 2.0 };
        crate::util::check_fits(
            params * elem,
            &format!(
                "a random model of these sizes ({} layers, hidden {}, vocab {})",
                c.num_hidden_layers, c.hidden_size, c.vocab_size
            ),
            "check config.json's sizes",
        )?;
        tch::manual_seed(seed as i64);
        let w = Weights::random(config.initializer_range, device, kind);
        tch::no_grad(|| Self::build(config, &w, device, kind))
    }

    fn build(config: LlamaConfig, w: &Weights, device: Device, kind: Kind) -> Result<Self> {
        let c = &config;
        let (h, i, hd) = (c.hidden_size, c.intermediate_size, c.head_dim);
        let (q_out, kv_out) = (c.num_attention_heads * hd, c.num_key_value_heads * hd);
        let gpt2 = c.family == Family::Gpt2;
        // GPT-2 checkpoints saved from GPT2Model (the original ones) lack `transformer.`.
        let bare = gpt2 && !w.contains("transformer.wte.weight") && w.contains("wte.weight");
        let file = |name: &str| -> String {
            if bare {
                name.trim_start_matches("transformer.").to_string()
            } else {
                name.to_string()
            }
        };
        let bias = |path: &str, out: i64, on: bool| -> Result<Option<Tensor>> {
            on.then(|| w.get_zeros(&file(&format!("{path}.bias")), &[out]))
                .transpose()
        };
        // nn.Linear stores [out, in]; GPT-2's Conv1D stores [in, out] (fan_in_fan_out).
        let lin = |path: String, out: i64, inp: i64, has_bias: bool| -> Result<Linear> {
            let b = bias(&path, out, has_bias)?;
            if gpt2 {
                let weight = w.get(&file(&format!("{path}.weight")), &[inp, out])?;
                let mut l = Linear::new(path, input_major(&weight.tr().contiguous()), b);
                l.fan_in_fan_out = true;
                Ok(l)
            } else {
                let weight = w.get(&format!("{path}.weight"), &[out, inp])?;
                Ok(Linear::new(path, input_major(&weight), b))
            }
        };
        let norm_kind = if gpt2 { NormKind::Layer } else { NormKind::Rms };
        let norm = |path: String, size: i64| -> Result<Norm> {
            Ok(Norm {
                kind: norm_kind,
                weight: w.get_ones(&file(&format!("{path}.weight")), &[size])?,
                bias: bias(&path, size, gpt2)?,
                eps: c.norm_eps,
            })
        };
        let names = Names::of(c.family);
        let embed_tokens = w.get(
            &file(&format!("{}.weight", names.embed)),
            &[c.vocab_size, h],
        )?;
        let wpe = if gpt2 {
            Some(w.get(
                &file(&format!("{GPT2_WPE}.weight")),
                &[c.max_position_embeddings, h],
            )?)
        } else {
            None
        };
        let mut layers = Vec::with_capacity(c.num_hidden_layers as usize);
        for l in 0..c.num_hidden_layers {
            let p = format!("{}.{l}", names.layer);
            let layer = if gpt2 {
                DecoderLayer {
                    input_layernorm: norm(format!("{p}.ln_1"), h)?,
                    self_attn: Attention {
                        qkv: Qkv::Fused(lin(format!("{p}.attn.c_attn"), 3 * h, h, true)?),
                        o_proj: lin(format!("{p}.attn.c_proj"), h, h, true)?,
                        q_norm: None,
                        k_norm: None,
                        num_heads: c.num_attention_heads,
                        num_kv_heads: c.num_key_value_heads,
                        head_dim: hd,
                    },
                    post_attention_layernorm: norm(format!("{p}.ln_2"), h)?,
                    mlp: Mlp::Gelu {
                        c_fc: lin(format!("{p}.mlp.c_fc"), i, h, true)?,
                        c_proj: lin(format!("{p}.mlp.c_proj"), h, i, true)?,
                    },
                }
            } else {
                let qk_norm = |name: &str| -> Result<Option<Norm>> {
                    c.qk_norm
                        .then(|| norm(format!("{p}.self_attn.{name}"), hd))
                        .transpose()
                };
                DecoderLayer {
                    input_layernorm: norm(format!("{p}.input_layernorm"), h)?,
                    self_attn: Attention {
                        qkv: Qkv::Split {
                            q_proj: lin(format!("{p}.self_attn.q_proj"), q_out, h, c.qkv_bias)?,
                            k_proj: lin(format!("{p}.self_attn.k_proj"), kv_out, h, c.qkv_bias)?,
                            v_proj: lin(format!("{p}.self_attn.v_proj"), kv_out, h, c.qkv_bias)?,
                        },
                        o_proj: lin(format!("{p}.self_attn.o_proj"), h, q_out, c.o_bias)?,
                        q_norm: qk_norm("q_norm")?,
                        k_norm: qk_norm("k_norm")?,
                        num_heads: c.num_attention_heads,
                        num_kv_heads: c.num_key_value_heads,
                        head_dim: hd,
                    },
                    post_attention_layernorm: norm(format!("{p}.post_attention_layernorm"), h)?,
                    mlp: Mlp::Gated {
                        gate_proj: lin(format!("{p}.mlp.gate_proj"), i, h, c.mlp_bias)?,
                        up_proj: lin(format!("{p}.mlp.up_proj"), i, h, c.mlp_bias)?,
                        down_proj: lin(format!("{p}.mlp.down_proj"), h, i, c.mlp_bias)?,
                    },
                }
            };
            layers.push(layer);
        }
        let norm = norm(names.final_norm.to_string(), h)?;
        let lm_head = if c.tie_word_embeddings {
            // On CPU the head gets its own input-major copy (the embedding lookup wants rows).
            Linear::new("lm_head", input_major(&embed_tokens), None)
        } else {
            let weight = w.get("lm_head.weight", &[c.vocab_size, h])?;
            Linear::new("lm_head", input_major(&weight), None)
        };
        let rope = (!gpt2).then(|| Rope::new(hd, c.rope_theta, &c.rope_scaling, device));
        Ok(Self {
            config,
            embed_tokens,
            wpe,
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
        let cs = self.rope.as_ref().map(|r| r.cos_sin(&positions, self.kind));
        let mut x = Tensor::embedding(
            &self.embed_tokens,
            &input_ids.to_device(self.device),
            -1,
            false,
            false,
        );
        if let Some(wpe) = &self.wpe {
            x = x + Tensor::embedding(wpe, &positions, -1, false, false);
        }
        for (l, layer) in self.layers.iter().enumerate() {
            let slot = cache.as_deref_mut().map(|c| (c, l));
            let a = layer.self_attn.forward(
                &layer.input_layernorm.forward(&x),
                cs.as_ref().map(|(c, s)| (c, s)),
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
