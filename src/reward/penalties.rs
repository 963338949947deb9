//! The pure auxiliary rewards: DAPO-shaped soft cutoff (R_length, R_punctuation) and the
//! entity F1 behind R_ne_overlap. Plain functions of numbers, no model.
use std::collections::HashSet;

use super::config::{LengthConfig, LengthMode, MeaningConfig, PunctuationConfig, RewriteConfig};

/// DAPO soft overlong shape: 0 up to `limit − cache`, then linear down to −1 at `limit`,
/// −1 above. With `cache ≤ 0` it is a step: 0 up to `limit`, −1 above. Never NaN for
/// finite inputs.
pub fn soft_cutoff(x: f64, limit: f64, cache: f64) -> f64 {
    if cache <= 0.0 {
        return if x <= limit { 0.0 } else { -1.0 };
    }
    let start = limit - cache;
    if x <= start {
        0.0
    } else if x <= limit {
        (start - x) / cache
    } else {
        -1.0
    }
}

/// L_max for an input of `input_tokens` tokens: `ratio · input + slack` (relative) or
/// `max_tokens` (absolute), capped by `max_completion_length` in both modes.
pub fn length_limit(cfg: &LengthConfig, input_tokens: usize) -> f64 {
    let raw = match cfg.mode {
        LengthMode::Relative => cfg.ratio * input_tokens as f64 + cfg.slack,
        LengthMode::Absolute => cfg.max_tokens as f64,
    };
    raw.min(cfg.max_completion_length as f64)
}

/// The shortfall floor: 0 at or above `min_ratio · input_tokens`, down to −`short_weight` for
/// an empty output, linearly. 0 when `min_ratio` is 0 (off) or the input is empty.
pub fn shortfall(cfg: &LengthConfig, input_tokens: usize, output_tokens: usize) -> f64 {
    let floor = cfg.min_ratio * input_tokens as f64;
    if floor <= 0.0 || output_tokens as f64 >= floor {
        return 0.0;
    }
    -cfg.short_weight * (1.0 - output_tokens as f64 / floor)
}

/// R_length for `output_tokens` completion tokens (overlong cutoff plus the shortfall floor);
/// the cache zone is at most L_max wide. Returns (reward, L_max, effective cache).
pub fn r_length(cfg: &LengthConfig, input_tokens: usize, output_tokens: usize) -> (f64, f64, f64) {
    let limit = length_limit(cfg, input_tokens);
    let cache = cfg.cache.min(limit.max(0.0));
    (
        soft_cutoff(output_tokens as f64, limit, cache)
            + shortfall(cfg, input_tokens, output_tokens),
        limit,
        cache,
    )
}

/// R_punctuation for punctuation counts of input and output: limit = ratio · count_in +
/// slack, cache zone at most the limit wide. Returns (reward, limit, effective cache).
pub fn r_punctuation(
    cfg: &PunctuationConfig,
    count_in: usize,
    count_out: usize,
) -> (f64, f64, f64) {
    let limit = cfg.ratio * count_in as f64 + cfg.slack;
    let cache = cfg.cache.min(limit.max(0.0));
    (soft_cutoff(count_out as f64, limit, cache), limit, cache)
}

/// Set F1 of two entity collections (compared by normal form, duplicates ignored: a rewrite
/// may mention a preserved entity more or fewer times). Both empty → 1; one empty → 0.
pub fn entity_f1<S: AsRef<str>>(input: &[S], output: &[S]) -> f64 {
    let a: HashSet<&str> = input.iter().map(|s| s.as_ref()).collect();
    let b: HashSet<&str> = output.iter().map(|s| s.as_ref()).collect();
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let common = a.intersection(&b).count() as f64;
    2.0 * common / (a.len() + b.len()) as f64
}

/// R_ne_overlap = weight · (F1 − 1): 0 for perfect preservation, down to −weight.
pub fn r_ne_overlap(weight: f64, f1: f64) -> f64 {
    weight * (f1 - 1.0)
}

/// R_rewrite: 0 while the output's edit similarity to its input stays below `threshold`,
/// then linear down to −weight for an exact copy. The method lets the reward be adjusted
/// when rewriting is required; without this term a copy is the safest completion (every
/// penalty 0), and the demo policies learned exactly that.
pub fn r_rewrite(cfg: &RewriteConfig, edit_similarity: f64) -> f64 {
    if cfg.weight == 0.0 || edit_similarity <= cfg.threshold {
        return 0.0;
    }
    -cfg.weight * (edit_similarity - cfg.threshold) / (1.0 - cfg.threshold)
}

/// R_meaning: 0 while cos(E_c(input), E_c(output)) ≥ `threshold`, below it −weight per unit
/// of cosine lost, so a policy cannot buy style with meaning; above the threshold it is flat,
/// so it does not pull towards a copy.
pub fn r_meaning(cfg: &MeaningConfig, cos: f64) -> f64 {
    if cfg.weight == 0.0 {
        return 0.0;
    }
    cfg.weight * (cos - cfg.threshold).min(0.0)
}
