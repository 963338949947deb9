//! Loss math as pure tensor functions: SFT token cross-entropy and the Dr.GRPO objective.
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// transformers' ignore index: label positions holding it carry no loss.
pub const IGNORE_INDEX: i64 = -100;

/// Summed token cross-entropy and the number of counted tokens, for logits [B,T,V] and
/// targets [B,T] already aligned (no shift); targets = −100 are ignored. Math in f32.
/// Divide by the token count of the whole accumulated batch to get the mean.
pub fn token_ce_sum(logits: &Tensor, targets: &Tensor) -> (Tensor, i64) {
    let v = *logits.size().last().unwrap();
    let flat = logits.to_kind(Kind::Float).reshape([-1, v]);
    let t = targets.reshape([-1]);
    let sum = flat.cross_entropy_loss::<Tensor>(&t, None, tch::Reduction::Sum, IGNORE_INDEX, 0.0);
    let count = t.ne(IGNORE_INDEX).sum(Kind::Int64).int64_value(&[]);
    (sum, count)
}

/// transformers' causal-LM loss: predict labels[t+1] from position t, mean over the
/// labels that are not −100 (so the prompt and padding carry no loss). logits [B,T,V],
/// labels [B,T].
pub fn causal_lm_loss(logits: &Tensor, labels: &Tensor) -> Tensor {
    let t = logits.size()[1];
    let (sum, n) = token_ce_sum(&logits.narrow(1, 0, t - 1), &labels.narrow(1, 1, t - 1));
    sum / (n.max(1) as f64)
}

/// log p(ids) under softmax(logits / temperature): logits [B,L,V], ids [B,L] → [B,L], f32.
/// The same temperature must be used when sampling and when scoring.
pub fn token_logprobs(logits: &Tensor, ids: &Tensor, temperature: f64) -> Tensor {
    let l = logits.to_kind(Kind::Float);
    let l = if temperature != 1.0 {
        l / temperature
    } else {
        l
    };
    l.log_softmax(-1, Kind::Float)
        .gather(-1, &ids.unsqueeze(-1), false)
        .squeeze_dim(-1)
}

/// Advantage scaling (docs/method.md#advantages): "none" for Dr.GRPO, "group"/"batch" for
/// ablations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StdScale {
    #[default]
    None,
    Group,
    Batch,
}

/// Added to the std before dividing (TRL's value), so a group with equal rewards gives 0.
pub const ADV_STD_EPS: f64 = 1e-4;

/// A_i = r_i − mean(group of i); with Group/Batch scaling divided by (std + 1e-4), the
/// std being the unbiased (n−1) std of the group or of the whole batch, as TRL.
/// `rewards` [P·G] is grouped as consecutive runs of `group_size`.
pub fn advantages(rewards: &Tensor, group_size: i64, scale: StdScale) -> Result<Tensor> {
    let n = rewards.numel() as i64;
    if group_size < 1 || n % group_size != 0 {
        bail!("{n} rewards do not split into groups of {group_size}");
    }
    let r = rewards.to_kind(Kind::Float).reshape([-1, group_size]);
    let mean = r.mean_dim(1, true, Kind::Float);
    let adv = (&r - mean).reshape([-1]);
    Ok(match scale {
        StdScale::None => adv,
        StdScale::Group => {
            let std = r
                .std_dim(1, true, true)
                .expand([-1, group_size], false)
                .reshape([-1]);
            adv / (std + ADV_STD_EPS)
        }
        StdScale::Batch => {
            let std = rewards.to_kind(Kind::Float).std(true);
            adv / (std + ADV_STD_EPS)
        }
    })
}

/// Per-step reward summary of a rollout batch (the list in docs/method.md#logged-per-step).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RewardStats {
    pub mean: f64,
    /// Population std over the whole batch.
    pub std: f64,
    /// Fraction of groups whose rewards are all equal (zero advantage, no signal).
    pub frac_reward_zero_std: f64,
}

/// Mean, std and the zero-std group fraction of rewards [P·G] in groups of `group_size`.
pub fn reward_stats(rewards: &[f64], group_size: usize) -> RewardStats {
    let n = rewards.len().max(1) as f64;
    let mean = rewards.iter().sum::<f64>() / n;
    let std = (rewards.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n).sqrt();
    let groups: Vec<&[f64]> = rewards.chunks(group_size.max(1)).collect();
    let flat = groups
        .iter()
        .filter(|g| g.iter().all(|r| (r - g[0]).abs() <= 1e-12))
        .count();
    RewardStats {
        mean,
        std,
        frac_reward_zero_std: flat as f64 / groups.len().max(1) as f64,
    }
}

