//! The BERT encoder stack (also RoBERTa and XLM-R, which differ only in position ids) in f32:
//! embeddings + LayerNorm, then post-norm self-attention / GELU feed-forward blocks.
use super::st_dir::{Arch, EncoderConfig};
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::PathBuf;
use tch::{Device, Kind, Tensor};

struct Linear {
    w: Tensor,
    b: Tensor,
}

impl Linear {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.linear(&self.w, Some(&self.b))
    }
}

struct LayerNorm {
    w: Tensor,
    b: Tensor,
}

struct Layer {
    /// Query, key and value projections stacked into one `[3H, H]` matmul.
    qkv: Linear,
    attn_out: Linear,
    attn_ln: LayerNorm,
    inter: Linear,
    out: Linear,
    out_ln: LayerNorm,
}

pub struct BertModel {
    pub cfg: EncoderConfig,
    word: Tensor,
    pos: Tensor,
    token_type: Option<Tensor>,
    emb_ln: LayerNorm,
    layers: Vec<Layer>,
    pub device: Device,
}

/// Weights by name with the model prefix (`bert.`, `roberta.`, ...) removed, so both
/// base-model and task-model checkpoints load.
struct Weights {
    map: HashMap<String, Tensor>,
    source: String,
    device: Device,
}

impl Weights {
    fn read(files: &[PathBuf], device: Device) -> Result<Self> {
        let mut map = HashMap::new();
        for f in files {
            let tensors = Tensor::read_safetensors(f)
                .with_context(|| format!("cannot read {}", f.display()))?;
            for (name, t) in tensors {
                map.insert(canonical_name(&name), t);
            }
        }
        let source = files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        Ok(Weights {
            map,
            source,
            device,
        })
    }

    /// The named tensor as f32 on the device, checked against the expected shape.
    fn take(&mut self, name: &str, shape: &[i64]) -> Result<Tensor> {
        let t = self
            .map
            .remove(name)
            .with_context(|| format!("tensor '{name}' is missing from {}", self.source))?;
        if t.size() != shape {
            bail!(
                "tensor '{name}' in {} has shape {:?}, expected {:?}",
                self.source,
                t.size(),
                shape
            );
        }
        Ok(t.to_kind(Kind::Float).to_device(self.device))
    }

    fn linear(&mut self, prefix: &str, out: i64, inp: i64) -> Result<Linear> {
        Ok(Linear {
            w: self.take(&format!("{prefix}.weight"), &[out, inp])?,
            b: self.take(&format!("{prefix}.bias"), &[out])?,
        })
    }

    fn layer_norm(&mut self, prefix: &str, h: i64) -> Result<LayerNorm> {
        Ok(LayerNorm {
            w: self.take(&format!("{prefix}.weight"), &[h])?,
            b: self.take(&format!("{prefix}.bias"), &[h])?,
        })
    }
}

/// Strips a task-model prefix and maps old `gamma`/`beta` LayerNorm names to `weight`/`bias`.
pub fn canonical_name(name: &str) -> String {
    let mut n = name;
    for p in ["bert.", "roberta.", "xlm_roberta.", "model."] {
        if let Some(rest) = n.strip_prefix(p) {
            n = rest;
            break;
        }
    }
    let n = n.to_string();
    if let Some(base) = n.strip_suffix(".gamma") {
        format!("{base}.weight")
    } else if let Some(base) = n.strip_suffix(".beta") {
        format!("{base}.bias")
    } else {
        n
    }
}

/// Position ids: 0..T for BERT; for RoBERTa/XLM-R, pad + 1 + (index among real tokens) on real
/// tokens and pad on pads, as transformers' create_position_ids_from_input_ids.
pub fn position_ids(ids: &Tensor, arch: Arch, pad: i64) -> Tensor {
    let (b, t) = (ids.size()[0], ids.size()[1]);
    match arch {
        Arch::Bert => Tensor::arange(t, (Kind::Int64, ids.device()))
            .unsqueeze(0)
            .expand([b, t], false),
        Arch::Roberta => {
            let real = ids.ne(pad).to_kind(Kind::Int64);
            real.cumsum(1, Kind::Int64) * &real + pad
        }
    }
}

