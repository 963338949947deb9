//! Shared test helpers: a tiny random Llama directory with SmolLM2's real tokenizer.
#![allow(dead_code)]
use std::path::{Path, PathBuf};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The imported default model (made by scripts/setup.sh).
pub fn smol_dir() -> PathBuf {
    root().join("models/smollm2-135m-instruct")
}

/// Writes a 2-layer, 64-wide Llama with random weights and the default model's tokenizer
/// and chat template into `dir`. Seeded, so two calls give the same weights.
pub fn tiny_llama(dir: &Path, seed: u64) {
    tiny_family(dir, "llama", seed)
}

/// The config.json of a tiny model of `family` (llama, qwen2, qwen3 or gpt2): 2 layers,
/// width 64, SmolLM2's vocabulary; GQA 4:2 except GPT-2.
pub fn tiny_config(family: &str) -> serde_json::Value {
    let ids = serde_json::json!({"vocab_size": 49152, "bos_token_id": 1, "eos_token_id": 2,
        "pad_token_id": 2, "initializer_range": 0.02});
    let mut cfg = match family {
        "gpt2" => serde_json::json!({
            "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": 64, "n_layer": 2,
            "n_head": 4, "n_inner": null, "n_positions": 512, "layer_norm_epsilon": 1e-5,
            "activation_function": "gelu_new", "tie_word_embeddings": true
        }),
        _ => serde_json::json!({
            "model_type": family, "hidden_size": 64, "intermediate_size": 128,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "head_dim": if family == "qwen3" { 24 } else { 16 },
            "max_position_embeddings": 512, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
            "hidden_act": "silu", "tie_word_embeddings": family != "qwen3"
        }),
    };
    for (k, v) in ids.as_object().unwrap() {
        cfg[k] = v.clone();
    }
    if family == "llama" {
        cfg["architectures"] = serde_json::json!(["LlamaForCausalLM"]);
    }
    cfg
}

/// Writes a tiny model of `family` (see [`tiny_config`]) with random weights and the default
/// model's tokenizer and chat template into `dir`. Seeded, so two calls give the same weights.
pub fn tiny_family(dir: &Path, family: &str, seed: u64) {
    std::fs::create_dir_all(dir).unwrap();
    let cfg = tiny_config(family);
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string_pretty(&cfg).unwrap(),
    )
    .unwrap();
    for f in [
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "generation_config.json",
    ] {
        let src = smol_dir().join(f);
        if src.exists() {
            std::fs::copy(&src, dir.join(f)).unwrap();
        }
    }
    let m =
        stylerl::model::Llama::random_init(dir, tch::Device::Cpu, tch::Kind::Float, seed).unwrap();
    m.save_safetensors(&dir.join("model.safetensors")).unwrap();
}

/// Values a closeness check can compare: tensors (any float kind) and plain numbers.
pub trait Values {
    fn values(&self) -> Vec<f64>;
}

impl Values for tch::Tensor {
    fn values(&self) -> Vec<f64> {
        let flat = self.detach().to_kind(tch::Kind::Double).flatten(0, -1);
        Vec::<f64>::try_from(&flat).expect("a tensor converts to f64 values")
    }
}

impl Values for f64 {
    fn values(&self) -> Vec<f64> {
        vec![*self]
    }
}

impl Values for f32 {
    fn values(&self) -> Vec<f64> {
        vec![*self as f64]
    }
}

impl Values for [f32] {
    fn values(&self) -> Vec<f64> {
        self.iter().map(|&x| x as f64).collect()
    }
}

impl Values for [f64] {
    fn values(&self) -> Vec<f64> {
        self.to_vec()
    }
}

impl Values for Vec<f32> {
    fn values(&self) -> Vec<f64> {
        self.as_slice().values()
    }
}

impl Values for Vec<f64> {
    fn values(&self) -> Vec<f64> {
        self.clone()
    }
}

/// Rounding error grows with the size of the values summed, not with a fixed unit, so an
/// absolute bound like 1e-5 is too tight for logits of order 10 and meaningless for values of
/// order 1e-6. This floor only keeps an all-zero `want` from demanding exact equality.
pub const CLOSE_FLOOR: f64 = 1e-6;

