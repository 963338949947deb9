//! `stylerl evaluate`: rewrite held-out inputs with each system and compare them in tables
//! (the work is in `eval::evaluate`).
use crate::eval::config::EvalConfig;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct EvaluateArgs {
    /// TOML config (see configs/demo/evaluate.toml).
    #[arg(long)]
    pub config: PathBuf,
    /// Override a config value, e.g. --set data.limit=8 (repeatable).
    #[arg(long = "set")]
    pub set: Vec<String>,
    /// Evaluate only these systems (comma-separated names from the config).
    #[arg(long, value_delimiter = ',')]
    pub systems: Vec<String>,
}

pub fn run(a: &EvaluateArgs) -> anyhow::Result<()> {
    let mut cfg: EvalConfig = crate::config::load(&a.config, &a.set)?;
    cfg.select_systems(&a.systems)?;
    let report = crate::eval::evaluate::evaluate(&cfg)?;
    print!("{}", report.markdown);
    eprintln!("results: {}", report.out_dir.display());
    Ok(())
}
