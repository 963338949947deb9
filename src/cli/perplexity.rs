//! `stylerl perplexity`: per-text mean negative log-likelihood under the model.
use super::args::ModelOpts;
use super::prompts::model_and_inputs;
use crate::infer::generate::left_pad;
use crate::infer::scoring::token_logprobs;
use anyhow::{bail, Result};
use std::io::Write;
use std::path::PathBuf;
use tch::Kind;

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
    let _g = tch::no_grad_guard();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for chunk in ids.chunks(a.batch_size.max(1)) {
        let rows: Vec<&[i64]> = chunk.iter().map(|r| r.as_slice()).collect();
        let (ids_t, mask) = left_pad(&rows, 0);
        let lp = token_logprobs(
            &model,
            &ids_t.to_device(model.device),
            Some(&mask.to_device(model.device)),
            1,
            1.0,
        );
        let lp = lp.to_kind(Kind::Double).to_device(tch::Device::Cpu);
        let t = ids_t.size()[1] as usize;
        for (r, row) in chunk.iter().enumerate() {
            // Left-padded: the row's scored targets are its last len-1 positions.
            let n = row.len();
            let sum = lp
                .get(r as i64)
                .narrow(0, (t - n) as i64, (n - 1) as i64)
                .sum(Kind::Double)
                .double_value(&[]);
            let mean_nll = -sum / (n - 1) as f64;
            writeln!(
                out,
                "{}",
                serde_json::json!({"tokens": n, "mean_nll": mean_nll, "perplexity": mean_nll.exp()})
            )?;
        }
    }
    Ok(())
}
