//! `stylerl perplexity`: per-text mean negative log-likelihood under the model.
use super::args::ModelOpts;
use super::prompts::model_and_inputs;
use crate::infer::scoring::mean_nll;
use anyhow::{bail, Result};
use std::io::Write;
use std::path::PathBuf;

/// Prints {"tokens", "mean_nll", "perplexity"} per text: the mean negative log-likelihood of
/// tokens 2..n given the tokens before them (transformers' `labels=input_ids` loss). A BOS
/// token is prepended exactly when the tokenizer's own post-processor adds one (as
/// transformers' `tokenizer(text)` does); `tokens` counts it.
#[derive(clap::Args, Debug)]
pub struct PerplexityArgs {
    #[command(flatten)]
    pub m: ModelOpts,
    /// Text file: one text per line (or JSON lines of strings).
    #[arg(long)]
    pub input: PathBuf,
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
}

/// Mean NLL of tokens 2..n given the tokens before them (transformers' labels=input_ids loss).
/// The tokenizer's own post-processor decides whether a BOS token is prepended.
pub fn perplexity(a: &PerplexityArgs) -> Result<()> {
    crate::config::check::at_least_one("--batch-size", a.batch_size as u64)?;
    let (model, ids) = model_and_inputs(&a.m, &a.input)?;
    for (i, x) in ids.iter().enumerate() {
        if x.len() < 2 {
            bail!(
                "{} text {}: {} token(s); perplexity needs at least 2",
                a.input.display(),
                i + 1,
                x.len()
            );
        }
    }
    // A batch's logits [rows, tokens, vocab] in f32, with the log-softmax copy beside them.
    let rows = a.batch_size.min(ids.len()) as f64;
    let longest = ids.iter().map(|x| x.len()).max().unwrap_or(0) as f64;
    crate::util::check_fits(
        rows * longest * model.config.vocab_size as f64 * 4.0 * 2.0,
        &format!(
            "scoring {rows} text(s) of up to {longest} tokens at once (--batch-size {})",
            a.batch_size
        ),
        "lower --batch-size",
    )?;
    let nll = mean_nll(&model, &ids, a.batch_size);
    if let Some(i) = nll.iter().position(|m| !m.is_some_and(f64::is_finite)) {
        bail!(
            "{} text {}: the model gives a non-finite log-likelihood (its weights hold NaN or inf); check or re-import the model",
            a.input.display(),
            i + 1
        );
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for (row, m) in ids.iter().zip(nll) {
        let mean_nll = m.unwrap_or_default();
        writeln!(
            out,
            "{}",
            serde_json::json!({"tokens": row.len(), "mean_nll": mean_nll, "perplexity": mean_nll.exp()})
        )?;
    }
    Ok(())
}
