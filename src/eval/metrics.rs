//! Pure metric functions over already-scored outputs, so they are testable without a model.

pub use crate::text::edit_similarity;

/// Whether `output` counts as "not rewritten": its edit similarity to `input` (white space
/// collapsed, see [`edit_similarity`]) is ≥ `threshold`.
pub fn is_not_rewritten(input: &str, output: &str, threshold: f64) -> bool {
    edit_similarity(input, output) >= threshold
}

/// Share (0..=100 %) of pairs that are not rewritten; 0 for no pairs.
pub fn not_rewritten_percent(pairs: &[(&str, &str)], threshold: f64) -> f64 {
    if pairs.is_empty() {
        return 0.0;
    }
    let n = pairs
        .iter()
        .filter(|(i, o)| is_not_rewritten(i, o, threshold))
        .count();
    100.0 * n as f64 / pairs.len() as f64
}

/// Mean over texts of the per-text mean best similarity of its sentences to the reference
/// ("average style similarity"). Texts without sentences are skipped; `None` if none remain.
pub fn average_style_similarity(per_text_sentence_best: &[Vec<f32>]) -> Option<f64> {
    let per_text: Vec<f64> = per_text_sentence_best
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| s.iter().map(|&x| x as f64).sum::<f64>() / s.len() as f64)
        .collect();
    if per_text.is_empty() {
        None
    } else {
        Some(per_text.iter().sum::<f64>() / per_text.len() as f64)
    }
}

/// Counts of closest-reference indices: one slot per reference sentence.
pub fn style_counts(closest: impl IntoIterator<Item = usize>, n_refs: usize) -> Vec<f64> {
    let mut v = vec![0.0; n_refs];
    for k in closest {
        if k < n_refs {
            v[k] += 1.0;
        }
    }
    v
}

/// One evaluated sample: the closest reference index of each input sentence and each output
/// sentence, and whether the output counts as rewritten.
pub struct ConsistencySample<'a> {
    pub input_closest: &'a [usize],
    pub output_closest: &'a [usize],
    pub rewritten: bool,
}

/// Style vector consistency: the cosine between the closest-reference count vector of the
/// inputs and that of the outputs, over rewritten samples only. `None` when no sample was
/// rewritten or a vector is all zeros (the metric is undefined then, not 0).
pub fn style_vector_consistency(samples: &[ConsistencySample], n_refs: usize) -> Option<f64> {
    let rewritten: Vec<&ConsistencySample> = samples.iter().filter(|s| s.rewritten).collect();
    let vin = style_counts(
        rewritten
            .iter()
            .flat_map(|s| s.input_closest.iter().copied()),
        n_refs,
    );
    let vout = style_counts(
        rewritten
            .iter()
            .flat_map(|s| s.output_closest.iter().copied()),
        n_refs,
    );
    cosine64(&vin, &vout)
}

/// Cosine of two f64 vectors; `None` if either has zero norm.
pub fn cosine64(a: &[f64], b: &[f64]) -> Option<f64> {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    if na == 0.0 || nb == 0.0 {
        None
    } else {
        Some(dot / (na * nb))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_outputs_are_all_not_rewritten() {
        let pairs = [("Hello there.", "Hello there."), ("A b c", "A  b\nc")];
        assert_eq!(not_rewritten_percent(&pairs, 0.95), 100.0);
    }

    #[test]
    fn edit_similarity_by_hand() {
        // kitten → sitting: distance 3, max len 7.
        assert!((edit_similarity("kitten", "sitting") - (1.0 - 3.0 / 7.0)).abs() < 1e-12);
        let pairs = [("kitten", "sitting"), ("same", "same"), ("abcd", "abce")];
        // 0.571 < 0.7, 1.0 ≥ 0.7, 0.75 ≥ 0.7 → 2 of 3.
        assert!((not_rewritten_percent(&pairs, 0.7) - 200.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn consistency_counts_only_rewritten_samples() {
        let s = [
            ConsistencySample {
                input_closest: &[0, 1],
                output_closest: &[0, 1],
                rewritten: true,
            },
            // Not rewritten: if it counted, the output vector would lean to index 2.
            ConsistencySample {
                input_closest: &[0],
                output_closest: &[2, 2, 2],
                rewritten: false,
            },
        ];
        assert!((style_vector_consistency(&s, 3).unwrap() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn consistency_known_cosine() {
        // inputs → [2, 0, 0]; outputs → [1, 1, 0]; cos = 2 / (2·√2) = 1/√2.
        let s = [ConsistencySample {
            input_closest: &[0, 0],
            output_closest: &[0, 1],
            rewritten: true,
        }];
        assert!((style_vector_consistency(&s, 3).unwrap() - 0.5f64.sqrt()).abs() < 1e-12);
        let none = [ConsistencySample {
            input_closest: &[0],
            output_closest: &[1],
            rewritten: false,
        }];
        assert_eq!(style_vector_consistency(&none, 3), None);
    }

    #[test]
    fn average_similarity_is_mean_of_text_means() {
        let v = vec![vec![1.0, 0.5], vec![0.25], vec![]];
        // (0.75 + 0.25) / 2 = 0.5; the empty text is skipped.
        assert!((average_style_similarity(&v).unwrap() - 0.5).abs() < 1e-9);
        assert_eq!(average_style_similarity(&[]), None);
    }
}
