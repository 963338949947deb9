//! A short seeded Dr.GRPO run on the default model (SmolLM2-135M-Instruct, scripts/setup.sh
//! imports it) raises style similarity on HELD-OUT inputs (datasets/rewrite/heldout.jsonl, never
//! trained on) over its starting policy by more than the measured noise.
//!
//! The reward is R_style alone with `aggregation = "mean"` (length, punctuation and entity
//! weights 0) from the weight-free stylometric encoder against the whimsical tale: the mean best
//! similarity per sentence, which is `evaluate`'s style similarity, so the signal the policy gets
//! is exactly the quantity asserted and more sentences cannot buy it. The evaluation samples the
//! same prompts with the same seeds before and after training. Two noises are measured (ignored
//! tests, run with `--ignored --nocapture`): the evaluation's spread across sampling seeds on
//! the untrained model (`eval_spread`) and the rise's spread across training seeds
//! (`learning_spread`); the margin is set above both.
mod common;
use stylerl::infer::generate::{generate, GenerateConfig};
use stylerl::infer::sampling::SamplingConfig;
use stylerl::model::chat::{ChatMessage, ChatTemplate};
use stylerl::reward::Rollout;
use stylerl::train::grpo::GrpoTrainer;
use stylerl::train::grpo_config::GrpoConfig;
use stylerl::train::sft_data::{user_turn, DEFAULT_INSTRUCTION};

/// Evaluation prompts: the first held-out inputs; the run trains on the first 16 training
/// inputs, so the test asks whether what the policy learns carries over to unseen inputs.
const EVAL_PROMPTS: usize = 8;
/// Samples per evaluation prompt.
const EVAL_SAMPLES: usize = 4;
const LMAX: usize = 24;
/// GRPO steps of the run.
const STEPS: usize = 12;
/// Training prompts per step (4 samples each).
const PROMPTS: usize = 4;

fn config(out: &std::path::Path, lr: f64, seed: u64, precision: &str) -> GrpoConfig {
    let r = common::root();
    let text = format!(
        r#"
out_dir = "{out}"
[model]
path = "{model}"
matmul = "{precision}"
[data]
train = "{data}"
limit = 16
[lora]
r = 8
alpha = 16
target_modules = "all-linear"
[reward]
reference = ["{refr}"]
encoder = "stylometric"
aggregation = "mean"
[reward.weights]
style = 1.0
length = 0.0
punctuation = 0.0
[reward.entities]
weight = 0.0
[reward.length]
max_completion_length = {LMAX}
[grpo]
steps = {STEPS}
prompts_per_step = {PROMPTS}
num_generations = 4
max_completion_length = {LMAX}
temperature = 1.0
ppo_epochs = 2
micro_batch_size = 16
sampling_weights = "{precision}"
seed = {seed}
[grpo.optimizer]
lr = {lr}
"#,
        out = out.display(),
        model = common::smol_dir().display(),
        data = r.join("datasets/rewrite/train.jsonl").display(),
        refr = r.join("datasets/reference/whimsical_tale.txt").display(),
    );
    stylerl::config::parse(&text, &[]).unwrap()
}

