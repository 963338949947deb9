//! Bad settings through the binary (issue 11): every row ends in a non-zero exit with one
//! `error:` line naming the key, the value and what is allowed, and writes no output.
mod common;
mod sft_support;
use sft_support::*;
use std::path::{Path, PathBuf};
use std::process::Output;

/// Asserts exit `code`, exactly one `error:` line on stderr and no panic; returns the line.
fn refused(o: &Output, code: i32) -> String {
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(
        o.status.code(),
        Some(code),
        "want exit {code}, stderr:\n{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "want one error line:\n{err}");
    lines[0].to_string()
}

fn has_all(line: &str, want: &[&str]) {
    for w in want {
        assert!(line.contains(w), "'{w}' not in: {line}");
    }
}

fn sets(set: &[&str]) -> Vec<String> {
    set.iter()
        .flat_map(|s| ["--set".to_string(), s.to_string()])
        .collect()
}

fn grpo(cfg: &Path, args: &[String], env: &[(&str, &str)]) -> Output {
    let mut c = bin();
    c.arg("grpo").arg("--config").arg(cfg).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn generate(d: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = bin();
    c.arg("generate")
        .arg("--model")
        .arg(d.join("tiny"))
        .args(args);
    if !args.contains(&"--max-new-tokens") {
        c.args(["--max-new-tokens", "4"]);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// Each `--set`, alone, is refused by `sft` naming every string in `want`; no out_dir appears.
fn sft_refuses(d: &Path, cases: &[(&str, &[&str])]) {
    let cfg = config(d, "run", "max_steps = 1");
    for (set, want) in cases {
        let a = sets(&[set]);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let line = refused(&sft(&cfg, &a, &[]), 1);
        has_all(&line, want);
        assert!(!d.join("run").exists(), "{set}: out_dir written");
    }
}

fn grpo_refuses(d: &Path, cases: &[(&str, &[&str])]) {
    let cfg = grpo_config(d, "g");
    for (set, want) in cases {
        let line = refused(&grpo(&cfg, &sets(&[set]), &[]), 1);
        has_all(&line, want);
        assert!(!d.join("g").exists(), "{set}: out_dir written");
    }
}

// Row 1: non-finite learning rate and clip norm.
#[test]
fn sft_non_finite_or_negative_optimizer_settings_are_refused() {
    if !smol_present() {
        return;
    }
    let d = workspace();
    sft_refuses(
        d.path(),
        &[
            (
                "train.optimizer.lr=nan",
                &["train.optimizer.lr = NaN", "finite number > 0"],
            ),
            (
                "train.optimizer.lr=inf",
                &["train.optimizer.lr = inf", "finite number > 0"],
            ),
            (
                "train.optimizer.lr=-0.1",
                &["train.optimizer.lr = -0.1", "> 0"],
            ),
            (
                "train.max_grad_norm=nan",
                &["train.max_grad_norm = NaN", "> 0"],
            ),
            (
                "train.optimizer.beta2=1.0",
                &["train.optimizer.beta2 = 1", "[0, 1)"],
            ),
            ("lora.dropout=1.5", &["lora.dropout = 1.5", "[0, 1)"]),
        ],
    );
}

// Item 2's counts: steps, batch sizes and lengths are at least 1.
#[test]
fn sft_zero_counts_are_refused() {
    if !smol_present() {
        return;
    }
    let d = workspace();
    sft_refuses(
        d.path(),
        &[
            ("train.max_steps=0", &["train.max_steps = 0", "≥ 1"]),
            ("train.batch_size=0", &["train.batch_size = 0", "≥ 1"]),
            ("train.grad_accum=0", &["train.grad_accum = 0", "≥ 1"]),
            ("data.max_length=0", &["data.max_length = 0", "≥ 1"]),
            (
                "train.nan_max_in_a_row=0",
                &["train.nan_max_in_a_row = 0", "≥ 1"],
            ),
        ],
    );
}

// Rows 1 and 2 for GRPO: sampling settings.
#[test]
fn grpo_bad_sampling_settings_are_refused() {
    if !smol_present() {
        return;
    }
    let d = workspace();
    grpo_refuses(
        d.path(),
        &[
            ("grpo.temperature=0", &["grpo.temperature = 0", "> 0"]),
            ("grpo.temperature=-1", &["grpo.temperature = -1", "> 0"]),
            ("grpo.temperature=nan", &["grpo.temperature = NaN", "> 0"]),
            ("grpo.top_p=0", &["grpo.top_p = 0", "(0, 1]"]),
            ("grpo.top_p=1.5", &["grpo.top_p = 1.5", "(0, 1]"]),
            ("grpo.top_k=0", &["grpo.top_k = 0", "≥ 1"]),
            (
                "grpo.sampling_weights=int4",
                &["grpo.sampling_weights = int4", "f32, bf16, int8"],
            ),
            (
                "grpo.sampling_weights=int8",
                &[
                    "grpo.sampling_weights = int8",
                    "old_logprobs = \"recompute\"",
                ],
            ),
            (
                "model.matmul=fp8",
                &["model.matmul = fp8", "f32, bf16 or auto"],
            ),
            (
                "model.matmul=int8",
                &["model.matmul = int8", "sampling weights only"],
            ),
        ],
    );
}

// Row 2: lengths, steps and loss/optimizer settings.
#[test]
fn grpo_bad_lengths_steps_and_loss_settings_are_refused() {
    if !smol_present() {
        return;
    }
    let d = workspace();
    grpo_refuses(
        d.path(),
        &[
            (
                "grpo.max_completion_length=0",
                &["grpo.max_completion_length = 0", "≥ 1"],
            ),
            ("grpo.steps=0", &["grpo.steps = 0", "≥ 1"]),
            (
                "grpo.optimizer.lr=-0.001",
                &["grpo.optimizer.lr = -0.001", "> 0"],
            ),
            ("grpo.optimizer.lr=nan", &["grpo.optimizer.lr = NaN", "> 0"]),
            (
                "grpo.max_grad_norm=inf",
                &["grpo.max_grad_norm = inf", "> 0"],
            ),
            ("grpo.eps_low=-0.1", &["grpo.eps_low = -0.1", "[0, 1)"]),
            ("grpo.eps_high=-0.1", &["grpo.eps_high = -0.1", "≥ 0"]),
            ("grpo.beta=-1", &["grpo.beta = -1", "≥ 0"]),
            ("grpo.nan_patience=0", &["grpo.nan_patience = 0", "≥ 1"]),
        ],
    );
}

// Row 3: generate's sampling flags.
#[test]
fn generate_bad_sampling_flags_are_refused() {
    if !smol_present() {
        return;
    }
    let d = workspace();
    let cases: &[(&[&str], &[&str])] = &[
        (&["--temperature", "nan"], &["--temperature = NaN", "> 0"]),
        (&["--temperature", "0"], &["--temperature = 0", "> 0"]),
        (&["--top-p", "0"], &["--top-p = 0", "(0, 1]"]),
        (&["--top-p", "1.5"], &["--top-p = 1.5", "(0, 1]"]),
        (&["--top-k", "0"], &["--top-k = 0", "≥ 1"]),
        (&["--max-new-tokens", "0"], &["--max-new-tokens = 0", "≥ 1"]),
        (
            &["--sampling-weights", "int4"],
            &["--sampling-weights = int4", "f32, bf16, int8"],
        ),
    ];
    for (flags, want) in cases {
        let mut a = vec!["--prompt", "Hello there."];
        a.extend_from_slice(flags);
        let o = generate(d.path(), &a, &[]);
        has_all(&refused(&o, 1), want);
        assert!(o.stdout.is_empty(), "{flags:?}: printed output");
    }
    // Greedy decoding does not use the temperature: 0 is fine there.
    let o = generate(
        d.path(),
        &["--prompt", "Hi.", "--greedy", "--temperature", "0"],
        &[],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

// Row 4: CUDA asked for where none is visible (STYLERL_HIDE_CUDA makes this hold on a GPU
// machine too): exit 2, one line, for every command that takes a device.
#[test]
fn cuda_without_a_device_exits_2_for_every_command() {
    if !smol_present() {
        return;
    }
    let d = workspace();
    let p = d.path();
    let hide = [("STYLERL_HIDE_CUDA", "1")];
    let sft_cfg = config(p, "s", "max_steps = 1");
    let grpo_cfg = grpo_config(p, "g");
    std::fs::write(p.join("in.txt"), "One sentence.\n").unwrap();
    let tiny = p.join("tiny").display().to_string();
    let merged = p.join("merged").display().to_string();
    let runs: Vec<(&str, Output)> = vec![
        (
            "generate",
            generate(p, &["--prompt", "Hi.", "--device", "cuda"], &hide),
        ),
        ("sft", sft(&sft_cfg, &["--set", "model.device=cuda"], &hide)),
        (
            "grpo",
            grpo(&grpo_cfg, &sets(&["model.device=cuda:1"]), &hide),
        ),
        (
            "grpo reward",
            grpo(&grpo_cfg, &sets(&["reward.encoder_device=cuda"]), &hide),
        ),
        ("reward", {
            let mut c = bin();
            c.args(["reward", "--config"]).arg(&grpo_cfg);
            c.args([
                "--input",
                "A b.",
                "--output",
                "A c.",
                "--set",
                "reward.encoder_device=cuda",
            ]);
            c.envs(hide).output().unwrap()
        }),
        ("embed", {
            let mut c = bin();
            c.args([
                "embed",
                "--encoder",
                "stylometric",
                "--device",
                "cuda",
                "--input",
            ]);
            c.arg(p.join("in.txt")).envs(hide).output().unwrap()
        }),
        ("merge", {
            let mut c = bin();
            c.args([
                "merge",
                "--model",
                &tiny,
                "--adapter",
                "nowhere",
                "--out",
                &merged,
            ]);
            c.args(["--device", "cuda"]).envs(hide).output().unwrap()
        }),
    ];
    for (what, o) in &runs {
        let line = refused(o, 2);
        has_all(
            &line,
            &[
                "no CUDA device is visible",
                "stylerl info",
                "--device cpu or auto",
            ],
        );
        assert!(o.stdout.is_empty(), "{what}: printed output");
    }
    for out in ["s", "g", "merged"] {
        assert!(!p.join(out).exists(), "{out} written");
    }
}

/// An SFT run of `steps` steps in `d/name` with a checkpoint each step.
fn sft_run(d: &Path, name: &str, steps: u64) -> PathBuf {
    let cfg = config(d, name, &format!("max_steps = {steps}"));
    let o = sft(&cfg, &[], &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    cfg
}

/// Bytes of every file under `dir` (to show a refused command changed nothing).
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).unwrap() {
            let e = e.unwrap().path();
            if e.is_dir() {
                stack.push(e);
            } else {
                out.push((e.clone(), std::fs::read(&e).unwrap()));
            }
        }
    }
    out.sort();
    out
}

// Row 5: resume checks what it resumes.
#[test]
fn resume_with_changed_settings_is_refused_naming_the_keys() {
    if !smol_present() {
        return;
    }
    let d = workspace();
    let cfg = sft_run(d.path(), "run", 2);
    let before = snapshot(&d.path().join("run"));

    let line = refused(
        &sft(
            &cfg,
            &[
                "--resume",
                "--set",
                "lora.alpha=32",
                "--set",
                "lora.dropout=0.2",
            ],
            &[],
        ),
        1,
    );
    has_all(
        &line,
        &[
            "lora.alpha 8.0 → 32.0",
            "lora.dropout 0.1 → 0.2",
            "start fresh",
        ],
    );
    let line = refused(
        &sft(&cfg, &["--resume", "--set", "train.max_steps=1"], &[]),
        1,
    );
    has_all(&line, &["train.max_steps = 1", "below the 2 steps"]);
    // More steps change the schedule: refused, unless the user says so.
    let line = refused(
        &sft(&cfg, &["--resume", "--set", "train.max_steps=3"], &[]),
        1,
    );
    has_all(&line, &["train.max_steps 2 → 3", "--resume-anyway"]);
    let line = refused(
        &sft(&cfg, &["--resume-anyway", "--set", "lora.alpha=32"], &[]),
        1,
    );
    has_all(&line, &["lora.alpha 8.0 → 32.0"]);
    // SFT checkpoints are not GRPO's.
    let g = grpo_config(d.path(), "run");
    let line = refused(&grpo(&g, &["--resume".to_string()], &[]), 1);
    has_all(&line, &["checkpoint of a sft run, this is grpo"]);
    assert_eq!(
        snapshot(&d.path().join("run")),
        before,
        "a refused resume changed the run"
    );

    let o = sft(
        &cfg,
        &["--resume-anyway", "--set", "train.max_steps=3"],
        &[],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(d.path().join("run/checkpoints/step-3").is_dir());
}

// Row 6: a prompt longer than the model's context (the tiny model's is 512).
#[test]
fn prompts_longer_than_the_context_are_refused() {
    if !smol_present() {
        return;
    }
    let d = workspace();
    let long = "word ".repeat(700);
    let o = generate(d.path(), &["--prompt", &long], &[]);
    has_all(
        &refused(&o, 1),
        &["prompt 1:", "more than the model's context of 512"],
    );
    assert!(o.stdout.is_empty());

    let rows = [
        serde_json::json!({"input": "Hi there.", "output": "Hello there."}),
        serde_json::json!({"input": long, "output": "Short."}),
    ];
    let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(d.path().join("train.jsonl"), text).unwrap();
    let cfg = config(d.path(), "run", "max_steps = 1");
    let line = refused(&sft(&cfg, &["--set", "data.max_length=2000"], &[]), 1);
    has_all(
        &line,
        &[
            "train.jsonl row 2",
            "context of 512",
            "data.max_length ≤ 512",
        ],
    );
    assert!(!d.path().join("run").exists());
}

// Item 3: a run whose every update was skipped writes no adapter.
#[test]
fn all_updates_skipped_writes_no_adapter() {
    if !smol_present() {
        return;
    }
    let d = workspace();
    let cfg = config(d.path(), "run", "max_steps = 2\nnan_max_in_a_row = 5");
    let o = sft(&cfg, &[], &[("STYLERL_FAULT_NAN_AT_STEPS", "1,2")]);
    let line = refused(&o, 1);
    has_all(
        &line,
        &["all 2 update(s) were skipped", "train.nan_max_in_a_row"],
    );
    assert!(!String::from_utf8_lossy(&o.stdout).contains("adapter:"));
    assert!(!d.path().join("run/adapter").exists());
}

// Item 3: a NaN adapter is never written; the last good checkpoint stays.
#[test]
fn nan_adapter_is_not_written_and_the_last_good_checkpoint_is_kept() {
    if !smol_present() {
        return;
    }
    let d = workspace();
    let cfg = config(d.path(), "run", "max_steps = 3");
    let o = sft(&cfg, &[], &[("STYLERL_FAULT_NAN_ADAPTER_AT_STEP", "2")]);
    let line = refused(&o, 1);
    has_all(
        &line,
        &[
            "step 2: the adapter holds NaN",
            "last good checkpoint is kept",
            "step-1",
        ],
    );
    assert!(!String::from_utf8_lossy(&o.stdout).contains("adapter:"));
    let ck = d.path().join("run/checkpoints");
    assert!(ck.join("step-1").is_dir() && !ck.join("step-2").exists());
    assert!(!d.path().join("run/adapter").exists());
}

/// Replaces one tensor of an adapter file with NaN.
fn poison_adapter(dir: &Path) {
    let w = dir.join("adapter_model.safetensors");
    let mut t = tensors(&w);
    let _ = t[0].1.fill_(f64::NAN);
    tch::Tensor::write_safetensors(&t, &w).unwrap();
}

// Item 3: loading a non-finite adapter refuses (generate, merge).
#[test]
fn nan_adapter_is_refused_by_generate_and_merge() {
    if !smol_present() {
        return;
    }
    let d = workspace();
    sft_run(d.path(), "run", 1);
    let ad = d.path().join("run/adapter");
    poison_adapter(&ad);
    let a = ad.display().to_string();
    let o = generate(d.path(), &["--prompt", "Hi.", "--adapter", &a], &[]);
    has_all(
        &refused(&o, 1),
        &["adapter_model.safetensors", "NaN or infinite"],
    );
    assert!(o.stdout.is_empty());
    let out = d.path().join("merged");
    let o = bin()
        .arg("merge")
        .arg("--model")
        .arg(d.path().join("tiny"))
        .args(["--adapter", &a, "--out"])
        .arg(&out)
        .output()
        .unwrap();
    has_all(&refused(&o, 1), &["NaN or infinite"]);
    assert!(!out.exists());
}

// Row 9: a config with fewer layers than the weights hold.
#[test]
fn fewer_config_layers_than_weights_are_refused() {
    if !smol_present() {
        return;
    }
    let d = workspace();
    let c = d.path().join("tiny/config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&c).unwrap()).unwrap();
    v["num_hidden_layers"] = 1.into();
    std::fs::write(&c, v.to_string()).unwrap();
    let o = generate(d.path(), &["--prompt", "Hi."], &[]);
    has_all(&refused(&o, 1), &["num_hidden_layers = 1", "hold 2 layers"]);
    assert!(o.stdout.is_empty());
}

// Row 9: an adapter whose target_modules names none of its modules.
#[test]
fn adapter_targets_matching_no_tensor_are_refused() {
    if !smol_present() {
        return;
    }
    let d = workspace();
    sft_run(d.path(), "run", 1);
    let ad = d.path().join("run/adapter");
    let c = ad.join("adapter_config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&c).unwrap()).unwrap();
    v["target_modules"] = serde_json::json!(["gate"]);
    std::fs::write(&c, v.to_string()).unwrap();
    let o = generate(
        d.path(),
        &["--prompt", "Hi.", "--adapter", &ad.display().to_string()],
        &[],
    );
    has_all(
        &refused(&o, 1),
        &[
            "target_modules [\"gate\"] matches none",
            "adapter_config.json",
        ],
    );
    assert!(o.stdout.is_empty());
}

// Row 12: the NaN guard's stop message names the key of the command that ran.
#[test]
fn nan_guard_names_each_commands_key() {
    if !smol_present() {
        return;
    }
    let d = workspace();
    let cfg = config(d.path(), "s", "max_steps = 4\nnan_max_in_a_row = 2");
    let line = refused(&sft(&cfg, &[], &[("STYLERL_FAULT_NAN_AT_STEPS", "1,2")]), 1);
    assert!(line.ends_with("raise train.nan_max_in_a_row"), "{line}");
    let g = grpo_config(d.path(), "g");
    let o = grpo(
        &g,
        &sets(&["grpo.nan_patience=2", "grpo.ppo_epochs=2"]),
        &[("STYLERL_FAULT_NAN_AT_STEPS", "1")],
    );
    let line = refused(&o, 1);
    assert!(line.ends_with("raise grpo.nan_patience"), "{line}");
    assert!(!d.path().join("g/adapter").exists());
}

/// An evaluate config over the tiny model (2 inputs, 1 prompted + 1 model system) with
/// `judge` as its [judge] table; results go to `d/results`.
fn eval_config(d: &Path, judge: &str) -> PathBuf {
    let r = common::root();
    let held = "{\"text\": \"Hi Sam, the meeting moved to Friday.\"}\n{\"text\": \"Lost keys near the bakery.\"}\n";
    std::fs::write(d.join("held.jsonl"), held).unwrap();
    let p = d.join("eval.toml");
    let text = format!(
        r#"name = "bad"
out_dir = "{out}"
[data]
heldout = "{held}"
[reward]
reference = ["{refr}"]
encoder = "stylometric"
[generation]
max_new_tokens = 3
[judge]
{judge}
[[systems]]
name = "prompted"
kind = "prompted"
examples = 2
[systems.model]
path = "{tiny}"
[[systems]]
name = "trained"
kind = "model"
[systems.model]
path = "{tiny}"
"#,
        out = d.join("results").display(),
        held = d.join("held.jsonl").display(),
        refr = r.join("datasets/reference/whimsical_tale.txt").display(),
        tiny = d.join("tiny").display(),
    );
    std::fs::write(&p, text).unwrap();
    p
}

fn evaluate(cfg: &Path, set: &[&str]) -> Output {
    bin()
        .arg("evaluate")
        .arg("--config")
        .arg(cfg)
        .args(sets(set))
        .output()
        .unwrap()
}

// Row 8: the judge URL and timeout are checked before any generation.
#[test]
fn bad_judge_url_or_timeout_is_refused_before_generation() {
    if !smol_present() {
        return;
    }
    let d = workspace();
    let cfg = eval_config(
        d.path(),
        "url = \"http://127.0.0.1:9/v1\"\nbaseline = \"prompted\"",
    );
    let cases: &[(&str, &[&str])] = &[
        (
            "judge.url=notaurl",
            &["judge.url = 'notaurl'", "no scheme", "http(s)://HOST"],
        ),
        (
            "judge.url=ftp://h/v1",
            &["judge.url = 'ftp://h/v1'", "not http or https"],
        ),
        (
            "judge.url=http://:80/v1",
            &["judge.url = 'http://:80/v1'", "no host"],
        ),
        ("judge.timeout_s=0", &["judge.timeout_s = 0", "≥ 1"]),
    ];
    for (set, want) in cases {
        let o = evaluate(&cfg, &[set]);
        has_all(&refused(&o, 1), want);
        assert!(!d.path().join("results").exists(), "{set}: results written");
    }
}

// Row 8: a judge that cannot be reached fails evaluate unless judge.required = false.
#[test]
fn unreachable_judge_fails_evaluate_unless_not_required() {
    if !smol_present() {
        return;
    }
    let d = workspace();
    // A loopback port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let judge = format!("url = \"http://127.0.0.1:{port}/v1\"\nbaseline = \"prompted\"\ntimeout_s = 5\napi_key_env = \"STYLERL_TEST_NO_KEY\"");
    let cfg = eval_config(d.path(), &judge);
    let line = refused(&evaluate(&cfg, &[]), 1);
    has_all(
        &line,
        &[
            "judge failed for system 'trained'",
            "judge.required = false",
        ],
    );
    // The costly part is kept: the table shows the failure in the judge column.
    let table = std::fs::read_to_string(d.path().join("results/table.md")).unwrap();
    assert!(table.contains("error"), "{table}");
    let o = evaluate(&cfg, &["judge.required=false"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// The id of a process that has exited (its temp files are debris).
fn dead_pid() -> u32 {
    let mut c = std::process::Command::new("true").spawn().unwrap();
    let id = c.id();
    c.wait().unwrap();
    id
}

// Row 7: import-gguf removes a dead import's temp file and refuses a non-empty --out.
#[test]
fn import_gguf_cleans_stale_temps_and_refuses_a_non_empty_out() {
    let d = tempfile::tempdir().unwrap();
    let (gguf, out) = (d.path().join("bad.gguf"), d.path().join("hf"));
    std::fs::write(&gguf, b"not a gguf").unwrap();
    std::fs::create_dir_all(&out).unwrap();
    let stale = out.join(format!(".model.safetensors.tmp{}", dead_pid()));
    std::fs::write(&stale, b"half a model").unwrap();
    let import = |extra: &[&str]| {
        bin()
            .arg("import-gguf")
            .arg(&gguf)
            .arg("--out")
            .arg(&out)
            .args(extra)
            .output()
            .unwrap()
    };
    // The temp file alone does not make --out "non-empty": it is removed, then the GGUF is read.
    let line = refused(&import(&[]), 1);
    assert!(!stale.exists(), "stale temp file kept");
    assert!(
        line.contains("bad.gguf") && !line.contains("not empty"),
        "{line}"
    );
    std::fs::write(out.join("config.json"), "{}").unwrap();
    let line = refused(&import(&[]), 1);
    has_all(&line, &["--out", "is not empty", "--force"]);
    assert_eq!(
        std::fs::read_to_string(out.join("config.json")).unwrap(),
        "{}"
    );
    // With --force the directory is accepted (this file then fails as a GGUF).
    let line = refused(&import(&["--force"]), 1);
    assert!(!line.contains("not empty"), "{line}");
}

// Row 12: GRPO's NaN streak continues across a resume (as SFT's does).
#[test]
fn grpo_resume_continues_the_nan_streak() {
    if !smol_present() {
        return;
    }
    let d = workspace();
    let g = grpo_config(d.path(), "g");
    let set = |steps: &str| sets(&["grpo.nan_patience=2", &format!("grpo.steps={steps}")]);
    // Step 1's only update is skipped: the run says so, and its checkpoint holds streak 1.
    let line = refused(
        &grpo(&g, &set("1"), &[("STYLERL_FAULT_NAN_AT_STEPS", "1")]),
        1,
    );
    has_all(
        &line,
        &["all 1 update(s) were skipped", "grpo.nan_patience"],
    );
    assert!(d.path().join("g/checkpoints/step-1").is_dir());
    // One more skipped update after the resume makes 2 in a row: the guard stops the run.
    let mut a = set("2");
    a.push("--resume-anyway".into());
    let line = refused(&grpo(&g, &a, &[("STYLERL_FAULT_NAN_AT_STEPS", "2")]), 1);
    has_all(&line, &["2 steps in a row", "raise grpo.nan_patience"]);
}
