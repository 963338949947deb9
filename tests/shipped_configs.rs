//! Every config the repository ships (configs/**/*.toml) parses as one of the commands'
//! configs and passes that command's validation: a config that a README or a results folder
//! tells users to run must not fail on a key renamed since it was written.
use serde::Deserialize;
use std::path::{Path, PathBuf};
use stylerl::eval::config::EvalConfig;
use stylerl::reward::config::RewardConfig;
use stylerl::train::grpo_config::GrpoConfig;
use stylerl::train::sft::SftConfig;

/// What `stylerl reward --config` reads.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RewardFile {
    reward: RewardConfig,
}

fn tomls(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            tomls(&p, out);
        } else if p.extension().is_some_and(|x| x == "toml") {
            out.push(p);
        }
    }
}

/// The command whose config `path` is, or every kind's error.
fn kind(path: &Path, set: &[String]) -> Result<&'static str, String> {
    let mut errors = Vec::new();
    match stylerl::config::load::<SftConfig>(path, set) {
        Ok(c) => {
            return c
                .validate()
                .map(|_| "sft")
                .map_err(|e| format!("sft: {e:#}"))
        }
        Err(e) => errors.push(format!("sft: {e:#}")),
    }
    match stylerl::config::load::<GrpoConfig>(path, set) {
        Ok(c) => {
            return c
                .validate()
                .map(|_| "grpo")
                .map_err(|e| format!("grpo: {e:#}"))
        }
        Err(e) => errors.push(format!("grpo: {e:#}")),
    }
    match stylerl::config::load::<EvalConfig>(path, set) {
        Ok(c) => {
            return c
                .validate()
                .map(|_| "evaluate")
                .map_err(|e| format!("evaluate: {e:#}"))
        }
        Err(e) => errors.push(format!("evaluate: {e:#}")),
    }
    match stylerl::config::load::<RewardFile>(path, set) {
        Ok(c) => {
            return c
                .reward
                .validate()
                .map(|_| "reward")
                .map_err(|e| format!("reward: {e:#}"))
        }
        Err(e) => errors.push(format!("reward: {e:#}")),
    }
    Err(errors.join("\n  "))
}

/// The key of a "<kind>: <key> = cuda: … no CUDA device …" refusal.
fn cuda_key(e: &str) -> Option<String> {
    if !e.contains("no CUDA device") {
        return None;
    }
    let (_, rest) = e.split_once(": ")?;
    let (key, _) = rest.split_once(" = cuda")?;
    Some(key.to_string())
}

#[test]
fn every_shipped_config_parses_and_validates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let mut files = Vec::new();
    tomls(&root, &mut files);
    files.sort();
    assert!(files.len() >= 30, "configs/ holds {} files", files.len());
    let mut bad = Vec::new();
    let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
    for f in &files {
        // The paper's configs name a GPU: on a machine without one, check them as on the CPU.
        let mut set = Vec::new();
        let mut got = kind(f, &set);
        while let Some(key) = got.as_ref().err().and_then(|e| cuda_key(e)) {
            if set.len() > 4 {
                break;
            }
            set.push(format!("{key}=cpu"));
            got = kind(f, &set);
        }
        match got {
            Ok(k) => *kinds.entry(k).or_default() += 1,
            Err(e) => bad.push(format!("{}:\n  {e}", f.display())),
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    for k in ["sft", "grpo", "evaluate"] {
        assert!(
            kinds.get(k).is_some_and(|&n| n > 0),
            "no {k} config: {kinds:?}"
        );
    }
}
