//! Loading: a saved tiny model loads back identically (also as shards and in bf16); missing
//! or mis-shaped tensors and unsupported model types fail with one line naming the problem.
use std::path::Path;
use stylerl::model::{Llama, LlamaConfig};
use tch::{Device, Kind, Tensor};

fn tiny_config_json() -> serde_json::Value {
    serde_json::json!({
        "model_type": "llama", "vocab_size": 61, "hidden_size": 32, "intermediate_size": 64,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0, "max_position_embeddings": 128, "tie_word_embeddings": false,
        "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 16},
        "eos_token_id": [2, 3]
    })
}

/// Writes config.json and the given tensors (as one file) into `dir`.
fn write_dir(dir: &Path, config: &serde_json::Value, tensors: &[(String, Tensor)]) {
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    Tensor::write_safetensors(tensors, dir.join("model.safetensors")).unwrap();
}

fn saved_model() -> (tempfile::TempDir, Llama) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LlamaConfig::from_json(&tiny_config_json()).unwrap();
    let m = Llama::random_from_config(cfg, Device::Cpu, Kind::Float, 1).unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        tiny_config_json().to_string(),
    )
    .unwrap();
    m.save_safetensors(&dir.path().join("model.safetensors"))
        .unwrap();
    (dir, m)
}

fn load_err(dir: &Path) -> String {
    format!(
        "{:#}",
        Llama::load(dir, Device::Cpu, Kind::Float).unwrap_err()
    )
}

#[test]
fn saved_model_loads_back_with_equal_logits() {
    let (dir, m) = saved_model();
    let back = Llama::load(dir.path(), Device::Cpu, Kind::Float).unwrap();
    assert_eq!(back.config.eos_token_ids, vec![2, 3]);
    let ids = Tensor::from_slice(&[1i64, 5, 9, 33]).unsqueeze(0);
    let d = tch::no_grad(|| {
        (m.forward(&ids, None, None) - back.forward(&ids, None, None))
            .abs()
            .max()
            .double_value(&[])
    });
    assert_eq!(d, 0.0);
    // bf16 compute from the same f32 files stays close.
    let bf = Llama::load(dir.path(), Device::Cpu, Kind::BFloat16).unwrap();
    let l = tch::no_grad(|| bf.forward(&ids, None, None).to_kind(Kind::Float));
    let d = tch::no_grad(|| {
        (m.forward(&ids, None, None) - l)
            .abs()
            .max()
            .double_value(&[])
    });
    assert!(d < 0.1, "bf16 differs by {d}");
}

#[test]
fn sharded_bf16_files_load() {
    let (_d, m) = saved_model();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        tiny_config_json().to_string(),
    )
    .unwrap();
    let named = m.named_tensors();
    let (a, b) = named.split_at(named.len() / 2);
    let mut map = serde_json::Map::new();
    for (file, part) in [
        ("model-00001-of-00002.safetensors", a),
        ("model-00002-of-00002.safetensors", b),
    ] {
        let bf: Vec<(String, Tensor)> = part
            .iter()
            .map(|(n, t)| (n.clone(), t.to_kind(Kind::BFloat16)))
            .collect();
        Tensor::write_safetensors(&bf, dir.path().join(file)).unwrap();
        for (n, _) in part {
            map.insert(n.clone(), serde_json::json!(file));
        }
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": map});
    std::fs::write(
        dir.path().join("model.safetensors.index.json"),
        index.to_string(),
    )
    .unwrap();
    let back = Llama::load(dir.path(), Device::Cpu, Kind::Float).unwrap();
    let down = "model.layers.1.mlp.down_proj";
    let want = m
        .linear(down)
        .unwrap()
        .weight
        .to_kind(Kind::BFloat16)
        .to_kind(Kind::Float);
    assert!(back.linear(down).unwrap().weight.equal(&want));
    assert!(back.lm_head.weight.equal(
        &m.lm_head
            .weight
            .to_kind(Kind::BFloat16)
            .to_kind(Kind::Float)
    ));
}

#[test]
fn missing_tensor_is_named() {
    let (dir, m) = saved_model();
    let t: Vec<(String, Tensor)> = m
        .named_tensors()
        .into_iter()
        .filter(|(n, _)| n != "model.layers.1.mlp.up_proj.weight")
        .collect();
    write_dir(dir.path(), &tiny_config_json(), &t);
    let e = load_err(dir.path());
    assert!(
        e.contains("missing tensor 'model.layers.1.mlp.up_proj.weight' (expected shape [64, 32])"),
        "{e}"
    );
}

#[test]
fn misshaped_tensor_names_both_shapes() {
    let (dir, m) = saved_model();
    let t: Vec<(String, Tensor)> = m
        .named_tensors()
        .into_iter()
        .map(|(n, t)| {
            if n == "model.layers.0.self_attn.k_proj.weight" {
                (n, Tensor::zeros([32, 32], (Kind::Float, Device::Cpu)))
            } else {
                (n, t)
            }
        })
        .collect();
    write_dir(dir.path(), &tiny_config_json(), &t);
    let e = load_err(dir.path());
    assert!(
        e.contains(
            "tensor 'model.layers.0.self_attn.k_proj.weight' has shape [32, 32], expected [16, 32]"
        ),
        "{e}"
    );
}

