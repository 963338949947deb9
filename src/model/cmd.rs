//! CLI commands over a model directory: tokenize, generate, perplexity, logits.
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct TokenizeArgs {
    /// Model directory holding tokenizer.json.
    #[arg(long)]
    pub model: PathBuf,
    /// JSON-lines file of strings (one JSON string per line); ids are printed one JSON array per line.
    #[arg(long)]
    pub input: PathBuf,
    /// Also decode the ids and print {"ids": [...], "decoded": "..."}.
    #[arg(long)]
    pub decode: bool,
}

/// Options shared by every command that loads a model.
#[derive(clap::Args, Debug, Clone)]
pub struct ModelOpts {
    /// Hugging Face Llama-family directory (config.json, safetensors, tokenizer.json).
    #[arg(long)]
    pub model: PathBuf,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Compute dtype: f32, bf16 or f16 (weights are converted on load).
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// Build the model from config.json alone with random weights (speed/memory work).
    #[arg(long)]
    pub random_init: bool,
    /// CPU threads for libtorch (default: libtorch's choice).
    #[arg(long)]
    pub threads: Option<i32>,
    /// A PEFT LoRA adapter directory applied on top of the model, optionally with a weight
    /// (`runs/sft/adapter:0.5`). Repeatable: the adapters' deltas add up, each times its weight.
    #[arg(long = "adapter", value_name = "PATH[:WEIGHT]")]
    pub adapters: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub m: ModelOpts,
    /// Render prompts through the chat template (user turn, generation prompt).
    #[arg(long)]
    pub chat: bool,
    /// System message for --chat.
    #[arg(long)]
    pub system: Option<String>,
    #[arg(long, conflicts_with = "input")]
    pub prompt: Option<String>,
    /// A file of prompts: JSON lines (strings, or arrays of token ids), or plain text lines.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// With --input: JSON lines are objects and the prompt is this field (e.g. `question`).
    #[arg(long, requires = "input")]
    pub input_field: Option<String>,
    /// Generate with the adapters off (base) and on, and print both for each prompt.
    #[arg(long)]
    pub compare: bool,
    #[arg(long, default_value_t = 64)]
    pub max_new_tokens: usize,
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f64,
    #[arg(long)]
    pub top_p: Option<f64>,
    #[arg(long)]
    pub top_k: Option<i64>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long)]
    pub greedy: bool,
    /// Samples per prompt (they share the prompt's KV cache).
    #[arg(long, default_value_t = 1)]
    pub num_samples: usize,
    /// Prompts generated together in one batch.
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// Print JSON lines (prompt, text, token ids, logprobs) instead of plain text.
    #[arg(long)]
    pub json: bool,
    /// Never stop at EOS (always max_new_tokens; for benchmarks).
    #[arg(long)]
    pub ignore_eos: bool,
    /// Only print each prompt as the model would see it ({"text", "ids"} JSON lines); no model is loaded.
    #[arg(long)]
    pub render_only: bool,
    /// With --chat: leave out the assistant turn opener (add_generation_prompt=false).
    #[arg(long)]
    pub no_generation_prompt: bool,
    /// Print one JSON timing line to stderr (load, prefill, decode seconds, tokens/s).
    #[arg(long)]
    pub timing: bool,
}

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

#[derive(clap::Args, Debug)]
pub struct LogitsArgs {
    #[command(flatten)]
    pub m: ModelOpts,
    /// JSON-lines file of prompts (strings, tokenized with the tokenizer's specials, or id arrays).
    #[arg(long)]
    pub input: PathBuf,
    /// Output safetensors file: `logits_<i>` [len, vocab] (f32) and `input_ids_<i>` per prompt.
    #[arg(long)]
    pub out: PathBuf,
    /// Run all prompts as one left-padded batch instead of one by one.
    #[arg(long)]
    pub batched: bool,
}

pub fn tokenize(a: &TokenizeArgs) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::io::Write;
    let path = a.model.join("tokenizer.json");
    let tok = tokenizers::Tokenizer::from_file(&path)
        .map_err(|e| anyhow::anyhow!("cannot load {}: {e}", path.display()))?;
    let text = std::fs::read_to_string(&a.input)
        .with_context(|| format!("cannot read {}", a.input.display()))?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let s: String = serde_json::from_str(line).with_context(|| {
            format!(
                "{} line {}: expected a JSON string",
                a.input.display(),
                n + 1
            )
        })?;
        // Special tokens written in the text are parsed as specials, as transformers does.
        let enc = tok
            .encode(s.as_str(), false)
            .map_err(|e| anyhow::anyhow!("tokenize: {e}"))?;
        let ids = enc.get_ids();
        if a.decode {
            let decoded = tok
                .decode(ids, false)
                .map_err(|e| anyhow::anyhow!("decode: {e}"))?;
            writeln!(
                out,
                "{}",
                serde_json::json!({"ids": ids, "decoded": decoded})
            )?;
        } else {
            writeln!(out, "{}", serde_json::to_string(ids)?)?;
        }
    }
    Ok(())
}
pub use super::cmd_run::generate;
pub use super::cmd_score::{logits, perplexity};
