//! Messages that sent users the wrong way (issue: reliability, class 5): the README's
//! `rewrite --run A --compare B C "text"` works, a `--resume` with a changed reward setting
//! names that setting (not the whole reward table), and a path the user may not read is
//! named as such instead of "missing".
mod common;
mod reliability_support;
mod sft_support;
use reliability_support::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// A finished 1-step SFT run at `d/sft`, and two copies of it at `d/b` and `d/c`.
fn three_runs(d: &Path) {
    let cfg = sft_support::config(d, "sft", "max_steps = 1");
    let o = run(&["sft", "--config", s(&cfg)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for copy in ["b", "c"] {
        let st = Command::new("cp")
            .arg("-r")
            .arg(d.join("sft"))
            .arg(d.join(copy))
            .status()
            .unwrap();
        assert!(st.success());
    }
}

#[test]
fn the_readme_compare_form_takes_the_text_after_the_runs() {
    if !sft_support::smol_present() {
        return;
    }
    let d = sft_support::workspace();
    three_runs(d.path());
    let (a, b, c) = (d.path().join("sft"), d.path().join("b"), d.path().join("c"));
    let text = "The old lighthouse keeper counted ships every evening.";
    let bc = format!("{},{}", s(&b), s(&c));
    for form in [vec![s(&b), s(&c), text], vec![bc.as_str(), text]] {
        let mut args = vec![
            "rewrite",
            "--max-new-tokens",
            "3",
            "--run",
            s(&a),
            "--compare",
        ];
        args.extend(form);
        let o = run(&args);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(out.starts_with(&format!("### input 1\n{text}\n")), "{out}");
        for name in ["--- sft", "--- b", "--- c"] {
            assert!(out.contains(name), "{name} missing:\n{out}");
        }
        assert_eq!(out.matches("### input").count(), 1, "{out}");
    }
}

#[test]
fn a_resume_with_a_changed_reward_setting_names_it() {
    if !sft_support::smol_present() {
        return;
    }
    let d = sft_support::workspace();
    let g = sft_support::grpo_config(d.path(), "g");
    let o = run(&["grpo", "--config", s(&g)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = d.path().join("g");
    let before = snapshot(&out);
    let o = run(&[
        "grpo",
        "--config",
        s(&g),
        "--resume",
        "--set",
        "reward.weights.length=0.7",
    ]);
    let line = refused(&o, &["--resume", "reward.weights.length", "→ 0.7"]);
    assert!(
        !line.contains("RewardConfig"),
        "the whole reward table: {line}"
    );
    assert!(line.len() < 400, "too long: {line}");
    unchanged(&out, &before);
}

/// Runs the binary as the unprivileged user `nobody` when the tests run as root (where
/// permissions are not enforced); None when that is not possible here.
fn as_nobody(args: &[&str]) -> Option<std::process::Output> {
    let root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    let bin = std::env::var("RELIABILITY_BIN").unwrap_or(env!("CARGO_BIN_EXE_stylerl").into());
    let mut c = if root {
        let ok = Command::new("setpriv").arg("--version").output().is_ok();
        if !ok {
            eprintln!("skipped: running as root without setpriv");
            return None;
        }
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", &bin]);
        c
    } else {
        Command::new(bin)
    };
    c.args(args)
        .current_dir("/")
        .env("STYLERL_PROGRESS", "0")
        .env_remove("STYLERL_THREADS");
    Some(run_for(c, 120))
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Opens `dir` and everything under it for reading by anyone.
fn open_up(dir: &Path) {
    let st = Command::new("chmod")
        .arg("-R")
        .arg("a+rX")
        .arg(dir)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn paths_that_cannot_be_read_are_named() {
    if !sft_support::smol_present() {
        return;
    }
    let d = sft_support::workspace();
    let cfg = sft_support::config(d.path(), "sft", "max_steps = 1");
    let o = run(&["sft", "--config", s(&cfg)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    open_up(d.path());
    let (m, r) = (d.path().join("tiny"), d.path().join("sft"));
    // A model directory that cannot be entered: not "no config.json".
    chmod(&m, 0o700);
    let Some(o) = as_nobody(&["generate", "--model", s(&m), "--prompt", "Hi"]) else {
        return;
    };
    refused(
        &o,
        &[
            "cannot read",
            &format!("{}/config.json", s(&m)),
            "ermission denied",
        ],
    );
    chmod(&m, 0o755);
    // A chat template that cannot be read: not "has no chat template".
    let tc = m.join("tokenizer_config.json");
    chmod(&tc, 0o600);
    let o = as_nobody(&[
        "generate",
        "--model",
        s(&m),
        "--chat",
        "--render-only",
        "--prompt",
        "Hi",
    ])
    .unwrap();
    refused(&o, &["cannot read", s(&tc)]);
    chmod(&tc, 0o644);
    // A run record that cannot be read: not "trained before runs recorded one".
    let rj = r.join("run.json");
    chmod(&rj, 0o600);
    let o = as_nobody(&["rewrite", "--run", s(&r), "--max-new-tokens", "2", "Hi."]).unwrap();
    refused(&o, &["cannot read", s(&rj)]);
    chmod(&rj, 0o644);
    // An adapter folder that cannot be entered: not "half-written".
    chmod(&r.join("adapter"), 0o700);
    let o = as_nobody(&["rewrite", "--run", s(&r), "--max-new-tokens", "2", "Hi."]).unwrap();
    refused(&o, &["cannot read", "adapter/adapter_model.safetensors"]);
    chmod(&r.join("adapter"), 0o755);
    // An output folder that cannot be written.
    let ro = d.path().join("ro");
    std::fs::create_dir_all(&ro).unwrap();
    chmod(&ro, 0o555);
    let out = ro.join("x.jsonl");
    let o = as_nobody(&[
        "rewrite",
        "--run",
        s(&r),
        "--max-new-tokens",
        "2",
        "--out",
        s(&out),
        "Hi.",
    ])
    .unwrap();
    refused(&o, &[s(&ro), "ermission denied"]);
}
