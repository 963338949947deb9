//! GRPO on a tiny random Llama: what one step touches, micro-batch invariance, exact resume,
//! and Bit-LoRA saving. The reward uses the weight-free stylometric encoder.
mod common;
use common::assert_close;
use stylerl::train::grpo::GrpoTrainer;
use stylerl::train::grpo_config::GrpoConfig;
use tch::Tensor;

/// Trainers seed torch's global RNG (adapter init); tests running in parallel threads would
/// interleave those draws and make runs that should be equal differ. One at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn config(model: &std::path::Path, out: &std::path::Path, extra: &[&str]) -> GrpoConfig {
    let r = common::root();
    let text = format!(
        r#"
out_dir = "{out}"
[model]
path = "{model}"
[data]
train = "{data}"
limit = 12
[lora]
r = 4
alpha = 8
[reward]
reference = ["{refr}"]
encoder = "stylometric"
[reward.length]
max_completion_length = 12
[grpo]
steps = 3
prompts_per_step = 2
num_generations = 3
max_completion_length = 12
ppo_epochs = 2
micro_batch_size = 6
seed = 7
[grpo.optimizer]
lr = 0.01
"#,
        out = out.display(),
        model = model.display(),
        data = r.join("datasets/rewrite/train.jsonl").display(),
        refr = r.join("datasets/reference/whimsical_tale.txt").display(),
    );
    let overrides: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    stylerl::config::parse(&text, &overrides).unwrap()
}

fn snapshot(ts: &[(String, Tensor)]) -> Vec<(String, Tensor)> {
    ts.iter()
        .map(|(n, t)| (n.clone(), t.detach().copy()))
        .collect()
}

fn max_diff(a: &[(String, Tensor)], b: &[(String, Tensor)]) -> f64 {
    a.iter()
        .zip(b)
        .map(|((na, x), (nb, y))| {
            assert_eq!(na, nb);
            (x - y).abs().max().double_value(&[])
        })
        .fold(0.0, f64::max)
}

#[test]
fn one_step_changes_only_adapter_weights() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m");
    common::tiny_llama(&model, 1);
    let mut tr = GrpoTrainer::new(&config(&model, &dir.path().join("run"), &[])).unwrap();
    let base = snapshot(&tr.pol.model.named_tensors());
    let adapter = snapshot(&tr.pol.adapter.named_parameters());
    let (rec, samples) = tr.step().unwrap();
    assert_eq!(samples.len(), 6);
    assert!(
        rec["reward_std"].as_f64().unwrap() > 0.0,
        "rewards should differ: {rec}"
    );
    assert_eq!(
        max_diff(&base, &snapshot(&tr.pol.model.named_tensors())),
        0.0,
        "base weights moved"
    );
    assert!(
        max_diff(&adapter, &snapshot(&tr.pol.adapter.named_parameters())) > 1e-6,
        "adapter did not move"
    );
    // B starts at zero and must have learned.
    let b_norm: f64 = tr
        .pol
        .adapter
        .layers
        .values()
        .map(|l| l.b.abs().sum(tch::Kind::Float).double_value(&[]))
        .sum();
    assert!(b_norm > 0.0);
}

#[test]
fn micro_batch_size_does_not_change_the_update() {
    let _serial = serial();
    // eps = 1 makes AdamW's first steps proportional to the gradient, so float rounding
    // between micro-batch shapes is not amplified by the 1/sqrt(v) normalisation.
    let sgd_like = [
        "grpo.optimizer.eps=1.0".to_string(),
        "grpo.optimizer.lr=1.0".to_string(),
    ];
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m");
    common::tiny_llama(&model, 2);
    let mut whole = GrpoTrainer::new(&config(
        &model,
        &dir.path().join("a"),
        &[&sgd_like[..], &["grpo.micro_batch_size=6".to_string()]]
            .concat()
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>(),
    ))
    .unwrap();
    let mut split = GrpoTrainer::new(&config(
        &model,
        &dir.path().join("b"),
        &[&sgd_like[..], &["grpo.micro_batch_size=4".to_string()]]
            .concat()
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>(),
    ))
    .unwrap();
    let (ra, _) = whole.step().unwrap();
    let (rb, _) = split.step().unwrap();
    assert_eq!(ra["reward"], rb["reward"], "same rollouts expected");
    let d = max_diff(
        &snapshot(&whole.pol.adapter.named_parameters()),
        &snapshot(&split.pol.adapter.named_parameters()),
    );
    let moved = max_diff(
        &snapshot(&whole.pol.adapter.named_parameters()),
        &GrpoTrainer::new(&config(&model, &dir.path().join("c"), &[]))
            .map(|t| snapshot(&t.pol.adapter.named_parameters()))
            .unwrap(),
    );
    eprintln!("update size {moved:.3e}, micro-batch difference {d:.3e}");
    assert!(moved > 1e-4, "the step did not move the adapter ({moved})");
    assert!(
        d < 1e-6 * moved.max(1.0) + 1e-7,
        "micro-batching changed the update by {d}"
    );
}

#[test]
fn resumed_run_equals_uninterrupted_run() {
    resumed_equals_uninterrupted(&[]);
}

