//! Pooling token states into one sentence vector, as sentence-transformers' Pooling module
//! does: plain tensor functions over `hidden [B, T, H]` and `mask [B, T]` (1 = real token).
use anyhow::{bail, Result};
use serde_json::Value;
use tch::{Kind, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolMode {
    Cls,
    Max,
    Mean,
    MeanSqrtLen,
    WeightedMean,
    LastToken,
}

impl PoolMode {
    /// The mode names sentence-transformers writes in `pooling_mode`.
    pub fn from_name(s: &str) -> Result<Self> {
        Ok(match s {
            "cls" => PoolMode::Cls,
            "max" => PoolMode::Max,
            "mean" => PoolMode::Mean,
            "mean_sqrt_len_tokens" => PoolMode::MeanSqrtLen,
            "weightedmean" => PoolMode::WeightedMean,
            "lasttoken" => PoolMode::LastToken,
            other => bail!(
                "pooling mode '{other}' is unknown: use cls, max, mean, mean_sqrt_len_tokens, weightedmean or lasttoken"
            ),
        })
    }
}

/// Legacy boolean keys in the order sentence-transformers concatenates their outputs.
const LEGACY_KEYS: [(&str, PoolMode); 6] = [
    ("pooling_mode_cls_token", PoolMode::Cls),
    ("pooling_mode_max_tokens", PoolMode::Max),
    ("pooling_mode_mean_tokens", PoolMode::Mean),
    ("pooling_mode_mean_sqrt_len_tokens", PoolMode::MeanSqrtLen),
    ("pooling_mode_weightedmean_tokens", PoolMode::WeightedMean),
    ("pooling_mode_lasttoken", PoolMode::LastToken),
];

/// Reads 1_Pooling/config.json: the newer `pooling_mode` (a name or a list of names) or the
/// legacy `pooling_mode_*` booleans. No mode at all means mean, as sentence-transformers does.
pub fn parse_pooling_config(v: &Value) -> Result<Vec<PoolMode>> {
    if v.get("include_prompt").and_then(Value::as_bool) == Some(false) {
        tracing::debug!("include_prompt=false has no effect: stylerl encodes without prompts");
    }
    match &v["pooling_mode"] {
        Value::String(s) => return Ok(vec![PoolMode::from_name(s)?]),
        Value::Array(a) => {
            let modes = a
                .iter()
                .map(|m| PoolMode::from_name(m.as_str().unwrap_or("?")))
                .collect::<Result<Vec<_>>>()?;
            if !modes.is_empty() {
                return Ok(modes);
            }
        }
        _ => {}
    }
    let modes: Vec<PoolMode> = LEGACY_KEYS
        .iter()
        .filter(|(k, _)| v[*k].as_bool() == Some(true))
        .map(|(_, m)| *m)
        .collect();
    Ok(if modes.is_empty() {
        vec![PoolMode::Mean]
    } else {
        modes
    })
}

/// Concatenates each mode's `[B, H]` vector along the last dimension: `[B, H * modes]`.
pub fn pool(hidden: &Tensor, mask: &Tensor, modes: &[PoolMode]) -> Tensor {
    let parts: Vec<Tensor> = modes.iter().map(|m| pool_one(hidden, mask, *m)).collect();
    if parts.len() == 1 {
        parts.into_iter().next().unwrap()
    } else {
        Tensor::cat(&parts, -1)
    }
}

/// One pooling mode.
pub fn pool_one(hidden: &Tensor, mask: &Tensor, mode: PoolMode) -> Tensor {
    match mode {
        PoolMode::Cls => cls(hidden, mask),
        PoolMode::Max => max(hidden, mask),
        PoolMode::Mean => mean(hidden, mask),
        PoolMode::MeanSqrtLen => mean_sqrt_len(hidden, mask),
        PoolMode::WeightedMean => weighted_mean(hidden, mask),
        PoolMode::LastToken => last_token(hidden, mask),
    }
}

/// The state of each row's first real token (position 0 with right padding).
pub fn cls(hidden: &Tensor, mask: &Tensor) -> Tensor {
    let first = mask.to_kind(Kind::Int).argmax(1, false);
    gather_rows(hidden, &first)
}

/// Element-wise maximum over real tokens.
pub fn max(hidden: &Tensor, mask: &Tensor) -> Tensor {
    let pad = mask.eq(0).unsqueeze(-1);
    hidden
        .masked_fill(&pad, f64::NEG_INFINITY)
        .amax([1].as_slice(), false)
}

/// Sum of real-token states and the real-token count `[B, 1]` (floored at 1e-9).
fn masked_sum(hidden: &Tensor, mask: &Tensor) -> (Tensor, Tensor) {
    let m = mask.to_kind(hidden.kind()).unsqueeze(-1);
    let sum = (hidden * &m).sum_dim_intlist([1].as_slice(), false, hidden.kind());
    let count = m
        .sum_dim_intlist([1].as_slice(), false, hidden.kind())
        .clamp_min(1e-9);
    (sum, count)
}

/// Average of real-token states.
pub fn mean(hidden: &Tensor, mask: &Tensor) -> Tensor {
    let (sum, count) = masked_sum(hidden, mask);
    sum / count
}

/// Sum of real-token states divided by the square root of their count.
pub fn mean_sqrt_len(hidden: &Tensor, mask: &Tensor) -> Tensor {
    let (sum, count) = masked_sum(hidden, mask);
    sum / count.sqrt()
}

/// Mean weighted by position 1..T (later tokens count more), counted from the first real token.
pub fn weighted_mean(hidden: &Tensor, mask: &Tensor) -> Tensor {
    let t = hidden.size()[1];
    let m = mask.to_kind(hidden.kind()).unsqueeze(-1);
    let first = mask
        .to_kind(Kind::Int)
        .argmax(1, false)
        .to_kind(hidden.kind())
        .view([-1, 1, 1]);
    let w =
        Tensor::arange_start(1, t + 1, (hidden.kind(), hidden.device())).view([1, -1, 1]) - first;
    let wm = m * w;
    let sum = (hidden * &wm).sum_dim_intlist([1].as_slice(), false, hidden.kind());
    sum / wm
        .sum_dim_intlist([1].as_slice(), false, hidden.kind())
        .clamp_min(1e-9)
}

/// The state of each row's last real token.
pub fn last_token(hidden: &Tensor, mask: &Tensor) -> Tensor {
    let t = hidden.size()[1];
    let last_from_end = mask.to_kind(Kind::Int).flip([1]).argmax(1, false);
    let idx = Tensor::from(t - 1).to_device(hidden.device()) - last_from_end;
    gather_rows(hidden, &idx)
}

/// `hidden[b, idx[b], :]` for each row b.
fn gather_rows(hidden: &Tensor, idx: &Tensor) -> Tensor {
    let h = hidden.size()[2];
    let index = idx
        .to_kind(Kind::Int64)
        .view([-1, 1, 1])
        .expand([-1, 1, h], false);
    hidden.gather(1, &index, false).squeeze_dim(1)
}

/// Row-wise L2 normalisation as torch's F.normalize (norm floored at 1e-12).
pub fn l2_normalize(x: &Tensor) -> Tensor {
    let norm = x
        .square()
        .sum_dim_intlist([-1].as_slice(), true, x.kind())
        .sqrt()
        .clamp_min(1e-12);
    x / norm
}
