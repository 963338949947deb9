//! Batched generation with a preallocated KV cache and prefix sharing.
//!
//! Prompts of different lengths are left-padded into one batch. With `share_prefix`, each
//! prompt's KV is computed once and copied to its G sample rows after the prompt pass (what
//! GRPO needs); without it every (prompt, sample) row runs its own prompt pass. With
//! `common_prefix`, the tokens every prompt of the batch starts with (a prompted baseline's
//! shared style examples) run once and their KV is copied to every row. Rows that hit an EOS
//! id stop; finished rows are dropped from the batch as they accumulate.
use super::sampling::{sample, SamplingConfig};
use crate::model::kv_cache::KvCache;
use crate::model::llama::Llama;
use crate::rng::{sequence_rng, SplitMix64};
use anyhow::{bail, Result};
use std::time::Instant;
use tch::{Kind, Tensor};

#[derive(Debug, Clone)]
pub struct GenerateConfig {
    pub max_new_tokens: usize,
    pub sampling: SamplingConfig,
    pub seed: u64,
    /// Any of these ends a sequence (the EOS token is kept in `tokens`). Empty: never stop early.
    pub eos_ids: Vec<i64>,
    /// Token used for left padding (never attended to).
    pub pad_id: i64,
    /// Compute each prompt's KV once and share it among its samples.
    pub share_prefix: bool,
    /// Run the tokens that every prompt of the batch starts with once (batch 1) and copy
    /// their KV to every row; pays off when prompts share a long head (style examples).
    pub common_prefix: bool,
    /// Added to a prompt's index when seeding its random streams, so a prompt sampled in a
    /// later chunk of a long list gets the same samples as in one big batch.
    pub rng_prompt_offset: usize,
}

impl Default for GenerateConfig {
    fn default() -> Self {
        Self {
            max_new_tokens: 64,
            sampling: SamplingConfig::default(),
            seed: 0,
            eos_ids: vec![],
            pad_id: 0,
            share_prefix: true,
            common_prefix: false,
            rng_prompt_offset: 0,
        }
    }
}

/// The one way a generation config is built: start from a model's stop and pad tokens and
/// set what the caller decides.
impl GenerateConfig {
    /// The model's EOS ids (config.json plus the tokenizer's) and pad id; the rest default.
    pub fn for_model(
        config: &crate::model::LlamaConfig,
        tok: Option<&crate::model::Tokenizer>,
    ) -> GenerateConfig {
        GenerateConfig {
            eos_ids: eos_ids(config, tok),
            pad_id: pad_id(config, tok),
            ..GenerateConfig::default()
        }
    }

    pub fn max_new_tokens(self, max_new_tokens: usize) -> Self {
        Self {
            max_new_tokens,
            ..self
        }
    }

    pub fn sampling(self, sampling: SamplingConfig) -> Self {
        Self { sampling, ..self }
    }

    pub fn seed(self, seed: u64) -> Self {
        Self { seed, ..self }
    }

    /// Never stop at EOS (always `max_new_tokens`).
    pub fn ignore_eos(self, ignore: bool) -> Self {
        match ignore {
            true => Self {
                eos_ids: vec![],
                ..self
            },
            false => self,
        }
    }

    pub fn share_prefix(self, share_prefix: bool) -> Self {
        Self {
            share_prefix,
            ..self
        }
    }

    pub fn common_prefix(self, common_prefix: bool) -> Self {
        Self {
            common_prefix,
            ..self
        }
    }

    /// The same config for a later chunk of a prompt list starting at prompt `offset`.
    pub fn from_prompt(&self, offset: usize) -> Self {
        Self {
            rng_prompt_offset: offset,
            ..self.clone()
        }
    }
}

/// One generated continuation.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub prompt_index: usize,
    pub sample_index: usize,
    /// New tokens only; ends with the EOS id when `stopped_at_eos`.
    pub tokens: Vec<i64>,
    /// log softmax(logits / T) of each token (temperature-scaled, before top-k/top-p).
    pub logprobs: Vec<f32>,
    pub stopped_at_eos: bool,
}

#[derive(Debug, Clone, Default)]
pub struct GenerateStats {
    pub prefill_s: f64,
    pub decode_s: f64,
    pub prompt_tokens: usize,
    pub new_tokens: usize,
    /// Part of decode_s spent choosing tokens (softmax, top-k/top-p, draws, host copies).
    pub sample_s: f64,
}

