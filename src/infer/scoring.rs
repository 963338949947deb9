//! Per-token log-probabilities of given tokens, for SFT losses and GRPO ratios.
//!
//! Uses the same `logprobs_at_temperature` (logits / T, then log_softmax in f32) as sampling,
//! so a completion scored here at the sampling temperature reproduces the log-probs that
//! `generate` reported. Gradients flow into adapter parameters when they require grad.
use super::generate::prefill;
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
/// [`super::generate::MIN_COMMON_PREFIX`] tokens) runs once for all P prompts. Gradients from every row flow
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

/// The prompts' pass through [`prefill`] (so the head all prompts share runs once): the last
/// position's hidden state [P, H] and the filled cache. The prompts' real tokens are read back
/// from the left-padded ids and mask (P rows of a few dozen tokens: a cheap host copy).
fn prompt_pass(model: &Llama, prompt_ids: &Tensor, prompt_mask: &Tensor) -> (Tensor, KvCache) {
    let host = |t: &Tensor| -> Vec<i64> {
        Vec::try_from(
            &t.to_device(tch::Device::Cpu)
                .to_kind(tch::Kind::Int64)
                .reshape([-1]),
        )
        .expect("prompt ids and mask are integer tensors")
    };
    let lp = prompt_ids.size()[1] as usize;
    let (ids, mask) = (host(prompt_ids), host(prompt_mask));
    let rows: Vec<Vec<i64>> = ids
        .chunks(lp)
        .zip(mask.chunks(lp))
        .map(|(r, m)| {
            r.iter()
                .zip(m)
                .filter(|(_, &m)| m > 0)
                .map(|(&t, _)| t)
                .collect()
        })
        .collect();
    let refs: Vec<&[i64]> = rows.iter().map(|r| r.as_slice()).collect();
    // Pads are never attended, so their id does not matter.
    prefill(model, &refs, 0, 0, true)
}

/// Mean negative log-likelihood of tokens 2..n of each row given the tokens before it
/// (transformers' `labels=input_ids` loss), in batches of `batch_size` left-padded rows;
/// `None` for a row of fewer than 2 tokens. Runs without gradients.
pub fn mean_nll(model: &Llama, rows: &[Vec<i64>], batch_size: usize) -> Vec<Option<f64>> {
    let _g = tch::no_grad_guard();
    let mut out = vec![None; rows.len()];
    let scored: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].len() >= 2).collect();
    for chunk in scored.chunks(batch_size.max(1)) {
        let batch: Vec<&[i64]> = chunk.iter().map(|&i| rows[i].as_slice()).collect();
        let (ids, mask) = super::generate::left_pad(&batch, 0);
        let lp = token_logprobs(
            model,
            &ids.to_device(model.device),
            Some(&mask.to_device(model.device)),
            1,
            1.0,
        )
        .to_kind(tch::Kind::Double)
        .to_device(tch::Device::Cpu);
        let t = ids.size()[1] as usize;
        for (r, &i) in chunk.iter().enumerate() {
            // Left-padded: the row's scored targets are its last len − 1 positions.
            let n = rows[i].len();
            let sum = lp
                .get(r as i64)
                .narrow(0, (t - n) as i64, (n - 1) as i64)
                .sum(tch::Kind::Double)
                .double_value(&[]);
            out[i] = Some(-sum / (n - 1) as f64);
        }
    }
    out
}
