//! Bounds checked before generation starts: the model's context and the memory the KV
//! cache, logits and prompt pass will take.
use anyhow::{bail, Result};

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