/// Samples `num_samples` continuations of every prompt; returns them prompt-major
/// (prompt 0's samples 0..G, then prompt 1's, ...).
pub fn generate(
    model: &Llama,
    prompts: &[Vec<i64>],
    num_samples: usize,
    cfg: &GenerateConfig,
) -> Result<Vec<Sample>> {
    Ok(generate_with_stats(model, prompts, num_samples, cfg)?.0)
}

/// Left-pads token lists into ids [B, T] and mask [B, T] (1 = real token).
pub fn left_pad(rows: &[&[i64]], pad_id: i64) -> (Tensor, Tensor) {
    let t = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let mut ids = Vec::with_capacity(rows.len() * t);
    let mut mask = Vec::with_capacity(rows.len() * t);
    for r in rows {
        let pad = t - r.len();
        ids.extend(std::iter::repeat(pad_id).take(pad).chain(r.iter().copied()));
        mask.extend(
            std::iter::repeat(0i64)
                .take(pad)
                .chain(std::iter::repeat(1).take(r.len())),
        );
    }
    let shape = [rows.len() as i64, t as i64];
    (
        Tensor::from_slice(&ids).view(shape),
        Tensor::from_slice(&mask).view(shape),
    )
}

pub fn generate_with_stats(
    model: &Llama,
    prompts: &[Vec<i64>],
    num_samples: usize,
    cfg: &GenerateConfig,
) -> Result<(Vec<Sample>, GenerateStats)> {
    if let Some(i) = prompts.iter().position(|p| p.is_empty()) {
        bail!("prompt {i} has no tokens: every prompt needs at least one token");
    }
    if num_samples == 0 {
        bail!("num_samples_per_prompt must be at least 1");
    }
    let g = num_samples;
    let n = prompts.len() * g;
    let mut samples: Vec<Sample> = (0..n)
        .map(|r| Sample {
            prompt_index: r / g,
            sample_index: r % g,
            tokens: vec![],
            logprobs: vec![],
            stopped_at_eos: false,
        })
        .collect();
    let mut stats = GenerateStats {
        prompt_tokens: prompts.iter().map(|p| p.len()).sum(),
        ..Default::default()
    };
    if prompts.is_empty() || cfg.max_new_tokens == 0 {
        return Ok((samples, stats));
    }
    let _guard = tch::no_grad_guard();
    let dev = model.device;
    let t0 = Instant::now();
    let share = cfg.share_prefix && g > 1;
    let rows: Vec<&[i64]> = if share {
        prompts.iter().map(|p| p.as_slice()).collect()
    } else {
        (0..n).map(|r| prompts[r / g].as_slice()).collect()
    };
    // Shared-prefix rows get their room for new tokens when they are expanded below.
    let extra = if share { 0 } else { cfg.max_new_tokens as i64 };
    let (last, mut cache) = prefill(model, &rows, cfg.pad_id, extra, cfg.common_prefix);
    let mut logits = model.lm_head.forward(&last);
    let max_len = cache.len + cfg.max_new_tokens as i64;
    if share {
        let expand = Tensor::arange(prompts.len() as i64, (Kind::Int64, dev))
            .repeat_interleave_self_int(g as i64, 0, None);
        logits = logits.index_select(0, &expand);
        cache = cache.select_rows(&expand, max_len);
    }
    let mut rngs: Vec<SplitMix64> = (0..n)
        .map(|r| {
            sequence_rng(
                cfg.seed,
                (cfg.rng_prompt_offset + r / g) as u64,
                (r % g) as u64,
            )
        })
        .collect();
    // row_of[i]: which sample the i-th row of the current batch belongs to.
    let mut row_of: Vec<usize> = (0..n).collect();
    stats.prefill_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    for step in 0..cfg.max_new_tokens {
        let ts = Instant::now();
        let (tok, lp) = sample(&logits, &cfg.sampling, &mut rngs);
        let tok_host: Vec<i64> = Vec::try_from(&tok.to_device(tch::Device::Cpu))?;
        let lp_host: Vec<f32> = Vec::try_from(&lp.to_device(tch::Device::Cpu))?;
        stats.sample_s += ts.elapsed().as_secs_f64();
        let mut done = vec![false; row_of.len()];
        for (i, &s) in row_of.iter().enumerate() {
            let smp = &mut samples[s];
            smp.tokens.push(tok_host[i]);
            smp.logprobs.push(lp_host[i]);
            if cfg.eos_ids.contains(&tok_host[i]) {
                smp.stopped_at_eos = true;
                done[i] = true;
            }
        }
        stats.new_tokens += row_of.len();
        let n_done = done.iter().filter(|&&d| d).count();
        if n_done == row_of.len() || step + 1 == cfg.max_new_tokens {
            break;
        }
        let mut next = tok.unsqueeze(1);
        if n_done > 0 {
            // Drop finished rows (their cache, logits source and RNG) so they cost nothing more.
            let keep: Vec<i64> = (0..row_of.len() as i64)
                .filter(|&i| !done[i as usize])
                .collect();
            let keep_t = Tensor::from_slice(&keep).to_device(dev);
            cache = cache.select_rows(&keep_t, max_len);
            next = next.index_select(0, &keep_t);
            row_of = keep.iter().map(|&i| row_of[i as usize]).collect();
            rngs = keep.iter().map(|&i| rngs[i as usize].clone()).collect();
        }
        let h = crate::model::fused_step::forward_hidden(model, &next, &mut cache);
        logits = model.lm_head.forward(&h.select(1, 0));
    }
    stats.decode_s = t1.elapsed().as_secs_f64();
    Ok((samples, stats))
}

