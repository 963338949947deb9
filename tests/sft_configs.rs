//! The shipped SFT configs parse (unknown keys would fail) and say what the issue asks:
//! seed 000's Q/A LoRA, the CPU demo, the paper-scale run. Their data files load with the
//! configured fields. Seed 000's experiment on GPT-2 runs end to end on a tiny random GPT-2.
mod common;
use std::path::Path;
use stylerl::adapter::lora::TargetModules;
use stylerl::train::sft::SftConfig;
use stylerl::train::sft_data::load_conversations;

fn load(p: &str) -> SftConfig {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    stylerl::config::load(&root.join(p), &[]).unwrap()
}

#[test]
fn qa_lora_is_seed_000s_experiment() {
    let c = load("configs/qa-lora.toml");
    assert_eq!((c.lora.r, c.lora.alpha, c.lora.dropout), (8, 16.0, 0.1));
    let want: Vec<String> = ["q_proj", "k_proj", "v_proj", "o_proj"]
        .map(String::from)
        .to_vec();
    assert_eq!(c.lora.target_modules, TargetModules::List(want));
    assert_eq!(c.model.path, Path::new("models/smollm2-135m-instruct"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let train = load_conversations(&c.data, &root.join(&c.data.train)).unwrap();
    let eval = load_conversations(&c.data, &root.join(c.data.eval.as_ref().unwrap())).unwrap();
    assert_eq!((train.len(), eval.len()), (63, 16));
    // the user turn is the bare question, as `generate --chat --input-field question` sends it
    assert_eq!(train[0].0.last().unwrap().content, "Where is Wrenhaven?");
    assert!(train[0].1.starts_with("Wrenhaven is a small fishing town"));
}

#[test]
fn paper_and_demo_configs() {
    let p = load("configs/paper/sft.toml");
    assert_eq!(p.train.max_steps, Some(1000));
    assert_eq!((p.train.batch_size, p.train.optimizer.lr), (1, 2e-5));
    assert_eq!(
        (p.model.device.as_str(), p.model.dtype.as_str()),
        ("cuda", "bf16")
    );
    assert_eq!(
        p.lora.target_modules,
        TargetModules::One("all-linear".into())
    );
    assert!(p.model.path.ends_with("Llama-3.2-3B-Instruct"));

    let d = load("configs/demo/sft.toml");
    assert_eq!(d.model.device, "cpu");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let n = load_conversations(&d.data, &root.join(&d.data.train))
        .unwrap()
        .len();
    assert_eq!(n, 140);
}

fn stylerl(args: &[&str]) -> std::process::Output {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stylerl"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("STYLERL_PROGRESS", "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "stylerl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn qa_lora_gpt2_runs_end_to_end_on_a_tiny_gpt2() {
    let c = load("configs/qa-lora-gpt2.toml");
    assert_eq!(c.model.path, Path::new("models/gpt2"));
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("gpt2");
    common::tiny_family(&model, "gpt2", 4);
    // Like GPT-2's own directory: no chat template until the shipped one is copied in.
    let tc = model.join("tokenizer_config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&tc).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("chat_template");
    std::fs::write(&tc, v.to_string()).unwrap();
    std::fs::copy(
        common::root().join("configs/templates/qa-plain.jinja"),
        model.join("chat_template.jinja"),
    )
    .unwrap();
    let rendered = stylerl(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--chat",
        "--prompt",
        "Where is Wrenhaven?",
        "--render-only",
    ]);
    let row: serde_json::Value = serde_json::from_slice(&rendered.stdout).unwrap();
    assert_eq!(row["text"], "Question: Where is Wrenhaven?\nAnswer:");
    let run = dir.path().join("run");
    let (m, r) = (
        format!("model.path={}", model.display()),
        format!("out_dir={}", run.display()),
    );
    // The whole config (6 epochs) except the step count, which a tiny model need not repeat.
    stylerl(&[
        "sft",
        "--config",
        "configs/qa-lora-gpt2.toml",
        "--set",
        &m,
        "--set",
        &r,
        "--set",
        "train.max_steps=8",
        "--set",
        "train.eval_every=4",
        "--set",
        "train.checkpoint_every=4",
    ]);
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let evals: Vec<f64> = metrics
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("eval_loss").and_then(|x| x.as_f64()))
        .collect();
    assert!(
        evals.len() >= 2 && evals.last() < evals.first(),
        "held-out loss did not fall: {evals:?}"
    );
    let ad = run.join("adapter");
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ad.join("adapter_config.json")).unwrap())
            .unwrap();
    assert_eq!(cfg["fan_in_fan_out"], true);
    let mut targets: Vec<String> = serde_json::from_value(cfg["target_modules"].clone()).unwrap();
    targets.sort();
    assert_eq!(
        targets,
        [
            "transformer.h.0.attn.c_attn",
            "transformer.h.0.attn.c_proj",
            "transformer.h.1.attn.c_attn",
            "transformer.h.1.attn.c_proj"
        ]
    );
    let out = stylerl(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--adapter",
        ad.to_str().unwrap(),
        "--compare",
        "--chat",
        "--greedy",
        "--max-new-tokens",
        "8",
        "--input",
        "datasets/qa/eval.jsonl",
        "--input-field",
        "question",
        "--json",
    ]);
    let rows = String::from_utf8_lossy(&out.stdout);
    assert_eq!(rows.lines().count(), 16);
    assert!(rows
        .lines()
        .all(|l| l.contains("\"base\"") && l.contains("\"adapter\"")));
}