/// Mean style similarity (R_style with mean aggregation) of EVAL_SAMPLES sampled rewrites
/// (T = 1) of each evaluation prompt.
fn eval_style(tr: &GrpoTrainer, seed: u64) -> f64 {
    let tpl = ChatTemplate::from_dir(&common::smol_dir()).unwrap();
    let heldout =
        std::fs::read_to_string(common::root().join("datasets/rewrite/heldout.jsonl")).unwrap();
    let texts: Vec<String> = heldout
        .lines()
        .take(EVAL_PROMPTS)
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let prompts: Vec<Vec<i64>> = texts
        .iter()
        .map(|t| {
            let msg = [ChatMessage::new("user", &user_turn(DEFAULT_INSTRUCTION, t))];
            tr.pol
                .tok
                .encode(&tpl.render(&msg, true).unwrap(), false)
                .unwrap()
        })
        .collect();
    let cfg = GenerateConfig {
        max_new_tokens: LMAX,
        sampling: SamplingConfig {
            greedy: false,
            temperature: 1.0,
            top_k: None,
            top_p: None,
        },
        seed,
        eos_ids: tr.pol.eos.clone(),
        pad_id: tr.pol.pad,
        share_prefix: true,
        common_prefix: false,
        rng_prompt_offset: 0,
    };
    let gen = tch::no_grad(|| generate(&tr.pol.model, &prompts, EVAL_SAMPLES, &cfg)).unwrap();
    let outputs: Vec<String> = gen
        .iter()
        .map(|s| {
            tr.pol
                .tok
                .decode(&s.tokens, true)
                .unwrap()
                .trim()
                .to_string()
        })
        .collect();
    let rollouts: Vec<Rollout> = gen
        .iter()
        .zip(&outputs)
        .map(|(s, o)| Rollout {
            input: &texts[s.prompt_index],
            output: o,
            output_tokens: s.tokens.len(),
            input_tokens: 0,
        })
        .collect();
    let scores = tr.rm.score_batch(&rollouts, 0).unwrap();
    scores.rewards.iter().map(|r| r.r_style).sum::<f64>() / scores.rewards.len() as f64
}

/// Mean R_style over a few evaluation seeds.
fn eval_mean(tr: &GrpoTrainer) -> f64 {
    let seeds = [11u64, 12];
    seeds.iter().map(|&s| eval_style(tr, s)).sum::<f64>() / seeds.len() as f64
}

/// libtorch intra-op threads: STYLERL_THREADS, else 1 (the run is sized for one core).
fn threads() {
    let n = std::env::var("STYLERL_THREADS")
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or(1);
    tch::set_num_threads(n);
}

/// Held-out style similarity after one seeded run (the run's steps print as they go).
fn trained(lr: f64, seed: u64, precision: &str) -> f64 {
    threads();
    let dir = tempfile::tempdir().unwrap();
    let mut tr = GrpoTrainer::new(&config(dir.path(), lr, seed, precision)).unwrap();
    for _ in 0..tr.cfg.grpo.steps {
        let (rec, _) = tr.step().unwrap();
        eprintln!(
            "{precision} seed {seed} step {} reward {:.3} loss {:.4} grad_norm {:.3}",
            rec["step"], rec["reward"], rec["loss"], rec["grad_norm"]
        );
    }
    eval_mean(&tr)
}

/// Held-out style similarity of the untrained policy (the same for every training seed: the
/// adapter starts at zero and the evaluation seeds are fixed).
fn untrained(precision: &str) -> f64 {
    threads();
    let dir = tempfile::tempdir().unwrap();
    eval_mean(&GrpoTrainer::new(&config(dir.path(), LR, 0, precision)).unwrap())
}

/// (before, after) evaluation of one seeded run.
fn run(lr: f64, seed: u64) -> (f64, f64) {
    let before = untrained("f32");
    let after = trained(lr, seed, "f32");
    eprintln!(
        "lr {lr} seed {seed}: style similarity {before:.4} -> {after:.4} (rise {:+.4})",
        after - before
    );
    (before, after)
}

