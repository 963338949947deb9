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

#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    #[arg(long)]
    pub model: PathBuf,
    /// Render prompts through the chat template (user turn, generation prompt).
    #[arg(long)]
    pub chat: bool,
    #[arg(long, conflicts_with = "input")]
    pub prompt: Option<String>,
    /// A file of prompts: JSON lines of strings, or plain text lines.
    #[arg(long)]
    pub input: Option<PathBuf>,
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
    /// Prompts generated together in one batch.
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// Print JSON lines (prompt, text, token ids, logprobs) instead of plain text.
    #[arg(long)]
    pub json: bool,
    #[arg(long, default_value = "cpu")]
    pub device: String,
    #[arg(long, default_value = "f32")]
    pub dtype: String,
}

#[derive(clap::Args, Debug)]
pub struct PerplexityArgs {
    #[arg(long)]
    pub model: PathBuf,
    /// Text file: one text per line (or JSON lines of strings).
    #[arg(long)]
    pub input: PathBuf,
    #[arg(long, default_value = "cpu")]
    pub device: String,
    #[arg(long, default_value = "f32")]
    pub dtype: String,
}

#[derive(clap::Args, Debug)]
pub struct LogitsArgs {
    #[arg(long)]
    pub model: PathBuf,
    /// JSON-lines file of prompts (strings).
    #[arg(long)]
    pub input: PathBuf,
    /// Output safetensors file: one tensor `logits_<i>` of shape [len, vocab] per prompt.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value = "cpu")]
    pub device: String,
    #[arg(long, default_value = "f32")]
    pub dtype: String,
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
pub fn generate(_a: &GenerateArgs) -> anyhow::Result<()> {
    anyhow::bail!("generate is not built yet")
}
pub fn perplexity(_a: &PerplexityArgs) -> anyhow::Result<()> {
    anyhow::bail!("perplexity is not built yet")
}
pub fn logits(_a: &LogitsArgs) -> anyhow::Result<()> {
    anyhow::bail!("logits is not built yet")
}
