//! Training-dynamics metrics of the method's appendix, over the batch's similarity matrix S
//! (rows: generated sentences, columns: reference sentences). Standard deviations are
//! population ones (divide by n), so a single column or row gives 0, never NaN.
use serde::Serialize;

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Dynamics {
    /// Mean over generated sentences of the std of their similarities to all references:
    /// how specifically a sentence aligns with particular reference styles.
    pub inner: f64,
    /// Mean over references of the std of their similarities across generated sentences:
    /// falls when a dominant style forms.
    pub outer: f64,
}

/// Population standard deviation (0 for an empty slice).
pub fn population_std(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    (xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n).sqrt()
}

/// "inner" and "outer" of S; both 0 when S has no rows or no columns.
pub fn dynamics(s: &[Vec<f32>]) -> Dynamics {
    let k = s.first().map(|r| r.len()).unwrap_or(0);
    if s.is_empty() || k == 0 {
        return Dynamics::default();
    }
    let inner = s
        .iter()
        .map(|row| population_std(&row.iter().map(|&v| v as f64).collect::<Vec<_>>()))
        .sum::<f64>()
        / s.len() as f64;
    let outer = (0..k)
        .map(|j| population_std(&s.iter().map(|row| row[j] as f64).collect::<Vec<_>>()))
        .sum::<f64>()
        / k as f64;
    Dynamics { inner, outer }
}
