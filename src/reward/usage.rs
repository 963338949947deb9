//! Usage-keyed style reward dropout (`reward.dropout.rates = "usage"`), a recipe option that
//! is not in the paper.
//!
//! The paper's rates are static: they come from how much each reference sentence resembles the
//! other reference sentences, once, before training. The collapse measured on the demo was not
//! onto a reference that dominates the reference text, but onto whichever one the policy found
//! easiest to reach ("Just …" openings at 32–48 steps): static rates cannot see it. Here the
//! rate of reference k follows the policy itself. Running counts (exponentially decayed, one
//! update per rollout batch) of how often generated sentences and input sentences have k as
//! their best match give shares g_k and e_k (each with a pseudo-count `prior` per reference);
//! a reference the outputs use more than the inputs do loses the excess:
//!   p_k = clip(1 − e_k / g_k, eps_min, eps_max)   (0 where g_k ≤ e_k, before eps_min).
//! With `mode = "expected"` an over-used reference then contributes, in total over the
//! batch, about what the inputs' own distribution would give it, which is what style vector
//! consistency compares. Pure state: the trainer calls [`Usage::observe`] after scoring a
//! batch and saves the counts in its checkpoints, so a resumed run continues them exactly.
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Decayed best-match counts of generated sentences, one per reference sentence.
    pub generated: Vec<f64>,
    /// Decayed best-match counts of input sentences (each input counted once per rollout).
    pub inputs: Vec<f64>,
}

impl Usage {
    pub fn new(references: usize) -> Self {
        Usage {
            generated: vec![0.0; references],
            inputs: vec![0.0; references],
        }
    }

    /// Rate per reference: clip(1 − e_k / g_k, eps_min, eps_max), shares smoothed by `prior`.
    pub fn rates(&self, prior: f64, eps_min: f64, eps_max: f64) -> Vec<f64> {
        let g = shares(&self.generated, prior);
        let e = shares(&self.inputs, prior);
        g.iter()
            .zip(&e)
            .map(|(&gk, &ek)| {
                let excess = if gk > ek && gk > 0.0 {
                    1.0 - ek / gk
                } else {
                    0.0
                };
                excess.clamp(eps_min, eps_max)
            })
            .collect()
    }

    /// Per reference, clip(ln(e_k / g_k), −clip, clip) with the shares smoothed by `prior`
    /// (`reward.balance`): positive where the outputs use k less than the inputs do. A
    /// reference only the inputs have used is at +clip, one only the outputs have used at
    /// −clip, one neither has used at 0.
    pub fn log_ratios(&self, prior: f64, clip: f64) -> Vec<f64> {
        let g = shares(&self.generated, prior);
        let e = shares(&self.inputs, prior);
        g.iter()
            .zip(&e)
            .map(|(&gk, &ek)| match (gk > 0.0, ek > 0.0) {
                (true, true) => (ek / gk).ln().clamp(-clip, clip),
                (false, true) => clip,
                (true, false) => -clip,
                (false, false) => 0.0,
            })
            .collect()
    }

    /// Decays the counts by `decay`, then adds one batch: the best reference of every
    /// generated sentence and of every input sentence. Indices out of range are ignored.
    pub fn observe(&mut self, decay: f64, generated: &[usize], inputs: &[usize]) {
        for (counts, seen) in [(&mut self.generated, generated), (&mut self.inputs, inputs)] {
            counts.iter_mut().for_each(|c| *c *= decay);
            for &k in seen {
                if let Some(c) = counts.get_mut(k) {
                    *c += 1.0;
                }
            }
        }
    }
}

/// (c_k + prior) / Σ_j (c_j + prior); all zero when there is nothing to share.
fn shares(counts: &[f64], prior: f64) -> Vec<f64> {
    let total: f64 = counts.iter().map(|c| c + prior).sum();
    if total <= 0.0 {
        return vec![0.0; counts.len()];
    }
    counts.iter().map(|c| (c + prior) / total).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_history_means_no_dropout() {
        let u = Usage::new(4);
        assert_eq!(u.rates(1.0, 0.0, 0.9), vec![0.0; 4]);
        assert_eq!(u.rates(0.0, 0.0, 0.9), vec![0.0; 4]);
    }

    #[test]
    fn an_over_used_reference_loses_its_excess_share() {
        let mut u = Usage::new(2);
        // Outputs land on reference 0 three times as often as the inputs do.
        u.observe(1.0, &[0, 0, 0, 1], &[0, 1, 1, 1]);
        let r = u.rates(0.0, 0.0, 0.9);
        assert!((r[0] - (1.0 - 0.25 / 0.75)).abs() < 1e-12, "{r:?}");
        assert_eq!(r[1], 0.0);
        // The expected contribution of the over-used reference is then the inputs' share.
        assert!((0.75 * (1.0 - r[0]) - 0.25).abs() < 1e-12);
        // Clipped at eps_max; eps_min is a floor for every reference.
        assert_eq!(u.rates(0.0, 0.0, 0.5)[0], 0.5);
        assert_eq!(u.rates(0.0, 0.1, 0.9)[1], 0.1);
    }

    #[test]
    fn log_ratios_reward_the_under_used_and_are_clipped() {
        let mut u = Usage::new(3);
        assert_eq!(u.log_ratios(1.0, 2.0), vec![0.0; 3]);
        assert_eq!(u.log_ratios(0.0, 2.0), vec![0.0; 3]);
        // Outputs: 3 × ref 0, 1 × ref 1; inputs: 1 × ref 0, 3 × ref 1; ref 2 unused.
        u.observe(1.0, &[0, 0, 0, 1], &[0, 1, 1, 1]);
        let r = u.log_ratios(0.0, 5.0);
        assert!((r[0] - (1.0f64 / 3.0).ln()).abs() < 1e-12, "{r:?}");
        assert!((r[1] - 3.0f64.ln()).abs() < 1e-12, "{r:?}");
        assert_eq!(r[2], 0.0);
        // Clipped; a reference only one side has used sits at the clip.
        assert_eq!(u.log_ratios(0.0, 0.5)[0], -0.5);
        u.observe(1.0, &[], &[2]);
        assert_eq!(u.log_ratios(0.0, 2.0)[2], 2.0);
        u.observe(1.0, &[0, 0], &[]);
        let mut v = Usage::new(2);
        v.observe(1.0, &[1], &[0]);
        assert_eq!(v.log_ratios(0.0, 2.0), vec![2.0, -2.0]);
        // The prior pulls small counts towards 0.
        assert!(v.log_ratios(10.0, 2.0)[0].abs() < 0.1);
    }

    #[test]
    fn old_batches_fade_and_the_prior_softens_small_counts() {
        let mut u = Usage::new(2);
        u.observe(0.5, &[0, 0], &[1, 1]);
        u.observe(0.5, &[1, 1], &[1, 1]);
        assert_eq!(u.generated, vec![1.0, 2.0]);
        assert_eq!(u.inputs, vec![0.0, 3.0]);
        let hard = u.rates(0.0, 0.0, 1.0);
        let soft = u.rates(10.0, 0.0, 1.0);
        assert_eq!(hard[0], 1.0);
        assert!(soft[0] > 0.0 && soft[0] < 0.1, "{soft:?}");
        // Out-of-range indices are ignored, not a panic.
        u.observe(1.0, &[7], &[9]);
        assert_eq!(u.generated, vec![1.0, 2.0]);
    }
}
