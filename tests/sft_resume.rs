//! A run killed with SIGKILL after a checkpoint and resumed with `--resume` ends with the
//! same adapter and the same loss curve as an uninterrupted run of the same config.
//! Dropout, gradient accumulation and an epoch boundary all fall inside the resumed part.
mod common;
mod sft_support;
use sft_support::*;
use std::time::{Duration, Instant};

const FIELDS: [&str; 5] = ["step", "loss", "lr", "grad_norm", "eval_loss"];

#[test]
fn killed_and_resumed_run_equals_uninterrupted() {
    if !smol_present() {
        return;
    }
    let d = workspace();
    let steps = "max_steps = 16";
    let full = config(d.path(), "full", steps);
    let o = sft(&full, &[], &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // The same config, killed once checkpoint 5 is complete.
    let cut = config(d.path(), "cut", steps);
    let out = d.path().join("cut");
    let mut child = bin()
        .arg("sft")
        .arg("--config")
        .arg(&cut)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let marker = out.join("checkpoints/step-5/trainer_state.json");
    let t0 = Instant::now();
    while !marker.exists() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before checkpoint 5"
        );
        assert!(t0.elapsed() < Duration::from_secs(300), "no checkpoint 5");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL: no cleanup runs
    child.wait().unwrap();
    assert!(
        !out.join("adapter").exists(),
        "the killed run got to the end before the kill; nothing was resumed"
    );
    let killed_at = stylerl::train::checkpoint::read_state(
        &stylerl::train::checkpoint::latest(&out.join("checkpoints"))
            .unwrap()
            .unwrap(),
    )
    .unwrap()
    .step;
    // `latest` is replaced after the step-5 rename, so a kill in between resumes from 4.
    assert!((4..16).contains(&killed_at), "killed at {killed_at}");

    // Without --resume the existing checkpoints are refused.
    let o = sft(&cut, &[], &[]);
    assert!(one_error_line(&o).contains("--resume"));

    let o = sft(&cut, &["--resume"], &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains(&format!("(step {killed_at})")),
        "did not resume from {killed_at}: {err}"
    );

    let a = d.path().join("full/adapter/adapter_model.safetensors");
    let b = out.join("adapter/adapter_model.safetensors");
    let diff = max_diff(&a, &b);
    assert_eq!(diff, 0.0, "final adapters differ by {diff}");
    // A trained adapter, not a fresh one (B starts at zero).
    let moved = tensors(&a)
        .iter()
        .filter(|(n, _)| n.contains("lora_B"))
        .map(|(_, t)| t.abs().max().double_value(&[]))
        .fold(0.0, f64::max);
    assert!(moved > 0.0);

    let (ma, mb) = (metrics(&d.path().join("full")), metrics(&out));
    // step 0 (the eval loss before training) and steps 1..=16
    assert_eq!(ma.len(), 17);
    assert_eq!(mb.len(), 17, "resumed metrics: {mb:?}");
    for (x, y) in ma.iter().zip(&mb) {
        for f in FIELDS {
            assert_eq!(x.get(f), y.get(f), "{f} differs: {x} vs {y}");
        }
    }
    assert!(ma.iter().filter(|m| m.get("eval_loss").is_some()).count() == 5);
}

/// SIGINT / SIGTERM during `sft` and `grpo`: the run stops at the next step boundary, saves a
/// checkpoint there, prints one line "interrupted at step N …; resume with --resume", exits
/// 128 + signal, and `--resume` finishes the run from step N.
#[test]
fn interrupted_runs_stop_at_a_step_boundary_and_resume() {
    if !smol_present() {
        return;
    }
    let d = workspace();
    let cases = [
        (
            "sft",
            config(d.path(), "int-sft", "max_steps = 300"),
            libc_sig::SIGINT,
        ),
        ("grpo", grpo_config(d.path(), "int-grpo"), libc_sig::SIGTERM),
    ];
    for (cmd, cfg, sig) in cases {
        // Long enough that the signal lands mid-run.
        let text = std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("\nsteps = 1\n", "\nsteps = 40\n");
        std::fs::write(&cfg, &text).unwrap();
        let out_dir = text
            .lines()
            .find_map(|l| l.strip_prefix("out_dir = "))
            .map(|s| std::path::PathBuf::from(s.trim_matches('"')))
            .unwrap();
        let child = bin()
            .arg(cmd)
            .arg("--config")
            .arg(&cfg)
            .env("STYLERL_PROGRESS", "0")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Signal once the first step's metrics line is written (training is under way).
        let m = out_dir.join("metrics.jsonl");
        let t0 = Instant::now();
        while !std::fs::read_to_string(&m).is_ok_and(|t| t.lines().any(|l| l.contains("\"loss\"")))
        {
            assert!(
                t0.elapsed() < Duration::from_secs(300),
                "{cmd}: no step within 300 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let kill = std::process::Command::new("kill")
            .arg(format!("-{}", sig))
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(kill.success());
        let o = child.wait_with_output().unwrap();
        assert_eq!(
            o.status.code(),
            Some(128 + sig),
            "{cmd}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        let line = err.lines().last().unwrap_or_default().to_string();
        assert!(
            line.contains("interrupted at step") && line.contains("--resume"),
            "{cmd}: {err}"
        );
        assert!(
            !err.contains("panicked") && !err.contains("backtrace"),
            "{cmd}: {err}"
        );
        assert!(
            !out_dir.join("adapter").exists(),
            "{cmd}: an adapter was written"
        );
        let step: u64 = line
            .split("interrupted at step ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap();
        let ck = stylerl::train::checkpoint::latest(&out_dir.join("checkpoints"))
            .unwrap()
            .unwrap();
        assert_eq!(
            stylerl::train::checkpoint::read_state(&ck).unwrap().step,
            step,
            "{cmd}"
        );
        let o = bin()
            .arg(cmd)
            .arg("--config")
            .arg(&cfg)
            .arg("--resume")
            .env("STYLERL_PROGRESS", "0")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{cmd} resume: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            out_dir.join("adapter/adapter_model.safetensors").exists(),
            "{cmd}"
        );
    }
}

/// Signal numbers (Linux), without a libc dependency for two constants.
mod libc_sig {
    pub const SIGINT: i32 = 2;
    pub const SIGTERM: i32 = 15;
}
