//! Paired bootstrap intervals over held-out inputs (docs/method.md#bootstrap-intervals).
//!
//! One set of resamples (B draws of n input indices with replacement, seeded) is drawn once
//! and reused for every metric and every system, so each difference — system − inputs,
//! system − baseline — is computed on the same inputs in both terms: that pairing is what
//! cancels the input-to-input variation out of a difference. A statistic is any function
//! of a list of indices, so corpus-level metrics (style vector consistency) are recomputed
//! from the resampled samples, not averaged. Intervals are percentile 95 %.
use crate::rng::SplitMix64;
use serde::Serialize;

/// A point estimate on all inputs and its 95 % percentile bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    /// The statistic on the full (not resampled) inputs.
    pub mean: f64,
    pub lo: f64,
    pub hi: f64,
}

/// Two-sided coverage of every interval.
pub const LEVEL: f64 = 0.95;

/// The resampled index lists, shared by every statistic of one evaluation.
pub struct Resamples {
    n: usize,
    draws: Vec<Vec<usize>>,
}

impl Resamples {
    /// `resamples` draws of `n` indices in 0..n with replacement, from SplitMix64(`seed`).
    pub fn new(n: usize, resamples: usize, seed: u64) -> Resamples {
        let mut rng = SplitMix64::new(seed);
        let draws = (0..resamples)
            .map(|_| {
                (0..n)
                    .map(|_| rng.below(n.max(1) as u64) as usize)
                    .collect()
            })
            .collect();
        Resamples { n, draws }
    }

    pub fn n(&self) -> usize {
        self.n
    }

    pub fn resamples(&self) -> usize {
        self.draws.len()
    }

    /// The interval of any statistic of a multiset of input indices. `None` when the
    /// statistic is undefined on all inputs; resamples where it is undefined (e.g. no
    /// rewritten output was drawn) are left out of the percentiles.
    pub fn interval(&self, stat: impl Fn(&[usize]) -> Option<f64>) -> Option<Interval> {
        let all: Vec<usize> = (0..self.n).collect();
        let mean = stat(&all)?;
        let mut values: Vec<f64> = self
            .draws
            .iter()
            .filter_map(|d| stat(d))
            .filter(|v| v.is_finite())
            .collect();
        if values.is_empty() {
            return Some(Interval {
                mean,
                lo: mean,
                hi: mean,
            });
        }
        values.sort_by(|a, b| a.total_cmp(b));
        let tail = (1.0 - LEVEL) / 2.0;
        Some(Interval {
            mean,
            lo: percentile(&values, tail),
            hi: percentile(&values, 1.0 - tail),
        })
    }

    /// Interval of a per-sample mean; `None` entries (e.g. a text with no sentence) are
    /// skipped inside each resample, as in the point estimate.
    pub fn mean(&self, xs: &[Option<f64>]) -> Option<Interval> {
        self.interval(|idx| mean_at(xs, idx))
    }

    /// Interval of mean(a) − mean(b) over the same indices: a paired difference.
    pub fn mean_diff(&self, a: &[Option<f64>], b: &[Option<f64>]) -> Option<Interval> {
        self.interval(|idx| Some(mean_at(a, idx)? - mean_at(b, idx)?))
    }
}

/// Mean of `xs` over the (possibly repeated) indices, skipping `None`; `None` if nothing is left.
pub fn mean_at(xs: &[Option<f64>], idx: &[usize]) -> Option<f64> {
    let (mut s, mut k) = (0.0, 0usize);
    for &i in idx {
        if let Some(x) = xs[i] {
            s += x;
            k += 1;
        }
    }
    (k > 0).then(|| s / k as f64)
}

/// The `p`-quantile of sorted values, linearly interpolated between order statistics
/// (position p·(m − 1), "type 7"), so it is exact for constant values and stable in `p`.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    assert!(!sorted.is_empty(), "percentile of nothing");
    let pos = p.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let i = pos.floor() as usize;
    let j = (i + 1).min(sorted.len() - 1);
    let f = pos - i as f64;
    sorted[i] + f * (sorted[j] - sorted[i])
}

/// Wraps plain values as always-defined samples.
pub fn some(xs: &[f64]) -> Vec<Option<f64>> {
    xs.iter().map(|&x| Some(x)).collect()
}
