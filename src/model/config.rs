//! The model's config.json, read the way transformers reads the config of each supported
//! family: Llama (and Mistral without a sliding window), Qwen2/Qwen2.5, Qwen3 and GPT-2.
//! They differ only in parts (norm, positions, MLP, biases, q/k norm, fused qkv), which
//! [`LlamaConfig`] names so that the one decoder in `llama.rs` can run them all.
//!
//! Both layouts of the RoPE settings are accepted: `rope_theta` + `rope_scaling`
//! (transformers 4) and `rope_parameters` (transformers 5). Anything we cannot run
//! exactly (other architectures, sliding windows, unknown RoPE types) is refused in one line.
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::path::Path;

/// How rotary frequencies are derived (transformers' `rope_type`).
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    /// Plain RoPE: inv_freq = 1 / theta^(2i/d).
    Default,
    /// Position interpolation: inv_freq / factor.
    Linear { factor: f64 },
    /// Llama 3.1/3.2 frequency-dependent scaling.
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original_max_position_embeddings: f64,
    },
}

/// The model families the decoder runs (config.json's `model_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Llama,
    Qwen2,
    Qwen3,
    Gpt2,
}

/// The `model_type` values accepted, for error messages.
pub const SUPPORTED: &str = "llama, mistral (no sliding window), qwen2, qwen3, gpt2";

/// Activation of the MLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// SwiGLU: down(silu(gate x) · up x).
    Silu,
    /// GPT-2's "gelu_new" (tanh approximation) in a plain two-layer MLP.
    GeluTanh,
}

#[derive(Debug, Clone)]
pub struct LlamaConfig {
    pub model_type: String,
    pub family: Family,
    pub vocab_size: i64,
    pub hidden_size: i64,
    pub intermediate_size: i64,
    pub num_hidden_layers: i64,
    pub num_attention_heads: i64,
    pub num_key_value_heads: i64,
    pub head_dim: i64,
    /// Epsilon of every norm (rms_norm_eps, or GPT-2's layer_norm_epsilon).
    pub norm_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: RopeScaling,
    pub max_position_embeddings: i64,
    pub tie_word_embeddings: bool,
    /// Bias on q/k/v (Llama/Qwen3 attention_bias; always on in Qwen2 and GPT-2).
    pub qkv_bias: bool,
    /// Bias on the attention output projection (attention_bias; off in Qwen2, on in GPT-2).
    pub o_bias: bool,
    /// Bias on the MLP projections (LlamaConfig.mlp_bias; on in GPT-2).
    pub mlp_bias: bool,
    /// Qwen3's RMSNorm over head_dim on q and k before RoPE.
    pub qk_norm: bool,
    pub act: Act,
    pub bos_token_id: Option<i64>,
    /// Every id that ends a sequence (config.json and generation_config.json together).
    pub eos_token_ids: Vec<i64>,
    pub pad_token_id: Option<i64>,
    /// Std of the normal used by `--random-init` (initializer_range).
    pub initializer_range: f64,
}

fn ids(v: Option<&Value>) -> Vec<i64> {
    match v {
        Some(Value::Number(n)) => n.as_i64().into_iter().collect(),
        Some(Value::Array(a)) => a.iter().filter_map(|x| x.as_i64()).collect(),
        _ => vec![],
    }
}

