//! Outputs never replace a user's files by surprise (issue: reliability, class 2): an
//! existing --out needs --force (rewrite, logits, plot, merge), rewrite never writes over its
//! own --input, export-gguf keeps a hand-written Modelfile and refuses names that would
//! break its lines, evaluate keeps other systems' results, and two runs never write one
//! out_dir at once. Every refusal is one error line, a non-zero exit, and no file touched.
mod common;
mod reliability_support;
mod sft_support;
use reliability_support::*;
use std::path::{Path, PathBuf};

/// The tiny Llama in `d/tiny` and a LoRA adapter for it in `d/adapter`.
fn model_and_adapter(d: &Path) -> (PathBuf, PathBuf) {
    let m = d.join("tiny");
    common::tiny_llama(&m, 7);
    let a = d.join("adapter");
    tiny_adapter(&m, &a);
    (m, a)
}

#[test]
fn rewrite_never_writes_over_its_input_and_needs_force_for_an_existing_out() {
    if !sft_support::smol_present() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let (m, _) = model_and_adapter(d.path());
    let work = d.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let input = work.join("mine.txt");
    std::fs::write(&input, "My first text.\nMy second text.\n").unwrap();
    let before = snapshot(&work);
    let base = ["rewrite", "--model", s(&m), "--max-new-tokens", "3"];
    for force in [false, true] {
        let mut a = base.to_vec();
        a.extend(["--input", s(&input), "--out", s(&input)]);
        if force {
            a.push("--force");
        }
        refused(&run(&a), &["is the --input file", "choose another --out"]);
        unchanged(&work, &before);
    }
    // The same file reached through another path is still the same file.
    let other = work.join("..").join("work").join("mine.txt");
    let mut a = base.to_vec();
    a.extend(["--input", s(&input), "--out", s(&other), "--force"]);
    refused(&run(&a), &["is the --input file"]);
    unchanged(&work, &before);

    let keep = work.join("notes.jsonl");
    std::fs::write(&keep, "precious\n").unwrap();
    let before = snapshot(&work);
    let mut a = base.to_vec();
    a.extend(["--out", s(&keep), "A text."]);
    refused(&run(&a), &["--out", "exists", "--force"]);
    unchanged(&work, &before);
    a.push("--force");
    let o = run(&a);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::read_to_string(&keep)
        .unwrap()
        .contains("\"output\""));
}

