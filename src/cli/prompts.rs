//! Reading the model commands' inputs: prompt files, tokenizing (through the chat template
//! when asked), and the context-length check.
use super::args::ModelOpts;
use crate::model::chat::ChatTemplate;
use crate::model::tokenizer::Tokenizer;
use crate::model::Llama;
use anyhow::{bail, Context, Result};
use std::path::Path;

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

/// The generation sizes a command was given, with the flags that set them (for messages).
pub struct GenerationSize<'a> {
    /// Prompts generated together (the batch-size flag, at most the number of prompts).
    pub batch: usize,
    pub samples: usize,
    pub max_new_tokens: usize,
    /// Flag names: batch size, samples per prompt, new tokens.
    pub flags: [&'a str; 3],
}

/// Refuses, before any cache is allocated, a generation that runs past the model's context
/// (prompt + new tokens > max_position_embeddings; GPT-2's learned positions end there) or
/// whose KV cache (layers·2·rows·tokens·kv_heads·head_dim·bytes), logits and prompt pass
/// need more memory than the machine has available.
pub fn check_generation(
    cfg: &crate::model::LlamaConfig,
    kind: tch::Kind,
    ids: &[Vec<i64>],
    what: &str,
    g: &GenerationSize,
) -> Result<()> {
    let [batch_flag, samples_flag, new_flag] = g.flags;
    let ctx = cfg.max_position_embeddings;
    let key = match cfg.family {
        crate::model::config::Family::Gpt2 => "n_positions",
        _ => "max_position_embeddings",
    };
    if let Some((i, p)) = ids.iter().enumerate().max_by_key(|(_, p)| p.len()) {
        let total = p.len() as u128 + g.max_new_tokens as u128;
        if total > ctx.max(0) as u128 {
            bail!(
                "{what} {}: {} tokens + {new_flag} {} = {total}, more than the model's context of {ctx} ({key}): lower {new_flag} to at most {} or shorten the {what}",
                i + 1,
                p.len(),
                g.max_new_tokens,
                (ctx - p.len() as i64).max(0)
            );
        }
    }
    let longest = ids.iter().map(|p| p.len()).max().unwrap_or(0) as f64;
    let prompts = g.batch.min(ids.len()).max(1) as f64;
    let rows = prompts * g.samples as f64;
    let seq = longest + g.max_new_tokens as f64;
    let elem = match kind {
        tch::Kind::Float => 4.0,
        _ => 2.0,
    };
    let (layers, kv, hd) = (
        cfg.num_hidden_layers as f64,
        cfg.num_key_value_heads as f64,
        cfg.head_dim as f64,
    );
    let cache = layers * 2.0 * rows * seq * kv * hd * elem;
    // Logits and the sampler's f32 copies of them; each sample's tokens and logprobs.
    let per_row = 4.0 * 4.0 * cfg.vocab_size as f64 + 16.0 * g.max_new_tokens as f64;
    // The prompt pass: attention scores and the MLP's activations of the longest prompt.
    let prefill = prompts
        * longest
        * (cfg.num_attention_heads as f64 * longest + cfg.intermediate_size as f64)
        * 4.0;
    crate::util::check_fits(
        cache + rows * per_row + prefill,
        &format!(
            "generating {} row(s) at once ({} prompt(s) × {samples_flag} {}) of up to {} tokens ({new_flag} {})",
            rows,
            prompts,
            g.samples,
            seq,
            g.max_new_tokens
        ),
        &format!("lower {samples_flag}, {batch_flag} or {new_flag}"),
    )
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