/// Usage-keyed dropout carries state from batch to batch (its counts): the checkpoint keeps it.
#[test]
fn resumed_run_with_usage_dropout_equals_uninterrupted_run() {
    let usage = [
        "reward.dropout.enabled=true",
        "reward.dropout.mode=\"expected\"",
        "reward.dropout.rates=\"usage\"",
        "reward.dropout.decay=0.5",
        "reward.dropout.prior=0.1",
        "reward.aggregation=\"mean\"",
    ];
    let rates = resumed_equals_uninterrupted(&usage);
    assert!(
        rates.iter().any(|&r| r > 0.0),
        "no usage rate after 3 steps: {rates:?}"
    );
}

/// R_balance's counts carry over batches too: the checkpoint keeps them.
#[test]
fn resumed_run_with_balance_equals_uninterrupted_run() {
    let balance = [
        "reward.balance.weight=1.0",
        "reward.balance.decay=0.5",
        "reward.balance.prior=0.1",
    ];
    resumed_equals_uninterrupted(&balance);
}

/// Runs 3 steps straight and 1 + (resume) 2; asserts equal adapters and equal running counts
/// (usage dropout, R_balance); returns the final rates.
fn resumed_equals_uninterrupted(extra: &[&str]) -> Vec<f64> {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m");
    common::tiny_llama(&model, 3);
    let run = |name: &str| dir.path().join(name);
    let mut full = GrpoTrainer::new(&config(&model, &run("full"), extra)).unwrap();
    for _ in 0..3 {
        full.step().unwrap();
    }
    // "Killed" after step 1: only its checkpoint survives.
    let root = run("cut").join("checkpoints");
    {
        let mut first = GrpoTrainer::new(&config(&model, &run("cut"), extra)).unwrap();
        first.step().unwrap();
        first.state.extra = first.checkpoint_extra();
        stylerl::train::checkpoint::save(
            &root,
            &first.state,
            &first.pol.adapter,
            &first.optim,
            None,
            2,
        )
        .unwrap();
        first.step().unwrap(); // work after the checkpoint is lost with the process
    }
    let mut resumed = GrpoTrainer::new(&config(&model, &run("cut"), extra)).unwrap();
    assert!(resumed.resume(&root).unwrap());
    assert_eq!(resumed.state.step, 1);
    while resumed.state.step < 3 {
        resumed.step().unwrap();
    }
    let d = max_diff(
        &snapshot(&full.pol.adapter.named_parameters()),
        &snapshot(&resumed.pol.adapter.named_parameters()),
    );
    assert_eq!(d, 0.0, "resumed run differs by {d}");
    assert_eq!(full.rm.usage, resumed.rm.usage);
    assert_eq!(full.rm.balance, resumed.rm.balance);
    if let Some(b) = &full.rm.balance {
        assert!(
            b.generated.iter().sum::<f64>() > 0.0,
            "no R_balance counts after 3 steps"
        );
    }
    full.rm.current_rates()
}

#[test]
fn bitlora_run_saves_dequantized_and_packed_adapters() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m");
    common::tiny_llama(&model, 4);
    let out = dir.path().join("run");
    let cfg = config(
        &model,
        &out,
        &[
            "grpo.bitlora=true".into(),
            "grpo.steps=1".into(),
            "lora.r=8".into(),
        ],
    );
    let adapter_dir = stylerl::train::grpo::train(&cfg, false).unwrap();
    let fp32 = std::fs::metadata(adapter_dir.join("adapter_model.safetensors"))
        .unwrap()
        .len();
    let packed = std::fs::metadata(adapter_dir.join("adapter_ternary.safetensors"))
        .unwrap()
        .len();
    assert!(packed * 4 < fp32, "packed {packed} vs fp32 {fp32}");
    // The dequantized factors are ternary times one scale per tensor.
    let a = stylerl::adapter::peft::load_adapter(&adapter_dir, tch::Device::Cpu).unwrap();
    for l in a.layers.values() {
        for t in [&l.a, &l.b] {
            let s = t.abs().max().double_value(&[]);
            if s > 0.0 {
                let codes = (t / s).round();
                assert_close(t, &(codes * s), 1e-6, "ternary codes times the scale");
            }
        }
    }
    assert!(out.join("metrics.jsonl").exists() && out.join("checkpoints/latest").exists());
}

#[test]
fn generation_logprobs_as_old_policy_give_the_recomputed_update() {
    let _serial = serial();
    // π_old taken from generate() must be the same numbers as a re-scoring pass, row for row:
    // a misaligned or wrongly scaled π_old changes the ratios and so the update.
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m");
    common::tiny_llama(&model, 2);
    let run = |name: &str, mode: &str| {
        let opt = format!("grpo.old_logprobs={mode}");
        let mut t = GrpoTrainer::new(&config(
            &model,
            &dir.path().join(name),
            &["grpo.optimizer.eps=1.0", "grpo.optimizer.lr=1.0", &opt],
        ))
        .unwrap();
        let (rec, _) = t.step().unwrap();
        (rec, snapshot(&t.pol.adapter.named_parameters()))
    };
    let (ra, a) = run("gen", "generation");
    let (rb, b) = run("re", "recompute");
    assert_eq!(ra["reward"], rb["reward"], "same rollouts expected");
    let fresh = GrpoTrainer::new(&config(&model, &dir.path().join("c"), &[]))
        .map(|t| snapshot(&t.pol.adapter.named_parameters()))
        .unwrap();
    let moved = max_diff(&a, &fresh);
    let d = max_diff(&a, &b);
    eprintln!("update size {moved:.3e}, generation vs recomputed π_old {d:.3e}");
    assert!(moved > 1e-4, "the step did not move the adapter ({moved})");
    assert!(
        d < 1e-4 * moved,
        "π_old from generation changed the update by {d}"
    );
}
