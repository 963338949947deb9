//! Training checkpoints that a crash cannot tear.
//!
//! Layout under the run's checkpoint root:
//!   step-N/adapter_config.json, adapter_model.safetensors   the adapter, PEFT format
//!   step-N/adapter_ternary.safetensors, latent.safetensors  Bit-LoRA only: packed form and
//!                                                           the latent fp32 A, B for resume
//!   step-N/optimizer.safetensors                            AdamW state
//!   step-N/trainer_state.json                               step, scheduler step, RNG,
//!                                                           data position, free metadata
//!   latest                                                  "step-N"
//! A checkpoint is written in `.tmp-step-N`, fsynced, renamed to `step-N` (rename is
//! atomic), and only then is `latest` replaced atomically; the last K are kept. Loading
//! ignores `.tmp-*` leftovers and, if `latest` is missing or stale, takes the highest
//! complete `step-N` (one holding trainer_state.json, the file written last).
use super::optim::AdamW;
use crate::adapter::lora::{LoraAdapter, Quant};
use crate::adapter::peft;
use crate::rng::SplitMix64;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const STATE_FILE: &str = "trainer_state.json";
pub const OPTIM_FILE: &str = "optimizer.safetensors";
pub const LATENT_FILE: &str = "latent.safetensors";
pub const LATEST: &str = "latest";

/// Where the data loader stands: epoch, next index into the epoch's order, and the seed
/// that shuffled this epoch's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DataPosition {
    pub epoch: u64,
    pub index: u64,
    pub order_seed: u64,
}

/// Everything but tensors needed to continue a run exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Optimizer steps completed.
    pub step: u64,
    pub scheduler_step: u64,
    pub seed: u64,
    pub rng: SplitMix64,
    pub data: DataPosition,
    /// Free-form run metadata (config, counters such as the NaN streak).
    #[serde(default)]
    pub extra: serde_json::Value,
}

fn step_dir_name(step: u64) -> String {
    format!("step-{step}")
}

fn fsync_dir(dir: &Path) {
    // Directory fsync makes the renames durable; not every filesystem allows it.
    if let Ok(f) = std::fs::File::open(dir) {
        let _ = f.sync_all();
    }
}

/// Refuses to write an adapter holding NaN or infinities: the run stops with one line
/// naming the step and the checkpoint that stays as the last good one.
pub fn refuse_non_finite(root: &Path, step: u64, adapter: &LoraAdapter) -> Result<()> {
    let Some(k) = peft::first_non_finite(&adapter.named_parameters()) else {
        return Ok(());
    };
    let kept = match latest(root)? {
        Some(d) => format!("the last good checkpoint is kept: {}", d.display()),
        None => "there is no earlier checkpoint".to_string(),
    };
    bail!("step {step}: the adapter holds NaN or infinite values ({k}), so it was not written; {kept}; lower the learning rate or max_grad_norm")
}

/// Refuses a run in which the NaN guard skipped every update (nothing was learned).
pub fn refuse_all_skipped(root: &Path, steps: u64, skipped: u64, key: &str) -> Result<()> {
    if steps == 0 || skipped < steps {
        return Ok(());
    }
    let kept = match latest(root)? {
        Some(d) => format!("checkpoints kept: {}", d.display()),
        None => "no checkpoint".to_string(),
    };
    bail!("all {steps} update(s) were skipped for a non-finite loss or gradient, so no adapter was written ({kept}); lower the learning rate or check the data ({key} bounds the streak)")
}