#[test]
fn tied_head_needs_no_lm_head_and_untied_does() {
    let (dir, m) = saved_model();
    let t: Vec<(String, Tensor)> = m
        .named_tensors()
        .into_iter()
        .filter(|(n, _)| n != "lm_head.weight")
        .collect();
    write_dir(dir.path(), &tiny_config_json(), &t);
    assert!(load_err(dir.path()).contains("missing tensor 'lm_head.weight'"));
    let mut tied = tiny_config_json();
    tied["tie_word_embeddings"] = serde_json::json!(true);
    write_dir(dir.path(), &tied, &t);
    let back = Llama::load(dir.path(), Device::Cpu, Kind::Float).unwrap();
    assert!(back.lm_head.weight.equal(&back.embed_tokens));
}

#[test]
fn cli_refuses_unsupported_model_type_in_one_line() {
    let (dir, _m) = saved_model();
    let mut cfg = tiny_config_json();
    cfg["model_type"] = serde_json::json!("phi3");
    std::fs::write(dir.path().join("config.json"), cfg.to_string()).unwrap();
    std::fs::write(dir.path().join("p.jsonl"), "[1, 2, 3]\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stylerl"))
        .args(["logits", "--model"])
        .arg(dir.path())
        .arg("--input")
        .arg(dir.path().join("p.jsonl"))
        .arg("--out")
        .arg(dir.path().join("o.safetensors"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("unsupported model_type 'phi3'"), "{err}");
    for family in ["llama", "qwen2", "qwen3", "gpt2"] {
        assert!(err.contains(family), "the error lists {family}: {err}");
    }
}

#[test]
fn random_init_needs_only_config_json() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        tiny_config_json().to_string(),
    )
    .unwrap();
    let m = Llama::random_init(dir.path(), Device::Cpu, Kind::Float, 0).unwrap();
    assert_eq!(m.lm_head.weight.size(), vec![61, 32]);
    assert!(load_err(dir.path()).contains("no model.safetensors"));
}

#[test]
fn gpt2_checkpoint_without_transformer_prefix_loads() {
    // The original GPT-2 checkpoints were saved from GPT2Model: `h.0.attn.c_attn.weight`,
    // `wte.weight`, no `transformer.` and no lm_head.
    let cfg = serde_json::json!({"model_type": "gpt2", "vocab_size": 61, "n_embd": 32, "n_layer": 2,
        "n_head": 4, "n_positions": 64, "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new"});
    let m = Llama::random_from_config(
        LlamaConfig::from_json(&cfg).unwrap(),
        Device::Cpu,
        Kind::Float,
        2,
    )
    .unwrap();
    let named = m.named_tensors();
    assert!(named
        .iter()
        .any(|(n, t)| n == "transformer.h.1.mlp.c_fc.weight" && t.size() == [32, 128]));
    let bare: Vec<(String, Tensor)> = named
        .into_iter()
        .map(|(n, t)| (n.trim_start_matches("transformer.").to_string(), t))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    write_dir(dir.path(), &cfg, &bare);
    let back = Llama::load(dir.path(), Device::Cpu, Kind::Float).unwrap();
    let ids = Tensor::from_slice(&[1i64, 5, 9, 33, 60]).unsqueeze(0);
    let d = tch::no_grad(|| {
        (m.forward(&ids, None, None) - back.forward(&ids, None, None))
            .abs()
            .max()
            .double_value(&[])
    });
    assert_eq!(d, 0.0);
    // A third layer in the files is named, as for Llama.
    let mut extra: Vec<(String, Tensor)> = bare
        .iter()
        .map(|(n, t)| (n.clone(), t.shallow_clone()))
        .collect();
    extra.push((
        "h.2.attn.c_attn.weight".into(),
        Tensor::zeros([32, 96], (Kind::Float, Device::Cpu)),
    ));
    write_dir(dir.path(), &cfg, &extra);
    assert!(
        load_err(dir.path()).contains("the weights hold 3 layers"),
        "{}",
        load_err(dir.path())
    );
}

#[test]
fn tensors_the_config_does_not_use_are_refused() {
    // Qwen3's q_norm in the files of a model whose config says llama: running without it
    // would give other logits without a word.
    let (dir, m) = saved_model();
    let mut t = m.named_tensors();
    t.push((
        "model.layers.0.self_attn.q_norm.weight".into(),
        Tensor::ones([8], (Kind::Float, Device::Cpu)),
    ));
    write_dir(dir.path(), &tiny_config_json(), &t);
    let e = load_err(dir.path());
    assert!(
        e.contains("1 tensor(s) in the weights are not part of a 'llama' model (first: 'model.layers.0.self_attn.q_norm.weight')"),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1, "{e}");
}
