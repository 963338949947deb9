//! Normalised edit similarity, shared by the not-rewritten metric and the rewrite reward.

/// 1 − Levenshtein(a, b) / max(|a|, |b|) over Unicode scalar values, after collapsing runs of
/// white space (re-wrapped lines are not a rewrite); two empty texts are identical (1.0).
pub fn edit_similarity(a: &str, b: &str) -> f64 {
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    strsim::normalized_levenshtein(&norm(a), &norm(b))
}
