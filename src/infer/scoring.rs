//! Per-token log-probabilities of given tokens, for SFT losses and GRPO ratios.
//!
//! Uses the same `logprobs_at_temperature` (logits / T, then log_softmax in f32) as sampling,
//! so a completion scored here at the sampling temperature reproduces the log-probs that
//! `generate` reported. Gradients flow into adapter parameters when they require grad.
use super::generate::{common_prefix_len, left_pad, MIN_COMMON_PREFIX};
use super::sampling::logprobs_at_temperature;
use crate::model::kv_cache::KvCache;
use crate::model::llama::Llama;
use tch::Tensor;

/// Log-probs [B, T − start] of `input_ids[:, t]` given `input_ids[:, ..t]` for t in start..T.
/// `attention_mask` [B, T] (1 = real token) allows padding on either side; positions at
/// padding give meaningless values that callers mask out. `start` ≥ 1.
pub fn token_logprobs(
    model: &Llama,
    input_ids: &Tensor,
    attention_mask: Option<&Tensor>,
    start: i64,
    temperature: f64,
) -> Tensor {
    let t = input_ids.size()[1];
    assert!(
        start >= 1 && start < t,
        "token_logprobs: start {start} must be in 1..{t}"
    );
    let hidden = model.forward_hidden(input_ids, attention_mask, None);
    // Only the positions that predict scored tokens go through lm_head (it is the big matmul).
    let logits = model
        .lm_head
        .forward(&hidden.narrow(1, start - 1, t - start));
    let logp = logprobs_at_temperature(&logits, temperature);
    let targets = input_ids
        .narrow(1, start, t - start)
        .to_device(logp.device());
    logp.gather(-1, &targets.unsqueeze(-1), false)
        .squeeze_dim(-1)
}

/// Log-probs [n, Lc] of completions whose rows share prompts: row i continues prompt
/// `row_prompt[i]` (an index into `prompt_ids` [P, Lp], left-padded with `prompt_mask`).
/// `completion_ids` / `completion_mask` [n, Lc] are right-padded.
///
/// Each prompt runs through the model once and its keys/values are copied to its rows,
/// so a group of G samples costs P·Lp + n·Lc tokens instead of n·(Lp + Lc). The head that
/// every prompt starts with (chat template and instruction, at least
/// [`MIN_COMMON_PREFIX`] tokens) runs once for all P prompts. Gradients from every row flow
/// back through the one pass of each part. Equals [`token_logprobs`] on the concatenated
/// rows up to float rounding.
pub fn shared_prompt_logprobs(
    model: &Llama,
    prompt_ids: &Tensor,
    prompt_mask: &Tensor,
    row_prompt: &Tensor,
    completion_ids: &Tensor,
    completion_mask: &Tensor,
    temperature: f64,
) -> Tensor {
    let (_, lp) = prompt_ids.size2().expect("prompt_ids must be [P, Lp]");
    let (n, lc) = completion_ids
        .size2()
        .expect("completion_ids must be [n, Lc]");
    assert!(lp >= 1 && lc >= 1, "empty prompt or completion block");
    let dev = model.device;
    let rows = row_prompt.to_device(dev);
    let (h_last, cache) = prompt_pass(model, prompt_ids, prompt_mask);
    let used = cache.len;
    // The last prompt position (always real: prompts are left-padded) predicts token 0.
    let first = h_last.index_select(0, &rows).unsqueeze(1);
    let hidden = if lc > 1 {
        // The last completion token predicts nothing that is scored, so it is not fed.
        let mut rows_cache = cache.select_rows(&rows, used + lc - 1);
        let h = model.forward_hidden(
            &completion_ids.narrow(1, 0, lc - 1),
            Some(&completion_mask.narrow(1, 0, lc - 1)),
            Some(&mut rows_cache),
        );
        Tensor::cat(&[first, h], 1)
    } else {
        first
    };
    debug_assert_eq!(hidden.size()[0], n);
    let logp = logprobs_at_temperature(&model.lm_head.forward(&hidden), temperature);
    logp.gather(-1, &completion_ids.to_device(dev).unsqueeze(-1), false)
        .squeeze_dim(-1)
}

/// The prompts' pass: the last position's hidden state [P, H] and the filled cache. With a
/// common head (see [`common_prefix_len`]) the head runs at batch 1 and each prompt's
/// remaining tokens follow it, left-padded; position ids come from the mask, so every
/// prompt sees the positions and keys of a full pass.
fn prompt_pass(model: &Llama, prompt_ids: &Tensor, prompt_mask: &Tensor) -> (Tensor, KvCache) {
    let (p, lp) = prompt_ids.size2().expect("prompt_ids must be [P, Lp]");
    let dev = model.device;
    let real = |ids: &Tensor, mask: &Tensor| -> Option<Vec<Vec<i64>>> {
        let ids: Vec<i64> = Vec::try_from(&ids.to_device(tch::Device::Cpu).reshape([-1])).ok()?;
        let mask: Vec<i64> = Vec::try_from(
            &mask
                .to_device(tch::Device::Cpu)
                .to_kind(tch::Kind::Int64)
                .reshape([-1]),
        )
        .ok()?;
        Some(
            (0..p as usize)
                .map(|r| {
                    let span = r * lp as usize..(r + 1) * lp as usize;
                    ids[span.clone()]
                        .iter()
                        .zip(&mask[span])
                        .filter(|(_, &m)| m > 0)
                        .map(|(&t, _)| t)
                        .collect()
                })
                .collect(),
        )
    };
    let head = if p > 1 {
        real(prompt_ids, prompt_mask)
            .map(|rows| {
                let refs: Vec<&[i64]> = rows.iter().map(|r| r.as_slice()).collect();
                (common_prefix_len(&refs), rows)
            })
            .filter(|(c, _)| *c >= MIN_COMMON_PREFIX)
    } else {
        None
    };
    match head {
        Some((c, rows)) => {
            let ids = Tensor::from_slice(&rows[0][..c])
                .view([1, c as i64])
                .to_device(dev);
            let mut one = model.new_cache(1, c as i64);
            // Only the keys/values this pass leaves in the cache are needed.
            let _ = model.forward_hidden(&ids, None, Some(&mut one));
            let rest: Vec<&[i64]> = rows.iter().map(|r| &r[c..]).collect();
            let (r_ids, r_mask) = left_pad(&rest, 0);
            let t = r_ids.size()[1];
            let every = Tensor::zeros([p], (tch::Kind::Int64, dev));
            let mut cache = one.select_rows(&every, c as i64 + t);
            let h = model.forward_hidden(
                &r_ids.to_device(dev),
                Some(&r_mask.to_device(dev)),
                Some(&mut cache),
            );
            (h.select(1, t - 1), cache)
        }
        None => {
            let mut cache = model.new_cache(p, lp);
            let h = model.forward_hidden(prompt_ids, Some(prompt_mask), Some(&mut cache));
            (h.select(1, lp - 1), cache)
        }
    }
}
