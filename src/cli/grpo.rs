//! `stylerl grpo`: stage 2, Dr.GRPO with style rewards (the work is in `train::grpo`).
use crate::train::grpo::train_with;
use crate::train::grpo_config::GrpoConfig;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct GrpoArgs {
    /// TOML config (see configs/demo/grpo.toml).
    #[arg(long)]
    pub config: PathBuf,
    /// Train ternary (1.58-bit) Bit-LoRA adapters.
    #[arg(long)]
    pub bitlora: bool,
    /// Continue from the newest checkpoint in the output directory.
    #[arg(long)]
    pub resume: bool,
    /// Resume although grpo.steps changed (implies --resume).
    #[arg(long)]
    pub resume_anyway: bool,
    /// Override a config value, e.g. --set grpo.steps=5 (repeatable).
    #[arg(long = "set")]
    pub set: Vec<String>,
}

pub fn run(a: &GrpoArgs) -> anyhow::Result<()> {
    let mut cfg: GrpoConfig = crate::config::load(&a.config, &a.set)?;
    cfg.grpo.bitlora |= a.bitlora;
    let resume = a.resume || a.resume_anyway;
    train_with(&cfg, resume, a.resume_anyway, &super::console::Console).map(|_| ())
}
