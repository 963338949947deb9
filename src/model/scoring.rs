//! Per-token log-probabilities of given tokens, for SFT losses and GRPO ratios.
//!
//! Uses the same `logprobs_at_temperature` (logits / T, then log_softmax in f32) as sampling,
//! so a completion scored here at the sampling temperature reproduces the log-probs that
//! `generate` reported. Gradients flow into adapter parameters when they require grad.
use super::llama::Llama;
use super::sampling::logprobs_at_temperature;
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
