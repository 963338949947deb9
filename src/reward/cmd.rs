//! `stylerl reward` and `stylerl analyze`.
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct RewardArgs {
    /// A TOML config with a [reward] table (reference file, encoder, weights).
    #[arg(long)]
    pub config: PathBuf,
    /// The input text that was rewritten.
    #[arg(long)]
    pub input: String,
    /// The generated rewrite to score.
    #[arg(long)]
    pub output: String,
    /// Override a config value, e.g. --set reward.dropout.gamma=5 (repeatable).
    #[arg(long = "set")]
    pub set: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct AnalyzeArgs {
    /// A sentence-transformers directory, or `stylometric`.
    #[arg(long)]
    pub encoder: String,
    /// Dataset files (text, JSONL, CSV, Parquet); one table row each.
    #[arg(long, num_args = 1.., required = true)]
    pub data: Vec<PathBuf>,
    /// Output directory for table.md and table.csv.
    #[arg(long, default_value = "results/analyze")]
    pub out: PathBuf,
}

pub fn reward(_a: &RewardArgs) -> anyhow::Result<()> {
    anyhow::bail!("reward is not built yet")
}
pub fn analyze(_a: &AnalyzeArgs) -> anyhow::Result<()> {
    anyhow::bail!("analyze is not built yet")
}
