//! Every family trains and runs through the one loader: `stylerl sft` for 2 steps on tiny
//! random Qwen2, Qwen3 and GPT-2 models (all-linear LoRA on their own module names, the
//! merged directory equal to the adapter applied), and one GRPO step that moves only the
//! adapter, and `stylerl evaluate` with systems of two families. Parity with
//! transformers/PEFT is in tests/parity/test_families.py.
mod common;
use std::path::Path;
use std::process::Command;
use stylerl::model::Llama;
use tch::{Device, Kind, Tensor};

const FAMILIES: [&str; 3] = ["qwen2", "qwen3", "gpt2"];

/// The all-linear leaf names of each family (lm_head excluded).
fn leaves(family: &str) -> Vec<&'static str> {
    match family {
        "gpt2" => vec!["c_attn", "c_fc", "c_proj"],
        _ => vec![
            "down_proj",
            "gate_proj",
            "k_proj",
            "o_proj",
            "q_proj",
            "up_proj",
            "v_proj",
        ],
    }
}

fn sft(model: &Path, out: &Path) {
    let root = common::root();
    let rows: String = std::fs::read_to_string(root.join("datasets/sft/train.jsonl"))
        .unwrap()
        .lines()
        .take(4)
        .map(|l| format!("{l}\n"))
        .collect();
    let train = out.with_extension("jsonl");
    std::fs::write(&train, rows).unwrap();
    let set = |kv: String| ["--set".to_string(), kv];
    let mut args = vec!["sft".to_string(), "--config".into()];
    args.push(root.join("configs/demo/sft.toml").display().to_string());
    for kv in [
        format!("model.path={}", model.display()),
        format!("out_dir={}", out.display()),
        format!("data.train={}", train.display()),
        "data.eval=".into(),
        "data.max_length=96".into(),
        "train.max_steps=2".into(),
        "train.batch_size=2".into(),
        "train.warmup_steps=0".into(),
        "train.merge=true".into(),
        "train.checkpoint_every=0".into(),
        "train.eval_every=0".into(),
        "train.optimizer.lr=0.01".into(),
        "lora.dropout=0.0".into(),
    ] {
        args.extend(set(kv));
    }
    let p = Command::new(env!("CARGO_BIN_EXE_stylerl"))
        .args(&args)
        .env("STYLERL_PROGRESS", "0")
        .output()
        .unwrap();
    assert!(
        p.status.success(),
        "sft failed: {}",
        String::from_utf8_lossy(&p.stderr)
    );
}

fn logits(m: &Llama) -> Tensor {
    let ids = Tensor::from_slice(&[1i64, 520, 33, 9001, 77, 4]).unsqueeze(0);
    tch::no_grad(|| m.forward(&ids, None, None))
}

#[test]
fn sft_runs_on_every_family_and_its_merge_equals_the_adapter() {
    for family in FAMILIES {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m");
        common::tiny_family(&model, family, 3);
        let out = dir.path().join("run");
        sft(&model, &out);
        let ad = out.join("adapter");
        let cfg: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(ad.join("adapter_config.json")).unwrap())
                .unwrap();
        let targets: Vec<&str> = cfg["target_modules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(targets, leaves(family), "{family}");
        assert_eq!(cfg["fan_in_fan_out"], family == "gpt2", "{family}");
        let with = stylerl::adapter::load::load(
            &stylerl::adapter::load::ModelSpec::parse(
                model.clone(),
                "cpu",
                "f32",
                false,
                vec![ad.display().to_string()],
            )
            .unwrap(),
        )
        .unwrap();
        let base = Llama::load(&model, Device::Cpu, Kind::Float).unwrap();
        let merged = Llama::load(&out.join("merged"), Device::Cpu, Kind::Float).unwrap();
        let (lw, lb, lm) = (logits(&with), logits(&base), logits(&merged));
        let moved = (&lw - &lb).abs().max().double_value(&[]);
        assert!(
            moved > 1e-3,
            "{family}: 2 steps at lr 0.01 did not change the logits"
        );
        common::assert_close(&lm, &lw, 1e-5, &format!("{family} merged vs adapter"));
    }
}

