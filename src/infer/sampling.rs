//! Choosing the next token from logits: greedy, temperature, top-k, top-p.
//!
//! Randomness comes from one small seeded generator per sequence (not torch's global RNG),
//! drawn as a uniform number and turned into a token by inverse CDF on the device. A
//! sequence's sample therefore depends only on (seed, prompt, sample index) and its own
//! logits, never on what else is in the batch or on how the batch was laid out.
use crate::rng::SplitMix64;
use tch::{Kind, Tensor};

#[derive(Debug, Clone)]
pub struct SamplingConfig {
    /// Argmax instead of sampling.
    pub greedy: bool,
    /// Logits are divided by this before softmax (also for the reported log-probs).
    pub temperature: f64,
    pub top_k: Option<i64>,
    pub top_p: Option<f64>,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        Self {
            greedy: false,
            temperature: 1.0,
            top_k: None,
            top_p: None,
        }
    }
}

/// Log-probabilities at temperature T: log_softmax(logits / T) in f32. The same function
/// scores sampled tokens during generation and during training, so the two agree.
pub fn logprobs_at_temperature(logits: &Tensor, temperature: f64) -> Tensor {
    let l = logits.to_kind(Kind::Float);
    let l = if temperature != 1.0 {
        l / temperature
    } else {
        l
    };
    l.log_softmax(-1, Kind::Float)
}

/// The tokens that may be drawn and their renormalised probabilities, from log-probs [N, V]
/// at temperature T: top-k first, then the top-p nucleus of what is left (transformers'
/// order; at least one token always survives). Returns (probs [N, C], token ids [N, C]),
/// or `None` for the ids when every token stays (C = V, vocabulary order).
/// Only the k best are ever sorted, so top-k sampling costs no full-vocabulary sort.
pub fn candidates(
    logp: &Tensor,
    top_k: Option<i64>,
    top_p: Option<f64>,
) -> (Tensor, Option<Tensor>) {
    let vocab = *logp.size().last().unwrap();
    let top_p = top_p.filter(|&p| p < 1.0);
    let (vals, idx) = match top_k.filter(|&k| k > 0 && k < vocab) {
        Some(k) => logp.topk(k, -1, true, true),
        None if top_p.is_some() => logp.sort(-1, true),
        None => return (logp.softmax(-1, Kind::Float), None),
    };
    let mut probs = vals.softmax(-1, Kind::Float);
    if let Some(p) = top_p {
        // Drop a token when the mass strictly before it already reaches p.
        let before = probs.cumsum(-1, Kind::Float) - &probs;
        probs = probs.masked_fill(&before.ge(p), 0.0);
    }
    (probs, Some(idx))
}

/// Token index per row whose CDF first exceeds u·total ([N, V] probs, u in [0,1)).
pub fn inverse_cdf(probs: &Tensor, uniforms: &[f64]) -> Tensor {
    let cdf = probs.cumsum(-1, Kind::Float);
    let vocab = *probs.size().last().unwrap();
    let total = cdf.narrow(-1, vocab - 1, 1);
    let u = Tensor::from_slice(uniforms)
        .to_kind(Kind::Float)
        .to_device(probs.device())
        .unsqueeze(1);
    let target = u * total;
    cdf.le_tensor(&target)
        .sum_dim_intlist(-1, false, Kind::Int64)
        .clamp_max(vocab - 1)
}

/// Next tokens [N] and their log-probs [N] from last-position logits [N, V].
/// The log-prob is log softmax(logits / T) at the chosen token: under the temperature-scaled
/// distribution, before top-k/top-p truncation (what the policy-gradient ratio needs).
pub fn sample(logits: &Tensor, cfg: &SamplingConfig, rngs: &mut [SplitMix64]) -> (Tensor, Tensor) {
    let logits = logits.to_kind(Kind::Float);
    let logp = logprobs_at_temperature(&logits, cfg.temperature);
    let tokens = if cfg.greedy || cfg.temperature <= 0.0 {
        logits.argmax(-1, false)
    } else {
        let (probs, ids) = candidates(&logp, cfg.top_k, cfg.top_p);
        let u: Vec<f64> = rngs.iter_mut().map(|r| r.next_f64()).collect();
        let pick = inverse_cdf(&probs, &u);
        match ids {
            Some(ids) => ids.gather(-1, &pick.unsqueeze(-1), false).squeeze_dim(-1),
            None => pick,
        }
    };
    let lp = logp
        .gather(-1, &tokens.unsqueeze(-1), false)
        .squeeze_dim(-1);
    (tokens, lp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::sequence_rng;

    #[test]
    fn rng_is_reproducible_and_streams_differ() {
        let a: Vec<u64> = (0..4).map(|_| sequence_rng(7, 1, 2).next()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(sequence_rng(7, 1, 2).next(), sequence_rng(7, 1, 3).next());
        assert_ne!(sequence_rng(7, 1, 2).next(), sequence_rng(8, 1, 2).next());
        let mut r = sequence_rng(1, 0, 0);
        let mean: f64 = (0..10000).map(|_| r.next_f64()).sum::<f64>() / 10000.0;
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
    }

    /// Token ids with non-zero probability among the candidates, sorted.
    fn kept(logits: &[f32], k: Option<i64>, p: Option<f64>) -> Vec<i64> {
        let l = Tensor::from_slice(logits)
            .unsqueeze(0)
            .log_softmax(-1, Kind::Float);
        let (probs, ids) = candidates(&l, k, p);
        let ids = ids.unwrap_or_else(|| {
            Tensor::arange(logits.len() as i64, (Kind::Int64, tch::Device::Cpu)).unsqueeze(0)
        });
        let probs: Vec<f32> = Vec::try_from(probs.squeeze()).unwrap();
        let ids: Vec<i64> = Vec::try_from(ids.squeeze()).unwrap();
        let mut v: Vec<i64> = ids
            .into_iter()
            .zip(probs)
            .filter(|(_, q)| *q > 0.0)
            .map(|(i, _)| i)
            .collect();
        v.sort();
        v
    }

    #[test]
    fn top_k_and_top_p_keep_the_right_tokens() {
        let l = [1.0f32, 3.0, 2.0, 0.0];
        assert_eq!(kept(&l, None, None), vec![0, 1, 2, 3]);
        assert_eq!(kept(&l, Some(2), None), vec![1, 2]);
        // probs ≈ [0.087, 0.644, 0.237, 0.032]: p=0.7 keeps the top two, p=0.5 only the top one.
        assert_eq!(kept(&l, None, Some(0.7)), vec![1, 2]);
        assert_eq!(kept(&l, None, Some(0.5)), vec![1]);
        // top-p works on the top-k renormalised mass: within {1,2}, token 1 has 0.73 ≥ 0.7.
        assert_eq!(kept(&l, Some(2), Some(0.7)), vec![1]);
        assert_eq!(kept(&l, Some(3), Some(0.7)), vec![1, 2]);
    }

    #[test]
    fn inverse_cdf_skips_zero_probability_tokens() {
        let p = Tensor::from_slice(&[0.0f32, 0.5, 0.0, 0.5])
            .unsqueeze(0)
            .repeat([3, 1]);
        let t: Vec<i64> = Vec::try_from(inverse_cdf(&p, &[0.0, 0.49, 0.51])).unwrap();
        assert_eq!(t, vec![1, 1, 3]);
    }
}
