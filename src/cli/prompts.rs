//! Reading the model commands' inputs: prompt files, tokenizing (through the chat template
//! when asked), and the context-length check.
use super::args::ModelOpts;
use crate::model::chat::ChatTemplate;
use crate::model::tokenizer::Tokenizer;
use crate::model::Llama;
use anyhow::{bail, Context, Result};
use std::path::Path;

pub use crate::infer::limits::{check_generation, GenerationSize};

/// A prompt line: text to tokenize, or token ids given directly.
pub enum PromptInput {
    Text(String),
    Ids(Vec<i64>),
}

/// Reads JSON lines (strings or id arrays); a line that is not JSON is taken as plain text.
pub fn read_prompts(path: &Path) -> Result<Vec<PromptInput>> {
    read_prompts_field(path, None)
}

/// As [`read_prompts`]; with `field`, JSON object lines give that field's string.
pub fn read_prompts_field(path: &Path, field: Option<&str>) -> Result<Vec<PromptInput>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        out.push(match serde_json::from_str::<serde_json::Value>(line) {
            Ok(serde_json::Value::String(s)) => PromptInput::Text(s),
            Ok(serde_json::Value::Object(o)) if field.is_some() => {
                let f = field.unwrap_or_default();
                match o.get(f) {
                    Some(serde_json::Value::String(s)) => PromptInput::Text(s.clone()),
                    _ => bail!(
                        "{} line {}: no string field '{f}' (set --input-field)",
                        path.display(),
                        n + 1
                    ),
                }
            }
            Ok(serde_json::Value::Array(a)) => PromptInput::Ids(
                a.iter()
                    .map(|x| x.as_i64())
                    .collect::<Option<Vec<_>>>()
                    .with_context(|| {
                        format!(
                            "{} line {}: an array must hold token ids",
                            path.display(),
                            n + 1
                        )
                    })?,
            ),
            _ => PromptInput::Text(line.to_string()),
        });
    }
    if out.is_empty() {
        bail!("{} has no prompts", path.display());
    }
    Ok(out)
}

pub fn tokenizer_if_needed(dir: &Path, prompts: &[PromptInput]) -> Result<Option<Tokenizer>> {
    let needs = prompts.iter().any(|p| matches!(p, PromptInput::Text(_)));
    if needs || dir.join("tokenizer.json").exists() {
        Ok(Some(Tokenizer::from_dir(dir)?))
    } else {
        Ok(None)
    }
}

/// How text prompts become token ids.
#[derive(Clone, Copy)]
pub struct ChatOpts<'a> {
    pub template: &'a ChatTemplate,
    pub system: Option<&'a str>,
    pub add_generation_prompt: bool,
}

/// The prompt as the model sees it: text (rendered through the chat template when given) and ids.
pub fn encode_full(
    tok: &Option<Tokenizer>,
    p: &PromptInput,
    chat: Option<ChatOpts>,
) -> Result<(Option<String>, Vec<i64>)> {
    let t = match p {
        PromptInput::Ids(ids) => return Ok((None, ids.clone())),
        PromptInput::Text(t) => t,
    };
    let tok = tok
        .as_ref()
        .context("text prompts need the model directory's tokenizer.json")?;
    match chat {
        // Like apply_chat_template(tokenize=True): the rendered text already holds its specials.
        Some(c) => {
            let text = c
                .template
                .render_user(c.system, t, c.add_generation_prompt)?;
            let ids = tok.encode(&text, false)?;
            Ok((Some(text), ids))
        }
        None => Ok((Some(t.clone()), tok.encode(t, true)?)),
    }
}

pub fn encode(
    tok: &Option<Tokenizer>,
    p: &PromptInput,
    chat: Option<ChatOpts>,
) -> Result<Vec<i64>> {
    Ok(encode_full(tok, p, chat)?.1)
}

/// Refuses a prompt longer than the model's context (max_position_embeddings) before any
/// cache or attention buffer is allocated for it; names the prompt (1-based).
pub fn check_context(ids: &[Vec<i64>], max_positions: i64, what: &str) -> Result<()> {
    for (i, p) in ids.iter().enumerate() {
        if p.len() as i64 > max_positions {
            bail!(
                "{what} {}: {} tokens, more than the model's context of {max_positions} (max_position_embeddings): shorten it",
                i + 1,
                p.len()
            );
        }
    }
    Ok(())
}

/// Refuses a token id outside the model's vocabulary (an id prompt, or a tokenizer with more
/// tokens than the model's embedding) before it reaches the embedding lookup.
pub fn check_ids(ids: &[Vec<i64>], vocab_size: i64, what: &str) -> Result<()> {
    for (i, p) in ids.iter().enumerate() {
        if let Some(&t) = p.iter().find(|&&t| t < 0 || t >= vocab_size) {
            bail!(
                "{what} {}: token id {t} is outside the model's vocabulary (0..{}, vocab_size {vocab_size}): use ids the model knows",
                i + 1,
                vocab_size - 1
            );
        }
    }
    Ok(())
}

/// The model (with its adapters) and the input file's lines as token ids, without a chat
/// template: what the scoring commands start from. Ids outside the vocabulary and texts
/// longer than the context are refused before the model loads.
pub fn model_and_inputs(m: &ModelOpts, input: &Path) -> Result<(Llama, Vec<Vec<i64>>)> {
    m.check_dir()?;
    let prompts = read_prompts(input)?;
    let cfg = crate::model::LlamaConfig::from_dir(&m.model)?;
    let tok = tokenizer_if_needed(&m.model, &prompts)?;
    let ids: Vec<Vec<i64>> = prompts
        .iter()
        .map(|p| encode(&tok, p, None))
        .collect::<Result<_>>()?;
    let what = format!("{} prompt", input.display());
    check_ids(&ids, cfg.vocab_size, &what)?;
    check_context(&ids, cfg.max_position_embeddings, &what)?;
    let model = m.load()?;
    Ok((model, ids))
}
