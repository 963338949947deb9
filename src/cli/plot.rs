//! `stylerl plot RUN_DIR`: a run's metrics.jsonl as one SVG grid of charts (the drawing is
//! in `eval::plot`).
use crate::eval::plot::{plot_series, read_metrics};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct PlotArgs {
    /// A run directory holding metrics.jsonl (or the metrics.jsonl file itself).
    pub run_dir: PathBuf,
    /// Output SVG (default: RUN_DIR/plots/metrics.svg).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace --out when it exists (the default path is always redrawn).
    #[arg(long, requires = "out")]
    pub force: bool,
}

pub fn run(a: &PlotArgs) -> anyhow::Result<()> {
    let metrics = if a.run_dir.is_dir() {
        a.run_dir.join("metrics.jsonl")
    } else {
        a.run_dir.clone()
    };
    if let Some(out) = &a.out {
        super::args::check_not_input("--out", out, &[("the metrics file", &metrics)])?;
        super::args::check_out_file("--out", out, a.force)?;
    }
    let series = read_metrics(&metrics)?;
    let base = metrics.parent().unwrap_or(Path::new("."));
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| base.join("plots").join("metrics.svg"));
    let n = plot_series(&series, &out)?;
    println!("wrote {} ({n} panels)", out.display());
    Ok(())
}
