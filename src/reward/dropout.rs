//! Style reward dropout (docs/method.md#style-reward-dropout): static rates once per
//! reference, a seeded draw per generated sentence, and the all-dropped safeguard (applied by
//! the caller).
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

/// `mode = "fallback"`: the expected style contribution of one sentence when each candidate
/// reference is dropped independently with its rate and the sentence then counts against its
/// best surviving reference. `candidates` are (cosine, rate) pairs in any order; with the
/// cosines sorted descending s_1 ≥ s_2 ≥ …:
///   E = Σ_j s_j (1 − p_j) Π_{i<j} p_i  +  (Π_i p_i) · s_1
/// (the last term is the all-dropped safeguard: the undropped best). An over-used reference
/// costs the sentence only its margin over the next one, so deleting the sentence is no
/// longer the cheapest way out of it under `aggregation = "mean"`. Empty → 0.
pub fn expected_surviving_max(candidates: &[(f64, f64)]) -> f64 {
    let mut sorted: Vec<(f64, f64)> = candidates.to_vec();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
    let Some(&(best, _)) = sorted.first() else {
        return 0.0;
    };
    let (mut total, mut all_dropped) = (0.0, 1.0);
    for &(sim, rate) in &sorted {
        total += sim * (1.0 - rate) * all_dropped;
        all_dropped *= rate;
        if all_dropped == 0.0 {
            // Every later reference is reached only through this one's drop.
            return total;
        }
    }
    total + all_dropped * best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_drops_give_the_best_cosine() {
        assert_eq!(
            expected_surviving_max(&[(0.2, 0.0), (0.9, 0.0), (0.5, 0.0)]),
            0.9
        );
        assert_eq!(expected_surviving_max(&[]), 0.0);
    }

    #[test]
    fn a_dropped_best_hands_over_to_the_next() {
        // Best 0.9 at p = 0.5, next 0.6 never dropped: 0.5·0.9 + 0.5·0.6 = 0.75.
        let e = expected_surviving_max(&[(0.6, 0.0), (0.9, 0.5)]);
        assert!((e - 0.75).abs() < 1e-12, "{e}");
        // Chain: 0.9 (p 0.5), 0.6 (p 0.5), 0.3 (p 0): 0.45 + 0.15 + 0.075 = 0.675.
        let e = expected_surviving_max(&[(0.3, 0.0), (0.6, 0.5), (0.9, 0.5)]);
        assert!((e - 0.675).abs() < 1e-12, "{e}");
    }

    #[test]
    fn all_dropped_falls_back_to_the_undropped_best() {
        // p = 1 everywhere: the safeguard gives the best cosine.
        let e = expected_surviving_max(&[(0.4, 1.0), (0.8, 1.0)]);
        assert!((e - 0.8).abs() < 1e-12, "{e}");
        // One reference at p = 0.5: 0.5·0.7 + 0.5·0.7 (safeguard) = 0.7.
        let e = expected_surviving_max(&[(0.7, 0.5)]);
        assert!((e - 0.7).abs() < 1e-12, "{e}");
    }
}
