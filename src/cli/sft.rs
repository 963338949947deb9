//! `stylerl sft`: stage 1, LoRA warm-up on (input, rewrite) pairs (the work is in
//! `train::sft`).
use crate::train::sft::{train_with, SftConfig};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct SftArgs {
    /// TOML config (see configs/demo/sft.toml).
    #[arg(long)]
    pub config: PathBuf,
    /// Override a config value, e.g. --set train.max_steps=10 (repeatable).
    #[arg(long = "set")]
    pub set: Vec<String>,
    /// Continue from the newest checkpoint in the output directory.
    #[arg(long)]
    pub resume: bool,
    /// Resume although train.max_steps changed (implies --resume).
    #[arg(long)]
    pub resume_anyway: bool,
}

pub fn run(a: &SftArgs) -> anyhow::Result<()> {
    let cfg: SftConfig = crate::config::load(&a.config, &a.set)?;
    let resume = a.resume || a.resume_anyway;
    train_with(&cfg, resume, a.resume_anyway, &super::console::Console).map(|_| ())
}