/// Clip and KL settings of the Dr.GRPO loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GrpoLossConfig {
    pub eps_low: f64,
    pub eps_high: f64,
    /// KL weight; 0 = no KL term (the default, docs/method.md#no-kl).
    pub beta: f64,
    /// Completions in the whole rollout batch (B of the normaliser).
    pub num_completions: i64,
    /// max_completion_length (L_max of the normaliser).
    pub max_completion_length: i64,
}

/// Token counts behind the clip metrics; sums over micro-batches with [`GrpoStats::add`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct GrpoStats {
    pub tokens: f64,
    /// ρ < 1−ε_low with A < 0 (the lower clip is active).
    pub clipped_low: f64,
    /// ρ > 1+ε_high with A > 0 (the upper clip is active).
    pub clipped_high: f64,
    pub ratio_sum: f64,
    pub kl_sum: f64,
}

impl GrpoStats {
    pub fn add(&mut self, o: &GrpoStats) {
        self.tokens += o.tokens;
        self.clipped_low += o.clipped_low;
        self.clipped_high += o.clipped_high;
        self.ratio_sum += o.ratio_sum;
        self.kl_sum += o.kl_sum;
    }
    fn frac(&self, x: f64) -> f64 {
        if self.tokens > 0.0 {
            x / self.tokens
        } else {
            0.0
        }
    }
    /// Fraction of masked tokens whose lower clip is active.
    pub fn clip_ratio_low(&self) -> f64 {
        self.frac(self.clipped_low)
    }
    pub fn clip_ratio_high(&self) -> f64 {
        self.frac(self.clipped_high)
    }
    pub fn clip_ratio_region(&self) -> f64 {
        self.frac(self.clipped_low + self.clipped_high)
    }
    pub fn mean_ratio(&self) -> f64 {
        self.frac(self.ratio_sum)
    }
    pub fn mean_kl(&self) -> f64 {
        self.frac(self.kl_sum)
    }
}

/// Dr.GRPO loss of one micro-batch: −Σ mask·(min(ρA, clip(ρ,1−ε_low,1+ε_high)A) − β·k3)
/// / (B·L_max), ρ = exp(logp_new − logp_old), k3 = exp(ref−new) − (ref−new) − 1.
/// Shapes: logp_* and mask [b, L], adv [b]. Because the normaliser is the constant B·L_max,
/// summing this loss (or its gradient) over micro-batches equals the full-batch value.
pub fn grpo_loss(
    logp_new: &Tensor,
    logp_old: &Tensor,
    adv: &Tensor,
    mask: &Tensor,
    logp_ref: Option<&Tensor>,
    cfg: &GrpoLossConfig,
) -> (Tensor, GrpoStats) {
    let mask = mask.to_kind(Kind::Float);
    let a = adv.to_kind(Kind::Float).unsqueeze(1);
    let ratio = (logp_new - logp_old.detach()).exp();
    let unclipped = &ratio * &a;
    let clipped = ratio.clamp(1.0 - cfg.eps_low, 1.0 + cfg.eps_high) * &a;
    let mut per_token = unclipped.minimum(&clipped);
    let mut kl_sum = 0.0;
    if cfg.beta != 0.0 {
        if let Some(r) = logp_ref {
            let d = r.detach() - logp_new;
            let k3 = d.exp() - &d - 1.0;
            kl_sum = (&k3 * &mask).sum(Kind::Float).double_value(&[]);
            per_token = per_token - k3 * cfg.beta;
        }
    }
    let norm = (cfg.num_completions * cfg.max_completion_length) as f64;
    let loss = -(per_token * &mask).sum(Kind::Float) / norm;
    let stats = tch::no_grad(|| {
        let r = ratio.detach();
        let neg = a.lt(0.0).to_kind(Kind::Float);
        let pos = a.gt(0.0).to_kind(Kind::Float);
        let low = (r.lt(1.0 - cfg.eps_low).to_kind(Kind::Float) * neg * &mask).sum(Kind::Float);
        let high = (r.gt(1.0 + cfg.eps_high).to_kind(Kind::Float) * pos * &mask).sum(Kind::Float);
        GrpoStats {
            tokens: mask.sum(Kind::Float).double_value(&[]),
            clipped_low: low.double_value(&[]),
            clipped_high: high.double_value(&[]),
            ratio_sum: (&r * &mask).sum(Kind::Float).double_value(&[]),
            kl_sum,
        }
    });
    (loss, stats)
}