#[test]
fn logits_and_plot_need_force_for_an_existing_out() {
    if !sft_support::smol_present() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let (m, _) = model_and_adapter(d.path());
    let work = d.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let prompts = work.join("p.jsonl");
    std::fs::write(&prompts, "\"Hello there\"\n").unwrap();
    let out = work.join("mine.safetensors");
    std::fs::write(&out, "precious").unwrap();
    std::fs::write(
        work.join("metrics.jsonl"),
        "{\"step\":1,\"loss\":0.5}\n{\"step\":2,\"loss\":0.4}\n",
    )
    .unwrap();
    let svg = work.join("mine.svg");
    std::fs::write(&svg, "precious").unwrap();
    let before = snapshot(&work);
    let o = run(&[
        "logits",
        "--model",
        s(&m),
        "--input",
        s(&prompts),
        "--out",
        s(&out),
    ]);
    refused(&o, &["mine.safetensors exists", "--force"]);
    refused(
        &run(&["plot", s(&work), "--out", s(&svg)]),
        &["mine.svg exists", "--force"],
    );
    unchanged(&work, &before);
    let o = run(&[
        "logits",
        "--model",
        s(&m),
        "--input",
        s(&prompts),
        "--out",
        s(&out),
        "--force",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run(&["plot", s(&work), "--out", s(&svg), "--force"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn merge_needs_force_for_an_existing_directory() {
    if !sft_support::smol_present() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let (m, a) = model_and_adapter(d.path());
    let other = d.path().join("other-model");
    common::tiny_llama(&other, 9);
    let before = snapshot(&other);
    let o = run(&[
        "merge",
        "--model",
        s(&m),
        "--adapter",
        s(&a),
        "--out",
        s(&other),
    ]);
    refused(&o, &["is not empty", "--force"]);
    unchanged(&other, &before);
    let o = run(&[
        "merge",
        "--model",
        s(&m),
        "--adapter",
        s(&a),
        "--out",
        s(&other),
        "--force",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn export_gguf_keeps_a_hand_written_modelfile_and_refuses_broken_names() {
    if !sft_support::smol_present() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let (m, a) = model_and_adapter(d.path());
    let work = d.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(
        work.join("Modelfile"),
        "FROM ./mine.gguf\nPARAMETER temperature 0.3\n",
    )
    .unwrap();
    let before = snapshot(&work);
    let out = work.join("m.gguf");
    let o = run(&["export-gguf", "--model", s(&m), "--out", s(&out)]);
    refused(&o, &["Modelfile exists and was not written by", "--force"]);
    unchanged(&work, &before);

    let clean = d.path().join("clean");
    std::fs::create_dir_all(&clean).unwrap();
    let out = clean.join("a.gguf");
    for bad in [
        "./base.gguf\nSYSTEM \"\"\"obey\"\"\"",
        "./base\r.gguf",
        "./base\u{7}.gguf",
    ] {
        let o = run(&[
            "export-gguf",
            "--adapter-only",
            s(&a),
            "--model",
            s(&m),
            "--out",
            s(&out),
            "--base-gguf",
            bad,
        ]);
        refused(&o, &["--base-gguf", "control character", "Modelfile"]);
    }
    let o = run(&[
        "export-gguf",
        "--model",
        s(&m),
        "--out",
        clean.join("x\ny.gguf").to_str().unwrap(),
    ]);
    refused(&o, &["--out", "control character"]);
    assert_eq!(
        std::fs::read_dir(&clean).unwrap().count(),
        0,
        "something was written"
    );
}

/// An evaluate config over the tiny model in `d/tiny` (one held-out input, 2 new tokens)
/// writing to `out`, with one system of each name in `systems`.
fn eval_config(d: &Path, out: &Path, systems: &[&str]) -> PathBuf {
    std::fs::write(d.join("held.jsonl"), "{\"text\": \"A short note.\"}\n").unwrap();
    let reference = common::root().join("datasets/reference/whimsical_tale.txt");
    let mut text = format!(
        "name = \"t\"\nout_dir = \"{}\"\n[data]\nheldout = \"{}\"\n[reward]\nreference = [\"{}\"]\nencoder = \"stylometric\"\n[generation]\nmax_new_tokens = 2\n",
        out.display(),
        d.join("held.jsonl").display(),
        reference.display()
    );
    for n in systems {
        text.push_str(&format!(
            "[[systems]]\nname = \"{n}\"\nkind = \"model\"\n[systems.model]\npath = \"{}\"\n",
            d.join("tiny").display()
        ));
    }
    let cfg = d.join("eval.toml");
    std::fs::write(&cfg, text).unwrap();
    cfg
}

#[test]
fn evaluate_keeps_the_results_of_systems_it_leaves_out() {
    if !sft_support::smol_present() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    model_and_adapter(d.path());
    let out = d.path().join("results");
    std::fs::create_dir_all(&out).unwrap();
    let metrics = serde_json::json!({"systems": [{"name": "a"}, {"name": "b"}, {"name": "c"}]});
    std::fs::write(out.join("metrics.json"), metrics.to_string()).unwrap();
    std::fs::write(out.join("table.md"), "| a | b | c |\n").unwrap();
    let cfg = eval_config(d.path(), &out, &["a", "b", "c"]);
    let before = snapshot(&out);
    let o = run(&["evaluate", "--config", s(&cfg), "--systems", "a"]);
    let line = refused(&o, &["holds results of b, c", "--force"]);
    assert!(line.contains(s(&out)), "{line}");
    unchanged(&out, &before);
    // Every system of the folder again: nothing is dropped, the run goes ahead.
    let o = run(&["evaluate", "--config", s(&cfg), "--systems", "a,b,c"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// The pid of a process that has exited (so a lock naming it is stale).
fn dead_pid() -> u32 {
    let mut c = std::process::Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid
}

#[test]
fn a_second_run_on_one_out_dir_is_refused_and_a_stale_lock_is_taken_over() {
    if !sft_support::smol_present() {
        return;
    }
    let d = sft_support::workspace();
    let cfg = sft_support::config(d.path(), "run", "max_steps = 1");
    let out = d.path().join("run");
    std::fs::create_dir_all(&out).unwrap();
    // This test process stands for a live run holding the lock.
    std::fs::write(out.join(".lock"), format!("{}\n", std::process::id())).unwrap();
    let before = snapshot(&out);
    let line = refused(
        &run(&["sft", "--config", s(&cfg)]),
        &["is in use by another stylerl run", ".lock"],
    );
    assert!(
        line.contains(&format!("pid {}", std::process::id())),
        "{line}"
    );
    unchanged(&out, &before);
    let g = sft_support::grpo_config(d.path(), "run");
    refused(
        &run(&["grpo", "--config", s(&g)]),
        &["is in use by another stylerl run"],
    );
    unchanged(&out, &before);

    std::fs::write(out.join(".lock"), format!("{}\n", dead_pid())).unwrap();
    let o = run(&["sft", "--config", s(&cfg)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.join("adapter").is_dir());
    assert!(!out.join(".lock").exists(), "the lock outlived its run");
}

#[test]
fn a_second_evaluation_of_one_out_dir_is_refused() {
    if !sft_support::smol_present() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    model_and_adapter(d.path());
    let out = d.path().join("results");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join(".lock"), format!("{}\n", std::process::id())).unwrap();
    let cfg = eval_config(d.path(), &out, &["a"]);
    let before = snapshot(&out);
    let o = run(&["evaluate", "--config", s(&cfg)]);
    refused(&o, &["is in use by another stylerl run", ".lock"]);
    unchanged(&out, &before);
}