/// The run-mean rise over [`SEEDS`] must exceed this. A single seed's rise depends on the
/// float path, which differs by CPU (MKL and the decode kernel round differently on AMD and
/// Intel, with and without AVX-512), so one seed's outcome is not asserted. Measured on this
/// config (1 thread, lr 5e-3, 12 steps × 4 prompts; 8 held-out inputs × 4 samples × 2
/// evaluation seeds), rises of the held-out style similarity per training seed:
///
/// | path | seed 0 | 1 | 2 | 3 | 4 | mean of 0–2 |
/// |---|---|---|---|---|---|---|
/// | AMD EPYC, no AVX-512 (2026-11-28) | +0.209 | +0.339 | +0.099 | +0.282 | – | +0.216 |
/// | Intel Xeon, AVX-512 (the issue that made this test multi-seed) | −0.030 | – | – | – | – | – |
/// | AMD EPYC Zen 4, AVX-512, decode kernel on (2026-12-06) | +0.356 | +0.387 | +0.285 | +0.363 | +0.342 | +0.343 |
/// | the same CPU, `STYLERL_DECODE_KERNEL=0` (stands in for a CPU without AVX-512) | +0.160 | +0.171 | +0.141 | +0.385 | +0.209 | +0.157 |
///
/// lr 0 gives exactly +0.000 (the evaluation is seeded: an unchanged policy scores the same).
/// The evaluation's own noise (`eval_spread`, untrained model, 6 seed pairs) has sd 0.024, so
/// the three-seed mean rise of a policy that only drifts at random has sd ≈ 0.028 (one shared
/// "before"); 0.05 is 1.8 of those. Across all 15 runs the per-seed rise spans −0.030 … +0.387;
/// a path that collapses seed 0 (as the Intel run did) and gives seeds 1–2 the smallest rises
/// seen on any path (+0.099, +0.141) still averages +0.070.
const MARGIN: f64 = 0.05;
/// Learning rate of the runs (high, so a handful of steps moves the policy).
const LR: f64 = 5e-3;
/// Training seeds of the asserted run-mean.
const SEEDS: [u64; 3] = [0, 1, 2];

/// The run-mean rise over [`SEEDS`] in `precision` ("f32", or "bf16": the training matmuls'
/// weights and the rollouts' sampling weights rounded to bf16).
fn assert_learns(precision: &str) {
    let before = untrained(precision);
    let rises: Vec<f64> = SEEDS
        .iter()
        .map(|&s| trained(LR, s, precision) - before)
        .collect();
    let mean = rises.iter().sum::<f64>() / rises.len() as f64;
    eprintln!("{precision}: rises over seeds {SEEDS:?}: {rises:.4?}, mean {mean:+.4}");
    assert!(
        mean > MARGIN,
        "{precision}: held-out style similarity should rise by more than {MARGIN} on average over seeds {SEEDS:?}: rises {rises:.3?} (mean {mean:+.3}) from {before:.3}"
    );
}

#[test]
fn short_runs_raise_held_out_style_similarity_on_average_over_seeds() {
    assert_learns("f32");
}

/// The same claim with bf16 weights in the training matmuls and the rollouts: the faster
/// mode must learn what f32 learns, over the same seeds and margin.
/// Measured on AMD Zen 4 (2026-12-06): rises +0.146, +0.192, +0.327 (mean +0.222; f32 on
/// the same CPU: +0.356, +0.387, +0.285). Skipped where the CPU has no AVX512-BF16, where
/// `auto` never picks bf16 and torch's emulated bf16 matmuls would only slow the suite.
#[test]
fn the_same_holds_with_bf16_weights() {
    if !stylerl::model::precision::cpu_has_bf16_matmul() {
        eprintln!("skipped: this CPU has no AVX512-BF16 (model.matmul = \"auto\" stays f32 here)");
        return;
    }
    assert_learns("bf16");
}

/// The spread of the evaluation across sampling seeds on the untrained model.
#[test]
#[ignore]
fn eval_spread() {
    threads();
    let dir = tempfile::tempdir().unwrap();
    let tr = GrpoTrainer::new(&config(dir.path(), 0.0, 0, "f32")).unwrap();
    let v: Vec<f64> = (100..106)
        .map(|s| (eval_style(&tr, s) + eval_style(&tr, s + 1000)) / 2.0)
        .collect();
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt();
    eprintln!("eval over seed pairs: {v:?} mean {m:.3} sd {sd:.3}");
}

/// Learning runs at a few seeds, and lr = 0 (which must not pass the margin).
#[test]
#[ignore]
fn learning_spread() {
    // STYLERL_LEARN_SEEDS=1,3 measures only those seeds (and skips the lr = 0 control).
    let chosen = std::env::var("STYLERL_LEARN_SEEDS").ok();
    let seeds: Vec<u64> = chosen
        .as_deref()
        .unwrap_or("1,2,3")
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    for seed in seeds {
        run(LR, seed);
    }
    if chosen.is_none() {
        run(0.0, 0);
    }
}
