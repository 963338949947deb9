//! Runs that used to end with exit 0 and a wrong result (issue: reliability, class 4) now
//! stop with one error line: merged weights that overflow, a model whose weights hold NaN,
//! a resume on other base weights, a `--set` value with a newline, and training runs that
//! could not learn (one completion per group, no data, warm-up as long as the run).
mod common;
mod reliability_support;
mod sft_support;
use reliability_support::*;
use std::path::Path;

#[test]
fn merge_refuses_to_write_non_finite_weights() {
    if !sft_support::smol_present() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let m = d.path().join("tiny");
    common::tiny_llama(&m, 7);
    let a = d.path().join("adapter");
    tiny_adapter(&m, &a);
    let out = d.path().join("merged");
    let spec = format!("{}:1e300", s(&a));
    let o = run(&[
        "merge",
        "--model",
        s(&m),
        "--adapter",
        &spec,
        "--out",
        s(&out),
    ]);
    refused(&o, &["NaN or infinite weights", "--adapter PATH:WEIGHT"]);
    assert!(!out.exists(), "merged weights written");
    // Finite in f32, past f16's ±65504.
    let spec = format!("{}:1e8", s(&a));
    let o = run(&[
        "merge",
        "--model",
        s(&m),
        "--adapter",
        &spec,
        "--out",
        s(&out),
        "--dtype",
        "f16",
    ]);
    refused(&o, &["--dtype f16", "65504"]);
    assert!(!out.exists(), "merged weights written");
    let o = run(&[
        "merge",
        "--model",
        s(&m),
        "--adapter",
        &spec,
        "--out",
        s(&out),
        "--dtype",
        "f32",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Sets one value of `name` in `dir/model.safetensors` to NaN.
fn poison(dir: &Path, name: &str) {
    let f = dir.join("model.safetensors");
    let mut t = tch::Tensor::read_safetensors(&f).unwrap();
    for (n, x) in t.iter_mut() {
        if n == name {
            let _ = x.get(0).fill_(f64::NAN);
        }
    }
    tch::Tensor::write_safetensors(&t, &f).unwrap();
}

#[test]
fn a_model_with_nan_weights_is_refused_by_every_command() {
    if !sft_support::smol_present() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let m = d.path().join("nan");
    common::tiny_llama(&m, 7);
    poison(&m, "model.norm.weight");
    let want = ["model.norm.weight", "NaN or infinite"];
    let o = run(&[
        "generate",
        "--model",
        s(&m),
        "--prompt",
        "Hi",
        "--max-new-tokens",
        "3",
    ]);
    refused(&o, &want);
    assert!(o.stdout.is_empty());
    let p = d.path().join("p.jsonl");
    std::fs::write(&p, "\"Hello there\"\n").unwrap();
    let out = d.path().join("l.safetensors");
    refused(
        &run(&[
            "logits",
            "--model",
            s(&m),
            "--input",
            s(&p),
            "--out",
            s(&out),
        ]),
        &want,
    );
    assert!(!out.exists());
    let o = run(&[
        "rewrite",
        "--model",
        s(&m),
        "--max-new-tokens",
        "3",
        "Hello.",
    ]);
    refused(&o, &want);
    assert!(o.stdout.is_empty());
}

#[test]
fn a_resume_on_other_base_weights_is_refused() {
    if !sft_support::smol_present() {
        return;
    }
    let d = sft_support::workspace();
    let cfg = sft_support::config(d.path(), "run", "max_steps = 1");
    let o = run(&["sft", "--config", s(&cfg)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The same weights copied elsewhere and back resume (only their bytes count).
    let more = ["--resume-anyway", "--set", "train.max_steps=2"];
    let mut a = vec!["sft", "--config", s(&cfg)];
    a.extend(more);
    let o = run(&a);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Other weights of the same shapes at the same path.
    common::tiny_llama(&d.path().join("tiny"), 8);
    let out = d.path().join("run");
    let before = snapshot(&out);
    let mut a = vec!["sft", "--config", s(&cfg)];
    a.extend(["--resume-anyway", "--set", "train.max_steps=3"]);
    refused(&run(&a), &["--resume", "model.weights", "different run"]);
    unchanged(&out, &before);
}

#[test]
fn set_values_with_a_newline_are_refused() {
    if !sft_support::smol_present() {
        return;
    }
    let d = sft_support::workspace();
    let cfg = sft_support::config(d.path(), "run", "max_steps = 1");
    for v in [
        "data.instruction=Rewrite.\nSay it plainly.",
        "train.seed=3\ntrain.max_steps = 9",
    ] {
        let o = run(&["sft", "--config", s(&cfg), "--set", v]);
        refused(&o, &["--set", "control character '\\n'"]);
    }
    assert!(!d.path().join("run").exists(), "out_dir written");
}

#[test]
fn runs_that_cannot_learn_are_refused_before_training() {
    if !sft_support::smol_present() {
        return;
    }
    let d = sft_support::workspace();
    let g = sft_support::grpo_config(d.path(), "g");
    let cases: [(&str, &[&str]); 3] = [
        (
            "grpo.num_generations=1",
            &["grpo.num_generations = 1", "nothing is learned", "≥ 2"],
        ),
        ("data.limit=0", &["data.limit = 0", "leave it out"]),
        (
            "grpo.warmup_steps=1",
            &["grpo.warmup_steps = 1", "1 optimizer steps", "below 1"],
        ),
    ];
    for (set, want) in cases {
        refused(&run(&["grpo", "--config", s(&g), "--set", set]), want);
        assert!(!d.path().join("g").exists(), "{set}: out_dir written");
    }
    let cfg = sft_support::config(d.path(), "run", "max_steps = 3");
    let o = run(&["sft", "--config", s(&cfg), "--set", "train.warmup_steps=3"]);
    refused(
        &o,
        &["train.warmup_steps = 3", "3 optimizer steps", "below 3"],
    );
    assert!(!d.path().join("run").exists(), "out_dir written");
}
