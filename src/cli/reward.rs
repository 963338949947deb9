//! `stylerl reward`: reads the `[reward]` table of a TOML file (other tables, e.g. those of a GRPO
//! config, are ignored), scores one (input, output) pair and prints pretty JSON with every
//! component and every generated sentence's match. Token counts for R_length come from
//! `--tokenizer` (a model directory with tokenizer.json, or the file itself; no special
//! tokens added) when given, else from whitespace-separated words.
use crate::reward::config::RewardConfig;
use crate::reward::model::{RewardModel, Rollout};
use anyhow::{Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct RewardArgs {
    /// A TOML config with a [reward] table (reference file, encoder, weights).
    #[arg(long)]
    pub config: PathBuf,
    /// The input text that was rewritten (`@FILE` reads it from a file).
    #[arg(long)]
    pub input: String,
    /// The generated rewrite to score (`@FILE` reads it from a file).
    #[arg(long)]
    pub output: String,
    /// Override a config value, e.g. --set reward.dropout.gamma=5 (repeatable).
    #[arg(long = "set")]
    pub set: Vec<String>,
    /// Count tokens with this tokenizer (model directory or tokenizer.json); default: words.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Training step that keys the dropout draws (same seed and step, same draws).
    #[arg(long, default_value_t = 0)]
    pub step: u64,
}

/// The part of a config file `stylerl reward` reads.
#[derive(Deserialize)]
struct RewardFile {
    reward: RewardConfig,
}

fn text_arg(s: &str, what: &str) -> Result<String> {
    match s.strip_prefix('@') {
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("--{what} @{p}: cannot read the file")),
        None => Ok(s.to_string()),
    }
}

/// Counts tokens with a tokenizer when given, else whitespace words. Returns the counter too.
fn token_counter(tok: Option<&Path>) -> Result<(Box<dyn Fn(&str) -> Result<usize>>, String)> {
    let Some(p) = tok else {
        return Ok((
            Box::new(|t: &str| Ok(t.split_whitespace().count())),
            "whitespace words".into(),
        ));
    };
    let file = if p.is_dir() {
        p.join("tokenizer.json")
    } else {
        p.to_path_buf()
    };
    let t = tokenizers::Tokenizer::from_file(&file).map_err(|e| {
        anyhow::anyhow!(
            "--tokenizer {}: cannot load ({e}); give a model directory with tokenizer.json",
            file.display()
        )
    })?;
    let label = format!("tokenizer {}", file.display());
    Ok((
        Box::new(move |s: &str| {
            Ok(t.encode(s, false)
                .map_err(|e| anyhow::anyhow!("tokenizing: {e}"))?
                .get_ids()
                .len())
        }),
        label,
    ))
}

pub fn reward(a: &RewardArgs) -> Result<()> {
    let file: RewardFile = crate::config::load(&a.config, &a.set)?;
    let cfg = file.reward;
    let model = RewardModel::from_config(&cfg)?;
    let input = text_arg(&a.input, "input")?;
    let output = text_arg(&a.output, "output")?;
    let (count, counter) = token_counter(a.tokenizer.as_deref())?;
    let ro = Rollout {
        input: &input,
        output: &output,
        input_tokens: count(&input)?,
        output_tokens: count(&output)?,
    };
    let scores = model.score_batch(&[ro], a.step)?;
    let r = &scores.rewards[0];
    let refs = model.style.references();
    let sentences: Vec<serde_json::Value> = r
        .style
        .sentences
        .iter()
        .map(|s| {
            serde_json::json!({
                "sentence": s.text,
                "reference_index": s.reference,
                "reference": refs[s.reference],
                "similarity": s.similarity,
                "dropout_rate": s.dropout_rate,
                "dropped": s.dropped,
            })
        })
        .collect();
    let w = &cfg.weights;
    let out = serde_json::json!({
        "encoder": model.style.encoder_name(),
        "reference_files": cfg.reference,
        "reference_sentences": refs.len(),
        "step": a.step,
        "components": {
            "r_total": r.r_total,
            "r_style": r.r_style,
            "r_length": r.r_length,
            "r_ne_overlap": r.r_ne_overlap,
            "r_punctuation": r.r_punctuation,
            "r_rewrite": r.r_rewrite,
            "r_balance": r.r_balance,
            "r_meaning": r.r_meaning,
        },
        "edit_similarity": r.edit_similarity,
        "meaning_cos": r.meaning_cos,
        "weights": { "style": w.style, "length": w.length, "punctuation": w.punctuation, "entities": cfg.entities.weight },
        "style": {
            "aggregation": cfg.aggregation,
            "r_style_undropped": r.style.r_style_undropped,
            "n_sentences": r.style.n_sentences,
            "n_dropped": r.style.n_dropped,
            "dropout_cancelled": r.style.dropout_cancelled,
            "sentences": sentences,
        },
        "length": { "counted_with": counter, "input_tokens": r.length.input, "output_tokens": r.length.output, "limit": r.length.limit, "cache": r.length.cache },
        "entities": r.entities,
        "punctuation": r.punctuation,
        "dynamics": scores.dynamics,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
