//! `stylerl merge`: folds LoRA adapters into the base weights and writes a plain Hugging
//! Face directory that any Llama loader (transformers, vLLM, llama.cpp's converter) reads
//! without PEFT.
use crate::adapter::{attach as adapters, peft};
use crate::io::hf_dir::write_model_dir;
use crate::model::Llama;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct MergeArgs {
    /// Base model directory (the one the adapters were trained on).
    #[arg(long)]
    pub model: PathBuf,
    /// PEFT adapter directory, optionally with a weight: W += weight · scaling · B A.
    /// Repeatable (the deltas add up).
    #[arg(long = "adapter", value_name = "PATH[:WEIGHT]", required = true)]
    pub adapters: Vec<String>,
    /// Output directory (weights as one model.safetensors, plus config and tokenizer files).
    #[arg(long)]
    pub out: PathBuf,
    /// Dtype of the written weights: f32, bf16 or f16 (the merge itself is computed in f32).
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Write into --out even when it already holds files (they are replaced).
    #[arg(long)]
    pub force: bool,
}

pub fn run(a: &MergeArgs) -> Result<()> {
    let device = crate::util::parse_device(&a.device)?;
    let kind = crate::util::parse_dtype(&a.dtype)?;
    if same_dir(&a.model, &a.out) {
        bail!(
            "--out {} is the model directory itself: choose a new directory",
            a.out.display()
        );
    }
    if a.out.is_file() {
        bail!("--out {} is a file: give a directory", a.out.display());
    }
    let held = std::fs::read_dir(&a.out).map_or(false, |mut d| d.next().is_some());
    if held && !a.force {
        bail!(
            "--out {} is not empty (a model directory?): pass --force to replace its files, or choose a new directory",
            a.out.display()
        );
    }
    // Load in f32 so the merged sum is rounded once, when converting to --dtype.
    let mut model = Llama::load(&a.model, device, tch::Kind::Float)?;
    let set = peft::load_set(&a.adapters, device)?;
    let modules = adapters::linear_modules(&model);
    for ((adapter, _), spec) in set.adapters.iter().zip(&a.adapters) {
        peft::check_against(adapter, &modules, spec)?;
    }
    let n = adapters::merge_into_model(&mut model, &set)?;
    // The merge is computed in f32; the written weights are rounded once, to --dtype.
    let tensors: Vec<(String, tch::Tensor)> = model
        .named_tensors()
        .into_iter()
        .map(|(n, t)| (n, t.to_kind(kind)))
        .collect();
    // f16 ends at ±65504: a larger merged weight would be written as inf.
    if let Some(name) = peft::first_non_finite(&tensors) {
        bail!(
            "--dtype {}: merged weight '{name}' is beyond its range (f16 ends at ±65504) and would be written as inf: use --dtype bf16 or f32, or lower the adapter weights",
            a.dtype
        );
    }
    write_model_dir(tensors, &a.model, &a.out)
        .with_context(|| format!("cannot write merged model to {}", a.out.display()))?;
    println!(
        "merged {} adapter(s) into {n} linear modules: {}",
        a.adapters.len(),
        a.out.display()
    );
    Ok(())
}

fn same_dir(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}
