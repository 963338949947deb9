//! Token batches for training: SFT (prompt + answer, loss on the answer only) and
//! GRPO completions (ids + mask). Right padding; the model's attention mask hides pads.
use super::loss::IGNORE_INDEX;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

/// One tokenized SFT pair: the rendered prompt (chat template up to the assistant turn)
/// and the answer tokens (including the end-of-turn token) that carry the loss.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SftExample {
    pub prompt: Vec<i64>,
    pub answer: Vec<i64>,
}

/// What to do with an example longer than max_len tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Overlong {
    /// Cut the answer's tail to fit; an example with no answer token left is dropped.
    #[default]
    Truncate,
    /// Stop with an error naming the example.
    Refuse,
}

/// Counts from [`fit_length`], for the run log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FitReport {
    pub kept: usize,
    pub truncated: usize,
    pub dropped: usize,
}

/// Applies the over-long policy to every example (max_len ≥ 2).
pub fn fit_length(
    examples: Vec<SftExample>,
    max_len: usize,
    policy: Overlong,
) -> Result<(Vec<SftExample>, FitReport)> {
    let mut rep = FitReport::default();
    let mut out = Vec::with_capacity(examples.len());
    for (i, mut e) in examples.into_iter().enumerate() {
        if e.answer.is_empty() {
            bail!("example {i}: the answer is empty after tokenization (check the output field)");
        }
        let len = e.prompt.len() + e.answer.len();
        if len > max_len {
            if policy == Overlong::Refuse {
                bail!("example {i} has {len} tokens, more than max_len = {max_len}: raise max_len or set overlong = \"truncate\"");
            }
            if e.prompt.len() >= max_len {
                rep.dropped += 1;
                continue;
            }
            e.answer.truncate(max_len - e.prompt.len());
            rep.truncated += 1;
        }
        rep.kept += 1;
        out.push(e);
    }
    Ok((out, rep))
}

/// A padded SFT batch: input ids and attention mask [B,T] (i64), labels [B,T] with the
/// answer ids and −100 elsewhere (transformers' convention; the loss shifts them).
pub struct SftBatch {
    pub input_ids: Tensor,
    pub attention_mask: Tensor,
    pub labels: Tensor,
    /// Answer tokens that carry loss (labels ≠ −100 after the shift).
    pub loss_tokens: i64,
    /// Non-pad tokens (for tokens/s).
    pub tokens: i64,
}

/// Right-pads examples to the longest one with `pad_id`.
pub fn collate_sft(examples: &[SftExample], pad_id: i64, device: Device) -> SftBatch {
    let t = examples
        .iter()
        .map(|e| e.prompt.len() + e.answer.len())
        .max()
        .unwrap_or(0);
    let b = examples.len();
    let mut ids = vec![pad_id; b * t];
    let mut mask = vec![0i64; b * t];
    let mut labels = vec![IGNORE_INDEX; b * t];
    let (mut loss_tokens, mut tokens) = (0i64, 0i64);
    for (r, e) in examples.iter().enumerate() {
        let row = r * t;
        for (j, &id) in e.prompt.iter().chain(e.answer.iter()).enumerate() {
            ids[row + j] = id;
            mask[row + j] = 1;
            if j >= e.prompt.len() {
                labels[row + j] = id;
                // position 0 has nothing before it to predict from
                loss_tokens += (j > 0) as i64;
            }
        }
        tokens += (e.prompt.len() + e.answer.len()) as i64;
    }
    let shape = [b as i64, t as i64];
    let mk = |v: &[i64]| Tensor::from_slice(v).reshape(shape).to_device(device);
    SftBatch {
        input_ids: mk(&ids),
        attention_mask: mk(&mask),
        labels: mk(&labels),
        loss_tokens,
        tokens,
    }
}

/// Right-pads completions to the longest (at most `max_len`, longer ones are cut):
/// ids [b, L] i64 and the loss mask [b, L] f32 (1 on real completion tokens).
pub fn pad_completions(
    completions: &[Vec<i64>],
    pad_id: i64,
    max_len: usize,
    device: Device,
) -> (Tensor, Tensor) {
    let l = completions
        .iter()
        .map(|c| c.len().min(max_len))
        .max()
        .unwrap_or(0)
        .max(1);
    let b = completions.len();
    let mut ids = vec![pad_id; b * l];
    let mut mask = vec![0f32; b * l];
    for (r, c) in completions.iter().enumerate() {
        for (j, &id) in c.iter().take(l).enumerate() {
            ids[r * l + j] = id;
            mask[r * l + j] = 1.0;
        }
    }
    let shape = [b as i64, l as i64];
    (
        Tensor::from_slice(&ids).reshape(shape).to_device(device),
        Tensor::from_slice(&mask)
            .reshape(shape)
            .to_kind(Kind::Float)
            .to_device(device),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(p: &[i64], a: &[i64]) -> SftExample {
        SftExample {
            prompt: p.to_vec(),
            answer: a.to_vec(),
        }
    }

    #[test]
    fn collate_masks_prompt_and_padding() {
        let b = collate_sft(&[ex(&[1, 2], &[3, 4]), ex(&[5], &[6])], 0, Device::Cpu);
        assert_eq!(
            Vec::<i64>::try_from(b.input_ids.reshape([-1])).unwrap(),
            vec![1, 2, 3, 4, 5, 6, 0, 0]
        );
        assert_eq!(
            Vec::<i64>::try_from(b.attention_mask.reshape([-1])).unwrap(),
            vec![1, 1, 1, 1, 1, 1, 0, 0]
        );
        assert_eq!(
            Vec::<i64>::try_from(b.labels.reshape([-1])).unwrap(),
            vec![-100, -100, 3, 4, -100, 6, -100, -100]
        );
        assert_eq!((b.loss_tokens, b.tokens), (3, 6));
    }

    #[test]
    fn overlong_policy_truncates_drops_or_refuses() {
        let xs = vec![
            ex(&[1, 2], &[3, 4, 5]),
            ex(&[1, 2, 3, 4], &[5]),
            ex(&[1], &[2]),
        ];
        let (kept, rep) = fit_length(xs.clone(), 4, Overlong::Truncate).unwrap();
        assert_eq!(kept, vec![ex(&[1, 2], &[3, 4]), ex(&[1], &[2])]);
        assert_eq!(
            rep,
            FitReport {
                kept: 2,
                truncated: 1,
                dropped: 1
            }
        );
        let e = fit_length(xs, 4, Overlong::Refuse).unwrap_err().to_string();
        assert!(e.contains("example 0 has 5 tokens"), "{e}");
        assert!(fit_length(vec![ex(&[1], &[])], 4, Overlong::Truncate)
            .unwrap_err()
            .to_string()
            .contains("answer is empty"));
    }

    #[test]
    fn completions_pad_and_cut() {
        let (ids, mask) = pad_completions(&[vec![7, 8, 9], vec![4]], 0, 2, Device::Cpu);
        assert_eq!(
            Vec::<i64>::try_from(ids.reshape([-1])).unwrap(),
            vec![7, 8, 4, 0]
        );
        assert_eq!(
            Vec::<f32>::try_from(mask.reshape([-1])).unwrap(),
            vec![1.0, 1.0, 1.0, 0.0]
        );
    }
}
