//! Sizes a user can type (issue: reliability, class 1): each is refused before any work
//! with one error line and a non-zero exit, never a panic, an abort or a hang, and nothing
//! is written.
mod common;
mod reliability_support;
mod sft_support;
use reliability_support::*;
use std::path::Path;

/// The tiny Llama (real weights on disk) in `d/tiny`.
fn tiny(d: &Path) -> std::path::PathBuf {
    let m = d.join("tiny");
    common::tiny_llama(&m, 7);
    m
}

#[test]
fn thread_counts_out_of_range_are_refused() {
    if !sft_support::smol_present() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let m = tiny(d.path());
    for n in ["0", "100000"] {
        let o = run(&[
            "generate",
            "--model",
            s(&m),
            "--prompt",
            "Hi",
            "--max-new-tokens",
            "2",
            "--threads",
            n,
        ]);
        refused(&o, &[&format!("--threads = {n}"), "must be in 1..="]);
        assert!(o.stdout.is_empty());
    }
    let mut c = stylerl();
    c.args([
        "generate",
        "--model",
        s(&m),
        "--prompt",
        "Hi",
        "--max-new-tokens",
        "2",
    ])
    .env("STYLERL_THREADS", "100000");
    refused(&run_for(c, 60), &["STYLERL_THREADS = 100000"]);
    let o = run(&[
        "generate",
        "--model",
        s(&m),
        "--prompt",
        "Hi",
        "--max-new-tokens",
        "2",
        "--threads",
        "1",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn samples_and_new_tokens_past_memory_or_context_are_refused() {
    if !sft_support::smol_present() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let m = tiny(d.path());
    let gen = |extra: &[&str]| {
        let mut a = vec!["generate", "--model", s(&m), "--prompt", "Hi"];
        a.extend_from_slice(extra);
        run(&a)
    };
    refused(
        &gen(&["--num-samples", "100000000", "--max-new-tokens", "2"]),
        &["--num-samples 100000000", "memory", "lower --num-samples"],
    );
    refused(
        &gen(&["--max-new-tokens", "100000000"]),
        &[
            "--max-new-tokens 100000000",
            "context of 512",
            "lower --max-new-tokens",
        ],
    );
    let rw = |extra: &[&str]| {
        let mut a = vec!["rewrite", "--model", s(&m)];
        a.extend_from_slice(extra);
        a.push("A short text.");
        run(&a)
    };
    refused(
        &rw(&["--n", "100000000", "--max-new-tokens", "2"]),
        &["--n 100000000", "memory"],
    );
    refused(
        &rw(&["--max-new-tokens", "100000000"]),
        &["--max-new-tokens 100000000", "context of 512"],
    );
}

#[test]
fn absurd_config_sizes_are_refused_with_random_init() {
    if !sft_support::smol_present() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let cases: [(&str, i64); 5] = [
        ("num_hidden_layers", -1),
        ("num_hidden_layers", 100_000_000),
        ("vocab_size", -5),
        ("vocab_size", 100_000_000_000),
        ("hidden_size", 100_000_000),
    ];
    for (k, v) in cases {
        let m = d.path().join(format!("{k}{v}"));
        config_only(&m, "llama", |c| c[k] = v.into());
        let o = run(&[
            "generate",
            "--model",
            s(&m),
            "--random-init",
            "--prompt",
            "Hi",
            "--max-new-tokens",
            "2",
        ]);
        refused(&o, &[&format!("{k} = {v}"), "config.json"]);
    }
    // Each size in range, but together more than any machine's memory.
    let m = d.path().join("wide");
    config_only(&m, "llama", |c| {
        c["num_hidden_layers"] = 4096.into();
        c["hidden_size"] = 65536.into();
        c["intermediate_size"] = 65536.into();
    });
    let o = run(&[
        "generate",
        "--model",
        s(&m),
        "--random-init",
        "--prompt",
        "Hi",
        "--max-new-tokens",
        "2",
    ]);
    refused(&o, &["random model", "memory", "config.json"]);
}

#[test]
fn token_ids_outside_the_vocabulary_are_refused() {
    if !sft_support::smol_present() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let m = tiny(d.path());
    for (name, line) in [("big", "[1, 99999999]"), ("negative", "[-5, 3]")] {
        let f = d.path().join(format!("{name}.jsonl"));
        std::fs::write(&f, format!("{line}\n")).unwrap();
        let id = if name == "big" { "99999999" } else { "-5" };
        let want = [format!("token id {id}"), "vocabulary".into()];
        let want: Vec<&str> = want.iter().map(String::as_str).collect();
        refused(
            &run(&[
                "generate",
                "--model",
                s(&m),
                "--input",
                s(&f),
                "--max-new-tokens",
                "2",
            ]),
            &want,
        );
        refused(
            &run(&["perplexity", "--model", s(&m), "--input", s(&f)]),
            &want,
        );
        let out = d.path().join("logits.safetensors");
        refused(
            &run(&[
                "logits",
                "--model",
                s(&m),
                "--input",
                s(&f),
                "--out",
                s(&out),
            ]),
            &want,
        );
        assert!(!out.exists(), "logits written");
    }
}

#[test]
fn gpt2_past_its_positions_is_refused() {
    if !sft_support::smol_present() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let m = d.path().join("gpt2");
    config_only(&m, "gpt2", |c| c["n_positions"] = 64.into());
    stylerl::model::Llama::random_init(&m, tch::Device::Cpu, tch::Kind::Float, 3)
        .unwrap()
        .save_safetensors(&m.join("model.safetensors"))
        .unwrap();
    let o = run(&[
        "generate",
        "--model",
        s(&m),
        "--prompt",
        "Hello there",
        "--max-new-tokens",
        "80",
        "--ignore-eos",
    ]);
    refused(&o, &["--max-new-tokens 80", "context of 64 (n_positions)"]);
    let f = d.path().join("long.txt");
    std::fs::write(&f, format!("{}\n", "word ".repeat(100))).unwrap();
    refused(
        &run(&["perplexity", "--model", s(&m), "--input", s(&f)]),
        &["context of 64"],
    );
    let o = run(&[
        "rewrite",
        "--model",
        s(&m),
        "--max-new-tokens",
        "60",
        "Hello.",
    ]);
    refused(&o, &["--max-new-tokens 60", "context of 64 (n_positions)"]);
}

#[test]
fn a_lora_rank_past_the_modules_is_refused_before_training() {
    if !sft_support::smol_present() {
        return;
    }
    let d = sft_support::workspace();
    let cfg = sft_support::config(d.path(), "run", "max_steps = 1");
    let before = snapshot(d.path());
    let o = run(&["sft", "--config", s(&cfg), "--set", "lora.r=100000000"]);
    refused(&o, &["lora.r = 100000000", "lora.r ≤ 64"]);
    unchanged(d.path(), &before);
}

#[test]
fn scoring_batches_past_memory_and_tiny_temperatures_are_refused() {
    if !sft_support::smol_present() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let m = tiny(d.path());
    // 5000 prompts of 500 ids: about 1 TB of logits at once, past any machine's memory.
    let line = format!("[{}]\n", vec!["1"; 500].join(","));
    let f = d.path().join("many.jsonl");
    std::fs::write(&f, line.repeat(5000)).unwrap();
    let o = run(&[
        "perplexity",
        "--model",
        s(&m),
        "--input",
        s(&f),
        "--batch-size",
        "100000",
    ]);
    refused(&o, &["--batch-size 100000", "memory", "lower --batch-size"]);
    let out = d.path().join("l.safetensors");
    let o = run(&[
        "logits",
        "--model",
        s(&m),
        "--input",
        s(&f),
        "--out",
        s(&out),
        "--batched",
    ]);
    refused(&o, &["logits of 5000 prompt(s)", "memory"]);
    assert!(!out.exists());
    let o = run(&[
        "generate",
        "--model",
        s(&m),
        "--prompt",
        "Hi",
        "--max-new-tokens",
        "2",
        "--temperature",
        "1e-300",
    ]);
    refused(&o, &["--temperature = 1e-300", "at least 1e-6"]);
    assert!(o.stdout.is_empty());
}
