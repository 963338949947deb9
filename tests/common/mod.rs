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
    std::fs::create_dir_all(dir).unwrap();
    let cfg = serde_json::json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
        "max_position_embeddings": 512, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "hidden_act": "silu", "initializer_range": 0.02, "vocab_size": 49152,
        "tie_word_embeddings": true, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2
    });
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
