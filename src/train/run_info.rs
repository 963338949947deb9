//! `run.json`: what a training run was started from — base model, frozen adapters, the exact
//! prompt (instruction, system message, a hash of the chat template), the reward's encoder
//! and reference files, and the settings fingerprint. `sft` and `grpo` write it when they
//! start writing into their out_dir, so `stylerl rewrite --run DIR` needs nothing else and a
//! later change of defaults cannot silently change the prompt.
use crate::adapter::load::ModelSection;
use crate::model::chat::ChatTemplate;
use crate::reward::config::RewardConfig;
use crate::train::checkpoint::Fingerprint;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const FILE: &str = "run.json";
/// Where a finished run keeps its trained adapter (PEFT layout).
pub const ADAPTER: &str = "adapter";

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct RunInfo {
    /// `sft` or `grpo`.
    pub kind: String,
    /// The command line that started the run, when it came from the CLI (named in errors).
    pub command: Option<String>,
    /// The working directory of that command (its relative paths are relative to it).
    pub cwd: Option<PathBuf>,
    /// Base model directory, absolute.
    pub model: PathBuf,
    pub dtype: String,
    /// Frozen adapters under the trained one, `PATH[:WEIGHT]` with absolute paths.
    pub adapters: Vec<String>,
    /// The user turn is `sft_data::user_turn(instruction, input)`.
    pub instruction: String,
    /// Reference sentences shown in each prompt (GRPO `data.examples`); then `instruction`
    /// is the example template and the sentences come from `reference`
    /// (train::example_prompts::example_turns with `example_seed`).
    #[serde(default)]
    pub examples: usize,
    #[serde(default)]
    pub example_seed: u64,
    /// System message before the user turn, if training used one.
    pub system: Option<String>,
    /// FNV-1a of the chat template source and its special tokens (see [`template_hash`]).
    pub chat_template_hash: String,
    /// The reward's style encoder and reference files (GRPO runs).
    pub encoder: Option<String>,
    pub reference: Vec<PathBuf>,
    /// The settings the result depends on (the resume fingerprint).
    pub config: Fingerprint,
}

/// What the prompt renders with: the template source and its special tokens, hashed.
pub fn template_hash(t: &ChatTemplate) -> String {
    let mut bytes = t.source.clone().into_bytes();
    for (k, v) in &t.special {
        bytes.extend(format!("\0{k}={v}").bytes());
    }
    format!("{:016x}", crate::encoder::charstyle::fnv1a(&bytes))
}

/// `path` made absolute against the working directory (relative paths break from elsewhere).
fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The adapter spec with its path made absolute, the weight kept.
fn absolute_spec(spec: &str) -> String {
    match spec.rsplit_once(':') {
        Some((p, w)) if w.parse::<f64>().is_ok() => {
            format!("{}:{w}", absolute(Path::new(p)).display())
        }
        _ => absolute(Path::new(spec)).display().to_string(),
    }
}

/// The CLI line of this process when it is `stylerl KIND …` (not a test calling `train`).
fn command_line(kind: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let program = args
        .first()
        .map(|a| Path::new(a).file_stem() == Some("stylerl".as_ref()));
    if program != Some(true) || args.get(1).map(String::as_str) != Some(kind) {
        return None;
    }
    let quoted: Vec<String> = args[1..]
        .iter()
        .map(|a| match a.contains(char::is_whitespace) || a.is_empty() {
            true => format!("'{a}'"),
            false => a.clone(),
        })
        .collect();
    Some(format!("stylerl {}", quoted.join(" ")))
}

/// Writes `out_dir/run.json` (creating the directory). Called by `sft` and `grpo` after
/// their settings were checked, before the first step.
pub fn write(
    out_dir: &Path,
    kind: &str,
    model: &ModelSection,
    instruction: &str,
    (examples, example_seed): (usize, u64),
    system: Option<&str>,
    reward: Option<&RewardConfig>,
    config: Fingerprint,
) -> Result<()> {
    let tpl = ChatTemplate::from_dir(&model.path)?;
    let info = RunInfo {
        kind: kind.to_string(),
        command: command_line(kind),
        cwd: std::env::current_dir().ok(),
        model: absolute(&model.path),
        dtype: model.dtype.clone(),
        adapters: model.adapters.iter().map(|s| absolute_spec(s)).collect(),
        instruction: instruction.to_string(),
        examples,
        example_seed,
        system: system.map(str::to_string),
        chat_template_hash: template_hash(&tpl),
        encoder: reward.map(|r| r.encoder.clone()),
        reference: reward
            .map(|r| r.reference.iter().map(|p| absolute(p)).collect())
            .unwrap_or_default(),
        config,
    };
    std::fs::create_dir_all(out_dir)?;
    crate::util::write_atomic(
        &out_dir.join(FILE),
        serde_json::to_string_pretty(&info)?.as_bytes(),
    )
}

