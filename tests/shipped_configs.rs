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
    as_kind(path, set, "sft", SftConfig::validate, &mut errors)
        .or_else(|| as_kind(path, set, "grpo", GrpoConfig::validate, &mut errors))
        .or_else(|| as_kind(path, set, "evaluate", EvalConfig::validate, &mut errors))
        .or_else(|| {
            let reward = |f: &RewardFile| f.reward.validate();
            as_kind(path, set, "reward", reward, &mut errors)
        })
        .unwrap_or_else(|| Err(errors.join("\n  ")))
}

/// `None` when `path` does not parse as a `T` (the error kept in `errors`), else whether it
/// validates.
fn as_kind<T: serde::de::DeserializeOwned>(
    path: &Path,
    set: &[String],
    name: &'static str,
    validate: impl Fn(&T) -> anyhow::Result<()>,
    errors: &mut Vec<String>,
) -> Option<Result<&'static str, String>> {
    match stylerl::config::load::<T>(path, set) {
        Ok(c) => Some(
            validate(&c)
                .map(|_| name)
                .map_err(|e| format!("{name}: {e:#}")),
        ),
        Err(e) => {
            errors.push(format!("{name}: {e:#}"));
            None
        }
    }
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