impl LlamaConfig {
    /// Reads `dir/config.json` (and eos ids from `dir/generation_config.json` when present).
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read {} (is --model a Hugging Face model directory?)",
                path.display()
            )
        })?;
        let v: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON", path.display()))?;
        let mut cfg = Self::from_json(&v).with_context(|| format!("{}", path.display()))?;
        let gen = dir.join("generation_config.json");
        if let Ok(t) = std::fs::read_to_string(&gen) {
            if let Ok(g) = serde_json::from_str::<Value>(&t) {
                for id in ids(g.get("eos_token_id")) {
                    if !cfg.eos_token_ids.contains(&id) {
                        cfg.eos_token_ids.push(id);
                    }
                }
            }
        }
        Ok(cfg)
    }

    /// Parses a config.json value; refuses model types and options we do not run exactly.
    pub fn from_json(v: &Value) -> Result<Self> {
        let model_type = v
            .get("model_type")
            .and_then(|x| x.as_str())
            .unwrap_or("")
            .to_string();
        let family = match model_type.as_str() {
            "llama" => Family::Llama,
            // Mistral without a sliding window is the Llama architecture under another name.
            "mistral" => {
                if let Some(w) = v.get("sliding_window").and_then(|x| x.as_i64()) {
                    bail!("model_type 'mistral' with sliding_window={w} is not supported (sliding-window attention); supported: {SUPPORTED}");
                }
                Family::Llama
            }
            "qwen2" => Family::Qwen2,
            "qwen3" => Family::Qwen3,
            "gpt2" => return Self::gpt2_from_json(v)?.checked(),
            "" => bail!("config.json has no model_type; supported: {SUPPORTED}"),
            other => bail!("unsupported model_type '{other}': supported: {SUPPORTED}"),
        };
        if matches!(family, Family::Qwen2 | Family::Qwen3) {
            // Qwen configs carry a sliding_window size even when it is off; only the switch counts.
            let on = v.get("use_sliding_window").and_then(|x| x.as_bool()) == Some(true);
            let other_layer = v
                .get("layer_types")
                .and_then(|x| x.as_array())
                .and_then(|a| a.iter().find(|t| t.as_str() != Some("full_attention")));
            if on || other_layer.is_some() {
                bail!("model_type '{model_type}' with sliding-window attention (use_sliding_window or layer_types) is not supported: only full attention");
            }
        }
        let int = |k: &str| -> Result<i64> {
            v.get(k)
                .and_then(|x| x.as_i64())
                .with_context(|| format!("missing or non-integer '{k}'"))
        };
        let opt_int = |k: &str| v.get(k).and_then(|x| x.as_i64());
        let hidden_size = int("hidden_size")?;
        let num_attention_heads = int("num_attention_heads")?;
        let num_key_value_heads = opt_int("num_key_value_heads").unwrap_or(num_attention_heads);
        let head_dim = opt_int("head_dim").unwrap_or(hidden_size / num_attention_heads.max(1));
        if num_attention_heads <= 0
            || num_key_value_heads <= 0
            || num_attention_heads % num_key_value_heads != 0
        {
            bail!("num_attention_heads {num_attention_heads} must be a positive multiple of num_key_value_heads {num_key_value_heads}");
        }
        if let Some(act) = v.get("hidden_act").and_then(|x| x.as_str()) {
            if act != "silu" {
                bail!("unsupported hidden_act '{act}': only silu");
            }
        }
        // RoPE: transformers 5 writes rope_parameters {rope_type, rope_theta, ...};
        // transformers 4 writes rope_theta and rope_scaling {rope_type|type, ...}.
        let rp = v.get("rope_parameters").filter(|x| x.is_object());
        let rs = v.get("rope_scaling").filter(|x| x.is_object()).or(rp);
        let rope_theta = v
            .get("rope_theta")
            .and_then(|x| x.as_f64())
            .or_else(|| {
                rp.and_then(|p| p.get("rope_theta"))
                    .and_then(|x| x.as_f64())
            })
            .unwrap_or(10000.0);
        let max_position_embeddings = opt_int("max_position_embeddings").unwrap_or(2048);
        let rope_scaling = match rs {
            None => RopeScaling::Default,
            Some(s) => {
                let ty = s
                    .get("rope_type")
                    .or_else(|| s.get("type"))
                    .and_then(|x| x.as_str())
                    .unwrap_or("default");
                let f = |k: &str| -> Result<f64> {
                    s.get(k)
                        .and_then(|x| x.as_f64())
                        .with_context(|| format!("rope scaling '{ty}' needs '{k}'"))
                };
                match ty {
                    "default" => RopeScaling::Default,
                    "linear" => RopeScaling::Linear { factor: f("factor")? },
                    "llama3" => RopeScaling::Llama3 {
                        factor: f("factor")?,
                        low_freq_factor: f("low_freq_factor")?,
                        high_freq_factor: f("high_freq_factor")?,
                        original_max_position_embeddings: s
                            .get("original_max_position_embeddings")
                            .and_then(|x| x.as_f64())
                            .unwrap_or(max_position_embeddings as f64),
                    },
                    other => bail!("unsupported rope scaling type '{other}': supported default, linear, llama3"),
                }
            }
        };
        let eos_token_ids = ids(v.get("eos_token_id"));
        let attention_bias = v
            .get("attention_bias")
            .and_then(|x| x.as_bool())
            .unwrap_or(false);
        Self {
            model_type,
            family,
            vocab_size: int("vocab_size")?,
            hidden_size,
            intermediate_size: int("intermediate_size")?,
            num_hidden_layers: int("num_hidden_layers")?,
            num_attention_heads,
            num_key_value_heads,
            head_dim,
            norm_eps: v
                .get("rms_norm_eps")
                .and_then(|x| x.as_f64())
                .unwrap_or(1e-6),
            rope_theta,
            rope_scaling,
            max_position_embeddings,
            tie_word_embeddings: v
                .get("tie_word_embeddings")
                .and_then(|x| x.as_bool())
                .unwrap_or(false),
            // Qwen2 always has q/k/v biases and never an o_proj bias.
            qkv_bias: family == Family::Qwen2 || attention_bias,
            o_bias: family != Family::Qwen2 && attention_bias,
            mlp_bias: v.get("mlp_bias").and_then(|x| x.as_bool()).unwrap_or(false),
            qk_norm: family == Family::Qwen3,
            act: Act::Silu,
            bos_token_id: ids(v.get("bos_token_id")).first().copied(),
            eos_token_ids,
            pad_token_id: ids(v.get("pad_token_id")).first().copied(),
            initializer_range: v
                .get("initializer_range")
                .and_then(|x| x.as_f64())
                .unwrap_or(0.02),
        }
        .checked()
    }

    /// GPT-2: n_embd/n_layer/n_head/n_positions/n_inner/layer_norm_epsilon, learned
    /// positions, LayerNorm, a GELU-tanh MLP, biases everywhere, lm_head tied to wte.
    fn gpt2_from_json(v: &Value) -> Result<Self> {
        let int = |k: &str| -> Result<i64> {
            v.get(k)
                .and_then(|x| x.as_i64())
                .with_context(|| format!("missing or non-integer '{k}'"))
        };
        let flag = |k: &str, d: bool| v.get(k).and_then(|x| x.as_bool()).unwrap_or(d);
        let hidden_size = int("n_embd")?;
        let heads = int("n_head")?;
        if heads <= 0 || hidden_size % heads != 0 {
            bail!("n_embd {hidden_size} must be a multiple of n_head {heads}");
        }
        let act = v
            .get("activation_function")
            .and_then(|x| x.as_str())
            .unwrap_or("gelu_new");
        if !matches!(act, "gelu_new" | "gelu_pytorch_tanh") {
            bail!("unsupported activation_function '{act}' for gpt2: only gelu_new (GELU, tanh approximation)");
        }
        if !flag("scale_attn_weights", true) || flag("scale_attn_by_inverse_layer_idx", false) {
            bail!("gpt2 with scale_attn_weights = false or scale_attn_by_inverse_layer_idx = true is not supported: only 1/sqrt(head_dim) scaling");
        }
        if !flag("tie_word_embeddings", true) {
            bail!("gpt2 with tie_word_embeddings = false is not supported: the head is wte");
        }
        Ok(Self {
            model_type: "gpt2".into(),
            family: Family::Gpt2,
            vocab_size: int("vocab_size")?,
            hidden_size,
            intermediate_size: v
                .get("n_inner")
                .and_then(|x| x.as_i64())
                .unwrap_or(4 * hidden_size),
            num_hidden_layers: int("n_layer")?,
            num_attention_heads: heads,
            num_key_value_heads: heads,
            head_dim: hidden_size / heads,
            norm_eps: v
                .get("layer_norm_epsilon")
                .and_then(|x| x.as_f64())
                .unwrap_or(1e-5),
            rope_theta: 0.0,
            rope_scaling: RopeScaling::Default,
            max_position_embeddings: v
                .get("n_positions")
                .and_then(|x| x.as_i64())
                .unwrap_or(1024),
            tie_word_embeddings: true,
            qkv_bias: true,
            o_bias: true,
            mlp_bias: true,
            qk_norm: false,
            act: Act::GeluTanh,
            bos_token_id: ids(v.get("bos_token_id")).first().copied(),
            eos_token_ids: ids(v.get("eos_token_id")),
            pad_token_id: ids(v.get("pad_token_id")).first().copied(),
            initializer_range: v
                .get("initializer_range")
                .and_then(|x| x.as_f64())
                .unwrap_or(0.02),
        })
    }

    /// Refuses sizes no model has (zero, negative, or past the bounds below) before anything
    /// is allocated for them: a config.json typo must not become a panic or an abort.
    fn checked(self) -> Result<Self> {
        // The largest released models stay far inside these (vocab 256k, width 25k, 126 layers).
        const WIDE: i64 = 1 << 24;
        // GPT-2's config.json names them differently.
        let gpt2 = self.family == Family::Gpt2;
        let key = |hf: &'static str, g: &'static str| if gpt2 { g } else { hf };
        let sizes = [
            (key("vocab_size", "vocab_size"), self.vocab_size, WIDE),
            (key("hidden_size", "n_embd"), self.hidden_size, WIDE),
            (
                key("intermediate_size", "n_inner"),
                self.intermediate_size,
                WIDE,
            ),
            (
                key("num_hidden_layers", "n_layer"),
                self.num_hidden_layers,
                4096,
            ),
            (
                key("num_attention_heads", "n_head"),
                self.num_attention_heads,
                4096,
            ),
            (
                key("num_key_value_heads", "n_head"),
                self.num_key_value_heads,
                4096,
            ),
            (key("head_dim", "n_embd / n_head"), self.head_dim, 1 << 16),
            (
                key("max_position_embeddings", "n_positions"),
                self.max_position_embeddings,
                1 << 26,
            ),
        ];
        for (key, v, max) in sizes {
            if !(1..=max).contains(&v) {
                bail!("{key} = {v}: must be in 1..={max}");
            }
        }
        let eps = key("rms_norm_eps", "layer_norm_epsilon");
        if !(self.norm_eps.is_finite() && self.norm_eps > 0.0) {
            bail!("{eps} = {}: must be a finite number > 0", self.norm_eps);
        }
        if !gpt2 && !(self.rope_theta.is_finite() && self.rope_theta > 0.0) {
            bail!(
                "rope_theta = {}: must be a finite number > 0",
                self.rope_theta
            );
        }
        if !(self.initializer_range.is_finite() && self.initializer_range >= 0.0) {
            bail!(
                "initializer_range = {}: must be a finite number ≥ 0",
                self.initializer_range
            );
        }
        Ok(self)
    }

    /// A tiny Llama (2 layers, GQA 4:2, llama3 RoPE, untied head) for tests that need no weights.
    pub fn tiny(vocab_size: i64) -> Self {
        Self::from_json(&serde_json::json!({
            "model_type": "llama", "vocab_size": vocab_size, "hidden_size": 32, "intermediate_size": 64,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5,
            "rope_theta": 10000.0, "max_position_embeddings": 256, "tie_word_embeddings": false,
            "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                "original_max_position_embeddings": 16},
            "bos_token_id": 1, "eos_token_id": 2, "initializer_range": 0.2
        }))
        .expect("tiny config is valid")
    }

    /// Parameter count of a Llama-layout base model (embeddings and head counted once when
    /// tied; biases, q/k norms and GPT-2's positions are not counted).
    pub fn num_parameters(&self) -> i64 {
        let (h, i, l) = (
            self.hidden_size,
            self.intermediate_size,
            self.num_hidden_layers,
        );
        let q = self.num_attention_heads * self.head_dim;
        let kv = self.num_key_value_heads * self.head_dim;
        let layer = h * q + 2 * h * kv + q * h + 3 * h * i + 2 * h;
        let head = if self.tie_word_embeddings {
            0
        } else {
            self.vocab_size * h
        };
        self.vocab_size * h + l * layer + h + head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_rope_layouts() {
        let v4 = serde_json::json!({"model_type":"llama","vocab_size":10,"hidden_size":8,"intermediate_size":16,
            "num_hidden_layers":1,"num_attention_heads":2,"rope_theta":500000.0,
            "rope_scaling":{"rope_type":"llama3","factor":32.0,"low_freq_factor":1.0,"high_freq_factor":4.0,
            "original_max_position_embeddings":8192},"eos_token_id":[5,6]});
        let c = LlamaConfig::from_json(&v4).unwrap();
        assert_eq!(c.rope_theta, 500000.0);
        assert_eq!(c.num_key_value_heads, 2);
        assert_eq!(c.head_dim, 4);
        assert_eq!(c.eos_token_ids, vec![5, 6]);
        assert!(matches!(c.rope_scaling, RopeScaling::Llama3 { factor, .. } if factor == 32.0));
        let v5 = serde_json::json!({"model_type":"llama","vocab_size":10,"hidden_size":8,"intermediate_size":16,
            "num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":1,
            "rope_parameters":{"rope_type":"default","rope_theta":100000.0},"eos_token_id":2});
        let c = LlamaConfig::from_json(&v5).unwrap();
        assert_eq!(c.rope_theta, 100000.0);
        assert_eq!(c.rope_scaling, RopeScaling::Default);
        assert_eq!(c.eos_token_ids, vec![2]);
    }

    #[test]
    fn llama_3_2_3b_shapes_count_its_parameters() {
        let v = serde_json::json!({"model_type":"llama","vocab_size":128256,"hidden_size":3072,
            "intermediate_size":8192,"num_hidden_layers":28,"num_attention_heads":24,"num_key_value_heads":8,
            "head_dim":128,"tie_word_embeddings":true,"rope_theta":500000.0,"max_position_embeddings":131072,
            "rope_scaling":{"rope_type":"llama3","factor":32.0,"low_freq_factor":1.0,"high_freq_factor":4.0,
            "original_max_position_embeddings":8192},"eos_token_id":[128001,128008,128009]});
        let c = LlamaConfig::from_json(&v).unwrap();
        assert_eq!(c.num_parameters(), 3_212_749_824);
        assert_eq!(c.eos_token_ids.len(), 3);
    }

    #[test]
    fn reads_qwen_and_gpt2_parts() {
        let q = serde_json::json!({"model_type":"qwen2","vocab_size":10,"hidden_size":8,"intermediate_size":16,
            "num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":1,"use_sliding_window":false,
            "sliding_window":32768,"rope_parameters":{"rope_type":"default","rope_theta":1000000.0}});
        let c = LlamaConfig::from_json(&q).unwrap();
        assert_eq!(
            (c.family, c.qkv_bias, c.o_bias, c.qk_norm),
            (Family::Qwen2, true, false, false)
        );
        assert_eq!(c.rope_theta, 1e6);
        let mut q3 = q.clone();
        q3["model_type"] = "qwen3".into();
        q3["head_dim"] = 16.into();
        let c = LlamaConfig::from_json(&q3).unwrap();
        assert_eq!(
            (c.family, c.qkv_bias, c.o_bias, c.qk_norm, c.head_dim),
            (Family::Qwen3, false, false, true, 16)
        );
        q3["attention_bias"] = true.into();
        let c = LlamaConfig::from_json(&q3).unwrap();
        assert!(c.qkv_bias && c.o_bias);
        let mut sw = q.clone();
        sw["use_sliding_window"] = true.into();
        let e = LlamaConfig::from_json(&sw).unwrap_err().to_string();
        assert!(e.contains("sliding-window"), "{e}");
        let g = serde_json::json!({"model_type":"gpt2","vocab_size":50,"n_embd":12,"n_layer":2,"n_head":3,
            "n_positions":64,"n_inner":null,"layer_norm_epsilon":1e-5,"activation_function":"gelu_new"});
        let c = LlamaConfig::from_json(&g).unwrap();
        assert_eq!(c.family, Family::Gpt2);
        assert_eq!(
            (c.intermediate_size, c.head_dim, c.max_position_embeddings),
            (48, 4, 64)
        );
        assert!(
            c.tie_word_embeddings && c.qkv_bias && c.o_bias && c.mlp_bias && c.act == Act::GeluTanh
        );
        let mut relu = g.clone();
        relu["activation_function"] = "relu".into();
        assert!(LlamaConfig::from_json(&relu)
            .unwrap_err()
            .to_string()
            .contains("'relu'"));
    }

    #[test]
    fn refuses_other_architectures() {
        let v = serde_json::json!({"model_type":"phi3"});
        let e = LlamaConfig::from_json(&v).unwrap_err().to_string();
        assert!(e.contains("unsupported model_type 'phi3'"), "{e}");
        assert!(
            e.contains("llama") && e.contains("qwen2") && e.contains("qwen3") && e.contains("gpt2"),
            "{e}"
        );
        let v = serde_json::json!({"model_type":"mistral","sliding_window":4096});
        assert!(LlamaConfig::from_json(&v)
            .unwrap_err()
            .to_string()
            .contains("sliding_window=4096"));
    }
}
