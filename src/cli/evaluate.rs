//! `stylerl evaluate`: rewrite held-out inputs with each system and compare them in tables
//! (the work is in `eval::evaluate`).
use crate::eval::config::EvalConfig;
use anyhow::bail;
use std::path::{Path, PathBuf};

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
    /// Replace an existing results folder that holds systems this run leaves out.
    #[arg(long)]
    pub force: bool,
}

/// The systems of an earlier evaluation in `out_dir` (its metrics.json) that this one would
/// drop from table.md, outputs.jsonl and metrics.json.
fn dropped(out_dir: &Path, keep: &[String]) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(out_dir.join("metrics.json")) else {
        return vec![];
    };
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let names = v["systems"].as_array().cloned().unwrap_or_default();
    names
        .iter()
        .filter_map(|s| s["name"].as_str())
        .filter(|n| !keep.iter().any(|k| k == n))
        .map(str::to_string)
        .collect()
}

pub fn run(a: &EvaluateArgs) -> anyhow::Result<()> {
    let mut cfg: EvalConfig = crate::config::load(&a.config, &a.set)?;
    cfg.select_systems(&a.systems)?;
    let keep: Vec<String> = cfg.systems.iter().map(|s| s.name.clone()).collect();
    let gone = dropped(&cfg.out_dir(), &keep);
    if !gone.is_empty() && !a.force {
        bail!(
            "{} holds results of {} that this run would drop (it evaluates only {}): pass --force to replace them, add them to --systems, or set out_dir elsewhere",
            cfg.out_dir().display(),
            gone.join(", "),
            keep.join(", ")
        );
    }
    let report = crate::eval::evaluate::evaluate(&cfg, &super::console::Console)?;
    print!("{}", report.markdown);
    eprintln!("results: {}", report.out_dir.display());
    Ok(())
}