impl BertModel {
    pub fn load(cfg: &EncoderConfig, files: &[PathBuf], device: Device) -> Result<Self> {
        let mut w = Weights::read(files, device)?;
        let h = cfg.hidden_size as i64;
        let i = cfg.intermediate_size as i64;
        if cfg.num_attention_heads == 0 || cfg.hidden_size % cfg.num_attention_heads != 0 {
            bail!(
                "config.json: hidden_size {h} is not divisible by num_attention_heads {}",
                cfg.num_attention_heads
            );
        }
        let word = w.take(
            "embeddings.word_embeddings.weight",
            &[cfg.vocab_size as i64, h],
        )?;
        let pos = w.take(
            "embeddings.position_embeddings.weight",
            &[cfg.max_position_embeddings as i64, h],
        )?;
        let token_type = if cfg.type_vocab_size > 0 {
            Some(w.take(
                "embeddings.token_type_embeddings.weight",
                &[cfg.type_vocab_size as i64, h],
            )?)
        } else {
            None
        };
        let emb_ln = w.layer_norm("embeddings.LayerNorm", h)?;
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for l in 0..cfg.num_hidden_layers {
            let p = format!("encoder.layer.{l}");
            let q = w.linear(&format!("{p}.attention.self.query"), h, h)?;
            let k = w.linear(&format!("{p}.attention.self.key"), h, h)?;
            let v = w.linear(&format!("{p}.attention.self.value"), h, h)?;
            let qkv = Linear {
                w: Tensor::cat(&[q.w, k.w, v.w], 0),
                b: Tensor::cat(&[q.b, k.b, v.b], 0),
            };
            layers.push(Layer {
                qkv,
                attn_out: w.linear(&format!("{p}.attention.output.dense"), h, h)?,
                attn_ln: w.layer_norm(&format!("{p}.attention.output.LayerNorm"), h)?,
                inter: w.linear(&format!("{p}.intermediate.dense"), i, h)?,
                out: w.linear(&format!("{p}.output.dense"), h, i)?,
                out_ln: w.layer_norm(&format!("{p}.output.LayerNorm"), h)?,
            });
        }
        Ok(BertModel {
            cfg: cfg.clone(),
            word,
            pos,
            token_type,
            emb_ln,
            layers,
            device,
        })
    }

    fn ln(&self, x: &Tensor, n: &LayerNorm) -> Tensor {
        x.layer_norm(
            [self.cfg.hidden_size as i64].as_slice(),
            Some(&n.w),
            Some(&n.b),
            self.cfg.layer_norm_eps,
            true,
        )
    }

    /// Final token states `[B, T, H]` for `ids [B, T]` (int64) with `mask [B, T]` (1 = real token).
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> Tensor {
        let (b, t) = (ids.size()[0], ids.size()[1]);
        let h = self.cfg.hidden_size as i64;
        let nh = self.cfg.num_attention_heads as i64;
        let pos = position_ids(ids, self.cfg.arch, self.cfg.pad_token_id);
        let mut x = self.word.index_select(0, &ids.view([-1])).view([b, t, h])
            + self.pos.index_select(0, &pos.reshape([-1])).view([b, t, h]);
        if let Some(tt) = &self.token_type {
            // Single sentences: every token has type 0.
            x += tt.get(0);
        }
        let mut x = self.ln(&x, &self.emb_ln);
        // Keys that are padding take no part in attention: [B, 1, 1, T], true = attend.
        let attend = mask.ne(0).view([b, 1, 1, t]);
        for l in &self.layers {
            let qkv = l
                .qkv
                .forward(&x)
                .view([b, t, 3, nh, h / nh])
                .permute([2, 0, 3, 1, 4]);
            let (q, k, v) = (qkv.get(0), qkv.get(1), qkv.get(2));
            let a = Tensor::scaled_dot_product_attention(
                &q,
                &k,
                &v,
                Some(&attend),
                0.0,
                false,
                None,
                false,
            );
            let a = a.transpose(1, 2).reshape([b, t, h]);
            x = self.ln(&(l.attn_out.forward(&a) + &x), &l.attn_ln);
            let f = l.inter.forward(&x).gelu(self.cfg.gelu_approximate);
            x = self.ln(&(l.out.forward(&f) + &x), &l.out_ln);
        }
        x
    }
}