/// A common head shorter than this runs with the rest of the prompt: the batch-1 pass and
/// the cache copy would cost about what they save.
pub const MIN_COMMON_PREFIX: usize = 16;

/// How many leading tokens every row shares, leaving each row at least one token of its own
/// (the last prompt token's logits start decoding).
pub fn common_prefix_len(rows: &[&[i64]]) -> usize {
    let Some(first) = rows.first() else {
        return 0;
    };
    let shortest = rows.iter().map(|r| r.len()).min().unwrap_or(0);
    let mut c = 0;
    while c + 1 < shortest && rows.iter().all(|r| r[c] == first[c]) {
        c += 1;
    }
    c
}

/// The prompt pass over `rows` (generation and training scoring share it): the final hidden
/// state [B, H] at each row's last token and the cache, with room for `extra` more tokens. With `common_prefix`, a shared head of at least
/// [`MIN_COMMON_PREFIX`] tokens runs once and the rows' remaining tokens follow it left-padded;
/// position ids come from the mask and pad slots are never attended, so every row sees the
/// same positions and keys as in one left-padded pass.
pub(crate) fn prefill(
    model: &Llama,
    rows: &[&[i64]],
    pad_id: i64,
    extra: i64,
    common_prefix: bool,
) -> (Tensor, KvCache) {
    let dev = model.device;
    let c = if common_prefix && rows.len() > 1 {
        common_prefix_len(rows)
    } else {
        0
    };
    let (head, rest): (Option<KvCache>, Vec<&[i64]>) = if c >= MIN_COMMON_PREFIX {
        let ids = Tensor::from_slice(&rows[0][..c])
            .view([1, c as i64])
            .to_device(dev);
        let mut one = model.new_cache(1, c as i64);
        // Only the keys/values this pass leaves in the cache are needed.
        let _ = model.forward_hidden(&ids, None, Some(&mut one));
        (Some(one), rows.iter().map(|r| &r[c..]).collect())
    } else {
        (None, rows.to_vec())
    };
    let (ids, mask) = left_pad(&rest, pad_id);
    let t = ids.size()[1];
    let mut cache = match head {
        Some(one) => {
            let every = Tensor::zeros([rows.len() as i64], (Kind::Int64, dev));
            one.select_rows(&every, c as i64 + t + extra)
        }
        None => model.new_cache(rows.len() as i64, t + extra),
    };
    let hidden = model.forward_hidden(
        &ids.to_device(dev),
        Some(&mask.to_device(dev)),
        Some(&mut cache),
    );
    (hidden.select(1, t - 1), cache)
}

/// Ids that end a sequence: config.json's (and generation_config.json's) EOS ids plus the
/// tokenizer's `eos_token` (chat models often end turns with it).
pub fn eos_ids(
    config: &crate::model::LlamaConfig,
    tok: Option<&crate::model::Tokenizer>,
) -> Vec<i64> {
    let mut eos = config.eos_token_ids.clone();
    if let Some(e) = tok.and_then(|t| t.special_id("eos_token")) {
        if !eos.contains(&e) {
            eos.push(e);
        }
    }
    eos
}

/// Padding id: config.json's pad_token_id, else the tokenizer's pad token, else the first
/// EOS id, else 0. Padded positions are never attended, so the choice never changes outputs.
pub fn pad_id(config: &crate::model::LlamaConfig, tok: Option<&crate::model::Tokenizer>) -> i64 {
    config
        .pad_token_id
        .or_else(|| tok.and_then(|t| t.special_id("pad_token")))
        .or_else(|| eos_ids(config, tok).first().copied())
        .unwrap_or(0)
}