/// Asserts max|got − want| ≤ rtol · max(max|want|, CLOSE_FLOOR), element by element over
/// same-shaped values. Fails on a NaN anywhere, on a shape mismatch, and names `what`.
/// Choosing rtol: float32 has a unit roundoff of 6e-8; a result reached through a chain of
/// k accumulations of n terms in a different order can differ by about k·√n·6e-8 relative
/// to its magnitude (MKL picks other blockings and kernels on AMD than on Intel).
pub fn assert_close<G, W>(got: &G, want: &W, rtol: f64, what: &str)
where
    G: Values + ?Sized,
    W: Values + ?Sized,
{
    let (g, w) = (got.values(), want.values());
    assert_eq!(
        g.len(),
        w.len(),
        "{what}: {} values vs {} wanted",
        g.len(),
        w.len()
    );
    let scale = w.iter().fold(0f64, |m, x| m.max(x.abs())).max(CLOSE_FLOOR);
    let mut worst = (0f64, 0usize);
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        let d = (a - b).abs();
        assert!(!d.is_nan(), "{what}: value {i} is {a}, wanted {b}");
        if d > worst.0 {
            worst = (d, i);
        }
    }
    let (d, i) = worst;
    assert!(
        d <= rtol * scale,
        "{what}: |got − want| = {d:.3e} at value {i} ({} vs {}) exceeds {rtol:.0e} × {scale:.3e}",
        g[i],
        w[i]
    );
}

/// (name, in, out) of the linear layers inside the blocks of a 2-layer Llama with hidden 32,
/// kv 16 and mlp 48 (no lm_head): the adapter-test and fuzz shapes.
pub fn tiny_llama_layer_modules() -> Vec<(String, i64, i64)> {
    let mut m = Vec::new();
    for l in 0..2 {
        for (n, i, o) in [
            ("self_attn.q_proj", 32, 32),
            ("self_attn.k_proj", 32, 16),
            ("self_attn.v_proj", 32, 16),
            ("self_attn.o_proj", 32, 32),
            ("mlp.gate_proj", 32, 48),
            ("mlp.up_proj", 32, 48),
            ("mlp.down_proj", 48, 32),
        ] {
            m.push((format!("model.layers.{l}.{n}"), i, o));
        }
    }
    m
}

/// A sentence encoder from a fixed table (text → 2-d vector), so every cosine a reward test
/// sees is known; an unknown text is an error.
pub struct Lookup(pub std::collections::HashMap<String, Vec<f32>>);

impl Lookup {
    /// From (text, vector) pairs.
    pub fn new(pairs: &[(&str, [f32; 2])]) -> Self {
        Lookup(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_vec()))
                .collect(),
        )
    }
}

/// A reward config whose total is R_style alone, mean-aggregated, with style reward dropout
/// on (length, punctuation and entity terms weighted 0); tests set the dropout's details.
pub fn style_only_dropout_config() -> stylerl::reward::RewardConfig {
    let mut cfg = stylerl::reward::RewardConfig::default();
    cfg.aggregation = stylerl::reward::Aggregation::Mean;
    cfg.dropout.enabled = true;
    cfg.weights.length = 0.0;
    cfg.weights.punctuation = 0.0;
    cfg.entities.weight = 0.0;
    cfg
}

impl stylerl::encoder::SentenceEncoder for Lookup {
    fn encode(&self, s: &[String]) -> anyhow::Result<Vec<Vec<f32>>> {
        s.iter()
            .map(|x| {
                self.0
                    .get(x)
                    .cloned()
                    .ok_or_else(|| anyhow::anyhow!("unknown {x:?}"))
            })
            .collect()
    }
    fn dim(&self) -> usize {
        2
    }
    fn name(&self) -> String {
        "lookup".into()
    }
}

/// Runs the release binary with progress bars off.
pub fn stylerl(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_stylerl"))
        .args(args)
        .env("STYLERL_PROGRESS", "0")
        .output()
        .unwrap()
}

/// The single stderr line of a run that must fail without a panic.
pub fn one_error_line(o: &std::process::Output) -> String {
    assert!(!o.status.success(), "expected a failure");
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one error line expected: {err}");
    assert!(!err.contains("panicked"), "{err}");
    lines[0].to_string()
}
