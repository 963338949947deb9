//! Shared by the SFT integration tests: a tiny random Llama directory that uses the real
//! SmolLM2 tokenizer and chat template (so steps take milliseconds), a small dataset, a
//! config writer, and the binary runner.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use stylerl::model::{Llama, LlamaConfig};

/// The real model directory; its tokenizer files are reused by the tiny model.
pub fn smol() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/smollm2-135m-instruct");
    if p.join("tokenizer.json").is_file() {
        Some(p)
    } else {
        eprintln!("skipped: {} missing (run scripts/setup.sh)", p.display());
        None
    }
}

/// Writes a 2-layer random Llama with SmolLM2's vocabulary and tokenizer into `dir`.
pub fn tiny_model(dir: &Path, smol: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let cfg = serde_json::json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
        "max_position_embeddings": 512, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "hidden_act": "silu", "initializer_range": 0.02, "vocab_size": 49152,
        "tie_word_embeddings": true, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2,
        "torch_dtype": "float32"
    });
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    for f in [
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "generation_config.json",
    ] {
        if smol.join(f).exists() {
            std::fs::copy(smol.join(f), dir.join(f)).unwrap();
        }
    }
    let c = LlamaConfig::from_dir(dir).unwrap();
    let m = Llama::random_from_config(c, tch::Device::Cpu, tch::Kind::Float, 7).unwrap();
    m.save_safetensors(&dir.join("model.safetensors")).unwrap();
}

/// The first `n` pairs of the shipped SFT training set, as a JSONL file.
pub fn pairs(path: &Path, n: usize) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/sft/train.jsonl");
    let text = std::fs::read_to_string(src).unwrap();
    let lines: Vec<&str> = text.lines().take(n).collect();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// An SFT config over the tiny model; `extra` is appended to the [train] table.
pub fn config(d: &Path, out: &str, train_extra: &str) -> PathBuf {
    let p = d.join(format!("{out}.toml"));
    let text = format!(
        r#"out_dir = "{o}"
[model]
path = "{m}"
[data]
train = "{t}"
eval = "{e}"
instruction = ""
max_length = 128
[lora]
r = 4
alpha = 8
dropout = 0.1
target_modules = "all-linear"
[train]
batch_size = 2
grad_accum = 2
warmup_steps = 2
seed = 3
eval_every = 4
checkpoint_every = 1
keep_checkpoints = 3
{train_extra}
[train.optimizer]
lr = 0.01
weight_decay = 0.01
"#,
        o = d.join(out).display(),
        m = d.join("tiny").display(),
        t = d.join("train.jsonl").display(),
        e = d.join("eval.jsonl").display(),
    );
    std::fs::write(&p, text).unwrap();
    p
}

/// A temp dir holding the tiny model, 6 training pairs and 2 eval pairs.
pub fn workspace(smol: &Path) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    tiny_model(&d.path().join("tiny"), smol);
    pairs(&d.path().join("train.jsonl"), 6);
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/sft/eval.jsonl"),
    )
    .unwrap();
    let lines: Vec<&str> = text.lines().take(2).collect();
    std::fs::write(d.path().join("eval.jsonl"), lines.join("\n") + "\n").unwrap();
    d
}

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_stylerl"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("STYLERL_PROGRESS", "0")
        .env_remove("STYLERL_FAULT_NAN_AT_STEPS");
    c
}

/// `stylerl sft --config cfg ARGS…`.
pub fn sft(cfg: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = bin();
    c.arg("sft").arg("--config").arg(cfg).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// metrics.jsonl as JSON values.
pub fn metrics(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The tensors of a safetensors file, by name.
pub fn tensors(path: &Path) -> Vec<(String, tch::Tensor)> {
    let mut t = tch::Tensor::read_safetensors(path).unwrap();
    t.sort_by(|a, b| a.0.cmp(&b.0));
    t
}

/// Largest |a − b| over same-named tensors (the name lists must agree).
pub fn max_diff(a: &Path, b: &Path) -> f64 {
    let (ta, tb) = (tensors(a), tensors(b));
    assert_eq!(
        ta.iter().map(|x| &x.0).collect::<Vec<_>>(),
        tb.iter().map(|x| &x.0).collect::<Vec<_>>()
    );
    ta.iter()
        .zip(&tb)
        .map(|((_, x), (_, y))| (x - y).abs().max().double_value(&[]))
        .fold(0.0, f64::max)
}

/// The one stderr line of a failed run (asserts exit code 1 and a single `error:` line).
pub fn one_error_line(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(1), "expected exit 1, stderr:\n{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "want one error line:\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    lines[0].to_string()
}
