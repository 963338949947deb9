//! Learning-rate schedules with transformers' formulas (get_cosine_schedule_with_warmup,
//! get_linear_schedule_with_warmup, get_constant_schedule_with_warmup).
//!
//! `lr_at(k)` is the rate of optimizer step k, counted from 0 — the value transformers'
//! LambdaLR holds before its k-th `scheduler.step()`, so with warmup the first update uses
//! lr 0, exactly as the HF Trainer does.
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    #[default]
    Cosine,
    Linear,
    Constant,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    pub kind: ScheduleKind,
    pub base_lr: f64,
    pub warmup_steps: u64,
    pub total_steps: u64,
}

impl Schedule {
    /// Multiplier of the base lr at step k.
    pub fn factor(&self, k: u64) -> f64 {
        let (k, w, t) = (k as f64, self.warmup_steps as f64, self.total_steps as f64);
        if k < w {
            return k / w.max(1.0);
        }
        match self.kind {
            ScheduleKind::Constant => 1.0,
            ScheduleKind::Linear => ((t - k) / (t - w).max(1.0)).max(0.0),
            ScheduleKind::Cosine => {
                // num_cycles = 0.5: half a cosine from 1 down to 0 over the post-warmup steps
                let progress = (k - w) / (t - w).max(1.0);
                (0.5 * (1.0 + (std::f64::consts::PI * 0.5 * 2.0 * progress).cos())).max(0.0)
            }
        }
    }

    /// Learning rate at optimizer step k (0-based).
    pub fn lr_at(&self, k: u64) -> f64 {
        self.base_lr * self.factor(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(kind: ScheduleKind) -> Schedule {
        Schedule {
            kind,
            base_lr: 2.0,
            warmup_steps: 4,
            total_steps: 12,
        }
    }

    #[test]
    fn warmup_is_linear_from_zero() {
        for kind in [
            ScheduleKind::Cosine,
            ScheduleKind::Linear,
            ScheduleKind::Constant,
        ] {
            let v: Vec<f64> = (0..5).map(|k| s(kind).lr_at(k)).collect();
            assert_eq!(v, vec![0.0, 0.5, 1.0, 1.5, 2.0], "{kind:?}");
        }
    }

    #[test]
    fn decay_values_by_hand() {
        // post-warmup length 8: step 8 is halfway
        let c = s(ScheduleKind::Cosine);
        assert!((c.lr_at(8) - 1.0).abs() < 1e-12);
        assert!(
            (c.lr_at(6) - 2.0 * 0.5 * (1.0 + (std::f64::consts::PI * 0.25).cos())).abs() < 1e-12
        );
        assert!(c.lr_at(12).abs() < 1e-12 && c.lr_at(20) >= 0.0);
        let l = s(ScheduleKind::Linear);
        assert!((l.lr_at(8) - 1.0).abs() < 1e-12);
        assert!((l.lr_at(10) - 0.5).abs() < 1e-12);
        assert_eq!(l.lr_at(13), 0.0);
        assert_eq!(s(ScheduleKind::Constant).lr_at(11), 2.0);
        // no warmup: first step uses the full rate
        let z = Schedule {
            warmup_steps: 0,
            ..c
        };
        assert_eq!(z.lr_at(0), 2.0);
    }
}
