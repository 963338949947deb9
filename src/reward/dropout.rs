//! Style reward dropout (shared/SPEC.md): static rates once per reference, a seeded draw per
//! generated sentence, and the all-dropped safeguard (applied by the caller).
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Dominance D_i = Σ_{j≠i} M_ij of each reference sentence in the similarity matrix M.
pub fn dominance(m: &[Vec<f32>]) -> Vec<f64> {
    m.iter()
        .enumerate()
        .map(|(i, row)| {
            row.iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, &v)| v as f64)
                .sum()
        })
        .collect()
}

/// Rates p_i = clip(q_i^gamma, eps_min, eps_max) with q_i = D_i / max_j D_j.
///
/// Our decisions where the method is silent: a negative D_i gives q_i = 0 (a reference
/// dissimilar to the rest dominates nothing, and a negative base would make q^gamma
/// undefined); when max D ≤ 0 (one reference sentence, or none similar to the others) no
/// reference dominates, every q_i = 0 and every rate is eps_min.
pub fn dropout_rates(m: &[Vec<f32>], gamma: f64, eps_min: f64, eps_max: f64) -> Vec<f64> {
    let d = dominance(m);
    let max = d.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    d.iter()
        .map(|&di| {
            let q = if max > 0.0 {
                (di.max(0.0) / max).min(1.0)
            } else {
                0.0
            };
            q.powf(gamma).clamp(eps_min, eps_max)
        })
        .collect()
}

/// The RNG of one batch, seeded by [`crate::rng::batch_seed`] (rand 0.8 `StdRng`, ChaCha12).
pub fn batch_rng(seed: u64, step: u64) -> StdRng {
    StdRng::seed_from_u64(crate::rng::batch_seed(seed, step))
}

/// One draw: dropped with probability `rate`. Exactly one uniform is consumed per sentence
/// whatever its rate, so one sentence's rate never shifts the draws of the next.
pub fn draw(rng: &mut StdRng, rate: f64) -> bool {
    let u: f64 = rng.gen();
    u < rate
}