impl RunInfo {
    /// The command that continues this run.
    pub fn resume_command(&self) -> String {
        match &self.command {
            Some(c) if c.contains("--resume") => self.in_its_cwd(c),
            Some(c) => self.in_its_cwd(&format!("{c} --resume")),
            None => format!("stylerl {} --config CONFIG --resume", self.kind),
        }
    }

    /// The command that started this run.
    pub fn start_command(&self) -> String {
        match &self.command {
            Some(c) => self.in_its_cwd(c),
            None => format!("stylerl {} --config CONFIG", self.kind),
        }
    }

    /// `cmd`, preceded by `cd` into the run's working directory when that is not this one.
    fn in_its_cwd(&self, cmd: &str) -> String {
        match &self.cwd {
            Some(d) if std::env::current_dir().ok().as_ref() != Some(d) => {
                format!("cd {} && {cmd}", d.display())
            }
            _ => cmd.to_string(),
        }
    }
}

/// Reads a finished run directory: run.json, the trained adapter, the base model and the
/// frozen adapters must all be there. Each failure is one line naming what is missing and
/// the command that makes it; `model` replaces the recorded base model (a moved copy).
pub fn read(dir: &Path, model: Option<&Path>) -> Result<RunInfo> {
    let d = dir.display();
    if !dir.is_dir() {
        bail!("run directory {d} does not exist: train it with `stylerl sft --config CONFIG` or `stylerl grpo --config CONFIG` (out_dir = \"{d}\"), or fix the path");
    }
    let path = dir.join(FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(e).with_context(|| format!("cannot read {}", path.display()));
        }
        Err(_) if dir.join(ADAPTER).is_dir() => bail!(
            "{d} has no {FILE} (trained before runs recorded one): retrain it, or use --model {} --adapter {d}/{ADAPTER}",
            peft_base(&dir.join(ADAPTER)).unwrap_or_else(|| "BASE".into())
        ),
        Err(_) if dir.join("metrics.jsonl").is_file() => bail!(
            "{d} is half-written: no {FILE} and no {ADAPTER}/ (training did not finish): finish it with `stylerl sft --config CONFIG --resume` (or grpo) from the config whose out_dir it is"
        ),
        Err(_) => bail!(
            "{d} has no {FILE}: it is not a run directory; train one with `stylerl sft --config CONFIG` or `stylerl grpo --config CONFIG`"
        ),
    };
    let mut info: RunInfo = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{} is not a valid run record ({e}): rerun the training that wrote it",
            path.display()
        )
    })?;
    if !crate::util::is_file_checked(&dir.join(ADAPTER).join("adapter_model.safetensors"))? {
        bail!(
            "{d} is half-written: no {ADAPTER}/adapter_model.safetensors (training did not finish): finish it with `{}`",
            info.resume_command()
        );
    }
    if let Some(m) = model {
        info.model = absolute(m);
    }
    if !crate::util::is_file_checked(&info.model.join("config.json"))? {
        bail!(
            "{d}: its base model {} is missing (no config.json): {}, or pass --model DIR with a copy of it",
            info.model.display(),
            maker(&info.model)
        );
    }
    for spec in &info.adapters {
        let (p, _) = crate::adapter::lora::parse_adapter_spec(spec)?;
        if !crate::util::is_file_checked(&p.join("adapter_model.safetensors"))? {
            bail!(
                "{d}: its frozen adapter {} is missing: {}",
                p.display(),
                maker(&p)
            );
        }
    }
    Ok(info)
}

/// The base model a PEFT adapter names (`base_model_name_or_path` in adapter_config.json).
fn peft_base(adapter: &Path) -> Option<String> {
    let t = std::fs::read_to_string(adapter.join("adapter_config.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&t).ok()?;
    Some(v.get("base_model_name_or_path")?.as_str()?.to_string())
}

/// How a missing model or adapter directory is made again: by the run whose out_dir holds it
/// (`<run>/merged`, `<run>/adapter`), when that run's run.json says how.
fn maker(missing: &Path) -> String {
    let run = missing.parent().map(|p| p.join(FILE));
    let made_by = run
        .and_then(|r| std::fs::read_to_string(r).ok())
        .and_then(|t| serde_json::from_str::<RunInfo>(&t).ok());
    // `<sft run>/merged` exists only when that run merged its adapter.
    let merged = match missing.file_name().and_then(|f| f.to_str()) {
        Some("merged") => " with train.merge = true",
        _ => "",
    };
    match made_by {
        Some(r) => format!("it is written by `{}`{merged}", r.start_command()),
        None => "restore it or rerun the command that wrote it".to_string(),
    }
}
