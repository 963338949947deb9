//! Shared by the SFT integration tests: a tiny random Llama directory that uses the real
//! SmolLM2 tokenizer and chat template (so steps take milliseconds), a small dataset, a
//! config writer, and the binary runner.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Whether the real model directory is set up (the tiny model reuses its tokenizer files);
/// says why the test is skipped when it is not.
pub fn smol_present() -> bool {
    let p = super::common::smol_dir();
    let ok = p.join("tokenizer.json").is_file();
    if !ok {
        eprintln!("skipped: {} missing (run scripts/setup.sh)", p.display());
    }
    ok
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
warmup_steps = 0
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
pub fn workspace() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    super::common::tiny_llama(&d.path().join("tiny"), 7);
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

/// A GRPO config over the tiny model (1 step, P 1, G 2, L 8) writing to `d/out`.
pub fn grpo_config(d: &Path, out: &str) -> PathBuf {
    let r = super::common::root();
    let p = d.join(format!("{out}-grpo.toml"));
    let text = format!(
        r#"out_dir = "{o}"
[model]
path = "{m}"
[data]
train = "{t}"
limit = 4
[lora]
r = 4
alpha = 8
[reward]
reference = ["{refr}"]
encoder = "stylometric"
[reward.length]
max_completion_length = 8
[grpo]
steps = 1
prompts_per_step = 1
num_generations = 2
max_completion_length = 8
ppo_epochs = 1
seed = 1
checkpoint_every = 1
[grpo.optimizer]
lr = 0.01
"#,
        o = d.join(out).display(),
        m = d.join("tiny").display(),
        t = r.join("datasets/rewrite/train.jsonl").display(),
        refr = r.join("datasets/reference/whimsical_tale.txt").display(),
    );
    std::fs::write(&p, text).unwrap();
    p
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
