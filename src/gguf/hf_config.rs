//! config.json and generation_config.json for a Llama GGUF (`llama.*` metadata keys).
use super::reader::{GgufFile, Value};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value as Json};

/// The model dimensions the importer needs, read once from the metadata.
#[derive(Debug, Clone)]
pub struct LlamaDims {
    pub hidden: usize,
    pub intermediate: usize,
    pub layers: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    pub context: u64,
    pub rms_eps: f32,
    pub rope_theta: f32,
    pub vocab: usize,
}

fn uint(g: &GgufFile, key: &str) -> Result<Option<u64>> {
    match g.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .with_context(|| format!("metadata '{key}' = {v:?} is not an unsigned integer")),
    }
}

fn req(g: &GgufFile, key: &str) -> Result<usize> {
    let v = uint(g, key)?.with_context(|| format!("metadata '{key}' is missing"))?;
    if v == 0 || v > u32::MAX as u64 {
        bail!("metadata '{key}' = {v} is out of range");
    }
    Ok(v as usize)
}

fn float(g: &GgufFile, key: &str, default: f32) -> Result<f32> {
    match g.get(key) {
        None => Ok(default),
        Some(v) => v
            .as_f64()
            .map(|x| x as f32)
            .with_context(|| format!("metadata '{key}' = {v:?} is not a number")),
    }
}

impl LlamaDims {
    /// Reads `llama.*` keys; `vocab` falls back to the token list, then the embedding rows.
    pub fn read(g: &GgufFile) -> Result<Self> {
        let arch = g
            .get("general.architecture")
            .and_then(Value::as_str)
            .unwrap_or("");
        if arch != "llama" {
            bail!("general.architecture = '{arch}': only 'llama' GGUF files can be imported");
        }
        let hidden = req(g, "llama.embedding_length")?;
        let n_head = req(g, "llama.attention.head_count")?;
        let n_head_kv = match uint(g, "llama.attention.head_count_kv")? {
            None => n_head,
            Some(_) => req(g, "llama.attention.head_count_kv")?,
        };
        let head_dim = match uint(g, "llama.attention.key_length")? {
            Some(_) => req(g, "llama.attention.key_length")?,
            None => hidden / n_head,
        };
        if n_head % n_head_kv != 0 {
            bail!("head_count {n_head} is not a multiple of head_count_kv {n_head_kv}");
        }
        let tokens = g
            .get("tokenizer.ggml.tokens")
            .and_then(Value::as_array)
            .map(|a| a.len());
        let embd_rows = g
            .tensor("token_embd.weight")
            .and_then(|t| t.dims.get(1).copied());
        let vocab = match uint(g, "llama.vocab_size")? {
            Some(v) => v as usize,
            None => tokens
                .or(embd_rows.map(|r| r as usize))
                .context("cannot tell the vocabulary size")?,
        };
        Ok(LlamaDims {
            hidden,
            intermediate: req(g, "llama.feed_forward_length")?,
            layers: req(g, "llama.block_count")?,
            n_head,
            n_head_kv,
            head_dim,
            context: uint(g, "llama.context_length")?.unwrap_or(2048),
            rms_eps: float(g, "llama.attention.layer_norm_rms_epsilon", 1e-5)?,
            rope_theta: float(g, "llama.rope.freq_base", 10000.0)?,
            vocab,
        })
    }
}

/// An f32 as the shortest decimal that reads back to the same f32 (1e-05, not 9.99e-06).
fn f32_json(x: f32) -> Json {
    let shortest: f64 = format!("{x}").parse().expect("f32 display parses");
    json!(shortest)
}

fn id(g: &GgufFile, key: &str) -> Json {
    g.get(key)
        .and_then(Value::as_u64)
        .map_or(Json::Null, |v| json!(v))
}

/// config.json for LlamaForCausalLM.
pub fn config_json(g: &GgufFile, d: &LlamaDims, tied: bool, dtype: &str) -> Json {
    json!({
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": d.hidden,
        "intermediate_size": d.intermediate,
        "num_hidden_layers": d.layers,
        "num_attention_heads": d.n_head,
        "num_key_value_heads": d.n_head_kv,
        "head_dim": d.head_dim,
        "max_position_embeddings": d.context,
        "rms_norm_eps": f32_json(d.rms_eps),
        "rope_theta": f32_json(d.rope_theta),
        "rope_scaling": null,
        "hidden_act": "silu",
        "attention_bias": false,
        "attention_dropout": 0.0,
        "mlp_bias": false,
        "initializer_range": 0.02,
        "vocab_size": d.vocab,
        "tie_word_embeddings": tied,
        "bos_token_id": id(g, "tokenizer.ggml.bos_token_id"),
        "eos_token_id": id(g, "tokenizer.ggml.eos_token_id"),
        "pad_token_id": id(g, "tokenizer.ggml.padding_token_id"),
        "use_cache": true,
        "torch_dtype": dtype,
    })
}

/// generation_config.json: the special ids generation needs.
pub fn generation_config_json(g: &GgufFile) -> Json {
    json!({
        "bos_token_id": id(g, "tokenizer.ggml.bos_token_id"),
        "eos_token_id": id(g, "tokenizer.ggml.eos_token_id"),
        "pad_token_id": id(g, "tokenizer.ggml.padding_token_id"),
    })
}
