//! `stylerl embed`: one JSON array of floats per input line.
use anyhow::{Context, Result};
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct EmbedArgs {
    /// A sentence-transformers directory, `stylometric` or `charstyle`.
    #[arg(long)]
    pub encoder: String,
    /// JSON lines of strings, or plain text lines (blank lines are skipped).
    #[arg(long)]
    pub input: PathBuf,
    #[arg(long, default_value = "cpu")]
    pub device: String,
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
}

/// A line is a JSON string literal only if it parses as one; otherwise it is the text itself.
pub fn parse_line(line: &str) -> String {
    let line = line.strip_suffix('\r').unwrap_or(line);
    match serde_json::from_str::<serde_json::Value>(line) {
        Ok(serde_json::Value::String(s)) => s,
        _ => line.to_string(),
    }
}

/// The texts of an input file, one per non-blank line.
pub fn read_inputs(path: &std::path::Path) -> Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(parse_line)
        .collect())
}

pub fn embed(a: &EmbedArgs) -> Result<()> {
    let device = crate::util::parse_device(&a.device)?;
    anyhow::ensure!(a.batch_size > 0, "--batch-size must be at least 1");
    let texts = read_inputs(&a.input)?;
    let opts = crate::encoder::EncoderOptions {
        device,
        batch_size: a.batch_size,
    };
    let enc = crate::encoder::load_with(&a.encoder, &opts)?;
    let start = std::time::Instant::now();
    let vecs = enc.encode(&texts)?;
    let secs = start.elapsed().as_secs_f64();
    tracing::info!(
        "encoded {} sentences in {secs:.3} s ({:.1} sentences/s)",
        texts.len(),
        texts.len() as f64 / secs.max(1e-9)
    );
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for v in &vecs {
        writeln!(out, "{}", serde_json::to_string(v)?)?;
    }
    out.flush()?;
    Ok(())
}