#[test]
fn grpo_step_moves_only_the_adapter_on_gpt2_and_qwen3() {
    for family in ["gpt2", "qwen3"] {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m");
        common::tiny_family(&model, family, 5);
        let r = common::root();
        let text = format!(
            r#"
out_dir = "{out}"
[model]
path = "{model}"
[data]
train = "{data}"
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
prompts_per_step = 2
num_generations = 3
max_completion_length = 8
seed = 7
[grpo.optimizer]
lr = 0.01
"#,
            out = dir.path().join("run").display(),
            model = model.display(),
            data = r.join("datasets/rewrite/train.jsonl").display(),
            refr = r.join("datasets/reference/whimsical_tale.txt").display(),
        );
        let cfg: stylerl::train::grpo_config::GrpoConfig =
            stylerl::config::parse(&text, &[]).unwrap();
        let mut tr = stylerl::train::grpo::GrpoTrainer::new(&cfg).unwrap();
        let copy = |ts: Vec<(String, Tensor)>| -> Vec<Tensor> {
            ts.into_iter().map(|(_, t)| t.detach().copy()).collect()
        };
        let base = copy(tr.pol.model.named_tensors());
        let adapter = copy(tr.pol.adapter.named_parameters());
        let (_, samples) = tr.step().unwrap();
        assert_eq!(samples.len(), 6, "{family}");
        let diff = |a: &[Tensor], b: Vec<Tensor>| {
            a.iter()
                .zip(&b)
                .map(|(x, y)| (x - y).abs().max().double_value(&[]))
                .fold(0.0, f64::max)
        };
        assert_eq!(
            diff(&base, copy(tr.pol.model.named_tensors())),
            0.0,
            "{family}: base moved"
        );
        assert!(
            diff(&adapter, copy(tr.pol.adapter.named_parameters())) > 1e-6,
            "{family}: adapter did not move"
        );
    }
}

#[test]
fn evaluate_runs_systems_of_different_families() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::tiny_family(&d.join("gpt2"), "gpt2", 6);
    common::tiny_family(&d.join("qwen2"), "qwen2", 6);
    let inputs = [
        "Hi Sam, the meeting moved to 3pm on Friday. Can you tell Priya?",
        "thanks for dinner last night!! the lasagne was amazing",
    ];
    let held: String = inputs
        .iter()
        .map(|t| serde_json::json!({ "body": t }).to_string() + "\n")
        .collect();
    std::fs::write(d.join("heldout.jsonl"), held).unwrap();
    std::fs::write(
        d.join("ref.txt"),
        "Once upon a time, a snail dreamed of letters. Was it silly? Of course it was!",
    )
    .unwrap();
    let cfg = format!(
        r#"
name = "families"
out_dir = "{out}"
baseline = "gpt2"
[bootstrap]
resamples = 100
seed = 1
[meaning]
encoder = "stylometric"
[data]
heldout = "{held}"
field = "body"
[reward]
reference = ["{refp}"]
encoder = "stylometric"
[generation]
max_new_tokens = 6
seed = 3
batch_size = 2
[[systems]]
name = "gpt2"
kind = "prompted"
[systems.model]
path = "{gpt2}"
[[systems]]
name = "qwen2"
kind = "model"
[systems.model]
path = "{qwen2}"
"#,
        out = d.join("results").display(),
        held = d.join("heldout.jsonl").display(),
        refp = d.join("ref.txt").display(),
        gpt2 = d.join("gpt2").display(),
        qwen2 = d.join("qwen2").display(),
    );
    std::fs::write(d.join("eval.toml"), cfg).unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_stylerl"))
        .args([
            "evaluate",
            "--config",
            d.join("eval.toml").to_str().unwrap(),
        ])
        .env("STYLERL_PROGRESS", "0")
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let outputs = std::fs::read_to_string(d.join("results/outputs.jsonl")).unwrap();
    for system in ["gpt2", "qwen2"] {
        let n = outputs
            .lines()
            .filter(|l| l.contains(&format!("\"system\":\"{system}\"")))
            .count();
        assert_eq!(n, inputs.len(), "{system} outputs:\n{outputs}");
    }
}
