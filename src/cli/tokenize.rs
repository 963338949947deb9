//! `stylerl tokenize`: token ids of JSON-string lines with a model directory's tokenizer.json.
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