/// Writes checkpoint `state.step` under `root` and keeps the newest `keep_last` (≥ 1).
pub fn save(
    root: &Path,
    state: &TrainerState,
    adapter: &LoraAdapter,
    optim: &AdamW,
    base_model: Option<&str>,
    keep_last: usize,
) -> Result<PathBuf> {
    refuse_non_finite(root, state.step, adapter)?;
    std::fs::create_dir_all(root)
        .with_context(|| format!("cannot create checkpoint directory {}", root.display()))?;
    let name = step_dir_name(state.step);
    let tmp = root.join(format!(".tmp-{name}"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)
            .with_context(|| format!("cannot remove stale {}", tmp.display()))?;
    }
    std::fs::create_dir_all(&tmp)?;
    peft::save_adapter(adapter, &tmp, base_model)?;
    if adapter.quant == Quant::Ternary {
        crate::io::tensorfile::write(&tmp.join(LATENT_FILE), &adapter.named_parameters(), None)?;
    }
    optim.save(&tmp.join(OPTIM_FILE))?;
    crate::util::write_atomic(
        &tmp.join(STATE_FILE),
        serde_json::to_string_pretty(state)?.as_bytes(),
    )?;
    fsync_dir(&tmp);
    let dst = root.join(&name);
    if dst.exists() {
        std::fs::remove_dir_all(&dst)
            .with_context(|| format!("cannot replace {}", dst.display()))?;
    }
    std::fs::rename(&tmp, &dst)
        .with_context(|| format!("cannot move {} to {}", tmp.display(), dst.display()))?;
    fsync_dir(root);
    crate::util::write_atomic(&root.join(LATEST), format!("{name}\n").as_bytes())?;
    prune(root, keep_last.max(1), state.step)?;
    Ok(dst)
}

