//! Shared by the tests/reliability_*.rs files: run the release binary with a time limit,
//! check that a refusal is one `error:` line with a non-zero exit and no panic, and check
//! that a refused command left every file as it was.
#![allow(dead_code)]
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary, run from the repository root with progress bars off. RELIABILITY_BIN names
/// another build to run instead (an older one, to see these tests fail before the fixes).
pub fn stylerl() -> Command {
    let bin = std::env::var("RELIABILITY_BIN").unwrap_or(env!("CARGO_BIN_EXE_stylerl").into());
    let mut c = Command::new(bin);
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("STYLERL_PROGRESS", "0")
        .env_remove("STYLERL_THREADS")
        .env_remove("STYLERL_FAULT_NAN_AT_STEPS")
        .stdin(Stdio::null());
    c
}

/// Runs `c`, killing it after `secs` seconds (a hang fails the test instead of stalling it).
pub fn run_for(mut c: Command, secs: u64) -> Output {
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait works").is_some() {
            return child.wait_with_output().expect("output is read");
        }
        if start.elapsed() > Duration::from_secs(secs) {
            let _ = child.kill();
            let o = child.wait_with_output().expect("output is read");
            panic!(
                "still running after {secs} s (a hang); stderr:\n{}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `stylerl ARGS…` with a 120 s limit.
pub fn run(args: &[&str]) -> Output {
    let mut c = stylerl();
    c.args(args);
    run_for(c, 120)
}

/// Asserts a refusal: non-zero exit, no panic, and stderr exactly one line starting with
/// `error:` that holds every string of `want`; returns that line.
pub fn refused(o: &Output, want: &[&str]) -> String {
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(
        !o.status.success(),
        "want a non-zero exit, got success; stderr:\n{err}"
    );
    assert!(!err.contains("panicked"), "panicked:\n{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "want one stderr line, got:\n{err}");
    assert!(
        lines[0].starts_with("error: "),
        "not an error line: {}",
        lines[0]
    );
    for w in want {
        assert!(lines[0].contains(w), "'{w}' not in: {}", lines[0]);
    }
    lines[0].to_string()
}

/// Every file under `dir` with its bytes: compare before and after a refused command.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap_or_default();
                out.insert(p.strip_prefix(dir).unwrap().to_path_buf(), bytes);
            }
        }
    }
    out
}

/// Asserts `dir` holds exactly the files of `before`, byte for byte.
pub fn unchanged(dir: &Path, before: &BTreeMap<PathBuf, Vec<u8>>) {
    let now = snapshot(dir);
    let names = |m: &BTreeMap<PathBuf, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&now), names(before), "files added or removed");
    for (p, b) in before {
        assert!(&now[p] == b, "{} changed", p.display());
    }
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A directory holding only config.json (the tiny Llama's, with `edit` applied) and the
/// default model's tokenizer files: enough for `--random-init`.
pub fn config_only(dir: &Path, family: &str, edit: impl FnOnce(&mut serde_json::Value)) {
    std::fs::create_dir_all(dir).unwrap();
    let mut cfg = super::common::tiny_config(family);
    edit(&mut cfg);
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    for f in [
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
    ] {
        std::fs::copy(super::common::smol_dir().join(f), dir.join(f)).unwrap();
    }
}

/// Writes a PEFT LoRA adapter (r 4, all linear modules, B drawn from N(0, 0.05²) so the
/// delta is not zero) for the model in `model` into `out`.
pub fn tiny_adapter(model: &Path, out: &Path) {
    use stylerl::adapter::lora::{LoraAdapter, LoraConfig, Quant};
    let m = stylerl::model::Llama::load(model, tch::Device::Cpu, tch::Kind::Float).unwrap();
    let mods = stylerl::adapter::attach::linear_modules(&m);
    let cfg = LoraConfig {
        r: 4,
        ..LoraConfig::default()
    };
    tch::manual_seed(5);
    let a = LoraAdapter::new(&cfg, &mods, Quant::None, tch::Device::Cpu).unwrap();
    tch::no_grad(|| {
        for l in a.layers.values() {
            let _ = l.b.shallow_clone().normal_(0.0, 0.05);
        }
    });
    stylerl::adapter::peft::save_adapter(&a, out, Some(s(model))).unwrap();
}
