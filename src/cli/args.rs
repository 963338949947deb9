//! Flags shared by the commands that load a model.
use crate::adapter::load::ModelSpec;
use crate::model::Llama;
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// Options shared by every command that loads a model.
#[derive(clap::Args, Debug, Clone)]
pub struct ModelOpts {
    /// Hugging Face model directory (config.json, safetensors, tokenizer.json): Llama, Qwen2, Qwen3 or GPT-2.
    #[arg(long)]
    pub model: PathBuf,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Compute dtype: f32, bf16 or f16 (weights are converted on load).
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// Build the model from config.json alone with random weights (speed/memory work).
    #[arg(long)]
    pub random_init: bool,
    /// CPU threads for libtorch (default: libtorch's choice).
    #[arg(long)]
    pub threads: Option<i32>,
    /// A PEFT LoRA adapter directory applied on top of the model, optionally with a weight
    /// (`runs/sft/adapter:0.5`). Repeatable: the adapters' deltas add up, each times its weight.
    #[arg(long = "adapter", value_name = "PATH[:WEIGHT]")]
    pub adapters: Vec<String>,
}

impl ModelOpts {
    /// Refuses early (before any tokenizing) a --threads out of range or a --model that is
    /// not a model directory.
    pub fn check_dir(&self) -> Result<()> {
        if let Some(n) = self.threads {
            crate::config::check::threads("--threads", n as i64)?;
        }
        if !crate::util::is_file_checked(&self.model.join("config.json"))? {
            bail!(
                "--model {}: no config.json there (expected a Hugging Face model directory)",
                self.model.display()
            );
        }
        Ok(())
    }

    /// Sets --threads, then loads the model with its `--adapter`s through the one loader.
    pub fn load(&self) -> Result<Llama> {
        self.check_dir()?;
        if let Some(n) = self.threads {
            tch::set_num_threads(n);
        }
        let spec = ModelSpec::parse(
            self.model.clone(),
            &self.device,
            &self.dtype,
            self.random_init,
            self.adapters.clone(),
        )?;
        crate::adapter::load::load(&spec)
    }
}

/// Refuses to write `out` (given as `flag`) over an existing file unless `force`, and over a
/// directory always: a command's output must not replace a user's file by surprise.
pub fn check_out_file(flag: &str, out: &Path, force: bool) -> Result<()> {
    if out.is_dir() {
        bail!("{flag} {} is a directory: give a file path", out.display());
    }
    if out.exists() && !force {
        bail!(
            "{flag} {} exists: pass --force to replace it, or choose another path",
            out.display()
        );
    }
    Ok(())
}

/// Refuses, even with --force, an output (given as `flag`) that is one of the command's own
/// inputs, or an existing file inside an input directory (a model, adapter or run): writing
/// it would replace what the command reads.
pub fn check_not_input(flag: &str, out: &Path, inputs: &[(&str, &Path)]) -> Result<()> {
    let Ok(o) = out.canonicalize() else {
        return Ok(());
    };
    for (what, i) in inputs {
        let Ok(c) = i.canonicalize() else {
            continue;
        };
        if o == c || (c.is_dir() && o.starts_with(&c)) {
            bail!(
                "{flag} {} would replace {what} {} that this command reads: choose another {flag}",
                out.display(),
                i.display()
            );
        }
    }
    Ok(())
}

/// Whether two paths name the same existing file (through links and `..`).
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}