/// Complete checkpoints under `root` as (step, dir), ascending.
pub fn list(root: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(root) else {
        return Ok(out);
    };
    for e in rd {
        let e = e?;
        let name = e.file_name().to_string_lossy().to_string();
        if let Some(n) = name
            .strip_prefix("step-")
            .and_then(|s| s.parse::<u64>().ok())
        {
            if e.path().join(STATE_FILE).is_file() {
                out.push((n, e.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn prune(root: &Path, keep: usize, current: u64) -> Result<()> {
    let all = list(root)?;
    let n = all.len();
    for (step, dir) in all.into_iter().take(n.saturating_sub(keep)) {
        if step != current {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("cannot remove old checkpoint {}", dir.display()))?;
        }
    }
    Ok(())
}

/// Without `--resume`, a directory that already holds checkpoints is refused, so two runs
/// never mix their checkpoints.
pub fn refuse_existing(root: &Path) -> Result<()> {
    if latest(root)?.is_some() {
        bail!(
            "{} already holds checkpoints: pass --resume to continue, or choose another out_dir",
            root.display()
        );
    }
    if let Some(out) = root.parent() {
        refuse_finished(out)?;
    }
    Ok(())
}

/// A run that starts fresh (no checkpoint to continue from) never writes over the adapter and
/// run.json of a finished run whose checkpoints are gone: refused, naming the folder.
pub fn refuse_finished(out_dir: &Path) -> Result<()> {
    for f in ["adapter/adapter_model.safetensors", "run.json"] {
        let p = out_dir.join(f);
        if p.exists() {
            bail!(
                "out_dir {} holds a finished run ({}) and no checkpoint to continue from: a new run would replace it; choose another out_dir",
                out_dir.display(),
                p.display()
            );
        }
    }
    Ok(())
}

/// The note for a `--resume` that finds no checkpoint.
pub fn fresh_note(root: &Path) -> String {
    format!(
        "--resume: no checkpoint under {}, starting fresh",
        root.display()
    )
}

/// Whether step `step` (1-based, after its update) of `total` writes a checkpoint: every
/// `every` steps (0: never) and always the last.
pub fn is_due(step: u64, total: u64, every: u64) -> bool {
    step == total || (every > 0 && step % every == 0)
}

/// The checkpoint to resume from: the one `latest` names when it is complete, else the
/// highest complete `step-N`; None when there is none.
pub fn latest(root: &Path) -> Result<Option<PathBuf>> {
    if let Ok(s) = std::fs::read_to_string(root.join(LATEST)) {
        let dir = root.join(s.trim());
        if !s.trim().is_empty() && dir.join(STATE_FILE).is_file() {
            return Ok(Some(dir));
        }
    }
    Ok(list(root)?.pop().map(|(_, p)| p))
}

/// Reads only the trainer state of a checkpoint directory.
pub fn read_state(dir: &Path) -> Result<TrainerState> {
    let p = dir.join(STATE_FILE);
    let text =
        std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a stylerl trainer state", p.display()))
}

/// Restores adapter values (in place) and optimizer state from `dir`; returns the state.
pub fn restore(dir: &Path, adapter: &LoraAdapter, optim: &mut AdamW) -> Result<TrainerState> {
    let state = read_state(dir)?;
    let latent = dir.join(LATENT_FILE);
    if adapter.quant == Quant::Ternary {
        if !latent.is_file() {
            bail!("{}: no latent weights: this checkpoint is not from a Bit-LoRA run (drop --bitlora or start fresh)", dir.display());
        }
        peft::load_values_into(adapter, &latent)?;
    } else {
        if latent.is_file() {
            bail!(
                "{}: this checkpoint is from a Bit-LoRA run: resume with --bitlora",
                dir.display()
            );
        }
        peft::load_values_into(adapter, &dir.join(peft::WEIGHTS_FILE))?;
    }
    optim.load(&dir.join(OPTIM_FILE))?;
    Ok(state)
}

/// What a run's result depends on, key by key (`model.path`, `lora.alpha`, …): stored in
/// each checkpoint's trainer state and compared on resume.
pub type Fingerprint = std::collections::BTreeMap<String, serde_json::Value>;

/// Keys newer builds record that older checkpoints lack: compared only when the checkpoint
/// has them, so a run started before they existed still resumes.
pub const NEWER_KEYS: &[&str] = &["model.weights", "model.adapter_weights"];

/// Tables older checkpoints recorded whole (one debug string); newer ones also record each
/// setting (`reward.encoder`, …), compared one by one when both sides have them.
pub const WHOLE_KEYS: &[&str] = &["reward"];

/// FNV-1a, 64 bit: a hash that stays the same across builds and Rust versions.
fn fnv1a(h: &mut u64, bytes: &[u8]) {
    for b in bytes {
        *h ^= *b as u64;
        *h = h.wrapping_mul(0x100_0000_01b3);
    }
}

/// What identifies the weights in a model or adapter directory without reading them all:
/// each config file whole, and each safetensors file's size with 33 blocks of 4 KiB spread
/// evenly over it (its first and last KiB included). Another model of the same shapes
/// differs in those blocks; a copy of the same model in another place does not.
pub fn weights_fingerprint(dir: &Path) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".safetensors") || n.ends_with("config.json"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut total = 0u64;
    for n in &names {
        fnv1a(&mut h, n.as_bytes());
        let Ok(mut f) = std::fs::File::open(dir.join(n)) else {
            continue;
        };
        let size = f.metadata().map(|m| m.len()).unwrap_or(0);
        total += size;
        fnv1a(&mut h, &size.to_le_bytes());
        const BLOCK: u64 = 4096;
        let offsets: Vec<u64> = if n.ends_with(".json") || size <= 33 * BLOCK {
            vec![0]
        } else {
            (0..=32).map(|i| (size - BLOCK) / 32 * i).collect()
        };
        let len = if offsets.len() == 1 { size } else { BLOCK };
        for off in offsets {
            let mut buf = vec![0u8; len as usize];
            if f.seek(SeekFrom::Start(off)).is_ok() && f.read_exact(&mut buf).is_ok() {
                fnv1a(&mut h, &buf);
            }
        }
    }
    format!("{} file(s), {total} bytes, #{h:016x}", names.len())
}

/// Keys whose change a resume may accept with `--resume-anyway` (more steps); every other
/// difference would continue a run with different weights, data or optimizer than it had.
pub const HARMLESS_KEYS: &[&str] = &["train.max_steps", "grpo.steps"];

/// Adds `value` under `prefix`, one key per field when it is an object (`lora.r`, …).
pub fn put(f: &mut Fingerprint, prefix: &str, value: serde_json::Value) {
    match value {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                put(f, &format!("{prefix}.{k}"), v);
            }
        }
        v => {
            f.insert(prefix.to_string(), v);
        }
    }
}

/// Records which weights the run starts from: `model.weights` (the base model directory)
/// and `model.adapter_weights` (each frozen adapter), so a resume on other weights at the
/// same paths is refused.
pub fn put_weights(f: &mut Fingerprint, m: &crate::adapter::load::ModelSection) {
    f.insert("model.weights".into(), weights_fingerprint(&m.path).into());
    let adapters: Vec<String> = m
        .adapters
        .iter()
        .map(
            |spec| match crate::adapter::lora::parse_adapter_spec(spec) {
                Ok((p, _)) => weights_fingerprint(&p),
                Err(_) => String::new(),
            },
        )
        .collect();
    f.insert("model.adapter_weights".into(), adapters.into());
}

/// Refuses a resume whose run differs from the checkpoint's: another kind of run, keys
/// that change the result (named), or fewer steps than already done.
pub fn check_resume(
    dir: &Path,
    state: &TrainerState,
    now: &Fingerprint,
    steps_key: &str,
    total_steps: u64,
    anyway: bool,
) -> Result<()> {
    let Some(saved) = state.extra.get("fingerprint") else {
        // Checkpoints written before fingerprints existed: nothing to compare.
        tracing::warn!(
            "{} records no run fingerprint: resuming unchecked",
            dir.display()
        );
        return check_steps(dir, state, steps_key, total_steps);
    };
    let saved: Fingerprint = serde_json::from_value(saved.clone())
        .with_context(|| format!("{}: bad fingerprint", dir.join(STATE_FILE).display()))?;
    let kind = |f: &Fingerprint| {
        f.get("kind")
            .and_then(|v| v.as_str())
            .unwrap_or("?")
            .to_string()
    };
    if kind(&saved) != kind(now) {
        bail!(
            "{} is a checkpoint of a {} run, this is {}: resume it with `stylerl {}` or choose another out_dir",
            dir.display(),
            kind(&saved),
            kind(now),
            kind(&saved)
        );
    }
    check_steps(dir, state, steps_key, total_steps)?;
    let keys: std::collections::BTreeSet<&String> = saved.keys().chain(now.keys()).collect();
    let per_key = |f: &Fingerprint, w: &str| f.keys().any(|k| k.starts_with(&format!("{w}.")));
    // Compare a WHOLE_KEYS table per setting when both sides list them, else as a whole.
    let skipped = |k: &str| {
        (NEWER_KEYS.contains(&k) && !saved.contains_key(k))
            || WHOLE_KEYS.iter().any(|w| {
                let both = per_key(&saved, w) && per_key(now, w);
                (k == *w && both) || (!both && k.starts_with(&format!("{w}.")))
            })
    };
    let differ: Vec<&String> = keys
        .into_iter()
        .filter(|k| !skipped(k) && saved.get(*k) != now.get(*k))
        .collect();
    let show = |f: &Fingerprint, k: &str| f.get(k).map(|v| v.to_string()).unwrap_or("unset".into());
    let hard: Vec<String> = differ
        .iter()
        .filter(|k| !(anyway && HARMLESS_KEYS.contains(&k.as_str())))
        .map(|k| format!("{k} {} → {}", show(&saved, k), show(now, k)))
        .collect();
    if !hard.is_empty() {
        let all_harmless = differ.iter().all(|k| HARMLESS_KEYS.contains(&k.as_str()));
        bail!(
            "--resume: {} was written by a different run ({}): {}",
            dir.display(),
            hard.join(", "),
            if all_harmless {
                "pass --resume-anyway to continue with the new value"
            } else {
                "restore those settings, or start fresh in another out_dir"
            }
        );
    }
    Ok(())
}

fn check_steps(dir: &Path, state: &TrainerState, key: &str, total: u64) -> Result<()> {
    if total < state.step {
        bail!(
            "{key} = {total}: below the {} steps {} already holds: use ≥ {} or another out_dir",
            state.step,
            dir.display(),
            state.step
        );
    }
    Ok(())
}

/// [`latest`], [`check_resume`] against `now`, then [`restore`]; None when there is none.
#[allow(clippy::too_many_arguments)]
pub fn load_latest_checked(
    root: &Path,
    adapter: &LoraAdapter,
    optim: &mut AdamW,
    now: &Fingerprint,
    steps_key: &str,
    total_steps: u64,
    anyway: bool,
) -> Result<Option<(PathBuf, TrainerState)>> {
    let Some(dir) = latest(root)? else {
        return Ok(None);
    };
    check_resume(
        &dir,
        &read_state(&dir)?,
        now,
        steps_key,
        total_steps,
        anyway,
    )?;
    let s = restore(&dir, adapter, optim)?;
    Ok(Some((dir, s)))
}

/// [`latest`] then [`restore`]; None when `root` holds no complete checkpoint.
pub fn load_latest(
    root: &Path,
    adapter: &LoraAdapter,
    optim: &mut AdamW,
) -> Result<Option<(PathBuf, TrainerState)>> {
    match latest(root)? {
        Some(dir) => {
            let s = restore(&dir, adapter, optim)?;
            Ok(Some((dir, s)))
        }
        None => Ok(None),
    }
}
